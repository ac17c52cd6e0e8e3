//! Per-batch column work: dimension values to integer codes (once per dictionary entry for
//! dictionary-encoded columns), predicate masks, numeric inputs and time values.

use super::EngineError;
use super::plan::PredOp;
use crate::expr::{BinOp, Expr};
use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, Float64Array, Int64Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use rustc_hash::FxHashMap;

/// Interns the values of one dimension column to dense codes; a null value is the empty
/// string (Druid semantics), so null and "" share a code.
#[derive(Debug, Default, Clone)]
pub struct DimCodes {
    by_str: FxHashMap<String, u32>,
    by_int: FxHashMap<i64, u32>,
    /// Codes of small non-negative integers, indexed directly (`SKIP` = unseen).
    by_small: Vec<u32>,
    pub values: Vec<String>,
    /// The integer each value was coded from ([`DimCodes::code_int`]), else `NOT_INT`: merging
    /// partials then matches integers directly instead of hashing their text.
    ints: Vec<i64>,
    /// Approximate bytes held by `values` and the maps, kept as values are added.
    bytes: usize,
}

/// Integers below this are coded through a direct-index array rather than a hash.
const SMALL_INT: i64 = 1 << 22;

/// `DimCodes::ints` of a value not coded from an integer (an integer equal to it still codes
/// correctly: through its text).
const NOT_INT: i64 = i64::MIN;

impl DimCodes {
    #[inline]
    pub fn code_str(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.by_str.get(s) {
            return c;
        }
        let c = self.values.len() as u32;
        self.values.push(s.to_string());
        self.ints.push(NOT_INT);
        self.by_str.insert(s.to_string(), c);
        self.bytes += 2 * s.len() + 56;
        c
    }

    /// The code here of value `c` of `other` (coded the same way: an integer as an integer).
    #[inline]
    pub fn code_from(&mut self, other: &DimCodes, c: usize) -> u32 {
        match other.ints.get(c) {
            Some(&v) if v != NOT_INT => self.code_int(v),
            _ => self.code_str(&other.values[c]),
        }
    }

    /// Codes `v` through its text, remembering the integer.
    fn code_int_text(&mut self, v: i64) -> u32 {
        let c = self.code_str(&v.to_string());
        self.ints[c as usize] = v;
        c
    }

    /// Approximate bytes held (values, maps).
    pub fn approx_bytes(&self) -> usize {
        self.bytes + self.by_small.len() * 4
    }

    #[inline]
    pub fn code_int(&mut self, v: i64) -> u32 {
        if (0..SMALL_INT).contains(&v) {
            let i = v as usize;
            if let Some(&c) = self.by_small.get(i)
                && c != super::buckets::SKIP
            {
                return c;
            }
            let c = self.code_int_text(v);
            if self.by_small.len() <= i {
                self.by_small.resize((i + 1).next_power_of_two().min(SMALL_INT as usize), super::buckets::SKIP);
            }
            self.by_small[i] = c;
            return c;
        }
        if let Some(&c) = self.by_int.get(&v) {
            return c;
        }
        let c = self.code_int_text(v);
        self.by_int.insert(v, c);
        c
    }

