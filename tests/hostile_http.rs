//! Hostile HTTP/1.1 against the redirector's and the proxy's listeners, over real TCP to
//! `geoline::server::start`, with a recording origin behind both: request smuggling
//! (`Content-Length` with `Transfer-Encoding`, two lengths, obfuscated codings), heads too
//! large or with too many fields, control bytes in headers, and a trickled body. Each is
//! refused or cut off, the origin never sees a request the client smuggled, and a fresh
//! request on a new connection is still served.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{self, send_raw, status_lines};
use common::origin::RecordingOrigin;
use common::{TempDir, TestServer, site};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The redirector's only trusted proxy: its `X-Forwarded-For` puts the client abroad, so
/// requests are passed through to the origin rather than redirected.
const TRUSTED: &str = "127.0.0.1";

/// One of the two listeners under test, and how a request must look to reach the origin.
#[derive(Clone, Copy)]
struct Front {
    name: &'static str,
    addr: SocketAddr,
    host: &'static str,
    /// Header lines every request carries, each ending in CRLF.
    extra: &'static str,
}

struct Setup {
    server: TestServer,
    origin: RecordingOrigin,
    fronts: [Front; 2],
    _dir: TempDir,
}

/// Seconds the redirector's origin gets to answer, which bounds a trickled body there.
const REDIRECT_RESPONSE_TIMEOUT: u64 = 2;

async fn setup() -> Setup {
    let origin = RecordingOrigin::start().await;
    let dir = TempDir::new("hostile-http");
    let config = site::write(&dir)
        .redirect(TRUSTED, origin.addr)
        .set(
            "[redirect]",
            &[
                r#"client_ip_header = "x-forwarded-for""#,
                "header_read_timeout_secs = 2",
                "max_header_bytes = 16384",
                "max_headers = 50",
            ],
        )
        .set(
            "[redirect.origin]",
            &[&format!(
                "response_timeout_secs = {REDIRECT_RESPONSE_TIMEOUT}"
            )],
        )
        .table(
            "[proxy]",
            &[
                r#"listen = "127.0.0.1:0""#,
                r#"origin = "http://example.com""#,
                &format!(r#"connect_to = "{}""#, origin.addr),
                r#"hosts = [{ public = "example.cn", origin = "example.com" }]"#,
                "response_timeout_secs = 2",
            ],
        );
    let server = TestServer::start(&dir, &config).await;
    let fronts = [
        Front {
            name: "redirect",
            addr: server.running.redirect[0],
            host: "example.com",
            // Abroad (the fixture database has 8.0.0.0/8 in the US): passed through.
            extra: "X-Forwarded-For: 8.8.8.8\r\n",
        },
        Front {
            name: "proxy",
            addr: server
                .running
                .proxy
                .first()
                .copied()
                .expect("a proxy listener"),
            host: "example.cn",
            extra: "",
        },
    ];
    Setup {
        server,
        origin,
        fronts,
        _dir: dir,
    }
}

/// A request head for `front` with `headers` (each ending in CRLF) and nothing after it.
fn head(front: Front, method: &str, target: &str, headers: &str) -> String {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra}{headers}\r\n",
        host = front.host,
        extra = front.extra
    )
}

/// A plain request on a new connection is still answered by the origin.
async fn still_serving(setup: &Setup, front: Front, tag: &str) {
    let target = format!("/fresh-{}-{tag}", front.name);
    let raw = send_raw(
        front.addr,
        TRUSTED,
        head(front, "GET", &target, "Connection: close\r\n").as_bytes(),
    )
    .await;
    assert!(
        raw.starts_with("HTTP/1.1 200 OK\r\n") && raw.ends_with(&format!("ok {target}")),
        "{}: after {tag}: {raw}",
        front.name
    );
    assert!(setup.origin.targets().contains(&target));
}

/// How a smuggling attempt must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `400 Bad Request` and the connection closed; the origin sees nothing.
    Refused,
    /// The outer request, framed by its `Transfer-Encoding` with the `Content-Length`
    /// ignored (RFC 9112, 6.3), is answered once and the connection is closed, so whatever
    /// followed is never read as a request.
    AnsweredThenClosed,
}

