//! From merged group states to output columns: roll base buckets up to output buckets,
//! evaluate post-aggregations and nested averages, and build the Arrow record batch.

use super::EngineError;
use super::accum::{Acc, Value};
use super::buckets::Buckets;
use super::group::{GroupTable, Partial};
use super::plan::{OutputKind, OutputMetric, QueryPlan};
use crate::expr::{BinOp, Expr};
use crate::time::{self, Grain};
use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::Arc;

/// A metric column under construction.
#[derive(Debug, Clone, PartialEq)]
pub enum Col {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
}

impl Col {
    fn get_f64(&self, i: usize) -> Option<f64> {
        match self {
            Col::Int(v) => v[i].map(|x| x as f64),
            Col::Float(v) => v[i],
        }
    }

    /// The Arrow column; `-0.0` becomes `0.0` so it neither prints nor sorts apart from zero.
    pub fn into_array(self) -> ArrayRef {
        match self {
            Col::Int(v) => Arc::new(Int64Array::from(v)),
            Col::Float(v) => {
                Arc::new(Float64Array::from(v.into_iter().map(|x| x.map(|f| f + 0.0)).collect::<Vec<_>>()))
            }
        }
    }
}

/// Groups at some time level, with their merged states.
struct Level {
    groups: GroupTable,
    accs: Vec<Acc>,
    /// Bucket start of each level bucket id.
    bucket_starts: Vec<i64>,
}

/// Re-keys `base` groups by `map(bucket)` and merges their states.
fn rollup(base: &Partial, map: &[u32], starts: Vec<i64>) -> (Level, Vec<u32>) {
    let mut groups = GroupTable::new(base.groups.width());
    let mut accs: Vec<Acc> = base.accs.iter().map(|a| a.empty_like()).collect();
    let mut member = Vec::with_capacity(base.groups.len());
    for g in 0..base.groups.len() {
        let to = groups.id(map[base.groups.buckets[g] as usize], base.groups.codes_of(g)) as usize;
        member.push(to as u32);
        for (i, a) in accs.iter_mut().enumerate() {
            if a.len() <= to {
                a.resize(to + 1);
            }
            a.merge_group(to, &base.accs[i], g, &[]);
        }
    }
    (Level { groups, accs, bucket_starts: starts }, member)
}

/// Evaluates outputs below the top level (the inner buckets of nested averages).
struct Evaluator<'a> {
    plan: &'a QueryPlan,
    base: &'a Partial,
    buckets: &'a Buckets,
    /// Top-level group of each base group.
    top_member: Vec<u32>,
}

/// The values of one accumulator for `n` groups.
fn level_col(acc: &Acc, n: usize) -> Col {
    if acc.is_integer() {
        Col::Int(
            (0..n)
                .map(|g| match acc.value(g) {
                    Value::Int(v) => v,
                    Value::Float(v) => v.map(|x| x as i64),
                })
                .collect(),
        )
    } else {
        Col::Float((0..n).map(|g| acc.value(g).as_f64()).collect())
    }
}

/// A post-aggregation over `cols` (its references) for `n` groups: integer arithmetic when
/// the metric is an integer, every input is, and nothing divides; else floating point.
fn post(expr: &Expr, integer: bool, cols: &HashMap<String, Col>, n: usize) -> Col {
    let all_int = integer && cols.values().all(|c| matches!(c, Col::Int(_))) && !expr.has_division();
    if all_int {
        Col::Int((0..n).map(|i| eval_int(expr, cols, i)).collect())
    } else {
        Col::Float((0..n).map(|i| eval_float(expr, cols, i)).collect())
    }
}

fn find_output<'p>(plan: &'p QueryPlan, name: &str) -> Result<&'p OutputMetric, EngineError> {
    plan.outputs
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| EngineError::Unsupported(format!("post-aggregation refers to unknown metric '{name}'")))
}

