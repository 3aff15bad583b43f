//! A front-end's listeners: accepting connections and handing them to hyper.
//!
//! This module owns everything between `accept()` and the first request: the PROXY
//! protocol header on listeners configured for it (believed only from trusted proxies),
//! the TLS handshake, HTTP/1.1 or HTTP/2 (hyper-util's auto builder, the client's ALPN
//! choice; on plain connections of a front-end that answers on the spot, the listener's
//! own HTTP/1.1 path first, [`super::http1`], which hands hyper what it does not answer),
//! the limits on request heads, the time clients get to send requests, and the
//! graceful drain when the listener stops (at shutdown, or when a configuration reload
//! removes it). It hands each request with its [`Connection`] to the
//! front-end's [`Handler`] (the redirector's or the proxy's) and leaves the requests
//! themselves to it.
//!
//! Slow and idle clients, and the drain, cost nothing per request: no timer or shutdown
//! signal is polled with the connection (hyper's per-request header timer, a per-connection
//! timer and hyper-util's graceful watcher each cost a few hundred instructions per request,
//! since a connection's task is woken two or three times per request and every branch of a
//! `select!` is polled each time). Instead each listener keeps a registry of its open
//! connections, and one sweep per `header_read_timeout` closes those on which no request
//! head arrived since the previous sweep while no response was being produced or sent: a
//! client thus gets between one and two timeouts to send a request head, whether it is slow
//! (slowloris) or idle. A connection learns that it is to close or drain from a flag it
//! reads when polled; the sweep or the drain sets it and wakes the connection's task.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::HandshakeKind;
use tokio_util::sync::CancellationToken;

use super::client_addr::TrustedProxies;
use super::http1::{self, Ended};
use super::metrics::{ConnectionError, ListenerMetrics};
use super::proxy_protocol::{self, ProxyHeader, Rewind};
use super::response::{Reply, ResponseBody};
use super::{Connection, Handler};

/// How long open connections get to finish after shutdown begins.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// Limits on what a client may send before its request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// For the PROXY header, the TLS handshake and the first request head together, and
    /// for each later request head.
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    /// The defaults of the configuration's keys.
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_headers: HYPER_DEFAULT_MAX_HEADERS,
        }
    }
}

/// One listener's settings and what its connections share.
pub(crate) struct Listener<H> {
    /// `redirect` or `proxy`, for logs.
    pub role: &'static str,
    pub tls: Option<TlsAcceptor>,
    pub proxy_protocol: bool,
    /// What `/metrics` and `/status` show of this listener.
    pub metrics: Arc<ListenerMetrics>,
    /// The app and settings of its front-end, which a configuration reload replaces.
    pub front: Arc<ArcSwap<FrontState<H>>>,
}

/// What a configuration reload of a front-end replaces: each new connection takes the
/// limits and trusted proxies current when it is accepted, each request the app current
/// when its head has been read (on a kept-alive connection too).
pub(crate) struct FrontState<H> {
    pub app: Arc<H>,
    pub trusted: TrustedProxies,
    pub limits: Limits,
    builder: auto::Builder<TokioExecutor>,
}

