//! Several instances on one PostgreSQL database: a write acknowledged by one is seen by the
//! next read on every other. With in-process memory caches the instances hear each other over
//! PostgreSQL LISTEN/NOTIFY; with the tiered cache, over Redis pub/sub.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use youcode::config::CacheBackend;

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// `count` instances on one fresh PostgreSQL database and one cache namespace.
async fn instances(count: usize, cache: CacheBackend) -> Vec<TestApp> {
    let first = spawn_app_with(Backend::PostgresRedis, |config| {
        config.cache.backend = cache;
    })
    .await;
    let database_url = first.state.config.database_url.clone();
    let namespace = first.state.config.cache.namespace.clone();
    let mut apps = vec![first];
    for _ in 1..count {
        let (database_url, namespace) = (database_url.clone(), namespace.clone());
        apps.push(
            spawn_app_with(Backend::PostgresRedis, move |config| {
                config.cache.backend = cache;
                config.database_url = database_url;
                config.cache.namespace = namespace;
            })
            .await,
        );
    }
    for app in &apps {
        let health = app.get("/healthz", None).await.expect(200);
        assert_eq!(health["bus"]["instances"], count, "{health}");
    }
    apps
}

/// Reads `path` until it is cached on `app` (a shared store may have it already).
async fn cached(app: &TestApp, path: &str, token: Option<&str>) {
    app.get(path, token).await.expect(200);
    app.get(path, token).await.expect_cache(200, "HIT");
}

async fn a_write_on_one_instance_is_seen_by_the_next_read_on_the_others(cache: CacheBackend) {
    let apps = instances(3, cache).await;
    let (admin, user) = (apps[0].admin().await, apps[0].user().await);
    let (a, u) = (Some(admin.token.as_str()), Some(user.token.as_str()));
    let course = apps[0].create_course(&admin, "Before", "PUBLISHED").await;
    let lesson = apps[0]
        .create_lesson(&admin, &course, "Lesson", "PUBLISHED")
        .await;
    apps[0].join(&user, &course).await;
    let detail = format!("/api/admin/courses/{course}");
    let learning = format!("/api/user/courses/{course}");
    for app in &apps {
        for path in [detail.as_str(), learning.as_str()] {
            cached(app, path, a.filter(|_| path == detail).or(u)).await;
        }
        cached(app, "/api/user/courses", u).await;
    }

    apps[0]
        .patch(&detail, a, json!({"name": "After"}))
        .await
        .expect(200);
    for app in &apps[1..] {
        assert_eq!(app.get(&detail, a).await.expect(200)["name"], "After");
        let enrolled = app.get("/api/user/courses", u).await.expect(200);
        assert_eq!(enrolled["data"][0]["name"], "After");
    }

    apps[1].set_progress(&user, &lesson, "COMPLETED").await;
    for app in [&apps[0], &apps[2]] {
        let body = app.get(&learning, u).await.expect(200);
        assert_eq!(body["lessons"][0]["progress"], "COMPLETED", "{body}");
    }

    apps[2].leave(&user, &course).await;
    for app in &apps[..2] {
        let enrolled = app.get("/api/user/courses", u).await.expect(200);
        assert_eq!(enrolled["data"], json!([]));
    }
}

/// Renames one course again and again on every instance in turn while readers on every
/// instance check that no read that starts after a rename was acknowledged shows an older name.
async fn no_instance_serves_a_name_older_than_an_acknowledged_rename(cache: CacheBackend) {
    let apps: Vec<Arc<TestApp>> = instances(3, cache)
        .await
        .into_iter()
        .map(Arc::new)
        .collect();
    let admin = Arc::new(apps[0].admin().await);
    let course = apps[0].create_course(&admin, "v0", "PUBLISHED").await;
    let detail = Arc::new(format!("/api/admin/courses/{course}"));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let (stale, hits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    {
        let (apps, admin, detail, acknowledged) = (
            apps.clone(),
            admin.clone(),
            detail.clone(),
            acknowledged.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut version = 0;
            while Instant::now() < stop {
                version += 1;
                let app = &apps[version as usize % apps.len()];
                app.patch(
                    &detail,
                    Some(&admin.token),
                    json!({"name": format!("v{version}")}),
                )
                .await
                .expect(200);
                acknowledged.store(version, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            version
        }));
    }
    for app in &apps {
        for _ in 0..3 {
            let (app, admin, detail, acknowledged, stale, hits) = (
                app.clone(),
                admin.clone(),
                detail.clone(),
                acknowledged.clone(),
                stale.clone(),
                hits.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    let floor = acknowledged.load(Ordering::SeqCst);
                    let reply = app.get(&detail, Some(&admin.token)).await;
                    if reply.cache.as_deref() == Some("HIT") {
                        hits.fetch_add(1, Ordering::Relaxed);
                    }
                    let body = reply.expect(200);
                    let name = body["name"].as_str().unwrap();
                    let read: u64 = name[1..].parse().unwrap();
                    if read < floor {
                        stale.fetch_add(1, Ordering::Relaxed);
                    }
                }
                0
            }));
        }
    }
    let mut writes = 0;
    for task in tasks {
        let done = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the run finishes within a minute")
            .unwrap();
        writes = writes.max(done);
    }
    assert_eq!(stale.load(Ordering::Relaxed), 0, "stale reads");
    assert!(writes >= 20, "too few renames to mean anything: {writes}");
    assert!(hits.load(Ordering::Relaxed) > 0, "the cache served nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_caches_on_postgres_a_write_on_one_instance_is_seen_by_the_next_read_on_the_others()
{
    a_write_on_one_instance_is_seen_by_the_next_read_on_the_others(CacheBackend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_caches_a_write_on_one_instance_is_seen_by_the_next_read_on_the_others() {
    a_write_on_one_instance_is_seen_by_the_next_read_on_the_others(CacheBackend::Tiered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_caches_on_postgres_no_instance_serves_a_name_older_than_an_acknowledged_rename() {
    no_instance_serves_a_name_older_than_an_acknowledged_rename(CacheBackend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tiered_caches_no_instance_serves_a_name_older_than_an_acknowledged_rename() {
    no_instance_serves_a_name_older_than_an_acknowledged_rename(CacheBackend::Tiered).await;
}
