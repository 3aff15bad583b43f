//! The messages of an outgoing transfer: a sequence of records packed into as many TCP
//! messages as it takes, each TSIG-signed when the request was (RFC 5936 2.2, RFC 8945
//! 5.3.1).
//!
//! This module owns the packing and the wire form of the records: the question in the
//! first message only, the OPT record in each when the request had one, messages of up to
//! [`MESSAGE_SIZE`] bytes with room left for the signature. A whole zone ([`Source::Whole`])
//! is read from the zone snapshot as the messages are written, part by part of its name
//! index ([`Zone::line_part`]), resuming where the last message ended: nothing the size of
//! the zone is built, and a packed RRset's data goes from the store to the wire as it is,
//! without making records of it. Names are compressed against the zone's origin (written
//! once per message, near its start, so that every later pointer reaches it) and against
//! the previous record's owner; the names inside NS, CNAME, PTR, MX and SOA data are
//! compressed the same way (RFC 3597 4 allows it for those types only).
//!
//! It does not decide what is sent ([`super::Transfers`]) nor move bytes.

use std::collections::VecDeque;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::dns::tsig::{self, StreamSigner};
use crate::dns::wire::query::{QueryHeader, Question};
use crate::dns::wire::response::{EdnsReply, opt_len, write_header, write_opt};
use crate::lines::LineId;
use crate::zone::{Rrset, Zone, ZoneSet};

/// The size a transfer message is filled to: the most a TCP message can hold. Fewer,
/// larger messages cost fewer signatures and writes; compression still works, as every
/// name points to the origin written near the message's start.
pub(crate) const MESSAGE_SIZE: usize = u16::MAX as usize;

const HEADER_LEN: usize = 12;

/// The class IN on the wire.
const CLASS_IN: u16 = 1;

/// How many names ahead of the one being written the walk asks for the RRsets of.
const READ_AHEAD: usize = 8;

/// A compression pointer can reach an offset below this (14 bits).
const POINTER_REACH: usize = 0x4000;

/// What a transfer sends.
pub(crate) enum Source {
    /// RRsets given whole, in order: an IXFR's SOAs and differences.
    Rrsets(Vec<Rrset>),
    /// The whole of `line`'s view of zone `index` of `zones`, between two copies of `soa`
    /// (RFC 5936 2.2): read from the snapshot as the messages are written.
    Whole {
        zones: Arc<ZoneSet>,
        index: usize,
        line: LineId,
        soa: Rrset,
    },
}

/// Where the next message starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// Record `record` of RRset `chunk` of [`Source::Rrsets`].
    List {
        chunk: usize,
        record: usize,
    },
    /// Record `record` of the opening SOA of [`Source::Whole`].
    Head(usize),
    /// In the walk of the view: record `record` of RRset `set` of name `name` of part
    /// `part`.
    Walk {
        part: usize,
        name: usize,
        set: usize,
        record: usize,
    },
    /// Record `record` of the closing SOA.
    Tail(usize),
    Done,
}

