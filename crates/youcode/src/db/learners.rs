//! What users read: shared views of published courses and lessons, and each user's own state
//! (enrolments and progress), which routes combine.
//!
//! Keeping the shared part apart from the per-user part lets every user's request hit the same
//! cached course or lesson, and a user's state in a course is one small entry: its size does not
//! grow with how many courses the user joined.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::pool::{Db, DbError, DbResult};
use super::rows::{id, parse_id, timestamp};
use crate::domain::{CourseId, LessonId, LessonState, Progress, Timestamp, UserId};

/// A published course as every user sees it, with its visible lessons.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedCourse {
    pub id: CourseId,
    pub name: String,
    pub image: Option<String>,
    pub presentation: String,
    pub creator_name: String,
    pub lessons: Vec<PublishedCourseLesson>,
}

/// A visible lesson in a published course's page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedCourseLesson {
    pub id: LessonId,
    pub name: String,
    pub rank: i64,
    pub state: LessonState,
}

/// A PUBLISHED or PUBLIC lesson of a published course, as every user sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedLesson {
    pub id: LessonId,
    pub name: String,
    pub content: String,
    pub rank: i64,
    pub state: LessonState,
    pub course_id: CourseId,
    pub course_name: String,
}

/// One user's enrolment and progress in one course.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LearnerState {
    /// Whether the user is enrolled (an active enrolment).
    pub enrolled: bool,
    /// Progress by lesson id (kept after leaving the course, shown only while enrolled). Ids
    /// order as their text does, so the cached JSON lists them as it did when they were text.
    pub progress: BTreeMap<LessonId, Progress>,
}

impl LearnerState {
    /// The user's progress in a lesson of the course: `NOT_STARTED` unless enrolled.
    pub fn progress_in(&self, lesson: LessonId) -> Progress {
        if !self.enrolled {
            return Progress::NotStarted;
        }
        self.progress
            .get(&lesson)
            .copied()
            .unwrap_or(Progress::NotStarted)
    }
}

/// A line of a user's course list (the presentation is on the course's own page).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCourseItem {
    pub id: CourseId,
    pub name: String,
    pub image: Option<String>,
    pub creator_name: String,
    pub joined_at: Timestamp,
}

impl Db {
    /// A published course and its PUBLISHED and PUBLIC lessons, by rank.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such published course.
    pub async fn published_course(&self, course: CourseId) -> DbResult<PublishedCourse> {
        // One statement: the course row repeated beside each of its visible lessons (or once,
        // with empty lesson columns, when it has none).
        let rows = sqlx::query(
            "SELECT c.id, c.name, c.image, c.presentation, u.name AS creator_name,
                    l.id AS lesson_id, l.name AS lesson_name, l.rank AS lesson_rank,
                    l.state AS lesson_state
             FROM courses c
             JOIN users u ON u.id = c.creator_id
             LEFT JOIN lessons l ON l.course_id = c.id AND l.state IN ('PUBLISHED', 'PUBLIC')
             WHERE c.id = $1 AND c.state = 'PUBLISHED'
             ORDER BY l.rank, l.id",
        )
        .bind(course.to_string())
        .fetch_all(self)
        .await?;
        let first = rows.first().ok_or(DbError::NotFound)?;
        let mut lessons = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(lesson) = row.try_get::<Option<String>, _>("lesson_id")? else {
                continue;
            };
            lessons.push(PublishedCourseLesson {
                id: parse_id(&lesson, LessonId)?,
                name: row.try_get("lesson_name")?,
                rank: row.try_get("lesson_rank")?,
                state: super::rows::named(row, "lesson_state", LessonState::from_name)?,
            });
        }
        Ok(PublishedCourse {
            id: id(first, "id", CourseId)?,
            name: first.try_get("name")?,
            image: first.try_get("image")?,
            presentation: first.try_get("presentation")?,
            creator_name: first.try_get("creator_name")?,
            lessons,
        })
    }

    /// The `limit` published courses with the most active enrolments, most joined first (ties
    /// by id): the course pages users are likeliest to open.
    pub async fn most_joined_courses(&self, limit: u32) -> DbResult<Vec<CourseId>> {
        let rows = sqlx::query(
            "SELECT c.id FROM courses c
             LEFT JOIN enrolments e ON e.course_id = c.id AND e.canceled_at IS NULL
             WHERE c.state = 'PUBLISHED'
             GROUP BY c.id
             ORDER BY COUNT(e.course_id) DESC, c.id
             LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self)
        .await?;
        rows.iter().map(|row| id(row, "id", CourseId)).collect()
    }

    /// A PUBLISHED or PUBLIC lesson of a published course.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such visible lesson.
    pub async fn published_lesson(&self, lesson: LessonId) -> DbResult<PublishedLesson> {
        let row = sqlx::query(
            "SELECT l.id, l.name, l.content, l.rank, l.state, c.id AS course_id, c.name AS course_name
             FROM lessons l JOIN courses c ON c.id = l.course_id
             WHERE l.id = $1 AND c.state = 'PUBLISHED' AND l.state IN ('PUBLISHED', 'PUBLIC')",
        )
        .bind(lesson.to_string())
        .fetch_optional(self)
        .await?
        .ok_or(DbError::NotFound)?;
        Ok(PublishedLesson {
            id: id(&row, "id", LessonId)?,
            name: row.try_get("name")?,
            content: row.try_get("content")?,
            rank: row.try_get("rank")?,
            state: super::rows::named(&row, "state", LessonState::from_name)?,
            course_id: id(&row, "course_id", CourseId)?,
            course_name: row.try_get("course_name")?,
        })
    }

    /// A user's enrolment and progress in one course.
    pub async fn learner_state(&self, user: UserId, course: CourseId) -> DbResult<LearnerState> {
        // One statement: the active enrolment, if any, and the progress rows of the course's
        // lessons, told apart by `kind`.
        let rows = sqlx::query(
            "SELECT 'E' AS kind, course_id AS id, NULL AS progress
             FROM enrolments WHERE user_id = $1 AND course_id = $2 AND canceled_at IS NULL
             UNION ALL
             SELECT 'P' AS kind, p.lesson_id AS id, p.progress
             FROM lessons l JOIN lesson_progress p ON p.lesson_id = l.id AND p.user_id = $1
             WHERE l.course_id = $2",
        )
        .bind(user.to_string())
        .bind(course.to_string())
        .fetch_all(self)
        .await?;
        let mut state = LearnerState::default();
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            if kind == "E" {
                state.enrolled = true;
            } else if let Some(name) = row.try_get::<Option<String>, _>("progress")? {
                let progress = super::rows::named_value("progress", &name, Progress::from_name)?;
                state.progress.insert(id(row, "id", LessonId)?, progress);
            }
        }
        Ok(state)
    }

    /// The published courses a user is enrolled in, of one part of their enrolments, newest
    /// enrolment first.
    pub async fn user_course_list(
        &self,
        user: UserId,
        part: JoinedPart,
    ) -> DbResult<Vec<UserCourseItem>> {
        let (statement, at) = match part {
            JoinedPart::Since(at) => (USER_COURSES_JOINED_SINCE, at),
            JoinedPart::Before(at) => (USER_COURSES_JOINED_BEFORE, at),
        };
        sqlx::query(statement)
            .bind(user.to_string())
            .bind(at)
            .fetch_all(self)
            .await?
            .iter()
            .map(|row| {
                Ok(UserCourseItem {
                    id: id(row, "id", CourseId)?,
                    name: row.try_get("name")?,
                    image: row.try_get("image")?,
                    creator_name: row.try_get("creator_name")?,
                    joined_at: timestamp(row, "joined_at")?,
                })
            })
            .collect()
    }
}

