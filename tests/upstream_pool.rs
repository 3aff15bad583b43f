//! Kept-alive connections to the origin, end to end: the redirector's pass-through
//! (`geoline::server::start`, a real listener) and the rewriting proxy (`serve_proxy`) in
//! front of an origin on loopback that counts the connections it accepts. A connection is
//! used again once a response has been read to its end, and never after a failed one.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::http::{self, connect, read_until_closed};
use common::origin::{OriginBody, full, response, serve_http1};
use common::proxy::{builder, decode, encode, get, read, start};
use common::{TempDir, site};
use geoline::config::Config;
use geoline::server::{self, Running};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

const ABROAD: &str = "8.8.8.8";

/// An origin serving every connection with `answer`, and the number of connections it
/// has accepted.
async fn counting_origin<F>(answer: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(&str) -> hyper::Response<OriginBody> + Send + Sync + 'static,
{
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let answer = Arc::new(answer);
    let handler = common::origin::handler(move |req| {
        let answer = answer.clone();
        async move {
            let path = req.uri().path().to_string();
            answer(&path)
        }
    });
    let addr = common::origin::listen(move |tcp| {
        counter.fetch_add(1, Ordering::SeqCst);
        serve_http1(tcp, handler.clone())
    })
    .await;
    (addr, accepted)
}

/// `200 origin <path>`, except under `/broken`: a body announced as 100 bytes that fails
/// 100 ms after its first 5, so that the origin aborts the connection mid-response (once
/// what came before has reached the client).
fn answer(path: &str) -> hyper::Response<OriginBody> {
    if path == "/broken" {
        let first = futures_util::stream::iter([Ok(Frame::data(Bytes::from_static(b"12345")))]);
        let failure = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err::<Frame<Bytes>, common::origin::BoxError>("origin failed".into())
        });
        let frames = futures_util::StreamExt::chain(first, failure);
        return response(
            200,
            &[("content-length", "100")],
            StreamBody::new(frames).boxed_unsync(),
        );
    }
    response(
        200,
        &[("content-type", "text/plain")],
        full(format!("origin {path}")),
    )
}

async fn redirector(origin: SocketAddr) -> (Running, SocketAddr, TempDir) {
    let dir = TempDir::new("upstream-pool");
    let config = site::Config::redirector(&dir, "127.0.0.1", origin);
    let path = dir.write("geoline.toml", &config.to_string());
    let config = Config::load(&path).expect("config loads");
    let running = server::start(&config).await.expect("server starts");
    let addr = running.redirect[0];
    (running, addr, dir)
}

/// `GET path` for example.com from a client abroad (as the trusted proxy says).
fn from_abroad(path: &str) -> String {
    http::request(
        "GET",
        "example.com",
        path,
        &[&format!("X-Forwarded-For: {ABROAD}")],
    )
}

/// Sends [`from_abroad`] on a connection of its own and checks that the origin's answer
/// came back.
async fn origin_answers(redirect: SocketAddr, path: &str) {
    let mut c = connect(redirect, "127.0.0.1").await;
    let resp = http::exchange(
        &mut c,
        from_abroad(path).as_bytes(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.body, format!("origin {path}"));
}

#[tokio::test]
async fn the_pass_through_uses_one_origin_connection_for_many_clients() {
    let (origin, accepted) = counting_origin(answer).await;
    let (running, redirect, _dir) = redirector(origin).await;
    for i in 0..5 {
        origin_answers(redirect, &format!("/p{i}")).await;
    }
    // Five clients, one after the other, each on a connection of its own: the origin saw
    // one connection.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    running.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_failed_is_not_used_again() {
    let (origin, accepted) = counting_origin(answer).await;
    let (running, redirect, _dir) = redirector(origin).await;
    origin_answers(redirect, "/first").await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // The origin breaks off a response on the pooled connection: the client gets what
    // came, then the connection to it closes too.
    let mut c = connect(redirect, "127.0.0.1").await;
    tokio::io::AsyncWriteExt::write_all(&mut c, from_abroad("/broken").as_bytes())
        .await
        .expect("write");
    let raw = read_until_closed(&mut c, Duration::from_secs(10)).await;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n12345"), "{raw}");

    // The next request is not sent on the broken connection but on a new one, which is
    // then kept.
    origin_answers(redirect, "/after").await;
    origin_answers(redirect, "/again").await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    running.shutdown().await;
}

#[tokio::test]
async fn rewritten_gzip_bodies_give_their_connection_back() {
    let page = "<a href=\"https://example.com/x\">example.com</a>\n".repeat(200);
    let gzipped = Bytes::from(encode("gzip", page.as_bytes()).await);
    let (origin, accepted) = counting_origin(move |_| {
        response(
            200,
            &[
                ("content-type", "text/html"),
                ("content-encoding", "gzip"),
                ("content-length", &gzipped.len().to_string()),
            ],
            full(gzipped.clone()),
        )
    })
    .await;
    let proxy = start(builder(origin).build().expect("proxy")).await;
    let expected = page.replace("example.com", "example.cn");
    for _ in 0..4 {
        let (status, headers, body) =
            read(get(proxy, "example.cn", "/", &[("accept-encoding", "gzip")]).await).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(decode("gzip", &body).await, expected.as_bytes());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
