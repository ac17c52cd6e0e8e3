//! Golden totals on real data: the embedded flights (checked against arrow compute over the
//! same Parquet) and, when the shared data folder is present, Druid's wikiticker sample.

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use quiver::catalog::physical;
use quiver::engine::plan::*;
use quiver::engine::{self, QueryResult};
use quiver::time::{Grain, Interval};
use std::path::Path;
use std::sync::Arc;

fn plan(path: &Path, time: &str, aggs: Vec<(&str, AggFunc, AggInput)>) -> QueryPlan {
    let f = Arc::new(physical::open_file(path, time).unwrap());
    let aggregations: Vec<AggregationPlan> = aggs
        .into_iter()
        .map(|(n, func, input)| AggregationPlan { name: n.into(), func, input, filter: None, integer: true })
        .collect();
    let outputs = aggregations
        .iter()
        .enumerate()
        .map(|(i, a)| OutputMetric { name: a.name.clone(), kind: OutputKind::Agg(i), integer: true, hidden: false })
        .collect();
    QueryPlan {
        files: vec![f],
        time_column: time.into(),
        intervals: vec![Interval::new(0, 4_102_444_800_000)],
        grain: Grain::All,
        tz: chrono_tz::UTC,
        group_by: vec![],
        filters: vec![],
        aggregations,
        outputs,
        shape: Shape::default(),
        limits: Limits::default(),
    }
}

fn value(r: &QueryResult, name: &str) -> i64 {
    r.batch.column_by_name(name).unwrap().as_primitive::<Int64Type>().value(0)
}

/// Sum and non-null count of a column, straight from arrow compute.
fn arrow_sum(path: &Path, column: &str) -> (i64, i64) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap();
    let (mut sum, mut count) = (0i64, 0i64);
    for b in reader {
        let b = b.unwrap();
        let c = arrow::compute::cast(b.column_by_name(column).unwrap(), &arrow::datatypes::DataType::Int64).unwrap();
        let c = c.as_primitive::<Int64Type>();
        sum += arrow::compute::sum(c).unwrap_or(0);
        count += (c.len() - c.null_count()) as i64;
    }
    (sum, count)
}

#[test]
fn flights_totals() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flights.parquet");
    let p = plan(
        &path,
        "time_hour",
        vec![
            ("rows", AggFunc::Count, AggInput::Rows),
            ("departed", AggFunc::Count, AggInput::Column("dep_delay".into())),
            ("depDelay", AggFunc::LongSum, AggInput::Column("dep_delay".into())),
            ("arrDelay", AggFunc::LongSum, AggInput::Column("arr_delay".into())),
            ("distance", AggFunc::LongSum, AggInput::Column("distance".into())),
            ("tails", AggFunc::CountDistinct, AggInput::Column("tailnum".into())),
            ("carriers", AggFunc::CountDistinct, AggInput::Column("carrier".into())),
            ("dests", AggFunc::CountDistinct, AggInput::Column("dest".into())),
        ],
    );
    let r = engine::execute(&p, &CancelToken::default()).unwrap();
    assert_eq!(value(&r, "rows"), 336_776);
    assert_eq!(value(&r, "departed"), 336_776 - 8_255);
    let (dep_sum, dep_n) = arrow_sum(&path, "dep_delay");
    assert_eq!((value(&r, "depDelay"), value(&r, "departed")), (dep_sum, dep_n));
    assert_eq!(value(&r, "arrDelay"), arrow_sum(&path, "arr_delay").0);
    assert_eq!(value(&r, "distance"), arrow_sum(&path, "distance").0);
    assert_eq!(value(&r, "tails"), 4_043);
    assert_eq!(value(&r, "carriers"), 16);
    assert_eq!(value(&r, "dests"), 105);
    assert_eq!(r.stats.rows_scanned, 336_776);
    assert_eq!(r.stats.row_groups_scanned, 21);
}

#[test]
fn flights_time_pruning_reads_only_matching_row_groups() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flights.parquet");
    let mut p = plan(&path, "time_hour", vec![("rows", AggFunc::Count, AggInput::Rows)]);
    // One day in June.
    p.intervals = vec![Interval::new(1_370_390_400_000, 1_370_476_800_000)];
    let r = engine::execute(&p, &CancelToken::default()).unwrap();
    assert!(r.stats.row_groups_scanned <= 2, "{:?}", r.stats);
    assert_eq!(r.stats.row_groups_pruned + r.stats.row_groups_scanned, 21);
    assert!(value(&r, "rows") > 900);
}

#[test]
fn wikiticker_totals_when_shared_data_is_present() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/wikiticker/wikiticker-2015-09-12.parquet");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let p = plan(
        &path,
        "time",
        vec![
            ("rows", AggFunc::Count, AggInput::Rows),
            ("added", AggFunc::LongSum, AggInput::Column("added".into())),
            ("deleted", AggFunc::LongSum, AggInput::Column("deleted".into())),
            ("delta", AggFunc::LongSum, AggInput::Column("delta".into())),
            ("channels", AggFunc::CountDistinct, AggInput::Column("channel".into())),
            ("pages", AggFunc::CountDistinct, AggInput::Column("page".into())),
            ("users", AggFunc::CountDistinct, AggInput::Column("user".into())),
            ("countries", AggFunc::CountDistinct, AggInput::Column("countryName".into())),
            ("approxPages", AggFunc::ApproxCountDistinct, AggInput::Column("page".into())),
        ],
    );
    let r = engine::execute(&p, &CancelToken::default()).unwrap();
    assert_eq!(value(&r, "rows"), 39_244);
    assert_eq!(value(&r, "added"), 9_385_573);
    assert_eq!(value(&r, "deleted"), 394_298);
    assert_eq!(value(&r, "delta"), 8_991_275);
    assert_eq!(value(&r, "channels"), 51);
    assert_eq!(value(&r, "pages"), 35_143);
    assert_eq!(value(&r, "users"), 10_531);
    assert_eq!(value(&r, "countries"), 113);
    let approx = value(&r, "approxPages") as f64;
    assert!((approx - 35_143.0).abs() / 35_143.0 < 0.02, "{approx}");
}
