//! The one place that decides what a caller may see (DESIGN §6).
//!
//! A principal's catalog is the snapshot restricted to its granted tables
//! ([`catalog_for`]): every handler resolves names against it, so a table a role may not see,
//! its slices, and the dimensions and metrics only it offers do not exist for that role — on
//! every endpoint, in every listing, with the same "does not exist" answer as a name nobody
//! defined. Row-level filters narrow what metadata shows the same way they narrow data:
//! dimension values and availability are computed from the rows the role may see, once per
//! role and snapshot ([`dimension_rows`], [`availability`]).

use crate::auth::Principal;
use crate::catalog::lookup::LookupTable;
use crate::catalog::physical::PhysicalTable;
use crate::catalog::{Catalog, Dimension, LogicalTable};
use crate::config::GatewayConfig;
use crate::engine::plan::Predicate;
use crate::error::{Error, Reason};
use crate::request::data::resolve_filters;
use crate::request::values::{self, rows_of_keys};
use crate::time::{self, Interval};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The catalog `principal` sees: the whole snapshot for a principal granted every table, else
/// the snapshot restricted to its grants.
pub fn catalog_for(snapshot: &Arc<Catalog>, principal: &Principal) -> Arc<Catalog> {
    match &principal.tables {
        None => snapshot.clone(),
        Some(granted) => snapshot.restricted(&granted.iter().cloned().collect()),
    }
}

fn unreadable(e: crate::engine::EngineError) -> Error {
    Error::new(Reason::DataFileUnreadable, e.to_string())
}

/// The role's filters as a memo key (empty when it has none).
fn filters_key(principal: &Principal) -> String {
    principal.filters.iter().map(|c| c.render()).collect::<Vec<_>>().join(",")
}

/// The role's row-level filters as predicates on `p`, or `None` when they cannot apply to it
/// (a filter dimension the table or slice lacks): the role then sees no row of `p`, as the
/// data endpoint answers it no row either.
fn role_predicates(
    cat: &Catalog,
    cfg: &GatewayConfig,
    principal: &Principal,
    t: &LogicalTable,
    p: &PhysicalTable,
) -> Option<Vec<Predicate>> {
    let filters = resolve_filters(cat, cfg, t, &principal.filters).ok()?;
    if !filters.iter().all(|f| p.dimensions.contains(&f.dimension)) {
        return None;
    }
    Some(
        filters
            .iter()
            .map(|f| Predicate { column: p.column_for(&f.dimension).to_string(), op: f.op.clone() })
            .collect(),
    )
}

/// A dimension's rows as `principal` may see them: with no row-level filters, all of them
/// (its lookup, or the distinct keys of the tables it can see); with filters, only the keys
/// that occur in its rows (for a lookup dimension too).
pub fn dimension_rows(
    cat: &Catalog,
    cfg: &GatewayConfig,
    principal: &Principal,
    dim: &Dimension,
) -> Result<Arc<LookupTable>, Error> {
    let all = values::dimension_rows(cat, dim).map_err(unreadable)?;
    if principal.filters.is_empty() {
        return Ok(all);
    }
    let key = format!("role\n{}\n{}\n{}", dim.name, cat.tables_key(&dim.name), filters_key(principal));
    cat.values.get_or_try(&key, || {
        let mut keys = BTreeSet::new();
        for t in cat.tables_with_dimension(&dim.name) {
            let raw_first =
                |p: &&Arc<PhysicalTable>| (p.kind != crate::catalog::physical::PhysicalKind::Raw, -p.total_rows());
            let mut candidates: Vec<&Arc<PhysicalTable>> =
                t.physical.iter().filter(|p| p.dimensions.contains(&dim.name)).collect();
            candidates.sort_by_key(raw_first);
            let Some((p, preds)) =
                candidates.iter().find_map(|p| role_predicates(cat, cfg, principal, t, p).map(|f| (p, f)))
            else {
                continue;
            };
            keys.extend(values::distinct_values(p, p.column_for(&dim.name), preds).map_err(unreadable)?);
        }
        if dim.lookup.is_none() {
            return Ok(Arc::new(rows_of_keys(dim, keys)));
        }
        let rows = all.rows().iter().filter(|r| keys.contains(&r[0])).cloned().collect();
        Ok(Arc::new(LookupTable::from_rows(rows)))
    })
}

/// The intervals of `p` in which `principal` has rows: the slice's availability without
/// row-level filters, else the UTC days holding rows that pass them.
pub fn availability(
    cat: &Catalog,
    cfg: &GatewayConfig,
    principal: &Principal,
    t: &LogicalTable,
    p: &PhysicalTable,
) -> Result<Vec<Interval>, Error> {
    if principal.filters.is_empty() {
        return Ok(p.availability.clone());
    }
    let key = format!("{}\n{}", p.name, filters_key(principal));
    cat.spans.get_or_try(&key, || match role_predicates(cat, cfg, principal, t, p) {
        None => Ok(vec![]),
        Some(preds) => values::days_with_rows(p, preds).map_err(unreadable),
    })
}

/// The union of [`availability`] over the physical tables of `t` that `keep` selects.
pub fn table_availability(
    cat: &Catalog,
    cfg: &GatewayConfig,
    principal: &Principal,
    t: &LogicalTable,
    keep: impl Fn(&PhysicalTable) -> bool,
) -> Result<Vec<Interval>, Error> {
    let mut all = Vec::new();
    for p in t.physical.iter().filter(|p| keep(p)) {
        all.extend(availability(cat, cfg, principal, t, p)?);
    }
    Ok(time::merge(all))
}
