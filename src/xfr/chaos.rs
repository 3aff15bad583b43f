//! The one server fact a geoline primary tells its secondaries: the digest of its line
//! definitions ([`crate::lines::digest`]), as a CHAOS-class TXT record at the reserved
//! name `lines.geoline.`, the way DNS servers tell their identity and version
//! (`id.server.`, `version.bind.` CH TXT).
//!
//! The answer is what BIND 9.18 and Knot 3.2 give for `version.bind.` CH TXT (checked
//! with dig): NOERROR, the question echoed, one TXT record of class CH and TTL 0 owned by
//! the name as asked. The AA bit is BIND's (set: geoline is the source of this fact; Knot
//! leaves it clear); the rest is Knot's: no authority section (BIND adds the NS of its
//! built-in CH zone, which geoline does not have), and REFUSED for any other type.
//! Unlike a version string, the digest is given only to those a transfer would be: a
//! request signed with a key some zone's `transfer` table maps to a line, or unsigned from
//! a network one allows; anyone else is REFUSED (with AA clear), as is everyone when no
//! zone offers transfers. The response to a signed request is signed by the one door.
//! Other CHAOS-class names are not answered here: they stay REFUSED, as every query
//! outside the served zones is.
//!
//! This module owns the name, recognising the query and writing the answer. The door
//! ([`crate::dns::Responder::answer`]) dispatches to it; the secondary asks with
//! [`super::secondary::client::lines_digest`].

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::dns::outcome::{Answered, CountedName, Outcome, ResponseKind};
use crate::dns::wire::query::Query;
use crate::dns::wire::response::{EdnsReply, Response};
use crate::dns::wire::{self, HEADER_LEN};

/// The reserved name the digest is asked at, in class CH.
pub(crate) const NAME: &str = "lines.geoline.";

/// The class CH (3), as its two bytes on the wire.
const CLASS_CH: [u8; 2] = [0, 3];

/// The query, when `request` is a well-formed query of `lines.geoline.` in class CH
/// (whatever its type); anything else is for the strict path.
pub(crate) fn query(request: &[u8]) -> Option<Query> {
    // A look at the question's class first: nearly every message is of class IN.
    let at = wire::skip_name(request, HEADER_LEN)?;
    if request.get(at + 2..at + 4)? != CLASS_CH {
        return None;
    }
    let query = Query::parse(request).ok()?;
    let name = Name::from_ascii(NAME).ok()?;
    (query.question.qclass == DNSClass::CH && query.question.name == name).then_some(query)
}

/// The answer to `query` in `out`: the TXT record holding `digest` when the requester may
/// see it (`Some`), else REFUSED; at most `limit` bytes.
pub(crate) fn answer(
    query: &Query,
    digest: Option<String>,
    max_udp_payload: u16,
    limit: usize,
    out: &mut Vec<u8>,
) -> Answered<'static> {
    let q = &query.question;
    let edns = query
        .edns
        .map(|e| EdnsReply::answering(&e, max_udp_payload, 0));
    let (rcode, answers) = match digest {
        Some(digest) if q.qtype == RecordType::TXT => {
            let mut record =
                Record::from_rdata(q.name.clone(), 0, RData::TXT(TXT::new(vec![digest])));
            record.dns_class = DNSClass::CH;
            (ResponseCode::NoError, vec![record])
        }
        _ => (ResponseCode::Refused, Vec::new()),
    };
    let mut response = Response::empty(query.header, rcode, Some(q.clone()), edns);
    response.authoritative = rcode == ResponseCode::NoError;
    response.answers = answers;
    let encoded = response.encode(limit, out);
    Answered {
        outcome: Outcome {
            zone: None,
            qtype: Some(q.qtype),
            rcode,
            had_client_subnet: false,
            truncated: encoded.truncated,
            kind: match rcode {
                ResponseCode::NoError => ResponseKind::Answer,
                _ => ResponseKind::Error,
            },
        },
        name: CountedName::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, qtype: u16, class: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.trim_end_matches('.').split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&class.to_be_bytes());
        m
    }

    #[test]
    fn only_lines_geoline_in_class_ch_is_taken() {
        assert!(query(&request("lines.geoline.", 16, 3)).is_some());
        assert!(query(&request("LINES.Geoline.", 1, 3)).is_some());
        assert!(query(&request("lines.geoline.", 16, 1)).is_none());
        assert!(query(&request("id.server.", 16, 3)).is_none());
        assert!(query(&request("version.bind.", 16, 3)).is_none());
        assert!(query(&[0x12, 0x34]).is_none());
    }

    #[test]
    fn the_digest_is_a_ch_txt_with_aa_and_ttl_zero_and_other_types_are_refused() {
        let q = query(&request("Lines.Geoline.", 16, 3)).expect("query");
        let mut out = Vec::new();
        let answered = answer(&q, Some("sha256:ab".into()), 1232, 512, &mut out);
        assert_eq!(answered.outcome.rcode, ResponseCode::NoError);
        // QR and AA; one question, one answer.
        assert_eq!(&out[..12], &[0x12, 0x34, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
        let m = hickory_proto::op::Message::from_vec(&out).expect("parses");
        let record = &m.answers[0];
        assert_eq!(record.name.to_string(), "Lines.Geoline.");
        assert_eq!((record.dns_class, record.ttl), (DNSClass::CH, 0));
        assert_eq!(record.data.to_string(), "sha256:ab");

        let answered = answer(&q, None, 1232, 512, &mut out);
        assert_eq!(answered.outcome.rcode, ResponseCode::Refused);
        assert_eq!(&out[..12], &[0x12, 0x34, 0x80, 5, 0, 1, 0, 0, 0, 0, 0, 0]);

        let a = query(&request("lines.geoline.", 1, 3)).expect("query");
        answer(&a, Some("sha256:ab".into()), 1232, 512, &mut out);
        assert_eq!(&out[..12], &[0x12, 0x34, 0x80, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
