//! Reading an UPDATE message (RFC 2136 section 2): its zone, its prerequisites and its
//! updates, each checked for form (sections 3.1.1, 3.2 and 3.4.1.3).
//!
//! This module owns what a well-formed update looks like and the FORMERR and NOTZONE it
//! answers otherwise. It does not look at zone data ([`super::prereq`] and
//! [`super::apply`] do) nor at who sent the message ([`super::policy`]).

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// An UPDATE request whose sections were read, not yet checked against a zone.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) id: u16,
    /// The zone section's name (its type is SOA, its class IN).
    pub(crate) zone: Name,
    /// The prerequisite section, as sent.
    pub(crate) prerequisites: Vec<Record>,
    /// The update section, as sent.
    pub(crate) updates: Vec<Record>,
    /// Whether the request had an OPT record (the response then has one).
    pub(crate) edns: bool,
}

/// Why a message is not an UPDATE request that can be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Not even a header, or a response: nothing is sent back.
    Drop,
    /// FORMERR, with the message's ID.
    FormErr(u16),
}

/// What one prerequisite RR asks (RFC 2136 section 2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prerequisite {
    /// 2.4.4: at least one RR with this name exists.
    NameInUse(Name),
    /// 2.4.5: no RR with this name exists.
    NameNotInUse(Name),
    /// 2.4.1: an RRset of this name and type exists, whatever its data.
    RrsetExists(Name, RecordType),
    /// 2.4.3: no RRset of this name and type exists.
    RrsetDoesNotExist(Name, RecordType),
    /// 2.4.2: the RRset of this name and type is exactly these data (TTLs aside).
    RrsetEquals(Name, RecordType, Vec<RData>),
}

/// What one update RR does (RFC 2136 section 2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Update {
    /// 2.5.1: add this RR to its RRset.
    Add(Record),
    /// 2.5.2: delete the RRset of this name and type.
    DeleteRrset(Name, RecordType),
    /// 2.5.3: delete every RRset of this name.
    DeleteName(Name),
    /// 2.5.4: delete the RR of this name, type and data.
    DeleteRecord(Name, RecordType, RData),
}

impl Update {
    /// The name the update writes.
    pub(crate) fn name(&self) -> &Name {
        match self {
            Update::Add(record) => &record.name,
            Update::DeleteRrset(name, _)
            | Update::DeleteName(name)
            | Update::DeleteRecord(name, _, _) => name,
        }
    }

    /// The type it writes; `None` for every type of the name.
    pub(crate) fn record_type(&self) -> Option<RecordType> {
        match self {
            Update::Add(record) => Some(record.record_type()),
            Update::DeleteRrset(_, rtype) | Update::DeleteRecord(_, rtype, _) => Some(*rtype),
            Update::DeleteName(_) => None,
        }
    }
}

/// Reads an UPDATE message: a response or a message without a header is dropped; one
/// whose sections do not parse, or whose zone section is not one SOA question of class
/// IN, gets FORMERR (section 3.1.1).
pub(crate) fn read(bytes: &[u8]) -> Result<Request, Unreadable> {
    let id = match bytes {
        [a, b, _, _, ..] if bytes.len() >= 12 => u16::from_be_bytes([*a, *b]),
        _ => return Err(Unreadable::Drop),
    };
    if bytes[2] & 0x80 != 0 {
        return Err(Unreadable::Drop);
    }
    let message = Message::from_vec(bytes).map_err(|_| Unreadable::FormErr(id))?;
    if message.metadata.message_type != MessageType::Query
        || message.metadata.op_code != OpCode::Update
    {
        return Err(Unreadable::Drop);
    }
    let [zone] = message.queries.as_slice() else {
        return Err(Unreadable::FormErr(id));
    };
    if zone.query_type() != RecordType::SOA || zone.query_class() != DNSClass::IN {
        return Err(Unreadable::FormErr(id));
    }
    let mut zone_name = zone.name().clone();
    zone_name.set_fqdn(true);
    Ok(Request {
        id,
        zone: zone_name,
        edns: message.edns.is_some(),
        prerequisites: message.answers,
        updates: message.authorities,
    })
}

/// The response to request `id` for `zone` (echoed as the zone section when known):
/// header, zone section and, when the request had one, an OPT record.
pub(crate) fn response(
    id: u16,
    zone: Option<&Name>,
    rcode: ResponseCode,
    edns: bool,
) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Response, OpCode::Update);
    message.metadata.response_code = rcode;
    if let Some(zone) = zone {
        message.add_query(hickory_proto::op::Query::query(
            zone.clone(),
            RecordType::SOA,
        ));
    }
    if edns {
        let mut opt = hickory_proto::op::Edns::new();
        opt.set_max_payload(1232);
        message.set_edns(opt);
    }
    message.to_vec().ok()
}

