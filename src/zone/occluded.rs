//! Zone data no query can reach: names below a delegation that are not glue.
//!
//! Below a zone cut the data is the child zone's (RFC 1034 4.2.1): a query for such a name
//! gets the referral, so records written there in the parent's files are never served.
//! BIND and Knot accept them and answer the same way; an operator who wrote them almost
//! always meant something else (an overlay line's relay address under a delegated name, a
//! record that belongs in the child). This module only finds them, for `geoline check` and
//! the start log; it changes no answer.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};

use super::Zone;
use super::labels;
use super::tree::{View, label_count};
use crate::lines::{LineId, LineSet};

/// A name with data below a zone cut, as `geoline check` warns of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccludedName {
    /// The name, which has records that are not glue.
    pub name: Name,
    /// The delegation above it: the highest name between it and the apex with NS records.
    pub cut: Name,
    /// The lines whose view holds the name below the cut, in line order.
    pub lines: Vec<LineId>,
}

impl OccludedName {
    /// What `geoline check` and the start log say of it.
    pub fn describe(&self, lines: &LineSet) -> String {
        let on: Vec<&str> = self.lines.iter().map(|l| lines.name(*l)).collect();
        format!(
            "`{}` (on {}) is below the delegation `{}` and is never answered: its records \
             are the child zone's to serve (move them there, or remove the NS records)",
            self.name,
            on.join(", "),
            self.cut
        )
    }
}

impl Zone {
    /// Every name that holds records below a delegation and is not glue (an address record
    /// of a name some NS record of the zone names), in canonical name order with the
    /// lines that see it so.
    pub fn occluded_names(&self) -> Vec<OccludedName> {
        // Lines without an overlay share the base view: each view is read once.
        let mut views: Vec<(&Arc<View>, Vec<LineId>)> = Vec::new();
        for (i, view) in self.views.iter().enumerate() {
            let Some(line) = LineId::new(i) else {
                continue;
            };
            match views.iter_mut().find(|(v, _)| Arc::ptr_eq(v, view)) {
                Some((_, lines)) => lines.push(line),
                None => views.push((view, vec![line])),
            }
        }
        let apex_labels = label_count(&self.origin);
        let mut found: BTreeMap<Name, OccludedName> = BTreeMap::new();
        for (view, lines) in views {
            // The delegations first: most zones have none, or a few, and a name is below
            // one when one of them is above it, which is quicker to see than looking up
            // each of its ancestors (a zone's names are walked twice at every start).
            let cuts: Vec<&Name> = view
                .names()
                .filter(|(name, node)| {
                    label_count(name) > apex_labels && node.get(RecordType::NS).is_some()
                })
                .map(|(name, _)| name)
                .collect();
            if cuts.is_empty() {
                continue;
            }
            let few = cuts.len() <= FEW_CUTS;
            let mut glue: Option<HashSet<Name>> = None;
            for (name, node) in view.names() {
                if node.first().is_none() {
                    continue;
                }
                let cut = if few {
                    highest_cut_above(&cuts, name)
                } else {
                    cut_above(view, name, apex_labels)
                };
                let Some(cut) = cut else {
                    continue;
                };
                let addresses_only = node
                    .types()
                    .all(|t| matches!(t, RecordType::A | RecordType::AAAA));
                if addresses_only
                    && glue
                        .get_or_insert_with(|| ns_targets(view))
                        .contains(&name.to_lowercase())
                {
                    continue;
                }
                found
                    .entry(name.clone())
                    .or_insert_with(|| OccludedName {
                        name: name.clone(),
                        cut,
                        lines: Vec::new(),
                    })
                    .lines
                    .extend(&lines);
            }
        }
        let mut names: Vec<OccludedName> = found.into_values().collect();
        for n in &mut names {
            n.lines.sort_by_key(|l| l.index());
        }
        names
    }
}

/// Delegations up to which [`highest_cut_above`] compares a name with each of them rather
/// than looking its ancestors up.
const FEW_CUTS: usize = 32;

/// The highest of `cuts` (names with NS records below the apex) strictly above `name`.
fn highest_cut_above(cuts: &[&Name], name: &Name) -> Option<Name> {
    let labels = label_count(name);
    cuts.iter()
        .filter(|cut| label_count(cut) < labels && labels::at_or_below(cut, name))
        .min_by_key(|cut| label_count(cut))
        .map(|cut| (*cut).clone())
}

/// The highest strict ancestor of `name` below the apex that has NS records.
fn cut_above(view: &View, name: &Name, apex_labels: usize) -> Option<Name> {
    (apex_labels + 1..label_count(name))
        .map(|n| labels::trimmed(name, n))
        .find(|ancestor| {
            view.node(ancestor)
                .is_some_and(|node| node.get(RecordType::NS).is_some())
        })
}

/// Every name an NS record of `view` points to, lower-cased: the names whose address
/// records are glue wherever they are.
fn ns_targets(view: &View) -> HashSet<Name> {
    let mut targets = HashSet::new();
    for (owner, node) in view.names() {
        let Some(ns) = node.get(RecordType::NS) else {
            continue;
        };
        for record in ns.to_rrset(owner).iter() {
            if let RData::NS(target) = &record.data {
                targets.insert(target.0.to_lowercase());
            }
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::lines::{LineId, LineSet};
    use crate::zone::ZoneSet;
    use crate::zone::config::ZoneConfig;

    const HEAD: &str = "$ORIGIN example.com.\n$TTL 300\n\
        @ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.2\n";

    #[test]
    fn data_below_a_delegation_is_found_glue_is_not() {
        let dir = std::env::temp_dir().join(format!("geoline-occluded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let base = format!(
            "{HEAD}sub IN NS ns.sub\nsub IN NS ns.other.example.net.\nns.sub IN A 192.0.2.53\n\
             x.sub IN A 192.0.2.1\nwww IN A 192.0.2.10\n"
        );
        std::fs::write(dir.join("z.zone"), base).expect("write");
        std::fs::write(
            dir.join("z.china.zone"),
            "$ORIGIN example.com.\ndeep.x.sub 60 IN TXT \"relay\"\nwww 60 IN A 203.0.113.10\n",
        )
        .expect("write");
        let china = LineId::new(0).expect("line");
        let config = ZoneConfig {
            origin: None,
            file: dir.join("z.zone"),
            overlays: BTreeMap::from([(china, dir.join("z.china.zone"))]),
            declared_at: None,
            transfer: None,
            secondary: None,
        };
        let lines = LineSet::new(["china"]).expect("one line");
        let set = ZoneSet::load(&[config], &lines).expect("loads");
        let found: Vec<(String, String, Vec<usize>)> = set.zones()[0]
            .occluded_names()
            .into_iter()
            .map(|o| {
                let lines = o.lines.iter().map(|l| l.index()).collect();
                (o.name.to_string(), o.cut.to_string(), lines)
            })
            .collect();
        // x.sub on both lines (the base's), deep.x.sub on the overlay's line only;
        // ns.sub is glue; www, ns1 and the cut itself are the zone's own.
        let occluded = |name: &str, lines: Vec<usize>| {
            (name.to_string(), "sub.example.com.".to_string(), lines)
        };
        assert_eq!(
            found,
            vec![
                occluded("x.sub.example.com.", vec![0, 1]),
                occluded("deep.x.sub.example.com.", vec![0]),
            ]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
