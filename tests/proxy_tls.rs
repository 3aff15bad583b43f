//! An HTTPS origin behind a connect-to address: the proxy verifies the origin host's
//! certificate against a test CA and sends the origin host as SNI.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::TempDir;
use common::origin::*;
use common::proxy::*;
use common::tls::{Leaf, TestCa, server_config};
use geoline::proxy::Proxy;
use http::StatusCode;

/// An HTTPS origin presenting `leaf`; records the SNI of every handshake.
async fn tls_origin(leaf: Leaf) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&leaf));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let handler = handler(|req| async move {
        // Echoed in a header the proxy has no reason to rewrite.
        let host = req.headers().get("host").and_then(|h| h.to_str().ok());
        let host = host.unwrap_or("-").to_string();
        response(
            200,
            &[("content-type", "text/html"), ("x-seen-host", &host)],
            full("<a href=\"https://example.com/\">home</a>"),
        )
    });
    let addr = listen(move |tcp| {
        let acceptor = acceptor.clone();
        let record = record.clone();
        let handler = handler.clone();
        async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let sni = tls.get_ref().1.server_name().unwrap_or("").to_string();
            record.lock().expect("lock").push(sni);
            serve_http1(tls, handler).await;
        }
    })
    .await;
    (addr, seen)
}

fn https_builder(origin: SocketAddr) -> geoline::proxy::ProxyBuilder {
    Proxy::builder("https://example.com")
        .pair("example.cn", "example.com")
        .pair("www.example.cn", "www.example.com")
        .connect_to(origin)
}

#[tokio::test]
async fn https_origin_through_connect_to_with_sni_and_a_private_ca() {
    let ca = TestCa::new();
    let (addr, sni) = tls_origin(ca.leaf(&["example.com", "www.example.com"])).await;

    // The CA comes from a PEM file, as `ca_file` in the configuration gives it.
    let dir = TempDir::new("proxy-tls");
    let ca_path = dir.write("ca.pem", &ca.pem());
    let proxy = start(
        https_builder(addr)
            .ca_file(&ca_path)
            .build()
            .expect("proxy"),
    )
    .await;

    let (status, h, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["x-seen-host"], "example.com");
    assert_eq!(body, "<a href=\"https://example.cn/\">home</a>");
    let (status, h, body) = read(get(proxy, "www.example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["x-seen-host"], "www.example.com");
    assert_eq!(body, "<a href=\"https://example.cn/\">home</a>");
    assert_eq!(
        *sni.lock().expect("lock"),
        ["example.com".to_string(), "www.example.com".to_string()]
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let ca = TestCa::new();
    let (addr, _) = tls_origin(ca.leaf(&["other.test"])).await;
    let proxy = start(
        https_builder(addr)
            .add_root_certificate(ca.der())
            .build()
            .expect("proxy"),
    )
    .await;
    let (status, _, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        body,
        "geoline proxy: cannot connect to the origin example.com\n"
    );
}

#[tokio::test]
async fn an_untrusted_ca_is_refused() {
    let ca = TestCa::new();
    let (addr, sni) = tls_origin(ca.leaf(&["example.com"])).await;
    let proxy = start(https_builder(addr).build().expect("proxy")).await;
    let (status, _, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        body,
        "geoline proxy: cannot connect to the origin example.com\n"
    );
    // No handshake completed.
    assert_eq!(sni.lock().expect("lock").len(), 0);
}