/// The published courses user `$1` is enrolled in since time `$2`, newest enrolment first. A
/// course image too long to be copied into the enrolment is read from the course.
const USER_COURSES_JOINED_SINCE: &str = "SELECT course_id AS id, course_name AS name,
        CASE WHEN course_image_long = 1
             THEN (SELECT c.image FROM courses c WHERE c.id = enrolments.course_id)
             ELSE course_image END AS image,
        created_at AS joined_at, creator_name
     FROM enrolments
     WHERE user_id = $1 AND created_at >= $2
       AND canceled_at IS NULL AND course_published = 1
     ORDER BY created_at DESC, course_id";

/// [`USER_COURSES_JOINED_SINCE`] for the enrolments made before time `$2`.
const USER_COURSES_JOINED_BEFORE: &str = "SELECT course_id AS id, course_name AS name,
        CASE WHEN course_image_long = 1
             THEN (SELECT c.image FROM courses c WHERE c.id = enrolments.course_id)
             ELSE course_image END AS image,
        created_at AS joined_at, creator_name
     FROM enrolments
     WHERE user_id = $1 AND created_at < $2
       AND canceled_at IS NULL AND course_published = 1
     ORDER BY created_at DESC, course_id";

/// Part of a user's enrolments, by when they were made (milliseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedPart {
    /// Made at that time or later.
    Since(i64),
    /// Made before that time.
    Before(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_only_while_enrolled() {
        let (read, unread) = (LessonId::new(), LessonId::new());
        let mut state = LearnerState::default();
        state.progress.insert(read, Progress::Completed);
        assert_eq!(state.progress_in(read), Progress::NotStarted);
        state.enrolled = true;
        assert_eq!(state.progress_in(read), Progress::Completed);
        assert_eq!(state.progress_in(unread), Progress::NotStarted);
    }

    #[test]
    fn progress_is_cached_as_it_was_when_lesson_ids_were_text() {
        let ids = [
            "00000000-0000-4000-8000-00000000000a",
            "00000000-0000-4000-8000-000000000009",
        ];
        let mut typed = LearnerState::default();
        let mut text = BTreeMap::new();
        for raw in ids {
            typed
                .progress
                .insert(LessonId(raw.parse().unwrap()), Progress::InProgress);
            text.insert(raw.to_owned(), Progress::InProgress);
        }

        let json = serde_json::to_string(&typed).unwrap();

        let expected = serde_json::json!({"enrolled": false, "progress": text});
        assert_eq!(json, expected.to_string());
        let back: LearnerState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.progress, typed.progress);
    }
}
