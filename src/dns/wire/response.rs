//! Writing a response onto the wire, within the size the requester can take, and
//! rewriting an encoded one into its slipped form for rate limiting.
//!
//! This module owns the response's wire form: header bits, the echoed question, the record
//! sections, the OPT record with the Client Subnet option, and truncation. It does not
//! decide what goes in the sections ([`crate::dns::decide`] does) or how large a response
//! may be ([`crate::dns::decide::size_limit`]).
//!
//! Truncation keeps the OPT record, and with it the Client Subnet option: a resolver that
//! retries over TCP still learns the scope, and one that only sees the truncated answer still
//! sees that the server handles ECS (RFC 7871 7.2.1). When only optional additional records
//! do not fit, the whole RRsets of them that fit go, in order, and the rest are left out
//! without TC (RFC 2181 9); when anything else does not fit, the response carries the
//! question and OPT only, with TC set.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::ecs::ClientSubnet;
use super::query::{EdnsRequest, OptSeen, QueryHeader, Question};
use super::{
    AA, ADDITIONAL, ANSWER, AUTHORITY, CD, HEADER_LEN, Header, OPT, OPT_FIXED_LEN, QUESTION, RD,
    RR_FIXED_LEN, TC, opt_ttl, skip_name,
};

/// What a response carries back in its OPT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsReply {
    /// The UDP payload size geoline accepts, advertised to the requester.
    pub(crate) udp_payload: u16,
    /// Copied from the query (RFC 3225 3).
    pub(crate) dnssec_ok: bool,
    /// The query's option with the scope the answer deserves.
    pub(crate) client_subnet: Option<(ClientSubnet, u8)>,
}

impl EdnsReply {
    /// The OPT record answering `request`: `max_udp_payload` advertised, DO copied, the
    /// Client Subnet echoed with `scope` ([`super::ecs::scope`]).
    pub(crate) fn answering(request: &EdnsRequest, max_udp_payload: u16, scope: u8) -> EdnsReply {
        EdnsReply {
            udp_payload: max_udp_payload,
            dnssec_ok: request.dnssec_ok,
            client_subnet: request.client_subnet.map(|s| (s, scope)),
        }
    }

    /// The OPT record of an error response to a query with `opt`: `max_udp_payload`
    /// advertised, DO copied, no options.
    pub(crate) fn error(max_udp_payload: u16, opt: OptSeen) -> EdnsReply {
        EdnsReply {
            udp_payload: max_udp_payload,
            dnssec_ok: opt.dnssec_ok,
            client_subnet: None,
        }
    }
}

/// A response, ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub header: QueryHeader,
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub question: Option<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// Whether the additional section may be dropped to fit (true unless it holds the glue a
    /// referral needs).
    pub additional_is_optional: bool,
    pub edns: Option<EdnsReply>,
}

/// How much of a response fits in the requester's size: the one truncation rule for
/// [`Response::encode`] and the answer cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    Whole,
    /// The optional additional section does not fit whole: the longest run of its whole
    /// RRsets that fits goes, maybe none, and the rest is left out without TC (RFC 2181 9).
    /// A resolver gets the addresses there is room for, as from Knot.
    SomeAdditional,
    /// The question and OPT only, with TC.
    Truncated,
}

impl Fit {
    /// `without_additional` and `whole` are the encoded lengths (header, question and OPT
    /// included) without the additional section and with it; `whole` is `None` when the
    /// additional section cannot be written.
    #[inline]
    pub(crate) fn of(
        without_additional: usize,
        whole: Option<usize>,
        additional_is_optional: bool,
        limit: usize,
    ) -> Fit {
        if without_additional > limit {
            return Fit::Truncated;
        }
        match whole {
            Some(whole) if whole <= limit => Fit::Whole,
            _ if additional_is_optional => Fit::SomeAdditional,
            _ => Fit::Truncated,
        }
    }
}

