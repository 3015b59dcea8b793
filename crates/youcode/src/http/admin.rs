//! Routes of an admin: their own courses and lessons, and who takes part.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use cachette::Fetched;
use serde::{Deserialize, Deserializer};

use super::body_limit::MAX_CONTENT_BODY_BYTES;
use super::cached::{cached_bytes, cached_json, json_bytes, refresh};
use super::error::AppError;
use super::extract::{Admin, Ids, JsonBody, QueryParams};
use super::invalidate::invalidate;
use super::list_page::ListPage;
use crate::cache::invalidation::{self, CourseChange};
use crate::db::{CourseChanges, LessonChanges, LessonWrite, NewCourse, NewLesson};
use crate::domain::{
    CourseId, CourseState, FieldError, LessonId, LessonState, ListParams, UserId, fields,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/courses", get(courses).post(create_course))
        .route(
            "/api/admin/courses/{course_id}",
            get(course).patch(update_course).delete(delete_course),
        )
        .route(
            "/api/admin/courses/{course_id}/lessons",
            get(lessons).post(create_lesson),
        )
        .route(
            "/api/admin/courses/{course_id}/lessons/{lesson_id}",
            get(lesson).patch(update_lesson).delete(delete_lesson),
        )
        .route(
            "/api/admin/courses/{course_id}/participants",
            get(participants),
        )
        .layer(DefaultBodyLimit::max(MAX_CONTENT_BODY_BYTES))
}

fn valid_name(name: String) -> Result<String, FieldError> {
    fields::name("name", &name, fields::MAX_TITLE_CHARS)
}

