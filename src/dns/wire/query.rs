//! Reading a query off the wire, in two stages as Knot does: [`QuickQuery`] reads the
//! common shape without allocating (the question stage the answer cache needs), [`Query`]
//! reads anything strictly. Both go through the same readers: the header
//! ([`QueryHeader::read`]) and the OPT record ([`read_edns`]).
//!
//! This module owns the decision of whether a datagram is a query geoline can answer, and
//! what in it matters: the header bits, the one question (its name with the sender's letter
//! case), and the OPT record with its Client Subnet option. It is stricter than a general
//! message decoder because a query is small and its shape is fixed: anything else is
//! FORMERR, and what cannot even carry a FORMERR is dropped. Which rcode each error gets,
//! and whether its response carries an OPT record, is said here too, beside the error
//! ([`QueryError::rcode`]).
//!
//! It does not decide answers ([`crate::dns::decide`]) and does not encode anything.

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::ecs::{ClientSubnet, EcsError};
use super::{
    ADDITIONAL, ANSWER, AUTHORITY, CD, CLASS_IN, HEADER_LEN, Header, MAX_NAME, MIN_PAYLOAD, OPT,
    OPT_FIXED_LEN, QR, QUESTION, RD, dnssec_ok, edns_version, options, read_name_lower,
};

/// The opcode of a standard query, as in the header.
const QUERY_OPCODE: u8 = 0;

/// Header bits and counts of the query, enough to build any response to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryHeader {
    pub(crate) id: u16,
    pub(crate) opcode: u8,
    pub(crate) recursion_desired: bool,
    pub(crate) checking_disabled: bool,
}

impl QueryHeader {
    /// The header of a message, and its section counts; `None` when it is too short for a
    /// header or is a response: answering could reflect traffic, so it gets nothing.
    #[inline]
    fn read(message: &[u8]) -> Option<(QueryHeader, [u16; 4])> {
        let h = Header::read(message)?;
        if h.has(QR) {
            return None;
        }
        let header = QueryHeader {
            id: h.id,
            opcode: h.opcode(),
            recursion_desired: h.has(RD),
            checking_disabled: h.has(CD),
        };
        Some((header, h.counts))
    }
}

/// A question as the query asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// As the sender spelled it: the response echoes its letter case.
    pub(crate) name: Name,
    pub(crate) qtype: RecordType,
    pub(crate) qclass: DNSClass,
}

/// What the query's OPT record asked for (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EdnsRequest {
    pub(crate) version: u8,
    /// The requester's UDP payload size, raised to 512 when it says less (RFC 6891 6.2.5).
    pub(crate) udp_payload: u16,
    pub(crate) dnssec_ok: bool,
    pub(crate) client_subnet: Option<ClientSubnet>,
}

/// Reads an OPT record from its class (the payload size), TTL and rdata; `None` when its
/// options cannot be read. A malformed Client Subnet is reported beside the request rather
/// than instead of it, because BADVERS takes precedence and needs the version.
// Always inlined: a call costs the quick reader a tenth of its time.
#[inline(always)]
fn read_edns(class: u16, ttl: u32, rdata: &[u8]) -> Option<(EdnsRequest, Option<EcsError>)> {
    let mut client_subnet = None;
    let mut error = None;
    for option in options(rdata) {
        let (code, data) = option.ok()?;
        if code == ClientSubnet::OPTION_CODE && error.is_none() {
            if client_subnet.is_some() {
                error = Some(EcsError::Repeated);
            } else {
                match ClientSubnet::parse(data) {
                    Ok(ecs) => client_subnet = Some(ecs),
                    Err(e) => error = Some(e),
                }
            }
        }
    }
    let edns = EdnsRequest {
        version: edns_version(ttl),
        udp_payload: class.max(MIN_PAYLOAD),
        dnssec_ok: dnssec_ok(ttl),
        client_subnet,
    };
    Some((edns, error))
}

/// The OPT record of a query answered with an error: the response carries one too when
/// the query's could be read (RFC 6891 6.1.1), with the DO bit copied (RFC 3225 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptSeen {
    pub(crate) dnssec_ok: bool,
}

