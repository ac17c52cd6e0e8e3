//! The distributed backend against the local engine, on a real Ballista cluster: a scheduler
//! and two executors, each its own `quiver` process on loopback. Random plans from the
//! engine's reference generator run on both and must answer alike; a gateway in front of the
//! cluster serves URLs, answers 503 within its timeout when the executors die, and answers
//! again when they come back. Every wait is bounded and every process is stopped on drop.
#![cfg(feature = "distributed")]

mod common;
mod plans;

use plans::*;
use quiver::distributed::{Cluster, Settings};
use quiver::engine::plan::*;
use quiver::engine::{self, EngineError};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn quiver(args: &[String], log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start quiver");
    Proc(child)
}

/// A scheduler and its executors, with their logs in a temporary directory.
struct TestCluster {
    port: u16,
    _scheduler: Proc,
    executors: Vec<Proc>,
    logs: tempfile::TempDir,
}

impl TestCluster {
    fn start(executors: usize) -> TestCluster {
        let logs = tempfile::tempdir().unwrap();
        let port = free_port();
        let args = ["scheduler", "--port", &port.to_string(), "--executor-timeout", "4"].map(String::from);
        let scheduler = quiver(&args, &logs.path().join("scheduler.log"));
        let mut c = TestCluster { port, _scheduler: scheduler, executors: vec![], logs };
        for _ in 0..executors {
            c.add_executor();
        }
        c.wait_for_executors(executors);
        c
    }

    fn add_executor(&mut self) {
        let (port, grpc) = (free_port(), free_port());
        let args = [
            "executor",
            "--scheduler",
            &format!("127.0.0.1:{}", self.port),
            "--port",
            &port.to_string(),
            "--grpc-port",
            &grpc.to_string(),
            "--concurrent-tasks",
            "1",
            "--heartbeat",
            "1",
        ]
        .map(String::from);
        let log = self.logs.path().join(format!("executor-{port}.log"));
        self.executors.push(quiver(&args, &log));
    }

    fn settings(&self, timeout: Duration) -> Settings {
        Settings {
            scheduler: format!("df://127.0.0.1:{}", self.port),
            host: "127.0.0.1".into(),
            port: self.port,
            timeout,
            probe_timeout: Duration::from_secs(2),
        }
    }

