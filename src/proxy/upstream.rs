//! The connection to the origin: dialing, TLS verification, connect-to, and a pool of
//! kept-alive HTTP/1.1 connections.
//!
//! This module owns how the proxy reaches the origin: the rustls configuration (webpki
//! roots plus any configured CA), the connect-to override, which changes *where* the proxy
//! dials but never *whom* it verifies (SNI and the certificate name are always the origin
//! host of the request), hyper's HTTP/1.1 client connections and the pool that keeps them
//! between requests. It does not build requests or interpret responses
//! ([`super::service`]).
//!
//! Only HTTP/1.1 is spoken upstream, as nginx does: WebSocket upgrades need it, and
//! connection reuse through the pool makes HTTP/2 multiplexing of little use on one link.
//!
//! # The pool
//!
//! Each origin connection is driven by a task of its own, spawned once when it is opened.
//! A request takes an idle connection out of the pool (the most recently used one, the
//! least likely to have been closed by the origin) or opens one; the connection goes back
//! when its response body has been read to the end ([`OriginBody`]), in the call that
//! reads that end: no task or timer per request (hyper-util's pooled client spawned a task
//! per request to wait for the connection to be reusable, a third of the instructions of a
//! passed-through request). A response body dropped before its end, an error, an upgrade or
//! an origin's `Connection: close` leave the connection out of the pool, so only a
//! connection whose last exchange completed is used again. A request that a kept-alive
//! connection could not take (the origin closed it meanwhile: hyper hands the request
//! back unsent) is tried on the next, and then on a new connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::body::BoxError;

/// The request body type sent upstream: whatever the client's body was, boxed.
pub(crate) type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

type Sender = http1::SendRequest<UpstreamBody>;

/// Why the upstream client could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// A CA file that cannot be read, is not PEM or holds no certificate.
    #[error("CA file {path}: {reason}", path = path.display())]
    CaFile {
        /// The file as given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// rustls refused a CA certificate or the client configuration.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a request got no response from the origin.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No TCP connection (refused, unreachable, timed out, the name not resolved) or no
    /// TLS session (the certificate refused).
    #[error("connecting")]
    Connect(#[source] io::Error),
    /// The exchange failed: the connection broke, or what came back was no HTTP response.
    #[error("exchange")]
    Exchange(#[source] hyper::Error),
}

impl SendError {
    /// Whether no connection was made, as opposed to a connection that failed.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

/// Everything the client needs to know.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamSettings {
    /// Whether the origin speaks TLS (an `https` origin URL).
    pub tls: bool,
    /// The origin's port, dialed when there is no `connect_to`.
    pub port: u16,
    pub connect_to: Option<SocketAddr>,
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub connect_timeout: Duration,
    pub pool_idle_timeout: Duration,
}

/// Reads every certificate of a PEM file, for trusting a private CA.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamError> {
    let fail = |reason: String| UpstreamError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE section".into()));
    }
    Ok(certs)
}

/// The most a connection to the origin reads ahead of the client. hyper's default (about
/// 400 KiB) made a proxy of 50 connections each sending a 2 MB script hold 87 MiB at its
/// peak (nginx: 36 MiB); on loopback a smaller buffer costs more read calls per byte.
const UPSTREAM_READ_BUFFER: usize = 64 * 1024;

/// The most idle connections kept for one pool key; more are closed when they come back.
/// Well above the concurrency of one front-end's clients in the benchmarks (50), as
/// nginx's `keepalive` directive would be set.
const MAX_IDLE_PER_KEY: usize = 1024;

/// The most pool keys (origin host names under TLS or without connect-to) remembered;
/// past it, keys without idle connections are forgotten, and if all have some, a new
/// host's connections are not kept. Pass-through domains cover any name under them, so
/// clients choose the names.
const MAX_KEYS: usize = 1024;

/// The proxy's client for one origin configuration: how to dial, and the idle
/// connections. Cheap to share; requests may run on any thread.
pub(crate) struct Upstream {
    tls: Option<TlsConnector>,
    connect_to: Option<SocketAddr>,
    port: u16,
    connect_timeout: Duration,
    idle_timeout: Duration,
    http1: http1::Builder,
    /// Whether connections are kept per origin host, or all in one (plain HTTP to the
    /// connect-to address: every host's requests go to the same server, naming their host
    /// in `Host`, as nginx's upstream keepalive does).
    per_host: bool,
    keys: Mutex<HashMap<Box<str>, Arc<Idle>>>,
}

