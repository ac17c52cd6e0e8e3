//! `quiver init PARQUET...`: a starter catalog written from files' schemas, every guess
//! commented, that `quiver check` accepts and `quiver serve` serves at once.
//!
//! Guesses: the time column (the first timestamp or date, else an integer column named like
//! a time, its unit from the values' magnitude), the grain its values are aligned to,
//! strings and booleans with few distinct values as dimensions, numeric columns as sums, and
//! a row count.

use crate::catalog::physical::{self, DataFile};
use crate::inspect::{inferred_grain, sample_column};
use crate::time::Grain;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What one file became: the table name and the TOML text.
pub struct Starter {
    pub table: String,
    pub toml: String,
}

/// A catalog name from a column or file name: letters, digits and `_`.
fn name_of(s: &str) -> String {
    let n: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) { format!("t_{n}") } else { n }
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The unit of integer timestamps from their magnitude (a time after 1973 in that unit).
fn unit_of(sample: i64) -> (TimeUnit, &'static str) {
    match sample.unsigned_abs() {
        v if v >= 100_000_000_000_000_000 => (TimeUnit::Nanosecond, "ns"),
        v if v >= 100_000_000_000_000 => (TimeUnit::Microsecond, "us"),
        v if v >= 100_000_000_000 => (TimeUnit::Millisecond, "ms"),
        _ => (TimeUnit::Second, "s"),
    }
}

