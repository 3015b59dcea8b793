//! Registration, sign-in, sign-out and the current user.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use super::extract::{ClientAddress, JsonBody, SignedIn, bearer, end_session};
use super::openapi::{
    BadRequest, Conflict, PayloadTooLarge, RequestTimeout, TooManyRequests, Unauthorized,
    Unavailable,
};
use crate::auth::{hash_password, new_token, token_hash, verify_password};
use crate::config::PasswordCost;
use crate::db::{DbError, NewUser, User, now_ms};
use crate::domain::{Role, fields};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Registration {
    /// An email address, with `@`; stored normalised (NFKC, lower case, trimmed).
    email: String,
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[schema(min_length = 8)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct SignedInUser {
    /// The bearer token of the new session.
    token: String,
    user: User,
}

/// Creates a USER account and signs it in.
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    request_body = Registration,
    responses(
        (status = 201, description = "Registered and signed in", body = SignedInUser),
        BadRequest, Conflict, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Registration>,
) -> Result<impl IntoResponse, AppError> {
    let email = fields::email(&body.email)?;
    let name = fields::display_name(&body.name)?;
    fields::password(&body.password)?;
    let cost = state.config.password_cost;
    let password_hash = state
        .hashing
        .run(move || hash_password(&body.password, cost))
        .await?;
    let user = state
        .db
        .create_user(NewUser {
            email,
            name,
            image: None,
            role: Role::User,
            password_hash,
        })
        .await
        .map_err(|error| match error {
            DbError::Conflict => AppError::Conflict("this email is already registered"),
            other => other.into(),
        })?;
    let token = start_session(&state, &user).await?;
    Ok((StatusCode::CREATED, Json(SignedInUser { token, user })))
}

/// Signs in. Failed attempts are counted per account and per client address; past either
/// limit, attempts answer 429 with `Retry-After` before any password is checked.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = SignedInUser),
        BadRequest, Unauthorized, RequestTimeout, PayloadTooLarge, TooManyRequests, Unavailable
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<SignedInUser>, AppError> {
    let email = fields::login_email(&body.email)?;
    let refused = |retry_after| AppError::TooManyRequests { retry_after };
    state.login_guard.check(&email, address).map_err(refused)?;
    let found = state.db.user_with_password(&email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        // Verify against a throw-away hash anyway, so timing does not tell which emails exist.
        None => (None, dummy_hash(state.config.password_cost).to_owned()),
    };
    let password = body.password;
    let verified = state
        .hashing
        .run(move || verify_password(&password, &hash))
        .await?;
    let Some(user) = user.filter(|_| verified) else {
        state.login_guard.failed(&email, address).map_err(refused)?;
        return Err(AppError::Unauthorized("wrong email or password"));
    };
    let now = now_ms();
    if let Err(error) = state
        .db
        .delete_expired_sessions(user.id, now, &state.config.sessions)
        .await
    {
        tracing::warn!(%error, "cannot delete expired sessions");
    }
    let token = start_session(&state, &user).await?;
    Ok(Json(SignedInUser { token, user }))
}

/// A hash of the cost accounts are hashed with, so an unknown email takes as long as a known one.
fn dummy_hash(cost: PasswordCost) -> &'static str {
    static STANDARD: OnceLock<String> = OnceLock::new();
    static LOW: OnceLock<String> = OnceLock::new();
    let hash = match cost {
        PasswordCost::Standard => &STANDARD,
        PasswordCost::Low => &LOW,
    };
    hash.get_or_init(|| hash_password("not a password of anyone", cost))
}

async fn start_session(state: &AppState, user: &User) -> Result<String, AppError> {
    let token = new_token();
    state
        .db
        .create_session(&token_hash(&token), user.id)
        .await?;
    Ok(token)
}

/// The raw bearer token, for logout.
struct Token(String);

impl FromRequestParts<AppState> for Token {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, AppError> {
        bearer(parts)
            .map(|t| Self(t.to_owned()))
            .ok_or(AppError::Unauthorized("sign in first: no bearer token"))
    }
}

/// Signs out: the token is revoked at once, on every instance.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        Unauthorized, Unavailable
    )
)]
async fn logout(
    State(state): State<AppState>,
    Token(token): Token,
) -> Result<StatusCode, AppError> {
    if !end_session(&state, &token_hash(&token)).await? {
        return Err(AppError::Unauthorized(
            "the token is unknown or has been revoked",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = User), Unauthorized, Unavailable)
)]
async fn me(SignedIn(user): SignedIn) -> Json<User> {
    Json(user)
}
