//! The search tree of a MaxMind DB: a binary trie over address bits whose nodes hold two
//! records each (the 0 and the 1 branch), read from the file a page at a time.
//!
//! This module owns reading nodes ([`Nodes`], with a small cache of pages), the lookup of
//! one address ([`Mmdb::lookup`]) and the walk over every network with data ([`Walk`]).
//! Both report networks and data offsets; decoding records is [`super::data`]'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{Mmdb, MmdbError, SEPARATOR, Source};

/// Bytes per cached page of the tree, and pages cached. A walk reads the tree in the order
/// its writer laid it out when that is depth-first (as the common writers do), so one page
/// would do; a few more keep the levels near the root, which every path crosses.
pub(super) const PAGE: usize = 16 * 1024;
pub(super) const PAGES: usize = 8;

/// A record of a node: another node, nothing, or data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Node(usize),
    Empty,
    /// An offset in the data section.
    Data(usize),
}

/// The tree's nodes as one walk or lookup reads them.
pub(super) struct Nodes<'a> {
    db: &'a Mmdb,
    /// Page `n` of the tree is in slot `n % PAGES`, with the node bytes that straddle
    /// into the next page: `(page number, bytes)`.
    pub(super) pages: Vec<Option<(u64, Vec<u8>)>>,
}

impl Mmdb {
    pub(super) fn nodes(&self) -> Nodes<'_> {
        Nodes {
            db: self,
            pages: Vec::new(),
        }
    }

    /// The network with data containing `ip`, as the tree has it, and the record's offset
    /// in the data section; `None` where the tree has no data. An IPv4 address in an IPv6
    /// database is looked up under ::/96; its network is IPv4 when the database has a tree
    /// for IPv4 there, else the IPv6 network holding all of ::/96. An IPv6 address in an
    /// IPv4 database has no data.
    pub(crate) fn lookup(&self, ip: IpAddr) -> Result<Option<(IpNet, usize)>, MmdbError> {
        let mut nodes = self.nodes();
        let (mut next, key, bits) = match ip {
            IpAddr::V4(v4) if self.metadata.ip_version == 6 => {
                if !self.has_ipv4_subtree() {
                    return Ok(match nodes.classify(self.ipv4_start)? {
                        Next::Data(offset) => {
                            let net = Ipv6Net::new(Ipv6Addr::UNSPECIFIED, self.ipv4_depth)
                                .map_err(|e| MmdbError::Tree(e.to_string()))?;
                            Some((IpNet::V6(net), offset))
                        }
                        _ => None,
                    });
                }
                (self.ipv4_start, u128::from(u32::from(v4)), 32)
            }
            IpAddr::V4(v4) => (0, u128::from(u32::from(v4)), 32),
            IpAddr::V6(_) if self.metadata.ip_version == 4 => return Ok(None),
            IpAddr::V6(v6) => (0, u128::from(v6), 128),
        };
        for depth in 0..bits {
            let bit = (key >> (bits - 1 - depth)) & 1 == 1;
            let record = nodes.record(next, bit)?;
            match nodes.classify(record)? {
                Next::Node(n) => next = n,
                Next::Empty => return Ok(None),
                Next::Data(offset) => {
                    let net = network(key, depth + 1, bits == 128)?;
                    return Ok(Some((net, offset)));
                }
            }
        }
        // Every bit used and still on a node: a tree deeper than an address.
        Err(MmdbError::Tree(format!(
            "the path of {ip} is longer than the address"
        )))
    }

    /// Every network with data and its record's offset, in address order (IPv4 first in
    /// an IPv6 database with a tree for IPv4). The aliases of the IPv4 tree elsewhere in
    /// an IPv6 database (the IPv4-mapped, 6to4 and Teredo ranges of MaxMind's writers)
    /// are not followed.
    pub(crate) fn walk(&self) -> Walk<'_> {
        let bits = if self.metadata.ip_version == 6 {
            128
        } else {
            32
        };
        Walk {
            nodes: self.nodes(),
            stack: vec![Pending {
                next: Next::Node(0),
                key: 0,
                depth: 0,
            }],
            bits,
            expanded: 0,
            failed: false,
        }
    }
}

/// `key`'s first `depth` bits as a network: IPv4 for a 32-bit key or one under ::/96 in an
/// IPv6 database with a tree for IPv4 there, else IPv6.
fn network(key: u128, depth: u8, v6: bool) -> Result<IpNet, MmdbError> {
    let bad = |e: ipnet::PrefixLenError| MmdbError::Tree(e.to_string());
    if v6 {
        let net = Ipv6Net::new(Ipv6Addr::from(key), depth).map_err(bad)?;
        return Ok(IpNet::V6(net.trunc()));
    }
    let net = Ipv4Net::new(Ipv4Addr::from(key as u32), depth).map_err(bad)?;
    Ok(IpNet::V4(net.trunc()))
}

