//! Lessons: the public list, an admin's lessons, a user's lesson and progress.

use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::executor::CountedTransaction;
use super::pool::{Db, DbError, DbResult};
use super::rows::{id, now_ms, parse_id, parse_ids};
use crate::domain::{CourseId, LessonId, LessonState, Page, Progress, Search, UserId, fold};

/// A line of the public lesson list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicLesson {
    pub id: LessonId,
    pub name: String,
    pub rank: i64,
    pub course_id: CourseId,
    pub course_name: String,
}

/// A line of a course's lesson list, for its admin.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminLessonItem {
    pub id: LessonId,
    pub name: String,
    pub rank: i64,
    pub state: LessonState,
}

/// A lesson, for its admin.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminLesson {
    pub id: LessonId,
    pub course_id: CourseId,
    pub name: String,
    pub content: String,
    pub rank: i64,
    pub state: LessonState,
}

/// A lesson to create; without a rank it goes last.
#[derive(Debug, Clone)]
pub struct NewLesson {
    pub name: String,
    pub content: String,
    pub state: LessonState,
    pub rank: Option<i64>,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LessonChanges {
    pub name: Option<String>,
    pub content: Option<String>,
    pub state: Option<LessonState>,
    pub rank: Option<i64>,
}

fn lesson_state(row: &AnyRow) -> DbResult<LessonState> {
    super::rows::named(row, "state", LessonState::from_name)
}

fn admin_lesson(row: &AnyRow) -> DbResult<AdminLesson> {
    Ok(AdminLesson {
        id: id(row, "id", LessonId)?,
        course_id: id(row, "course_id", CourseId)?,
        name: row.try_get("name")?,
        content: row.try_get("content")?,
        rank: row.try_get("rank")?,
        state: lesson_state(row)?,
    })
}

/// A lesson of an admin's own course, read through `executor` (the pool or a transaction), and
/// its name as stored for search.
async fn find_admin_lesson<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    executor: E,
    admin: UserId,
    course: CourseId,
    lesson: LessonId,
) -> DbResult<(AdminLesson, String)> {
    let row = sqlx::query(
        "SELECT l.id, l.course_id, l.name, l.content, l.rank, l.state, l.name_folded
         FROM lessons l JOIN courses c ON c.id = l.course_id
         WHERE l.id = $1 AND l.course_id = $2 AND c.creator_id = $3",
    )
    .bind(lesson.to_string())
    .bind(course.to_string())
    .bind(admin.to_string())
    .fetch_optional(executor)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok((admin_lesson(&row)?, row.try_get("name_folded")?))
}

// The public list: `listed` and `course_name` are kept up to date by every write (see
// `REFRESH_LISTING`), so the list reads one table through one partial index.

/// How many lessons the public list holds.
const PUBLIC_LESSON_COUNT: &str = "SELECT COUNT(*) FROM lessons l WHERE l.listed = 1";

/// How many lessons of the public list match the search pattern `$1`.
const PUBLIC_LESSON_COUNT_MATCHING: &str = "SELECT COUNT(*) FROM lessons l
     WHERE l.listed = 1 AND l.name_folded LIKE $1 ESCAPE '\\'";

/// A page of the public list, `$1` lessons from `$2` on.
const PUBLIC_LESSON_PAGE: &str = "SELECT l.id, l.name, l.rank, l.course_id, l.course_name
     FROM lessons l WHERE l.listed = 1
     ORDER BY l.course_name, l.course_id, l.rank, l.id LIMIT $1 OFFSET $2";

/// A page of the public list's lessons that match the search pattern `$1`, `$2` lessons from
/// `$3` on.
const PUBLIC_LESSON_PAGE_MATCHING: &str = "SELECT l.id, l.name, l.rank, l.course_id, l.course_name
     FROM lessons l WHERE l.listed = 1 AND l.name_folded LIKE $1 ESCAPE '\\'
     ORDER BY l.course_name, l.course_id, l.rank, l.id LIMIT $2 OFFSET $3";

