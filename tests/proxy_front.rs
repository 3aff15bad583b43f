//! `[proxy]` on the HTTP front-end it shares with the redirector, end to end through
//! `geoline::server::start`: several listeners, TLS with SNI certificates of its own
//! (reloaded while serving, listed in /status), PROXY protocol from trusted relays only,
//! the header and slow-client limits, and /healthz by address.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{self, Response, connect, read_until_closed};
use common::origin::{full, response};
use common::tls::{TestCa, client_config};
use common::{TempDir, mmdb, site};
use geoline::config::Config;
use geoline::internal::{Trigger, proxy_protocol};
use geoline::server::{self, Running};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const TRUSTED: &str = "127.0.0.1";
const UNTRUSTED: &str = "127.0.0.2";

/// An origin echoing what it was told about the client, with its own name in the body.
async fn origin() -> SocketAddr {
    common::origin::origin(|req| async move {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        let body = format!(
            "host={} path={} xff={} proto={} <a href=\"https://www.example.com/x\">x</a>",
            header("host"),
            req.uri().path(),
            header("x-forwarded-for"),
            header("x-forwarded-proto"),
        );
        response(200, &[("content-type", "text/html")], full(body))
    })
    .await
}

struct Server {
    running: Running,
    admin: SocketAddr,
    /// HTTPS, PROXY protocol, plain: the proxy's listeners in configuration order.
    https: SocketAddr,
    proxied: SocketAddr,
    plain: SocketAddr,
    origin_port: u16,
    ca: CertificateDer<'static>,
    cert_cn: CertificateDer<'static>,
    test_ca: TestCa,
    dir: TempDir,
}

