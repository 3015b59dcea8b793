//! Where entries and tag generations live.
//!
//! A [`Store`] is a dumb, fast key-value backend; every cache rule (validity, single-flight,
//! fallback) lives in [`Cache`](crate::Cache). The same test suite runs against every store.
//!
//! # How long generations live
//!
//! A tag generation lives as long as the longest-lived entry built under it, plus
//! [`GENERATION_MARGIN`]: it is created for the lifetime of the entry about to be built
//! ([`Store::ensure_generations`]), extended by every entry stored under it ([`Store::set`]),
//! and keeps its remaining lifetime when bumped. So tags nobody reads any more (one per distinct
//! search, say) leave the store with their last entry. A generation that expires can only make
//! entries miss: an entry is valid only while every generation it was built under is still
//! there with the same value, and a missing generation is replaced by a fresh random one.
//!
//! # Leases
//!
//! A shared store also holds short *leases*, one per key at most, so that a miss on a hot key
//! runs one fetch in the whole fleet rather than one per instance: the cache takes the lease
//! before fetching ([`Store::try_lease`]) and gives it back once the entry is stored
//! ([`Store::release_lease`]); an instance that finds it taken waits briefly for the entry. A
//! lease decides nothing about correctness: an entry is served only under the usual validity
//! rule, and a lost, expired or stolen lease costs at most one more fetch or a bounded wait.

mod glob;
mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(any(feature = "redis", feature = "upstash"))]
mod scan;
#[cfg(feature = "upstash")]
mod upstash;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use smallvec::SmallVec;

pub(crate) use self::glob::glob_match;
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
#[cfg(feature = "upstash")]
pub use self::upstash::UpstashStore;
use crate::generation::Generation;

/// How much longer than the entries built under it a tag generation lives, so that it never
/// expires first for want of clock precision. Should it expire or be evicted anyway, readers
/// create a fresh random one and older entries just miss.
pub const GENERATION_MARGIN: Duration = Duration::from_secs(1);

/// How long a generation must live for entries that live `entry_ttl`.
pub fn generation_ttl(entry_ttl: Duration) -> Duration {
    entry_ttl.saturating_add(GENERATION_MARGIN)
}

/// An entry and the current generations of the tags it depends on, read together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Read {
    /// The stored bytes, if any.
    pub entry: Option<Bytes>,
    /// One per generation key asked for, in order; `None` where no generation exists yet.
    pub generations: SmallVec<[Option<Generation>; 6]>,
}

/// Proof of holding a key's lease: a random token, so that only its holder releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseToken(pub u64);

impl LeaseToken {
    /// A fresh random token.
    pub fn random() -> Self {
        LeaseToken(rand::random())
    }
}

/// What [`Store::try_lease`] got: the lease or not, and the entry as read just after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseAttempt {
    /// The lease, when nobody held it; `None` when another caller does.
    pub token: Option<LeaseToken>,
    /// The entry and generations, read after the lease was asked for.
    pub read: Read,
}

/// How much of a store a pattern covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Number of keys.
    pub keys: u64,
    /// Bytes they take, where the store can tell.
    pub bytes: Option<u64>,
}

/// A store operation failed. The cache treats every such failure the same way: it falls back to
/// the data source, so the kinds exist only for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unreachable or failing: {0}")]
    Backend(String),
    #[error("store operation timed out")]
    Timeout,
    /// The store refused our credentials: retrying will not help until they are fixed.
    #[error("store refused the credentials: {0}")]
    Unauthorized(String),
}

