//! Courses, as admins manage them and as users see them.

use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::enrolments::refresh_enrolments;
use super::lessons::refresh_listing;
use super::pool::{Db, DbError, DbResult};
use super::rows::{id, now_ms, parse_ids, timestamp};
use crate::domain::{CourseId, CourseState, LessonId, Page, Search, Timestamp, UserId, fold};

/// A line of an admin's course list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminCourseItem {
    pub id: CourseId,
    pub name: String,
    pub image: Option<String>,
    pub state: CourseState,
    pub created_at: Timestamp,
}

/// A course as its admin sees it, with counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminCourse {
    pub id: CourseId,
    pub name: String,
    pub image: Option<String>,
    pub presentation: String,
    pub state: CourseState,
    pub created_at: Timestamp,
    pub lesson_count: i64,
    pub participant_count: i64,
}

impl AdminCourse {
    /// Whether course lists would show `other` otherwise: its name, image or state differ.
    pub fn listed_differently(&self, other: &AdminCourse) -> bool {
        self.name != other.name || self.image != other.image || self.state != other.state
    }

    /// Whether lesson pages and the public lesson list would show `other` otherwise: its name
    /// or state differ.
    pub fn shown_with_lessons_differently(&self, other: &AdminCourse) -> bool {
        self.name != other.name || self.state != other.state
    }
}

/// A course before and after a change, and its lessons when what they show of it changed.
#[derive(Debug, Clone)]
pub struct CourseUpdate {
    pub previous: AdminCourse,
    pub updated: AdminCourse,
    /// Its lessons if [`AdminCourse::shown_with_lessons_differently`], else none.
    pub lessons: Vec<LessonId>,
}

/// A course to create.
#[derive(Debug, Clone)]
pub struct NewCourse {
    pub name: String,
    pub image: Option<String>,
    pub presentation: String,
    pub state: CourseState,
}

/// Fields to change; `None` leaves a field as it is (`image: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct CourseChanges {
    pub name: Option<String>,
    pub image: Option<Option<String>>,
    pub presentation: Option<String>,
    pub state: Option<CourseState>,
}

fn course_state(row: &AnyRow) -> DbResult<CourseState> {
    super::rows::named(row, "state", CourseState::from_name)
}

fn admin_course(row: &AnyRow) -> DbResult<AdminCourse> {
    Ok(AdminCourse {
        id: id(row, "id", CourseId)?,
        name: row.try_get("name")?,
        image: row.try_get("image")?,
        presentation: row.try_get("presentation")?,
        state: course_state(row)?,
        created_at: timestamp(row, "created_at")?,
        lesson_count: row.try_get("lesson_count")?,
        participant_count: row.try_get("participant_count")?,
    })
}

const ADMIN_COURSE: &str = "SELECT c.id, c.name, c.image, c.presentation, c.state, c.created_at,
        (SELECT COUNT(*) FROM lessons l WHERE l.course_id = c.id) AS lesson_count,
        (SELECT COUNT(*) FROM enrolments e WHERE e.course_id = c.id AND e.canceled_at IS NULL)
            AS participant_count
     FROM courses c WHERE c.id = $1 AND c.creator_id = $2";

/// How many courses admin `$1` has.
const ADMIN_COURSE_COUNT: &str = "SELECT COUNT(*) FROM courses WHERE creator_id = $1";

/// How many courses admin `$1` has whose folded name matches the search pattern `$2`.
const ADMIN_COURSE_COUNT_MATCHING: &str = "SELECT COUNT(*) FROM courses
     WHERE creator_id = $1 AND name_folded LIKE $2 ESCAPE '\\'";

/// A page of admin `$1`'s courses, newest first, `$2` courses from `$3` on.
const ADMIN_COURSE_PAGE: &str = "SELECT id, name, image, state, created_at FROM courses
     WHERE creator_id = $1
     ORDER BY created_at DESC, id LIMIT $2 OFFSET $3";

/// A page of admin `$1`'s courses whose folded name matches the search pattern `$2`, newest
/// first, `$3` courses from `$4` on.
const ADMIN_COURSE_PAGE_MATCHING: &str = "SELECT id, name, image, state, created_at FROM courses
     WHERE creator_id = $1 AND name_folded LIKE $2 ESCAPE '\\'
     ORDER BY created_at DESC, id LIMIT $3 OFFSET $4";

