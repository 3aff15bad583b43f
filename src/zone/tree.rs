//! One line's view of a zone: its names, each with its RRsets, and the empty non-terminals
//! between them and the apex.
//!
//! A view is built once, at load time, and only read afterwards. An overlay view holds
//! only the names its overlay touches (with their RRsets merged) and reads every other name
//! from the base view beneath it, so a line's overlay costs memory in proportion to the
//! overlay, not to the zone: a zone of a million names with a small overlay stays one map.
//! RRsets are stored packed ([`Packed`]: wire-format data, the owner kept once, by the
//! name index) and shared between the views, and so are the shards of the name index
//! ([`NameIndex`]) between a view and the one a dynamic update makes of it.

use std::sync::Arc;

use hickory_proto::rr::{Name, Record, RecordType};

use super::index::NameIndex;
use super::labels;
use super::packed::Packed;

/// The records of one name and type, all with the same owner and TTL, in file order: what
/// views take in and give out (they store it [`Packed`]).
pub(crate) type Rrset = Arc<[Record]>;

/// An RRset with its owner: an overlay's own data, as its view is rebuilt from it.
pub(crate) type OwnedRrset = (Name, Packed);

/// The RRsets of one name, in type-number order. Empty for an empty non-terminal.
///
/// Most names have one RRset, held inline: no list to allocate for it.
#[derive(Debug, Clone, Default)]
pub(crate) enum Node {
    /// An empty non-terminal (or a name whose last RRset is gone).
    #[default]
    Empty,
    /// One RRset.
    One(Packed),
    /// Several, sorted by type number: a name has a handful of types, so a sorted list is
    /// both smaller and faster than a map, and its first element is the lowest type (for
    /// ANY).
    Many(Box<[Packed]>),
}

impl Node {
    fn sets(&self) -> &[Packed] {
        match self {
            Node::Empty => &[],
            Node::One(set) => std::slice::from_ref(set),
            Node::Many(sets) => sets,
        }
    }

    pub(crate) fn get(&self, rtype: RecordType) -> Option<&Packed> {
        self.sets().iter().find(|set| set.record_type() == rtype)
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Node::Empty)
    }

    /// The RRset of the lowest type number: the one minimal ANY answers with (RFC 8482).
    pub(crate) fn first(&self) -> Option<&Packed> {
        self.sets().first()
    }

    /// The types of the name's RRsets, in type-number order.
    pub(crate) fn types(&self) -> impl Iterator<Item = RecordType> + '_ {
        self.sets().iter().map(Packed::record_type)
    }

    /// The name's RRsets, in type-number order.
    pub(crate) fn rrsets(&self) -> impl Iterator<Item = &Packed> + '_ {
        self.sets().iter()
    }

    /// Asks the CPU for the memory [`Node::rrsets`] reads first (the RRset of one, the
    /// list of several), ahead of reading it: see [`crate::util::prefetch`].
    pub(crate) fn prefetch(&self) {
        match self {
            Node::Empty => {}
            Node::One(set) => set.prefetch(),
            Node::Many(sets) => crate::util::prefetch::prefetch(sets.as_ptr()),
        }
    }

    fn set(&mut self, set: Packed) {
        let number = u16::from(set.record_type());
        let mut sets = self.sets().to_vec();
        match sets.binary_search_by_key(&number, |s| u16::from(s.record_type())) {
            Ok(i) => sets[i] = set,
            Err(i) => sets.insert(i, set),
        }
        *self = Node::of(sets);
    }

    /// Sets the RRset of its type, giving back the one it replaces.
    fn replace(&mut self, set: Packed) -> Option<Packed> {
        if self.is_empty() {
            *self = Node::One(set);
            return None;
        }
        let old = self.get(set.record_type()).cloned();
        self.set(set);
        old
    }

    fn remove(&mut self, rtype: RecordType) {
        if self.get(rtype).is_some() {
            let sets = self
                .sets()
                .iter()
                .filter(|s| s.record_type() != rtype)
                .cloned()
                .collect();
            *self = Node::of(sets);
        }
    }

    fn of(mut sets: Vec<Packed>) -> Node {
        match sets.len() {
            0 => Node::Empty,
            1 => Node::One(sets.remove(0)),
            _ => Node::Many(sets.into()),
        }
    }

    fn record_count(&self) -> usize {
        self.sets().iter().map(Packed::len).sum()
    }
}

