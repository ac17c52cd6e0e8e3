//! Scanning: choose the row groups that can match (time range and filter statistics), read
//! only the needed columns, and aggregate row groups in parallel with one partial per worker.

use super::EngineError;
use super::buckets::Buckets;
use super::group::{BatchContext, Partial};
use super::pages;
use super::plan::{CancelToken, PredOp, QueryPlan};
use crate::datafile::DataFile;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Rows per record batch read from Parquet.
pub const BATCH_ROWS: usize = 16 * 1024;

/// One row group to read.
#[derive(Debug, Clone, Copy)]
pub struct Unit {
    pub file: usize,
    pub row_group: usize,
    /// A slice of the row group's rows (start, count), when the row group is split so
    /// workers share it; `None` = all rows.
    pub rows: Option<(usize, usize)>,
}

/// Splits row groups into row slices so the workers finish together, for files with an
/// offset index (a slice then reads only its own pages). A slice still decodes every page
/// it touches, and small columns often have one page per row group, so splitting is kept to
/// what balancing needs: with `u` row groups on `t` workers, the first `u - u % t` stay whole
/// (each worker gets the same number) and only the last `u % t` are cut into `t` slices each.
/// Many row groups (≥ 4 per worker) are left whole: scheduling them evens out on its own.
pub fn split_units(plan: &QueryPlan, units: Vec<Unit>, threads: usize, min_rows: usize) -> Vec<Unit> {
    let rest = units.len() % threads.max(1);
    if threads <= 1 || rest == 0 || units.len() >= 4 * threads {
        return units;
    }
    let whole = units.len() - rest;
    let mut out = Vec::with_capacity(whole + rest * threads);
    out.extend_from_slice(&units[..whole]);
    for &u in &units[whole..] {
        let f = &plan.files[u.file];
        let rows = f.metadata.metadata().row_group(u.row_group).num_rows().max(0) as usize;
        let parts = threads.min(rows / min_rows.max(1)).max(1);
        if parts == 1 || f.metadata.metadata().offset_index().is_none() {
            out.push(u);
            continue;
        }
        let step = rows.div_ceil(parts);
        let mut start = 0;
        while start < rows {
            let len = step.min(rows - start);
            out.push(Unit { rows: Some((start, len)), ..u });
            start += len;
        }
    }
    out
}

/// Rows the units will read: their row groups' rows, or only the pages the page index
/// keeps.
pub fn rows_to_read(plan: &QueryPlan, units: &[Unit]) -> usize {
    units
        .iter()
        .map(|u| {
            let f = &plan.files[u.file];
            match page_selection(f, u.row_group, &plan.intervals) {
                Some(sel) => sel.iter().filter(|s| !s.skip).map(|s| s.row_count).sum(),
                None => f.metadata.metadata().row_group(u.row_group).num_rows().max(0) as usize,
            }
        })
        .sum()
}

/// Decompressed bytes of the column chunks the units read.
pub fn bytes_to_decompress(plan: &QueryPlan, units: &[Unit]) -> usize {
    let cols = needed_columns(plan);
    units
        .iter()
        .map(|u| {
            let md = plan.files[u.file].metadata.metadata();
            let leaves = md.file_metadata().schema_descr().columns();
            let chunks = md.row_group(u.row_group).columns();
            let wanted = |i: &usize| leaves[*i].path().parts().first().is_some_and(|p| cols.contains(p));
            (0..chunks.len()).filter(wanted).map(|i| chunks[i].uncompressed_size().max(0) as usize).sum::<usize>()
        })
        .sum()
}

