//! One health check of one address: a TCP connection, or an HTTP(S) GET and its answer.
//!
//! This module owns what a check sends and what passes; it keeps no state (the
//! [`super::state`] tracker does) and does not schedule (the [`super::monitor`] does).
//! A check returns `Ok` or the reason it failed, in words for `/status` and the log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::{Check, HttpCheck, MonitorConfig, TlsCheck};
use super::http1::{self, Flow};

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

    /// What checking `address` needs, made once for all its checks: its socket address,
    /// its request's bytes and its TLS server name.
    pub(crate) fn target(&self, address: IpAddr) -> Target {
        let socket = SocketAddr::new(address, self.port);
        let Check::Http(http) = &self.check else {
            return Target {
                socket,
                request: Vec::new(),
                server_name: None,
            };
        };
        let host = match &http.host {
            Some(host) => host.clone(),
            None => match address {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            },
        };
        let server_name = match (&self.tls, &http.host) {
            (None, _) => None,
            (Some(_), Some(host)) => Some(
                ServerName::try_from(host.clone())
                    .map_err(|e| format!("server name `{host}`: {e}")),
            ),
            (Some(_), None) => Some(Ok(ServerName::IpAddress(address.into()))),
        };
        Target {
            socket,
            request: http1::request(&http.path, &host, None),
            server_name,
        }
    }

    /// Checks `target` (made by [`Checker::target`]); the reason when it fails.
    pub(crate) async fn run(&self, target: &Target) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.run_unbounded(target)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    async fn run_unbounded(&self, target: &Target) -> Result<(), String> {
        let socket = target.socket;
        let stream = TcpStream::connect(socket)
            .await
            .map_err(|e| format!("connect to {socket}: {e}"))?;
        // Closed with a reset, not a FIN: no FIN exchange and no TIME_WAIT socket per
        // check on either side (a thousand addresses every 10 s would hold some 6,000),
        // and nothing is lost — the check has read all it wants by then.
        let _ = stream.set_zero_linger();
        let http = match &self.check {
            Check::Tcp => return Ok(()),
            Check::Http(http) => http,
        };
        let _ = stream.set_nodelay(true);
        match (&self.tls, &target.server_name) {
            (Some(tls), Some(name)) => {
                let name = name.clone()?;
                let stream = tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS with {socket}: {e}"))?;
                get(stream, target, http).await
            }
            _ => get(stream, target, http).await,
        }
    }
}

/// One address as its checks need it.
pub(crate) struct Target {
    socket: SocketAddr,
    /// The GET of an HTTP(S) check; empty for TCP.
    request: Vec<u8>,
    /// HTTPS: the name the certificate is checked for, or why `host` is not one.
    server_name: Option<Result<ServerName<'static>, String>>,
}

