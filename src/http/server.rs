//! Connections: accepted at once and served by hyper, each within the [`Limits`] that keep
//! one client — slow, stuck or hostile — from taking the service off the air for the others.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::edge::RETRY_AFTER_SECS;
use crate::lcm::ErrorObject;

/// Connections the kernel holds for redial before it accepts them, when they arrive faster
/// than the accept loop takes them. The kernel caps it at `net.core.somaxconn` (4096 by
/// default since Linux 5.4); the usual 128 dropped handshakes when hundreds of desktops
/// reconnected at once, and each of those waited a second to try again.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// Refusals being written at once; past that, a connection that cannot be served is closed
/// without a word.
const REFUSALS_AT_ONCE: usize = 256;

/// How long a refusal may take to write and to see the client close.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Listens on `addr` with an accept queue of [`ACCEPT_BACKLOG`].
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

/// How many connections are served, and how long a request's head may take:
///
/// * At most `max_connections` are served at once. A connection that comes at the cap makes
///   room by closing the one that has waited longest with no request in hand (an idle
///   keep-alive, or one that never finished sending a request); if every one is busy with a
///   request, the newcomer is answered 503 at once and closed. Nothing waits in the kernel's
///   backlog for a place.
/// * At most `max_per_peer` come from one address; past it, 503 at once.
/// * A request's line and headers must arrive within `header_timeout`, counted from the
///   connection's start or the end of the previous response (hyper's header-read timeout).
///   That is also how long an idle keep-alive connection is kept.
/// * The body's own deadline, `--body-timeout`, is the edge's (`http::edge`).
///
/// A connection is busy from the moment hyper hands its request to the router until the last
/// byte of the response body is handed back to hyper; only one that is not busy is ever
/// closed to make room, so no answer to a request is cut off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_peer: usize,
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets every
/// connection finish the request it has in hand, and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Connections::new(limits));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let http = Arc::new(http);
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let tasks = TaskTracker::new();
    let closing = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: the connections being served free some.
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        match Connections::admit(&connections, peer.ip()) {
            Ok(slot) => {
                tasks.spawn(serve_connection(
                    stream,
                    slot,
                    router.clone(),
                    Arc::clone(&http),
                    closing.clone(),
                ));
            }
            Err(full) => {
                tracing::debug!(%peer, reason = %full, "connection refused");
                if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                    tasks.spawn(async move {
                        refuse(stream, &full).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    drop(listener);
    closing.cancel();
    tasks.close();
    tasks.wait().await;
}

async fn serve_connection(
    stream: TcpStream,
    slot: Slot,
    router: Router,
    http: Arc<http1::Builder>,
    closing: CancellationToken,
) {
    // Replies are written whole; waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    let state = Arc::clone(&slot.state);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = Busy::begin(&state);
        let answer = router.clone().oneshot(request.map(Body::new));
        async move {
            let response = answer.await.unwrap_or_else(|never| match never {});
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
        }
    });
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut finishing = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = slot.state.evict.notified(), if !finishing => {
                // Nothing runs on the connection while this task is here: no request can
                // have begun since the registry saw it idle unless one is counted now.
                if slot.state.requests.load(Ordering::SeqCst) == 0 {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                finishing = true;
            }
            () = closing.cancelled(), if !finishing => {
                connection.as_mut().graceful_shutdown();
                finishing = true;
            }
        }
    }
}

/// Answers a connection that cannot be served with 503 and closes it. The answer waits for
/// the request's head, as HTTP clients expect an answer to follow their request; then the
/// write side is shut and what the client still sends is read until it closes: closing a
/// socket with unread data makes the kernel reset it, and the client may lose the answer.
async fn refuse(mut stream: TcpStream, full: &Full) {
    let reply = full.reply();
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            match stream.read(&mut chunk).await? {
                0 => return Ok(()),
                n => head.extend_from_slice(&chunk[..n]),
            }
        }
        stream.write_all(&reply).await?;
        stream.shutdown().await?;
        while stream.read(&mut chunk).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Why a connection cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Full {
    /// Every connection is busy with a request.
    Busy { max: usize },
    /// Its address has as many connections as one may.
    Peer { peer: IpAddr, max: usize },
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Busy { max } => write!(
                f,
                "all {max} connections served at once (--max-connections) are busy with \
                 requests; try again shortly"
            ),
            Full::Peer { peer, max } => write!(
                f,
                "{peer} already has {max} connections open, as many as \
                 --max-connections-per-peer allows; reuse one (keep-alive) or close one"
            ),
        }
    }
}

