//! One health check of one address: a TCP connection, or an HTTP(S) GET and its answer.
//!
//! This module owns what a check sends and what passes; it keeps no state (the
//! [`super::state`] tracker does) and does not schedule (the [`super::monitor`] does).
//! A check returns `Ok` or the reason it failed, in words for `/status` and the log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::{Check, HttpCheck, MonitorConfig, TlsCheck};

/// How much of a body is searched for the expected text (Route 53 reads 5,120 bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// Why a monitor cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CheckSetupError {
    /// The CA file is unreadable or holds no certificate.
    #[error("health monitor CA file {path}: {reason}", path = path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("health monitor TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A monitor's check, ready to run against any of its addresses.
#[derive(Clone)]
pub(crate) struct Checker {
    check: Check,
    port: u16,
    timeout: Duration,
    tls: Option<TlsConnector>,
}

impl Checker {
    pub(crate) fn new(monitor: &MonitorConfig) -> Result<Checker, CheckSetupError> {
        let tls = match &monitor.check {
            Check::Http(HttpCheck { tls: Some(t), .. }) => Some(connector(t)?),
            _ => None,
        };
        Ok(Checker {
            check: monitor.check.clone(),
            port: monitor.port,
            timeout: monitor.timeout,
            tls,
        })
    }

    /// Checks `address`; the reason when it fails.
    pub(crate) async fn run(&self, address: IpAddr) -> Result<(), String> {
        let target = SocketAddr::new(address, self.port);
        match tokio::time::timeout(self.timeout, self.run_unbounded(target)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    async fn run_unbounded(&self, target: SocketAddr) -> Result<(), String> {
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect to {target}: {e}"))?;
        let http = match &self.check {
            Check::Tcp => return Ok(()),
            Check::Http(http) => http,
        };
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => get(stream, target, http).await,
            Some(tls) => {
                let name = match &http.host {
                    Some(host) => ServerName::try_from(host.clone())
                        .map_err(|e| format!("server name `{host}`: {e}"))?,
                    None => ServerName::IpAddress(target.ip().into()),
                };
                let stream = tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS with {target}: {e}"))?;
                get(stream, target, http).await
            }
        }
    }
}

/// One GET on `stream`, and whether its answer passes.
async fn get<S>(stream: S, target: SocketAddr, http: &HttpCheck) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP with {target}: {e}"))?;
    let driver = tokio::spawn(connection);
    let host = match &http.host {
        Some(host) => host.clone(),
        None => match target.ip() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        },
    };
    let request = get_request(http.path.as_str(), &host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP with {target}: {e}"))?;
        let status = response.status().as_u16();
        if !http.status.contains(&status) {
            return Err(format!(
                "status {status}, expected {}..={}",
                http.status.start(),
                http.status.end()
            ));
        }
        let Some(expected) = &http.body else {
            return Ok(());
        };
        let body = read_prefix(response.into_body()).await?;
        if memfind(&body, expected.as_bytes()) {
            Ok(())
        } else {
            Err(format!("status {status} but the body lacks `{expected}`"))
        }
    }
    .await;
    driver.abort();
    result
}

/// The first [`BODY_LIMIT`] bytes of `body` (less when it is shorter).
async fn read_prefix(mut body: hyper::body::Incoming) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while out.len() < BODY_LIMIT {
        match body.frame().await {
            None => break,
            Some(Err(e)) => return Err(format!("reading the body: {e}")),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = BODY_LIMIT - out.len();
                    out.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }
    Ok(out)
}

fn memfind(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn connector(tls: &TlsCheck) -> Result<TlsConnector, CheckSetupError> {
    // An explicit provider: with several rustls providers linked into one binary, the
    // process-wide default is ambiguous.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if tls.verify {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &tls.ca_file {
            let certs = crate::proxy::load_ca_file(path).map_err(|e| CheckSetupError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            for cert in certs {
                roots.add(cert)?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// `verify = false`: any certificate is taken (the handshake's signatures are still
/// checked), as Route 53's HTTPS checks do — the check is about the relay answering.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The GET a check (and a read of another instance's results) sends: one request per
/// connection, saying who asks.
pub(super) fn get_request(path: &str, host: &str) -> http::request::Builder {
    http::Request::get(path)
        .header(http::header::HOST, host)
        .header(
            http::header::USER_AGENT,
            concat!("geoline-health/", env!("CARGO_PKG_VERSION")),
        )
        .header(http::header::CONNECTION, "close")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::net::TcpListener;

    use super::*;
    use crate::health::state::Thresholds;

    /// A listener that accepts every connection and never sends a byte (a hung relay:
    /// its kernel completes the handshake, its process does not answer).
    async fn silent_target() -> (u16, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        (port, task)
    }

    fn monitor(port: u16, tls: Option<TlsCheck>) -> MonitorConfig {
        MonitorConfig {
            addresses: Vec::new(),
            check: Check::Http(HttpCheck {
                tls,
                path: "/".into(),
                host: None,
                status: 200..=399,
                body: None,
            }),
            port,
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(300),
            thresholds: Thresholds {
                down_after: 3,
                up_after: 5,
            },
            jitter_percent: 10,
        }
    }

    #[tokio::test]
    async fn a_target_that_accepts_and_never_answers_fails_at_the_timeout() {
        let (port, target) = silent_target().await;
        let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
        let https = TlsCheck {
            verify: false,
            ca_file: None,
        };
        // HTTP waits for a response head, HTTPS for the server's hello: both time out.
        for tls in [None, Some(https)] {
            let checker = Checker::new(&monitor(port, tls.clone())).expect("checker");
            let started = Instant::now();
            let result = checker.run(loopback).await;
            let took = started.elapsed();
            assert_eq!(
                result,
                Err("no answer within 300 ms".to_string()),
                "{tls:?}"
            );
            assert!(
                took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
                "{tls:?}: {took:?}"
            );
        }
        target.abort();
    }
}
