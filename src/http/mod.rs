//! The HTTP front-end the redirector and the proxy share: everything between a socket and
//! a request handler.
//!
//! One implementation for both, configured by the same keys ([`config`]): listeners with
//! their accept loop, idle sweep and drain ([`listener`]), TLS with certificates chosen by
//! SNI and reloaded while serving ([`tls`], over [`crate::certs`]), PROXY protocol v1/v2
//! from trusted relays ([`proxy_protocol`]), the client address behind trusted proxies
//! ([`client_addr`]), the limits on request heads and slow clients, `/healthz` by address
//! and the responses a front-end makes itself ([`response`]), and the JSON access log
//! ([`access_log`]). A front-end is a [`Handler`]: the redirector's app or the proxy's;
//! this module does not decide anything about requests.

pub mod access_log;
pub(crate) mod client_addr;
pub(crate) mod config;
pub(crate) mod listener;
pub(crate) mod metrics;
pub mod proxy_protocol;
pub(crate) mod response;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::certs::{CertError, CertificateConfig, Certificates};
use crate::live::Live;
use config::FrontConfig;
use metrics::HttpListeners;
use response::Reply;

/// What the listener knows about a request's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Connection {
    /// The socket peer, or the source a trusted proxy gave in a PROXY protocol header.
    pub peer: SocketAddr,
    pub tls: bool,
}

/// A front-end's request handling: one request in, its reply out.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Answers `req`, which arrived on `conn`.
    fn respond(&self, req: hyper::Request<Incoming>, conn: Connection) -> Reply;
}

/// Why a front-end could not start.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// The rustls configuration could not be made.
    #[error("{role}: TLS setup: {source}")]
    Tls {
        /// `redirect` or `proxy`.
        role: &'static str,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// A listener could not be bound.
    #[error("{role}: cannot listen on {addr}: {source}{}", crate::diag::bind_hint(*addr, source))]
    Bind {
        /// `redirect` or `proxy`.
        role: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// The certificates of every front-end with TLS listeners, in one set (the one
/// [`Live`] holds and reloads replace), and each front-end's part of it.
pub(crate) struct FrontCertificates {
    pub set: Certificates,
    /// Indexed like the front-ends given to [`FrontCertificates::load`].
    pub ranges: Vec<Range<usize>>,
}

impl FrontCertificates {
    /// Reads the certificates of each front-end that has a TLS listener (`None` for a
    /// section that is not configured); a failure names the front-end's index.
    pub(crate) fn load(
        fronts: &[Option<&FrontConfig>],
    ) -> Result<FrontCertificates, (usize, CertError)> {
        let parts: Vec<&[CertificateConfig]> = fronts
            .iter()
            .map(|f| match f {
                Some(f) if f.tls() => f.certificates.as_slice(),
                _ => &[],
            })
            .collect();
        let mut ranges = Vec::with_capacity(parts.len());
        let mut start = 0;
        for part in &parts {
            ranges.push(start..start + part.len());
            start += part.len();
        }
        Ok(FrontCertificates {
            set: Certificates::load_parts(&parts)?,
            ranges,
        })
    }
}

/// Where a front-end's listeners run and are registered.
pub(crate) struct Serving<'a> {
    pub shutdown: &'a CancellationToken,
    pub tasks: &'a mut JoinSet<()>,
    /// Every HTTP listener, for `/metrics` and `/status`.
    pub listeners: &'a HttpListeners,
}

/// The app and the reloadable settings of `front` (limits, trusted proxies).
pub(crate) fn state<H>(front: &FrontConfig, app: Arc<H>) -> listener::FrontState<H> {
    listener::FrontState::new(
        app,
        client_addr::TrustedProxies::new(&front.trusted_proxies),
        listener::Limits {
            header_read_timeout: front.header_read_timeout,
            max_header_bytes: front.max_header_bytes,
            max_headers: front.max_headers,
        },
    )
}

/// Binds every listener of `front`, then serves `app` on them until `serving.shutdown`,
/// with certificates `certificates` of `live`'s set. Returns the bound addresses in
/// configuration order and the state a configuration reload replaces. `role` (`redirect`,
/// `proxy`) names the front-end in logs and errors.
#[allow(
    clippy::type_complexity,
    reason = "the addresses and the swappable state, named where they are used"
)]
pub(crate) async fn start<H: Handler>(
    role: &'static str,
    front: &FrontConfig,
    app: Arc<H>,
    live: Arc<Live>,
    certificates: Range<usize>,
    serving: Serving<'_>,
) -> Result<(Vec<SocketAddr>, Arc<ArcSwap<listener::FrontState<H>>>), FrontError> {
    let acceptor = if front.tls() {
        let server_config = tls::server_config(live, certificates.clone())
            .map_err(|source| FrontError::Tls { role, source })?;
        Some(tokio_rustls::TlsAcceptor::from(server_config))
    } else {
        None
    };
    let state = Arc::new(ArcSwap::from_pointee(state(front, app)));

    // All bound before any serves, so that a failed bind leaves nothing listening.
    let mut bound = Vec::with_capacity(front.listeners.len());
    for l in &front.listeners {
        let bind_error = |source| FrontError::Bind {
            role,
            addr: l.address,
            source,
        };
        let tcp = TcpListener::bind(l.address).await.map_err(bind_error)?;
        let addr = tcp.local_addr().map_err(bind_error)?;
        let listener = listener::Listener {
            role,
            front: state.clone(),
            tls: if l.tls { acceptor.clone() } else { None },
            proxy_protocol: l.proxy_protocol,
            metrics: Arc::new(metrics::ListenerMetrics::new(
                role,
                addr,
                l.proxy_protocol,
                l.tls.then(|| certificates.clone()),
            )),
        };
        bound.push((tcp, listener, addr));
    }
    let mut addrs = Vec::with_capacity(bound.len());
    for (tcp, l, addr) in bound {
        // Logged by the server once every listener of every kind is bound.
        serving.listeners.add(l.metrics.clone());
        serving
            .tasks
            .spawn(listener::serve(tcp, l, serving.shutdown.clone()));
        addrs.push(addr);
    }
    Ok((addrs, state))
}