impl OptSeen {
    fn of(edns: &EdnsRequest) -> OptSeen {
        OptSeen {
            dnssec_ok: edns.dnssec_ok,
        }
    }
}

/// A query geoline can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub(crate) header: QueryHeader,
    pub(crate) question: Question,
    pub(crate) edns: Option<EdnsRequest>,
}

/// Why a datagram is not an answerable query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Too short for a header, or a response: answering could reflect traffic, so stay silent.
    #[error("not a query; dropped")]
    Drop,
    /// An opcode other than QUERY; the question is echoed when it could be read.
    #[error("opcode {opcode} not implemented")]
    NotImplemented {
        header: QueryHeader,
        opcode: u8,
        question: Option<Question>,
        /// The message's OPT record, when it could be read.
        edns: Option<OptSeen>,
    },
    /// Malformed: wrong counts, bad names, trailing bytes, bad OPT or Client Subnet.
    #[error("malformed query: {reason}")]
    FormErr {
        header: QueryHeader,
        reason: &'static str,
        question: Option<Question>,
        /// The query's OPT record, when it could be read.
        edns: Option<OptSeen>,
    },
    /// An EDNS version above 0 (RFC 6891 6.1.3).
    #[error("EDNS version {version} not supported")]
    BadVersion {
        header: QueryHeader,
        version: u8,
        question: Question,
        /// The DO bit, which the BADVERS response copies (RFC 3225 3).
        dnssec_ok: bool,
    },
}

impl QueryError {
    /// The rcode of the response to the query; `None`: no response at all.
    pub(crate) fn rcode(&self) -> Option<ResponseCode> {
        match self {
            QueryError::Drop => None,
            QueryError::NotImplemented { .. } => Some(ResponseCode::NotImp),
            QueryError::FormErr { .. } => Some(ResponseCode::FormErr),
            QueryError::BadVersion { .. } => Some(ResponseCode::BADVERS),
        }
    }

    /// The query's OPT record, which the response answers with one of its own: BADVERS
    /// always (its rcode needs one), FORMERR and NOTIMP when the message could be read as
    /// far as a well-formed OPT record (RFC 6891 6.1.1).
    pub(crate) fn opt(&self) -> Option<OptSeen> {
        match self {
            QueryError::Drop => None,
            QueryError::NotImplemented { edns, .. } | QueryError::FormErr { edns, .. } => *edns,
            QueryError::BadVersion { dnssec_ok, .. } => Some(OptSeen {
                dnssec_ok: *dnssec_ok,
            }),
        }
    }

    /// The query's header and question (when it could be read), for the response;
    /// `None` for [`QueryError::Drop`].
    pub(crate) fn into_parts(self) -> Option<(QueryHeader, Option<Question>)> {
        match self {
            QueryError::Drop => None,
            QueryError::NotImplemented {
                header, question, ..
            }
            | QueryError::FormErr {
                header, question, ..
            } => Some((header, question)),
            QueryError::BadVersion {
                header, question, ..
            } => Some((header, Some(question))),
        }
    }
}

