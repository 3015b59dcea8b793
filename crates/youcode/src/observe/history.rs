//! What the monitor samples every second, kept for a bounded time: the hit-ratio chart and the
//! alerts read the same samples.

use std::collections::VecDeque;
use std::time::Duration;

use cachette::Lookups;
use serde::Serialize;

/// The state of the cache and the database at one moment. Counters are totals since start, so
/// any two samples give what happened between them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Since the monitor started (a monotonic clock: wall-clock jumps move nothing).
    pub at: Duration,
    pub lookups: Lookups,
    /// Store operations that failed or timed out.
    pub store_errors: u64,
    pub breaker_open: bool,
    /// Invalidations that have not reached the store yet.
    pub pending: bool,
    pub database_ok: bool,
}

/// The latest samples, oldest first, at most `capacity` of them.
#[derive(Debug)]
pub struct History {
    samples: VecDeque<Sample>,
    capacity: usize,
}

/// One second of the chart: the lookups between two samples and their hit ratio (`None`
/// without lookups).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Seconds before the latest sample (0 for the latest).
    pub seconds_ago: f64,
    pub lookups: u64,
    pub hit_ratio: Option<f64>,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity: capacity.max(2),
        }
    }

    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Adds `sample`; the samples, oldest first.
    pub fn push_and_read(&mut self, sample: Sample) -> &[Sample] {
        self.push(sample);
        self.samples.make_contiguous()
    }

    /// The chart: one point per pair of consecutive samples.
    pub fn points(&self) -> Vec<Point> {
        let Some(latest) = self.samples.back() else {
            return Vec::new();
        };
        self.samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .map(|(before, after)| {
                let lookups = difference(before.lookups, after.lookups);
                Point {
                    seconds_ago: (latest.at - after.at).as_secs_f64(),
                    lookups: lookups.total(),
                    hit_ratio: (lookups.total() > 0).then(|| lookups.hit_ratio()),
                }
            })
            .collect()
    }
}

/// The lookups between two totals (a counter never goes down; saturating all the same).
pub fn difference(before: Lookups, after: Lookups) -> Lookups {
    Lookups {
        hits: after.hits.saturating_sub(before.hits),
        misses: after.misses.saturating_sub(before.misses),
        stale: after.stale.saturating_sub(before.stale),
        bypasses: after.bypasses.saturating_sub(before.bypasses),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(second: u64, hits: u64, misses: u64) -> Sample {
        Sample {
            at: Duration::from_secs(second),
            lookups: Lookups {
                hits,
                misses,
                ..Lookups::default()
            },
            ..Sample::default()
        }
    }

    #[test]
    fn the_history_keeps_only_the_latest_samples() {
        let mut history = History::new(3);
        for second in 0..4 {
            history.push(sample(second, 0, 0));
        }
        let kept: Vec<u64> = history
            .push_and_read(sample(4, 0, 0))
            .iter()
            .map(|s| s.at.as_secs())
            .collect();
        assert_eq!(kept, [2, 3, 4]);
    }

    #[test]
    fn the_chart_shows_the_hit_ratio_of_each_second() {
        let mut history = History::new(10);
        history.push(sample(0, 0, 0));
        history.push(sample(1, 3, 1));
        history.push(sample(2, 3, 1));
        history.push(sample(3, 4, 2));
        let points = history.points();
        assert_eq!(
            points,
            [
                Point {
                    seconds_ago: 2.0,
                    lookups: 4,
                    hit_ratio: Some(0.75)
                },
                Point {
                    seconds_ago: 1.0,
                    lookups: 0,
                    hit_ratio: None
                },
                Point {
                    seconds_ago: 0.0,
                    lookups: 2,
                    hit_ratio: Some(0.5)
                },
            ]
        );
    }
}
