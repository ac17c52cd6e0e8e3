//! The engine: executes a [`plan::QueryPlan`] over Parquet and returns the aggregated,
//! shaped Arrow record batch plus scan statistics (DESIGN §5). It knows nothing of HTTP or
//! URLs (DESIGN §8).
//!
//! Pipeline: prune row groups ([`scan`]), read only the needed columns, bucket time by
//! boundary search ([`buckets`]), group on dictionary codes ([`group`]), fold columnar
//! accumulators ([`accum`]) in parallel workers, merge once, evaluate post-aggregations and
//! nested averages ([`finalize`]), then having/sort/topN/count ([`shape`]).

pub mod accum;
pub mod buckets;
pub mod columns;
pub mod finalize;
pub mod fold;
pub mod group;
pub mod hll;
pub mod pages;
pub mod plan;
pub mod scan;
pub mod shape;

use crate::time::Grain;
use arrow::array::RecordBatch;
use plan::{AggInput, CancelToken, OutputKind, QueryPlan};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What went wrong while executing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("Data file '{file}' cannot be read: {message}")]
    File { file: String, message: String },
    #[error("column '{0}' is missing")]
    MissingColumn(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("Arrow error: {0}")]
    Arrow(String),
    #[error("the query would build more than {0} groups")]
    TooManyGroups(usize),
    #[error("the query would hold more than {0} bytes of aggregation state")]
    TooManyBytes(usize),
    #[error("the request spans more than {0} time buckets")]
    TooManyBuckets(usize),
    #[error("the query was canceled")]
    Canceled,
    #[error("a scan worker stopped unexpectedly: {0}")]
    WorkerPanicked(String),
    /// The distributed engine cannot be reached, lost its executors or did not answer in time.
    #[error("{0}")]
    Unavailable(String),
}

impl EngineError {
    pub fn arrow(e: impl std::fmt::Display) -> EngineError {
        EngineError::Arrow(e.to_string())
    }

    /// A failure reading `f`, naming it relative to the data root (never the absolute path).
    pub fn file(f: &crate::datafile::DataFile, e: impl std::fmt::Display) -> EngineError {
        EngineError::File { file: f.name.clone(), message: e.to_string() }
    }
}

/// What a query cost.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanStats {
    pub files: usize,
    pub row_groups_total: usize,
    pub row_groups_scanned: usize,
    pub row_groups_pruned: usize,
    pub rows_scanned: u64,
    pub bytes_scanned: u64,
    pub groups: usize,
    /// Row groups (or slices of them) read by the page decoder.
    pub direct_units: u64,
    /// Column chunks spare workers read ahead for the page decoder.
    pub chunks_read_ahead: u64,
    pub elapsed_ms: f64,
    /// Set when the aggregation ran on the distributed engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteRun>,
}

/// Where a distributed query ran.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RemoteRun {
    /// The scheduler, `df://host:port`.
    pub scheduler: String,
    /// The Ballista job ids (one per logical plan).
    pub jobs: Vec<String>,
}

/// The shaped result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// `dateTime`, the group-by columns (Utf8) in plan order, then visible metrics.
    pub batch: RecordBatch,
    pub stats: ScanStats,
}

/// The grain rows are bucketed at: the request grain, or the finest inner grain of the
/// nested averages (day when they differ, which satisfies week and month).
pub fn base_grain(plan: &QueryPlan) -> Grain {
    let mut pers: Vec<Grain> = Vec::new();
    for o in &plan.outputs {
        if let OutputKind::NestedAvg { per, .. } = &o.kind
            && !pers.contains(per)
        {
            pers.push(*per);
        }
    }
    match pers.as_slice() {
        [] => plan.grain,
        [one] => *one,
        _ => Grain::Day,
    }
}

/// Whether each aggregation reads an integer column (for min/max output type).
fn integer_inputs(plan: &QueryPlan) -> Vec<bool> {
    let schema = plan.files.first().map(|f| f.metadata.schema().clone());
    plan.aggregations
        .iter()
        .map(|a| match (&a.input, &schema) {
            (AggInput::Column(c), Some(s)) => {
                s.field_with_name(c).is_ok_and(|f| columns::is_integer_type(f.data_type()))
            }
            (AggInput::Rows, _) => true,
            _ => false,
        })
        .collect()
}

/// Executes a plan.
pub fn execute(plan: &QueryPlan, cancel: &CancelToken) -> Result<QueryResult, EngineError> {
    let started = Instant::now();
    let total_rgs: usize = plan.files.iter().map(|f| f.num_row_groups()).sum();
    let (units, pruned) = scan::plan_units(plan);
    let clip = scan::data_range(plan, &units);
    let base = base_grain(plan);
    let buckets = buckets::Buckets::new(&plan.intervals, plan.grain, base, plan.tz, clip, plan.limits.max_buckets)?;
    let cores = if plan.limits.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        plan.limits.threads
    };
    // One worker per `min_rows_per_worker` rows to read: waking another core can cost
    // milliseconds (measured up to 5 ms on a 2-vCPU VM), more than a small scan takes alone.
    // A few rows may still need large chunks decompressed: spare workers read those ahead
    // (only the row count decides how row groups are split between workers).
    let to_read = scan::rows_to_read(plan, &units);
    let threads = cores.min(to_read.div_ceil(plan.limits.min_rows_per_worker.max(1))).max(1);
    // Only with fewer units than cores can a worker be spare: otherwise skip the chunk sizes.
    let with_helpers = if units.len() < cores {
        let to_inflate = scan::bytes_to_decompress(plan, &units);
        threads.max(cores.min(to_inflate.div_ceil(plan.limits.min_bytes_per_worker.max(1))))
    } else {
        threads
    };
    let counters = scan::Counters::default();
    let units =
        if buckets.is_empty() { vec![] } else { scan::split_units(plan, units, threads, plan.limits.min_split_rows) };
    let parts = scan::run(plan, &units, &buckets, integer_inputs(plan), with_helpers, cancel, &counters)?;
    let merged = group::merge(parts, plan.limits.max_groups)?;
    let groups = merged.as_ref().map(|m| m.groups.len()).unwrap_or(0);
    let batch = finalize::finalize(plan, merged, &buckets)?;
    let batch = shape::apply(batch, plan.group_by.len(), &plan.shape)?;
    let stats = ScanStats {
        files: plan.files.len(),
        row_groups_total: total_rgs,
        row_groups_scanned: counters.row_groups.load(Ordering::Relaxed) as usize,
        row_groups_pruned: pruned,
        rows_scanned: counters.rows.load(Ordering::Relaxed),
        bytes_scanned: counters.bytes.load(Ordering::Relaxed),
        groups,
        direct_units: counters.direct_units.load(Ordering::Relaxed),
        chunks_read_ahead: counters.chunks_read_ahead.load(Ordering::Relaxed),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        remote: None,
    };
    Ok(QueryResult { batch, stats })
}
