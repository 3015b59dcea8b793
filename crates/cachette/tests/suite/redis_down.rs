//! Redis unreachable: every call still answers, from the fetch, within the store timeout.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use cachette::{Cache, Config, Invalidation, Outcome, RedisStore};

use crate::support::{FIVE_MINUTES, RedisServer, free_port, unique_namespace};

const STORE_TIMEOUT: Duration = Duration::from_millis(200);
/// Far above the store timeout, far below a hang: a bound, not a speed measurement.
const CALL_BOUND: Duration = Duration::from_secs(3);

fn cache_on(url: &str) -> Cache<RedisStore> {
    let store =
        RedisStore::with_timeouts(url, STORE_TIMEOUT, STORE_TIMEOUT).expect("a valid Redis URL");
    Cache::builder(store, unique_namespace())
        .config(Config {
            store_timeout: STORE_TIMEOUT,
            open_for: Duration::from_millis(300),
            retry_interval: Duration::ZERO,
            ..Config::default()
        })
        .build()
}

async fn timed_get(cache: &Cache<RedisStore>, i: u32) -> (Outcome, u32, Duration) {
    let key = cache.key("k").param("i", i).build();
    let started = Instant::now();
    let fetched = cache
        .get_or_fetch(&key, &[cache.tag("t")], &FIVE_MINUTES, || async {
            Ok::<_, Infallible>(i)
        })
        .await
        .unwrap();
    (fetched.outcome, fetched.value, started.elapsed())
}

#[tokio::test]
async fn with_redis_on_a_closed_port_every_call_returns_the_fetched_value() {
    let port = free_port();
    let cache = cache_on(&format!("redis://127.0.0.1:{port}"));
    for i in 0..30 {
        let (outcome, value, took) = timed_get(&cache, i).await;
        assert_eq!((outcome, value), (Outcome::Bypass, i));
        assert!(took < CALL_BOUND, "call {i} took {took:?}");
    }
    assert_eq!(
        cache.invalidate_tags(&[cache.tag("t")]).await,
        Invalidation::Deferred
    );
    assert!(cache.stats().errors >= 1);
}

#[tokio::test]
async fn a_redis_server_stopped_mid_test_degrades_to_the_fetch_and_recovers() {
    let port = free_port();
    let mut server = RedisServer::start(port);
    let cache = cache_on(&format!("redis://127.0.0.1:{port}"));
    timed_get(&cache, 1).await;
    assert_eq!(timed_get(&cache, 1).await.0, Outcome::Hit);

    server.stop();
    for i in 0..30 {
        let (outcome, value, took) = timed_get(&cache, i).await;
        assert_eq!((outcome, value), (Outcome::Bypass, i), "call {i}");
        assert!(took < CALL_BOUND, "call {i} took {took:?}");
    }
    assert_eq!(
        cache.invalidate_tags(&[cache.tag("t")]).await,
        Invalidation::Deferred
    );

    let _server = RedisServer::start(port);
    // The connection comes back by itself, the pending invalidation lands, hits resume.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (outcome, value, _) = timed_get(&cache, 7).await;
        assert_eq!(value, 7);
        if outcome == Outcome::Hit {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cache never recovered after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!cache.has_pending_invalidations());
}
