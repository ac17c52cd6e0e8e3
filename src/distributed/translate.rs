//! A [`QueryPlan`] as DataFusion logical plans, built with the DataFrame API (never SQL
//! text): the Parquet scan of the plan's files, the time and row filters (row-level security
//! arrives here as plan filters), time buckets in the request's zone, the grouping and every
//! aggregation. Nested averages become a two-level aggregation of their own. What the
//! aggregation returns is quiver's again: post-aggregations, having, sort, topN and count run
//! in the gateway (`engine::finalize`, `engine::shape`).
//!
//! Every expression keeps the local engine's semantics: a null dimension value is the empty
//! string, string predicates compare the value's text, a null never passes a comparison, an
//! integer `in` compares numbers, `x / 0` is 0, sums of no values are 0.

use crate::engine::plan::{AggFunc, AggInput, CmpOp, OutputKind, OutputMetric, PredOp, Predicate, QueryPlan};
use crate::expr::{BinOp, Expr};
use crate::time::{Grain, Interval};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::expr_fn::{coalesce, contains, date_trunc, starts_with};
use datafusion::functions_aggregate::expr_fn::{approx_distinct, avg, count, count_distinct, max, min, sum};
use datafusion::logical_expr::{ExprFunctionExt, cast, ident, in_list, lit, try_cast, when};
use datafusion::prelude::{DataFrame, Expr as Df, ParquetReadOptions, SessionContext};
use std::ops::{Neg, Not};

/// Output column of the (output) time bucket, as UTC epoch milliseconds.
pub const TIME: &str = "__t";
/// Column of a nested average's value.
pub const NESTED: &str = "__n";
const PER: &str = "__p";

/// Output column of group-by `j`.
pub fn dim(j: usize) -> String {
    format!("__d{j}")
}

/// Output column of aggregation `i`.
pub fn agg(i: usize) -> String {
    format!("__a{i}")
}

/// The logical plans of one query: the aggregation at the request grain, and one two-level
/// aggregation per nested average output.
pub struct Frames {
    pub main: DataFrame,
    pub nested: Vec<(String, DataFrame)>,
}

/// Builds the plans of `plan` on `ctx` (a Ballista context: nothing runs until collected).
pub async fn frames(ctx: &SessionContext, plan: &QueryPlan) -> Result<Frames> {
    let paths: Vec<String> = plan.files.iter().map(|f| f.path.to_string_lossy().into_owned()).collect();
    // The files' own schema, from the footers the catalog already holds: DataFusion would
    // otherwise read every footer again, for every query.
    let schema = file_schema(plan)?;
    let opts = ParquetReadOptions { file_extension: "", schema: Some(&schema), ..Default::default() };
    let scan = ctx.read_parquet(paths, opts).await?;
    let t = Translator { plan, schema: scan.schema().as_arrow().clone() };
    let filtered = scan.filter(t.row_filter()?)?;
    let main = t.main(filtered.clone())?;
    let mut nested = Vec::new();
    for o in &plan.outputs {
        if let OutputKind::NestedAvg { of, per } = &o.kind {
            nested.push((o.name.clone(), t.nested(filtered.clone(), of, *per)?));
        }
    }
    Ok(Frames { main, nested })
}

/// The merged Arrow schema of the plan's files as written (not the read types the local
/// engine asks for: dictionaries for strings, timestamps for integer times).
fn file_schema(plan: &QueryPlan) -> Result<arrow::datatypes::Schema> {
    let schemas = plan.files.iter().map(|f| {
        let md = f.metadata.metadata().file_metadata();
        parquet::arrow::parquet_to_arrow_schema(md.schema_descr(), md.key_value_metadata())
            .map(|s| s.with_metadata(Default::default()))
    });
    let schemas = schemas.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow::datatypes::Schema::try_merge(schemas)?)
}

struct Translator<'a> {
    plan: &'a QueryPlan,
    /// The schema DataFusion reads the files with.
    schema: arrow::datatypes::Schema,
}

fn unsupported(what: String) -> DataFusionError {
    DataFusionError::NotImplemented(what)
}

