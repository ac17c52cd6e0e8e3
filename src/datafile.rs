//! Parquet files as quiver reads them: the footer parsed once (with the time column's
//! per-row-group and per-page ranges), the read types (strings as dictionaries, an integer
//! time column as timestamps of its declared unit), and how a path spec (file, directory,
//! glob) becomes files. The catalog describes tables with these; the engine reads them.

use crate::time;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Schema, TimeUnit};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Ranges of a row group's rows by time: (rows, min ms, max ms) of each page or run, in row
/// order.
pub type TimeRanges = Vec<(usize, i64, i64)>;

/// One Parquet file with its footer, parsed once.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub path: PathBuf,
    /// The path relative to the catalog's data root: what callers and errors are shown,
    /// never the absolute path.
    pub name: String,
    pub metadata: ArrowReaderMetadata,
    /// Min and max of the time column per row group, in UTC ms (None: no statistics).
    pub row_group_times: Vec<Option<(i64, i64)>>,
    /// Per row group, the time column's pages as (rows, min ms, max ms), from the page
    /// index when the file has one.
    pub page_times: Vec<Option<TimeRanges>>,
    /// Per row group without a page index, the time ranges of runs of rows, read from the
    /// time column the first time a query needs them (see [`DataFile::time_selectors`]).
    runs: Vec<std::sync::OnceLock<Option<TimeRanges>>>,
    /// The time column these statistics describe.
    pub time_column: String,
    pub size_bytes: u64,
    /// Modification time when the footer was read.
    pub modified: Option<std::time::SystemTime>,
    /// The unit an integer time column was read in (`time_unit`), if any.
    pub time_unit: Option<TimeUnit>,
}

impl DataFile {
    pub fn num_rows(&self) -> i64 {
        self.metadata.metadata().file_metadata().num_rows()
    }

    pub fn num_row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// The time ranges a query selects the rows of row group `rg` by, as (rows, min ms,
    /// max ms): its pages when the file has a page index, else runs of rows whose ranges are
    /// read once from the time column, on first use (loading a footer reads no data).
    pub fn time_selectors(&self, rg: usize) -> Option<&[(usize, i64, i64)]> {
        if let Some(Some(pages)) = self.page_times.get(rg) {
            return Some(pages);
        }
        self.runs.get(rg)?.get_or_init(|| run_ranges(self, rg)).as_deref()
    }

    /// Whether the file on disk is still the one whose footer this holds (same size and
    /// modification time). A file replaced in place must never be read through its old
    /// footer: its offsets would point into the new bytes.
    pub fn unchanged_on_disk(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() == self.size_bytes && m.modified().ok() == self.modified)
    }
}

