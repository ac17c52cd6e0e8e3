//! The engine's input: a [`QueryPlan`], free of HTTP and URL types (DESIGN §8).

use crate::datafile::DataFile;
use crate::expr::Expr;
use crate::time::{Grain, Interval};
use chrono_tz::Tz;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How an aggregation folds its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// Rows (no input) or non-null input values.
    Count,
    LongSum,
    DoubleSum,
    Min,
    Max,
    /// Exact number of distinct non-null values.
    CountDistinct,
    /// HyperLogLog estimate of distinct non-null values.
    ApproxCountDistinct,
}

impl AggFunc {
    pub fn parse(s: &str) -> Option<AggFunc> {
        Some(match s {
            "count" => AggFunc::Count,
            "longSum" => AggFunc::LongSum,
            "doubleSum" => AggFunc::DoubleSum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "countDistinct" => AggFunc::CountDistinct,
            "approxCountDistinct" => AggFunc::ApproxCountDistinct,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::LongSum => "longSum",
            AggFunc::DoubleSum => "doubleSum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::CountDistinct => "countDistinct",
            AggFunc::ApproxCountDistinct => "approxCountDistinct",
        }
    }

    /// How a pre-aggregated (rollup) column of this aggregation re-aggregates, if it can.
    pub fn reaggregate(self) -> Option<AggFunc> {
        match self {
            AggFunc::Count | AggFunc::LongSum => Some(AggFunc::LongSum),
            AggFunc::DoubleSum => Some(AggFunc::DoubleSum),
            AggFunc::Min => Some(AggFunc::Min),
            AggFunc::Max => Some(AggFunc::Max),
            AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => None,
        }
    }
}

/// What an aggregation reads.
#[derive(Debug, Clone, PartialEq)]
pub enum AggInput {
    /// Nothing: counts rows.
    Rows,
    Column(String),
    /// Arithmetic over numeric columns, evaluated per row (null if any input is null).
    Expr(Expr),
}

impl AggInput {
    pub fn columns(&self) -> Vec<String> {
        match self {
            AggInput::Rows => vec![],
            AggInput::Column(c) => vec![c.clone()],
            AggInput::Expr(e) => e.refs(),
        }
    }
}

/// A row predicate on one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub column: String,
    pub op: PredOp,
}

/// Predicate operations. String-valued ops compare the value's text (integers in decimal,
/// booleans as `true`/`false`); a null value behaves as the empty string (Druid).
#[derive(Debug, Clone, PartialEq)]
pub enum PredOp {
    In(Vec<String>),
    NotIn(Vec<String>),
    StartsWith(Vec<String>),
    Contains(Vec<String>),
    IsNull,
    NotNull,
    /// Numeric comparison: value `op` constant; null never matches.
    Cmp(CmpOp, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    #[inline]
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
        }
    }
}

impl PredOp {
    /// Evaluates a string-valued predicate on one value's text (`None` = null).
    pub fn matches_text(&self, v: Option<&str>) -> bool {
        let s = v.unwrap_or("");
        match self {
            PredOp::In(vals) => vals.iter().any(|x| x == s),
            PredOp::NotIn(vals) => !vals.iter().any(|x| x == s),
            PredOp::StartsWith(vals) => vals.iter().any(|x| s.starts_with(x.as_str())),
            PredOp::Contains(vals) => vals.iter().any(|x| s.contains(x.as_str())),
            PredOp::IsNull => v.is_none(),
            PredOp::NotNull => v.is_some(),
            PredOp::Cmp(op, c) => match v.and_then(|t| t.parse::<f64>().ok()) {
                Some(x) => op.test(x, *c),
                None => false,
            },
        }
    }
}

/// One aggregation of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationPlan {
    /// Name of the metric it computes (used in errors and debug output).
    pub name: String,
    pub func: AggFunc,
    pub input: AggInput,
    /// Fixed filter: only matching rows are aggregated.
    pub filter: Option<Predicate>,
    /// Result type: integer (`true`) or floating point.
    pub integer: bool,
}

/// How one output metric column is computed from the aggregations.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputKind {
    /// The value of aggregation `i`.
    Agg(usize),
    /// Arithmetic over earlier output columns (by name) and constants; division by 0 gives 0.
    Post(Expr),
    /// Average over the buckets of `per` inside each output bucket of output column `of`
    /// evaluated at grain `per`.
    NestedAvg { of: Box<OutputMetric>, per: Grain },
}

