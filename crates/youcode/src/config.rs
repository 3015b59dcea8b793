//! Configuration: command-line flags with environment equivalents, turned into [`Config`].

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use cachette::Policy;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where the database lives when nothing says otherwise.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/youcode.db";

/// The YouCode course platform.
#[derive(Debug, Parser)]
#[command(
    name = "youcode",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, the default command.
    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once at start and consumed: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Fill the database with a deterministic data set.
    Seed(SeedArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect or empty the cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Measure a mixed workload, checking that every write is visible at once.
    Bench(BenchArgs),
}

/// Size of the data set `bench` seeds when the database is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dataset {
    /// 40 courses, 6 lessons each, 50 users: seconds to seed.
    Small,
    /// 20 000 courses, 10 lessons each, 10 000 users, 100 000 enrolments.
    Reference,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Target a running server instead of starting one (its own database and cache are used).
    /// Repeat it for the instances of one deployment: clients are spread over them, and each
    /// write is checked on another instance than the one that took it.
    #[arg(long, conflicts_with_all = ["database_url", "cache", "instances", "ttl", "stale_while_revalidate"])]
    pub url: Vec<String>,
    /// Servers to start, on the same database and cache: clients are spread over them, and
    /// each write is checked on another instance than the one that took it. More than one
    /// needs PostgreSQL.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Database of the server bench starts [default: sqlite://data/bench-DATASET.db]. Not read
    /// from DATABASE_URL, so a benchmark never seeds a database by accident.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Cache of the server bench starts [default: upstash when --upstash-url and
    /// --upstash-token are given, else tiered when --redis-url is, else memory].
    #[arg(long, value_enum)]
    pub cache: Option<CacheBackend>,
    /// Redis of the server bench starts.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Upstash database of the server bench starts (`--cache upstash`).
    #[command(flatten)]
    pub upstash: UpstashArgs,
    /// TTL override of the servers bench starts, `POLICY=SECONDS` (repeatable), as for
    /// `serve`: short TTLs make reads of just-expired entries common.
    #[arg(long = "ttl", value_parser = parse_ttl)]
    pub ttl: Vec<(String, Duration)>,
    /// Stale-while-revalidate grace of the servers bench starts, as for `serve`.
    #[arg(long, value_parser = parse_duration_or_zero,
        default_value_t = Refresh::default().stale_while_revalidate.into())]
    pub stale_while_revalidate: humantime::Duration,
    /// Data set to seed when the database is empty.
    #[arg(long, value_enum, default_value = "small")]
    pub dataset: Dataset,
    /// Virtual clients, each signed in as an admin or a user.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seed of the workload's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Zipf exponent of the choices of courses, pages and search words (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Probability that a step is a write (then checked by a read).
    #[arg(long, default_value_t = 0.05)]
    pub write_ratio: f64,
    /// Steps per second of the workload, all clients together, spread evenly over them (a
    /// step is a read, or a write and the read that checks it). Unset, each client starts its
    /// next step as soon as the last one is answered. A light load (`--rate 200`) shows what a
    /// request costs when nothing queues; the ceiling is never paced.
    #[arg(long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long to run before measuring, so the cache holds the popular entries (on the reference
    /// data set the hit ratio levels off after about 30 s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Run with the cache off, then on, and measure the ceiling (GET /api/me); print ratios.
    #[arg(long)]
    pub compare: bool,
    /// Empty every instance's cache right before the clients start (servers bench starts
    /// begin with an empty cache anyway; this is for `--url`).
    #[arg(long)]
    pub clear_cache: bool,
    /// Warm every instance's cache for the N most-joined courses right before the clients
    /// start (`POST /api/admin/cache/warm`), after `--clear-cache`. With `--warmup 0s
    /// --duration 5s` it shows what warming gives the first seconds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WARM_TOP)))]
    pub warm_cache: Option<u32>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Password of the seeded accounts.
    #[arg(long, default_value = "youcode")]
    pub password: String,
}

/// `--rate`: a positive, finite number of steps per second.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive number of steps per second"
        )),
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheBackend {
    /// In-process, bounded in bytes. On PostgreSQL, instances keep each other fresh over
    /// LISTEN/NOTIFY.
    Memory,
    /// A Redis server shared by every instance; every hit is a Redis round trip.
    Redis,
    /// An Upstash database over its REST API, shared by every instance; every hit is an HTTP
    /// round trip. No in-process tier: the REST API has no pub/sub connection to keep one
    /// fresh.
    Upstash,
    /// An in-process tier in each instance in front of a shared Redis, kept fresh over Redis
    /// pub/sub: a hit of the tier makes no network call.
    Tiered,
    /// No cache: every read goes to the database.
    Off,
}

