//! A zone's revisions: which state of a zone an answer was prepared from, and which RRsets
//! changed since, so that a cache keeps the answers a dynamic update did not touch.
//!
//! Every zone loaded from its files starts a new lineage (a number no other load in the
//! process has); every change made in place of a reload ([`super::edit`]) is the next
//! revision of that lineage and remembers the (name, type) pairs it changed. A prepared
//! answer carries the [`Stamp`] of the zone it was prepared from; [`History::unchanged`]
//! then says whether the revisions since can have changed it.
//!
//! An answer that depends on nothing but the RRsets of its own name and type (see
//! [`Dependence`]) stays valid while no revision changed that name's RRset of that type, its
//! CNAME, or a delegation or DNAME anywhere (which can take any name out of the zone's
//! hands). Every other answer — negative ones hold the SOA, whose serial every update
//! bumps; CNAME chains, additional sections and wildcards read other names — is valid only
//! in the revision it was prepared in.
//!
//! This module does not prepare or keep answers ([`crate::dns::cache`] does).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::rr::{Name, RecordType};

/// How many revisions a zone remembers the changes of: an answer older than that is
/// prepared again. At 100 updates a second, a third of a second.
const REMEMBERED: usize = 32;

/// Lineages and layouts: each number is given once in the process's life.
static IDS: AtomicU64 = AtomicU64::new(1);

/// A number no other lineage or layout of the process has.
pub(crate) fn unique_id() -> u64 {
    IDS.fetch_add(1, Ordering::Relaxed)
}

/// Which state of a zone something was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    lineage: u64,
    revision: u64,
}

/// What an answer read of its zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dependence {
    /// Only the RRset of the question's name and type (or the name's CNAME, or for ANY
    /// the name's RRsets), below no zone cut and no DNAME.
    OwnRrset,
    /// Anything else of the zone.
    Zone,
}

/// The (name, type) pairs one revision changed, names in wire form, lower case.
#[derive(Debug)]
struct Changed {
    rrsets: Box<[(Box<[u8]>, RecordType)]>,
    /// A delegation or a DNAME was added, changed or removed: any name's answer may differ.
    redirects: bool,
}

/// A zone's lineage, revision and the changes of its last revisions.
#[derive(Debug, Clone)]
pub(crate) struct History {
    stamp: Stamp,
    /// The changes that made the last revisions, the newest last: the last one made
    /// `stamp.revision`.
    recent: Vec<Arc<Changed>>,
}

impl History {
    /// The history of a zone just loaded from its files: a new lineage.
    pub(crate) fn loaded() -> History {
        History {
            stamp: Stamp {
                lineage: unique_id(),
                revision: 0,
            },
            recent: Vec::new(),
        }
    }

    /// The state this history is at.
    #[inline]
    pub(crate) fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// The next revision: the zone whose apex is `origin` with the RRsets `changed` (name
    /// and type) changed.
    pub(crate) fn next<'a>(
        &self,
        origin: &Name,
        changed: impl IntoIterator<Item = (&'a Name, RecordType)>,
    ) -> History {
        let mut redirects = false;
        let rrsets = changed
            .into_iter()
            .map(|(name, rtype)| {
                redirects |=
                    rtype == RecordType::DNAME || (rtype == RecordType::NS && name != origin);
                (wire_lower(name), rtype)
            })
            .collect();
        let skip = (self.recent.len() + 1).saturating_sub(REMEMBERED);
        let mut recent: Vec<Arc<Changed>> = self.recent[skip..].to_vec();
        recent.push(Arc::new(Changed { rrsets, redirects }));
        History {
            stamp: Stamp {
                lineage: self.stamp.lineage,
                revision: self.stamp.revision + 1,
            },
            recent,
        }
    }

    /// Whether an answer to (`name`, `qtype`) prepared at `since`, which read `read` of the
    /// zone, is still the answer at this state. `name` is in wire form, lower case.
    pub(crate) fn unchanged(
        &self,
        since: Stamp,
        name: &[u8],
        qtype: RecordType,
        read: Dependence,
    ) -> bool {
        if since == self.stamp {
            return true;
        }
        if since.lineage != self.stamp.lineage
            || since.revision > self.stamp.revision
            || read == Dependence::Zone
        {
            return false;
        }
        let behind = self.stamp.revision - since.revision;
        let Some(first) = self.recent.len().checked_sub(behind as usize) else {
            return false;
        };
        self.recent[first..].iter().all(|changed| {
            !changed.redirects
                && !changed.rrsets.iter().any(|(owner, rtype)| {
                    **owner == *name
                        && (*rtype == qtype
                            || *rtype == RecordType::CNAME
                            || qtype == RecordType::ANY)
                })
        })
    }
}

/// `name` in wire form (uncompressed), lower case: the form the answer cache keys on.
fn wire_lower(name: &Name) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    #[test]
    fn an_answer_survives_the_revisions_that_changed_other_rrsets() {
        let origin = name("example.com.");
        let www = name("WWW.example.com.");
        let start = History::loaded();
        let at = start.stamp();
        let key = &*wire_lower(&www);
        assert_eq!(key, b"\x03www\x07example\x03com\x00");
        let other = start.next(
            &origin,
            [(&name("_acme-challenge.example.com."), RecordType::TXT)],
        );
        let txt_at_www = other.next(&origin, [(&www, RecordType::TXT)]);
        assert!(other.unchanged(at, key, RecordType::A, Dependence::OwnRrset));
        assert!(txt_at_www.unchanged(at, key, RecordType::A, Dependence::OwnRrset));
        // The answers that read the zone, or this RRset, or all of the name's, are not.
        assert!(!other.unchanged(at, key, RecordType::A, Dependence::Zone));
        assert!(!txt_at_www.unchanged(at, key, RecordType::TXT, Dependence::OwnRrset));
        assert!(!txt_at_www.unchanged(at, key, RecordType::ANY, Dependence::OwnRrset));
        let cname = start.next(&origin, [(&www, RecordType::CNAME)]);
        assert!(!cname.unchanged(at, key, RecordType::A, Dependence::OwnRrset));
        // A delegation or a DNAME anywhere else may take the name out of the zone.
        let cut = start.next(&origin, [(&name("sub.example.com."), RecordType::NS)]);
        assert!(!cut.unchanged(at, key, RecordType::A, Dependence::OwnRrset));
        let apex_ns = start.next(&origin, [(&origin, RecordType::NS)]);
        assert!(apex_ns.unchanged(at, key, RecordType::A, Dependence::OwnRrset));
        // Another lineage (the file reloaded) shares nothing.
        assert!(!History::loaded().unchanged(at, key, RecordType::A, Dependence::OwnRrset));
    }

    #[test]
    fn only_the_last_revisions_are_remembered() {
        let origin = name("example.com.");
        let start = History::loaded();
        let key = &*wire_lower(&name("www.example.com."));
        let mut history = start.clone();
        for i in 0..REMEMBERED {
            history = history.next(
                &origin,
                [(&name(&format!("n{i}.example.com.")), RecordType::TXT)],
            );
        }
        assert!(history.unchanged(start.stamp(), key, RecordType::A, Dependence::OwnRrset));
        let one_more = history.next(&origin, []);
        assert_eq!(one_more.recent.len(), REMEMBERED);
        assert!(!one_more.unchanged(start.stamp(), key, RecordType::A, Dependence::OwnRrset));
        assert!(one_more.unchanged(history.stamp(), key, RecordType::A, Dependence::OwnRrset));
    }
}
