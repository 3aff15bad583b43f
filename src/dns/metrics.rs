//! The DNS server's counters: every response sent (by zone, line, query type and rcode,
//! by transport, truncated, with Client Subnet) and the TCP listener's connections, and
//! their series in the Prometheus text format ([`DnsMetrics::render`]).
//!
//! Counting must cost the hot path next to nothing: every counter exists from the start in
//! one flat array of atomics indexed by (zone, line, query type, rcode), so recording a
//! response is an index computation and one relaxed `fetch_add` — no lock, no map, no
//! allocation. [`super::Responder::answer`] records every response it gives; the TCP listener
//! counts its connections. Rate limiting counts what it holds back itself
//! ([`super::rrl::RrlMetrics`]). This module does not know where zones or databases come
//! from, or serve HTTP.

use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::outcome::{Outcome, Transport};
use crate::exposition::Exposition;

/// The query types counted on their own; every other type is counted as `other`.
const QTYPES: [RecordType; 15] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::NS,
    RecordType::SOA,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::HTTPS,
    RecordType::SVCB,
    RecordType::PTR,
    RecordType::DS,
    RecordType::DNSKEY,
    RecordType::ANY,
];
const QTYPE_BUCKETS: usize = QTYPES.len() + 1;

/// The rcodes an authoritative server sends, with the mnemonics `dig` prints; anything
/// else is counted as `other`.
const RCODE_NAMES: [&str; 7] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS",
];
const RCODES: [ResponseCode; 7] = [
    ResponseCode::NoError,
    ResponseCode::FormErr,
    ResponseCode::ServFail,
    ResponseCode::NXDomain,
    ResponseCode::NotImp,
    ResponseCode::Refused,
    ResponseCode::BADVERS,
];
const RCODE_BUCKETS: usize = RCODES.len() + 1;

fn qtype_bucket(qtype: Option<RecordType>) -> usize {
    qtype
        .and_then(|t| QTYPES.iter().position(|&q| q == t))
        .unwrap_or(QTYPES.len())
}

fn rcode_bucket(rcode: ResponseCode) -> usize {
    RCODES
        .iter()
        .position(|&r| r == rcode)
        .unwrap_or(RCODES.len())
}

fn qtype_label(bucket: usize) -> String {
    QTYPES
        .get(bucket)
        .map_or_else(|| "other".to_string(), |t| t.to_string())
}

fn rcode_label(bucket: usize) -> String {
    RCODE_NAMES
        .get(bucket)
        .copied()
        .unwrap_or("other")
        .to_string()
}

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    }
}

const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

/// Counters of the responses the DNS listeners send.
///
/// Zone and line are indices: zone `i` is the `i`th configured zone (a reload never
/// changes how many zones there are or their order), and one more slot stands for
/// "no zone" (REFUSED, malformed queries). Lines are [`crate::lines::LineId`]s, with one
/// more slot for "no line".
pub(crate) struct DnsMetrics {
    zones: usize,
    lines: usize,
    by_answer: Box<[AtomicU64]>,
    by_transport: [AtomicU64; 2],
    truncated: [AtomicU64; 2],
    with_client_subnet: AtomicU64,
    /// The TCP listener's connections.
    pub tcp: TcpMetrics,
}

impl DnsMetrics {
    /// Counters for `zones` zones and `lines` lines (`default` included).
    pub(crate) fn new(zones: usize, lines: usize) -> DnsMetrics {
        let len = (zones + 1) * (lines + 1) * QTYPE_BUCKETS * RCODE_BUCKETS;
        DnsMetrics {
            zones,
            lines,
            by_answer: (0..len).map(|_| AtomicU64::new(0)).collect(),
            by_transport: Default::default(),
            truncated: Default::default(),
            with_client_subnet: AtomicU64::new(0),
            tcp: TcpMetrics::default(),
        }
    }

    fn index(&self, zone: usize, line: usize, qtype: usize, rcode: usize) -> usize {
        ((zone * (self.lines + 1) + line) * QTYPE_BUCKETS + qtype) * RCODE_BUCKETS + rcode
    }

