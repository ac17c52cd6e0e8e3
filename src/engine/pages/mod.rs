//! Direct page decoding for flat column chunks. Dimension, filter and time columns are
//! consumed as dictionary *indices*: a value is interned, tested against the filters or put
//! in its time bucket once per dictionary entry instead of once per row, and with one time
//! bucket a combination of indices maps straight to its group. Numeric columns are decoded
//! from the pages straight into the buffers the accumulators read. No Arrow array is built
//! for the dimension or time columns, and nothing is copied twice.
//!
//! Nulls: pages without nulls skip their definition levels; otherwise the levels say which
//! rows have a stored value. A null is local code 0 for code columns (interned like the
//! empty string, tested as null by filters), `SKIP` for the time column and an Arrow null
//! for numbers — the Arrow reader's semantics.
//!
//! A row group is read here only when every needed column qualifies ([`prepare`]): a
//! top-level, non-repeated column; string, boolean, 8–64-bit integer, float or (time column)
//! timestamp/date type; PLAIN or dictionary encoded. Everything else goes through the Arrow
//! reader ([`super::scan`]); both paths produce the same answers (the reference suite runs
//! every plan through each).

mod ahead;
pub mod chunks;
mod compact;
mod cursor;
mod hybrid;
mod inflate;
mod slots;
mod values;

use super::EngineError;
use super::buckets::SKIP;
use super::group::{BatchContext, Partial};
use super::plan::QueryPlan;
use crate::datafile::DataFile;
use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::RowSelection;
use parquet::basic::{Encoding, Type as Phys};
use std::sync::Arc;

use cursor::Cursor;
use slots::SlotAccs;
use values::{NULL_LOCAL, Vals};

/// Rows per batch: small enough that a batch's buffers stay in the CPU caches.
const BATCH: usize = 4096;

/// Largest table of local-code combinations (entries) for the one-bucket group lookup.
const COMBO_MAX: usize = 1 << 20;

/// The value domain of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    /// Booleans, read as codes 0 = "false", 1 = "true" (their text as dimension values).
    Bool,
    Int,
    Float,
}

/// How one needed column is read and what it feeds.
#[derive(Debug, Clone)]
pub struct ColSpec {
    name: String,
    leaf: usize,
    phys: Phys,
    kind: Kind,
    /// Time column: raw value → UTC ms.
    time: Option<fn(i64) -> i64>,
    /// Indices of the group-by dimensions it feeds.
    dims: Vec<usize>,
    /// Indices of the row filters on it.
    filters: Vec<usize>,
    /// Needed as an Arrow array (aggregation input or metric filter).
    array: bool,
}

/// The columns of row group `rg` of `f`, when the page decoder can read all of them exactly;
/// `None` sends the row group to the Arrow reader. `constant` = the time column is not needed.
pub fn prepare(plan: &QueryPlan, f: &DataFile, rg: usize, constant: bool) -> Option<Vec<ColSpec>> {
    let mut specs: Vec<ColSpec> = Vec::new();
    let time_idx = (!constant).then(|| entry(&mut specs, &plan.time_column));
    for (j, g) in plan.group_by.iter().enumerate() {
        let i = entry(&mut specs, &g.column);
        specs[i].dims.push(j);
    }
    for (k, p) in plan.filters.iter().enumerate() {
        let i = entry(&mut specs, &p.column);
        specs[i].filters.push(k);
    }
    for a in &plan.aggregations {
        for c in a.input.columns().iter().chain(a.filter.as_ref().map(|f| &f.column)) {
            let i = entry(&mut specs, c);
            specs[i].array = true;
        }
    }
    let schema = f.metadata.schema();
    let md = f.metadata.metadata();
    let descr = md.file_metadata().schema_descr();
    let rg_meta = md.row_group(rg);
    for (i, s) in specs.iter_mut().enumerate() {
        let dt = schema.field_with_name(&s.name).ok()?.data_type().clone();
        s.leaf = descr.columns().iter().position(|c| c.path().parts() == [s.name.as_str()])?;
        let col = descr.column(s.leaf);
        if col.max_rep_level() != 0 || col.max_def_level() > 1 {
            return None;
        }
        s.phys = col.physical_type();
        let is_time = time_idx == Some(i);
        if is_time {
            // The time column feeds nothing else.
            if !s.dims.is_empty() || !s.filters.is_empty() || s.array {
                return None;
            }
            s.time = Some(crate::datafile::time_unit_to_ms(&dt)?);
            if !matches!(s.phys, Phys::INT32 | Phys::INT64) {
                return None;
            }
            s.kind = Kind::Int;
        } else {
            s.kind = match (&dt, s.phys) {
                (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, Phys::BYTE_ARRAY) => Kind::Str,
                (DataType::Dictionary(k, v), Phys::BYTE_ARRAY) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                    Kind::Str
                }
                (DataType::Int8 | DataType::Int16 | DataType::Int32, Phys::INT32) | (DataType::Int64, Phys::INT64) => {
                    Kind::Int
                }
                (DataType::Float32, Phys::FLOAT) | (DataType::Float64, Phys::DOUBLE) => Kind::Float,
                // Booleans serve as dimensions and row filters; as numbers the Arrow reader
                // casts them.
                (DataType::Boolean, Phys::BOOLEAN) if !s.array => Kind::Bool,
                _ => return None,
            };
            // Float dimensions and row filters keep the Arrow reader's semantics there.
            if s.kind == Kind::Float && s.codes() {
                return None;
            }
        }
        let chunk = rg_meta.column(s.leaf);
        if chunk.encodings().any(|e| {
            !matches!(e, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY | Encoding::RLE)
        }) {
            return None;
        }
    }
    Some(specs)
}

