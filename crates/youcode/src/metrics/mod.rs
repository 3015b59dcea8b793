//! What an operator's Prometheus scrapes: the registry of one [`crate::Application`], its
//! request figures, and the cache and database figures read when it is scraped
//! (`snapshot.rs`). The metric names, types and labels are listed in docs/OPERATIONS.md.
//!
//! Every application has its own registry, not a process-wide one: tests run many applications
//! in one process, and each must see only its own figures.
//!
//! Label values are bounded: route templates (never the path asked for), known methods,
//! status codes, the four `X-Cache` outcomes, and key prefixes the code names.

mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::cache::AppCache;
use crate::db::Db;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the request duration buckets, in seconds: a hit's fraction of a millisecond
/// to a slow database's seconds.
const REQUEST_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a scrape waits for the database to answer before reporting it down.
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One application's metrics. Cloning is cheap and shares them.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    outbox_relayed: Counter,
    /// Set by each scrape from a ping: a gauge kept here rather than read in `snapshot.rs`,
    /// whose figures are read without waiting.
    database_up: Gauge,
    db: Db,
}

/// One answered request, as [`Metrics::record_request`] counts it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The route template (`/api/courses/{id}`), `None` when no route matched.
    pub route: Option<&'a str>,
    pub method: &'a axum::http::Method,
    pub status: axum::http::StatusCode,
    /// The answer's `X-Cache`, if it has one.
    pub cache: Option<&'a [u8]>,
    /// From the request's arrival to its answer's head.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
    cache: &'static str,
}

impl Metrics {
    /// A registry over `cache` and `db`, whose figures are read at each scrape.
    pub fn new(cache: AppCache, db: Db) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "youcode_http_requests",
            "HTTP requests answered, by route template, method, status and X-Cache",
            requests.clone(),
        );
        let durations: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(REQUEST_BUCKETS));
        registry.register(
            "youcode_http_request_duration_seconds",
            "Time from a request's arrival to its answer's head",
            durations.clone(),
        );
        let outbox_relayed = Counter::default();
        registry.register(
            "youcode_outbox_rows_relayed",
            "Outbox rows a writer left behind that the relay applied",
            outbox_relayed.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "youcode_database_up",
            "Whether the database answered a ping at the last scrape (1) or not (0)",
            database_up.clone(),
        );
        registry.register_collector(Box::new(snapshot::Figures::new(cache, db.clone())));
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                durations,
                outbox_relayed,
                database_up,
                db,
            }),
        }
    }

    /// Counts one answered request.
    pub fn record_request(&self, request: Request<'_>) {
        let labels = RequestLabels {
            route: request.route.unwrap_or("unmatched").to_owned(),
            method: method_label(request.method),
            status: request.status.as_u16(),
            cache: cache_label(request.cache),
        };
        self.inner
            .durations
            .get_or_create(&labels)
            .observe(request.elapsed.as_secs_f64());
        self.inner.requests.get_or_create(&labels).inc();
    }

    /// Counts outbox rows the relay applied.
    pub fn record_relayed(&self, rows: u64) {
        self.inner.outbox_relayed.inc_by(rows);
    }

    /// Every metric in the Prometheus text format (version 0.0.4), after pinging the database
    /// for `youcode_database_up`.
    pub async fn render(&self) -> String {
        let inner = &*self.inner;
        let up = tokio::time::timeout(DATABASE_PROBE_TIMEOUT, inner.db.ping())
            .await
            .is_ok_and(|pinged| pinged.is_ok());
        inner.database_up.set(i64::from(up));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &inner.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The standard methods by name; anything else (methods are client input) as `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// An `X-Cache` value as a label: the four outcomes, `none` without the header.
fn cache_label(x_cache: Option<&[u8]>) -> &'static str {
    match x_cache {
        None => "none",
        Some(b"HIT") => "HIT",
        Some(b"MISS") => "MISS",
        Some(b"STALE") => "STALE",
        Some(b"BYPASS") => "BYPASS",
        Some(_) => "other",
    }
}
