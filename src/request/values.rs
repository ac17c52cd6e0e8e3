//! Dimension rows: from the lookup file when configured, else the distinct keys of the fact
//! data (computed once by the engine and cached). Also how a filter clause matches a row.

use crate::catalog::lookup::LookupTable;
use crate::catalog::physical::PhysicalTable;
use crate::catalog::{Catalog, Dimension};
use crate::engine::plan::{CancelToken, GroupBy, Limits, Predicate, QueryPlan, Shape};
use crate::engine::{self, EngineError};
use crate::grammar::filters::FilterOp;
use crate::time::{Grain, Interval};
use arrow::array::{Array, AsArray};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The rows of a dimension (fields in dimension order, sorted by key): its lookup, or the
/// distinct keys of the facts of this catalog's tables, computed once per snapshot and set of
/// tables (a restricted view granted every table of the dimension reuses the snapshot's).
pub fn dimension_rows(catalog: &Catalog, dim: &Dimension) -> Result<Arc<LookupTable>, EngineError> {
    if let Some(l) = &dim.lookup {
        return Ok(l.clone());
    }
    catalog.values.get_or_try(&format!("facts\n{}\n{}", dim.name, catalog.tables_key(&dim.name)), || {
        let mut keys = BTreeSet::new();
        for t in catalog.tables_with_dimension(&dim.name) {
            if let Some(p) = t.physical.iter().find(|p| p.dimensions.contains(&dim.name)) {
                keys.extend(distinct_values(p, p.column_for(&dim.name), vec![])?);
            }
        }
        Ok(Arc::new(rows_of_keys(dim, keys)))
    })
}

/// Computes every dimension's rows of `catalog` now (at start-up and after a reload), so
/// that no request pays for the scan of the facts.
pub fn warm(catalog: &Catalog) {
    let started = std::time::Instant::now();
    for d in catalog.dimensions.values() {
        if let Err(e) = dimension_rows(catalog, d) {
            tracing::warn!(dimension = %d.name, "cannot list values: {e}");
        }
    }
    tracing::info!(snapshot = catalog.version, "dimension values warmed in {} ms", started.elapsed().as_millis());
}

/// Rows for keys that have no lookup: the key is also its own description.
pub fn rows_of_keys(dim: &Dimension, keys: BTreeSet<String>) -> LookupTable {
    let width = dim.fields.len();
    let rows = keys
        .into_iter()
        .map(|k| {
            let mut r = vec![String::new(); width];
            r[0] = k.clone();
            if let Some(i) = dim.field_index("desc") {
                r[i] = k;
            }
            r
        })
        .collect();
    LookupTable::from_rows(rows)
}

/// The distinct values of `column` in the rows of `p` that pass `filters`.
pub fn distinct_values(p: &PhysicalTable, column: &str, filters: Vec<Predicate>) -> Result<Vec<String>, EngineError> {
    let all = vec![Interval::new(i64::MIN / 4, i64::MAX / 4)];
    let group = vec![GroupBy { name: column.to_string(), column: column.to_string() }];
    let r = engine::execute(&row_scan(p, all, Grain::All, group, filters), &CancelToken::default())?;
    let col = r.batch.column(1).as_string::<i32>();
    Ok((0..col.len()).map(|i| col.value(i).to_string()).collect())
}

/// The UTC days on which `p` has rows passing `filters`, merged into intervals.
pub fn days_with_rows(p: &PhysicalTable, filters: Vec<Predicate>) -> Result<Vec<Interval>, EngineError> {
    if p.availability.is_empty() {
        return Ok(vec![]);
    }
    let plan = row_scan(p, p.availability.clone(), Grain::Day, vec![], filters);
    let r = engine::execute(&plan, &CancelToken::default())?;
    let days = r.batch.column(0).as_primitive::<arrow::datatypes::TimestampMillisecondType>();
    let day = 86_400_000;
    Ok(crate::time::merge(days.values().iter().map(|d| Interval::new(*d, d + day)).collect()))
}

/// A plan that only finds which groups (UTC buckets × `group_by`) hold rows of `p` passing
/// `filters`: no aggregation.
fn row_scan(
    p: &PhysicalTable,
    intervals: Vec<Interval>,
    grain: Grain,
    group_by: Vec<GroupBy>,
    filters: Vec<Predicate>,
) -> QueryPlan {
    QueryPlan {
        files: p.files.clone(),
        time_column: p.time_column.clone(),
        intervals,
        grain,
        tz: chrono_tz::UTC,
        group_by,
        filters,
        aggregations: vec![],
        outputs: vec![],
        shape: Shape::default(),
        // Metadata scans read whole columns once per snapshot: not for the chunk cache.
        limits: Limits { chunk_cache: false, ..Limits::default() },
    }
}

/// Whether a cell matches a filter clause's operation and values. Bound operations compare
/// numerically when both sides are numbers, else as strings.
pub fn clause_matches(op: FilterOp, values: &[String], cell: &str) -> bool {
    let cmp = |v: &str| -> std::cmp::Ordering {
        match (cell.parse::<f64>(), v.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
            _ => cell.cmp(v),
        }
    };
    use std::cmp::Ordering::*;
    match op {
        FilterOp::In | FilterOp::Eq => values.iter().any(|v| v == cell),
        FilterOp::NotIn => !values.iter().any(|v| v == cell),
        FilterOp::StartsWith => values.iter().any(|v| cell.starts_with(v.as_str())),
        FilterOp::Contains => values.iter().any(|v| cell.contains(v.as_str())),
        FilterOp::Lt => values.first().is_some_and(|v| cmp(v) == Less),
        FilterOp::Lte => values.first().is_some_and(|v| cmp(v) != Greater),
        FilterOp::Gt => values.first().is_some_and(|v| cmp(v) == Greater),
        FilterOp::Gte => values.first().is_some_and(|v| cmp(v) != Less),
        // Lower bound inclusive, upper exclusive (spec §4.5).
        FilterOp::Between => values.len() == 2 && cmp(&values[0]) != Less && cmp(&values[1]) == Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn matching() {
        assert!(clause_matches(FilterOp::In, &v(&["a", "b"]), "b"));
        assert!(clause_matches(FilterOp::NotIn, &v(&["a"]), "b"));
        assert!(clause_matches(FilterOp::Contains, &v(&["Air"]), "Delta Air Lines"));
        assert!(clause_matches(FilterOp::StartsWith, &v(&["Del"]), "Delta"));
        assert!(clause_matches(FilterOp::Gt, &v(&["9"]), "10"), "numeric, not string, comparison");
        assert!(clause_matches(FilterOp::Between, &v(&["1", "5"]), "1"));
        assert!(!clause_matches(FilterOp::Between, &v(&["1", "5"]), "5"));
        assert!(clause_matches(FilterOp::Lt, &v(&["b"]), "a"));
    }
}
