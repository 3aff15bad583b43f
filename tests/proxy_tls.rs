//! An HTTPS origin behind a connect-to address: the proxy verifies the origin host's
//! certificate against a test CA and sends the origin host as SNI.

mod proxy_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use geoline::proxy::Proxy;
use http::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use proxy_support::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "geoline test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("ca key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca cert"),
        }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf certificate and key for `names`.
    fn leaf(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&key, &self.issuer)
            .expect("leaf cert");
        (
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// An HTTPS origin with the given certificate; records the SNI of every handshake.
async fn tls_origin(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or("").to_string();
                record.lock().expect("lock").push(sni);
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    // Echoed in a header the proxy has no reason to rewrite.
                    let host = req.headers().get("host").and_then(|h| h.to_str().ok());
                    let host = host.unwrap_or("-").to_string();
                    Ok::<_, std::convert::Infallible>(response(
                        200,
                        &[("content-type", "text/html"), ("x-seen-host", &host)],
                        full("<a href=\"https://example.com/\">home</a>"),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
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
    let (cert, key) = ca.leaf(&["example.com", "www.example.com"]);
    let (addr, sni) = tls_origin(cert, key).await;

    // The CA comes from a PEM file, as `ca_file` in the configuration gives it.
    let ca_path = std::env::temp_dir().join(format!("geoline-test-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_path, ca.issuer.pem()).expect("write CA file");
    let proxy = start(
        https_builder(addr)
            .ca_file(&ca_path)
            .build()
            .expect("proxy"),
    )
    .await;
    let _ = std::fs::remove_file(&ca_path);

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
    let (cert, key) = ca.leaf(&["other.test"]);
    let (addr, _) = tls_origin(cert, key).await;
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
    let (cert, key) = ca.leaf(&["example.com"]);
    let (addr, sni) = tls_origin(cert, key).await;
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
