//! Shared pages past their TTL: answered at once as `STALE` while one fetch refreshes them
//! (stale-while-revalidate), never once a write invalidated them.

use std::time::Duration;

use cachette::Policy;
use serde_json::json;
use youcode::config::Config;

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::on_both_backends_with_config;

/// The course pages' TTL in these tests.
const TTL: Duration = Duration::from_secs(1);
/// Longer than the TTL: the page has expired.
const PAST_TTL: Duration = Duration::from_millis(1500);
/// How long a test waits for a background refresh before failing.
const REFRESH_LIMIT: Duration = Duration::from_secs(10);

/// An app whose course pages live `TTL` exactly, then `stale_while_revalidate` more.
async fn app_with_short_pages(backend: Backend, stale_while_revalidate: Duration) -> TestApp {
    spawn_app_with(backend, |config: &mut Config| {
        let pages = &mut config.cache.policies.course_detail;
        *pages = Policy {
            jitter: 0.0,
            stale_while_revalidate,
            ..pages.with_ttl(TTL)
        };
    })
    .await
}

/// A published course whose page a user has read twice (it is cached).
struct CoursePage {
    user: String,
    path: String,
    admin: String,
    admin_path: String,
}

impl CoursePage {
    async fn new(app: &TestApp) -> Self {
        let admin = app.admin().await;
        let user = app.user().await;
        let course = app.create_course(&admin, "Shared page", "PUBLISHED").await;
        let page = Self {
            user: user.token,
            path: format!("/api/user/courses/{course}"),
            admin: admin.token,
            admin_path: format!("/api/admin/courses/{course}"),
        };
        app.get(&page.path, Some(&page.user)).await.expect(200);
        app.get(&page.path, Some(&page.user))
            .await
            .expect_cache(200, "HIT");
        page
    }
}

async fn an_expired_course_page_is_answered_stale_at_once_then_refreshed(backend: Backend) {
    let app = app_with_short_pages(backend, Duration::from_secs(60)).await;
    let page = CoursePage::new(&app).await;
    tokio::time::sleep(PAST_TTL).await;

    let stale = app
        .get(&page.path, Some(&page.user))
        .await
        .expect_cache(200, "STALE");

    assert_eq!(stale["name"], "Shared page");
    let refreshed = async {
        loop {
            let reply = app.get(&page.path, Some(&page.user)).await;
            if reply.cache.as_deref() == Some("HIT") {
                return reply.expect(200);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let fresh = tokio::time::timeout(REFRESH_LIMIT, refreshed)
        .await
        .expect("the page was refreshed in the background");
    assert_eq!(fresh, stale);
}

async fn a_course_renamed_after_its_page_expired_is_never_answered_stale(backend: Backend) {
    let app = app_with_short_pages(backend, Duration::from_secs(60)).await;
    let page = CoursePage::new(&app).await;
    tokio::time::sleep(PAST_TTL).await;

    app.patch(
        &page.admin_path,
        Some(&page.admin),
        json!({"name": "Renamed page"}),
    )
    .await
    .expect(200);

    let reply = app.get(&page.path, Some(&page.user)).await;
    assert_ne!(reply.cache.as_deref(), Some("STALE"));
    assert_eq!(reply.expect(200)["name"], "Renamed page");
}

async fn without_stale_while_revalidate_an_expired_page_is_fetched(backend: Backend) {
    let app = app_with_short_pages(backend, Duration::ZERO).await;
    let page = CoursePage::new(&app).await;
    tokio::time::sleep(PAST_TTL).await;

    app.get(&page.path, Some(&page.user))
        .await
        .expect_cache(200, "MISS");
}

on_both_backends_with_config!(
    an_expired_course_page_is_answered_stale_at_once_then_refreshed,
    a_course_renamed_after_its_page_expired_is_never_answered_stale,
    without_stale_while_revalidate_an_expired_page_is_fetched,
);
