//! The engine on TPC-H lineitem (generated with tpchgen, sorted by ship date): a full-scan
//! group-by (Q1-like), a narrow time range (pruning) and a high-cardinality group-by.
//! Scale factor from `QUIVER_BENCH_SF` (default 0.1); data cached under target/bench-data.
//!
//! The same queries then run on a copy written the way other tools write by default (zstd,
//! no dictionary for numbers, no page index, one row group per 1M rows), with the chunk cache
//! off and on (`chunk_cache_on` is work avoided: decompressed, re-encoded chunks kept), and on
//! a copy with one page per column chunk, as DuckDB writes them.

use criterion::{Criterion, criterion_group, criterion_main};
use quiver::catalog::expr;
use quiver::catalog::physical;
use quiver::engine::pages::chunks;
use quiver::engine::{self, plan::*};
use quiver::time::{Grain, Interval};
use std::path::PathBuf;
use std::sync::Arc;

fn data(sf: f64) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-data/lineitem_sf{sf}.parquet"));
    if !path.exists() {
        let n = quiver::tpch::write_lineitem(sf, &path).expect("generate lineitem");
        eprintln!("generated {n} rows into {}", path.display());
    }
    path
}

/// `src` rewritten like a foreign writer: zstd, numbers without dictionaries, no page index;
/// with `one_page`, one page per column chunk, as DuckDB writes them (a range ending early in
/// a row group then decompresses only part of a page: `inflate::page` with a prefix).
fn foreign_copy(src: &std::path::Path, one_page: bool) -> PathBuf {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let out = src.with_extension(if one_page { "one_page.parquet" } else { "foreign.parquet" });
    if out.exists() {
        return out;
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(src).unwrap()).unwrap().build().unwrap();
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(1 << 20))
        .set_offset_index_disabled(true)
        .set_statistics_enabled(EnabledStatistics::Chunk);
    if one_page {
        props = props.set_data_page_row_count_limit(usize::MAX).set_data_page_size_limit(usize::MAX);
    }
    for c in ["quantity", "extended_price", "discount", "tax"] {
        props = props.set_column_dictionary_enabled(c.into(), false);
    }
    let mut w = None;
    for b in reader {
        let b = b.unwrap();
        let w = w.get_or_insert_with(|| {
            ArrowWriter::try_new(std::fs::File::create(&out).unwrap(), b.schema(), Some(props.clone().build())).unwrap()
        });
        w.write(&b).unwrap();
    }
    w.unwrap().close().unwrap();
    out
}

fn day(y: i32, m: u32, d: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

fn agg(name: &str, func: AggFunc, input: AggInput) -> AggregationPlan {
    AggregationPlan { name: name.into(), func, input, filter: None, integer: matches!(func, AggFunc::Count) }
}

fn plan(path: &std::path::Path, grain: Grain, iv: Interval, group: &[&str], aggs: Vec<AggregationPlan>) -> QueryPlan {
    let f = Arc::new(physical::open_file(path, "ship_date").unwrap());
    let outputs = OutputMetric::for_aggregations(&aggs);
    QueryPlan {
        files: vec![f],
        time_column: "ship_date".into(),
        intervals: vec![iv],
        grain,
        tz: chrono_tz::UTC,
        group_by: group.iter().map(|g| GroupBy { name: g.to_string(), column: g.to_string() }).collect(),
        filters: vec![],
        aggregations: aggs,
        outputs,
        shape: Shape::default(),
        limits: Limits::default(),
    }
}

fn bench(c: &mut Criterion) {
    let sf: f64 = std::env::var("QUIVER_BENCH_SF").ok().and_then(|v| v.parse().ok()).unwrap_or(0.1);
    let path = data(sf);
    let col = |c: &str| AggInput::Column(c.into());
    let q1 = plan(
        &path,
        Grain::All,
        Interval::new(day(1992, 1, 1), day(1998, 9, 3)),
        &["return_flag", "line_status"],
        vec![
            agg("sumQty", AggFunc::DoubleSum, col("quantity")),
            agg("sumBasePrice", AggFunc::DoubleSum, col("extended_price")),
            agg(
                "sumDiscPrice",
                AggFunc::DoubleSum,
                AggInput::Expr(expr::parse("extended_price * (1 - discount)").unwrap()),
            ),
            agg(
                "sumCharge",
                AggFunc::DoubleSum,
                AggInput::Expr(expr::parse("extended_price * (1 - discount) * (1 + tax)").unwrap()),
            ),
            agg("sumDisc", AggFunc::DoubleSum, col("discount")),
            agg("countOrder", AggFunc::Count, AggInput::Rows),
        ],
    );
    let narrow = plan(
        &path,
        Grain::Day,
        Interval::new(day(1995, 6, 5), day(1995, 6, 12)),
        &[],
        vec![
            agg("sumQty", AggFunc::DoubleSum, col("quantity")),
            agg("sumBasePrice", AggFunc::DoubleSum, col("extended_price")),
        ],
    );
    let wide = plan(
        &path,
        Grain::All,
        Interval::new(day(1992, 1, 1), day(1999, 1, 1)),
        &["supp_key"],
        vec![agg("sumQty", AggFunc::DoubleSum, col("quantity"))],
    );
    let mut g = c.benchmark_group(format!("lineitem_sf{sf}"));
    g.sample_size(10);
    let queries = [("q1_full_scan_group_by", q1), ("narrow_week_pruned", narrow), ("supp_key_high_cardinality", wide)];
    for (name, p) in &queries {
        g.bench_function(*name, |b| b.iter(|| engine::execute(p, &CancelToken::default()).unwrap()));
    }
    g.finish();
    let foreign = Arc::new(physical::open_file(&foreign_copy(&path, false), "ship_date").unwrap());
    let mut g = c.benchmark_group(format!("lineitem_sf{sf}_foreign_zstd"));
    g.sample_size(10);
    for cache in ["chunk_cache_off", "chunk_cache_on"] {
        chunks::set_capacity(if cache == "chunk_cache_on" { 1 << 30 } else { 0 });
        for (name, p) in &queries {
            let p = QueryPlan { files: vec![foreign.clone()], ..p.clone() };
            g.bench_function(format!("{name}/{cache}"), |b| {
                b.iter(|| engine::execute(&p, &CancelToken::default()).unwrap())
            });
        }
    }
    chunks::set_capacity(0);
    g.finish();
    // One page per chunk: the week and the years to mid-1997 end inside a row group's pages.
    let one_page = Arc::new(physical::open_file(&foreign_copy(&path, true), "ship_date").unwrap());
    let to_1997 = plan(
        &path,
        Grain::Month,
        Interval::new(day(1993, 1, 1), day(1997, 7, 1)),
        &["return_flag"],
        vec![agg("sumBasePrice", AggFunc::DoubleSum, col("extended_price"))],
    );
    let mut g = c.benchmark_group(format!("lineitem_sf{sf}_one_page_zstd"));
    g.sample_size(10);
    for (name, p) in [("narrow_week_pruned", &queries[1].1), ("months_to_mid_1997", &to_1997)] {
        let p = QueryPlan { files: vec![one_page.clone()], ..p.clone() };
        g.bench_function(name, |b| b.iter(|| engine::execute(&p, &CancelToken::default()).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
