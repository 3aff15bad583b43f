//! [`super::process`] and [`super::replay`] end to end over a zone: every rcode, the
//! policy's names, types, limits and layers, and a journal replayed on a reloaded file.

use std::net::Ipv4Addr;
use std::path::Path;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::message::{self, Request};
use super::policy::{Grant, NamePattern, Types};
use super::*;
use crate::lines::{LineId, LineSet};
use crate::zone::{Answer, AnswerCode, Zone};

const BASE: &str = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 host 2026120701 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n";
const CHINA: &str = "www 60 A 203.0.113.10\n";

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn china() -> LineId {
    LineId::new(0).expect("line")
}

fn default_line() -> LineId {
    LineId::new(1).expect("line")
}

fn lines() -> LineSet {
    LineSet::new(["china"]).expect("lines")
}

fn zone() -> Zone {
    Zone::from_text(Path::new("example.com.zone"), BASE, Some(CHINA)).expect("zone")
}

fn key() -> Name {
    name("acme.")
}

fn grant(names: &[&str], types: &[RecordType], max: Option<usize>, line: Option<LineId>) -> Grant {
    Grant {
        key: key(),
        zones: vec![name("example.com.")],
        names: names
            .iter()
            .map(|n| NamePattern::parse(n).expect("pattern"))
            .collect(),
        types: if types.is_empty() {
            Types::Default
        } else {
            Types::Only(types.to_vec())
        },
        max_records: max,
        line,
    }
}

fn acme() -> Grant {
    grant(&["_acme-challenge.*"], &[RecordType::TXT], Some(2), None)
}

fn rr(owner: &str, class: DNSClass, ttl: u32, data: RData) -> Record {
    let mut r = Record::from_rdata(name(owner), ttl, data);
    r.dns_class = class;
    r
}

fn txt(s: &str) -> RData {
    RData::TXT(TXT::new(vec![s.into()]))
}

fn a(last: u8) -> RData {
    RData::A(A(Ipv4Addr::new(192, 0, 2, last)))
}

fn add(owner: &str, data: RData) -> Record {
    rr(owner, DNSClass::IN, 120, data)
}

fn request(prerequisites: Vec<Record>, updates: Vec<Record>) -> Request {
    let mut m = Message::new(1, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(name("example.com."), RecordType::SOA));
    m.insert_answers(prerequisites);
    m.insert_authorities(updates);
    message::read(&m.to_vec().expect("encodes")).expect("reads")
}

fn run(zone: &Zone, grants: &[Grant], request: &Request) -> Result<Option<Changed>, ResponseCode> {
    let grants: Vec<&Grant> = grants.iter().collect();
    process(zone, request, &key(), &grants, &lines(), 1_800_000_000)
}

fn texts(answer: &Answer) -> Vec<String> {
    answer.answers.iter().map(|r| r.data.to_string()).collect()
}

const CHALLENGE: &str = "_acme-challenge.example.com.";

#[test]
fn an_acme_challenge_is_added_for_every_line_and_the_serial_moves() {
    let zone = zone();
    let changed = run(
        &zone,
        &[acme()],
        &request(vec![], vec![add(CHALLENGE, txt("Token-1"))]),
    )
    .expect("noerror")
    .expect("changed");
    assert_eq!(changed.zone.serial(), 2026120702);
    assert_eq!(changed.entry.serial, 2026120702);
    assert_eq!(changed.entry.key, "acme.");
    assert_eq!(changed.entry.line, None);
    for line in [china(), default_line()] {
        let answer = changed.zone.lookup(line, &name(CHALLENGE), RecordType::TXT);
        assert_eq!(texts(&answer), vec!["Token-1"], "{line:?}");
        let soa = changed
            .zone
            .lookup(line, &name("example.com."), RecordType::SOA);
        assert!(texts(&soa)[0].contains(" 2026120702 "), "{soa:?}");
        let nx = changed
            .zone
            .lookup(line, &name("nope.example.com."), RecordType::A);
        assert!(nx.authority[0].data.to_string().contains(" 2026120702 "));
    }
    // The line's overlay still replaces what it replaced.
    let www = changed
        .zone
        .lookup(china(), &name("www.example.com."), RecordType::A);
    assert_eq!(texts(&www), vec!["203.0.113.10"]);
    // The zone it came from is untouched.
    assert_eq!(
        zone.lookup(default_line(), &name(CHALLENGE), RecordType::TXT)
            .rcode,
        AnswerCode::NxDomain
    );
}

