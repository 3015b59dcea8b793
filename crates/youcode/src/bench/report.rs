//! What a bench run measured, and how it is printed.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies and cache outcomes of one route, gathered by one client.
pub struct RouteRecord {
    latency_us: Histogram<u64>,
    pub requests: u64,
    /// Responses that carried `X-Cache`.
    cached: u64,
    hits: u64,
}

impl RouteRecord {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds"),
            requests: 0,
            cached: 0,
            hits: 0,
        }
    }

    fn add(&mut self, other: &RouteRecord) {
        self.requests += other.requests;
        self.cached += other.cached;
        self.hits += other.hits;
        self.latency_us
            .add(&other.latency_us)
            .expect("same histogram bounds");
    }
}

/// The values of `X-Cache`, in the order the report shows them.
const OUTCOMES: [&str; 4] = ["HIT", "STALE", "MISS", "BYPASS"];

/// Everything one client measured.
pub struct Recorder {
    routes: BTreeMap<&'static str, RouteRecord>,
    /// Cached reads by their `X-Cache`: what a hit, a miss or a stale answer costs.
    outcomes: BTreeMap<&'static str, RouteRecord>,
    /// Requests each instance answered, by instance: shows that every one took its share.
    by_instance: Vec<u64>,
    /// Answers that were not a success, by status: a 503 of an unreachable database is not a
    /// 500.
    failed_statuses: BTreeMap<u16, u64>,
    pub stale_reads: u64,
    pub errors: u64,
    pub writes: u64,
}

impl Recorder {
    /// An empty record of a run over `instances` instances.
    pub fn new(instances: usize) -> Self {
        Self {
            routes: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            by_instance: vec![0; instances],
            failed_statuses: BTreeMap::new(),
            stale_reads: 0,
            errors: 0,
            writes: 0,
        }
    }

    pub fn request(&mut self, route: &'static str, took: Duration, x_cache: Option<&str>) {
        let record = self.routes.entry(route).or_insert_with(RouteRecord::new);
        record.requests += 1;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        record.latency_us.saturating_record(micros);
        if let Some(outcome) = x_cache {
            record.cached += 1;
            record.hits += u64::from(outcome == "HIT");
            let outcome = OUTCOMES
                .into_iter()
                .find(|known| *known == outcome)
                .unwrap_or("other");
            let by_outcome = self
                .outcomes
                .entry(outcome)
                .or_insert_with(RouteRecord::new);
            by_outcome.requests += 1;
            by_outcome.latency_us.saturating_record(micros);
        }
    }

    /// Counts a request `instance` answered with `status`.
    pub fn served_by(&mut self, instance: usize, status: u16) {
        self.by_instance[instance] += 1;
        if status >= 400 {
            *self.failed_statuses.entry(status).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        for (route, record) in other.routes {
            self.routes
                .entry(route)
                .or_insert_with(RouteRecord::new)
                .add(&record);
        }
        for (outcome, record) in other.outcomes {
            self.outcomes
                .entry(outcome)
                .or_insert_with(RouteRecord::new)
                .add(&record);
        }
        for (mine, theirs) in self.by_instance.iter_mut().zip(other.by_instance) {
            *mine += theirs;
        }
        for (status, count) in other.failed_statuses {
            *self.failed_statuses.entry(status).or_default() += count;
        }
        self.stale_reads += other.stale_reads;
        self.errors += other.errors;
        self.writes += other.writes;
    }

    /// The figures of a run of `elapsed`, with what the servers counted meanwhile.
    pub fn report(&self, cache: &str, elapsed: Duration, servers: &ServerFigures) -> RunReport {
        let mut all = RouteRecord::new();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let routes = self
            .routes
            .iter()
            .map(|(route, record)| {
                all.add(record);
                ((*route).to_owned(), RouteReport::of(record, secs))
            })
            .collect();
        let by_outcome = self
            .outcomes
            .iter()
            .map(|(outcome, record)| ((*outcome).to_owned(), RouteReport::of(record, secs)))
            .collect();
        let overall = RouteReport::of(&all, secs);
        RunReport {
            cache: cache.to_owned(),
            duration_s: secs,
            requests: all.requests,
            rps: overall.rps,
            p50_us: overall.p50_us,
            p95_us: overall.p95_us,
            p99_us: overall.p99_us,
            hit_ratio: overall.hit_ratio,
            db_queries_per_request: servers
                .db_queries
                .map(|q| q as f64 / all.requests.max(1) as f64),
            redis_commands_per_request: servers
                .redis_commands
                .map(|c| c as f64 / all.requests.max(1) as f64),
            invalidation_wait_p50_us: servers.invalidation_wait.map(|w| w.p50_us),
            invalidation_wait_p99_us: servers.invalidation_wait.map(|w| w.p99_us),
            resyncs: servers.resyncs,
            ack_timeouts: servers.ack_timeouts,
            stale_reads: self.stale_reads,
            errors: self.errors,
            writes: self.writes,
            requests_by_instance: self.by_instance.clone(),
            failed_statuses: self.failed_statuses.clone(),
            routes,
            by_outcome,
        }
    }
}

/// One route's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    pub requests: u64,
    pub rps: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    /// Hits over responses that carried `X-Cache`; `None` for routes that are not cached.
    pub hit_ratio: Option<f64>,
}

