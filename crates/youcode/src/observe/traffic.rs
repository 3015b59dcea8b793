//! Requests per route template, as the dashboard shows them: how each was answered from the
//! cache (`X-Cache`) and how long it took.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use parking_lot::Mutex;
use serde::Serialize;

/// The route of a request that matched none: one row for all of them, never their raw paths.
pub const UNMATCHED: &str = "(unmatched)";

/// The figures of every route served so far. A route is a method and a route template
/// (`/api/courses/{id}`), so rows are as few as the routes the router has.
#[derive(Default)]
pub struct Traffic {
    /// A `parking_lot` mutex held only to add to a row: short, never across an await.
    /// By route template, then method; a route's name is allocated once, when first seen.
    routes: Mutex<BTreeMap<Box<str>, BTreeMap<&'static str, Figures>>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Figures {
    requests: u64,
    hits: u64,
    misses: u64,
    stale: u64,
    bypasses: u64,
    server_errors: u64,
    latency_total: Duration,
    latency_max: Duration,
}

/// One row of [`Traffic::rows`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTraffic {
    pub method: &'static str,
    pub route: String,
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub bypasses: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

impl Traffic {
    /// Counts one answered request. `route` is the route template (`None` when no route
    /// matched), `cache` the `X-Cache` it was sent with.
    pub fn record(
        &self,
        method: &Method,
        route: Option<&str>,
        status: StatusCode,
        cache: Option<&str>,
        elapsed: Duration,
    ) {
        let method = method_name(method);
        let route = route.unwrap_or(UNMATCHED);
        let mut routes = self.routes.lock();
        if !routes.contains_key(route) {
            routes.insert(route.into(), BTreeMap::new());
        }
        let by_method = routes.get_mut(route).expect("inserted above");
        let figures = by_method.entry(method).or_default();
        figures.requests += 1;
        match cache {
            Some("HIT") => figures.hits += 1,
            Some("MISS") => figures.misses += 1,
            Some("STALE") => figures.stale += 1,
            Some("BYPASS") => figures.bypasses += 1,
            _ => {}
        }
        if status.is_server_error() {
            figures.server_errors += 1;
        }
        figures.latency_total += elapsed;
        figures.latency_max = figures.latency_max.max(elapsed);
    }

    /// Every route served so far, by route template then method.
    pub fn rows(&self) -> Vec<RouteTraffic> {
        let routes = self.routes.lock();
        routes
            .iter()
            .flat_map(|(route, by_method)| {
                by_method.iter().map(|(&method, f)| RouteTraffic {
                    method,
                    route: route.to_string(),
                    requests: f.requests,
                    hits: f.hits,
                    misses: f.misses,
                    stale: f.stale,
                    bypasses: f.bypasses,
                    server_errors: f.server_errors,
                    mean_ms: millis(f.latency_total) / f.requests.max(1) as f64,
                    max_ms: millis(f.latency_max),
                })
            })
            .collect()
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The method's name, for the methods the API knows; any other is `OTHER`, so that a client
/// cannot add rows by inventing methods.
fn method_name(method: &Method) -> &'static str {
    const KNOWN: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn requests_are_counted_per_route_template_by_cache_outcome() {
        let traffic = Traffic::default();
        let course = Some("/api/courses/{id}");
        traffic.record(&Method::GET, course, StatusCode::OK, Some("MISS"), ms(30));
        traffic.record(&Method::GET, course, StatusCode::OK, Some("HIT"), ms(2));
        traffic.record(&Method::GET, course, StatusCode::OK, Some("HIT"), ms(4));
        traffic.record(&Method::GET, course, StatusCode::OK, Some("STALE"), ms(1));
        traffic.record(
            &Method::GET,
            course,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("BYPASS"),
            ms(3),
        );
        traffic.record(&Method::POST, course, StatusCode::OK, None, ms(10));

        let rows = traffic.rows();

        assert_eq!(rows.len(), 2);
        let get = &rows[0];
        assert_eq!(
            (get.method, get.route.as_str()),
            ("GET", "/api/courses/{id}")
        );
        assert_eq!(
            (get.requests, get.hits, get.misses, get.stale, get.bypasses),
            (5, 2, 1, 1, 1)
        );
        assert_eq!(get.server_errors, 1);
        assert!((get.mean_ms - 8.0).abs() < 1e-9, "{}", get.mean_ms);
        assert!((get.max_ms - 30.0).abs() < 1e-9, "{}", get.max_ms);
        let post = &rows[1];
        assert_eq!((post.method, post.requests, post.hits), ("POST", 1, 0));
    }

    #[test]
    fn unmatched_paths_and_unknown_methods_share_one_row() {
        let traffic = Traffic::default();
        let odd = Method::from_bytes(b"BREW").unwrap();
        traffic.record(&odd, None, StatusCode::NOT_FOUND, None, ms(1));
        traffic.record(&Method::GET, None, StatusCode::NOT_FOUND, None, ms(1));
        traffic.record(&Method::GET, None, StatusCode::NOT_FOUND, None, ms(1));

        let rows = traffic.rows();

        let summary: Vec<_> = rows
            .iter()
            .map(|row| (row.method, row.route.as_str(), row.requests))
            .collect();
        assert_eq!(summary, [("GET", UNMATCHED, 2), ("OTHER", UNMATCHED, 1)]);
    }
}
