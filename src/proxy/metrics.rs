//! Counters for the admin endpoint's `/metrics`.
//!
//! This module owns what the proxy counts: requests and their responses by status class,
//! the answers it made itself, upstream errors by kind, body bytes in and out, rewrites
//! (responses and occurrences), the time spent decoding, rewriting and encoding bodies, and
//! the latency to the response head. Each is a relaxed atomic into memory allocated with
//! the proxy: no lock, no allocation per request. [`ProxyMetrics::render`] writes the
//! families for the admin listener; [`ProxyMetrics::snapshot`] reads the plain counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::exposition::Exposition;
use crate::http::metrics::{ByCode, Histogram};

/// Live counters shared by every clone of a [`Proxy`](super::Proxy) (and kept across
/// configuration reloads of `geoline serve`).
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    requests: AtomicU64,
    misdirected: AtomicU64,
    bad_gateway: AtomicU64,
    gateway_timeout: AtomicU64,
    upstream_connect: AtomicU64,
    upstream_response: AtomicU64,
    upstream_body: AtomicU64,
    rewritten: AtomicU64,
    replacements: AtomicU64,
    upgraded: AtomicU64,
    body_bytes: AtomicU64,
    request_body_bytes: AtomicU64,
    /// Nanoseconds spent in each [`BodyStage`].
    body_nanos: [AtomicU64; 3],
    responses: ByCode,
    /// From the request to the response head.
    pub(crate) latency: Histogram,
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
    /// 502s because no connection to the origin could be made (TCP or TLS).
    pub upstream_connect: u64,
    /// 502s because the origin's response was not valid HTTP, or the connection broke.
    pub upstream_response: u64,
    /// 502s because a body to rewrite could not be read or decoded, or decoded past the limit.
    pub upstream_body: u64,
    /// Responses whose body went through the rewriter.
    pub rewritten: u64,
    /// Origin hosts replaced in rewritten bodies.
    pub replacements: u64,
    /// Connections switched to another protocol (WebSocket) and spliced.
    pub upgraded: u64,
    /// Response body bytes handed to clients, after rewriting and encoding.
    pub body_bytes: u64,
    /// Request body bytes received from clients and sent on to the origin.
    pub request_body_bytes: u64,
}

pub(crate) enum Event {
    Request,
    Misdirected,
    BadGateway,
    GatewayTimeout,
    UpstreamConnect,
    UpstreamResponse,
    UpstreamBody,
    Rewritten,
    Upgraded,
}

/// A stage of a rewritten body's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyStage {
    Decode,
    Rewrite,
    Encode,
}

