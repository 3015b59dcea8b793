//! How long tag generations live: as long as the longest-lived entry built under them, and no
//! longer; and an expired generation only ever makes entries miss.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cachette::internals::encode;
use cachette::store::generation_ttl;
use cachette::{Cache, Key, Outcome, Policy, Store, Tag};

use crate::support::{GenerationLife, eventually, suite, unique_namespace};

const MINUTE: Duration = Duration::from_secs(60);
/// Longest wait for a short-lived key to leave the store.
const EXPIRY_LIMIT: Duration = Duration::from_secs(15);

/// A policy whose entries live exactly `ttl`.
fn lasting(ttl: Duration) -> Policy {
    Policy {
        jitter: 0.0,
        stale_if_error: Duration::ZERO,
        ..Policy::new("lasting", ttl)
    }
}

/// Reads `key` under `tag`; a miss stores `value` for `policy`.
async fn read<S: Store>(
    cache: &Cache<S>,
    key: &Key,
    tag: &Tag,
    policy: &Policy,
    value: &str,
) -> Outcome {
    cache
        .get_or_fetch(key, std::slice::from_ref(tag), policy, || async {
            Ok::<_, Infallible>(value.to_owned())
        })
        .await
        .unwrap()
        .outcome
}

/// Whether the store still lists `key`: an in-process store sweeps expired generations first.
async fn lists<S: Store>(store: &S, key: &str) -> bool {
    !store.scan(key, 1).await.unwrap().is_empty()
}

pub async fn a_created_generation_lives_as_long_as_the_entry_about_to_be_built<
    S: Store + GenerationLife,
>(
    store: S,
) {
    let tag = unique_namespace().tag("t");

    store
        .ensure_generations(&[tag.as_str()], Duration::from_secs(2))
        .await
        .unwrap();

    let life = store.generation_life(tag.as_str()).await;
    assert!(
        life.is_some_and(|life| life <= generation_ttl(Duration::from_secs(2))),
        "{life:?}"
    );
}

pub async fn storing_an_entry_extends_its_generations_to_its_lifetime<S: Store + GenerationLife>(
    store: S,
) {
    let ns = unique_namespace();
    let (built_under, other) = (ns.tag("built-under"), ns.tag("other"));
    let value = || Bytes::from_static(b"v");
    store
        .ensure_generations(
            &[built_under.as_str(), other.as_str()],
            Duration::from_secs(1),
        )
        .await
        .unwrap();

    let long = ns.key("long").build();
    store
        .set(long.as_str(), value(), MINUTE, &[built_under.as_str()])
        .await
        .unwrap();
    // A shorter-lived entry stored afterwards does not shorten it.
    let short = ns.key("short").build();
    store
        .set(
            short.as_str(),
            value(),
            Duration::from_secs(1),
            &[built_under.as_str()],
        )
        .await
        .unwrap();

    let extended = store.generation_life(built_under.as_str()).await;
    assert!(
        extended.is_some_and(|life| life > MINUTE / 2 && life <= generation_ttl(MINUTE)),
        "{extended:?}"
    );
    let untouched = store.generation_life(other.as_str()).await;
    assert!(
        untouched.is_some_and(|life| life <= generation_ttl(Duration::from_secs(1))),
        "{untouched:?}"
    );
}

pub async fn a_bump_keeps_the_generation_s_lifetime<S: Store + GenerationLife>(store: S) {
    let tag = unique_namespace().tag("t");
    let first = store
        .ensure_generations(&[tag.as_str()], Duration::from_secs(2))
        .await
        .unwrap();

    store.bump_generations(&[tag.as_str()]).await.unwrap();

    let read = store.read("absent", &[tag.as_str()]).await.unwrap();
    assert!(read.generations[0].is_some_and(|bumped| bumped != first[0]));
    let life = store.generation_life(tag.as_str()).await;
    assert!(
        life.is_some_and(|life| life <= generation_ttl(Duration::from_secs(2))),
        "{life:?}"
    );
}

