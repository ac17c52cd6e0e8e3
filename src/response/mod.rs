//! Response writers for `/data`: JSON, JSON-API, CSV and debug (spec §5). They read the
//! engine's record batch and the dimension rows; no Parquet or engine internals.

pub mod debug;
pub mod typed;

use crate::catalog::lookup::LookupTable;
use crate::request::data::GroupDim;
use crate::time;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use std::ops::Range;
use std::sync::Arc;

/// How to render a result later (kept with cached answers and stored with async jobs).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RenderSpec {
    pub tz: String,
    /// Grouping dimensions and the indices of their shown fields.
    pub dims: Vec<(String, Vec<usize>)>,
    pub missing: Vec<String>,
    /// Default download name without extension.
    pub stem: String,
}

/// A page of a shaped result, ready to render.
pub struct View {
    /// Zone `dateTime` is printed in.
    pub tz: Tz,
    /// Grouping dimensions with their shown fields, in path order.
    pub dims: Vec<GroupDim>,
    pub batch: RecordBatch,
    pub range: Range<usize>,
    /// Rows of each grouping dimension, for annotation.
    pub lookups: Vec<Arc<LookupTable>>,
    /// `meta` (missingIntervals, pagination), when any.
    pub meta: Option<Value>,
}

impl View {
    fn time(&self, i: usize) -> String {
        let t = self.batch.column(0).as_primitive::<TimestampMillisecondType>().value(i);
        time::format_local(self.tz, t)
    }

    /// `dateTime` as ISO 8601 without zone or fraction (`2013-06-01T13:45:10`).
    fn spreadsheet_time(&self, i: usize) -> String {
        let t = self.batch.column(0).as_primitive::<TimestampMillisecondType>().value(i);
        time::to_local(self.tz, t).format("%Y-%m-%dT%H:%M:%S").to_string()
    }

    fn key(&self, d: usize, i: usize) -> &str {
        self.batch.column(1 + d).as_string::<i32>().value(i)
    }

    /// The value of field `f` of dimension `d` for row `i` ("" when the key has no row).
    pub fn field_ref(&self, d: usize, f: usize, i: usize) -> &str {
        let key = self.key(d, i);
        if f == 0 {
            return key;
        }
        self.lookups[d].get(key).and_then(|r| r.get(f)).map(|s| s.as_str()).unwrap_or("")
    }

    /// The metric columns, by output name.
    pub fn metric_columns(&self) -> Vec<(String, ArrayRef)> {
        let n = self.dims.len();
        self.batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .skip(1 + n)
            .map(|(i, f)| (f.name().clone(), self.batch.column(i).clone()))
            .collect()
    }

    /// `dim|field` column headers.
    pub fn dim_headers(&self) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        for (d, gd) in self.dims.iter().enumerate() {
            for &f in &gd.shown {
                out.push((d, f, format!("{}|{}", gd.dim.name, gd.dim.fields[f].name)));
            }
        }
        out
    }
}

