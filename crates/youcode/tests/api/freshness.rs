//! After every kind of write, each read route it affects answers fresh data at once: the route is
//! read (MISS) and read again (HIT), the write is made, and the next read is a MISS showing it.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, names, pluck};
use crate::on_both_backends;

/// A published course with a PUBLIC lesson (rank 1) and a PUBLISHED one (rank 2), and a user
/// enrolled in it.
struct World {
    admin: TestUser,
    user: TestUser,
    course: String,
    public: String,
    members: String,
}

impl World {
    async fn new(app: &TestApp) -> Self {
        let admin = app.admin().await;
        let user = app.user().await;
        let course = app.create_course(&admin, "Rust course", "PUBLISHED").await;
        let public = app
            .create_lesson(&admin, &course, "Open lesson", "PUBLIC")
            .await;
        let members = app
            .create_lesson(&admin, &course, "Members lesson", "PUBLISHED")
            .await;
        app.join(&user, &course).await;
        Self {
            admin,
            user,
            course,
            public,
            members,
        }
    }

    fn admin_course(&self) -> String {
        format!("/api/admin/courses/{}", self.course)
    }
    fn admin_lessons(&self) -> String {
        format!("/api/admin/courses/{}/lessons", self.course)
    }
    fn admin_lesson(&self, lesson: &str) -> String {
        format!("/api/admin/courses/{}/lessons/{lesson}", self.course)
    }
    fn admin_participants(&self) -> String {
        format!("/api/admin/courses/{}/participants", self.course)
    }
    fn user_course(&self) -> String {
        format!("/api/user/courses/{}", self.course)
    }
    fn user_participants(&self) -> String {
        format!("/api/user/courses/{}/participants", self.course)
    }
    fn user_lesson(lesson: &str) -> String {
        format!("/api/user/lessons/{lesson}")
    }
    fn admin(&self) -> Option<&str> {
        Some(&self.admin.token)
    }
    fn user(&self) -> Option<&str> {
        Some(&self.user.token)
    }
}

/// Reads `path` after a write: a MISS (the old entry was invalidated), returning the body.
async fn fresh(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    read_after_write(app, path, token, "MISS").await
}

/// Reads `path` after a write that refreshed it for its author (see `docs/API.md`): a HIT that
/// shows the write.
async fn refreshed(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    read_after_write(app, path, token, "HIT").await
}

async fn read_after_write(app: &TestApp, path: &str, token: Option<&str>, outcome: &str) -> Value {
    let reply = app.get(path, token).await;
    assert_eq!(
        (reply.status.as_u16(), reply.cache.as_deref()),
        (200, Some(outcome)),
        "{path} after the write, body: {}",
        reply.body
    );
    reply.body
}

/// Reads `path` after a write that removed what it shows: 404.
async fn gone(app: &TestApp, path: &str, token: Option<&str>) {
    let reply = app.get(path, token).await;
    assert_eq!(
        (reply.status.as_u16(), reply.error_code()),
        (404, "not_found"),
        "{path} after the write, body: {}",
        reply.body
    );
}

/// The lessons of a user course detail as `(name, rank)`.
fn user_course_lessons(body: &Value) -> Vec<(String, i64)> {
    body["lessons"]
        .as_array()
        .unwrap_or_else(|| panic!("not a course detail: {body}"))
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

async fn a_new_course_shows_at_once_in_the_admin_lists(app: TestApp) {
    let w = World::new(&app).await;
    app.warm("/api/admin/courses", w.admin()).await;
    let search = "/api/admin/courses?search=haskell";
    let before = app.warm(search, w.admin()).await;
    assert_eq!(before["total"], 0);

    app.post(
        "/api/admin/courses",
        w.admin(),
        json!({"name": "Haskell course"}),
    )
    .await
    .expect(201);

    let list = fresh(&app, "/api/admin/courses", w.admin()).await;
    assert_eq!(names(&list), ["Haskell course", "Rust course"]);
    assert_eq!(list["total"], 2);
    let found = fresh(&app, search, w.admin()).await;
    assert_eq!(names(&found), ["Haskell course"]);
}

async fn renaming_a_course_shows_at_once_everywhere_it_appears(app: TestApp) {
    let w = World::new(&app).await;
    let public_lesson = World::user_lesson(&w.public);
    app.warm("/api/public/lessons", None).await;
    app.warm("/api/user/courses", w.user()).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&public_lesson, w.user()).await;
    app.warm("/api/admin/courses", w.admin()).await;
    app.warm(&w.admin_course(), w.admin()).await;

    app.patch(
        &w.admin_course(),
        w.admin(),
        json!({"name": "Renamed course", "presentation": "New words"}),
    )
    .await
    .expect(200);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(pluck(&public, "courseName"), [json!("Renamed course")]);
    let enrolments = fresh(&app, "/api/user/courses", w.user()).await;
    assert_eq!(names(&enrolments), ["Renamed course"]);
    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(
        (&detail["name"], &detail["presentation"]),
        (&json!("Renamed course"), &json!("New words"))
    );
    let lesson = fresh(&app, &public_lesson, w.user()).await;
    assert_eq!(lesson["courseName"], "Renamed course");
    let list = fresh(&app, "/api/admin/courses", w.admin()).await;
    assert_eq!(names(&list), ["Renamed course"]);
    let admin_detail = refreshed(&app, &w.admin_course(), w.admin()).await;
    assert_eq!(
        (&admin_detail["name"], &admin_detail["presentation"]),
        (&json!("Renamed course"), &json!("New words"))
    );
}

