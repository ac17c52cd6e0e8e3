//! Planning: pick the physical table that answers a [`DataRequest`] most cheaply (Fili's
//! resolution, spec §10) and turn the request into the engine's [`QueryPlan`].

use crate::catalog::base_aggregations;
use crate::catalog::physical::{PhysicalKind, PhysicalTable};
use crate::catalog::{Catalog, LogicalTable, MetricKind};
use crate::config::GatewayConfig;
use crate::engine::plan::{
    AggInput, AggregationPlan, GroupBy, HavingClause, HavingOp, Limits, OutputKind, OutputMetric, Predicate, QueryPlan,
    Shape, SortColumn, SortKey,
};
use crate::error::{Error, Reason, java_list};
use crate::grammar::having::HavingOp as H;
use crate::request::data::DataRequest;
use crate::time::{self, Grain, Interval};
use std::sync::Arc;

/// The grains the rows must be bucketed at: the request grain and every nested inner grain.
fn needed_grains(cat: &Catalog, req: &DataRequest) -> Vec<Grain> {
    let mut g = vec![req.grain];
    let mut add = |x: Grain| {
        if !g.contains(&x) {
            g.push(x)
        }
    };
    for m in &req.metrics {
        if let Some(r) = m.reagg {
            add(r);
        }
        nested_grains(cat, &m.metric, &mut add, 0);
    }
    g
}

fn nested_grains(cat: &Catalog, metric: &str, add: &mut dyn FnMut(Grain), depth: usize) {
    if depth > 32 {
        return;
    }
    match cat.metrics.get(metric).map(|m| &m.kind) {
        Some(MetricKind::NestedAvg { of, per }) => {
            add(*per);
            nested_grains(cat, of, add, depth + 1);
        }
        Some(MetricKind::Post(e)) => e.refs().iter().for_each(|r| nested_grains(cat, r, add, depth + 1)),
        _ => {}
    }
}

/// Why a physical table cannot answer, or `None` when it can.
fn unfit(cat: &Catalog, req: &DataRequest, p: &PhysicalTable, grains: &[Grain]) -> Option<String> {
    for g in grains {
        let zone_ok = p.grain.fixed_ms().is_some() || p.timezone == req.tz || *g == Grain::All;
        if !p.grain.can_satisfy(*g) || !zone_ok {
            return Some(format!(
                "its grain {} in {} cannot answer {g} buckets in {}",
                p.grain,
                p.timezone.name(),
                req.tz.name()
            ));
        }
    }
    for d in req.dims.iter().map(|d| &d.dim.name).chain(req.filters.iter().map(|f| &f.dimension)) {
        if !p.dimensions.contains(d) {
            return Some(format!("it lacks dimension '{d}'"));
        }
    }
    for m in &req.metrics {
        let mut bases = Vec::new();
        base_aggregations(cat, &m.metric, &mut bases);
        for b in bases {
            let ok = match p.kind {
                PhysicalKind::Rollup => p.metrics.contains(&b.name),
                PhysicalKind::Raw => match &b.kind {
                    MetricKind::Aggregation { input, filter, .. } => {
                        input.columns().iter().chain(filter.iter().map(|f| &f.column)).all(|c| p.has_column(c))
                    }
                    _ => true,
                },
            };
            if !ok {
                return Some(format!("it cannot compute metric '{}'", b.name));
            }
        }
    }
    None
}

/// Milliseconds of the request not covered by a table's availability.
fn missing_ms(p: &PhysicalTable, intervals: &[Interval]) -> i64 {
    time::subtract(intervals, &p.availability).iter().map(|i| (i.end - i.start).max(0)).sum()
}

/// Chooses the physical table: every candidate that can answer, then least missing data,
/// coarsest grain, fewest rows.
pub fn choose<'a>(cat: &Catalog, table: &'a LogicalTable, req: &DataRequest) -> Result<&'a Arc<PhysicalTable>, Error> {
    let grains = needed_grains(cat, req);
    let candidates: Vec<&Arc<PhysicalTable>> =
        table.physical.iter().filter(|p| unfit(cat, req, p, &grains).is_none()).collect();
    candidates
        .into_iter()
        .min_by_key(|p| (missing_ms(p, &req.intervals), std::cmp::Reverse(p.grain), p.total_rows()))
        .ok_or_else(|| {
            let dims: Vec<&str> = req.dims.iter().map(|d| d.dim.name.as_str()).collect();
            let metrics: Vec<&str> = req.metrics.iter().map(|m| m.column.as_str()).collect();
            Error::new(
                Reason::TableSchemaUndefined,
                format!(
                    "Table '{}' is incompatible with the dimensions '{}', metrics '{}' and granularity '{}' requested.",
                    table.name,
                    java_list(&dims),
                    java_list(&metrics),
                    req.grain
                ),
            )
        })
}

