//! The authoritative server end to end: the server started in-process on ephemeral ports,
//! queried over real UDP and TCP sockets, every section, flag and TTL asserted.

mod common;

use std::time::Duration;

use common::dns::{self, A, AAAA, ANY, CNAME, DS, MX, NS, Query, TXT, Tcp};
use common::site::{self, Config};
use common::{TempDir, TestServer, mmdb};

const ZONE: &str = r#"; the test zone: every shape the semantics tests need
$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster (
                2026112201 ; serial
                7200 900 1209600
                60 )       ; minimum: caps negative TTLs
        NS   ns1
        NS   ns2
        MX   10 mail
        TXT  "v=spf1 mx -all"
ns1     A    192.0.2.53
        AAAA 2001:db8::53
ns2     A    198.51.100.53
mail    A    192.0.2.25
www     A    192.0.2.10
        AAAA 2001:db8::10
api     CNAME api.global.example.net.
shop    CNAME www
chain1  CNAME chain2
chain2  CNAME nowhere
loop1   CNAME loop2
loop2   CNAME loop1
*.apps  A    192.0.2.20
host.deep.tree A 192.0.2.30
sub     NS   ns.sub
ns.sub  A    192.0.2.99
promo   A    192.0.2.40
        TXT  "spring sale"
"#;

const CHINA: &str = r#"; china line: only what differs
$TTL 300
www     60 A    203.0.113.10
www     60 AAAA 2001:db8:cafe::10
api     CNAME api.example.cn.
shop    A    203.0.113.30
cdn     A    203.0.113.80
*.apps  A    203.0.113.20
promo   CNAME www
"#;

const PROBE: &str = "$TTL 300\nwww A 198.51.100.7\n";

fn txt_rrset(owner: &str, count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "{owner} TXT \"{}\"\n",
                char::from(b'a' + i as u8).to_string().repeat(200)
            )
        })
        .collect()
}

/// Writes the zone, overlays, a GeoIP2-layout database and the config; starts the server.
async fn start(dir: &TempDir) -> TestServer {
    let zone = format!("{ZONE}{}{}", txt_rrset("big", 4), txt_rrset("huge", 8));
    dir.write("example.com.zone", &zone);
    dir.write("example.com.china.zone", CHINA);
    dir.write("example.com.probe.zone", PROBE);
    mmdb::write_geoip2_country(
        &dir.path().join("country.mmdb"),
        &[
            ("1.0.0.0/16", "JP", "AS"),
            ("1.2.0.0/16", "CN", "AS"),
            ("1.3.0.0/16", "CN", "AS"),
            ("8.0.0.0/8", "US", "NA"),
            ("2400:da00::/32", "CN", "AS"),
            ("2a00::/16", "DE", "EU"),
        ],
    );
    let config = Config::dns()
        .set(
            "[dns]",
            &[
                r#"listen = ["127.0.0.1:0", "[::1]:0"]"#,
                "tcp_idle_timeout_secs = 1",
            ],
        )
        .geoip("country.mmdb")
        // listed before china: inside 1.2.8.0/24 it wins although the database says CN
        .line("probe", &[r#"cidrs = ["1.2.8.0/24"]"#])
        .line(
            "china",
            &[
                r#"countries = ["CN"]"#,
                r#"cidrs = ["127.0.0.2/32", "::1/128"]"#,
            ],
        )
        .zone(
            "example.com.zone",
            &[
                ("china", "example.com.china.zone"),
                ("probe", "example.com.probe.zone"),
            ],
        );
    TestServer::start(dir, config).await
}

const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const BADVERS: u16 = 16;

const SOA_NEGATIVE: &str = "example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 2026112201 7200 900 1209600 60";

fn v4(prefix: &str) -> dns::Subnet {
    let q = dns::ecs(prefix).1;
    (1, q[2], 0, q[4..].to_vec())
}

fn scoped(mut s: dns::Subnet, scope: u8) -> Option<dns::Subnet> {
    s.2 = scope;
    Some(s)
}

#[tokio::test]
async fn line_by_client_subnet_with_widest_scope() {
    let dir = TempDir::new("dns-ecs");
    let s = start(&dir).await;
    let q = Query::new("www.example.com", A);

    // Mainland: CN covers 1.2.0.0/15 but 1.2.8.0/24 is the probe line, so the widest
    // china prefix around 1.2.4.0 is 1.2.0.0/21.
    let r = dns::udp(s.udp4, &q.clone().subnet("1.2.4.0/24")).await;
    assert_eq!(r.rcode(), NOERROR);
    assert!(r.aa() && !r.tc() && !r.ra());
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    assert!(r.authority().is_empty() && r.additional().is_empty());
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 21));

    let r = dns::udp(s.udp4, &q.clone().subnet("1.3.7.0/24")).await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    assert_eq!(r.subnet(), scoped(v4("1.3.7.0/24"), 16));

    // Default: the default line runs from 1.4.0.0 to 127.0.0.1 here, and 8.0.0.0/5 is the
    // widest prefix inside it. A scope of 0 would let a resolver serve this to mainland
    // clients too.
    let r = dns::udp(s.udp4, &q.clone().subnet("8.8.8.0/24")).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    assert_eq!(r.subnet(), scoped(v4("8.8.8.0/24"), 5));

    // A CIDR line listed before the country line wins inside its prefix.
    let r = dns::udp(s.udp4, &q.clone().subnet("1.2.8.0/24")).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 198.51.100.7"]);
    assert_eq!(r.subnet(), scoped(v4("1.2.8.0/24"), 24));

    // A /22 source is echoed as sent: 3 address bytes.
    let r = dns::udp(s.udp4, &q.clone().subnet("1.2.4.0/22")).await;
    assert_eq!(r.subnet(), Some((1, 22, 21, vec![1, 2, 4])));
}