async fn a_new_presentation_alone_shows_at_once_on_the_course_pages(app: TestApp) {
    let w = World::new(&app).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&w.admin_course(), w.admin()).await;
    let list = app.warm("/api/admin/courses", w.admin()).await;

    app.patch(
        &w.admin_course(),
        w.admin(),
        json!({"presentation": "Only this changed"}),
    )
    .await
    .expect(200);

    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(detail["presentation"], "Only this changed");
    let admin_detail = refreshed(&app, &w.admin_course(), w.admin()).await;
    assert_eq!(admin_detail["presentation"], "Only this changed");
    let list_after = app.get("/api/admin/courses", w.admin()).await.expect(200);
    assert_eq!(list_after, list, "the list shows no presentation");
}

async fn a_new_image_alone_shows_at_once_everywhere_it_appears(app: TestApp) {
    let w = World::new(&app).await;
    let image = "https://img.example.org/new.png";
    app.warm("/api/user/courses", w.user()).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm("/api/admin/courses", w.admin()).await;
    app.warm(&w.admin_course(), w.admin()).await;

    app.patch(&w.admin_course(), w.admin(), json!({"image": image}))
        .await
        .expect(200);

    let enrolments = fresh(&app, "/api/user/courses", w.user()).await;
    assert_eq!(pluck(&enrolments, "image"), [json!(image)]);
    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(detail["image"], image);
    let list = fresh(&app, "/api/admin/courses", w.admin()).await;
    assert_eq!(pluck(&list, "image"), [json!(image)]);
    let admin_detail = refreshed(&app, &w.admin_course(), w.admin()).await;
    assert_eq!(admin_detail["image"], image);

    app.patch(&w.admin_course(), w.admin(), json!({"image": null}))
        .await
        .expect(200);

    let enrolments = fresh(&app, "/api/user/courses", w.user()).await;
    assert_eq!(pluck(&enrolments, "image"), [Value::Null]);
    let list = fresh(&app, "/api/admin/courses", w.admin()).await;
    assert_eq!(pluck(&list, "image"), [Value::Null]);
}

/// `len` characters that do not compress: pseudo-random CJK ideographs of four UTF-8 bytes each.
fn incompressible(len: usize, seed: u32) -> String {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            char::from_u32(0x2_0000 + (state >> 8) % 0xA6DF).expect("a CJK ideograph")
        })
        .collect()
}

async fn the_longest_names_and_images_show_in_course_lists(app: TestApp) {
    let w = World::new(&app).await;
    // As many bytes as the limits allow (200-character course names, 100-character user names,
    // 2000-character image URLs), in text that does not compress: more than a PostgreSQL index
    // row holds, unless long image URLs stay out of the enrolments' copies.
    sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
        .bind(incompressible(100, 1))
        .bind(&w.admin.id)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let name = incompressible(200, 2);
    let image = |len: usize, seed: u32| {
        let host = "https://img.example.org/";
        format!("{host}{}", incompressible(len - host.len(), seed))
    };
    app.patch(
        &w.admin_course(),
        w.admin(),
        json!({"name": name, "image": image(2000, 3)}),
    )
    .await
    .expect(200);
    let newcomer = app.user().await;
    app.join(&newcomer, &w.course).await;
    for token in [w.user(), Some(newcomer.token.as_str())] {
        let list = fresh(&app, "/api/user/courses", token).await;
        assert_eq!(
            (names(&list), pluck(&list, "image")),
            (vec![name.clone()], vec![json!(image(2000, 3))])
        );
    }

    // The longest image URL copied, one too long, and a short one.
    for next in [image(300, 4), image(301, 5), image(2000, 6), image(40, 7)] {
        app.patch(&w.admin_course(), w.admin(), json!({"image": next}))
            .await
            .expect(200);
        let list = fresh(&app, "/api/user/courses", Some(&newcomer.token)).await;
        assert_eq!(pluck(&list, "image"), [json!(next)]);
    }
}

