//! Routes anyone may call.

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use cachette::{Fetched, Outcome};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cached::{cached, cached_bytes, json_bytes};
use super::error::AppError;
use super::extract::QueryParams;
use super::list_page::ListPage;
use super::openapi::{BadRequest, Unavailable};
use crate::db::PublicLesson;
use crate::domain::ListParams;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(public_lessons))
}

/// PUBLIC lessons of PUBLISHED courses, by course name then rank. No token needed.
#[utoipa::path(
    get,
    path = "/api/public/lessons",
    tag = "public",
    params(ListParams),
    responses(
        (status = 200, body = ListPage<PublicLesson>, headers(("X-Cache" = Outcome))),
        BadRequest, Unavailable
    )
)]
async fn public_lessons(
    State(state): State<AppState>,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let params = ListParams::parse(&query, 10)?;
    let page = public_lessons_page(&state, &params).await?;
    Ok(json_bytes(page.value, page.outcome))
}

/// A page of the public lesson list as JSON, from the cache.
pub(super) async fn public_lessons_page(
    state: &AppState,
    params: &ListParams,
) -> Result<Fetched<Bytes>, AppError> {
    let entry = state.keys.public_lessons_page(params);
    cached_bytes(state, entry, || async {
        let search = params.search.as_ref();
        // A list's length changes far more rarely than what its pages show (names, most
        // often): it is cached on its own, once for every page.
        let total = cached(state, state.keys.public_lesson_count(search), || async {
            Ok(state.db.public_lesson_count(search).await?)
        })
        .await?
        .value;
        let rows = state.db.public_lesson_page(params.page, search).await?;
        Ok(ListPage::new((rows, total), params.page))
    })
    .await
}
