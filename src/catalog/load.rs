//! Reading and checking the catalog files. Problems are collected, not thrown at the first,
//! so `quiver check` can print every mistake at once; each names the file, the key and what
//! was expected.

use super::physical::{self, PhysicalKind, PhysicalTable};
use super::spec::{CatalogFile, DimensionSpec, FieldSpec, MetricSpec, PhysicalSpec, TableSpec};
use super::{Catalog, Dimension, Field, LogicalTable, Metric, MetricKind, expr, lookup};
use crate::engine::plan::{AggFunc, AggInput, CmpOp, PredOp, Predicate};
use crate::time::Grain;
use arrow::datatypes::DataType;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Loads every `*.toml` under `tables_dir`, resolving data paths against `data_root`.
pub fn load(tables_dir: &Path, data_root: &Path) -> Result<Catalog, Vec<String>> {
    let mut problems = Vec::new();
    let files = match list_toml(tables_dir) {
        Ok(f) => f,
        Err(e) => return Err(vec![e]),
    };
    let mut parsed: Vec<(PathBuf, CatalogFile)> = Vec::new();
    for path in files {
        match parse_file(&path) {
            Ok(c) => parsed.push((path, c)),
            Err(e) => problems.push(e),
        }
    }
    // Merge, remembering where each definition came from.
    let mut tables: BTreeMap<String, (PathBuf, TableSpec)> = BTreeMap::new();
    let mut dims: BTreeMap<String, (PathBuf, DimensionSpec)> = BTreeMap::new();
    let mut metrics: BTreeMap<String, (PathBuf, MetricSpec)> = BTreeMap::new();
    for (path, file) in parsed {
        merge_defs(&mut tables, file.table, &path, "table", &mut problems);
        merge_defs(&mut dims, file.dimension, &path, "dimension", &mut problems);
        merge_defs(&mut metrics, file.metric, &path, "metric", &mut problems);
    }
    if tables.is_empty() && problems.is_empty() {
        problems.push(format!("{}: no table is defined (expected at least one [table.NAME])", tables_dir.display()));
    }

    let mut catalog = Catalog::default();
    for (name, (path, spec)) in &dims {
        let mut p = Problems::new(path, &mut problems);
        if let Some(d) = build_dimension(name, spec, data_root, &mut p) {
            catalog.dimensions.insert(name.clone(), Arc::new(d));
        }
    }
    for (name, (path, spec)) in &metrics {
        let mut p = Problems::new(path, &mut problems);
        if let Some(m) = build_metric(name, spec, &mut p) {
            catalog.metrics.insert(name.clone(), m);
        }
    }
    check_metric_references(&mut catalog, &metrics, &mut problems);
    let defined = Defined { dims: dims.keys().cloned().collect(), metrics: metrics.keys().cloned().collect() };
    for (name, (path, spec)) in &tables {
        let mut p = Problems::new(path, &mut problems);
        if let Some(t) = build_table(name, spec, data_root, &catalog, &defined, &mut p) {
            catalog.tables.insert(name.clone(), t);
        }
    }
    if problems.is_empty() { Ok(catalog) } else { Err(problems) }
}

/// Names defined in some file (even if their definition has problems), so one mistake is
/// not reported again as "not defined" wherever the name is used.
struct Defined {
    dims: std::collections::BTreeSet<String>,
    metrics: std::collections::BTreeSet<String>,
}

struct Problems<'a> {
    file: &'a Path,
    out: &'a mut Vec<String>,
}

impl<'a> Problems<'a> {
    fn new(file: &'a Path, out: &'a mut Vec<String>) -> Self {
        Problems { file, out }
    }

    fn add(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.out.push(format!("{}: key `{key}`: {msg}", self.file.display()));
    }
}

fn list_toml(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read the tables directory: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no *.toml table file found", dir.display()));
    }
    Ok(files)
}

fn parse_file(path: &Path) -> Result<CatalogFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let de = toml::Deserializer::parse(&text).map_err(|e| format!("{}: {}", path.display(), located(&text, &e)))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        format!("{}: key `{key}`: {}", path.display(), located(&text, &inner))
    })
}

fn located(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg.to_string(),
    }
}

