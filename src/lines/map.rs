//! The compiled line map: every address range with its line, and the search in it.
//!
//! This module owns [`LineMap`] (sorted IPv4 and IPv6 ranges, adjacent ranges of one line
//! merged) and [`LineMap::classify`], which finds a client's range and from it the widest
//! prefix around the client that stays in the line (the ECS scope). The map is built by
//! [`super::compile`].

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::LineId;

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
    pub(super) v4: Ranges<u32>,
    pub(super) v6: Ranges<u128>,
}

impl fmt::Debug for LineMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineMap")
            .field("v4_ranges", &self.v4.starts.len())
            .field("v6_ranges", &self.v6.starts.len())
            .finish()
    }
}

impl LineMap {
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

    /// How many IPv4 and IPv6 addresses each line holds, indexed by [`LineId::index`]
    /// (`lines` entries; a line the map never names holds none). IPv6 counts saturate at
    /// `u128::MAX`, one short of the whole space.
    pub fn coverage(&self, lines: usize) -> Vec<Coverage> {
        let mut coverage = vec![Coverage::default(); lines];
        for (line, n) in self.v4.sizes() {
            if let Some(c) = coverage.get_mut(line.index()) {
                c.v4 = c.v4.saturating_add(n);
            }
        }
        for (line, n) in self.v6.sizes() {
            if let Some(c) = coverage.get_mut(line.index()) {
                c.v6 = c.v6.saturating_add(n);
            }
        }
        coverage
    }

    /// The number of IPv4 and IPv6 ranges.
    pub fn range_count(&self) -> (usize, usize) {
        (self.v4.starts.len(), self.v6.starts.len())
    }
}

/// The addresses one line holds (see [`LineMap::coverage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// IPv4 addresses, at most 2^32.
    pub v4: u128,
    /// IPv6 addresses, saturating at `u128::MAX`.
    pub v6: u128,
}

impl Coverage {
    /// The share of the IPv4 space, from 0 to 1.
    pub fn v4_share(&self) -> f64 {
        self.v4 as f64 / 2f64.powi(32)
    }

    /// The share of the IPv6 space, from 0 to 1.
    pub fn v6_share(&self) -> f64 {
        self.v6 as f64 / 2f64.powi(128)
    }
}

/// An unsigned address of one family, as the sweep and the search need it.
pub(super) trait Addr: Copy + Ord + fmt::Debug {
    const ZERO: Self;
    const MAX: Self;
    fn succ(self) -> Option<Self>;
    fn pred(self) -> Option<Self>;
    /// The number of leading bits `self` and `other` share.
    fn common_prefix(self, other: Self) -> u32;
    /// First and last address of `net` if it is of this family.
    fn bounds(net: &IpNet) -> Option<(Self, Self)>;
    /// The address as a number of the wider family.
    fn wide(self) -> u128;
}

impl Addr for u32 {
    const ZERO: u32 = 0;
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
    fn wide(self) -> u128 {
        self.into()
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
    fn wide(self) -> u128 {
        self
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
pub(super) struct Ranges<A> {
    pub(super) starts: Vec<A>,
    pub(super) lines: Vec<LineId>,
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

    /// Every range's line and number of addresses (saturating at `u128::MAX`).
    fn sizes(&self) -> impl Iterator<Item = (LineId, u128)> + '_ {
        self.starts.iter().enumerate().map(|(i, &lo)| {
            let hi = self
                .starts
                .get(i + 1)
                .and_then(|&next| next.pred())
                .unwrap_or(A::MAX);
            (self.lines[i], (hi.wide() - lo.wide()).saturating_add(1))
        })
    }

    /// Every range as (first, last, line); the tests check scopes against it.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (A, A, LineId)> + '_ {
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
