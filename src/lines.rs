//! Lines: which view of the zones a client gets.
//!
//! This module owns the line rules declared in the configuration and their compiled form,
//! the [`LineMap`]: every IPv4 and IPv6 address range mapped to one line, adjacent ranges
//! of one line merged. Classifying a client is one binary search in it, and the range found
//! gives the EDNS Client Subnet scope: the widest prefix around the client in which every
//! address falls in the same line. [`Classifier`] bundles the map with the databases it was
//! compiled from, and [`ClassifierHandle`] is the swappable snapshot queries read.
//!
//! It does not read databases (that is [`crate::geoip`]), does not decide when to reload,
//! and does not know about DNS.

use std::collections::HashMap;
use std::fmt;
use std::iter::Peekable;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::{Config, LineConfig};
use crate::geoip::{Field, FieldSet, GeoDb, GeoIpError, GeoRecord, Networks, Subdivision};

/// A line's index in match order; `default` is always the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineId(pub u8);

impl LineId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The declared line names in match order, `default` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSet {
    names: Vec<String>,
}

impl LineSet {
    /// `names` as [`crate::config::Config::line_names`] gives them: `default` last.
    pub fn new(names: Vec<String>) -> LineSet {
        LineSet { names }
    }

    pub fn default_line(&self) -> LineId {
        LineId((self.names.len() - 1) as u8)
    }

    pub fn id(&self, name: &str) -> Option<LineId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| LineId(i as u8))
    }

    pub fn name(&self, id: LineId) -> &str {
        &self.names[id.index()]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn ids(&self) -> impl Iterator<Item = LineId> + '_ {
        (0..self.names.len()).map(|i| LineId(i as u8))
    }
}

/// One line's matching conditions, compiled from a [`LineConfig`]. Codes are upper-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRule {
    pub line: LineId,
    /// ISO 3166-1 alpha-2.
    pub countries: Vec<[u8; 2]>,
    /// AF AN AS EU NA OC SA.
    pub continents: Vec<[u8; 2]>,
    /// ISO 3166-2 (`CN-GD`).
    pub subdivisions: Vec<Subdivision>,
    /// Autonomous system numbers.
    pub asns: Vec<u32>,
    /// IPv4 and IPv6 prefixes. An IPv4-mapped IPv6 prefix (`::ffff:1.2.3.0/120`) also
    /// matches the IPv4 addresses it maps, since clients are classified by their IPv4 form.
    pub cidrs: Vec<IpNet>,
}

impl LineRule {
    /// One rule per declared line, in declaration order (which is match order).
    pub fn from_config(lines: &[LineConfig], set: &LineSet) -> Vec<LineRule> {
        let two = |s: &String| -> Option<[u8; 2]> {
            match s.as_bytes() {
                [a, b] => Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
                _ => None,
            }
        };
        lines
            .iter()
            .filter_map(|l| {
                // The set is built from the same configuration; a line missing from it
                // would be a bug in the caller, and matching nothing is the safe outcome.
                debug_assert!(set.id(&l.name).is_some(), "line {} not in set", l.name);
                Some(LineRule {
                    line: set.id(&l.name)?,
                    countries: l.countries.iter().filter_map(two).collect(),
                    continents: l.continents.iter().filter_map(two).collect(),
                    subdivisions: l
                        .subdivisions
                        .iter()
                        .filter_map(|s| Subdivision::parse(s))
                        .collect(),
                    asns: l.asns.clone(),
                    cidrs: l.cidrs.iter().map(IpNet::trunc).collect(),
                })
            })
            .collect()
    }

    /// The record fields this rule matches on.
    pub fn needs(&self) -> FieldSet {
        let mut s = FieldSet::default();
        if !self.countries.is_empty() {
            s = s.with(Field::Country);
        }
        if !self.continents.is_empty() {
            s = s.with(Field::Continent);
        }
        if !self.subdivisions.is_empty() {
            s = s.with(Field::Subdivision);
        }
        if !self.asns.is_empty() {
            s = s.with(Field::Asn);
        }
        s
    }

    /// The first of the rule's prefixes containing `addr`, under the same reading of
    /// IPv4-mapped addresses and prefixes as [`LineMap::classify`].
    pub fn cidr_containing(&self, addr: IpAddr) -> Option<IpNet> {
        let (v4, v6) = match addr {
            IpAddr::V4(a) => (Some(a), None),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a4) => (Some(a4), None),
                None => (None, Some(a)),
            },
        };
        self.cidrs.iter().copied().find(|net| match (v4, v6, net) {
            (Some(a), _, IpNet::V4(n)) => n.contains(&a),
            (Some(a), _, IpNet::V6(n)) => mapped_v4(n).is_some_and(|n4| n4.contains(&a)),
            (_, Some(a), IpNet::V6(n)) => n.contains(&a),
            _ => false,
        })
    }
}

/// The IPv4 prefix an IPv4-mapped IPv6 prefix stands for. Wider IPv6 prefixes (`::/0`)
/// stand for IPv6 clients only: a line for "all IPv6" must not swallow IPv4.
fn mapped_v4(net: &Ipv6Net) -> Option<Ipv4Net> {
    if net.prefix_len() < 96 || !V4_MAPPED.contains(net) {
        return None;
    }
    let v4 = net.network().to_ipv4_mapped()?;
    Ipv4Net::new(v4, net.prefix_len() - 96).ok()
}

const V4_MAPPED: Ipv6Net = match Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96) {
    Ok(n) => n,
    Err(_) => panic!("valid prefix"),
};

