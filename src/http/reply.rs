//! Building responses: JSON bodies, errors in Fili's shape, and the headers every response
//! carries (`X-Request-ID`, CORS).

use crate::app::AppState;
use crate::error::Error;
use crate::request::params::Params;
use serde_json::Value;
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

/// What handlers know about the request.
#[derive(Clone)]
pub struct Ctx {
    pub request_id: String,
    /// The decoded path as received.
    pub path: String,
    pub params: Params,
    pub headers: HeaderMap,
    /// `http://host` as the client addressed us, for absolute links.
    pub origin: String,
    /// `origin` + API root.
    pub base: String,
    /// The caller (anonymous until authenticated).
    pub principal: crate::auth::Principal,
    /// The catalog as the caller may see it (empty until authenticated; see
    /// [`crate::access::catalog_for`]).
    pub catalog: std::sync::Arc<crate::catalog::Catalog>,
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    pub client: std::net::IpAddr,
}

impl Ctx {
    pub fn new(state: &AppState, path: &str, query: &str, headers: &HeaderMap, peer: std::net::IpAddr) -> Ctx {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let client = crate::net::client_ip(peer, forwarded, &state.trusted_proxies);
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty() && v.len() <= 200 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
            })
            .map(|s| s.to_string())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("{}:{}", state.config.server.bind, state.config.server.port));
        let origin = format!("http://{host}");
        let base = format!("{origin}{}", state.config.server.api_root.trim_end_matches('/'));
        Ctx {
            request_id,
            path: path.to_string(),
            params: Params::parse(query),
            headers: headers.clone(),
            origin,
            base,
            principal: crate::auth::Principal::anonymous(),
            catalog: Default::default(),
            client,
        }
    }

    /// Decoded, non-empty path segments.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect()
    }

    /// The absolute URL of this request with a different query string.
    pub fn url_with_query(&self, query: &str) -> String {
        if query.is_empty() {
            format!("{}{}", self.origin, self.path)
        } else {
            format!("{}{}?{query}", self.origin, self.path)
        }
    }

    /// The absolute URL of this request.
    pub fn url(&self) -> String {
        self.url_with_query(&self.params.raw)
    }

    /// The key this request's caller is limited and counted under (see
    /// [`crate::auth::Principal::limit_key`]).
    pub fn caller(&self) -> String {
        self.principal.limit_key(self.client)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn with_status(mut r: Response, status: u16) -> Response {
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

pub fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// A compact JSON body.
pub fn json(status: u16, v: &Value) -> Response {
    body(status, serde_json::to_vec(v).unwrap_or_default(), "application/json; charset=utf-8")
}

pub fn body(status: u16, bytes: Vec<u8>, content_type: &str) -> Response {
    let mut r = with_status(Response::new(bytes.into()), status);
    set_header(&mut r, "content-type", content_type);
    r
}

pub fn empty(status: u16) -> Response {
    with_status(Response::new(Vec::<u8>::new().into()), status)
}

/// An error in Fili's JSON shape (pretty-printed, as Fili does).
pub fn error(e: &Error, ctx: &Ctx, druid_query: Option<Value>) -> Response {
    if e.status() >= 500 {
        tracing::error!(reason = e.reason.code(), "{}", e.message);
    }
    let v = e.body(&ctx.request_id, druid_query);
    let mut r = body(e.status(), serde_json::to_vec_pretty(&v).unwrap_or_default(), "application/json; charset=utf-8");
    if e.status() == 429 || e.status() == 503 {
        set_header(&mut r, "retry-after", "1");
    }
    if e.status() == 405 {
        set_header(&mut r, "allow", super::cors::METHODS);
    }
    r
}

/// The response header naming the catalog snapshot an answer came from: it changes when the
/// data or the catalog does.
pub const SNAPSHOT_HEADER: &str = "x-quiver-snapshot";

/// Adds the headers every response carries: the request id, the snapshot version (unless the
/// handler set the one its answer came from) and the CORS grant.
pub fn finish(mut r: Response, ctx: &Ctx, snapshot: u64, allowed_origins: &[String], preflight: bool) -> Response {
    set_header(&mut r, "x-request-id", &ctx.request_id);
    if !r.headers().contains_key(SNAPSHOT_HEADER) {
        set_header(&mut r, SNAPSHOT_HEADER, &snapshot.to_string());
    }
    super::cors::apply(&mut r, allowed_origins, ctx.header("origin"), preflight);
    // The Accept header picks the format (and a browser's the page): caches must key on it.
    set_header(&mut r, "vary", "Accept, Origin");
    r
}
