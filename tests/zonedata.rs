//! Zone data as loaded and served end to end: record types beyond hickory's zone-file
//! parser (DNSSEC, DNAME, RFC 3597 generic data), character-strings over 255 bytes, each
//! answered over real UDP and TCP sockets with the RDATA bytes compared exactly.

mod common;

use common::dns::{self, Query, TXT};
use common::site::Config;
use common::{TempDir, TestServer};

const NOERROR: u16 = 0;

/// A 410-byte DKIM key written as one string, as DKIM tools print it.
fn dkim_key() -> String {
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".repeat(10)[..410].to_string()
}

fn zone() -> String {
    format!(
        r#"$ORIGIN example.com.
$TTL 300
@       SOA  ns1 hostmaster 1 7200 900 1209600 60
        NS   ns1
        DNSKEY 257 3 13 ( AQID
                          BAUG ) ; split over lines, as signers write keys
        NSEC3PARAM 1 0 0 aabb
ns1     A    192.0.2.53
sel._domainkey TXT "v=DKIM1; k=rsa; p={key}"
sub     NS   ns.sub
        DS   60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
ns.sub  A    192.0.2.99
old     DNAME new.example.net.
t       TYPE65280 \# 4 0a000001
        TYPE65534 \# 0
        RRSIG A 13 2 300 20261231000000 20261201000000 12345 example.com. AQID
        NSEC y.example.com. A RRSIG NSEC TYPE65280
        CDS  0 0 0 00
        CDNSKEY 0 3 0 AA==
        A    \# 4 c0000207
        SPF  "v=spf1 -all"
        URI  10 1 "https://example.com/"
        TLSA 3 1 1 0a0b0c
        SSHFP 4 2 0a0b0c
        CAA  0 issue "letsencrypt.org"
        NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .
        OPENPGPKEY AQID
        HTTPS 1 . alpn=h2
        ZONEMD 1 1 1 0a0b
h3      NSEC3 1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG
"#,
        key = dkim_key()
    )
}

