//! filters: parse; anything parsed renders to text that parses back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quiver::grammar::filters;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(clauses) = filters::parse(s) {
        let again = filters::parse(&filters::render(&clauses));
        if clauses.iter().all(|c| !c.dimension.contains([',', ']', '[', '|']) && !c.field.contains([',', ']', '[', '-']) && !c.dimension.ends_with(']')) {
            assert_eq!(again.as_ref().ok(), Some(&clauses), "{s:?}");
        }
    }
});