impl Evaluator<'_> {
    /// `kind` at a level below the top.
    fn eval(&mut self, kind: &OutputKind, integer: bool, level: &Level) -> Result<Col, EngineError> {
        match kind {
            OutputKind::Agg(i) => Ok(level_col(&level.accs[*i], level.groups.len())),
            OutputKind::Post(expr) => {
                let mut cols: HashMap<String, Col> = HashMap::new();
                for r in expr.refs() {
                    let o = find_output(self.plan, &r)?.clone();
                    let c = self.eval(&o.kind, o.integer, level)?;
                    cols.insert(r, c);
                }
                Ok(post(expr, integer, &cols, level.groups.len()))
            }
            OutputKind::NestedAvg { .. } => Err(EngineError::Unsupported("nested averages cannot be nested".into())),
        }
    }

    /// Sum of `of` per `per` bucket, averaged over the `per` buckets with data in each
    /// output group.
    fn nested(&mut self, of: &OutputMetric, per: Grain, top: &Level) -> Result<Col, EngineError> {
        let tz = self.buckets.tz;
        // Map base buckets to `per` buckets.
        let mut ids: FxHashMap<i64, u32> = FxHashMap::default();
        let mut starts = Vec::new();
        let map: Vec<u32> = (0..self.buckets.len())
            .map(|b| {
                let s = time::floor(per, tz, self.buckets.start(b));
                *ids.entry(s).or_insert_with(|| {
                    starts.push(s);
                    (starts.len() - 1) as u32
                })
            })
            .collect();
        let (mid, member) = rollup(self.base, &map, starts);
        let values = self.eval(&of.kind, of.integer, &mid)?;
        // Each mid group lies in one output group: find it through any base member.
        let mut mid_to_top = vec![u32::MAX; mid.groups.len()];
        let top_of_base = &self.top_member;
        for (bg, m) in member.iter().enumerate() {
            mid_to_top[*m as usize] = top_of_base[bg];
        }
        let mut sum = vec![0.0; top.groups.len()];
        let mut cnt = vec![0u32; top.groups.len()];
        for (m, t) in mid_to_top.iter().enumerate() {
            if let Some(v) = values.get_f64(m)
                && *t != u32::MAX
            {
                sum[*t as usize] += v;
                cnt[*t as usize] += 1;
            }
        }
        Ok(Col::Float(sum.iter().zip(&cnt).map(|(s, c)| if *c == 0 { None } else { Some(s / *c as f64) }).collect()))
    }
}

fn eval_float(e: &Expr, cols: &HashMap<String, Col>, i: usize) -> Option<f64> {
    Some(match e {
        Expr::Num(v) => *v,
        Expr::Ref(r) => cols.get(r)?.get_f64(i)?,
        Expr::Neg(x) => -eval_float(x, cols, i)?,
        Expr::Bin(op, a, b) => op.apply(eval_float(a, cols, i)?, eval_float(b, cols, i)?),
    })
}

fn eval_int(e: &Expr, cols: &HashMap<String, Col>, i: usize) -> Option<i64> {
    Some(match e {
        Expr::Num(v) => *v as i64,
        Expr::Ref(r) => match cols.get(r)? {
            Col::Int(v) => v[i]?,
            Col::Float(v) => v[i]? as i64,
        },
        Expr::Neg(x) => eval_int(x, cols, i)?.wrapping_neg(),
        Expr::Bin(op, a, b) => {
            let (x, y) = (eval_int(a, cols, i)?, eval_int(b, cols, i)?);
            match op {
                BinOp::Add => x.wrapping_add(y),
                BinOp::Sub => x.wrapping_sub(y),
                BinOp::Mul => x.wrapping_mul(y),
                BinOp::Div => {
                    if y == 0 {
                        0
                    } else {
                        x.wrapping_div(y)
                    }
                }
            }
        }
    })
}

/// Output groups with the final values of their aggregations: what the local engine's merged
/// states roll up to, and what a remote engine returns.
pub struct Groups {
    /// Output bucket start (UTC ms) of each group.
    pub times: Vec<i64>,
    /// One Utf8 column per group-by, one value per group.
    pub dims: Vec<ArrayRef>,
    /// One column per aggregation of the plan.
    pub aggs: Vec<Col>,
    /// The value of each nested average output, by output name.
    pub nested: HashMap<String, Col>,
}

