//! Limits against hostile clients, over real sockets: response rate limiting on UDP
//! (answers, then drops and slips exactly per `slip`; per network; never over TCP; the
//! metrics), and the TCP listener's limits.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::dns::{self, A, Query, Reply, TXT, Tcp};
use common::site::{Config, NO_WATCH};
use common::{TempDir, TestServer, http};
use tokio::net::UdpSocket;

const ZONE: &str = r#"$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster 2026112901 7200 900 1209600 60
        NS   ns1
ns1     A    192.0.2.53
www     A    192.0.2.10
mail    A    192.0.2.25
*.apps  A    192.0.2.20
"#;

/// A server on 127.0.0.1 with one UDP worker (so that one client's datagrams are
/// answered in order) and the admin listener, serving the zone [`start`] writes.
fn config() -> Config {
    Config::dns()
        .set("[dns]", &["udp_workers = 1"])
        .admin()
        .table("[reload]", NO_WATCH)
        .zone("example.com.zone", &[])
}

/// Writes the zone and starts the server from `config`.
async fn start(dir: &TempDir, config: Config) -> TestServer {
    // A 16 KB TXT record: a few hundred responses fill any socket buffer.
    let big = format!("\"{}\" ", "x".repeat(250)).repeat(64);
    dir.write("example.com.zone", &format!("{ZONE}big TXT {big}\n"));
    TestServer::start(dir, config).await
}

