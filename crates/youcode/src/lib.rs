//! # youcode
//!
//! The YouCode course platform: an HTTP API over SQLite or PostgreSQL whose reads go through
//! [`cachette`] and whose writes invalidate exactly the cache tags of what they change.
//!
//! ## Layout
//!
//! - [`config`]: command line and environment, turned into [`config::Config`].
//! - [`domain`]: typed ids, roles and states, validated request params.
//! - [`db`]: the SQL repository (one SQL text for both backends), its migrations, seeding, and
//!   the lock that keeps an SQLite file to one serving instance.
//! - [`auth`]: password hashing and session tokens.
//! - [`cache`]: everything the application knows about caching: its keys and tags
//!   ([`cache::keys`]) and what each write invalidates ([`cache::invalidation`]).
//! - [`http`]: the routes, one module per resource, and the API's error type.
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
pub mod server;
pub mod state;

/// The private parts the fuzz targets in `fuzz/` drive; not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http::course_list::{
        CHUNK_LEN, Chunk, CourseList, CourseListCodec, chunks_for, page,
    };
}

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use cachette::{AnyStore, Cache, MemoryStore, Namespace, RedisStore};
use tokio::net::TcpListener;

use crate::cache::keys::CacheKeys;
use crate::config::{CacheBackend, CacheConfig, Config};
use crate::db::{Db, InstanceLock};
use crate::state::{AppCache, AppState};

/// Version of the shape of cached values: bump it when a cached payload changes shape, and
/// entries written by older code are never read.
pub const CACHE_SCHEMA_VERSION: u32 = 2;

/// A built application: database migrated, cache connected, listener bound.
pub struct Application {
    listener: TcpListener,
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
        let cache = build_cache(&config.cache)?;
        let keys = CacheKeys::new(cache.namespace().clone(), config.cache.policies.clone());
        if config.seed_demo && !db.has_users().await? {
            db::seed::seed_demo(&db).await?;
        }
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let login_guard = Arc::new(auth::LoginGuard::new(&config.login));
        tokio::spawn(forget_old_login_failures(Arc::downgrade(&login_guard)));
        let state = AppState {
            db,
            cache,
            keys,
            hashing: Arc::new(auth::Hashing::new(&config.login)),
            login_guard,
            config: Arc::new(config),
        };
        Ok(Self {
            listener,
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
            state,
            instance_lock,
        } = self;
        let db = state.db.clone();
        let cache = state.cache.clone();
        let limits = state.config.limits;
        server::serve(listener, http::app(state), limits, shutdown)
            .await
            .context("server error")?;
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
        db.close().await;
        // Only now may another instance serve the file.
        drop(instance_lock);
        Ok(())
    }
}

/// The cache the configuration asks for.
///
/// # Errors
/// When Redis is chosen without a URL, or the URL or namespace is invalid.
pub fn build_cache(config: &CacheConfig) -> anyhow::Result<AppCache> {
    let namespace = Namespace::new(&config.namespace, CACHE_SCHEMA_VERSION)
        .context("invalid cache namespace")?;
    let store: AnyStore = match config.backend {
        CacheBackend::Memory | CacheBackend::Off => MemoryStore::new(config.memory_bytes).into(),
        CacheBackend::Redis => {
            let url = config
                .redis_url
                .as_deref()
                .context("--cache redis needs --redis-url (or REDIS_URL)")?;
            RedisStore::new(url)
                .with_context(|| format!("invalid Redis URL {}", db::redact(url)))?
                .into()
        }
    };
    Ok(Cache::builder(store, namespace)
        .enabled(config.backend != CacheBackend::Off)
        .build())
}

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
