//! The configuration reload of `[redirect]` and `[proxy]`, end to end through
//! `geoline::server::start` and `POST /reload`: rules, host pairs, the access log target
//! and limits apply live; the next request sees them on a kept-alive connection as on a
//! new one (each request takes the front-end's app current when its head is read); the
//! counters go on; a listener added applies with the rest; an edit that cannot be built
//! applies nothing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{self, connect};
use common::origin::{full, response};
use common::{TempDir, TestServer, site};
use tokio::net::TcpStream;

const TRUSTED: &str = "127.0.0.1";
/// In the `china` line of the example site's database.
const CHINA: &str = "X-Forwarded-For: 1.2.4.5";

async fn origin() -> SocketAddr {
    common::origin::origin(|req| async move {
        let body = format!("origin saw {}", req.uri().path());
        response(200, &[("content-type", "text/plain")], full(body))
    })
    .await
}

/// One request on `s` (kept alive), from a client in the china line.
async fn ask(s: &mut TcpStream, host: &str, path: &str) -> http::Response {
    let raw = http::request("GET", host, path, &[CHINA]);
    http::exchange(s, raw.as_bytes(), Duration::from_secs(10)).await
}

async fn reload(admin: SocketAddr) -> (u16, serde_json::Value) {
    let r = http::post(admin, "/reload", None).await;
    (r.status, r.json())
}

fn redirector(dir: &TempDir, up: SocketAddr) -> site::Config {
    site::write(dir)
        .table("[reload]", &["watch = false"])
        .redirect(TRUSTED, up)
}