impl Nodes<'_> {
    /// What a record value points at.
    fn classify(&self, value: usize) -> Result<Next, MmdbError> {
        let node_count = self.db.metadata.node_count;
        if value < node_count {
            return Ok(Next::Node(value));
        }
        if value == node_count {
            return Ok(Next::Empty);
        }
        match (value - node_count).checked_sub(SEPARATOR) {
            Some(offset) if offset < self.db.data.len() => Ok(Next::Data(offset)),
            _ => Err(MmdbError::Tree(format!(
                "a record points outside the data section ({value})"
            ))),
        }
    }

    /// The 0 (`right` false) or 1 record of node `node`.
    fn record(&mut self, node: usize, right: bool) -> Result<usize, MmdbError> {
        let size = self.db.node_bytes;
        let at = node as u64 * size as u64;
        if at + size as u64 > self.db.tree_len {
            return Err(MmdbError::Tree(format!("node {node} is past the tree")));
        }
        let b = self.bytes(at, size)?;
        let be = |s: &[u8]| s.iter().fold(0usize, |n, &x| (n << 8) | usize::from(x));
        Ok(match (size, right) {
            (6, false) => be(&b[0..3]),
            (6, true) => be(&b[3..6]),
            (7, false) => (usize::from(b[3] & 0xf0) << 20) | be(&b[0..3]),
            (7, true) => (usize::from(b[3] & 0x0f) << 24) | be(&b[4..7]),
            (_, false) => be(&b[0..4]),
            (_, true) => be(&b[4..8]),
        })
    }

    /// `len` (at most 8) bytes of the tree at `at`.
    fn bytes(&mut self, at: u64, len: usize) -> Result<&[u8], MmdbError> {
        if let Source::Memory(bytes) = &self.db.source {
            let start = at as usize;
            return bytes
                .get(start..start + len)
                .ok_or_else(|| MmdbError::Tree("the tree runs past the file".into()));
        }
        let number = at / PAGE as u64;
        let slot = (number % PAGES as u64) as usize;
        if self.pages.is_empty() {
            self.pages.resize_with(PAGES, || None);
        }
        if !matches!(&self.pages[slot], Some((n, _)) if *n == number) {
            let start = number * PAGE as u64;
            // The page and the bytes of a node that begins on it and ends on the next.
            let end = (start + PAGE as u64 + 8).min(self.db.tree_len);
            let mut buf = match self.pages[slot].take() {
                Some((_, buf)) => buf,
                None => Vec::with_capacity(PAGE + 8),
            };
            buf.resize((end - start) as usize, 0);
            self.db.source.read_at(&mut buf, start)?;
            self.pages[slot] = Some((number, buf));
        }
        let Some((_, page)) = &self.pages[slot] else {
            return Err(MmdbError::Tree("page cache".into()));
        };
        let offset = (at - number * PAGE as u64) as usize;
        page.get(offset..offset + len)
            .ok_or_else(|| MmdbError::Tree("the tree runs past the file".into()))
    }

    /// The node (or record) reached from the root by `bits` zero bits, and the depth it
    /// was reached at: where IPv4 lives in an IPv6 tree.
    pub(super) fn zero_path(&mut self, bits: u8) -> Result<(usize, u8), MmdbError> {
        let mut node = 0;
        for depth in 0..bits {
            if node >= self.db.metadata.node_count {
                return Ok((node, depth));
            }
            node = self.record(node, false)?;
        }
        Ok((node, bits))
    }
}

/// A branch of the tree still to walk: where it leads, the address bits so far.
struct Pending {
    next: Next,
    key: u128,
    depth: u8,
}

/// The walk behind [`Mmdb::walk`]: depth first, the 0 branch before the 1 branch, so
/// networks come in address order. At most one pending branch per level: a few kilobytes
/// whatever the database.
pub(crate) struct Walk<'a> {
    pub(super) nodes: Nodes<'a>,
    stack: Vec<Pending>,
    /// 32 or 128.
    bits: u8,
    /// Nodes whose records were read. A tree reaches each node once (the IPv4 aliases
    /// are not entered); a writer sharing a subtree elsewhere would add a few more. Far
    /// more than `node_count` means records that join branches again and again, which a
    /// damaged file could make exponentially many paths of.
    expanded: usize,
    /// After an error the walk ends.
    failed: bool,
}

impl Iterator for Walk<'_> {
    type Item = Result<(IpNet, usize), MmdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.step();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

impl Walk<'_> {
    fn step(&mut self) -> Option<Result<(IpNet, usize), MmdbError>> {
        let db = self.nodes.db;
        while let Some(Pending { next, key, depth }) = self.stack.pop() {
            match next {
                Next::Empty => {}
                Next::Data(offset) => {
                    let v4 = self.bits == 32
                        || (db.has_ipv4_subtree() && key <= u128::from(u32::MAX) && depth >= 96);
                    let net = match v4 {
                        true if self.bits == 128 => network(key, depth - 96, false),
                        true => network(key, depth, false),
                        false => network(key, depth, true),
                    };
                    return Some(net.map(|n| (n, offset)));
                }
                Next::Node(node) => {
                    // The IPv4 tree reached from anywhere but ::/96 is an alias of it.
                    if self.bits == 128
                        && db.has_ipv4_subtree()
                        && node == db.ipv4_start
                        && key > u128::from(u32::MAX)
                    {
                        continue;
                    }
                    if depth >= self.bits {
                        return Some(Err(MmdbError::Tree(
                            "a path longer than an address (a cycle?)".into(),
                        )));
                    }
                    self.expanded += 1;
                    if self.expanded > db.metadata.node_count.saturating_mul(4) {
                        return Some(Err(MmdbError::Tree(
                            "nodes reached by many paths (branches joined again)".into(),
                        )));
                    }
                    let children = self
                        .nodes
                        .record(node, true)
                        .and_then(|r| self.nodes.classify(r))
                        .and_then(|one| {
                            let zero = self.nodes.record(node, false)?;
                            Ok((self.nodes.classify(zero)?, one))
                        });
                    let (zero, one) = match children {
                        Ok(c) => c,
                        Err(e) => return Some(Err(e)),
                    };
                    let bit = 1u128 << (self.bits - 1 - depth);
                    self.stack.push(Pending {
                        next: one,
                        key: key | bit,
                        depth: depth + 1,
                    });
                    self.stack.push(Pending {
                        next: zero,
                        key,
                        depth: depth + 1,
                    });
                }
            }
        }
        None
    }
}