/// Builds the engine plan for `req` on physical table `p`.
pub fn build(cat: &Catalog, cfg: &GatewayConfig, req: &DataRequest, p: &PhysicalTable) -> Result<QueryPlan, Error> {
    let mut b = Builder { cat, p, aggs: vec![], outputs: vec![] };
    for m in &req.metrics {
        let inner = b.output(&m.metric, 0)?;
        let out = match m.reagg {
            Some(per) => OutputMetric {
                name: m.column.clone(),
                kind: OutputKind::NestedAvg { of: Box::new(inner), per },
                integer: false,
                hidden: false,
            },
            None => OutputMetric { name: m.column.clone(), hidden: false, ..inner },
        };
        match b.outputs.iter_mut().find(|o| o.name == out.name) {
            Some(existing) => existing.hidden = false,
            None => b.outputs.push(out),
        }
    }
    // Visible outputs in request order, hidden helpers after them.
    let order: Vec<&str> = req.metrics.iter().map(|m| m.column.as_str()).collect();
    b.outputs.sort_by_key(|o| order.iter().position(|n| *n == o.name).unwrap_or(usize::MAX));
    let filters = req
        .filters
        .iter()
        .map(|f| Predicate { column: p.column_for(&f.dimension).to_string(), op: f.op.clone() })
        .collect();
    let group_by = req
        .dims
        .iter()
        .map(|d| GroupBy { name: d.dim.name.clone(), column: p.column_for(&d.dim.name).to_string() })
        .collect();
    let shape = Shape {
        having: req.having.iter().map(having_clause).collect(),
        sort: req
            .sort
            .iter()
            .map(|s| SortKey {
                descending: s.descending,
                column: if s.column == "dateTime" {
                    SortColumn::Time
                } else if let Some(i) = req.dims.iter().position(|d| d.dim.name == s.column) {
                    SortColumn::Dimension(i)
                } else {
                    SortColumn::Metric(s.column.clone())
                },
            })
            .collect(),
        top_n: req.top_n,
        count: req.count,
    };
    Ok(QueryPlan {
        files: p.files.clone(),
        time_column: p.time_column.clone(),
        intervals: req.intervals.clone(),
        grain: req.grain,
        tz: req.tz,
        group_by,
        filters,
        aggregations: b.aggs,
        outputs: b.outputs,
        shape,
        limits: Limits {
            max_groups: cfg.query.max_groups,
            max_buckets: cfg.query.max_buckets,
            max_bytes: cfg.query.max_query_bytes,
            threads: cfg.query.scan_threads,
            page_decoder: cfg.query.page_decoder,
            ..Limits::default()
        },
    })
}

fn having_clause(h: &crate::grammar::having::HavingClause) -> HavingClause {
    let (op, negate) = match h.op {
        H::EqualTo => (HavingOp::Eq, false),
        H::GreaterThan => (HavingOp::Gt, false),
        H::LessThan => (HavingOp::Lt, false),
        H::NotEqualTo => (HavingOp::Eq, true),
        H::NotGreaterThan => (HavingOp::Gt, true),
        H::NotLessThan => (HavingOp::Lt, true),
        H::Between => (HavingOp::Between, false),
        H::NotBetween => (HavingOp::Between, true),
    };
    HavingClause { metric: h.metric.clone(), op, negate, values: h.values.clone() }
}

struct Builder<'a> {
    cat: &'a Catalog,
    p: &'a PhysicalTable,
    aggs: Vec<AggregationPlan>,
    outputs: Vec<OutputMetric>,
}

impl Builder<'_> {
    /// The output metric computing catalog metric `name`; its dependencies are added as
    /// hidden outputs.
    fn output(&mut self, name: &str, depth: usize) -> Result<OutputMetric, Error> {
        if depth > 32 {
            return Err(Error::internal(format!("metric '{name}' nests too deeply")));
        }
        let m = self.cat.metrics.get(name).ok_or_else(|| Error::internal(format!("metric '{name}' vanished")))?;
        let kind = match &m.kind {
            MetricKind::Aggregation { func, input, filter } => {
                let plan = if self.p.kind == PhysicalKind::Rollup {
                    let func = func
                        .reaggregate()
                        .ok_or_else(|| Error::internal(format!("'{name}' cannot come from a rollup")))?;
                    AggregationPlan {
                        name: name.into(),
                        func,
                        input: AggInput::Column(self.p.column_for(name).to_string()),
                        filter: None,
                        integer: m.integer,
                    }
                } else {
                    AggregationPlan {
                        name: name.into(),
                        func: *func,
                        input: input.clone(),
                        filter: filter.clone(),
                        integer: m.integer,
                    }
                };
                let idx = match self.aggs.iter().position(|a| a.name == name) {
                    Some(i) => i,
                    None => {
                        self.aggs.push(plan);
                        self.aggs.len() - 1
                    }
                };
                OutputKind::Agg(idx)
            }
            MetricKind::Post(e) => {
                for r in e.refs() {
                    if !self.outputs.iter().any(|o| o.name == r) {
                        let o = self.output(&r, depth + 1)?;
                        self.outputs.push(OutputMetric { hidden: true, ..o });
                    }
                }
                OutputKind::Post(e.clone())
            }
            MetricKind::NestedAvg { of, per } => {
                let inner = self.output(of, depth + 1)?;
                OutputKind::NestedAvg { of: Box::new(inner), per: *per }
            }
        };
        Ok(OutputMetric { name: name.to_string(), kind, integer: m.integer, hidden: false })
    }
}