impl Upstream {
    /// Sets up the TLS client (for an `https` origin) and an empty pool. Needs no runtime:
    /// nothing is spawned before the first connection.
    pub(crate) fn new(settings: &UpstreamSettings) -> Result<Upstream, UpstreamError> {
        let tls = if settings.tls {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            for cert in &settings.extra_roots {
                roots.add(cert.clone())?;
            }
            // An explicit provider: with several rustls providers linked into one binary,
            // the process-wide default is ambiguous and `ClientConfig::builder()` would
            // panic.
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        let mut http1 = http1::Builder::new();
        http1.max_buf_size(UPSTREAM_READ_BUFFER);
        Ok(Upstream {
            per_host: tls.is_some() || settings.connect_to.is_none(),
            tls,
            connect_to: settings.connect_to,
            port: settings.port,
            connect_timeout: settings.connect_timeout,
            idle_timeout: settings.pool_idle_timeout,
            http1,
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// Sends `req` (origin-form URI, `Host` set) to the origin `host` on a kept-alive
    /// connection, or a new one, and returns the response head; the body hands the
    /// connection back to the pool once it has been read to its end.
    pub(crate) async fn send(
        &self,
        host: &str,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<OriginBody>, SendError> {
        let idle = self.idle(host);
        if let Some(idle) = &idle {
            while let Some(mut sender) = idle.take(self.idle_timeout) {
                match sender.try_send_request(req).await {
                    Ok(resp) => return Ok(self.wrap(resp, sender, Some(idle.clone()))),
                    Err(mut e) => match e.take_message() {
                        // Closed before it took the request: the next one.
                        Some(unsent) => req = unsent,
                        None => return Err(SendError::Exchange(e.into_error())),
                    },
                }
            }
        }
        // Boxed: opening a connection (TLS above all) is a large future, which would make
        // every request's future that large, copied when it is boxed for the listener.
        let mut sender = Box::pin(self.connect(host)).await?;
        match sender.try_send_request(req).await {
            Ok(resp) => Ok(self.wrap(resp, sender, idle)),
            Err(e) => Err(SendError::Exchange(e.into_error())),
        }
    }

    fn wrap(
        &self,
        resp: Response<Incoming>,
        sender: Sender,
        idle: Option<Arc<Idle>>,
    ) -> Response<OriginBody> {
        // An upgraded connection belongs to the upgrade.
        let reuse = resp.status() != StatusCode::SWITCHING_PROTOCOLS;
        let back = idle
            .filter(|_| reuse)
            .map(|idle| GoingBack { idle, sender });
        resp.map(|inner| OriginBody { inner, back })
    }

    /// The idle connections for `host`; `None` when there are too many hosts to remember
    /// another.
    fn idle(&self, host: &str) -> Option<Arc<Idle>> {
        let key = if self.per_host { host } else { "" };
        let mut keys = lock(&self.keys);
        if let Some(idle) = keys.get(key) {
            return Some(idle.clone());
        }
        if keys.len() >= MAX_KEYS {
            keys.retain(|_, idle| !lock(&idle.connections).is_empty());
            if keys.len() >= MAX_KEYS {
                return None;
            }
        }
        let idle = Arc::new(Idle::default());
        keys.insert(key.into(), idle.clone());
        Some(idle)
    }

    /// Opens a connection to `host` (TCP within the connect timeout, then TLS) and starts
    /// the task that drives it.
    async fn connect(&self, host: &str) -> Result<Sender, SendError> {
        let tcp = dial(self.connect_to, host, self.port, self.connect_timeout)
            .await
            .map_err(SendError::Connect)?;
        match &self.tls {
            None => self.handshake(tcp).await,
            Some(tls) => {
                let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                    SendError::Connect(io::Error::new(io::ErrorKind::InvalidInput, e))
                })?;
                let stream = tls.connect(name, tcp).await.map_err(SendError::Connect)?;
                self.handshake(stream).await
            }
        }
    }

    async fn handshake<T>(&self, io: T) -> Result<Sender, SendError>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = self
            .http1
            .handshake(TokioIo::new(io))
            .await
            .map_err(SendError::Exchange)?;
        // Boxed: hyper's connection is kilobytes, which tokio would copy as the task's
        // future when it spawns, starts and finishes it.
        tokio::spawn(Box::pin(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "proxy: origin connection ended with an error");
            }
        }));
        Ok(sender)
    }
}

/// A TCP connection (`TCP_NODELAY` on) to `connect_to`, or else to the first of `host`'s
/// addresses on `port` that answers, within `timeout`. Also the redirector's own
/// pass-through's ([`crate::redirect::pass`]).
pub(crate) async fn dial(
    connect_to: Option<SocketAddr>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let connect = async {
        if let Some(addr) = connect_to {
            return TcpStream::connect(addr).await;
        }
        let mut last = None;
        for addr in tokio::net::lookup_host((host, port)).await? {
            match TcpStream::connect(addr).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address")
        }))
    };
    let tcp = tokio::time::timeout(timeout, connect).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within {timeout:?}"),
        )
    })??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The idle connections of one pool key, oldest first.
#[derive(Default)]
pub(crate) struct Idle {
    connections: Mutex<Vec<(Sender, Instant)>>,
}

