//! Health-checked answers end to end: real TCP, HTTP and HTTPS targets on loopback
//! addresses, stopped and started while a real geoline answers, and the time from a
//! target dying (or coming back) to the answers changing.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::dns::{A, Query, Tcp, udp};
use common::site::Config;
use common::{TempDir, TestServer, http, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const ZONE: &str = "$ORIGIN example.com.
$TTL 300
@     SOA ns1 hostmaster 1 3600 600 86400 60
@     NS  ns1
ns1   A   192.0.2.53
www   A   127.0.0.2
www   A   127.0.0.3
solo  A   127.0.0.4
other A   192.0.2.9
";

/// A request a target saw: its request line and Host header, and the TLS server name.
type Seen = (String, Option<String>);

/// What an HTTP target answers, changed while it runs.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: &'static str,
}

/// A target on `addr`: plain TCP accepts, or an HTTP(S) server answering `reply` and
/// remembering the Host header (and the TLS server name) of the last request.
struct Target {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
    reply: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Target {
    fn new(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> Target {
        Target {
            addr,
            task: None,
            reply: Arc::new(Mutex::new(Reply {
                status: 200,
                body: "all ok",
            })),
            seen: Arc::default(),
            tls,
        }
    }

    async fn start(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("bind target");
        let (reply, seen, tls) = (self.reply.clone(), self.seen.clone(), self.tls.clone());
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (reply, seen, tls) = (reply.clone(), seen.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve_http(stream, None, &reply, &seen).await,
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let sni = stream.get_ref().1.server_name().map(str::to_string);
                            serve_http(stream, sni, &reply, &seen).await;
                        }
                    }
                });
            }
        }));
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn answer(&self, status: u16, body: &'static str) {
        *self.reply.lock().expect("lock") = Reply { status, body };
    }
}

async fn serve_http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    sni: Option<String>,
    reply: &Mutex<Reply>,
    seen: &Mutex<Vec<Seen>>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return, // a TCP check: connect and close
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request).to_string();
    let head = text.lines().next().unwrap_or("").to_string();
    let host = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or("")
        .to_string();
    seen.lock()
        .expect("lock")
        .push((format!("{head} | {host}"), sni));
    let Reply { status, body } = reply.lock().expect("lock").clone();
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Three loopback addresses sharing one free port.
async fn addresses(last_octets: &[u8]) -> Vec<SocketAddr> {
    let port = common::ports::free_port();
    last_octets
        .iter()
        .map(|o| SocketAddr::from(([127, 0, 0, *o], port)))
        .collect()
}

/// The addresses answered for `name` over UDP (the answer cache) and over TCP (the strict
/// path), which must agree, each with its TTL: `["127.0.0.2 20", ...]`, sorted.
async fn answered(server: &TestServer, name: &str) -> Vec<String> {
    answered_to(server, &Query::new(name, A)).await.0
}

/// The addresses answered to `query` as [`answered`] has them, and the ECS scope of the
/// response (`None` without the option).
async fn answered_to(server: &TestServer, query: &Query) -> (Vec<String>, Option<u8>) {
    // A state change may fall between the two queries: then the next pair agrees.
    let mut pairs = Vec::new();
    for _ in 0..3 {
        let over_udp = seen(udp(server.udp4, query).await);
        let mut tcp = Tcp::connect(server.tcp4).await;
        tcp.send_raw(&query.bytes()).await;
        let raw = tcp
            .recv_raw(Duration::from_secs(2))
            .await
            .expect("a TCP reply");
        let over_tcp = seen(common::dns::Reply::parse(raw));
        if over_udp == over_tcp {
            return over_udp;
        }
        pairs.push((over_udp, over_tcp));
    }
    panic!("UDP and TCP answers for {} differ: {pairs:?}", query.name);
}

/// A reply's addresses (as [`rdata`] has them) and its ECS scope.
fn seen(reply: common::dns::Reply) -> (Vec<String>, Option<u8>) {
    let scope = reply.subnet().map(|(_, _, scope, _)| scope);
    (rdata(reply.answers()), scope)
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn rdata(answers: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = answers
        .iter()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            format!("{} {}", fields[fields.len() - 1], fields[1])
        })
        .collect();
    out.sort();
    out
}

