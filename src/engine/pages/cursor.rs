//! One column chunk read page by page: dictionary and PLAIN values, definition levels, and
//! the local codes, time buckets or numbers each batch needs.

use super::chunks::PageSource;
use super::hybrid::Hybrid;
use super::values::{NULL_LOCAL, Number, Vals, byte_array, expand, gather, plain_bytes, width};
use super::{BATCH, ColSpec, Kind};
use crate::engine::buckets::{Buckets, SKIP};
use arrow::array::{Array, ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, StringArray};
use arrow::buffer::{Buffer, NullBuffer};
use arrow::datatypes::Int32Type;
use bytes::Bytes;
use parquet::basic::{Encoding, Type as Phys};
use parquet::column::page::Page;
use rustc_hash::FxHashMap;
use std::sync::Arc;

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
pub(super) struct Cursor {
    pub(super) pages: PageSource,
    phys: Phys,
    kind: Kind,
    time: Option<fn(i64) -> i64>,
    has_def: bool,
    /// Dictionary entries (then plain-interned values, for code columns).
    pub(super) vals: Vals,
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
    /// The row after the last one the unit reads, when known: pages are decompressed only as
    /// far as they must be to reach it ([`PageSource::get_next_page_upto`]).
    pub(super) end: Option<usize>,
    /// This batch's local codes (code columns).
    pub(super) locals: Vec<u32>,
    /// The local string values as an Arrow array (rebuilt when values are added).
    str_values: Option<ArrayRef>,
    scratch: Vec<u32>,
}

