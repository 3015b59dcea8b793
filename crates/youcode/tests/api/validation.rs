//! Bad input and missing rights: each answers its status and error code, naming what is wrong.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};
use crate::on_both_backends;

const NOT_A_UUID: &str = "not-a-uuid";
const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// An admin with a published course and a lesson, and a user enrolled in it.
struct Setup {
    admin: TestUser,
    user: TestUser,
    course: String,
    lesson: String,
}

impl Setup {
    async fn new(app: &TestApp) -> Self {
        let admin = app.admin().await;
        let user = app.user().await;
        let course = app.create_course(&admin, "Course", "PUBLISHED").await;
        let lesson = app.create_lesson(&admin, &course, "Lesson", "PUBLIC").await;
        app.join(&user, &course).await;
        Self {
            admin,
            user,
            course,
            lesson,
        }
    }

    /// Every list route, with a token that may read it.
    fn lists(&self) -> Vec<(String, Option<&str>)> {
        let (admin, user) = (
            Some(self.admin.token.as_str()),
            Some(self.user.token.as_str()),
        );
        vec![
            ("/api/public/lessons".into(), None),
            ("/api/user/courses".into(), user),
            (
                format!("/api/user/courses/{}/participants", self.course),
                user,
            ),
            ("/api/admin/courses".into(), admin),
            (
                format!("/api/admin/courses/{}/participants", self.course),
                admin,
            ),
        ]
    }

    /// Every route behind a sign-in, with a body where it takes one.
    fn signed_in_routes(&self) -> Vec<(Method, String, Option<Value>)> {
        let (c, l) = (&self.course, &self.lesson);
        let mut routes = vec![
            (Method::GET, "/api/me".into(), None),
            (Method::GET, "/api/user/courses".into(), None),
            (Method::GET, format!("/api/user/courses/{c}"), None),
            (
                Method::GET,
                format!("/api/user/courses/{c}/participants"),
                None,
            ),
            (
                Method::POST,
                format!("/api/user/courses/{c}/join"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/api/user/courses/{c}/leave"),
                Some(json!({})),
            ),
            (Method::GET, format!("/api/user/lessons/{l}"), None),
            (
                Method::PUT,
                format!("/api/user/lessons/{l}/progress"),
                Some(json!({"progress": "COMPLETED"})),
            ),
        ];
        routes.extend(self.admin_routes());
        routes
    }

    /// Every admin route, with a valid body where it takes one.
    fn admin_routes(&self) -> Vec<(Method, String, Option<Value>)> {
        let (c, l) = (&self.course, &self.lesson);
        vec![
            (Method::GET, "/api/admin/courses".into(), None),
            (
                Method::POST,
                "/api/admin/courses".into(),
                Some(json!({"name": "New"})),
            ),
            (Method::GET, format!("/api/admin/courses/{c}"), None),
            (
                Method::PATCH,
                format!("/api/admin/courses/{c}"),
                Some(json!({"name": "Renamed"})),
            ),
            (Method::DELETE, format!("/api/admin/courses/{c}"), None),
            (Method::GET, format!("/api/admin/courses/{c}/lessons"), None),
            (
                Method::POST,
                format!("/api/admin/courses/{c}/lessons"),
                Some(json!({"name": "New"})),
            ),
            (
                Method::GET,
                format!("/api/admin/courses/{c}/lessons/{l}"),
                None,
            ),
            (
                Method::PATCH,
                format!("/api/admin/courses/{c}/lessons/{l}"),
                Some(json!({"name": "Renamed"})),
            ),
            (
                Method::DELETE,
                format!("/api/admin/courses/{c}/lessons/{l}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/admin/courses/{c}/participants"),
                None,
            ),
            (Method::GET, "/api/admin/cache/stats".into(), None),
            (
                Method::POST,
                "/api/admin/cache/clear".into(),
                Some(json!({})),
            ),
            (
                Method::POST,
                "/api/admin/cache/invalidate".into(),
                Some(json!({"tags": [format!("course:{c}")]})),
            ),
            (Method::GET, "/api/test/cache?action=stats".into(), None),
        ]
    }
}

/// Asserts that every list route answers `query` with `invalid_param` naming `param`.
async fn every_list_refuses(app: &TestApp, setup: &Setup, query: &str, param: &str) {
    for (path, token) in setup.lists() {
        let url = format!("{path}?{query}");
        let reply = app.get(&url, token).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (400, "invalid_param"),
            "GET {url}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(param),
            "GET {url}: the message {message:?} should name {param}"
        );
    }
}

