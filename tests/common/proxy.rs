//! The library proxy on an ephemeral port, and the hyper client the proxy tests talk to
//! it with (where a test needs a streaming body or hyper's own view of a response; raw
//! bytes are [`super::http`]'s).

use std::net::SocketAddr;

use bytes::Bytes;
use geoline::proxy::{Proxy, ProxyBuilder, serve_proxy};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;

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

/// `data` in the content coding named as `Content-Encoding` names it (gzip, br, deflate,
/// zstd).
pub async fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder};
    match coding {
        "gzip" => read_all(GzipEncoder::new(data)).await,
        "br" => read_all(BrotliEncoder::new(data)).await,
        "deflate" => read_all(ZlibEncoder::new(data)).await,
        "zstd" => read_all(ZstdEncoder::new(data)).await,
        other => panic!("no encoder for {other}"),
    }
}

/// `data` decoded from the content coding `coding` (gzip, br, deflate, zstd).
pub async fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
    match coding {
        "gzip" => read_all(GzipDecoder::new(data)).await,
        "br" => read_all(BrotliDecoder::new(data)).await,
        "deflate" => read_all(ZlibDecoder::new(data)).await,
        "zstd" => read_all(ZstdDecoder::new(data)).await,
        other => panic!("no decoder for {other}"),
    }
}

async fn read_all(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("a valid coding");
    out
}
