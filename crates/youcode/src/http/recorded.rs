//! What every answered request was, recorded once: its route template (never its raw path),
//! method, status, `X-Cache` and the time to its answer's head, for the dashboard's traffic
//! table and, when `--metrics-addr` is on, for the Prometheus counts.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics;
use crate::state::AppState;

/// Middleware, layered on the router (not a route), so the route has matched when it runs
/// and unmatched requests are counted as such.
pub(super) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map(MatchedPath::as_str);
    let method = request.method().clone();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let cache = response.headers().get("x-cache");
    state.monitor.traffic.record(
        &method,
        route,
        response.status(),
        cache.and_then(|value| value.to_str().ok()),
        elapsed,
    );
    // Counted only when something scrapes the counts.
    if state.config.metrics_addr.is_some() {
        state.metrics.record_request(metrics::Request {
            route,
            method: &method,
            status: response.status(),
            cache: cache.map(|value| value.as_bytes()),
            elapsed,
        });
    }
    response
}
