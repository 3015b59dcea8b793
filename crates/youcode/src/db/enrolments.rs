//! Enrolments: joining and leaving courses, and who takes part.

use serde::Serialize;
use sqlx::Row as _;

use super::executor::CountedTransaction;
use super::pool::{Backend, Db, DbError, DbResult};
use super::rows::{id, now_ms, timestamp};
use crate::domain::{CourseId, Page, Timestamp, UserId};

/// A participant as the course's admin sees them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminParticipant {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub image: Option<String>,
    pub joined_at: Timestamp,
}

/// A participant as fellow participants see them: no email.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserParticipant {
    pub id: UserId,
    pub name: String,
    pub image: Option<String>,
}

// What an enrolment copies of its course `c`: its name, its published state, and its image URL
// when that is at most 300 characters (`CASE WHEN length(c.image) <= 300 THEN c.image END`), so
// that the copies fit in a PostgreSQL index row; a longer one is read from the course
// (`course_image_long`: `CASE WHEN length(c.image) > 300 THEN 1 ELSE 0 END`). Migration 0006
// writes the same expressions.

/// Brings what the enrolments in course `$1` keep of it (for their users' course lists) up to
/// date with the course. Every write that changes the course's name, image or state runs it
/// before committing ([`refresh_enrolments`]). Rows already right are left alone: rewriting them
/// would cost writes to every index and make index-only scans visit the table again.
const REFRESH_ENROLMENTS: &str = "UPDATE enrolments SET
        course_name = c.name,
        course_image = CASE WHEN length(c.image) <= 300 THEN c.image END,
        course_image_long = CASE WHEN length(c.image) > 300 THEN 1 ELSE 0 END,
        course_published = CASE WHEN c.state = 'PUBLISHED' THEN 1 ELSE 0 END
     FROM courses c
     WHERE c.id = $1 AND enrolments.course_id = c.id
       AND (enrolments.course_name <> c.name
            OR enrolments.course_image IS DISTINCT FROM
                CASE WHEN length(c.image) <= 300 THEN c.image END
            OR enrolments.course_image_long <> CASE WHEN length(c.image) > 300 THEN 1 ELSE 0 END
            OR enrolments.course_published <> CASE WHEN c.state = 'PUBLISHED' THEN 1 ELSE 0 END)";

/// Runs [`REFRESH_ENROLMENTS`] for `course`, in the transaction that changed it.
pub(super) async fn refresh_enrolments(
    tx: &mut CountedTransaction,
    course: CourseId,
) -> DbResult<()> {
    sqlx::query(REFRESH_ENROLMENTS)
        .bind(course.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// Enrols user `$1` in course `$2` at time `$3` (again, if they had left), if the course is
/// published, copying what the enrolment keeps of it; changes nothing when the user is enrolled
/// already. For SQLite; PostgreSQL runs [`JOIN_COURSE_LOCKING`].
const JOIN_COURSE: &str = "INSERT INTO enrolments (user_id, course_id, created_at, canceled_at,
        course_name, course_image, course_image_long, creator_name, course_published)
     SELECT $1, c.id, $3, NULL, c.name,
        CASE WHEN length(c.image) <= 300 THEN c.image END,
        CASE WHEN length(c.image) > 300 THEN 1 ELSE 0 END,
        u.name, 1
     FROM courses c JOIN users u ON u.id = c.creator_id
     WHERE c.id = $2 AND c.state = 'PUBLISHED'
     ON CONFLICT (user_id, course_id) DO UPDATE
     SET created_at = excluded.created_at,
         canceled_at = NULL,
         course_name = excluded.course_name,
         course_image = excluded.course_image,
         course_image_long = excluded.course_image_long,
         creator_name = excluded.creator_name,
         course_published = 1
     WHERE enrolments.canceled_at IS NOT NULL";

/// [`JOIN_COURSE`] with the course row share-locked (PostgreSQL).
const JOIN_COURSE_LOCKING: &str = "INSERT INTO enrolments (user_id, course_id, created_at,
        canceled_at, course_name, course_image, course_image_long, creator_name, course_published)
     SELECT $1, c.id, $3, NULL, c.name,
        CASE WHEN length(c.image) <= 300 THEN c.image END,
        CASE WHEN length(c.image) > 300 THEN 1 ELSE 0 END,
        u.name, 1
     FROM courses c JOIN users u ON u.id = c.creator_id
     WHERE c.id = $2 AND c.state = 'PUBLISHED'
     FOR SHARE OF c
     ON CONFLICT (user_id, course_id) DO UPDATE
     SET created_at = excluded.created_at,
         canceled_at = NULL,
         course_name = excluded.course_name,
         course_image = excluded.course_image,
         course_image_long = excluded.course_image_long,
         creator_name = excluded.creator_name,
         course_published = 1
     WHERE enrolments.canceled_at IS NOT NULL";

