//! `Cache::get_or_refresh`: stale-while-revalidate and fetch time limits, on every store.
//!
//! Fetches that must be slow wait on a gate the test opens, not on the clock: only the
//! policies' short TTLs and time limits are times.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cachette::{Cache, FetchTimedOut, Fetched, Json, Key, Outcome, Policy, Store, Tag};
use tokio::sync::Semaphore;

use crate::support::{suite, unique_namespace};

/// How long a test waits for what a background fetch stores before failing.
const BACKGROUND_LIMIT: Duration = Duration::from_secs(5);
/// Entries of the tests expire after this.
const TTL: Duration = Duration::from_millis(300);

#[derive(Debug, PartialEq)]
enum Failed {
    TimedOut,
    Database,
}

impl From<FetchTimedOut> for Failed {
    fn from(_: FetchTimedOut) -> Self {
        Failed::TimedOut
    }
}

/// A policy of short-lived entries with nothing else set.
fn short() -> Policy {
    Policy {
        jitter: 0.0,
        stale_if_error: Duration::ZERO,
        ..Policy::new("short", TTL)
    }
}

/// A fetch held until the test opens its gate, counting its runs.
#[derive(Clone)]
struct Gated {
    gate: Arc<Semaphore>,
    runs: Arc<AtomicU64>,
}

impl Gated {
    fn new() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(0)),
            runs: Arc::new(AtomicU64::new(0)),
        }
    }

    fn open(&self) {
        self.gate.add_permits(1 << 20);
    }

    fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }

    /// Reads `key` through `get_or_refresh`, with a fetch that waits for the gate, then
    /// answers `value`.
    async fn read<S: Store>(
        &self,
        cache: &Cache<S>,
        key: &Key,
        tag: &Tag,
        policy: &Policy,
        value: u32,
    ) -> Result<Fetched<u32>, Failed> {
        let fetch = self.clone();
        cache
            .get_or_refresh(
                key,
                std::slice::from_ref(tag),
                policy,
                Json,
                move || async move {
                    fetch.runs.fetch_add(1, Ordering::SeqCst);
                    let _open = fetch.gate.acquire().await;
                    Ok(value)
                },
            )
            .await
    }
}

/// Stores `value` under `key` at once, kept as `policy` keeps it.
async fn store<S: Store>(cache: &Cache<S>, key: &Key, tag: &Tag, policy: &Policy, value: u32) {
    let fetched = cache
        .get_or_fetch(key, std::slice::from_ref(tag), policy, || async {
            Ok::<_, Failed>(value)
        })
        .await
        .unwrap();
    assert_eq!(fetched.outcome, Outcome::Miss);
}

/// Waits until `key` holds `value`, stored by a fetch in the background (this read's own
/// fetch fails, so it never stores anything).
async fn until_stored<S: Store>(cache: &Cache<S>, key: &Key, tag: &Tag, value: u32) {
    let waiting = async {
        loop {
            let read = cache
                .get_or_fetch(key, std::slice::from_ref(tag), &short(), || async {
                    Err::<u32, _>(Failed::Database)
                })
                .await;
            if read.is_ok_and(|read| read.value == value && read.outcome != Outcome::Stale) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(BACKGROUND_LIMIT, waiting)
        .await
        .unwrap_or_else(|_| panic!("{value} was not stored within {BACKGROUND_LIMIT:?}"));
}

/// Fails the test, rather than hanging it, when a read waits for a fetch it should not.
async fn at_once<T>(read: impl Future<Output = T>) -> T {
    tokio::time::timeout(BACKGROUND_LIMIT, read)
        .await
        .expect("the read waited for its fetch")
}

fn cache<S: Store>(store: S) -> Cache<S> {
    Cache::builder(store, unique_namespace()).build()
}

pub async fn an_entry_within_its_revalidate_grace_is_served_stale_while_one_fetch_refreshes_it<
    S: Store,
>(
    store_: S,
) {
    let cache = cache(store_);
    let (key, tag) = (cache.key("swr").build(), cache.tag("t"));
    let policy = Policy {
        stale_while_revalidate: Duration::from_secs(60),
        ..short()
    };
    store(&cache, &key, &tag, &policy, 1).await;
    tokio::time::sleep(TTL * 2).await;

    let fetch = Gated::new();
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (cache, key, tag, policy, fetch) = (
            cache.clone(),
            key.clone(),
            tag.clone(),
            policy,
            fetch.clone(),
        );
        reads.spawn(async move { fetch.read(&cache, &key, &tag, &policy, 2).await });
    }
    let served = at_once(reads.join_all()).await;

    for read in served {
        let read = read.unwrap();
        assert_eq!((read.outcome, read.value), (Outcome::Stale, 1));
    }
    fetch.open();
    until_stored(&cache, &key, &tag, 2).await;
    assert_eq!(fetch.runs(), 1, "one refresh for eight stale reads");
}

pub async fn an_invalidated_entry_is_never_served_stale_by_a_refreshing_read<S: Store>(store_: S) {
    let cache = cache(store_);
    let (key, tag) = (cache.key("swr-invalidated").build(), cache.tag("t"));
    // Every way of serving an old entry is on.
    let policy = Policy {
        stale_while_revalidate: Duration::from_secs(60),
        stale_if_error: Duration::from_secs(60),
        soft_timeout: Some(Duration::from_millis(10)),
        ..short()
    };
    store(&cache, &key, &tag, &policy, 1).await;
    tokio::time::sleep(TTL * 2).await;
    cache.invalidate_tags(std::slice::from_ref(&tag)).await;

    let fetch = Gated::new();
    let read = fetch.read(&cache, &key, &tag, &policy, 2);
    tokio::pin!(read);
    // It waits for its fetch: nothing else may be served.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut read)
            .await
            .is_err(),
        "an invalidated entry was served"
    );
    fetch.open();
    let read = at_once(read).await.unwrap();
    assert_eq!((read.outcome, read.value), (Outcome::Miss, 2));
}

