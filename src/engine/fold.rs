//! Folding one batch into accumulators: the inputs of each aggregation (columns,
//! expressions sharing their subexpressions, fixed filters) evaluated once per batch, then
//! the accumulator loops ([`super::accum`]).

use super::EngineError;
use super::accum::{self, Acc, Input};
use super::buckets::SKIP;
use super::columns;
use super::hll::hash_str;
use super::plan::{AggFunc, AggInput, QueryPlan};
use crate::expr::Expr;
use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, Float64Array};
use arrow::datatypes::{DataType, Int32Type, Int64Type};

/// Folds one batch into `accs`, grown to `ngroups` groups: row `i` goes to group `gids[i]`
/// (`SKIP` = not aggregated). `col` reads the batch's input columns. With `seen`, every group
/// a row reached is marked there (inside the first aggregation's loop when it can be).
pub fn fold_batch(
    accs: &mut [Acc],
    ngroups: usize,
    gids: &[u32],
    col: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
    n: usize,
    plan: &QueryPlan,
    mut seen: Option<&mut Vec<bool>>,
) -> Result<(), EngineError> {
    let mut evaluated: Vec<(&Expr, Float64Array)> = Vec::new();
    // Sums of doubles without nulls or filters, over few groups, are folded together in
    // one pass after the loop ([`accum::sum_fused`]).
    let mut fused: Vec<(usize, Float64Array)> = Vec::new();
    for (i, (a, acc)) in plan.aggregations.iter().zip(accs.iter_mut()).enumerate() {
        acc.resize(ngroups);
        let mask = match &a.filter {
            Some(f) => {
                let mut m = vec![true; n];
                columns::apply_predicate(&f.column, &f.op, &col(&f.column)?, &mut m)?;
                Some(m)
            }
            None => None,
        };
        // Expressions see the results of earlier ones: `price * (1 - discount)` computed
        // for one metric is reused inside `price * (1 - discount) * (1 + tax)`.
        let arr: Option<ArrayRef> = match &a.input {
            AggInput::Rows => None,
            AggInput::Column(c) => Some(col(c)?),
            AggInput::Expr(e) => {
                let v = columns::eval_expr_reusing(e, col, n, &evaluated)?;
                evaluated.push((e, v.clone()));
                Some(std::sync::Arc::new(v))
            }
        };
        let name = match &a.input {
            AggInput::Column(c) => c.as_str(),
            _ => "expression",
        };
        if let (None, Some(x)) = (&mask, &arr)
            && seen.is_none()
            && acc.fusable()
            && x.null_count() == 0
        {
            fused.push((i, columns::as_f64(name, x)?));
            continue;
        }
        let mark = if i == 0 { seen.take() } else { None };
        update_one(acc, (a.func, name), arr, n, gids, mask.as_deref(), mark)?;
    }
    if let Some(seen) = seen {
        accum::mark_seen(seen, gids);
    }
    let mut sums: Vec<&mut Vec<f64>> = accs
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| fused.iter().any(|(j, _)| j == i))
        .filter_map(|(_, a)| a.sums_mut())
        .collect();
    let inputs: Vec<&[f64]> = fused.iter().map(|(_, x)| x.values().as_ref()).collect();
    accum::sum_fused(&mut sums, gids, &inputs);
    Ok(())
}

fn update_one(
    acc: &mut Acc,
    (func, name): (AggFunc, &str),
    arr: Option<ArrayRef>,
    n: usize,
    gids: &[u32],
    mask: Option<&[bool]>,
    mut seen: Option<&mut Vec<bool>>,
) -> Result<(), EngineError> {
    let mut fold = |acc: &mut Acc, input: &Input| match seen.take() {
        Some(seen) => acc.update_and_mark(gids, mask, input, seen),
        None => acc.update(gids, mask, input),
    };
    let Some(arr) = arr else {
        fold(acc, &Input::Rows);
        return Ok(());
    };
    let valid = columns::validity(arr.as_ref());
    match func {
        AggFunc::Count => fold(acc, &Input::Valid(valid.as_deref())),
        AggFunc::LongSum => {
            let v = columns::as_i64(name, &arr)?;
            fold(acc, &Input::I64(v.values(), valid.as_deref()));
        }
        AggFunc::DoubleSum => {
            let v = columns::as_f64(name, &arr)?;
            fold(acc, &Input::F64(v.values(), valid.as_deref()));
        }
        AggFunc::Min | AggFunc::Max => {
            if matches!(acc, Acc::MinI(_) | Acc::MaxI(_)) {
                let v = columns::as_i64(name, &arr)?;
                fold(acc, &Input::I64(v.values(), valid.as_deref()));
            } else {
                let v = columns::as_f64(name, &arr)?;
                fold(acc, &Input::F64(v.values(), valid.as_deref()));
            }
        }
        AggFunc::CountDistinct => {
            let Some(codes) = acc.distinct_codes() else { return Ok(()) };
            let mut out = Vec::with_capacity(n);
            columns::dimension_codes(name, &arr, codes, &mut out)?;
            if let Some(v) = &valid {
                for (c, ok) in out.iter_mut().zip(v) {
                    if !ok {
                        *c = SKIP;
                    }
                }
            }
            fold(acc, &Input::Codes(&out));
        }
        AggFunc::ApproxCountDistinct => {
            let hashes = value_hashes(name, &arr)?;
            fold(acc, &Input::Hashes(&hashes, valid.as_deref()));
        }
    }
    Ok(())
}

/// Stable hashes of values (dictionary strings hashed once per entry).
fn value_hashes(name: &str, arr: &ArrayRef) -> Result<Vec<u64>, EngineError> {
    let n = arr.len();
    Ok(match arr.data_type() {
        DataType::Dictionary(_, v) if **v == DataType::Utf8 => {
            let d: &DictionaryArray<Int32Type> = arr.as_dictionary();
            let vals = d.values().as_string::<i32>();
            let h: Vec<u64> = (0..vals.len()).map(|i| hash_str(vals.value(i))).collect();
            d.keys().values().iter().map(|&k| h.get(k as usize).copied().unwrap_or(0)).collect()
        }
        dt if dt.is_integer() => {
            let v = arrow::compute::cast(arr, &DataType::Int64).map_err(EngineError::arrow)?;
            v.as_primitive::<Int64Type>().values().iter().map(|&x| hash_str(&x.to_string())).collect()
        }
        _ => {
            let s = arrow::compute::cast(arr, &DataType::Utf8)
                .map_err(|_| EngineError::Unsupported(format!("column '{name}' cannot be counted distinctly")))?;
            let s = s.as_string::<i32>();
            (0..n).map(|i| if s.is_null(i) { 0 } else { hash_str(s.value(i)) }).collect()
        }
    })
}
