//! Routes of a signed-in user: enrolments, courses, lessons, progress, participants.

use serde_json::json;

use youcode::domain::{CourseId, UserId};

use crate::helpers::{TestApp, keys, names, pluck, tick};
use crate::on_both_backends;

async fn a_user_sees_the_courses_they_joined_newest_enrolment_first(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let first = app.create_course(&admin, "First joined", "PUBLISHED").await;
    app.create_course(&admin, "Never joined", "PUBLISHED").await;
    let last = app.create_course(&admin, "Last joined", "PUBLISHED").await;
    app.join(&user, &first).await;
    tick().await;
    app.join(&user, &last).await;

    let body = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect(200);

    assert_eq!(names(&body), ["Last joined", "First joined"]);
    assert_eq!(pluck(&body, "id"), [json!(last), json!(first)]);
    let item = &body["data"][0];
    assert_eq!(
        keys(item),
        ["creatorName", "id", "image", "joinedAt", "name"]
    );
    assert_eq!(item["creatorName"], format!("Name of {}", admin.email));
    assert!(item["image"].is_null());
    assert!(item["joinedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (
            &body["total"],
            &body["page"],
            &body["limit"],
            &body["totalPages"]
        ),
        (&json!(2), &json!(1), &json!(10), &json!(1))
    );
}

async fn a_user_without_enrolments_gets_an_empty_page_and_it_is_cached(app: TestApp) {
    let user = app.user().await;

    let first = app.get("/api/user/courses", Some(&user.token)).await;
    let second = app.get("/api/user/courses", Some(&user.token)).await;

    let empty = json!({"data": [], "total": 0, "page": 1, "limit": 10, "totalPages": 0});
    assert_eq!(first.expect_cache(200, "MISS"), empty);
    assert_eq!(second.expect_cache(200, "HIT"), empty);
}

async fn rejoining_a_course_moves_it_back_to_the_top(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let older = app.create_course(&admin, "Older", "PUBLISHED").await;
    let newer = app.create_course(&admin, "Newer", "PUBLISHED").await;
    app.join(&user, &older).await;
    tick().await;
    app.join(&user, &newer).await;
    app.leave(&user, &older).await;
    tick().await;

    app.join(&user, &older).await;

    let body = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect(200);
    assert_eq!(names(&body), ["Older", "Newer"]);
}

async fn joining_twice_keeps_one_enrolment_and_its_date(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&user, &course).await;
    let before = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect(200);
    let participants = format!("/api/admin/courses/{course}/participants");
    app.warm(&participants, Some(&admin.token)).await;
    tick().await;

    let again = app
        .post(
            &format!("/api/user/courses/{course}/join"),
            Some(&user.token),
            json!({}),
        )
        .await
        .expect(200);

    assert_eq!(again, json!({"courseId": course, "enrolled": true}));
    // The second join changed nothing: the participants stay cached, the user's list is
    // refreshed.
    let after = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect_cache(200, "HIT");
    assert_eq!(after, before);
    app.get(&participants, Some(&admin.token))
        .await
        .expect_cache(200, "HIT");
    let detail = app
        .get(&format!("/api/admin/courses/{course}"), Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(detail["participantCount"], 1);
}

async fn a_draft_course_can_be_neither_joined_nor_read(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let draft = app.create_course(&admin, "Draft", "DRAFT").await;

    let join = app
        .post(
            &format!("/api/user/courses/{draft}/join"),
            Some(&user.token),
            json!({}),
        )
        .await;
    let detail = app
        .get(&format!("/api/user/courses/{draft}"), Some(&user.token))
        .await;

    join.expect_error(404, "not_found");
    detail.expect_error(404, "not_found");
    let list = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 0);
}

async fn an_unknown_course_cannot_be_joined_left_or_read(app: TestApp) {
    let user = app.user().await;
    let unknown = "00000000-0000-4000-8000-000000000000";

    for (reply, what) in [
        (
            app.post(
                &format!("/api/user/courses/{unknown}/join"),
                Some(&user.token),
                json!({}),
            )
            .await,
            "join",
        ),
        (
            app.post(
                &format!("/api/user/courses/{unknown}/leave"),
                Some(&user.token),
                json!({}),
            )
            .await,
            "leave",
        ),
        (
            app.get(&format!("/api/user/courses/{unknown}"), Some(&user.token))
                .await,
            "detail",
        ),
    ] {
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (404, "not_found"),
            "{what}"
        );
    }
}

