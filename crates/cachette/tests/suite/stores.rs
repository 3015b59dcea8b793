//! The store suite: every test here runs against every store (see `suite!` at the bottom).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cachette::{Cache, Config, Fetched, Invalidation, Key, Outcome, Policy, Store, Tag};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::support::{FIVE_MINUTES, Flaky, ONE_HOUR, suite, unique_namespace};

/// A cache over a store whose failures a test controls.
fn flaky_cache<S: Store>(store: S, config: Config) -> Cache<Flaky<S>> {
    Cache::builder(Flaky::new(store), unique_namespace())
        .config(config)
        .build()
}

/// Reads the course entry under `key`, tagged `tag`; a miss stores `value`.
async fn read_course<S: Store>(
    cache: &Cache<S>,
    key: &Key,
    tag: &Tag,
    value: &str,
) -> Fetched<String> {
    cache
        .get_or_fetch(key, std::slice::from_ref(tag), &ONE_HOUR, || async {
            Ok::<_, Infallible>(value.to_string())
        })
        .await
        .unwrap()
}

fn cache<S: Store>(store: S) -> Cache<S> {
    Cache::builder(store, unique_namespace()).build()
}

/// A fetch that counts its calls and answers `value`.
fn counting(
    calls: &Arc<AtomicU64>,
    value: Value,
) -> impl FnOnce() -> std::future::Ready<Result<Value, Infallible>> {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value))
    }
}

pub async fn any_value_is_a_hit_including_empty_ones<S: Store>(store: S) {
    let cache = cache(store);
    for (i, value) in [
        json!(null),
        json!(0),
        json!(false),
        json!(""),
        json!([]),
        json!({}),
    ]
    .into_iter()
    .enumerate()
    {
        let key = cache.key("values").param("i", i).build();
        let calls = Arc::new(AtomicU64::new(0));
        let first = cache
            .get_or_fetch(&key, &[], &FIVE_MINUTES, counting(&calls, value.clone()))
            .await
            .unwrap();
        let second = cache
            .get_or_fetch(&key, &[], &FIVE_MINUTES, counting(&calls, json!("other")))
            .await
            .unwrap();
        assert_eq!(
            (first.outcome, second.outcome),
            (Outcome::Miss, Outcome::Hit),
            "{value}"
        );
        assert_eq!(second.value, value);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{value} was fetched twice");
    }
}

pub async fn a_raw_hit_returns_the_stored_bytes_unchanged<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("raw").build();
    let body = Bytes::from_static(br#"{"data":[1, 2,3],"note":"spacing kept"}"#);
    let fetch = |b: Bytes| async move { Ok::<_, Infallible>(b) };
    let miss = cache
        .get_or_fetch_raw(&key, &[], &ONE_HOUR, || fetch(body.clone()))
        .await
        .unwrap();
    let hit = cache
        .get_or_fetch_raw(&key, &[], &ONE_HOUR, || fetch(Bytes::new()))
        .await
        .unwrap();
    assert_eq!((miss.outcome, hit.outcome), (Outcome::Miss, Outcome::Hit));
    assert_eq!(hit.value, body);
}

/// A remote store gets large payloads compressed (they cross the network); an in-process store
/// keeps them as they are, so a hit does not decompress them.
pub async fn large_values_round_trip_compressed_only_in_remote_stores<S: Store>(store: S) {
    let remote = store.is_remote();
    let cache = flaky_cache(store, Config::default());
    let set_bytes = cache.store().set_bytes.clone();
    let key = cache.key("large").build();
    let value: Vec<String> = (0..5000).map(|i| format!("lesson {i}")).collect();
    let payload_len = serde_json::to_vec(&value).unwrap().len() as u64;
    let fetch = || async { Ok::<_, Infallible>(value.clone()) };
    cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, fetch)
        .await
        .unwrap();
    let hit = cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>(Vec::<String>::new())
        })
        .await
        .unwrap();
    assert_eq!(hit.outcome, Outcome::Hit);
    assert_eq!(hit.value, value);
    let stored = set_bytes.load(Ordering::SeqCst);
    assert_eq!(
        stored < payload_len,
        remote,
        "{stored} bytes stored for {payload_len}"
    );
}

