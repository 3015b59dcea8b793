//! The cache outbox: what a committed write still owes the cache, kept in the database so that
//! it outlives the writer.
//!
//! A write request runs inside [`recording`]. Each transaction it commits writes a row of
//! `cache_outbox` in the same transaction, so the row exists exactly when the write does.
//! After its invalidation returns, the request settles its rows ([`Db::settle_outbox`]): it
//! deletes them when the invalidation reached the cache, or writes its tags into them when it
//! did not. A row left behind (the writer crashed between its commit and its invalidation, or
//! could not reach the cache) is applied by the relay of any instance ([`Db::relay_outbox`])
//! once it is older than a short delay: its tags, or the whole namespace when the writer never
//! recorded them. Applying a row twice (a slow writer and a relay) only costs misses.

use std::cell::RefCell;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::Row as _;

use super::pool::{Backend, Db, DbResult};
use super::rows::now_ms;

tokio::task_local! {
    /// The outbox rows the write request running in this task has committed and not settled.
    static OWED: RefCell<Vec<i64>>;
}

/// Set only by tests: a write process aborts right after its commit, before its invalidation.
static CRASH_AFTER_COMMIT: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("YOUCODE_TEST_CRASH_AFTER_COMMIT").is_some());

const RECORD: &str = "INSERT INTO cache_outbox (created_at) VALUES ($1) RETURNING id";
const DELETE: &str = "DELETE FROM cache_outbox WHERE id = $1";
const NAME_TAGS: &str = "UPDATE cache_outbox SET tags = $1 WHERE id = $2";
/// The oldest rows left behind; on PostgreSQL, those no other relay holds.
const LEFT_BEHIND_POSTGRES: &str = "SELECT id, tags FROM cache_outbox WHERE created_at < $1 \
     ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED";
const LEFT_BEHIND_SQLITE: &str =
    "SELECT id, tags FROM cache_outbox WHERE created_at < $1 ORDER BY id LIMIT 100";

/// Runs `write` (a write request) so that each transaction it commits records what it owes
/// the cache.
pub async fn recording<F: Future>(write: F) -> F::Output {
    OWED.scope(RefCell::new(Vec::new()), write).await
}

/// The rows the write request running in this task has committed and not settled yet.
pub fn take_owed() -> Vec<i64> {
    OWED.try_with(|owed| std::mem::take(&mut *owed.borrow_mut()))
        .unwrap_or_default()
}

/// Whether this task runs a write request (transactions outside one record nothing: seeding,
/// the command line).
pub(super) fn is_recording() -> bool {
    OWED.try_with(|_| ()).is_ok()
}

/// Whether this task runs a write request that has recorded no row yet.
fn owes_nothing_yet() -> bool {
    OWED.try_with(|owed| owed.borrow().is_empty())
        .unwrap_or(false)
}

/// Writes the outbox row of the transaction on `conn`, which is about to commit.
pub(super) async fn record(conn: &mut sqlx::AnyConnection) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(RECORD)
        .bind(now_ms())
        .fetch_one(&mut *conn)
        .await?;
    row.try_get(0)
}

/// After the commit of the transaction whose row is `id`: the write request owes it.
pub(super) fn committed(id: i64) {
    if *CRASH_AFTER_COMMIT {
        std::process::abort();
    }
    let _ = OWED.try_with(|owed| owed.borrow_mut().push(id));
}

/// An outbox row the relay found.
pub struct LeftBehind {
    pub id: i64,
    /// The tags it owes, as stored; `None` when its writer never recorded them.
    pub tags: Option<Vec<String>>,
}

impl Db {
    /// Before a write statement outside a transaction, in a write request that has recorded
    /// no row yet: a row of its own, committed ahead of the statement (a crash between the
    /// two leaves a row for nothing, which costs only misses).
    pub(super) async fn record_ahead(&self) -> Result<(), sqlx::Error> {
        if !owes_nothing_yet() {
            return Ok(());
        }
        let id = self.stash.run(async |conn| record(conn).await).await?;
        let _ = OWED.try_with(|owed| owed.borrow_mut().push(id));
        Ok(())
    }

    /// Settles the rows a write owed once its invalidation returned: deleted when the cache
    /// has it (`applied`), else given `tags`, for the relays to apply. Not counted among the
    /// statements, nor are the relay's: bookkeeping no cache could save.
    ///
    /// # Errors
    /// When the database fails: the rows stay, and a relay applies them (all tags, if they
    /// were not recorded).
    pub async fn settle_outbox(
        &self,
        owed: &[i64],
        applied: bool,
        tags: &[String],
    ) -> DbResult<()> {
        let tags = serde_json::to_string(tags).expect("strings serialize");
        for &id in owed {
            let statement = if applied {
                sqlx::query(DELETE).bind(id)
            } else {
                sqlx::query(NAME_TAGS).bind(tags.clone()).bind(id)
            };
            self.stash
                .run(async |conn| statement.execute(conn).await)
                .await?;
        }
        Ok(())
    }

