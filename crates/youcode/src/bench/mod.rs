//! `youcode bench`: a realistic mixed workload that measures what the cache is worth and checks,
//! while it measures, that every write is visible to the very next read.
//!
//! It targets a running server (`--url`) or starts its own on a free port, seeding the data set
//! when the database is empty. With `--compare` it runs the same workload (same seed) with the
//! cache off and then on, and measures a ceiling: `GET /api/me` with the same clients.

mod report;
mod server;
mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use report::{BenchReport, Ratios, Recorder, RouteReport, RunReport};
use server::Server;
use workload::{Account, Client, Shared, account_of, progress};

use crate::config::{BenchArgs, CacheBackend, Dataset, ServerLimits};
use crate::db::Db;
use crate::db::seed::{self, ADMIN_EMAILS, SeedPlan};

/// Runs the benchmark and prints its report.
///
/// # Errors
/// When the server cannot be started or reached, or the data set cannot be prepared.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print_table();
    }
    Ok(())
}

/// Runs the benchmark and returns its report.
///
/// # Errors
/// As [`run`].
pub async fn measure(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.write_ratio),
        "--write-ratio must be within 0 and 1"
    );
    anyhow::ensure!(args.zipf >= 0.0, "--zipf must not be negative");
    let users = args.dataset.plan().users as usize;
    if let Some(url) = &args.url {
        anyhow::ensure!(
            !args.compare,
            "--compare starts its own servers (cache off, then on): drop --url"
        );
        let base = url.trim_end_matches('/').to_owned();
        let run = run_workload(&base, args, "server", users, false).await?;
        return Ok(BenchReport::new(vec![run.0], None));
    }
    let cache = args.cache.unwrap_or(if args.redis_url.is_some() {
        CacheBackend::Redis
    } else {
        CacheBackend::Memory
    });
    anyhow::ensure!(
        !(args.compare && cache == CacheBackend::Off),
        "--compare runs with the cache off, then with --cache: choose memory or redis"
    );
    let dataset = args.dataset.name();
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://data/bench-{dataset}.db"));
    ensure_dataset(&database_url, args.dataset, &args.password).await?;
    let backends = if args.compare {
        vec![CacheBackend::Off, cache]
    } else {
        vec![cache]
    };
    let mut runs = Vec::new();
    let mut ceiling = None;
    for (i, backend) in backends.iter().enumerate() {
        let server = Server::start(&database_url, *backend, args.redis_url.clone()).await?;
        let label = format!("{backend:?}").to_lowercase();
        let last = i + 1 == backends.len();
        let result = run_workload(&server.base, args, &label, users, args.compare && last).await;
        let stopped = server.stop().await;
        let (run, ceiling_rps) = result?;
        stopped?;
        runs.push(run);
        ceiling = ceiling.or(ceiling_rps);
    }
    Ok(BenchReport::new(runs, ceiling))
}

impl Dataset {
    fn plan(self) -> SeedPlan {
        match self {
            Dataset::Small => SeedPlan::small(),
            Dataset::Reference => SeedPlan::reference(),
        }
    }

    /// As the `--dataset` flag spells it.
    fn name(self) -> &'static str {
        match self {
            Dataset::Small => "small",
            Dataset::Reference => "reference",
        }
    }
}

