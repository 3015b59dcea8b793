//! The cache-aside engine.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use smallvec::SmallVec;
use tracing::warn;

use crate::breaker::Breaker;
use crate::bus::{Bus, Heard};
use crate::codec::{Codec, Json, Raw};
use crate::envelope;
use crate::fleet::{Fleet, FleetConfig, FleetStatus, Forget};
use crate::flight::{self, Flights, Leader, Role};
use crate::generation::Snapshot;
use crate::key::{Key, KeyBuilder, Namespace, Tag};
use crate::latency::{Latencies, StoreCallLatency};
use crate::pending::{Pending, PendingInvalidations};
use crate::policy::Policy;
use crate::stats::{Outcome, Stats, StatsSnapshot};
use crate::store::{AnyStore, LeaseToken, Store, StoreError, Usage};
use crate::tier::Tier;

/// A payload and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched<T> {
    pub value: T,
    pub outcome: Outcome,
}

/// Whether an invalidation reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// The store has it, and so has every live instance of the fleet (if the cache has a bus):
    /// every reader from now on, in every instance, misses the old entries.
    Applied,
    /// The store or the bus could not be reached. This instance serves nothing from the store
    /// until a retry gets through (a background task retries with backoff); other instances can
    /// still serve the old entries until then. The retry that gets through is announced on the
    /// bus, so they forget what they read from the store meanwhile.
    Deferred,
}

/// How often a miss waiting for another instance's fetch looks for its entry in the store.
const LEASE_POLL: Duration = Duration::from_millis(5);

/// Tunables. The defaults suit a store on the same network.
#[derive(Debug, Clone)]
pub struct Config {
    /// Longest wait for one store call on the request path before falling back to the source.
    pub store_timeout: Duration,
    /// Longest wait for an administrative call (clear, pattern deletion, usage).
    pub admin_timeout: Duration,
    /// Consecutive store failures that open the circuit breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe is let through.
    pub open_for: Duration,
    /// Payloads larger than this are served but not stored.
    pub max_value_bytes: usize,
    /// Payloads larger than this are stored lz4-compressed in a remote store (when that makes
    /// them smaller), to save network transfer and the store's memory. An in-process store
    /// keeps every payload as it is: a hit is then a reference to the stored bytes, where a
    /// compressed one would be decompressed on every hit.
    pub compress_above: usize,
    /// Least time between two retries of failed invalidations.
    pub retry_interval: Duration,
    /// With a remote store, the longest a miss waits for the entry of another instance that
    /// holds the key's lease (is fetching it) before fetching itself, give or take one store
    /// call. Zero takes no lease: every instance then fetches its own misses.
    pub lease_wait: Duration,
    /// How long a key's lease lasts unless its holder releases it: a holder that died keeps
    /// it this long, and the instances that find it taken wait `lease_wait` each meanwhile. A
    /// fetch that takes longer loses it, and another instance may fetch too.
    pub lease_ttl: Duration,
    /// When false, every lookup is a bypass and nothing is stored. Invalidations still reach the
    /// store, so instances sharing it with this one never serve what this one's writes changed.
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store_timeout: Duration::from_millis(250),
            admin_timeout: Duration::from_secs(30),
            failure_threshold: 5,
            open_for: Duration::from_secs(2),
            max_value_bytes: 1 << 20,
            compress_above: 16 << 10,
            retry_interval: Duration::from_millis(200),
            lease_wait: Duration::from_millis(200),
            lease_ttl: Duration::from_secs(2),
            enabled: true,
        }
    }
}

/// Builds a [`Cache`].
pub struct CacheBuilder<S> {
    store: S,
    namespace: Namespace,
    config: Config,
    tier_bytes: Option<u64>,
    bus: Option<(Arc<dyn Bus>, FleetConfig)>,
}

impl<S: Store> CacheBuilder<S> {
    /// Sets every tunable at once.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the store call timeout on the request path.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// Turns the cache off (every lookup a bypass; invalidations still reach the store) or on.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.config.enabled = enabled;
        self
    }

    /// Keeps an in-process tier of at most `max_bytes` in front of a remote store: a hit there
    /// makes no store call. Alone it suits a single instance; instances sharing the store need
    /// a [bus](CacheBuilder::bus) too, or one would serve what another's write changed. Ignored
    /// for an in-process store, which is its own local tier.
    pub fn local_tier(mut self, max_bytes: u64) -> Self {
        self.tier_bytes = Some(max_bytes);
        self
    }

    /// Joins the fleet of instances that share this namespace over `bus`: invalidations are
    /// announced to every instance and acknowledged (see [`Cache::invalidate_tags`]), and
    /// this instance's local view (its local tier, or its in-process store) serves only while
    /// it holds a lease from the bus. Makes instances that each keep an in-process store, or a
    /// local tier, agree as one.
    pub fn bus(mut self, bus: Arc<dyn Bus>, config: FleetConfig) -> Self {
        self.bus = Some((bus, config));
        self
    }

    /// The cache.
    ///
    /// # Panics
    /// With a bus, outside a Tokio runtime: the fleet runs two background tasks.
    pub fn build(self) -> Cache<S> {
        let breaker = Breaker::new(self.config.failure_threshold, self.config.open_for);
        let remote = self.store.is_remote();
        let fleet = self
            .bus
            .map(|(bus, config)| Fleet::new(bus, &self.namespace, config));
        let cache = Cache {
            inner: Arc::new(Inner {
                remote,
                tier: self.tier_bytes.filter(|_| remote).map(Tier::new),
                fleet,
                store: self.store,
                namespace: self.namespace,
                config: self.config,
                stats: Stats::default(),
                latencies: Latencies::default(),
                flights: Flights::default(),
                breaker,
                pending: Pending::default(),
                retrying: AtomicBool::new(false),
            }),
        };
        if cache.inner.fleet.is_some() {
            cache.start_fleet();
        }
        cache
    }
}

