//! The connection layer: accepts TCP connections and serves HTTP/1.1 on them with hyper,
//! under the limits that keep one client from taking sockets from another (DESIGN §6):
//!
//! - a request head must arrive within `server.header_read_timeout_seconds` (hyper starts the
//!   same timer when it waits for the next request, so it also closes idle keep-alive
//!   connections);
//! - a response that makes no progress for `server.write_timeout_seconds` because the client
//!   does not read it closes the connection, releasing everything the response held;
//! - at most `server.max_connections` open connections, `max_connections_per_client` from one
//!   address (the rest get a 503 and are closed at once);
//! - on shutdown, open requests get `server.shutdown_deadline_seconds` to finish, then every
//!   connection is closed.
//!
//! Request targets the API cannot serve (`CONNECT`, absolute-form, `*`) are answered here with
//! the JSON error body, and a panic while handling a request becomes a 500 JSON body.

use super::reply::{self, Ctx};
use crate::app::AppState;
use crate::error::{Error, Reason};
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use warp::http::{Method, Request};
use warp::reply::Response;

/// A socket whose writes fail with `TimedOut` once they have been blocked (the client not
/// reading) for longer than the write timeout.
struct Guarded {
    io: TcpStream,
    write_timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Guarded {
    fn on_write<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.write_timeout;
                let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading the response")))
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.on_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.on_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.on_write(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves on `listener` until `shutdown` resolves, then drains within the shutdown deadline.
pub async fn serve(state: Arc<AppState>, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
    let cfg = state.config.server.clone();
    // Open connections, in all and per client address.
    let open = crate::limits::Ledger::default();
    let (max, per_client) = (cfg.max_connections as u64, cfg.max_connections_per_client as u64);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let (force_close, closed) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let ip = crate::net::canonical(peer.ip()).to_string();
        let Ok(guard) = open.take(&ip, 1, Some(max), Some(per_client)) else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Guarded {
            io: stream,
            write_timeout: Duration::from_secs(cfg.write_timeout_seconds.max(1)),
            stalled: None,
        });
        let st = state.clone();
        let svc = hyper::service::service_fn(move |req| respond(st.clone(), peer, req));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_seconds.max(1)))
            .keep_alive(true)
            .serve_connection(io, svc);
        let conn = graceful.watch(conn);
        let mut closed = closed.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, "connection ended: {e}");
                },
                _ = closed.wait_for(|c| *c) => {}
            }
            drop(guard);
        });
    }
    drop(listener);
    let deadline = Duration::from_secs(state.config.server.shutdown_deadline_seconds);
    if tokio::time::timeout(deadline, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown deadline of {} s passed: closing the remaining connections", deadline.as_secs());
    }
    let _ = force_close.send(true);
}

/// Answers a connection over the limits with a 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let e = Error::new(
        Reason::ServerBusy,
        "Too many open connections (in all or from your address). Close idle connections and retry.",
    );
    let body = serde_json::to_vec_pretty(&e.body("", None)).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// One request: the target checks, then the API, with panics caught.
async fn respond(state: Arc<AppState>, peer: SocketAddr, req: Request<Incoming>) -> Result<Response, Infallible> {
    let (parts, _body) = req.into_parts();
    let method = parts.method.clone();
    let headers = parts.headers;
    // Errors answered here, outside the API's dispatch, still carry its headers.
    let answer = |e: Error| {
        let ctx = Ctx::new(&state, "/", "", &headers, peer.ip());
        reply::finish(
            reply::error(&e, &ctx, None),
            &ctx,
            state.catalog().version,
            &state.config.server.cors_allowed_origins,
            false,
        )
    };
    if let Some(e) = target_error(&parts.method, &parts.uri) {
        return Ok(answer(e));
    }
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let handled = super::handle(state.clone(), method, path, query, headers.clone(), peer.ip());
    let panicked = || answer(Error::internal("The server failed while answering this request; it has been logged."));
    Ok(caught(handled, panicked).await)
}

/// `handled`'s response, or `on_panic()`'s if it panics (the panic hook has logged the
/// message and backtrace by then).
async fn caught<F: Future<Output = Response>>(handled: F, on_panic: impl FnOnce() -> Response) -> Response {
    match std::panic::AssertUnwindSafe(handled).catch_unwind().await {
        Ok(r) => r,
        Err(_) => on_panic(),
    }
}

/// Request targets that name no resource of this API.
fn target_error(method: &Method, uri: &warp::http::Uri) -> Option<Error> {
    if method == Method::CONNECT {
        return Some(Error::new(
            Reason::MethodNotAllowed,
            "Method CONNECT is not allowed: quiver is not a proxy. The API is read-only: use GET.",
        ));
    }
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Some(Error::new(
            Reason::RequestTargetInvalid,
            "The request target is an absolute URL; quiver is not a proxy. Send the path only (GET /v1/tables).",
        ));
    }
    if !uri.path().starts_with('/') {
        return Some(Error::new(
            Reason::RequestTargetInvalid,
            format!("The request target '{}' is not a path. Send a path such as /v1/tables.", uri.path()),
        ));
    }
    None
}

/// Logs a panic once, with its backtrace, through `tracing` (instead of the default stderr
/// hook); the request that panicked gets a 500 JSON body from [`serve`].
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!("panic: {info}\n{backtrace}");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_becomes_the_fallback_response() {
        let fallback = || reply::json(500, &serde_json::json!({"reason": "INTERNAL"}));
        let panics = async {
            if Method::GET == Method::GET {
                panic!("a bug");
            }
            reply::empty(200)
        };
        assert_eq!(caught(panics, fallback).await.status(), 500);
        assert_eq!(caught(async { reply::empty(204) }, fallback).await.status(), 204);
    }

    #[test]
    fn odd_targets() {
        let t = |m: Method, u: &str| target_error(&m, &u.parse().unwrap()).map(|e| e.reason);
        assert_eq!(t(Method::CONNECT, "a:1"), Some(Reason::MethodNotAllowed));
        assert_eq!(t(Method::GET, "http://x/v1/tables"), Some(Reason::RequestTargetInvalid));
        assert_eq!(t(Method::OPTIONS, "*"), Some(Reason::RequestTargetInvalid));
        assert_eq!(t(Method::GET, "/v1/tables?x=1"), None);
    }
}
