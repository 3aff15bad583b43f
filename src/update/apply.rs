//! Applying updates to a zone's data (RFC 2136 section 3.4.2), and the serial that moves
//! with every change (section 3.6, RFC 1982 arithmetic).
//!
//! This module owns the rules that keep a zone a zone whatever an update asks: the SOA is
//! never deleted and only replaced by one with a newer serial; the apex keeps at least one
//! NS; a CNAME never shares its name with other data; adding a record that is there
//! already changes nothing but its TTL. Updates that break a rule are ignored, as the RFC
//! says, not refused. The same rules replay the journal ([`replay`]).
//!
//! It does not check an update's form ([`super::message`]) or whether its sender may make
//! it ([`super::policy`]).

use hickory_proto::rr::{Name, RData, Record, RecordType};

use hickory_proto::op::ResponseCode;

use super::draft::{Diff, Draft};
use super::message::Update;
use crate::zone::{Change, unencodable};

/// Applies `update` to `data`. `may_delete` says which types a deletion of every RRset of
/// a name (section 2.5.3) may remove: the sender's grant may cover only some.
pub(crate) fn apply(
    data: &mut Draft<'_>,
    update: &Update,
    may_delete: impl Fn(RecordType) -> bool,
) {
    match update {
        Update::Add(record) => add(data, record),
        Update::DeleteRrset(name, rtype) => {
            if !(is_apex(data, name) && matches!(rtype, RecordType::SOA | RecordType::NS)) {
                data.set(name, *rtype, Vec::new());
            }
        }
        Update::DeleteName(name) => {
            let apex = is_apex(data, name);
            for rtype in data.types(name) {
                let kept = apex && matches!(rtype, RecordType::SOA | RecordType::NS);
                if !kept && may_delete(rtype) {
                    data.set(name, rtype, Vec::new());
                }
            }
        }
        Update::DeleteRecord(name, rtype, rdata) => delete_record(data, name, *rtype, rdata),
    }
}

/// What the zone file's loader would say of the RRsets `changes` leave, as an rcode: a
/// record that cannot be encoded in a response is the request's fault (FORMERR); an RRset
/// that would no longer fit in a DNS message is data the server will not take (REFUSED).
/// Either way nothing is applied, rather than data the server cannot serve. With the
/// loader's reason, for the log.
pub(crate) fn servable(changes: &[Change]) -> Result<(), (ResponseCode, String)> {
    let mut buf = Vec::new();
    for rrset in changes.iter().filter_map(|(_, _, set)| set.as_ref()) {
        for record in rrset.iter() {
            if let Some(reason) = unencodable(&[record], &mut buf) {
                return Err((ResponseCode::FormErr, reason));
            }
        }
        let records: Vec<&Record> = rrset.iter().collect();
        if let Some(reason) = unencodable(&records, &mut buf) {
            return Err((ResponseCode::Refused, reason));
        }
    }
    Ok(())
}

/// Section 3.4.2.2: adds `record` to its RRset, unless a rule says to ignore it.
fn add(data: &mut Draft<'_>, record: &Record) {
    let name = &record.name;
    let rtype = record.record_type();
    let mut record = record.clone();
    record.dns_class = hickory_proto::rr::DNSClass::IN;
    match rtype {
        RecordType::SOA => {
            let newer = match (&record.data, data.serial()) {
                (RData::SOA(new), Some(current)) => serial_newer(new.serial, current),
                _ => false,
            };
            if is_apex(data, name) && newer {
                data.set(name, rtype, vec![record]);
            }
            return;
        }
        RecordType::CNAME => {
            if data.types(name).iter().any(|&t| t != RecordType::CNAME) {
                return;
            }
            data.set(name, rtype, vec![record]);
            return;
        }
        _ => {}
    }
    if !data.rrset(name, RecordType::CNAME).is_empty() {
        return;
    }
    let mut set = data.rrset(name, rtype).to_vec();
    let unchanged = set
        .iter()
        .any(|r| r.data == record.data && r.ttl == record.ttl)
        && set.iter().all(|r| r.ttl == record.ttl);
    if unchanged {
        return;
    }
    set.retain(|r| r.data != record.data);
    // One TTL per RRset (RFC 2181 section 5.2): the one the update gives.
    for r in &mut set {
        r.ttl = record.ttl;
    }
    set.push(record);
    data.set(name, rtype, set);
}

/// Section 3.4.2.4: deletes one record, but never the SOA and never the apex's last NS.
fn delete_record(data: &mut Draft<'_>, name: &Name, rtype: RecordType, rdata: &RData) {
    if rtype == RecordType::SOA {
        return;
    }
    let set = data.rrset(name, rtype);
    if !set.iter().any(|r| r.data == *rdata) {
        return;
    }
    if rtype == RecordType::NS && is_apex(data, name) && set.len() == 1 {
        return;
    }
    let kept: Vec<Record> = set.iter().filter(|r| r.data != *rdata).cloned().collect();
    data.set(name, rtype, kept);
}

fn is_apex(data: &Draft<'_>, name: &Name) -> bool {
    name == data.origin()
}