/// A cache-aside layer over a [`Store`]. Cloning is cheap and shares everything.
///
/// Correctness rests on tag generations: every entry records the generations of its tags (and
/// of the namespace epoch) as they were read *before* its value was fetched, and is valid only
/// while they all still match. Invalidating a tag writes it a fresh random generation, one store
/// operation whatever the number of entries.
pub struct Cache<S = AnyStore> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Cache<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S> {
    store: S,
    /// Copied from the store once: local stores are not put behind a timeout.
    remote: bool,
    /// The in-process tier in front of a remote store, if asked for.
    tier: Option<Tier>,
    /// Membership of the instances sharing the namespace, with a bus.
    fleet: Option<Fleet>,
    namespace: Namespace,
    config: Config,
    stats: Stats,
    /// Durations of store calls, beside `stats` since they are a histogram, not counters.
    latencies: Latencies,
    flights: Flights,
    breaker: Breaker,
    pending: Pending,
    /// Whether the background retry of pending invalidations is running.
    retrying: AtomicBool,
}

/// Defers an invalidation that did not complete: dropped armed (store failure, or the caller's
/// future cancelled mid-bump), it records the tags as pending.
struct DeferOnDrop<'a, S: Store> {
    cache: &'a Cache<S>,
    tags: Option<&'a [Tag]>,
}

impl<S: Store> DeferOnDrop<'_, S> {
    fn disarm(mut self) {
        self.tags = None;
    }
}

impl<S: Store> Drop for DeferOnDrop<'_, S> {
    fn drop(&mut self) {
        if let Some(tags) = self.tags.take() {
            self.cache.defer(tags);
        }
    }
}

/// The entry one lookup is about: where it lives, what it is built from, how long it lives.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub(crate) key: &'a Key,
    pub(crate) tags: &'a [Tag],
    pub(crate) policy: &'a Policy,
}

/// What the store said about a key before any fetch.
pub(crate) enum Lookup {
    Hit { payload: Bytes, snapshot: Snapshot },
    Miss(Missed),
    Bypass,
}

/// What a miss is fetched under.
pub(crate) struct Missed {
    /// The generations read with the entry: the fetched value is stored under them.
    pub(crate) snapshot: Snapshot,
    /// The local tier's counter before the store read, for keeping the fetched value there.
    pub(crate) learned: u64,
    /// A valid entry past its TTL, whole: its payload is extracted (and decompressed) only
    /// if it is served.
    pub(crate) stale: Option<Expired>,
}

/// A valid entry past its TTL, as stored.
#[derive(Clone)]
pub(crate) struct Expired {
    bytes: Bytes,
    fresh_until_ms: u64,
}

impl Expired {
    /// Whether it expired less than `grace` ago.
    pub(crate) fn within(&self, grace: Duration) -> bool {
        now_ms() < self.fresh_until_ms.saturating_add(millis(grace))
    }
}

/// What an entry read from the store is worth, judged against the generations read with it.
enum Judged {
    /// Valid and fresh: its payload (decompressed), and until when it is fresh.
    Fresh {
        payload: Bytes,
        fresh_until_ms: u64,
    },
    /// Valid, but past its TTL (since `fresh_until_ms`).
    Expired {
        fresh_until_ms: u64,
    },
    /// Built under generations that have changed since.
    Superseded,
    Unreadable(envelope::CorruptEntry),
}

/// What a miss on a shared store came to before fetching.
enum Leased<S: Store> {
    /// The instance holding the key's lease stored its entry: the payload.
    Served(Bytes),
    /// Fetch, holding the lease or not (the wait ran out, the store failed).
    Fetch(Option<HeldLease<S>>),
}

/// A key's lease in the shared store, held by this caller while it fetches. Released when
/// the entry is stored or the fetch failed; dropped unreleased (the caller was cancelled, or
/// the entry turned out to be there already), it is released in the background, so that other
/// instances need not wait it out.
struct HeldLease<S: Store> {
    cache: Cache<S>,
    key: String,
    token: Option<LeaseToken>,
}

impl<S: Store> HeldLease<S> {
    async fn release(mut self) {
        if let Some(token) = self.token.take() {
            let cache = &self.cache;
            let _ = cache
                .call(cache.inner.store.release_lease(&self.key, token))
                .await;
        }
    }
}

