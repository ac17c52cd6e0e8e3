//! Resolving a `/data` request (spec §3): the path and parameters are parsed by the grammars
//! and bound against the catalog in Fili's order, so a URL with several mistakes gets the
//! error Fili would give first.

use super::values::{clause_matches, dimension_rows};
use crate::catalog::{Catalog, Dimension, LogicalTable, MetricKind};
use crate::config::GatewayConfig;
use crate::error::{Error, Reason, java_list};
use crate::grammar::async_after::AsyncAfter;
use crate::grammar::filters::{self, FilterClause, FilterOp};
use crate::grammar::having::{self, HavingClause};
use crate::grammar::metrics::{self, MetricRef};
use crate::grammar::show::{self, Show};
use crate::grammar::sort::{self, SortItem};
use crate::grammar::{datetime, topn};
use crate::time::{Grain, Interval};
use chrono_tz::Tz;
use std::sync::Arc;

/// A grouping dimension with the fields to show (indices into its fields).
#[derive(Debug, Clone)]
pub struct GroupDim {
    pub dim: Arc<Dimension>,
    pub shown: Vec<usize>,
}

/// A requested metric column.
#[derive(Debug, Clone)]
pub struct RequestedMetric {
    /// Output column name (`flights`, `added(reagg=dayAvg)`).
    pub column: String,
    /// Catalog metric.
    pub metric: String,
    /// `reagg=dayAvg|weekAvg|monthAvg`: nested average at this inner grain.
    pub reagg: Option<Grain>,
}

/// A filter after resolution: a predicate on the dimension's key.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    pub dimension: String,
    pub op: crate::engine::plan::PredOp,
    /// The clause as written (for debug output).
    pub clause: String,
}

/// Everything a data request asks for, checked against the catalog.
#[derive(Debug, Clone)]
pub struct DataRequest {
    pub table: String,
    pub grain: Grain,
    pub tz: Tz,
    pub dims: Vec<GroupDim>,
    pub metrics: Vec<RequestedMetric>,
    pub intervals: Vec<Interval>,
    pub date_time_text: String,
    pub filters: Vec<KeyFilter>,
    pub having: Vec<HavingClause>,
    pub sort: Vec<SortItem>,
    pub top_n: Option<usize>,
    pub count: Option<usize>,
}

/// A resolved data request: what it means, how to present it, and when it may become a job.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub meaning: DataRequest,
    pub presentation: super::Presentation,
    /// `asyncAfter`, or the configured default.
    pub async_after: AsyncAfter,
    /// Whether `asyncAfter` was in the request (a default does not ask for a job).
    pub async_after_given: bool,
}

/// The raw inputs of a data request.
pub struct DataInput<'a> {
    /// Decoded path segments after `data/`: table, grain, dimensions (with `;show=`).
    pub segments: &'a [String],
    pub params: &'a super::params::Params,
    pub accept: Option<&'a str>,
    /// `query.default_asyncAfter`, parsed once.
    pub default_async_after: AsyncAfter,
    pub now: i64,
    /// Filters a role always applies (row-level security), in the filters grammar.
    pub forced_filters: &'a [FilterClause],
    /// With auth on, a table that is unknown and one the caller may not see (absent from its
    /// catalog) both answer 404, as on every other endpoint; with auth off Fili's 400 stays.
    pub unknown_table_is_404: bool,
}

fn bad(reason: Reason, msg: impl Into<String>) -> Error {
    Error::new(reason, msg)
}