/// A key-value backend for [`Cache`](crate::Cache).
///
/// Patterns are Redis glob patterns (`*`, `?`, `[…]`, `\` escapes). Implementations must make a
/// write visible to every read that starts after it returned (linearizable single keys): the
/// no-stale-read guarantee rests on it.
pub trait Store: Send + Sync + 'static {
    /// Whether calls may block on a network; the cache bounds only those with its timeout.
    fn is_remote(&self) -> bool {
        true
    }

    /// Reads the entry under `key` and the generations under `generation_keys`, in one round trip.
    fn read(
        &self,
        key: &str,
        generation_keys: &[&str],
    ) -> impl Future<Output = Result<Read, StoreError>> + Send;

    /// Returns the current generation of each key, first creating a fresh random one for each key
    /// that has none (atomically per key: two callers creating at once get the same one). A
    /// created generation lives `ttl` (see [`generation_ttl`]): the lifetime of the entry about
    /// to be built under it. An existing one keeps at least its lifetime.
    fn ensure_generations(
        &self,
        generation_keys: &[&str],
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<Generation>, StoreError>> + Send;

    /// Gives each key that has a generation a fresh random one, which keeps the remaining
    /// lifetime of the old one: every entry built under the old one goes stale. A key without a
    /// generation is left without one: no entry can be valid under it (the next reader creates a
    /// fresh one), and tags nobody reads cost no space.
    fn bump_generations(
        &self,
        generation_keys: &[&str],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores `value` under `key` for `ttl`, and makes each generation under `generation_keys`
    /// (those the value was built under) live at least as long (see [`generation_ttl`]), in the
    /// same round trip. A generation that no longer exists is not created again: the entry then
    /// just misses.
    fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
        generation_keys: &[&str],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the lease on `key` for `ttl` unless someone holds it, then reads like
    /// [`Store::read`], in one round trip. The read comes after the lease: a holder stores its
    /// entry before it releases, so a caller that gets a lease just released also sees the
    /// entry, and need not fetch it again. The lease lives in the namespace of `key`, so
    /// clearing the namespace removes it.
    ///
    /// An in-process store grants every lease: only one process uses it, and the cache's
    /// single-flight already runs one fetch per key there.
    fn try_lease(
        &self,
        key: &str,
        generation_keys: &[&str],
        ttl: Duration,
    ) -> impl Future<Output = Result<LeaseAttempt, StoreError>> + Send;

    /// Gives back the lease on `key` if `token` still holds it (it may have expired and been
    /// taken by another caller, whose lease stays), in one round trip.
    fn release_lease(
        &self,
        key: &str,
        token: LeaseToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes `keys`; returns how many existed.
    fn delete(&self, keys: &[&str]) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` keys matching `pattern`, in no particular order.
    fn scan(
        &self,
        pattern: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Deletes every key matching `pattern`, in batches, without blocking the store; returns how
    /// many it deleted.
    fn delete_matching(
        &self,
        pattern: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many keys match `pattern` and, where the store can tell, how many bytes they take.
    fn usage(&self, pattern: &str) -> impl Future<Output = Result<Usage, StoreError>> + Send;
}

/// A store chosen at run time (from configuration), with no dynamic dispatch on the hot path.
pub enum AnyStore {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(RedisStore),
    #[cfg(feature = "upstash")]
    Upstash(UpstashStore),
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        Self::Memory(store)
    }
}

#[cfg(feature = "redis")]
impl From<RedisStore> for AnyStore {
    fn from(store: RedisStore) -> Self {
        Self::Redis(store)
    }
}

#[cfg(feature = "upstash")]
impl From<UpstashStore> for AnyStore {
    fn from(store: UpstashStore) -> Self {
        Self::Upstash(store)
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call,
            #[cfg(feature = "redis")]
            AnyStore::Redis($store) => $call,
            #[cfg(feature = "upstash")]
            AnyStore::Upstash($store) => $call,
        }
    };
}

impl AnyStore {
    /// Whether the store answers now: one round trip to a remote store (`PING`), nothing for the
    /// in-process one. For health checks; not bounded by the store timeout, so callers give it
    /// a limit of their own.
    ///
    /// # Errors
    /// What the store answered instead ([`StoreError::Unauthorized`] for refused credentials).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(_) => Ok(()),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.ping().await,
            #[cfg(feature = "upstash")]
            AnyStore::Upstash(store) => store.ping().await,
        }
    }
}

impl Store for AnyStore {
    fn is_remote(&self) -> bool {
        dispatch!(self, s => s.is_remote())
    }
    async fn read(&self, key: &str, generation_keys: &[&str]) -> Result<Read, StoreError> {
        dispatch!(self, s => s.read(key, generation_keys).await)
    }
    async fn ensure_generations(
        &self,
        keys: &[&str],
        ttl: Duration,
    ) -> Result<Vec<Generation>, StoreError> {
        dispatch!(self, s => s.ensure_generations(keys, ttl).await)
    }
    async fn bump_generations(&self, keys: &[&str]) -> Result<(), StoreError> {
        dispatch!(self, s => s.bump_generations(keys).await)
    }
    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
        generation_keys: &[&str],
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.set(key, value, ttl, generation_keys).await)
    }
    async fn try_lease(
        &self,
        key: &str,
        generation_keys: &[&str],
        ttl: Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        dispatch!(self, s => s.try_lease(key, generation_keys, ttl).await)
    }
    async fn release_lease(&self, key: &str, token: LeaseToken) -> Result<(), StoreError> {
        dispatch!(self, s => s.release_lease(key, token).await)
    }
    async fn delete(&self, keys: &[&str]) -> Result<u64, StoreError> {
        dispatch!(self, s => s.delete(keys).await)
    }
    async fn scan(&self, pattern: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.scan(pattern, limit).await)
    }
    async fn delete_matching(&self, pattern: &str) -> Result<u64, StoreError> {
        dispatch!(self, s => s.delete_matching(pattern).await)
    }
    async fn usage(&self, pattern: &str) -> Result<Usage, StoreError> {
        dispatch!(self, s => s.usage(pattern).await)
    }
}
