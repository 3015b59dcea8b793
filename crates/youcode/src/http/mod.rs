//! The HTTP API: one module per resource, each exposing `router()`.
//!
//! Below the resources: `cached` (cached reads and `X-Cache`), `list_page` (the page every list
//! route answers), `extract` (typed request parts), `body_limit` and `body_deadline` (what a
//! request body may cost), `error` (the API's error type), `openapi` (the OpenAPI document the
//! routes' declarations make, and the error answers they name), `metrics` (`GET /metrics` on
//! its own listener), `recorded` (what every answered request was, for the dashboard and the
//! metrics), `warm` (filling a cold cache). `dashboard` is the page at `/admin`
//! and its data.

mod admin;
mod auth;
mod body_deadline;
mod body_limit;
mod cache_admin;
mod cached;
pub(crate) mod course_list;
mod dashboard;
mod error;
mod extract;
mod health;
mod invalidate;
mod list_page;
pub mod metrics;
pub mod openapi;
mod public;
mod recorded;
mod user;
mod warm;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;

pub use body_limit::{MAX_BODY_BYTES, MAX_CONTENT_BODY_BYTES};
pub use error::AppError;
pub use invalidate::{RELAY_DELAY, relay};
pub use warm::{LESSONS_PER_COURSE, PUBLIC_PAGES, Warmed, warm};

use crate::db::outbox;
use crate::state::AppState;

/// Every route, each declared once with its OpenAPI description: the router and the document
/// (`GET /api/openapi.json`) come from the same declarations.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(auth::router())
        .merge(public::router())
        .merge(user::router())
        .merge(admin::router())
        .merge(cache_admin::router())
        .merge(health::router())
        .merge(openapi::router())
}

/// The OpenAPI 3.1 document of the API, as `GET /api/openapi.json` answers it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The whole API, ready to serve or to test with `oneshot`.
pub fn app(state: AppState) -> Router {
    let body_timeout = state.config.limits.body_timeout;
    let (routes, _) = routes().split_for_parts();
    routes
        .merge(dashboard::router())
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            finish_writes,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower::util::MapRequestLayer::new(move |request| {
            body_deadline::apply(request, body_timeout)
        }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            recorded::record,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs each write request to the end even if its client goes away: a write commits and then
/// invalidates the cache, and a request dropped between the two would leave stale entries. Its
/// transactions record what they owe the cache in the outbox (`db/outbox.rs`), in case the
/// process dies between the two.
async fn finish_writes(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::Method;
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let write = async move {
        let response = next.run(request).await;
        // What the request recorded and did not settle, it owed nothing for (a sign-in's new
        // session, say): gone, rather than left for a relay to invalidate everything.
        let owed = outbox::take_owed();
        if !owed.is_empty() {
            tokio::spawn(async move {
                if let Err(error) = state.db.settle_outbox(&owed, true, &[]).await {
                    tracing::warn!(%error, "the cache outbox could not be settled");
                }
            });
        }
        response
    };
    tokio::spawn(outbox::recording(write))
        .await
        .unwrap_or_else(|error| AppError::Internal(error.into()).into_response())
}
