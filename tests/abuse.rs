//! One client cannot hurt another: unread responses, slow and idle sockets, odd request
//! targets, identity for limits, per-table concurrency, job quotas, orphans, damaged result
//! files, a full disk, signals. Real sockets against the real server.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// About 200,000 rows of JSON (tens of MB): more than the socket buffers hold.
const BIG: &str = "/v1/data/flights/day/tailnum;show=all/dest?metrics=flights,depDelay&dateTime=2013-01-01/2014-01-01";
/// Slow in a debug build (about a second), small answer.
const HEAVY: &str =
    "/v1/data/flights/hour/tailnum/flight?metrics=flights,uniqueTails&dateTime=2013-01-01/2014-01-01&count=1";
const Q: &str = "/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-06-08";

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Connects and sends `request` (raw bytes), reading nothing.
async fn send(s: &Server, request: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr(s)).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    c
}

fn get_req(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Reads up to the end of the response head (or what arrives in 20 s).
async fn head(c: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !buf.ends_with(b"\r\n\r\n") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(20), c.read(&mut byte)).await {
            Ok(Ok(1)) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads to EOF (or an error) within `secs`; `None` if the connection stayed open.
async fn read_to_close(c: &mut TcpStream, secs: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(secs), async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    {
        Ok(()) => Some(out),
        Err(_) => None,
    }
}

/// The JSON body after a response head (`Content-Length` or close-delimited).
async fn json_body(c: &mut TcpStream) -> Value {
    let body = read_to_close(c, 20).await.expect("the server closes after the answer");
    let text = String::from_utf8_lossy(&body);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn wait_until(mut ok: impl FnMut() -> bool, what: &str) {
    for _ in 0..400 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn server_with(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, Server) {
    let dir = scratch_config();
    edit(dir.path());
    let s = start(&dir.path().join("config")).await;
    (dir, s)
}

#[tokio::test]
async fn unread_responses_hold_their_budget_until_the_connection_goes() {
    let (_d, s) = server_with(|d| {
        config_set(d, "request_limit_per_user", "-1");
        config_set(d, "request_limit_global", "-1");
        config_set(d, "max_inflight_bytes_per_user", "67108864");
    })
    .await;
    let mut socks = Vec::new();
    for _ in 0..12 {
        socks.push(send(&s, &get_req(BIG)).await);
    }
    let (mut ok, mut refused) = (0, 0);
    for c in socks.iter_mut() {
        let h = head(c).await;
        if h.starts_with("HTTP/1.1 200") {
            ok += 1;
        } else {
            assert!(h.starts_with("HTTP/1.1 429"), "{h}");
            assert!(h.to_ascii_lowercase().contains("retry-after: 1"), "{h}");
            let v = json_body(c).await;
            assert_eq!(v["reason"], "RATE_LIMITED");
            assert!(v["description"].as_str().unwrap().contains("max_inflight_bytes_per_user"), "{v}");
            refused += 1;
        }
    }
    let held = s.state.admission.bytes_in_flight();
    eprintln!("12 unread responses: {ok} held ({} MB), {refused} refused, RSS {} MB", held >> 20, rss_bytes() >> 20);
    assert!(ok >= 1 && refused >= 1, "{ok} answered, {refused} refused");
    assert!(held > 0 && held <= 64 << 20, "{held} bytes held");
    assert!(rss_bytes() < 1 << 30, "RSS {} MB", rss_bytes() >> 20);
    // Another caller's metadata is not held up.
    assert_eq!(get(&s, "/v1/tables").await.status, 200);
    drop(socks);
    wait_until(|| s.state.admission.bytes_in_flight() == 0, "closed connections release their results").await;
    wait_until(|| s.state.admission.in_flight("addr:127.0.0.1").0 == 0, "and their slots").await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let (_d, s) = server_with(|d| config_set(d, "write_timeout_seconds", "1")).await;
    let mut c = send(&s, &get_req(BIG)).await;
    assert!(head(&mut c).await.starts_with("HTTP/1.1 200"));
    wait_until(|| s.state.admission.bytes_in_flight() > 0, "the response is held").await;
    // Not reading: after the write timeout the server gives up and releases everything.
    wait_until(|| s.state.admission.bytes_in_flight() == 0, "the stalled response is dropped").await;
    wait_until(|| s.state.admission.in_flight("").0 == 0, "its slot is free").await;
    let rest = read_to_close(&mut c, 20).await.expect("the server closed the connection");
    assert!(!rest.ends_with(b"0\r\n\r\n"), "the body was cut off, not completed");
}

#[tokio::test]
async fn half_open_sockets_are_closed_and_status_keeps_answering() {
    let (_d, s) = server_with(|d| config_set(d, "header_read_timeout_seconds", "1")).await;
    let mut socks = Vec::new();
    for _ in 0..200 {
        socks.push(send(&s, "GET /v1/tables HTTP/1.1\r\nHost: x\r\n").await);
    }
    let r = get(&s, "/status").await;
    assert_eq!(r.status, 200);
    let started = Instant::now();
    let mut closed = 0;
    for c in socks.iter_mut() {
        if read_to_close(c, 15).await.is_some() {
            closed += 1;
        }
    }
    eprintln!("200 half-open sockets: {closed} closed by the server in {} ms", started.elapsed().as_millis());
    assert_eq!(closed, 200);
    assert_eq!(get(&s, "/status").await.status, 200);
}

#[tokio::test]
async fn connections_per_client_are_capped() {
    let (_d, s) = server_with(|d| config_set(d, "max_connections_per_client", "3")).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(addr(&s)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut extra = send(&s, &get_req("/v1/tables")).await;
    let h = head(&mut extra).await;
    assert!(h.starts_with("HTTP/1.1 503"), "{h}");
    assert_eq!(json_body(&mut extra).await["reason"], "SERVER_BUSY");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&s, "/v1/tables").await.status, 200);
}

#[tokio::test]
async fn odd_request_targets_get_json_errors() {
    let s = embedded().await;
    for (req, status, reason) in [
        ("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", 405, "METHOD_NOT_ALLOWED"),
        ("GET http://elsewhere/v1/tables HTTP/1.1\r\nHost: elsewhere\r\n\r\n", 400, "REQUEST_TARGET_INVALID"),
        ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "REQUEST_TARGET_INVALID"),
    ] {
        let mut c = send(&s, req).await;
        let h = head(&mut c).await;
        assert!(h.starts_with(&format!("HTTP/1.1 {status}")), "{req:?} → {h}");
        let len: usize = h
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
            .expect("a sized JSON body");
        let mut body = vec![0u8; len];
        c.read_exact(&mut body).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((v["status"].as_u64(), v["reason"].as_str()), (Some(status), Some(reason)), "{req:?}");
    }
    assert_eq!(get(&s, "/v1/tables").await.status, 200, "the server is still up");
}

fn auth_config(d: &Path) {
    let p = d.join("config/gateway.toml");
    let mut s = std::fs::read_to_string(&p).unwrap();
    s.push_str(&format!(
        r#"
[auth]
enabled = true
[[auth.tokens]]
sha256 = "{}"
user = "ann"
roles = ["analyst"]
[[auth.tokens]]
sha256 = "{}"
user = "dash"
roles = ["dashboard"]
[auth.roles.analyst]
[auth.roles.dashboard]
ui = true
"#,
        quiver::auth::hash_token("ann-token"),
        quiver::auth::hash_token("dash-token")
    ));
    std::fs::write(&p, s).unwrap();
    config_set(d, "request_limit_per_user", "1");
    config_set(d, "request_limit_ui", "3");
    config_set(d, "request_limit_global", "-1");
}

#[tokio::test]
async fn the_ui_limit_comes_from_a_role_never_from_a_header() {
    let (_d, s) = server_with(auth_config).await;
    let slow = format!("{HEAVY}&asyncAfter=always");
    let ann = [("authorization", "Bearer ann-token")];
    assert_eq!(get_with(&s, &slow, &ann).await.status, 202);
    let sneaky = [("authorization", "Bearer ann-token"), ("clientid", "UI"), ("referer", "http://dash")];
    let r = get_with(&s, &slow, &sneaky).await;
    assert_eq!(r.status, 429, "a clientid header does not raise the limit: {}", r.body);
    let dash = [("authorization", "Bearer dash-token")];
    let statuses: Vec<u16> = futures_util::future::join_all((0..4).map(|_| get_with(&s, &slow, &dash)))
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.iter().filter(|&&c| c == 202).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&c| c == 429).count(), 1, "{statuses:?}");
}

