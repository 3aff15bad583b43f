//! The HTTP front-ends' families in `/metrics`, end to end through `geoline::server::start`:
//! the redirector's responses by rule, line and status class, its pass-through latency and
//! errors by kind; each listener's connections and TLS handshakes (completed, failed,
//! resumed); the proxy's responses by status class, body bytes in and out, rewrites,
//! body stage times, upstream errors and latency. Each is asserted as the exact line the
//! admin listener serves.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::http::{self, connect};
use common::origin::{full, response};
use common::proxy::{encode, get, read};
use common::tls::{TestCa, client_config};
use common::{TempDir, TestServer, site};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;

const TRUSTED: &str = "127.0.0.1";

/// An origin: `/boom` is a 500, `/gz` a gzip'd text naming both origin hosts, anything
/// else a plain text naming them.
async fn origin() -> SocketAddr {
    common::origin::origin(|req| async move {
        let text = "see example.com and www.example.com";
        match req.uri().path() {
            "/boom" => response(500, &[("content-type", "text/plain")], full("boom")),
            "/gz" => response(
                200,
                &[("content-type", "text/plain"), ("content-encoding", "gzip")],
                full(encode("gzip", text.as_bytes()).await),
            ),
            _ => response(200, &[("content-type", "text/plain")], full(text)),
        }
    })
    .await
}

/// The example site with the redirector on a plain listener and a TLS one (a certificate
/// for example.com from `ca`), passing through to `up`.
fn tls_redirector(dir: &TempDir, ca: &TestCa, up: SocketAddr) -> site::Config {
    let com = ca.leaf(&["example.com"]);
    dir.write("com.pem", &com.cert_pem);
    dir.write("com.key", &com.key_pem);
    site::write(dir)
        .table("[reload]", &["watch = false"])
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
}

async fn metrics(admin: SocketAddr) -> String {
    let r = http::get(admin, "/metrics", None).await;
    assert_eq!(r.status, 200);
    r.body
}

