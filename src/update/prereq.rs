//! Prerequisites (RFC 2136 section 3.2): whether the zone's data is as the update says
//! it must be before any of its changes is made.
//!
//! This module owns the rcode each unmet prerequisite answers. It reads the data through a
//! [`Draft`] with no changes yet, and does not check a prerequisite's form
//! ([`super::message::prerequisites`] does).

use hickory_proto::op::ResponseCode;

use super::draft::Draft;
use super::message::Prerequisite;

/// Checks every prerequisite in order: the first unmet one gives the rcode (NXDOMAIN,
/// YXDOMAIN, NXRRSET or YXRRSET); all met is `Ok`.
pub(crate) fn check(data: &Draft<'_>, prerequisites: &[Prerequisite]) -> Result<(), ResponseCode> {
    for prerequisite in prerequisites {
        let unmet = match prerequisite {
            Prerequisite::NameInUse(name) => {
                (!data.name_in_use(name)).then_some(ResponseCode::NXDomain)
            }
            Prerequisite::NameNotInUse(name) => {
                data.name_in_use(name).then_some(ResponseCode::YXDomain)
            }
            Prerequisite::RrsetExists(name, rtype) => data
                .rrset(name, *rtype)
                .is_empty()
                .then_some(ResponseCode::NXRRSet),
            Prerequisite::RrsetDoesNotExist(name, rtype) => {
                (!data.rrset(name, *rtype).is_empty()).then_some(ResponseCode::YXRRSet)
            }
            Prerequisite::RrsetEquals(name, rtype, wanted) => {
                let have = data.rrset(name, *rtype);
                let equal =
                    have.len() == wanted.len() && have.iter().all(|r| wanted.contains(&r.data));
                (!equal).then_some(ResponseCode::NXRRSet)
            }
        };
        if let Some(rcode) = unmet {
            return Err(rcode);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::Path;

    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::*;
    use crate::zone::{Layer, Zone};

    const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\nwww A 192.0.2.11\na.b.c TXT \"deep\"\n";

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn a(last: u8) -> RData {
        RData::A(A(Ipv4Addr::new(192, 0, 2, last)))
    }

    fn checked(prerequisite: Prerequisite) -> Result<(), ResponseCode> {
        let zone = Zone::from_text(Path::new("example.com.zone"), ZONE, None).expect("zone");
        let draft = Draft::new(zone.layer_view(Layer::Base), zone.origin());
        check(&draft, &[prerequisite])
    }

    #[test]
    fn name_in_use_and_not_in_use() {
        use Prerequisite::*;
        assert_eq!(checked(NameInUse(name("WWW.example.com."))), Ok(()));
        assert_eq!(
            checked(NameInUse(name("nope.example.com."))),
            Err(ResponseCode::NXDomain)
        );
        // An empty non-terminal is not in use.
        assert_eq!(
            checked(NameInUse(name("b.c.example.com."))),
            Err(ResponseCode::NXDomain)
        );
        assert_eq!(checked(NameNotInUse(name("b.c.example.com."))), Ok(()));
        assert_eq!(
            checked(NameNotInUse(name("www.example.com."))),
            Err(ResponseCode::YXDomain)
        );
    }

    #[test]
    fn rrset_exists_and_does_not_exist() {
        use Prerequisite::*;
        let www = name("www.example.com.");
        assert_eq!(checked(RrsetExists(www.clone(), RecordType::A)), Ok(()));
        assert_eq!(
            checked(RrsetExists(www.clone(), RecordType::TXT)),
            Err(ResponseCode::NXRRSet)
        );
        assert_eq!(
            checked(RrsetDoesNotExist(www.clone(), RecordType::TXT)),
            Ok(())
        );
        assert_eq!(
            checked(RrsetDoesNotExist(www, RecordType::A)),
            Err(ResponseCode::YXRRSet)
        );
    }

    #[test]
    fn rrset_equals_compares_the_whole_set_without_ttls() {
        let www = name("www.example.com.");
        let equals =
            |data: Vec<RData>| checked(Prerequisite::RrsetEquals(www.clone(), RecordType::A, data));
        assert_eq!(equals(vec![a(11), a(10)]), Ok(()));
        assert_eq!(equals(vec![a(10)]), Err(ResponseCode::NXRRSet));
        assert_eq!(
            equals(vec![a(10), a(11), a(12)]),
            Err(ResponseCode::NXRRSet)
        );
        assert_eq!(equals(vec![a(10), a(12)]), Err(ResponseCode::NXRRSet));
    }
}
