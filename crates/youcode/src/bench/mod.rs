//! `youcode bench`: a realistic mixed workload that measures what the cache is worth and checks,
//! while it measures, that every write is visible to the very next read.
//!
//! It targets running instances (`--url`, repeatable) or starts its own (`--instances`, on one
//! database and one cache) on free ports, seeding the data set when the database is empty.
//! Clients are spread over the instances, and the read that checks a write goes to another
//! instance than the one that took the write. With `--compare` it runs the same workload (same
//! seed) with the cache off and then on, and measures a ceiling: `GET /api/me` with the same
//! clients.

mod instances;
mod report;
mod server;
mod workload;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;

use instances::Instances;
pub use report::{BenchReport, Ratios, Recorder, RouteReport, RunReport, ServerFigures};
use server::Servers;
use workload::{Account, Client, Shared, account_of, progress};

use crate::config::{BenchArgs, CacheBackend, Config, Dataset, ServerLimits};
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
/// As [`run`]; and before anything runs, when the arguments make no workload (see
/// [`check_workload`]), or ask for several instances on SQLite.
pub async fn measure(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    check_workload(args)?;
    if args.url.is_empty() {
        measure_own_servers(args).await
    } else {
        measure_running(args).await
    }
}

/// Refuses arguments that make no workload, or one that leaves an instance without clients.
fn check_workload(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.instances >= 1, "--instances must be at least 1");
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.write_ratio),
        "--write-ratio must be within 0 and 1"
    );
    anyhow::ensure!(args.zipf >= 0.0, "--zipf must not be negative");
    let instances = args.url.len().max(args.instances);
    anyhow::ensure!(
        args.concurrency >= instances,
        "--concurrency {} leaves some of the {instances} instances without a client",
        args.concurrency
    );
    Ok(())
}

/// Drives the running instances at `--url`.
async fn measure_running(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        !args.compare,
        "--compare starts its own servers (cache off, then on): drop --url"
    );
    anyhow::ensure!(
        args.instances == 1,
        "--instances starts servers: to drive running instances, repeat --url, once for each"
    );
    let instances = Instances::new(args.url.iter().cloned());
    let plan = RunPlan {
        label: "server",
        instances: &instances,
        ceiling: false,
        cache_off: false,
    };
    let (run, _) = run_workload(args, &plan).await?;
    Ok(BenchReport::new(instances.count(), vec![run], None))
}

/// Starts `--instances` servers for each run (the cache off, then on, with `--compare`), on
/// the database of `--database-url`, seeded first when empty, and drives them.
async fn measure_own_servers(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let cache = CacheBackend::chosen(args.cache, args.redis_url.as_deref(), &args.upstash);
    anyhow::ensure!(
        !(args.compare && cache == CacheBackend::Off),
        "--compare runs with the cache off, then with --cache: choose memory, redis or tiered"
    );
    let database_url = database_url(args)?;
    ensure_dataset(&database_url, args.dataset, &args.password).await?;
    let backends = if args.compare {
        vec![CacheBackend::Off, cache]
    } else {
        vec![cache]
    };
    let mut runs = Vec::new();
    let mut ceiling = None;
    for (i, backend) in backends.iter().enumerate() {
        let config = server::config(&database_url, *backend, args);
        let last = i + 1 == backends.len();
        let (run, ceiling_rps) = run_on_own_servers(args, &config, args.compare && last).await?;
        runs.push(run);
        ceiling = ceiling.or(ceiling_rps);
    }
    Ok(BenchReport::new(args.instances, runs, ceiling))
}

/// The database of the servers bench starts.
///
/// # Errors
/// When it is SQLite and more than one instance is asked for.
fn database_url(args: &BenchArgs) -> anyhow::Result<String> {
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://data/bench-{}.db", args.dataset.name()));
    anyhow::ensure!(
        args.instances == 1 || !url.starts_with("sqlite:"),
        "--instances {}: SQLite is single-instance; YouCode's multi-instance mode needs \
         PostgreSQL (--database-url postgres://…)",
        args.instances
    );
    Ok(url)
}

