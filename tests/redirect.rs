//! The redirector end to end: real TCP and TLS connections to `geoline::server::start`,
//! GeoIP from a fixture database, certificates from a test CA, an in-process origin for
//! the pass-through. Responses are read as raw bytes so that status lines, headers and
//! bodies can be asserted exactly.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{self, Response, connect, read_until_closed};
use common::origin::{full, pieces, response};
use common::tls::{TestCa, client_config};
use common::{TempDir, mmdb, site};
use geoline::config::Config;
use geoline::internal::proxy_protocol;
use geoline::server::{self, Running};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const MAINLAND: &str = "1.2.4.8";
const ABROAD: &str = "8.8.8.8";
/// The only trusted proxy; tests connect from other loopback addresses to be untrusted.
const TRUSTED: &str = "127.0.0.1";
const UNTRUSTED: &str = "127.0.0.2";

// ------------------------------------------------------------------------------------
// Fixtures

/// What the origin saw of a passed-through request, echoed in its body.
fn origin_body(host: &str, path: &str, xff: &str) -> String {
    format!("<a href=\"https://example.com/x\">origin: host={host} path={path} xff={xff}</a>\n")
}

/// An origin answering every request with headers and a body a rewriting proxy would
/// change (`example.com` in both), echoing what it received.
async fn origin() -> SocketAddr {
    common::origin::origin(|req| async move {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        if path == "/slow-body" {
            // Three pieces 0.9 s apart: longer than two header timeouts of the
            // slow-client test, which must not cut a response being sent.
            let parts = (0..3).map(|i| Bytes::from(format!("piece {i}\n")));
            return response(
                200,
                &[],
                pieces(parts.collect(), Duration::from_millis(900)),
            );
        }
        let body = origin_body(&header("host"), path, &header("x-forwarded-for"));
        response(
            203,
            &[
                ("content-type", "text/html; charset=utf-8"),
                ("set-cookie", "s=1; Domain=example.com; Path=/"),
                ("x-origin", "yes"),
            ],
            full(body),
        )
    })
    .await
}

struct Server {
    running: Running,
    /// Plain HTTP, PROXY protocol, HTTPS: the listeners in configuration order.
    http: SocketAddr,
    proxied: SocketAddr,
    https: SocketAddr,
    ca: CertificateDer<'static>,
    cert_a: CertificateDer<'static>,
    cert_b: CertificateDer<'static>,
    test_ca: TestCa,
    dir: TempDir,
}

struct Options {
    client_ip_header: &'static str,
    header_read_timeout_secs: u64,
}

const DEFAULTS: Options = Options {
    client_ip_header: "x-forwarded-for",
    header_read_timeout_secs: 10,
};

