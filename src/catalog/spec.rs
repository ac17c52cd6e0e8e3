//! The on-disk shape of `config/tables/*.toml`: what a user writes to describe their Parquet.
//!
//! These structs are deserialized with unknown keys rejected; [`super::load`] turns them into
//! the checked model. Every field documents its default.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One catalog file. Any file may hold any mix of tables, dimensions and metrics; names are
/// global across files (a name defined twice is an error naming both files).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogFile {
    pub table: BTreeMap<String, TableSpec>,
    pub dimension: BTreeMap<String, DimensionSpec>,
    pub metric: BTreeMap<String, MetricSpec>,
}

/// A logical table (`[table.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct TableSpec {
    /// Display name. Default: the table name.
    pub longName: Option<String>,
    /// Free text. Default empty.
    #[serde(default)]
    pub description: String,
    /// Grouping shown in metadata. Default `General`.
    #[serde(default = "general")]
    pub category: String,
    /// ISO 8601 period of data kept (`P2Y`), shown as `retention`. Default empty.
    #[serde(default)]
    pub retention: String,
    /// Grains the table answers: second … year, all. Required.
    pub grains: Vec<String>,
    /// Dimension names, in display order. Default none.
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// Metric names, in display order. Required.
    pub metrics: Vec<String>,
    /// The Parquet data backing the table; at least one. The planner picks among them.
    pub physical: Vec<PhysicalSpec>,
}

/// A physical table (`[[table.NAME.physical]]`): Parquet files at one grain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicalSpec {
    /// Unique slice name (shown by `/slices`). Required.
    pub name: String,
    /// A Parquet file, a directory (every `*.parquet` below it) or a glob. Relative paths are
    /// resolved against the catalog's `data_root`. Required.
    pub path: String,
    /// The timestamp (or date) column. Required.
    pub time_column: String,
    /// For an integer time column: what it counts since 1970-01-01 UTC, `s`, `ms`, `us` or
    /// `ns`. Required for integers (a guess would silently put the data in 1970); not allowed
    /// for timestamps and dates.
    pub time_unit: Option<String>,
    /// Finest grain the rows are at: `second` for raw events, `day` for a daily rollup. Required.
    pub grain: String,
    /// Zone in which `grain` buckets of this table are aligned. Default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// `raw` (one row per event) or `rollup` (pre-aggregated metrics). Default `raw`.
    #[serde(default = "raw")]
    pub kind: String,
    /// Dimensions present; default: every dimension of the logical table (raw) — required for
    /// rollups.
    pub dimensions: Option<Vec<String>>,
    /// Rollups only: metrics stored pre-aggregated, each in a column named like the metric
    /// (or as mapped by `columns`). Sums and counts re-aggregate by sum, min/max by min/max.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Column renames: dimension or metric name → column in these files. Default none.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Which engine aggregates this table: `local` (this process) or `distributed` (the
    /// Ballista cluster of `[distributed]` in gateway.toml). Default `local`.
    #[serde(default = "local")]
    pub engine: String,
    /// Most queries scanning this table at once, for tables that are expensive to scan; past
    /// it the answer is 503 with `Retry-After`. Default: no limit of its own.
    pub max_concurrent_queries: Option<usize>,
    /// The grain availability is tracked in, like Druid's segments: each file's first and
    /// last timestamps are rounded out to it. Default `day` for raw tables (never finer than
    /// `grain`); a rollup's own grain.
    pub availability_grain: Option<String>,
    /// Intervals the table covers (`["2013-01-01/2014-01-01", ...]`, ISO dates or times in
    /// `timezone`), overriding what the files say. Default: from the files.
    pub availability: Option<Vec<String>>,
}

/// A dimension (`[dimension.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct DimensionSpec {
    /// Display name. Default: the dimension name.
    pub longName: Option<String>,
    /// Free text. Default empty.
    #[serde(default)]
    pub description: String,
    /// Grouping shown in metadata. Default `General`.
    #[serde(default = "general")]
    pub category: String,
    /// Fact column holding the key. Default: the dimension name.
    pub column: Option<String>,
    /// Fields, first = key. Each a name or `{ name, description, longName }`.
    /// Default `["id", "desc"]`.
    #[serde(default = "id_desc")]
    pub fields: Vec<FieldSpec>,
    /// Fields shown when a request has no `show`. Default: `id` and `desc` where declared,
    /// else the key.
    pub default_fields: Option<Vec<String>>,
    /// Where the non-key fields come from. Default none: the key is its own description.
    pub lookup: Option<LookupSpec>,
}

/// A dimension field, written as a bare name or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FieldSpec {
    Name(String),
    Full(FieldTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct FieldTable {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub longName: Option<String>,
}

/// A lookup file giving the fields of each key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    /// CSV (with a header row) or Parquet file, by extension. Relative to `data_root`.
    pub path: String,
    /// Column of the lookup holding the key. Required.
    pub key: String,
    /// Field name → lookup column; fields not listed read the column of the same name,
    /// or are empty if there is none. Default none.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Cell values meaning "no value" (printed as empty), e.g. `["NA"]`. Default none.
    #[serde(default)]
    pub null_values: Vec<String>,
}

/// A metric (`[metric.NAME]`): exactly one of `aggregation`, `expression`, `average_of`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct MetricSpec {
    /// Display name. Default: the metric name.
    pub longName: Option<String>,
    /// Free text. Default empty.
    #[serde(default)]
    pub description: String,
    /// Grouping shown in metadata. Default `General`.
    #[serde(default = "general")]
    pub category: String,
    /// Metadata type. Default `number`.
    #[serde(rename = "type", default = "number")]
    pub type_: String,
    /// `count`, `longSum`, `doubleSum`, `min`, `max`, `countDistinct`, `approxCountDistinct`.
    pub aggregation: Option<String>,
    /// Column aggregated (for `count`: counts its non-null values; absent counts rows).
    pub column: Option<String>,
    /// Instead of `column`: arithmetic over numeric columns, e.g. `price * (1 - discount)`.
    pub input: Option<String>,
    /// Aggregate only rows matching this fixed filter.
    pub filter: Option<MetricFilterSpec>,
    /// Post-aggregation: arithmetic over other metrics and constants, e.g. `a / b`.
    pub expression: Option<String>,
    /// Nested average: the metric summed per inner grain …
    pub average_of: Option<String>,
    /// … and averaged over the inner buckets with data: `day`, `week` or `month`.
    pub per: Option<String>,
}

/// A fixed row filter of an aggregation, e.g. `{ column = "dep_time", op = "isNull" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricFilterSpec {
    pub column: String,
    /// `isNull`, `notNull`, `in`, `notin`, `eq`, `gt`, `gte`, `lt`, `lte`.
    pub op: String,
    #[serde(default)]
    pub values: Vec<toml::Value>,
}

fn general() -> String {
    "General".into()
}
fn utc() -> String {
    "UTC".into()
}
fn local() -> String {
    "local".into()
}

fn raw() -> String {
    "raw".into()
}
fn number() -> String {
    "number".into()
}
fn id_desc() -> Vec<FieldSpec> {
    vec![FieldSpec::Name("id".into()), FieldSpec::Name("desc".into())]
}
