//! How long entries of one kind of data live.

use std::time::Duration;

use rand::Rng;

/// The lifetime of one kind of cached data.
///
/// Policies are plain values, one per kind of data of the application: make one with
/// [`Policy::new`], and change what differs (`Policy { jitter: 0.0, ..pages }`, or
/// [`Policy::with_ttl`]).
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
    /// How long after `ttl` an entry is served at once (as `Stale`) while one fetch refreshes
    /// it in the background. Zero (the default) turns it off. Only
    /// [`Cache::get_or_refresh`](crate::Cache::get_or_refresh) does it: its fetch may outlive
    /// the call.
    pub stale_while_revalidate: Duration,
    /// A fetch that takes longer serves the entry past its TTL, when one is kept within
    /// `stale_if_error`, and goes on in the background to store its value. `None` (the
    /// default) waits for the fetch. Only `get_or_refresh`.
    pub soft_timeout: Option<Duration>,
    /// A fetch that takes longer fails the call with [`FetchTimedOut`](crate::FetchTimedOut)
    /// (and goes on in the background to store its value). `None` (the default) waits for
    /// the fetch. Only `get_or_refresh`.
    pub hard_timeout: Option<Duration>,
}

impl Policy {
    /// A policy with 10 % jitter and a stale-if-error grace of 5 minutes; no
    /// stale-while-revalidate, no fetch time limits.
    pub const fn new(name: &'static str, ttl: Duration) -> Self {
        Self {
            name,
            ttl,
            jitter: 0.1,
            stale_if_error: Duration::from_secs(300),
            stale_while_revalidate: Duration::ZERO,
            soft_timeout: None,
            hard_timeout: None,
        }
    }

    /// How long past its fresh lifetime an entry is kept: for stale-if-error or for
    /// stale-while-revalidate, whichever is longer.
    pub fn grace(&self) -> Duration {
        self.stale_if_error.max(self.stale_while_revalidate)
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
    /// plus its [grace](Policy::grace). Tag generations created for an entry live that long.
    pub fn longest_life(&self) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        self.ttl
            .saturating_add(self.ttl.mul_f32(jitter))
            .saturating_add(self.grace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MINUTES: Policy = Policy::new("five_minutes", Duration::from_secs(300));
    const ONE_HOUR: Policy = Policy::new("one_hour", Duration::from_secs(3600));

    #[test]
    fn jitter_stays_within_its_fraction_and_varies() {
        let policy = FIVE_MINUTES;
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
            ..FIVE_MINUTES
        };
        assert_eq!(policy.longest_life(), Duration::from_secs(300 + 150 + 300));
        assert!(
            (0..200).all(|_| policy.fresh_for() + policy.stale_if_error <= policy.longest_life())
        );
        let revalidating = Policy {
            stale_while_revalidate: Duration::from_secs(900),
            ..policy
        };
        assert_eq!(
            revalidating.longest_life(),
            Duration::from_secs(300 + 150 + 900)
        );
    }

    #[test]
    fn no_jitter_means_exactly_the_ttl() {
        let policy = Policy {
            jitter: 0.0,
            ..ONE_HOUR
        };
        assert_eq!(policy.fresh_for(), Duration::from_secs(3600));
        assert_eq!(ONE_HOUR.with_ttl(Duration::from_secs(5)).ttl.as_secs(), 5);
    }
}
