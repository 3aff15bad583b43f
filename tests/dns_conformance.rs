//! The protocol points a differential run against Knot DNS found (issue 14), end to end:
//! the server started in-process, queried over real UDP and TCP sockets, flags, rcode and
//! every section asserted. Where a point is a choice between legal answers, the test
//! holds the one Knot DNS 3.2 gives for the same zone.

mod common;

use std::time::Duration;

use common::dns::{self, A, ANY, CNAME, DS, Edns, MX, NS, Query, Reply, TXT, Tcp};
use common::site::Config;
use common::{TempDir, TestServer};

const ZONE: &str = r#"; every shape the conformance tests need
$ORIGIN example.com.
$TTL 300
@        SOA  ns1 hostmaster 2026120701 7200 900 1209600 60
         NS   ns1
ns1      A    192.0.2.53
www      A    192.0.2.10
a        CNAME b
b   120  CNAME c
c   60   A    192.0.2.3
dangling CNAME nowhere
sub      NS   ns.sub
sub      NS   ns1
ns.sub   A    192.0.2.99
ns.sub   AAAA 2001:db8::99
mx.sub   A    192.0.2.98
intosub  CNAME host.sub
tosub    CNAME sub
*.wild   A    192.0.2.30
*.wild   AAAA 2001:db8::30
glued    MX   10 mx.sub
glued    MX   20 nowhere.sub
wmx      MX   10 host.wild
wsrv     SRV  0 5 5060 host.wild
sub      DS   12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
nods     NS   ns1
tonods   CNAME nods
dn  120  DNAME target
host.target A 192.0.2.77
dnsub    DNAME sub
dnout    DNAME example.net.
"#;

/// The child zone, served by the same server.
const CHILD: &str = "$ORIGIN sub.example.com.
$TTL 300
@        SOA  ns.sub hostmaster 7 7200 900 1209600 60
         NS   ns
ns       A    192.0.2.99
";

/// A mail name with twelve exchangers, each with an IPv4 and an IPv6 address: the
/// additional section cannot fit in 512 bytes.
fn twelve_exchangers() -> String {
    let mut text = String::new();
    for i in 1..=12 {
        text.push_str(&format!("twelve MX 10 m{i}\n"));
    }
    for i in 1..=12 {
        text.push_str(&format!(
            "m{i} A 192.0.2.{}\nm{i} AAAA 2001:db8::{}\n",
            100 + i,
            100 + i
        ));
    }
    text
}

const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const BADVERS: u16 = 16;
const IXFR: u16 = 251;

const SOA_NEGATIVE: &str = "example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 2026120701 7200 900 1209600 60";
const CHILD_NS: [&str; 2] = [
    "sub.example.com. 300 IN NS ns.sub.example.com.",
    "sub.example.com. 300 IN NS ns1.example.com.",
];
const CHILD_GLUE: [&str; 3] = [
    "ns.sub.example.com. 300 IN A 192.0.2.99",
    "ns.sub.example.com. 300 IN AAAA 2001:db8::99",
    "ns1.example.com. 300 IN A 192.0.2.53",
];

const RRSIG: u16 = 46;
const NSEC: u16 = 47;
const SRV: u16 = 33;

async fn start(dir: &TempDir) -> TestServer {
    dir.write(
        "example.com.zone",
        &format!("{ZONE}{}", twelve_exchangers()),
    );
    TestServer::start(dir, Config::dns().zone("example.com.zone", &[])).await
}

/// The answer to `q`, asked three ways that must agree byte for byte: over UDP twice (the
/// strict path prepares the answer, then the answer cache serves it) and over TCP.
async fn ask(s: &TestServer, q: &Query) -> Reply {
    let first = dns::udp(s.udp4, q).await;
    let cached = dns::udp(s.udp4, q).await;
    let tcp = dns::tcp(s.tcp4, q).await;
    assert_eq!(first.raw, cached.raw, "the cached answer is the strict one");
    assert_eq!(first.raw, tcp.raw, "TCP gives the same answer");
    first
}

const DNAME: u16 = 39;