/// The messages of one transfer, written one at a time as the connection takes them.
pub(crate) struct Stream {
    header: QueryHeader,
    question: Question,
    edns: Option<EdnsReply>,
    source: Source,
    cursor: Cursor,
    /// Messages written so far.
    messages: usize,
    signer: Option<StreamSigner>,
    limit: usize,
    /// The zone's origin, label by label, lower case: what names are compressed against.
    origin: Vec<Vec<u8>>,
    /// Record data encoded for records that are not packed (reused).
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("question", &self.question)
            .field("cursor", &self.cursor)
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// The messages sending `source` (the records of zone `origin`) in answer to a request
    /// with `header` and `question` (and an OPT record when `edns`), signed by `signer`
    /// when the request was.
    pub(crate) fn new(
        header: QueryHeader,
        question: Question,
        edns: Option<EdnsReply>,
        origin: &Name,
        source: Source,
        signer: Option<StreamSigner>,
        signature_room: usize,
    ) -> Stream {
        let cursor = match source {
            Source::Rrsets(_) => Cursor::List {
                chunk: 0,
                record: 0,
            },
            Source::Whole { .. } => Cursor::Head(0),
        };
        Stream {
            header,
            question,
            edns,
            source,
            cursor,
            messages: 0,
            signer,
            limit: MESSAGE_SIZE.saturating_sub(signature_room),
            origin: origin.iter().map(|l| l.to_ascii_lowercase()).collect(),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Writes the next message into `out` (cleared first); `false` when every record was
    /// sent (nothing written then). The first message is always written, even without
    /// records.
    pub(crate) fn next(&mut self, out: &mut Vec<u8>) -> bool {
        let first = self.messages == 0;
        if !first && self.cursor == Cursor::Done {
            return false;
        }
        out.clear();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let mut questions = 0;
        if first {
            for label in self.question.name.iter() {
                push_label(out, label);
            }
            out.push(0);
            out.extend_from_slice(&u16::from(self.question.qtype).to_be_bytes());
            out.extend_from_slice(&u16::from(self.question.qclass).to_be_bytes());
            questions = 1;
        }
        let opt = self.edns.as_ref().map_or(0, opt_len);
        let room = self.limit.saturating_sub(opt);
        let (source, cursor, scratch) = (&self.source, &mut self.cursor, &mut self.scratch);
        let mut message = Message {
            out: &mut *out,
            room,
            origin: &self.origin,
            origin_at: None,
            last_owner: None,
            count: 0,
        };
        match source {
            Source::Rrsets(chunks) => fill_list(chunks, cursor, &mut message, scratch),
            Source::Whole {
                zones,
                index,
                line,
                soa,
            } => match zones.zones().get(*index) {
                Some(zone) => fill_whole(zone, *line, soa, cursor, &mut message, scratch),
                None => *cursor = Cursor::Done,
            },
        }
        let count = message.count;
        let mut additional = 0;
        if let Some(edns) = &self.edns {
            write_opt(ResponseCode::NoError, edns, out);
            additional = 1;
        }
        write_header(
            &self.header,
            true,
            ResponseCode::NoError,
            [questions, count, 0, additional],
            false,
            out,
        );
        self.messages += 1;
        let last = self.cursor == Cursor::Done;
        if let Some(signer) = &mut self.signer {
            signer.next(out, last, tsig::now());
        }
        true
    }
}

/// Fills `m` from the RRsets of `chunks`, from `cursor` on; moves `cursor` past what fit.
fn fill_list<'a>(
    chunks: &'a [Rrset],
    cursor: &mut Cursor,
    m: &mut Message<'_, 'a>,
    scratch: &mut Vec<u8>,
) {
    while let Cursor::List { chunk, record } = *cursor {
        let Some(set) = chunks.get(chunk) else {
            *cursor = Cursor::Done;
            return;
        };
        match set.get(record) {
            Some(r) => {
                if !m.put_record(r, Some(&r.name), scratch) && m.count > 0 {
                    return;
                }
                // (A record that does not fit an empty message cannot be: RRsets are
                // checked to fit at load. It is skipped rather than looping forever.)
                *cursor = Cursor::List {
                    chunk,
                    record: record + 1,
                };
            }
            None => {
                *cursor = Cursor::List {
                    chunk: chunk + 1,
                    record: 0,
                }
            }
        }
    }
}

/// Fills `m` with `line`'s view of `zone` between two copies of `soa`, from `cursor` on;
/// moves `cursor` past what fit.
fn fill_whole<'a>(
    zone: &'a Zone,
    line: LineId,
    soa: &'a Rrset,
    cursor: &mut Cursor,
    m: &mut Message<'_, 'a>,
    scratch: &mut Vec<u8>,
) {
    loop {
        match *cursor {
            Cursor::Head(record) | Cursor::Tail(record) => {
                let head = matches!(*cursor, Cursor::Head(_));
                match soa.get(record) {
                    Some(r) => {
                        if !m.put_record(r, Some(&r.name), scratch) && m.count > 0 {
                            return;
                        }
                        *cursor = if head {
                            Cursor::Head(record + 1)
                        } else {
                            Cursor::Tail(record + 1)
                        };
                    }
                    None if head => {
                        *cursor = Cursor::Walk {
                            part: 0,
                            name: 0,
                            set: 0,
                            record: 0,
                        }
                    }
                    None => *cursor = Cursor::Done,
                }
            }
            Cursor::Walk { part, .. } if part >= zone.line_parts(line) => {
                *cursor = Cursor::Tail(0);
            }
            Cursor::Walk {
                part,
                name,
                set,
                record,
            } => {
                if !walk_part(zone, line, (part, name, set, record), cursor, m, scratch) {
                    return;
                }
                *cursor = Cursor::Walk {
                    part: part + 1,
                    name: 0,
                    set: 0,
                    record: 0,
                };
            }
            Cursor::List { .. } | Cursor::Done => {
                *cursor = Cursor::Done;
                return;
            }
        }
    }
}