async fn a_join_during_a_course_write_copies_what_it_commits(app: TestApp) {
    let w = World::new(&app).await;
    let newcomer = app.user().await;
    // A course write under way, as `update_course` makes it: the course row locked, renamed, and
    // the copies it can see refreshed, not yet committed.
    let mut tx = app.state.db.pool().begin().await.unwrap();
    for statement in [
        "UPDATE courses SET name = 'Renamed' WHERE id = $1",
        "UPDATE enrolments SET course_name = 'Renamed' WHERE course_id = $1",
    ] {
        sqlx::query(statement)
            .bind(&w.course)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    // The join must wait for the write, then copy the new name.
    let commit_later = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tx.commit().await.unwrap();
    };
    futures::join!(app.join(&newcomer, &w.course), commit_later);

    let list = app
        .get("/api/user/courses", Some(&newcomer.token))
        .await
        .expect(200);
    assert_eq!(names(&list), ["Renamed"]);
}

async fn renaming_a_course_reorders_the_public_list_at_once(app: TestApp) {
    let w = World::new(&app).await;
    let other = app
        .create_course(&w.admin, "Scala course", "PUBLISHED")
        .await;
    app.create_lesson(&w.admin, &other, "Scala lesson", "PUBLIC")
        .await;
    let before = app.warm("/api/public/lessons", None).await;
    assert_eq!(names(&before), ["Open lesson", "Scala lesson"]);

    app.patch(
        &format!("/api/admin/courses/{other}"),
        w.admin(),
        json!({"name": "Ada course"}),
    )
    .await
    .expect(200);

    let after = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(names(&after), ["Scala lesson", "Open lesson"]);
}

async fn unpublishing_a_course_hides_it_from_users_at_once(app: TestApp) {
    let w = World::new(&app).await;
    let (public_lesson, members_lesson) = (
        World::user_lesson(&w.public),
        World::user_lesson(&w.members),
    );
    app.warm("/api/public/lessons", None).await;
    app.warm("/api/user/courses", w.user()).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&w.user_participants(), w.user()).await;
    app.warm(&public_lesson, w.user()).await;
    app.warm(&members_lesson, w.user()).await;
    app.warm("/api/admin/courses", w.admin()).await;
    app.warm(&w.admin_course(), w.admin()).await;

    app.patch(&w.admin_course(), w.admin(), json!({"state": "DRAFT"}))
        .await
        .expect(200);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(public["total"], 0);
    let enrolments = fresh(&app, "/api/user/courses", w.user()).await;
    assert_eq!(enrolments["total"], 0);
    gone(&app, &w.user_course(), w.user()).await;
    gone(&app, &w.user_participants(), w.user()).await;
    gone(&app, &public_lesson, w.user()).await;
    gone(&app, &members_lesson, w.user()).await;
    let list = fresh(&app, "/api/admin/courses", w.admin()).await;
    assert_eq!(pluck(&list, "state"), [json!("DRAFT")]);
    let detail = refreshed(&app, &w.admin_course(), w.admin()).await;
    assert_eq!(detail["state"], "DRAFT");
}

async fn publishing_a_course_shows_its_public_lessons_at_once(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Soon", "DRAFT").await;
    app.create_lesson(&admin, &course, "Teaser", "PUBLIC").await;
    let before = app.warm("/api/public/lessons", None).await;
    assert_eq!(before["total"], 0);

    app.patch(
        &format!("/api/admin/courses/{course}"),
        Some(&admin.token),
        json!({"state": "PUBLISHED"}),
    )
    .await
    .expect(200);

    let after = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(names(&after), ["Teaser"]);
}

async fn deleting_a_course_removes_it_from_every_route_at_once(app: TestApp) {
    let w = World::new(&app).await;
    let public_lesson = World::user_lesson(&w.public);
    let admin_lesson = w.admin_lesson(&w.public);
    app.warm("/api/public/lessons", None).await;
    app.warm("/api/user/courses", w.user()).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&w.user_participants(), w.user()).await;
    app.warm(&public_lesson, w.user()).await;
    app.warm("/api/admin/courses", w.admin()).await;
    app.warm(&w.admin_course(), w.admin()).await;
    app.warm(&w.admin_lessons(), w.admin()).await;
    app.warm(&admin_lesson, w.admin()).await;
    app.warm(&w.admin_participants(), w.admin()).await;

    app.delete(&w.admin_course(), w.admin()).await.expect(204);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(public["total"], 0);
    let enrolments = fresh(&app, "/api/user/courses", w.user()).await;
    assert_eq!(enrolments["total"], 0);
    let list = fresh(&app, "/api/admin/courses", w.admin()).await;
    assert_eq!(list["total"], 0);
    gone(&app, &w.user_course(), w.user()).await;
    gone(&app, &w.user_participants(), w.user()).await;
    gone(&app, &public_lesson, w.user()).await;
    gone(&app, &w.admin_course(), w.admin()).await;
    gone(&app, &w.admin_lessons(), w.admin()).await;
    gone(&app, &admin_lesson, w.admin()).await;
    gone(&app, &w.admin_participants(), w.admin()).await;
}

