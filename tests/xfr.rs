//! Zone transfers out (AXFR, IXFR) and NOTIFY out, against the real listeners: the line a
//! key selects, every message signed, the refusals, IXFR from updates and from a reloaded
//! file, the fallback to the whole zone, a secondary that stops reading, and NOTIFY retried
//! until acknowledged. The TSIG checks are tests/common/tsig.rs's, written apart from
//! geoline's.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

use common::dns::{Query, Tcp, udp_raw_from};
use common::site::Config;
use common::tsig::{self, TestKey};
use common::{TempDir, TestServer, http};
use geoline::internal::{Target, Trigger};

const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
const SERIAL: u32 = 2026120701;
/// TXT records in the zone beyond the fixed ones: enough for several 64 KiB messages.
const FILLER: usize = 4000;

fn key(name: &str) -> TestKey {
    TestKey::new(name, "hmac-sha256", SECRET)
}

fn zone_text(serial: u32, www: &str, filler: usize) -> String {
    let mut z = format!(
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A {www}\n"
    );
    for i in 0..filler {
        z.push_str(&format!(
            "h{i} TXT \"filler record number {i} padding padding padding padding\"\n"
        ));
    }
    z
}

const OVERLAY: &str = "$ORIGIN example.com.\n$TTL 60\nwww A 203.0.113.10\ncn A 203.0.113.20\n";