#[tokio::test]
async fn line_by_client_subnet_ipv6() {
    let dir = TempDir::new("dns-ecs6");
    let s = start(&dir).await;
    let q = Query::new("www.example.com", AAAA);
    let r = dns::udp(s.udp4, &q.clone().subnet("2400:da00:1::/48")).await;
    assert_eq!(
        r.answers(),
        ["www.example.com. 60 IN AAAA 2001:db8:cafe::10"]
    );
    assert_eq!(r.subnet(), Some((2, 48, 32, vec![0x24, 0, 0xda, 0, 0, 1])));
    let r = dns::udp(s.udp4, &q.clone().subnet("2a00:1450::/32")).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN AAAA 2001:db8::10"]);
    // Default runs from 2400:da01:: to the top: 2800::/5 is the widest prefix in it.
    assert_eq!(r.subnet(), Some((2, 32, 5, vec![0x2a, 0, 0x14, 0x50])));
}

#[tokio::test]
async fn line_by_source_address_ipv4_and_ipv6() {
    let dir = TempDir::new("dns-src");
    let s = start(&dir).await;
    let q = Query::new("www.example.com", A);
    // 127.0.0.2 is in the china line's CIDRs, 127.0.0.1 is not.
    let r = dns::udp_from("127.0.0.2:0", s.udp4, &q).await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    assert!(
        r.opt().is_none(),
        "no OPT in a response to a query without one"
    );
    let r = dns::udp_from("127.0.0.1:0", s.udp4, &q).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    // ::1 is in the china line's CIDRs.
    let udp6 = s.udp6.expect("IPv6 listener");
    let r = dns::udp(udp6, &q).await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    let r = dns::tcp(s.tcp6.expect("IPv6 TCP"), &q).await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    let r = dns::tcp(s.tcp4, &q).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
}

