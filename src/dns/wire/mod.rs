//! The DNS wire format as geoline reads and writes it: one packet library, in the manner of
//! Knot's `libknot/packet`.
//!
//! This module owns the layout every other part of [`crate::dns`] goes through: the header
//! (its offsets, flag bits, opcode and rcode fields), the OPT record's fixed part and its
//! list of options, and names in wire form (read uncompressed and lower-cased, skipped,
//! written lower-cased). [`query`] reads queries — the question-stage reader the cache uses
//! and the full one share its readers —, [`ecs`] reads and writes the Client Subnet option
//! and holds the rules that option decides, and [`response`] writes responses.
//!
//! It decides nothing about answers: what a response holds is [`crate::dns::decide`]'s and
//! the zone lookup's.

pub(crate) mod ecs;
pub(crate) mod query;
pub(crate) mod response;

use hickory_proto::rr::Name;

/// The fixed header: ID, flags, then the four section counts (RFC 1035 4.1.1).
pub(crate) const HEADER_LEN: usize = 12;
const ID: usize = 0;
const FLAGS: usize = 2;
const COUNTS: usize = 4;

/// Indexes of [`Header::counts`], in the order of the sections.
pub(crate) const QUESTION: usize = 0;
pub(crate) const ANSWER: usize = 1;
pub(crate) const AUTHORITY: usize = 2;
pub(crate) const ADDITIONAL: usize = 3;

/// Bits of the flags word (RFC 1035 4.1.1; CD: RFC 4035 3.2.2). RA is never set: geoline
/// does not recurse.
pub(crate) const QR: u16 = 0x8000;
pub(crate) const AA: u16 = 0x0400;
pub(crate) const TC: u16 = 0x0200;
pub(crate) const RD: u16 = 0x0100;
pub(crate) const CD: u16 = 0x0010;
const OPCODE_SHIFT: u32 = 11;
/// The opcode and the rcode are 4-bit fields.
const NIBBLE: u16 = 0xf;

/// The longest name in wire form (RFC 1035 2.3.4).
pub(crate) const MAX_NAME: usize = 255;
/// The two top bits of a label's length byte: 00 a label, 11 a compression pointer, the
/// other two extended label types nobody uses (RFC 6891 5).
const LABEL_TYPE: u8 = 0xc0;
const POINTER: u8 = 0xc0;

/// The OPT pseudo-record's type (RFC 6891 6.1.1).
pub(crate) const OPT: u16 = 41;
/// The class IN, as on the wire.
pub(crate) const CLASS_IN: u16 = 1;
/// An OPT record without options: the root owner (one byte), type, class (the UDP payload
/// size), TTL (extended rcode, version, flags) and rdata length.
pub(crate) const OPT_FIXED_LEN: usize = 11;
/// A resource record after its owner: type, class, TTL, rdata length.
pub(crate) const RR_FIXED_LEN: usize = 10;
/// The DO bit of the OPT record's TTL (RFC 3225 3).
const DNSSEC_OK: u32 = 0x8000;
/// An option's code and length (RFC 6891 6.1.2).
const OPTION_HEADER: usize = 4;
/// The UDP payload size every requester can take, and the floor of what one may announce
/// (RFC 6891 6.2.5).
pub(crate) const MIN_PAYLOAD: u16 = 512;

/// A message header, read or to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    /// Question, answer, authority and additional counts ([`QUESTION`] ... [`ADDITIONAL`]).
    pub(crate) counts: [u16; 4],
}

