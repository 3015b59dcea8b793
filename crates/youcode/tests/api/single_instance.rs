//! SQLite serves one instance: a second on the same file is refused while the first serves.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::timeout;
use youcode::Application;
use youcode::config::{CacheConfig, Config, PasswordCost};
use youcode::db::Db;

use crate::helpers::{Backend, fresh_database_url, unique};

/// How long each step may take.
const PATIENCE: Duration = Duration::from_secs(30);

fn config(database_url: &str) -> Config {
    Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
        database_url: database_url.to_owned(),
        cache: CacheConfig::memory(&unique("yc-test").replace('_', "-")),
        seed_demo: false,
        password_cost: PasswordCost::Low,
        sessions: Default::default(),
        login: Default::default(),
        limits: Default::default(),
        warming: Default::default(),
        alerts: Default::default(),
    }
}

async fn build(database_url: &str) -> anyhow::Result<Application> {
    timeout(PATIENCE, Application::build(config(database_url)))
        .await
        .expect("a build ends in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_one_sqlite_file_is_refused_until_the_first_stops() {
    let database_url = fresh_database_url(Backend::SqliteMemory).await;
    let first = build(&database_url)
        .await
        .expect("the first instance starts");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(first.run_until(async {
        let _ = stopped.await;
    }));

    let refusal = build(&database_url)
        .await
        .err()
        .expect("the second is refused");

    assert_eq!(
        refusal.to_string(),
        format!(
            "SQLite is single-instance: another youcode serves {database_url} (pid {}). Stop it, \
             or use PostgreSQL (--database-url postgres://…) to run several instances.",
            std::process::id()
        )
    );
    // Commands other than `serve` (seed, user, cache) still open the database.
    let db = Db::connect(&database_url)
        .await
        .expect("a command connects");
    db.migrate().await.expect("a command migrates");
    db.close().await;

    let _ = stop.send(());
    timeout(PATIENCE, serving)
        .await
        .expect("the first stops in time")
        .expect("the first does not panic")
        .expect("the first stops cleanly");
    build(&database_url)
        .await
        .expect("a new instance starts once the first stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_instance_dropped_before_serving_lets_the_next_one_start() {
    let database_url = fresh_database_url(Backend::SqliteMemory).await;
    let first = build(&database_url)
        .await
        .expect("the first instance starts");

    drop(first);

    build(&database_url)
        .await
        .expect("a new instance starts once the first is dropped");
}