    /// Counts one response sent: what was answered, over which transport, and whether it
    /// was truncated.
    pub(crate) fn record(&self, outcome: &Outcome, transport: Transport) {
        let (zone, line) = match outcome.zone {
            Some((z, l)) if z < self.zones && l.index() < self.lines => (z, l.index()),
            _ => (self.zones, self.lines),
        };
        let qtype = qtype_bucket(outcome.qtype);
        let i = self.index(zone, line, qtype, rcode_bucket(outcome.rcode));
        if let Some(c) = self.by_answer.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let t = transport_index(transport);
        self.by_transport[t].fetch_add(1, Ordering::Relaxed);
        if outcome.truncated {
            self.truncated[t].fetch_add(1, Ordering::Relaxed);
        }
        if outcome.had_client_subnet {
            self.with_client_subnet.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes the response and TCP families. `zone_name(i)` names zone `i`, `line_name(i)`
    /// line `i`.
    pub(crate) fn render(
        &self,
        out: &mut Exposition,
        zone_name: impl Fn(usize) -> String,
        line_name: impl Fn(usize) -> String,
    ) {
        out.family(
            "geoline_dns_responses_total",
            "counter",
            "DNS responses sent, by zone, line, query type and rcode (zone and line \"none\" when no zone answered).",
        );
        for zone in 0..=self.zones {
            let zone_label = if zone == self.zones {
                "none".to_string()
            } else {
                zone_name(zone)
            };
            for line in 0..=self.lines {
                let line_label = if line == self.lines {
                    "none".to_string()
                } else {
                    line_name(line)
                };
                for qtype in 0..QTYPE_BUCKETS {
                    for rcode in 0..RCODE_BUCKETS {
                        let n = self.by_answer[self.index(zone, line, qtype, rcode)]
                            .load(Ordering::Relaxed);
                        // Families stay small: a series appears once it has counted something.
                        if n == 0 {
                            continue;
                        }
                        out.sample(
                            "geoline_dns_responses_total",
                            &[
                                ("zone", &zone_label),
                                ("line", &line_label),
                                ("qtype", &qtype_label(qtype)),
                                ("rcode", &rcode_label(rcode)),
                            ],
                            n as f64,
                        );
                    }
                }
            }
        }
        out.family(
            "geoline_dns_transport_responses_total",
            "counter",
            "DNS responses sent, by transport.",
        );
        for (t, name) in TRANSPORTS.iter().enumerate() {
            out.sample(
                "geoline_dns_transport_responses_total",
                &[("transport", name)],
                self.by_transport[t].load(Ordering::Relaxed) as f64,
            );
        }
        out.family(
            "geoline_dns_truncated_responses_total",
            "counter",
            "DNS responses sent with TC set because they did not fit, by transport.",
        );
        for (t, name) in TRANSPORTS.iter().enumerate() {
            out.sample(
                "geoline_dns_truncated_responses_total",
                &[("transport", name)],
                self.truncated[t].load(Ordering::Relaxed) as f64,
            );
        }
        out.family(
            "geoline_dns_client_subnet_queries_total",
            "counter",
            "DNS queries that carried an EDNS Client Subnet option.",
        );
        out.sample(
            "geoline_dns_client_subnet_queries_total",
            &[],
            self.with_client_subnet.load(Ordering::Relaxed) as f64,
        );
        self.tcp.render(out);
    }
}

/// Why a TCP connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpRefusal {
    /// `tcp_max_connections` were open.
    Total,
    /// `tcp_max_connections_per_client` were open from the client.
    PerClient,
}

/// Why geoline closed a TCP connection (clients closing, and errors, are not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpClose {
    IdleTimeout,
    /// A started message did not arrive whole in time.
    ReadTimeout,
    /// A response was not taken in time.
    WriteTimeout,
    /// `tcp_max_queries_per_connection` answered.
    QueryLimit,
}

/// Labels, in the order of the enums' variants (which index the counters).
const TCP_REFUSALS: [&str; 2] = ["total", "per_client"];
const TCP_CLOSES: [&str; 4] = [
    "idle_timeout",
    "read_timeout",
    "write_timeout",
    "query_limit",
];

/// The TCP listener's connections: open now, accepted, refused by limit, closed by geoline.
#[derive(Default)]
pub(crate) struct TcpMetrics {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: [AtomicU64; TCP_REFUSALS.len()],
    closed: [AtomicU64; TCP_CLOSES.len()],
}

impl TcpMetrics {
    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, reason: TcpRefusal) {
        self.refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn close_reason(&self, reason: TcpClose) {
        self.closed[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut Exposition) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        out.family(
            "geoline_dns_tcp_connections_open",
            "gauge",
            "DNS TCP connections open now.",
        );
        out.sample("geoline_dns_tcp_connections_open", &[], load(&self.open));
        out.family(
            "geoline_dns_tcp_connections_accepted_total",
            "counter",
            "DNS TCP connections accepted within the limits.",
        );
        out.sample(
            "geoline_dns_tcp_connections_accepted_total",
            &[],
            load(&self.accepted),
        );
        out.family(
            "geoline_dns_tcp_connections_refused_total",
            "counter",
            "DNS TCP connections closed on accept because a limit was reached, by limit.",
        );
        for (i, label) in TCP_REFUSALS.iter().enumerate() {
            out.sample(
                "geoline_dns_tcp_connections_refused_total",
                &[("limit", label)],
                load(&self.refused[i]),
            );
        }
        out.family(
            "geoline_dns_tcp_connections_closed_total",
            "counter",
            "DNS TCP connections geoline closed, by reason (timeouts and the query limit).",
        );
        for (i, label) in TCP_CLOSES.iter().enumerate() {
            out.sample(
                "geoline_dns_tcp_connections_closed_total",
                &[("reason", label)],
                load(&self.closed[i]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_labels() {
        assert_eq!(qtype_label(qtype_bucket(Some(RecordType::AAAA))), "AAAA");
        assert_eq!(qtype_label(qtype_bucket(Some(RecordType::NULL))), "other");
        assert_eq!(qtype_label(qtype_bucket(None)), "other");
        assert_eq!(
            rcode_label(rcode_bucket(ResponseCode::NXDomain)),
            "NXDOMAIN"
        );
        assert_eq!(rcode_label(rcode_bucket(ResponseCode::Refused)), "REFUSED");
        assert_eq!(rcode_label(rcode_bucket(ResponseCode::BADVERS)), "BADVERS");
        assert_eq!(rcode_label(rcode_bucket(ResponseCode::YXDomain)), "other");
    }
}
