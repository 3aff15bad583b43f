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
//! The parts: [`rules`] (host → rule → `Location`), [`app`] (the per-request decision),
//! [`pass`] (the pass-through to a plain-HTTP origin on plain listeners, without hyper)
//! and [`metrics`]; connections, TLS, PROXY headers, client addresses and the access log
//! are the front-end it shares with the proxy ([`crate::http`]).
//!
//! This module wires them from the `[redirect]` configuration; it does not load GeoIP
//! databases or decide when they or the certificates reload ([`crate::reload`]).

pub(crate) mod app;
pub(crate) mod config;
pub(crate) mod metrics;
pub(crate) mod pass;
pub(crate) mod rules;

use std::sync::Arc;

use crate::certs::{CertError, Certificates};
use crate::http::access_log::AccessLog;
use crate::http::client_addr::{ClientAddress, TrustedProxies};
use crate::live::Live;
use crate::proxy::{Proxy, ProxyError, ProxyMetrics};
use config::RedirectConfig;

#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect: {0}")]
    Certificate(#[from] CertError),
    #[error("redirect.origin: {0}")]
    Origin(#[from] ProxyError),
}

/// The pass-through to the origin: every covered host under its own name, no rewriting,
/// counting into `metrics`.
pub(crate) fn origin_proxy(
    config: &RedirectConfig,
    metrics: Arc<ProxyMetrics>,
) -> Result<Proxy, ProxyError> {
    let origin = &config.origin;
    let mut builder = Proxy::builder(origin.url.clone())
        .metrics(metrics)
        .own_name("geoline redirect")
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

/// The own pass-through's origin ([`pass`]) when it is reached over plain HTTP; `None`
/// for an HTTPS origin, which the hyper pass-through serves.
fn plain_origin(config: &RedirectConfig, metrics: Arc<ProxyMetrics>) -> Option<Arc<pass::Origin>> {
    let url: http::Uri = config.origin.url.parse().ok()?;
    if url.scheme_str() != Some("http") {
        return None;
    }
    let origin = &config.origin;
    Some(Arc::new(pass::Origin::new(
        origin.connect_to,
        url.port_u16().unwrap_or(80),
        origin.connect_timeout,
        origin.response_timeout,
        metrics,
    )))
}

/// Reads the certificates and builds the pass-through, as `serve` would, without
/// listening: for `geoline check`. Returns what the certificates do not cover.
pub fn check(config: &RedirectConfig) -> Result<Vec<String>, RedirectError> {
    let certificates = Certificates::load(&config.front.certificates)?;
    origin_proxy(config, Arc::default())?;
    Ok(uncovered_hosts(config, &certificates))
}

/// What the TLS listeners' certificates do not cover ([`crate::certs::uncovered`]): none
/// without a TLS listener.
pub(crate) fn uncovered_hosts(config: &RedirectConfig, certificates: &Certificates) -> Vec<String> {
    if !config.front.listeners.iter().any(|l| l.tls) {
        return Vec::new();
    }
    let hosts: Vec<String> = config.rules.iter().map(|r| r.from.clone()).collect();
    crate::certs::uncovered(certificates, &hosts)
}

/// The redirector's request handling for `config`, classifying clients with what `live`
/// holds, counting into `metrics` and logging each request to `log`: what `start` serves,
/// and what a configuration reload builds anew.
pub(crate) fn app(
    config: &RedirectConfig,
    live: &Arc<Live>,
    metrics: &Arc<metrics::RedirectMetrics>,
    log: Option<Arc<AccessLog>>,
) -> Result<app::App, RedirectError> {
    let lines = live.classifier.load().lines().len();
    // Before the rules: making them makes them the ones `/metrics` lists, so nothing may
    // fail after.
    let proxy = origin_proxy(config, metrics.upstream.clone())?;
    Ok(app::App {
        rules: rules::Rules::new(&config.rules, metrics, lines),
        live: live.clone(),
        clients: ClientAddress {
            trusted: TrustedProxies::new(&config.front.trusted_proxies),
            header: config.front.client_ip_header,
        },
        proxy,
        origin: plain_origin(config, metrics.upstream.clone()),
        metrics: metrics.clone(),
        log,
    })
}
