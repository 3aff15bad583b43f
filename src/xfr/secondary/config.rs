//! The keys of a `[[zone]]` that make geoline a secondary of it: the primaries it pulls
//! the zone from, the key each line's view is pulled with, and where the last good copy
//! of every line is kept.
//!
//! ```toml
//! [[zone]]
//! origin = "example.com"
//! primaries = ["192.0.2.1", "[2001:db8::1]:5300"]
//! primary_keys = { default = "default-xfr", china = "china-xfr" }
//! store = "/var/lib/geoline/secondary"
//! ```
//!
//! This module owns those keys' checks (addresses that parse, keys that `[[key]]`
//! declares, lines that are declared, no `file` or overlays beside them) and the names of
//! the stored copies. It does not pull anything ([`super::Secondaries`]) nor read the
//! copies ([`crate::zone`] does, as it reads zone files).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use toml::Spanned;

use crate::diag::{ConfigError, Source};
use crate::lines::{LineId, LineSet};

/// How a secondary zone is pulled, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryConfig {
    /// Where the zone is pulled from, tried in order: the first that answers wins.
    pub(crate) primaries: Vec<SocketAddr>,
    /// One pull per line that has a key of its own, the default line's first (unsigned
    /// when `primary_keys` gives it none). A line without a key serves the default
    /// line's copy.
    pub(crate) pulls: Vec<Pull>,
    /// The directory of the stored copies.
    pub(crate) store: PathBuf,
}

/// One line's view, pulled with one key, kept in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pull {
    pub(crate) line: LineId,
    /// The TSIG key the transfer request is signed with (and the primary's answer
    /// verified with); `None`: unsigned.
    pub(crate) key: Option<Name>,
    /// The last good copy of the line's view, a zone file.
    pub(crate) file: PathBuf,
}

/// The secondary keys of one `[[zone]]`, as written (read with the rest of the table by
/// [`crate::zone::config`]).
pub(crate) struct RawSecondary<'a> {
    pub(crate) origin: Option<&'a Spanned<String>>,
    pub(crate) primaries: &'a Spanned<Vec<Spanned<String>>>,
    pub(crate) keys: &'a BTreeMap<Spanned<String>, Spanned<String>>,
    pub(crate) store: Option<&'a Spanned<PathBuf>>,
}

