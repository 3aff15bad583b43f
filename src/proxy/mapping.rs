//! Host pairs: which public host stands for which origin host.
//!
//! This module owns the list of `public ↔ origin` pairs, their validation (well-formed
//! DNS names, no host claimed twice) and the exact lookups both directions need: a request's
//! `Host` to its origin host, and an origin host back to its public one. It does not search
//! text for hosts; that is [`super::rewrite`], which is built from these pairs.

use std::fmt;

use super::host;

/// One public host and the origin host it stands for, both lower case, without a trailing dot.
/// They may be the same name: a pass-through for that host, nothing to rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPair {
    /// The name clients use, e.g. `example.cn`.
    pub public: String,
    /// The name the origin serves, e.g. `example.com`.
    pub origin: String,
}

/// Why a set of pairs was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// No pairs at all.
    #[error("no host pairs: the proxy would serve nothing")]
    Empty,
    /// A host that is not a DNS host name (IDNs must be given in punycode).
    #[error("{side} host {host:?} is not a DNS name: {reason}")]
    BadName {
        /// Which half of the pair.
        side: Side,
        /// The host as given.
        host: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A host in two pairs, which would make one direction of the mapping ambiguous.
    #[error("{side} host {host:?} appears in more than one pair")]
    Duplicate {
        /// Which half of the pairs.
        side: Side,
        /// The host, normalized (lower case, no trailing dot).
        host: String,
    },
}

/// Which half of a pair an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The host clients use.
    Public,
    /// The host the origin serves.
    Origin,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Public => "public",
            Side::Origin => "origin",
        })
    }
}

/// The validated pairs.
#[derive(Debug, Clone)]
pub struct HostMap {
    pairs: Vec<HostPair>,
}

impl HostMap {
    /// Validates `(public, origin)` pairs. Names are compared ASCII case-insensitively and a
    /// trailing dot is ignored, as DNS does.
    pub fn new<I, P, O>(pairs: I) -> Result<HostMap, MappingError>
    where
        I: IntoIterator<Item = (P, O)>,
        P: AsRef<str>,
        O: AsRef<str>,
    {
        let mut out: Vec<HostPair> = Vec::new();
        for (public, origin) in pairs {
            let public = normalize(public.as_ref(), Side::Public)?;
            let origin = normalize(origin.as_ref(), Side::Origin)?;
            if out.iter().any(|p| p.public == public) {
                return Err(MappingError::Duplicate {
                    side: Side::Public,
                    host: public,
                });
            }
            if out.iter().any(|p| p.origin == origin) {
                return Err(MappingError::Duplicate {
                    side: Side::Origin,
                    host: origin,
                });
            }
            out.push(HostPair { public, origin });
        }
        if out.is_empty() {
            return Err(MappingError::Empty);
        }
        Ok(HostMap { pairs: out })
    }

    /// No pairs: for a proxy that only passes hosts through under their own name.
    pub(crate) fn empty() -> HostMap {
        HostMap { pairs: Vec::new() }
    }

    /// The pairs, in the order given.
    pub fn pairs(&self) -> &[HostPair] {
        &self.pairs
    }

    /// The origin host for a request's host (port and trailing dot ignored), if it is one of
    /// ours. Only an exact name counts: subdomains of a public host are not served.
    pub fn origin_for(&self, public: &str) -> Option<&str> {
        self.position(public).map(|i| self.pairs[i].origin.as_str())
    }

    /// The index in [`pairs`](Self::pairs) of the pair whose public host this is.
    pub fn position(&self, public: &str) -> Option<usize> {
        let host = host::strip_port(public).unwrap_or(public);
        let host = host.strip_suffix('.').unwrap_or(host);
        self.pairs
            .iter()
            .position(|p| p.public.eq_ignore_ascii_case(host))
    }

    /// The public host for an origin host, exact name only.
    pub fn public_for(&self, origin: &str) -> Option<&str> {
        let host = origin.strip_suffix('.').unwrap_or(origin);
        self.pairs
            .iter()
            .find(|p| p.origin.eq_ignore_ascii_case(host))
            .map(|p| p.public.as_str())
    }
}

/// `host` normalized as [`host::normalize`] does, or why it is not a host name.
pub(crate) fn normalize(name: &str, side: Side) -> Result<String, MappingError> {
    host::normalize(name).map_err(|reason| MappingError::BadName {
        side,
        host: name.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_port_and_trailing_dot() {
        let map = HostMap::new([
            ("Example.CN.", "example.com"),
            ("www.example.cn", "WWW.example.com"),
        ])
        .expect("valid pairs");
        assert_eq!(map.origin_for("EXAMPLE.cn:8080"), Some("example.com"));
        assert_eq!(map.origin_for("example.cn."), Some("example.com"));
        assert_eq!(map.origin_for("www.example.cn"), Some("www.example.com"));
        assert_eq!(map.origin_for("api.example.cn"), None);
        assert_eq!(map.origin_for("evil.test"), None);
        assert_eq!(map.public_for("Www.Example.Com"), Some("www.example.cn"));
    }

    #[test]
    fn refuses_bad_pairs() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(HostMap::new(none).unwrap_err(), MappingError::Empty);
        assert!(matches!(
            HostMap::new([("a.cn", "a.com"), ("A.cn", "b.com")]),
            Err(MappingError::Duplicate {
                side: Side::Public,
                ..
            })
        ));
        assert!(matches!(
            HostMap::new([("a.cn", "a.com"), ("b.cn", "a.com")]),
            Err(MappingError::Duplicate {
                side: Side::Origin,
                ..
            })
        ));
        // A host paired with itself is the pass-through the redirector uses.
        let same = HostMap::new([("a.com", "A.com")]).expect("identity pair");
        assert_eq!(same.origin_for("a.com"), Some("a.com"));
        for bad in ["", "a..b", "-a.b", "a_b.c", "a b", "a/b", "ex%61mple.com"] {
            assert!(
                matches!(
                    HostMap::new([(bad, "a.com")]),
                    Err(MappingError::BadName { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
