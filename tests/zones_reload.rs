//! Zones added and removed by a configuration reload, through the real binary (SIGHUP and
//! `POST /reload`): a zone added is served at once with its journal replayed, its NOTIFY
//! targets told its serial and its transfer table applied; a zone removed is REFUSED as
//! any name outside the zones, its journal closed and kept, its NOTIFY retries stopped,
//! and it leaves `/status` and `/metrics`; a zone whose file or journal does not open
//! refuses the whole edit; updates racing the reloads are done whole or refused, none
//! lost. A secondary zone added starts pulling from its geoline primary, one whose
//! primaries change keeps serving what it has until the new primary answers, and one
//! removed stops pulling.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

use common::TempDir;
use common::dns::{self, A, SOA, Tcp};
use common::http;
use common::ports;
use common::process::{Serve, Started, listening};
use common::race;
use common::site::wait_until;
use common::tsig::{self, TestKey};

const LIMIT: Duration = Duration::from_secs(30);
use common::tsig::{SECRET, SECRET_B64};

const COM: &str = "$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 2026120701 7200 900 1209600 60
     NS  ns1
ns1  A   192.0.2.53
www  A   192.0.2.10
";

const NET: &str = "$ORIGIN example.net.
$TTL 300
@    SOA ns1 hostmaster 2026120801 7200 900 1209600 60
     NS  ns1
ns1  A   198.51.100.53
www  A   198.51.100.10
";

/// `[dns]`, `[admin]` and `[reload]` (the same every time: ephemeral ports, no watcher),
/// the key `k1` granted the ACME challenges of both zones, example.com, and `rest`.
fn config(rest: &str) -> String {
    format!(
        r#"[dns]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[reload]
watch = false

[[key]]
name = "k1"
algorithm = "hmac-sha256"
secret = "{SECRET_B64}"

[[zone]]
file = "example.com.zone"

{rest}
[update]
rate = 0
[[update.grant]]
key = "k1"
zones = ["example.com", "example.net"]
names = ["_acme-challenge.*"]
types = ["TXT"]
"#
    )
}

/// example.net's `[[zone]]`, its transfers allowed to 127.0.0.1 and NOTIFYs sent to
/// `notify`.
fn net_zone(notify: SocketAddr) -> String {
    format!(
        "[[zone]]\nfile = \"example.net.zone\"\ntransfer.networks = [\"127.0.0.1\"]\ntransfer.notify = [{{ address = \"{notify}\" }}]\n"
    )
}

/// `geoline serve` of example.com and `rest`, example.net's file written beside.
fn start(dir: &TempDir, rest: &str) -> Started {
    dir.write("example.com.zone", COM);
    dir.write("example.net.zone", NET);
    Started::start(&dir.write("geoline.toml", &config(rest)), LIMIT)
}

/// Writes the configuration with `rest`, sends SIGHUP, returns the outcome's line.
fn reload(server: &Started, dir: &TempDir, rest: &str) -> String {
    dir.write("geoline.toml", &config(rest));
    server.serve.sighup(LIMIT)
}

/// [`reload`], asserting that it applied a change of the list of zones.
fn reload_zone_list(server: &Started, dir: &TempDir, rest: &str) {
    let line = reload(server, dir, rest);
    assert!(
        line.contains("configuration reloaded: the list of [[zone]]s applied"),
        "{line}"
    );
}

