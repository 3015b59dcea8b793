//! `GET /healthz`: is the database reachable, is the cache working.

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
    let cache_status = if !cache.config().enabled {
        "off"
    } else if cache.is_circuit_open() || cache.has_pending_invalidations() {
        "degraded"
    } else {
        "ok"
    };
    let status = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database_ok { "ok" } else { "down" },
        "database": if database_ok { "ok" } else { "down" },
        "cache": cache_status,
    });
    (status, Json(body))
}
