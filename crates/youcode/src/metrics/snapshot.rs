//! The cache's and the database's figures, read when Prometheus scrapes: cachette and the
//! pool count them already, so they are copied as they are rather than counted twice.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::cache::AppCache;
use crate::db::Db;

/// Reads the figures of one application's cache and database at each scrape.
pub(super) struct Figures {
    cache: AppCache,
    db: Db,
}

impl std::fmt::Debug for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Figures").finish_non_exhaustive()
    }
}

impl Figures {
    pub(super) fn new(cache: AppCache, db: Db) -> Self {
        Self { cache, db }
    }
}

type Written = Result<(), std::fmt::Error>;

impl Collector for Figures {
    fn encode(&self, mut out: DescriptorEncoder<'_>) -> Written {
        self.encode_lookups(&mut out)?;
        self.encode_store(&mut out)?;
        self.encode_invalidations(&mut out)?;
        self.encode_tier_and_bus(&mut out)?;
        self.encode_database(&mut out)
    }
}

impl Figures {
    fn encode_lookups(&self, out: &mut DescriptorEncoder<'_>) -> Written {
        let stats = self.cache.stats();
        let mut lookups = out.encode_descriptor(
            "youcode_cache_lookups",
            "Cache lookups by key prefix and outcome (hit, miss, stale, bypass)",
            None,
            MetricType::Counter,
        )?;
        for (prefix, counts) in &stats.prefixes {
            for (outcome, count) in [
                ("hit", counts.hits),
                ("miss", counts.misses),
                ("stale", counts.stale),
                ("bypass", counts.bypasses),
            ] {
                let labels = [("prefix", prefix.as_str()), ("outcome", outcome)];
                ConstCounter::new(count).encode(lookups.encode_family(&labels)?)?;
            }
        }
        counter(
            out,
            "youcode_cache_coalesced",
            "Misses that waited for another caller's fetch in this instance instead of fetching",
            stats.coalesced,
        )?;
        counter(
            out,
            "youcode_cache_lease_waits",
            "Misses served the entry another instance fetched under its lease on the key",
            stats.lease_waits,
        )?;
        counter(
            out,
            "youcode_cache_entries_stored",
            "Entries written to the store",
            stats.sets,
        )?;
        counter(
            out,
            "youcode_cache_oversized",
            "Values not stored because they exceeded the size limit",
            stats.oversized,
        )?;
        counter(
            out,
            "youcode_cache_corrupt_entries",
            "Stored entries that failed to decode and were deleted",
            stats.corrupt,
        )
    }

    fn encode_store(&self, out: &mut DescriptorEncoder<'_>) -> Written {
        let latency = self.cache.store_call_latency();
        let mut histogram = out.encode_descriptor(
            "youcode_cache_store_call_duration_seconds",
            "Time store calls took, failed and timed-out ones included",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets = latency.buckets.clone();
        buckets.push((f64::INFINITY, latency.count));
        histogram.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            latency.sum.as_secs_f64(),
            latency.count,
            &buckets,
            None,
        )?;
        counter(
            out,
            "youcode_cache_store_errors",
            "Store calls that failed or timed out (the request was answered from the database)",
            self.cache.stats().errors,
        )?;
        gauge(
            out,
            "youcode_cache_breaker_open",
            "Whether the circuit breaker skips the store now (1) or not (0)",
            i64::from(self.cache.is_circuit_open()),
        )?;
        gauge(
            out,
            "youcode_cache_enabled",
            "Whether the cache is on (1) or configured off (0)",
            i64::from(self.cache.config().enabled),
        )
    }

    fn encode_invalidations(&self, out: &mut DescriptorEncoder<'_>) -> Written {
        let pending = self.cache.pending_invalidations();
        gauge(
            out,
            "youcode_cache_pending_invalidations",
            "Tags whose invalidation has not reached the store yet (the whole namespace counts as one); \
             while any is pending the cache serves nothing from the store",
            i64::try_from(pending.tags).unwrap_or(i64::MAX),
        )?;
        gauge(
            out,
            "youcode_cache_oldest_pending_invalidation_seconds",
            "How long the oldest pending invalidation has been waiting (0 when none is)",
            pending.oldest.unwrap_or_default().as_secs_f64(),
        )?;
        counter(
            out,
            "youcode_cache_invalidations",
            "Tags invalidated (each bump of a tag's generation that reached the store)",
            self.cache.stats().invalidations,
        )
    }

