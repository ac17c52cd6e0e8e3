//! sort, show (matrix parameters) and metrics: no panic; sort and show round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quiver::grammar::{metrics, show, sort};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(items) = sort::parse(s) {
        if items.iter().all(|i| !i.column.contains(['|', ','])) {
            assert_eq!(sort::parse(&sort::render(&items)).ok(), Some(items));
        }
    }
    if let Ok(seg) = show::parse(s) {
        let _ = show::render(&seg);
    }
    if let Ok(ms) = metrics::parse(Some(s)) {
        for m in &ms {
            let again = metrics::parse(Some(&m.column_name())).unwrap();
            assert_eq!(&again[0], m);
        }
    }
});
