//! Extractors that parse requests into typed values, answering in the API's error shape.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{Ref, Required};

use super::cached::cached;
use super::error::AppError;
use super::invalidate::invalidate;
use crate::auth::token_hash;
use crate::cache::invalidation;
use crate::db::{Principal, now_ms};
use crate::domain::{CourseId, LessonId, ParamError};
use crate::state::AppState;

/// A JSON body whose rejections (bad JSON, unknown fields, too large, too slow) use the API's
/// error shape. The body must be a JSON object: serde would otherwise fill a struct from an
/// array, field by position.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<Object<T>>::from_request(req, state).await {
            Ok(axum::Json(Object(value))) => Ok(Self(value)),
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

/// A value deserialized from a JSON object only.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// The address of the client's connection, where the server knows it.
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(peer.map(|ConnectInfo(address)| address.ip())))
    }
}

/// The ids of a route's path, parsed: `Ids<CourseId>`, `Ids<LessonId>` or
/// `Ids<(CourseId, LessonId)>`. A malformed one answers `invalid_param`, naming it.
pub struct Ids<T>(pub T);

/// What a path's ids parse into.
pub trait PathIds: Sized {
    /// # Errors
    /// [`ParamError`] naming the first malformed id.
    fn from_path(params: &RawPathParams) -> Result<Self, ParamError>;

    /// The path params, as the OpenAPI document describes them.
    fn params() -> Vec<Parameter>;
}

/// The path param `name`, of the id type named `schema` in the document.
fn id_param(name: &str, schema: impl Into<String>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("A UUID; anything else answers 400 `invalid_param`"))
        .schema(Some(Ref::from_schema_name(schema)))
        .build()
}

/// The value of the path param `name` (empty when the route has none, which no parse accepts).
fn path_param<'a>(params: &'a RawPathParams, name: &str) -> &'a str {
    params
        .iter()
        .find(|(param, _)| *param == name)
        .map_or("", |(_, value)| value)
}

impl PathIds for CourseId {
    fn from_path(params: &RawPathParams) -> Result<Self, ParamError> {
        CourseId::parse("courseId", path_param(params, "course_id"))
    }

    fn params() -> Vec<Parameter> {
        vec![id_param(
            "course_id",
            <CourseId as utoipa::ToSchema>::name(),
        )]
    }
}

impl PathIds for LessonId {
    fn from_path(params: &RawPathParams) -> Result<Self, ParamError> {
        LessonId::parse("lessonId", path_param(params, "lesson_id"))
    }

    fn params() -> Vec<Parameter> {
        vec![id_param(
            "lesson_id",
            <LessonId as utoipa::ToSchema>::name(),
        )]
    }
}

impl PathIds for (CourseId, LessonId) {
    fn from_path(params: &RawPathParams) -> Result<Self, ParamError> {
        Ok((CourseId::from_path(params)?, LessonId::from_path(params)?))
    }

    fn params() -> Vec<Parameter> {
        [CourseId::params(), LessonId::params()].concat()
    }
}

impl<T: PathIds> utoipa::IntoParams for Ids<T> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        T::params()
    }
}

impl<T: PathIds, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound)?;
        Ok(Self(T::from_path(&params)?))
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
/// authenticating costs a cache lookup, not a database query. A session ends after its lifetime
/// or idle timeout (see [`crate::config::SessionLimits`]); its last use is recorded in the
/// database at most once per tenth of the idle timeout.
pub struct SignedIn(pub Principal);

/// The signed-in user, who must be an admin.
pub struct Admin(pub Principal);

/// The bearer token of a request, if any (the scheme's name is case-insensitive, RFC 9110).
pub fn bearer(parts: &Parts) -> Option<&str> {
    let (scheme, token) = parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start()
        .split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token =
            bearer(parts).ok_or(AppError::Unauthorized("sign in first: no bearer token"))?;
        let hash = token_hash(token);
        // Unknown tokens are not cached: they would let anyone fill the cache.
        let session = cached(state, state.keys.session_entry(&hash), || async {
            state.db.session(&hash).await?.ok_or(AppError::Unauthorized(
                "the token is unknown or has been revoked",
            ))
        })
        .await?
        .value;
        // Judged from the times the session carries, cached or not: once it is over, it is over
        // on every instance at once.
        let limits = &state.config.sessions;
        let now = now_ms();
        if session.expired(now, limits) {
            // The answer is 401 whatever happens to the row: deleting it only tidies up.
            if let Err(error) = end_session(state, &hash).await {
                tracing::warn!(%error, "cannot delete an expired session");
            }
            return Err(AppError::Unauthorized(
                "the session has expired; sign in again",
            ));
        }
        if session.use_due(now, limits) {
            record_use(state, &hash, now).await;
        }
        Ok(Self(session.user))
    }
}

/// Deletes the session of a token hash, everywhere at once: every instance's cached copy depends
/// on its tag. Returns whether it existed.
pub async fn end_session(state: &AppState, token_hash: &str) -> Result<bool, AppError> {
    let existed = state.db.delete_session(token_hash).await?;
    invalidate(
        state,
        &invalidation::session_changed(&state.keys, token_hash),
    )
    .await;
    Ok(existed)
}

/// Moves a session's last use forward, and drops its cached copies so that every instance
/// judges its idle time from the new one. A failure only leaves the session to expire sooner.
async fn record_use(state: &AppState, hash: &str, now: i64) {
    match state.db.record_session_use(hash, now).await {
        Ok(true) => {
            state
                .cache
                .invalidate_tags(&invalidation::session_changed(&state.keys, hash))
                .await;
        }
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "cannot record a session's use"),
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
