//! `GET /api/public/lessons`: PUBLIC lessons of PUBLISHED courses, for anyone.

use std::time::Duration;

use cachette::store::generation_ttl;
use cachette::{AnyStore, Store as _};
use serde_json::json;
use youcode::config::Policies;

use crate::helpers::{TestApp, keys, names, pluck};
use crate::on_both_backends;

async fn only_public_lessons_of_published_courses_are_listed(app: TestApp) {
    let admin = app.admin().await;
    let published = app.create_course(&admin, "Open course", "PUBLISHED").await;
    let draft = app.create_course(&admin, "Draft course", "DRAFT").await;
    app.create_lesson(&admin, &published, "Public one", "PUBLIC")
        .await;
    app.create_lesson(&admin, &published, "Members only", "PUBLISHED")
        .await;
    app.create_lesson(&admin, &published, "Hidden one", "HIDDEN")
        .await;
    app.create_lesson(&admin, &draft, "Public in draft", "PUBLIC")
        .await;

    let body = app.get("/api/public/lessons", None).await.expect(200);

    assert_eq!(names(&body), ["Public one"]);
    assert_eq!(body["total"], 1);
}

async fn a_public_lesson_item_has_its_rank_and_course(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Open course", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "Hidden first", "HIDDEN")
        .await;
    let lesson = app
        .create_lesson(&admin, &course, "Public second", "PUBLIC")
        .await;

    let body = app.get("/api/public/lessons", None).await.expect(200);

    let item = &body["data"][0];
    assert_eq!(keys(item), ["courseId", "courseName", "id", "name", "rank"]);
    assert_eq!(
        item,
        &json!({
            "id": lesson,
            "name": "Public second",
            "rank": 2,
            "courseId": course,
            "courseName": "Open course",
        })
    );
}

async fn lessons_are_ordered_by_course_name_then_rank(app: TestApp) {
    let admin = app.admin().await;
    let zebra = app.create_course(&admin, "Zebra course", "PUBLISHED").await;
    let apple = app.create_course(&admin, "Apple course", "PUBLISHED").await;
    app.create_lesson(&admin, &zebra, "Z1", "PUBLIC").await;
    app.create_lesson(&admin, &zebra, "Z2", "PUBLIC").await;
    app.create_lesson(&admin, &apple, "A1", "PUBLIC").await;
    let a2 = app.create_lesson(&admin, &apple, "A2", "PUBLIC").await;
    app.patch(
        &format!("/api/admin/courses/{apple}/lessons/{a2}"),
        Some(&admin.token),
        json!({"rank": 1}),
    )
    .await
    .expect(200);

    let body = app.get("/api/public/lessons", None).await.expect(200);

    assert_eq!(names(&body), ["A2", "A1", "Z1", "Z2"]);
    assert_eq!(
        pluck(&body, "rank"),
        [json!(1), json!(2), json!(1), json!(2)]
    );
}

async fn the_list_pages_with_a_default_limit_of_ten(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Big course", "PUBLISHED").await;
    for i in 1..=12 {
        app.create_lesson(&admin, &course, &format!("Lesson {i:02}"), "PUBLIC")
            .await;
    }

    let first = app.get("/api/public/lessons", None).await.expect(200);
    let second = app
        .get("/api/public/lessons?page=2", None)
        .await
        .expect(200);
    let by_five = app
        .get("/api/public/lessons?limit=5&page=3", None)
        .await
        .expect(200);

    assert_eq!(
        (
            &first["total"],
            &first["page"],
            &first["limit"],
            &first["totalPages"]
        ),
        (&json!(12), &json!(1), &json!(10), &json!(2))
    );
    assert_eq!(names(&first).len(), 10);
    assert_eq!(names(&first)[0], "Lesson 01");
    assert_eq!(names(&second), ["Lesson 11", "Lesson 12"]);
    assert_eq!(second["page"], 2);
    assert_eq!(names(&by_five), ["Lesson 11", "Lesson 12"]);
    assert_eq!(
        (&by_five["limit"], &by_five["totalPages"]),
        (&json!(5), &json!(3))
    );
}

async fn a_page_past_the_end_is_empty_but_keeps_the_total(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Small course", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "Only lesson", "PUBLIC")
        .await;

    let body = app
        .get("/api/public/lessons?page=4", None)
        .await
        .expect(200);

    assert_eq!(
        body,
        json!({"data": [], "total": 1, "page": 4, "limit": 10, "totalPages": 1})
    );
}

async fn search_ignores_case(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Languages", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "Rust basics", "PUBLIC")
        .await;
    app.create_lesson(&admin, &course, "Go basics", "PUBLIC")
        .await;

    let body = app
        .get("/api/public/lessons?search=rUsT", None)
        .await
        .expect(200);

    assert_eq!(names(&body), ["Rust basics"]);
    assert_eq!(body["total"], 1);
}

async fn search_ignores_case_of_accented_letters_too(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Languages", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "Élan vital", "PUBLIC")
        .await;
    app.create_lesson(&admin, &course, "Elan without accent", "PUBLIC")
        .await;

    let body = app
        .get("/api/public/lessons?search=%C3%A9lan", None)
        .await
        .expect(200);

    assert_eq!(names(&body), ["Élan vital"]);
}

