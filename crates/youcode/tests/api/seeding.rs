//! The demo data set on an empty database: instances started together create it once.

use youcode::Application;
use youcode::config::{CacheConfig, Config, PasswordCost};
use youcode::db::Db;
use youcode::db::seed::seed_demo;

use crate::helpers::{Backend, fresh_database_url, unique};

/// Accounts of the demo data set: two admins, `user@…` and fifty numbered users.
const DEMO_ACCOUNTS: i64 = 53;

async fn accounts(database_url: &str) -> i64 {
    let db = Db::connect(database_url).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn instances_started_together_create_the_demo_data_once(backend: Backend) {
    let database_url = fresh_database_url(backend).await;
    let config = || Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        cache: CacheConfig::memory(&unique("yc-test").replace('_', "-")),
        seed_demo: true,
        password_cost: PasswordCost::Low,
        sessions: Default::default(),
        login: Default::default(),
        limits: Default::default(),
    };
    let (first, second) = tokio::join!(Application::build(config()), Application::build(config()));
    first.expect("the first instance starts");
    second.expect("the second instance starts");
    assert_eq!(accounts(&database_url).await, DEMO_ACCOUNTS);
}

/// The worst interleaving: both instances found the database empty before either seeded it.
async fn seedings_that_both_found_the_database_empty_seed_it_once(backend: Backend) {
    let database_url = fresh_database_url(backend).await;
    let db = Db::connect(&database_url).await.unwrap();
    db.migrate().await.unwrap();
    let (first, second) = tokio::join!(seed_demo(&db), seed_demo(&db));
    first.expect("the first seeding succeeds");
    second.expect("the second seeding succeeds");
    assert_eq!(accounts(&database_url).await, DEMO_ACCOUNTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_instances_started_together_create_the_demo_data_once() {
    instances_started_together_create_the_demo_data_once(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_started_together_create_the_demo_data_once() {
    instances_started_together_create_the_demo_data_once(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_seedings_that_both_found_the_database_empty_seed_it_once() {
    seedings_that_both_found_the_database_empty_seed_it_once(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seedings_that_both_found_the_database_empty_seed_it_once() {
    seedings_that_both_found_the_database_empty_seed_it_once(Backend::PostgresRedis).await;
}