/// A metric cell as JSON: integers for long metrics, floats for double ones, null if none.
pub fn metric_json(col: &ArrayRef, i: usize) -> Value {
    if col.is_null(i) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => {
            let v = col.as_primitive::<Float64Type>().value(i);
            serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}

fn metric_text(col: &ArrayRef, i: usize) -> String {
    match metric_json(col, i) {
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// Rows per chunk of a streamed body (a chunk of a wide JSON result is about 1 MB).
pub const CHUNK_ROWS: usize = 4096;

/// One output format, written as a head, rows and a tail.
pub trait RowWriter: Send + Sync {
    /// What comes before the first row.
    fn head(&mut self, view: &View, out: &mut Vec<u8>);
    /// Row `i` of the view (`first`: no row was written before it).
    fn row(&mut self, view: &View, i: usize, first: bool, out: &mut Vec<u8>);
    /// What comes after the last row.
    fn tail(&mut self, view: &View, out: &mut Vec<u8>);
    /// About how many bytes a row takes (sizes each chunk's buffer once).
    fn row_bytes(&self) -> usize {
        64
    }
}

/// A view rendered in chunks of [`CHUNK_ROWS`] rows (the head in the first, the tail in the
/// last), so a large answer streams with backpressure instead of being built whole.
pub struct Chunks<W> {
    view: Arc<View>,
    next: usize,
    done: bool,
    writer: W,
}

impl<W: RowWriter> Iterator for Chunks<W> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let view = &*self.view;
        let (start, stop) = (view.range.start, view.range.end);
        let end = (self.next + CHUNK_ROWS).min(stop);
        let mut out = Vec::with_capacity(64 + (end - self.next) * self.writer.row_bytes());
        if self.next == start {
            self.writer.head(view, &mut out);
        }
        for i in self.next..end {
            self.writer.row(view, i, i == start, &mut out);
        }
        self.next = end;
        if end == stop {
            self.done = true;
            self.writer.tail(view, &mut out);
        }
        Some(out)
    }
}

fn chunks<W: RowWriter>(view: Arc<View>, writer: W) -> Chunks<W> {
    let next = view.range.start;
    Chunks { view, next, done: false, writer }
}

/// `{"rows": [...], "meta"?: {...}}`, written directly (not through a serde_json::Value
/// tree): the data endpoint's hot path.
pub fn json(view: Arc<View>) -> Chunks<JsonRows> {
    let headers = view.dim_headers().into_iter().map(|(d, f, h)| (d, f, json_key(&h))).collect();
    let metrics = view.metric_columns().into_iter().map(|(n, c)| (json_key(&n), c)).collect();
    chunks(view, JsonRows { headers, metrics, times: TimeCache::default() })
}

/// The JSON format's row writer.
pub struct JsonRows {
    headers: Vec<(usize, usize, Vec<u8>)>,
    metrics: Vec<(Vec<u8>, ArrayRef)>,
    times: TimeCache,
}

impl RowWriter for JsonRows {
    fn head(&mut self, _: &View, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"rows\":[");
    }

    fn row(&mut self, view: &View, i: usize, first: bool, out: &mut Vec<u8>) {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"dateTime\":\"");
        out.extend_from_slice(self.times.get(view, i).as_bytes());
        out.push(b'"');
        for (d, f, key) in &self.headers {
            out.push(b',');
            out.extend_from_slice(key);
            write_json_str(out, view.field_ref(*d, *f, i));
        }
        for (key, col) in &self.metrics {
            out.push(b',');
            out.extend_from_slice(key);
            write_metric(out, col, i);
        }
        out.push(b'}');
    }

    fn tail(&mut self, view: &View, out: &mut Vec<u8>) {
        out.push(b']');
        write_meta(view, out);
        out.push(b'}');
    }

    fn row_bytes(&self) -> usize {
        48 + 32 * (self.headers.len() + self.metrics.len())
    }
}

/// `,"meta":{...}` when the view has one.
fn write_meta(view: &View, out: &mut Vec<u8>) {
    if let Some(meta) = &view.meta {
        out.extend_from_slice(b",\"meta\":");
        let _ = serde_json::to_writer(&mut *out, meta);
    }
}