/// What one line sees of a zone.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) origin: Name,
    origin_labels: usize,
    /// The SOA for negative answers, its TTL already capped (RFC 2308 section 5).
    pub(crate) negative_soa: Record,
    /// Every name with data, and every empty non-terminal (as an empty node), so that
    /// "does this name exist" is one map lookup (two in an overlay view, for names it
    /// does not touch).
    nodes: NameIndex<Node>,
    /// The number of names directly below each name that has some (an absent name has
    /// none): whether an emptied name may go is one lookup, not a walk of the zone.
    children: NameIndex<u32>,
    /// The base view an overlay view reads the names it does not hold from.
    below: Option<Arc<View>>,
    /// Whether any non-apex name may have NS records, so most lookups skip the cut search.
    has_cuts: bool,
    /// Whether any name may have a DNAME, so most lookups skip looking for one above.
    has_dnames: bool,
}

/// What takes a name out of the ordinary lookup from above it (or, for a cut, at it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Redirection<'a> {
    /// A zone cut at or above the name: the cut's name, its node and its NS RRset.
    Cut(&'a Name, &'a Node, &'a Packed),
    /// A DNAME at a proper ancestor of the name (RFC 6672 2.3): its owner and RRset.
    Dname(&'a Name, &'a Packed),
}

impl View {
    #[cfg(test)]
    pub(crate) fn new(origin: Name, negative_soa: Record) -> View {
        View::with_capacity(origin, negative_soa, 1)
    }

    /// A view with room for `names` names, so that a large zone loads without rehashing.
    pub(crate) fn with_capacity(origin: Name, negative_soa: Record, names: usize) -> View {
        let origin_labels = label_count(&origin);
        let mut nodes = NameIndex::with_capacity(names);
        nodes.insert(origin.clone(), Node::default());
        View {
            origin,
            origin_labels,
            negative_soa,
            nodes,
            children: NameIndex::with_capacity(names / 8),
            below: None,
            has_cuts: false,
            has_dnames: false,
        }
    }

    /// Ends a load: the index of children, sized for the worst case (every name a parent)
    /// while the names went in, is sized for the names that have some.
    pub(crate) fn loaded(&mut self) {
        self.children = self.children.resized();
    }

    /// Adds (or replaces) an RRset; its owner must be at or below the origin.
    pub(crate) fn insert(&mut self, rrset: Rrset) {
        let Some(first) = rrset.first() else {
            return;
        };
        let owner = first.name.clone();
        if let Some(set) = Packed::new(&rrset) {
            self.insert_packed(owner, set);
        }
    }

    /// Adds (or replaces) the RRset `set` of `owner`, which must be at or below the origin.
    pub(crate) fn insert_packed(&mut self, owner: Name, set: Packed) {
        let rtype = set.record_type();
        self.ensure_name(&owner);
        self.note_redirection(rtype, &owner);
        if let Some(node) = self.nodes.get_mut(&owner) {
            node.set(set);
        }
    }

    /// Adds the RRset `set` of `owner` (at or below the origin) as a file loads, giving
    /// back the RRset of the same type it replaces. What [`View::insert_packed`] does, in
    /// fewer lookups of names, each a hash of the whole name: a name new to the view costs
    /// three (itself, its parent's count of children, its insertion) instead of five.
    pub(crate) fn insert_loading(&mut self, owner: Name, set: Packed) -> Option<Packed> {
        self.note_redirection(set.record_type(), &owner);
        if let Some(node) = self.nodes.get_mut(&owner) {
            return node.replace(set);
        }
        let labels = label_count(&owner);
        if labels == self.origin_labels + 1 {
            // Most names of a zone are right below its apex: no parent to build.
            *self.children.get_or_insert_with(&self.origin, || 0) += 1;
        } else if labels > self.origin_labels {
            *self
                .children
                .get_or_insert_with(&labels::parent(&owner), || 0) += 1;
        }
        // The empty non-terminals between the name and the nearest name the view has.
        for n in (self.origin_labels + 1..labels).rev() {
            let ancestor = labels::trimmed(&owner, n);
            if self.node(&ancestor).is_some() {
                break;
            }
            *self
                .children
                .get_or_insert_with(&labels::parent(&ancestor), || 0) += 1;
            self.nodes.insert(ancestor, Node::default());
        }
        self.nodes.insert(owner, Node::One(set));
        None
    }

    fn note_redirection(&mut self, rtype: RecordType, owner: &Name) {
        match rtype {
            RecordType::NS if *owner != self.origin => self.has_cuts = true,
            RecordType::DNAME => self.has_dnames = true,
            _ => {}
        }
    }

