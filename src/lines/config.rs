//! The `[[line]]` sections: the declared lines, in match order, and what each matches.
//!
//! This module owns the sections' format and checks: line names, country, continent and
//! subdivision codes, ASNs, prefixes and CIDR list files, and the bound on how many lines
//! can be declared (a [`LineId`] is one byte and `default` takes the id after the last
//! declared line). It does not compile the rules: that is [`super::LineRule::from_config`]
//! and [`super::LineMap::compile`].

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::iso3166;
use super::{DEFAULT_LINE, LineSet};
use crate::diag::{ConfigError, Location, Source};
use crate::geoip::Subdivision;

/// One declared line, checked.
#[derive(Debug, Clone)]
pub struct LineConfig {
    /// Unique among the lines, and never `default` (that line is implicit).
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub countries: Vec<String>,
    /// Two-letter continent codes as GeoIP2 writes them (AF AN AS EU NA OC SA).
    pub continents: Vec<String>,
    /// ISO 3166-2 codes, upper case (`CN-GD`); they need a City database.
    pub subdivisions: Vec<String>,
    /// Autonomous system numbers; they need an ASN database.
    pub asns: Vec<u32>,
    /// Inline prefixes and the contents of `cidr_files`, in that order.
    pub cidrs: Vec<IpNet>,
}

impl LineConfig {
    /// Whether the line matches on a database field (and so needs a `[[geoip]]` database).
    pub(crate) fn needs_database(&self) -> bool {
        !self.countries.is_empty()
            || !self.continents.is_empty()
            || !self.subdivisions.is_empty()
            || !self.asns.is_empty()
    }
}

/// The continent codes a line may list (the GeoIP databases' codes; no others exist).
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// `[[line]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLine {
    name: Spanned<String>,
    #[serde(default)]
    countries: Vec<Spanned<String>>,
    #[serde(default)]
    continents: Vec<Spanned<String>>,
    #[serde(default)]
    subdivisions: Vec<Spanned<String>>,
    #[serde(default)]
    asns: Vec<Spanned<u32>>,
    #[serde(default)]
    cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    cidr_files: Vec<Spanned<PathBuf>>,
}

/// Checks the `[[line]]` sections, in order; the [`LineSet`] numbers them, `default` last.
pub(crate) fn check(
    raw: Vec<RawLine>,
    src: &Source<'_>,
) -> Result<(Vec<LineConfig>, LineSet), ConfigError> {
    let mut set = LineSet::default_only();
    let mut lines: Vec<LineConfig> = Vec::with_capacity(raw.len());
    for line in raw {
        let name = line.name.get_ref();
        if !valid_line_name(name) {
            return Err(src.invalid(
                line.name.span(),
                format!("line name `{name}` must be 1 to 32 characters of a-z, 0-9, `-` and `_`"),
            ));
        }
        if name == DEFAULT_LINE {
            return Err(src.invalid(
                line.name.span(),
                "line `default` is implicit: it is every client no declared line matches".into(),
            ));
        }
        if lines.iter().any(|l| &l.name == name) {
            return Err(src.invalid(line.name.span(), format!("line `{name}` is declared twice")));
        }
        if set.declare(name.clone()).is_none() {
            return Err(src.invalid(
                line.name.span(),
                format!(
                    "line `{name}` is one too many: at most {} lines can be declared",
                    LineSet::MAX_DECLARED
                ),
            ));
        }
        lines.push(check_one(&line, src)?);
    }
    Ok((lines, set))
}

