//! The in-process store: moka for entries, a concurrent map for tag generations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use moka::Expiry;

use super::{Read, Store, StoreError, Usage, glob_match};
use crate::Generation;

/// Bytes counted for each entry beyond its key and value (moka's own bookkeeping, roughly).
const ENTRY_OVERHEAD: usize = 64;

/// An in-process store bounded in bytes.
///
/// Entries are weighed by key and value size and evicted (TinyLFU) past the byte budget; each
/// expires after its own TTL. Generations live in a separate map so that eviction pressure from
/// entries never touches them; that map is bounded in count and, past it, starts over with fresh
/// random generations (every entry then misses once, which is safe).
pub struct MemoryStore {
    entries: moka::sync::Cache<String, MemoryEntry, foldhash::fast::RandomState>,
    /// A `DashMap` rather than a second moka cache: it is read on every hit, once per tag, and a
    /// plain sharded map read is several times cheaper.
    generations: DashMap<String, Generation, foldhash::fast::RandomState>,
    max_generations: usize,
    /// Times the generation map was started over, for tests and logs.
    generation_resets: AtomicU64,
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
            generation_resets: AtomicU64::new(0),
        }
    }

    /// How many times the generation map outgrew its bound and started over.
    pub fn generation_resets(&self) -> u64 {
        self.generation_resets.load(Ordering::Relaxed)
    }

    fn make_room_for_generations(&self, adding: usize) {
        if self.generations.len() + adding > self.max_generations {
            self.generations.clear();
            self.generation_resets.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn matching_keys(&self, pattern: &str) -> Vec<String> {
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
                .map(|k| self.generations.get(*k).map(|g| *g))
                .collect(),
        })
    }

    async fn ensure_generations(&self, keys: &[&str]) -> Result<Vec<Generation>, StoreError> {
        self.make_room_for_generations(keys.len());
        Ok(keys
            .iter()
            .map(|k| {
                *self
                    .generations
                    .entry((*k).to_owned())
                    .or_insert_with(Generation::random)
            })
            .collect())
    }

    async fn bump_generations(&self, keys: &[&str]) -> Result<(), StoreError> {
        for key in keys {
            if let Some(mut generation) = self.generations.get_mut(*key) {
                *generation = Generation::random();
            }
        }
        Ok(())
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), StoreError> {
        self.entries
            .insert(key.to_owned(), MemoryEntry { value, ttl });
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
