//! The engine against a deliberately simple row-at-a-time reference aggregator, on random
//! tables (nulls, empty files, many small row groups, dictionary and plain encodings, several
//! files) and random plans (every grain, zones with DST, filters, every aggregation kind,
//! post-aggregations, nested averages, having, sort, topN, count).
//!
//! Float inputs are multiples of 1/4, so every sum is exact whatever the order and the
//! comparison can be exact too.

use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use quiver::catalog::expr::{self, Expr};
use quiver::catalog::physical::{self, DataFile};
use quiver::engine::pages::chunks;
use quiver::engine::plan::*;
use quiver::engine::{self, base_grain};
use quiver::time::{self, Grain, Interval};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

mod plans;
use plans::*;

// ---------------------------------------------------------------- the reference

fn text(row: &Row, col: &str) -> Option<String> {
    match col {
        "s1" => row.s1.clone(),
        "s2" => row.s2.clone(),
        "i1" => row.i1.map(|v| v.to_string()),
        "k" => Some(row.k.to_string()),
        "b1" => row.b1.map(|v| v.to_string()),
        "v1" => row.v1.map(|v| v.to_string()),
        _ => row.v2.map(|v| v.to_string()),
    }
}

fn num(row: &Row, col: &str) -> Option<f64> {
    match col {
        "v1" => row.v1.map(|v| v as f64),
        "v2" => row.v2,
        "i1" => row.i1.map(|v| v as f64),
        _ => None,
    }
}

fn pred_ok(row: &Row, p: &Predicate) -> bool {
    match &p.op {
        PredOp::Cmp(op, c) => num(row, &p.column).is_some_and(|x| op.test(x, *c)),
        op => op.matches_text(text(row, &p.column).as_deref()),
    }
}

fn eval_row_expr(e: &Expr, row: &Row) -> Option<f64> {
    Some(match e {
        Expr::Num(v) => *v,
        Expr::Ref(c) => num(row, c)?,
        Expr::Neg(x) => -eval_row_expr(x, row)?,
        Expr::Bin(op, a, b) => op.apply(eval_row_expr(a, row)?, eval_row_expr(b, row)?),
    })
}

/// Aggregates one group's rows with one aggregation, plainly.
fn aggregate(a: &AggregationPlan, rows: &[&Row]) -> V {
    let rows: Vec<&&Row> = rows.iter().filter(|r| a.filter.as_ref().is_none_or(|f| pred_ok(r, f))).collect();
    let vals: Vec<Option<f64>> = rows
        .iter()
        .map(|r| match &a.input {
            AggInput::Rows => Some(1.0),
            AggInput::Column(c) => num(r, c).or_else(|| text(r, c).map(|_| 0.0)),
            AggInput::Expr(e) => eval_row_expr(e, r),
        })
        .collect();
    let present: Vec<f64> = vals.iter().flatten().copied().collect();
    match a.func {
        AggFunc::Count => V::I(present.len() as i64),
        AggFunc::LongSum => V::I(present.iter().map(|v| *v as i64).sum()),
        AggFunc::DoubleSum => V::F(present.iter().sum()),
        AggFunc::Min | AggFunc::Max => {
            let m = if a.func == AggFunc::Min {
                present.iter().copied().reduce(f64::min)
            } else {
                present.iter().copied().reduce(f64::max)
            };
            match (m, a.integer) {
                (None, _) => V::Null,
                (Some(x), true) => V::I(x as i64),
                (Some(x), false) => V::F(x),
            }
        }
        AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => {
            let AggInput::Column(c) = &a.input else { unreachable!() };
            V::I(rows.iter().filter_map(|r| text(r, c)).collect::<BTreeSet<_>>().len() as i64)
        }
    }
}

type Key = (i64, Vec<String>);

