//! Signed share links, CORS and scopes under auth (issue 13).

mod common;

use common::tenants::*;
use common::*;
use quiver::app::{AppState, ManualClock};
use std::path::Path;
use std::sync::Arc;

const Q: &str = "/v1/data/flights/day/origin/carrier?metrics=flights,avgDepDelay&dateTime=2013-06-01/2013-06-04&sort=flights%7Cdesc";

/// Starts the tenants' config with a clock the test moves, and jobs (and the share key) in
/// `jobs`.
async fn start_at(config: &Path, jobs: &Path, clock: Arc<ManualClock>) -> Server {
    let mut cfg = quiver::config::GatewayConfig::load(config).unwrap();
    cfg.auth.status_token_sha256 = quiver::auth::hash_token(STATUS_TOKEN);
    let catalog = quiver::catalog::load(&cfg.tables_dir(config), &cfg.data_root(config)).unwrap();
    start_state(AppState::with_parts(cfg, config.to_path_buf(), catalog, clock, jobs)).await
}

/// Signs `url` as `who`; returns the link's path and query.
async fn sign(s: &Server, who: &str, url: &str) -> (String, serde_json::Value) {
    let r = as_role(s, Some(who), &format!("/v1/share?url={}", enc(url))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let link = v["url"].as_str().unwrap();
    assert!(link.starts_with(&s.base), "an absolute link to this server: {link}");
    (link[s.base.len()..].to_string(), v)
}

#[tokio::test]
async fn a_link_opens_without_a_token_with_the_signers_grants() {
    let (s, _d) = tenants().await;
    let (link, v) = sign(&s, "jfk", Q).await;
    assert_eq!(v["user"], "jo");
    assert!(v["expires"].as_str().unwrap().starts_with("2013-06-12T13:45:10"), "7 days from now: {v}");
    let mine = as_role(&s, Some("jfk"), Q).await.json();
    let opened = get(&s, &link).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let mut got = opened.json();
    got.as_object_mut().unwrap().remove("requestId");
    assert_eq!(got["rows"], mine["rows"], "the signer's row-level filter holds");
    assert!(got["rows"].as_array().unwrap().iter().all(|r| r["origin|id"] == "JFK"));
    // Any format and any page, with the same rows.
    let csv = get(&s, &format!("{link}&format=csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.body.lines().skip(1).all(|l| l.contains(",JFK,")), "{}", csv.body);
    for f in ["jsonapi", "debug"] {
        assert_eq!(get(&s, &format!("{link}&format={f}")).await.status, 200, "{f}");
    }
    let page = get(&s, &format!("{link}&perPage=2&page=2")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["rows"], serde_json::json!(mine["rows"].as_array().unwrap()[2..4]));
    // The pagination links carry the signature, so they open too.
    let next = page.json()["meta"]["pagination"]["next"].as_str().unwrap().to_string();
    assert_eq!(get(&s, &next[s.base.len()..]).await.status, 200);
    // The admin's link sees every origin.
    let (admin_link, _) = sign(&s, "admin", Q).await;
    let all = get(&s, &admin_link).await.json();
    assert!(all["rows"].as_array().unwrap().iter().any(|r| r["origin|id"] != "JFK"));
}

#[tokio::test]
async fn a_changed_tampered_or_misused_link_is_refused() {
    let (s, _d) = tenants().await;
    let (link, _) = sign(&s, "jfk", Q).await;
    let refused = |r: &Resp, why: &str| {
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert_eq!(r.json()["reason"], "SHARE_LINK_INVALID", "{why}");
    };
    refused(&get(&s, &link.replace("2013-06-04", "2013-06-05")).await, "another interval");
    refused(&get(&s, &format!("{link}&filters=origin%7Cid-in%5BLGA%5D")).await, "an added filter");
    refused(&get(&s, &link.replace("/carrier?", "?")).await, "a dimension removed");
    refused(&get(&s, &link.replace("&sort=flights%7Cdesc", "")).await, "a parameter removed");
    refused(&get(&s, &link.replace("shareUser=jo", "shareUser=ada")).await, "another signer");
    let sig = link.rsplit("shareSignature=").next().unwrap();
    let flipped = format!("{}{}", if sig.starts_with('0') { "1" } else { "0" }, &sig[1..]);
    refused(&get(&s, &link.replace(sig, &flipped)).await, "a tampered signature");
    let later = link.split("shareExpires=").nth(1).unwrap().split('&').next().unwrap();
    let longer = (later.parse::<i64>().unwrap() + 86_400).to_string();
    refused(&get(&s, &link.replace(later, &longer)).await, "a longer expiry");
    // The link's identity is good for its query only: not metadata, jobs or new links.
    let q = link.split_once('?').unwrap().1;
    for other in ["/v1/tables", "/v1/jobs", "/v1/dimensions/flight/values"] {
        let r = get(&s, &format!("{other}?{q}")).await;
        assert!(r.status == 403 || r.status == 401, "{other}: {}", r.body);
    }
    let r = get(&s, &format!("/v1/share?url={}&{q}", enc(Q))).await;
    assert!(r.status == 403 || r.status == 401, "{}", r.body);
    // Case and order of the parameters do not matter; presentation parameters are free.
    let (path, query) = link.split_once('?').unwrap();
    let mut parts: Vec<&str> = query.split('&').collect();
    parts.reverse();
    let reordered = format!("{path}?{}", parts.join("&").replace("metrics=", "METRICS="));
    assert_eq!(get(&s, &reordered).await.status, 200);
    // With a token the token decides, whatever the link says.
    assert_eq!(as_role(&s, Some("vault"), &link).await.status, 404);
}

#[tokio::test]
async fn links_expire_and_die_with_their_signers_token() {
    let dir = tenants_config(|_| {});
    let config = dir.path().join("config");
    let jobs = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(NOW_MS));
    let s = start_at(&config, jobs.path(), clock.clone()).await;
    let (link, _) = sign(&s, "jfk", Q).await;
    let (fl_link, _) = sign(&s, "fl", Q).await;
    clock.advance(7 * 86_400_000 - 1_000);
    assert_eq!(get(&s, &link).await.status, 200, "still valid a second before expiry");
    clock.advance(1_000);
    let r = get(&s, &link).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (403, Some("SHARE_LINK_EXPIRED")), "{}", r.body);
    drop(s);
    // Restarted with the same key but without jo's token: jo's links die, flo's live.
    let p = config.join("gateway.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let jo = quiver::auth::hash_token("t-jfk");
    let gone = format!("sha256 = \"{}\"\nuser = \"gone\"", "0".repeat(64));
    let edited = text.replace(&format!("sha256 = \"{jo}\"\nuser = \"jo\""), &gone);
    assert_ne!(edited, text);
    std::fs::write(&p, edited).unwrap();
    let s = start_at(&config, jobs.path(), Arc::new(ManualClock::at(NOW_MS))).await;
    let r = get(&s, &link).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (403, Some("SHARE_LINK_INVALID")), "{}", r.body);
    assert_eq!(get(&s, &fl_link).await.status, 200, "the key survived the restart (share.key)");
    assert!(jobs.path().join("share.key").exists());
}

#[tokio::test]
async fn signing_checks_the_query_and_is_free_of_side_effects() {
    let (s, _d) = tenants().await;
    let r = as_role(&s, Some("jfk"), "/v1/share").await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (400, Some("SHARE_URL_INVALID")));
    let r = as_role(&s, Some("jfk"), &format!("/v1/share?url={}", enc("/v1/tables"))).await;
    assert_eq!(r.status, 400, "only data URLs");
    let r = as_role(
        &s,
        Some("jfk"),
        &format!("/v1/share?url={}", enc("/v1/data/vault/day?metrics=flights&dateTime=2013-06-01/P1D")),
    )
    .await;
    assert_eq!(r.status, 404, "a table the signer cannot see: {}", r.body);
    let r = as_role(
        &s,
        Some("jfk"),
        &format!("/v1/share?url={}", enc("/v1/data/flights/day?metrics=nope&dateTime=2013-06-01/P1D")),
    )
    .await;
    assert_eq!(r.status, 400, "an invalid query: {}", r.body);
    assert_eq!(get(&s, &format!("/v1/share?url={}", enc(Q))).await.status, 401, "signing needs a token");
    // An absolute URL is accepted; signing twice gives the same link (nothing is stored).
    let (a, _) = sign(&s, "jfk", &format!("{}{Q}", s.base)).await;
    let (b, _) = sign(&s, "jfk", Q).await;
    assert_eq!(a, b);
    assert_eq!(as_role(&s, Some("jfk"), "/v1/jobs").await.json()["jobs"], serde_json::json!([]));
}

