//! Registration, sign-in and the current user.

use serde_json::json;

use crate::helpers::{TestApp, keys, unique};
use crate::on_both_backends;

fn new_email() -> String {
    format!("{}@example.org", unique("reg").to_lowercase())
}

async fn registering_answers_a_working_token_and_a_user_account(app: TestApp) {
    let email = new_email();

    let body = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "name": "Ada Lovelace", "password": "analytical"}),
        )
        .await
        .expect(201);

    assert_eq!(keys(&body), ["token", "user"]);
    let user = &body["user"];
    assert_eq!(keys(user), ["email", "id", "image", "name", "role"]);
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["role"], "USER");
    assert!(user["image"].is_null());
    let token = body["token"].as_str().unwrap();
    let me = app.get("/api/me", Some(token)).await.expect(200);
    assert_eq!(&me, user);
}

async fn registration_stores_the_email_lower_cased_and_trimmed(app: TestApp) {
    let email = new_email();
    let typed = format!("  {}  ", email.to_uppercase());

    let body = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": typed, "name": "Grace", "password": "compilers"}),
        )
        .await
        .expect(201);

    assert_eq!(body["user"]["email"], email.as_str());
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": "compilers"}),
        )
        .await
        .expect(200);
    assert_eq!(login["user"]["id"], body["user"]["id"]);
}

async fn registering_an_email_twice_is_a_conflict_whatever_its_case(app: TestApp) {
    let email = new_email();
    app.post(
        "/api/auth/register",
        None,
        json!({"email": email, "name": "First", "password": "password-1"}),
    )
    .await
    .expect(201);

    let again = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": email.to_uppercase(), "name": "Second", "password": "password-2"}),
        )
        .await;

    again.expect_error(409, "conflict");
}

async fn registration_refuses_each_invalid_field_and_names_it(app: TestApp) {
    let cases = [
        (
            json!({"email": new_email(), "name": "Short", "password": "1234567"}),
            "password",
        ),
        (
            json!({"email": "no-at-sign.example.org", "name": "Bad", "password": "password-1"}),
            "email",
        ),
        (
            json!({"email": new_email(), "name": "   ", "password": "password-1"}),
            "name",
        ),
        (
            json!({"email": new_email(), "name": "n".repeat(101), "password": "password-1"}),
            "name",
        ),
        (
            json!({"email": new_email(), "password": "password-1"}),
            "name",
        ),
    ];

    for (body, field) in cases {
        let message = app
            .post("/api/auth/register", None, body.clone())
            .await
            .expect_error(400, "invalid_body");
        assert!(
            message.contains(field),
            "{body}: the message {message:?} should name {field}"
        );
    }
}

async fn a_name_of_exactly_one_hundred_characters_is_accepted(app: TestApp) {
    let name = "n".repeat(100);

    let body = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": new_email(), "name": name, "password": "password-1"}),
        )
        .await
        .expect(201);

    assert_eq!(body["user"]["name"], name.as_str());
}

async fn login_with_a_wrong_password_or_an_unknown_email_is_unauthorized(app: TestApp) {
    let user = app.user().await;

    let wrong_password = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": user.email, "password": "not-the-password"}),
        )
        .await;
    let unknown_email = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": new_email(), "password": user.password}),
        )
        .await;

    wrong_password.expect_error(401, "unauthorized");
    unknown_email.expect_error(401, "unauthorized");
}

async fn each_login_opens_its_own_session_for_the_same_account(app: TestApp) {
    let user = app.user().await;

    let second = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": user.email, "password": user.password}),
        )
        .await
        .expect(200);

    let second_token = second["token"].as_str().unwrap();
    assert_ne!(second_token, user.token);
    assert_eq!(second["user"]["id"], user.id.as_str());
    for token in [user.token.as_str(), second_token] {
        let me = app.get("/api/me", Some(token)).await.expect(200);
        assert_eq!(me["id"], user.id.as_str());
        assert_eq!(me["email"], user.email.as_str());
    }
}

async fn me_answers_the_account_of_the_token_with_its_role(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;

    let admin_me = app.get("/api/me", Some(&admin.token)).await.expect(200);
    let user_me = app.get("/api/me", Some(&user.token)).await.expect(200);

    assert_eq!(
        (&admin_me["id"], &admin_me["role"]),
        (&json!(admin.id), &json!("ADMIN"))
    );
    assert_eq!(
        (&user_me["id"], &user_me["role"]),
        (&json!(user.id), &json!("USER"))
    );
}

on_both_backends!(
    registering_answers_a_working_token_and_a_user_account,
    registration_stores_the_email_lower_cased_and_trimmed,
    registering_an_email_twice_is_a_conflict_whatever_its_case,
    registration_refuses_each_invalid_field_and_names_it,
    a_name_of_exactly_one_hundred_characters_is_accepted,
    login_with_a_wrong_password_or_an_unknown_email_is_unauthorized,
    each_login_opens_its_own_session_for_the_same_account,
    me_answers_the_account_of_the_token_with_its_role,
);
