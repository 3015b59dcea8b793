//! The in-process tier (L1) in front of a shared store: payloads this instance read or built
//! recently, served without a network call while nothing says they changed.
//!
//! An entry does not carry generations: checking those would take the round trip the tier
//! exists to save. Instead the tier counts what it has been told to forget. Each forgetting
//! takes the next number of a counter and records it against the tags it names (or, for
//! "everything", as a floor under all tags). An entry records the counter as it was *before*
//! the shared-store read it came from, and is valid while none of its tags was forgotten after
//! that. So a forgetting that lands while a read or fetch is under way makes its result invalid
//! here, exactly as a generation bump does in the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::key::Tag;

/// Bytes counted for each entry beyond its key, payload and tags.
const ENTRY_OVERHEAD: usize = 96;

/// Tags remembered as forgotten before the record starts over from a floor.
const MAX_FORGOTTEN: usize = 100_000;

#[derive(Clone)]
struct LocalEntry {
    payload: Bytes,
    /// Generation keys it depends on: the namespace epoch and its tags.
    tags: Arc<[Tag]>,
    /// The tier's counter before the read this entry came from.
    learned: u64,
    /// Unix time in ms after which the entry is expired.
    fresh_until_ms: u64,
}

/// When each tag was last forgotten.
#[derive(Default)]
struct Forgotten {
    by_tag: HashMap<Box<str>, u64, foldhash::fast::RandomState>,
    /// Every tag counts as forgotten at least at this number.
    floor: u64,
}

