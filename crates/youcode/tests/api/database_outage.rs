//! The database unreachable for a while (a proxy the test cuts, in front of the shared
//! PostgreSQL server, which is never stopped): no 500 during or after the outage, cached reads
//! keep answering, everything else answers 503 with `Retry-After`, and once the database is
//! back no request fails because of it.

use std::time::Duration;

use serde_json::json;
use testkit::Proxy;

use crate::helpers::{Backend, Reply, TestApp, postgres_url, spawn_app_with, unique};

/// Longest a request may take while the database is unreachable.
const OUTAGE_ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// The app on PostgreSQL behind `proxy` (its cache in Redis, whose bus the outage leaves up).
async fn app_behind(proxy: &Proxy) -> TestApp {
    spawn_app_with(Backend::PostgresRedis, |config| {
        config.database_url = proxy.in_front_of(&config.database_url);
    })
    .await
}

/// The port of the PostgreSQL server the tests use.
pub(crate) fn postgres_port() -> u16 {
    let url = postgres_url();
    let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let host = authority.rsplit('@').next().unwrap();
    host.rsplit_once(':')
        .map_or(5432, |(_, port)| port.parse().expect("a numeric port"))
}

/// `call`, which must answer within [`OUTAGE_ANSWER_LIMIT`].
async fn in_time(call: impl Future<Output = Reply>) -> Reply {
    tokio::time::timeout(OUTAGE_ANSWER_LIMIT, call)
        .await
        .expect("a request waited on the unreachable database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_whose_connections_are_cut_gives_503s_and_cached_pages_never_a_500() {
    an_unreachable_database_gives_503s_and_cached_pages_never_a_500(Proxy::cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_connections_gives_503s_at_once_and_cached_pages() {
    an_unreachable_database_gives_503s_and_cached_pages_never_a_500(Proxy::shut).await;
}

/// The database made unreachable by `fail`: its connections closed, new ones closed at once or
/// refused.
async fn an_unreachable_database_gives_503s_and_cached_pages_never_a_500(fail: fn(&Proxy)) {
    let proxy = Proxy::start(postgres_port()).await;
    let app = app_behind(&proxy).await;
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Outage", "PUBLISHED").await;
    let page = format!("/api/user/courses/{course}");
    app.warm(&page, Some(&user.token)).await;
    // Reads at once, so that the pool holds several connections when the outage breaks them.
    let searches = (0..8).map(|_| {
        let search = format!("/api/admin/courses?search={}", unique("before"));
        let app = &app;
        let token = admin.token.clone();
        async move { app.get(&search, Some(&token)).await.expect(200) }
    });
    futures::future::join_all(searches).await;

    fail(&proxy);

    let cached = in_time(app.get(&page, Some(&user.token))).await;
    assert_eq!(cached.expect(200)["name"], "Outage");
    let search = format!("/api/admin/courses?search={}", unique("s"));
    let uncached = in_time(app.get(&search, Some(&admin.token))).await;
    assert_eq!(uncached.retry_after.as_deref(), Some("1"));
    uncached.expect_error(503, "unavailable");
    let write = in_time(app.post(
        "/api/admin/courses",
        Some(&admin.token),
        json!({"name": "During", "state": "DRAFT", "presentation": "p"}),
    ))
    .await;
    write.expect_error(503, "unavailable");
    let health = in_time(app.get("/healthz", None)).await;
    assert_eq!(health.expect(503)["database"], "down");

    proxy.restore();

    // Every pooled connection was closed by the outage: none may fail a request now.
    for round in 0..20 {
        let search = format!("/api/admin/courses?search={}", unique("after"));
        let reply = app.get(&search, Some(&admin.token)).await;
        assert_eq!(
            reply.status.as_u16(),
            200,
            "request {round} after the outage: {}",
            reply.body
        );
    }
    app.post(
        "/api/admin/courses",
        Some(&admin.token),
        json!({"name": "After", "state": "DRAFT", "presentation": "p"}),
    )
    .await
    .expect(201);
}
