//! The DNS side of a configuration reload, through the real binary and SIGHUP: `[[key]]`s
//! and `[update]` (grants, rate, journals) applied live, with updates in flight either
//! done under the old policy or refused whole, and nothing acknowledged lost; a zone's
//! `transfer` table (keys, networks, NOTIFY targets) applied live.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use common::TempDir;
use common::dns::{self, Tcp};
use common::http;
use common::process::{Serve, Started};
use common::race;
use common::tsig::{self, TestKey};

const LIMIT: Duration = Duration::from_secs(30);
/// The secret of every test key ("secret-secret-secret-secret-1234").
use common::tsig::{SECRET, SECRET_B64};

const ZONE: &str = "$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 2026120701 7200 900 1209600 60
     NS  ns1
ns1  A   192.0.2.53
www  A   192.0.2.10
";

/// `geoline serve` with its DNS and admin addresses, reloaded by SIGHUP.
struct Server {
    serve: Serve,
    dns: SocketAddr,
    admin: SocketAddr,
}

/// The configuration: DNS and admin on ephemeral ports (the same text every time, so
/// `[dns]` and `[admin]` never change), the file watcher off, and `rest`.
fn config(rest: &str) -> String {
    format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[reload]\nwatch = false\n\n{rest}"
    )
}

/// A `[[key]]` named `name` (hmac-sha256, the test secret).
fn key(name: &str) -> String {
    format!("[[key]]\nname = \"{name}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET_B64}\"\n")
}

/// A grant for `key` on example.com, of TXT records at the `names` patterns.
fn grant(key: &str, names: &str) -> String {
    format!(
        "[[update.grant]]\nkey = \"{key}\"\nzones = [\"example.com\"]\nnames = [{names}]\ntypes = [\"TXT\"]\n"
    )
}

const ZONE_TABLE: &str = "[[zone]]\nfile = \"example.com.zone\"\n";

impl Server {
    fn start(dir: &TempDir, rest: &str) -> Server {
        dir.write("example.com.zone", ZONE);
        let path = dir.write("geoline.toml", &config(rest));
        let Started { serve, dns, admin } = Started::start(&path, LIMIT);
        Server { serve, dns, admin }
    }