/// Writes part `from.0` of the view from name `from.1`, RRset `from.2`, record `from.3`
/// on; `true` when the whole part was written, else `false` with `cursor` at the first
/// record that did not fit.
fn walk_part<'a>(
    zone: &'a Zone,
    line: LineId,
    from: (usize, usize, usize, usize),
    cursor: &mut Cursor,
    m: &mut Message<'_, 'a>,
    scratch: &mut Vec<u8>,
) -> bool {
    let (part, first_name, first_set, first_record) = from;
    let mut names = zone.line_part(line, part).enumerate().skip(first_name);
    // The names come in the index's hash order, each RRset in its own allocation
    // somewhere else in memory: reading them in turn waits for memory at every name. The
    // next READ_AHEAD names' RRsets are asked for while this one is written.
    let mut ahead = VecDeque::with_capacity(READ_AHEAD);
    ahead.extend(
        names
            .by_ref()
            .take(READ_AHEAD)
            .inspect(|(_, (_, node))| node.prefetch()),
    );
    while let Some((name, (owner, node))) = ahead.pop_front() {
        if let Some(next) = names.next() {
            next.1.1.prefetch();
            ahead.push_back(next);
        }
        let resuming = name == first_name;
        let sets = node.rrsets().enumerate();
        for (set, packed) in sets.skip(if resuming { first_set } else { 0 }) {
            let rtype = packed.record_type();
            if rtype == RecordType::SOA {
                continue;
            }
            let skip = if resuming && set == first_set {
                first_record
            } else {
                0
            };
            let stopped = match packed.wire_data() {
                Some(data) => {
                    let ttl = packed.ttl();
                    data.enumerate().skip(skip).find(|(_, rdata)| {
                        !m.put(Owner::Indexed(owner), rtype, CLASS_IN, ttl, rdata) && m.count > 0
                    })
                }
                None => {
                    // Records kept whole (rare): made into records, their owner not
                    // remembered (it lives only here).
                    let records = packed.to_rrset(owner);
                    records
                        .iter()
                        .enumerate()
                        .skip(skip)
                        .find(|(_, r)| !m.put_record(r, None, scratch) && m.count > 0)
                        .map(|(i, _)| (i, &[][..]))
                }
            };
            if let Some((record, _)) = stopped {
                *cursor = Cursor::Walk {
                    part,
                    name,
                    set,
                    record,
                };
                return false;
            }
        }
    }
    true
}

/// A record's owner, as [`Message::put`] compares it with the last record's.
#[derive(Clone, Copy)]
enum Owner<'n, 'a> {
    /// A name of the zone's name index, which holds each name once: the last record's
    /// owner only if it is the very same name (names are not compared, as the walk of a
    /// million names would do a million times for nothing).
    Indexed(&'a Name),
    /// Any name, compared by value with the last owner; the second, when the name
    /// outlives the message, lets the next record's owner point to this one's.
    Other(&'n Name, Option<&'a Name>),
}

/// One message being filled: its records and what later names can point to.
struct Message<'o, 'a> {
    out: &'o mut Vec<u8>,
    /// Where the records must end.
    room: usize,
    origin: &'o [Vec<u8>],
    /// Where the origin is written in this message, once it is.
    origin_at: Option<u16>,
    /// The last record's owner and where it is written (when a pointer can reach it).
    last_owner: Option<(&'a Name, u16)>,
    count: u16,
}

impl<'a> Message<'_, 'a> {
    /// Appends `record` (its data encoded into `scratch` first); `false`, with nothing
    /// appended, when it does not fit or cannot be encoded. `remember` (the owner, when it
    /// outlives the message) lets the next record's owner point to this one's.
    fn put_record(
        &mut self,
        record: &Record,
        remember: Option<&'a Name>,
        scratch: &mut Vec<u8>,
    ) -> bool {
        scratch.clear();
        let mut enc = BinEncoder::new(scratch);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        if record.data.emit(&mut enc).is_err() {
            return false;
        }
        self.put(
            Owner::Other(&record.name, remember),
            record.record_type(),
            u16::from(record.dns_class),
            record.ttl,
            scratch,
        )
    }