fn merge_defs<T>(
    into: &mut BTreeMap<String, (PathBuf, T)>,
    from: BTreeMap<String, T>,
    path: &Path,
    kind: &str,
    problems: &mut Vec<String>,
) {
    for (name, spec) in from {
        if let Some((first, _)) = into.get(&name) {
            problems.push(format!(
                "{}: key `{kind}.{name}`: {kind} '{name}' is already defined in {}",
                path.display(),
                first.display()
            ));
            continue;
        }
        into.insert(name, (path.to_path_buf(), spec));
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn build_dimension(name: &str, spec: &DimensionSpec, root: &Path, p: &mut Problems) -> Option<Dimension> {
    let key = format!("dimension.{name}");
    if !valid_name(name) {
        p.add(&key, "dimension names may only contain letters, digits and '_'");
        return None;
    }
    let fields: Vec<Field> = spec
        .fields
        .iter()
        .map(|f| match f {
            FieldSpec::Name(n) => Field { name: n.clone(), description: default_field_description(n), long_name: None },
            FieldSpec::Full(t) => Field {
                name: t.name.clone(),
                description: t.description.clone().unwrap_or_else(|| default_field_description(&t.name)),
                long_name: t.longName.clone(),
            },
        })
        .collect();
    if fields.is_empty() {
        p.add(&format!("{key}.fields"), "expected at least one field (the first is the key)");
        return None;
    }
    for (i, f) in fields.iter().enumerate() {
        if f.name.is_empty() || f.name.contains([',', '|', '-', '[', ']', ';', '=']) {
            p.add(
                &format!("{key}.fields"),
                format!("field name '{}' may not be empty or contain , | - [ ] ; =", f.name),
            );
        }
        if fields[..i].iter().any(|g| g.name == f.name) {
            p.add(&format!("{key}.fields"), format!("field '{}' is listed twice", f.name));
        }
    }
    let default_fields = match &spec.default_fields {
        Some(d) => {
            for f in d {
                if !fields.iter().any(|x| &x.name == f) {
                    p.add(
                        &format!("{key}.default_fields"),
                        format!("'{f}' is not one of the fields {:?}", field_names(&fields)),
                    );
                }
            }
            d.clone()
        }
        None => {
            let d: Vec<String> =
                fields.iter().filter(|f| f.name == "id" || f.name == "desc").map(|f| f.name.clone()).collect();
            if d.is_empty() { vec![fields[0].name.clone()] } else { d }
        }
    };
    let lookup = match &spec.lookup {
        None => None,
        Some(l) => {
            let path = root.join(&l.path);
            let columns: Vec<Option<String>> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    if i == 0 {
                        Some(l.key.clone())
                    } else {
                        l.fields.get(&f.name).cloned().or_else(|| Some(f.name.clone()))
                    }
                })
                .collect();
            for mapped in l.fields.keys() {
                if !fields.iter().any(|f| &f.name == mapped) {
                    p.add(
                        &format!("{key}.lookup.fields.{mapped}"),
                        format!("'{mapped}' is not one of the fields {:?}", field_names(&fields)),
                    );
                }
            }
            // Unmapped fields without a like-named column stay empty rather than failing.
            let header = lookup_header(&path);
            let columns: Vec<Option<String>> = columns
                .into_iter()
                .enumerate()
                .map(|(i, c)| match (&header, c) {
                    (Some(h), Some(c)) if i > 0 && !l.fields.contains_key(&fields[i].name) && !h.contains(&c) => None,
                    (_, c) => c,
                })
                .collect();
            match lookup::load(&path, &columns, &l.null_values) {
                Ok(t) => Some(Arc::new(t)),
                Err(e) => {
                    p.add(&format!("{key}.lookup"), e);
                    None
                }
            }
        }
    };
    Some(Dimension {
        name: name.to_string(),
        long_name: spec.longName.clone().unwrap_or_else(|| name.to_string()),
        description: spec.description.clone(),
        category: spec.category.clone(),
        column: spec.column.clone().unwrap_or_else(|| name.to_string()),
        fields,
        default_fields,
        lookup,
        fact_values: OnceLock::new(),
    })
}