async fn search_wildcards_are_matched_literally(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Discounts", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "100% coverage", "PUBLIC")
        .await;
    app.create_lesson(&admin, &course, "snake_case names", "PUBLIC")
        .await;
    app.create_lesson(&admin, &course, "Plain lesson", "PUBLIC")
        .await;
    app.create_lesson(&admin, &course, "C:\\Windows paths", "PUBLIC")
        .await;

    let percent = app
        .get("/api/public/lessons?search=%25", None)
        .await
        .expect(200);
    let underscore = app
        .get("/api/public/lessons?search=_", None)
        .await
        .expect(200);

    let backslash = app
        .get("/api/public/lessons?search=%5C", None)
        .await
        .expect(200);

    assert_eq!(names(&percent), ["100% coverage"]);
    assert_eq!(names(&underscore), ["snake_case names"]);
    assert_eq!(names(&backslash), ["C:\\Windows paths"]);
}

async fn an_empty_search_does_not_filter(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "One", "PUBLIC").await;
    app.create_lesson(&admin, &course, "Two", "PUBLIC").await;

    let body = app
        .get("/api/public/lessons?search=", None)
        .await
        .expect(200);

    assert_eq!(names(&body), ["One", "Two"]);
}

async fn a_search_without_match_is_cached_too(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "Rust basics", "PUBLIC")
        .await;

    let first = app
        .get("/api/public/lessons?search=cobol", None)
        .await
        .expect_cache(200, "MISS");
    let second = app
        .get("/api/public/lessons?search=cobol", None)
        .await
        .expect_cache(200, "HIT");

    let empty = json!({"data": [], "total": 0, "page": 1, "limit": 10, "totalPages": 0});
    assert_eq!(first, empty);
    assert_eq!(second, empty);
}

async fn searches_differing_only_in_case_share_one_entry(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "Rust basics", "PUBLIC")
        .await;

    let lower = app
        .get("/api/public/lessons?search=rust", None)
        .await
        .expect_cache(200, "MISS");
    let upper = app
        .get("/api/public/lessons?search=RUST", None)
        .await
        .expect_cache(200, "HIT");

    assert_eq!(names(&lower), ["Rust basics"]);
    assert_eq!(upper, lower);
}

/// Every distinct search caches its length under a tag of its own text: that tag's generation
/// must leave the store with the entries, not outlive them by days.
async fn distinct_anonymous_searches_leave_no_key_living_longer_than_their_entries(app: TestApp) {
    const SEARCHES: usize = 40;
    for i in 0..SEARCHES {
        app.get(&format!("/api/public/lessons?search={i:03}rust"), None)
            .await
            .expect(200);
    }

    let lives = key_lives(&app).await;

    assert!(
        lives.len() >= SEARCHES,
        "only {} keys with a lifetime after {SEARCHES} searches",
        lives.len()
    );
    let longest = generation_ttl(Policies::default().search_results.longest_life());
    let outliving: Vec<_> = lives.iter().filter(|(_, life)| *life > longest).collect();
    assert!(
        outliving.is_empty(),
        "{} of {} keys live longer than {longest:?}, e.g. {:?}",
        outliving.len(),
        lives.len(),
        outliving.first()
    );
}

/// How much longer each key of the app's namespace lives: found by `SCAN` and `PTTL` on Redis
/// (under Upstash too; a key without a TTL lives forever); the memory store tells it for tag generations only.
async fn key_lives(app: &TestApp) -> Vec<(String, Duration)> {
    let cache = &app.state.cache;
    // The store's own scan: the cache's sample keys are redacted.
    let pattern = format!("{}*", cache.namespace().root());
    let keys = cache.store().scan(&pattern, usize::MAX).await.unwrap();
    let redis = match cache.store() {
        AnyStore::Redis(store) => Some(store.connection()),
        // The gateway's Redis, asked directly: the REST store does not expose PTTL.
        AnyStore::Upstash(_) => Some(
            cachette::RedisStore::new(&crate::helpers::redis_url())
                .unwrap()
                .connection(),
        ),
        AnyStore::Memory(_) => None,
    };
    match (cache.store(), redis) {
        (_, Some(mut redis)) => {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("PTTL").arg(key);
            }
            let millis: Vec<i64> = pipe.query_async(&mut redis).await.unwrap();
            keys.into_iter()
                .zip(millis)
                .filter_map(|(key, millis)| match millis {
                    -2 => None, // expired since the scan
                    -1 => Some((key, Duration::MAX)),
                    millis => Some((key, Duration::from_millis(millis.unsigned_abs()))),
                })
                .collect()
        }
        (AnyStore::Memory(store), None) => keys
            .into_iter()
            .filter_map(|key| store.generation_life(&key).map(|life| (key, life)))
            .collect(),
        (_, None) => unreachable!("only the memory store is asked in process"),
    }
}

on_both_backends!(
    only_public_lessons_of_published_courses_are_listed,
    a_public_lesson_item_has_its_rank_and_course,
    lessons_are_ordered_by_course_name_then_rank,
    the_list_pages_with_a_default_limit_of_ten,
    a_page_past_the_end_is_empty_but_keeps_the_total,
    search_ignores_case,
    search_ignores_case_of_accented_letters_too,
    search_wildcards_are_matched_literally,
    an_empty_search_does_not_filter,
    a_search_without_match_is_cached_too,
    searches_differing_only_in_case_share_one_entry,
    distinct_anonymous_searches_leave_no_key_living_longer_than_their_entries,
);
