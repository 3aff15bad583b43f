//! The recent versions of each zone as differences, per line: what IXFR (RFC 1995) is
//! answered from.
//!
//! Every new snapshot of the zones (a dynamic update, a reload of a zone file or overlay,
//! the journal replayed on top of one) is compared with the last one seen, line by line,
//! when its serial has moved: the records a line's view lost and gained. One mechanism
//! covers the journal's updates and BIND's `ixfr-from-differences` alike, and a line's
//! difference includes what its overlay changed. A bounded number of differences is kept
//! per zone; older serials get the whole zone (AXFR-style), as do serials never seen.
//!
//! This module owns the differences and the chain of serials. It does not write messages
//! ([`super::out`]) nor watch for new snapshots ([`super::Transfers`] does).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use hickory_proto::rr::Name;

use hickory_proto::rr::{Record, RecordType};

use crate::lines::LineId;
use crate::zone::{Rrset, Zone, ZoneSet};

/// The most differences kept per zone.
const MAX_DELTAS: usize = 128;
/// The most records (removed and added, every line) kept per zone.
const MAX_RECORDS: usize = 1_000_000;

/// What one line's view lost and gained between two serials, SOA aside.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct LineDiff {
    pub(crate) removed: Vec<Record>,
    pub(crate) added: Vec<Record>,
}

/// One step from a serial to the next one seen.
#[derive(Debug)]
struct Delta {
    from: u32,
    to: u32,
    /// By line index: the SOA before, the SOA after and the difference.
    lines: Vec<(Rrset, Rrset, Arc<LineDiff>)>,
    records: usize,
}

/// The differences of one zone, and the snapshot the newest leads to.
#[derive(Debug)]
struct ZoneHistory {
    current: Zone,
    deltas: VecDeque<Delta>,
    records: usize,
}

impl ZoneHistory {
    /// A history starting at `zone`, without differences.
    fn starting(zone: &Zone) -> ZoneHistory {
        ZoneHistory {
            current: zone.clone(),
            deltas: VecDeque::new(),
            records: 0,
        }
    }
}

/// The recent differences of every zone, by origin (a configuration reload may add,
/// remove or reorder zones).
#[derive(Debug, Default)]
pub(crate) struct History {
    zones: BTreeMap<Name, ZoneHistory>,
}

/// The zone's serial as its SOA in `line`'s view says.
fn soa(zone: &Zone, line: LineId) -> Option<Rrset> {
    zone.line_rrset(line, zone.origin(), RecordType::SOA)
}

#[cfg(test)]
pub(crate) fn serial_of(soa: &Rrset) -> Option<u32> {
    match soa.first().map(|r| &r.data) {
        Some(hickory_proto::rr::RData::SOA(soa)) => Some(soa.serial),
        _ => None,
    }
}

/// RFC 1982: whether `a` is newer than `b`.
pub(crate) fn newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// What `line` lost and gained from `old` to `new`, SOA aside: the RRsets the two do not
/// share ([`Zone::for_each_line_change`]) compared by content; an RRset whose TTL changed
/// is replaced whole.
pub(crate) fn diff(old: &Zone, new: &Zone, line: LineId) -> LineDiff {
    let mut d = LineDiff::default();
    if old.same_line_data(new, line) {
        return d;
    }
    new.for_each_line_change(old, line, |before, after| {
        let rtype = after.as_ref().or(before.as_ref()).and_then(|s| s.first());
        if rtype.is_none_or(|r| r.record_type() == RecordType::SOA) {
            return;
        }
        match (before, after) {
            (None, None) => {}
            (None, Some(set)) => d.added.extend(set.iter().cloned()),
            (Some(set), None) => d.removed.extend(set.iter().cloned()),
            (Some(before), Some(set)) => {
                let ttl_changed = before.first().map(|r| r.ttl) != set.first().map(|r| r.ttl);
                for r in before.iter() {
                    if ttl_changed || !set.iter().any(|n| n.data == r.data) {
                        d.removed.push(r.clone());
                    }
                }
                for r in set.iter() {
                    if ttl_changed || !before.iter().any(|o| o.data == r.data) {
                        d.added.push(r.clone());
                    }
                }
            }
        }
    });
    d
}

