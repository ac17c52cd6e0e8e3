//! Parsing a complex URL's parameters: 5 filters, 3 having clauses, sort, topN and a
//! dateTime list with an RRULE, evaluated in a non-UTC zone. Target: under 20 µs.

use criterion::{Criterion, criterion_group, criterion_main};
use quiver::grammar::{datetime, filters, having, metrics, sort, topn};
use quiver::time::Grain;
use std::hint::black_box;

const FILTERS: &str = "carrier|id-in[AA,DL,UA],origin|desc-contains[Intl],dest|id-notin[LAX,SFO,\"A,B\"],tailnum|manufacturer-startswith[BOEING],flight|id-between[100,2000]";
const HAVING: &str = "flights-gt[100],avgDepDelay-between[-5,60.5],cancelled(reagg=dayAvg)-notLessThan[1e1]";
const DATETIME: &str = "2013-01-07/2013-03-04,P2W/2013-06-03,2013-08-05/RRULE=FREQ=WEEKLY;BYDAY=MO;COUNT=8";

fn parse_all() -> usize {
    let f = filters::parse(black_box(FILTERS)).unwrap();
    let h = having::parse(black_box(HAVING)).unwrap();
    let s = sort::parse(black_box("avgDepDelay|desc,flights|asc")).unwrap();
    let t = topn::parse("topN", black_box("5")).unwrap();
    let m = metrics::parse(Some(black_box("flights,avgDepDelay,cancelled(reagg=dayAvg)"))).unwrap();
    let tz = datetime::parse_time_zone(black_box("America/New_York")).unwrap();
    let ast = datetime::parse(Some(black_box(DATETIME))).unwrap();
    let ctx = datetime::Context { grain: Grain::Week, tz, now: 1_370_439_910_000, rrule_max: 100 };
    let iv = datetime::evaluate(&ast, &ctx).unwrap();
    f.len() + h.len() + s.len() + t.unwrap_or(0) + m.len() + iv.len()
}

fn bench(c: &mut Criterion) {
    assert!(parse_all() > 0);
    c.bench_function("parse complex URL parameters", |b| b.iter(parse_all));
    c.bench_function("parse filters (5 clauses)", |b| b.iter(|| filters::parse(black_box(FILTERS)).unwrap()));
    c.bench_function("dateTime with RRULE in New York", |b| {
        b.iter(|| {
            let ast = datetime::parse(Some(black_box(DATETIME))).unwrap();
            let ctx =
                datetime::Context { grain: Grain::Week, tz: chrono_tz::America::New_York, now: 0, rrule_max: 100 };
            datetime::evaluate(&ast, &ctx).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
