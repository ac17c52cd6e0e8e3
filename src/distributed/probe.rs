//! The scheduler's REST API (its executors, its jobs): one HTTP/1.0 GET on a plain
//! socket (the scheduler serves REST and gRPC on the same port), answer read to at most
//! 1 MiB.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_ANSWER: u64 = 1 << 20;

/// How many executors the scheduler at `host:port` has registered.
pub async fn executors(host: &str, port: u16) -> Result<usize, String> {
    match get_json(host, port, "/api/executors").await? {
        serde_json::Value::Array(list) => Ok(list.len()),
        _ => Err("GET /api/executors is not a JSON list".into()),
    }
}

/// `GET path` on the scheduler's REST API, as JSON.
pub async fn get_json(host: &str, port: u16, path: &str) -> Result<serde_json::Value, String> {
    let mut s = TcpStream::connect((host, port)).await.map_err(|e| format!("cannot connect: {e}"))?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| format!("cannot send: {e}"))?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut answer).await.map_err(|e| format!("cannot read: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("an answer without headers")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("GET {path} answered {status}"));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {path} is not JSON: {e}"))
}