#[tokio::test]
async fn source_prefix_zero_uses_resolver_address_and_scope_zero() {
    let dir = TempDir::new("dns-ecs0");
    let s = start(&dir).await;
    let q = Query::new("www.example.com", A).subnet("0.0.0.0/0");
    let r = dns::udp_from("127.0.0.2:0", s.udp4, &q).await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    assert_eq!(r.subnet(), Some((1, 0, 0, vec![])));
    let r = dns::udp_from("127.0.0.1:0", s.udp4, &q).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    assert_eq!(r.subnet(), Some((1, 0, 0, vec![])));
}

#[tokio::test]
async fn scope_zero_when_every_line_gets_the_same_answer() {
    let dir = TempDir::new("dns-scope0");
    let s = start(&dir).await;
    for prefix in ["1.2.4.0/24", "8.8.8.0/24"] {
        let r = dns::udp(s.udp4, &Query::new("example.com", MX).subnet(prefix)).await;
        assert_eq!(r.answers(), ["example.com. 300 IN MX 10 mail.example.com."]);
        assert_eq!(r.additional(), ["mail.example.com. 300 IN A 192.0.2.25"]);
        assert_eq!(r.subnet(), scoped(v4(prefix), 0));

        let r = dns::udp(s.udp4, &Query::new("nope.example.com", A).subnet(prefix)).await;
        assert_eq!(r.rcode(), NXDOMAIN);
        assert!(r.aa());
        assert!(r.answers().is_empty());
        assert_eq!(r.authority(), [SOA_NEGATIVE]);
        assert_eq!(r.subnet(), scoped(v4(prefix), 0));
    }
}

#[tokio::test]
async fn negative_answers_that_differ_by_line_carry_the_line_scope() {
    let dir = TempDir::new("dns-negscope");
    let s = start(&dir).await;
    // cdn exists only in the china overlay: NXDOMAIN elsewhere, and a resolver must not
    // reuse that NXDOMAIN for mainland clients.
    let r = dns::udp(
        s.udp4,
        &Query::new("cdn.example.com", A).subnet("8.8.8.0/24"),
    )
    .await;
    assert_eq!(r.rcode(), NXDOMAIN);
    assert_eq!(r.authority(), [SOA_NEGATIVE]);
    assert_eq!(r.subnet(), scoped(v4("8.8.8.0/24"), 5));
    let r = dns::udp(
        s.udp4,
        &Query::new("cdn.example.com", A).subnet("1.2.4.0/24"),
    )
    .await;
    assert_eq!(r.rcode(), NOERROR);
    assert_eq!(r.answers(), ["cdn.example.com. 300 IN A 203.0.113.80"]);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 21));
}

#[tokio::test]
async fn overlays_replace_add_and_wildcard() {
    let dir = TempDir::new("dns-overlay");
    let s = start(&dir).await;
    let ask = |name: &str, qtype: u16, prefix: &str| {
        let q = Query::new(name, qtype).subnet(prefix);
        async move { dns::udp(s.udp4, &q).await }
    };
    // A CNAME in the overlay replaces the base CNAME's target.
    let r = ask("api.example.com", A, "1.2.4.0/24").await;
    assert_eq!(
        r.answers(),
        ["api.example.com. 300 IN CNAME api.example.cn."]
    );
    let r = ask("api.example.com", A, "8.8.8.0/24").await;
    assert_eq!(
        r.answers(),
        ["api.example.com. 300 IN CNAME api.global.example.net."]
    );
    // An A in the overlay replaces the base CNAME at that name.
    let r = ask("shop.example.com", A, "1.2.4.0/24").await;
    assert_eq!(r.answers(), ["shop.example.com. 300 IN A 203.0.113.30"]);
    let r = ask("shop.example.com", A, "8.8.8.0/24").await;
    assert_eq!(
        r.answers(),
        [
            "shop.example.com. 300 IN CNAME www.example.com.",
            "www.example.com. 300 IN A 192.0.2.10"
        ]
    );
    // A wildcard in the overlay.
    let r = ask("x.apps.example.com", A, "1.2.4.0/24").await;
    assert_eq!(r.answers(), ["x.apps.example.com. 300 IN A 203.0.113.20"]);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 21));
    let r = ask("x.apps.example.com", A, "8.8.8.0/24").await;
    assert_eq!(r.answers(), ["x.apps.example.com. 300 IN A 192.0.2.20"]);
    // A CNAME in the overlay replaces everything at its name: the base's A and TXT.
    let r = ask("promo.example.com", TXT, "1.2.4.0/24").await;
    assert_eq!(r.rcode(), 0);
    assert_eq!(
        r.answers(),
        ["promo.example.com. 300 IN CNAME www.example.com."]
    );
    assert_eq!(r.authority(), [SOA_NEGATIVE]);
    let r = ask("promo.example.com", TXT, "8.8.8.0/24").await;
    assert_eq!(r.answers(), ["promo.example.com. 300 IN TXT spring sale"]);
    // What the overlay does not touch is the base's.
    let r = ask("mail.example.com", A, "1.2.4.0/24").await;
    assert_eq!(r.answers(), ["mail.example.com. 300 IN A 192.0.2.25"]);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 0));
}