pub async fn invalidating_a_tag_refreshes_exactly_its_entries<S: Store>(store: S) {
    let cache = cache(store);
    let course1 = [cache.tag("course:1")];
    let course2 = [cache.tag("course:2")];
    let both = [course1[0].clone(), course2[0].clone()];
    let detail1 = cache.key("course").param("id", 1).build();
    let detail2 = cache.key("course").param("id", 2).build();
    let list = cache.key("courses").build();
    let get = async |key, tags: &[cachette::Tag], v: u64| {
        cache
            .get_or_fetch(key, tags, &ONE_HOUR, || async { Ok::<_, Infallible>(v) })
            .await
            .unwrap()
    };
    get(&detail1, &course1, 1).await;
    get(&detail2, &course2, 1).await;
    get(&list, &both, 1).await;

    assert_eq!(cache.invalidate_tags(&course1).await, Invalidation::Applied);

    let after1 = get(&detail1, &course1, 2).await;
    let after2 = get(&detail2, &course2, 2).await;
    let after_list = get(&list, &both, 2).await;
    assert_eq!((after1.outcome, after1.value), (Outcome::Miss, 2));
    assert_eq!((after2.outcome, after2.value), (Outcome::Hit, 1));
    assert_eq!((after_list.outcome, after_list.value), (Outcome::Miss, 2));
}

pub async fn invalidation_is_one_store_operation_whatever_the_number_of_entries<S: Store>(
    store: S,
) {
    let cache = cache(Flaky::new(store));
    let tag = cache.tag("popular");
    for i in 0..300 {
        let key = cache.key("item").param("i", i).build();
        cache
            .get_or_fetch(&key, std::slice::from_ref(&tag), &FIVE_MINUTES, || async {
                Ok::<_, Infallible>(i)
            })
            .await
            .unwrap();
    }
    let calls_before = cache.store().calls.load(Ordering::SeqCst);
    cache.invalidate_tags(std::slice::from_ref(&tag)).await;
    assert_eq!(cache.store().calls.load(Ordering::SeqCst) - calls_before, 1);
    assert_eq!(cache.store().bumped_keys.load(Ordering::SeqCst), 1);
    let key = cache.key("item").param("i", 7).build();
    let after = cache
        .get_or_fetch(&key, &[tag], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>(-1)
        })
        .await
        .unwrap();
    assert_eq!((after.outcome, after.value), (Outcome::Miss, -1));
}

pub async fn concurrent_misses_on_one_key_fetch_once<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("hot").build();
    let calls = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (cache, key, calls, barrier) =
                (cache.clone(), key.clone(), calls.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, Infallible>("value".to_string())
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().value, "value");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(cache.stats().coalesced >= 1);
}

/// A reader that starts after an invalidation must not take the value of a fetch that began
/// before it, even though that fetch is still running for the same key.
pub async fn a_reader_after_an_invalidation_does_not_join_an_older_fetch<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("course").param("id", 1).build();
    let tag = cache.tag("course:1");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let old_reader = {
        let (cache, key, tag) = (cache.clone(), key.clone(), tag.clone());
        tokio::spawn(async move {
            cache
                .get_or_fetch(&key, &[tag], &ONE_HOUR, || async {
                    let old = "old".to_string(); // read from the database before the write
                    started_tx.send(()).unwrap();
                    release_rx.await.unwrap();
                    Ok::<_, Infallible>(old)
                })
                .await
                .unwrap()
        })
    };
    started_rx.await.unwrap();
    // The write commits, then its invalidation returns.
    cache.invalidate_tags(std::slice::from_ref(&tag)).await;
    let new_reader = {
        let (cache, key, tag) = (cache.clone(), key.clone(), tag.clone());
        tokio::spawn(async move {
            cache
                .get_or_fetch(&key, &[tag], &ONE_HOUR, || async {
                    Ok::<_, Infallible>("new".to_string())
                })
                .await
                .unwrap()
        })
    };
    let new = new_reader.await.unwrap();
    release_tx.send(()).unwrap();
    assert_eq!(old_reader.await.unwrap().value, "old");
    assert_eq!(new.value, "new");
    // The old fetch stored its value after the invalidation: it must not be served either.
    let later = cache
        .get_or_fetch(&key, &[tag], &ONE_HOUR, || async {
            Ok::<_, Infallible>("newer".to_string())
        })
        .await
        .unwrap();
    assert_ne!(later.value, "old");
}

