//! Invalidations that outlive their writer: a writer killed between its commit and its
//! invalidation, or cut off from the cache, still has its write seen by the other instances
//! within the relay's bound (the cache outbox, `db/outbox.rs`), not after the pages' TTL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{Proxy, free_port};
use youcode::config::CacheBackend;

use crate::helpers::{Backend, TestApp, TestUser, redis_url, spawn_app_with};

/// How long another instance may show the old data: the relay's delay and interval, its
/// invalidation, and slack for a loaded machine.
const SEEN_WITHIN: Duration = Duration::from_secs(10);

/// A `youcode serve` child process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Serves on `port` with `other`'s database and cache, and dies right after its first
    /// write commits (before invalidating anything).
    fn crashing_after_commit(other: &TestApp, port: u16) -> Self {
        let config = &other.state.config;
        let child = Command::new(env!("CARGO_BIN_EXE_youcode"))
            .args([
                "serve",
                "--no-demo",
                "--cache",
                "tiered",
                "--cache-lease",
                "300ms",
            ])
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &config.database_url])
            .args(["--redis-url", &redis_url()])
            .args(["--cache-namespace", &config.cache.namespace])
            .env("YOUCODE_TEST_CRASH_AFTER_COMMIT", "1")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the youcode binary runs");
        Self(child)
    }

    /// Waits until it answers `/healthz`.
    async fn until_up(&mut self, base: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(format!("{base}/healthz")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                self.0.try_wait().unwrap().is_none(),
                "the server exited before it answered"
            );
            assert!(
                Instant::now() < deadline,
                "the server did not start in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A published course whose page `user` has cached on `app`: its path.
async fn cached_course_page(app: &TestApp, admin: &TestUser, user: &TestUser) -> (String, String) {
    let course = app.create_course(admin, "Before", "PUBLISHED").await;
    let page = format!("/api/user/courses/{course}");
    app.warm(&page, Some(&user.token)).await;
    (course, page)
}

/// How long until `app` shows `name` on `page`; fails past [`SEEN_WITHIN`].
async fn until_named(app: &TestApp, page: &str, token: &str, name: &str) -> Duration {
    let started = Instant::now();
    loop {
        let body = app.get(page, Some(token)).await.expect(200);
        if body["name"] == name {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SEEN_WITHIN,
            "{page} still showed {} after {SEEN_WITHIN:?}",
            body["name"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_between_commit_and_invalidation_is_seen_by_the_others() {
    let other = spawn_app_with(Backend::PostgresRedis, |_| {}).await;
    let admin = other.admin().await;
    let user = other.user().await;
    let (course, page) = cached_course_page(&other, &admin, &user).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut writer = Server::crashing_after_commit(&other, port);
    writer.until_up(&base).await;

    let renamed = reqwest::Client::new()
        .patch(format!("{base}/api/admin/courses/{course}"))
        .bearer_auth(&admin.token)
        .json(&json!({"name": "After"}))
        .send()
        .await;

    assert!(renamed.is_err(), "the writer answered: {renamed:?}");
    let status = tokio::task::spawn_blocking(move || writer.0.wait().map(|s| s.success()))
        .await
        .unwrap();
    assert!(!status.unwrap(), "the writer did not die");
    let seen = until_named(&other, &page, &user.token, "After").await;
    eprintln!("a crashed writer's rename was seen after {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_by_an_instance_cut_off_from_redis_is_seen_by_the_others() {
    let other = spawn_app_with(Backend::PostgresRedis, |_| {}).await;
    let redis_port: u16 = redis_url()
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .unwrap_or(6379);
    let proxy = Proxy::start(redis_port).await;
    let (database_url, namespace) = (
        other.state.config.database_url.clone(),
        other.state.config.cache.namespace.clone(),
    );
    let writer = spawn_app_with(Backend::PostgresRedis, |config| {
        config.database_url = database_url;
        config.cache.namespace = namespace;
        config.cache.backend = CacheBackend::Tiered;
        config.cache.redis_url = Some(proxy.redis_url());
    })
    .await;
    let admin = other.admin().await;
    let user = other.user().await;
    let (course, page) = cached_course_page(&other, &admin, &user).await;

    proxy.cut();
    writer
        .patch(
            &format!("/api/admin/courses/{course}"),
            Some(&admin.token),
            json!({"name": "After"}),
        )
        .await
        .expect(200);

    let seen = until_named(&other, &page, &user.token, "After").await;
    eprintln!("a cut-off writer's rename was seen after {seen:?}");
}
