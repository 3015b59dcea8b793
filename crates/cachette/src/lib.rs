//! # cachette
//!
//! Cache-aside for async Rust services: readable injective keys, per-kind TTL policies, tag
//! invalidation that is race-free and O(1), single-flight against stampedes, graceful fallback
//! when the store is down, and stats.
//!
//! ```no_run
//! # async fn demo() -> Result<(), std::io::Error> {
//! use cachette::{Cache, MemoryStore, Namespace, Policy};
//!
//! let cache = Cache::builder(MemoryStore::default(), Namespace::new("demo", 1).unwrap()).build();
//! let key = cache.key("courses").param("page", 1).build();
//! let tags = [cache.tag("courses")];
//! let pages = Policy::new("pages", std::time::Duration::from_secs(300));
//! let page = cache
//!     .get_or_fetch(&key, &tags, &pages, || async {
//!         Ok::<_, std::io::Error>(vec!["Rust".to_string()])
//!     })
//!     .await?;
//! println!("{:?} ({})", page.value, page.outcome.as_str());
//! cache.invalidate_tags(&tags).await; // after the write commits
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//!
//! - Any stored value is a hit, `null`, `0`, `false`, `""` and `[]` included.
//! - Once [`Cache::invalidate_tags`] returns, no reader that starts afterwards gets a value
//!   fetched before it: entries carry the tag generations read before their fetch, and
//!   single-flight groups callers by key *and* those generations.
//! - The same holds across instances that each keep a local view (an in-process tier in front
//!   of a shared store, [`CacheBuilder::local_tier`], or an in-process store of their own), once
//!   they share a [`Bus`] ([`CacheBuilder::bus`]): `invalidate_tags` returns only after every
//!   live instance acknowledged it, or that instance's lease ran out; an instance serves its
//!   local view only while it holds a lease (it heard its own message, sent less than a lease
//!   ago, come back over the bus). Late, lost and reordered messages, dropped subscriptions and
//!   paused instances are covered: the argument is in [`fleet`]. A write pays one bus message
//!   and a round trip to each live instance (figures: `invalidation_wait` in
//!   [`FleetStatus`]); an instance that stopped answering costs writes up to one lease.
//! - A miss runs one fetch per key and generations in a process and, with a shared (remote)
//!   store, in the whole fleet: the fetching instance holds a short lease on the key in the
//!   store, and the others wait for its entry (at most [`Config::lease_wait`]), serving it only
//!   if it is valid under the generations read with it, or fetch themselves when the holder
//!   fails, the wait runs out or the store errs. It costs a miss two more store round trips:
//!   one to take the lease, one to release it.
//! - Generations are random, so a generation lost by the store never comes back.
//! - A generation (the namespace epoch's included) lives in the store as long as the
//!   longest-lived entry built under it, plus a second ([`store::GENERATION_MARGIN`]): created
//!   for the lifetime of the entry about to be built, extended by each entry stored under it,
//!   kept as it is by a bump. Tags nobody reads any more leave the store with their last entry.
//!   One that expires or is evicted early only makes entries miss, never an old one valid.
//! - Store failures, timeouts and corrupt entries fall back to the fetch; a circuit breaker skips
//!   a failing store for a while.
//! - `clear` and pattern deletion touch only this cache's namespace, and use `SCAN`, never `KEYS`.
//!
//! ## Layout
//!
//! - [`key`]: `Namespace`, `Key`, `Tag` — readable, injective, namespaced names.
//! - `generation`: [`Generation`], the random token a tag holds, and the [`Snapshot`] of them an
//!   entry is built under.
//! - `envelope`: the stored bytes — header (generations, times, flags) and payload.
//! - `policy`: [`Policy`], TTL with jitter, stale-if-error and stale-while-revalidate graces,
//!   fetch time limits.
//! - `refresh`: [`Cache::get_or_refresh`], reads that need not wait for their fetch
//!   (stale-while-revalidate, soft and hard fetch timeouts).
//! - [`store`]: the `Store` trait; `MemoryStore` (moka), `RedisStore` (redis-rs),
//!   `UpstashStore` (Upstash's REST API, reqwest; feature `upstash`), `AnyStore`.
//! - `cache`: `Cache` — `get_or_fetch` (and `_raw`, `_with`), invalidation, fallback,
//!   administration.
//! - `codec`: [`Codec`], how a value becomes a payload: [`Json`] (serde), [`Raw`] (bytes), or a
//!   layout of the caller's own.
//! - `flight`: single-flight of concurrent misses in a process (across processes: leases, in
//!   [`store`] and `cache`).
//! - `pending`: invalidations that failed and are being retried ([`PendingInvalidations`]).
//! - `latency`: how long store calls take ([`StoreCallLatency`]).
//! - `breaker`: the circuit breaker in front of the store.
//! - `stats`: counters, overall and per key prefix ([`StatsSnapshot`]).
//! - [`bus`]: the `Bus` trait between instances; `LocalBus` (in-process), `RedisBus`.
//! - [`fleet`]: membership, leases and acknowledged invalidation over a bus; the argument for
//!   the guarantee across instances.
//! - `tier`: the in-process tier (L1) in front of a shared store.

mod breaker;
pub mod bus;
mod cache;
mod codec;
mod envelope;
pub mod fleet;
mod flight;
mod generation;
pub mod key;
mod latency;
mod pending;
mod policy;
mod refresh;
mod stats;
pub mod store;
mod tier;

/// Parts of the crate that are not its API, for the fuzz targets in `fuzz/` and this crate's own
/// tests (feature `internals`). They may change or go in any release.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::envelope::{decode, encode};
    #[cfg(feature = "redis")]
    pub use crate::store::redis::RELEASE_LEASE_SHA;
}

#[cfg(feature = "redis")]
pub use bus::RedisBus;
pub use bus::{Bus, BusError, Heard, LocalBus};
pub use cache::{Cache, CacheBuilder, Config, Fetched, Invalidation};
pub use codec::{Codec, Json, Raw};
pub use fleet::{FleetConfig, FleetStatus, MemberStatus, WaitSummary};
pub use generation::{Generation, Snapshot};
pub use key::{Key, KeyBuilder, KeyError, Namespace, Tag};
pub use latency::{STORE_CALL_BUCKETS, StoreCallLatency};
pub use pending::PendingInvalidations;
pub use policy::Policy;
pub use refresh::FetchTimedOut;
pub use stats::{Lookups, Outcome, StatsSnapshot};
#[cfg(feature = "redis")]
pub use store::RedisStore;
#[cfg(feature = "upstash")]
pub use store::UpstashStore;
pub use store::{AnyStore, MemoryStore, Store, StoreError, Usage};
