//! The digest of the line definitions: what a primary and its secondaries compare to learn
//! whether they classify clients alike.
//!
//! A zone transfer carries each line's data, not the rules that pick a client's line: a
//! secondary classifies with its own `[[line]]`s and databases. Two servers whose lines
//! differ (another order, a country more on one side) answer the same client differently,
//! and nothing else would show it. So both hash a canonical text of the definitions —
//! the line names in match order, and each line's conditions — and compare the hashes.
//!
//! The canonical text, one item per line (`\n`-terminated, ASCII):
//!
//! ```text
//! geoline-lines 1
//! line china
//! countries CN
//! continents
//! subdivisions CN-GD
//! asns 4134 4837
//! cidrs 1.2.4.0/22 240e::/20
//! line default
//! ```
//!
//! Within a line, each list is sorted and without repeats (a line matches when any of its
//! conditions does, so their order means nothing); prefixes are written truncated to their
//! length, as the classifier reads them, and CIDR files contribute their prefixes, not their
//! paths. The order of the lines is kept: the first line that matches wins. `default` ends
//! the list with no conditions. The GeoIP databases are left out on purpose: they are data
//! that `geoipupdate` replaces on each host on its own schedule, so two hosts with the same
//! definitions hold different builds for hours every week, and the status already shows
//! each database's build; the digest says whether the *definitions* agree.
//!
//! This module owns the canonical form and its hash. It does not send or compare them
//! ([`crate::xfr::chaos`], [`crate::xfr::secondary`]).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::{LineRule, LineSet};

/// The version tag opening the canonical text: a change of the form changes it.
const FORM: &str = "geoline-lines 1";

/// The canonical text of `lines` with their `rules` (one per declared line).
pub(crate) fn canonical(lines: &LineSet, rules: &[LineRule]) -> String {
    let mut out = String::with_capacity(64 + rules.len() * 64);
    out.push_str(FORM);
    out.push('\n');
    for line in lines.ids() {
        let _ = writeln!(out, "line {}", lines.name(line));
        let Some(rule) = rules.iter().find(|r| r.line == line) else {
            continue;
        };
        let codes = |codes: &[[u8; 2]]| -> Vec<String> {
            codes
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect()
        };
        item(&mut out, "countries", codes(&rule.countries));
        item(&mut out, "continents", codes(&rule.continents));
        item(
            &mut out,
            "subdivisions",
            rule.subdivisions
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
        );
        let mut asns = rule.asns.clone();
        asns.sort_unstable();
        asns.dedup();
        item(&mut out, "asns", asns.iter().map(u32::to_string).collect());
        let mut cidrs = rule.cidrs.clone();
        cidrs.sort_unstable();
        cidrs.dedup();
        item(
            &mut out,
            "cidrs",
            cidrs.iter().map(ToString::to_string).collect(),
        );
    }
    out
}

/// `name` and the sorted, deduplicated `values` on one line.
fn item(out: &mut String, name: &str, mut values: Vec<String>) {
    values.sort_unstable();
    values.dedup();
    out.push_str(name);
    for value in values {
        out.push(' ');
        out.push_str(&value);
    }
    out.push('\n');
}

/// The digest of `lines` and `rules`: `sha256:` and the lower-case hex SHA-256 of
/// [`canonical`].
pub(crate) fn digest(lines: &LineSet, rules: &[LineRule]) -> String {
    let hash = Sha256::digest(canonical(lines, rules).as_bytes());
    format!("sha256:{}", data_encoding::HEXLOWER.encode(&hash))
}

#[cfg(test)]
mod tests {
    use ipnet::IpNet;

    use super::*;
    use crate::geoip::Subdivision;

    fn rule(lines: &LineSet, name: &str, countries: &[&str], cidrs: &[&str]) -> LineRule {
        LineRule {
            line: lines.id(name).expect("line"),
            countries: countries
                .iter()
                .map(|c| [c.as_bytes()[0], c.as_bytes()[1]])
                .collect(),
            continents: Vec::new(),
            subdivisions: Vec::new(),
            asns: Vec::new(),
            cidrs: cidrs
                .iter()
                .map(|c| c.parse::<IpNet>().expect("prefix"))
                .collect(),
        }
    }

    #[test]
    fn the_canonical_text_lists_lines_in_order_with_sorted_conditions() {
        let lines = LineSet::new(["china", "edu"]).expect("lines");
        let mut china = rule(
            &lines,
            "china",
            &["MO", "CN", "CN"],
            &["240e::/20", "1.2.4.0/22"],
        );
        china.asns = vec![4837, 4134];
        china.subdivisions = vec![Subdivision::parse("CN-GD").expect("subdivision")];
        let edu = rule(&lines, "edu", &[], &["10.0.0.0/8"]);
        assert_eq!(
            canonical(&lines, &[china, edu]),
            "geoline-lines 1\n\
             line china\ncountries CN MO\ncontinents\nsubdivisions CN-GD\nasns 4134 4837\ncidrs 1.2.4.0/22 240e::/20\n\
             line edu\ncountries\ncontinents\nsubdivisions\nasns\ncidrs 10.0.0.0/8\n\
             line default\n"
        );
    }

    #[test]
    fn the_digest_follows_order_and_conditions_not_their_spelling() {
        let lines = LineSet::new(["china", "edu"]).expect("lines");
        let base = digest(
            &lines,
            &[
                rule(&lines, "china", &["CN", "MO"], &[]),
                rule(&lines, "edu", &[], &["10.0.0.0/8"]),
            ],
        );
        assert!(
            base.starts_with("sha256:") && base.len() == 7 + 64,
            "{base}"
        );
        // The same conditions in another order: the same digest.
        let reordered = digest(
            &lines,
            &[
                rule(&lines, "china", &["MO", "CN"], &[]),
                rule(&lines, "edu", &[], &["10.0.0.0/8"]),
            ],
        );
        assert_eq!(reordered, base);
        // A country more, or the lines in the other match order: another digest.
        let more = digest(
            &lines,
            &[
                rule(&lines, "china", &["CN", "MO", "HK"], &[]),
                rule(&lines, "edu", &[], &["10.0.0.0/8"]),
            ],
        );
        assert_ne!(more, base);
        let swapped = LineSet::new(["edu", "china"]).expect("lines");
        let other_order = digest(
            &swapped,
            &[
                rule(&swapped, "edu", &[], &["10.0.0.0/8"]),
                rule(&swapped, "china", &["CN", "MO"], &[]),
            ],
        );
        assert_ne!(other_order, base);
    }
}