async fn a_new_lesson_shows_at_once_in_every_lesson_view(app: TestApp) {
    let w = World::new(&app).await;
    let public_lesson = World::user_lesson(&w.public);
    let admin_lesson = w.admin_lesson(&w.public);
    app.warm("/api/public/lessons", None).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&public_lesson, w.user()).await;
    app.warm(&w.admin_course(), w.admin()).await;
    app.warm(&w.admin_lessons(), w.admin()).await;
    app.warm(&admin_lesson, w.admin()).await;

    app.post(
        &w.admin_lessons(),
        w.admin(),
        json!({"name": "Welcome", "state": "PUBLIC", "rank": 1}),
    )
    .await
    .expect(201);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(names(&public), ["Welcome", "Open lesson"]);
    assert_eq!(pluck(&public, "rank"), [json!(1), json!(2)]);
    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(detail["lessonCount"], 3);
    assert_eq!(
        user_course_lessons(&detail),
        pairs(&[("Welcome", 1), ("Open lesson", 2), ("Members lesson", 3)])
    );
    let moved = fresh(&app, &public_lesson, w.user()).await;
    assert_eq!(moved["rank"], 2);
    let admin_detail = fresh(&app, &w.admin_course(), w.admin()).await;
    assert_eq!(admin_detail["lessonCount"], 3);
    let lessons = fresh(&app, &w.admin_lessons(), w.admin()).await;
    assert_eq!(
        names(&lessons),
        ["Welcome", "Open lesson", "Members lesson"]
    );
    let admin_moved = fresh(&app, &admin_lesson, w.admin()).await;
    assert_eq!(admin_moved["rank"], 2);
}

async fn editing_a_lesson_shows_at_once_in_every_lesson_view(app: TestApp) {
    let w = World::new(&app).await;
    let public_lesson = World::user_lesson(&w.public);
    let admin_lesson = w.admin_lesson(&w.public);
    app.warm("/api/public/lessons", None).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&public_lesson, w.user()).await;
    app.warm(&w.admin_lessons(), w.admin()).await;
    app.warm(&admin_lesson, w.admin()).await;

    app.patch(
        &admin_lesson,
        w.admin(),
        json!({"name": "Open lesson v2", "content": "Rewritten"}),
    )
    .await
    .expect(200);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(names(&public), ["Open lesson v2"]);
    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(detail["lessons"][0]["name"], "Open lesson v2");
    let lesson = fresh(&app, &public_lesson, w.user()).await;
    assert_eq!(
        (&lesson["name"], &lesson["content"]),
        (&json!("Open lesson v2"), &json!("Rewritten"))
    );
    let lessons = fresh(&app, &w.admin_lessons(), w.admin()).await;
    assert_eq!(names(&lessons), ["Open lesson v2", "Members lesson"]);
    let admin = refreshed(&app, &admin_lesson, w.admin()).await;
    assert_eq!(
        (&admin["name"], &admin["content"]),
        (&json!("Open lesson v2"), &json!("Rewritten"))
    );
}