/// One run on `--instances` servers started with `config`, stopped after it; with `ceiling`,
/// also the ceiling's req/s.
async fn run_on_own_servers(
    args: &BenchArgs,
    config: &Config,
    ceiling: bool,
) -> anyhow::Result<(RunReport, Option<f64>)> {
    let servers = Servers::start(config, args.instances).await?;
    let instances = servers.instances();
    let label = format!("{:?}", config.cache.backend).to_lowercase();
    let plan = RunPlan {
        label: &label,
        instances: &instances,
        ceiling,
        cache_off: config.cache.backend == CacheBackend::Off,
    };
    let measured = run_workload(args, &plan).await;
    let stopped = servers.stop().await;
    let measured = measured?;
    stopped?;
    Ok(measured)
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

/// What one measured run drives, and whether it measures the ceiling too.
struct RunPlan<'a> {
    /// Names the run in the progress line and the report: its cache, or `server` for `--url`.
    label: &'a str,
    instances: &'a Instances,
    /// Also measure the ceiling with the same clients, once the run is over.
    ceiling: bool,
    /// The servers run with the cache off: there is nothing to warm.
    cache_off: bool,
}

/// One measured run of the workload, as `plan` says; with `plan.ceiling`, also the ceiling's
/// req/s.
async fn run_workload(
    args: &BenchArgs,
    plan: &RunPlan<'_>,
) -> anyhow::Result<(RunReport, Option<f64>)> {
    let mut shared = Shared::new(plan.instances.clone(), http_client(args)?, args);
    shared.load_catalogue().await?;
    let stats_admin = shared.login(ADMIN_EMAILS[0], &args.password, true).await?;
    let shared = Arc::new(shared);
    let accounts = sign_in_clients(&shared, args).await?;
    let slots = slots(&client_emails(args));
    let mut clients = Vec::with_capacity(accounts.len());
    for (n, account) in accounts.iter().enumerate() {
        let mut client = Client::new(shared.clone(), account.clone(), n, slots[n], args.seed);
        client.prepare().await?;
        clients.push(client);
    }

    prepare_caches(&shared, &stats_admin, args, plan).await?;
    let tasks = clients.into_iter().map(|c| tokio::spawn(c.run())).collect();
    let window = Window {
        label: plan.label,
        warmup: args.warmup,
        duration: args.duration,
        work: Some(WorkCounters {
            admin: &stats_admin,
            redis_url: args.redis_url.as_deref(),
        }),
    };
    let measured = window.run(&shared, tasks).await?;
    let fleet = fleet_figures(&shared, &stats_admin).await;
    let figures = ServerFigures {
        db_queries: measured.work.db_queries,
        redis_commands: measured.work.redis_commands,
        invalidation_wait: fleet.and_then(|(wait, _, _)| wait),
        resyncs: fleet.map(|(_, resyncs, _)| resyncs),
        ack_timeouts: fleet.map(|(_, _, timeouts)| timeouts),
    };
    let report = measured
        .record
        .report(plan.label, measured.elapsed, &figures);

    let ceiling_rps = if plan.ceiling {
        Some(measure_ceiling(&shared, &accounts, &slots, args).await?)
    } else {
        None
    };
    Ok((report, ceiling_rps))
}

/// Empties, then warms, every instance's cache as `--clear-cache` and `--warm-cache` ask, right
/// before the clients start (a run with the cache off is not warmed).
async fn prepare_caches(
    shared: &Shared,
    admin: &Account,
    args: &BenchArgs,
    plan: &RunPlan<'_>,
) -> anyhow::Result<()> {
    let top = args.warm_cache.filter(|_| !plan.cache_off);
    for base in shared.instances.bases() {
        if args.clear_cache {
            let cleared = admin_post(shared, base, admin, "clear", json!({})).await?;
            eprintln!("bench: {base}: deleted {} keys", cleared["deletedKeys"]);
        }
    }
    let Some(top) = top else {
        return Ok(());
    };
    for base in shared.instances.bases() {
        let warmed = admin_post(shared, base, admin, "warm", json!({ "top": top })).await?;
        eprintln!(
            "bench: {base}: warmed {} entries ({} already cached) in {} ms",
            warmed["warmed"], warmed["alreadyCached"], warmed["elapsedMs"]
        );
    }
    Ok(())
}