/// One step of an incremental answer: the SOA before and the records removed, the SOA
/// after and the records added (RFC 1995 4).
pub(crate) struct Step {
    pub(crate) from_soa: Rrset,
    pub(crate) to_soa: Rrset,
    pub(crate) diff: Arc<LineDiff>,
}

impl History {
    /// A history starting at `zones`, without differences.
    pub(crate) fn new(zones: &ZoneSet) -> History {
        History {
            zones: zones
                .zones()
                .iter()
                .map(|z| (z.origin().clone(), ZoneHistory::starting(z)))
                .collect(),
        }
    }

    /// Takes in a new snapshot of the zones, `lines` lines each, keeping the history of
    /// those `wanted` (the others' is dropped); returns the indexes in `zones` of the
    /// zones whose serial moved (forward: recorded as a difference; backward, which only
    /// an operator's edit does: the history starts over).
    pub(crate) fn observe(
        &mut self,
        zones: &ZoneSet,
        lines: usize,
        wanted: impl Fn(&Zone) -> bool,
    ) -> Vec<usize> {
        self.zones.retain(|origin, _| {
            zones
                .zones()
                .iter()
                .any(|z| z.origin() == origin && wanted(z))
        });
        let mut moved = Vec::new();
        for (index, zone) in zones.zones().iter().enumerate().filter(|(_, z)| wanted(z)) {
            let Some(history) = self.zones.get_mut(zone.origin()) else {
                // A zone added (or given a transfer table) by a reload: its history
                // starts here.
                self.zones
                    .insert(zone.origin().clone(), ZoneHistory::starting(zone));
                continue;
            };
            let (from, to) = (history.current.serial(), zone.serial());
            if from == to {
                // Same serial: nothing a secondary could ask for changed hands; new data
                // under an old serial stays invisible to secondaries, as with BIND.
                history.current = zone.clone();
                continue;
            }
            if !newer(to, from) {
                history.deltas.clear();
                history.records = 0;
            } else {
                let mut delta = Delta {
                    from,
                    to,
                    lines: Vec::with_capacity(lines),
                    records: 0,
                };
                for line in (0..lines).filter_map(LineId::new) {
                    let (Some(from_soa), Some(to_soa)) =
                        (soa(&history.current, line), soa(zone, line))
                    else {
                        continue;
                    };
                    let d = diff(&history.current, zone, line);
                    delta.records += d.removed.len() + d.added.len();
                    delta.lines.push((from_soa, to_soa, Arc::new(d)));
                }
                history.records += delta.records;
                history.deltas.push_back(delta);
                while history.deltas.len() > MAX_DELTAS || history.records > MAX_RECORDS {
                    match history.deltas.pop_front() {
                        Some(old) => history.records -= old.records,
                        None => break,
                    }
                }
            }
            history.current = zone.clone();
            moved.push(index);
        }
        moved
    }

    /// The newest snapshot of the zone `origin` the history has taken in.
    pub(crate) fn current(&self, origin: &Name) -> Option<&Zone> {
        Some(&self.zones.get(origin)?.current)
    }

