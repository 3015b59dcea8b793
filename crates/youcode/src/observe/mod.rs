//! What the instance watches about itself, for the dashboard (`/admin`) and `/healthz`:
//! requests per route ([`traffic`]), a sample of the cache and database every second
//! ([`history`]), the alerts those samples raise ([`alerts`]) and invalidations as they happen
//! ([`events`]).

pub mod alerts;
pub mod events;
pub mod history;
pub mod traffic;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use self::alerts::{ActiveAlert, AlertBook, Change};
use self::events::InvalidationEvent;
use self::history::{History, Point, Sample};
use self::traffic::Traffic;
use crate::cache::AppCache;
use crate::config::AlertThresholds;
use crate::db::Db;
use crate::domain::Timestamp;

/// How often the monitor samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How much history the chart shows.
const CHART_SPAN: Duration = Duration::from_secs(300);
/// How many recent invalidations the dashboard shows when it opens.
const RECENT_EVENTS: usize = 20;
/// Invalidations a slow reader of the live list may fall behind by before it misses some.
const EVENT_BUFFER: usize = 256;
/// Longest wait for the database's answer when sampling.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The instance's view of itself. Each part has its own short-held lock.
pub struct Monitor {
    pub traffic: Traffic,
    history: Mutex<History>,
    alerts: Mutex<AlertBook>,
    recent: Mutex<VecDeque<InvalidationEvent>>,
    events: broadcast::Sender<InvalidationEvent>,
    thresholds: AlertThresholds,
    started: Instant,
    /// Set when the server stops, so that the live streams end and let it.
    stopping: watch::Sender<bool>,
}

impl Monitor {
    pub fn new(thresholds: AlertThresholds) -> Self {
        // Enough samples for the chart, the alert window and the pending threshold.
        let span = CHART_SPAN
            .max(thresholds.window)
            .max(thresholds.pending_after);
        let capacity = (span.as_secs() / SAMPLE_INTERVAL.as_secs().max(1)) as usize + 2;
        Self {
            traffic: Traffic::default(),
            history: Mutex::new(History::new(capacity)),
            alerts: Mutex::new(AlertBook::default()),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
            events: broadcast::channel(EVENT_BUFFER).0,
            thresholds,
            started: Instant::now(),
            stopping: watch::channel(false).0,
        }
    }

    /// Tells the dashboard's live list about an invalidation.
    pub fn publish(&self, event: InvalidationEvent) {
        {
            let mut recent = self.recent.lock();
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    /// Invalidations from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<InvalidationEvent> {
        self.events.subscribe()
    }

    /// The latest invalidations, oldest first.
    pub fn recent(&self) -> Vec<InvalidationEvent> {
        self.recent.lock().iter().cloned().collect()
    }

    /// The alerts firing now.
    pub fn alerts(&self) -> Vec<ActiveAlert> {
        self.alerts.lock().active()
    }

    /// The hit-ratio chart, a point a second.
    pub fn chart(&self) -> Vec<Point> {
        self.history.lock().points()
    }

    /// The thresholds the alerts use.
    pub fn thresholds(&self) -> &AlertThresholds {
        &self.thresholds
    }

    /// Adds a sample and evaluates the alerts on the history; what changed.
    pub fn record(&self, sample: Sample, now: Timestamp) -> Vec<Change> {
        let firing = alerts::evaluate(&self.thresholds, self.history.lock().push_and_read(sample));
        self.alerts.lock().update(firing, now)
    }

    /// Ends the live streams: the server is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Changes to `true` when the server stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The sample of this moment.
    async fn sample(&self, db: &Db, cache: &AppCache) -> Sample {
        let database_ok = tokio::time::timeout(PING_TIMEOUT, db.ping())
            .await
            .is_ok_and(|pinged| pinged.is_ok());
        let stats = cache.stats();
        Sample {
            at: self.started.elapsed(),
            lookups: stats.lookups,
            store_errors: stats.errors,
            breaker_open: cache.is_circuit_open(),
            pending: cache.has_pending_invalidations(),
            database_ok,
        }
    }
}

/// Samples every [`SAMPLE_INTERVAL`] and logs each alert once when it is raised (WARN) and
/// once when it clears (INFO): forever (the server aborts it when it stops).
pub async fn watch(monitor: std::sync::Arc<Monitor>, db: Db, cache: AppCache) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sample = monitor.sample(&db, &cache).await;
        for change in monitor.record(sample, now()) {
            match change {
                Change::Raised(alert) => {
                    tracing::warn!(alert = ?alert.kind, message = %alert.message, "alert raised");
                }
                Change::Cleared(kind) => tracing::info!(alert = ?kind, "alert cleared"),
            }
        }
    }
}

/// The wall-clock time, for what the dashboard shows.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}
