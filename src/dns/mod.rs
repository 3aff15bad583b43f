//! The authoritative DNS server: queries in, per-line answers out, over UDP and TCP.
//!
//! Every message goes through one door, [`Responder::answer`]. It takes one snapshot of the
//! live data and dispatches on the opcode: a QUERY is answered from the UDP worker's
//! [`cache`] when it can be, else by [`decide`], the strict path (every error included).
//! UDP responses then pass rate limiting ([`rrl`]), and every response is counted
//! ([`metrics`]). [`wire`] is the packet library both paths read and write through (header,
//! OPT, Client Subnet, names, truncation); [`outcome`] is what either path answered.
//! [`udp`] and [`tcp`] only move bytes; [`sys`] holds the crate's `unsafe` code (the
//! batched socket calls and the coarse clock; a prefetch hint, `util::prefetch`, is the only
//! other). New opcodes (NOTIFY, UPDATE, zone
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
// The crate's `unsafe` code (with util::prefetch's one hint), each block with its SAFETY note.
#[allow(unsafe_code)]
pub(crate) mod sys;
pub(crate) mod tcp;
pub mod tsig;
pub(crate) mod udp;
pub(crate) mod wire;

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::OpCode;
use hickory_proto::rr::{Name, RecordType};
use tracing::debug;

use crate::exposition::Exposition;
use crate::live::Live;
use crate::xfr::{self, Transfers};
use crate::zone::ZoneSet;
use cache::AnswerCache;
use config::RrlConfig;
use decide::{Decided, Snapshot};
use metrics::DnsMetrics;
use outcome::{Answered, CountedName, Outcome, ResponseKind, Transport};
use rrl::{Rrl, RrlMetrics};
use tsig::{Checked, Rejection, Verified};
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
    /// Zone transfers (AXFR, IXFR) and their ACLs; without them every transfer is REFUSED.
    transfers: Option<Arc<Transfers>>,
}

impl Responder {
    /// A responder answering from `live`, with metrics sized for its zones and lines, rate
    /// limiting UDP answers when `rrl` is given.
    pub fn new(live: Arc<Live>, max_udp_payload: u16, rrl: Option<&RrlConfig>) -> Responder {
        let metrics = DnsMetrics::new(&live.zones.load(), live.classifier.load().lines().len());
        Responder {
            live,
            max_udp_payload,
            metrics,
            rrl: rrl.map(Rrl::new),
            transfers: None,
        }
    }

    /// The responder answering zone transfers with `transfers`.
    pub(crate) fn with_transfers(mut self, transfers: Arc<Transfers>) -> Responder {
        self.transfers = Some(transfers);
        self
    }

    /// The transfers and the query, when `request` is an AXFR or IXFR query and
    /// transfers are configured.
    fn transfer(&self, request: &[u8]) -> Option<(&Transfers, wire::query::Query)> {
        let transfers = self.transfers.as_deref()?;
        let query = xfr_query(request)?;
        transfers.offered().then_some((transfers, query))
    }

    /// The zone transfers it answers, if any.
    pub(crate) fn transfers(&self) -> Option<&Transfers> {
        self.transfers.as_deref()
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
        self.with_zones(&zones, f)
    }

