//! Reads that need not wait for their fetch: stale-while-revalidate and fetch time limits.
//!
//! [`Cache::get_or_refresh`] is [`Cache::get_or_fetch_with`] for a fetch that may outlive the
//! call (it owns what it uses), so that the call can answer before the fetch ends:
//!
//! - an entry past its TTL by less than the policy's `stale_while_revalidate` is served at once
//!   as [`Outcome::Stale`], while one fetch per key and snapshot (the flight's leader) refreshes
//!   it in the background;
//! - a fetch slower than `soft_timeout` serves the entry past its TTL when one is kept within
//!   `stale_if_error`, and a fetch slower than `hard_timeout` fails the call with
//!   [`FetchTimedOut`]; either way the fetch goes on and stores its value for later readers.
//!
//! An invalidated entry is never served by any of these paths: an entry read under generations
//! that have changed since is judged superseded, not expired, and only expired entries are kept
//! to be served stale. A stale answer is one the entry held before the read started, as any
//! read that started before an invalidation returned may get.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Cache, Fetched};
use crate::cache::{Entry, Lookup, Missed};
use crate::codec::Codec;
use crate::flight::Role;
use crate::key::{Key, Tag};
use crate::policy::Policy;
use crate::stats::Outcome;
use crate::store::Store;

/// A fetch ran past the policy's `hard_timeout`: the call gave up waiting for it (the fetch
/// itself goes on, and stores its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the fetch took longer than {0:?}")]
pub struct FetchTimedOut(pub Duration);

