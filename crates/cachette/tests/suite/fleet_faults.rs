//! Tiered instances (a local tier in front of Redis, on the Redis bus) when their connections
//! to Redis break: Redis killed and restarted, connections cut or blackholed by a proxy, then
//! restored. Whatever breaks, no read returns a value older than a write acknowledged as
//! [`Invalidation::Applied`]; an instance cut off stops serving its local tier within a lease;
//! once Redis is back the fleet is live again, and a write deferred meanwhile reaches every
//! instance.
//!
//! Each test runs its own `redis-server` on a free port: the shared one is never stopped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cachette::bus::BoxFuture;
use cachette::{
    Bus, BusError, Cache, Config, Heard, Invalidation, Namespace, Outcome, RedisBus, RedisStore,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::fleet::{Source, clocks, until_members};
use crate::support::{Proxy, RedisServer, eventually, free_port, unique_namespace};

const STORE_TIMEOUT: Duration = Duration::from_millis(200);
/// Beyond any of these tests: one that hangs fails instead.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// How long the fleet has to come back once Redis answers again: the bus resubscribes within
/// a second or two (its connect timeout and backoff), the store reconnects on demand.
const RECOVERY: Duration = Duration::from_secs(10);
/// After a lease runs out, a margin for a read already past its lease check.
const MARGIN: Duration = Duration::from_millis(200);
const READERS_PER_INSTANCE: usize = 4;

async fn within_limit(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test did not finish in time");
}

/// An instance with a local tier, whose store talks to `store_url` and bus to `bus_url`.
fn tiered_instance(namespace: &Namespace, store_url: &str, bus_url: &str) -> Cache<RedisStore> {
    tiered_instance_on(
        namespace,
        store_url,
        Arc::new(redis_bus(namespace, bus_url)),
    )
}

fn redis_bus(namespace: &Namespace, url: &str) -> RedisBus {
    RedisBus::new(url, &format!("{}bus", namespace.prefix())).unwrap()
}

fn tiered_instance_on(
    namespace: &Namespace,
    store_url: &str,
    bus: Arc<dyn Bus>,
) -> Cache<RedisStore> {
    let store = RedisStore::with_timeouts(store_url, STORE_TIMEOUT, STORE_TIMEOUT).unwrap();
    Cache::builder(store, namespace.clone())
        .config(Config {
            store_timeout: STORE_TIMEOUT,
            open_for: Duration::from_millis(300),
            retry_interval: Duration::from_millis(100),
            ..Config::default()
        })
        .local_tier(1 << 20)
        .bus(bus, clocks())
        .build()
}

/// Which connections of an instance go through its proxy.
#[derive(Clone, Copy)]
enum Route {
    StoreAndBus,
    BusOnly,
}

/// How a proxy breaks the way to Redis.
#[derive(Clone, Copy)]
enum Fault {
    /// Connections closed and refused.
    Cut,
    /// Connections closed, new ones never answered.
    Blackhole,
}

/// A private Redis, and instances that each reach it through a proxy of their own.
struct ProxiedFleet {
    proxies: Vec<Proxy>,
    instances: Vec<Cache<RedisStore>>,
    /// Last, so it stops after the instances.
    _server: RedisServer,
}

impl ProxiedFleet {
    async fn start(size: usize, route: Route) -> Self {
        let port = free_port();
        let server = tokio::task::spawn_blocking(move || RedisServer::start(port))
            .await
            .unwrap();
        let direct = format!("redis://127.0.0.1:{port}");
        let namespace = unique_namespace();
        let mut proxies = Vec::new();
        let mut instances = Vec::new();
        for _ in 0..size {
            let proxy = Proxy::start(port).await;
            let store_url = match route {
                Route::StoreAndBus => proxy.redis_url(),
                Route::BusOnly => direct.clone(),
            };
            instances.push(tiered_instance(&namespace, &store_url, &proxy.redis_url()));
            proxies.push(proxy);
        }
        until_members(&instances.iter().collect::<Vec<_>>(), size - 1).await;
        Self {
            proxies,
            instances,
            _server: server,
        }
    }

    fn break_all(&self, fault: Fault) {
        for proxy in &self.proxies {
            match fault {
                Fault::Cut => proxy.cut(),
                Fault::Blackhole => proxy.blackhole(),
            }
        }
    }

    fn restore_all(&self) {
        for proxy in &self.proxies {
            proxy.restore();
        }
    }
}

/// A read that returned a version older than one acknowledged before it started.
#[derive(Debug)]
#[allow(dead_code)] // Read by the assertion's message.
struct StaleRead {
    instance: usize,
    acknowledged: u64,
    read: u64,
    outcome: Outcome,
}

/// One writer on the first instance, readers on every instance, until stopped. The writer
/// moves the "database" on, invalidates, and counts the version as acknowledged only when the
/// invalidation returned `Applied`; a read older than what was acknowledged when it started
/// is stale.
struct Traffic {
    applied: Arc<AtomicU64>,
    deferred: Arc<AtomicU64>,
    stale: Arc<Mutex<Vec<StaleRead>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Traffic {
    fn start(instances: &[Cache<RedisStore>]) -> Self {
        let source = Source::default();
        let acknowledged = Arc::new(AtomicU64::new(0));
        let traffic = Self {
            applied: Arc::default(),
            deferred: Arc::default(),
            stale: Arc::default(),
            stop: Arc::default(),
            tasks: Vec::new(),
        };
        let mut tasks = Vec::new();
        let (writer, written, acked) = (instances[0].clone(), source.clone(), acknowledged.clone());
        let (applied, deferred, stop) = (
            traffic.applied.clone(),
            traffic.deferred.clone(),
            traffic.stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let tag = writer.tag("thing");
            while !stop.load(Ordering::SeqCst) {
                let version = written.version.fetch_add(1, Ordering::SeqCst) + 1;
                match writer.invalidate_tags(std::slice::from_ref(&tag)).await {
                    Invalidation::Applied => {
                        acked.fetch_max(version, Ordering::SeqCst);
                        applied.fetch_add(1, Ordering::SeqCst);
                    }
                    Invalidation::Deferred => {
                        deferred.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        for (instance, cache) in instances.iter().enumerate() {
            for _ in 0..READERS_PER_INSTANCE {
                let (cache, source, acknowledged) =
                    (cache.clone(), source.clone(), acknowledged.clone());
                let (stale, stop) = (traffic.stale.clone(), traffic.stop.clone());
                tasks.push(tokio::spawn(async move {
                    let tag = cache.tag("thing");
                    while !stop.load(Ordering::SeqCst) {
                        let acknowledged = acknowledged.load(Ordering::SeqCst);
                        let (read, outcome) = source.read(&cache, &tag).await;
                        if read < acknowledged {
                            stale.lock().push(StaleRead {
                                instance,
                                acknowledged,
                                read,
                                outcome,
                            });
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }));
            }
        }
        Self { tasks, ..traffic }
    }

    fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    fn deferred(&self) -> u64 {
        self.deferred.load(Ordering::SeqCst)
    }

    /// Stops every task; panics, listing a few, if any read was stale.
    async fn stop_and_check(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let stale = self.stale.lock();
        assert!(
            stale.is_empty(),
            "{} reads older than an acknowledged write, e.g. {:?}",
            stale.len(),
            &stale[..stale.len().min(5)]
        );
    }
}

fn local_hits(instances: &[Cache<RedisStore>]) -> Vec<u64> {
    instances
        .iter()
        .map(|cache| cache.stats().local_hits)
        .collect()
}

fn resyncs(instances: &[Cache<RedisStore>]) -> Vec<u64> {
    instances
        .iter()
        .map(|cache| cache.fleet_status().unwrap().resyncs)
        .collect()
}

/// Waits until every instance has listened anew (it resynced since `resyncs` was taken) and
/// holds a lease again.
async fn until_live_again(instances: &[Cache<RedisStore>], resyncs: &[u64]) {
    for (i, cache) in instances.iter().enumerate() {
        eventually(
            &format!("instance {i} resyncs and is live again"),
            RECOVERY,
            || async {
                let status = cache.fleet_status().unwrap();
                status.live && status.resyncs > resyncs[i]
            },
        )
        .await;
    }
}

/// Asserts that every instance served local hits since `before` was taken.
fn assert_local_hits_since(instances: &[Cache<RedisStore>], before: &[u64], when: &str) {
    for (i, (now, before)) in local_hits(instances).iter().zip(before).enumerate() {
        assert!(now > before, "instance {i} served no local hit {when}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_serves_no_stale_read_and_the_fleet_comes_back() {
    within_limit(async {
        let port = free_port();
        let mut server = tokio::task::spawn_blocking(move || RedisServer::start(port))
            .await
            .unwrap();
        let url = format!("redis://127.0.0.1:{port}");
        let namespace = unique_namespace();
        let instances: Vec<_> = (0..3)
            .map(|_| tiered_instance(&namespace, &url, &url))
            .collect();
        until_members(&instances.iter().collect::<Vec<_>>(), 2).await;
        let traffic = Traffic::start(&instances);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_local_hits_since(&instances, &[0; 3], "before the restart");

        server.stop();
        let deferred_before = traffic.deferred();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let resynced_before = resyncs(&instances);
        let _server = tokio::task::spawn_blocking(move || RedisServer::start(port))
            .await
            .unwrap();
        let deferred_while_down = traffic.deferred() - deferred_before;

        until_live_again(&instances, &resynced_before).await;
        let (hits, applied) = (local_hits(&instances), traffic.applied());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_local_hits_since(&instances, &hits, "after the restart");
        assert!(
            traffic.applied() > applied,
            "no write was applied after the restart"
        );
        assert!(
            deferred_while_down > 0,
            "no write was made while Redis was down"
        );
        traffic.stop_and_check().await;
    })
    .await;
}

/// Three instances under traffic, each through its own proxy; every proxy broken for a while.
async fn a_fleet_cut_off_from_redis_stops_serving_its_tiers_then_comes_back(
    route: Route,
    fault: Fault,
) {
    within_limit(async {
        let fleet = ProxiedFleet::start(3, route).await;
        let instances = &fleet.instances;
        let traffic = Traffic::start(instances);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_local_hits_since(instances, &[0; 3], "before the cut");

        let resynced_before = resyncs(instances);
        let deferred_before = traffic.deferred();
        fleet.break_all(fault);
        // Every lease rests on a message heard before the cut, and none is heard after it.
        tokio::time::sleep(clocks().lease + MARGIN).await;
        for (i, cache) in instances.iter().enumerate() {
            assert!(
                !cache.fleet_status().unwrap().live,
                "instance {i} holds a lease a lease after the cut"
            );
        }
        let hits = local_hits(instances);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            local_hits(instances),
            hits,
            "an instance served its local tier without a lease"
        );
        assert!(
            traffic.deferred() > deferred_before,
            "no write was deferred during the cut"
        );

        fleet.restore_all();
        until_live_again(instances, &resynced_before).await;
        let (hits, applied) = (local_hits(instances), traffic.applied());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_local_hits_since(instances, &hits, "after the restore");
        assert!(
            traffic.applied() > applied,
            "no write was applied after the restore"
        );
        traffic.stop_and_check().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_whose_store_and_bus_connections_are_cut_stops_serving_its_tiers_then_comes_back() {
    a_fleet_cut_off_from_redis_stops_serving_its_tiers_then_comes_back(
        Route::StoreAndBus,
        Fault::Cut,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_whose_bus_connections_are_cut_stops_serving_its_tiers_then_comes_back() {
    a_fleet_cut_off_from_redis_stops_serving_its_tiers_then_comes_back(Route::BusOnly, Fault::Cut)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_whose_connections_are_blackholed_stops_serving_its_tiers_then_comes_back() {
    a_fleet_cut_off_from_redis_stops_serving_its_tiers_then_comes_back(
        Route::StoreAndBus,
        Fault::Blackhole,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_whose_bus_connections_are_blackholed_stops_serving_its_tiers_then_comes_back() {
    a_fleet_cut_off_from_redis_stops_serving_its_tiers_then_comes_back(
        Route::BusOnly,
        Fault::Blackhole,
    )
    .await;
}

/// Which proxies a test cuts.
#[derive(Clone, Copy)]
enum Cut {
    /// The writer's only: the reader stays live and may serve the old value while the write
    /// is deferred.
    WriterOnly,
    Everyone,
}

/// A writes while cut off (its invalidation is deferred), then the cut is restored while B
/// keeps reading. Once A's invalidation reaches the store, B must read the new value within a
/// few leases, whatever it read from the store or kept in its tier meanwhile.
async fn a_deferred_write_reaches_the_other_instance_once_restored(cut: Cut) {
    within_limit(async {
        let fleet = ProxiedFleet::start(2, Route::StoreAndBus).await;
        let (a, b) = (fleet.instances[0].clone(), fleet.instances[1].clone());
        let source = Source::default();
        let tag = a.tag("thing");
        source.version.store(1, Ordering::SeqCst);
        assert_eq!(source.read(&a, &tag).await, (1, Outcome::Miss));
        assert_eq!(source.read(&b, &tag).await, (1, Outcome::Hit));
        assert_eq!(source.read(&b, &tag).await, (1, Outcome::Hit));
        assert_eq!(b.stats().local_hits, 1, "B keeps version 1 in its tier");

        let cut_off = match cut {
            Cut::WriterOnly => &fleet.proxies[..1],
            Cut::Everyone => &fleet.proxies[..],
        };
        for proxy in cut_off {
            proxy.cut();
        }
        source.version.store(2, Ordering::SeqCst);
        assert_eq!(
            a.invalidate_tags(std::slice::from_ref(&tag)).await,
            Invalidation::Deferred
        );
        // B keeps reading, as an instance under traffic does, before and after the restore.
        let stop = Arc::new(AtomicBool::new(false));
        let reading = tokio::spawn({
            let (b, source, tag, stop) = (b.clone(), source.clone(), tag.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::SeqCst) {
                    source.read(&b, &tag).await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        // Between two of A's retries (they back off from 100 ms, doubling): B has time to read
        // the store, still without A's invalidation, after the restore.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for proxy in cut_off {
            proxy.restore();
        }
        eventually(
            "A's deferred invalidation reaches the store",
            RECOVERY,
            || {
                let a = a.clone();
                async move { !a.has_pending_invalidations() }
            },
        )
        .await;
        let landed = Instant::now();
        tokio::time::sleep(clocks().lease * 3).await;
        stop.store(true, Ordering::SeqCst);
        reading.await.unwrap();
        assert_eq!(
            source.read(&b, &tag).await.0,
            2,
            "B still serves A's old value {:?} after A's invalidation reached the store",
            landed.elapsed()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_deferred_while_the_writer_is_cut_off_reaches_the_other_instance_once_restored() {
    a_deferred_write_reaches_the_other_instance_once_restored(Cut::WriterOnly).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_deferred_while_everyone_is_cut_off_reaches_the_other_instance_once_restored() {
    a_deferred_write_reaches_the_other_instance_once_restored(Cut::Everyone).await;
}

/// The Redis bus as a slow subscriber hears it: every message, its own included, `delay` late.
struct LateBus {
    bus: RedisBus,
    delay: Duration,
}

impl Bus for LateBus {
    fn publish(&self, message: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        self.bus.publish(message)
    }

    fn listen(&self, heard: mpsc::Sender<Heard>) -> BoxFuture<'static, ()> {
        let (sender, mut delivered) = mpsc::channel(4096);
        let listening = self.bus.listen(sender);
        let delay = self.delay;
        Box::pin(async move {
            tokio::spawn(listening);
            // Stamped on arrival, passed on in order when due: delays do not add up.
            let (stamped, mut due) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(heard) = delivered.recv().await {
                    if stamped.send((Instant::now() + delay, heard)).is_err() {
                        return;
                    }
                }
            });
            while let Some((at, message)) = due.recv().await {
                tokio::time::sleep_until(at.into()).await;
                if heard.send(message).await.is_err() {
                    return;
                }
            }
        })
    }

    fn name(&self) -> &'static str {
        "late-redis"
    }
}

/// Kills every subscriber connection of the Redis server on `port` (as Redis does to one that
/// falls too far behind); publishing connections stay.
async fn kill_subscribers(port: u16) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(killed >= 2, "both subscribers killed, not {killed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_cannot_subscribe_again_does_not_take_the_silence_for_an_empty_fleet() {
    // A's subscription drops and cannot be made again, while its connections to publish and
    // to the store work on. A hears nobody: after a lease every other member looks gone. B
    // subscribed again at once and is live, serving its tier; it hears the bus 100 ms late.
    within_limit(async {
        let port = free_port();
        let _server = tokio::task::spawn_blocking(move || RedisServer::start(port))
            .await
            .unwrap();
        let direct = format!("redis://127.0.0.1:{port}");
        let namespace = unique_namespace();
        let proxy = Proxy::start(port).await;
        let a = tiered_instance(&namespace, &proxy.redis_url(), &proxy.redis_url());
        let late = LateBus {
            bus: redis_bus(&namespace, &direct),
            delay: Duration::from_millis(100),
        };
        let b = tiered_instance_on(&namespace, &direct, Arc::new(late));
        until_members(&[&a, &b], 1).await;
        let source = Source::default();
        let tag = a.tag("thing");
        source.version.store(1, Ordering::SeqCst);
        assert_eq!(source.read(&a, &tag).await, (1, Outcome::Miss));

        proxy.refuse_new();
        let resynced_before = resyncs(std::slice::from_ref(&b));
        kill_subscribers(port).await;
        until_live_again(std::slice::from_ref(&b), &resynced_before).await;
        tokio::time::sleep(clocks().lease + MARGIN).await;
        assert!(
            a.fleet_status().unwrap().members.is_empty(),
            "A hears nobody"
        );
        source.read(&b, &tag).await;
        let hits = b.stats().local_hits;
        assert_eq!(source.read(&b, &tag).await, (1, Outcome::Hit));
        assert_eq!(b.stats().local_hits, hits + 1, "B serves its tier");

        source.version.store(2, Ordering::SeqCst);
        let written = Instant::now();
        assert_eq!(
            a.invalidate_tags(std::slice::from_ref(&tag)).await,
            Invalidation::Applied,
            "A can still reach the store and publish"
        );
        assert_eq!(
            source.read(&b, &tag).await.0,
            2,
            "B read the old value after A's write was applied (in {:?})",
            written.elapsed()
        );
    })
    .await;
}
