//! The in-process store: moka for entries, a concurrent map for tag generations.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use moka::Expiry;

use super::{LeaseAttempt, LeaseToken, Read, Store, StoreError, Usage, generation_ttl, glob_match};
use crate::generation::Generation;

/// Bytes counted for each entry beyond its key and value (moka's own bookkeeping, roughly).
const ENTRY_OVERHEAD: usize = 64;

/// Fewest generations in the map before creating more sweeps out the expired ones.
const MIN_SWEEP_AT: usize = 1024;

/// An in-process store bounded in bytes.
///
/// Entries are weighed by key and value size and evicted (TinyLFU) past the byte budget; each
/// expires after its own TTL. Generations live in a separate map so that eviction pressure from
/// entries never touches them; that map is bounded in count and, past it, starts over with fresh
/// random generations (every entry then misses once, which is safe).
///
/// Each generation has a deadline: the longest lifetime of an entry stored under it (see
/// [`Store::set`]). Generations past it are swept out when the map has doubled since the last
/// sweep, and before `scan`, `delete_matching` and `usage`. Until swept, such a generation is
/// still the tag's current one (nothing else changes it but a bump), so serving entries under it
/// stays correct, and reads need no clock.
pub struct MemoryStore {
    entries: moka::sync::Cache<String, MemoryEntry, foldhash::fast::RandomState>,
    /// A `DashMap` rather than a second moka cache: it is read on every hit, once per tag, and a
    /// plain sharded map read is several times cheaper.
    generations: DashMap<String, GenerationSlot, foldhash::fast::RandomState>,
    max_generations: usize,
    /// Map length past which creating generations sweeps out expired ones first: twice the
    /// generations left by the last sweep, so sweeping costs O(1) per created generation.
    sweep_at: AtomicUsize,
    /// Times the generation map was started over, for tests and logs.
    generation_resets: AtomicU64,
}

/// A tag's generation and until when an entry may need it.
#[derive(Clone, Copy)]
struct GenerationSlot {
    generation: Generation,
    /// Past it, no stored entry needs the generation: the next sweep drops it.
    expires: Instant,
}

#[derive(Clone)]
struct MemoryEntry {
    value: Bytes,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, MemoryEntry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &MemoryEntry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &MemoryEntry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl MemoryStore {
    /// A store holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        Self::with_max_generations(max_bytes, 1_000_000)
    }

    /// A store holding at most `max_bytes` of entries and `max_generations` tag generations.
    pub fn with_max_generations(max_bytes: u64, max_generations: usize) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &MemoryEntry| {
                u32::try_from(key.len() + entry.value.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            entries,
            generations: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            max_generations,
            sweep_at: AtomicUsize::new(MIN_SWEEP_AT.min(max_generations)),
            generation_resets: AtomicU64::new(0),
        }
    }

    /// How many times the generation map outgrew its bound and started over.
    pub fn generation_resets(&self) -> u64 {
        self.generation_resets.load(Ordering::Relaxed)
    }

    /// How much longer the generation under `key` is needed by the entries stored under it
    /// (zero once past, until a sweep drops it); `None` when there is none. For inspection.
    pub fn generation_life(&self, key: &str) -> Option<Duration> {
        let expires = self.generations.get(key)?.expires;
        Some(expires.saturating_duration_since(Instant::now()))
    }

