//! Random tables and random query plans for the engine's differential tests: the reference
//! aggregator (tests/engine_reference.rs) and the distributed backend (tests/distributed.rs)
//! run the same generator.
#![allow(dead_code)]

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMillisecondType};
use chrono_tz::Tz;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use quiver::catalog::expr;
use quiver::catalog::physical::{self, DataFile};
use quiver::engine::plan::*;
use quiver::time::{self, Grain, Interval};
use std::path::Path;
use std::sync::Arc;

// ---------------------------------------------------------------- random numbers

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize].clone()
    }
}

// ---------------------------------------------------------------- random tables

#[derive(Clone, Debug)]
pub struct Row {
    pub ts: i64,
    pub s1: Option<String>,
    pub s2: Option<String>,
    pub i1: Option<i32>,
    pub b1: Option<bool>,
    pub v1: Option<i64>,
    pub v2: Option<f64>,
    /// A never-null, non-negative integer key.
    pub k: i64,
}

pub const T0: i64 = 1_356_998_400_000; // 2013-01-01T00:00:00Z
pub const SPAN: i64 = 400 * 86_400_000;

pub fn random_rows(rng: &mut Rng, n: usize) -> Vec<Row> {
    let s1s = ["a", "b", "c", "", "ab", "ba"];
    let s2s: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    // Some tables have no nulls at all (their pages skip definition levels).
    let nulls = rng.chance(45);
    let mut rows: Vec<Row> = (0..n)
        .map(|_| Row {
            // Cluster around DST changes sometimes.
            ts: if rng.chance(30) {
                T0 + 68 * 86_400_000 + rng.below(3 * 86_400_000) as i64
            } else {
                T0 + rng.below(SPAN as u64) as i64
            },
            s1: (!rng.chance(10)).then(|| rng.pick(&s1s).to_string()),
            s2: (!rng.chance(10)).then(|| rng.pick(&s2s)),
            i1: (!rng.chance(10)).then(|| rng.below(7) as i32 - 2),
            b1: (!rng.chance(15)).then(|| rng.chance(50)),
            v1: (!rng.chance(20)).then(|| rng.below(2000) as i64 - 1000),
            v2: (!rng.chance(20)).then(|| (rng.below(4000) as f64 - 2000.0) / 4.0),
            k: rng.below(60) as i64,
        })
        .map(|r| if nulls { r } else { without_nulls(r) })
        .collect();
    if rng.chance(70) {
        rows.sort_by_key(|r| r.ts);
    }
    rows
}

pub fn without_nulls(r: Row) -> Row {
    Row {
        s1: Some(r.s1.unwrap_or_else(|| "ba".into())),
        s2: Some(r.s2.unwrap_or_else(|| "k7".into())),
        i1: Some(r.i1.unwrap_or(3)),
        b1: Some(r.b1.unwrap_or(true)),
        v1: Some(r.v1.unwrap_or(-7)),
        v2: Some(r.v2.unwrap_or(0.25)),
        ..r
    }
}

pub fn batch_of(rows: &[Row]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("s1", DataType::Utf8, true),
        Field::new("s2", DataType::Utf8, true),
        Field::new("i1", DataType::Int32, true),
        Field::new("b1", DataType::Boolean, true),
        Field::new("v1", DataType::Int64, true),
        Field::new("v2", DataType::Float64, true),
        Field::new("k", DataType::Int64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.ts).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(StringArray::from(rows.iter().map(|r| r.s1.clone()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.s2.clone()).collect::<Vec<_>>())),
        Arc::new(Int32Array::from(rows.iter().map(|r| r.i1).collect::<Vec<_>>())),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.b1).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.v1).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| r.v2).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.k).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// Writes rows over several files (one possibly empty) with small random row groups.
pub fn write_table(rng: &mut Rng, dir: &Path, rows: &[Row]) -> Vec<Arc<DataFile>> {
    write_table_grouped(rng, dir, rows, |rng| 5 + rng.below(120) as usize)
}

