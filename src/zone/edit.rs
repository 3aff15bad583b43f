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

use hickory_proto::rr::{Name, RData, RecordType};

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
        let history = self.history.next(
            &self.origin,
            changes.iter().map(|(name, rtype, _)| (name, *rtype)),
        );
        match layer {
            Layer::Base => {
                let base = Arc::new(self.base.with_changes(changes));
                self.rebuilt(base, self.overlay_rrsets.clone(), history)
            }
            Layer::Overlay(line) => {
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
                self.rebuilt(self.base.clone(), overlays, history)
            }
        }
    }

    /// This zone with its SOA serial set to `serial` (the base's SOA record and the SOA of
    /// negative answers on every line).
    pub(crate) fn with_serial(&self, serial: u32) -> Zone {
        if serial == self.serial {
            return self.clone();
        }
        let Some(mut soa) = self
            .base
            .node(&self.origin)
            .and_then(|node| node.get(RecordType::SOA))
            .and_then(|set| set.first(&self.origin))
        else {
            return self.clone();
        };
        if let RData::SOA(data) = &mut soa.data {
            data.serial = serial;
        }
        let change = (
            self.origin.clone(),
            RecordType::SOA,
            Some(Rrset::from(vec![soa])),
        );
        self.with_changes(Layer::Base, &[change])
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