#[tokio::test]
async fn cname_chains() {
    let dir = TempDir::new("dns-cname");
    let s = start(&dir).await;
    let r = dns::udp(s.udp4, &Query::new("chain1.example.com", A)).await;
    assert_eq!(
        r.rcode(),
        NXDOMAIN,
        "rcode of the last name in the chain (RFC 6604)"
    );
    assert!(r.aa());
    assert_eq!(
        r.answers(),
        [
            "chain1.example.com. 300 IN CNAME chain2.example.com.",
            "chain2.example.com. 300 IN CNAME nowhere.example.com."
        ]
    );
    assert_eq!(r.authority(), [SOA_NEGATIVE]);

    let r = dns::udp(s.udp4, &Query::new("loop1.example.com", A)).await;
    assert_eq!(r.rcode(), NOERROR);
    assert_eq!(
        r.answers(),
        [
            "loop1.example.com. 300 IN CNAME loop2.example.com.",
            "loop2.example.com. 300 IN CNAME loop1.example.com."
        ]
    );

    // Asking for the CNAME itself does not follow it.
    let r = dns::udp(s.udp4, &Query::new("shop.example.com", CNAME)).await;
    assert_eq!(
        r.answers(),
        ["shop.example.com. 300 IN CNAME www.example.com."]
    );
}

#[tokio::test]
async fn nodata_empty_non_terminal_and_wildcard() {
    let dir = TempDir::new("dns-nodata");
    let s = start(&dir).await;
    for name in [
        "www.example.com",
        "deep.tree.example.com",
        "tree.example.com",
    ] {
        let r = dns::udp(s.udp4, &Query::new(name, TXT)).await;
        assert_eq!(r.rcode(), NOERROR, "{name}");
        assert!(r.aa(), "{name}");
        assert!(r.answers().is_empty(), "{name}");
        assert_eq!(r.authority(), [SOA_NEGATIVE], "{name}");
    }
    let r = dns::udp(s.udp4, &Query::new("a.b.apps.example.com", A)).await;
    assert_eq!(r.answers(), ["a.b.apps.example.com. 300 IN A 192.0.2.20"]);
    let r = dns::udp(s.udp4, &Query::new("x.apps.example.com", AAAA)).await;
    assert_eq!(r.rcode(), NOERROR);
    assert_eq!(r.authority(), [SOA_NEGATIVE]);
}

#[tokio::test]
async fn delegation_is_a_referral_with_glue() {
    let dir = TempDir::new("dns-referral");
    let s = start(&dir).await;
    for name in ["sub.example.com", "host.sub.example.com"] {
        let r = dns::udp(s.udp4, &Query::new(name, A)).await;
        assert_eq!(r.rcode(), NOERROR);
        assert!(!r.aa(), "a referral is not authoritative");
        assert!(r.answers().is_empty());
        assert_eq!(
            r.authority(),
            ["sub.example.com. 300 IN NS ns.sub.example.com."]
        );
        assert_eq!(r.additional(), ["ns.sub.example.com. 300 IN A 192.0.2.99"]);
    }
    // DS belongs to the parent side of the cut.
    let r = dns::udp(s.udp4, &Query::new("sub.example.com", DS)).await;
    assert!(r.aa());
    assert!(r.answers().is_empty());
    assert_eq!(r.authority(), [SOA_NEGATIVE]);
}