/// Parses and binds; errors follow spec §3's order.
pub fn resolve(cat: &Catalog, cfg: &GatewayConfig, input: &DataInput) -> Result<Resolved, Error> {
    let p = |n: &str| input.params.get(n).map(str::to_string);
    // 1. format, asyncAfter, paging syntax.
    let format = input.params.format(input.accept)?;
    let async_after = input.params.async_after(input.default_async_after)?;
    let paging = input.params.paging()?;
    // 2. timeZone.
    let tz = match p("timeZone") {
        Some(z) => datetime::parse_time_zone(&z)?,
        None => cfg.timezone(),
    };
    // 3. grain, 4. table at grain.
    let (table_name, grain_text) = match input.segments {
        [t, g, ..] => (t.as_str(), g.as_str()),
        [t] => (t.as_str(), ""),
        [] => ("", ""),
    };
    let grain = Grain::parse(grain_text).ok_or_else(|| {
        bad(
            Reason::GrainInvalid,
            format!("'{grain_text}' is not a valid granularity. Try 'day', 'week', 'month', 'year' or 'all'"),
        )
    })?;
    if input.unknown_table_is_404 && !cat.tables.contains_key(table_name) {
        return Err(bad(Reason::TableNotFound, format!("Table with name '{table_name}' does not exist.")));
    }
    let table = cat
        .tables
        .get(table_name)
        .filter(|t| t.grains.contains(&grain))
        .ok_or_else(|| bad(Reason::TableUndefined, format!("Table with name '{table_name}' does not exist.")))?;
    // 5. grouping dimensions, 6. show.
    let dims = resolve_dimensions(cat, table, &input.segments[2.min(input.segments.len())..])?;
    // 7. metrics.
    let metrics = resolve_metrics(cat, table, grain, p("metrics").as_deref())?;
    // 8. dateTime.
    let ast = datetime::parse(p("dateTime").as_deref())?;
    let ctx = datetime::Context { grain, tz, now: input.now, rrule_max: cfg.query.rrule_max_occurences };
    let intervals = datetime::evaluate(&ast, &ctx)?;
    // 9. filters (the role's forced filters first: they cannot be escaped).
    let mut clauses: Vec<FilterClause> = input.forced_filters.to_vec();
    clauses.extend(filters::parse(&p("filters").unwrap_or_default())?);
    let filters = resolve_filters(cat, cfg, table, &clauses)?;
    // 10. having, 11. sort, 12. count, 13. topN.
    let having = having::parse(&p("having").unwrap_or_default())?;
    for h in &having {
        if !metrics.iter().any(|m| m.column == h.metric) {
            return Err(bad(Reason::HavingMetricUndefined, format!("Having metric '{}' does not exist.", h.metric)));
        }
    }
    let sort = sort::parse(&p("sort").unwrap_or_default())?;
    let unknown: Vec<&str> = sort
        .iter()
        .map(|s| s.column.as_str())
        .filter(|c| {
            *c != "dateTime" && !metrics.iter().any(|m| m.column == *c) && !dims.iter().any(|d| d.dim.name == *c)
        })
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = metrics.iter().map(|m| m.column.as_str()).collect();
        return Err(bad(
            Reason::SortMetricUndefined,
            format!(
                "Requested sort metric(s) '{}' were not selected in the metrics expression.Possible matches: '[{}]'",
                java_list(&unknown),
                names.join(",")
            ),
        ));
    }
    let count = match p("count") {
        Some(c) => topn::parse("count", &c)?,
        None => None,
    };
    let top_n = match p("topN") {
        Some(c) => topn::parse("topN", &c)?,
        None => None,
    };
    if top_n.is_some() && !sort.iter().any(|s| s.column != "dateTime") {
        return Err(bad(
            Reason::TopNWithoutSort,
            "TopN requires at least one metric column to sort on, specified using a query parameter of the form 'sort=metricName|dir' where 'dir' is one of 'asc' (ascending) or 'desc' (descending)",
        ));
    }
    let meaning = DataRequest {
        table: table.name.clone(),
        grain,
        tz,
        dims,
        metrics,
        intervals,
        date_time_text: ast.text,
        filters,
        having,
        sort,
        top_n,
        count,
    };
    let presentation = super::Presentation {
        format,
        paging,
        filename: input.params.filename().map(str::to_string),
        spreadsheet_dates: input.params.spreadsheet_dates()?,
    };
    let async_after_given = input.params.get("asyncAfter").is_some();
    Ok(Resolved { meaning, presentation, async_after, async_after_given })
}

