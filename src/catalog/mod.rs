//! The catalog: dimensions, metrics, logical and physical tables, as checked at start-up.
//!
//! Users describe their Parquet in `config/tables/*.toml` ([`spec`]); [`load`] reads those files,
//! opens every Parquet footer once, checks every referenced column against the schema and
//! returns either a [`Catalog`] or the complete list of problems found.

/// Arithmetic expressions (now a module of their own, shared with the engine).
pub use crate::expr;
mod load;
pub mod lookup;
pub mod memo;
pub mod physical;
mod problems;
pub mod spec;
mod tables;

pub use load::{load, load_reusing};
pub use tables::base_aggregations;

use crate::engine::plan::{AggFunc, AggInput, Predicate};
use crate::time::{Grain, Interval};
use expr::Expr;
use lookup::LookupTable;
use memo::Memo;
use physical::PhysicalTable;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Everything a request is resolved against: the whole catalog, or one principal's view of
/// it ([`Catalog::restricted`]), in which what the principal may not see does not exist.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Which snapshot this is (1 for the first load, +1 per reload that changed something);
    /// shown in `/status` and on every API response.
    pub version: u64,
    /// A digest of everything answers depend on (every data file's path, size and
    /// modification time, and the table definitions): equal across restarts when nothing
    /// changed, so it can name answers in ETags and cache keys.
    pub fingerprint: String,
    pub tables: BTreeMap<String, LogicalTable>,
    pub dimensions: BTreeMap<String, Arc<Dimension>>,
    pub metrics: BTreeMap<String, Metric>,
    /// Dimension rows by key (distinct fact values, or role-filtered rows), computed once per
    /// snapshot and shared with its restricted views (keys name the tables read).
    pub values: Arc<Memo<Arc<LookupTable>>>,
    /// Availability under a role's row-level filters, by physical table and filters (shared
    /// with the views too).
    pub spans: Arc<Memo<Vec<Interval>>>,
    /// Views restricted to a set of tables, by that set.
    views: Memo<Arc<Catalog>>,
}

/// A logical table: what users query by name.
#[derive(Debug, Clone)]
pub struct LogicalTable {
    pub name: String,
    pub long_name: String,
    pub description: String,
    pub category: String,
    pub retention: String,
    /// Offered grains, finest first.
    pub grains: Vec<Grain>,
    pub dimensions: Vec<String>,
    pub metrics: Vec<String>,
    pub physical: Vec<Arc<PhysicalTable>>,
}

impl LogicalTable {
    /// Union of the physical tables' availability.
    pub fn availability(&self) -> Vec<Interval> {
        crate::time::merge(self.physical.iter().flat_map(|p| p.availability.iter().copied()).collect())
    }

    /// The table's metrics valid at `grain`, in declaration order.
    pub fn metrics_at<'a>(&'a self, catalog: &'a Catalog, grain: Grain) -> Vec<&'a Metric> {
        self.metrics
            .iter()
            .filter_map(|m| catalog.metrics.get(m))
            .filter(|m| catalog.metric_valid_at(m, grain))
            .collect()
    }

    /// The raw physical table with the most rows (used for dimension values and as fallback).
    pub fn raw(&self) -> Option<&Arc<PhysicalTable>> {
        self.physical.iter().filter(|p| p.kind == physical::PhysicalKind::Raw).max_by_key(|p| p.total_rows())
    }
}

/// A field of a dimension (`id`, `desc`, …).
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub description: String,
    pub long_name: Option<String>,
}

/// A dimension: a fact column plus descriptive fields.
#[derive(Debug)]
pub struct Dimension {
    pub name: String,
    pub long_name: String,
    pub description: String,
    pub category: String,
    /// Fact column holding the key (physical tables may rename it).
    pub column: String,
    /// Fields, the first being the key.
    pub fields: Vec<Field>,
    pub default_fields: Vec<String>,
    /// Rows from the configured lookup file.
    pub lookup: Option<Arc<LookupTable>>,
}

impl Dimension {
    pub fn key_field(&self) -> &str {
        &self.fields[0].name
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// `loaded` when values come from a lookup file, `none` when read from the facts.
    pub fn storage_strategy(&self) -> &'static str {
        if self.lookup.is_some() { "loaded" } else { "none" }
    }
}

/// How a metric is computed.
#[derive(Debug, Clone)]
pub enum MetricKind {
    Aggregation {
        func: AggFunc,
        input: AggInput,
        filter: Option<Predicate>,
    },
    /// Arithmetic over other metrics.
    Post(Expr),
    /// Sum per inner grain, averaged over the inner buckets with data.
    NestedAvg {
        of: String,
        per: Grain,
    },
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub long_name: String,
    pub description: String,
    pub category: String,
    pub type_name: String,
    pub kind: MetricKind,
    /// Long (integer) or double output.
    pub integer: bool,
}

