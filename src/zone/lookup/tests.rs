//! The lookup's behaviour, section by section, TTLs included.

use std::path::Path;

use hickory_proto::rr::{Name, Record, RecordType};

use super::MAX_CHAIN;
use crate::lines::LineId;
use crate::zone::file::Source;
use crate::zone::rdata;
use crate::zone::{Answer, AnswerCode, Zone};

const BASE: &str = r#"
$ORIGIN example.com.
$TTL 300
@       3600 SOA ns1 hostmaster ( 1 7200 900 1209600 60 )
@       NS    ns1
@       NS    ns2.example.net.
@       MX    10 mail
@       MX    20 mx.example.net.
@       MX    30 host.sub
@       A     192.0.2.1
ns1     A     192.0.2.53
ns1     AAAA  2001:db8::53
mail    A     192.0.2.25
mail    AAAA  2001:db8::25
www     A     192.0.2.10
www     AAAA  2001:db8::10
a       CNAME b
b   120 CNAME c
c   60  A     192.0.2.3
dangling CNAME nowhere
out     CNAME target.example.net.
loop1   CNAME loop2
loop2   CNAME LOOP1
*.wild  A     192.0.2.30
*.wild  TXT   "wild"
exists.wild A 192.0.2.31
z.y.wild A    192.0.2.32
*.cw    CNAME www
viawild CNAME host.wild
a.b.ent A     192.0.2.40
sub     NS    ns.sub
sub     NS    ns.example.net.
sub     NS    ns1
ns.sub  A     192.0.2.99
ns.sub  AAAA  2001:db8::99
intosub CNAME host.sub
_sip._tcp SRV 0 5 5060 sip
_sip._tcp SRV 0 5 5060 sip.example.net.
sip     A     192.0.2.50
"#;

const CHINA: LineId = LineId::new(0).expect("a line id");
const DEFAULT: LineId = LineId::new(1).expect("a line id");

fn zone_with(base: &str, overlay: Option<&str>) -> Zone {
    let overlays = overlay
        .map(|text| {
            vec![(
                CHINA,
                Source {
                    path: Path::new("china.zone"),
                    text,
                },
            )]
        })
        .unwrap_or_default();
    Zone::build(
        None,
        Source {
            path: Path::new("base.zone"),
            text: base,
        },
        overlays,
        2,
    )
    .expect("zone loads")
}

fn zone() -> Zone {
    zone_with(BASE, None)
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn q(zone: &Zone, qname: &str, qtype: RecordType) -> Answer {
    zone.lookup(DEFAULT, &name(qname), qtype)
}

fn text(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            // hickory has no DNAME type: the loader keeps its data opaque.
            let data = match rdata::dname_target(&r.data) {
                Some(target) => target.to_string(),
                None => r.data.to_string(),
            };
            format!("{} {} {} {data}", r.name, r.ttl, r.record_type())
        })
        .collect()
}

/// Asserts every section of an answer.
#[track_caller]
fn check(
    answer: &Answer,
    rcode: AnswerCode,
    aa: bool,
    answers: &[&str],
    authority: &[&str],
    additional: &[&str],
) {
    assert_eq!(answer.rcode, rcode, "rcode of {answer:#?}");
    assert_eq!(answer.authoritative, aa, "AA of {answer:#?}");
    assert_eq!(text(&answer.answers), answers, "answer section");
    assert_eq!(text(&answer.authority), authority, "authority section");
    assert_eq!(text(&answer.additional), additional, "additional section");
}

const SOA: &str =
    "example.com. 60 SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60";

use AnswerCode::{NoError, NxDomain};

#[test]
fn exact_match() {
    let z = zone();
    check(
        &q(&z, "WWW.example.com.", RecordType::AAAA),
        NoError,
        true,
        &["www.example.com. 300 AAAA 2001:db8::10"],
        &[],
        &[],
    );
    check(
        &q(&z, "example.com.", RecordType::SOA),
        NoError,
        true,
        &["example.com. 3600 SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60"],
        &[],
        &[],
    );
}

