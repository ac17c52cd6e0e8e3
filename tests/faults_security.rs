//! Faults and hostile input: corrupt data files, the group cap, an unusable job store, a
//! killed server, path traversal and header injection. Nothing may crash the server or lose
//! another request's data.

mod common;

use common::*;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const RAW: &str = "/v1/data/flights/hour?metrics=flights&dateTime=2013-06-01/2013-06-02";
const ROLLUP: &str = "/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-06-08";

fn gateway(dir: &Path, from: &str, to: &str) {
    let p = dir.join("config/gateway.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.contains(from), "{from}");
    std::fs::write(&p, s.replace(from, to)).unwrap();
}

#[tokio::test]
async fn corrupt_parquet_fails_clearly_and_the_rest_keeps_serving() {
    let dir = scratch_config();
    let s = start(&dir.path().join("config")).await;
    assert_eq!(get(&s, RAW).await.status, 200);
    // Overwrite column data (the footer, already loaded, stays intact).
    let path = dir.path().join("data/flights.parquet");
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(4)).unwrap();
    f.write_all(&vec![0xAB; 3_000_000]).unwrap();
    drop(f);
    let r = get(&s, RAW).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.json()["reason"], "DATA_FILE_UNREADABLE");
    assert!(r.description().contains("flights.parquet"), "{}", r.description());
    // The rollup, the metadata and the health endpoint keep answering.
    assert_eq!(get(&s, ROLLUP).await.status, 200);
    assert_eq!(get(&s, "/v1/tables/flights/day").await.status, 200);
    let st = status(&s).await;
    assert_eq!(st["tables"]["flights"]["status"], "degraded");
    assert!(st["tables"]["flights"]["errors"]["flights_raw"].as_str().unwrap().contains("flights.parquet"));
    assert_eq!(st["status"], "degraded");
}

#[tokio::test]
async fn truncated_parquet_is_a_clear_error() {
    let dir = scratch_config();
    let s = start(&dir.path().join("config")).await;
    let path = dir.path().join("data/flights.parquet");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
    let r = get(&s, "/v1/data/flights/hour?metrics=flights&dateTime=2013-10-01/2013-12-01").await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.description().contains("flights.parquet"));
    assert_eq!(get(&s, ROLLUP).await.status, 200);
}

#[tokio::test]
async fn group_cap_is_507_and_the_server_stays_up() {
    let dir = scratch_config();
    gateway(dir.path(), "max_groups = 5000000", "max_groups = 50");
    let s = start(&dir.path().join("config")).await;
    let r = get(&s, "/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-07-01").await;
    assert_eq!(r.status, 507);
    assert_eq!(r.json()["statusName"], "507");
    assert_eq!(r.description(), "Result set too large. Try reducing interval, dimensions, or sketch metrics.");
    assert_eq!(get(&s, "/v1/data/flights/month?metrics=flights&dateTime=2013-06-01/2013-07-01").await.status, 200);
}

#[tokio::test]
async fn unusable_job_store_fails_async_with_503_while_sync_works() {
    let not_a_dir = tempfile::NamedTempFile::new().unwrap();
    let s = start_with_jobs(&embedded_config(), not_a_dir.path()).await;
    let r = get(&s, &format!("{ROLLUP}&asyncAfter=always")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["reason"], "JOB_STORE_UNAVAILABLE");
    assert_eq!(get(&s, ROLLUP).await.status, 200);
    assert_eq!(status(&s).await["jobStore"], "unavailable");
    assert_eq!(s.state.admission.in_flight("anonymous").0, 0, "the refused job's query released its slot");
}

#[tokio::test]
async fn path_traversal_and_header_injection() {
    let s = embedded().await;
    for (path, status) in [
        ("/v1/data/..%2F..%2Fetc%2Fpasswd/day?metrics=flights&dateTime=2013/2014", 400),
        ("/v1/data/flights/day/..%2F..%2Fetc?metrics=flights&dateTime=2013/2014", 400),
        ("/v1/dimensions/..%2F..%2Fetc%2Fpasswd/values", 404),
        ("/v1/tables/..%2F..%2Fconfig", 404),
        ("/v1/jobs/..%2Fjobs.sqlite/results", 404),
        ("/v1/jobs/..%2F..%2F..%2Fetc%2Fpasswd", 404),
        ("/v1/slices/..%2Fflights_raw", 404),
    ] {
        let r = get(&s, path).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(!r.body.contains("root:"), "{path}");
    }
    let r = get(&s, &format!("{ROLLUP}&format=csv&filename=..%2F..%2Fevil%0D%0ASet-Cookie%3A%20a%3Db")).await;
    assert_eq!(r.status, 200);
    let cd = r.header("content-disposition").unwrap();
    assert!(!cd.contains(['\r', '\n', '/']), "{cd}");
    assert!(r.header("set-cookie").is_none());
    // Oversized URLs are refused before any work.
    let r = get(&s, &format!("{ROLLUP}&filters=carrier%7Cid-in%5B{}%5D", "A".repeat(20_000))).await;
    assert_eq!(r.status, 414);
}