fn eval_output(plan: &QueryPlan, o: &OutputMetric, groups: &BTreeMap<Key, Vec<&Row>>, key: &Key) -> V {
    let rows = &groups[key];
    match &o.kind {
        OutputKind::Agg(i) => aggregate(&plan.aggregations[*i], rows),
        OutputKind::Post(e) => {
            let refs = e.refs();
            let vals: BTreeMap<String, V> = refs
                .iter()
                .map(|r| {
                    (r.clone(), eval_output(plan, plan.outputs.iter().find(|x| &x.name == r).unwrap(), groups, key))
                })
                .collect();
            if vals.values().any(|v| *v == V::Null) {
                return V::Null;
            }
            if o.integer && vals.values().all(|v| matches!(v, V::I(_))) && !e.has_division() {
                let f = e.eval(&|n| vals[n].f().unwrap());
                V::I(f as i64)
            } else {
                V::F(e.eval(&|n| vals[n].f().unwrap()))
            }
        }
        OutputKind::NestedAvg { of, per } => {
            // Split this group's rows by inner bucket, evaluate `of` on each, average.
            let mut inner: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
            for r in rows {
                inner.entry((time::floor(*per, plan.tz, r.ts), key.1.clone())).or_default().push(r);
            }
            let vals: Vec<f64> = inner.keys().filter_map(|k| eval_output(plan, of, &inner, k).f()).collect();
            if vals.is_empty() { V::Null } else { V::F(vals.iter().sum::<f64>() / vals.len() as f64) }
        }
    }
}

fn reference(plan: &QueryPlan, rows: &[Row]) -> Vec<(i64, Vec<String>, Vec<V>)> {
    let first = plan.intervals.first().map(|i| i.start).unwrap_or(0);
    let mut groups: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        if !plan.intervals.iter().any(|i| i.contains(r.ts)) || !plan.filters.iter().all(|f| pred_ok(r, f)) {
            continue;
        }
        let bucket = if plan.grain == Grain::All { first } else { time::floor(plan.grain, plan.tz, r.ts) };
        let dims: Vec<String> = plan.group_by.iter().map(|g| text(r, &g.column).unwrap_or_default()).collect();
        groups.entry((bucket, dims)).or_default().push(r);
    }
    let visible: Vec<&OutputMetric> = plan.outputs.iter().filter(|o| !o.hidden).collect();
    let mut out: Vec<(i64, Vec<String>, Vec<V>)> = groups
        .keys()
        .map(|k| (k.0, k.1.clone(), visible.iter().map(|o| eval_output(plan, o, &groups, k)).collect()))
        .collect();
    // Having.
    let col = |name: &str| visible.iter().position(|o| o.name == name).unwrap();
    out.retain(|(_, _, vals)| plan.shape.having.iter().all(|h| vals[col(&h.metric)].f().is_some_and(|x| h.test(x))));
    // Sort: time, keys, dims.
    let time_desc = matches!(plan.shape.sort.first(), Some(k) if k.column == SortColumn::Time && k.descending);
    out.sort_by(|a, b| {
        let mut o = a.0.cmp(&b.0);
        if time_desc {
            o = o.reverse();
        }
        for k in &plan.shape.sort {
            if o.is_ne() {
                break;
            }
            o = match &k.column {
                SortColumn::Time => std::cmp::Ordering::Equal,
                SortColumn::Dimension(j) => a.1[*j].cmp(&b.1[*j]),
                SortColumn::Metric(m) => {
                    let (x, y) = (a.2[col(m)].f(), b.2[col(m)].f());
                    // Nulls are the smallest values.
                    x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
                }
            };
            if k.descending && k.column != SortColumn::Time {
                o = o.reverse();
            }
        }
        o.then_with(|| a.1.cmp(&b.1))
    });
    if let Some(n) = plan.shape.top_n {
        let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
        out.retain(|r| {
            let c = seen.entry(r.0).or_default();
            *c += 1;
            *c <= n
        });
    }
    if let Some(c) = plan.shape.count {
        out.truncate(c);
    }
    out
}