/// `192.0.2.1`, `192.0.2.1:5300`, `[2001:db8::1]:53` or `2001:db8::1`; port 53 when none.
pub(crate) fn dns_address(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// The file name of a line's stored copy: the origin without its final dot, the line.
fn stored_name(origin: &Name, line: &str) -> String {
    let origin = origin.to_lowercase().to_string();
    format!("{}.{line}.zone", origin.trim_end_matches('.'))
}

impl SecondaryConfig {
    /// Checks the secondary keys of a zone; returns its origin with them. `declared`
    /// says whether a `[[key]]` of that name is.
    pub(crate) fn check(
        raw: RawSecondary<'_>,
        src: &Source<'_>,
        lines: &LineSet,
        declared: impl Fn(&Name) -> bool,
    ) -> Result<(Name, SecondaryConfig), ConfigError> {
        let at = raw.primaries.span();
        let origin = raw.origin.ok_or_else(|| {
            src.invalid(
                at.clone(),
                "a zone pulled from `primaries` needs its `origin`: there is no file to read it from"
                    .into(),
            )
        })?;
        let mut name = Name::from_ascii(origin.get_ref()).map_err(|e| {
            src.invalid(
                origin.span(),
                format!("origin `{}` is not a domain name: {e}", origin.get_ref()),
            )
        })?;
        name.set_fqdn(true);
        let name = name.to_lowercase();
        if raw.primaries.get_ref().is_empty() {
            return Err(src.invalid(at, "`primaries` is empty: name at least one".into()));
        }
        let primaries = raw
            .primaries
            .get_ref()
            .iter()
            .map(|p| {
                dns_address(p.get_ref()).ok_or_else(|| {
                    src.invalid(
                        p.span(),
                        format!(
                            "primary `{}` is not an address (`192.0.2.1`, `192.0.2.1:5300`, `[2001:db8::1]:53`)",
                            p.get_ref()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let store = raw.store.ok_or_else(|| {
            src.invalid(
                at.clone(),
                "a zone pulled from `primaries` needs `store`, the directory where the last good copy of each line is kept (so that a restart serves at once)"
                    .into(),
            )
        })?;
        let store = src.resolve(store.get_ref());
        let mut keyed: BTreeMap<LineId, Name> = BTreeMap::new();
        for (line, key) in raw.keys {
            let id = lines.id(line.get_ref()).ok_or_else(|| {
                src.invalid(
                    line.span(),
                    format!(
                        "primary key for line `{}`, which is not declared (lines: {})",
                        line.get_ref(),
                        lines.names().join(", ")
                    ),
                )
            })?;
            let mut key_name = Name::from_ascii(key.get_ref()).map_err(|e| {
                src.invalid(
                    key.span(),
                    format!("key `{}` is not a domain name: {e}", key.get_ref()),
                )
            })?;
            key_name.set_fqdn(true);
            let key_name = key_name.to_lowercase();
            if !declared(&key_name) {
                return Err(src.invalid(
                    key.span(),
                    format!("primary key `{}`, which no [[key]] declares", key.get_ref()),
                ));
            }
            keyed.insert(id, key_name);
        }
        let default = lines.default_line();
        let pull = |line: LineId, key: Option<Name>| Pull {
            line,
            key,
            file: store.join(stored_name(&name, lines.name(line))),
        };
        let mut pulls = vec![pull(default, keyed.remove(&default))];
        pulls.extend(keyed.into_iter().map(|(line, key)| pull(line, Some(key))));
        Ok((
            name,
            SecondaryConfig {
                primaries,
                pulls,
                store,
            },
        ))
    }

    /// The default line's stored copy: what stands for the zone's file (the journal's
    /// place, logs, `/status`).
    pub(crate) fn default_file(&self) -> &Path {
        self.pulls.first().map_or(&self.store, |p| p.file.as_path())
    }

    /// Whether `from` is one of the primaries (any port: a NOTIFY comes from whatever
    /// port the primary sends from).
    pub(crate) fn is_primary(&self, from: IpAddr) -> bool {
        let from = from.to_canonical();
        self.primaries.iter().any(|p| p.ip().to_canonical() == from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(zone: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\n\n[[line]]\nname = \"china\"\ncidrs = [\"10.0.0.0/8\"]\n\n[[key]]\nname = \"china-xfr\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n\n[[zone]]\n{zone}"
        );
        Config::parse(Path::new("/etc/geoline.toml"), &text)
    }

    #[test]
    fn primaries_keys_and_store_make_a_secondary_zone() {
        let config = parse(concat!(
            "origin = \"Example.COM\"\n",
            "primaries = [\"192.0.2.1\", \"[2001:db8::1]:5300\"]\n",
            "primary_keys = { china = \"China-Xfr\" }\n",
            "store = \"secondary\"\n",
        ))
        .expect("valid");
        let zone = &config.zones[0];
        let secondary = zone.secondary.as_ref().expect("a secondary zone");
        assert_eq!(
            secondary.primaries,
            [
                "192.0.2.1:53".parse().expect("addr"),
                "[2001:db8::1]:5300".parse().expect("addr")
            ]
        );
        let china = config.line_set().id("china").expect("china");
        let default = config.line_set().default_line();
        let pulls: Vec<_> = secondary
            .pulls
            .iter()
            .map(|p| (p.line, p.key.as_ref().map(Name::to_ascii), p.file.clone()))
            .collect();
        assert_eq!(
            pulls,
            [
                (
                    default,
                    None,
                    PathBuf::from("/etc/secondary/example.com.default.zone")
                ),
                (
                    china,
                    Some("china-xfr.".to_string()),
                    PathBuf::from("/etc/secondary/example.com.china.zone")
                ),
            ]
        );
        assert_eq!(
            zone.file,
            PathBuf::from("/etc/secondary/example.com.default.zone")
        );
        assert_eq!(zone.origin.as_deref(), Some("example.com."));
        assert!(secondary.is_primary("::ffff:192.0.2.1".parse().expect("ip")));
        assert!(!secondary.is_primary("192.0.2.2".parse().expect("ip")));
    }

    #[test]
    fn errors_name_the_line_of_the_file() {
        let e = |zone: &str| parse(zone).expect_err("invalid").to_string();
        assert_eq!(
            e("primaries = [\"192.0.2.1\"]\nstore = \"s\"\n"),
            "/etc/geoline.toml:14: a zone pulled from `primaries` needs its `origin`: there is no file to read it from"
        );
        assert_eq!(
            e("origin = \"example.com\"\nprimaries = [\"nowhere\"]\nstore = \"s\"\n"),
            "/etc/geoline.toml:15: primary `nowhere` is not an address (`192.0.2.1`, `192.0.2.1:5300`, `[2001:db8::1]:53`)"
        );
        assert_eq!(
            e(
                "origin = \"example.com\"\nprimaries = [\"192.0.2.1\"]\nstore = \"s\"\nprimary_keys = { mars = \"china-xfr\" }\n"
            ),
            "/etc/geoline.toml:17: primary key for line `mars`, which is not declared (lines: china, default)"
        );
        assert_eq!(
            e(
                "origin = \"example.com\"\nprimaries = [\"192.0.2.1\"]\nstore = \"s\"\nprimary_keys = { china = \"nokey\" }\n"
            ),
            "/etc/geoline.toml:17: primary key `nokey`, which no [[key]] declares"
        );
        assert!(
            e("origin = \"example.com\"\nprimaries = [\"192.0.2.1\"]\n").contains("needs `store`")
        );
        assert!(
            e("origin = \"example.com\"\nprimaries = []\nstore = \"s\"\n").contains("is empty")
        );
        assert_eq!(
            e(
                "origin = \"example.com\"\nfile = \"a.zone\"\nprimaries = [\"192.0.2.1\"]\nstore = \"s\"\n"
            ),
            "/etc/geoline.toml:16: a zone is read from `file` or pulled from `primaries`, not both"
        );
        assert_eq!(
            e(
                "origin = \"example.com\"\nprimaries = [\"192.0.2.1\"]\nstore = \"s\"\noverlays = { china = \"c.zone\" }\n"
            ),
            "/etc/geoline.toml:17: a zone pulled from `primaries` has no overlays: each line's view comes from the primary"
        );
        assert_eq!(
            e("origin = \"example.com\"\nstore = \"s\"\n"),
            "/etc/geoline.toml:13: a [[zone]] needs `file` (its zone file) or `primaries` (to pull it from)"
        );
    }
}