// ---------------------------------------------------------------- kill -9

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &Path, port: u16) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args(["serve", "--port", &port.to_string(), "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn wait_up(base: &str) {
    for _ in 0..100 {
        if reqwest::get(format!("{base}/status")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not start");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn kill_9_loses_no_finished_job() {
    let dir = scratch_config();
    let jobs = dir.path().join("jobs");
    gateway(dir.path(), "dir = \"../var/jobs\"", &format!("dir = \"{}\"", jobs.display()));
    gateway(dir.path(), "request_limit_per_user = 2", "request_limit_per_user = -1");
    gateway(dir.path(), "request_limit_global = 70", "request_limit_global = -1");
    gateway(dir.path(), "max_pending_per_user = 10", "max_pending_per_user = 100");
    let cfg = dir.path().join("config");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut tickets = Vec::new();
    let mut done_before: Vec<String> = Vec::new();
    {
        let _server = spawn(&cfg, port);
        wait_up(&base).await;
        for i in 0..50 {
            // Fast and slow jobs mixed, so some finish and some are cut off.
            let q = if i % 5 == 0 {
                "/v1/data/flights/hour/tailnum/flight?metrics=flights,uniqueTails&dateTime=2013-01-01/2014-01-01&count=1"
            } else {
                "/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-06-08"
            };
            let r = client.get(format!("{base}{q}&asyncAfter=always")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 202);
            let v: serde_json::Value = r.json().await.unwrap();
            tickets.push(v["jobTicket"].as_str().unwrap().to_string());
        }
        // Wait until the fast jobs are done, then kill -9 while the slow ones run.
        for _ in 0..600 {
            let v: serde_json::Value = client
                .get(format!("{base}/v1/jobs?filters=status-eq%5Bsuccess%5D"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            done_before =
                v["jobs"].as_array().unwrap().iter().map(|j| j["jobTicket"].as_str().unwrap().to_string()).collect();
            if done_before.len() >= 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // `_server` drops here: SIGKILL.
    }
    let port2 = free_port();
    let base2 = format!("http://127.0.0.1:{port2}");
    let _server = spawn(&cfg, port2);
    wait_up(&base2).await;
    let (mut ok, mut failed) = (0, 0);
    for t in &tickets {
        let job: serde_json::Value =
            client.get(format!("{base2}/v1/jobs/{t}")).send().await.unwrap().json().await.unwrap();
        match job["status"].as_str().unwrap() {
            "success" => {
                let r = client.get(format!("{base2}/v1/jobs/{t}/results")).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let v: serde_json::Value = r.json().await.unwrap();
                assert!(!v["rows"].as_array().unwrap().is_empty());
                ok += 1;
            }
            "failure" => {
                let r = client.get(format!("{base2}/v1/jobs/{t}/results")).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 503);
                let v: serde_json::Value = r.json().await.unwrap();
                assert_eq!((v["status"].as_u64(), v["reason"].as_str()), (Some(503), Some("JOB_INTERRUPTED")));
                failed += 1;
            }
            other => panic!("job {t} is {other} after a restart"),
        }
    }
    assert_eq!(ok + failed, 50);
    assert!(!done_before.is_empty(), "some jobs finished before the kill");
    for t in &done_before {
        let job: serde_json::Value =
            client.get(format!("{base2}/v1/jobs/{t}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(job["status"], "success", "job {t} finished before the kill and must survive it");
    }
    eprintln!("after kill -9: {ok} results served, {failed} jobs marked failure");
}

#[tokio::test]
async fn sighup_reloads_and_sigterm_closes_everything_within_the_deadline() {
    let dir = scratch_config();
    let jobs = dir.path().join("jobs");
    gateway(dir.path(), "dir = \"../var/jobs\"", &format!("dir = \"{}\"", jobs.display()));
    config_set(dir.path(), "shutdown_deadline_seconds", "1");
    config_set(dir.path(), "header_read_timeout_seconds", "60");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = spawn(&dir.path().join("config"), port);
    wait_up(&base).await;
    let pid = server.0.id() as libc::pid_t;
    // SAFETY: kill with a valid pid of our child and a standard signal.
    // SIGHUP reloads: a table added to the catalog appears without a restart.
    let extra = std::fs::read_to_string(dir.path().join("config/tables/flights.toml"))
        .unwrap()
        .replace("[table.flights", "[table.extra")
        .replace("name = \"flights_raw\"", "name = \"extra_raw\"")
        .replace("name = \"flights_day\"", "name = \"extra_day\"");
    let extra: String =
        extra.split("# ----------------------------------------------------------------").next().unwrap().into();
    std::fs::write(dir.path().join("config/tables/extra.toml"), extra).unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let mut listed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = reqwest::get(format!("{base}/v1/tables/extra")).await.unwrap();
        if t.status().as_u16() == 200 {
            listed = true;
            break;
        }
    }
    assert!(server.0.try_wait().unwrap().is_none(), "SIGHUP did not kill the server");
    assert!(listed, "the table added before SIGHUP is served");
    assert_eq!(reqwest::get(format!("{base}/status")).await.unwrap().status().as_u16(), 200);
    // A client that never finishes its request must not hold the shutdown past the deadline.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /v1/tables HTTP/1.1\r\nHost: x\r\n").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut status = None;
    for _ in 0..300 {
        status = server.0.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.expect("the server exits after SIGTERM within the deadline");
    eprintln!("SIGTERM with a half-open socket: exited in {} ms", started.elapsed().as_millis());
    assert!(status.success(), "{status:?}");
    let mut buf = [0u8; 16];
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(std::io::Read::read(&mut slow, &mut buf), Ok(0) | Err(_)), "the socket was closed");
}