/// The answer section as "owner ttl IN TYPE rdata" lines, a DNAME's target written as a
/// name (hickory has no DNAME type): read from the wire, where it must be uncompressed
/// (RFC 6672 2.5).
fn answer_section(r: &Reply) -> Vec<String> {
    let rdata = dns::answer_rdata(&r.raw);
    r.answers()
        .into_iter()
        .zip(rdata)
        .map(|(line, (rtype, data))| {
            if rtype != DNAME {
                return line;
            }
            let mut labels = Vec::new();
            let mut at = 0;
            while data[at] != 0 {
                assert!(data[at] < 64, "an uncompressed DNAME target");
                let len = usize::from(data[at]);
                labels.push(String::from_utf8_lossy(&data[at + 1..at + 1 + len]).into_owned());
                at += 1 + len;
            }
            assert_eq!(at + 1, data.len(), "one name");
            let head = line.rsplit_once(' ').expect("rdata").0;
            format!("{head} {}.", labels.join("."))
        })
        .collect()
}

/// rcode, AA, TC and the three record sections of `r`.
#[track_caller]
fn check(
    r: &Reply,
    rcode: u16,
    aa: bool,
    answers: &[&str],
    authority: &[&str],
    additional: &[&str],
) {
    assert_eq!(r.rcode(), rcode, "rcode");
    assert_eq!(r.aa(), aa, "AA");
    assert!(!r.tc(), "TC");
    assert_eq!(answer_section(r), answers, "answer section");
    assert_eq!(r.authority(), authority, "authority section");
    assert_eq!(r.additional(), additional, "additional section");
}

#[tokio::test]
async fn cname_into_a_delegated_child_continues_into_the_referral() {
    let dir = TempDir::new("conf-cname-cut");
    let s = start(&dir).await;
    // RFC 1034 4.3.2 step 3b: the CNAME (authoritative, so AA), then the child's NS and glue.
    for qtype in [A, MX] {
        let r = ask(&s, &Query::new("intosub.example.com", qtype)).await;
        check(
            &r,
            NOERROR,
            true,
            &["intosub.example.com. 300 IN CNAME host.sub.example.com."],
            &CHILD_NS,
            &CHILD_GLUE,
        );
    }
    // Into the cut itself: a referral for NS, the parent's side for DS (NODATA without).
    let r = ask(&s, &Query::new("tosub.example.com", NS)).await;
    let tosub = "tosub.example.com. 300 IN CNAME sub.example.com.";
    check(&r, NOERROR, true, &[tosub], &CHILD_NS, &CHILD_GLUE);
    let r = ask(&s, &Query::new("tosub.example.com", DS)).await;
    check(&r, NOERROR, true, &[tosub, DS_RECORD], &[], &[]);
    let r = ask(&s, &Query::new("tonods.example.com", DS)).await;
    let tonods = "tonods.example.com. 300 IN CNAME nods.example.com.";
    check(&r, NOERROR, true, &[tonods], &[SOA_NEGATIVE], &[]);
    // The plain referral keeps AA clear.
    let r = ask(&s, &Query::new("host.sub.example.com", A)).await;
    check(&r, NOERROR, false, &[], &CHILD_NS, &CHILD_GLUE);
}

#[tokio::test]
async fn any_at_a_cname_is_the_cname() {
    let dir = TempDir::new("conf-any-cname");
    let s = start(&dir).await;
    // ANY matches the CNAME itself (RFC 1034 3.6.2): the chain is not followed, so a
    // dangling target does not turn an existing name into NXDOMAIN.
    let r = ask(&s, &Query::new("a.example.com", ANY)).await;
    check(
        &r,
        NOERROR,
        true,
        &["a.example.com. 300 IN CNAME b.example.com."],
        &[],
        &[],
    );
    let r = ask(&s, &Query::new("dangling.example.com", ANY).edns()).await;
    check(
        &r,
        NOERROR,
        true,
        &["dangling.example.com. 300 IN CNAME nowhere.example.com."],
        &[],
        &[],
    );
    // Elsewhere ANY stays minimal (RFC 8482): one RRset, the lowest type.
    let r = ask(&s, &Query::new("example.com", ANY)).await;
    check(
        &r,
        NOERROR,
        true,
        &["example.com. 300 IN NS ns1.example.com."],
        &[],
        &["ns1.example.com. 300 IN A 192.0.2.53"],
    );
    // And a CNAME query is answered at the name, as before.
    let r = ask(&s, &Query::new("dangling.example.com", CNAME)).await;
    check(
        &r,
        NOERROR,
        true,
        &["dangling.example.com. 300 IN CNAME nowhere.example.com."],
        &[],
        &[],
    );
}

