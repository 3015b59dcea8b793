//! Extractors that parse requests into typed values, answering in the API's error shape.

use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppError;
use crate::auth::token_hash;
use crate::db::Principal;
use crate::domain::ParamError;
use crate::state::AppState;

/// A JSON body whose rejections (bad JSON, unknown fields, too large, too slow) use the API's
/// error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::BytesRejection(rejection))
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(AppError::PayloadTooLarge)
            }
            Err(rejection) if super::body_deadline::missed(&rejection) => {
                Err(AppError::RequestTimeout)
            }
            Err(rejection) => Err(AppError::InvalidBody(rejection.body_text())),
        }
    }
}

/// The raw query params, for typed parsing by the handler.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| Self(map))
            .map_err(|_: QueryRejection| {
                AppError::InvalidParam(ParamError::new("query", "is not a valid query string"))
            })
    }
}

/// The signed-in user, from `Authorization: Bearer <token>`.
///
/// Who a token belongs to is cached (tagged by the token's hash, invalidated at logout), so
/// authenticating costs a cache lookup, not a database query.
pub struct SignedIn(pub Principal);

/// The signed-in user, who must be an admin.
pub struct Admin(pub Principal);

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token =
            bearer(parts).ok_or(AppError::Unauthorized("sign in first: no bearer token"))?;
        let hash = token_hash(token);
        // Unknown tokens are not cached: they would let anyone fill the cache.
        let principal = super::cached(state, state.keys.session_entry(&hash), || async {
            state
                .db
                .session_user(&hash)
                .await?
                .ok_or(AppError::Unauthorized(
                    "the token is unknown or has been revoked",
                ))
        })
        .await?
        .value;
        // Per-user cache keys are built from this id: refuse anything but a real one.
        if uuid::Uuid::try_parse(&principal.id).is_err() {
            return Err(AppError::Unauthorized(
                "the token belongs to no valid account",
            ));
        }
        Ok(Self(principal))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let SignedIn(principal) = SignedIn::from_request_parts(parts, state).await?;
        if principal.is_admin() {
            Ok(Self(principal))
        } else {
            Err(AppError::Forbidden)
        }
    }
}
