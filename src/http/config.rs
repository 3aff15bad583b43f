//! The keys every HTTP front-end section shares (`[redirect]` and `[proxy]`): listeners,
//! certificates, whom to trust for the client address, and the limits on requests.
//!
//! This module owns their format, defaults and checks, written once and read by both
//! sections under their own names (`redirect.listen`, `proxy.listen`, ...), so that the two
//! front-ends are configured alike. A section declares the raw keys in its own
//! `deny_unknown_fields` struct (serde cannot flatten into one) and hands them here as a
//! [`RawFront`]. It does not open certificates or listen: [`super::start`] does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

pub use super::access_log::AccessLogTarget;
use crate::certs::CertificateConfig;
use crate::diag::{ConfigError, Source};
use crate::proxy::host;

/// Listeners, certificates, client-address trust and request limits of one front-end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontConfig {
    /// The addresses it accepts connections on.
    pub listeners: Vec<ListenerConfig>,
    /// Certificates for the TLS listeners, chosen by SNI; the first is the fallback.
    pub certificates: Vec<CertificateConfig>,
    /// Peers whose `X-Forwarded-For` / `Forwarded` / PROXY protocol header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The one header trusted proxies maintain; any other is the client's to forge.
    pub client_ip_header: ClientIpHeader,
    /// Request heads (and TLS handshakes, PROXY headers) slower than this are cut off.
    pub header_read_timeout: Duration,
    /// The largest request head, in bytes.
    pub max_header_bytes: usize,
    /// The most header fields in one request.
    pub max_headers: usize,
    /// Where the JSON access lines go.
    pub access_log: AccessLogTarget,
}

impl FrontConfig {
    /// Whether any listener serves TLS (and so needs the certificates).
    pub fn tls(&self) -> bool {
        self.listeners.iter().any(|l| l.tls)
    }

    /// The listeners as `geoline check` prints them:
    /// `https://0.0.0.0:443 (PROXY protocol), http://127.0.0.1:8080`.
    pub fn describe_listeners(&self) -> String {
        let listeners: Vec<String> = self
            .listeners
            .iter()
            .map(|l| {
                let scheme = if l.tls { "https" } else { "http" };
                let pp = if l.proxy_protocol {
                    " (PROXY protocol)"
                } else {
                    ""
                };
                format!("{scheme}://{}{pp}", l.address)
            })
            .collect();
        listeners.join(", ")
    }
}

/// One `[[redirect.listen]]` or `[[proxy.listen]]` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The address and port.
    pub address: SocketAddr,
    /// HTTPS with the certificates of the section, instead of plain HTTP.
    pub tls: bool,
    /// Every connection starts with a PROXY protocol v1 or v2 header.
    pub proxy_protocol: bool,
}

/// Which forwarding header a trusted proxy's client address is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The default `client_ip_header`.
pub(crate) fn default_client_ip_header() -> ClientIpHeader {
    ClientIpHeader::XForwardedFor
}

/// One listener as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    address: Spanned<SocketAddr>,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    proxy_protocol: bool,
}

/// `listen` as written: an array of listener tables, or (the `[proxy]` section's older
/// form) one address for a plain HTTP listener.
pub(crate) struct RawListeners(Vec<RawListener>);

