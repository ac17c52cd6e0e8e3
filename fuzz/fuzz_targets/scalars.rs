//! perPage/page, topN/count, format/filename, asyncAfter, and the catalog's expression parser.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quiver::grammar::{async_after, format, paging, topn};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (a, b) = s.split_at(s.char_indices().nth(s.chars().count() / 2).map(|x| x.0).unwrap_or(0));
    if let Ok(Some(p)) = paging::parse(Some(a), Some(b)) {
        let _ = p.resolve(a.len() * 7);
    }
    let _ = topn::parse("topN", s);
    let _ = async_after::parse(s);
    if let Ok(f) = format::parse(a) {
        let name = format::download_name(Some(b), "d", f, (s.len() % 7) as i64 - 1);
        assert!(!name.contains(['\r', '\n', '"', ';']));
    }
    let _ = quiver::catalog::expr::parse(s);
});
