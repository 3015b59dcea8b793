//! A short `youcode bench` run keeps the tool working: it must see no stale read and no error.
//! It asserts correctness only, never speed.

use std::time::Duration;

use youcode::bench::{BenchReport, measure};
use youcode::config::{BenchArgs, CacheBackend, Dataset, Refresh};

use crate::helpers::{Backend, fresh_database_url, redis_url, unique};

/// Longest a short run may take, seeding and signing in included (debug builds hash slowly).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest a refusal may take: it comes before anything runs.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the bench, failing the test when it takes longer than `timeout`.
async fn measure_within(timeout: Duration, args: &BenchArgs) -> anyhow::Result<BenchReport> {
    tokio::time::timeout(timeout, measure(args))
        .await
        .unwrap_or_else(|_| panic!("the bench took longer than {timeout:?}"))
}

/// A fresh SQLite file, not created yet.
fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join("youcode-tests");
    format!("sqlite://{}/{}.db", dir.display(), unique("bench"))
}

fn short_run(database_url: String, cache: CacheBackend, redis_url: Option<String>) -> BenchArgs {
    BenchArgs {
        url: Vec::new(),
        instances: 1,
        database_url: Some(database_url),
        cache: Some(cache),
        redis_url,
        upstash: Default::default(),
        dataset: Dataset::Small,
        concurrency: 8,
        seed: 7,
        zipf: 1.0,
        write_ratio: 0.1,
        rate: None,
        ttl: Vec::new(),
        stale_while_revalidate: Refresh::default().stale_while_revalidate.into(),
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        compare: false,
        clear_cache: false,
        warm_cache: None,
        json: true,
        password: "youcode".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_on_sqlite_and_memory_sees_no_stale_read_and_no_error() {
    let args = short_run(sqlite_url(), CacheBackend::Memory, None);
    let report = measure_within(RUN_TIMEOUT, &args)
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
async fn pages_that_expire_during_a_bench_are_answered_stale_and_no_read_is_older_than_a_write() {
    let second = Duration::from_secs(1);
    let args = BenchArgs {
        ttl: vec![
            ("course_detail".into(), second),
            ("lesson_detail".into(), second),
        ],
        ..short_run(sqlite_url(), CacheBackend::Memory, None)
    };
    let report = measure_within(RUN_TIMEOUT, &args)
        .await
        .expect("the bench runs");
    let run = &report.runs[0];
    let stale = run.by_outcome.get("STALE").map_or(0, |r| r.requests);
    assert!(
        stale > 0,
        "no page was answered stale: {:?}",
        run.by_outcome
    );
    assert!(run.writes > 0, "no write was checked");
    assert_eq!((run.stale_reads, run.errors), (0, 0), "{run:?}");
}

/// `--compare --clear-cache --warm-cache`: the run with the cache off is not warmed (it would
/// answer 409), the run with the cache is, and both run clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compared_bench_warms_only_the_run_with_the_cache() {
    let args = BenchArgs {
        compare: true,
        clear_cache: true,
        warm_cache: Some(10),
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
        ..short_run(sqlite_url(), CacheBackend::Memory, None)
    };
    let report = measure_within(RUN_TIMEOUT, &args)
        .await
        .expect("the bench runs");
    assert_eq!(report.runs.len(), 2);
    for run in &report.runs {
        assert_eq!((run.stale_reads, run.errors), (0, 0), "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_bench_keeps_to_its_rate() {
    let rate = 20.0;
    let args = BenchArgs {
        rate: Some(rate),
        ..short_run(sqlite_url(), CacheBackend::Memory, None)
    };
    let report = measure_within(RUN_TIMEOUT, &args)
        .await
        .expect("the bench runs");
    let run = &report.runs[0];
    // A step is a few requests (at most four: a write, the reads that check it and refresh
    // the writer's pages); a slower machine makes fewer, never more. Unpaced, the same run
    // makes thousands.
    let most = (rate * args.duration.as_secs_f64() * 4.0) as u64 + 4 * args.concurrency as u64;
    assert!(run.requests > 0, "the paced bench made no request");
    assert!(
        run.requests <= most,
        "{} requests in {:?} at {rate} steps/s (at most {most} expected)",
        run.requests,
        args.duration
    );
    assert_eq!((run.stale_reads, run.errors), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_on_postgres_and_redis_sees_no_stale_read_and_no_error() {
    let database_url = fresh_database_url(Backend::PostgresRedis).await;
    let args = short_run(database_url, CacheBackend::Redis, Some(redis_url()));
    let report = measure_within(RUN_TIMEOUT, &args)
        .await
        .expect("the bench runs");
    let run = &report.runs[0];
    assert!(run.requests > 0 && run.writes > 0, "{run:?}");
    assert_eq!((run.stale_reads, run.errors), (0, 0), "{run:?}");
}

// Two instances on one Redis namespace and no local tier share one truth: a write checked on
// the other instance must show there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_and_redis_both_serve_and_see_no_stale_read() {
    let database_url = fresh_database_url(Backend::PostgresRedis).await;
    let args = BenchArgs {
        instances: 2,
        ..short_run(database_url, CacheBackend::Redis, Some(redis_url()))
    };

    let report = measure_within(RUN_TIMEOUT, &args)
        .await
        .expect("the bench runs");

    assert_eq!(report.instances, 2);
    let run = &report.runs[0];
    assert_eq!(run.requests_by_instance.len(), 2, "{run:?}");
    assert!(
        run.requests_by_instance.iter().all(|&served| served > 0),
        "an instance served nothing: {run:?}"
    );
    assert_eq!(run.requests_by_instance.iter().sum::<u64>(), run.requests);
    assert!(
        run.writes > 0,
        "the bench made no write, so it checked nothing"
    );
    assert_eq!((run.stale_reads, run.errors), (0, 0), "{run:?}");
}

#[tokio::test]
async fn two_instances_on_sqlite_are_refused_before_anything_runs() {
    let database_url = sqlite_url();
    let file = database_url.trim_start_matches("sqlite://").to_owned();
    let args = BenchArgs {
        instances: 2,
        ..short_run(database_url, CacheBackend::Memory, None)
    };

    let error = measure_within(REFUSAL_TIMEOUT, &args)
        .await
        .expect_err("SQLite serves one instance");

    assert!(
        error.to_string().contains("SQLite is single-instance"),
        "{error}"
    );
    assert!(error.to_string().contains("PostgreSQL"), "{error}");
    assert!(
        !std::path::Path::new(&file).exists(),
        "the database was created"
    );
}

#[tokio::test]
async fn no_instance_is_refused() {
    let args = BenchArgs {
        instances: 0,
        ..short_run(sqlite_url(), CacheBackend::Memory, None)
    };
    let error = measure_within(REFUSAL_TIMEOUT, &args)
        .await
        .expect_err("nothing to drive");
    assert!(error.to_string().contains("--instances"), "{error}");
}

#[tokio::test]
async fn comparing_with_the_cache_off_is_refused_before_anything_runs() {
    let args = BenchArgs {
        compare: true,
        ..short_run("sqlite://unused.db".into(), CacheBackend::Off, None)
    };
    let error = measure_within(REFUSAL_TIMEOUT, &args)
        .await
        .expect_err("nothing to compare");
    assert!(error.to_string().contains("--compare"), "{error}");
}
