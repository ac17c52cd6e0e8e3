//! Test harness: the real server on 127.0.0.1:0 over real Parquet, and a plain HTTP client.
#![allow(dead_code)]

pub mod tenants;

use quiver::app::{AppState, FixedClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Server {
    pub base: String,
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The job directory, when the server owns a temporary one.
    _jobs: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// The repository's `config/` (the embedded flights data).
pub fn embedded_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// "Now" for tests: 2013-06-05 13:45:10 UTC (a Wednesday inside the flights data).
pub const NOW_MS: i64 = 1_370_439_910_000;

/// The status token every test server accepts (unless its config sets another).
pub const STATUS_TOKEN: &str = "test-status-token";

/// A GET with the status token (the detailed `/status`, `/metrics`).
pub async fn get_as_operator(server: &Server, path: &str) -> Resp {
    get_with(server, path, &[("authorization", &format!("Bearer {STATUS_TOKEN}"))]).await
}

/// The detailed `/status`, as an operator sees it.
pub async fn status(server: &Server) -> serde_json::Value {
    get_as_operator(server, "/status").await.json()
}

/// Starts a server over `config_dir` with a fixed clock and a private job directory.
pub async fn start(config_dir: &Path) -> Server {
    let jobs = tempfile::tempdir().expect("tempdir");
    let mut s = start_with_jobs(config_dir, jobs.path()).await;
    s._jobs = Some(jobs);
    s
}

/// Starts a server over `config_dir` whose jobs live in `jobs_dir` (restart tests).
pub async fn start_with_jobs(config_dir: &Path, jobs_dir: &Path) -> Server {
    let mut config = quiver::config::GatewayConfig::load(config_dir).unwrap_or_else(|e| panic!("{e}"));
    if config.auth.status_token_sha256.is_empty() {
        config.auth.status_token_sha256 = quiver::auth::hash_token(STATUS_TOKEN);
    }
    let catalog = quiver::catalog::load(&config.tables_dir(config_dir), &config.data_root(config_dir))
        .unwrap_or_else(|p| panic!("config problems: {p:#?}"));
    let state = AppState::with_parts(config, config_dir.to_path_buf(), catalog, Arc::new(FixedClock(NOW_MS)), jobs_dir);
    start_state(state).await
}

pub async fn start_state(state: AppState) -> Server {
    let state = Arc::new(state);
    let (listener, addr) = quiver::http::bind("127.0.0.1", 0).await.expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(quiver::http::serve(state.clone(), listener, async move {
        let _ = rx.await;
    }));
    Server { base: format!("http://{addr}"), state, shutdown: Some(tx), _jobs: None }
}

/// The shared embedded-data server for a test binary.
pub async fn embedded() -> Server {
    start(&embedded_config()).await
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or("").to_string())
    }

    /// The `description` of an error body.
    pub fn description(&self) -> String {
        self.json()["description"].as_str().unwrap_or_default().to_string()
    }
}

pub async fn get(server: &Server, path: &str) -> Resp {
    get_with(server, path, &[]).await
}

pub async fn get_with(server: &Server, path: &str, headers: &[(&str, &str)]) -> Resp {
    let client = reqwest::Client::new();
    let mut req = client.get(format!("{}{}", server.base, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.expect("body");
    Resp { status, headers, body }
}

pub async fn request(server: &Server, method: reqwest::Method, path: &str) -> Resp {
    let r = reqwest::Client::new().request(method, format!("{}{}", server.base, path)).send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.expect("body");
    Resp { status, headers, body }
}

/// Copies the embedded config and data into a temp dir and lets the caller edit files.
pub fn scratch_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.path().join("config/tables")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(root.join("config/gateway.toml"), dir.path().join("config/gateway.toml")).unwrap();
    for f in std::fs::read_dir(root.join("config/tables")).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, dir.path().join("config/tables").join(p.file_name().unwrap())).unwrap();
    }
    for f in std::fs::read_dir(root.join("data")).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.path().join("data").join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// One flight, read independently of the engine (plain arrow reader).
#[derive(Debug, Clone)]
pub struct Flight {
    pub time_ms: i64,
    pub carrier: String,
    pub origin: String,
    pub dest: String,
    pub tailnum: Option<String>,
    pub flight: i32,
    pub dep_delay: Option<i64>,
    pub arr_delay: Option<i64>,
    pub distance: i64,
}

pub fn flights() -> Vec<Flight> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Int64Type};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flights.parquet");
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
    let mut out = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let i64col = |n: &str| arrow::compute::cast(b.column_by_name(n).unwrap(), &DataType::Int64).unwrap();
        let strcol = |n: &str| arrow::compute::cast(b.column_by_name(n).unwrap(), &DataType::Utf8).unwrap();
        let (t, dep, arr, dist, fl) =
            (i64col("time_hour"), i64col("dep_delay"), i64col("arr_delay"), i64col("distance"), i64col("flight"));
        let (car, ori, dst, tail) = (strcol("carrier"), strcol("origin"), strcol("dest"), strcol("tailnum"));
        let (t, dep, arr, dist, fl) = (
            t.as_primitive::<Int64Type>(),
            dep.as_primitive::<Int64Type>(),
            arr.as_primitive::<Int64Type>(),
            dist.as_primitive::<Int64Type>(),
            fl.as_primitive::<Int64Type>(),
        );
        let (car, ori, dst, tail) =
            (car.as_string::<i32>(), ori.as_string::<i32>(), dst.as_string::<i32>(), tail.as_string::<i32>());
        for i in 0..b.num_rows() {
            out.push(Flight {
                time_ms: t.value(i),
                carrier: car.value(i).to_string(),
                origin: ori.value(i).to_string(),
                dest: dst.value(i).to_string(),
                tailnum: (!tail.is_null(i)).then(|| tail.value(i).to_string()),
                flight: fl.value(i) as i32,
                dep_delay: (!dep.is_null(i)).then(|| dep.value(i)),
                arr_delay: (!arr.is_null(i)).then(|| arr.value(i)),
                distance: dist.value(i),
            });
        }
    }
    out
}

/// UTC ms of `yyyy-mm-dd`.
pub fn day_ms(s: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

/// Sets `key = value` in a scratch directory's `config/gateway.toml` (the line must exist).
pub fn config_set(dir: &Path, key: &str, value: &str) {
    let p = dir.join("config/gateway.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    let prefix = format!("{key} = ");
    assert!(s.lines().any(|l| l.starts_with(&prefix)), "no `{key}` line in gateway.toml");
    let out: Vec<String> =
        s.lines().map(|l| if l.starts_with(&prefix) { format!("{prefix}{value}") } else { l.to_string() }).collect();
    std::fs::write(&p, out.join("\n") + "\n").unwrap();
}

/// Resident memory of this process (the in-process server's), in bytes.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("0");
    kb.parse::<u64>().unwrap_or(0) * 1024
}

/// A Parquet file (default writer settings) of the non-null `columns`, as bytes.
pub fn parquet_of(columns: Vec<(&str, arrow::array::ArrayRef)>) -> Vec<u8> {
    let columns = columns.into_iter().map(|(n, a)| (n, a, false));
    let batch = arrow::array::RecordBatch::try_from_iter_with_nullable(columns).unwrap();
    let mut bytes = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    bytes
}
