//! The `[proxy]` section of the configuration file.
//!
//! This module owns the section's format, its defaults and the checks that can be made on
//! it alone; [`ProxyConfig::build`] turns it into a [`Proxy`]. It does not read the rest of
//! the file: [`crate::config`] embeds this section and resolves relative paths.
//!
//! ```toml
//! [proxy]
//! listen = "0.0.0.0:8443"
//! origin = "https://example.com"     # scheme and port for every origin host
//! connect_to = "203.0.113.10:443"    # optional: dial this instead of resolving
//! ca_file = "origin-ca.pem"          # optional: trust a private CA too
//! hosts = [
//!   { public = "example.cn", origin = "example.com" },
//!   { public = "www.example.cn", origin = "www.example.com" },
//! ]
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::service::{Proxy, ProxyError};

/// One `{ public = "...", origin = "..." }` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPairConfig {
    /// The host clients ask for, e.g. `example.cn`.
    pub public: String,
    /// The host it stands for at the origin, e.g. `example.com`.
    pub origin: String,
}

/// The `[proxy]` section as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where the proxy accepts plain HTTP.
    pub listen: SocketAddr,
    /// `http://host[:port]` or `https://host[:port]`: the scheme and port used for every
    /// origin host; the host must be one of the pairs' origin hosts.
    pub origin: String,
    /// Dial this address for every origin host instead of resolving it; TLS still verifies
    /// the origin host name.
    #[serde(default)]
    pub connect_to: Option<SocketAddr>,
    /// The host pairs served; at least one, no host in two pairs.
    pub hosts: Vec<HostPairConfig>,
    /// A PEM file of CA certificates trusted besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds to get a TCP connection to the origin before answering 502 (default 5,
    /// 1 to 300).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to get the origin's response head before answering 504 (default 30, 1 to
    /// 3600).
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// Seconds the origin's body may stall before the response is cut off (default 60, 1 to
    /// 3600).
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u64,
    /// The most bytes a compressed body may decode to before it is cut off (default 64 MiB,
    /// at least 1024).
    #[serde(default = "default_max_decompressed")]
    pub max_decompressed_bytes: u64,
    /// `false` passes bodies and response headers through untouched (default `true`).
    #[serde(default = "default_rewrite")]
    pub rewrite: bool,
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
    /// Makes a relative `ca_file` relative to `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &self.ca_file
            && p.is_relative()
        {
            self.ca_file = Some(base.join(p));
        }
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

    fn builder(&self, with_files: bool) -> super::ProxyBuilder {
        let mut b = Proxy::builder(self.origin.clone())
            .connect_timeout(Duration::from_secs(self.connect_timeout_secs))
            .response_timeout(Duration::from_secs(self.response_timeout_secs))
            .read_timeout(Duration::from_secs(self.read_timeout_secs))
            .max_decompressed_bytes(self.max_decompressed_bytes)
            .rewrite(self.rewrite);
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
    use super::*;

    fn parse(text: &str) -> Result<ProxyConfig, toml::de::Error> {
        toml::from_str(text)
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
        c.validate().expect("valid");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse(&format!("{GOOD}\nrewite = false")).expect_err("typo refused");
        assert!(err.to_string().contains("rewite"), "{err}");
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
        let mut c = parse(&format!("{GOOD}\nca_file = \"ca.pem\"")).expect("parses");
        c.resolve_paths(Path::new("/etc/geoline"));
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/geoline/ca.pem")));
    }
}
