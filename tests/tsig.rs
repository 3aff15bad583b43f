//! TSIG end to end (RFC 8945): signed queries over real UDP and TCP sockets with each of the
//! six algorithms, every refusal the RFC prescribes, and an unknown key with no keys
//! configured at all. The client side is tests/common/tsig.rs, pinned here against vectors
//! computed with python3's `hmac` module so that geoline and the test cannot share a bug.

mod common;

use common::dns::{self, A, Query, Reply, TXT, Tcp};
use common::site::Config;
use common::tsig::{self, ALGORITHMS, TestKey};
use common::{TempDir, TestServer};

const ZONE: &str = r#"$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster 2026120701 7200 900 1209600 60
        NS   ns1
ns1     A    192.0.2.53
www     A    192.0.2.10
big     TXT  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
big     TXT  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
big     TXT  "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
big     TXT  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
big     TXT  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
"#;

/// "secret-secret-secret-secret-1234": the secret of every test key.
const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

/// The key `k-ALG` of each algorithm, as the client holds it.
fn keys() -> Vec<TestKey> {
    ALGORITHMS
        .iter()
        .map(|(config, wire, _)| TestKey::new(&format!("k-{config}"), wire, SECRET))
        .collect()
}

/// A server for example.com with one `[[key]]` per algorithm (the SHA-512 one from a BIND
/// key file, as `tsig-keygen` writes it).
async fn start(dir: &TempDir) -> TestServer {
    dir.write("example.com.zone", ZONE);
    dir.write(
        "ddns.key",
        &format!(
            "key \"k-hmac-sha512\" {{\n\talgorithm hmac-sha512;\n\tsecret \"{SECRET_B64}\";\n}};\n"
        ),
    );
    let mut config = Config::dns().zone("example.com.zone", &[]);
    for (name, _, _) in &ALGORITHMS[..5] {
        config = config.table(
            "[[key]]",
            &[
                &format!("name = \"k-{name}\""),
                &format!("algorithm = \"{name}\""),
                &format!("secret = \"{SECRET_B64}\""),
            ],
        );
    }
    let config = config.table("[[key]]", &[r#"bind_file = "ddns.key""#]);
    TestServer::start(dir, config).await
}

fn query(name: &str, qtype: u16) -> Query {
    let mut q = Query::new(name, qtype);
    q.recursion_desired = true;
    q
}

async fn udp_raw(server: std::net::SocketAddr, bytes: &[u8]) -> Reply {
    let raw = dns::udp_raw_from("127.0.0.1:0", server, bytes)
        .await
        .expect("a UDP reply");
    Reply::parse(raw)
}

async fn tcp_raw(server: std::net::SocketAddr, bytes: &[u8]) -> Reply {
    let mut tcp = Tcp::connect(server).await;
    tcp.send_raw(bytes).await;
    Reply::parse(
        tcp.recv_raw(std::time::Duration::from_secs(5))
            .await
            .expect("a TCP reply"),
    )
}

/// The request and response of tests/tsig vectors (see src/dns/tsig/tests.rs): the
/// independent signer must give python3's MACs.
#[test]
fn the_test_signer_matches_python_vectors() {
    const REQ: &str = "12340100000100000000000003777777076578616d706c6503636f6d0000010001";
    let expect = [
        "e2051ad7dde2b38fd71d895d74509a31",
        "2c3ad5110ae034f38789a50d71d88def593db25a",
        "71ba7d42ce456e4f480fc268ce45c082d2fdb3a2345192dab1caf86a",
        "c1069163c1fc9336edbb33a1c216c98fa5d863e03000c7add12100ff24faf287",
        "1b5aaebe2c09200c2f89658373598500e4aff82245cd7e5e11a91d39f89aa0f9cb929394d229e78423394917d98749e6",
        "61d1dc596092e5951263f620265a8eb61048c980cfad3ae666e3930b45eaabc58f6fc2c77f06cd2c61893dc810f64cd1f2e3a6bd96853feacc06688c85ff5672",
    ];
    let request: Vec<u8> = (0..REQ.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&REQ[i..i + 2], 16).expect("hex"))
        .collect();
    for ((_, wire, len), mac) in ALGORITHMS.iter().zip(expect) {
        let key = TestKey::new("test.key", wire, SECRET);
        let (_, got) = tsig::sign(&request, &key, 1_700_000_000);
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, mac, "{wire}");
        assert_eq!(got.len(), *len);
    }
}

