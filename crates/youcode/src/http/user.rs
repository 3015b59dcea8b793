//! Routes of a signed-in user: their courses, lessons, progress and enrolments.
//!
//! Course and lesson pages are shared cache entries (the same for every user); a user's enrolment
//! and progress in a course are one small entry of their own. These routes combine the two, so a
//! popular lesson is fetched once for everybody and a user's write refreshes only their entry.
//! Both parts are decoded as typed values: an entry that does not decode is a miss, never a 500.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use cachette::{Fetched, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tracing::warn;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cached::{
    cached, cached_bytes, cached_or_stale, cached_with, combined, json_bytes, json_value, refresh,
};
use super::course_list::ListParts;
use super::error::AppError;
use super::extract::{Ids, JsonBody, QueryParams, SignedIn};
use super::invalidate::invalidate;
use super::list_page::ListPage;
use super::openapi::{
    BadRequest, NotFound, PayloadTooLarge, RequestTimeout, Unauthorized, Unavailable,
};
use crate::cache::course_list::{Chunk, CourseList, CourseListCodec, chunks_for};
use crate::cache::invalidation::{self, EnrolmentOutcome};
use crate::cache::keys::{CHUNK_LEN, course_list_split, in_earlier_part};
use crate::db::{
    JoinedPart, LearnerState, PublishedCourse, PublishedLesson, UserCourseItem, UserParticipant,
    now_ms,
};
use crate::domain::{CourseId, LessonId, LessonState, ListParams, Page, Progress, Search, UserId};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(courses))
        .routes(routes!(course))
        .routes(routes!(participants))
        .routes(routes!(join))
        .routes(routes!(leave))
        .routes(routes!(lesson))
        .routes(routes!(set_progress))
}

/// The signed-in user's enrolment and progress in `course`, from the cache.
async fn learner_state(
    state: &AppState,
    user: UserId,
    course: CourseId,
) -> Result<Fetched<LearnerState>, AppError> {
    learner_state_if_shown(state, user, course, std::future::ready(true)).await
}

/// Like [`learner_state`], looked up while the page that says whether `course` may be shown is:
/// a miss reads the database only once `shown` says yes, so a request for a course that does
/// not exist, or that the user may not see, reads and stores no state for it. (The lookup may
/// still create the generation of the entry's tag, as a lookup of the course's page does.)
async fn learner_state_if_shown(
    state: &AppState,
    user: UserId,
    course: CourseId,
    shown: impl Future<Output = bool>,
) -> Result<Fetched<LearnerState>, AppError> {
    cached(
        state,
        state.keys.learner_state(user, course),
        || async move {
            if !shown.await {
                return Err(AppError::NotFound);
            }
            Ok(state.db.learner_state(user, course).await?)
        },
    )
    .await
}

/// One part of the user's course list, from the cache.
async fn course_list_part(
    state: &AppState,
    user: UserId,
    part: JoinedPart,
) -> Result<Fetched<CourseList>, AppError> {
    let entry = state.keys.user_course_list(user, part);
    cached_with(state, entry, &CourseListCodec, || {
        read_course_list_part(state, user, part)
    })
    .await
}

/// One part of the user's course list, from the database.
async fn read_course_list_part(
    state: &AppState,
    user: UserId,
    part: JoinedPart,
) -> Result<CourseList, AppError> {
    Ok(CourseList::new(
        &state.db.user_course_list(user, part).await?,
    )?)
}

