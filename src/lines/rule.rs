//! A line's matching conditions, as the compiler and the explanation read them.
//!
//! This module owns [`LineRule`] (countries, continents, subdivisions, ASNs, prefixes of
//! one line) and how a prefix is read for an IPv4 client: an IPv4-mapped IPv6 prefix also
//! matches the IPv4 addresses it maps. It does not compile rules into ranges.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::config::LineConfig;
use super::{LineId, LineSet};
use crate::geoip::{Field, FieldSet, Subdivision};

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
pub(super) fn mapped_v4(net: &Ipv6Net) -> Option<Ipv4Net> {
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
