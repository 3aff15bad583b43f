//! From query bytes to a decided response: the authoritative server's behaviour, minus the
//! sockets and minus the cache.
//!
//! This module owns the choices a name server makes around the zone lookup: which query
//! gets which rcode, and how large a response may be ([`size_limit`]). Which address
//! decides the line and what scope the Client Subnet option carries back are the rules of
//! [`super::wire::ecs`], which the cache ([`super::cache`]) follows too. It is a pure
//! function of the snapshot it is handed (zones, classifier) and the query.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};

use super::outcome::{Answered, CountedName, Outcome, ResponseKind, Transport};
use super::wire::MIN_PAYLOAD;
use super::wire::ecs;
use super::wire::query::{Query, QueryError};
use super::wire::response::{EdnsReply, Encoded, Response};
use crate::health::filter::Chosen;
use crate::health::weights::{self, ClientKey};
use crate::health::{Health, HealthTable};
use crate::lines::{Classifier, LineId};
use crate::zone::{AnswerCode, Zone, ZoneSet};

/// The data a response is decided from, one consistent snapshot per message.
pub(crate) struct Snapshot<'a> {
    pub(crate) zones: &'a Arc<ZoneSet>,
    pub(crate) classifier: &'a Arc<Classifier>,
    /// The health of watched addresses ([`crate::health`]).
    pub(crate) health: &'a Health,
    /// Advertised in every OPT and the most geoline sends over UDP.
    pub(crate) max_udp_payload: u16,
}

/// A decided response, and what it was decided on (for rate limiting and metrics).
#[derive(Debug)]
pub struct Decided {
    pub response: Response,
    /// The largest encoding the transport allows for it.
    pub size_limit: usize,
    /// The zone's index in the [`ZoneSet`] and the line, when a zone answered.
    zone: Option<(usize, LineId)>,
    had_client_subnet: bool,
    /// The wildcard the answer was synthesized from ([`crate::zone::Answer::wildcard`]).
    wildcard: Option<Name>,
}

impl Decided {
    /// What was answered, once the response is encoded.
    pub(crate) fn answered(&self, encoded: Encoded) -> Answered<'_> {
        let outcome = Outcome {
            zone: self.zone,
            qtype: self.response.question.as_ref().map(|q| q.qtype),
            rcode: self.response.rcode,
            had_client_subnet: self.had_client_subnet,
            truncated: encoded.truncated,
            kind: ResponseKind::classify(
                self.response.rcode,
                self.response.authoritative,
                self.response.answers.len(),
                self.zone.is_some(),
            ),
        };
        let name = match (&self.wildcard, &self.response.question) {
            (Some(wildcard), _) => CountedName::Name(wildcard),
            (None, Some(q)) => CountedName::Name(&q.name),
            (None, None) => CountedName::None,
        };
        Answered { outcome, name }
    }
}

/// The largest response `transport` allows: 64 KiB over TCP; over UDP the requester's
/// payload size (`requested`, from its OPT record) up to `max_udp_payload`, or 512 without
/// EDNS. One rule for the cache and the strict path.
pub(crate) fn size_limit(
    transport: Transport,
    requested: Option<u16>,
    max_udp_payload: u16,
) -> usize {
    match (transport, requested) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => usize::from(MIN_PAYLOAD),
        (Transport::Udp, Some(payload)) => usize::from(payload.min(max_udp_payload)),
    }
}