/// A join (or leave) that finds it already done may race the same request made at once, whose
/// invalidation has not landed yet (here: written to the database without one). Its answer
/// must still be followed by reads that show it.
async fn a_join_or_leave_found_done_is_shown_at_once(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let detail = format!("/api/user/courses/{course}");
    let (user_id, course_id) = (
        UserId(user.id.parse().unwrap()),
        CourseId::parse("courseId", &course).unwrap(),
    );

    for joined in [true, false] {
        // Both are cached from here on (read, or refreshed by the previous step).
        let before = app.get(&detail, Some(&user.token)).await.expect(200);
        assert_eq!(before["enrolled"], !joined);
        app.get("/api/user/courses", Some(&user.token))
            .await
            .expect(200);
        let action = if joined {
            app.state.db.join_course(user_id, course_id).await.unwrap();
            app.join(&user, &course).await;
            "join"
        } else {
            app.state.db.leave_course(user_id, course_id).await.unwrap();
            app.leave(&user, &course).await;
            "leave"
        };
        let after = app.get(&detail, Some(&user.token)).await.expect(200);
        assert_eq!(after["enrolled"], joined, "after the {action}");
        let list = app
            .get("/api/user/courses", Some(&user.token))
            .await
            .expect(200);
        assert_eq!(list["total"], i32::from(joined), "after the {action}");
    }
}

async fn leaving_is_idempotent_and_answers_enrolled_false(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&user, &course).await;

    let path = format!("/api/user/courses/{course}/leave");
    let first = app.post(&path, Some(&user.token), json!({})).await;
    let second = app.post(&path, Some(&user.token), json!({})).await;

    let left = json!({"courseId": course, "enrolled": false});
    assert_eq!(first.expect(200), left);
    assert_eq!(second.expect(200), left);
    // A leave that changes nothing leaves the participants cached.
    let participants = format!("/api/admin/courses/{course}/participants");
    app.warm(&participants, Some(&admin.token)).await;
    app.post(&path, Some(&user.token), json!({}))
        .await
        .expect(200);
    app.get(&participants, Some(&admin.token))
        .await
        .expect_cache(200, "HIT");
    let list = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 0);
}

async fn the_user_course_list_pages_and_searches(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    for i in 1..=11 {
        let course = app
            .create_course(&admin, &format!("Course {i:02}"), "PUBLISHED")
            .await;
        app.join(&user, &course).await;
        tick().await;
    }
    let rust = app.create_course(&admin, "Rust basics", "PUBLISHED").await;
    app.join(&user, &rust).await;

    let first = app
        .get("/api/user/courses", Some(&user.token))
        .await
        .expect(200);
    let second = app
        .get("/api/user/courses?page=2", Some(&user.token))
        .await
        .expect(200);
    let search = app
        .get("/api/user/courses?search=rUsT", Some(&user.token))
        .await
        .expect(200);

    assert_eq!(
        (&first["total"], &first["limit"], &first["totalPages"]),
        (&json!(12), &json!(10), &json!(2))
    );
    assert_eq!(names(&first)[0], "Rust basics");
    assert_eq!(names(&second), ["Course 02", "Course 01"]);
    assert_eq!(names(&search), ["Rust basics"]);
    assert_eq!(search["total"], 1);
}

