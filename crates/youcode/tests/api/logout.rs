//! Logout revokes the token at once, though who it belongs to was cached.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

/// Session lookups answered from the cache so far.
async fn session_hits(app: &TestApp, admin_token: &str) -> u64 {
    let stats = app
        .get("/api/admin/cache/stats", Some(admin_token))
        .await
        .expect(200);
    stats["routes"]["session"]["hits"].as_u64().unwrap_or(0)
}

async fn a_cached_token_is_refused_right_after_logout(app: TestApp) {
    let admin = app.admin().await;
    let user = app.user().await;
    app.get("/api/me", Some(&user.token)).await.expect(200);
    let hits_before = session_hits(&app, &admin.token).await;
    app.get("/api/me", Some(&user.token)).await.expect(200);
    // The second request found the session in the cache.
    assert_eq!(session_hits(&app, &admin.token).await, hits_before + 2);

    let logout = app
        .post("/api/auth/logout", Some(&user.token), json!({}))
        .await;

    assert_eq!(logout.status.as_u16(), 204);
    app.get("/api/me", Some(&user.token))
        .await
        .expect_error(401, "unauthorized");
    app.get("/api/user/courses", Some(&user.token))
        .await
        .expect_error(401, "unauthorized");
}

async fn a_cached_admin_token_loses_admin_routes_right_after_logout(app: TestApp) {
    let admin = app.admin().await;
    app.warm("/api/admin/courses", Some(&admin.token)).await;

    app.post("/api/auth/logout", Some(&admin.token), json!({}))
        .await
        .expect(204);

    app.get("/api/admin/courses", Some(&admin.token))
        .await
        .expect_error(401, "unauthorized");
    app.get("/api/admin/cache/stats", Some(&admin.token))
        .await
        .expect_error(401, "unauthorized");
}

async fn logging_out_twice_is_unauthorized_the_second_time(app: TestApp) {
    let user = app.user().await;

    let first = app
        .post("/api/auth/logout", Some(&user.token), json!({}))
        .await;
    let second = app
        .post("/api/auth/logout", Some(&user.token), json!({}))
        .await;

    assert_eq!(first.status.as_u16(), 204);
    second.expect_error(401, "unauthorized");
}

async fn logout_ends_only_the_session_of_its_token(app: TestApp) {
    let user = app.user().await;
    let other_session = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": user.email, "password": user.password}),
        )
        .await
        .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/api/me", Some(&other_session)).await.expect(200);

    app.post("/api/auth/logout", Some(&user.token), json!({}))
        .await
        .expect(204);

    let me = app.get("/api/me", Some(&other_session)).await.expect(200);
    assert_eq!(me["id"], user.id.as_str());
    app.get("/api/me", Some(&user.token))
        .await
        .expect_error(401, "unauthorized");
}

async fn signing_in_again_after_logout_gives_a_working_token(app: TestApp) {
    let user = app.user().await;
    app.get("/api/me", Some(&user.token)).await.expect(200);
    app.post("/api/auth/logout", Some(&user.token), json!({}))
        .await
        .expect(204);

    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": user.email, "password": user.password}),
        )
        .await
        .expect(200);

    let token = login["token"].as_str().unwrap();
    assert_ne!(token, user.token);
    assert_eq!(
        app.get("/api/me", Some(token)).await.expect(200)["id"],
        user.id.as_str()
    );
}

on_both_backends!(
    a_cached_token_is_refused_right_after_logout,
    a_cached_admin_token_loses_admin_routes_right_after_logout,
    logging_out_twice_is_unauthorized_the_second_time,
    logout_ends_only_the_session_of_its_token,
    signing_in_again_after_logout_gives_a_working_token,
);
