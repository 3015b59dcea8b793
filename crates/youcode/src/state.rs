//! What every handler shares.

use std::sync::Arc;

use crate::auth::{Hashing, LoginGuard};
pub use crate::cache::AppCache;
use crate::cache::keys::CacheKeys;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::observe::Monitor;

/// Shared state, cloned into every handler; every field is a cheap handle.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub cache: AppCache,
    pub keys: CacheKeys,
    pub config: Arc<Config>,
    /// Failed sign-ins, per account and per client address.
    pub login_guard: Arc<LoginGuard>,
    /// Password hashing, a few at a time.
    pub hashing: Arc<Hashing>,
    /// What `GET /metrics` answers (on `--metrics-addr`).
    pub metrics: Metrics,
    /// What the dashboard and the alerts watch.
    pub monitor: Arc<Monitor>,
}

impl AppState {
    /// The state of an application on `db` and `cache`, configured by `config`.
    pub fn new(db: Db, cache: AppCache, config: Config) -> Self {
        let keys = CacheKeys::new(cache.namespace().clone(), config.cache.policies.clone());
        Self {
            metrics: Metrics::new(cache.clone(), db.clone()),
            monitor: Arc::new(Monitor::new(config.alerts)),
            db,
            cache,
            keys,
            hashing: Arc::new(Hashing::new(&config.login)),
            login_guard: Arc::new(LoginGuard::new(&config.login)),
            config: Arc::new(config),
        }
    }
}
