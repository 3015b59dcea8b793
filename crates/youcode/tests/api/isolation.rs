//! No one sees another's data: an admin only their own courses, a user only their own enrolments
//! and progress, even right after the other's cached read.

use serde_json::json;

use crate::helpers::{TestApp, names, pluck};
use crate::on_both_backends;

async fn an_admin_lists_only_their_own_courses(app: TestApp) {
    let (ada, bob) = (app.admin().await, app.admin().await);
    app.create_course(&ada, "Ada one", "PUBLISHED").await;
    app.create_course(&ada, "Ada two", "DRAFT").await;
    app.create_course(&bob, "Bob one", "PUBLISHED").await;

    let ada_list = app.warm("/api/admin/courses", Some(&ada.token)).await;
    let bob_first = app.get("/api/admin/courses", Some(&bob.token)).await;
    let bob_search = app
        .get("/api/admin/courses?search=ada", Some(&bob.token))
        .await
        .expect(200);

    let mut ada_names = names(&ada_list);
    ada_names.sort();
    assert_eq!(ada_names, ["Ada one", "Ada two"]);
    assert_eq!(ada_list["total"], 2);
    let bob_list = bob_first.expect_cache(200, "MISS");
    assert_eq!(names(&bob_list), ["Bob one"]);
    assert_eq!(bob_list["total"], 1);
    assert_eq!(bob_search["total"], 0);
}

