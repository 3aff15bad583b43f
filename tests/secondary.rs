//! geoline as a secondary of another geoline, over real sockets: each line's view pulled
//! with its key and answered as the primary answers it; updates on the primary reaching
//! the secondary by NOTIFY and IXFR within a second; a restart with the primary down
//! serving the stored copies; SERVFAIL once the zone expired; a transfer whose signature
//! does not verify replacing nothing; NOTIFY and UPDATE refused to anyone but the
//! primary.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::dns::{self, A, Query, TXT as TXT_TYPE, Tcp};
use common::site::{Config, wait_until};
use common::tsig::{self, TestKey};
use common::{TempDir, TestServer, http};

const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
const SERIAL: u32 = 2026120701;

fn key(name: &str) -> TestKey {
    TestKey::new(name, "hmac-sha256", SECRET)
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// The primary's zone: `timers` are the SOA's refresh, retry and expire.
fn zone_text(serial: u32, timers: (u32, u32, u32)) -> String {
    let (refresh, retry, expire) = timers;
    format!(
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster {serial} {refresh} {retry} {expire} 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.10\nmail A 192.0.2.11\n"
    )
}

/// The china line's overlay: www elsewhere, a name of its own.
const OVERLAY: &str = "$ORIGIN example.com.\n$TTL 60\nwww A 203.0.113.10\ncn A 203.0.113.20\n";

/// The lines and keys both servers share: `china` is 10.0.0.0/8.
fn base(c: Config) -> Config {
    let mut c = c.admin().line("china", &[r#"cidrs = ["10.0.0.0/8"]"#]);
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
    c
}

/// The primary: example.com with its china overlay, a key per line, NOTIFY to
/// `secondary` (signed with the default line's key).
fn primary_config(dir: &TempDir, timers: (u32, u32, u32), secondary: Option<SocketAddr>) -> Config {
    dir.write("example.com.zone", &zone_text(SERIAL, timers));
    dir.write("example.com.china.zone", OVERLAY);
    let mut transfer =
        vec![r#"transfer.keys = { "china-xfr" = "china", "default-xfr" = "default" }"#.to_string()];
    if let Some(at) = secondary {
        transfer.push(format!(
            r#"transfer.notify = [{{ address = "{at}", key = "default-xfr" }}]"#
        ));
    }
    let transfer: Vec<&str> = transfer.iter().map(String::as_str).collect();
    base(Config::dns())
        .zone("example.com.zone", &[("china", "example.com.china.zone")])
        .set("[[zone]]", &transfer)
        .table(
            "[[update.grant]]",
            &[r#"key = "upd""#, r#"zones = ["example.com"]"#],
        )
}

/// The secondary of `primaries`, listening on `listen`, its copies in `store/`.
fn secondary_config(listen: &str, primaries: &[SocketAddr]) -> Config {
    let primaries: Vec<String> = primaries.iter().map(|p| format!("\"{p}\"")).collect();
    base(Config::default().table("[dns]", &[&format!("listen = [\"{listen}\"]")])).table(
        "[[zone]]",
        &[
            r#"origin = "example.com""#,
            &format!("primaries = [{}]", primaries.join(", ")),
            r#"primary_keys = { default = "default-xfr", china = "china-xfr" }"#,
            r#"store = "store""#,
        ],
    )
}

/// A port free for both UDP and TCP on 127.0.0.1 (for a server the other must know of
/// before it starts).
async fn free_port() -> SocketAddr {
    common::ports::free_addr()
}

/// The answer lines (rdata only) to `qname`/`qtype` for a client in `subnet` (by ECS),
/// with the rcode.
async fn ask(server: SocketAddr, qname: &str, qtype: u16, subnet: &str) -> (u16, Vec<String>) {
    let reply = dns::udp(server, &Query::new(qname, qtype).subnet(subnet)).await;
    let mut data: Vec<String> = reply
        .message
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
        .collect();
    data.sort();
    (reply.rcode(), data)
}

const CHINA_CLIENT: &str = "10.1.2.0/24";
const DEFAULT_CLIENT: &str = "192.0.2.0/24";

/// Waits until the secondary answers the zone's SOA (its first transfer is in).
async fn wait_serving(secondary: SocketAddr) {
    wait_until(
        "the secondary to serve the zone",
        Duration::from_secs(10),
        || async move { ask(secondary, "example.com", 6, DEFAULT_CLIENT).await.0 == 0 },
    )
    .await;
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

/// A NOTIFY of example.com (with the SOA of `serial`), signed with `key` when given.
fn notify(key: Option<&TestKey>, zone: &str, serial: u32) -> Vec<u8> {
    let mut m = Message::new(0x4e4e, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(HQuery::query(name(zone), RecordType::SOA));
    let soa = SOA::new(
        name("ns1.example.com."),
        name("h.example.com."),
        serial,
        1,
        1,
        1,
        1,
    );
    m.add_answer(Record::from_rdata(name(zone), 300, RData::SOA(soa)));
    let bytes = m.to_vec().expect("encodes");
    match key {
        Some(key) => tsig::sign(&bytes, key, tsig::now()).0,
        None => bytes,
    }
}

async fn notify_rcode(server: SocketAddr, message: &[u8]) -> (u16, Message) {
    let raw = dns::udp_raw_from("127.0.0.1:0", server, message)
        .await
        .expect("an answer to the NOTIFY");
    let m = Message::from_vec(&raw).expect("parses");
    (u16::from(m.response_code), m)
}

/// A primary that NOTIFYs its secondary, and the secondary, serving.
async fn notified_pair() -> (TempDir, TempDir, TestServer, TestServer) {
    let pdir = TempDir::new("secondary-p");
    let sdir = TempDir::new("secondary-s");
    let listen = free_port().await;
    let primary = TestServer::start(
        &pdir,
        primary_config(&pdir, (7200, 900, 1209600), Some(listen)),
    )
    .await;
    let secondary = TestServer::start(
        &sdir,
        secondary_config(&listen.to_string(), &[primary.tcp4]),
    )
    .await;
    wait_serving(secondary.udp4).await;
    (pdir, sdir, primary, secondary)
}

#[tokio::test]
async fn both_lines_are_pulled_and_answered_as_the_primary_answers_them() {
    let (_pdir, sdir, primary, secondary) = notified_pair().await;

    for (qname, qtype) in [
        ("www.example.com", A),
        ("cn.example.com", A),
        ("mail.example.com", A),
        ("example.com", 6),
        ("example.com", 2),
        ("nothing.example.com", A),
    ] {
        for client in [CHINA_CLIENT, DEFAULT_CLIENT] {
            let theirs = ask(primary.udp4, qname, qtype, client).await;
            let ours = ask(secondary.udp4, qname, qtype, client).await;
            assert_eq!(ours, theirs, "{qname} {qtype} for {client}");
        }
    }
    // The lines differ, so the comparison above compared two views.
    assert_eq!(
        ask(secondary.udp4, "www.example.com", A, CHINA_CLIENT)
            .await
            .1,
        ["www.example.com. 60 203.0.113.10"]
    );
    assert_eq!(
        ask(secondary.udp4, "www.example.com", A, DEFAULT_CLIENT)
            .await
            .1,
        ["www.example.com. 300 192.0.2.10"]
    );
    assert_eq!(
        ask(secondary.udp4, "cn.example.com", A, DEFAULT_CLIENT)
            .await
            .0,
        3
    );

    // Each line's copy is on disk.
    let stored = std::fs::read_to_string(sdir.path().join("store/example.com.china.zone"))
        .expect("the china copy");
    assert!(
        stored.contains("cn.example.com. 60 IN A 203.0.113.20"),
        "{stored}"
    );
    let stored = std::fs::read_to_string(sdir.path().join("store/example.com.default.zone"))
        .expect("the default copy");
    assert!(
        stored.contains("www.example.com. 300 IN A 192.0.2.10"),
        "{stored}"
    );
    assert!(!stored.contains("cn.example.com"), "{stored}");

    // UPDATE of a secondary zone: REFUSED, as BIND answers without update forwarding.
    let mut tcp = Tcp::connect(secondary.tcp4).await;
    tcp.send_raw(&add_txt("x.example.com.", "no")).await;
    let reply = tcp.recv_raw(Duration::from_secs(5)).await.expect("a reply");
    assert_eq!(reply[3] & 0x0f, 5, "REFUSED");

    // NOTIFY: the primary's key from the primary's address is taken; unsigned (the zone
    // pulls with keys), another key, or a zone not served are not.
    let (rcode, m) = notify_rcode(
        secondary.udp4,
        &notify(Some(&key("default-xfr")), "example.com.", SERIAL),
    )
    .await;
    assert_eq!(rcode, 0);
    assert!(m.metadata.authoritative);
    assert_eq!(m.op_code, OpCode::Notify);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(m.queries[0].name(), &name("example.com."));
    assert_eq!(m.queries[0].query_type(), RecordType::SOA);
    let (rcode, _) = notify_rcode(secondary.udp4, &notify(None, "example.com.", SERIAL + 1)).await;
    assert_eq!(rcode, 5, "unsigned: REFUSED");
    let (rcode, _) = notify_rcode(
        secondary.udp4,
        &notify(Some(&key("upd")), "example.com.", SERIAL + 1),
    )
    .await;
    assert_eq!(rcode, 5, "another key: REFUSED");
    let (rcode, _) = notify_rcode(
        secondary.udp4,
        &notify(Some(&key("default-xfr")), "example.org.", 1),
    )
    .await;
    assert_eq!(rcode, 9, "not a zone served: NOTAUTH");
    // The primary, a zone of files, takes NOTIFY from nobody.
    let (rcode, _) = notify_rcode(
        primary.udp4,
        &notify(Some(&key("default-xfr")), "example.com.", SERIAL + 1),
    )
    .await;
    assert_eq!(rcode, 5);

    let status = http::get(secondary.admin.expect("admin"), "/status", None)
        .await
        .json();
    let zone = &status["zones"][0]["secondary"];
    assert_eq!(zone["primaries"][0], primary.tcp4.to_string());
    assert_eq!(zone["pulls"][0]["line"], "default");
    assert_eq!(zone["pulls"][0]["last_transfer"]["kind"], "axfr");
    assert_eq!(zone["pulls"][0]["last_transfer"]["serial"], SERIAL);
    assert_eq!(zone["pulls"][1]["line"], "china");
    assert_eq!(zone["pulls"][1]["key"], "china-xfr.");
    assert_eq!(zone["expired"], false);
    let metrics = http::get(secondary.admin.expect("admin"), "/metrics", None)
        .await
        .body;
    for line in [
        format!("geoline_secondary_serial{{zone=\"example.com.\",line=\"china\"}} {SERIAL}"),
        "geoline_secondary_checks_total{zone=\"example.com.\",line=\"default\",result=\"axfr\"} 1"
            .to_string(),
        "geoline_secondary_expired{zone=\"example.com.\"} 0".to_string(),
        "geoline_notify_received_total{zone=\"example.com.\",result=\"refused\"} 2".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
}

#[tokio::test]
async fn updates_reach_the_secondary_by_notify_and_ixfr_each_within_a_second() {
    let (_pdir, _sdir, primary, secondary) = notified_pair().await;

    let mut tcp = Tcp::connect(primary.tcp4).await;
    let mut delays = Vec::with_capacity(100);
    for i in 0..100 {
        let owner = format!("u{i}.example.com.");
        tcp.send_raw(&add_txt(&owner, &format!("v{i}"))).await;
        let reply = tcp
            .recv_raw(Duration::from_secs(5))
            .await
            .expect("update reply");
        assert_eq!(reply[3] & 0x0f, 0, "update {i} NOERROR");
        let started = Instant::now();
        loop {
            let (rcode, data) = ask(secondary.udp4, &owner, TXT_TYPE, CHINA_CLIENT).await;
            if rcode == 0 && !data.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "update {i} not on the secondary within 1 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    println!(
        "update answered by the primary -> answered by the secondary, 100 updates: p50 {:?}, max {:?}",
        delays[50], delays[99]
    );
    // Both lines have it, by IXFR.
    assert_eq!(
        ask(secondary.udp4, "u99.example.com", TXT_TYPE, DEFAULT_CLIENT)
            .await
            .0,
        0
    );
    let metrics = http::get(secondary.admin.expect("admin"), "/metrics", None)
        .await
        .body;
    assert!(
        metrics.contains(
            "geoline_secondary_checks_total{zone=\"example.com.\",line=\"china\",result=\"ixfr\"}"
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains("result=\"ixfr_full\""),
        "every update came as differences: {metrics}"
    );
    let serial = SERIAL + 100;
    assert!(
        metrics.contains(&format!(
            "geoline_secondary_serial{{zone=\"example.com.\",line=\"default\"}} {serial}"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_restart_with_the_primary_down_serves_the_stored_copies() {
    let pdir = TempDir::new("secondary-p");
    let sdir = TempDir::new("secondary-s");
    let primary = TestServer::start(&pdir, primary_config(&pdir, (7200, 900, 1209600), None)).await;
    let config = secondary_config("127.0.0.1:0", &[primary.tcp4]);
    let secondary = TestServer::start(&sdir, config.clone()).await;
    wait_serving(secondary.udp4).await;
    let before_china = ask(secondary.udp4, "www.example.com", A, CHINA_CLIENT).await;
    let before_default = ask(secondary.udp4, "www.example.com", A, DEFAULT_CLIENT).await;
    secondary.running.shutdown().await;
    primary.running.shutdown().await;

    let again = TestServer::start(&sdir, config).await;
    // At once: no transfer can happen, the primary is gone.
    assert_eq!(
        ask(again.udp4, "www.example.com", A, CHINA_CLIENT).await,
        before_china
    );
    assert_eq!(
        ask(again.udp4, "www.example.com", A, DEFAULT_CLIENT).await,
        before_default
    );
    assert_eq!(
        ask(again.udp4, "cn.example.com", A, DEFAULT_CLIENT).await.0,
        3
    );
}

#[tokio::test]
async fn the_zone_answers_servfail_once_it_expired() {
    let pdir = TempDir::new("secondary-p");
    let sdir = TempDir::new("secondary-s");
    // Refresh and retry every second, expire after 3.
    let primary = TestServer::start(&pdir, primary_config(&pdir, (1, 1, 3), None)).await;
    let secondary =
        TestServer::start(&sdir, secondary_config("127.0.0.1:0", &[primary.tcp4])).await;
    wait_serving(secondary.udp4).await;
    // Refreshed on time, it keeps answering past the expire interval.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        ask(secondary.udp4, "www.example.com", A, DEFAULT_CLIENT)
            .await
            .0,
        0
    );

    primary.running.shutdown().await;
    let down = Instant::now();
    wait_until("SERVFAIL after expiry", Duration::from_secs(10), || async {
        ask(secondary.udp4, "www.example.com", A, DEFAULT_CLIENT)
            .await
            .0
            == 2
    })
    .await;
    // Not before the expire interval since the last successful check.
    assert!(
        down.elapsed() >= Duration::from_secs(1),
        "{:?}",
        down.elapsed()
    );
    let (rcode, data) = ask(secondary.udp4, "www.example.com", A, CHINA_CLIENT).await;
    assert_eq!((rcode, data.len()), (2, 0));
    let metrics = http::get(secondary.admin.expect("admin"), "/metrics", None)
        .await
        .body;
    assert!(
        metrics.contains("geoline_secondary_expired{zone=\"example.com.\"} 1"),
        "{metrics}"
    );
}

/// A man in the middle between the secondary and the primary: passes the transfer through,
/// or flips the case of a letter of the zone's name in the first message of the answer
/// (still a well-formed message, no longer the one the primary signed).
async fn middle(primary: SocketAddr, tamper: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let tamper = tamper.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut upstream = TcpStream::connect(primary).await.expect("primary");
                let mut len = [0u8; 2];
                client.read_exact(&mut len).await.expect("request length");
                let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
                client.read_exact(&mut request).await.expect("request");
                upstream.write_all(&len).await.expect("forward");
                upstream.write_all(&request).await.expect("forward");
                let mut first = true;
                loop {
                    if upstream.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if upstream.read_exact(&mut message).await.is_err() {
                        return;
                    }
                    if tamper && first {
                        // The question's name starts at byte 12: "\x07example".
                        message[14] ^= 0x20;
                    }
                    first = false;
                    if client.write_all(&len).await.is_err()
                        || client.write_all(&message).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    at
}

#[tokio::test]
async fn a_transfer_whose_signature_does_not_verify_replaces_nothing() {
    let pdir = TempDir::new("secondary-p");
    let sdir = TempDir::new("secondary-s");
    let primary = TestServer::start(&pdir, primary_config(&pdir, (7200, 900, 1209600), None)).await;
    let tamper = Arc::new(AtomicBool::new(false));
    let via = middle(primary.tcp4, tamper.clone()).await;
    let secondary = TestServer::start(&sdir, secondary_config("127.0.0.1:0", &[via])).await;
    wait_serving(secondary.udp4).await;

    let mut tcp = Tcp::connect(primary.tcp4).await;
    tcp.send_raw(&add_txt("new.example.com.", "v")).await;
    let reply = tcp
        .recv_raw(Duration::from_secs(5))
        .await
        .expect("update reply");
    assert_eq!(reply[3] & 0x0f, 0);
    tamper.store(true, Ordering::SeqCst);
    let (rcode, _) = notify_rcode(
        secondary.udp4,
        &notify(Some(&key("default-xfr")), "example.com.", SERIAL + 1),
    )
    .await;
    assert_eq!(rcode, 0);
    let admin = secondary.admin.expect("admin");
    wait_until("the check to fail", Duration::from_secs(10), || async {
        http::get(admin, "/metrics", None)
            .await
            .body
            .contains("geoline_secondary_checks_total{zone=\"example.com.\",line=\"default\",result=\"error\"} 1")
    })
    .await;
    // Nothing replaced: the old serial, no new name, on disk neither.
    assert_eq!(
        ask(secondary.udp4, "new.example.com", TXT_TYPE, DEFAULT_CLIENT)
            .await
            .0,
        3
    );
    let soa = dns::udp(secondary.udp4, &Query::new("example.com", 6)).await;
    match soa.message.answers.first().map(|r| &r.data) {
        Some(RData::SOA(s)) => assert_eq!(s.serial, SERIAL),
        other => panic!("no SOA: {other:?}"),
    }
    let stored = std::fs::read_to_string(sdir.path().join("store/example.com.default.zone"))
        .expect("the default copy");
    assert!(!stored.contains("new.example.com"), "{stored}");
    let status = http::get(admin, "/status", None).await.json();
    let error = status["zones"][0]["secondary"]["pulls"][0]["last_error"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("BADSIG"), "{status}");

    // Untouched again, the next NOTIFY brings the change.
    tamper.store(false, Ordering::SeqCst);
    notify_rcode(
        secondary.udp4,
        &notify(Some(&key("default-xfr")), "example.com.", SERIAL + 1),
    )
    .await;
    wait_until("the change to arrive", Duration::from_secs(10), || async {
        ask(secondary.udp4, "new.example.com", TXT_TYPE, DEFAULT_CLIENT)
            .await
            .0
            == 0
    })
    .await;
}

/// The value of the counter `series` (the whole name with its labels) on `/metrics`; 0
/// when absent.
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_secondary_answers_while_the_primary_is_down_and_catches_up_by_ixfr_when_it_is_back() {
    let pdir = TempDir::new("secondary-p");
    let sdir = TempDir::new("secondary-s");
    let at = free_port().await;
    let listen = free_port().await;
    // Refresh and retry every second: the secondary keeps asking while the primary is down.
    let pconfig = primary_config(&pdir, (1, 1, 1209600), Some(listen))
        .set("[dns]", &[&format!("listen = [\"{at}\"]")]);
    let primary = TestServer::start(&pdir, pconfig.clone()).await;
    let secondary = TestServer::start(&sdir, secondary_config(&listen.to_string(), &[at])).await;
    wait_serving(secondary.udp4).await;
    let update = |owner: &'static str| async move {
        let mut tcp = Tcp::connect(at).await;
        tcp.send_raw(&add_txt(owner, "v")).await;
        let reply = tcp.recv_raw(Duration::from_secs(5)).await.expect("reply");
        assert_eq!(reply[3] & 0x0f, 0, "{owner} added");
    };
    let has = |owner: &'static str| async move {
        ask(secondary.udp4, owner, TXT_TYPE, CHINA_CLIENT)
            .await
            .1
            .len()
            == 1
            && ask(secondary.udp4, owner, TXT_TYPE, DEFAULT_CLIENT)
                .await
                .1
                .len()
                == 1
    };
    update("before.example.com.").await;
    wait_until(
        "the first update on the secondary",
        Duration::from_secs(5),
        || has("before.example.com."),
    )
    .await;
    let before = (
        ask(secondary.udp4, "www.example.com", A, CHINA_CLIENT).await,
        ask(secondary.udp4, "www.example.com", A, DEFAULT_CLIENT).await,
    );

    primary.running.shutdown().await;
    // Three refreshes fail; everything is still answered as before.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let admin = secondary.admin.expect("admin");
    let metrics = http::get(admin, "/metrics", None).await.body;
    let errors =
        "geoline_secondary_checks_total{zone=\"example.com.\",line=\"default\",result=\"error\"}";
    assert!(counter(&metrics, errors) >= 2, "{metrics}");
    assert_eq!(
        (
            ask(secondary.udp4, "www.example.com", A, CHINA_CLIENT).await,
            ask(secondary.udp4, "www.example.com", A, DEFAULT_CLIENT).await,
        ),
        before
    );
    assert!(has("before.example.com.").await);

    // Back, from its files and journal, and changed again: the secondary catches up with
    // the differences only.
    let ixfr = |line: &str| {
        format!(
            "geoline_secondary_checks_total{{zone=\"example.com.\",line=\"{line}\",result=\"ixfr\"}}"
        )
    };
    let ixfr_before = [
        counter(&metrics, &ixfr("default")),
        counter(&metrics, &ixfr("china")),
    ];
    let _primary = TestServer::start(&pdir, pconfig).await;
    update("after-1.example.com.").await;
    update("after-2.example.com.").await;
    wait_until(
        "the secondary to catch up",
        Duration::from_secs(5),
        || async { has("after-1.example.com.").await && has("after-2.example.com.").await },
    )
    .await;
    assert!(has("before.example.com.").await);
    let metrics = http::get(admin, "/metrics", None).await.body;
    let ixfr_after = [
        counter(&metrics, &ixfr("default")),
        counter(&metrics, &ixfr("china")),
    ];
    assert!(
        ixfr_after[0] > ixfr_before[0] && ixfr_after[1] > ixfr_before[1],
        "{ixfr_before:?} -> {ixfr_after:?}: {metrics}"
    );
    for result in ["axfr", "ixfr_full"] {
        for line in ["default", "china"] {
            let series = format!(
                "geoline_secondary_checks_total{{zone=\"example.com.\",line=\"{line}\",result=\"{result}\"}}"
            );
            assert!(
                counter(&metrics, &series) <= 1,
                "only the first transfer was whole: {metrics}"
            );
        }
    }
}
