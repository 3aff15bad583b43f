//! Zones: RFC 1035 zone files, per-line overlays, and the authoritative lookup.
//!
//! This module owns the zone data and what it answers. A zone has one base file (the
//! `default` line's data) and, per line, an optional overlay file holding only what differs
//! for that line (DESIGN.md, "Zones and overlays"). Loading parses and validates them and
//! gives every line a view; [`Zone::lookup`] is a pure function from (view, qname, qtype)
//! to the sections of an authoritative answer.
//!
//! It does not own the DNS wire format, EDNS, ECS, REFUSED for names outside every zone
//! or the choice of a client's line (those are [`crate::dns`] and [`crate::lines`]), nor
//! watching files for reloads: a reload builds a new [`ZoneSet`] and swaps it in.

pub(crate) mod config;
mod edit;
mod file;
mod history;
mod index;
mod labels;
mod lookup;
mod occluded;
mod packed;
mod rdata;
mod reader;
mod rrsets;
mod stream;
mod substitute;
mod transferred;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{Name, Record, RecordType};

use crate::diag::Location;
use crate::lines::{LineId, LineSet};
use config::ZoneConfig;
pub(crate) use edit::{Change, Layer};
use file::Source;
pub(crate) use history::{Dependence, History, Stamp};
pub(crate) use rdata::{generic_text, unencodable};
pub(crate) use transferred::LineCopy;
pub(crate) use tree::{Rrset, View};

/// Every configured zone, loaded and validated.
#[derive(Debug, Clone)]
pub struct ZoneSet {
    zones: Vec<Zone>,
    /// Which zones, in which order: the same number as long as the set has the same
    /// origins in the same order (a zone reloaded or updated keeps it), so that a cache
    /// may keep what it found for a name when only zones' data changed.
    layout: u64,
}

impl ZoneSet {
    /// Loads every zone of the config: base file + overlays, validated.
    pub fn load(zones: &[ZoneConfig], lines: &LineSet) -> Result<ZoneSet, ZoneError> {
        let mut set = ZoneSet {
            zones: Vec::with_capacity(zones.len()),
            layout: history::unique_id(),
        };
        for config in zones {
            let zone = Zone::load(config, lines)?;
            if let Some(other) = set.same_origin(&zone, None).and_then(|i| zones.get(i)) {
                return Err(declared_twice(
                    &zone,
                    config,
                    &other.file,
                    other.declared_at.as_ref(),
                ));
            }
            set.zones.push(zone);
        }
        Ok(set)
    }

    /// This set with zone `index` loaded again from `config`, the others kept as they are:
    /// what reloading one changed zone file builds.
    pub fn with_zone_reloaded(
        &self,
        index: usize,
        config: &ZoneConfig,
        lines: &LineSet,
    ) -> Result<ZoneSet, ZoneError> {
        // A secondary zone's data comes from its primaries, not from files: it stays.
        if config.secondary.is_some()
            && let Some(current) = self.zones.get(index)
            && config.origin.as_deref() == Some(current.origin.to_string().as_str())
        {
            return Ok(self.clone());
        }
        let zone = Zone::load(config, lines)?;
        if let Some(other) = self
            .same_origin(&zone, Some(index))
            .and_then(|i| self.zones.get(i))
        {
            return Err(declared_twice(&zone, config, &other.file, None));
        }
        let mut zones = self.zones.clone();
        match zones.get_mut(index) {
            Some(slot) => *slot = zone,
            None => zones.push(zone),
        }
        Ok(self.with_zones(zones))
    }

    /// A set of `zones`, keeping this one's layout when they have the same origins.
    pub(crate) fn with_zones(&self, zones: Vec<Zone>) -> ZoneSet {
        let same = zones.len() == self.zones.len()
            && zones
                .iter()
                .zip(&self.zones)
                .all(|(a, b)| a.origin == b.origin);
        ZoneSet {
            zones,
            layout: if same {
                self.layout
            } else {
                history::unique_id()
            },
        }
    }

    /// Which zones the set has, in which order: see [`ZoneSet`]'s field.
    pub(crate) fn layout(&self) -> u64 {
        self.layout
    }

