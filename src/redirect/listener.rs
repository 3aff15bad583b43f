//! The redirector's listeners: accepting connections and handing them to hyper.
//!
//! This module owns everything between `accept()` and the first request: the PROXY
//! protocol header on listeners configured for it (believed only from trusted proxies),
//! the TLS handshake, HTTP/1.1 or HTTP/2 (hyper-util's auto builder, the client's ALPN
//! choice), the limits on request heads, the time clients get to send requests, and the
//! graceful drain on shutdown. It inserts the [`Connection`] every request carries and
//! leaves the requests themselves to [`super::app`].
//!
//! Slow and idle clients are timed out per connection rather than by hyper's per-request
//! header timer, which allocates and arms a timer for every request head (a tenth of the
//! user-space CPU time of a redirect): one timer per connection wakes every
//! `header_read_timeout` and closes the connection if no request head arrived since the
//! last wake while no response was being produced or sent. A client thus gets between one
//! and two timeouts to send a request head, whether it is slow (slowloris) or idle.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::future::RouteFuture;
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::app::{Connection, Streaming};
use super::client_addr::TrustedProxies;
use super::proxy_protocol::{self, ProxyHeader, Rewind};

/// How long open connections get to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// Limits on what a client may send before its request is handled.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For the PROXY header, the TLS handshake and the first request head together, and
    /// for each later request head.
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

/// One listener's settings and what its connections share.
pub struct Listener {
    pub router: Router,
    pub tls: Option<TlsAcceptor>,
    pub proxy_protocol: bool,
    pub trusted: TrustedProxies,
    pub limits: Limits,
}

impl Listener {
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            // Timed out per connection instead, see the module documentation.
            .header_read_timeout(None)
            .max_buf_size(self.limits.max_header_bytes);
        // hyper's own default is 100; naming any number, even that one, makes it build its
        // header arrays element by element for every request (3% of the CPU time of a
        // redirect).
        if self.limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            builder.http1().max_headers(self.limits.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(100)
            // Dead peers are found by PING; live idle ones may stay.
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        builder
    }
}

/// Accepts on `listener` until `shutdown`, then drains (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(listener: TcpListener, config: Listener, shutdown: CancellationToken) {
    let builder = Arc::new(config.builder());
    let config = Arc::new(config);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "redirect: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let watcher = graceful.watcher();
        let (config, builder) = (config.clone(), builder.clone());
        tokio::spawn(async move {
            connection(stream, peer, &config, &builder, watcher).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("redirect: connections still open after the drain timeout");
    }
}

async fn connection(
    stream: TcpStream,
    socket_peer: SocketAddr,
    config: &Listener,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + config.limits.header_read_timeout;
    let (peer, io) = if config.proxy_protocol {
        match tokio::time::timeout_at(deadline, proxy_protocol::read_header(stream)).await {
            Err(_) => {
                tracing::debug!(%socket_peer, "redirect: no PROXY protocol header in time");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%socket_peer, error = %e, "redirect: connection refused");
                return;
            }
            Ok(Ok((ProxyHeader::Proxied { source, .. }, io)))
                if config.trusted.contains(socket_peer.ip()) =>
            {
                (source, io)
            }
            Ok(Ok((_, io))) => (socket_peer, io),
        }
    } else {
        (socket_peer, Rewind::new(stream, BytesMut::new()))
    };
    let conn = Connection {
        peer,
        tls: config.tls.is_some(),
    };
    match &config.tls {
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
            Ok(Ok(tls)) => http(tls, conn, config, builder, watcher, deadline).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "redirect: TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "redirect: TLS handshake timed out"),
        },
        None => http(io, conn, config, builder, watcher, deadline).await,
    }
}

async fn http<I>(
    io: I,
    conn: Connection,
    config: &Listener,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    deadline: Instant,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = ConnService {
        router: config.router.clone(),
        conn,
        activity: activity.clone(),
    };
    let connection =
        watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
    tokio::pin!(connection);
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    let mut seen = 0;
    let result = loop {
        tokio::select! {
            r = &mut connection => break r,
            () = &mut timer => {
                let requests = activity.requests.load(Ordering::Relaxed);
                if requests == seen && activity.in_flight.load(Ordering::Relaxed) == 0 {
                    tracing::debug!(peer = %conn.peer, "redirect: no request in time");
                    return;
                }
                seen = requests;
                timer.as_mut().reset(Instant::now() + config.limits.header_read_timeout);
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %conn.peer, error = %e, "redirect: connection ended with an error");
    }
}

/// What a connection's timer looks at.
#[derive(Debug, Default)]
struct Activity {
    /// Request heads received.
    requests: AtomicU64,
    /// Responses being made or, for streamed ones, sent.
    in_flight: AtomicU32,
}

/// The router with the connection's [`Connection`] put into each request.
#[derive(Clone)]
struct ConnService {
    router: Router,
    conn: Connection,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<Body>;
    type Error = Infallible;
    type Future = Tracked;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        self.activity.requests.fetch_add(1, Ordering::Relaxed);
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        req.extensions_mut().insert(self.conn);
        Tracked {
            inner: tower::Service::call(&mut self.router.clone(), req),
            activity: Some(self.activity.clone()),
        }
    }
}

/// A response in the making; counted in flight until it is made, or for a response the app
/// marked [`Streaming`], until its body is done.
struct Tracked {
    inner: RouteFuture<Infallible>,
    activity: Option<Arc<Activity>>,
}

impl Future for Tracked {
    type Output = Result<hyper::Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut resp = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(Ok(resp)) => resp,
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => return Poll::Pending,
        };
        if let Some(activity) = self.activity.take() {
            if resp.extensions_mut().remove::<Streaming>().is_some() {
                resp = resp.map(|body| Body::new(InFlightBody { body, activity }));
            } else {
                activity.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Poll::Ready(Ok(resp))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // An HTTP/2 stream reset before its response was made.
        if let Some(activity) = self.activity.take() {
            activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A streamed response body, counted in flight until it is dropped.
struct InFlightBody {
    body: Body,
    activity: Arc<Activity>,
}

impl Drop for InFlightBody {
    fn drop(&mut self) {
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl http_body::Body for InFlightBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
