//! `GET /metrics`, on its own listener (`--metrics-addr`), and the middleware that counts
//! every answered request of the API.
//!
//! The metrics listen apart from the API rather than behind admin sign-in: a Prometheus server
//! cannot sign in (sessions expire), the address can be a private interface or loopback that
//! the public never reaches, and scrapes neither count as API requests nor wait behind the
//! API's limits.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
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

/// Counts each request by its route template (the route has matched when a router layer
/// runs), method, status and `X-Cache`, with the time to its answer's head.
pub(super) async fn record(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    metrics.record_request(metrics::Request {
        route: route.as_ref().map(MatchedPath::as_str),
        method: &method,
        status: response.status(),
        cache: response
            .headers()
            .get("x-cache")
            .map(|value| value.as_bytes()),
        elapsed: started.elapsed(),
    });
    response
}