    /// The steps that lead `line` of zone `index` from serial `from` to `zone` (the
    /// snapshot being answered from); `None` when the history does not hold them all
    /// (too old, never seen, or `zone` not yet observed): the answer is the whole zone.
    pub(crate) fn steps(&self, zone: &Zone, line: LineId, from: u32) -> Option<Vec<Step>> {
        let history = self.zones.get(zone.origin())?;
        if history.current.serial() != zone.serial() {
            return None;
        }
        let start = history.deltas.iter().position(|d| d.from == from)?;
        let mut steps = Vec::new();
        let mut at = from;
        for delta in history.deltas.iter().skip(start) {
            if delta.from != at {
                return None;
            }
            let (from_soa, to_soa, diff) = delta.lines.get(line.index())?;
            steps.push(Step {
                from_soa: from_soa.clone(),
                to_soa: to_soa.clone(),
                diff: diff.clone(),
            });
            at = delta.to;
        }
        (at == zone.serial()).then_some(steps)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn zone(serial: u32, body: &str, overlay: Option<&str>) -> Zone {
        let text =
            format!("$ORIGIN example.com.\n$TTL 60\n@ SOA ns h {serial} 2 3 4 5\n@ NS ns\n{body}");
        let overlay = overlay.map(|o| format!("$ORIGIN example.com.\n$TTL 60\n{o}"));
        Zone::from_text(Path::new("t.zone"), &text, overlay.as_deref()).expect("zone")
    }

    fn set(zone: Zone) -> ZoneSet {
        ZoneSet::from_zones(vec![zone])
    }

    fn texts(records: &[Record]) -> Vec<String> {
        let mut v: Vec<String> = records
            .iter()
            .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
            .collect();
        v.sort();
        v
    }

    const CHINA: usize = 0;
    const DEFAULT: usize = 1;

    fn line(i: usize) -> LineId {
        LineId::new(i).expect("id")
    }

    #[test]
    fn differences_per_line_chain_serials_and_start_over_when_the_serial_goes_back() {
        let v1 = zone(
            1,
            "www A 192.0.2.1\nmx MX 1 ns\n",
            Some("www A 203.0.113.1\n"),
        );
        let v2 = zone(
            2,
            "www A 192.0.2.1\nwww A 192.0.2.2\nnew TXT \"x\"\n",
            Some("www A 203.0.113.1\n"),
        );
        let v3 = zone(
            3,
            "www A 192.0.2.2\nnew TXT \"x\"\n",
            Some("www A 203.0.113.9\n"),
        );
        let mut h = History::new(&set(v1));
        assert_eq!(h.observe(&set(v2.clone()), 2, |_| true), vec![0]);
        assert_eq!(h.observe(&set(v3.clone()), 2, |_| true), vec![0]);
        assert!(h.observe(&set(v3.clone()), 2, |_| true).is_empty());

        let steps = h.steps(&v3, line(DEFAULT), 1).expect("1 to 3");
        assert_eq!(steps.len(), 2);
        assert_eq!(serial_of(&steps[0].from_soa), Some(1));
        assert_eq!(serial_of(&steps[0].to_soa), Some(2));
        assert_eq!(
            texts(&steps[0].diff.removed),
            ["mx.example.com. 60 MX 1 ns.example.com."]
        );
        assert_eq!(
            texts(&steps[0].diff.added),
            [
                "new.example.com. 60 TXT x",
                "www.example.com. 60 A 192.0.2.2"
            ]
        );
        assert_eq!(
            texts(&steps[1].diff.removed),
            ["www.example.com. 60 A 192.0.2.1"]
        );
        assert!(steps[1].diff.added.is_empty());
        // The china line: its overlay hides the base's www, so only the overlay's change.
        let china = h.steps(&v3, line(CHINA), 2).expect("2 to 3");
        assert_eq!(china.len(), 1);
        assert_eq!(
            texts(&china[0].diff.removed),
            ["www.example.com. 60 A 203.0.113.1"]
        );
        assert_eq!(
            texts(&china[0].diff.added),
            ["www.example.com. 60 A 203.0.113.9"]
        );
        // Serials never seen, or the snapshot not observed yet: the whole zone.
        assert!(h.steps(&v3, line(DEFAULT), 7).is_none());
        let v4 = zone(4, "", None);
        assert!(h.steps(&v4, line(DEFAULT), 1).is_none());
        // Back to serial 1: the history starts over.
        let back = zone(1, "", None);
        assert_eq!(h.observe(&set(back.clone()), 2, |_| true), vec![0]);
        assert!(h.steps(&back, line(DEFAULT), 3).is_none());
    }

    #[test]
    fn a_ttl_change_replaces_the_rrset() {
        let a = zone(1, "www 60 A 192.0.2.1\n", None);
        let b = zone(2, "www 300 A 192.0.2.1\n", None);
        let d = diff(&a, &b, line(DEFAULT));
        assert_eq!(texts(&d.removed), ["www.example.com. 60 A 192.0.2.1"]);
        assert_eq!(texts(&d.added), ["www.example.com. 300 A 192.0.2.1"]);
    }

    #[test]
    fn serial_arithmetic() {
        assert!(newer(2, 1));
        assert!(newer(0, u32::MAX));
        assert!(!newer(1, 2));
        assert!(!newer(5, 5));
    }
}
