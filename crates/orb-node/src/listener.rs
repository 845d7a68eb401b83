//! Connections: the accept path shared by the plain and the TLS listener,
//! and the limits that keep slow or greedy clients from holding the node's
//! file descriptors (issue 18, item 2).
//!
//! `axum-server` runs the accept loop (it backs off on `EMFILE`, spawns a
//! task per connection, drains on shutdown); hyper enforces the request-head
//! size (`max_buf_size`, `max_header_list_size`) and, as a backstop, its own
//! header-read timeout. What no crate offers is written here:
//!
//! - [`Guard`], an `axum_server::accept::Accept` run first for every
//!   connection: the node-wide cap and the per-address cap for connections
//!   that have not (yet) shown a valid token, with a `503 overloaded` written
//!   to plain-HTTP clients that are refused;
//! - [`Tracked`], the socket seen by hyper (under TLS when there is TLS): it
//!   records when bytes move and closes the connection when the client keeps
//!   it waiting — no complete first request within the header-read timeout
//!   of the accept (the TLS handshake included), no next request within the
//!   idle timeout, a head started but not finished within the header-read
//!   timeout, a response the client stops reading for the idle timeout;
//! - [`Service`] around the app: counts requests in progress (from the call
//!   until the response body is dropped: the idle clock stops meanwhile, so a
//!   long call or a quiet event stream is never cut) and bounds the pauses of
//!   a request body ([`Inbound`]).
//!
//! Metrics: `orb_connections_open`, `orb_connections_accepted_total`,
//! `orb_connections_refused_total{reason}`, `orb_connections_timed_out_total{phase}`.

use crate::NodeConfig;
use crate::metrics as names;
use axum::http;
use axum_server::accept::Accept;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// hyper refuses a read buffer under 8 KiB (`max_buf_size` panics).
const MIN_HEAD_BYTES: usize = 8 << 10;
/// File descriptors kept for everything but client connections (store,
/// compiled artifacts, outbound HTTP, NATS…).
const FD_RESERVE: u64 = 1024;
/// "Not yet" in the per-connection clocks.
const UNSET: u64 = u64::MAX;

/// The connection limits of `orb.toml`, checked.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
    pub(crate) max_connections: usize,
    /// 0: no per-address limit.
    pub(crate) per_address: usize,
    pub(crate) max_head_bytes: usize,
}

impl Limits {
    /// Every mistake is an error here, before the node listens.
    pub(crate) fn from_config(c: &NodeConfig) -> anyhow::Result<Self> {
        if c.header_read_timeout_ms == 0 {
            anyhow::bail!(
                "header_read_timeout_ms must be at least 1 (milliseconds; the default is 10000)"
            );
        }
        if c.idle_timeout_ms == 0 {
            anyhow::bail!(
                "idle_timeout_ms must be at least 1 (milliseconds; the default is 60000)"
            );
        }
        if c.max_connections == 0 {
            anyhow::bail!("max_connections must be at least 1 (the default is 10000)");
        }
        if c.max_request_head_bytes < MIN_HEAD_BYTES as u64
            || c.max_request_head_bytes > u32::MAX as u64
        {
            anyhow::bail!(
                "max_request_head_bytes must be between {MIN_HEAD_BYTES} and {} (the default is 65536)",
                u32::MAX
            );
        }
        Ok(Self {
            header_read: Duration::from_millis(c.header_read_timeout_ms),
            idle: Duration::from_millis(c.idle_timeout_ms),
            max_connections: c.max_connections,
            per_address: c.max_connections_per_address,
            max_head_bytes: c.max_request_head_bytes as usize,
        })
    }
}

/// The node's connections: limits and who holds what.
#[derive(Clone)]
pub(crate) struct Connections(Arc<Shared>);

struct Shared {
    limits: Limits,
    /// Open connections, and the ones per address that count against
    /// `per_address` (not yet authenticated).
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    open: usize,
    anonymous: HashMap<AddrKey, usize>,
}

/// IPv4 address, or the /64 of an IPv6 one (one host usually has a whole /64).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum AddrKey {
    V4(u32),
    V6(u64),
}