/// `"name":` with the name escaped.
fn json_key(name: &str) -> Vec<u8> {
    let mut k = serde_json::to_vec(name).unwrap_or_default();
    k.push(b':');
    k
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn write_metric(out: &mut Vec<u8>, col: &ArrayRef, i: usize) {
    let v = metric_json(col, i);
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// Formats each distinct bucket start once (rows come grouped by time).
#[derive(Default)]
struct TimeCache {
    last: Option<(i64, String)>,
}

impl TimeCache {
    fn get(&mut self, view: &View, i: usize) -> &str {
        let t = view.batch.column(0).as_primitive::<TimestampMillisecondType>().value(i);
        if self.last.as_ref().is_none_or(|(lt, _)| *lt != t) {
            self.last = Some((t, time::format_local(view.tz, t)));
        }
        self.last.as_ref().map(|(_, s)| s.as_str()).unwrap_or("")
    }
}

/// JSON-API: rows carry each dimension's key; after the rows, one de-duplicated sidecar per
/// dimension holds the shown fields plus the key.
pub fn jsonapi(view: Arc<View>) -> Chunks<JsonApiRows> {
    let metrics = view.metric_columns();
    let sidecars = view.dims.iter().map(|_| Default::default()).collect();
    chunks(view, JsonApiRows { metrics, sidecars })
}

/// The JSON-API format's row writer.
pub struct JsonApiRows {
    metrics: Vec<(String, ArrayRef)>,
    /// Per dimension: its sidecar entries so far and the keys they cover.
    sidecars: Vec<(Vec<Value>, std::collections::HashSet<String>)>,
}

impl RowWriter for JsonApiRows {
    fn head(&mut self, _: &View, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"rows\":[");
    }

    fn row(&mut self, view: &View, i: usize, first: bool, out: &mut Vec<u8>) {
        if !first {
            out.push(b',');
        }
        let mut m = Map::new();
        m.insert("dateTime".into(), json!(view.time(i)));
        for (d, gd) in view.dims.iter().enumerate() {
            if gd.shown.is_empty() {
                continue;
            }
            let key = view.key(d, i).to_string();
            m.insert(gd.dim.name.clone(), json!(key));
            let (list, seen) = &mut self.sidecars[d];
            if seen.insert(key) {
                let mut fields: Vec<usize> = gd.shown.clone();
                if !fields.contains(&0) {
                    fields.push(0);
                }
                let mut o = Map::new();
                for f in fields {
                    o.insert(gd.dim.fields[f].name.clone(), json!(view.field_ref(d, f, i)));
                }
                list.push(Value::Object(o));
            }
        }
        for (name, col) in &self.metrics {
            m.insert(name.clone(), metric_json(col, i));
        }
        let _ = serde_json::to_writer(&mut *out, &Value::Object(m));
    }

    fn tail(&mut self, view: &View, out: &mut Vec<u8>) {
        out.push(b']');
        for ((list, _), gd) in self.sidecars.iter_mut().zip(&view.dims) {
            if !gd.shown.is_empty() {
                out.push(b',');
                out.extend_from_slice(&json_key(&gd.dim.name));
                let _ = serde_json::to_writer(&mut *out, &std::mem::take(list));
            }
        }
        write_meta(view, out);
        out.push(b'}');
    }
}

/// RFC 4180 cell: quoted when it holds a comma, quote, line break or space.
pub fn csv_cell(s: &str, out: &mut Vec<u8>) {
    if s.contains([',', '"', '\n', '\r', ' ', '\t']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// A text cell that a spreadsheet would run as a formula gets a leading `'` (OWASP's
/// CSV-injection guidance); plain numbers such as `-5` are left alone.
pub fn csv_text(s: &str, protect: bool, out: &mut Vec<u8>) {
    if protect {
        csv_cell(&neutralized(s), out);
    } else {
        csv_cell(s, out);
    }
}

/// `s` with a leading `'` when a spreadsheet would run it as a formula.
pub fn neutralized(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.trim().parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// How CSV cells are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvOptions {
    /// Neutralise text cells that would run as formulas ([`csv_text`]).
    pub protect: bool,
    /// `dateTime` as `2013-06-01T13:45:10`, which spreadsheets import as a date.
    pub spreadsheet_dates: bool,
}

/// CSV: a header line of `dateTime`, `dimension|field` and metric names, then one line a row.
pub fn csv(view: Arc<View>, options: CsvOptions) -> Chunks<CsvRows> {
    let headers = view.dim_headers();
    let metrics = view.metric_columns();
    chunks(view, CsvRows { headers, metrics, options })
}

/// The CSV format's row writer.
pub struct CsvRows {
    headers: Vec<(usize, usize, String)>,
    metrics: Vec<(String, ArrayRef)>,
    options: CsvOptions,
}

impl RowWriter for CsvRows {
    fn head(&mut self, _: &View, out: &mut Vec<u8>) {
        let names = self.headers.iter().map(|h| h.2.as_str()).chain(self.metrics.iter().map(|m| m.0.as_str()));
        csv_cell("dateTime", out);
        for name in names {
            out.push(b',');
            csv_cell(name, out);
        }
        out.extend_from_slice(b"\r\n");
    }

    fn row(&mut self, view: &View, i: usize, _: bool, out: &mut Vec<u8>) {
        if self.options.spreadsheet_dates {
            csv_cell(&view.spreadsheet_time(i), out);
        } else {
            csv_cell(&view.time(i), out);
        }
        for (d, f, _) in &self.headers {
            out.push(b',');
            csv_text(view.field_ref(*d, *f, i), self.options.protect, out);
        }
        for (_, col) in &self.metrics {
            out.push(b',');
            out.extend_from_slice(metric_text(col, i).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    fn tail(&mut self, _: &View, _: &mut Vec<u8>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_numbers_are_not() {
        for (cell, want) in
            [("=1+1", "'=1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("+1+1", "'+1+1"), ("-1+1", "'-1+1"), ("\tx", "'\tx")]
        {
            assert_eq!(neutralized(cell), want);
        }
        for cell in ["-5", "+3.5", "plain", "a=b", ""] {
            assert_eq!(neutralized(cell), cell);
        }
    }
}