impl Query {
    /// Parses `bytes` as a DNS query.
    pub fn parse(bytes: &[u8]) -> Result<Query, QueryError> {
        let (header, counts) = QueryHeader::read(bytes).ok_or(QueryError::Drop)?;
        let formerr = |reason, question, edns| QueryError::FormErr {
            header,
            reason,
            question,
            edns,
        };

        let mut decoder = BinDecoder::new(bytes);
        // Skip the header: the decoder only moves forward.
        if decoder.read_slice(HEADER_LEN).is_err() {
            return Err(QueryError::Drop);
        }
        if counts[QUESTION] != 1 {
            // Read on all the same: the FORMERR carries an OPT record if the query has one.
            let edns = (0..counts[QUESTION])
                .all(|_| read_question(&mut decoder).is_some())
                .then(|| opt_after_question(&mut decoder, counts))
                .flatten();
            return Err(formerr(
                "a query must hold exactly one question",
                None,
                edns,
            ));
        }
        let question = read_question(&mut decoder)
            .ok_or_else(|| formerr("the question cannot be read", None, None))?;

        if header.opcode != u8::from(OpCode::Query) {
            return Err(QueryError::NotImplemented {
                header,
                opcode: header.opcode,
                question: Some(question),
                edns: opt_after_question(&mut decoder, counts),
            });
        }
        // RFC 1995 3: an IXFR query holds the requester's SOA in the authority section.
        let ixfr = question.qtype == RecordType::IXFR && counts[AUTHORITY] == 1;
        if counts[ANSWER] != 0 || (counts[AUTHORITY] != 0 && !ixfr) {
            return Err(formerr(
                "a query carries no answer or authority records",
                Some(question),
                None,
            ));
        }
        if ixfr
            && read_record(&mut decoder).is_none_or(|soa| soa.rtype != u16::from(RecordType::SOA))
        {
            return Err(formerr(
                "an IXFR query's authority record is not a readable SOA",
                Some(question),
                None,
            ));
        }

        let mut edns: Option<EdnsRequest> = None;
        let mut ecs_error: Option<EcsError> = None;
        for _ in 0..counts[ADDITIONAL] {
            let seen = edns.as_ref().map(OptSeen::of);
            let Some(record) = read_record(&mut decoder) else {
                return Err(formerr(
                    "an additional record cannot be read",
                    Some(question),
                    seen,
                ));
            };
            if record.rtype != OPT {
                // A TSIG was verified and removed before the message got here
                // (`dns::tsig::check` in `Responder::answer`); other records (SIG(0), ...)
                // are ignored, as a server without their keys would.
                continue;
            }
            if seen.is_some() {
                return Err(formerr("more than one OPT record", Some(question), seen));
            }
            if !record.owner_is_root {
                return Err(formerr("OPT owner is not the root", Some(question), None));
            }
            let Some((opt, error)) = read_edns(record.class, record.ttl, record.rdata) else {
                let seen = OptSeen {
                    dnssec_ok: dnssec_ok(record.ttl),
                };
                return Err(formerr(
                    "OPT options cannot be read",
                    Some(question),
                    Some(seen),
                ));
            };
            ecs_error = error;
            edns = Some(opt);
        }
        if !decoder.is_empty() {
            return Err(formerr(
                "bytes after the last record",
                Some(question),
                edns.as_ref().map(OptSeen::of),
            ));
        }
        if let Some(e) = &edns {
            // BADVERS comes before any look at the options: their meaning depends on the version.
            if e.version > 0 {
                return Err(QueryError::BadVersion {
                    header,
                    version: e.version,
                    question,
                    dnssec_ok: e.dnssec_ok,
                });
            }
        }
        if let Some(error) = ecs_error {
            let seen = edns.as_ref().map(OptSeen::of);
            return Err(formerr(error.reason(), Some(question), seen));
        }
        Ok(Query {
            header,
            question,
            edns,
        })
    }
}

fn read_question(decoder: &mut BinDecoder<'_>) -> Option<Question> {
    let name = Name::read(decoder).ok()?;
    let qtype = RecordType::from(decoder.read_u16().ok()?.unverified());
    let qclass = DNSClass::from(decoder.read_u16().ok()?.unverified());
    Some(Question {
        name,
        qtype,
        qclass,
    })
}

/// The OPT record of a message that will get an error, read past the question section:
/// the answer and authority records are skipped, whatever they are (other opcodes fill
/// them), and the first record of the additional section of type OPT with the root as
/// owner is the OPT. `None` when there is none or a record before it cannot be read.
fn opt_after_question(decoder: &mut BinDecoder<'_>, counts: [u16; 4]) -> Option<OptSeen> {
    for _ in 0..usize::from(counts[ANSWER]) + usize::from(counts[AUTHORITY]) {
        read_record(decoder)?;
    }
    for _ in 0..counts[ADDITIONAL] {
        let r = read_record(decoder)?;
        if r.rtype == OPT && r.owner_is_root {
            return Some(OptSeen {
                dnssec_ok: dnssec_ok(r.ttl),
            });
        }
    }
    None
}

