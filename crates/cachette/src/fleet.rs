//! The instances sharing a cache, as this one knows them: membership by heartbeats, a lease on
//! its own knowledge, and acknowledged invalidation over a [`Bus`].
//!
//! # The guarantee, and why it holds
//!
//! Each instance keeps a *local view* (an in-process tier in front of a shared store, or an
//! in-process store of its own) that it may serve without asking anyone. A write's
//! [`Cache::invalidate_tags`](crate::Cache::invalidate_tags) returns only after
//!
//! 1. the shared store, if any, has the new generations, and this instance's local view has
//!    forgotten the tags;
//! 2. the bus has accepted a message naming the tags (message `M`);
//! 3. every *live* member has acknowledged `M` (applied it to its local view first), or the
//!    lease of every member that has not has run out since `M` was accepted. The writer
//!    trusts its view of who is live only once it has heard `M` back, after listening for a
//!    lease without a break (since the last [`Heard::Listening`]): then it has heard every
//!    message the bus accepted before `M`, so every member whose lease rests on one.
//!
//! A member serves its local view only while it holds a lease: a message of its own, sent at
//! `s`, has come back to it over the bus, and less than `lease` has passed since `s`. The bus is
//! FIFO per channel, so when a member hears its own message it has heard every message the bus
//! accepted before it. Take a member that did not acknowledge `M` in time, and a request that
//! starts on it after the writer returned, at least `lease` after the bus accepted `M`. Its
//! lease then rests on a message sent less than `lease` ago, so after the bus accepted `M`, and
//! heard back: the member heard `M` first and forgot the tags. Every request that starts after
//! the writer returned therefore either misses the member's local view for those tags or finds
//! no lease there; a miss reads the shared store (step 1) or the database.
//!
//! Faults the bus can have:
//!
//! - **A late message** delays the writer (it waits for the acknowledgement) or the member's
//!   lease (its own messages are late too); never a stale read.
//! - **A lost or reordered message**: every message carries its sender's sequence number (one
//!   publish at a time per instance, so numbers are sent in order). A member that sees a number
//!   skipped forgets its whole local view (a *resync*), which covers the lost message: that
//!   message's store update came before the later message was sent. A writer missing an
//!   acknowledgement soon sends a *fence* (a message asking for one), so a member that lost `M`
//!   sees the gap, resyncs and acknowledges without the writer waiting out the lease.
//! - **A dropped subscription**: the bus says [`Heard::Listening`] when it listens again; the
//!   member resyncs then, and meanwhile hears none of its own messages, so its lease runs out.
//!   As a writer, it hears neither its message `M` nor anyone else: it waits out the lease
//!   rather than take the others' silence for their absence.
//! - **A paused instance** finds its lease run out when it resumes (the clock is monotonic),
//!   and serves its local view again only once it has heard a message sent after resuming, so
//!   after everything accepted before it.
//!
//! What a write pays: one bus message (batched with other writes of the instance under way)
//! and a round trip through the bus to each live member; a member that stopped answering costs
//! the writer up to one lease, once, until its heartbeats stop and it leaves the membership.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

use crate::bus::{Bus, BusError, Heard};
use crate::key::Namespace;

/// Version of the message format; a message of another version is foreign.
const FORMAT: u8 = 1;

/// Own messages remembered while waiting to hear them back.
const MAX_IN_FLIGHT: usize = 1024;

/// Tags waiting to be announced before they give way to the namespace epoch.
const MAX_QUEUED_TAGS: usize = 4096;

/// How the fleet's clocks are set.
#[derive(Debug, Clone, Copy)]
pub struct FleetConfig {
    /// How long an instance serves its local view after sending a message it then heard back.
    /// Also the longest a write waits for a member that does not acknowledge it.
    pub lease: Duration,
    /// How often an instance sends a message when it has nothing else to send. Several per
    /// lease, so a lease is renewed long before it runs out.
    pub heartbeat: Duration,
    /// How long a write waits for acknowledgements before sending a fence.
    pub fence_after: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(1),
            heartbeat: Duration::from_millis(200),
            fence_after: Duration::from_millis(25),
        }
    }
}

