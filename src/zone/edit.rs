//! Zones changed in place of a reload: a new [`Zone`] with some RRsets replaced or removed
//! in its base data or in one line's overlay, or with a new SOA serial.
//!
//! This module owns how a change reaches every view: a change of the base data reaches
//! every line (an overlay's own RRsets still replace the base's, as when the files load),
//! a change of an overlay reaches its line only. The zone changed is a new value, like a
//! reload's; the old one keeps answering whoever holds it.
//!
//! It does not decide what changes (RFC 2136's rules are [`crate::update`]'s) nor write
//! anything to disk.

use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::packed::Packed;
use super::tree::{OwnedRrset, Rrset, View};
use super::{History, Zone, ZoneSet, file};
use crate::lines::LineId;

/// Which data of a zone a change writes: the base every line sees, or one line's overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Layer {
    /// The base data (the zone file's).
    Base,
    /// The overlay of one line (not `default`, whose data is the base).
    Overlay(LineId),
}

/// One RRset's new value in a [`Layer`]: `Some` replaces it, `None` removes it.
pub(crate) type Change = (Name, RecordType, Option<Rrset>);

impl Zone {
    /// The data a change of `layer` starts from: the base view, or the line's view (the
    /// base with the line's overlay on top).
    pub(crate) fn layer_view(&self, layer: Layer) -> &View {
        match layer {
            Layer::Base => &self.base,
            Layer::Overlay(line) => self.views.get(line.index()).unwrap_or(&self.base),
        }
    }

