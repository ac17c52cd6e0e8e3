//! Response writers for `/data`: JSON, JSON-API, CSV and debug (spec §5). They read the
//! engine's record batch and the dimension rows; no Parquet or engine internals.

use crate::catalog::lookup::LookupTable;
use crate::request::data::GroupDim;
use crate::time;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use std::ops::Range;
use std::sync::Arc;

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

    fn metric_columns(&self) -> Vec<(String, ArrayRef)> {
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

/// `{"rows": [...], "meta"?: {...}}` in chunks of [`CHUNK_ROWS`] rows, so a large answer
/// streams with backpressure instead of being built whole. Written directly (not through a
/// serde_json::Value tree): the data endpoint's hot path.
pub struct JsonChunks {
    view: Arc<View>,
    next: usize,
    started: bool,
    done: bool,
    headers: Vec<(usize, usize, Vec<u8>)>,
    metrics: Vec<(Vec<u8>, ArrayRef)>,
    times: TimeCache,
}

impl JsonChunks {
    pub fn new(view: Arc<View>) -> JsonChunks {
        let headers = view.dim_headers().into_iter().map(|(d, f, h)| (d, f, json_key(&h))).collect();
        let metrics = view.metric_columns().into_iter().map(|(n, c)| (json_key(&n), c)).collect();
        let next = view.range.start;
        JsonChunks { view, next, started: false, done: false, headers, metrics, times: TimeCache::default() }
    }
}

impl Iterator for JsonChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let view = &self.view;
        let end = (self.next + CHUNK_ROWS).min(view.range.end);
        let width = 48 + 32 * (self.headers.len() + self.metrics.len());
        let mut out: Vec<u8> = Vec::with_capacity(64 + (end - self.next) * width);
        if !self.started {
            self.started = true;
            out.extend_from_slice(b"{\"rows\":[");
        }
        for i in self.next..end {
            if i > view.range.start {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"dateTime\":\"");
            out.extend_from_slice(self.times.get(view, i).as_bytes());
            out.push(b'"');
            for (d, f, key) in &self.headers {
                out.push(b',');
                out.extend_from_slice(key);
                write_json_str(&mut out, view.field_ref(*d, *f, i));
            }
            for (key, col) in &self.metrics {
                out.push(b',');
                out.extend_from_slice(key);
                write_metric(&mut out, col, i);
            }
            out.push(b'}');
        }
        self.next = end;
        if end == view.range.end {
            self.done = true;
            out.push(b']');
            if let Some(meta) = &view.meta {
                out.extend_from_slice(b",\"meta\":");
                let _ = serde_json::to_writer(&mut out, meta);
            }
            out.push(b'}');
        }
        Some(out)
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

/// JSON-API in chunks of rows: rows carry each dimension's key; after the rows, one
/// de-duplicated sidecar per dimension holds the shown fields plus the key.
pub struct JsonApiChunks {
    view: Arc<View>,
    next: usize,
    done: bool,
    metrics: Vec<(String, ArrayRef)>,
    /// Per dimension: its sidecar entries so far and the keys they cover.
    sidecars: Vec<(Vec<Value>, std::collections::HashSet<String>)>,
}

impl JsonApiChunks {
    pub fn new(view: Arc<View>) -> JsonApiChunks {
        let metrics = view.metric_columns();
        let sidecars = view.dims.iter().map(|_| Default::default()).collect();
        let next = view.range.start;
        JsonApiChunks { view, next, done: false, metrics, sidecars }
    }

    fn row(&mut self, i: usize) -> Value {
        let view = &self.view;
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
        Value::Object(m)
    }

    fn tail(&mut self, out: &mut Vec<u8>) {
        out.push(b']');
        let view = self.view.clone();
        for ((list, _), gd) in self.sidecars.iter_mut().zip(&view.dims) {
            if !gd.shown.is_empty() {
                out.push(b',');
                out.extend_from_slice(&json_key(&gd.dim.name));
                let _ = serde_json::to_writer(&mut *out, &std::mem::take(list));
            }
        }
        if let Some(meta) = &view.meta {
            out.extend_from_slice(b",\"meta\":");
            let _ = serde_json::to_writer(&mut *out, meta);
        }
        out.push(b'}');
    }
}

impl Iterator for JsonApiChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let (start, stop) = (self.view.range.start, self.view.range.end);
        let end = (self.next + CHUNK_ROWS).min(stop);
        let mut out = Vec::new();
        if self.next == start {
            out.extend_from_slice(b"{\"rows\":[");
        }
        for i in self.next..end {
            if i > start {
                out.push(b',');
            }
            let row = self.row(i);
            let _ = serde_json::to_writer(&mut out, &row);
        }
        self.next = end;
        if end == stop {
            self.done = true;
            self.tail(&mut out);
        }
        Some(out)
    }
}

/// RFC 4180 cell: quoted when it holds a comma, quote, line break or space.
pub fn csv_cell(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r', ' ', '\t']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// CSV in chunks of rows, so a large export streams instead of being built whole.
pub struct CsvChunks {
    view: Arc<View>,
    next: usize,
    header_done: bool,
    headers: Vec<(usize, usize, String)>,
    metrics: Vec<(String, ArrayRef)>,
}

impl CsvChunks {
    pub fn new(view: Arc<View>) -> CsvChunks {
        let headers = view.dim_headers();
        let metrics = view.metric_columns();
        let next = view.range.start;
        CsvChunks { view, next, header_done: false, headers, metrics }
    }
}

impl Iterator for CsvChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut out = String::new();
        if !self.header_done {
            self.header_done = true;
            let mut cells = vec!["dateTime".to_string()];
            cells.extend(self.headers.iter().map(|h| h.2.clone()));
            cells.extend(self.metrics.iter().map(|m| m.0.clone()));
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_cell(c, &mut out);
            }
            out.push_str("\r\n");
        }
        let end = (self.next + CHUNK_ROWS).min(self.view.range.end);
        for i in self.next..end {
            csv_cell(&self.view.time(i), &mut out);
            for (d, f, _) in &self.headers {
                out.push(',');
                csv_cell(self.view.field_ref(*d, *f, i), &mut out);
            }
            for (_, col) in &self.metrics {
                out.push(',');
                out.push_str(&metric_text(col, i));
            }
            out.push_str("\r\n");
        }
        self.next = end;
        if out.is_empty() { None } else { Some(out.into_bytes()) }
    }
}