/// The chunk cache is process-wide: every test here that runs the engine takes its turn, so
/// one that switches the cache on or off, or counts its entries, sees only its own scans.
static CHUNK_CACHE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Column chunks read ahead by spare workers in the "read ahead" runs of [`check_plan`].
static READ_AHEAD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs `plan` through the page decoder (where row groups qualify), through it again with
/// spare workers reading chunks ahead for it (four workers, whatever the chunks' size),
/// through it with the chunk cache (filled by one run, served to the next), and through the
/// Arrow reader alone; all must match the reference. Returns whether the page decoder read
/// part of it.
fn check_plan(what: &str, plan: &mut QueryPlan, rows: &[Row]) -> (bool, usize) {
    let want = reference(plan, rows);
    let mut direct = false;
    let limits = plan.limits;
    for mode in ["decoder", "read ahead", "cache fill", "cache hit", "arrow"] {
        let decoder = mode != "arrow";
        plan.limits.page_decoder = decoder;
        match mode {
            "decoder" => chunks::set_capacity(0),
            "read ahead" => plan.limits = Limits { threads: 4, min_bytes_per_worker: 1, ..limits },
            "cache fill" => {
                plan.limits = limits;
                chunks::set_capacity(64 << 20)
            }
            _ => {}
        }
        let got = engine::execute(plan, &CancelToken::default())
            .unwrap_or_else(|e| panic!("{what} {mode}: engine error {e}\n{plan:#?}"));
        if decoder {
            direct |= got.stats.direct_units > 0;
        } else {
            assert_eq!(got.stats.direct_units, 0);
        }
        READ_AHEAD.fetch_add(got.stats.chunks_read_ahead, std::sync::atomic::Ordering::Relaxed);
        let got_rows = engine_rows(&got.batch, plan.group_by.len());
        let ok = got_rows.len() == want.len()
            && got_rows.iter().zip(&want).all(|(g, w)| {
                g.0 == w.0 && g.1 == w.1 && g.2.len() == w.2.len() && g.2.iter().zip(&w.2).all(|(a, b)| same(a, b))
            });
        assert!(
            ok,
            "{what} {mode} (base grain {}):\nplan: {:#?}\nengine: {got_rows:?}\nreference: {want:?}",
            base_grain(plan),
            QueryPlan { files: vec![], ..plan.clone() }
        );
    }
    (direct, want.len())
}

#[test]
fn engine_equals_reference_on_random_tables_and_plans() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let tables: u64 = std::env::var("QUIVER_REF_TABLES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let plans_per_table: u64 = std::env::var("QUIVER_REF_PLANS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let (mut checked, mut nonempty, mut rows_compared, mut direct) = (0, 0, 0, 0);
    let (mut big_tables, mut paged_tables) = (0, 0);
    let hits_before = chunks::stats().hits;
    let ahead_before = READ_AHEAD.load(std::sync::atomic::Ordering::Relaxed);
    for seed in 0..tables {
        let mut rng = Rng(seed * 7919 + 17);
        let dir = tempfile::tempdir().unwrap();
        let n = rng.pick(&[0usize, 1, 50, 400, 1500]);
        let rows = random_rows(&mut rng, n);
        let files = write_table(&mut rng, dir.path(), &rows);
        if n >= 400 {
            big_tables += 1;
            paged_tables += usize::from(files.iter().any(|f| f.page_times.iter().any(|p| p.is_some())));
        }
        for p in 0..plans_per_table {
            let mut plan = random_plan(&mut rng, &files);
            let (d, n) = check_plan(&format!("seed {seed} plan {p}"), &mut plan, &rows);
            direct += usize::from(d);
            checked += 1;
            nonempty += usize::from(n > 0);
            rows_compared += n;
        }
    }
    eprintln!(
        "{checked} random plans matched the reference ({nonempty} with rows, {rows_compared} rows compared, \
         {direct} read at least partly by the page decoder)"
    );
    assert!(direct * 5 > checked, "only {direct} of {checked} plans exercised the page decoder");
    let hits = chunks::stats().hits - hits_before;
    assert!(hits * 10 > checked as u64, "only {hits} chunk cache hits in {checked} plans");
    let ahead = READ_AHEAD.load(std::sync::atomic::Ordering::Relaxed) - ahead_before;
    eprintln!("{ahead} column chunks read ahead by spare workers");
    assert!(ahead * 10 > checked as u64, "only {ahead} chunks read ahead in {checked} plans");
    // Dictionary-less tables have columns of few numbers (i1, k): some enter re-encoded.
    assert!(chunks::stats().compacted > 0, "no chunk was re-encoded with a dictionary");
    // Row groups with several pages, so the page index prunes inside row groups.
    assert!(paged_tables * 2 > big_tables, "only {paged_tables} of {big_tables} large tables have a page index");
    // The generator must exercise real results, not mostly empty ones.
    assert!(nonempty * 2 > checked, "only {nonempty} of {checked} plans produced rows");
}