#[tokio::test]
async fn apex_ns_with_glue_and_flags() {
    let dir = TempDir::new("dns-apex");
    let s = start(&dir).await;
    let mut q = Query::new("example.com", NS);
    q.recursion_desired = true;
    let r = dns::udp(s.udp4, &q).await;
    assert!(r.aa() && r.rd() && !r.ra() && !r.tc());
    assert_eq!(
        r.answers(),
        [
            "example.com. 300 IN NS ns1.example.com.",
            "example.com. 300 IN NS ns2.example.com."
        ]
    );
    assert_eq!(
        r.additional(),
        [
            "ns1.example.com. 300 IN A 192.0.2.53",
            "ns1.example.com. 300 IN AAAA 2001:db8::53",
            "ns2.example.com. 300 IN A 198.51.100.53"
        ]
    );
}

#[tokio::test]
async fn refused_outside_zones_notimp_and_class() {
    let dir = TempDir::new("dns-refused");
    let s = start(&dir).await;
    let r = dns::udp(s.udp4, &Query::new("www.example.org", A).edns()).await;
    assert_eq!(r.rcode(), REFUSED);
    assert!(!r.aa());
    assert!(r.answers().is_empty() && r.authority().is_empty());
    assert_eq!(r.opt().map(|o| o.version), Some(0));

    let mut q = Query::new("www.example.com", A);
    q.opcode = 2;
    let r = dns::udp(s.udp4, &q).await;
    assert_eq!(r.rcode(), NOTIMP);
    assert_eq!(r.raw[2] >> 3 & 0xf, 2, "opcode echoed");

    let mut q = Query::new("www.example.com", A);
    q.qclass = 3;
    assert_eq!(dns::udp(s.udp4, &q).await.rcode(), REFUSED);
    assert_eq!(
        dns::udp(s.udp4, &Query::new("example.com", 252))
            .await
            .rcode(),
        REFUSED
    );
}

#[tokio::test]
async fn any_is_answered_minimally() {
    let dir = TempDir::new("dns-any");
    let s = start(&dir).await;
    let r = dns::udp(s.udp4, &Query::new("www.example.com", ANY)).await;
    assert!(r.aa());
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    // One RRset, the lowest type number, however many RRsets the name has.
    let r = dns::tcp(s.tcp4, &Query::new("example.com", ANY)).await;
    assert_eq!(
        r.answers(),
        [
            "example.com. 300 IN NS ns1.example.com.",
            "example.com. 300 IN NS ns2.example.com."
        ]
    );
}

#[tokio::test]
async fn query_case_is_echoed() {
    let dir = TempDir::new("dns-case");
    let s = start(&dir).await;
    let q = Query::new("WwW.ExAmPlE.CoM", A);
    for r in [dns::udp(s.udp4, &q).await, dns::tcp(s.tcp4, &q).await] {
        assert_eq!(r.question_name(), "WwW.ExAmPlE.CoM.");
        assert_eq!(r.answers(), ["WwW.ExAmPlE.CoM. 300 IN A 192.0.2.10"]);
    }
}

