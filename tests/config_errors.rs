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

/// Writes `rows` flights-like rows with an integer time column counting seconds.
fn epoch_seconds_file(path: &Path) -> i64 {
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;
    let day = common::day_ms("2013-06-01") / 1000;
    let times: Int64Array = (0..48).map(|h| Some(day + h * 1800)).collect();
    let carriers = StringArray::from(vec!["UA"; 48]);
    std::fs::write(path, common::parquet_of(vec![("epoch", Arc::new(times)), ("carrier", Arc::new(carriers))]))
        .unwrap();
    48
}

const EPOCH_TOML: &str = r#"
[table.epochs]
grains = ["hour", "day", "all"]
dimensions = ["carrier"]
metrics = ["flights"]

[[table.epochs.physical]]
name = "epochs_raw"
path = "data/epochs.parquet"
time_column = "epoch"
grain = "hour"
"#;

#[test]
fn an_integer_time_column_needs_a_time_unit() {
    let d = common::scratch_config();
    epoch_seconds_file(&d.path().join("data/epochs.parquet"));
    let toml = d.path().join("config/tables/epochs.toml");
    std::fs::write(&toml, EPOCH_TOML).unwrap();
    let p = problems(d.path());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("table.epochs.physical[0].time_column") && p[0].contains("time_unit"), "{}", p[0]);
    std::fs::write(&toml, EPOCH_TOML.replace("grain = \"hour\"", "grain = \"hour\"\ntime_unit = \"fortnights\""))
        .unwrap();
    assert!(problems(d.path())[0].contains("'fortnights' is not a time unit"));
    std::fs::write(&toml, EPOCH_TOML.replace("grain = \"hour\"", "grain = \"hour\"\ntime_unit = \"s\"")).unwrap();
    assert_eq!(problems(d.path()), Vec::<String>::new());
    // And the data lands in 2013, not 1970.
    let (_, catalog) = quiver::app::load_config(&d.path().join("config")).unwrap();
    let avail = catalog.tables["epochs"].availability();
    assert_eq!(avail[0].iso_utc(), "2013-06-01T00:00:00.000Z/2013-06-02T00:00:00.000Z");
    // A timestamp column with a time_unit is a mistake too.
    edit(d.path(), "time_column = \"time_hour\"", "time_column = \"time_hour\"\ntime_unit = \"ms\"");
    assert!(problems(d.path()).iter().any(|p| p.contains("time_unit is for a time column of 64-bit integers")));
}

#[test]
fn every_grain_must_be_servable() {
    let d = common::scratch_config();
    edit(d.path(), "grains = [\"hour\",", "grains = [\"minute\", \"hour\",");
    let p = problems(d.path());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("table.flights.grains") && p[0].contains("grain 'minute' cannot be served"), "{}", p[0]);
}

#[test]
fn sums_need_numeric_columns_and_each_problem_is_said_once() {
    let d = common::scratch_config();
    edit(
        d.path(),
        "aggregation = \"longSum\"\ncolumn = \"dep_delay\"",
        "aggregation = \"longSum\"\ncolumn = \"carrier\"",
    );
    let p = problems(d.path());
    assert_eq!(p.len(), 1, "depDelay is used by several metrics but said once: {p:?}");
    assert!(p[0].contains("metric.depDelay.column") && p[0].contains("longSum needs a numeric column"), "{}", p[0]);
    // count and the distinct counts take any column.
    let d = common::scratch_config();
    edit(d.path(), "column = \"dep_delay\"", "column = \"carrier\"");
    assert_eq!(problems(d.path()), Vec::<String>::new());
}

#[test]
fn rollups_must_hold_what_they_declare() {
    let d = common::scratch_config();
    edit(
        d.path(),
        "dimensions = [\"carrier\", \"origin\", \"dest\"]",
        "dimensions = [\"carrier\", \"origin\", \"dest\", \"tailnum\"]",
    );
    let p = problems(d.path());
    assert!(p.iter().any(|x| x.contains("dimension.tailnum.column") && x.contains("flights_day")), "{p:?}");
    let d = common::scratch_config();
    edit(d.path(), "metrics = [\"flights\", \"departed\",", "metrics = [\"flights\", \"cancelled\", \"departed\",");
    assert!(problems(d.path()).iter().any(|x| x.contains("'cancelled' cannot be stored in a rollup")));
}

