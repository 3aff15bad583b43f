//! The authoritative DNS server: queries in, per-line answers out, over UDP and TCP.
//!
//! Every message goes through one door, [`Responder::answer`]. It takes one snapshot of the
//! live data and dispatches on the opcode: a QUERY is answered from the UDP worker's
//! [`cache`] when it can be, else by [`decide`], the strict path (every error included).
//! UDP responses then pass rate limiting ([`rrl`]), and every response is counted
//! ([`metrics`]). [`wire`] is the packet library both paths read and write through (header,
//! OPT, Client Subnet, names, truncation); [`outcome`] is what either path answered.
//! [`udp`] and [`tcp`] only move bytes; [`sys`] holds the crate's only `unsafe` code (the
//! batched socket calls and the coarse clock). New opcodes (NOTIFY, UPDATE, zone
//! transfers) are new arms of the dispatch in [`Responder::answer`].
//!
//! This module does not load zones or databases and does not reload them: it reads whatever
//! [`Live`] holds when a query arrives, so a reload never blocks a query.

pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod decide;
pub(crate) mod metrics;
pub(crate) mod outcome;
pub(crate) mod rrl;
// The crate's only `unsafe` code, each block with its SAFETY note.
#[allow(unsafe_code)]
pub(crate) mod sys;
pub(crate) mod tcp;
pub(crate) mod udp;
pub(crate) mod wire;

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::OpCode;

use crate::exposition::Exposition;
use crate::live::Live;
use cache::AnswerCache;
use config::RrlConfig;
use decide::{Decided, Snapshot};
use metrics::DnsMetrics;
use outcome::{Outcome, Transport};
use rrl::{Rrl, RrlMetrics};
use wire::Header;

/// The one door every DNS message goes through ([`Responder::answer`]), and what only
/// DNS has besides the live data it answers from: the advertised UDP payload size, rate
/// limiting and the counters. Built only when a DNS listener is configured; the listeners
/// share one.
pub struct Responder {
    live: Arc<Live>,
    max_udp_payload: u16,
    /// Bumped for every response sent.
    metrics: DnsMetrics,
    /// Response rate limiting of UDP answers, when configured.
    rrl: Option<Rrl>,
}

impl Responder {
    /// A responder answering from `live`, with metrics sized for its zones and lines, rate
    /// limiting UDP answers when `rrl` is given.
    pub fn new(live: Arc<Live>, max_udp_payload: u16, rrl: Option<&RrlConfig>) -> Responder {
        let zones = live.zones.load().zones().len();
        let lines = live.classifier.load().lines().len();
        Responder {
            live,
            max_udp_payload,
            metrics: DnsMetrics::new(zones, lines),
            rrl: rrl.map(Rrl::new),
        }
    }

    /// The live data it answers from.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The counters of the responses sent and of the TCP listener's connections.
    pub(crate) fn metrics(&self) -> &DnsMetrics {
        &self.metrics
    }

    /// Runs `f` on one consistent snapshot of the zones and the classifier.
    fn with_snapshot<T>(&self, f: impl FnOnce(&Snapshot<'_>) -> T) -> T {
        let zones = self.live.zones.load();
        let classifier = self.live.classifier.load();
        f(&Snapshot {
            zones: &zones,
            classifier: &classifier,
            max_udp_payload: self.max_udp_payload,
        })
    }

    /// A cache for one UDP worker, sized for the zones served now (a reload that grows
    /// them keeps the size).
    pub fn answer_cache(&self) -> AnswerCache {
        AnswerCache::for_zones(&self.live.zones.load())
    }

    /// Answers one DNS message into `out`, whatever the transport: the one way every
    /// message is answered. UDP workers pass their `cache`, which answers the common
    /// query without deciding again; TCP passes none. UDP responses then go through rate
    /// limiting, and every response sent is counted. `None` means send nothing; `out`
    /// holds the response when it returns `Some`.
    pub fn answer(
        &self,
        message: &[u8],
        from: IpAddr,
        via: Transport,
        cache: Option<&mut AnswerCache>,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        let outcome = self.with_snapshot(|snapshot| {
            let opcode = Header::read(message).map(|h| OpCode::from_u8(h.opcode()));
            let answered = match opcode {
                Some(OpCode::Query) => cache.and_then(|c| c.answer(snapshot, message, from, out)),
                // NOTIFY, UPDATE and zone transfers (over TCP only) get arms of their own
                // here, behind a TSIG check; until then the strict path answers every other
                // opcode NOTIMP.
                _ => None,
            };
            // What no arm answered, errors included (FORMERR, NOTIMP or silence).
            let decided;
            let answered = match answered {
                Some(answered) => answered,
                None => {
                    decided = decide::decide(snapshot, message, from, via)?;
                    let encoded = decided.response.encode(decided.size_limit, out);
                    decided.answered(encoded)
                }
            };
            match (&self.rrl, via) {
                (Some(rrl), Transport::Udp) => rrl.limit(from, &answered, out),
                _ => Some(answered.outcome),
            }
        })?;
        self.metrics.record(&outcome, via);
        Some(outcome)
    }

    /// The strict path alone, without cache, rate limiting or counting: the decided
    /// response before encoding, which `benches/hot_path.rs` times apart. The listeners
    /// go through [`Responder::answer`].
    #[doc(hidden)]
    pub fn decide(&self, message: &[u8], from: IpAddr, via: Transport) -> Option<Decided> {
        self.with_snapshot(|snapshot| decide::decide(snapshot, message, from, via))
    }
}

/// Writes every DNS series into `out`: responses and TCP connections ([`DnsMetrics`]), then
/// what rate limiting held back, every series zeros included, so that a dashboard sees the
/// families whether or not limiting is on. `zone_name(i)` names zone `i`, `line_name(i)`
/// line `i`.
pub(crate) fn render_metrics(
    dns: Option<&Responder>,
    out: &mut Exposition,
    zone_name: impl Fn(usize) -> String,
    line_name: impl Fn(usize) -> String,
) {
    match dns {
        Some(dns) => dns.metrics.render(out, zone_name, line_name),
        None => DnsMetrics::new(0, 0).render(out, zone_name, line_name),
    }
    match dns.and_then(|dns| dns.rrl.as_ref()) {
        Some(rrl) => rrl.metrics().render(out),
        None => RrlMetrics::default().render(out),
    }
}