/// What a lesson write changed, for invalidation.
#[derive(Debug, Clone)]
pub struct LessonWrite {
    /// The lesson before the write (`None` for a creation).
    pub previous: Option<AdminLesson>,
    /// The lesson after the write (`None` for a deletion).
    pub lesson: Option<AdminLesson>,
    /// Lessons whose rank moved besides the one written.
    pub moved: Vec<LessonId>,
    /// The previous name as it was stored for search. Rows folded by an older migration (the
    /// database's `LOWER`) may differ from the application's fold of the same name.
    pub previous_searched_as: Option<String>,
}

/// Recomputes, for the lessons of course `$1`, whether each is in the public list and the
/// course name it is sorted by. Every write that can change either runs it before committing
/// ([`refresh_listing`]). Rows already right are left alone: rewriting them would cost writes to
/// every index and make index-only scans visit the table again.
const REFRESH_LISTING: &str = "UPDATE lessons SET
        course_name = c.name,
        listed = CASE WHEN lessons.state = 'PUBLIC' AND c.state = 'PUBLISHED' THEN 1 ELSE 0 END
     FROM courses c
     WHERE c.id = $1 AND lessons.course_id = c.id
       AND (lessons.course_name <> c.name
            OR lessons.listed <> CASE WHEN lessons.state = 'PUBLIC' AND c.state = 'PUBLISHED'
                THEN 1 ELSE 0 END)";