/// The courses the user is enrolled in, newest enrolment first.
#[utoipa::path(
    get,
    path = "/api/user/courses",
    tag = "user",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, body = ListPage<UserCourseItem>, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, Unavailable
    )
)]
async fn courses(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let params = ListParams::parse(&query, 10)?;
    let user = user.id;
    let split = course_list_split(now_ms());
    let search = params.search.as_ref();
    let earlier = EarlierCourses {
        state: &state,
        user,
        split,
        search,
    };
    // The recent courses and the first chunk of earlier ones (it holds how many there are),
    // then the further chunks the page shows, if there are such.
    let ((recent, recent_outcome), first_chunk) = tokio::try_join!(
        recent_courses(&state, user, split, search),
        earlier.chunk(0)
    )?;
    let earlier_total = first_chunk.value.total;
    let chunk_count = usize::try_from(earlier_total)
        .unwrap_or(0)
        .div_ceil(CHUNK_LEN);
    let needed = chunks_for(recent.len(), params.page, CHUNK_LEN);
    let first = *needed.start();
    let further = futures::future::try_join_all(
        needed
            .filter(|&index| index > 0 && index < chunk_count)
            .map(|index| earlier.chunk(index)),
    )
    .await?;
    let mut outcomes = vec![recent_outcome, first_chunk.outcome];
    outcomes.extend(further.iter().map(|chunk| chunk.outcome));
    let chunks: Vec<Chunk> = (first == 0)
        .then_some(first_chunk.value)
        .into_iter()
        .chain(further.into_iter().map(|chunk| chunk.value))
        .collect();
    let parts = ListParts {
        recent: &recent,
        earlier_total,
        first_chunk: first,
        chunks: &chunks,
        chunk_len: CHUNK_LEN,
    };
    let page = parts.page(params.page)?;
    Ok(json_bytes(Bytes::from(page), combined(&outcomes)))
}

/// The user's courses joined since `split` that match `search`, as JSON. A cached part that
/// holds a course that is not JSON is discarded, and the courses are read from the database.
async fn recent_courses(
    state: &AppState,
    user: UserId,
    split: i64,
    search: Option<&Search>,
) -> Result<(Vec<Box<RawValue>>, Outcome), AppError> {
    let part = JoinedPart::Since(split);
    let recent = course_list_part(state, user, part).await?;
    if let Some(courses) = recent.value.matches(search) {
        return Ok((courses, recent.outcome));
    }
    let courses = refetched_part(state, user, part)
        .await?
        .matches(search)
        .ok_or_else(not_json)?;
    Ok((courses, Outcome::Miss))
}

/// The user's courses joined before `split`, read through cached chunks of those matching
/// `search`. A chunk that is not cached is cut from the earlier part, read inside the chunk's
/// own fetch: a part read earlier in the request (for another chunk) may predate a write that
/// this chunk's generation snapshot already follows, so reusing it could store stale data as
/// fresh.
struct EarlierCourses<'a> {
    state: &'a AppState,
    user: UserId,
    split: i64,
    search: Option<&'a Search>,
}

impl EarlierCourses<'_> {
    /// The `index`th chunk; past a corrupt part, as [`recent_courses`] does.
    async fn chunk(&self, index: usize) -> Result<Fetched<Chunk>, AppError> {
        let (state, user) = (self.state, self.user);
        let part = JoinedPart::Before(self.split);
        let entry = state
            .keys
            .user_course_chunk(user, self.split, self.search, index);
        cached(state, entry, || async {
            let earlier = course_list_part(state, user, part).await?;
            if let Some(chunk) = earlier.value.chunk(self.search, index, CHUNK_LEN) {
                return Ok(chunk);
            }
            refetched_part(state, user, part)
                .await?
                .chunk(self.search, index, CHUNK_LEN)
                .ok_or_else(not_json)
        })
        .await
    }
}

/// A part of the user's course list read from the database, after discarding the cached one,
/// which holds a course that is not JSON.
async fn refetched_part(
    state: &AppState,
    user: UserId,
    part: JoinedPart,
) -> Result<CourseList, AppError> {
    warn!(%user, "a cached course list holds a course that is not JSON: read from the database");
    state
        .cache
        .discard(&state.keys.user_course_list(user, part).key)
        .await;
    read_course_list_part(state, user, part).await
}

fn not_json() -> AppError {
    AppError::Internal(anyhow::anyhow!(
        "a course list read from the database is not JSON"
    ))
}

/// A published course as one user sees it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct UserCourseDetail<'a> {
    id: CourseId,
    name: &'a str,
    image: Option<&'a str>,
    presentation: &'a str,
    creator_name: &'a str,
    enrolled: bool,
    lesson_count: usize,
    /// Its PUBLISHED and PUBLIC lessons, by rank, with the user's progress (`NOT_STARTED` when
    /// not enrolled).
    lessons: Vec<UserCourseLesson<'a>>,
}

