//! The `[proxy]` section of the configuration file.
//!
//! This module owns the section's format, its defaults and the checks that can be made on
//! it alone; [`ProxyConfig::build`] turns it into a [`Proxy`]. Its listeners, certificates,
//! client-address trust and limits are the keys `[redirect]` has ([`crate::http::config`]).
//! It does not read the rest of the file: [`crate::config`] embeds this section.
//!
//! ```toml
//! [proxy]
//! origin = "https://example.com"     # scheme and port for every origin host
//! connect_to = "203.0.113.10:443"    # optional: dial this instead of resolving
//! ca_file = "origin-ca.pem"          # optional: trust a private CA too
//! hosts = [
//!   { public = "example.cn", origin = "example.com" },
//!   { public = "www.example.cn", origin = "www.example.com" },
//! ]
//! trusted_proxies = ["10.0.0.0/8"]   # whose PROXY header / X-Forwarded-For is believed
//!
//! [[proxy.listen]]
//! address = "0.0.0.0:443"
//! tls = true
//! proxy_protocol = true
//!
//! [[proxy.certificate]]
//! names = ["example.cn", "*.example.cn"]
//! cert = "example.cn.pem"
//! key = "example.cn.key"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::body::GzipLevel;
use super::headers::ForwardHeaders;
use super::service::{Proxy, ProxyError};
use crate::diag::{ConfigError, Source};
use crate::http::config::{
    ClientIpHeader, FrontConfig, RawCertificate, RawFront, RawListeners, default_client_ip_header,
};

/// One `{ public = "...", origin = "..." }` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPairConfig {
    /// The host clients ask for, e.g. `example.cn`.
    pub public: String,
    /// The host it stands for at the origin, e.g. `example.com`.
    pub origin: String,
}

/// The `[proxy]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Listeners, certificates, client-address trust and request limits, as `[redirect]`
    /// has them.
    pub front: FrontConfig,
    /// `http://host[:port]` or `https://host[:port]`: the scheme and port used for every
    /// origin host; the host must be one of the pairs' origin hosts.
    pub origin: String,
    /// Dial this address for every origin host instead of resolving it; TLS still verifies
    /// the origin host name.
    pub connect_to: Option<SocketAddr>,
    /// The host pairs served; at least one, no host in two pairs.
    pub hosts: Vec<HostPairConfig>,
    /// A PEM file of CA certificates trusted besides the webpki roots (relative to the
    /// configuration file's directory already).
    pub ca_file: Option<PathBuf>,
    /// Seconds to get a TCP connection to the origin before answering 502 (default 5,
    /// 1 to 300).
    pub connect_timeout_secs: u64,
    /// Seconds to get the origin's response head before answering 504 (default 30, 1 to
    /// 3600).
    pub response_timeout_secs: u64,
    /// Seconds the origin's body may stall before the response is cut off (default 60, 1 to
    /// 3600).
    pub read_timeout_secs: u64,
    /// The most bytes a compressed body may decode to before it is cut off (default 64 MiB,
    /// at least 1024).
    pub max_decompressed_bytes: u64,
    /// The compression level of rewritten bodies re-encoded as gzip or deflate for the
    /// client (default 1, as nginx's `gzip on`; 1 to 9).
    pub gzip_level: GzipLevel,
    /// `false` passes bodies and response headers through untouched (default `true`).
    pub rewrite: bool,
    /// Which forwarding headers tell the origin about the client (default both).
    pub forward_headers: ForwardHeaders,
    /// What becomes of the forwarding headers a request arrives with.
    pub incoming_forwarded: IncomingForwarded,
}

/// What becomes of the `X-Forwarded-*` and `Forwarded` headers a request arrives with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncomingForwarded {
    /// Kept and appended to when the peer is one of `trusted_proxies`, replaced otherwise
    /// (the default): a client cannot put addresses of its choice in the origin's logs.
    TrustedProxies,
    /// Always kept and appended to, as nginx's `$proxy_add_x_forwarded_for` does.
    Keep,
    /// Always replaced: the origin hears of this hop only.
    Replace,
}

/// A name in `forward_headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ForwardHeaderName {
    /// `X-Forwarded-For`, with `X-Forwarded-Proto` and `X-Forwarded-Host`.
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