#[tokio::test]
async fn udp_size_is_honoured_and_truncation_keeps_subnet() {
    let dir = TempDir::new("dns-tc");
    let s = start(&dir).await;
    // About 900 bytes: over 512, under 1232.
    let r = dns::udp(s.udp4, &Query::new("big.example.com", TXT)).await;
    assert!(r.tc() && r.aa());
    assert!(r.raw.len() <= 512);
    assert!(r.answers().is_empty());
    let r = dns::udp(s.udp4, &Query::new("big.example.com", TXT).payload(1232)).await;
    assert!(!r.tc());
    assert_eq!(r.answers().len(), 4);
    let r = dns::udp(
        s.udp4,
        &Query::new("big.example.com", TXT)
            .payload(600)
            .subnet("1.2.4.0/24"),
    )
    .await;
    assert!(r.tc());
    assert!(r.raw.len() <= 600);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 0));
    assert_eq!(r.opt().map(|o| o.payload), Some(1232));

    // About 1.7 KB: truncated at any UDP size geoline sends, whole over TCP.
    let q = Query::new("huge.example.com", TXT)
        .payload(4096)
        .subnet("1.2.4.0/24");
    let r = dns::udp(s.udp4, &q).await;
    assert!(r.tc());
    assert!(r.raw.len() <= 1232);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 0));
    let r = dns::tcp(s.tcp4, &q).await;
    assert!(!r.tc());
    assert_eq!(r.answers().len(), 8);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 0));
}

#[tokio::test]
async fn tcp_answers_like_udp_with_subnet() {
    let dir = TempDir::new("dns-tcp-ecs");
    let s = start(&dir).await;
    let mut conn = Tcp::connect(s.tcp4).await;
    let r = conn
        .ask(&Query::new("www.example.com", A).subnet("1.2.4.0/24"))
        .await;
    assert!(r.aa() && !r.tc());
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 21));
    let r = conn
        .ask(&Query::new("nope.example.com", A).subnet("8.8.8.0/24"))
        .await;
    assert_eq!(r.rcode(), NXDOMAIN);
    assert_eq!(r.authority(), [SOA_NEGATIVE]);
    assert_eq!(r.subnet(), scoped(v4("8.8.8.0/24"), 0));
}

#[tokio::test]
async fn tcp_several_queries_per_connection_and_idle_timeout() {
    let dir = TempDir::new("dns-tcp");
    let s = start(&dir).await;
    let mut conn = Tcp::connect(s.tcp4).await;
    // Pipelined: three queries written before any answer is read.
    let queries: Vec<Query> = (0..3u16)
        .map(|i| {
            let mut q = Query::new("www.example.com", A);
            q.id = 100 + i;
            q
        })
        .collect();
    for q in &queries {
        conn.send_raw(&q.bytes()).await;
    }
    let mut ids = Vec::new();
    for _ in &queries {
        let raw = conn.recv_raw(Duration::from_secs(5)).await.expect("reply");
        let r = dns::Reply::parse(raw);
        assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
        ids.push(r.id());
    }
    ids.sort_unstable();
    assert_eq!(ids, [100, 101, 102]);
    // tcp_idle_timeout_secs = 1 in the test config.
    assert!(
        conn.closed_within(Duration::from_secs(4)).await,
        "idle connection closed"
    );
}

#[tokio::test]
async fn edns_version_and_malformed_subnet() {
    let dir = TempDir::new("dns-edns");
    let s = start(&dir).await;
    let mut q = Query::new("www.example.com", A).edns();
    if let Some(e) = q.edns.as_mut() {
        e.version = 1;
    }
    let r = dns::udp(s.udp4, &q).await;
    assert_eq!(r.rcode(), BADVERS);
    assert!(r.answers().is_empty());
    let opt = r.opt().expect("OPT");
    assert_eq!((opt.version, opt.extended_rcode), (0, 1));

    // Source /24 with four address bytes: RFC 7871 7.1.2 says FORMERR.
    let mut q = Query::new("www.example.com", A).edns();
    if let Some(e) = q.edns.as_mut() {
        e.options.push((8, vec![0, 1, 24, 0, 1, 2, 4, 0]));
    }
    let r = dns::udp(s.udp4, &q).await;
    assert_eq!(r.rcode(), FORMERR);
    assert!(r.opt().is_some());
    assert_eq!(r.subnet(), None);
    let r = dns::tcp(s.tcp4, &q).await;
    assert_eq!(r.rcode(), FORMERR);

    // Unknown options are ignored; the DO bit is copied.
    let mut q = Query::new("www.example.com", A).edns();
    if let Some(e) = q.edns.as_mut() {
        e.dnssec_ok = true;
        e.options.push((65001, vec![1, 2, 3]));
        e.options.push((10, vec![0; 8]));
    }
    let r = dns::udp(s.udp4, &q).await;
    assert_eq!(r.rcode(), NOERROR);
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    let opt = r.opt().expect("OPT");
    assert!(opt.dnssec_ok);
    assert!(opt.options.is_empty());
}