#[tokio::test]
async fn rrsig_and_nsec_at_a_cname_are_answered_at_the_name() {
    let dir = TempDir::new("conf-rrsig-cname");
    let s = start(&dir).await;
    // They stand beside the CNAME (RFC 4035 2.5): NODATA here, not the chain's end.
    for qtype in [RRSIG, NSEC] {
        for name in ["a.example.com", "dangling.example.com"] {
            let r = ask(&s, &Query::new(name, qtype)).await;
            check(&r, NOERROR, true, &[], &[SOA_NEGATIVE], &[]);
        }
    }
    // Any other type still follows the chain (RFC 6604: the last name's rcode).
    let r = ask(&s, &Query::new("dangling.example.com", TXT)).await;
    check(
        &r,
        NXDOMAIN,
        true,
        &["dangling.example.com. 300 IN CNAME nowhere.example.com."],
        &[SOA_NEGATIVE],
        &[],
    );
}

#[tokio::test]
async fn mx_and_srv_targets_get_glue_and_wildcard_addresses() {
    let dir = TempDir::new("conf-glue");
    let s = start(&dir).await;
    // A target below a zone cut: its glue, as for a name server (a target without glue
    // gets nothing).
    let r = ask(&s, &Query::new("glued.example.com", MX)).await;
    check(
        &r,
        NOERROR,
        true,
        &[
            "glued.example.com. 300 IN MX 10 mx.sub.example.com.",
            "glued.example.com. 300 IN MX 20 nowhere.sub.example.com.",
        ],
        &[],
        &["mx.sub.example.com. 300 IN A 192.0.2.98"],
    );
    // A target a wildcard covers: the addresses synthesized under the target's name.
    let synthesized = [
        "host.wild.example.com. 300 IN A 192.0.2.30",
        "host.wild.example.com. 300 IN AAAA 2001:db8::30",
    ];
    let r = ask(&s, &Query::new("wmx.example.com", MX)).await;
    check(
        &r,
        NOERROR,
        true,
        &["wmx.example.com. 300 IN MX 10 host.wild.example.com."],
        &[],
        &synthesized,
    );
    let r = ask(&s, &Query::new("wsrv.example.com", SRV)).await;
    check(
        &r,
        NOERROR,
        true,
        &["wsrv.example.com. 300 IN SRV 0 5 5060 host.wild.example.com."],
        &[],
        &synthesized,
    );
}

