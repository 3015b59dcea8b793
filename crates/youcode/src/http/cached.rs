//! Cached reads as routes answer them: on a hit the stored JSON body as it is, and the
//! `X-Cache` header saying how the answer was obtained.

use std::future::Future;

use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cachette::{Fetched, Outcome};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::AppError;
use crate::cache::keys::Entry;
use crate::state::AppState;

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
