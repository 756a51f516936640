//! The accept loop: how many connections, how long each may sit idle or dribble a request head,
//! and how they drain on shutdown.
//!
//! poem's own `Server` sets no header-read timeout (hyper's needs a timer poem does not give it)
//! and its idle timeout is reset by any byte, so a client that trickles a request head one byte
//! every few seconds holds a connection, a task and a file descriptor for as long as it likes.
//! This loop serves the same poem endpoint through hyper-util's HTTP/1 + h2c connection with
//! three limits, watched per connection from outside hyper so they hold for both protocols and
//! for the protocol detection in between:
//!
//! - **header read**: once a byte arrives on a connection with no request in flight, a complete
//!   request head must follow within `server.header_read_timeout`, or the connection is dropped.
//!   That is the slowloris defence; it also covers a half-sent HTTP/2 preface.
//! - **idle**: a connection with no request in flight and no bytes in either direction for
//!   `server.idle_timeout` is closed gracefully (HTTP/1 close, HTTP/2 GOAWAY).
//! - **count**: at most `server.max_connections` are open; beyond that the loop stops accepting
//!   and new clients wait in the kernel's backlog instead of being refused.
//!
//! Time spent handling a request (body upload included) is bounded by `http.request_timeout`
//! in the middleware, not here.

use std::{
    future::Future,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use hyper::{Request, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use poem::{
    Endpoint, Response,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::config::ServerSettings;

/// Serves `endpoint` on `listener` until `shutdown` resolves, then stops accepting, asks every
/// connection to finish its in-flight requests, and waits up to `shutdown_timeout` for them.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: ServerSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let local_addr = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let draining = CancellationToken::new();
    let aborting = CancellationToken::new();
    let mut shutdown = pin!(shutdown);

    loop {
        // Waiting for a free slot before accepting keeps excess clients queued in the kernel's
        // backlog, where they cost this process nothing.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or a connection reset before accept: neither is
                    // fatal, and retrying at once would spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Responses are written whole by hyper; Nagle would only delay the last segment.
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            endpoint: endpoint.clone(),
            local_addr,
            peer,
            limits: limits.clone(),
            draining: draining.clone(),
            aborting: aborting.clone(),
        };
        tokio::spawn(async move {
            connection.run(stream).await;
            drop(slot);
        });
    }

    drop(listener);
    draining.cancel();
    // Every open connection holds a slot, so owning them all again means all have finished.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(limits.shutdown_timeout, slots.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(
            open = limits.max_connections - slots.available_permits(),
            "shutdown timeout reached; closing connections with requests still in flight"
        );
        aborting.cancel();
    }
    Ok(())
}

const H2_MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;

struct Connection<E> {
    endpoint: Arc<E>,
    local_addr: SocketAddr,
    peer: SocketAddr,
    limits: Arc<ServerSettings>,
    draining: CancellationToken,
    aborting: CancellationToken,
}

impl<E: Endpoint + 'static> Connection<E> {
    async fn run(self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let io = Watched {
            inner: stream,
            activity: activity.clone(),
        };
        let service = {
            let activity = activity.clone();
            let endpoint = self.endpoint.clone();
            let local_addr = LocalAddr(self.local_addr.into());
            let remote_addr = RemoteAddr(self.peer.into());
            service_fn(move |request: Request<Incoming>| {
                let in_flight = activity.request_started();
                let endpoint = endpoint.clone();
                let request: poem::Request = (
                    request,
                    local_addr.clone(),
                    remote_addr.clone(),
                    poem::http::uri::Scheme::HTTP,
                )
                    .into();
                async move {
                    let response: Response = endpoint.get_response(request).await;
                    drop(in_flight);
                    Ok::<_, std::convert::Infallible>(hyper::Response::from(response))
                }
            })
        };

        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper allows 16 MiB of HTTP/2 headers by default; HTTP/1 heads are capped near 400 KiB.
        builder
            .http2()
            .max_header_list_size(H2_MAX_HEADER_LIST_SIZE)
            .max_pending_accept_reset_streams(Some(20));
        let mut connection =
            pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
        let mut closing = false;
        loop {
            let deadline = activity.deadline(&self.limits);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(peer = %self.peer, error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = self.draining.cancelled(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = self.aborting.cancelled() => return,
                () = activity.changed.notified() => {}
                () = sleep_until(deadline), if !closing => match activity.expired(&self.limits) {
                    Some(Expired::HeaderRead) => {
                        // A client this slow is not owed a graceful close.
                        tracing::debug!(peer = %self.peer, "closing connection: request head not received within server.header_read_timeout");
                        return;
                    }
                    Some(Expired::Idle) => {
                        tracing::debug!(peer = %self.peer, "closing idle connection (server.idle_timeout)");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    None => {}
                },
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

enum Expired {
    HeaderRead,
    Idle,
}

/// What the watcher needs to know about one connection, written from the socket's reads and
/// writes and from the service. Times are milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Last byte read or written.
    last_io: AtomicU64,
    /// When the first byte of a request head arrived with no request in flight, or `NONE`.
    head_started: AtomicU64,
    changed: Notify,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_io: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + Duration::from_millis(millis)
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        // Bytes read while a request is in flight are its body (or a pipelined head hyper has
        // buffered); only bytes on an idle connection start the header-read clock.
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When the connection next needs looking at; `None` while requests are in flight.
    fn deadline(&self, limits: &ServerSettings) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle = self.at(self.last_io.load(Ordering::Relaxed)) + limits.idle_timeout;
        match self.head_started.load(Ordering::Acquire) {
            NONE => Some(idle),
            started => Some((self.at(started) + limits.header_read_timeout).min(idle)),
        }
    }

    fn expired(&self, limits: &ServerSettings) -> Option<Expired> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = Instant::now();
        let started = self.head_started.load(Ordering::Acquire);
        if started != NONE && now >= self.at(started) + limits.header_read_timeout {
            return Some(Expired::HeaderRead);
        }
        let last_io = self.at(self.last_io.load(Ordering::Relaxed));
        (now >= last_io + limits.idle_timeout).then_some(Expired::Idle)
    }
}

/// Held while the service handles a request; dropping it makes the connection idle again.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_io.store(self.0.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// The socket, reporting its reads and writes to [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.wrote();
        }
        polled
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
