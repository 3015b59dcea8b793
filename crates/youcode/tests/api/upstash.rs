//! `--cache upstash` with a token the database refuses: every read still answers, from the
//! database (`BYPASS`), and `/healthz` says why, without the token.

use youcode::config::UpstashArgs;

use crate::helpers::{Backend, spawn_app_with, upstash_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upstash_token_bypasses_the_cache_and_health_says_so() {
    let gateway = upstash_gateway().await;
    let wrong = "wrong-token-never-shown";
    let app = spawn_app_with(Backend::PostgresUpstash, |config| {
        config.cache.upstash = UpstashArgs {
            upstash_url: gateway.upstash_url.clone(),
            upstash_token: Some(wrong.parse().unwrap()),
        };
    })
    .await;
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Rust", "PUBLISHED").await;

    for _ in 0..3 {
        let path = format!("/api/admin/courses/{course}");
        let reply = app.get(&path, Some(&admin.token)).await;
        assert_eq!(reply.cache.as_deref(), Some("BYPASS"), "{:?}", reply.body);
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    }

    let health = app.get("/healthz", None).await.expect(200);
    assert_eq!(health["cache"], "degraded", "{health}");
    let error = health["cacheError"].as_str().unwrap_or_default();
    assert!(error.contains("refused the token"), "{health}");
    assert!(!health.to_string().contains(wrong), "{health}");
}