#[test]
fn check_verbose_describes_files_and_warns_about_unmatched_lookup_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["check", "--verbose", "--config"])
        .arg(common::embedded_config())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "physical flights_raw (raw, grain hour, 1 file(s), 336776 rows",
        "time column time_hour: timestamps aligned to hour",
        "availability: 2013-01-01T00:00:00.000Z/2014-01-02T00:00:00.000Z",
        "      carrier: Utf8",
        "physical flights_day (rollup, grain day",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: dimension 'origin': 1455 of 1458 lookup keys match no value in the data"), "{err}");
}

#[test]
fn init_writes_a_catalog_that_check_accepts_and_serve_serves() {
    let d = tempfile::tempdir().unwrap();
    let config = d.path().join("config");
    let wiki = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wikiticker-2015-09-12.parquet");
    let flights = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flights.parquet");
    let epochs = d.path().join("events.parquet");
    epoch_seconds_file(&epochs);
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("init")
        .args([&wiki, &flights])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wiki_toml = std::fs::read_to_string(config.join("tables/wikiticker_2015_09_12.toml")).unwrap();
    for want in
        ["time_column = \"time\"", "\"channel\"", "# 'page' is not a dimension", "[metric.added]", "[metric.rows]"]
    {
        assert!(wiki_toml.contains(want), "{want} in {wiki_toml}");
    }
    let ok = Command::new(env!("CARGO_BIN_EXE_quiver")).args(["check", "--config"]).arg(&config).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // Served at once: the Wikipedia sums match the data set's published checks.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = common::start(&config).await;
        let r = common::get(
            &s,
            "/v1/data/wikiticker_2015_09_12/day/channel?metrics=added,deleted,rows&dateTime=2015-09-12/2015-09-13",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let rows = r.json()["rows"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 51, "51 channels");
        let sum = |k: &str| rows.iter().map(|x| x[k].as_i64().unwrap()).sum::<i64>();
        assert_eq!((sum("added"), sum("deleted"), sum("rows")), (9_385_573, 394_298, 39_244));
        assert!(r.json().get("meta").is_none(), "the one day is fully available: {}", r.body);
        let f = common::get(&s, "/v1/data/flights/all/origin?metrics=rows&dateTime=2013-01-01/2014-01-02").await;
        assert_eq!(f.json()["rows"].as_array().unwrap().len(), 3, "{}", f.body);
    });
    // An integer time column: its unit guessed from the magnitude, and written down.
    let config2 = d.path().join("config2");
    let renamed = d.path().join("ticks.parquet");
    std::fs::rename(&epochs, &renamed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("init")
        .arg(&renamed)
        .arg("--config")
        .arg(&config2)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(config2.join("tables/ticks.toml")).unwrap();
    assert!(text.contains("time_column = \"epoch\"") && text.contains("time_unit = \"s\""), "{text}");
    let ok = Command::new(env!("CARGO_BIN_EXE_quiver")).args(["check", "--config"]).arg(&config2).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn the_distributed_engine_needs_a_scheduler_and_a_known_engine_name() {
    let d = common::scratch_config();
    edit(d.path(), "grain = \"hour\"\n", "grain = \"hour\"\nengine = \"druid\"\n");
    let p = problems(d.path());
    assert!(
        p.iter().any(|x| x.contains("physical[0].engine") && x.contains("'druid' is neither local nor distributed")),
        "{p:?}"
    );
    edit(d.path(), "engine = \"druid\"", "engine = \"distributed\"");
    let p = problems(d.path());
    if cfg!(feature = "distributed") {
        assert!(
            p.iter().any(|x| x.contains("'flights_raw' has engine = \"distributed\"")
                && x.contains("gateway.toml sets no `distributed.scheduler`")),
            "{p:?}"
        );
    } else {
        assert!(p.iter().any(|x| x.contains("physical[0].engine") && x.contains("--features distributed")), "{p:?}");
    }
    // A scheduler address that is not df://host:port names the key.
    let g = d.path().join("config/gateway.toml");
    let text = std::fs::read_to_string(&g).unwrap() + "\n[distributed]\nscheduler = \"http://x:1\"\n";
    std::fs::write(&g, text).unwrap();
    let p = problems(d.path());
    assert!(p.iter().any(|x| x.contains("key `distributed.scheduler`") && x.contains("df://host:port")), "{p:?}");
}