fn lookup_header(path: &Path) -> Option<Vec<String>> {
    if path.extension().is_some_and(|e| e == "parquet") {
        let f = std::fs::File::open(path).ok()?;
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).ok()?;
        return Some(b.schema().fields().iter().map(|f| f.name().clone()).collect());
    }
    let mut r = csv::Reader::from_path(path).ok()?;
    Some(r.headers().ok()?.iter().map(|s| s.to_string()).collect())
}

fn field_names(fields: &[Field]) -> Vec<&str> {
    fields.iter().map(|f| f.name.as_str()).collect()
}

fn default_field_description(name: &str) -> String {
    match name {
        "id" => "Dimension ID".into(),
        "desc" => "Dimension Description".into(),
        other => other.to_string(),
    }
}

fn build_metric(name: &str, spec: &MetricSpec, p: &mut Problems) -> Option<Metric> {
    let key = format!("metric.{name}");
    if !valid_name(name) {
        p.add(&key, "metric names may only contain letters, digits and '_'");
        return None;
    }
    let kinds = [spec.aggregation.is_some(), spec.expression.is_some(), spec.average_of.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        p.add(&key, "expected exactly one of `aggregation`, `expression` or `average_of`");
        return None;
    }
    let kind = if let Some(agg) = &spec.aggregation {
        let func = match AggFunc::parse(agg) {
            Some(f) => f,
            None => {
                p.add(&format!("{key}.aggregation"), format!(
                    "'{agg}' is not an aggregation; expected count, longSum, doubleSum, min, max, countDistinct or approxCountDistinct"
                ));
                return None;
            }
        };
        let input = match (&spec.column, &spec.input) {
            (Some(_), Some(_)) => {
                p.add(&key, "give either `column` or `input`, not both");
                return None;
            }
            (Some(c), None) => AggInput::Column(c.clone()),
            (None, Some(i)) => match expr::parse(i) {
                Ok(e) => AggInput::Expr(e),
                Err(e) => {
                    p.add(&format!("{key}.input"), e);
                    return None;
                }
            },
            (None, None) if func == AggFunc::Count => AggInput::Rows,
            (None, None) => {
                p.add(&key, format!("aggregation '{agg}' needs a `column` or an `input` expression"));
                return None;
            }
        };
        if matches!(func, AggFunc::CountDistinct | AggFunc::ApproxCountDistinct)
            && !matches!(input, AggInput::Column(_))
        {
            p.add(&key, format!("aggregation '{agg}' needs a `column`"));
            return None;
        }
        let filter = match &spec.filter {
            None => None,
            Some(f) => Some(build_filter(f, &format!("{key}.filter"), p)?),
        };
        MetricKind::Aggregation { func, input, filter }
    } else if let Some(e) = &spec.expression {
        match expr::parse(e) {
            Ok(e) => MetricKind::Post(e),
            Err(err) => {
                p.add(&format!("{key}.expression"), err);
                return None;
            }
        }
    } else {
        let of = spec.average_of.clone().unwrap_or_default();
        let per = match spec.per.as_deref().and_then(Grain::parse) {
            Some(g @ (Grain::Day | Grain::Week | Grain::Month)) => g,
            _ => {
                p.add(
                    &format!("{key}.per"),
                    format!("expected day, week or month, found {:?}", spec.per.as_deref().unwrap_or("")),
                );
                return None;
            }
        };
        MetricKind::NestedAvg { of, per }
    };
    if spec.per.is_some() && spec.average_of.is_none() {
        p.add(&format!("{key}.per"), "`per` only goes with `average_of`");
    }
    Some(Metric {
        name: name.to_string(),
        long_name: spec.longName.clone().unwrap_or_else(|| name.to_string()),
        description: spec.description.clone(),
        category: spec.category.clone(),
        type_name: spec.type_.clone(),
        kind,
        integer: true, // decided once every metric is known
    })
}