impl CacheBackend {
    /// `chosen`, or the default: upstash when `upstash` has a URL and a token, else tiered
    /// when a Redis URL is given, else memory.
    pub fn chosen(chosen: Option<Self>, redis_url: Option<&str>, upstash: &UpstashArgs) -> Self {
        chosen.unwrap_or(if upstash.is_set() {
            Self::Upstash
        } else if redis_url.is_some() {
            Self::Tiered
        } else {
            Self::Memory
        })
    }

    /// Whether the store is a Redis server every instance shares.
    pub fn uses_redis(self) -> bool {
        matches!(self, Self::Redis | Self::Tiered)
    }
}

/// A secret taken from the command line or the environment: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(secret: &str) -> Result<Self, Self::Err> {
        Ok(Self(secret.to_owned()))
    }
}

/// Where an Upstash database is, as the original system configured it.
#[derive(Debug, Clone, Default, Args)]
pub struct UpstashArgs {
    /// REST URL of the Upstash database of `--cache upstash` (or of an `upstash-gateway`).
    #[arg(long, env = "UPSTASH_REDIS_REST_URL")]
    pub upstash_url: Option<String>,
    /// REST token of that database; never printed.
    #[arg(long, env = "UPSTASH_REDIS_REST_TOKEN", hide_env_values = true)]
    pub upstash_token: Option<Secret>,
}

impl UpstashArgs {
    /// Whether both the URL and the token are given.
    pub fn is_set(&self) -> bool {
        self.upstash_url.is_some() && self.upstash_token.is_some()
    }
}

#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// The cache store [default: upstash when UPSTASH_REDIS_REST_URL and
    /// UPSTASH_REDIS_REST_TOKEN are set, else tiered when REDIS_URL is, else memory].
    #[arg(long, env = "YOUCODE_CACHE", value_enum)]
    pub cache: Option<CacheBackend>,
    /// `redis://…` or `rediss://…` (TLS).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    #[command(flatten)]
    pub upstash: UpstashArgs,
    /// Prefix of every cache key; instances sharing a Redis share data only under the same one.
    #[arg(long, env = "YOUCODE_CACHE_NAMESPACE", default_value = "youcode")]
    pub cache_namespace: String,
    /// Memory store budget, in MiB.
    #[arg(long, env = "YOUCODE_CACHE_MEMORY_MB", default_value_t = 128)]
    pub cache_memory_mb: u64,
    /// Budget of the in-process tier of `--cache tiered`, in MiB.
    #[arg(long, env = "YOUCODE_CACHE_TIER_MB", default_value_t = 64)]
    pub cache_tier_mb: u64,
    /// How long an instance serves its in-process cache after it last heard itself on the
    /// bus; also the longest a write waits for an instance that does not answer.
    #[arg(long, env = "YOUCODE_CACHE_LEASE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub cache_lease: Duration,
    /// TTL override, `POLICY=SECONDS` (repeatable, or comma-separated in the environment);
    /// policies: search_results, course_detail, lesson_detail, lesson_list, user_progress.
    #[arg(long = "ttl", env = "YOUCODE_TTL", value_delimiter = ',', value_parser = parse_ttl)]
    pub ttl: Vec<(String, Duration)>,
    /// How long past its TTL a shared page (a published course or lesson, a public search) is
    /// answered at once, as `STALE`, while one fetch refreshes it; `0s` turns it off. Never an
    /// invalidated page: only one that expired.
    #[arg(long, env = "YOUCODE_STALE_WHILE_REVALIDATE", value_parser = parse_duration_or_zero,
        default_value_t = Refresh::default().stale_while_revalidate.into())]
    pub stale_while_revalidate: humantime::Duration,
    /// A shared page's fetch slower than this answers the page past its TTL (`STALE`), when
    /// one is kept, and goes on in the background; `0s` waits for the fetch.
    #[arg(long, env = "YOUCODE_FETCH_SOFT_TIMEOUT", value_parser = parse_duration_or_zero,
        default_value_t = Refresh::default().soft_timeout.into())]
    pub fetch_soft_timeout: humantime::Duration,
    /// A shared page's fetch slower than this answers 503 `unavailable` (the fetch goes on and
    /// stores its page); `0s` waits for the fetch.
    #[arg(long, env = "YOUCODE_FETCH_HARD_TIMEOUT", value_parser = parse_duration_or_zero,
        default_value_t = Refresh::default().hard_timeout.into())]
    pub fetch_hard_timeout: humantime::Duration,
}