#[tokio::test]
async fn the_additional_addresses_that_fit_are_packed() {
    let dir = TempDir::new("conf-pack");
    let s = start(&dir).await;
    let exchangers: Vec<String> = (1..=12)
        .map(|i| format!("twelve.example.com. 300 IN MX 10 m{i}.example.com."))
        .collect();
    let addresses = |hosts: std::ops::RangeInclusive<u8>| -> Vec<String> {
        hosts
            .flat_map(|i| {
                [
                    format!("m{i}.example.com. 300 IN A 192.0.2.{}", 100 + u16::from(i)),
                    format!(
                        "m{i}.example.com. 300 IN AAAA 2001:db8::{}",
                        100 + u16::from(i)
                    ),
                ]
            })
            .collect()
    };
    // Without EDNS (512 bytes): the twelve MX, then the address RRsets in order while
    // they fit, whole, without TC (RFC 2181 9): eleven, as Knot DNS 3.2 packs them, in
    // the 503 bytes Knot's response takes.
    let q = Query::new("twelve.example.com", MX);
    let first = dns::udp(s.udp4, &q).await;
    let cached = dns::udp(s.udp4, &q).await;
    assert_eq!(first.raw, cached.raw, "the cached answer is the strict one");
    let mut eleven = addresses(1..=6);
    eleven.pop();
    let e: Vec<&str> = exchangers.iter().map(String::as_str).collect();
    let a: Vec<&str> = eleven.iter().map(String::as_str).collect();
    check(&first, NOERROR, true, &e, &[], &a);
    assert_eq!(first.raw.len(), 503);
    // A larger buffer holds more, the OPT record counted in; TCP holds them all.
    let q = Query::new("twelve.example.com", MX).payload(600);
    let first = dns::udp(s.udp4, &q).await;
    let cached = dns::udp(s.udp4, &q).await;
    assert_eq!(first.raw, cached.raw, "the cached answer is the strict one");
    let fourteen = addresses(1..=7);
    let a: Vec<&str> = fourteen.iter().map(String::as_str).collect();
    check(&first, NOERROR, true, &e, &[], &a);
    assert!(first.opt().is_some());
    assert_eq!(first.raw.len(), 586, "Knot's size too, OPT included");
    let all = addresses(1..=12);
    let a: Vec<&str> = all.iter().map(String::as_str).collect();
    check(&dns::tcp(s.tcp4, &q).await, NOERROR, true, &e, &[], &a);
}

/// `q`'s bytes sent over UDP and over TCP: the two replies, which must say the same.
async fn raw_both(s: &TestServer, bytes: &[u8]) -> [Reply; 2] {
    let udp = dns::udp_raw_from("127.0.0.1:0", s.udp4, bytes)
        .await
        .expect("a UDP reply");
    let mut tcp = Tcp::connect(s.tcp4).await;
    tcp.send_raw(bytes).await;
    let tcp = tcp
        .recv_raw(Duration::from_secs(5))
        .await
        .expect("a TCP reply");
    assert_eq!(udp, tcp, "UDP and TCP answer alike");
    [Reply::parse(udp), Reply::parse(tcp)]
}

/// An EDNS query with the DO bit.
fn with_do(mut q: Query) -> Query {
    q.edns = Some(Edns {
        dnssec_ok: true,
        ..Edns::default()
    });
    q
}

/// The OPT record's (version, DO, payload), asserting there is one.
fn opt(r: &Reply) -> (u8, bool, u16) {
    let o = r.opt().expect("an OPT record");
    (o.version, o.dnssec_ok, o.payload)
}

#[tokio::test]
async fn errors_to_edns_queries_carry_opt() {
    let dir = TempDir::new("conf-error-opt");
    let s = start(&dir).await;
    // Opcodes other than QUERY (here STATUS and an unassigned one): NOTIMP, the opcode and
    // question echoed, and an OPT record with DO copied (RFC 6891 6.1.1, RFC 3225 3).
    for opcode in [2, 3] {
        let mut q = with_do(Query::new("www.example.com", A));
        q.opcode = opcode;
        for r in raw_both(&s, &q.bytes()).await {
            assert_eq!(r.rcode(), NOTIMP);
            assert_eq!(r.raw[2] >> 3 & 0xf, opcode, "opcode echoed");
            assert_eq!(r.question_name(), "www.example.com.");
            assert!(!r.aa());
            assert_eq!(opt(&r), (0, true, 1232));
        }
        // Without EDNS, none.
        q.edns = None;
        let [r, _] = raw_both(&s, &q.bytes()).await;
        assert_eq!((r.rcode(), r.opt().is_none()), (NOTIMP, true));
    }

    // Zero questions, or two: FORMERR, with the OPT record the query carried.
    let one = with_do(Query::new("www.example.com", A)).bytes();
    let question = &one[12..one.len() - 11];
    let mut zero = one[..12].to_vec();
    zero.extend_from_slice(&one[one.len() - 11..]);
    zero[5] = 0;
    let mut two = one[..12].to_vec();
    two.extend_from_slice(question);
    two.extend_from_slice(&one[12..]);
    two[5] = 2;
    for bytes in [zero, two] {
        for r in raw_both(&s, &bytes).await {
            assert_eq!(r.rcode(), FORMERR);
            assert!(r.message.queries.is_empty(), "no question echoed");
            assert!(r.answers().is_empty() && r.authority().is_empty());
            assert_eq!(opt(&r), (0, true, 1232));
        }
    }
}