fn resolve_dimensions(cat: &Catalog, table: &LogicalTable, segs: &[String]) -> Result<Vec<GroupDim>, Error> {
    let mut parsed: Vec<show::DimensionSegment> = Vec::new();
    for s in segs.iter().filter(|s| !s.is_empty()) {
        let seg = show::parse(s)?;
        match parsed.iter_mut().find(|p| p.name == seg.name) {
            // A repeated dimension keeps its first position; show clauses merge.
            Some(existing) => {
                if let (Show::Fields(a), Show::Fields(b)) = (&mut existing.show, &seg.show) {
                    for f in b {
                        if !a.contains(f) {
                            a.push(f.clone());
                        }
                    }
                } else if existing.show == Show::Default {
                    existing.show = seg.show;
                }
            }
            None => parsed.push(seg),
        }
    }
    let unknown: Vec<&str> =
        parsed.iter().map(|p| p.name.as_str()).filter(|n| !cat.dimensions.contains_key(*n)).collect();
    if !unknown.is_empty() {
        return Err(super::errors::dimensions_undefined(&unknown));
    }
    let not_in: Vec<&str> =
        parsed.iter().map(|p| p.name.as_str()).filter(|n| !table.dimensions.iter().any(|d| d == n)).collect();
    if !not_in.is_empty() {
        return Err(super::errors::dimensions_not_in_table(&not_in, &table.name));
    }
    let mut out = Vec::new();
    for p in parsed {
        let dim = cat.dimensions[&p.name].clone();
        let shown: Vec<usize> = match &p.show {
            Show::Default => dim.default_fields.iter().filter_map(|f| dim.field_index(f)).collect(),
            Show::All => (0..dim.fields.len()).collect(),
            Show::None => vec![],
            Show::Fields(fs) => {
                let missing: Vec<&String> = fs.iter().filter(|f| dim.field_index(f).is_none()).collect();
                if !missing.is_empty() {
                    return Err(bad(
                        Reason::ShowFieldUndefined,
                        format!(
                            "Dimension field(s) '{}' do not exist for dimension '{}'",
                            java_list(&missing),
                            dim.name
                        ),
                    ));
                }
                fs.iter().filter_map(|f| dim.field_index(f)).collect()
            }
        };
        out.push(GroupDim { dim, shown });
    }
    Ok(out)
}

fn reagg_grain(m: &MetricRef, text: &str) -> Result<Option<Grain>, Error> {
    for (k, _) in &m.params {
        if k != "reagg" {
            return Err(bad(
                Reason::MetricInvalid,
                format!(
                    "Metric expression '{text}' is invalid. (unknown parameter '{k}' of metric '{}'; only 'reagg' is supported)",
                    m.name
                ),
            ));
        }
    }
    match m.param("reagg") {
        None => Ok(None),
        Some("dayAvg") => Ok(Some(Grain::Day)),
        Some("weekAvg") => Ok(Some(Grain::Week)),
        Some("monthAvg") => Ok(Some(Grain::Month)),
        Some(other) => Err(bad(
            Reason::MetricInvalid,
            format!(
                "Metric expression '{text}' is invalid. (reagg '{other}' must be one of dayAvg, weekAvg, monthAvg)"
            ),
        )),
    }
}

