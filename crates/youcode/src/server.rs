//! The HTTP/1.1 server: accepts connections and serves the API on each within the limits of
//! [`ServerLimits`], so that a slow or silent client never holds a connection.
//!
//! The clocks of a connection follow its phase:
//!
//! | phase | closed when |
//! |---|---|
//! | connected, no byte yet | no whole request head within `header_timeout` |
//! | part of a head received | the rest of it not within `header_timeout` of its first byte |
//! | request being served | never by this module (the body has its own deadline, see [`crate::http`]) |
//! | kept alive after a response | no byte of a new request within `idle_timeout` |
//!
//! hyper's own `header_read_timeout` is not used: its clock starts whenever hyper waits for a
//! head, idle keep-alive time included, so it could not tell an idle connection (allowed
//! `idle_timeout`) from a slow head (allowed `header_timeout`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::ServerLimits;

/// How long requests under way may take to finish once shutdown begins; connections still
/// open then are dropped, so a stuck client cannot hold shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long to wait after a failed accept (out of file descriptors, say) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and lets the
/// requests under way finish (at most [`SHUTDOWN_GRACE`]).
///
/// Handlers can extract the peer's address as `ConnectInfo<SocketAddr>`.
///
/// # Connection cap
/// Past `max_connections` open connections the server stops accepting until one closes: new
/// connections wait in the kernel's listen backlog and are served late rather than refused.
/// Accepting only to close at once would cost the same file descriptor and handshake, and turn
/// a short burst into errors that clients would retry anyway; once the backlog is full the
/// kernel refuses further connections by itself.
///
/// # Errors
/// None today: accept errors are logged and retried, and connection errors end only their
/// connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next() => {}
            (accepted, slot) = accept_within_cap(&listener, &slots) => match accepted {
                Ok((stream, peer)) => {
                    let connection = Connection {
                        router: router.clone(),
                        limits,
                        peer,
                        _slot: slot,
                    };
                    connections.spawn(connection.serve(stream, stopping.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    drop(slot);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections whose requests did not finish in time"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Waits for a free connection slot, then for a connection.
async fn accept_within_cap(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (io::Result<(TcpStream, SocketAddr)>, OwnedSemaphorePermit) {
    let slot = Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the slots are never closed");
    (listener.accept().await, slot)
}

/// One accepted connection and what serving it needs.
struct Connection {
    router: Router,
    limits: ServerLimits,
    peer: SocketAddr,
    /// Held while the connection is open: the cap counts these.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves requests until the client closes, a clock of [`Phase`] runs out, or shutdown
    /// asks it to finish.
    async fn serve(self, stream: TcpStream, mut stopping: watch::Receiver<bool>) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(WatchedStream {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let service = {
            let activity = Arc::clone(&activity);
            let (router, peer) = (self.router, self.peer);
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                let serving = activity.request_started();
                request.extensions_mut().insert(ConnectInfo(peer));
                let response = router.clone().oneshot(request.map(Body::new));
                async move {
                    let response = response.await?;
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        Body::new(ServedBody {
                            body,
                            _serving: serving,
                        })
                    }))
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(true).header_read_timeout(None);
        let mut connection = pin!(builder.serve_connection(io, service));
        let mut finishing = false;
        loop {
            let deadline = activity.deadline(&self.limits);
            let changed = activity.changed.notified();
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%error, peer = %self.peer, "connection ended");
                    }
                    return;
                }
                () = changed => {}
                () = sleep_until(deadline) => {
                    if activity.deadline(&self.limits).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!(peer = %self.peer, "closing a slow or idle connection");
                        return;
                    }
                }
                _ = stopping.changed(), if !finishing => {
                    finishing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is in its life, for its clocks.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for the first byte of a request since `since` (the connection's start, or the
    /// end of the last response when `kept_alive`).
    Waiting { since: Instant, kept_alive: bool },
    /// The first byte of a request head arrived at `since`.
    ReadingHead { since: Instant },
    /// Serving this many requests (one, unless a client pipelines).
    Serving(usize),
}

/// The phase of a connection, moved by its reads and its requests.
struct Activity {
    phase: Mutex<Phase>,
    /// Woken when the deadline may have moved earlier or appeared.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                kept_alive: false,
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the connection is to be closed if its phase does not change first.
    fn deadline(&self, limits: &ServerLimits) -> Option<Instant> {
        match *self.phase() {
            Phase::Waiting {
                since,
                kept_alive: false,
            }
            | Phase::ReadingHead { since } => Some(since + limits.header_timeout),
            Phase::Waiting {
                since,
                kept_alive: true,
            } => Some(since + limits.idle_timeout),
            Phase::Serving(_) => None,
        }
    }

    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Waiting { .. } = *phase {
            *phase = Phase::ReadingHead {
                since: Instant::now(),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> Serving {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Serving(n) => Phase::Serving(n + 1),
            _ => Phase::Serving(1),
        };
        Serving(Arc::clone(self))
    }

    fn request_finished(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Serving(n) if n > 1 => Phase::Serving(n - 1),
            _ => Phase::Waiting {
                since: Instant::now(),
                kept_alive: true,
            },
        };
        drop(phase);
        self.changed.notify_one();
    }
}

/// A request being served: dropped with its response body, once the body is sent (or the
/// request abandoned).
struct Serving(Arc<Activity>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that ends its request's [`Serving`] when hyper drops it.
struct ServedBody {
    body: Body,
    _serving: Serving,
}

impl HttpBody for ServedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, telling [`Activity`] when bytes arrive.
struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        read
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}
