//! The dashboard (`/admin`) and its data routes, and the alerts `/healthz` shows.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::on_both_backends;

/// Longest wait for something the dashboard shows within about a second.
const WAIT: Duration = Duration::from_secs(15);

const DATA_ROUTES: [&str; 2] = [
    "/api/admin/dashboard/summary",
    "/api/admin/dashboard/events",
];

async fn the_page_and_its_assets_need_no_token(app: TestApp) {
    for (path, content_type, sample) in [
        ("/admin", "text/html", "YouCode cache"),
        (
            "/admin/dashboard.js",
            "text/javascript",
            "/api/admin/dashboard/events",
        ),
        ("/admin/dashboard.css", "text/css", "--accent"),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}: {headers:?}"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'"),
            "{path}: nothing is loaded from elsewhere"
        );
        assert!(response.text().await.unwrap().contains(sample), "{path}");
    }
}

async fn the_data_routes_are_for_admins_only(app: TestApp) {
    let user = app.user().await;
    // Bounded: a stream opened by mistake would never end.
    let refusals = async {
        for path in DATA_ROUTES {
            let message = app.get(path, None).await.expect_error(401, "unauthorized");
            assert!(!message.is_empty(), "{path}");
            app.get(path, Some("not-a-token"))
                .await
                .expect_error(401, "unauthorized");
            app.get(path, Some(&user.token))
                .await
                .expect_error(403, "forbidden");
        }
    };
    tokio::time::timeout(WAIT, refusals)
        .await
        .expect("a refusal answers at once, it never opens a stream");
}

/// The summary, as an admin sees it.
async fn summary(app: &TestApp, token: &str) -> Value {
    app.get("/api/admin/dashboard/summary", Some(token))
        .await
        .expect(200)
}

/// The row of `route` in a summary's `routes`.
fn route<'a>(summary: &'a Value, method: &str, route: &str) -> &'a Value {
    summary["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["method"] == method && row["route"] == route)
        .unwrap_or_else(|| panic!("no {method} {route} in {}", summary["routes"]))
}

async fn the_summary_counts_requests_per_route_template_and_the_keys_stored(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.warm(&format!("/api/admin/courses/{course}"), Some(&admin.token))
        .await;
    app.get("/api/no/such/route?secret=1", None)
        .await
        .expect(404);

    let before = summary(&app, &admin.token).await;

    let detail = route(&before, "GET", "/api/admin/courses/{course_id}");
    assert_eq!(
        (&detail["requests"], &detail["hits"], &detail["misses"]),
        (&json!(2), &json!(1), &json!(1)),
        "{detail}"
    );
    assert!(detail["meanMs"].as_f64().unwrap() > 0.0, "{detail}");
    let text = before["routes"].to_string();
    assert!(
        !text.contains(&course) && !text.contains("secret") && !text.contains("/no/such"),
        "routes show templates, never raw paths: {text}"
    );
    route(&before, "GET", "(unmatched)");
    assert_eq!(before["store"]["health"], "ok", "{before}");
    let keys = before["store"]["keys"].as_u64().unwrap();
    assert!(keys > 0, "{before}");
    assert!(before["store"]["memoryBytes"].as_u64().unwrap() > 0);
    assert!(before["lookups"]["hits"].as_u64().unwrap() >= 1);
    assert_eq!(
        (&before["breakerOpen"], &before["pendingInvalidations"]),
        (&json!(false), &json!(false))
    );

    app.post("/api/admin/cache/clear", Some(&admin.token), json!({}))
        .await
        .expect(200);
    let after = summary(&app, &admin.token).await;

    assert!(
        after["store"]["keys"].as_u64().unwrap() < keys,
        "clearing drops the key count: {} then {}",
        before["store"],
        after["store"]
    );
}

