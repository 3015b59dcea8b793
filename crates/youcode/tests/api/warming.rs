//! Warming (`POST /api/admin/cache/warm`, `youcode cache warm`): the entries read first are in
//! the cache before anyone reads them, at a bounded pace.

use std::num::NonZeroU32;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use youcode::config::{CacheBackend, Config};

use crate::helpers::{Backend, TestApp, TestUser, redis_url, spawn_app_with};
use crate::on_both_backends_with_config;

/// Pages the warming of [`Catalogue`] with `top: 2` looks up: 3 public list pages, the 2
/// most-joined courses and their 3 lessons.
const WARMED_BY_TOP_2: u64 = 3 + 2 + 3;

/// Three published courses, joined by 2, 1 and 0 users, and a user who joined them all.
struct Catalogue {
    admin: TestUser,
    reader: TestUser,
    /// Most joined first.
    courses: [String; 3],
    lessons: Vec<String>,
}

impl Catalogue {
    async fn new(app: &TestApp) -> Self {
        let admin = app.admin().await;
        let mut courses = Vec::new();
        let mut lessons = Vec::new();
        for (name, lesson_count) in [("Most joined", 2), ("Joined once", 1), ("Never joined", 1)] {
            let course = app.create_course(&admin, name, "PUBLISHED").await;
            for n in 0..lesson_count {
                let lesson = app
                    .create_lesson(&admin, &course, &format!("{name} {n}"), "PUBLIC")
                    .await;
                lessons.push(lesson);
            }
            courses.push(course);
        }
        let (first, second) = (app.user().await, app.user().await);
        app.join(&first, &courses[0]).await;
        app.join(&second, &courses[0]).await;
        app.join(&first, &courses[1]).await;
        Self {
            admin,
            reader: first,
            courses: courses.try_into().unwrap(),
            lessons,
        }
    }

    /// The lessons of the two most-joined courses.
    fn top_2_lessons(&self) -> &[String] {
        &self.lessons[..3]
    }
}

async fn warm(app: &TestApp, admin: &TestUser, body: Value) -> Value {
    app.post("/api/admin/cache/warm", Some(&admin.token), body)
        .await
        .expect(200)
}

async fn clear(app: &TestApp, admin: &TestUser) {
    app.post("/api/admin/cache/clear", Some(&admin.token), json!({}))
        .await
        .expect(200);
}

/// Hits and misses of the shared pages under `prefix` (e.g. `published:course`) so far.
async fn lookups(app: &TestApp, admin: &TestUser, prefix: &str) -> (u64, u64) {
    let stats = app
        .get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect(200);
    let counters = &stats["routes"][prefix];
    (
        counters["hits"].as_u64().unwrap_or(0),
        counters["misses"].as_u64().unwrap_or(0),
    )
}

async fn db_queries(app: &TestApp, admin: &TestUser) -> u64 {
    app.get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect(200)["dbQueries"]
        .as_u64()
        .unwrap()
}

/// The hits and misses of the shared pages under `prefix` that reading `paths` as the reader
/// made.
async fn shared_lookups_of(
    app: &TestApp,
    catalogue: &Catalogue,
    prefix: &str,
    paths: &[String],
) -> (u64, u64) {
    let reader = Some(catalogue.reader.token.as_str());
    let before = lookups(app, &catalogue.admin, prefix).await;
    for path in paths {
        app.get(path, reader).await.expect(200);
    }
    let after = lookups(app, &catalogue.admin, prefix).await;
    (after.0 - before.0, after.1 - before.1)
}

/// Reads every page warming with `top: 2` fills, as the reader, and asserts the shared part of
/// each was a hit; then that the third course's page was not warmed.
async fn assert_top_2_warmed(app: &TestApp, catalogue: &Catalogue) {
    for page in 1..=3 {
        app.get(&format!("/api/public/lessons?page={page}"), None)
            .await
            .expect_cache(200, "HIT");
    }
    let course_path = |course: &String| format!("/api/user/courses/{course}");
    let top_courses: Vec<String> = catalogue.courses[..2].iter().map(course_path).collect();
    assert_eq!(
        shared_lookups_of(app, catalogue, "published:course", &top_courses).await,
        (2, 0),
        "both top course pages are hits"
    );
    let lessons: Vec<String> = (catalogue.top_2_lessons().iter())
        .map(|lesson| format!("/api/user/lessons/{lesson}"))
        .collect();
    assert_eq!(
        shared_lookups_of(app, catalogue, "published:lesson", &lessons).await,
        (3, 0),
        "their lessons' pages are hits"
    );
    let third = [course_path(&catalogue.courses[2])];
    let (_, misses) = shared_lookups_of(app, catalogue, "published:course", &third).await;
    assert_eq!(misses, 1, "the third course was not warmed");
}