    /// Appends one record whose data is `rdata` in wire form with uncompressed names;
    /// `false`, with nothing appended, when it does not fit.
    fn put(
        &mut self,
        owner: Owner<'_, 'a>,
        rtype: RecordType,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        let before = (self.out.len(), self.origin_at, self.last_owner);
        let at = self.out.len();
        let (owner, remember, indexed) = match owner {
            Owner::Indexed(name) => (name, Some(name), true),
            Owner::Other(name, remember) => (name, remember, false),
        };
        match self.last_owner {
            Some((last, last_at))
                if std::ptr::eq(last, owner) || (!indexed && last.eq_case(owner)) =>
            {
                self.pointer(last_at);
            }
            _ => {
                let labels = owner.iter();
                self.name(labels.len(), labels);
            }
        }
        self.last_owner = match (remember, u16::try_from(at)) {
            (Some(owner), Ok(at)) if usize::from(at) < POINTER_REACH => Some((owner, at)),
            _ => None,
        };
        self.out.extend_from_slice(&u16::from(rtype).to_be_bytes());
        self.out.extend_from_slice(&class.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        let length_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        self.rdata(rtype, rdata);
        let length = self.out.len() - length_at - 2;
        match u16::try_from(length) {
            Ok(length) if self.out.len() <= self.room => {
                self.out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
                self.count += 1;
                true
            }
            _ => {
                (_, self.origin_at, self.last_owner) = before;
                self.out.truncate(before.0);
                false
            }
        }
    }

    /// Writes record data, compressing the names of the types that allow it.
    fn rdata(&mut self, rtype: RecordType, data: &[u8]) {
        match rtype {
            RecordType::NS | RecordType::CNAME | RecordType::PTR => {
                if let Some((n, end)) = wire_name(data, 0)
                    && end == data.len()
                {
                    self.name(n, WireLabels { data, at: 0 });
                    return;
                }
            }
            RecordType::MX => {
                if let Some((n, end)) = wire_name(data, 2)
                    && end == data.len()
                {
                    self.out.extend_from_slice(&data[..2]);
                    self.name(n, WireLabels { data, at: 2 });
                    return;
                }
            }
            RecordType::SOA => {
                if let Some((n, mname_end)) = wire_name(data, 0)
                    && let Some((m, rname_end)) = wire_name(data, mname_end)
                    && data.len() == rname_end + 20
                {
                    self.name(n, WireLabels { data, at: 0 });
                    self.name(
                        m,
                        WireLabels {
                            data,
                            at: mname_end,
                        },
                    );
                    self.out.extend_from_slice(&data[rname_end..]);
                    return;
                }
            }
            _ => {}
        }
        self.out.extend_from_slice(data);
    }

    /// Writes a name given as its `n` labels (the root left out): the labels above the
    /// zone's origin, then a pointer to the origin, which the first such name writes.
    fn name<'l>(&mut self, n: usize, mut labels: impl Iterator<Item = &'l [u8]>) {
        let o = self.origin.len();
        if n < o {
            for label in labels {
                push_label(self.out, label);
            }
            self.out.push(0);
            return;
        }
        for label in labels.by_ref().take(n - o) {
            push_label(self.out, label);
        }
        // The last `o` labels, written as they are compared: the origin's, they are
        // replaced by a pointer to where the origin is written when it already is.
        let tail = self.out.len();
        let mut under = true;
        for (label, origin) in labels.zip(self.origin) {
            under &= label.eq_ignore_ascii_case(origin);
            push_label(self.out, label);
        }
        if under {
            if let Some(at) = self.origin_at {
                self.out.truncate(tail);
                self.pointer(at);
                return;
            }
            if tail < POINTER_REACH {
                self.origin_at = u16::try_from(tail).ok();
            }
        }
        self.out.push(0);
    }

