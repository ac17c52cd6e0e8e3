//! The browser explorer (DESIGN §3 `assets/`): every query URL is also a page. A browser's
//! navigation (an `Accept` that prefers `text/html`, no explicit `format`) to `/`, the API
//! root or any URL under it gets the explorer's shell; its script then asks the same URL for
//! JSON and renders it (a form, a table, a chart; browsable metadata). The assets are
//! embedded in the binary and served from `/ui/`; nothing is loaded from anywhere else, which
//! the Content-Security-Policy enforces.

use super::reply::{self, Ctx};
use warp::reply::Response;

/// The page shell, for every explorer URL.
const SHELL: &str = include_str!("../assets/index.html");
/// The explorer's script and style sheet.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", include_str!("../assets/app.js"), "text/javascript; charset=utf-8"),
    ("app.css", include_str!("../assets/app.css"), "text/css; charset=utf-8"),
];

/// Everything the page may load comes from the gateway itself.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Whether the request is a browser navigation that should get the page: it prefers HTML
/// (`text/html` listed before any JSON or CSV type) and asks for no explicit `format`.
pub fn wants_page(ctx: &Ctx) -> bool {
    if ctx.params.get("format").is_some() {
        return false;
    }
    let accept = ctx.header("accept").unwrap_or("").to_ascii_lowercase();
    let pos = |t: &str| accept.find(t);
    match pos("text/html") {
        None => false,
        Some(html) => ["application/json", "application/vnd.api+json", "text/csv"]
            .iter()
            .filter_map(|t| pos(t))
            .all(|other| other > html),
    }
}

fn secure(mut r: Response) -> Response {
    reply::set_header(&mut r, "content-security-policy", CSP);
    reply::set_header(&mut r, "x-content-type-options", "nosniff");
    reply::set_header(&mut r, "referrer-policy", "no-referrer");
    r
}

/// The page shell (the script decides what to show from the address).
pub fn page(api_root: &str) -> Response {
    let html = SHELL.replace("{{API_ROOT}}", api_root);
    let mut r = reply::body(200, html.into_bytes(), "text/html; charset=utf-8");
    reply::set_header(&mut r, "cache-control", "no-cache");
    reply::set_header(&mut r, "vary", "Accept, Origin");
    secure(r)
}

/// An embedded asset by name (`/ui/app.js`), cached by browsers for a day.
pub fn asset(name: &str) -> Option<Response> {
    let (_, text, kind) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    let mut r = reply::body(200, text.as_bytes().to_vec(), kind);
    reply::set_header(&mut r, "cache-control", "public, max-age=86400");
    reply::set_header(&mut r, "etag", &format!("\"{}\"", &crate::digest::digest(&[text])[..16]));
    Some(secure(r))
}

/// Every embedded asset with its text (tests check that none refers elsewhere).
pub fn all_assets() -> Vec<(&'static str, &'static str)> {
    std::iter::once(("index.html", SHELL)).chain(ASSETS.iter().map(|(n, t, _)| (*n, *t))).collect()
}