async fn a_page_of_zero_is_refused_by_every_list(app: TestApp) {
    let setup = Setup::new(&app).await;
    every_list_refuses(&app, &setup, "page=0", "page").await;
}

async fn a_negative_page_is_refused_by_every_list(app: TestApp) {
    let setup = Setup::new(&app).await;
    every_list_refuses(&app, &setup, "page=-1", "page").await;
}

async fn a_limit_that_is_not_a_number_is_refused_by_every_list(app: TestApp) {
    let setup = Setup::new(&app).await;
    every_list_refuses(&app, &setup, "limit=abc", "limit").await;
}

async fn a_limit_over_one_hundred_is_refused_by_every_list(app: TestApp) {
    let setup = Setup::new(&app).await;
    every_list_refuses(&app, &setup, "limit=1000", "limit").await;
    every_list_refuses(&app, &setup, "limit=101", "limit").await;
}

async fn a_limit_of_zero_is_refused_by_every_list(app: TestApp) {
    let setup = Setup::new(&app).await;
    every_list_refuses(&app, &setup, "limit=0", "limit").await;
}

async fn a_search_over_one_hundred_characters_is_refused(app: TestApp) {
    let setup = Setup::new(&app).await;
    let long = "x".repeat(101);
    for (path, token) in [
        ("/api/public/lessons", None),
        ("/api/user/courses", Some(setup.user.token.as_str())),
        ("/api/admin/courses", Some(setup.admin.token.as_str())),
    ] {
        let message = app
            .get(&format!("{path}?search={long}"), token)
            .await
            .expect_error(400, "invalid_param");
        assert!(message.starts_with("search"), "{path}: {message}");
    }
}

async fn the_largest_valid_limit_and_search_are_accepted(app: TestApp) {
    let setup = Setup::new(&app).await;
    // 100 characters, 200 bytes: the bound is in characters.
    let accented = "%C3%A9".repeat(100);

    let limit = app
        .get("/api/admin/courses?limit=100", Some(&setup.admin.token))
        .await
        .expect(200);
    let search = app
        .get(
            &format!("/api/admin/courses?search={accented}"),
            Some(&setup.admin.token),
        )
        .await
        .expect(200);

    assert_eq!((&limit["limit"], &limit["total"]), (&json!(100), &json!(1)));
    assert_eq!(search["total"], 0);
}

async fn a_malformed_course_id_is_refused_and_named(app: TestApp) {
    let setup = Setup::new(&app).await;
    let (admin, user) = (
        Some(setup.admin.token.as_str()),
        Some(setup.user.token.as_str()),
    );
    let l = &setup.lesson;
    let cases = [
        (
            Method::GET,
            format!("/api/admin/courses/{NOT_A_UUID}"),
            admin,
        ),
        (
            Method::PATCH,
            format!("/api/admin/courses/{NOT_A_UUID}"),
            admin,
        ),
        (
            Method::DELETE,
            format!("/api/admin/courses/{NOT_A_UUID}"),
            admin,
        ),
        (
            Method::GET,
            format!("/api/admin/courses/{NOT_A_UUID}/lessons"),
            admin,
        ),
        (
            Method::POST,
            format!("/api/admin/courses/{NOT_A_UUID}/lessons"),
            admin,
        ),
        (
            Method::GET,
            format!("/api/admin/courses/{NOT_A_UUID}/lessons/{l}"),
            admin,
        ),
        (
            Method::GET,
            format!("/api/admin/courses/{NOT_A_UUID}/participants"),
            admin,
        ),
        (Method::GET, format!("/api/user/courses/{NOT_A_UUID}"), user),
        (
            Method::GET,
            format!("/api/user/courses/{NOT_A_UUID}/participants"),
            user,
        ),
        (
            Method::POST,
            format!("/api/user/courses/{NOT_A_UUID}/join"),
            user,
        ),
        (
            Method::POST,
            format!("/api/user/courses/{NOT_A_UUID}/leave"),
            user,
        ),
    ];

    for (method, path, token) in cases {
        let body = matches!(method, Method::PATCH | Method::POST).then(|| json!({"name": "X"}));
        let reply = app.call(method.clone(), &path, token, body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (400, "invalid_param"),
            "{method} {path}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("courseId"),
            "{method} {path}: {message}"
        );
    }
}

