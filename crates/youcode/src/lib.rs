//! # youcode
//!
//! The YouCode course platform: an HTTP API over SQLite or PostgreSQL whose reads go through
//! [`cachette`] and whose writes invalidate exactly the cache tags of what they change.
//!
//! ## Layout
//!
//! - [`config`]: command line and environment, turned into [`config::Config`].
//! - [`domain`]: typed ids, roles and states, timestamps, validated request params.
//! - [`db`]: the SQL repository (one SQL text for both backends), its migrations, seeding, and
//!   the lock that keeps an SQLite file to one serving instance.
//! - [`auth`]: password hashing and session tokens.
//! - [`cache`]: everything the application knows about caching: its keys and tags
//!   ([`cache::keys`]), what each write invalidates ([`cache::invalidation`]), and the layout a
//!   user's course list is cached in.
//! - [`http`]: the routes, one module per resource, and the API's error type.
//! - [`metrics`]: what Prometheus scrapes from `--metrics-addr`: request, cache and database
//!   figures of one application.
//! - [`observe`]: what the instance watches about itself: requests per route, samples of the
//!   cache and database, alerts, invalidations as they happen (for `/admin` and `/healthz`).
//! - [`server`]: accepting connections and serving them within the limits of the configuration.
//! - [`cli`]: `seed`, `user create`, `cache …`.
//! - [`bench`]: `youcode bench`, a mixed workload that measures the cache and checks freshness.
//! - [`state`]: what handlers share.
//!
//! [`Application::build`] wires them; [`Application::run_until_stopped`] serves until SIGINT or
//! SIGTERM.

pub mod auth;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod observe;
pub mod server;
pub mod state;

/// The private parts the fuzz targets in `fuzz/` drive; not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::cache::course_list::{Chunk, CourseList, CourseListCodec, chunks_for};
    pub use crate::cache::keys::CHUNK_LEN;
    pub use crate::http::course_list::ListParts;
}

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use cachette::{
    AnyStore, Cache, FleetConfig, MemoryStore, Namespace, RedisBus, RedisStore, UpstashStore,
};
use tokio::net::TcpListener;

use crate::config::{CacheBackend, CacheConfig, Config};
use crate::db::{Db, InstanceLock};
use crate::state::{AppCache, AppState};

/// Version of the shape of cached values: bump it when a cached payload changes shape, and
/// entries written by older code are never read.
pub const CACHE_SCHEMA_VERSION: u32 = 2;

/// A built application: database migrated, cache connected, listener bound.
pub struct Application {
    listener: TcpListener,
    /// Where `GET /metrics` is served, when `--metrics-addr` asks for it.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    /// Held while the application lives: a second instance on the same SQLite file would serve
    /// stale data from its own cache, since only PostgreSQL and Redis carry invalidations
    /// between instances. `None` on PostgreSQL.
    instance_lock: Option<InstanceLock>,
}

impl Application {
    /// Connects to the database (running migrations), sets up the cache, creates the demo data
    /// set on an empty database when asked to, and binds the listener (port 0 picks a free one).
    ///
    /// On SQLite it first takes the database's [`InstanceLock`], before touching the database,
    /// and keeps it until the application is dropped or stops serving.
    ///
    /// # Errors
    /// When another instance serves the same SQLite file, the database cannot be reached or
    /// migrated, the cache configuration is invalid, or the address cannot be bound. An
    /// unreachable Redis is not an error: the cache bypasses it.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let instance_lock = InstanceLock::take(&config.database_url)?;
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let cache = build_cache(&config.cache, Some(&config.database_url))?;
        // Joining the other instances takes a lease: until then writes would wait it out.
        if !cache
            .until_settled(config.cache.lease * 2 + JOIN_MARGIN)
            .await
        {
            tracing::warn!(
                "the cache bus cannot be heard: serving without the in-process cache until it can"
            );
        }
        if let AnyStore::Upstash(store) = cache.store()
            && let Err(error) = store.ping().await
        {
            // Not fatal: the cache bypasses the store until it answers.
            tracing::error!(url = store.url(), %error, "the Upstash cache store cannot be used");
        }
        if config.seed_demo && !db.has_users().await? {
            db::seed::seed_demo(&db).await?;
        }
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {addr}"))?,
            ),
            None => None,
        };
        let state = AppState::new(db, cache, config);
        tokio::spawn(forget_old_login_failures(Arc::downgrade(
            &state.login_guard,
        )));
        Ok(Self {
            listener,
            metrics_listener,
            state,
            instance_lock,
        })
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address `GET /metrics` is served on, when the configuration asks for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|listener| {
            listener
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    /// The state the handlers share (tests use its database and cache directly).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then finishes the requests under way.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes the requests under way (for at most
    /// [`server::SHUTDOWN_GRACE`]).
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            metrics_listener,
            state,
            instance_lock,
        } = self;
        let metrics = metrics_listener.map(|listener| {
            let router = http::metrics::router(state.metrics.clone());
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!(%error, "the metrics listener failed");
                }
            })
        });
        let db = state.db.clone();
        let cache = state.cache.clone();
        let limits = state.config.limits;
        let relay = tokio::spawn(http::relay(state.clone()));
        let monitor = Arc::clone(&state.monitor);
        let watch = tokio::spawn(observe::watch(
            Arc::clone(&monitor),
            db.clone(),
            cache.clone(),
        ));
        // The dashboard's live streams end when shutdown begins, not at its grace's end.
        let shutdown = async move {
            shutdown.await;
            monitor.stop();
        };
        let served = server::serve(listener, http::app(state), limits, shutdown).await;
        relay.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        watch.abort();
        served.context("server error")?;
        // Invalidations that have not reached the store yet get a last chance before exit.
        let flushed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !cache.flush_pending().await {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
        .await;
        if flushed.is_err() {
            tracing::error!("stopping with cache invalidations that never reached the store");
        }
        cache.leave().await;
        db.close().await;
        // Only now may another instance serve the file.
        drop(instance_lock);
        Ok(())
    }
}