/// Whether course `$1` exists.
const COURSE_EXISTS: &str = "SELECT id FROM courses WHERE id = $1";

/// Whether course `$1` exists and is published.
const PUBLISHED_COURSE_EXISTS: &str =
    "SELECT id FROM courses WHERE id = $1 AND state = 'PUBLISHED'";

/// One page (`$2` rows from `$3` on, by join date) of the participants of course `$1`, if admin
/// `$4` owns it, and how many there are: the count beside each row of the page (or once, with
/// empty columns, when the page is empty), and no row at all when there is no such course.
const PARTICIPANTS_TO_OWNER: &str = "SELECT (SELECT COUNT(*) FROM enrolments
             WHERE course_id = $1 AND canceled_at IS NULL) AS total,
        p.id, p.name, p.email, p.image, p.created_at
     FROM courses c
     LEFT JOIN (SELECT u.id, u.name, u.email, u.image, e.created_at
                FROM enrolments e JOIN users u ON u.id = e.user_id
                WHERE e.course_id = $1 AND e.canceled_at IS NULL
                ORDER BY e.created_at, u.id LIMIT $2 OFFSET $3) p ON 1 = 1
     WHERE c.id = $1 AND c.creator_id = $4
     ORDER BY p.created_at, p.id";

/// [`PARTICIPANTS_TO_OWNER`] for a published course, whoever owns it.
const PARTICIPANTS_IF_PUBLISHED: &str = "SELECT (SELECT COUNT(*) FROM enrolments
             WHERE course_id = $1 AND canceled_at IS NULL) AS total,
        p.id, p.name, p.email, p.image, p.created_at
     FROM courses c
     LEFT JOIN (SELECT u.id, u.name, u.email, u.image, e.created_at
                FROM enrolments e JOIN users u ON u.id = e.user_id
                WHERE e.course_id = $1 AND e.canceled_at IS NULL
                ORDER BY e.created_at, u.id LIMIT $2 OFFSET $3) p ON 1 = 1
     WHERE c.id = $1 AND c.state = 'PUBLISHED'
     ORDER BY p.created_at, p.id";

/// Whose course a participants page may show.
#[derive(Debug, Clone, Copy)]
enum ParticipantsShown {
    /// A course the admin owns, whatever its state.
    ToOwner(UserId),
    /// Any published course.
    IfPublished,
}

impl Db {
    /// Enrols a user in a published course (again, if they had left); returns whether that
    /// changed anything (`false` when the user was enrolled already).
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such published course.
    pub async fn join_course(&self, user: UserId, course: CourseId) -> DbResult<bool> {
        // One statement: the enrolment is written only if the course exists and is published.
        // It copies the course's listed fields, so it must not interleave with a write of the
        // course, which refreshes the copies it can see (`REFRESH_ENROLMENTS`): on PostgreSQL
        // the course row is share-locked (course writers hold it for update); on SQLite the
        // statement runs under the database write lock.
        let statement = match self.backend {
            Backend::Postgres => JOIN_COURSE_LOCKING,
            Backend::Sqlite => JOIN_COURSE,
        };
        let done = sqlx::query(statement)
            .bind(user.to_string())
            .bind(course.to_string())
            .bind(now_ms())
            .execute(self)
            .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        // Enrolled already (an active enrolment's copies are kept up to date), unless there is
        // no such published course.
        self.require_course(course, true).await?;
        Ok(false)
    }