#[tokio::test]
async fn callers_without_tokens_are_told_apart_by_address() {
    let slow = format!("{HEAVY}&asyncAfter=always");
    // Behind a trusted proxy, X-Forwarded-For names the client.
    let (_d, s) = server_with(|d| {
        config_set(d, "request_limit_per_user", "1");
        config_set(d, "trusted_proxies", r#"["127.0.0.1"]"#);
    })
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    assert_eq!(get_with(&s, &slow, &from("198.51.100.1")).await.status, 202);
    assert_eq!(get_with(&s, &slow, &from("198.51.100.1")).await.status, 429);
    assert_eq!(get_with(&s, &slow, &from("198.51.100.2")).await.status, 202);
    assert_eq!(s.state.admission.in_flight("addr:198.51.100.2").1, 1);
    // From an untrusted peer the header is ignored: one address, one budget.
    let (_d2, s2) = server_with(|d| config_set(d, "request_limit_per_user", "1")).await;
    assert_eq!(get_with(&s2, &slow, &from("198.51.100.1")).await.status, 202);
    assert_eq!(get_with(&s2, &slow, &from("198.51.100.2")).await.status, 429);
}

#[tokio::test]
async fn an_expensive_table_has_its_own_concurrency_limit() {
    let (_d, s) = server_with(|d| {
        config_set(d, "request_limit_per_user", "-1");
        let p = d.join("config/tables/flights.toml");
        let t = std::fs::read_to_string(&p).unwrap();
        let t = t.replacen("name = \"flights_raw\"", "name = \"flights_raw\"\nmax_concurrent_queries = 1", 1);
        std::fs::write(&p, t).unwrap();
    })
    .await;
    assert_eq!(get(&s, &format!("{HEAVY}&asyncAfter=always")).await.status, 202);
    let r = get(&s, HEAVY).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["reason"], "SERVER_BUSY");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(r.description().contains("flights_raw"), "{}", r.body);
    // The rollup is another physical table: it keeps answering.
    assert_eq!(get(&s, Q).await.status, 200);
}