impl AddrKey {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

impl Connections {
    pub(crate) fn new(config: &NodeConfig) -> anyhow::Result<Self> {
        let mut limits = Limits::from_config(config)?;
        limits.max_connections = fit_fd_limit(limits.max_connections);
        metrics::gauge!(names::CONNECTIONS_OPEN).set(0.0);
        metrics::counter!(names::CONNECTIONS_ACCEPTED).absolute(0);
        for reason in ["max_connections", "per_address"] {
            metrics::counter!(names::CONNECTIONS_REFUSED, "reason" => reason).absolute(0);
        }
        for phase in ["header", "idle", "write", "body"] {
            metrics::counter!(names::CONNECTIONS_TIMED_OUT, "phase" => phase).absolute(0);
        }
        Ok(Self(Arc::new(Shared {
            limits,
            table: Mutex::default(),
        })))
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// The acceptor to run first on every TCP connection; `plain` when no
    /// TLS follows (a refused client is then told why in HTTP).
    pub(crate) fn guard(&self, plain: bool) -> Guard {
        Guard {
            shared: self.0.clone(),
            plain,
        }
    }

    /// Takes a place for a connection from `peer`, or says why not.
    fn admit(&self, peer: IpAddr) -> Result<Permit, &'static str> {
        let limits = &self.0.limits;
        let key = AddrKey::of(peer);
        let mut t = self.0.table.lock().expect("connection table");
        if t.open >= limits.max_connections {
            return Err("max_connections");
        }
        if limits.per_address > 0 {
            let n = t.anonymous.entry(key).or_default();
            if *n >= limits.per_address {
                return Err("per_address");
            }
            *n += 1;
        }
        t.open += 1;
        drop(t);
        metrics::gauge!(names::CONNECTIONS_OPEN).increment(1.0);
        metrics::counter!(names::CONNECTIONS_ACCEPTED).increment(1);
        Ok(Permit {
            shared: self.0.clone(),
            key,
            anonymous: AtomicBool::new(limits.per_address > 0),
        })
    }
}

/// Raises the soft `RLIMIT_NOFILE` towards what `max_connections` needs (up
/// to the hard limit), and lowers the cap, with a warning, when the limit
/// cannot hold it: past it `accept` fails with `EMFILE` for everyone.
fn fit_fd_limit(max_connections: usize) -> usize {
    #[cfg(unix)]
    {
        let want = max_connections as u64 + FD_RESERVE;
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read or write the struct passed.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return max_connections;
        }
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want.min(lim.rlim_max),
                rlim_max: lim.rlim_max,
            };
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim.rlim_cur = raised.rlim_cur;
            }
        }
        if lim.rlim_cur < want {
            let fit = lim.rlim_cur.saturating_sub(FD_RESERVE).max(64) as usize;
            tracing::warn!(
                max_connections,
                open_files_limit = lim.rlim_cur,
                using = fit,
                "max_connections does not fit the open-files limit (ulimit -n) with {FD_RESERVE} \
                 kept for the node itself; raise the limit or lower max_connections"
            );
            return fit.min(max_connections);
        }
    }
    max_connections
}

/// A connection's place; given back when the connection is dropped.
struct Permit {
    shared: Arc<Shared>,
    key: AddrKey,
    /// Still counted against its address.
    anonymous: AtomicBool,
}