/// An IXFR query for example.com carrying `serial`'s SOA in the authority section (RFC
/// 1995 3), with an OPT record if `edns`.
fn ixfr(serial: u32, edns: bool) -> Vec<u8> {
    let mut q = Query::new("example.com", IXFR);
    if edns {
        q = q.edns();
    }
    let plain = q.bytes();
    let (head, opt) = plain.split_at(plain.len() - if edns { 11 } else { 0 });
    let mut b = head.to_vec();
    b[9] = 1; // one authority record
    // example.com (a pointer at the question) SOA IN 0, mname and rname pointers too.
    b.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 24, 0xc0, 12, 0xc0, 12]);
    for field in [serial, 7200, 900, 1209600, 60] {
        b.extend_from_slice(&field.to_be_bytes());
    }
    b.extend_from_slice(opt);
    b
}

#[tokio::test]
async fn ixfr_is_refused_like_axfr() {
    let dir = TempDir::new("conf-ixfr");
    let s = start(&dir).await;
    // Well formed, with the requester's SOA: refused as zone transfers are, not FORMERR.
    for edns in [false, true] {
        for r in raw_both(&s, &ixfr(2026120601, edns)).await {
            assert_eq!(r.rcode(), REFUSED);
            assert!(!r.aa());
            assert_eq!(r.question_name(), "example.com.");
            assert!(r.answers().is_empty() && r.authority().is_empty());
            assert_eq!(r.opt().is_some(), edns);
        }
    }
    // AXFR, for comparison, and an IXFR whose authority record is not a SOA: FORMERR.
    let [r, _] = raw_both(&s, &Query::new("example.com", 252).bytes()).await;
    assert_eq!(r.rcode(), REFUSED);
    let mut not_soa = ixfr(1, false);
    // header, question (13 + 4), the owner pointer, then the type: A.
    not_soa[12 + 17 + 3] = 1;
    let [r, _] = raw_both(&s, &not_soa).await;
    assert_eq!(r.rcode(), FORMERR);
}

#[tokio::test]
async fn badvers_copies_the_do_bit() {
    let dir = TempDir::new("conf-badvers");
    let s = start(&dir).await;
    for dnssec_ok in [true, false] {
        let mut q = Query::new("www.example.com", A);
        q.edns = Some(Edns {
            version: 1,
            dnssec_ok,
            ..Edns::default()
        });
        for r in raw_both(&s, &q.bytes()).await {
            assert_eq!(r.rcode(), BADVERS);
            assert!(r.answers().is_empty());
            assert_eq!(opt(&r), (0, dnssec_ok, 1232));
        }
    }
}

const DS_RECORD: &str = "sub.example.com. 300 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";

#[tokio::test]
async fn ds_is_answered_by_the_parent_side_of_the_cut() {
    let dir = TempDir::new("conf-ds");
    let s = start(&dir).await;
    // The parent's DS, authoritatively, not a referral (RFC 4035 2.4, 3.1.4.1).
    let r = ask(&s, &Query::new("sub.example.com", DS)).await;
    check(&r, NOERROR, true, &[DS_RECORD], &[], &[]);
    // A cut without DS: NODATA with the parent's SOA.
    let r = ask(&s, &Query::new("nods.example.com", DS)).await;
    check(&r, NOERROR, true, &[], &[SOA_NEGATIVE], &[]);
    // Below the cut, DS is the child's like anything else: the referral.
    let r = ask(&s, &Query::new("x.sub.example.com", DS)).await;
    check(&r, NOERROR, false, &[], &CHILD_NS, &CHILD_GLUE);
}

