//! Pooled PostgreSQL connections kept between statements: one that broke is replaced, an
//! abandoned statement leaves nothing for the next, transactions can still have every
//! connection, and closing ends.

use std::time::Duration;

use sqlx::Connection as _;
use youcode::db::Db;

use crate::helpers::{Backend, fresh_database_url, postgres_url};

/// Connections of the PostgreSQL pool.
const POOL_SIZE: usize = 16;

async fn answer(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT 42").fetch_one(db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_ended_are_replaced() {
    let url = fresh_database_url(Backend::PostgresRedis).await;
    let db = Db::connect(&url).await.unwrap();
    // Several connections in use at once, then waiting for the next statement.
    let answers = futures::future::join_all((0..4).map(|_| answer(&db))).await;
    assert!(answers.iter().all(|a| matches!(a, Ok(42))), "{answers:?}");

    let name = url.rsplit('/').next().unwrap();
    let mut admin = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "no connection to end");

    // Each ended connection fails one statement at most; then every statement succeeds.
    let mut failures = 0;
    let mut answers = Vec::new();
    for _ in 0..40 {
        match answer(&db).await {
            Ok(value) => answers.push(value),
            Err(_) => failures += 1,
        }
    }
    assert!(
        failures <= ended.len(),
        "{failures} failures for {} connections",
        ended.len()
    );
    assert_eq!(answers.len(), 40 - failures);
    assert!(answers.iter().all(|&a| a == 42));
    let last_ten: Vec<bool> = futures::future::join_all((0..10).map(|_| answer(&db)))
        .await
        .iter()
        .map(Result::is_ok)
        .collect();
    assert_eq!(last_ten, vec![true; 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_abandoned_half_way_leaves_nothing_behind() {
    let db = Db::connect(&fresh_database_url(Backend::PostgresRedis).await)
        .await
        .unwrap();
    for _ in 0..3 {
        let slow =
            sqlx::query_scalar::<_, String>("SELECT 'late' FROM pg_sleep(0.3)").fetch_one(&db);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), slow)
                .await
                .is_err(),
            "the slow statement ended early"
        );
        assert_eq!(answer(&db).await.unwrap(), 42);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_may_use_every_connection_statements_left_idle() {
    let db = Db::connect(&fresh_database_url(Backend::PostgresRedis).await)
        .await
        .unwrap();
    // Statements at once, on as many connections as they may hold, which then wait for more.
    let slow = || sqlx::query("SELECT pg_sleep(0.05)").execute(&db);
    let done = futures::future::join_all((0..POOL_SIZE).map(|_| slow())).await;
    assert!(done.iter().all(Result::is_ok));

    // A transaction on every connection of the pool, all open at once.
    let all_open = tokio::sync::Barrier::new(POOL_SIZE);
    let transaction = async || {
        let mut tx = db.begin_write().await.expect("a transaction starts");
        all_open.wait().await;
        sqlx::query("SELECT 1").execute(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
    };
    futures::future::join_all((0..POOL_SIZE).map(|_| transaction())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_waits_for_a_statement_under_way_and_ends() {
    let db = Db::connect(&fresh_database_url(Backend::PostgresRedis).await)
        .await
        .unwrap();
    let under_way = {
        let db = db.clone();
        tokio::spawn(async move {
            sqlx::query("SELECT pg_sleep(0.2)")
                .execute(&db)
                .await
                .map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A hang, not a speed: closing takes about what is left of the statement.
    tokio::time::timeout(Duration::from_secs(30), db.close())
        .await
        .expect("closing ends once the statement under way gives its connection back");
    under_way
        .await
        .unwrap()
        .expect("the statement under way ends");
}