/// Earlier courses are read through cached chunks of 50: pages across them show the list in
/// order, whatever chunks they span.
async fn a_long_list_of_earlier_courses_pages_across_chunks(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let recent = app.create_course(&admin, "Recent", "PUBLISHED").await;
    app.join(&user, &recent).await;
    let month_ago = youcode::db::now_ms() - 30 * 86_400_000;
    for n in 1..=120_i64 {
        let course = app
            .create_course(&admin, &format!("Course {n:03}"), "PUBLISHED")
            .await;
        app.join(&user, &course).await;
        sqlx::query("UPDATE enrolments SET created_at = $1 WHERE course_id = $2")
            .bind(month_ago - n * 1000)
            .bind(&course)
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
    app.state.cache.clear().await.unwrap();
    let expected: Vec<String> = std::iter::once("Recent".to_owned())
        .chain((1..=120).map(|n| format!("Course {n:03}")))
        .collect();

    for (query, from, len) in [
        ("page=5", 40, 10),
        ("page=6", 50, 10),
        ("page=2&limit=100", 100, 21),
        ("limit=100", 0, 100),
        ("page=13", 120, 1),
        ("page=14", 121, 0),
    ] {
        let page = app
            .get(&format!("/api/user/courses?{query}"), Some(&user.token))
            .await
            .expect(200);
        assert_eq!(names(&page), expected[from..from + len], "{query}");
        assert_eq!(page["total"], 121, "{query}");
    }
    let searched = app
        .get(
            "/api/user/courses?search=course%2011&limit=5",
            Some(&user.token),
        )
        .await
        .expect(200);
    assert_eq!(
        names(&searched),
        [
            "Course 110",
            "Course 111",
            "Course 112",
            "Course 113",
            "Course 114"
        ]
    );
    assert_eq!(searched["total"], 10);
}

/// A cached part of the course list that holds a course that is not JSON is a miss: the page
/// is read from the database, never a 500.
async fn a_corrupt_course_list_part_is_read_from_the_database(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Joined", "PUBLISHED").await;
    app.join(&user, &course).await;
    let user_id = youcode::domain::UserId::parse("userId", &user.id).unwrap();
    let split = youcode::cache::keys::course_list_split(youcode::db::now_ms());
    for part in [
        youcode::db::JoinedPart::Since(split),
        youcode::db::JoinedPart::Before(split),
    ] {
        app.state.cache.clear().await.unwrap();
        // A version byte, then one course: its folded name, and braces around what is not JSON.
        let mut corrupt = vec![1_u8];
        for bytes in [&b"joined"[..], &b"{not json}"[..]] {
            corrupt.extend((bytes.len() as u32).to_le_bytes());
            corrupt.extend(bytes);
        }
        let entry = app.state.keys.user_course_list(user_id, part);
        app.state
            .cache
            .get_or_fetch_with(
                &entry.key,
                &entry.tags,
                &entry.policy,
                &cachette::Raw,
                || async { Ok::<_, std::convert::Infallible>(bytes::Bytes::from(corrupt)) },
            )
            .await
            .unwrap();

        let page = app
            .get("/api/user/courses", Some(&user.token))
            .await
            .expect_cache(200, "MISS");
        assert_eq!(names(&page), ["Joined"], "{part:?}");
        let again = app
            .get("/api/user/courses", Some(&user.token))
            .await
            .expect(200);
        assert_eq!(names(&again), ["Joined"], "{part:?}");
    }
}

async fn the_course_detail_shows_visible_lessons_by_rank_with_progress(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let published = app
        .create_lesson(&admin, &course, "Members", "PUBLISHED")
        .await;
    app.create_lesson(&admin, &course, "Hidden", "HIDDEN").await;
    let public = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;
    let path = format!("/api/user/courses/{course}");

    let outsider = app.get(&path, Some(&user.token)).await.expect(200);
    app.join(&user, &course).await;
    app.set_progress(&user, &public, "COMPLETED").await;
    let member = app.get(&path, Some(&user.token)).await.expect(200);

    assert_eq!(
        keys(&outsider),
        [
            "creatorName",
            "enrolled",
            "id",
            "image",
            "lessonCount",
            "lessons",
            "name",
            "presentation"
        ]
    );
    assert_eq!(outsider["id"], course.as_str());
    assert_eq!(outsider["name"], "Course");
    assert_eq!(outsider["presentation"], "About Course");
    assert_eq!(outsider["creatorName"], format!("Name of {}", admin.email));
    assert_eq!(outsider["enrolled"], false);
    assert_eq!(outsider["lessonCount"], 2);
    assert_eq!(
        outsider["lessons"],
        json!([
            {"id": published, "name": "Members", "rank": 1, "state": "PUBLISHED", "progress": "NOT_STARTED"},
            {"id": public, "name": "Open", "rank": 3, "state": "PUBLIC", "progress": "NOT_STARTED"},
        ])
    );
    assert_eq!(member["enrolled"], true);
    assert_eq!(
        pluck(&json!({"data": member["lessons"]}), "progress"),
        [json!("NOT_STARTED"), json!("COMPLETED")]
    );
}

async fn progress_is_not_shown_once_the_user_left(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let lesson = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;
    app.join(&user, &course).await;
    app.set_progress(&user, &lesson, "COMPLETED").await;

    app.leave(&user, &course).await;

    let detail = app
        .get(&format!("/api/user/courses/{course}"), Some(&user.token))
        .await
        .expect(200);
    let read = app
        .get(&format!("/api/user/lessons/{lesson}"), Some(&user.token))
        .await
        .expect(200);
    assert_eq!(detail["enrolled"], false);
    assert_eq!(detail["lessons"][0]["progress"], "NOT_STARTED");
    assert_eq!(read["progress"], "NOT_STARTED");
}

async fn a_public_lesson_is_readable_without_enrolment(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.create_lesson(&admin, &course, "First", "PUBLISHED")
        .await;
    let lesson = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;

    let body = app
        .get(&format!("/api/user/lessons/{lesson}"), Some(&user.token))
        .await
        .expect(200);

    assert_eq!(
        body,
        json!({
            "id": lesson,
            "name": "Open",
            "content": "Content of Open",
            "rank": 2,
            "state": "PUBLIC",
            "courseId": course,
            "courseName": "Course",
            "progress": "NOT_STARTED",
        })
    );
}

async fn a_published_lesson_is_readable_only_while_enrolled(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let lesson = app
        .create_lesson(&admin, &course, "Members", "PUBLISHED")
        .await;
    let path = format!("/api/user/lessons/{lesson}");

    let before = app.get(&path, Some(&user.token)).await;
    app.join(&user, &course).await;
    let during = app.get(&path, Some(&user.token)).await;
    app.leave(&user, &course).await;
    let after = app.get(&path, Some(&user.token)).await;

    before.expect_error(404, "not_found");
    assert_eq!(during.expect(200)["name"], "Members");
    after.expect_error(404, "not_found");
}

async fn a_hidden_lesson_is_never_readable_even_when_enrolled(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let hidden = app.create_lesson(&admin, &course, "Secret", "HIDDEN").await;
    app.join(&user, &course).await;

    let read = app
        .get(&format!("/api/user/lessons/{hidden}"), Some(&user.token))
        .await;
    let progress = app
        .put(
            &format!("/api/user/lessons/{hidden}/progress"),
            Some(&user.token),
            json!({"progress": "IN_PROGRESS"}),
        )
        .await;

    read.expect_error(404, "not_found");
    progress.expect_error(404, "not_found");
}

async fn lessons_of_a_course_turned_draft_are_no_longer_readable(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let lesson = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;
    app.join(&user, &course).await;
    app.get(&format!("/api/user/lessons/{lesson}"), Some(&user.token))
        .await
        .expect(200);

    app.patch(
        &format!("/api/admin/courses/{course}"),
        Some(&admin.token),
        json!({"state": "DRAFT"}),
    )
    .await
    .expect(200);

    app.get(&format!("/api/user/lessons/{lesson}"), Some(&user.token))
        .await
        .expect_error(404, "not_found");
    app.get(&format!("/api/user/courses/{course}"), Some(&user.token))
        .await
        .expect_error(404, "not_found");
    app.put(
        &format!("/api/user/lessons/{lesson}/progress"),
        Some(&user.token),
        json!({"progress": "COMPLETED"}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn progress_needs_enrolment_even_on_a_public_lesson(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let lesson = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;
    let path = format!("/api/user/lessons/{lesson}/progress");

    let outsider = app
        .put(&path, Some(&user.token), json!({"progress": "IN_PROGRESS"}))
        .await;
    app.join(&user, &course).await;
    let member = app
        .put(&path, Some(&user.token), json!({"progress": "IN_PROGRESS"}))
        .await;

    outsider.expect_error(404, "not_found");
    assert_eq!(
        member.expect(200),
        json!({"lessonId": lesson, "progress": "IN_PROGRESS"})
    );
}

async fn progress_takes_each_value_in_turn(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let lesson = app
        .create_lesson(&admin, &course, "Members", "PUBLISHED")
        .await;
    app.join(&user, &course).await;
    let path = format!("/api/user/lessons/{lesson}");

    for progress in ["IN_PROGRESS", "COMPLETED", "NOT_STARTED", "COMPLETED"] {
        app.set_progress(&user, &lesson, progress).await;

        let body = app.get(&path, Some(&user.token)).await.expect(200);
        assert_eq!(body["progress"], progress);
    }
}

async fn participants_show_names_by_join_date_but_never_emails(app: TestApp) {
    let admin = app.admin().await;
    let (first, second) = (app.user().await, app.user().await);
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&first, &course).await;
    tick().await;
    app.join(&second, &course).await;

    let body = app
        .get(
            &format!("/api/user/courses/{course}/participants"),
            Some(&second.token),
        )
        .await
        .expect(200);

    assert_eq!(pluck(&body, "id"), [json!(first.id), json!(second.id)]);
    assert_eq!(
        names(&body),
        [
            format!("Name of {}", first.email),
            format!("Name of {}", second.email)
        ]
    );
    for item in body["data"].as_array().unwrap() {
        assert_eq!(keys(item), ["id", "image", "name"]);
    }
    assert!(!body.to_string().contains("\"email\""));
    assert_eq!(
        (&body["total"], &body["limit"], &body["totalPages"]),
        (&json!(2), &json!(10), &json!(1))
    );
}

async fn participants_are_hidden_from_users_not_enrolled(app: TestApp) {
    let admin = app.admin().await;
    let (member, outsider) = (app.user().await, app.user().await);
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&member, &course).await;
    let path = format!("/api/user/courses/{course}/participants");
    app.get(&path, Some(&member.token)).await.expect(200);

    let outsider_reply = app.get(&path, Some(&outsider.token)).await;
    app.leave(&member, &course).await;
    let former_reply = app.get(&path, Some(&member.token)).await;

    outsider_reply.expect_error(404, "not_found");
    former_reply.expect_error(404, "not_found");
}

/// Nothing is read from the database for a page the user may not see, beyond what tells so: a
/// course page's user state waits for the course, and a participants list for the enrolment.
async fn a_page_the_user_may_not_see_reads_nothing_more(app: TestApp) {
    let admin = app.admin().await;
    let (member, outsider) = (app.user().await, app.user().await);
    let draft = app.create_course(&admin, "Draft", "DRAFT").await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&member, &course).await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    // Who the token belongs to is cached from here on.
    app.get("/api/me", Some(&outsider.token)).await.expect(200);

    for missing in [unknown, draft.as_str()] {
        let before = app.state.db.queries();
        app.get(
            &format!("/api/user/courses/{missing}"),
            Some(&outsider.token),
        )
        .await
        .expect_error(404, "not_found");
        assert_eq!(
            app.state.db.queries() - before,
            1,
            "course {missing}: only the course is read, not the user's state in it"
        );
    }
    let participants = format!("/api/user/courses/{course}/participants");
    let before = app.state.db.queries();
    app.get(&participants, Some(&outsider.token))
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        app.state.db.queries() - before,
        1,
        "an outsider reads only their own state, not the participants"
    );
    // The member's state is cached (joining refreshed it); the list was not stored for the
    // outsider, so it is read now.
    let before = app.state.db.queries();
    app.get(&participants, Some(&member.token))
        .await
        .expect_cache(200, "MISS");
    assert_eq!(app.state.db.queries() - before, 1);
}

