//! Shared pieces of the proxy tests: an in-process origin, a running proxy, a client.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use geoline::proxy::{Proxy, ProxyBuilder, serve_proxy};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

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

/// A body sent as the given pieces, each flushed on its own with a short pause, so the proxy
/// really receives them apart.
pub fn pieces(parts: Vec<Bytes>, pause: Duration) -> OriginBody {
    let stream = futures_util::stream::iter(parts).then(move |p| async move {
        tokio::time::sleep(pause).await;
        Ok::<_, BoxError>(Frame::data(p))
    });
    StreamBody::new(stream).boxed_unsync()
}

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

/// Starts an origin answering every request with `handler`.
pub async fn origin<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<OriginBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
    let addr = listener.local_addr().expect("origin addr");
    let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// A builder for `example.cn ↔ example.com` (plus www and api) dialing `origin`.
pub fn builder(origin: SocketAddr) -> ProxyBuilder {
    Proxy::builder("http://example.com")
        .pair("example.cn", "example.com")
        .pair("www.example.cn", "www.example.com")
        .pair("api.example.cn", "api.example.com")
        .connect_to(origin)
}

/// Runs the proxy on an ephemeral port until the test ends.
pub async fn start(proxy: Proxy) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(serve_proxy(proxy, listener, std::future::pending()));
    addr
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Sends `GET path` with `Host: host` and the given headers to the proxy.
pub async fn get(
    proxy: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response<Incoming> {
    let mut req = Request::get(format!("http://{proxy}{path}"))
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .expect("request");
    for (k, v) in headers {
        req.headers_mut().append(
            http::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    client().request(req).await.expect("proxy answers")
}

/// Status, headers and the whole body.
pub async fn read(resp: Response<Incoming>) -> (StatusCode, HeaderMap, Bytes) {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

pub async fn gzip(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("gzip");
    out
}

pub async fn gunzip(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipDecoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("gunzip");
    out
}

pub async fn brotli(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::BrotliEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("brotli");
    out
}

pub async fn unbrotli(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::BrotliDecoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("unbrotli");
    out
}