#[tokio::test]
async fn job_quotas_per_user() {
    let (_d, s) = server_with(|d| {
        config_set(d, "request_limit_per_user", "-1");
        config_set(d, "max_pending_per_user", "2");
    })
    .await;
    let slow = format!("{HEAVY}&asyncAfter=always");
    let codes: Vec<u16> =
        [get(&s, &slow).await, get(&s, &slow).await, get(&s, &slow).await].iter().map(|r| r.status).collect();
    assert_eq!(codes, [202, 202, 429]);
    let r = get(&s, &slow).await;
    assert_eq!(r.json()["reason"], "JOB_QUOTA_EXCEEDED");
    assert!(r.description().contains("max_pending_per_user"), "{}", r.body);
    // So do stored jobs, finished or not, and stored result bytes.
    for key in ["max_jobs_per_user", "max_result_bytes_per_user"] {
        let (_d2, s2) = server_with(|d| config_set(d, key, "1")).await;
        finished_job(&s2).await;
        let r = get(&s2, &format!("{Q}&asyncAfter=always")).await;
        assert_eq!(r.status, 429);
        assert!(r.description().contains(key), "{}", r.body);
        assert_eq!(get(&s2, Q).await.status, 200, "synchronous queries still run");
    }
}

#[tokio::test]
async fn orphaned_jobs_are_canceled() {
    let dir = scratch_config();
    config_set(dir.path(), "orphan_seconds", "5");
    let cfg = dir.path().join("config");
    let jobs_dir = tempfile::tempdir().unwrap();
    let config = quiver::config::GatewayConfig::load(&cfg).unwrap();
    let catalog = quiver::catalog::load(&config.tables_dir(&cfg), &config.data_root(&cfg)).unwrap();
    let clock = std::sync::Arc::new(quiver::app::ManualClock::at(NOW_MS));
    let state = quiver::app::AppState::with_parts(config, cfg.clone(), catalog, clock.clone(), jobs_dir.path());
    let s = start_state(state).await;
    // Two running jobs; someone keeps asking about the second one.
    let ta = quiver::engine::plan::CancelToken::default();
    let tb = quiver::engine::plan::CancelToken::default();
    let a = s.state.jobs.create("http://x/v1/data/a", "anonymous", "addr:127.0.0.1", "{}", ta.clone()).unwrap();
    let b = s.state.jobs.create("http://x/v1/data/b", "anonymous", "addr:127.0.0.1", "{}", tb.clone()).unwrap();
    clock.advance(3_000);
    assert_eq!(get(&s, &format!("/v1/jobs/{}", b.ticket)).await.json()["status"], "pending");
    clock.advance(3_000);
    assert_eq!(s.state.jobs.cancel_orphans(), 1);
    assert!(ta.is_canceled() && !tb.is_canceled(), "only the orphan's query is stopped");
    let job = get(&s, &format!("/v1/jobs/{}", a.ticket)).await.json();
    assert_eq!(job["status"], "canceled");
    let r = get(&s, &format!("/v1/jobs/{}/results", a.ticket)).await;
    assert_eq!((r.status, r.json()["status"].as_u64()), (410, Some(410)));
    assert_eq!(r.json()["reason"], "JOB_ORPHANED");
    assert_eq!(get(&s, &format!("/v1/jobs/{}", b.ticket)).await.json()["status"], "pending");
}

