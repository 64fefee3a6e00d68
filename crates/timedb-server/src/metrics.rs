//! Process metrics for `GET /metrics`, in the Prometheus text format.
//!
//! Counters are plain atomics (and one small map per labelled family), updated on the
//! request path without allocation in the common case; rendering walks them once. They
//! are process-wide, like the process they describe: every server in one process (tests
//! start several) adds to the same numbers. No tenant, user or key appears in a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

#[derive(Default)]
struct Histogram {
    /// Cumulative is computed when rendering; these are per-bucket counts (+ overflow).
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// What is counted for one route.
#[derive(Default)]
struct RouteStats {
    /// (method, status) → count.
    requests: BTreeMap<(String, u16), u64>,
    latency: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    /// By matched route template (so ids never become labels). One lock per request, and
    /// no allocation once a route, method and status have been seen.
    routes: Mutex<BTreeMap<String, RouteStats>>,
    /// Authentication outcome code → count (`OK` for admitted requests).
    auth: Mutex<BTreeMap<&'static str, u64>>,
    values_ingested: AtomicU64,
    values_read: AtomicU64,
    key_cache_hits: AtomicU64,
    key_cache_misses: AtomicU64,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut routes = lock(&self.routes);
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteStats::default());
        }
        let stats = routes.get_mut(route).expect("inserted above");
        match stats.requests.iter_mut().find(|((m, s), _)| m == method && *s == status) {
            Some((_, n)) => *n += 1,
            None => {
                stats.requests.insert((method.to_owned(), status), 1);
            }
        }
        stats.latency.observe(took.as_secs_f64());
    }

    pub fn auth_outcome(&self, code: &'static str) {
        *lock(&self.auth).entry(code).or_default() += 1;
    }

    pub fn values_ingested(&self, n: usize) {
        self.values_ingested.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn values_read(&self, n: usize) {
        self.values_read.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn key_cache(&self, hit: bool) {
        if hit { &self.key_cache_hits } else { &self.key_cache_misses }.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP timedb_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE timedb_http_requests_total counter\n");
        let routes = lock(&self.routes);
        for (route, stats) in routes.iter() {
            for ((method, status), n) in &stats.requests {
                let _ = writeln!(
                    out,
                    "timedb_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
        }
        out.push_str("# HELP timedb_http_request_duration_seconds Time to the response head, by route.\n");
        out.push_str("# TYPE timedb_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let (route, h) = (escape(route), &stats.latency);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i];
                let _ = writeln!(
                    out,
                    "timedb_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "timedb_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "timedb_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "timedb_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        drop(routes);
        out.push_str("# HELP timedb_auth_outcomes_total Authentication outcomes by code (OK = admitted).\n");
        out.push_str("# TYPE timedb_auth_outcomes_total counter\n");
        for (code, n) in lock(&self.auth).iter() {
            let _ = writeln!(out, "timedb_auth_outcomes_total{{code=\"{code}\"}} {n}");
        }
        let counters = [
            ("timedb_values_ingested_total", "Values written by uploads.", &self.values_ingested),
            ("timedb_values_read_total", "Values sent by reads.", &self.values_read),
            ("timedb_key_cache_hits_total", "Key verifications answered from the cache.", &self.key_cache_hits),
            ("timedb_key_cache_misses_total", "Key verifications that looked the key up.", &self.key_cache_misses),
        ];
        for (name, help, value) in counters {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        let hits = self.key_cache_hits.load(Ordering::Relaxed) as f64;
        let total = hits + self.key_cache_misses.load(Ordering::Relaxed) as f64;
        let ratio = if total > 0.0 { hits / total } else { 0.0 };
        let _ = writeln!(
            out,
            "# HELP timedb_key_cache_hit_ratio Share of key verifications answered from the cache.\n\
             # TYPE timedb_key_cache_hit_ratio gauge\ntimedb_key_cache_hit_ratio {ratio}"
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/values", "GET", 200, Duration::from_micros(300));
        m.request("/values", "GET", 200, Duration::from_millis(30));
        m.request("/values", "GET", 401, Duration::from_millis(3));
        m.auth_outcome("INVALID_KEY");
        m.values_ingested(5);
        m.key_cache(true);
        m.key_cache(false);
        let text = m.render();
        assert!(text.contains("timedb_http_requests_total{route=\"/values\",method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("timedb_http_request_duration_seconds_bucket{route=\"/values\",le=\"0.0005\"} 1"));
        assert!(text.contains("timedb_http_request_duration_seconds_bucket{route=\"/values\",le=\"0.005\"} 2"));
        assert!(text.contains("timedb_http_request_duration_seconds_bucket{route=\"/values\",le=\"+Inf\"} 3"));
        assert!(text.contains("timedb_auth_outcomes_total{code=\"INVALID_KEY\"} 1"));
        assert!(text.contains("timedb_values_ingested_total 5"));
        assert!(text.contains("timedb_key_cache_hit_ratio 0.5"));
    }
}
