//! Routes of an admin: their courses, lessons and participants.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, keys, names, pluck, tick};
use crate::on_both_backends;

/// `(name, rank)` of each lesson of an admin lesson list, in order.
fn ranked(body: &Value) -> Vec<(String, i64)> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a lesson list: {body}"))
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["rank"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
    expected
        .iter()
        .map(|(n, r)| ((*n).to_owned(), *r))
        .collect()
}

/// Creates lessons named `names` in order (ranks 1..=n); returns their ids.
async fn lessons(app: &TestApp, admin: &TestUser, course: &str, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(app.create_lesson(admin, course, name, "PUBLISHED").await);
    }
    ids
}

async fn an_admin_without_courses_gets_an_empty_page_and_it_is_cached(app: TestApp) {
    let admin = app.admin().await;

    let first = app.get("/api/admin/courses", Some(&admin.token)).await;
    let second = app.get("/api/admin/courses", Some(&admin.token)).await;

    let empty = json!({"data": [], "total": 0, "page": 1, "limit": 5, "totalPages": 0});
    assert_eq!(first.expect_cache(200, "MISS"), empty);
    assert_eq!(second.expect_cache(200, "HIT"), empty);
}

async fn admin_courses_are_listed_newest_first_five_per_page(app: TestApp) {
    let admin = app.admin().await;
    for i in 1..=7 {
        app.create_course(&admin, &format!("Course {i}"), "DRAFT")
            .await;
        tick().await;
    }

    let first = app
        .get("/api/admin/courses", Some(&admin.token))
        .await
        .expect(200);
    let second = app
        .get("/api/admin/courses?page=2", Some(&admin.token))
        .await
        .expect(200);
    let big = app
        .get("/api/admin/courses?limit=100", Some(&admin.token))
        .await
        .expect(200);

    assert_eq!(
        names(&first),
        ["Course 7", "Course 6", "Course 5", "Course 4", "Course 3"]
    );
    assert_eq!(
        (
            &first["total"],
            &first["page"],
            &first["limit"],
            &first["totalPages"]
        ),
        (&json!(7), &json!(1), &json!(5), &json!(2))
    );
    assert_eq!(names(&second), ["Course 2", "Course 1"]);
    assert_eq!(second["page"], 2);
    assert_eq!(names(&big).len(), 7);
    assert_eq!(
        (&big["limit"], &big["totalPages"]),
        (&json!(100), &json!(1))
    );
    assert_eq!(
        keys(&first["data"][0]),
        ["createdAt", "id", "image", "name", "state"]
    );
}

async fn admin_course_search_ignores_case_and_takes_wildcards_literally(app: TestApp) {
    let admin = app.admin().await;
    for name in ["Rust basics", "Go basics", "100% Rust", "Advanced rust"] {
        app.create_course(&admin, name, "DRAFT").await;
        tick().await;
    }

    let rust = app
        .get("/api/admin/courses?search=rUsT", Some(&admin.token))
        .await
        .expect(200);
    let percent = app
        .get("/api/admin/courses?search=%25", Some(&admin.token))
        .await
        .expect(200);
    let underscore = app
        .get("/api/admin/courses?search=_", Some(&admin.token))
        .await
        .expect(200);

    assert_eq!(names(&rust), ["Advanced rust", "100% Rust", "Rust basics"]);
    assert_eq!(
        (&rust["total"], &rust["totalPages"]),
        (&json!(3), &json!(1))
    );
    assert_eq!(names(&percent), ["100% Rust"]);
    assert_eq!(underscore["total"], 0);
}

async fn admin_course_search_ignores_case_of_accented_letters_too(app: TestApp) {
    let admin = app.admin().await;
    app.create_course(&admin, "Élan vital", "DRAFT").await;
    app.create_course(&admin, "Elan", "DRAFT").await;

    let body = app
        .get("/api/admin/courses?search=%C3%A9LAN", Some(&admin.token))
        .await
        .expect(200);

    assert_eq!(names(&body), ["Élan vital"]);
}

async fn an_admin_course_search_without_match_is_cached(app: TestApp) {
    let admin = app.admin().await;
    app.create_course(&admin, "Rust basics", "DRAFT").await;
    let path = "/api/admin/courses?search=haskell";

    let first = app.get(path, Some(&admin.token)).await;
    let second = app.get(path, Some(&admin.token)).await;

    let empty = json!({"data": [], "total": 0, "page": 1, "limit": 5, "totalPages": 0});
    assert_eq!(first.expect_cache(200, "MISS"), empty);
    assert_eq!(second.expect_cache(200, "HIT"), empty);
}

