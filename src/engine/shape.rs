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
        // With a global limit and no topN only the first `count` rows survive: a partial sort
        // (Q5's top 10 of 100,000 suppliers) instead of sorting every group.
        let limit = if shape.top_n.is_none() { shape.count } else { None };
        let idx = lexsort_to_indices(&keys, limit).map_err(EngineError::arrow)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::SortKey;
    use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use std::sync::Arc;

    /// A count under a sort takes a partial sort: the same rows, in the same order (ties
    /// broken by the group key), as sorting everything and cutting.
    #[test]
    fn count_under_a_sort_equals_the_full_sort_cut() {
        let n = 200;
        let schema = Arc::new(Schema::new(vec![
            Field::new("dateTime", DataType::Timestamp(TimeUnit::Millisecond, None), false),
            Field::new("k", DataType::Utf8, false),
            Field::new("m", DataType::Int64, false),
        ]));
        let keys: Vec<String> = (0..n).map(|i| format!("k{:03}", (i * 37) % n)).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMillisecondArray::from(vec![0i64; n])),
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from((0..n as i64).map(|i| i % 7).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        let sort = vec![SortKey { column: SortColumn::Metric("m".into()), descending: true }];
        let full = Shape { having: vec![], sort: sort.clone(), top_n: None, count: None };
        let cut = Shape { having: vec![], sort, top_n: None, count: Some(10) };
        let all = apply(batch.clone(), 1, &full).unwrap();
        assert_eq!(apply(batch, 1, &cut).unwrap(), all.slice(0, 10));
    }
}
