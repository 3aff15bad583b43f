//! Diagnostics for the files geoline reads: where something is wrong, and saying so.
//!
//! This module owns [`Location`] (a file and, when known, a line), [`ConfigError`], and
//! [`Source`]: a configuration file's text as the section checks see it, which turns a
//! TOML span into a line, checks a number against its range and resolves relative paths
//! against the file's directory. Every message reads `file:line: reason`. It also owns the
//! hints added where the fix is not obvious from the reason alone: an IPv6 address without
//! brackets ([`socket_address_hint`]), a port below 1024 or an address the host does not
//! have ([`bind_hint`]).
//!
//! It is a leaf: it knows no section of the configuration and no other module of the crate,
//! so that the sections (which need it) and [`crate::config`] (which composes them) do not
//! import each other.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use toml::Spanned;

/// Where in a file something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based; absent when the error concerns the file as a whole.
    pub line: Option<usize>,
}

impl Location {
    /// The file as a whole.
    pub(crate) fn file(path: &Path) -> Location {
        Location {
            path: path.to_path_buf(),
            line: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.path.display(), line),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// Why a configuration file (or a file it names, such as a CIDR list) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key or value is not of the section's format.
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's message.
        message: String,
    },
    /// The file parses but a value is refused by its section's checks.
    #[error("{at}: {reason}")]
    Invalid {
        /// The value's line, or the file as a whole.
        at: Location,
        /// The rule broken, naming the key.
        reason: String,
    },
}

/// A configuration file's text, as the checks of its sections see it.
pub(crate) struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        Source { path, text }
    }

    /// The directory relative paths in the file are relative to.
    pub(crate) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The file and the line `span` starts on (the whole file without a span).
    pub(crate) fn location(&self, span: Option<Range<usize>>) -> Location {
        Location {
            path: self.path.to_path_buf(),
            line: span.map(|s| line_of(self.text, s.start)),
        }
    }

    /// `reason`, at the line of `span`.
    pub(crate) fn invalid(&self, span: Range<usize>, reason: String) -> ConfigError {
        ConfigError::Invalid {
            at: self.location(Some(span)),
            reason,
        }
    }

    /// `reason`, about the file as a whole (a check that spans sections).
    pub(crate) fn invalid_file(&self, reason: String) -> ConfigError {
        ConfigError::Invalid {
            at: self.location(None),
            reason,
        }
    }

    /// The value given (or `default`), checked against `range`; the error names the key
    /// (`dns.max_udp_payload 9000 is outside 512..=4096`) and its line.
    pub(crate) fn in_range<T>(
        &self,
        value: Option<Spanned<T>>,
        default: T,
        range: RangeInclusive<T>,
        key: &str,
    ) -> Result<T, ConfigError>
    where
        T: PartialOrd + Copy + fmt::Display,
    {
        Ok(self.checked(value, range, key)?.unwrap_or(default))
    }

    /// The value given, if any, checked against `range` as [`Source::in_range`] does.
    pub(crate) fn checked<T>(
        &self,
        value: Option<Spanned<T>>,
        range: RangeInclusive<T>,
        key: &str,
    ) -> Result<Option<T>, ConfigError>
    where
        T: PartialOrd + Copy + fmt::Display,
    {
        let Some(v) = value else {
            return Ok(None);
        };
        let n = *v.get_ref();
        if range.contains(&n) {
            Ok(Some(n))
        } else {
            Err(self.invalid(
                v.span(),
                format!("{key} {n} is outside {}..={}", range.start(), range.end()),
            ))
        }
    }

    /// `path` as written in the file, made relative to the file's directory (so that
    /// `geoline --config /etc/geoline/geoline.toml` works from any directory).
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        let base = self.dir();
        if path.is_absolute() || base.as_os_str().is_empty() {
            path.to_path_buf()
        } else {
            base.join(path)
        }
    }
}

/// For `#[serde(default = "crate::diag::default_true")]`: a switch that is on unless the
/// file turns it off.
pub(crate) fn default_true() -> bool {
    true
}

/// What to do about a listening address that could not be bound, after the operating
/// system's reason (`; ...`), or nothing when the reason says it all.
pub(crate) fn bind_hint(addr: SocketAddr, error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::PermissionDenied if addr.port() != 0 && addr.port() < 1024 => {
            "; ports below 1024 need CAP_NET_BIND_SERVICE: AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit, or `setcap cap_net_bind_service=+ep` on the binary"
        }
        io::ErrorKind::AddrNotAvailable if addr.ip().is_loopback() && addr.is_ipv6() => {
            "; this host has no IPv6 loopback (IPv6 is off, as in Docker by default): remove the address from the configuration"
        }
        io::ErrorKind::AddrNotAvailable => {
            "; no interface of this host has that address: listen on one it has (`ip -brief address`)"
        }
        io::ErrorKind::AddrInUse => "; another process holds the port (`ss -lntup` names it)",
        _ => "",
    }
}

/// A hint for a value the TOML parser refused as a socket address (`::1:5300`, `::1`,
/// `127.0.0.1`): what was probably meant. `value` is the text of the value, quotes and all.
pub(crate) fn socket_address_hint(value: &str) -> Option<String> {
    let value = value.trim().trim_matches('"').trim_matches('\'');
    if value.parse::<SocketAddr>().is_ok() {
        return None;
    }
    if let Some((ip, port)) = value.rsplit_once(':')
        && let (Ok(ip), Ok(port)) = (ip.parse::<Ipv6Addr>(), port.parse::<u16>())
        && !value.starts_with('[')
    {
        return Some(format!(
            "an IPv6 address needs brackets before its port: \"[{ip}]:{port}\""
        ));
    }
    match value.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => Some(format!(
            "an address needs a port, and IPv6 brackets: \"[{ip}]:PORT\""
        )),
        Ok(IpAddr::V4(ip)) => Some(format!("an address needs a port: \"{ip}:PORT\"")),
        Err(_) => None,
    }
}

/// The 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_address_hint_says_what_was_meant() {
        assert_eq!(
            socket_address_hint("\"::1:5300\"").as_deref(),
            Some("an IPv6 address needs brackets before its port: \"[::1]:5300\"")
        );
        assert_eq!(
            socket_address_hint("\"::1\"").as_deref(),
            Some("an address needs a port, and IPv6 brackets: \"[::1]:PORT\"")
        );
        assert_eq!(
            socket_address_hint("\"127.0.0.1\"").as_deref(),
            Some("an address needs a port: \"127.0.0.1:PORT\"")
        );
        assert_eq!(socket_address_hint("\"[::1]:53\""), None);
        assert_eq!(socket_address_hint("\"localhost:53\""), None);
    }

    #[test]
    fn a_bind_hint_names_the_capability_below_1024_only() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let low: SocketAddr = "127.0.0.1:53".parse().expect("addr");
        let high: SocketAddr = "127.0.0.1:5300".parse().expect("addr");
        assert!(bind_hint(low, &denied).contains("CAP_NET_BIND_SERVICE"));
        assert_eq!(bind_hint(high, &denied), "");
        let absent = io::Error::from(io::ErrorKind::AddrNotAvailable);
        let v6: SocketAddr = "[::1]:5300".parse().expect("addr");
        assert!(bind_hint(v6, &absent).contains("no IPv6 loopback"));
    }
}