impl Full {
    /// The whole HTTP/1.1 reply, in the REST error form (the route is not known yet).
    fn reply(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "success": false,
            "error": ErrorObject::failed(self.to_string()),
        })
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// The connections being served.
struct Connections {
    limits: Limits,
    epoch: Instant,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    slots: HashMap<u64, Arc<SlotState>>,
    per_peer: HashMap<IpAddr, usize>,
    /// Slots told to close that have not closed yet: they no longer count against the cap.
    evicting: usize,
    next_id: u64,
}

/// One connection, as the registry and its task share it.
struct SlotState {
    id: u64,
    peer: IpAddr,
    /// Requests handed to the router whose response has not been written whole.
    requests: AtomicUsize,
    /// The registry's epoch, which `idle_since` counts from.
    epoch: Instant,
    /// Milliseconds after `epoch` when it last finished a request, or opened.
    idle_since: AtomicU64,
    evicting: AtomicBool,
    evict: Notify,
}

/// A connection's place; dropping it gives the place back.
struct Slot {
    state: Arc<SlotState>,
    connections: Arc<Connections>,
}

impl Connections {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
        }
    }

    /// A place for a connection from `peer`, made by closing the longest idle one at the cap.
    fn admit(this: &Arc<Self>, peer: IpAddr) -> Result<Slot, Full> {
        let limits = this.limits;
        let mut open = this.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.per_peer.get(&peer).copied().unwrap_or(0) >= limits.max_per_peer {
            return Err(Full::Peer {
                peer,
                max: limits.max_per_peer,
            });
        }
        if open.slots.len() - open.evicting >= limits.max_connections {
            let idlest = open
                .slots
                .values()
                .filter(|s| {
                    s.requests.load(Ordering::SeqCst) == 0 && !s.evicting.load(Ordering::SeqCst)
                })
                .min_by_key(|s| s.idle_since.load(Ordering::SeqCst))
                .cloned();
            let Some(idlest) = idlest else {
                return Err(Full::Busy {
                    max: limits.max_connections,
                });
            };
            idlest.evicting.store(true, Ordering::SeqCst);
            open.evicting += 1;
            idlest.evict.notify_one();
        }
        let id = open.next_id;
        open.next_id += 1;
        let state = Arc::new(SlotState {
            id,
            peer,
            requests: AtomicUsize::new(0),
            epoch: this.epoch,
            idle_since: AtomicU64::new(this.epoch.elapsed().as_millis() as u64),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        open.slots.insert(id, Arc::clone(&state));
        *open.per_peer.entry(peer).or_default() += 1;
        crate::telemetry::connections(1.0);
        Ok(Slot {
            state,
            connections: Arc::clone(this),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.slots.remove(&self.state.id);
        crate::telemetry::connections(-1.0);
        if self.state.evicting.load(Ordering::SeqCst) {
            open.evicting -= 1;
        }
        if let Some(count) = open.per_peer.get_mut(&self.state.peer) {
            *count -= 1;
            if *count == 0 {
                open.per_peer.remove(&self.state.peer);
            }
        }
    }
}

/// A request in hand, from the router's call to the end of its response body.
struct Busy(Arc<SlotState>);

impl Busy {
    fn begin(state: &Arc<SlotState>) -> Self {
        state.requests.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(state))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let state = &self.0;
        state
            .idle_since
            .store(state.epoch.elapsed().as_millis() as u64, Ordering::SeqCst);
        state.requests.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that holds its connection busy until hyper has taken all of it.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