    /// [`Responder::with_snapshot`] on the zones `zones`.
    fn with_zones<T>(&self, zones: &Arc<ZoneSet>, f: impl FnOnce(&Snapshot<'_>) -> T) -> T {
        let classifier = self.live.classifier.load();
        f(&Snapshot {
            zones,
            classifier: &classifier,
            health: &self.live.health,
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
    /// query without deciding again; TCP passes none. Then TSIG ([`tsig::check`]): a
    /// signed message is verified or refused before anything else reads it, and the
    /// response to a verified one is signed. UDP responses to unsigned messages then go
    /// through rate limiting, and every response sent is counted. `None` means send
    /// nothing; `out` holds the response when it returns `Some`.
    pub fn answer(
        &self,
        message: &[u8],
        from: IpAddr,
        via: Transport,
        cache: Option<&mut AnswerCache>,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        self.answer_into(message, from, via, cache, out, None)
    }

    /// [`Responder::answer`] for a TCP connection, which can take more than one message:
    /// the first (or only) response is in `out`, and `rest` receives the rest of a zone
    /// transfer, which the connection sends under its own write timeout.
    pub(crate) fn answer_tcp(
        &self,
        message: &[u8],
        from: IpAddr,
        out: &mut Vec<u8>,
        rest: &mut Option<xfr::Stream>,
    ) -> Option<Outcome> {
        self.answer_into(message, from, Transport::Tcp, None, out, Some(rest))
    }

    fn answer_into(
        &self,
        message: &[u8],
        from: IpAddr,
        via: Transport,
        cache: Option<&mut AnswerCache>,
        out: &mut Vec<u8>,
        rest: Option<&mut Option<xfr::Stream>>,
    ) -> Option<Outcome> {
        // Held to the count: the response is counted under the zone it was answered from.
        let zones = self.live.zones.load();
        let outcome = self.with_zones(&zones, |snapshot| {
            let opcode = Header::read(message).map(|h| OpCode::from_u8(h.opcode()));
            // The cache's reader takes nothing but an OPT record in the additional
            // section, so it never answers a signed message: those all reach the TSIG
            // check below, and the common unsigned query pays nothing for it.
            if let (Some(OpCode::Query), Some(cache)) = (opcode, cache)
                && let Some(answered) = cache.answer(snapshot, message, from, out)
            {
                return self.rate_limited(from, via, &answered, snapshot.zones, out);
            }
            let verified = match tsig::check(&self.live.keys.load(), message, tsig::now) {
                Checked::Unsigned => None,
                Checked::Verified(verified) => Some(verified),
                Checked::Rejected(rejection) => {
                    return self.rejected(&rejection, message, from, via, snapshot.zones, out);
                }
            };
            // What the opcode's arm reads: the message without its TSIG record. The
            // identity of a signed request is the key it was verified with
            // (`verified.as_ref().map(Verified::key)`, `None` when unsigned): the UPDATE
            // arm decides on it. A response leaves `signature_room` bytes free under the
            // transport's limit for the signature added below.
            let request = verified.as_ref().map_or(message, Verified::message);
            let signature_room = verified.as_ref().map_or(0, |v| v.signer().record_len());
            // NOTIFY, UPDATE and zone transfers have arms of their own here, each
            // writing its response into `out` and saying what it answered (an
            // `Answered`). The strict path answers what no arm does, errors included
            // (FORMERR, NOTIMP or silence).
            let decided;
            let answered = match opcode {
                Some(OpCode::Update) => {
                    let key = verified.as_ref().map(|v| v.key().name());
                    self.answer_update(request, key, out)?
                }
                Some(OpCode::Notify) => {
                    let key = verified.as_ref().map(|v| v.key().name());
                    self.live
                        .secondaries
                        .answer_notify(snapshot.zones, request, key, from, out)?
                }
                Some(OpCode::Query) if let Some((transfers, query)) = self.transfer(request) => {
                    let key = verified.as_ref().map(|v| v.key().name());
                    let signer = verified.as_ref().map(Verified::signer);
                    let answer = transfers.answer(
                        snapshot.zones,
                        &query,
                        request,
                        key,
                        signer,
                        from,
                        via,
                        self.max_udp_payload,
                        out,
                    );
                    if let Some(stream) = answer.stream {
                        // Its messages are signed as a stream, the first one included.
                        if let Some(rest) = rest {
                            *rest = Some(stream);
                        }
                        return Some(answer.answered.outcome);
                    }
                    answer.answered
                }
                // The line-definition digest (`lines.geoline.` CH TXT), for those a
                // transfer would be given to.
                Some(OpCode::Query) if let Some(query) = xfr::chaos::query(request) => {
                    let key = verified.as_ref().map(|v| v.key().name());
                    let allowed = self.transfers().is_some_and(|t| t.allows(key, from));
                    let classifier = snapshot.classifier;
                    let digest = allowed.then(|| {
                        crate::lines::digest::digest(classifier.lines(), classifier.rules())
                    });
                    let requested = query.edns.map(|e| e.udp_payload);
                    let limit = decide::size_limit(via, requested, self.max_udp_payload)
                        .saturating_sub(signature_room);
                    xfr::chaos::answer(&query, digest, self.max_udp_payload, limit, out)
                }
                _ => {
                    decided = decide::decide(snapshot, request, from, via)?;
                    let limit = decided.size_limit.saturating_sub(signature_room);
                    let encoded = decided.response.encode(limit, out);
                    decided.answered(encoded)
                }
            };
            match &verified {
                // Signed responses are not rate limited: the requester holds the key, and
                // a slipped (rewritten) response would lose its signature.
                Some(verified) => {
                    verified.signer().sign(out, tsig::now());
                    Some(answered.outcome)
                }
                None => self.rate_limited(from, via, &answered, snapshot.zones, out),
            }
        })?;
        self.metrics.record(&outcome, via, &zones);
        Some(outcome)
    }

    /// Rate limiting of UDP responses, when configured: `None` drops the response, and a
    /// slipped one is rewritten in `out`.
    fn rate_limited(
        &self,
        from: IpAddr,
        via: Transport,
        answered: &Answered<'_>,
        zones: &ZoneSet,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        match (&self.rrl, via) {
            (Some(rrl), Transport::Udp) => rrl.limit(from, answered, zones, out),
            _ => Some(answered.outcome),
        }
    }

    /// The response to a message the TSIG step refused (FORMERR, or NOTAUTH with the TSIG
    /// error), logged at debug level with the reason and the key's name.
    fn rejected(
        &self,
        rejection: &Rejection,
        message: &[u8],
        from: IpAddr,
        via: Transport,
        zones: &ZoneSet,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        let rejected = tsig::reject::write(rejection, message, self.max_udp_payload, out)?;
        debug!(
            client = %from,
            key = rejection.key_name().as_deref().unwrap_or("-"),
            reason = rejection.reason(),
            "TSIG refused a request"
        );
        let answered = Answered {
            outcome: Outcome {
                zone: None,
                qtype: rejected.qtype.map(RecordType::from),
                rcode: rejected.rcode,
                had_client_subnet: false,
                truncated: false,
                kind: ResponseKind::Error,
            },
            name: CountedName::None,
        };
        self.rate_limited(from, via, &answered, zones, out)
    }

    /// The UPDATE arm: the update goes to the zones' writer ([`crate::update`]) with the
    /// key that signed it, if any, and the writer answers it.
    fn answer_update(
        &self,
        message: &[u8],
        key: Option<&Name>,
        out: &mut Vec<u8>,
    ) -> Option<Answered<'static>> {
        let answered = self
            .live
            .updates
            .answer(&self.live.zones, message, key, out)?;
        Some(Answered {
            outcome: Outcome {
                zone: None,
                qtype: Some(RecordType::SOA),
                rcode: answered.rcode,
                had_client_subnet: false,
                truncated: false,
                kind: ResponseKind::classify(answered.rcode, true, 0, true),
            },
            name: CountedName::None,
        })
    }

    /// The strict path alone, without cache, rate limiting or counting: the decided
    /// response before encoding, which `benches/hot_path.rs` times apart. The listeners
    /// go through [`Responder::answer`].
    #[doc(hidden)]
    pub fn decide(&self, message: &[u8], from: IpAddr, via: Transport) -> Option<Decided> {
        self.with_snapshot(|snapshot| decide::decide(snapshot, message, from, via))
    }
}

/// The query, when `request` is a well-formed AXFR or IXFR query.
fn xfr_query(request: &[u8]) -> Option<wire::query::Query> {
    // A look at the first question's type first: most messages here are not transfers,
    // and the strict path parses them again.
    let at = wire::skip_name(request, wire::HEADER_LEN)?;
    let qtype = request.get(at..at + 2)?;
    if qtype != [0, 252] && qtype != [0, 251] {
        return None;
    }
    let query = wire::query::Query::parse(request).ok()?;
    matches!(query.question.qtype, RecordType::AXFR | RecordType::IXFR).then_some(query)
}

/// Writes every DNS series into `out`: responses and TCP connections ([`DnsMetrics`]), then
/// what rate limiting held back, every series zeros included, so that a dashboard sees the
/// families whether or not limiting is on. `zones` are the zones served now, `line_name(i)`
/// names line `i`.
pub(crate) fn render_metrics(
    dns: Option<&Responder>,
    out: &mut Exposition,
    zones: &ZoneSet,
    line_name: impl Fn(usize) -> String,
) {
    match dns {
        Some(dns) => dns.metrics.render(out, zones, line_name),
        None => DnsMetrics::new(zones, 0).render(out, zones, line_name),
    }
    match dns.and_then(|dns| dns.rrl.as_ref()) {
        Some(rrl) => rrl.metrics().render(out),
        None => RrlMetrics::default().render(out),
    }
}