#[test]
fn apex_ns_gets_in_zone_addresses() {
    check(
        &q(&zone(), "example.com.", RecordType::NS),
        NoError,
        true,
        &[
            "example.com. 300 NS ns1.example.com.",
            "example.com. 300 NS ns2.example.net.",
        ],
        &[],
        &[
            "ns1.example.com. 300 A 192.0.2.53",
            "ns1.example.com. 300 AAAA 2001:db8::53",
        ],
    );
}

#[test]
fn mx_additional_skips_out_of_zone_targets_and_names_without_glue() {
    check(
        &q(&zone(), "example.com.", RecordType::MX),
        NoError,
        true,
        &[
            "example.com. 300 MX 10 mail.example.com.",
            "example.com. 300 MX 20 mx.example.net.",
            "example.com. 300 MX 30 host.sub.example.com.",
        ],
        &[],
        &[
            "mail.example.com. 300 A 192.0.2.25",
            "mail.example.com. 300 AAAA 2001:db8::25",
        ],
    );
}

#[test]
fn srv_additional() {
    check(
        &q(&zone(), "_sip._tcp.example.com.", RecordType::SRV),
        NoError,
        true,
        &[
            "_sip._tcp.example.com. 300 SRV 0 5 5060 sip.example.com.",
            "_sip._tcp.example.com. 300 SRV 0 5 5060 sip.example.net.",
        ],
        &[],
        &["sip.example.com. 300 A 192.0.2.50"],
    );
}

#[test]
fn cname_chain_is_followed_in_zone() {
    check(
        &q(&zone(), "a.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "a.example.com. 300 CNAME b.example.com.",
            "b.example.com. 120 CNAME c.example.com.",
            "c.example.com. 60 A 192.0.2.3",
        ],
        &[],
        &[],
    );
}

#[test]
fn cname_query_is_not_followed() {
    check(
        &q(&zone(), "a.example.com.", RecordType::CNAME),
        NoError,
        true,
        &["a.example.com. 300 CNAME b.example.com."],
        &[],
        &[],
    );
}

#[test]
fn cname_chain_to_nodata_and_to_nxdomain() {
    let z = zone();
    check(
        &q(&z, "a.example.com.", RecordType::MX),
        NoError,
        true,
        &[
            "a.example.com. 300 CNAME b.example.com.",
            "b.example.com. 120 CNAME c.example.com.",
        ],
        &[SOA],
        &[],
    );
    // RFC 6604: the rcode is the final name's.
    check(
        &q(&z, "dangling.example.com.", RecordType::A),
        NxDomain,
        true,
        &["dangling.example.com. 300 CNAME nowhere.example.com."],
        &[SOA],
        &[],
    );
}

#[test]
fn cname_chain_stops_leaving_the_zone() {
    check(
        &q(&zone(), "out.example.com.", RecordType::A),
        NoError,
        true,
        &["out.example.com. 300 CNAME target.example.net."],
        &[],
        &[],
    );
}

#[test]
fn cname_loop_stops() {
    // hickory's text parser reads names as IDNA, which folds them to lower case.
    check(
        &q(&zone(), "loop1.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "loop1.example.com. 300 CNAME loop2.example.com.",
            "loop2.example.com. 300 CNAME loop1.example.com.",
        ],
        &[],
        &[],
    );
}

#[test]
fn cname_chain_stops_after_16() {
    let mut text = BASE.to_string();
    for i in 0..20 {
        text.push_str(&format!("c{i} CNAME c{}\n", i + 1));
    }
    text.push_str("c20 A 192.0.2.20\n");
    let z = zone_with(&text, None);
    let answer = q(&z, "c0.example.com.", RecordType::A);
    assert_eq!(answer.rcode, NoError);
    assert_eq!(answer.answers.len(), 16);
    assert!(answer.authority.is_empty());
    assert!(
        answer
            .answers
            .iter()
            .all(|r| r.record_type() == RecordType::CNAME)
    );
    let answer = q(&z, "c5.example.com.", RecordType::A);
    assert_eq!(answer.answers.len(), 16);
    assert_eq!(
        text_of_last(&answer),
        "c20.example.com. 300 A 192.0.2.20".to_string()
    );
}

