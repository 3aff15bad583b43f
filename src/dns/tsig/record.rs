//! The TSIG record on the wire (RFC 8945 4.2): finding it in a message, reading it, and
//! appending one to a message.
//!
//! This module owns the record's layout and the rule that a TSIG is the last record of the
//! additional section (RFC 8945 5.1: anywhere else, or twice, the message is a FORMERR).
//! It works on any opcode's message (QUERY, UPDATE, NOTIFY): it walks the four sections
//! without interpreting them. It does not compute or check MACs ([`super::verify`],
//! [`super::sign`]).

use crate::dns::wire::{ADDITIONAL, HEADER_LEN, Header, MAX_NAME, OPT, RR_FIXED_LEN, skip_name};

/// The TSIG record's type (RFC 8945 4.2).
pub(crate) const TSIG: u16 = 250;
/// A TSIG record's class: ANY.
pub(crate) const CLASS_ANY: u16 = 255;
/// The largest number of compression pointers followed in one name: more is a loop.
const MAX_POINTERS: usize = 64;

/// A TSIG record as read from a message. Names are in wire form, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TsigRecord<'m> {
    pub(crate) key_name: Vec<u8>,
    pub(crate) algorithm: Vec<u8>,
    /// Seconds since the epoch, 48 bits.
    pub(crate) time_signed: u64,
    pub(crate) fudge: u16,
    pub(crate) mac: &'m [u8],
    pub(crate) original_id: u16,
    pub(crate) error: u16,
    pub(crate) other: &'m [u8],
}

/// What [`scan`] found in a message.
#[derive(Debug)]
pub(crate) struct Scan<'m> {
    pub(crate) tsig: Found<'m>,
    /// The TTL of the message's OPT record, when it has one: an error response to an EDNS
    /// request carries OPT too (RFC 6891 6.1.1).
    pub(crate) opt_ttl: Option<u32>,
}

/// Whether, and how, a message carries a TSIG record.
#[derive(Debug)]
pub(crate) enum Found<'m> {
    /// No TSIG record (or a message too broken to walk: the next reader refuses it).
    None,
    /// The last record, starting at byte `start`.
    Last {
        start: usize,
        record: TsigRecord<'m>,
    },
    /// A TSIG record where none may be, or one that cannot be read: FORMERR.
    Malformed(&'static str),
}

/// Walks `message`'s sections looking for a TSIG record. Costs one header read for a
/// message without additional records; the answer cache never gets here (its reader
/// takes nothing but an OPT record in the additional section).
pub(crate) fn scan(message: &[u8]) -> Scan<'_> {
    let mut scan = Scan {
        tsig: Found::None,
        opt_ttl: None,
    };
    let Some(header) = Header::read(message) else {
        return scan;
    };
    if header.counts[ADDITIONAL] == 0 {
        return scan;
    }
    let mut at = HEADER_LEN;
    for _ in 0..header.counts[0] {
        match skip_name(message, at) {
            Some(end) if end + 4 <= message.len() => at = end + 4,
            _ => return scan,
        }
    }
    let records: usize = header.counts[1..].iter().map(|&c| usize::from(c)).sum();
    let first_additional = records - usize::from(header.counts[ADDITIONAL]);
    for index in 0..records {
        let start = at;
        let Some(fixed) = skip_name(message, at) else {
            return scan;
        };
        let Some(f) = message.get(fixed..fixed + RR_FIXED_LEN) else {
            return scan;
        };
        let rtype = u16::from_be_bytes([f[0], f[1]]);
        let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        let rdata_at = fixed + RR_FIXED_LEN;
        let end = rdata_at + usize::from(u16::from_be_bytes([f[8], f[9]]));
        if end > message.len() {
            return scan;
        }
        if rtype == OPT && index >= first_additional {
            scan.opt_ttl = Some(ttl);
        }
        if rtype == TSIG {
            if index + 1 != records || index < first_additional {
                // Walk on: an OPT record after it still gets its echo in the FORMERR.
                scan.tsig = Found::Malformed("a TSIG record that is not the last record");
            } else if matches!(scan.tsig, Found::None) {
                scan.tsig = if end != message.len() {
                    Found::Malformed("bytes after the TSIG record")
                } else if u16::from_be_bytes([f[2], f[3]]) != CLASS_ANY {
                    Found::Malformed("a TSIG record whose class is not ANY")
                } else {
                    match read(message, start, rdata_at, end) {
                        Some(record) => Found::Last { start, record },
                        None => Found::Malformed("the TSIG record cannot be read"),
                    }
                };
            }
        }
        at = end;
    }
    scan
}

