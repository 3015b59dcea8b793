//! A short `youcode bench` run keeps the tool working: it must see no stale read and no error.
//! It asserts correctness only, never speed.

use std::time::Duration;

use youcode::bench::measure;
use youcode::config::{BenchArgs, CacheBackend, Dataset};

use crate::helpers::{Backend, fresh_database_url, redis_url, unique};

fn short_run(database_url: String, cache: CacheBackend, redis_url: Option<String>) -> BenchArgs {
    BenchArgs {
        url: Vec::new(),
        instances: 1,
        database_url: Some(database_url),
        cache: Some(cache),
        redis_url,
        dataset: Dataset::Small,
        concurrency: 8,
        seed: 7,
        zipf: 1.0,
        write_ratio: 0.1,
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        compare: false,
        json: true,
        password: "youcode".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_on_sqlite_and_memory_sees_no_stale_read_and_no_error() {
    let dir = std::env::temp_dir().join("youcode-tests");
    let database_url = format!("sqlite://{}/{}.db", dir.display(), unique("bench"));
    let report = measure(&short_run(database_url, CacheBackend::Memory, None))
        .await
        .expect("the bench runs");
    let run = &report.runs[0];
    assert!(run.requests > 0, "the bench made no request");
    assert!(
        run.writes > 0,
        "the bench made no write, so it checked nothing"
    );
    assert_eq!((run.stale_reads, run.errors), (0, 0), "{run:?}");
    assert!(
        run.hit_ratio.unwrap() > 0.0,
        "nothing was ever served from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_on_postgres_and_redis_sees_no_stale_read_and_no_error() {
    let database_url = fresh_database_url(Backend::PostgresRedis).await;
    let report = measure(&short_run(
        database_url,
        CacheBackend::Redis,
        Some(redis_url()),
    ))
    .await
    .expect("the bench runs");
    let run = &report.runs[0];
    assert!(run.requests > 0 && run.writes > 0, "{run:?}");
    assert_eq!((run.stale_reads, run.errors), (0, 0), "{run:?}");
}

#[tokio::test]
async fn comparing_with_the_cache_off_is_refused_before_anything_runs() {
    let args = BenchArgs {
        compare: true,
        ..short_run("sqlite://unused.db".into(), CacheBackend::Off, None)
    };
    let error = measure(&args).await.expect_err("nothing to compare");
    assert!(error.to_string().contains("--compare"), "{error}");
}
