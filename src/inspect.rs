//! What `quiver check --verbose` and `quiver init` learn from Parquet files: the schema, the
//! grain the timestamps are at, the time range, row counts, and lookup keys that match no
//! value in the data.

use crate::catalog::Catalog;
use crate::catalog::physical::{DataFile, PhysicalTable, time_unit_to_ms};
use crate::time::{self, Grain};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Rows read to infer a grain or count distinct values (the first row groups of a file).
pub const SAMPLE_ROWS: usize = 200_000;

/// The coarsest grain every sampled timestamp of `column` is aligned to (UTC): `month`,
/// `day`, `hour`, `minute` or `second`; `None` when the column holds no timestamps.
pub fn inferred_grain(f: &DataFile, column: &str) -> Option<Grain> {
    let arr = sample_column(f, column)?;
    let to_ms = time_unit_to_ms(arr.data_type())?;
    let v = arrow::compute::cast(&arr, &DataType::Int64).ok()?;
    let ms: Vec<i64> = v.as_primitive::<Int64Type>().iter().flatten().map(to_ms).collect();
    if ms.is_empty() {
        return None;
    }
    let aligned = |g: Grain| ms.iter().all(|t| time::is_aligned(g, chrono_tz::UTC, *t));
    [Grain::Month, Grain::Day, Grain::Hour, Grain::Minute, Grain::Second]
        .into_iter()
        .find(|g| aligned(*g))
        .or(Some(Grain::Second))
}

/// Up to [`SAMPLE_ROWS`] values of `column` from the start of `f`.
pub fn sample_column(f: &DataFile, column: &str) -> Option<arrow::array::ArrayRef> {
    let file = std::fs::File::open(&f.path).ok()?;
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::new_with_metadata(file, f.metadata.clone());
    let idx = builder.parquet_schema().columns().iter().position(|c| c.name() == column)?;
    let mask = parquet::arrow::ProjectionMask::leaves(builder.parquet_schema(), [idx]);
    let reader = builder.with_projection(mask).with_batch_size(8192).build().ok()?;
    let mut parts = Vec::new();
    let mut rows = 0;
    for b in reader {
        let b = b.ok()?;
        rows += b.num_rows();
        parts.push(b.column(0).clone());
        if rows >= SAMPLE_ROWS {
            break;
        }
    }
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    arrow::compute::concat(&refs).ok()
}

/// A description of every physical table: files, rows, schema, time column, inferred grain
/// and availability.
pub fn describe(catalog: &Catalog) -> String {
    let mut out = String::new();
    for t in catalog.tables.values() {
        let _ = writeln!(
            out,
            "table {} (grains: {})",
            t.name,
            t.grains.iter().map(|g| g.name()).collect::<Vec<_>>().join(", ")
        );
        for p in &t.physical {
            describe_physical(&mut out, p);
        }
    }
    out
}

fn describe_physical(out: &mut String, p: &PhysicalTable) {
    let kind = if p.kind == crate::catalog::physical::PhysicalKind::Raw { "raw" } else { "rollup" };
    let _ = writeln!(
        out,
        "  physical {} ({kind}, grain {}, {} file(s), {} rows, {} bytes) at {}",
        p.name,
        p.grain.name(),
        p.files.len(),
        p.total_rows(),
        p.files.iter().map(|f| f.size_bytes).sum::<u64>(),
        p.path_spec
    );
    let inferred = p.files.first().and_then(|f| inferred_grain(f, &p.time_column));
    let _ = writeln!(
        out,
        "    time column {}: timestamps aligned to {}",
        p.time_column,
        inferred.map(|g| g.name()).unwrap_or("nothing (no values)")
    );
    let avail: Vec<String> = p.availability.iter().map(|i| i.iso_utc()).collect();
    let _ = writeln!(out, "    availability: {}", if avail.is_empty() { "none".into() } else { avail.join(", ") });
    let _ = writeln!(out, "    schema:");
    for f in p.schema.fields() {
        let shown = match f.data_type() {
            DataType::Dictionary(_, v) => v.to_string(),
            t => t.to_string(),
        };
        let _ = writeln!(out, "      {}: {shown}{}", f.name(), if f.is_nullable() { "" } else { " (not null)" });
    }
}

/// For each dimension with a lookup: how many of its keys match no value in the data (a
/// warning, not an error: lookups often list more than the data holds).
pub fn lookup_warnings(catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for d in catalog.dimensions.values() {
        let Some(lookup) = &d.lookup else { continue };
        let mut values = BTreeSet::new();
        for t in catalog.tables_with_dimension(&d.name) {
            if let Some(p) = t.raw().filter(|p| p.dimensions.contains(&d.name)) {
                match crate::request::values::distinct_values(p, p.column_for(&d.name), vec![]) {
                    Ok(v) => values.extend(v),
                    Err(e) => out.push(format!("dimension '{}': cannot read its values in '{}': {e}", d.name, p.name)),
                }
            }
        }
        let unmatched: Vec<&str> =
            lookup.rows().iter().map(|r| r[0].as_str()).filter(|k| !values.contains(*k)).collect();
        if !unmatched.is_empty() {
            let examples: Vec<&str> = unmatched.iter().take(3).copied().collect();
            out.push(format!(
                "dimension '{}': {} of {} lookup keys match no value in the data (e.g. {})",
                d.name,
                unmatched.len(),
                lookup.len(),
                examples.join(", ")
            ));
        }
    }
    out
}