/// What [`LineMap::classify`] decides for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub line: LineId,
    /// The length of the widest prefix around the address in which every address is in
    /// `line`: the ECS scope prefix length for an answer that depends on the line.
    pub scope: u8,
}

/// Every IPv4 and IPv6 address mapped to its line, as sorted ranges.
pub struct LineMap {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

impl fmt::Debug for LineMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineMap")
            .field("v4_ranges", &self.v4.starts.len())
            .field("v6_ranges", &self.v6.starts.len())
            .finish()
    }
}

// In the IPv6 map the IPv4-mapped block is never consulted (those clients are classified
// by the IPv4 map), so it is kept a range of its own: merged with a neighbour, it would
// widen the neighbour's scope over clients whose line the IPv4 map decides.
const MAPPED_START: u128 = 0xffff_0000_0000;
const MAPPED_END: u128 = 0xffff_ffff_ffff;

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

    /// The line of `addr` and the widest prefix around it that is entirely in that line.
    /// An IPv4-mapped address (`::ffff:a.b.c.d`) is classified as its IPv4 address, with
    /// the scope counted in IPv6 bits (96 more).
    pub fn classify(&self, addr: IpAddr) -> Classification {
        match addr {
            IpAddr::V4(a) => self.v4.find(a.into()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a4) => {
                    let c = self.v4.find(a4.into());
                    Classification {
                        line: c.line,
                        scope: c.scope + 96,
                    }
                }
                None => self.v6.find(a.into()),
            },
        }
    }

    /// The number of IPv4 and IPv6 ranges.
    pub fn range_count(&self) -> (usize, usize) {
        (self.v4.starts.len(), self.v6.starts.len())
    }
}

/// An unsigned address of one family, as the sweep and the search need it.
trait Addr: Copy + Ord + fmt::Debug {
    const ZERO: Self;
    #[cfg(test)]
    const MAX: Self;
    fn succ(self) -> Option<Self>;
    fn pred(self) -> Option<Self>;
    /// The number of leading bits `self` and `other` share.
    fn common_prefix(self, other: Self) -> u32;
    /// First and last address of `net` if it is of this family.
    fn bounds(net: &IpNet) -> Option<(Self, Self)>;
}

impl Addr for u32 {
    const ZERO: u32 = 0;
    #[cfg(test)]
    const MAX: u32 = u32::MAX;
    fn succ(self) -> Option<u32> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<u32> {
        self.checked_sub(1)
    }
    fn common_prefix(self, other: u32) -> u32 {
        (self ^ other).leading_zeros()
    }
    fn bounds(net: &IpNet) -> Option<(u32, u32)> {
        match net {
            IpNet::V4(n) => Some((n.network().into(), n.broadcast().into())),
            IpNet::V6(_) => None,
        }
    }
}

impl Addr for u128 {
    const ZERO: u128 = 0;
    #[cfg(test)]
    const MAX: u128 = u128::MAX;
    fn succ(self) -> Option<u128> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<u128> {
        self.checked_sub(1)
    }
    fn common_prefix(self, other: u128) -> u32 {
        (self ^ other).leading_zeros()
    }
    fn bounds(net: &IpNet) -> Option<(u128, u128)> {
        match net {
            IpNet::V6(n) => Some((n.network().into(), n.broadcast().into())),
            IpNet::V4(_) => None,
        }
    }
}

/// Range `i` runs from `starts[i]` to the address before `starts[i + 1]` (or the last
/// address). `starts[0]` is zero, so the ranges cover the whole space.
struct Ranges<A> {
    starts: Vec<A>,
    lines: Vec<LineId>,
}

impl<A: Addr> Ranges<A> {
    fn find(&self, a: A) -> Classification {
        // starts[0] is zero, so at least one start is <= a.
        let i = self.starts.partition_point(|&s| s <= a).saturating_sub(1);
        let lo = self.starts[i];
        let hi = self.starts.get(i + 1).and_then(|&next| next.pred());
        // The widest prefix around `a` inside [lo, hi] is the shortest one that leaves out
        // the neighbours lo - 1 and hi + 1: one bit longer than what `a` shares with each.
        let below = lo.pred().map_or(0, |b| a.common_prefix(b) + 1);
        let above = hi
            .and_then(Addr::succ)
            .map_or(0, |b| a.common_prefix(b) + 1);
        Classification {
            line: self.lines[i],
            scope: below.max(above) as u8,
        }
    }

    /// Every range as (first, last, line); the tests check scopes against it.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (A, A, LineId)> + '_ {
        self.starts.iter().enumerate().map(|(i, &lo)| {
            let hi = self
                .starts
                .get(i + 1)
                .and_then(|&next| next.pred())
                .unwrap_or(A::MAX);
            (lo, hi, self.lines[i])
        })
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

/// What the hot path needs to classify a client: the compiled map, and the rules and
/// databases it was compiled from (kept for explanations, summaries and recompiling).
pub struct Classifier {
    lines: LineSet,
    rules: Vec<LineRule>,
    dbs: Vec<Arc<GeoDb>>,
    map: LineMap,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("lines", &self.lines)
            .field("databases", &self.dbs)
            .field("map", &self.map)
            .finish()
    }
}

/// Why an address is in its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Rule `rule` (an index into [`Classifier::rules`]) lists a prefix containing the address.
    Cidr { rule: usize, cidr: IpNet },
    /// Rule `rule` lists the address's country.
    Country { rule: usize, country: [u8; 2] },
    /// Rule `rule` lists the address's continent.
    Continent { rule: usize, continent: [u8; 2] },
    /// Rule `rule` lists one of the address's subdivisions.
    Subdivision {
        rule: usize,
        subdivision: Subdivision,
    },
    /// Rule `rule` lists the address's autonomous system.
    Asn { rule: usize, asn: u32 },
    /// No rule matches.
    Default,
}

