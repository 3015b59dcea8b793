//! The demo data set on an empty database: instances started together create it once.

use std::time::Duration;

use tokio::time::timeout;
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

/// Builds two instances on one fresh, empty database at once, each seeding the demo data set;
/// returns the database and what each build gave.
async fn start_two_instances_together(
    backend: Backend,
) -> (String, [anyhow::Result<Application>; 2]) {
    let database_url = fresh_database_url(backend).await;
    let config = || Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
        database_url: database_url.clone(),
        cache: CacheConfig::memory(&unique("yc-test").replace('_', "-")),
        seed_demo: true,
        password_cost: PasswordCost::Low,
        sessions: Default::default(),
        login: Default::default(),
        limits: Default::default(),
        warming: Default::default(),
        alerts: Default::default(),
    };
    let building =
        async { tokio::join!(Application::build(config()), Application::build(config())) };
    let (first, second) = timeout(Duration::from_secs(60), building)
        .await
        .expect("both builds end within a minute");
    (database_url, [first, second])
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

/// SQLite serves one instance (see `single_instance`): of two started together, one is refused
/// and the other creates the demo data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_instances_started_together_refuse_the_second_and_create_the_demo_data_once() {
    let (database_url, builds) = start_two_instances_together(Backend::SqliteMemory).await;

    let (started, refused): (Vec<_>, Vec<_>) = builds.into_iter().partition(Result::is_ok);

    assert_eq!(
        (started.len(), refused.len()),
        (1, 1),
        "one instance starts"
    );
    let refusal = refused.into_iter().next().and_then(Result::err).unwrap();
    assert!(
        refusal.to_string().starts_with("SQLite is single-instance"),
        "{refusal:#}"
    );
    assert_eq!(accounts(&database_url).await, DEMO_ACCOUNTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_started_together_create_the_demo_data_once() {
    let (database_url, [first, second]) =
        start_two_instances_together(Backend::PostgresRedis).await;

    first.expect("the first instance starts");
    second.expect("the second instance starts");
    assert_eq!(accounts(&database_url).await, DEMO_ACCOUNTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_seedings_that_both_found_the_database_empty_seed_it_once() {
    seedings_that_both_found_the_database_empty_seed_it_once(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seedings_that_both_found_the_database_empty_seed_it_once() {
    seedings_that_both_found_the_database_empty_seed_it_once(Backend::PostgresRedis).await;
}
