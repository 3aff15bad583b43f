//! The `[redirect]` section: listeners, certificates, rules, whom to trust for the client
//! address, the origin non-matching clients are passed through to, and request limits.
//!
//! This module owns the section's format, defaults and checks, one function per part. Host
//! names are checked by [`crate::proxy::host`], the rule every part of geoline shares. It
//! does not open certificates or listen: [`super::check`] and [`super::start`] do.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{ConfigError, Source};
use crate::lines::DEFAULT_LINE;
use crate::lines::config::{LineConfig, declared_names};
use crate::proxy::host;

/// The `[redirect]` section: listeners, certificates, rules, whom to trust for the client
/// address, and the origin non-matching clients are passed through to.
#[derive(Debug, Clone)]
pub struct RedirectConfig {
    /// The addresses it accepts connections on.
    pub listeners: Vec<RedirectListenerConfig>,
    /// Certificates for the TLS listeners, chosen by SNI; the first is the fallback.
    pub certificates: Vec<CertificateConfig>,
    /// The hosts covered and where their mainland clients are sent.
    pub rules: Vec<RedirectRuleConfig>,
    /// Peers whose `X-Forwarded-For` / `Forwarded` / PROXY protocol header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The one header trusted proxies maintain; any other is the client's to forge.
    pub client_ip_header: ClientIpHeader,
    /// Where requests that are not redirected are passed through to.
    pub origin: OriginConfig,
    /// Request heads (and TLS handshakes, PROXY headers) slower than this are cut off.
    pub header_read_timeout: Duration,
    /// The largest request head, in bytes.
    pub max_header_bytes: usize,
    /// The most header fields in one request.
    pub max_headers: usize,
}
/// One `[[redirect.listen]]` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectListenerConfig {
    /// The address and port.
    pub address: SocketAddr,
    /// HTTPS with the certificates of the section, instead of plain HTTP.
    pub tls: bool,
    /// Every connection starts with a PROXY protocol v1 or v2 header.
    pub proxy_protocol: bool,
}

/// One certificate for the TLS listeners: what the certificates subsystem reads.
pub use crate::certs::CertificateConfig;

/// One rule: a domain whose clients in some lines are redirected to another domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRuleConfig {
    /// Lower case, no trailing dot; the rule covers it and its subdomains.
    pub from: String,
    /// Lower case, no trailing dot; `a.from` is sent to `a.to`.
    pub to: String,
    /// The scheme of the `Location`.
    pub scheme: TargetScheme,
    /// Clients in these lines are redirected; everyone else is passed through.
    pub lines: Vec<String>,
    /// 301, 302, 307 or 308.
    pub status: u16,
    /// `Cache-Control: private, max-age=N`.
    pub max_age_secs: u32,
}

/// The scheme of a redirect's `Location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetScheme {
    /// `https://`.
    Https,
    /// `http://`.
    Http,
}

impl TargetScheme {
    /// `https` or `http`, as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetScheme::Https => "https",
            TargetScheme::Http => "http",
        }
    }
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

/// `[redirect.origin]`: the pass-through's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginConfig {
    /// `https://example.com[:port]`: the scheme and port every passed-through host is
    /// reached at; its host is one the rules cover.
    pub url: String,
    /// Dial this instead of resolving the host; TLS still verifies the host name.
    pub connect_to: Option<SocketAddr>,
    /// PEM CA certificates trusted for the origin besides the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// No TCP connection by then: 502 (default 5 s, 1 to 300).
    pub connect_timeout: Duration,
    /// No response head by then: 504 (default 30 s, 1 to 300).
    pub response_timeout: Duration,
}

/// `[redirect]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedirect {
    #[serde(rename = "listen")]
    listeners: Spanned<Vec<RawListener>>,
    #[serde(default, rename = "certificate")]
    certificates: Vec<RawCertificate>,
    #[serde(rename = "rule")]
    rules: Spanned<Vec<RawRule>>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    #[serde(default = "default_client_ip_header")]
    client_ip_header: ClientIpHeader,
    origin: Spanned<RawOrigin>,
    header_read_timeout_secs: Option<Spanned<u64>>,
    max_header_bytes: Option<Spanned<usize>>,
    max_headers: Option<Spanned<usize>>,
}

fn default_client_ip_header() -> ClientIpHeader {
    ClientIpHeader::XForwardedFor
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: Spanned<SocketAddr>,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    proxy_protocol: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    names: Spanned<Vec<Spanned<String>>>,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(default = "default_scheme")]
    scheme: TargetScheme,
    lines: Spanned<Vec<Spanned<String>>>,
    status: Option<Spanned<u16>>,
    max_age_secs: Option<Spanned<u32>>,
}