/// Seeds `dataset` into the database unless it already holds data.
async fn ensure_dataset(
    database_url: &str,
    dataset: Dataset,
    password: &str,
) -> anyhow::Result<()> {
    let db = Db::connect(database_url).await?;
    db.migrate().await?;
    if !db.has_users().await? {
        let mut plan = dataset.plan();
        plan.password = password.to_owned();
        eprintln!(
            "bench: seeding the {} data set into {}",
            dataset.name(),
            crate::db::redact(database_url)
        );
        let started = Instant::now();
        if seed::seed(&db, &plan, true).await?.is_some() {
            eprintln!("bench: seeded in {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    db.close().await;
    Ok(())
}

/// One measured run of the workload against `base`; with `ceiling`, also the ceiling's req/s.
async fn run_workload(
    base: &str,
    args: &BenchArgs,
    label: &str,
    users: usize,
    ceiling: bool,
) -> anyhow::Result<(RunReport, Option<f64>)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        // Drop pooled connections before the server's default idle timeout closes them, so a
        // request never goes out on a connection the server is closing.
        .pool_idle_timeout(ServerLimits::default().idle_timeout / 2)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut shared = Shared {
        base: base.to_owned(),
        http,
        zipf: args.zipf,
        write_ratio: args.write_ratio,
        lessons: Vec::new(),
        courses: Vec::new(),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        cached: AtomicU64::new(0),
        hits: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    };
    shared.load_catalogue().await?;
    let stats_admin = shared.login(ADMIN_EMAILS[0], &args.password, true).await?;
    let shared = Arc::new(shared);

    let mut accounts = Vec::with_capacity(args.concurrency);
    let mut emails = Vec::with_capacity(args.concurrency);
    for n in 0..args.concurrency {
        let (email, admin) = account_of(n, users);
        emails.push(email.clone());
        let account = match shared.login(&email, &args.password, admin).await {
            Ok(account) => account,
            Err(_) if !admin => {
                shared
                    .login(seed::USER_EMAIL, &args.password, false)
                    .await?
            }
            Err(error) => return Err(error),
        };
        accounts.push(account);
    }
    let slots = slots(&emails);
    let mut clients = Vec::with_capacity(accounts.len());
    for (n, account) in accounts.iter().enumerate() {
        let mut client = Client::new(shared.clone(), account.clone(), n, slots[n], args.seed);
        client.prepare().await?;
        clients.push(client);
    }

    let tasks: Vec<_> = clients.into_iter().map(|c| tokio::spawn(c.run())).collect();
    progress(&shared, &format!("{label} warm-up"), args.warmup).await;
    let queries_before = db_queries(&shared, &stats_admin).await;
    shared.measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    progress(&shared, label, args.duration).await;
    shared.measuring.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let queries_after = db_queries(&shared, &stats_admin).await;
    shared.stop.store(true, Ordering::SeqCst);
    let mut record = Recorder::default();
    for task in tasks {
        record.merge(task.await.context("a bench client panicked")?);
    }
    let queries = queries_before
        .zip(queries_after)
        .map(|(b, a)| a.saturating_sub(b));
    let report = record.report(label, elapsed, queries);

    let ceiling_rps = if ceiling {
        Some(measure_ceiling(&shared, &accounts, &slots, args).await?)
    } else {
        None
    };
    Ok((report, ceiling_rps))
}

/// Requests per second of `GET /api/me` with the same clients.
async fn measure_ceiling(
    shared: &Arc<Shared>,
    accounts: &[Account],
    slots: &[(usize, usize)],
    args: &BenchArgs,
) -> anyhow::Result<f64> {
    shared.stop.store(false, Ordering::SeqCst);
    let mut tasks = Vec::new();
    for (n, account) in accounts.iter().enumerate() {
        let client = Client::new(shared.clone(), account.clone(), n, slots[n], args.seed);
        tasks.push(tokio::spawn(client.run_ceiling()));
    }
    let window = (args.duration / 2).max(Duration::from_secs(1));
    progress(shared, "ceiling warm-up", Duration::from_secs(1)).await;
    shared.measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    progress(shared, "ceiling", window).await;
    shared.measuring.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed();
    shared.stop.store(true, Ordering::SeqCst);
    let mut record = Recorder::default();
    for task in tasks {
        record.merge(task.await.context("a bench client panicked")?);
    }
    Ok(record.report("ceiling", elapsed, None).rps)
}

/// For each client, its slot among the clients signed in as the same account, and their number.
fn slots(emails: &[String]) -> Vec<(usize, usize)> {
    emails
        .iter()
        .enumerate()
        .map(|(n, email)| {
            let slot = emails[..n].iter().filter(|e| *e == email).count();
            let peers = emails.iter().filter(|e| *e == email).count();
            (slot, peers)
        })
        .collect()
}

/// Statements the server has run, from its stats route.
async fn db_queries(shared: &Shared, admin: &Account) -> Option<u64> {
    let response = shared
        .http
        .get(format!("{}/api/admin/cache/stats", shared.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["dbQueries"].as_u64()
}
