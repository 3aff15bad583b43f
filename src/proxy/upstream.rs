//! The connection to the origin: pooled HTTP/1.1 client, TLS verification, connect-to.
//!
//! This module owns how the proxy reaches the origin: the hyper-util pooled client, the
//! rustls configuration (webpki roots plus any configured CA) and the connect-to override,
//! which changes *where* the proxy dials but never *whom* it verifies: SNI and the
//! certificate name are always the origin host of the request. It does not build requests
//! or interpret responses ([`super::service`]).
//!
//! Only HTTP/1.1 is spoken upstream, as nginx does: WebSocket upgrades need it, and
//! connection reuse through the pool makes HTTP/2 multiplexing of little use on one link.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::body::BoxError;

/// The request body type sent upstream: whatever the client's body was, boxed.
pub(crate) type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector<Dialer>>, UpstreamBody>;

/// Why the upstream client could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// A CA file that cannot be read, is not PEM or holds no certificate.
    #[error("CA file {path}: {reason}", path = path.display())]
    CaFile {
        /// The file as given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// rustls refused a CA certificate or the client configuration.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Everything the client needs to know.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamSettings {
    pub connect_to: Option<SocketAddr>,
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub connect_timeout: Duration,
    pub pool_idle_timeout: Duration,
}

/// Reads every certificate of a PEM file, for trusting a private CA.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamError> {
    let fail = |reason: String| UpstreamError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE section".into()));
    }
    Ok(certs)
}

pub(crate) fn client(settings: &UpstreamSettings) -> Result<HttpClient, UpstreamError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in &settings.extra_roots {
        roots.add(cert.clone())?;
    }
    // An explicit provider: with several rustls providers linked into one binary, the
    // process-wide default is ambiguous and `ClientConfig::builder()` would panic.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();

    let mut http = HttpConnector::new_with_resolver(Dialer {
        connect_to: settings.connect_to,
    });
    // The TLS layer above takes https URIs; this layer only dials.
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_nodelay(true);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(settings.pool_idle_timeout)
        .http1_max_buf_size(UPSTREAM_READ_BUFFER)
        .set_host(false)
        .build(https))
}

/// The most a connection to the origin reads ahead of the client. hyper's default (about
/// 400 KiB) made a proxy of 50 connections each sending a 2 MB script hold 87 MiB at its
/// peak (nginx: 36 MiB); on loopback a smaller buffer costs more read calls per byte.
const UPSTREAM_READ_BUFFER: usize = 64 * 1024;

/// Name resolution for the connector: the connect-to address when there is one, else the
/// system resolver. The URI keeps the origin host, so TLS verifies that name either way.
#[derive(Debug, Clone)]
pub(crate) struct Dialer {
    connect_to: Option<SocketAddr>,
}

impl tower::Service<Name> for Dialer {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let fixed = self.connect_to;
        Box::pin(async move {
            if let Some(addr) = fixed {
                return Ok(vec![addr].into_iter());
            }
            // Port 0: the connector puts the URI's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            Ok(addrs.into_iter())
        })
    }
}
