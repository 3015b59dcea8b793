//! Routes anyone may call.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::extract::QueryParams;
use super::{AppError, ListPage, cached, cached_json};
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
        let search = params.search.as_ref();
        let total = match search {
            // The whole list's length changes only when lessons join or leave it, far more
            // rarely than names change: it is cached on its own.
            None => {
                cached(&state, state.keys.public_lesson_count(), || async {
                    Ok(state.db.public_lesson_count(None).await?)
                })
                .await?
                .value
            }
            Some(_) => state.db.public_lesson_count(search).await?,
        };
        let rows = state.db.public_lesson_page(params.page, search).await?;
        Ok(ListPage::new((rows, total), params.page))
    })
    .await
}
