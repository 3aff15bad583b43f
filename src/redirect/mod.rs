//! The Hong Kong redirector: mainland clients of `example.com` are sent to `example.cn`,
//! everyone else is passed through to the origin.
//!
//! GeoDNS points a covered name at this server for the lines that should be redirected
//! (the `china` line's overlay). A request here is classified by its client address
//! through the same [`Live`] classifier the DNS server uses, so a database reload changes
//! both at once; clients in a rule's lines get a `301` (or the rule's status) to the same
//! path under the rule's target domain, and anyone else (a resolver's mistake, a VPN, a
//! client using a foreign resolver) is reverse-proxied to the origin by [`crate::proxy`]
//! without rewriting.
//!
//! The parts: [`rules`] (host → rule → `Location`), [`client_addr`] (who the client is
//! behind trusted proxies), [`proxy_protocol`] (PROXY v1/v2), [`tls`] (the rustls
//! configuration over the live certificates), [`app`] (the per-request decision),
//! [`access_log`] (one JSON line per request) and [`listener`] (connections).
//!
//! This module wires them from the `[redirect]` configuration; it does not load GeoIP
//! databases or decide when they or the certificates reload ([`crate::reload`]).

pub mod access_log;
pub(crate) mod app;
pub(crate) mod client_addr;
pub(crate) mod config;
pub(crate) mod listener;
pub(crate) mod metrics;
pub mod proxy_protocol;
pub(crate) mod rules;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::certs::{CertError, Certificates};
use crate::live::Live;
use crate::proxy::{Proxy, ProxyError};
use config::RedirectConfig;

#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect: {0}")]
    Certificate(#[from] CertError),
    #[error("redirect: TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("redirect.origin: {0}")]
    Origin(#[from] ProxyError),
    #[error("redirect: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The pass-through to the origin: every covered host under its own name, no rewriting.
pub(crate) fn origin_proxy(config: &RedirectConfig) -> Result<Proxy, ProxyError> {
    let origin = &config.origin;
    let mut builder = Proxy::builder(origin.url.clone())
        .rewrite(false)
        .pass_through_domains(config.rules.iter().map(|r| r.from.clone()))
        .connect_timeout(origin.connect_timeout)
        .response_timeout(origin.response_timeout);
    if let Some(addr) = origin.connect_to {
        builder = builder.connect_to(addr);
    }
    if let Some(ca) = &origin.ca_file {
        builder = builder.ca_file(ca);
    }
    builder.build()
}

/// Reads the certificates and builds the pass-through, as `serve` would, without
/// listening: for `geoline check`.
pub fn check(config: &RedirectConfig) -> Result<(), RedirectError> {
    Certificates::load(&config.certificates)?;
    origin_proxy(config)?;
    Ok(())
}

/// The certificates the TLS listeners serve, read from their files: none when no listener
/// serves TLS. They go into [`Live`], where reloads replace them.
pub(crate) fn certificates(config: &RedirectConfig) -> Result<Certificates, RedirectError> {
    if config.listeners.iter().any(|l| l.tls) {
        Ok(Certificates::load(&config.certificates)?)
    } else {
        Ok(Certificates::default())
    }
}

/// Binds every listener, then serves on them in `tasks` until `shutdown`, classifying
/// clients and choosing certificates with what `live` holds. Returns the bound addresses
/// in configuration order.
pub(crate) async fn start(
    config: &RedirectConfig,
    live: Arc<Live>,
    metrics: Arc<metrics::RedirectMetrics>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<Vec<SocketAddr>, RedirectError> {
    let app = Arc::new(app::App {
        rules: rules::Rules::new(&config.rules),
        live: live.clone(),
        trusted: client_addr::TrustedProxies::new(&config.trusted_proxies),
        client_ip_header: config.client_ip_header,
        proxy: origin_proxy(config)?,
        metrics,
    });
    let acceptor = if config.listeners.iter().any(|l| l.tls) {
        let server_config = tls::server_config(live.clone())?;
        Some(tokio_rustls::TlsAcceptor::from(server_config))
    } else {
        None
    };
    let limits = listener::Limits {
        header_read_timeout: config.header_read_timeout,
        max_header_bytes: config.max_header_bytes,
        max_headers: config.max_headers,
    };

    let mut bound = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        let tcp = TcpListener::bind(l.address)
            .await
            .map_err(|source| RedirectError::Bind {
                addr: l.address,
                source,
            })?;
        let addr = tcp.local_addr().map_err(|source| RedirectError::Bind {
            addr: l.address,
            source,
        })?;
        bound.push((
            tcp,
            listener::Listener {
                app: app.clone(),
                tls: if l.tls { acceptor.clone() } else { None },
                proxy_protocol: l.proxy_protocol,
                trusted: client_addr::TrustedProxies::new(&config.trusted_proxies),
                limits,
            },
            addr,
        ));
    }
    let mut addrs = Vec::with_capacity(bound.len());
    for (tcp, l, addr) in bound {
        tracing::info!(%addr, tls = l.tls.is_some(), proxy_protocol = l.proxy_protocol, "redirect listening");
        tasks.spawn(listener::serve(tcp, l, shutdown.clone()));
        addrs.push(addr);
    }
    Ok(addrs)
}
