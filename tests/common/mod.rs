//! Test harness: the real server on 127.0.0.1:0 over real Parquet, and a plain HTTP client.
#![allow(dead_code)]

use quiver::app::{AppState, FixedClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Server {
    pub base: String,
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
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

/// Starts a server over `config_dir` with a fixed clock.
pub async fn start(config_dir: &Path) -> Server {
    let mut state = AppState::load(config_dir.to_path_buf()).unwrap_or_else(|p| panic!("config problems: {p:#?}"));
    state.clock = Arc::new(FixedClock(NOW_MS));
    start_state(state).await
}

pub async fn start_state(state: AppState) -> Server {
    let state = Arc::new(state);
    let (listener, addr) = quiver::http::bind("127.0.0.1", 0).await.expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(quiver::http::serve(state.clone(), listener, async move {
        let _ = rx.await;
    }));
    Server { base: format!("http://{addr}"), state, shutdown: Some(tx) }
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