/// The same random plans on files that DuckDB, pyarrow and Polars wrote (each with options a
/// user would pick: compression, row group size, dictionary, page size, statistics, naive or
/// zoned timestamps), from the Python in `QUIVER_WRITERS_PYTHON` (.ci/run makes one).
#[test]
fn engine_equals_reference_on_files_other_tools_wrote() {
    let Ok(python) = std::env::var("QUIVER_WRITERS_PYTHON") else {
        eprintln!("SKIPPED: set QUIVER_WRITERS_PYTHON to a Python with duckdb, pyarrow and polars");
        return;
    };
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rewrite.py");
    let (mut checked, mut nonempty, mut direct) = (0, 0, 0);
    for seed in 0..18u64 {
        let writer = ["duckdb", "pyarrow", "polars"][seed as usize % 3];
        let mut rng = Rng(seed * 104_729 + 5);
        let dir = tempfile::tempdir().unwrap();
        let n = rng.pick(&[400usize, 1500, 5000]);
        let rows = random_rows(&mut rng, n);
        let src = dir.path().join("src.parquet");
        let b = batch_of(&rows);
        let mut w = ArrowWriter::try_new(std::fs::File::create(&src).unwrap(), b.schema(), None).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        let out = dir.path().join(format!("{writer}.parquet"));
        let run = std::process::Command::new(&python)
            .arg(&script)
            .args([src.as_os_str(), out.as_os_str()])
            .args([writer, &seed.to_string()])
            .output()
            .expect("run the writer's Python");
        let said = String::from_utf8_lossy(&run.stdout).trim().to_string();
        assert!(run.status.success(), "{writer} seed {seed}: {}", String::from_utf8_lossy(&run.stderr));
        std::fs::remove_file(&src).unwrap();
        let files = vec![Arc::new(physical::open_file(&out, "ts").unwrap())];
        for p in 0..40 {
            let mut plan = random_plan(&mut rng, &files);
            let (d, n) = check_plan(&format!("{said} seed {seed} plan {p}"), &mut plan, &rows);
            direct += usize::from(d);
            checked += 1;
            nonempty += usize::from(n > 0);
        }
    }
    eprintln!(
        "{checked} random plans on other tools' files matched ({nonempty} with rows, {direct} by the page decoder)"
    );
    assert!(direct * 2 > checked, "only {direct} of {checked} plans exercised the page decoder");
    assert!(nonempty * 2 > checked, "only {nonempty} of {checked} plans produced rows");
}

#[test]
fn cancellation_stops_the_scan() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(99);
    let dir = tempfile::tempdir().unwrap();
    let rows = random_rows(&mut rng, 500);
    let files = write_table(&mut rng, dir.path(), &rows);
    let plan = random_plan(&mut rng, &files);
    let token = CancelToken::default();
    token.cancel();
    let r = engine::execute(&plan, &token);
    assert!(matches!(r, Err(engine::EngineError::Canceled)) || plan.intervals.is_empty(), "{r:?}");
}