#[track_caller]
fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line `{line}` in:\n{}",
        text.lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(line.split('{').next().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A plain request to `to` naming `host`, from a client the trusted relay says is
/// `client`; the response.
async fn ask(to: SocketAddr, host: &str, path: &str, client: &str) -> http::Response {
    let xff = format!("X-Forwarded-For: {client}");
    let raw = http::request("GET", host, path, &["Connection: close", &xff]);
    let mut s = connect(to, TRUSTED).await;
    http::exchange(&mut s, raw.as_bytes(), Duration::from_secs(10)).await
}

#[tokio::test]
async fn the_redirector_counts_by_rule_line_and_status_and_its_listeners_handshakes() {
    let dir = TempDir::new("front-metrics-redirect");
    let ca = TestCa::new();
    let up = origin().await;
    let config = tls_redirector(&dir, &ca, up);
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    let [plain, tls] = server.running.redirect[..] else {
        panic!("two listeners: {:?}", server.running.redirect)
    };

    assert_eq!(ask(plain, "example.com", "/a", "1.2.4.5").await.status, 301);
    assert_eq!(
        ask(plain, "www.example.com", "/ok", "8.8.8.8").await.status,
        200
    );
    assert_eq!(
        ask(plain, "example.com", "/boom", "8.8.8.8").await.status,
        500
    );
    assert_eq!(ask(plain, "example.org", "/x", "8.8.8.8").await.status, 421);
    assert_eq!(
        ask(plain, "a@example.com", "/x", "8.8.8.8").await.status,
        400
    );
    assert_eq!(
        ask(plain, "10.0.0.1", "/healthz", "8.8.8.8").await.status,
        200
    );

    // Two handshakes with one client configuration: the second resumes the session of
    // the first (whose tickets the client reads with the response).
    let client = client_config(&ca.der(), &[b"http/1.1"]);
    for _ in 0..2 {
        let tcp = connect(tls, TRUSTED).await;
        let name = ServerName::try_from("example.com").expect("name");
        let mut s = tokio_rustls::TlsConnector::from(Arc::clone(&client))
            .connect(name, tcp)
            .await
            .expect("handshake");
        let raw = http::request(
            "GET",
            "example.com",
            "/t",
            &["Connection: close", "X-Forwarded-For: 1.2.4.5"],
        );
        let r = http::exchange(&mut s, raw.as_bytes(), Duration::from_secs(10)).await;
        assert_eq!(r.status, 301);
    }
    // Not TLS at all: a failed handshake.
    let mut s = connect(tls, TRUSTED).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .await
        .expect("write");
    let _ = http::read_until_closed(&mut s, Duration::from_secs(10)).await;

    let m = metrics(admin).await;
    let rule = |line: &str, code: &str, n: u32| {
        format!(
            "geoline_redirect_http_responses_total{{rule=\"example.com\",line=\"{line}\",code=\"{code}\"}} {n}"
        )
    };
    has(&m, &rule("china", "3xx", 3));
    has(&m, &rule("default", "3xx", 0));
    has(&m, &rule("default", "2xx", 1));
    has(&m, &rule("default", "5xx", 1));
    has(
        &m,
        "geoline_redirect_http_responses_total{rule=\"-\",line=\"-\",code=\"4xx\"} 2",
    );
    has(
        &m,
        "geoline_redirect_http_responses_total{rule=\"-\",line=\"-\",code=\"2xx\"} 1",
    );
    has(&m, "geoline_redirect_errors_total{kind=\"bad_request\"} 1");
    has(&m, "geoline_redirect_errors_total{kind=\"misdirected\"} 1");
    has(
        &m,
        "geoline_redirect_errors_total{kind=\"upstream_connect\"} 0",
    );
    has(&m, "geoline_redirect_pass_through_duration_seconds_count 2");
    has(
        &m,
        "geoline_redirect_pass_through_duration_seconds_bucket{le=\"+Inf\"} 2",
    );
    has(
        &m,
        "geoline_redirect_requests_total{outcome=\"redirected\"} 3",
    );

    let l = |kind: &str| format!("role=\"redirect\",listener=\"{tls}\",{kind}");
    has(
        &m,
        &format!("geoline_http_connections_total{{role=\"redirect\",listener=\"{tls}\"}} 3"),
    );
    has(
        &m,
        &format!("geoline_http_connections_total{{role=\"redirect\",listener=\"{plain}\"}} 6"),
    );
    has(
        &m,
        &format!(
            "geoline_http_tls_handshakes_total{{{}}} 2",
            l("result=\"completed\"")
        ),
    );
    has(
        &m,
        &format!(
            "geoline_http_tls_handshakes_total{{{}}} 1",
            l("result=\"failed\"")
        ),
    );
    has(
        &m,
        &format!(
            "geoline_http_tls_resumed_handshakes_total{{role=\"redirect\",listener=\"{tls}\"}} 1"
        ),
    );
    has(
        &m,
        &format!(
            "geoline_http_connection_errors_total{{{}}} 1",
            l("kind=\"tls\"")
        ),
    );
    has(
        &m,
        &format!(
            "geoline_http_connection_errors_total{{{}}} 0",
            l("kind=\"proxy_protocol\"")
        ),
    );
    // A plain listener has no handshakes to count.
    assert!(!m.contains(&format!(
        "geoline_http_tls_handshakes_total{{role=\"redirect\",listener=\"{plain}\""
    )));
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_redirectors_unreachable_origin_is_an_upstream_error() {
    let dir = TempDir::new("front-metrics-upstream");
    // Nothing listens on the discard port.
    let origin: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let config = site::write(&dir)
        .table("[reload]", &["watch = false"])
        .redirect(TRUSTED, origin);
    let server = TestServer::start(&dir, &config).await;
    let r = ask(server.running.redirect[0], "example.com", "/", "8.8.8.8").await;
    assert_eq!(r.status, 502);
    let m = metrics(server.admin.expect("admin")).await;
    has(
        &m,
        "geoline_redirect_errors_total{kind=\"upstream_connect\"} 1",
    );
    has(
        &m,
        "geoline_redirect_errors_total{kind=\"upstream_timeout\"} 0",
    );
    has(
        &m,
        "geoline_redirect_http_responses_total{rule=\"example.com\",line=\"default\",code=\"5xx\"} 1",
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_proxy_counts_statuses_bytes_rewrites_and_stage_times() {
    let dir = TempDir::new("front-metrics-proxy");
    let up = origin().await;
    let config = site::write(&dir)
        .table("[reload]", &["watch = false"])
        .table(
            "[proxy]",
            &[
                r#"origin = "http://example.com""#,
                &format!(r#"connect_to = "{up}""#),
                r#"hosts = [
  { public = "example.cn", origin = "example.com" },
  { public = "www.example.cn", origin = "www.example.com" },
]"#,
                r#"access_log = "off""#,
            ],
        )
        .table("[[proxy.listen]]", &[r#"address = "127.0.0.1:0""#]);
    let server = TestServer::start(&dir, &config).await;
    let proxy = server.running.proxy[0];

    let (status, _, plain_body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, 200);
    assert_eq!(plain_body, "see example.cn and www.example.cn");
    let (status, headers, gz_body) =
        read(get(proxy, "example.cn", "/gz", &[("accept-encoding", "gzip")]).await).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    let (status, _, other_body) = read(get(proxy, "other.test", "/", &[]).await).await;
    assert_eq!(status, 421);
    let raw = "POST /form HTTP/1.1\r\nHost: example.cn\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello=world";
    let mut s = connect(proxy, TRUSTED).await;
    let posted = http::exchange(&mut s, raw.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(posted.status, 200);

    let m = metrics(server.admin.expect("admin")).await;
    has(&m, "geoline_proxy_requests_total 4");
    has(&m, "geoline_proxy_http_responses_total{code=\"2xx\"} 3");
    has(&m, "geoline_proxy_http_responses_total{code=\"4xx\"} 1");
    has(&m, "geoline_proxy_http_responses_total{code=\"5xx\"} 0");
    has(&m, "geoline_proxy_rewritten_responses_total 3");
    has(&m, "geoline_proxy_replacements_total 6");
    has(&m, "geoline_proxy_bytes_total{direction=\"in\"} 11");
    let out = plain_body.len() + gz_body.len() + other_body.len() + posted.body.len();
    has(
        &m,
        &format!("geoline_proxy_bytes_total{{direction=\"out\"}} {out}"),
    );
    has(
        &m,
        "geoline_proxy_upstream_errors_total{kind=\"connect\"} 0",
    );
    has(&m, "geoline_proxy_request_duration_seconds_count 4");
    has(
        &m,
        "geoline_proxy_request_duration_seconds_bucket{le=\"+Inf\"} 4",
    );
    // Decoding and encoding the gzip'd body took some time; each stage is counted.
    for stage in ["decode", "rewrite", "encode"] {
        let prefix = format!("geoline_proxy_body_seconds_total{{stage=\"{stage}\"}} ");
        let line = m.lines().find(|l| l.starts_with(&prefix)).expect(&prefix);
        let secs: f64 = line[prefix.len()..].parse().expect("seconds");
        assert!(secs > 0.0, "{line}");
    }
    // The proxy's plain listener: no TLS families.
    has(
        &m,
        &format!("geoline_http_connections_total{{role=\"proxy\",listener=\"{proxy}\"}} 4"),
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn status_lists_every_http_listener_with_its_certificates() {
    let dir = TempDir::new("front-status");
    let ca = TestCa::new();
    let up = origin().await;
    let config = tls_redirector(&dir, &ca, up)
        .table(
            "[proxy]",
            &[
                r#"origin = "http://example.com""#,
                &format!(r#"connect_to = "{up}""#),
                r#"hosts = [{ public = "example.cn", origin = "example.com" }]"#,
                r#"access_log = "off""#,
                &format!("trusted_proxies = [{TRUSTED:?}]"),
            ],
        )
        .table(
            "[[proxy.listen]]",
            &[r#"address = "127.0.0.1:0""#, "proxy_protocol = true"],
        );
    let server = TestServer::start(&dir, &config).await;
    server
        .running
        .reloader
        .reload_all(geoline::internal::Trigger::Admin)
        .await;
    let status = http::get(server.admin.expect("admin"), "/status", None)
        .await
        .json();
    let [plain, tls] = server.running.redirect[..] else {
        panic!("two listeners")
    };
    let proxied = server.running.proxy[0];
    let listeners = status["listeners"].as_array().expect("listeners");
    assert_eq!(listeners.len(), 3, "{status}");
    assert_eq!(
        listeners[0],
        serde_json::json!({
            "role": "redirect",
            "address": plain.to_string(),
            "tls": false,
            "proxy_protocol": false,
            "certificates": [],
        })
    );
    let t = &listeners[1];
    assert_eq!(t["role"], "redirect");
    assert_eq!(t["address"], tls.to_string());
    assert_eq!(t["tls"], true);
    assert_eq!(t["proxy_protocol"], false);
    let cert = &t["certificates"][0];
    assert_eq!(cert["names"], serde_json::json!(["example.com"]));
    assert_eq!(
        cert["cert"],
        dir.path().join("com.pem").display().to_string()
    );
    assert_eq!(cert["issuer"], "CN=geoline test CA");
    // rcgen's default validity ends on 4096-01-01.
    assert_eq!(cert["not_after"], "4096-01-01T00:00:00Z");
    assert_eq!(cert["last_reload"]["result"], "ok");
    assert_eq!(cert["last_reload"]["trigger"], "admin");
    assert_eq!(cert["last_reload"]["error"], serde_json::Value::Null);
    assert_eq!(
        listeners[2],
        serde_json::json!({
            "role": "proxy",
            "address": proxied.to_string(),
            "tls": false,
            "proxy_protocol": true,
            "certificates": [],
        })
    );
    server.running.shutdown().await;
}