impl Cursor {
    pub(super) fn new(pages: PageSource, s: &ColSpec, has_def: bool) -> Cursor {
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
            end: None,
            locals: Vec::with_capacity(BATCH),
            str_values: None,
            scratch: Vec::with_capacity(BATCH),
        }
    }

    /// Loads the next data page (reading the dictionary page first when there is one).
    fn load(&mut self) -> Result<(), String> {
        loop {
            // A data page starts at the cursor's row (a dictionary page is never cut).
            let upto = self.end.map(|end| end.saturating_sub(self.row));
            let page =
                self.pages.get_next_page_upto(upto).map_err(|e| e.to_string())?.ok_or("the column chunk ends early")?;
            match page {
                Page::DictionaryPage { buf, num_values, .. } => self.dictionary_page(&buf, num_values as usize)?,
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
            Encoding::PLAIN if self.phys == Phys::BOOLEAN => Some(Hybrid::bit_packed_bools(pos, rows)),
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

    /// Reads the chunk's dictionary page (`n` values), which must come before any data page.
    fn dictionary_page(&mut self, buf: &[u8], n: usize) -> Result<(), String> {
        if self.have_dict {
            return Err("a column chunk has two dictionary pages".into());
        }
        // Plain values already read were given local codes the dictionary would replace.
        if self.page.is_some() {
            return Err("a dictionary page follows data pages".into());
        }
        self.decode_dictionary(buf, n)
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
    pub(super) fn skip_to(&mut self, row: usize) -> Result<(), String> {
        if row < self.row {
            return Err("rows were requested out of order".into());
        }
        let mut need = row - self.row;
        while need > 0 {
            if self.left == 0 {
                let meta = self.pages.peek_next_page().map_err(|e| e.to_string())?;
                // The dictionary alone, so the first data page may be skipped too (read-ahead
                // skips the same pages: [`super::ahead`]).
                if meta.as_ref().is_some_and(|m| m.is_dict) {
                    match self.pages.get_next_page().map_err(|e| e.to_string())? {
                        Some(Page::DictionaryPage { buf, num_values, .. }) => {
                            self.dictionary_page(&buf, num_values as usize)?
                        }
                        _ => return Err("the dictionary page the chunk announced is not there".into()),
                    }
                    continue;
                }
                if let Some(rows) = meta.and_then(|m| m.num_rows.or(m.num_levels))
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
        if check && (1u64 << h.bit_width()) > self.dict_len as u64 {
            let limit = self.dict_len as u32;
            if self.scratch.iter().fold(false, |bad, &i| bad | (i >= limit)) {
                return Err(format!("a dictionary index is out of range ({} entries)", self.dict_len));
            }
        }
        Ok(())
    }

    /// This batch's values of a code column as an Arrow array: strings as a dictionary array
    /// over the local values, integers gathered.
    pub(super) fn locals_array(&mut self) -> Result<ArrayRef, String> {
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
    pub(super) fn read_locals(&mut self, n: usize, out: &mut Vec<u32>) -> Result<(), String> {
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
    pub(super) fn read_buckets(&mut self, n: usize, buckets: &Buckets, out: &mut Vec<u32>) -> Result<(), String> {
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

    /// The next `n` values of a numeric column as an Arrow array (Int64 for an integer
    /// column, else Float64): in place when [`Cursor::read_plain_slice`] can, else decoded.
    pub(super) fn numbers_array(&mut self, n: usize) -> Result<ArrayRef, String> {
        Ok(match (self.kind, self.read_plain_slice(n)?) {
            (Kind::Int, Some(b)) => Arc::new(Int64Array::new(b.into(), None)),
            (_, Some(b)) => Arc::new(Float64Array::new(b.into(), None)),
            (Kind::Int, None) => {
                let mut v = Vec::with_capacity(n);
                let valid = self.read_numbers::<i64>(n, &mut v)?;
                Arc::new(Int64Array::new(v.into(), valid.map(NullBuffer::from)))
            }
            _ => {
                let mut v = Vec::with_capacity(n);
                let valid = self.read_numbers::<f64>(n, &mut v)?;
                Arc::new(Float64Array::new(v.into(), valid.map(NullBuffer::from)))
            }
        })
    }

    /// The next `n` values of an 8-byte numeric column (INT64 or DOUBLE) as a slice of the
    /// current page itself, when they are PLAIN, hold no null, lie inside that page and start
    /// at an 8-byte boundary (the usual case: a page's values follow a short run of levels):
    /// no copy. `None` leaves the cursor where it was, for [`Cursor::read_numbers`].
    pub(super) fn read_plain_slice(&mut self, n: usize) -> Result<Option<Buffer>, String> {
        if cfg!(target_endian = "big") || !matches!(self.phys, Phys::INT64 | Phys::DOUBLE) || n == 0 {
            return Ok(None);
        }
        self.ensure()?;
        let page = self.page.as_ref().ok_or("no page")?;
        if n > self.left || page.dict.is_some() || page.def.is_some() {
            return Ok(None);
        }
        let (from, to) = (page.pos, page.pos + n * 8);
        if !(plain_bytes(&page.buf, from, n, self.phys)?.as_ptr() as usize).is_multiple_of(8) {
            return Ok(None);
        }
        let buf = Buffer::from(page.buf.slice(from..to));
        if let Some(p) = self.page.as_mut() {
            p.pos = to;
        }
        self.left -= n;
        self.row += n;
        Ok(Some(buf))
    }

    /// The next `n` values of a numeric column, and which are valid when some are null.
    pub(super) fn read_numbers<T: Number>(&mut self, n: usize, out: &mut Vec<T>) -> Result<Option<Vec<bool>>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::basic::Encoding;

    /// A cursor over one PLAIN DOUBLE chunk whose data pages hold `pages` values each, after
    /// `levels` bytes of definition levels (none when empty).
    fn doubles(pages: &[Vec<f64>], levels: &[u8]) -> Cursor {
        let pages: Vec<Page> = pages
            .iter()
            .map(|vals| {
                let mut buf = Vec::new();
                if !levels.is_empty() {
                    buf.extend((levels.len() as u32).to_le_bytes());
                    buf.extend(levels);
                }
                buf.extend(vals.iter().flat_map(|v| v.to_le_bytes()));
                Page::DataPage {
                    buf: buf.into(),
                    num_values: vals.len() as u32,
                    encoding: Encoding::PLAIN,
                    def_level_encoding: Encoding::RLE,
                    rep_level_encoding: Encoding::RLE,
                    statistics: None,
                }
            })
            .collect();
        let mut specs = Vec::new();
        let i = super::super::entry(&mut specs, "x");
        let mut spec = specs.swap_remove(i);
        (spec.phys, spec.kind, spec.array) = (Phys::DOUBLE, Kind::Float, true);
        Cursor::new(PageSource::Cached { pages: pages.into(), next: 0 }, &spec, !levels.is_empty())
    }

    fn values(b: Buffer) -> Vec<f64> {
        arrow::buffer::ScalarBuffer::<f64>::from(b).to_vec()
    }

    #[test]
    fn plain_doubles_without_nulls_are_read_in_place_within_a_page() {
        let a: Vec<f64> = (0..6000).map(|i| i as f64 * 0.5).collect();
        let b: Vec<f64> = (0..3000).map(|i| -(i as f64)).collect();
        let mut c = doubles(&[a.clone(), b.clone()], &[]);
        // The page's buffer is the allocator's (glibc and mimalloc align it to 16).
        assert_eq!(values(c.read_plain_slice(4096).unwrap().expect("in place")), a[..4096]);
        // The rest of the first page, and then the second, no longer fit one batch: decoded.
        assert!(c.read_plain_slice(4096).unwrap().is_none());
        let mut out = Vec::new();
        assert!(c.read_numbers::<f64>(4096, &mut out).unwrap().is_none());
        assert_eq!(out[..1904], a[4096..]);
        assert_eq!(out[1904..], b[..2192]);
    }

    #[test]
    fn levels_without_nulls_keep_values_in_place_and_misaligned_values_are_copied() {
        let a: Vec<f64> = (0..5000).map(|i| i as f64).collect();
        // One RLE run of 5000 ones: its header (5000 << 1 as a varint, padded to 3 bytes),
        // then the value; with the 4-byte length the values start at byte 8.
        let mut c = doubles(std::slice::from_ref(&a), &[0x90, 0xce, 0x00, 1]);
        assert_eq!(values(c.read_plain_slice(1000).unwrap().expect("aligned")), a[..1000]);
        // The same run with its header padded to 4 bytes: the values start at byte 9.
        let mut c = doubles(std::slice::from_ref(&a), &[0x90, 0xce, 0x80, 0x00, 1]);
        assert!(c.read_plain_slice(1000).unwrap().is_none());
        let mut out = Vec::new();
        assert!(c.read_numbers::<f64>(1000, &mut out).unwrap().is_none());
        assert_eq!(out, a[..1000]);
    }
}