/// Invariant 4: a generation the store lost is never reissued, so entries built under it stay
/// invalid.
pub async fn an_entry_whose_tag_generation_was_lost_is_a_miss<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("course").param("id", 9).build();
    let tag = cache.tag("course:9");
    let get = |v: &'static str| read_course(&cache, &key, &tag, v);
    get("v1").await;
    assert_eq!(get("unused").await.outcome, Outcome::Hit);
    cache.store().delete(&[tag.as_str()]).await.unwrap(); // evicted or lost
    let after = get("v2").await;
    assert_eq!((after.outcome, after.value.as_str()), (Outcome::Miss, "v2"));
    assert_eq!(get("unused").await.outcome, Outcome::Hit);
}

pub async fn generations_are_created_once_and_bumps_change_them<S: Store>(store: S) {
    let ns = unique_namespace();
    let tag = ns.tag("t");
    let first = store
        .ensure_generations(&[tag.as_str()], Duration::from_secs(60))
        .await
        .unwrap();
    let again = store
        .ensure_generations(&[tag.as_str()], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(first, again);
    store.bump_generations(&[tag.as_str()]).await.unwrap();
    let read = store.read("absent", &[tag.as_str()]).await.unwrap();
    assert_eq!(read.entry, None);
    assert_ne!(read.generations[0], Some(first[0]));
    // A tag nobody has read gets no generation from a bump.
    let unread = ns.tag("unread");
    store.bump_generations(&[unread.as_str()]).await.unwrap();
    let read = store.read("absent", &[unread.as_str()]).await.unwrap();
    assert_eq!(read.generations[0], None);
}

pub async fn fetch_errors_reach_the_caller_and_are_not_cached<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("failing").build();
    let failed = cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
            Err::<u32, _>("database down")
        })
        .await;
    assert_eq!(failed, Err("database down"));
    let next = cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, || async { Ok::<_, &str>(5) })
        .await
        .unwrap();
    assert_eq!((next.outcome, next.value), (Outcome::Miss, 5));
}

pub async fn a_corrupt_entry_is_a_miss_and_is_deleted<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("corrupt").build();
    cache
        .store()
        .set(
            key.as_str(),
            Bytes::from_static(b"not an envelope"),
            Duration::from_secs(60),
            &[],
        )
        .await
        .unwrap();
    let fetched = cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>(1)
        })
        .await
        .unwrap();
    assert_eq!((fetched.outcome, fetched.value), (Outcome::Miss, 1));
    assert_eq!(cache.stats().corrupt, 1);
    let hit = cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>(2)
        })
        .await
        .unwrap();
    assert_eq!((hit.outcome, hit.value), (Outcome::Hit, 1));
}

pub async fn a_payload_of_another_type_is_a_miss<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("typed").build();
    cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>("text".to_string())
        })
        .await
        .unwrap();
    let number = cache
        .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>(3_u32)
        })
        .await
        .unwrap();
    assert_eq!((number.outcome, number.value), (Outcome::Miss, 3));
}

pub async fn entries_expire_after_their_ttl<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("short").build();
    let policy = Policy {
        jitter: 0.0,
        stale_if_error: Duration::ZERO,
        ..Policy::new("short", Duration::from_millis(300))
    };
    let get = async |v: u32| {
        cache
            .get_or_fetch(&key, &[], &policy, || async { Ok::<_, Infallible>(v) })
            .await
            .unwrap()
    };
    get(1).await;
    assert_eq!(get(2).await.outcome, Outcome::Hit);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let expired = get(3).await;
    assert_eq!((expired.outcome, expired.value), (Outcome::Miss, 3));
}

