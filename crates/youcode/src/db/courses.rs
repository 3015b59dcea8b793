//! Courses, as admins manage them and as users see them.

use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, now_ms, rfc3339};
use crate::domain::{CourseId, CourseState, LessonState, Page, Progress, Search, UserId, fold};

/// A line of an admin's course list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCourseItem {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
    pub state: CourseState,
    pub created_at: String,
}

/// A course as its admin sees it, with counts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCourse {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
    pub presentation: String,
    pub state: CourseState,
    pub created_at: String,
    pub lesson_count: i64,
    pub participant_count: i64,
}

/// A line of a user's course list (the presentation is on the course's own page).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCourseItem {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
    pub creator_name: String,
    pub joined_at: String,
}

/// A published course as one user sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCourseDetail {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
    pub presentation: String,
    pub creator_name: String,
    pub enrolled: bool,
    pub lesson_count: usize,
    pub lessons: Vec<UserCourseLesson>,
}

/// A visible lesson of a course, with the user's progress.
#[derive(Debug, Clone, Serialize)]
pub struct UserCourseLesson {
    pub id: String,
    pub name: String,
    pub rank: i64,
    pub state: LessonState,
    pub progress: Progress,
}

/// A course before and after a change, and its lessons.
#[derive(Debug, Clone)]
pub struct CourseUpdate {
    pub previous: AdminCourse,
    pub updated: AdminCourse,
    pub lessons: Vec<String>,
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
    let state: String = row.try_get("state")?;
    Ok(CourseState::from_name(&state).unwrap_or(CourseState::Draft))
}

fn admin_course(row: &AnyRow) -> DbResult<AdminCourse> {
    Ok(AdminCourse {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        image: row.try_get("image")?,
        presentation: row.try_get("presentation")?,
        state: course_state(row)?,
        created_at: rfc3339(row.try_get("created_at")?),
        lesson_count: row.try_get("lesson_count")?,
        participant_count: row.try_get("participant_count")?,
    })
}

const ADMIN_COURSE: &str = "SELECT c.id, c.name, c.image, c.presentation, c.state, c.created_at,
        (SELECT COUNT(*) FROM lessons l WHERE l.course_id = c.id) AS lesson_count,
        (SELECT COUNT(*) FROM enrolments e WHERE e.course_id = c.id AND e.canceled_at IS NULL)
            AS participant_count
     FROM courses c WHERE c.id = $1 AND c.creator_id = $2";

