//! NOTIFY in (RFC 1996): a primary saying a secondary zone changed.
//!
//! A NOTIFY reaches [`Secondaries::answer_notify`] from the one door,
//! [`crate::dns::Responder::answer`], after TSIG verified it (or found it unsigned). It is
//! taken from a listed primary only, signed with one of the zone's keys when the zone
//! pulls with keys; it is then answered NOERROR with AA and the question echoed (the
//! responder signs the answer to a signed NOTIFY), and the zone's check runs at once
//! unless the NOTIFY's SOA says a serial that is not newer than the copy's (RFC 1996 3.7,
//! serial arithmetic of RFC 1982). Anyone else is REFUSED; a zone not served is NOTAUTH;
//! a NOTIFY that is not one question of type SOA is FORMERR.
//!
//! This module owns that decision and the answer's bytes. It does not check the zone
//! ([`super::Secondary::check`]).

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tracing::{debug, info};

use super::{NO_ZONE, Secondaries, lock, newer};
use crate::dns::outcome::{Answered, CountedName, Outcome, ResponseKind};
use crate::dns::wire::{AA, HEADER_LEN, Header};
use crate::zone::ZoneSet;

const NOTIFY_OPCODE: u8 = 4;

/// The answer to a NOTIFY with `id`: the question echoed when there was one.
fn write(
    id: u16,
    question: Option<&hickory_proto::op::Query>,
    rcode: ResponseCode,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.resize(HEADER_LEN, 0);
    let mut questions = 0;
    if let Some(q) = question {
        let mut enc = BinEncoder::new(out);
        enc.set_offset(HEADER_LEN);
        if q.emit(&mut enc).is_ok() {
            questions = 1;
        } else {
            enc.set_offset(HEADER_LEN);
            enc.trim();
        }
    }
    let mut header = Header::response(id, [questions, 0, 0, 0]);
    header.set(AA, rcode == ResponseCode::NoError);
    header.set_opcode(NOTIFY_OPCODE);
    header.set_rcode(u16::from(rcode) as u8);
    header.write(out);
}

impl Secondaries {
    fn count_notify(&self, zone: &str, result: &'static str) {
        *lock(&self.notifies)
            .entry((zone.to_string(), result))
            .or_default() += 1;
    }

    /// Answers the NOTIFY `request` (without its TSIG) from `from`, signed by `key`
    /// (none: unsigned), about one of `zones`; `None`: send nothing (not a request).
    pub(crate) fn answer_notify(
        &self,
        zones: &ZoneSet,
        request: &[u8],
        key: Option<&Name>,
        from: IpAddr,
        out: &mut Vec<u8>,
    ) -> Option<Answered<'static>> {
        let header = Header::read(request)?;
        if header.has(crate::dns::wire::QR) {
            return None;
        }
        let answered = |rcode: ResponseCode, zone: Option<usize>| Answered {
            outcome: Outcome {
                zone: None,
                qtype: Some(RecordType::SOA),
                rcode,
                had_client_subnet: false,
                truncated: false,
                kind: ResponseKind::classify(rcode, true, 0, zone.is_some()),
            },
            name: CountedName::None,
        };
        let message = match Message::from_vec(request) {
            Ok(message) if message.queries.len() == 1 => message,
            _ => {
                self.count_notify(NO_ZONE, "formerr");
                write(header.id, None, ResponseCode::FormErr, out);
                return Some(answered(ResponseCode::FormErr, None));
            }
        };
        let question = &message.queries[0];
        let reply = |rcode: ResponseCode, zone: Option<usize>, out: &mut Vec<u8>| {
            write(header.id, Some(question), rcode, out);
            Some(answered(rcode, zone))
        };
        if question.query_type() != RecordType::SOA {
            self.count_notify(NO_ZONE, "formerr");
            return reply(ResponseCode::FormErr, None, out);
        }
        let Some((index, served)) = super::find(zones, question.name()) else {
            self.count_notify(NO_ZONE, "notauth");
            return reply(ResponseCode::NotAuth, None, out);
        };
        let origin = question.name().to_lowercase().to_string();
        let Some(zone) = self.zone(served.origin()) else {
            // A zone of files: nobody is its primary.
            debug!(zone = %origin, client = %from, "NOTIFY for a zone that is not a secondary refused");
            self.count_notify(&origin, "refused");
            return reply(ResponseCode::Refused, Some(index), out);
        };
        let keyed = zone.config.pulls.iter().any(|p| p.key.is_some());
        let pull = match key {
            Some(key) => zone
                .config
                .pulls
                .iter()
                .find(|p| p.key.as_ref() == Some(key)),
            None if !keyed => zone.config.pulls.first(),
            None => None,
        };
        let Some(pull) = pull.filter(|_| zone.config.is_primary(from)) else {
            debug!(zone = %origin, client = %from, key = key.map(|k| k.to_string()).as_deref().unwrap_or("-"), "NOTIFY not from a listed primary with the zone's key: refused");
            self.count_notify(&origin, "refused");
            return reply(ResponseCode::Refused, Some(index), out);
        };
        let theirs = message.answers.iter().find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *question.name() => Some(soa.serial),
            _ => None,
        });
        let ours = Some(served)
            .filter(|z| z.serves())
            .and_then(|z| z.line_copy(pull.line))
            .map(|c| c.serial());
        let stale = matches!((theirs, ours), (Some(t), Some(o)) if !newer(t, o));
        if stale {
            self.count_notify(&origin, "noerror_current");
        } else {
            info!(zone = %origin, client = %from, serial = theirs, "NOTIFY: checking the primaries");
            self.count_notify(&origin, "noerror_newer");
            zone.wake.notify_one();
        }
        reply(ResponseCode::NoError, Some(index), out)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::OpCode;

    use super::*;

    #[test]
    fn the_answer_echoes_the_question_with_aa() {
        let q = hickory_proto::op::Query::query(
            Name::from_ascii("Example.COM.").expect("name"),
            RecordType::SOA,
        );
        let mut out = Vec::new();
        write(0x4242, Some(&q), ResponseCode::NoError, &mut out);
        let m = Message::from_vec(&out).expect("parses");
        assert_eq!(m.id, 0x4242);
        assert_eq!(m.op_code, OpCode::Notify);
        assert!(m.authoritative);
        assert_eq!(m.response_code, ResponseCode::NoError);
        assert_eq!(m.queries, [q]);
        write(0x4242, None, ResponseCode::Refused, &mut out);
        let m = Message::from_vec(&out).expect("parses");
        assert!(!m.authoritative);
        assert_eq!(m.response_code, ResponseCode::Refused);
        assert!(m.queries.is_empty());
    }
}