/// Reads server-sent events from `response` until `wanted` holds for one of their data, or
/// [`WAIT`] passes; the events read.
async fn read_events_until(
    response: &mut reqwest::Response,
    wanted: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut buffer = String::new();
    let read = tokio::time::timeout(WAIT, async {
        loop {
            let chunk = response
                .chunk()
                .await
                .expect("the stream reads")
                .expect("the stream stays open");
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut lines = block.lines();
                if lines.next() != Some("event: invalidation") {
                    continue;
                }
                let data = lines
                    .find_map(|line| line.strip_prefix("data: "))
                    .expect("an event carries data");
                let event: Value = serde_json::from_str(data).unwrap();
                let done = wanted(&event);
                seen.push(event);
                if done {
                    return;
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the awaited event never came; saw {seen:?}");
    seen
}

async fn invalidations_appear_on_the_event_stream_as_they_happen(app: TestApp) {
    let admin = app.admin().await;
    let mut stream = app
        .client
        .get(format!("{}/api/admin/dashboard/events", app.address))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    app.create_course(&admin, "Course", "PUBLISHED").await;
    let write = read_events_until(&mut stream, |event| event["source"] == "write").await;
    app.post(
        "/api/admin/cache/invalidate",
        Some(&admin.token),
        json!({"tags": ["course:typed by an admin"]}),
    )
    .await
    .expect(200);
    let typed = read_events_until(&mut stream, |event| event["source"] == "adminTags").await;
    app.post("/api/admin/cache/clear", Some(&admin.token), json!({}))
        .await
        .expect(200);
    let cleared = read_events_until(&mut stream, |event| event["source"] == "adminClear").await;

    // The new course changes its admin's list, tagged `admin-courses:<admin id>`.
    let write = write.last().unwrap();
    assert_eq!(
        write["tags"],
        json!(["admin-courses"]),
        "a write shows the kinds of its tags, not their ids: {write}"
    );
    assert_eq!(
        (&write["count"], &write["applied"]),
        (&json!(1), &json!(true))
    );
    assert_eq!(
        typed.last().unwrap()["tags"],
        json!(["course:typed by an admin"])
    );
    assert!(cleared.last().unwrap()["count"].is_u64());
    let recent = summary(&app, &admin.token).await["recentInvalidations"].clone();
    let sources: Vec<&str> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["write", "adminTags", "adminClear"], "{recent}");
}

/// Polls `/healthz` until its alerts satisfy `wanted`, or [`WAIT`] passes; the last alerts.
async fn health_alerts_until(app: &TestApp, wanted: impl Fn(&Value) -> bool) -> Value {
    let started = tokio::time::Instant::now();
    loop {
        let alerts = app.get("/healthz", None).await.body["alerts"].clone();
        if wanted(&alerts) {
            return alerts;
        }
        assert!(
            started.elapsed() < WAIT,
            "the alerts never got there: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn names(alerts: &Value) -> Vec<&str> {
    alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["kind"].as_str().unwrap())
        .collect()
}

async fn a_low_hit_ratio_raises_an_alert_that_clears_when_hits_come_back(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.alerts.hit_ratio_floor = 0.9;
        config.alerts.min_lookups = 2;
    })
    .await;
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let detail = format!("/api/admin/courses/{course}");
    app.warm(&detail, Some(&admin.token)).await;

    // One miss and one hit: 0.5, below 0.9.
    let raised = health_alerts_until(&app, |alerts| names(alerts) == ["hitRatioLow"]).await;
    let alert = &raised[0];
    assert!(
        alert["message"].as_str().unwrap().starts_with("hit ratio"),
        "{alert}"
    );
    assert!(alert["since"].is_string(), "{alert}");
    let shown = summary(&app, &admin.token).await["alerts"].clone();
    assert_eq!(names(&shown), ["hitRatioLow"], "the dashboard shows it too");

    for _ in 0..20 {
        app.get(&detail, Some(&admin.token))
            .await
            .expect_cache(200, "HIT");
    }
    health_alerts_until(&app, |alerts| names(alerts).is_empty()).await;
}

async fn a_database_down_raises_an_alert(app: TestApp) {
    app.state.db.close().await;

    let alerts = health_alerts_until(&app, |alerts| names(alerts).contains(&"databaseDown")).await;

    assert!(!alerts.to_string().contains("sqlite") && !alerts.to_string().contains("postgres"));
}

on_both_backends!(
    the_page_and_its_assets_need_no_token,
    the_data_routes_are_for_admins_only,
    the_summary_counts_requests_per_route_template_and_the_keys_stored,
    invalidations_appear_on_the_event_stream_as_they_happen,
    a_database_down_raises_an_alert,
);

mod thresholds {
    crate::on_both_backends_with_config!(
        a_low_hit_ratio_raises_an_alert_that_clears_when_hits_come_back
    );
    use super::a_low_hit_ratio_raises_an_alert_that_clears_when_hits_come_back;
}
