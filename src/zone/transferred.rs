//! Zones pulled from a primary (geoline as a secondary): each line's view is a whole copy
//! of the primary's view for that line's key, not a base file plus overlays.
//!
//! A line's copy is read and checked as a base zone file is ([`LineCopy::parse`]): the
//! text a transfer is turned into is the text kept on disk, so what loads after a restart
//! is exactly what was served. A zone is then put together from the copies
//! ([`Zone::from_copies`]): the default line's view is the base, a line with a copy of
//! its own gets it, the others share the base. Before its first transfer, and after it
//! expired, a secondary zone does not serve ([`Zone::serves`]): queries in it get
//! SERVFAIL.
//!
//! This module does not transfer anything nor decide when a zone expires
//! ([`crate::xfr::secondary`] does), and dynamic updates never edit such a zone (they are
//! refused for it).

use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use tracing::warn;

use super::file::Source;
use super::stream;
use super::{History, View, Zone, ZoneError};
use crate::lines::{LineId, LineSet};
use crate::xfr::secondary::config::SecondaryConfig;

/// One line's view of a secondary zone, checked.
#[derive(Debug, Clone)]
pub(crate) struct LineCopy {
    pub(super) view: Arc<View>,
    serial: u32,
}

impl LineCopy {
    /// Reads a line's copy: the zone-file `text` of a transfer (or of its stored copy at
    /// `path`), checked as a base file is, its apex `origin`.
    pub(crate) fn parse(origin: &Name, path: &Path, text: &str) -> Result<LineCopy, ZoneError> {
        let base = stream::load(Source { path, text }, Some(origin))?;
        Ok(LineCopy::from_base(base).1)
    }

    /// The view of a base file's data, with its origin: a line's copy, or the base of a
    /// zone read from files.
    pub(super) fn from_base(base: stream::Loaded) -> (Name, LineCopy) {
        let serial = match &base.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        };
        (
            base.origin,
            LineCopy {
                view: Arc::new(base.view),
                serial,
            },
        )
    }

    /// The serial of the copy's SOA.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }
}

/// An SOA standing in for a zone that has no data yet: serial 0.
fn placeholder_soa(origin: &Name) -> Record {
    Record::from_rdata(
        origin.clone(),
        0,
        RData::SOA(SOA::new(origin.clone(), origin.clone(), 0, 0, 0, 0, 0)),
    )
}

impl Zone {
    /// Whether the zone answers queries: false for a secondary zone before its first
    /// transfer and after it expired (its queries get SERVFAIL).
    #[inline]
    pub fn serves(&self) -> bool {
        self.serves
    }

    /// A secondary zone that has no data yet: it does not serve.
    pub(crate) fn unloaded(origin: &Name, file: &Path, lines: usize) -> Zone {
        let view = Arc::new(View::with_capacity(
            origin.clone(),
            placeholder_soa(origin),
            1,
        ));
        Zone {
            origin: origin.clone(),
            serial: 0,
            file: file.to_path_buf(),
            base: view.clone(),
            views: vec![view; lines.max(1)],
            overlays: Vec::new(),
            overlay_rrsets: Vec::new(),
            history: History::loaded(),
            serves: false,
        }
    }

    /// This zone, expired: the same data, not served (a new lineage, so that no answer
    /// prepared from it is served either).
    pub(crate) fn expired(&self) -> Zone {
        Zone {
            serves: false,
            history: History::loaded(),
            ..self.clone()
        }
    }

    /// `line`'s own view as a copy, when the zone holds data for it (`None` before the
    /// first transfer).
    pub(crate) fn line_copy(&self, line: LineId) -> Option<LineCopy> {
        let view = self.views.get(line.index())?;
        let soa = view
            .node(&self.origin)
            .and_then(|node| node.get(hickory_proto::rr::RecordType::SOA))
            .and_then(|set| set.first(&self.origin))?;
        let serial = match &soa.data {
            RData::SOA(soa) => soa.serial,
            _ => return None,
        };
        Some(LineCopy {
            view: view.clone(),
            serial,
        })
    }

    /// A secondary zone from its lines' copies: `default`'s is the base, which every line
    /// without a copy of its own shares. `file` stands for the zone's file (the default
    /// line's stored copy). `None` without a copy of the default line.
    pub(crate) fn from_copies(
        origin: &Name,
        file: &Path,
        lines: usize,
        default: LineId,
        copies: &[(LineId, LineCopy)],
    ) -> Option<Zone> {
        let base = copies.iter().find(|(l, _)| *l == default)?.1.clone();
        let mut views = vec![base.view.clone(); lines.max(1)];
        let mut overlays = Vec::new();
        for (line, copy) in copies {
            if *line == default {
                continue;
            }
            if let Some(slot) = views.get_mut(line.index()) {
                *slot = copy.view.clone();
                overlays.push(copy.view.clone());
            }
        }
        Some(Zone {
            origin: origin.clone(),
            serial: base.serial,
            file: file.to_path_buf(),
            base: base.view,
            views,
            overlays,
            overlay_rrsets: Vec::new(),
            history: History::loaded(),
            serves: true,
        })
    }