#[tokio::test]
async fn request_smuggling_is_refused() {
    let setup = setup().await;
    for front in setup.fronts {
        let smuggled = format!("GET /smuggled HTTP/1.1\r\nHost: {}\r\n\r\n", front.host);
        // Read as chunked, the body ends at `0`; read by its length, it holds the request.
        let chunked_then_request = format!("0\r\n\r\n{smuggled}");
        let len = chunked_then_request.len();
        let cases: Vec<(&str, String, Outcome)> = vec![
            (
                "cl-then-te",
                format!("Content-Length: {len}\r\nTransfer-Encoding: chunked\r\n"),
                Outcome::AnsweredThenClosed,
            ),
            (
                "te-then-cl",
                format!("Transfer-Encoding: chunked\r\nContent-Length: {len}\r\n"),
                Outcome::AnsweredThenClosed,
            ),
            (
                "te-extra-whitespace",
                format!("Content-Length: {len}\r\nTransfer-Encoding:  \tchunked\r\n"),
                Outcome::AnsweredThenClosed,
            ),
            (
                "two-lengths",
                format!("Content-Length: 5\r\nContent-Length: {len}\r\n"),
                Outcome::Refused,
            ),
            (
                "te-chunked-identity",
                format!("Content-Length: {len}\r\nTransfer-Encoding: chunked, identity\r\n"),
                Outcome::Refused,
            ),
            (
                "te-two-fields",
                format!(
                    "Content-Length: {len}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
                ),
                Outcome::Refused,
            ),
            (
                "te-not-chunked",
                format!("Content-Length: {len}\r\nTransfer-Encoding: xchunked\r\n"),
                Outcome::Refused,
            ),
            (
                "te-space-before-colon",
                format!("Content-Length: {len}\r\nTransfer-Encoding : chunked\r\n"),
                Outcome::Refused,
            ),
            (
                "te-folded",
                format!("Content-Length: {len}\r\nTransfer-Encoding:\r\n chunked\r\n"),
                Outcome::Refused,
            ),
        ];
        for (tag, headers, outcome) in cases {
            let target = format!("/{}-{tag}", front.name);
            let mut bytes = head(front, "POST", &target, &headers);
            bytes.push_str(&chunked_then_request);
            let before = setup.origin.seen().len();
            let raw = send_raw(front.addr, TRUSTED, bytes.as_bytes()).await;
            let statuses = status_lines(&raw);
            let seen = setup.origin.seen()[before..].to_vec();
            match outcome {
                Outcome::Refused => {
                    assert_eq!(statuses, ["HTTP/1.1 400 Bad Request"], "{tag}: {raw}");
                    assert_eq!(seen, [], "{tag}");
                }
                Outcome::AnsweredThenClosed => {
                    assert_eq!(statuses, ["HTTP/1.1 200 OK"], "{tag}: {raw}");
                    assert!(raw.ends_with(&format!("ok {target}")), "{tag}: {raw}");
                    assert_eq!(seen.len(), 1, "{tag}: {seen:?}");
                    assert_eq!(seen[0].target, target, "{tag}");
                    assert_eq!(seen[0].body, b"", "{tag}: the chunked body is empty");
                }
            }
            assert!(
                !setup.origin.targets().iter().any(|t| t == "/smuggled"),
                "{}: {tag}: the origin saw the smuggled request",
                front.name
            );
            still_serving(&setup, front, tag).await;
        }
    }
    setup.server.running.shutdown().await;
}

#[tokio::test]
async fn oversized_heads_and_control_bytes_are_refused() {
    let setup = setup().await;
    for front in setup.fronts {
        // Over the redirector's 16 KiB and over hyper's default buffer (~400 KiB) that the
        // proxy listener keeps.
        let big = format!("X-Big: {}\r\n", "a".repeat(500_000));
        // Over the redirector's 50 and hyper's default 100.
        let many: String = (0..120).map(|i| format!("X-H{i}: {i}\r\n")).collect();
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "huge-header",
                big,
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
            (
                "many-headers",
                many,
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
            (
                "nul-in-value",
                "X-A: a\0b\r\n".into(),
                "HTTP/1.1 400 Bad Request",
            ),
            (
                "nul-in-name",
                "X-\0A: b\r\n".into(),
                "HTTP/1.1 400 Bad Request",
            ),
            (
                "bare-cr-in-value",
                "X-A: a\rb\r\n".into(),
                "HTTP/1.1 400 Bad Request",
            ),
            (
                "ctl-in-value",
                "X-A: a\x01b\r\n".into(),
                "HTTP/1.1 400 Bad Request",
            ),
        ];
        for (tag, headers, status) in cases {
            let target = format!("/{}-{tag}", front.name);
            let before = setup.origin.seen().len();
            let raw = send_raw(
                front.addr,
                TRUSTED,
                head(front, "GET", &target, &headers).as_bytes(),
            )
            .await;
            assert_eq!(status_lines(&raw), [status], "{}: {tag}: {raw}", front.name);
            assert_eq!(setup.origin.seen().len(), before, "{}: {tag}", front.name);
            still_serving(&setup, front, tag).await;
        }
        // A bare LF ends a line (RFC 9112, 2.2): two fields, the same to geoline and to the
        // origin, which gets the request framed anew.
        let target = format!("/{}-bare-lf", front.name);
        let raw = send_raw(
            front.addr,
            TRUSTED,
            head(front, "GET", &target, "X-A: a\nConnection: close\r\n").as_bytes(),
        )
        .await;
        assert_eq!(
            status_lines(&raw),
            ["HTTP/1.1 200 OK"],
            "{}: {raw}",
            front.name
        );
        assert!(setup.origin.targets().contains(&target));
    }
    setup.server.running.shutdown().await;
}

#[tokio::test]
async fn a_trickled_body_is_cut_off() {
    let setup = setup().await;
    for front in setup.fronts {
        let target = format!("/{}-trickle", front.name);
        let mut c = http::connect(front.addr, TRUSTED).await;
        c.write_all(head(front, "POST", &target, "Content-Length: 1000\r\n").as_bytes())
            .await
            .expect("write head");
        let started = Instant::now();
        // A byte every 200 ms: 1000 bytes would take 200 s. The origin waits for the whole
        // body, so the request ends when the origin's response timeout (2 s) does.
        let mut got = Vec::new();
        let mut closed = false;
        while started.elapsed() < Duration::from_secs(15) {
            if c.write_all(b"x").await.is_err() {
                closed = true;
                break;
            }
            let mut probe = [0u8; 1024];
            match tokio::time::timeout(Duration::from_millis(200), c.read(&mut probe)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) => got.extend_from_slice(&probe[..n]),
                Err(_) => {}
            }
        }
        let took = started.elapsed();
        let got = String::from_utf8_lossy(&got);
        assert!(
            closed,
            "{}: a trickled body held on for {took:?}",
            front.name
        );
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
            "{}: cut off after {took:?}",
            front.name
        );
        assert_eq!(
            status_lines(&got),
            ["HTTP/1.1 504 Gateway Timeout"],
            "{}: {got}",
            front.name
        );
        assert!(
            !setup.origin.targets().contains(&target),
            "{}: the origin got a whole request",
            front.name
        );
        still_serving(&setup, front, "trickle").await;
    }
    setup.server.running.shutdown().await;
}