#[tokio::test]
async fn cors_grants_only_listed_origins() {
    let dir = tenants_config(|d| config_set(d, "cors_allowed_origins", "[\"https://dash.example\"]"));
    let s = start(&dir.path().join("config")).await;
    let r = get_with(&s, "/v1/tables", &[("origin", "https://dash.example"), ("authorization", "Bearer t-fl")]).await;
    assert_eq!(r.header("access-control-allow-origin").as_deref(), Some("https://dash.example"));
    assert_eq!(r.header("access-control-allow-credentials").as_deref(), Some("true"));
    assert_eq!(r.header("vary").as_deref(), Some("Accept, Origin"));
    let r = get_with(&s, "/v1/tables", &[("origin", "https://evil.example"), ("authorization", "Bearer t-fl")]).await;
    assert_eq!(r.header("access-control-allow-origin"), None, "never reflected");
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_eq!(r.header("vary").as_deref(), Some("Accept, Origin"));
    // Preflight: no token needed, only the API's methods.
    let pre = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/v1/data/flights/day", s.base))
        .header("origin", "https://dash.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    let h = |k: &str| pre.headers().get(k).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(h("access-control-allow-methods").as_deref(), Some("GET, HEAD, OPTIONS"));
    assert!(h("access-control-allow-headers").unwrap().contains("Authorization"));
    assert_eq!(h("access-control-allow-origin").as_deref(), Some("https://dash.example"));
    // `*`: any page, never with credentials.
    let dir = tenants_config(|d| config_set(d, "cors_allowed_origins", "[\"*\"]"));
    let s = start(&dir.path().join("config")).await;
    let r = get_with(&s, "/v1/tables", &[("origin", "https://any.example"), ("authorization", "Bearer t-fl")]).await;
    assert_eq!(r.header("access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn jobs_need_the_jobs_scope_and_status_detail_needs_an_operator() {
    let dir = tenants_config(|d| config_set(d, "default_asyncAfter", "\"always\""));
    let s = start(&dir.path().join("config")).await;
    let r = as_role(&s, Some("nojobs"), &format!("{Q}&asyncAfter=always")).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (403, Some("FORBIDDEN")), "{}", r.body);
    assert!(r.description().contains("'jobs' scope"), "{}", r.description());
    let r = as_role(&s, Some("nojobs"), Q).await;
    assert_eq!(r.status, 200, "the default asyncAfter answers it synchronously: {}", r.body);
    assert_eq!(as_role(&s, Some("fl"), Q).await.status, 202, "others follow the default");
    // /status: health for anyone, detail for an admin or the status token.
    assert_eq!(get(&s, "/status").await.json(), serde_json::json!({"status": "ok", "healthy": true}));
    assert!(as_role(&s, Some("fl"), "/status").await.json().get("tables").is_none());
    assert!(as_role(&s, Some("admin"), "/status").await.json()["tables"]["vault"].is_object());
    assert!(status(&s).await["tables"]["flights"].is_object());
    assert_eq!(get(&s, "/metrics").await.status, 401);
    assert_eq!(as_role(&s, Some("admin"), "/metrics").await.status, 200);
}