#[test]
fn the_same_add_again_changes_nothing() {
    let zone = zone();
    let once = request(vec![], vec![add(CHALLENGE, txt("t"))]);
    let changed = run(&zone, &[acme()], &once)
        .expect("noerror")
        .expect("changed");
    let again = run(&changed.zone, &[acme()], &once).expect("noerror");
    assert!(again.is_none());
}

#[test]
fn the_policy_refuses_names_types_and_counts_it_does_not_grant() {
    let zone = zone();
    let refused = |updates: Vec<Record>| run(&zone, &[acme()], &request(vec![], updates)).err();
    assert_eq!(
        refused(vec![add("www.example.com.", txt("x"))]),
        Some(ResponseCode::Refused)
    );
    assert_eq!(
        refused(vec![add(CHALLENGE, a(1))]),
        Some(ResponseCode::Refused)
    );
    // One update RR not granted refuses the whole message.
    assert_eq!(
        refused(vec![
            add(CHALLENGE, txt("ok")),
            add("www.example.com.", txt("x"))
        ]),
        Some(ResponseCode::Refused)
    );
    // At most two TXT records at one name.
    let three = vec![
        add(CHALLENGE, txt("1")),
        add(CHALLENGE, txt("2")),
        add(CHALLENGE, txt("3")),
    ];
    assert_eq!(refused(three), Some(ResponseCode::Refused));
    let two = vec![
        add(CHALLENGE, txt("1")),
        add("_acme-challenge.www.example.com.", txt("2")),
        add(CHALLENGE, txt("3")),
    ];
    assert_eq!(refused(two), None);
    // No grants: refused.
    assert_eq!(
        run(&zone, &[], &request(vec![], vec![add(CHALLENGE, txt("1"))])).err(),
        Some(ResponseCode::Refused)
    );
}

#[test]
fn default_types_leave_soa_and_ns_alone() {
    let zone = zone();
    let everything = grant(&["*"], &[], None, None);
    let ns = add(
        "sub.example.com.",
        RData::NS(hickory_proto::rr::rdata::NS(name("ns.other."))),
    );
    assert_eq!(
        run(
            &zone,
            std::slice::from_ref(&everything),
            &request(vec![], vec![ns])
        )
        .err(),
        Some(ResponseCode::Refused)
    );
    let soa = add(
        "example.com.",
        RData::SOA(SOA::new(
            name("ns1.example.com."),
            name("host.example.com."),
            2026120800,
            2,
            3,
            4,
            5,
        )),
    );
    assert_eq!(
        run(
            &zone,
            std::slice::from_ref(&everything),
            &request(vec![], vec![soa.clone()])
        )
        .err(),
        Some(ResponseCode::Refused)
    );
    // A grant that names SOA may set a newer serial, which the zone then keeps.
    let soa_grant = grant(&["@"], &[RecordType::SOA], None, None);
    let changed = run(&zone, &[soa_grant], &request(vec![], vec![soa]))
        .expect("noerror")
        .expect("changed");
    assert_eq!(changed.zone.serial(), 2026120800);
}