/// The guessed time column.
struct TimeGuess {
    name: String,
    /// For an integer column: its unit, and how `time_unit` spells it.
    unit: Option<(TimeUnit, &'static str)>,
    /// Why, for the comment.
    why: String,
}

/// The time column: its name, the unit of an integer column, and a comment on the guess.
fn time_column(f: &DataFile) -> Result<TimeGuess, String> {
    let schema = f.metadata.schema();
    if let Some(c) = schema.fields().iter().find(|c| physical::is_time_type(c.data_type())) {
        let why = format!("the first timestamp or date column ({})", c.data_type());
        return Ok(TimeGuess { name: c.name().clone(), unit: None, why });
    }
    let timeish = |n: &str| {
        let n = n.to_ascii_lowercase();
        ["time", "ts", "timestamp", "date", "datetime", "epoch", "created", "event_time"].contains(&n.as_str())
            || n.ends_with("_time")
            || n.ends_with("_at")
            || n.ends_with("_ts")
    };
    let c = schema
        .fields()
        .iter()
        .find(|c| c.data_type() == &DataType::Int64 && timeish(c.name()))
        .ok_or("no timestamp, date, or time-named 64-bit integer column: name the time column yourself")?;
    let arr = sample_column(f, c.name()).ok_or("cannot read the time column")?;
    let first = arr.as_primitive::<Int64Type>().iter().flatten().next().ok_or("the time column is empty")?;
    let unit = unit_of(first);
    let why = format!("integer column named like a time; its values ({first}, …) look like {} since 1970", unit.1);
    Ok(TimeGuess { name: c.name().clone(), unit: Some(unit), why })
}

/// Distinct values among the sampled rows of a string or boolean column.
fn distinct(f: &DataFile, column: &str) -> Option<(usize, usize)> {
    let arr = sample_column(f, column)?;
    let strings = arrow::compute::cast(&arr, &DataType::Utf8).ok()?;
    let s = strings.as_string::<i32>();
    let set: BTreeSet<&str> = s.iter().flatten().collect();
    Some((set.len(), arr.len()))
}

/// The starter TOML for one Parquet file. `defined` holds dimension and metric names already
/// written by earlier files of the same run (shared, not defined twice).
pub fn starter(path: &Path, defined: &mut BTreeSet<String>) -> Result<Starter, String> {
    let abs = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let probe = physical::open_file(&abs, "")?;
    let TimeGuess { name: time, unit, why } = time_column(&probe).map_err(|e| format!("{}: {e}", path.display()))?;
    let f = physical::open_file_as(&abs, &time, unit.map(|u| u.0))?;
    let grain = inferred_grain(&f, &time).unwrap_or(Grain::Second);
    let grain = if grain == Grain::Month { Grain::Month } else { grain.min(Grain::Day) };
    let table = name_of(abs.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default().as_str());
    let mut dims = Vec::new();
    let mut metrics = Vec::new();
    let mut notes = Vec::new();
    for c in f.metadata.schema().fields().iter().filter(|c| *c.name() != time) {
        let n = name_of(c.name());
        match c.data_type() {
            DataType::Dictionary(_, _)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Boolean => match distinct(&f, c.name()) {
                Some((d, rows)) if d <= 100_000 && d * 2 <= rows.max(2) => {
                    dims.push((n, c.name().clone(), format!("{d} distinct values in {rows} sampled rows")))
                }
                Some((d, rows)) => notes.push(format!(
                    "'{}' is not a dimension: {d} distinct values in {rows} sampled rows are too many to group by",
                    c.name()
                )),
                None => notes.push(format!("'{}' could not be read", c.name())),
            },
            t if t.is_integer() => metrics.push((n, c.name().clone(), "longSum")),
            t if t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
                metrics.push((n, c.name().clone(), "doubleSum"))
            }
            t => notes.push(format!("'{}' ({t}) is neither a dimension nor a metric", c.name())),
        }
    }
    let count = ["rows", "rowCount", "row_count"]
        .into_iter()
        .find(|n| !metrics.iter().any(|m| m.0 == *n) && !dims.iter().any(|d| d.0 == *n))
        .unwrap_or("rowCount");
    let mut out = String::new();
    let _ = writeln!(out, "# Written by `quiver init` from {}. Every guess is commented: edit freely,", abs.display());
    let _ = writeln!(out, "# then run `quiver check --verbose`.\n");
    for n in &notes {
        let _ = writeln!(out, "# {n}");
    }
    let grains: Vec<&str> = ["second", "minute", "hour", "day", "week", "month", "quarter", "year", "all"]
        .into_iter()
        .filter(|g| Grain::parse(g).is_some_and(|g| grain.can_satisfy(g)))
        .collect();
    let _ = writeln!(out, "\n[table.{table}]");
    let _ = writeln!(
        out,
        "description = {}",
        toml_str(&format!("From {}", abs.file_name().unwrap_or_default().to_string_lossy()))
    );
    let _ = writeln!(out, "grains = [{}]", grains.iter().map(|g| toml_str(g)).collect::<Vec<_>>().join(", "));
    let _ = writeln!(out, "dimensions = [{}]", dims.iter().map(|d| toml_str(&d.0)).collect::<Vec<_>>().join(", "));
    let mut names: Vec<String> = vec![count.to_string()];
    names.extend(metrics.iter().map(|m| m.0.clone()));
    let _ = writeln!(out, "metrics = [{}]", names.iter().map(|m| toml_str(m)).collect::<Vec<_>>().join(", "));
    let _ = writeln!(
        out,
        "\n[[table.{table}.physical]]\nname = \"{table}_raw\"\npath = {}",
        toml_str(&abs.to_string_lossy())
    );
    let _ = writeln!(out, "time_column = {}  # {why}", toml_str(&time));
    if let Some((_, u)) = unit {
        let _ = writeln!(out, "time_unit = \"{u}\"");
    }
    let _ = writeln!(out, "grain = \"{}\"  # every sampled timestamp is aligned to a {}", grain.name(), grain.name());
    for (n, col, why) in &dims {
        if defined.insert(format!("dimension.{n}")) {
            let _ = writeln!(out, "\n[dimension.{n}]  # {why}");
            if n != col {
                let _ = writeln!(out, "column = {}", toml_str(col));
            }
        }
    }
    if defined.insert(format!("metric.{count}")) {
        let _ = writeln!(out, "\n[metric.{count}]  # one per row\naggregation = \"count\"");
    }
    for (n, col, agg) in &metrics {
        if defined.insert(format!("metric.{n}")) {
            let _ = writeln!(
                out,
                "\n[metric.{n}]  # the sum of a numeric column\naggregation = \"{agg}\"\ncolumn = {}",
                toml_str(col)
            );
        }
    }
    Ok(Starter { table, toml: out })
}

/// Writes a starter catalog for `files` into `dir/tables/` (and a `gateway.toml` when there is
/// none); refuses to overwrite a table file. Returns the files written.
pub fn write(files: &[PathBuf], dir: &Path) -> Result<Vec<PathBuf>, String> {
    let tables = dir.join("tables");
    std::fs::create_dir_all(&tables).map_err(|e| format!("{}: {e}", tables.display()))?;
    let mut defined = BTreeSet::new();
    let mut written = Vec::new();
    for f in files {
        let s = starter(f, &mut defined)?;
        let out = tables.join(format!("{}.toml", s.table));
        if out.exists() {
            return Err(format!("{} exists; move it away or choose another --config", out.display()));
        }
        std::fs::write(&out, s.toml).map_err(|e| format!("{}: {e}", out.display()))?;
        written.push(out);
    }
    let gw = dir.join("gateway.toml");
    if !gw.exists() {
        let text = "# quiver gateway settings (every key optional; see the README).\n[jobs]\ndir = \"../var/jobs\"\n";
        std::fs::write(&gw, text).map_err(|e| format!("{}: {e}", gw.display()))?;
        written.push(gw);
    }
    Ok(written)
}
