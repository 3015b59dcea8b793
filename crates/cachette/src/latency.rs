//! How long store calls take: a histogram with fixed buckets, cheap enough for every call.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: from a memory store's tens of microseconds to the
/// store timeout's hundreds of milliseconds and beyond. Fixed, so that instances' figures add up.
pub const STORE_CALL_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// Store call durations, counted per bucket with atomics (no lock on the request path).
#[derive(Default)]
pub(crate) struct Latencies {
    /// Calls per bucket, not cumulative; the last counts calls over every bound.
    buckets: [AtomicU64; STORE_CALL_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Latencies {
    pub(crate) fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = STORE_CALL_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(STORE_CALL_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StoreCallLatency {
        let mut cumulative = 0;
        let buckets = STORE_CALL_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, calls)| {
                cumulative += calls.load(Relaxed);
                (*bound, cumulative)
            })
            .collect();
        // Every call is in one bucket: the count is their sum, the last one included.
        let over_every_bound = self.buckets[STORE_CALL_BUCKETS.len()].load(Relaxed);
        StoreCallLatency {
            buckets,
            sum: Duration::from_nanos(self.sum_nanos.load(Relaxed)),
            count: cumulative + over_every_bound,
        }
    }
}

/// Store call durations so far, in the shape of a Prometheus histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreCallLatency {
    /// Each bucket's upper bound in seconds with the calls that took at most that long
    /// (cumulative); calls over the last bound are counted only in `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Time all calls took together.
    pub sum: Duration,
    /// Every call, successful or not (timeouts included, counted at the timeout).
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_land_in_cumulative_buckets_and_the_slowest_only_in_the_count() {
        let latencies = Latencies::default();
        latencies.record(Duration::from_micros(40));
        latencies.record(Duration::from_millis(3));
        latencies.record(Duration::from_secs(2));
        let snapshot = latencies.snapshot();
        let at = |bound: f64| {
            snapshot
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .unwrap()
                .1
        };
        assert_eq!(at(0.000_05), 1);
        assert_eq!(at(0.002_5), 1);
        assert_eq!(at(0.005), 2);
        assert_eq!(at(1.0), 2);
        assert_eq!(snapshot.count, 3);
        assert_eq!(
            snapshot.sum,
            Duration::from_micros(40) + Duration::from_millis(3) + Duration::from_secs(2)
        );
    }
}