async fn renaming_a_public_lesson_refetches_only_the_searches_it_can_change(app: TestApp) {
    let w = World::new(&app).await;
    app.create_lesson(&w.admin, &w.course, "Testing basics", "PUBLIC")
        .await;
    let search = |text: &str| format!("/api/public/lessons?search={text}");
    for text in ["open", "closed", "lesson", "testing"] {
        app.warm(&search(text), None).await;
    }
    app.warm("/api/public/lessons", None).await;
    app.warm(&w.admin_course(), w.admin()).await;

    app.patch(
        &w.admin_lesson(&w.public),
        w.admin(),
        json!({"name": "Closed lesson"}),
    )
    .await
    .expect(200);

    let old = fresh(&app, &search("open"), None).await;
    assert_eq!((names(&old).len(), &old["total"]), (0, &json!(0)));
    let new = fresh(&app, &search("closed"), None).await;
    assert_eq!(
        (names(&new), &new["total"]),
        (vec!["Closed lesson".to_owned()], &json!(1))
    );
    // "lesson" is in both names: its page shows the new name, its length is still cached.
    let before = app.state.db.queries();
    let both = fresh(&app, &search("lesson"), None).await;
    assert_eq!(
        (names(&both), &both["total"]),
        (vec!["Closed lesson".to_owned()], &json!(1))
    );
    assert_eq!(
        app.state.db.queries() - before,
        1,
        "the length was counted again"
    );
    let all = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(names(&all), ["Closed lesson", "Testing basics"]);
    // Neither name contains "testing": its results cannot have changed, and stay cached.
    let untouched = app
        .get(&search("testing"), None)
        .await
        .expect_cache(200, "HIT");
    assert_eq!(names(&untouched), ["Testing basics"]);
    // The admin's course page shows how many lessons there are, which a rename leaves alone.
    let detail = app
        .get(&w.admin_course(), w.admin())
        .await
        .expect_cache(200, "HIT");
    assert_eq!(detail["lessonCount"], 3);
}

async fn a_write_refetches_the_searches_of_the_name_as_stored(app: TestApp) {
    // A rename, and an edit that keeps the name: either stores the application's fold, so the
    // lesson leaves the searches its old stored form matched.
    for change in [
        json!({"name": "Closed lesson"}),
        json!({"content": "New content"}),
    ] {
        let w = World::new(&app).await;
        let admin_lesson = w.admin_lesson(&w.public);
        app.patch(&admin_lesson, w.admin(), json!({"name": "ΟΔΟΣ"}))
            .await
            .expect(200);
        // A row folded by the database's LOWER before the application folded names itself: a
        // final σ where the application's fold writes ς.
        sqlx::query("UPDATE lessons SET name_folded = 'οδοσ' WHERE id = $1")
            .bind(&w.public)
            .execute(app.state.db.pool())
            .await
            .unwrap();
        let search = "/api/public/lessons?search=δοσ";
        assert_eq!(names(&app.warm(search, None).await), ["ΟΔΟΣ"]);

        app.patch(&admin_lesson, w.admin(), change)
            .await
            .expect(200);

        let after = fresh(&app, search, None).await;
        assert_eq!((names(&after).len(), &after["total"]), (0, &json!(0)));
    }
}

async fn a_lesson_leaving_the_public_list_leaves_its_searches_at_once(app: TestApp) {
    let w = World::new(&app).await;
    // Both a search's page and its length (cached apart, for every page) must follow.
    let first = "/api/public/lessons?search=open";
    let second = "/api/public/lessons?search=open&page=2";
    assert_eq!(app.warm(first, None).await["total"], 1);
    assert_eq!(app.warm(second, None).await["total"], 1);

    app.patch(
        &w.admin_lesson(&w.public),
        w.admin(),
        json!({"state": "PUBLISHED"}),
    )
    .await
    .expect(200);

    let page = fresh(&app, first, None).await;
    assert_eq!((names(&page).len(), &page["total"]), (0, &json!(0)));
    assert_eq!(fresh(&app, second, None).await["total"], 0);
}

async fn new_lesson_content_alone_shows_at_once_to_readers(app: TestApp) {
    let w = World::new(&app).await;
    let (public_lesson, members_lesson) = (
        World::user_lesson(&w.public),
        World::user_lesson(&w.members),
    );
    let admin_members = w.admin_lesson(&w.members);
    app.warm(&public_lesson, w.user()).await;
    app.warm(&members_lesson, w.user()).await;
    app.warm(&admin_members, w.admin()).await;
    let list = app.warm("/api/public/lessons", None).await;

    app.patch(
        &w.admin_lesson(&w.public),
        w.admin(),
        json!({"content": "Open content v2"}),
    )
    .await
    .expect(200);
    app.patch(
        &admin_members,
        w.admin(),
        json!({"content": "Members content v2"}),
    )
    .await
    .expect(200);

    let open = fresh(&app, &public_lesson, w.user()).await;
    assert_eq!(open["content"], "Open content v2");
    let members = fresh(&app, &members_lesson, w.user()).await;
    assert_eq!(members["content"], "Members content v2");
    let admin = refreshed(&app, &admin_members, w.admin()).await;
    assert_eq!(admin["content"], "Members content v2");
    let list_after = app.get("/api/public/lessons", None).await.expect(200);
    assert_eq!(list_after, list, "the public list shows no content");
}