    /// Codes of non-null small non-negative integers straight from the direct-index array;
    /// `false` (and nothing written) when some value is out of its range.
    fn fast_ints(&mut self, vals: &[i64], out: &mut Vec<u32>) -> bool {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &v in vals {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if vals.is_empty() || lo < 0 || hi >= SMALL_INT {
            return false;
        }
        if self.by_small.len() <= hi as usize {
            self.by_small.resize((hi as usize + 1).next_power_of_two().min(SMALL_INT as usize), super::buckets::SKIP);
        }
        out.reserve(vals.len());
        for &v in vals {
            let c = self.by_small[v as usize];
            out.push(if c != super::buckets::SKIP { c } else { self.code_int(v) });
        }
        true
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn unsupported(col: &str, dt: &DataType) -> EngineError {
    EngineError::Unsupported(format!("column '{col}' has type {dt}, which cannot be used here"))
}

/// Codes for every row of a dimension column.
pub fn dimension_codes(
    name: &str,
    arr: &ArrayRef,
    codes: &mut DimCodes,
    out: &mut Vec<u32>,
) -> Result<(), EngineError> {
    out.clear();
    let n = arr.len();
    match arr.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d: &DictionaryArray<Int32Type> = arr.as_dictionary();
            let vals = d.values().as_string::<i32>();
            let map: Vec<u32> = (0..vals.len())
                .map(|i| if vals.is_null(i) { codes.code_str("") } else { codes.code_str(vals.value(i)) })
                .collect();
            let null_code = codes.code_str("");
            let keys = d.keys();
            out.extend(keys.values().iter().map(|&k| map.get(k as usize).copied().unwrap_or(null_code)));
            if let Some(nulls) = keys.nulls() {
                for (o, valid) in out.iter_mut().zip(nulls.iter()) {
                    if !valid {
                        *o = null_code;
                    }
                }
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = arrow::compute::cast(arr, &DataType::Utf8).map_err(EngineError::arrow)?;
            let s = s.as_string::<i32>();
            for i in 0..n {
                out.push(if s.is_null(i) { codes.code_str("") } else { codes.code_str(s.value(i)) });
            }
        }
        DataType::Boolean => {
            let b = arr.as_boolean();
            for i in 0..n {
                out.push(if b.is_null(i) {
                    codes.code_str("")
                } else {
                    codes.code_str(if b.value(i) { "true" } else { "false" })
                });
            }
        }
        dt if dt.is_integer() => {
            let v = arrow::compute::cast(arr, &DataType::Int64).map_err(EngineError::arrow)?;
            let v = v.as_primitive::<Int64Type>();
            let null_code = codes.code_str("");
            let vals = v.values();
            if v.null_count() == 0 && codes.fast_ints(vals, out) {
                return Ok(());
            }
            for i in 0..n {
                out.push(if v.is_null(i) { null_code } else { codes.code_int(vals[i]) });
            }
        }
        dt => return Err(unsupported(name, dt)),
    }
    Ok(())
}

/// ANDs `pred` over the rows of `arr` into `mask`.
pub fn apply_predicate(name: &str, op: &PredOp, arr: &ArrayRef, mask: &mut [bool]) -> Result<(), EngineError> {
    let n = arr.len();
    match arr.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d: &DictionaryArray<Int32Type> = arr.as_dictionary();
            let vals = d.values().as_string::<i32>();
            // Evaluated once per dictionary entry, not per row.
            let hit: Vec<bool> = (0..vals.len())
                .map(|i| op.matches_text(if vals.is_null(i) { None } else { Some(vals.value(i)) }))
                .collect();
            let null_hit = op.matches_text(None);
            let keys = d.keys();
            for (i, m) in mask.iter_mut().enumerate().take(n) {
                if *m {
                    *m = if keys.is_null(i) {
                        null_hit
                    } else {
                        hit.get(keys.value(i) as usize).copied().unwrap_or(null_hit)
                    };
                }
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = arrow::compute::cast(arr, &DataType::Utf8).map_err(EngineError::arrow)?;
            let s = s.as_string::<i32>();
            for (i, m) in mask.iter_mut().enumerate().take(n) {
                if *m {
                    *m = op.matches_text(if s.is_null(i) { None } else { Some(s.value(i)) });
                }
            }
        }
        DataType::Boolean => {
            let b = arr.as_boolean();
            let (t, f, nl) = (op.matches_text(Some("true")), op.matches_text(Some("false")), op.matches_text(None));
            for (i, m) in mask.iter_mut().enumerate().take(n) {
                if *m {
                    *m = if b.is_null(i) {
                        nl
                    } else if b.value(i) {
                        t
                    } else {
                        f
                    };
                }
            }
        }
        dt if dt.is_integer() => {
            let v = arrow::compute::cast(arr, &DataType::Int64).map_err(EngineError::arrow)?;
            let v = v.as_primitive::<Int64Type>();
            let null_hit = op.matches_text(None);
            // Each distinct value is tested once, by the same rule the page decoder uses.
            let mut cache: FxHashMap<i64, bool> = FxHashMap::default();
            for (i, m) in mask.iter_mut().enumerate().take(n) {
                if !*m {
                    continue;
                }
                *m = if v.is_null(i) {
                    null_hit
                } else {
                    let x = v.value(i);
                    *cache.entry(x).or_insert_with(|| int_matches(op, x))
                };
            }
        }
        dt if dt.is_floating() || matches!(dt, DataType::Decimal128(_, _)) => {
            let v = arrow::compute::cast(arr, &DataType::Float64).map_err(EngineError::arrow)?;
            let v = v.as_primitive::<Float64Type>();
            for (i, m) in mask.iter_mut().enumerate().take(n) {
                if !*m {
                    continue;
                }
                *m = if v.is_null(i) {
                    op.matches_text(None)
                } else {
                    match op {
                        PredOp::Cmp(c, k) => c.test(v.value(i), *k),
                        PredOp::In(vals) | PredOp::NotIn(vals) => {
                            let hit = vals.iter().any(|t| t.parse::<f64>().is_ok_and(|p| p == v.value(i)));
                            hit == matches!(op, PredOp::In(_))
                        }
                        PredOp::NotNull => true,
                        PredOp::IsNull => false,
                        other => other.matches_text(Some(&v.value(i).to_string())),
                    }
                };
            }
        }
        dt => return Err(unsupported(name, dt)),
    }
    Ok(())
}

/// Whether a non-null integer passes `op`: `in`/`notin` compare numerically, comparisons as
/// f64, the rest on the decimal text. The one rule for integer columns, in both readers.
pub fn int_matches(op: &PredOp, x: i64) -> bool {
    match op {
        PredOp::In(vals) => vals.iter().any(|v| v.parse::<i64>() == Ok(x)),
        PredOp::NotIn(vals) => !vals.iter().any(|v| v.parse::<i64>() == Ok(x)),
        PredOp::Cmp(c, k) => c.test(x as f64, *k),
        other => other.matches_text(Some(&x.to_string())),
    }
}

/// A column as i64 values (cast), with its nulls.
pub fn as_i64(name: &str, arr: &ArrayRef) -> Result<Int64Array, EngineError> {
    if !(arr.data_type().is_numeric() || matches!(arr.data_type(), DataType::Boolean)) {
        return Err(unsupported(name, arr.data_type()));
    }
    let c = arrow::compute::cast(arr, &DataType::Int64).map_err(EngineError::arrow)?;
    Ok(c.as_primitive::<Int64Type>().clone())
}

/// A column as f64 values (cast), with its nulls.
pub fn as_f64(name: &str, arr: &ArrayRef) -> Result<Float64Array, EngineError> {
    if !(arr.data_type().is_numeric() || matches!(arr.data_type(), DataType::Boolean)) {
        return Err(unsupported(name, arr.data_type()));
    }
    let c = arrow::compute::cast(arr, &DataType::Float64).map_err(EngineError::arrow)?;
    Ok(c.as_primitive::<Float64Type>().clone())
}

/// Evaluates an arithmetic expression over numeric columns, vectorized; null where any
/// input is null; x / 0 = 0. Constants stay scalars and intermediate results are computed
/// in place, so `price * (1 - discount) * (1 + tax)` makes one buffer per column read.
pub fn eval_expr(
    expr: &Expr,
    column: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
    n: usize,
) -> Result<Float64Array, EngineError> {
    eval_expr_reusing(expr, column, n, &[])
}

/// [`eval_expr`], taking any subexpression found in `done` (expressions already evaluated
/// over the same rows) from there instead of computing it again.
pub fn eval_expr_reusing(
    expr: &Expr,
    column: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
    n: usize,
    done: &[(&Expr, Float64Array)],
) -> Result<Float64Array, EngineError> {
    Ok(match eval_val(expr, column, done)? {
        Val::Scalar(v) => Float64Array::from(vec![v; n]),
        Val::Col(a) => a,
        Val::Arr(v, nulls) => Float64Array::new(v.into(), nulls),
    })
}

enum Val {
    Scalar(f64),
    /// A column as read (not copied).
    Col(Float64Array),
    /// A computed buffer, reused in place by the next operation.
    Arr(Vec<f64>, Option<NullBuffer>),
}

impl Val {
    /// An owned buffer: computed ones as they are, columns copied.
    fn owned(self) -> (Vec<f64>, Option<NullBuffer>) {
        match self {
            Val::Arr(v, n) => (v, n),
            Val::Col(a) => (a.values().to_vec(), a.nulls().cloned()),
            Val::Scalar(_) => (vec![], None),
        }
    }
}

fn eval_val(
    expr: &Expr,
    column: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
    done: &[(&Expr, Float64Array)],
) -> Result<Val, EngineError> {
    if matches!(expr, Expr::Bin(..) | Expr::Neg(_))
        && let Some((_, a)) = done.iter().find(|(e, _)| *e == expr)
    {
        return Ok(Val::Col(a.clone()));
    }
    Ok(match expr {
        Expr::Num(v) => Val::Scalar(*v),
        Expr::Ref(c) => Val::Col(as_f64(c, &column(c)?)?),
        Expr::Neg(e) => match eval_val(e, column, done)? {
            Val::Scalar(v) => Val::Scalar(-v),
            other => {
                let (mut v, nulls) = other.owned();
                v.iter_mut().for_each(|x| *x = -*x);
                Val::Arr(v, nulls)
            }
        },
        Expr::Bin(op, a, b) => {
            let op = *op;
            match (eval_val(a, column, done)?, eval_val(b, column, done)?) {
                (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(op.apply(x, y)),
                (left, Val::Scalar(y)) => with_scalar(op, left, y, false),
                (Val::Scalar(x), right) => with_scalar(op, right, x, true),
                // Two columns as read: one pass into a new buffer.
                (Val::Col(c), Val::Col(d)) => {
                    let mut v = Vec::with_capacity(c.len());
                    slice_op(op, false, &mut v, Some(c.values()), d.values());
                    Val::Arr(v, NullBuffer::union(c.nulls(), d.nulls()))
                }
                // Otherwise a computed buffer is reused in place.
                (Val::Arr(mut v, na), Val::Col(c)) => {
                    slice_op(op, false, &mut v, None, c.values());
                    Val::Arr(v, NullBuffer::union(na.as_ref(), c.nulls()))
                }
                (Val::Col(c), Val::Arr(mut w, nb)) => {
                    slice_op(op, true, &mut w, None, c.values());
                    Val::Arr(w, NullBuffer::union(c.nulls(), nb.as_ref()))
                }
                (Val::Arr(mut v, na), Val::Arr(w, nb)) => {
                    slice_op(op, false, &mut v, None, &w);
                    Val::Arr(v, NullBuffer::union(na.as_ref(), nb.as_ref()))
                }
            }
        }
    })
}

/// `v op s` (or `s op v` when `swap`): a column as read in one pass into a new buffer, a
/// computed buffer in place.
fn with_scalar(op: BinOp, v: Val, s: f64, swap: bool) -> Val {
    match v {
        Val::Col(c) => {
            let mut out = Vec::with_capacity(c.len());
            scalar_op(op, s, swap, &mut out, Some(c.values()));
            Val::Arr(out, c.nulls().cloned())
        }
        other => {
            let (mut v, nulls) = other.owned();
            scalar_op(op, s, swap, &mut v, None);
            Val::Arr(v, nulls)
        }
    }
}

/// `x op s` (or `s op x` when `swap`) for every `x` of `src` appended to `v`, or of `v` in
/// place when there is no `src`; one monomorphic loop per operator so the compiler
/// vectorizes it; x / 0 = 0.
fn scalar_op(op: BinOp, s: f64, swap: bool, v: &mut Vec<f64>, src: Option<&[f64]>) {
    fn run(f: impl Fn(f64) -> f64, v: &mut Vec<f64>, src: Option<&[f64]>) {
        match src {
            Some(src) => v.extend(src.iter().map(|&x| f(x))),
            None => v.iter_mut().for_each(|x| *x = f(*x)),
        }
    }
    match (op, swap) {
        (BinOp::Add, _) => run(|x| x + s, v, src),
        (BinOp::Mul, _) => run(|x| x * s, v, src),
        (BinOp::Sub, false) => run(|x| x - s, v, src),
        (BinOp::Sub, true) => run(|x| s - x, v, src),
        (BinOp::Div, false) if s == 0.0 => run(|_| 0.0, v, src),
        (BinOp::Div, false) => run(|x| x / s, v, src),
        (BinOp::Div, true) => run(|x| if x == 0.0 { 0.0 } else { s / x }, v, src),
    }
}

/// `x op w[i]` (or `w[i] op x` when `swap`) for the `x` of `src` appended to `v`, or of `v`
/// in place when there is no `src`.
fn slice_op(op: BinOp, swap: bool, v: &mut Vec<f64>, src: Option<&[f64]>, w: &[f64]) {
    fn run(f: impl Fn(f64, f64) -> f64, v: &mut Vec<f64>, src: Option<&[f64]>, w: &[f64]) {
        match src {
            Some(src) => v.extend(src.iter().zip(w).map(|(&x, &y)| f(x, y))),
            None => v.iter_mut().zip(w).for_each(|(x, &y)| *x = f(*x, y)),
        }
    }
    match (op, swap) {
        (BinOp::Add, _) => run(|x, y| x + y, v, src, w),
        (BinOp::Mul, _) => run(|x, y| x * y, v, src, w),
        (BinOp::Sub, false) => run(|x, y| x - y, v, src, w),
        (BinOp::Sub, true) => run(|x, y| y - x, v, src, w),
        (BinOp::Div, false) => run(|x, y| if y == 0.0 { 0.0 } else { x / y }, v, src, w),
        (BinOp::Div, true) => run(|x, y| if x == 0.0 { 0.0 } else { y / x }, v, src, w),
    }
}

/// Time values of a batch in UTC ms.
pub fn time_ms(name: &str, arr: &ArrayRef) -> Result<Vec<i64>, EngineError> {
    let to_ms = crate::datafile::time_unit_to_ms(arr.data_type()).ok_or_else(|| unsupported(name, arr.data_type()))?;
    let v = arrow::compute::cast(arr, &DataType::Int64).map_err(EngineError::arrow)?;
    let v = v.as_primitive::<Int64Type>();
    // Null times never fall in a bucket.
    Ok((0..v.len()).map(|i| if v.is_null(i) { i64::MIN } else { to_ms(v.value(i)) }).collect())
}

/// A mask of rows matching every predicate.
pub fn mask_for(
    preds: &[(String, PredOp)],
    cols: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
    n: usize,
) -> Result<Vec<bool>, EngineError> {
    let mut mask = vec![true; n];
    for (c, op) in preds {
        apply_predicate(c, op, &cols(c)?, &mut mask)?;
    }
    Ok(mask)
}

/// Whether a numeric comparison's column type is integer (used for min/max typing).
pub fn is_integer_type(dt: &DataType) -> bool {
    dt.is_integer() || matches!(dt, DataType::Boolean)
}

/// Validity as a plain bool vector (true = value present).
pub fn validity(arr: &dyn Array) -> Option<Vec<bool>> {
    arr.logical_nulls().map(|n| n.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merging partials codes an integer value as an integer, and it lands on the same code
    /// as its text (a string column elsewhere may have coded "5" first).
    #[test]
    fn code_from_matches_integers_and_text() {
        let mut a = DimCodes::default();
        let (five, x, big) = (a.code_int(5), a.code_str("x"), a.code_int(1 << 40));
        let mut b = DimCodes::default();
        let text_five = b.code_str("5");
        assert_eq!(b.code_from(&a, five as usize), text_five);
        let bx = b.code_from(&a, x as usize);
        assert_eq!(b.values[bx as usize], "x");
        let bbig = b.code_from(&a, big as usize);
        assert_eq!(b.values[bbig as usize], (1i64 << 40).to_string());
        assert_eq!(b.code_int(1 << 40), bbig);
        assert_eq!(b.code_int(5), text_five);
        assert_eq!(b.len(), 3);
    }
}