#[tokio::test]
async fn signed_queries_are_answered_and_signed_with_every_algorithm_over_udp_and_tcp() {
    let dir = TempDir::new("tsig-ok");
    let server = start(&dir).await;
    for key in keys() {
        for tcp in [false, true] {
            for edns in [false, true] {
                let mut q = query("WWW.example.com", A);
                if edns {
                    q = q.edns();
                }
                let (signed, mac) = tsig::sign(&q.bytes(), &key, tsig::now());
                let reply = if tcp {
                    tcp_raw(server.tcp4, &signed).await
                } else {
                    udp_raw(server.udp4, &signed).await
                };
                let what = format!("{} tcp={tcp} edns={edns}", key.algorithm);
                assert_eq!(reply.rcode(), 0, "{what}");
                assert!(reply.aa(), "{what}");
                assert!(reply.rd(), "{what}: RD copied");
                assert_eq!(
                    reply.answers(),
                    ["WWW.example.com. 300 IN A 192.0.2.10"],
                    "{what}"
                );
                assert_eq!(reply.opt().is_some(), edns, "{what}");
                let t = tsig::verify_reply(&reply.raw, &key, &mac);
                assert_eq!((t.error, t.fudge, t.original_id), (0, 300, q.id), "{what}");
                assert!(t.time.abs_diff(tsig::now()) <= 2, "{what}");
            }
        }
    }
}