/// What the local view must forget after hearing a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Forget {
    Nothing,
    /// These tags (keys of generations) changed.
    Tags(Vec<String>),
    /// Messages may have been missed: everything.
    All,
}

/// A message on the bus. Every message is also a heartbeat.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    cachette: u8,
    /// The namespace prefix of the caches it is about.
    ns: String,
    from: u64,
    seq: u64,
    lease_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// `(member, seq)`: every message of `member` up to `seq` is applied here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    acks: Vec<(u64, u64)>,
    /// Asks every member to acknowledge this message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    fence: bool,
    /// The sender is leaving: nobody waits for it any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    leave: bool,
}

/// Another instance, as heard.
struct Member {
    heard_at: Instant,
    lease: Duration,
    /// The sequence number its next message should carry.
    next_seq: u64,
    /// The highest of our sequence numbers it acknowledged.
    acked: u64,
}

/// What the publisher sends next.
#[derive(Default)]
struct Outbox {
    tags: Vec<String>,
    waiters: Vec<oneshot::Sender<Result<Published, ()>>>,
    acks: HashMap<u64, u64>,
    fence: bool,
    leave: bool,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.acks.is_empty() && !self.fence && !self.leave
    }

    /// Queues `tags`. Past [`MAX_QUEUED_TAGS`] (a bus down while writes go on) they give way to
    /// the namespace `epoch`: every instance then forgets its whole local view, which covers
    /// them all, and the queue stays bounded.
    fn add_tags(&mut self, tags: impl IntoIterator<Item = String>, epoch: &str) {
        if self.tags.len() == 1 && self.tags[0] == epoch {
            return;
        }
        self.tags.extend(tags);
        if self.tags.len() > MAX_QUEUED_TAGS {
            self.tags = vec![epoch.to_owned()];
        }
    }
}

/// A message about to be published, and who waits for it.
struct Outgoing {
    seq: u64,
    bytes: Bytes,
    /// Queued again should publishing fail.
    tags: Vec<String>,
    waiters: Vec<oneshot::Sender<Result<Published, ()>>>,
}

#[derive(Clone, Copy)]
struct Published {
    seq: u64,
    at: Instant,
}

struct State {
    members: HashMap<u64, Member>,
    /// Our own messages sent and not heard back yet, oldest first: `(seq, sent at)`.
    in_flight: VecDeque<(u64, Instant)>,
    outbox: Outbox,
    next_seq: u64,
    /// Since when the bus has listened without a break. Only after a lease of it has this
    /// instance heard from every live member, so only then can it tell whom to wait for.
    listening_since: Option<Instant>,
    /// The highest of our sequence numbers heard back with none of ours before it lost: this
    /// instance has heard every message the bus accepted before that one.
    heard_back: u64,
}

/// Another live instance, as this one last heard it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Its random id, in hex.
    pub instance: String,
    pub heard_ms_ago: u64,
}

/// Counters and state for stats and health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FleetStatus {
    /// This instance's random id, in hex.
    pub instance: String,
    /// The bus's name.
    pub bus: &'static str,
    /// Whether this instance holds a lease: it serves its local view.
    pub live: bool,
    /// Whether it has listened for a lease without a break, so it knows every live member
    /// (until then its writes wait out the lease).
    pub settled: bool,
    /// Other instances heard within their lease.
    pub members: Vec<MemberStatus>,
    /// Messages published and heard.
    pub published: u64,
    pub heard: u64,
    /// Messages ignored: unreadable, or of another namespace or format.
    pub malformed: u64,
    pub foreign: u64,
    /// Times the local view was forgotten whole because messages may have been missed.
    pub resyncs: u64,
    /// Writes that waited out a member's lease instead of its acknowledgement.
    pub ack_timeouts: u64,
    /// Messages that failed to publish.
    pub publish_errors: u64,
    /// What invalidations waited: publishing, then every live member's acknowledgement.
    pub invalidation_wait: WaitSummary,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    heard: AtomicU64,
    malformed: AtomicU64,
    foreign: AtomicU64,
    resyncs: AtomicU64,
    ack_timeouts: AtomicU64,
    publish_errors: AtomicU64,
}

