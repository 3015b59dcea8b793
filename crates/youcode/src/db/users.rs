//! Accounts and sessions.

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::pool::{Db, DbError, DbResult};
use super::rows::now_ms;
use crate::config::SessionLimits;
use crate::domain::{Role, UserId};

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub image: Option<String>,
    pub role: Role,
}

/// Who is making a request.
pub type Principal = User;

/// A signed-in session, as cached per token: whose it is, and the times its expiry is judged
/// by (milliseconds since the Unix epoch), so that every instance judges it alike, from the
/// cache as from the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub user: User,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Session {
    /// Whether the session is over at `now`: past its lifetime, or unused for too long.
    pub fn expired(&self, now: i64, limits: &SessionLimits) -> bool {
        now >= self.created_at.saturating_add(millis(limits.lifetime))
            || now
                >= self
                    .last_seen_at
                    .saturating_add(millis(limits.idle_timeout))
    }

    /// Whether a use at `now` should be recorded: once per tenth of the idle timeout.
    pub fn use_due(&self, now: i64, limits: &SessionLimits) -> bool {
        now >= self
            .last_seen_at
            .saturating_add(millis(limits.idle_timeout) / 10)
    }
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// An account to create; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub image: Option<String>,
    pub role: Role,
    pub password_hash: String,
}

fn user_from_row(row: &sqlx::any::AnyRow) -> DbResult<User> {
    Ok(User {
        id: super::rows::id(row, "id", UserId)?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        image: row.try_get("image")?,
        role: super::rows::named(row, "role", Role::from_name)?,
    })
}

impl Db {
    /// Creates an account.
    ///
    /// # Errors
    /// [`DbError::Conflict`] when the email is taken.
    pub async fn create_user(&self, user: NewUser) -> DbResult<User> {
        let id = UserId::new();
        sqlx::query(
            "INSERT INTO users (id, email, name, image, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.image)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(now_ms())
        .execute(self)
        .await
        .map_err(DbError::from_sqlx)?;
        Ok(User {
            id,
            email: user.email,
            name: user.name,
            image: user.image,
            role: user.role,
        })
    }

    /// The account with this email and its password hash.
    pub async fn user_with_password(&self, email: &str) -> DbResult<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT id, email, name, image, role, password_hash FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self)
        .await?;
        row.map(|row| Ok((user_from_row(&row)?, row.try_get("password_hash")?)))
            .transpose()
    }

    /// Records a session for `user`, under the hash of its token.
    pub async fn create_session(&self, token_hash: &str, user: UserId) -> DbResult<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at)
             VALUES ($1, $2, $3, $3)",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(now)
        .execute(self)
        .await?;
        Ok(())
    }

    /// The session a token hash names, with its account.
    pub async fn session(&self, token_hash: &str) -> DbResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, u.image, u.role, s.created_at, s.last_seen_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self)
        .await?;
        row.map(|row| {
            Ok(Session {
                user: user_from_row(&row)?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
            })
        })
        .transpose()
    }

    /// Records a use of a session at `now`; returns whether it moved its last use forward
    /// (concurrent requests due at once record it once).
    pub async fn record_session_use(&self, token_hash: &str, now: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2",
        )
        .bind(token_hash)
        .bind(now)
        .execute(self)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes `user`'s sessions that are over at `now`, so the table holds what can still be
    /// used (plus the expired sessions of accounts that never sign in again).
    pub async fn delete_expired_sessions(
        &self,
        user: UserId,
        now: i64,
        limits: &SessionLimits,
    ) -> DbResult<u64> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND (created_at <= $2 OR last_seen_at <= $3)",
        )
        .bind(user.to_string())
        .bind(now.saturating_sub(millis(limits.lifetime)))
        .bind(now.saturating_sub(millis(limits.idle_timeout)))
        .execute(self)
        .await?;
        Ok(done.rows_affected())
    }

    /// Ends a session; returns whether it existed. In a transaction of its own, so that in a
    /// write request it records its invalidation in the outbox (a token must not outlive its
    /// logout in any instance's cache, even if this process dies at once).
    pub async fn delete_session(&self, token_hash: &str) -> DbResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether any account exists (an empty database gets the demo data set).
    pub async fn has_users(&self) -> DbResult<bool> {
        holds_accounts(self).await
    }
}

/// Whether any account exists, as `executor` (the database, or a transaction) sees it.
pub async fn holds_accounts<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
) -> DbResult<bool> {
    let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users LIMIT 1")
        .fetch_optional(executor)
        .await?;
    Ok(any.is_some())
}