/// `POST /api/admin/cache/{action}` on the instance at `base`, as `admin`; its JSON answer.
async fn admin_post(
    shared: &Shared,
    base: &str,
    admin: &Account,
    action: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let response = shared
        .http
        .post(format!("{base}/api/admin/cache/{action}"))
        .bearer_auth(&admin.token)
        .timeout(Duration::from_secs(600))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "POST /api/admin/cache/{action} on {base} answered {status}: {}",
        answer["error"]["message"]
    );
    Ok(answer)
}

/// The HTTP client every virtual client shares.
fn http_client(args: &BenchArgs) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        // Drop pooled connections before the server's default idle timeout closes them, so a
        // request never goes out on a connection the server is closing.
        .pool_idle_timeout(ServerLimits::default().idle_timeout / 2)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
}

/// The email each client signs in with, in client order.
fn client_emails(args: &BenchArgs) -> Vec<String> {
    let users = args.dataset.plan().users as usize;
    (0..args.concurrency)
        .map(|n| account_of(n, users).0)
        .collect()
}

/// Signs every client in; a user the data set lacks is replaced by the demo user.
async fn sign_in_clients(shared: &Shared, args: &BenchArgs) -> anyhow::Result<Vec<Account>> {
    let users = args.dataset.plan().users as usize;
    let mut accounts = Vec::with_capacity(args.concurrency);
    for n in 0..args.concurrency {
        let (email, admin) = account_of(n, users);
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
    Ok(accounts)
}

/// Requests per second of `GET /api/me` with the same clients.
async fn measure_ceiling(
    shared: &Arc<Shared>,
    accounts: &[Account],
    slots: &[(usize, usize)],
    args: &BenchArgs,
) -> anyhow::Result<f64> {
    shared.stop.store(false, Ordering::SeqCst);
    let tasks = accounts
        .iter()
        .enumerate()
        .map(|(n, account)| {
            let client = Client::new(shared.clone(), account.clone(), n, slots[n], args.seed);
            tokio::spawn(client.run_ceiling())
        })
        .collect();
    let window = Window {
        label: "ceiling",
        warmup: Duration::from_secs(1),
        duration: (args.duration / 2).max(Duration::from_secs(1)),
        work: None,
    };
    let measured = window.run(shared, tasks).await?;
    Ok(measured
        .record
        .report("ceiling", measured.elapsed, &ServerFigures::default())
        .rps)
}

/// A warm-up, then a window in which the clients' results count.
struct Window<'a> {
    /// Names the window in the progress lines.
    label: &'a str,
    warmup: Duration,
    duration: Duration,
    /// Where to read what the servers did in the window; with `None`, nothing is read.
    work: Option<WorkCounters<'a>>,
}

/// What a window measured.
struct Measured {
    /// Every client's record, merged.
    record: Recorder,
    /// How long results counted.
    elapsed: Duration,
    /// What the servers did meanwhile.
    work: ServerWork,
}

impl Window<'_> {
    /// Lets the spawned clients `tasks` warm up, counts their results for the window, then
    /// stops them and merges their records.
    async fn run(
        &self,
        shared: &Shared,
        tasks: Vec<tokio::task::JoinHandle<Recorder>>,
    ) -> anyhow::Result<Measured> {
        let label = self.label;
        progress(shared, &format!("{label} warm-up"), self.warmup).await;
        let before = ServerWork::read(shared, self.work.as_ref()).await;
        shared.measuring.store(true, Ordering::SeqCst);
        let started = Instant::now();
        progress(shared, label, self.duration).await;
        shared.measuring.store(false, Ordering::SeqCst);
        let elapsed = started.elapsed();
        let after = ServerWork::read(shared, self.work.as_ref()).await;
        shared.stop.store(true, Ordering::SeqCst);
        let mut record = Recorder::new(shared.instances.count());
        for task in tasks {
            record.merge(task.await.context("a bench client panicked")?);
        }
        Ok(Measured {
            record,
            elapsed,
            work: after.since(&before),
        })
    }
}