    fn pointer(&mut self, at: u16) {
        self.out.extend_from_slice(&(0xC000 | at).to_be_bytes());
    }
}

fn push_label(out: &mut Vec<u8>, label: &[u8]) {
    // Labels come from names hickory checked: at most 63 bytes.
    out.push(label.len() as u8);
    out.extend_from_slice(label);
}

/// The number of labels of the uncompressed name at `at` in `data` (the root left out),
/// and where it ends; `None` when there is no such name there.
fn wire_name(data: &[u8], mut at: usize) -> Option<(usize, usize)> {
    let mut n = 0;
    loop {
        let len = usize::from(*data.get(at)?);
        if len == 0 {
            return Some((n, at + 1));
        }
        if len > 63 || at + 1 + len > data.len() {
            return None;
        }
        n += 1;
        at += 1 + len;
    }
}

/// The labels of a name [`wire_name`] found in `data` at `at`.
struct WireLabels<'d> {
    data: &'d [u8],
    at: usize,
}

impl<'d> Iterator for WireLabels<'d> {
    type Item = &'d [u8];

    fn next(&mut self) -> Option<&'d [u8]> {
        let len = usize::from(*self.data.get(self.at)?);
        let label = self.data.get(self.at + 1..self.at + 1 + len)?;
        if len == 0 {
            return None;
        }
        self.at += 1 + len;
        Some(label)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::Message as HMessage;
    use hickory_proto::rr::DNSClass;

    use super::*;
    use crate::dns::wire::query::Query;

    /// The zone of `text` with `overlay` for line 0; line 1 is the default.
    fn zone(text: &str, overlay: Option<&str>) -> Arc<ZoneSet> {
        let zone = Zone::from_text(Path::new("t.zone"), text, overlay).expect("zone");
        Arc::new(ZoneSet::from_zones(vec![zone]))
    }

    const DEFAULT: Option<LineId> = LineId::new(1);

