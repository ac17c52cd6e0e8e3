//! The groups a cluster returned, finished by the gateway exactly as local ones are:
//! post-aggregations (`engine::finalize`), then having, sort, topN and count
//! (`engine::shape`).

use super::RemoteGroups;
use super::translate::{NESTED, TIME, agg, dim};
use crate::engine::EngineError;
use crate::engine::finalize::{self, Col, Groups};
use crate::engine::plan::QueryPlan;
use crate::engine::shape;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use std::collections::HashMap;

/// The shaped result and the number of groups the cluster returned.
pub fn finish(plan: &QueryPlan, remote: RemoteGroups) -> Result<(RecordBatch, usize), EngineError> {
    let main = concat(&remote.main)?;
    let n = main.as_ref().map(|b| b.num_rows()).unwrap_or(0);
    let batch = match main {
        Some(main) if n > 0 => {
            let times = int_values(column(&main, TIME)?)?;
            let dims = dims_of(plan, &main)?;
            let aggs =
                (0..plan.aggregations.len()).map(|i| col_of(column(&main, &agg(i))?)).collect::<Result<_, _>>()?;
            let mut nested = HashMap::new();
            for (name, batches) in &remote.nested {
                nested.insert(name.clone(), nested_values(plan, &times, &dims, batches)?);
            }
            finalize::finalize_groups(plan, Groups { times, dims, aggs, nested }, false)?
        }
        _ => finalize::empty_result(plan)?,
    };
    Ok((shape::apply(batch, plan.group_by.len(), &plan.shape)?, n))
}

fn concat(batches: &[RecordBatch]) -> Result<Option<RecordBatch>, EngineError> {
    let Some(first) = batches.first() else { return Ok(None) };
    arrow::compute::concat_batches(&first.schema(), batches).map(Some).map_err(EngineError::arrow)
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, EngineError> {
    b.column_by_name(name).ok_or_else(|| EngineError::Arrow(format!("the cluster's answer lacks column {name}")))
}

/// The group-by columns of an answer, as Utf8.
fn dims_of(plan: &QueryPlan, b: &RecordBatch) -> Result<Vec<ArrayRef>, EngineError> {
    (0..plan.group_by.len())
        .map(|j| arrow::compute::cast(column(b, &dim(j))?, &DataType::Utf8).map_err(EngineError::arrow))
        .collect()
}

fn int_values(a: &ArrayRef) -> Result<Vec<i64>, EngineError> {
    let a = arrow::compute::cast(a, &DataType::Int64).map_err(EngineError::arrow)?;
    Ok(a.as_primitive::<Int64Type>().iter().map(|v| v.unwrap_or(0)).collect())
}

/// An aggregation column as the evaluator's column type (the translator typed it).
fn col_of(a: &ArrayRef) -> Result<Col, EngineError> {
    Ok(match a.data_type() {
        DataType::Int64 => Col::Int(a.as_primitive::<Int64Type>().iter().collect()),
        DataType::Float64 => Col::Float(a.as_primitive::<Float64Type>().iter().collect()),
        dt => return Err(EngineError::Arrow(format!("the cluster returned an aggregation of type {dt}"))),
    })
}

/// Group key: time and dimension values.
fn key(t: i64, dims: &[ArrayRef], i: usize) -> String {
    let mut k = t.to_string();
    for d in dims {
        k.push('\u{1}');
        k.push_str(d.as_string::<i32>().value(i));
    }
    k
}

/// A nested average's values in the order of the main groups (null where it has none).
fn nested_values(
    plan: &QueryPlan,
    times: &[i64],
    dims: &[ArrayRef],
    batches: &[RecordBatch],
) -> Result<Col, EngineError> {
    let mut by_key: HashMap<String, Option<f64>> = HashMap::new();
    if let Some(b) = concat(batches)? {
        let t = int_values(column(&b, TIME)?)?;
        let d = dims_of(plan, &b)?;
        let v = arrow::compute::cast(column(&b, NESTED)?, &DataType::Float64).map_err(EngineError::arrow)?;
        let v = v.as_primitive::<Float64Type>();
        for (i, t) in t.iter().enumerate() {
            by_key.insert(key(*t, &d, i), (!v.is_null(i)).then(|| v.value(i)));
        }
    }
    Ok(Col::Float((0..times.len()).map(|i| by_key.get(&key(times[i], dims, i)).copied().flatten()).collect()))
}
