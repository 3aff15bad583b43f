//! Dynamic updates (RFC 2136) against the real listeners: what an UPDATE gets over UDP and
//! TCP, the counters and the status it leaves.

mod common;

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use common::dns::{Tcp, udp_expect_silence, udp_raw_from};
use common::tsig::{self, ALGORITHMS, TestKey};
use common::{TempDir, TestServer, http, site};

/// "secret-secret-secret-secret-1234", base64: the secret of every test key.
const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
const CHALLENGE: &str = "_acme-challenge.example.com.";

/// A `[[key]]` table for `name` with `algorithm` (its configuration name).
fn key_table(name: &str, algorithm: &str) -> String {
    format!("[[key]]\nname = \"{name}\"\nalgorithm = \"{algorithm}\"\nsecret = \"{SECRET_B64}\"\n")
}

/// The ACME preset for `key`.
fn acme_grant(key: &str) -> String {
    format!(
        "[[update.grant]]\nkey = \"{key}\"\nzones = [\"example.com\"]\nnames = [\"_acme-challenge.*\"]\ntypes = [\"TXT\"]\nmax_records = 4\n"
    )
}

/// `bytes` signed with `key` now; with the request MAC.
fn signed(bytes: &[u8], key: &TestKey) -> (Vec<u8>, Vec<u8>) {
    tsig::sign(bytes, key, tsig::now())
}

/// The client subnet of each line in the test database: mainland China, and elsewhere.
const CHINA_CLIENT: &str = "1.2.3.0/24";
const DEFAULT_CLIENT: &str = "8.8.8.0/24";

/// The rcode and the answers' data for `owner`/`qtype` as a client in `subnet` sees them.
async fn lookup(server: SocketAddr, subnet: &str, owner: &str, qtype: u16) -> (u16, Vec<String>) {
    let query = common::dns::Query::new(owner, qtype).edns().subnet(subnet);
    let reply = common::dns::udp(server, &query).await;
    let data = reply
        .message
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect();
    (reply.rcode(), data)
}

async fn txt_values(server: SocketAddr, subnet: &str, owner: &str) -> (u16, Vec<String>) {
    lookup(server, subnet, owner, 16).await
}

async fn soa_serial(server: SocketAddr) -> u32 {
    let reply = common::dns::udp(server, &common::dns::Query::new("example.com.", 6)).await;
    match reply.message.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    }
}

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