impl Header {
    /// The header of `message`; `None` when it is shorter than one.
    #[inline]
    pub(crate) fn read(message: &[u8]) -> Option<Header> {
        // A fixed-size array: the indexing below compiles without bounds checks (this runs
        // for every query).
        let h: &[u8; HEADER_LEN] = message.get(..HEADER_LEN)?.try_into().ok()?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Header {
            id: word(ID),
            flags: word(FLAGS),
            counts: [
                word(COUNTS),
                word(COUNTS + 2),
                word(COUNTS + 4),
                word(COUNTS + 6),
            ],
        })
    }

    /// A response's header: QR set, every other bit clear.
    pub(crate) fn response(id: u16, counts: [u16; 4]) -> Header {
        Header {
            id,
            flags: QR,
            counts,
        }
    }

    pub(crate) fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    pub(crate) fn set(&mut self, flag: u16, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    pub(crate) fn opcode(&self) -> u8 {
        ((self.flags >> OPCODE_SHIFT) & NIBBLE) as u8
    }

    pub(crate) fn set_opcode(&mut self, opcode: u8) {
        self.flags =
            (self.flags & !(NIBBLE << OPCODE_SHIFT)) | (u16::from(opcode) & NIBBLE) << OPCODE_SHIFT;
    }

    /// Sets the header's 4 bits of the rcode; the rest go in the OPT record ([`opt_ttl`]).
    pub(crate) fn set_rcode(&mut self, low: u8) {
        self.flags = (self.flags & !NIBBLE) | (u16::from(low) & NIBBLE);
    }

    /// Writes the header over the first [`HEADER_LEN`] bytes of `message`, which must have
    /// them.
    #[inline]
    pub(crate) fn write(&self, message: &mut [u8]) {
        message[ID..ID + 2].copy_from_slice(&self.id.to_be_bytes());
        message[FLAGS..FLAGS + 2].copy_from_slice(&self.flags.to_be_bytes());
        for (i, c) in self.counts.iter().enumerate() {
            let at = COUNTS + 2 * i;
            message[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// The version an OPT record's TTL announces (RFC 6891 6.1.3).
pub(crate) fn edns_version(ttl: u32) -> u8 {
    (ttl >> 16) as u8
}

/// Whether an OPT record's TTL has the DO bit.
pub(crate) fn dnssec_ok(ttl: u32) -> bool {
    ttl & DNSSEC_OK != 0
}

/// The TTL of a response's OPT record: the rcode's upper 8 bits, version 0, DO as given.
pub(crate) fn opt_ttl(extended_rcode: u8, dnssec_ok: bool) -> u32 {
    u32::from(extended_rcode) << 24 | if dnssec_ok { DNSSEC_OK } else { 0 }
}

/// The options of an OPT record's rdata in order, as (code, data). An `Err` ends the walk:
/// the rest cannot be an option.
pub(crate) fn options(rdata: &[u8]) -> Options<'_> {
    Options { rest: rdata }
}

/// See [`options`].
pub(crate) struct Options<'a> {
    rest: &'a [u8],
}

/// An option whose length runs past the rdata, or a code and length cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadOptions;

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u16, &'a [u8]), BadOptions>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let option = match self.rest {
            [c0, c1, l0, l1, after @ ..] => {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                after
                    .get(..len)
                    .map(|data| (u16::from_be_bytes([*c0, *c1]), data))
            }
            _ => None,
        };
        match option {
            Some((code, data)) => {
                self.rest = &self.rest[OPTION_HEADER + data.len()..];
                Some(Ok((code, data)))
            }
            None => {
                self.rest = &[];
                Some(Err(BadOptions))
            }
        }
    }
}

/// Reads the name at `at` in `message` into `buf`, ASCII letters lower-cased (the form
/// caches and rate limiting key by), and returns where it ends. `None` when it runs past
/// the message, holds a compression pointer or an extended label type, or is longer than
/// [`MAX_NAME`]: the strict reader decides what those deserve.
#[inline]
pub(crate) fn read_name_lower(
    message: &[u8],
    start: usize,
    buf: &mut [u8; MAX_NAME],
) -> Option<usize> {
    let mut at = start;
    loop {
        let len = *message.get(at)?;
        if len & LABEL_TYPE != 0 {
            return None;
        }
        let end = at + 1 + usize::from(len);
        if end - start > MAX_NAME {
            return None;
        }
        let label = message.get(at..end)?;
        for (dst, src) in buf[at - start..end - start].iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        at = end;
        if len == 0 {
            return Some(at);
        }
    }
}

/// Where the name at `at` ends (after its terminating root label or compression pointer);
/// `None` when it runs past the message or uses an extended label type.
pub(crate) fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *message.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & LABEL_TYPE == POINTER => return Some(at + 2),
            l if l & LABEL_TYPE == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Writes `name` in wire form, lower-cased, into `buf`; returns the part written. The
