//! Broken configurations: each mistake gets a message naming the file, the key and what was
//! expected; `quiver check` prints them all and exits non-zero.

mod common;

use std::path::Path;
use std::process::Command;

fn edit(dir: &Path, from: &str, to: &str) {
    let p = dir.join("config/tables/flights.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.contains(from), "fixture lacks {from}");
    std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
}

fn problems(dir: &Path) -> Vec<String> {
    match quiver::app::load_config(&dir.join("config")) {
        Ok(_) => vec![],
        Err(p) => p,
    }
}

#[test]
fn embedded_config_is_clean() {
    let d = common::scratch_config();
    assert_eq!(problems(d.path()), Vec::<String>::new());
}

#[test]
fn unknown_key_names_file_key_and_line() {
    let d = common::scratch_config();
    edit(d.path(), "aggregation = \"count\"\ncolumn = \"dep_delay\"", "aggregation = \"count\"\ncolum = \"dep_delay\"");
    let p = problems(d.path());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("flights.toml") && p[0].contains("metric.departed") && p[0].contains("unknown field `colum`"),
        "{}",
        p[0]
    );
    assert!(p[0].contains("line "), "{}", p[0]);
}

#[test]
fn missing_column_names_metric_and_table() {
    let d = common::scratch_config();
    edit(d.path(), "column = \"arr_delay\"", "column = \"arr_delya\"");
    let p = problems(d.path());
    assert!(
        p.iter().any(
            |x| x.contains("key `metric.arrived`") && x.contains("column 'arr_delya' is not in the Parquet schema")
        ),
        "{p:?}"
    );
}

#[test]
fn missing_dimension_column() {
    let d = common::scratch_config();
    edit(d.path(), "[dimension.flight]\n", "[dimension.flight]\ncolumn = \"flight_no\"\n");
    let p = problems(d.path());
    assert!(
        p.iter().any(|x| x.contains("key `dimension.flight.column`")
            && x.contains("column 'flight_no' is not in the Parquet schema of physical table 'flights_raw'")),
        "{p:?}"
    );
}

#[test]
fn missing_file() {
    let d = common::scratch_config();
    edit(d.path(), "path = \"data/flights.parquet\"", "path = \"data/nope.parquet\"");
    let p = problems(d.path());
    assert!(
        p.iter().any(|x| x.contains("key `table.flights.physical[0].path`")
            && x.contains("file 'data/nope.parquet' does not exist")),
        "{p:?}"
    );
}

#[test]
fn bad_grain_and_every_problem_reported() {
    let d = common::scratch_config();
    edit(d.path(), "grains = [\"hour\",", "grains = [\"fortnight\", \"hour\",");
    edit(d.path(), "time_column = \"time_hour\"", "time_column = \"when\"");
    edit(d.path(), "per = \"day\"", "per = \"hour\"");
    let p = problems(d.path());
    assert!(
        p.iter().any(|x| x.contains("key `table.flights.grains`") && x.contains("'fortnight' is not a grain")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x.contains("time_column") && x.contains("column 'when' is not in the Parquet schema")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x.contains("metric.dayAvgFlights.per") && x.contains("expected day, week or month")),
        "{p:?}"
    );
}

#[test]
fn undefined_references() {
    let d = common::scratch_config();
    edit(d.path(), "expression = \"flights - departed\"", "expression = \"flights - gone\"");
    edit(d.path(), "dimensions = [\"carrier\",", "dimensions = [\"airline\", \"carrier\",");
    let p = problems(d.path());
    assert!(
        p.iter().any(|x| x.contains("metric.cancelled") && x.contains("metric 'gone', which is not defined")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x.contains("table.flights.dimensions") && x.contains("dimension 'airline' is not defined")),
        "{p:?}"
    );
}

#[test]
fn check_command_prints_problems_and_fails() {
    let d = common::scratch_config();
    edit(d.path(), "aggregation = \"max\"", "aggregation = \"maximum\"");
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["check", "--config"])
        .arg(d.path().join("config"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 problem(s) found") && err.contains("'maximum' is not an aggregation"), "{err}");
    let ok = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["check", "--config"])
        .arg(common::embedded_config())
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("2 physical table(s)"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}
