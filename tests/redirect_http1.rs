//! The redirector's own HTTP/1.1 path on plain listeners (src/http/http1.rs), end to end
//! over real sockets: the exact bytes of its responses (pipelined, HTTP/1.0 with and
//! without keep-alive, HEAD), a head split across many writes, and what it hands to hyper
//! with the bytes already read (bodies passed through intact, oversized and bad heads),
//! the idle timeout and the drain. And the first read of a new connection, made by the
//! accept loop before the connection has a task or is registered with the reactor
//! (`http1::first_read`): a request that closes its connection answered, logged and closed
//! from there, a pipelined pair in one packet, a request arriving in two pieces after a
//! delay, a client that sends nothing; on the single-threaded runtime (the accept loop
//! reads) and the multi-threaded one (the connection's task reads). Those requests are
//! written with a blocking socket before the test yields to the server, so that the bytes
//! are there when the connection is accepted: what the first read sees is not left to a
//! race.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{self, connect, read_until_closed};
use common::origin::{full, response};
use common::{TempDir, site};
use geoline::config::Config;
use geoline::server::{self, Running};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAINLAND: &str = "X-Forwarded-For: 1.2.4.8";
const ABROAD: &str = "X-Forwarded-For: 8.8.8.8";
const TRUSTED: &str = "127.0.0.1";
const WITHIN: Duration = Duration::from_secs(10);

/// The redirect page for `location` (nothing in it to escape).
fn page(location: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><title>301 Moved Permanently</title></head>\
         <body><h1>Moved Permanently</h1><p><a href=\"{location}\">{location}</a></p></body></html>\n"
    )
}

/// The 301 to `location` as sent to an HTTP/1.1 client (`version` `1.0` for HTTP/1.0),
/// with `connection` if any, and its date as `D`; without the page for `HEAD`.
fn redirect_bytes(version: &str, location: &str, connection: Option<&str>, head: bool) -> String {
    let body = page(location);
    let connection = connection.map_or(String::new(), |c| format!("connection: {c}\r\n"));
    format!(
        "HTTP/{version} 301 Moved Permanently\r\nlocation: {location}\r\n\
         cache-control: private, max-age=3600\r\ncontent-type: text/html; charset=utf-8\r\n\
         {connection}content-length: {}\r\ndate: D\r\n\r\n{}",
        body.len(),
        if head { "" } else { body.as_str() }
    )
}