async fn participants_are_paged(app: TestApp) {
    let admin = app.admin().await;
    let (first, second) = (app.user().await, app.user().await);
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&first, &course).await;
    tick().await;
    app.join(&second, &course).await;

    let body = app
        .get(
            &format!("/api/user/courses/{course}/participants?limit=1&page=2"),
            Some(&first.token),
        )
        .await
        .expect(200);

    assert_eq!(pluck(&body, "id"), [json!(second.id)]);
    assert_eq!(
        (
            &body["total"],
            &body["page"],
            &body["limit"],
            &body["totalPages"]
        ),
        (&json!(2), &json!(2), &json!(1), &json!(2))
    );
    let past_the_end = app
        .get(
            &format!("/api/user/courses/{course}/participants?limit=1&page=3"),
            Some(&first.token),
        )
        .await
        .expect(200);
    assert_eq!(
        (&past_the_end["data"], &past_the_end["total"]),
        (&json!([]), &json!(2))
    );
}

async fn an_admin_may_use_the_user_routes(app: TestApp) {
    let author = app.admin().await;
    let reader = app.admin().await;
    let course = app.create_course(&author, "Shared", "PUBLISHED").await;

    app.join(&reader, &course).await;

    let list = app
        .get("/api/user/courses", Some(&reader.token))
        .await
        .expect(200);
    assert_eq!(names(&list), ["Shared"]);
}

