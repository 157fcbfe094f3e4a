//! The accept loop: bounded connections with header-read and idle timeouts.
//!
//! `axum::serve` sets neither a header-read timeout nor a connection cap, so connections that
//! send half a request line and wait pile up until the process runs out of file descriptors
//! (and memory). Here at most `max_connections` are open, and at most
//! `max_connections_per_address` from one client address; a new connection is always taken,
//! and when it would go over either bound the idlest connection (of that address, or of all)
//! is closed to make room — a half-sent request or a silent keep-alive goes before a request
//! in progress, and `/healthz` keeps answering however many slow clients come. A connection
//! that does not deliver its
//! request head within `header_read_timeout` (including an idle keep-alive connection waiting
//! for its next request) is closed by hyper; one with no bytes moving either way for
//! `idle_timeout` is closed here.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::ServerSection;

/// How the server treats connections (from `server.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl From<&ServerSection> for ConnectionLimits {
    fn from(section: &ServerSection) -> Self {
        Self {
            max_connections: section.max_connections,
            max_connections_per_address: section.max_connections_per_address,
            header_read_timeout: Duration::from_millis(section.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(section.idle_timeout_ms),
        }
    }
}

/// A gap between "connection cap reached" log lines, so an attack logs a line per interval
/// rather than a line per connection.
const CAP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// An open connection as the accept loop sees it: whose, and when bytes last moved.
struct Slot {
    peer: IpAddr,
    started: Instant,
    /// Milliseconds after `started` of the last read or write (shared with [`Tracked`]).
    activity: Arc<AtomicU64>,
    /// Closes the connection when notified.
    evict: Arc<Notify>,
}

impl Slot {
    fn last_active(&self) -> Instant {
        self.started + Duration::from_millis(self.activity.load(Ordering::Relaxed))
    }
}

/// The open connections, by id.
#[derive(Default)]
struct Slots {
    next: u64,
    open: HashMap<u64, Slot>,
}

impl Slots {
    /// Makes room for a connection from `peer`: closes the idlest of `peer`'s connections when
    /// it holds its share, else the idlest of all when the server is full. Returns what was
    /// closed, for the log.
    fn make_room(&mut self, peer: IpAddr, limits: &ConnectionLimits) -> Option<&'static str> {
        let per_address = limits
            .max_connections_per_address
            .clamp(1, limits.max_connections.max(1));
        let of_peer = self.open.values().filter(|s| s.peer == peer).count();
        let (scope, victim) = if of_peer >= per_address {
            (
                "address",
                self.open
                    .iter()
                    .filter(|(_, s)| s.peer == peer)
                    .min_by_key(|(_, s)| s.last_active())
                    .map(|(id, _)| *id),
            )
        } else if self.open.len() >= limits.max_connections.max(1) {
            (
                "server",
                self.open
                    .iter()
                    .min_by_key(|(_, s)| s.last_active())
                    .map(|(id, _)| *id),
            )
        } else {
            return None;
        };
        let slot = self.open.remove(&victim?)?;
        slot.evict.notify_one();
        Some(scope)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then asks every connection to
/// finish its current request and returns when all have closed. Dropping the returned future
/// closes every connection at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut cap = CapLog::default();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE/ENFILE and aborted handshakes: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let started = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        let evict = Arc::new(Notify::new());
        let id = {
            let mut slots = slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(scope) = slots.make_room(peer.ip(), &limits) {
                cap.hit(&limits, scope, peer);
            }
            let id = slots.next;
            slots.next += 1;
            slots.open.insert(
                id,
                Slot {
                    peer: peer.ip(),
                    started,
                    activity: Arc::clone(&activity),
                    evict: Arc::clone(&evict),
                },
            );
            id
        };
        let router = router.clone();
        let closing = closing_rx.clone();
        crate::metrics::connection_opened();
        let held = OpenConnection {
            slots: Arc::clone(&slots),
            id,
        };
        connections.spawn(async move {
            // Counted down and its slot freed even when the task is aborted.
            let _open = held;
            let tracked = Tracked {
                inner: stream,
                started,
                activity,
            };
            tokio::select! {
                () = connection(tracked, peer, router, limits, closing) => {}
                () = evict.notified() => {
                    tracing::debug!(peer = %peer, "connection closed to make room");
                }
            }
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// A connection's slot: frees it and the gauge when the connection task ends.
struct OpenConnection {
    slots: Arc<Mutex<Slots>>,
    id: u64,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .open
            .remove(&self.id);
        crate::metrics::connection_closed();
    }
}

/// Logs the first time a bound is hit and then at most once per interval, with a count.
#[derive(Default)]
struct CapLog {
    last: Option<Instant>,
    since_last: u64,
}

impl CapLog {
    fn hit(&mut self, limits: &ConnectionLimits, scope: &str, peer: SocketAddr) {
        crate::metrics::connection_cap_hit();
        self.since_last += 1;
        if self.last.is_none_or(|at| at.elapsed() >= CAP_LOG_INTERVAL) {
            tracing::warn!(
                max_connections = limits.max_connections,
                max_connections_per_address = limits.max_connections_per_address,
                bound = scope,
                peer = %peer,
                times = self.since_last,
                "connection cap reached (server.max_connections / max_connections_per_address); \
                 the idlest connection closed to make room"
            );
            self.last = Some(Instant::now());
            self.since_last = 0;
        }
    }
}

async fn connection(
    stream: Tracked,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.inner.set_nodelay(true);
    let started = stream.started;
    let activity = Arc::clone(&stream.activity);
    let io = TokioIo::new(stream);
    let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut shutting_down = *closing.borrow();
    if shutting_down {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let last = Duration::from_millis(activity.load(Ordering::Relaxed));
        let idle_for = started.elapsed().saturating_sub(last);
        let idle_left = limits.idle_timeout.saturating_sub(idle_for);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Header timeouts and clients that vanish mid-request end up here.
                    tracing::debug!(peer = %peer, error = %e, "connection closed with an error");
                }
                return;
            }
            () = tokio::time::sleep(idle_left) => {
                let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) >= limits.idle_timeout {
                    tracing::info!(
                        peer = %peer,
                        idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX),
                        "idle connection closed"
                    );
                    return;
                }
            }
            changed = closing.changed(), if !shutting_down => {
                if changed.is_err() || *closing.borrow() {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A TCP stream that records when bytes last moved, for the idle timeout.
struct Tracked {
    inner: TcpStream,
    started: Instant,
    /// Milliseconds after `started` of the last read or write.
    activity: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