/// The cache the configuration asks for. Instances that share a store or a database keep
/// each other fresh over a bus: Redis pub/sub with a Redis store, else PostgreSQL
/// LISTEN/NOTIFY when `database_url` is a PostgreSQL one. An SQLite database has one instance.
///
/// # Errors
/// When Redis is chosen without a URL, or a URL or the namespace is invalid.
pub fn build_cache(config: &CacheConfig, database_url: Option<&str>) -> anyhow::Result<AppCache> {
    let namespace = Namespace::new(&config.namespace, CACHE_SCHEMA_VERSION)
        .context("invalid cache namespace")?;
    let redis_url = if config.backend.uses_redis() {
        let url = config.redis_url.as_deref();
        Some(url.context("--cache redis and --cache tiered need --redis-url (or REDIS_URL)")?)
    } else {
        None
    };
    let store: AnyStore = match (redis_url, config.backend) {
        (Some(url), _) => RedisStore::new(url)
            .with_context(|| format!("invalid Redis URL {}", db::redact(url)))?
            .into(),
        (None, CacheBackend::Upstash) => upstash_store(config)?.into(),
        (None, _) => MemoryStore::new(config.memory_bytes).into(),
    };
    let bus: Option<Arc<dyn cachette::Bus>> = match (redis_url, database_url) {
        // Instances share the Upstash store itself, as they share Redis with `--cache redis`;
        // with no in-process view to keep fresh they need no bus (and REST has no pub/sub).
        _ if config.backend == CacheBackend::Upstash => None,
        (Some(url), _) => Some(Arc::new(
            RedisBus::new(url, &format!("{}bus", namespace.prefix()))
                .with_context(|| format!("invalid Redis URL {}", db::redact(url)))?,
        )),
        (None, Some(url)) if db::Backend::of_url(url).ok() == Some(db::Backend::Postgres) => Some(
            Arc::new(db::bus::PgBus::new(url, PG_BUS_CHANNEL).context("invalid database URL")?),
        ),
        (None, _) => None,
    };
    let mut builder = Cache::builder(store, namespace).enabled(config.backend != CacheBackend::Off);
    if config.backend == CacheBackend::Tiered {
        builder = builder.local_tier(config.tier_bytes);
    }
    if let Some(bus) = bus {
        builder = builder.bus(
            bus,
            FleetConfig {
                lease: config.lease,
                heartbeat: config.lease / 5,
                ..FleetConfig::default()
            },
        );
    }
    Ok(builder.build())
}

/// The Upstash store of `--cache upstash`.
fn upstash_store(config: &CacheConfig) -> anyhow::Result<UpstashStore> {
    let (Some(url), Some(token)) = (&config.upstash.upstash_url, &config.upstash.upstash_token)
    else {
        anyhow::bail!(
            "--cache upstash needs --upstash-url and --upstash-token (or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)"
        );
    };
    UpstashStore::new(url, token.expose()).with_context(|| format!("invalid Upstash URL {url}"))
}

/// Extra time allowed for joining the cache bus at start, beyond two leases.
const JOIN_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// The PostgreSQL channel of the cache bus (one database is one deployment; messages name
/// their namespace).
const PG_BUS_CHANNEL: &str = "youcode_cache";

/// Drops old sign-in failures once a minute, for as long as the application lives.
async fn forget_old_login_failures(guard: std::sync::Weak<auth::LoginGuard>) {
    let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every_minute.tick().await;
        match guard.upgrade() {
            Some(guard) => guard.forget_old(),
            None => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
