//! `[proxy]` telling the origin who the client is: `X-Forwarded-For` appended,
//! `X-Forwarded-Proto`/`-Host`, `Forwarded` (RFC 7239), and the request's own forwarding
//! headers kept only from trusted proxies (or as configured), over real sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{self, connect};
use common::origin::{full, response};
use common::{TempDir, site};
use geoline::config::Config;
use geoline::internal::proxy_protocol;
use geoline::server::{self, Running};

/// An origin answering with the forwarding headers it got, one per line.
async fn origin() -> SocketAddr {
    common::origin::origin(|req| async move {
        let header = |name: &str| {
            let values: Vec<&str> = req
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            format!(
                "{name}: {}",
                if values.is_empty() {
                    "-".to_string()
                } else {
                    values.join(" | ")
                }
            )
        };
        let body = [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
        ]
        .map(header)
        .join("\n");
        response(
            200,
            &[("content-type", "application/octet-stream")],
            full(body),
        )
    })
    .await
}

/// A server whose [proxy] has a plain listener and a PROXY protocol one, trusting
/// 127.0.0.1, with `extra` keys.
async fn start(dir: &TempDir, extra: &[&str]) -> (Running, SocketAddr, SocketAddr) {
    let up = origin().await;
    let mut keys = vec![
        format!(r#"origin = "http://example.com:{}""#, up.port()),
        format!(r#"connect_to = "{up}""#),
        r#"hosts = [{ public = "www.example.cn", origin = "www.example.com" }, { public = "example.cn", origin = "example.com" }]"#.to_string(),
        r#"trusted_proxies = ["127.0.0.1"]"#.to_string(),
    ];
    keys.extend(extra.iter().map(|k| k.to_string()));
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let config = site::Config::default()
        .table("[proxy]", &keys)
        .table("[[proxy.listen]]", &[r#"address = "127.0.0.1:0""#])
        .table(
            "[[proxy.listen]]",
            &[r#"address = "127.0.0.1:0""#, "proxy_protocol = true"],
        );
    let path = dir.write("geoline.toml", &config.to_string());
    let config = Config::load(&path).expect("config loads");
    let running = server::start(&config).await.expect("server starts");
    let [plain, proxied] = running.proxy[..] else {
        panic!("two listeners: {:?}", running.proxy)
    };
    (running, plain, proxied)
}

/// What the origin got for a request sent from `from` (a PROXY header first if given).
async fn seen(to: SocketAddr, from: &str, prefix: &[u8], host: &str, headers: &[&str]) -> String {
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(http::request("GET", host, "/", headers).as_bytes());
    let mut c = connect(to, from).await;
    let resp = http::exchange(&mut c, &bytes, Duration::from_secs(10)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.body
}

const FORGED: &[&str] = &[
    "X-Forwarded-For: 6.6.6.6",
    "X-Forwarded-Proto: https",
    "Forwarded: for=6.6.6.6;proto=https",
];

#[tokio::test]
async fn forwarding_headers_by_default() {
    let dir = TempDir::new("proxy-forwarded");
    let (running, plain, proxied) = start(&dir, &[]).await;

    // An untrusted client's own claims are replaced.
    assert_eq!(
        seen(plain, "127.0.0.2", b"", "www.example.cn", FORGED).await,
        "x-forwarded-for: 127.0.0.2\n\
         x-forwarded-proto: http\n\
         x-forwarded-host: www.example.cn\n\
         forwarded: for=127.0.0.2;proto=http;host=www.example.cn"
    );
    // A trusted proxy's are kept and appended to; a host with a port is quoted.
    assert_eq!(
        seen(plain, "127.0.0.1", b"", "example.cn:8080", FORGED).await,
        "x-forwarded-for: 6.6.6.6, 127.0.0.1\n\
         x-forwarded-proto: http\n\
         x-forwarded-host: example.cn:8080\n\
         forwarded: for=6.6.6.6;proto=https, for=127.0.0.1;proto=http;host=\"example.cn:8080\""
    );
    // Behind a relay speaking PROXY protocol the client is the header's source, and what
    // it sent in HTTP is its own: replaced.
    let v2 = proxy_protocol::encode_v2(
        "203.0.113.7:4711".parse().expect("src"),
        "127.0.0.1:443".parse().expect("dst"),
    );
    assert_eq!(
        seen(proxied, "127.0.0.1", &v2, "www.example.cn", FORGED).await,
        "x-forwarded-for: 203.0.113.7\n\
         x-forwarded-proto: http\n\
         x-forwarded-host: www.example.cn\n\
         forwarded: for=203.0.113.7;proto=http;host=www.example.cn"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn forwarding_headers_as_configured() {
    let dir = TempDir::new("proxy-forwarded-conf");
    let (running, plain, _) = start(
        &dir,
        &[
            r#"forward_headers = ["forwarded"]"#,
            r#"incoming_forwarded = "replace""#,
        ],
    )
    .await;
    // Even from the trusted proxy: replaced, and only Forwarded is sent.
    assert_eq!(
        seen(plain, "127.0.0.1", b"", "www.example.cn", FORGED).await,
        "x-forwarded-for: -\n\
         x-forwarded-proto: -\n\
         x-forwarded-host: -\n\
         forwarded: for=127.0.0.1;proto=http;host=www.example.cn"
    );
    running.shutdown().await;

    let dir = TempDir::new("proxy-forwarded-keep");
    let (running, plain, _) = start(
        &dir,
        &["forward_headers = []", r#"incoming_forwarded = "keep""#],
    )
    .await;
    // Kept from anyone, nothing added.
    assert_eq!(
        seen(plain, "127.0.0.2", b"", "www.example.cn", FORGED).await,
        "x-forwarded-for: 6.6.6.6\n\
         x-forwarded-proto: https\n\
         x-forwarded-host: -\n\
         forwarded: for=6.6.6.6;proto=https"
    );
    running.shutdown().await;
}
