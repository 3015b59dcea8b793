//! Bounds on password guessing: failed sign-ins per account and per client address.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::config::LoginLimits;

/// Counts failed sign-ins (GCRA rate limits from `governor`) and refuses accounts and addresses
/// that failed too often, before their password is hashed.
///
/// Only failures count: a sign-in that succeeds never uses up anything, so many people signing
/// in correctly from one address are never refused.
pub struct LoginGuard {
    accounts: Limiter<String>,
    addresses: Limiter<IpAddr>,
}

/// One rate limit and who is refused by it until when.
struct Limiter<K: Hash + Eq + Clone> {
    failures: DefaultKeyedRateLimiter<K>,
    /// Keys whose failures ran out, and until when: a limiter cannot be asked without using up
    /// a failure, and a refused sign-in must be turned away before its password is hashed.
    refused: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn per_minute(failures: NonZeroU32) -> Self {
        Self {
            failures: RateLimiter::keyed(Quota::per_minute(failures)),
            refused: Mutex::new(HashMap::new()),
        }
    }

    fn refused_for(&self, key: &K, now: Instant) -> Option<Duration> {
        let refused = self.refused.lock();
        let until = *refused.get(key)?;
        (until > now).then(|| until - now)
    }

    /// Counts a failure; when it is one too many, refuses the key until the rate allows
    /// another, and says for how long.
    fn failed(&self, key: &K, now: Instant) -> Option<Duration> {
        let not_until = self.failures.check_key(key).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        self.refused.lock().insert(key.clone(), now + wait);
        Some(wait)
    }

    fn forget_old(&self, now: Instant) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        self.refused.lock().retain(|_, until| *until > now);
    }
}

impl LoginGuard {
    pub fn new(limits: &LoginLimits) -> Self {
        Self {
            accounts: Limiter::per_minute(limits.failures_per_account),
            addresses: Limiter::per_minute(limits.failures_per_address),
        }
    }

    /// `Err(retry_after)` when `email` or `address` failed too often lately.
    pub fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        refusal(
            self.accounts.refused_for(&email.to_owned(), now),
            address.and_then(|a| self.addresses.refused_for(&a, now)),
        )
    }

    /// Records a failed sign-in; `Err(retry_after)` when it was one too many.
    pub fn failed(&self, email: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        refusal(
            self.accounts.failed(&email.to_owned(), now),
            address.and_then(|a| self.addresses.failed(&a, now)),
        )
    }

    /// Drops what is no longer needed (failures older than the window, refusals that ended), so
    /// memory follows the recent attempts, not every email ever tried.
    pub fn forget_old(&self) {
        let now = Instant::now();
        self.accounts.forget_old(now);
        self.addresses.forget_old(now);
    }
}

/// `Err` with the longer wait when either limit refuses.
fn refusal(account: Option<Duration>, address: Option<Duration>) -> Result<(), Duration> {
    match account.max(address) {
        Some(wait) => Err(wait),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_account: u32, per_address: u32) -> LoginGuard {
        LoginGuard::new(&LoginLimits {
            failures_per_account: NonZeroU32::new(per_account).unwrap(),
            failures_per_address: NonZeroU32::new(per_address).unwrap(),
            ..LoginLimits::default()
        })
    }

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn an_account_is_refused_after_its_failures_run_out() {
        let guard = guard(3, 100);
        for _ in 0..3 {
            assert_eq!(guard.check("a@x.dev", HOME), Ok(()));
            assert_eq!(guard.failed("a@x.dev", HOME), Ok(()));
        }
        let wait = guard.failed("a@x.dev", HOME).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(guard.check("a@x.dev", None).is_err());
        // Another account from the same address is not refused.
        assert_eq!(guard.check("b@x.dev", HOME), Ok(()));
    }

    #[test]
    fn an_address_is_refused_after_its_failures_run_out_whatever_the_account() {
        let guard = guard(100, 2);
        assert_eq!(guard.failed("a@x.dev", HOME), Ok(()));
        assert_eq!(guard.failed("b@x.dev", HOME), Ok(()));
        assert!(guard.failed("c@x.dev", HOME).is_err());
        assert!(guard.check("d@x.dev", HOME).is_err());
        assert_eq!(guard.check("d@x.dev", None), Ok(()));
    }

    #[test]
    fn checking_uses_up_nothing() {
        let guard = guard(1, 1);
        for _ in 0..100 {
            assert_eq!(guard.check("a@x.dev", HOME), Ok(()));
        }
        assert_eq!(guard.failed("a@x.dev", HOME), Ok(()));
    }
}
