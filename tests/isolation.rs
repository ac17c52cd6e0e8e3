//! Tenants see only what they may, on every endpoint (issue 13): every documented route ×
//! every kind of caller × every format, tried as a tenant would.

mod common;

use common::tenants::*;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

const FORMATS: [&str; 4] = ["json", "csv", "jsonapi", "debug"];
const DATES: &str = "dateTime=2013-06-01/2013-06-08";

/// Names belonging to one table, substituted into the route templates.
struct Names {
    table: &'static str,
    dims: &'static str,
    dimension: &'static str,
    metric: &'static str,
    slice: &'static str,
}

const FLIGHTS: Names =
    Names { table: "flights", dims: "carrier", dimension: "flight", metric: "avgDepDelay", slice: "flights_raw" };
const VAULT: Names =
    Names { table: "vault", dims: "vaultCode", dimension: "vaultCode", metric: "vaultCount", slice: "vault_raw" };
const NOSUCH: Names = Names { table: "nosuch", dims: "nosuch", dimension: "nosuch", metric: "nosuch", slice: "nosuch" };

/// A caller: its token name, whether it sees each table, and what must never reach it.
struct Who {
    token: Option<&'static str>,
    flights: bool,
    vault: bool,
    hidden: &'static [&'static str],
}

const VAULT_WORDS: &[&str] = &["vault", "Vault"];
const FLIGHTS_WORDS: &[&str] = &["flights_raw", "flights_day", "NYC flights", "avgDepDelay", "uniqueTails", "tailnum"];

const CALLERS: [Who; 5] = [
    Who { token: None, flights: false, vault: false, hidden: &["vault", "flights_raw", "avgDepDelay"] },
    Who { token: Some("fl"), flights: true, vault: false, hidden: VAULT_WORDS },
    Who { token: Some("vault"), flights: false, vault: true, hidden: FLIGHTS_WORDS },
    Who { token: Some("jfk"), flights: true, vault: false, hidden: VAULT_WORDS },
    Who { token: Some("admin"), flights: true, vault: true, hidden: &[] },
];

fn instantiate(template: &str, n: &Names, ticket: &str, format: &str) -> String {
    let path = template
        .replace("{table}", n.table)
        .replace("{grain}", "day")
        .replace("{dimensions}", n.dims)
        .replace("{dimension}", n.dimension)
        .replace("{metric}", n.metric)
        .replace("{slice}", n.slice)
        .replace("{ticket}", ticket);
    let data = format!("/v1/data/{}/day/{}?metrics={}&{DATES}", n.table, n.dims, n.metric);
    if path == "/share" {
        return format!("/v1/share?url={}", enc(&data));
    }
    format!("/v1{path}?metrics={}&{DATES}&format={format}", n.metric)
}

/// Which table's names a template takes, if any.
fn takes_names(template: &str) -> bool {
    ["{table}", "{dimension}", "{metric}", "{slice}"].iter().any(|p| template.contains(p)) || template == "/share"
}

/// An error body with every instance name replaced, to compare "hidden" with "unknown".
fn normalised(r: &Resp) -> (u16, String, String) {
    let v = r.json();
    let mut d = v["description"].as_str().unwrap_or_default().to_string();
    for n in ["flights_raw", "avgDepDelay", "flights", "flight", "vault_raw", "vaultCode", "vaultCount", "vault"] {
        d = d.replace(n, "nosuch");
    }
    (r.status, v["reason"].as_str().unwrap_or_default().to_string(), d)
}

fn assert_clean(r: &Resp, url: &str, who: &Who, roots: &[String]) {
    let mut text = r.body.clone();
    for (k, v) in r.headers.iter() {
        text.push_str(&format!("\n{k}: {}", v.to_str().unwrap_or("")));
    }
    for h in who.hidden {
        assert!(!text.contains(h), "{:?} {url}: '{h}' leaked: {text}", who.token);
    }
    for root in roots {
        assert!(!text.contains(root.as_str()), "{:?} {url}: absolute path leaked: {text}", who.token);
    }
}