/// RFC 1982 section 3.2: whether serial `a` is greater than `b` (an undefined comparison,
/// exactly half the space apart, is not greater).
pub(crate) fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// Replays a journal entry's `diff` on `data`: each removed record deleted and each added
/// record added, under the rules above (so a replay on a zone file edited since keeps the
/// zone whole).
pub(crate) fn replay(data: &mut Draft<'_>, diff: &Diff) {
    for record in &diff.removed {
        let update = Update::DeleteRecord(
            record.name.clone(),
            record.record_type(),
            record.data.clone(),
        );
        apply(data, &update, |_| true);
    }
    for record in &diff.added {
        add(data, record);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::Path;

    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA, TXT};

    use super::*;
    use crate::zone::{Layer, Zone};

    const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 host 41 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\nalias CNAME www\n";

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn zone() -> Zone {
        Zone::from_text(Path::new("example.com.zone"), ZONE, None).expect("zone")
    }

    fn record(owner: &str, ttl: u32, data: RData) -> Record {
        Record::from_rdata(name(owner), ttl, data)
    }

    fn a(last: u8) -> RData {
        RData::A(A(Ipv4Addr::new(192, 0, 2, last)))
    }

    fn txt(s: &str) -> RData {
        RData::TXT(TXT::new(vec![s.into()]))
    }

    fn soa(serial: u32) -> RData {
        RData::SOA(SOA::new(
            name("ns1.example.com."),
            name("host.example.com."),
            serial,
            2,
            3,
            4,
            5,
        ))
    }

    /// The data of `owner`/`rtype` after `updates`, as (ttl, rdata text), and the diff.
    fn after(updates: &[Update], owner: &str, rtype: RecordType) -> (Vec<(u32, String)>, Diff) {
        let zone = zone();
        let mut draft = Draft::new(zone.layer_view(Layer::Base), zone.origin());
        for update in updates {
            apply(&mut draft, update, |_| true);
        }
        let set = draft
            .rrset(&name(owner), rtype)
            .iter()
            .map(|r| (r.ttl, r.data.to_string()))
            .collect();
        (set, draft.diff())
    }

    #[test]
    fn add_appends_and_a_second_add_of_the_same_record_changes_nothing() {
        let add = Update::Add(record("www.example.com.", 300, a(11)));
        let (set, diff) = after(
            std::slice::from_ref(&add),
            "www.example.com.",
            RecordType::A,
        );
        assert_eq!(
            set,
            vec![(300, "192.0.2.10".into()), (300, "192.0.2.11".into())]
        );
        assert_eq!(diff.added.len(), 1);
        let (set, _) = after(&[add.clone(), add], "www.example.com.", RecordType::A);
        assert_eq!(set.len(), 2);
        let again = Update::Add(record("www.example.com.", 300, a(10)));
        let (_, diff) = after(&[again], "www.example.com.", RecordType::A);
        assert!(diff.is_empty(), "{diff:?}");
    }

    #[test]
    fn add_with_a_new_ttl_sets_the_rrsets_ttl() {
        let add = Update::Add(record("www.example.com.", 60, a(11)));
        let (set, diff) = after(&[add], "www.example.com.", RecordType::A);
        assert_eq!(
            set,
            vec![(60, "192.0.2.10".into()), (60, "192.0.2.11".into())]
        );
        assert_eq!((diff.removed.len(), diff.added.len()), (1, 2));
    }

    #[test]
    fn cname_is_exclusive() {
        // A CNAME where other data is: ignored.
        let cname = Update::Add(record(
            "www.example.com.",
            60,
            RData::CNAME(CNAME(name("x.example."))),
        ));
        let (set, _) = after(&[cname], "www.example.com.", RecordType::CNAME);
        assert!(set.is_empty());
        // Other data where a CNAME is: ignored.
        let data = Update::Add(record("alias.example.com.", 60, a(1)));
        let (set, diff) = after(&[data], "alias.example.com.", RecordType::A);
        assert!(set.is_empty() && diff.is_empty());
        // A CNAME replaces a CNAME.
        let other = Update::Add(record(
            "alias.example.com.",
            60,
            RData::CNAME(CNAME(name("y.example."))),
        ));
        let (set, _) = after(&[other], "alias.example.com.", RecordType::CNAME);
        assert_eq!(set, vec![(60, "y.example.".into())]);
    }

    #[test]
    fn soa_is_only_replaced_by_a_newer_serial_and_never_deleted() {
        let apex = "example.com.";
        let older = Update::Add(record(apex, 300, soa(40)));
        assert_eq!(
            after(&[older], apex, RecordType::SOA).0[0]
                .1
                .split(' ')
                .nth(2),
            Some("41")
        );
        let same = Update::Add(record(apex, 300, soa(41)));
        assert!(after(&[same], apex, RecordType::SOA).1.is_empty());
        let newer = Update::Add(record(apex, 300, soa(42)));
        assert_eq!(
            after(&[newer], apex, RecordType::SOA).0[0]
                .1
                .split(' ')
                .nth(2),
            Some("42")
        );
        // Wrapping: 41 + 2^31 - 1 is newer than 41.
        let wrapped = Update::Add(record(apex, 300, soa(41u32.wrapping_add((1 << 31) - 1))));
        assert_eq!(after(&[wrapped], apex, RecordType::SOA).1.added.len(), 1);
        for delete in [
            Update::DeleteRrset(name(apex), RecordType::SOA),
            Update::DeleteName(name(apex)),
            Update::DeleteRecord(name(apex), RecordType::SOA, soa(41)),
        ] {
            assert_eq!(after(&[delete], apex, RecordType::SOA).0.len(), 1);
        }
        // An SOA elsewhere than the apex is ignored.
        let elsewhere = Update::Add(record("www.example.com.", 300, soa(99)));
        assert!(
            after(&[elsewhere], "www.example.com.", RecordType::SOA)
                .0
                .is_empty()
        );
    }

    #[test]
    fn the_apex_keeps_its_last_ns() {
        let apex = "example.com.";
        let ns = |host: &str| RData::NS(NS(name(host)));
        let delete_last = Update::DeleteRecord(name(apex), RecordType::NS, ns("ns1.example.com."));
        assert_eq!(
            after(std::slice::from_ref(&delete_last), apex, RecordType::NS)
                .0
                .len(),
            1
        );
        assert_eq!(
            after(
                &[Update::DeleteRrset(name(apex), RecordType::NS)],
                apex,
                RecordType::NS
            )
            .0
            .len(),
            1
        );
        // With a second NS, one may go.
        let add = Update::Add(record(apex, 300, ns("ns2.example.net.")));
        let (set, _) = after(&[add, delete_last], apex, RecordType::NS);
        assert_eq!(set, vec![(300, "ns2.example.net.".into())]);
        // NS elsewhere (a delegation) can be deleted whole.
        let sub = Update::Add(record("sub.example.com.", 300, ns("ns.other.")));
        let gone = Update::DeleteRrset(name("sub.example.com."), RecordType::NS);
        assert!(
            after(&[sub, gone], "sub.example.com.", RecordType::NS)
                .0
                .is_empty()
        );
    }

    #[test]
    fn delete_name_removes_what_the_sender_may_delete() {
        let www = "www.example.com.";
        let add = Update::Add(record(www, 120, txt("v")));
        let zone = zone();
        let mut draft = Draft::new(zone.layer_view(Layer::Base), zone.origin());
        apply(&mut draft, &add, |_| true);
        apply(&mut draft, &Update::DeleteName(name(www)), |t| {
            t == RecordType::TXT
        });
        assert_eq!(draft.types(&name(www)), vec![RecordType::A]);
        apply(&mut draft, &Update::DeleteName(name(www)), |_| true);
        assert!(!draft.name_in_use(&name(www)));
        // At the apex, SOA and NS stay.
        apply(
            &mut draft,
            &Update::DeleteName(name("example.com.")),
            |_| true,
        );
        assert_eq!(
            draft.types(&name("example.com.")),
            vec![RecordType::NS, RecordType::SOA]
        );
    }

    #[test]
    fn delete_record_and_rrset() {
        let www = "www.example.com.";
        let add = Update::Add(record(www, 300, a(11)));
        let one = Update::DeleteRecord(name(www), RecordType::A, a(10));
        let (set, _) = after(&[add, one], www, RecordType::A);
        assert_eq!(set, vec![(300, "192.0.2.11".into())]);
        let missing = Update::DeleteRecord(name(www), RecordType::A, a(99));
        assert!(after(&[missing], www, RecordType::A).1.is_empty());
        let all = Update::DeleteRrset(name(www), RecordType::A);
        let (set, diff) = after(&[all], www, RecordType::A);
        assert!(set.is_empty());
        assert_eq!(diff.removed.len(), 1);
    }

    #[test]
    fn serials_compare_as_rfc_1982_says() {
        assert!(serial_newer(42, 41));
        assert!(serial_newer(0, u32::MAX));
        assert!(!serial_newer(u32::MAX, 0));
        assert!(!serial_newer(5, 5));
        assert!(!serial_newer(1 << 31, 0));
    }

    #[test]
    fn replay_applies_a_diff_under_the_same_rules() {
        let zone = zone();
        let mut draft = Draft::new(zone.layer_view(Layer::Base), zone.origin());
        apply(
            &mut draft,
            &Update::Add(record("x.example.com.", 60, txt("a"))),
            |_| true,
        );
        apply(
            &mut draft,
            &Update::DeleteRrset(name("www.example.com."), RecordType::A),
            |_| true,
        );
        let diff = draft.diff();
        let mut again = Draft::new(zone.layer_view(Layer::Base), zone.origin());
        replay(&mut again, &diff);
        assert_eq!(again.diff(), diff);
        let changed = zone.with_changes(Layer::Base, &again.changes());
        let view = changed.layer_view(Layer::Base);
        assert!(
            view.node(&name("www.example.com.")).is_none(),
            "www is gone, NXDOMAIN"
        );
        assert!(view.node(&name("x.example.com.")).is_some());
    }
}
