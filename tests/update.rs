//! Dynamic updates (RFC 2136) against the real listeners: what an UPDATE gets over UDP and
//! TCP, the counters and the status it leaves.

mod common;

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use common::dns::{Tcp, udp_expect_silence, udp_raw_from};
use common::{TempDir, TestServer, http, site};

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// An UPDATE of `zone` adding a TXT record at `owner`.
fn add_txt(id: u16, zone: &str, owner: &str, value: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(name(zone), RecordType::SOA));
    let mut record = Record::from_rdata(name(owner), 120, RData::TXT(TXT::new(vec![value.into()])));
    record.dns_class = DNSClass::IN;
    m.add_authority(record);
    m.to_vec().expect("encodes")
}

fn parse(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).expect("a DNS message")
}

/// The zone section of a response, as (name, type).
fn zone_section(m: &Message) -> Vec<(String, RecordType)> {
    m.queries
        .iter()
        .map(|q| (q.name().to_string(), q.query_type()))
        .collect()
}

async fn server(dir: &TempDir, extra: &str) -> TestServer {
    let config = site::write(dir);
    TestServer::start(dir, format!("{config}\n{extra}")).await
}

async fn over_udp(server: SocketAddr, bytes: &[u8]) -> Message {
    parse(
        &udp_raw_from("127.0.0.1:0", server, bytes)
            .await
            .expect("a UDP reply"),
    )
}

async fn over_tcp(server: SocketAddr, bytes: &[u8]) -> Message {
    let mut tcp = Tcp::connect(server).await;
    tcp.send_raw(bytes).await;
    parse(
        &tcp.recv_raw(std::time::Duration::from_secs(5))
            .await
            .expect("a TCP reply"),
    )
}

#[tokio::test]
async fn an_unsigned_update_is_refused_over_udp_and_tcp_and_changes_nothing() {
    let dir = TempDir::new("update-unsigned");
    let server = server(&dir, "").await;
    let update = add_txt(
        0x5151,
        "example.com.",
        "_acme-challenge.example.com.",
        "token",
    );
    for reply in [
        over_udp(server.udp4, &update).await,
        over_tcp(server.tcp4, &update).await,
    ] {
        assert_eq!(reply.metadata.id, 0x5151);
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.metadata.op_code, OpCode::Update);
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
        assert!(!reply.metadata.authoritative);
        assert_eq!(
            zone_section(&reply),
            vec![("example.com.".to_string(), RecordType::SOA)]
        );
        assert!(reply.answers.is_empty() && reply.authorities.is_empty());
    }
    let query = common::dns::Query::new("_acme-challenge.example.com.", 16);
    let reply = common::dns::udp(server.udp4, &query).await;
    assert_eq!(reply.rcode(), 3, "still NXDOMAIN");
    // No journal was written for a refused update.
    assert!(!dir.path().join("example.com.jnl").exists());
}

#[tokio::test]
async fn a_zone_not_served_is_notauth_and_a_broken_message_formerr() {
    let dir = TempDir::new("update-notauth");
    let server = server(&dir, "").await;
    let elsewhere = add_txt(7, "example.org.", "x.example.org.", "v");
    assert_eq!(
        over_udp(server.udp4, &elsewhere)
            .await
            .metadata
            .response_code,
        ResponseCode::NotAuth
    );
    // A name below a zone's apex is not a zone either.
    let below = add_txt(8, "www.example.com.", "www.example.com.", "v");
    assert_eq!(
        over_tcp(server.tcp4, &below).await.metadata.response_code,
        ResponseCode::NotAuth
    );
    // Two zone sections: FORMERR.
    let mut two = Message::new(9, MessageType::Query, OpCode::Update);
    two.add_query(Query::query(name("example.com."), RecordType::SOA));
    two.add_query(Query::query(name("example.com."), RecordType::SOA));
    let reply = over_udp(server.udp4, &two.to_vec().expect("encodes")).await;
    assert_eq!(
        (reply.metadata.id, reply.metadata.response_code),
        (9, ResponseCode::FormErr)
    );
    // Cut short in the update section: FORMERR with the ID.
    let cut = add_txt(10, "example.com.", "a.example.com.", "v");
    let reply = over_udp(server.udp4, &cut[..cut.len() - 3]).await;
    assert_eq!(
        (reply.metadata.id, reply.metadata.response_code),
        (10, ResponseCode::FormErr)
    );
    // A response is never answered.
    let mut response = add_txt(11, "example.com.", "a.example.com.", "v");
    response[2] |= 0x80;
    assert!(udp_expect_silence(server.udp4, &response).await);
}

#[tokio::test]
async fn updates_are_counted_by_zone_key_and_result_and_the_status_shows_the_journal() {
    let dir = TempDir::new("update-metrics");
    let server = server(&dir, "").await;
    let admin = server.admin.expect("admin");
    over_udp(
        server.udp4,
        &add_txt(1, "example.com.", "a.example.com.", "v"),
    )
    .await;
    over_tcp(
        server.tcp4,
        &add_txt(2, "example.com.", "a.example.com.", "v"),
    )
    .await;
    over_udp(
        server.udp4,
        &add_txt(3, "example.org.", "a.example.org.", "v"),
    )
    .await;
    let metrics = http::get(admin, "/metrics", None).await.body;
    assert!(
        metrics.contains(
            r#"geoline_dns_updates_total{zone="example.com.",key="-",result="refused"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"geoline_dns_updates_total{zone="-",key="-",result="notauth"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"geoline_zone_journal_entries{zone="example.com."} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"geoline_zone_journal_bytes{zone="example.com."} 0"#),
        "{metrics}"
    );
    let status = http::get(admin, "/status", None).await.json();
    let updates = &status["zones"][0]["updates"];
    assert_eq!(updates["writable"], false);
    assert_eq!(updates["journal_entries"], 0);
    assert_eq!(
        updates["journal"],
        dir.path().join("example.com.jnl").display().to_string()
    );
    assert!(
        updates["last_update"].is_null(),
        "an unsigned update is not the zone's"
    );
}