impl ColSpec {
    /// Read as local codes (dimensions, row filters, and every string column); otherwise as
    /// values.
    fn codes(&self) -> bool {
        !self.dims.is_empty() || !self.filters.is_empty() || matches!(self.kind, Kind::Str | Kind::Bool)
    }
}

/// The index of column `name` in `specs`, added when new.
fn entry(specs: &mut Vec<ColSpec>, name: &str) -> usize {
    if let Some(i) = specs.iter().position(|s| s.name == name) {
        return i;
    }
    specs.push(ColSpec {
        name: name.to_string(),
        leaf: 0,
        phys: Phys::INT32,
        kind: Kind::Int,
        time: None,
        dims: vec![],
        filters: vec![],
        array: false,
    });
    specs.len() - 1
}

/// Reads one unit (row group, or the rows of it in `selection`) through the page decoder,
/// with up to `helpers` spare threads reading its largest chunks ahead ([`ahead`]). Returns
/// how many chunks they read.
#[allow(clippy::too_many_arguments)]
pub fn read_unit(
    plan: &QueryPlan,
    file_idx: usize,
    rg: usize,
    specs: &[ColSpec],
    selection: Option<&RowSelection>,
    constant: Option<u32>,
    part: &mut Partial,
    ctx: &BatchContext,
    cancel: &super::plan::CancelToken,
    rows_read: &std::sync::atomic::AtomicU64,
    helpers: usize,
) -> Result<usize, EngineError> {
    let f: &Arc<DataFile> = &plan.files[file_idx];
    let total = f.metadata.metadata().row_group(rg).num_rows().max(0) as usize;
    let chunks::Opened { mut pages, has_def, sizes } = chunks::open_sources(plan, f, rg, specs)?;
    let ranges: Vec<(usize, usize)> = match selection {
        None => vec![(0, total)],
        Some(sel) => {
            let (mut at, mut out) = (0usize, Vec::new());
            for r in sel.iter() {
                if !r.skip && r.row_count > 0 {
                    out.push((at, r.row_count));
                }
                at += r.row_count;
            }
            out
        }
    };
    let canceled = || cancel.is_canceled();
    std::thread::scope(|scope| {
        let ahead = ahead::start(scope, &mut pages, &ahead::assign(&sizes, helpers), &ranges, &canceled);
        let mut cursors: Vec<Cursor> =
            pages.into_iter().zip(specs).zip(has_def).map(|((p, s), d)| Cursor::new(p, s, d)).collect();
        let end = ranges.last().map(|&(start, len)| start + len);
        cursors.iter_mut().for_each(|c| c.end = end);
        let mut state = UnitState::new(plan, specs, ranges.iter().map(|r| r.1).sum());
        for &(start, len) in &ranges {
            for c in cursors.iter_mut() {
                c.skip_to(start).map_err(|e| EngineError::file(f, e))?;
            }
            let mut done = 0;
            while done < len {
                if cancel.is_canceled() {
                    return Err(EngineError::Canceled);
                }
                let n = BATCH.min(len - done);
                state.batch(plan, specs, &mut cursors, n, constant, part, ctx).map_err(|e| match e {
                    Failure::Data(m) => EngineError::file(f, m),
                    Failure::Engine(e) => e,
                })?;
                rows_read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                done += n;
            }
        }
        state.flush(&cursors, part, ctx)?;
        for c in cursors.iter_mut() {
            c.pages.finish();
        }
        Ok(ahead)
    })
}