async fn a_course_created_with_only_a_name_gets_the_defaults(app: TestApp) {
    let admin = app.admin().await;

    let created = app
        .post(
            "/api/admin/courses",
            Some(&admin.token),
            json!({"name": "Minimal"}),
        )
        .await
        .expect(201);

    assert_eq!(
        keys(&created),
        [
            "createdAt",
            "id",
            "image",
            "lessonCount",
            "name",
            "participantCount",
            "presentation",
            "state"
        ]
    );
    assert_eq!(created["name"], "Minimal");
    assert_eq!(created["state"], "DRAFT");
    assert_eq!(created["presentation"], "");
    assert!(created["image"].is_null());
    assert_eq!(
        (&created["lessonCount"], &created["participantCount"]),
        (&json!(0), &json!(0))
    );
    let id = created["id"].as_str().unwrap();
    let detail = app
        .get(&format!("/api/admin/courses/{id}"), Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(detail, created);
}

async fn a_course_is_created_with_every_field_given(app: TestApp) {
    let admin = app.admin().await;

    let created = app
        .post(
            "/api/admin/courses",
            Some(&admin.token),
            json!({
                "name": "Full",
                "image": "https://img.example.org/full.png",
                "presentation": "Everything about it",
                "state": "PUBLISHED",
            }),
        )
        .await
        .expect(201);

    assert_eq!(created["image"], "https://img.example.org/full.png");
    assert_eq!(created["presentation"], "Everything about it");
    assert_eq!(created["state"], "PUBLISHED");
    let list = app
        .get("/api/admin/courses", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(
        list["data"][0],
        json!({
            "id": created["id"],
            "name": "Full",
            "image": "https://img.example.org/full.png",
            "state": "PUBLISHED",
            "createdAt": created["createdAt"],
        })
    );
}

async fn the_course_detail_counts_every_lesson_and_active_participants(app: TestApp) {
    let admin = app.admin().await;
    let (stays, goes) = (app.user().await, app.user().await);
    let course = app.create_course(&admin, "Counted", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "Hidden", "HIDDEN").await;
    app.create_lesson(&admin, &course, "Published", "PUBLISHED")
        .await;
    app.create_lesson(&admin, &course, "Public", "PUBLIC").await;
    app.join(&stays, &course).await;
    app.join(&goes, &course).await;
    app.leave(&goes, &course).await;

    let detail = app
        .get(&format!("/api/admin/courses/{course}"), Some(&admin.token))
        .await
        .expect(200);

    assert_eq!(
        (&detail["lessonCount"], &detail["participantCount"]),
        (&json!(3), &json!(1))
    );
}

async fn patching_a_course_changes_only_the_given_fields(app: TestApp) {
    let admin = app.admin().await;
    let created = app
        .post(
            "/api/admin/courses",
            Some(&admin.token),
            json!({"name": "Before", "image": "https://img.example.org/a.png", "presentation": "Text"}),
        )
        .await
        .expect(201);
    let path = format!("/api/admin/courses/{}", created["id"].as_str().unwrap());

    let renamed = app
        .patch(&path, Some(&admin.token), json!({"name": "After"}))
        .await
        .expect(200);
    let cleared = app
        .patch(
            &path,
            Some(&admin.token),
            json!({"image": null, "state": "PUBLISHED"}),
        )
        .await
        .expect(200);

    assert_eq!(renamed["name"], "After");
    assert_eq!(renamed["image"], "https://img.example.org/a.png");
    assert_eq!(renamed["presentation"], "Text");
    assert_eq!(renamed["state"], "DRAFT");
    assert!(cleared["image"].is_null());
    assert_eq!(cleared["name"], "After");
    assert_eq!(cleared["state"], "PUBLISHED");
    assert_eq!(cleared["createdAt"], created["createdAt"]);
    let detail = app.get(&path, Some(&admin.token)).await.expect(200);
    assert_eq!(detail, cleared);
}

async fn deleting_a_course_removes_it_with_its_lessons_and_enrolments(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Doomed", "PUBLISHED").await;
    let kept = app.create_course(&admin, "Kept", "PUBLISHED").await;
    let lesson = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;
    app.join(&user, &course).await;
    app.join(&user, &kept).await;
    let path = format!("/api/admin/courses/{course}");

    let deleted = app.delete(&path, Some(&admin.token)).await;

    assert_eq!(deleted.status.as_u16(), 204);
    for gone in [
        path.clone(),
        format!("{path}/lessons"),
        format!("{path}/lessons/{lesson}"),
        format!("{path}/participants"),
    ] {
        let reply = app.get(&gone, Some(&admin.token)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (404, "not_found"),
            "{gone}"
        );
    }
    let list = app
        .get("/api/admin/courses", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(names(&list), ["Kept"]);
    let enrolments = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect(200);
    assert_eq!(names(&enrolments), ["Kept"]);
    app.get(&format!("/api/user/lessons/{lesson}"), Some(&user.token))
        .await
        .expect_error(404, "not_found");
    let public = app.get("/api/public/lessons", None).await.expect(200);
    assert_eq!(public["total"], 0);
    app.delete(&path, Some(&admin.token))
        .await
        .expect_error(404, "not_found");
}

async fn a_lesson_created_with_only_a_name_goes_last_with_the_defaults(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    app.create_lesson(&admin, &course, "First", "PUBLIC").await;

    let created = app
        .post(
            &format!("/api/admin/courses/{course}/lessons"),
            Some(&admin.token),
            json!({"name": "Second"}),
        )
        .await
        .expect(201);

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created,
        json!({"id": id, "courseId": course, "name": "Second", "content": "", "rank": 2, "state": "HIDDEN"})
    );
    let detail = app
        .get(
            &format!("/api/admin/courses/{course}/lessons/{id}"),
            Some(&admin.token),
        )
        .await
        .expect(200);
    assert_eq!(detail, created);
}

async fn the_lesson_list_shows_every_lesson_by_rank(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let ids = [
        app.create_lesson(&admin, &course, "One", "HIDDEN").await,
        app.create_lesson(&admin, &course, "Two", "PUBLISHED").await,
        app.create_lesson(&admin, &course, "Three", "PUBLIC").await,
    ];

    let body = app
        .get(
            &format!("/api/admin/courses/{course}/lessons"),
            Some(&admin.token),
        )
        .await
        .expect(200);

    assert_eq!(
        body,
        json!({"data": [
            {"id": ids[0], "name": "One", "rank": 1, "state": "HIDDEN"},
            {"id": ids[1], "name": "Two", "rank": 2, "state": "PUBLISHED"},
            {"id": ids[2], "name": "Three", "rank": 3, "state": "PUBLIC"},
        ]})
    );
}

async fn creating_a_lesson_at_rank_one_moves_the_others_down(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    lessons(&app, &admin, &course, &["A", "B", "C"]).await;
    let list = format!("/api/admin/courses/{course}/lessons");
    app.warm(&list, Some(&admin.token)).await;

    let created = app
        .post(
            &list,
            Some(&admin.token),
            json!({"name": "Intro", "rank": 1}),
        )
        .await
        .expect(201);

    assert_eq!(created["rank"], 1);
    let body = app
        .get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "MISS");
    assert_eq!(
        ranked(&body),
        pairs(&[("Intro", 1), ("A", 2), ("B", 3), ("C", 4)])
    );
}

async fn creating_a_lesson_in_the_middle_moves_only_the_later_ones(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    lessons(&app, &admin, &course, &["A", "B", "C"]).await;
    let list = format!("/api/admin/courses/{course}/lessons");

    app.post(&list, Some(&admin.token), json!({"name": "Mid", "rank": 2}))
        .await
        .expect(201);
    let far = app
        .post(
            &list,
            Some(&admin.token),
            json!({"name": "Far", "rank": 99}),
        )
        .await
        .expect(201);

    assert_eq!(far["rank"], 5);
    let body = app.get(&list, Some(&admin.token)).await.expect(200);
    assert_eq!(
        ranked(&body),
        pairs(&[("A", 1), ("Mid", 2), ("B", 3), ("C", 4), ("Far", 5)])
    );
}

async fn patching_a_rank_reorders_the_lessons(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let ids = lessons(&app, &admin, &course, &["A", "B", "C", "D"]).await;
    let list = format!("/api/admin/courses/{course}/lessons");
    let lesson = |i: usize| format!("{list}/{}", ids[i]);
    app.warm(&list, Some(&admin.token)).await;

    let up = app
        .patch(&lesson(3), Some(&admin.token), json!({"rank": 2}))
        .await
        .expect(200);
    let after_up = app
        .get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "MISS");
    app.get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "HIT");
    let down = app
        .patch(&lesson(0), Some(&admin.token), json!({"rank": 4}))
        .await
        .expect(200);
    let after_down = app
        .get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "MISS");
    let past_end = app
        .patch(&lesson(3), Some(&admin.token), json!({"rank": 50}))
        .await
        .expect(200);
    let after_past_end = app
        .get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "MISS");

    assert_eq!((&up["name"], &up["rank"]), (&json!("D"), &json!(2)));
    assert_eq!(
        ranked(&after_up),
        pairs(&[("A", 1), ("D", 2), ("B", 3), ("C", 4)])
    );
    assert_eq!(down["rank"], 4);
    assert_eq!(
        ranked(&after_down),
        pairs(&[("D", 1), ("B", 2), ("C", 3), ("A", 4)])
    );
    assert_eq!(past_end["rank"], 4);
    assert_eq!(
        ranked(&after_past_end),
        pairs(&[("B", 1), ("C", 2), ("A", 3), ("D", 4)])
    );
}

