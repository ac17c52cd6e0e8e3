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

use super::EngineError;
use super::buckets::{Buckets, SKIP};
use super::group::{BatchContext, Partial};
use super::plan::{PredOp, QueryPlan};
use crate::catalog::physical::DataFile;
use arrow::array::{Array, ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, StringArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Int32Type};
use bytes::Bytes;
use parquet::arrow::arrow_reader::RowSelection;
use parquet::basic::{Encoding, Type as Phys};
use parquet::column::page::{Page, PageReader};
use parquet::file::serialized_reader::SerializedPageReader;
use rustc_hash::FxHashMap;
use std::fs::File;
use std::sync::Arc;

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
            s.time = Some(crate::catalog::physical::time_unit_to_ms(&dt)?);
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

/// Reads one unit (row group, or the rows of it in `selection`) through the page decoder.
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
) -> Result<(), EngineError> {
    let f: &Arc<DataFile> = &plan.files[file_idx];
    let md = f.metadata.metadata();
    let rg_meta = md.row_group(rg);
    let total = rg_meta.num_rows().max(0) as usize;
    let file = Arc::new(File::open(&f.path).map_err(|e| EngineError::file(&f.path, e))?);
    let offsets = md.offset_index().and_then(|o| o.get(rg));
    let mut cursors = Vec::with_capacity(specs.len());
    for s in specs {
        let chunk = rg_meta.column(s.leaf);
        let locations = offsets.and_then(|o| o.get(s.leaf)).map(|o| o.page_locations().clone());
        let pages = SerializedPageReader::new(file.clone(), chunk, total, locations)
            .map_err(|e| EngineError::file(&f.path, e))?;
        let has_def = md.file_metadata().schema_descr().column(s.leaf).max_def_level() > 0;
        cursors.push(Cursor::new(pages, s, has_def));
    }
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
    let mut state = UnitState::new(plan, specs);
    for (start, len) in ranges {
        for c in cursors.iter_mut() {
            c.skip_to(start).map_err(|e| EngineError::file(&f.path, e))?;
        }
        let mut done = 0;
        while done < len {
            if cancel.is_canceled() {
                return Err(EngineError::Canceled);
            }
            let n = BATCH.min(len - done);
            state.batch(plan, specs, &mut cursors, n, constant, part, ctx).map_err(|e| match e {
                Failure::Data(m) => EngineError::file(&f.path, m),
                Failure::Engine(e) => e,
            })?;
            rows_read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            done += n;
        }
    }
    Ok(())
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

/// Per-unit caches: what each local code means for the filters, the dimensions and (one
/// dimension, one bucket) the groups.
struct UnitState {
    /// Per filter: 0 = not yet evaluated, 1 = no match, 2 = match; indexed by local code.
    hits: Vec<Vec<u8>>,
    /// Per dimension: its code in the partial's interner, `SKIP` = not yet interned.
    dim_maps: Vec<Vec<u32>>,
    /// Constant bucket: the group of each combination of the dimensions' local codes
    /// (`SKIP` = not yet looked up), laid out by `combo_lens`.
    combo: Vec<u32>,
    combo_lens: Vec<usize>,
    /// Which cursor feeds each dimension and each filter.
    dim_cursor: Vec<usize>,
    filter_cursor: Vec<usize>,
}

impl UnitState {
    fn new(plan: &QueryPlan, specs: &[ColSpec]) -> UnitState {
        let find = |pred: &dyn Fn(&ColSpec) -> bool| specs.iter().position(pred).unwrap_or(0);
        UnitState {
            hits: vec![Vec::new(); plan.filters.len()],
            dim_maps: vec![Vec::new(); plan.group_by.len()],
            combo: Vec::new(),
            combo_lens: Vec::new(),
            dim_cursor: (0..plan.group_by.len()).map(|j| find(&|s| s.dims.contains(&j))).collect(),
            filter_cursor: (0..plan.filters.len()).map(|k| find(&|s| s.filters.contains(&k))).collect(),
        }
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
                let arr: ArrayRef = match s.kind {
                    Kind::Int => {
                        let mut v = Vec::with_capacity(n);
                        let valid = c.read_numbers::<i64>(n, &mut v)?;
                        Arc::new(Int64Array::new(v.into(), valid.map(NullBuffer::from)))
                    }
                    _ => {
                        let mut v = Vec::with_capacity(n);
                        let valid = c.read_numbers::<f64>(n, &mut v)?;
                        Arc::new(Float64Array::new(v.into(), valid.map(NullBuffer::from)))
                    }
                };
                arrays.push((s.name.as_str(), arr));
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
        // 2. Row filters, evaluated once per local code.
        for (k, p) in plan.filters.iter().enumerate() {
            let c = &cursors[self.filter_cursor[k]];
            let hits = &mut self.hits[k];
            if hits.len() < c.vals.len() {
                hits.resize(c.vals.len(), 0);
            }
            for (g, &l) in gids.iter_mut().zip(&c.locals) {
                let h = &mut hits[l as usize];
                if *h == 0 {
                    *h = 1 + u8::from(c.vals.matches(l as usize, &p.op));
                }
                if *h == 1 {
                    *g = SKIP;
                }
            }
        }
        // 3. Groups.
        let ndims = plan.group_by.len();
        let lens: Vec<usize> = self.dim_cursor.iter().map(|&c| cursors[c].vals.len()).collect();
        let space = lens.iter().try_fold(1usize, |a, &l| a.checked_mul(l.max(1)));
        match (constant, space) {
            // One bucket and a small space of local-code combinations: each combination's
            // group is looked up once per unit, then one table load per row.
            (Some(bucket), Some(space)) if space <= COMBO_MAX => {
                if self.combo_lens != lens || self.combo.len() != space {
                    self.combo = vec![SKIP; space];
                    self.combo_lens = lens;
                }
                let mut slots: Vec<u32> = match self.dim_cursor.first() {
                    Some(&c) => cursors[c].locals.clone(),
                    None => vec![0; n],
                };
                for (j, &c) in self.dim_cursor.iter().enumerate().skip(1) {
                    let width = self.combo_lens[j] as u32;
                    for (s, &l) in slots.iter_mut().zip(&cursors[c].locals) {
                        *s = *s * width + l;
                    }
                }
                let mut codes = Vec::with_capacity(ndims);
                for (i, (g, &s)) in gids.iter_mut().zip(&slots).enumerate() {
                    if *g == SKIP {
                        continue;
                    }
                    let e = &mut self.combo[s as usize];
                    if *e == SKIP
                        && let [c] = self.dim_cursor.as_slice()
                        && let Vals::Int(v) = &cursors[*c].vals
                        && cursors[*c].locals[i] != NULL_LOCAL
                    {
                        // One integer dimension: every row group repeats (mostly) the same
                        // dictionary, so resolve values through the partial's lasting table.
                        *e = part.gid_for_int(bucket, v[cursors[*c].locals[i] as usize]);
                    }
                    if *e == SKIP {
                        codes.clear();
                        for (j, &c) in self.dim_cursor.iter().enumerate() {
                            let cur = &cursors[c];
                            codes.push(cur.vals.intern(cur.locals[i] as usize, &mut part.dims[j]));
                        }
                        *e = part.groups.id(bucket, &codes);
                    }
                    *g = *e;
                }
            }
            _ => {
                let mut dim_codes: Vec<Vec<u32>> = Vec::with_capacity(plan.group_by.len());
                for j in 0..plan.group_by.len() {
                    let c = &cursors[self.dim_cursor[j]];
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
                part.groups.assign(&mut gids, &dim_codes);
            }
        }
        // 4. Aggregations.
        let col = |name: &str| -> Result<ArrayRef, EngineError> {
            arrays
                .iter()
                .find(|(c, _)| *c == name)
                .map(|(_, a)| a.clone())
                .ok_or_else(|| EngineError::MissingColumn(name.to_string()))
        };
        part.aggregate(&gids, &col, n, ctx)?;
        Ok(())
    }
}

/// Local code 0 is null; dictionary index `i` is local code `i + 1`.
const NULL_LOCAL: u32 = 0;

/// Values addressed by local code: a placeholder for null, the dictionary's entries, then
/// values interned from plain-encoded pages of the same chunk.
enum Vals {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Str(Vec<String>),
}

impl Vals {
    fn len(&self) -> usize {
        match self {
            Vals::Int(v) => v.len(),
            Vals::Float(v) => v.len(),
            Vals::Str(v) => v.len(),
        }
    }

    /// Whether the value of local code `l` passes `op` (the Arrow path's semantics:
    /// integers in decimal, `in`/`notin` compare integers numerically; null as null).
    fn matches(&self, l: usize, op: &PredOp) -> bool {
        if l == NULL_LOCAL as usize {
            return op.matches_text(None);
        }
        match self {
            Vals::Str(v) => op.matches_text(Some(&v[l])),
            Vals::Int(v) => super::columns::int_matches(op, v[l]),
            Vals::Float(v) => op.matches_text(Some(&v[l].to_string())),
        }
    }

    /// The dimension code of local code `l` (null shares the empty string's code).
    fn intern(&self, l: usize, codes: &mut super::columns::DimCodes) -> u32 {
        if l == NULL_LOCAL as usize {
            return codes.code_str("");
        }
        match self {
            Vals::Str(v) => codes.code_str(&v[l]),
            Vals::Int(v) => codes.code_int(v[l]),
            Vals::Float(v) => codes.code_str(&v[l].to_string()),
        }
    }
}

/// Dictionary indices: the RLE / bit-packed hybrid encoding.
#[derive(Debug, Default)]
struct Hybrid {
    pos: usize,
    bw: usize,
    rle_left: usize,
    rle_val: u32,
    bp_left: usize,
    bp_bit: usize,
    /// Bit where the current bit-packed run starts (its groups of 8 are byte-aligned).
    bp_start: usize,
}

impl Hybrid {
    fn new(pos: usize, bw: usize) -> Result<Hybrid, String> {
        if bw > 32 {
            return Err(format!("dictionary index bit width {bw} is invalid"));
        }
        Ok(Hybrid { pos, bw, ..Default::default() })
    }

    fn next_run(&mut self, buf: &[u8]) -> Result<(), String> {
        let mut h: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *buf.get(self.pos).ok_or("dictionary indices end early")?;
            self.pos += 1;
            h |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 56 {
                return Err("dictionary index run header is invalid".into());
            }
        }
        if h & 1 == 1 {
            let groups = (h >> 1) as usize;
            let bytes = groups.saturating_mul(self.bw);
            let avail = buf.len().saturating_sub(self.pos);
            // A final run may be cut short; only whole values that are present count.
            let values = match (avail * 8).checked_div(self.bw) {
                Some(present) => groups.saturating_mul(8).min(present),
                None => groups.saturating_mul(8),
            };
            self.bp_bit = self.pos * 8;
            self.bp_start = self.bp_bit;
            self.bp_left = values;
            self.pos += bytes.min(avail);
        } else {
            let nbytes = self.bw.div_ceil(8);
            let raw = buf.get(self.pos..self.pos + nbytes).ok_or("dictionary indices end early")?;
            let mut v = [0u8; 4];
            v[..nbytes].copy_from_slice(raw);
            self.pos += nbytes;
            self.rle_val = u32::from_le_bytes(v);
            self.rle_left = (h >> 1) as usize;
        }
        Ok(())
    }

    #[inline]
    fn bits(buf: &[u8], bit: usize, mask: u64) -> u32 {
        let byte = bit >> 3;
        let word = match buf.get(byte..byte + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])),
            None => {
                let mut w = [0u8; 8];
                let tail = &buf[byte.min(buf.len())..];
                w[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(w)
            }
        };
        ((word >> (bit & 7)) & mask) as u32
    }

    /// Appends the next `n` indices to `out`.
    fn read(&mut self, buf: &[u8], n: usize, out: &mut Vec<u32>) -> Result<(), String> {
        let mask = (1u64 << self.bw) - 1;
        let mut need = n;
        while need > 0 {
            if self.rle_left > 0 {
                let k = need.min(self.rle_left);
                out.extend(std::iter::repeat_n(self.rle_val, k));
                self.rle_left -= k;
                need -= k;
            } else if self.bp_left > 0 {
                let k = need.min(self.bp_left);
                let bw = self.bw;
                if bw == 0 {
                    out.extend(std::iter::repeat_n(0, k));
                } else {
                    let mut j = 0;
                    // Values up to the next group boundary one by one, then whole groups of 8
                    // with a width-specialized unpacker, then the tail one by one.
                    while j < k && !(self.bp_bit - self.bp_start).is_multiple_of(8 * bw) {
                        out.push(Hybrid::bits(buf, self.bp_bit, mask));
                        self.bp_bit += bw;
                        j += 1;
                    }
                    let byte = self.bp_bit / 8;
                    let groups = ((k - j) / 8).min(buf.len().saturating_sub(byte) / bw);
                    unpack_groups(bw, &buf[byte..], groups, out);
                    self.bp_bit += groups * 8 * bw;
                    j += groups * 8;
                    while j < k {
                        out.push(Hybrid::bits(buf, self.bp_bit, mask));
                        self.bp_bit += bw;
                        j += 1;
                    }
                }
                self.bp_left -= k;
                need -= k;
            } else {
                self.next_run(buf)?;
            }
        }
        Ok(())
    }

    fn skip(&mut self, buf: &[u8], n: usize) -> Result<(), String> {
        let mut need = n;
        while need > 0 {
            if self.rle_left > 0 {
                let k = need.min(self.rle_left);
                self.rle_left -= k;
                need -= k;
            } else if self.bp_left > 0 {
                let k = need.min(self.bp_left);
                self.bp_bit += k * self.bw;
                self.bp_left -= k;
                need -= k;
            } else {
                self.next_run(buf)?;
            }
        }
        Ok(())
    }

    /// Whether the next `n` values all equal `v` (definition levels: is the page free of nulls).
    fn all_equal(&mut self, buf: &[u8], n: usize, v: u32) -> Result<bool, String> {
        let mask = (1u64 << self.bw) - 1;
        let mut need = n;
        while need > 0 {
            if self.rle_left > 0 {
                if self.rle_val != v {
                    return Ok(false);
                }
                let k = need.min(self.rle_left);
                self.rle_left -= k;
                need -= k;
            } else if self.bp_left > 0 {
                let k = need.min(self.bp_left);
                if (0..k).any(|j| Hybrid::bits(buf, self.bp_bit + j * self.bw, mask) != v) {
                    return Ok(false);
                }
                self.bp_bit += k * self.bw;
                self.bp_left -= k;
                need -= k;
            } else {
                self.next_run(buf)?;
            }
        }
        Ok(true)
    }
}