impl RouteReport {
    fn of(record: &RouteRecord, secs: f64) -> Self {
        Self {
            requests: record.requests,
            rps: record.requests as f64 / secs,
            p50_us: record.latency_us.value_at_quantile(0.50),
            p95_us: record.latency_us.value_at_quantile(0.95),
            p99_us: record.latency_us.value_at_quantile(0.99),
            hit_ratio: (record.cached > 0).then(|| record.hits as f64 / record.cached as f64),
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub cache: String,
    pub duration_s: f64,
    pub requests: u64,
    pub rps: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub hit_ratio: Option<f64>,
    /// Statements the server ran per request, when it reports them.
    pub db_queries_per_request: Option<f64>,
    /// Commands the Redis server processed per request (bus traffic included), when the
    /// servers use Redis and bench was given its URL.
    pub redis_commands_per_request: Option<f64>,
    /// What a write waited for the other instances to apply its invalidation (the slowest
    /// instance's figures, since it started), when the instances share a bus.
    pub invalidation_wait_p50_us: Option<u64>,
    pub invalidation_wait_p99_us: Option<u64>,
    /// Times an instance forgot its whole in-process cache (messages may have been missed),
    /// and writes that waited out an instance's lease: over all instances, since they started.
    pub resyncs: Option<u64>,
    pub ack_timeouts: Option<u64>,
    pub stale_reads: u64,
    pub errors: u64,
    pub writes: u64,
    /// Requests each instance answered, in the order of the instances.
    pub requests_by_instance: Vec<u64>,
    /// Answers that were not a success (each also counts among `errors`), by status.
    pub failed_statuses: BTreeMap<u16, u64>,
    pub routes: BTreeMap<String, RouteReport>,
    /// Cached reads by their `X-Cache` (`HIT`, `STALE`, `MISS`, `BYPASS`).
    pub by_outcome: BTreeMap<String, RouteReport>,
}

/// What the servers counted during a measured run.
#[derive(Debug, Clone, Default)]
pub struct ServerFigures {
    /// Statements every instance ran.
    pub db_queries: Option<u64>,
    /// Commands the Redis server processed.
    pub redis_commands: Option<u64>,
    /// The slowest instance's invalidation waits.
    pub invalidation_wait: Option<cachette::WaitSummary>,
    /// Times an instance forgot its whole in-process cache, over all instances, since start.
    pub resyncs: Option<u64>,
    /// Writes that waited out an instance's lease, over all instances, since start.
    pub ack_timeouts: Option<u64>,
}

/// Cached run over uncached run.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// Cached throughput over uncached throughput.
    pub throughput: f64,
    /// Uncached p99 over cached p99 (how many times faster the tail got).
    pub p99: f64,
    /// 1 − cached statements per request over uncached ones.
    pub db_query_reduction: Option<f64>,
    /// Cached throughput over the ceiling's.
    pub of_ceiling: Option<f64>,
}

/// Everything `bench` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Instances each run drove, clients spread over them.
    pub instances: usize,
    pub runs: Vec<RunReport>,
    /// Throughput of GET /api/me with the same clients: what a request that does no work costs.
    pub ceiling_rps: Option<f64>,
    pub ratios: Option<Ratios>,
}

impl BenchReport {
    pub fn new(instances: usize, runs: Vec<RunReport>, ceiling_rps: Option<f64>) -> Self {
        let ratios = match runs.as_slice() {
            [off, on, ..] => Some(Ratios {
                throughput: on.rps / off.rps.max(1e-9),
                p99: off.p99_us as f64 / on.p99_us.max(1) as f64,
                db_query_reduction: off
                    .db_queries_per_request
                    .zip(on.db_queries_per_request)
                    .map(|(off, on)| 1.0 - on / off.max(1e-9)),
                of_ceiling: ceiling_rps.map(|c| on.rps / c.max(1e-9)),
            }),
            _ => None,
        };
        Self {
            instances,
            runs,
            ceiling_rps,
            ratios,
        }
    }

    /// Tables for people.
    pub fn print_table(&self) {
        self.print_instances();
        self.print_runs();
        if self.instances > 1 {
            self.print_requests_by_instance();
        }
        self.print_server_figures();
        self.print_comparison();
        if let Some(run) = self.runs.last() {
            run.print_routes();
        }
    }