/// Asserts that `qname A` is REFUSED with AA clear and no answer, as for any name
/// outside the zones served.
async fn refused(server: SocketAddr, qname: &str) {
    assert_eq!(ask(server, qname, A).await, (5, false, vec![]), "{qname}");
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// The rcode, AA and the answers' rdata of `qname`/`qtype` over UDP.
async fn ask(server: SocketAddr, qname: &str, qtype: u16) -> (u16, bool, Vec<String>) {
    let reply = dns::udp(server, &dns::Query::new(qname, qtype)).await;
    (reply.rcode(), reply.aa(), reply.answer_data())
}

/// The TXT values at `owner`, over TCP.
async fn txt(server: SocketAddr, owner: &str) -> BTreeSet<String> {
    let reply = dns::tcp(server, &dns::Query::new(owner, dns::TXT)).await;
    reply.answer_data().into_iter().collect()
}

/// The rcode of an UPDATE of `zone` adding TXT `value` at `owner`, signed with k1.
async fn update(server: SocketAddr, zone: &str, owner: &str, value: &str) -> ResponseCode {
    let id = (tsig::now() as u16) ^ value.len() as u16;
    let message = tsig::txt_update(id, zone, &[owner], value);
    let key = TestKey::new("k1", "hmac-sha256", SECRET);
    let (signed, _) = tsig::sign(&message, &key, tsig::now());
    let mut tcp = Tcp::connect(server).await;
    tcp.send_raw(&signed).await;
    let raw = tcp
        .recv_raw(Duration::from_secs(10))
        .await
        .expect("a response to the update");
    Message::from_vec(&raw)
        .expect("a DNS message")
        .response_code
}

/// The rcode of an unsigned AXFR of `zone` over TCP and how many records its first
/// message holds.
async fn axfr(server: SocketAddr, zone: &str) -> (ResponseCode, usize) {
    let mut m = Message::new(0x5a5a, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name(zone), RecordType::AXFR));
    let mut tcp = Tcp::connect(server).await;
    tcp.send_raw(&m.to_vec().expect("encodes")).await;
    let raw = tcp
        .recv_raw(Duration::from_secs(10))
        .await
        .expect("a response to the AXFR");
    let m = Message::from_vec(&raw).expect("a DNS message");
    (m.response_code, m.answers.len())
}

/// The next NOTIFY `target` receives within `wait`: its zone and SOA serial (not
/// acknowledged: the server keeps retrying).
async fn next_notify(target: &UdpSocket, wait: Duration) -> Option<(String, u32)> {
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(wait, target.recv_from(&mut buf))
        .await
        .ok()?
        .expect("receive");
    let notify = Message::from_vec(&buf[..n]).expect("a DNS message");
    assert_eq!(notify.op_code, OpCode::Notify);
    let serial = match notify.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA in the NOTIFY: {other:?}"),
    };
    Some((notify.queries[0].name().to_string(), serial))
}

/// Reads NOTIFYs at `target` until one says `serial` (within 10 s); panics when none does.
async fn notified(target: &UdpSocket, serial: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_notify(target, left).await {
            Some((zone, got)) if got == serial => {
                assert_eq!(zone, "example.net.");
                return;
            }
            Some(_) => continue,
            None => panic!("no NOTIFY of serial {serial}"),
        }
    }
}

/// The rcode of an unsigned NOTIFY of `zone` over UDP.
async fn notify(server: SocketAddr, zone: &str) -> ResponseCode {
    let mut m = Message::new(0x4e4f, MessageType::Query, OpCode::Notify);
    m.add_query(Query::query(name(zone), RecordType::SOA));
    let raw = dns::udp_raw_from("127.0.0.1:0", server, &m.to_vec().expect("encodes"))
        .await
        .expect("an answer to the NOTIFY");
    Message::from_vec(&raw)
        .expect("a DNS message")
        .response_code
}

/// Takes every datagram already queued at `target`.
fn drain(target: &UdpSocket) {
    let mut buf = vec![0u8; 4096];
    while target.try_recv_from(&mut buf).is_ok() {}
}

/// The lines of the `/metrics` document that name `zone`.
async fn metrics_of(admin: SocketAddr, zone: &str) -> Vec<String> {
    let label = format!("zone=\"{zone}\"");
    http::get(admin, "/metrics", None)
        .await
        .body
        .lines()
        .filter(|l| l.contains(&label))
        .map(str::to_string)
        .collect()
}

/// The origins `/status` lists.
async fn status_zones(admin: SocketAddr) -> Vec<String> {
    let status = http::get(admin, "/status", None).await.json();
    status["zones"]
        .as_array()
        .expect("zones")
        .iter()
        .map(|z| z["origin"].as_str().expect("origin").to_string())
        .collect()
}

