//! Reading a query off the wire.
//!
//! This module owns the decision of whether a datagram is a query geoline can answer, and
//! what in it matters: the header bits, the one question (its name with the sender's letter
//! case), and the OPT record with its Client Subnet option. It is stricter than a general
//! message decoder because a query is small and its shape is fixed: anything else is
//! FORMERR, and what cannot even carry a FORMERR is dropped.
//!
//! It does not decide answers ([`super::respond`]) and does not encode anything.

use hickory_proto::op::OpCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::ecs::{ClientSubnet, EcsError};

/// Header bits and counts of the query, enough to build any response to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryHeader {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// As the sender spelled it: the response echoes its letter case.
    pub name: Name,
    pub qtype: RecordType,
    pub qclass: DNSClass,
}

/// What the query's OPT record asked for (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsRequest {
    pub version: u8,
    /// The requester's UDP payload size, raised to 512 when it says less (RFC 6891 6.2.5).
    pub udp_payload: u16,
    pub dnssec_ok: bool,
    pub client_subnet: Option<ClientSubnet>,
}

/// A query geoline can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub header: QueryHeader,
    pub question: Question,
    pub edns: Option<EdnsRequest>,
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
    },
    /// Malformed: wrong counts, bad names, trailing bytes, bad OPT or Client Subnet.
    #[error("malformed query: {reason}")]
    FormErr {
        header: QueryHeader,
        reason: &'static str,
        question: Option<Question>,
        /// Whether the query carried a readable OPT record, so the FORMERR carries one too.
        had_edns: bool,
    },
    /// An EDNS version above 0 (RFC 6891 6.1.3).
    #[error("EDNS version {version} not supported")]
    BadVersion {
        header: QueryHeader,
        version: u8,
        question: Question,
    },
}

const HEADER_LEN: usize = 12;
const OPT: u16 = 41;

impl Query {
    /// Parses `bytes` as a DNS query.
    pub fn parse(bytes: &[u8]) -> Result<Query, QueryError> {
        if bytes.len() < HEADER_LEN {
            return Err(QueryError::Drop);
        }
        let flags = u16::from_be_bytes([bytes[2], bytes[3]]);
        if flags & 0x8000 != 0 {
            return Err(QueryError::Drop);
        }
        let header = QueryHeader {
            id: u16::from_be_bytes([bytes[0], bytes[1]]),
            opcode: ((flags >> 11) & 0xf) as u8,
            recursion_desired: flags & 0x0100 != 0,
            checking_disabled: flags & 0x0010 != 0,
        };
        let count = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
        let formerr = |reason, question, had_edns| QueryError::FormErr {
            header,
            reason,
            question,
            had_edns,
        };

        let mut decoder = BinDecoder::new(bytes);
        // Skip the header: the decoder only moves forward.
        if decoder.read_slice(HEADER_LEN).is_err() {
            return Err(QueryError::Drop);
        }
        if qdcount != 1 {
            return Err(formerr(
                "a query must hold exactly one question",
                None,
                false,
            ));
        }
        let question = read_question(&mut decoder)
            .ok_or_else(|| formerr("the question cannot be read", None, false))?;

        if header.opcode != u8::from(OpCode::Query) {
            return Err(QueryError::NotImplemented {
                header,
                opcode: header.opcode,
                question: Some(question),
            });
        }
        if ancount != 0 || nscount != 0 {
            return Err(formerr(
                "a query carries no answer or authority records",
                Some(question),
                false,
            ));
        }

        let mut edns: Option<EdnsRequest> = None;
        let mut ecs_error: Option<EcsError> = None;
        for _ in 0..arcount {
            let had_edns = edns.is_some();
            let Some(record) = read_record(&mut decoder) else {
                return Err(formerr(
                    "an additional record cannot be read",
                    Some(question),
                    had_edns,
                ));
            };
            if record.rtype != OPT {
                // TSIG and friends are not supported; answering unsigned is what a server
                // without the key would do.
                continue;
            }
            if had_edns {
                return Err(formerr("more than one OPT record", Some(question), true));
            }
            if !record.owner_is_root {
                return Err(formerr("OPT owner is not the root", Some(question), false));
            }
            let (opt, error) = read_opt(&record);
            let Some(opt) = opt else {
                return Err(formerr("OPT options cannot be read", Some(question), true));
            };
            ecs_error = error;
            edns = Some(opt);
        }
        if !decoder.is_empty() {
            return Err(formerr(
                "bytes after the last record",
                Some(question),
                edns.is_some(),
            ));
        }
        if let Some(e) = &edns {
            // BADVERS comes before any look at the options: their meaning depends on the version.
            if e.version > 0 {
                return Err(QueryError::BadVersion {
                    header,
                    version: e.version,
                    question,
                });
            }
        }
        if let Some(error) = ecs_error {
            return Err(formerr(error.reason(), Some(question), true));
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

/// Reads an OPT record. A malformed Client Subnet is reported beside the result rather than
/// instead of it, because BADVERS takes precedence and needs the version.
fn read_opt(record: &RawRecord<'_>) -> (Option<EdnsRequest>, Option<EcsError>) {
    let version = ((record.ttl >> 16) & 0xff) as u8;
    let dnssec_ok = record.ttl & 0x8000 != 0;
    let mut client_subnet = None;
    let mut error = None;
    let mut rest = record.rdata;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return (None, None);
        }
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let Some(data) = rest.get(4..4 + len) else {
            return (None, None);
        };
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
        rest = &rest[4 + len..];
    }
    let edns = EdnsRequest {
        version,
        udp_payload: record.class.max(512),
        dnssec_ok,
        client_subnet,
    };
    (Some(edns), error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// A query for `name`/`qtype` with optional OPT rdata.
    pub(crate) fn build(
        id: u16,
        name: &str,
        qtype: u16,
        opt: Option<(u16, u32, &[u8])>,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&0x0100u16.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&(opt.is_some() as u16).to_be_bytes());
        for label in name.trim_end_matches('.').split('.') {
            b.push(label.len() as u8);
            b.extend_from_slice(label.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        if let Some((payload, ttl, rdata)) = opt {
            b.push(0);
            b.extend_from_slice(&OPT.to_be_bytes());
            b.extend_from_slice(&payload.to_be_bytes());
            b.extend_from_slice(&ttl.to_be_bytes());
            b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            b.extend_from_slice(rdata);
        }
        b
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
                had_edns: true,
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
}