struct RawRecord<'a> {
    owner_is_root: bool,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: &'a [u8],
}

fn read_record<'a>(decoder: &mut BinDecoder<'a>) -> Option<RawRecord<'a>> {
    let owner = Name::read(decoder).ok()?;
    let rtype = decoder.read_u16().ok()?.unverified();
    let class = decoder.read_u16().ok()?.unverified();
    let ttl = decoder.read_u32().ok()?.unverified();
    let len = decoder.read_u16().ok()?.unverified();
    let rdata = decoder.read_slice(len as usize).ok()?.unverified();
    Some(RawRecord {
        owner_is_root: owner.is_root(),
        rtype,
        class,
        ttl,
        rdata,
    })
}

/// What a query in the common shape asks, read without allocating: the question stage.
#[derive(Debug)]
pub struct QuickQuery<'a> {
    pub(crate) header: QueryHeader,
    /// The question as sent (name, type, class): echoed byte for byte.
    pub(crate) question: &'a [u8],
    /// The name in wire form, ASCII letters lower-cased: the cache key.
    name: [u8; MAX_NAME],
    name_len: usize,
    qtype: u16,
    pub(crate) edns: Option<EdnsRequest>,
}

impl<'a> QuickQuery<'a> {
    /// Reads `bytes` if it is a query of the common shape that [`Query::parse`] accepts: one
    /// uncompressed question, at most an OPT record, EDNS version 0, a valid Client Subnet.
    /// `None` sends it to the strict path (which also decides every error).
    pub fn parse(bytes: &'a [u8]) -> Option<QuickQuery<'a>> {
        let (header, counts) = QueryHeader::read(bytes)?;
        if header.opcode != QUERY_OPCODE
            || counts[QUESTION] != 1
            || counts[ANSWER] != 0
            || counts[AUTHORITY] != 0
        {
            return None;
        }
        let with_opt = match counts[ADDITIONAL] {
            0 => false,
            1 => true,
            _ => return None,
        };

        let mut name = [0u8; MAX_NAME];
        let mut at = read_name_lower(bytes, HEADER_LEN, &mut name)?;
        let name_len = at - HEADER_LEN;
        let fixed = bytes.get(at..at + 4)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        // Not IN, zone transfers, OPT as a question, MAILA/MAILB: the strict path refuses.
        if qclass != CLASS_IN || matches!(qtype, OPT | 251..=254) {
            return None;
        }
        at += 4;
        let question = &bytes[HEADER_LEN..at];

        let edns = if with_opt {
            let rest = &bytes[at..];
            if rest.len() < OPT_FIXED_LEN
                || rest[0] != 0
                || u16::from_be_bytes([rest[1], rest[2]]) != OPT
            {
                return None;
            }
            let class = u16::from_be_bytes([rest[3], rest[4]]);
            let ttl = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
            let rdlen = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
            if rest.len() != OPT_FIXED_LEN + rdlen {
                return None;
            }
            // EDNS versions above 0 get BADVERS from the strict path, a second or malformed
            // Client Subnet a FORMERR.
            match read_edns(class, ttl, &rest[OPT_FIXED_LEN..])? {
                (edns, None) if edns.version == 0 => Some(edns),
                _ => return None,
            }
        } else {
            if at != bytes.len() {
                return None;
            }
            None
        };
        Some(QuickQuery {
            header,
            question,
            name,
            name_len,
            qtype,
            edns,
        })
    }

    /// The name in wire form, lower-cased.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name[..self.name_len]
    }

    /// The question's type, as on the wire (unknown types included).
    pub fn qtype(&self) -> u16 {
        self.qtype
    }