    /// The index of the zone of the set (other than the one at `replacing`) that has
    /// `zone`'s origin: a name would have two sets of data.
    fn same_origin(&self, zone: &Zone, replacing: Option<usize>) -> Option<usize> {
        self.zones
            .iter()
            .enumerate()
            .position(|(i, z)| Some(i) != replacing && z.origin == zone.origin)
    }

    /// The zone whose origin is the longest suffix of qname (case-insensitive), or None (→ REFUSED).
    pub fn find(&self, qname: &Name) -> Option<&Zone> {
        self.find_indexed(qname).map(|(_, zone)| zone)
    }

    /// Like [`ZoneSet::find`], with the zone's index in [`ZoneSet::zones`] (for metrics).
    pub fn find_indexed(&self, qname: &Name) -> Option<(usize, &Zone)> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.origin.zone_of(qname))
            .max_by_key(|(_, z)| tree::label_count(&z.origin))
    }

    /// The zone that answers (qname, qtype): [`ZoneSet::find_indexed`]'s, except that DS
    /// at a zone's apex is the parent side of the cut's data (RFC 4035 3.1.4.1), so the
    /// parent zone answers it when it is here too.
    pub fn find_answering(&self, qname: &Name, qtype: RecordType) -> Option<(usize, &Zone)> {
        let found = self.find_indexed(qname)?;
        if qtype != RecordType::DS || found.1.origin != *qname {
            return Some(found);
        }
        let parent = self
            .zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.origin != *qname && z.origin.zone_of(qname))
            .max_by_key(|(_, z)| tree::label_count(&z.origin));
        Some(parent.unwrap_or(found))
    }

    /// The zones, in configuration order.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The number of names in every zone's base data (a size hint, in constant time).
    pub fn name_count(&self) -> usize {
        self.zones.iter().map(|z| z.base.own_names()).sum()
    }
}

/// The error for `zone`, declared by `config`, whose origin the zone read from
/// `other_file` (declared at `other_at`) already serves: at the second declaration's line
/// when the configuration says, naming the first's.
fn declared_twice(
    zone: &Zone,
    config: &ZoneConfig,
    other_file: &Path,
    other_at: Option<&Location>,
) -> ZoneError {
    let first = match other_at {
        Some(at) => format!("by the [[zone]] at {at} (file {})", other_file.display()),
        None => format!("from {}", other_file.display()),
    };
    let (at, second) = match &config.declared_at {
        Some(at) => (at.clone(), format!(" (file {})", zone.file.display())),
        None => (Location::file(&zone.file), String::new()),
    };
    ZoneError::Invalid {
        at,
        reason: format!(
            "zone `{}`{second} is already loaded {first}: each zone is declared once",
            zone.origin
        ),
    }
}

/// One zone: its base view and the view of every line.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: Name,
    serial: u32,
    file: PathBuf,
    base: Arc<View>,
    /// Indexed by [`LineId`]; lines without an overlay share `base`.
    views: Vec<Arc<View>>,
    /// The views that differ from `base`, each once.
    overlays: Vec<Arc<View>>,
    /// Each overlay's own RRsets, by line: what its view is rebuilt from when a dynamic
    /// update changes the base or the overlay ([`edit`]).
    overlay_rrsets: Vec<(LineId, Arc<[tree::OwnedRrset]>)>,
    /// Which load of the files and which dynamic update since this is.
    history: History,
    /// False for a secondary zone without data or expired ([`transferred`]).
    serves: bool,
}

impl Zone {
    fn load(config: &ZoneConfig, lines: &LineSet) -> Result<Zone, ZoneError> {
        let origin = match &config.origin {
            Some(text) => {
                let mut name = Name::from_ascii(text).map_err(|e| ZoneError::Invalid {
                    at: Location::file(&config.file),
                    reason: format!("the configured origin `{text}` is not a domain name: {e}"),
                })?;
                name.set_fqdn(true);
                Some(name)
            }
            None => None,
        };
        if let (Some(secondary), Some(origin)) = (&config.secondary, &origin) {
            return Ok(Zone::load_stored(origin, secondary, lines));
        }
        let base = read(&config.file)?;
        let mut overlays = Vec::with_capacity(config.overlays.len());
        for (&line, path) in &config.overlays {
            overlays.push((line, path.as_path(), read(path)?));
        }
        Zone::build(
            origin.as_ref(),
            Source {
                path: &config.file,
                text: &base,
            },
            overlays
                .iter()
                .map(|(line, path, text)| (*line, Source { path, text }))
                .collect(),
            lines.len(),
        )
    }