    /// Writes `rest` as the new configuration, sends SIGHUP and returns the log line that
    /// says what the configuration reload did.
    fn reload(&self, dir: &TempDir, rest: &str) -> String {
        dir.write("geoline.toml", &config(rest));
        self.serve.sighup(LIMIT)
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn test_key(name: &str) -> TestKey {
    TestKey::new(name, "hmac-sha256", SECRET)
}

/// An UPDATE of example.com adding TXT `value` at each of `owners`.
fn add_txt(id: u16, owners: &[&str], value: &str) -> Vec<u8> {
    tsig::txt_update(id, "example.com.", owners, value)
}

/// What an UPDATE signed with `key` got over TCP: the rcode, and the TSIG error of the
/// response (0 when signed and verified, as the response carries it).
async fn update(
    server: SocketAddr,
    key: &TestKey,
    owners: &[&str],
    value: &str,
) -> (ResponseCode, u16) {
    let id = (tsig::now() as u16) ^ value.len() as u16;
    let (signed, _) = tsig::sign(&add_txt(id, owners, value), key, tsig::now());
    let mut tcp = Tcp::connect(server).await;
    tcp.send_raw(&signed).await;
    let raw = tcp
        .recv_raw(Duration::from_secs(10))
        .await
        .expect("a response to the update");
    let m = Message::from_vec(&raw).expect("a DNS message");
    let error = tsig::reply_tsig(&raw).map_or(0, |t| t.error);
    (m.response_code, error)
}

/// The TXT values at `owner`, over TCP (there may be many).
async fn txt(server: SocketAddr, owner: &str) -> BTreeSet<String> {
    let reply = dns::tcp(server, &dns::Query::new(owner, dns::TXT)).await;
    reply
        .message
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect()
}

#[tokio::test]
async fn keys_grants_and_rate_change_on_sighup() {
    let dir = TempDir::new("dnsreload-keys");
    let first = format!(
        "{ZONE_TABLE}{}{}[update]\n{}",
        key("k1"),
        key("k3"),
        grant("k1", "\"_acme-challenge.*\"")
    );
    let server = Server::start(&dir, &first);
    let (k1, k2) = (test_key("k1"), test_key("k2"));
    let challenge = "_acme-challenge.example.com.";
    let www_challenge = "_acme-challenge.www.example.com.";
    assert_eq!(
        update(server.dns, &k1, &[challenge], "one").await,
        (ResponseCode::NoError, 0)
    );
    // k2 is not declared yet: BADKEY (NOTAUTH, TSIG error 17).
    assert_eq!(
        update(server.dns, &k2, &[challenge], "two").await,
        (ResponseCode::NotAuth, 17)
    );

    // k1 removed with its grant; k2 added, granted only the www challenge.
    let second = format!(
        "{ZONE_TABLE}{}{}[update]\n{}",
        key("k2"),
        key("k3"),
        grant("k2", "\"_acme-challenge.www\"")
    );
    let line = server.reload(&dir, &second);
    assert!(
        line.contains("configuration reloaded: [[key]], [update] applied"),
        "{line}"
    );
    assert_eq!(
        update(server.dns, &k1, &[challenge], "three").await,
        (ResponseCode::NotAuth, 17)
    );
    assert_eq!(
        update(server.dns, &k2, &[challenge], "four").await,
        (ResponseCode::Refused, 0)
    );
    assert_eq!(
        update(server.dns, &k2, &[www_challenge], "five").await,
        (ResponseCode::NoError, 0)
    );
    // What was acknowledged before the reload is still served.
    assert_eq!(
        txt(server.dns, challenge).await,
        BTreeSet::from(["one".to_string()])
    );
    assert_eq!(
        txt(server.dns, www_challenge).await,
        BTreeSet::from(["five".to_string()])
    );

    // A rate of one update a second: the second in a row is refused, as rate-limited.
    let third = second.replace("[update]\n", "[update]\nrate = 1\n");
    let line = server.reload(&dir, &third);
    assert!(
        line.contains("configuration reloaded: [update] applied"),
        "{line}"
    );
    assert_eq!(
        update(server.dns, &k2, &[www_challenge], "six").await,
        (ResponseCode::NoError, 0)
    );
    assert_eq!(
        update(server.dns, &k2, &[www_challenge], "seven").await,
        (ResponseCode::Refused, 0)
    );
    let metrics = http::get(server.admin, "/metrics", None).await.body;
    assert!(
        metrics.contains(
            "geoline_dns_updates_total{zone=\"example.com.\",key=\"k2.\",result=\"ratelimited\"} 1\n"
        ),
        "{metrics}"
    );
    let status = http::get(server.admin, "/status", None).await.json();
    assert_eq!(
        status["config"]["last_reload"]["applied"],
        serde_json::json!(["[update]"]),
        "{status}"
    );
}

/// Updates each writing two names, sent without pause while SIGHUP swaps a grant that
/// covers both for one that covers only the first: every update is either acknowledged
/// with both names served, or refused with neither; none is lost, none half applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_in_flight_across_reloads_are_whole_or_refused_and_none_is_lost() {
    let dir = TempDir::new("dnsreload-inflight");
    let wide = format!(
        "{ZONE_TABLE}{}[update]\nrate = 0\n{}",
        key("k1"),
        grant("k1", "\"_acme-challenge.*\"")
    );
    let narrow = wide.replace("\"_acme-challenge.*\"", "\"_acme-challenge.a\"");
    let server = Server::start(&dir, &wide);
    let dns = server.dns;
    let (a, b) = (
        "_acme-challenge.a.example.com.",
        "_acme-challenge.b.example.com.",
    );
    let send = move |value: String| async move {
        let (rcode, error) = update(dns, &test_key("k1"), &[a, b], &value).await;
        assert_eq!(error, 0, "the TSIG error of the answer to {value}");
        rcode
    };
    let raced = race::updates_racing_reloads(120, ResponseCode::Refused, send, |n| {
        server.reload(&dir, if n % 2 == 0 { &narrow } else { &wide })
    })
    .await;
    raced.assert_served(a, txt(dns, a).await);
    raced.assert_served(b, txt(dns, b).await);
}

/// A journal that would move away from its updates (`journal_dir` edited) refuses the
/// reload, naming both files; once the file is moved there, the reload applies, and the
/// updates are still served and go on into the new journal.
#[tokio::test]
async fn a_journal_moved_away_from_its_updates_refuses_the_reload() {
    let dir = TempDir::new("dnsreload-journal");
    std::fs::create_dir_all(dir.path().join("j1")).expect("j1");
    std::fs::create_dir_all(dir.path().join("j2")).expect("j2");
    let first = format!(
        "{ZONE_TABLE}{}[update]\njournal_dir = \"j1\"\n{}",
        key("k1"),
        grant("k1", "\"_acme-challenge.*\"")
    );
    let server = Server::start(&dir, &first);
    let k1 = test_key("k1");
    let challenge = "_acme-challenge.example.com.";
    assert_eq!(
        update(server.dns, &k1, &[challenge], "kept").await,
        (ResponseCode::NoError, 0)
    );
    let old = dir.path().join("j1/example.com.jnl");
    let new = dir.path().join("j2/example.com.jnl");
    let moved = first.replace("\"j1\"", "\"j2\"");
    let line = server.reload(&dir, &moved);
    assert!(line.contains("configuration not reloaded"), "{line}");
    let status = http::get(server.admin, "/status", None).await.json();
    let error = status["config"]["last_reload"]["error"]
        .as_str()
        .expect("an error")
        .to_string();
    assert_eq!(
        error,
        format!(
            "zone example.com.: its journal would move from {} (1 updates) to {}, which does not hold them: move the file there first (or write the zone to its file with POST /zones/example.com./flush before the change)",
            old.display(),
            new.display()
        )
    );
    // Still served, still journaled in j1.
    assert_eq!(
        txt(server.dns, challenge).await,
        BTreeSet::from(["kept".to_string()])
    );
    assert!(!new.exists());

    std::fs::rename(&old, &new).expect("move the journal");
    let line = server.reload(&dir, &moved);
    assert!(
        line.contains("configuration reloaded: [update] applied"),
        "{line}"
    );
    assert_eq!(
        update(server.dns, &k1, &[challenge], "after").await,
        (ResponseCode::NoError, 0)
    );
    assert_eq!(
        txt(server.dns, challenge).await,
        BTreeSet::from(["kept".to_string(), "after".to_string()])
    );
    let status = http::get(server.admin, "/status", None).await.json();
    let updates = &status["zones"][0]["updates"];
    assert_eq!(updates["journal"], new.display().to_string(), "{status}");
    assert_eq!(updates["journal_entries"], 2, "{status}");
    assert!(!old.exists());
    assert!(Path::new(&new).metadata().expect("new journal").len() > 0);
}

/// The rcode of an AXFR of example.com over TCP, signed with `key` when given, and the
/// types of its first message's answers.
async fn axfr(server: SocketAddr, key: Option<&TestKey>) -> (ResponseCode, Vec<RecordType>) {
    let mut m = Message::new(0x5a5a, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name("example.com."), RecordType::AXFR));
    let mut bytes = m.to_vec().expect("encodes");
    if let Some(key) = key {
        bytes = tsig::sign(&bytes, key, tsig::now()).0;
    }
    let mut tcp = Tcp::connect(server).await;
    tcp.send_raw(&bytes).await;
    let raw = tcp
        .recv_raw(Duration::from_secs(10))
        .await
        .expect("a response to the AXFR");
    let m = Message::from_vec(&raw).expect("a DNS message");
    let types = m.answers.iter().map(|r| r.record_type()).collect();
    (m.response_code, types)
}

