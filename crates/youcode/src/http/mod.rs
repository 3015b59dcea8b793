//! The HTTP API: one module per resource, each exposing `router()`.

mod admin;
mod auth;
mod body_deadline;
mod cache_admin;
pub(crate) mod course_list;
mod error;
mod extract;
mod health;
mod public;
mod user;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cachette::{Fetched, Outcome};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::AppError;

use crate::cache::keys::Entry;
use crate::domain::{Page, fields};
use crate::state::AppState;

/// Largest request body accepted, but by the routes that write courses and lessons.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most bytes JSON can spend on one character of a string: one outside the Basic Multilingual
/// Plane written as two `\uXXXX` escapes.
const MAX_JSON_BYTES_PER_CHAR: usize = 12;

/// Largest body of a course or lesson write: a longest lesson (name and content), every
/// character escaped as expensively as JSON allows, and room for the other fields. Only admins
/// get this far: the body is read after the token is checked.
pub const MAX_CONTENT_BODY_BYTES: usize = MAX_JSON_BYTES_PER_CHAR
    * (fields::MAX_TITLE_CHARS + fields::MAX_CONTENT_CHARS)
    + MAX_BODY_BYTES;

/// The whole API, ready to serve or to test with `oneshot`.
pub fn app(state: AppState) -> Router {
    let body_timeout = state.config.limits.body_timeout;
    Router::new()
        .merge(auth::router())
        .merge(public::router())
        .merge(user::router())
        .merge(admin::router())
        .merge(cache_admin::router())
        .merge(health::router())
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(finish_writes))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower::util::MapRequestLayer::new(move |request| {
            body_deadline::apply(request, body_timeout)
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs each write request to the end even if its client goes away: a write commits and then
/// invalidates the cache, and a request dropped between the two would leave stale entries.
async fn finish_writes(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::Method;
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    tokio::spawn(next.run(request))
        .await
        .unwrap_or_else(|error| AppError::Internal(error.into()).into_response())
}

/// A page of a list, as every list route answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    pub data: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub limit: u32,
    pub total_pages: i64,
}

impl<T> ListPage<T> {
    pub fn new((data, total): (Vec<T>, i64), page: Page) -> Self {
        Self {
            data,
            total,
            page: page.page,
            limit: page.limit,
            total_pages: page.total_pages(total),
        }
    }
}

/// Answers a cached read: the stored JSON body as it is on a hit, or `fetch`'s value, encoded
/// once and stored, on a miss. Sends `X-Cache`.
pub async fn cached_json<T, F, Fut>(
    state: &AppState,
    entry: Entry,
    fetch: F,
) -> Result<Response, AppError>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    let fetched = cached_bytes(state, entry, fetch).await?;
    Ok(json_bytes(fetched.value, fetched.outcome))
}

/// The JSON body of a cached read, for routes that combine it with other parts.
pub async fn cached_bytes<T, F, Fut>(
    state: &AppState,
    entry: Entry,
    fetch: F,
) -> Result<Fetched<Bytes>, AppError>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    let fetched = state
        .cache
        .get_or_fetch_raw(&entry.key, &entry.tags, &entry.policy, || async {
            let value = fetch().await?;
            Ok::<_, AppError>(Bytes::from(serde_json::to_vec(&value)?))
        })
        .await?;
    Ok(fetched)
}

/// A typed cached read.
pub async fn cached<T, F, Fut>(
    state: &AppState,
    entry: Entry,
    fetch: F,
) -> Result<Fetched<T>, AppError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    cached_with(state, entry, &cachette::Json, fetch).await
}

/// A typed cached read of a page that may be answered before its fetch ends: past its TTL
/// within the policy's stale-while-revalidate grace (`STALE`, refreshed in the background),
/// or when the fetch is slower than the policy's time limits (`STALE` past the soft one when an
/// expired page is kept, 503 past the hard one). The fetch owns what it uses, as it may outlive
/// the request.
pub async fn cached_or_stale<T, F, Fut>(
    state: &AppState,
    entry: Entry,
    fetch: F,
) -> Result<Fetched<T>, AppError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, AppError>> + Send + 'static,
{
    state
        .cache
        .get_or_refresh(
            &entry.key,
            &entry.tags,
            &entry.policy,
            cachette::Json,
            fetch,
        )
        .await
}

/// Refreshes the page a write's author reads next (see `docs/API.md`, "Cache header"): `read`,
/// a cached read of that page, runs right after the write's invalidation, so the author's next
/// read is a hit. Skipped when the cache would not store the page; a failed refresh leaves a
/// miss for that read, and the write stands.
pub async fn refresh<T>(state: &AppState, read: impl Future<Output = Result<T, AppError>>) {
    if !state.cache.accepts_entries() {
        return;
    }
    if let Err(error) = read.await {
        tracing::debug!(%error, "refreshing a page after a write failed");
    }
}

/// A cached read stored in a layout of its own (see [`cachette::Codec`]).
pub async fn cached_with<T, C, F, Fut>(
    state: &AppState,
    entry: Entry,
    codec: &C,
    fetch: F,
) -> Result<Fetched<T>, AppError>
where
    C: cachette::Codec<T>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    state
        .cache
        .get_or_fetch_with(&entry.key, &entry.tags, &entry.policy, codec, fetch)
        .await
}

/// How an answer built from several cached parts was obtained: its least favourable part
/// (a single miss makes it a miss).
pub fn combined(parts: &[Outcome]) -> Outcome {
    let rank = |o: &Outcome| match o {
        Outcome::Hit => 0,
        Outcome::Stale => 1,
        Outcome::Miss => 2,
        Outcome::Bypass => 3,
    };
    parts
        .iter()
        .copied()
        .max_by_key(rank)
        .unwrap_or(Outcome::Hit)
}

/// A JSON response of `value`, with `X-Cache`.
pub fn json_value<T: Serialize>(value: &T, outcome: Outcome) -> Result<Response, AppError> {
    Ok(json_bytes(Bytes::from(serde_json::to_vec(value)?), outcome))
}

/// A JSON response from bytes already encoded.
pub fn json_bytes(body: Bytes, outcome: Outcome) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                axum::http::HeaderName::from_static("x-cache"),
                HeaderValue::from_static(outcome.as_str()),
            ),
        ],
        body,
    )
        .into_response()
}
