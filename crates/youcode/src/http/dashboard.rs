//! The live dashboard: the page at `/admin` (public HTML, embedded in the binary) and the data
//! it shows, under `/api/admin/dashboard/…`, for admins only.
//!
//! The page signs in with `POST /api/auth/login` and sends the token as `Authorization:
//! Bearer` on each fetch; the live list of invalidations is read with `fetch()` and a stream
//! reader rather than `EventSource`, which cannot send that header, so the token never goes in
//! a URL.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::extract::Admin;
use crate::observe::alerts::ActiveAlert;
use crate::observe::events::InvalidationEvent;
use crate::observe::history::Point;
use crate::observe::traffic::RouteTraffic;
use crate::state::AppState;

const PAGE: &str = include_str!("dashboard/dashboard.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// Everything the page loads comes from this server; scripts only from files.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/dashboard.js", get(script))
        .route("/admin/dashboard.css", get(style))
        .route("/api/admin/dashboard/summary", get(summary))
        .route("/api/admin/dashboard/events", get(events))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, PAGE_POLICY),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// The figures of `GET /api/admin/dashboard/summary`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    backend: &'static str,
    store: StoreFigures,
    /// Lookups since start, by outcome, and their hit ratio.
    lookups: cachette::Lookups,
    store_errors: u64,
    invalidations: u64,
    breaker_open: bool,
    pending_invalidations: bool,
    db_queries: u64,
    /// The hit ratio a second at a time, oldest first.
    chart: Vec<Point>,
    routes: Vec<RouteTraffic>,
    alerts: Vec<ActiveAlert>,
    recent_invalidations: Vec<InvalidationEvent>,
}

/// The store as it reports itself.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreFigures {
    /// `ok`, `down` (it does not answer) or `off` (the cache is disabled).
    health: &'static str,
    /// Keys of our namespace (`None` when the store could not be read).
    keys: Option<u64>,
    /// Bytes they take: Redis `MEMORY USAGE` of each, or the memory store's weights.
    memory_bytes: Option<u64>,
}

async fn summary(State(state): State<AppState>, _: Admin) -> Json<Summary> {
    let cache = &state.cache;
    let store = store_figures(&state).await;
    let stats = cache.stats();
    let monitor = &state.monitor;
    Json(Summary {
        backend: super::cache_admin::backend_name(&state),
        store,
        lookups: stats.lookups,
        store_errors: stats.errors,
        invalidations: stats.invalidations,
        breaker_open: cache.is_circuit_open(),
        pending_invalidations: cache.has_pending_invalidations(),
        db_queries: state.db.queries(),
        chart: monitor.chart(),
        routes: monitor.traffic.rows(),
        alerts: monitor.alerts(),
        recent_invalidations: monitor.recent(),
    })
}

async fn store_figures(state: &AppState) -> StoreFigures {
    let cache = &state.cache;
    if !cache.config().enabled {
        return StoreFigures {
            health: "off",
            keys: None,
            memory_bytes: None,
        };
    }
    let usage = if super::health::store_check(cache).await.answers {
        cache.usage().await.ok()
    } else {
        None
    };
    StoreFigures {
        health: if usage.is_some() { "ok" } else { "down" },
        keys: usage.map(|usage| usage.keys),
        memory_bytes: usage.and_then(|usage| usage.bytes),
    }
}

/// `GET /api/admin/dashboard/events`: server-sent events, one `invalidation` event (its data
/// an [`InvalidationEvent`]) for each invalidation from now on, and a `lagged` event when
/// the reader fell too far behind and missed some. Ends when the server stops.
async fn events(
    State(state): State<AppState>,
    _: Admin,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.monitor.subscribe();
    let stopping = state.monitor.stopping();
    let stream = futures::stream::unfold(
        (receiver, stopping),
        |(mut receiver, mut stopping)| async move {
            let event = tokio::select! {
                received = receiver.recv() => match received {
                    Ok(event) => Event::default()
                        .event("invalidation")
                        .json_data(&event)
                        .unwrap_or_else(|_| Event::default().comment("unserializable")),
                    Err(RecvError::Lagged(missed)) => {
                        Event::default().event("lagged").data(missed.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = stopping.wait_for(|stopping| *stopping) => return None,
            };
            Some((Ok(event), (receiver, stopping)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