/// Polls `name` every 20 ms until it answers `expected`; the time it took.
async fn until_answered(
    server: &TestServer,
    name: &str,
    expected: &[&str],
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let now = answered(server, name).await;
        if now == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{name} still answers {now:?} after {:?}, expected {expected:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_of(server: &TestServer, address: &str) -> serde_json::Value {
    status_of_with(server, address, None).await
}

const INTERVAL_MS: u64 = 300;

/// The keys of a TCP monitor of `addresses` (TOML list items) checked every
/// [`INTERVAL_MS`].
fn tcp_monitor(addresses: &str, port: u16, down_after: u32, up_after: u32) -> Vec<String> {
    vec![
        format!("addresses = [{addresses}]"),
        r#"type = "tcp""#.into(),
        format!("port = {port}"),
        format!("interval_ms = {INTERVAL_MS}"),
        "timeout_ms = 100".into(),
        format!("down_after = {down_after}"),
        format!("up_after = {up_after}"),
    ]
}

#[tokio::test]
async fn a_dead_tcp_target_leaves_the_answers_and_comes_back_within_the_thresholds() {
    let addrs = addresses(&[2, 3, 4]).await;
    let mut targets: Vec<Target> = addrs.iter().map(|a| Target::new(*a, None)).collect();
    for t in &mut targets {
        t.start().await;
    }
    let dir = TempDir::new("health-tcp");
    dir.write("example.com.zone", ZONE);
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .admin()
        .table("[health]", &["ttl_cap = 20"])
        .table(
            "[[health.monitor]]",
            &refs(&tcp_monitor(
                r#""127.0.0.2", "127.0.0.3", "127.0.0.4""#,
                addrs[0].port(),
                3,
                2,
            )),
        );
    let server = TestServer::start(&dir, config).await;

    // Watched addresses have their TTL capped; others keep the zone's.
    assert_eq!(
        answered(&server, "www.example.com").await,
        ["127.0.0.2 20", "127.0.0.3 20"]
    );
    assert_eq!(
        answered(&server, "other.example.com").await,
        ["192.0.2.9 300"]
    );
    // Let every address be checked once at least (the first check is at a random point of
    // the first interval).
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS + 100)).await;

    targets[1].stop().await;
    let bound = Duration::from_millis(INTERVAL_MS * 3 + 1000);
    let took = until_answered(&server, "www.example.com", &["127.0.0.2 20"], bound).await;
    assert!(took <= bound, "{took:?}");
    // Not before three checks could have failed (less the jitter of 10 %).
    assert!(
        took >= Duration::from_millis(INTERVAL_MS * 2 * 9 / 10),
        "{took:?}"
    );
    let down = status_of(&server, "127.0.0.3").await;
    assert_eq!(down["state"], "down");
    let why = down["last_change"]["why"].as_str().expect("why");
    assert!(
        why.starts_with("3 failed checks in a row, the last: connect to 127.0.0.3:"),
        "{why}"
    );
    assert_eq!(down["last_check"]["ok"], false);
    assert_eq!(status_of(&server, "127.0.0.2").await["state"], "up");

    // The only address of an RRset is answered even when down.
    targets[2].stop().await;
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 3 + 300)).await;
    assert_eq!(status_of(&server, "127.0.0.4").await["state"], "down");
    assert_eq!(
        answered(&server, "solo.example.com").await,
        ["127.0.0.4 20"]
    );

    targets[1].start().await;
    let bound = Duration::from_millis(INTERVAL_MS * 2 + 1000);
    let took = until_answered(
        &server,
        "www.example.com",
        &["127.0.0.2 20", "127.0.0.3 20"],
        bound,
    )
    .await;
    assert!(took <= bound, "{took:?}");
    let up = status_of(&server, "127.0.0.3").await;
    assert_eq!(up["state"], "up");
    assert_eq!(up["last_change"]["why"], "2 successful checks in a row");

    let metrics = http::get(server.admin.expect("admin"), "/metrics", None).await;
    assert!(
        metrics
            .body
            .contains("geoline_health_up{address=\"127.0.0.4\"} 0\n"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("geoline_health_up{address=\"127.0.0.3\"} 1\n"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("geoline_health_transitions_total{address=\"127.0.0.3\"} 2\n"),
        "{}",
        metrics.body
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn http_and_https_checks_read_status_body_host_and_certificate() {
    let addrs = addresses(&[5, 6, 7]).await;
    let ca = tls::TestCa::new();
    let good = tls::server_config(&ca.leaf(&["relay.example.com"]));
    let wrong = tls::server_config(&ca.leaf(&["elsewhere.example.com"]));
    let mut plain = Target::new(addrs[0], None);
    let mut secure = Target::new(addrs[1], Some(good));
    let mut unverified = Target::new(addrs[2], Some(wrong.clone()));
    for t in [&mut plain, &mut secure, &mut unverified] {
        t.start().await;
    }
    let dir = TempDir::new("health-http");
    dir.write("ca.pem", &ca.pem());
    dir.write(
        "example.com.zone",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nweb A 127.0.0.5\nweb A 192.0.2.80\ntls A 127.0.0.6\ntls A 192.0.2.80\nany A 127.0.0.7\nany A 192.0.2.80\n",
    );
    let port = format!("port = {}", addrs[0].port());
    let interval = format!("interval_ms = {INTERVAL_MS}");
    let common_keys = [
        port.as_str(),
        interval.as_str(),
        "timeout_ms = 200",
        "down_after = 2",
        "up_after = 2",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        common_keys
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let http_keys = with(&[
        r#"addresses = ["127.0.0.5"]"#,
        r#"type = "http""#,
        r#"path = "/health?from=geoline""#,
        r#"host = "relay.example.com""#,
        "status = [200, 299]",
        r#"body = "ok""#,
    ]);
    let https_keys = with(&[
        r#"addresses = ["127.0.0.6"]"#,
        r#"type = "https""#,
        r#"host = "relay.example.com""#,
        r#"ca_file = "ca.pem""#,
    ]);
    let unverified_keys = with(&[
        r#"addresses = ["127.0.0.7"]"#,
        r#"type = "https""#,
        r#"host = "relay.example.com""#,
        "verify = false",
    ]);
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .admin()
        .table("[[health.monitor]]", &refs(&http_keys))
        .table("[[health.monitor]]", &refs(&https_keys))
        .table("[[health.monitor]]", &refs(&unverified_keys));
    let server = TestServer::start(&dir, config).await;
    let within = Duration::from_millis(INTERVAL_MS * 3 + 1000);

    // All pass: a certificate for another name passes when not verified.
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 3)).await;
    for a in ["127.0.0.5", "127.0.0.6", "127.0.0.7"] {
        let s = status_of(&server, a).await;
        assert_eq!(
            (s["state"].as_str(), s["last_check"]["ok"].as_bool()),
            (Some("up"), Some(true)),
            "{a}: {s}"
        );
    }
    let seen = plain.seen.lock().expect("lock").clone();
    assert_eq!(
        seen[0],
        (
            "GET /health?from=geoline HTTP/1.1 | relay.example.com".to_string(),
            None
        )
    );
    let seen = secure.seen.lock().expect("lock").clone();
    assert_eq!(
        seen[0],
        (
            "GET / HTTP/1.1 | relay.example.com".to_string(),
            Some("relay.example.com".to_string())
        )
    );

    // A status outside the range, then a body without the text: down each time.
    plain.answer(503, "ok");
    until_answered(&server, "web.example.com", &["192.0.2.80 30"], within).await;
    assert_eq!(
        status_of(&server, "127.0.0.5").await["last_check"]["error"],
        "status 503, expected 200..=299"
    );
    plain.answer(200, "it is ok");
    until_answered(
        &server,
        "web.example.com",
        &["127.0.0.5 30", "192.0.2.80 30"],
        within,
    )
    .await;
    plain.answer(200, "maintenance");
    until_answered(&server, "web.example.com", &["192.0.2.80 30"], within).await;
    assert_eq!(
        status_of(&server, "127.0.0.5").await["last_check"]["error"],
        "status 200 but the body lacks `ok`"
    );

    // The verified check refuses a certificate for another name.
    secure.stop().await;
    let mut swapped = Target::new(addrs[1], Some(wrong));
    swapped.start().await;
    until_answered(&server, "tls.example.com", &["192.0.2.80 30"], within).await;
    let error = status_of(&server, "127.0.0.6").await["last_check"]["error"]
        .as_str()
        .expect("error")
        .to_string();
    assert!(error.starts_with("TLS with 127.0.0.6:"), "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(
        answered(&server, "any.example.com").await,
        ["127.0.0.7 30", "192.0.2.80 30"]
    );
    server.running.shutdown().await;
}

#[test]
fn health_config_errors_name_file_and_line() {
    let dir = TempDir::new("health-config");
    let path = dir.write(
        "geoline.toml",
        "[[health.monitor]]\naddresses = [\"192.0.2.1\"]\ntype = \"tcp\"\n",
    );
    let err = geoline::config::Config::load(&path).expect_err("no port");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3: health.monitor of type tcp needs a port",
            path.display()
        )
    );
}

