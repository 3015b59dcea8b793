//! `GET /metrics`, on its own listener (`--metrics-addr`).
//!
//! The metrics listen apart from the API rather than behind admin sign-in: a Prometheus server
//! cannot sign in (sessions expire), the address can be a private interface or loopback that
//! the public never reaches, and scrapes neither count as API requests nor wait behind the
//! API's limits.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppError;
use crate::metrics::{self, Metrics};

/// The metrics listener's routes: `GET /metrics` and nothing else.
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Metrics>) -> Response {
    (
        [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics.render().await,
    )
        .into_response()
}