#[test]
fn prerequisites_answer_their_rcodes_and_stop_the_update() {
    let zone = zone();
    let everything = grant(&["*"], &[], None, None);
    let cases = [
        (
            rr(
                "nope.example.com.",
                DNSClass::ANY,
                0,
                RData::Update0(RecordType::ANY),
            ),
            ResponseCode::NXDomain,
        ),
        (
            rr(
                "www.example.com.",
                DNSClass::NONE,
                0,
                RData::Update0(RecordType::ANY),
            ),
            ResponseCode::YXDomain,
        ),
        (
            rr(
                "www.example.com.",
                DNSClass::ANY,
                0,
                RData::Update0(RecordType::TXT),
            ),
            ResponseCode::NXRRSet,
        ),
        (
            rr(
                "www.example.com.",
                DNSClass::NONE,
                0,
                RData::Update0(RecordType::A),
            ),
            ResponseCode::YXRRSet,
        ),
        (
            rr("www.example.com.", DNSClass::IN, 0, a(99)),
            ResponseCode::NXRRSet,
        ),
        (
            rr(
                "www.example.org.",
                DNSClass::ANY,
                0,
                RData::Update0(RecordType::A),
            ),
            ResponseCode::NotZone,
        ),
        (
            rr(
                "www.example.com.",
                DNSClass::ANY,
                5,
                RData::Update0(RecordType::A),
            ),
            ResponseCode::FormErr,
        ),
    ];
    for (prerequisite, rcode) in cases {
        let r = request(
            vec![prerequisite.clone()],
            vec![add("new.example.com.", a(7))],
        );
        assert_eq!(
            run(&zone, std::slice::from_ref(&everything), &r).err(),
            Some(rcode),
            "{prerequisite:?}"
        );
    }
    let met = request(
        vec![
            rr("www.example.com.", DNSClass::IN, 0, a(10)),
            rr(
                "new.example.com.",
                DNSClass::NONE,
                0,
                RData::Update0(RecordType::ANY),
            ),
        ],
        vec![add("new.example.com.", a(7))],
    );
    assert!(run(&zone, &[everything], &met).expect("noerror").is_some());
}

#[test]
fn malformed_updates_are_formerr_or_notzone() {
    let zone = zone();
    let everything = grant(&["*"], &[], None, None);
    let outside = request(vec![], vec![add("www.example.org.", a(1))]);
    assert_eq!(
        run(&zone, std::slice::from_ref(&everything), &outside).err(),
        Some(ResponseCode::NotZone)
    );
    let ttl_on_delete = request(
        vec![],
        vec![rr(
            "www.example.com.",
            DNSClass::ANY,
            9,
            RData::Update0(RecordType::A),
        )],
    );
    assert_eq!(
        run(&zone, &[everything], &ttl_on_delete).err(),
        Some(ResponseCode::FormErr)
    );
}

#[test]
fn a_grant_for_a_line_writes_that_lines_overlay_only() {
    let zone = zone();
    let china_grant = grant(&["www"], &[RecordType::A], None, Some(china()));
    let r = request(
        vec![],
        vec![add(
            "www.example.com.",
            RData::A(A(Ipv4Addr::new(203, 0, 113, 11))),
        )],
    );
    let changed = run(&zone, std::slice::from_ref(&china_grant), &r)
        .expect("noerror")
        .expect("changed");
    assert_eq!(changed.entry.line.as_deref(), Some("china"));
    let china_www = changed
        .zone
        .lookup(china(), &name("www.example.com."), RecordType::A);
    assert_eq!(texts(&china_www), vec!["203.0.113.10", "203.0.113.11"]);
    let default_www = changed
        .zone
        .lookup(default_line(), &name("www.example.com."), RecordType::A);
    assert_eq!(texts(&default_www), vec!["192.0.2.10"]);
    assert_eq!(
        changed.zone.serial(),
        2026120702,
        "one serial for every line"
    );
    // An update the line's grant does not cover falls to no layer.
    assert_eq!(
        run(
            &zone,
            &[china_grant],
            &request(vec![], vec![add(CHALLENGE, txt("t"))])
        )
        .err(),
        Some(ResponseCode::Refused)
    );
}

#[test]
fn a_base_update_under_a_line_overlay_is_hidden_on_that_line() {
    let zone = zone();
    let everything = grant(&["*"], &[], None, None);
    let r = request(vec![], vec![add("www.example.com.", a(11))]);
    let changed = run(&zone, &[everything], &r)
        .expect("noerror")
        .expect("changed");
    let default_www = changed
        .zone
        .lookup(default_line(), &name("www.example.com."), RecordType::A);
    assert_eq!(texts(&default_www), vec!["192.0.2.10", "192.0.2.11"]);
    let china_www = changed
        .zone
        .lookup(china(), &name("www.example.com."), RecordType::A);
    assert_eq!(texts(&china_www), vec!["203.0.113.10"]);
}