#[tokio::test]
async fn a_zone_added_by_sighup_is_served_notified_and_transferred_and_removed_whole() {
    let dir = TempDir::new("zones-reload-add");
    let target = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let target_addr = target.local_addr().expect("addr");
    let server = start(&dir, "");
    let challenge = "_acme-challenge.example.net.";

    // Outside every zone: REFUSED, AA clear, no answer; an update is NOTAUTH.
    refused(server.dns, "www.example.net").await;
    assert_eq!(
        update(server.dns, "example.net.", challenge, "before").await,
        ResponseCode::NotAuth
    );

    reload_zone_list(&server, &dir, &net_zone(target_addr));
    assert_eq!(
        ask(server.dns, "www.example.net", A).await,
        (0, true, vec!["198.51.100.10".to_string()])
    );
    assert_eq!(
        ask(server.dns, "www.example.com", A).await,
        (0, true, vec!["192.0.2.10".to_string()])
    );
    // Its NOTIFY target is told its serial at once, and told again until it answers.
    let first = next_notify(&target, Duration::from_secs(10)).await;
    assert_eq!(first, Some(("example.net.".to_string(), 2026120801)));
    let retried = next_notify(&target, Duration::from_secs(10)).await;
    assert_eq!(retried, first);
    // Its transfer table: AXFR allowed from 127.0.0.1 (SOA, NS, two A, SOA).
    assert_eq!(
        axfr(server.dns, "example.net.").await,
        (ResponseCode::NoError, 5)
    );
    assert_eq!(
        update(server.dns, "example.net.", challenge, "kept").await,
        ResponseCode::NoError
    );
    // The update's new serial is sent too.
    notified(&target, 2026120802).await;
    assert!(
        ask(server.dns, "example.net", SOA).await.1,
        "the SOA with AA"
    );
    assert_eq!(
        status_zones(server.admin).await,
        ["example.com.", "example.net."]
    );
    // A NOTIFY of a zone of files: REFUSED (nobody is its primary), and counted.
    assert_eq!(
        notify(server.dns, "example.net.").await,
        ResponseCode::Refused
    );
    let series = metrics_of(server.admin, "example.net.").await;
    for family in [
        "geoline_notify_received_total{zone=\"example.net.\",result=\"refused\"} 1",
        "geoline_dns_responses_total{zone=\"example.net.\",line=\"default\",qtype=\"A\",rcode=\"NOERROR\"} 1",
        "geoline_zone_serial{zone=\"example.net.\"} 2026120802",
        "geoline_zone_journal_entries{zone=\"example.net.\"} 1",
        "geoline_dns_updates_total{zone=\"example.net.\",key=\"k1.\",result=\"noerror\"} 1",
    ] {
        assert!(series.iter().any(|l| l == family), "{family}: {series:#?}");
    }

    // Removed: REFUSED as any name outside the zones, updates NOTAUTH, the journal kept,
    // the NOTIFY retries stopped, gone from /status and /metrics (its NOTIFY counters
    // too).
    let journal = dir.path().join("example.net.jnl");
    reload_zone_list(&server, &dir, "");
    // What was sent before the reload landed is not what this waits for.
    drain(&target);
    refused(server.dns, "www.example.net").await;
    // No zone has a transfer table any more: a transfer request is a query for a name
    // outside the zones.
    assert_eq!(
        axfr(server.dns, "example.net.").await,
        (ResponseCode::Refused, 0)
    );
    assert_eq!(
        update(server.dns, "example.net.", challenge, "gone").await,
        ResponseCode::NotAuth
    );
    assert!(
        server
            .serve
            .stderr()
            .contains("zone no longer served; its journal is closed and kept"),
        "{}",
        server.serve.stderr()
    );
    assert!(journal.metadata().expect("the journal is kept").len() > 0);
    assert_eq!(status_zones(server.admin).await, ["example.com."]);
    assert_eq!(
        metrics_of(server.admin, "example.net.").await,
        Vec::<String>::new()
    );
    // The retries were 1 s then 2 s apart: the next would have come within 5 s.
    assert_eq!(next_notify(&target, Duration::from_secs(5)).await, None);
    assert_eq!(
        ask(server.dns, "www.example.com", A).await,
        (0, true, vec!["192.0.2.10".to_string()])
    );

    // Added again: its journal replayed, the update served, the serial where it was.
    let line = reload(&server, &dir, &net_zone(target_addr));
    assert!(line.contains("configuration reloaded"), "{line}");
    assert_eq!(
        txt(server.dns, challenge).await,
        BTreeSet::from(["kept".to_string()])
    );
    let reply = dns::udp(server.dns, &dns::Query::new("example.net", SOA)).await;
    match reply.message.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => assert_eq!(soa.serial, 2026120802),
        other => panic!("no SOA: {other:?}"),
    }
    notified(&target, 2026120802).await;
}

