//! Lines: which view of the zones a client gets.
//!
//! This module owns the line rules declared in the configuration and their compiled form,
//! the [`LineMap`]: every IPv4 and IPv6 address range mapped to one line, adjacent ranges
//! of one line merged. Classifying a client is one binary search in it, and the range found
//! gives the EDNS Client Subnet scope: the widest prefix around the client in which every
//! address falls in the same line.
//!
//! It does not read databases (that is [`crate::geoip`]) and does not know about DNS.

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