#[tokio::test]
async fn hostile_packets_never_stop_the_server() {
    let dir = TempDir::new("dns-hostile");
    let s = start(&dir).await;
    let good = Query::new("www.example.com", A)
        .subnet("1.2.4.0/24")
        .bytes();

    // Every truncation of a good query: silence below a header, FORMERR above.
    for end in 0..good.len() {
        if end < 12 {
            assert!(
                dns::udp_expect_silence(s.udp4, &good[..end]).await,
                "{end} bytes"
            );
        } else {
            let raw = dns::udp_raw_from("127.0.0.1:0", s.udp4, &good[..end])
                .await
                .expect("a reply");
            assert_eq!(raw[3] & 0x0f, FORMERR as u8, "{end} bytes");
        }
    }
    // Wrong section counts.
    for (index, value) in [(5, 0u8), (5, 2), (7, 1), (9, 1), (11, 2)] {
        let mut bad = good.clone();
        bad[index] = value;
        let raw = dns::udp_raw_from("127.0.0.1:0", s.udp4, &bad)
            .await
            .expect("a reply");
        assert_eq!(raw[3] & 0x0f, FORMERR as u8, "byte {index} = {value}");
    }
    // A compression pointer to itself.
    let mut looped = good[..12].to_vec();
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let raw = dns::udp_raw_from("127.0.0.1:0", s.udp4, &looped)
        .await
        .expect("a reply");
    assert_eq!(raw[3] & 0x0f, FORMERR as u8);
    // A response is never answered (reflection).
    let mut response = good.clone();
    response[2] |= 0x80;
    assert!(dns::udp_expect_silence(s.udp4, &response).await);

    // 64 KiB of garbage on TCP: an error or a closed connection, never a crash.
    let mut garbage = vec![0xffu8, 0xff];
    let mut x: u32 = 0x9e37_79b9;
    garbage.extend((0..65535).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x & 0x7f) as u8 // QR clear, so the server has to read it
    }));
    let mut conn = Tcp::connect(s.tcp4).await;
    let _ = conn.write_all(&garbage).await;
    if let Some(raw) = conn.recv_raw(Duration::from_secs(2)).await {
        assert_eq!(raw[3] & 0x0f, FORMERR as u8);
    }

    // And the next query is still answered, on both transports.
    let r = dns::udp(
        s.udp4,
        &Query::new("www.example.com", A).subnet("1.2.4.0/24"),
    )
    .await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    let r = dns::tcp(s.tcp4, &Query::new("www.example.com", A)).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
}

#[tokio::test]
async fn ip_location_db_layout_decides_lines_too() {
    let dir = TempDir::new("dns-ipldb");
    dir.write("example.com.zone", ZONE);
    dir.write("example.com.china.zone", CHINA);
    mmdb::write_ip_location_db(
        &dir.path().join("country.mmdb"),
        &[
            ("1.2.0.0/16", "CN"),
            ("8.8.8.0/24", "US"),
            ("240e::/20", "CN"),
        ],
    );
    let s = TestServer::start(&dir, Config::example()).await;
    let q = Query::new("www.example.com", A);
    let r = dns::udp(s.udp4, &q.clone().subnet("1.2.4.0/24")).await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    assert_eq!(r.subnet(), scoped(v4("1.2.4.0/24"), 16));
    let r = dns::udp(s.udp4, &q.clone().subnet("240e:1::/56")).await;
    assert_eq!(r.answers(), ["www.example.com. 60 IN A 203.0.113.10"]);
    assert_eq!(
        r.subnet(),
        Some((2, 56, 20, vec![0x24, 0x0e, 0, 1, 0, 0, 0]))
    );
    let r = dns::udp(s.udp4, &q.clone().subnet("8.8.8.0/24")).await;
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    // 1.3.0.0 to 127.x is all default here: 8.0.0.0/5 is the widest prefix in it.
    assert_eq!(r.subnet(), scoped(v4("8.8.8.0/24"), 5));
}