/// Decides the response to `bytes` received from `source`; `None` means stay silent.
pub(crate) fn decide(
    snapshot: &Snapshot<'_>,
    bytes: &[u8],
    source: IpAddr,
    transport: Transport,
) -> Option<Decided> {
    let query = match Query::parse(bytes) {
        Ok(q) => q,
        Err(e) => return error_response(snapshot, e, transport),
    };
    let edns = query.edns;
    let client_subnet = edns.and_then(|e| e.client_subnet);
    let size_limit = size_limit(
        transport,
        edns.map(|e| e.udp_payload),
        snapshot.max_udp_payload,
    );
    let reply = |scope: u8| edns.map(|e| EdnsReply::answering(&e, snapshot.max_udp_payload, scope));
    let q = &query.question;
    let refuse = |rcode: ResponseCode| Decided {
        response: Response::empty(query.header, rcode, Some(q.clone()), reply(0)),
        size_limit,
        zone: None,
        had_client_subnet: client_subnet.is_some(),
        wildcard: None,
    };

    if q.qclass != DNSClass::IN {
        return Some(refuse(ResponseCode::Refused));
    }
    match q.qtype {
        // Zone transfers are not offered: REFUSED, as BIND and Knot say without an ACL.
        RecordType::AXFR | RecordType::IXFR => return Some(refuse(ResponseCode::Refused)),
        RecordType::OPT => return Some(refuse(ResponseCode::FormErr)),
        RecordType::Unknown(253) | RecordType::Unknown(254) => {
            return Some(refuse(ResponseCode::NotImp));
        }
        _ => {}
    }
    let Some((zone_index, zone)) = snapshot.zones.find_answering(&q.name, q.qtype) else {
        return Some(refuse(ResponseCode::Refused));
    };
    // A secondary zone before its first transfer or after it expired (as BIND says).
    if !zone.serves() {
        return Some(refuse(ResponseCode::ServFail));
    }

    let class = snapshot
        .classifier
        .map()
        .classify(ecs::client(client_subnet, source));
    let scope = ecs::scope(
        client_subnet,
        || zone.varies_by_line(&q.name, q.qtype),
        class.scope,
    );
    let health = snapshot.health.table();
    let client = ClientKey::of(ecs::client(client_subnet, source));
    let (mut response, wildcard, chosen) = zone_response(
        zone,
        health.as_deref().map(|t| &**t),
        class.line,
        &query,
        Some(client),
    );
    let scope = match chosen {
        Chosen::ForLine => scope,
        Chosen::ForSubnet => weights::scope(client_subnet, scope),
    };
    response.edns = reply(scope);
    Some(Decided {
        response,
        size_limit,
        zone: Some((zone_index, class.line)),
        had_client_subnet: client_subnet.is_some(),
        wildcard,
    })
}
/// The zone's answer to `query` as `line` sees it, without OPT: the part of a response
/// that depends on nothing but (zone, health, line, name, type); and the wildcard it was
/// synthesized from, if it was. `health` is `None` when no address is watched. Weighted
/// RRsets are chosen for `client`'s subnet; without one, the answer says
/// [`Chosen::ForSubnet`] and holds every address (not to be served as such).
pub(crate) fn zone_response(
    zone: &Zone,
    health: Option<&HealthTable>,
    line: LineId,
    query: &Query,
    client: Option<ClientKey>,
) -> (Response, Option<Name>, Chosen) {
    let q = &query.question;
    let (mut answer, chosen) = match health {
        None => (zone.lookup(line, &q.name, q.qtype), Chosen::ForLine),
        Some(health) => health.lookup(zone, line, &q.name, q.qtype, client),
    };
    // Owners equal to the question take its spelling, so the case is echoed and the
    // owner compresses to a pointer at the question.
    for record in answer.answers.iter_mut() {
        if record.name == q.name {
            record.name = q.name.clone();
        }
    }
    let rcode = match answer.rcode {
        AnswerCode::NoError => ResponseCode::NoError,
        AnswerCode::NxDomain => ResponseCode::NXDomain,
        AnswerCode::YxDomain => ResponseCode::YXDomain,
    };
    let response = Response {
        header: query.header,
        rcode,
        authoritative: answer.authoritative,
        question: Some(query.question.clone()),
        additional_is_optional: answer.authoritative,
        answers: answer.answers,
        authority: answer.authority,
        additional: answer.additional,
        edns: None,
    };
    (response, answer.wildcard, chosen)
}

/// The response to a query that [`Query::parse`] refused: its rcode and whether it
/// carries an OPT record are the error's ([`QueryError::rcode`]); `None` means stay silent.
fn error_response(
    snapshot: &Snapshot<'_>,
    error: QueryError,
    transport: Transport,
) -> Option<Decided> {
    let rcode = error.rcode()?;
    let max = snapshot.max_udp_payload;
    let edns = error.opt().map(|seen| EdnsReply::error(max, seen));
    // The requester's payload size is not known from a query that did not read: the OPT
    // record, when answered, promises no more than geoline's own.
    let size_limit = size_limit(transport, edns.map(|e| e.udp_payload), max);
    let (header, question) = error.into_parts()?;
    Some(Decided {
        response: Response::empty(header, rcode, question, edns),
        size_limit,
        zone: None,
        had_client_subnet: false,
        wildcard: None,
    })
}
