//! Statements that meet a connection the database dropped (a restart, a cut network) run again
//! on another connection, when that is safe.
//!
//! Pooled and stashed connections are not tested before each statement (that would double the
//! round trips of a read), so after the database was unreachable each of them fails the first
//! statement it is given. A read, or the `BEGIN` of a transaction, has changed nothing when it
//! fails that way: it runs again, on another connection, as many times as the pool holds
//! connections (each broken one is discarded on the way). A single statement that writes is not
//! run again: it may have reached the server before the connection dropped. It fails, and the
//! request answers 503.

use sqlx::any::AnyArguments;
use sqlx::{Any, Execute};

/// Whether `error` says the connection was lost (closed by the server or the network, or the
/// server ending it), rather than that the statement failed.
pub fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception); 57P01-57P03 (the server is shutting down,
        // crashed or starting).
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Whether `sql` only reads: it may run again after a lost connection.
pub fn only_reads(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|verb| verb.eq_ignore_ascii_case("SELECT"))
}

/// A statement taken apart once, to be sent again as it was.
pub struct Replayable<'q> {
    sql: &'q str,
    arguments: Option<AnyArguments<'q>>,
    persistent: bool,
}

impl<'q> Replayable<'q> {
    /// Takes `query` apart.
    ///
    /// # Errors
    /// When its arguments cannot be encoded.
    pub fn of(mut query: impl Execute<'q, Any>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sql: query.sql(),
            persistent: query.persistent(),
            arguments: query.take_arguments().map_err(sqlx::Error::Encode)?,
        })
    }

    /// The statement, to send once more.
    pub fn attempt(&self) -> Attempt<'q> {
        Attempt {
            sql: self.sql,
            arguments: self.arguments.as_ref().map(|arguments| {
                // `AnyArguments` is not `Clone`, its values are.
                let mut copy = AnyArguments::default();
                copy.values.0.clone_from(&arguments.values.0);
                copy
            }),
            persistent: self.persistent,
        }
    }
}

/// One sending of a [`Replayable`] statement.
pub struct Attempt<'q> {
    sql: &'q str,
    arguments: Option<AnyArguments<'q>>,
    persistent: bool,
}

impl<'q> Execute<'q, Any> for Attempt<'q> {
    fn sql(&self) -> &'q str {
        self.sql
    }

    fn statement(&self) -> Option<&sqlx::any::AnyStatement<'q>> {
        None
    }

    fn take_arguments(&mut self) -> Result<Option<AnyArguments<'q>>, sqlx::error::BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_count_as_reads() {
        assert!(only_reads("SELECT 1"));
        assert!(only_reads("\n   select id FROM courses"));
        assert!(!only_reads("INSERT INTO courses VALUES ($1)"));
        assert!(!only_reads("UPDATE sessions SET used_at = $1"));
        assert!(!only_reads("SEL"));
    }

    #[test]
    fn a_lost_connection_is_told_from_a_failed_statement() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(connection_lost(&sqlx::Error::Io(reset)));
        assert!(connection_lost(&sqlx::Error::WorkerCrashed));
        assert!(!connection_lost(&sqlx::Error::PoolTimedOut));
        assert!(!connection_lost(&sqlx::Error::RowNotFound));
    }

    #[tokio::test]
    async fn a_replayed_statement_sends_the_same_arguments_each_time() {
        use sqlx::{Executor as _, Row as _};
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let statement =
            Replayable::of(sqlx::query("SELECT $1 + $2").bind(40_i64).bind(2_i64)).unwrap();
        for _ in 0..2 {
            let row = pool.fetch_one(statement.attempt()).await.unwrap();
            assert_eq!(row.try_get::<i64, _>(0).unwrap(), 42);
        }
    }
}