/// example.com with a china overlay (the china line: 10.0.0.0/8), keys per line, an
/// update key, unsigned transfers from 127.0.0.1 only, and other.test without transfers.
fn config(dir: &TempDir, filler: usize, extra_transfer: &[&str]) -> Config {
    dir.write("example.com.zone", &zone_text(SERIAL, "192.0.2.10", filler));
    dir.write("example.com.china.zone", OVERLAY);
    dir.write(
        "other.test.zone",
        "$ORIGIN other.test.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    let mut transfer = vec![
        r#"transfer.keys = { "china-xfr" = "china", "default-xfr" = "default" }"#,
        r#"transfer.networks = ["127.0.0.1"]"#,
    ];
    transfer.extend_from_slice(extra_transfer);
    let mut c = Config::dns()
        .admin()
        .line("china", &[r#"cidrs = ["10.0.0.0/8"]"#])
        .zone("example.com.zone", &[("china", "example.com.china.zone")])
        .set("[[zone]]", &transfer)
        .zone("other.test.zone", &[]);
    for k in ["china-xfr", "default-xfr", "upd"] {
        c = c.table(
            "[[key]]",
            &[
                &format!("name = \"{k}\""),
                "algorithm = \"hmac-sha256\"",
                &format!("secret = \"{SECRET_B64}\""),
            ],
        );
    }
    c.table(
        "[[update.grant]]",
        &[r#"key = "upd""#, r#"zones = ["example.com"]"#],
    )
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn ixfr_query(id: u16, serial: u32) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(HQuery::query(name("example.com."), RecordType::IXFR));
    let soa = SOA::new(
        name("ns1.example.com."),
        name("hostmaster.example.com."),
        serial,
        0,
        0,
        0,
        0,
    );
    let mut r = Record::from_rdata(name("example.com."), 0, RData::SOA(soa));
    r.dns_class = DNSClass::IN;
    m.add_authority(r);
    m.to_vec().expect("encodes")
}

fn axfr_query(zone: &str) -> Vec<u8> {
    Query::new(zone, 252).bytes()
}

/// Sends `request` on a new connection from `from` and reads every message until the
/// server has nothing more to say (a pause).
async fn exchange(server: SocketAddr, from: &str, request: &[u8]) -> Vec<Vec<u8>> {
    let mut tcp = Tcp::connect_from(from, server).await;
    tcp.send_raw(request).await;
    let mut messages = Vec::new();
    let first = tcp
        .recv_raw(Duration::from_secs(5))
        .await
        .expect("a first message");
    messages.push(first);
    while let Some(m) = tcp.recv_raw(Duration::from_millis(400)).await {
        messages.push(m);
    }
    messages
}

fn parse(raw: &[u8]) -> Message {
    Message::from_vec(raw).expect("a DNS message")
}

/// Every answer record of every message, as text.
fn records(messages: &[Vec<u8>]) -> Vec<String> {
    messages
        .iter()
        .flat_map(|m| parse(m).answers.clone())
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

fn soa_text(serial: u32) -> String {
    format!(
        "example.com. 300 SOA ns1.example.com. hostmaster.example.com. {serial} 7200 900 1209600 60"
    )
}

fn rcode(messages: &[Vec<u8>]) -> u16 {
    u16::from(parse(&messages[0]).response_code)
}

#[tokio::test]
async fn axfr_sends_the_view_of_the_line_its_key_selects_every_message_signed() {
    let dir = TempDir::new("xfr-axfr");
    let server = TestServer::start(&dir, config(&dir, FILLER, &[])).await;
    let mut views = Vec::new();
    for k in ["china-xfr", "default-xfr"] {
        let key = key(k);
        let (request, mac) = tsig::sign(&axfr_query("example.com."), &key, tsig::now());
        let messages = exchange(server.tcp4, "127.0.0.9:0", &request).await;
        assert!(messages.len() > 3, "{k}: {} messages", messages.len());
        let signatures = tsig::verify_stream(&messages, &key, &mac);
        assert_eq!(signatures.len(), messages.len());
        for (i, m) in messages.iter().enumerate() {
            let m = parse(m);
            assert!(m.authoritative && m.message_type == MessageType::Response);
            assert_eq!(m.id, 0x4242);
            assert_eq!(u16::from(m.response_code), 0);
            // The question in the first message only, as Knot and BIND send it.
            assert_eq!(m.queries.len(), usize::from(i == 0), "message {i}");
        }
        // Large messages: the first ones are filled towards 64 KiB, not 16.
        assert!(messages[0].len() > 48 * 1024, "{}", messages[0].len());
        let list = records(&messages);
        assert_eq!(list.first(), Some(&soa_text(SERIAL)));
        assert_eq!(list.last(), Some(&soa_text(SERIAL)));
        assert_eq!(list.iter().filter(|r| r.contains(" SOA ")).count(), 2);
        let unique: BTreeSet<&String> = list.iter().collect();
        assert_eq!(unique.len(), list.len() - 1, "no record twice but the SOA");
        views.push(list);
    }
    let (china, default) = (&views[0], &views[1]);
    assert_eq!(default.len(), FILLER + 3 + 2);
    assert!(default.contains(&"www.example.com. 300 A 192.0.2.10".to_string()));
    assert!(!default.iter().any(|r| r.contains("203.0.113.")));
    assert_eq!(china.len(), FILLER + 4 + 2);
    assert!(china.contains(&"www.example.com. 60 A 203.0.113.10".to_string()));
    assert!(china.contains(&"cn.example.com. 60 A 203.0.113.20".to_string()));
    assert!(!china.contains(&"www.example.com. 300 A 192.0.2.10".to_string()));
    assert!(default.contains(&"example.com. 300 NS ns1.example.com.".to_string()));

    // Unsigned from an allowed network: the default line, nothing signed.
    let messages = exchange(server.tcp4, "127.0.0.1:0", &axfr_query("example.com.")).await;
    assert_eq!(records(&messages), *default);
    assert!(messages.iter().all(|m| tsig::reply_tsig(m).is_none()));

    // Counted by zone, line and result.
    let metrics = http::get(server.admin.expect("admin"), "/metrics", None).await;
    assert!(
        metrics.body.contains(
            "geoline_xfr_requests_total{zone=\"example.com.\",line=\"china\",result=\"axfr\"} 1"
        ),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains(
        "geoline_xfr_requests_total{zone=\"example.com.\",line=\"default\",result=\"axfr\"} 2"
    ));
}

#[tokio::test]
async fn transfers_are_refused_as_bind_and_knot_refuse_them() {
    let dir = TempDir::new("xfr-refused");
    let server = TestServer::start(&dir, config(&dir, 0, &[])).await;
    let single = |messages: Vec<Vec<u8>>| {
        assert_eq!(messages.len(), 1);
        messages
    };
    // Unsigned from outside `networks`.
    let m = single(exchange(server.tcp4, "127.0.0.2:0", &axfr_query("example.com.")).await);
    assert_eq!(rcode(&m), 5, "REFUSED");
    assert!(parse(&m[0]).answers.is_empty());
    // Signed with a key that may update but is given no line: REFUSED, signed.
    let upd = key("upd");
    let (request, mac) = tsig::sign(&axfr_query("example.com."), &upd, tsig::now());
    let m = single(exchange(server.tcp4, "127.0.0.1:0", &request).await);
    assert_eq!(rcode(&m), 5, "REFUSED");
    tsig::verify_reply(&m[0], &upd, &mac);
    // An unknown key: NOTAUTH with BADKEY, before any transfer rule.
    let stranger = key("stranger");
    let (request, _) = tsig::sign(&axfr_query("example.com."), &stranger, tsig::now());
    let m = single(exchange(server.tcp4, "127.0.0.1:0", &request).await);
    assert_eq!(rcode(&m), 9, "NOTAUTH");
    assert_eq!(tsig::reply_tsig(&m[0]).expect("a TSIG").error, 17);
    // A zone not served: NOTAUTH; a zone without a transfer table: REFUSED.
    let m = single(exchange(server.tcp4, "127.0.0.1:0", &axfr_query("example.org.")).await);
    assert_eq!(rcode(&m), 9, "NOTAUTH");
    let m = single(exchange(server.tcp4, "127.0.0.1:0", &axfr_query("other.test.")).await);
    assert_eq!(rcode(&m), 5, "REFUSED");
    // A name inside the zone is not a zone: NOTAUTH.
    let m = single(exchange(server.tcp4, "127.0.0.1:0", &axfr_query("www.example.com.")).await);
    assert_eq!(rcode(&m), 9, "NOTAUTH");
    // AXFR over UDP: FORMERR, as BIND answers it.
    let reply = udp_raw_from("127.0.0.1:0", server.udp4, &axfr_query("example.com."))
        .await
        .expect("a UDP reply");
    assert_eq!(u16::from(parse(&reply).response_code), 1, "FORMERR");
}

/// An UPDATE adding a TXT record, signed with `upd`.
fn add_txt(owner: &str, value: &str) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Update);
    m.add_query(HQuery::query(name("example.com."), RecordType::SOA));
    let mut record = Record::from_rdata(name(owner), 120, RData::TXT(TXT::new(vec![value.into()])));
    record.dns_class = DNSClass::IN;
    m.add_authority(record);
    tsig::sign(&m.to_vec().expect("encodes"), &key("upd"), tsig::now()).0
}

async fn serial(server: &TestServer) -> u32 {
    let reply = common::dns::udp(server.udp4, &Query::new("example.com.", 6)).await;
    match reply.message.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    }
}

/// The IXFR answer from `from` for the holder of `key` (none: unsigned from 127.0.0.1),
/// asked until it is incremental (the history records a new snapshot a moment after it
/// is served) or 5 s passed.
async fn ixfr(server: &TestServer, key: Option<&TestKey>, from: u32) -> Vec<String> {
    let started = Instant::now();
    loop {
        let request = ixfr_query(0x1f1f, from);
        let messages = match key {
            Some(key) => {
                let (request, mac) = tsig::sign(&request, key, tsig::now());
                let messages = exchange(server.tcp4, "127.0.0.1:0", &request).await;
                tsig::verify_stream(&messages, key, &mac);
                messages
            }
            None => exchange(server.tcp4, "127.0.0.1:0", &request).await,
        };
        let list = records(&messages);
        let incremental = list.get(1).is_some_and(|r| r.contains(" SOA "));
        if incremental || started.elapsed() > Duration::from_secs(5) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ixfr_carries_updates_and_file_edits_per_line_and_falls_back_to_the_whole_zone() {
    let dir = TempDir::new("xfr-ixfr");
    let server = TestServer::start(&dir, config(&dir, 3, &[])).await;
    let s0 = serial(&server).await;
    assert_eq!(s0, SERIAL);

    // A dynamic update: the journal's change, as a difference.
    let mut tcp = Tcp::connect(server.tcp4).await;
    tcp.send_raw(&add_txt("new.example.com.", "hello")).await;
    let reply = parse(&tcp.recv_raw(Duration::from_secs(5)).await.expect("reply"));
    assert_eq!(u16::from(reply.response_code), 0, "the update is applied");
    let s1 = serial(&server).await;
    assert!(s1 != s0);
    assert_eq!(
        ixfr(&server, None, s0).await,
        [
            soa_text(s1),
            soa_text(s0),
            soa_text(s1),
            "new.example.com. 120 TXT hello".to_string(),
            soa_text(s1),
        ]
    );

    // The base file edited (a new serial, www moved) and reloaded: the difference of the
    // data, on the default line; the china line's overlay hides www, so its difference
    // is the serial alone.
    let s2 = 2026121001;
    dir.write("example.com.zone", &zone_text(s2, "192.0.2.11", 3));
    server
        .running
        .reloader
        .reload(Target::Zone(0), Trigger::Admin)
        .await
        .expect("reload");
    let now = serial(&server).await;
    assert_eq!(now, s2);
    assert_eq!(
        ixfr(&server, None, s1).await,
        [
            soa_text(s2),
            soa_text(s1),
            "www.example.com. 300 A 192.0.2.10".to_string(),
            soa_text(s2),
            "www.example.com. 300 A 192.0.2.11".to_string(),
            soa_text(s2),
        ]
    );
    assert_eq!(
        ixfr(&server, Some(&key("china-xfr")), s1).await,
        [soa_text(s2), soa_text(s1), soa_text(s2), soa_text(s2)]
    );
    // Two steps at once, from the first serial.
    let both = ixfr(&server, None, s0).await;
    assert_eq!(both.len(), 9, "{both:?}");
    assert_eq!(both[1], soa_text(s0));
    assert_eq!(both[2], soa_text(s1));
    assert_eq!(both[4], soa_text(s1));

    // A serial the history does not hold (older than it reaches, or never served): the
    // whole zone, AXFR-style.
    let whole = records(&exchange(server.tcp4, "127.0.0.1:0", &ixfr_query(3, s0 - 5)).await);
    assert_eq!(whole.first(), Some(&soa_text(s2)));
    // Not differences: no old SOA after the first, the records themselves.
    assert!(!whole[1].contains(" SOA "), "{whole:?}");
    assert!(whole.contains(&"example.com. 300 NS ns1.example.com.".to_string()));
    assert_eq!(whole.last(), Some(&soa_text(s2)));
    assert_eq!(whole.len(), 3 + 3 + 1 + 2);
    // Up to date: the current SOA alone.
    let current = exchange(server.tcp4, "127.0.0.1:0", &ixfr_query(4, s2)).await;
    assert_eq!(records(&current), [soa_text(s2)]);
    // Over UDP: the current SOA alone, which sends the requester to TCP (RFC 1995 2).
    let reply = udp_raw_from("127.0.0.1:0", server.udp4, &ixfr_query(5, s0))
        .await
        .expect("a UDP reply");
    let reply = parse(&reply);
    assert_eq!(u16::from(reply.response_code), 0);
    assert!(reply.authoritative);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.answers[0].record_type(), RecordType::SOA);
    // From outside the networks, over UDP too: REFUSED.
    let reply = udp_raw_from("127.0.0.2:0", server.udp4, &ixfr_query(6, s0))
        .await
        .expect("a UDP reply");
    assert_eq!(u16::from(parse(&reply).response_code), 5);

    let metrics = http::get(server.admin.expect("admin"), "/metrics", None).await;
    // (The polling above may have met a snapshot the history had not recorded yet: the
    // whole zone then, counted as ixfr_full too.)
    for line in [
        "geoline_xfr_requests_total{zone=\"example.com.\",line=\"china\",result=\"ixfr\"} 1",
        "geoline_xfr_requests_total{zone=\"example.com.\",line=\"default\",result=\"ixfr_full\"} ",
        "geoline_xfr_requests_total{zone=\"example.com.\",line=\"default\",result=\"ixfr_current\"} 1",
        "geoline_xfr_requests_total{zone=\"example.com.\",line=\"default\",result=\"ixfr_udp_soa\"} 1",
    ] {
        assert!(metrics.body.contains(line), "{line}\n{}", metrics.body);
    }
}

#[tokio::test]
async fn a_secondary_that_stops_reading_holds_one_connection_until_the_write_timeout() {
    let dir = TempDir::new("xfr-stall");
    let config = config(&dir, 20_000, &[]).set("[dns]", &["tcp_read_timeout_secs = 1"]);
    let server = TestServer::start(&dir, config).await;
    // A client with a small receive window that asks and then does not read.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let mut stalled = socket.connect(server.tcp4).await.expect("connect");
    let request = axfr_query("example.com.");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stalled
        .write_all(&(request.len() as u16).to_be_bytes())
        .await
        .expect("write");
    stalled.write_all(&request).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Everyone else is answered meanwhile.
    let reply = common::dns::tcp(server.tcp4, &Query::new("www.example.com.", 1)).await;
    assert_eq!(reply.answers(), ["www.example.com. 300 IN A 192.0.2.10"]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // What the stalled client finds: part of the transfer, then the end of the stream,
    // without the closing SOA.
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server closed the connection");
    let mut at = 0;
    let mut soas = 0;
    let mut complete_messages = 0;
    while at + 2 <= got.len() {
        let len = usize::from(u16::from_be_bytes([got[at], got[at + 1]]));
        let Some(body) = got.get(at + 2..at + 2 + len) else {
            break;
        };
        soas += parse(body)
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        complete_messages += 1;
        at += 2 + len;
    }
    assert!(complete_messages >= 1);
    assert_eq!(soas, 1, "the transfer was cut: no closing SOA");
    let metrics = http::get(server.admin.expect("admin"), "/metrics", None).await;
    assert!(
        metrics.body.contains("reason=\"write_timeout\"} 1"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn a_new_serial_is_notified_signed_and_retried_until_acknowledged() {
    let dir = TempDir::new("xfr-notify");
    let secondary = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let at = secondary.local_addr().expect("addr");
    let target = format!(r#"transfer.notify = [{{ address = "{at}", key = "default-xfr" }}]"#);
    let server = TestServer::start(&dir, config(&dir, 0, &[&target])).await;
    let mut buf = vec![0u8; 4096];

    let started = Instant::now();
    let mut tcp = Tcp::connect(server.tcp4).await;
    tcp.send_raw(&add_txt("n.example.com.", "x")).await;
    tcp.recv_raw(Duration::from_secs(5))
        .await
        .expect("update reply");
    let (n, from) = tokio::time::timeout(Duration::from_secs(1), secondary.recv_from(&mut buf))
        .await
        .expect("a NOTIFY within a second")
        .expect("recv");
    let first = buf[..n].to_vec();
    tsig::verify_request(&first, &key("default-xfr"));
    let m = parse(&first);
    assert_eq!(m.op_code, OpCode::Notify);
    assert!(m.authoritative);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(m.queries[0].name(), &name("example.com."));
    assert_eq!(m.queries[0].query_type(), RecordType::SOA);
    // The new SOA in the answer section (RFC 1996 3.7).
    assert_eq!(m.answers.len(), 1);
    match &m.answers[0].data {
        RData::SOA(soa) => assert_eq!(soa.serial, SERIAL + 1),
        other => panic!("not a SOA: {other:?}"),
    }
    let first_seen = started.elapsed();

    // Unanswered, it comes again after about a second.
    let (n, from2) = tokio::time::timeout(Duration::from_secs(3), secondary.recv_from(&mut buf))
        .await
        .expect("a NOTIFY again")
        .expect("recv");
    let again = started.elapsed() - first_seen;
    assert!(again >= Duration::from_millis(800), "{again:?}");
    assert_eq!(from.ip(), from2.ip());
    let second = buf[..n].to_vec();
    tsig::verify_request(&second, &key("default-xfr"));
    // Acknowledged: no more.
    let mut ack = second[..12].to_vec();
    ack[2] |= 0x80;
    ack[5] = 0;
    ack[7] = 0;
    ack[9] = 0;
    ack[11] = 0;
    secondary.send_to(&ack, from2).await.expect("ack");
    let more =
        tokio::time::timeout(Duration::from_millis(2500), secondary.recv_from(&mut buf)).await;
    assert!(more.is_err(), "no NOTIFY after the acknowledgement");

    let metrics = http::get(server.admin.expect("admin"), "/metrics", None).await;
    let label = format!("zone=\"example.com.\",target=\"{at} key default-xfr.\"");
    for (result, n) in [("sent", 2), ("timeout", 1), ("acked", 1)] {
        let line = format!("geoline_notify_total{{{label},result=\"{result}\"}} {n}");
        assert!(metrics.body.contains(&line), "{line}\n{}", metrics.body);
    }
}