/// Runs [`REFRESH_LISTING`] for `course`, in the transaction that changed it or its lessons.
pub(super) async fn refresh_listing(tx: &mut CountedTransaction, course: CourseId) -> DbResult<()> {
    sqlx::query(REFRESH_LISTING)
        .bind(course.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

impl Db {
    /// How many lessons the public list holds (those matching `search`, when given).
    pub async fn public_lesson_count(&self, search: Option<&Search>) -> DbResult<i64> {
        let count = match search {
            Some(search) => {
                sqlx::query_scalar(PUBLIC_LESSON_COUNT_MATCHING).bind(search.like_pattern())
            }
            None => sqlx::query_scalar(PUBLIC_LESSON_COUNT),
        };
        Ok(count.fetch_one(self).await?)
    }

    /// One page of the public list: PUBLIC lessons of PUBLISHED courses, by course name then
    /// rank (matching `search`, when given).
    pub async fn public_lesson_page(
        &self,
        page: Page,
        search: Option<&Search>,
    ) -> DbResult<Vec<PublicLesson>> {
        let lessons = match search {
            Some(search) => sqlx::query(PUBLIC_LESSON_PAGE_MATCHING).bind(search.like_pattern()),
            None => sqlx::query(PUBLIC_LESSON_PAGE),
        };
        let rows = lessons
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(self)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(PublicLesson {
                    id: id(row, "id", LessonId)?,
                    name: row.try_get("name")?,
                    rank: row.try_get("rank")?,
                    course_id: id(row, "course_id", CourseId)?,
                    course_name: row.try_get("course_name")?,
                })
            })
            .collect()
    }

    /// All lessons of an admin's own course, by rank.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such course or another admin owns it.
    pub async fn admin_lessons(
        &self,
        admin: UserId,
        course: CourseId,
    ) -> DbResult<Vec<AdminLessonItem>> {
        // One statement: the owned course beside each of its lessons (or once, with empty lesson
        // columns, when it has none); no row at all when the admin does not own it.
        let rows = sqlx::query(
            "SELECT c.id AS course_id, l.id, l.name, l.rank, l.state
             FROM courses c LEFT JOIN lessons l ON l.course_id = c.id
             WHERE c.id = $1 AND c.creator_id = $2
             ORDER BY l.rank, l.id",
        )
        .bind(course.to_string())
        .bind(admin.to_string())
        .fetch_all(self)
        .await?;
        if rows.is_empty() {
            return Err(DbError::NotFound);
        }
        let mut lessons = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(lesson) = row.try_get::<Option<String>, _>("id")? {
                lessons.push(AdminLessonItem {
                    id: parse_id(&lesson, LessonId)?,
                    name: row.try_get("name")?,
                    rank: row.try_get("rank")?,
                    state: lesson_state(row)?,
                });
            }
        }
        Ok(lessons)
    }

    /// A lesson of an admin's own course.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such lesson in a course of this admin.
    pub async fn admin_lesson(
        &self,
        admin: UserId,
        course: CourseId,
        lesson: LessonId,
    ) -> DbResult<AdminLesson> {
        Ok(find_admin_lesson(self, admin, course, lesson).await?.0)
    }

    /// Adds a lesson to an admin's own course, at `rank` (clamped to the lessons there are) or
    /// last; lessons from that rank on move down one.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such course or another admin owns it.
    pub async fn create_lesson(
        &self,
        admin: UserId,
        course: CourseId,
        lesson: NewLesson,
    ) -> DbResult<LessonWrite> {
        let mut tx = self.begin_course_write(course).await?;
        sqlx::query("SELECT 1 FROM courses WHERE id = $1 AND creator_id = $2")
            .bind(course.to_string())
            .bind(admin.to_string())
            .fetch_optional(&mut tx)
            .await?
            .ok_or(DbError::NotFound)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lessons WHERE course_id = $1")
            .bind(course.to_string())
            .fetch_one(&mut tx)
            .await?;
        let rank = lesson.rank.map_or(count + 1, |r| r.clamp(1, count + 1));
        let moved: Vec<String> =
            sqlx::query_scalar("SELECT id FROM lessons WHERE course_id = $1 AND rank >= $2")
                .bind(course.to_string())
                .bind(rank)
                .fetch_all(&mut tx)
                .await?;
        sqlx::query("UPDATE lessons SET rank = rank + 1 WHERE course_id = $1 AND rank >= $2")
            .bind(course.to_string())
            .bind(rank)
            .execute(&mut tx)
            .await?;
        let id = LessonId::new();
        sqlx::query(
            "INSERT INTO lessons (id, course_id, name, content, rank, state, name_folded)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(course.to_string())
        .bind(&lesson.name)
        .bind(&lesson.content)
        .bind(rank)
        .bind(lesson.state.as_str())
        .bind(fold(&lesson.name))
        .execute(&mut tx)
        .await?;
        refresh_listing(&mut tx, course).await?;
        tx.commit().await?;
        Ok(LessonWrite {
            previous: None,
            lesson: Some(AdminLesson {
                id,
                course_id: course,
                name: lesson.name,
                content: lesson.content,
                rank,
                state: lesson.state,
            }),
            moved: parse_ids(&moved, LessonId)?,
            previous_searched_as: None,
        })
    }

    /// Changes a lesson of an admin's own course. A new rank (clamped to 1..=n) moves it there
    /// and shifts the lessons in between.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such lesson in a course of this admin.
    pub async fn update_lesson(
        &self,
        admin: UserId,
        course: CourseId,
        lesson: LessonId,
        changes: LessonChanges,
    ) -> DbResult<LessonWrite> {
        let mut tx = self.begin_course_write(course).await?;
        let (previous, searched_as) = find_admin_lesson(&mut tx, admin, course, lesson).await?;
        let mut updated = previous.clone();
        let mut moved = Vec::new();
        if let Some(rank) = changes.rank {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM lessons WHERE course_id = $1")
                    .bind(course.to_string())
                    .fetch_one(&mut tx)
                    .await?;
            let (old, new) = (updated.rank, rank.clamp(1, count.max(1)));
            if new != old {
                let (low, high, step) = if new < old {
                    (new, old - 1, 1)
                } else {
                    (old + 1, new, -1)
                };
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM lessons WHERE course_id = $1 AND rank >= $2 AND rank <= $3",
                )
                .bind(course.to_string())
                .bind(low)
                .bind(high)
                .fetch_all(&mut tx)
                .await?;
                moved = parse_ids(&ids, LessonId)?;
                sqlx::query(
                    "UPDATE lessons SET rank = rank + $1 WHERE course_id = $2 AND rank >= $3 AND rank <= $4",
                )
                .bind(step)
                .bind(course.to_string())
                .bind(low)
                .bind(high)
                .execute(&mut tx)
                .await?;
                updated.rank = new;
            }
        }
        if let Some(name) = changes.name {
            updated.name = name;
        }
        if let Some(content) = changes.content {
            updated.content = content;
        }
        if let Some(state) = changes.state {
            updated.state = state;
        }
        sqlx::query(
            "UPDATE lessons SET name = $1, content = $2, state = $3, rank = $4, name_folded = $5 WHERE id = $6",
        )
        .bind(&updated.name)
        .bind(&updated.content)
        .bind(updated.state.as_str())
        .bind(updated.rank)
        .bind(fold(&updated.name))
        .bind(lesson.to_string())
        .execute(&mut tx)
        .await?;
        // Whether a lesson is listed follows its state (and its course's).
        if updated.state != previous.state {
            refresh_listing(&mut tx, course).await?;
        }
        tx.commit().await?;
        Ok(LessonWrite {
            previous: Some(previous),
            lesson: Some(updated),
            moved,
            previous_searched_as: Some(searched_as),
        })
    }

    /// Deletes a lesson of an admin's own course; later lessons move up one.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such lesson in a course of this admin.
    pub async fn delete_lesson(
        &self,
        admin: UserId,
        course: CourseId,
        lesson: LessonId,
    ) -> DbResult<LessonWrite> {
        let mut tx = self.begin_course_write(course).await?;
        let (previous, _) = find_admin_lesson(&mut tx, admin, course, lesson).await?;
        let rank = previous.rank;
        sqlx::query("DELETE FROM lessons WHERE id = $1")
            .bind(lesson.to_string())
            .execute(&mut tx)
            .await?;
        let moved: Vec<String> =
            sqlx::query_scalar("SELECT id FROM lessons WHERE course_id = $1 AND rank > $2")
                .bind(course.to_string())
                .bind(rank)
                .fetch_all(&mut tx)
                .await?;
        sqlx::query("UPDATE lessons SET rank = rank - 1 WHERE course_id = $1 AND rank > $2")
            .bind(course.to_string())
            .bind(rank)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(LessonWrite {
            previous: Some(previous),
            lesson: None,
            moved: parse_ids(&moved, LessonId)?,
            previous_searched_as: None,
        })
    }

    /// Records a user's progress in a lesson they may read, in a course they are enrolled in;
    /// returns that course.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when the lesson is not visible or the user is not enrolled.
    pub async fn set_progress(
        &self,
        user: UserId,
        lesson: LessonId,
        progress: Progress,
    ) -> DbResult<CourseId> {
        // One statement: the progress is written only for a visible lesson of a published course
        // the user is enrolled in.
        let course: Option<String> = sqlx::query_scalar(
            "INSERT INTO lesson_progress (user_id, lesson_id, progress, updated_at)
             SELECT e.user_id, l.id, $3, $4
             FROM lessons l JOIN courses c ON c.id = l.course_id
             JOIN enrolments e ON e.course_id = c.id AND e.user_id = $2 AND e.canceled_at IS NULL
             WHERE l.id = $1 AND c.state = 'PUBLISHED' AND l.state IN ('PUBLISHED', 'PUBLIC')
             ON CONFLICT (user_id, lesson_id)
             DO UPDATE SET progress = excluded.progress, updated_at = excluded.updated_at
             RETURNING (SELECT l.course_id FROM lessons l WHERE l.id = lesson_progress.lesson_id)",
        )
        .bind(lesson.to_string())
        .bind(user.to_string())
        .bind(progress.as_str())
        .bind(now_ms())
        .fetch_optional(self)
        .await?;
        parse_id(&course.ok_or(DbError::NotFound)?, CourseId)
    }
}