pub async fn an_expired_entry_is_served_stale_only_when_the_fetch_fails<S: Store>(store: S) {
    let cache = cache(store);
    let key = cache.key("stale").build();
    let tag = cache.tag("t");
    let policy = Policy {
        jitter: 0.0,
        stale_if_error: Duration::from_secs(60),
        ..Policy::new("short", Duration::from_millis(200))
    };
    let get = async |v: Result<u32, &'static str>| {
        cache
            .get_or_fetch(&key, std::slice::from_ref(&tag), &policy, || async { v })
            .await
    };
    // A value large enough to be stored compressed in a remote store.
    let large_key = cache.key("stale-large").build();
    let large: Vec<String> = (0..5000).map(|i| format!("lesson {i}")).collect();
    let get_large = async |v: Result<Vec<String>, &'static str>| {
        cache
            .get_or_fetch(&large_key, std::slice::from_ref(&tag), &policy, || async {
                v
            })
            .await
    };
    get(Ok(1)).await.unwrap();
    get_large(Ok(large.clone())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stale = get(Err("database down")).await.unwrap();
    assert_eq!((stale.outcome, stale.value), (Outcome::Stale, 1));
    let stale_large = get_large(Err("database down")).await.unwrap();
    assert_eq!(
        (stale_large.outcome, stale_large.value),
        (Outcome::Stale, large)
    );
    // An invalidated entry is never served, not even stale.
    cache.invalidate_tags(std::slice::from_ref(&tag)).await;
    assert_eq!(get(Err("database down")).await, Err("database down"));
    assert_eq!(get_large(Err("database down")).await, Err("database down"));
}

pub async fn a_discarded_entry_is_fetched_again<S: Store>(store: S) {
    let cache = Cache::builder(store, unique_namespace()).build();
    let key = cache.key("k").build();
    let read = |value: u32| {
        cache.get_or_fetch(&key, &[], &FIVE_MINUTES, move || async move {
            Ok::<_, Infallible>(value)
        })
    };
    read(1).await.unwrap();
    assert_eq!(read(2).await.unwrap().value, 1);

    cache.discard(&key).await;

    let again = read(3).await.unwrap();
    assert_eq!((again.outcome, again.value), (Outcome::Miss, 3));
    assert_eq!(cache.stats().corrupt, 1);
}

pub async fn a_disabled_instance_still_invalidates_for_the_others<S: Store>(store: S) {
    let store = Arc::new(store);
    let namespace = unique_namespace();
    let on = Cache::builder(SharedStore(store.clone()), namespace.clone()).build();
    let off = Cache::builder(SharedStore(store.clone()), namespace)
        .enabled(false)
        .build();
    let key = on.key("k").build();
    let tag = on.tag("t");
    let read = |value: u32| {
        on.get_or_fetch(
            &key,
            std::slice::from_ref(&tag),
            &FIVE_MINUTES,
            move || async move { Ok::<_, Infallible>(value) },
        )
    };
    read(1).await.unwrap();
    assert_eq!(read(2).await.unwrap().outcome, Outcome::Hit);
    assert!(on.accepts_entries() && !off.accepts_entries());

    // The instance with the cache off wrote something tagged `t`.
    assert_eq!(
        off.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Applied
    );

    let fresh = read(3).await.unwrap();
    assert_eq!((fresh.outcome, fresh.value), (Outcome::Miss, 3));
}