async fn a_malformed_lesson_id_is_refused_and_named(app: TestApp) {
    let setup = Setup::new(&app).await;
    let (admin, user) = (
        Some(setup.admin.token.as_str()),
        Some(setup.user.token.as_str()),
    );
    let c = &setup.course;
    let cases = [
        (
            Method::GET,
            format!("/api/admin/courses/{c}/lessons/{NOT_A_UUID}"),
            admin,
        ),
        (
            Method::PATCH,
            format!("/api/admin/courses/{c}/lessons/{NOT_A_UUID}"),
            admin,
        ),
        (
            Method::DELETE,
            format!("/api/admin/courses/{c}/lessons/{NOT_A_UUID}"),
            admin,
        ),
        (Method::GET, format!("/api/user/lessons/{NOT_A_UUID}"), user),
        (
            Method::PUT,
            format!("/api/user/lessons/{NOT_A_UUID}/progress"),
            user,
        ),
    ];

    for (method, path, token) in cases {
        let body = match method {
            Method::PATCH => Some(json!({"name": "X"})),
            Method::PUT => Some(json!({"progress": "COMPLETED"})),
            _ => None,
        };
        let reply = app.call(method.clone(), &path, token, body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (400, "invalid_param"),
            "{method} {path}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("lessonId"),
            "{method} {path}: {message}"
        );
    }
}