impl Translator<'_> {
    fn column_type(&self, name: &str) -> Result<&DataType> {
        Ok(self
            .schema
            .field_with_name(name)
            .map_err(|_| DataFusionError::Plan(format!("column '{name}' is missing")))?
            .data_type())
    }

    /// The unit a time value of the file counts in, and whether it is a day count.
    fn time_unit(&self) -> Result<TimeUnit> {
        let c = &self.plan.time_column;
        match self.column_type(c)? {
            DataType::Timestamp(u, _) => Ok(*u),
            DataType::Date64 => Ok(TimeUnit::Millisecond),
            DataType::Int64 => Ok(self.plan.files.first().and_then(|f| f.time_unit).unwrap_or(TimeUnit::Millisecond)),
            DataType::Date32 => Ok(TimeUnit::Second),
            dt => Err(unsupported(format!("time column '{c}' of type {dt}"))),
        }
    }

    /// `time ∈ intervals`, on the raw column so Parquet statistics prune row groups.
    fn time_filter(&self) -> Result<Df> {
        let c = &self.plan.time_column;
        let dt = self.column_type(c)?.clone();
        let unit = self.time_unit()?;
        let bound = |ms: i64| -> ScalarValue {
            let v = match unit {
                TimeUnit::Second => ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0),
                TimeUnit::Millisecond => ms,
                TimeUnit::Microsecond => ms.saturating_mul(1000),
                TimeUnit::Nanosecond => ms.saturating_mul(1_000_000),
            };
            match &dt {
                DataType::Timestamp(u, tz) => match u {
                    TimeUnit::Second => ScalarValue::TimestampSecond(Some(v), tz.clone()),
                    TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(v), tz.clone()),
                    TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(v), tz.clone()),
                    TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(v), tz.clone()),
                },
                DataType::Date64 => ScalarValue::Date64(Some(v)),
                DataType::Date32 => ScalarValue::Date32(Some(
                    ms.div_euclid(86_400_000) as i32 + i32::from(ms.rem_euclid(86_400_000) != 0),
                )),
                _ => ScalarValue::Int64(Some(v)),
            }
        };
        let ranges = self
            .plan
            .intervals
            .iter()
            .map(|Interval { start, end }| ident(c).gt_eq(lit(bound(*start))).and(ident(c).lt(lit(bound(*end)))));
        Ok(ranges.reduce(Df::or).unwrap_or(lit(false)))
    }

    /// The row filter: time intervals and every plan predicate.
    fn row_filter(&self) -> Result<Df> {
        let mut f = self.time_filter()?;
        for p in &self.plan.filters {
            f = f.and(self.predicate(p)?);
        }
        Ok(f)
    }

    /// The time column as a timestamp in the request's zone (the same instants).
    fn zoned_time(&self) -> Result<Df> {
        let c = ident(&self.plan.time_column);
        let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        // A naive timestamp counts UTC instants; cast it as UTC first (a direct cast to a zone
        // would read it as that zone's wall clock).
        let as_utc = match self.column_type(&self.plan.time_column)? {
            DataType::Int64 => cast(cast(c, DataType::Timestamp(self.time_unit()?, Some("UTC".into()))), utc),
            _ => cast(c, utc),
        };
        Ok(cast(as_utc, DataType::Timestamp(TimeUnit::Millisecond, Some(self.plan.tz.name().into()))))
    }

    /// The start of the `grain` bucket of each row, as UTC epoch ms (`all`: the first
    /// interval's start, as the local engine prints it).
    fn bucket(&self, grain: Grain) -> Result<Df> {
        if grain == Grain::All {
            return Ok(lit(self.plan.intervals.first().map(|i| i.start).unwrap_or(0)));
        }
        // Quiver's grain names are DataFusion's `date_trunc` units (weeks start on Monday).
        Ok(cast(date_trunc(lit(grain.name()), self.zoned_time()?), DataType::Int64))
    }

    /// A dimension's text: `''` for null, integers in decimal, booleans as `true`/`false`.
    fn text(&self, column: &str) -> Df {
        coalesce(vec![cast(ident(column), DataType::Utf8), lit("")])
    }

    fn predicate(&self, p: &Predicate) -> Result<Df> {
        let dt = self.column_type(&p.column)?.clone();
        let c = ident(&p.column);
        let text = cast(c.clone(), DataType::Utf8);
        let any = |vals: &[String], f: &dyn Fn(Df, Df) -> Df| {
            vals.iter().map(|v| f(text.clone(), lit(v.as_str()))).reduce(Df::or).unwrap_or(lit(false))
        };
        let numeric = |x: Df, op: CmpOp, k: f64| {
            let (x, k) = (x, lit(k));
            match op {
                CmpOp::Eq => x.eq(k),
                CmpOp::Gt => x.gt(k),
                CmpOp::Gte => x.gt_eq(k),
                CmpOp::Lt => x.lt(k),
                CmpOp::Lte => x.lt_eq(k),
            }
        };
        let is_int = dt.is_integer();
        let is_float = dt.is_floating() || matches!(dt, DataType::Decimal128(_, _));
        let test = match &p.op {
            PredOp::Cmp(op, k) if is_int || is_float => numeric(cast(c.clone(), DataType::Float64), *op, *k),
            PredOp::Cmp(op, k) => {
                coalesce(vec![numeric(try_cast(text.clone(), DataType::Float64), *op, *k), lit(false)])
            }
            PredOp::In(v) | PredOp::NotIn(v) if is_int => {
                let nums: Vec<Df> = v.iter().filter_map(|s| s.parse::<i64>().ok()).map(lit).collect();
                let hit =
                    if nums.is_empty() { lit(false) } else { in_list(cast(c.clone(), DataType::Int64), nums, false) };
                if matches!(p.op, PredOp::NotIn(_)) { hit.not() } else { hit }
            }
            PredOp::In(v) | PredOp::NotIn(v) if is_float => {
                let nums: Vec<Df> = v.iter().filter_map(|s| s.parse::<f64>().ok()).map(lit).collect();
                let hit =
                    if nums.is_empty() { lit(false) } else { in_list(cast(c.clone(), DataType::Float64), nums, false) };
                if matches!(p.op, PredOp::NotIn(_)) { hit.not() } else { hit }
            }
            PredOp::StartsWith(_) | PredOp::Contains(_) if is_float => {
                return Err(unsupported(format!("a text match on floating-point column '{}'", p.column)));
            }
            PredOp::In(v) => any(v, &|t, x| t.eq(x)),
            PredOp::NotIn(v) => any(v, &|t, x| t.eq(x)).not(),
            PredOp::StartsWith(v) => any(v, &|t, x| starts_with(t, x)),
            PredOp::Contains(v) => any(v, &|t, x| contains(t, x)),
            PredOp::IsNull => lit(false),
            PredOp::NotNull => lit(true),
        };
        // A null is tested once, by the local engine's own rule.
        when(c.is_null(), lit(p.op.matches_text(None))).otherwise(test)
    }

    /// An arithmetic expression over numeric columns as f64: null if any input is null,
    /// `x / 0` = 0.
    fn arithmetic(&self, e: &Expr, leaf: &dyn Fn(&str) -> Result<Df>) -> Result<Df> {
        Ok(match e {
            Expr::Num(v) => lit(*v),
            Expr::Ref(r) => leaf(r)?,
            Expr::Neg(x) => self.arithmetic(x, leaf)?.neg(),
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.arithmetic(a, leaf)?, self.arithmetic(b, leaf)?);
                binary(*op, a, b, lit(0.0))?
            }
        })
    }

    fn input(&self, input: &AggInput) -> Result<Df> {
        Ok(match input {
            AggInput::Rows => lit(1i64),
            AggInput::Column(c) => ident(c),
            AggInput::Expr(e) => self.arithmetic(e, &|r| Ok(cast(ident(r), DataType::Float64)))?,
        })
    }

    /// Whether aggregation `i` gives integers (as the local accumulators do).
    fn integer_agg(&self, i: usize) -> bool {
        let a = &self.plan.aggregations[i];
        let int_input = match &a.input {
            AggInput::Rows => true,
            AggInput::Column(c) => self.column_type(c).is_ok_and(|t| t.is_integer()),
            AggInput::Expr(_) => false,
        };
        match a.func {
            AggFunc::Count | AggFunc::LongSum | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => true,
            AggFunc::DoubleSum => false,
            AggFunc::Min | AggFunc::Max => int_input,
        }
    }

    /// Aggregation `i`, with its filter, before its final cast.
    fn aggregate(&self, i: usize) -> Result<Df> {
        let a = &self.plan.aggregations[i];
        let mut x = self.input(&a.input)?;
        let distinct = matches!(a.func, AggFunc::CountDistinct | AggFunc::ApproxCountDistinct);
        if let (true, Some(p)) = (distinct, &a.filter) {
            // A FILTER on a distinct aggregate is lost in Ballista's two-phase plan (seen as a
            // count over every row); the values of rows the filter drops become nulls instead.
            x = when(self.predicate(p)?, x).end()?;
        }
        let f = match a.func {
            AggFunc::Count => count(x),
            AggFunc::LongSum => sum(cast(x, DataType::Int64)),
            AggFunc::DoubleSum => sum(cast(x, DataType::Float64)),
            AggFunc::Min => min(x),
            AggFunc::Max => max(x),
            AggFunc::CountDistinct => count_distinct(x),
            AggFunc::ApproxCountDistinct => approx_distinct(x),
        };
        let f = match &a.filter {
            Some(p) if !distinct => f.filter(self.predicate(p)?).build()?,
            _ => f,
        };
        Ok(f.alias(agg(i)))
    }

    /// Aggregation `i`'s column after the aggregate, typed and defaulted like the local one.
    fn finished(&self, i: usize) -> Df {
        let a = &self.plan.aggregations[i];
        let (int, c) = (self.integer_agg(i), ident(agg(i)));
        let typed = cast(c, if int { DataType::Int64 } else { DataType::Float64 });
        let value = match a.func {
            AggFunc::LongSum => coalesce(vec![typed, lit(0i64)]),
            AggFunc::DoubleSum => coalesce(vec![typed, lit(0.0)]),
            AggFunc::Count | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => coalesce(vec![typed, lit(0i64)]),
            AggFunc::Min | AggFunc::Max => typed,
        };
        value.alias(agg(i))
    }

    fn dims(&self) -> Vec<Df> {
        self.plan.group_by.iter().enumerate().map(|(j, g)| self.text(&g.column).alias(dim(j))).collect()
    }

    /// Rows grouped by `keys` (which alias the output time `TIME`), then the dimensions:
    /// `TIME`, the dimension columns and every aggregation, typed.
    fn grouped(&self, rows: DataFrame, mut keys: Vec<Df>) -> Result<DataFrame> {
        keys.extend(self.dims());
        let aggs = (0..self.plan.aggregations.len()).map(|i| self.aggregate(i)).collect::<Result<Vec<_>>>()?;
        let mut out = vec![ident(TIME)];
        out.extend(self.dim_columns());
        out.extend((0..self.plan.aggregations.len()).map(|i| self.finished(i)));
        rows.aggregate(keys, aggs)?.select(out)
    }

    fn dim_columns(&self) -> Vec<Df> {
        (0..self.plan.group_by.len()).map(|j| ident(dim(j))).collect()
    }

    fn main(&self, rows: DataFrame) -> Result<DataFrame> {
        self.grouped(rows, vec![self.bucket(self.plan.grain)?.alias(TIME)])
    }

    /// `of` evaluated per `per` bucket, then averaged per output group: (time, dims, value).
    fn nested(&self, rows: DataFrame, of: &OutputMetric, per: Grain) -> Result<DataFrame> {
        let keys = vec![self.bucket(per)?.alias(PER), self.bucket(self.plan.grain)?.alias(TIME)];
        let typed = self.grouped(rows, keys)?;
        let (value, _) = self.output(of, 0)?;
        let mut keys = vec![ident(TIME)];
        keys.extend(self.dim_columns());
        typed.aggregate(keys, vec![avg(cast(value, DataType::Float64)).alias(NESTED)])
    }

    /// An output metric over the aggregation columns, and whether it is an integer: the local
    /// evaluator's rule (integer arithmetic when every input is an integer and nothing divides).
    fn output(&self, o: &OutputMetric, depth: usize) -> Result<(Df, bool)> {
        if depth > 32 {
            return Err(unsupported("post-aggregations nested more than 32 deep".into()));
        }
        match &o.kind {
            OutputKind::Agg(i) => Ok((ident(agg(*i)), self.integer_agg(*i))),
            OutputKind::NestedAvg { .. } => Err(unsupported("nested averages inside nested averages".into())),
            OutputKind::Post(e) => {
                let mut refs = Vec::new();
                for r in e.refs() {
                    let m = self.plan.outputs.iter().find(|x| x.name == r).ok_or_else(|| {
                        DataFusionError::Plan(format!("post-aggregation refers to unknown metric '{r}'"))
                    })?;
                    refs.push((r, self.output(m, depth + 1)?));
                }
                let int = o.integer && refs.iter().all(|(_, (_, i))| *i) && !e.has_division();
                let leaf = |name: &str| -> Result<Df> {
                    let (x, _) = &refs.iter().find(|(r, _)| r == name).expect("collected above").1;
                    Ok(if int { x.clone() } else { cast(x.clone(), DataType::Float64) })
                };
                let value = if int { int_arithmetic(e, &leaf)? } else { self.arithmetic(e, &leaf)? };
                Ok((value, int))
            }
        }
    }
}

/// `a op b`, with `x / 0` = `zero`.
fn binary(op: BinOp, a: Df, b: Df, zero: Df) -> Result<Df> {
    Ok(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => when(b.clone().eq(zero.clone()), zero).otherwise(a / b)?,
    })
}

/// Integer arithmetic (truncating division, `x / 0` = 0).
fn int_arithmetic(e: &Expr, leaf: &dyn Fn(&str) -> Result<Df>) -> Result<Df> {
    Ok(match e {
        Expr::Num(v) => lit(*v as i64),
        Expr::Ref(r) => leaf(r)?,
        Expr::Neg(x) => int_arithmetic(x, leaf)?.neg(),
        Expr::Bin(op, a, b) => binary(*op, int_arithmetic(a, leaf)?, int_arithmetic(b, leaf)?, lit(0i64))?,
    })
}