/// What writes waited for acknowledgements, in buckets a quarter of a power of two wide
/// (about 19 %), from 1 µs to over an hour.
struct WaitTimes {
    buckets: [AtomicU64; WAIT_BUCKETS],
    max_us: AtomicU64,
}

const WAIT_BUCKETS: usize = 128;

impl WaitTimes {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            max_us: AtomicU64::new(0),
        }
    }

    fn record(&self, waited: Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX).max(1);
        let bucket = ((us as f64).log2() * 4.0) as usize;
        self.buckets[bucket.min(WAIT_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn summary(&self) -> WaitSummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        // The upper bound of the bucket holding the `q` quantile.
        let quantile = |q: f64| {
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (bucket, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return 2f64.powf((bucket + 1) as f64 / 4.0) as u64;
                }
            }
            0
        };
        let max_us = self.max_us.load(Ordering::Relaxed);
        WaitSummary {
            count,
            p50_us: if count == 0 {
                0
            } else {
                quantile(0.5).min(max_us)
            },
            p99_us: if count == 0 {
                0
            } else {
                quantile(0.99).min(max_us)
            },
            max_us,
        }
    }
}

/// How long writes waited for the fleet since start: from the message's acceptance by the bus
/// to the last acknowledgement (or the lease's end). Quantiles are bucket bounds, within 19 %.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WaitSummary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// This instance's membership of the fleet sharing a cache namespace.
pub(crate) struct Fleet {
    bus: Arc<dyn Bus>,
    id: u64,
    namespace: String,
    /// The namespace epoch's key: what an invalidation too long for the bus names instead.
    epoch: String,
    config: FleetConfig,
    /// Origin of `live_until`.
    origin: Instant,
    /// Nanoseconds after `origin` until which the lease holds; 0 before the first one. An atomic
    /// so the read path checks the lease without a lock.
    live_until: AtomicU64,
    state: Mutex<State>,
    /// Wakes the publisher.
    wake: Notify,
    /// Wakes writers waiting for acknowledgements.
    acked: Notify,
    counters: Counters,
    /// What announcing cost writes: publishing and waiting for acknowledgements.
    waits: WaitTimes,
}

impl Fleet {
    pub(crate) fn new(bus: Arc<dyn Bus>, namespace: &Namespace, config: FleetConfig) -> Self {
        Self {
            bus,
            id: rand::random(),
            namespace: namespace.prefix().to_owned(),
            epoch: namespace.epoch().as_str().to_owned(),
            config,
            origin: Instant::now(),
            live_until: AtomicU64::new(0),
            state: Mutex::new(State {
                members: HashMap::new(),
                in_flight: VecDeque::new(),
                outbox: Outbox::default(),
                next_seq: 1,
                listening_since: None,
                heard_back: 0,
            }),
            wake: Notify::new(),
            acked: Notify::new(),
            counters: Counters::default(),
            waits: WaitTimes::new(),
        }
    }

