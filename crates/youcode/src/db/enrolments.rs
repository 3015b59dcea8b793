//! Enrolments: joining and leaving courses, and who takes part.

use serde::Serialize;
use sqlx::Row as _;

use super::{Backend, Db, DbError, DbResult, now_ms, rfc3339};
use crate::domain::{CourseId, Page, UserId};

/// A participant as the course's admin sees them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminParticipant {
    pub id: String,
    pub name: String,
    pub email: String,
    pub image: Option<String>,
    pub joined_at: String,
}

/// A participant as fellow participants see them: no email.
#[derive(Debug, Clone, Serialize)]
pub struct UserParticipant {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
}

/// What an enrolment copies of its course's (`c`) image: the URL when it is at most 300
/// characters, so that the copies fit in a PostgreSQL index row (see migration 0006, which
/// writes the same expressions); a longer one is read from the course.
macro_rules! copied_image {
    () => {
        "CASE WHEN length(c.image) <= 300 THEN c.image END"
    };
}
/// 1 when the course's (`c`) image is too long to copy.
macro_rules! image_too_long {
    () => {
        "CASE WHEN length(c.image) > 300 THEN 1 ELSE 0 END"
    };
}

/// Brings what the enrolments in course `$1` keep of it (for their users' course lists) up to
/// date with the course. Every write that changes the course's name, image or state runs it
/// before committing.
pub(super) const REFRESH_ENROLMENTS: &str = concat!(
    "UPDATE enrolments SET
        course_name = c.name,
        course_image = ",
    copied_image!(),
    ",
        course_image_long = ",
    image_too_long!(),
    ",
        course_published = CASE WHEN c.state = 'PUBLISHED' THEN 1 ELSE 0 END
     FROM courses c
     WHERE c.id = $1 AND enrolments.course_id = c.id
       AND (enrolments.course_name <> c.name
            OR enrolments.course_image IS DISTINCT FROM ",
    copied_image!(),
    "
            OR enrolments.course_image_long <> ",
    image_too_long!(),
    "
            OR enrolments.course_published <> CASE WHEN c.state = 'PUBLISHED' THEN 1 ELSE 0 END)"
);

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
        let lock = match self.backend {
            Backend::Postgres => "FOR SHARE OF c",
            Backend::Sqlite => "",
        };
        let (image, too_long) = (copied_image!(), image_too_long!());
        let done = sqlx::query(&format!(
            "INSERT INTO enrolments (user_id, course_id, created_at, canceled_at, course_name,
                                     course_image, course_image_long, creator_name, course_published)
             SELECT $1, c.id, $3, NULL, c.name, {image}, {too_long}, u.name, 1
             FROM courses c JOIN users u ON u.id = c.creator_id
             WHERE c.id = $2 AND c.state = 'PUBLISHED'
             {lock}
             ON CONFLICT (user_id, course_id) DO UPDATE
             SET created_at = excluded.created_at,
                 canceled_at = NULL,
                 course_name = excluded.course_name,
                 course_image = excluded.course_image,
                 course_image_long = excluded.course_image_long,
                 creator_name = excluded.creator_name,
                 course_published = 1
             WHERE enrolments.canceled_at IS NOT NULL"
        ))
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
        let published = if published {
            " AND state = 'PUBLISHED'"
        } else {
            ""
        };
        sqlx::query(&format!("SELECT id FROM courses WHERE id = $1{published}"))
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
        let (course_filter, filter_value) = match shown {
            ParticipantsShown::ToOwner(admin) => ("c.creator_id = $4", admin.to_string()),
            ParticipantsShown::IfPublished => ("c.state = $4", "PUBLISHED".to_owned()),
        };
        let rows = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM enrolments
                     WHERE course_id = $1 AND canceled_at IS NULL) AS total,
                    p.id, p.name, p.email, p.image, p.created_at
             FROM courses c
             LEFT JOIN (SELECT u.id, u.name, u.email, u.image, e.created_at
                        FROM enrolments e JOIN users u ON u.id = e.user_id
                        WHERE e.course_id = $1 AND e.canceled_at IS NULL
                        ORDER BY e.created_at, u.id LIMIT $2 OFFSET $3) p ON 1 = 1
             WHERE c.id = $1 AND {course_filter}
             ORDER BY p.created_at, p.id"
        ))
        .bind(course.to_string())
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .bind(filter_value)
        .fetch_all(self)
        .await?;
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
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    image: row.try_get("image")?,
                    joined_at: rfc3339(row.try_get("created_at")?),
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
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    image: row.try_get("image")?,
                })
            })
            .collect::<DbResult<_>>()?;
        Ok((items, total))
    }
}
