//! Routes anyone may call.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::extract::QueryParams;
use super::{AppError, ListPage, cached_json};
use crate::domain::ListParams;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/public/lessons", get(public_lessons))
}

async fn public_lessons(
    State(state): State<AppState>,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let params = ListParams::parse(&query, 10)?;
    let entry = state.keys.public_lessons_page(&params);
    cached_json(&state, entry, || async {
        let rows = state
            .db
            .public_lessons(params.page, params.search.as_ref())
            .await?;
        Ok(ListPage::new(rows, params.page))
    })
    .await
}