/// Reads the TSIG record whose owner is at `owner` and whose rdata is `rdata_at..end`.
fn read(message: &[u8], owner: usize, rdata_at: usize, end: usize) -> Option<TsigRecord<'_>> {
    let (key_name, _) = read_name_canonical(message, owner)?;
    let (algorithm, mut at) = read_name_canonical(message, rdata_at)?;
    let rdata = message.get(..end)?;
    let mut take = |n: usize| {
        let bytes = rdata.get(at..at + n)?;
        at += n;
        Some(bytes)
    };
    let time = take(6)?;
    let time_signed = time.iter().fold(0u64, |t, &b| t << 8 | u64::from(b));
    let word = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let fudge = word(take(2)?);
    let mac_len = usize::from(word(take(2)?));
    let mac = take(mac_len)?;
    let original_id = word(take(2)?);
    let error = word(take(2)?);
    let other_len = usize::from(word(take(2)?));
    let other = take(other_len)?;
    (at == end).then_some(TsigRecord {
        key_name,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// Reads the name at `at`, following compression pointers, into wire form with ASCII
/// letters lower-cased (the canonical form the MAC covers, RFC 8945 4.3.3); returns it
/// and where the name ends in the message.
pub(crate) fn read_name_canonical(message: &[u8], mut at: usize) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::with_capacity(32);
    let mut end = None;
    let mut pointers = 0;
    loop {
        let len = *message.get(at)?;
        match len & 0xc0 {
            0x00 => {
                let label = message.get(at..at + 1 + usize::from(len))?;
                name.extend(label.iter().map(u8::to_ascii_lowercase));
                if name.len() > MAX_NAME {
                    return None;
                }
                at += label.len();
                if len == 0 {
                    return Some((name, end.unwrap_or(at)));
                }
            }
            0xc0 => {
                let low = *message.get(at + 1)?;
                end.get_or_insert(at + 2);
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return None;
                }
                at = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            }
            _ => return None,
        }
    }
}

impl TsigRecord<'_> {
    /// The fields a MAC covers, as read.
    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            key_name: &self.key_name,
            algorithm: &self.algorithm,
            time_signed: self.time_signed,
            fudge: self.fudge,
            original_id: self.original_id,
            error: self.error,
            other: self.other,
        }
    }
}

/// A TSIG record to append: the fields after the owner and the algorithm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub(crate) key_name: &'a [u8],
    pub(crate) algorithm: &'a [u8],
    pub(crate) time_signed: u64,
    pub(crate) fudge: u16,
    pub(crate) original_id: u16,
    pub(crate) error: u16,
    pub(crate) other: &'a [u8],
}

impl Fields<'_> {
    /// The encoded length of the record with a MAC of `mac_len` bytes.
    pub(crate) fn record_len(&self, mac_len: usize) -> usize {
        self.key_name.len() + RR_FIXED_LEN + self.algorithm.len() + 16 + mac_len + self.other.len()
    }
}

/// Appends the TSIG record of `fields` and `mac` to `message` and counts it in the
/// header's additional count. `message` must hold a header.
pub(crate) fn append(message: &mut Vec<u8>, fields: &Fields<'_>, mac: &[u8]) {
    let rdata_len = fields.algorithm.len() + 16 + mac.len() + fields.other.len();
    message.extend_from_slice(fields.key_name);
    message.extend_from_slice(&TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdata_len as u16).to_be_bytes());
    message.extend_from_slice(fields.algorithm);
    message.extend_from_slice(&time48(fields.time_signed));
    message.extend_from_slice(&fields.fudge.to_be_bytes());
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&fields.original_id.to_be_bytes());
    message.extend_from_slice(&fields.error.to_be_bytes());
    message.extend_from_slice(&(fields.other.len() as u16).to_be_bytes());
    message.extend_from_slice(fields.other);
    add_to_additional_count(message, 1);
}

/// Adds `n` (which may be negative) to the header's additional count; `message` must
/// hold a header.
pub(crate) fn add_to_additional_count(message: &mut [u8], n: i32) {
    if let Some(mut header) = Header::read(message) {
        header.counts[ADDITIONAL] = (i32::from(header.counts[ADDITIONAL]) + n) as u16;
        header.write(message);
    }
}

