//! How long entries of one kind of data live.

use std::time::Duration;

use rand::Rng;

/// The lifetime of one kind of cached data.
///
/// Policies are plain values: copy a constant and change what differs
/// (`Policy { ttl: Duration::from_secs(60), ..Policy::SEARCH_RESULTS }`), or use [`Policy::with_ttl`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// A short name for logs and stats.
    pub name: &'static str,
    /// How long an entry is served as fresh.
    pub ttl: Duration,
    /// Up to this fraction of `ttl` is added at random to each entry, so entries written together
    /// do not expire together.
    pub jitter: f32,
    /// How long after `ttl` an entry is kept to be served (as `Stale`) when the fetch fails.
    /// Such an entry was never invalidated, so it holds no data older than an acknowledged write.
    pub stale_if_error: Duration,
}

impl Policy {
    /// Paginated and search lists: 5 minutes.
    pub const SEARCH_RESULTS: Policy = Policy::new("search_results", Duration::from_secs(300));
    /// Course detail: 1 hour.
    pub const COURSE_DETAIL: Policy = Policy::new("course_detail", Duration::from_secs(3600));
    /// Lesson detail: 30 minutes.
    pub const LESSON_DETAIL: Policy = Policy::new("lesson_detail", Duration::from_secs(1800));
    /// The lessons of a course: 5 minutes.
    pub const LESSON_LIST: Policy = Policy::new("lesson_list", Duration::from_secs(300));
    /// One user's progress: 10 minutes.
    pub const USER_PROGRESS: Policy = Policy::new("user_progress", Duration::from_secs(600));

    /// The five policies above, for configuration by name.
    pub const ALL: [Policy; 5] = [
        Self::SEARCH_RESULTS,
        Self::COURSE_DETAIL,
        Self::LESSON_DETAIL,
        Self::LESSON_LIST,
        Self::USER_PROGRESS,
    ];

    /// A policy with 10 % jitter and a stale-if-error grace of 5 minutes.
    pub const fn new(name: &'static str, ttl: Duration) -> Self {
        Self {
            name,
            ttl,
            jitter: 0.1,
            stale_if_error: Duration::from_secs(300),
        }
    }

    /// This policy with another TTL.
    pub const fn with_ttl(self, ttl: Duration) -> Self {
        Self { ttl, ..self }
    }

    /// The fresh lifetime of one new entry: `ttl` plus its random jitter.
    pub fn fresh_for(&self) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || self.ttl.is_zero() {
            return self.ttl;
        }
        self.ttl + self.ttl.mul_f32(rand::rng().random_range(0.0..jitter))
    }

    /// The longest an entry of this policy is kept in a store: `ttl` with its largest jitter,
    /// plus the stale-if-error grace. Tag generations created for an entry live that long.
    pub fn longest_life(&self) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        self.ttl
            .saturating_add(self.ttl.mul_f32(jitter))
            .saturating_add(self.stale_if_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_policies_have_the_designed_ttls() {
        let ttls: Vec<u64> = Policy::ALL.iter().map(|p| p.ttl.as_secs()).collect();
        assert_eq!(ttls, [300, 3600, 1800, 300, 600]);
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_varies() {
        let policy = Policy::SEARCH_RESULTS;
        let lives: Vec<Duration> = (0..200).map(|_| policy.fresh_for()).collect();
        assert!(
            lives
                .iter()
                .all(|d| *d >= policy.ttl && *d < policy.ttl.mul_f32(1.1))
        );
        assert!(lives.iter().any(|d| *d != lives[0]), "jitter never varied");
    }

    #[test]
    fn no_entry_lives_longer_than_the_longest_life() {
        let policy = Policy {
            jitter: 0.5,
            ..Policy::SEARCH_RESULTS
        };
        assert_eq!(policy.longest_life(), Duration::from_secs(300 + 150 + 300));
        assert!(
            (0..200).all(|_| policy.fresh_for() + policy.stale_if_error <= policy.longest_life())
        );
    }

    #[test]
    fn no_jitter_means_exactly_the_ttl() {
        let policy = Policy {
            jitter: 0.0,
            ..Policy::COURSE_DETAIL
        };
        assert_eq!(policy.fresh_for(), Duration::from_secs(3600));
        assert_eq!(
            Policy::COURSE_DETAIL
                .with_ttl(Duration::from_secs(5))
                .ttl
                .as_secs(),
            5
        );
    }
}
