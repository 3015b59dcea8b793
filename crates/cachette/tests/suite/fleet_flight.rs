//! One fetch per hot miss across the fleet: instances sharing a Redis store take a lease on a
//! missed key before fetching it, and the others wait for the entry the holder stores, never
//! longer than the bound, and never for a value older than an invalidation they started after.

use std::time::Duration;

use cachette::store::LeaseToken;
use cachette::{Cache, Store};
use tokio::time::{sleep, timeout};

use crate::support::{redis_store, unique_namespace};

/// Longer than any of these tests should take: a regression fails here, it does not hang.
const LIMIT: Duration = Duration::from_secs(20);

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
            .arg(cachette::store::redis::RELEASE_LEASE_SHA)
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
