//! The redirector's own pass-through (src/redirect/pass/) end to end: a foreign client's
//! request on a plain listener sent to a plain-HTTP origin on a real socket that records
//! the exact bytes it receives and answers with scripted bytes, so that both directions are
//! asserted byte for byte: the origin's request (hop-by-hop fields gone, forwarding fields
//! set), responses relayed (length, chunked, no body, until close, large and streamed),
//! request bodies (length and chunked), the pool (one origin connection for many requests,
//! an idle one the origin closed, a pooled one closed as a request arrives: retried when
//! idempotent, a 502 when not), an origin down (502) and a slow one (504).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{access_line, connect, read_until_closed};
use common::{TempDir, site};
use geoline::config::Config;
use geoline::server::{self, Running};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TRUSTED: &str = "127.0.0.1";
const ABROAD: &str = "X-Forwarded-For: 8.8.8.8";
const WITHIN: Duration = Duration::from_secs(10);
const DATE: &str = "Date: Tue, 08 Dec 2026 01:00:00 GMT";

// ------------------------------------------------------------------------------------
// A scripted origin

/// One step of the origin's answer to a request.
#[derive(Clone)]
enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Close the connection (after the steps before it).
    Close,
}

fn write(bytes: impl AsRef<[u8]>) -> Step {
    Step::Write(bytes.as_ref().to_vec())
}

type Script = Arc<dyn Fn(&str, usize) -> Vec<Step> + Send + Sync>;

/// An origin on 127.0.0.1: each request read whole (its head, then a `Content-Length` or
/// chunked body) is recorded with the connection it came on and answered with the steps
/// the script gives for its head and its place on its connection (0 for the first).
struct Origin {
    addr: SocketAddr,
    /// Per connection accepted, in order, the raw requests it carried.
    seen: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Origin {
    async fn start(script: impl Fn(&str, usize) -> Vec<Step> + Send + Sync + 'static) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let script: Script = Arc::new(script);
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let index = {
                    let mut seen = record.lock().unwrap();
                    seen.push(Vec::new());
                    seen.len() - 1
                };
                tokio::spawn(serve(tcp, index, record.clone(), script.clone()));
            }
        });
        Origin { addr, seen }
    }

    /// The requests, per connection.
    fn seen(&self) -> Vec<Vec<String>> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn serve(
    mut tcp: TcpStream,
    index: usize,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    script: Script,
) {
    let mut buf = Vec::new();
    for place in 0.. {
        let Some(request) = read_request(&mut tcp, &mut buf).await else {
            return;
        };
        seen.lock().unwrap()[index].push(request.clone());
        let head = &request[..request.find("\r\n\r\n").expect("head")];
        for step in script(head, place) {
            match step {
                Step::Write(bytes) => {
                    if tcp.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Close => return,
            }
        }
    }
}

/// One whole request from `tcp` (`buf` holds what was read beyond the last one); `None`
/// when the peer closes first.
async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(tcp, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.parse::<usize>().expect("length"));
    let end = if head.contains("\r\ntransfer-encoding: chunked\r\n") {
        loop {
            if let Some(i) = buf[head_end..].windows(5).position(|w| w == b"0\r\n\r\n") {
                break head_end + i + 5;
            }
            read_more(tcp, buf).await?;
        }
    } else {
        let end = head_end + length.unwrap_or(0);
        while buf.len() < end {
            read_more(tcp, buf).await?;
        }
        end
    };
    let request = String::from_utf8(buf[..end].to_vec()).expect("text");
    buf.drain(..end);
    Some(request)
}

async fn read_more(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 16 * 1024];
    match tcp.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// `HTTP/1.1 200 OK` with `fields` and a `Content-Length` body.
fn ok(fields: &[&str], body: &str) -> Vec<Step> {
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    for f in fields {
        head.push_str(f);
        head.push_str("\r\n");
    }
    vec![write(format!(
        "{head}Content-Length: {}\r\n{DATE}\r\n\r\n{body}",
        body.len()
    ))]
}

/// The target of a request head.
fn target(head: &str) -> &str {
    head.split(' ').nth(1).expect("target")
}