    /// The RRsets a layer holds itself: every RRset of the base, or an overlay's own.
    pub(crate) fn layer_rrsets(&self, layer: Layer) -> Vec<Rrset> {
        match layer {
            Layer::Base => self.base.rrsets().collect(),
            Layer::Overlay(line) => self
                .overlay_rrsets
                .iter()
                .find(|(l, _)| *l == line)
                .map(|(_, sets)| {
                    sets.iter()
                        .map(|(owner, set)| set.to_rrset(owner))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The lines whose overlay holds RRsets.
    pub(crate) fn overlay_lines(&self) -> impl Iterator<Item = LineId> + '_ {
        self.overlay_rrsets.iter().map(|(line, _)| *line)
    }

    /// This zone with `changes` made to `layer`. The serial is the SOA's after the change.
    pub(crate) fn with_changes(&self, layer: Layer, changes: &[Change]) -> Zone {
        match layer {
            Layer::Base => self.changed(changes, None),
            Layer::Overlay(line) => self.changed(&[], Some((line, changes))),
        }
    }

    /// This zone with `changes` made to `layer` and its SOA serial set to `serial`, in one
    /// new snapshot (what a dynamic update makes): the SOA is one more change of the base
    /// data, made with the others, not a second snapshot after them.
    pub(crate) fn with_changes_and_serial(
        &self,
        layer: Layer,
        changes: &[Change],
        serial: u32,
    ) -> Zone {
        let is_soa = |(name, rtype, _): &Change| *rtype == RecordType::SOA && *name == self.origin;
        let soa = match layer {
            // The SOA as the changes leave it (an update may replace it), else as it is.
            Layer::Base => changes.iter().find(|c| is_soa(c)).cloned(),
            Layer::Overlay(_) => None,
        };
        let soa = match soa {
            Some((_, _, set)) => set.and_then(|set| set.first().cloned()),
            None => self.soa_record(),
        };
        let Some(soa) = soa.map(|soa| with_soa_serial(soa, serial)) else {
            return self.with_changes(layer, changes);
        };
        let soa_change = (
            self.origin.clone(),
            RecordType::SOA,
            Some(Rrset::from(vec![soa])),
        );
        match layer {
            Layer::Base => {
                let mut all: Vec<Change> = Vec::with_capacity(changes.len() + 1);
                all.extend(changes.iter().filter(|c| !is_soa(c)).cloned());
                all.push(soa_change);
                self.changed(&all, None)
            }
            Layer::Overlay(line) => self.changed(&[soa_change], Some((line, changes))),
        }
    }

    /// This zone with its SOA serial set to `serial` (the base's SOA record and the SOA of
    /// negative answers on every line).
    pub(crate) fn with_serial(&self, serial: u32) -> Zone {
        if serial == self.serial {
            return self.clone();
        }
        match self.soa_record() {
            Some(soa) => {
                let change = (
                    self.origin.clone(),
                    RecordType::SOA,
                    Some(Rrset::from(vec![with_soa_serial(soa, serial)])),
                );
                self.changed(&[change], None)
            }
            None => self.clone(),
        }
    }

    /// The SOA record of the base data.
    fn soa_record(&self) -> Option<Record> {
        self.base
            .node(&self.origin)
            .and_then(|node| node.get(RecordType::SOA))
            .and_then(|set| set.first(&self.origin))
    }

    /// This zone with `base` changes made to the base data and `overlay`'s to one line's
    /// overlay, as one new revision.
    fn changed(&self, base: &[Change], overlay: Option<(LineId, &[Change])>) -> Zone {
        let overlay_changes = overlay.map_or(&[][..], |(_, changes)| changes);
        let history = self.history.next(
            &self.origin,
            base.iter()
                .chain(overlay_changes)
                .map(|(name, rtype, _)| (name, *rtype)),
        );
        let new_base = if base.is_empty() {
            self.base.clone()
        } else {
            Arc::new(self.base.with_changes(base))
        };
        let Some((line, changes)) = overlay else {
            return self.rebuilt(new_base, self.overlay_rrsets.clone(), history);
        };
        let mut overlays = self.overlay_rrsets.clone();
        let current: &[OwnedRrset] = overlays
            .iter()
            .find(|(l, _)| *l == line)
            .map_or(&[], |(_, sets)| sets);
        let mut sets: Vec<OwnedRrset> = current.to_vec();
        for (owner, rtype, rrset) in changes {
            sets.retain(|(name, set)| !(set.record_type() == *rtype && name == owner));
            if let Some(set) = rrset.as_ref().and_then(Packed::new) {
                sets.push((owner.clone(), set));
            }
        }
        overlays.retain(|(l, _)| *l != line);
        if !sets.is_empty() {
            overlays.push((line, sets.into()));
            overlays.sort_by_key(|(l, _)| l.index());
        }
        self.rebuilt(new_base, overlays, history)
    }

    /// A zone from a new base view and overlays, with the same lines.
    fn rebuilt(
        &self,
        mut base: Arc<View>,
        overlay_rrsets: Vec<(LineId, Arc<[OwnedRrset]>)>,
        history: History,
    ) -> Zone {
        let soa = base
            .node(&self.origin)
            .and_then(|node| node.get(RecordType::SOA))
            .and_then(|set| set.first(&self.origin));
        let serial = match soa.as_ref().map(|r| &r.data) {
            Some(RData::SOA(data)) => data.serial,
            _ => self.serial,
        };
        if let Some(soa) = &soa {
            let negative = file::negative_soa(soa);
            if negative != base.negative_soa || negative.ttl != base.negative_soa.ttl {
                Arc::make_mut(&mut base).negative_soa = negative;
            }
        }
        let mut views = vec![base.clone(); self.views.len().max(1)];
        let mut overlays = Vec::with_capacity(overlay_rrsets.len());
        for (line, rrsets) in &overlay_rrsets {
            let view = Arc::new(View::with_overlay(&base, rrsets));
            if let Some(slot) = views.get_mut(line.index()) {
                *slot = view.clone();
            }
            overlays.push(view);
        }
        Zone {
            origin: self.origin.clone(),
            serial,
            file: self.file.clone(),
            base,
            views,
            overlays,
            overlay_rrsets,
            history,
            serves: self.serves,
        }
    }
}

impl ZoneSet {
    /// This set with zone `index` replaced by `zone` (whose origin must be the same).
    pub(crate) fn with_zone(&self, index: usize, zone: Zone) -> ZoneSet {
        let mut zones = self.zones.clone();
        if let Some(slot) = zones.get_mut(index) {
            *slot = zone;
        }
        self.with_zones(zones)
    }
}

/// `soa` with its serial set to `serial`.
fn with_soa_serial(mut soa: Record, serial: u32) -> Record {
    if let RData::SOA(data) = &mut soa.data {
        data.serial = serial;
    }
    soa
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::Path;

    use hickory_proto::rr::rdata::A;

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn a(owner: &str, ip: [u8; 4]) -> Change {
        let record = Record::from_rdata(name(owner), 60, RData::A(A(Ipv4Addr::from(ip))));
        (name(owner), RecordType::A, Some(Rrset::from(vec![record])))
    }

    fn serial_of(view: &View) -> Option<u32> {
        match view
            .rrset(&name("example.com."), RecordType::SOA)?
            .first()?
            .data
        {
            RData::SOA(ref soa) => Some(soa.serial),
            _ => None,
        }
    }

    fn negative_serial(view: &View) -> Option<u32> {
        match &view.negative_soa.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        }
    }

    #[test]
    fn changes_and_a_serial_make_one_revision_on_every_line() {
        let base = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 7 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";
        let overlay = "$ORIGIN example.com.\n$TTL 60\nns A 203.0.113.1\n";
        let zone = Zone::from_text(Path::new("t.zone"), base, Some(overlay)).expect("zone");
        let china = LineId::new(0).expect("line");
        let one_revision = zone.with_changes(Layer::Base, &[]).history().stamp();
        for layer in [Layer::Base, Layer::Overlay(china)] {
            let changed =
                zone.with_changes_and_serial(layer, &[a("x.example.com.", [192, 0, 2, 9])], 9);
            assert_eq!(changed.serial(), 9);
            // One snapshot, one revision: not the change and then the serial.
            assert_eq!(changed.history().stamp(), one_revision, "{layer:?}");
            for view in [&changed.base, &changed.views[0], &changed.views[1]] {
                assert_eq!(serial_of(view), Some(9), "{layer:?}");
                assert_eq!(negative_serial(view), Some(9), "{layer:?}");
            }
            let china_view = changed.layer_view(Layer::Overlay(china));
            assert!(china_view.node(&name("x.example.com.")).is_some());
            let sees_x = changed.base.node(&name("x.example.com.")).is_some();
            assert_eq!(sees_x, layer == Layer::Base, "{layer:?}");
            // The overlay's own data still wins on its line.
            let ns = china_view
                .rrset(&name("ns.example.com."), RecordType::A)
                .expect("ns");
            assert_eq!(ns[0].data, RData::A(A(Ipv4Addr::new(203, 0, 113, 1))));
        }
        // An update that replaced the SOA itself keeps its other fields, with the serial.
        let mut soa = zone.soa_record().expect("soa");
        if let RData::SOA(data) = &mut soa.data {
            data.refresh = 3600;
        }
        let change = (
            name("example.com."),
            RecordType::SOA,
            Some(Rrset::from(vec![soa])),
        );
        let changed = zone.with_changes_and_serial(Layer::Base, &[change], 8);
        let soa = changed.soa_record().expect("soa");
        match soa.data {
            RData::SOA(data) => assert_eq!((data.serial, data.refresh), (8, 3600)),
            other => panic!("{other:?}"),
        }
    }
}