fn default_scheme() -> TargetScheme {
    TargetScheme::Https
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    url: Spanned<String>,
    connect_to: Option<SocketAddr>,
    ca_file: Option<PathBuf>,
    connect_timeout_secs: Option<Spanned<u64>>,
    response_timeout_secs: Option<Spanned<u64>>,
}

impl RedirectConfig {
    /// Checks `[redirect]`; `lines` are the declared lines, which rules name.
    pub(crate) fn check(
        r: RawRedirect,
        lines: &[LineConfig],
        src: &Source<'_>,
    ) -> Result<RedirectConfig, ConfigError> {
        let listeners = listeners(&r.listeners, src)?;
        let certificates = certificates(&r.certificates, &r.listeners, src)?;
        let rules = rules(&r.rules, lines, src)?;
        let trusted_proxies = trusted_proxies(&r.trusted_proxies, src)?;
        let origin = origin(r.origin, &rules, src)?;
        Ok(RedirectConfig {
            listeners,
            certificates,
            rules,
            trusted_proxies,
            client_ip_header: r.client_ip_header,
            origin,
            header_read_timeout: Duration::from_secs(src.in_range(
                r.header_read_timeout_secs,
                10,
                1..=300,
                "redirect.header_read_timeout_secs",
            )?),
            // nginx's large_client_header_buffers (4 8k) allows about this much in all;
            // hyper's read buffer cannot be smaller than 8 KiB.
            max_header_bytes: src.in_range(
                r.max_header_bytes,
                32 * 1024,
                8192..=1 << 20,
                "redirect.max_header_bytes",
            )?,
            max_headers: src.in_range(r.max_headers, 100, 8..=1000, "redirect.max_headers")?,
        })
    }
}

fn listeners(
    raw: &Spanned<Vec<RawListener>>,
    src: &Source<'_>,
) -> Result<Vec<RedirectListenerConfig>, ConfigError> {
    if raw.get_ref().is_empty() {
        return Err(src.invalid(
            raw.span(),
            "redirect.listen is empty: give at least one [[redirect.listen]] address".into(),
        ));
    }
    let mut listeners: Vec<RedirectListenerConfig> = Vec::with_capacity(raw.get_ref().len());
    for l in raw.get_ref() {
        let address = *l.address.get_ref();
        // Port 0 asks for any free port: two of them are two listeners.
        if address.port() != 0 && listeners.iter().any(|o| o.address == address) {
            return Err(src.invalid(
                l.address.span(),
                format!("redirect.listen: {address} is given twice"),
            ));
        }
        listeners.push(RedirectListenerConfig {
            address,
            tls: l.tls,
            proxy_protocol: l.proxy_protocol,
        });
    }
    Ok(listeners)
}

fn certificates(
    raw: &[RawCertificate],
    listeners: &Spanned<Vec<RawListener>>,
    src: &Source<'_>,
) -> Result<Vec<CertificateConfig>, ConfigError> {
    let mut certificates = Vec::with_capacity(raw.len());
    for c in raw {
        if c.names.get_ref().is_empty() {
            return Err(src.invalid(
                c.names.span(),
                "redirect.certificate: names is empty: give the SNI names it serves".into(),
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
                        "redirect.certificate: `{raw}` is not a host name or `*.` followed by one"
                    ),
                ));
            };
            names.push(if wild { format!("*.{name}") } else { name });
        }
        certificates.push(CertificateConfig {
            names,
            cert: src.resolve(&c.cert),
            key: src.resolve(&c.key),
        });
    }
    if certificates.is_empty()
        && let Some(l) = listeners.get_ref().iter().find(|l| l.tls)
    {
        return Err(src.invalid(
            l.address.span(),
            format!(
                "redirect.listen {} has tls = true but no [[redirect.certificate]] is configured",
                l.address.get_ref()
            ),
        ));
    }
    Ok(certificates)
}