/// The prerequisites of `request`, each checked for form (section 3.2): a TTL other than
/// zero or an unknown class is FORMERR, a name outside `zone` NOTZONE. RRs of the zone's
/// class are gathered into one RRset per name and type (section 3.2.3).
pub(crate) fn prerequisites(
    records: &[Record],
    zone: &Name,
) -> Result<Vec<Prerequisite>, ResponseCode> {
    let mut out: Vec<Prerequisite> = Vec::with_capacity(records.len());
    for record in records {
        if record.ttl != 0 {
            return Err(ResponseCode::FormErr);
        }
        if !zone.zone_of(&record.name) {
            return Err(ResponseCode::NotZone);
        }
        let name = record.name.clone();
        let rtype = record.record_type();
        let empty = matches!(record.data, RData::Update0(_));
        let prerequisite = match (record.dns_class, rtype) {
            (DNSClass::ANY, _) if !empty => return Err(ResponseCode::FormErr),
            (DNSClass::NONE, _) if !empty => return Err(ResponseCode::FormErr),
            (DNSClass::ANY, RecordType::ANY) => Prerequisite::NameInUse(name),
            (DNSClass::ANY, _) => Prerequisite::RrsetExists(name, rtype),
            (DNSClass::NONE, RecordType::ANY) => Prerequisite::NameNotInUse(name),
            (DNSClass::NONE, _) => Prerequisite::RrsetDoesNotExist(name, rtype),
            (DNSClass::IN, _) if empty || is_meta(rtype) => return Err(ResponseCode::FormErr),
            (DNSClass::IN, _) => {
                let data = record.data.clone();
                let same = out.iter_mut().find_map(|p| match p {
                    Prerequisite::RrsetEquals(n, t, set) if *n == name && *t == rtype => Some(set),
                    _ => None,
                });
                match same {
                    Some(set) => {
                        if !set.contains(&data) {
                            set.push(data);
                        }
                        continue;
                    }
                    None => Prerequisite::RrsetEquals(name, rtype, vec![data]),
                }
            }
            _ => return Err(ResponseCode::FormErr),
        };
        out.push(prerequisite);
    }
    Ok(out)
}

/// The updates of `request`, each checked for form (section 3.4.1.3): a name outside
/// `zone` is NOTZONE; a meta type added, a deletion with a TTL or data it must not have,
/// or an unknown class is FORMERR.
pub(crate) fn updates(records: &[Record], zone: &Name) -> Result<Vec<Update>, ResponseCode> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        if !zone.zone_of(&record.name) {
            return Err(ResponseCode::NotZone);
        }
        let name = record.name.clone();
        let rtype = record.record_type();
        let empty = matches!(record.data, RData::Update0(_));
        let update = match record.dns_class {
            DNSClass::IN => {
                if is_meta(rtype) || rtype == RecordType::ANY || empty {
                    return Err(ResponseCode::FormErr);
                }
                Update::Add(record.clone())
            }
            DNSClass::ANY => {
                if record.ttl != 0 || !empty || is_transfer(rtype) {
                    return Err(ResponseCode::FormErr);
                }
                match rtype {
                    RecordType::ANY => Update::DeleteName(name),
                    _ => Update::DeleteRrset(name, rtype),
                }
            }
            DNSClass::NONE => {
                if record.ttl != 0 || empty || rtype == RecordType::ANY || is_meta(rtype) {
                    return Err(ResponseCode::FormErr);
                }
                Update::DeleteRecord(name, rtype, record.data.clone())
            }
            _ => return Err(ResponseCode::FormErr),
        };
        out.push(update);
    }
    Ok(out)
}

/// Types that are not data: queries' meta types and the message's own records.
fn is_meta(rtype: RecordType) -> bool {
    is_transfer(rtype)
        || matches!(
            rtype,
            RecordType::ANY | RecordType::OPT | RecordType::TSIG | RecordType::SIG
        )
}