/// What encoding did, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub truncated: bool,
}

/// The encoded length of the OPT record [`write_opt`] writes for `edns`.
pub(crate) fn opt_len(edns: &EdnsReply) -> usize {
    OPT_FIXED_LEN
        + edns
            .client_subnet
            .map(|(s, _)| 4 + 4 + usize::from(s.source_prefix).div_ceil(8))
            .unwrap_or(0)
}

impl Response {
    /// A response with no records: errors, REFUSED and the like.
    pub fn empty(
        header: QueryHeader,
        rcode: ResponseCode,
        question: Option<Question>,
        edns: Option<EdnsReply>,
    ) -> Response {
        Response {
            header,
            rcode,
            authoritative: false,
            question,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            additional_is_optional: true,
            edns,
        }
    }

    /// Writes the response into `out` (cleared first), at most `limit` bytes unless even the
    /// truncated form is larger (a question name near 255 bytes with a 512 limit cannot be).
    pub fn encode(&self, limit: usize, out: &mut Vec<u8>) -> Encoded {
        out.clear();
        let opt_len = self.opt_len();
        let mut counts = [0u16; 4];
        let mut truncated = false;
        {
            let mut enc = BinEncoder::new(out);
            // The header is written last, when the counts are known.
            let _ = enc.emit_vec(&[0; HEADER_LEN]);
            if let Some(q) = &self.question {
                counts[QUESTION] = 1;
                if q.name.emit(&mut enc).is_err()
                    || enc.emit_u16(q.qtype.into()).is_err()
                    || enc.emit_u16(q.qclass.into()).is_err()
                {
                    // Only a name hickory cannot write; it was read from the wire, so it can.
                    counts[QUESTION] = 0;
                }
            }
            let after_question = enc.offset();
            let emitted = emit_records(&mut enc, &self.answers)
                .and_then(|a| emit_records(&mut enc, &self.authority).map(|n| (a, n)));
            let before_additional = enc.offset();
            // The longest run of whole additional RRsets that fits with the OPT record.
            let room = limit.saturating_sub(opt_len);
            let mut fitting = (before_additional, 0);
            let additional = emitted.and_then(|_| {
                emit_additional(&mut enc, &self.additional, |end, records| {
                    if end <= room {
                        fitting = (end, records);
                    }
                })
            });
            let fits = match emitted {
                Some(_) => Fit::of(
                    before_additional + opt_len,
                    additional.map(|_| enc.offset() + opt_len),
                    self.additional_is_optional,
                    limit,
                ),
                // A record that cannot be written counts as one that does not fit.
                None => Fit::Truncated,
            };
            match (fits, emitted) {
                (Fit::Whole, Some((an, ns))) => {
                    counts[ANSWER] = an;
                    counts[AUTHORITY] = ns;
                    counts[ADDITIONAL] = additional.unwrap_or(0);
                }
                (Fit::SomeAdditional, Some((an, ns))) => {
                    counts[ANSWER] = an;
                    counts[AUTHORITY] = ns;
                    let (end, records) = fitting;
                    counts[ADDITIONAL] = records;
                    enc.set_offset(end);
                }
                _ => {
                    truncated = true;
                    enc.set_offset(after_question);
                }
            }
            let end = enc.offset();
            drop(enc);
            out.truncate(end);
        }
        if let Some(edns) = &self.edns {
            counts[ADDITIONAL] += 1;
            self.write_opt(edns, out);
        }
        self.write_header(counts, truncated, out);
        Encoded { truncated }
    }

    fn opt_len(&self) -> usize {
        self.edns.as_ref().map_or(0, opt_len)
    }

    fn write_opt(&self, edns: &EdnsReply, out: &mut Vec<u8>) {
        write_opt(self.rcode, edns, out);
    }

    fn write_header(&self, counts: [u16; 4], truncated: bool, out: &mut [u8]) {
        write_header(
            &self.header,
            self.authoritative,
            self.rcode,
            counts,
            truncated,
            out,
        );
    }