    /// Waits (at most 60 s) until the scheduler lists exactly `n` executors.
    fn wait_for_executors(&self, n: usize) {
        let probe = Cluster::new(self.settings(Duration::from_secs(5))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let p = probe.probe();
            if p.reachable && p.executors == n {
                return;
            }
            assert!(Instant::now() < deadline, "the scheduler never listed {n} executors: {p:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for f in std::fs::read_dir(self.logs.path()).unwrap() {
            let p = f.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out += &format!("--- {}\n{}\n", p.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        out
    }
}

/// Whether output `name` depends on an approximate distinct count (its value may differ
/// between the two HyperLogLog implementations within their error bound).
fn approximate(plan: &QueryPlan, name: &str) -> bool {
    let Some(o) = plan.outputs.iter().find(|o| o.name == name) else { return false };
    kind_is_approximate(plan, &o.kind)
}

fn kind_is_approximate(plan: &QueryPlan, kind: &OutputKind) -> bool {
    match kind {
        OutputKind::Agg(i) => plan.aggregations[*i].func == AggFunc::ApproxCountDistinct,
        OutputKind::Post(e) => e.refs().iter().any(|r| approximate(plan, r)),
        OutputKind::NestedAvg { of, .. } => kind_is_approximate(plan, &of.kind),
    }
}

/// Having, sort and topN on an approximate value could keep different rows on the two sides;
/// such clauses are dropped (the values themselves are still compared, within the bound).
fn without_approximate_shape(mut plan: QueryPlan) -> QueryPlan {
    let names: Vec<String> = plan.outputs.iter().map(|o| o.name.clone()).collect();
    let approx: Vec<String> = names.into_iter().filter(|n| approximate(&plan, n)).collect();
    plan.shape.having.retain(|h| !approx.contains(&h.metric));
    if plan.shape.sort.iter().any(|k| matches!(&k.column, SortColumn::Metric(m) if approx.contains(m))) {
        plan.shape.sort.clear();
        plan.shape.top_n = None;
    }
    plan
}

/// The documented bound for approximate distinct counts: both sides are HyperLogLog sketches
/// at precision 14 (standard error 0.81 %); two estimates agree within 5 % or 1.
fn within_bound(a: &V, b: &V) -> bool {
    match (a.f(), b.f()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1.0 || (x - y).abs() <= 0.05 * x.abs().max(y.abs()),
        (None, None) => true,
        _ => false,
    }
}

#[test]
fn cluster_answers_equal_the_local_engine_on_random_plans() {
    let cluster = TestCluster::start(2);
    let remote = Cluster::new(cluster.settings(Duration::from_secs(60))).unwrap();
    let tables: u64 = std::env::var("QUIVER_DIST_TABLES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let per_table: u64 = std::env::var("QUIVER_DIST_PLANS").ok().and_then(|v| v.parse().ok()).unwrap_or(26);
    let deadline = Instant::now() + Duration::from_secs(900);
    let (mut checked, mut nonempty, mut nested, mut approx) = (0, 0, 0, 0);
    for seed in 0..tables {
        let mut rng = Rng(seed * 104_729 + 3);
        let dir = tempfile::tempdir().unwrap();
        let n = rng.pick(&[0usize, 50, 400, 1500, 3000]);
        let rows = random_rows(&mut rng, n);
        let files = write_table(&mut rng, dir.path(), &rows);
        for p in 0..per_table {
            assert!(Instant::now() < deadline, "{checked} plans checked before the 900 s bound");
            let plan = without_approximate_shape(random_plan(&mut rng, &files));
            let local = engine::execute(&plan, &CancelToken::default())
                .unwrap_or_else(|e| panic!("seed {seed} plan {p}: local error {e}"));
            let got = remote
                .execute(&plan, &CancelToken::default())
                .unwrap_or_else(|e| panic!("seed {seed} plan {p}: cluster error {e}\n{plan:#?}\n{}", cluster.logs()));
            let ndims = plan.group_by.len();
            let (want, have) = (engine_rows(&local.batch, ndims), engine_rows(&got.batch, ndims));
            let visible: Vec<&OutputMetric> = plan.outputs.iter().filter(|o| !o.hidden).collect();
            let ok = want.len() == have.len()
                && want.iter().zip(&have).all(|(w, h)| {
                    w.0 == h.0
                        && w.1 == h.1
                        && w.2.iter().zip(&h.2).zip(&visible).all(|((a, b), o)| {
                            if approximate(&plan, &o.name) { within_bound(a, b) } else { same(a, b) }
                        })
                });
            let first = want.iter().zip(&have).position(|(w, h)| w != h);
            assert!(
                ok,
                "seed {seed} plan {p}: {} vs {} rows, first difference at {first:?}: {:?} vs {:?}\nplan: {:#?}",
                want.len(),
                have.len(),
                first.map(|i| &want[i]),
                first.map(|i| &have[i]),
                QueryPlan { files: vec![], ..plan.clone() }
            );
            let remote_run = got.stats.remote.as_ref().expect("the cluster's run is labelled remote");
            // Every plan that reads files ran as Ballista jobs.
            assert!(!remote_run.jobs.is_empty() || plan.files.is_empty() || plan.intervals.is_empty());
            checked += 1;
            nonempty += usize::from(!want.is_empty());
            nested += usize::from(plan.outputs.iter().any(|o| matches!(o.kind, OutputKind::NestedAvg { .. })));
            approx += usize::from(plan.aggregations.iter().any(|a| a.func == AggFunc::ApproxCountDistinct));
        }
    }
    eprintln!("{checked} random plans: cluster = local ({nonempty} with rows, {nested} nested, {approx} approximate)");
    assert!(checked >= 300 || std::env::var("QUIVER_DIST_PLANS").is_ok(), "only {checked} plans");
    assert!(nonempty * 2 > checked, "only {nonempty} of {checked} plans produced rows");
    assert!(nested > 0 && approx > 0);
}

#[test]
fn canceling_stops_waiting_and_an_unreachable_scheduler_is_unavailable() {
    let mut rng = Rng(5);
    let dir = tempfile::tempdir().unwrap();
    let rows = random_rows(&mut rng, 200);
    let files = write_table(&mut rng, dir.path(), &rows);
    let plan = random_plan(&mut rng, &files);
    // Nobody listens on this port: a clear 503-class error at once, not a hang.
    let port = free_port();
    let settings = Settings {
        scheduler: format!("df://127.0.0.1:{port}"),
        host: "127.0.0.1".into(),
        port,
        timeout: Duration::from_secs(5),
        probe_timeout: Duration::from_secs(1),
    };
    let cluster = Cluster::new(settings).unwrap();
    let started = Instant::now();
    let r = cluster.execute(&plan, &CancelToken::default());
    assert!(matches!(r, Err(EngineError::Unavailable(_))), "{:?}", r.err());
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert!(!cluster.probe().reachable);
    // A canceled query stops at once.
    let token = CancelToken::default();
    token.cancel();
    let r = cluster.execute(&plan, &token);
    assert!(matches!(r, Err(EngineError::Canceled) | Err(EngineError::Unavailable(_))), "{:?}", r.err());
}

// ---------------------------------------------------------------- a gateway in front

/// A copy of the embedded flights catalog whose raw table runs on the cluster at `port` (the
/// daily rollup is dropped, so every query goes to the cluster).
fn distributed_config(port: u16, timeout_seconds: f64) -> tempfile::TempDir {
    let dir = common::scratch_config();
    let tables = dir.path().join("config/tables/flights.toml");
    let text = std::fs::read_to_string(&tables).unwrap();
    let (head, rest) = text.split_once("# A daily rollup").unwrap();
    let (_, dims) =
        rest.split_once("# ---------------------------------------------------------------- dimensions").unwrap();
    let head = head.replace("grain = \"hour\"\n", "grain = \"hour\"\nengine = \"distributed\"\n");
    std::fs::write(&tables, format!("{head}{dims}")).unwrap();
    let gateway = dir.path().join("config/gateway.toml");
    let mut g = std::fs::read_to_string(&gateway).unwrap();
    g += &format!(
        "\n[distributed]\nscheduler = \"df://127.0.0.1:{port}\"\ntimeout_seconds = {timeout_seconds}\nprobe_seconds = 0.5\n"
    );
    std::fs::write(&gateway, g).unwrap();
    dir
}

/// JSON values equal, numbers within 1e-9 relative.
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_close(a, b)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

const URLS: [&str; 6] = [
    "/v1/data/flights/day/carrier/?metrics=flights,depDelay,avgDepDelay&dateTime=2013-01-01/2013-01-08",
    "/v1/data/flights/month/origin/?metrics=uniqueTails,maxDepDelay,minDepDelay,cancelled&dateTime=2013-01-01/2014-01-01",
    "/v1/data/flights/week/?metrics=dayAvgFlights,flights&dateTime=2013-01-07/2013-03-04",
    "/v1/data/flights/all/dest/?metrics=flights,distance&dateTime=2013-01-01/2014-01-01&filters=origin|id-in[JFK]&having=flights-gt[3000]&sort=flights|desc",
    "/v1/data/flights/hour/origin/?metrics=flights,arrDelay&dateTime=2013-03-10/2013-03-11&timeZone=America/New_York",
    "/v1/data/flights/day/carrier/?metrics=flights&dateTime=2013-06-01/2013-06-08&filters=carrier|id-notin[UA,AA],dest|id-startswith[B]&format=csv",
];

fn body_of(r: &common::Resp) -> serde_json::Value {
    if r.header("content-type").is_some_and(|t| t.starts_with("text/csv")) {
        serde_json::Value::String(r.body.clone())
    } else {
        r.json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_serves_from_the_cluster_and_survives_losing_it() {
    let mut cluster = tokio::task::spawn_blocking(|| TestCluster::start(2)).await.unwrap();
    let dir = distributed_config(cluster.port, 4.0);
    let remote = common::start(&dir.path().join("config")).await;
    // `quiver serve` runs the probe loop; the test server does too.
    tokio::spawn(quiver::app::cluster_loop(remote.state.clone()));
    let local = common::embedded().await;
    for u in URLS {
        let (r, l) = (common::get(&remote, u).await, common::get(&local, u).await);
        assert_eq!(r.status, 200, "{u}: {}\n{}", r.body, cluster.logs());
        assert!(json_close(&body_of(&r), &body_of(&l)), "{u}\ncluster: {}\nlocal: {}", r.body, l.body);
        let timing = r.header("server-timing").unwrap();
        assert!(timing.contains("remote;desc=\"df://127.0.0.1:"), "{timing}");
        assert!(!l.header("server-timing").unwrap().contains("remote"));
    }
    // format=debug shows the DataFusion plan it runs.
    let d = common::get(&remote, &format!("{}&format=debug", URLS[0])).await.json();
    let plans = d["druidQuery"]["distributed"]["logicalPlans"].as_array().unwrap_or_else(|| panic!("{d}"));
    assert!(plans[0].as_str().unwrap().contains("Aggregate"), "{d}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = common::status(&remote).await;
        if st["distributed"]["executors"] == 2 || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(st["distributed"]["executors"], 2, "{st}");
    assert_eq!(st["distributed"]["reachable"], true, "{st}");
    assert_eq!(st["tables"]["flights"]["status"], "ok", "{st}");

    // The executors die, here while a query may be running: the answer is a 503 with a reason
    // within the timeout (4 s), never a hang, and the table is degraded.
    let fresh = [("cache-control", "no-cache")];
    let during = {
        let base = remote.base.clone();
        tokio::spawn(async move {
            reqwest::Client::new().get(format!("{base}{}", URLS[1])).header("cache-control", "no-cache").send().await
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    cluster.executors.clear();
    let first = during.await.unwrap().unwrap().status().as_u16();
    assert!(first == 200 || first == 503, "{first}");
    let started = Instant::now();
    let r = common::get_with(&remote, URLS[2], &fresh).await;
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["reason"], "CLUSTER_UNAVAILABLE", "{}", r.body);
    assert!(took < Duration::from_secs(7), "the 503 took {took:?}");
    let st = common::status(&remote).await;
    assert_eq!(st["tables"]["flights"]["status"], "degraded", "{st}");
    assert_eq!(st["status"], "degraded");

    // Restarted executors serve the next query.
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_for_executors(0);
        cluster.add_executor();
        cluster.add_executor();
        cluster.wait_for_executors(2);
        cluster
    })
    .await
    .unwrap();
    let r = common::get_with(&remote, URLS[2], &fresh).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, cluster.logs());
    assert!(json_close(&r.json(), &common::get(&local, URLS[2]).await.json()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = common::status(&remote).await;
        if st["status"] == "ok" && st["distributed"]["executors"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway stayed degraded: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Jobs the scheduler lists, as (status, detail).
async fn scheduler_jobs(port: u16) -> Vec<(String, String)> {
    let jobs = quiver::distributed::probe::get_json("127.0.0.1", port, "/api/jobs").await.unwrap();
    let text = |j: &serde_json::Value, k: &str| j[k].as_str().unwrap_or("").to_string();
    jobs.as_array().unwrap().iter().map(|j| (text(j, "status"), text(j, "job_status"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_its_ballista_job() {
    use tokio::io::AsyncWriteExt;
    let cluster = tokio::task::spawn_blocking(|| TestCluster::start(1)).await.unwrap();
    let dir = distributed_config(cluster.port, 120.0);
    let remote = common::start(&dir.path().join("config")).await;
    // Every flight by hour, tail number and flight number with its distinct tails: a long
    // job on a one-task executor.
    let heavy =
        "/v1/data/flights/hour/tailnum/flight/?metrics=uniqueTails,flights,depDelay&dateTime=2013-01-01/2014-01-01";
    let addr = remote.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(format!("GET {heavy} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    // Wait until the job runs on the cluster, then go away.
    let port = cluster.port;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = scheduler_jobs(port).await;
        if jobs.iter().any(|(s, _)| s == "Running" || s == "Queued") {
            break;
        }
        assert!(jobs.is_empty(), "the job finished before the client left: {jobs:?}");
        assert!(Instant::now() < deadline, "no job started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(sock);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = scheduler_jobs(port).await;
        if let Some((_, detail)) = jobs.iter().find(|(s, _)| s == "Failed") {
            // Ballista reports a canceled job as "Failed: Cancelled".
            assert!(detail.to_lowercase().contains("cancel"), "{jobs:?}");
            break;
        }
        assert!(
            !jobs.iter().any(|(s, _)| s == "Completed"),
            "the job ran to completion after its client left: {jobs:?}\n{}",
            cluster.logs()
        );
        assert!(Instant::now() < deadline, "the job was never canceled: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let canceled = remote.state.counters.queries_canceled.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(canceled, 1);
}