impl Db {
    /// One page of an admin's own courses, newest first, and how many match in all.
    pub async fn admin_courses(
        &self,
        admin: UserId,
        page: Page,
        search: Option<&Search>,
    ) -> DbResult<(Vec<AdminCourseItem>, i64)> {
        let pattern = search.map(Search::like_pattern);
        let (count, courses) = match &pattern {
            Some(pattern) => (
                sqlx::query_scalar(ADMIN_COURSE_COUNT_MATCHING)
                    .bind(admin.to_string())
                    .bind(pattern),
                sqlx::query(ADMIN_COURSE_PAGE_MATCHING)
                    .bind(admin.to_string())
                    .bind(pattern),
            ),
            None => (
                sqlx::query_scalar(ADMIN_COURSE_COUNT).bind(admin.to_string()),
                sqlx::query(ADMIN_COURSE_PAGE).bind(admin.to_string()),
            ),
        };
        let total: i64 = count.fetch_one(self).await?;
        let rows = courses
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(self)
            .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(AdminCourseItem {
                    id: id(row, "id", CourseId)?,
                    name: row.try_get("name")?,
                    image: row.try_get("image")?,
                    state: course_state(row)?,
                    created_at: timestamp(row, "created_at")?,
                })
            })
            .collect::<DbResult<_>>()?;
        Ok((items, total))
    }

    /// An admin's own course with its counts.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such course or another admin owns it.
    pub async fn admin_course(&self, admin: UserId, course: CourseId) -> DbResult<AdminCourse> {
        let row = sqlx::query(ADMIN_COURSE)
            .bind(course.to_string())
            .bind(admin.to_string())
            .fetch_optional(self)
            .await?
            .ok_or(DbError::NotFound)?;
        admin_course(&row)
    }

    /// Creates a course owned by `admin`.
    pub async fn create_course(&self, admin: UserId, course: NewCourse) -> DbResult<AdminCourse> {
        let id = CourseId::new();
        let created_at = now_ms();
        sqlx::query(
            "INSERT INTO courses (id, name, image, presentation, creator_id, state, created_at, name_folded)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.to_string())
        .bind(&course.name)
        .bind(&course.image)
        .bind(&course.presentation)
        .bind(admin.to_string())
        .bind(course.state.as_str())
        .bind(created_at)
        .bind(fold(&course.name))
        .execute(self)
        .await?;
        Ok(AdminCourse {
            id,
            name: course.name,
            image: course.image,
            presentation: course.presentation,
            state: course.state,
            created_at: Timestamp::from_millis(created_at),
            lesson_count: 0,
            participant_count: 0,
        })
    }

    /// Changes an admin's own course; returns it as it was and as it is now, with the ids of its
    /// lessons.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such course or another admin owns it.
    pub async fn update_course(
        &self,
        admin: UserId,
        course: CourseId,
        changes: CourseChanges,
    ) -> DbResult<CourseUpdate> {
        let mut tx = self.begin_course_write(course).await?;
        let current = sqlx::query(ADMIN_COURSE)
            .bind(course.to_string())
            .bind(admin.to_string())
            .fetch_optional(&mut tx)
            .await?
            .ok_or(DbError::NotFound)?;
        let previous = admin_course(&current)?;
        let mut updated = previous.clone();
        if let Some(name) = changes.name {
            updated.name = name;
        }
        if let Some(image) = changes.image {
            updated.image = image;
        }
        if let Some(presentation) = changes.presentation {
            updated.presentation = presentation;
        }
        if let Some(state) = changes.state {
            updated.state = state;
        }
        sqlx::query(
            "UPDATE courses SET name = $1, image = $2, presentation = $3, state = $4, name_folded = $5 WHERE id = $6",
        )
        .bind(&updated.name)
        .bind(&updated.image)
        .bind(&updated.presentation)
        .bind(updated.state.as_str())
        .bind(fold(&updated.name))
        .bind(course.to_string())
        .execute(&mut tx)
        .await?;
        let mut lessons = Vec::new();
        if previous.shown_with_lessons_differently(&updated) {
            refresh_listing(&mut tx, course).await?;
            let ids: Vec<String> =
                sqlx::query_scalar("SELECT id FROM lessons WHERE course_id = $1")
                    .bind(course.to_string())
                    .fetch_all(&mut tx)
                    .await?;
            lessons = parse_ids(&ids, LessonId)?;
        }
        if previous.listed_differently(&updated) {
            refresh_enrolments(&mut tx, course).await?;
        }
        tx.commit().await?;
        Ok(CourseUpdate {
            previous,
            updated,
            lessons,
        })
    }

    /// Deletes an admin's own course with its lessons, enrolments and progress; returns the ids
    /// of the lessons it had.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such course or another admin owns it.
    pub async fn delete_course(&self, admin: UserId, course: CourseId) -> DbResult<Vec<LessonId>> {
        let mut tx = self.begin_course_write(course).await?;
        let lessons: Vec<String> = sqlx::query_scalar(
            "SELECT l.id FROM lessons l JOIN courses c ON c.id = l.course_id
             WHERE c.id = $1 AND c.creator_id = $2",
        )
        .bind(course.to_string())
        .bind(admin.to_string())
        .fetch_all(&mut tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM courses WHERE id = $1 AND creator_id = $2")
            .bind(course.to_string())
            .bind(admin.to_string())
            .execute(&mut tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await?;
        parse_ids(&lessons, LessonId)
    }
}