/// How reads of shared pages behave when their entry expired or their fetch is slow (see
/// `cachette::refresh`). A zero duration turns its part off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    pub stale_while_revalidate: Duration,
    pub soft_timeout: Duration,
    pub hard_timeout: Duration,
}

impl Default for Refresh {
    fn default() -> Self {
        Self {
            stale_while_revalidate: Duration::from_secs(60),
            soft_timeout: Duration::from_secs(1),
            hard_timeout: Duration::from_secs(10),
        }
    }
}

impl Refresh {
    /// `policy` with these settings.
    pub fn applied_to(self, policy: Policy) -> Policy {
        let limit = |limit: Duration| (!limit.is_zero()).then_some(limit);
        Policy {
            stale_while_revalidate: self.stale_while_revalidate,
            soft_timeout: limit(self.soft_timeout),
            hard_timeout: limit(self.hard_timeout),
            ..policy
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "YOUCODE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Address to serve Prometheus metrics on (`GET /metrics`, no sign-in); off when not given.
    /// Keep it private (loopback, or an interface only the monitoring network reaches).
    #[arg(long, env = "YOUCODE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Do not create the demo data set on an empty database.
    #[arg(long)]
    pub no_demo: bool,
    /// How long a session token stays valid after sign-in, however much it is used.
    #[arg(long, env = "YOUCODE_SESSION_LIFETIME", default_value = "30days", value_parser = humantime::parse_duration)]
    pub session_lifetime: Duration,
    /// How long a session token stays valid unused.
    #[arg(long, env = "YOUCODE_SESSION_IDLE_TIMEOUT", default_value = "7days", value_parser = humantime::parse_duration)]
    pub session_idle_timeout: Duration,
    /// Failed sign-ins to one account, per minute, before it answers 429 for a while.
    #[arg(long, env = "YOUCODE_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = LoginLimits::default().failures_per_account)]
    pub login_failures_per_account: NonZeroU32,
    /// Failed sign-ins from one client address, per minute, before it answers 429 for a while
    /// (successful sign-ins never count).
    #[arg(long, env = "YOUCODE_LOGIN_FAILURES_PER_ADDRESS", default_value_t = LoginLimits::default().failures_per_address)]
    pub login_failures_per_address: NonZeroU32,
    /// Passwords hashed at once (default: one per CPU); more sign-ins wait.
    #[arg(long, env = "YOUCODE_PASSWORD_HASHING_CONCURRENCY")]
    pub password_hashing_concurrency: Option<NonZeroUsize>,
    /// Longest wait for a hashing slot before a sign-in answers 503.
    #[arg(long, env = "YOUCODE_PASSWORD_HASHING_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub password_hashing_wait: Duration,
    #[command(flatten)]
    pub limits: LimitsArgs,
    #[command(flatten)]
    pub warming: WarmingArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
}

/// Flags of [`Warming`]; their defaults are [`Warming::default`].
#[derive(Debug, Clone, Args)]
pub struct WarmingArgs {
    /// Entries warming looks up per second at most (each costs at most two statements when it
    /// is not cached yet): the most load it adds to the database.
    #[arg(long, env = "YOUCODE_WARM_RATE", default_value_t = Warming::default().rate)]
    pub warm_rate: NonZeroU32,
    /// Entries warming looks up at once.
    #[arg(long, env = "YOUCODE_WARM_CONCURRENCY", default_value_t = Warming::default().concurrency)]
    pub warm_concurrency: NonZeroUsize,
}

/// How fast warming fills a cold cache (`youcode cache warm`, `POST /api/admin/cache/warm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warming {
    /// Entries looked up per second at most: warming runs beside live traffic, so it is paced
    /// rather than left to fetch as fast as the database answers.
    pub rate: NonZeroU32,
    /// Entries looked up at once.
    pub concurrency: NonZeroUsize,
}

impl Default for Warming {
    /// 100 entries a second, 4 at once.
    fn default() -> Self {
        Self {
            rate: NonZeroU32::new(100).expect("non-zero"),
            concurrency: NonZeroUsize::new(4).expect("non-zero"),
        }
    }
}

/// Flags of [`AlertThresholds`]; their defaults are [`AlertThresholds::default`].
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Alert when the hit ratio over the alert window is below this (0 turns it off).
    #[arg(long, env = "YOUCODE_ALERT_HIT_RATIO", default_value_t = AlertThresholds::default().hit_ratio_floor)]
    pub alert_hit_ratio: f64,
    /// Fewest lookups in the alert window for the hit ratio to count.
    #[arg(long, env = "YOUCODE_ALERT_MIN_LOOKUPS", default_value_t = AlertThresholds::default().min_lookups)]
    pub alert_min_lookups: u64,
    /// Alert when this many store errors happened in the alert window (0 turns it off).
    #[arg(long, env = "YOUCODE_ALERT_STORE_ERRORS", default_value_t = AlertThresholds::default().store_errors)]
    pub alert_store_errors: u64,
    /// Alert when invalidations have waited for the store this long.
    #[arg(long, env = "YOUCODE_ALERT_PENDING_AFTER", value_parser = parse_timeout,
        default_value_t = AlertThresholds::default().pending_after.into())]
    pub alert_pending_after: humantime::Duration,
    /// The window the hit ratio and store errors are measured over.
    #[arg(long, env = "YOUCODE_ALERT_WINDOW", value_parser = parse_timeout,
        default_value_t = AlertThresholds::default().window.into())]
    pub alert_window: humantime::Duration,
}