fn weigh(key: &str, entry: &LocalEntry) -> u32 {
    let tags: usize = entry.tags.iter().map(|tag| tag.as_str().len()).sum();
    u32::try_from(key.len() + entry.payload.len() + tags + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

/// The local tier, bounded in bytes.
pub(crate) struct Tier {
    entries: moka::sync::Cache<String, LocalEntry, foldhash::fast::RandomState>,
    /// Incremented by every forgetting, under the `forgotten` lock.
    counter: AtomicU64,
    /// An `RwLock`: read on every hit, written only by invalidations.
    forgotten: RwLock<Forgotten>,
}

impl Tier {
    pub(crate) fn new(max_bytes: u64) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry| weigh(key, entry))
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            entries,
            counter: AtomicU64::new(0),
            forgotten: RwLock::new(Forgotten::default()),
        }
    }

    /// The counter now: to be read *before* the store read whose result may be kept.
    pub(crate) fn counter(&self) -> u64 {
        self.counter.load(Ordering::Acquire)
    }

    /// The payload under `key`, if it is here, fresh at `now_ms`, and none of its tags was
    /// forgotten since it was learned.
    pub(crate) fn get(&self, key: &str, now_ms: u64) -> Option<Bytes> {
        let entry = self.entries.get(key)?;
        if now_ms >= entry.fresh_until_ms {
            return None;
        }
        let forgotten = self.forgotten.read();
        let valid = entry.tags.iter().all(|tag| {
            let at = forgotten.by_tag.get(tag.as_str()).copied().unwrap_or(0);
            at.max(forgotten.floor) <= entry.learned
        });
        drop(forgotten);
        if valid {
            Some(entry.payload)
        } else {
            self.entries.invalidate(key);
            None
        }
    }

    /// Keeps `payload` under `key`, learned when the counter was `learned`.
    pub(crate) fn put(
        &self,
        key: &str,
        payload: Bytes,
        tags: Arc<[Tag]>,
        learned: u64,
        fresh_until_ms: u64,
    ) {
        self.entries.insert(
            key.into(),
            LocalEntry {
                payload,
                tags,
                learned,
                fresh_until_ms,
            },
        );
    }

    /// Makes every entry that depends on any of `tags` invalid from now on.
    pub(crate) fn forget<'a>(&self, tags: impl IntoIterator<Item = &'a str>) {
        let mut forgotten = self.forgotten.write();
        let at = self.counter.load(Ordering::Relaxed) + 1;
        if forgotten.by_tag.len() >= MAX_FORGOTTEN {
            forgotten.by_tag.clear();
            forgotten.floor = at;
        }
        for tag in tags {
            forgotten.by_tag.insert(tag.into(), at);
        }
        // Published after the record, under the lock: a reader that sees `at` sees the record.
        self.counter.store(at, Ordering::Release);
    }

    /// Makes every entry invalid from now on.
    pub(crate) fn forget_all(&self) {
        let mut forgotten = self.forgotten.write();
        let at = self.counter.load(Ordering::Relaxed) + 1;
        forgotten.by_tag.clear();
        forgotten.floor = at;
        self.counter.store(at, Ordering::Release);
        drop(forgotten);
        self.entries.invalidate_all();
    }

    /// Entries held and the bytes they weigh (as of moka's last maintenance).
    pub(crate) fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.entry_count(), self.entries.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Namespace;

    fn tags(names: &[&str]) -> Arc<[Tag]> {
        let namespace = Namespace::new("tier", 1).unwrap();
        names.iter().map(|name| namespace.tag(name)).collect()
    }

    #[test]
    fn an_entry_is_served_until_one_of_its_tags_is_forgotten() {
        let tier = Tier::new(1 << 20);
        let learned = tier.counter();
        let course = tags(&["course"]);
        tier.put(
            "k",
            Bytes::from_static(b"v"),
            course.clone(),
            learned,
            u64::MAX,
        );
        assert_eq!(tier.get("k", 0).as_deref(), Some(&b"v"[..]));

        tier.forget([tags(&["other"])[0].as_str()]);
        assert!(tier.get("k", 0).is_some(), "another tag changes nothing");
        tier.forget([course[0].as_str()]);
        assert!(tier.get("k", 0).is_none());
    }

    #[test]
    fn a_value_read_before_a_forgetting_and_kept_after_it_is_not_served() {
        let tier = Tier::new(1 << 20);
        let course = tags(&["course"]);
        let learned = tier.counter(); // the read starts
        tier.forget([course[0].as_str()]); // an invalidation lands meanwhile
        tier.put("k", Bytes::from_static(b"old"), course, learned, u64::MAX);
        assert!(tier.get("k", 0).is_none());
    }

    #[test]
    fn forgetting_everything_invalidates_entries_learned_before_only() {
        let tier = Tier::new(1 << 20);
        let course = tags(&["course"]);
        tier.put(
            "old",
            Bytes::from_static(b"1"),
            course.clone(),
            tier.counter(),
            u64::MAX,
        );
        tier.forget_all();
        tier.put(
            "new",
            Bytes::from_static(b"2"),
            course,
            tier.counter(),
            u64::MAX,
        );
        assert!(tier.get("old", 0).is_none());
        assert!(tier.get("new", 0).is_some());
    }

    #[test]
    fn an_expired_entry_is_not_served() {
        let tier = Tier::new(1 << 20);
        tier.put(
            "k",
            Bytes::from_static(b"v"),
            tags(&["a"]),
            tier.counter(),
            1_000,
        );
        assert!(tier.get("k", 999).is_some());
        assert!(tier.get("k", 1_000).is_none());
    }

    #[test]
    fn a_full_record_of_forgotten_tags_starts_over_from_a_floor_that_keeps_it_safe() {
        let tier = Tier::new(1 << 20);
        let namespace = Namespace::new("tier", 1).unwrap();
        let kept = tags(&["kept"]);
        tier.put(
            "k",
            Bytes::from_static(b"v"),
            kept,
            tier.counter(),
            u64::MAX,
        );
        for i in 0..MAX_FORGOTTEN {
            tier.forget([namespace.tag(&format!("t{i}")).as_str()]);
        }
        assert!(
            tier.get("k", 0).is_some(),
            "none of its tags was forgotten yet"
        );
        tier.forget([namespace.tag("one-more").as_str()]);
        assert!(
            tier.get("k", 0).is_none(),
            "the record started over: entries learned before are no longer trusted"
        );
    }
}
