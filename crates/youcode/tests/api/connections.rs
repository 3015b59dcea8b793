//! Pooled PostgreSQL connections: one that broke, or whose statement was abandoned, is never
//! used again as if nothing happened.

use std::time::Duration;

use sqlx::Connection as _;
use youcode::db::Db;

use crate::helpers::{Backend, fresh_database_url, postgres_url};

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
