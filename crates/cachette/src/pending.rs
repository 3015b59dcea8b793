//! Invalidations that have not reached the store yet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::key::Tag;

/// Past this many pending tags, the retry bumps the namespace epoch instead: one write
/// supersedes them all.
const MAX_PENDING_TAGS: usize = 64;

/// Failed invalidations, kept until a retry reaches the store.
///
/// While any is pending the cache serves nothing from the store: an entry there may predate a
/// write whose invalidation the store never saw.
#[derive(Default)]
pub(crate) struct Pending {
    /// Read on every lookup; the mutex is taken only when it is set.
    any: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Each tag with the sequence number of its latest failure, so a retry that succeeds clears
    /// only failures it covered, never one recorded while it was under way; and since when it
    /// has been pending without a break (for [`Pending::summary`]).
    tags: HashMap<Tag, (u64, Instant)>,
    /// Sequence number of a failed whole-namespace invalidation, and since when it is pending.
    epoch: Option<(u64, Instant)>,
    next_seq: u64,
    last_attempt: Option<Instant>,
}

/// What a retry should write, and up to which failure it covers.
pub(crate) struct Retry {
    pub(crate) tags: Vec<Tag>,
    pub(crate) covers_epoch: bool,
    seq: u64,
}

impl Pending {
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    pub(crate) fn add(&self, tags: &[Tag], epoch: &Tag) {
        let mut state = self.state.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        let now = Instant::now();
        for tag in tags {
            if tag == epoch {
                let since = state.epoch.map_or(now, |(_, since)| since);
                state.epoch = Some((seq, since));
            } else {
                let since = state.tags.get(tag).map_or(now, |(_, since)| *since);
                state.tags.insert(tag.clone(), (seq, since));
            }
        }
        self.any.store(true, Ordering::Release);
    }

    /// What to retry now, unless a retry ran less than `interval` ago or nothing is pending.
    pub(crate) fn due(&self, interval: Duration, epoch: &Tag) -> Option<Retry> {
        let mut state = self.state.lock();
        if state.tags.is_empty() && state.epoch.is_none() {
            return None;
        }
        let now = Instant::now();
        if state
            .last_attempt
            .is_some_and(|at| now.duration_since(at) < interval)
        {
            return None;
        }
        state.last_attempt = Some(now);
        let seq = state.next_seq;
        let covers_epoch = state.epoch.is_some() || state.tags.len() > MAX_PENDING_TAGS;
        let tags = if covers_epoch {
            vec![epoch.clone()]
        } else {
            state.tags.keys().cloned().collect()
        };
        Some(Retry {
            tags,
            covers_epoch,
            seq,
        })
    }

    /// Forgets what `retry` covered; returns whether anything is still pending.
    pub(crate) fn succeeded(&self, retry: &Retry) -> bool {
        let mut state = self.state.lock();
        if retry.covers_epoch {
            state.tags.retain(|_, (seq, _)| *seq >= retry.seq);
            if state.epoch.is_some_and(|(seq, _)| seq < retry.seq) {
                state.epoch = None;
            }
        } else {
            for tag in &retry.tags {
                if state.tags.get(tag).is_some_and(|(seq, _)| *seq < retry.seq) {
                    state.tags.remove(tag);
                }
            }
        }
        let any = !state.tags.is_empty() || state.epoch.is_some();
        self.any.store(any, Ordering::Release);
        any
    }

    /// How many invalidations are pending, and for how long the oldest has been.
    pub(crate) fn summary(&self) -> PendingInvalidations {
        if !self.any() {
            return PendingInvalidations::default();
        }
        let state = self.state.lock();
        let oldest = state
            .tags
            .values()
            .chain(state.epoch.as_ref())
            .map(|(_, since)| *since)
            .min();
        PendingInvalidations {
            tags: state.tags.len() + usize::from(state.epoch.is_some()),
            oldest: oldest.map(|since| since.elapsed()),
        }
    }
}

/// Invalidations waiting to reach the store ([`crate::Cache::pending_invalidations`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingInvalidations {
    /// Tags pending, the namespace epoch counting as one.
    pub tags: usize,
    /// How long the oldest of them has been pending without a break; `None` when none is.
    pub oldest: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Namespace;

    #[test]
    fn a_failure_recorded_during_a_retry_survives_its_success() {
        let ns = Namespace::new("t", 1).unwrap();
        let pending = Pending::default();
        pending.add(&[ns.tag("a")], ns.epoch());
        let retry = pending.due(Duration::ZERO, ns.epoch()).unwrap();
        pending.add(&[ns.tag("a")], ns.epoch());
        assert!(
            pending.succeeded(&retry),
            "the later failure must stay pending"
        );
        let retry = pending.due(Duration::ZERO, ns.epoch()).unwrap();
        assert!(!pending.succeeded(&retry));
        assert!(!pending.any());
    }

    #[test]
    fn many_pending_tags_collapse_into_one_epoch_bump() {
        let ns = Namespace::new("t", 1).unwrap();
        let pending = Pending::default();
        let tags: Vec<Tag> = (0..100).map(|i| ns.tag(&i.to_string())).collect();
        pending.add(&tags, ns.epoch());
        let retry = pending.due(Duration::ZERO, ns.epoch()).unwrap();
        assert_eq!(retry.tags, vec![ns.epoch().clone()]);
        assert!(!pending.succeeded(&retry));
    }

    #[test]
    fn the_summary_counts_pending_tags_and_ages_the_oldest() {
        let ns = Namespace::new("t", 1).unwrap();
        let pending = Pending::default();
        assert_eq!(pending.summary(), PendingInvalidations::default());
        pending.add(&[ns.tag("a")], ns.epoch());
        std::thread::sleep(Duration::from_millis(20));
        pending.add(&[ns.tag("a"), ns.tag("b"), ns.epoch().clone()], ns.epoch());
        let summary = pending.summary();
        assert_eq!(summary.tags, 3);
        assert!(
            summary.oldest.unwrap() >= Duration::from_millis(20),
            "a tag failing again is pending since its first failure"
        );
        let retry = pending.due(Duration::ZERO, ns.epoch()).unwrap();
        assert!(!pending.succeeded(&retry));
        assert_eq!(pending.summary(), PendingInvalidations::default());
    }

    #[test]
    fn retries_are_spaced_by_the_interval() {
        let ns = Namespace::new("t", 1).unwrap();
        let pending = Pending::default();
        pending.add(&[ns.tag("a")], ns.epoch());
        assert!(pending.due(Duration::from_secs(60), ns.epoch()).is_some());
        assert!(pending.due(Duration::from_secs(60), ns.epoch()).is_none());
    }
}