async fn unknown_json_fields_are_refused_and_named(app: TestApp) {
    let setup = Setup::new(&app).await;
    let (admin, user) = (
        Some(setup.admin.token.as_str()),
        Some(setup.user.token.as_str()),
    );
    let (c, l) = (&setup.course, &setup.lesson);
    let cases = [
        (
            Method::POST,
            "/api/auth/register".to_owned(),
            None,
            json!({"email": "x@example.org", "name": "X", "password": "password-1", "role": "ADMIN"}),
        ),
        (
            Method::POST,
            "/api/auth/login".to_owned(),
            None,
            json!({"email": setup.user.email, "password": setup.user.password, "role": "ADMIN"}),
        ),
        (
            Method::POST,
            "/api/admin/courses".to_owned(),
            admin,
            json!({"name": "X", "role": "ADMIN"}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/courses/{c}"),
            admin,
            json!({"name": "X", "role": "ADMIN"}),
        ),
        (
            Method::POST,
            format!("/api/admin/courses/{c}/lessons"),
            admin,
            json!({"name": "X", "role": "ADMIN"}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/courses/{c}/lessons/{l}"),
            admin,
            json!({"name": "X", "role": "ADMIN"}),
        ),
        (
            Method::PUT,
            format!("/api/user/lessons/{l}/progress"),
            user,
            json!({"progress": "COMPLETED", "role": "ADMIN"}),
        ),
        (
            Method::POST,
            "/api/admin/cache/invalidate".to_owned(),
            admin,
            json!({"tags": ["courses"], "role": "ADMIN"}),
        ),
    ];

    for (method, path, token, body) in cases {
        let reply = app.call(method.clone(), &path, token, Some(body)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (400, "invalid_body"),
            "{method} {path}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("role"), "{method} {path}: {message}");
    }
    // Nothing was written on the way.
    let detail = app
        .get(&format!("/api/admin/courses/{c}"), admin)
        .await
        .expect(200);
    assert_eq!(
        (&detail["name"], &detail["lessonCount"]),
        (&json!("Course"), &json!(1))
    );
}

async fn a_body_that_is_not_json_is_refused(app: TestApp) {
    let admin = app.admin().await;

    let malformed = app
        .client
        .post(format!("{}/api/admin/courses", app.address))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let untyped = app
        .client
        .post(format!("{}/api/admin/courses", app.address))
        .bearer_auth(&admin.token)
        .body("{\"name\": \"Plain text\"}")
        .send()
        .await
        .unwrap();

    for response in [malformed, untyped] {
        assert_eq!(response.status().as_u16(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_body", "{body}");
    }
    let list = app
        .get("/api/admin/courses", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 0);
}

/// Bodies over their route's limit: 64 KB, or for course and lesson writes, what the longest
/// lesson takes with every character escaped (about 1.3 MB).
async fn a_body_over_its_route_limit_is_too_large(app: TestApp) {
    let setup = Setup::new(&app).await;
    let big = "x".repeat(65 * 1024);
    let huge = "x".repeat(1_400_000);
    let (admin, user) = (
        Some(setup.admin.token.as_str()),
        Some(setup.user.token.as_str()),
    );
    let (c, l) = (&setup.course, &setup.lesson);
    let cases = [
        (
            Method::POST,
            "/api/auth/register".to_owned(),
            None,
            json!({"email": "big@example.org", "name": big, "password": "password-1"}),
        ),
        (
            Method::POST,
            "/api/admin/courses".to_owned(),
            admin,
            json!({"name": "Big", "presentation": huge}),
        ),
        (
            Method::POST,
            format!("/api/admin/courses/{c}/lessons"),
            admin,
            json!({"name": "Big", "content": huge}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/courses/{c}/lessons/{l}"),
            admin,
            json!({"content": huge}),
        ),
        (
            Method::PUT,
            format!("/api/user/lessons/{l}/progress"),
            user,
            json!({"progress": big}),
        ),
    ];

    for (method, path, token, body) in cases {
        let reply = app.call(method.clone(), &path, token, Some(body)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (413, "payload_too_large"),
            "{method} {path}: {}",
            reply.body
        );
    }
}

async fn a_lesson_content_just_under_64_kb_is_accepted(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let content = "y".repeat(60_000);

    let created = app
        .post(
            &format!("/api/admin/courses/{course}/lessons"),
            Some(&admin.token),
            json!({"name": "Long", "content": content}),
        )
        .await
        .expect(201);

    assert_eq!(created["content"].as_str().unwrap().len(), 60_000);
}

async fn course_fields_are_validated_and_named(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "n".repeat(201)}), "name"),
        (
            json!({"name": "X", "image": "ftp://img.example.org/a.png"}),
            "image",
        ),
        (json!({"name": "X", "image": "not a url"}), "image"),
        (
            json!({"name": "X", "image": format!("https://example.org/{}", "i".repeat(2000))}),
            "image",
        ),
        (
            json!({"name": "X", "presentation": "p".repeat(10_001)}),
            "presentation",
        ),
        (json!({"name": "X", "state": "ARCHIVED"}), "ARCHIVED"),
        (json!({"presentation": "no name"}), "name"),
    ];

    for (body, field) in &cases {
        let message = app
            .post("/api/admin/courses", Some(&admin.token), body.clone())
            .await
            .expect_error(400, "invalid_body");
        assert!(message.contains(field), "POST {body}: {message}");
    }
    // The same checks apply to a change, except that no field is required.
    for (body, field) in &cases[..8] {
        let message = app
            .patch(
                &format!("/api/admin/courses/{course}"),
                Some(&admin.token),
                body.clone(),
            )
            .await
            .expect_error(400, "invalid_body");
        assert!(message.contains(field), "PATCH {body}: {message}");
    }
    let list = app
        .get("/api/admin/courses", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["name"], "Course");
}

async fn lesson_fields_are_validated_and_named(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let lesson = app.create_lesson(&admin, &course, "Lesson", "HIDDEN").await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(201)}), "name"),
        (json!({"name": "X", "rank": 0}), "rank"),
        (json!({"name": "X", "rank": -3}), "rank"),
        (json!({"name": "X", "state": "DRAFT"}), "DRAFT"),
        (json!({"content": "no name"}), "name"),
    ];

    for (body, field) in &cases {
        let message = app
            .post(
                &format!("/api/admin/courses/{course}/lessons"),
                Some(&admin.token),
                body.clone(),
            )
            .await
            .expect_error(400, "invalid_body");
        assert!(message.contains(field), "POST {body}: {message}");
    }
    for (body, field) in &cases[..5] {
        let message = app
            .patch(
                &format!("/api/admin/courses/{course}/lessons/{lesson}"),
                Some(&admin.token),
                body.clone(),
            )
            .await
            .expect_error(400, "invalid_body");
        assert!(message.contains(field), "PATCH {body}: {message}");
    }
    let lessons = app
        .get(
            &format!("/api/admin/courses/{course}/lessons"),
            Some(&admin.token),
        )
        .await
        .expect(200);
    assert_eq!(
        lessons,
        json!({"data": [{"id": lesson, "name": "Lesson", "rank": 1, "state": "HIDDEN"}]})
    );
}

async fn a_bad_progress_value_is_refused(app: TestApp) {
    let setup = Setup::new(&app).await;
    let path = format!("/api/user/lessons/{}/progress", setup.lesson);

    for body in [
        json!({"progress": "DONE"}),
        json!({"progress": "completed"}),
        json!({"progress": 2}),
        json!({}),
    ] {
        app.put(&path, Some(&setup.user.token), body)
            .await
            .expect_error(400, "invalid_body");
    }

    let lesson = app
        .get(
            &format!("/api/user/lessons/{}", setup.lesson),
            Some(&setup.user.token),
        )
        .await
        .expect(200);
    assert_eq!(lesson["progress"], "NOT_STARTED");
}

