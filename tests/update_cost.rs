//! What dynamic updates leave alone: the journal written beside a zone file is not a
//! change of the zone for the file watcher, and an edit of that file is still reloaded,
//! with the journal replayed on top.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use common::dns::udp_raw_from;
use common::site::{self, Config};
use common::tsig::{self, TestKey};
use common::{TempDir, TestServer, http};

/// "secret-secret-secret-secret-1234", base64.
const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
const CHALLENGE: &str = "_acme-challenge.example.com.";

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// A signed UPDATE adding the TXT record `value` at the ACME challenge name: NOERROR.
async fn add_challenge(server: SocketAddr, key: &TestKey, id: u16, value: &str) {
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(name("example.com."), RecordType::SOA));
    m.add_authority(Record::from_rdata(
        name(CHALLENGE),
        120,
        RData::TXT(TXT::new(vec![value.into()])),
    ));
    let (request, mac) = tsig::sign(&m.to_vec().expect("encodes"), key, tsig::now());
    let raw = udp_raw_from("127.0.0.1:0", server, &request)
        .await
        .expect("a reply");
    let reply = Message::from_vec(&raw).expect("a DNS message");
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{value}"
    );
    tsig::verify_reply(&raw, key, &mac);
}

/// The answers' data for `owner`/`qtype`.
async fn answers(server: SocketAddr, owner: &str, qtype: u16) -> Vec<String> {
    common::dns::udp(server, &common::dns::Query::new(owner, qtype))
        .await
        .answer_data()
}

async fn serial(server: SocketAddr) -> u32 {
    let reply = common::dns::udp(server, &common::dns::Query::new("example.com.", 6)).await;
    match reply.message.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    }
}

/// `geoline_zone_reloads_total{...,result="success"}` of the zone file.
async fn zone_reloads(admin: SocketAddr) -> u64 {
    let metrics = http::get(admin, "/metrics", None).await.body;
    metrics
        .lines()
        .find(|l| {
            l.starts_with("geoline_zone_reloads_total{")
                && l.contains("example.com.zone")
                && l.contains(r#"result="success""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no zone reload counter:\n{metrics}"))
}

#[tokio::test]
async fn a_zone_file_edited_beside_its_journal_is_reloaded_and_the_journal_alone_is_not() {
    let dir = TempDir::new("update-cost-watch");
    dir.write("example.com.zone", site::ZONE);
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .admin()
        .table("[reload]", &["debounce_ms = 50"])
        .table(
            "[[key]]",
            &[
                r#"name = "acme""#,
                r#"algorithm = "hmac-sha256""#,
                &format!("secret = {SECRET_B64:?}"),
            ],
        )
        .table("[update]", &["rate = 0"])
        .table(
            "[[update.grant]]",
            &[r#"key = "acme""#, r#"zones = ["example.com"]"#],
        );
    let server = TestServer::start(&dir, config).await;
    let admin = server.admin.expect("admin");
    let key = TestKey::new("acme", "hmac-sha256", SECRET);
    let reloads = zone_reloads(admin).await;

    for i in 0..5u16 {
        add_challenge(server.udp4, &key, i, &format!("token-{i}")).await;
    }
    // The journal is in the zone file's directory, and every update wrote to it.
    let journal = dir.path().join("example.com.jnl");
    assert!(std::fs::metadata(&journal).expect("the journal").len() > 0);
    assert_eq!(serial(server.udp4).await, 2026112201 + 5);
    // Well past the debounce: the journal's writes reloaded nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(zone_reloads(admin).await, reloads);

    // An edit of the zone file beside it, with a newer serial, is reloaded...
    let edited = site::ZONE
        .replace("2026112201", "2026120700")
        .replace("www  A   192.0.2.10", "www  A   192.0.2.99");
    assert_ne!(edited, site::ZONE);
    dir.write("example.com.zone", &edited);
    let deadline = Instant::now() + site::WATCH_LIMIT;
    while serial(server.udp4).await != 2026120700 {
        assert!(Instant::now() < deadline, "the edit was not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(zone_reloads(admin).await, reloads + 1);
    assert_eq!(
        answers(server.udp4, "www.example.com.", 1).await,
        ["192.0.2.99"]
    );
    // ...with the journal replayed on top: the five challenge records are still there.
    let mut txt = answers(server.udp4, CHALLENGE, 16).await;
    txt.sort();
    let expected: Vec<String> = (0..5).map(|i| format!("token-{i}")).collect();
    assert_eq!(txt, expected);
}
