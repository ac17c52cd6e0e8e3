//! `GET /v1/share?url=…`: signs a data URL for its caller (see [`crate::share`]). Signing
//! stores nothing, so the endpoint is as safe to repeat as any other GET.

use super::reply::{self, Ctx};
use crate::app::AppState;
use crate::error::{Error, Reason};
use crate::request::PRESENTATION_PARAMS;
use crate::request::params::Params;
use crate::share::{EXPIRES, LINK_PARAMS, SIGNATURE, USER};
use serde_json::json;
use warp::reply::Response;

/// The canonical form a share signature covers: the path after the API root and every
/// parameter but the presentation ones ([`PRESENTATION_PARAMS`]) and the link's own.
pub fn canonical(ctx: &Ctx, path: &str) -> String {
    ctx.params.canonical(path, &[&PRESENTATION_PARAMS[..], &LINK_PARAMS].concat())
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Reason::ShareUrlInvalid, msg)
}

/// Signs the data URL in `url` for the caller, after checking that the caller could run it.
pub fn share(state: &AppState, ctx: &Ctx) -> Result<Response, Error> {
    if ctx.principal.shared {
        return Err(Error::new(Reason::Forbidden, "A share link cannot sign other links: sign in with a token."));
    }
    let url = ctx.params.get("url").filter(|u| !u.is_empty()).ok_or_else(|| {
        invalid("Parameter 'url' is required: the percent-encoded /v1/data/... path and query to share.")
    })?;
    // An absolute URL is accepted for convenience; only its path and query count.
    let local = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => url,
    };
    let (path, query) = local.split_once('?').unwrap_or((local, ""));
    let root = state.config.server.api_root.trim_end_matches('/');
    let data_prefix = format!("{root}/data/");
    if !path.starts_with(&data_prefix) {
        return Err(invalid(format!("Only data queries can be shared: 'url' must start with {data_prefix}.")));
    }
    // Check the query as the caller would run it: a link to an error helps nobody.
    let mut probe = ctx.clone();
    probe.path = path.to_string();
    probe.params = Params::parse(query);
    let segs = probe.segments();
    let skip = root.split('/').filter(|s| !s.is_empty()).count();
    let rest: Vec<String> = segs.into_iter().skip(skip).collect();
    let data_segs: Vec<&str> = rest.iter().skip(1).map(|s| s.as_str()).collect();
    crate::query::prepare(state, &super::data::call(&probe, &data_segs))?;
    let now_s = state.clock.now_ms().div_euclid(1000);
    let expires = now_s.saturating_add(state.auth().share_link_seconds as i64);
    let p = &ctx.principal;
    let signature = state.share.sign(&p.user, &p.token, expires, &canonical(&probe, &rest.join("/")));
    let mut q = probe.params.raw_without(&LINK_PARAMS);
    let mut tail = form_urlencoded::Serializer::new(String::new());
    tail.append_pair(USER, &p.user).append_pair(EXPIRES, &expires.to_string()).append_pair(SIGNATURE, &signature);
    if !q.is_empty() {
        q.push('&');
    }
    q.push_str(&tail.finish());
    let expires_iso = chrono::DateTime::from_timestamp(expires, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let link = format!("{}{}?{q}", ctx.origin, encode_path(path));
    Ok(reply::json(200, &json!({ "url": link, "expires": expires_iso, "user": p.user })))
}

/// The path with characters outside a URL path percent-encoded (it arrives decoded).
fn encode_path(path: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'|')
        .add(b'%');
    percent_encoding::utf8_percent_encode(path, SET).to_string()
}
