//! The whole request path on the embedded flights data: URL → grammars → resolution →
//! planning → execution (when the request is small enough to run per input).
#![no_main]
use libfuzzer_sys::fuzz_target;
use quiver::catalog::Catalog;
use quiver::config::GatewayConfig;
use quiver::engine::{self, plan::CancelToken};
use quiver::http::params::Params;
use quiver::request::data::{DataInput, resolve};
use std::path::PathBuf;
use std::sync::OnceLock;

fn setup() -> &'static (GatewayConfig, Catalog) {
    static S: OnceLock<(GatewayConfig, Catalog)> = OnceLock::new();
    S.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        quiver::app::load_config(&dir).expect("embedded config")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else { return };
    let (cfg, cat) = setup();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let params = Params::parse(query);
    let param = |n: &str| params.get(n).map(|s| s.to_string());
    let input = DataInput { segments: &segments, param: &param, accept: None, now: 1_370_439_910_000, forced_filters: &[] };
    let Ok(req) = resolve(cat, cfg, &input) else { return };
    let table = &cat.tables[&req.table];
    let Ok(physical) = quiver::plan::choose(cat, table, &req) else { return };
    let Ok(plan) = quiver::plan::build(cat, cfg, &req, physical) else { return };
    // Execute only small requests (a week or less of data), so inputs stay fast.
    let span: i64 = plan.intervals.iter().map(|i| (i.end - i.start).max(0)).sum();
    if span <= 7 * 86_400_000 {
        let _ = engine::execute(&plan, &CancelToken::default());
    }
});