    fn make_room_for_generations(&self, adding: usize) {
        if self.generations.len() + adding > self.sweep_at.load(Ordering::Relaxed) {
            self.sweep_generations();
        }
        if self.generations.len() + adding > self.max_generations {
            self.generations.clear();
            self.sweep_at
                .store(MIN_SWEEP_AT.min(self.max_generations), Ordering::Relaxed);
            self.generation_resets.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops the generations no stored entry needs any more.
    fn sweep_generations(&self) {
        let now = Instant::now();
        // Per shard under its lock: a `set` extending a generation either comes first (and the
        // generation stays) or finds it gone (and leaves it gone).
        self.generations.retain(|_, slot| slot.expires > now);
        let sweep_at = (2 * self.generations.len())
            .max(MIN_SWEEP_AT)
            .min(self.max_generations);
        self.sweep_at.store(sweep_at, Ordering::Relaxed);
    }

    fn matching_keys(&self, pattern: &str) -> Vec<String> {
        self.sweep_generations();
        let entries = self
            .entries
            .iter()
            .filter(|(key, _)| glob_match(pattern, key))
            .map(|(key, _)| String::clone(&key));
        let generations = self
            .generations
            .iter()
            .filter(|g| glob_match(pattern, g.key()))
            .map(|g| g.key().clone());
        entries.chain(generations).collect()
    }
}

/// Until when a generation is needed by an entry stored now for `entry_ttl`.
fn generation_deadline(entry_ttl: Duration) -> Instant {
    let now = Instant::now();
    // A TTL too long for the clock: a century is as good as forever here.
    now.checked_add(generation_ttl(entry_ttl))
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl Default for MemoryStore {
    /// 64 MiB.
    fn default() -> Self {
        Self::new(64 << 20)
    }
}

impl Store for MemoryStore {
    fn is_remote(&self) -> bool {
        false
    }

    async fn read(&self, key: &str, generation_keys: &[&str]) -> Result<Read, StoreError> {
        Ok(Read {
            entry: self.entries.get(key).map(|entry| entry.value),
            generations: generation_keys
                .iter()
                .map(|k| self.generations.get(*k).map(|slot| slot.generation))
                .collect(),
        })
    }

    async fn ensure_generations(
        &self,
        keys: &[&str],
        ttl: Duration,
    ) -> Result<Vec<Generation>, StoreError> {
        self.make_room_for_generations(keys.len());
        let expires = generation_deadline(ttl);
        Ok(keys
            .iter()
            .map(|k| {
                let mut slot =
                    self.generations
                        .entry((*k).to_owned())
                        .or_insert_with(|| GenerationSlot {
                            generation: Generation::random(),
                            expires,
                        });
                // Not swept before the entry about to be built under it is stored.
                slot.expires = slot.expires.max(expires);
                slot.generation
            })
            .collect())
    }

    async fn bump_generations(&self, keys: &[&str]) -> Result<(), StoreError> {
        for key in keys {
            if let Some(mut slot) = self.generations.get_mut(*key) {
                slot.generation = Generation::random();
            }
        }
        Ok(())
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
        generation_keys: &[&str],
    ) -> Result<(), StoreError> {
        self.entries
            .insert(key.to_owned(), MemoryEntry { value, ttl });
        if !generation_keys.is_empty() {
            let expires = generation_deadline(ttl);
            for generation_key in generation_keys {
                if let Some(mut slot) = self.generations.get_mut(*generation_key) {
                    slot.expires = slot.expires.max(expires);
                }
            }
        }
        Ok(())
    }

    /// Always grants: this store is one process's own, and the cache's single-flight already
    /// runs one fetch per key and snapshot in a process.
    async fn try_lease(
        &self,
        key: &str,
        generation_keys: &[&str],
        _ttl: Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        Ok(LeaseAttempt {
            token: Some(LeaseToken(0)),
            read: self.read(key, generation_keys).await?,
        })
    }

    async fn release_lease(&self, _key: &str, _token: LeaseToken) -> Result<(), StoreError> {
        Ok(())
    }

    async fn delete(&self, keys: &[&str]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for key in keys {
            deleted += u64::from(self.entries.remove(*key).is_some());
            deleted += u64::from(self.generations.remove(*key).is_some());
        }
        Ok(deleted)
    }

    async fn scan(&self, pattern: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut keys = self.matching_keys(pattern);
        keys.truncate(limit);
        Ok(keys)
    }

    async fn delete_matching(&self, pattern: &str) -> Result<u64, StoreError> {
        let keys = self.matching_keys(pattern);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.delete(&keys).await
    }

    async fn usage(&self, pattern: &str) -> Result<Usage, StoreError> {
        self.entries.run_pending_tasks();
        self.sweep_generations();
        let mut usage = Usage {
            keys: 0,
            bytes: Some(0),
        };
        let mut count = |key_len: usize, value_len: usize| {
            usage.keys += 1;
            usage.bytes = usage
                .bytes
                .map(|b| b + (key_len + value_len + ENTRY_OVERHEAD) as u64);
        };
        for (key, entry) in self.entries.iter() {
            if glob_match(pattern, &key) {
                count(key.len(), entry.value.len());
            }
        }
        for generation in self.generations.iter() {
            if glob_match(pattern, generation.key()) {
                count(generation.key().len(), 8);
            }
        }
        Ok(usage)
    }
}
