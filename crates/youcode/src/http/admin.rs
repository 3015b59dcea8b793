//! Routes of an admin: their own courses and lessons, and who takes part.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cachette::{Fetched, Outcome};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body_limit::MAX_CONTENT_BODY_BYTES;
use super::cached::{cached_bytes, cached_json, json_bytes, refresh};
use super::error::AppError;
use super::extract::{Admin, Ids, JsonBody, QueryParams};
use super::invalidate::invalidate;
use super::list_page::ListPage;
use super::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, RequestTimeout, Unauthorized, Unavailable,
};
use crate::cache::invalidation::{self, CourseChange};
use crate::db::{
    AdminCourse, AdminCourseItem, AdminLesson, AdminLessonItem, AdminParticipant, CourseChanges,
    LessonChanges, LessonWrite, NewCourse, NewLesson,
};
use crate::domain::{
    CourseId, CourseState, FieldError, LessonId, LessonState, ListParams, Page, UserId, fields,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(courses, create_course))
        .routes(routes!(course, update_course, delete_course))
        .routes(routes!(lessons, create_lesson))
        .routes(routes!(lesson, update_lesson, delete_lesson))
        .routes(routes!(participants))
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

/// The admin's own courses, newest first.
#[utoipa::path(
    get,
    path = "/api/admin/courses",
    tag = "admin",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, body = ListPage<AdminCourseItem>, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, Forbidden, Unavailable
    )
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CourseBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// An URL of at most 2 000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    image: Option<String>,
    #[serde(default)]
    #[schema(max_length = 10000)]
    presentation: Option<String>,
    #[serde(default)]
    state: Option<CourseState>,
}

/// Creates a course (DRAFT unless `state` says otherwise).
#[utoipa::path(
    post,
    path = "/api/admin/courses",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CourseBody,
    responses(
        (status = 201, body = AdminCourse),
        BadRequest, Unauthorized, Forbidden, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
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

/// One of the admin's courses, with counts.
#[utoipa::path(
    get,
    path = "/api/admin/courses/{course_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    responses(
        (status = 200, body = AdminCourse, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CoursePatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// An URL of at most 2 000 characters, or null for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    image: Option<Option<String>>,
    #[serde(default)]
    #[schema(max_length = 10000)]
    presentation: Option<String>,
    #[serde(default)]
    state: Option<CourseState>,
}

/// Changes the fields given of one of the admin's courses.
#[utoipa::path(
    patch,
    path = "/api/admin/courses/{course_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    request_body = CoursePatch,
    responses(
        (status = 200, body = AdminCourse),
        BadRequest, Unauthorized, Forbidden, NotFound, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
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

/// Deletes one of the admin's courses, with its lessons, enrolments and progress.
#[utoipa::path(
    delete,
    path = "/api/admin/courses/{course_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    responses(
        (status = 204, description = "Deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
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

/// All the lessons of a course, by rank.
#[derive(Serialize, ToSchema)]
struct LessonList {
    data: Vec<AdminLessonItem>,
}

/// All the lessons of one of the admin's courses, by rank.
#[utoipa::path(
    get,
    path = "/api/admin/courses/{course_id}/lessons",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    responses(
        (status = 200, body = LessonList, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
async fn lessons(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids(course): Ids<CourseId>,
) -> Result<Response, AppError> {
    let admin = admin.id;
    let entry = state.keys.admin_lessons(admin, course);
    cached_json(&state, entry, || async {
        Ok(LessonList {
            data: state.db.admin_lessons(admin, course).await?,
        })
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LessonBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 100000)]
    content: Option<String>,
    #[serde(default)]
    state: Option<LessonState>,
    /// Where it goes, from 1 (lessons from that rank on move down); absent: last.
    #[serde(default)]
    #[schema(minimum = 1)]
    rank: Option<i64>,
}

/// Invalidates what a lesson write made stale.
async fn invalidate_lesson_write(state: &AppState, course: CourseId, write: &LessonWrite) {
    let tags = invalidation::lesson_written(&state.keys, course, write);
    invalidate(state, &tags).await;
}

/// Adds a lesson to one of the admin's courses (HIDDEN unless `state` says otherwise).
#[utoipa::path(
    post,
    path = "/api/admin/courses/{course_id}/lessons",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    request_body = LessonBody,
    responses(
        (status = 201, body = AdminLesson),
        BadRequest, Unauthorized, Forbidden, NotFound, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
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

/// A lesson of one of the admin's courses.
#[utoipa::path(
    get,
    path = "/api/admin/courses/{course_id}/lessons/{lesson_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<(CourseId, LessonId)>),
    responses(
        (status = 200, body = AdminLesson, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LessonPatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100000)]
    content: Option<String>,
    #[serde(default)]
    state: Option<LessonState>,
    /// A new rank moves the lesson there and shifts the others (ranks stay 1..=n).
    #[serde(default)]
    #[schema(minimum = 1)]
    rank: Option<i64>,
}

/// Changes the fields given of a lesson of one of the admin's courses.
#[utoipa::path(
    patch,
    path = "/api/admin/courses/{course_id}/lessons/{lesson_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<(CourseId, LessonId)>),
    request_body = LessonPatch,
    responses(
        (status = 200, body = AdminLesson),
        BadRequest, Unauthorized, Forbidden, NotFound, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
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

/// Deletes a lesson of one of the admin's courses; later lessons move up.
#[utoipa::path(
    delete,
    path = "/api/admin/courses/{course_id}/lessons/{lesson_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<(CourseId, LessonId)>),
    responses(
        (status = 204, description = "Deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
async fn delete_lesson(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Ids((course, lesson)): Ids<(CourseId, LessonId)>,
) -> Result<StatusCode, AppError> {
    let write = state.db.delete_lesson(admin.id, course, lesson).await?;
    invalidate_lesson_write(&state, course, &write).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The participants of one of the admin's courses, by join date.
#[utoipa::path(
    get,
    path = "/api/admin/courses/{course_id}/participants",
    tag = "admin",
    security(("bearer" = [])),
    params(Ids<CourseId>, Page),
    responses(
        (status = 200, body = ListPage<AdminParticipant>, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
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