    /// Applies the rows left behind for longer than `delay` with `apply`, and deletes them
    /// when it says they reached the cache; otherwise they stay for the next time. On
    /// PostgreSQL the rows are locked meanwhile, so relays of several instances share them.
    /// Returns how many rows were applied.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn relay_outbox(
        &self,
        delay: Duration,
        apply: impl AsyncFnOnce(&[LeftBehind]) -> bool,
    ) -> DbResult<usize> {
        let mut tx = self.begin_uncounted().await?;
        let left_behind = match self.backend {
            Backend::Postgres => LEFT_BEHIND_POSTGRES,
            Backend::Sqlite => LEFT_BEHIND_SQLITE,
        };
        let before = now_ms() - i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        let rows: Vec<LeftBehind> = sqlx::query(left_behind)
            .bind(before)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                let tags: Option<String> = row.try_get("tags")?;
                Ok(LeftBehind {
                    id: row.try_get("id")?,
                    // Unreadable tags count as unrecorded: the whole namespace goes.
                    tags: tags.and_then(|tags| serde_json::from_str(&tags).ok()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        if rows.is_empty() || !apply(&rows).await {
            return Ok(0);
        }
        for row in &rows {
            sqlx::query(DELETE).bind(row.id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn database() -> Db {
        let dir = std::env::temp_dir().join("youcode-tests");
        let url = format!(
            "sqlite://{}/outbox-{:016x}.db",
            dir.display(),
            rand::random::<u64>()
        );
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        db
    }

    /// A write transaction; returns once its row is older than `now_ms` (times are stored to
    /// the millisecond).
    async fn write(db: &Db) {
        let tx = db.begin_write().await.unwrap();
        tx.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    async fn left_behind(db: &Db) -> Vec<Option<Vec<String>>> {
        let mut seen = Vec::new();
        db.relay_outbox(Duration::ZERO, async |rows| {
            seen = rows.iter().map(|row| row.tags.clone()).collect();
            false
        })
        .await
        .unwrap();
        seen
    }

    #[tokio::test]
    async fn only_a_write_request_records_what_it_owes_and_settling_clears_it() {
        let db = database().await;
        write(&db).await;
        assert!(left_behind(&db).await.is_empty(), "outside a write request");

        let owed = recording(async {
            write(&db).await;
            take_owed()
        })
        .await;
        assert_eq!(owed.len(), 1);
        assert_eq!(left_behind(&db).await, [None]);

        db.settle_outbox(&owed, false, &["yc:v1:~tag:course:1".into()])
            .await
            .unwrap();
        assert_eq!(
            left_behind(&db).await,
            [Some(vec!["yc:v1:~tag:course:1".to_owned()])]
        );
        db.settle_outbox(&owed, true, &[]).await.unwrap();
        assert!(left_behind(&db).await.is_empty());
    }

    #[tokio::test]
    async fn a_write_statement_outside_a_transaction_records_one_row_ahead_of_it() {
        let db = database().await;
        let delete = || sqlx::query("DELETE FROM sessions WHERE token_hash = 'none'");

        let owed = recording(async {
            sqlx::query("SELECT 1").execute(&db).await.unwrap();
            assert!(take_owed().is_empty(), "a read recorded a row");
            delete().execute(&db).await.unwrap();
            delete().execute(&db).await.unwrap();
            take_owed()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(2)).await;

        assert_eq!(owed.len(), 1, "one row per request, not per statement");
        assert_eq!(left_behind(&db).await, [None]);
        delete().execute(&db).await.unwrap();
        assert_eq!(
            left_behind(&db).await.len(),
            1,
            "outside a request nothing is recorded"
        );
    }

    #[tokio::test]
    async fn the_relay_deletes_only_what_it_applied_and_only_rows_past_the_delay() {
        let db = database().await;
        recording(write(&db)).await;

        let young = db
            .relay_outbox(Duration::from_secs(60), async |_| true)
            .await
            .unwrap();
        assert_eq!(young, 0, "a row younger than the delay was applied");
        let failed = db
            .relay_outbox(Duration::ZERO, async |_| false)
            .await
            .unwrap();
        assert_eq!(failed, 0);
        let applied = db
            .relay_outbox(Duration::ZERO, async |_| true)
            .await
            .unwrap();
        assert_eq!(applied, 1);
        assert!(left_behind(&db).await.is_empty());
    }
}