/// An output metric column.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputMetric {
    pub name: String,
    pub kind: OutputKind,
    pub integer: bool,
    /// Hidden outputs feed post-aggregations but are not returned.
    pub hidden: bool,
}

impl OutputMetric {
    /// One visible output per aggregation, named like it (plans without post-aggregations).
    pub fn for_aggregations(aggs: &[AggregationPlan]) -> Vec<OutputMetric> {
        aggs.iter()
            .enumerate()
            .map(|(i, a)| OutputMetric {
                name: a.name.clone(),
                kind: OutputKind::Agg(i),
                integer: a.integer,
                hidden: false,
            })
            .collect()
    }
}

/// Having: clauses ANDed, values within a clause ORed (spec §4.6).
#[derive(Debug, Clone, PartialEq)]
pub struct HavingClause {
    pub metric: String,
    pub op: HavingOp,
    pub negate: bool,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HavingOp {
    Eq,
    Gt,
    Lt,
    /// Inclusive on both ends.
    Between,
}

impl HavingClause {
    pub fn test(&self, x: f64) -> bool {
        let hit = match self.op {
            HavingOp::Eq => self.values.contains(&x),
            HavingOp::Gt => self.values.iter().any(|v| x > *v),
            HavingOp::Lt => self.values.iter().any(|v| x < *v),
            HavingOp::Between => self.values.len() == 2 && x >= self.values[0] && x <= self.values[1],
        };
        hit != self.negate
    }
}

/// Sort key: a metric or grouped dimension column, or the time bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub column: SortColumn,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortColumn {
    Time,
    /// Index into the plan's group-by list.
    Dimension(usize),
    /// Name of an output metric.
    Metric(String),
}

/// Post-aggregation shaping, applied in this order: having, sort, topN per bucket, count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shape {
    pub having: Vec<HavingClause>,
    pub sort: Vec<SortKey>,
    pub top_n: Option<usize>,
    pub count: Option<usize>,
}

/// A grouping column: the output column `name` reads Parquet column `column`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    pub name: String,
    pub column: String,
}

/// What the engine executes.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub files: Vec<Arc<DataFile>>,
    pub time_column: String,
    /// Request intervals, sorted, disjoint, aligned to `grain` in `tz`.
    pub intervals: Vec<Interval>,
    pub grain: Grain,
    pub tz: Tz,
    /// Columns grouped on, in output order.
    pub group_by: Vec<GroupBy>,
    /// Row filters, ANDed.
    pub filters: Vec<Predicate>,
    pub aggregations: Vec<AggregationPlan>,
    pub outputs: Vec<OutputMetric>,
    pub shape: Shape,
    pub limits: Limits,
}

/// Resource limits of one query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most groups (buckets × dimension combinations); past it the query fails.
    pub max_groups: usize,
    /// Most time buckets the intervals may be cut into.
    pub max_buckets: usize,
    /// Most bytes of aggregation state (groups, accumulators, distinct sets) per worker.
    pub max_bytes: usize,
    /// Scan workers; 0 = one per core.
    pub threads: usize,
    /// Smallest row slice a row group is split into to share it between workers.
    pub min_split_rows: usize,
    /// Rows to read per scan worker: smaller scans use fewer workers (one below this).
    pub min_rows_per_worker: usize,
    /// Decompressed bytes of column chunks per scan worker: a scan of few rows that must
    /// still decompress large chunks gets spare workers to read them ahead (`engine::pages`).
    pub min_bytes_per_worker: usize,
    /// Read qualifying row groups with the engine's own page decoder (`engine::pages`)
    /// instead of the Arrow reader.
    pub page_decoder: bool,
    /// Chunks this query reads whole may enter the chunk cache (`engine::pages::chunks`).
    /// Off for metadata scans (dimension values, available days), which have their own
    /// cache and would fill this one with columns analytic queries may never read.
    pub chunk_cache: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups: 5_000_000,
            max_buckets: 10_000_000,
            max_bytes: 2 << 30,
            threads: 0,
            min_split_rows: 1 << 16,
            min_rows_per_worker: 1 << 17,
            min_bytes_per_worker: 4 << 20,
            page_decoder: true,
            chunk_cache: true,
        }
    }
}

/// Cooperative cancellation, checked between row groups and batches.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed)
    }

    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
