//! Live data (issue 14): files that appear, change or disappear under a physical table's path
//! are served without a restart, never through a stale footer; a broken reload changes nothing.

mod common;

use arrow::array::{StringArray, TimestampMillisecondArray};
use common::*;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIVE_TOML: &str = r#"
[table.live]
grains = ["hour", "day", "all"]
dimensions = ["carrier"]
metrics = ["flights"]

[[table.live.physical]]
name = "live_raw"
path = "data/live"
time_column = "time_hour"
grain = "hour"
"#;

const TOTAL: &str = "/v1/data/live/all?metrics=flights&dateTime=2013-06-01/2013-06-03";

/// Writes `rows` flights on 2013-06-01 (one a minute, carrier UA) as Parquet, in place.
fn write_rows(path: &Path, rows: usize) {
    let day = day_ms("2013-06-01");
    let times: TimestampMillisecondArray = (0..rows).map(|i| Some(day + (i as i64 % 1440) * 60_000)).collect();
    let carriers = StringArray::from(vec!["UA"; rows]);
    let bytes = parquet_of(vec![("time_hour", Arc::new(times.with_timezone("UTC"))), ("carrier", Arc::new(carriers))]);
    // Truncate and write the same file (same inode): not atomic.
    std::fs::write(path, bytes).unwrap();
}

fn live_config(refresh_seconds: u64) -> tempfile::TempDir {
    let dir = scratch_config();
    let d = dir.path();
    std::fs::create_dir_all(d.join("data/live")).unwrap();
    write_rows(&d.join("data/live/a.parquet"), 100);
    std::fs::write(d.join("config/tables/live.toml"), LIVE_TOML).unwrap();
    config_set(d, "refresh_seconds", &refresh_seconds.to_string());
    config_set(d, "request_limit_per_user", "-1");
    config_set(d, "request_limit_global", "-1");
    // The status token in the file, so that a reload keeps it.
    let gw = d.join("config/gateway.toml");
    let text = std::fs::read_to_string(&gw).unwrap();
    let token = quiver::auth::hash_token(STATUS_TOKEN);
    std::fs::write(&gw, format!("{text}\n[auth]\nstatus_token_sha256 = \"{token}\"\n")).unwrap();
    dir
}

async fn total(s: &Server) -> (u16, i64, String) {
    let r = get(s, TOTAL).await;
    let n = if r.status == 200 { r.json()["rows"][0]["flights"].as_i64().unwrap_or(-1) } else { -1 };
    (r.status, n, r.header("x-quiver-snapshot").unwrap_or_default())
}

/// Polls until the total is `want`, for at most `secs`.
async fn until_total(s: &Server, want: i64, secs: u64) -> Duration {
    let started = Instant::now();
    loop {
        let (status, n, _) = total(s).await;
        assert!(status < 500, "never a 5xx while files change");
        if n == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(secs), "total {n}, not {want}, after {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn added_and_deleted_files_are_seen_within_the_refresh_period() {
    let dir = live_config(1);
    let s = start(&dir.path().join("config")).await;
    tokio::spawn(quiver::app::refresh_loop(s.state.clone()));
    let (code, n, v1) = total(&s).await;
    assert_eq!((code, n, v1.as_str()), (200, 100, "1"));
    write_rows(&dir.path().join("data/live/b.parquet"), 250);
    let took = until_total(&s, 350, 10).await;
    eprintln!("a new file served after {} ms", took.as_millis());
    assert_ne!(total(&s).await.2, v1, "the snapshot version moved");
    std::fs::remove_file(dir.path().join("data/live/a.parquet")).unwrap();
    until_total(&s, 250, 10).await;
    let st = status(&s).await;
    assert!(st["snapshot"]["version"].as_u64().unwrap() >= 3, "{st}");
    assert!(st.get("snapshot").unwrap().get("lastReloadError").is_none(), "{st}");
}

#[tokio::test]
async fn a_file_overwritten_in_place_is_never_read_through_its_old_footer() {
    // No periodic refresh: the query path itself notices.
    let dir = live_config(0);
    let s = start(&dir.path().join("config")).await;
    let a = dir.path().join("data/live/a.parquet");
    assert_eq!(total(&s).await.1, 100);
    for rows in [300, 40, 1000, 7] {
        write_rows(&a, rows);
        let (status, n, _) = total(&s).await;
        assert_eq!((status, n), (200, rows as i64), "the new total at once, never the stale one");
    }
    // Overwrites while queries run: every answer is one of the written totals, never a 5xx.
    let written: Vec<i64> = vec![7, 500, 60, 2000, 90, 1500];
    let base = s.base.clone();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..40 {
                    let r = reqwest::get(format!("{base}{TOTAL}")).await.unwrap();
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap();
                    seen.push((status, body["rows"][0]["flights"].as_i64().unwrap_or(-1)));
                }
                seen
            })
        })
        .collect();
    for rows in &written[1..] {
        tokio::time::sleep(Duration::from_millis(30)).await;
        write_rows(&a, *rows as usize);
    }
    for r in readers {
        for (status, n) in r.await.unwrap() {
            assert_eq!(status, 200, "never a 5xx");
            assert!(written.contains(&n), "{n} is a total that was written");
        }
    }
    assert_eq!(total(&s).await.1, 1500);
}