/// Every route of the OpenAPI document, as every caller, in every format.
#[tokio::test]
async fn every_endpoint_every_caller_every_format() {
    let (s, dir) = tenants().await;
    let roots =
        vec![dir.path().to_string_lossy().into_owned(), env!("CARGO_MANIFEST_DIR").to_string(), "/tmp/".to_string()];
    let doc = as_role(&s, Some("admin"), "/v1/openapi.json").await.json();
    let templates: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    // Each caller's own job (the anonymous caller probes the admin's).
    let mut tickets = std::collections::HashMap::new();
    for who in &CALLERS {
        let n = if who.flights || who.token.is_none() { &FLIGHTS } else { &VAULT };
        let url = format!("/v1/data/{}/day?metrics=flights&{DATES}&asyncAfter=always", n.table);
        let r = as_role(&s, who.token.or(Some("admin")), &url).await;
        assert_eq!(r.status, 202, "{url}: {}", r.body);
        tickets.insert(who.token, r.json()["jobTicket"].as_str().unwrap().to_string());
    }
    let mut checked = 0;
    for who in &CALLERS {
        let ticket = &tickets[&who.token];
        for t in &templates {
            for format in FORMATS {
                let instances: Vec<(&Names, bool)> = if takes_names(t) {
                    vec![(&FLIGHTS, who.flights), (&VAULT, who.vault)]
                } else {
                    vec![(&FLIGHTS, true)]
                };
                for (names, visible) in instances {
                    let url = instantiate(t, names, ticket, format);
                    let r = as_role(&s, who.token, &url).await;
                    checked += 1;
                    if who.token.is_none() {
                        assert_eq!(r.status, 401, "{url}: {}", r.body);
                    } else if visible {
                        assert_eq!(r.status, 200, "{:?} {url}: {}", who.token, r.body);
                    } else {
                        // Hidden answers exactly as unknown.
                        let unknown = as_role(&s, who.token, &instantiate(t, &NOSUCH, ticket, format)).await;
                        assert_eq!(r.status, 404, "{:?} {url}: {}", who.token, r.body);
                        assert_eq!(normalised(&r), normalised(&unknown), "{:?} {url}", who.token);
                        continue;
                    }
                    assert_clean(&r, &url, who, &roots);
                }
            }
        }
        let full = as_role(&s, who.token, "/v1/tables?format=fullview").await;
        assert_clean(&full, "fullview", who, &roots);
    }
    eprintln!("{checked} requests checked");
}

/// The row-level role's dimension values are the values in its own rows, for every dimension
/// of its table (lookup dimensions included), and its cardinality and search agree.
#[tokio::test]
async fn row_level_roles_see_only_their_values() {
    let (s, _d) = tenants().await;
    let rows: Vec<Flight> = flights().into_iter().filter(|f| f.origin == "JFK").collect();
    let mine = |dim: &str| -> BTreeSet<String> {
        rows.iter()
            .filter_map(|f| match dim {
                "carrier" => Some(f.carrier.clone()),
                "origin" => Some(f.origin.clone()),
                "dest" => Some(f.dest.clone()),
                "tailnum" => f.tailnum.clone(),
                _ => Some(f.flight.to_string()),
            })
            .collect()
    };
    for dim in ["carrier", "origin", "dest", "tailnum", "flight"] {
        let v = as_role(&s, Some("jfk"), &format!("/v1/dimensions/{dim}/values")).await.json();
        let got: BTreeSet<String> =
            v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().into()).collect();
        let allowed = mine(dim);
        assert!(got.is_subset(&allowed), "{dim}: {:?}", got.difference(&allowed).take(5).collect::<Vec<_>>());
        // Every key of the role's rows that the dimension lists at all is listed.
        let all = as_role(&s, Some("admin"), &format!("/v1/dimensions/{dim}/values")).await.json();
        let all: BTreeSet<String> =
            all["rows"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().into()).collect();
        assert_eq!(got, allowed.intersection(&all).cloned().collect(), "{dim}");
        assert!(got.len() < all.len(), "{dim}: the role sees fewer values than the admin");
        let d = as_role(&s, Some("jfk"), &format!("/v1/dimensions/{dim}")).await.json();
        assert_eq!(d["cardinality"].as_u64().unwrap() as usize, got.len(), "{dim}");
    }
    let flights_seen = mine("flight");
    assert!(!flights_seen.contains("100"), "flight 100 flew only from EWR");
    let admin = as_role(&s, Some("admin"), "/v1/dimensions/flight/values?filters=flight%7Cid-in%5B100%5D").await.json();
    assert_eq!(admin["rows"].as_array().unwrap().len(), 1);
    let jfk = as_role(&s, Some("jfk"), "/v1/dimensions/flight/values?filters=flight%7Cid-in%5B100%5D").await.json();
    assert_eq!(jfk["rows"], serde_json::json!([]), "search reflects the role's rows too");
    let origins =
        as_role(&s, Some("jfk"), "/v1/dimensions/origin/values?filters=origin%7Cid-in%5BJFK,LGA,EWR%5D").await;
    assert_eq!(origins.json()["rows"].as_array().unwrap().len(), 1);
    // Slices do not show a row-level role file sizes or row counts of everyone's rows.
    let slice = as_role(&s, Some("jfk"), "/v1/slices/flights_raw").await.json();
    assert!(slice.get("files").is_none(), "{slice}");
    assert!(as_role(&s, Some("fl"), "/v1/slices/flights_raw").await.json()["files"][0]["rows"].is_number());
}