fn resolve_metrics(
    cat: &Catalog,
    table: &LogicalTable,
    grain: Grain,
    text: Option<&str>,
) -> Result<Vec<RequestedMetric>, Error> {
    let refs = metrics::parse(text)?;
    let whole = text.unwrap_or_default();
    let unknown: Vec<&str> = refs.iter().map(|r| r.name.as_str()).filter(|n| !cat.metrics.contains_key(*n)).collect();
    if !unknown.is_empty() {
        return Err(super::errors::metrics_undefined(&unknown));
    }
    let mut out = Vec::new();
    let (mut nowhere, mut elsewhere): (Vec<&str>, Vec<&str>) = (vec![], vec![]);
    for r in &refs {
        let reagg = reagg_grain(r, whole)?;
        let m = &cat.metrics[&r.name];
        let in_table = table.metrics.iter().any(|x| x == &r.name);
        if !in_table {
            nowhere.push(&r.name);
        } else if !cat.metric_valid_at(m, grain) {
            elsewhere.push(&r.name);
        }
        out.push(RequestedMetric { column: r.column_name(), metric: r.name.clone(), reagg });
    }
    let mut msgs = Vec::new();
    if !nowhere.is_empty() {
        msgs.push(format!(
            "Requested metric(s) '{}' are not supported by the table '{}' with grain '{grain}'.",
            java_list(&nowhere),
            table.name
        ));
    }
    if !elsewhere.is_empty() {
        let mut valid: Vec<&str> = table
            .grains
            .iter()
            .filter(|g| elsewhere.iter().all(|m| cat.metric_valid_at(&cat.metrics[*m], **g)))
            .map(|g| g.name())
            .collect();
        valid.sort();
        msgs.push(format!(
            "Requested metric(s) '{}' are not supported by the table '{}' with grain '{grain}' Valid grains are '{}'.",
            java_list(&elsewhere),
            table.name,
            java_list(&valid)
        ));
    }
    match msgs.len() {
        0 => {}
        1 => return Err(bad(Reason::MetricNotInTable, msgs.remove(0))),
        _ => return Err(bad(Reason::MetricNotInTable, java_list(&msgs))),
    }
    for m in &out {
        if let Some(inner) = m.reagg {
            if !inner.can_satisfy(grain) {
                return Err(bad(
                    Reason::GrainNotSatisfiable,
                    format!(
                        "Illegal request: query requires time grain '{inner}' which cannot satisfy request time grain '{grain}'."
                    ),
                ));
            }
            if matches!(cat.metrics[&m.metric].kind, MetricKind::NestedAvg { .. }) {
                return Err(bad(
                    Reason::MetricInvalid,
                    format!(
                        "Metric expression '{whole}' is invalid. ('{}' is already an average and cannot be re-aggregated)",
                        m.metric
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Resolves filter clauses against `table`: key-field clauses pass through, others become key
/// sets through the dimension's rows.
pub fn resolve_filters(
    cat: &Catalog,
    cfg: &GatewayConfig,
    table: &LogicalTable,
    clauses: &[FilterClause],
) -> Result<Vec<KeyFilter>, Error> {
    use crate::engine::plan::PredOp;
    let mut out = Vec::new();
    for c in clauses {
        let dim = cat.dimensions.get(&c.dimension).ok_or_else(|| {
            bad(Reason::FilterDimensionUndefined, format!("Filter dimension '{}' does not exist.", c.dimension))
        })?;
        let field =
            dim.field_index(&c.field).ok_or_else(|| super::errors::filter_field_undefined(&c.field, &c.dimension))?;
        if !table.dimensions.contains(&c.dimension) {
            return Err(bad(
                Reason::FilterDimensionNotInTable,
                format!("Filter dimension '{}' is not supported by the table '{}'.", c.dimension, table.name),
            ));
        }
        if matches!(c.op, FilterOp::StartsWith | FilterOp::Contains)
            && !cfg.query.data_filter_substring_operations_enabled
        {
            return Err(bad(
                Reason::FilterOperationDisabled,
                "Filter operations 'startswith' and 'contains' are disabled for data requests.",
            ));
        }
        let op = if field == 0
            && !matches!(c.op, FilterOp::Lt | FilterOp::Lte | FilterOp::Gt | FilterOp::Gte | FilterOp::Between)
        {
            // Key-field filters go to the engine as they are.
            match c.op {
                FilterOp::In | FilterOp::Eq => PredOp::In(c.values.clone()),
                FilterOp::NotIn => PredOp::NotIn(c.values.clone()),
                FilterOp::StartsWith => PredOp::StartsWith(c.values.clone()),
                FilterOp::Contains => PredOp::Contains(c.values.clone()),
                _ => PredOp::In(c.values.clone()),
            }
        } else {
            // Other fields (and ordering operations) resolve through the dimension's rows to
            // key sets. `notin` excludes the keys `in` would select.
            let rows = dimension_rows(cat, dim).map_err(|e| bad(Reason::DataFileUnreadable, e.to_string()))?;
            let positive = if c.op == FilterOp::NotIn { FilterOp::In } else { c.op };
            let keys: Vec<String> = rows
                .rows()
                .iter()
                .filter(|r| clause_matches(positive, &c.values, &r[field]))
                .map(|r| r[0].clone())
                .collect();
            if keys.len() > cfg.query.max_num_filter_values {
                return Err(bad(
                    Reason::FilterTooManyValues,
                    "Too many filtering dimension values found. Request is aborted because it will significantly slows down or timeout Druid query.",
                ));
            }
            if c.op == FilterOp::NotIn { PredOp::NotIn(keys) } else { PredOp::In(keys) }
        };
        out.push(KeyFilter { dimension: c.dimension.clone(), op, clause: c.render() });
    }
    Ok(out)
}