/// A plan over a random 1,500-row table grouped by `s2` over the whole span, for the caps.
fn cap_plan(seed: u64, dir: &Path, grain: Grain, aggregations: Vec<AggregationPlan>, limits: Limits) -> QueryPlan {
    let mut rng = Rng(seed);
    let rows = random_rows(&mut rng, 1500);
    QueryPlan {
        files: write_table(&mut rng, dir, &rows),
        time_column: "ts".into(),
        intervals: vec![Interval::new(T0 - 1, T0 + SPAN + 1)],
        grain,
        tz: chrono_tz::UTC,
        group_by: vec![GroupBy { name: "s2".into(), column: "s2".into() }],
        filters: vec![],
        aggregations,
        outputs: vec![],
        shape: Shape::default(),
        limits,
    }
}

#[test]
fn metadata_scans_leave_the_chunk_cache_alone() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut plan = cap_plan(11, dir.path(), Grain::All, vec![], Limits { chunk_cache: false, ..Limits::default() });
    chunks::set_capacity(0);
    chunks::set_capacity(64 << 20);
    engine::execute(&plan, &CancelToken::default()).unwrap();
    assert_eq!(chunks::stats().entries, 0, "a scan with chunk_cache off kept chunks");
    plan.limits.chunk_cache = true;
    engine::execute(&plan, &CancelToken::default()).unwrap();
    assert!(chunks::stats().entries > 0, "the same scan with it on kept none");
    chunks::set_capacity(0);
}

#[test]
fn group_cap_is_a_typed_error() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_groups: 5, max_buckets: 100, threads: 2, ..Limits::default() };
    let plan = cap_plan(5, dir.path(), Grain::All, vec![], limits);
    assert_eq!(engine::execute(&plan, &CancelToken::default()).unwrap_err(), engine::EngineError::TooManyGroups(5));
}

#[test]
fn byte_cap_is_a_typed_error() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let distinct = AggregationPlan {
        name: "d".into(),
        func: AggFunc::CountDistinct,
        input: AggInput::Column("s1".into()),
        filter: None,
        integer: true,
    };
    let limits = Limits { max_bytes: 4096, threads: 1, ..Limits::default() };
    let plan = cap_plan(6, dir.path(), Grain::Hour, vec![distinct], limits);
    assert_eq!(engine::execute(&plan, &CancelToken::default()).unwrap_err(), engine::EngineError::TooManyBytes(4096));
}

/// Bytes flipped anywhere in the pages and page index of uncompressed files (so the damage
/// reaches quiver's page decoder rather than a decompressor), with and without nulls: every
/// query answers or fails with an error; none panics.
#[test]
fn page_decoder_survives_corrupt_pages() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(4242);
    let clean_rows: Vec<Row> = random_rows(&mut rng, 600).into_iter().map(without_nulls).collect();
    let null_rows: Vec<Row> = clean_rows
        .iter()
        .enumerate()
        .map(|(i, r)| match i % 3 {
            0 => Row { s1: None, v2: None, ..r.clone() },
            1 => Row { k: r.k, v1: None, s2: None, ..r.clone() },
            _ => r.clone(),
        })
        .collect();
    for (variant, rows) in [("no nulls", &clean_rows), ("nulls", &null_rows)] {
        corrupt_pages_never_panic(variant, rows);
    }
}