/// Where the servers count their work: the instances' stats routes, read as an admin, and the
/// Redis server, if any.
struct WorkCounters<'a> {
    admin: &'a Account,
    redis_url: Option<&'a str>,
}

/// The servers' work: so far when read, or within a window.
#[derive(Default)]
struct ServerWork {
    db_queries: Option<u64>,
    redis_commands: Option<u64>,
}

impl ServerWork {
    /// The counters as `counters` tell them now (none without `counters`).
    async fn read(shared: &Shared, counters: Option<&WorkCounters<'_>>) -> Self {
        let Some(counters) = counters else {
            return Self::default();
        };
        Self {
            db_queries: db_queries(shared, counters.admin).await,
            redis_commands: redis_commands(counters.redis_url).await,
        }
    }

    /// The work done since `before`, where both readings have it.
    fn since(&self, before: &Self) -> Self {
        let between = |before: Option<u64>, after: Option<u64>| {
            before.zip(after).map(|(b, a)| a.saturating_sub(b))
        };
        Self {
            db_queries: between(before.db_queries, self.db_queries),
            redis_commands: between(before.redis_commands, self.redis_commands),
        }
    }
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

/// Statements the servers have run, summed over the instances, from their stats routes.
async fn db_queries(shared: &Shared, admin: &Account) -> Option<u64> {
    let mut total = 0;
    for base in shared.instances.bases() {
        total += db_queries_on(shared, base, admin).await?;
    }
    Some(total)
}

/// Statements the server at `base` has run.
async fn db_queries_on(shared: &Shared, base: &str, admin: &Account) -> Option<u64> {
    cache_stats(shared, base, admin).await?["dbQueries"].as_u64()
}

/// `GET /api/admin/cache/stats` of the server at `base`.
async fn cache_stats(shared: &Shared, base: &str, admin: &Account) -> Option<serde_json::Value> {
    let response = shared
        .http
        .get(format!("{base}/api/admin/cache/stats"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// The invalidation waits of the instance whose p99 is the slowest, and the resyncs and
/// acknowledgement timeouts of all, when they share a bus.
async fn fleet_figures(
    shared: &Shared,
    admin: &Account,
) -> Option<(Option<cachette::WaitSummary>, u64, u64)> {
    let mut slowest: Option<cachette::WaitSummary> = None;
    let (mut resyncs, mut ack_timeouts) = (0, 0);
    for base in shared.instances.bases() {
        let stats = cache_stats(shared, base, admin).await?;
        resyncs += stats["fleet"]["resyncs"].as_u64()?;
        ack_timeouts += stats["fleet"]["ackTimeouts"].as_u64()?;
        let wait = &stats["fleet"]["invalidationWait"];
        let summary = cachette::WaitSummary {
            count: wait["count"].as_u64()?,
            p50_us: wait["p50Us"].as_u64()?,
            p99_us: wait["p99Us"].as_u64()?,
            max_us: wait["maxUs"].as_u64()?,
        };
        if summary.count > 0 && slowest.is_none_or(|s| summary.p99_us > s.p99_us) {
            slowest = Some(summary);
        }
    }
    Some((slowest, resyncs, ack_timeouts))
}

/// Commands the Redis server at `url` has processed since it started (`INFO stats`).
async fn redis_commands(url: Option<&str>) -> Option<u64> {
    let client = redis::Client::open(url?).ok()?;
    let mut connection = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut connection)
        .await
        .ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|count| count.trim().parse().ok())
}
