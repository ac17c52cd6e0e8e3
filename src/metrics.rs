//! Prometheus text metrics (`GET /metrics`): requests by endpoint and status, latency
//! histograms, in-flight queries, 429s, jobs by status, rows/bytes scanned, row groups
//! pruned and query errors by reason.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

/// Upper bounds of the latency histogram, in seconds.
const BOUNDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    errors: BTreeMap<String, u64>,
}

/// Request-level metrics; engine and job figures are read from the state when rendering.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// The endpoint label of a path: `data`, `tables`, `jobs`, …, or `other`.
pub fn endpoint(path: &str, api_root: &str) -> &'static str {
    let rest = path.strip_prefix(api_root.trim_end_matches('/')).unwrap_or(path);
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "data" => "data",
        "tables" => "tables",
        "dimensions" => "dimensions",
        "metrics" => "metrics",
        "slices" => "slices",
        "jobs" => "jobs",
        "status" => "status",
        "openapi.json" => "openapi",
        _ => "other",
    }
}

impl Metrics {
    pub fn record(&self, endpoint: &str, status: u16, seconds: f64, error: Option<&str>) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests.entry((endpoint.to_string(), status)).or_default() += 1;
        let h = m.latency.entry(endpoint.to_string()).or_default();
        for (i, b) in BOUNDS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
        if let Some(reason) = error {
            *m.errors.entry(reason.to_string()).or_default() += 1;
        }
    }

    /// The exposition text.
    pub fn render(
        &self,
        admission: &crate::limits::Admission,
        c: &Counters,
        jobs: &crate::jobs::Jobs,
        cache: CacheStats,
    ) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP quiver_requests_total HTTP requests by endpoint and status.\n# TYPE quiver_requests_total counter\n");
        for ((e, s), n) in &m.requests {
            let _ = writeln!(out, "quiver_requests_total{{endpoint=\"{e}\",status=\"{s}\"}} {n}");
        }
        out.push_str("# HELP quiver_request_duration_seconds Request latency by endpoint.\n# TYPE quiver_request_duration_seconds histogram\n");
        for (e, h) in &m.latency {
            for (i, b) in BOUNDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "quiver_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "quiver_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "quiver_request_duration_seconds_sum{{endpoint=\"{e}\"}} {}", h.sum);
            let _ = writeln!(out, "quiver_request_duration_seconds_count{{endpoint=\"{e}\"}} {}", h.count);
        }
        let limited: u64 = m.requests.iter().filter(|((_, s), _)| *s == 429).map(|(_, n)| n).sum();
        let _ = writeln!(
            out,
            "# HELP quiver_rate_limited_total Requests rejected with 429.\n# TYPE quiver_rate_limited_total counter\nquiver_rate_limited_total {limited}"
        );
        out.push_str(
            "# HELP quiver_query_errors_total Errors by reason code.\n# TYPE quiver_query_errors_total counter\n",
        );
        for (r, n) in &m.errors {
            let _ = writeln!(out, "quiver_query_errors_total{{reason=\"{r}\"}} {n}");
        }
        drop(m);
        let (global, by_user) = admission.snapshot();
        let _ = writeln!(
            out,
            "# HELP quiver_in_flight_queries Data queries running now, by user class.\n# TYPE quiver_in_flight_queries gauge"
        );
        let _ = writeln!(out, "quiver_in_flight_queries{{class=\"all\"}} {global}");
        let anon: usize = by_user.iter().filter(|(u, _)| u == "anonymous").map(|(_, n)| *n).sum();
        let _ = writeln!(out, "quiver_in_flight_queries{{class=\"anonymous\"}} {anon}");
        let _ = writeln!(out, "quiver_in_flight_queries{{class=\"authenticated\"}} {}", global.saturating_sub(anon));
        let max_user = by_user.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "# HELP quiver_in_flight_queries_max_per_user The busiest user's running queries.\n# TYPE quiver_in_flight_queries_max_per_user gauge\nquiver_in_flight_queries_max_per_user {max_user}"
        );
        for (name, help, v) in [
            ("quiver_queries_total", "Queries executed.", c.queries.load(Relaxed)),
            (
                "quiver_queries_canceled_total",
                "Queries canceled (client gone or shutdown).",
                c.queries_canceled.load(Relaxed),
            ),
            ("quiver_rows_scanned_total", "Rows read from Parquet.", c.rows_scanned.load(Relaxed)),
            ("quiver_bytes_scanned_total", "Compressed bytes of column chunks read.", c.bytes_scanned.load(Relaxed)),
            ("quiver_row_groups_scanned_total", "Row groups read.", c.row_groups_scanned.load(Relaxed)),
            ("quiver_row_groups_pruned_total", "Row groups skipped by statistics.", c.row_groups_pruned.load(Relaxed)),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let chunks = crate::engine::pages::chunks::stats();
        for (name, kind, help, v) in [
            ("quiver_cache_hits_total", "counter", "Data answers served from the result cache.", cache.hits),
            ("quiver_cache_misses_total", "counter", "Data answers not in the result cache.", cache.misses),
            (
                "quiver_cache_evictions_total",
                "counter",
                "Answers evicted to stay within cache.max_bytes.",
                cache.evictions,
            ),
            ("quiver_cache_bytes", "gauge", "Bytes of answers held by the result cache.", cache.bytes),
            ("quiver_cache_entries", "gauge", "Answers held by the result cache.", cache.entries),
            ("quiver_chunk_cache_hits_total", "counter", "Column chunks served decompressed from memory.", chunks.hits),
            ("quiver_chunk_cache_misses_total", "counter", "Column chunks read from their files.", chunks.misses),
            ("quiver_chunk_cache_bytes", "gauge", "Bytes of decompressed column chunks held.", chunks.bytes),
            ("quiver_chunk_cache_entries", "gauge", "Column chunks held decompressed.", chunks.entries),
            (
                "quiver_chunk_cache_compacted_total",
                "counter",
                "Chunks of plain numbers re-encoded with a dictionary as they entered.",
                chunks.compacted,
            ),
            (
                "quiver_pages_cut_total",
                "counter",
                "zstd pages decompressed only as far as the rows a query read.",
                chunks.cut,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        out.push_str("# HELP quiver_jobs Jobs in the store by status.\n# TYPE quiver_jobs gauge\n");
        let mut by_status: BTreeMap<&str, usize> =
            ["pending", "success", "failure", "canceled"].iter().map(|s| (*s, 0)).collect();
        for j in jobs.list().unwrap_or_default() {
            *by_status.entry(j.status.name()).or_default() += 1;
        }
        for (s, n) in by_status {
            let _ = writeln!(out, "quiver_jobs{{status=\"{s}\"}} {n}");
        }
        out
    }
}

/// Operational counters (exported by `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    pub queries: std::sync::atomic::AtomicU64,
    pub queries_canceled: std::sync::atomic::AtomicU64,
    pub rows_scanned: std::sync::atomic::AtomicU64,
    pub bytes_scanned: std::sync::atomic::AtomicU64,
    pub row_groups_scanned: std::sync::atomic::AtomicU64,
    pub row_groups_pruned: std::sync::atomic::AtomicU64,
}

/// The result cache's counts, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub bytes: u64,
    pub entries: u64,
}
