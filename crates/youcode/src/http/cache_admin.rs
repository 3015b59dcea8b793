//! Cache administration, for admins.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::extract::{Admin, JsonBody, QueryParams};
use crate::config::CacheBackend;
use crate::domain::{ParamError, fields};
use crate::observe::{
    self,
    events::{InvalidationEvent, Source},
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/cache/stats", get(stats))
        .route("/api/admin/cache/clear", post(clear))
        .route("/api/admin/cache/invalidate", post(invalidate))
        .route("/api/test/cache", get(legacy))
}

/// How many keys `sampleKeys` shows.
const SAMPLE_KEYS: usize = 20;

/// The figures of `GET /api/admin/cache/stats`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    backend: &'static str,
    total_keys: u64,
    memory_bytes: Option<u64>,
    /// The cache's overall counters, flattened as they serialize, so that none is left out.
    #[serde(flatten)]
    counters: cachette::StatsSnapshot,
    /// Entries and bytes of the in-process tier (`tiered` only).
    local_tier: Option<cachette::Usage>,
    /// This instance, the bus and the other live instances, when instances share a bus.
    fleet: Option<cachette::FleetStatus>,
    pending_invalidations: bool,
    circuit_open: bool,
    db_queries: u64,
    /// Lookups by key prefix, one per cached route.
    routes: BTreeMap<String, cachette::Lookups>,
    sample_keys: Vec<String>,
}

/// Counters and store figures of the cache.
///
/// # Errors
/// [`AppError::Unavailable`] when the store cannot be read.
pub async fn cache_stats(state: &AppState) -> Result<CacheStats, AppError> {
    let cache = &state.cache;
    let (usage, sample_keys) = if cache.config().enabled {
        let usage = cache
            .usage()
            .await
            .map_err(|e| AppError::Unavailable(e.into()))?;
        let keys = cache
            .sample_keys(SAMPLE_KEYS)
            .await
            .map_err(|e| AppError::Unavailable(e.into()))?;
        (usage, keys)
    } else {
        (cachette::Usage::default(), Vec::new())
    };
    let mut counters = cache.stats();
    let routes = std::mem::take(&mut counters.prefixes);
    Ok(CacheStats {
        backend: backend_name(state),
        total_keys: usage.keys,
        memory_bytes: usage.bytes,
        counters,
        local_tier: cache.local_tier_usage(),
        fleet: cache.fleet_status(),
        pending_invalidations: cache.has_pending_invalidations(),
        circuit_open: cache.is_circuit_open(),
        db_queries: state.db.queries(),
        routes,
        sample_keys,
    })
}

pub(super) fn backend_name(state: &AppState) -> &'static str {
    match state.config.cache.backend {
        CacheBackend::Memory => "memory",
        CacheBackend::Redis => "redis",
        CacheBackend::Tiered => "tiered",
        CacheBackend::Off => "off",
    }
}

async fn stats(State(state): State<AppState>, _: Admin) -> Result<Json<CacheStats>, AppError> {
    cache_stats(&state).await.map(Json)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cleared {
    deleted_keys: u64,
}

async fn clear(State(state): State<AppState>, _: Admin) -> Result<Json<Cleared>, AppError> {
    let deleted_keys = state
        .cache
        .clear()
        .await
        .map_err(|e| AppError::Unavailable(e.into()))?;
    state.monitor.publish(InvalidationEvent {
        at: observe::now(),
        source: Source::AdminClear,
        tags: Vec::new(),
        count: deleted_keys,
        applied: true,
    });
    Ok(Json(Cleared { deleted_keys }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    tags: Vec<String>,
}

#[derive(Serialize)]
struct Invalidated {
    invalidated: usize,
    applied: bool,
}

async fn invalidate(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<TagsBody>,
) -> Result<Json<Invalidated>, AppError> {
    if body.tags.is_empty()
        || body
            .tags
            .iter()
            .any(|t| t.is_empty() || t.len() > 200 || fields::has_control(t))
    {
        return Err(AppError::InvalidBody(
            "tags: give 1 or more tags of 1 to 200 characters, without control characters".into(),
        ));
    }
    let tags: Vec<_> = body.tags.iter().map(|t| state.keys.named(t)).collect();
    let applied = state.cache.invalidate_tags(&tags).await == cachette::Invalidation::Applied;
    // The tags as typed: the live list is for admins only.
    state.monitor.publish(InvalidationEvent {
        at: observe::now(),
        source: Source::AdminTags,
        tags: body.tags.clone(),
        count: tags.len() as u64,
        applied,
    });
    Ok(Json(Invalidated {
        invalidated: tags.len(),
        applied,
    }))
}

/// `GET /api/test/cache?action=stats|clear`, kept for old clients (admins only, unlike the
/// route it replaces).
async fn legacy(
    State(state): State<AppState>,
    admin: Admin,
    QueryParams(query): QueryParams,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    match query.get("action").map(String::as_str) {
        None | Some("stats") => stats(State(state), admin)
            .await
            .map(IntoResponse::into_response),
        Some("clear") => clear(State(state), admin)
            .await
            .map(IntoResponse::into_response),
        Some(_) => Err(ParamError::new("action", "must be stats or clear").into()),
    }
}
