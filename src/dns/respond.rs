//! From query bytes to a response: the authoritative server's behaviour, minus the sockets.
//!
//! This module owns the choices a name server makes around the zone lookup: which errors
//! get which rcode, which address decides the line, what scope the Client Subnet option
//! carries back, and how large a UDP response may be. It is a pure function of the
//! snapshots it is handed (zones, line map) and the query; the listeners in
//! [`super::udp`] and [`super::tcp`] only move bytes.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};

use super::query::{EdnsRequest, Query, QueryError};
use super::response::{EdnsReply, Encoded, Response};
use super::rrl::ResponseKind;
use crate::lines::{LineId, LineMap};
use crate::zone::{AnswerCode, Zone, ZoneSet};

/// How the query arrived: it bounds the response size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The data a response is decided from, one consistent snapshot per query.
pub(crate) struct Snapshot<'a> {
    pub zones: &'a ZoneSet,
    pub lines: &'a LineMap,
    /// Advertised in every OPT and the most geoline sends over UDP.
    pub max_udp_payload: u16,
}

/// A decided response, and what it was decided on (for logs and metrics).
#[derive(Debug)]
pub struct Decision {
    pub response: Response,
    /// The largest encoding the transport allows for it.
    pub size_limit: usize,
    /// The zone's index in the [`ZoneSet`] and the line, when a zone answered.
    pub zone: Option<(usize, LineId)>,
    pub had_client_subnet: bool,
    /// The wildcard the answer was synthesized from ([`crate::zone::Answer::wildcard`]).
    pub wildcard: Option<Name>,
}

/// What was answered, for logs and metrics: the same whether the UDP path answered from a
/// prepared answer ([`super::prepared`]) or from a [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The zone's index in the [`ZoneSet`] and the line, when a zone answered.
    pub zone: Option<(usize, LineId)>,
    /// The question's type, when there was a readable question.
    pub qtype: Option<RecordType>,
    pub rcode: ResponseCode,
    pub had_client_subnet: bool,
    pub truncated: bool,
    /// What the response is, for rate limiting.
    pub kind: ResponseKind,
}

impl Decision {
    /// The outcome once the response is encoded.
    pub fn outcome(&self, encoded: Encoded) -> Outcome {
        Outcome {
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
        }
    }
}

/// Decides the response to `bytes` received from `source`; `None` means stay silent.
pub(crate) fn respond(
    snapshot: &Snapshot<'_>,
    bytes: &[u8],
    source: IpAddr,
    transport: Transport,
) -> Option<Decision> {
    let query = match Query::parse(bytes) {
        Ok(q) => q,
        Err(e) => return error_response(snapshot, e, transport),
    };
    let edns = query.edns;
    let had_client_subnet = edns.is_some_and(|e| e.client_subnet.is_some());
    let size_limit = size_limit(snapshot, edns.as_ref(), transport);
    let reply = |scope: u8| {
        edns.map(|e| EdnsReply {
            udp_payload: snapshot.max_udp_payload,
            dnssec_ok: e.dnssec_ok,
            client_subnet: e.client_subnet.map(|s| (s, scope)),
        })
    };
    let q = &query.question;
    let refuse = |rcode: ResponseCode| Decision {
        response: Response::empty(query.header, rcode, Some(q.clone()), reply(0)),
        size_limit,
        zone: None,
        had_client_subnet,
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
    let Some((zone_index, zone)) = snapshot.zones.find_indexed(&q.name) else {
        return Some(refuse(ResponseCode::Refused));
    };

    // A source prefix of 0 asks that the resolver's own address decide (RFC 7871 7.1.2).
    let client_subnet = edns.and_then(|e| e.client_subnet);
    let client = match client_subnet {
        Some(s) if s.source_prefix > 0 => s.address,
        _ => source,
    };
    let class = snapshot.lines.classify(client);
    let scope = match client_subnet {
        Some(s) if s.source_prefix > 0 && zone.varies_by_line(&q.name, q.qtype) => class.scope,
        _ => 0,
    };
    let (mut response, wildcard) = zone_response(zone, class.line, &query);
    response.edns = reply(scope);
    Some(Decision {
        response,
        size_limit,
        zone: Some((zone_index, class.line)),
        had_client_subnet,
        wildcard,
    })
}

/// The zone's answer to `query` as `line` sees it, without OPT: the part of a response
/// that depends on nothing but (zone, line, name, type); and the wildcard it was
/// synthesized from, if it was.
pub(crate) fn zone_response(zone: &Zone, line: LineId, query: &Query) -> (Response, Option<Name>) {
    let q = &query.question;
    let mut answer = zone.lookup(line, &q.name, q.qtype);
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
    (response, answer.wildcard)
}

fn size_limit(snapshot: &Snapshot<'_>, edns: Option<&EdnsRequest>, transport: Transport) -> usize {
    match (transport, edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => usize::from(e.udp_payload.min(snapshot.max_udp_payload)),
    }
}

fn error_response(
    snapshot: &Snapshot<'_>,
    error: QueryError,
    transport: Transport,
) -> Option<Decision> {
    let plain_edns = |present: bool| {
        present.then_some(EdnsReply {
            udp_payload: snapshot.max_udp_payload,
            dnssec_ok: false,
            client_subnet: None,
        })
    };
    let (response, had_edns) = match error {
        QueryError::Drop => return None,
        QueryError::NotImplemented {
            header, question, ..
        } => (
            Response::empty(header, ResponseCode::NotImp, question, None),
            false,
        ),
        QueryError::FormErr {
            header,
            question,
            had_edns,
            ..
        } => (
            Response::empty(
                header,
                ResponseCode::FormErr,
                question,
                plain_edns(had_edns),
            ),
            had_edns,
        ),
        QueryError::BadVersion {
            header, question, ..
        } => (
            Response::empty(
                header,
                ResponseCode::BADVERS,
                Some(question),
                plain_edns(true),
            ),
            true,
        ),
    };
    let size_limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp if had_edns => usize::from(snapshot.max_udp_payload),
        Transport::Udp => 512,
    };
    Some(Decision {
        response,
        size_limit,
        zone: None,
        had_client_subnet: false,
        wildcard: None,
    })
}
