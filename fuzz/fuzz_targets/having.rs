//! having: parse; anything parsed renders to text that parses back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quiver::grammar::having;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(clauses) = having::parse(s) {
        if clauses.iter().all(|c| !c.metric.contains(['[', ']', ',']) && c.values.iter().all(|v| v.is_finite())) {
            let again = having::parse(&having::render(&clauses));
            assert_eq!(again.as_ref().ok(), Some(&clauses), "{s:?}");
        }
    }
});