/// The test zone behind one UDP worker that lets datagrams gather for `coalesce_us`.
async fn start_one_worker(dir: &TempDir, coalesce_us: u64) -> TestServer {
    dir.write("example.com.zone", ZONE);
    dir.write("example.com.china.zone", CHINA);
    dir.write_bytes("country.mmdb", &site::cn_db());
    let config = Config::example().set(
        "[dns]",
        &[
            "udp_workers = 1",
            &format!("udp_coalesce_us = {coalesce_us}"),
        ],
    );
    TestServer::start(dir, config).await
}

#[tokio::test]
async fn udp_bursts_are_answered_in_order_with_and_without_coalescing() {
    const BURST: u16 = 300;
    for coalesce_us in [0, 200] {
        let dir = TempDir::new("dns-burst");
        let s = start_one_worker(&dir, coalesce_us).await;
        // Room for a whole burst of replies (the default, ~200 KiB, holds about 250).
        let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .expect("socket");
        client.set_recv_buffer_size(1 << 20).expect("buffer");
        client
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .expect("addr")
                    .into(),
            )
            .expect("bind");
        client.set_nonblocking(true).expect("nonblocking");
        let client =
            tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(client)).expect("tokio");
        // Three rounds: the second and third bursts reach a worker that may be sleeping
        // after the batches of the one before.
        for round in 0..3 {
            for id in 0..BURST {
                let mut q = Query::new("www.example.com", A).subnet(if id % 2 == 0 {
                    "1.2.4.0/24"
                } else {
                    "8.8.8.0/24"
                });
                q.id = id;
                client.send_to(&q.bytes(), s.udp4).await.expect("send");
            }
            let mut buf = vec![0u8; 4096];
            for id in 0..BURST {
                let (n, from) =
                    tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                        .await
                        .unwrap_or_else(|_| panic!("reply {id} of round {round}, {coalesce_us} µs"))
                        .expect("recv");
                assert_eq!(from, s.udp4);
                let r = dns::Reply::parse(buf[..n].to_vec());
                assert_eq!(r.id(), id, "round {round}, {coalesce_us} µs");
                let want = if id % 2 == 0 {
                    "www.example.com. 60 IN A 203.0.113.10"
                } else {
                    "www.example.com. 300 IN A 192.0.2.10"
                };
                assert_eq!(r.answers(), [want], "id {id}");
            }
        }
    }
}

#[tokio::test]
async fn udp_queries_longer_than_4096_bytes_are_dropped() {
    let dir = TempDir::new("dns-long");
    let s = start_one_worker(&dir, 200).await;
    // EDNS padding (option 12) makes a good query exactly `len` bytes long.
    let padded = |len: usize| {
        let mut q = Query::new("www.example.com", A).edns();
        let short = q.bytes().len() + 4;
        if let Some(e) = q.edns.as_mut() {
            e.options.push((12, vec![0; len - short]));
        }
        let bytes = q.bytes();
        assert_eq!(bytes.len(), len);
        bytes
    };
    let raw = dns::udp_raw_from("127.0.0.1:0", s.udp4, &padded(4096))
        .await
        .expect("a reply to 4096 bytes");
    let r = dns::Reply::parse(raw);
    assert_eq!(r.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    assert!(dns::udp_expect_silence(s.udp4, &padded(4097)).await);
}