/// Checks one line's conditions; its name is already checked.
fn check_one(line: &RawLine, src: &Source<'_>) -> Result<LineConfig, ConfigError> {
    let name = line.name.get_ref();
    let mut countries = Vec::with_capacity(line.countries.len());
    for c in &line.countries {
        let code = c.get_ref();
        if !iso3166::is_country(code) {
            return Err(src.invalid(
                c.span(),
                format!(
                    "line `{name}`: country `{code}` is not an ISO 3166-1 alpha-2 code{}",
                    did_you_mean(iso3166::suggest(code))
                ),
            ));
        }
        countries.push(code.clone());
    }
    let mut continents = Vec::with_capacity(line.continents.len());
    for c in &line.continents {
        let code = c.get_ref();
        if !CONTINENTS.contains(&code.as_str()) {
            return Err(src.invalid(
                c.span(),
                format!(
                    "line `{name}`: continent `{code}` is not one of {}",
                    CONTINENTS.join(" ")
                ),
            ));
        }
        continents.push(code.clone());
    }
    let mut subdivisions = Vec::with_capacity(line.subdivisions.len());
    for c in &line.subdivisions {
        let text = c.get_ref();
        match Subdivision::parse(text) {
            Some(s) if s.as_str() == text => {
                // `CN-GD`: the part before the dash is an ISO 3166-1 code.
                let country = text.split('-').next().unwrap_or_default();
                if !iso3166::is_country(country) {
                    let meant =
                        iso3166::suggest(country).map(|c| format!("{c}{}", &text[country.len()..]));
                    return Err(src.invalid(
                        c.span(),
                        format!(
                            "line `{name}`: subdivision `{text}`: `{country}` is not an ISO 3166-1 country code{}",
                            did_you_mean(meant.as_deref())
                        ),
                    ));
                }
                subdivisions.push(text.clone())
            }
            _ => {
                return Err(src.invalid(
                    c.span(),
                    format!(
                        "line `{name}`: subdivision `{text}` is not an ISO 3166-2 code such as CN-GD (upper case)"
                    ),
                ));
            }
        }
    }
    let mut asns = Vec::with_capacity(line.asns.len());
    for a in &line.asns {
        let n = *a.get_ref();
        if n == 0 {
            return Err(src.invalid(
                a.span(),
                format!("line `{name}`: AS0 is reserved and never announces a network"),
            ));
        }
        asns.push(n);
    }
    let mut cidrs = Vec::new();
    for c in &line.cidrs {
        let net: IpNet = c.get_ref().parse().map_err(|_| {
            src.invalid(
                c.span(),
                format!(
                    "line `{name}`: `{}` is not a CIDR prefix such as 1.2.4.0/22",
                    c.get_ref()
                ),
            )
        })?;
        if let Some(reason) = host_bits(&net) {
            return Err(src.invalid(c.span(), format!("line `{name}`: {reason}")));
        }
        cidrs.push(net);
    }
    for f in &line.cidr_files {
        cidrs.extend(read_cidr_file(&src.resolve(f.get_ref()))?);
    }
    let config = LineConfig {
        name: name.clone(),
        countries,
        continents,
        subdivisions,
        asns,
        cidrs,
    };
    if !config.needs_database() && config.cidrs.is_empty() {
        return Err(src.invalid(
            line.name.span(),
            format!("line `{name}` matches nothing: give countries, continents, subdivisions, asns, cidrs or cidr_files"),
        ));
    }
    Ok(config)
}

/// `: did you mean `GB`?` when there is a code to suggest.
fn did_you_mean(code: Option<&str>) -> String {
    code.map(|c| format!(": did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Why `net` is refused when its address has bits set past the prefix (`1.2.3.4/16`): a
/// typo either in the address or in the length, so it names both readings, as BIND refuses
/// it rather than guess.
fn host_bits(net: &IpNet) -> Option<String> {
    let network = net.trunc();
    if network == *net {
        return None;
    }
    let host = IpNet::from(net.addr());
    Some(format!(
        "`{net}` has host bits set: the network is {network} (or, for the one address, {host})"
    ))
}

/// The declared lines' names for a message, `none` when there are none.
pub(crate) fn declared_names(lines: &[LineConfig]) -> String {
    if lines.is_empty() {
        return "none".into();
    }
    lines
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn valid_line_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Reads a CIDR list: one prefix per line, `#` starts a comment, blank lines ignored.
pub(crate) fn read_cidr_file(path: &Path) -> Result<Vec<IpNet>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut nets = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let entry = raw.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let net: IpNet = entry.parse().map_err(|_| ConfigError::Invalid {
            at: Location {
                path: path.to_path_buf(),
                line: Some(i + 1),
            },
            reason: format!("`{entry}` is not a CIDR prefix such as 1.2.4.0/22"),
        })?;
        if let Some(reason) = host_bits(&net) {
            return Err(ConfigError::Invalid {
                at: Location {
                    path: path.to_path_buf(),
                    line: Some(i + 1),
                },
                reason,
            });
        }
        nets.push(net);
    }
    Ok(nets)
}