    pub(crate) fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Whether this instance may serve its local view now.
    pub(crate) fn is_live(&self) -> bool {
        self.nanos(Instant::now()) < self.live_until.load(Ordering::Acquire)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes in one thing the bus heard; returns what the local view must forget. Messages
    /// that ask for it are acknowledged by [`Fleet::acknowledge`], to be called once the local
    /// view has forgotten.
    pub(crate) fn hear(&self, heard: Heard) -> (Forget, Option<(u64, u64)>) {
        let bytes = match heard {
            Heard::Listening => {
                self.state.lock().listening_since = Some(Instant::now());
                self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
                return (Forget::All, None);
            }
            Heard::Message(bytes) => bytes,
        };
        self.counters.heard.fetch_add(1, Ordering::Relaxed);
        let Ok(message) = serde_json::from_slice::<Message>(&bytes) else {
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return (Forget::Nothing, None);
        };
        if message.cachette != FORMAT || message.ns != self.namespace {
            self.counters.foreign.fetch_add(1, Ordering::Relaxed);
            return (Forget::Nothing, None);
        }
        // Every tag must be ours, or nothing of the message is applied.
        if message
            .tags
            .iter()
            .any(|tag| !tag.starts_with(&self.namespace))
        {
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return (Forget::Nothing, None);
        }
        let now = Instant::now();
        if message.from == self.id {
            return (self.hear_own(message.seq), None);
        }
        let mut state = self.state.lock();
        let mut gap = false;
        if message.leave {
            state.members.remove(&message.from);
        } else {
            let member = state.members.entry(message.from).or_insert(Member {
                heard_at: now,
                lease: Duration::ZERO,
                next_seq: message.seq,
                acked: 0,
            });
            gap = message.seq > member.next_seq;
            member.next_seq = member.next_seq.max(message.seq + 1);
            member.heard_at = now;
            member.lease = Duration::from_millis(message.lease_ms);
        }
        let mut progress = false;
        for &(to, seq) in &message.acks {
            if to == self.id
                && let Some(member) = state.members.get_mut(&message.from)
                && seq > member.acked
            {
                member.acked = seq;
                progress = true;
            }
        }
        drop(state);
        if progress {
            self.acked.notify_waiters();
        }
        let ack =
            (!message.tags.is_empty() || message.fence).then_some((message.from, message.seq));
        let forget = if gap {
            self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
            Forget::All
        } else if message.tags.is_empty() {
            Forget::Nothing
        } else {
            Forget::Tags(message.tags)
        };
        (forget, ack)
    }

    /// One of our own messages came back: the lease runs from when it was sent. Any of ours
    /// sent before it and not heard back was lost, and with it maybe others' messages.
    fn hear_own(&self, seq: u64) -> Forget {
        let mut state = self.state.lock();
        let mut lost = false;
        let mut sent_at = None;
        while let Some(&(first, at)) = state.in_flight.front() {
            if first > seq {
                break;
            }
            state.in_flight.pop_front();
            if first == seq {
                sent_at = Some(at);
            } else {
                lost = true;
            }
        }
        if lost {
            // Others' messages may have been missed with it, heartbeats included: the
            // membership is known again only after listening for a lease, as after a new
            // subscription.
            state.listening_since = Some(Instant::now());
        } else {
            state.heard_back = state.heard_back.max(seq);
        }
        drop(state);
        // A writer waits for its own message too (see `knows_members_for`).
        self.acked.notify_waiters();
        if lost {
            self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
            return Forget::All;
        }
        if let Some(sent_at) = sent_at {
            let until = self.nanos(sent_at + self.config.lease);
            self.live_until.fetch_max(until, Ordering::AcqRel);
        }
        Forget::Nothing
    }

    /// Queues acknowledgements of messages the local view has now applied.
    pub(crate) fn acknowledge(&self, acks: impl IntoIterator<Item = (u64, u64)>) {
        let mut state = self.state.lock();
        let mut any = false;
        for (to, seq) in acks {
            let slot = state.outbox.acks.entry(to).or_insert(0);
            *slot = (*slot).max(seq);
            any = true;
        }
        drop(state);
        if any {
            self.wake.notify_one();
        }
    }

    /// Queues `tags` for the next message, waiting for nothing: for an invalidation that
    /// reached the store only on a retry, after its write returned.
    pub(crate) fn queue(&self, tags: Vec<String>) {
        self.state.lock().outbox.add_tags(tags, &self.epoch);
        self.wake.notify_one();
    }

    /// Announces that `tags` changed and waits until every live member applied it, or its
    /// lease ran out.
    ///
    /// # Errors
    /// When the bus did not accept the message. The tags stay queued and go with the next
    /// message the publisher manages to send.
    pub(crate) async fn announce(&self, tags: Vec<String>) -> Result<(), BusError> {
        let started = Instant::now();
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.lock();
            state.outbox.add_tags(tags, &self.epoch);
            state.outbox.waiters.push(sender);
        }
        self.wake.notify_one();
        // Bounded: a publisher stuck on a bus that does not answer must not hold the write.
        let published = tokio::time::timeout(self.config.lease, receiver)
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(Result::ok)
            .ok_or_else(|| BusError("the invalidation could not be published".into()))?;
        self.wait_for_acks(published).await;
        self.waits.record(started.elapsed());
        Ok(())
    }