fn rules(
    raw: &Spanned<Vec<RawRule>>,
    lines: &[LineConfig],
    src: &Source<'_>,
) -> Result<Vec<RedirectRuleConfig>, ConfigError> {
    if raw.get_ref().is_empty() {
        return Err(src.invalid(
            raw.span(),
            "redirect.rule is empty: give at least one [[redirect.rule]]".into(),
        ));
    }
    let mut rules: Vec<RedirectRuleConfig> = Vec::new();
    for rule in raw.get_ref() {
        let host = |s: &Spanned<String>, what: &str| {
            host::normalize(s.get_ref()).map_err(|_| {
                src.invalid(
                    s.span(),
                    format!(
                        "redirect.rule: {what} `{}` is not a host name such as example.com",
                        s.get_ref()
                    ),
                )
            })
        };
        let from = host(&rule.from, "from")?;
        let to = host(&rule.to, "to")?;
        if rules.iter().any(|o| o.from == from) {
            return Err(src.invalid(
                rule.from.span(),
                format!("redirect.rule: `{from}` is the from of two rules"),
            ));
        }
        let status = match &rule.status {
            Some(s) if ![301, 302, 307, 308].contains(s.get_ref()) => {
                return Err(src.invalid(
                    s.span(),
                    format!(
                        "redirect.rule `{from}`: status {} is not 301, 302, 307 or 308",
                        s.get_ref()
                    ),
                ));
            }
            Some(s) => *s.get_ref(),
            None => 301,
        };
        let max_age_secs = match &rule.max_age_secs {
            Some(m) if *m.get_ref() > 31_536_000 => {
                return Err(src.invalid(
                    m.span(),
                    format!(
                        "redirect.rule `{from}`: max_age_secs {} is more than a year",
                        m.get_ref()
                    ),
                ));
            }
            Some(m) => *m.get_ref(),
            None => 3600,
        };
        if rule.lines.get_ref().is_empty() {
            return Err(src.invalid(
                rule.lines.span(),
                format!("redirect.rule `{from}`: lines is empty: name the lines to redirect"),
            ));
        }
        let mut rule_lines = Vec::new();
        for l in rule.lines.get_ref() {
            let name = l.get_ref();
            if name != DEFAULT_LINE && !lines.iter().any(|d| &d.name == name) {
                return Err(src.invalid(
                    l.span(),
                    format!(
                        "redirect.rule `{from}`: line `{name}` is not declared (declared: {})",
                        declared_names(lines)
                    ),
                ));
            }
            rule_lines.push(name.clone());
        }
        rules.push(RedirectRuleConfig {
            from,
            to,
            scheme: rule.scheme,
            lines: rule_lines,
            status,
            max_age_secs,
        });
    }
    // A target inside a covered domain would be redirected again, forever.
    for (rule, raw) in rules.iter().zip(raw.get_ref()) {
        if let Some(other) = rules.iter().find(|o| host::is_under(&rule.to, &o.from)) {
            return Err(src.invalid(
                raw.to.span(),
                format!(
                    "redirect.rule `{}`: to `{}` is covered by the rule for `{}`: clients would be redirected in a loop",
                    rule.from, rule.to, other.from
                ),
            ));
        }
    }
    Ok(rules)
}

fn trusted_proxies(raw: &[Spanned<String>], src: &Source<'_>) -> Result<Vec<IpNet>, ConfigError> {
    raw.iter()
        .map(|t| {
            let text = t.get_ref();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    src.invalid(
                        t.span(),
                        format!("redirect.trusted_proxies: `{text}` is not an address or CIDR prefix such as 10.0.0.0/8"),
                    )
                })?;
            Ok(net.trunc())
        })
        .collect()
}

fn origin(
    raw: Spanned<RawOrigin>,
    rules: &[RedirectRuleConfig],
    src: &Source<'_>,
) -> Result<OriginConfig, ConfigError> {
    let origin = raw.into_inner();
    let url = origin.url.get_ref();
    let bad_url = |reason: &str| {
        src.invalid(
            origin.url.span(),
            format!("redirect.origin.url `{url}`: {reason}"),
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad_url("give https://host or http://host, with an optional port"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let origin_host = match rest.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => rest,
    };
    let origin_host = host::normalize(origin_host).map_err(|_| {
        bad_url("a path, user or address is not allowed: only a host name and port")
    })?;
    if !rules
        .iter()
        .any(|rule| host::is_under(&origin_host, &rule.from))
    {
        return Err(bad_url(
            "its host is not covered by any rule (passed-through clients keep the host they asked for)",
        ));
    }
    Ok(OriginConfig {
        url: url.clone(),
        connect_to: origin.connect_to,
        ca_file: origin.ca_file.as_deref().map(|p| src.resolve(p)),
        connect_timeout: Duration::from_secs(src.in_range(
            origin.connect_timeout_secs,
            5,
            1..=300,
            "redirect.origin.connect_timeout_secs",
        )?),
        response_timeout: Duration::from_secs(src.in_range(
            origin.response_timeout_secs,
            30,
            1..=300,
            "redirect.origin.response_timeout_secs",
        )?),
    })
}