    /// `Ok` when course `course` exists (and is published, with `published`), else
    /// [`DbError::NotFound`].
    async fn require_course(&self, course: CourseId, published: bool) -> DbResult<()> {
        let statement = if published {
            PUBLISHED_COURSE_EXISTS
        } else {
            COURSE_EXISTS
        };
        sqlx::query(statement)
            .bind(course.to_string())
            .fetch_optional(self)
            .await?
            .map(|_| ())
            .ok_or(DbError::NotFound)
    }

    /// Ends a user's enrolment, if any; returns when the enrolment it ended was made (`None`
    /// when the user was not enrolled).
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such course.
    pub async fn leave_course(&self, user: UserId, course: CourseId) -> DbResult<Option<i64>> {
        let ended: Option<i64> = sqlx::query_scalar(
            "UPDATE enrolments SET canceled_at = $3
             WHERE user_id = $1 AND course_id = $2 AND canceled_at IS NULL
             RETURNING created_at",
        )
        .bind(user.to_string())
        .bind(course.to_string())
        .bind(now_ms())
        .fetch_optional(self)
        .await?;
        if ended.is_none() {
            // Not enrolled: fine, unless there is no such course at all.
            self.require_course(course, false).await?;
        }
        Ok(ended)
    }

    /// One page of a course's participants and how many there are, if the course is `shown`,
    /// in one statement: the count beside each row of the page (or once, with empty columns,
    /// when the page is empty), and no row at all when there is no such course.
    async fn participant_rows(
        &self,
        course: CourseId,
        page: Page,
        shown: ParticipantsShown,
    ) -> DbResult<(Vec<sqlx::any::AnyRow>, i64)> {
        let statement = match shown {
            ParticipantsShown::ToOwner(_) => PARTICIPANTS_TO_OWNER,
            ParticipantsShown::IfPublished => PARTICIPANTS_IF_PUBLISHED,
        };
        let mut query = sqlx::query(statement)
            .bind(course.to_string())
            .bind(i64::from(page.limit))
            .bind(page.offset());
        if let ParticipantsShown::ToOwner(admin) = shown {
            query = query.bind(admin.to_string());
        }
        let rows = query.fetch_all(self).await?;
        let total: i64 = rows.first().ok_or(DbError::NotFound)?.try_get("total")?;
        let mut participants = Vec::with_capacity(rows.len());
        for row in rows {
            if row.try_get::<Option<String>, _>("id")?.is_some() {
                participants.push(row);
            }
        }
        Ok((participants, total))
    }

    /// One page of the participants of an admin's own course, by join date.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such course or another admin owns it.
    pub async fn admin_participants(
        &self,
        admin: UserId,
        course: CourseId,
        page: Page,
    ) -> DbResult<(Vec<AdminParticipant>, i64)> {
        let (rows, total) = self
            .participant_rows(course, page, ParticipantsShown::ToOwner(admin))
            .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(AdminParticipant {
                    id: id(row, "id", UserId)?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    image: row.try_get("image")?,
                    joined_at: timestamp(row, "created_at")?,
                })
            })
            .collect::<DbResult<_>>()?;
        Ok((items, total))
    }

    /// One page of the participants of a published course, without emails.
    ///
    /// # Errors
    /// [`DbError::NotFound`] when there is no such published course.
    pub async fn user_participants(
        &self,
        course: CourseId,
        page: Page,
    ) -> DbResult<(Vec<UserParticipant>, i64)> {
        let (rows, total) = self
            .participant_rows(course, page, ParticipantsShown::IfPublished)
            .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(UserParticipant {
                    id: id(row, "id", UserId)?,
                    name: row.try_get("name")?,
                    image: row.try_get("image")?,
                })
            })
            .collect::<DbResult<_>>()?;
        Ok((items, total))
    }
}