#[tokio::test]
async fn a_signed_query_is_never_answered_from_the_cache() {
    let dir = TempDir::new("tsig-cache");
    let server = start(&dir).await;
    let key = &keys()[3];
    let q = query("www.example.com", A).edns();
    // Unsigned first, twice: the UDP worker's cache now holds the answer.
    for _ in 0..2 {
        let plain = udp_raw(server.udp4, &q.bytes()).await;
        assert_eq!(plain.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
        assert!(tsig::reply_tsig(&plain.raw).is_none());
    }
    let (signed, mac) = tsig::sign(&q.bytes(), key, tsig::now());
    let reply = udp_raw(server.udp4, &signed).await;
    assert_eq!(reply.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    tsig::verify_reply(&reply.raw, key, &mac);
}

#[tokio::test]
async fn a_truncated_signed_response_stays_signed_and_fits() {
    let dir = TempDir::new("tsig-tc");
    let server = start(&dir).await;
    let key = &keys()[5];
    let q = query("big.example.com", TXT);
    let (signed, mac) = tsig::sign(&q.bytes(), key, tsig::now());
    let raw = dns::udp_raw_from("127.0.0.1:0", server.udp4, &signed)
        .await
        .expect("a reply");
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let reply = Reply::parse(raw);
    assert!(reply.tc());
    assert!(reply.answers().is_empty());
    tsig::verify_reply(&reply.raw, key, &mac);
    // Over TCP the whole RRset, signed.
    let reply = tcp_raw(server.tcp4, &signed).await;
    assert!(!reply.tc());
    assert_eq!(reply.answers().len(), 5);
    tsig::verify_reply(&reply.raw, key, &mac);
}

/// NOTAUTH (9) with the TSIG error, the question echoed, nothing else but the TSIG.
fn assert_notauth(reply: &Reply, error: u16, what: &str) -> tsig::ReplyTsig {
    assert_eq!(reply.rcode(), 9, "{what}: NOTAUTH");
    assert!(!reply.aa(), "{what}");
    assert!(
        reply.answers().is_empty() && reply.authority().is_empty(),
        "{what}"
    );
    assert_eq!(reply.question_name(), "www.example.com.", "{what}");
    let t = tsig::reply_tsig(&reply.raw).expect("a TSIG record");
    assert_eq!(t.error, error, "{what}");
    t
}

#[tokio::test]
async fn badkey_and_badsig_are_answered_unsigned() {
    let dir = TempDir::new("tsig-bad");
    let server = start(&dir).await;
    let unknown = TestKey::new("nobody.example", "hmac-sha256", SECRET);
    let wrong_algorithm = TestKey::new("k-hmac-sha256", "hmac-sha512", SECRET);
    let wrong_secret = TestKey::new("k-hmac-sha1", "hmac-sha1", b"not the secret");
    let cases = [
        (&unknown, 17, "unknown key"),
        (&wrong_algorithm, 17, "known name, other algorithm"),
        (&wrong_secret, 16, "wrong secret"),
    ];
    for (key, error, what) in cases {
        let q = query("www.example.com", A);
        let (signed, _) = tsig::sign(&q.bytes(), key, tsig::now());
        for reply in [
            udp_raw(server.udp4, &signed).await,
            tcp_raw(server.tcp4, &signed).await,
        ] {
            let t = assert_notauth(&reply, error, what);
            assert!(t.mac.is_empty(), "{what}: unsigned");
            assert_eq!(t.key_name, tsig::wire(&key.name));
        }
    }
}

#[tokio::test]
async fn an_unknown_key_gets_badkey_even_without_any_key_configured() {
    let dir = TempDir::new("tsig-nokeys");
    dir.write("example.com.zone", ZONE);
    let server = TestServer::start(&dir, Config::dns().zone("example.com.zone", &[])).await;
    let key = TestKey::new("acme.example", "hmac-md5.sig-alg.reg.int", SECRET);
    let q = query("www.example.com", A).edns();
    let (signed, _) = tsig::sign(&q.bytes(), &key, tsig::now());
    let reply = udp_raw(server.udp4, &signed).await;
    let t = assert_notauth(&reply, 17, "no keys at all");
    assert!(t.mac.is_empty());
    assert!(reply.opt().is_some(), "an EDNS request gets OPT back");
    // Unsigned queries are answered as before.
    let plain = udp_raw(server.udp4, &q.bytes()).await;
    assert_eq!(plain.rcode(), 0);
    assert_eq!(plain.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
}

#[tokio::test]
async fn badtime_is_signed_and_carries_the_server_time() {
    let dir = TempDir::new("tsig-time");
    let server = start(&dir).await;
    for key in keys() {
        let q = query("www.example.com", A);
        let skewed = tsig::now() - 1000;
        let (signed, mac) = tsig::sign(&q.bytes(), &key, skewed);
        let reply = tcp_raw(server.tcp4, &signed).await;
        assert_notauth(&reply, 18, key.algorithm);
        let t = tsig::verify_reply(&reply.raw, &key, &mac);
        assert_eq!(t.time, skewed, "the request's time signed");
        let server_time = t.other.iter().fold(0u64, |s, &b| s << 8 | u64::from(b));
        assert_eq!(t.other.len(), 6);
        assert!(server_time.abs_diff(tsig::now()) <= 2, "{server_time}");
    }
    // 290 s off is inside the fudge.
    let key = &keys()[3];
    let (signed, mac) = tsig::sign(&query("www.example.com", A).bytes(), key, tsig::now() + 290);
    let reply = udp_raw(server.udp4, &signed).await;
    assert_eq!(reply.rcode(), 0);
    tsig::verify_reply(&reply.raw, key, &mac);
}

#[tokio::test]
async fn truncated_macs_follow_the_rfc() {
    let dir = TempDir::new("tsig-trunc");
    let server = start(&dir).await;
    let key = &keys()[3];
    let q = query("www.example.com", A);
    // Half of SHA-256: allowed by the RFC, refused by a key that wants the full MAC.
    let (signed, mac) = tsig::sign_truncated(&q.bytes(), key, tsig::now(), Some(16));
    let reply = udp_raw(server.udp4, &signed).await;
    assert_notauth(&reply, 22, "BADTRUNC");
    tsig::verify_reply(&reply.raw, key, &mac);
    // Below half: FORMERR, no TSIG.
    let (signed, _) = tsig::sign_truncated(&q.bytes(), key, tsig::now(), Some(15));
    let reply = udp_raw(server.udp4, &signed).await;
    assert_eq!(reply.rcode(), 1);
    assert!(tsig::reply_tsig(&reply.raw).is_none());
}

#[tokio::test]
async fn a_tsig_that_is_not_the_last_record_is_formerr() {
    let dir = TempDir::new("tsig-last");
    let server = start(&dir).await;
    let key = &keys()[3];
    let (mut signed, _) = tsig::sign(&query("www.example.com", A).bytes(), key, tsig::now());
    // An OPT record after the TSIG.
    signed.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    signed[11] += 1;
    for reply in [
        udp_raw(server.udp4, &signed).await,
        tcp_raw(server.tcp4, &signed).await,
    ] {
        assert_eq!(reply.rcode(), 1, "FORMERR");
        assert!(reply.answers().is_empty());
        assert!(
            tsig::reply_tsig(&reply.raw).is_none(),
            "no TSIG in the FORMERR"
        );
        assert!(reply.opt().is_some());
    }
}