on_both_backends!(
    a_user_sees_the_courses_they_joined_newest_enrolment_first,
    a_user_without_enrolments_gets_an_empty_page_and_it_is_cached,
    rejoining_a_course_moves_it_back_to_the_top,
    joining_twice_keeps_one_enrolment_and_its_date,
    a_join_or_leave_found_done_is_shown_at_once,
    a_draft_course_can_be_neither_joined_nor_read,
    an_unknown_course_cannot_be_joined_left_or_read,
    leaving_is_idempotent_and_answers_enrolled_false,
    the_user_course_list_pages_and_searches,
    a_long_list_of_earlier_courses_pages_across_chunks,
    a_corrupt_course_list_part_is_read_from_the_database,
    the_course_detail_shows_visible_lessons_by_rank_with_progress,
    progress_is_not_shown_once_the_user_left,
    a_public_lesson_is_readable_without_enrolment,
    a_published_lesson_is_readable_only_while_enrolled,
    a_hidden_lesson_is_never_readable_even_when_enrolled,
    lessons_of_a_course_turned_draft_are_no_longer_readable,
    progress_needs_enrolment_even_on_a_public_lesson,
    progress_takes_each_value_in_turn,
    participants_show_names_by_join_date_but_never_emails,
    participants_are_hidden_from_users_not_enrolled,
    a_page_the_user_may_not_see_reads_nothing_more,
    participants_are_paged,
    an_admin_may_use_the_user_routes,
);
