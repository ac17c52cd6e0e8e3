//! Arrow IPC stream and Parquet answers: the same rows as JSON, typed. `dateTime` is a
//! timestamp (ms) in the request's zone, each shown dimension field (`carrier|desc`) a string,
//! each metric an int64 (long metrics) or float64 (double metrics), nulls where JSON has null.

use super::{CHUNK_ROWS, View};
use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::error::ArrowError;
use std::sync::Arc;

/// The typed schema of a view's rows.
pub fn schema(view: &View) -> SchemaRef {
    let mut fields =
        vec![Field::new("dateTime", DataType::Timestamp(TimeUnit::Millisecond, Some(view.tz.name().into())), false)];
    for (_, _, header) in view.dim_headers() {
        fields.push(Field::new(header, DataType::Utf8, false));
    }
    for (name, col) in view.metric_columns() {
        fields.push(Field::new(name, col.data_type().clone(), true));
    }
    Arc::new(Schema::new(fields))
}

/// Rows `range` of the view as a typed batch.
pub fn batch(view: &View, schema: &SchemaRef, range: std::ops::Range<usize>) -> Result<RecordBatch, ArrowError> {
    use arrow::array::AsArray;
    let len = range.len();
    let times = view.batch.column(0).as_primitive::<TimestampMillisecondType>().slice(range.start, len);
    let times: TimestampMillisecondArray = times.with_timezone(view.tz.name());
    let mut columns: Vec<ArrayRef> = vec![Arc::new(times)];
    for (d, f, _) in view.dim_headers() {
        let values: StringArray = range.clone().map(|i| Some(view.field_ref(d, f, i))).collect();
        columns.push(Arc::new(values));
    }
    for (_, col) in view.metric_columns() {
        columns.push(col.slice(range.start, len));
    }
    RecordBatch::try_new(schema.clone(), columns)
}

/// An Arrow IPC stream, one record batch of up to [`CHUNK_ROWS`] rows per chunk (so a large
/// answer streams with backpressure like the text formats).
pub struct ArrowChunks {
    view: Arc<View>,
    schema: SchemaRef,
    writer: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
    next: usize,
}

/// The Arrow IPC stream of a view.
pub fn arrow(view: Arc<View>) -> ArrowChunks {
    let schema = schema(&view);
    let writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema).ok();
    let next = view.range.start;
    ArrowChunks { view, schema, writer, next }
}

impl Iterator for ArrowChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let w = self.writer.as_mut()?;
        let end = self.view.range.end;
        if self.next >= end && self.next > self.view.range.start {
            let mut w = self.writer.take()?;
            w.finish().ok()?;
            return Some(std::mem::take(w.get_mut()));
        }
        let stop = (self.next + CHUNK_ROWS).min(end);
        let b = batch(&self.view, &self.schema, self.next..stop).ok()?;
        w.write(&b).ok()?;
        self.next = stop.max(self.next + 1);
        Some(std::mem::take(w.get_mut()))
    }
}

/// The whole view as one Parquet file (zstd), written in row groups of up to 1 M rows.
pub fn parquet(view: &View) -> Result<Vec<u8>, String> {
    let schema = schema(view);
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    let mut at = view.range.start;
    while at < view.range.end {
        let stop = (at + 64 * CHUNK_ROWS).min(view.range.end);
        w.write(&batch(view, &schema, at..stop).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        at = stop;
    }
    w.into_inner().map_err(|e| e.to_string())
}