#[test]
fn deleting_a_challenge_makes_the_name_go_away() {
    let zone = zone();
    let added = run(
        &zone,
        &[acme()],
        &request(
            vec![],
            vec![add(CHALLENGE, txt("a")), add(CHALLENGE, txt("b"))],
        ),
    )
    .expect("noerror")
    .expect("changed");
    // certbot's cleanup: delete its own record (class NONE).
    let one = request(vec![], vec![rr(CHALLENGE, DNSClass::NONE, 0, txt("a"))]);
    let left = run(&added.zone, &[acme()], &one)
        .expect("noerror")
        .expect("changed");
    assert_eq!(
        texts(&left.zone.lookup(china(), &name(CHALLENGE), RecordType::TXT)),
        vec!["b"]
    );
    // lego's: the whole RRset (class ANY), then add.
    let lego = request(
        vec![],
        vec![
            rr(CHALLENGE, DNSClass::ANY, 0, RData::Update0(RecordType::TXT)),
            add(CHALLENGE, txt("c")),
        ],
    );
    let replaced = run(&left.zone, &[acme()], &lego)
        .expect("noerror")
        .expect("changed");
    assert_eq!(
        texts(
            &replaced
                .zone
                .lookup(china(), &name(CHALLENGE), RecordType::TXT)
        ),
        vec!["c"]
    );
    let gone = request(vec![], vec![rr(CHALLENGE, DNSClass::NONE, 0, txt("c"))]);
    let gone = run(&replaced.zone, &[acme()], &gone)
        .expect("noerror")
        .expect("changed");
    assert_eq!(
        gone.zone
            .lookup(default_line(), &name(CHALLENGE), RecordType::TXT)
            .rcode,
        AnswerCode::NxDomain
    );
    assert_eq!(gone.zone.serial(), 2026120705);
}

#[test]
fn a_journal_replays_on_the_file_and_the_serial_never_goes_back() {
    let zone = zone();
    let mut entries = Vec::new();
    let mut current = zone.clone();
    for (i, value) in ["one", "two"].into_iter().enumerate() {
        let r = request(
            vec![],
            vec![add(
                &format!("_acme-challenge.h{i}.example.com."),
                txt(value),
            )],
        );
        let changed = run(&current, &[acme()], &r)
            .expect("noerror")
            .expect("changed");
        entries.push(changed.entry);
        current = changed.zone;
    }
    let china_grant = grant(&["www"], &[RecordType::A], None, Some(china()));
    let r = request(vec![], vec![add("www.example.com.", a(77))]);
    let changed = run(&current, &[china_grant], &r)
        .expect("noerror")
        .expect("changed");
    entries.push(changed.entry);
    current = changed.zone;

    let replayed = replay(&zone, &entries, &lines(), Path::new("j")).expect("replays");
    assert_eq!(replayed.serial(), current.serial());
    for (line, qname, qtype) in [
        (
            default_line(),
            "_acme-challenge.h0.example.com.",
            RecordType::TXT,
        ),
        (china(), "_acme-challenge.h1.example.com.", RecordType::TXT),
        (china(), "www.example.com.", RecordType::A),
        (default_line(), "www.example.com.", RecordType::A),
    ] {
        let name = name(qname);
        assert_eq!(
            texts(&replayed.lookup(line, &name, qtype)),
            texts(&current.lookup(line, &name, qtype)),
            "{qname}"
        );
    }
    // A file with a newer serial keeps it; the journal's changes are still applied.
    let newer = Zone::from_text(
        Path::new("example.com.zone"),
        &BASE.replace("2026120701", "2026121000"),
        Some(CHINA),
    )
    .expect("zone");
    let replayed = replay(&newer, &entries, &lines(), Path::new("j")).expect("replays");
    assert_eq!(replayed.serial(), 2026121000);
    assert_eq!(
        replayed
            .lookup(
                default_line(),
                &name("_acme-challenge.h0.example.com."),
                RecordType::TXT
            )
            .answers
            .len(),
        1
    );
    // A line the configuration no longer declares.
    let e = replay(
        &zone,
        &entries,
        &LineSet::new(["europe"]).expect("lines"),
        Path::new("/var/j"),
    )
    .expect_err("unknown line");
    assert_eq!(
        e.to_string(),
        "/var/j: an entry writes the overlay of line `china`, which is not declared"
    );
}