#[tokio::test]
async fn a_signed_acme_challenge_is_added_and_removed_with_every_algorithm_over_udp_and_tcp() {
    let dir = TempDir::new("update-signed");
    let mut extra = String::new();
    for (config_name, _, _) in ALGORITHMS {
        extra.push_str(&key_table(&format!("k-{config_name}"), config_name));
    }
    extra.push_str("[update]\n");
    for (config_name, _, _) in ALGORITHMS {
        extra.push_str(&acme_grant(&format!("k-{config_name}")));
    }
    let server = server(&dir, &extra).await;
    let mut serial = soa_serial(server.udp4).await;
    for (i, (config_name, wire, _)) in ALGORITHMS.iter().enumerate() {
        let key = TestKey::new(&format!("k-{config_name}"), wire, SECRET);
        for tcp in [false, true] {
            let value = format!("token-{config_name}-{tcp}");
            let id = 100 + i as u16 * 2 + u16::from(tcp);
            let (request, mac) = signed(&add_txt(id, "example.com.", CHALLENGE, &value), &key);
            let raw = if tcp {
                let mut c = Tcp::connect(server.tcp4).await;
                c.send_raw(&request).await;
                c.recv_raw(std::time::Duration::from_secs(5))
                    .await
                    .expect("reply")
            } else {
                udp_raw_from("127.0.0.1:0", server.udp4, &request)
                    .await
                    .expect("reply")
            };
            let what = format!("{config_name} tcp={tcp}");
            let reply = parse(&raw);
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "{what}"
            );
            assert_eq!(reply.metadata.id, id, "{what}");
            tsig::verify_reply(&raw, &key, &mac);
            serial += 1;
            assert_eq!(soa_serial(server.udp4).await, serial, "{what}");
            // On both lines: 1.2.3.4 is in china, 127.0.0.1 the default.
            for from in [CHINA_CLIENT, DEFAULT_CLIENT] {
                let (rcode, values) = txt_values(server.udp4, from, CHALLENGE).await;
                assert_eq!(rcode, 0, "{what} from {from}");
                assert_eq!(values, vec![value.clone()], "{what} from {from}");
            }
            // Cleanup as certbot does: delete its own record (class NONE).
            let mut delete = Message::new(id, MessageType::Query, OpCode::Update);
            delete.add_query(Query::query(name("example.com."), RecordType::SOA));
            let mut record = Record::from_rdata(
                name(CHALLENGE),
                0,
                RData::TXT(TXT::new(vec![value.clone()])),
            );
            record.dns_class = DNSClass::NONE;
            delete.add_authority(record);
            let (request, mac) = signed(&delete.to_vec().expect("encodes"), &key);
            let raw = udp_raw_from("127.0.0.1:0", server.udp4, &request)
                .await
                .expect("reply");
            assert_eq!(
                parse(&raw).metadata.response_code,
                ResponseCode::NoError,
                "{what}"
            );
            tsig::verify_reply(&raw, &key, &mac);
            serial += 1;
            let (rcode, _) = txt_values(server.udp4, DEFAULT_CLIENT, CHALLENGE).await;
            assert_eq!(rcode, 3, "{what}: gone again, NXDOMAIN");
        }
    }
    let journal = dir.path().join("example.com.jnl");
    assert!(std::fs::metadata(&journal).expect("a journal").len() > 0);
    let metrics = http::get(server.admin.expect("admin"), "/metrics", None)
        .await
        .body;
    assert!(
        metrics.contains(
            r#"geoline_dns_updates_total{zone="example.com.",key="k-hmac-md5.",result="noerror"} 4"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"geoline_zone_journal_entries{zone="example.com."} 24"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_policy_refuses_what_a_key_was_not_granted() {
    let dir = TempDir::new("update-policy");
    let extra = format!(
        "{}{}[update]\n{}[[update.grant]]\nkey = \"china-key\"\nzones = [\"example.com\"]\nnames = [\"www\"]\ntypes = [\"A\"]\nline = \"china\"\n",
        key_table("acme", "hmac-sha256"),
        key_table("china-key", "hmac-sha256"),
        acme_grant("acme"),
    );
    let server = server(&dir, &extra).await;
    let acme = TestKey::new("acme", "hmac-sha256", SECRET);
    let china = TestKey::new("china-key", "hmac-sha256", SECRET);
    let rcode = |raw: Vec<u8>| parse(&raw).metadata.response_code;
    let send = |bytes: Vec<u8>, key: TestKey| async move {
        let (request, mac) = signed(&bytes, &key);
        let raw = udp_raw_from("127.0.0.1:0", server.udp4, &request)
            .await
            .expect("reply");
        tsig::verify_reply(&raw, &key, &mac);
        raw
    };
    // A name outside the grant, a type outside it, a zone it does not name.
    assert_eq!(
        rcode(
            send(
                add_txt(1, "example.com.", "www.example.com.", "x"),
                acme.clone()
            )
            .await
        ),
        ResponseCode::Refused
    );
    let mut a_record = Message::new(2, MessageType::Query, OpCode::Update);
    a_record.add_query(Query::query(name("example.com."), RecordType::SOA));
    a_record.add_authority(Record::from_rdata(
        name(CHALLENGE),
        60,
        RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 1)),
    ));
    assert_eq!(
        rcode(send(a_record.to_vec().expect("encodes"), acme.clone()).await),
        ResponseCode::Refused
    );
    // More than max_records at one name.
    let mut five = Message::new(3, MessageType::Query, OpCode::Update);
    five.add_query(Query::query(name("example.com."), RecordType::SOA));
    for i in 0..5 {
        five.add_authority(Record::from_rdata(
            name(CHALLENGE),
            60,
            RData::TXT(TXT::new(vec![format!("v{i}")])),
        ));
    }
    assert_eq!(
        rcode(send(five.to_vec().expect("encodes"), acme.clone()).await),
        ResponseCode::Refused
    );
    assert_eq!(
        txt_values(server.udp4, DEFAULT_CLIENT, CHALLENGE).await.0,
        3,
        "nothing of it applied"
    );

    // The china key writes the china line's overlay: the default line does not see it.
    let mut china_a = Message::new(4, MessageType::Query, OpCode::Update);
    china_a.add_query(Query::query(name("example.com."), RecordType::SOA));
    china_a.add_authority(Record::from_rdata(
        name("www.example.com."),
        60,
        RData::A(hickory_proto::rr::rdata::A::new(203, 0, 113, 99)),
    ));
    assert_eq!(
        rcode(send(china_a.to_vec().expect("encodes"), china.clone()).await),
        ResponseCode::NoError
    );
    let a = |subnet: &'static str| async move {
        lookup(server.udp4, subnet, "www.example.com.", 1).await.1
    };
    assert_eq!(a(CHINA_CLIENT).await, vec!["203.0.113.10", "203.0.113.99"]);
    assert_eq!(a(DEFAULT_CLIENT).await, vec![site::DEFAULT_ANSWER]);
    // But it may not write a challenge.
    assert_eq!(
        rcode(send(add_txt(5, "example.com.", CHALLENGE, "x"), china).await),
        ResponseCode::Refused
    );
    // A prerequisite that fails: YXRRSET (www has A records).
    let mut pre = Message::new(6, MessageType::Query, OpCode::Update);
    pre.add_query(Query::query(name("example.com."), RecordType::SOA));
    let mut none = Record::from_rdata(name(CHALLENGE), 0, RData::Update0(RecordType::TXT));
    none.dns_class = DNSClass::ANY;
    pre.add_answer(none);
    pre.add_authority(Record::from_rdata(
        name(CHALLENGE),
        60,
        RData::TXT(TXT::new(vec!["p".into()])),
    ));
    assert_eq!(
        rcode(send(pre.to_vec().expect("encodes"), acme).await),
        ResponseCode::NXRRSet
    );
}