impl<S: Store> Drop for HeldLease<S> {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        // Without a runtime the lease just expires.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.cache.clone();
        let key = std::mem::take(&mut self.key);
        runtime.spawn(async move {
            let _ = cache
                .call(cache.inner.store.release_lease(&key, token))
                .await;
        });
    }
}

impl<S: Store> Cache<S> {
    /// Starts a cache over `store`, writing under `namespace`.
    pub fn builder(store: S, namespace: Namespace) -> CacheBuilder<S> {
        CacheBuilder {
            store,
            namespace,
            config: Config::default(),
            tier_bytes: None,
            bus: None,
        }
    }

    /// The namespace every key and tag of this cache lives under.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.namespace
    }

    /// Starts a key under this cache's namespace; see [`Namespace::key`].
    pub fn key(&self, prefix: &str) -> KeyBuilder {
        self.inner.namespace.key(prefix)
    }

    /// A tag under this cache's namespace; see [`Namespace::tag`].
    pub fn tag(&self, name: &str) -> Tag {
        self.inner.namespace.tag(name)
    }

    /// The store itself.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The tunables in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Returns the payload cached under `key`, or runs `fetch`, caches its payload (under `tags`,
    /// for `policy`'s TTL) and returns it. The payload is handed back exactly as stored, so an
    /// HTTP route can send cached JSON without decoding it.
    ///
    /// Any payload is a hit, empty or not. An entry is a hit only while the generations of
    /// `tags` are those it was built under. Store failures and timeouts never reach the caller:
    /// the lookup becomes a [`Outcome::Bypass`] and `fetch` answers.
    ///
    /// # Concurrent calls on the same key
    /// Concurrent misses on one key that read the same tag generations run `fetch` once; the
    /// others wait for its payload. A caller that read newer generations (an invalidation landed
    /// in between) never joins a fetch started under older ones. If the running fetch fails or
    /// is cancelled, each waiting caller runs its own.
    ///
    /// With a remote store, that holds across the instances sharing it: before fetching, a
    /// process takes a short lease on the key in the store ([`Config::lease_ttl`]). A process
    /// that finds the lease taken looks for the holder's entry every few milliseconds, for up
    /// to [`Config::lease_wait`], and serves it as a [`Outcome::Miss`] (counted in
    /// [`StatsSnapshot::lease_waits`]) only if it is valid and fresh under the generations read
    /// with it, exactly as a lookup would: never a value older than an invalidation that
    /// returned before this call started. When the lease is released without an entry (the
    /// holder's fetch failed), it takes the lease and fetches; when the wait runs out, or the
    /// store fails, it fetches without a lease. The cost: on a miss, one more store round trip
    /// to take the lease (it reads the entry too), and one to release it after storing.
    ///
    /// # Errors
    /// The error of `fetch`, which is never cached. When a never-invalidated entry past its TTL
    /// is still kept, it is served as [`Outcome::Stale`] instead.
    pub async fn get_or_fetch_raw<F, Fut, E>(
        &self,
        key: &Key,
        tags: &[Tag],
        policy: &Policy,
        fetch: F,
    ) -> Result<Fetched<Bytes>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        self.get_or_fetch_with(key, tags, policy, &Raw, fetch).await
    }

    /// Like [`Cache::get_or_fetch_raw`] for a serde type, stored as JSON. A stored payload that
    /// does not deserialize into `T` is a miss and is deleted.
    ///
    /// # Errors
    /// As [`Cache::get_or_fetch_raw`].
    pub async fn get_or_fetch<T, F, Fut, E>(
        &self,
        key: &Key,
        tags: &[Tag],
        policy: &Policy,
        fetch: F,
    ) -> Result<Fetched<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_fetch_with(key, tags, policy, &Json, fetch)
            .await
    }

    /// Like [`Cache::get_or_fetch_raw`] for a value stored in a layout of the caller's
    /// choosing. A stored payload that `codec` cannot decode is a miss and is deleted.
    ///
    /// # Errors
    /// As [`Cache::get_or_fetch_raw`].
    pub async fn get_or_fetch_with<T, C, F, Fut, E>(
        &self,
        key: &Key,
        tags: &[Tag],
        policy: &Policy,
        codec: &C,
        fetch: F,
    ) -> Result<Fetched<T>, E>
    where
        C: Codec<T>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(hit) = self.local_fetched(key, codec) {
            return Ok(hit);
        }
        let entry = Entry { key, tags, policy };
        let result = match self.lookup(entry).await {
            Lookup::Hit { payload, snapshot } => match codec.decode(&payload) {
                Some(value) => Ok(Fetched {
                    value,
                    outcome: Outcome::Hit,
                }),
                None => {
                    self.discard_corrupt(key).await;
                    // Learned now: a corrupt entry is rare, and a later counter is the safe side.
                    let learned = self.tier_counter();
                    let missed = Missed {
                        snapshot,
                        learned,
                        stale: None,
                    };
                    self.fill(entry, missed, codec, fetch).await
                }
            },
            Lookup::Miss(missed) => self.fill(entry, missed, codec, fetch).await,
            Lookup::Bypass => fetch().await.map(|value| Fetched {
                value,
                outcome: Outcome::Bypass,
            }),
        };
        if let Ok(fetched) = &result {
            self.record(key, fetched.outcome);
        }
        result
    }

    /// A hit of the local tier, decoded and counted.
    pub(crate) fn local_fetched<T>(&self, key: &Key, codec: &impl Codec<T>) -> Option<Fetched<T>> {
        let value = codec.decode(&self.local_hit(key)?)?;
        self.inner.stats.local_hit();
        self.record(key, Outcome::Hit);
        Some(Fetched {
            value,
            outcome: Outcome::Hit,
        })
    }

    /// Counts a lookup's outcome.
    pub(crate) fn record(&self, key: &Key, outcome: Outcome) {
        self.inner.stats.record(key.prefix(), outcome);
    }

    pub(crate) fn flights(&self) -> &Flights {
        &self.inner.flights
    }

    /// The keys of the generations an entry under `tags` is built under: the namespace epoch
    /// first, then the tags, in the order of a [`Snapshot`].
    fn generation_keys<'a>(&'a self, tags: &'a [Tag]) -> SmallVec<[&'a str; 8]> {
        std::iter::once(self.inner.namespace.epoch())
            .chain(tags)
            .map(Tag::as_str)
            .collect()
    }

    /// Reads the entry and the generations of its tags, and judges the entry.
    pub(crate) async fn lookup(&self, entry: Entry<'_>) -> Lookup {
        let Entry { key, tags, policy } = entry;
        let inner = &*self.inner;
        if !inner.config.enabled || !self.flush_pending().await || !inner.breaker.allows() {
            return Lookup::Bypass;
        }
        if inner
            .fleet
            .as_ref()
            .is_some_and(|fleet| !inner.remote && !fleet.is_live())
        {
            // An in-process store is this instance's own view: without a lease it may have
            // missed another instance's invalidation.
            return Lookup::Bypass;
        }
        let learned = self.tier_counter();
        let generation_keys = self.generation_keys(tags);
        let read = match self
            .call(inner.store.read(key.as_str(), &generation_keys))
            .await
        {
            Ok(read) => read,
            Err(_) => return Lookup::Bypass,
        };
        let current: Option<Snapshot> = read.generations.iter().copied().collect();
        let mut stale = None;
        if let Some(bytes) = &read.entry {
            match self.judge(bytes, current.as_ref()) {
                Judged::Fresh {
                    payload,
                    fresh_until_ms,
                } => {
                    self.keep_local(entry, &payload, learned, fresh_until_ms);
                    return Lookup::Hit {
                        payload,
                        snapshot: current.unwrap_or_default(),
                    };
                }
                // Past its TTL: kept whole, in case it is served stale.
                Judged::Expired { fresh_until_ms } => {
                    stale = Some(Expired {
                        bytes: bytes.clone(),
                        fresh_until_ms,
                    });
                }
                Judged::Superseded => {}
                Judged::Unreadable(error) => {
                    warn!(key = key.as_str(), %error, "deleting unreadable cache entry");
                    self.discard_corrupt(key).await;
                }
            }
        }
        let snapshot = match current {
            Some(current) => current,
            // Never build under "no generation": create random ones first (invariant 4), for as
            // long as the entry about to be built may live (storing it extends them to that).
            None => match self
                .call(
                    inner
                        .store
                        .ensure_generations(&generation_keys, policy.longest_life()),
                )
                .await
            {
                Ok(generations) => generations.into_iter().collect(),
                Err(_) => return Lookup::Bypass,
            },
        };
        Lookup::Miss(Missed {
            snapshot,
            learned,
            stale,
        })
    }

    /// Judges stored bytes against `current`, the generations read in the same round trip
    /// (`None` where one is missing: then no entry is valid).
    fn judge(&self, bytes: &Bytes, current: Option<&Snapshot>) -> Judged {
        let judged = envelope::decode(bytes).and_then(|envelope| {
            let valid = current.is_some_and(|c| envelope.generations.matches(c));
            if !valid {
                return Ok(Judged::Superseded);
            }
            if now_ms() >= envelope.fresh_until_ms {
                return Ok(Judged::Expired {
                    fresh_until_ms: envelope.fresh_until_ms,
                });
            }
            // Only a hit's payload is worth extracting: it may need decompressing.
            let payload = envelope.payload(bytes, self.inner.config.max_value_bytes)?;
            Ok(Judged::Fresh {
                payload,
                fresh_until_ms: envelope.fresh_until_ms,
            })
        });
        judged.unwrap_or_else(Judged::Unreadable)
    }

    /// The payload under `key` in the local tier, when there is one, this instance holds a
    /// lease (if it has a bus) and nothing keeps it from the store.
    fn local_hit(&self, key: &Key) -> Option<Bytes> {
        let inner = &*self.inner;
        let tier = inner.tier.as_ref()?;
        if !inner.config.enabled
            || inner.fleet.as_ref().is_some_and(|fleet| !fleet.is_live())
            || inner.pending.any()
        {
            return None;
        }
        tier.get(key.as_str(), now_ms())
    }

    /// The local tier's counter, to read before a store read whose result may be kept there.
    pub(crate) fn tier_counter(&self) -> u64 {
        self.inner.tier.as_ref().map_or(0, Tier::counter)
    }

    /// Keeps a payload read or built under current generations in the local tier.
    fn keep_local(&self, entry: Entry<'_>, payload: &Bytes, learned: u64, fresh_until_ms: u64) {
        if let Some(tier) = &self.inner.tier {
            let tags: Arc<[Tag]> = std::iter::once(self.inner.namespace.epoch())
                .chain(entry.tags)
                .cloned()
                .collect();
            tier.put(
                entry.key.as_str(),
                payload.clone(),
                tags,
                learned,
                fresh_until_ms,
            );
        }
    }

    /// Runs the fetch for a miss (once per key and snapshot in this process) and stores its value.
    pub(crate) async fn fill<T, F, Fut, E>(
        &self,
        entry: Entry<'_>,
        missed: Missed,
        codec: &impl Codec<T>,
        fetch: F,
    ) -> Result<Fetched<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let leader = match self
            .inner
            .flights
            .join(entry.key.as_str(), &missed.snapshot)
        {
            Role::Leader(leader) => leader,
            Role::Follower(receiver) => {
                if let Some(value) = flight::wait(receiver)
                    .await
                    .as_ref()
                    .and_then(|payload| codec.decode(payload))
                {
                    self.inner.stats.coalesced();
                    return Ok(Fetched {
                        value,
                        outcome: Outcome::Miss,
                    });
                }
                // The leader failed or was cancelled: fetch without it.
                return self.fetched_or_stale(fetch().await, entry.policy, missed.stale, codec);
            }
        };
        self.lead(leader, entry, missed, codec, fetch).await
    }

    /// Runs the fetch of a miss as the leader of its flight, and stores its value.
    pub(crate) async fn lead<T, F, Fut, E>(
        &self,
        leader: Leader,
        entry: Entry<'_>,
        missed: Missed,
        codec: &impl Codec<T>,
        fetch: F,
    ) -> Result<Fetched<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let held = if self.shares_fetches() {
            match self.lease_or_wait(entry).await {
                Leased::Served(payload) => {
                    if let Some(value) = codec.decode(&payload) {
                        leader.publish(payload);
                        self.inner.stats.lease_wait();
                        return Ok(Fetched {
                            value,
                            outcome: Outcome::Miss,
                        });
                    }
                    None
                }
                Leased::Fetch(held) => held,
            }
        } else {
            None
        };
        let value = match fetch().await {
            Ok(value) => value,
            Err(error) => {
                // At once: an instance waiting for this fetch takes the lease and runs its own.
                if let Some(held) = held {
                    held.release().await;
                }
                return self.fetched_or_stale(Err(error), entry.policy, missed.stale, codec);
            }
        };
        if let Some(payload) = codec.encode(&value) {
            leader.publish(payload.clone());
            self.store_entry(entry, &missed.snapshot, missed.learned, payload)
                .await;
        }
        // After the entry: whoever takes the lease next reads it (see `Store::try_lease`).
        if let Some(held) = held {
            held.release().await;
        }
        // Only now leave the flight: a caller arriving meanwhile waits instead of fetching again.
        drop(leader);
        Ok(Fetched {
            value,
            outcome: Outcome::Miss,
        })
    }

    /// Whether misses take a lease in the store so that one instance of the fleet fetches.
    fn shares_fetches(&self) -> bool {
        self.inner.remote && !self.inner.config.lease_wait.is_zero()
    }

    /// For this process's fetch of a miss: takes the key's lease in the shared store, or, while
    /// another instance holds it, waits for the entry that instance stores, up to
    /// `lease_wait`. Each attempt reads the entry in the same round trip as the lease, and
    /// serves it only when it is valid and fresh under the generations read with it: those are
    /// never older than the snapshot of this miss, so neither is the entry.
    async fn lease_or_wait(&self, entry: Entry<'_>) -> Leased<S> {
        let inner = &*self.inner;
        let key = entry.key.as_str();
        let generation_keys = self.generation_keys(entry.tags);
        let deadline = Instant::now() + inner.config.lease_wait;
        loop {
            // As for a lookup: while an invalidation of ours is pending, the store is behind.
            if inner.pending.any() || !inner.breaker.allows() {
                return Leased::Fetch(None);
            }
            let learned = self.tier_counter();
            let Ok(attempt) = self
                .call(
                    inner
                        .store
                        .try_lease(key, &generation_keys, inner.config.lease_ttl),
                )
                .await
            else {
                return Leased::Fetch(None);
            };
            let held = attempt.token.map(|token| HeldLease {
                cache: self.clone(),
                key: key.to_owned(),
                token: Some(token),
            });
            let current: Option<Snapshot> = attempt.read.generations.iter().copied().collect();
            if let Some(bytes) = &attempt.read.entry
                && let Judged::Fresh {
                    payload,
                    fresh_until_ms,
                } = self.judge(bytes, current.as_ref())
            {
                // The holder's entry (a lease got just now was released after it was stored).
                self.keep_local(entry, &payload, learned, fresh_until_ms);
                return Leased::Served(payload);
            }
            if held.is_some() {
                return Leased::Fetch(held);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Leased::Fetch(None);
            }
            tokio::time::sleep(LEASE_POLL.min(left)).await;
        }
    }

    /// A fetch's value, or when it failed, `stale` if it expired within the policy's
    /// stale-if-error grace.
    fn fetched_or_stale<T, E>(
        &self,
        fetched: Result<T, E>,
        policy: &Policy,
        stale: Option<Expired>,
        codec: &impl Codec<T>,
    ) -> Result<Fetched<T>, E> {
        match fetched {
            Ok(value) => Ok(Fetched {
                value,
                outcome: Outcome::Miss,
            }),
            Err(error) => match stale
                .filter(|stale| stale.within(policy.stale_if_error))
                .and_then(|stale| self.stale_value(&stale, codec))
            {
                Some(value) => Ok(Fetched {
                    value,
                    outcome: Outcome::Stale,
                }),
                None => Err(error),
            },
        }
    }

    /// The value of a valid entry past its TTL, if it is readable.
    pub(crate) fn stale_value<T>(&self, stale: &Expired, codec: &impl Codec<T>) -> Option<T> {
        let entry = &stale.bytes;
        let payload = envelope::decode(entry)
            .and_then(|envelope| envelope.payload(entry, self.inner.config.max_value_bytes));
        match payload {
            Ok(payload) => codec.decode(&payload),
            Err(error) => {
                warn!(%error, "an unreadable cache entry past its TTL is not served");
                None
            }
        }
    }

    async fn store_entry(
        &self,
        entry: Entry<'_>,
        snapshot: &Snapshot,
        learned: u64,
        payload: Bytes,
    ) {
        let Entry { key, tags, policy } = entry;
        let inner = &*self.inner;
        if payload.len() > inner.config.max_value_bytes {
            inner.stats.oversized();
            return;
        }
        // While an invalidation is pending, the snapshot may be older than a committed write.
        if inner.pending.any() || !inner.breaker.allows() {
            return;
        }
        let fresh_for = policy.fresh_for();
        let now = now_ms();
        let fresh_until_ms = now + millis(fresh_for);
        let bytes = envelope::encode(
            &payload,
            snapshot,
            now,
            fresh_until_ms,
            if inner.remote {
                inner.config.compress_above
            } else {
                usize::MAX
            },
        );
        let ttl = fresh_for + policy.grace();
        // The snapshot's generations must outlive the entry, or it would miss early.
        let generation_keys = self.generation_keys(tags);
        if self
            .call(inner.store.set(key.as_str(), bytes, ttl, &generation_keys))
            .await
            .is_ok()
        {
            inner.stats.set();
            // Only once the store has it: the tier never holds what the store refused.
            self.keep_local(entry, &payload, learned, fresh_until_ms);
        }
    }

    pub(crate) async fn discard_corrupt(&self, key: &Key) {
        self.inner.stats.corrupt();
        let _ = self.call(self.inner.store.delete(&[key.as_str()])).await;
    }

    /// Deletes the entry of `key`, found unusable by a caller after its codec decoded it (a
    /// codec may check parts of a value only when they are used). Counted as a corrupt entry;
    /// the next read misses. A store failure is ignored: the entry then stays until it expires.
    pub async fn discard(&self, key: &Key) {
        if self.inner.config.enabled && self.inner.breaker.allows() {
            self.discard_corrupt(key).await;
        }
    }

    /// Makes every entry that depends on any of `tags` stale, for every reader that starts after
    /// this returns. One store operation per tag, whatever the number of entries.
    ///
    /// Call it after the write it covers has committed.
    ///
    /// # Concurrent calls on the same key
    /// A fetch that began before this call and stores its value afterwards stores it under the
    /// old generations: no later reader takes it. A reader that starts afterwards never joins a
    /// fetch begun before.
    ///
    /// # Errors
    /// None: when the store cannot be reached the invalidation is kept and retried (see
    /// [`Invalidation::Deferred`]); meanwhile this instance serves nothing from the store.
    pub async fn invalidate_tags(&self, tags: &[Tag]) -> Invalidation {
        let inner = &*self.inner;
        // Even when this instance reads nothing from the store, others sharing it may: the
        // invalidation is made all the same.
        if tags.is_empty() {
            return Invalidation::Applied;
        }
        inner.stats.invalidated(tags.len());
        let keys: SmallVec<[&str; 8]> = tags.iter().map(Tag::as_str).collect();
        // Should the caller be cancelled while the bump is under way, the guard records it.
        let guard = DeferOnDrop {
            cache: self,
            tags: Some(tags),
        };
        let stored =
            inner.breaker.allows() && self.call(inner.store.bump_generations(&keys)).await.is_ok();
        if stored {
            guard.disarm();
        } else {
            drop(guard);
        }
        // After the store: a read of this instance that starts now finds the new generations
        // there, so what it keeps in the tier is valid.
        if let Some(tier) = &inner.tier {
            tier.forget(keys.iter().copied());
        }
        let announced = match &inner.fleet {
            Some(fleet) => fleet
                .announce(keys.iter().map(|key| (*key).to_owned()).collect())
                .await
                .is_ok(),
            None => true,
        };
        if stored && announced {
            Invalidation::Applied
        } else {
            Invalidation::Deferred
        }
    }

    /// Starts the fleet's two tasks: one hears the bus and applies what it hears to the local
    /// view, one publishes this instance's messages. Both stop once the cache is dropped.
    fn start_fleet(&self) {
        let Some(fleet) = &self.inner.fleet else {
            return;
        };
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(fleet.bus().listen(sender));
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let cache = Cache { inner };
                cache.hear_all(first, &mut receiver).await;
            }
        });
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let Some(fleet) = &inner.fleet else {
                    return;
                };
                fleet.publish_next().await;
            }
        });
    }

    /// Applies `first` and whatever else is already waiting, then acknowledges them in one
    /// message.
    async fn hear_all(&self, first: Heard, receiver: &mut tokio::sync::mpsc::Receiver<Heard>) {
        let Some(fleet) = &self.inner.fleet else {
            return;
        };
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(heard) = next {
            let (forget, ack) = fleet.hear(heard);
            self.forget_locally(forget).await;
            acks.extend(ack);
            next = if acks.len() < 256 {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        fleet.acknowledge(acks);
    }

    /// Makes this instance's local view (its tier, or its in-process store) forget what another
    /// instance invalidated, or everything when messages may have been missed.
    async fn forget_locally(&self, forget: Forget) {
        let inner = &*self.inner;
        let epoch = [inner.namespace.epoch().as_str()];
        let keys: SmallVec<[&str; 8]> = match &forget {
            Forget::Nothing => return,
            Forget::Tags(tags) => tags.iter().map(String::as_str).collect(),
            Forget::All => epoch.into_iter().collect(),
        };
        if let Some(tier) = &inner.tier {
            match forget {
                Forget::All => tier.forget_all(),
                _ => tier.forget(keys.iter().copied()),
            }
        } else if !inner.remote {
            // An in-process store cannot fail; the epoch bump makes every entry miss.
            let _ = inner.store.bump_generations(&keys).await;
        }
    }

    /// Waits, at most `limit`, until this instance holds a lease on the bus and has listened
    /// long enough to know every live member; returns whether it does (always true without a
    /// bus). Until then its local view is not served and its writes wait out a lease: call it
    /// before taking traffic.
    pub async fn until_settled(&self, limit: Duration) -> bool {
        let Some(fleet) = &self.inner.fleet else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if fleet.is_live() && fleet.settled_at(Instant::now()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Tells the fleet this instance leaves, so writers stop waiting for its acknowledgements.
    /// Call it when shutting down. Should the cache announce something afterwards, the others
    /// hear it and count it in again.
    pub async fn leave(&self) {
        if let Some(fleet) = &self.inner.fleet {
            fleet.leave().await;
        }
    }

    /// This instance's view of the fleet, when the cache has a bus.
    pub fn fleet_status(&self) -> Option<FleetStatus> {
        self.inner.fleet.as_ref().map(Fleet::status)
    }

    /// Entries in the local tier and the bytes they weigh, when the cache has one.
    pub fn local_tier_usage(&self) -> Option<Usage> {
        self.inner.tier.as_ref().map(|tier| {
            let (keys, bytes) = tier.usage();
            Usage {
                keys,
                bytes: Some(bytes),
            }
        })
    }

    /// Records `tags` as pending and makes sure a background task retries them.
    fn defer(&self, tags: &[Tag]) {
        self.inner.pending.add(tags, self.inner.namespace.epoch());
        warn!(
            tags = tags.len(),
            "cache invalidation deferred: store unreachable"
        );
        self.spawn_retry();
    }

    /// Starts the task that retries pending invalidations with backoff until none is left,
    /// unless one runs already. Without a Tokio runtime, retries happen on lookups only.
    fn spawn_retry(&self) {
        if self.inner.retrying.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.retrying.store(false, Ordering::Release);
            return;
        };
        let cache = self.clone();
        runtime.spawn(async move {
            let mut delay = cache
                .inner
                .config
                .retry_interval
                .max(Duration::from_millis(50));
            while !cache.flush_pending_after(delay).await {
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            cache.inner.retrying.store(false, Ordering::Release);
            // A failure recorded after the last flush saw the flag still set: look once more.
            if cache.inner.pending.any() {
                cache.spawn_retry();
            }
        });
    }

    async fn flush_pending_after(&self, delay: Duration) -> bool {
        tokio::time::sleep(delay).await;
        self.flush_pending().await
    }

    /// Makes every entry of the namespace stale at once (one store operation).
    pub async fn invalidate_all(&self) -> Invalidation {
        self.invalidate_tags(std::slice::from_ref(self.inner.namespace.epoch()))
            .await
    }

    /// Retries pending invalidations when one is due; returns whether none is left pending.
    /// A background task calls it until none is left; lookups call it too.
    pub async fn flush_pending(&self) -> bool {
        let inner = &*self.inner;
        if !inner.pending.any() {
            return true;
        }
        let Some(retry) = inner
            .pending
            .due(inner.config.retry_interval, inner.namespace.epoch())
        else {
            return false;
        };
        let keys: Vec<&str> = retry.tags.iter().map(Tag::as_str).collect();
        if !inner.breaker.allows()
            || self
                .call(inner.store.bump_generations(&keys))
                .await
                .is_err()
        {
            return false;
        }
        // Other instances may have read the store before this bump (after they forgot the
        // write's announcement, or without hearing it) and keep the old entries in their local
        // view: announce it again, now that the store has it.
        if let Some(fleet) = &inner.fleet {
            fleet.queue(keys.iter().map(|key| (*key).to_owned()).collect());
        }
        !inner.pending.succeeded(&retry)
    }

    /// Whether an invalidation is waiting to reach the store.
    pub fn has_pending_invalidations(&self) -> bool {
        self.inner.pending.any()
    }

    /// How many invalidations are waiting to reach the store, and for how long the oldest has.
    pub fn pending_invalidations(&self) -> PendingInvalidations {
        self.inner.pending.summary()
    }

    /// Deletes every entry whose key (after the namespace prefix) matches the Redis glob
    /// `pattern`, e.g. `admin:courses:*`, by `SCAN` and batched `UNLINK`; returns how many keys
    /// it deleted. For administration: unlike [`Cache::invalidate_tags`] it does not stop a fetch
    /// already under way from storing an older value afterwards.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or takes longer than the admin timeout.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64, StoreError> {
        let pattern = format!("{}{pattern}", self.inner.namespace.prefix());
        self.admin_call(self.inner.store.delete_matching(&pattern))
            .await
    }

    /// Empties this cache's namespace (every schema version) and nothing else: first a
    /// namespace-wide invalidation, so no entry is served from then on, then the deletion of its
    /// keys; returns how many keys it deleted.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; the invalidation is then retried as pending.
    pub async fn clear(&self) -> Result<u64, StoreError> {
        if self.invalidate_all().await == Invalidation::Deferred {
            return Err(StoreError::Backend(
                "store unreachable; clear is pending".into(),
            ));
        }
        let pattern = format!("{}*", self.inner.namespace.root());
        self.admin_call(self.inner.store.delete_matching(&pattern))
            .await
    }

    /// Keys and bytes of this cache's namespace in the store.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or takes longer than the admin timeout.
    pub async fn usage(&self) -> Result<Usage, StoreError> {
        let pattern = format!("{}*", self.inner.namespace.root());
        self.admin_call(self.inner.store.usage(&pattern)).await
    }

    /// Up to `limit` keys of this cache's namespace, for inspection, redacted (every param value
    /// and tag argument replaced by `…`, as in `yc:v1:admin:courses:adminId=…:page=…`): they
    /// tell what kinds of entries are cached, not whose, so they may be shown to anyone allowed
    /// to see the cache's figures.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or takes longer than the admin timeout.
    pub async fn sample_keys(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let root = self.inner.namespace.root();
        let pattern = format!("{root}*");
        let keys = self
            .admin_call(self.inner.store.scan(&pattern, limit))
            .await?;
        Ok(keys
            .iter()
            .map(|key| crate::key::redacted(root, key))
            .collect())
    }

    /// The counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// How long store calls have taken so far: every call, on the request path, in the
    /// background and for administration, failed ones included (see [`StatsSnapshot::errors`]).
    pub fn store_call_latency(&self) -> StoreCallLatency {
        self.inner.latencies.snapshot()
    }

    /// Whether the circuit breaker currently skips the store.
    pub fn is_circuit_open(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// Whether a value fetched now could be stored: the cache is enabled, no invalidation is
    /// pending and the circuit is not open (a value over `max_value_bytes` is still not stored).
    /// A caller warming an entry before anyone reads it can skip the fetch otherwise.
    pub fn accepts_entries(&self) -> bool {
        let inner = &*self.inner;
        inner.config.enabled && !inner.pending.any() && !inner.breaker.is_open()
    }

    /// One store call on the request path: bounded by the store timeout, counted by the breaker.
    async fn call<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bounded(self.inner.config.store_timeout, operation)
            .await
    }

    async fn admin_call<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bounded(self.inner.config.admin_timeout, operation)
            .await
    }

    async fn bounded<T>(
        &self,
        limit: Duration,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let inner = &*self.inner;
        let started = Instant::now();
        let result = if inner.remote {
            tokio::time::timeout(limit, operation)
                .await
                .unwrap_or(Err(StoreError::Timeout))
        } else {
            operation.await
        };
        inner.latencies.record(started.elapsed());
        match &result {
            Ok(_) => inner.breaker.success(),
            Err(error) => {
                inner.breaker.failure();
                inner.stats.error();
                warn!(%error, "cache store call failed");
            }
        }
        result
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
