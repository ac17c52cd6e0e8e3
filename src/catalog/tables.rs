//! Checking logical and physical tables: grains, dimensions and metrics exist, Parquet files
//! open, every referenced column is in the schema, and every metric can be computed.

use super::physical::{self, PhysicalKind, PhysicalTable};
use super::problems::{Defined, Problems, valid_name};
use super::spec::{PhysicalSpec, TableSpec};
use super::{Catalog, LogicalTable, Metric, MetricKind};
use crate::engine::plan::{AggFunc, AggInput};
use crate::time::Grain;
use arrow::datatypes::DataType;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub(super) fn build_table(
    name: &str,
    spec: &TableSpec,
    root: &Path,
    catalog: &Catalog,
    defined: &Defined,
    p: &mut Problems,
) -> Option<LogicalTable> {
    let key = format!("table.{name}");
    if !valid_name(name) {
        p.add(&key, "table names may only contain letters, digits and '_'");
        return None;
    }
    let mut grains = Vec::new();
    for g in &spec.grains {
        match Grain::parse(g) {
            Some(g) => grains.push(g),
            None => p.add(
                &format!("{key}.grains"),
                format!("'{g}' is not a grain; expected second, minute, hour, day, week, month, quarter, year or all"),
            ),
        }
    }
    grains.sort();
    grains.dedup();
    if grains.is_empty() {
        p.add(&format!("{key}.grains"), "expected at least one grain");
    }
    for d in &spec.dimensions {
        if !defined.dims.contains(d) {
            p.add(
                &format!("{key}.dimensions"),
                format!("dimension '{d}' is not defined (define it as [dimension.{d}])"),
            );
        }
    }
    for m in &spec.metrics {
        if !defined.metrics.contains(m) {
            p.add(&format!("{key}.metrics"), format!("metric '{m}' is not defined (define it as [metric.{m}])"));
        }
    }
    if spec.physical.is_empty() {
        p.add(&format!("{key}.physical"), "expected at least one [[table.NAME.physical]]");
    }
    let mut physical = Vec::new();
    for (i, ps) in spec.physical.iter().enumerate() {
        if let Some(pt) = build_physical(ps, &format!("{key}.physical[{i}]"), spec, root, catalog, defined, p) {
            physical.push(Arc::new(pt));
        }
    }
    if physical.len() != spec.physical.len() {
        return None;
    }
    // Every metric the table offers must be computable from some physical table, and every
    // grain it offers served by one.
    check_metrics_computable(&key, spec, &physical, catalog, p);
    for g in &grains {
        if !physical.iter().any(|t| t.grain.can_satisfy(*g)) {
            let finest = physical.iter().min_by_key(|t| t.grain).map(|t| (t.name.as_str(), t.grain.name()));
            p.add(
                &format!("{key}.grains"),
                format!(
                    "grain '{}' cannot be served: the finest physical table{} (a physical table at '{}' or finer is needed)",
                    g.name(),
                    finest.map(|(n, gr)| format!(", '{n}', is at '{gr}'")).unwrap_or_default(),
                    g.name()
                ),
            );
        }
    }
    Some(LogicalTable {
        name: name.to_string(),
        long_name: spec.longName.clone().unwrap_or_else(|| name.to_string()),
        description: spec.description.clone(),
        category: spec.category.clone(),
        retention: spec.retention.clone(),
        grains,
        dimensions: spec.dimensions.clone(),
        metrics: spec.metrics.clone(),
        physical,
    })
}