#[tokio::test]
async fn ds_for_a_child_zone_served_here_too_comes_from_the_parent() {
    let dir = TempDir::new("conf-ds-both");
    dir.write("example.com.zone", ZONE);
    dir.write("sub.example.com.zone", CHILD);
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .zone("sub.example.com.zone", &[]);
    let s = TestServer::start(&dir, config).await;
    let r = ask(&s, &Query::new("sub.example.com", DS)).await;
    check(&r, NOERROR, true, &[DS_RECORD], &[], &[]);
    // Every other type at the child's apex is the child's.
    let r = ask(&s, &Query::new("sub.example.com", NS)).await;
    check(
        &r,
        NOERROR,
        true,
        &["sub.example.com. 300 IN NS ns.sub.example.com."],
        &[],
        &["ns.sub.example.com. 300 IN A 192.0.2.99"],
    );
}

#[tokio::test]
async fn dname_synthesizes_a_cname_and_follows_it() {
    let dir = TempDir::new("conf-dname");
    let s = start(&dir).await;
    const DN: &str = "dn.example.com. 120 IN DNAME target.example.com.";
    // RFC 6672 3.2: the DNAME, the CNAME synthesized with its TTL, the target's data.
    let r = ask(&s, &Query::new("host.dn.example.com", A)).await;
    check(
        &r,
        NOERROR,
        true,
        &[
            DN,
            "host.dn.example.com. 120 IN CNAME host.target.example.com.",
            "host.target.example.com. 300 IN A 192.0.2.77",
        ],
        &[],
        &[],
    );
    // To a name that does not exist: NXDOMAIN, the last name's (RFC 6604).
    let r = ask(&s, &Query::new("a.b.dn.example.com", A)).await;
    check(
        &r,
        NXDOMAIN,
        true,
        &[
            DN,
            "a.b.dn.example.com. 120 IN CNAME a.b.target.example.com.",
        ],
        &[SOA_NEGATIVE],
        &[],
    );
    // The owner itself is not redirected.
    let r = ask(&s, &Query::new("dn.example.com", DNAME)).await;
    check(&r, NOERROR, true, &[DN], &[], &[]);
    let r = ask(&s, &Query::new("dn.example.com", A)).await;
    check(&r, NOERROR, true, &[], &[SOA_NEGATIVE], &[]);
    // Into a delegation: the referral; out of the zone: the chain stops.
    let r = ask(&s, &Query::new("host.dnsub.example.com", A)).await;
    check(
        &r,
        NOERROR,
        true,
        &[
            "dnsub.example.com. 300 IN DNAME sub.example.com.",
            "host.dnsub.example.com. 300 IN CNAME host.sub.example.com.",
        ],
        &CHILD_NS,
        &CHILD_GLUE,
    );
    let r = ask(&s, &Query::new("www.dnout.example.com", A)).await;
    check(
        &r,
        NOERROR,
        true,
        &[
            "dnout.example.com. 300 IN DNAME example.net.",
            "www.dnout.example.com. 300 IN CNAME www.example.net.",
        ],
        &[],
        &[],
    );
}

#[tokio::test]
async fn dname_to_a_name_too_long_is_yxdomain() {
    let dir = TempDir::new("conf-dname-long");
    let long = ["a".repeat(60), "a".repeat(60), "a".repeat(60)].join(".");
    dir.write(
        "example.com.zone",
        &format!("{ZONE}longdn DNAME {long}.example.com.\n"),
    );
    let s = TestServer::start(&dir, Config::dns().zone("example.com.zone", &[])).await;
    let dname = format!("longdn.example.com. 300 IN DNAME {long}.example.com.");
    // 61 + 3 * 61 + 13 = 257 bytes (RFC 6672 2.2): YXDOMAIN, the DNAME alone.
    let q = Query::new(&format!("{}.longdn.example.com", "b".repeat(60)), A);
    let r = ask(&s, &q).await;
    const YXDOMAIN: u16 = 6;
    check(&r, YXDOMAIN, true, &[&dname], &[], &[]);
    // 255 bytes fit: the synthesized name, which does not exist (with EDNS: the answer
    // takes more than 512 bytes).
    let q = Query::new(&format!("{}.longdn.example.com", "b".repeat(58)), A).edns();
    let r = ask(&s, &q).await;
    assert_eq!(r.rcode(), NXDOMAIN);
    assert_eq!(answer_section(&r).len(), 2);
}