impl ProxyMetrics {
    pub(crate) fn count(&self, e: Event) {
        let c = match e {
            Event::Request => &self.requests,
            Event::Misdirected => &self.misdirected,
            Event::BadGateway => &self.bad_gateway,
            Event::GatewayTimeout => &self.gateway_timeout,
            Event::UpstreamConnect => &self.upstream_connect,
            Event::UpstreamResponse => &self.upstream_response,
            Event::UpstreamBody => &self.upstream_body,
            Event::Rewritten => &self.rewritten,
            Event::Upgraded => &self.upgraded,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_body_bytes(&self, n: u64) {
        self.body_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_request_body_bytes(&self, n: u64) {
        self.request_body_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_replacements(&self, n: u64) {
        if n > 0 {
            self.replacements.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_body_time(&self, stage: BodyStage, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.body_nanos[stage as usize].fetch_add(ns, Ordering::Relaxed);
    }

    /// A response head handed out, `elapsed` after the request arrived.
    pub(crate) fn responded(&self, status: u16, elapsed: Duration) {
        self.responses.count(status);
        self.latency.observe(elapsed);
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
            upstream_connect: get(&self.upstream_connect),
            upstream_response: get(&self.upstream_response),
            upstream_body: get(&self.upstream_body),
            rewritten: get(&self.rewritten),
            replacements: get(&self.replacements),
            upgraded: get(&self.upgraded),
            body_bytes: get(&self.body_bytes),
            request_body_bytes: get(&self.request_body_bytes),
        }
    }

    /// The `geoline_proxy_*` families (`this` is `None` without a `[proxy]`: all at zero).
    pub(crate) fn render(this: Option<&ProxyMetrics>, out: &mut Exposition) {
        let zero = ProxyMetrics::default();
        let m = this.unwrap_or(&zero);
        let p = m.snapshot();
        let counter = |out: &mut Exposition, name: &str, help: &str, value: u64| {
            out.family(name, "counter", help);
            out.sample(name, &[], value as f64);
        };
        counter(
            out,
            "geoline_proxy_requests_total",
            "Requests the [proxy] listeners received.",
            p.requests,
        );
        const RESPONSES: &str = "geoline_proxy_http_responses_total";
        out.family(
            RESPONSES,
            "counter",
            "Responses by status class (the origin's, or the proxy's own 4xx/5xx).",
        );
        for (code, n) in m.responses.get() {
            out.sample(RESPONSES, &[("code", code)], n as f64);
        }
        const ERRORS: &str = "geoline_proxy_error_responses_total";
        out.family(
            ERRORS,
            "counter",
            "Responses the proxy made itself, by status: 421 (a host not in the pairs), 502 (origin unreachable, refused or broken), 504 (origin too slow).",
        );
        for (status, n) in [
            ("421", p.misdirected),
            ("502", p.bad_gateway),
            ("504", p.gateway_timeout),
        ] {
            out.sample(ERRORS, &[("status", status)], n as f64);
        }
        const UPSTREAM: &str = "geoline_proxy_upstream_errors_total";
        out.family(
            UPSTREAM,
            "counter",
            "Origin failures, by kind: connect (no TCP or TLS connection: 502), response (no valid response head: 502), timeout (no response head in time: 504), body (a body to rewrite unreadable, undecodable or over the decoded limit: 502).",
        );
        for (kind, n) in [
            ("connect", p.upstream_connect),
            ("response", p.upstream_response),
            ("timeout", p.gateway_timeout),
            ("body", p.upstream_body),
        ] {
            out.sample(UPSTREAM, &[("kind", kind)], n as f64);
        }
        const BYTES: &str = "geoline_proxy_bytes_total";
        out.family(
            BYTES,
            "counter",
            "Body bytes: in (request bodies from clients), out (response bodies to clients, after rewriting and encoding).",
        );
        out.sample(BYTES, &[("direction", "in")], p.request_body_bytes as f64);
        out.sample(BYTES, &[("direction", "out")], p.body_bytes as f64);
        counter(
            out,
            "geoline_proxy_rewritten_responses_total",
            "Responses whose body went through the rewriter.",
            p.rewritten,
        );
        counter(
            out,
            "geoline_proxy_replacements_total",
            "Origin hosts replaced by public hosts in rewritten bodies.",
            p.replacements,
        );
        const BODY_TIME: &str = "geoline_proxy_body_seconds_total";
        out.family(
            BODY_TIME,
            "counter",
            "CPU time spent on rewritten bodies, by stage: decode (gzip, deflate, br, zstd from the origin), rewrite, encode (for the client).",
        );
        for (stage, s) in [
            ("decode", BodyStage::Decode),
            ("rewrite", BodyStage::Rewrite),
            ("encode", BodyStage::Encode),
        ] {
            let ns = m.body_nanos[s as usize].load(Ordering::Relaxed);
            out.sample(BODY_TIME, &[("stage", stage)], ns as f64 / 1e9);
        }
        const LATENCY: &str = "geoline_proxy_request_duration_seconds";
        out.family(
            LATENCY,
            "histogram",
            "From the request to the response head (the origin's, or the proxy's own answer).",
        );
        m.latency.render(out, LATENCY, &[]);
        counter(
            out,
            "geoline_proxy_upgraded_connections_total",
            "Connections switched to another protocol (WebSocket) and spliced.",
            p.upgraded,
        );
        counter(
            out,
            "geoline_proxy_response_body_bytes_total",
            "Response body bytes handed to clients, after rewriting and encoding (as geoline_proxy_bytes_total{direction=\"out\"}).",
            p.body_bytes,
        );
    }
}
