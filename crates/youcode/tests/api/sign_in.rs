//! Sessions that expire, and sign-ins bounded against guessing and against hashing floods.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde_json::json;
use youcode::config::{Config, SessionLimits};

use crate::helpers::{Backend, Reply, TestApp, spawn_app_with};
use crate::on_both_backends_with_config;

/// Fails the test with `what` when `future` takes longer than a minute.
async fn within_a_minute<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than a minute"))
}

fn with_sessions(lifetime: Duration, idle_timeout: Duration) -> impl FnOnce(&mut Config) {
    move |config| {
        config.sessions = SessionLimits {
            lifetime,
            idle_timeout,
        }
    }
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Reply {
    app.post(
        "/api/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn a_session_ends_after_its_lifetime_though_it_is_cached(backend: Backend) {
    let lifetime = Duration::from_secs(2);
    let app = spawn_app_with(backend, with_sessions(lifetime, Duration::from_secs(3600))).await;
    let user = app.user().await;
    app.get("/api/me", Some(&user.token)).await.expect(200);
    app.get("/api/me", Some(&user.token)).await.expect(200);

    tokio::time::sleep(lifetime + Duration::from_millis(200)).await;

    let message = app
        .get("/api/me", Some(&user.token))
        .await
        .expect_error(401, "unauthorized");
    assert!(message.contains("expired"), "{message}");
    app.get("/api/user/courses", Some(&user.token))
        .await
        .expect_error(401, "unauthorized");
    // A new sign-in starts a new session.
    let again = sign_in(&app, &user.email, &user.password).await.expect(200);
    app.get("/api/me", Some(again["token"].as_str().unwrap()))
        .await
        .expect(200);
}

async fn an_unused_session_ends_and_a_used_one_lives_on(backend: Backend) {
    let idle = Duration::from_secs(3);
    let app = spawn_app_with(backend, with_sessions(Duration::from_secs(3600), idle)).await;
    let (used, unused) = (app.user().await, app.user().await);
    app.get("/api/me", Some(&unused.token)).await.expect(200);

    within_a_minute("using a session", async {
        for _ in 0..9 {
            app.get("/api/me", Some(&used.token)).await.expect(200);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;

    app.get("/api/me", Some(&used.token)).await.expect(200);
    let message = app
        .get("/api/me", Some(&unused.token))
        .await
        .expect_error(401, "unauthorized");
    assert!(message.contains("expired"), "{message}");
}

/// One instance records the uses; another that cached the session earlier must not judge it
/// idle from its old copy.
async fn a_use_recorded_by_one_instance_keeps_the_session_alive_on_another() {
    let idle = Duration::from_secs(3);
    let first = spawn_app_with(
        Backend::PostgresRedis,
        with_sessions(Duration::from_secs(3600), idle),
    )
    .await;
    let (database_url, namespace) = (
        first.state.config.database_url.clone(),
        first.state.config.cache.namespace.clone(),
    );
    let second = spawn_app_with(Backend::PostgresRedis, move |config| {
        with_sessions(Duration::from_secs(3600), idle)(config);
        config.database_url = database_url;
        config.cache.namespace = namespace;
    })
    .await;
    let user = first.user().await;
    second.get("/api/me", Some(&user.token)).await.expect(200);

    within_a_minute("using a session", async {
        for _ in 0..9 {
            first.get("/api/me", Some(&user.token)).await.expect(200);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;

    second.get("/api/me", Some(&user.token)).await.expect(200);
}

/// With the default limits, a 429 comes by the 20th failed sign-in of one account within a
/// minute, and then even the right password is refused for a while.
async fn an_account_that_failed_too_often_is_refused_for_a_while(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let (target, bystander) = (app.user().await, app.user().await);

    let mut refused = None;
    for attempt in 1..=20 {
        let reply = sign_in(&app, &target.email, "wrong-password").await;
        match reply.status.as_u16() {
            401 => continue,
            429 => {
                refused = Some((attempt, reply));
                break;
            }
            other => panic!("attempt {attempt}: unexpected {other}: {}", reply.body),
        }
    }

    let (attempt, reply) = refused.expect("a 429 by the 20th failed sign-in");
    assert!(attempt > 1, "refused at once");
    assert_eq!(reply.error_code(), "too_many_requests");
    let right = sign_in(&app, &target.email, &target.password).await;
    right.expect_error(429, "too_many_requests");
    // Only that account: another signs in from the same address.
    sign_in(&app, &bystander.email, &bystander.password)
        .await
        .expect(200);
}

async fn a_refusal_says_when_to_try_again() {
    let app = spawn_app_with(Backend::SqliteMemory, |config| {
        config.login.failures_per_account = 2.try_into().unwrap();
    })
    .await;
    let user = app.user().await;
    for _ in 0..2 {
        sign_in(&app, &user.email, "wrong-password")
            .await
            .expect(401);
    }

    let response = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({"email": user.email, "password": "wrong-password"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Two failures a minute: the next is allowed within 30 s.
    assert!((1..=30).contains(&retry_after), "{retry_after}");
}

/// Only failures count against an address: many correct sign-ins from it are never refused,
/// while guesses at many accounts are.
async fn an_address_is_limited_by_its_failures_only(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.user().await;
    for _ in 0..40 {
        sign_in(&app, &user.email, &user.password).await.expect(200);
    }

    let mut refused_at = None;
    for attempt in 1..=40 {
        let reply = sign_in(&app, &format!("nobody{attempt}@example.org"), "guess-1234").await;
        if reply.status.as_u16() == 429 {
            refused_at = Some(attempt);
            break;
        }
        reply.expect_error(401, "unauthorized");
    }

    let refused_at = refused_at.expect("guesses at many accounts are refused");
    assert!(refused_at > 20, "refused after {refused_at} failures");
    sign_in(&app, &user.email, &user.password)
        .await
        .expect_error(429, "too_many_requests");
}

/// A hundred sign-ins at once hash no more passwords at once than the configured bound, and
/// each is answered: no 5xx but the 503 of a wait that ran out.
async fn parallel_sign_ins_hash_a_bounded_number_at_once(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.login.hashing_concurrency = NonZeroUsize::new(2).unwrap();
    })
    .await;
    let user = app.user().await;

    let replies = within_a_minute(
        "a hundred sign-ins",
        futures::future::join_all((0..100).map(|_| sign_in(&app, &user.email, &user.password))),
    )
    .await;

    for reply in replies {
        assert!(
            matches!(reply.status.as_u16(), 200 | 503),
            "{}: {}",
            reply.status,
            reply.body
        );
    }
    let peak = app.state.hashing.peak();
    assert!((1..=2).contains(&peak), "{peak} hashes ran at once");
}

on_both_backends_with_config!(
    a_session_ends_after_its_lifetime_though_it_is_cached,
    an_unused_session_ends_and_a_used_one_lives_on,
    an_account_that_failed_too_often_is_refused_for_a_while,
    an_address_is_limited_by_its_failures_only,
    parallel_sign_ins_hash_a_bounded_number_at_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_use_recorded_by_one_instance_keeps_the_session_alive_on_another() {
    a_use_recorded_by_one_instance_keeps_the_session_alive_on_another().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_refusal_says_when_to_try_again() {
    a_refusal_says_when_to_try_again().await;
}