/// `raw` with every `date` value replaced by `D`, after checking it is an IMF-fixdate.
fn undated(raw: &[u8]) -> String {
    let text = String::from_utf8(raw.to_vec()).expect("UTF-8");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\r\ndate: ") {
        let (before, after) = rest.split_at(i + "\r\ndate: ".len());
        out.push_str(before);
        let end = after.find("\r\n").expect("end of the date line");
        let date = &after[..end];
        assert_eq!(date.len(), 29, "{date:?}");
        assert!(
            date.ends_with(" GMT") && date.as_bytes()[3] == b',',
            "{date:?}"
        );
        out.push('D');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Reads until `expected` bytes have come (or the peer closed), at most [`WITHIN`].
async fn read_n(s: &mut TcpStream, expected: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    while out.len() < expected {
        match tokio::time::timeout(WITHIN, s.read(&mut chunk)).await {
            Err(_) => panic!("only {:?}", String::from_utf8_lossy(&out)),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
        }
    }
    out
}

struct Server {
    running: Running,
    http: SocketAddr,
    /// Holds the configuration and `access.log`.
    dir: TempDir,
}

/// An origin that echoes what reached it: method, target, framing and body.
async fn echo_origin() -> SocketAddr {
    common::origin::origin(|req| async move {
        let method = req.method().to_string();
        let target = req.uri().to_string();
        let framing = ["content-length", "transfer-encoding"]
            .map(|n| {
                req.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string()
            })
            .join(" ");
        let body = req.into_body().collect().await.expect("body").to_bytes();
        let text = format!(
            "{method} {target} {framing} {}",
            String::from_utf8_lossy(&body)
        );
        response(200, &[("x-origin", "yes")], full(text))
    })
    .await
}

async fn start(header_read_timeout_secs: u64) -> Server {
    let dir = TempDir::new("redirect-http1");
    let config = site::Config::redirector(&dir, TRUSTED, echo_origin().await).set(
        "[redirect]",
        &[
            &format!("header_read_timeout_secs = {header_read_timeout_secs}"),
            "max_header_bytes = 16384",
            "max_headers = 50",
            r#"access_log = "access.log""#,
        ],
    );
    let path = dir.write("geoline.toml", &config.to_string());
    let config = Config::load(&path).expect("config loads");
    let running = server::start(&config).await.expect("server starts");
    let [http] = running.redirect[..] else {
        panic!("one listener: {:?}", running.redirect)
    };
    Server { running, http, dir }
}

/// A connection to `to` on which `sent` was written before anything else ran.
fn sent_at_once(to: SocketAddr, sent: &str) -> TcpStream {
    let mut c = std::net::TcpStream::connect(to).expect("connect");
    std::io::Write::write_all(&mut c, sent.as_bytes()).expect("write");
    c.set_nonblocking(true).expect("non-blocking");
    TcpStream::from_std(c).expect("tokio stream")
}

/// The access log's entries once the server has shut down (which flushes it).
async fn shut_down_and_read_log(s: Server) -> Vec<serde_json::Value> {
    let Server { running, dir, .. } = s;
    running.shutdown().await;
    read_log(&dir)
}

fn read_log(dir: &TempDir) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.path().join("access.log"))
        .expect("access log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

fn get(host: &str, path: &str, extra: &[&str]) -> String {
    http::request("GET", host, path, extra)
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_with_exact_bytes() {
    let s = start(10).await;
    let mut c = connect(s.http, TRUSTED).await;
    let sent = [
        get("example.com", "/a/b?c=1", &[MAINLAND]),
        get("127.0.0.1", "/healthz", &[]),
        get("example.org", "/x", &[MAINLAND]),
        get(
            "www.example.com",
            "/last#frag",
            &[MAINLAND, "Connection: close"],
        ),
    ]
    .concat();
    c.write_all(sent.as_bytes()).await.expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    let misdirected = "geoline redirect: no redirect rule covers this host; \
                       this server only answers for the domains it is configured with\n";
    let expected = [
        redirect_bytes("1.1", "https://example.cn/a/b?c=1", None, false),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n\
         cache-control: no-store\r\ncontent-length: 3\r\ndate: D\r\n\r\nok\n"
            .to_string(),
        format!(
            "HTTP/1.1 421 Misdirected Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
             cache-control: no-store\r\ncontent-length: {}\r\ndate: D\r\n\r\n{misdirected}",
            misdirected.len()
        ),
        // The fragment is cut as hyper's `Uri` cuts it; `Connection: close` is answered
        // in kind and the connection closed.
        redirect_bytes("1.1", "https://www.example.cn/last", Some("close"), false),
    ]
    .concat();
    assert_eq!(undated(&raw), expected);
    s.running.shutdown().await;
}

#[tokio::test]
async fn http_1_0_keeps_the_connection_only_when_asked() {
    let s = start(10).await;
    // Without keep-alive: an HTTP/1.0 answer, then the connection is closed.
    let mut c = connect(s.http, TRUSTED).await;
    c.write_all(format!("GET /old HTTP/1.0\r\nHost: example.com\r\n{MAINLAND}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    assert_eq!(
        undated(&raw),
        redirect_bytes("1.0", "https://example.cn/old", None, false)
    );
    // With keep-alive: said back, and the connection serves a second request.
    let mut c = connect(s.http, TRUSTED).await;
    let one = format!(
        "GET /one HTTP/1.0\r\nHost: example.com\r\nConnection: Keep-Alive\r\n{MAINLAND}\r\n\r\n"
    );
    c.write_all(one.as_bytes()).await.expect("write");
    let expected = redirect_bytes("1.0", "https://example.cn/one", Some("keep-alive"), false);
    let raw = read_n(&mut c, expected.len()).await;
    assert_eq!(undated(&raw), expected);
    let two = format!("GET /two HTTP/1.0\r\nHost: example.com\r\n{MAINLAND}\r\n\r\n");
    c.write_all(two.as_bytes()).await.expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    assert_eq!(
        undated(&raw),
        redirect_bytes("1.0", "https://example.cn/two", None, false)
    );
    // `close` wins over a `keep-alive` before it (hyper's rule).
    let mut c = connect(s.http, TRUSTED).await;
    let both = format!(
        "GET /both HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\nConnection: x, Close\r\n{MAINLAND}\r\n\r\n"
    );
    c.write_all(both.as_bytes()).await.expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    assert_eq!(
        undated(&raw),
        redirect_bytes("1.1", "https://example.cn/both", Some("close"), false)
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn head_gets_the_length_without_the_body() {
    let s = start(10).await;
    let mut c = connect(s.http, TRUSTED).await;
    let sent = [
        http::request("HEAD", "example.com", "/h", &[MAINLAND]),
        http::request("HEAD", "10.0.0.1", "/healthz", &[]),
        get("example.com", "/after", &[MAINLAND, "Connection: close"]),
    ]
    .concat();
    c.write_all(sent.as_bytes()).await.expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    let expected = [
        redirect_bytes("1.1", "https://example.cn/h", None, true),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n\
         cache-control: no-store\r\ncontent-length: 3\r\ndate: D\r\n\r\n"
            .to_string(),
        redirect_bytes("1.1", "https://example.cn/after", Some("close"), false),
    ]
    .concat();
    assert_eq!(undated(&raw), expected);
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_head_split_across_many_writes_is_answered() {
    let s = start(10).await;
    let mut c = connect(s.http, TRUSTED).await;
    let sent = get("example.com", "/split?x=1", &[MAINLAND]);
    for b in sent.as_bytes().chunks(3) {
        c.write_all(b).await.expect("write");
        c.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let expected = redirect_bytes("1.1", "https://example.cn/split?x=1", None, false);
    let raw = read_n(&mut c, expected.len()).await;
    assert_eq!(undated(&raw), expected);
    // The connection stays open for the next one.
    c.write_all(get("example.com", "/next", &[MAINLAND]).as_bytes())
        .await
        .expect("write");
    let expected = redirect_bytes("1.1", "https://example.cn/next", None, false);
    assert_eq!(undated(&read_n(&mut c, expected.len()).await), expected);
    s.running.shutdown().await;
}

#[tokio::test]
async fn bodies_are_passed_through_intact_by_hyper_after_the_answered_requests() {
    let s = start(10).await;
    let mut c = connect(s.http, TRUSTED).await;
    // A redirect answered on the own path, then a request with a body: hyper takes the
    // connection from there with the bytes already read, so both bodies reach the origin
    // whole, and a redirect after them is still answered.
    let sent = [
        get("example.com", "/first", &[MAINLAND]),
        "POST /form?a=1 HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 8.8.8.8\r\n\
         Content-Length: 11\r\n\r\nhello=world"
            .to_string(),
        "PUT /chunked HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 8.8.8.8\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            .to_string(),
        get("example.com", "/last", &[MAINLAND, "Connection: close"]),
    ]
    .concat();
    c.write_all(sent.as_bytes()).await.expect("write");
    let raw = undated(&read_until_closed(&mut c, WITHIN).await);
    let first = redirect_bytes("1.1", "https://example.cn/first", None, false);
    assert!(raw.starts_with(&first), "{raw}");
    let rest = &raw[first.len()..];
    let echoed = |text: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nx-origin: yes\r\ncontent-length: {}\r\ndate: D\r\n\r\n{text}",
            text.len()
        )
    };
    let expected = [
        echoed("POST /form?a=1 11 - hello=world"),
        echoed("PUT /chunked - chunked hello world"),
        redirect_bytes("1.1", "https://example.cn/last", Some("close"), false),
    ]
    .concat();
    assert_eq!(rest, expected);

    // A body on a connection's first request, answered on the spot by a redirect.
    let mut c = connect(s.http, TRUSTED).await;
    let post = format!(
        "POST /p HTTP/1.1\r\nHost: example.com\r\n{MAINLAND}\r\nContent-Length: 3\r\n\
         Connection: close\r\n\r\nabc"
    );
    c.write_all(post.as_bytes()).await.expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    assert_eq!(
        undated(&raw),
        redirect_bytes("1.1", "https://example.cn/p", Some("close"), false)
    );
    // A bodyless pass-through: the whole exchange through hyper, the origin's answer back
    // (its own `date` among its headers).
    let mut c = connect(s.http, TRUSTED).await;
    c.write_all(get("www.example.com", "/g", &[ABROAD, "Connection: close"]).as_bytes())
        .await
        .expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    let text = "GET /g - - ";
    assert_eq!(
        undated(&raw),
        format!(
            "HTTP/1.1 200 OK\r\nx-origin: yes\r\ncontent-length: {}\r\ndate: D\r\n\
             connection: close\r\n\r\n{text}",
            text.len()
        )
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn oversized_and_bad_heads_get_hypers_answers() {
    let s = start(10).await;
    let raw = |bytes: String| async move {
        let mut c = connect(s.http, TRUSTED).await;
        let _ = c.write_all(bytes.as_bytes()).await;
        undated(&read_until_closed(&mut c, WITHIN).await)
    };
    let too_large = "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                     content-length: 0\r\ndate: D\r\n\r\n";
    let bad = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\
               date: D\r\n\r\n";
    // Over max_header_bytes (16 KiB here), in one write and after an answered request.
    let big = format!("X-Big: {}", "a".repeat(20_000));
    assert_eq!(raw(get("example.com", "/", &[&big])).await, too_large);
    let first = redirect_bytes("1.1", "https://example.cn/ok", None, false);
    assert_eq!(
        raw([
            get("example.com", "/ok", &[MAINLAND]),
            get("example.com", "/", &[&big])
        ]
        .concat())
        .await,
        format!("{first}{too_large}")
    );
    // More fields than max_headers (50 here).
    let many: Vec<String> = (0..60).map(|i| format!("X-H{i}: {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(raw(get("example.com", "/", &many)).await, too_large);
    // Bad request lines and fields, alone and after an answered request.
    for head in [
        "GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n".to_string(),
        "GET /a\x7fb HTTP/1.1\r\nHost: example.com\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x01b\r\n\r\n".to_string(),
        "GET / HTTP/3.0\r\nHost: example.com\r\n\r\n".to_string(),
    ] {
        assert_eq!(raw(head.clone()).await, bad, "{head:?}");
        let after = [get("example.com", "/ok", &[MAINLAND]), head.clone()].concat();
        assert_eq!(raw(after).await, format!("{first}{bad}"), "{head:?}");
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let s = start(1).await;
    // Idle after an answered request: closed within two header timeouts.
    let mut idle = connect(s.http, TRUSTED).await;
    idle.write_all(get("example.com", "/i", &[MAINLAND]).as_bytes())
        .await
        .expect("write");
    let expected = redirect_bytes("1.1", "https://example.cn/i", None, false);
    assert_eq!(undated(&read_n(&mut idle, expected.len()).await), expected);
    let started = Instant::now();
    assert_eq!(
        read_until_closed(&mut idle, Duration::from_secs(5)).await,
        b""
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_the_connections_on_the_own_path() {
    let s = start(10).await;
    // At shutdown: an idle kept-alive connection is closed at once; one in the middle of a
    // head gets its answer with `connection: close`, then is closed.
    let mut kept = connect(s.http, TRUSTED).await;
    kept.write_all(get("example.com", "/k", &[MAINLAND]).as_bytes())
        .await
        .expect("write");
    let expected = redirect_bytes("1.1", "https://example.cn/k", None, false);
    assert_eq!(undated(&read_n(&mut kept, expected.len()).await), expected);
    let mut partial = connect(s.http, TRUSTED).await;
    let sent = get("example.com", "/late", &[MAINLAND]);
    let (begun, end) = sent.split_at(10);
    partial.write_all(begun.as_bytes()).await.expect("write");
    // Accepted and read before the drain: one with nothing sent, one with a head begun,
    // both left by their first read to their tasks.
    let mut silent = sent_at_once(s.http, "");
    let first_sent = get("example.com", "/first-read", &[MAINLAND]);
    let (first_begun, first_end) = first_sent.split_at(10);
    let mut first_partial = sent_at_once(s.http, first_begun);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let Server { running, dir, .. } = s;
    let shutdown = tokio::spawn(running.shutdown());
    for idle in [&mut kept, &mut silent] {
        assert_eq!(read_until_closed(idle, Duration::from_secs(5)).await, b"");
    }
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    for (c, end, path) in [
        (&mut partial, end, "/late"),
        (&mut first_partial, first_end, "/first-read"),
    ] {
        c.write_all(end.as_bytes()).await.expect("write");
        assert_eq!(
            undated(&read_until_closed(c, Duration::from_secs(5)).await),
            redirect_bytes(
                "1.1",
                &format!("https://example.cn{path}"),
                Some("close"),
                false
            )
        );
    }
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown within the drain")
        .expect("shutdown task");
    let paths: Vec<_> = read_log(&dir).iter().map(|e| e["path"].clone()).collect();
    assert_eq!(paths, ["/k", "/late", "/first-read"]);
}

async fn closing_request_is_answered_logged_and_closed() {
    let s = start(10).await;
    let started = Instant::now();
    let mut c = sent_at_once(
        s.http,
        &get("example.com", "/a/b?c=1", &[MAINLAND, "Connection: close"]),
    );
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("1.1", "https://example.cn/a/b?c=1", Some("close"), false)
    );
    let elapsed = started.elapsed();
    let log = shut_down_and_read_log(s).await;
    let [entry] = &log[..] else {
        panic!("one line: {log:?}")
    };
    assert_eq!(entry["client"], "1.2.4.8", "{entry}");
    assert_eq!(entry["line"], "china", "{entry}");
    assert_eq!(entry["host"], "example.com", "{entry}");
    assert_eq!(entry["method"], "GET", "{entry}");
    assert_eq!(entry["path"], "/a/b?c=1", "{entry}");
    assert_eq!(entry["status"], 301, "{entry}");
    assert_eq!(entry["proto"], "HTTP/1.1", "{entry}");
    let body = redirect_bytes("1.1", "https://example.cn/a/b?c=1", None, false);
    let body_len = body.len() - body.find("\r\n\r\n").expect("end of head") - 4;
    assert_eq!(entry["bytes"], body_len, "{entry}");
    // The time the request took, measured: not more than the client waited.
    let duration = entry["duration_us"]
        .as_u64()
        .unwrap_or_else(|| panic!("a duration in {entry}"));
    assert!(u128::from(duration) <= elapsed.as_micros(), "{entry}");
}

#[tokio::test]
async fn a_request_that_closes_is_answered_logged_and_closed() {
    closing_request_is_answered_logged_and_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_closes_is_answered_logged_and_closed_on_workers() {
    closing_request_is_answered_logged_and_closed().await;
}

async fn pipelined_pair_in_one_packet() {
    let s = start(10).await;
    let pair = [
        get("example.com", "/one", &[MAINLAND]),
        get("example.com", "/two", &[MAINLAND, "Connection: close"]),
    ]
    .concat();
    let mut c = sent_at_once(s.http, &pair);
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        [
            redirect_bytes("1.1", "https://example.cn/one", None, false),
            redirect_bytes("1.1", "https://example.cn/two", Some("close"), false),
        ]
        .concat()
    );
    // A kept-alive pair: both answered by the first read, then the connection goes on.
    let mut c = sent_at_once(
        s.http,
        &[
            get("example.com", "/three", &[MAINLAND]),
            get("example.com", "/four", &[MAINLAND]),
        ]
        .concat(),
    );
    let expected = [
        redirect_bytes("1.1", "https://example.cn/three", None, false),
        redirect_bytes("1.1", "https://example.cn/four", None, false),
    ]
    .concat();
    assert_eq!(undated(&read_n(&mut c, expected.len()).await), expected);
    c.write_all(get("example.com", "/five", &[MAINLAND, "Connection: close"]).as_bytes())
        .await
        .expect("write");
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("1.1", "https://example.cn/five", Some("close"), false)
    );
    let log = shut_down_and_read_log(s).await;
    let paths: Vec<_> = log.iter().map(|e| e["path"].clone()).collect();
    assert_eq!(paths, ["/one", "/two", "/three", "/four", "/five"]);
}

#[tokio::test]
async fn a_pipelined_pair_in_one_packet_is_answered_in_order() {
    pipelined_pair_in_one_packet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_pair_in_one_packet_is_answered_in_order_on_workers() {
    pipelined_pair_in_one_packet().await;
}

async fn request_in_two_pieces() {
    let s = start(10).await;
    let sent = get("example.com", "/late?x=1", &[MAINLAND, "Connection: close"]);
    let (begun, end) = sent.split_at(25);
    let mut c = sent_at_once(s.http, begun);
    // The first read has the beginning only; the rest comes later, to the connection's
    // task.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.write_all(end.as_bytes()).await.expect("write");
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("1.1", "https://example.cn/late?x=1", Some("close"), false)
    );
    // Nothing at all at first.
    let mut c = sent_at_once(s.http, "");
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.write_all(get("example.com", "/later", &[MAINLAND, "Connection: close"]).as_bytes())
        .await
        .expect("write");
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("1.1", "https://example.cn/later", Some("close"), false)
    );
    let log = shut_down_and_read_log(s).await;
    assert_eq!(log.len(), 2, "{log:?}");
}

#[tokio::test]
async fn a_request_in_two_pieces_after_a_delay_is_answered() {
    request_in_two_pieces().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_two_pieces_after_a_delay_is_answered_on_workers() {
    request_in_two_pieces().await;
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_timed_out() {
    let s = start(1).await;
    let started = Instant::now();
    let mut silent = sent_at_once(s.http, "");
    let mut begun = sent_at_once(s.http, "GET /never-ends HTTP/1.1\r\nHost: exa");
    // Within one or two header timeouts, both closed without an answer.
    for c in [&mut silent, &mut begun] {
        assert_eq!(read_until_closed(c, Duration::from_secs(5)).await, b"");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let log = shut_down_and_read_log(s).await;
    assert!(log.is_empty(), "{log:?}");
}
