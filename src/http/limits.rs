//! Overload protection: what keeps redial answering, with bounded memory, when more arrives than
//! it can serve.
//!
//! * Connections: at most `--max-connections` are served at once; further ones wait in the
//!   kernel's accept queue until one closes ([`CappedListener`]).
//! * Requests: each has `--request-timeout` to finish (a lease also gets its long-poll wait);
//!   past that it is answered 503. Its write may still commit, which is safe to retry: an
//!   identical LCM request is answered with the same callback.
//! * The writer's queue is bounded; a request that finds it full is answered 503 at once.
//! * Long-polls: at most `--max-long-polls` dialers wait at once; more get 503.
//!
//! Every 503 carries `Retry-After` and an envelope.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::refusal;
use crate::lcm::LcmError;
use crate::queue::MAX_WAIT_MS;
use crate::store::StoreError;

/// Seconds a client is told to wait before trying again after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Connections the kernel holds for redial before it accepts them: those past
/// `--max-connections`, and those that arrive faster than the accept loop takes them. The
/// kernel caps it at `net.core.somaxconn` (4096 by default since Linux 5.4).
pub const ACCEPT_BACKLOG: u32 = 4096;

/// Listens on `addr` with an accept queue of [`ACCEPT_BACKLOG`]. The queue tokio and the
/// standard library ask for holds 128: when more clients than that connect at once (desktops
/// reconnecting after a restart), the kernel drops the handshakes it has no room for, and each
/// of those clients waits a second to try again.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// A TCP listener that serves at most a fixed number of connections at once.
pub struct CappedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl CappedListener {
    pub fn new(inner: TcpListener, max_connections: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let (stream, address) = Listener::accept(&mut self.inner).await;
        // Replies are written whole; waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);
        (
            CappedStream {
                stream,
                _permit: permit,
            },
            address,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its place under the cap until it is dropped.
pub struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Answers a request that runs past its time with 503, and puts `Retry-After` on every 503.
/// A lease may wait up to its `wait_ms` on top of `timeout`.
pub async fn within_deadline(
    timeout: Duration,
    path: &str,
    answer: impl Future<Output = Response>,
) -> Response {
    let budget = if path == "/v1/queue/lease" {
        timeout + Duration::from_millis(MAX_WAIT_MS as u64)
    } else {
        timeout
    };
    let mut response = match tokio::time::timeout(budget, answer).await {
        Ok(response) => response,
        Err(_) => {
            let cause = StoreError::Busy(format!(
                "the request did not finish within {} ms; it may still be stored, and an \
                 identical request is safe to send again",
                budget.as_millis()
            ));
            tracing::warn!(path, "request timed out");
            refusal(path, LcmError::Store(cause))
        }
    };
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `future` is ready on its first poll.
    async fn ready_now<F: std::future::Future>(future: F) -> bool {
        tokio::select! {
            biased;
            _ = future => true,
            () = std::future::ready(()) => false,
        }
    }

    #[tokio::test]
    async fn a_connection_past_the_cap_waits_until_one_closes() {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = inner.local_addr().unwrap();
        let mut listener = CappedListener::new(inner, 1);
        let _first_client = TcpStream::connect(address).await.unwrap();
        let (first, _) = listener.accept().await;
        let _second_client = TcpStream::connect(address).await.unwrap();
        assert!(
            !ready_now(listener.accept()).await,
            "the second connection is not served while the first is open"
        );
        drop(first);
        let (second, _) = listener.accept().await;
        assert!(second.stream.nodelay().unwrap());
    }
}
