//! The `[redirect]` section: listeners, certificates, rules, whom to trust for the client
//! address, the origin non-matching clients are passed through to, and request limits.
//!
//! This module owns the section's format, defaults and checks, one function per part. Host
//! names are checked by [`crate::proxy::host`], the rule every part of geoline shares. It
//! does not open certificates or listen: [`super::check`] and [`super::start`] do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{ConfigError, Source};
pub use crate::http::config::{AccessLogTarget, ClientIpHeader, FrontConfig, ListenerConfig};
use crate::http::config::{RawCertificate, RawFront, RawListeners, default_client_ip_header};
use crate::lines::DEFAULT_LINE;
use crate::lines::config::{LineConfig, declared_names};
use crate::proxy::host;

/// The `[redirect]` section: listeners, certificates, rules, whom to trust for the client
/// address, and the origin non-matching clients are passed through to.
#[derive(Debug, Clone)]
pub struct RedirectConfig {
    /// Listeners, certificates, client-address trust and request limits, as `[proxy]`
    /// has them.
    pub front: FrontConfig,
    /// The hosts covered and where their mainland clients are sent.
    pub rules: Vec<RedirectRuleConfig>,
    /// Where requests that are not redirected are passed through to.
    pub origin: OriginConfig,
}

/// One `[[redirect.listen]]` address.
pub type RedirectListenerConfig = ListenerConfig;

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
    listeners: Spanned<RawListeners>,
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
    access_log: Option<Spanned<String>>,
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
        let front = FrontConfig::check(
            "redirect",
            RawFront {
                listeners: &r.listeners,
                certificates: &r.certificates,
                trusted_proxies: &r.trusted_proxies,
                client_ip_header: r.client_ip_header,
                header_read_timeout_secs: r.header_read_timeout_secs,
                max_header_bytes: r.max_header_bytes,
                max_headers: r.max_headers,
                access_log: r.access_log,
            },
            src,
        )?;
        let rules = rules(&r.rules, lines, src)?;
        let origin = origin(r.origin, &rules, src)?;
        Ok(RedirectConfig {
            front,
            rules,
            origin,
        })
    }
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
