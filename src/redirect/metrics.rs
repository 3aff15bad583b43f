//! What the redirector counts: requests by how they were answered.
//!
//! This module owns the redirector's counters, one relaxed atomic increment per request;
//! it does not format them ([`crate::admin`] renders them in `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// How the redirector answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Sent to the rule's target (the client's line is one the rule lists).
    Redirected,
    /// Passed through to the origin (a covered host, a client in no listed line).
    PassedThrough,
    /// Answered by the redirector itself: `/healthz`, a host no rule covers (421), a
    /// request it cannot read (400).
    Local,
}

impl Outcome {
    /// Every outcome, in the order of their counters.
    pub(crate) const ALL: [Outcome; 3] =
        [Outcome::Redirected, Outcome::PassedThrough, Outcome::Local];

    /// The `outcome` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Redirected => "redirected",
            Outcome::PassedThrough => "passed_through",
            Outcome::Local => "local",
        }
    }
}

/// The redirector's counters, shared by all its listeners.
#[derive(Debug, Default)]
pub(crate) struct RedirectMetrics {
    requests: [AtomicU64; Outcome::ALL.len()],
}

impl RedirectMetrics {
    pub(crate) fn count(&self, outcome: Outcome) {
        self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered with `outcome` since start.
    pub(crate) fn requests(&self, outcome: Outcome) -> u64 {
        self.requests[outcome as usize].load(Ordering::Relaxed)
    }
}
