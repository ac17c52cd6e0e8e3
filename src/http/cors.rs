//! Cross-origin access for browser pages on other origins (`server.cors_allowed_origins`).
//!
//! An origin on the list is answered with itself and `Access-Control-Allow-Credentials`, so
//! its pages can send the user's token; `*` lets any page read answers without credentials;
//! any other origin gets no CORS grant at all. The origin is never reflected unless listed,
//! credentials never go with `*`, and `Vary: Origin` is always sent so that a cache cannot
//! hand one origin's answer to another.

use warp::http::HeaderValue;
use warp::reply::Response;

/// The methods the API answers.
pub const METHODS: &str = "GET, HEAD, OPTIONS";
/// Request headers a cross-origin page may send.
const ALLOW_HEADERS: &str = "Authorization, Accept, X-Request-ID";
/// Response headers a cross-origin page may read.
const EXPOSE_HEADERS: &str = "X-Request-ID, X-Quiver-Snapshot, Link, Content-Disposition, Server-Timing, Retry-After";

fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// Adds the CORS headers for a request from `origin` (its `Origin` header) to `r`;
/// `preflight` when answering `OPTIONS`.
pub fn apply(r: &mut Response, allowed: &[String], origin: Option<&str>, preflight: bool) {
    set_header(r, "vary", "Origin");
    let listed = origin.filter(|o| allowed.iter().any(|a| a != "*" && a.eq_ignore_ascii_case(o)));
    let grant = match listed {
        Some(o) => {
            set_header(r, "access-control-allow-credentials", "true");
            o
        }
        None if allowed.iter().any(|a| a == "*") => "*",
        None => return,
    };
    set_header(r, "access-control-allow-origin", grant);
    set_header(r, "access-control-expose-headers", EXPOSE_HEADERS);
    if preflight {
        set_header(r, "access-control-allow-methods", METHODS);
        set_header(r, "access-control-allow-headers", ALLOW_HEADERS);
        set_header(r, "access-control-max-age", "600");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(allowed: &[&str], origin: Option<&str>) -> Vec<(String, String)> {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let mut r = Response::new(Vec::<u8>::new().into());
        apply(&mut r, &allowed, origin, true);
        let mut v: Vec<(String, String)> =
            r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string())).collect();
        v.sort();
        v
    }

    fn get(h: &[(String, String)], k: &str) -> Option<String> {
        h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn only_listed_origins_get_credentials() {
        let h = headers(&["https://dash.example"], Some("https://dash.example"));
        assert_eq!(get(&h, "access-control-allow-origin").as_deref(), Some("https://dash.example"));
        assert_eq!(get(&h, "access-control-allow-credentials").as_deref(), Some("true"));
        assert_eq!(get(&h, "access-control-allow-methods").as_deref(), Some(METHODS));
        let h = headers(&["https://dash.example"], Some("https://evil.example"));
        assert_eq!(get(&h, "access-control-allow-origin"), None);
        assert_eq!(get(&h, "vary").as_deref(), Some("Origin"));
        let h = headers(&["*"], Some("https://evil.example"));
        assert_eq!(get(&h, "access-control-allow-origin").as_deref(), Some("*"));
        assert_eq!(get(&h, "access-control-allow-credentials"), None);
        assert_eq!(get(&headers(&[], Some("https://a.example")), "access-control-allow-origin"), None);
    }
}
