//! `GET /healthz`: is the database reachable, is the cache working. A degraded cache is not an
//! unhealthy instance: requests still succeed from the database.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(health))
}

async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database_ok = state.db.ping().await.is_ok();
    let cache = &state.cache;
    let store_ok = match cache.store() {
        cachette::AnyStore::Redis(redis) if cache.config().enabled => {
            tokio::time::timeout(Duration::from_millis(500), redis.ping())
                .await
                .is_ok_and(|pinged| pinged.is_ok())
        }
        _ => true,
    };
    let fleet = cache.fleet_status();
    // Without a lease the instance serves nothing from its in-process cache: slower, not wrong.
    let unheard = fleet.as_ref().is_some_and(|fleet| !fleet.live);
    let cache_status = if !cache.config().enabled {
        "off"
    } else if !store_ok || cache.is_circuit_open() || cache.has_pending_invalidations() || unheard {
        "degraded"
    } else {
        "ok"
    };
    let status = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if database_ok { "ok" } else { "down" },
        "database": if database_ok { "ok" } else { "down" },
        "cache": cache_status,
    });
    if let Some(fleet) = fleet {
        body["bus"] = json!({
            "name": fleet.bus,
            "state": if fleet.live { "ok" } else { "unheard" },
            "instance": fleet.instance,
            "instances": fleet.members.len() + 1,
        });
    }
    // The alerts firing (`observe::alerts`), as the dashboard's banner shows them.
    body["alerts"] = json!(state.monitor.alerts());
    if cache.local_tier_usage().is_some() {
        body["localHits"] = json!(cache.stats().local_hits);
    }
    (status, Json(body))
}