/// The row groups that survive pruning, and how many were pruned.
pub fn plan_units(plan: &QueryPlan) -> (Vec<Unit>, usize) {
    let mut units = Vec::new();
    let mut pruned = 0;
    for (fi, f) in plan.files.iter().enumerate() {
        let stat_ok = filter_stats(f, plan);
        for rg in 0..f.num_row_groups() {
            let time_ok = match f.row_group_times.get(rg).copied().flatten() {
                Some((min, max)) => plan.intervals.iter().any(|iv| min < iv.end && max >= iv.start),
                None => true,
            };
            if time_ok && stat_ok.get(rg).copied().unwrap_or(true) && f.metadata.metadata().row_group(rg).num_rows() > 0
            {
                units.push(Unit { file: fi, row_group: rg, rows: None });
            } else {
                pruned += 1;
            }
        }
    }
    (units, pruned)
}

/// Per row group: false when an `in` filter's values all lie outside the column's min/max.
fn filter_stats(f: &DataFile, plan: &QueryPlan) -> Vec<bool> {
    let n = f.num_row_groups();
    let mut ok = vec![true; n];
    let md = &f.metadata;
    for p in &plan.filters {
        let PredOp::In(values) = &p.op else { continue };
        // A null row behaves as "", so an `in` that lists "" can always match.
        if values.iter().any(|v| v.is_empty()) {
            continue;
        }
        let Ok(conv) =
            StatisticsConverter::try_new(&p.column, md.schema(), md.metadata().file_metadata().schema_descr())
        else {
            continue;
        };
        let rgs = md.metadata().row_groups();
        let (Ok(mins), Ok(maxs)) = (conv.row_group_mins(rgs.iter()), conv.row_group_maxes(rgs.iter())) else {
            continue;
        };
        let Ok(nulls) = conv.row_group_null_counts(rgs.iter()) else { continue };
        let field_type = md.schema().field_with_name(&p.column).map(|f| f.data_type().clone()).ok();
        match field_type {
            Some(DataType::Dictionary(_, _))
            | Some(DataType::Utf8)
            | Some(DataType::LargeUtf8)
            | Some(DataType::Utf8View) => {
                let (Ok(mins), Ok(maxs)) =
                    (arrow::compute::cast(&mins, &DataType::Utf8), arrow::compute::cast(&maxs, &DataType::Utf8))
                else {
                    continue;
                };
                let (mins, maxs) = (mins.as_string::<i32>(), maxs.as_string::<i32>());
                for (rg, slot) in ok.iter_mut().enumerate() {
                    if mins.is_null(rg) || maxs.is_null(rg) || nulls.is_null(rg) || nulls.value(rg) > 0 {
                        continue;
                    }
                    let (lo, hi) = (mins.value(rg), maxs.value(rg));
                    if !values.iter().any(|v| v.as_str() >= lo && v.as_str() <= hi) {
                        *slot = false;
                    }
                }
            }
            Some(dt) if dt.is_integer() => {
                let (Ok(mins), Ok(maxs)) =
                    (arrow::compute::cast(&mins, &DataType::Int64), arrow::compute::cast(&maxs, &DataType::Int64))
                else {
                    continue;
                };
                let (mins, maxs) = (mins.as_primitive::<Int64Type>(), maxs.as_primitive::<Int64Type>());
                let vals: Vec<i64> = values.iter().filter_map(|v| v.parse().ok()).collect();
                for (rg, slot) in ok.iter_mut().enumerate() {
                    if mins.is_null(rg) || maxs.is_null(rg) || nulls.is_null(rg) || nulls.value(rg) > 0 {
                        continue;
                    }
                    if !vals.iter().any(|v| *v >= mins.value(rg) && *v <= maxs.value(rg)) {
                        *slot = false;
                    }
                }
            }
            _ => {}
        }
    }
    ok
}

/// Time range (inclusive) of the chosen units, when every one has statistics.
pub fn data_range(plan: &QueryPlan, units: &[Unit]) -> Option<(i64, i64)> {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for u in units {
        let (a, b) = plan.files[u.file].row_group_times.get(u.row_group).copied().flatten()?;
        lo = lo.min(a);
        hi = hi.max(b);
    }
    (lo <= hi).then_some((lo, hi))
}

