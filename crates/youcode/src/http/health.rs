//! `GET /healthz`: is the database reachable, is the cache working. A degraded cache is not an
//! unhealthy instance: requests still succeed from the database.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::observe::alerts::ActiveAlert;
use crate::state::{AppCache, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// What `GET /healthz` answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Health {
    /// `ok`, or `down` when the database does not answer.
    #[schema(value_type = String, pattern = "^(ok|down)$")]
    status: &'static str,
    #[schema(value_type = String, pattern = "^(ok|down)$")]
    database: &'static str,
    #[schema(value_type = String, pattern = "^(ok|degraded|off)$")]
    cache: &'static str,
    /// When instances share a bus (every set-up but a single SQLite instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    bus: Option<BusHealth>,
    /// Hits served by the in-process tier since start (`--cache tiered` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    local_hits: Option<u64>,
    /// Why the store refuses the cache, where that helps an operator (a refused Upstash
    /// token); never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_error: Option<String>,
    /// The alerts firing now (empty when none is).
    alerts: Vec<ActiveAlert>,
}

#[derive(Serialize, ToSchema)]
struct BusHealth {
    /// `redis` or `postgres`.
    #[schema(value_type = String)]
    name: &'static str,
    /// `unheard` while the instance has not heard itself on the bus within its lease.
    #[schema(value_type = String, pattern = "^(ok|unheard)$")]
    state: &'static str,
    instance: String,
    /// Live instances, this one included.
    instances: usize,
}

/// Whether the database answers and how the cache is.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = Health)
    )
)]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database_ok = state.db.ping().await.is_ok();
    let cache = &state.cache;
    let store = store_check(cache).await;
    let fleet = cache.fleet_status();
    // Without a lease the instance serves nothing from its in-process cache: slower, not wrong.
    let unheard = fleet.as_ref().is_some_and(|fleet| !fleet.live);
    let cache_status = if !cache.config().enabled {
        "off"
    } else if !store.answers
        || cache.is_circuit_open()
        || cache.has_pending_invalidations()
        || unheard
    {
        "degraded"
    } else {
        "ok"
    };
    let status = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let database = if database_ok { "ok" } else { "down" };
    let body = Health {
        status: database,
        database,
        cache: cache_status,
        bus: fleet.map(|fleet| BusHealth {
            name: fleet.bus,
            state: if fleet.live { "ok" } else { "unheard" },
            instance: fleet.instance,
            instances: fleet.members.len() + 1,
        }),
        local_hits: cache.local_tier_usage().map(|_| cache.stats().local_hits),
        cache_error: store.error,
        // The alerts firing (`observe::alerts`), as the dashboard's banner shows them.
        alerts: state.monitor.alerts(),
    };
    (status, Json(body))
}

/// Whether the cache's store answers, for `/healthz` and the dashboard.
pub(super) struct StoreCheck {
    /// It answered a ping within [`STORE_PING_TIMEOUT`] (always, for the in-process store and
    /// with the cache off, which has nothing to ask).
    pub answers: bool,
    /// Why it did not, where that helps an operator (a refused Upstash token); never a secret.
    pub error: Option<String>,
}

/// Longest wait for the store's answer to a ping.
const STORE_PING_TIMEOUT: Duration = Duration::from_millis(500);

pub(super) async fn store_check(cache: &AppCache) -> StoreCheck {
    if !cache.config().enabled {
        return StoreCheck {
            answers: true,
            error: None,
        };
    }
    match tokio::time::timeout(STORE_PING_TIMEOUT, cache.store().ping()).await {
        Ok(Ok(())) => StoreCheck {
            answers: true,
            error: None,
        },
        Ok(Err(error @ cachette::StoreError::Unauthorized(_))) => StoreCheck {
            answers: false,
            error: Some(error.to_string()),
        },
        _ => StoreCheck {
            answers: false,
            error: None,
        },
    }
}