fn corrupt_pages_never_panic(variant: &str, rows: &[Row]) {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(200))
        .set_data_page_row_count_limit(40)
        .set_write_batch_size(8)
        .set_dictionary_enabled(true)
        .set_dictionary_page_size_limit(300)
        .build();
    let b = batch_of(rows);
    let mut w = ArrowWriter::try_new(std::fs::File::create(&clean).unwrap(), b.schema(), Some(props)).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let bytes = std::fs::read(&clean).unwrap();
    let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let pages_end = bytes.len() - 8 - footer;
    let plan_for = |file: Arc<DataFile>| QueryPlan {
        files: vec![file],
        time_column: "ts".into(),
        intervals: vec![Interval::new(T0 - 1, T0 + SPAN + 1)],
        grain: Grain::Week,
        tz: chrono_tz::UTC,
        group_by: vec![
            GroupBy { name: "s1".into(), column: "s1".into() },
            GroupBy { name: "k".into(), column: "k".into() },
        ],
        filters: vec![Predicate { column: "s2".into(), op: PredOp::NotIn(vec!["k3".into()]) }],
        aggregations: vec![
            AggregationPlan {
                name: "v".into(),
                func: AggFunc::DoubleSum,
                input: AggInput::Expr(expr::parse("v2 * (1 - v1)").unwrap()),
                filter: None,
                integer: false,
            },
            AggregationPlan {
                name: "n".into(),
                func: AggFunc::Count,
                input: AggInput::Rows,
                filter: None,
                integer: true,
            },
        ],
        outputs: vec![],
        shape: Shape::default(),
        // One worker: a panic would reach this test instead of becoming a worker error.
        limits: Limits { threads: 1, ..Limits::default() },
    };
    let first =
        engine::execute(&plan_for(Arc::new(physical::open_file(&clean, "ts").unwrap())), &CancelToken::default())
            .unwrap();
    assert!(first.stats.direct_units > 0, "{variant}: the clean file is read by the page decoder");
    let (mut answered, mut failed) = (0, 0);
    let bad = dir.path().join("bad.parquet");
    for (i, pos) in (4..pages_end).step_by(7).enumerate() {
        let mut b = bytes.clone();
        b[pos] ^= [0xff, 0x01, 0x80, 0x5a][i % 4];
        std::fs::write(&bad, &b).unwrap();
        let Ok(f) = physical::open_file(&bad, "ts") else { continue };
        match engine::execute(&plan_for(Arc::new(f)), &CancelToken::default()) {
            Ok(_) => answered += 1,
            Err(_) => failed += 1,
        }
    }
    assert!(failed > 0 && answered > 0, "{variant}: {failed} failed, {answered} answered");
}

/// Tables whose rows all fall within 20 days of one month, sorted: at month grain and coarser
/// every batch lies in one time bucket, which the page decoder groups through its per-batch
/// combination table (filters and skipped rows or-ed in).
#[test]
fn engine_equals_reference_when_batches_fall_in_one_bucket() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    const DAY: i64 = 86_400_000;
    let (mut checked, mut nonempty, mut coarse) = (0, 0, 0);
    for seed in 0..6u64 {
        let mut rng = Rng(seed * 104_729 + 3);
        let mut rows = random_rows(&mut rng, 1500);
        for r in rows.iter_mut() {
            r.ts = T0 + 60 * DAY + (r.ts - T0).rem_euclid(20 * DAY);
        }
        rows.sort_by_key(|r| r.ts);
        let dir = tempfile::tempdir().unwrap();
        let files = write_table(&mut rng, dir.path(), &rows);
        for p in 0..40 {
            let mut plan = random_plan(&mut rng, &files);
            plan.intervals = vec![Interval::new(T0 + 60 * DAY, T0 + 80 * DAY)];
            coarse += usize::from(matches!(plan.grain, Grain::Month | Grain::Quarter | Grain::Year | Grain::All));
            let (_, n) = check_plan(&format!("one-bucket seed {seed} plan {p}"), &mut plan, &rows);
            checked += 1;
            nonempty += usize::from(n > 0);
        }
    }
    eprintln!("{checked} plans on one-month tables matched ({nonempty} with rows, {coarse} at month grain or coarser)");
    assert!(nonempty * 2 > checked && coarse * 5 > checked, "{nonempty} with rows, {coarse} coarse, of {checked}");
}