/// Unpacks `groups` whole groups of 8 bit-packed values from the start of `buf` (which may
/// extend past them: the rest of the page).
fn unpack_groups(bw: usize, buf: &[u8], groups: usize, out: &mut Vec<u32>) {
    macro_rules! widths {
        ($($w:literal)*) => {
            match bw {
                $($w => unpack::<$w>(buf, groups, out),)*
                _ => {}
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
}

/// `unpack_groups` for one width: every shift and offset is a constant. Each value is one
/// unaligned 8-byte load straight from the page; only the last groups of a page, where
/// such a load would run past the end, go through a zero-padded copy.
#[inline(always)]
fn unpack<const BW: usize>(buf: &[u8], groups: usize, out: &mut Vec<u32>) {
    let mask: u64 = (1u64 << BW) - 1;
    let start = out.len();
    out.resize(start + groups * 8, 0);
    let word = |s: &[u8], o: usize| u64::from_le_bytes(s[o..o + 8].try_into().unwrap_or([0; 8]));
    for (g, d) in out[start..].chunks_exact_mut(8).enumerate() {
        let base = g * BW;
        let padded;
        let s: &[u8] = match buf.get(base..base + BW + 8) {
            Some(s) => s,
            None => {
                let mut b = [0u8; 40];
                b[..BW].copy_from_slice(&buf[base..base + BW]);
                padded = b;
                &padded[..BW + 8]
            }
        };
        for (j, v) in d.iter_mut().enumerate() {
            let bit = j * BW;
            *v = ((word(s, bit / 8) >> (bit % 8)) & mask) as u32;
        }
    }
}

/// The current data page of a cursor.
struct PageState {
    buf: Bytes,
    /// Dictionary indices, or `None` for PLAIN values starting at `pos`.
    dict: Option<Hybrid>,
    pos: usize,
    /// Definition levels (`buf[lo..hi]`) when the page has nulls; values are stored only for
    /// the rows whose level is 1.
    def: Option<(Hybrid, usize, usize)>,
}

/// Reads one column chunk page by page.
struct Cursor {
    pages: SerializedPageReader<File>,
    phys: Phys,
    kind: Kind,
    time: Option<fn(i64) -> i64>,
    has_def: bool,
    /// Dictionary entries (then plain-interned values, for code columns).
    vals: Vals,
    /// Entries that came from the dictionary page.
    dict_len: usize,
    have_dict: bool,
    /// Time column: the bucket of each dictionary entry.
    dict_buckets: Vec<u32>,
    time_cursor: usize,
    plain_str: FxHashMap<String, u32>,
    plain_int: FxHashMap<i64, u32>,
    page: Option<PageState>,
    /// Values left in the current page.
    left: usize,
    /// Next row of the row group.
    row: usize,
    /// This batch's local codes (code columns).
    locals: Vec<u32>,
    /// The local string values as an Arrow array (rebuilt when values are added).
    str_values: Option<ArrayRef>,
    scratch: Vec<u32>,
}

impl Cursor {
    fn new(pages: SerializedPageReader<File>, s: &ColSpec, has_def: bool) -> Cursor {
        let vals = match s.kind {
            Kind::Str => Vals::Str(vec![String::new()]),
            Kind::Bool => Vals::Str(vec![String::new(), "false".into(), "true".into()]),
            Kind::Int => Vals::Int(vec![0]),
            Kind::Float => Vals::Float(vec![0.0]),
        };
        // Boolean values decode like dictionary indices into ["false", "true"].
        let bool_dict = s.kind == Kind::Bool;
        Cursor {
            pages,
            phys: s.phys,
            kind: s.kind,
            time: s.time,
            has_def,
            vals,
            dict_len: if bool_dict { 2 } else { 0 },
            have_dict: bool_dict,
            dict_buckets: vec![],
            time_cursor: 0,
            plain_str: FxHashMap::default(),
            plain_int: FxHashMap::default(),
            page: None,
            left: 0,
            row: 0,
            locals: Vec::with_capacity(BATCH),
            str_values: None,
            scratch: Vec::with_capacity(BATCH),
        }
    }

    /// Loads the next data page (reading the dictionary page first when there is one).
    fn load(&mut self) -> Result<(), String> {
        loop {
            let page = self.pages.get_next_page().map_err(|e| e.to_string())?.ok_or("the column chunk ends early")?;
            match page {
                Page::DictionaryPage { buf, num_values, .. } => {
                    if self.have_dict {
                        return Err("a column chunk has two dictionary pages".into());
                    }
                    self.decode_dictionary(&buf, num_values as usize)?;
                }
                Page::DataPage { buf, num_values, encoding, def_level_encoding, .. } => {
                    let (mut pos, mut def) = (0, None);
                    if self.has_def {
                        if def_level_encoding != Encoding::RLE {
                            return Err(format!("definition levels encoded as {def_level_encoding} are not supported"));
                        }
                        let len = u32::from_le_bytes(
                            buf.get(0..4).ok_or("a data page ends early")?.try_into().unwrap_or([0; 4]),
                        ) as usize;
                        let levels = buf.get(4..4 + len).ok_or("a data page ends early")?;
                        // A page without nulls (the usual case) skips the levels entirely.
                        if !Hybrid::new(0, 1)?.all_equal(levels, num_values as usize, 1)? {
                            def = Some((Hybrid::new(0, 1)?, 4, 4 + len));
                        }
                        pos = 4 + len;
                    }
                    return self.start_page(buf, pos, num_values as usize, encoding, def);
                }
                Page::DataPageV2 {
                    buf,
                    num_values,
                    encoding,
                    num_nulls,
                    def_levels_byte_len,
                    rep_levels_byte_len,
                    ..
                } => {
                    let (rep, def_len) = (rep_levels_byte_len as usize, def_levels_byte_len as usize);
                    let def =
                        (num_nulls != 0).then(|| Hybrid::new(0, 1).map(|h| (h, rep, rep + def_len))).transpose()?;
                    if def.is_some() && buf.len() < rep + def_len {
                        return Err("a data page ends early".into());
                    }
                    return self.start_page(buf, rep + def_len, num_values as usize, encoding, def);
                }
            }
        }
    }

    /// Starts a data page of `rows` rows whose values begin at `pos`.
    fn start_page(
        &mut self,
        buf: Bytes,
        pos: usize,
        rows: usize,
        encoding: Encoding,
        def: Option<(Hybrid, usize, usize)>,
    ) -> Result<(), String> {
        if pos > buf.len() {
            return Err("a data page ends early".into());
        }
        let dict = match encoding {
            // Booleans: PLAIN is bit-packed without run headers, RLE is a length-prefixed
            // hybrid run sequence of width 1.
            // (At most `rows` values: fewer when some rows are null.)
            Encoding::PLAIN if self.phys == Phys::BOOLEAN => Some(Hybrid {
                pos: buf.len(),
                bw: 1,
                bp_bit: pos * 8,
                bp_start: pos * 8,
                bp_left: rows,
                ..Default::default()
            }),
            Encoding::RLE if self.phys == Phys::BOOLEAN => Some(Hybrid::new(pos + 4, 1)?),
            Encoding::PLAIN => None,
            Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY => {
                if !self.have_dict {
                    return Err("dictionary-encoded page without a dictionary".into());
                }
                let bw = *buf.get(pos).ok_or("a data page ends early")? as usize;
                Some(Hybrid::new(pos + 1, bw)?)
            }
            other => return Err(format!("page encoding {other} is not supported")),
        };
        self.page = Some(PageState { buf, dict, pos, def });
        self.left = rows;
        Ok(())
    }

    fn decode_dictionary(&mut self, buf: &[u8], n: usize) -> Result<(), String> {
        match self.kind {
            Kind::Str => {
                let mut pos = 0;
                let mut out = Vec::with_capacity(n + 1);
                out.push(String::new());
                for _ in 0..n {
                    out.push(byte_array(buf, &mut pos)?.to_string());
                }
                self.vals = Vals::Str(out);
            }
            Kind::Int => {
                let mut v = vec![0];
                i64::plain(buf, 0, n, self.phys, &mut v)?;
                self.vals = Vals::Int(v);
            }
            Kind::Float => {
                let mut v = vec![0.0];
                f64::plain(buf, 0, n, self.phys, &mut v)?;
                self.vals = Vals::Float(v);
            }
            Kind::Bool => return Err("a boolean column has a dictionary page".into()),
        }
        self.dict_len = n;
        self.have_dict = true;
        Ok(())
    }

    /// Makes sure the current page has values.
    fn ensure(&mut self) -> Result<(), String> {
        if self.left == 0 {
            self.load()?;
            if self.left == 0 {
                // An empty page: keep going.
                return self.ensure();
            }
        }
        Ok(())
    }

    /// Skips forward to row `row` of the row group, skipping whole pages by the offset index.
    fn skip_to(&mut self, row: usize) -> Result<(), String> {
        if row < self.row {
            return Err("rows were requested out of order".into());
        }
        let mut need = row - self.row;
        while need > 0 {
            if self.left == 0 {
                if let Some(meta) = self.pages.peek_next_page().map_err(|e| e.to_string())?
                    && !meta.is_dict
                    && let Some(rows) = meta.num_rows.or(meta.num_levels)
                    && rows <= need
                {
                    self.pages.skip_next_page().map_err(|e| e.to_string())?;
                    need -= rows;
                    self.row += rows;
                    continue;
                }
                self.ensure()?;
            }
            let k = need.min(self.left);
            // Only non-null rows have a stored value.
            let kv = match self.take_mask(k)? {
                Some(mask) => mask.iter().filter(|&&v| v).count(),
                None => k,
            };
            let w = width(self.phys);
            let page = self.page.as_mut().ok_or("no page")?;
            match &mut page.dict {
                Some(h) => h.skip(&page.buf, kv)?,
                None if self.phys == Phys::BYTE_ARRAY => {
                    for _ in 0..kv {
                        byte_array(&page.buf, &mut page.pos)?;
                    }
                }
                None => page.pos += kv * w,
            }
            self.left -= k;
            need -= k;
            self.row += k;
        }
        Ok(())
    }

    /// Walks `n` rows page by page. `f(cursor, k, out)` appends the values of the next `k`
    /// non-null rows of the current page; null rows then get `fill`. Returns which rows are
    /// valid when some row was null.
    fn each<T: Copy>(
        &mut self,
        n: usize,
        out: &mut Vec<T>,
        fill: T,
        mut f: impl FnMut(&mut Self, usize, &mut Vec<T>) -> Result<(), String>,
    ) -> Result<Option<Vec<bool>>, String> {
        let base = out.len();
        let mut valid: Option<Vec<bool>> = None;
        let mut need = n;
        while need > 0 {
            self.ensure()?;
            let k = need.min(self.left);
            let start = out.len();
            match self.take_mask(k)? {
                None => {
                    f(self, k, out)?;
                    if let Some(v) = valid.as_mut() {
                        v.extend(std::iter::repeat_n(true, k));
                    }
                }
                Some(mask) => {
                    let present = mask.iter().filter(|&&v| v).count();
                    f(self, present, out)?;
                    if out.len() != start + present {
                        return Err("a page holds fewer values than its levels say".into());
                    }
                    expand(out, start, &mask, fill);
                    valid.get_or_insert_with(|| vec![true; start - base]).extend_from_slice(&mask);
                }
            }
            self.left -= k;
            need -= k;
            self.row += k;
        }
        Ok(valid)
    }

    /// Which of the next `k` rows of the current page are non-null; `None` when all are.
    fn take_mask(&mut self, k: usize) -> Result<Option<Vec<bool>>, String> {
        let page = self.page.as_mut().ok_or("no page")?;
        let Some((h, lo, hi)) = page.def.as_mut() else { return Ok(None) };
        let levels = page.buf.get(*lo..*hi).ok_or("a data page ends early")?;
        self.scratch.clear();
        h.read(levels, k, &mut self.scratch)?;
        if self.scratch.iter().all(|&l| l != 0) {
            return Ok(None);
        }
        Ok(Some(self.scratch.iter().map(|&l| l != 0).collect()))
    }

    /// Dictionary indices of the next `k` values into `scratch`. With `check`, every index
    /// is verified against the dictionary (unless its bit width cannot exceed it); without,
    /// the caller must look them up with [`gather`].
    fn indices(&mut self, k: usize, check: bool) -> Result<(), String> {
        let page = self.page.as_mut().ok_or("no page")?;
        let h = page.dict.as_mut().ok_or("no dictionary")?;
        self.scratch.clear();
        h.read(&page.buf, k, &mut self.scratch)?;
        if check && (1u64 << h.bw) > self.dict_len as u64 {
            let limit = self.dict_len as u32;
            if self.scratch.iter().fold(false, |bad, &i| bad | (i >= limit)) {
                return Err(format!("a dictionary index is out of range ({} entries)", self.dict_len));
            }
        }
        Ok(())
    }

    /// This batch's values of a code column as an Arrow array: strings as a dictionary array
    /// over the local values, integers gathered.
    fn locals_array(&mut self) -> Result<ArrayRef, String> {
        match &self.vals {
            Vals::Str(v) => {
                if self.str_values.as_ref().is_none_or(|a| a.len() != v.len()) {
                    self.str_values = Some(Arc::new(StringArray::from_iter_values(v.iter())));
                }
                let values = self.str_values.clone().ok_or("no values")?;
                let keys = Int32Array::from_iter(self.locals.iter().map(|&l| (l != NULL_LOCAL).then_some(l as i32)));
                let dict = DictionaryArray::<Int32Type>::try_new(keys, values).map_err(|e| e.to_string())?;
                Ok(Arc::new(dict))
            }
            Vals::Int(v) => Ok(Arc::new(Int64Array::from_iter(
                self.locals.iter().map(|&l| (l != NULL_LOCAL).then(|| v[l as usize])),
            ))),
            Vals::Float(v) => Ok(Arc::new(Float64Array::from_iter(
                self.locals.iter().map(|&l| (l != NULL_LOCAL).then(|| v[l as usize])),
            ))),
        }
    }

    /// Local codes of the next `n` rows (dimension and filter columns).
    fn read_locals(&mut self, n: usize, out: &mut Vec<u32>) -> Result<(), String> {
        self.each(n, out, NULL_LOCAL, |c, k, out| {
            if c.page.as_ref().is_some_and(|p| p.dict.is_some()) {
                c.indices(k, true)?;
                out.extend(c.scratch.iter().map(|&i| i + 1));
                return Ok(());
            }
            let page = c.page.as_mut().ok_or("no page")?;
            match &mut c.vals {
                Vals::Str(vals) => {
                    for _ in 0..k {
                        let s = byte_array(&page.buf, &mut page.pos)?;
                        let code = match c.plain_str.get(s) {
                            Some(&code) => code,
                            None => {
                                let code = vals.len() as u32;
                                vals.push(s.to_string());
                                c.plain_str.insert(s.to_string(), code);
                                code
                            }
                        };
                        out.push(code);
                    }
                }
                Vals::Int(vals) => {
                    let mut raw = Vec::with_capacity(k);
                    i64::plain(&page.buf, page.pos, k, c.phys, &mut raw)?;
                    page.pos += k * width(c.phys);
                    for x in raw {
                        let code = *c.plain_int.entry(x).or_insert_with(|| {
                            vals.push(x);
                            vals.len() as u32 - 1
                        });
                        out.push(code);
                    }
                }
                Vals::Float(_) => return Err("a float column cannot be read as codes".into()),
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Time buckets of the next `n` rows.
    fn read_buckets(&mut self, n: usize, buckets: &Buckets, out: &mut Vec<u32>) -> Result<(), String> {
        let to_ms = self.time.ok_or("not the time column")?;
        self.each(n, out, SKIP, |c, k, out| {
            if c.page.as_ref().is_some_and(|p| p.dict.is_some()) {
                if c.dict_buckets.len() != c.dict_len {
                    let Vals::Int(v) = &c.vals else { return Err("the time column is not integer".into()) };
                    let mut cursor = 0;
                    let entries = v.get(1..=c.dict_len).ok_or("the dictionary is short")?;
                    c.dict_buckets = entries.iter().map(|&x| buckets.locate(to_ms(x), &mut cursor)).collect();
                }
                c.indices(k, false)?;
                gather(&c.dict_buckets, &c.scratch, out)?;
                return Ok(());
            }
            let page = c.page.as_mut().ok_or("no page")?;
            let mut raw = Vec::with_capacity(k);
            i64::plain(&page.buf, page.pos, k, c.phys, &mut raw)?;
            page.pos += k * width(c.phys);
            out.extend(raw.into_iter().map(|x| buckets.locate(to_ms(x), &mut c.time_cursor)));
            Ok(())
        })?;
        Ok(())
    }

    /// The next `n` values of a numeric column, and which are valid when some are null.
    fn read_numbers<T: Number>(&mut self, n: usize, out: &mut Vec<T>) -> Result<Option<Vec<bool>>, String> {
        self.each(n, out, T::default(), |c, k, out| {
            if c.page.as_ref().is_some_and(|p| p.dict.is_some()) {
                c.indices(k, false)?;
                gather(T::dict(&c.vals).ok_or("the dictionary has another type")?, &c.scratch, out)?;
                return Ok(());
            }
            let page = c.page.as_mut().ok_or("no page")?;
            T::plain(&page.buf, page.pos, k, c.phys, out)?;
            page.pos += k * width(c.phys);
            Ok(())
        })
    }
}

/// Spreads the values appended to `out` after `start` over the rows of `mask`, putting
/// `fill` at the null rows (walking backwards, so it works in place).
fn expand<T: Copy>(out: &mut Vec<T>, start: usize, mask: &[bool], fill: T) {
    let mut vi = out.len() - start;
    out.resize(start + mask.len(), fill);
    for (i, &present) in mask.iter().enumerate().rev() {
        if present {
            vi -= 1;
            out[start + i] = out[start + vi];
        } else {
            out[start + i] = fill;
        }
    }
}

/// `out.push(d[i])` for every index, failing (not panicking) on an index past the
/// dictionary: the bounds check the lookup needs anyway is the validation.
fn gather<T: Copy + Default>(d: &[T], idx: &[u32], out: &mut Vec<T>) -> Result<(), String> {
    let mut bad = false;
    out.extend(idx.iter().map(|&i| match d.get(i as usize) {
        Some(v) => *v,
        None => {
            bad = true;
            T::default()
        }
    }));
    if bad {
        return Err(format!("a dictionary index is out of range ({} entries)", d.len()));
    }
    Ok(())
}

/// One PLAIN byte array (4-byte length, then the bytes) as UTF-8.
fn byte_array<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a str, String> {
    let len = u32::from_le_bytes(
        buf.get(*pos..*pos + 4).ok_or("a byte array value ends early")?.try_into().unwrap_or([0; 4]),
    ) as usize;
    let bytes = buf.get(*pos + 4..*pos + 4 + len).ok_or("a byte array value ends early")?;
    *pos += 4 + len;
    std::str::from_utf8(bytes).map_err(|_| "a string value is not valid UTF-8".to_string())
}

/// Bytes per PLAIN value of a fixed-width physical type.
fn width(phys: Phys) -> usize {
    match phys {
        Phys::INT32 | Phys::FLOAT => 4,
        _ => 8,
    }
}

/// A numeric value type read from pages: its dictionary entries and PLAIN values.
trait Number: Copy + Default {
    fn dict(vals: &Vals) -> Option<&[Self]>;
    /// Appends `n` PLAIN values starting at `pos`.
    fn plain(buf: &[u8], pos: usize, n: usize, phys: Phys, out: &mut Vec<Self>) -> Result<(), String>;
}

fn plain_bytes(buf: &[u8], pos: usize, n: usize, phys: Phys) -> Result<&[u8], String> {
    buf.get(pos..pos + n * width(phys)).ok_or_else(|| "a page ends early".to_string())
}

impl Number for i64 {
    fn dict(vals: &Vals) -> Option<&[i64]> {
        match vals {
            Vals::Int(v) => v.get(1..),
            _ => None,
        }
    }

    fn plain(buf: &[u8], pos: usize, n: usize, phys: Phys, out: &mut Vec<i64>) -> Result<(), String> {
        let bytes = plain_bytes(buf, pos, n, phys)?;
        if phys == Phys::INT32 {
            out.extend(bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as i64));
        } else {
            out.extend(bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))));
        }
        Ok(())
    }
}

impl Number for f64 {
    fn dict(vals: &Vals) -> Option<&[f64]> {
        match vals {
            Vals::Float(v) => v.get(1..),
            _ => None,
        }
    }

    fn plain(buf: &[u8], pos: usize, n: usize, phys: Phys, out: &mut Vec<f64>) -> Result<(), String> {
        let bytes = plain_bytes(buf, pos, n, phys)?;
        if phys == Phys::FLOAT {
            out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64));
        } else {
            out.extend(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_decodes_rle_and_bit_packed_runs() {
        // RLE run of 5 × 3 (bw 2), then one bit-packed group of 8 values 0..8 (bw 3).
        let mut buf = vec![5 << 1, 3];
        let values: Vec<u32> = (0..8).collect();
        let mut bits: u64 = 0;
        for (i, v) in values.iter().enumerate() {
            bits |= u64::from(*v) << (3 * i);
        }
        let mut h = Hybrid::new(0, 2).unwrap();
        let mut out = vec![];
        h.read(&buf, 5, &mut out).unwrap();
        assert_eq!(out, vec![3; 5]);
        buf = vec![(1 << 1) | 1];
        buf.extend_from_slice(&bits.to_le_bytes()[..3]);
        let mut h = Hybrid::new(0, 3).unwrap();
        out.clear();
        h.read(&buf, 2, &mut out).unwrap();
        h.skip(&buf, 3).unwrap();
        h.read(&buf, 3, &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 5, 6, 7]);
        assert!(h.read(&buf, 1, &mut out).is_err(), "reading past the end is an error, not a panic");
        assert!(Hybrid::new(0, 33).is_err());
    }

    #[test]
    fn bit_packed_runs_of_every_width_decode_in_any_split() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for bw in 1..=32usize {
            let n = 8 * 37;
            let mask = (1u64 << bw) - 1;
            let values: Vec<u32> = (0..n).map(|_| (next() & mask) as u32).collect();
            // One bit-packed run of n / 8 groups, then an RLE run of 3 × 1.
            let mut buf = vec![];
            let mut h = ((n / 8) << 1 | 1) as u64;
            loop {
                let b = (h & 0x7f) as u8;
                h >>= 7;
                buf.push(if h > 0 { b | 0x80 } else { b });
                if h == 0 {
                    break;
                }
            }
            let mut bits = vec![0u8; n * bw / 8];
            for (i, v) in values.iter().enumerate() {
                for b in 0..bw {
                    if v >> b & 1 == 1 {
                        bits[(i * bw + b) / 8] |= 1 << ((i * bw + b) % 8);
                    }
                }
            }
            buf.extend_from_slice(&bits);
            buf.push(3 << 1);
            buf.extend_from_slice(&1u32.to_le_bytes()[..bw.div_ceil(8)]);
            let mut want = values.clone();
            want.extend([1, 1, 1]);
            for split in [1usize, 5, 8, 13, 64, 100] {
                let mut h = Hybrid::new(0, bw).unwrap();
                let mut out = vec![];
                let mut at = 0;
                while at < want.len() {
                    let k = split.min(want.len() - at);
                    if at % 3 == 2 {
                        h.skip(&buf, k).unwrap();
                        out.extend_from_slice(&want[at..at + k]);
                    } else {
                        h.read(&buf, k, &mut out).unwrap();
                    }
                    at += k;
                }
                assert_eq!(out, want, "width {bw}, reads of {split}");
            }
        }
    }
}
