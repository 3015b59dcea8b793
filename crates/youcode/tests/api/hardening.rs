//! Input an attacker would send: control characters, bodies that are not objects, look-alike
//! emails, the longest valid bodies. Each answers a 4xx naming what is wrong, never a 5xx, and
//! the same on both databases.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, unique};
use crate::on_both_backends;

/// Characters no single-line text may hold: NUL, another C0 control, escape, DEL, a C1 control.
const CONTROLS: [char; 5] = ['\0', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}'];

/// Percent-encodes `text` for a query string.
fn query_escaped(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn control_characters_are_refused_in_every_text_field(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "PUBLISHED").await;
    let lesson = app.create_lesson(&admin, &course, "Lesson", "PUBLIC").await;
    let token = Some(admin.token.as_str());
    let page_before = app
        .get(&format!("/api/admin/courses/{course}"), token)
        .await
        .expect(200);

    for c in CONTROLS {
        let bad = format!("a{c}b");
        let cases: Vec<(Method, String, Option<&str>, Value, &str)> = vec![
            (
                Method::POST,
                "/api/auth/register".into(),
                None,
                json!({"email": format!("x{c}y@example.org"), "name": "N", "password": "password-1"}),
                "email",
            ),
            (
                Method::POST,
                "/api/auth/register".into(),
                None,
                json!({"email": "fresh@example.org", "name": bad, "password": "password-1"}),
                "name",
            ),
            (
                Method::POST,
                "/api/auth/register".into(),
                None,
                json!({"email": "fresh@example.org", "name": "N", "password": format!("password{c}1")}),
                "password",
            ),
            (
                Method::POST,
                "/api/auth/login".into(),
                None,
                json!({"email": format!("{}{c}", admin.email), "password": admin.password}),
                "email",
            ),
            (
                Method::POST,
                "/api/admin/courses".into(),
                token,
                json!({"name": bad}),
                "name",
            ),
            (
                Method::PATCH,
                format!("/api/admin/courses/{course}"),
                token,
                json!({"presentation": bad}),
                "presentation",
            ),
            (
                Method::PATCH,
                format!("/api/admin/courses/{course}"),
                token,
                json!({"image": format!("https://img.example.org/{bad}")}),
                "image",
            ),
            (
                Method::POST,
                format!("/api/admin/courses/{course}/lessons"),
                token,
                json!({"name": bad}),
                "name",
            ),
            (
                Method::PATCH,
                format!("/api/admin/courses/{course}/lessons/{lesson}"),
                token,
                json!({"content": bad}),
                "content",
            ),
            (
                Method::POST,
                "/api/admin/cache/invalidate".into(),
                token,
                json!({"tags": [bad]}),
                "tags",
            ),
        ];
        for (method, path, token, body, field) in cases {
            let reply = app.call(method.clone(), &path, token, Some(body)).await;
            let message = reply.expect_error(400, "invalid_body");
            assert!(
                message.starts_with(field),
                "{method} {path} with U+{:04X}: {message}",
                u32::from(c)
            );
        }
    }
    // Nothing was stored on the way.
    let course_page = app
        .get(&format!("/api/admin/courses/{course}"), token)
        .await
        .expect(200);
    assert_eq!(course_page, page_before);
}

async fn multi_line_texts_keep_line_breaks_and_tabs(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let written = "First line\r\n\tindented\nlast";

    let lesson = app
        .post(
            &format!("/api/admin/courses/{course}/lessons"),
            Some(&admin.token),
            json!({"name": "Lines", "content": written}),
        )
        .await
        .expect(201);
    let updated = app
        .patch(
            &format!("/api/admin/courses/{course}"),
            Some(&admin.token),
            json!({"presentation": written}),
        )
        .await
        .expect(200);

    assert_eq!(lesson["content"], written);
    assert_eq!(updated["presentation"], written);
}

async fn control_characters_are_refused_in_every_search(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    let lists = [
        ("/api/public/lessons", None),
        ("/api/admin/courses", Some(admin.token.as_str())),
        ("/api/user/courses", Some(user.token.as_str())),
    ];

    for c in CONTROLS {
        let search = query_escaped(&format!("a{c}b"));
        for (path, token) in lists {
            let message = app
                .get(&format!("{path}?search={search}"), token)
                .await
                .expect_error(400, "invalid_param");
            assert!(message.starts_with("search"), "{path}: {message}");
        }
    }
}