async fn start(dir: &TempDir) -> TestServer {
    dir.write("example.com.zone", &zone());
    TestServer::start(dir, Config::dns().zone("example.com.zone", &[])).await
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Asks (name, type) over UDP with EDNS and over TCP; both get AA and exactly `expected`.
/// The replies are read raw: hickory's decoder refuses empty RDATA, which RFC 3597 allows.
async fn assert_served(s: &TestServer, name: &str, qtype: u16, expected: &[Vec<u8>]) {
    let q = Query::new(name, qtype).edns();
    let udp = dns::udp_raw_from("127.0.0.1:0", s.udp4, &q.bytes())
        .await
        .expect("a UDP reply");
    let mut tcp = dns::Tcp::connect(s.tcp4).await;
    tcp.send_raw(&q.bytes()).await;
    let tcp = tcp
        .recv_raw(std::time::Duration::from_secs(5))
        .await
        .expect("a TCP reply");
    for (transport, raw) in [("udp", udp), ("tcp", tcp)] {
        let context = format!("{transport} {name} {qtype}");
        assert_eq!(raw[3] & 0x0f, 0, "NOERROR: {context}");
        assert_eq!(raw[2] & 0x06, 0x04, "AA, not TC: {context}");
        let want: Vec<(u16, Vec<u8>)> = expected.iter().map(|b| (qtype, b.clone())).collect();
        assert_eq!(dns::answer_rdata(&raw), want, "{context}");
    }
}

#[tokio::test]
async fn a_dkim_key_written_as_one_long_string_is_served_in_255_byte_pieces() {
    let dir = TempDir::new("zonedata-dkim");
    let s = start(&dir).await;
    let text = format!("v=DKIM1; k=rsa; p={}", dkim_key());
    assert_eq!(text.len(), 428);
    let mut rdata = vec![255];
    rdata.extend(&text.as_bytes()[..255]);
    rdata.push(173);
    rdata.extend(&text.as_bytes()[255..]);
    assert_served(&s, "sel._domainkey.example.com", TXT, &[rdata]).await;
    // Without EDNS too (the answer fits in 512 bytes), and decoded as a resolver does.
    let q = Query::new("sel._domainkey.example.com", TXT);
    let r = dns::udp(s.udp4, &q).await;
    assert!(r.aa() && !r.tc(), "{:?}", r.message);
    assert_eq!(r.rcode(), NOERROR);
    let r = dns::tcp(s.tcp4, &q).await;
    assert_eq!(r.answers().len(), 1);
    // What a DKIM verifier does with it: concatenate the strings.
    match &r.message.answers[0].data {
        hickory_proto::rr::RData::TXT(txt) => assert_eq!(txt.txt_data.concat(), text.as_bytes()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_record_type_a_zone_file_holds_is_served_byte_for_byte() {
    let dir = TempDir::new("zonedata-types");
    let s = start(&dir).await;
    let t = "t.example.com";
    let cases: Vec<(&str, u16, Vec<Vec<u8>>)> = vec![
        ("example.com", 48, vec![hex("0101030d010203040506")]),
        ("example.com", 51, vec![hex("0100000002aabb")]),
        (
            "sub.example.com",
            43,
            vec![hex("ec4505012bb183af5f22588179a53b0a98631fad1a292118")],
        ),
        (
            "old.example.com",
            39,
            vec![b"\x03new\x07example\x03net\x00".to_vec()],
        ),
        (t, 65280, vec![hex("0a000001")]),
        (t, 65534, vec![vec![]]),
        (
            t,
            46,
            vec![
                [
                    // 2026-12-31 and 2026-12-01 00:00:00 UTC: date -u -d ... +%s
                    hex("0001 0d02 0000012c 6b359b00 6b0e0e00 3039"
                        .replace(' ', "")
                        .as_str()),
                    b"\x07example\x03com\x00".to_vec(),
                    vec![1, 2, 3],
                ]
                .concat(),
            ],
        ),
        (
            t,
            47,
            vec![
                [
                    b"\x01y\x07example\x03com\x00".to_vec(),
                    hex("0006400000000003"),
                    hex("ff0180"),
                ]
                .concat(),
            ],
        ),
        (t, 59, vec![hex("0000000000")]),
        (t, 60, vec![hex("0000030000")]),
        (t, 1, vec![hex("c0000207")]),
        (t, 99, vec![b"\x0bv=spf1 -all".to_vec()]),
        (
            t,
            256,
            vec![b"\x00\x0a\x00\x01https://example.com/".to_vec()],
        ),
        (t, 52, vec![hex("0301010a0b0c")]),
        (t, 44, vec![hex("04020a0b0c")]),
        (t, 257, vec![b"\x00\x05issueletsencrypt.org".to_vec()]),
        (
            t,
            35,
            vec![
                [
                    hex("0064000a"),
                    b"\x01u\x07E2U+sip\x1b!^.*$!sip:info@example.com!\x00".to_vec(),
                ]
                .concat(),
            ],
        ),
        (t, 61, vec![vec![1, 2, 3]]),
        (t, 65, vec![hex("00010000010003026832")]),
        (
            t,
            63,
            vec![hex("00000001 01 01 0a0b".replace(' ', "").as_str())],
        ),
        (
            "h3.example.com",
            50,
            vec![
                [
                    hex("0101000c04aabbccdd14"),
                    // base32hex 2vptu5timamqttgl4luu9kg21e0aor3s (RFC 4648 7), decoded by Python's base64
                    hex("17f3df17b2b2adaef615257de4d2020b80ac6c7c"),
                    hex("0006400000000002"),
                ]
                .concat(),
            ],
        ),
    ];
    for (name, qtype, expected) in &cases {
        assert_served(&s, name, *qtype, expected).await;
    }
}
