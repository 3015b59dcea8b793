//! Cache administration, for admins.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use super::extract::{Admin, JsonBody, QueryParams};
use super::openapi::{
    BadRequest, Conflict, Forbidden, PayloadTooLarge, RequestTimeout, Unauthorized, Unavailable,
};
use super::warm::Warmed;
use crate::config::{CacheBackend, DEFAULT_WARM_TOP, MAX_WARM_TOP};
use crate::domain::{ParamError, fields};
use crate::observe::{
    self,
    events::{InvalidationEvent, Source},
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(clear))
        .routes(routes!(invalidate))
        .routes(routes!(warm))
        .routes(routes!(legacy))
}

/// How many keys `sampleKeys` shows.
const SAMPLE_KEYS: usize = 20;

/// The figures of `GET /api/admin/cache/stats`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// `memory`, `redis`, `tiered` or `off`.
    #[schema(value_type = String, pattern = "^(memory|redis|tiered|off)$")]
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
        CacheBackend::Upstash => "upstash",
        CacheBackend::Tiered => "tiered",
        CacheBackend::Off => "off",
    }
}

/// The cache's counters and the store's figures.
#[utoipa::path(
    get,
    path = "/api/admin/cache/stats",
    tag = "cache",
    security(("bearer" = [])),
    responses((status = 200, body = CacheStats), Unauthorized, Forbidden, Unavailable)
)]
async fn stats(State(state): State<AppState>, _: Admin) -> Result<Json<CacheStats>, AppError> {
    cache_stats(&state).await.map(Json)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Cleared {
    deleted_keys: u64,
}

/// Deletes every key of the cache's namespace (and nothing else).
#[utoipa::path(
    post,
    path = "/api/admin/cache/clear",
    tag = "cache",
    security(("bearer" = [])),
    responses((status = 200, body = Cleared), Unauthorized, Forbidden, Unavailable)
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    /// 1 or more tags (`course:<id>`, …) of 1 to 200 characters, without control characters.
    #[schema(min_items = 1)]
    tags: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct Invalidated {
    invalidated: usize,
    applied: bool,
}

/// Invalidates tags: the entries built under them are misses from now on, on every instance.
#[utoipa::path(
    post,
    path = "/api/admin/cache/invalidate",
    tag = "cache",
    security(("bearer" = [])),
    request_body = TagsBody,
    responses(
        (status = 200, description = "`applied` false: the store could not be reached and the \
            invalidation is retried in the background", body = Invalidated),
        BadRequest, Unauthorized, Forbidden, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WarmBody {
    /// How many of the most-joined published courses to warm; [`DEFAULT_WARM_TOP`] when absent.
    #[schema(minimum = 1, maximum = 1000)]
    top: Option<u32>,
}

/// `POST /api/admin/cache/warm`: warms the entries read first, at this server's warming pace
/// (`--warm-rate`, `--warm-concurrency`), and answers once they are.
#[utoipa::path(
    post,
    path = "/api/admin/cache/warm",
    tag = "cache",
    security(("bearer" = [])),
    request_body = WarmBody,
    responses(
        (status = 200, description = "The entries are stored", body = Warmed),
        BadRequest, Unauthorized, Forbidden, Conflict, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
async fn warm(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<WarmBody>,
) -> Result<Json<Warmed>, AppError> {
    let top = body.top.unwrap_or(DEFAULT_WARM_TOP);
    if !(1..=MAX_WARM_TOP).contains(&top) {
        return Err(AppError::InvalidBody(format!(
            "top: must be a whole number from 1 to {MAX_WARM_TOP}"
        )));
    }
    let pace = state.config.warming;
    super::warm::warm(&state, top, pace, &|_, _| {})
        .await
        .map(Json)
}

/// `GET /api/test/cache?action=stats|clear`, kept for old clients (admins only, unlike the
/// route it replaces).
#[utoipa::path(
    get,
    path = "/api/test/cache",
    tag = "cache",
    security(("bearer" = [])),
    params(("action" = Option<String>, Query, pattern = "^(stats|clear)$",
        description = "`stats` (default) or `clear`")),
    responses(
        (status = 200, description = "What stats (`action=stats`) or clear (`action=clear`) \
            answers", body = LegacyAnswer),
        BadRequest, Unauthorized, Forbidden, Unavailable
    )
)]
async fn legacy(
    State(state): State<AppState>,
    admin: Admin,
    QueryParams(query): QueryParams,
) -> Result<Json<LegacyAnswer>, AppError> {
    match query.get("action").map(String::as_str) {
        None | Some("stats") => Ok(Json(LegacyAnswer::Stats(Box::new(
            stats(State(state), admin).await?.0,
        )))),
        Some("clear") => Ok(Json(LegacyAnswer::Cleared(
            clear(State(state), admin).await?.0,
        ))),
        Some(_) => Err(ParamError::new("action", "must be stats or clear").into()),
    }
}

/// What `GET /api/test/cache` answers: the stats, or what clearing deleted.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum LegacyAnswer {
    Stats(Box<CacheStats>),
    Cleared(Cleared),
}