    fn axfr_request() -> Vec<u8> {
        let mut m = vec![0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\xfc\x00\x01");
        m
    }

    /// Every message of the whole-zone stream of `line`'s view of `zones`.
    fn messages(zones: &Arc<ZoneSet>, line: Option<LineId>) -> Vec<Vec<u8>> {
        let query = Query::parse(&axfr_request()).expect("query");
        let z = &zones.zones()[0];
        let line = line.expect("line");
        let soa = z
            .line_rrset(line, z.origin(), RecordType::SOA)
            .expect("soa");
        let mut stream = Stream::new(
            query.header,
            query.question,
            None,
            z.origin(),
            Source::Whole {
                zones: zones.clone(),
                index: 0,
                line,
                soa,
            },
            None,
            0,
        );
        let mut all = Vec::new();
        let mut out = Vec::new();
        while stream.next(&mut out) {
            all.push(out.clone());
        }
        all
    }

    #[test]
    fn a_whole_zone_is_sent_in_large_compressed_messages_that_read_back() {
        let mut text = String::from(
            "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 7 7200 900 1209600 60\n@ NS ns1\n@ MX 10 mail\nns1 A 192.0.2.53\nalias CNAME www\nwww A 192.0.2.1\nwww A 192.0.2.2\nwww AAAA 2001:db8::1\next CNAME www.example.net.\nshort NS com.\n",
        );
        for i in 0..20_000 {
            text.push_str(&format!("h{i} A 10.0.{}.{}\n", i / 256, i % 256));
        }
        let zones = zone(&text, None);
        let messages = messages(&zones, DEFAULT);
        assert!(messages.len() >= 5, "{} messages", messages.len());
        let mut seen = Vec::new();
        for (i, raw) in messages.iter().enumerate() {
            assert!(raw.len() <= MESSAGE_SIZE);
            let m = HMessage::from_vec(raw).expect("reads back");
            assert_eq!(m.queries.len(), usize::from(i == 0));
            assert!(m.metadata.authoritative);
            for r in m.answers {
                assert_eq!(r.dns_class, DNSClass::IN);
                seen.push(format!(
                    "{} {} {} {}",
                    r.name,
                    r.ttl,
                    r.record_type(),
                    r.data
                ));
            }
        }
        // The SOA first and last, every other record once.
        let soa =
            "example.com. 300 SOA ns1.example.com. hostmaster.example.com. 7 7200 900 1209600 60";
        assert_eq!(seen.first().map(String::as_str), Some(soa));
        assert_eq!(seen.last().map(String::as_str), Some(soa));
        assert_eq!(seen.len(), 20_000 + 9 + 2);
        let mut unique = seen[1..seen.len() - 1].to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 20_000 + 9);
        for want in [
            "example.com. 300 NS ns1.example.com.",
            "example.com. 300 MX 10 mail.example.com.",
            "alias.example.com. 300 CNAME www.example.com.",
            // Names not under the origin, one with as many labels: written whole.
            "ext.example.com. 300 CNAME www.example.net.",
            "short.example.com. 300 NS com.",
            "www.example.com. 300 A 192.0.2.2",
            "www.example.com. 300 AAAA 2001:db8::1",
            "h19999.example.com. 300 A 10.0.78.31",
        ] {
            assert!(unique.iter().any(|r| r == want), "{want}");
        }
        // Compressed: an `hN` A record costs its label (at most 7 bytes), a pointer to
        // the origin (2) and 14 bytes (type, class, TTL, length, address): 23 at most,
        // where the origin written out would make it 34.
        let total: usize = messages.iter().map(Vec::len).sum();
        assert!(total < 20_000 * 23, "{total} bytes");
    }

    #[test]
    fn records_that_do_not_fit_go_to_the_next_message_in_order() {
        let mut text =
            String::from("$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n");
        // A large RRset among other names: one message cannot hold them all.
        for i in 0..1000 {
            text.push_str(&format!("big TXT \"record {i:05} of the large set\"\n"));
        }
        for i in 0..3000 {
            text.push_str(&format!("h{i} A 10.0.{}.{}\n", i / 256, i % 256));
        }
        let messages = messages(&zone(&text, None), DEFAULT);
        assert!(messages.len() >= 2);
        let mut values = Vec::new();
        for raw in &messages {
            for r in HMessage::from_vec(raw).expect("reads back").answers {
                if r.record_type() == RecordType::TXT {
                    assert_eq!(r.name.to_string(), "big.example.com.");
                    values.push(r.data.to_string());
                }
            }
        }
        let want: Vec<String> = (0..1000)
            .map(|i| format!("record {i:05} of the large set"))
            .collect();
        assert_eq!(values, want);
    }

    #[test]
    fn an_overlay_view_is_sent_with_its_own_rrsets_in_place_of_the_bases() {
        let mut text =
            String::from("$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n");
        for i in 0..3000 {
            text.push_str(&format!("h{i} A 10.0.{}.{}\n", i / 256, i % 256));
        }
        let overlay = "$ORIGIN example.com.\n$TTL 60\nh7 A 203.0.113.7\ncn A 203.0.113.1\n";
        let zones = zone(&text, Some(overlay));
        let mut seen = Vec::new();
        for raw in messages(&zones, LineId::new(0)) {
            for r in HMessage::from_vec(&raw).expect("reads back").answers {
                seen.push(format!("{} {} {}", r.name, r.ttl, r.data));
            }
        }
        assert_eq!(seen.len(), 3000 + 1 + 1 + 2);
        assert!(seen.contains(&"h7.example.com. 60 203.0.113.7".to_string()));
        assert!(seen.contains(&"cn.example.com. 60 203.0.113.1".to_string()));
        assert!(!seen.contains(&"h7.example.com. 300 10.0.0.7".to_string()));
        assert!(seen.contains(&"h8.example.com. 300 10.0.0.8".to_string()));
    }
}