async fn deleting_a_lesson_closes_the_gap(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let ids = lessons(&app, &admin, &course, &["A", "B", "C", "D"]).await;
    let list = format!("/api/admin/courses/{course}/lessons");
    app.warm(&list, Some(&admin.token)).await;

    let deleted = app
        .delete(&format!("{list}/{}", ids[1]), Some(&admin.token))
        .await;
    let after_b = app
        .get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "MISS");
    app.get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "HIT");
    app.delete(&format!("{list}/{}", ids[0]), Some(&admin.token))
        .await
        .expect(204);
    let after_a = app
        .get(&list, Some(&admin.token))
        .await
        .expect_cache(200, "MISS");

    assert_eq!(deleted.status.as_u16(), 204);
    assert_eq!(ranked(&after_b), pairs(&[("A", 1), ("C", 2), ("D", 3)]));
    assert_eq!(ranked(&after_a), pairs(&[("C", 1), ("D", 2)]));
    let moved = app
        .get(&format!("{list}/{}", ids[3]), Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(moved["rank"], 2);
}

async fn lessons_created_at_the_same_time_get_distinct_ranks(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let list = format!("/api/admin/courses/{course}/lessons");
    let names: Vec<String> = (1..=8).map(|i| format!("Lesson {i}")).collect();

    let replies = futures::future::join_all(
        names
            .iter()
            .map(|name| app.post(&list, Some(&admin.token), json!({"name": name}))),
    )
    .await;

    for reply in replies {
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    }
    let body = app.get(&list, Some(&admin.token)).await.expect(200);
    let ranks: Vec<Value> = pluck(&body, "rank");
    assert_eq!(ranks, (1..=8).map(|r| json!(r)).collect::<Vec<_>>());
}