#[tokio::test]
async fn a_line_whose_addresses_are_all_down_answers_as_its_all_down_lines() {
    let addrs = addresses(&[9, 10]).await;
    let mut targets: Vec<Target> = addrs.iter().map(|a| Target::new(*a, None)).collect();
    for t in &mut targets {
        t.start().await;
    }
    let dir = TempDir::new("health-all-down");
    let head = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n";
    // The origin (not watched), the mainland relay, the Hong Kong edge.
    dir.write("example.com.zone", &format!("{head}www A 127.0.0.8\n"));
    dir.write(
        "example.com.china.zone",
        "$ORIGIN example.com.\nwww 300 A 127.0.0.9\n",
    );
    dir.write(
        "example.com.hk.zone",
        "$ORIGIN example.com.\nwww 300 A 127.0.0.10\n",
    );
    let config = Config::dns()
        .line("china", &[r#"cidrs = ["1.2.3.0/24"]"#])
        .line("hk", &[r#"cidrs = ["5.6.0.0/16"]"#])
        .zone(
            "example.com.zone",
            &[
                ("china", "example.com.china.zone"),
                ("hk", "example.com.hk.zone"),
            ],
        )
        .admin()
        .table("[health]", &["ttl_cap = 25"])
        .table(
            "[[health.monitor]]",
            &refs(&tcp_monitor(
                r#""127.0.0.9", "127.0.0.10""#,
                addrs[0].port(),
                2,
                2,
            )),
        )
        .table("[health.all_down]", &[r#"china = ["hk", "default"]"#]);
    let server = TestServer::start(&dir, config).await;
    let china = Query::new("www.example.com", A).subnet("1.2.3.0/24");
    let hk = Query::new("www.example.com", A).subnet("5.6.7.0/24");
    let elsewhere = Query::new("www.example.com", A).subnet("9.9.9.0/24");
    let within = Duration::from_millis(INTERVAL_MS * 2 + 1000);
    let until = |query: Query, expected: (&'static [&'static str], u8)| {
        let server = &server;
        async move {
            let start = Instant::now();
            loop {
                let (now, scope) = answered_to(server, &query).await;
                if now == expected.0 {
                    // Health changes the addresses, never the client's line: the scope is
                    // the line's (the /24 of china, the /16 of hk).
                    assert_eq!(scope, Some(expected.1), "{:?}", expected.0);
                    return;
                }
                assert!(
                    start.elapsed() < within,
                    "{now:?}, expected {:?}",
                    expected.0
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    until(china.clone(), (&["127.0.0.9 25"], 24)).await;
    until(hk.clone(), (&["127.0.0.10 25"], 16)).await;
    assert_eq!(answered_to(&server, &elsewhere).await.0, ["127.0.0.8 300"]);
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS + 100)).await;

    // The relay down: mainland clients get the Hong Kong edge.
    targets[0].stop().await;
    until(china.clone(), (&["127.0.0.10 25"], 24)).await;
    // Both down: the origin, with the TTL capped; hk has no chain and serves its own.
    targets[1].stop().await;
    until(china.clone(), (&["127.0.0.8 25"], 24)).await;
    until(hk.clone(), (&["127.0.0.10 25"], 16)).await;
    assert_eq!(answered_to(&server, &elsewhere).await.0, ["127.0.0.8 300"]);
    // The relay back: the mainland gets it again.
    targets[0].start().await;
    until(china.clone(), (&["127.0.0.9 25"], 24)).await;
    server.running.shutdown().await;
}

const TOKEN: &str = "health-admin-token-0123";

#[tokio::test]
async fn operators_force_an_address_down_or_up_and_the_override_survives_a_restart() {
    let addrs = addresses(&[11, 12]).await;
    let mut targets: Vec<Target> = addrs.iter().map(|a| Target::new(*a, None)).collect();
    for t in &mut targets {
        t.start().await;
    }
    let dir = TempDir::new("health-force");
    dir.write(
        "example.com.zone",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 127.0.0.11\nwww A 127.0.0.12\n",
    );
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .table(
            "[admin]",
            &[r#"listen = "127.0.0.1:0""#, &format!("token = {TOKEN:?}")],
        )
        .table("[health]", &["ttl_cap = 20"])
        .table(
            "[[health.monitor]]",
            &refs(&tcp_monitor(
                r#""127.0.0.11", "127.0.0.12""#,
                addrs[0].port(),
                2,
                2,
            )),
        );
    let both = ["127.0.0.11 20", "127.0.0.12 20"];
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    assert_eq!(answered(&server, "www.example.com").await, both);

    // The token is asked for, like every admin POST.
    let refused = http::post(admin, "/health/127.0.0.12?force=down", None).await;
    assert_eq!(refused.status, 401);
    for (path, status, error) in [
        (
            "/health/127.0.0.99?force=down",
            404,
            "127.0.0.99 is not watched by any health.monitor",
        ),
        (
            "/health/www.example.com?force=down",
            400,
            "`www.example.com` is not an IP address",
        ),
        (
            "/health/127.0.0.12?force=sideways",
            400,
            "give force=down, force=up or force=clear",
        ),
    ] {
        let r = http::post(admin, path, Some(TOKEN)).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (status, Some(error)),
            "{path}"
        );
    }
    assert!(!dir.path().join("health-state.json").exists());

    // Forced down: out of the answers at once, its checks still passing.
    let r = http::post(
        admin,
        "/health/127.0.0.12?force=down&why=relay%20upgrade",
        Some(TOKEN),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"ok": true, "address": "127.0.0.12", "state": "down", "forced": true})
    );
    assert_eq!(
        answered(&server, "www.example.com").await,
        ["127.0.0.11 20"]
    );
    let s = status_of_with(&server, "127.0.0.12", Some(TOKEN)).await;
    assert_eq!(
        (
            s["state"].as_str(),
            s["checks_say"].as_str(),
            s["forced"]["state"].as_str()
        ),
        (Some("down"), Some("up"), Some("down")),
        "{s}"
    );
    assert_eq!(s["forced"]["why"], "relay upgrade");
    assert_eq!(
        s["last_change"]["why"],
        "forced down by an operator: relay upgrade"
    );
    let kept = std::fs::read_to_string(dir.path().join("health-state.json")).expect("state file");
    assert!(kept.contains("\"address\": \"127.0.0.12\""), "{kept}");
    assert!(kept.contains("\"state\": \"down\""), "{kept}");
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 3)).await;
    assert_eq!(
        answered(&server, "www.example.com").await,
        ["127.0.0.11 20"]
    );

    // Kept across a restart: down from the first answer on.
    server.running.shutdown().await;
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    assert_eq!(
        answered(&server, "www.example.com").await,
        ["127.0.0.11 20"]
    );

    // Forced up: a dead target stays in the answers.
    targets[0].stop().await;
    let r = http::post(admin, "/health/127.0.0.11?force=up", Some(TOKEN)).await;
    assert_eq!(r.json()["state"], "up");
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 4)).await;
    let s = status_of_with(&server, "127.0.0.11", Some(TOKEN)).await;
    assert_eq!(
        (s["state"].as_str(), s["checks_say"].as_str()),
        (Some("up"), Some("down")),
        "{s}"
    );
    // Both overrides hold: .12 down (up by its checks), .11 up (down by its checks).
    assert_eq!(
        answered(&server, "www.example.com").await,
        ["127.0.0.11 20"]
    );

    // Cleared: the checks decide again, at once.
    let r = http::post(admin, "/health/127.0.0.12?force=clear", Some(TOKEN)).await;
    assert_eq!(
        r.json(),
        serde_json::json!({"ok": true, "address": "127.0.0.12", "state": "up", "forced": false})
    );
    http::post(admin, "/health/127.0.0.11?force=clear", Some(TOKEN)).await;
    assert_eq!(
        answered(&server, "www.example.com").await,
        ["127.0.0.12 20"]
    );
    let kept = std::fs::read_to_string(dir.path().join("health-state.json")).expect("state file");
    assert_eq!(kept, "{\n  \"overrides\": []\n}\n");
    server.running.shutdown().await;
}

async fn status_of_with(
    server: &TestServer,
    address: &str,
    token: Option<&str>,
) -> serde_json::Value {
    let status = http::get(server.admin.expect("admin"), "/status", token)
        .await
        .json();
    status["health"]["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .find(|a| a["address"] == address)
        .cloned()
        .unwrap_or_else(|| panic!("{address} not in {status}"))
}

#[tokio::test]
async fn weighted_answers_follow_the_ratios_and_stay_with_the_client_subnet() {
    let dir = TempDir::new("health-weights");
    dir.write(
        "example.com.zone",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nw A 192.0.2.21\nw A 192.0.2.22\nw A 192.0.2.23\npair A 192.0.2.31\npair A 192.0.2.32\npair A 192.0.2.33\nplain A 192.0.2.41\nplain A 192.0.2.42\n",
    );
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .table(
            "[[health.weights]]",
            &[r#"addresses = { "192.0.2.21" = 6, "192.0.2.22" = 3, "192.0.2.23" = 1 }"#],
        )
        .table(
            "[[health.weights]]",
            &[
                r#"addresses = { "192.0.2.31" = 1, "192.0.2.32" = 1, "192.0.2.33" = 1 }"#,
                "answers = 2",
            ],
        );
    let server = TestServer::start(&dir, config).await;

    // 10,000 distinct /24s: each address is the answer of its share of them, within 5 %.
    let mut tasks = Vec::new();
    for part in 0..8u32 {
        let to = server.udp4;
        tasks.push(tokio::spawn(async move {
            let mut counts = std::collections::BTreeMap::<String, u32>::new();
            for i in (part * 1250)..((part + 1) * 1250) {
                let subnet = format!("10.{}.{}.0/24", i / 256, i % 256);
                let reply = udp(to, &Query::new("w.example.com", A).subnet(&subnet)).await;
                let (addresses, scope) = seen(reply);
                assert_eq!(addresses.len(), 1, "{subnet}: {addresses:?}");
                assert_eq!(scope, Some(24), "{subnet}");
                *counts.entry(addresses[0].clone()).or_default() += 1;
            }
            counts
        }));
    }
    let mut counts = std::collections::BTreeMap::<String, u32>::new();
    for t in tasks {
        for (a, n) in t.await.expect("task") {
            *counts.entry(a).or_default() += n;
        }
    }
    for (address, weight) in [
        ("192.0.2.21 300", 6.0),
        ("192.0.2.22 300", 3.0),
        ("192.0.2.23 300", 1.0),
    ] {
        let share = f64::from(counts.get(address).copied().unwrap_or(0)) / 10_000.0;
        let expected = weight / 10.0;
        assert!(
            (share - expected).abs() <= 0.05 * expected,
            "{address}: {share} of the answers, expected {expected}: {counts:?}"
        );
    }

    // One subnet always gets the same answer, over UDP and TCP; a /16 gets a /24 scope
    // (the choice read 24 bits), and a line-scoped name without weights keeps scope 0.
    for subnet in ["10.200.1.0/24", "172.16.0.0/16", "198.51.100.0/24"] {
        let query = Query::new("w.example.com", A).subnet(subnet);
        let first = answered_to(&server, &query).await;
        assert_eq!(first.1, Some(24), "{subnet}");
        for _ in 0..20 {
            assert_eq!(answered_to(&server, &query).await, first, "{subnet}");
        }
    }
    let plain = answered_to(
        &server,
        &Query::new("plain.example.com", A).subnet("10.1.2.0/24"),
    )
    .await;
    assert_eq!(
        plain,
        (
            vec!["192.0.2.41 300".to_string(), "192.0.2.42 300".to_string()],
            Some(0)
        )
    );
    // Without ECS the source's /24 chooses: the same answer every time.
    let first = answered(&server, "w.example.com").await;
    assert_eq!(first.len(), 1);
    for _ in 0..10 {
        assert_eq!(answered(&server, "w.example.com").await, first);
    }

    // N of them: two of three, distinct, spread over the three pairs.
    let mut pairs = std::collections::BTreeSet::new();
    for i in 0..60 {
        let query = Query::new("pair.example.com", A).subnet(&format!("10.9.{i}.0/24"));
        let (addresses, scope) = answered_to(&server, &query).await;
        assert_eq!((addresses.len(), scope), (2, Some(24)), "{addresses:?}");
        assert_ne!(addresses[0], addresses[1]);
        pairs.insert(addresses);
    }
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    server.running.shutdown().await;
}

/// Polls `/status` until `check` holds for `address`'s status.
async fn until_status(
    server: &TestServer,
    address: &str,
    within: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let s = status_of(server, address).await;
        if check(&s) {
            return s;
        }
        assert!(start.elapsed() < within, "{address}: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_probe_publishes_its_checks_and_a_quorum_of_sources_decides_with_one_unreachable() {
    // One address, two ports: the probe checks one, the authoritative server the other,
    // so each can see it die on its own (as from the mainland and from Hong Kong).
    let from_probe = addresses(&[51]).await[0];
    let from_here = addresses(&[51]).await[0];
    assert_ne!(from_probe.port(), from_here.port());
    let mut seen_by_probe = Target::new(from_probe, None);
    let mut seen_here = Target::new(from_here, None);
    seen_by_probe.start().await;
    seen_here.start().await;

    // The probe: no DNS, its checks published on its admin listener.
    let probe_dir = TempDir::new("health-probe");
    let probe_config = Config::default()
        .table(
            "[admin]",
            &[r#"listen = "127.0.0.1:0""#, &format!("token = {TOKEN:?}")],
        )
        .table(
            "[[health.monitor]]",
            &refs(&tcp_monitor(r#""127.0.0.51""#, from_probe.port(), 2, 2)),
        );
    let path = probe_dir.write("geoline.toml", &probe_config.to_string());
    let config = geoline::config::Config::load(&path).expect("probe config");
    assert!(config.is_probe());
    let probe = geoline::server::start(&config).await.expect("probe starts");
    assert!(probe.dns_udp.is_empty() && probe.dns_tcp.is_empty());
    let probe_admin = probe.admin.expect("probe admin");
    assert_eq!(
        http::get(probe_admin, "/health/results", None).await.status,
        401
    );
    let unreachable = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let unreachable_port = unreachable.local_addr().expect("addr").port();
    drop(unreachable);

    let dir = TempDir::new("health-quorum");
    dir.write(
        "example.com.zone",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 127.0.0.51\nwww A 192.0.2.80\n",
    );
    let probe_url = format!("url = \"http://{probe_admin}/health/results\"");
    let unreachable_url = format!("url = \"http://127.0.0.1:{unreachable_port}\"");
    let source_keys = |url: &str, token: bool| -> Vec<String> {
        let mut keys = vec![
            url.to_string(),
            format!("interval_ms = {INTERVAL_MS}"),
            "timeout_ms = 200".into(),
        ];
        if token {
            keys.push(format!("token = {TOKEN:?}"));
        }
        keys
    };
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .admin()
        .table("[health]", &["quorum = 2"])
        .table(
            "[[health.monitor]]",
            &refs(&tcp_monitor(r#""127.0.0.51""#, from_here.port(), 2, 2)),
        )
        .table("[[health.source]]", &refs(&source_keys(&probe_url, true)))
        .table(
            "[[health.source]]",
            &refs(&source_keys(&unreachable_url, false)),
        );
    let server = TestServer::start(&dir, config).await;
    let both = ["127.0.0.51 30", "192.0.2.80 30"];
    let within = Duration::from_millis(INTERVAL_MS * 3 + 1000);
    assert_eq!(answered(&server, "www.example.com").await, both);

    // Every source read once: the probe says up, the unreachable one is unknown.
    let s = until_status(&server, "127.0.0.51", within, |s| {
        s["sources"][1]["state"] == "up" && s["sources"][0]["state"] == "up"
    })
    .await;
    assert_eq!(
        s["sources"][1]["source"],
        format!("http://{probe_admin}/health/results")
    );
    assert_eq!(s["sources"][2]["state"], "unknown", "{s}");
    let why = s["sources"][2]["why"].as_str().expect("why");
    assert!(why.starts_with("connect to 127.0.0.1:"), "{why}");
    let published = http::get(probe_admin, "/health/results", Some(TOKEN)).await;
    assert_eq!(
        published.json(),
        serde_json::json!({"results": [{"address": "127.0.0.51", "state": "up", "why": null}]})
    );

    // The probe sees it die: one voter of three says down, the unreachable one is not
    // counted down, so the address stays (quorum 2).
    seen_by_probe.stop().await;
    let s = until_status(&server, "127.0.0.51", within, |s| {
        s["sources"][1]["state"] == "down"
    })
    .await;
    assert_eq!(s["state"], "up", "{s}");
    assert!(
        s["sources"][1]["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("2 failed checks in a row")),
        "{s}"
    );
    assert_eq!(answered(&server, "www.example.com").await, both);

    // This server sees it die too: two of three, out of the answers.
    seen_here.stop().await;
    until_answered(&server, "www.example.com", &["192.0.2.80 30"], within).await;
    let s = status_of(&server, "127.0.0.51").await;
    let why = s["last_change"]["why"].as_str().expect("why");
    assert!(why.ends_with("2 of 3 voters say down, quorum 2"), "{why}");

    // Back from the probe's side: one voter says down again, the address is back.
    seen_by_probe.start().await;
    until_answered(&server, "www.example.com", &both, within).await;
    server.running.shutdown().await;
    probe.shutdown().await;
}

#[tokio::test]
async fn an_http_target_that_accepts_and_never_answers_times_out_and_goes_down() {
    let addrs = addresses(&[21, 22]).await;
    let mut answering = Target::new(addrs[0], None);
    answering.start().await;
    // 127.0.0.22 completes the TCP handshake and never sends a byte.
    let silent = TcpListener::bind(addrs[1]).await.expect("bind");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let dir = TempDir::new("health-hang");
    dir.write(
        "example.com.zone",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nhung A 127.0.0.21\nhung A 127.0.0.22\n",
    );
    let port = format!("port = {}", addrs[0].port());
    let interval = format!("interval_ms = {INTERVAL_MS}");
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .admin()
        .table("[health]", &["ttl_cap = 20"])
        .table(
            "[[health.monitor]]",
            &[
                r#"addresses = ["127.0.0.21", "127.0.0.22"]"#,
                r#"type = "http""#,
                &port,
                &interval,
                "timeout_ms = 100",
                "down_after = 2",
                "up_after = 2",
            ],
        );
    let server = TestServer::start(&dir, config).await;
    let bound = Duration::from_millis(INTERVAL_MS * 2 + 1000);
    let took = until_answered(&server, "hung.example.com", &["127.0.0.21 20"], bound).await;
    assert!(took <= bound, "{took:?}");
    let hung = status_of(&server, "127.0.0.22").await;
    assert_eq!(hung["state"], "down", "{hung}");
    assert_eq!(
        hung["last_check"]["error"], "no answer within 100 ms",
        "{hung}"
    );
    assert_eq!(
        hung["last_change"]["why"], "2 failed checks in a row, the last: no answer within 100 ms",
        "{hung}"
    );
    assert_eq!(hung["checks"], hung["failures"], "{hung}");
    assert_eq!(status_of(&server, "127.0.0.21").await["state"], "up");
    server.running.shutdown().await;
    hold.abort();
    answering.stop().await;
}
