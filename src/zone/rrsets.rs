//! A line's view of a zone as RRsets: what a zone transfer sends (part by part) and what
//! the difference between two versions of a zone is computed from.
//!
//! This is the small, stable surface [`crate::xfr`] reads zones through, so that how the
//! views store their names can change without the transfers noticing. It does not encode
//! anything nor decide what a transfer holds beyond "every RRset of the view".

use hickory_proto::rr::{Name, RecordType};

use super::Zone;
use super::tree::Rrset;
use crate::lines::LineId;

impl Zone {
    /// The number of parts [`Zone::line_part`] divides `line`'s view into.
    pub(crate) fn line_parts(&self, line: LineId) -> usize {
        self.views.get(line.index()).unwrap_or(&self.base).parts()
    }

    /// The names of part `part` of `line`'s view with their RRsets: each name of the view
    /// is in one part, in the same order on every walk of this zone. A transfer walks the
    /// parts in turn, resuming where its last message ended, and holds no list of the
    /// zone.
    pub(crate) fn line_part(
        &self,
        line: LineId,
        part: usize,
    ) -> Box<dyn Iterator<Item = (&Name, &super::tree::Node)> + '_> {
        self.views
            .get(line.index())
            .unwrap_or(&self.base)
            .part(part)
    }

    /// Every RRset of `line`'s view, in no particular order.
    pub(crate) fn for_each_line_rrset(&self, line: LineId, mut f: impl FnMut(&Rrset)) {
        let view = self.views.get(line.index()).unwrap_or(&self.base);
        for (owner, node) in view.names() {
            for set in node.rrsets() {
                f(&set.to_rrset(owner));
            }
        }
    }

    /// What changed in `line`'s view from `old` (an earlier state of this zone) to this
    /// one: `f` gets every RRset that is not the very same stored RRset in both, as it was
    /// (`None`: it is new) and as it is (`None`: it is gone), in no particular order.
    /// Only the names the two states do not share are looked at, so that the change a
    /// dynamic update made to a large zone is found without reading the whole zone.
    pub(crate) fn for_each_line_change(
        &self,
        old: &Zone,
        line: LineId,
        mut f: impl FnMut(Option<Rrset>, Option<Rrset>),
    ) {
        let now = self.views.get(line.index()).unwrap_or(&self.base);
        let before = old.views.get(line.index()).unwrap_or(&old.base);
        if std::sync::Arc::ptr_eq(now, before) {
            return;
        }
        let names: Box<dyn Iterator<Item = &Name>> = match now.changed_names(before) {
            Some(names) => {
                let mut seen = std::collections::HashSet::with_capacity(names.len());
                Box::new(names.into_iter().filter(move |n| seen.insert(*n)))
            }
            // Every name, each once: those of this state, then those only the old has.
            None => Box::new(
                now.names().map(|(n, _)| n).chain(
                    before
                        .names()
                        .map(|(n, _)| n)
                        .filter(|n| now.node(n).is_none()),
                ),
            ),
        };
        for name in names {
            let (was, is) = (before.entry(name), now.entry(name));
            if let Some((owner, node)) = is {
                for set in node.rrsets() {
                    let prior = was.and_then(|(o, n)| Some((o, n.get(set.record_type())?)));
                    match prior {
                        Some((_, prior)) if prior.ptr_eq(set) => {}
                        _ => f(prior.map(|(o, p)| p.to_rrset(o)), Some(set.to_rrset(owner))),
                    }
                }
            }
            if let Some((owner, node)) = was {
                for set in node.rrsets() {
                    let rtype = set.record_type();
                    if is.is_none_or(|(_, n)| n.get(rtype).is_none()) {
                        f(Some(set.to_rrset(owner)), None);
                    }
                }
            }
        }
    }

    /// The RRset of (`name`, `rtype`) in `line`'s view.
    pub(crate) fn line_rrset(&self, line: LineId, name: &Name, rtype: RecordType) -> Option<Rrset> {
        let view = self.views.get(line.index()).unwrap_or(&self.base);
        view.rrset(name, rtype)
    }

    /// Whether `line` sees the very same data (the same view, shared) in `self` and
    /// `other`: nothing to compare then.
    pub(crate) fn same_line_data(&self, other: &Zone, line: LineId) -> bool {
        let a = self.views.get(line.index()).unwrap_or(&self.base);
        let b = other.views.get(line.index()).unwrap_or(&other.base);
        std::sync::Arc::ptr_eq(a, b)
    }
}

impl super::ZoneSet {
    /// A set of the given zones, in order (tests and benches/axfr_encode.rs build zones
    /// from text).
    pub(crate) fn from_zones(zones: Vec<Zone>) -> super::ZoneSet {
        super::ZoneSet {
            zones,
            layout: super::history::unique_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_line_view_is_listed_part_by_part_with_its_overlay() {
        let base = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nz A 192.0.2.9\nns A 192.0.2.1\nb.a A 192.0.2.2\na MX 1 ns\na A 192.0.2.3\n";
        let overlay = "$ORIGIN example.com.\n$TTL 60\nns A 203.0.113.1\nc A 203.0.113.3\n";
        let zone = Zone::from_text(Path::new("t.zone"), base, Some(overlay)).expect("zone");
        // Every RRset once, whatever the order of the parts: sorted here.
        let list = |line: usize| -> Vec<String> {
            let line = LineId::new(line).expect("id");
            let mut list: Vec<String> = (0..zone.line_parts(line))
                .flat_map(|part| zone.line_part(line, part))
                .flat_map(|(owner, node)| node.rrsets().map(move |set| set.to_rrset(owner)))
                .flat_map(|set| {
                    set.iter()
                        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
                        .collect::<Vec<_>>()
                })
                .collect();
            list.sort();
            list
        };
        assert_eq!(
            list(1),
            [
                "a.example.com. A 192.0.2.3",
                "a.example.com. MX 1 ns.example.com.",
                "b.a.example.com. A 192.0.2.2",
                "example.com. NS ns.example.com.",
                "example.com. SOA ns.example.com. h.example.com. 1 2 3 4 5",
                "ns.example.com. A 192.0.2.1",
                "z.example.com. A 192.0.2.9",
            ]
        );
        let china = list(0);
        assert!(
            china.contains(&"ns.example.com. A 203.0.113.1".to_string()),
            "{china:?}"
        );
        assert!(
            china.contains(&"c.example.com. A 203.0.113.3".to_string()),
            "{china:?}"
        );
        assert_eq!(china.len(), 8);
        assert!(zone.same_line_data(&zone.clone(), LineId::new(0).expect("id")));
    }
}