#[tokio::test]
async fn a_broken_reload_keeps_the_old_snapshot_and_a_fixed_one_applies() {
    let dir = live_config(0);
    let s = start(&dir.path().join("config")).await;
    let tables = dir.path().join("config/tables");
    std::fs::write(tables.join("broken.toml"), "[table.half\ngrains = [").unwrap();
    let problems = s.state.reload().unwrap_err();
    assert!(problems[0].contains("broken.toml"), "{problems:?}");
    assert_eq!(total(&s).await.1, 100, "the old snapshot keeps serving");
    let st = status(&s).await;
    assert_eq!(st["status"], "degraded");
    assert!(st["snapshot"]["lastReloadError"].as_str().unwrap().contains("broken.toml"), "{st}");
    assert_eq!(st["snapshot"]["version"], 1);
    assert_eq!(get(&s, "/status").await.json()["status"], "degraded", "health shows it too");
    // A broken gateway.toml is refused the same way.
    let gw = dir.path().join("config/gateway.toml");
    let good = std::fs::read_to_string(&gw).unwrap();
    std::fs::write(&gw, format!("{good}\nunknown_key = 1\n")).unwrap();
    std::fs::remove_file(tables.join("broken.toml")).unwrap();
    assert!(s.state.reload().unwrap_err()[0].contains("gateway.toml"));
    std::fs::write(&gw, good).unwrap();
    // Fixed, with a new table: it appears, and health recovers.
    let second = LIVE_TOML.replace("table.live", "table.live2").replace("live_raw", "live2_raw");
    std::fs::write(tables.join("live2.toml"), second).unwrap();
    s.state.reload().unwrap();
    assert_eq!(get(&s, "/v1/tables/live2").await.status, 200);
    let st = status(&s).await;
    assert_eq!((st["status"].as_str(), st["snapshot"]["version"].as_u64()), (Some("ok"), Some(2)), "{st}");
}

#[tokio::test]
async fn a_query_running_across_a_swap_finishes_on_its_snapshot() {
    let dir = live_config(0);
    config_set(dir.path(), "scan_threads", "1");
    let big = dir.path().join("data/live/a.parquet");
    std::fs::copy(dir.path().join("data/flights.parquet"), &big).unwrap();
    let s = start(&dir.path().join("config")).await;
    let slow = "/v1/data/live/hour/carrier?metrics=flights&dateTime=2013-01-01/2014-01-01&asyncAfter=always";
    let job = get(&s, slow).await.json();
    let ticket = job["jobTicket"].as_str().unwrap().to_string();
    // A second file arrives and a new snapshot serves while the job runs.
    std::fs::copy(&big, dir.path().join("data/live/b.parquet")).unwrap();
    assert!(s.state.refresh().unwrap(), "a new snapshot");
    let pending = get(&s, &format!("/v1/jobs/{ticket}")).await.json()["status"] == "pending";
    let r = get(&s, &format!("/v1/jobs/{ticket}/results?format=csv")).await;
    let sum: i64 = r.body.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<i64>().unwrap()).sum();
    let (from, to) = (day_ms("2013-01-01"), day_ms("2014-01-01"));
    let in_2013 = flights().iter().filter(|f| f.time_ms >= from && f.time_ms < to).count() as i64;
    assert_eq!(sum, in_2013, "the job counted the snapshot it started on (pending at the swap: {pending})");
    let now = get(&s, "/v1/data/live/all?metrics=flights&dateTime=2013-01-01/2014-01-01").await.json();
    assert_eq!(now["rows"][0]["flights"], 2 * in_2013, "new queries see the new snapshot");
}

#[tokio::test]
async fn availability_is_tracked_by_day_so_the_first_day_is_not_missing() {
    let s = embedded().await;
    // The first departure is at 05:00 UTC on 2013-01-01; the raw table answers (tailnum).
    let r = get(&s, "/v1/data/flights/day/tailnum?metrics=flights&dateTime=2013-01-01/2013-01-02&count=1").await;
    assert!(r.json().get("meta").is_none(), "no missing interval on the first day: {}", r.body);
    let t = get(&s, "/v1/tables/flights/day").await.json();
    assert_eq!(t["availableIntervals"], serde_json::json!(["2013-01-01T00:00:00.000Z/2014-01-02T00:00:00.000Z"]));
    // Outside the data, buckets are still missing.
    let r = get(&s, "/v1/data/flights/day/tailnum?metrics=flights&dateTime=2012-12-31/2013-01-02&count=1").await;
    assert_eq!(
        r.json()["meta"]["missingIntervals"],
        serde_json::json!(["2012-12-31 00:00:00.000/2013-01-01 00:00:00.000"])
    );
}

#[tokio::test]
async fn explicit_availability_and_availability_grain_are_honoured() {
    let dir = live_config(0);
    let toml = dir.path().join("config/tables/live.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}availability = [\"2013-05-01/2013-07-01\"]\n")).unwrap();
    let s = start(&dir.path().join("config")).await;
    let t = get(&s, "/v1/tables/live/day").await.json();
    assert_eq!(t["availableIntervals"], serde_json::json!(["2013-05-01T00:00:00.000Z/2013-07-01T00:00:00.000Z"]));
    drop(s);
    std::fs::write(&toml, format!("{text}availability_grain = \"month\"\n")).unwrap();
    let s = start(&dir.path().join("config")).await;
    let t = get(&s, "/v1/tables/live/day").await.json();
    assert_eq!(t["availableIntervals"], serde_json::json!(["2013-06-01T00:00:00.000Z/2013-07-01T00:00:00.000Z"]));
    drop(s);
    std::fs::write(&toml, format!("{text}availability_grain = \"fortnight\"\n")).unwrap();
    let problems = quiver::app::load_config(&dir.path().join("config")).unwrap_err();
    assert!(problems.iter().any(|p| p.contains("availability_grain")), "{problems:?}");
}