#[test]
fn a_flushed_zone_file_loads_back_the_same() {
    let zone = zone();
    let mut m = request(
        vec![],
        vec![
            add(CHALLENGE, txt("quoted \"value\" with spaces")),
            add(
                "mx.example.com.",
                RData::MX(hickory_proto::rr::rdata::MX::new(
                    10,
                    name("mail.example.com."),
                )),
            ),
            add(
                "split.example.com.",
                RData::TXT(TXT::new(vec!["a\\b;c".into(), "second".into()])),
            ),
            add(
                "_sip._tcp.example.com.",
                RData::SRV(hickory_proto::rr::rdata::SRV::new(
                    1,
                    2,
                    5060,
                    name("sip.example.com."),
                )),
            ),
            add(
                "example.com.",
                RData::CAA(hickory_proto::rr::rdata::CAA::new_issue(
                    false,
                    Some(name("letsencrypt.org.")),
                    vec![],
                )),
            ),
        ],
    );
    m.id = 2;
    let changed = run(&zone, &[grant(&["*"], &[], None, None)], &m)
        .expect("noerror")
        .expect("changed");
    let text = flush::render(
        changed.zone.origin(),
        changed.zone.serial(),
        crate::zone::Layer::Base,
        changed.zone.layer_rrsets(crate::zone::Layer::Base),
    );
    let overlay = flush::render(
        changed.zone.origin(),
        changed.zone.serial(),
        crate::zone::Layer::Overlay(china()),
        changed
            .zone
            .layer_rrsets(crate::zone::Layer::Overlay(china())),
    );
    let loaded =
        Zone::from_text(Path::new("example.com.zone"), &text, Some(&overlay)).expect("loads back");
    assert_eq!(loaded.serial(), changed.zone.serial());
    for (line, qname, qtype) in [
        (default_line(), CHALLENGE, RecordType::TXT),
        (default_line(), "mx.example.com.", RecordType::MX),
        (default_line(), "split.example.com.", RecordType::TXT),
        (default_line(), "_sip._tcp.example.com.", RecordType::SRV),
        (default_line(), "example.com.", RecordType::CAA),
        (china(), "www.example.com.", RecordType::A),
        (default_line(), "www.example.com.", RecordType::A),
        (default_line(), "example.com.", RecordType::NS),
    ] {
        let name = name(qname);
        assert_eq!(
            texts(&loaded.lookup(line, &name, qtype)),
            texts(&changed.zone.lookup(line, &name, qtype)),
            "{qname}"
        );
    }
    assert!(
        text.starts_with("; example.com. base data, serial 2026120702"),
        "{text}"
    );
}

/// A request of `updates` as read, however large (one message holds at most 65535 bytes:
/// these are what several messages add up to).
fn read_request(updates: Vec<Record>) -> Request {
    Request {
        id: 1,
        zone: name("example.com."),
        prerequisites: vec![],
        updates,
        edns: false,
    }
}

#[test]
fn an_rrset_the_server_could_not_send_is_refused_and_nothing_changes() {
    let zone = zone();
    let grant = grant(&["*"], &[RecordType::TXT], None, None);
    let long = |i: usize| {
        add(
            "big.example.com.",
            txt(&format!("{i:03}{}", "x".repeat(250))),
        )
    };
    // 200 strings of 253 bytes fit in one response; 60 more do not.
    let fits = run(
        &zone,
        std::slice::from_ref(&grant),
        &read_request((0..200).map(long).collect()),
    )
    .expect("noerror")
    .expect("changed");
    let more = read_request((200..260).map(long).collect());
    assert_eq!(
        run(&fits.zone, std::slice::from_ref(&grant), &more).err(),
        Some(ResponseCode::Refused)
    );
    let answer = fits
        .zone
        .lookup(default_line(), &name("big.example.com."), RecordType::TXT);
    assert_eq!(answer.answers.len(), 200);
    // Records that other updates leave in place do not make an unrelated update fail.
    let small = read_request(vec![add("small.example.com.", txt("ok"))]);
    assert!(run(&fits.zone, std::slice::from_ref(&grant), &small).is_ok_and(|c| c.is_some()));

    // A record that cannot be encoded at all (a character-string over 255 bytes, which no
    // zone file may hold either) is the request's fault.
    let unencodable = read_request(vec![add("bad.example.com.", txt(&"y".repeat(300)))]);
    assert_eq!(
        run(&zone, &[grant], &unencodable).err(),
        Some(ResponseCode::FormErr)
    );
}