    /// The whole response without OPT and without any size limit, with the offsets the
    /// answer cache ([`crate::dns::cache`]) needs to reuse its sections for later queries
    /// of the same name. `None` when a record cannot be encoded (then only
    /// [`Response::encode`] can answer).
    pub fn encode_sections(&self) -> Option<Sections> {
        let mut out = Vec::with_capacity(512);
        let mut enc = BinEncoder::new(&mut out);
        enc.emit_vec(&[0; HEADER_LEN]).ok()?;
        if let Some(q) = &self.question {
            q.name.emit(&mut enc).ok()?;
            enc.emit_u16(q.qtype.into()).ok()?;
            enc.emit_u16(q.qclass.into()).ok()?;
        }
        let question_end = enc.offset();
        let an = emit_records(&mut enc, &self.answers)?;
        let ns = emit_records(&mut enc, &self.authority)?;
        let additional_start = enc.offset();
        let mut additional_rrsets = Vec::new();
        let ar = emit_additional(&mut enc, &self.additional, |end, records| {
            additional_rrsets.push((end, records));
        })?;
        let end = enc.offset();
        drop(enc);
        out.truncate(end);
        Some(Sections {
            bytes: out,
            question_end,
            additional_start,
            additional_rrsets,
            counts: [an, ns, ar],
        })
    }
}

/// A response's sections encoded once, after its question: see [`Response::encode_sections`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sections {
    /// Header (counts not filled in), question, answer, authority and additional sections.
    pub bytes: Vec<u8>,
    pub question_end: usize,
    pub additional_start: usize,
    /// Where each RRset of the additional section ends in `bytes`, and how many records
    /// the section holds up to there: where [`Fit::SomeAdditional`] may cut it.
    pub additional_rrsets: Vec<(usize, u16)>,
    /// Answer, authority and additional record counts.
    pub counts: [u16; 3],
}

