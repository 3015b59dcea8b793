//! The pool: connecting, migrating, starting transactions, and the errors the repository returns.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

use super::reconnect;
use super::stash::Stash;

/// A database failure the HTTP layer maps to a status.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no such row")]
    NotFound,
    #[error("unique value already taken")]
    Conflict,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl DbError {
    pub(super) fn from_sqlx(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict,
            sqlx::Error::RowNotFound => DbError::NotFound,
            _ => DbError::Sql(error),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// How long a statement waits for a connection of the pool (a single statement: for its turn,
/// then for a connection), before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which SQL server the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend `url` names.
    ///
    /// # Errors
    /// When the URL is neither `sqlite:…` nor `postgres://…`.
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://…");
        }
    }
}

/// What a [`Db`]'s connections are doing at one moment ([`Db::connections`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// How many the pool may open.
    pub max: u32,
    /// Open and running a statement or a transaction.
    pub in_use: u32,
    /// Open and waiting for one.
    pub idle: u32,
    /// Statements and transactions waiting for a connection (or, for single statements, their
    /// turn at the three quarters of the pool they may use).
    pub waiting: usize,
}

/// The connection pool and the statement counter. Cloning is cheap.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    pub(super) stash: Arc<Stash>,
    pub(super) backend: Backend,
    /// Statements run since start: exposed in stats so the saving from the cache can be measured.
    pub(super) statements: StatementCount,
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` — the file and its folder are created — or
    /// `postgres://…`).
    ///
    /// # Errors
    /// When the URL is of another kind or the server cannot be reached.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("invalid database URL {url:?}"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections(backend))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No round trip to check each connection before a statement: a connection the
            // server dropped fails its next statement and leaves the pool.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to the database at {}", redact(&url)))?;
        if backend == Backend::Sqlite {
            // WAL lets readers run while a writer commits; it is a property of the file.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        Ok(Self {
            stash: Arc::new(Stash::new(pool.clone())),
            pool,
            backend,
            statements: StatementCount::default(),
        })
    }

    /// Brings the schema up to date.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        // PostgreSQL migrations run under an advisory lock; SQLite's take none, so processes
        // that migrate one file at once collide. Each migration is one transaction: the process
        // whose migration failed changed nothing, and finds it applied when it runs again.
        let mut retries = match self.backend {
            Backend::Sqlite => migrator.iter().count(),
            Backend::Postgres => 0,
        };
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(_) if retries > 0 => retries -= 1,
                Err(error) => return Err(error).context("database migration failed"),
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Statements run since start.
    pub fn queries(&self) -> u64 {
        self.statements.get()
    }

    /// What the pool's connections are doing right now. A connection kept between statements
    /// (`stash.rs`) is idle, though out of sqlx's pool.
    pub fn connections(&self) -> Connections {
        let stashed = u32::try_from(self.stash.stashed()).unwrap_or(u32::MAX);
        let open = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .saturating_add(stashed)
            .min(open);
        Connections {
            max: self.pool.options().get_max_connections(),
            in_use: open - idle,
            idle,
            waiting: self.stash.waiting(),
        }
    }

    /// The transaction [`Db::begin_write`] starts, without counting its statements.
    pub(super) async fn begin_uncounted(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        let begin = || {
            let begin = async {
                match self.backend {
                    Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
                    Backend::Postgres => self.pool.begin().await,
                }
            };
            self.stash.make_room_while(begin)
        };
        // Nothing has happened yet when a `BEGIN` meets a lost connection.
        Ok(self.reconnecting(begin).await?)
    }

    /// Runs `attempt`, and again on another connection while it fails because its connection
    /// was lost: at most once per connection the pool may hold (see `reconnect.rs`). The
    /// stash's connections go back to the pool at the first loss, to be tested there: whatever
    /// dropped one has likely dropped them all.
    pub(super) async fn reconnecting<T, F>(&self, attempt: impl Fn() -> F) -> Result<T, sqlx::Error>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut left = self.pool.options().get_max_connections();
        loop {
            match attempt().await {
                Err(error) if reconnect::connection_lost(&error) && left > 0 => {
                    left -= 1;
                    self.stash.clear();
                    tracing::debug!(%error, "a lost database connection: trying another");
                }
                result => return result,
            }
        }
    }

    /// Starts a transaction that seeds the database: one at a time (SQLite: the database write
    /// lock; PostgreSQL: a lock on the accounts table, which lets readers through), so what it
    /// finds when it starts stays true until it commits. Its statements load data rather than
    /// serve requests, and are not counted.
    pub async fn begin_seeding(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.begin_uncounted().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Round-trips a trivial statement, on a connection of the `Stash` like any statement,
    /// but not counted: a health check is no work the cache could save.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn ping(&self) -> DbResult<()> {
        self.stash
            .run(async |conn| sqlx::query("SELECT 1").execute(conn).await)
            .await
            .map(|_| ())
            .map_err(DbError::from_sqlx)
    }

    pub async fn close(&self) {
        // Closing marks the pool closed at once: statements that end from then on give their
        // connection back to the pool instead of the stash.
        let closing = self.pool.close();
        self.stash.clear();
        closing.await;
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("queries", &self.queries())
            .finish_non_exhaustive()
    }
}

/// Statements run since start, shared by a [`Db`] and its transactions.
#[derive(Debug, Clone, Default)]
pub(super) struct StatementCount(Arc<AtomicU64>);

impl StatementCount {
    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn max_connections(backend: Backend) -> u32 {
    match backend {
        Backend::Sqlite => 8,
        Backend::Postgres => 16,
    }
}

/// `sqlite://data/youcode.db` → an absolute-or-relative file URL that creates the file.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let (path, query) = sqlite_file(url)?;
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// The file path and the query of an SQLite URL (`sqlite://data/youcode.db?x=y` →
/// `data/youcode.db`, `x=y`); the file's folder is created.
///
/// # Errors
/// When the URL names an in-memory database, or the folder cannot be created.
pub(super) fn sqlite_file(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("an in-memory SQLite database is not supported: give a file path");
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    Ok((path, query))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        let dir = std::env::temp_dir().join(format!("yc-url-{}", rand::random::<u32>()));
        let url = sqlite_url(&format!("sqlite://{}/a.db", dir.display())).unwrap();
        assert!(url.ends_with("/a.db?mode=rwc"));
        assert!(dir.exists());
        assert!(sqlite_url("sqlite::memory:").is_err());
    }
}