/// Columns the plan reads.
pub fn needed_columns(plan: &QueryPlan) -> Vec<String> {
    let mut cols = vec![plan.time_column.clone()];
    let mut add = |c: &str| {
        if !cols.iter().any(|x| x == c) {
            cols.push(c.to_string())
        }
    };
    plan.group_by.iter().for_each(|g| add(&g.column));
    plan.filters.iter().for_each(|f| add(&f.column));
    for a in &plan.aggregations {
        a.input.columns().iter().for_each(|c| add(c));
        if let Some(f) = &a.filter {
            add(&f.column);
        }
    }
    cols
}

/// Counters shared by the workers.
#[derive(Default)]
pub struct Counters {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub row_groups: AtomicU64,
    /// Units read by the page decoder ([`pages`]) rather than the Arrow reader.
    pub direct_units: AtomicU64,
    /// Column chunks spare workers read ahead for the page decoder.
    pub chunks_read_ahead: AtomicU64,
}

/// Reads and aggregates the units on up to `threads` workers.
pub fn run(
    plan: &QueryPlan,
    units: &[Unit],
    buckets: &Buckets,
    integer_inputs: Vec<bool>,
    threads: usize,
    cancel: &CancelToken,
    counters: &Counters,
) -> Result<Vec<Partial>, EngineError> {
    let cols = needed_columns(plan);
    let ctx = BatchContext {
        plan,
        buckets,
        integer_inputs,
        max_groups: plan.limits.max_groups,
        max_bytes: plan.limits.max_bytes,
    };
    let next = AtomicUsize::new(0);
    // Fewer units than threads: the spare threads read ahead for the units ([`pages`]).
    let helpers = threads.saturating_sub(units.len()) / units.len().max(1);
    let failure: Mutex<Option<EngineError>> = Mutex::new(None);
    let stop = CancelToken::default();
    let worker = || -> Option<Partial> {
        let mut part = Partial::new(&ctx);
        loop {
            if cancel.is_canceled() || stop.is_canceled() {
                return None;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(u) = units.get(i) else { return Some(part) };
            if let Err(e) = read_unit(plan, *u, &cols, &mut part, &ctx, cancel, counters, helpers) {
                stop.cancel();
                let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                f.get_or_insert(e);
                return None;
            }
        }
    };
    let threads = threads.clamp(1, units.len().max(1));
    let parts: Vec<Option<Partial>> = if threads == 1 {
        vec![worker()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            // A worker that panicked lost its partial: the query fails rather than answering
            // without those rows.
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|p| {
                        let why = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert(EngineError::WorkerPanicked(why));
                        None
                    })
                })
                .collect()
        })
    };
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    if cancel.is_canceled() {
        return Err(EngineError::Canceled);
    }
    Ok(parts.into_iter().flatten().collect())
}

/// Rows of a row group worth reading: pages (or runs) of the time column whose range meets
/// the intervals ([`DataFile::time_selectors`]). `None` when every row is needed.
fn page_selection(f: &DataFile, rg: usize, intervals: &[crate::time::Interval]) -> Option<RowSelection> {
    let pages = f.time_selectors(rg)?;
    let mut selectors: Vec<RowSelector> = Vec::with_capacity(pages.len());
    let mut any_skipped = false;
    for &(rows, min, max) in pages {
        let keep = intervals.iter().any(|iv| min < iv.end && max >= iv.start);
        any_skipped |= !keep;
        match selectors.last_mut() {
            Some(last) if last.skip != keep => last.row_count += rows,
            _ => selectors.push(if keep { RowSelector::select(rows) } else { RowSelector::skip(rows) }),
        }
    }
    any_skipped.then(|| RowSelection::from(selectors))
}