async fn every_signed_in_route_wants_a_token(app: TestApp) {
    let setup = Setup::new(&app).await;

    for (method, path, body) in setup.signed_in_routes() {
        let reply = app.call(method.clone(), &path, None, body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (401, "unauthorized"),
            "{method} {path} without a token: {}",
            reply.body
        );
    }
    app.post("/api/auth/logout", None, json!({}))
        .await
        .expect_error(401, "unauthorized");
}

async fn a_bogus_token_is_unauthorized_everywhere(app: TestApp) {
    let setup = Setup::new(&app).await;
    let bogus = "0".repeat(64);

    for (method, path, body) in setup.signed_in_routes() {
        let reply = app.call(method.clone(), &path, Some(&bogus), body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (401, "unauthorized"),
            "{method} {path} with a bogus token: {}",
            reply.body
        );
    }
    // Not a bearer token at all.
    let basic = app
        .client
        .get(format!("{}/api/me", app.address))
        .header("authorization", format!("Basic {}", setup.user.token))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
}

async fn a_user_is_forbidden_on_every_admin_route(app: TestApp) {
    let setup = Setup::new(&app).await;

    for (method, path, body) in setup.admin_routes() {
        let reply = app
            .call(method.clone(), &path, Some(&setup.user.token), body)
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (403, "forbidden"),
            "{method} {path} as a USER: {}",
            reply.body
        );
    }
    // Nothing was changed or deleted on the way.
    let detail = app
        .get(
            &format!("/api/admin/courses/{}", setup.course),
            Some(&setup.admin.token),
        )
        .await
        .expect(200);
    assert_eq!(
        (&detail["name"], &detail["lessonCount"]),
        (&json!("Course"), &json!(1))
    );
}

async fn an_unknown_course_or_lesson_is_not_found(app: TestApp) {
    let setup = Setup::new(&app).await;
    let (admin, user) = (
        Some(setup.admin.token.as_str()),
        Some(setup.user.token.as_str()),
    );
    let c = &setup.course;
    let cases = [
        (format!("/api/admin/courses/{UNKNOWN_ID}"), admin),
        (format!("/api/admin/courses/{UNKNOWN_ID}/lessons"), admin),
        (
            format!("/api/admin/courses/{UNKNOWN_ID}/participants"),
            admin,
        ),
        (
            format!("/api/admin/courses/{c}/lessons/{UNKNOWN_ID}"),
            admin,
        ),
        (format!("/api/user/courses/{UNKNOWN_ID}"), user),
        (format!("/api/user/courses/{UNKNOWN_ID}/participants"), user),
        (format!("/api/user/lessons/{UNKNOWN_ID}"), user),
        ("/api/no/such/route".to_owned(), user),
    ];

    for (path, token) in cases {
        let reply = app.get(&path, token).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error_code()),
            (404, "not_found"),
            "GET {path}: {}",
            reply.body
        );
    }
}

async fn a_method_a_route_does_not_take_answers_in_the_error_shape(app: TestApp) {
    let admin = app.admin().await;

    let reply = app
        .call(
            Method::PUT,
            "/api/admin/courses",
            Some(&admin.token),
            Some(json!({"name": "X"})),
        )
        .await;

    assert_eq!(reply.status.as_u16(), 405);
    assert!(
        reply.body["error"]["code"].is_string(),
        "every error has the shape {{\"error\":{{\"code\",\"message\"}}}}, got {}",
        reply.body
    );
}

on_both_backends!(
    a_page_of_zero_is_refused_by_every_list,
    a_negative_page_is_refused_by_every_list,
    a_limit_that_is_not_a_number_is_refused_by_every_list,
    a_limit_over_one_hundred_is_refused_by_every_list,
    a_limit_of_zero_is_refused_by_every_list,
    a_search_over_one_hundred_characters_is_refused,
    the_largest_valid_limit_and_search_are_accepted,
    a_malformed_course_id_is_refused_and_named,
    a_malformed_lesson_id_is_refused_and_named,
    unknown_json_fields_are_refused_and_named,
    a_body_that_is_not_json_is_refused,
    a_body_over_its_route_limit_is_too_large,
    a_lesson_content_just_under_64_kb_is_accepted,
    course_fields_are_validated_and_named,
    lesson_fields_are_validated_and_named,
    a_bad_progress_value_is_refused,
    every_signed_in_route_wants_a_token,
    a_bogus_token_is_unauthorized_everywhere,
    a_user_is_forbidden_on_every_admin_route,
    an_unknown_course_or_lesson_is_not_found,
    a_method_a_route_does_not_take_answers_in_the_error_shape,
);