async fn finished_job(s: &Server) -> String {
    let t = get(s, &format!("{Q}&asyncAfter=always")).await.json()["jobTicket"].as_str().unwrap().to_string();
    assert_eq!(get(s, &format!("/v1/jobs/{t}/results?asyncAfter=never")).await.status, 200);
    t
}

#[tokio::test]
async fn damaged_result_files_are_refused_not_misread() {
    let jobs_dir = tempfile::tempdir().unwrap();
    let s = start_with_jobs(&embedded_config(), jobs_dir.path()).await;
    let file = |t: &str| jobs_dir.path().join(format!("results/{t}.arrow"));
    // One flipped byte in the data.
    let t = finished_job(&s).await;
    let mut bytes = std::fs::read(file(&t)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(file(&t), &bytes).unwrap();
    let r = get(&s, &format!("/v1/jobs/{t}/results")).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (500, Some("JOB_RESULTS_CORRUPT")), "{}", r.body);
    // A truncated file.
    let t = finished_job(&s).await;
    let bytes = std::fs::read(file(&t)).unwrap();
    std::fs::write(file(&t), &bytes[..bytes.len() / 3]).unwrap();
    let r = get(&s, &format!("/v1/jobs/{t}/results?format=csv")).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (500, Some("JOB_RESULTS_CORRUPT")), "{}", r.body);
    // A missing file.
    let t = finished_job(&s).await;
    std::fs::remove_file(file(&t)).unwrap();
    assert_eq!(get(&s, &format!("/v1/jobs/{t}/results")).await.status, 404);
    assert_eq!(get(&s, "/status").await.status, 200);
}

#[tokio::test]
async fn temporary_files_are_removed_at_start() {
    let jobs_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(jobs_dir.path().join("results")).unwrap();
    let stale = jobs_dir.path().join("results/deadbeef.arrow.tmp");
    std::fs::write(&stale, b"half a file").unwrap();
    let _s = start_with_jobs(&embedded_config(), jobs_dir.path()).await;
    assert!(!stale.exists());
}

#[tokio::test]
async fn a_full_disk_fails_the_job_and_shows_in_status() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _u = Unmount(mnt.path());
    let s = start_with_jobs(&embedded_config(), mnt.path()).await;
    assert_eq!(status(&s).await["jobStore"], "ok");
    let t = get(&s, &format!("{BIG}&asyncAfter=always")).await.json()["jobTicket"].as_str().unwrap().to_string();
    let r = get(&s, &format!("/v1/jobs/{t}/results?asyncAfter=never")).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (503, Some("JOB_STORE_UNAVAILABLE")), "{}", r.body);
    let st = status(&s).await;
    assert_eq!(st["jobStore"], "unavailable", "{st}");
    let leftovers: Vec<_> = std::fs::read_dir(mnt.path().join("results")).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");
    let r = get(&s, &format!("{Q}&asyncAfter=always")).await;
    assert_eq!(r.status, 503, "new jobs are refused while the store is unavailable");
    assert_eq!(get(&s, Q).await.status, 200, "synchronous queries still run");
}