/// [`Classifier::explain`]'s answer, for `geoline lookup` and the admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub classification: Classification,
    pub decision: Decision,
    /// Each database's network and record for the address, in configuration order.
    pub records: Vec<Option<(IpNet, GeoRecord)>>,
    /// The fields the rules saw: each from the first database that has it.
    pub record: GeoRecord,
}

impl Classifier {
    /// Compiles `rules` over `dbs` into a classifier for the lines of `lines`. A rule on a
    /// field that no database has a value for is an error: it would silently match nobody.
    pub fn new(
        lines: LineSet,
        rules: Vec<LineRule>,
        dbs: Vec<Arc<GeoDb>>,
    ) -> Result<Classifier, GeoIpError> {
        let provided = dbs
            .iter()
            .fold(FieldSet::default(), |s, db| s.union(db.provides()));
        for rule in &rules {
            if let Some(field) = rule.needs().iter().find(|f| !provided.contains(*f)) {
                return Err(GeoIpError::MissingField {
                    line: lines.name(rule.line).to_string(),
                    field,
                    databases: dbs
                        .iter()
                        .map(|db| {
                            format!(
                                "{}: {} with {}",
                                db.path().display(),
                                db.record_reader(),
                                db.provides()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
        }
        let refs: Vec<&GeoDb> = dbs.iter().map(Arc::as_ref).collect();
        let map = LineMap::compile(&rules, lines.default_line(), &refs)?;
        Ok(Classifier {
            lines,
            rules,
            dbs,
            map,
        })
    }

    /// The configuration's lines over databases already opened from its `[[geoip]]`
    /// sections, in the same order.
    pub fn from_config(config: &Config, dbs: Vec<Arc<GeoDb>>) -> Result<Classifier, GeoIpError> {
        let lines = LineSet::new(config.line_names());
        let rules = LineRule::from_config(&config.lines, &lines);
        Classifier::new(lines, rules, dbs)
    }

    /// The same lines and rules over other databases: what a database reload builds.
    pub fn with_databases(&self, dbs: Vec<Arc<GeoDb>>) -> Result<Classifier, GeoIpError> {
        Classifier::new(self.lines.clone(), self.rules.clone(), dbs)
    }

    pub fn classify(&self, addr: IpAddr) -> Classification {
        self.map.classify(addr)
    }

    pub fn lines(&self) -> &LineSet {
        &self.lines
    }

    pub fn rules(&self) -> &[LineRule] {
        &self.rules
    }

    pub fn databases(&self) -> &[Arc<GeoDb>] {
        &self.dbs
    }

    pub fn map(&self) -> &LineMap {
        &self.map
    }

    /// Classifies `addr` and says why, by evaluating the rules on it directly (not the
    /// hot path: it looks the address up in every database).
    pub fn explain(&self, addr: IpAddr) -> Result<Explanation, GeoIpError> {
        let records = self
            .dbs
            .iter()
            .map(|db| db.lookup(addr))
            .collect::<Result<Vec<_>, _>>()?;
        let mut record = GeoRecord::default();
        for (_, r) in records.iter().flatten() {
            record.fill_from(r);
        }
        let decision = self
            .rules
            .iter()
            .enumerate()
            .find_map(|(rule, r)| {
                if let Some(cidr) = r.cidr_containing(addr) {
                    return Some(Decision::Cidr { rule, cidr });
                }
                if let Some(country) = record.country.filter(|c| r.countries.contains(c)) {
                    return Some(Decision::Country { rule, country });
                }
                if let Some(continent) = record.continent.filter(|c| r.continents.contains(c)) {
                    return Some(Decision::Continent { rule, continent });
                }
                if let Some(subdivision) =
                    record.subdivisions().find(|s| r.subdivisions.contains(s))
                {
                    return Some(Decision::Subdivision { rule, subdivision });
                }
                record
                    .asn
                    .filter(|a| r.asns.contains(a))
                    .map(|asn| Decision::Asn { rule, asn })
            })
            .unwrap_or(Decision::Default);
        Ok(Explanation {
            classification: self.classify(addr),
            decision,
            records,
            record,
        })
    }
}

/// The current [`Classifier`], replaced whole on reload. A query takes a snapshot with
/// [`ClassifierHandle::load`] and is never blocked by a store.
pub struct ClassifierHandle(pub ArcSwap<Classifier>);

impl ClassifierHandle {
    pub fn new(classifier: Classifier) -> ClassifierHandle {
        ClassifierHandle(ArcSwap::from_pointee(classifier))
    }

    /// A snapshot for the duration of one query.
    pub fn load(&self) -> Guard<Arc<Classifier>> {
        self.0.load()
    }

    /// A snapshot to keep (across awaits or for long-lived work).
    pub fn load_full(&self) -> Arc<Classifier> {
        self.0.load_full()
    }

    pub fn store(&self, classifier: impl Into<Arc<Classifier>>) {
        self.0.store(classifier.into());
    }
}

impl fmt::Debug for ClassifierHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClassifierHandle")
            .field(&*self.load())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mmdb_writer::IpVersion;

    use super::*;
    use crate::config::GeoIpLayoutChoice;
    use crate::geoip::fixtures;
    use std::net::Ipv4Addr;

    const CHINA: LineId = LineId(0);
    const CORP: LineId = LineId(1);
    const DEFAULT: LineId = LineId(2);

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn db(bytes: Vec<u8>) -> GeoDb {
        GeoDb::from_bytes(Path::new("test.mmdb"), bytes, GeoIpLayoutChoice::Auto)
            .expect("valid fixture")
    }

    fn geoip2(entries: &[(&str, &str, &str)]) -> GeoDb {
        db(fixtures::geoip2_country_bytes(entries))
    }

    fn rule(line: LineId, countries: &[&str], continents: &[&str], cidrs: &[&str]) -> LineRule {
        let two = |s: &&str| {
            let b = s.as_bytes();
            [b[0], b[1]]
        };
        LineRule {
            line,
            countries: countries.iter().map(two).collect(),
            continents: continents.iter().map(two).collect(),
            subdivisions: Vec::new(),
            asns: Vec::new(),
            cidrs: cidrs.iter().map(|c| c.parse().expect("cidr")).collect(),
        }
    }

    fn china() -> LineRule {
        rule(CHINA, &["CN"], &[], &[])
    }

    fn compile(rules: &[LineRule], dbs: &[&GeoDb]) -> LineMap {
        let map = LineMap::compile(rules, DEFAULT, dbs).expect("compiles");
        check_invariants(&map);
        map
    }

    fn class(map: &LineMap, addr: &str) -> (LineId, u8) {
        let c = map.classify(ip(addr));
        (c.line, c.scope)
    }

    /// The map covers each space from its first address, is sorted, and keeps no two
    /// adjacent ranges of one line (except around the IPv4-mapped block).
    fn check_invariants(map: &LineMap) {
        assert_eq!(map.v4.starts.first(), Some(&0));
        assert_eq!(map.v6.starts.first(), Some(&0));
        assert!(map.v4.starts.windows(2).all(|w| w[0] < w[1]));
        assert!(map.v6.starts.windows(2).all(|w| w[0] < w[1]));
        for (i, w) in map.v4.lines.windows(2).enumerate() {
            assert_ne!(w[0], w[1], "v4 ranges {i} and {} not merged", i + 1);
        }
        for (i, w) in map.v6.lines.windows(2).enumerate() {
            let at = map.v6.starts[i + 1];
            if at != MAPPED_START && at != MAPPED_END + 1 {
                assert_ne!(w[0], w[1], "v6 ranges {i} and {} not merged", i + 1);
            }
        }
    }

    /// Every address of the scope prefix is in the line (its ends are in the same range),
    /// and the prefix one bit wider is not (it reaches past the range).
    fn check_scope(map: &LineMap, addr: IpAddr) {
        if let IpAddr::V6(a) = addr
            && let Some(a4) = a.to_ipv4_mapped()
        {
            let (c, c4) = (map.classify(addr), map.classify(IpAddr::V4(a4)));
            assert_eq!((c.line, c.scope), (c4.line, c4.scope + 96), "{addr}");
            return check_scope(map, IpAddr::V4(a4));
        }
        let c = map.classify(addr);
        let net = IpNet::new(addr, c.scope).expect("prefix").trunc();
        let first = map.classify(net.network());
        let last = map.classify(net.broadcast());
        assert_eq!((first.line, last.line), (c.line, c.line), "{addr} in {net}");
        let (range_lo, range_hi) = match addr {
            IpAddr::V4(a) => {
                let i = map.v4.starts.partition_point(|&s| s <= u32::from(a)) - 1;
                let (lo, hi, _) = map.v4.iter().nth(i).expect("range");
                (u128::from(lo), u128::from(hi))
            }
            IpAddr::V6(a) => {
                let i = map.v6.starts.partition_point(|&s| s <= u128::from(a)) - 1;
                let (lo, hi, _) = map.v6.iter().nth(i).expect("range");
                (lo, hi)
            }
        };
        let as_int = |a: IpAddr| match a {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        assert!(as_int(net.network()) >= range_lo && as_int(net.broadcast()) <= range_hi);
        if c.scope > 0 {
            let wider = IpNet::new(addr, c.scope - 1).expect("prefix").trunc();
            assert!(
                as_int(wider.network()) < range_lo || as_int(wider.broadcast()) > range_hi,
                "{addr}: {wider} also fits in its range"
            );
        }
    }

    #[test]
    fn scope_is_the_widest_prefix_of_the_line() {
        let db = geoip2(&[("1.0.0.0/8", "AU", "OC"), ("1.2.0.0/15", "CN", "AS")]);
        let map = compile(&[china()], &[&db]);
        assert_eq!(class(&map, "1.2.4.0"), (CHINA, 15));
        assert_eq!(class(&map, "1.3.255.255"), (CHINA, 15));
        assert_eq!(class(&map, "1.4.0.0"), (DEFAULT, 14));
        assert_eq!(class(&map, "1.1.0.0"), (DEFAULT, 15));
        assert_eq!(class(&map, "9.9.9.9"), (DEFAULT, 5));
        assert_eq!(map.range_count().0, 3);
    }

    #[test]
    fn adjacent_networks_of_one_line_merge() {
        let db = geoip2(&[
            ("1.0.0.0/8", "AU", "OC"),
            ("1.2.0.0/16", "CN", "AS"),
            ("1.3.0.0/16", "CN", "AS"),
        ]);
        let nets: Vec<String> = db
            .networks()
            .expect("walk")
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert!(nets.contains(&"1.2.0.0/16".to_string()), "{nets:?}");
        assert!(nets.contains(&"1.3.0.0/16".to_string()), "{nets:?}");
        let map = compile(&[china()], &[&db]);
        assert_eq!(class(&map, "1.2.4.0"), (CHINA, 15));
        assert_eq!(class(&map, "1.3.4.0"), (CHINA, 15));
    }

    #[test]
    fn default_range_exactly_a_slash_8_has_scope_8() {
        let db = geoip2(&[("7.0.0.0/8", "CN", "AS"), ("9.0.0.0/8", "CN", "AS")]);
        let map = compile(&[china()], &[&db]);
        assert_eq!(class(&map, "8.8.8.8"), (DEFAULT, 8));
        assert_eq!(class(&map, "8.0.0.0"), (DEFAULT, 8));
        assert_eq!(class(&map, "8.255.255.255"), (DEFAULT, 8));
        assert_eq!(class(&map, "7.1.2.3"), (CHINA, 8));
    }

    #[test]
    fn boundary_inside_a_slash_24_gives_a_longer_scope() {
        let db = geoip2(&[("10.0.0.0/24", "CN", "AS"), ("10.0.0.64/26", "US", "NA")]);
        let map = compile(&[china()], &[&db]);
        assert_eq!(class(&map, "10.0.0.1"), (CHINA, 26));
        assert_eq!(class(&map, "10.0.0.65"), (DEFAULT, 26));
        assert_eq!(class(&map, "10.0.0.200"), (CHINA, 25));
        // A CIDR boundary in the middle of a network splits it the same way.
        let map = compile(&[rule(CORP, &[], &[], &["10.0.0.128/27"]), china()], &[&db]);
        assert_eq!(class(&map, "10.0.0.130"), (CORP, 27));
        assert_eq!(class(&map, "10.0.0.170"), (CHINA, 27));
        assert_eq!(class(&map, "10.0.0.200"), (CHINA, 26));
    }

    #[test]
    fn cidr_rule_before_country_rule_wins_inside_its_cidrs() {
        let db = geoip2(&[("1.2.0.0/15", "CN", "AS")]);
        let map = compile(&[rule(CORP, &[], &[], &["1.2.3.0/24"]), china()], &[&db]);
        assert_eq!(class(&map, "1.2.3.4"), (CORP, 24));
        assert_eq!(class(&map, "1.2.4.4"), (CHINA, 22));
        assert_eq!(class(&map, "1.2.2.4"), (CHINA, 24));
    }

    #[test]
    fn country_rule_before_cidr_rule_wins_inside_the_cidrs() {
        let db = geoip2(&[("1.2.0.0/15", "CN", "AS")]);
        let map = compile(
            &[china(), rule(CORP, &[], &[], &["1.2.3.0/24", "9.9.9.0/24"])],
            &[&db],
        );
        assert_eq!(class(&map, "1.2.3.4"), (CHINA, 15));
        assert_eq!(class(&map, "9.9.9.9"), (CORP, 24));
    }

    #[test]
    fn one_rule_matches_by_country_or_cidr() {
        let db = geoip2(&[("1.2.0.0/15", "CN", "AS")]);
        let map = compile(
            &[rule(CHINA, &["CN"], &[], &["1.4.0.0/15", "1.4.0.0/16"])],
            &[&db],
        );
        // 1.2.0.0/15 by country and 1.4.0.0/15 by CIDR are contiguous: one range, though
        // no prefix wider than /15 fits in it.
        assert_eq!(class(&map, "1.3.0.0"), (CHINA, 15));
        assert_eq!(class(&map, "1.5.0.0"), (CHINA, 15));
        assert_eq!(map.range_count().0, 3);
    }

    #[test]
    fn continent_rules_match_on_both_layouts() {
        let asia = rule(CHINA, &[], &["AS"], &[]);
        let europe = rule(CORP, &[], &["EU"], &[]);
        let g = geoip2(&[
            ("1.2.0.0/15", "CN", "AS"),
            ("81.2.69.0/24", "GB", "EU"),
            ("2.0.0.0/8", "", "EU"),
        ]);
        let map = compile(&[asia.clone(), europe.clone()], &[&g]);
        assert_eq!(class(&map, "1.2.4.8").0, CHINA);
        assert_eq!(class(&map, "81.2.69.1").0, CORP);
        assert_eq!(class(&map, "2.2.2.2").0, CORP);
        assert_eq!(class(&map, "8.8.8.8").0, DEFAULT);

        let l = db(fixtures::ip_location_db_bytes(
            &[
                ("1.2.0.0/15", "CN"),
                ("81.2.69.0/24", "GB"),
                ("8.8.8.0/24", "US"),
            ],
            IpVersion::V4,
        ));
        let map = compile(&[asia, europe], &[&l]);
        assert_eq!(class(&map, "1.2.4.8").0, CHINA);
        assert_eq!(class(&map, "81.2.69.1").0, CORP);
        assert_eq!(class(&map, "8.8.8.8").0, DEFAULT);
    }

    #[test]
    fn ipv6_networks_and_cidrs() {
        let db = geoip2(&[
            ("1.2.0.0/15", "CN", "AS"),
            ("2400:da00::/32", "CN", "AS"),
            ("240e::/20", "CN", "AS"),
        ]);
        let map = compile(&[rule(CORP, &[], &[], &["2001:db8::/32"]), china()], &[&db]);
        assert_eq!(class(&map, "2400:da00::1"), (CHINA, 32));
        assert_eq!(class(&map, "240e:1::1"), (CHINA, 20));
        assert_eq!(class(&map, "2001:db8::1"), (CORP, 32));
        assert_eq!(class(&map, "2a00::1"), (DEFAULT, 5));
        // IPv4 data does not leak into the IPv6 map.
        assert_eq!(class(&map, "::102:408").0, DEFAULT);
        assert_eq!(class(&map, "::1.2.4.8").0, DEFAULT);
    }

    #[test]
    fn ipv4_mapped_addresses_use_the_ipv4_map() {
        let db = geoip2(&[("1.0.0.0/8", "AU", "OC"), ("1.2.0.0/15", "CN", "AS")]);
        let map = compile(&[china()], &[&db]);
        assert_eq!(class(&map, "::ffff:1.2.4.0"), (CHINA, 111));
        assert_eq!(class(&map, "::ffff:8.8.8.8"), (DEFAULT, 96 + 5));
        // An IPv4-mapped CIDR is an IPv4 CIDR; a wider IPv6 one is not.
        let map = compile(
            &[
                rule(CORP, &[], &[], &["::ffff:9.9.9.0/120", "::/0"]),
                china(),
            ],
            &[&db],
        );
        assert_eq!(class(&map, "9.9.9.9"), (CORP, 24));
        assert_eq!(class(&map, "::ffff:9.9.9.9"), (CORP, 120));
        assert_eq!(class(&map, "8.8.8.8").0, DEFAULT);
        assert_eq!(class(&map, "1.2.4.8").0, CHINA);
        assert_eq!(class(&map, "2a00::1").0, CORP);
    }

    #[test]
    fn whole_space_edges() {
        let db = geoip2(&[
            ("0.0.0.0/8", "CN", "AS"),
            ("255.0.0.0/8", "CN", "AS"),
            ("ff00::/8", "CN", "AS"),
        ]);
        let map = compile(&[china()], &[&db]);
        assert_eq!(class(&map, "0.0.0.0"), (CHINA, 8));
        assert_eq!(class(&map, "255.255.255.255"), (CHINA, 8));
        assert_eq!(class(&map, "128.0.0.0"), (DEFAULT, 2));
        assert_eq!(class(&map, "127.0.0.0"), (DEFAULT, 2));
        assert_eq!(
            class(&map, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            (CHINA, 8)
        );
        // :: is cut off from the IPv4-mapped block at ::ffff:0:0.
        assert_eq!(class(&map, "::"), (DEFAULT, 81));
        assert_eq!(class(&map, "::ffff:0.0.0.0"), (CHINA, 104));
        assert_eq!(class(&map, "::ffff:255.255.255.255"), (CHINA, 104));

        // Nothing matches anywhere: one IPv4 range, scope 0.
        let empty = compile(&[rule(CORP, &[], &[], &["192.0.2.0/24"])], &[]);
        assert_eq!(class(&empty, "8.8.8.8"), (DEFAULT, 1));
        let none = compile(&[], &[&db]);
        assert_eq!(none.range_count(), (1, 3));
        assert_eq!(class(&none, "0.0.0.0"), (DEFAULT, 0));
        assert_eq!(class(&none, "255.255.255.255"), (DEFAULT, 0));
        // The IPv4-mapped block stays a range of its own, so ::/1 and ::/2 are not in one.
        assert_eq!(class(&none, "2400::1"), (DEFAULT, 3));
        assert_eq!(class(&none, "8000::1"), (DEFAULT, 1));
        // A CIDR that reaches the last address.
        let top = compile(
            &[rule(CORP, &[], &[], &["255.255.255.0/24", "ffff::/16"])],
            &[],
        );
        assert_eq!(class(&top, "255.255.255.255"), (CORP, 24));
        assert_eq!(
            class(&top, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            (CORP, 16)
        );
        assert_eq!(class(&top, "255.255.254.255"), (DEFAULT, 24));
    }

    #[test]
    fn several_databases_fill_each_field_from_the_first_that_has_it() {
        let countries = geoip2(&[("1.2.0.0/16", "CN", "")]);
        let continents = geoip2(&[("1.0.0.0/8", "AU", "OC"), ("1.2.0.0/15", "", "AS")]);
        let asia = rule(CHINA, &[], &["AS"], &[]);
        let australia = rule(CORP, &["AU"], &[], &[]);
        let map = compile(&[asia, australia], &[&countries, &continents]);
        // Country CN from the first database, continent AS from the second.
        assert_eq!(class(&map, "1.2.0.1").0, CHINA);
        assert_eq!(class(&map, "1.3.0.1").0, CHINA);
        // Country AU from the second database, where the first has nothing.
        assert_eq!(class(&map, "1.4.0.1").0, CORP);
        let only_au = compile(&[rule(CORP, &["AU"], &[], &[])], &[&countries, &continents]);
        assert_eq!(class(&only_au, "1.2.0.1").0, DEFAULT);
        assert_eq!(class(&only_au, "1.3.0.1").0, DEFAULT);
        assert_eq!(class(&only_au, "1.1.0.1").0, CORP);
    }

    #[test]
    fn nested_and_overlapping_cidrs_of_several_rules() {
        let map = compile(
            &[
                rule(CHINA, &[], &[], &["10.1.0.0/16", "10.1.2.0/24"]),
                rule(CORP, &[], &[], &["10.0.0.0/8", "10.1.0.0/16"]),
            ],
            &[],
        );
        assert_eq!(class(&map, "10.1.2.3"), (CHINA, 16));
        assert_eq!(class(&map, "10.1.200.3"), (CHINA, 16));
        assert_eq!(class(&map, "10.2.0.0"), (CORP, 15));
        assert_eq!(class(&map, "10.0.0.0"), (CORP, 16));
        assert_eq!(class(&map, "11.0.0.0"), (DEFAULT, 8));
    }

    /// A deterministic stream of addresses for property checks.
    fn addresses(n: usize, seed: u64) -> impl Iterator<Item = IpAddr> {
        let mut x = seed;
        (0..n).map(move |i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = u128::from(x) << 64 | u128::from(x.rotate_left(29));
            match i % 3 {
                0 => IpAddr::V4(Ipv4Addr::from((x >> 32) as u32)),
                // Mostly inside 2400::/12 so the fixture's networks are hit.
                1 => IpAddr::V6(Ipv6Addr::from((0x240u128 << 116) | (r >> 12))),
                _ => IpAddr::V6(Ipv6Addr::from(r)),
            }
        })
    }

    fn mixed_classifier() -> Classifier {
        let g = geoip2(&[
            ("1.0.0.0/8", "AU", "OC"),
            ("1.2.0.0/15", "CN", "AS"),
            ("36.0.0.0/10", "CN", "AS"),
            ("36.64.0.0/11", "ID", "AS"),
            ("81.0.0.0/8", "GB", "EU"),
            ("81.2.69.0/24", "", "EU"),
            ("2400::/12", "JP", "AS"),
            ("2400:da00::/32", "CN", "AS"),
            ("2401::/16", "", "OC"),
            ("240e::/20", "CN", "AS"),
        ]);
        let l = db(fixtures::ip_location_db_bytes(
            &[
                ("1.0.0.0/9", "AU"),
                ("128.0.0.0/2", "DE"),
                ("2401::/17", "NZ"),
            ],
            IpVersion::V6,
        ));
        let lines = LineSet::new(vec![
            "china".into(),
            "corp".into(),
            "europe".into(),
            "default".into(),
        ]);
        let rules = vec![
            rule(
                LineId(1),
                &[],
                &[],
                &["1.2.3.0/24", "2400:da00:1::/48", "::ffff:81.0.0.0/104"],
            ),
            rule(LineId(0), &["CN"], &[], &["36.0.0.0/8"]),
            rule(LineId(2), &["NZ"], &["EU"], &["240e:8::/29"]),
        ];
        Classifier::new(lines, rules, vec![Arc::new(g), Arc::new(l)]).expect("compiles")
    }

    #[test]
    fn explain_agrees_with_the_map_and_scopes_hold() {
        let c = mixed_classifier();
        check_invariants(c.map());
        for addr in addresses(30_000, 7).chain(
            [
                "1.2.3.4",
                "1.2.4.4",
                "36.70.0.1",
                "81.2.69.9",
                "81.3.0.0",
                "200.1.1.1",
                "2400:da00:1::1",
                "2400:da00:2::1",
                "240e:8::1",
                "2401:8000::1",
                "2401::1",
                "::ffff:1.2.3.4",
                "::ffff:81.2.3.4",
                "::",
                "::1",
                "::1.2.3.4",
            ]
            .iter()
            .map(|s| ip(s)),
        ) {
            let e = c.explain(addr).expect("explain");
            let want = match e.decision {
                Decision::Default => c.lines().default_line(),
                Decision::Cidr { rule, .. }
                | Decision::Country { rule, .. }
                | Decision::Continent { rule, .. }
                | Decision::Subdivision { rule, .. }
                | Decision::Asn { rule, .. } => c.rules()[rule].line,
            };
            assert_eq!(e.classification.line, want, "{addr}: {e:?}");
            check_scope(c.map(), addr);
        }
        let e = c.explain(ip("1.2.3.4")).expect("explain");
        assert_eq!(
            e.decision,
            Decision::Cidr {
                rule: 0,
                cidr: "1.2.3.0/24".parse().expect("net")
            }
        );
        let e = c.explain(ip("1.2.4.4")).expect("explain");
        assert_eq!(
            e.decision,
            Decision::Country {
                rule: 1,
                country: *b"CN"
            }
        );
        assert_eq!(e.records.len(), 2);
        let e = c.explain(ip("2401:1::1")).expect("explain");
        assert_eq!(e.record.country, Some(*b"NZ"));
        assert_eq!(
            e.decision,
            Decision::Country {
                rule: 2,
                country: *b"NZ"
            }
        );
        let e = c.explain(ip("150.0.0.1")).expect("explain");
        assert_eq!(
            e.decision,
            Decision::Continent {
                rule: 2,
                continent: *b"EU"
            }
        );
    }

    #[test]
    fn rules_from_config() {
        let config = Config::parse(
            Path::new("t.toml"),
            r#"
[[geoip]]
path = "db.mmdb"

[[line]]
name = "corp"
cidrs = ["10.0.0.0/8", "2001:db8::/32"]

[[line]]
name = "china"
countries = ["CN", "HK"]
continents = ["AS"]
"#,
        )
        .expect("config");
        let set = LineSet::new(config.line_names());
        let rules = LineRule::from_config(&config.lines, &set);
        assert_eq!(
            rules,
            vec![
                rule(LineId(0), &[], &[], &["10.0.0.0/8", "2001:db8::/32"]),
                rule(LineId(1), &["CN", "HK"], &["AS"], &[]),
            ]
        );
        assert_eq!(set.default_line(), LineId(2));
    }

    #[test]
    fn handle_swaps_snapshots_without_disturbing_held_ones() {
        let lines = LineSet::new(vec!["china".into(), "default".into()]);
        let first = Classifier::new(
            lines.clone(),
            vec![rule(LineId(0), &[], &[], &["1.2.0.0/15"])],
            vec![],
        )
        .expect("compiles");
        let handle = ClassifierHandle::new(first);
        let held = handle.load_full();
        assert_eq!(handle.load().classify(ip("1.2.4.8")).line, LineId(0));
        let g = Arc::new(geoip2(&[("8.8.8.0/24", "CN", "AS")]));
        let second = Classifier::new(lines, vec![rule(LineId(0), &["CN"], &[], &[])], vec![g])
            .expect("compiles");
        handle.store(second);
        assert_eq!(handle.load().classify(ip("1.2.4.8")).line, LineId(1));
        assert_eq!(
            handle.load().classify(ip("8.8.8.8")),
            Classification {
                line: LineId(0),
                scope: 24
            }
        );
        assert_eq!(held.classify(ip("1.2.4.8")).line, LineId(0));
        let reloaded = held
            .with_databases(handle.load().databases().to_vec())
            .expect("compiles");
        assert_eq!(reloaded.databases().len(), 1);
    }

    #[test]
    fn subdivision_and_asn_rules_over_a_city_and_an_asn_database() {
        let city = db(fixtures::geoip2_city_bytes(
            "GeoLite2-City",
            &[
                ("1.0.0.0/8", "CN", "AS", &["BJ"]),
                ("1.2.0.0/16", "CN", "AS", &["GD"]),
                ("1.3.0.0/16", "CN", "AS", &["GD"]),
                ("2400:da00::/32", "CN", "AS", &["GD"]),
            ],
        ));
        let asn = db(fixtures::asn_bytes(
            "GeoLite2-ASN",
            &[
                ("1.4.0.0/16", 4134, "CHINANET"),
                ("1.5.0.0/16", 4837, "UNICOM"),
                ("1.2.9.0/24", 4837, "UNICOM"),
            ],
        ));
        let mut gd = rule(CORP, &[], &[], &[]);
        gd.subdivisions = vec![Subdivision::parse("CN-GD").expect("code")];
        let mut telecom = rule(CHINA, &[], &[], &[]);
        telecom.asns = vec![4134, 4837];
        let lines = LineSet::new(vec!["china".into(), "corp".into(), "default".into()]);
        let c = Classifier::new(
            lines.clone(),
            vec![gd.clone(), telecom.clone()],
            vec![Arc::new(city), Arc::new(asn)],
        )
        .expect("compiles");
        check_invariants(c.map());
        let class = |a: &str| {
            let k = c.classify(ip(a));
            (k.line, k.scope)
        };
        // CN-GD in 1.2.0.0/15 merged; the subdivision rule comes first so 1.2.9.0/24 stays corp.
        assert_eq!(class("1.2.9.1"), (CORP, 15));
        assert_eq!(class("1.3.0.1"), (CORP, 15));
        assert_eq!(class("2400:da00::1"), (CORP, 32));
        // CN-BJ is not listed; the ASN rule takes 1.4.0.0/15.
        assert_eq!(class("1.4.0.1"), (CHINA, 15));
        assert_eq!(class("1.5.0.1"), (CHINA, 15));
        assert_eq!(class("1.6.0.1").0, DEFAULT);
        let e = c.explain(ip("1.2.9.1")).expect("explain");
        assert_eq!(
            e.decision,
            Decision::Subdivision {
                rule: 0,
                subdivision: Subdivision::parse("CN-GD").expect("code")
            }
        );
        assert_eq!(e.record.asn, Some(4837));
        let e = c.explain(ip("1.5.0.1")).expect("explain");
        assert_eq!(e.decision, Decision::Asn { rule: 1, asn: 4837 });

        // Order reversed: the ASN rule wins inside 1.2.9.0/24.
        let c =
            Classifier::new(lines, vec![telecom, gd], c.databases().to_vec()).expect("compiles");
        assert_eq!(c.classify(ip("1.2.9.1")).line, CHINA);
        assert_eq!(c.classify(ip("1.2.8.1")).line, CORP);
    }

    #[test]
    fn a_rule_on_a_field_no_database_has_is_an_error() {
        let country = Arc::new(geoip2(&[("1.2.0.0/15", "CN", "AS")]));
        let mut telecom = rule(CHINA, &[], &[], &[]);
        telecom.asns = vec![4134];
        let lines = LineSet::new(vec!["china".into(), "corp".into(), "default".into()]);
        let e = Classifier::new(lines.clone(), vec![telecom], vec![country.clone()])
            .expect_err("no ASN database");
        assert_eq!(
            e.to_string(),
            "line `china` matches on asn but none of the configured databases has asn data \
             (test.mmdb: geoip2 with country, continent)"
        );
        let mut gd = rule(CORP, &[], &[], &[]);
        gd.subdivisions = vec![Subdivision::parse("CN-GD").expect("code")];
        let e = Classifier::new(lines, vec![gd], vec![country]).expect_err("no City database");
        assert!(
            e.to_string()
                .starts_with("line `corp` matches on subdivision"),
            "{e}"
        );
    }

    /// The database the repository ships.
    #[test]
    fn shipped_database_compiles() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/geo-whois-asn-country.mmdb");
        let db = GeoDb::open(&path, GeoIpLayoutChoice::Auto).expect("the shipped database opens");
        let map = compile(&[china()], &[&db]);
        assert_eq!(map.classify(ip("1.2.4.8")).line, CHINA);
        assert_eq!(map.classify(ip("8.8.8.8")).line, DEFAULT);
        assert_eq!(map.classify(ip("2400:da00::1")).line, CHINA);
        assert_eq!(map.classify(ip("::ffff:1.2.4.8")).line, CHINA);
        let (v4, v6) = map.range_count();
        assert!(v4 > 1_000 && v6 > 1_000, "{v4} {v6}");
        let lines = LineSet::new(vec!["china".into(), "corp".into(), "default".into()]);
        let c = Classifier::new(lines, vec![china()], vec![Arc::new(db)]).expect("compiles");
        for addr in addresses(3_000, 11) {
            let e = c.explain(addr).expect("explain");
            let want = if e.decision == Decision::Default {
                DEFAULT
            } else {
                CHINA
            };
            assert_eq!(e.classification.line, want, "{addr}: {e:?}");
            check_scope(c.map(), addr);
        }
    }
}
