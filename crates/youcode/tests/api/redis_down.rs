//! Redis stopped mid-test (PostgreSQL only): every cached read still answers, from the
//! database (`X-Cache: BYPASS`), with correct data, and writes show at once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use testkit::{RedisServer, free_port};

use crate::helpers::{Backend, TestApp, TestUser, spawn_app_with};

/// The app on PostgreSQL with its cache on a private Redis server.
async fn app_on_private_redis() -> (TestApp, RedisServer) {
    let port = free_port();
    let server = RedisServer::start(port);
    let app = spawn_app_with(Backend::PostgresRedis, |config| {
        config.cache.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    (app, server)
}

/// A published course with a PUBLIC and a PUBLISHED lesson, a user enrolled in it.
struct World {
    admin: TestUser,
    user: TestUser,
    course: String,
    public: String,
    members: String,
}

impl World {
    async fn new(app: &TestApp) -> Self {
        let admin = app.admin().await;
        let user = app.user().await;
        let course = app.create_course(&admin, "Rust course", "PUBLISHED").await;
        let public = app
            .create_lesson(&admin, &course, "Open lesson", "PUBLIC")
            .await;
        let members = app
            .create_lesson(&admin, &course, "Members lesson", "PUBLISHED")
            .await;
        app.join(&user, &course).await;
        Self {
            admin,
            user,
            course,
            public,
            members,
        }
    }

    /// Every cached read route, with a token that may read it.
    fn reads(&self) -> Vec<(String, Option<&str>)> {
        let (admin, user) = (
            Some(self.admin.token.as_str()),
            Some(self.user.token.as_str()),
        );
        let (c, p, m) = (&self.course, &self.public, &self.members);
        vec![
            ("/api/public/lessons".into(), None),
            ("/api/user/courses".into(), user),
            (format!("/api/user/courses/{c}"), user),
            (format!("/api/user/courses/{c}/participants"), user),
            (format!("/api/user/lessons/{p}"), user),
            (format!("/api/user/lessons/{m}"), user),
            ("/api/admin/courses".into(), admin),
            (format!("/api/admin/courses/{c}"), admin),
            (format!("/api/admin/courses/{c}/lessons"), admin),
            (format!("/api/admin/courses/{c}/lessons/{p}"), admin),
            (format!("/api/admin/courses/{c}/participants"), admin),
        ]
    }
}

/// Reads `path` with Redis down: 200 from the database.
async fn bypassed(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    let reply = app.get(path, token).await;
    assert_eq!(
        (reply.status.as_u16(), reply.cache.as_deref()),
        (200, Some("BYPASS")),
        "{path} with Redis down, body: {}",
        reply.body
    );
    reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_every_cached_read_answers_from_the_database() {
    let (app, mut redis) = app_on_private_redis().await;
    let w = World::new(&app).await;
    let mut warmed = Vec::new();
    for (path, token) in w.reads() {
        warmed.push(app.warm(&path, token).await);
    }

    redis.stop();
    until_unheard(&app).await;

    for ((path, token), before) in w.reads().into_iter().zip(warmed) {
        let body = bypassed(&app, &path, token).await;
        assert_eq!(
            body, before,
            "{path} answers the same data from the database"
        );
    }
    let me = app.get("/api/me", Some(&w.user.token)).await.expect(200);
    assert_eq!(me["id"], w.user.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_writes_show_at_once() {
    let (app, mut redis) = app_on_private_redis().await;
    let w = World::new(&app).await;
    for (path, token) in w.reads() {
        app.warm(&path, token).await;
    }
    redis.stop();
    let course = format!("/api/admin/courses/{}", w.course);
    let admin = Some(w.admin.token.as_str());
    let user = Some(w.user.token.as_str());

    app.patch(&course, admin, json!({"name": "Renamed course"}))
        .await
        .expect(200);
    app.set_progress(&w.user, &w.members, "COMPLETED").await;

    let detail = bypassed(&app, &course, admin).await;
    assert_eq!(detail["name"], "Renamed course");
    let list = bypassed(&app, "/api/admin/courses", admin).await;
    assert_eq!(list["data"][0]["name"], "Renamed course");
    let public = bypassed(&app, "/api/public/lessons", None).await;
    assert_eq!(public["data"][0]["courseName"], "Renamed course");
    let enrolments = bypassed(&app, "/api/user/courses", user).await;
    assert_eq!(enrolments["data"][0]["name"], "Renamed course");
    let user_course = bypassed(&app, &format!("/api/user/courses/{}", w.course), user).await;
    assert_eq!(user_course["name"], "Renamed course");
    assert_eq!(user_course["lessons"][1]["progress"], "COMPLETED");
    let lesson = bypassed(&app, &format!("/api/user/lessons/{}", w.members), user).await;
    assert_eq!(
        (&lesson["courseName"], &lesson["progress"]),
        (&json!("Renamed course"), &json!("COMPLETED"))
    );

    app.leave(&w.user, &w.course).await;

    let gone = app
        .get(&format!("/api/user/lessons/{}", w.members), user)
        .await;
    gone.expect_error(404, "not_found");
    let health = app.get("/healthz", None).await.expect(200);
    assert_eq!(
        (&health["status"], &health["database"], &health["cache"]),
        (&json!("ok"), &json!("ok"), &json!("degraded"))
    );
    assert_eq!(health["bus"]["state"], "unheard", "{health}");
}

/// Waits (at most 5 s) until the instance has lost its lease on the Redis bus: from then on
/// its in-process tier is not served either, and every cached read goes to the database.
async fn until_unheard(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = app.get("/healthz", None).await.expect(200);
        if health["bus"]["state"] == "unheard" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the lease outlived Redis: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_logout_still_revokes_a_cached_token_at_once() {
    let (app, mut redis) = app_on_private_redis().await;
    let user = app.user().await;
    app.get("/api/me", Some(&user.token)).await.expect(200);
    app.get("/api/me", Some(&user.token)).await.expect(200);
    redis.stop();

    app.post("/api/auth/logout", Some(&user.token), json!({}))
        .await
        .expect(204);

    app.get("/api/me", Some(&user.token))
        .await
        .expect_error(401, "unauthorized");
}