    fn encode_tier_and_bus(&self, out: &mut DescriptorEncoder<'_>) -> Written {
        if let Some(usage) = self.cache.local_tier_usage() {
            counter(
                out,
                "youcode_cache_local_hits",
                "Hits served by the in-process tier without a store call (also counted as hits)",
                self.cache.stats().local_hits,
            )?;
            gauge(
                out,
                "youcode_cache_local_tier_entries",
                "Entries in the in-process tier",
                i64::try_from(usage.keys).unwrap_or(i64::MAX),
            )?;
            if let Some(bytes) = usage.bytes {
                gauge(
                    out,
                    "youcode_cache_local_tier_bytes",
                    "Bytes the in-process tier's entries take",
                    i64::try_from(bytes).unwrap_or(i64::MAX),
                )?;
            }
        }
        let Some(fleet) = self.cache.fleet_status() else {
            return Ok(());
        };
        gauge(
            out,
            "youcode_cache_bus_live",
            "Whether this instance holds its bus lease and serves its in-process view (1) or not (0)",
            i64::from(fleet.live),
        )?;
        gauge(
            out,
            "youcode_cache_bus_instances",
            "Instances sharing the namespace that this one heard within their lease, itself included",
            i64::try_from(fleet.members.len() + 1).unwrap_or(i64::MAX),
        )?;
        for (name, help, value) in [
            (
                "youcode_cache_bus_messages_published",
                "Messages this instance published on the bus",
                fleet.published,
            ),
            (
                "youcode_cache_bus_messages_heard",
                "Messages this instance heard on the bus",
                fleet.heard,
            ),
            (
                "youcode_cache_bus_publish_errors",
                "Bus messages that failed to publish",
                fleet.publish_errors,
            ),
            (
                "youcode_cache_bus_resyncs",
                "Times the in-process view was dropped whole because messages may have been missed",
                fleet.resyncs,
            ),
            (
                "youcode_cache_bus_ack_timeouts",
                "Invalidations that waited out an instance's lease instead of its acknowledgement",
                fleet.ack_timeouts,
            ),
        ] {
            counter(out, name, help, value)?;
        }
        let wait = fleet.invalidation_wait;
        let mut lag = out.encode_descriptor(
            "youcode_cache_bus_invalidation_wait_seconds",
            "What invalidations waited for the bus (publishing, then every live instance's \
             acknowledgement), by statistic: p50, p99, max",
            None,
            MetricType::Gauge,
        )?;
        for (stat, micros) in [
            ("p50", wait.p50_us),
            ("p99", wait.p99_us),
            ("max", wait.max_us),
        ] {
            let seconds = std::time::Duration::from_micros(micros).as_secs_f64();
            ConstGauge::new(seconds).encode(lag.encode_family(&[("stat", stat)])?)?;
        }
        Ok(())
    }

    fn encode_database(&self, out: &mut DescriptorEncoder<'_>) -> Written {
        counter(
            out,
            "youcode_db_statements",
            "SQL statements run for requests (not migrations, seeding or health checks)",
            self.db.queries(),
        )?;
        let connections = self.db.connections();
        let mut pool = out.encode_descriptor(
            "youcode_db_connections",
            "The pool's open connections, by state (in_use, idle)",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in [("in_use", connections.in_use), ("idle", connections.idle)] {
            ConstGauge::new(i64::from(count)).encode(pool.encode_family(&[("state", state)])?)?;
        }
        gauge(
            out,
            "youcode_db_connections_max",
            "How many connections the pool may open",
            i64::from(connections.max),
        )?;
        gauge(
            out,
            "youcode_db_connections_waiting",
            "Statements and transactions waiting for a connection now",
            i64::try_from(connections.waiting).unwrap_or(i64::MAX),
        )
    }
}

fn counter(out: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> Written {
    ConstCounter::new(value).encode(out.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge<N>(out: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: N) -> Written
where
    ConstGauge<N>: prometheus_client::encoding::EncodeMetric,
{
    ConstGauge::new(value).encode(out.encode_descriptor(name, help, None, MetricType::Gauge)?)
}