/// [`write_table`] with each file's row group size drawn by `group_rows`.
pub fn write_table_grouped(
    rng: &mut Rng,
    dir: &Path,
    rows: &[Row],
    group_rows: impl Fn(&mut Rng) -> usize,
) -> Vec<Arc<DataFile>> {
    let nfiles = 1 + rng.below(3) as usize;
    let mut files = Vec::new();
    let chunk = rows.len().div_ceil(nfiles).max(1);
    let mut parts: Vec<&[Row]> = rows.chunks(chunk).collect();
    if rng.chance(30) {
        parts.push(&[]);
    }
    for (i, part) in parts.iter().enumerate() {
        let path = dir.join(format!("part-{i}.parquet"));
        let dict = rng.chance(50);
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows(rng)))
            // Several pages per row group, so the page index prunes inside row groups.
            .set_data_page_row_count_limit(2 + rng.below(20) as usize)
            .set_write_batch_size(2)
            .set_dictionary_enabled(dict)
            // Tiny dictionaries overflow mid-chunk (later pages PLAIN), as real ones do.
            .set_dictionary_page_size_limit(if rng.chance(30) { 40 } else { 1 << 20 })
            .set_writer_version(if rng.chance(50) { WriterVersion::PARQUET_2_0 } else { WriterVersion::PARQUET_1_0 })
            .set_compression(match rng.below(3) {
                0 => Compression::SNAPPY,
                // zstd pages are decompressed by the engine itself (pages/inflate.rs).
                1 => Compression::ZSTD(Default::default()),
                _ => Compression::UNCOMPRESSED,
            })
            // Format v2 pages stay compressed even when that does not pay (tiny pages would
            // otherwise always be stored as they are).
            .set_data_page_v2_compression_ratio_threshold(1e9)
            // Some files lack the offset index (pages are then found by their headers); the
            // first keeps it so the page-index assertion below holds.
            .set_offset_index_disabled(i > 0 && rng.chance(40))
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let b = batch_of(part);
        let mut w = ArrowWriter::try_new(file, b.schema(), Some(props)).unwrap();
        if !part.is_empty() {
            w.write(&b).unwrap();
        }
        w.close().unwrap();
        files.push(Arc::new(physical::open_file(&path, "ts").unwrap()));
    }
    files
}

/// Writes rows as one file of one row group, each column one zstd page of PLAIN values (no
/// dictionary) without an offset index, as DuckDB writes its files; format v2 pages when `v2`.
pub fn write_one_page(dir: &Path, rows: &[Row], v2: bool) -> Vec<Arc<DataFile>> {
    let path = dir.join("one-page.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows.len().max(1)))
        .set_data_page_row_count_limit(usize::MAX)
        .set_data_page_size_limit(usize::MAX)
        .set_dictionary_enabled(false)
        .set_writer_version(if v2 { WriterVersion::PARQUET_2_0 } else { WriterVersion::PARQUET_1_0 })
        .set_compression(Compression::ZSTD(Default::default()))
        // No page index at all (page statistics would bring the offset index back).
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .build();
    let b = batch_of(rows);
    let mut w = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), b.schema(), Some(props)).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    vec![Arc::new(physical::open_file(&path, "ts").unwrap())]
}

/// Puts `a` first among the plan's aggregations (outputs keep naming the same ones).
pub fn prepend_aggregation(plan: &mut QueryPlan, a: AggregationPlan) {
    fn shift(o: &mut OutputMetric) {
        match &mut o.kind {
            OutputKind::Agg(i) => *i += 1,
            OutputKind::NestedAvg { of, .. } => shift(of),
            OutputKind::Post(_) => {}
        }
    }
    plan.aggregations.insert(0, a);
    plan.outputs.iter_mut().for_each(shift);
}

// ---------------------------------------------------------------- random plans

pub const ZONES: [Tz; 4] =
    [chrono_tz::UTC, chrono_tz::America::New_York, chrono_tz::Europe::London, chrono_tz::Asia::Kolkata];
pub const DIMS: [&str; 5] = ["s1", "s2", "i1", "b1", "k"];

pub fn random_intervals(rng: &mut Rng, grain: Grain, tz: Tz) -> Vec<Interval> {
    let n = 1 + rng.below(3);
    let mut out = Vec::new();
    for _ in 0..n {
        if grain == Grain::All {
            let s = T0 - 86_400_000 + rng.below((SPAN + 2 * 86_400_000) as u64) as i64;
            out.push(Interval::new(s, s + 1 + rng.below(SPAN as u64 / 2) as i64));
            continue;
        }
        let max_len: i64 = match grain {
            Grain::Second | Grain::Minute => 200,
            Grain::Hour => 24 * 60,
            Grain::Day => 200,
            Grain::Week => 40,
            Grain::Month => 10,
            _ => 3,
        };
        let origin = time::floor(grain, tz, T0 - 40 * 86_400_000);
        let span_buckets: i64 = match grain {
            Grain::Second | Grain::Minute | Grain::Hour => SPAN / grain.fixed_ms().unwrap(),
            Grain::Day => 440,
            Grain::Week => 64,
            Grain::Month => 15,
            Grain::Quarter => 5,
            _ => 2,
        };
        let mut start = time::add(grain, tz, origin, rng.below(span_buckets as u64) as i64);
        if matches!(grain, Grain::Second | Grain::Minute) {
            // Land near rows so fine grains have data.
            start = time::floor(grain, tz, T0 + 68 * 86_400_000 + rng.below(3 * 86_400_000) as i64);
        }
        let end = time::add(grain, tz, start, 1 + rng.below(max_len as u64) as i64);
        out.push(Interval::new(start, end));
    }
    time::merge(out)
}