fn build_filter(f: &super::spec::MetricFilterSpec, key: &str, p: &mut Problems) -> Option<Predicate> {
    let texts: Vec<String> = f
        .values
        .iter()
        .map(|v| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let num = |p: &mut Problems| -> Option<f64> {
        match f.values.as_slice() {
            [toml::Value::Integer(i)] => Some(*i as f64),
            [toml::Value::Float(x)] => Some(*x),
            _ => {
                p.add(&format!("{key}.values"), format!("operation '{}' expects exactly one number", f.op));
                None
            }
        }
    };
    let op = match f.op.as_str() {
        "isNull" => PredOp::IsNull,
        "notNull" => PredOp::NotNull,
        "in" => PredOp::In(texts),
        "notin" => PredOp::NotIn(texts),
        "eq" => PredOp::Cmp(CmpOp::Eq, num(p)?),
        "gt" => PredOp::Cmp(CmpOp::Gt, num(p)?),
        "gte" => PredOp::Cmp(CmpOp::Gte, num(p)?),
        "lt" => PredOp::Cmp(CmpOp::Lt, num(p)?),
        "lte" => PredOp::Cmp(CmpOp::Lte, num(p)?),
        other => {
            p.add(
                &format!("{key}.op"),
                format!("'{other}' is not one of isNull, notNull, in, notin, eq, gt, gte, lt, lte"),
            );
            return None;
        }
    };
    Some(Predicate { column: f.column.clone(), op })
}

/// Checks that post-aggregations and nested averages name existing metrics without cycles,
/// and decides each metric's output type.
fn check_metric_references(
    catalog: &mut Catalog,
    specs: &BTreeMap<String, (PathBuf, MetricSpec)>,
    problems: &mut Vec<String>,
) {
    let names: Vec<String> = catalog.metrics.keys().cloned().collect();
    let mut integer: HashMap<String, bool> = HashMap::new();
    for name in &names {
        let mut stack = Vec::new();
        if let Err(msg) = metric_type(catalog, name, &mut stack, &mut integer) {
            let path = specs.get(name).map(|s| s.0.display().to_string()).unwrap_or_default();
            problems.push(format!("{path}: key `metric.{name}`: {msg}"));
        }
    }
    for (name, m) in catalog.metrics.iter_mut() {
        m.integer = integer.get(name).copied().unwrap_or(false);
    }
}

fn metric_type(
    catalog: &Catalog,
    name: &str,
    stack: &mut Vec<String>,
    done: &mut HashMap<String, bool>,
) -> Result<bool, String> {
    if let Some(v) = done.get(name) {
        return Ok(*v);
    }
    if stack.iter().any(|s| s == name) {
        return Err(format!("metrics refer to each other in a cycle: {} -> {name}", stack.join(" -> ")));
    }
    let m = catalog.metrics.get(name).ok_or_else(|| format!("refers to metric '{name}', which is not defined"))?;
    stack.push(name.to_string());
    let result = match &m.kind {
        MetricKind::Aggregation { func, input, .. } => Ok(match func {
            AggFunc::Count | AggFunc::LongSum | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => true,
            AggFunc::DoubleSum => false,
            // Min/max keep the column's type; decided against the schema per table, assume
            // integer for plain columns here and fix up in `build_table`.
            AggFunc::Min | AggFunc::Max => matches!(input, AggInput::Column(_)),
        }),
        MetricKind::Post(e) => {
            let mut all_int = !e.has_division();
            for r in e.refs() {
                all_int &= metric_type(catalog, &r, stack, done)?;
            }
            Ok(all_int)
        }
        MetricKind::NestedAvg { of, .. } => metric_type(catalog, of, stack, done).map(|_| false),
    };
    stack.pop();
    if let Ok(v) = result {
        done.insert(name.to_string(), v);
    }
    result
}

fn build_table(
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
    // Every metric the table offers must be computable from some physical table.
    check_metrics_computable(&key, spec, &physical, catalog, p);
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
    let paths = match physical::expand_path(root, &ps.path) {
        Ok(x) => x,
        Err(e) => {
            p.add(&format!("{key}.path"), e);
            return None;
        }
    };
    let mut files = Vec::new();
    for path in &paths {
        match physical::open_file(path, &ps.time_column) {
            Ok(f) => files.push(Arc::new(f)),
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
    let availability = physical::availability(&files, grain, tz);
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
    })
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
                    if let Ok(f) = t.schema.field_with_name(&c)
                        && matches!(input, AggInput::Expr(_))
                        && !is_numeric_type(f.data_type())
                    {
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
