//! The redirector's first read of a new plain connection, made by the accept loop before
//! the connection has a task or is registered with the reactor (src/http/listener.rs,
//! `http1::first_read`), end to end over real sockets: a request that closes its
//! connection answered, logged and closed from there; a pipelined pair in one packet; a
//! request arriving in two pieces after a delay; a client that sends nothing, timed out;
//! a connection still waiting for its request when the drain begins. Each on the
//! single-threaded runtime (the accept loop reads) and the multi-threaded one (the
//! connection's task reads).
//!
//! The requests are written with a blocking socket before the test yields to the server,
//! so that the bytes are there when the connection is accepted: what the first read sees
//! is not left to a race.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::read_until_closed;
use common::origin::{full, response};
use common::{TempDir, site};
use geoline::config::Config;
use geoline::server::{self, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAINLAND: &str = "X-Forwarded-For: 1.2.4.8";
const WITHIN: Duration = Duration::from_secs(10);

struct Server {
    running: Running,
    http: SocketAddr,
    dir: TempDir,
}

async fn start(header_read_timeout_secs: u64) -> Server {
    let dir = TempDir::new("redirect-first-read");
    let origin =
        common::origin::origin(|_req| async move { response(200, &[], full("from the origin")) })
            .await;
    let config = site::Config::redirector(&dir, "127.0.0.1", origin).set(
        "[redirect]",
        &[
            &format!("header_read_timeout_secs = {header_read_timeout_secs}"),
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
    c.write_all(sent.as_bytes()).expect("write");
    c.set_nonblocking(true).expect("non-blocking");
    TcpStream::from_std(c).expect("tokio stream")
}

fn get(path: &str, extra: &[&str]) -> String {
    common::http::request("GET", "example.com", path, extra)
}

/// The 301 to `location` with `connection` if any, its date as `D`.
fn redirect_bytes(location: &str, connection: Option<&str>) -> String {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>301 Moved Permanently</title></head>\
         <body><h1>Moved Permanently</h1><p><a href=\"{location}\">{location}</a></p></body></html>\n"
    );
    let connection = connection.map_or(String::new(), |c| format!("connection: {c}\r\n"));
    format!(
        "HTTP/1.1 301 Moved Permanently\r\nlocation: {location}\r\n\
         cache-control: private, max-age=3600\r\ncontent-type: text/html; charset=utf-8\r\n\
         {connection}content-length: {}\r\ndate: D\r\n\r\n{body}",
        body.len()
    )
}

/// `raw` with every `date` value (29 bytes) replaced by `D`.
fn undated(raw: &[u8]) -> String {
    let text = String::from_utf8(raw.to_vec()).expect("UTF-8");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\r\ndate: ") {
        let (before, after) = rest.split_at(i + "\r\ndate: ".len());
        out.push_str(before);
        assert!(
            after.len() >= 29 && after[..29].ends_with(" GMT"),
            "{after:?}"
        );
        out.push('D');
        rest = &after[29..];
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

/// The access log's lines once the server has shut down (which flushes it).
async fn shut_down_and_read_log(s: Server) -> Vec<String> {
    let Server { running, dir, .. } = s;
    running.shutdown().await;
    std::fs::read_to_string(dir.path().join("access.log"))
        .expect("access log")
        .lines()
        .map(str::to_string)
        .collect()
}

async fn closing_request_is_answered_logged_and_closed() {
    let s = start(10).await;
    let started = Instant::now();
    let mut c = sent_at_once(s.http, &get("/a/b?c=1", &[MAINLAND, "Connection: close"]));
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("https://example.cn/a/b?c=1", Some("close"))
    );
    let elapsed = started.elapsed();
    let log = shut_down_and_read_log(s).await;
    let [line] = &log[..] else {
        panic!("one line: {log:?}")
    };
    let entry: serde_json::Value = serde_json::from_str(line).expect("JSON");
    assert_eq!(entry["client"], "1.2.4.8", "{line}");
    assert_eq!(entry["line"], "china", "{line}");
    assert_eq!(entry["host"], "example.com", "{line}");
    assert_eq!(entry["method"], "GET", "{line}");
    assert_eq!(entry["path"], "/a/b?c=1", "{line}");
    assert_eq!(entry["status"], 301, "{line}");
    assert_eq!(entry["proto"], "HTTP/1.1", "{line}");
    let body = redirect_bytes("https://example.cn/a/b?c=1", None);
    let body_len = body.len() - body.find("\r\n\r\n").expect("end of head") - 4;
    assert_eq!(entry["bytes"], body_len, "{line}");
    // The time the request took, measured: not more than the client waited.
    let duration = entry["duration_us"]
        .as_u64()
        .unwrap_or_else(|| panic!("a duration in {line}"));
    assert!(u128::from(duration) <= elapsed.as_micros(), "{line}");
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
        get("/one", &[MAINLAND]),
        get("/two", &[MAINLAND, "Connection: close"]),
    ]
    .concat();
    let mut c = sent_at_once(s.http, &pair);
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        [
            redirect_bytes("https://example.cn/one", None),
            redirect_bytes("https://example.cn/two", Some("close")),
        ]
        .concat()
    );
    // A kept-alive pair: both answered by the first read, then the connection goes on.
    let mut c = sent_at_once(
        s.http,
        &[get("/three", &[MAINLAND]), get("/four", &[MAINLAND])].concat(),
    );
    let expected = [
        redirect_bytes("https://example.cn/three", None),
        redirect_bytes("https://example.cn/four", None),
    ]
    .concat();
    assert_eq!(undated(&read_n(&mut c, expected.len()).await), expected);
    c.write_all(get("/five", &[MAINLAND, "Connection: close"]).as_bytes())
        .await
        .expect("write");
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("https://example.cn/five", Some("close"))
    );
    let log = shut_down_and_read_log(s).await;
    let paths: Vec<String> = log
        .iter()
        .map(|l| {
            let entry: serde_json::Value = serde_json::from_str(l).expect("JSON");
            entry["path"].as_str().expect("path").to_string()
        })
        .collect();
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
    let sent = get("/late?x=1", &[MAINLAND, "Connection: close"]);
    let (begun, end) = sent.split_at(25);
    let mut c = sent_at_once(s.http, begun);
    // The first read has the beginning only; the rest comes later, to the connection's
    // task.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.write_all(end.as_bytes()).await.expect("write");
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("https://example.cn/late?x=1", Some("close"))
    );
    // Nothing at all at first.
    let mut c = sent_at_once(s.http, "");
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.write_all(get("/later", &[MAINLAND, "Connection: close"]).as_bytes())
        .await
        .expect("write");
    assert_eq!(
        undated(&read_until_closed(&mut c, WITHIN).await),
        redirect_bytes("https://example.cn/later", Some("close"))
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

#[tokio::test]
async fn connections_waiting_for_their_request_drain() {
    let s = start(10).await;
    // Accepted and read before the drain: one with nothing sent, one with a head begun.
    let mut silent = sent_at_once(s.http, "");
    let sent = get("/drained", &[MAINLAND]);
    let (begun, end) = sent.split_at(10);
    let mut partial = sent_at_once(s.http, begun);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let Server { running, dir, .. } = s;
    let shutdown = tokio::spawn(running.shutdown());
    // The one with nothing is closed at once, as an idle kept-alive one.
    assert_eq!(
        read_until_closed(&mut silent, Duration::from_secs(5)).await,
        b""
    );
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    // The one with a head begun gets its answer, told that the connection closes.
    partial.write_all(end.as_bytes()).await.expect("write");
    assert_eq!(
        undated(&read_until_closed(&mut partial, Duration::from_secs(5)).await),
        redirect_bytes("https://example.cn/drained", Some("close"))
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown within the drain")
        .expect("shutdown task");
    let log = std::fs::read_to_string(dir.path().join("access.log")).expect("access log");
    assert_eq!(log.lines().count(), 1, "{log}");
}