impl Db {
    /// One page of an admin's own courses, newest first, and how many match in all.
    pub async fn admin_courses(
        &self,
        admin: UserId,
        page: Page,
        search: Option<&Search>,
    ) -> DbResult<(Vec<AdminCourseItem>, i64)> {
        let filter = if search.is_some() {
            "AND name_folded LIKE $2 ESCAPE '\\'"
        } else {
            "AND $2 = $2"
        };
        let pattern = search.map_or_else(String::new, Search::like_pattern);
        self.counted(2);
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM courses WHERE creator_id = $1 {filter}"
        ))
        .bind(admin.to_string())
        .bind(&pattern)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT id, name, image, state, created_at FROM courses
             WHERE creator_id = $1 {filter}
             ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
        ))
        .bind(admin.to_string())
        .bind(&pattern)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(AdminCourseItem {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    image: row.try_get("image")?,
                    state: course_state(row)?,
                    created_at: rfc3339(row.try_get("created_at")?),
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
        self.counted(1);
        let row = sqlx::query(ADMIN_COURSE)
            .bind(course.to_string())
            .bind(admin.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DbError::NotFound)?;
        admin_course(&row)
    }

    /// Whether `admin` owns `course`.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when not.
    pub async fn check_owner(&self, admin: UserId, course: CourseId) -> DbResult<()> {
        self.counted(1);
        sqlx::query("SELECT 1 FROM courses WHERE id = $1 AND creator_id = $2")
            .bind(course.to_string())
            .bind(admin.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|_| ())
            .ok_or(DbError::NotFound)
    }

    /// Creates a course owned by `admin`.
    pub async fn create_course(&self, admin: UserId, course: NewCourse) -> DbResult<AdminCourse> {
        let id = CourseId::new();
        let created_at = now_ms();
        self.counted(1);
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
        .execute(&self.pool)
        .await?;
        Ok(AdminCourse {
            id: id.to_string(),
            name: course.name,
            image: course.image,
            presentation: course.presentation,
            state: course.state,
            created_at: rfc3339(created_at),
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
        self.counted(4);
        let current = sqlx::query(ADMIN_COURSE)
            .bind(course.to_string())
            .bind(admin.to_string())
            .fetch_optional(&mut *tx)
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
        .execute(&mut *tx)
        .await?;
        let lessons: Vec<String> =
            sqlx::query_scalar("SELECT id FROM lessons WHERE course_id = $1")
                .bind(course.to_string())
                .fetch_all(&mut *tx)
                .await?;
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
    pub async fn delete_course(&self, admin: UserId, course: CourseId) -> DbResult<Vec<String>> {
        let mut tx = self.begin_course_write(course).await?;
        self.counted(3);
        let lessons: Vec<String> = sqlx::query_scalar(
            "SELECT l.id FROM lessons l JOIN courses c ON c.id = l.course_id
             WHERE c.id = $1 AND c.creator_id = $2",
        )
        .bind(course.to_string())
        .bind(admin.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM courses WHERE id = $1 AND creator_id = $2")
            .bind(course.to_string())
            .bind(admin.to_string())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await?;
        Ok(lessons)
    }

    /// One page of the published courses a user is enrolled in, newest enrolment first.
    pub async fn user_courses(
        &self,
        user: UserId,
        page: Page,
        search: Option<&Search>,
    ) -> DbResult<(Vec<UserCourseItem>, i64)> {
        let filter = if search.is_some() {
            "AND c.name_folded LIKE $2 ESCAPE '\\'"
        } else {
            "AND $2 = $2"
        };
        let pattern = search.map_or_else(String::new, Search::like_pattern);
        let from = format!(
            "FROM enrolments e JOIN courses c ON c.id = e.course_id
             WHERE e.user_id = $1 AND e.canceled_at IS NULL AND c.state = 'PUBLISHED' {filter}"
        );
        self.counted(2);
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {from}"))
            .bind(user.to_string())
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT c.id, c.name, c.image, e.created_at AS joined_at,
                (SELECT u.name FROM users u WHERE u.id = c.creator_id) AS creator_name
             {from} ORDER BY e.created_at DESC, c.id LIMIT $3 OFFSET $4"
        ))
        .bind(user.to_string())
        .bind(&pattern)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(UserCourseItem {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    image: row.try_get("image")?,
                    creator_name: row.try_get("creator_name")?,
                    joined_at: rfc3339(row.try_get("joined_at")?),
                })
            })
            .collect::<DbResult<_>>()?;
        Ok((items, total))
    }

    /// A published course as `user` sees it: visible lessons and the user's progress in each.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such published course.
    pub async fn user_course(&self, user: UserId, course: CourseId) -> DbResult<UserCourseDetail> {
        self.counted(2);
        let row = sqlx::query(
            "SELECT c.id, c.name, c.image, c.presentation,
                (SELECT u.name FROM users u WHERE u.id = c.creator_id) AS creator_name,
                (SELECT COUNT(*) FROM enrolments e
                  WHERE e.course_id = c.id AND e.user_id = $2 AND e.canceled_at IS NULL) AS enrolled
             FROM courses c WHERE c.id = $1 AND c.state = 'PUBLISHED'",
        )
        .bind(course.to_string())
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound)?;
        let enrolled = row.try_get::<i64, _>("enrolled")? > 0;
        let lessons = sqlx::query(
            "SELECT l.id, l.name, l.rank, l.state,
                (SELECT p.progress FROM lesson_progress p
                  WHERE p.lesson_id = l.id AND p.user_id = $2) AS progress
             FROM lessons l
             WHERE l.course_id = $1 AND l.state IN ('PUBLISHED', 'PUBLIC')
             ORDER BY l.rank, l.id",
        )
        .bind(course.to_string())
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let state: String = row.try_get("state")?;
            let progress: Option<String> = row.try_get("progress")?;
            Ok(UserCourseLesson {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                rank: row.try_get("rank")?,
                state: LessonState::from_name(&state).unwrap_or(LessonState::Hidden),
                progress: progress
                    .filter(|_| enrolled)
                    .and_then(|p| Progress::from_name(&p))
                    .unwrap_or(Progress::NotStarted),
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
        Ok(UserCourseDetail {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            image: row.try_get("image")?,
            presentation: row.try_get("presentation")?,
            creator_name: row.try_get("creator_name")?,
            enrolled,
            lesson_count: lessons.len(),
            lessons,
        })
    }
}