/// The base bucket every row of a row group falls in, when its time statistics (and no
/// nulls) prove there is exactly one.
fn constant_bucket(f: &DataFile, rg: usize, buckets: &Buckets) -> Option<u32> {
    let (min, max) = f.row_group_times.get(rg).copied().flatten()?;
    let time_idx = f.metadata.schema().index_of(&f.time_column).ok()?;
    let stats = f.metadata.metadata().row_group(rg).columns().get(time_idx)?.statistics()?;
    if stats.null_count_opt() != Some(0) {
        return None;
    }
    let mut c = 0;
    let (a, b) = (buckets.locate(min, &mut c), buckets.locate(max, &mut c));
    (a != super::buckets::SKIP && a == b).then_some(a)
}

/// Reads one unit into `part`, with `helpers` spare threads to read ahead for it.
#[allow(clippy::too_many_arguments)]
fn read_unit(
    plan: &QueryPlan,
    u: Unit,
    cols: &[String],
    part: &mut Partial,
    ctx: &BatchContext,
    cancel: &CancelToken,
    counters: &Counters,
    helpers: usize,
) -> Result<(), EngineError> {
    let f: &Arc<DataFile> = &plan.files[u.file];
    let schema = f.metadata.schema();
    let rg_meta = f.metadata.metadata().row_group(u.row_group);
    // A row group inside one time bucket needs no time column at all.
    let constant = constant_bucket(f, u.row_group, ctx.buckets);
    let cols: Vec<&String> = cols.iter().filter(|c| constant.is_none() || **c != plan.time_column).collect();
    let mut indices = Vec::with_capacity(cols.len());
    for c in cols {
        let i = schema.index_of(c).map_err(|_| EngineError::MissingColumn(format!("{c}' in '{}", f.name)))?;
        indices.push(i);
    }
    let descr = f.metadata.metadata().file_metadata().schema_descr_ptr();
    let bytes: i64 = indices.iter().filter_map(|&i| rg_meta.columns().get(i)).map(|c| c.compressed_size()).sum();
    let pages = page_selection(f, u.row_group, &plan.intervals);
    let slice = u.rows.map(|(start, len)| {
        let total = rg_meta.num_rows().max(0) as usize;
        RowSelection::from(vec![
            RowSelector::skip(start),
            RowSelector::select(len),
            RowSelector::skip(total.saturating_sub(start + len)),
        ])
    });
    let selection = match (pages, slice) {
        (Some(p), Some(s)) => Some(p.intersection(&s)),
        (p, s) => p.or(s),
    };
    let direct = if plan.limits.page_decoder { pages::prepare(plan, f, u.row_group, constant.is_some()) } else { None };
    if let Some(specs) = direct {
        let ahead = pages::read_unit(
            plan,
            u.file,
            u.row_group,
            &specs,
            selection.as_ref(),
            constant,
            part,
            ctx,
            cancel,
            &counters.rows,
            helpers,
        )?;
        counters.direct_units.fetch_add(1, Ordering::Relaxed);
        counters.chunks_read_ahead.fetch_add(ahead as u64, Ordering::Relaxed);
    } else {
        let file = std::fs::File::open(&f.path).map_err(|e| EngineError::file(f, e))?;
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, f.metadata.clone())
            .with_projection(ProjectionMask::roots(&descr, indices))
            .with_row_groups(vec![u.row_group])
            .with_batch_size(BATCH_ROWS);
        if let Some(sel) = selection {
            builder = builder.with_row_selection(sel);
        }
        let reader = builder.build().map_err(|e| EngineError::file(f, e))?;
        for batch in reader {
            if cancel.is_canceled() {
                return Err(EngineError::Canceled);
            }
            let batch = batch.map_err(|e| EngineError::file(f, e))?;
            counters.rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            part.process(&batch, ctx, constant)?;
        }
    }
    // A split row group counts once (with its first slice).
    if u.rows.is_none_or(|(start, _)| start == 0) {
        counters.bytes.fetch_add(bytes.max(0) as u64, Ordering::Relaxed);
        counters.row_groups.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
