//! The DNS server's counters: every response sent (by zone, line, query type and rcode,
//! by transport, truncated, with Client Subnet) and the TCP listener's connections, and
//! their series in the Prometheus text format ([`DnsMetrics::render`]).
//!
//! Counting must cost the hot path next to nothing: each zone's counters exist from when
//! the zone is served in one flat array of atomics indexed by (line, query type, rcode), so
//! recording a response is a snapshot load, an index computation and one relaxed
//! `fetch_add` — no lock, no map, no allocation (except once after a reload changed the
//! list of zones, when the blocks are put in the new order). [`super::Responder::answer`] records every response it gives; the TCP listener
//! counts its connections. Rate limiting counts what it holds back itself
//! ([`super::rrl::RrlMetrics`]). This module does not know where zones or databases come
//! from, or serve HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use super::outcome::{Outcome, Transport};
use crate::exposition::Exposition;
use crate::zone::ZoneSet;

/// A block of `len` counters at zero.
fn new_block(len: usize) -> Block {
    (0..len).map(|_| AtomicU64::new(0)).collect()
}

fn bump(block: &[AtomicU64], i: usize) {
    if let Some(c) = block.get(i) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

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

/// One zone's response counters (or those of responses no zone answered), by (line, query
/// type, rcode), with one more line slot for "no line".
type Block = Arc<[AtomicU64]>;

/// The zones' counter blocks in the order of one zone set's zones.
struct ZoneBlocks {
    /// The [`ZoneSet::layout`] the blocks are in the order of.
    layout: u64,
    blocks: Vec<(Name, Block)>,
    /// The layout before the last change and its blocks: a response answered from a
    /// snapshot taken just before a reload changed the list counts where it belongs.
    previous: Option<(u64, Vec<Block>)>,
}

/// Counters of the responses the DNS listeners send.
///
/// Each zone has its block of counters, kept by origin: a configuration reload that adds,
/// removes or reorders zones gives an added zone a block at zero, drops a removed zone's
/// (its series leave `/metrics`), and leaves every other zone counting on. A response is
/// counted by its zone's index in the snapshot it was answered from; the blocks are held in
/// that snapshot's order, rearranged when a snapshot with another list of zones is seen.
/// Lines are [`crate::lines::LineId`]s (no reload changes them), with one more slot for
/// "no line".
pub(crate) struct DnsMetrics {
    lines: usize,
    zones: ArcSwap<ZoneBlocks>,
    /// Taken to rearrange `zones`, so that two rearrangements do not lose a block.
    rearranging: Mutex<()>,
    /// Responses no zone answered (REFUSED, malformed queries).
    no_zone: Block,
    by_transport: [AtomicU64; 2],
    truncated: [AtomicU64; 2],
    with_client_subnet: AtomicU64,
    /// The TCP listener's connections.
    pub tcp: TcpMetrics,
}

impl DnsMetrics {
    /// Counters for the zones of `zones` and `lines` lines (`default` included).
    pub(crate) fn new(zones: &ZoneSet, lines: usize) -> DnsMetrics {
        let block_len = (lines + 1) * QTYPE_BUCKETS * RCODE_BUCKETS;
        DnsMetrics {
            lines,
            zones: ArcSwap::from_pointee(ZoneBlocks {
                layout: zones.layout(),
                blocks: zones
                    .zones()
                    .iter()
                    .map(|z| (z.origin().clone(), new_block(block_len)))
                    .collect(),
                previous: None,
            }),
            rearranging: Mutex::new(()),
            no_zone: new_block(block_len),
            by_transport: Default::default(),
            truncated: Default::default(),
            with_client_subnet: AtomicU64::new(0),
            tcp: TcpMetrics::default(),
        }
    }

    fn index(&self, line: usize, qtype: usize, rcode: usize) -> usize {
        (line * QTYPE_BUCKETS + qtype) * RCODE_BUCKETS + rcode
    }

    /// The blocks in the order of `zones`: rearranged (kept by origin, new ones at zero,
    /// removed ones dropped) when its list of zones is not the one they are in.
    fn blocks_for(&self, zones: &ZoneSet) -> Arc<ZoneBlocks> {
        let held = self.zones.load_full();
        if held.layout == zones.layout() {
            return held;
        }
        let _one = self
            .rearranging
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = self.zones.load_full();
        if held.layout == zones.layout() {
            return held;
        }
        let block_len = self.no_zone.len();
        let blocks = zones
            .zones()
            .iter()
            .map(|z| {
                let kept = held.blocks.iter().find(|(origin, _)| origin == z.origin());
                let block = kept.map_or_else(|| new_block(block_len), |(_, b)| b.clone());
                (z.origin().clone(), block)
            })
            .collect();
        let next = Arc::new(ZoneBlocks {
            layout: zones.layout(),
            blocks,
            previous: Some((
                held.layout,
                held.blocks.iter().map(|(_, b)| b.clone()).collect(),
            )),
        });
        self.zones.store(next.clone());
        next
    }

    /// Counts one response sent, answered from `zones`: what was answered, over which
    /// transport, and whether it was truncated.
    pub(crate) fn record(&self, outcome: &Outcome, transport: Transport, zones: &ZoneSet) {
        let qtype = qtype_bucket(outcome.qtype);
        let rcode = rcode_bucket(outcome.rcode);
        let no_zone = self.index(self.lines, qtype, rcode);
        match outcome.zone {
            Some((z, l)) if l.index() < self.lines => {
                let i = self.index(l.index(), qtype, rcode);
                let held = self.zones.load();
                let block = if held.layout == zones.layout() {
                    held.blocks.get(z).map(|(_, b)| b)
                } else {
                    match &held.previous {
                        Some((layout, blocks)) if *layout == zones.layout() => blocks.get(z),
                        _ => None,
                    }
                };
                match block {
                    Some(block) => bump(block, i),
                    None => match self.blocks_for(zones).blocks.get(z) {
                        Some((_, block)) => bump(block, i),
                        None => bump(&self.no_zone, no_zone),
                    },
                }
            }
            _ => bump(&self.no_zone, no_zone),
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

    /// Writes the response and TCP families: one series per zone of `zones` (what is
    /// served now) that counted something; `line_name(i)` names line `i`.
    pub(crate) fn render(
        &self,
        out: &mut Exposition,
        zones: &ZoneSet,
        line_name: impl Fn(usize) -> String,
    ) {
        out.family(
            "geoline_dns_responses_total",
            "counter",
            "DNS responses sent, by zone, line, query type and rcode (zone and line \"none\" when no zone answered).",
        );
        let held = self.blocks_for(zones);
        let named = held
            .blocks
            .iter()
            .map(|(origin, b)| (origin.to_string(), b));
        let none = std::iter::once(("none".to_string(), &self.no_zone));
        for (zone_label, block) in named.chain(none) {
            for line in 0..=self.lines {
                let line_label = if line == self.lines {
                    "none".to_string()
                } else {
                    line_name(line)
                };
                for qtype in 0..QTYPE_BUCKETS {
                    for rcode in 0..RCODE_BUCKETS {
                        let n = block
                            .get(self.index(line, qtype, rcode))
                            .map_or(0, |c| c.load(Ordering::Relaxed));
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
    use std::path::Path;

    use super::*;
    use crate::dns::outcome::ResponseKind;
    use crate::lines::LineId;
    use crate::zone::Zone;

    fn zone(origin: &str) -> Zone {
        let text = format!("$ORIGIN {origin}\n@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\n");
        Zone::from_text(Path::new("z.zone"), &text, None).expect("zone")
    }

    fn answered(zone: usize) -> Outcome {
        Outcome {
            zone: LineId::new(0).map(|line| (zone, line)),
            qtype: Some(RecordType::A),
            rcode: ResponseCode::NoError,
            had_client_subnet: false,
            truncated: false,
            kind: ResponseKind::Answer,
        }
    }

    fn rendered(metrics: &DnsMetrics, zones: &ZoneSet) -> Vec<String> {
        let mut out = Exposition::new();
        metrics.render(&mut out, zones, |_| "default".to_string());
        out.finish()
            .lines()
            .filter(|l| l.starts_with("geoline_dns_responses_total{"))
            .map(str::to_string)
            .collect()
    }

    fn series(zone: &str, n: u64) -> String {
        format!(
            "geoline_dns_responses_total{{zone=\"{zone}\",line=\"default\",qtype=\"A\",rcode=\"NOERROR\"}} {n}"
        )
    }

    #[test]
    fn a_zone_keeps_its_counts_by_origin_when_the_list_of_zones_changes() {
        let empty = ZoneSet::load(&[], &crate::lines::LineSet::default_only()).expect("empty");
        let before = empty.with_zones(vec![zone("a.test."), zone("b.test.")]);
        let metrics = DnsMetrics::new(&before, 1);
        metrics.record(&answered(0), Transport::Udp, &before);
        metrics.record(&answered(1), Transport::Udp, &before);
        metrics.record(&answered(1), Transport::Udp, &before);
        // b moves to the front, a is removed, c is added.
        let after = before.with_zones(vec![zone("b.test."), zone("c.test.")]);
        assert_ne!(after.layout(), before.layout());
        metrics.record(&answered(0), Transport::Udp, &after);
        metrics.record(&answered(1), Transport::Udp, &after);
        // Answered from a snapshot taken before the change: still b's.
        metrics.record(&answered(1), Transport::Udp, &before);
        assert_eq!(
            rendered(&metrics, &after),
            [series("b.test.", 4), series("c.test.", 1)]
        );
    }

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
