//! Physical tables: the Parquet files behind a logical table (see [`crate::datafile`]), their
//! schema, column mapping and availability.

pub use crate::datafile::{
    DataFile, expand_path, is_time_type, open_file, open_file_as, parse_time_unit, reader_options, time_unit_to_ms,
};
use crate::time::{self, Grain, Interval};
use arrow::datatypes::SchemaRef;
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Raw rows, or rows pre-aggregated by `quiver rollup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysicalKind {
    Raw,
    Rollup,
}

/// Which engine aggregates a physical table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// This process's own engine.
    Local,
    /// The Ballista cluster of `[distributed]`.
    Distributed,
}

/// A physical table ("slice"): files at one grain with a column mapping.
#[derive(Debug, Clone)]
pub struct PhysicalTable {
    pub name: String,
    /// The path as written in the catalog (for messages and `/slices`).
    pub path_spec: String,
    pub files: Vec<Arc<DataFile>>,
    pub schema: SchemaRef,
    pub time_column: String,
    pub grain: Grain,
    pub timezone: Tz,
    pub kind: PhysicalKind,
    /// Dimensions present, in the logical table's order.
    pub dimensions: Vec<String>,
    /// Rollups: metrics carried pre-aggregated.
    pub metrics: Vec<String>,
    /// Logical name → column, for every dimension and rollup metric (identity when not renamed).
    pub columns: BTreeMap<String, String>,
    /// Intervals covered by data, aligned to `grain` in `timezone`, merged.
    pub availability: Vec<Interval>,
    /// Most queries scanning this table at once (`max_concurrent_queries`); `None` = no limit.
    pub max_concurrent: Option<usize>,
    /// Where its queries aggregate (`engine`).
    pub engine: Engine,
}

impl PhysicalTable {
    pub fn column_for<'a>(&'a self, logical: &'a str) -> &'a str {
        self.columns.get(logical).map(|s| s.as_str()).unwrap_or(logical)
    }

    pub fn has_column(&self, column: &str) -> bool {
        self.schema.field_with_name(column).is_ok()
    }

    /// Whether every file is still the one whose footer was read ([`DataFile::unchanged_on_disk`]).
    pub fn files_unchanged(&self) -> bool {
        self.files.iter().all(|f| f.unchanged_on_disk())
    }

    /// The size and modification time of each file as the disk has them now (`None` when a
    /// file is gone), to tell a file still being written from one that stopped changing.
    pub fn disk_state(&self) -> Vec<Option<(u64, Option<std::time::SystemTime>)>> {
        self.files.iter().map(|f| std::fs::metadata(&f.path).ok().map(|m| (m.len(), m.modified().ok()))).collect()
    }

    pub fn total_rows(&self) -> i64 {
        self.files.iter().map(|f| f.num_rows()).sum()
    }
}

/// Availability: each file's time range widened to whole buckets of `grain`, merged.
pub fn availability(files: &[Arc<DataFile>], grain: Grain, tz: Tz) -> Vec<Interval> {
    let step = if grain == Grain::All { Grain::Day } else { grain };
    let mut ivs = Vec::new();
    for f in files {
        let ranges: Vec<(i64, i64)> = f.row_group_times.iter().flatten().copied().collect();
        if ranges.is_empty() {
            continue;
        }
        let min = ranges.iter().map(|r| r.0).min().unwrap_or(0);
        let max = ranges.iter().map(|r| r.1).max().unwrap_or(0);
        let start = time::floor(step, tz, min);
        let end = time::add(step, tz, time::floor(step, tz, max), 1);
        ivs.push(Interval::new(start, end));
    }
    time::merge(ivs)
}
