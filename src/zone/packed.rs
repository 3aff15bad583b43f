//! An RRset as a view stores it: its records' data in wire format, packed in one
//! allocation, without the owner name (the name index holds it once, for all of the
//! name's RRsets).
//!
//! hickory's [`Record`] is close to 300 bytes whatever its data (an owner [`Name`] of 80
//! bytes inline and an [`RData`] the size of its largest variant), so a zone of a million
//! A records held as records costs about 300 MB in records alone. Packed, an A RRset is
//! the record type, the TTL and four bytes of address: one small allocation. Records are
//! made again from the bytes when an answer, a transfer or an update needs them; hickory's
//! decoder reads them back to the very data that was packed, which [`Packed::new`] checks
//! before it packs (data that would not read back stays as records, [`Packed`]'s
//! `Records`).
//!
//! This module owns that representation only: what an RRset is for the lookup, and how
//! the views share them, are [`super::tree`]'s.

use std::sync::Arc;

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};

use super::tree::Rrset;

/// Bytes before the first record: the record type (2) and the TTL (4).
const HEADER: usize = 6;

/// A record whose data is kept as opaque bytes ([`RData::Unknown`]) rather than decoded.
const OPAQUE: u8 = 1;

/// The records of one name and type, with one TTL, in file order.
#[derive(Clone)]
pub(crate) enum Packed {
    /// Class IN, one TTL, data that reads back as it was: `type ttl` then, per record,
    /// `flags length data` (big-endian numbers).
    Wire(Arc<[u8]>),
    /// Anything else, as the records themselves (rare: data hickory would not read back).
    Records(Rrset),
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed")
            .field("type", &self.record_type())
            .field("records", &self.len())
            .finish()
    }
}

impl Packed {
    /// `records` packed, or kept as they are when they cannot be: `None` for no records.
    /// The records' owner is not kept: [`Packed::records`] takes it.
    pub(crate) fn new(records: &Rrset) -> Option<Packed> {
        records.first()?;
        Some(match wire(records) {
            Some(bytes) => Packed::Wire(bytes.into()),
            None => Packed::Records(records.clone()),
        })
    }

    /// The type of the records.
    pub(crate) fn record_type(&self) -> RecordType {
        match self {
            Packed::Wire(bytes) => RecordType::from(u16::from_be_bytes([bytes[0], bytes[1]])),
            Packed::Records(records) => records
                .first()
                .map_or(RecordType::NULL, Record::record_type),
        }
    }

