//! The `[update]` section: where journals live, how fast one key may update, and the
//! grants that say which key may change what (`[[update.grant]]`).
//!
//! This module owns the section's format, defaults and checks (names, patterns and types
//! that parse, a line that is declared). It does not match requests against grants
//! ([`super::policy`]) and does not know the keys' secrets (the TSIG configuration does).

use std::path::PathBuf;

use hickory_proto::rr::{Name, RecordType};
use serde::Deserialize;
use toml::Spanned;

use super::policy::{Grant, NamePattern, Types};
use crate::diag::{ConfigError, Source};
use crate::lines::LineSet;

/// Updates per second one key may send when the section does not say.
pub(crate) const DEFAULT_RATE: u32 = 20;

/// `[update]`, checked.
#[derive(Debug, Clone, Default)]
pub struct UpdateConfig {
    /// Where every zone's journal is (`<origin>jnl`, e.g. `example.com.jnl`); `None`: in
    /// the directory of the zone's file.
    pub journal_dir: Option<PathBuf>,
    /// Updates per second one key may send (a burst of as many), beyond which its
    /// updates are REFUSED; 0: no limit. Other keys and queries are not affected.
    pub rate: u32,
    /// Who may change what, in order.
    pub(crate) grants: Vec<Grant>,
}

/// `[update]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpdate {
    journal_dir: Option<PathBuf>,
    rate: Option<Spanned<u32>>,
    #[serde(default, rename = "grant")]
    grants: Vec<Spanned<RawGrant>>,
}

/// `[[update.grant]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    key: Spanned<String>,
    zones: Vec<Spanned<String>>,
    #[serde(default)]
    names: Vec<Spanned<String>>,
    #[serde(default)]
    types: Vec<Spanned<String>>,
    max_records: Option<Spanned<u32>>,
    line: Option<Spanned<String>>,
}

impl UpdateConfig {
    /// Checks `[update]`; `lines` are the declared lines a grant may name, `declared`
    /// says whether a `[[key]]` of that name is.
    pub(crate) fn check(
        raw: RawUpdate,
        src: &Source<'_>,
        lines: &LineSet,
        declared: impl Fn(&Name) -> bool,
    ) -> Result<UpdateConfig, ConfigError> {
        let rate = src.in_range(raw.rate, DEFAULT_RATE, 0..=1_000_000, "update.rate")?;
        let grants = raw
            .grants
            .into_iter()
            .map(|g| check_grant(g, src, lines, &declared))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UpdateConfig {
            journal_dir: raw.journal_dir.map(|d| src.resolve(&d)),
            rate,
            grants,
        })
    }
}