impl Idle {
    /// The most recently returned connection that can take a request now. Those idle for
    /// longer than `timeout` are closed, and so are any the origin closed or that are still
    /// busy (a request body still being sent after its response ended).
    fn take(&self, timeout: Duration) -> Option<Sender> {
        let mut connections = lock(&self.connections);
        if let Some(&(_, oldest)) = connections.first()
            && oldest.elapsed() > timeout
        {
            let now = Instant::now();
            let stale = connections.partition_point(|(_, since)| now - *since > timeout);
            connections.drain(..stale);
        }
        while let Some((sender, _)) = connections.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put(&self, sender: Sender) {
        let mut connections = lock(&self.connections);
        if connections.len() < MAX_IDLE_PER_KEY {
            connections.push((sender, Instant::now()));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.connections).len()
    }
}

/// A connection to hand back once its response body has ended.
struct GoingBack {
    idle: Arc<Idle>,
    sender: Sender,
}

/// The origin's response body, as hyper reads it; its connection goes back to the pool
/// when the body has been read to its end (or is empty), and is closed if the body is
/// dropped before that or fails.
pub(crate) struct OriginBody {
    inner: Incoming,
    back: Option<GoingBack>,
}

impl OriginBody {
    fn release(&mut self) {
        if let Some(GoingBack { idle, sender }) = self.back.take() {
            idle.put(sender);
        }
    }
}

impl Drop for OriginBody {
    fn drop(&mut self) {
        // A body never polled because it had nothing in it (`HEAD`, 204, 304,
        // `Content-Length: 0`) ended all the same.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.release(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn upstream(origin: SocketAddr) -> Upstream {
        Upstream::new(&UpstreamSettings {
            tls: false,
            port: origin.port(),
            connect_to: Some(origin),
            extra_roots: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(90),
        })
        .expect("upstream")
    }

    fn get(path: &str) -> Request<UpstreamBody> {
        Request::builder()
            .uri(path)
            .header(http::header::HOST, "example.com")
            .body(Empty::new().map_err(|e| match e {}).boxed_unsync())
            .expect("request")
    }

    /// An origin answering the requests of its `n`th connection with `script[n]`'s raw
    /// responses in turn (the last connection's for any later one), then closing; counts
    /// connections.
    async fn raw_origin(script: Vec<Vec<&'static [u8]>>) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let responses = script[n.min(script.len() - 1)].clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for resp in responses {
                        // Read up to the end of a request head (no request bodies here).
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut chunk = [0u8; 1024];
                            match tcp.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
                        buf.drain(..end + 4);
                        if tcp.write_all(resp).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";

    async fn body_of(resp: Response<OriginBody>) -> Bytes {
        resp.into_body().collect().await.expect("body").to_bytes()
    }

    #[tokio::test]
    async fn a_connection_read_to_its_end_is_used_again() {
        let (addr, accepted) = raw_origin(vec![vec![OK, CHUNKED, OK]]).await;
        let up = upstream(addr);
        for _ in 0..3 {
            let resp = up.send("example.com", get("/")).await.expect("response");
            assert_eq!(body_of(resp).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let (addr, accepted) = raw_origin(vec![
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok", OK],
            vec![OK],
        ])
        .await;
        let up = upstream(addr);
        let resp = up.send("example.com", get("/")).await.expect("response");
        drop(resp);
        assert_eq!(up.idle("").map(|i| i.len()), Some(0));
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(body_of(resp).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_origin_closed_is_not_used() {
        // One response per connection, then the origin closes without saying so.
        let (addr, accepted) = raw_origin(vec![vec![OK]]).await;
        let up = upstream(addr);
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(body_of(resp).await, "ok");
        // Let the connection's task see the close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(body_of(resp).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connection_close_and_empty_bodies() {
        let (addr, accepted) = raw_origin(vec![
            vec![
                NO_CONTENT,
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            ],
            vec![NO_CONTENT],
        ])
        .await;
        let up = upstream(addr);
        // Never polled, yet ended: the connection goes back.
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        drop(resp);
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(body_of(resp).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The origin said close: a new connection (which the origin answers with a 204).
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn idle_connections_past_the_timeout_are_closed() {
        let (addr, accepted) = raw_origin(vec![vec![OK, OK]]).await;
        let mut up = upstream(addr);
        up.idle_timeout = Duration::from_millis(20);
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(body_of(resp).await, "ok");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let resp = up.send("example.com", get("/")).await.expect("response");
        assert_eq!(body_of(resp).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn tls_origins_are_pooled_per_host() {
        let up = Upstream::new(&UpstreamSettings {
            tls: true,
            port: 443,
            connect_to: Some("127.0.0.1:1".parse().expect("addr")),
            extra_roots: Vec::new(),
            connect_timeout: Duration::from_secs(1),
            pool_idle_timeout: Duration::from_secs(90),
        })
        .expect("upstream");
        let a = up.idle("a.example.com").expect("pool");
        let b = up.idle("b.example.com").expect("pool");
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a, &up.idle("a.example.com").expect("pool")));
        // Plain HTTP to a connect-to address: one pool for every host.
        let plain = upstream("127.0.0.1:1".parse().expect("addr"));
        let a = plain.idle("a.example.com").expect("pool");
        assert!(Arc::ptr_eq(&a, &plain.idle("b.example.com").expect("pool")));
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let up = upstream(addr);
        let err = up
            .send("example.com", get("/"))
            .await
            .err()
            .expect("refused");
        assert!(err.is_connect(), "{err:?}");
    }
}