#[tokio::test]
async fn a_zone_whose_file_or_journal_does_not_open_refuses_the_whole_reload() {
    let dir = TempDir::new("zones-reload-refused");
    let server = start(&dir, "");
    let unused = ports::free_addr();

    // The file is missing: nothing of the edit applies, the log and /status say why.
    std::fs::remove_file(dir.path().join("example.net.zone")).expect("remove");
    dir.write(
        "example.org.zone",
        &NET.replace("example.net", "example.org"),
    );
    let edit = format!(
        "{}[[zone]]\nfile = \"example.org.zone\"\n",
        net_zone(unused)
    );
    dir.write("geoline.toml", &config(&edit));
    let response = http::post(server.admin, "/reload", None).await;
    assert_eq!(response.status, 422);
    let body = response.json();
    let missing = dir.path().join("example.net.zone");
    assert_eq!(
        body["config"]["error"],
        format!(
            "{}: cannot read: No such file or directory (os error 2)",
            missing.display()
        ),
        "{body}"
    );
    let status = http::get(server.admin, "/status", None).await.json();
    assert_eq!(
        status["config"]["last_reload"]["error"], body["config"]["error"],
        "{status}"
    );
    assert_eq!(status_zones(server.admin).await, ["example.com."]);
    assert!(
        server.serve.stderr().contains(&format!(
            "{}: cannot read: No such file or directory",
            missing.display()
        )),
        "{}",
        server.serve.stderr()
    );
    // The zone beside it, whose file is fine, is not added either.
    refused(server.dns, "www.example.net").await;
    refused(server.dns, "www.example.org").await;
    assert_eq!(
        ask(server.dns, "www.example.com", A).await,
        (0, true, vec!["192.0.2.10".to_string()])
    );

    // The file is back but its journal cannot be opened (a directory in its place).
    dir.write("example.net.zone", NET);
    let journal = dir.path().join("example.net.jnl");
    std::fs::create_dir_all(&journal).expect("a directory where the journal goes");
    let response = http::post(server.admin, "/reload", None).await;
    assert_eq!(response.status, 422);
    let error = response.json()["config"]["error"]
        .as_str()
        .expect("an error")
        .to_string();
    assert!(
        error.starts_with(&format!("{}: ", journal.display())),
        "{error}"
    );
    refused(server.dns, "www.example.net").await;
    refused(server.dns, "www.example.org").await;
    assert_eq!(status_zones(server.admin).await, ["example.com."]);

    std::fs::remove_dir(&journal).expect("remove the directory");
    let response = http::post(server.admin, "/reload", None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.json()["config"]["applied"],
        serde_json::json!(["the list of [[zone]]s"])
    );
    assert_eq!(
        ask(server.dns, "www.example.net", A).await,
        (0, true, vec!["198.51.100.10".to_string()])
    );
    assert_eq!(
        status_zones(server.admin).await,
        ["example.com.", "example.net.", "example.org."]
    );
}

/// Updates of example.net sent without pause while SIGHUP removes and adds the zone in
/// turn: each is acknowledged or NOTAUTH, and once the zone is back every acknowledged one
/// is served — nothing acknowledged was lost with the zone's removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_racing_a_zone_s_removal_are_whole_or_notauth_and_none_is_lost() {
    let dir = TempDir::new("zones-reload-race");
    let unused = ports::free_addr();
    let with_net = net_zone(unused);
    let server = start(&dir, &with_net);
    let dns = server.dns;
    let challenge = "_acme-challenge.example.net.";
    let send =
        move |value: String| async move { update(dns, "example.net.", challenge, &value).await };
    let raced = race::updates_racing_reloads(100, ResponseCode::NotAuth, send, |n| {
        reload(&server, &dir, if n % 2 == 0 { "" } else { &with_net })
    })
    .await;
    if raced.reloads % 2 == 1 {
        let line = reload(&server, &dir, &with_net);
        assert!(line.contains("configuration reloaded"), "{line}");
    }
    raced.assert_served(challenge, txt(dns, challenge).await);
}