impl<'de> Deserialize<'de> for RawListeners {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawListeners, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawListeners;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of { address = \"IP:PORT\", tls, proxy_protocol } tables")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawListeners, E> {
                let address = s.parse().map_err(E::custom)?;
                Ok(RawListeners(vec![RawListener {
                    // The whole `listen` value's span stands for it.
                    address: Spanned::new(0..0, address),
                    tls: false,
                    proxy_protocol: false,
                }]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawListeners, A::Error> {
                let mut out = Vec::new();
                while let Some(l) = seq.next_element()? {
                    out.push(l);
                }
                Ok(RawListeners(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One certificate as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificate {
    names: Spanned<Vec<Spanned<String>>>,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
    /// Obtained by ACME instead of read from `cert` and `key` ([`crate::acme::config`]).
    acme: Option<Spanned<crate::acme::config::RawCertAcme>>,
}

/// The shared keys of one section, as its own raw struct read them.
pub(crate) struct RawFront<'a> {
    pub listeners: &'a Spanned<RawListeners>,
    pub certificates: &'a [RawCertificate],
    pub trusted_proxies: &'a [Spanned<String>],
    pub client_ip_header: ClientIpHeader,
    pub header_read_timeout_secs: Option<Spanned<u64>>,
    pub max_header_bytes: Option<Spanned<usize>>,
    pub max_headers: Option<Spanned<usize>>,
    pub access_log: Option<Spanned<String>>,
}

impl FrontConfig {
    /// Checks the shared keys of section `section` (`redirect` or `proxy`).
    pub(crate) fn check(
        section: &str,
        raw: RawFront<'_>,
        src: &Source<'_>,
    ) -> Result<FrontConfig, ConfigError> {
        let listeners = listeners(section, raw.listeners, src)?;
        let certificates = certificates(section, raw.certificates, &listeners, src)?;
        Ok(FrontConfig {
            listeners: listeners.into_iter().map(|(l, _)| l).collect(),
            certificates,
            trusted_proxies: trusted_proxies(section, raw.trusted_proxies, src)?,
            client_ip_header: raw.client_ip_header,
            header_read_timeout: Duration::from_secs(src.in_range(
                raw.header_read_timeout_secs,
                10,
                1..=300,
                &format!("{section}.header_read_timeout_secs"),
            )?),
            // nginx's large_client_header_buffers (4 8k) allows about this much in all;
            // hyper's read buffer cannot be smaller than 8 KiB.
            max_header_bytes: src.in_range(
                raw.max_header_bytes,
                32 * 1024,
                8192..=1 << 20,
                &format!("{section}.max_header_bytes"),
            )?,
            max_headers: src.in_range(
                raw.max_headers,
                100,
                8..=1000,
                &format!("{section}.max_headers"),
            )?,
            access_log: match raw.access_log.as_ref().map(|a| a.get_ref().as_str()) {
                None | Some("stdout") => AccessLogTarget::Stdout,
                Some("off") => AccessLogTarget::Off,
                Some("") => {
                    let span = raw
                        .access_log
                        .as_ref()
                        .map(|a| a.span())
                        .unwrap_or_default();
                    return Err(src.invalid(
                        span,
                        format!(
                            "{section}.access_log is empty: give \"stdout\", \"off\" or a file path"
                        ),
                    ));
                }
                Some(path) => AccessLogTarget::File(src.resolve(std::path::Path::new(path))),
            },
        })
    }
}

/// The span of a listener's address, or of the whole `listen` value for its string form.
fn address_span(l: &RawListener, all: &Spanned<RawListeners>) -> std::ops::Range<usize> {
    if l.address.span().is_empty() {
        all.span()
    } else {
        l.address.span()
    }
}

fn listeners(
    section: &str,
    raw: &Spanned<RawListeners>,
    src: &Source<'_>,
) -> Result<Vec<(ListenerConfig, std::ops::Range<usize>)>, ConfigError> {
    if raw.get_ref().0.is_empty() {
        return Err(src.invalid(
            raw.span(),
            format!("{section}.listen is empty: give at least one [[{section}.listen]] address"),
        ));
    }
    let mut listeners: Vec<(ListenerConfig, std::ops::Range<usize>)> = Vec::new();
    for l in &raw.get_ref().0 {
        let address = *l.address.get_ref();
        let span = address_span(l, raw);
        // Port 0 asks for any free port: two of them are two listeners.
        if address.port() != 0 && listeners.iter().any(|(o, _)| o.address == address) {
            return Err(src.invalid(span, format!("{section}.listen: {address} is given twice")));
        }
        listeners.push((
            ListenerConfig {
                address,
                tls: l.tls,
                proxy_protocol: l.proxy_protocol,
            },
            span,
        ));
    }
    Ok(listeners)
}

fn certificates(
    section: &str,
    raw: &[RawCertificate],
    listeners: &[(ListenerConfig, std::ops::Range<usize>)],
    src: &Source<'_>,
) -> Result<Vec<CertificateConfig>, ConfigError> {
    let mut certificates = Vec::with_capacity(raw.len());
    for c in raw {
        if c.names.get_ref().is_empty() {
            return Err(src.invalid(
                c.names.span(),
                format!("{section}.certificate: names is empty: give the SNI names it serves"),
            ));
        }
        let mut names = Vec::new();
        for n in c.names.get_ref() {
            let raw = n.get_ref();
            let (wild, rest) = match raw.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, raw.as_str()),
            };
            let Ok(name) = host::normalize(rest) else {
                return Err(src.invalid(
                    n.span(),
                    format!(
                        "{section}.certificate: `{raw}` is not a host name or `*.` followed by one"
                    ),
                ));
            };
            names.push(if wild { format!("*.{name}") } else { name });
        }
        let acme = match &c.acme {
            Some(a) => crate::acme::config::check_entry(section, a.get_ref(), a.span(), src)?,
            None => None,
        };
        let (cert, key) = match (&c.cert, &c.key, &acme) {
            (Some(cert), Some(key), None) => (src.resolve(cert), src.resolve(key)),
            // Placed under the ACME state directory once [acme] is read.
            (None, None, Some(_)) => Default::default(),
            (_, _, Some(_)) => {
                return Err(src.invalid(
                    c.names.span(),
                    format!(
                        "{section}.certificate: give either `acme` or `cert` and `key`, not both"
                    ),
                ));
            }
            _ => {
                return Err(src.invalid(
                    c.names.span(),
                    format!("{section}.certificate: give `cert` and `key` (PEM files), or `acme = true` to obtain it"),
                ));
            }
        };
        certificates.push(CertificateConfig {
            names,
            cert,
            key,
            acme,
        });
    }
    if certificates.is_empty()
        && let Some((l, span)) = listeners.iter().find(|(l, _)| l.tls)
    {
        return Err(src.invalid(
            span.clone(),
            format!(
                "{section}.listen {} has tls = true but no [[{section}.certificate]] is configured",
                l.address
            ),
        ));
    }
    Ok(certificates)
}

fn trusted_proxies(
    section: &str,
    raw: &[Spanned<String>],
    src: &Source<'_>,
) -> Result<Vec<IpNet>, ConfigError> {
    raw.iter()
        .map(|t| {
            let text = t.get_ref();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    src.invalid(
                        t.span(),
                        format!("{section}.trusted_proxies: `{text}` is not an address or CIDR prefix such as 10.0.0.0/8"),
                    )
                })?;
            Ok(net.trunc())
        })
        .collect()
}
