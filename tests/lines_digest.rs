//! The digest of the line definitions, over real sockets: a geoline primary answers
//! `lines.geoline.` CH TXT to those a transfer would be allowed to (and REFUSED to anyone
//! else); a geoline secondary asks its primary after a transfer, shows both digests on
//! `/status` and in `/metrics`, and logs a warning once when they differ.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use sha2::{Digest, Sha256};

use common::dns::{self, Query, Tcp};
use common::process::{Serve, listening};
use common::site::{Config, wait_until};
use common::tsig::{self, TestKey};
use common::{TempDir, TestServer, http};

const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

/// The SOA refresh is a second: a secondary checks its primary every second.
const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 2026120701 1 1 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.10\n";

/// The canonical text of the primary's lines (`china` = 10.0.0.0/8, then `default`), as
/// the README documents it.
const PRIMARY_LINES: &str = "geoline-lines 1\nline china\ncountries\ncontinents\nsubdivisions\nasns\ncidrs 10.0.0.0/8\nline default\n";

fn sha256(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn key(name: &str) -> TestKey {
    TestKey::new(name, "hmac-sha256", SECRET)
}

/// The keys both servers declare.
fn keys(mut c: Config) -> Config {
    for k in ["default-xfr", "upd"] {
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

/// The primary: example.com, `china` = 10.0.0.0/8, transfers signed with `default-xfr`
/// (plus the `transfer` keys given).
fn primary_config(dir: &TempDir, transfer: &[&str]) -> Config {
    dir.write("example.com.zone", ZONE);
    let keys_table = r#"transfer.keys = { "default-xfr" = "default" }"#;
    let lines: Vec<&str> = std::iter::once(keys_table)
        .chain(transfer.iter().copied())
        .collect();
    keys(
        Config::dns()
            .admin()
            .line("china", &[r#"cidrs = ["10.0.0.0/8"]"#]),
    )
    .zone("example.com.zone", &[])
    .set("[[zone]]", &lines)
    .table(
        "[[update.grant]]",
        &[r#"key = "upd""#, r#"zones = ["example.com"]"#],
    )
}

/// A secondary of `primary` listening on `listen`, its `china` line matching `cidrs`.
fn secondary_config(listen: &str, primary: SocketAddr, cidrs: &str) -> Config {
    keys(
        Config::default()
            .table("[dns]", &[&format!("listen = [\"{listen}\"]")])
            .admin()
            .line("china", &[&format!("cidrs = {cidrs}")]),
    )
    .table(
        "[[zone]]",
        &[
            r#"origin = "example.com""#,
            &format!("primaries = [\"{primary}\"]"),
            r#"primary_keys = { default = "default-xfr" }"#,
            r#"store = "store""#,
        ],
    )
}

/// `/status`'s comparison of line definitions for the first zone.
async fn lines_status(admin: SocketAddr) -> serde_json::Value {
    let status = http::get(admin, "/status", None).await.json();
    status["zones"][0]["secondary"]["lines"].clone()
}

async fn wait_state(admin: SocketAddr, state: &'static str) -> serde_json::Value {
    wait_until(
        "the secondary to compare its lines with the primary's",
        Duration::from_secs(10),
        || async move { lines_status(admin).await["state"] == state },
    )
    .await;
    lines_status(admin).await
}

/// A `lines.geoline.` query of class CH and type `qtype`.
fn chaos(qtype: u16) -> Vec<u8> {
    let mut q = Query::new("lines.geoline.", qtype);
    q.qclass = 3;
    q.bytes()
}

#[tokio::test]
async fn a_secondary_with_the_primarys_lines_shows_both_digests_equal() {
    let (pdir, sdir) = (TempDir::new("digest-p"), TempDir::new("digest-s"));
    let primary = TestServer::start(&pdir, primary_config(&pdir, &[])).await;
    let secondary = TestServer::start(
        &sdir,
        secondary_config("127.0.0.1:0", primary.tcp4, r#"["10.0.0.0/8"]"#),
    )
    .await;
    let admin = secondary.admin.expect("admin");

    let lines = wait_state(admin, "match").await;
    let want = sha256(PRIMARY_LINES);
    assert_eq!(
        lines,
        serde_json::json!({
            "digest": want,
            "primary_digest": want,
            "state": "match",
            "primary": primary.tcp4.to_string(),
            "asked_at": lines["asked_at"].clone(),
            "primary_answer": null,
        })
    );
    assert!(lines["asked_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let metrics = http::get(admin, "/metrics", None).await.body;
    for (state, v) in [("match", 1), ("mismatch", 0), ("unknown", 0)] {
        let line = format!(
            "geoline_secondary_lines_digest{{zone=\"example.com.\",state=\"{state}\"}} {v}"
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
}

fn add_txt(owner: &str, value: &str) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Update);
    m.add_query(HQuery::query(
        Name::from_ascii("example.com.").expect("name"),
        RecordType::SOA,
    ));
    let mut record = Record::from_rdata(
        Name::from_ascii(owner).expect("name"),
        120,
        RData::TXT(TXT::new(vec![value.into()])),
    );
    record.dns_class = DNSClass::IN;
    m.add_authority(record);
    tsig::sign(&m.to_vec().expect("encodes"), &key("upd"), tsig::now()).0
}

const WARNING: &str = "the primary's line definitions differ from this server's";
const COMPARED: &str = "line definitions compared with the primary's";

// Several threads: the primary serves while the test blocks reading the child's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_whose_lines_differ_warns_once_and_says_so_on_status() {
    let (pdir, sdir) = (TempDir::new("digest-p"), TempDir::new("digest-s"));
    let primary = TestServer::start(&pdir, primary_config(&pdir, &[])).await;
    // One prefix more in the secondary's china line.
    let cidrs = r#"["10.0.0.0/8", "172.16.0.0/12"]"#;
    let config = sdir.write(
        "geoline.toml",
        &secondary_config("127.0.0.1:0", primary.tcp4, cidrs).to_string(),
    );
    let serve = Serve::start(&config, &[]);
    let log = serve.wait_for(WARNING, Duration::from_secs(10));
    let admin = listening(&log, "admin");

    let lines = wait_state(admin, "mismatch").await;
    let ours = sha256(
        "geoline-lines 1\nline china\ncountries\ncontinents\nsubdivisions\nasns\ncidrs 10.0.0.0/8 172.16.0.0/12\nline default\n",
    );
    assert_eq!(lines["digest"], ours);
    assert_eq!(lines["primary_digest"], sha256(PRIMARY_LINES));
    assert_eq!(lines["primary"], primary.tcp4.to_string());
    let warning = log
        .lines()
        .find(|l| l.contains(WARNING))
        .expect("the warning");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(&format!("ours={ours}")), "{warning}");
    let metrics = http::get(admin, "/metrics", None).await.body;
    assert!(
        metrics
            .contains("geoline_secondary_lines_digest{zone=\"example.com.\",state=\"mismatch\"} 1"),
        "{metrics}"
    );

    // A change on the primary reaches the secondary by IXFR at its next refresh, and the
    // primary is asked again: the same difference is not logged a second time.
    let mut tcp = Tcp::connect(primary.tcp4).await;
    tcp.send_raw(&add_txt("new.example.com.", "v")).await;
    let reply = tcp.recv_raw(Duration::from_secs(5)).await.expect("a reply");
    assert_eq!(reply[3] & 0x0f, 0, "the update is taken");
    serve.wait_for("kind=\"ixfr\"", Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while serve.stderr().matches(COMPARED).count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the primary was not asked again:\n{}",
            serve.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        serve.stderr().matches(WARNING).count(),
        1,
        "{}",
        serve.stderr()
    );
    assert_eq!(lines_status(admin).await["state"], "mismatch");
}

#[tokio::test]
async fn the_digest_is_given_only_to_whom_a_transfer_would_be() {
    let dir = TempDir::new("digest-acl");
    let primary = TestServer::start(&dir, primary_config(&dir, &[])).await;
    let want = sha256(PRIMARY_LINES);

    // Unsigned, from a network no transfer table allows: REFUSED, AA clear, the question
    // echoed, nothing else.
    let request = chaos(16);
    let raw = dns::udp_raw_from("127.0.0.1:0", primary.udp4, &request)
        .await
        .expect("an answer");
    assert_eq!(&raw[2..12], &[0x80, 0x05, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        &raw[12..],
        &request[12..],
        "the question, and nothing after it"
    );

    // Signed with a key that no transfer table maps to a line: REFUSED, signed.
    let (signed, mac) = tsig::sign(&request, &key("upd"), tsig::now());
    let raw = dns::udp_raw_from("127.0.0.1:0", primary.udp4, &signed)
        .await
        .expect("an answer");
    assert_eq!(&raw[2..10], &[0x80, 0x05, 0, 1, 0, 0, 0, 0]);
    tsig::verify_reply(&raw, &key("upd"), &mac);

    // Signed with a transfer key: the digest, AA set, class CH, TTL 0; signed.
    let (signed, mac) = tsig::sign(&request, &key("default-xfr"), tsig::now());
    let raw = dns::udp_raw_from("127.0.0.1:0", primary.udp4, &signed)
        .await
        .expect("an answer");
    assert_eq!(&raw[2..10], &[0x84, 0x00, 0, 1, 0, 1, 0, 0]);
    tsig::verify_reply(&raw, &key("default-xfr"), &mac);
    let m = Message::from_vec(&raw).expect("parses");
    assert_eq!(m.answers.len(), 1);
    let record = &m.answers[0];
    assert_eq!(record.name.to_string(), "lines.geoline.");
    assert_eq!((record.dns_class, record.ttl), (DNSClass::CH, 0));
    assert_eq!(record.data.to_string(), want);

    // Another type at the name, or another CH name: REFUSED, as Knot answers them.
    for request in [chaos(1), {
        let mut q = Query::new("id.server.", 16);
        q.qclass = 3;
        q.bytes()
    }] {
        let (signed, _) = tsig::sign(&request, &key("default-xfr"), tsig::now());
        let raw = dns::udp_raw_from("127.0.0.1:0", primary.udp4, &signed)
            .await
            .expect("an answer");
        assert_eq!(&raw[2..4], &[0x80, 0x05]);
    }

    // A primary that allows unsigned transfers from 127.0.0.0/8 gives it unsigned, over
    // UDP and TCP.
    let dir = TempDir::new("digest-acl-net");
    let open = TestServer::start(
        &dir,
        primary_config(&dir, &[r#"transfer.networks = ["127.0.0.0/8"]"#]),
    )
    .await;
    let raw = dns::udp_raw_from("127.0.0.1:0", open.udp4, &request)
        .await
        .expect("an answer");
    assert_eq!(&raw[2..10], &[0x84, 0x00, 0, 1, 0, 1, 0, 0]);
    let mut tcp = Tcp::connect(open.tcp4).await;
    tcp.send_raw(&request).await;
    let raw = tcp.recv_raw(Duration::from_secs(5)).await.expect("a reply");
    let m = Message::from_vec(&raw).expect("parses");
    assert_eq!(m.answers[0].data.to_string(), want);
}
