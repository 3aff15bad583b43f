//! The line map compiler: rules and databases swept into sorted ranges.
//!
//! This module owns the sweep over every database network and rule prefix in address
//! order ([`Sweep`]), the per-field index of which rule names a code first
//! ([`GeoMatcher`]), and the order check on the databases' networks. It does not search
//! the map ([`super::map`]) or read databases ([`crate::geoip`]).

use std::collections::HashMap;
use std::iter::Peekable;

use ipnet::IpNet;

use super::map::{Addr, Ranges};
use super::rule::mapped_v4;
use super::{LineId, LineMap, LineRule};
use crate::geoip::{GeoDb, GeoIpError, GeoRecord, Networks, Subdivision};

// In the IPv6 map the IPv4-mapped block is never consulted (those clients are classified
// by the IPv4 map), so it is kept a range of its own: merged with a neighbour, it would
// widen the neighbour's scope over clients whose line the IPv4 map decides.
pub(super) const MAPPED_START: u128 = 0xffff_0000_0000;
pub(super) const MAPPED_END: u128 = 0xffff_ffff_ffff;

impl LineMap {
    /// Compiles `rules` over the databases' networks. Rules are tried in order and the first
    /// that matches an address wins; an address no rule matches is in `default`. A rule
    /// matches an address in one of its CIDRs, or whose database record has one of its
    /// countries or continents. With several databases, each record field comes from the
    /// first database that has it for the address.
    pub fn compile(
        rules: &[LineRule],
        default: LineId,
        dbs: &[&GeoDb],
    ) -> Result<LineMap, GeoIpError> {
        let geo = GeoMatcher::new(rules);
        let mut walks = dbs
            .iter()
            .map(|db| db.iter().map(Iterator::peekable))
            .collect::<Result<Vec<_>, _>>()?;

        let (mut cidr4, mut cidr6) = (Vec::new(), Vec::new());
        for (i, rule) in rules.iter().enumerate() {
            for net in &rule.cidrs {
                match net {
                    IpNet::V4(n) => {
                        push_events(&mut cidr4, n.network().into(), n.broadcast().into(), i)
                    }
                    IpNet::V6(n) => {
                        push_events(&mut cidr6, n.network().into(), n.broadcast().into(), i);
                        if let Some(n4) = mapped_v4(n) {
                            push_events(&mut cidr4, n4.network().into(), n4.broadcast().into(), i);
                        }
                    }
                }
            }
        }
        cidr4.sort_unstable_by_key(|e| e.at);
        cidr6.sort_unstable_by_key(|e| e.at);

        let sweep = Sweep {
            rules,
            default,
            geo: &geo,
            dbs,
        };
        // Each database walk yields its IPv4 networks first: the IPv4 sweep stops at the
        // first IPv6 one, where the IPv6 sweep picks up.
        let v4 = sweep.run::<u32>(&mut walks, &cidr4, &[])?;
        let v6 = sweep.run::<u128>(&mut walks, &cidr6, &[MAPPED_START, MAPPED_END + 1])?;
        Ok(LineMap { v4, v6 })
    }
}

/// A CIDR of rule `rule` starting (`delta` 1) or ending (-1, at the address after it).
#[derive(Debug, Clone, Copy)]
struct Event<A> {
    at: A,
    rule: usize,
    delta: i32,
}

fn push_events<A: Addr>(events: &mut Vec<Event<A>>, first: A, last: A, rule: usize) {
    events.push(Event {
        at: first,
        rule,
        delta: 1,
    });
    if let Some(after) = last.succ() {
        events.push(Event {
            at: after,
            rule,
            delta: -1,
        });
    }
}

const NO_RULE: usize = usize::MAX;

/// For each country, continent, subdivision and ASN, the first rule naming it.
struct GeoMatcher {
    country: Vec<usize>,
    continent: Vec<usize>,
    subdivision: HashMap<Subdivision, usize>,
    asn: HashMap<u32, usize>,
}

fn code_index(code: [u8; 2]) -> Option<usize> {
    let [a, b] = code;
    (a.is_ascii_uppercase() && b.is_ascii_uppercase())
        .then(|| usize::from(a - b'A') * 26 + usize::from(b - b'A'))
}

impl GeoMatcher {
    fn new(rules: &[LineRule]) -> GeoMatcher {
        let mut m = GeoMatcher {
            country: vec![NO_RULE; 26 * 26],
            continent: vec![NO_RULE; 26 * 26],
            subdivision: HashMap::new(),
            asn: HashMap::new(),
        };
        for (i, rule) in rules.iter().enumerate() {
            for &c in &rule.countries {
                if let Some(k) = code_index(c) {
                    m.country[k] = m.country[k].min(i);
                }
            }
            for &c in &rule.continents {
                if let Some(k) = code_index(c) {
                    m.continent[k] = m.continent[k].min(i);
                }
            }
            for &s in &rule.subdivisions {
                m.subdivision.entry(s).or_insert(i);
            }
            for &a in &rule.asns {
                m.asn.entry(a).or_insert(i);
            }
        }
        m
    }

