//! Who may change what: the grants of `[[update.grant]]`, matched against the key that
//! signed an update, its zone, and each name and type it writes (like BIND's
//! `update-policy` and Knot's ACLs).
//!
//! A zone has no writers until a grant names it. A grant gives one key: zones; names,
//! as patterns relative to each zone (`@` the apex, `*` any number of labels, none
//! included: `_acme-challenge.*` is every ACME challenge name of the zone, `*.dyn` the
//! name `dyn` and everything below it); types; at most so many records of those types at
//! one name; and the layer written: the base data every line sees, or one line's overlay.
//!
//! This module owns the matching. It does not verify keys (TSIG does) nor apply anything.

use hickory_proto::rr::{Name, RecordType};

use crate::lines::LineId;
use crate::zone::Layer;

/// One `[[update.grant]]`.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The key's name, lower case, fully qualified.
    pub(crate) key: Name,
    /// The zones' origins, lower case.
    pub(crate) zones: Vec<Name>,
    pub(crate) names: Vec<NamePattern>,
    pub(crate) types: Types,
    /// At most this many records of the grant's types at one name after an update.
    pub(crate) max_records: Option<usize>,
    /// The line whose overlay the grant writes; `None`: the base data.
    pub(crate) line: Option<LineId>,
}

/// The types a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Types {
    /// Every type but the SOA, NS and DNSSEC records (BIND's default).
    Default,
    /// These.
    Only(Vec<RecordType>),
}

impl Types {
    /// Whether `rtype` is covered.
    pub(crate) fn covers(&self, rtype: RecordType) -> bool {
        match self {
            Types::Only(list) => list.contains(&rtype),
            Types::Default => !matches!(
                rtype,
                RecordType::SOA
                    | RecordType::NS
                    | RecordType::RRSIG
                    | RecordType::NSEC
                    | RecordType::NSEC3
                    | RecordType::NSEC3PARAM
                    | RecordType::DNSKEY
                    | RecordType::CDS
                    | RecordType::CDNSKEY
            ),
        }
    }
}

/// A name pattern, relative to a zone's origin unless written with a final dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamePattern {
    /// Lower-case labels, the leftmost first; `None` is `*`, any number of labels.
    labels: Vec<Option<Vec<u8>>>,
    absolute: bool,
}

impl NamePattern {
    /// `*`: every name of the zone.
    pub(crate) fn everything() -> NamePattern {
        NamePattern {
            labels: vec![None],
            absolute: false,
        }
    }

    /// Reads a pattern: `@`, labels separated by dots, `*` labels; a final dot makes it
    /// absolute.
    pub(crate) fn parse(text: &str) -> Result<NamePattern, String> {
        if text == "@" {
            return Ok(NamePattern {
                labels: Vec::new(),
                absolute: false,
            });
        }
        let absolute = text.ends_with('.');
        let body = text.strip_suffix('.').unwrap_or(text);
        if body.is_empty() {
            return Err("empty (write `@` for the zone's apex)".into());
        }
        let mut labels = Vec::new();
        for label in body.split('.') {
            if label.is_empty() {
                return Err("an empty label".into());
            }
            if label.len() > 63 {
                return Err(format!("label `{label}` is longer than 63 bytes"));
            }
            if label == "*" {
                labels.push(None);
            } else if label.contains('*') {
                return Err(format!(
                    "`*` stands for whole labels only, not part of `{label}`"
                ));
            } else if !label.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("label `{label}` has spaces or non-ASCII bytes"));
            } else {
                labels.push(Some(label.to_ascii_lowercase().into_bytes()));
            }
        }
        Ok(NamePattern { labels, absolute })
    }

    /// Whether `name` in zone `zone` matches.
    pub(crate) fn matches(&self, zone: &Name, name: &Name) -> bool {
        if !zone.zone_of(name) {
            return false;
        }
        let name: Vec<Vec<u8>> = name.iter().map(|l| l.to_ascii_lowercase()).collect();
        let mut pattern = self.labels.clone();
        if !self.absolute {
            pattern.extend(zone.iter().map(|l| Some(l.to_ascii_lowercase())));
        }
        glob(&pattern, &name)
    }
}