    /// Builds a zone from text instead of files, as if the base file had been read from
    /// `path`: the base file's text and, optionally, an overlay's for the first of two lines.
    /// What the loader says of a file, without the file system (the `zone_file` fuzz target).
    pub fn from_text(path: &Path, base: &str, overlay: Option<&str>) -> Result<Zone, ZoneError> {
        const FIRST_LINE: LineId = LineId::new(0).expect("0 is a line id");
        let overlays = overlay
            .map(|text| (FIRST_LINE, Source { path, text }))
            .into_iter()
            .collect();
        Zone::build(None, Source { path, text: base }, overlays, 2)
    }

    /// Builds a zone from file contents; `lines` is the number of lines, `default` included.
    pub(crate) fn build(
        origin: Option<&Name>,
        base: Source<'_>,
        overlays: Vec<(LineId, Source<'_>)>,
        lines: usize,
    ) -> Result<Zone, ZoneError> {
        let file = base.path.to_path_buf();
        let (origin, base) = LineCopy::from_base(stream::load(base, origin)?);
        let (serial, base_view) = (base.serial(), base.view);
        let mut views = vec![base_view.clone(); lines.max(1)];
        let mut overlay_views = Vec::with_capacity(overlays.len());
        let mut overlay_rrsets = Vec::with_capacity(overlays.len());
        for (line, src) in overlays {
            let rrsets: Vec<tree::OwnedRrset> = match reader::load_overlay(src.text, &origin) {
                Ok(rrsets) => rrsets,
                Err(reader::Unread) => file::load_overlay(src, &origin)?
                    .iter()
                    .filter_map(|set| Some((set.first()?.name.clone(), packed::Packed::new(set)?)))
                    .collect(),
            };
            let view = Arc::new(View::with_overlay(&base_view, &rrsets));
            if let Some(slot) = views.get_mut(line.index()) {
                *slot = view.clone();
            }
            overlay_views.push(view);
            overlay_rrsets.push((line, rrsets.into()));
        }
        Ok(Zone {
            origin,
            serial,
            file,
            base: base_view,
            views,
            overlays: overlay_views,
            overlay_rrsets,
            history: History::loaded(),
            serves: true,
        })
    }

    /// The zone's apex, fully qualified.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA serial of the base file.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Which state of the zone this is: see [`History`].
    pub(crate) fn history(&self) -> &History {
        &self.history
    }

    /// The base file the zone was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// records per line, for `geoline check`'s summary: (line id, number of records in that line's view)
    pub fn record_counts(&self) -> Vec<(LineId, usize)> {
        // The base is counted once: the lines without an overlay share its view, and an
        // overlay's view differs from it only at the names it holds.
        let base = self.base.record_count();
        self.views
            .iter()
            .enumerate()
            .filter_map(|(i, view)| {
                let count = if Arc::ptr_eq(view, &self.base) {
                    base
                } else {
                    view.record_count_over(&self.base, base)
                };
                Some((LineId::new(i)?, count))
            })
            .collect()
    }

    /// True when some line has an overlay (otherwise every line sees the base data).
    pub fn has_overlays(&self) -> bool {
        !self.overlays.is_empty()
    }

    /// The authoritative answer for (qname, qtype) as `line` sees the zone. Pure: no I/O, no clock.
    ///
    /// `qname` must be at or below the origin ([`ZoneSet::find`] guarantees it); a name
    /// outside gets an empty, non-authoritative answer. An unknown line sees the base data.
    pub fn lookup(&self, line: LineId, qname: &Name, qtype: RecordType) -> Answer {
        let view = self.views.get(line.index()).unwrap_or(&self.base);
        lookup::lookup(view, qname, qtype)
    }

    /// True when the answer to (qname, qtype) is not the same for every line
    /// (compare the lookups across the distinct views; lines without an overlay share the base view).
    /// TTLs count: a line whose answer differs only in TTL varies.
    pub fn varies_by_line(&self, qname: &Name, qtype: RecordType) -> bool {
        if self.overlays.is_empty() {
            return false;
        }
        let base = lookup::lookup(&self.base, qname, qtype);
        self.overlays
            .iter()
            .any(|view| !lookup::same_answer(&lookup::lookup(view, qname, qtype), &base))
    }
}

/// A name that exists on some lines and not on others, as `geoline check` warns of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDependentName {
    /// The name, which an overlay gives data.
    pub name: Name,
    /// The lines on which it does not exist (NXDOMAIN), in line order.
    pub missing_on: Vec<LineId>,
}