async fn start(options: Options) -> Server {
    let dir = TempDir::new("redirect");
    mmdb::write_ip_location_db(
        &dir.path().join("geo.mmdb"),
        &[
            ("1.2.4.0/22", "CN"),
            ("8.8.8.0/24", "US"),
            ("2001:da8::/32", "CN"),
        ],
    );
    let test_ca = TestCa::new();
    let a = test_ca.leaf(&["example.com", "*.example.com"]);
    let b = test_ca.leaf(&["example.net"]);
    dir.write("a.pem", &a.cert_pem);
    dir.write("a.key", &a.key_pem);
    dir.write("b.pem", &b.cert_pem);
    dir.write("b.key", &b.key_pem);
    let config = site::Config::default()
        .geoip("geo.mmdb")
        .line("china", &[r#"countries = ["CN"]"#])
        .redirect(TRUSTED, origin().await)
        .set(
            "[redirect]",
            &[
                &format!("client_ip_header = {:?}", options.client_ip_header),
                &format!(
                    "header_read_timeout_secs = {}",
                    options.header_read_timeout_secs
                ),
                "max_header_bytes = 16384",
                "max_headers = 50",
                r#"access_log = "access.log""#,
            ],
        )
        // After the plain listener: PROXY protocol, then HTTPS.
        .table(
            "[[redirect.listen]]",
            &[r#"address = "127.0.0.1:0""#, "proxy_protocol = true"],
        )
        .table(
            "[[redirect.listen]]",
            &[r#"address = "127.0.0.1:0""#, "tls = true"],
        )
        .table(
            "[[redirect.certificate]]",
            &[
                r#"names = ["example.com", "*.example.com"]"#,
                r#"cert = "a.pem""#,
                r#"key = "a.key""#,
            ],
        )
        .table(
            "[[redirect.certificate]]",
            &[
                r#"names = ["example.net"]"#,
                r#"cert = "b.pem""#,
                r#"key = "b.key""#,
            ],
        )
        .table(
            "[[redirect.rule]]",
            &[
                r#"from = "example.net""#,
                r#"to = "example.org""#,
                r#"lines = ["china"]"#,
                "status = 308",
                "max_age_secs = 60",
            ],
        );
    let path = dir.write("geoline.toml", &config.to_string());
    let config = Config::load(&path).expect("config loads");
    let running = server::start(&config).await.expect("server starts");
    let [http, proxied, https] = running.redirect[..] else {
        panic!("three listeners: {:?}", running.redirect)
    };
    Server {
        running,
        http,
        proxied,
        https,
        ca: test_ca.der(),
        cert_a: a.der,
        cert_b: b.der,
        test_ca,
        dir,
    }
}

// ------------------------------------------------------------------------------------
// A raw HTTP/1.1 client

/// Writes `request` and reads the response, which (as every response of the redirector)
/// carries a `date`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, request: &[u8]) -> Response {
    let resp = http::exchange(s, request, Duration::from_secs(10)).await;
    assert!(resp.date.is_some(), "no date header in {resp:?}");
    resp
}

/// `GET path` for `host` from the address `from`, with extra header lines.
async fn get(to: SocketAddr, from: &str, host: &str, path: &str, extra: &[&str]) -> Response {
    let mut s = connect(to, from).await;
    exchange(&mut s, request(host, path, extra).as_bytes()).await
}

fn request(host: &str, path: &str, extra: &[&str]) -> String {
    http::request("GET", host, path, extra)
}

fn redirect_body(code: u16, reason: &str, location: &str) -> String {
    let link = location
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\
         <body><h1>{reason}</h1><p><a href=\"{link}\">{link}</a></p></body></html>\n"
    )
}

fn assert_redirect(resp: &Response, location: &str) {
    let body = redirect_body(301, "Moved Permanently", location);
    assert_eq!(
        resp.status_line, "HTTP/1.1 301 Moved Permanently",
        "{resp:?}"
    );
    assert_eq!(
        resp.headers,
        [
            ("location", location),
            ("cache-control", "private, max-age=3600"),
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", &body.len().to_string()),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    assert_eq!(resp.body, body);
}

/// The origin's response, exactly as it sent it (hyper adds only `date`).
fn assert_passed_through(resp: &Response, host: &str, path: &str, xff: &str) {
    let body = origin_body(host, path, xff);
    assert_eq!(
        resp.status_line,
        "HTTP/1.1 203 Non Authoritative Information"
    );
    assert_eq!(
        resp.headers,
        [
            ("content-type", "text/html; charset=utf-8"),
            ("set-cookie", "s=1; Domain=example.com; Path=/"),
            ("x-origin", "yes"),
            ("content-length", &body.len().to_string()),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    assert_eq!(resp.body, body);
}

// ------------------------------------------------------------------------------------
// The access log, in the server's directory

/// The access-log line whose `path` is `path`, parsed, once it has been flushed.
async fn access_line(s: &Server, path: &str) -> serde_json::Value {
    http::access_line(&s.dir.path().join("access.log"), path).await
}

// ------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn mainland_client_gets_the_exact_redirect() {
    let s = start(DEFAULTS).await;
    let xff = format!("X-Forwarded-For: {MAINLAND}");
    let long_query = format!("/search?q={}&page=2", "%E4%B8%AD".repeat(1000));
    for path in [
        "/a/b?c=1",
        "/",
        "/a%2Fb/c%2f?x=%2F&y=a%20b+c",
        "/%E4%B8%AD%E6%96%87/%F0%9F%98%80?%E5%90%8D=%E5%80%BC",
        "/a%0D%0ASet-Cookie:%20x=1",
        "/quote\"and'apos&amp;x=%3Ctag%3E",
        "//evil.example/path",
        long_query.as_str(),
    ] {
        let resp = get(s.http, TRUSTED, "example.com", path, &[&xff]).await;
        assert_redirect(&resp, &format!("https://example.cn{path}"));
    }
    // The link in the body is HTML-escaped.
    let resp = get(s.http, TRUSTED, "example.com", "/q\"'&", &[&xff]).await;
    assert!(
        resp.body
            .contains("<a href=\"https://example.cn/q&quot;&#39;&amp;\">"),
        "{}",
        resp.body
    );

    // Raw UTF-8 in the target (browsers encode it, some clients do not) stays as sent.
    let mut c = connect(s.http, TRUSTED).await;
    let resp = exchange(
        &mut c,
        format!("GET /中文?名=值 HTTP/1.1\r\nHost: example.com\r\n{xff}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(resp.status_line, "HTTP/1.1 301 Moved Permanently");
    assert_eq!(
        resp.header("location"),
        Some("https://example.cn/中文?名=值")
    );

    // Host with port, upper case, trailing dot; subdomains keep their labels.
    for (host, location) in [
        ("EXAMPLE.COM", "https://example.cn/p?q"),
        ("example.com.", "https://example.cn/p?q"),
        ("example.com:8080", "https://example.cn/p?q"),
        ("Www.Example.Com.:80", "https://www.example.cn/p?q"),
        ("a.b.example.com", "https://a.b.example.cn/p?q"),
    ] {
        let resp = get(s.http, TRUSTED, host, "/p?q", &[&xff]).await;
        assert_redirect(&resp, location);
    }

    // IPv6 clients are classified too.
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/v6",
        &["X-Forwarded-For: 2001:da8::8"],
    )
    .await;
    assert_redirect(&resp, "https://example.cn/v6");

    // A rule's own status and max-age.
    let resp = get(s.http, TRUSTED, "www.example.net", "/x?y", &[&xff]).await;
    let body = redirect_body(308, "Permanent Redirect", "https://www.example.org/x?y");
    assert_eq!(resp.status_line, "HTTP/1.1 308 Permanent Redirect");
    assert_eq!(
        resp.headers,
        [
            ("location", "https://www.example.org/x?y"),
            ("cache-control", "private, max-age=60"),
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", &body.len().to_string()),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    assert_eq!(resp.body, body);

    // HEAD: the same head, no body.
    let mut c = connect(s.http, TRUSTED).await;
    c.write_all(
        format!("HEAD /h HTTP/1.1\r\nHost: example.com\r\n{xff}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    let raw = read_until_closed(&mut c, Duration::from_secs(5)).await;
    let raw = String::from_utf8(raw).expect("ASCII");
    assert!(
        raw.starts_with("HTTP/1.1 301 Moved Permanently\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("\r\nlocation: https://example.cn/h\r\n"),
        "{raw}"
    );
    assert!(raw.ends_with("\r\n\r\n"), "{raw}");

    let line = access_line(&s, "/a/b?c=1").await;
    assert_eq!(line["client"], MAINLAND);
    assert_eq!(line["line"], "china");
    assert_eq!(line["host"], "example.com");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["status"], 301);
    assert_eq!(
        line["bytes"],
        redirect_body(301, "Moved Permanently", "https://example.cn/a/b?c=1").len()
    );
    assert!(line["duration_us"].is_u64(), "{line}");
    assert!(
        line["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{line}"
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn other_clients_reach_the_origin_unmodified() {
    let s = start(DEFAULTS).await;
    // The trusted proxy says the client is abroad: the origin gets the request, under the
    // host the client asked for, and its answer comes back as it was (a rewriting proxy
    // would have turned example.com into example.cn in the body and the cookie).
    let resp = get(
        s.http,
        TRUSTED,
        "www.example.com",
        "/a%2Fb?x=1",
        &[&format!("X-Forwarded-For: {ABROAD}")],
    )
    .await;
    assert_passed_through(&resp, "www.example.com", "/a%2Fb?x=1", "8.8.8.8, 127.0.0.1");
    let line = access_line(&s, "/a%2Fb?x=1").await;
    assert_eq!(line["client"], ABROAD);
    assert_eq!(line["line"], "default");
    assert_eq!(line["status"], 203);
    assert_eq!(line["bytes"], resp.body.len());

    // No forwarding header: the peer itself (loopback, not mainland).
    let resp = get(s.http, TRUSTED, "Example.COM.:8080", "/plain", &[]).await;
    assert_passed_through(&resp, "example.com", "/plain", "127.0.0.1");

    // A POST body goes through too, on a kept-alive connection.
    let mut c = connect(s.http, TRUSTED).await;
    let resp = exchange(
        &mut c,
        b"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\na=1",
    )
    .await;
    assert_passed_through(&resp, "example.com", "/form", "127.0.0.1");
    let resp = exchange(&mut c, request("example.com", "/again", &[]).as_bytes()).await;
    assert_passed_through(&resp, "example.com", "/again", "127.0.0.1");
    s.running.shutdown().await;
}

#[tokio::test]
async fn forwarding_headers_are_believed_only_from_trusted_proxies() {
    let s = start(DEFAULTS).await;
    let claim = format!("X-Forwarded-For: {MAINLAND}");
    // From an untrusted peer the claim is ignored: classified by the peer, passed through.
    let resp = get(s.http, UNTRUSTED, "example.com", "/u", &[&claim]).await;
    assert_passed_through(&resp, "example.com", "/u", "1.2.4.8, 127.0.0.2");
    let line = access_line(&s, "/u").await;
    assert_eq!(line["client"], UNTRUSTED);

    // From the trusted proxy it is used; several headers are one list.
    let resp = get(s.http, TRUSTED, "example.com", "/t", &[&claim]).await;
    assert_redirect(&resp, "https://example.cn/t");
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/t2",
        &[
            "X-Forwarded-For: 9.9.9.9",
            &format!("X-Forwarded-For: {MAINLAND}, {TRUSTED}"),
        ],
    )
    .await;
    assert_redirect(&resp, "https://example.cn/t2");

    // The rightmost untrusted hop is the client: a mainland address the client itself
    // prepended does not count.
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/spoof",
        &[&format!("X-Forwarded-For: {MAINLAND}, {ABROAD}")],
    )
    .await;
    assert_passed_through(
        &resp,
        "example.com",
        "/spoof",
        "1.2.4.8, 8.8.8.8, 127.0.0.1",
    );

    // X-Forwarded-For is the configured header: Forwarded is the client's to forge.
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/f",
        &[&format!("Forwarded: for={MAINLAND}")],
    )
    .await;
    assert_passed_through(&resp, "example.com", "/f", "127.0.0.1");
    s.running.shutdown().await;
}

#[tokio::test]
async fn forwarded_header_when_configured() {
    let s = start(Options {
        client_ip_header: "forwarded",
        ..DEFAULTS
    })
    .await;
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/fw",
        &[&format!(
            "Forwarded: for=\"{MAINLAND}:4711\";proto=https, for={TRUSTED}"
        )],
    )
    .await;
    assert_redirect(&resp, "https://example.cn/fw");
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/fw6",
        &["Forwarded: for=\"[2001:da8::1]\""],
    )
    .await;
    assert_redirect(&resp, "https://example.cn/fw6");
    // Now X-Forwarded-For is the one ignored.
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/xf",
        &[&format!("X-Forwarded-For: {MAINLAND}")],
    )
    .await;
    assert_passed_through(&resp, "example.com", "/xf", "1.2.4.8, 127.0.0.1");
    // And from an untrusted peer Forwarded counts for nothing either.
    let resp = get(
        s.http,
        UNTRUSTED,
        "example.com",
        "/fu",
        &[&format!("Forwarded: for={MAINLAND}")],
    )
    .await;
    assert_passed_through(&resp, "example.com", "/fu", "127.0.0.2");
    s.running.shutdown().await;
}

#[tokio::test]
async fn proxy_protocol_headers() {
    let s = start(DEFAULTS).await;
    let req = request("example.com", "/pp", &[]);

    // v1 from the trusted load balancer.
    let mut c = connect(s.proxied, TRUSTED).await;
    let v1 = format!("PROXY TCP4 {MAINLAND} 127.0.0.1 56324 443\r\n{req}");
    assert_redirect(
        &exchange(&mut c, v1.as_bytes()).await,
        "https://example.cn/pp",
    );
    // The connection goes on after the header.
    let again = exchange(&mut c, request("example.com", "/pp2", &[]).as_bytes()).await;
    assert_redirect(&again, "https://example.cn/pp2");

    // v2, binary, with the request in the same segment.
    let mut c = connect(s.proxied, TRUSTED).await;
    let mut v2 = proxy_protocol::encode_v2(
        format!("{MAINLAND}:1234").parse().expect("src"),
        "127.0.0.1:443".parse().expect("dst"),
    );
    v2.extend_from_slice(req.as_bytes());
    assert_redirect(&exchange(&mut c, &v2).await, "https://example.cn/pp");

    // v2 saying the client is abroad: passed through, the origin told who it is.
    let mut c = connect(s.proxied, TRUSTED).await;
    let mut v2 = proxy_protocol::encode_v2(
        format!("{ABROAD}:1234").parse().expect("src"),
        "127.0.0.1:443".parse().expect("dst"),
    );
    v2.extend_from_slice(request("example.com", "/pp-abroad", &[]).as_bytes());
    assert_passed_through(
        &exchange(&mut c, &v2).await,
        "example.com",
        "/pp-abroad",
        "8.8.8.8",
    );

    // A header from an untrusted peer is read but not believed.
    let mut c = connect(s.proxied, UNTRUSTED).await;
    let v1 = format!(
        "PROXY TCP4 {MAINLAND} 127.0.0.1 56324 443\r\n{}",
        request("example.com", "/pp-u", &[])
    );
    assert_passed_through(
        &exchange(&mut c, v1.as_bytes()).await,
        "example.com",
        "/pp-u",
        "127.0.0.2",
    );

    // Malformed or missing headers: the connection is closed without a byte.
    for bad in [
        format!("PROXY TCP4 {MAINLAND} 127.0.0.1 99999 443\r\n{req}"),
        format!("PROXY TCP6 {MAINLAND} 127.0.0.1 1 443\r\n{req}"),
        format!("PROXY TCP4 {MAINLAND} 127.0.0.1 1 443\n{req}"),
        req.clone(),
    ] {
        let mut c = connect(s.proxied, TRUSTED).await;
        c.write_all(bad.as_bytes()).await.expect("write");
        assert_eq!(
            read_until_closed(&mut c, Duration::from_secs(5)).await,
            b"",
            "{bad:?}"
        );
    }
    let mut c = connect(s.proxied, TRUSTED).await;
    let mut v2 = proxy_protocol::encode_v2(
        format!("{MAINLAND}:1").parse().expect("src"),
        "127.0.0.1:443".parse().expect("dst"),
    );
    v2[12] = 0x11; // version 1 in a v2 header
    v2.extend_from_slice(req.as_bytes());
    c.write_all(&v2).await.expect("write");
    assert_eq!(read_until_closed(&mut c, Duration::from_secs(5)).await, b"");
    s.running.shutdown().await;
}

// ------------------------------------------------------------------------------------
// TLS

/// A verified TLS connection (the certificate must be valid for `sni` under the test CA).
async fn tls_connect(s: &Server, sni: &str, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let tcp = connect(s.https, TRUSTED).await;
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    tokio_rustls::TlsConnector::from(client_config(&s.ca, alpn))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

fn served_cert(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("certificates")[0].clone()
}

#[tokio::test]
async fn sni_picks_the_certificate() {
    let s = start(DEFAULTS).await;
    for (sni, want) in [
        ("example.com", &s.cert_a),
        ("www.example.com", &s.cert_a),
        ("example.net", &s.cert_b),
    ] {
        let mut tls = tls_connect(&s, sni, &[b"http/1.1"]).await;
        assert_eq!(&served_cert(&tls), want, "{sni}");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let resp = exchange(
            &mut tls,
            request(sni, "/tls?a=1", &[&format!("X-Forwarded-For: {MAINLAND}")]).as_bytes(),
        )
        .await;
        assert_eq!(
            resp.status_line.split(' ').nth(1),
            Some(if sni == "example.net" { "308" } else { "301" })
        );
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn http2_by_alpn() {
    let s = start(DEFAULTS).await;
    let tls = tls_connect(&s, "www.example.com", &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = hyper::Request::get("https://www.example.com/h2/%E4%B8%AD?x=%2F")
        .header("x-forwarded-for", MAINLAND)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.version(), ::http::Version::HTTP_2);
    assert_eq!(resp.status(), 301);
    let h = resp.headers();
    assert_eq!(h["location"], "https://www.example.cn/h2/%E4%B8%AD?x=%2F");
    assert_eq!(h["cache-control"], "private, max-age=3600");
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(
        body,
        redirect_body(
            301,
            "Moved Permanently",
            "https://www.example.cn/h2/%E4%B8%AD?x=%2F"
        )
    );

    // A non-mainland HTTP/2 client reaches the origin (over HTTP/1.1 upstream).
    let req = hyper::Request::get("https://www.example.com/h2-pass")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 203);
    assert_eq!(resp.headers()["x-origin"], "yes");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(
        body,
        origin_body("www.example.com", "/h2-pass", "127.0.0.1")
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn replaced_certificate_is_served_without_restart() {
    let s = start(DEFAULTS).await;
    // A connection made before the change, kept alive across it.
    let mut before = tls_connect(&s, "example.com", &[b"http/1.1"]).await;
    assert_eq!(served_cert(&before), s.cert_a);
    let xff = format!("X-Forwarded-For: {MAINLAND}");
    let resp = exchange(
        &mut before,
        request("example.com", "/1", &[&xff]).as_bytes(),
    )
    .await;
    assert_redirect(&resp, "https://example.cn/1");

    // Renewed the way certbot and editors do it: new files renamed over the old ones.
    let renewed = s.test_ca.leaf(&["example.com", "*.example.com"]);
    let dir = s.dir.path();
    std::fs::write(dir.join("a.key.tmp"), &renewed.key_pem).expect("write key");
    std::fs::write(dir.join("a.pem.tmp"), &renewed.cert_pem).expect("write cert");
    std::fs::rename(dir.join("a.key.tmp"), dir.join("a.key")).expect("rename key");
    std::fs::rename(dir.join("a.pem.tmp"), dir.join("a.pem")).expect("rename cert");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tls = tls_connect(&s, "example.com", &[b"http/1.1"]).await;
        if served_cert(&tls) == renewed.der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The reload is the reloader's, in its status like a database's.
    let status = s.running.reloader.status();
    assert_eq!(status.certificates.len(), 2);
    assert_eq!(status.certificates[0].path, dir.join("a.pem"));
    assert!(status.certificates[0].successes >= 1, "{status:?}");
    assert_eq!(status.certificates[1].successes, 0, "{status:?}");
    // The other certificate is unchanged, and the old connection still works.
    let tls = tls_connect(&s, "example.net", &[b"http/1.1"]).await;
    assert_eq!(served_cert(&tls), s.cert_b);
    let resp = exchange(
        &mut before,
        request("example.com", "/2", &[&xff]).as_bytes(),
    )
    .await;
    assert_redirect(&resp, "https://example.cn/2");

    // A broken file keeps the last good certificate in use.
    std::fs::write(
        dir.join("a.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.running.reloader.status().certificates[0].failures == 0 {
        assert!(
            Instant::now() < deadline,
            "the broken file was never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = s.running.reloader.status().certificates[0].last.clone();
    let error = last.error.expect("the failed reload's error").to_string();
    assert!(error.contains("a.pem"), "{error}");
    let tls = tls_connect(&s, "example.com", &[b"http/1.1"]).await;
    assert_eq!(served_cert(&tls), renewed.der);
    s.running.shutdown().await;
}

// ------------------------------------------------------------------------------------
// Limits and errors

#[tokio::test]
async fn malformed_requests_are_refused() {
    let s = start(DEFAULTS).await;
    let raw = |bytes: Vec<u8>| async move {
        let mut c = connect(s.http, TRUSTED).await;
        c.write_all(&bytes).await.expect("write");
        String::from_utf8(read_until_closed(&mut c, Duration::from_secs(5)).await).expect("ASCII")
    };
    // CRLF (or a bare CR or LF) in the target never reaches a header: hyper refuses the
    // request line.
    for target in [
        "/a\r\nSet-Cookie: x=1",
        "/a\rb",
        "/a\nb",
        "/a\x7fb",
        "/a\x00b",
        "/a b",
    ] {
        let out = raw(format!(
            "GET {target} HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: {MAINLAND}\r\n\r\n"
        )
        .into_bytes())
        .await;
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{target:?}: {out}"
        );
        assert!(!out.contains("location"), "{out}");
    }
    // An over-long head and too many header fields.
    let big = format!("X-Big: {}", "a".repeat(20_000));
    let out = raw(request("example.com", "/", &[&big]).into_bytes()).await;
    assert!(
        out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{out}"
    );
    let many: Vec<String> = (0..60).map(|i| format!("X-H{i}: {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let out = raw(request("example.com", "/", &many).into_bytes()).await;
    assert!(
        out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{out}"
    );

    // A host no rule covers: 421, whatever the client's line.
    for (host, xff) in [
        ("example.org", MAINLAND),
        ("example.cn", MAINLAND),
        ("notexample.com", ABROAD),
        ("127.0.0.1:8080", MAINLAND),
    ] {
        let resp = get(
            s.http,
            TRUSTED,
            host,
            "/x",
            &[&format!("X-Forwarded-For: {xff}")],
        )
        .await;
        let body = "geoline redirect: no redirect rule covers this host; \
                    this server only answers for the domains it is configured with\n";
        assert_eq!(
            resp.status_line, "HTTP/1.1 421 Misdirected Request",
            "{host}"
        );
        assert_eq!(
            resp.headers,
            [
                ("content-type", "text/plain; charset=utf-8"),
                ("cache-control", "no-store"),
                ("content-length", &body.len().to_string()),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        assert_eq!(resp.body, body);
    }
    // A host that is not a host name: 400, and nothing of it is echoed.
    for host in ["evil.com/.example.com", "a@example.com", "example.com:http"] {
        let resp = get(
            s.http,
            TRUSTED,
            host,
            "/x",
            &[&format!("X-Forwarded-For: {MAINLAND}")],
        )
        .await;
        assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request", "{host}");
        assert_eq!(
            resp.body,
            "geoline redirect: the request's host is not a valid host name\n"
        );
    }
    // HTTP/1.0 without Host.
    let mut c = connect(s.http, TRUSTED).await;
    let resp = exchange(&mut c, b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(resp.status_line, "HTTP/1.0 400 Bad Request");
    assert_eq!(resp.body, "geoline redirect: the request names no host\n");
    // An absolute-form target names the host; it cannot smuggle another one in.
    let mut c = connect(s.http, TRUSTED).await;
    let resp = exchange(
        &mut c,
        format!("GET http://evil.example/x HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: {MAINLAND}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(resp.status_line, "HTTP/1.1 421 Misdirected Request");
    s.running.shutdown().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let s = start(Options {
        header_read_timeout_secs: 1,
        ..DEFAULTS
    })
    .await;
    let started = Instant::now();
    // Half a request head, then nothing.
    let mut partial = connect(s.http, TRUSTED).await;
    partial
        .write_all(b"GET / HTTP/1.1\r\nHost: exa")
        .await
        .expect("write");
    // Nothing at all, on each kind of listener.
    let mut silent_http = connect(s.http, TRUSTED).await;
    let mut silent_proxied = connect(s.proxied, TRUSTED).await;
    let mut silent_tls = connect(s.https, TRUSTED).await;
    // A TLS client that completes the handshake and then says nothing.
    let mut idle_tls = tls_connect(&s, "example.com", &[b"h2", b"http/1.1"]).await;

    for c in [
        &mut partial,
        &mut silent_http,
        &mut silent_proxied,
        &mut silent_tls,
    ] {
        let got = read_until_closed(c, Duration::from_secs(5)).await;
        // hyper may answer a timed-out head with 408; anything else would be a bug.
        let got = String::from_utf8(got).expect("ASCII");
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408 "), "{got}");
    }
    assert_eq!(
        read_until_closed(&mut idle_tls, Duration::from_secs(5)).await,
        b""
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "closed too late: {took:?}");

    // A client that is quick enough is served, and its kept-alive connection is closed
    // once it sits idle past the limit.
    let mut ok = connect(s.http, TRUSTED).await;
    let resp = exchange(
        &mut ok,
        request(
            "example.com",
            "/quick",
            &[&format!("X-Forwarded-For: {MAINLAND}")],
        )
        .as_bytes(),
    )
    .await;
    assert_redirect(&resp, "https://example.cn/quick");
    let idle = Instant::now();
    assert_eq!(
        read_until_closed(&mut ok, Duration::from_secs(5)).await,
        b""
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(900),
        "{:?}",
        idle.elapsed()
    );

    // A slowloris: a byte of header every 300 ms is not a request.
    let mut loris = connect(s.http, TRUSTED).await;
    let started = Instant::now();
    let head =
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in head {
        if loris.write_all(&[*b]).await.is_err() || started.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        read_until_closed(&mut loris, Duration::from_secs(5)).await,
        b""
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2600),
        "a slowloris held on for {took:?}"
    );

    // A response that takes longer than that to send is not cut off.
    let started = Instant::now();
    let mut c = connect(s.http, TRUSTED).await;
    c.write_all(request("example.com", "/slow-body", &["Connection: close"]).as_bytes())
        .await
        .expect("write");
    let raw =
        String::from_utf8(read_until_closed(&mut c, Duration::from_secs(10)).await).expect("UTF-8");
    assert!(
        started.elapsed() >= Duration::from_millis(2600),
        "{:?}",
        started.elapsed()
    );
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(
        raw.ends_with("piece 0\n\r\n8\r\npiece 1\n\r\n8\r\npiece 2\n\r\n0\r\n\r\n"),
        "{raw}"
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_open_connections() {
    let s = start(DEFAULTS).await;
    // A kept-alive connection, idle after one request.
    let mut idle = connect(s.http, TRUSTED).await;
    let xff = format!("X-Forwarded-For: {MAINLAND}");
    let resp = exchange(
        &mut idle,
        request("example.com", "/before", &[&xff]).as_bytes(),
    )
    .await;
    assert_redirect(&resp, "https://example.cn/before");
    // A passed-through response still coming from the origin (three pieces 0.9 s apart).
    let mut slow = connect(s.http, TRUSTED).await;
    slow.write_all(request("example.com", "/slow-body", &[]).as_bytes())
        .await
        .expect("write");
    let mut head = [0u8; 17];
    slow.read_exact(&mut head).await.expect("response head");
    assert_eq!(&head, b"HTTP/1.1 200 OK\r\n");

    let started = Instant::now();
    let Server { running, dir, .. } = s;
    let shutdown = tokio::spawn(running.shutdown());
    // The idle connection is closed at once, the streaming one is let finish.
    assert_eq!(
        read_until_closed(&mut idle, Duration::from_secs(5)).await,
        b""
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let rest = String::from_utf8(read_until_closed(&mut slow, Duration::from_secs(5)).await)
        .expect("UTF-8");
    assert!(
        rest.ends_with("piece 0\n\r\n8\r\npiece 1\n\r\n8\r\npiece 2\n\r\n0\r\n\r\n"),
        "{rest}"
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown within the drain")
        .expect("shutdown task");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "shutdown did not wait for the response: {:?}",
        started.elapsed()
    );
    drop(dir);
}

#[tokio::test]
async fn healthz_for_load_balancers() {
    let s = start(DEFAULTS).await;
    for host in ["127.0.0.1:8080", "lb-probe.internal", "10.0.0.1"] {
        let resp = get(s.http, UNTRUSTED, host, "/healthz", &[]).await;
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
        assert_eq!(
            resp.headers,
            [
                ("content-type", "text/plain; charset=utf-8"),
                ("cache-control", "no-store"),
                ("content-length", "3"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        assert_eq!(resp.body, "ok\n");
    }
    // Under a covered host the path is the site's like any other.
    let resp = get(
        s.http,
        TRUSTED,
        "example.com",
        "/healthz",
        &[&format!("X-Forwarded-For: {MAINLAND}")],
    )
    .await;
    assert_redirect(&resp, "https://example.cn/healthz");
    let resp = get(s.http, TRUSTED, "example.com", "/healthz", &[]).await;
    assert_passed_through(&resp, "example.com", "/healthz", "127.0.0.1");
    s.running.shutdown().await;
}

#[test]
fn config_errors_name_the_line() {
    let base = r#"[[line]]
name = "china"
cidrs = ["1.2.4.0/22"]

[redirect]
trusted_proxies = ["10.0.0.0/8"]

[[redirect.listen]]
address = "127.0.0.1:0"

[[redirect.rule]]
from = "example.com"
to = "example.cn"
lines = ["china"]

[redirect.origin]
url = "https://example.com"
"#;
    let parse = |text: &str| Config::parse(std::path::Path::new("g.toml"), text);
    parse(base).expect("the base config is valid");
    for (from, to, want) in [
        (
            "lines = [\"china\"]",
            "lines = [\"chna\"]",
            "g.toml:14: redirect.rule `example.com`: line `chna` is not declared (declared: china)",
        ),
        (
            "to = \"example.cn\"",
            "to = \"www.example.com\"",
            "g.toml:13: redirect.rule `example.com`: to `www.example.com` is covered by the rule for `example.com`: clients would be redirected in a loop",
        ),
        (
            "lines = [\"china\"]",
            "lines = [\"china\"]\nstatus = 303",
            "g.toml:15: redirect.rule `example.com`: status 303 is not 301, 302, 307 or 308",
        ),
        (
            "\"10.0.0.0/8\"",
            "\"10.0.0.0/33\"",
            "g.toml:6: redirect.trusted_proxies: `10.0.0.0/33` is not an address or CIDR prefix such as 10.0.0.0/8",
        ),
        (
            "url = \"https://example.com\"",
            "url = \"https://elsewhere.test\"",
            "g.toml:17: redirect.origin.url `https://elsewhere.test`: its host is not covered by any rule (passed-through clients keep the host they asked for)",
        ),
        (
            "address = \"127.0.0.1:0\"",
            "address = \"127.0.0.1:0\"\ntls = true",
            "g.toml:9: redirect.listen 127.0.0.1:0 has tls = true but no [[redirect.certificate]] is configured",
        ),
        (
            "from = \"example.com\"",
            "from = \"example.com/x\"",
            "g.toml:12: redirect.rule: from `example.com/x` is not a host name such as example.com",
        ),
    ] {
        let text = base.replace(from, to);
        match parse(&text) {
            Ok(_) => panic!("accepted: {to}"),
            Err(e) => assert_eq!(e.to_string(), want),
        }
    }
    let e = parse(&base.replace("[redirect.origin]", "[redirect.origin]\nurl2 = 1"))
        .expect_err("unknown key");
    assert!(e.to_string().starts_with("g.toml:"), "{e}");
    assert!(e.to_string().contains("url2"), "{e}");
}

#[tokio::test]
async fn an_unreachable_origin_gets_a_502_signed_by_the_redirector() {
    let dir = TempDir::new("redirect-502");
    // A port nothing listens on any more.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let config = site::Config::default()
        .line("china", &[r#"cidrs = ["1.2.4.0/22"]"#])
        .redirect(TRUSTED, dead);
    let path = dir.write("geoline.toml", &config.to_string());
    let config = Config::load(&path).expect("config loads");
    let running = server::start(&config).await.expect("server starts");
    let resp = get(
        running.redirect[0],
        TRUSTED,
        "www.example.com",
        "/",
        &[&format!("X-Forwarded-For: {ABROAD}")],
    )
    .await;
    assert_eq!(resp.status_line, "HTTP/1.1 502 Bad Gateway");
    // Which part of geoline answered, for the operator reading it: not "geoline proxy".
    assert_eq!(
        resp.body,
        "geoline redirect: cannot connect to the origin www.example.com\n"
    );
    running.shutdown().await;
}