/// The `transfer` table of example.com: `keys` (inline table body), `networks` and
/// `notify` (array bodies), with keys x1 and x2 declared.
fn transfer(keys: &str, networks: &str, notify: &str) -> String {
    format!(
        "{ZONE_TABLE}transfer.keys = {{ {keys} }}\ntransfer.networks = [{networks}]\ntransfer.notify = [{notify}]\n{}{}",
        key("x1"),
        key("x2")
    )
}

/// A zone's transfer table edited by SIGHUP: a key and a network taken away are refused
/// at once, a key added is served, and a NOTIFY target added is told the serial at once.
#[tokio::test]
async fn the_transfer_table_changes_on_sighup() {
    let dir = TempDir::new("dnsreload-xfr");
    let secondary = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let first = transfer("\"x1\" = \"default\"", "\"127.0.0.1\"", "");
    let server = Server::start(&dir, &first);
    let (x1, x2) = (test_key("x1"), test_key("x2"));
    let whole = vec![
        RecordType::SOA,
        RecordType::NS,
        RecordType::A,
        RecordType::A,
        RecordType::SOA,
    ];
    let sorted = |(rcode, mut types): (ResponseCode, Vec<RecordType>)| {
        types.sort();
        (rcode, types)
    };
    let mut whole_sorted = whole.clone();
    whole_sorted.sort();
    assert_eq!(
        sorted(axfr(server.dns, Some(&x1)).await),
        (ResponseCode::NoError, whole_sorted.clone())
    );
    assert_eq!(
        sorted(axfr(server.dns, None).await),
        (ResponseCode::NoError, whole_sorted.clone())
    );
    assert_eq!(
        axfr(server.dns, Some(&x2)).await,
        (ResponseCode::Refused, vec![])
    );

    let target = secondary.local_addr().expect("addr");
    let second = transfer(
        "\"x2\" = \"default\"",
        "",
        &format!("{{ address = \"{target}\" }}"),
    );
    let line = server.reload(&dir, &second);
    assert!(
        line.contains("configuration reloaded: [[zone]] transfer applied"),
        "{line}"
    );
    assert_eq!(
        axfr(server.dns, Some(&x1)).await,
        (ResponseCode::Refused, vec![])
    );
    assert_eq!(
        axfr(server.dns, None).await,
        (ResponseCode::Refused, vec![])
    );
    assert_eq!(
        sorted(axfr(server.dns, Some(&x2)).await),
        (ResponseCode::NoError, whole_sorted)
    );

    // The new target is told the zone's serial without waiting for a change.
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), secondary.recv_from(&mut buf))
        .await
        .expect("a NOTIFY within 10 s")
        .expect("receive");
    let notify = Message::from_vec(&buf[..n]).expect("a DNS message");
    assert_eq!(notify.op_code, OpCode::Notify);
    assert_eq!(notify.queries[0].name(), &name("example.com."));
    assert_eq!(notify.queries[0].query_type(), RecordType::SOA);
    match notify.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => assert_eq!(soa.serial, 2026120701),
        other => panic!("no SOA in the NOTIFY: {other:?}"),
    }
    // Acknowledged, so that it is not sent again.
    let mut ack = buf[..n].to_vec();
    ack[2] |= 0x80;
    secondary.send_to(&ack, from).await.expect("ack");
}