async fn lessons_moved_at_the_same_time_keep_ranks_one_to_n(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let ids = lessons(&app, &admin, &course, &["A", "B", "C", "D", "E", "F"]).await;
    let list = format!("/api/admin/courses/{course}/lessons");

    let paths: Vec<String> = ids.iter().rev().map(|id| format!("{list}/{id}")).collect();

    let replies = futures::future::join_all(
        paths
            .iter()
            .map(|path| app.patch(path, Some(&admin.token), json!({"rank": 1}))),
    )
    .await;

    for reply in replies {
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    }
    let body = app.get(&list, Some(&admin.token)).await.expect(200);
    let mut ranks: Vec<i64> = pluck(&body, "rank")
        .iter()
        .map(|r| r.as_i64().unwrap())
        .collect();
    ranks.sort_unstable();
    assert_eq!(ranks, [1, 2, 3, 4, 5, 6], "{body}");
}

async fn patching_a_lesson_changes_only_the_given_fields(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let id = app
        .create_lesson(&admin, &course, "Draft name", "HIDDEN")
        .await;
    let path = format!("/api/admin/courses/{course}/lessons/{id}");

    let renamed = app
        .patch(&path, Some(&admin.token), json!({"name": "Final name"}))
        .await
        .expect(200);
    let published = app
        .patch(
            &path,
            Some(&admin.token),
            json!({"content": "New content", "state": "PUBLIC"}),
        )
        .await
        .expect(200);

    assert_eq!(
        renamed,
        json!({"id": id, "courseId": course, "name": "Final name", "content": "Content of Draft name", "rank": 1, "state": "HIDDEN"})
    );
    assert_eq!(
        published,
        json!({"id": id, "courseId": course, "name": "Final name", "content": "New content", "rank": 1, "state": "PUBLIC"})
    );
    assert_eq!(
        app.get(&path, Some(&admin.token)).await.expect(200),
        published
    );
}