async fn an_admin_gets_404_on_every_route_of_another_admins_course(app: TestApp) {
    let (owner, other) = (app.admin().await, app.admin().await);
    let user = app.user().await;
    let course = app.create_course(&owner, "Owned", "PUBLISHED").await;
    let lesson = app.create_lesson(&owner, &course, "Lesson", "PUBLIC").await;
    app.join(&user, &course).await;
    let base = format!("/api/admin/courses/{course}");
    let reads = [
        base.clone(),
        format!("{base}/lessons"),
        format!("{base}/lessons/{lesson}"),
        format!("{base}/participants"),
    ];
    // The owner's reads are cached first: the other admin must still not get them.
    for path in &reads {
        app.warm(path, Some(&owner.token)).await;
    }

    for path in &reads {
        let reply = app.get(path, Some(&other.token)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (404, "not_found"),
            "GET {path}: {}",
            reply.body
        );
    }
    let writes = [
        app.patch(&base, Some(&other.token), json!({"name": "Stolen"}))
            .await,
        app.post(
            &format!("{base}/lessons"),
            Some(&other.token),
            json!({"name": "Planted"}),
        )
        .await,
        app.patch(
            &format!("{base}/lessons/{lesson}"),
            Some(&other.token),
            json!({"name": "Stolen lesson"}),
        )
        .await,
        app.delete(&format!("{base}/lessons/{lesson}"), Some(&other.token))
            .await,
        app.delete(&base, Some(&other.token)).await,
    ];
    for reply in writes {
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (404, "not_found"),
            "{}",
            reply.body
        );
    }

    let detail = app.get(&base, Some(&owner.token)).await.expect(200);
    assert_eq!(
        (
            &detail["name"],
            &detail["lessonCount"],
            &detail["participantCount"]
        ),
        (&json!("Owned"), &json!(1), &json!(1))
    );
    let lessons = app
        .get(&format!("{base}/lessons"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(names(&lessons), ["Lesson"]);
}

async fn a_user_never_sees_another_users_courses(app: TestApp) {
    let admin = app.admin().await;
    let (ann, ben) = (app.user().await, app.user().await);
    let anns = app.create_course(&admin, "Ann course", "PUBLISHED").await;
    let bens = app.create_course(&admin, "Ben course", "PUBLISHED").await;
    app.join(&ann, &anns).await;
    app.join(&ben, &bens).await;

    let ann_list = app.warm("/api/user/courses", Some(&ann.token)).await;
    let ben_list = app
        .get("/api/user/courses", Some(&ben.token))
        .await
        .expect_cache(200, "MISS");
    let ben_search = app
        .get("/api/user/courses?search=ann", Some(&ben.token))
        .await
        .expect(200);

    assert_eq!(names(&ann_list), ["Ann course"]);
    assert_eq!(names(&ben_list), ["Ben course"]);
    assert_eq!(ben_search["total"], 0);
}

async fn a_user_never_gets_another_users_enrolment_or_progress_in_a_course(app: TestApp) {
    let admin = app.admin().await;
    let (ann, ben) = (app.user().await, app.user().await);
    let course = app.create_course(&admin, "Shared", "PUBLISHED").await;
    let lesson = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;
    app.join(&ann, &course).await;
    app.set_progress(&ann, &lesson, "COMPLETED").await;
    let path = format!("/api/user/courses/{course}");

    let ann_view = app.warm(&path, Some(&ann.token)).await;
    let ben_view = app
        .get(&path, Some(&ben.token))
        .await
        .expect_cache(200, "MISS");

    assert_eq!(ann_view["enrolled"], true);
    assert_eq!(ann_view["lessons"][0]["progress"], "COMPLETED");
    assert_eq!(ben_view["enrolled"], false);
    assert_eq!(ben_view["lessons"][0]["progress"], "NOT_STARTED");
    assert_eq!(ben_view["name"], "Shared");
}

async fn a_user_never_gets_another_users_progress_in_a_lesson(app: TestApp) {
    let admin = app.admin().await;
    let (ann, ben) = (app.user().await, app.user().await);
    let course = app.create_course(&admin, "Shared", "PUBLISHED").await;
    let open = app.create_lesson(&admin, &course, "Open", "PUBLIC").await;
    let members = app
        .create_lesson(&admin, &course, "Members", "PUBLISHED")
        .await;
    app.join(&ann, &course).await;
    app.join(&ben, &course).await;
    app.set_progress(&ann, &open, "COMPLETED").await;
    app.set_progress(&ben, &open, "IN_PROGRESS").await;
    let path = format!("/api/user/lessons/{open}");

    // Each read twice: the second comes from the cache (the lesson page is shared, each
    // user's progress is their own entry).
    for outcome in ["MISS", "HIT"] {
        let ann_view = app.get(&path, Some(&ann.token)).await;
        assert_eq!(ann_view.cache.as_deref(), Some(outcome));
        let ann_view = ann_view.expect(200);
        let ben_view = app
            .get(&path, Some(&ben.token))
            .await
            .expect_cache(200, "HIT");
        assert_eq!(ann_view["progress"], "COMPLETED");
        assert_eq!(ben_view["progress"], "IN_PROGRESS");
        assert_eq!(ben_view["id"], open.as_str());
    }
    // Ann's members-only lesson, cached for her, stays closed to a user who is not enrolled.
    let members_path = format!("/api/user/lessons/{members}");
    app.get(&members_path, Some(&ann.token)).await.expect(200);
    app.get(&members_path, Some(&ann.token)).await.expect(200);
    let outsider = app.user().await;
    app.get(&members_path, Some(&outsider.token))
        .await
        .expect_error(404, "not_found");
}

async fn a_shared_participant_list_stays_closed_to_users_not_enrolled(app: TestApp) {
    let admin = app.admin().await;
    let (member, outsider) = (app.user().await, app.user().await);
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    app.join(&member, &course).await;
    let path = format!("/api/user/courses/{course}/participants");
    let list = app.warm(&path, Some(&member.token)).await;
    assert_eq!(pluck(&list, "id"), [json!(member.id)]);

    let reply = app.get(&path, Some(&outsider.token)).await;

    reply.expect_error(404, "not_found");
}

on_both_backends!(
    an_admin_lists_only_their_own_courses,
    an_admin_gets_404_on_every_route_of_another_admins_course,
    a_user_never_sees_another_users_courses,
    a_user_never_gets_another_users_enrolment_or_progress_in_a_course,
    a_user_never_gets_another_users_progress_in_a_lesson,
    a_shared_participant_list_stays_closed_to_users_not_enrolled,
);