/// The OPT record of a response (RFC 6891 6.1.2), with the Client Subnet option when the
/// query had one. Written straight into `out`: nothing is allocated per response.
pub(crate) fn write_opt(rcode: ResponseCode, edns: &EdnsReply, out: &mut Vec<u8>) {
    let ttl = opt_ttl(rcode.high(), edns.dnssec_ok);
    out.push(0);
    out.extend_from_slice(&OPT.to_be_bytes());
    out.extend_from_slice(&edns.udp_payload.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let rdlen_at = out.len();
    out.extend_from_slice(&[0, 0]);
    if let Some((subnet, scope)) = &edns.client_subnet {
        subnet.write_response(*scope, out);
    }
    // The option is at most 24 bytes: the length always fits.
    let rdlen = (out.len() - rdlen_at - 2) as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

/// The header of a response to `h`: QR set, RA clear, the query's opcode, RD and CD echoed.
pub(crate) fn write_header(
    h: &QueryHeader,
    authoritative: bool,
    rcode: ResponseCode,
    counts: [u16; 4],
    truncated: bool,
    out: &mut [u8],
) {
    let mut header = Header::response(h.id, counts);
    header.set_opcode(h.opcode);
    header.set(AA, authoritative);
    header.set(TC, truncated);
    header.set(RD, h.recursion_desired);
    header.set(CD, h.checking_disabled);
    header.set_rcode(rcode.low());
    header.write(out);
}

/// Rewrites the encoded response in `out` into its slipped form: the same header with TC
/// set, the question, and the OPT record if the response had one (with its Client Subnet
/// option, so that a resolver still sees ECS handled), nothing else. Allocates nothing.
/// `false` when `out` does not read as a response (then it must not be sent).
pub(crate) fn slip(out: &mut Vec<u8>) -> bool {
    slip_in_place(out).is_some()
}

fn slip_in_place(out: &mut Vec<u8>) -> Option<()> {
    let mut header = Header::read(out)?;
    let [questions, answers, authority, additional] = header.counts.map(usize::from);
    let mut at = HEADER_LEN;
    for _ in 0..questions {
        at = skip_name(out, at)? + 4;
    }
    let question_end = at;
    if question_end > out.len() {
        return None;
    }
    // Both encoders write the OPT record last; look at every record to find it anyway.
    let mut opt = None;
    for _ in 0..answers + authority + additional {
        let start = at;
        at = skip_name(out, at)?;
        let fixed = out.get(at..at + RR_FIXED_LEN)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let end = at + RR_FIXED_LEN + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        if end > out.len() {
            return None;
        }
        if rtype == OPT {
            opt = Some(start..end);
        }
        at = end;
    }
    header.counts[ANSWER] = 0;
    header.counts[AUTHORITY] = 0;
    header.counts[ADDITIONAL] = match opt {
        Some(range) => {
            let len = range.len();
            out.copy_within(range, question_end);
            out.truncate(question_end + len);
            1
        }
        None => {
            out.truncate(question_end);
            0
        }
    };
    header.set(TC, true);
    header.write(out);
    Some(())
}

/// Emits the additional records as [`emit_records`] does, and calls `rrset_end` with the
/// encoder's offset and the number of records written so far after each RRset (a run of
/// records of one owner and type), so that a caller can keep the whole RRsets that fit.
fn emit_additional(
    enc: &mut BinEncoder<'_>,
    records: &[Record],
    mut rrset_end: impl FnMut(usize, u16),
) -> Option<u16> {
    let count = u16::try_from(records.len()).ok()?;
    for (i, r) in records.iter().enumerate() {
        r.emit(enc).ok()?;
        let ends = records
            .get(i + 1)
            .is_none_or(|next| next.name != r.name || next.record_type() != r.record_type());
        if ends {
            // i < count, which fits in u16.
            rrset_end(enc.offset(), (i + 1) as u16);
        }
    }
    Some(count)
}

fn emit_records(enc: &mut BinEncoder<'_>, records: &[Record]) -> Option<u16> {
    for r in records {
        r.emit(enc).ok()?;
    }
    u16::try_from(records.len()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    fn header() -> QueryHeader {
        QueryHeader {
            id: 0x1234,
            opcode: 0,
            recursion_desired: true,
            checking_disabled: false,
        }
    }

    fn question(name: &str) -> Question {
        Question {
            name: Name::from_ascii(name).expect("name"),
            qtype: RecordType::TXT,
            qclass: DNSClass::IN,
        }
    }

    fn txt(name: &str, len: usize) -> Record {
        Record::from_rdata(
            Name::from_str(name).expect("name"),
            300,
            RData::TXT(TXT::new(vec!["x".repeat(len)])),
        )
    }

    fn with_ecs() -> Option<EdnsReply> {
        let subnet = ClientSubnet::parse(&[0, 1, 24, 0, 1, 2, 4]).expect("ecs");
        Some(EdnsReply {
            udp_payload: 1232,
            dnssec_ok: false,
            client_subnet: Some((subnet, 15)),
        })
    }

    #[test]
    fn answer_fits() {
        let mut r = Response::empty(
            header(),
            ResponseCode::NoError,
            Some(question("Big.Example.")),
            with_ecs(),
        );
        r.authoritative = true;
        r.answers = vec![txt("Big.Example.", 100)];
        let mut out = Vec::new();
        assert_eq!(r.encode(512, &mut out), Encoded { truncated: false });
        let m = Message::from_vec(&out).expect("decodes");
        assert!(m.metadata.authoritative && !m.metadata.truncation && m.metadata.recursion_desired);
        assert!(!m.metadata.recursion_available);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.queries[0].name().to_string(), "Big.Example.");
        let opt = m.edns.expect("opt");
        assert_eq!(opt.max_payload(), 1232);
    }

    #[test]
    fn truncation_keeps_question_and_subnet() {
        let mut r = Response::empty(
            header(),
            ResponseCode::NoError,
            Some(question("big.example.")),
            with_ecs(),
        );
        r.answers = vec![
            txt("big.example.", 200),
            txt("big.example.", 200),
            txt("big.example.", 200),
        ];
        let mut out = Vec::new();
        assert_eq!(r.encode(512, &mut out), Encoded { truncated: true });
        assert!(out.len() <= 512);
        let m = Message::from_vec(&out).expect("decodes");
        assert!(m.metadata.truncation);
        assert_eq!(
            (m.queries.len(), m.answers.len(), m.authorities.len()),
            (1, 0, 0)
        );
        // OPT with family 1, source 24, scope 15, 1.2.4
        assert!(
            out.ends_with(&[0, 8, 0, 7, 0, 1, 24, 15, 1, 2, 4]),
            "{out:?}"
        );
    }

    #[test]
    fn optional_additional_dropped_without_tc() {
        let mut r = Response::empty(
            header(),
            ResponseCode::NoError,
            Some(question("mx.example.")),
            None,
        );
        r.answers = vec![txt("mx.example.", 100)];
        r.additional = vec![txt("mx.example.", 450)];
        let mut out = Vec::new();
        assert_eq!(r.encode(512, &mut out), Encoded { truncated: false });
        let m = Message::from_vec(&out).expect("decodes");
        assert_eq!((m.answers.len(), m.additionals.len()), (1, 0));
        r.additional_is_optional = false;
        assert_eq!(r.encode(512, &mut out), Encoded { truncated: true });
    }

    fn a(name: &str, last: u8) -> Record {
        Record::from_rdata(
            Name::from_str(name).expect("name"),
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        )
    }

    #[test]
    fn the_additional_rrsets_that_fit_are_kept_whole() {
        let mut r = Response::empty(
            header(),
            ResponseCode::NoError,
            Some(question("mx.example.")),
            None,
        );
        r.authoritative = true;
        r.answers = vec![txt("mx.example.", 200)];
        // Five single-address hosts, then one with two addresses, then one more.
        r.additional = (1..=5).map(|i| a(&format!("h{i}.example."), i)).collect();
        r.additional
            .extend([a("two.example.", 6), a("two.example.", 7)]);
        r.additional.push(a("last.example.", 8));
        let kept = |out: &[u8]| {
            let m = Message::from_vec(out).expect("decodes");
            assert!(!m.metadata.truncation && m.answers.len() == 1);
            m.additionals
                .iter()
                .map(|r| r.data.to_string())
                .collect::<Vec<_>>()
        };
        // Where the RRsets end (no OPT, so the encoding is the sections as they are).
        let sections = r.encode_sections().expect("encodes");
        let records: Vec<u16> = sections.additional_rrsets.iter().map(|&(_, n)| n).collect();
        assert_eq!(records, [1, 2, 3, 4, 5, 7, 8]);
        let ends: Vec<usize> = sections.additional_rrsets.iter().map(|&(e, _)| e).collect();
        assert_eq!(ends[6], sections.bytes.len());
        let mut out = Vec::new();
        assert_eq!(r.encode(ends[6], &mut out), Encoded { truncated: false });
        assert_eq!(kept(&out).len(), 8);
        // Room for five records up to one byte short of seven: the two-record RRset is
        // left out whole, and what follows it.
        for limit in [ends[4], ends[4] + 1, ends[5] - 1] {
            assert_eq!(r.encode(limit, &mut out), Encoded { truncated: false });
            assert_eq!(
                kept(&out),
                [
                    "192.0.2.1",
                    "192.0.2.2",
                    "192.0.2.3",
                    "192.0.2.4",
                    "192.0.2.5"
                ]
            );
            assert_eq!(out.len(), ends[4]);
        }
        assert_eq!(r.encode(ends[5], &mut out), Encoded { truncated: false });
        assert_eq!(kept(&out).len(), 7);
        // Room for none: the answer alone, still without TC.
        assert_eq!(
            r.encode(ends[0] - 1, &mut out),
            Encoded { truncated: false }
        );
        assert!(kept(&out).is_empty());
        assert_eq!(out.len(), sections.additional_start);
    }

    #[test]
    fn optional_additional_records_go_first_then_everything() {
        assert_eq!(Fit::of(100, Some(200), true, 512), Fit::Whole);
        assert_eq!(Fit::of(100, Some(600), true, 512), Fit::SomeAdditional);
        assert_eq!(Fit::of(100, None, true, 512), Fit::SomeAdditional);
        assert_eq!(Fit::of(100, Some(600), false, 512), Fit::Truncated);
        assert_eq!(Fit::of(600, Some(700), true, 512), Fit::Truncated);
    }

    #[test]
    fn badvers_uses_extended_rcode() {
        let r = Response::empty(
            header(),
            ResponseCode::BADVERS,
            Some(question("a.example.")),
            Some(EdnsReply {
                udp_payload: 1232,
                dnssec_ok: false,
                client_subnet: None,
            }),
        );
        let mut out = Vec::new();
        r.encode(512, &mut out);
        // hickory decodes rcode 16 as BADSIG (the TSIG meaning), so read the bits directly:
        // header rcode 0, OPT extended rcode 1, version 0.
        assert_eq!(out[3] & 0x0f, 0);
        let ttl = &out[out.len() - 6..out.len() - 2];
        assert_eq!(ttl, [1, 0, 0, 0]);
    }

    #[test]
    fn answer_owner_compresses_against_question() {
        let mut r = Response::empty(
            header(),
            ResponseCode::NoError,
            Some(question("a.example.")),
            None,
        );
        r.answers = vec![Record::from_rdata(
            Name::from_str("a.example.").expect("name"),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        )];
        let mut out = Vec::new();
        r.encode(512, &mut out);
        // header 12 + question 11+4 + answer (pointer 2 + 10 + 4)
        assert_eq!(out.len(), 12 + 15 + 16);
    }

    fn response(with_opt: bool) -> Vec<u8> {
        let name = Name::from_ascii("Www.example.com.").expect("name");
        let mut r = Response::empty(
            QueryHeader {
                id: 7,
                opcode: 0,
                recursion_desired: true,
                checking_disabled: false,
            },
            ResponseCode::NoError,
            Some(Question {
                name: name.clone(),
                qtype: RecordType::A,
                qclass: DNSClass::IN,
            }),
            with_opt.then_some(EdnsReply {
                udp_payload: 1232,
                dnssec_ok: true,
                client_subnet: None,
            }),
        );
        r.authoritative = true;
        r.answers = vec![Record::from_rdata(
            name.clone(),
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 10))),
        )];
        r.additional = vec![Record::from_rdata(
            name,
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 11))),
        )];
        let mut out = Vec::new();
        r.encode(1232, &mut out);
        out
    }

    #[test]
    fn slipped_response_keeps_question_and_opt() {
        for with_opt in [true, false] {
            let mut out = response(with_opt);
            assert!(slip(&mut out));
            let m = Message::from_vec(&out).expect("decodes");
            assert!(m.metadata.truncation && m.metadata.authoritative);
            assert_eq!(m.metadata.id, 7);
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.queries[0].name().to_string(), "Www.example.com.");
            assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
            assert_eq!(m.edns.is_some(), with_opt, "OPT iff the response had one");
            if let Some(edns) = m.edns {
                assert!(edns.flags().dnssec_ok);
                assert_eq!(edns.max_payload(), 1232);
            }
            // header + question (17 + 4) + OPT (11)
            assert_eq!(out.len(), 12 + 21 + if with_opt { 11 } else { 0 });
        }
        let mut short = vec![0u8; 5];
        assert!(!slip(&mut short));
    }
}