#[derive(Serialize, ToSchema)]
struct UserCourseLesson<'a> {
    id: LessonId,
    name: &'a str,
    rank: i64,
    state: LessonState,
    progress: Progress,
}

/// A published course's page, shared by every user, from the cache (`STALE` within the grace
/// of its policy).
pub(super) async fn published_course_page(
    state: &AppState,
    course: CourseId,
) -> Result<Fetched<PublishedCourse>, AppError> {
    let db = state.db.clone();
    cached_or_stale(
        state,
        state.keys.published_course(course),
        move || async move { Ok(db.published_course(course).await?) },
    )
    .await
}

/// A visible lesson's page, shared by every user, from the cache (`STALE` within the grace
/// of its policy).
pub(super) async fn published_lesson_page(
    state: &AppState,
    lesson: LessonId,
) -> Result<Fetched<PublishedLesson>, AppError> {
    let db = state.db.clone();
    cached_or_stale(
        state,
        state.keys.published_lesson(lesson),
        move || async move { Ok(db.published_lesson(lesson).await?) },
    )
    .await
}

/// A PUBLISHED course as the user sees it (a DRAFT one is 404).
#[utoipa::path(
    get,
    path = "/api/user/courses/{course_id}",
    tag = "user",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    responses(
        (status = 200, body = UserCourseDetail, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
async fn course(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Ids(course): Ids<CourseId>,
) -> Result<Response, AppError> {
    let user = user.id;
    let (found, shown) = oneshot::channel();
    let shared = async {
        let shared = published_course_page(&state, course).await;
        let _ = found.send(shared.is_ok());
        shared
    };
    let shown = async { shown.await == Ok(true) };
    let (shared, learner) =
        tokio::join!(shared, learner_state_if_shown(&state, user, course, shown));
    let (shared, learner) = (shared?, learner?);
    let page = &shared.value;
    let detail = UserCourseDetail {
        id: page.id,
        name: &page.name,
        image: page.image.as_deref(),
        presentation: &page.presentation,
        creator_name: &page.creator_name,
        enrolled: learner.value.enrolled,
        lesson_count: page.lessons.len(),
        lessons: page
            .lessons
            .iter()
            .map(|lesson| UserCourseLesson {
                id: lesson.id,
                name: &lesson.name,
                rank: lesson.rank,
                state: lesson.state,
                progress: learner.value.progress_in(lesson.id),
            })
            .collect(),
    };
    json_value(&detail, combined(&[shared.outcome, learner.outcome]))
}

/// The course's participants, by join date (never their emails); only for participants.
#[utoipa::path(
    get,
    path = "/api/user/courses/{course_id}/participants",
    tag = "user",
    security(("bearer" = [])),
    params(Ids<CourseId>, Page),
    responses(
        (status = 200, body = ListPage<UserParticipant>, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
async fn participants(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Ids(course): Ids<CourseId>,
    QueryParams(query): QueryParams,
) -> Result<Response, AppError> {
    let page = ListParams::parse_without_search(&query, 10)?;
    // The list is shared by all participants; who may see it is checked per user, first, so
    // that only a participant ever fetches it for the others.
    let learner = learner_state(&state, user.id, course).await?;
    if !learner.value.enrolled {
        return Err(AppError::NotFound);
    }
    let list = cached_bytes(
        &state,
        state.keys.user_participants(course, page),
        || async {
            Ok(ListPage::new(
                state.db.user_participants(course, page).await?,
                page,
            ))
        },
    )
    .await?;
    Ok(json_bytes(
        list.value,
        combined(&[learner.outcome, list.outcome]),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Enrolment {
    course_id: CourseId,
    enrolled: bool,
}

/// Joins a PUBLISHED course (idempotent: joining again keeps the join date).
#[utoipa::path(
    post,
    path = "/api/user/courses/{course_id}/join",
    tag = "user",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    responses((status = 200, body = Enrolment), BadRequest, Unauthorized, NotFound, Unavailable)
)]
async fn join(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Ids(course): Ids<CourseId>,
) -> Result<Json<Enrolment>, AppError> {
    set_enrolment(&state, user.id, course, true).await
}

/// Leaves a course (idempotent).
#[utoipa::path(
    post,
    path = "/api/user/courses/{course_id}/leave",
    tag = "user",
    security(("bearer" = [])),
    params(Ids<CourseId>),
    responses((status = 200, body = Enrolment), BadRequest, Unauthorized, NotFound, Unavailable)
)]
async fn leave(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Ids(course): Ids<CourseId>,
) -> Result<Json<Enrolment>, AppError> {
    set_enrolment(&state, user.id, course, false).await
}

/// Joins or leaves a course (both idempotent), then invalidates what that changes: the user's
/// own entries and the course's participants. Joining a course one is enrolled in, or leaving
/// one one is not, changes nothing, and leaves the participants cached; it still invalidates
/// the user's own enrolment in the course and their recent courses, because the same request
/// made at once (a double click) may have changed them without having invalidated them yet, and
/// a read after this answer must not show them older.
async fn set_enrolment(
    state: &AppState,
    user: UserId,
    course: CourseId,
    enrolled: bool,
) -> Result<Json<Enrolment>, AppError> {
    let outcome = if enrolled {
        // A join makes its enrolment now, in the list's recent part.
        EnrolmentOutcome {
            changed: state.db.join_course(user, course).await?,
            left_earlier_part: false,
        }
    } else {
        let ended = state.db.leave_course(user, course).await?;
        EnrolmentOutcome {
            changed: ended.is_some(),
            left_earlier_part: ended.is_some_and(|made| in_earlier_part(made, now_ms())),
        }
    };
    let tags = invalidation::enrolment_set(&state.keys, user, course, outcome);
    invalidate(state, &tags).await;
    refresh(state, learner_state(state, user, course)).await;
    let recent = JoinedPart::Since(course_list_split(now_ms()));
    refresh(state, course_list_part(state, user, recent)).await;
    Ok(Json(Enrolment {
        course_id: course,
        enrolled,
    }))
}

/// A lesson as one user reads it: the shared page and the user's progress.
#[derive(Serialize, ToSchema)]
struct UserLesson<'a> {
    #[serde(flatten)]
    page: &'a PublishedLesson,
    progress: Progress,
}

/// A PUBLISHED lesson of a course the user is enrolled in, or a PUBLIC one, of a PUBLISHED
/// course, with the user's progress.
#[utoipa::path(
    get,
    path = "/api/user/lessons/{lesson_id}",
    tag = "user",
    security(("bearer" = [])),
    params(Ids<LessonId>),
    responses(
        (status = 200, body = UserLesson, headers(("X-Cache" = Outcome))),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
async fn lesson(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Ids(lesson): Ids<LessonId>,
) -> Result<Response, AppError> {
    let shared = published_lesson_page(&state, lesson).await?;
    let page = &shared.value;
    let learner = learner_state(&state, user.id, page.course_id).await?;
    if page.state != LessonState::Public && !learner.value.enrolled {
        return Err(AppError::NotFound);
    }
    let answer = UserLesson {
        page,
        progress: learner.value.progress_in(page.id),
    };
    json_value(&answer, combined(&[shared.outcome, learner.outcome]))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProgressUpdate {
    progress: Progress,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ProgressSaved {
    lesson_id: LessonId,
    progress: Progress,
}

/// Saves the user's progress in a lesson they may read, of a course they are enrolled in.
#[utoipa::path(
    put,
    path = "/api/user/lessons/{lesson_id}/progress",
    tag = "user",
    security(("bearer" = [])),
    params(Ids<LessonId>),
    request_body = ProgressUpdate,
    responses(
        (status = 200, body = ProgressSaved),
        BadRequest, Unauthorized, NotFound, RequestTimeout, PayloadTooLarge, Unavailable
    )
)]
async fn set_progress(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Ids(lesson): Ids<LessonId>,
    JsonBody(body): JsonBody<ProgressUpdate>,
) -> Result<Json<ProgressSaved>, AppError> {
    let user = user.id;
    let course = state.db.set_progress(user, lesson, body.progress).await?;
    let tags = invalidation::progress_set(&state.keys, user, course);
    invalidate(&state, &tags).await;
    refresh(&state, learner_state(&state, user, course)).await;
    Ok(Json(ProgressSaved {
        lesson_id: lesson,
        progress: body.progress,
    }))
}