async fn a_body_must_be_a_json_object(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let cases = [
        (
            "/api/auth/register".to_owned(),
            None,
            json!(["array@example.org", "Name", "12345678"]),
        ),
        (
            format!("/api/admin/courses/{course}"),
            Some(admin.token.as_str()),
            json!(["renamed"]),
        ),
        (
            format!("/api/admin/courses/{course}"),
            Some(admin.token.as_str()),
            json!([]),
        ),
        (
            "/api/auth/login".to_owned(),
            None,
            json!([admin.email, admin.password]),
        ),
    ];

    for (path, token, body) in cases {
        let method = if token.is_some() {
            Method::PATCH
        } else {
            Method::POST
        };
        let message = app
            .call(method, &path, token, Some(body.clone()))
            .await
            .expect_error(400, "invalid_body");
        assert!(
            message.contains("a JSON object"),
            "{path} {body}: {message}"
        );
    }
    let page = app
        .get(&format!("/api/admin/courses/{course}"), Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(page["name"], "Course");
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "array@example.org", "password": "12345678"}),
        )
        .await;
    login.expect_error(401, "unauthorized");
}

async fn emails_with_invisible_characters_are_refused(app: TestApp) {
    for invisible in ['\u{200B}', '\u{00AD}', '\u{202E}', '\u{2060}', '\u{FEFF}'] {
        let email = format!("ad{invisible}a-{}@example.org", unique("e"));
        let message = app
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "name": "Look-alike", "password": "password-1"}),
            )
            .await
            .expect_error(400, "invalid_body");
        assert!(message.starts_with("email"), "{email:?}: {message}");
    }
}

async fn a_full_width_email_is_the_same_account_as_its_ascii_form(app: TestApp) {
    let local = unique("ada").to_lowercase();
    let full_width: String = local
        .chars()
        .map(|c| match c {
            'a'..='z' => char::from_u32(u32::from(c) - u32::from('a') + 0xFF41).unwrap(),
            other => other,
        })
        .collect();
    let registered = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": format!("{full_width}@example.org"), "name": "Ada", "password": "password-1"}),
        )
        .await
        .expect(201);
    assert_eq!(registered["user"]["email"], format!("{local}@example.org"));

    let again = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": format!("{local}@example.org"), "name": "Ada 2", "password": "password-1"}),
        )
        .await;
    again.expect_error(409, "conflict");
    app.post(
        "/api/auth/login",
        None,
        json!({"email": format!("{full_width}@EXAMPLE.org"), "password": "password-1"}),
    )
    .await
    .expect(200);
}

async fn the_bearer_scheme_is_case_insensitive(app: TestApp) {
    let user = app.user().await;

    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let response = app
            .client
            .get(format!("{}/api/me", app.address))
            .header("authorization", format!("{scheme} {}", user.token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "scheme {scheme}");
    }
    let basic = app
        .client
        .get(format!("{}/api/me", app.address))
        .header("authorization", format!("Basic {}", user.token))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
}

/// A lesson of the longest content, every character outside the Basic Multilingual Plane and
/// written as JSON escapes: the largest body a lesson write can validly be.
async fn the_longest_lesson_is_accepted_however_it_is_escaped(app: TestApp) {
    let admin = app.admin().await;
    let course = app.create_course(&admin, "Course", "DRAFT").await;
    let content = "\\ud83d\\ude00".repeat(100_000);
    let name = "\\ud83d\\ude00".repeat(200);
    let body = format!(r#"{{"name":"{name}","content":"{content}","state":"PUBLISHED"}}"#);

    let response = app
        .client
        .post(format!(
            "{}/api/admin/courses/{course}/lessons",
            app.address
        ))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["content"].as_str().unwrap().chars().count(),
        100_000
    );
    assert_eq!(created["name"].as_str().unwrap().chars().count(), 200);
}

on_both_backends!(
    control_characters_are_refused_in_every_text_field,
    multi_line_texts_keep_line_breaks_and_tabs,
    control_characters_are_refused_in_every_search,
    a_body_must_be_a_json_object,
    emails_with_invisible_characters_are_refused,
    a_full_width_email_is_the_same_account_as_its_ascii_form,
    the_bearer_scheme_is_case_insensitive,
    the_longest_lesson_is_accepted_however_it_is_escaped,
);