async fn a_lesson_is_not_found_through_another_course_of_the_same_admin(app: TestApp) {
    let admin = app.admin().await;
    let home = app.create_course(&admin, "Home", "DRAFT").await;
    let other = app.create_course(&admin, "Other", "DRAFT").await;
    let lesson = app.create_lesson(&admin, &home, "Lesson", "HIDDEN").await;
    let wrong = format!("/api/admin/courses/{other}/lessons/{lesson}");

    let read = app.get(&wrong, Some(&admin.token)).await;
    let patch = app
        .patch(&wrong, Some(&admin.token), json!({"name": "Hijacked"}))
        .await;
    let delete = app.delete(&wrong, Some(&admin.token)).await;

    read.expect_error(404, "not_found");
    patch.expect_error(404, "not_found");
    delete.expect_error(404, "not_found");
    let intact = app
        .get(
            &format!("/api/admin/courses/{home}/lessons/{lesson}"),
            Some(&admin.token),
        )
        .await
        .expect(200);
    assert_eq!(intact["name"], "Lesson");
}

async fn admin_participants_show_emails_and_join_dates_by_join_date(app: TestApp) {
    let admin = app.admin().await;
    let (first, second, left) = (app.user().await, app.user().await, app.user().await);
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&first, &course).await;
    tick().await;
    app.join(&left, &course).await;
    tick().await;
    app.join(&second, &course).await;
    app.leave(&left, &course).await;

    let body = app
        .get(
            &format!("/api/admin/courses/{course}/participants"),
            Some(&admin.token),
        )
        .await
        .expect(200);

    assert_eq!(
        pluck(&body, "email"),
        [json!(first.email), json!(second.email)]
    );
    assert_eq!(pluck(&body, "id"), [json!(first.id), json!(second.id)]);
    assert_eq!(
        keys(&body["data"][0]),
        ["email", "id", "image", "joinedAt", "name"]
    );
    assert_eq!(
        (&body["total"], &body["limit"], &body["totalPages"]),
        (&json!(2), &json!(10), &json!(1))
    );
    let empty = app.create_course(&admin, "Empty", "DRAFT").await;
    let body = app
        .get(
            &format!("/api/admin/courses/{empty}/participants"),
            Some(&admin.token),
        )
        .await
        .expect(200);
    assert_eq!((&body["data"], &body["total"]), (&json!([]), &json!(0)));
    let other = app.admin().await;
    app.get(
        &format!("/api/admin/courses/{course}/participants"),
        Some(&other.token),
    )
    .await
    .expect_error(404, "not_found");
}

on_both_backends!(
    an_admin_without_courses_gets_an_empty_page_and_it_is_cached,
    admin_courses_are_listed_newest_first_five_per_page,
    admin_course_search_ignores_case_and_takes_wildcards_literally,
    admin_course_search_ignores_case_of_accented_letters_too,
    an_admin_course_search_without_match_is_cached,
    a_course_created_with_only_a_name_gets_the_defaults,
    a_course_is_created_with_every_field_given,
    the_course_detail_counts_every_lesson_and_active_participants,
    patching_a_course_changes_only_the_given_fields,
    deleting_a_course_removes_it_with_its_lessons_and_enrolments,
    a_lesson_created_with_only_a_name_goes_last_with_the_defaults,
    the_lesson_list_shows_every_lesson_by_rank,
    creating_a_lesson_at_rank_one_moves_the_others_down,
    creating_a_lesson_in_the_middle_moves_only_the_later_ones,
    patching_a_rank_reorders_the_lessons,
    deleting_a_lesson_closes_the_gap,
    lessons_created_at_the_same_time_get_distinct_ranks,
    lessons_moved_at_the_same_time_keep_ranks_one_to_n,
    patching_a_lesson_changes_only_the_given_fields,
    a_lesson_is_not_found_through_another_course_of_the_same_admin,
    admin_participants_show_emails_and_join_dates_by_join_date,
);