/// Expands a path spec (file, directory, or glob) into sorted Parquet file paths.
pub fn expand_path(root: &Path, spec: &str) -> Result<Vec<PathBuf>, String> {
    let base = if Path::new(spec).is_absolute() { PathBuf::from(spec) } else { root.join(spec) };
    let s = base.to_string_lossy().to_string();
    let mut out = Vec::new();
    if s.contains(['*', '?', '[']) {
        let paths = glob::glob(&s).map_err(|e| format!("invalid glob '{spec}': {e}"))?;
        for p in paths.flatten() {
            if p.is_file() {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(format!("glob '{spec}' matches no file (looked for {s})"));
        }
    } else if base.is_dir() {
        collect_dir(&base, &mut out).map_err(|e| format!("cannot list directory {s}: {e}"))?;
        if out.is_empty() {
            return Err(format!("directory '{spec}' holds no *.parquet file ({s})"));
        }
    } else if base.is_file() {
        out.push(base);
    } else {
        return Err(format!("file '{spec}' does not exist (looked for {s})"));
    }
    out.sort();
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            collect_dir(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

/// The reading options every scan uses: string columns come back dictionary-encoded so the
/// engine can group and filter on codes.
pub fn reader_options() -> ArrowReaderOptions {
    ArrowReaderOptions::new().with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional)
}

/// Opens a file's footer and reads the time column's per-row-group range.
pub fn open_file(path: &Path, time_column: &str) -> Result<DataFile, String> {
    open_file_as(path, time_column, None)
}

/// [`open_file`] for a time column of integers counting `time_unit`s since 1970-01-01 UTC:
/// the column is read as a UTC timestamp of that unit.
pub fn open_file_as(path: &Path, time_column: &str, time_unit: Option<TimeUnit>) -> Result<DataFile, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let stat = file.metadata().ok();
    let size_bytes = stat.as_ref().map(|m| m.len()).unwrap_or(0);
    let modified = stat.and_then(|m| m.modified().ok());
    let metadata = ArrowReaderMetadata::load(&file, reader_options())
        .map_err(|e| format!("{} is not a readable Parquet file: {e}", path.display()))?;
    let metadata = without_inconsistent_page_index(metadata, path)?;
    let (metadata, time_unit) = with_read_types(metadata, &file, time_column, time_unit)?;
    let row_group_times = time_ranges(&metadata, time_column).unwrap_or_default();
    let page_times =
        (0..metadata.metadata().num_row_groups()).map(|rg| page_ranges(&metadata, time_column, rg)).collect();
    let runs = (0..metadata.metadata().num_row_groups()).map(|_| std::sync::OnceLock::new()).collect();
    Ok(DataFile {
        path: path.to_path_buf(),
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        metadata,
        row_group_times,
        page_times,
        runs,
        time_column: time_column.to_string(),
        size_bytes,
        modified,
        time_unit,
    })
}

/// Drops the page index when its offset index contradicts the footer (pages out of order,
/// outside their column chunk, rows not increasing from 0): readers trust those locations to
/// skip pages, and a damaged index would make them read garbage or fail. The file stays
/// readable, without page pruning.
fn without_inconsistent_page_index(md: ArrowReaderMetadata, path: &Path) -> Result<ArrowReaderMetadata, String> {
    let pm = md.metadata();
    if offset_index_consistent(pm) {
        return Ok(md);
    }
    tracing::warn!(file = %path.display(), "the page index is inconsistent; reading the file without it");
    let stripped = parquet::file::metadata::ParquetMetaDataBuilder::new_from_metadata(pm.as_ref().clone())
        .set_offset_index(None)
        .set_column_index(None)
        .build();
    ArrowReaderMetadata::try_new(Arc::new(stripped), reader_options())
        .map_err(|e| format!("{} is not a readable Parquet file: {e}", path.display()))
}

/// Whether every page location lies inside its column chunk, after the previous page, and
/// starts a row after the previous page's first row (the first at row 0).
fn offset_index_consistent(pm: &parquet::file::metadata::ParquetMetaData) -> bool {
    let Some(oi) = pm.offset_index() else { return true };
    oi.iter().enumerate().all(|(rg, cols)| {
        let Some(rgm) = pm.row_groups().get(rg) else { return cols.is_empty() };
        let rows = rgm.num_rows();
        cols.iter().enumerate().all(|(ci, o)| {
            let Some(cc) = rgm.columns().get(ci) else { return false };
            let (start, len) = cc.byte_range();
            let (start, end) = (start as i64, (start as i64).saturating_add(len as i64));
            let locs = o.page_locations();
            if locs.is_empty() {
                return rows == 0;
            }
            let (mut prev_row, mut prev_end) = (-1i64, start);
            locs.iter().enumerate().all(|(i, l)| {
                let page_end = l.offset.saturating_add(i64::from(l.compressed_page_size));
                let ok = (i > 0 || l.first_row_index == 0)
                    && l.first_row_index > prev_row
                    && l.first_row_index < rows.max(1)
                    && l.compressed_page_size > 0
                    && l.offset >= prev_end
                    && page_end <= end;
                prev_row = l.first_row_index;
                prev_end = page_end;
                ok
            })
        })
    })
}

/// Re-declares every string column as `Dictionary(Int32, Utf8)` so the reader keeps the
/// Parquet dictionary instead of materializing strings per row, and an integer time column
/// with a declared `time_unit` as a UTC timestamp of that unit.
fn with_read_types(
    md: ArrowReaderMetadata,
    file: &File,
    time_column: &str,
    time_unit: Option<TimeUnit>,
) -> Result<(ArrowReaderMetadata, Option<TimeUnit>), String> {
    let schema = md.schema();
    let mut changed = false;
    let mut retyped = None;
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match (f.data_type(), time_unit) {
            (DataType::Int64, Some(unit)) if f.name() == time_column => {
                changed = true;
                retyped = Some(unit);
                Arc::new(f.as_ref().clone().with_data_type(DataType::Timestamp(unit, Some("UTC".into()))))
            }
            (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, _) => {
                changed = true;
                Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))),
                )
            }
            _ => f.clone(),
        })
        .collect();
    if !changed {
        return Ok((md, None));
    }
    let new_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = reader_options().with_schema(new_schema);
    match ArrowReaderMetadata::try_new(md.metadata().clone(), options) {
        Ok(md) => Ok((md, retyped)),
        Err(_) => ArrowReaderMetadata::load(file, reader_options())
            .map(|md| (md, None))
            .map_err(|e| format!("cannot read schema: {e}")),
    }
}

