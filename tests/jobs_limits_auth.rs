//! Async jobs, admission limits and identity through the real server (spec §4.11, §7, §8).

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

const Q: &str = "/v1/data/flights/day/carrier?metrics=flights,avgDepDelay&dateTime=2013-06-01/2013-06-08";
/// Slow in a debug build (about a second): ~300,000 groups and a distinct count.
const HEAVY: &str =
    "/v1/data/flights/hour/tailnum/flight?metrics=flights,uniqueTails&dateTime=2013-01-01/2014-01-01&count=1";

fn set_gateway(dir: &Path, extra: &str) {
    let p = dir.join("config/gateway.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{s}\n{extra}")).unwrap();
}

fn with_limits(dir: &Path, per_user: i64, global: i64) {
    let p = dir.join("config/gateway.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    let s = s
        .replace("request_limit_global = 70", &format!("request_limit_global = {global}"))
        .replace("request_limit_per_user = 2", &format!("request_limit_per_user = {per_user}"))
        .replace("scan_threads = 0", "scan_threads = 1");
    std::fs::write(&p, s).unwrap();
}

#[tokio::test]
async fn async_ticket_long_poll_and_results_in_every_format() {
    let s = embedded().await;
    let sync = get(&s, Q).await;
    let r = get(&s, &format!("{Q}&asyncAfter=always")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let job = r.json();
    let keys: Vec<&String> = job.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["query", "results", "syncResults", "self", "status", "jobTicket", "dateCreated", "dateUpdated", "userId"]
    );
    let t = job["jobTicket"].as_str().unwrap().to_string();
    assert_eq!(job["userId"], "anonymous");
    assert_eq!(job["self"], format!("{}/v1/jobs/{t}", s.base));
    assert_eq!(job["syncResults"], format!("{}/v1/jobs/{t}/results?asyncAfter=never", s.base));
    assert!(job["query"].as_str().unwrap().ends_with("asyncAfter=always"));

    let r = get(&s, &format!("/v1/jobs/{t}/results?asyncAfter=never")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rows"], sync.json()["rows"], "the job's results equal the synchronous answer");
    let csv = get(&s, &format!("/v1/jobs/{t}/results?format=csv")).await;
    assert_eq!(csv.body, get(&s, &format!("{Q}&format=csv")).await.body);
    assert_eq!(
        csv.header("content-disposition").unwrap(),
        "attachment; filename=data-flights-day-carrier_2013-06-01_2013-06-08.csv"
    );
    let api = get(&s, &format!("/v1/jobs/{t}/results?format=jsonapi")).await;
    assert_eq!(api.json()["carrier"], get(&s, &format!("{Q}&format=jsonapi")).await.json()["carrier"]);
    let page = get(&s, &format!("/v1/jobs/{t}/results?perPage=5&page=2")).await.json();
    assert_eq!(page["rows"].as_array().unwrap().len(), 5);
    assert_eq!(page["meta"]["pagination"]["previous"], format!("{}/v1/jobs/{t}/results?perPage=5&page=1", s.base));

    let j = get(&s, &format!("/v1/jobs/{t}")).await.json();
    assert_eq!(j["status"], "success");
    // `always` on results returns the payload even when ready.
    assert_eq!(get(&s, &format!("/v1/jobs/{t}/results?asyncAfter=always")).await.json()["jobTicket"], json!(t));
    let r = get(&s, "/v1/jobs/nope123/results").await;
    assert_eq!((r.status, r.description()), (404, "No job found with job ticket nope123".into()));
    let r = get(&s, "/v1/jobs/..%2F..%2Fetc").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn asyncafter_fast_queries_stay_synchronous() {
    let s = embedded().await;
    let r = get(&s, &format!("{Q}&asyncAfter=60000")).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["rows"].is_array());
    assert_eq!(get(&s, "/v1/jobs").await.json()["jobs"], json!([]), "nothing stored for a synchronous answer");
}

#[tokio::test]
async fn jobs_list_and_filters() {
    let s = embedded().await;
    let a = get(&s, &format!("{Q}&asyncAfter=always")).await.json()["jobTicket"].as_str().unwrap().to_string();
    let _ = get(&s, &format!("/v1/jobs/{a}/results")).await;
    let bad = get(&s, "/v1/data/flights/day?metrics=flights&dateTime=2013-06-01/2013-06-02&asyncAfter=always&filters=nope%7Cid-in%5Bx%5D").await;
    // Invalid requests fail with the normal 400 even when asyncAfter=always; no job is made.
    assert_eq!(bad.status, 400, "{}", bad.body);
    let all = get(&s, "/v1/jobs").await.json();
    assert_eq!(all["jobs"].as_array().unwrap().len(), 1);
    let ok = get(&s, "/v1/jobs?filters=status-eq%5Bsuccess%5D,userId-in%5Banonymous%5D").await.json();
    assert!(ok["jobs"].as_array().unwrap().iter().any(|j| j["jobTicket"] == json!(a)));
    let none = get(&s, "/v1/jobs?filters=userId-eq%5Bsomeone%5D").await.json();
    assert_eq!(none["jobs"], json!([]));
    let r = get(&s, "/v1/jobs?filters=owner-eq%5Bx%5D").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn results_survive_a_restart_and_interrupted_jobs_fail() {
    let jobs_dir = tempfile::tempdir().unwrap();
    let cfg = embedded_config();
    let ticket;
    let first_rows;
    {
        let s = start_with_jobs(&cfg, jobs_dir.path()).await;
        ticket = get(&s, &format!("{Q}&asyncAfter=always")).await.json()["jobTicket"].as_str().unwrap().to_string();
        first_rows = get(&s, &format!("/v1/jobs/{ticket}/results?asyncAfter=never")).await.json()["rows"].clone();
        // A job cut off mid-flight: its row is pending when the server goes away.
        let cut = s
            .state
            .jobs
            .create("http://x/v1/data/cut", "anonymous", "addr:127.0.0.1", "{}", Default::default())
            .unwrap();
        assert_eq!(cut.status, quiver::jobs::JobStatus::Pending);
        drop(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = start_with_jobs(&cfg, jobs_dir.path()).await;
    let again = get(&s, &format!("/v1/jobs/{ticket}/results")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["rows"], first_rows);
    let jobs = get(&s, "/v1/jobs?filters=status-eq%5Bfailure%5D").await.json();
    let failed = &jobs["jobs"][0];
    assert_eq!(failed["query"], "http://x/v1/data/cut");
    let t = failed["jobTicket"].as_str().unwrap();
    let r = get(&s, &format!("/v1/jobs/{t}/results")).await;
    // The HTTP status and the body agree: 503 JOB_INTERRUPTED, status failure.
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], 503);
    assert_eq!(r.json()["reason"], "JOB_INTERRUPTED");
    assert!(r.description().contains("interrupted"), "{}", r.body);
}

#[tokio::test]
async fn old_jobs_expire() {
    let dir = scratch_config();
    set_gateway(dir.path(), "");
    let p = dir.path().join("config/gateway.toml");
    let s = std::fs::read_to_string(&p).unwrap().replace("expiry_seconds = 604800", "expiry_seconds = 0");
    std::fs::write(&p, s).unwrap();
    let jobs_dir = tempfile::tempdir().unwrap();
    let server = start_with_jobs(&dir.path().join("config"), jobs_dir.path()).await;
    let t = get(&server, &format!("{Q}&asyncAfter=always")).await.json()["jobTicket"].as_str().unwrap().to_string();
    assert_eq!(get(&server, &format!("/v1/jobs/{t}/results")).await.status, 200);
    assert!(jobs_dir.path().join(format!("results/{t}.arrow")).exists());
    assert_eq!(server.state.jobs.expire(), 1);
    assert_eq!(get(&server, &format!("/v1/jobs/{t}")).await.status, 404);
    assert!(!jobs_dir.path().join(format!("results/{t}.arrow")).exists());
}

#[tokio::test]
async fn one_users_flood_gets_429_while_another_user_runs() {
    let dir = scratch_config();
    with_limits(dir.path(), 2, 10);
    let s = start(&dir.path().join("config")).await;
    // Async submissions hold their permit while the query runs.
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(get(&s, &format!("{HEAVY}&asyncAfter=always")).await.status);
    }
    assert_eq!(statuses, [202, 202, 429, 429]);
    let r = get(&s, &format!("{HEAVY}&asyncAfter=always")).await;
    assert_eq!(r.json()["reason"], "RATE_LIMITED");
    assert!(
        r.description().starts_with("Rate limit reached. Exceeded user request limit. Reject http://"),
        "{}",
        r.body
    );
    // A header cannot buy the UI limit: only a role with `ui = true` has it.
    let ui = get_with(&s, Q, &[("clientid", "UI"), ("referer", "http://dash")]).await;
    assert_eq!(ui.status, 429, "{}", ui.body);
    assert_eq!(s.state.admission.in_flight("addr:127.0.0.1").1, 2);
    // Metadata is never limited.
    assert_eq!(get(&s, "/v1/tables").await.status, 200);
    // When the jobs finish, the permits come back.
    for j in get(&s, "/v1/jobs").await.json()["jobs"].as_array().unwrap() {
        let t = j["jobTicket"].as_str().unwrap();
        assert_eq!(get(&s, &format!("/v1/jobs/{t}/results?asyncAfter=never")).await.status, 200);
    }
    for _ in 0..50 {
        if s.state.admission.in_flight("addr:127.0.0.1").1 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&s, Q).await.status, 200);
}

#[tokio::test]
async fn global_limit() {
    let dir = scratch_config();
    with_limits(dir.path(), 5, 1);
    let s = start(&dir.path().join("config")).await;
    assert_eq!(get(&s, &format!("{HEAVY}&asyncAfter=always")).await.status, 202);
    let r = get(&s, Q).await;
    assert_eq!(r.status, 429);
    assert!(r.description().starts_with("Rate limit reached. Global request limit exceeded."), "{}", r.body);
}

#[tokio::test]
async fn rate_limit_with_fake_clock_and_retry_after() {
    use governor::clock::FakeRelativeClock;
    let cfg = embedded_config();
    let jobs = tempfile::tempdir().unwrap();
    let config = quiver::config::GatewayConfig::load(&cfg).unwrap();
    let catalog = quiver::catalog::load(&config.tables_dir(&cfg), &config.data_root(&cfg)).unwrap();
    let limits = config.limits.clone();
    let mut state = quiver::app::AppState::with_parts(
        config,
        cfg.clone(),
        catalog,
        std::sync::Arc::new(quiver::app::FixedClock(NOW_MS)),
        jobs.path(),
    );
    let clock = FakeRelativeClock::default();
    let rate = quiver::limits::GovernorRate::new(1, 1, clock.clone()).unwrap();
    state.admission = quiver::limits::Admission::new(limits).with_rate(Box::new(rate));
    let s = start_state(state).await;
    assert_eq!(get(&s, Q).await.status, 200);
    let r = get(&s, Q).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    clock.advance(Duration::from_secs(1));
    assert_eq!(get(&s, Q).await.status, 200);
}

#[tokio::test]
async fn abandoned_synchronous_query_is_canceled() {
    let dir = scratch_config();
    with_limits(dir.path(), 1, 10);
    let s = start(&dir.path().join("config")).await;
    let client = reqwest::Client::builder().timeout(Duration::from_millis(150)).build().unwrap();
    let r = client.get(format!("{}{HEAVY}", s.base)).send().await;
    assert!(r.is_err(), "the client gave up");
    // The server notices the disconnect, cancels the query and releases the permit.
    for _ in 0..200 {
        if s.state.admission.in_flight("addr:127.0.0.1").1 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(s.state.admission.in_flight("addr:127.0.0.1").1, 0);
    assert_eq!(s.state.counters.queries_canceled.load(Ordering::Relaxed), 1, "canceled, not finished");
}

// ---------------------------------------------------------------- identity

const ROLES: &str = r#"
[auth]
enabled = true

[[auth.tokens]]
sha256 = "HASH_META"
user = "mia"
roles = ["viewer"]

[[auth.tokens]]
sha256 = "HASH_JFK"
user = "jo"
roles = ["jfk"]

[[auth.tokens]]
sha256 = "HASH_ADMIN"
user = "ada"
roles = ["ops"]

[[auth.tokens]]
sha256 = "HASH_OTHER"
user = "otto"
roles = ["other"]

[auth.roles.viewer]
scopes = ["meta"]

[auth.roles.jfk]
scopes = ["data", "jobs"]
tables = ["flights"]
filters = "origin|id-in[JFK]"

[auth.roles.ops]
admin = true

[auth.roles.other]
tables = ["elsewhere"]
"#;

async fn auth_server() -> (Server, tempfile::TempDir) {
    let dir = scratch_config();
    let mut roles = ROLES.to_string();
    for (k, t) in [("HASH_META", "t-meta"), ("HASH_JFK", "t-jfk"), ("HASH_ADMIN", "t-admin"), ("HASH_OTHER", "t-other")]
    {
        roles = roles.replace(k, &quiver::auth::hash_token(t));
    }
    set_gateway(dir.path(), &roles);
    let s = start(&dir.path().join("config")).await;
    (s, dir)
}

async fn as_user(s: &Server, token: &str, path: &str) -> Resp {
    get_with(s, path, &[("authorization", &format!("Bearer {token}"))]).await
}

#[tokio::test]
async fn auth_matrix() {
    let (s, _d) = auth_server().await;
    let data = "/v1/data/flights/all?metrics=flights&dateTime=2013-01-01/2014-01-01";
    assert_eq!(get(&s, "/v1/tables").await.status, 401);
    assert_eq!(as_user(&s, "wrong", "/v1/tables").await.status, 401);
    assert_eq!(get(&s, "/status").await.status, 200, "health stays public");
    // viewer: meta only.
    assert_eq!(as_user(&s, "t-meta", "/v1/tables").await.status, 200);
    assert_eq!(as_user(&s, "t-meta", data).await.status, 403);
    assert_eq!(as_user(&s, "t-meta", "/v1/jobs").await.status, 403);
    // jfk: data and jobs, no metadata.
    assert_eq!(as_user(&s, "t-jfk", "/v1/tables").await.status, 403);
    assert_eq!(as_user(&s, "t-jfk", data).await.status, 200);
    assert_eq!(as_user(&s, "t-jfk", "/v1/jobs").await.status, 200);
    // other: every scope but no access to flights.
    // An ungranted table does not exist for the role: 404, as for a name nobody defined.
    let r = as_user(&s, "t-other", data).await;
    assert_eq!((r.status, r.json()["reason"].clone()), (404, json!("TABLE_NOT_FOUND")));
    let unknown = as_user(&s, "t-other", &data.replace("flights", "nosuch")).await;
    assert_eq!((unknown.status, unknown.json()["reason"].clone()), (404, json!("TABLE_NOT_FOUND")));
    assert_eq!(as_user(&s, "t-other", "/v1/tables/flights").await.status, 404);
    assert_eq!(as_user(&s, "t-other", "/v1/tables").await.json()["rows"], json!([]));
    // admin: everything.
    assert_eq!(as_user(&s, "t-admin", data).await.status, 200);
}

#[tokio::test]
async fn row_level_filters_cannot_be_escaped() {
    let (s, _d) = auth_server().await;
    let jfk = all_jfk();
    let base = "/v1/data/flights/all/origin?metrics=flights&dateTime=2013-01-01/2014-01-01";
    let r = as_user(&s, "t-jfk", base).await.json();
    assert_eq!(r["rows"].as_array().unwrap().len(), 1);
    assert_eq!(r["rows"][0]["origin|id"], "JFK");
    assert_eq!(r["rows"][0]["flights"], json!(jfk));
    for escape in [
        "&filters=origin%7Cid-notin%5BJFK%5D",
        "&filters=origin%7Cid-in%5BLGA,EWR%5D",
        "&filters=origin%7Cdesc-contains%5BLa%20Guardia%5D",
        "&filters=origin%7Cid-startswith%5BL%5D",
    ] {
        let r = as_user(&s, "t-jfk", &format!("{base}{escape}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["rows"], json!([]), "{escape}");
    }
    // Through another dimension and through the rollup the role still sees only JFK rows.
    let r = as_user(&s, "t-jfk", "/v1/data/flights/all?metrics=flights&dateTime=2013-01-01/2014-01-01").await.json();
    assert_eq!(r["rows"][0]["flights"], json!(jfk));
    let r =
        as_user(&s, "t-jfk", "/v1/data/flights/month/dest?metrics=flights&dateTime=2013-01-01/2014-01-01&format=csv")
            .await;
    let total: i64 = r.body.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(total, jfk as i64);
    // Dimension values of the filtered dimension (admin sees all three).
    let v = as_user(&s, "t-admin", "/v1/dimensions/origin/values?filters=origin%7Cid-in%5BJFK,LGA,EWR%5D").await.json();
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn jobs_are_private_unless_admin() {
    let (s, _d) = auth_server().await;
    let q = format!("{Q}&asyncAfter=always");
    let t = as_user(&s, "t-admin", &q).await.json()["jobTicket"].as_str().unwrap().to_string();
    let mine = as_user(&s, "t-jfk", &q).await.json()["jobTicket"].as_str().unwrap().to_string();
    assert_eq!(as_user(&s, "t-jfk", &format!("/v1/jobs/{t}")).await.status, 404);
    assert_eq!(as_user(&s, "t-jfk", &format!("/v1/jobs/{t}/results")).await.status, 404);
    assert_eq!(as_user(&s, "t-jfk", &format!("/v1/jobs/{mine}/results")).await.status, 200);
    let list = as_user(&s, "t-jfk", "/v1/jobs").await.json();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(list["jobs"][0]["userId"], "jo");
    let all = as_user(&s, "t-admin", "/v1/jobs").await.json();
    assert_eq!(all["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(as_user(&s, "t-admin", &format!("/v1/jobs/{mine}")).await.status, 200);
}

fn all_jfk() -> usize {
    let (a, b) = (day_ms("2013-01-01"), day_ms("2014-01-01"));
    flights().iter().filter(|f| f.origin == "JFK" && f.time_ms >= a && f.time_ms < b).count()
}

#[test]
fn token_command_prints_a_usable_hash() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_quiver")).args(["token", "--user", "ann"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let token = text.lines().next().unwrap().rsplit(' ').next().unwrap();
    assert!(text.contains(&format!("sha256 = \"{}\"", quiver::auth::hash_token(token))), "{text}");
    assert!(text.contains("user = \"ann\""));
}

#[tokio::test]
async fn a_flooding_user_does_not_block_another_user() {
    let (s, _d) = auth_server().await;
    let heavy = format!("{HEAVY}&asyncAfter=always");
    let mut statuses = vec![];
    for _ in 0..3 {
        statuses.push(as_user(&s, "t-admin", &heavy).await.status);
    }
    assert_eq!(statuses, [202, 202, 429], "ada is limited to 2 in flight");
    let r = as_user(&s, "t-jfk", Q).await;
    assert_eq!(r.status, 200, "jo is unaffected: {}", r.body);
}

#[tokio::test]
async fn row_level_filters_hold_under_every_grammar() {
    let (s, _d) = auth_server().await;
    let base = "/v1/data/flights";
    let probes = [
        format!(
            "{base}/month/origin?metrics=flights&dateTime=2013-01-01/2014-01-01&having=flights-gt%5B0%5D&sort=flights%7Cdesc&topN=3"
        ),
        format!("{base}/all/origin/carrier?metrics=flights,avgDepDelay&dateTime=2013/2014&sort=origin%7Casc&count=100"),
        format!("{base}/week/origin?metrics=flights(reagg=dayAvg),dayAvgFlights&dateTime=2013-01-07/2013-03-04"),
        format!(
            "{base}/day/origin?metrics=flights&dateTime=2013-06-01/RRULE=FREQ=WEEKLY;COUNT=3&timeZone=America/New_York"
        ),
        format!("{base}/day/origin;show=all?metrics=flights&dateTime=P3D/2013-06-04&perPage=2&page=2"),
        format!(
            "{base}/all/origin?metrics=flights,uniqueTails&dateTime=2013/2014&filters=origin%7Cid-notin%5BJFK%5D,origin%7Cid-in%5BJFK,LGA%5D"
        ),
        format!("{base}/all/origin?metrics=flights&dateTime=2013/2014&filters=origin%7Cid-gt%5BA%5D"),
        format!(
            "{base}/all/origin/dest?metrics=flights&dateTime=2013/2014&filters=dest%7Cid-in%5BLAX%5D&having=flights-notBetween%5B-1,0%5D"
        ),
    ];
    for p in &probes {
        let r = as_user(&s, "t-jfk", p).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        for row in r.json()["rows"].as_array().unwrap() {
            assert_eq!(row["origin|id"], "JFK", "{p}");
        }
        let csv = as_user(&s, "t-jfk", &format!("{p}&format=csv")).await;
        assert!(
            csv.body.lines().skip(1).all(|l| l.contains(",JFK,") || l.contains(",JFK\r") || l.is_empty()),
            "{p}: {}",
            csv.body
        );
        let api = as_user(&s, "t-jfk", &format!("{p}&format=jsonapi")).await.json();
        for o in api["origin"].as_array().unwrap_or(&vec![]) {
            assert_eq!(o["id"], "JFK", "{p}");
        }
    }
    // Through a job, too.
    let t = as_user(&s, "t-jfk", &format!("{}&asyncAfter=always", probes[1])).await.json()["jobTicket"]
        .as_str()
        .unwrap()
        .to_string();
    let r = as_user(&s, "t-jfk", &format!("/v1/jobs/{t}/results?asyncAfter=never")).await.json();
    assert!(r["rows"].as_array().unwrap().iter().all(|row| row["origin|id"] == "JFK"));
}
