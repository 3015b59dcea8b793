//! Invariant 3 under load: many readers and writers over a shared in-memory "database".
//!
//! Writers commit a new version of an item, invalidate its tag, then record the version as
//! acknowledged. Readers note the acknowledged versions of the items they ask for *before*
//! they start, and check that what they got is at least that new. Fetches pause at random
//! after reading the database, so fetches that began before an invalidation and store after it
//! happen all the time.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachette::{Cache, Outcome, Store, Tag};
use rand::Rng;

use crate::support::{FIVE_MINUTES, memory_store, redis_store, unique_namespace};

const ITEMS: usize = 6;
const WRITERS: usize = 4;
const WRITES_PER_WRITER: usize = 150;
const READERS: usize = 16;
const READS_PER_READER: usize = 400;

struct Database {
    versions: Vec<AtomicU64>,
    acknowledged: Vec<AtomicU64>,
}

#[derive(Default)]
struct Tally {
    stale_reads: AtomicU64,
    hits: AtomicU64,
    reads: AtomicU64,
}

/// Sleeps up to `max_micros`, at random.
async fn pause(max_micros: u64) {
    let micros = rand::rng().random_range(0..max_micros);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

async fn no_read_after_an_invalidation_returns_older_data<S: Store>(store: S) {
    let cache = Cache::builder(store, unique_namespace()).build();
    let db = Arc::new(Database {
        versions: (0..ITEMS).map(|_| AtomicU64::new(0)).collect(),
        acknowledged: (0..ITEMS).map(|_| AtomicU64::new(0)).collect(),
    });
    let tags: Arc<Vec<Tag>> = Arc::new(
        (0..ITEMS)
            .map(|i| cache.tag(&format!("item:{i}")))
            .collect(),
    );
    let tally = Arc::new(Tally::default());

    let writers = (0..WRITERS).map(|_| {
        let (cache, db, tags) = (cache.clone(), db.clone(), tags.clone());
        tokio::spawn(async move {
            for _ in 0..WRITES_PER_WRITER {
                let item = rand::rng().random_range(0..ITEMS);
                let version = db.versions[item].fetch_add(1, SeqCst) + 1; // commit
                pause(300).await;
                cache
                    .invalidate_tags(std::slice::from_ref(&tags[item]))
                    .await;
                db.acknowledged[item].fetch_max(version, SeqCst);
                pause(2000).await;
            }
        })
    });
    let readers = (0..READERS).map(|_| {
        let (cache, db, tags, tally) = (cache.clone(), db.clone(), tags.clone(), tally.clone());
        tokio::spawn(async move {
            for _ in 0..READS_PER_READER {
                // Either one item's detail or a "list" of two items.
                let first = rand::rng().random_range(0..ITEMS);
                let items: Vec<usize> = if rand::rng().random_bool(0.5) {
                    vec![first]
                } else {
                    vec![first, (first + 1) % ITEMS]
                };
                let floors: Vec<u64> = items
                    .iter()
                    .map(|&i| db.acknowledged[i].load(SeqCst))
                    .collect();
                let mut key = cache.key("items");
                for (n, item) in items.iter().enumerate() {
                    key = key.param(["a", "b"][n], item);
                }
                let key = key.build();
                let item_tags: Vec<Tag> = items.iter().map(|&i| tags[i].clone()).collect();
                let fetched = cache
                    .get_or_fetch(&key, &item_tags, &FIVE_MINUTES, || async {
                        let read: Vec<u64> =
                            items.iter().map(|&i| db.versions[i].load(SeqCst)).collect();
                        pause(1500).await;
                        Ok::<_, Infallible>(read)
                    })
                    .await
                    .unwrap();
                tally.reads.fetch_add(1, SeqCst);
                if fetched.outcome == Outcome::Hit {
                    tally.hits.fetch_add(1, SeqCst);
                }
                if fetched
                    .value
                    .iter()
                    .zip(&floors)
                    .any(|(got, floor)| got < floor)
                {
                    tally.stale_reads.fetch_add(1, SeqCst);
                }
            }
        })
    });
    let all: Vec<_> = writers.chain(readers).collect();
    for task in all {
        task.await.unwrap();
    }
    let (stale, hits, reads) = (
        tally.stale_reads.load(SeqCst),
        tally.hits.load(SeqCst),
        tally.reads.load(SeqCst),
    );
    assert_eq!(
        stale, 0,
        "{stale} of {reads} reads returned data older than an acknowledged write"
    );
    assert!(
        hits > reads / 10,
        "the cache was barely used ({hits} hits of {reads}): the test proves nothing"
    );
    cache.clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_serves_no_stale_read_under_concurrent_writes() {
    no_read_after_an_invalidation_returns_older_data(memory_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_serves_no_stale_read_under_concurrent_writes() {
    no_read_after_an_invalidation_returns_older_data(redis_store().await).await;
}
