//! Lines: which view of the zones a client gets.
//!
//! This module owns the line rules declared in the configuration and their compiled form,
//! the [`LineMap`]: every IPv4 and IPv6 address range mapped to one line, adjacent ranges
//! of one line merged. Classifying a client is one binary search in it, and the range found
//! gives the EDNS Client Subnet scope: the widest prefix around the client in which every
//! address falls in the same line. [`Classifier`] bundles the map with the databases it was
//! compiled from; [`crate::live::Live`] holds the one queries read.
//!
//! It does not read databases (that is [`crate::geoip`]), does not decide when to reload,
//! and does not know about DNS.
//!
//! The parts: this file (line identity: [`LineId`], [`LineSet`]), [`rule`] (a line's
//! conditions), [`map`] (the compiled map and its search), [`compile`] (the sweep that
//! builds the map from rules and databases) and [`classifier`] (the map with what it was
//! compiled from, explanations, the live handle).

mod classifier;
mod compile;
pub(crate) mod config;
pub(crate) mod digest;
mod iso3166;
mod map;
mod rule;
#[cfg(test)]
mod tests;

pub use classifier::{Classifier, Decision, Explanation};
pub use map::Coverage;
pub(crate) use map::{Classification, LineMap};
pub(crate) use rule::LineRule;

/// The name of the line every client falls back to; it always exists and is never declared.
pub const DEFAULT_LINE: &str = "default";

/// A line's index in match order; `default` is always the last one.
///
/// One byte, so that a map range costs one byte for its line: at most
/// [`LineSet::MAX_DECLARED`] lines can be declared, and `default` takes the next id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineId(u8);

impl LineId {
    /// The id of the line at `index` in match order; `None` past the last id there is.
    pub const fn new(index: usize) -> Option<LineId> {
        if index > u8::MAX as usize {
            return None;
        }
        // Checked above: the index fits.
        Some(LineId(index as u8))
    }

    /// The line's position in its [`LineSet`]: an index into per-line tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// The line names in match order, `default` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSet {
    names: Vec<String>,
    default: LineId,
}

impl LineSet {
    /// The most lines a configuration can declare: every id but the one `default` takes.
    pub const MAX_DECLARED: usize = u8::MAX as usize;

    /// `default` alone.
    pub(crate) fn default_only() -> LineSet {
        LineSet {
            names: vec![DEFAULT_LINE.to_string()],
            default: LineId(0),
        }
    }

    /// Declares `name` as the next line, before `default`, and gives its id; `None` when
    /// [`LineSet::MAX_DECLARED`] lines are declared already (`default` would have no id).
    pub(crate) fn declare(&mut self, name: String) -> Option<LineId> {
        let default = LineId::new(self.names.len())?;
        let id = self.default;
        self.names.insert(id.index(), name);
        self.default = default;
        Some(id)
    }

    /// `declared` in match order, then `default`; `None` past [`LineSet::MAX_DECLARED`].
    pub fn new<S: Into<String>>(declared: impl IntoIterator<Item = S>) -> Option<LineSet> {
        let mut set = LineSet::default_only();
        for name in declared {
            set.declare(name.into())?;
        }
        Some(set)
    }

    /// `default`, always the last line: where addresses no rule matches go.
    pub fn default_line(&self) -> LineId {
        self.default
    }

    /// The line called `name`; `None` if no line is (names are compared exactly).
    pub fn id(&self, name: &str) -> Option<LineId> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(LineId::new)
    }

    /// The line's name. Panics if `id` is from another, larger set.
    pub fn name(&self, id: LineId) -> &str {
        &self.names[id.index()]
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Every line, in declaration order, `default` last.
    pub fn ids(&self) -> impl Iterator<Item = LineId> + '_ {
        (0..self.names.len()).filter_map(LineId::new)
    }

    /// Every line's name, indexed by [`LineId::index`].
    pub fn names(&self) -> &[String] {
        &self.names
    }
}