    /// One line per run: throughput, latency, hits, statements, and what the checks found.
    fn print_runs(&self) {
        println!(
            "{:<8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>6} {:>6} {:>7}",
            "cache",
            "requests",
            "req/s",
            "p50 µs",
            "p99 µs",
            "hit",
            "dbq/req",
            "writes",
            "stale",
            "errors"
        );
        for run in &self.runs {
            println!(
                "{:<8} {:>9} {:>9.0} {:>9} {:>9} {:>7} {:>8} {:>6} {:>6} {:>7}",
                run.cache,
                run.requests,
                run.rps,
                run.p50_us,
                run.p99_us,
                run.hit_ratio.map_or("-".into(), |h| format!("{:.3}", h)),
                run.db_queries_per_request
                    .map_or("-".into(), |q| format!("{q:.2}")),
                run.writes,
                run.stale_reads,
                run.errors
            );
        }
    }

    /// How the requests of each run spread over the instances.
    fn print_requests_by_instance(&self) {
        for run in &self.runs {
            let counts: Vec<String> = run
                .requests_by_instance
                .iter()
                .map(u64::to_string)
                .collect();
            println!(
                "{:<8} requests by instance: {}",
                run.cache,
                counts.join(" / ")
            );
        }
    }

    /// What the servers counted during each run, where they count it.
    fn print_server_figures(&self) {
        for run in &self.runs {
            if !run.failed_statuses.is_empty() {
                let statuses: Vec<String> = run
                    .failed_statuses
                    .iter()
                    .map(|(status, count)| format!("{status} ×{count}"))
                    .collect();
                println!("{:<8} failed answers: {}", run.cache, statuses.join(", "));
            }
            if let Some(commands) = run.redis_commands_per_request {
                println!("{:<8} Redis commands per request: {commands:.3}", run.cache);
            }
            if let (Some(p50), Some(p99)) =
                (run.invalidation_wait_p50_us, run.invalidation_wait_p99_us)
            {
                println!(
                    "{:<8} invalidation acknowledged by every instance: p50 {p50} µs, p99 {p99} µs, resyncs {}, lease waits {}",
                    run.cache,
                    run.resyncs.unwrap_or(0),
                    run.ack_timeouts.unwrap_or(0)
                );
            }
        }
    }

    /// The ceiling, and the cached run against the uncached one, with `--compare`.
    fn print_comparison(&self) {
        if let Some(ceiling) = self.ceiling_rps {
            println!("ceiling  GET /api/me with the same clients: {ceiling:.0} req/s");
        }
        if let Some(r) = &self.ratios {
            println!(
                "ratios   throughput {:.1}x, p99 {:.1}x faster, db queries {}, {} of the ceiling",
                r.throughput,
                r.p99,
                r.db_query_reduction
                    .map_or("n/a".into(), |d| format!("-{:.1} %", d * 100.0)),
                r.of_ceiling
                    .map_or("n/a".into(), |c| format!("{:.0} %", c * 100.0)),
            );
        }
    }

    fn print_instances(&self) {
        let clients = if self.instances > 1 {
            ", clients spread over them, each write checked on another instance"
        } else {
            ""
        };
        println!("instances {}{clients}\n", self.instances);
    }
}

impl RunReport {
    /// A table of its routes' figures.
    fn print_routes(&self) {
        let outcomes: Vec<String> = OUTCOMES
            .iter()
            .filter_map(|outcome| {
                let r = self.by_outcome.get(*outcome)?;
                Some(format!(
                    "{outcome} {} p50 {} µs p99 {} µs",
                    r.requests, r.p50_us, r.p99_us
                ))
            })
            .collect();
        if !outcomes.is_empty() {
            println!("\ncached reads ({}): {}", self.cache, outcomes.join(", "));
        }
        println!("\nper route ({}):", self.cache);
        println!(
            "{:<52} {:>9} {:>9} {:>9} {:>7}",
            "route", "requests", "p50 µs", "p99 µs", "hit"
        );
        for (route, r) in &self.routes {
            println!(
                "{:<52} {:>9} {:>9} {:>9} {:>7}",
                route,
                r.requests,
                r.p50_us,
                r.p99_us,
                r.hit_ratio.map_or("-".into(), |h| format!("{h:.3}"))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_answers_are_counted_by_status_across_clients() {
        let mut first = Recorder::new(2);
        first.served_by(0, 200);
        first.served_by(0, 503);
        let mut second = Recorder::new(2);
        second.served_by(1, 503);
        second.served_by(1, 500);
        first.merge(second);

        let run = first.report("memory", Duration::from_secs(1), &ServerFigures::default());

        assert_eq!(run.requests_by_instance, [2, 2]);
        assert_eq!(run.failed_statuses, BTreeMap::from([(500, 1), (503, 2)]));
    }
}