impl Permit {
    fn release_address(&self) {
        if self.anonymous.swap(false, Ordering::AcqRel) {
            let mut t = self.shared.table.lock().expect("connection table");
            if let Some(n) = t.anonymous.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    t.anonymous.remove(&self.key);
                }
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.release_address();
        self.shared.table.lock().expect("connection table").open -= 1;
        metrics::gauge!(names::CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// What the socket, the requests and the auth hook share about one connection.
struct Conn {
    permit: Permit,
    header_read: Duration,
    idle: Duration,
    start: Instant,
    /// Requests in progress (call → response body dropped).
    busy: AtomicUsize,
    /// At least one request was seen.
    served: AtomicBool,
    /// The connection speaks HTTP/2 (known from its first request).
    h2: AtomicBool,
    /// Milliseconds since `start`: the last time `busy` fell to 0.
    idle_since: AtomicU64,
    /// … the first byte read since then (`UNSET`: none).
    first_read: AtomicU64,
    /// … the last byte read.
    last_read: AtomicU64,
    /// … since when a write has been waiting for the client (`UNSET`: none).
    write_blocked: AtomicU64,
    /// The socket's task, woken when the connection becomes idle.
    waker: AtomicWaker,
    timed_out: AtomicBool,
}

impl Conn {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// When the client has kept the connection waiting too long, and which
    /// wait it is; `None` while a request is being handled.
    fn deadline(&self) -> Option<(u64, &'static str)> {
        let ms = |d: Duration| d.as_millis() as u64;
        let blocked = self.write_blocked.load(Ordering::Acquire);
        if blocked != UNSET {
            return Some((blocked + ms(self.idle), "write"));
        }
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.served.load(Ordering::Acquire) {
            return Some((ms(self.header_read), "header"));
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        if self.h2.load(Ordering::Acquire) {
            // HTTP/2 frames (pings, window updates) arrive between requests:
            // any of them counts as activity.
            let last = self.last_read.load(Ordering::Acquire).max(idle_since);
            return Some((last + ms(self.idle), "idle"));
        }
        match self.first_read.load(Ordering::Acquire) {
            UNSET => Some((idle_since + ms(self.idle), "idle")),
            first => Some((first + ms(self.header_read), "header")),
        }
    }

    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let now = self.now();
        self.last_read.store(now, Ordering::Release);
        if self.busy.load(Ordering::Acquire) == 0 {
            let _ =
                self.first_read
                    .compare_exchange(UNSET, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn request_started(&self, h2: bool) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.served.store(true, Ordering::Release);
        if h2 {
            self.h2.store(true, Ordering::Release);
        }
    }

    fn request_done(&self) {
        if self.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.first_read.store(UNSET, Ordering::Release);
            self.idle_since.store(self.now(), Ordering::Release);
            self.waker.wake();
        }
    }
}

tokio::task_local! {
    static CONN: Arc<Conn>;
}

/// Called when a request's token verified: its connection no longer counts
/// against its address's limit for anonymous connections.
pub(crate) fn authenticated() {
    let _ = CONN.try_with(|c| c.permit.release_address());
}

/// Admits or refuses each TCP connection, then wraps its socket and service.
#[derive(Clone)]
pub(crate) struct Guard {
    shared: Arc<Shared>,
    plain: bool,
}

type Accepted<S> = io::Result<(Tracked<TcpStream>, Service<S>)>;

impl<S: Send + 'static> Accept<TcpStream, S> for Guard {
    type Stream = Tracked<TcpStream>;
    type Service = Service<S>;
    type Future = Pin<Box<dyn Future<Output = Accepted<S>> + Send>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        let guard = self.clone();
        Box::pin(async move { guard.admit(tcp, service).await })
    }
}

impl Guard {
    async fn admit<S>(self, mut tcp: TcpStream, service: S) -> Accepted<S> {
        let peer = tcp.peer_addr()?;
        let permit = match Connections(self.shared.clone()).admit(peer.ip()) {
            Ok(p) => p,
            Err(reason) => {
                metrics::counter!(names::CONNECTIONS_REFUSED, "reason" => reason).increment(1);
                if self.plain {
                    refuse(&mut tcp, reason).await;
                }
                return Err(io::Error::other(format!("connection refused: {reason}")));
            }
        };
        // TCP_NODELAY: a response written in two parts (a streamed body's
        // last chunk) must not wait for the client's delayed ACK (~40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let limits = &self.shared.limits;
        let conn = Arc::new(Conn {
            permit,
            header_read: limits.header_read,
            idle: limits.idle,
            start: Instant::now(),
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            first_read: AtomicU64::new(UNSET),
            last_read: AtomicU64::new(0),
            write_blocked: AtomicU64::new(UNSET),
            waker: AtomicWaker::new(),
            timed_out: AtomicBool::new(false),
        });
        Ok((
            Tracked {
                io: tcp,
                conn: conn.clone(),
                sleep: None,
            },
            Service {
                inner: service,
                conn,
            },
        ))
    }
}

/// Best effort, at most a second: a `503 overloaded` for a plain-HTTP client
/// refused at a cap (what it already sent is read first where it can be, so
/// the close is less likely to reset the connection before the answer).
async fn refuse(tcp: &mut TcpStream, reason: &str) {
    use tokio::io::AsyncWriteExt as _;
    let message = match reason {
        "per_address" => {
            "too many connections from your address that have not shown a token; retry later"
        }
        _ => "the node has as many connections as it accepts; retry later",
    };
    let body = serde_json::json!({"error": {"code": "overloaded", "message": message}}).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(answer.as_bytes())).await;
    let mut scratch = [0u8; 4096];
    let _ = tcp.try_read(&mut scratch);
    let _ = tcp.shutdown().await;
}

/// A connection's socket, timed (see the module docs).
pub(crate) struct Tracked<IO> {
    io: IO,
    conn: Arc<Conn>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<IO> Tracked<IO> {
    /// Called when the socket would block: `Err` once the client has kept
    /// the connection waiting past its deadline, else the timer is armed.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            let Some((deadline, phase)) = self.conn.deadline() else {
                return Ok(());
            };
            let at = self.conn.at(deadline);
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if sleep.deadline() != at {
                sleep.as_mut().reset(at);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            // The timer fired: the deadline may have moved meanwhile.
            if self.conn.deadline().map(|(d, _)| d) == Some(deadline) {
                if !self.conn.timed_out.swap(true, Ordering::AcqRel) {
                    metrics::counter!(names::CONNECTIONS_TIMED_OUT, "phase" => phase).increment(1);
                    tracing::debug!(phase, "closing a connection that kept the node waiting");
                }
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connection timed out ({phase})"),
                ));
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.conn.read(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.conn.waker.register(cx.waker());
                match self.check(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> Tracked<IO> {
    fn wrote<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let now = self.conn.now();
                let _ = self.conn.write_blocked.compare_exchange(
                    UNSET,
                    now,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                match self.check(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
            ready => {
                self.conn.write_blocked.store(UNSET, Ordering::Release);
                ready
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.wrote(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The app, with each request counted while in progress and its body's
/// pauses bounded.
#[derive(Clone)]
pub(crate) struct Service<S> {
    inner: S,
    conn: Arc<Conn>,
}

/// Holds a request "in progress" until dropped.
struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for Service<S>
where
    S: tower_service::Service<
            http::Request<Inbound<B>>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = http::Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let conn = self.conn.clone();
        conn.request_started(req.version() == http::Version::HTTP_2);
        let busy = Busy(conn.clone());
        let idle = conn.idle;
        let req = req.map(|body| Inbound {
            body,
            idle,
            sleep: None,
        });
        let fut = CONN.scope(conn, self.inner.call(req));
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|body| axum::body::Body::new(Outbound { body, _busy: busy })))
        })
    }
}

/// A request body whose pauses are bounded by the idle timeout (like
/// `tower_http::timeout::TimeoutBody`, which does not pass on the size
/// hint and end-of-stream the handlers rely on).
pub(crate) struct Inbound<B> {
    body: B,
    idle: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> HttpBody for Inbound<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = self.idle;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if sleep.as_mut().poll(cx).is_ready() {
                    metrics::counter!(names::CONNECTIONS_TIMED_OUT, "phase" => "body").increment(1);
                    return Poll::Ready(Some(Err(format!(
                        "the request body paused for more than {} ms (idle_timeout_ms)",
                        idle.as_millis()
                    )
                    .into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request "in progress" until dropped.
struct Outbound {
    body: axum::body::Body,
    _busy: Busy,
}

impl HttpBody for Outbound {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves `app` on `listener` through `acceptor` (a [`Guard`], alone or
/// under TLS) until `shutdown` resolves, then lets open connections finish.
pub(crate) async fn serve<A>(
    listener: tokio::net::TcpListener,
    connections: &Connections,
    acceptor: A,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    A: Accept<
            TcpStream,
            axum::middleware::AddExtension<axum::Router, axum::extract::ConnectInfo<SocketAddr>>,
        > + Clone
        + Send
        + Sync
        + 'static,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send,
    A::Service: axum_server::service::SendService<http::Request<hyper::body::Incoming>> + Send,
    A::Future: Send,
{
    let limits = connections.limits();
    let handle = axum_server::Handle::<SocketAddr>::new();
    let on_shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.graceful_shutdown(None);
    });
    let mut server = axum_server::Server::<SocketAddr>::from_listener(listener)
        .acceptor(acceptor)
        .handle(handle)
        // A backstop only: `Tracked` closes a connection without a first
        // request at `header_read` (and counts it).
        .first_request_timeout(limits.header_read * 2)
        .accept_error_handler(|peer, e| match peer {
            Some(peer) => tracing::debug!(%peer, error = %e, "connection refused"),
            None => tracing::warn!(error = %e, "accept failed"),
        });
    let builder = server.http_builder();
    // axum-server installs hyper's timer. Its header-read timeout counts from
    // the moment a connection waits for a head, idle time included, so it is
    // the sum here: a backstop behind `Tracked`'s finer clocks.
    builder
        .http1()
        .header_read_timeout(limits.header_read + limits.idle)
        .max_buf_size(limits.max_head_bytes);
    builder
        .http2()
        .max_header_list_size(limits.max_head_bytes as u32);
    server.serve(app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_by_host_or_ipv6_64() {
        let k = |s: &str| AddrKey::of(s.parse().unwrap());
        assert_eq!(k("::ffff:10.0.0.1"), k("10.0.0.1"));
        assert_ne!(k("10.0.0.1"), k("10.0.0.2"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }

    #[test]
    fn limits_are_checked() {
        let ok = NodeConfig::default();
        let l = Limits::from_config(&ok).unwrap();
        assert_eq!(l.header_read, Duration::from_secs(10));
        assert_eq!(l.max_head_bytes, 64 << 10);
        for (bad, word) in [
            (
                NodeConfig {
                    max_request_head_bytes: 8191,
                    ..NodeConfig::default()
                },
                "max_request_head_bytes",
            ),
            (
                NodeConfig {
                    idle_timeout_ms: 0,
                    ..NodeConfig::default()
                },
                "idle_timeout_ms",
            ),
            (
                NodeConfig {
                    max_connections: 0,
                    ..NodeConfig::default()
                },
                "max_connections",
            ),
        ] {
            let e = Limits::from_config(&bad).unwrap_err().to_string();
            assert!(e.contains(word), "{e}");
        }
    }
}