impl Zone {
    /// Every name that exists on some lines but not on others: a name only an overlay
    /// holds, on the lines where no wildcard covers it and it is not below a delegation.
    /// The answers are right, but a resolver whose negative cache ignores the client subnet
    /// (PowerDNS Recursor 4.8) hands one line's NXDOMAIN to every line. In canonical name
    /// order (RFC 4034 6.1).
    pub fn line_dependent_names(&self) -> Vec<LineDependentName> {
        let mut names: Vec<&Name> = self
            .overlays
            .iter()
            .flat_map(|view| view.names())
            .filter(|(name, node)| node.first().is_some() && self.base.node(name).is_none())
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| LineDependentName {
                name: name.clone(),
                missing_on: self
                    .views
                    .iter()
                    .enumerate()
                    .filter(|(_, view)| {
                        view.node(name).is_none()
                            && view.wildcard(name).is_none()
                            && view.cut(name).is_none()
                    })
                    .filter_map(|(i, _)| LineId::new(i))
                    .collect(),
            })
            .filter(|n| !n.missing_on.is_empty())
            .collect()
    }
}

fn read(path: &Path) -> Result<String, ZoneError> {
    std::fs::read_to_string(path).map_err(|source| ZoneError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The response code of an answer from zone data; the DNS server's own errors (FORMERR,
/// REFUSED, ...) are decided before a zone is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerCode {
    /// The name exists (possibly without records of the type asked for), or the answer is a
    /// referral.
    NoError,
    /// The name (or the end of its CNAME chain) does not exist and no wildcard covers it.
    NxDomain,
    /// A DNAME would make a name longer than 255 bytes (RFC 6672 2.2).
    YxDomain,
}

/// The sections of an authoritative answer. Note that `==` compares records as hickory
/// does, without their TTLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// NOERROR, NXDOMAIN or YXDOMAIN.
    pub rcode: AnswerCode,
    /// false only for referrals
    pub authoritative: bool,
    /// The answer section: the records asked for, after any CNAME chain.
    pub answers: Vec<Record>,
    /// The authority section: the SOA of a negative answer, or the NS of a referral.
    pub authority: Vec<Record>,
    /// The additional section: the zone's addresses for the hosts that NS, MX or SRV
    /// records name (glue, for a referral).
    pub additional: Vec<Record>,
    /// The wildcard (`*.` and the closest encloser) the query name's own answer was
    /// synthesized from, if it was: every name it covers gets the same answer, so rate
    /// limiting counts them together.
    pub wildcard: Option<Name>,
}