/// strict path's names are hickory [`Name`]s; [`read_name_lower`] gives the same bytes
/// for the same name read off the wire.
pub(crate) fn write_name_lower<'b>(name: &Name, buf: &'b mut [u8; MAX_NAME]) -> &'b [u8] {
    let mut at = 0;
    for label in name.iter() {
        // A name read off the wire fits in 255 bytes; stop rather than panic if not.
        let Some(dst) = buf.get_mut(at..at + 1 + label.len()) else {
            break;
        };
        dst[0] = label.len() as u8;
        for (d, s) in dst[1..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        at += 1 + label.len();
    }
    if at < buf.len() {
        buf[at] = 0;
        at += 1;
    }
    &buf[..at]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A query for `name`/`qtype` with RD and CD set and an optional OPT record (payload,
    /// TTL, rdata): the shape the unit tests of this module's readers and of the answer
    /// cache send.
    pub(crate) fn query(
        id: u16,
        name: &str,
        qtype: u16,
        opt: Option<(u16, u32, &[u8])>,
    ) -> Vec<u8> {
        let mut b = vec![0; HEADER_LEN];
        let header = Header {
            id,
            flags: RD | CD,
            counts: [1, 0, 0, u16::from(opt.is_some())],
        };
        header.write(&mut b);
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

    const WWW: &[u8] = b"\x03www\x07example\x03com\x00";

    #[test]
    fn wire_names_lower_cased() {
        let mut buf = [0u8; 255];
        let name = Name::from_ascii("WWW.Example.com.").expect("name");
        assert_eq!(write_name_lower(&name, &mut buf), WWW);
        assert_eq!(write_name_lower(&Name::root(), &mut buf), b"\x00");
    }

    #[test]
    fn names_read_lower_cased_as_written() {
        let message = query(1, "WwW.ExAmple.COM", 1, None);
        let mut buf = [0u8; MAX_NAME];
        let end = read_name_lower(&message, HEADER_LEN, &mut buf).expect("reads");
        assert_eq!(&buf[..end - HEADER_LEN], WWW);
        assert_eq!(skip_name(&message, HEADER_LEN), Some(end));
        // A pointer: skipped as two bytes, not read.
        assert_eq!(skip_name(&[0xc0, 12], 0), Some(2));
        assert_eq!(read_name_lower(&[0xc0, 12], 0, &mut buf), None);
        assert_eq!(skip_name(&[0x40, 0], 0), None);
        assert_eq!(
            read_name_lower(&message[..HEADER_LEN + 3], HEADER_LEN, &mut buf),
            None
        );
    }

    #[test]
    fn header_fields_round_trip() {
        let mut h = Header::response(0xbeef, [1, 2, 3, 4]);
        h.set_opcode(4);
        h.set_rcode(0x13);
        h.set(AA, true);
        h.set(TC, true);
        let mut b = [0u8; HEADER_LEN];
        h.write(&mut b);
        assert_eq!(b, [0xbe, 0xef, 0xa6, 0x03, 0, 1, 0, 2, 0, 3, 0, 4]);
        let read = Header::read(&b).expect("a header");
        assert_eq!(read, h);
        assert_eq!(read.opcode(), 4);
        assert!(read.has(QR) && read.has(TC) && !read.has(RD));
        assert_eq!(Header::read(&b[..11]), None);
    }

    #[test]
    fn options_walk_stops_at_the_first_bad_one() {
        fn walk(rdata: &[u8]) -> Vec<Result<(u16, &[u8]), BadOptions>> {
            options(rdata).collect()
        }
        assert_eq!(walk(&[]), []);
        assert_eq!(
            walk(&[0, 8, 0, 1, 7, 0, 3, 0, 0]),
            [Ok((8, &[7][..])), Ok((3, &[][..]))]
        );
        assert_eq!(walk(&[0, 8, 0, 2, 7]), [Err(BadOptions)]);
        assert_eq!(
            walk(&[0, 8, 0, 0, 1, 2]),
            [Ok((8, &[][..])), Err(BadOptions)]
        );
    }
}