enum Failure {
    /// The file's bytes are not what its metadata promised.
    Data(String),
    Engine(EngineError),
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Data(m)
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Engine(e)
    }
}

/// The first time bucket of a batch's rows not skipped, and how many buckets they span.
fn bucket_span(gids: &[u32]) -> Option<(u32, u32)> {
    let first = *gids.iter().find(|&&g| g != SKIP)?;
    // No early exit: skipped rows fall at random under a filter, and a branch per row
    // mispredicted on them (8 % of Q3); this folds branch-free and vectorises.
    if gids.iter().fold(true, |same, &g| same & ((g == first) | (g == SKIP))) {
        return Some((first, 1));
    }
    // Several buckets, in one pass (`SKIP` + 1 wraps to 0, below every bucket + 1).
    let (lo, hi) = gids.iter().fold((SKIP, 0), |(lo, hi), &g| (lo.min(g), hi.max(g.wrapping_add(1))));
    Some((lo, hi - lo))
}

/// Per-unit caches: what each local code means for the filters, the dimensions and (one
/// dimension, one bucket) the groups.
struct UnitState {
    /// Per filter, indexed by local code: 0 = match, `SKIP` = no match.
    hits: Vec<Vec<u32>>,
    /// Per dimension: its code in the partial's interner, `SKIP` = not yet interned.
    dim_maps: Vec<Vec<u32>>,
    /// For a few consecutive buckets from `combo_bucket`: the group of each bucket and
    /// combination of the dimensions' local codes (`SKIP` = not yet looked up), bucket by
    /// bucket, each laid out by `combo_lens`.
    combo: Vec<u32>,
    combo_lens: Vec<usize>,
    /// The first bucket of the combination table, and how many it covers.
    combo_bucket: u32,
    combo_buckets: u32,
    /// The unit's own accumulators (one dimension, one bucket, many values: [`SlotAccs`]).
    slots: Option<SlotAccs>,
    /// Which cursor feeds each dimension and each filter.
    dim_cursor: Vec<usize>,
    filter_cursor: Vec<usize>,
    /// How many rows the unit reads.
    rows: usize,
}

impl UnitState {
    fn new(plan: &QueryPlan, specs: &[ColSpec], rows: usize) -> UnitState {
        let find = |pred: &dyn Fn(&ColSpec) -> bool| specs.iter().position(pred).unwrap_or(0);
        UnitState {
            hits: vec![Vec::new(); plan.filters.len()],
            dim_maps: vec![Vec::new(); plan.group_by.len()],
            combo: Vec::new(),
            combo_lens: Vec::new(),
            combo_bucket: SKIP,
            combo_buckets: 1,
            slots: None,
            dim_cursor: (0..plan.group_by.len()).map(|j| find(&|s| s.dims.contains(&j))).collect(),
            filter_cursor: (0..plan.filters.len()).map(|k| find(&|s| s.filters.contains(&k))).collect(),
            rows,
        }
    }

    /// Sizes the combination table for `lens`. With one dimension a local code keeps its
    /// slot as the dictionary grows, so entries survive; with several the layout changes and
    /// the table starts over. One integer dimension's new entries are filled with the groups
    /// its values already have (a lookup that creates none): with many distinct values per
    /// row group (Polars writes 122,880-row groups) most rows would otherwise take the
    /// unpredictable first-sight branch in the row loop.
    fn fit_combo(
        &mut self,
        cursors: &[Cursor],
        lens: Vec<usize>,
        space: usize,
        (bucket, buckets, lasting): (u32, u32, bool),
        part: &Partial,
    ) {
        let same = self.combo_bucket == bucket && self.combo_buckets == buckets;
        if same && self.combo_lens == lens && self.combo.len() == space * buckets as usize {
            return;
        }
        let keep = lens.len() == 1 && same && buckets == 1;
        let from = if keep { self.combo.len().min(space) } else { 0 };
        self.combo_bucket = bucket;
        self.combo_buckets = buckets;
        self.combo.truncate(from);
        self.combo.resize(space * buckets as usize, SKIP);
        self.combo_lens = lens;
        if lasting
            && let [c] = self.dim_cursor.as_slice()
            && let Vals::Int(v) = &cursors[*c].vals
        {
            for (l, e) in self.combo.iter_mut().enumerate().skip(from) {
                if l != NULL_LOCAL as usize {
                    *e = v.get(l).map_or(SKIP, |&x| part.known_gid_for_int(bucket, x));
                }
            }
        }
    }