fn valid_rank(rank: Option<i64>) -> Result<Option<i64>, AppError> {
    match rank {
        Some(rank) if rank < 1 => Err(AppError::InvalidBody("rank: must be 1 or more".into())),
        rank => Ok(rank),
    }
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

async fn courses(
    State(state): State<AppState>,
    Admin(admin): Admin,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let params = ListParams::parse(&query, 5)?;
    let admin = admin.id;
    let entry = state.keys.admin_courses_page(admin, &params);
    cached_json(&state, entry, || async {
        let rows = state
            .db
            .admin_courses(admin, params.page, params.search.as_ref())
            .await?;
        Ok(ListPage::new(rows, params.page))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CourseBody {
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    presentation: Option<String>,
    #[serde(default)]
    state: Option<CourseState>,
}

async fn create_course(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<CourseBody>,
) -> Result<impl IntoResponse, AppError> {
    let course = NewCourse {
        name: valid_name(body.name)?,
        image: body.image.map(fields::image_url).transpose()?,
        presentation: fields::text(
            "presentation",
            body.presentation.unwrap_or_default(),
            fields::MAX_PRESENTATION_CHARS,
        )?,
        state: body.state.unwrap_or(CourseState::Draft),
    };
    let admin = admin.id;
    let created = state.db.create_course(admin, course).await?;
    let tags = invalidation::course_created(&state.keys, admin);
    invalidate(&state, &tags).await;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn course(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids(course): Ids<CourseId>,
) -> Result<Response, AppError> {
    let page = admin_course_page(&state, admin.id, course).await?;
    Ok(json_bytes(page.value, page.outcome))
}

async fn admin_course_page(
    state: &AppState,
    admin: UserId,
    course: CourseId,
) -> Result<Fetched<Bytes>, AppError> {
    let entry = state.keys.admin_course(admin, course);
    cached_bytes(state, entry, || async {
        Ok(state.db.admin_course(admin, course).await?)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoursePatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    image: Option<Option<String>>,
    #[serde(default)]
    presentation: Option<String>,
    #[serde(default)]
    state: Option<CourseState>,
}

async fn update_course(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids(course): Ids<CourseId>,
    JsonBody(body): JsonBody<CoursePatch>,
) -> Result<Response, AppError> {
    let changes = CourseChanges {
        name: body.name.map(valid_name).transpose()?,
        image: body
            .image
            .map(|image| image.map(fields::image_url).transpose())
            .transpose()?,
        presentation: body
            .presentation
            .map(|p| fields::text("presentation", p, fields::MAX_PRESENTATION_CHARS))
            .transpose()?,
        state: body.state,
    };
    let admin = admin.id;
    let update = state.db.update_course(admin, course, changes).await?;
    let tags =
        invalidation::course_changed(&state.keys, admin, course, CourseChange::updated(&update));
    invalidate(&state, &tags).await;
    refresh(&state, admin_course_page(&state, admin, course)).await;
    Ok(Json(update.updated).into_response())
}

async fn delete_course(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids(course): Ids<CourseId>,
) -> Result<StatusCode, AppError> {
    let admin = admin.id;
    let lessons = state.db.delete_course(admin, course).await?;
    let tags =
        invalidation::course_changed(&state.keys, admin, course, CourseChange::deleted(&lessons));
    invalidate(&state, &tags).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn lessons(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids(course): Ids<CourseId>,
) -> Result<Response, AppError> {
    let admin = admin.id;
    let entry = state.keys.admin_lessons(admin, course);
    cached_json(&state, entry, || async {
        Ok(serde_json::json!({ "data": state.db.admin_lessons(admin, course).await? }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonBody {
    name: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    state: Option<LessonState>,
    #[serde(default)]
    rank: Option<i64>,
}

/// Invalidates what a lesson write made stale.
async fn invalidate_lesson_write(state: &AppState, course: CourseId, write: &LessonWrite) {
    let tags = invalidation::lesson_written(&state.keys, course, write);
    invalidate(state, &tags).await;
}

async fn create_lesson(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids(course): Ids<CourseId>,
    JsonBody(body): JsonBody<LessonBody>,
) -> Result<impl IntoResponse, AppError> {
    let lesson = NewLesson {
        name: valid_name(body.name)?,
        content: fields::text(
            "content",
            body.content.unwrap_or_default(),
            fields::MAX_CONTENT_CHARS,
        )?,
        state: body.state.unwrap_or(LessonState::Hidden),
        rank: valid_rank(body.rank)?,
    };
    let write = state.db.create_lesson(admin.id, course, lesson).await?;
    invalidate_lesson_write(&state, course, &write).await;
    Ok((StatusCode::CREATED, Json(write.lesson)))
}

async fn lesson(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids((course, lesson)): Ids<(CourseId, LessonId)>,
) -> Result<Response, AppError> {
    let page = admin_lesson_page(&state, admin.id, course, lesson).await?;
    Ok(json_bytes(page.value, page.outcome))
}

async fn admin_lesson_page(
    state: &AppState,
    admin: UserId,
    course: CourseId,
    lesson: LessonId,
) -> Result<Fetched<Bytes>, AppError> {
    let entry = state.keys.admin_lesson(admin, course, lesson);
    cached_bytes(state, entry, || async {
        Ok(state.db.admin_lesson(admin, course, lesson).await?)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    state: Option<LessonState>,
    #[serde(default)]
    rank: Option<i64>,
}

async fn update_lesson(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids((course, lesson)): Ids<(CourseId, LessonId)>,
    JsonBody(body): JsonBody<LessonPatch>,
) -> Result<Response, AppError> {
    let changes = LessonChanges {
        name: body.name.map(valid_name).transpose()?,
        content: body
            .content
            .map(|c| fields::text("content", c, fields::MAX_CONTENT_CHARS))
            .transpose()?,
        state: body.state,
        rank: valid_rank(body.rank)?,
    };
    let admin = admin.id;
    let write = state
        .db
        .update_lesson(admin, course, lesson, changes)
        .await?;
    invalidate_lesson_write(&state, course, &write).await;
    refresh(&state, admin_lesson_page(&state, admin, course, lesson)).await;
    Ok(Json(write.lesson).into_response())
}

async fn delete_lesson(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids((course, lesson)): Ids<(CourseId, LessonId)>,
) -> Result<StatusCode, AppError> {
    let write = state.db.delete_lesson(admin.id, course, lesson).await?;
    invalidate_lesson_write(&state, course, &write).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn participants(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids(course): Ids<CourseId>,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let page = ListParams::parse_without_search(&query, 10)?;
    let admin = admin.id;
    let entry = state.keys.admin_participants(admin, course, page);
    cached_json(&state, entry, || async {
        Ok(ListPage::new(
            state.db.admin_participants(admin, course, page).await?,
            page,
        ))
    })
    .await
}
