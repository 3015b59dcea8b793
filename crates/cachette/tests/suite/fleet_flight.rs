//! One fetch per hot miss across the fleet: instances sharing a Redis store take a lease on a
//! missed key before fetching it, and the others wait for the entry the holder stores, never
//! longer than the bound, and never for a value older than an invalidation they started after.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cachette::store::LeaseToken;
use cachette::{Cache, Config, Fetched, Invalidation, Namespace, Outcome, Policy, Store, Tag};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use crate::support::{Flaky, redis_store, unique_namespace};

const POLICY: Policy = Policy::new("fleet_flight", Duration::from_secs(60));

/// Longer than any of these tests should take: a regression fails here, it does not hang.
const LIMIT: Duration = Duration::from_secs(20);

/// A lease wait far longer than the tests allow themselves, so waiting it out shows.
const LONG_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq, Eq)]
struct SourceDown;

/// A "database": one number that writes increase, and how many fetches read it.
#[derive(Clone, Default)]
struct Source {
    version: Arc<AtomicU64>,
    fetches: Arc<AtomicUsize>,
}

impl Source {
    /// A fetch that takes `delay`, counted when it starts.
    fn fetch(&self, delay: Duration) -> impl Future<Output = Result<u64, SourceDown>> + use<> {
        let source = self.clone();
        async move {
            source.fetches.fetch_add(1, Ordering::SeqCst);
            sleep(delay).await;
            Ok(source.version.load(Ordering::SeqCst))
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn get<S: Store, Fut>(
    cache: &Cache<S>,
    tag: &Tag,
    fetch: impl FnOnce() -> Fut,
) -> Result<Fetched<u64>, SourceDown>
where
    Fut: Future<Output = Result<u64, SourceDown>>,
{
    let key = cache.key("hot").build();
    cache
        .get_or_fetch(&key, std::slice::from_ref(tag), &POLICY, fetch)
        .await
}

/// An instance of the app: its own cache and connection, on the shared Redis.
async fn instance(namespace: &Namespace, config: Config) -> Cache<cachette::RedisStore> {
    Cache::builder(redis_store().await, namespace.clone())
        .config(config)
        .build()
}

fn waiting_long() -> Config {
    Config {
        lease_wait: LONG_WAIT,
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_entry_invalidated_while_4_instances_of_32_tasks_read_it_runs_exactly_one_fetch() {
    timeout(LIMIT, async {
        // Arrange: four instances, the entry warm, 32 readers on each.
        let namespace = unique_namespace();
        let mut caches = Vec::new();
        for _ in 0..4 {
            caches.push(instance(&namespace, Config::default()).await);
        }
        let tag = caches[0].tag("hot");
        let source = Source::default();
        source.version.store(1, Ordering::SeqCst);
        let warm = get(&caches[0], &tag, || source.fetch(Duration::ZERO)).await;
        assert_eq!(warm.unwrap().value, 1);
        source.fetches.store(0, Ordering::SeqCst);

        let stop = Arc::new(AtomicBool::new(false));
        let invalidated = Arc::new(AtomicBool::new(false));
        let mut readers = JoinSet::new();
        for cache in &caches {
            for _ in 0..32 {
                let (cache, tag, source) = (cache.clone(), tag.clone(), source.clone());
                let (stop, invalidated) = (stop.clone(), invalidated.clone());
                readers.spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let after_write = invalidated.load(Ordering::SeqCst);
                        let read = get(&cache, &tag, || source.fetch(Duration::from_millis(50)))
                            .await
                            .unwrap();
                        assert_ne!(read.outcome, Outcome::Bypass);
                        if after_write {
                            assert_eq!(
                                read.value, 2,
                                "a read begun after the write got older data"
                            );
                        }
                        sleep(Duration::from_millis(1)).await;
                    }
                });
            }
        }
        sleep(Duration::from_millis(100)).await;
        assert_eq!(source.fetches(), 0, "the warm entry serves every reader");

        // Act: the write, then readers go on for a while.
        source.version.store(2, Ordering::SeqCst);
        let invalidation = caches[0].invalidate_tags(std::slice::from_ref(&tag)).await;
        assert_eq!(invalidation, Invalidation::Applied);
        invalidated.store(true, Ordering::SeqCst);
        sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
        while let Some(reader) = readers.join_next().await {
            reader.expect("a reader failed");
        }

        // Assert
        let lease_waits: u64 = caches.iter().map(|cache| cache.stats().lease_waits).sum();
        assert_eq!(
            source.fetches(),
            1,
            "one fetch in the fleet ({lease_waits} lease waits)"
        );
        assert!(
            lease_waits >= 1,
            "other instances waited for the holder's entry"
        );
    })
    .await
    .expect("the test ran past its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holders_fetch_failing_lets_another_instance_fetch_at_once() {
    timeout(LIMIT, async {
        let namespace = unique_namespace();
        let holder = instance(&namespace, waiting_long()).await;
        let waiter = instance(&namespace, waiting_long()).await;
        let tag = holder.tag("hot");
        let source = Source::default();
        source.version.store(7, Ordering::SeqCst);

        let (started, fetching) = oneshot::channel();
        let failed_at = Arc::new(parking_lot::Mutex::new(None));
        let holding = tokio::spawn({
            let (holder, tag, failed_at) = (holder.clone(), tag.clone(), failed_at.clone());
            async move {
                get(&holder, &tag, || async move {
                    started.send(()).unwrap();
                    sleep(Duration::from_millis(150)).await;
                    *failed_at.lock() = Some(Instant::now());
                    Err(SourceDown)
                })
                .await
            }
        });
        fetching.await.unwrap();

        let began = Instant::now();
        let fetch_started = Arc::new(parking_lot::Mutex::new(None));
        let read = get(&waiter, &tag, || {
            *fetch_started.lock() = Some(Instant::now());
            source.fetch(Duration::ZERO)
        })
        .await;

        assert_eq!(
            holding.await.unwrap(),
            Err(SourceDown),
            "the holder's own error"
        );
        assert_eq!(read.unwrap().value, 7, "the waiter's request does not fail");
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "it took the released lease, it did not wait out the bound ({:?})",
            began.elapsed()
        );
        let fetch_started = fetch_started.lock().expect("the waiter fetched");
        let failed_at = failed_at.lock().expect("the holder's fetch failed");
        assert!(
            fetch_started >= failed_at,
            "the waiter waited for the holder"
        );
        assert_eq!(source.fetches(), 1);
    })
    .await
    .expect("the test ran past its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_cancelled_mid_fetch_gives_its_lease_back() {
    timeout(LIMIT, async {
        let namespace = unique_namespace();
        let holder = instance(&namespace, waiting_long()).await;
        let waiter = instance(&namespace, waiting_long()).await;
        let tag = holder.tag("hot");
        let source = Source::default();

        let (started, fetching) = oneshot::channel();
        let holding = tokio::spawn({
            let (holder, tag) = (holder.clone(), tag.clone());
            async move {
                get(&holder, &tag, || async move {
                    started.send(()).unwrap();
                    sleep(Duration::from_secs(3600)).await;
                    Ok(0)
                })
                .await
            }
        });
        fetching.await.unwrap();
        let reading = tokio::spawn({
            let (waiter, tag, source) = (waiter.clone(), tag.clone(), source.clone());
            async move { get(&waiter, &tag, || source.fetch(Duration::ZERO)).await }
        });
        sleep(Duration::from_millis(50)).await;
        assert_eq!(
            source.fetches(),
            0,
            "the waiter waits while the lease is held"
        );

        holding.abort();
        let cancelled = Instant::now();
        let read = reading.await.unwrap().unwrap();
        assert_eq!(read.outcome, Outcome::Miss);
        assert!(
            cancelled.elapsed() < Duration::from_secs(1),
            "the lease came back with the cancellation ({:?})",
            cancelled.elapsed()
        );
        assert_eq!(source.fetches(), 1);
    })
    .await
    .expect("the test ran past its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failing_during_the_wait_falls_back_to_the_fetch() {
    timeout(LIMIT, async {
        let namespace = unique_namespace();
        let holder = instance(&namespace, waiting_long()).await;
        let flaky = Flaky::new(redis_store().await);
        let failing = flaky.failing.clone();
        let waiter = Cache::builder(flaky, namespace.clone())
            .config(waiting_long())
            .build();
        let tag = holder.tag("hot");
        let source = Source::default();
        source.version.store(3, Ordering::SeqCst);

        let (started, fetching) = oneshot::channel();
        let holding = tokio::spawn({
            let (holder, tag) = (holder.clone(), tag.clone());
            async move {
                get(&holder, &tag, || async move {
                    started.send(()).unwrap();
                    sleep(Duration::from_secs(3)).await;
                    Ok(3)
                })
                .await
            }
        });
        fetching.await.unwrap();
        let reading = tokio::spawn({
            let (waiter, tag, source) = (waiter.clone(), tag.clone(), source.clone());
            async move { get(&waiter, &tag, || source.fetch(Duration::ZERO)).await }
        });
        sleep(Duration::from_millis(100)).await;
        assert_eq!(
            source.fetches(),
            0,
            "the waiter waits while the lease is held"
        );

        failing.store(true, Ordering::SeqCst);
        let broke = Instant::now();
        let read = reading.await.unwrap();
        assert_eq!(read.unwrap().value, 3, "the request does not fail");
        assert!(
            broke.elapsed() < Duration::from_secs(1),
            "the waiter fetched as soon as the store failed ({:?})",
            broke.elapsed()
        );
        assert_eq!(source.fetches(), 1);
        holding.abort();
    })
    .await
    .expect("the test ran past its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_starts_after_an_invalidation_never_takes_the_holders_older_value() {
    timeout(LIMIT, async {
        let namespace = unique_namespace();
        let holder = instance(&namespace, waiting_long()).await;
        let waiter = instance(&namespace, waiting_long()).await;
        let tag = holder.tag("hot");
        let source = Source::default();
        source.version.store(1, Ordering::SeqCst);

        // The holder reads version 1, then takes its time storing it.
        let (started, fetching) = oneshot::channel();
        let holding = tokio::spawn({
            let (holder, tag) = (holder.clone(), tag.clone());
            async move {
                get(&holder, &tag, || async move {
                    started.send(()).unwrap();
                    sleep(Duration::from_millis(200)).await;
                    Ok(1)
                })
                .await
            }
        });
        fetching.await.unwrap();
        source.version.store(2, Ordering::SeqCst);
        let invalidation = waiter.invalidate_tags(std::slice::from_ref(&tag)).await;
        assert_eq!(invalidation, Invalidation::Applied);

        let began = Instant::now();
        let read = get(&waiter, &tag, || source.fetch(Duration::ZERO))
            .await
            .unwrap();

        assert_eq!(holding.await.unwrap().unwrap().value, 1);
        assert_eq!(
            read.value, 2,
            "the waiter got the value fetched before the write"
        );
        assert_eq!(waiter.stats().lease_waits, 0);
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "no wait past the holder"
        );
    })
    .await
    .expect("the test ran past its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_released_between_a_miss_and_its_lease_attempt_comes_with_the_holders_entry() {
    timeout(LIMIT, async {
        let namespace = unique_namespace();
        let holder = instance(&namespace, waiting_long()).await;
        let flaky = Flaky::new(redis_store().await);
        let lease_gate = flaky.lease_gate.clone();
        let waiter = Cache::builder(flaky, namespace.clone())
            .config(Config {
                store_timeout: LIMIT,
                ..waiting_long()
            })
            .build();
        let tag = holder.tag("hot");
        let source = Source::default();

        // The holder fetches until told to finish.
        let (started, fetching) = oneshot::channel();
        let (finish, finishing) = oneshot::channel::<()>();
        let holding = tokio::spawn({
            let (holder, tag) = (holder.clone(), tag.clone());
            async move {
                get(&holder, &tag, || async move {
                    started.send(()).unwrap();
                    finishing.await.unwrap();
                    Ok(5)
                })
                .await
            }
        });
        fetching.await.unwrap();

        // The waiter misses, and is held just before its lease attempt.
        let (arrived, at_lease) = oneshot::channel();
        let (through, let_through) = oneshot::channel();
        *lease_gate.lock() = Some((arrived, let_through));
        let reading = tokio::spawn({
            let (waiter, tag, source) = (waiter.clone(), tag.clone(), source.clone());
            async move { get(&waiter, &tag, || source.fetch(Duration::ZERO)).await }
        });
        at_lease.await.unwrap();

        // Meanwhile the holder stores its entry and releases the lease.
        finish.send(()).unwrap();
        assert_eq!(holding.await.unwrap().unwrap().value, 5);
        through.send(()).unwrap();
        let read = reading.await.unwrap().unwrap();

        assert_eq!((read.value, read.outcome), (5, Outcome::Miss));
        assert_eq!(
            source.fetches(),
            0,
            "the free lease came with the entry: no fetch"
        );
        assert_eq!(waiter.stats().lease_waits, 1);
    })
    .await
    .expect("the test ran past its limit");
}

#[tokio::test]
async fn a_redis_lease_is_granted_once_released_only_by_its_token_and_cleared_with_the_namespace() {
    timeout(LIMIT, async {
        let namespace = unique_namespace();
        let store = redis_store().await;
        let key = namespace.key("leased").build();
        let key = key.as_str();
        let ttl = Duration::from_secs(10);

        let token = store.try_lease(key, &[], ttl).await.unwrap().token;
        let token = token.expect("a free lease is granted");
        let taken = store.try_lease(key, &[], ttl).await.unwrap();
        assert_eq!(taken.token, None, "a held lease is not granted again");

        store
            .release_lease(key, LeaseToken(token.0.wrapping_add(1)))
            .await
            .unwrap();
        let taken = store.try_lease(key, &[], ttl).await.unwrap();
        assert_eq!(taken.token, None, "another token does not release it");
        store.release_lease(key, token).await.unwrap();
        let script: Vec<bool> = redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg(cachette::internals::RELEASE_LEASE_SHA)
            .query_async(&mut store.connection())
            .await
            .unwrap();
        assert_eq!(
            script,
            [true],
            "the release script is the one EVALSHA names"
        );
        assert!(
            store
                .try_lease(key, &[], ttl)
                .await
                .unwrap()
                .token
                .is_some(),
            "its holder's token released it"
        );

        let cache = Cache::builder(store.clone(), namespace.clone()).build();
        cache.clear().await.unwrap();
        assert!(
            store
                .try_lease(key, &[], ttl)
                .await
                .unwrap()
                .token
                .is_some(),
            "clearing the namespace removed the lease"
        );

        let short = namespace.key("short").build();
        let short = short.as_str();
        let ttl = Duration::from_millis(50);
        assert!(
            store
                .try_lease(short, &[], ttl)
                .await
                .unwrap()
                .token
                .is_some()
        );
        sleep(Duration::from_millis(100)).await;
        assert!(
            store
                .try_lease(short, &[], ttl)
                .await
                .unwrap()
                .token
                .is_some(),
            "an unreleased lease expires"
        );
    })
    .await
    .expect("the test ran past its limit");
}