// ------------------------------------------------------------------------------------
// The redirector

struct Redirector {
    running: Running,
    addr: SocketAddr,
    dir: TempDir,
}

/// The redirector in front of `origin`, its access log in a file, with `origin_keys`
/// added to `[redirect.origin]`.
async fn redirector(origin: SocketAddr, origin_keys: &[&str]) -> Redirector {
    let dir = TempDir::new("redirect-pass");
    let config = site::Config::redirector(&dir, TRUSTED, origin)
        .set("[redirect]", &[r#"access_log = "access.log""#])
        .set("[redirect.origin]", origin_keys);
    let path = dir.write("geoline.toml", &config.to_string());
    let config = Config::load(&path).expect("config loads");
    let running = server::start(&config).await.expect("server starts");
    let addr = running.redirect[0];
    Redirector { running, addr, dir }
}

impl Redirector {
    /// The access-log line whose `path` is `path`, once flushed.
    async fn access_line(&self, path: &str) -> serde_json::Value {
        access_line(&self.dir.path().join("access.log"), path).await
    }
}

/// Sends `method path` (from abroad, with `body` if it is a POST) on a connection of its
/// own that closes after it, and returns the response with its `date` as `D`.
async fn send(to: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut c = connect(to, TRUSTED).await;
    let length = if method == "POST" {
        format!("Content-Length: {}\r\n", body.len())
    } else {
        String::new()
    };
    c.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\n{length}\
             Connection: close\r\n\r\n{body}"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    undated(&String::from_utf8(read_until_closed(&mut c, WITHIN).await).expect("text"))
}

/// The redirector's own answer with `status_line` and `body`, its date as `D`.
fn own_answer(status_line: &str, body: &str) -> String {
    format!(
        "{status_line}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         cache-control: no-store\r\ncontent-length: {}\r\ndate: D\r\n\r\n{body}",
        body.len()
    )
}

/// Reads a response of `expected`'s length, where `date: D` stands for a date the
/// redirector wrote, and returns it with that date as `D`.
async fn read_undated(c: &mut (impl AsyncRead + Unpin), expected: &str) -> String {
    let extra = if expected.contains("\r\ndate: D\r\n") {
        28
    } else {
        0
    };
    undated(&read_n(c, expected.len() + extra).await)
}

/// Reads exactly `n` bytes.
async fn read_n(c: &mut (impl AsyncRead + Unpin), n: usize) -> String {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WITHIN, c.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    String::from_utf8(buf).expect("text")
}

/// `raw` with the value of a `date` field the redirector wrote replaced by `D`.
fn undated(raw: &str) -> String {
    match raw.find("\r\ndate: ") {
        Some(i) => {
            let start = i + "\r\ndate: ".len();
            format!("{}D{}", &raw[..start], &raw[start + 29..])
        }
        None => raw.to_string(),
    }
}

// ------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn the_origin_gets_the_clients_request_with_the_forwarding_fields_set() {
    let origin = Origin::start(|_, _| ok(&["Server: scripted"], "hello")).await;
    let r = redirector(origin.addr, &[]).await;
    let mut c = connect(r.addr, TRUSTED).await;
    let request = "GET /a/b?c=1 HTTP/1.1\r\nHost: WWW.Example.com:8080\r\nUser-Agent: t/1\r\n\
                   X-Forwarded-For: 8.8.8.8\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\
                   Keep-Alive: timeout=5\r\nTE: trailers\r\nForwarded: for=9.9.9.9\r\n\
                   X-Forwarded-Proto: https\r\nAccept: */*\r\nx-forwarded-for: 7.7.7.7\r\n\r\n";
    c.write_all(request.as_bytes()).await.expect("write");
    let expected =
        format!("HTTP/1.1 200 OK\r\nServer: scripted\r\nContent-Length: 5\r\n{DATE}\r\n\r\nhello");
    assert_eq!(read_n(&mut c, expected.len()).await, expected);
    // Hop-by-hop fields gone (`X-Hop` by the `Connection` naming it), `Host` naming the
    // origin, each forwarding field set in the place of the client's first one (the second
    // `X-Forwarded-For` dropped, as hyper's `HeaderMap::insert` does), `X-Forwarded-Host`
    // added last; the client's letter case kept.
    assert_eq!(
        origin.seen(),
        [[
            "GET /a/b?c=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: t/1\r\n\
             X-Forwarded-For: 8.8.8.8, 127.0.0.1\r\n\
             Forwarded: for=9.9.9.9, for=127.0.0.1;proto=http;host=\"WWW.Example.com:8080\"\r\n\
             X-Forwarded-Proto: http\r\nAccept: */*\r\n\
             x-forwarded-host: WWW.Example.com:8080\r\n\r\n"
        ]]
    );
    let line = r.access_line("/a/b?c=1").await;
    // The client address is the last `X-Forwarded-For` value (the trusted proxy's word).
    assert_eq!(line["client"], "7.7.7.7");
    assert_eq!(line["line"], "default");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], 5);
    r.running.shutdown().await;
}

