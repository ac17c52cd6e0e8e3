//! Response bodies rendered in chunks on the blocking pool, one chunk at a time as the client
//! reads: a client that stops reading stops the rendering (backpressure), and whatever the
//! response holds (its admission permit, its result bytes) is released when the last chunk
//! is taken or the connection goes away.

use std::convert::Infallible;
use warp::reply::Response;

/// Results with at most this many rows are rendered at once, on the calling task (no hop to
/// the blocking pool; the body gets a `Content-Length`).
pub const INLINE_ROWS: usize = 2048;

/// A body whose chunks `chunks` renders on the blocking pool, keeping `hold` alive until the
/// last chunk is taken or the body is dropped.
pub fn streamed<I, H>(chunks: I, hold: H) -> Response
where
    I: Iterator<Item = Vec<u8>> + Send + Sync + 'static,
    H: Send + Sync + 'static,
{
    let stream = futures_util::stream::unfold(Some((chunks, hold)), |state| async move {
        let (mut chunks, hold) = state?;
        let (chunk, chunks) = crate::workers::run(move || (chunks.next(), chunks)).await?;
        let chunk = chunk?;
        Some((Ok::<_, Infallible>(bytes::Bytes::from(chunk)), Some((chunks, hold))))
    });
    warp::reply::Reply::into_response(warp::reply::stream(stream))
}

/// A body rendered whole now (small results).
pub fn whole<I: Iterator<Item = Vec<u8>>>(chunks: I) -> Response {
    let bytes: Vec<u8> = chunks.flatten().collect();
    Response::new(bytes.into())
}