/// Why a zone (its base file or an overlay) could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an RFC 1035 zone file (hickory's parser's reason).
    #[error("{at}: {reason}")]
    Syntax {
        /// The file, and the line of the entry when the parser says.
        at: Location,
        /// The parser's message.
        reason: String,
    },
    /// The file parses but breaks a rule of zones or overlays.
    #[error("{at}: {reason}")]
    Invalid {
        /// The file, and the line of the offending record when there is one.
        at: Location,
        /// The rule broken.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn china() -> LineId {
        LineId::new(0).expect("a line id")
    }

    fn lines() -> LineSet {
        LineSet::new(["china"]).expect("one line")
    }

    fn example_config() -> ZoneConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        ZoneConfig {
            origin: None,
            file: dir.join("example.com.zone"),
            overlays: BTreeMap::from([(china(), dir.join("example.com.china.zone"))]),
            declared_at: None,
            transfer: None,
            secondary: None,
        }
    }

    fn addresses(answer: &Answer) -> Vec<(String, u32, String)> {
        answer
            .answers
            .iter()
            .map(|r| (r.name.to_string(), r.ttl, r.data.to_string()))
            .collect()
    }

    #[test]
    fn repository_example_zone_loads_with_its_overlay() {
        let set = ZoneSet::load(&[example_config()], &lines()).expect("loads");
        let zone = set.find(&name("WWW.Example.COM.")).expect("found");
        assert_eq!(zone.origin(), &name("example.com."));
        assert_eq!(zone.serial(), 2026112201);
        assert!(zone.has_overlays());
        let china = LineId::new(0).expect("a line id");
        let default = LineId::new(1).expect("a line id");
        let counts = zone.record_counts();
        assert_eq!(counts[1], (default, 18));
        // www A and AAAA, api and *.apps replaced; cdn added.
        assert_eq!(counts[0], (china, 19));

        let www = name("www.example.com.");
        let a = zone.lookup(default, &www, RecordType::A);
        assert_eq!(
            addresses(&a),
            vec![("www.example.com.".into(), 300, "192.0.2.10".into())]
        );
        let a = zone.lookup(china, &www, RecordType::A);
        assert_eq!(
            addresses(&a),
            vec![("www.example.com.".into(), 60, "203.0.113.10".into())]
        );
        assert!(zone.varies_by_line(&www, RecordType::A));
        assert!(zone.varies_by_line(&name("cdn.example.com."), RecordType::A));
        assert!(zone.varies_by_line(&name("x.apps.example.com."), RecordType::A));
        assert!(!zone.varies_by_line(&name("example.com."), RecordType::MX));
        assert!(!zone.varies_by_line(&name("mail.example.com."), RecordType::A));

        let api = zone.lookup(china, &name("api.example.com."), RecordType::A);
        assert_eq!(
            addresses(&api),
            vec![("api.example.com.".into(), 300, "api.example.cn.".into())]
        );
        let sub = zone.lookup(china, &name("host.sub.example.com."), RecordType::A);
        assert!(!sub.authoritative);
        assert_eq!(sub.additional.len(), 1);
    }

    #[test]
    fn find_takes_the_longest_suffix() {
        let dir = std::env::temp_dir().join(format!("geoline-zoneset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let sub = dir.join("sub.zone");
        std::fs::write(
            &sub,
            "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
        )
        .expect("write");
        let configs = [
            example_config(),
            ZoneConfig {
                origin: Some("sub.example.com".into()),
                file: sub.clone(),
                overlays: BTreeMap::new(),
                declared_at: None,
                transfer: None,
                secondary: None,
            },
        ];
        let set = ZoneSet::load(&configs, &lines()).expect("loads");
        assert_eq!(set.zones().len(), 2);
        let origin = |q: &str| set.find(&name(q)).map(|z| z.origin().to_string());
        assert_eq!(
            origin("a.SUB.example.com."),
            Some("sub.example.com.".into())
        );
        assert_eq!(origin("sub.example.com."), Some("sub.example.com.".into()));
        assert_eq!(origin("ub.example.com."), Some("example.com.".into()));
        assert_eq!(origin("example.org."), None);
        assert!(!set.zones()[1].has_overlays());
        assert!(!set.zones()[1].varies_by_line(&name("ns.sub.example.com."), RecordType::A));

        let twice = [configs[1].clone(), configs[1].clone()];
        let e = ZoneSet::load(&twice, &lines()).expect_err("duplicate");
        assert!(e.to_string().contains("already loaded"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let mut config = example_config();
        config
            .overlays
            .insert(china(), PathBuf::from("/nonexistent/geoline/china.zone"));
        let e = ZoneSet::load(&[config], &lines()).expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/geoline/china.zone: cannot read:"),
            "{e}"
        );
    }
}
