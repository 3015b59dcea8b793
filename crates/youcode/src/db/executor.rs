//! Where the repository's statements run, and where they are counted.
//!
//! A statement runs either on the database itself (`.fetch_all(self)` on a [`Db`], on a
//! connection of the [`Stash`](super::stash::Stash)) or in a [`CountedTransaction`]. Both
//! executors count each statement as they send it, so the count the stats show (`dbQueries`)
//! is the statements actually run, whichever path they took.

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{TryFutureExt as _, TryStreamExt as _};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::{Any, AnyConnection, Describe, Either, Execute};

use super::outbox;
use super::pool::{Backend, Db, DbResult, StatementCount};
use super::reconnect::{Replayable, only_reads};
use crate::domain::CourseId;

/// A transaction whose statements are counted like those run on the [`Db`] it came from.
///
/// It rolls back when dropped uncommitted.
pub struct CountedTransaction {
    tx: sqlx::Transaction<'static, Any>,
    statements: StatementCount,
}

impl CountedTransaction {
    pub(super) fn new(tx: sqlx::Transaction<'static, Any>, statements: StatementCount) -> Self {
        Self { tx, statements }
    }

    /// Commits the transaction; in a write request, with the outbox row that says it owes
    /// the cache an invalidation (see `outbox.rs`; the row is bookkeeping, not counted).
    ///
    /// # Errors
    /// When the commit fails: nothing the transaction did remains.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let owed = if outbox::is_recording() {
            Some(outbox::record(&mut self.tx).await?)
        } else {
            None
        };
        self.tx.commit().await?;
        if let Some(id) = owed {
            outbox::committed(id);
        }
        Ok(())
    }

    /// The transaction's connection, for a statement just counted.
    fn counted(&mut self) -> &mut AnyConnection {
        self.statements.add_one();
        &mut self.tx
    }
}

impl std::fmt::Debug for CountedTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountedTransaction").finish_non_exhaustive()
    }
}

impl Db {
    /// Starts a transaction that will write; its statements are counted.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`, waiting up to the busy
    /// timeout): a deferred transaction that reads and then writes fails outright when another
    /// writer committed in between.
    pub async fn begin_write(&self) -> DbResult<CountedTransaction> {
        let tx = self.begin_uncounted().await?;
        Ok(CountedTransaction::new(tx, self.statements.clone()))
    }

    /// Starts a transaction that will change `course` or its lessons. Writers of one course go
    /// one at a time (SQLite: the database write lock; PostgreSQL: a lock on the course row), so
    /// read-modify-write steps such as re-ranking lessons never interleave.
    pub async fn begin_course_write(&self, course: CourseId) -> DbResult<CountedTransaction> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM courses WHERE id = $1 FOR UPDATE")
                .bind(course.to_string())
                .fetch_optional(&mut tx)
                .await?;
        }
        Ok(tx)
    }
}

impl<'c> sqlx::Executor<'c> for &'c mut CountedTransaction {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counted().fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counted().fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.tx).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.tx).describe(sql)
    }
}

/// Statements outside a transaction run on the database itself (`.fetch_all(self)`), on a
/// connection of the `Stash`. Their results are read whole (even for `fetch_optional`), so
/// everything the server sends for a statement, an error included, reaches that statement.
impl<'c> sqlx::Executor<'c> for &'c Db {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.statements.add_one();
        let steps = async move {
            if !only_reads(query.sql()) {
                self.record_ahead().await?;
                return self
                    .stash
                    .run(async |conn| conn.fetch_many(query).try_collect::<Vec<_>>().await)
                    .await;
            }
            let statement = Replayable::of(query)?;
            self.reconnecting(|| {
                self.stash.run(async |conn| {
                    conn.fetch_many(statement.attempt())
                        .try_collect::<Vec<_>>()
                        .await
                })
            })
            .await
        };
        Box::pin(
            steps
                .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
                .try_flatten_stream(),
        )
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        // Counted by `fetch_many`.
        let first_row = async move {
            let mut steps = self.fetch_many(query);
            let mut row = None;
            while let Some(step) = steps.try_next().await? {
                if let Either::Right(found) = step {
                    row = row.or(Some(found));
                }
            }
            Ok(row)
        };
        Box::pin(first_row)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            self.stash
                .run(async |conn| conn.prepare_with(sql, parameters).await)
                .await
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move { self.stash.run(async |conn| conn.describe(sql).await).await })
    }
}