/// The `[proxy]` section as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxy {
    #[serde(rename = "listen")]
    listeners: Spanned<RawListeners>,
    #[serde(default, rename = "certificate")]
    certificates: Vec<RawCertificate>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    #[serde(default = "default_client_ip_header")]
    client_ip_header: ClientIpHeader,
    header_read_timeout_secs: Option<Spanned<u64>>,
    max_header_bytes: Option<Spanned<usize>>,
    max_headers: Option<Spanned<usize>>,
    access_log: Option<Spanned<String>>,
    origin: String,
    #[serde(default)]
    connect_to: Option<SocketAddr>,
    hosts: Vec<HostPairConfig>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_secs: u64,
    #[serde(default = "default_response_timeout")]
    response_timeout_secs: u64,
    #[serde(default = "default_read_timeout")]
    read_timeout_secs: u64,
    #[serde(default = "default_max_decompressed")]
    max_decompressed_bytes: u64,
    gzip_level: Option<Spanned<u32>>,
    #[serde(default = "default_rewrite")]
    rewrite: bool,
    forward_headers: Option<Vec<ForwardHeaderName>>,
    #[serde(default = "default_incoming_forwarded")]
    incoming_forwarded: IncomingForwarded,
}

fn default_incoming_forwarded() -> IncomingForwarded {
    IncomingForwarded::TrustedProxies
}

fn default_connect_timeout() -> u64 {
    5
}
fn default_response_timeout() -> u64 {
    30
}
fn default_read_timeout() -> u64 {
    60
}
fn default_max_decompressed() -> u64 {
    64 << 20
}
fn default_rewrite() -> bool {
    true
}

/// A `[proxy]` section that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyConfigError {
    /// A number outside its range.
    #[error("proxy.{field} = {value}: {reason}")]
    Value {
        /// The key, without the `proxy.` prefix.
        field: &'static str,
        /// The value as written.
        value: String,
        /// What the value must be.
        reason: &'static str,
    },
    /// The builder refused the origin URL, the host pairs or the CA file.
    #[error("proxy: {0}")]
    Proxy(#[from] ProxyError),
}

