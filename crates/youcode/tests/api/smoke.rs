//! The app starts on both backends and answers a cached route.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

async fn health_reports_database_and_cache(app: TestApp) {
    let body = app.get("/healthz", None).await.expect(200);
    assert_eq!(body["database"], "ok");
    assert_eq!(body["cache"], "ok");
}

async fn admin_courses_second_call_is_a_cache_hit(app: TestApp) {
    let admin = app.admin().await;
    app.create_course(&admin, "Rust for everyone", "PUBLISHED")
        .await;
    let first = app.get("/api/admin/courses", Some(&admin.token)).await;
    let second = app.get("/api/admin/courses", Some(&admin.token)).await;
    assert_eq!(first.cache.as_deref(), Some("MISS"));
    assert_eq!(second.cache.as_deref(), Some("HIT"));
    assert_eq!(first.body, second.body);
    assert_eq!(second.body["data"][0]["name"], "Rust for everyone");
    assert_eq!(second.body["total"], 1);
    let _ = json!({});
}

on_both_backends!(
    health_reports_database_and_cache,
    admin_courses_second_call_is_a_cache_hit
);