/// Waits for the rate limiter's clock to start a new second, so that a burst sent now
/// falls in one second.
async fn second_starts() {
    let now = geoline::internal::now_secs();
    while geoline::internal::now_secs() == now {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sends every query at once from `socket`, then collects replies until none come for a
/// while; returns them by query ID (`None`: no reply).
async fn burst(socket: &UdpSocket, server: SocketAddr, queries: &[Query]) -> Vec<Option<Reply>> {
    for q in queries {
        socket.send_to(&q.bytes(), server).await.expect("send");
    }
    let mut replies: Vec<Option<Reply>> = queries.iter().map(|_| None).collect();
    let mut buf = vec![0u8; 65535];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
    {
        let reply = Reply::parse(buf[..n].to_vec());
        let i = queries
            .iter()
            .position(|q| q.id == reply.id())
            .expect("a reply to a query sent");
        assert!(replies[i].is_none(), "one reply per query");
        replies[i] = Some(reply);
    }
    replies
}

fn numbered(q: &Query, n: u16) -> Vec<Query> {
    (0..n)
        .map(|i| {
            let mut q = q.clone();
            q.id = 1000 + i;
            q
        })
        .collect()
}

async fn metric(admin: SocketAddr, series: &str) -> u64 {
    let body = http::get(admin, "/metrics", None).await.body;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics:\n{body}"))
}

fn rrl_series(kind: &str, action: &str) -> String {
    format!("geoline_dns_rrl_responses_total{{kind=\"{kind}\",action=\"{action}\"}}")
}

/// A random-subdomain flood: `A` queries for `rnd0x.<under>` to `rnd9x.<under>`, numbered
/// from `first_id`, each passed through `shape`.
fn random_subdomains(under: &str, first_id: u16, shape: fn(Query) -> Query) -> Vec<Query> {
    (0..10u16)
        .map(|i| {
            let mut q = shape(Query::new(&format!("rnd{i}x.{under}"), A));
            q.id = first_id + i;
            q
        })
        .collect()
}

/// Starts the server from `config` and sends `queries` at once, within one second of
/// the rate limiter's clock, from one socket; returns the server and the replies by query.
async fn flood(
    dir: &TempDir,
    config: Config,
    queries: &[Query],
) -> (TestServer, Vec<Option<Reply>>) {
    let s = start(dir, config).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    second_starts().await;
    let replies = burst(&client, s.udp4, queries).await;
    (s, replies)
}

fn assert_full_answer(r: &Reply, address: &str) {
    assert!(!r.tc() && r.aa(), "a full answer");
    assert_eq!(r.answers().len(), 1);
    assert!(r.answers()[0].ends_with(address), "{:?}", r.answers());
}

/// A slipped response: TC, the question echoed as sent, no records but the OPT, which is
/// there exactly when the query had one.
fn assert_slipped(r: &Reply, q: &Query) {
    assert!(r.tc(), "TC set");
    assert_eq!(r.rcode(), 0);
    assert_eq!(r.question_name(), format!("{}.", q.name));
    assert_eq!(r.message.queries.len(), 1);
    assert!(r.answers().is_empty() && r.authority().is_empty() && r.additional().is_empty());
    assert_eq!(
        r.opt().is_some(),
        q.edns.is_some(),
        "OPT iff the query had one"
    );
    let records = usize::from(u16::from_be_bytes([r.raw[10], r.raw[11]]));
    assert_eq!(records, usize::from(q.edns.is_some()));
}

#[tokio::test]
async fn rrl_answers_then_drops_and_slips_per_network_udp_only() {
    let dir = TempDir::new("limits-rrl");
    let s = start(
        &dir,
        config().table("[dns.rrl]", &["responses_per_second = 5", "slip = 2"]),
    )
    .await;
    let admin = s.admin.expect("admin");
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");

    // With EDNS: 5 answers, then drop, slip, drop, slip, drop, slip.
    let q = Query::new("WwW.example.com", A).edns();
    let queries = numbered(&q, 11);
    second_starts().await;
    let replies = burst(&client, s.udp4, &queries).await;
    for r in &replies[..5] {
        assert_full_answer(r.as_ref().expect("answered"), "192.0.2.10");
    }
    for (i, r) in replies[5..].iter().enumerate() {
        match r {
            Some(r) if i % 2 == 1 => assert_slipped(r, &q),
            None if i % 2 == 0 => {}
            other => panic!("limited response {i}: {other:?}"),
        }
    }
    // The same second: another /24 has a bucket of its own, and TCP is never limited.
    let r = dns::udp_from("127.0.1.1:0", s.udp4, &q).await;
    assert_full_answer(&r, "192.0.2.10");
    let mut tcp = Tcp::connect(s.tcp4).await;
    for _ in 0..10 {
        assert_full_answer(&tcp.ask(&q).await, "192.0.2.10");
    }
    assert_eq!(metric(admin, &rrl_series("answer", "dropped")).await, 3);
    assert_eq!(metric(admin, &rrl_series("answer", "slipped")).await, 3);

    // Without EDNS the slipped response has no OPT either.
    let q = Query::new("mail.example.com", A);
    second_starts().await;
    let replies = burst(&client, s.udp4, &numbered(&q, 7)).await;
    for r in &replies[..5] {
        assert_full_answer(r.as_ref().expect("answered"), "192.0.2.25");
    }
    assert!(replies[5].is_none());
    assert_slipped(replies[6].as_ref().expect("slipped"), &q);
    assert_eq!(metric(admin, &rrl_series("answer", "dropped")).await, 4);
    assert_eq!(metric(admin, &rrl_series("answer", "slipped")).await, 4);
}

#[tokio::test]
async fn rrl_random_subdomain_flood_shares_the_zone_bucket() {
    let dir = TempDir::new("limits-rrl-nx");
    let rrl = config().table("[dns.rrl]", &["responses_per_second = 4", "slip = 0"]);
    let queries = random_subdomains("example.com", 2000, |q| q.edns());
    let (s, replies) = flood(&dir, rrl, &queries).await;
    let admin = s.admin.expect("admin");
    for r in &replies[..4] {
        assert_eq!(r.as_ref().expect("answered").rcode(), 3, "NXDOMAIN");
    }
    assert!(replies[4..].iter().all(Option::is_none), "slip 0: dropped");
    assert_eq!(metric(admin, &rrl_series("nxdomain", "dropped")).await, 6);
    assert_eq!(metric(admin, &rrl_series("nxdomain", "slipped")).await, 0);
    // A name that exists is another bucket.
    let r = dns::udp(s.udp4, &Query::new("www.example.com", A)).await;
    assert_full_answer(&r, "192.0.2.10");
}

#[tokio::test]
async fn rrl_answers_from_one_wildcard_share_a_bucket() {
    let dir = TempDir::new("limits-rrl-wild");
    let rrl = config().table("[dns.rrl]", &["responses_per_second = 4", "slip = 0"]);
    let queries = random_subdomains("apps.example.com", 3000, |q| q);
    let (s, replies) = flood(&dir, rrl, &queries).await;
    let admin = s.admin.expect("admin");
    for r in &replies[..4] {
        assert_full_answer(r.as_ref().expect("answered"), "192.0.2.20");
    }
    assert!(replies[4..].iter().all(Option::is_none), "slip 0: dropped");
    assert_eq!(metric(admin, &rrl_series("answer", "dropped")).await, 6);
    // A name that exists is another bucket.
    let r = dns::udp(s.udp4, &Query::new("www.example.com", A)).await;
    assert_full_answer(&r, "192.0.2.10");
}

#[tokio::test]
async fn rrl_off_by_default_and_when_disabled() {
    let disabled = config().table(
        "[dns.rrl]",
        &["enabled = false", "responses_per_second = 1"],
    );
    for config in [config(), disabled] {
        let dir = TempDir::new("limits-rrl-off");
        let s = start(&dir, config).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let q = Query::new("www.example.com", A);
        let replies = burst(&client, s.udp4, &numbered(&q, 30)).await;
        for r in &replies {
            assert_full_answer(r.as_ref().expect("answered"), "192.0.2.10");
        }
        let admin = s.admin.expect("admin");
        assert_eq!(metric(admin, &rrl_series("answer", "dropped")).await, 0);
    }
}

async fn tcp_answers(conn: &mut Tcp, id: u16) {
    let mut q = Query::new("www.example.com", A);
    q.id = id;
    assert_full_answer(&conn.ask(&q).await, "192.0.2.10");
}

#[tokio::test]
async fn tcp_connections_per_client_capped() {
    let dir = TempDir::new("limits-tcp-client");
    let s = start(&dir, config()).await;
    let admin = s.admin.expect("admin");
    let mut held = Vec::new();
    for i in 0..16 {
        let mut conn = Tcp::connect_from("127.0.0.1:0", s.tcp4).await;
        tcp_answers(&mut conn, i).await;
        held.push(conn);
    }
    // The 17th from the same address is closed at once; another address is served.
    let mut extra = Tcp::connect_from("127.0.0.1:0", s.tcp4).await;
    assert!(extra.closed_within(Duration::from_secs(2)).await);
    let mut other = Tcp::connect_from("127.0.0.7:0", s.tcp4).await;
    tcp_answers(&mut other, 100).await;
    for (i, conn) in held.iter_mut().enumerate() {
        tcp_answers(conn, 200 + i as u16).await;
    }
    let refused = "geoline_dns_tcp_connections_refused_total{limit=\"per_client\"}";
    assert_eq!(metric(admin, refused).await, 1);
    assert_eq!(metric(admin, "geoline_dns_tcp_connections_open").await, 17);

    // A closed connection frees its place.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut conn = Tcp::connect_from("127.0.0.1:0", s.tcp4).await;
        if !conn.closed_within(Duration::from_millis(100)).await {
            again = Some(conn);
            break;
        }
    }
    tcp_answers(&mut again.expect("admitted once one closed"), 300).await;
}

#[tokio::test]
async fn tcp_connections_capped_in_total() {
    let dir = TempDir::new("limits-tcp-total");
    let s = start(&dir, config().set("[dns]", &["tcp_max_connections = 3"])).await;
    let admin = s.admin.expect("admin");
    let mut held = Vec::new();
    for i in 0..3u16 {
        let mut conn = Tcp::connect_from(&format!("127.0.0.{}:0", 10 + i), s.tcp4).await;
        tcp_answers(&mut conn, i).await;
        held.push(conn);
    }
    let mut extra = Tcp::connect_from("127.0.0.20:0", s.tcp4).await;
    assert!(extra.closed_within(Duration::from_secs(2)).await);
    for conn in &mut held {
        tcp_answers(conn, 9).await;
    }
    let refused = "geoline_dns_tcp_connections_refused_total{limit=\"total\"}";
    assert_eq!(metric(admin, refused).await, 1);
    assert_eq!(
        metric(admin, "geoline_dns_tcp_connections_accepted_total").await,
        3
    );
}

#[tokio::test]
async fn tcp_slowloris_cut_off_while_others_are_answered() {
    let dir = TempDir::new("limits-tcp-slow");
    let s = start(
        &dir,
        config().set(
            "[dns]",
            &["tcp_read_timeout_secs = 1", "tcp_idle_timeout_secs = 30"],
        ),
    )
    .await;
    let admin = s.admin.expect("admin");
    let mut slow = Tcp::connect(s.tcp4).await;
    slow.write_all(&[0]).await.expect("one byte");
    let started = std::time::Instant::now();
    let mut good = Tcp::connect(s.tcp4).await;
    for i in 0..5 {
        tcp_answers(&mut good, i).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(slow.closed_within(Duration::from_secs(3)).await, "cut off");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // The patient client is still answered: it is idle, not slow.
    tcp_answers(&mut good, 99).await;
    let closed = "geoline_dns_tcp_connections_closed_total{reason=\"read_timeout\"}";
    assert_eq!(metric(admin, closed).await, 1);
}

#[tokio::test]
async fn tcp_client_that_does_not_read_fills_a_bounded_buffer_and_is_cut_off() {
    let dir = TempDir::new("limits-tcp-write");
    let s = start(
        &dir,
        config().set(
            "[dns]",
            &["tcp_read_timeout_secs = 1", "tcp_idle_timeout_secs = 30"],
        ),
    )
    .await;
    let admin = s.admin.expect("admin");
    // A small receive window and no reading: 30 responses of 16 KB are 480 KB, more than
    // the server's bounded send buffer holds (the kernel alone would grow it to
    // net.ipv4.tcp_wmem's 4 MB and take them all), so its writes cannot complete.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("receive buffer");
    let mut stuck = socket.connect(s.tcp4).await.expect("connect");
    let query = Query::new("big.example.com", TXT).bytes();
    let mut frames = Vec::new();
    for _ in 0..30 {
        frames.extend_from_slice(&(query.len() as u16).to_be_bytes());
        frames.extend_from_slice(&query);
    }
    tokio::io::AsyncWriteExt::write_all(&mut stuck, &frames)
        .await
        .expect("queries sent");
    let closed = "geoline_dns_tcp_connections_closed_total{reason=\"write_timeout\"}";
    let started = std::time::Instant::now();
    let mut good = Tcp::connect(s.tcp4).await;
    while metric(admin, closed).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "not cut off");
        tcp_answers(&mut good, 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(metric(admin, closed).await, 1);
    // Others are served all along, and after.
    tcp_answers(&mut good, 2).await;
    drop(stuck);
}

#[tokio::test]
async fn tcp_pipelined_answers_in_order_up_to_the_query_limit() {
    let dir = TempDir::new("limits-tcp-queries");
    let s = start(
        &dir,
        config().set("[dns]", &["tcp_max_queries_per_connection = 4"]),
    )
    .await;
    let admin = s.admin.expect("admin");
    let mut conn = Tcp::connect(s.tcp4).await;
    // Six queries in one write; names alternate so that order is visible in the answers.
    let mut wire = Vec::new();
    for i in 0..6u16 {
        let name = if i % 2 == 0 {
            "www.example.com"
        } else {
            "mail.example.com"
        };
        let mut q = Query::new(name, A);
        q.id = 500 + i;
        let bytes = q.bytes();
        wire.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        wire.extend_from_slice(&bytes);
    }
    conn.write_all(&wire).await.expect("write");
    for i in 0..4u16 {
        let raw = conn.recv_raw(Duration::from_secs(5)).await.expect("answer");
        let r = Reply::parse(raw);
        assert_eq!(r.id(), 500 + i, "in order");
        let address = if i % 2 == 0 {
            "192.0.2.10"
        } else {
            "192.0.2.25"
        };
        assert_full_answer(&r, address);
    }
    // The limit reached: closed after the fourth answer, the rest unanswered.
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    let closed = "geoline_dns_tcp_connections_closed_total{reason=\"query_limit\"}";
    assert_eq!(metric(admin, closed).await, 1);
}

#[tokio::test]
async fn tcp_malformed_messages_and_shutdown() {
    let dir = TempDir::new("limits-tcp-bad");
    let s = start(&dir, config()).await;
    // A header with no question: FORMERR, and the connection goes on.
    let mut conn = Tcp::connect(s.tcp4).await;
    conn.send_raw(&[0x77, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .await;
    let raw = conn
        .recv_raw(Duration::from_secs(5))
        .await
        .expect("FORMERR");
    assert_eq!((raw[0], raw[1], raw[3] & 0x0f), (0x77, 0x01, 1));
    tcp_answers(&mut conn, 1).await;
    // Too short for an ID: nothing to answer, the connection is closed.
    conn.send_raw(&[1, 2, 3]).await;
    assert!(conn.closed_within(Duration::from_secs(2)).await);

    // Shutdown closes idle connections and returns promptly.
    let mut idle = Tcp::connect(s.tcp4).await;
    tcp_answers(&mut idle, 2).await;
    let stopped = tokio::time::timeout(Duration::from_secs(3), s.running.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown waited for an idle connection");
    assert!(idle.closed_within(Duration::from_secs(1)).await);
}
