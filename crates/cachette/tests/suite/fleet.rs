//! Several instances of one cache, each with its own local view (an in-process store, or a local
//! tier in front of Redis), kept fresh by a bus: a write acknowledged on one is never followed
//! by an older read on another, whatever the bus does.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cachette::bus::BoxFuture;
use cachette::{
    Bus, BusError, Cache, FleetConfig, Heard, Invalidation, LocalBus, MemoryStore, Namespace,
    Outcome, Policy, RedisBus, Store, Tag,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::support::{redis_store, redis_url, unique_namespace};

const POLICY: Policy = Policy::new("fleet", Duration::from_secs(60));

/// Short clocks, so that tests that wait out a lease stay short.
pub(crate) fn clocks() -> FleetConfig {
    FleetConfig {
        lease: Duration::from_millis(400),
        heartbeat: Duration::from_millis(50),
        fence_after: Duration::from_millis(25),
    }
}

/// A "database": one number that writes increase.
#[derive(Clone, Default)]
pub(crate) struct Source {
    pub(crate) version: Arc<AtomicU64>,
    fetches: Arc<AtomicUsize>,
}

impl Source {
    pub(crate) async fn read<S: Store>(&self, cache: &Cache<S>, tag: &Tag) -> (u64, Outcome) {
        let key = cache.key("thing").build();
        let source = self.clone();
        let fetched = cache
            .get_or_fetch(&key, std::slice::from_ref(tag), &POLICY, || async move {
                source.fetches.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(source.version.load(Ordering::SeqCst))
            })
            .await
            .unwrap();
        (fetched.value, fetched.outcome)
    }
}

/// Waits (at most 5 s) until `cache` holds a lease on the bus and knows the fleet.
async fn until_live<S: Store>(cache: &Cache<S>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cache
        .fleet_status()
        .is_some_and(|status| status.live && status.settled)
    {
        assert!(Instant::now() < deadline, "no lease within 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (at most 5 s) until every cache knows `others` other members.
pub(crate) async fn until_members<S: Store>(caches: &[&Cache<S>], others: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for cache in caches {
        until_live(cache).await;
        while cache.fleet_status().unwrap().members.len() < others {
            assert!(Instant::now() < deadline, "members not heard within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn memory_instance(namespace: &Namespace, bus: Arc<dyn Bus>) -> Cache<MemoryStore> {
    Cache::builder(MemoryStore::new(1 << 20), namespace.clone())
        .bus(bus, clocks())
        .build()
}

/// What a bus between instances may do wrong, as one instance hears it.
#[derive(Default)]
struct Faults {
    /// Drop the next message that invalidates something.
    lose_next_invalidation: AtomicBool,
    /// Hold every message this long before passing it on.
    delay_ms: AtomicU64,
    /// Hold every message until resumed (an instance paused, or cut off from the bus).
    paused: AtomicBool,
}

/// A `LocalBus` as one instance hears it, with faults.
struct FaultyBus {
    bus: LocalBus,
    faults: Arc<Faults>,
}

impl Bus for FaultyBus {
    fn publish(&self, message: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        self.bus.publish(message)
    }

    fn listen(&self, heard: mpsc::Sender<Heard>) -> BoxFuture<'static, ()> {
        let (inner_sender, mut inner) = mpsc::channel(4096);
        let listening = self.bus.listen(inner_sender);
        let faults = self.faults.clone();
        Box::pin(async move {
            tokio::spawn(listening);
            while let Some(message) = inner.recv().await {
                if let Heard::Message(bytes) = &message {
                    let invalidates =
                        std::str::from_utf8(bytes).is_ok_and(|text| text.contains("\"tags\""));
                    if invalidates && faults.lose_next_invalidation.swap(false, Ordering::SeqCst) {
                        continue;
                    }
                }
                while faults.paused.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let delay = faults.delay_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                if heard.send(message).await.is_err() {
                    return;
                }
            }
        })
    }

    fn name(&self) -> &'static str {
        "faulty"
    }
}

/// Two in-process-store instances on one bus; the second hears through `faults`.
async fn writer_and_reader(faults: &Arc<Faults>) -> (Cache<MemoryStore>, Cache<MemoryStore>) {
    let namespace = unique_namespace();
    let bus = LocalBus::default();
    let writer = memory_instance(&namespace, Arc::new(bus.clone()));
    let reader = memory_instance(
        &namespace,
        Arc::new(FaultyBus {
            bus,
            faults: faults.clone(),
        }),
    );
    until_members(&[&writer, &reader], 1).await;
    (writer, reader)
}

/// The reader caches version 1, the source moves to 2 and the writer invalidates; returns
/// what the reader reads next, and how long the invalidation took.
async fn write_then_read(
    writer: &Cache<MemoryStore>,
    reader: &Cache<MemoryStore>,
) -> (u64, Duration) {
    let source = Source::default();
    source.version.store(1, Ordering::SeqCst);
    let tag = writer.tag("thing");
    assert_eq!(source.read(reader, &tag).await, (1, Outcome::Miss));
    assert_eq!(source.read(reader, &tag).await, (1, Outcome::Hit));
    source.version.store(2, Ordering::SeqCst);
    let started = Instant::now();
    assert_eq!(
        writer.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Applied
    );
    let took = started.elapsed();
    (source.read(reader, &tag).await.0, took)
}

#[tokio::test]
async fn without_a_bus_an_instance_serves_what_another_changed() {
    // The failure the bus exists for: two in-process stores know nothing of each other.
    let namespace = unique_namespace();
    let writer = Cache::builder(MemoryStore::new(1 << 20), namespace.clone()).build();
    let reader = Cache::builder(MemoryStore::new(1 << 20), namespace).build();
    let source = Source::default();
    let tag = writer.tag("thing");
    source.version.store(1, Ordering::SeqCst);
    source.read(&reader, &tag).await;
    source.version.store(2, Ordering::SeqCst);
    writer.invalidate_tags(std::slice::from_ref(&tag)).await;
    assert_eq!(source.read(&reader, &tag).await, (1, Outcome::Hit));
}

#[tokio::test]
async fn an_invalidation_acknowledged_on_one_instance_is_seen_by_the_next_read_on_another() {
    let faults = Arc::new(Faults::default());
    let (writer, reader) = writer_and_reader(&faults).await;
    let (read, _) = write_then_read(&writer, &reader).await;
    assert_eq!(read, 2);
    assert_eq!(writer.fleet_status().unwrap().ack_timeouts, 0);
}

#[tokio::test]
async fn a_late_message_delays_the_write_not_the_truth() {
    let faults = Arc::new(Faults::default());
    let (writer, reader) = writer_and_reader(&faults).await;
    faults.delay_ms.store(150, Ordering::SeqCst);
    let (read, took) = write_then_read(&writer, &reader).await;
    assert_eq!(read, 2);
    assert!(
        took >= Duration::from_millis(150),
        "returned before the reader applied it"
    );
}

#[tokio::test]
async fn a_lost_message_is_noticed_by_the_next_one_and_the_reader_resyncs() {
    let faults = Arc::new(Faults::default());
    let (writer, reader) = writer_and_reader(&faults).await;
    faults.lose_next_invalidation.store(true, Ordering::SeqCst);
    let (read, took) = write_then_read(&writer, &reader).await;
    assert_eq!(read, 2);
    assert!(
        reader.fleet_status().unwrap().resyncs >= 2,
        "the gap was noticed"
    );
    assert!(
        took < clocks().lease,
        "the fence got an acknowledgement before the lease ran out ({took:?})"
    );
}

#[tokio::test]
async fn a_paused_instance_stops_serving_its_view_and_the_writer_waits_out_its_lease() {
    let faults = Arc::new(Faults::default());
    let (writer, reader) = writer_and_reader(&faults).await;
    let source = Source::default();
    let tag = writer.tag("thing");
    source.version.store(1, Ordering::SeqCst);
    source.read(&reader, &tag).await;

    faults.paused.store(true, Ordering::SeqCst);
    source.version.store(2, Ordering::SeqCst);
    let started = Instant::now();
    assert_eq!(
        writer.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Applied
    );
    assert!(started.elapsed() >= clocks().lease - Duration::from_millis(50));
    assert_eq!(writer.fleet_status().unwrap().ack_timeouts, 1);
    // The reader has heard nothing yet, but its lease ran out: it goes to the source.
    assert_eq!(source.read(&reader, &tag).await, (2, Outcome::Bypass));

    faults.paused.store(false, Ordering::SeqCst);
    until_live(&reader).await;
    assert_eq!(source.read(&reader, &tag).await.0, 2);
}

#[tokio::test]
async fn a_dropped_subscription_makes_the_instance_forget_everything() {
    // The bus says Listening again after it lost messages: the view starts over.
    let namespace = unique_namespace();
    let bus = LocalBus::default();
    let reader = memory_instance(&namespace, Arc::new(bus.clone()));
    until_live(&reader).await;
    let source = Source::default();
    let tag = reader.tag("thing");
    source.version.store(1, Ordering::SeqCst);
    source.read(&reader, &tag).await;
    // Fill the local bus past its capacity while the reader's listener is busy: it lags.
    for _ in 0..20_000 {
        bus.publish(Bytes::from_static(b"noise")).await.unwrap();
    }
    source.version.store(2, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while reader.fleet_status().unwrap().resyncs < 2 {
        assert!(Instant::now() < deadline, "the lag was never reported");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    until_live(&reader).await;
    assert_eq!(source.read(&reader, &tag).await, (2, Outcome::Miss));
}

#[tokio::test]
async fn malformed_and_foreign_messages_are_counted_and_ignored() {
    let namespace = unique_namespace();
    let bus = LocalBus::default();
    let cache = memory_instance(&namespace, Arc::new(bus.clone()));
    until_live(&cache).await;
    let source = Source::default();
    let tag = cache.tag("thing");
    source.version.store(1, Ordering::SeqCst);
    source.read(&cache, &tag).await;

    let other = unique_namespace();
    let foreign = format!(
        r#"{{"cachette":1,"ns":"{}","from":7,"seq":1,"lease_ms":1000,"tags":["{}"]}}"#,
        other.prefix(),
        other.tag("thing").as_str()
    );
    // Ours, but naming a tag outside the namespace: nothing of it is applied.
    let half = format!(
        r#"{{"cachette":1,"ns":"{}","from":7,"seq":1,"lease_ms":1000,"tags":["{}","x"]}}"#,
        namespace.prefix(),
        tag.as_str()
    );
    for message in [
        b"\xff\x00garbage".to_vec(),
        b"{\"cachette\":1}".to_vec(),
        b"[]".to_vec(),
        foreign.into_bytes(),
        half.into_bytes(),
    ] {
        bus.publish(Bytes::from(message)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = cache.fleet_status().unwrap();
        if status.malformed == 4 && status.foreign == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not all counted: {status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(source.read(&cache, &tag).await, (1, Outcome::Hit));
}

#[tokio::test]
async fn an_instance_that_leaves_is_not_waited_for() {
    let faults = Arc::new(Faults::default());
    let (writer, reader) = writer_and_reader(&faults).await;
    reader.leave().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !writer.fleet_status().unwrap().members.is_empty() {
        assert!(Instant::now() < deadline, "the leave was not heard");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    writer.invalidate_tags(&[writer.tag("thing")]).await;
    assert!(started.elapsed() < clocks().lease);
    assert_eq!(writer.fleet_status().unwrap().ack_timeouts, 0);
}

/// An instance with a local tier in front of the shared Redis, on the Redis bus.
async fn tiered_instance(namespace: &Namespace) -> Cache<cachette::RedisStore> {
    let bus = RedisBus::new(&redis_url(), &format!("{}bus", namespace.prefix())).unwrap();
    let cache = Cache::builder(redis_store().await, namespace.clone())
        .local_tier(1 << 20)
        .bus(Arc::new(bus), clocks())
        .build();
    until_live(&cache).await;
    cache
}

#[tokio::test]
async fn a_tiered_instance_serves_hits_without_the_store_and_stays_fresh_over_redis() {
    let namespace = unique_namespace();
    let writer = tiered_instance(&namespace).await;
    let reader = tiered_instance(&namespace).await;
    until_members(&[&writer, &reader], 1).await;
    let source = Source::default();
    let tag = writer.tag("thing");
    source.version.store(1, Ordering::SeqCst);
    assert_eq!(source.read(&reader, &tag).await, (1, Outcome::Miss));
    assert_eq!(source.read(&reader, &tag).await, (1, Outcome::Hit));
    assert_eq!(reader.stats().local_hits, 1);
    assert_eq!(
        source.read(&writer, &tag).await,
        (1, Outcome::Hit),
        "the store has it"
    );
    assert_eq!(writer.stats().local_hits, 0);

    source.version.store(2, Ordering::SeqCst);
    assert_eq!(
        writer.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Applied
    );
    assert_eq!(source.read(&reader, &tag).await, (2, Outcome::Miss));
    assert_eq!(source.read(&writer, &tag).await, (2, Outcome::Hit));
}

#[tokio::test]
async fn a_local_tier_without_a_bus_is_what_the_bus_fixes() {
    // Mutation check of the test above: the same steps with no bus serve the old value.
    let namespace = unique_namespace();
    let tiered = || async {
        Cache::builder(redis_store().await, namespace.clone())
            .local_tier(1 << 20)
            .build()
    };
    let (writer, reader) = (tiered().await, tiered().await);
    let source = Source::default();
    let tag = writer.tag("thing");
    source.version.store(1, Ordering::SeqCst);
    source.read(&reader, &tag).await;
    source.version.store(2, Ordering::SeqCst);
    writer.invalidate_tags(std::slice::from_ref(&tag)).await;
    assert_eq!(source.read(&reader, &tag).await, (1, Outcome::Hit));
}

/// Writers on every instance, readers on every instance; a reader that starts after a write's
/// invalidation returned must see that write or a later one.
async fn no_read_is_older_than_an_acknowledged_write<S: Store>(instances: Vec<Cache<S>>) {
    let source = Source::default();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stale = Arc::new(Mutex::new(Vec::new()));
    let stop = Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for (i, cache) in instances.iter().enumerate() {
        let (writer, written, acked) = (cache.clone(), source.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            let tag = writer.tag("thing");
            while Instant::now() < stop {
                let version = written.version.fetch_add(1, Ordering::SeqCst) + 1;
                writer.invalidate_tags(std::slice::from_ref(&tag)).await;
                acked.fetch_max(version, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3 + i as u64)).await;
            }
        }));
        for _ in 0..8 {
            let (cache, source, acknowledged, stale) = (
                cache.clone(),
                source.clone(),
                acknowledged.clone(),
                stale.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let tag = cache.tag("thing");
                while Instant::now() < stop {
                    let floor = acknowledged.load(Ordering::SeqCst);
                    let (read, outcome) = source.read(&cache, &tag).await;
                    if read < floor {
                        stale.lock().push((i, floor, read, outcome));
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the stress run finishes")
            .unwrap();
    }
    let stale = stale.lock();
    assert!(
        stale.is_empty(),
        "{} stale reads, e.g. {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    assert!(
        source.version.load(Ordering::SeqCst) > 50,
        "too few writes to mean anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_in_process_stores_on_a_bus_never_serve_an_acknowledged_write_old() {
    let namespace = unique_namespace();
    let bus = LocalBus::default();
    let instances: Vec<_> = (0..3)
        .map(|_| memory_instance(&namespace, Arc::new(bus.clone())))
        .collect();
    until_members(&instances.iter().collect::<Vec<_>>(), 2).await;
    no_read_is_older_than_an_acknowledged_write(instances).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_tiered_instances_on_redis_never_serve_an_acknowledged_write_old() {
    let namespace = unique_namespace();
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(tiered_instance(&namespace).await);
    }
    until_members(&instances.iter().collect::<Vec<_>>(), 2).await;
    no_read_is_older_than_an_acknowledged_write(instances).await;
}

/// A `LocalBus` that carries messages of at most 400 bytes.
struct NarrowBus(LocalBus);

impl Bus for NarrowBus {
    fn publish(&self, message: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        assert!(
            message.len() <= 400,
            "a message longer than the bus carries was sent"
        );
        self.0.publish(message)
    }
    fn listen(&self, heard: mpsc::Sender<Heard>) -> BoxFuture<'static, ()> {
        self.0.listen(heard)
    }
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn max_message_bytes(&self) -> usize {
        400
    }
}

#[tokio::test]
async fn an_invalidation_too_long_for_the_bus_makes_every_instance_forget_everything() {
    let namespace = unique_namespace();
    let bus = LocalBus::default();
    let writer = memory_instance(&namespace, Arc::new(NarrowBus(bus.clone())));
    let reader = memory_instance(&namespace, Arc::new(NarrowBus(bus)));
    until_members(&[&writer, &reader], 1).await;
    let source = Source::default();
    let unrelated = reader.tag("unrelated");
    source.version.store(1, Ordering::SeqCst);
    source.read(&reader, &unrelated).await;
    source.version.store(2, Ordering::SeqCst);

    let many: Vec<Tag> = (0..40).map(|i| writer.tag(&format!("tag-{i}"))).collect();
    assert_eq!(writer.invalidate_tags(&many).await, Invalidation::Applied);
    assert_eq!(source.read(&reader, &unrelated).await, (2, Outcome::Miss));
}

#[tokio::test]
async fn a_new_instance_waits_out_a_lease_before_trusting_what_it_knows_of_the_fleet() {
    // It may not have heard every member yet: it cannot know whose acknowledgement it lacks.
    let namespace = unique_namespace();
    let bus = LocalBus::default();
    let reader = memory_instance(&namespace, Arc::new(bus.clone()));
    until_live(&reader).await;
    let source = Source::default();
    let tag = reader.tag("thing");
    source.version.store(1, Ordering::SeqCst);
    source.read(&reader, &tag).await;

    let writer = memory_instance(&namespace, Arc::new(bus));
    source.version.store(2, Ordering::SeqCst);
    let started = Instant::now();
    assert_eq!(
        writer.invalidate_tags(std::slice::from_ref(&tag)).await,
        Invalidation::Applied
    );
    assert!(started.elapsed() >= clocks().lease - Duration::from_millis(50));
    assert_eq!(source.read(&reader, &tag).await.0, 2);
}