#[tokio::test]
async fn a_flood_from_one_key_is_limited_and_other_keys_and_queries_are_not() {
    let dir = TempDir::new("update-flood");
    let extra = format!(
        "{}{}[update]\nrate = 5\n{}{}",
        key_table("flood", "hmac-sha256"),
        key_table("calm", "hmac-sha256"),
        acme_grant("flood"),
        acme_grant("calm"),
    );
    let server = server(&dir, &extra).await;
    let flood = TestKey::new("flood", "hmac-sha256", SECRET);
    let calm = TestKey::new("calm", "hmac-sha256", SECRET);
    let mut refused = 0;
    for i in 0..30u16 {
        let (request, _) = signed(
            &add_txt(i, "example.com.", CHALLENGE, &format!("v{}", i % 3)),
            &flood,
        );
        let raw = udp_raw_from("127.0.0.1:0", server.udp4, &request)
            .await
            .expect("reply");
        if parse(&raw).metadata.response_code == ResponseCode::Refused {
            refused += 1;
        }
    }
    assert!(refused >= 20, "only {refused} of 30 refused");
    let (request, _) = signed(
        &add_txt(
            99,
            "example.com.",
            "_acme-challenge.www.example.com.",
            "calm",
        ),
        &calm,
    );
    let raw = udp_raw_from("127.0.0.1:0", server.udp4, &request)
        .await
        .expect("reply");
    assert_eq!(parse(&raw).metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        lookup(server.udp4, DEFAULT_CLIENT, "www.example.com.", 1)
            .await
            .1,
        vec![site::DEFAULT_ANSWER]
    );
    let metrics = http::get(server.admin.expect("admin"), "/metrics", None)
        .await
        .body;
    assert!(
        metrics.contains(&format!(r#"geoline_dns_updates_total{{zone="example.com.",key="flood.",result="ratelimited"}} {refused}"#)),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_zone_file_reload_keeps_the_updates_and_never_moves_the_serial_back_and_flush_writes_them()
 {
    let dir = TempDir::new("update-reload");
    let extra = format!(
        "{}[update]\n{}",
        key_table("acme", "hmac-sha256"),
        acme_grant("acme")
    );
    let server = server(&dir, &format!("[reload]\nwatch = false\n{extra}")).await;
    let admin = server.admin.expect("admin");
    let acme = TestKey::new("acme", "hmac-sha256", SECRET);
    let (request, _) = signed(&add_txt(1, "example.com.", CHALLENGE, "kept"), &acme);
    udp_raw_from("127.0.0.1:0", server.udp4, &request)
        .await
        .expect("reply");
    let serial = soa_serial(server.udp4).await;
    assert_eq!(serial, 2026112202);
    // The operator edits the file without raising its serial.
    dir.write(
        "example.com.zone",
        &format!("{}new A 192.0.2.77\n", site::ZONE),
    );
    assert_eq!(http::post(admin, "/reload", None).await.status, 200);
    assert_eq!(
        soa_serial(server.udp4).await,
        serial,
        "never back to the file's"
    );
    assert_eq!(
        txt_values(server.udp4, DEFAULT_CLIENT, CHALLENGE).await.1,
        vec!["kept"]
    );
    assert_eq!(
        lookup(server.udp4, DEFAULT_CLIENT, "new.example.com.", 1)
            .await
            .1,
        vec!["192.0.2.77"]
    );

    let flushed = http::post(admin, "/zones/example.com/flush", None).await;
    assert_eq!(flushed.status, 200, "{}", flushed.body);
    let json = flushed.json();
    assert_eq!(json["serial"], serial);
    assert_eq!(json["journal_entries_flushed"], 1);
    let text = std::fs::read_to_string(dir.path().join("example.com.zone")).expect("zone file");
    assert!(
        text.contains("_acme-challenge.example.com. 120 IN TXT \"kept\""),
        "{text}"
    );
    assert!(
        text.contains("new.example.com. 300 IN A 192.0.2.77"),
        "{text}"
    );
    assert!(text.contains(&format!(" {serial} ")), "{text}");
    assert_eq!(
        std::fs::metadata(dir.path().join("example.com.jnl"))
            .expect("journal")
            .len(),
        0
    );
    // Reloaded from the flushed file alone, the zone is the same.
    assert_eq!(http::post(admin, "/reload", None).await.status, 200);
    assert_eq!(soa_serial(server.udp4).await, serial);
    assert_eq!(
        txt_values(server.udp4, DEFAULT_CLIENT, CHALLENGE).await.1,
        vec!["kept"]
    );
    let missing = http::post(admin, "/zones/example.org/flush", None).await;
    assert_eq!(missing.status, 404);
}

/// A port free on 127.0.0.1 for both UDP and TCP, for a server started as a process.
fn free_port() -> u16 {
    common::ports::free_port()
}

/// `geoline serve` as a process, answering on `port` once it returns.
fn spawn_geoline(
    config: &std::path::Path,
    port: u16,
    log: &std::path::Path,
) -> std::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_geoline"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("geoline starts");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("geoline did not listen on {port}");
}

#[tokio::test]
async fn an_update_acknowledged_survives_sigkill_and_a_torn_journal_is_cut() {
    let dir = TempDir::new("update-sigkill");
    dir.write("example.com.zone", site::ZONE);
    let port = free_port();
    let config = dir.write(
        "geoline.toml",
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[[zone]]\nfile = \"example.com.zone\"\n{}[update]\n{}",
            key_table("acme", "hmac-sha256"),
            acme_grant("acme")
        ),
    );
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let acme = TestKey::new("acme", "hmac-sha256", SECRET);
    let mut child = spawn_geoline(&config, port, &dir.path().join("first.log"));
    let (request, mac) = signed(&add_txt(1, "example.com.", CHALLENGE, "durable"), &acme);
    let raw = over_tcp_raw(server, &request).await;
    // Killed the moment NOERROR is read: nothing after the response may be needed.
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert_eq!(parse(&raw).metadata.response_code, ResponseCode::NoError);
    tsig::verify_reply(&raw, &acme, &mac);

    let journal = dir.path().join("example.com.jnl");
    let whole = std::fs::metadata(&journal).expect("journal").len();
    let mut child = spawn_geoline(&config, port, &dir.path().join("second.log"));
    let query = |owner: &'static str, qtype: u16| common::dns::Query::new(owner, qtype);
    let reply = common::dns::udp(server, &query(CHALLENGE, 16)).await;
    assert_eq!(
        reply
            .message
            .answers
            .iter()
            .map(|r| r.data.to_string())
            .collect::<Vec<_>>(),
        vec!["durable"]
    );
    assert_eq!(soa_serial(server).await, 2026112202);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    // A crash in the middle of an append: a length that promises more than is there.
    let mut torn = std::fs::read(&journal).expect("journal");
    torn.extend_from_slice(&[0, 0, 0, 200, 1, 2, 3, 4, 5, 6, 7]);
    std::fs::write(&journal, &torn).expect("write");
    let log = dir.path().join("third.log");
    let mut child = spawn_geoline(&config, port, &log);
    let reply = common::dns::udp(server, &query(CHALLENGE, 16)).await;
    assert_eq!(reply.message.answers.len(), 1, "the whole entry is kept");
    assert_eq!(
        std::fs::metadata(&journal).expect("journal").len(),
        whole,
        "the torn tail is cut"
    );
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("torn entry"), "{text}");
    // And the journal takes new entries after the cut.
    let (request, _) = signed(&add_txt(2, "example.com.", CHALLENGE, "after"), &acme);
    assert_eq!(
        parse(&over_tcp_raw(server, &request).await)
            .metadata
            .response_code,
        ResponseCode::NoError
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let child = spawn_geoline(&config, port, &dir.path().join("fourth.log"));
    let mut child = child;
    let reply = common::dns::udp(server, &query(CHALLENGE, 16)).await;
    assert_eq!(reply.message.answers.len(), 2);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    // The journal put where another zone's belongs: check and serve refuse it.
    dir.write(
        "example.net.zone",
        &site::ZONE.replace("example.com.", "example.net."),
    );
    std::fs::copy(&journal, dir.path().join("example.net.jnl")).expect("copy");
    let other = dir.write("other.toml", "[[zone]]\nfile = \"example.net.zone\"\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geoline"))
        .args(["check", "--config"])
        .arg(&other)
        .output()
        .expect("check runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: the journal belongs to zone `example.com.`, not `example.net.`",
            dir.path().join("example.net.jnl").display()
        )),
        "{stderr}"
    );
}

async fn over_tcp_raw(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = Tcp::connect(server).await;
    tcp.send_raw(bytes).await;
    tcp.recv_raw(std::time::Duration::from_secs(5))
        .await
        .expect("a TCP reply")
}