/// When the in-process alerts (`observe::alerts`) fire. The breaker being open and the
/// database being down always do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertThresholds {
    /// The hit ratio below which the cache is not doing its job; 0 turns the alert off.
    pub hit_ratio_floor: f64,
    /// Below this many lookups in the window a ratio says nothing (a quiet instance at night).
    pub min_lookups: u64,
    /// Store errors in the window that raise an alert; 0 turns the alert off.
    pub store_errors: u64,
    /// How long invalidations may wait for the store before it is an alert: while they wait
    /// the instance serves nothing from the store.
    pub pending_after: Duration,
    /// The span the hit ratio and store errors are measured over.
    pub window: Duration,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            hit_ratio_floor: 0.5,
            min_lookups: 100,
            // Any store error sent requests to the database; the breaker alert covers a store
            // that keeps failing, this one a store that fails now and then.
            store_errors: 1,
            pending_after: Duration::from_secs(30),
            window: Duration::from_secs(300),
        }
    }
}

impl From<WarmingArgs> for Warming {
    fn from(args: WarmingArgs) -> Self {
        Self {
            rate: args.warm_rate,
            concurrency: args.warm_concurrency,
        }
    }
}

impl From<AlertArgs> for AlertThresholds {
    fn from(args: AlertArgs) -> Self {
        Self {
            hit_ratio_floor: args.alert_hit_ratio,
            min_lookups: args.alert_min_lookups,
            store_errors: args.alert_store_errors,
            pending_after: args.alert_pending_after.into(),
            window: args.alert_window.into(),
        }
    }
}

/// Flags of [`ServerLimits`]; their defaults are [`ServerLimits::default`].
#[derive(Debug, Clone, Args)]
pub struct LimitsArgs {
    /// Time a client has to send a whole request head (from its first byte, or from connecting).
    #[arg(long, env = "YOUCODE_HEADER_TIMEOUT", value_parser = parse_timeout,
        default_value_t = ServerLimits::default().header_timeout.into())]
    pub header_timeout: humantime::Duration,
    /// Time a client has to send a whole request body, from the end of its head.
    #[arg(long, env = "YOUCODE_BODY_TIMEOUT", value_parser = parse_timeout,
        default_value_t = ServerLimits::default().body_timeout.into())]
    pub body_timeout: humantime::Duration,
    /// Time a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "YOUCODE_IDLE_TIMEOUT", value_parser = parse_timeout,
        default_value_t = ServerLimits::default().idle_timeout.into())]
    pub idle_timeout: humantime::Duration,
    /// Open connections at most; past it, new ones wait until one closes.
    #[arg(long, env = "YOUCODE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..),
        default_value_t = ServerLimits::default().max_connections)]
    pub max_connections: u32,
}