/// One GET on `stream`, and whether its answer passes.
async fn get<S>(stream: S, target: &Target, http: &HttpCheck) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let failed = |e: http1::ResponseError| format!("HTTP with {}: {e}", target.socket);
    let response = http1::get(stream, &target.request).await.map_err(failed)?;
    let status = response.head.status;
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
    let needle = expected.as_bytes();
    // The body is searched as it arrives and read no further than the text, or than
    // BODY_LIMIT bytes; it is copied only when it comes in more than one piece.
    let mut prefix = Vec::new();
    let mut found = needle.is_empty();
    if !found {
        response
            .read_body(|data| {
                let data = &data[..data.len().min(BODY_LIMIT - prefix.len())];
                found = if prefix.is_empty() && memfind(data, needle) {
                    true
                } else {
                    let from = prefix.len().saturating_sub(needle.len() - 1);
                    prefix.extend_from_slice(data);
                    memfind(&prefix[from..], needle)
                };
                if found || prefix.len() >= BODY_LIMIT {
                    Flow::Stop
                } else {
                    Flow::More
                }
            })
            .await
            .map_err(failed)?;
    }
    if found {
        Ok(())
    } else {
        Err(format!("status {status} but the body lacks `{expected}`"))
    }
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
            ca_digest: None,
        };
        // HTTP waits for a response head, HTTPS for the server's hello: both time out.
        for tls in [None, Some(https)] {
            let checker = Checker::new(&monitor(port, tls.clone())).expect("checker");
            let started = Instant::now();
            let target = checker.target(loopback);
            let result = checker.run(&target).await;
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

    /// A target answering every connection with `pieces`, each written on its own after
    /// `pause`, then closing; it reads the request head first.
    async fn scripted_target(
        pieces: Vec<Vec<u8>>,
        pause: Duration,
    ) -> (u16, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let pieces = pieces.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    for piece in pieces {
                        tokio::time::sleep(pause).await;
                        if stream.write_all(&piece).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, task)
    }

    /// One HTTP check of 127.0.0.1 against `pieces`, with `body` as the text expected.
    async fn check_against(
        pieces: &[&[u8]],
        pause: Duration,
        body: Option<&str>,
    ) -> (Result<(), String>, Duration) {
        let pieces = pieces.iter().map(|p| p.to_vec()).collect();
        let (port, target) = scripted_target(pieces, pause).await;
        let mut config = monitor(port, None);
        if let Check::Http(http) = &mut config.check {
            http.body = body.map(str::to_string);
        }
        let checker = Checker::new(&config).expect("checker");
        let address = checker.target("127.0.0.1".parse().expect("ip"));
        let started = Instant::now();
        let result = checker.run(&address).await;
        let took = started.elapsed();
        target.abort();
        let result = result.map_err(|e| e.replace(&format!("127.0.0.1:{port}"), "TARGET"));
        (result, took)
    }

    const NO_PAUSE: Duration = Duration::ZERO;

    #[tokio::test]
    async fn a_body_is_found_whatever_its_framing_and_however_it_is_cut() {
        let ok: Result<(), String> = Ok(());
        // Content-Length, the text split across two writes.
        let (result, _) = check_against(
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nall is",
                b" fine",
            ],
            Duration::from_millis(20),
            Some("is fine"),
        )
        .await;
        assert_eq!(result, ok);
        // Chunked, the text across chunks, after an interim 100 Continue.
        let (result, _) = check_against(
            &[
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"3\r\nall\r\n5\r\n is f\r\n",
                b"3\r\nine\r\n0\r\n\r\n",
            ],
            Duration::from_millis(20),
            Some("is fine"),
        )
        .await;
        assert_eq!(result, ok);
        // Up to the connection's end (HTTP/1.0, no length).
        let (result, _) = check_against(
            &[b"HTTP/1.0 200 OK\r\n\r\nall is fine"],
            NO_PAUSE,
            Some("is fine"),
        )
        .await;
        assert_eq!(result, ok);
        // The whole body read, the text not in it.
        let (result, _) = check_against(
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"],
            NO_PAUSE,
            Some("ok"),
        )
        .await;
        assert_eq!(result, Err("status 200 but the body lacks `ok`".into()));
        // The status decides before the body is read.
        let (result, _) = check_against(
            &[b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nok"],
            NO_PAUSE,
            Some("ok"),
        )
        .await;
        assert_eq!(result, Err("status 503, expected 200..=399".into()));
    }

    #[tokio::test]
    async fn only_the_first_64_kib_of_a_body_are_searched() {
        let filler = vec![b'.'; BODY_LIMIT - 2];
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            BODY_LIMIT + 2
        );
        // "ok" across the limit: its first byte is inside, its second is not.
        let (result, _) = check_against(
            &[head.as_bytes(), &filler, b".o", b"k."],
            NO_PAUSE,
            Some("ok"),
        )
        .await;
        assert_eq!(result, Err("status 200 but the body lacks `ok`".into()));
        // Ending at the limit: found.
        let (result, _) = check_against(
            &[head.as_bytes(), &filler, b"ok", b".."],
            NO_PAUSE,
            Some("ok"),
        )
        .await;
        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn a_target_that_closes_early_fails_with_what_it_cut() {
        let cases: [(&[&[u8]], &str); 5] = [
            (
                &[],
                "HTTP with TARGET: the connection closed before a response",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nContent-"],
                "HTTP with TARGET: the connection closed inside the response head",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nbus"],
                "HTTP with TARGET: the connection closed 3 bytes into a 10-byte body",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbus"],
                "HTTP with TARGET: the connection closed inside a chunked body",
            ),
            (
                &[b"SSH-2.0-OpenSSH_9.6\r\n\r\n"],
                "HTTP with TARGET: not an HTTP/1 status line: `SSH-2.0-OpenSSH_9.6`",
            ),
        ];
        for (pieces, why) in cases {
            let (result, _) = check_against(pieces, NO_PAUSE, Some("ok")).await;
            assert_eq!(result, Err(why.to_string()), "{pieces:?}");
        }
        // The text seen before the cut is enough.
        let (result, _) = check_against(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"],
            NO_PAUSE,
            Some("ok"),
        )
        .await;
        assert_eq!(result, Ok(()));
    }

    /// A slowloris target: a byte of its head every 100 ms, never done before the
    /// check's 300 ms; then one trickling its body.
    #[tokio::test]
    async fn a_target_that_trickles_fails_at_the_timeout() {
        let head: Vec<&[u8]> = b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n".chunks(1).collect();
        let (result, took) = check_against(&head, Duration::from_millis(100), None).await;
        assert_eq!(result, Err("no answer within 300 ms".into()));
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
            "{took:?}"
        );
        let mut body: Vec<&[u8]> = vec![b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"];
        body.extend([&b"."[..]; 50]);
        let (result, took) = check_against(&body, Duration::from_millis(50), Some("ok")).await;
        assert_eq!(result, Err("no answer within 300 ms".into()));
        assert!(took < Duration::from_millis(1300), "{took:?}");
    }
}
