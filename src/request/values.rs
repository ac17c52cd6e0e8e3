//! Dimension rows: from the lookup file when configured, else the distinct keys of the fact
//! data (computed once by the engine and cached). Also how a filter clause matches a row.

use crate::catalog::lookup::LookupTable;
use crate::catalog::physical::PhysicalTable;
use crate::catalog::{Catalog, Dimension};
use crate::engine::plan::{CancelToken, GroupBy, Limits, QueryPlan, Shape};
use crate::engine::{self, EngineError};
use crate::grammar::filters::FilterOp;
use crate::time::{Grain, Interval};
use arrow::array::{Array, AsArray};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The rows of a dimension (fields in dimension order, sorted by key).
pub fn dimension_rows(catalog: &Catalog, dim: &Dimension) -> Result<Arc<LookupTable>, EngineError> {
    if let Some(l) = &dim.lookup {
        return Ok(l.clone());
    }
    if let Some(v) = dim.fact_values.get() {
        return Ok(v.clone());
    }
    let mut keys = BTreeSet::new();
    for t in catalog.tables_with_dimension(&dim.name) {
        if let Some(p) = t.physical.iter().find(|p| p.dimensions.contains(&dim.name)) {
            keys.extend(distinct_values(p, p.column_for(&dim.name))?);
        }
    }
    let width = dim.fields.len();
    let rows = keys
        .into_iter()
        .map(|k| {
            let mut r = vec![String::new(); width];
            r[0] = k.clone();
            // With no lookup the key is its own description.
            if let Some(i) = dim.field_index("desc") {
                r[i] = k;
            }
            r
        })
        .collect();
    let table = Arc::new(LookupTable::from_rows(rows));
    let _ = dim.fact_values.set(table.clone());
    Ok(dim.fact_values.get().cloned().unwrap_or(table))
}

fn distinct_values(p: &PhysicalTable, column: &str) -> Result<Vec<String>, EngineError> {
    let plan = QueryPlan {
        files: p.files.clone(),
        time_column: p.time_column.clone(),
        intervals: vec![Interval::new(i64::MIN / 4, i64::MAX / 4)],
        grain: Grain::All,
        tz: chrono_tz::UTC,
        group_by: vec![GroupBy { name: column.to_string(), column: column.to_string() }],
        filters: vec![],
        aggregations: vec![],
        outputs: vec![],
        shape: Shape::default(),
        limits: Limits::default(),
    };
    let r = engine::execute(&plan, &CancelToken::default())?;
    let col = r.batch.column(1).as_string::<i32>();
    Ok((0..col.len()).map(|i| col.value(i).to_string()).collect())
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