    /// The TTL of the RRset (of its first record).
    pub(crate) fn ttl(&self) -> u32 {
        match self {
            Packed::Wire(bytes) => u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]),
            Packed::Records(records) => records.first().map_or(0, |r| r.ttl),
        }
    }

    /// The number of records.
    pub(crate) fn len(&self) -> usize {
        match self {
            Packed::Wire(bytes) => Pieces::of(bytes).count(),
            Packed::Records(records) => records.len(),
        }
    }

    /// The records' data in wire form (names uncompressed), in order, when they are
    /// packed: what a zone transfer copies onto the wire as it is. `None` for records
    /// kept whole ([`Packed::to_rrset`] gives those).
    pub(crate) fn wire_data(&self) -> Option<impl Iterator<Item = &[u8]> + '_> {
        match self {
            Packed::Wire(bytes) => Some(Pieces::of(bytes).map(|(_, data)| data)),
            Packed::Records(_) => None,
        }
    }

    /// The records' data, in order.
    pub(crate) fn data(&self) -> impl Iterator<Item = RData> + '_ {
        let (pieces, records) = match self {
            Packed::Wire(bytes) => (Some(Pieces::of(bytes)), None),
            Packed::Records(records) => (None, Some(records.iter())),
        };
        let rtype = self.record_type();
        pieces
            .into_iter()
            .flatten()
            .filter_map(move |(flags, data)| decode(rtype, flags, data))
            .chain(records.into_iter().flatten().map(|r| r.data.clone()))
    }

    /// The records, owned by `owner` (records kept whole keep their own owner).
    pub(crate) fn records<'a>(&'a self, owner: &'a Name) -> impl Iterator<Item = Record> + 'a {
        let ttl = self.ttl();
        let (packed, kept) = match self {
            Packed::Wire(_) => (Some(self.data()), None),
            Packed::Records(records) => (None, Some(records.iter().cloned())),
        };
        packed
            .into_iter()
            .flatten()
            .map(move |data| Record::from_rdata(owner.clone(), ttl, data))
            .chain(kept.into_iter().flatten())
    }

    /// The first record, owned by `owner` (see [`Packed::records`]).
    pub(crate) fn first(&self, owner: &Name) -> Option<Record> {
        self.records(owner).next()
    }

    /// The RRset as records, owned by `owner` (see [`Packed::records`]).
    pub(crate) fn to_rrset(&self, owner: &Name) -> Rrset {
        match self {
            Packed::Records(records) => records.clone(),
            Packed::Wire(_) => self.records(owner).collect(),
        }
    }

    /// Asks the CPU for the memory the type, the TTL and the first records are read from,
    /// ahead of reading them (see [`crate::util::prefetch`]).
    pub(crate) fn prefetch(&self) {
        match self {
            Packed::Wire(bytes) => crate::util::prefetch::prefetch(bytes.as_ptr()),
            Packed::Records(records) => crate::util::prefetch::prefetch(records.as_ptr()),
        }
    }

    /// Whether this and `other` are the same stored RRset (one shared, not two equal).
    pub(crate) fn ptr_eq(&self, other: &Packed) -> bool {
        match (self, other) {
            (Packed::Wire(a), Packed::Wire(b)) => Arc::ptr_eq(a, b),
            (Packed::Records(a), Packed::Records(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The packed form of `records`, when they are of class IN, share the first one's type
/// and TTL, and each one's data reads back from its wire form to the same data.
fn wire(records: &[Record]) -> Option<Vec<u8>> {
    let first = records.first()?;
    let rtype = first.record_type();
    let mut out = Vec::with_capacity(HEADER + records.len() * 8);
    out.extend_from_slice(&u16::from(rtype).to_be_bytes());
    out.extend_from_slice(&first.ttl.to_be_bytes());
    for record in records {
        if record.dns_class != DNSClass::IN || record.ttl != first.ttl {
            return None;
        }
        if record.record_type() != rtype {
            return None;
        }
        let (flags, data) = match &record.data {
            RData::Unknown { rdata, .. } => (OPAQUE, rdata.anything.clone()),
            data => {
                let mut bytes = Vec::new();
                let mut encoder = BinEncoder::new(&mut bytes);
                encoder.set_name_encoding(NameEncoding::Uncompressed);
                data.emit(&mut encoder).ok()?;
                (0, bytes)
            }
        };
        let length = u16::try_from(data.len()).ok()?;
        if decode(rtype, flags, &data).as_ref() != Some(&record.data) {
            return None;
        }
        out.push(flags);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&data);
    }
    Some(out)
}

/// A record's data from its packed piece; `None` when it does not read (never for what
/// [`wire`] packed: it checks).
fn decode(rtype: RecordType, flags: u8, data: &[u8]) -> Option<RData> {
    if flags & OPAQUE != 0 {
        return Some(RData::Unknown {
            code: rtype,
            // (`NULL::with` refuses empty data.)
            rdata: if data.is_empty() {
                NULL::new()
            } else {
                NULL::with(data.to_vec())
            },
        });
    }
    let length = Restrict::new(u16::try_from(data.len()).ok()?);
    let mut decoder = BinDecoder::new(data);
    let read = RData::read(&mut decoder, rtype, length).ok()?;
    decoder.is_empty().then_some(read)
}

/// The records of a packed RRset: (flags, data) of each.
struct Pieces<'a> {
    rest: &'a [u8],
}

impl<'a> Pieces<'a> {
    fn of(bytes: &'a [u8]) -> Pieces<'a> {
        Pieces {
            rest: bytes.get(HEADER..).unwrap_or_default(),
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let [flags, high, low, rest @ ..] = self.rest else {
            return None;
        };
        let length = usize::from(u16::from_be_bytes([*high, *low]));
        let data = rest.get(..length)?;
        self.rest = &rest[length..];
        Some((*flags, data))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn rrset(owner: &str, ttl: u32, data: Vec<RData>) -> Rrset {
        data.into_iter()
            .map(|d| Record::from_rdata(name(owner), ttl, d))
            .collect()
    }

    #[test]
    fn records_read_back_as_they_were_packed() {
        let owner = name("Www.Example.com.");
        let sets = [
            rrset(
                "www.example.com.",
                300,
                vec![
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 2))),
                ],
            ),
            rrset(
                "www.example.com.",
                60,
                vec![RData::MX(MX::new(10, name("Mail.example.com.")))],
            ),
            rrset(
                "www.example.com.",
                60,
                vec![RData::CNAME(CNAME(name("other.example.net.")))],
            ),
            rrset(
                "www.example.com.",
                5,
                vec![RData::TXT(TXT::new(vec!["a b".into(), String::new()]))],
            ),
            rrset(
                "www.example.com.",
                5,
                vec![
                    RData::Unknown {
                        code: RecordType::Unknown(65280),
                        rdata: NULL::with(vec![1, 2, 3]),
                    },
                    RData::Unknown {
                        code: RecordType::Unknown(65280),
                        rdata: NULL::new(),
                    },
                ],
            ),
        ];
        for set in &sets {
            let packed = Packed::new(set).expect("records");
            assert!(matches!(packed, Packed::Wire(_)), "{set:?}");
            assert_eq!(packed.len(), set.len());
            assert_eq!(packed.ttl(), set[0].ttl);
            assert_eq!(packed.record_type(), set[0].record_type());
            let back: Vec<Record> = packed.records(&owner).collect();
            assert_eq!(back.len(), set.len());
            for (b, r) in back.iter().zip(set.iter()) {
                assert_eq!((&b.data, b.ttl, b.dns_class), (&r.data, r.ttl, r.dns_class));
                assert!(b.name.eq_case(&owner));
            }
        }
        // An A packs into the type, the TTL and, per record, flags, length and address.
        let Some(Packed::Wire(bytes)) = Packed::new(&sets[0]) else {
            panic!("packed");
        };
        assert_eq!(bytes.len(), HEADER + 2 * (3 + 4));
    }

    #[test]
    fn what_does_not_pack_stays_records() {
        let mut set = rrset(
            "x.example.com.",
            60,
            vec![
                RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                RData::A(A(Ipv4Addr::new(192, 0, 2, 2))),
            ],
        )
        .to_vec();
        set[1].ttl = 61;
        let set: Rrset = set.into();
        let packed = Packed::new(&set).expect("records");
        assert!(matches!(packed, Packed::Records(_)));
        assert_eq!(packed.to_rrset(&name("ignored.")), set);
        assert!(Packed::new(&Rrset::from(Vec::new())).is_none());
    }
}