    async fn wait_for_acks(&self, published: Published) {
        let lease_end = published.at + self.longest_lease();
        let fence_at = published.at + self.config.fence_after;
        let mut fenced = false;
        loop {
            let notified = self.acked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            // Until it may trust its view of the members, it waits out the lease, whoever
            // acknowledges.
            let knows_members = self.knows_members_for(published);
            if knows_members && self.unacknowledged(published.seq, now) == 0 {
                return;
            }
            if now >= lease_end {
                if knows_members {
                    self.counters.ack_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            if !fenced && now >= fence_at {
                fenced = true;
                self.state.lock().outbox.fence = true;
                self.wake.notify_one();
            }
            let next = if fenced { lease_end } else { fence_at };
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(next.into()) => {}
            }
        }
    }

    /// Whether this instance's view of the members holds for a message it published: it had
    /// listened for a lease when the bus accepted it (it may not know every member before),
    /// and it has heard it back since, so it heard every message accepted before it, those
    /// that made any member live included. A subscription that dropped hears nothing until
    /// the bus listens again and says so: meanwhile every other member falls silent, and that
    /// silence proves nothing.
    fn knows_members_for(&self, published: Published) -> bool {
        let state = self.state.lock();
        state.heard_back >= published.seq
            && state
                .listening_since
                .is_some_and(|since| published.at >= since + self.config.lease)
    }

    /// Whether the bus had listened without a break for a lease at `at`.
    pub(crate) fn settled_at(&self, at: Instant) -> bool {
        let since = self.state.lock().listening_since;
        since.is_some_and(|since| at >= since + self.config.lease)
    }

    /// Members heard within their lease that have not acknowledged `seq`.
    fn unacknowledged(&self, seq: u64, now: Instant) -> usize {
        let state = self.state.lock();
        state
            .members
            .values()
            .filter(|member| member.acked < seq && member.heard_at + member.lease > now)
            .count()
    }

    fn longest_lease(&self) -> Duration {
        let state = self.state.lock();
        state
            .members
            .values()
            .map(|member| member.lease)
            .fold(self.config.lease, Duration::max)
    }

    /// Sends a message saying this instance leaves, so writers stop waiting for it. Should it
    /// announce something afterwards, the others hear it again and count it back in.
    pub(crate) async fn leave(&self) {
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.lock();
            state.outbox.leave = true;
            state.outbox.waiters.push(sender);
        }
        self.wake.notify_one();
        let _ = tokio::time::timeout(self.config.lease, receiver).await;
    }