/// A time in seconds as TSIG's 48-bit field.
pub(crate) fn time48(seconds: u64) -> [u8; 6] {
    let b = seconds.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::tests::query;

    const KEY: &[u8] = b"\x03key\x07example\x00";
    const ALG: &[u8] = b"\x0bhmac-sha256\x00";

    fn fields() -> Fields<'static> {
        Fields {
            key_name: KEY,
            algorithm: ALG,
            time_signed: 0x0102_0304_0506,
            fudge: 300,
            original_id: 0xbeef,
            error: 0,
            other: b"",
        }
    }

    fn signed(opt: bool) -> Vec<u8> {
        let mut m = query(
            0xbeef,
            "www.example.com",
            1,
            opt.then_some((1232, 0x8000, &[][..])),
        );
        let f = fields();
        append(&mut m, &f, &[7; 32]);
        assert_eq!(
            m.len(),
            query(
                1,
                "www.example.com",
                1,
                opt.then_some((1232, 0x8000, &[][..]))
            )
            .len()
                + f.record_len(32)
        );
        m
    }

    #[test]
    fn appended_record_is_found_and_read_back() {
        for opt in [false, true] {
            let m = signed(opt);
            let scan = scan(&m);
            assert_eq!(scan.opt_ttl, opt.then_some(0x8000));
            let Found::Last { start, record } = scan.tsig else {
                panic!("{:?}", scan.tsig);
            };
            assert_eq!(m[start..start + KEY.len()], *KEY);
            assert_eq!(record.key_name, KEY);
            assert_eq!(record.algorithm, ALG);
            assert_eq!(record.time_signed, 0x0102_0304_0506);
            assert_eq!(
                (record.fudge, record.original_id, record.error),
                (300, 0xbeef, 0)
            );
            assert_eq!(record.mac, &[7; 32]);
            assert_eq!(record.other, b"");
        }
    }

    #[test]
    fn a_tsig_anywhere_but_last_is_malformed() {
        // TSIG then OPT: the order RFC 6891 and RFC 8945 both forbid.
        let mut m = query(1, "a.example", 1, None);
        append(&mut m, &fields(), &[1; 32]);
        m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        add_to_additional_count(&mut m, 1);
        assert!(matches!(
            scan(&m).tsig,
            Found::Malformed("a TSIG record that is not the last record")
        ));
        // Trailing bytes, a wrong class, a cut record.
        let mut m = signed(false);
        m.push(0);
        assert!(matches!(scan(&m).tsig, Found::None | Found::Malformed(_)));
        let mut m = signed(false);
        let class_at = query(1, "www.example.com", 1, None).len() + KEY.len() + 2;
        m[class_at + 1] = 1;
        assert!(matches!(
            scan(&m).tsig,
            Found::Malformed("a TSIG record whose class is not ANY")
        ));
        // The rdata length says one byte more than the fields use: unreadable.
        let mut m = signed(false);
        m.push(0);
        let len_at = query(1, "www.example.com", 1, None).len() + KEY.len() + 8;
        m[len_at + 1] += 1;
        assert!(matches!(
            scan(&m).tsig,
            Found::Malformed("the TSIG record cannot be read")
        ));
    }

    #[test]
    fn unsigned_and_broken_messages_have_no_tsig() {
        assert!(matches!(
            scan(&query(1, "a.example", 1, None)).tsig,
            Found::None
        ));
        let with_opt = query(1, "a.example", 1, Some((1232, 0, &[])));
        assert!(matches!(scan(&with_opt).tsig, Found::None));
        assert_eq!(scan(&with_opt).opt_ttl, Some(0));
        let m = signed(true);
        for end in 0..m.len() {
            let _ = scan(&m[..end]);
        }
        for i in 0..m.len() {
            for v in [0u8, 1, 0x3f, 0xc0, 0xff] {
                let mut b = m.clone();
                b[i] = v;
                let _ = scan(&b);
            }
        }
    }

    #[test]
    fn names_are_read_through_pointers_lower_cased() {
        let m = b"\x03KEY\x07Example\x00\x02ab\xc0\x00\xc0\x0d";
        assert_eq!(
            read_name_canonical(m, 0),
            Some((b"\x03key\x07example\x00".to_vec(), 13))
        );
        assert_eq!(
            read_name_canonical(m, 13),
            Some((b"\x02ab\x03key\x07example\x00".to_vec(), 18))
        );
        // A pointer to itself.
        assert_eq!(read_name_canonical(b"\xc0\x00", 0), None);
    }
}
