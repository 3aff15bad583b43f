//! A front-end's TLS: the rustls server configuration over the live certificates.
//!
//! This module owns what a TLS listener offers (HTTP/2 and HTTP/1.1 by ALPN) and where a
//! handshake's certificate comes from: the front-end's part of the set [`Live`] holds when
//! the handshake begins, so that a certificate reload ([`crate::reload`]) or a new
//! certificate list (a configuration reload replaces the set whole, with its parts)
//! reaches the next handshake while established connections keep the certificate they
//! were made with. The configuration is made once per front-end and never rebuilt.
//! Reading and choosing certificates is [`crate::certs`]; accepting connections is
//! [`super::listener`].

use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::live::Live;

/// Picks each handshake's certificate among one front-end's part of the live set.
struct LiveCertificates {
    live: Arc<Live>,
    /// The front-end's part of the live set.
    part: usize,
}

impl fmt::Debug for LiveCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCertificates")
            .field("part", &self.part)
            .field("set", &*self.live.certificates.load())
            .finish()
    }
}

impl ResolvesServerCert for LiveCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.live
            .certificates
            .load()
            .select_in(self.part, hello.server_name())
    }
}

/// The rustls server configuration: the certificates of part `part` of `live`'s set,
/// HTTP/2 and HTTP/1.1 offered by ALPN.
pub(crate) fn server_config(
    live: Arc<Live>,
    part: usize,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = live.certificates.load().provider().clone();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(LiveCertificates { live, part }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