/// How long a client may take over each part of a connection, and how many may be open at once
/// (see `docs/API.md`, "Connection limits"), so that slow or silent clients never hold the
/// server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// A request head must arrive whole within this of its first byte (of the connection's
    /// start, for the first request).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this of the end of its head.
    pub body_timeout: Duration,
    /// A kept-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most: each costs a file descriptor and buffers.
    pub max_connections: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

impl From<LimitsArgs> for ServerLimits {
    fn from(args: LimitsArgs) -> Self {
        Self {
            header_timeout: args.header_timeout.into(),
            body_timeout: args.body_timeout.into(),
            idle_timeout: args.idle_timeout.into(),
            max_connections: args.max_connections,
        }
    }
}

/// A duration such as `10s` or `500ms`, above zero (a zero timeout would close every
/// connection at once).
/// A duration such as `300ms` or `2m`, where `0s` turns something off.
fn parse_duration_or_zero(raw: &str) -> Result<humantime::Duration, String> {
    raw.parse().map_err(|e| format!("{raw:?}: {e}"))
}

fn parse_timeout(raw: &str) -> Result<humantime::Duration, String> {
    let duration: humantime::Duration = raw.parse().map_err(|e| format!("{raw:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("{raw:?}: a timeout must be above zero"));
    }
    Ok(duration)
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Courses to create.
    #[arg(long, default_value_t = 200)]
    pub courses: u32,
    /// Lessons in each course.
    #[arg(long, default_value_t = 10)]
    pub lessons_per_course: u32,
    /// Users besides the two admins.
    #[arg(long, default_value_t = 100)]
    pub users: u32,
    /// Enrolments to create [default: ten per user].
    #[arg(long)]
    pub enrolments: Option<u32>,
    /// Password of every seeded account.
    #[arg(long, default_value = "youcode")]
    pub password: String,
    /// Seed of the random choices: the same seed gives the same data set.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Delete every existing row first.
    #[arg(long)]
    pub reset: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Create(UserCreateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct UserCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    /// Make the account an ADMIN.
    #[arg(long)]
    pub admin: bool,
    /// The password; asked for on the terminal when absent.
    #[arg(long, env = "YOUCODE_PASSWORD")]
    pub password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Keys, memory and a sample of keys of the namespace.
    Stats(CacheCliArgs),
    /// Delete every key of the namespace.
    Clear(CacheCliArgs),
    /// Invalidate tags (e.g. `course:<id>`).
    Invalidate {
        #[command(flatten)]
        cache: CacheCliArgs,
        /// Tags to invalidate.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Fill the entries read first: the first pages of the public lesson list, the pages of the
    /// most-joined published courses and of their lessons.
    Warm(WarmArgs),
}

#[derive(Debug, Clone, Args)]
pub struct WarmArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// How many of the most-joined published courses to warm (with their lessons' pages).
    #[arg(long, default_value_t = DEFAULT_WARM_TOP, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WARM_TOP)))]
    pub top: u32,
    #[command(flatten)]
    pub warming: WarmingArgs,
}

/// Courses warmed when no `--top` (or `top`) is given.
pub const DEFAULT_WARM_TOP: u32 = 50;
/// The most courses one warming takes.
pub const MAX_WARM_TOP: u32 = 1000;

#[derive(Debug, Clone, Args)]
pub struct CacheCliArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
}

fn parse_ttl(raw: &str) -> Result<(String, Duration), String> {
    let (name, secs) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?}: expected POLICY=SECONDS"))?;
    let name = name.trim().to_ascii_lowercase();
    if !NAMED_POLICIES.iter().any(|p| p.name == name) && name != "session" {
        let names: Vec<&str> = NAMED_POLICIES.iter().map(|p| p.name).collect();
        return Err(format!(
            "unknown policy {name:?}; known: {}, session",
            names.join(", ")
        ));
    }
    let secs: u64 = secs
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?}: seconds must be a whole number"))?;
    Ok((name, Duration::from_secs(secs)))
}

/// Paginated and search lists: 5 minutes.
pub const SEARCH_RESULTS: Policy = Policy::new("search_results", Duration::from_secs(300));
/// Course detail: 1 hour.
pub const COURSE_DETAIL: Policy = Policy::new("course_detail", Duration::from_secs(3600));
/// Lesson detail: 30 minutes.
pub const LESSON_DETAIL: Policy = Policy::new("lesson_detail", Duration::from_secs(1800));
/// The lessons of a course: 5 minutes.
pub const LESSON_LIST: Policy = Policy::new("lesson_list", Duration::from_secs(300));
/// One user's progress: 10 minutes.
pub const USER_PROGRESS: Policy = Policy::new("user_progress", Duration::from_secs(600));