#[tokio::test]
async fn responses_are_relayed_as_the_origin_framed_them() {
    let origin = Origin::start(|head, _| match target(head) {
        "/chunked" => vec![
            write(format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{DATE}\r\nConnection: keep-alive\r\n\
                 Keep-Alive: timeout=60\r\nAlt-Svc: h3=\":443\"\r\n\r\n5\r\nhello\r\n"
            )),
            Step::Sleep(Duration::from_millis(50)),
            write("6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
        ],
        "/head" => vec![write(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n{DATE}\r\n\r\n"
        ))],
        "/304" => vec![write(format!(
            "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n{DATE}\r\n\r\n"
        ))],
        "/hints" => vec![
            write("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"),
            write(format!("HTTP/1.1 204 No Content\r\n{DATE}\r\n\r\n")),
        ],
        "/reason" => vec![write("HTTP/1.1 299 Fine By Me\r\nContent-Length: 1\r\n\r\nx")],
        "/until-close" => vec![
            write(format!("HTTP/1.1 200 OK\r\n{DATE}\r\n\r\nabc")),
            Step::Sleep(Duration::from_millis(50)),
            write("def"),
            Step::Close,
        ],
        other => panic!("unexpected {other}"),
    })
    .await;
    let r = redirector(origin.addr, &[]).await;
    let get = |path: &str, method: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\n\r\n")
    };
    // All on one client connection, which stays open after each.
    let mut c = connect(r.addr, TRUSTED).await;
    for (path, method, expected) in [
        (
            "/chunked",
            "GET",
            // Chunk sizes, extensions and trailers as they came.
            format!(
                "HTTP/1.1 200 OK\r\n{DATE}\r\ntransfer-encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
            ),
        ),
        (
            "/head",
            "HEAD",
            format!("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n{DATE}\r\n\r\n"),
        ),
        (
            "/304",
            "GET",
            format!("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n{DATE}\r\n\r\n"),
        ),
        (
            "/hints",
            "GET",
            format!("HTTP/1.1 204 No Content\r\n{DATE}\r\n\r\n"),
        ),
        (
            "/reason",
            "GET",
            "HTTP/1.1 299 Fine By Me\r\nContent-Length: 1\r\ndate: D\r\n\r\nx".to_string(),
        ),
    ] {
        c.write_all(get(path, method).as_bytes())
            .await
            .expect("write");
        assert_eq!(read_undated(&mut c, &expected).await, expected, "{path}");
    }
    assert_eq!(r.access_line("/chunked").await["bytes"], 11);
    assert_eq!(r.access_line("/head").await["bytes"], 0);
    // One origin connection for all of them.
    assert_eq!(origin.connections(), 1);
    assert_eq!(origin.seen()[0].len(), 5);

    // A body without a length ends when the origin closes: so does the client's connection.
    c.write_all(get("/until-close", "GET").as_bytes())
        .await
        .expect("write");
    let raw = read_until_closed(&mut c, WITHIN).await;
    assert_eq!(
        String::from_utf8(raw).expect("text"),
        format!("HTTP/1.1 200 OK\r\n{DATE}\r\nconnection: close\r\n\r\nabcdef")
    );
    assert_eq!(r.access_line("/until-close").await["bytes"], 6);
    r.running.shutdown().await;
}