    /// This view with an overlay's RRsets applied, following DESIGN.md: an RRset replaces
    /// the base RRset of its name and type; a CNAME replaces everything at its name; other
    /// data at a name where the base has a CNAME removes that CNAME. The new view holds the
    /// names the overlay touches and reads the rest from `base`.
    pub(crate) fn with_overlay(base: &Arc<View>, overlay: &[OwnedRrset]) -> View {
        let mut view = View {
            origin: base.origin.clone(),
            origin_labels: base.origin_labels,
            negative_soa: base.negative_soa.clone(),
            nodes: NameIndex::with_capacity(overlay.len()),
            children: NameIndex::with_capacity(0),
            below: Some(base.clone()),
            has_cuts: base.has_cuts,
            has_dnames: base.has_dnames,
        };
        for (owner, set) in overlay {
            let rtype = set.record_type();
            view.ensure_name(owner);
            let node = view
                .nodes
                .get_or_insert_with(owner, || base.node(owner).cloned().unwrap_or_default());
            if rtype == RecordType::CNAME {
                *node = Node::Empty;
            } else {
                node.remove(RecordType::CNAME);
            }
            node.set(set.clone());
            view.note_redirection(rtype, owner);
        }
        view
    }

    /// This (base) view with RRsets replaced (`Some`) or removed (`None`): what a dynamic
    /// update writes. A name left without RRsets and without names below it goes, and so
    /// do the empty non-terminals above it that only it needed. The new view shares all
    /// of this one's name index but the shards the changes touch ([`NameIndex`]); overlay
    /// views are rebuilt on the result by [`View::with_overlay`].
    pub(crate) fn with_changes(&self, changes: &[(Name, RecordType, Option<Rrset>)]) -> View {
        let mut view = self.clone();
        let mut emptied = Vec::new();
        for (owner, rtype, rrset) in changes {
            match rrset.as_ref().and_then(Packed::new) {
                Some(set) => {
                    view.ensure_name(owner);
                    if let Some(node) = view.nodes.get_mut(owner) {
                        node.set(set);
                    }
                    if *rtype == RecordType::NS && *owner != view.origin {
                        view.has_cuts = true;
                    }
                }
                None => {
                    if let Some(node) = view.nodes.get_mut(owner) {
                        node.remove(*rtype);
                        if node.is_empty() {
                            emptied.push(owner.clone());
                        }
                    }
                }
            }
        }
        for name in emptied {
            view.prune(name);
        }
        view
    }

    /// Removes `name` and then its ancestors while each is empty and nothing is below it;
    /// the apex stays.
    fn prune(&mut self, mut name: Name) {
        while label_count(&name) > self.origin_labels {
            let empty = self.nodes.get(&name).is_some_and(Node::is_empty);
            if !empty || self.children.contains(&name) {
                return;
            }
            self.nodes.remove(&name);
            let parent = labels::parent(&name);
            if let Some(count) = self.children.get_mut(&parent) {
                *count -= 1;
                if *count == 0 {
                    self.children.remove(&parent);
                }
            }
            name = parent;
        }
    }

    fn ensure_name(&mut self, name: &Name) {
        let labels = label_count(name);
        for n in (self.origin_labels + 1..=labels).rev() {
            let ancestor = if n == labels {
                name.clone()
            } else {
                labels::trimmed(name, n)
            };
            if self.node(&ancestor).is_some() {
                break;
            }
            *self
                .children
                .get_or_insert_with(&labels::parent(&ancestor), || 0) += 1;
            self.nodes.insert(ancestor, Node::default());
        }
    }

    /// The node of `name` if the name exists (with data or as an empty non-terminal).
    pub(crate) fn node(&self, name: &Name) -> Option<&Node> {
        self.entry(name).map(|(_, node)| node)
    }

    /// The name as the view holds it (the owner its records are given) and its node, if
    /// the name exists.
    pub(crate) fn entry(&self, name: &Name) -> Option<(&Name, &Node)> {
        match self.nodes.get_key_value(name) {
            Some(found) => Some(found),
            None => self.below.as_ref().and_then(|below| below.entry(name)),
        }
    }

    /// The RRset of (`name`, `rtype`) as records, if the view has it.
    pub(crate) fn rrset(&self, name: &Name, rtype: RecordType) -> Option<Rrset> {
        let (owner, node) = self.entry(name)?;
        node.get(rtype).map(|set| set.to_rrset(owner))
    }