    /// Groups through the combination table: each combination of local codes is looked up
    /// once per bucket (per unit when `lasting`: the unit's only bucket), then one table load
    /// per row. `buckets` consecutive buckets from `bucket` (one when `lasting`).
    fn groups_by_combo(
        &mut self,
        cursors: &[Cursor],
        (lens, space): (Vec<usize>, usize),
        (bucket, buckets, lasting): (u32, u32, bool),
        gids: &mut [u32],
        part: &mut Partial,
    ) {
        self.fit_combo(cursors, lens, space, (bucket, buckets, lasting), part);
        let mut slots: Vec<u32> = match self.dim_cursor.first() {
            Some(&c) => cursors[c].locals.clone(),
            None => vec![0; gids.len()],
        };
        for (j, &c) in self.dim_cursor.iter().enumerate().skip(1) {
            let width = self.combo_lens[j] as u32;
            for (s, &l) in slots.iter_mut().zip(&cursors[c].locals) {
                *s = *s * width + l;
            }
        }
        if buckets > 1 {
            // The bucket's part of the table (a skipped row's bucket is clamped: it reads
            // some entry and stays skipped).
            for (s, &g) in slots.iter_mut().zip(gids.iter()) {
                *s += g.wrapping_sub(bucket).min(buckets - 1) * space as u32;
            }
        }
        for (i, (g, &at)) in gids.iter_mut().zip(&slots).enumerate() {
            let at = at as usize;
            let e = self.combo[at];
            // Skipped rows fall at random under a filter: the only branch taken per row is
            // the rare first sight of a combination, kept out of line so the loop keeps its
            // pointers in registers.
            if e != SKIP || *g == SKIP {
                *g = e | u32::from(*g == SKIP).wrapping_neg();
                continue;
            }
            let locals: Vec<u32> = self.dim_cursor.iter().map(|&c| cursors[c].locals[i]).collect();
            *g = self.first_sight(cursors, (&locals, at), (*g, lasting), part);
        }
    }

    /// The group of combination `s` (the dimensions' local codes `locals`), seen for the
    /// first time in this table: created when new, and remembered.
    #[cold]
    #[inline(never)]
    fn first_sight(
        &mut self,
        cursors: &[Cursor],
        (locals, s): (&[u32], usize),
        (bucket, lasting): (u32, bool),
        part: &mut Partial,
    ) -> u32 {
        if lasting
            && let ([c], [l]) = (self.dim_cursor.as_slice(), locals)
            && let Vals::Int(v) = &cursors[*c].vals
            && *l != NULL_LOCAL
        {
            // One integer dimension: every row group repeats (mostly) the same dictionary,
            // so resolve values through the partial's lasting table.
            self.combo[s] = part.gid_for_int(bucket, v[*l as usize]);
        }
        if self.combo[s] == SKIP {
            let codes: Vec<u32> = self
                .dim_cursor
                .iter()
                .zip(locals)
                .enumerate()
                .map(|(j, (&c, &l))| cursors[c].vals.intern(l as usize, &mut part.dims[j]))
                .collect();
            self.combo[s] = part.groups.id(bucket, &codes);
        }
        self.combo[s]
    }

    /// Folds a batch of the unit's only bucket into the unit's own accumulators, indexed by
    /// the one dimension's local code: no group lookup per row.
    fn fold_by_local(
        &mut self,
        cursors: &[Cursor],
        gids: &[u32],
        col: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
        ctx: &BatchContext,
    ) -> Result<(), EngineError> {
        let locals = &cursors[self.dim_cursor[0]].locals;
        let space = self.combo.len();
        self.slots.get_or_insert_with(|| SlotAccs::new(ctx)).fold(locals, gids, space, col, ctx.plan)
    }

    /// Turns every local code the unit's own accumulators saw into its group and adds them
    /// there. Called when the unit ends.
    fn flush(&mut self, cursors: &[Cursor], part: &mut Partial, ctx: &BatchContext) -> Result<(), EngineError> {
        let Some(local) = self.slots.take() else { return Ok(()) };
        let pairs: Vec<(usize, u32)> = local
            .seen_slots(self.combo.len())
            .into_iter()
            .map(|s| match self.combo[s] {
                SKIP => (s, self.first_sight(cursors, (&[s as u32], s), (self.combo_bucket, true), part)),
                g => (s, g),
            })
            .collect();
        part.absorb(&local.accs, &pairs);
        part.check_caps(ctx)
    }