impl Catalog {
    /// Every physical table that `engine` aggregates.
    pub fn physical_on(&self, engine: physical::Engine) -> impl Iterator<Item = &Arc<PhysicalTable>> {
        self.tables.values().flat_map(|t| &t.physical).filter(move |p| p.engine == engine)
    }

    /// Whether `m` can be computed at `grain` (nested averages need their inner grain to
    /// satisfy the request grain; post-aggregations inherit from their inputs).
    pub fn metric_valid_at(&self, m: &Metric, grain: Grain) -> bool {
        self.metric_valid_at_depth(m, grain, 0)
    }

    fn metric_valid_at_depth(&self, m: &Metric, grain: Grain, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        match &m.kind {
            MetricKind::Aggregation { .. } => true,
            MetricKind::NestedAvg { per, of } => {
                per.can_satisfy(grain)
                    && self.metrics.get(of).is_some_and(|o| self.metric_valid_at_depth(o, *per, depth + 1))
            }
            MetricKind::Post(e) => e
                .refs()
                .iter()
                .all(|r| self.metrics.get(r).is_some_and(|o| self.metric_valid_at_depth(o, grain, depth + 1))),
        }
    }

    /// The names of the tables a dimension belongs to, joined: part of the key of anything
    /// computed from their rows, so that views sharing the memo never mix table sets.
    pub fn tables_key(&self, dim: &str) -> String {
        self.tables_with_dimension(dim).iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Logical tables a dimension belongs to, by name.
    pub fn tables_with_dimension(&self, dim: &str) -> Vec<&LogicalTable> {
        self.tables.values().filter(|t| t.dimensions.iter().any(|d| d == dim)).collect()
    }

    /// Logical tables offering a metric.
    pub fn tables_with_metric(&self, metric: &str) -> Vec<&LogicalTable> {
        self.tables.values().filter(|t| t.metrics.iter().any(|d| d == metric)).collect()
    }

    /// The catalog as seen by a principal granted `tables`: only those tables, the dimensions
    /// they use and the metrics they offer (with what those metrics are computed from). Built
    /// once per table set and snapshot.
    pub fn restricted(&self, tables: &BTreeSet<String>) -> Arc<Catalog> {
        let key: Vec<&str> = tables.iter().map(|s| s.as_str()).collect();
        let built: Result<_, std::convert::Infallible> = self.views.get_or_try(&key.join("\n"), || {
            let mut view = Catalog {
                version: self.version,
                fingerprint: self.fingerprint.clone(),
                values: self.values.clone(),
                spans: self.spans.clone(),
                ..Catalog::default()
            };
            for t in self.tables.values().filter(|t| tables.contains(&t.name)) {
                for d in t.dimensions.iter().filter_map(|d| self.dimensions.get(d)) {
                    view.dimensions.insert(d.name.clone(), d.clone());
                }
                for m in &t.metrics {
                    self.add_metric(&mut view, m, 0);
                }
                view.tables.insert(t.name.clone(), t.clone());
            }
            Ok(Arc::new(view))
        });
        built.unwrap_or_default()
    }

    fn add_metric(&self, view: &mut Catalog, name: &str, depth: usize) {
        let Some(m) = self.metrics.get(name) else { return };
        if depth > 32 || view.metrics.contains_key(name) {
            return;
        }
        view.metrics.insert(name.to_string(), m.clone());
        match &m.kind {
            MetricKind::Post(e) => e.refs().iter().for_each(|r| self.add_metric(view, r, depth + 1)),
            MetricKind::NestedAvg { of, .. } => self.add_metric(view, of, depth + 1),
            MetricKind::Aggregation { .. } => {}
        }
    }

    /// Every data file's parsed footer, by path (for a reload to reuse).
    pub fn footers(&self) -> std::collections::HashMap<std::path::PathBuf, Arc<physical::DataFile>> {
        self.tables
            .values()
            .flat_map(|t| t.physical.iter())
            .flat_map(|p| p.files.iter())
            .map(|f| (f.path.clone(), f.clone()))
            .collect()
    }

    /// Physical table by slice name.
    pub fn slice(&self, name: &str) -> Option<(&LogicalTable, &Arc<PhysicalTable>)> {
        self.tables.values().find_map(|t| t.physical.iter().find(|p| p.name == name).map(|p| (t, p)))
    }
}