/// Random plans grouped by one dimension with many values (about 100, past 64 local codes in
/// a row group) at `all` grain: the page decoder folds such a unit into its own
/// accumulators by local code, and turns each code a row reached into its group when the
/// unit ends (`pages::slots`). Tiny dictionaries overflow into PLAIN pages mid-chunk, so the
/// local codes grow while a unit is read.
#[test]
fn engine_equals_reference_for_one_dimension_with_many_values() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let (mut checked, mut nonempty, mut coverable) = (0, 0, 0);
    for seed in 0..6u64 {
        let mut rng = Rng(seed * 7_919 + 11);
        let mut rows = random_rows(&mut rng, 1500);
        // About 100 values: past 64 local codes in a unit, yet at least four rows per code.
        for r in rows.iter_mut() {
            r.k = rng.below(100) as i64;
            if r.s2.is_some() {
                r.s2 = Some(format!("k{}", rng.below(100)));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        // Row groups of 400 rows or more (a file holds 500 to 1,500): a unit folds by local
        // code only when it reads at least four rows per code, and from 65 codes on.
        let files = write_table_grouped(&mut rng, dir.path(), &rows, |rng| 400 + rng.below(1100) as usize);
        for p in 0..40 {
            let mut plan = random_plan(&mut rng, &files);
            plan.grain = Grain::All;
            // One bucket holds every row group, so each unit has exactly one.
            plan.intervals = vec![Interval::new(T0 - 86_400_000, T0 + SPAN + 86_400_000)];
            let column = if p % 3 == 0 { "s2" } else { "k" };
            plan.group_by = vec![GroupBy { name: format!("g_{column}"), column: column.into() }];
            plan.shape = Shape::default();
            if p % 4 != 0 {
                // Filtered aggregations take the general path: most plans drop them.
                plan.aggregations.iter_mut().for_each(|a| a.filter = None);
            }
            if p % 2 == 1 {
                // A sum of a never-null column first: it marks the slots rows reach in its
                // own loop.
                let func = if p % 4 == 1 { AggFunc::LongSum } else { AggFunc::DoubleSum };
                let sum = AggregationPlan {
                    name: "sumK".into(),
                    func,
                    input: AggInput::Column("k".into()),
                    filter: None,
                    integer: func == AggFunc::LongSum,
                };
                prepend_aggregation(&mut plan, sum);
            }
            coverable += usize::from(base_grain(&plan) == Grain::All);
            let (_, n) = check_plan(&format!("many values seed {seed} plan {p}"), &mut plan, &rows);
            checked += 1;
            nonempty += usize::from(n > 0);
        }
    }
    eprintln!(
        "{checked} plans by one dimension with many values matched ({nonempty} with rows, {coverable} at all grain)"
    );
    assert!(
        nonempty * 2 > checked && coverable * 2 > checked,
        "{nonempty} with rows, {coverable} at all grain, of {checked}"
    );
}

/// Sorted tables in one row group with one zstd page of PLAIN values per column and no offset
/// index, as DuckDB writes them: an interval that ends in the first half of the row group
/// leaves the end of each page unread, and the pages are decompressed only as far as the rows
/// read (`inflate::page` with a prefix), by the unit's own thread and by the threads reading ahead.
#[test]
fn engine_equals_reference_when_pages_are_cut_short() {
    let _turn = CHUNK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    const DAY: i64 = 86_400_000;
    let cut_before = chunks::stats().cut;
    let (mut checked, mut nonempty) = (0, 0);
    for seed in 0..4u64 {
        let mut rng = Rng(seed * 15_485_863 + 7);
        let mut rows = random_rows(&mut rng, 60_000);
        rows.sort_by_key(|r| r.ts);
        let dir = tempfile::tempdir().unwrap();
        let files = write_one_page(dir.path(), &rows, seed % 2 == 1);
        for p in 0..25 {
            let mut plan = random_plan(&mut rng, &files);
            let end = T0 + DAY * (1 + rng.below((SPAN / DAY / 2) as u64) as i64);
            plan.intervals = vec![Interval::new(T0 - DAY, end)];
            // Months of seconds are more buckets than a query may span.
            if plan.grain == Grain::Second {
                plan.grain = Grain::Minute;
            }
            let (_, n) = check_plan(&format!("cut pages seed {seed} plan {p}"), &mut plan, &rows);
            checked += 1;
            nonempty += usize::from(n > 0);
        }
    }
    let cut = chunks::stats().cut - cut_before;
    eprintln!("{checked} plans on one-page tables matched ({nonempty} with rows, {cut} pages cut short)");
    assert!(nonempty * 2 > checked, "only {nonempty} of {checked} plans produced rows");
    assert!(cut as usize > checked, "only {cut} pages cut short in {checked} plans");
}