#[tokio::test]
async fn a_large_body_is_streamed_as_it_comes() {
    const HALF: usize = 1 << 20;
    let origin = Origin::start(|_, _| {
        vec![
            write(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{DATE}\r\n\r\n",
                2 * HALF
            )),
            write(vec![b'a'; HALF]),
            Step::Sleep(Duration::from_millis(1500)),
            write(vec![b'b'; HALF]),
        ]
    })
    .await;
    let r = redirector(origin.addr, &[]).await;
    let mut c = connect(r.addr, TRUSTED).await;
    let started = Instant::now();
    c.write_all(format!("GET /big HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{DATE}\r\n\r\n",
        2 * HALF
    );
    assert_eq!(read_n(&mut c, head.len()).await, head);
    // The first half arrives while the origin still holds the second.
    let first = read_n(&mut c, HALF).await;
    assert!(first.bytes().all(|b| b == b'a'));
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "the first half took {:?}",
        started.elapsed()
    );
    let second = read_n(&mut c, HALF).await;
    assert!(second.bytes().all(|b| b == b'b'));
    assert_eq!(r.access_line("/big").await["bytes"], 2 * HALF);
    r.running.shutdown().await;
}

#[tokio::test]
async fn request_bodies_are_relayed_as_the_client_framed_them() {
    let origin = Origin::start(|head, _| ok(&[], target(head))).await;
    let r = redirector(origin.addr, &[]).await;
    let mut c = connect(r.addr, TRUSTED).await;
    // The head first, the body in two later writes.
    c.write_all(
        format!(
            "POST /len HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\nContent-Length: 11\r\n\r\nhel"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_all(b"lo=world").await.expect("write");
    let expected = format!("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n{DATE}\r\n\r\n/len");
    assert_eq!(read_n(&mut c, expected.len()).await, expected);
    // Chunked, with a request pipelined right after it.
    c.write_all(
        format!(
            "PUT /chunked HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n{ABROAD}\r\n\r\n\
             5\r\nhello\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_all(
        format!("0\r\n\r\nGET /next HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let expected = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n{DATE}\r\n\r\n/chunked\
         HTTP/1.1 200 OK\r\nContent-Length: 5\r\n{DATE}\r\n\r\n/next"
    );
    assert_eq!(read_n(&mut c, expected.len()).await, expected);
    // The forwarding fields the client did not send come last.
    let added = "x-forwarded-proto: http\r\nx-forwarded-host: example.com\r\n\
                 forwarded: for=127.0.0.1;proto=http;host=example.com\r\n";
    let xff = "X-Forwarded-For: 8.8.8.8, 127.0.0.1\r\n";
    assert_eq!(
        origin.seen(),
        [[
            format!(
                "POST /len HTTP/1.1\r\nHost: example.com\r\n{xff}Content-Length: 11\r\n{added}\
                 \r\nhello=world"
            ),
            format!(
                "PUT /chunked HTTP/1.1\r\nHost: example.com\r\n{xff}{added}\
                 transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
            format!("GET /next HTTP/1.1\r\nHost: example.com\r\n{xff}{added}\r\n"),
        ]]
    );
    r.running.shutdown().await;
}

#[tokio::test]
async fn one_origin_connection_serves_many_clients_and_a_closed_one_is_replaced() {
    let origin = Origin::start(|head, _| match target(head) {
        // Answered, then the origin closes the connection while it is idle in the pool.
        "/then-close" => {
            let mut steps = ok(&[], "bye");
            steps.extend([Step::Sleep(Duration::from_millis(50)), Step::Close]);
            steps
        }
        // Closed as the request arrives, without an answer: as if the origin's idle
        // timeout had struck just then.
        "/drop" => vec![Step::Close],
        path => ok(&[], path),
    })
    .await;
    let r = redirector(origin.addr, &[]).await;
    let addr = r.addr;
    let get = |path: &str| {
        let path = path.to_string();
        async move { send(addr, "GET", &path, "").await }
    };
    for i in 0..5 {
        let path = format!("/p{i}");
        assert_eq!(
            get(&path).await,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n{DATE}\r\nconnection: close\r\n\r\n{path}"
            )
        );
    }
    // Five clients, one origin connection.
    assert_eq!(origin.connections(), 1);
    assert_eq!(origin.seen()[0].len(), 5);

    // The origin closes the pooled connection while it is idle: the next request goes on
    // a new one.
    assert!(get("/then-close").await.ends_with("\r\n\r\nbye"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(get("/after").await.ends_with("\r\n\r\n/after"));
    assert_eq!(origin.connections(), 2);

    // The origin closes the pooled connection on receiving a GET: sent again, once, on a
    // new connection, which closes too; the client gets a 502.
    let raw = get("/drop").await;
    assert!(raw.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{raw}");
    let seen = origin.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].last().map(|r| target(r)), Some("/drop"));
    assert_eq!(
        seen[2].iter().map(|r| target(r)).collect::<Vec<_>>(),
        ["/drop"]
    );
    r.running.shutdown().await;
}

#[tokio::test]
async fn a_get_is_sent_again_on_a_new_connection_but_a_post_is_not() {
    // The first request on each connection is answered; at the second the origin closes
    // without an answer, as an origin whose idle timeout strikes as the request arrives.
    let origin = Origin::start(|head, place| match place {
        0 => ok(&[], target(head)),
        _ => vec![Step::Close],
    })
    .await;
    let r = redirector(origin.addr, &[]).await;
    assert!(
        send(r.addr, "GET", "/first", "")
            .await
            .ends_with("\r\n\r\n/first")
    );
    // The pooled connection takes the GET and closes: sent again on a new connection, the
    // client does not notice.
    let raw = send(r.addr, "GET", "/again", "").await;
    assert!(
        raw.starts_with("HTTP/1.1 200 OK\r\n") && raw.ends_with("/again"),
        "{raw}"
    );
    // A POST is not sent again: a 502.
    let raw = send(r.addr, "POST", "/form", "a=1").await;
    assert!(raw.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{raw}");
    assert!(raw.ends_with("geoline redirect: no valid response from the origin example.com\n"));
    let targets: Vec<Vec<String>> = origin
        .seen()
        .iter()
        .map(|c| c.iter().map(|r| target(r).to_string()).collect())
        .collect();
    assert_eq!(targets, [vec!["/first", "/again"], vec!["/again", "/form"]]);
    r.running.shutdown().await;
}

#[tokio::test]
async fn an_origin_that_is_down_gets_a_502_and_a_slow_one_a_504() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let r = redirector(dead, &[]).await;
    let mut c = connect(r.addr, TRUSTED).await;
    c.write_all(format!("GET /x HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let body = "geoline redirect: cannot connect to the origin example.com\n";
    let expected = own_answer("HTTP/1.1 502 Bad Gateway", body);
    // The connection stays open for the next request.
    assert_eq!(read_undated(&mut c, &expected).await, expected);
    c.write_all(format!("GET /y HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    assert_eq!(read_undated(&mut c, &expected).await, expected);
    let line = r.access_line("/y").await;
    assert_eq!(line["status"], 502);
    assert_eq!(line["bytes"], body.len());
    r.running.shutdown().await;

    // An origin that never answers.
    let origin = Origin::start(|_, _| vec![Step::Sleep(Duration::from_secs(30))]).await;
    let r = redirector(origin.addr, &["response_timeout_secs = 1"]).await;
    let mut c = connect(r.addr, TRUSTED).await;
    let started = Instant::now();
    c.write_all(format!("GET /slow HTTP/1.1\r\nHost: example.com\r\n{ABROAD}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let body = "geoline redirect: the origin example.com did not answer within 1s\n";
    let expected = own_answer("HTTP/1.1 504 Gateway Timeout", body);
    assert_eq!(read_undated(&mut c, &expected).await, expected);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "{took:?}"
    );
    r.running.shutdown().await;
}