pub async fn clear_removes_this_namespace_and_nothing_else<S: Store>(store: S) {
    let store = Arc::new(store);
    let ours = Cache::builder(SharedStore(store.clone()), unique_namespace()).build();
    let theirs = Cache::builder(SharedStore(store.clone()), unique_namespace()).build();
    let foreign = format!("{}-foreign", ours.namespace().root().trim_end_matches(':'));
    store
        .set(
            &foreign,
            Bytes::from_static(b"x"),
            Duration::from_secs(60),
            &[],
        )
        .await
        .unwrap();
    for cache in [&ours, &theirs] {
        for i in 0..20 {
            let key = cache.key("k").param("i", i).build();
            cache
                .get_or_fetch(&key, &[cache.tag("t")], &FIVE_MINUTES, || async {
                    Ok::<_, Infallible>(i)
                })
                .await
                .unwrap();
        }
    }
    assert!(ours.clear().await.unwrap() >= 20);
    assert_eq!(ours.usage().await.unwrap().keys, 0);
    assert!(theirs.usage().await.unwrap().keys >= 20);
    let key = theirs.key("k").param("i", 3).build();
    let hit = theirs
        .get_or_fetch(&key, &[theirs.tag("t")], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>(-1)
        })
        .await
        .unwrap();
    assert_eq!(hit.outcome, Outcome::Hit);
    assert_eq!(
        store.delete(&[&foreign]).await.unwrap(),
        1,
        "a foreign key was cleared"
    );
    theirs.clear().await.unwrap();
}

pub async fn pattern_invalidation_deletes_only_matching_keys<S: Store>(store: S) {
    let cache = cache(store);
    for prefix in ["admin:courses", "public:lessons"] {
        for i in 0..30 {
            let key = cache
                .key(prefix)
                .param("page", i)
                .param("search", "a*b?")
                .build();
            cache
                .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
                    Ok::<_, Infallible>(i)
                })
                .await
                .unwrap();
        }
    }
    assert_eq!(
        cache.invalidate_pattern("admin:courses:*").await.unwrap(),
        30
    );
    let keys = cache.sample_keys(1000).await.unwrap();
    assert!(keys.iter().all(|k| !k.contains("admin:courses")));
    assert_eq!(
        keys.iter().filter(|k| k.contains("public:lessons")).count(),
        30
    );
    cache.clear().await.unwrap();
}

pub async fn usage_and_stats_count_this_namespace<S: Store>(store: S) {
    let cache = cache(store);
    for i in 0..10 {
        let key = cache.key("admin:courses").param("page", i).build();
        for _ in 0..3 {
            cache
                .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
                    Ok::<_, Infallible>(i)
                })
                .await
                .unwrap();
        }
    }
    let usage = cache.usage().await.unwrap();
    assert!(usage.keys >= 10, "{usage:?}");
    assert!(usage.bytes.unwrap() > 0);
    let stats = cache.stats();
    assert_eq!(
        (stats.lookups.hits, stats.lookups.misses, stats.sets),
        (20, 10, 10)
    );
    assert!((stats.hit_ratio() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(stats.prefixes["admin:courses"].hits, 20);
    cache.clear().await.unwrap();
}

pub async fn values_over_the_size_limit_are_served_but_not_stored<S: Store>(store: S) {
    let cache = Cache::builder(store, unique_namespace())
        .config(Config {
            max_value_bytes: 1000,
            ..Config::default()
        })
        .build();
    let key = cache.key("big").build();
    let big = "x".repeat(5000);
    for _ in 0..2 {
        let fetched = cache
            .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
                Ok::<_, Infallible>(big.clone())
            })
            .await
            .unwrap();
        assert_eq!(
            (fetched.outcome, fetched.value.len()),
            (Outcome::Miss, 5000)
        );
    }
    assert_eq!(cache.stats().oversized, 2);
}

pub async fn a_failed_invalidation_keeps_old_entries_from_being_served_until_it_lands<S: Store>(
    store: S,
) {
    let cache = flaky_cache(
        store,
        Config {
            retry_interval: Duration::from_secs(3600),
            ..Config::default()
        },
    );
    let key = cache.key("course").param("id", 1).build();
    let tag = cache.tag("course:1");
    let get = |v: &'static str| read_course(&cache, &key, &tag, v);
    get("old").await;
    cache.store().failing.store(true, Ordering::SeqCst);
    assert_eq!(
        cache.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Deferred
    );
    let during = get("new").await;
    assert_eq!(
        (during.outcome, during.value.as_str()),
        (Outcome::Bypass, "new")
    );
    // The store is back, but the invalidation never reached it and no retry is due yet.
    cache.store().failing.store(false, Ordering::SeqCst);
    let after = get("new").await;
    assert_eq!(
        (after.outcome, after.value.as_str()),
        (Outcome::Bypass, "new")
    );
    assert!(cache.has_pending_invalidations());
}