    /// The zone cut `name` is at or below: the NS RRset of the highest non-apex ancestor
    /// (or `name` itself) that has NS records. Data below the topmost cut belongs to the
    /// child, so lower cuts are irrelevant.
    pub(crate) fn cut(&self, name: &Name) -> Option<(&Node, &Packed)> {
        if !self.has_cuts {
            return None;
        }
        let labels = label_count(name);
        (self.origin_labels + 1..=labels).find_map(|n| {
            let node = self.node(&labels::trimmed(name, n))?;
            node.get(RecordType::NS).map(|ns| (node, ns))
        })
    }

    /// What redirects `name`, looking down from the apex: the first zone cut at or above
    /// it, or DNAME above it, whichever is higher (data below either is not this zone's
    /// to answer with: a cut's is the child's, a DNAME's is occluded, RFC 6672 2.4). At one
    /// node the cut wins, as the NS there marks the child's apex. The DNAME at `name`
    /// itself redirects only the names below it, so it is not one.
    pub(crate) fn redirection(&self, name: &Name) -> Option<Redirection<'_>> {
        if !self.has_cuts && !self.has_dnames {
            return None;
        }
        let labels = label_count(name);
        (self.origin_labels..=labels).find_map(|n| {
            let (owner, node) = self.entry(&labels::trimmed(name, n))?;
            if n > self.origin_labels
                && let Some(ns) = node.get(RecordType::NS)
            {
                return Some(Redirection::Cut(owner, node, ns));
            }
            match node.get(RecordType::DNAME) {
                Some(dname) if n < labels => Some(Redirection::Dname(owner, dname)),
                _ => None,
            }
        })
    }

    /// RFC 4592 section 3.3.1: the closest encloser of a name that does not exist, and the
    /// wildcard below it (its name and node), if that wildcard exists.
    pub(crate) fn wildcard(&self, name: &Name) -> Option<(Name, &Node)> {
        let labels = label_count(name);
        let encloser = (self.origin_labels..labels)
            .rev()
            .map(|n| labels::trimmed(name, n))
            .find(|ancestor| self.node(ancestor).is_some())?;
        let source = encloser.prepend_label(&b"*"[..]).ok()?;
        let node = self.node(&source)?;
        Some((source, node))
    }

    /// The number of names this view holds itself (an overlay view's base holds the rest).
    pub(crate) fn own_names(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn record_count(&self) -> usize {
        self.names().map(|(_, node)| node.record_count()).sum()
    }

    /// [`View::record_count`], given that of `base` (`base_records`): for an overlay view
    /// over `base`, counted over the names it holds alone.
    pub(crate) fn record_count_over(&self, base: &Arc<View>, base_records: usize) -> usize {
        match &self.below {
            Some(below) if Arc::ptr_eq(below, base) => {
                self.nodes.iter().fold(base_records, |count, (name, node)| {
                    let hidden = base.node(name).map_or(0, Node::record_count);
                    count + node.record_count() - hidden
                })
            }
            _ => self.record_count(),
        }
    }

    /// Every name of the view with its node: this view's, then the base's it does not hide.
    pub(crate) fn names(&self) -> Box<dyn Iterator<Item = (&Name, &Node)> + '_> {
        let own = self.nodes.iter();
        match &self.below {
            None => Box::new(own),
            Some(below) => {
                Box::new(own.chain(below.names().filter(|(name, _)| !self.nodes.contains(name))))
            }
        }
    }

    /// The number of parts [`View::part`] divides the view's names into: the name
    /// index's shards, then those of the base below an overlay.
    pub(crate) fn parts(&self) -> usize {
        self.nodes.shard_count() + self.below.as_ref().map_or(0, |below| below.parts())
    }

    /// The names of part `i` with their nodes: every name [`View::names`] gives is in
    /// exactly one part, in an order that is the same on every walk of the view. A zone
    /// transfer walks a view part by part, so that it never lists the whole zone.
    pub(crate) fn part(&self, i: usize) -> Box<dyn Iterator<Item = (&Name, &Node)> + '_> {
        let own = self.nodes.shard_count();
        match &self.below {
            _ if i < own => Box::new(self.nodes.shard(i)),
            Some(below) => Box::new(
                below
                    .part(i - own)
                    .filter(|(name, _)| !self.nodes.contains(name)),
            ),
            None => Box::new(std::iter::empty()),
        }
    }

    /// The names whose RRsets may differ between this view and `old`, another state of
    /// the same line of the zone (a name may come more than once): every other name has
    /// the very same RRsets in both. Views that share most of their name index (a
    /// dynamic update's) give the names of the few shards they do not share; `None` when
    /// they share none (two loads of the files): every name may differ.
    pub(crate) fn changed_names<'a>(&'a self, old: &'a View) -> Option<Vec<&'a Name>> {
        match (&self.below, &old.below) {
            (Some(base), Some(old_base)) => {
                // An overlay's names hide or show the base's: each counts, before and after.
                let mut names = base.changed_names(old_base)?;
                names.extend(self.nodes.iter().map(|(n, _)| n));
                names.extend(old.nodes.iter().map(|(n, _)| n));
                Some(names)
            }
            (None, None) if self.nodes.shares_with(&old.nodes) => {
                let mut names: Vec<&Name> =
                    self.nodes.unshared(&old.nodes).map(|(n, _)| n).collect();
                names.extend(old.nodes.unshared(&self.nodes).map(|(n, _)| n));
                Some(names)
            }
            _ => None,
        }
    }

    /// Every RRset of the view, as records.
    pub(crate) fn rrsets(&self) -> impl Iterator<Item = Rrset> + '_ {
        self.names()
            .flat_map(|(owner, node)| node.rrsets().map(move |set| set.to_rrset(owner)))
    }
}

