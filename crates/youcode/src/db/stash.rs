//! Pooled connections kept out of the pool between single statements.
//!
//! sqlx 0.8 tests every connection its pool takes back with a round trip: dropping a
//! `PoolConnection` runs `PoolConnection::return_to_pool`, and its `Floating::return_to_pool`
//! pings the connection before it is idle again (`sqlx-core`, `src/pool/connection.rs`). That
//! would double the round trips of a one-statement read. [`Stash::run`] keeps a connection
//! whose statement completed (or failed for what it asked) for the next statement instead.
//! Any other connection (one that broke, or whose statement was abandoned half-way) goes back
//! to the pool, which tests it; so do connections past [`LIFETIME`] and, when the next
//! statement comes, those it finds idle for [`IDLE`], so the pool's own limits (lifetime, idle
//! timeout) apply to them too. (With no statement at all, stashed connections stay open until
//! the pool closes.)
//!
//! Single statements take turns (first come first served) for at most three quarters of the
//! pool's connections, stashed or in use. A transaction that finds the pool with no connection
//! to give gets a stashed one back ([`Stash::make_room_while`]), so transactions may use the
//! whole pool while statements are idle.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::Semaphore;

use super::reconnect::connection_lost;

/// How long a connection may go from statement to statement without going back to the pool.
const LIFETIME: Duration = Duration::from_secs(60);

/// How long a stashed connection may wait for a statement before going back to the pool.
const IDLE: Duration = Duration::from_secs(10);

/// How often a transaction waiting for a connection takes one back from the stash.
const RELEASE_INTERVAL: Duration = Duration::from_millis(20);

/// How long a new connection may take while the database seems unreachable (a connection was
/// lost since the last statement that succeeded). The pool would keep retrying a refused
/// connection for its whole acquire timeout; meanwhile every request needing the database
/// would wait that long for its 503.
const SUSPECT_CONNECT: Duration = Duration::from_millis(250);

/// Connections of one pool waiting for the next single statement.
pub(super) struct Stash {
    pool: AnyPool,
    idle: Mutex<Vec<Stashed>>,
    /// Turns of single statements: three quarters of the pool's connections, so that
    /// transactions find some.
    turns: Semaphore,
    /// [`LIFETIME`], shorter in tests.
    lifetime: Duration,
    /// [`IDLE`], shorter in tests.
    idle_limit: Duration,
    /// Set when a connection was lost, cleared when a statement succeeds: while set, getting
    /// a connection from the pool may take [`SUSPECT_CONNECT`] at most.
    suspect: AtomicBool,
    /// Statements and transactions waiting for their turn or a connection right now (sqlx's
    /// pool does not say how many wait for it).
    waiting: AtomicUsize,
}

/// Counts a caller in [`Stash::waiting`] until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Stashed {
    conn: PoolConnection<Any>,
    /// When it came out of the pool.
    since: Instant,
    /// When its last statement ended.
    used: Instant,
}

impl Stash {
    /// A stash for the single statements run on `pool`.
    pub(super) fn new(pool: AnyPool) -> Self {
        Self::with_limits(pool, LIFETIME, IDLE)
    }