fn build_physical(
    ps: &PhysicalSpec,
    key: &str,
    table: &TableSpec,
    root: &Path,
    catalog: &Catalog,
    defined: &Defined,
    p: &mut Problems,
) -> Option<PhysicalTable> {
    let grain = match Grain::parse(&ps.grain) {
        Some(g) if g != Grain::All => g,
        _ => {
            p.add(
                &format!("{key}.grain"),
                format!(
                    "'{}' is not a grain; expected second, minute, hour, day, week, month, quarter or year",
                    ps.grain
                ),
            );
            return None;
        }
    };
    let tz = match ps.timezone.parse::<chrono_tz::Tz>() {
        Ok(t) => t,
        Err(_) => {
            p.add(&format!("{key}.timezone"), format!("'{}' is not an IANA time zone id", ps.timezone));
            return None;
        }
    };
    let kind = match ps.kind.as_str() {
        "raw" => PhysicalKind::Raw,
        "rollup" => PhysicalKind::Rollup,
        other => {
            p.add(&format!("{key}.kind"), format!("'{other}' is neither raw nor rollup"));
            return None;
        }
    };
    let engine = match ps.engine.as_str() {
        "local" => physical::Engine::Local,
        "distributed" if cfg!(feature = "distributed") => physical::Engine::Distributed,
        "distributed" => {
            p.add(&format!("{key}.engine"), crate::distributed::NOT_BUILT.to_string());
            return None;
        }
        other => {
            p.add(&format!("{key}.engine"), format!("'{other}' is neither local nor distributed"));
            return None;
        }
    };
    let paths = match physical::expand_path(root, &ps.path) {
        Ok(x) => x,
        Err(e) => {
            p.add(&format!("{key}.path"), e);
            return None;
        }
    };
    let time_unit = match ps.time_unit.as_deref().map(|u| (u, physical::parse_time_unit(u))) {
        None => None,
        Some((_, Some(u))) => Some(u),
        Some((u, None)) => {
            p.add(&format!("{key}.time_unit"), format!("'{u}' is not a time unit; expected s, ms, us or ns"));
            return None;
        }
    };
    let mut files = Vec::new();
    for path in &paths {
        if let Some(f) = defined
            .footers
            .get(path)
            .filter(|f| f.time_column == ps.time_column && f.time_unit == time_unit && f.unchanged_on_disk())
        {
            files.push(f.clone());
            continue;
        }
        match physical::open_file_as(path, &ps.time_column, time_unit) {
            Ok(mut f) => {
                if let Ok(rel) = path.strip_prefix(root) {
                    f.name = rel.to_string_lossy().into_owned();
                }
                files.push(Arc::new(f))
            }
            Err(e) => p.add(&format!("{key}.path"), e),
        }
    }
    if files.len() != paths.len() {
        return None;
    }
    let schema = files[0].metadata.schema().clone();
    for f in &files[1..] {
        for field in schema.fields() {
            if f.metadata.schema().field_with_name(field.name()).is_err() {
                p.add(
                    &format!("{key}.path"),
                    format!(
                        "{} lacks column '{}' present in {}; all files of a physical table need the same columns",
                        f.path.display(),
                        field.name(),
                        files[0].path.display()
                    ),
                );
            }
        }
    }
    let columns_list = || schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    match schema.field_with_name(&ps.time_column) {
        Ok(_) if ps.time_unit.is_some() && files[0].time_unit.is_none() => p.add(
            &format!("{key}.time_unit"),
            format!("time_unit is for a time column of 64-bit integers; '{}' is not one", ps.time_column),
        ),
        Ok(f) if f.data_type().is_integer() => p.add(
            &format!("{key}.time_column"),
            format!(
                "column '{}' holds integers ({}): say what they count since 1970-01-01 UTC with time_unit = \"s\", \"ms\", \"us\" or \"ns\"",
                ps.time_column,
                f.data_type()
            ),
        ),
        Ok(f) if physical::is_time_type(f.data_type()) => {}
        Ok(f) => p.add(
            &format!("{key}.time_column"),
            format!("column '{}' has type {} but a timestamp or date is expected", ps.time_column, f.data_type()),
        ),
        Err(_) => p.add(
            &format!("{key}.time_column"),
            format!(
                "column '{}' is not in the Parquet schema of {} (columns: {})",
                ps.time_column,
                ps.path,
                columns_list()
            ),
        ),
    }
    let dimensions = match (&ps.dimensions, kind) {
        (Some(d), _) => d.clone(),
        (None, PhysicalKind::Raw) => table.dimensions.clone(),
        (None, PhysicalKind::Rollup) => {
            p.add(&format!("{key}.dimensions"), "a rollup must list the dimensions it keeps");
            return None;
        }
    };
    let mut columns = BTreeMap::new();
    for d in &dimensions {
        if !table.dimensions.contains(d) {
            p.add(&format!("{key}.dimensions"), format!("dimension '{d}' is not a dimension of the table"));
            continue;
        }
        let Some(dim) = catalog.dimensions.get(d) else { continue };
        let col = ps.columns.get(d).cloned().unwrap_or_else(|| dim.column.clone());
        match schema.field_with_name(&col) {
            Ok(f) if is_dimension_type(f.data_type()) => {}
            Ok(f) => p.add(
                &format!("{key}.columns.{d}"),
                format!(
                    "column '{col}' of dimension '{d}' has type {}; expected a string, integer or boolean",
                    f.data_type()
                ),
            ),
            Err(_) => p.add(
                &format!("dimension.{d}.column"),
                format!(
                    "column '{col}' is not in the Parquet schema of physical table '{}' ({}); columns: {}",
                    ps.name,
                    ps.path,
                    columns_list()
                ),
            ),
        }
        columns.insert(d.clone(), col);
    }
    for m in &ps.metrics {
        if kind == PhysicalKind::Raw {
            p.add(&format!("{key}.metrics"), "only rollups carry pre-aggregated metrics");
            break;
        }
        let col = ps.columns.get(m).cloned().unwrap_or_else(|| m.clone());
        match catalog.metrics.get(m).map(|x| &x.kind) {
            Some(MetricKind::Aggregation { func, .. }) if func.reaggregate().is_some() => {}
            Some(_) => p.add(
                &format!("{key}.metrics"),
                format!("metric '{m}' cannot be stored in a rollup (only count, sums, min and max re-aggregate)"),
            ),
            None if defined.metrics.contains(m) => {}
            None => p.add(&format!("{key}.metrics"), format!("metric '{m}' is not defined")),
        }
        if schema.field_with_name(&col).is_err() {
            p.add(
                &format!("{key}.metrics"),
                format!(
                    "column '{col}' for metric '{m}' is not in the Parquet schema of {} (columns: {})",
                    ps.path,
                    columns_list()
                ),
            );
        }
        columns.insert(m.clone(), col);
    }
    for k in ps.columns.keys() {
        if !dimensions.contains(k) && !ps.metrics.contains(k) {
            p.add(
                &format!("{key}.columns.{k}"),
                format!("'{k}' is neither a dimension nor a metric of this physical table"),
            );
        }
    }
    let availability = physical_availability(ps, key, kind, grain, tz, &files, p)?;
    Some(PhysicalTable {
        name: ps.name.clone(),
        path_spec: ps.path.clone(),
        files,
        schema,
        time_column: ps.time_column.clone(),
        grain,
        timezone: tz,
        kind,
        dimensions,
        metrics: ps.metrics.clone(),
        columns,
        availability,
        max_concurrent: ps.max_concurrent_queries,
        engine,
    })
}