fn domain(text: &Spanned<String>, src: &Source<'_>, what: &str) -> Result<Name, ConfigError> {
    let mut name = Name::from_ascii(text.get_ref()).map_err(|e| {
        src.invalid(
            text.span(),
            format!("{what} `{}` is not a domain name: {e}", text.get_ref()),
        )
    })?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn check_grant(
    raw: Spanned<RawGrant>,
    src: &Source<'_>,
    lines: &LineSet,
    declared: &impl Fn(&Name) -> bool,
) -> Result<Grant, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let key = domain(&raw.key, src, "key")?;
    if !declared(&key) {
        return Err(src.invalid(
            raw.key.span(),
            format!(
                "grant for key `{}`, which no [[key]] declares",
                raw.key.get_ref()
            ),
        ));
    }
    if raw.zones.is_empty() {
        return Err(src.invalid(
            span,
            "a grant needs `zones`: the zones it may update".into(),
        ));
    }
    let zones = raw
        .zones
        .iter()
        .map(|z| domain(z, src, "zone"))
        .collect::<Result<Vec<_>, _>>()?;
    let names = if raw.names.is_empty() {
        vec![NamePattern::everything()]
    } else {
        raw.names
            .iter()
            .map(|n| {
                NamePattern::parse(n.get_ref()).map_err(|reason| {
                    src.invalid(
                        n.span(),
                        format!("name pattern `{}`: {reason}", n.get_ref()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let types = if raw.types.is_empty() {
        Types::Default
    } else {
        let mut list = Vec::with_capacity(raw.types.len());
        for t in &raw.types {
            let rtype: RecordType = t.get_ref().to_ascii_uppercase().parse().map_err(|_| {
                src.invalid(t.span(), format!("`{}` is not a record type", t.get_ref()))
            })?;
            if matches!(
                rtype,
                RecordType::ANY
                    | RecordType::AXFR
                    | RecordType::IXFR
                    | RecordType::OPT
                    | RecordType::TSIG
                    | RecordType::Unknown(_)
            ) {
                return Err(src.invalid(
                    t.span(),
                    format!("`{}` is not a type an update can write", t.get_ref()),
                ));
            }
            list.push(rtype);
        }
        Types::Only(list)
    };
    let max_records = src
        .checked(raw.max_records, 1..=10_000, "max_records")?
        .map(|m| m as usize);
    let line = match &raw.line {
        None => None,
        Some(name) => {
            let id = lines
                .id(name.get_ref())
                .filter(|&id| id != lines.default_line())
                .ok_or_else(|| {
                    src.invalid(
                        name.span(),
                        format!(
                            "grant for line `{}`, which is not a declared line (leave `line` out to write the data every line sees)",
                            name.get_ref()
                        ),
                    )
                })?;
            if types.covers(RecordType::SOA) && matches!(types, Types::Only(_)) {
                return Err(src.invalid(
                    name.span(),
                    "a grant for a line cannot write the SOA: the zone has one, in its base data"
                        .into(),
                ));
            }
            Some(id)
        }
    };
    Ok(Grant {
        key,
        zones,
        names,
        types,
        max_records,
        line,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<UpdateConfig, String> {
        #[derive(Deserialize)]
        struct File {
            update: RawUpdate,
        }
        let path = Path::new("/etc/geoline.toml");
        let src = Source::new(path, text);
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let lines = LineSet::new(["china"]).expect("lines");
        let declared = |k: &Name| k.to_string() == "acme.";
        UpdateConfig::check(file.update, &src, &lines, declared).map_err(|e| e.to_string())
    }

    #[test]
    fn a_grant_with_defaults() {
        let e = parse("[update]\n[[update.grant]]\nkey = \"other\"\nzones = [\"example.com\"]\n")
            .expect_err("undeclared key");
        assert_eq!(
            e,
            "/etc/geoline.toml:3: grant for key `other`, which no [[key]] declares"
        );
        let config =
            parse("[update]\n[[update.grant]]\nkey = \"Acme\"\nzones = [\"example.com\"]\n")
                .expect("valid");
        assert_eq!(config.rate, DEFAULT_RATE);
        assert_eq!(config.journal_dir, None);
        let grant = &config.grants[0];
        assert_eq!(grant.key.to_string(), "acme.");
        assert!(grant.types.covers(RecordType::TXT));
        assert!(!grant.types.covers(RecordType::SOA));
        assert!(!grant.types.covers(RecordType::NS));
        assert_eq!(grant.line, None);
    }

    #[test]
    fn bad_grants_name_their_line() {
        let base = "[update]\njournal_dir = \"j\"\n[[update.grant]]\nkey = \"acme\"\nzones = [\"example.com\"]\n";
        let cases = [
            (
                "types = [\"BOGUS\"]\n",
                "/etc/geoline.toml:6: `BOGUS` is not a record type",
            ),
            (
                "types = [\"AXFR\"]\n",
                "/etc/geoline.toml:6: `AXFR` is not a type an update can write",
            ),
            (
                "line = \"mars\"\n",
                "/etc/geoline.toml:6: grant for line `mars`, which is not a declared line",
            ),
            (
                "line = \"default\"\n",
                "/etc/geoline.toml:6: grant for line `default`",
            ),
            (
                "line = \"china\"\ntypes = [\"SOA\"]\n",
                "/etc/geoline.toml:6: a grant for a line cannot write the SOA",
            ),
            (
                "names = [\"a..b\"]\n",
                "/etc/geoline.toml:6: name pattern `a..b`:",
            ),
            (
                "max_records = 0\n",
                "/etc/geoline.toml:6: max_records 0 is outside 1..=10000",
            ),
        ];
        for (extra, wanted) in cases {
            let e = parse(&format!("{base}{extra}")).expect_err(extra);
            assert!(e.starts_with(wanted), "{extra}: {e}");
        }
        let e = parse("[update]\n[[update.grant]]\nkey = \"acme\"\nzones = []\n")
            .expect_err("no zones");
        assert!(e.contains("a grant needs `zones`"), "{e}");
        let config = parse(&format!("{base}line = \"china\"\n")).expect("valid");
        assert_eq!(config.journal_dir, Some(PathBuf::from("/etc/j")));
        assert_eq!(config.grants[0].line, lines_china());
    }

    fn lines_china() -> Option<crate::lines::LineId> {
        LineSet::new(["china"]).expect("lines").id("china")
    }
}
