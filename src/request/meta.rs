//! Resolving metadata requests, beside data requests and with the same error constructors: a
//! constrained table request's dimensions, metrics and intervals, and the filters of a
//! dimension-values search.

use super::errors;
use super::params::Params;
use crate::catalog::{Catalog, Dimension, LogicalTable};
use crate::config::GatewayConfig;
use crate::error::Error;
use crate::grammar::datetime;
use crate::grammar::filters::{self, FilterClause};
use crate::time::{Grain, Interval};

/// A constrained table request (`/tables/{t}/{grain}/{dims…}?metrics=&dateTime=`): the
/// dimension names and the requested intervals, checked like a data request's.
pub fn constrained(
    cat: &Catalog,
    cfg: &GatewayConfig,
    t: &LogicalTable,
    g: Grain,
    dims: &[&str],
    params: &Params,
    now: i64,
) -> Result<(Vec<String>, Vec<Interval>), Error> {
    let names: Vec<String> = dims.iter().map(|d| d.split(';').next().unwrap_or("").to_string()).collect();
    let unknown: Vec<&String> = names.iter().filter(|d| !cat.dimensions.contains_key(*d)).collect();
    if !unknown.is_empty() {
        return Err(errors::dimensions_undefined(&unknown));
    }
    let missing: Vec<&String> = names.iter().filter(|d| !t.dimensions.contains(d)).collect();
    if !missing.is_empty() {
        return Err(errors::dimensions_not_in_table(&missing, &t.name));
    }
    if let Some(m) = params.get("metrics").filter(|m| !m.is_empty()) {
        let refs = crate::grammar::metrics::parse(Some(m))?;
        let bad: Vec<&str> = refs.iter().map(|r| r.name.as_str()).filter(|n| !cat.metrics.contains_key(*n)).collect();
        if !bad.is_empty() {
            return Err(errors::metrics_undefined(&bad));
        }
    }
    let ast = datetime::parse(params.get("dateTime"))?;
    let tz = match params.get("timeZone") {
        Some(z) => datetime::parse_time_zone(z)?,
        None => cfg.timezone(),
    };
    let c = datetime::Context { grain: g, tz, now, rrule_max: cfg.query.rrule_max_occurences };
    Ok((names, datetime::evaluate(&ast, &c)?))
}

/// The `filters` of a dimension-values search: clauses on the dimension's own fields only.
pub fn value_filters(d: &Dimension, params: &Params) -> Result<Vec<FilterClause>, Error> {
    let clauses = filters::parse(params.get("filters").unwrap_or(""))?;
    for c in &clauses {
        if c.dimension != d.name {
            return Err(Error::new(
                crate::error::Reason::FilterDimensionUndefined,
                format!(
                    "Filter dimension '{}' is not supported here: the values of '{}' can only be filtered on its own fields.",
                    c.dimension, d.name
                ),
            ));
        }
        if d.field_index(&c.field).is_none() {
            return Err(errors::filter_field_undefined(&c.field, &d.name));
        }
    }
    Ok(clauses)
}
