//! Origins on loopback for the proxy and the redirector to reach: one accept loop
//! ([`listen`]) under every kind (plain HTTP, TLS, WebSocket), a handler-driven HTTP/1.1
//! origin, the response builders its handlers use, and an origin that records what
//! reached it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type OriginBody = UnsyncBoxBody<Bytes, BoxError>;
pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<OriginBody>> + Send>>
        + Send
        + Sync,
>;

pub fn full(b: impl Into<Bytes>) -> OriginBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed_unsync()
}

/// A body sent as the given pieces, each after a pause of `pause` and flushed on its own,
/// so the other side really receives them apart.
pub fn pieces(parts: Vec<Bytes>, pause: Duration) -> OriginBody {
    let stream = futures_util::stream::iter(parts).then(move |p| async move {
        tokio::time::sleep(pause).await;
        Ok::<_, BoxError>(Frame::data(p))
    });
    StreamBody::new(stream).boxed_unsync()
}

/// A response with `headers` in the given order.
pub fn response(status: u16, headers: &[(&str, &str)], body: OriginBody) -> Response<OriginBody> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    for (k, v) in headers {
        r.headers_mut().append(
            http::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    r
}

/// Accepts connections on 127.0.0.1 (an ephemeral port) until the test ends, each handled
/// by `on_connection` in a task of its own.
pub async fn listen<F, Fut>(on_connection: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
    let addr = listener.local_addr().expect("origin addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(on_connection(tcp));
        }
    });
    addr
}

/// Makes a [`Handler`] of an async function of the request.
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<OriginBody>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// Serves HTTP/1.1 (upgrades allowed) on one connection with `handler`.
pub async fn serve_http1<IO>(io: IO, handler: Handler)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let h = handler.clone();
        async move { Ok::<_, Infallible>(h(req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await;
}

/// Starts an origin answering every request with `handler`.
pub async fn origin<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<OriginBody>> + Send + 'static,
{
    let handler = self::handler(handler);
    listen(move |tcp| serve_http1(tcp, handler.clone())).await
}

/// What reached an origin: method, path and query, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub body: Vec<u8>,
}

/// An origin that reads every request whole, records it, and answers `200 ok <target>`
/// with a Content-Length.
pub struct RecordingOrigin {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RecordingOrigin {
    pub async fn start() -> RecordingOrigin {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let addr = origin(move |req| {
            let record = record.clone();
            async move {
                let method = req.method().to_string();
                let target = req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let body = match req.into_body().collect().await {
                    Ok(b) => b.to_bytes().to_vec(),
                    Err(_) => b"<body error>".to_vec(),
                };
                let reply = format!("ok {target}");
                record.lock().expect("origin log").push(Seen {
                    method,
                    target,
                    body,
                });
                response(200, &[], full(reply))
            }
        })
        .await;
        RecordingOrigin { addr, seen }
    }

    /// Every request recorded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("origin log").clone()
    }

    /// The request targets recorded so far.
    pub fn targets(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.target).collect()
    }
}

/// An origin answering every request `200` with `content_type`, then the `extra` headers,
/// and `body`.
pub async fn serving(
    content_type: &'static str,
    extra: &'static [(&'static str, &'static str)],
    body: impl Into<Bytes>,
) -> SocketAddr {
    let body = body.into();
    origin(move |_req| {
        let body = body.clone();
        async move {
            let mut headers = vec![("content-type", content_type)];
            headers.extend_from_slice(extra);
            response(200, &headers, full(body))
        }
    })
    .await
}