#[tokio::test]
async fn a_rule_change_is_seen_by_the_next_request_on_a_kept_alive_connection() {
    let dir = TempDir::new("front-reload-rule");
    let up = origin().await;
    let config = redirector(&dir, up);
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    let addr = server.running.redirect[0];

    let mut kept = connect(addr, TRUSTED).await;
    let r = ask(&mut kept, "www.example.com", "/before").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://www.example.cn/before"));

    // The rule's target, its status, the access log (off → a file) and a limit, at once.
    let edited = config
        .set(
            "[[redirect.rule]]",
            &[r#"to = "example.net""#, "status = 302"],
        )
        .set(
            "[redirect]",
            &[r#"access_log = "redirect.log""#, "max_headers = 8"],
        );
    dir.write("geoline.toml", &edited.to_string());
    let (status, body) = reload(admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["config"],
        serde_json::json!({"ok": true, "applied": ["[redirect]"]})
    );

    // The same connection: the next request has the new rule.
    let r = ask(&mut kept, "www.example.com", "/after").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://www.example.net/after"));
    // A new connection too, with the new limit: 9 header fields are too many.
    let mut fresh = connect(addr, TRUSTED).await;
    let r = ask(&mut fresh, "example.com", "/new").await;
    assert_eq!(r.header("location"), Some("https://example.net/new"));
    let many: Vec<String> = (0..8).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let raw = http::request("GET", "example.com", "/many", &many);
    let mut s = connect(addr, TRUSTED).await;
    let r = http::exchange(&mut s, raw.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(r.status, 431, "{r:?}");

    // The counters went on across the reload.
    let m = http::get(admin, "/metrics", None).await.body;
    assert!(
        m.lines()
            .any(|l| l == "geoline_redirect_requests_total{outcome=\"redirected\"} 3"),
        "{m}"
    );
    // /status says what the last configuration reload applied.
    let status = http::get(admin, "/status", None).await.json();
    assert_eq!(
        status["config"]["last_reload"]["applied"],
        serde_json::json!(["[redirect]"])
    );

    server.running.shutdown().await;
    // The new access log has the requests made after the reload, none from before.
    let log = std::fs::read_to_string(dir.path().join("redirect.log")).expect("access log");
    assert!(log.contains("\"/after\""), "{log}");
    assert!(log.contains("\"/new\""), "{log}");
    assert!(!log.contains("/before"), "{log}");
}

#[tokio::test]
async fn proxy_host_pairs_reload_and_its_counters_go_on() {
    let dir = TempDir::new("front-reload-proxy");
    let up = origin().await;
    let config = site::write(&dir)
        .table("[reload]", &["watch = false"])
        .table(
            "[proxy]",
            &[
                r#"origin = "http://example.com""#,
                &format!(r#"connect_to = "{up}""#),
                r#"hosts = [{ public = "example.cn", origin = "example.com" }]"#,
                r#"access_log = "off""#,
            ],
        )
        .table("[[proxy.listen]]", &[r#"address = "127.0.0.1:0""#]);
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    let proxy = server.running.proxy[0];
    let mut kept = connect(proxy, TRUSTED).await;
    assert_eq!(ask(&mut kept, "example.cn", "/a").await.status, 200);
    assert_eq!(ask(&mut kept, "example.org", "/a").await.status, 421);

    let edited = config.set(
        "[proxy]",
        &[r#"hosts = [{ public = "example.org", origin = "example.com" }]"#],
    );
    dir.write("geoline.toml", &edited.to_string());
    let (status, body) = reload(admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["applied"], serde_json::json!(["[proxy]"]));

    let r = ask(&mut kept, "example.org", "/b").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "origin saw /b");
    assert_eq!(ask(&mut kept, "example.cn", "/b").await.status, 421);
    let m = http::get(admin, "/metrics", None).await.body;
    assert!(
        m.lines().any(|l| l == "geoline_proxy_requests_total 4"),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l == "geoline_proxy_error_responses_total{status=\"421\"} 2"),
        "{m}"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_listener_added_applies_and_an_edit_that_cannot_be_built_applies_nothing() {
    let dir = TempDir::new("front-reload-listener");
    let up = origin().await;
    let config = redirector(&dir, up);
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    let addr = server.running.redirect[0];

    // A second listener and a new rule: both apply (tests/front_listeners.rs drives the
    // listeners' reload through the binary).
    let edited = config
        .clone()
        .set("[[redirect.rule]]", &[r#"to = "example.net""#])
        .table("[[redirect.listen]]", &[r#"address = "127.0.0.1:0""#]);
    dir.write("geoline.toml", &edited.to_string());
    let (status, body) = reload(admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["applied"], serde_json::json!(["[redirect]"]));
    let listeners = http::get(admin, "/status", None).await.json()["listeners"].clone();
    let listeners = listeners.as_array().expect("listeners");
    assert_eq!(listeners.len(), 2, "{listeners:?}");
    assert_eq!(listeners[0]["address"], addr.to_string());
    let added: SocketAddr = listeners[1]["address"]
        .as_str()
        .expect("address")
        .parse()
        .expect("an address");
    assert_ne!(added.port(), 0);
    let mut s = connect(added, TRUSTED).await;
    let r = ask(&mut s, "example.com", "/").await;
    assert_eq!(r.header("location"), Some("https://example.net/"));
    let mut s = connect(addr, TRUSTED).await;

    // An origin that cannot be set up (its CA file is missing): refused whole, the rule
    // edited with it is not applied either.
    let edited = config
        .set("[[redirect.rule]]", &[r#"to = "example.org""#])
        .set("[redirect.origin]", &[r#"ca_file = "missing-ca.pem""#]);
    dir.write("geoline.toml", &edited.to_string());
    let (status, body) = reload(admin).await;
    assert_eq!(status, 422, "{body}");
    let error = body["config"]["error"].as_str().expect("error");
    assert!(error.contains("missing-ca.pem"), "{error}");
    let r = ask(&mut s, "example.com", "/").await;
    assert_eq!(r.header("location"), Some("https://example.net/"));
    // The edit would have removed the second listener: it serves on.
    let mut s = connect(added, TRUSTED).await;
    let r = ask(&mut s, "example.com", "/b").await;
    assert_eq!(r.header("location"), Some("https://example.net/b"));
    server.running.shutdown().await;
}
