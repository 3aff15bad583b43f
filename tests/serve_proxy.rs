//! `geoline serve` with a `[proxy]` section: the rewriting proxy on its own listener, driven
//! through the same configuration file and start-up as the DNS server.

mod common;

use std::net::SocketAddr;

use common::http::{self, send_raw};
use common::origin::serving;
use common::{TempDir, TestServer, site};

/// An origin that names itself in a header and in an HTML body.
async fn origin() -> SocketAddr {
    serving(
        "text/html; charset=utf-8",
        &[("location", "https://www.example.com/next")],
        "<a href=\"https://www.example.com/x\">x</a> notexample.com example.com.au",
    )
    .await
}

async fn fetch(proxy: SocketAddr, host: &str, path: &str) -> String {
    let request = http::request("GET", host, path, &["Connection: close"]);
    send_raw(proxy, "127.0.0.1", request.as_bytes()).await
}

#[tokio::test]
async fn serve_runs_the_proxy_section() {
    let origin = origin().await;
    let dir = TempDir::new("serve-proxy");
    let config = site::write(&dir).table(
        "[proxy]",
        &[
            r#"listen = "127.0.0.1:0""#,
            &format!(r#"origin = "http://www.example.com:{}""#, origin.port()),
            &format!(r#"connect_to = "{origin}""#),
            r#"hosts = [
  { public = "example.cn", origin = "example.com" },
  { public = "www.example.cn", origin = "www.example.com" },
]"#,
        ],
    );
    let server = TestServer::start(&dir, &config).await;
    let proxy = server
        .running
        .proxy
        .first()
        .copied()
        .expect("a proxy listener");

    let response = fetch(proxy, "www.example.cn", "/page").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("\r\nlocation: https://www.example.cn/next\r\n"),
        "{response}"
    );
    // Chunked: the body changed length, so Content-Length went.
    assert!(
        response.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\r\n<a href=\"https://www.example.cn/x\">x</a> notexample.com example.com.au\r\n0\r\n\r\n"),
        "{response}"
    );

    // Only configured hosts: never an open proxy.
    let response = fetch(proxy, "elsewhere.example.org", "/page").await;
    assert!(response.starts_with("HTTP/1.1 421 "), "{response}");
    server.running.shutdown().await;
}

#[test]
fn a_bad_proxy_section_names_file_and_line() {
    let dir = TempDir::new("serve-proxy-bad");
    let config = site::write(&dir)
        .table(
            "[proxy]",
            &[
                r#"listen = "127.0.0.1:0""#,
                r#"origin = "http://example.com""#,
                "hosts = []",
                "connect_timeout_secs = 0",
            ],
        )
        .to_string();
    let path = dir.write("geoline.toml", &config);
    let e = geoline::config::Config::load(&path).expect_err("invalid proxy section");
    // The error names the line of the [proxy] table.
    let table = config
        .lines()
        .position(|l| l == "[proxy]")
        .expect("a [proxy] line")
        + 1;
    assert_eq!(
        e.to_string(),
        format!(
            "{}:{}: proxy.connect_timeout_secs = 0: outside the allowed range (seconds)",
            path.display(),
            table
        )
    );
}