async fn warming_fills_the_public_pages_the_most_joined_courses_and_their_lessons(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |_| {}).await;
    let catalogue = Catalogue::new(&app).await;
    clear(&app, &catalogue.admin).await;

    let warmed = warm(&app, &catalogue.admin, json!({"top": 2})).await;

    assert_eq!(
        (
            &warmed["warmed"],
            &warmed["alreadyCached"],
            &warmed["skipped"],
            &warmed["failed"]
        ),
        (&json!(WARMED_BY_TOP_2), &json!(0), &json!(0), &json!(0)),
        "{warmed}"
    );
    assert!(warmed["elapsedMs"].is_u64(), "{warmed}");
    assert_top_2_warmed(&app, &catalogue).await;
}

async fn warming_a_warm_cache_costs_one_statement(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let catalogue = Catalogue::new(&app).await;
    warm(&app, &catalogue.admin, json!({"top": 2})).await;
    let before = db_queries(&app, &catalogue.admin).await;

    let again = warm(&app, &catalogue.admin, json!({"top": 2})).await;

    assert_eq!(
        (&again["warmed"], &again["alreadyCached"]),
        (&json!(0), &json!(WARMED_BY_TOP_2)),
        "{again}"
    );
    // The statement listing the courses; the stats reads in between cost none.
    let after = db_queries(&app, &catalogue.admin).await;
    assert_eq!(after - before, 1, "only the courses are listed again");
}

async fn warming_without_top_takes_the_default_and_bad_requests_answer_400(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let catalogue = Catalogue::new(&app).await;
    let admin = Some(catalogue.admin.token.as_str());
    let path = "/api/admin/cache/warm";

    let all = warm(&app, &catalogue.admin, json!({})).await;
    assert_eq!(
        all["warmed"],
        json!(3 + 3 + 4),
        "the default top covers all 3: {all}"
    );

    for body in [
        json!({"top": 0}),
        json!({"top": 1001}),
        json!({"top": -1}),
        json!({"top": "ten"}),
        json!({"top": 5, "other": 1}),
    ] {
        app.post(path, admin, body)
            .await
            .expect_error(400, "invalid_body");
    }
    app.post(path, None, json!({}))
        .await
        .expect_error(401, "unauthorized");
    app.post(path, Some(&catalogue.reader.token), json!({}))
        .await
        .expect_error(403, "forbidden");
}

on_both_backends_with_config!(
    warming_fills_the_public_pages_the_most_joined_courses_and_their_lessons,
    warming_a_warm_cache_costs_one_statement,
    warming_without_top_takes_the_default_and_bad_requests_answer_400,
);

/// The rate is a floor on how long warming takes, whatever the machine's speed: 8 lookups at
/// 5 a second are at least 7 intervals of 200 ms apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_looks_entries_up_no_faster_than_its_rate() {
    let app = spawn_app_with(Backend::SqliteMemory, |config: &mut Config| {
        config.warming.rate = NonZeroU32::new(5).unwrap();
    })
    .await;
    let catalogue = Catalogue::new(&app).await;

    let warmed = warm(&app, &catalogue.admin, json!({"top": 2})).await;

    assert_eq!(warmed["warmed"], json!(WARMED_BY_TOP_2), "{warmed}");
    let elapsed = warmed["elapsedMs"].as_u64().unwrap();
    assert!(
        elapsed >= 7 * 200,
        "8 lookups at 5/s took {elapsed} ms: the rate was not kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_with_the_cache_off_answers_409() {
    let app = spawn_app_with(Backend::SqliteMemory, |config: &mut Config| {
        config.cache.backend = CacheBackend::Off;
    })
    .await;
    let admin = app.admin().await;

    app.post("/api/admin/cache/warm", Some(&admin.token), json!({}))
        .await
        .expect_error(409, "conflict");
}

/// `youcode cache warm`, run beside a server on the same PostgreSQL database and Redis
/// namespace, fills the shared store the server reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_command_fills_the_shared_cache_of_a_deployment() {
    let app = spawn_app_with(Backend::PostgresRedis, |_| {}).await;
    let catalogue = Catalogue::new(&app).await;
    clear(&app, &catalogue.admin).await;
    let config = &app.state.config;

    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_youcode"))
        .args(["cache", "warm", "--top", "2", "--cache", "redis"])
        .args(["--database-url", &config.database_url])
        .args(["--redis-url", &redis_url()])
        .args(["--cache-namespace", &config.cache.namespace])
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the warm command ends within a minute")
        .expect("the warm command runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with(&format!(
            "warmed {WARMED_BY_TOP_2} entries (0 already cached, 0 gone, 0 failed)"
        )),
        "{stdout}"
    );
    assert_top_2_warmed(&app, &catalogue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_command_refuses_a_memory_cache_with_a_clear_message() {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_youcode"))
        .args(["cache", "warm", "--cache", "memory"])
        .args(["--database-url", "sqlite://unused.db"])
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the warm command ends within a minute")
        .expect("the warm command runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the memory cache lives inside each server process"),
        "{stderr}"
    );
}
