//! `GET /metrics` on its own listener (`--metrics-addr`): requests by route template, cache and
//! database figures, bounded labels, and the alert rules in `deploy/prometheus` that use them.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use testkit::{Proxy, RedisServer, free_port};

use crate::database_outage::postgres_port;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with, unique};
use crate::on_both_backends_with_config;

/// The alert rules, and their unit tests, in the repository.
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/prometheus/youcode-alerts.yml"
);
const RULE_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/prometheus/youcode-alerts.test.yml"
);

/// How long a test waits for a figure that changes in the background.
const SETTLES_WITHIN: Duration = Duration::from_secs(10);

/// The app on `backend`, serving metrics on a free port.
async fn app_with_metrics(backend: Backend) -> TestApp {
    spawn_app_with(backend, with_metrics).await
}

fn with_metrics(config: &mut youcode::config::Config) {
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
}

/// `GET /metrics`, whose answer must be the Prometheus text format.
async fn scrape(app: &TestApp) -> String {
    let address = app.metrics_address.as_deref().expect("metrics are on");
    let response = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// One sample line: `name{label="value",…} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a numeric value"),
            }
        })
        .collect()
}

/// The sum of the samples of `name` that carry every label of `labels` (other labels may
/// differ); `None` when there is none.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples(text)
        .into_iter()
        .filter(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
        .map(|sample| sample.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

#[track_caller]
fn expect_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
}

/// Scrapes until `name{labels}` satisfies `wanted`, for at most [`SETTLES_WITHIN`].
async fn until(
    app: &TestApp,
    name: &str,
    labels: &[(&str, &str)],
    wanted: impl Fn(f64) -> bool,
) -> String {
    let deadline = Instant::now() + SETTLES_WITHIN;
    loop {
        let text = scrape(app).await;
        if value(&text, name, labels).is_some_and(&wanted) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{name} {labels:?} never came as wanted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn requests_are_counted_by_route_template_method_status_and_x_cache(backend: Backend) {
    let app = app_with_metrics(backend).await;
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Rust", "PUBLISHED").await;
    let token = Some(admin.token.as_str());
    app.get("/api/admin/courses", token)
        .await
        .expect_cache(200, "MISS");
    app.get("/api/admin/courses", token)
        .await
        .expect_cache(200, "HIT");
    app.get(&format!("/api/admin/courses/{course}"), token)
        .await
        .expect_cache(200, "MISS");

    let text = scrape(&app).await;

    let list = [("route", "/api/admin/courses"), ("method", "GET")];
    let requests = "youcode_http_requests_total";
    for cache in ["MISS", "HIT"] {
        let labels = [list[0], list[1], ("status", "200"), ("cache", cache)];
        assert_eq!(expect_value(&text, requests, &labels), 1.0, "{cache}");
    }
    let detail = [
        ("route", "/api/admin/courses/{course_id}"),
        ("cache", "MISS"),
    ];
    assert_eq!(expect_value(&text, requests, &detail), 1.0);
    let created = [
        ("route", "/api/admin/courses"),
        ("method", "POST"),
        ("status", "201"),
        ("cache", "none"),
    ];
    assert_eq!(expect_value(&text, requests, &created), 1.0);

    let hit = [list[0], list[1], ("cache", "HIT")];
    let duration = "youcode_http_request_duration_seconds";
    let every = [hit[0], hit[1], hit[2], ("le", "+Inf")];
    assert_eq!(
        expect_value(&text, &format!("{duration}_bucket"), &every),
        1.0
    );
    let within_ten_seconds = [hit[0], hit[1], hit[2], ("le", "10")];
    assert_eq!(
        expect_value(&text, &format!("{duration}_bucket"), &within_ten_seconds),
        1.0
    );
    assert_eq!(expect_value(&text, &format!("{duration}_count"), &hit), 1.0);
    assert!(expect_value(&text, &format!("{duration}_sum"), &hit) > 0.0);

    let lookups = "youcode_cache_lookups_total";
    let prefix = ("prefix", "admin:courses");
    assert!(expect_value(&text, lookups, &[prefix, ("outcome", "hit")]) >= 1.0);
    assert!(expect_value(&text, lookups, &[prefix, ("outcome", "miss")]) >= 1.0);
    assert!(expect_value(&text, "youcode_cache_invalidations_total", &[]) >= 1.0);
    assert!(
        expect_value(
            &text,
            "youcode_cache_store_call_duration_seconds_count",
            &[]
        ) > 0.0
    );
    assert!(expect_value(&text, "youcode_db_statements_total", &[]) > 0.0);
    assert_eq!(expect_value(&text, "youcode_database_up", &[]), 1.0);
    assert_eq!(expect_value(&text, "youcode_cache_breaker_open", &[]), 0.0);
    assert_eq!(
        expect_value(&text, "youcode_cache_pending_invalidations", &[]),
        0.0
    );
    let max = expect_value(&text, "youcode_db_connections_max", &[]);
    let open = expect_value(&text, "youcode_db_connections", &[]);
    assert!(open >= 1.0 && open <= max, "{open} of {max}");
    if backend == Backend::PostgresRedis {
        assert_eq!(expect_value(&text, "youcode_cache_bus_live", &[]), 1.0);
        assert!(expect_value(&text, "youcode_cache_local_tier_entries", &[]) >= 1.0);
        expect_value(
            &text,
            "youcode_cache_bus_invalidation_wait_seconds",
            &[("stat", "p99")],
        );
    }
}

on_both_backends_with_config!(requests_are_counted_by_route_template_method_status_and_x_cache);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_paths_and_user_input_never_become_label_values() {
    let app = app_with_metrics(Backend::SqliteMemory).await;
    let user = app.user().await;
    let course = uuid::Uuid::new_v4().to_string();
    let search = unique("needle");
    let path = unique("nowhere");
    let method = format!("PROBE{}", rand::random::<u32>());

    app.get(&format!("/api/user/courses/{course}"), Some(&user.token))
        .await
        .expect_error(404, "not_found");
    app.get(&format!("/api/public/lessons?search={search}"), None)
        .await
        .expect(200);
    app.get(&format!("/{path}/{course}"), None)
        .await
        .expect_error(404, "not_found");
    app.call(
        Method::from_bytes(method.as_bytes()).unwrap(),
        "/api/me",
        Some(&user.token),
        None,
    )
    .await;

    let text = scrape(&app).await;

    for raw in [&course, &search, &path, &method] {
        assert!(!text.contains(raw.as_str()), "{raw} is in the metrics");
    }
    let requests = "youcode_http_requests_total";
    let template = [
        ("route", "/api/user/courses/{course_id}"),
        ("status", "404"),
    ];
    assert_eq!(expect_value(&text, requests, &template), 1.0);
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(expect_value(&text, requests, &unmatched), 1.0);
    assert_eq!(
        expect_value(
            &text,
            requests,
            &[("route", "/api/me"), ("method", "other")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_by_default_and_never_served_on_the_api_address() {
    let off = spawn_app(Backend::SqliteMemory).await;
    assert_eq!(off.metrics_address, None);
    off.get("/metrics", None)
        .await
        .expect_error(404, "not_found");

    let on = app_with_metrics(Backend::SqliteMemory).await;
    on.get("/metrics", None)
        .await
        .expect_error(404, "not_found");
    let elsewhere = on
        .client
        .get(format!("{}/api/me", on.metrics_address.as_ref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
    let body: serde_json::Value = elsewhere.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    scrape(&on).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_store_errors_the_breaker_and_pending_invalidations_show() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let app = spawn_app_with(Backend::PostgresRedis, |config| {
        with_metrics(config);
        config.cache.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    let admin = app.admin().await;
    app.warm("/api/public/lessons", None).await;
    let before = scrape(&app).await;
    assert_eq!(
        expect_value(&before, "youcode_cache_store_errors_total", &[]),
        0.0
    );

    redis.stop();
    let deadline = Instant::now() + SETTLES_WITHIN;
    let mut bypassed = false;
    while !app.state.cache.is_circuit_open() {
        assert!(Instant::now() < deadline, "the breaker never opened");
        let reply = app.get("/api/public/lessons", None).await;
        bypassed |= reply.cache.as_deref() == Some("BYPASS");
    }
    assert!(bypassed, "no read went around the store");
    app.post(
        "/api/admin/courses",
        Some(&admin.token),
        json!({"name": "Written while Redis is down"}),
    )
    .await
    .expect(201);

    let text = until(
        &app,
        "youcode_cache_oldest_pending_invalidation_seconds",
        &[],
        |seconds| seconds > 0.0,
    )
    .await;
    assert!(expect_value(&text, "youcode_cache_store_errors_total", &[]) > 0.0);
    assert_eq!(expect_value(&text, "youcode_cache_breaker_open", &[]), 1.0);
    assert!(expect_value(&text, "youcode_cache_pending_invalidations", &[]) >= 1.0);
    let slowest = [("le", "+Inf")];
    let calls = expect_value(
        &text,
        "youcode_cache_store_call_duration_seconds_bucket",
        &slowest,
    );
    let before_calls = expect_value(
        &before,
        "youcode_cache_store_call_duration_seconds_count",
        &[],
    );
    assert!(
        calls > before_calls,
        "{calls} store calls, {before_calls} before"
    );
    let bypasses = [("route", "/api/public/lessons"), ("cache", "BYPASS")];
    assert!(expect_value(&text, "youcode_http_requests_total", &bypasses) >= 1.0);
    assert_eq!(expect_value(&text, "youcode_database_up", &[]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_up_follows_the_database() {
    let proxy = Proxy::start(postgres_port()).await;
    let app = spawn_app_with(Backend::PostgresRedis, |config| {
        with_metrics(config);
        config.database_url = proxy.in_front_of(&config.database_url);
    })
    .await;
    assert_eq!(
        expect_value(&scrape(&app).await, "youcode_database_up", &[]),
        1.0
    );

    proxy.shut();
    until(&app, "youcode_database_up", &[], |up| up == 0.0).await;

    proxy.restore();
    until(&app, "youcode_database_up", &[], |up| up == 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_left_behind_are_counted_when_the_relay_applies_them() {
    let app = app_with_metrics(Backend::SqliteMemory).await;
    let text = scrape(&app).await;
    assert_eq!(
        expect_value(&text, "youcode_outbox_rows_relayed_total", &[]),
        0.0
    );

    // A row a crashed writer left, without tags: the relay invalidates the whole namespace.
    sqlx::query("INSERT INTO cache_outbox (created_at) VALUES ($1)")
        .bind(0_i64)
        .execute(app.state.db.pool())
        .await
        .unwrap();

    until(&app, "youcode_outbox_rows_relayed_total", &[], |rows| {
        rows == 1.0
    })
    .await;
}

/// `promtool`, which `scripts/test` installs (Debian's `prometheus` package).
fn promtool() -> Command {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "promtool is missing: scripts/test installs it (apt-get install prometheus)"
    );
    Command::new("promtool")
}

#[track_caller]
fn succeeds(command: &mut Command) -> String {
    let output = command.output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?}:\n{said}");
    said
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    succeeds(promtool().args(["check", "rules", RULES]));
    succeeds(promtool().args(["test", "rules", RULE_TESTS]));
}

/// Every metric name the alert rules use.
fn metrics_in_rules() -> Vec<String> {
    let rules = std::fs::read_to_string(RULES).unwrap();
    let mut names: Vec<String> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("youcode_"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alert_rules_use_is_exported() {
    let app = app_with_metrics(Backend::SqliteMemory).await;
    app.warm("/api/public/lessons", None).await;

    let text = scrape(&app).await;

    let names = metrics_in_rules();
    assert!(names.len() >= 5, "{names:?}");
    let exported: Vec<String> = samples(&text).into_iter().map(|s| s.name).collect();
    for name in names {
        assert!(
            exported.contains(&name),
            "{name} is used by the rules, not exported"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_pass_promtool_check_metrics() {
    let app = app_with_metrics(Backend::PostgresRedis).await;
    let admin = app.admin().await;
    app.create_course(&admin, "Rust", "PUBLISHED").await;
    app.warm("/api/admin/courses", Some(&admin.token)).await;
    let text = scrape(&app).await;

    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