fn is_transfer(rtype: RecordType) -> bool {
    matches!(
        rtype,
        // MAILB and MAILA (253, 254) have no names in hickory.
        RecordType::AXFR | RecordType::IXFR | RecordType::Unknown(253 | 254)
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::{A, TXT};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn zone() -> Name {
        name("example.com.")
    }

    fn rr(owner: &str, class: DNSClass, ttl: u32, data: RData) -> Record {
        let mut r = Record::from_rdata(name(owner), ttl, data);
        r.dns_class = class;
        r
    }

    fn empty(owner: &str, class: DNSClass, rtype: RecordType) -> Record {
        rr(owner, class, 0, RData::Update0(rtype))
    }

    fn a(last: u8) -> RData {
        RData::A(A(Ipv4Addr::new(192, 0, 2, last)))
    }

    fn update_message(zone: &str, updates: Vec<Record>) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Update);
        m.add_query(hickory_proto::op::Query::query(name(zone), RecordType::SOA));
        m.insert_authorities(updates);
        m.to_vec().expect("encodes")
    }

    #[test]
    fn every_prerequisite_kind_is_read() {
        let www = "www.example.com.";
        let records = vec![
            empty(www, DNSClass::ANY, RecordType::ANY),
            empty(www, DNSClass::NONE, RecordType::ANY),
            empty(www, DNSClass::ANY, RecordType::A),
            empty(www, DNSClass::NONE, RecordType::A),
            rr(www, DNSClass::IN, 0, a(1)),
            rr(www, DNSClass::IN, 0, a(2)),
            rr(www, DNSClass::IN, 0, a(1)),
        ];
        let www = name(www);
        assert_eq!(
            prerequisites(&records, &zone()),
            Ok(vec![
                Prerequisite::NameInUse(www.clone()),
                Prerequisite::NameNotInUse(www.clone()),
                Prerequisite::RrsetExists(www.clone(), RecordType::A),
                Prerequisite::RrsetDoesNotExist(www.clone(), RecordType::A),
                Prerequisite::RrsetEquals(www, RecordType::A, vec![a(1), a(2)]),
            ])
        );
    }

    #[test]
    fn malformed_prerequisites_are_formerr_and_outside_names_notzone() {
        let www = "www.example.com.";
        let bad = [
            rr(www, DNSClass::ANY, 60, RData::Update0(RecordType::A)),
            rr(www, DNSClass::ANY, 0, a(1)),
            rr(www, DNSClass::NONE, 0, a(1)),
            empty(www, DNSClass::CH, RecordType::A),
            empty(www, DNSClass::IN, RecordType::A),
        ];
        for record in bad {
            assert_eq!(
                prerequisites(std::slice::from_ref(&record), &zone()),
                Err(ResponseCode::FormErr),
                "{record:?}"
            );
        }
        let outside = empty("www.example.org.", DNSClass::ANY, RecordType::A);
        assert_eq!(
            prerequisites(&[outside], &zone()),
            Err(ResponseCode::NotZone)
        );
    }

    #[test]
    fn every_update_kind_is_read() {
        let www = "www.example.com.";
        let records = vec![
            rr(www, DNSClass::IN, 300, a(1)),
            empty(www, DNSClass::ANY, RecordType::A),
            empty(www, DNSClass::ANY, RecordType::ANY),
            rr(www, DNSClass::NONE, 0, a(1)),
        ];
        let n = name(www);
        assert_eq!(
            updates(&records, &zone()),
            Ok(vec![
                Update::Add(records[0].clone()),
                Update::DeleteRrset(n.clone(), RecordType::A),
                Update::DeleteName(n.clone()),
                Update::DeleteRecord(n, RecordType::A, a(1)),
            ])
        );
    }

    #[test]
    fn malformed_updates_are_formerr_and_outside_names_notzone() {
        let www = "www.example.com.";
        let bad = [
            empty(www, DNSClass::IN, RecordType::A),
            rr(www, DNSClass::IN, 60, RData::Update0(RecordType::AXFR)),
            rr(www, DNSClass::ANY, 60, RData::Update0(RecordType::A)),
            rr(www, DNSClass::ANY, 0, a(1)),
            empty(www, DNSClass::ANY, RecordType::AXFR),
            rr(www, DNSClass::NONE, 60, a(1)),
            empty(www, DNSClass::NONE, RecordType::ANY),
            rr(www, DNSClass::CH, 60, a(1)),
        ];
        for record in bad {
            assert_eq!(
                updates(std::slice::from_ref(&record), &zone()),
                Err(ResponseCode::FormErr),
                "{record:?}"
            );
        }
        let outside = rr("example.org.", DNSClass::IN, 60, a(1));
        assert_eq!(updates(&[outside], &zone()), Err(ResponseCode::NotZone));
    }

    #[test]
    fn zone_section_must_be_one_soa_question() {
        let txt = RData::TXT(TXT::new(vec!["v".into()]));
        let good = update_message(
            "Example.COM.",
            vec![rr("x.example.com.", DNSClass::IN, 60, txt)],
        );
        let request = read(&good).expect("reads");
        assert_eq!((request.id, request.zone), (7, zone()));
        assert_eq!(request.updates.len(), 1);

        let mut two = Message::new(9, MessageType::Query, OpCode::Update);
        two.add_query(hickory_proto::op::Query::query(zone(), RecordType::SOA));
        two.add_query(hickory_proto::op::Query::query(zone(), RecordType::SOA));
        let two = two.to_vec().expect("encodes");
        assert_eq!(read(&two).err(), Some(Unreadable::FormErr(9)));

        let mut not_soa = Message::new(9, MessageType::Query, OpCode::Update);
        not_soa.add_query(hickory_proto::op::Query::query(zone(), RecordType::A));
        let not_soa = not_soa.to_vec().expect("encodes");
        assert_eq!(read(&not_soa).err(), Some(Unreadable::FormErr(9)));

        assert_eq!(read(&good[..11]).err(), Some(Unreadable::Drop));
        assert_eq!(read(&good[..20]).err(), Some(Unreadable::FormErr(7)));
        let mut response = good.clone();
        response[2] |= 0x80;
        assert_eq!(read(&response).err(), Some(Unreadable::Drop));
    }
}
