//! A circuit breaker in front of the store.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Opens after `threshold` consecutive store failures; while open the cache skips the store.
/// After `open_for`, one caller is let through as a probe: its success closes the breaker, its
/// failure opens it again.
pub(crate) struct Breaker {
    consecutive_failures: AtomicU32,
    /// Milliseconds since `started` until which the breaker is open; 0 when closed. Atomics
    /// rather than a mutex: `allows` runs on every lookup.
    open_until_ms: AtomicU64,
    threshold: u32,
    open_for: Duration,
    started: Instant,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            consecutive_failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            threshold: threshold.max(1),
            open_for,
            started: Instant::now(),
        }
    }

    /// Whether a store call may be made now.
    pub(crate) fn allows(&self) -> bool {
        let until = self.open_until_ms.load(Relaxed);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        // Half-open: the one caller that moves the deadline on is the probe.
        now >= until
            && self
                .open_until_ms
                .compare_exchange(until, now + self.open_for_ms(), Relaxed, Relaxed)
                .is_ok()
    }

    pub(crate) fn is_open(&self) -> bool {
        let until = self.open_until_ms.load(Relaxed);
        until != 0 && self.now_ms() < until
    }

    pub(crate) fn success(&self) {
        if self.consecutive_failures.load(Relaxed) != 0 || self.open_until_ms.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
            self.open_until_ms.store(0, Relaxed);
        }
    }

    pub(crate) fn failure(&self) {
        let failures = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        if failures >= self.threshold {
            // `max(1)`: 0 means closed.
            let until = (self.now_ms() + self.open_for_ms()).max(1);
            self.open_until_ms.store(until, Relaxed);
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn open_for_ms(&self) -> u64 {
        u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_failures_and_a_success_closes_it() {
        let breaker = Breaker::new(3, Duration::from_secs(60));
        breaker.failure();
        breaker.failure();
        assert!(breaker.allows());
        breaker.failure();
        assert!(!breaker.allows());
        assert!(breaker.is_open());
        breaker.success();
        assert!(breaker.allows());
    }

    #[test]
    fn after_the_open_period_exactly_one_probe_is_let_through() {
        let breaker = Breaker::new(1, Duration::from_millis(20));
        breaker.failure();
        assert!(!breaker.allows());
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.allows(), "the probe");
        assert!(!breaker.allows(), "a second caller while the probe runs");
        breaker.failure();
        assert!(!breaker.allows());
    }
}
