//! The classifier: the compiled map with the rules and databases it came from.
//!
//! This module owns [`Classifier`] (what the hot path classifies with; also what reloads
//! recompile and what `geoline lookup` explains with [`Classifier::explain`]). The
//! swappable snapshot queries read is [`crate::live::Live`]'s.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::config::LineConfig;
use super::{Classification, LineMap, LineRule, LineSet};
use crate::geoip::{Contents, FieldSet, GeoDb, GeoIpError, GeoRecord, Subdivision};

/// What the hot path needs to classify a client: the compiled map, and the rules and
/// databases it was compiled from (kept for explanations, summaries and recompiling).
///
/// Built from the configuration ([`Classifier::from_config`]) or by a database reload
/// ([`Classifier::with_databases`]), it keeps each database's [`GeoDb::summary`] only: the
/// map is all the server reads, and a few megabytes of database contents per file would
/// double its memory. Explaining an address or compiling again reads the files again.
pub struct Classifier {
    lines: LineSet,
    rules: Vec<LineRule>,
    dbs: Vec<Arc<GeoDb>>,
    map: LineMap,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("lines", &self.lines)
            .field("databases", &self.dbs)
            .field("map", &self.map)
            .finish()
    }
}

/// Why an address is in its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Rule `rule` (an index into [`Classifier::rules`]) lists a prefix containing the address.
    Cidr {
        /// Index into [`Classifier::rules`].
        rule: usize,
        /// The listed prefix containing the address (not the address's ECS scope).
        cidr: IpNet,
    },
    /// Rule `rule` lists the address's country.
    Country {
        /// Index into [`Classifier::rules`].
        rule: usize,
        /// ISO 3166-1 alpha-2 code, as the databases gave it.
        country: [u8; 2],
    },
    /// Rule `rule` lists the address's continent.
    Continent {
        /// Index into [`Classifier::rules`].
        rule: usize,
        /// Continent code, one of [`CONTINENTS`](super::config::CONTINENTS).
        continent: [u8; 2],
    },
    /// Rule `rule` lists one of the address's subdivisions.
    Subdivision {
        /// Index into [`Classifier::rules`].
        rule: usize,
        /// The first of the address's subdivisions that the rule lists.
        subdivision: Subdivision,
    },
    /// Rule `rule` lists the address's autonomous system.
    Asn {
        /// Index into [`Classifier::rules`].
        rule: usize,
        /// The autonomous system number, as the databases gave it.
        asn: u32,
    },
    /// No rule matches.
    Default,
}

/// [`Classifier::explain`]'s answer, for `geoline lookup` and the admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// What [`Classifier::classify`] answers for the address (the line map, not the rules).
    pub classification: Classification,
    /// Which rule put the address in its line, from the rules evaluated directly.
    pub decision: Decision,
    /// Each database's network and record for the address, in configuration order.
    pub records: Vec<Option<(IpNet, GeoRecord)>>,
    /// The fields the rules saw: each from the first database that has it.
    pub record: GeoRecord,
}

