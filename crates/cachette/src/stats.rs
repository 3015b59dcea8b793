//! Counters: overall and per key prefix.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use dashmap::DashMap;
use serde::Serialize;

/// How a lookup was answered; sent by HTTP routes as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    /// Served from the store.
    Hit,
    /// Fetched from the source (by this caller or by the one it waited for), then stored.
    Miss,
    /// The fetch failed and a never-invalidated entry past its TTL was served.
    Stale,
    /// The store was skipped (down, circuit open, invalidation pending, cache disabled) and the
    /// source answered directly.
    Bypass,
}

impl Outcome {
    /// `HIT`, `MISS`, `STALE` or `BYPASS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
            Outcome::Stale => "STALE",
            Outcome::Bypass => "BYPASS",
        }
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    bypasses: AtomicU64,
}

impl Counters {
    fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Hit => &self.hits,
            Outcome::Miss => &self.misses,
            Outcome::Stale => &self.stale,
            Outcome::Bypass => &self.bypasses,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> Lookups {
        Lookups {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            stale: self.stale.load(Relaxed),
            bypasses: self.bypasses.load(Relaxed),
        }
    }
}

/// The live counters of one cache.
#[derive(Default)]
pub(crate) struct Stats {
    total: Counters,
    /// A map from prefix to counters; prefixes are few (one per route), so it stays small.
    prefixes: DashMap<String, Counters, foldhash::fast::RandomState>,
    errors: AtomicU64,
    sets: AtomicU64,
    coalesced: AtomicU64,
    lease_waits: AtomicU64,
    local_hits: AtomicU64,
    invalidations: AtomicU64,
    oversized: AtomicU64,
    corrupt: AtomicU64,
}

impl Stats {
    pub(crate) fn record(&self, prefix: &str, outcome: Outcome) {
        self.total.record(outcome);
        match self.prefixes.get(prefix) {
            Some(counters) => counters.record(outcome),
            None => self
                .prefixes
                .entry(prefix.to_owned())
                .or_default()
                .record(outcome),
        }
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn set(&self) {
        self.sets.fetch_add(1, Relaxed);
    }
    pub(crate) fn coalesced(&self) {
        self.coalesced.fetch_add(1, Relaxed);
    }
    pub(crate) fn lease_wait(&self) {
        self.lease_waits.fetch_add(1, Relaxed);
    }
    pub(crate) fn local_hit(&self) {
        self.local_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn invalidated(&self, tags: usize) {
        self.invalidations.fetch_add(tags as u64, Relaxed);
    }
    pub(crate) fn oversized(&self) {
        self.oversized.fetch_add(1, Relaxed);
    }
    pub(crate) fn corrupt(&self) {
        self.corrupt.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            lookups: self.total.snapshot(),
            errors: self.errors.load(Relaxed),
            sets: self.sets.load(Relaxed),
            coalesced: self.coalesced.load(Relaxed),
            lease_waits: self.lease_waits.load(Relaxed),
            local_hits: self.local_hits.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            oversized: self.oversized.load(Relaxed),
            corrupt: self.corrupt.load(Relaxed),
            prefixes: self
                .prefixes
                .iter()
                .map(|entry| (entry.key().clone(), entry.value().snapshot()))
                .collect(),
        }
    }
}

/// Lookup counts, overall or for one key prefix. Serialized with their hit ratio:
/// `{"hits","misses","stale","bypasses","hitRatio"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lookups {
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub bypasses: u64,
}

impl Lookups {
    /// Every lookup, whatever its outcome.
    pub fn total(&self) -> u64 {
        self.hits + self.misses + self.stale + self.bypasses
    }

    /// Hits over all lookups (0 when there were none).
    pub fn hit_ratio(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            total => self.hits as f64 / total as f64,
        }
    }
}

impl Serialize for Lookups {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut lookups = serializer.serialize_struct("Lookups", 5)?;
        lookups.serialize_field("hits", &self.hits)?;
        lookups.serialize_field("misses", &self.misses)?;
        lookups.serialize_field("stale", &self.stale)?;
        lookups.serialize_field("bypasses", &self.bypasses)?;
        lookups.serialize_field("hitRatio", &self.hit_ratio())?;
        lookups.end()
    }
}

/// [`Lookups`] as they serialize: the counts, then their hit ratio.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Lookups {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let number = |kind, format| {
            ObjectBuilder::new()
                .schema_type(kind)
                .format(Some(SchemaFormat::KnownFormat(format)))
                .minimum(Some(0.0))
        };
        let mut lookups = ObjectBuilder::new();
        for count in ["hits", "misses", "stale", "bypasses"] {
            lookups = lookups
                .property(count, number(Type::Integer, KnownFormat::Int64))
                .required(count);
        }
        lookups
            .property(
                "hitRatio",
                number(Type::Number, KnownFormat::Double).maximum(Some(1.0)),
            )
            .required("hitRatio")
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Lookups {}

/// A copy of a cache's counters at one moment.
///
/// Serialized as the overall figures, in camelCase and in the order of the fields, so that a
/// service can show them as they are (flattened into its own answer, say) and a new counter
/// shows up there without more code. Its per-prefix figures are left to the service, which
/// names the prefixes its own way.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Every lookup, by outcome, and their hit ratio.
    #[serde(flatten)]
    pub lookups: Lookups,
    /// Store operations that failed or timed out.
    pub errors: u64,
    /// Entries written.
    pub sets: u64,
    /// Tags invalidated.
    pub invalidations: u64,
    /// Misses that waited for another caller's fetch instead of fetching.
    pub coalesced: u64,
    /// Hits served by the in-process tier, without a store call (counted among `hits` too).
    pub local_hits: u64,
    /// Misses that waited for another instance's fetch, under its lease on the key in the
    /// shared store, and were served the entry it stored instead of fetching.
    pub lease_waits: u64,
    /// Values not stored because they exceeded the size limit. Not serialized (yet): showing
    /// it would change the shape of the stats answers built on the serialized figures.
    #[serde(skip)]
    pub oversized: u64,
    /// Entries that failed to decode and were deleted. Not serialized, like `oversized`.
    #[serde(skip)]
    pub corrupt: u64,
    /// Lookups per key prefix.
    #[serde(skip)]
    pub prefixes: BTreeMap<String, Lookups>,
}

impl StatsSnapshot {
    /// Hits over all lookups.
    pub fn hit_ratio(&self) -> f64 {
        self.lookups.hit_ratio()
    }
}