pub async fn a_pending_invalidation_is_retried_and_then_the_cache_serves_again<S: Store>(store: S) {
    let cache = flaky_cache(
        store,
        Config {
            retry_interval: Duration::ZERO,
            ..Config::default()
        },
    );
    let key = cache.key("course").param("id", 1).build();
    let tag = cache.tag("course:1");
    let get = |v: &'static str| read_course(&cache, &key, &tag, v);
    get("old").await;
    cache.store().failing.store(true, Ordering::SeqCst);
    assert_eq!(
        cache.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Deferred
    );
    cache.store().failing.store(false, Ordering::SeqCst);
    let after = get("new").await;
    assert_eq!(
        (after.outcome, after.value.as_str()),
        (Outcome::Miss, "new")
    );
    assert!(!cache.has_pending_invalidations());
    assert_eq!(get("unused").await.outcome, Outcome::Hit);
}

pub async fn repeated_store_failures_open_the_circuit<S: Store>(store: S) {
    let cache = flaky_cache(
        store,
        Config {
            failure_threshold: 3,
            open_for: Duration::from_secs(3600),
            ..Config::default()
        },
    );
    cache.store().failing.store(true, Ordering::SeqCst);
    for i in 0..20 {
        let key = cache.key("k").param("i", i).build();
        let fetched = cache
            .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
                Ok::<_, Infallible>(i)
            })
            .await
            .unwrap();
        assert_eq!((fetched.outcome, fetched.value), (Outcome::Bypass, i));
    }
    assert!(cache.is_circuit_open() && !cache.accepts_entries());
    assert_eq!(
        cache.store().calls.load(Ordering::SeqCst),
        3,
        "the open circuit still called the store"
    );
    assert_eq!(cache.stats().errors, 3);
}

pub async fn an_invalidation_cancelled_mid_flight_is_kept_pending<S: Store>(store: S) {
    let cache = flaky_cache(
        store,
        Config {
            store_timeout: Duration::from_secs(60),
            retry_interval: Duration::from_secs(3600),
            ..Config::default()
        },
    );
    let key = cache.key("course").param("id", 1).build();
    let tag = cache.tag("course:1");
    let get = |v: &'static str| read_course(&cache, &key, &tag, v);
    get("old").await;
    cache.store().hanging.store(true, Ordering::SeqCst);
    // The caller goes away (a client disconnect) while the bump is under way.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        cache.invalidate_tags(std::slice::from_ref(&tag)),
    )
    .await;
    assert!(cancelled.is_err(), "the bump was expected to hang");
    assert!(cache.has_pending_invalidations());
    // The next lookup retries the pending bump first, so the old entry is never served.
    cache.store().hanging.store(false, Ordering::SeqCst);
    let after = get("new").await;
    assert_eq!(
        (after.outcome, after.value.as_str()),
        (Outcome::Miss, "new")
    );
    assert!(!cache.has_pending_invalidations());
}

pub async fn a_deferred_invalidation_is_retried_in_the_background<S: Store>(store: S) {
    let cache = flaky_cache(
        store,
        Config {
            retry_interval: Duration::ZERO,
            ..Config::default()
        },
    );
    let tag = cache.tag("course:1");
    cache.store().failing.store(true, Ordering::SeqCst);
    assert_eq!(
        cache.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Deferred
    );
    cache.store().failing.store(false, Ordering::SeqCst);
    // No lookup happens: only the background task can flush it. Bounded wait, not a timing test.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cache.has_pending_invalidations() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deferred invalidation was never retried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.store().bumps.load(Ordering::SeqCst), 1);
}

/// Lets two caches share one store.
pub struct SharedStore<S>(pub Arc<S>);

