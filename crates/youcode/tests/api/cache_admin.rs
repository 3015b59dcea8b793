//! Cache administration (stats, clear, invalidate, the legacy route) and `/healthz`.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, keys};
use crate::on_both_backends;

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// The `sampleKeys` of a stats answer.
fn sample_keys(stats: &Value) -> Vec<&str> {
    stats["sampleKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect()
}

async fn stats_report_real_figures_after_some_reads(app: TestApp) {
    let admin = app.admin().await;
    app.create_course(&admin, "Course", "PUBLISHED").await;
    app.warm("/api/admin/courses", Some(&admin.token)).await;
    app.warm("/api/public/lessons", None).await;
    app.get("/api/public/lessons", None)
        .await
        .expect_cache(200, "HIT");

    let stats = app
        .get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect(200);

    for key in [
        "totalKeys",
        "memoryBytes",
        "hits",
        "misses",
        "stale",
        "bypasses",
        "hitRatio",
        "errors",
        "sets",
        "invalidations",
        "dbQueries",
        "routes",
        "sampleKeys",
    ] {
        assert!(stats.get(key).is_some(), "stats lack {key}: {stats}");
    }
    let routes = &stats["routes"];
    assert_eq!(
        routes["admin:courses"],
        json!({"hits": 1, "misses": 1, "stale": 0, "bypasses": 0, "hitRatio": 0.5})
    );
    assert_eq!(
        (
            &routes["public:lessons"]["hits"],
            &routes["public:lessons"]["misses"]
        ),
        (&json!(2), &json!(1))
    );
    let route_hits: u64 = routes
        .as_object()
        .unwrap()
        .values()
        .map(|r| count(&r["hits"]))
        .sum();
    let route_misses: u64 = routes
        .as_object()
        .unwrap()
        .values()
        .map(|r| count(&r["misses"]))
        .sum();
    assert_eq!(count(&stats["hits"]), route_hits);
    assert_eq!(count(&stats["misses"]), route_misses);
    assert!(count(&stats["hits"]) >= 3 && count(&stats["misses"]) >= 2);
    let ratio = stats["hitRatio"].as_f64().unwrap();
    let expected = route_hits as f64 / (route_hits + route_misses) as f64;
    assert!((ratio - expected).abs() < 1e-9, "{ratio} vs {expected}");
    assert!(count(&stats["totalKeys"]) >= 2);
    assert!(count(&stats["sets"]) >= 2);
    assert!(count(&stats["dbQueries"]) > 0);
    assert_eq!(count(&stats["errors"]), 0);
    assert!(count(&stats["memoryBytes"]) > 0);
    match app.backend {
        Backend::SqliteMemory => {
            assert_eq!(
                stats["fleet"],
                Value::Null,
                "one SQLite instance has no bus"
            );
            assert_eq!(count(&stats["localHits"]), 0);
        }
        Backend::PostgresRedis => {
            assert!(
                count(&stats["localHits"]) >= 1,
                "repeated reads hit the local tier"
            );
            assert!(count(&stats["localHits"]) <= count(&stats["hits"]));
            assert!(count(&stats["localTier"]["keys"]) >= 1, "{stats}");
            assert_eq!(stats["fleet"]["bus"], "redis");
            assert_eq!(stats["fleet"]["live"], true);
        }
        Backend::PostgresUpstash => {
            assert_eq!(
                stats["fleet"],
                Value::Null,
                "instances share the store, no bus"
            );
            assert_eq!(count(&stats["localHits"]), 0);
        }
    }
    assert_eq!(
        stats["backend"],
        match app.backend {
            Backend::SqliteMemory => "memory",
            Backend::PostgresRedis => "tiered",
            Backend::PostgresUpstash => "upstash",
        }
    );
    let samples = sample_keys(&stats);
    assert!(
        samples.iter().any(|k| k.contains("admin:courses")),
        "{samples:?}"
    );
}

async fn stats_show_no_admin_another_admins_data(app: TestApp) {
    let (owner, other) = (app.admin().await, app.admin().await);
    let course = app.create_course(&owner, "Private plans", "DRAFT").await;
    app.warm("/api/admin/courses?search=private", Some(&owner.token))
        .await;
    app.warm(&format!("/api/admin/courses/{course}"), Some(&owner.token))
        .await;
    let token_hash = youcode::auth::token_hash(&owner.token);

    let stats = app
        .get("/api/admin/cache/stats", Some(&other.token))
        .await
        .expect(200);

    let samples = sample_keys(&stats);
    assert!(
        samples.iter().any(|k| k.contains("admin:course")),
        "{samples:?}"
    );
    for secret in [owner.id.as_str(), course.as_str(), &token_hash, "private"] {
        assert!(
            !samples.iter().any(|k| k.contains(secret)),
            "{secret} shown in {samples:?}"
        );
    }
}

async fn writes_are_counted_as_invalidations(app: TestApp) {
    let admin = app.admin().await;
    let before = app
        .get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect(200);

    app.create_course(&admin, "Course", "DRAFT").await;

    let after = app
        .get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect(200);
    assert!(count(&after["invalidations"]) > count(&before["invalidations"]));
}

async fn clear_empties_the_cache_and_the_next_read_misses(app: TestApp) {
    let admin = app.admin().await;
    app.create_course(&admin, "Course", "PUBLISHED").await;
    app.warm("/api/admin/courses", Some(&admin.token)).await;
    app.warm("/api/public/lessons", None).await;
    let before = app
        .get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect(200);

    let cleared = app
        .post("/api/admin/cache/clear", Some(&admin.token), json!({}))
        .await
        .expect(200);

    assert_eq!(keys(&cleared), ["deletedKeys"]);
    assert!(count(&cleared["deletedKeys"]) >= count(&before["totalKeys"]));
    let after = app
        .get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect(200);
    // Only what the stats request itself needed (its session) may be back.
    assert!(
        count(&after["totalKeys"]) < count(&before["totalKeys"]),
        "before {before}, after {after}"
    );
    assert!(
        !after["sampleKeys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k.as_str().unwrap().contains("courses")),
        "{after}"
    );
    let list = app
        .get("/api/admin/courses", Some(&admin.token))
        .await
        .expect_cache(200, "MISS");
    assert_eq!(list["data"][0]["name"], "Course");
    app.get("/api/public/lessons", None)
        .await
        .expect_cache(200, "MISS");
}

async fn invalidating_a_course_tag_makes_only_that_course_miss(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Target", "PUBLISHED").await;
    let other = app.create_course(&admin, "Bystander", "PUBLISHED").await;
    let target_path = format!("/api/admin/courses/{course}");
    let other_path = format!("/api/admin/courses/{other}");
    app.warm(&target_path, Some(&admin.token)).await;
    app.warm(&other_path, Some(&admin.token)).await;

    let answer = app
        .post(
            "/api/admin/cache/invalidate",
            Some(&admin.token),
            json!({"tags": [format!("course:{course}")]}),
        )
        .await
        .expect(200);

    assert_eq!(answer["invalidated"], 1);
    let target = app
        .get(&target_path, Some(&admin.token))
        .await
        .expect_cache(200, "MISS");
    assert_eq!(target["name"], "Target");
    app.get(&other_path, Some(&admin.token))
        .await
        .expect_cache(200, "HIT");
}

async fn invalidate_wants_at_least_one_tag(app: TestApp) {
    let admin = app.admin().await;

    let empty = app
        .post(
            "/api/admin/cache/invalidate",
            Some(&admin.token),
            json!({"tags": []}),
        )
        .await;
    let blank = app
        .post(
            "/api/admin/cache/invalidate",
            Some(&admin.token),
            json!({"tags": [""]}),
        )
        .await;

    assert!(empty.expect_error(400, "invalid_body").contains("tags"));
    assert!(blank.expect_error(400, "invalid_body").contains("tags"));
}

async fn a_user_can_neither_read_nor_clear_the_cache(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    app.warm("/api/admin/courses", Some(&admin.token)).await;

    let stats = app.get("/api/admin/cache/stats", Some(&user.token)).await;
    let clear = app
        .post("/api/admin/cache/clear", Some(&user.token), json!({}))
        .await;
    let legacy_clear = app
        .get("/api/test/cache?action=clear", Some(&user.token))
        .await;

    stats.expect_error(403, "forbidden");
    clear.expect_error(403, "forbidden");
    legacy_clear.expect_error(403, "forbidden");
    app.get("/api/admin/courses", Some(&admin.token))
        .await
        .expect_cache(200, "HIT");
}

async fn the_legacy_route_answers_stats_and_clear_for_admins_only(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    app.warm("/api/admin/courses", Some(&admin.token)).await;

    let stats = app
        .get("/api/test/cache?action=stats", Some(&admin.token))
        .await
        .expect(200);
    let default = app
        .get("/api/test/cache", Some(&admin.token))
        .await
        .expect(200);
    let as_user = app
        .get("/api/test/cache?action=stats", Some(&user.token))
        .await;
    let anonymous = app.get("/api/test/cache?action=stats", None).await;
    let unknown = app
        .get("/api/test/cache?action=explode", Some(&admin.token))
        .await;

    assert_eq!(stats["routes"]["admin:courses"]["hits"], 1);
    assert!(count(&stats["totalKeys"]) > 0);
    assert!(default.get("totalKeys").is_some(), "{default}");
    as_user.expect_error(403, "forbidden");
    anonymous.expect_error(401, "unauthorized");
    assert!(
        unknown
            .expect_error(400, "invalid_param")
            .starts_with("action")
    );
    let cleared = app
        .get("/api/test/cache?action=clear", Some(&admin.token))
        .await
        .expect(200);
    assert!(count(&cleared["deletedKeys"]) > 0);
    app.get("/api/admin/courses", Some(&admin.token))
        .await
        .expect_cache(200, "MISS");
}

async fn cache_administration_wants_a_token(app: TestApp) {
    let stats = app.get("/api/admin/cache/stats", None).await;
    let clear = app.post("/api/admin/cache/clear", None, json!({})).await;
    let invalidate = app
        .post(
            "/api/admin/cache/invalidate",
            None,
            json!({"tags": ["courses"]}),
        )
        .await;

    stats.expect_error(401, "unauthorized");
    clear.expect_error(401, "unauthorized");
    invalidate.expect_error(401, "unauthorized");
}

async fn health_reports_the_database_and_the_cache_ok(app: TestApp) {
    let mut body = app.get("/healthz", None).await.expect(200);

    let bus = body.as_object_mut().unwrap().remove("bus");
    let local_hits = body.as_object_mut().unwrap().remove("localHits");
    let alerts = body.as_object_mut().unwrap().remove("alerts");
    assert_eq!(
        alerts,
        Some(json!([])),
        "a healthy instance raises no alert"
    );
    assert_eq!(
        body,
        json!({"status": "ok", "database": "ok", "cache": "ok"})
    );
    match app.backend {
        // One SQLite instance: no bus.
        Backend::SqliteMemory => assert_eq!((bus, local_hits), (None, None)),
        Backend::PostgresRedis => {
            let bus = bus.expect("instances sharing Redis hear each other on its bus");
            assert_eq!(
                (&bus["name"], &bus["state"]),
                (&json!("redis"), &json!("ok"))
            );
            assert_eq!(bus["instances"], 1, "{bus}");
            assert_eq!(bus["instance"].as_str().map(str::len), Some(16), "{bus}");
            assert!(
                local_hits.is_some_and(|hits| hits.is_u64()),
                "the tier's hits are shown"
            );
        }
        Backend::PostgresUpstash => assert_eq!((bus, local_hits), (None, None)),
    }
}

async fn with_the_database_down_health_is_503_and_cached_reads_still_answer(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let cached = app.warm("/api/admin/courses", Some(&admin.token)).await;

    app.state.db.close().await;

    let health = app.get("/healthz", None).await;
    assert_eq!(health.status.as_u16(), 503, "{}", health.body);
    assert_eq!(
        (&health.body["status"], &health.body["database"]),
        (&json!("down"), &json!("down"))
    );
    let hit = app
        .get("/api/admin/courses", Some(&admin.token))
        .await
        .expect_cache(200, "HIT");
    assert_eq!(hit, cached);
    let uncached = app
        .get(&format!("/api/admin/courses/{course}"), Some(&admin.token))
        .await;
    assert_eq!(uncached.retry_after.as_deref(), Some("1"));
    uncached.expect_error(503, "unavailable");
}

on_both_backends!(
    stats_report_real_figures_after_some_reads,
    stats_show_no_admin_another_admins_data,
    writes_are_counted_as_invalidations,
    clear_empties_the_cache_and_the_next_read_misses,
    invalidating_a_course_tag_makes_only_that_course_miss,
    invalidate_wants_at_least_one_tag,
    a_user_can_neither_read_nor_clear_the_cache,
    the_legacy_route_answers_stats_and_clear_for_admins_only,
    cache_administration_wants_a_token,
    health_reports_the_database_and_the_cache_ok,
    with_the_database_down_health_is_503_and_cached_reads_still_answer,
);