pub fn random_values(rng: &mut Rng, col: &str) -> Vec<String> {
    let pool: Vec<String> = match col {
        "s1" => ["a", "b", "c", "", "ab", "zz"].iter().map(|s| s.to_string()).collect(),
        "s2" => (0..35).map(|i| format!("k{i}")).collect(),
        "i1" => (-3..6).map(|i| i.to_string()).collect(),
        "k" => (0..70).map(|i| i.to_string()).collect(),
        _ => vec!["true".into(), "false".into(), "".into()],
    };
    (0..1 + rng.below(3)).map(|_| rng.pick(&pool)).collect()
}

pub fn random_pred(rng: &mut Rng) -> Predicate {
    let column = rng.pick(&DIMS).to_string();
    let values = random_values(rng, &column);
    let op = match rng.below(5) {
        0 => PredOp::In(values),
        1 => PredOp::NotIn(values),
        2 => PredOp::StartsWith(values.into_iter().map(|v| v.chars().take(1).collect()).collect()),
        3 => PredOp::Contains(values),
        _ => PredOp::In(values),
    };
    Predicate { column, op }
}

pub fn random_plan(rng: &mut Rng, files: &[Arc<DataFile>]) -> QueryPlan {
    let grain = rng.pick(&Grain::ALL_GRAINS);
    let tz = rng.pick(&ZONES);
    let intervals = random_intervals(rng, grain, tz);
    let ndims = rng.below(3) as usize;
    let mut dims: Vec<&str> = Vec::new();
    for _ in 0..ndims {
        let d = rng.pick(&DIMS);
        if !dims.contains(&d) {
            dims.push(d);
        }
    }
    let group_by = dims.iter().map(|d| GroupBy { name: format!("g_{d}"), column: d.to_string() }).collect();
    let filters = (0..rng.below(3)).map(|_| random_pred(rng)).collect();
    let catalog_aggs: Vec<(AggFunc, AggInput, bool)> = vec![
        (AggFunc::Count, AggInput::Rows, true),
        (AggFunc::Count, AggInput::Column("v1".into()), true),
        (AggFunc::LongSum, AggInput::Column("v1".into()), true),
        (AggFunc::DoubleSum, AggInput::Column("v2".into()), false),
        (AggFunc::Min, AggInput::Column("v1".into()), true),
        (AggFunc::Max, AggInput::Column("v2".into()), false),
        (AggFunc::CountDistinct, AggInput::Column("s2".into()), true),
        (AggFunc::ApproxCountDistinct, AggInput::Column("s2".into()), true),
        (AggFunc::DoubleSum, AggInput::Expr(expr::parse("v1 * 2 + v2 * (1 - 0.5)").unwrap()), false),
        (AggFunc::LongSum, AggInput::Column("i1".into()), true),
        (AggFunc::Max, AggInput::Expr(expr::parse("v2 - v1 / (v2 + 1) - -v1").unwrap()), false),
        // Contains the first expression: evaluated once per batch, reused here.
        (AggFunc::DoubleSum, AggInput::Expr(expr::parse("(v1 * 2 + v2 * (1 - 0.5)) * (v2 - 3)").unwrap()), false),
    ];
    let naggs = 1 + rng.below(4) as usize;
    let mut aggregations = Vec::new();
    for i in 0..naggs {
        let (func, input, integer) = rng.pick(&catalog_aggs);
        let filter = rng.chance(25).then(|| {
            if rng.chance(50) {
                random_pred(rng)
            } else {
                Predicate {
                    column: "v1".into(),
                    op: PredOp::Cmp(rng.pick(&[CmpOp::Gt, CmpOp::Lte, CmpOp::Eq]), rng.below(200) as f64 - 100.0),
                }
            }
        });
        aggregations.push(AggregationPlan { name: format!("a{i}"), func, input, filter, integer });
    }
    let mut outputs: Vec<OutputMetric> = aggregations
        .iter()
        .enumerate()
        .map(|(i, a)| OutputMetric {
            name: a.name.clone(),
            kind: OutputKind::Agg(i),
            integer: a.integer,
            hidden: rng.chance(15),
        })
        .collect();
    if rng.chance(50) {
        let a = rng.pick(&outputs).name;
        let b = rng.pick(&outputs).name;
        let text = rng.pick(&[format!("{a} - {b}"), format!("{a} / {b}"), format!("({a} + 3) * {b}")]);
        let e = expr::parse(&text).unwrap();
        let integer =
            !e.has_division() && [&a, &b].iter().all(|n| outputs.iter().find(|o| &&o.name == n).unwrap().integer);
        outputs.push(OutputMetric { name: "post".into(), kind: OutputKind::Post(e), integer, hidden: false });
    }
    // Nested averages where the request grain allows them.
    let pers: Vec<Grain> =
        [Grain::Day, Grain::Week, Grain::Month].into_iter().filter(|p| p.can_satisfy(grain)).collect();
    if !pers.is_empty() && rng.chance(40) {
        let per = rng.pick(&pers);
        let of = outputs[0].clone();
        outputs.push(OutputMetric {
            name: "nested".into(),
            kind: OutputKind::NestedAvg { of: Box::new(of), per },
            integer: false,
            hidden: false,
        });
    }
    let visible: Vec<String> = outputs.iter().filter(|o| !o.hidden).map(|o| o.name.clone()).collect();
    let mut shape = Shape::default();
    if !visible.is_empty() && rng.chance(30) {
        let m = rng.pick(&visible);
        let (op, values) = match rng.below(4) {
            0 => (HavingOp::Gt, vec![rng.below(10) as f64]),
            1 => (HavingOp::Lt, vec![rng.below(100) as f64, 3.0]),
            2 => (HavingOp::Eq, vec![1.0, 2.0]),
            _ => (HavingOp::Between, vec![0.0, rng.below(50) as f64]),
        };
        shape.having.push(HavingClause { metric: m, op, negate: rng.chance(30), values });
    }
    if rng.chance(60) {
        if rng.chance(20) {
            shape.sort.push(SortKey { column: SortColumn::Time, descending: rng.chance(50) });
        }
        for _ in 0..1 + rng.below(2) {
            let col = if !dims.is_empty() && rng.chance(30) {
                SortColumn::Dimension(rng.below(dims.len() as u64) as usize)
            } else if !visible.is_empty() {
                SortColumn::Metric(rng.pick(&visible))
            } else {
                continue;
            };
            shape.sort.push(SortKey { column: col, descending: rng.chance(60) });
        }
        if shape.sort.iter().any(|s| s.column != SortColumn::Time) && rng.chance(50) {
            shape.top_n = Some(1 + rng.below(3) as usize);
        }
    }
    if rng.chance(25) {
        shape.count = Some(rng.below(8) as usize + 1);
    }
    QueryPlan {
        files: files.to_vec(),
        time_column: "ts".into(),
        intervals,
        grain,
        tz,
        group_by,
        filters,
        aggregations,
        outputs,
        shape,
        limits: Limits {
            max_groups: 1_000_000,
            max_buckets: 10_000_000,
            max_bytes: 1 << 30,
            threads: 1 + rng.below(3) as usize,
            // Tiny slices, so row groups are split between workers in many plans.
            min_split_rows: 1 + rng.below(40) as usize,
            // Tiny tables still run on several workers (and merge their partials).
            min_rows_per_worker: 1,
            min_bytes_per_worker: 4 << 20,
            page_decoder: true,
            chunk_cache: true,
        },
    }
}

// ---------------------------------------------------------------- comparing answers

#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum V {
    Null,
    I(i64),
    F(f64),
}

impl V {
    pub fn f(&self) -> Option<f64> {
        match self {
            V::Null => None,
            V::I(i) => Some(*i as f64),
            V::F(x) => Some(*x),
        }
    }
}

pub fn engine_rows(b: &RecordBatch, ndims: usize) -> Vec<(i64, Vec<String>, Vec<V>)> {
    let t = b.column(0).as_primitive::<TimestampMillisecondType>();
    (0..b.num_rows())
        .map(|i| {
            let dims = (0..ndims).map(|d| b.column(1 + d).as_string::<i32>().value(i).to_string()).collect();
            let vals = (1 + ndims..b.num_columns())
                .map(|c| {
                    let col = b.column(c);
                    if col.is_null(i) {
                        V::Null
                    } else if col.data_type() == &DataType::Int64 {
                        V::I(col.as_primitive::<Int64Type>().value(i))
                    } else {
                        V::F(col.as_primitive::<Float64Type>().value(i))
                    }
                })
                .collect();
            (t.value(i), dims, vals)
        })
        .collect()
}

pub fn same(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::F(x), V::F(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => a == b,
    }
}