/// Converts a time-column value in its Arrow type to UTC ms.
pub fn time_unit_to_ms(dt: &DataType) -> Option<fn(i64) -> i64> {
    match dt {
        DataType::Timestamp(TimeUnit::Second, _) => Some(|v| v.saturating_mul(1000)),
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date64 => Some(|v| v),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(|v| v.div_euclid(1000)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(|v| v.div_euclid(1_000_000)),
        DataType::Date32 => Some(|v| v.saturating_mul(time::MS_PER_DAY)),
        // Integers count nothing in particular: they need a declared `time_unit`, which reads
        // them as timestamps (see `open_file_as`).
        _ => None,
    }
}

/// The unit named by `time_unit` (`s`, `ms`, `us`, `ns`).
pub fn parse_time_unit(s: &str) -> Option<TimeUnit> {
    match s {
        "s" => Some(TimeUnit::Second),
        "ms" => Some(TimeUnit::Millisecond),
        "us" => Some(TimeUnit::Microsecond),
        "ns" => Some(TimeUnit::Nanosecond),
        _ => None,
    }
}

/// Whether a column type can serve as the time column.
pub fn is_time_type(dt: &DataType) -> bool {
    time_unit_to_ms(dt).is_some()
}

fn time_ranges(md: &ArrowReaderMetadata, column: &str) -> Option<Vec<Option<(i64, i64)>>> {
    let schema = md.schema();
    let field = schema.field_with_name(column).ok()?;
    let conv = StatisticsConverter::try_new(column, schema, md.metadata().file_metadata().schema_descr()).ok()?;
    let rgs = md.metadata().row_groups();
    let mins = conv.row_group_mins(rgs.iter()).ok()?;
    let maxs = conv.row_group_maxes(rgs.iter()).ok()?;
    let to_ms = time_unit_to_ms(field.data_type())?;
    let mins = arrow::compute::cast(&mins, &DataType::Int64).ok()?;
    let maxs = arrow::compute::cast(&maxs, &DataType::Int64).ok()?;
    let (mins, maxs) =
        (mins.as_primitive::<arrow::datatypes::Int64Type>(), maxs.as_primitive::<arrow::datatypes::Int64Type>());
    Some(
        (0..rgs.len())
            .map(|i| {
                if mins.is_null(i) || maxs.is_null(i) {
                    None
                } else {
                    Some((to_ms(mins.value(i)), to_ms(maxs.value(i))))
                }
            })
            .collect(),
    )
}

fn page_ranges(md: &ArrowReaderMetadata, column: &str, rg: usize) -> Option<TimeRanges> {
    let schema = md.schema();
    let field = schema.field_with_name(column).ok()?;
    let pm = md.metadata();
    let (ci, oi) = (pm.column_index()?, pm.offset_index()?);
    let conv = StatisticsConverter::try_new(column, schema, pm.file_metadata().schema_descr()).ok()?;
    let rgs = [rg];
    let mins = conv.data_page_mins(ci, oi, rgs.iter()).ok()?;
    let maxs = conv.data_page_maxes(ci, oi, rgs.iter()).ok()?;
    let counts = conv.data_page_row_counts(oi, pm.row_groups(), rgs.iter()).ok()??;
    let to_ms = time_unit_to_ms(field.data_type())?;
    let mins = arrow::compute::cast(&mins, &DataType::Int64).ok()?;
    let maxs = arrow::compute::cast(&maxs, &DataType::Int64).ok()?;
    let (mins, maxs) =
        (mins.as_primitive::<arrow::datatypes::Int64Type>(), maxs.as_primitive::<arrow::datatypes::Int64Type>());
    let mut out = Vec::with_capacity(counts.len());
    for i in 0..counts.len() {
        if mins.is_null(i) || maxs.is_null(i) || counts.is_null(i) {
            return None;
        }
        out.push((counts.value(i) as usize, to_ms(mins.value(i)), to_ms(maxs.value(i))));
    }
    (out.len() > 1).then_some(out)
}

/// Most rows per run of [`run_ranges`] (a row group is cut into at least 16 runs).
const RUN_ROWS: usize = 8192;

/// For a row group without a page index (files DuckDB, pyarrow and others write by default):
/// the time range of each run of up to [`RUN_ROWS`] rows, from one read of the time column.
/// A query then reads only the runs its intervals meet, and the page decoder skips whole
/// pages outside them, as it does with a page index.
fn run_ranges(f: &DataFile, rg: usize) -> Option<TimeRanges> {
    let (md, column) = (&f.metadata, f.time_column.as_str());
    let pm = md.metadata();
    let rows = pm.row_group(rg).num_rows().max(0) as usize;
    if rows < 8 {
        return None;
    }
    let run = (rows / 16).clamp(4, RUN_ROWS);
    let to_ms = time_unit_to_ms(md.schema().field_with_name(column).ok()?.data_type())?;
    let leaf = pm.file_metadata().schema_descr().columns().iter().position(|c| c.path().parts() == [column])?;
    let mask = parquet::arrow::ProjectionMask::leaves(pm.file_metadata().schema_descr(), [leaf]);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::new_with_metadata(
        File::open(&f.path).ok()?,
        md.clone(),
    )
    .with_projection(mask)
    .with_row_groups(vec![rg])
    .with_batch_size(run)
    .build()
    .ok()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.ok()?;
        let v = arrow::compute::cast(batch.column(0), &DataType::Int64).ok()?;
        let v = v.as_primitive::<arrow::datatypes::Int64Type>();
        // A run of only nulls holds no time: an empty range no interval meets.
        let (min, max) = match (arrow::compute::min(v), arrow::compute::max(v)) {
            (Some(a), Some(b)) => (to_ms(a), to_ms(b)),
            _ => (i64::MAX, i64::MIN),
        };
        out.push((batch.num_rows(), min, max));
    }
    (out.len() > 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_reports_missing_file() {
        let e = expand_path(Path::new("/nonexistent-root"), "x.parquet").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = expand_path(Path::new("/nonexistent-root"), "*.parquet").unwrap_err();
        assert!(e.contains("matches no file"), "{e}");
    }

    #[test]
    fn files_without_a_page_index_get_time_runs() {
        use arrow::array::{RecordBatch, TimestampMillisecondArray};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let times: TimestampMillisecondArray = (0..1000i64).map(|i| Some(i * 60_000)).collect();
        let batch =
            RecordBatch::try_from_iter([("ts", Arc::new(times.with_timezone("UTC")) as arrow::array::ArrayRef)])
                .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_offset_index_disabled(true)
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
            .build();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let f = open_file(&path, "ts").unwrap();
        let runs = f.time_selectors(0).expect("runs for a row group without a page index");
        assert_eq!(runs.len(), 17, "1000 rows in runs of 62");
        assert_eq!(runs.iter().map(|r| r.0).sum::<usize>(), 1000);
        assert_eq!((runs[0].1, runs[0].2), (0, 61 * 60_000));
        assert!(runs.windows(2).all(|w| w[0].2 < w[1].1), "sorted times give disjoint runs");
    }
}