async fn a_hidden_lesson_added_last_shows_at_once_to_the_admin_only(app: TestApp) {
    let w = World::new(&app).await;
    app.warm(&w.admin_lessons(), w.admin()).await;
    app.warm(&w.admin_course(), w.admin()).await;
    app.warm(&w.user_course(), w.user()).await;
    let public = app.warm("/api/public/lessons", None).await;

    app.post(
        &w.admin_lessons(),
        w.admin(),
        json!({"name": "Work in progress"}),
    )
    .await
    .expect(201);

    let lessons = fresh(&app, &w.admin_lessons(), w.admin()).await;
    assert_eq!(
        names(&lessons),
        ["Open lesson", "Members lesson", "Work in progress"]
    );
    assert_eq!(
        fresh(&app, &w.admin_course(), w.admin()).await["lessonCount"],
        3
    );
    let detail = app.get(&w.user_course(), w.user()).await.expect(200);
    assert_eq!(detail["lessonCount"], 2);
    assert_eq!(
        app.get("/api/public/lessons", None).await.expect(200),
        public
    );
}

async fn changing_a_lesson_state_shows_at_once_to_users(app: TestApp) {
    let w = World::new(&app).await;
    let members_lesson = World::user_lesson(&w.members);
    app.warm("/api/public/lessons", None).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&members_lesson, w.user()).await;
    app.warm(&w.admin_lessons(), w.admin()).await;

    app.patch(
        &w.admin_lesson(&w.public),
        w.admin(),
        json!({"state": "PUBLISHED"}),
    )
    .await
    .expect(200);
    app.patch(
        &w.admin_lesson(&w.members),
        w.admin(),
        json!({"state": "HIDDEN"}),
    )
    .await
    .expect(200);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(public["total"], 0);
    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(detail["lessonCount"], 1);
    assert_eq!(
        detail["lessons"][0]["state"], "PUBLISHED",
        "the open lesson is now PUBLISHED, the members one hidden: {detail}"
    );
    gone(&app, &members_lesson, w.user()).await;
    let lessons = fresh(&app, &w.admin_lessons(), w.admin()).await;
    assert_eq!(
        pluck(&lessons, "state"),
        [json!("PUBLISHED"), json!("HIDDEN")]
    );
}

async fn moving_a_lesson_updates_every_lesson_it_passed_at_once(app: TestApp) {
    let w = World::new(&app).await;
    let third = app
        .create_lesson(&w.admin, &w.course, "Third lesson", "PUBLIC")
        .await;
    let (public_lesson, admin_public) = (World::user_lesson(&w.public), w.admin_lesson(&w.public));
    let (members_lesson, admin_members) =
        (World::user_lesson(&w.members), w.admin_lesson(&w.members));
    app.warm("/api/public/lessons", None).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&public_lesson, w.user()).await;
    app.warm(&members_lesson, w.user()).await;
    app.warm(&w.admin_lessons(), w.admin()).await;
    app.warm(&admin_public, w.admin()).await;
    app.warm(&admin_members, w.admin()).await;

    app.patch(&w.admin_lesson(&third), w.admin(), json!({"rank": 1}))
        .await
        .expect(200);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(names(&public), ["Third lesson", "Open lesson"]);
    assert_eq!(pluck(&public, "rank"), [json!(1), json!(2)]);
    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(
        user_course_lessons(&detail),
        pairs(&[
            ("Third lesson", 1),
            ("Open lesson", 2),
            ("Members lesson", 3)
        ])
    );
    assert_eq!(fresh(&app, &public_lesson, w.user()).await["rank"], 2);
    assert_eq!(fresh(&app, &members_lesson, w.user()).await["rank"], 3);
    let lessons = fresh(&app, &w.admin_lessons(), w.admin()).await;
    assert_eq!(
        names(&lessons),
        ["Third lesson", "Open lesson", "Members lesson"]
    );
    assert_eq!(fresh(&app, &admin_public, w.admin()).await["rank"], 2);
    assert_eq!(fresh(&app, &admin_members, w.admin()).await["rank"], 3);
}