    /// Groups through the partial's group table: each dimension's local codes become the
    /// partial's codes (once per local code), then (bucket, codes) → group per row.
    fn groups_by_codes(&mut self, cursors: &[Cursor], n: usize, gids: &mut [u32], part: &mut Partial) {
        let mut dim_codes: Vec<Vec<u32>> = Vec::with_capacity(self.dim_cursor.len());
        for (j, &d) in self.dim_cursor.iter().enumerate() {
            let c = &cursors[d];
            let map = &mut self.dim_maps[j];
            if map.len() < c.vals.len() {
                map.resize(c.vals.len(), SKIP);
            }
            let mut codes = Vec::with_capacity(n);
            for &l in &c.locals {
                let m = &mut map[l as usize];
                if *m == SKIP {
                    *m = c.vals.intern(l as usize, &mut part.dims[j]);
                }
                codes.push(*m);
            }
            dim_codes.push(codes);
        }
        part.groups.assign(gids, &dim_codes);
    }

    #[allow(clippy::too_many_arguments)]
    fn batch(
        &mut self,
        plan: &QueryPlan,
        specs: &[ColSpec],
        cursors: &mut [Cursor],
        n: usize,
        constant: Option<u32>,
        part: &mut Partial,
        ctx: &BatchContext,
    ) -> Result<(), Failure> {
        // 1. Time bucket per row.
        let mut gids: Vec<u32> = Vec::with_capacity(n);
        let mut arrays: Vec<(&str, ArrayRef)> = Vec::new();
        for (s, c) in specs.iter().zip(cursors.iter_mut()) {
            if s.time.is_some() {
                c.read_buckets(n, ctx.buckets, &mut gids)?;
            } else if !s.codes() {
                arrays.push((s.name.as_str(), c.numbers_array(n)?));
            } else {
                c.locals.clear();
                let mut locals = std::mem::take(&mut c.locals);
                let r = c.read_locals(n, &mut locals);
                c.locals = locals;
                r?;
                if s.array {
                    arrays.push((s.name.as_str(), c.locals_array()?));
                }
            }
        }
        if let Some(b) = constant {
            gids.resize(n, b);
        }
        // 2. Row filters, evaluated once per local code (before the rows, so the row loop
        // is branch-free: a filter's hits fall at random). Or-ing `SKIP` (all ones) skips
        // the row, or-ing 0 keeps it.
        for (k, p) in plan.filters.iter().enumerate() {
            let c = &cursors[self.filter_cursor[k]];
            let hits = &mut self.hits[k];
            while hits.len() < c.vals.len() {
                let l = hits.len();
                hits.push(if c.vals.matches(l, &p.op) { 0 } else { SKIP });
            }
            for (g, &l) in gids.iter_mut().zip(&c.locals) {
                *g |= hits.get(l as usize).copied().unwrap_or(SKIP);
            }
        }
        // 3. Groups.
        let lens: Vec<usize> = self.dim_cursor.iter().map(|&c| cursors[c].vals.len()).collect();
        let space = lens.iter().try_fold(1usize, |a, &l| a.checked_mul(l.max(1)));
        let bucket = match (constant, space) {
            (Some(b), Some(space)) if space <= COMBO_MAX => Some((b, 1, true)),
            // A batch of a sorted file falls in one or a few time buckets: then the
            // combination table serves it too, when it is small enough to start over (per
            // bucket; per batch when it covers several, so smaller then).
            (None, Some(space)) if space <= n => bucket_span(&gids)
                .filter(|&(_, k)| k == 1 || space.saturating_mul(k as usize) <= n / 16)
                .map(|(b, k)| (b, k, false)),
            _ => None,
        };
        let col = |name: &str| -> Result<ArrayRef, EngineError> {
            arrays
                .iter()
                .find(|(c, _)| *c == name)
                .map(|(_, a)| a.clone())
                .ok_or_else(|| EngineError::MissingColumn(name.to_string()))
        };
        match bucket {
            Some((b, 1, true)) if lens.len() == 1 && SlotAccs::fits(plan, space.unwrap_or(0), self.rows) => {
                // 4. Aggregations, into the unit's own accumulators.
                self.fit_combo(cursors, lens, space.unwrap_or(0), (b, 1, true), part);
                return Ok(self.fold_by_local(cursors, &gids, &col, ctx)?);
            }
            Some(span) => self.groups_by_combo(cursors, (lens, space.unwrap_or(0)), span, &mut gids, part),
            None => self.groups_by_codes(cursors, n, &mut gids, part),
        }
        // 4. Aggregations.
        part.aggregate(&gids, &col, n, ctx)?;
        Ok(())
    }
}