/// What a physical table covers: its explicit `availability`, else its files' time ranges
/// rounded out to `availability_grain` (default `day` for raw tables, a rollup's own grain).
fn physical_availability(
    ps: &PhysicalSpec,
    key: &str,
    kind: PhysicalKind,
    grain: Grain,
    tz: chrono_tz::Tz,
    files: &[Arc<physical::DataFile>],
    p: &mut Problems,
) -> Option<Vec<crate::time::Interval>> {
    if let Some(list) = &ps.availability {
        let text = list.join(",");
        let ctx = crate::grammar::datetime::Context { grain: Grain::All, tz, now: 0, rrule_max: 0 };
        let parsed =
            crate::grammar::datetime::parse(Some(&text)).and_then(|ast| crate::grammar::datetime::evaluate(&ast, &ctx));
        return match parsed {
            Ok(ivs) => Some(ivs),
            Err(e) => {
                p.add(&format!("{key}.availability"), format!("expected [\"start/end\", ...] intervals: {e}"));
                None
            }
        };
    }
    let default = if kind == PhysicalKind::Raw { Grain::Day } else { grain };
    let step = match ps.availability_grain.as_deref().map(Grain::parse) {
        None => default,
        Some(Some(g)) if g != Grain::All => g,
        Some(_) => {
            p.add(
                &format!("{key}.availability_grain"),
                "expected second, minute, hour, day, week, month, quarter or year",
            );
            return None;
        }
    };
    Some(physical::availability(files, step.max(grain), tz))
}