    fn first(&self, rec: &GeoRecord) -> usize {
        let by = |table: &[usize], code: Option<[u8; 2]>| {
            code.and_then(code_index).map_or(NO_RULE, |k| table[k])
        };
        let mut best = by(&self.country, rec.country).min(by(&self.continent, rec.continent));
        if !self.subdivision.is_empty() {
            for s in rec.subdivisions() {
                best = best.min(self.subdivision.get(&s).copied().unwrap_or(NO_RULE));
            }
        }
        if let Some(a) = rec.asn {
            best = best.min(self.asn.get(&a).copied().unwrap_or(NO_RULE));
        }
        best
    }
}

struct Sweep<'a> {
    rules: &'a [LineRule],
    default: LineId,
    geo: &'a GeoMatcher,
    dbs: &'a [&'a GeoDb],
}

/// One database network of the family being swept: first and last address, record.
type Span<A> = (A, A, GeoRecord);

impl Sweep<'_> {
    /// Walks the elementary intervals between every boundary of every database network,
    /// CIDR and `forced` address, in address order, deciding each interval's line and
    /// merging it into the previous range when the line is the same (and the interval does
    /// not start at a forced address).
    fn run<A: Addr>(
        &self,
        walks: &mut [Peekable<Networks<'_>>],
        cidrs: &[Event<A>],
        forced: &[A],
    ) -> Result<Ranges<A>, GeoIpError> {
        let mut current: Vec<Option<Span<A>>> = Vec::with_capacity(walks.len());
        for (i, walk) in walks.iter_mut().enumerate() {
            // Leftovers of the other family would be out of order; the walks never have
            // any, but a stray one must not stall the sweep.
            while walk
                .next_if(|item| matches!(item, Ok((net, _)) if A::bounds(net).is_none()))
                .is_some()
            {}
            current.push(self.advance(i, walk, None)?);
        }
        let mut counts = vec![0i32; self.rules.len()];
        let mut cidr_first = NO_RULE;
        let mut next_event = 0;
        let mut out = Ranges {
            starts: Vec::new(),
            lines: Vec::new(),
        };
        let mut at = A::ZERO;
        loop {
            let mut record = GeoRecord::default();
            for (i, walk) in walks.iter_mut().enumerate() {
                while let Some((_, last, _)) = current[i]
                    && last < at
                {
                    current[i] = self.advance(i, walk, Some(last))?;
                }
                if let Some((first, _, rec)) = current[i]
                    && first <= at
                {
                    record.fill_from(&rec);
                }
            }
            let mut changed = false;
            while let Some(e) = cidrs.get(next_event)
                && e.at <= at
            {
                counts[e.rule] += e.delta;
                next_event += 1;
                changed = true;
            }
            if changed {
                cidr_first = counts.iter().position(|&c| c > 0).unwrap_or(NO_RULE);
            }
            let winner = cidr_first.min(self.geo.first(&record));
            let line = self.rules.get(winner).map_or(self.default, |r| r.line);
            if out.lines.last() != Some(&line) || forced.contains(&at) {
                out.starts.push(at);
                out.lines.push(line);
            }

            let mut next: Option<A> = None;
            let mut consider = |b: Option<A>| {
                if let Some(b) = b
                    && b > at
                {
                    next = Some(next.map_or(b, |n| n.min(b)));
                }
            };
            for &(first, last, _) in current.iter().flatten() {
                consider(if first > at { Some(first) } else { last.succ() });
            }
            consider(cidrs.get(next_event).map(|e| e.at));
            for &f in forced {
                consider(Some(f));
            }
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        out.starts.shrink_to_fit();
        out.lines.shrink_to_fit();
        Ok(out)
    }

    /// The next network of database `i` in this family, checked to follow `after`.
    fn advance<A: Addr>(
        &self,
        i: usize,
        walk: &mut Peekable<Networks<'_>>,
        after: Option<A>,
    ) -> Result<Option<Span<A>>, GeoIpError> {
        let Some(item) =
            walk.next_if(|item| !matches!(item, Ok((net, _)) if A::bounds(net).is_none()))
        else {
            return Ok(None);
        };
        let (net, record) = item?;
        let Some((first, last)) = A::bounds(&net) else {
            return Ok(None);
        };
        if after.is_some_and(|a| first <= a) {
            return Err(GeoIpError::Check {
                path: self.dbs[i].path().to_path_buf(),
                reason: format!("network {net} overlaps or precedes the one before it"),
            });
        }
        Ok(Some((first, last, record)))
    }
}