/// The policies of the original system, by kind of data, for configuration by name.
pub const NAMED_POLICIES: [Policy; 5] = [
    SEARCH_RESULTS,
    COURSE_DETAIL,
    LESSON_DETAIL,
    LESSON_LIST,
    USER_PROGRESS,
];

/// The TTL policies in force, after overrides.
#[derive(Debug, Clone)]
pub struct Policies {
    pub search_results: Policy,
    pub course_detail: Policy,
    pub lesson_detail: Policy,
    pub lesson_list: Policy,
    pub user_progress: Policy,
    /// Who a token belongs to: revoked by invalidation at logout, so it can live long.
    pub session: Policy,
}

impl Policies {
    /// The designed policies with TTL `overrides` and `refresh` applied (the session's policy
    /// takes neither refresh nor stale answers).
    pub fn with_overrides(overrides: &[(String, Duration)], refresh: Refresh) -> Self {
        let overridden = |policy: Policy| {
            overrides
                .iter()
                .rev()
                .find(|(name, _)| name == policy.name)
                .map_or(policy, |(_, ttl)| policy.with_ttl(*ttl))
        };
        let pick = |policy: Policy| refresh.applied_to(overridden(policy));
        Self {
            search_results: pick(SEARCH_RESULTS),
            course_detail: pick(COURSE_DETAIL),
            lesson_detail: pick(LESSON_DETAIL),
            lesson_list: pick(LESSON_LIST),
            user_progress: pick(USER_PROGRESS),
            // Never served past its TTL: a fetch that fails may mean the session is gone.
            session: Policy {
                stale_if_error: Duration::ZERO,
                ..overridden(Policy::new("session", Duration::from_secs(3600)))
            },
        }
    }
}

impl Default for Policies {
    fn default() -> Self {
        Self::with_overrides(&[], Refresh::default())
    }
}

/// How the cache is set up.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub backend: CacheBackend,
    pub redis_url: Option<String>,
    /// The database of `--cache upstash`.
    pub upstash: UpstashArgs,
    pub namespace: String,
    pub memory_bytes: u64,
    /// Budget of the in-process tier in front of Redis (`tiered` only).
    pub tier_bytes: u64,
    /// The instances' lease on their local view (see `cachette::fleet`).
    pub lease: Duration,
    pub policies: Policies,
}

impl CacheConfig {
    /// An in-process cache under `namespace`.
    pub fn memory(namespace: &str) -> Self {
        Self {
            backend: CacheBackend::Memory,
            redis_url: None,
            upstash: UpstashArgs::default(),
            namespace: namespace.to_owned(),
            memory_bytes: 128 << 20,
            tier_bytes: 64 << 20,
            lease: Duration::from_secs(1),
            policies: Policies::default(),
        }
    }
}

impl From<CacheArgs> for CacheConfig {
    fn from(args: CacheArgs) -> Self {
        Self {
            backend: CacheBackend::chosen(args.cache, args.redis_url.as_deref(), &args.upstash),
            redis_url: args.redis_url,
            upstash: args.upstash,
            namespace: args.cache_namespace,
            memory_bytes: args.cache_memory_mb << 20,
            tier_bytes: args.cache_tier_mb << 20,
            lease: args.cache_lease,
            policies: Policies::with_overrides(
                &args.ttl,
                Refresh {
                    stale_while_revalidate: args.stale_while_revalidate.into(),
                    soft_timeout: args.fetch_soft_timeout.into(),
                    hard_timeout: args.fetch_hard_timeout.into(),
                },
            ),
        }
    }
}

/// How hard password hashing works: `Standard` for real accounts; `Low` only for tests, where
/// hundreds of accounts are made in debug builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCost {
    Standard,
    Low,
}

/// How long a session token stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// From sign-in, however much the token is used.
    pub lifetime: Duration,
    /// Since the token was last used. Uses are recorded at most once per tenth of it, so a
    /// session may end up to a tenth early.
    pub idle_timeout: Duration,
}

