//! The HTTP layer: [`server`] owns connections; [`handle`] identifies each request, then
//! dispatches on the decoded path. Every response — success or error — gets `X-Request-ID` and the CORS
//! headers here, and every error is rendered by the one mapping in [`crate::error`].

pub mod body;
pub mod cors;
pub mod data;
pub mod jobs;
pub mod meta;
pub mod pagination;
pub mod reply;
pub mod server;
pub mod share;
pub mod ui;

use crate::app::AppState;
use crate::auth::Scope;
use crate::error::{Error, Reason};
use reply::Ctx;
/// Serves the API on a listener until a shutdown future resolves (see [`server`]).
pub use server::serve;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tracing::Instrument;
use warp::http::{HeaderMap, Method};

/// Binds a listener on `bind:port`.
pub async fn bind(bind: &str, port: u16) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind((bind, port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Answers one request (the connection layer has checked its target): identify, dispatch,
/// map the error, add the common headers, record metrics and the log line.
async fn handle(
    state: Arc<AppState>,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    peer: IpAddr,
) -> warp::reply::Response {
    let mut ctx = Ctx::new(&state, &path, &query, &headers, peer);
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "request",
        id = %ctx.request_id,
        user = tracing::field::Empty,
        path = %path,
        table = tracing::field::Empty,
        grain = tracing::field::Empty,
        rows_scanned = tracing::field::Empty,
        remote = tracing::field::Empty,
        row_groups_pruned = tracing::field::Empty,
        engine_ms = tracing::field::Empty
    );
    async {
        let (resp, reason) = match dispatch(&state, &method, &mut ctx).await {
            Ok(r) => (r, None),
            Err(e) => (reply::error(&e, &ctx, None), Some(e.reason.code())),
        };
        let snapshot = if ctx.catalog.version > 0 { ctx.catalog.version } else { state.catalog().version };
        let cors = &state.config.server.cors_allowed_origins;
        let resp = reply::finish(resp, &ctx, snapshot, cors, method == Method::OPTIONS);
        let secs = started.elapsed().as_secs_f64();
        let endpoint = crate::metrics::endpoint(&ctx.path, &state.config.server.api_root);
        state.metrics.record(endpoint, resp.status().as_u16(), secs, reason);
        tracing::info!(status = resp.status().as_u16(), ms = secs * 1000.0, "served");
        resp
    }
    .instrument(span)
    .await
}

async fn dispatch(state: &Arc<AppState>, method: &Method, ctx: &mut Ctx) -> Result<warp::reply::Response, Error> {
    if method == Method::OPTIONS {
        let mut r = reply::empty(204);
        reply::set_header(&mut r, "allow", cors::METHODS);
        return Ok(r);
    }
    if method != Method::GET && method != Method::HEAD {
        return Err(Error::new(
            Reason::MethodNotAllowed,
            format!("Method {method} is not allowed. The API is read-only: use GET."),
        ));
    }
    let uri_len = ctx.path.len() + ctx.params.raw.len() + 1;
    if uri_len > state.config.server.max_uri_length {
        return Err(Error::new(
            Reason::UriTooLong,
            format!(
                "The request URI is {uri_len} bytes long; the limit is {} bytes.",
                state.config.server.max_uri_length
            ),
        ));
    }
    let root = state.config.server.api_root.trim_end_matches('/');
    let segs = ctx.segments();
    if let Some(name) = ctx.path.strip_prefix("/ui/") {
        return ui::asset(name).ok_or_else(|| not_found(ctx));
    }
    let under_root = ctx.path == "/" || ctx.path == root || ctx.path.starts_with(&format!("{root}/"));
    if under_root && ui::wants_page(ctx) {
        // The shell holds no data: the page asks for it with the caller's token or share link.
        return Ok(ui::page(root));
    }
    if ctx.path == "/" || ctx.path == root || ctx.path == format!("{root}/") {
        return Ok(reply::json(200, &index(&ctx.base)));
    }
    // The identity configuration in force for this whole request (a reload may swap it).
    let auth = state.auth();
    let operator = auth.is_operator(ctx.header("authorization"));
    if ctx.path == "/status" || ctx.path == "/status/" {
        return Ok(meta::status(state, operator));
    }
    if ctx.path == "/metrics" {
        if !operator && auth.guards_operations() {
            return Err(Error::new(
                Reason::Unauthorized,
                "/metrics needs the status token (auth.status_token_sha256) or an admin's token: send 'Authorization: Bearer <token>'.",
            ));
        }
        let text = state.metrics.render(&state.admission, &state.counters, &state.jobs, state.cache.stats());
        return Ok(reply::body(200, text.into_bytes(), "text/plain; version=0.0.4; charset=utf-8"));
    }
    let rest: Vec<String> = match ctx.path.strip_prefix(root) {
        Some(r) if r.is_empty() || r.starts_with('/') => {
            let skip = root.split('/').filter(|s| !s.is_empty()).count();
            segs.into_iter().skip(skip).collect()
        }
        _ => return Err(not_found(ctx)),
    };
    ctx.principal = identify(state, &auth, ctx, &rest)?;
    ctx.catalog = crate::access::catalog_for(&state.catalog(), &ctx.principal);
    tracing::Span::current().record("user", ctx.principal.user.as_str());
    let ctx: &Ctx = ctx;
    let rest: Vec<&str> = rest.iter().map(|s| s.as_str()).collect();
    let scope = match rest.first() {
        Some(&"data") | Some(&"share") => Scope::Data,
        Some(&"jobs") => Scope::Jobs,
        _ => Scope::Meta,
    };
    ctx.principal.require(scope)?;
    match rest.as_slice() {
        ["data", segs @ ..] => data::data(state, ctx, segs).await,
        ["share"] => share::share(state, ctx),
        ["jobs"] => jobs::list(state, ctx),
        ["jobs", t] => jobs::job(state, ctx, t),
        ["jobs", t, "results"] => jobs::results(state, ctx, t).await,
        ["openapi.json"] => Ok(reply::json(200, &openapi(state, &ctx.catalog))),
        _ => {
            // Metadata: CPU work (and, under row-level filters, a scan the first time) on the
            // blocking pool, not on the threads serving connections.
            let (st, c) = (state.clone(), ctx.clone());
            let owned: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            crate::workers::run(move || {
                let segs: Vec<&str> = owned.iter().map(|s| s.as_str()).collect();
                metadata(&st, &c, &segs)
            })
            .await
            .unwrap_or_else(|| Err(Error::internal("the metadata task stopped")))
        }
    }
}

/// The caller: a share link's signer when the request carries a share signature and no
/// token, else the bearer token's principal.
fn identify(
    state: &AppState,
    auth: &crate::auth::Auth,
    ctx: &Ctx,
    rest: &[String],
) -> Result<crate::auth::Principal, Error> {
    let signature = ctx.params.get(crate::share::SIGNATURE);
    if !auth.enabled() || ctx.header("authorization").is_some() || signature.is_none() {
        return auth.identify(ctx.header("authorization"));
    }
    let claim = crate::auth::ShareClaim {
        user: ctx.params.get(crate::share::USER).unwrap_or(""),
        expires: ctx.params.get(crate::share::EXPIRES).unwrap_or(""),
        signature: signature.unwrap_or(""),
        canonical: &share::canonical(ctx, &rest.join("/")),
    };
    auth.identify_share(&state.share, &claim, state.clock.now_ms().div_euclid(1000))
}

fn metadata(state: &AppState, ctx: &Ctx, rest: &[&str]) -> Result<warp::reply::Response, Error> {
    match rest {
        ["tables"] => meta::tables(state, ctx),
        ["tables", t] => meta::table(state, ctx, t),
        ["tables", t, g, dims @ ..] => meta::table_grain(state, ctx, t, g, dims),
        ["dimensions"] => meta::dimensions(state, ctx),
        ["dimensions", d] => meta::dimension(state, ctx, d),
        ["dimensions", d, "values"] => meta::dimension_values(state, ctx, d),
        ["dimensions", d, "search"] => Err(Error::new(
            Reason::MethodNotAllowed,
            format!(
                "Dimension {d} does not support search queries. Please try again using a standard api filter against the dimension values endpoint."
            ),
        )),
        ["metrics"] => meta::metrics(state, ctx),
        ["metrics", m] => meta::metric(ctx, m),
        ["slices"] => meta::slices(state, ctx),
        ["slices", s] => meta::slice(state, ctx, s),
        _ => Err(not_found(ctx)),
    }
}

/// Every route under the API root, as OpenAPI path templates (`/status` and the Prometheus
/// `/metrics` sit outside it). A test checks this list against `openapi.json` both ways.
pub const ROUTES: &[&str] = &[
    "/tables",
    "/tables/{table}",
    "/tables/{table}/{grain}",
    "/dimensions",
    "/dimensions/{dimension}",
    "/dimensions/{dimension}/values",
    "/metrics",
    "/metrics/{metric}",
    "/slices",
    "/slices/{slice}",
    "/data/{table}/{grain}",
    "/data/{table}/{grain}/{dimensions}",
    "/jobs",
    "/jobs/{ticket}",
    "/jobs/{ticket}/results",
    "/share",
    "/openapi.json",
];

/// The OpenAPI 3 document, its examples drawn from the caller's own catalog (the first table
/// it may see), so that the document names nothing the caller may not see.
pub fn openapi(state: &AppState, catalog: &crate::catalog::Catalog) -> serde_json::Value {
    let mut doc: serde_json::Value = serde_json::from_str(include_str!("openapi.json")).unwrap_or_default();
    doc["servers"] = serde_json::json!([{ "url": state.config.server.api_root }]);
    if let Some(t) = catalog.tables.values().next() {
        let first = |v: &[String]| v.first().cloned().unwrap_or_default();
        let metric = first(&t.metrics);
        let examples = [
            ("table", t.name.clone()),
            ("dimension", first(&t.dimensions)),
            ("metric", metric.clone()),
            ("slice", t.physical.first().map(|p| p.name.clone()).unwrap_or_default()),
            ("metrics", t.metrics.iter().take(2).cloned().collect::<Vec<_>>().join(",")),
            ("having", format!("{metric}-gt[10]")),
            ("sort", format!("{metric}|desc")),
        ];
        for (param, example) in examples.into_iter().filter(|(_, e)| !e.is_empty()) {
            doc["components"]["parameters"][param]["example"] = serde_json::json!(example);
        }
    }
    doc
}

/// `/` and the API root for scripts: where things are.
fn index(base: &str) -> serde_json::Value {
    serde_json::json!({
        "tables": format!("{base}/tables"),
        "dimensions": format!("{base}/dimensions"),
        "metrics": format!("{base}/metrics"),
        "slices": format!("{base}/slices"),
        "jobs": format!("{base}/jobs"),
        "openapi": format!("{base}/openapi.json"),
        "explorer": "Open this address in a browser for the explorer.",
    })
}

fn not_found(ctx: &Ctx) -> Error {
    Error::new(
        Reason::RouteNotFound,
        format!("No resource at '{}'. See /v1/tables, /v1/dimensions, /v1/metrics and /v1/data.", ctx.path),
    )
}
