//! A zone's data while an update is applied to it: the RRsets it changes, read over the
//! view they change, and what the change amounts to at the end.
//!
//! This module owns reading through changes (the prerequisites of section 3.2 and the
//! rules of section 3.4.2 both read the data as the update left it so far) and turning a
//! finished draft into the zone's [`Change`]s and into the records removed and added
//! (what the journal keeps). It does not know RFC 2136's rules ([`super::apply`] does).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::{Change, View};

/// The data of one layer of a zone with the changes made so far.
pub(crate) struct Draft<'z> {
    view: &'z View,
    origin: Name,
    /// The new value of every RRset changed (empty: removed), in the order first changed.
    changed: HashMap<(Name, RecordType), Vec<Record>>,
    order: Vec<(Name, RecordType)>,
}

/// What an update removed from and added to a layer: records of the data before that
/// are not in the data after, and the other way round (a TTL change is both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub(crate) removed: Vec<Record>,
    pub(crate) added: Vec<Record>,
}

impl Diff {
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

impl<'z> Draft<'z> {
    /// A draft of `view`, the data of a zone whose apex is `origin`, with no changes.
    pub(crate) fn new(view: &'z View, origin: &Name) -> Draft<'z> {
        Draft {
            view,
            origin: origin.clone(),
            changed: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// The zone's apex.
    pub(crate) fn origin(&self) -> &Name {
        &self.origin
    }

    /// The RRset of `name` and `rtype` as the draft has it (empty when there is none).
    pub(crate) fn rrset(&self, name: &Name, rtype: RecordType) -> Cow<'_, [Record]> {
        match self.changed.get(&(name.clone(), rtype)) {
            Some(records) => Cow::Borrowed(records),
            None => Cow::Owned(self.original(name, rtype)),
        }
    }

    fn original(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        self.view
            .rrset(name, rtype)
            .map_or_else(Vec::new, |set| set.to_vec())
    }

    /// The types of the RRsets `name` has in the draft, in type-number order.
    pub(crate) fn types(&self, name: &Name) -> Vec<RecordType> {
        let mut types: Vec<RecordType> = self
            .view
            .node(name)
            .map(|node| node.types().collect())
            .unwrap_or_default();
        for (owner, rtype) in &self.order {
            if owner == name && !types.contains(rtype) {
                types.push(*rtype);
            }
        }
        types.retain(|&t| !self.rrset(name, t).is_empty());
        types.sort_by_key(|&t| u16::from(t));
        types
    }

    /// RFC 2136 section 2.4.4: at least one RR of this name exists (an empty
    /// non-terminal is not in use).
    pub(crate) fn name_in_use(&self, name: &Name) -> bool {
        !self.types(name).is_empty()
    }

    /// Replaces the RRset of `name` and `rtype` (an empty one removes it).
    pub(crate) fn set(&mut self, name: &Name, rtype: RecordType, records: Vec<Record>) {
        let key = (name.clone(), rtype);
        if !self.changed.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.changed.insert(key, records);
    }

    /// The SOA serial the draft has, if the apex has an SOA.
    pub(crate) fn serial(&self) -> Option<u32> {
        match self
            .rrset(&self.origin, RecordType::SOA)
            .first()
            .map(|r| &r.data)
        {
            Some(RData::SOA(soa)) => Some(soa.serial),
            _ => None,
        }
    }

    /// The RRsets that differ from the view's, as the zone takes them.
    pub(crate) fn changes(&self) -> Vec<Change> {
        self.order
            .iter()
            .filter(|(name, rtype)| {
                !same_rrset(&self.original(name, *rtype), &self.rrset(name, *rtype))
            })
            .map(|(name, rtype)| {
                let records = self.rrset(name, *rtype);
                let rrset = (!records.is_empty()).then(|| Arc::from(records.to_vec()));
                (name.clone(), *rtype, rrset)
            })
            .collect()
    }

    /// The records removed and added by the draft's changes.
    pub(crate) fn diff(&self) -> Diff {
        let mut diff = Diff::default();
        for (name, rtype) in &self.order {
            let before = self.original(name, *rtype);
            let after = self.rrset(name, *rtype);
            diff.removed.extend(
                before
                    .iter()
                    .filter(|r| !contains_exactly(&after, r))
                    .cloned(),
            );
            diff.added.extend(
                after
                    .iter()
                    .filter(|r| !contains_exactly(&before, r))
                    .cloned(),
            );
        }
        diff
    }
}

/// Whether `set` holds a record with `record`'s data and TTL.
fn contains_exactly(set: &[Record], record: &Record) -> bool {
    set.iter()
        .any(|r| r.data == record.data && r.ttl == record.ttl)
}

/// Whether two RRsets hold the same data with the same TTLs, in any order.
fn same_rrset(a: &[Record], b: &[Record]) -> bool {
    a.len() == b.len() && a.iter().all(|r| contains_exactly(b, r))
}