impl<H> FrontState<H> {
    pub(crate) fn new(app: Arc<H>, trusted: TrustedProxies, limits: Limits) -> FrontState<H> {
        FrontState {
            app,
            trusted,
            builder: builder(&limits),
            limits,
        }
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            // Timed out per connection instead, see the module documentation.
            .header_read_timeout(None)
            .max_buf_size(limits.max_header_bytes);
        // hyper's own default is 100; naming any number, even that one, makes it build its
        // header arrays element by element for every request (3% of the CPU time of a
        // redirect).
        if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            builder.http1().max_headers(limits.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(100)
            // Dead peers are found by PING; live idle ones may stay.
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        builder
    }
}

/// Accepts on `listener` until `stop` (a child of `shutdown`, the whole server's), then
/// drains (at most [`DRAIN_TIMEOUT`]). Each
/// connection takes the settings `settings` holds when it is accepted: a configuration
/// reload that keeps the listener's address may change its `tls` or `proxy_protocol`
/// (one load per connection, none per request).
///
/// Connections are accepted until the kernel has none left (at most [`ACCEPT_BURST`] before
/// other tasks get a turn), with mio: they are not registered with the reactor yet. On a
/// plain listener of a front-end with its own HTTP/1.1 path, on a single-threaded runtime,
/// each is read at once here ([`http1::first_read`]): a request that closes its
/// connection is answered, written and closed without a task or the reactor, and only a
/// connection with more to do (no request yet, keep-alive) gets both. On a multi-threaded
/// runtime the same first read is the connection's task's, so that connections spread
/// over the workers.
pub(crate) async fn serve<H: Handler>(
    listener: TcpListener,
    settings: Arc<ArcSwap<Listener<H>>>,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    let role = settings.load().role;
    if let Err(e) = accepted_without_delay(&listener) {
        tracing::warn!(role, error = %e, "cannot set TCP_NODELAY on the listener");
    }
    let addr = listener.local_addr();
    let listener = match unregistered_accepts(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(role, error = %e, "cannot listen: the listener's socket cannot be polled");
            return;
        }
    };
    let inline = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let mut scratch = http1::Scratch::default();
    let open = Arc::new(OpenConnections::default());
    let sweep_every = || settings.load().front.load().limits.header_read_timeout;
    let mut period = sweep_every();
    let mut sweep = tokio::time::interval_at(Instant::now() + period, period);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut ready = tokio::select! {
            ready = listener.readable() => match ready {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::warn!(role, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = sweep.tick() => {
                open.sweep();
                // A configuration reload may have changed the timeout.
                if sweep_every() != period {
                    period = sweep_every();
                    sweep = tokio::time::interval_at(Instant::now() + period, period);
                    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                continue;
            }
            () = stop.cancelled() => break,
        };
        let mut failed = None;
        for _ in 0..ACCEPT_BURST {
            let (stream, peer) = match ready.try_io(|l| l.get_ref().accept()) {
                Ok(Ok(accepted)) => accepted,
                Ok(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                // None left: the readiness is cleared, the next `readable` waits.
                Err(_would_block) => break,
            };
            let config = settings.load_full();
            config.metrics.accepted();
            let front = config.front.load_full();
            let first = if inline && answers_first_read(&config) {
                let conn = Connection { peer, tls: false };
                match http1::first_read(&stream, conn, &front, &Shared::default(), &mut scratch) {
                    http1::FirstRead::Closed => continue,
                    open @ http1::FirstRead::Open(..) => Some(open),
                }
            } else {
                None
            };
            // Registered here, not in the task, so that the drain knows of every
            // connection accepted before it began.
            let registration = open.register();
            tokio::spawn(connection_task(
                stream,
                peer,
                config,
                front,
                registration,
                first,
            ));
        }
        drop(ready);
        if let Some(e) = failed {
            // Out of file descriptors and the like: back off instead of spinning.
            tracing::warn!(role, error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            // The burst's end, or no connection left: other tasks' turn either way (a
            // no-op unless this task's budget is spent).
            tokio::task::consume_budget().await;
        }
    }
    // Closed now: from here on a connection to this address is refused (unless another
    // listener has it). Said only now, so that whoever reads the line and connects is
    // refused; and only of a listener stopped alone (a reload removed it): at shutdown,
    // or when a later listener of the start fails to bind, the server says it once.
    drop(listener);
    if let (Ok(addr), false) = (addr, shutdown.is_cancelled()) {
        tracing::info!(%addr, "{role} stopped listening: its open connections drain");
    }
    open.drain(DRAIN_TIMEOUT, role).await;
}

/// The most connections accepted in a row before other tasks get a turn.
const ACCEPT_BURST: usize = 64;

/// `listener` polled for readiness only, its connections accepted by mio, which (unlike
/// tokio's accept) leaves them unregistered with the reactor.
fn unregistered_accepts(listener: TcpListener) -> std::io::Result<AsyncFd<mio::net::TcpListener>> {
    let std = listener.into_std()?;
    crate::dns::sys::polled_listener(mio::net::TcpListener::from_std(std))
}

/// Whether a connection to `config` is served by the front-end's own HTTP/1.1 path from
/// its first byte: plain, without a PROXY header in front.
fn answers_first_read<H: Handler>(config: &Listener<H>) -> bool {
    H::OWN_HTTP1 && config.tls.is_none() && !config.proxy_protocol
}

/// Sets `TCP_NODELAY` on the listening socket, which Linux gives to every connection it
/// accepts: one system call per connection fewer than setting it on each (a response must
/// not wait for the client's delayed ACK of the previous one).
fn accepted_without_delay(listener: &TcpListener) -> std::io::Result<()> {
    socket2::SockRef::from(listener).set_tcp_nodelay(true)
}

/// The most read from a new connection before hyper reads: a request head of a browser
/// with its cookies fits.
const EARLY_READ: usize = 4096;

/// What the client has sent by the time its connection is served, read at once without
/// waiting (nothing if it has sent nothing yet), to be handed to hyper in front of the
/// stream. hyper-util's protocol detection reads the first 24 bytes alone (HTTP/2's
/// preface is that long), so that without this a request in one packet took two `recvfrom`
/// calls; from this buffer it takes one. A client that connects and waits costs one
/// `recvfrom` more, answered at once with `EAGAIN`.
fn already_sent(stream: &TcpStream) -> BytesMut {
    let mut early = BytesMut::with_capacity(EARLY_READ);
    let room = early.capacity();
    match stream.try_read_buf(&mut early) {
        Ok(n) => {
            if n > 0 && n < room {
                // Drained: forget the readiness, as tokio does after a short read of its
                // own, or hyper's next read would be a `recvfrom` answered with `EAGAIN`.
                // Data coming later raises a new readiness event.
                let _ = stream.try_io(Interest::READABLE, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
            }
            early
        }
        // `WouldBlock`, or an error hyper will meet again on its own read.
        Err(_) => BytesMut::new(),
    }
}

/// What a connection's task runs: small (see `http`), since tokio copies it when it spawns,
/// starts and finishes the task. `first`: what the accept loop made of the connection's
/// first read, if it read it.
async fn connection_task<H: Handler>(
    stream: mio::net::TcpStream,
    peer: SocketAddr,
    config: Arc<Listener<H>>,
    front: Arc<FrontState<H>>,
    registration: Registration,
    first: Option<http1::FirstRead<H::Forward>>,
) {
    let first = match first {
        Some(first) => Some(first),
        None if answers_first_read(&config) => {
            let conn = Connection { peer, tls: false };
            let first = SCRATCH.with_borrow_mut(|scratch| {
                http1::first_read(&stream, conn, &front, &registration.shared, scratch)
            });
            Some(first)
        }
        None => None,
    };
    let first = match first {
        Some(http1::FirstRead::Closed) => return,
        Some(http1::FirstRead::Open(buf, unsent)) => Some((buf, unsent)),
        None => None,
    };
    let stream = match TcpStream::from_std(std::net::TcpStream::from(stream)) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(role = config.role, %peer, error = %e, "cannot poll the connection");
            return;
        }
    };
    connection(stream, peer, first, &config, &front, registration).await;
}

thread_local! {
    /// The first-read buffers of the connections a worker thread's tasks read.
    static SCRATCH: std::cell::RefCell<http1::Scratch> = std::cell::RefCell::default();
}

async fn connection<H: Handler>(
    stream: TcpStream,
    socket_peer: SocketAddr,
    first: Option<(BytesMut, Option<http1::Unsent<H::Forward>>)>,
    config: &Listener<H>,
    front: &FrontState<H>,
    registration: Registration,
) {
    let deadline = Instant::now() + front.limits.header_read_timeout;
    let (peer, io) = if config.proxy_protocol {
        // Boxed, as the handshake and the HTTP connection below (see `http`).
        let header = Box::pin(proxy_protocol::read_header(stream));
        match tokio::time::timeout_at(deadline, header).await {
            Err(_) => {
                config.metrics.error(ConnectionError::HandshakeTimeout);
                tracing::debug!(role = config.role, %socket_peer, "no PROXY protocol header in time");
                return;
            }
            Ok(Err(e)) => {
                config.metrics.error(ConnectionError::ProxyProtocol);
                tracing::debug!(role = config.role, %socket_peer, error = %e, "connection refused");
                return;
            }
            Ok(Ok((ProxyHeader::Proxied { source, .. }, io)))
                if front.trusted.contains(socket_peer.ip()) =>
            {
                (source, io)
            }
            Ok(Ok((_, io))) => (socket_peer, io),
        }
    } else {
        let early = match &first {
            // Read already, or nothing to read yet.
            Some(_) => BytesMut::new(),
            None => already_sent(&stream),
        };
        (socket_peer, Rewind::new(stream, early))
    };
    let conn = Connection {
        peer,
        tls: config.tls.is_some(),
    };
    let shared = &registration.shared;
    match &config.tls {
        Some(acceptor) => {
            // A statement of its own, so that the handshake's result (the TLS session,
            // before it moves into the heap) is not kept in this future while it runs.
            let connection = match tokio::time::timeout_at(deadline, Box::pin(acceptor.accept(io)))
                .await
            {
                Ok(Ok(tls)) => {
                    let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
                    config.metrics.handshake(resumed);
                    http(tls, conn, config, &front.builder, shared)
                }
                Ok(Err(e)) => {
                    config.metrics.error(ConnectionError::Tls);
                    tracing::debug!(role = config.role, %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    config.metrics.error(ConnectionError::HandshakeTimeout);
                    tracing::debug!(role = config.role, %peer, "TLS handshake timed out");
                    return;
                }
            };
            run(connection, config.role, peer, shared).await;
        }
        None => {
            let mut io = io;
            if H::OWN_HTTP1 {
                // Boxed, as hyper's connection below (see `http`).
                let (stream, read) = io.into_parts();
                let (read, unsent) = match first {
                    Some(first) => first,
                    None => (read, None),
                };
                let own = Box::pin(http1::serve(
                    stream,
                    read,
                    unsent,
                    conn,
                    &config.front,
                    front.limits,
                    shared,
                ));
                match watched(own, shared).await {
                    Some(Ended::Hyper(stream, read)) => io = Rewind::new(stream, read),
                    Some(Ended::Closed) => return,
                    None => {
                        tracing::debug!(role = config.role, %peer, "connection closed: idle, or still open at the end of the drain");
                        return;
                    }
                }
            }
            let connection = http(io, conn, config, &front.builder, shared);
            run(connection, config.role, peer, shared).await;
        }
    }
}

/// Runs `fut` until it ends (`Some`) or the sweep or the drain's end closes its connection
/// (`None`); the drain itself is `fut`'s to act on.
async fn watched<F: Future>(mut fut: Pin<Box<F>>, shared: &Shared) -> Option<F::Output> {
    let mut known: Option<Waker> = None;
    std::future::poll_fn(|cx| {
        shared.register(&mut known, cx.waker());
        if shared.state.load(Ordering::Acquire) == CLOSE {
            return Poll::Ready(None);
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

/// hyper's HTTP/1 or HTTP/2 connection over `I`, serving `H`.
type HttpConnection<'a, I, H> =
    auto::UpgradeableConnection<'a, TokioIo<I>, ConnService<H>, TokioExecutor>;

/// The HTTP connection over `io`, on the heap: hyper's connection (its buffers and parser
/// state, the TLS session) is kilobytes, and held inline in the connection's task it would
/// make the task's future that big, which tokio copies when it spawns, starts and finishes
/// a task (callgrind counted ~45 000 instructions of `memcpy` per connection with a new
/// connection per request, against one allocation now). Not `async`, so that `io` is not
/// held in a future either.
fn http<'a, H: Handler, I>(
    io: I,
    conn: Connection,
    config: &Listener<H>,
    builder: &'a auto::Builder<TokioExecutor>,
    shared: &Arc<Shared>,
) -> Pin<Box<HttpConnection<'a, I, H>>>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let service = ConnService {
        front: config.front.clone(),
        conn,
        shared: shared.clone(),
    };
    Box::pin(builder.serve_connection_with_upgrades(TokioIo::new(io), service))
}

/// Serves `connection` (from [`http`]) to its end, see [`supervise`].
async fn run<C>(connection: Pin<Box<C>>, role: &'static str, peer: SocketAddr, shared: &Shared)
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    match supervise(connection, shared).await {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            tracing::debug!(role, %peer, error = %e, "connection ended with an error");
        }
        None => {
            tracing::debug!(role, %peer, "connection closed: idle, or still open at the end of the drain")
        }
    }
}

/// Runs `conn` until it ends (`Some`) or is closed by the sweep or the drain's end (`None`),
/// shutting it down gracefully once the drain begins. Per poll, besides the connection's
/// own work: one waker comparison and one atomic load.
async fn supervise<C: GracefulConnection>(
    mut conn: Pin<Box<C>>,
    shared: &Shared,
) -> Option<C::Output> {
    let mut known: Option<Waker> = None;
    let mut draining = false;
    std::future::poll_fn(|cx| {
        shared.register(&mut known, cx.waker());
        match shared.state.load(Ordering::Acquire) {
            OPEN => {}
            DRAIN => {
                if !draining {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ => return Poll::Ready(None),
        }
        conn.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Connection states, in the order they can only move in.
pub(super) const OPEN: u8 = 0;
pub(super) const DRAIN: u8 = 1;
const CLOSE: u8 = 2;

/// What a connection, the sweep and the drain share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// [`OPEN`], [`DRAIN`] or [`CLOSE`].
    pub(super) state: AtomicU8,
    /// Request heads received.
    pub(super) requests: AtomicU64,
    /// Responses being made or, for passed-through ones, sent.
    pub(super) in_flight: AtomicU32,
    /// The connection's task, once it has been polled.
    waker: Mutex<Option<Waker>>,
}

impl Shared {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `waker` (`known` is the one given last) the one the sweep and the drain wake.
    /// A task's waker stays the same for its life, so normally this stores it once, on the
    /// first poll.
    fn register(&self, known: &mut Option<Waker>, waker: &Waker) {
        if !known.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *self.waker() = Some(waker.clone());
            *known = Some(waker.clone());
        }
    }

    /// Moves the connection on to `state` (never back) and wakes it to act on it.
    fn signal(&self, state: u8) {
        self.state.fetch_max(state, Ordering::AcqRel);
        if let Some(waker) = &*self.waker() {
            waker.wake_by_ref();
        }
    }
}

/// A listener's open connections, for the idle sweep and the drain.
#[derive(Default)]
struct OpenConnections {
    registry: Mutex<Registry>,
    /// Told when the last connection goes during the drain.
    emptied: Notify,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    draining: bool,
    open: HashMap<u64, Watched>,
}

struct Watched {
    shared: Arc<Shared>,
    /// The connection's request count at the previous sweep, if it was open then.
    seen: Option<u64>,
}

impl OpenConnections {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(self: &Arc<Self>) -> Registration {
        let shared = Arc::new(Shared::default());
        let mut registry = self.registry();
        if registry.draining {
            shared.state.store(DRAIN, Ordering::Release);
        }
        let id = registry.next_id;
        registry.next_id += 1;
        registry.open.insert(
            id,
            Watched {
                shared: shared.clone(),
                seen: None,
            },
        );
        Registration {
            id,
            shared,
            open: self.clone(),
        }
    }

    /// Closes the connections that received no request head since the previous sweep and
    /// are not making or sending a response.
    fn sweep(&self) {
        let mut idle = Vec::new();
        for watched in self.registry().open.values_mut() {
            let requests = watched.shared.requests.load(Ordering::Relaxed);
            if watched.seen == Some(requests)
                && watched.shared.in_flight.load(Ordering::Relaxed) == 0
            {
                idle.push(watched.shared.clone());
            } else {
                watched.seen = Some(requests);
            }
        }
        for shared in idle {
            shared.signal(CLOSE);
        }
    }

    /// Shuts every connection down gracefully and waits for them to end, at most `within`;
    /// closes those still open then.
    async fn drain(&self, within: Duration, role: &'static str) {
        let open: Vec<Arc<Shared>> = {
            let mut registry = self.registry();
            registry.draining = true;
            registry.open.values().map(|w| w.shared.clone()).collect()
        };
        for shared in &open {
            shared.signal(DRAIN);
        }
        drop(open);
        let emptied = async {
            while !self.registry().open.is_empty() {
                // `notify_one` keeps the wake-up if it comes before this waits.
                self.emptied.notified().await;
            }
        };
        if tokio::time::timeout(within, emptied).await.is_err() {
            tracing::warn!(role, "connections still open after the drain timeout");
            let open: Vec<Arc<Shared>> = self
                .registry()
                .open
                .values()
                .map(|w| w.shared.clone())
                .collect();
            for shared in open {
                shared.signal(CLOSE);
            }
        }
    }
}

/// A connection's place in its listener's registry, given up when the connection ends.
struct Registration {
    id: u64,
    shared: Arc<Shared>,
    open: Arc<OpenConnections>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = self.open.registry();
        registry.open.remove(&self.id);
        if registry.draining && registry.open.is_empty() {
            self.open.emptied.notify_one();
        }
    }
}

/// The front-end's current app, with the connection each request came on.
struct ConnService<H> {
    front: Arc<ArcSwap<FrontState<H>>>,
    conn: Connection,
    shared: Arc<Shared>,
}

// Not derived: that would ask for `H: Clone`.
impl<H> Clone for ConnService<H> {
    fn clone(&self) -> Self {
        ConnService {
            front: self.front.clone(),
            conn: self.conn,
            shared: self.shared.clone(),
        }
    }
}

impl<H: Handler> hyper::service::Service<hyper::Request<Incoming>> for ConnService<H> {
    type Response = hyper::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Served;

    fn call(&self, req: hyper::Request<Incoming>) -> Served {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        match self.front.load().app.respond(req, self.conn) {
            Reply::Ready(resp) => Served::Ready(Some(resp)),
            Reply::PassThrough(response) => {
                self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
                Served::PassThrough {
                    response,
                    in_flight: Some(InFlight(self.shared.clone())),
                }
            }
        }
    }
}

/// A response: made already, or a pass-through counted in flight until its body is sent.
#[allow(
    clippy::large_enum_variant,
    reason = "boxing the ready response would cost every redirect an allocation"
)]
enum Served {
    Ready(Option<hyper::Response<ResponseBody>>),
    PassThrough {
        response: Pin<Box<dyn Future<Output = hyper::Response<ResponseBody>> + Send>>,
        in_flight: Option<InFlight>,
    },
}

impl Future for Served {
    type Output = Result<hyper::Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Served::Ready(resp) => Poll::Ready(Ok(resp
                .take()
                .expect("a response future polled after completion"))),
            Served::PassThrough {
                response,
                in_flight,
            } => response.as_mut().poll(cx).map(|mut resp| {
                if let Some(in_flight) = in_flight.take() {
                    resp.body_mut().hold(in_flight);
                }
                Ok(resp)
            }),
        }
    }
}

/// One response counted in flight on its connection until this is dropped (with the
/// response future, if an HTTP/2 stream is reset before the response is made, or else
/// with its body).
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::{healthz, ready};

    struct Healthz;

    impl Handler for Healthz {
        type Forward = crate::http::NoForward;

        fn respond(&self, _req: hyper::Request<Incoming>, _conn: Connection) -> Reply {
            ready(healthz(), &dummy_entry(), None)
        }
    }

    fn dummy_entry() -> crate::http::access_log::Entry<'static> {
        crate::http::access_log::Entry {
            client: std::net::Ipv4Addr::LOCALHOST.into(),
            line: "",
            host: "",
            method: &http::Method::GET,
            path: "/",
            version: http::Version::HTTP_11,
            start: std::time::Instant::now(),
        }
    }

