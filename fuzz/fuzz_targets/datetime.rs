//! dateTime: parse, then evaluate in every grain and a DST zone with a tight RRULE cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quiver::grammar::datetime;
use quiver::time::Grain;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(ast) = datetime::parse(Some(s)) {
        for (i, grain) in Grain::ALL_GRAINS.iter().enumerate() {
            let tz = if i % 2 == 0 { chrono_tz::UTC } else { chrono_tz::America::New_York };
            let ctx = datetime::Context { grain: *grain, tz, now: 1_370_439_910_000, rrule_max: 100 };
            if let Ok(ivs) = datetime::evaluate(&ast, &ctx) {
                assert!(ivs.len() <= 100 * ast.intervals.len() + ast.intervals.len());
                for w in ivs.windows(2) {
                    assert!(w[0].end < w[1].start);
                }
                for iv in &ivs {
                    assert!(iv.start < iv.end);
                }
            }
        }
    }
    let _ = datetime::parse_time_zone(s);
});
