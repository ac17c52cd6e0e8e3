//! Reading and checking the catalog files. Problems are collected, not thrown at the first,
//! so `quiver check` can print every mistake at once; each names the file, the key and what
//! was expected.

use super::problems::{Defined, Problems, valid_name};
use super::spec::{CatalogFile, DimensionSpec, FieldSpec, MetricSpec, TableSpec};
use super::{Catalog, Dimension, Field, Metric, MetricKind, expr, lookup};
use crate::engine::plan::{AggFunc, AggInput, CmpOp, PredOp, Predicate};
use crate::time::Grain;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads every `*.toml` under `tables_dir`, resolving data paths against `data_root`.
pub fn load(tables_dir: &Path, data_root: &Path) -> Result<Catalog, Vec<String>> {
    load_reusing(tables_dir, data_root, None)
}

/// [`load`], reusing the parsed footers of `previous` for files that have not changed on
/// disk (same path, size and modification time), so a reload re-reads only what changed.
pub fn load_reusing(tables_dir: &Path, data_root: &Path, previous: Option<&Catalog>) -> Result<Catalog, Vec<String>> {
    use super::tables::build_table;
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
    let footers = previous.map(|c| c.footers()).unwrap_or_default();
    let defined = Defined { dims: dims.keys().cloned().collect(), metrics: metrics.keys().cloned().collect(), footers };
    for (name, (path, spec)) in &tables {
        let mut p = Problems::new(path, &mut problems);
        if let Some(t) = build_table(name, spec, data_root, &catalog, &defined, &mut p) {
            catalog.tables.insert(name.clone(), t);
        }
    }
    if problems.is_empty() {
        Ok(catalog)
    } else {
        // A definition used in several places is checked in each: say each problem once.
        let mut seen = std::collections::HashSet::new();
        problems.retain(|p| seen.insert(p.clone()));
        Err(problems)
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
    let de = toml::Deserializer::parse(&text)
        .map_err(|e| format!("{}: {}", path.display(), crate::config::toml_message(&text, &e)))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        format!("{}: key `{key}`: {}", path.display(), crate::config::toml_message(&text, &inner))
    })
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
            // The key and explicitly mapped fields must exist; unmapped fields read a
            // like-named column if there is one and stay empty otherwise.
            let columns: Vec<lookup::LookupColumn> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| match (i, l.fields.get(&f.name)) {
                    (0, _) => lookup::LookupColumn { name: l.key.clone(), required: true },
                    (_, Some(c)) => lookup::LookupColumn { name: c.clone(), required: true },
                    (_, None) => lookup::LookupColumn { name: f.name.clone(), required: false },
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
    })
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