async fn deleting_a_lesson_removes_it_and_moves_the_later_ones_up_at_once(app: TestApp) {
    let w = World::new(&app).await;
    let (public_lesson, admin_public) = (World::user_lesson(&w.public), w.admin_lesson(&w.public));
    let (members_lesson, admin_members) =
        (World::user_lesson(&w.members), w.admin_lesson(&w.members));
    app.warm("/api/public/lessons", None).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&public_lesson, w.user()).await;
    app.warm(&members_lesson, w.user()).await;
    app.warm(&w.admin_course(), w.admin()).await;
    app.warm(&w.admin_lessons(), w.admin()).await;
    app.warm(&admin_public, w.admin()).await;
    app.warm(&admin_members, w.admin()).await;

    app.delete(&admin_public, w.admin()).await.expect(204);

    let public = fresh(&app, "/api/public/lessons", None).await;
    assert_eq!(public["total"], 0);
    let detail = fresh(&app, &w.user_course(), w.user()).await;
    assert_eq!(
        user_course_lessons(&detail),
        pairs(&[("Members lesson", 1)])
    );
    gone(&app, &public_lesson, w.user()).await;
    assert_eq!(fresh(&app, &members_lesson, w.user()).await["rank"], 1);
    assert_eq!(
        fresh(&app, &w.admin_course(), w.admin()).await["lessonCount"],
        1
    );
    let lessons = fresh(&app, &w.admin_lessons(), w.admin()).await;
    assert_eq!(
        lessons,
        json!({"data": [{"id": w.members, "name": "Members lesson", "rank": 1, "state": "PUBLISHED"}]})
    );
    gone(&app, &admin_public, w.admin()).await;
    assert_eq!(fresh(&app, &admin_members, w.admin()).await["rank"], 1);
}

async fn joining_a_course_shows_at_once_in_enrolment_and_participant_views(app: TestApp) {
    let w = World::new(&app).await;
    let newcomer = app.user().await;
    let members_lesson = World::user_lesson(&w.members);
    let token = Some(newcomer.token.as_str());
    let before = app.warm("/api/user/courses", token).await;
    assert_eq!(before["total"], 0);
    let outside = app.warm(&w.user_course(), token).await;
    assert_eq!(outside["enrolled"], false);
    app.warm(&w.user_participants(), w.user()).await;
    app.warm(&w.admin_course(), w.admin()).await;
    app.warm(&w.admin_participants(), w.admin()).await;
    app.get(&members_lesson, token)
        .await
        .expect_error(404, "not_found");

    app.join(&newcomer, &w.course).await;

    let enrolments = refreshed(&app, "/api/user/courses", token).await;
    assert_eq!(names(&enrolments), ["Rust course"]);
    let inside = refreshed(&app, &w.user_course(), token).await;
    assert_eq!(inside["enrolled"], true);
    let participants = fresh(&app, &w.user_participants(), w.user()).await;
    assert_eq!(
        pluck(&participants, "id"),
        [json!(w.user.id), json!(newcomer.id)]
    );
    let detail = fresh(&app, &w.admin_course(), w.admin()).await;
    assert_eq!(detail["participantCount"], 2);
    let admin_participants = fresh(&app, &w.admin_participants(), w.admin()).await;
    assert_eq!(
        pluck(&admin_participants, "email"),
        [json!(w.user.email), json!(newcomer.email)]
    );
    // The user's enrolments were already refetched by the reads above (the lesson page itself
    // was cached while it was refused), so this may be a hit: what counts is that it is served.
    let lesson = app.get(&members_lesson, token).await.expect(200);
    assert_eq!(lesson["name"], "Members lesson");
}

async fn leaving_a_course_shows_at_once_and_withdraws_access(app: TestApp) {
    let w = World::new(&app).await;
    let stayer = app.user().await;
    app.join(&stayer, &w.course).await;
    let members_lesson = World::user_lesson(&w.members);
    app.warm("/api/user/courses", w.user()).await;
    app.warm(&w.user_course(), w.user()).await;
    app.warm(&w.user_participants(), w.user()).await;
    app.warm(&members_lesson, w.user()).await;
    app.warm(&w.admin_course(), w.admin()).await;
    app.warm(&w.admin_participants(), w.admin()).await;

    app.leave(&w.user, &w.course).await;

    let enrolments = refreshed(&app, "/api/user/courses", w.user()).await;
    assert_eq!(enrolments["total"], 0);
    let detail = refreshed(&app, &w.user_course(), w.user()).await;
    assert_eq!(detail["enrolled"], false);
    gone(&app, &w.user_participants(), w.user()).await;
    gone(&app, &members_lesson, w.user()).await;
    let participants = fresh(&app, &w.user_participants(), Some(&stayer.token)).await;
    assert_eq!(pluck(&participants, "id"), [json!(stayer.id)]);
    let admin_detail = fresh(&app, &w.admin_course(), w.admin()).await;
    assert_eq!(admin_detail["participantCount"], 1);
    let admin_participants = fresh(&app, &w.admin_participants(), w.admin()).await;
    assert_eq!(pluck(&admin_participants, "email"), [json!(stayer.email)]);
}