/// Availability for a role follows the days that hold its rows.
#[tokio::test]
async fn availability_follows_the_roles_rows() {
    let dir = tenants_config(|d| {
        let p = d.join("config/gateway.toml");
        let s = std::fs::read_to_string(&p)
            .unwrap()
            .replace("filters = \"origin|id-in[JFK]\"", "filters = \"flight|id-in[100]\"");
        std::fs::write(&p, s).unwrap();
    });
    let s = start(&dir.path().join("config")).await;
    let days: BTreeSet<i64> =
        flights().iter().filter(|f| f.flight == 100).map(|f| f.time_ms.div_euclid(86_400_000)).collect();
    let t = as_role(&s, Some("jfk"), "/v1/tables/flights/day").await.json();
    let intervals = t["availableIntervals"].as_array().unwrap();
    let covered: i64 = intervals
        .iter()
        .map(|i| {
            let (a, b) = i.as_str().unwrap().split_once('/').unwrap();
            let ms =
                |x: &str| chrono::DateTime::parse_from_rfc3339(&x.replace(".000Z", "Z")).unwrap().timestamp_millis();
            (ms(b) - ms(a)) / 86_400_000
        })
        .sum();
    assert_eq!(covered as usize, days.len(), "{intervals:?}");
    let admin = as_role(&s, Some("admin"), "/v1/tables/flights/day").await.json();
    assert_eq!(admin["availableIntervals"].as_array().unwrap().len(), 1);
}

/// A tiny deterministic generator (xorshift) for the property test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
    fn some<'a>(&mut self, v: &[&'a str]) -> Vec<&'a str> {
        let mut out: Vec<&str> = v.iter().copied().filter(|_| self.below(2) == 0).collect();
        if out.is_empty() {
            out.push(self.pick(v));
        }
        out
    }
}

/// Random data URLs: the row-level role's answer equals the admin's answer to the same URL
/// with the role's filter added.
#[tokio::test]
async fn row_level_answer_equals_admin_with_the_filter() {
    let (s, _d) = tenants().await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let user_filters = [
        "",
        "carrier|id-in[UA,AA,B6]",
        "dest|id-notin[LAX]",
        "dest|desc-contains[International]",
        "flight|id-in[1,2,3]",
    ];
    for i in 0..40 {
        let grain = rng.pick(&["hour", "day", "week", "month", "all"]);
        let dims = rng.some(&["carrier", "origin", "dest", "flight"]);
        let dims: Vec<&str> = dims.into_iter().take(1 + rng.below(2)).collect();
        let metrics = rng.some(&["flights", "departed", "depDelay", "avgDepDelay", "uniqueTails", "maxDepDelay"]);
        let dates = rng.pick(&["2013-06-01/2013-06-03", "2013-01-01/2013-03-01", "2013-11-30/2013-12-02"]);
        let mut q = format!("metrics={}&dateTime={dates}", metrics.join(","));
        let uf = rng.pick(&user_filters);
        if rng.below(3) == 0 {
            q.push_str(&format!("&sort={}%7Cdesc&topN=5", metrics[0]));
        } else if rng.below(2) == 0 {
            q.push_str(&format!("&having={}-gt%5B1%5D", metrics[0]));
        }
        let path = format!("/v1/data/flights/{grain}/{}", dims.join("/"));
        let role_url = if uf.is_empty() { format!("{path}?{q}") } else { format!("{path}?{q}&filters={}", enc(uf)) };
        let both = if uf.is_empty() { JFK_FILTER.to_string() } else { format!("{JFK_FILTER},{uf}") };
        let admin_url = format!("{path}?{q}&filters={}", enc(&both));
        let role = as_role(&s, Some("jfk"), &role_url).await;
        let admin = as_role(&s, Some("admin"), &admin_url).await;
        assert_eq!(role.status, admin.status, "#{i} {role_url}: {} / {}", role.body, admin.body);
        let (mut a, mut b): (Value, Value) = (role.json(), admin.json());
        for v in [&mut a, &mut b] {
            if let Some(o) = v.as_object_mut() {
                o.remove("requestId");
            }
        }
        assert_eq!(a, b, "#{i} {role_url}");
    }
}