pub async fn a_fetch_past_the_soft_timeout_serves_the_expired_entry_and_stores_later<S: Store>(
    store_: S,
) {
    let cache = cache(store_);
    let (key, tag) = (cache.key("soft").build(), cache.tag("t"));
    let policy = Policy {
        stale_if_error: Duration::from_secs(60),
        soft_timeout: Some(Duration::from_millis(50)),
        ..short()
    };
    store(&cache, &key, &tag, &policy, 1).await;
    tokio::time::sleep(TTL * 2).await;

    let fetch = Gated::new();
    let read = at_once(fetch.read(&cache, &key, &tag, &policy, 2))
        .await
        .unwrap();

    assert_eq!((read.outcome, read.value), (Outcome::Stale, 1));
    fetch.open();
    until_stored(&cache, &key, &tag, 2).await;
}

pub async fn past_the_soft_timeout_with_no_entry_kept_the_read_waits_for_its_fetch<S: Store>(
    store_: S,
) {
    let cache = cache(store_);
    let (key, tag) = (cache.key("soft-nothing").build(), cache.tag("t"));
    let policy = Policy {
        soft_timeout: Some(Duration::from_millis(10)),
        ..short()
    };

    let fetch = Gated::new();
    let read = fetch.read(&cache, &key, &tag, &policy, 7);
    tokio::pin!(read);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut read)
            .await
            .is_err(),
        "the read answered without its fetch"
    );
    fetch.open();
    let read = at_once(read).await.unwrap();
    assert_eq!((read.outcome, read.value), (Outcome::Miss, 7));
}

pub async fn a_fetch_past_the_hard_timeout_fails_the_read_and_still_stores_its_value<S: Store>(
    store_: S,
) {
    let cache = cache(store_);
    let (key, tag) = (cache.key("hard").build(), cache.tag("t"));
    let policy = Policy {
        hard_timeout: Some(Duration::from_millis(50)),
        ..short()
    };

    let fetch = Gated::new();
    let read = at_once(fetch.read(&cache, &key, &tag, &policy, 3)).await;

    assert_eq!(read, Err(Failed::TimedOut));
    fetch.open();
    until_stored(&cache, &key, &tag, 3).await;
}

suite!(
    an_entry_within_its_revalidate_grace_is_served_stale_while_one_fetch_refreshes_it,
    an_invalidated_entry_is_never_served_stale_by_a_refreshing_read,
    a_fetch_past_the_soft_timeout_serves_the_expired_entry_and_stores_later,
    past_the_soft_timeout_with_no_entry_kept_the_read_waits_for_its_fetch,
    a_fetch_past_the_hard_timeout_fails_the_read_and_still_stores_its_value,
);
