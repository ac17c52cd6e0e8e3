//! `quiver rollup`: pre-aggregate a raw physical table to a coarser grain over a subset of
//! dimensions, write the result as Parquet and add its catalog entry, so the planner can
//! answer common queries from far fewer rows (spec §10).

use crate::catalog::physical::PhysicalKind;
use crate::catalog::{Catalog, MetricKind};
use crate::engine::plan::{AggregationPlan, CancelToken, GroupBy, Limits, OutputMetric, QueryPlan, Shape};
use crate::engine::{self};
use crate::time::{Grain, Interval};
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to build.
#[derive(Debug, Clone)]
pub struct RollupSpec {
    pub table: String,
    pub name: String,
    pub grain: Grain,
    pub dimensions: Vec<String>,
    /// Metrics to carry; empty = every metric of the table that re-aggregates.
    pub metrics: Vec<String>,
    /// Output path as written in the catalog (relative to the data root).
    pub output: String,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct RollupSummary {
    pub rows_in: u64,
    pub rows_out: usize,
    pub path: PathBuf,
    pub metrics: Vec<String>,
    pub catalog_entry: String,
}

/// Builds the rollup file; returns its summary (the caller writes the catalog entry).
pub fn build(cat: &Catalog, data_root: &Path, spec: &RollupSpec) -> Result<RollupSummary, String> {
    let table = cat.tables.get(&spec.table).ok_or_else(|| format!("table '{}' is not defined", spec.table))?;
    let raw = table
        .physical
        .iter()
        .filter(|p| p.kind == PhysicalKind::Raw && p.grain.can_satisfy(spec.grain))
        .max_by_key(|p| p.total_rows())
        .ok_or_else(|| {
            format!("table '{}' has no raw physical table fine enough for grain {}", spec.table, spec.grain)
        })?;
    for d in &spec.dimensions {
        if !raw.dimensions.contains(d) {
            return Err(format!("dimension '{d}' is not a dimension of '{}'", raw.name));
        }
    }
    // By default every aggregation the table's metrics are built from (post-aggregations and
    // nested averages are computed from these at query time).
    let candidates: Vec<String> = if spec.metrics.is_empty() {
        let mut bases = Vec::new();
        for m in &table.metrics {
            crate::catalog::base_aggregations(cat, m, &mut bases);
        }
        bases.iter().map(|m| m.name.clone()).collect()
    } else {
        spec.metrics.clone()
    };
    let mut aggregations = Vec::new();
    for m in &candidates {
        let metric = cat.metrics.get(m).ok_or_else(|| format!("metric '{m}' is not defined"))?;
        match &metric.kind {
            MetricKind::Aggregation { func, input, filter } if func.reaggregate().is_some() => {
                aggregations.push(AggregationPlan {
                    name: m.clone(),
                    func: *func,
                    input: input.clone(),
                    filter: filter.clone(),
                    integer: metric.integer,
                });
            }
            _ if spec.metrics.is_empty() => {}
            _ => {
                return Err(format!(
                    "metric '{m}' cannot be stored in a rollup (only count, sums, min and max re-aggregate)"
                ));
            }
        }
    }
    let outputs = OutputMetric::for_aggregations(&aggregations);
    let plan = QueryPlan {
        files: raw.files.clone(),
        time_column: raw.time_column.clone(),
        intervals: raw.availability.iter().map(|i| Interval::new(i.start, i.end)).collect(),
        grain: spec.grain,
        tz: raw.timezone,
        group_by: spec
            .dimensions
            .iter()
            .map(|d| GroupBy { name: cat.dimensions[d].column.clone(), column: raw.column_for(d).to_string() })
            .collect(),
        filters: vec![],
        aggregations,
        outputs,
        shape: Shape::default(),
        limits: Limits {
            max_groups: 100_000_000,
            max_buckets: 100_000_000,
            max_bytes: usize::MAX,
            ..Limits::default()
        },
    };
    let result = engine::execute(&plan, &CancelToken::default()).map_err(|e| e.to_string())?;
    let batch = rename_time(&result.batch)?;
    let path = data_root.join(&spec.output);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    write_parquet(&path, &batch, spec.dimensions.len())?;
    let metrics: Vec<String> = plan.aggregations.iter().map(|a| a.name.clone()).collect();
    let catalog_entry = format!(
        "\n[[table.{}.physical]]\nname = \"{}\"\npath = \"{}\"\ntime_column = \"time\"\ngrain = \"{}\"\ntimezone = \"{}\"\nkind = \"rollup\"\ndimensions = [{}]\nmetrics = [{}]\n",
        spec.table,
        spec.name,
        spec.output,
        spec.grain,
        raw.timezone.name(),
        quoted(&spec.dimensions),
        quoted(&metrics),
    );
    Ok(RollupSummary { rows_in: result.stats.rows_scanned, rows_out: batch.num_rows(), path, metrics, catalog_entry })
}

fn quoted(v: &[String]) -> String {
    v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

/// The engine names the bucket column `dateTime`; the rollup's time column is `time`.
fn rename_time(b: &RecordBatch) -> Result<RecordBatch, String> {
    let fields: Vec<Field> = b
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| if i == 0 { f.as_ref().clone().with_name("time") } else { f.as_ref().clone() })
        .collect();
    let cols: Vec<ArrayRef> = b.columns().to_vec();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| e.to_string())
}

/// Writes the rollup for reading speed, not size (a rollup is small): uncompressed (no
/// decompression on the query path; a day rollup of TPC-H SF 1 is ~8 MB), dictionaries for
/// the time and dimension columns (the engine groups on their indices), plain metric columns
/// (nearly unique sums would only overflow a dictionary).
fn write_parquet(path: &Path, batch: &RecordBatch, ndims: usize) -> Result<(), String> {
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_max_row_group_row_count(Some(65_536));
    for f in batch.schema().fields().iter().skip(1 + ndims) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
    }
    let props = props.build();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|e| e.to_string())?;
    w.write(batch).map_err(|e| e.to_string())?;
    w.close().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))
}

/// Appends the physical-table entry to the catalog file that defines the table, unless a
/// physical table of that name is already there.
pub fn add_catalog_entry(tables_dir: &Path, spec: &RollupSpec, entry: &str) -> Result<PathBuf, String> {
    let header = format!("[table.{}]", spec.table);
    let mut files: Vec<PathBuf> = std::fs::read_dir(tables_dir)
        .map_err(|e| format!("{}: {e}", tables_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        if !text.lines().any(|l| l.trim() == header) {
            continue;
        }
        if text.contains(&format!("name = \"{}\"", spec.name)) {
            return Ok(f);
        }
        let mut out = text;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(entry);
        std::fs::write(&f, out).map_err(|e| format!("{}: {e}", f.display()))?;
        return Ok(f);
    }
    Err(format!("no file in {} defines {header}", tables_dir.display()))
}