    pub(crate) fn client_subnet(&self) -> Option<ClientSubnet> {
        self.edns.and_then(|e| e.client_subnet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::tests::query as build;
    use std::net::IpAddr;

    /// A query with an optional OPT record: (payload, TTL bits, options).
    fn query(name: &str, qtype: u16, opt: Option<(u16, u32, &[u8])>) -> Vec<u8> {
        build(0x1234, name, qtype, opt)
    }

    fn ecs(addr: [u8; 3]) -> Vec<u8> {
        ecs_option(1, 24, 0, &addr)
    }

    fn ecs_option(family: u16, source: u8, scope: u8, addr: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&8u16.to_be_bytes());
        o.extend_from_slice(&((4 + addr.len()) as u16).to_be_bytes());
        o.extend_from_slice(&family.to_be_bytes());
        o.push(source);
        o.push(scope);
        o.extend_from_slice(addr);
        o
    }

    #[test]
    fn plain_query_keeps_case() {
        let q = Query::parse(&build(7, "WwW.Example.COM", 1, None)).expect("query");
        assert_eq!(q.header.id, 7);
        assert!(q.header.recursion_desired);
        assert_eq!(q.question.name.to_string(), "WwW.Example.COM.");
        assert_eq!(q.question.qtype, RecordType::A);
        assert_eq!(q.edns, None);
    }

    #[test]
    fn edns_with_subnet() {
        let opt = ecs_option(1, 24, 0, &[1, 2, 4]);
        let q = Query::parse(&build(1, "a.example", 1, Some((4096, 0x8000, &opt)))).expect("query");
        let e = q.edns.expect("edns");
        assert_eq!(e.udp_payload, 4096);
        assert!(e.dnssec_ok);
        let ecs = e.client_subnet.expect("ecs");
        assert_eq!(ecs.address, "1.2.4.0".parse::<IpAddr>().expect("ip"));
        assert_eq!(ecs.source_prefix, 24);
    }

    #[test]
    fn small_payload_is_raised_to_512() {
        let q = Query::parse(&build(1, "a.example", 1, Some((100, 0, &[])))).expect("query");
        assert_eq!(q.edns.expect("edns").udp_payload, 512);
    }

    #[test]
    fn unknown_options_are_ignored() {
        let opt = [
            0xfd, 0xe9, 0, 3, 1, 2, 3, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let q = Query::parse(&build(1, "a.example", 1, Some((1232, 0, &opt)))).expect("query");
        assert_eq!(q.edns.expect("edns").client_subnet, None);
    }

    fn formerr_reason(bytes: &[u8]) -> &'static str {
        match Query::parse(bytes) {
            Err(QueryError::FormErr { reason, .. }) => reason,
            other => panic!("expected FORMERR, got {other:?}"),
        }
    }

    #[test]
    fn malformed_subnet_is_formerr_with_edns() {
        let opt = ecs_option(1, 33, 0, &[1, 2, 4, 0, 0]);
        match Query::parse(&build(1, "a.example", 1, Some((1232, 0, &opt)))) {
            Err(QueryError::FormErr {
                edns: Some(OptSeen { dnssec_ok: false }),
                question: Some(_),
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn badvers_wins_over_bad_subnet() {
        let opt = ecs_option(1, 33, 0, &[1, 2, 4, 0, 0]);
        match Query::parse(&build(1, "a.example", 1, Some((1232, 0x0001_0000, &opt)))) {
            Err(QueryError::BadVersion { version: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_or_response_is_dropped() {
        assert_eq!(Query::parse(&[0; 11]), Err(QueryError::Drop));
        let mut b = build(1, "a.example", 1, None);
        b[2] |= 0x80;
        assert_eq!(Query::parse(&b), Err(QueryError::Drop));
    }

    #[test]
    fn counts_and_trailing_bytes() {
        let mut b = build(1, "a.example", 1, None);
        b[5] = 2;
        assert_eq!(formerr_reason(&b), "a query must hold exactly one question");
        let mut b = build(1, "a.example", 1, None);
        b[7] = 1;
        assert_eq!(
            formerr_reason(&b),
            "a query carries no answer or authority records"
        );
        let mut b = build(1, "a.example", 1, None);
        b.push(0);
        assert_eq!(formerr_reason(&b), "bytes after the last record");
        let mut b = build(1, "a.example", 1, None);
        b[11] = 1;
        assert_eq!(formerr_reason(&b), "an additional record cannot be read");
    }

    #[test]
    fn two_opts_is_formerr() {
        let mut b = build(1, "a.example", 1, Some((1232, 0, &[])));
        let opt_rr = b[b.len() - 11..].to_vec();
        b.extend_from_slice(&opt_rr);
        b[11] = 2;
        assert_eq!(formerr_reason(&b), "more than one OPT record");
    }

    #[test]
    fn compression_loop_is_formerr() {
        let mut b = build(1, "a", 1, None);
        // The question name becomes a pointer to itself.
        b.truncate(HEADER_LEN);
        b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(formerr_reason(&b), "the question cannot be read");
    }

    #[test]
    fn errors_keep_the_opt_record_and_its_do_bit() {
        // BADVERS copies DO (RFC 3225 3).
        for (ttl, dnssec_ok) in [(0x0001_8000, true), (0x0001_0000, false)] {
            let e = Query::parse(&build(1, "a.example", 1, Some((1232, ttl, &[]))))
                .expect_err("badvers");
            assert_eq!(e.opt(), Some(OptSeen { dnssec_ok }));
        }
        // Zero or two questions: FORMERR, with OPT when one can be read after them.
        let mut two = build(1, "a.example", 1, Some((1232, 0x8000, &[])));
        let question = two[HEADER_LEN..two.len() - OPT_FIXED_LEN].to_vec();
        two.splice(HEADER_LEN..HEADER_LEN, question);
        two[5] = 2;
        let mut zero = build(1, "a.example", 1, Some((1232, 0x8000, &[])));
        let question_len = zero.len() - OPT_FIXED_LEN - HEADER_LEN;
        zero.drain(HEADER_LEN..HEADER_LEN + question_len);
        zero[5] = 0;
        for b in [two, zero] {
            let e = Query::parse(&b).expect_err("formerr");
            assert_eq!(e.rcode(), Some(ResponseCode::FormErr));
            assert_eq!(e.opt(), Some(OptSeen { dnssec_ok: true }));
        }
        let mut plain_two = build(1, "a.example", 1, None);
        plain_two[5] = 2;
        let e = Query::parse(&plain_two).expect_err("formerr");
        assert_eq!(
            e.opt(),
            None,
            "no OPT to answer, and the second question is missing"
        );
    }

    #[test]
    fn other_opcode_is_notimp_with_opt_when_it_has_one() {
        let mut b = build(1, "example.com", 6, Some((1232, 0x8000, &[])));
        b[2] |= 4 << 3; // NOTIFY
        assert_eq!(
            Query::parse(&b).expect_err("notimp").opt(),
            Some(OptSeen { dnssec_ok: true })
        );
        // With a record in the answer section before it, as NOTIFY may carry.
        let mut b = build(1, "example.com", 6, None);
        b[2] |= 4 << 3;
        b[7] = 1;
        b[11] = 1;
        b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        b.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Query::parse(&b).expect_err("notimp").opt(),
            Some(OptSeen { dnssec_ok: false })
        );
    }

    /// An IXFR query for example.com with `rtype` in the authority section.
    fn ixfr(rtype: u16) -> Vec<u8> {
        let mut b = build(1, "example.com", 251, None);
        b[9] = 1;
        b.extend_from_slice(&[0xc0, 12]);
        b.extend_from_slice(&rtype.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, 24, 0xc0, 12, 0xc0, 12]);
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
        b
    }

    #[test]
    fn ixfr_with_its_soa_is_a_query() {
        let q = Query::parse(&ixfr(6)).expect("an IXFR query");
        assert_eq!(q.question.qtype, RecordType::IXFR);
        assert_eq!(
            formerr_reason(&ixfr(1)),
            "an IXFR query's authority record is not a readable SOA"
        );
        let mut short = ixfr(6);
        short.truncate(short.len() - 1);
        assert_eq!(
            formerr_reason(&short),
            "an IXFR query's authority record is not a readable SOA"
        );
        // Any other type with an authority record is still malformed.
        let mut b = ixfr(6);
        b[HEADER_LEN + 13] = 1; // qtype A
        assert_eq!(
            formerr_reason(&b),
            "a query carries no answer or authority records"
        );
    }

    #[test]
    fn other_opcode_is_notimp() {
        let mut b = build(1, "a.example", 1, None);
        b[2] |= 4 << 3; // NOTIFY
        match Query::parse(&b) {
            Err(QueryError::NotImplemented {
                opcode: 4,
                question: Some(_),
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn any_bytes_never_panic() {
        // A cheap stand-in for the fuzzer: every prefix and many single-byte mutations.
        let opt = ecs_option(2, 56, 0, &[0x24, 0, 0xda, 0, 0, 0, 0]);
        let base = build(9, "www.example.com", 28, Some((1232, 0, &opt)));
        for end in 0..base.len() {
            let _ = Query::parse(&base[..end]);
        }
        for i in 0..base.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0xc0, 0xff] {
                let mut b = base.clone();
                b[i] = v;
                let _ = Query::parse(&b);
            }
        }
    }

    #[test]
    fn the_quick_reader_leaves_the_unusual_to_the_strict_one() {
        let plain = query("a.example.com", 1, None);
        assert!(QuickQuery::parse(&plain).is_some());
        let mut cases: Vec<Vec<u8>> = Vec::new();
        let mut b = plain.clone();
        b[2] |= 0x80; // a response
        cases.push(b);
        let mut b = plain.clone();
        b[2] |= 4 << 3; // NOTIFY
        cases.push(b);
        let mut b = plain.clone();
        b[5] = 2; // two questions
        cases.push(b);
        let mut b = plain.clone();
        b.push(0); // trailing byte
        cases.push(b);
        cases.push(query("a.example.com", 252, None)); // AXFR
        cases.push(query("a.example.com", 41, None)); // OPT as the question
        let mut b = plain.clone();
        let class_at = b.len() - 1;
        b[class_at] = 3; // CHAOS
        cases.push(b);
        cases.push(query("a.example.com", 1, Some((1232, 0x0001_0000, &[])))); // EDNS 1
        let bad = [0, 8, 0, 7, 0, 1, 22, 0, 1, 2, 5]; // bits beyond the prefix
        cases.push(query("a.example.com", 1, Some((1232, 0, &bad))));
        let mut twice = ecs([1, 2, 4]);
        twice.extend(ecs([1, 2, 4]));
        cases.push(query("a.example.com", 1, Some((1232, 0, &twice))));
        let mut b = plain[..12].to_vec();
        b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // a compressed question
        cases.push(b);
        for (i, case) in cases.iter().enumerate() {
            assert!(QuickQuery::parse(case).is_none(), "case {i}");
        }
    }

    #[test]
    fn whatever_the_quick_reader_takes_the_strict_one_takes_alike() {
        let opt = ecs([1, 2, 4]);
        let base = query("Www.Example.com", 28, Some((1232, 0x8000, &opt)));
        let check = |b: &[u8]| {
            if let Some(quick) = QuickQuery::parse(b) {
                let strict = Query::parse(b).expect("strict reader accepts it too");
                let mut name = Vec::new();
                for label in strict.question.name.iter() {
                    name.push(label.len() as u8);
                    name.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                name.push(0);
                assert_eq!(quick.name(), &name[..]);
                assert_eq!(quick.qtype(), u16::from(strict.question.qtype));
                assert_eq!(
                    quick.client_subnet(),
                    strict.edns.and_then(|e| e.client_subnet)
                );
            }
        };
        for end in 0..=base.len() {
            check(&base[..end]);
        }
        for i in 0..base.len() {
            for v in [0u8, 1, 2, 0x3f, 0x40, 0x80, 0xc0, 0xff] {
                let mut b = base.clone();
                b[i] = v;
                check(&b);
            }
        }
    }
}