impl ProxyConfig {
    /// Checks `[proxy]` (`raw`, whose span is the table's): the front-end's keys with their
    /// own lines, the proxy's as [`ProxyConfig::validate`] does, at the table's line.
    pub(crate) fn check(
        raw: Spanned<RawProxy>,
        src: &Source<'_>,
    ) -> Result<ProxyConfig, ConfigError> {
        let span = raw.span();
        let r = raw.into_inner();
        let front = FrontConfig::check(
            "proxy",
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
        let gzip_level = match r.gzip_level {
            None => GzipLevel::default(),
            Some(level) => GzipLevel::new(*level.get_ref()).ok_or_else(|| {
                src.invalid(
                    level.span(),
                    format!(
                        "proxy.gzip_level = {}: must be 1 (fastest, the default) to 9 (smallest)",
                        level.get_ref()
                    ),
                )
            })?,
        };
        let config = ProxyConfig {
            front,
            origin: r.origin,
            connect_to: r.connect_to,
            hosts: r.hosts,
            ca_file: r.ca_file.as_deref().map(|p| src.resolve(p)),
            connect_timeout_secs: r.connect_timeout_secs,
            response_timeout_secs: r.response_timeout_secs,
            read_timeout_secs: r.read_timeout_secs,
            max_decompressed_bytes: r.max_decompressed_bytes,
            gzip_level,
            rewrite: r.rewrite,
            forward_headers: match &r.forward_headers {
                None => ForwardHeaders::default(),
                Some(names) => ForwardHeaders {
                    x_forwarded: names.contains(&ForwardHeaderName::XForwardedFor),
                    forwarded: names.contains(&ForwardHeaderName::Forwarded),
                },
            },
            incoming_forwarded: r.incoming_forwarded,
        };
        config
            .validate()
            .map_err(|e| src.invalid(span, e.to_string()))?;
        Ok(config)
    }

    /// Checks what can be checked without touching the network or the CA file: ranges,
    /// the origin URL, the host pairs.
    pub fn validate(&self) -> Result<(), ProxyConfigError> {
        for (field, value, range) in [
            ("connect_timeout_secs", self.connect_timeout_secs, 1..=300),
            (
                "response_timeout_secs",
                self.response_timeout_secs,
                1..=3600,
            ),
            ("read_timeout_secs", self.read_timeout_secs, 1..=3600),
        ] {
            if !range.contains(&value) {
                return Err(ProxyConfigError::Value {
                    field,
                    value: value.to_string(),
                    reason: "outside the allowed range (seconds)",
                });
            }
        }
        if self.max_decompressed_bytes < 1024 {
            return Err(ProxyConfigError::Value {
                field: "max_decompressed_bytes",
                value: self.max_decompressed_bytes.to_string(),
                reason: "must be at least 1024",
            });
        }
        // The builder checks the pairs and the URL; skip only the file read.
        self.builder(false).build()?;
        Ok(())
    }

    /// The proxy this section describes, CA file read.
    pub fn build(&self) -> Result<Proxy, ProxyConfigError> {
        self.validate()?;
        Ok(self.builder(true).build()?)
    }

    /// As [`ProxyConfig::build`], counting into `metrics` (a reload keeps the counters).
    pub(crate) fn build_counting(
        &self,
        metrics: std::sync::Arc<super::ProxyMetrics>,
    ) -> Result<Proxy, ProxyConfigError> {
        self.validate()?;
        Ok(self.builder(true).metrics(metrics).build()?)
    }

    fn builder(&self, with_files: bool) -> super::ProxyBuilder {
        let mut b = Proxy::builder(self.origin.clone())
            .connect_timeout(Duration::from_secs(self.connect_timeout_secs))
            .response_timeout(Duration::from_secs(self.response_timeout_secs))
            .read_timeout(Duration::from_secs(self.read_timeout_secs))
            .max_decompressed_bytes(self.max_decompressed_bytes)
            .gzip_level(self.gzip_level)
            .rewrite(self.rewrite)
            .forward_headers(self.forward_headers);
        for pair in &self.hosts {
            b = b.pair(pair.public.clone(), pair.origin.clone());
        }
        if let Some(addr) = self.connect_to {
            b = b.connect_to(addr);
        }
        if with_files && let Some(ca) = &self.ca_file {
            b = b.ca_file(ca);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[derive(Deserialize)]
    struct File {
        proxy: Spanned<RawProxy>,
    }

    fn parse(text: &str) -> Result<ProxyConfig, String> {
        let text = format!("[proxy]\n{text}");
        let file: File = toml::from_str(&text).map_err(|e| e.to_string())?;
        let src = Source::new(Path::new("/etc/geoline/geoline.toml"), &text);
        ProxyConfig::check(file.proxy, &src).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
        listen = "127.0.0.1:8081"
        origin = "https://example.com"
        connect_to = "127.0.0.1:9443"
        hosts = [
          { public = "example.cn", origin = "example.com" },
          { public = "www.example.cn", origin = "www.example.com" },
        ]
    "#;

    #[test]
    fn defaults_and_validation() {
        let c = parse(GOOD).expect("parses");
        assert_eq!(c.connect_timeout_secs, 5);
        assert_eq!(c.max_decompressed_bytes, 64 << 20);
        assert!(c.rewrite);
        // `listen = "addr"` is one plain listener, with the front-end's defaults.
        assert_eq!(
            c.front.listeners,
            [crate::http::config::ListenerConfig {
                address: "127.0.0.1:8081".parse().expect("addr"),
                tls: false,
                proxy_protocol: false,
            }]
        );
        assert_eq!(c.front.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.front.max_header_bytes, 32 * 1024);
        assert_eq!(c.front.max_headers, 100);
        assert_eq!(c.front.client_ip_header, ClientIpHeader::XForwardedFor);
        assert_eq!(c.forward_headers, ForwardHeaders::default());
        assert_eq!(c.incoming_forwarded, IncomingForwarded::TrustedProxies);
        let c = parse(&format!(
            "{GOOD}\nforward_headers = [\"forwarded\"]\nincoming_forwarded = \"replace\""
        ))
        .expect("parses");
        assert_eq!(
            c.forward_headers,
            ForwardHeaders {
                x_forwarded: false,
                forwarded: true
            }
        );
        assert_eq!(c.incoming_forwarded, IncomingForwarded::Replace);
        c.validate().expect("valid");
    }

    #[test]
    fn gzip_level_defaults_to_nginx_and_is_checked_with_its_line() {
        assert_eq!(parse(GOOD).expect("parses").gzip_level.get(), 1);
        let c = parse(&format!("{GOOD}\ngzip_level = 6")).expect("parses");
        assert_eq!(c.gzip_level.get(), 6);
        for bad in [0, 10] {
            let err = parse(&format!("{GOOD}\ngzip_level = {bad}")).expect_err("out of range");
            // `[proxy]`, then GOOD (an empty first line, 8 keys, an empty last one), then the key.
            assert_eq!(
                err,
                format!(
                    "/etc/geoline/geoline.toml:11: proxy.gzip_level = {bad}: \
                     must be 1 (fastest, the default) to 9 (smallest)"
                )
            );
        }
    }

    #[test]
    fn listeners_as_redirect_has_them() {
        let text = GOOD.replace(
            r#"listen = "127.0.0.1:8081""#,
            r#"trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]
        listen = [
          { address = "127.0.0.1:8443", tls = true, proxy_protocol = true },
          { address = "127.0.0.1:8081" },
        ]
        certificate = [{ names = ["example.cn", "*.Example.cn"], cert = "c.pem", key = "k.pem" }]"#,
        );
        let c = parse(&text).expect("parses");
        assert_eq!(c.front.listeners.len(), 2);
        assert!(c.front.listeners[0].tls && c.front.listeners[0].proxy_protocol);
        assert!(!c.front.listeners[1].tls);
        assert_eq!(
            c.front.certificates[0].names,
            ["example.cn", "*.example.cn"]
        );
        assert_eq!(
            c.front.certificates[0].cert,
            Path::new("/etc/geoline/c.pem")
        );
        assert_eq!(
            c.front.trusted_proxies,
            [
                "10.0.0.0/8".parse::<ipnet::IpNet>().expect("net"),
                "192.0.2.1/32".parse().expect("net")
            ]
        );
    }

    #[test]
    fn a_tls_listener_needs_a_certificate() {
        let text = GOOD.replace(
            r#"listen = "127.0.0.1:8081""#,
            r#"listen = [{ address = "127.0.0.1:8443", tls = true }]"#,
        );
        assert_eq!(
            parse(&text).expect_err("no certificate"),
            "/etc/geoline/geoline.toml:3: proxy.listen 127.0.0.1:8443 has tls = true but no [[proxy.certificate]] is configured"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse(&format!("{GOOD}\nrewite = false")).expect_err("typo refused");
        assert!(err.contains("rewite"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = parse(GOOD).expect("parses");
        c.connect_timeout_secs = 0;
        assert!(
            c.validate()
                .expect_err("zero")
                .to_string()
                .contains("connect_timeout_secs")
        );

        let mut c = parse(GOOD).expect("parses");
        c.origin = "ftp://example.com".into();
        assert!(
            c.validate()
                .expect_err("ftp")
                .to_string()
                .contains("scheme")
        );

        let mut c = parse(GOOD).expect("parses");
        c.origin = "https://elsewhere.test".into();
        assert!(
            c.validate()
                .expect_err("host")
                .to_string()
                .contains("not the origin host")
        );

        let mut c = parse(GOOD).expect("parses");
        c.hosts.push(HostPairConfig {
            public: "example.cn".into(),
            origin: "api.example.com".into(),
        });
        assert!(
            c.validate()
                .expect_err("dup")
                .to_string()
                .contains("more than one pair")
        );

        let mut c = parse(GOOD).expect("parses");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        c.validate().expect("the file is only read by build");
        assert!(
            c.build()
                .expect_err("missing")
                .to_string()
                .contains("/nonexistent/ca.pem")
        );
    }

    #[test]
    fn relative_ca_file_follows_the_config() {
        let c = parse(&format!("{GOOD}\nca_file = \"ca.pem\"")).expect("parses");
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/geoline/ca.pem")));
    }
}