impl Classifier {
    /// Compiles `rules` over `dbs` into a classifier for the lines of `lines`. A rule on a
    /// field that no database has a value for is an error: it would silently match nobody.
    pub fn new(
        lines: LineSet,
        rules: Vec<LineRule>,
        dbs: Vec<Arc<GeoDb>>,
    ) -> Result<Classifier, GeoIpError> {
        let provided = dbs
            .iter()
            .fold(FieldSet::default(), |s, db| s.union(db.provides()));
        for rule in &rules {
            if let Some(field) = rule.needs().iter().find(|f| !provided.contains(*f)) {
                return Err(GeoIpError::MissingField {
                    line: lines.name(rule.line).to_string(),
                    field,
                    databases: dbs
                        .iter()
                        .map(|db| {
                            format!(
                                "{}: {} with {}",
                                db.path().display(),
                                db.record_reader(),
                                db.provides()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
        }
        // A summary's file as it is now: compiling again (a reload of another database)
        // takes in whatever the file holds, and the classifier then describes that.
        let contents = dbs
            .iter()
            .map(|db| db.current_contents())
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&GeoDb> = contents.iter().map(|db| &**db).collect();
        let map = LineMap::compile(&rules, lines.default_line(), &refs)?;
        // The walk read each file a page at a time: one rewritten in place meanwhile may
        // have given pages of two files.
        for db in &refs {
            db.verify_unchanged()?;
        }
        let dbs = dbs
            .iter()
            .zip(&contents)
            .map(|(db, contents)| match contents {
                Contents::Held(_) => Arc::clone(db),
                Contents::Read(read) => Arc::new(read.summary()),
            })
            .collect();
        Ok(Classifier {
            lines,
            rules,
            dbs,
            map,
        })
    }

    /// The configuration's lines (`lines`, numbering `declared`) over databases already
    /// opened from its `[[geoip]]` sections, in the same order.
    pub fn from_config(
        lines: &LineSet,
        declared: &[LineConfig],
        dbs: Vec<Arc<GeoDb>>,
    ) -> Result<Classifier, GeoIpError> {
        let rules = LineRule::from_config(declared, lines);
        Classifier::new(lines.clone(), rules, dbs).map(Classifier::summarised)
    }

    /// The same lines and rules over other databases: what a database reload builds. The
    /// databases given may be summaries (those not reloaded): their files are read again.
    pub fn with_databases(&self, dbs: Vec<Arc<GeoDb>>) -> Result<Classifier, GeoIpError> {
        Classifier::new(self.lines.clone(), self.rules.clone(), dbs).map(Classifier::summarised)
    }

    /// This classifier keeping only its databases' summaries.
    fn summarised(self) -> Classifier {
        let dbs = self
            .dbs
            .iter()
            .map(|db| match db.holds_contents() {
                true => Arc::new(db.summary()),
                false => Arc::clone(db),
            })
            .collect();
        Classifier { dbs, ..self }
    }

    /// The address's line and ECS scope: one lookup in the prebuilt map, the hot path.
    pub fn classify(&self, addr: IpAddr) -> Classification {
        self.map.classify(addr)
    }

    /// The declared lines and `default`, which the [`LineId`](super::LineId)s this answers index.
    pub fn lines(&self) -> &LineSet {
        &self.lines
    }

    /// One rule per declared line, in match order (`default` has none).
    pub fn rules(&self) -> &[LineRule] {
        &self.rules
    }

    /// The GeoIP databases, in configuration order: earlier ones win a field both have.
    pub fn databases(&self) -> &[Arc<GeoDb>] {
        &self.dbs
    }

    /// The map built from the rules and databases, which [`Classifier::classify`] reads.
    pub fn map(&self) -> &LineMap {
        &self.map
    }

    /// Classifies `addr` and says why, by evaluating the rules on it directly (not the
    /// hot path: it looks the address up in every database).
    pub fn explain(&self, addr: IpAddr) -> Result<Explanation, GeoIpError> {
        let records = self
            .dbs
            .iter()
            .map(|db| db.lookup(addr))
            .collect::<Result<Vec<_>, _>>()?;
        let mut record = GeoRecord::default();
        for (_, r) in records.iter().flatten() {
            record.fill_from(r);
        }
        let decision = self
            .rules
            .iter()
            .enumerate()
            .find_map(|(rule, r)| {
                if let Some(cidr) = r.cidr_containing(addr) {
                    return Some(Decision::Cidr { rule, cidr });
                }
                if let Some(country) = record.country.filter(|c| r.countries.contains(c)) {
                    return Some(Decision::Country { rule, country });
                }
                if let Some(continent) = record.continent.filter(|c| r.continents.contains(c)) {
                    return Some(Decision::Continent { rule, continent });
                }
                if let Some(subdivision) =
                    record.subdivisions().find(|s| r.subdivisions.contains(s))
                {
                    return Some(Decision::Subdivision { rule, subdivision });
                }
                record
                    .asn
                    .filter(|a| r.asns.contains(a))
                    .map(|asn| Decision::Asn { rule, asn })
            })
            .unwrap_or(Decision::Default);
        Ok(Explanation {
            classification: self.classify(addr),
            decision,
            records,
            record,
        })
    }
}
