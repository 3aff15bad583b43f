//! Counters for the admin endpoint's `/metrics`.
//!
//! This module owns what the proxy counts (requests and how they ended, response body
//! bytes handed to clients); it does not format them: the admin module renders a
//! [`ProxyMetricsSnapshot`] in whatever format it serves.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters shared by every clone of a [`Proxy`](super::Proxy).
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    requests: AtomicU64,
    misdirected: AtomicU64,
    bad_gateway: AtomicU64,
    gateway_timeout: AtomicU64,
    rewritten: AtomicU64,
    upgraded: AtomicU64,
    body_bytes: AtomicU64,
}

/// The counters at one moment. All count since the proxy was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyMetricsSnapshot {
    /// Requests received.
    pub requests: u64,
    /// Answered 421: a host that is not one of the pairs.
    pub misdirected: u64,
    /// Answered 502: origin unreachable, TLS refused, broken or oversized body.
    pub bad_gateway: u64,
    /// Answered 504: the origin's response head did not come in time.
    pub gateway_timeout: u64,
    /// Responses whose body went through the rewriter.
    pub rewritten: u64,
    /// Connections switched to another protocol (WebSocket) and spliced.
    pub upgraded: u64,
    /// Response body bytes handed to clients, after rewriting and encoding.
    pub body_bytes: u64,
}

pub(crate) enum Event {
    Request,
    Misdirected,
    BadGateway,
    GatewayTimeout,
    Rewritten,
    Upgraded,
}

impl ProxyMetrics {
    pub(crate) fn count(&self, e: Event) {
        let c = match e {
            Event::Request => &self.requests,
            Event::Misdirected => &self.misdirected,
            Event::BadGateway => &self.bad_gateway,
            Event::GatewayTimeout => &self.gateway_timeout,
            Event::Rewritten => &self.rewritten,
            Event::Upgraded => &self.upgraded,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_body_bytes(&self, n: u64) {
        self.body_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now. Each is read on its own, so a snapshot taken while requests run
    /// may be a few events apart between counters.
    pub fn snapshot(&self) -> ProxyMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProxyMetricsSnapshot {
            requests: get(&self.requests),
            misdirected: get(&self.misdirected),
            bad_gateway: get(&self.bad_gateway),
            gateway_timeout: get(&self.gateway_timeout),
            rewritten: get(&self.rewritten),
            upgraded: get(&self.upgraded),
            body_bytes: get(&self.body_bytes),
        }
    }
}