pub async fn generations_leave_the_store_with_their_entries<S: Store + GenerationLife>(store: S) {
    let cache = Cache::builder(store, unique_namespace()).build();
    let key = cache.key("search").param("text", "rust").build();
    let tag = cache.tag("search:rust");
    let policy = lasting(Duration::from_secs(1));

    assert_eq!(read(&cache, &key, &tag, &policy, "v").await, Outcome::Miss);

    for generation_key in [cache.namespace().epoch(), &tag] {
        let life = cache.store().generation_life(generation_key.as_str()).await;
        assert!(
            life.is_some_and(|life| life <= generation_ttl(Duration::from_secs(1))),
            "{generation_key:?} lives {life:?}"
        );
    }
    eventually(
        "the namespace empties once its only entry has expired",
        EXPIRY_LIMIT,
        async || cache.sample_keys(10).await.unwrap().is_empty(),
    )
    .await;
}

/// An entry whose fetch outlasted its generations is stored after they expired: storing it
/// does not bring them back, so it can never be a hit.
pub async fn an_entry_stored_after_its_generations_expired_is_a_miss<S: Store>(store: S) {
    let cache = Cache::builder(store, unique_namespace()).build();
    let key = cache.key("late").build();
    let tag = cache.tag("t");
    let generation_keys = [cache.namespace().epoch().as_str(), tag.as_str()];
    let snapshot = cache
        .store()
        .ensure_generations(&generation_keys, Duration::from_millis(100))
        .await
        .unwrap();
    let pattern = format!("{}*", cache.namespace().root());
    eventually("the generations expire", EXPIRY_LIMIT, async || {
        !lists(cache.store(), &pattern).await
    })
    .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let old = encode(br#""old""#, &snapshot, now, now + 60_000, usize::MAX);

    cache
        .store()
        .set(key.as_str(), old, MINUTE, &generation_keys)
        .await
        .unwrap();

    let stored = cache
        .store()
        .read(key.as_str(), &generation_keys)
        .await
        .unwrap();
    assert!(stored.entry.is_some());
    assert_eq!(stored.generations.as_slice(), [None, None]);
    let policy = lasting(MINUTE);
    assert_eq!(
        read(&cache, &key, &tag, &policy, "new").await,
        Outcome::Miss
    );
    assert_eq!(
        read(&cache, &key, &tag, &policy, "unused").await,
        Outcome::Hit
    );
}

/// The namespace epoch is a generation like the others: every entry extends it, so it stays
/// while any entry needs it, whichever entry created it.
pub async fn the_epoch_lives_as_long_as_the_longest_lived_entry<S: Store + GenerationLife>(
    store: S,
) {
    let cache = Cache::builder(store, unique_namespace()).build();
    let (short_key, short_tag) = (cache.key("short").build(), cache.tag("short"));
    let (long_key, long_tag) = (cache.key("long").build(), cache.tag("long"));
    let short = lasting(Duration::from_millis(200));
    let long = lasting(MINUTE);
    // The short-lived entry comes first: the epoch is created for its lifetime.
    assert_eq!(
        read(&cache, &short_key, &short_tag, &short, "s").await,
        Outcome::Miss
    );
    assert_eq!(
        read(&cache, &long_key, &long_tag, &long, "l").await,
        Outcome::Miss
    );

    eventually(
        "the short-lived entry's tag generation expires",
        EXPIRY_LIMIT,
        async || !lists(cache.store(), short_tag.as_str()).await,
    )
    .await;

    let epoch = cache.namespace().epoch().as_str();
    let life = cache.store().generation_life(epoch).await;
    assert!(life.is_some_and(|life| life > MINUTE / 2), "{life:?}");
    assert_eq!(
        read(&cache, &long_key, &long_tag, &long, "unused").await,
        Outcome::Hit
    );
}

suite!(
    a_created_generation_lives_as_long_as_the_entry_about_to_be_built,
    storing_an_entry_extends_its_generations_to_its_lifetime,
    a_bump_keeps_the_generation_s_lifetime,
    generations_leave_the_store_with_their_entries,
    an_entry_stored_after_its_generations_expired_is_a_miss,
    the_epoch_lives_as_long_as_the_longest_lived_entry,
);
