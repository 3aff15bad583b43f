//! The redirector's TLS: the rustls server configuration over the live certificates.
//!
//! This module owns what a TLS listener offers (HTTP/2 and HTTP/1.1 by ALPN) and where a
//! handshake's certificate comes from: the set [`Live`] holds when the handshake begins,
//! so that a certificate reload ([`crate::reload`]) reaches the next handshake while
//! established connections keep the certificate they were made with. Reading and choosing
//! certificates is [`crate::certs`]; accepting connections is [`super::listener`].

use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::live::Live;

/// Picks each handshake's certificate from the live set.
struct LiveCertificates(Arc<Live>);

impl fmt::Debug for LiveCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LiveCertificates")
            .field(&*self.0.certificates.load())
            .finish()
    }
}

impl ResolvesServerCert for LiveCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.certificates.load().select(hello.server_name())
    }
}

/// The rustls server configuration: certificates from `live`, HTTP/2 and HTTP/1.1 offered
/// by ALPN.
pub(crate) fn server_config(live: Arc<Live>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = live.certificates.load().provider().clone();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(LiveCertificates(live)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