    #[tokio::test]
    async fn what_was_sent_is_read_at_once_and_nothing_waits() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        // Nothing sent yet: nothing read, at once.
        assert!(already_sent(&accepted).is_empty());
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .expect("write");
        accepted.readable().await.expect("readable");
        assert_eq!(
            &already_sent(&accepted)[..],
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn accepted_connections_have_no_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        accepted_without_delay(&listener).expect("nodelay");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(accepted.nodelay().expect("read the option"));
    }

    /// hyper's connection, the TLS handshake and the PROXY header are on the heap: a task's
    /// future held them inline (8 720 bytes in a test build), copied several times per
    /// connection; 656 bytes now.
    #[tokio::test]
    async fn a_connections_task_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stream =
            mio::net::TcpStream::from_std(std::net::TcpStream::connect(addr).expect("connect"));
        let front = Arc::new(FrontState::new(
            Arc::new(Healthz),
            TrustedProxies::new(&[]),
            Limits::default(),
        ));
        let config = Listener {
            role: "test",
            front: Arc::new(ArcSwap::new(front.clone())),
            tls: None,
            proxy_protocol: false,
            metrics: Arc::new(ListenerMetrics::new("test", addr, false, None)),
        };
        let open = Arc::new(OpenConnections::default());
        let task = connection_task(stream, addr, Arc::new(config), front, open.register(), None);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1024, "a connection's task is {size} bytes");
    }
}
