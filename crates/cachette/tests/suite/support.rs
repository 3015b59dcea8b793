//! Helpers shared by the tests: store wrappers that fail or count on demand, unique namespaces,
//! a private Redis server and a proxy to cut the way to it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cachette::store::{LeaseAttempt, LeaseToken, Read};
use cachette::{
    Generation, MemoryStore, Namespace, Policy, RedisStore, Store, StoreError, UpstashStore, Usage,
};
use parking_lot::Mutex;
use tokio::sync::oneshot;

pub use testkit::{Proxy, RedisServer, free_port};

/// The policy of most tests: five minutes, the defaults otherwise.
pub const FIVE_MINUTES: Policy = Policy::new("five_minutes", Duration::from_secs(300));
/// A longer-lived policy, for entries that must outlive a test.
pub const ONE_HOUR: Policy = Policy::new("one_hour", Duration::from_secs(3600));

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A namespace no other test (or run) uses.
pub fn unique_namespace() -> Namespace {
    Namespace::new(&format!("cachette-test-{:016x}", rand::random::<u64>()), 1).unwrap()
}

/// A Redis store on `REDIS_URL`, checked to be reachable: a missing server fails the test.
pub async fn redis_store() -> RedisStore {
    let store = RedisStore::new(&redis_url()).expect("REDIS_URL is a valid Redis URL");
    store.ping().await.unwrap_or_else(|e| {
        panic!(
            "Redis is not reachable at {}: {e}. scripts/test installs and starts it.",
            redis_url()
        )
    });
    store
}

/// An Upstash store through a gateway of its own (on this test's runtime) over `REDIS_URL`,
/// with a random token.
pub async fn upstash_store() -> UpstashStore {
    let token = format!("token-{:016x}", rand::random::<u64>());
    let addr = upstash_gateway::spawn(&redis_url(), &token)
        .await
        .unwrap_or_else(|e| panic!("the Upstash gateway cannot start over {}: {e}", redis_url()));
    let store = UpstashStore::new(&format!("http://{addr}"), &token).expect("a valid URL");
    store.ping().await.expect("the gateway answers");
    store
}

pub fn memory_store() -> MemoryStore {
    MemoryStore::default()
}

/// Wraps a store: counts calls per operation and fails every call while `failing` is set.
pub struct Flaky<S> {
    pub inner: S,
    pub failing: Arc<AtomicBool>,
    /// While set, bumping generations hangs (until the caller gives up).
    pub hanging: Arc<AtomicBool>,
    pub calls: Arc<AtomicU64>,
    pub bumps: Arc<AtomicU64>,
    pub bumped_keys: Arc<AtomicU64>,
    pub sets: Arc<AtomicU64>,
    /// Bytes of all values set.
    pub set_bytes: Arc<AtomicU64>,
    /// When set, the next lease attempt signals the sender, then waits for the receiver.
    pub lease_gate: Arc<Mutex<Option<Gate>>>,
}

/// Holds one call: says it arrived, waits to be let through.
pub type Gate = (oneshot::Sender<()>, oneshot::Receiver<()>);

impl<S: Store> Flaky<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            failing: Arc::default(),
            hanging: Arc::default(),
            calls: Arc::default(),
            bumps: Arc::default(),
            bumped_keys: Arc::default(),
            sets: Arc::default(),
            set_bytes: Arc::default(),
            lease_gate: Arc::default(),
        }
    }

    fn enter(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Backend("injected failure".into()))
        } else {
            Ok(())
        }
    }
}

impl<S: Store> Store for Flaky<S> {
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    async fn read(&self, key: &str, generation_keys: &[&str]) -> Result<Read, StoreError> {
        self.enter()?;
        self.inner.read(key, generation_keys).await
    }
    async fn ensure_generations(
        &self,
        keys: &[&str],
        ttl: Duration,
    ) -> Result<Vec<Generation>, StoreError> {
        self.enter()?;
        self.inner.ensure_generations(keys, ttl).await
    }
    async fn bump_generations(&self, keys: &[&str]) -> Result<(), StoreError> {
        self.enter()?;
        if self.hanging.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        self.bumps.fetch_add(1, Ordering::SeqCst);
        self.bumped_keys
            .fetch_add(keys.len() as u64, Ordering::SeqCst);
        self.inner.bump_generations(keys).await
    }
    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
        generation_keys: &[&str],
    ) -> Result<(), StoreError> {
        self.enter()?;
        self.sets.fetch_add(1, Ordering::SeqCst);
        self.set_bytes
            .fetch_add(value.len() as u64, Ordering::SeqCst);
        self.inner.set(key, value, ttl, generation_keys).await
    }
    async fn try_lease(
        &self,
        key: &str,
        generation_keys: &[&str],
        ttl: Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        self.enter()?;
        let gate = self.lease_gate.lock().take();
        if let Some((arrived, through)) = gate {
            let _ = arrived.send(());
            let _ = through.await;
        }
        self.inner.try_lease(key, generation_keys, ttl).await
    }
    async fn release_lease(&self, key: &str, token: LeaseToken) -> Result<(), StoreError> {
        self.enter()?;
        self.inner.release_lease(key, token).await
    }
    async fn delete(&self, keys: &[&str]) -> Result<u64, StoreError> {
        self.enter()?;
        self.inner.delete(keys).await
    }
    async fn scan(&self, pattern: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.enter()?;
        self.inner.scan(pattern, limit).await
    }
    async fn delete_matching(&self, pattern: &str) -> Result<u64, StoreError> {
        self.enter()?;
        self.inner.delete_matching(pattern).await
    }
    async fn usage(&self, pattern: &str) -> Result<Usage, StoreError> {
        self.enter()?;
        self.inner.usage(pattern).await
    }
}

/// How much longer a store keeps a tag generation, for tests of generation lifetimes.
pub trait GenerationLife {
    /// `None` when the store holds no generation under `key`.
    fn generation_life(&self, key: &str) -> impl Future<Output = Option<Duration>> + Send;
}

impl GenerationLife for MemoryStore {
    async fn generation_life(&self, key: &str) -> Option<Duration> {
        MemoryStore::generation_life(self, key)
    }
}

impl GenerationLife for RedisStore {
    async fn generation_life(&self, key: &str) -> Option<Duration> {
        let millis: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut self.connection())
            .await
            .expect("PTTL answers");
        match millis {
            -2 => None,
            -1 => Some(Duration::MAX),
            millis => Some(Duration::from_millis(millis.unsigned_abs())),
        }
    }
}

impl GenerationLife for UpstashStore {
    async fn generation_life(&self, key: &str) -> Option<Duration> {
        // The gateway's Redis, asked directly: the REST store has no reason to expose PTTL.
        redis_store().await.generation_life(key).await
    }
}

/// Waits until `condition` holds, checking every 50 ms; panics, naming `what`, after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs each listed test (an `async fn(store)`) once on the memory store, once on Redis, and
/// once on Upstash's REST API through the workspace's gateway.
macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::support::memory_store()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::support::redis_store().await).await;
                }
            )*
        }
        mod upstash {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::support::upstash_store().await).await;
                }
            )*
        }
    };
}

pub(crate) use suite;