impl Default for SessionLimits {
    /// 30 days, 7 days idle.
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(30 * 24 * 3600),
            idle_timeout: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What bounds password guessing and the cost of password hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failed sign-ins one account takes per minute; past it, the account answers 429 until
    /// the rate falls back (an attacker gets a guess every few seconds at most).
    pub failures_per_account: NonZeroU32,
    /// Failed sign-ins one client address makes per minute, likewise. Only failures count, so
    /// many people signing in correctly from one address (an office, a benchmark) never are.
    pub failures_per_address: NonZeroU32,
    /// Passwords hashed at once: each argon2 hash takes 19 MiB and a core for tens of
    /// milliseconds, so more at once only add memory and wait.
    pub hashing_concurrency: NonZeroUsize,
    /// Longest wait for a hashing slot; past it, the sign-in answers 503 with `Retry-After`.
    pub hashing_wait: Duration,
}

impl Default for LoginLimits {
    /// 10 failures a minute per account, 30 per address, one hash per CPU, 5 s of waiting.
    fn default() -> Self {
        Self {
            failures_per_account: NonZeroU32::new(10).expect("non-zero"),
            failures_per_address: NonZeroU32::new(30).expect("non-zero"),
            hashing_concurrency: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            hashing_wait: Duration::from_secs(5),
        }
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Where `GET /metrics` listens; no metrics (and no request counting) without one.
    pub metrics_addr: Option<SocketAddr>,
    pub database_url: String,
    pub cache: CacheConfig,
    /// Create the demo data set when the database is empty.
    pub seed_demo: bool,
    pub password_cost: PasswordCost,
    pub sessions: SessionLimits,
    pub login: LoginLimits,
    pub limits: ServerLimits,
    pub warming: Warming,
    pub alerts: AlertThresholds,
}

impl Config {
    /// The configuration of a command working beside the servers (`youcode cache warm`): their
    /// database and cache, and defaults for what only serving uses.
    pub fn beside_servers(database_url: String, cache: CacheConfig, warming: Warming) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            database_url,
            cache,
            seed_demo: false,
            password_cost: PasswordCost::Standard,
            sessions: SessionLimits::default(),
            login: LoginLimits::default(),
            limits: ServerLimits::default(),
            warming,
            alerts: AlertThresholds::default(),
        }
    }
}

impl From<ServeArgs> for Config {
    fn from(args: ServeArgs) -> Self {
        let defaults = LoginLimits::default();
        Self {
            addr: args.addr,
            metrics_addr: args.metrics_addr,
            database_url: args.database.database_url,
            cache: args.cache.into(),
            seed_demo: !args.no_demo,
            password_cost: PasswordCost::Standard,
            sessions: SessionLimits {
                lifetime: args.session_lifetime,
                idle_timeout: args.session_idle_timeout,
            },
            login: LoginLimits {
                failures_per_account: args.login_failures_per_account,
                failures_per_address: args.login_failures_per_address,
                hashing_concurrency: args
                    .password_hashing_concurrency
                    .unwrap_or(defaults.hashing_concurrency),
                hashing_wait: args.password_hashing_wait,
            },
            limits: args.limits.into(),
            warming: args.warming.into(),
            alerts: args.alerts.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_policies_have_the_designed_ttls() {
        let ttls: Vec<u64> = NAMED_POLICIES.iter().map(|p| p.ttl.as_secs()).collect();
        assert_eq!(ttls, [300, 3600, 1800, 300, 600]);
    }

    #[test]
    fn ttl_overrides_are_parsed_and_applied() {
        let cli = Cli::try_parse_from([
            "youcode",
            "--ttl",
            "course_detail=60",
            "--ttl",
            "SEARCH_RESULTS=5",
        ])
        .unwrap();
        let policies = Policies::with_overrides(&cli.serve.cache.ttl, Refresh::default());
        assert_eq!(policies.course_detail.ttl, Duration::from_secs(60));
        assert_eq!(policies.search_results.ttl, Duration::from_secs(5));
        assert_eq!(policies.lesson_detail.ttl, Duration::from_secs(1800));
    }

    #[test]
    fn refresh_flags_reach_every_policy_but_the_session() {
        let cli = Cli::try_parse_from([
            "youcode",
            "--stale-while-revalidate",
            "2m",
            "--fetch-soft-timeout",
            "0s",
            "--fetch-hard-timeout",
            "3s",
        ])
        .unwrap();
        let policies = CacheConfig::from(cli.serve.cache).policies;
        for policy in [policies.course_detail, policies.search_results] {
            assert_eq!(policy.stale_while_revalidate, Duration::from_secs(120));
            assert_eq!(policy.soft_timeout, None, "0s turns it off");
            assert_eq!(policy.hard_timeout, Some(Duration::from_secs(3)));
        }
        let session = policies.session;
        assert_eq!(session.stale_while_revalidate, Duration::ZERO);
        assert_eq!((session.soft_timeout, session.hard_timeout), (None, None));
        assert_eq!(session.stale_if_error, Duration::ZERO);
        assert!(Cli::try_parse_from(["youcode", "--fetch-hard-timeout", "soon"]).is_err());
    }

    #[test]
    fn upstash_is_the_default_when_its_url_and_token_are_both_given() {
        let cache = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("youcode").chain(args.iter().copied()));
            CacheConfig::from(cli.unwrap().serve.cache)
        };
        let upstash = [
            "--upstash-url",
            "https://db.upstash.io",
            "--upstash-token",
            "T0k3n",
        ];
        let chosen = cache(&upstash);
        assert_eq!(chosen.backend, CacheBackend::Upstash);
        assert!(!format!("{chosen:?}").contains("T0k3n"), "{chosen:?}");
        let with_redis = [&upstash[..], &["--redis-url", "redis://127.0.0.1"]].concat();
        assert_eq!(cache(&with_redis).backend, CacheBackend::Upstash);
        // A URL without its token chooses what the rest of the environment does (`REDIS_URL`
        // may be set), never Upstash.
        assert_ne!(cache(&upstash[..2]).backend, CacheBackend::Upstash);
        let chosen = [&upstash[..], &["--cache", "redis"]].concat();
        assert_eq!(cache(&chosen).backend, CacheBackend::Redis);
    }