    fn with_limits(pool: AnyPool, lifetime: Duration, idle_limit: Duration) -> Self {
        let turns = (pool.options().get_max_connections() as usize * 3 / 4).max(1);
        Self {
            pool,
            idle: Mutex::default(),
            turns: Semaphore::new(turns),
            lifetime,
            idle_limit,
            suspect: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Runs one statement, once its turn comes, on a stashed connection, or on one of the pool
    /// when none waits; then keeps that connection for the next statement if it is ready for
    /// one.
    ///
    /// # Errors
    /// The statement's, or [`sqlx::Error::PoolTimedOut`] when no turn comes within the pool's
    /// acquire timeout.
    pub(super) async fn run<T>(
        &self,
        statement: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let wait = self.pool.options().get_acquire_timeout();
        let waiting = Waiting::start(&self.waiting);
        let _turn = tokio::time::timeout(wait, self.turns.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .expect("the stash's semaphore is never closed");
        let (mut conn, since) = match self.take() {
            Some(stashed) => (stashed.conn, stashed.since),
            None => (
                self.within_reach(self.pool.acquire()).await?,
                Instant::now(),
            ),
        };
        drop(waiting);
        let result = statement(&mut conn).await;
        self.judge(&result);
        let ready = result.as_ref().err().is_none_or(answered);
        if ready && since.elapsed() < self.lifetime {
            let used = Instant::now();
            self.put(Stashed { conn, since, used });
        }
        result
    }

    /// Runs `begin` (a transaction starting on the pool) while giving stashed connections back
    /// to the pool: at once when the pool has no connection to give (none idle, no room to open
    /// one), then one at a time while `begin` waits, since a connection seen idle may have gone
    /// to another waiter, and transactions must not wait for connections that only sit here.
    pub(super) async fn make_room_while<T>(
        &self,
        begin: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let _waiting = Waiting::start(&self.waiting);
        let max_connections = self.pool.options().get_max_connections();
        if self.pool.num_idle() == 0 && self.pool.size() >= max_connections {
            drop(self.take());
        }
        let mut begin = std::pin::pin!(self.within_reach(begin));
        let started = loop {
            tokio::select! {
                started = &mut begin => break started,
                () = tokio::time::sleep(RELEASE_INTERVAL) => drop(self.take()),
            }
        };
        self.judge(&started);
        started
    }

    /// `connecting`, within [`SUSPECT_CONNECT`] while the database seems unreachable.
    async fn within_reach<T>(
        &self,
        connecting: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        if !self.suspect.load(Ordering::Relaxed) {
            return connecting.await;
        }
        tokio::time::timeout(SUSPECT_CONNECT, connecting)
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    /// Learns from a statement's (or a `BEGIN`'s) result whether the database is in reach.
    fn judge<T>(&self, result: &Result<T, sqlx::Error>) {
        match result {
            Ok(_) => self.suspect.store(false, Ordering::Relaxed),
            Err(error) if connection_lost(error) => self.suspect.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// Connections kept here, between statements.
    pub(super) fn stashed(&self) -> usize {
        self.idle().len()
    }

    /// Statements and transactions waiting for their turn or a connection right now.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Gives every waiting connection back to the pool.
    pub(super) fn clear(&self) {
        self.idle().clear();
    }

    /// The connection used last, if one waits; those idle too long go back to the pool.
    fn take(&self) -> Option<Stashed> {
        let mut idle = self.idle();
        idle.retain(|stashed| stashed.used.elapsed() < self.idle_limit);
        idle.pop()
    }

    /// Keeps a connection for the next statement, unless the pool is closing: then it goes back
    /// to the pool, which is waiting for it.
    fn put(&self, stashed: Stashed) {
        let mut idle = self.idle();
        if !self.pool.is_closed() {
            idle.push(stashed);
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Stashed>> {
        self.idle.lock().expect("the stash is never poisoned")
    }
}

/// Whether a statement failed for what it asked (a constraint), leaving the connection ready for
/// the next one. The server also reports a connection it is ending as a database error, so other
/// database errors do not count.
fn answered(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => error.kind() != sqlx::error::ErrorKind::Other,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Executor as _;
    use sqlx::any::AnyPoolOptions;

    use super::*;

    /// A pool of `max_connections` in-memory SQLite connections (each its own database).
    async fn pool(max_connections: u32) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_millis(200))
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    async fn select_one(stash: &Stash) -> Result<i64, sqlx::Error> {
        stash
            .run(async |conn| sqlx::query_scalar("SELECT 1").fetch_one(conn).await)
            .await
    }

    fn stashed(stash: &Stash) -> usize {
        stash.idle().len()
    }

    #[tokio::test]
    async fn a_connection_whose_statement_completed_waits_for_the_next_one() {
        let stash = Stash::new(pool(4).await);

        select_one(&stash).await.unwrap();
        select_one(&stash).await.unwrap();

        assert_eq!(stashed(&stash), 1);
        assert_eq!(
            stash.pool.size(),
            1,
            "the second statement reused the connection"
        );
    }

    #[tokio::test]
    async fn a_statement_waiting_for_its_turn_is_counted_until_it_gets_one() {
        let stash = std::sync::Arc::new(Stash::new(pool(1).await));
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let holder = tokio::spawn({
            let stash = stash.clone();
            async move {
                stash
                    .run(async |_| {
                        let _ = started.send(());
                        let _ = released.await;
                        Ok::<_, sqlx::Error>(())
                    })
                    .await
            }
        });
        running.await.unwrap();
        assert_eq!(stash.waiting(), 0, "the holder waits no more");

        let waiter = tokio::spawn({
            let stash = stash.clone();
            async move { select_one(&stash).await }
        });
        tokio::time::timeout(Duration::from_secs(5), async {
            while stash.waiting() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the second statement waits for the only turn");
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), 1);

        assert_eq!(stash.waiting(), 0);
    }

    #[tokio::test]
    async fn a_connection_whose_statement_broke_a_constraint_is_kept() {
        let stash = Stash::new(pool(4).await);

        let broken = stash
            .run(async |conn| {
                conn.execute(
                    "CREATE TEMP TABLE t (x INTEGER PRIMARY KEY);
                     INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)",
                )
                .await
            })
            .await;

        assert!(broken.unwrap_err().as_database_error().is_some());
        assert_eq!(stashed(&stash), 1);
    }

    #[tokio::test]
    async fn a_connection_that_failed_otherwise_goes_back_to_the_pool() {
        let stash = Stash::new(pool(4).await);

        let lost = stash
            .run(async |_| Err::<(), _>(sqlx::Error::Protocol("connection lost".into())))
            .await;

        assert!(lost.is_err());
        assert_eq!(stashed(&stash), 0);
    }

    #[tokio::test]
    async fn a_statement_abandoned_half_way_leaves_its_connection_to_the_pool() {
        let stash = Stash::new(pool(4).await);

        let abandoned = tokio::time::timeout(
            Duration::from_millis(20),
            stash.run(async |_| std::future::pending::<Result<(), sqlx::Error>>().await),
        )
        .await;

        assert!(abandoned.is_err());
        assert_eq!(stashed(&stash), 0);
    }

    #[tokio::test]
    async fn connections_past_their_lifetime_or_idle_too_long_go_back_to_the_pool() {
        let too_old = Stash::with_limits(pool(4).await, Duration::ZERO, IDLE);
        let idle_briefly = Stash::with_limits(pool(4).await, LIFETIME, Duration::from_millis(10));

        select_one(&too_old).await.unwrap();
        select_one(&idle_briefly).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;

        assert_eq!(stashed(&too_old), 0);
        assert_eq!(stashed(&idle_briefly), 1, "nothing took it yet");
        assert!(idle_briefly.take().is_none());
    }

    #[tokio::test]
    async fn statements_leave_a_quarter_of_the_pool_to_transactions() {
        let stash = Stash::new(pool(4).await);
        let hold = || stash.run(async |_| std::future::pending::<Result<(), sqlx::Error>>().await);
        let held = futures::future::join_all((0..3).map(|_| hold()));

        let (fourth, transaction) = tokio::select! {
            _ = held => unreachable!("held statements never end"),
            both = async {
                tokio::task::yield_now().await;
                tokio::join!(select_one(&stash), stash.pool.begin())
            } => both,
        };

        assert!(
            matches!(fourth, Err(sqlx::Error::PoolTimedOut)),
            "{fourth:?}"
        );
        assert!(transaction.is_ok(), "{:?}", transaction.err());
    }

    #[tokio::test]
    async fn a_transaction_gets_a_stashed_connection_when_the_pool_has_none() {
        let stash = Stash::new(pool(1).await);
        select_one(&stash).await.unwrap();

        let transaction = stash.make_room_while(stash.pool.begin()).await;

        assert!(transaction.is_ok(), "{:?}", transaction.err());
        assert_eq!(stashed(&stash), 0);
    }

    #[tokio::test]
    async fn a_closing_pool_gets_its_connections_back() {
        let stash = Stash::new(pool(4).await);
        select_one(&stash).await.unwrap();

        let closing = stash.pool.close();
        stash.clear();
        let closed = tokio::time::timeout(Duration::from_secs(5), closing).await;
        let after = select_one(&stash).await;

        assert!(closed.is_ok(), "closing waited for a stashed connection");
        assert!(matches!(after, Err(sqlx::Error::PoolClosed)), "{after:?}");
        assert_eq!(stashed(&stash), 0);
    }
}