    /// Sends what the outbox holds, at once when something is queued and at least every
    /// heartbeat otherwise; one message at a time, so sequence numbers go out in order.
    pub(crate) async fn publish_next(&self) {
        let due = tokio::time::sleep(self.config.heartbeat);
        tokio::pin!(due);
        loop {
            if !self.state.lock().outbox.is_empty() {
                break;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = &mut due => break,
            }
        }
        let outgoing = self.take_message();
        let result = self.bus.publish(outgoing.bytes).await;
        let at = Instant::now();
        let published = match result {
            Ok(()) => {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                Ok(Published {
                    seq: outgoing.seq,
                    at,
                })
            }
            Err(error) => {
                self.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "cache bus publish failed");
                let mut state = self.state.lock();
                // Its number will never be heard: not a sign that later ones were lost.
                state.in_flight.retain(|&(seq, _)| seq != outgoing.seq);
                state.outbox.add_tags(outgoing.tags, &self.epoch);
                Err(())
            }
        };
        let failed = published.is_err();
        for waiter in outgoing.waiters {
            let _ = waiter.send(published);
        }
        if failed {
            tokio::time::sleep(self.config.heartbeat.min(Duration::from_millis(100))).await;
        }
    }

    /// Empties the outbox into the next message.
    fn take_message(&self) -> Outgoing {
        let mut state = self.state.lock();
        let outbox = std::mem::take(&mut state.outbox);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.in_flight.push_back((seq, Instant::now()));
        // Never heard back (the subscription is down): the oldest can go, the bus will say
        // Listening before this instance hears anything again.
        if state.in_flight.len() > MAX_IN_FLIGHT {
            state.in_flight.pop_front();
        }
        let now = Instant::now();
        // Members silent for several leases are gone; one that comes back is heard anew.
        state
            .members
            .retain(|_, member| member.heard_at + member.lease * 4 > now);
        drop(state);
        let mut message = Message {
            cachette: FORMAT,
            ns: self.namespace.clone(),
            from: self.id,
            seq,
            lease_ms: u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX),
            tags: outbox.tags,
            acks: outbox.acks.into_iter().collect(),
            fence: outbox.fence,
            leave: outbox.leave,
        };
        let mut bytes = serde_json::to_vec(&message).expect("a message serializes");
        if bytes.len() > self.bus.max_message_bytes() {
            // Too long for the bus: the epoch goes instead (the tags stay, for a retry).
            let tags = std::mem::replace(&mut message.tags, vec![self.epoch.clone()]);
            bytes = serde_json::to_vec(&message).expect("a message serializes");
            message.tags = tags;
        }
        let bytes = Bytes::from(bytes);
        Outgoing {
            seq,
            bytes,
            tags: message.tags,
            waiters: outbox.waiters,
        }
    }

    pub(crate) fn status(&self) -> FleetStatus {
        let now = Instant::now();
        let state = self.state.lock();
        let mut members: Vec<MemberStatus> = state
            .members
            .iter()
            .filter(|(_, member)| member.heard_at + member.lease > now)
            .map(|(id, member)| {
                let ago = now.saturating_duration_since(member.heard_at);
                MemberStatus {
                    instance: format!("{id:016x}"),
                    heard_ms_ago: u64::try_from(ago.as_millis()).unwrap_or(u64::MAX),
                }
            })
            .collect();
        drop(state);
        members.sort();
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        FleetStatus {
            instance: format!("{:016x}", self.id),
            bus: self.bus.name(),
            live: self.is_live(),
            settled: self.settled_at(now),
            members,
            published: count(&self.counters.published),
            heard: count(&self.counters.heard),
            malformed: count(&self.counters.malformed),
            foreign: count(&self.counters.foreign),
            resyncs: count(&self.counters.resyncs),
            ack_timeouts: count(&self.counters.ack_timeouts),
            publish_errors: count(&self.counters.publish_errors),
            invalidation_wait: self.waits.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_quantiles_are_within_a_bucket_of_the_truth() {
        let waits = WaitTimes::new();
        for us in 1..=1000 {
            waits.record(Duration::from_micros(us));
        }
        let summary = waits.summary();
        assert_eq!((summary.count, summary.max_us), (1000, 1000));
        assert!((500..=600).contains(&summary.p50_us), "{summary:?}");
        assert!((990..=1000).contains(&summary.p99_us), "{summary:?}");
        assert_eq!(WaitTimes::new().summary(), WaitSummary::default());
    }
}

#[cfg(test)]
mod outbox_tests {
    use super::*;

    #[test]
    fn queued_tags_past_the_bound_give_way_to_the_epoch() {
        let mut outbox = Outbox::default();
        outbox.add_tags(["a".to_owned()], "epoch");
        assert_eq!(outbox.tags, ["a"]);
        outbox.add_tags((0..MAX_QUEUED_TAGS).map(|i| i.to_string()), "epoch");
        assert_eq!(outbox.tags, ["epoch"]);
        outbox.add_tags(["b".to_owned()], "epoch");
        assert_eq!(outbox.tags, ["epoch"], "the epoch covers every later tag");
    }
}