/// A geoline primary of example.org on `port`, www at `www`, SOA refresh and retry 1 s,
/// transfers allowed to 127.0.0.1 unsigned.
fn start_primary(dir: &TempDir, port: u16, serial: u32, www: &str) -> Serve {
    dir.write(
        "example.org.zone",
        &format!(
            "$ORIGIN example.org.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 1 1 1209600 60\n@ NS ns1\nns1 A 203.0.113.53\nwww A {www}\n"
        ),
    );
    let path = dir.write(
        "geoline.toml",
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[reload]\nwatch = false\n[[zone]]\nfile = \"example.org.zone\"\ntransfer.networks = [\"127.0.0.1\"]\n"
        ),
    );
    let serve = Serve::start(&path, &[]);
    serve.wait_for("admin listening", LIMIT);
    serve
}

/// example.org's `[[zone]]` pulled from `primary` into `store/`.
fn org_secondary(primary: SocketAddr) -> String {
    format!("[[zone]]\norigin = \"example.org\"\nprimaries = [\"{primary}\"]\nstore = \"store\"\n")
}

/// Transfer requests for example.org a primary answered, from its `/metrics`.
async fn transfers_answered(admin: SocketAddr) -> f64 {
    http::get(admin, "/metrics", None)
        .await
        .body
        .lines()
        .filter(|l| l.starts_with("geoline_xfr_requests_total{zone=\"example.org.\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_secondary_zone_added_changed_and_removed_by_sighup() {
    let pdir = TempDir::new("zones-reload-p1");
    let p2dir = TempDir::new("zones-reload-p2");
    let (p1, p2) = (ports::free_addr(), ports::free_addr());
    let primary = start_primary(&pdir, p1.port(), 2026120901, "203.0.113.1");
    let primary_admin = listening(&primary.stderr(), "admin");
    let dir = TempDir::new("zones-reload-s");
    let server = start(&dir, "");
    refused(server.dns, "www.example.org").await;

    // Added: pulled from the primary and served.
    reload_zone_list(&server, &dir, &org_secondary(p1));
    let dns = server.dns;
    wait_until("the secondary to serve example.org", LIMIT, || async move {
        ask(dns, "www.example.org", A).await == (0, true, vec!["203.0.113.1".into()])
    })
    .await;
    assert!(dir.path().join("store/example.org.default.zone").exists());
    let status = http::get(server.admin, "/status", None).await.json();
    let org = status["zones"]
        .as_array()
        .expect("zones")
        .iter()
        .find(|z| z["origin"] == "example.org.")
        .unwrap_or_else(|| panic!("example.org in /status: {status}"))
        .clone();
    assert_eq!(
        org["secondary"]["primaries"],
        serde_json::json!([p1.to_string()]),
        "{status}"
    );

    // Its primaries changed to one not answering yet: the zone keeps serving what it has.
    let line = reload(&server, &dir, &org_secondary(p2));
    assert!(
        line.contains("configuration reloaded: [[zone]] primaries applied"),
        "{line}"
    );
    server
        .serve
        .wait_for("secondary check failed; keeping what is served", LIMIT);
    assert_eq!(
        ask(server.dns, "www.example.org", A).await,
        (0, true, vec!["203.0.113.1".to_string()])
    );
    // The first primary is no longer asked (its task was stopped).
    let asked = transfers_answered(primary_admin).await;
    // The new primary answers with a newer serial: taken at the next retry.
    let primary2 = start_primary(&p2dir, p2.port(), 2026120902, "203.0.113.2");
    wait_until("the secondary to take the new primary's data", LIMIT, || async move {
        ask(dns, "www.example.org", A).await == (0, true, vec!["203.0.113.2".into()])
    })
    .await;
    assert_eq!(transfers_answered(primary_admin).await, asked);

    // Removed: REFUSED, gone from /status and /metrics, and no longer pulled.
    reload_zone_list(&server, &dir, "");
    refused(server.dns, "www.example.org").await;
    assert_eq!(status_zones(server.admin).await, ["example.com."]);
    assert_eq!(
        metrics_of(server.admin, "example.org.").await,
        Vec::<String>::new()
    );
    let p2_admin = listening(&primary2.stderr(), "admin");
    // A check sent just before the removal is let finish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = transfers_answered(p2_admin).await;
    // It was checked every second (SOA refresh 1 s); three seconds of silence now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(transfers_answered(p2_admin).await, asked);
}
