//! Routes of a signed-in user: their courses, lessons, progress and enrolments.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, QueryParams, SignedIn};
use super::{AppError, ListPage, cached_json};
use crate::domain::{CourseId, LessonId, ListParams, Progress, UserId};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/user/courses", get(courses))
        .route("/api/user/courses/{course_id}", get(course))
        .route(
            "/api/user/courses/{course_id}/participants",
            get(participants),
        )
        .route("/api/user/courses/{course_id}/join", post(join))
        .route("/api/user/courses/{course_id}/leave", post(leave))
        .route("/api/user/lessons/{lesson_id}", get(lesson))
        .route("/api/user/lessons/{lesson_id}/progress", put(set_progress))
}

async fn courses(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let params = ListParams::parse(&query, 10)?;
    let user = user.user_id();
    let entry = state.keys.user_courses_page(user, &params);
    cached_json(&state, entry, || async {
        let rows = state
            .db
            .user_courses(user, params.page, params.search.as_ref())
            .await?;
        Ok(ListPage::new(rows, params.page))
    })
    .await
}

async fn course(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(course): Path<String>,
) -> Result<Response, AppError> {
    let course = CourseId::parse("courseId", &course)?;
    let user = user.user_id();
    let entry = state.keys.user_course(user, course);
    cached_json(&state, entry, || async {
        Ok(state.db.user_course(user, course).await?)
    })
    .await
}

async fn participants(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(course): Path<String>,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let course = CourseId::parse("courseId", &course)?;
    let page = ListParams::parse_without_search(&query, 10)?;
    let user = user.user_id();
    // The list is shared by all participants; who may see it is checked per user.
    let enrolment = state.keys.enrolment(user, course);
    let enrolled = state
        .cache
        .get_or_fetch(
            &enrolment.key,
            &enrolment.tags,
            &enrolment.policy,
            || async { state.db.is_enrolled(user, course).await },
        )
        .await?
        .value;
    if !enrolled {
        return Err(AppError::NotFound);
    }
    let entry = state.keys.user_participants(course, page);
    cached_json(&state, entry, || async {
        Ok(ListPage::new(
            state.db.user_participants(course, page).await?,
            page,
        ))
    })
    .await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Enrolment {
    course_id: String,
    enrolled: bool,
}

async fn join(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(course): Path<String>,
) -> Result<Json<Enrolment>, AppError> {
    let course = CourseId::parse("courseId", &course)?;
    let user = user.user_id();
    state.db.join_course(user, course).await?;
    invalidate_enrolment(&state, user, course).await;
    Ok(Json(Enrolment {
        course_id: course.to_string(),
        enrolled: true,
    }))
}

async fn leave(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(course): Path<String>,
) -> Result<Json<Enrolment>, AppError> {
    let course = CourseId::parse("courseId", &course)?;
    let user = user.user_id();
    state.db.leave_course(user, course).await?;
    invalidate_enrolment(&state, user, course).await;
    Ok(Json(Enrolment {
        course_id: course.to_string(),
        enrolled: false,
    }))
}

/// What joining or leaving a course makes stale.
async fn invalidate_enrolment(state: &AppState, user: UserId, course: CourseId) {
    let keys = &state.keys;
    let tags = [
        keys.user_courses(user),
        keys.user_course_tag(user, course),
        keys.participants(course),
    ];
    state.cache.invalidate_tags(&tags).await;
}

async fn lesson(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(lesson): Path<String>,
) -> Result<Response, AppError> {
    let lesson = LessonId::parse("lessonId", &lesson)?;
    let user = user.user_id();
    // The entry's tags name the lesson's course, so the course is looked up (cached) first.
    let placement = state.keys.lesson_course(lesson);
    let course = state
        .cache
        .get_or_fetch(
            &placement.key,
            &placement.tags,
            &placement.policy,
            || async { state.db.lesson_course(lesson).await },
        )
        .await?
        .value;
    let entry = state.keys.user_lesson(user, lesson, &course);
    cached_json(&state, entry, || async {
        Ok(state.db.user_lesson(user, lesson).await?)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressUpdate {
    progress: Progress,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressSaved {
    lesson_id: String,
    progress: Progress,
}

async fn set_progress(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(lesson): Path<String>,
    JsonBody(body): JsonBody<ProgressUpdate>,
) -> Result<Json<ProgressSaved>, AppError> {
    let lesson = LessonId::parse("lessonId", &lesson)?;
    let user = user.user_id();
    let course = state.db.set_progress(user, lesson, body.progress).await?;
    state
        .cache
        .invalidate_tags(&[state.keys.user_course_tag(user, &course)])
        .await;
    Ok(Json(ProgressSaved {
        lesson_id: lesson.to_string(),
        progress: body.progress,
    }))
}