/// The redirector (HTTPS, its own certificate for example.com) and the proxy (three
/// listeners, a certificate for example.cn) in one server.
async fn start() -> Server {
    let dir = TempDir::new("proxy-front");
    mmdb::write_ip_location_db(&dir.path().join("geo.mmdb"), &[("1.2.4.0/22", "CN")]);
    let test_ca = TestCa::new();
    let com = test_ca.leaf(&["example.com"]);
    let cn = test_ca.leaf(&["example.cn", "*.example.cn"]);
    for (name, text) in [
        ("com.pem", &com.cert_pem),
        ("com.key", &com.key_pem),
        ("cn.pem", &cn.cert_pem),
        ("cn.key", &cn.key_pem),
    ] {
        dir.write(name, text);
    }
    let up = origin().await;
    let config = site::Config::default()
        .geoip("geo.mmdb")
        .line("china", &[r#"countries = ["CN"]"#])
        .admin()
        .redirect(TRUSTED, up)
        .table(
            "[[redirect.listen]]",
            &[r#"address = "127.0.0.1:0""#, "tls = true"],
        )
        .table(
            "[[redirect.certificate]]",
            &[
                r#"names = ["example.com"]"#,
                r#"cert = "com.pem""#,
                r#"key = "com.key""#,
            ],
        )
        .table(
            "[proxy]",
            &[
                &format!(r#"origin = "http://www.example.com:{}""#, up.port()),
                &format!(r#"connect_to = "{up}""#),
                r#"hosts = [
  { public = "example.cn", origin = "example.com" },
  { public = "www.example.cn", origin = "www.example.com" },
]"#,
                &format!("trusted_proxies = [{TRUSTED:?}]"),
                "header_read_timeout_secs = 1",
                "max_header_bytes = 8192",
                "max_headers = 20",
            ],
        )
        .table(
            "[[proxy.listen]]",
            &[r#"address = "127.0.0.1:0""#, "tls = true"],
        )
        .table(
            "[[proxy.listen]]",
            &[r#"address = "127.0.0.1:0""#, "proxy_protocol = true"],
        )
        .table("[[proxy.listen]]", &[r#"address = "127.0.0.1:0""#])
        .table(
            "[[proxy.certificate]]",
            &[
                r#"names = ["example.cn", "*.example.cn"]"#,
                r#"cert = "cn.pem""#,
                r#"key = "cn.key""#,
            ],
        );
    let config = config.to_string();
    let path = dir.write("geoline.toml", &config);
    let config = Config::load(&path).expect("config loads");
    let running = server::start(&config).await.expect("server starts");
    let [https, proxied, plain] = running.proxy[..] else {
        panic!("three proxy listeners: {:?}", running.proxy)
    };
    Server {
        admin: running.admin.expect("admin"),
        running,
        https,
        proxied,
        plain,
        origin_port: up.port(),
        ca: test_ca.der(),
        cert_cn: cn.der,
        test_ca,
        dir,
    }
}

fn request(host: &str, path: &str, extra: &[&str]) -> String {
    http::request("GET", host, path, extra)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, request: &[u8]) -> Response {
    http::exchange(s, request, Duration::from_secs(10)).await
}

/// What the origin answers for `path` asked as www.example.cn, as the proxy rewrites it
/// (the `Host` it got, www.example.com with the origin's port, comes back public too).
fn origin_body(s: &Server, path: &str, xff: &str, proto: &str) -> String {
    format!(
        "host=www.example.cn:{} path={path} xff={xff} proto={proto} <a href=\"https://www.example.cn/x\">x</a>",
        s.origin_port
    )
}

async fn tls_connect(
    s: &Server,
    sni: &str,
    alpn: &[&[u8]],
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    let tcp = connect(s.https, TRUSTED).await;
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    tokio_rustls::TlsConnector::from(client_config(&s.ca, alpn))
        .connect(name, tcp)
        .await
}

fn served_cert(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("certificates")[0].clone()
}

#[tokio::test]
async fn tls_with_the_proxys_own_certificates() {
    let s = start().await;
    for sni in ["www.example.cn", "example.cn"] {
        let tls = tls_connect(&s, sni, &[b"h2", b"http/1.1"])
            .await
            .expect("handshake");
        assert_eq!(served_cert(&tls), s.cert_cn, "{sni}");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        drop(tls);
        let mut tls = tls_connect(&s, sni, &[b"http/1.1"])
            .await
            .expect("handshake");
        let resp = exchange(&mut tls, request(sni, "/tls", &[]).as_bytes()).await;
        assert_eq!(resp.status, 200, "{sni}: {}", resp.body);
        let want = origin_body(&s, "/tls", TRUSTED, "https");
        let want = if sni == "example.cn" {
            want.replacen("host=www.", "host=", 1)
        } else {
            want
        };
        assert_eq!(resp.body, want);
    }
    // The redirector's certificate stays the redirector's: asked for example.com, the
    // proxy's listener falls back to its own first certificate, which a client checking
    // the name refuses.
    let err = tls_connect(&s, "example.com", &[b"http/1.1"])
        .await
        .expect_err("the proxy has no certificate for example.com");
    assert!(
        err.to_string()
            .contains("certificate not valid for name \"example.com\""),
        "{err}"
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_proxys_certificate_reloads_and_is_listed() {
    let s = start().await;
    let mut before = tls_connect(&s, "www.example.cn", &[b"http/1.1"])
        .await
        .expect("handshake");
    let renewed = s.test_ca.leaf(&["example.cn", "*.example.cn"]);
    let dir = s.dir.path();
    std::fs::write(dir.join("cn.key.tmp"), &renewed.key_pem).expect("write key");
    std::fs::write(dir.join("cn.pem.tmp"), &renewed.cert_pem).expect("write cert");
    std::fs::rename(dir.join("cn.key.tmp"), dir.join("cn.key")).expect("rename key");
    std::fs::rename(dir.join("cn.pem.tmp"), dir.join("cn.pem")).expect("rename cert");
    s.running.reloader.reload_all(Trigger::Admin).await;
    let tls = tls_connect(&s, "www.example.cn", &[b"http/1.1"])
        .await
        .expect("handshake");
    assert_eq!(served_cert(&tls), renewed.der);
    // The connection made before keeps working.
    let resp = exchange(
        &mut before,
        request("www.example.cn", "/old", &[]).as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 200);

    // /status lists both front-ends' certificates: names, expiry, last reload.
    let status = http::get(s.admin, "/status", None).await.json();
    let certs = status["certificates"].as_array().expect("certificates");
    assert_eq!(certs.len(), 2, "{status}");
    assert_eq!(certs[0]["names"], serde_json::json!(["example.com"]));
    assert_eq!(
        certs[1]["names"],
        serde_json::json!(["example.cn", "*.example.cn"])
    );
    assert_eq!(
        certs[1]["cert"],
        dir.join("cn.pem").display().to_string().as_str()
    );
    // rcgen's default validity ends on 4096-01-01 (a GeneralizedTime).
    assert_eq!(certs[1]["not_after"], "4096-01-01T00:00:00Z");
    assert_eq!(certs[1]["last_reload"]["result"], "ok");
    assert_eq!(certs[1]["last_reload"]["trigger"], "admin");
    s.running.shutdown().await;
}

#[tokio::test]
async fn proxy_protocol_is_believed_from_trusted_relays_only() {
    let s = start().await;
    let req = request("www.example.cn", "/pp", &[]);
    let mut c = connect(s.proxied, TRUSTED).await;
    let mut v2 = proxy_protocol::encode_v2(
        "203.0.113.7:4711".parse().expect("src"),
        "127.0.0.1:443".parse().expect("dst"),
    );
    v2.extend_from_slice(req.as_bytes());
    let resp = exchange(&mut c, &v2).await;
    assert_eq!(resp.body, origin_body(&s, "/pp", "203.0.113.7", "http"));

    let mut c = connect(s.proxied, TRUSTED).await;
    let v1 = format!("PROXY TCP4 198.51.100.9 127.0.0.1 5555 443\r\n{req}");
    let resp = exchange(&mut c, v1.as_bytes()).await;
    assert_eq!(resp.body, origin_body(&s, "/pp", "198.51.100.9", "http"));

    // From a peer that is no trusted relay, the header is read and ignored.
    let mut c = connect(s.proxied, UNTRUSTED).await;
    let resp = exchange(&mut c, v1.as_bytes()).await;
    assert_eq!(resp.body, origin_body(&s, "/pp", UNTRUSTED, "http"));

    // Without a header the connection is closed without a byte.
    let mut c = connect(s.proxied, TRUSTED).await;
    c.write_all(req.as_bytes()).await.expect("write");
    assert_eq!(read_until_closed(&mut c, Duration::from_secs(5)).await, b"");
    s.running.shutdown().await;
}

#[tokio::test]
async fn healthz_by_address_and_the_limits() {
    let s = start().await;
    for host in ["127.0.0.1:8443", "lb-probe.internal"] {
        let mut c = connect(s.plain, UNTRUSTED).await;
        let resp = exchange(&mut c, request(host, "/healthz", &[]).as_bytes()).await;
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
    // Under a served host the path is the site's.
    let mut c = connect(s.plain, UNTRUSTED).await;
    let resp = exchange(
        &mut c,
        request("www.example.cn", "/healthz", &[]).as_bytes(),
    )
    .await;
    assert_eq!(resp.body, origin_body(&s, "/healthz", UNTRUSTED, "http"));
    // Other paths of other hosts are still refused.
    let mut c = connect(s.plain, UNTRUSTED).await;
    let resp = exchange(&mut c, request("example.org", "/healthz/x", &[]).as_bytes()).await;
    assert_eq!(resp.status, 421);

    // max_header_bytes and max_headers.
    for extra in [
        vec![format!("X-Big: {}", "a".repeat(10_000))],
        (0..30).map(|i| format!("X-H{i}: {i}")).collect(),
    ] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut c = connect(s.plain, UNTRUSTED).await;
        c.write_all(request("www.example.cn", "/", &extra).as_bytes())
            .await
            .expect("write");
        let out = read_until_closed(&mut c, Duration::from_secs(5)).await;
        let out = String::from_utf8(out).expect("ASCII");
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{out}"
        );
    }

    // header_read_timeout_secs = 1: half a head, or nothing, is cut off in 1 to 2 s.
    let started = Instant::now();
    let mut partial = connect(s.plain, UNTRUSTED).await;
    partial
        .write_all(b"GET / HTTP/1.1\r\nHost: www.exa")
        .await
        .expect("write");
    let mut silent_tls = connect(s.https, UNTRUSTED).await;
    for c in [&mut partial, &mut silent_tls] {
        let got = read_until_closed(c, Duration::from_secs(5)).await;
        let got = String::from_utf8(got).expect("ASCII");
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408 "), "{got}");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "closed too late: {took:?}");
    s.running.shutdown().await;
}
