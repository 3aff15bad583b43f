//! What the HTTP front-ends count, in the shapes they share: latency histograms with fixed
//! buckets, response counters by status class, and each listener's connection counters
//! (connections, TLS handshakes, connection-level errors).
//!
//! This module owns the counting primitives and the registry of listeners that `/metrics`
//! and `/status` read ([`HttpListeners`]). Everything on a request's path is a relaxed
//! atomic increment into memory allocated when the listener or the rule was made: no lock,
//! no allocation. It does not decide what a front-end counts (the redirector's and the
//! proxy's own metrics modules do) and renders only through [`Exposition`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::exposition::Exposition;

/// The upper bounds of the latency buckets, in microseconds: the Prometheus client
/// defaults (5 ms to 10 s) with 1 ms and 2.5 ms below for a near origin, and 30 s above
/// for the response timeout's default.
const BUCKETS_US: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// A latency histogram with fixed buckets: one bucket increment and one sum addition per
/// observation. Buckets are stored per bucket and summed when rendered.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// `buckets[i]` counts observations in (`BUCKETS_US[i-1]`, `BUCKETS_US[i]`]; the last
    /// counts those above every bound.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` samples of family `name` (started by the
    /// caller) with `labels` before `le`.
    pub(crate) fn render(&self, out: &mut Exposition, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            let le = match BUCKETS_US.get(i) {
                Some(&us) => format!("{}", us as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            out.sample(&bucket, &with_le, cumulative as f64);
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        out.sample(&format!("{name}_sum"), labels, sum);
        out.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

/// The `code` label of a status class, as nginx-vts and HAProxy write it.
pub(crate) const CODE_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// The index in [`CODE_CLASSES`] of `status`.
pub(crate) fn code_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => CODE_CLASSES.len() - 1,
    }
}

/// Responses by status class.
#[derive(Debug, Default)]
pub(crate) struct ByCode([AtomicU64; CODE_CLASSES.len()]);

impl ByCode {
    pub(crate) fn count(&self, status: u16) {
        self.0[code_class(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// `(code label, count)` for every class.
    pub(crate) fn get(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CODE_CLASSES
            .iter()
            .zip(&self.0)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
    }
}

/// Why a connection ended before a request could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionError {
    /// The PROXY protocol header was missing or malformed.
    ProxyProtocol,
    /// No PROXY header or TLS handshake within `header_read_timeout`.
    HandshakeTimeout,
    /// The TLS handshake failed (no shared version or cipher, unknown name, garbage).
    Tls,
}

impl ConnectionError {
    pub(crate) const ALL: [ConnectionError; 3] = [
        ConnectionError::ProxyProtocol,
        ConnectionError::HandshakeTimeout,
        ConnectionError::Tls,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            ConnectionError::ProxyProtocol => "proxy_protocol",
            ConnectionError::HandshakeTimeout => "handshake_timeout",
            ConnectionError::Tls => "tls",
        }
    }
}

/// One listener: what it is (for `/status`) and what happened on it (for `/metrics`).
#[derive(Debug)]
pub(crate) struct ListenerMetrics {
    /// `redirect` or `proxy`.
    pub role: &'static str,
    /// As bound (a configured port 0 resolved).
    pub address: SocketAddr,
    pub tls: bool,
    pub proxy_protocol: bool,
    /// Its front-end's part of the live certificate set (`None` for a plain listener).
    pub certificates: Option<usize>,
    connections: AtomicU64,
    handshakes: AtomicU64,
    resumed: AtomicU64,
    errors: [AtomicU64; ConnectionError::ALL.len()],
}

impl ListenerMetrics {
    pub(crate) fn new(
        role: &'static str,
        address: SocketAddr,
        proxy_protocol: bool,
        certificates: Option<usize>,
    ) -> ListenerMetrics {
        ListenerMetrics {
            role,
            address,
            tls: certificates.is_some(),
            proxy_protocol,
            certificates,
            connections: AtomicU64::new(0),
            handshakes: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            errors: Default::default(),
        }
    }

    pub(crate) fn accepted(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A completed TLS handshake; `resumed` when rustls resumed a session.
    pub(crate) fn handshake(&self, resumed: bool) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        if resumed {
            self.resumed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn error(&self, e: ConnectionError) {
        self.errors[e as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Every HTTP listener of the server, the redirector's then the proxy's, each in
/// configuration order: what `/metrics` and `/status` list. Touched when listeners start
/// or stop, never per request. A listener a configuration reload removes leaves the list
/// (its series leave `/metrics`) as soon as it stops accepting.
#[derive(Debug, Default)]
pub(crate) struct HttpListeners {
    listeners: Mutex<Vec<Arc<ListenerMetrics>>>,
}

impl HttpListeners {
    /// Makes `listeners` the ones of front-end `role`, replacing those it had.
    pub(crate) fn set(&self, role: &'static str, listeners: Vec<Arc<ListenerMetrics>>) {
        let mut list = self.lock();
        list.retain(|l| l.role != role);
        list.extend(listeners);
        // Stable: each front-end's stay in configuration order.
        list.sort_by_key(|l| l.role != "redirect");
    }

    pub(crate) fn list(&self) -> Vec<Arc<ListenerMetrics>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ListenerMetrics>>> {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The listener families: connections, TLS handshakes and connection errors.
    pub(crate) fn render(&self, out: &mut Exposition) {
        let list = self.list();
        let addrs: Vec<String> = list.iter().map(|l| l.address.to_string()).collect();
        let each = |out: &mut Exposition, name: &str, f: &dyn Fn(&ListenerMetrics) -> u64| {
            for (l, addr) in list.iter().zip(&addrs) {
                out.sample(name, &[("role", l.role), ("listener", addr)], f(l) as f64);
            }
        };
        const CONNECTIONS: &str = "geoline_http_connections_total";
        out.family(
            CONNECTIONS,
            "counter",
            "Connections accepted, by front-end (role) and listener address.",
        );
        each(out, CONNECTIONS, &|l| l.connections.load(Ordering::Relaxed));
        const HANDSHAKES: &str = "geoline_http_tls_handshakes_total";
        out.family(
            HANDSHAKES,
            "counter",
            "TLS handshakes on TLS listeners, by result (completed, failed).",
        );
        for (l, addr) in list.iter().zip(&addrs).filter(|(l, _)| l.tls) {
            let failed = l.errors[ConnectionError::Tls as usize].load(Ordering::Relaxed);
            for (result, n) in [
                ("completed", l.handshakes.load(Ordering::Relaxed)),
                ("failed", failed),
            ] {
                let labels = [("role", l.role), ("listener", addr), ("result", result)];
                out.sample(HANDSHAKES, &labels, n as f64);
            }
        }
        const RESUMED: &str = "geoline_http_tls_resumed_handshakes_total";
        out.family(
            RESUMED,
            "counter",
            "Completed TLS handshakes that resumed an earlier session.",
        );
        for (l, addr) in list.iter().zip(&addrs).filter(|(l, _)| l.tls) {
            let labels = [("role", l.role), ("listener", addr)];
            out.sample(RESUMED, &labels, l.resumed.load(Ordering::Relaxed) as f64);
        }
        const ERRORS: &str = "geoline_http_connection_errors_total";
        out.family(
            ERRORS,
            "counter",
            "Connections closed before a request could be read, by kind: proxy_protocol (a missing or malformed PROXY header), handshake_timeout (no PROXY header or TLS handshake in time), tls (a failed TLS handshake).",
        );
        for (l, addr) in list.iter().zip(&addrs) {
            for e in ConnectionError::ALL {
                let labels = [("role", l.role), ("listener", addr), ("kind", e.label())];
                let n = l.errors[e as usize].load(Ordering::Relaxed);
                out.sample(ERRORS, &labels, n as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(1_000));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = Exposition::new();
        h.render(&mut out, "x_seconds", &[("a", "b")]);
        let text = out.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "x_seconds_bucket{a=\"b\",le=\"0.001\"} 1");
        assert_eq!(lines[1], "x_seconds_bucket{a=\"b\",le=\"0.0025\"} 1");
        assert_eq!(lines[2], "x_seconds_bucket{a=\"b\",le=\"0.005\"} 2");
        assert_eq!(lines[13], "x_seconds_bucket{a=\"b\",le=\"30\"} 2");
        assert_eq!(lines[14], "x_seconds_bucket{a=\"b\",le=\"+Inf\"} 3");
        assert_eq!(lines[15], "x_seconds_sum{a=\"b\"} 60.004");
        assert_eq!(lines[16], "x_seconds_count{a=\"b\"} 3");
    }

    #[test]
    fn status_classes() {
        assert_eq!(CODE_CLASSES[code_class(101)], "1xx");
        assert_eq!(CODE_CLASSES[code_class(200)], "2xx");
        assert_eq!(CODE_CLASSES[code_class(308)], "3xx");
        assert_eq!(CODE_CLASSES[code_class(421)], "4xx");
        assert_eq!(CODE_CLASSES[code_class(599)], "5xx");
        assert_eq!(CODE_CLASSES[code_class(600)], "other");
    }
}