impl<S: Store> Cache<S> {
    /// Like [`Cache::get_or_fetch_with`], for a fetch that may outlive the call: with the
    /// policy's `stale_while_revalidate`, `soft_timeout` and `hard_timeout`. With none of them set, it is `get_or_fetch_with`.
    ///
    /// # Concurrent calls on the same key
    /// As `get_or_fetch_with`: one fetch per key and snapshot in this process (and, on a
    /// shared store, in the fleet). While a background refresh runs, other callers that find
    /// the entry past its TTL within the grace are served it at once and start no other fetch.
    ///
    /// # Errors
    /// The error of `fetch`, which is never cached, or [`FetchTimedOut`] past the hard timeout.
    /// An entry past its TTL within `stale_if_error` is served instead of either, as
    /// [`Outcome::Stale`].
    pub async fn get_or_refresh<T, C, F, Fut, E>(
        &self,
        key: &Key,
        tags: &[Tag],
        policy: &Policy,
        codec: C,
        fetch: F,
    ) -> Result<Fetched<T>, E>
    where
        T: Send + 'static,
        C: Codec<T> + Send + Sync + 'static,
        E: From<FetchTimedOut> + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let revalidates = !policy.stale_while_revalidate.is_zero();
        if !revalidates && policy.soft_timeout.is_none() && policy.hard_timeout.is_none() {
            return self
                .get_or_fetch_with(key, tags, policy, &codec, fetch)
                .await;
        }
        if let Some(hit) = self.local_fetched(key, &codec) {
            return Ok(hit);
        }
        let entry = Entry { key, tags, policy };
        let result = match self.lookup(entry).await {
            Lookup::Hit { payload, snapshot } => match codec.decode(&payload) {
                Some(value) => Ok(Fetched {
                    value,
                    outcome: Outcome::Hit,
                }),
                None => {
                    self.discard_corrupt(key).await;
                    let missed = Missed {
                        snapshot,
                        learned: self.tier_counter(),
                        stale: None,
                    };
                    self.fill_in_time(entry, missed, codec, fetch).await
                }
            },
            Lookup::Miss(missed) => match self.revalidating(entry, &missed, &codec) {
                Some(value) => {
                    self.refresh_in_background(entry, missed, codec, fetch);
                    Ok(Fetched {
                        value,
                        outcome: Outcome::Stale,
                    })
                }
                None => self.fill_in_time(entry, missed, codec, fetch).await,
            },
            Lookup::Bypass => match policy.hard_timeout {
                Some(limit) => tokio::time::timeout(limit, fetch())
                    .await
                    .unwrap_or_else(|_| Err(FetchTimedOut(limit).into())),
                None => fetch().await,
            }
            .map(|value| Fetched {
                value,
                outcome: Outcome::Bypass,
            }),
        };
        if let Ok(fetched) = &result {
            self.record(key, fetched.outcome);
        }
        result
    }

    /// The value of the entry past its TTL that `missed` kept, when it expired within the
    /// policy's stale-while-revalidate grace and decodes.
    fn revalidating<T>(
        &self,
        entry: Entry<'_>,
        missed: &Missed,
        codec: &impl Codec<T>,
    ) -> Option<T> {
        let grace = entry.policy.stale_while_revalidate;
        let stale = missed.stale.as_ref().filter(|stale| stale.within(grace))?;
        self.stale_value(stale, codec)
    }

    /// Starts the refresh of an entry served stale, unless one is under way for the same key
    /// and snapshot.
    fn refresh_in_background<T, C, F, Fut, E>(
        &self,
        entry: Entry<'_>,
        missed: Missed,
        codec: C,
        fetch: F,
    ) where
        T: Send + 'static,
        C: Codec<T> + Send + Sync + 'static,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let Role::Leader(leader) = self.flights().join(entry.key.as_str(), &missed.snapshot) else {
            return;
        };
        let cache = self.clone();
        let owned = OwnedEntry::of(entry);
        let missed = Missed {
            stale: None,
            ..missed
        };
        tokio::spawn(async move {
            let _ = cache
                .lead(leader, owned.entry(), missed, &codec, fetch)
                .await;
        });
    }

    /// Fetches a miss in a task of its own, waiting for it within the policy's time limits.
    async fn fill_in_time<T, C, F, Fut, E>(
        &self,
        entry: Entry<'_>,
        missed: Missed,
        codec: C,
        fetch: F,
    ) -> Result<Fetched<T>, E>
    where
        T: Send + 'static,
        C: Codec<T> + Send + Sync + 'static,
        E: From<FetchTimedOut> + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let policy = *entry.policy;
        let stale = missed
            .stale
            .clone()
            .filter(|stale| stale.within(policy.stale_if_error));
        let codec = Arc::new(codec);
        let cache = self.clone();
        let owned = OwnedEntry::of(entry);
        let fill_codec = codec.clone();
        let mut fill =
            tokio::spawn(
                async move { cache.fill(owned.entry(), missed, &*fill_codec, fetch).await },
            );
        let started = tokio::time::Instant::now();
        let finished = |joined: Result<_, tokio::task::JoinError>| match joined {
            Ok(result) => result,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        if let (Some(soft), Some(stale)) = (policy.soft_timeout, &stale) {
            if let Ok(joined) = tokio::time::timeout(soft, &mut fill).await {
                return finished(joined);
            }
            if let Some(value) = self.stale_value(stale, &*codec) {
                return Ok(Fetched {
                    value,
                    outcome: Outcome::Stale,
                });
            }
        }
        let joined = match policy.hard_timeout {
            Some(hard) => {
                let left = hard.saturating_sub(started.elapsed());
                match tokio::time::timeout(left, &mut fill).await {
                    Ok(joined) => joined,
                    Err(_) => return Err(FetchTimedOut(hard).into()),
                }
            }
            None => (&mut fill).await,
        };
        finished(joined)
    }
}

/// What an [`Entry`] borrows, owned, for a fetch that runs in a task of its own.
struct OwnedEntry {
    key: Key,
    tags: Vec<Tag>,
    policy: Policy,
}

impl OwnedEntry {
    fn of(entry: Entry<'_>) -> Self {
        Self {
            key: entry.key.clone(),
            tags: entry.tags.to_vec(),
            policy: *entry.policy,
        }
    }

    fn entry(&self) -> Entry<'_> {
        Entry {
            key: &self.key,
            tags: &self.tags,
            policy: &self.policy,
        }
    }
}