    #[test]
    fn unknown_policies_and_bad_seconds_are_refused() {
        assert!(Cli::try_parse_from(["youcode", "--ttl", "nope=5"]).is_err());
        assert!(Cli::try_parse_from(["youcode", "--ttl", "course_detail=soon"]).is_err());
    }

    #[test]
    fn bench_refuses_backends_for_a_server_it_does_not_start() {
        let bench = |extra: &[&str]| {
            let args = ["youcode", "bench", "--url", "http://127.0.0.1:8080"];
            Cli::try_parse_from(args.iter().chain(extra))
        };
        assert!(bench(&[]).is_ok());
        assert!(bench(&["--cache", "memory"]).is_err());
        assert!(bench(&["--database-url", "sqlite://x.db"]).is_err());
        assert!(bench(&["--instances", "2"]).is_err());
    }

    #[test]
    fn bench_takes_several_urls() {
        let cli = Cli::try_parse_from([
            "youcode",
            "bench",
            "--url",
            "http://127.0.0.1:8080",
            "--url",
            "http://127.0.0.1:8081",
        ])
        .unwrap();
        let Some(Command::Bench(args)) = cli.command else {
            panic!("not the bench command");
        };
        assert_eq!(args.url.len(), 2);
        assert_eq!(args.instances, 1);
    }

    #[test]
    fn server_limits_default_and_can_be_set() {
        let cli = Cli::try_parse_from(["youcode"]).unwrap();
        assert_eq!(
            ServerLimits::from(cli.serve.limits),
            ServerLimits::default()
        );
        let cli = Cli::try_parse_from([
            "youcode",
            "--header-timeout",
            "2s",
            "--body-timeout",
            "500ms",
            "--idle-timeout",
            "1m",
            "--max-connections",
            "3",
        ])
        .unwrap();
        let limits = ServerLimits::from(cli.serve.limits);
        assert_eq!(limits.header_timeout, Duration::from_secs(2));
        assert_eq!(limits.body_timeout, Duration::from_millis(500));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.max_connections, 3);
    }

    #[test]
    fn zero_timeouts_and_no_connections_are_refused() {
        assert!(Cli::try_parse_from(["youcode", "--idle-timeout", "0s"]).is_err());
        assert!(Cli::try_parse_from(["youcode", "--max-connections", "0"]).is_err());
    }

    #[test]
    fn serve_is_the_default_command() {
        let cli = Cli::try_parse_from(["youcode", "--addr", "127.0.0.1:0"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.addr.port(), 0);
    }
}