impl<S: Store> Store for SharedStore<S> {
    fn is_remote(&self) -> bool {
        self.0.is_remote()
    }
    async fn read(
        &self,
        key: &str,
        g: &[&str],
    ) -> Result<cachette::store::Read, cachette::StoreError> {
        self.0.read(key, g).await
    }
    async fn ensure_generations(
        &self,
        k: &[&str],
        ttl: Duration,
    ) -> Result<Vec<cachette::Generation>, cachette::StoreError> {
        self.0.ensure_generations(k, ttl).await
    }
    async fn bump_generations(&self, k: &[&str]) -> Result<(), cachette::StoreError> {
        self.0.bump_generations(k).await
    }
    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
        g: &[&str],
    ) -> Result<(), cachette::StoreError> {
        self.0.set(key, value, ttl, g).await
    }
    async fn try_lease(
        &self,
        key: &str,
        g: &[&str],
        ttl: Duration,
    ) -> Result<cachette::store::LeaseAttempt, cachette::StoreError> {
        self.0.try_lease(key, g, ttl).await
    }
    async fn release_lease(
        &self,
        key: &str,
        token: cachette::store::LeaseToken,
    ) -> Result<(), cachette::StoreError> {
        self.0.release_lease(key, token).await
    }
    async fn delete(&self, keys: &[&str]) -> Result<u64, cachette::StoreError> {
        self.0.delete(keys).await
    }
    async fn scan(&self, p: &str, limit: usize) -> Result<Vec<String>, cachette::StoreError> {
        self.0.scan(p, limit).await
    }
    async fn delete_matching(&self, p: &str) -> Result<u64, cachette::StoreError> {
        self.0.delete_matching(p).await
    }
    async fn usage(&self, p: &str) -> Result<cachette::Usage, cachette::StoreError> {
        self.0.usage(p).await
    }
}

suite!(
    any_value_is_a_hit_including_empty_ones,
    a_disabled_instance_still_invalidates_for_the_others,
    a_discarded_entry_is_fetched_again,
    a_raw_hit_returns_the_stored_bytes_unchanged,
    large_values_round_trip_compressed_only_in_remote_stores,
    invalidating_a_tag_refreshes_exactly_its_entries,
    invalidation_is_one_store_operation_whatever_the_number_of_entries,
    concurrent_misses_on_one_key_fetch_once,
    a_reader_after_an_invalidation_does_not_join_an_older_fetch,
    an_entry_whose_tag_generation_was_lost_is_a_miss,
    generations_are_created_once_and_bumps_change_them,
    fetch_errors_reach_the_caller_and_are_not_cached,
    a_corrupt_entry_is_a_miss_and_is_deleted,
    a_payload_of_another_type_is_a_miss,
    entries_expire_after_their_ttl,
    an_expired_entry_is_served_stale_only_when_the_fetch_fails,
    clear_removes_this_namespace_and_nothing_else,
    pattern_invalidation_deletes_only_matching_keys,
    usage_and_stats_count_this_namespace,
    values_over_the_size_limit_are_served_but_not_stored,
    a_failed_invalidation_keeps_old_entries_from_being_served_until_it_lands,
    a_pending_invalidation_is_retried_and_then_the_cache_serves_again,
    repeated_store_failures_open_the_circuit,
    an_invalidation_cancelled_mid_flight_is_kept_pending,
    a_deferred_invalidation_is_retried_in_the_background,
);

#[tokio::test]
async fn the_memory_store_stays_within_its_byte_budget() {
    let budget = 1 << 20;
    let cache = Cache::builder(cachette::MemoryStore::new(budget), unique_namespace()).build();
    let value = "x".repeat(10_000);
    for i in 0..1000 {
        let key = cache.key("k").param("i", i).build();
        cache
            .get_or_fetch(&key, &[], &FIVE_MINUTES, || async {
                Ok::<_, Infallible>(value.clone())
            })
            .await
            .unwrap();
    }
    let usage = cache.usage().await.unwrap();
    assert!(
        usage.bytes.unwrap() <= budget,
        "{usage:?} over a budget of {budget}"
    );
    assert!(usage.keys > 10, "{usage:?}: the store kept almost nothing");
}