fn is_dimension_type(dt: &DataType) -> bool {
    match dt {
        DataType::Dictionary(_, v) => is_dimension_type(v),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => true,
        d => d.is_integer(),
    }
}

fn is_numeric_type(dt: &DataType) -> bool {
    dt.is_numeric() || matches!(dt, DataType::Boolean)
}

/// Base aggregations a metric needs (through post-aggregations and nested averages).
pub fn base_aggregations<'a>(catalog: &'a Catalog, metric: &str, out: &mut Vec<&'a Metric>) {
    let Some(m) = catalog.metrics.get(metric) else { return };
    match &m.kind {
        MetricKind::Aggregation { .. } => {
            if !out.iter().any(|x| x.name == m.name) {
                out.push(m)
            }
        }
        MetricKind::Post(e) => e.refs().iter().for_each(|r| base_aggregations(catalog, r, out)),
        MetricKind::NestedAvg { of, .. } => base_aggregations(catalog, of, out),
    }
}

fn check_metrics_computable(
    key: &str,
    spec: &TableSpec,
    physical: &[Arc<PhysicalTable>],
    catalog: &Catalog,
    p: &mut Problems,
) {
    let raws: Vec<&Arc<PhysicalTable>> = physical.iter().filter(|t| t.kind == PhysicalKind::Raw).collect();
    for m in &spec.metrics {
        let mut bases = Vec::new();
        base_aggregations(catalog, m, &mut bases);
        for b in bases {
            let MetricKind::Aggregation { input, filter, .. } = &b.kind else { continue };
            let mut cols = input.columns();
            if let Some(f) = filter {
                cols.push(f.column.clone());
            }
            let in_rollup = physical.iter().any(|t| t.metrics.contains(&b.name));
            for c in cols {
                let present = raws.iter().any(|t| t.has_column(&c));
                // A rollup may carry a metric no raw table can compute only when there is no
                // raw table at all; otherwise raw queries would fail at run time.
                if !(present || (in_rollup && raws.is_empty())) {
                    p.add(
                        &format!("metric.{}", b.name),
                        format!(
                            "column '{c}' is not in the Parquet schema of any raw physical table of {key} ({})",
                            raws.iter().map(|t| t.path_spec.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
                for t in &raws {
                    let Ok(f) = t.schema.field_with_name(&c) else { continue };
                    if let (MetricKind::Aggregation { func, .. }, AggInput::Column(_)) = (&b.kind, input)
                        && matches!(func, AggFunc::LongSum | AggFunc::DoubleSum | AggFunc::Min | AggFunc::Max)
                        && !is_numeric_type(f.data_type())
                    {
                        p.add(
                            &format!("metric.{}.column", b.name),
                            format!(
                                "column '{c}' has type {} in '{}'; {} needs a numeric column (only count and the distinct counts take any type)",
                                f.data_type(),
                                t.name,
                                func.name()
                            ),
                        );
                    }
                    if matches!(input, AggInput::Expr(_)) && !is_numeric_type(f.data_type()) {
                        p.add(
                            &format!("metric.{}.input", b.name),
                            format!(
                                "column '{c}' has type {} in '{}'; expressions need numeric columns",
                                f.data_type(),
                                t.name
                            ),
                        );
                    }
                }
            }
        }
    }
}