/// Builds the unshaped result: `dateTime`, one Utf8 column per group-by, one per visible
/// output metric.
pub fn finalize(plan: &QueryPlan, base: Option<Partial>, buckets: &Buckets) -> Result<RecordBatch, EngineError> {
    let base = base.unwrap_or_else(|| Partial::empty(plan.group_by.len()));
    if base.accs.is_empty() && base.groups.is_empty() {
        return empty_result(plan);
    }
    let (top, member) = rollup(&base, &buckets.outer, buckets.outer_starts.clone());
    let n = top.groups.len();
    let mut ev = Evaluator { plan, base: &base, buckets, top_member: member };
    let mut nested = HashMap::new();
    for o in &plan.outputs {
        if let OutputKind::NestedAvg { of, per } = &o.kind {
            nested.insert(o.name.clone(), ev.nested(of, *per, &top)?);
        }
    }
    let dims = (0..plan.group_by.len())
        .map(|j| {
            let vals: Vec<&str> =
                (0..n).map(|g| base.dims[j].values[top.groups.codes_of(g)[j] as usize].as_str()).collect();
            Arc::new(StringArray::from(vals)) as ArrayRef
        })
        .collect();
    let groups = Groups {
        times: (0..n).map(|g| top.bucket_starts[top.groups.buckets[g] as usize]).collect(),
        dims,
        aggs: top.accs.iter().map(|a| level_col(a, n)).collect(),
        nested,
    };
    finalize_groups(plan, groups, false)
}

/// The unshaped result of a query no row matched.
pub fn empty_result(plan: &QueryPlan) -> Result<RecordBatch, EngineError> {
    let groups = Groups {
        times: vec![],
        dims: plan.group_by.iter().map(|_| Arc::new(StringArray::from(Vec::<&str>::new())) as ArrayRef).collect(),
        aggs: vec![],
        nested: HashMap::new(),
    };
    finalize_groups(plan, groups, true)
}

/// The unshaped result of `groups`: post-aggregations evaluated by name (each once), nested
/// averages taken as given. `empty`: no groups at all (every output takes its declared type).
pub fn finalize_groups(plan: &QueryPlan, groups: Groups, empty: bool) -> Result<RecordBatch, EngineError> {
    let n = groups.times.len();
    let mut fields =
        vec![Field::new("dateTime", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(TimestampMillisecondArray::from(groups.times).with_timezone("UTC"))];
    for (gb, d) in plan.group_by.iter().zip(groups.dims) {
        fields.push(Field::new(&gb.name, DataType::Utf8, false));
        cols.push(d);
    }
    let mut top = Top { plan, aggs: groups.aggs, nested: groups.nested, memo: HashMap::new(), n };
    for o in plan.outputs.iter().filter(|o| !o.hidden) {
        let c = if empty { if o.integer { Col::Int(vec![]) } else { Col::Float(vec![]) } } else { top.named(&o.name)? };
        let dt = match c {
            Col::Int(_) => DataType::Int64,
            Col::Float(_) => DataType::Float64,
        };
        fields.push(Field::new(&o.name, dt, true));
        cols.push(c.into_array());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(EngineError::arrow)
}

/// Evaluates outputs at the top level from final aggregation values, memoizing by name.
struct Top<'a> {
    plan: &'a QueryPlan,
    aggs: Vec<Col>,
    nested: HashMap<String, Col>,
    memo: HashMap<String, Col>,
    n: usize,
}

impl Top<'_> {
    fn named(&mut self, name: &str) -> Result<Col, EngineError> {
        if let Some(c) = self.memo.get(name) {
            return Ok(c.clone());
        }
        let o = find_output(self.plan, name)?;
        let c = match &o.kind {
            OutputKind::Agg(i) => self.aggs[*i].clone(),
            OutputKind::NestedAvg { .. } => self
                .nested
                .get(name)
                .cloned()
                .ok_or_else(|| EngineError::Unsupported(format!("nested average '{name}' was not computed")))?,
            OutputKind::Post(expr) => {
                let mut cols = HashMap::new();
                for r in expr.refs() {
                    let c = self.named(&r)?;
                    cols.insert(r, c);
                }
                post(expr, o.integer, &cols, self.n)
            }
        };
        self.memo.insert(name.to_string(), c.clone());
        Ok(c)
    }
}