/// A user's course list is cached in two parts, courses joined in the last week and earlier
/// ones (see `cache::keys`): leaving an earlier course must refetch the earlier part.
async fn leaving_a_course_joined_long_ago_shows_at_once(app: TestApp) {
    let w = World::new(&app).await;
    let old = app.create_course(&w.admin, "Old course", "PUBLISHED").await;
    app.join(&w.user, &old).await;
    let month_ms: i64 = 30 * 86_400_000;
    sqlx::query("UPDATE enrolments SET created_at = created_at - $1 WHERE course_id = $2")
        .bind(month_ms)
        .bind(&old)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    // The parts were refreshed by the join: read them afresh after the change made by hand.
    app.state.cache.clear().await.unwrap();
    let both = app.warm("/api/user/courses", w.user()).await;
    assert_eq!(names(&both), ["Rust course", "Old course"]);
    let second = app
        .get("/api/user/courses?limit=1&page=2", w.user())
        .await
        .expect_cache(200, "HIT");
    assert_eq!(names(&second), ["Old course"]);
    assert_eq!(second["total"], 2);

    // Joining and leaving a course leaves the earlier part cached.
    let recent = app
        .create_course(&w.admin, "Recent course", "PUBLISHED")
        .await;
    app.join(&w.user, &recent).await;
    let joined = refreshed(&app, "/api/user/courses", w.user()).await;
    assert_eq!(
        names(&joined),
        ["Recent course", "Rust course", "Old course"]
    );
    app.leave(&w.user, &recent).await;
    let left = refreshed(&app, "/api/user/courses", w.user()).await;
    assert_eq!(names(&left), ["Rust course", "Old course"]);

    app.leave(&w.user, &old).await;

    let enrolments = fresh(&app, "/api/user/courses", w.user()).await;
    assert_eq!(names(&enrolments), ["Rust course"]);
    assert_eq!(enrolments["total"], 1);
}

async fn saved_progress_shows_at_once_in_the_lesson_and_the_course(app: TestApp) {
    let w = World::new(&app).await;
    let members_lesson = World::user_lesson(&w.members);
    app.warm(&w.user_course(), w.user()).await;
    let before = app.warm(&members_lesson, w.user()).await;
    assert_eq!(before["progress"], "NOT_STARTED");

    app.warm("/api/user/courses", w.user()).await;

    app.set_progress(&w.user, &w.members, "IN_PROGRESS").await;

    // Progress does not show in the course list: it stays cached.
    app.get("/api/user/courses", w.user())
        .await
        .expect_cache(200, "HIT");
    let lesson = refreshed(&app, &members_lesson, w.user()).await;
    assert_eq!(lesson["progress"], "IN_PROGRESS");
    // The write refreshed the user's progress, which the course page shows too.
    let detail = refreshed(&app, &w.user_course(), w.user()).await;
    assert_eq!(
        pluck(&json!({"data": detail["lessons"]}), "progress"),
        [json!("NOT_STARTED"), json!("IN_PROGRESS")]
    );
    app.get(&members_lesson, w.user())
        .await
        .expect_cache(200, "HIT");

    app.set_progress(&w.user, &w.members, "COMPLETED").await;

    let lesson = refreshed(&app, &members_lesson, w.user()).await;
    assert_eq!(lesson["progress"], "COMPLETED");
}

on_both_backends!(
    a_new_course_shows_at_once_in_the_admin_lists,
    renaming_a_course_shows_at_once_everywhere_it_appears,
    a_new_presentation_alone_shows_at_once_on_the_course_pages,
    a_new_image_alone_shows_at_once_everywhere_it_appears,
    the_longest_names_and_images_show_in_course_lists,
    a_join_during_a_course_write_copies_what_it_commits,
    renaming_a_course_reorders_the_public_list_at_once,
    unpublishing_a_course_hides_it_from_users_at_once,
    publishing_a_course_shows_its_public_lessons_at_once,
    deleting_a_course_removes_it_from_every_route_at_once,
    a_new_lesson_shows_at_once_in_every_lesson_view,
    editing_a_lesson_shows_at_once_in_every_lesson_view,
    renaming_a_public_lesson_refetches_only_the_searches_it_can_change,
    a_write_refetches_the_searches_of_the_name_as_stored,
    a_lesson_leaving_the_public_list_leaves_its_searches_at_once,
    new_lesson_content_alone_shows_at_once_to_readers,
    a_hidden_lesson_added_last_shows_at_once_to_the_admin_only,
    changing_a_lesson_state_shows_at_once_to_users,
    moving_a_lesson_updates_every_lesson_it_passed_at_once,
    deleting_a_lesson_removes_it_and_moves_the_later_ones_up_at_once,
    joining_a_course_shows_at_once_in_enrolment_and_participant_views,
    leaving_a_course_shows_at_once_and_withdraws_access,
    leaving_a_course_joined_long_ago_shows_at_once,
    saved_progress_shows_at_once_in_the_lesson_and_the_course,
);
