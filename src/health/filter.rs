//! What answers do with the health of addresses: a pure function of (zone, health table,
//! line, question), applied once between the zone lookup and the response.
//!
//! This module owns the rules: a down address is left out of every A/AAAA RRset holding
//! it, on every line, unless every address of that RRset is down; then the line answers
//! as the lines of its `all_down` chain, in order, and the last of them (or the line
//! itself without a chain) answers with its addresses anyway. RRsets holding a watched
//! address, and every answer taken from another line, get their TTL capped. It does not
//! run checks ([`super::monitor`]) nor decide the ECS scope (health changes the addresses
//! a line gets, never which line a client is in).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::weights::{ClientKey, Weights};
use crate::lines::LineId;
use crate::zone::{Answer, Zone};

/// The health of every watched address at one moment, with the rules that apply it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HealthTable {
    /// Every watched address and whether it is up.
    up: HashMap<IpAddr, bool>,
    ttl_cap: u32,
    all_down: BTreeMap<LineId, Vec<LineId>>,
    weights: Weights,
}

/// Whether an answer was chosen per client subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chosen {
    /// The same for every client of the line.
    ForLine,
    /// Chosen by weight for the client's subnet (or, without a client, not chosen yet:
    /// such an answer must not be prepared for the whole line).
    ForSubnet,
}

impl HealthTable {
    pub(crate) fn new(
        up: HashMap<IpAddr, bool>,
        ttl_cap: u32,
        all_down: BTreeMap<LineId, Vec<LineId>>,
        weights: Weights,
    ) -> HealthTable {
        HealthTable {
            up,
            ttl_cap,
            all_down,
            weights,
        }
    }

    /// Whether `address` is watched and down.
    pub(crate) fn is_down(&self, address: IpAddr) -> bool {
        self.up.get(&address) == Some(&false)
    }

    /// The zone's answer to (`qname`, `qtype`) on `line`, with health applied, and the
    /// weighted choice for `client` (none made without one: then the answer says
    /// [`Chosen::ForSubnet`] and is not to be served).
    pub(crate) fn lookup(
        &self,
        zone: &Zone,
        line: LineId,
        qname: &Name,
        qtype: RecordType,
        client: Option<ClientKey>,
    ) -> (Answer, Chosen) {
        let mut answer = zone.lookup(line, qname, qtype);
        if self.has_all_down(&answer.answers) {
            let chain = self.all_down.get(&line).map_or(&[][..], Vec::as_slice);
            for (i, &instead) in chain.iter().enumerate() {
                let other = zone.lookup(instead, qname, qtype);
                let last = i + 1 == chain.len();
                if last || !self.has_all_down(&other.answers) {
                    answer = other;
                    // The answer is this line's only while its addresses are down.
                    cap(&mut answer.answers, self.ttl_cap);
                    break;
                }
            }
        }
        self.filter(&mut answer.answers);
        self.filter(&mut answer.additional);
        let chosen = self.choose(&mut answer.answers, client);
        (answer, chosen)
    }

    /// Keeps, of each A/AAAA RRset of `records` holding a weighted address, the addresses
    /// chosen for `client`.
    fn choose(&self, records: &mut Vec<Record>, client: Option<ClientKey>) -> Chosen {
        if self.weights.is_empty() {
            return Chosen::ForLine;
        }
        let mut chosen = Chosen::ForLine;
        let mut start = 0;
        while start < records.len() {
            let end = rrset_end(records, start);
            let addresses: Vec<IpAddr> = records[start..end].iter().filter_map(address).collect();
            let group = (addresses.len() == end - start)
                .then(|| self.weights.group_of(addresses.iter().copied()))
                .flatten();
            let (Some(group), Some(client)) = (group, client) else {
                chosen = if group.is_some() {
                    Chosen::ForSubnet
                } else {
                    chosen
                };
                start = end;
                continue;
            };
            chosen = Chosen::ForSubnet;
            let keep = self.weights.choose(group, &addresses, client);
            let mut kept = start;
            for (i, keep) in keep.into_iter().enumerate() {
                if keep {
                    records.swap(kept, start + i);
                    kept += 1;
                }
            }
            records.drain(kept..end);
            start = kept;
        }
        chosen
    }

    /// Leaves the down addresses out of each A/AAAA RRset of `records` that has an up one,
    /// and caps the TTL of each RRset holding a watched address.
    fn filter(&self, records: &mut Vec<Record>) {
        let mut start = 0;
        while start < records.len() {
            let end = rrset_end(records, start);
            let set = &mut records[start..end];
            let watched = set
                .iter()
                .any(|r| address(r).is_some_and(|a| self.up.contains_key(&a)));
            if !watched {
                start = end;
                continue;
            }
            cap(set, self.ttl_cap);
            let down = set
                .iter()
                .filter(|r| address(r).is_some_and(|a| self.is_down(a)))
                .count();
            if down == 0 || down == set.len() {
                start = end;
                continue;
            }
            let mut i = start;
            let mut kept_end = end;
            while i < kept_end {
                if address(&records[i]).is_some_and(|a| self.is_down(a)) {
                    records.remove(i);
                    kept_end -= 1;
                } else {
                    i += 1;
                }
            }
            start = kept_end;
        }
    }

    /// Whether some A/AAAA RRset of `records` has every address down.
    fn has_all_down(&self, records: &[Record]) -> bool {
        let mut start = 0;
        while start < records.len() {
            let end = rrset_end(records, start);
            let set = &records[start..end];
            if address(&set[0]).is_some()
                && set
                    .iter()
                    .all(|r| address(r).is_some_and(|a| self.is_down(a)))
            {
                return true;
            }
            start = end;
        }
        false
    }
}

/// The end of the RRset starting at `start`: records of one owner and type are adjacent
/// in an answer (the lookup pushes whole RRsets).
fn rrset_end(records: &[Record], start: usize) -> usize {
    let first = &records[start];
    let kind = first.record_type();
    records[start..]
        .iter()
        .position(|r| r.record_type() != kind || r.name != first.name)
        .map_or(records.len(), |n| start + n)
}

fn address(record: &Record) -> Option<IpAddr> {
    match &record.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

fn cap(records: &mut [Record], ttl_cap: u32) {
    for r in records {
        r.ttl = r.ttl.min(ttl_cap);
    }
}