/// The number of labels, counting a leading `*` (unlike `Name::num_labels`).
pub(crate) fn label_count(name: &Name) -> usize {
    name.iter().count()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn rrset(owner: &str, data: RData) -> Rrset {
        Arc::from(vec![Record::from_rdata(name(owner), 300, data)])
    }

    fn view() -> View {
        let soa = SOA::new(
            name("ns1.example.com."),
            name("hostmaster.example.com."),
            1,
            7200,
            900,
            1209600,
            60,
        );
        let origin = name("example.com.");
        let mut v = View::new(
            origin.clone(),
            Record::from_rdata(origin, 60, RData::SOA(soa)),
        );
        v.insert(rrset(
            "a.b.c.example.com.",
            RData::A(A(Ipv4Addr::LOCALHOST)),
        ));
        v
    }

    #[test]
    fn a_load_builds_the_view_inserting_builds() {
        let owners = [
            "a.b.c.example.com.",
            "x.example.com.",
            "b.c.example.com.",
            "example.com.",
            "d.b.c.example.com.",
            "x.example.com.",
            "*.w.example.com.",
            "w.example.com.",
        ];
        let mut inserted = view();
        let mut loaded = view();
        for (i, owner) in owners.iter().enumerate() {
            let address = Ipv4Addr::new(192, 0, 2, u8::try_from(i).expect("small"));
            let set = rrset(owner, RData::A(A(address)));
            let mut set = Packed::new(&set).expect("packs");
            if i == 3 {
                set = Packed::new(&rrset(owner, RData::NS(NS(name("ns.example.net.")))))
                    .expect("packs");
            }
            let before = loaded
                .node(&name(owner))
                .and_then(|n| n.get(set.record_type()).cloned());
            let replaced = loaded.insert_loading(name(owner), set.clone());
            assert_eq!(replaced.is_some(), before.is_some(), "{owner}");
            inserted.insert_packed(name(owner), set);
        }
        let listing = |v: &View| {
            let mut nodes: Vec<String> = v
                .nodes
                .iter()
                .map(|(n, node)| format!("{n} {:?}", node.types().collect::<Vec<_>>()))
                .collect();
            let mut children: Vec<String> =
                v.children.iter().map(|(n, c)| format!("{n} {c}")).collect();
            nodes.sort();
            children.sort();
            (nodes, children, v.has_cuts, v.has_dnames)
        };
        assert_eq!(listing(&loaded), listing(&inserted));
        assert_eq!(listing(&loaded).1.len(), 4, "{:?}", listing(&loaded));
    }

    #[test]
    fn empty_non_terminals_exist_as_empty_nodes() {
        let v = view();
        assert!(v.node(&name("c.example.com.")).is_some_and(Node::is_empty));
        assert!(
            v.node(&name("B.C.example.com."))
                .is_some_and(Node::is_empty)
        );
        assert!(
            v.node(&name("a.b.c.example.com."))
                .is_some_and(|n| !n.is_empty())
        );
        assert!(v.node(&name("x.example.com.")).is_none());
        assert_eq!(v.names().count(), 4);
    }

    #[test]
    fn a_removed_name_takes_the_empty_non_terminals_only_it_needed() {
        let mut base = view();
        base.insert(rrset("x.c.example.com.", RData::A(A(Ipv4Addr::LOCALHOST))));
        let base = base;
        let gone = |v: &View, n: &str| v.node(&name(n)).is_none();
        // a.b.c goes, and b.c with it; c stays for x.c.
        let v = base.with_changes(&[(name("a.b.c.example.com."), RecordType::A, None)]);
        assert!(gone(&v, "a.b.c.example.com.") && gone(&v, "b.c.example.com."));
        assert!(v.node(&name("c.example.com.")).is_some_and(Node::is_empty));
        // Then x.c goes, and c with it; the apex stays.
        let v = v.with_changes(&[(name("X.C.example.com."), RecordType::A, None)]);
        assert!(gone(&v, "x.c.example.com.") && gone(&v, "c.example.com."));
        assert_eq!(v.names().count(), 1);
        // Added again, the names are counted again: removing one keeps the other's parent.
        let v = v.with_changes(&[
            (
                name("p.q.example.com."),
                RecordType::A,
                Some(rrset("p.q.example.com.", RData::A(A(Ipv4Addr::LOCALHOST)))),
            ),
            (
                name("r.q.example.com."),
                RecordType::A,
                Some(rrset("r.q.example.com.", RData::A(A(Ipv4Addr::LOCALHOST)))),
            ),
        ]);
        let v = v.with_changes(&[(name("p.q.example.com."), RecordType::A, None)]);
        assert!(gone(&v, "p.q.example.com.") && !gone(&v, "q.example.com."));
        // A name with data keeps its place when a name below it goes.
        let v = v.with_changes(&[
            (
                name("q.example.com."),
                RecordType::A,
                Some(rrset("q.example.com.", RData::A(A(Ipv4Addr::LOCALHOST)))),
            ),
            (name("r.q.example.com."), RecordType::A, None),
        ]);
        assert!(gone(&v, "r.q.example.com.") && !gone(&v, "q.example.com."));
        // The base view is untouched throughout.
        assert_eq!(base.names().count(), 5);
    }

    #[test]
    fn cut_is_the_topmost_delegation() {
        let mut v = view();
        assert!(v.cut(&name("a.b.c.example.com.")).is_none());
        v.insert(rrset(
            "c.example.com.",
            RData::NS(NS(name("ns.c.example.com."))),
        ));
        v.insert(rrset("b.c.example.com.", RData::NS(NS(name("ns.other.")))));
        let (node, ns) = v.cut(&name("a.b.c.example.com.")).expect("cut");
        let (owner, at) = v.entry(&name("C.example.com.")).expect("c");
        assert_eq!(*owner, name("c.example.com."));
        assert!(std::ptr::eq(node, at) && ns.ptr_eq(at.get(RecordType::NS).expect("NS")));
        match v.redirection(&name("x.a.b.c.example.com.")) {
            Some(Redirection::Cut(owner, _, _)) => assert_eq!(*owner, name("c.example.com.")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn overlay_cname_clears_the_name_and_data_clears_a_cname() {
        let mut base = view();
        base.insert(rrset(
            "w.example.com.",
            RData::CNAME(CNAME(name("x.example.com."))),
        ));
        let overlay = [
            rrset("w.example.com.", RData::A(A(Ipv4Addr::LOCALHOST))),
            rrset(
                "a.b.c.example.com.",
                RData::CNAME(CNAME(name("w.example.com."))),
            ),
        ];
        let overlay: Vec<OwnedRrset> = overlay
            .iter()
            .map(|set| (set[0].name.clone(), Packed::new(set).expect("records")))
            .collect();
        let base = Arc::new(base);
        let v = View::with_overlay(&base, &overlay);
        let w = v.node(&name("w.example.com.")).expect("w");
        assert_eq!(w.types().collect::<Vec<_>>(), vec![RecordType::A]);
        let abc = v.node(&name("a.b.c.example.com.")).expect("abc");
        assert_eq!(abc.types().collect::<Vec<_>>(), vec![RecordType::CNAME]);
        // The base is untouched.
        let w = base.node(&name("w.example.com.")).expect("w");
        assert_eq!(w.types().collect::<Vec<_>>(), vec![RecordType::CNAME]);
        // The overlay view holds the two names it touches, and sees all the base's others.
        assert_eq!(v.own_names(), 2);
        assert_eq!(v.names().count(), base.names().count());
        assert!(v.node(&name("c.example.com.")).is_some_and(Node::is_empty));
    }
}