fn text_of_last(answer: &Answer) -> String {
    text(&answer.answers).pop().unwrap_or_default()
}

#[test]
fn wildcard_synthesis_takes_the_query_name() {
    let z = zone();
    check(
        &q(&z, "Host.wild.example.com.", RecordType::A),
        NoError,
        true,
        &["Host.wild.example.com. 300 A 192.0.2.30"],
        &[],
        &[],
    );
    // Deeper names are covered too; other types give NODATA from the wildcard.
    check(
        &q(&z, "a.b.wild.example.com.", RecordType::TXT),
        NoError,
        true,
        &["a.b.wild.example.com. 300 TXT wild"],
        &[],
        &[],
    );
    check(
        &q(&z, "host.wild.example.com.", RecordType::MX),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
    // Each answer says which wildcard it came from; a name that exists says none.
    for (qname, qtype) in [
        ("Host.wild.example.com.", RecordType::A),
        ("a.b.wild.example.com.", RecordType::TXT),
        ("host.wild.example.com.", RecordType::MX),
    ] {
        let wildcard = q(&z, qname, qtype).wildcard.map(|w| w.to_string());
        assert_eq!(wildcard.as_deref(), Some("*.wild.example.com."), "{qname}");
    }
    assert_eq!(q(&z, "www.example.com.", RecordType::A).wildcard, None);
    // A chain from a name that exists to one under the wildcard is the name's own answer.
    assert_eq!(q(&z, "viawild.example.com.", RecordType::A).wildcard, None);
}

#[test]
fn wildcard_cname_and_chain_through_a_wildcard() {
    let z = zone();
    check(
        &q(&z, "x.cw.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "x.cw.example.com. 300 CNAME www.example.com.",
            "www.example.com. 300 A 192.0.2.10",
        ],
        &[],
        &[],
    );
    check(
        &q(&z, "viawild.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "viawild.example.com. 300 CNAME host.wild.example.com.",
            "host.wild.example.com. 300 A 192.0.2.30",
        ],
        &[],
        &[],
    );
}

#[test]
fn wildcard_blocked_by_an_existing_name() {
    let z = zone();
    check(
        &q(&z, "exists.wild.example.com.", RecordType::A),
        NoError,
        true,
        &["exists.wild.example.com. 300 A 192.0.2.31"],
        &[],
        &[],
    );
    check(
        &q(&z, "exists.wild.example.com.", RecordType::TXT),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
    // The closest encloser of this name is exists.wild, which has no wildcard.
    check(
        &q(&z, "below.exists.wild.example.com.", RecordType::A),
        NxDomain,
        true,
        &[],
        &[SOA],
        &[],
    );
}

#[test]
fn wildcard_blocked_by_an_empty_non_terminal() {
    let z = zone();
    // y.wild exists (z.y.wild is below it), so *.wild does not cover it...
    check(
        &q(&z, "y.wild.example.com.", RecordType::A),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
    // ...nor names below it: their closest encloser is y.wild.
    check(
        &q(&z, "other.y.wild.example.com.", RecordType::A),
        NxDomain,
        true,
        &[],
        &[SOA],
        &[],
    );
}

#[test]
fn empty_non_terminal_is_nodata() {
    let z = zone();
    for ent in ["ent.example.com.", "b.ent.example.com."] {
        check(&q(&z, ent, RecordType::A), NoError, true, &[], &[SOA], &[]);
    }
    check(
        &q(&z, "c.b.ent.example.com.", RecordType::A),
        NxDomain,
        true,
        &[],
        &[SOA],
        &[],
    );
}

#[test]
fn negative_soa_ttl_is_the_smaller_of_ttl_and_minimum() {
    // SOA TTL 3600, MINIMUM 60: 60 (the SOA constant).
    check(
        &q(&zone(), "nope.example.com.", RecordType::A),
        NxDomain,
        true,
        &[],
        &[SOA],
        &[],
    );
    // SOA TTL 30, MINIMUM 60: 30.
    let z = zone_with(&BASE.replace("@       3600 SOA", "@       30 SOA"), None);
    check(
        &q(&z, "nope.example.com.", RecordType::A),
        NxDomain,
        true,
        &[],
        &["example.com. 30 SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60"],
        &[],
    );
    check(
        &q(&z, "www.example.com.", RecordType::TXT),
        NoError,
        true,
        &[],
        &["example.com. 30 SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60"],
        &[],
    );
}

const REFERRAL_NS: [&str; 3] = [
    "sub.example.com. 300 NS ns.sub.example.com.",
    "sub.example.com. 300 NS ns.example.net.",
    "sub.example.com. 300 NS ns1.example.com.",
];
const REFERRAL_GLUE: [&str; 4] = [
    "ns.sub.example.com. 300 A 192.0.2.99",
    "ns.sub.example.com. 300 AAAA 2001:db8::99",
    "ns1.example.com. 300 A 192.0.2.53",
    "ns1.example.com. 300 AAAA 2001:db8::53",
];

#[test]
fn referral_with_glue() {
    let z = zone();
    for (qname, qtype) in [
        ("host.sub.example.com.", RecordType::A),
        ("sub.example.com.", RecordType::A),
        ("sub.example.com.", RecordType::NS),
        ("deep.host.sub.example.com.", RecordType::AAAA),
        // Glue is below the cut: never served as an answer.
        ("ns.sub.example.com.", RecordType::A),
    ] {
        check(
            &q(&z, qname, qtype),
            NoError,
            false,
            &[],
            &REFERRAL_NS,
            &REFERRAL_GLUE,
        );
    }
}

#[test]
fn ds_at_the_cut_is_answered_by_the_parent() {
    let z = zone();
    check(
        &q(&z, "sub.example.com.", RecordType::DS),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
    // Below the cut, DS is the child's like anything else.
    check(
        &q(&z, "x.sub.example.com.", RecordType::DS),
        NoError,
        false,
        &[],
        &REFERRAL_NS,
        &REFERRAL_GLUE,
    );
}

#[test]
fn cname_into_a_delegation_continues_into_the_referral() {
    // RFC 1034 4.3.2 step 3b; AA for the CNAME, the first owner name (RFC 1035 4.1.1).
    let z = zone();
    for qtype in [RecordType::A, RecordType::MX] {
        check(
            &q(&z, "intosub.example.com.", qtype),
            NoError,
            true,
            &["intosub.example.com. 300 CNAME host.sub.example.com."],
            &REFERRAL_NS,
            &REFERRAL_GLUE,
        );
    }
    // A chain that reaches the cut itself asking for DS gets the parent's side of it.
    let z = zone_with(&format!("{BASE}tosub CNAME sub\n"), None);
    check(
        &q(&z, "tosub.example.com.", RecordType::DS),
        NoError,
        true,
        &["tosub.example.com. 300 CNAME sub.example.com."],
        &[SOA],
        &[],
    );
    check(
        &q(&z, "tosub.example.com.", RecordType::NS),
        NoError,
        true,
        &["tosub.example.com. 300 CNAME sub.example.com."],
        &REFERRAL_NS,
        &REFERRAL_GLUE,
    );
}

const CNAME_A: &str = "a.example.com. 300 CNAME b.example.com.";

#[test]
fn any_rrsig_and_nsec_at_a_cname_are_answered_at_the_name() {
    let z = zone();
    // ANY matches the CNAME itself (RFC 1034 3.6.2): not followed, whatever the target.
    check(
        &q(&z, "a.example.com.", RecordType::ANY),
        NoError,
        true,
        &[CNAME_A],
        &[],
        &[],
    );
    check(
        &q(&z, "dangling.example.com.", RecordType::ANY),
        NoError,
        true,
        &["dangling.example.com. 300 CNAME nowhere.example.com."],
        &[],
        &[],
    );
    // RRSIG and NSEC stand beside a CNAME (RFC 4035 2.5): NODATA at the name when absent.
    for qtype in [RecordType::RRSIG, RecordType::NSEC] {
        check(
            &q(&z, "a.example.com.", qtype),
            NoError,
            true,
            &[],
            &[SOA],
            &[],
        );
        check(
            &q(&z, "dangling.example.com.", qtype),
            NoError,
            true,
            &[],
            &[SOA],
            &[],
        );
    }
    // Other types still follow the chain.
    assert_eq!(
        q(&z, "dangling.example.com.", RecordType::TXT).rcode,
        NxDomain
    );
}

/// Targets below a cut and under a wildcard, for the additional section.
const GLUED: &str = "glued MX 10 ns.sub
glued MX 20 host.sub
wmx MX 10 host.wild
wmx MX 20 exists.wild
wsrv SRV 0 5 5060 x.y.wild
wsrv SRV 0 5 5060 q.sub
";

#[test]
fn additional_holds_glue_and_wildcard_addresses_for_mx_and_srv() {
    let z = zone_with(&format!("{BASE}{GLUED}"), None);
    // The glue below the cut, as for a name server; host.sub has none.
    check(
        &q(&z, "glued.example.com.", RecordType::MX),
        NoError,
        true,
        &[
            "glued.example.com. 300 MX 10 ns.sub.example.com.",
            "glued.example.com. 300 MX 20 host.sub.example.com.",
        ],
        &[],
        &[
            "ns.sub.example.com. 300 A 192.0.2.99",
            "ns.sub.example.com. 300 AAAA 2001:db8::99",
        ],
    );
    // Synthesized from *.wild under the target's name; an existing name is its own.
    check(
        &q(&z, "wmx.example.com.", RecordType::MX),
        NoError,
        true,
        &[
            "wmx.example.com. 300 MX 10 host.wild.example.com.",
            "wmx.example.com. 300 MX 20 exists.wild.example.com.",
        ],
        &[],
        &[
            "host.wild.example.com. 300 A 192.0.2.30",
            "exists.wild.example.com. 300 A 192.0.2.31",
        ],
    );
    // x.y.wild is below the existing z.y.wild's parent y.wild, an empty non-terminal: no
    // wildcard covers it (RFC 4592 2.2.2); a name below a cut is the child's to deny.
    check(
        &q(&z, "wsrv.example.com.", RecordType::SRV),
        NoError,
        true,
        &[
            "wsrv.example.com. 300 SRV 0 5 5060 x.y.wild.example.com.",
            "wsrv.example.com. 300 SRV 0 5 5060 q.sub.example.com.",
        ],
        &[],
        &[],
    );
}

#[test]
fn any_is_minimal() {
    let z = zone();
    // The apex has NS(2) SOA(6) MX(15) TXT... and A(1): A is the lowest type.
    check(
        &q(&z, "example.com.", RecordType::ANY),
        NoError,
        true,
        &["example.com. 300 A 192.0.2.1"],
        &[],
        &[],
    );
    check(
        &q(&z, "mail.example.com.", RecordType::ANY),
        NoError,
        true,
        &["mail.example.com. 300 A 192.0.2.25"],
        &[],
        &[],
    );
    check(
        &q(&z, "ent.example.com.", RecordType::ANY),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
    check(
        &q(&z, "nope.example.com.", RecordType::ANY),
        NxDomain,
        true,
        &[],
        &[SOA],
        &[],
    );
}

#[test]
fn name_outside_the_zone_is_not_answered() {
    let answer = q(&zone(), "www.example.net.", RecordType::A);
    check(&answer, NoError, false, &[], &[], &[]);
}

// Overlays.

const OVERLAY: &str = r#"
$TTL 60
www     A     203.0.113.10
mail    CNAME www
a       A     203.0.113.3
cdn     A     203.0.113.80
*.geo   A     203.0.113.90
sub     CNAME www
"#;

fn overlaid() -> Zone {
    zone_with(BASE, Some(OVERLAY))
}

fn in_china(zone: &Zone, qname: &str, qtype: RecordType) -> Answer {
    zone.lookup(CHINA, &name(qname), qtype)
}

#[test]
fn overlay_rrset_replaces_only_its_type() {
    let z = overlaid();
    check(
        &in_china(&z, "www.example.com.", RecordType::A),
        NoError,
        true,
        &["www.example.com. 60 A 203.0.113.10"],
        &[],
        &[],
    );
    check(
        &in_china(&z, "www.example.com.", RecordType::AAAA),
        NoError,
        true,
        &["www.example.com. 300 AAAA 2001:db8::10"],
        &[],
        &[],
    );
    // The default line still sees the base.
    check(
        &q(&z, "www.example.com.", RecordType::A),
        NoError,
        true,
        &["www.example.com. 300 A 192.0.2.10"],
        &[],
        &[],
    );
}

#[test]
fn overlay_cname_replaces_everything_at_its_name() {
    let z = overlaid();
    check(
        &in_china(&z, "mail.example.com.", RecordType::AAAA),
        NoError,
        true,
        &[
            "mail.example.com. 60 CNAME www.example.com.",
            "www.example.com. 300 AAAA 2001:db8::10",
        ],
        &[],
        &[],
    );
    // A CNAME over a delegation removes the delegation in that view.
    check(
        &in_china(&z, "sub.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "sub.example.com. 60 CNAME www.example.com.",
            "www.example.com. 60 A 203.0.113.10",
        ],
        &[],
        &[],
    );
}

#[test]
fn overlay_data_replaces_a_base_cname() {
    let z = overlaid();
    check(
        &in_china(&z, "a.example.com.", RecordType::A),
        NoError,
        true,
        &["a.example.com. 60 A 203.0.113.3"],
        &[],
        &[],
    );
    check(
        &in_china(&z, "a.example.com.", RecordType::CNAME),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
}

#[test]
fn overlay_adds_names_and_wildcards() {
    let z = overlaid();
    check(
        &in_china(&z, "cdn.example.com.", RecordType::A),
        NoError,
        true,
        &["cdn.example.com. 60 A 203.0.113.80"],
        &[],
        &[],
    );
    check(
        &q(&z, "cdn.example.com.", RecordType::A),
        NxDomain,
        true,
        &[],
        &[SOA],
        &[],
    );
    check(
        &in_china(&z, "x.geo.example.com.", RecordType::A),
        NoError,
        true,
        &["x.geo.example.com. 60 A 203.0.113.90"],
        &[],
        &[],
    );
    // geo is an empty non-terminal in the china view only.
    check(
        &in_china(&z, "geo.example.com.", RecordType::A),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
    check(
        &q(&z, "x.geo.example.com.", RecordType::A),
        NxDomain,
        true,
        &[],
        &[SOA],
        &[],
    );
}

#[test]
fn record_counts_per_line() {
    let z = overlaid();
    let base = q(&z, "example.com.", RecordType::A);
    assert!(base.authoritative);
    let counts = z.record_counts();
    assert_eq!(counts.len(), 2);
    let (china, default) = (counts[0].1, counts[1].1);
    assert_eq!(counts[0].0, CHINA);
    assert_eq!(counts[1].0, DEFAULT);
    // www A: 1 for 1. mail: A+AAAA become one CNAME (-1). a: CNAME becomes A (0).
    // cdn, *.geo: +2. sub: three NS become one CNAME (-2).
    assert_eq!(china, default - 1);
}

#[test]
fn varies_by_line() {
    let z = overlaid();
    assert!(z.has_overlays());
    let varies = |qname: &str, qtype| z.varies_by_line(&name(qname), qtype);
    assert!(varies("www.example.com.", RecordType::A));
    assert!(!varies("www.example.com.", RecordType::AAAA));
    assert!(varies("mail.example.com.", RecordType::AAAA));
    assert!(varies("cdn.example.com.", RecordType::A));
    assert!(varies("x.geo.example.com.", RecordType::TXT));
    assert!(varies("host.sub.example.com.", RecordType::A));
    // A chain ending at a name an overlay changed varies too.
    let z2 = zone_with(BASE, Some("$TTL 300\nc A 203.0.113.3\n"));
    assert!(z2.varies_by_line(&name("a.example.com."), RecordType::A));
    assert!(!z2.varies_by_line(&name("a.example.com."), RecordType::AAAA));
    // The same data with another TTL varies as well.
    let z3 = zone_with(BASE, Some("$TTL 30\nc A 192.0.2.3\n"));
    assert!(z3.varies_by_line(&name("c.example.com."), RecordType::A));
    assert!(!varies("ns1.example.com.", RecordType::A));
    assert!(!varies("nope.example.com.", RecordType::A));
    assert!(!varies("example.com.", RecordType::NS));
    // The china view's mail is a CNAME, so the MX answer loses its additional addresses.
    assert!(varies("example.com.", RecordType::MX));

    let plain = zone();
    assert!(!plain.has_overlays());
    assert!(!plain.varies_by_line(&name("www.example.com."), RecordType::A));
}

#[test]
fn lines_without_an_overlay_share_the_base() {
    let z = zone_with(BASE, None);
    assert_eq!(
        q(&z, "www.example.com.", RecordType::A),
        in_china(&z, "www.example.com.", RecordType::A)
    );
    // An unknown line id sees the base rather than panicking.
    let answer = z.lookup(
        LineId::new(200).expect("a line id"),
        &name("www.example.com."),
        RecordType::A,
    );
    assert_eq!(answer.answers.len(), 1);
}

// DNAME (RFC 6672).

/// Redirections for the DNAME tests, after [`BASE`].
fn dnames() -> String {
    let long = ["a".repeat(60), "a".repeat(60), "a".repeat(60)].join(".");
    format!(
        "dn   120 DNAME target
host.target   A     192.0.2.77
target        A     192.0.2.76
occluded.dn   A     192.0.2.78
dnout         DNAME example.net.
dnsub         DNAME sub
dnloop        DNAME dnloop2
dnloop2       DNAME dnloop
longdn        DNAME {long}
sub2          NS    ns.sub
below.sub     DNAME target
cut.dn        NS    ns.sub
"
    )
}

fn dname_zone() -> Zone {
    zone_with(&format!("{BASE}{}", dnames()), None)
}

const DN: &str = "dn.example.com. 120 DNAME target.example.com.";

#[test]
fn dname_synthesizes_a_cname_and_follows_it() {
    let z = dname_zone();
    // The DNAME, the CNAME synthesized with its TTL, then the target's data.
    check(
        &q(&z, "host.dn.example.com.", RecordType::A),
        NoError,
        true,
        &[
            DN,
            "host.dn.example.com. 120 CNAME host.target.example.com.",
            "host.target.example.com. 300 A 192.0.2.77",
        ],
        &[],
        &[],
    );
    // Names below the owner are occluded, existing or not, whatever the type (DNAME too).
    check(
        &q(&z, "occluded.dn.example.com.", RecordType::A),
        NxDomain,
        true,
        &[
            DN,
            "occluded.dn.example.com. 120 CNAME occluded.target.example.com.",
        ],
        &[SOA],
        &[],
    );
    check(
        &q(&z, "a.b.dn.example.com.", RecordType::DNAME),
        NxDomain,
        true,
        &[DN, "a.b.dn.example.com. 120 CNAME a.b.target.example.com."],
        &[SOA],
        &[],
    );
    // So is a cut below it.
    check(
        &q(&z, "x.cut.dn.example.com.", RecordType::A),
        NxDomain,
        true,
        &[
            DN,
            "x.cut.dn.example.com. 120 CNAME x.cut.target.example.com.",
        ],
        &[SOA],
        &[],
    );
}

#[test]
fn names_below_a_dname_get_no_additional_addresses() {
    let z = zone_with(&format!("{BASE}{}mxdn MX 10 occluded.dn\n", dnames()), None);
    check(
        &q(&z, "mxdn.example.com.", RecordType::MX),
        NoError,
        true,
        &["mxdn.example.com. 300 MX 10 occluded.dn.example.com."],
        &[],
        &[],
    );
}

#[test]
fn the_dname_owner_itself_is_not_redirected() {
    let z = dname_zone();
    check(
        &q(&z, "dn.example.com.", RecordType::DNAME),
        NoError,
        true,
        &[DN],
        &[],
        &[],
    );
    check(
        &q(&z, "dn.example.com.", RecordType::A),
        NoError,
        true,
        &[],
        &[SOA],
        &[],
    );
    check(
        &q(&z, "dn.example.com.", RecordType::ANY),
        NoError,
        true,
        &[DN],
        &[],
        &[],
    );
}

#[test]
fn dname_out_of_the_zone_into_a_cut_and_below_a_cut() {
    let z = dname_zone();
    check(
        &q(&z, "x.dnout.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "dnout.example.com. 300 DNAME example.net.",
            "x.dnout.example.com. 300 CNAME x.example.net.",
        ],
        &[],
        &[],
    );
    check(
        &q(&z, "host.dnsub.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "dnsub.example.com. 300 DNAME sub.example.com.",
            "host.dnsub.example.com. 300 CNAME host.sub.example.com.",
        ],
        &REFERRAL_NS,
        &REFERRAL_GLUE,
    );
    // A DNAME below a cut is the child's data: a referral.
    let referral = q(&z, "x.below.sub.example.com.", RecordType::A);
    assert!(!referral.authoritative && referral.answers.is_empty());
    assert_eq!(text(&referral.authority), REFERRAL_NS);
}

#[test]
fn dname_chains_stop_at_loops_and_too_long_names() {
    let z = dname_zone();
    check(
        &q(&z, "x.dnloop.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "dnloop.example.com. 300 DNAME dnloop2.example.com.",
            "x.dnloop.example.com. 300 CNAME x.dnloop2.example.com.",
            "dnloop2.example.com. 300 DNAME dnloop.example.com.",
            "x.dnloop2.example.com. 300 CNAME x.dnloop.example.com.",
        ],
        &[],
        &[],
    );
    // 61 + 3 * 61 + 13 = 257 bytes: too long (RFC 6672 2.2), the DNAME alone.
    let long = ["a".repeat(60), "a".repeat(60), "a".repeat(60)].join(".");
    let dname = format!("longdn.example.com. 300 DNAME {long}.example.com.");
    let too_long = format!("{}.longdn.example.com.", "b".repeat(60));
    check(
        &q(&z, &too_long, RecordType::A),
        AnswerCode::YxDomain,
        true,
        &[&dname],
        &[],
        &[],
    );
    // 59 bytes of label: 255, the longest name there is.
    let longest = format!("{}.longdn.example.com.", "b".repeat(58));
    let answer = q(&z, &longest, RecordType::A);
    assert_eq!(answer.rcode, NxDomain);
    assert_eq!(answer.answers.len(), 2);
    // The synthesized CNAMEs count in the chain limit.
    let mut text = format!("{BASE}{}", dnames());
    for i in 0..20 {
        text.push_str(&format!("d{i} DNAME d{}\n", i + 1));
    }
    let z = zone_with(&text, None);
    let answer = q(&z, "x.d0.example.com.", RecordType::A);
    assert_eq!(answer.answers.len(), MAX_CHAIN);
    assert_eq!(answer.rcode, NoError);
}

#[test]
fn an_overlay_dname_redirects_its_line_only() {
    let z = zone_with(
        BASE,
        Some("$TTL 60\nwww DNAME target\ntarget A 192.0.2.9\nx.target A 192.0.2.8\n"),
    );
    check(
        &in_china(&z, "x.www.example.com.", RecordType::A),
        NoError,
        true,
        &[
            "www.example.com. 60 DNAME target.example.com.",
            "x.www.example.com. 60 CNAME x.target.example.com.",
            "x.target.example.com. 60 A 192.0.2.8",
        ],
        &[],
        &[],
    );
    assert_eq!(q(&z, "x.www.example.com.", RecordType::A).rcode, NxDomain);
}