/// Whether `name`'s labels match `pattern`'s, a `None` matching any number of labels.
fn glob(pattern: &[Option<Vec<u8>>], name: &[Vec<u8>]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((None, rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((Some(label), rest)) => match name.split_first() {
            Some((first, tail)) => first == label && glob(rest, tail),
            None => false,
        },
    }
}

impl Grant {
    /// The layer the grant writes.
    pub(crate) fn layer(&self) -> Layer {
        self.line.map_or(Layer::Base, Layer::Overlay)
    }

    /// Whether the grant is `key`'s for zone `zone`.
    pub(crate) fn applies(&self, key: &Name, zone: &Name) -> bool {
        self.key == *key && self.zones.iter().any(|z| z == zone)
    }

    /// Whether it covers `name` in zone `zone`.
    pub(crate) fn covers_name(&self, zone: &Name, name: &Name) -> bool {
        self.names.iter().any(|p| p.matches(zone, name))
    }

    /// Whether it covers writing `rtype` (`None`: some type, as a deletion of every RRset
    /// of a name asks, which then removes only the covered types) at `name`.
    pub(crate) fn covers(&self, zone: &Name, name: &Name, rtype: Option<RecordType>) -> bool {
        self.covers_name(zone, name) && rtype.is_none_or(|t| self.types.covers(t))
    }
}

/// Every grant, in configuration order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    grants: Vec<Grant>,
}

impl Policy {
    pub(crate) fn new(grants: Vec<Grant>) -> Policy {
        Policy { grants }
    }

    /// The grants of `key` for `zone`.
    pub(crate) fn grants<'a>(
        &'a self,
        key: &'a Name,
        zone: &'a Name,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants.iter().filter(move |g| g.applies(key, zone))
    }

    /// Whether some key may update `zone`.
    pub(crate) fn has_writers(&self, zone: &Name) -> bool {
        self.grants
            .iter()
            .any(|g| g.zones.iter().any(|z| z == zone))
    }

    /// Every grant.
    pub(crate) fn all(&self) -> &[Grant] {
        &self.grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn matches(pattern: &str, zone: &str, n: &str) -> bool {
        NamePattern::parse(pattern)
            .expect("pattern")
            .matches(&name(zone), &name(n))
    }

    #[test]
    fn exact_names_relative_and_absolute() {
        assert!(matches("www", "example.com.", "WWW.example.com."));
        assert!(!matches("www", "example.com.", "a.www.example.com."));
        assert!(matches("@", "example.com.", "example.com."));
        assert!(!matches("@", "example.com.", "www.example.com."));
        assert!(matches(
            "www.example.com.",
            "example.com.",
            "www.example.com."
        ));
        assert!(!matches(
            "www.example.org.",
            "example.com.",
            "www.example.org."
        ));
    }

    #[test]
    fn star_is_any_number_of_labels() {
        let acme = "_acme-challenge.*";
        assert!(matches(
            acme,
            "example.com.",
            "_acme-challenge.example.com."
        ));
        assert!(matches(
            acme,
            "example.com.",
            "_ACME-challenge.www.example.com."
        ));
        assert!(matches(
            acme,
            "example.com.",
            "_acme-challenge.a.b.example.com."
        ));
        assert!(!matches(acme, "example.com.", "www.example.com."));
        assert!(!matches(
            acme,
            "example.com.",
            "x._acme-challenge.example.com."
        ));
        // A subtree.
        assert!(matches("*.dyn", "example.com.", "dyn.example.com."));
        assert!(matches("*.dyn", "example.com.", "a.b.dyn.example.com."));
        assert!(!matches("*.dyn", "example.com.", "dyn2.example.com."));
        assert!(matches("*", "example.com.", "example.com."));
        assert!(!matches("*", "example.com.", "example.org."));
    }

    #[test]
    fn bad_patterns() {
        for bad in ["", ".", "a..b", "a*b.c", "a b"] {
            assert!(NamePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_cover_names_and_types() {
        let grant = Grant {
            key: name("acme."),
            zones: vec![name("example.com.")],
            names: vec![NamePattern::parse("_acme-challenge.*").expect("pattern")],
            types: Types::Only(vec![RecordType::TXT]),
            max_records: Some(2),
            line: None,
        };
        let zone = name("example.com.");
        let challenge = name("_acme-challenge.example.com.");
        assert!(grant.applies(&name("acme."), &zone));
        assert!(!grant.applies(&name("other."), &zone));
        assert!(!grant.applies(&name("acme."), &name("example.org.")));
        assert!(grant.covers(&zone, &challenge, Some(RecordType::TXT)));
        assert!(grant.covers(&zone, &challenge, None));
        assert!(!grant.covers(&zone, &challenge, Some(RecordType::A)));
        assert!(!grant.covers(&zone, &name("www.example.com."), Some(RecordType::TXT)));
        assert_eq!(grant.layer(), Layer::Base);
    }
}