    /// A secondary zone as its stored copies hold it, so that a restart serves at once;
    /// without a readable copy of every pulled line, the zone waits for its first
    /// transfer (not serving). Whether the copies are too old to serve is the secondary's
    /// to decide when it starts.
    pub(crate) fn load_stored(origin: &Name, config: &SecondaryConfig, lines: &LineSet) -> Zone {
        let file = config.default_file();
        let mut copies = Vec::with_capacity(config.pulls.len());
        for pull in &config.pulls {
            let text = match std::fs::read_to_string(&pull.file) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Zone::unloaded(origin, file, lines.len());
                }
                Err(e) => {
                    warn!(zone = %origin, file = %pull.file.display(), error = %e, "the stored copy cannot be read; waiting for a transfer");
                    return Zone::unloaded(origin, file, lines.len());
                }
            };
            match LineCopy::parse(origin, &pull.file, &text) {
                Ok(copy) => copies.push((pull.line, copy)),
                Err(e) => {
                    warn!(zone = %origin, error = %e, "the stored copy is not a zone; waiting for a transfer");
                    return Zone::unloaded(origin, file, lines.len());
                }
            }
        }
        Zone::from_copies(origin, file, lines.len(), lines.default_line(), &copies)
            .unwrap_or_else(|| Zone::unloaded(origin, file, lines.len()))
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::zone::AnswerCode;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    const DEFAULT: &str = "example.com. 300 IN SOA ns.example.com. h.example.com. 7 60 10 600 30\nexample.com. 300 IN NS ns.example.com.\nns.example.com. 300 IN A 192.0.2.53\nwww.example.com. 300 IN A 192.0.2.10\nold.example.com. 300 IN A 192.0.2.11\n";
    const CHINA: &str = "example.com. 300 IN SOA ns.example.com. h.example.com. 7 60 10 600 30\nexample.com. 300 IN NS ns.example.com.\nns.example.com. 300 IN A 192.0.2.53\nwww.example.com. 60 IN A 203.0.113.10\n";

    #[test]
    fn each_line_serves_its_own_copy_and_the_others_the_default() {
        let lines = LineSet::new(["china", "europe"]).expect("lines");
        let china = lines.id("china").expect("china");
        let europe = lines.id("europe").expect("europe");
        let default = lines.default_line();
        let origin = name("example.com.");
        let path = Path::new("/s/example.com.default.zone");
        let copies = [
            (
                default,
                LineCopy::parse(&origin, path, DEFAULT).expect("default"),
            ),
            (china, LineCopy::parse(&origin, path, CHINA).expect("china")),
        ];
        let zone = Zone::from_copies(&origin, path, lines.len(), default, &copies).expect("zone");
        assert!(zone.serves());
        assert_eq!(zone.serial(), 7);
        let www = name("www.example.com.");
        let data = |line| {
            zone.lookup(line, &www, RecordType::A)
                .answers
                .iter()
                .map(|r| (r.ttl, r.data.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(data(china), [(60, "203.0.113.10".to_string())]);
        assert_eq!(data(default), [(300, "192.0.2.10".to_string())]);
        assert_eq!(data(europe), [(300, "192.0.2.10".to_string())]);
        // A name only the default copy has does not exist on the china line: each line's
        // view is whole, not an overlay on the default's.
        let old = name("old.example.com.");
        assert_eq!(
            zone.lookup(china, &old, RecordType::A).rcode,
            AnswerCode::NxDomain
        );
        assert_eq!(
            zone.lookup(default, &old, RecordType::A).rcode,
            AnswerCode::NoError
        );
        assert!(zone.varies_by_line(&www, RecordType::A));
        assert_eq!(zone.line_copy(china).map(|c| c.serial()), Some(7));

        let expired = zone.expired();
        assert!(!expired.serves());
        assert_ne!(expired.history().stamp(), zone.history().stamp());
        let unloaded = Zone::unloaded(&origin, path, lines.len());
        assert!(!unloaded.serves());
        assert!(unloaded.line_copy(default).is_none());
    }

    #[test]
    fn a_copy_is_checked_as_a_zone_file() {
        let origin = name("example.com.");
        let e = LineCopy::parse(
            &origin,
            Path::new("/s/c.zone"),
            "example.com. 300 IN NS ns.example.com.\n",
        )
        .expect_err("no SOA");
        assert!(e.to_string().contains("SOA"), "{e}");
    }
}
