//! Shaping the aggregated result with Arrow kernels, in Fili's order: having, sort (time
//! bucket first; ties broken by the group keys so output is deterministic), topN per time
//! bucket, then count as a global limit.

use super::EngineError;
use super::plan::{Shape, SortColumn};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{
    SortColumn as ArrowSortColumn, SortOptions, filter_record_batch, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};

fn metric_f64(col: &ArrayRef, i: usize) -> Option<f64> {
    if col.is_null(i) {
        return None;
    }
    match col.data_type() {
        DataType::Int64 => Some(col.as_primitive::<Int64Type>().value(i) as f64),
        DataType::Float64 => Some(col.as_primitive::<Float64Type>().value(i)),
        _ => None,
    }
}

/// Applies `shape` to a result whose columns are `dateTime`, `dims` group columns, metrics.
pub fn apply(batch: RecordBatch, dims: usize, shape: &Shape) -> Result<RecordBatch, EngineError> {
    let mut batch = batch;
    // Having: clauses ANDed; a null value fails every clause.
    if !shape.having.is_empty() && batch.num_rows() > 0 {
        let mut keep = vec![true; batch.num_rows()];
        for h in &shape.having {
            let col = batch
                .column_by_name(&h.metric)
                .ok_or_else(|| EngineError::Unsupported(format!("having refers to unknown metric '{}'", h.metric)))?
                .clone();
            for (i, k) in keep.iter_mut().enumerate() {
                if *k {
                    *k = metric_f64(&col, i).is_some_and(|x| h.test(x));
                }
            }
        }
        batch = filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(EngineError::arrow)?;
    }
    // Sort: time first, requested keys, then every group key ascending.
    if batch.num_rows() > 1 {
        let time_desc = matches!(shape.sort.first(), Some(k) if k.column == SortColumn::Time && k.descending);
        let opts = |desc: bool| SortOptions { descending: desc, nulls_first: !desc };
        let mut keys = vec![ArrowSortColumn { values: batch.column(0).clone(), options: Some(opts(time_desc)) }];
        for k in &shape.sort {
            let values = match &k.column {
                SortColumn::Time => continue,
                SortColumn::Dimension(j) => batch.column(1 + j).clone(),
                SortColumn::Metric(m) => batch
                    .column_by_name(m)
                    .ok_or_else(|| EngineError::Unsupported(format!("sort refers to unknown metric '{m}'")))?
                    .clone(),
            };
            keys.push(ArrowSortColumn { values, options: Some(opts(k.descending)) });
        }
        for j in 0..dims {
            keys.push(ArrowSortColumn { values: batch.column(1 + j).clone(), options: Some(opts(false)) });
        }
        let idx = lexsort_to_indices(&keys, None).map_err(EngineError::arrow)?;
        batch = take_record_batch(&batch, &idx).map_err(EngineError::arrow)?;
    }
    // topN: the first n rows of each time bucket.
    if let Some(n) = shape.top_n {
        let times = batch.column(0).as_primitive::<TimestampMillisecondType>().clone();
        let mut keep = Vec::new();
        let mut run = 0usize;
        for i in 0..batch.num_rows() {
            if i > 0 && times.value(i) != times.value(i - 1) {
                run = 0;
            }
            if run < n {
                keep.push(i as u32);
            }
            run += 1;
        }
        batch = take_record_batch(&batch, &UInt32Array::from(keep)).map_err(EngineError::arrow)?;
    }
    // count: a global limit.
    if let Some(c) = shape.count
        && batch.num_rows() > c
    {
        batch = batch.slice(0, c);
    }
    Ok(batch)
}
