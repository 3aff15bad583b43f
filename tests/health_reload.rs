//! `[health]` follows a configuration reload, SIGHUP to the real binary: a monitor added
//! starts checking and its dead address leaves the answers, an interval change keeps an
//! address's state and history, a changed check starts its state again, and a monitor
//! removed brings its address back into the answers and out of `/status` and `/metrics`;
//! a CA file edited with the configuration unchanged is read again.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TempDir;
use common::dns::{self, A, Query};
use common::http;
use common::process::Serve;
use common::site::wait_until;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(30);

const ZONE: &str = "$ORIGIN example.com.
$TTL 300
@     SOA ns1 hostmaster 1 3600 600 86400 60
@     NS  ns1
ns1   A   192.0.2.53
www   A   127.0.0.2
www   A   127.0.0.3
";

/// The configuration: DNS and admin on ports of the system's choosing (the same text at
/// every reload: no restart needed), no file watcher, and `health` at the end.
fn config(health: &str) -> String {
    format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [reload]\nwatch = false\n\n[[zone]]\nfile = \"example.com.zone\"\n{health}"
    )
}

/// A TCP monitor of `addresses` (TOML list items): down after 2 failures, up after 2
/// successes, checks of 100 ms.
fn monitor(addresses: &str, port: u16, interval_ms: u64) -> String {
    format!(
        "\n[[health.monitor]]\naddresses = [{addresses}]\ntype = \"tcp\"\nport = {port}\n\
         interval_ms = {interval_ms}\ntimeout_ms = 100\ndown_after = 2\nup_after = 2\n"
    )
}

/// The address on the start log's line naming `what` (`dns listening`, `admin listening`).
fn bound(log: &str, what: &str) -> SocketAddr {
    log.lines()
        .find(|l| l.contains(what))
        .and_then(|l| l.rsplit("addr=").next())
        .and_then(|a| a.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `{what}` address in:\n{log}"))
}

/// A port on 127.0.0.2 where connections are accepted (and closed); nothing listens on
/// 127.0.0.3 at that port.
async fn live_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    port
}

/// A port nothing listens on, on 127.0.0.3.
fn dead_port() -> u16 {
    common::ports::free_port()
}

struct Server {
    serve: Serve,
    dir: TempDir,
    dns: SocketAddr,
    admin: SocketAddr,
    reloads: usize,
}

impl Server {
    fn start(tag: &str, text: &str) -> Server {
        Server::start_with(tag, text, &[])
    }

    /// [`Server::start`], with `files` (name, contents) written beside the configuration.
    fn start_with(tag: &str, text: &str, files: &[(&str, &str)]) -> Server {
        let dir = TempDir::new(tag);
        dir.write("example.com.zone", ZONE);
        for (name, contents) in files {
            dir.write(name, contents);
        }
        let path = dir.write("geoline.toml", text);
        let serve = Serve::start(&path, &[]);
        let log = serve.wait_for("admin listening", LIMIT);
        Server {
            dns: bound(&log, "dns listening"),
            admin: bound(&log, "admin listening"),
            serve,
            dir,
            reloads: 0,
        }
    }

    /// Writes `text` as the configuration, sends SIGHUP, and waits until the reload has
    /// applied `[health]` (and nothing else).
    fn reload(&mut self, text: &str) {
        self.dir.write("geoline.toml", text);
        self.serve.signal("HUP");
        self.reloads += 1;
        let deadline = Instant::now() + LIMIT;
        let applied = "configuration reloaded: [health] applied";
        while self.serve.stderr().matches(applied).count() < self.reloads {
            assert!(
                Instant::now() < deadline,
                "reload {} not applied:\n{}",
                self.reloads,
                self.serve.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Writes `text` as the configuration, sends SIGHUP, and waits until the reload is
    /// refused; the log so far.
    fn refused(&mut self, text: &str) -> String {
        let before = self
            .serve
            .stderr()
            .matches("configuration not reloaded")
            .count();
        self.dir.write("geoline.toml", text);
        self.serve.signal("HUP");
        let deadline = Instant::now() + LIMIT;
        loop {
            let log = self.serve.stderr();
            if log.matches("configuration not reloaded").count() > before {
                return log;
            }
            assert!(Instant::now() < deadline, "reload not refused:\n{log}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The addresses answered for www.example.com, sorted.
    async fn www(&self) -> Vec<String> {
        let reply = dns::udp(self.dns, &Query::new("www.example.com", A)).await;
        let mut addresses: Vec<String> = reply
            .answers()
            .iter()
            .map(|l| l.rsplit(' ').next().expect("rdata").to_string())
            .collect();
        addresses.sort();
        addresses
    }

    /// Waits until www.example.com answers `expected`; the time it took.
    async fn until_www(&self, expected: &[&str]) -> Duration {
        let start = Instant::now();
        let what = format!("www to answer {expected:?}");
        wait_until(
            &what,
            LIMIT,
            move || async move { self.www().await == expected },
        )
        .await;
        start.elapsed()
    }

    /// `/status`'s watched addresses.
    async fn watched(&self) -> Vec<Value> {
        let status = http::get(self.admin, "/status", None).await.json();
        status["health"]["addresses"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no health addresses in {status}"))
    }

    /// `/status`'s entry for `address`.
    async fn status_of(&self, address: &str) -> Value {
        let watched = self.watched().await;
        watched
            .iter()
            .find(|a| a["address"] == address)
            .cloned()
            .unwrap_or_else(|| panic!("{address} is not in {watched:?}"))
    }
}

#[tokio::test]
async fn monitors_follow_a_sighup_reload_added_changed_and_removed() {
    let port = live_target().await;
    let both = ["127.0.0.2", "127.0.0.3"];
    // No [health] at all at start: nothing watched, both answered.
    let mut server = Server::start("health-reload", &config(""));
    assert_eq!(server.www().await, both);
    assert_eq!(server.watched().await, Vec::<Value>::new());

    // Watched from this reload on: the dead address leaves the answers within two checks
    // (the first at a random point of the first interval) and a second.
    let watch_both = r#""127.0.0.2", "127.0.0.3""#;
    server.reload(&config(&monitor(watch_both, port, 300)));
    let within = Duration::from_millis(300 * 2 + 1000);
    let took = server.until_www(&["127.0.0.2"]).await;
    assert!(took <= within, "{took:?}");
    let down = server.status_of("127.0.0.3").await;
    assert_eq!(down["state"], "down", "{down}");
    assert_eq!(server.status_of("127.0.0.2").await["state"], "up");
    let metrics = http::get(server.admin, "/metrics", None).await.body;
    assert!(
        metrics.contains("geoline_health_up{address=\"127.0.0.3\"} 0\n"),
        "{metrics}"
    );

    // A monitor that cannot run (its CA file is missing) refuses the whole edit: the
    // monitors running go on as they were.
    let broken = monitor(watch_both, port, 300)
        + "\n[[health.monitor]]\naddresses = [\"127.0.0.4\"]\ntype = \"https\"\n\
           host = \"relay.example.com\"\nca_file = \"missing-ca.pem\"\n";
    let log = server.refused(&config(&broken));
    assert!(log.contains("missing-ca.pem"), "{log}");
    assert_eq!(server.watched().await.len(), 2);
    assert_eq!(server.status_of("127.0.0.3").await["state"], "down");
    assert_eq!(server.www().await, ["127.0.0.2"]);

    // Another interval (and the monitor split in two): the same check, so the state and
    // the history are kept and the address stays out of the answers.
    let before = server.status_of("127.0.0.3").await["checks"]
        .as_u64()
        .expect("checks");
    assert!(before >= 2, "{before}");
    let split = monitor(r#""127.0.0.2""#, port, 300) + &monitor(r#""127.0.0.3""#, port, 400);
    server.reload(&config(&split));
    let kept = server.status_of("127.0.0.3").await;
    assert_eq!(kept["state"], "down", "{kept}");
    assert_eq!(kept["monitor"], 2, "{kept}");
    assert!(kept["checks"].as_u64().expect("checks") >= before, "{kept}");
    assert_eq!(server.www().await, ["127.0.0.2"]);

    // Another port is another check: the address starts again, up until its own checks
    // say otherwise, then down again.
    let moved = monitor(r#""127.0.0.2""#, port, 300) + &monitor(r#""127.0.0.3""#, dead_port(), 300);
    server.reload(&config(&moved));
    let reset = server.status_of("127.0.0.3").await;
    assert_eq!(reset["state"], "up", "{reset}");
    assert!(reset["checks"].as_u64().expect("checks") <= 1, "{reset}");
    assert_eq!(server.www().await, both);
    let took = server.until_www(&["127.0.0.2"]).await;
    assert!(took <= within, "{took:?}");

    // The monitors removed: the address is answered again at once, and its /status entry
    // and series are gone.
    server.reload(&config(""));
    assert_eq!(server.www().await, both);
    assert_eq!(server.watched().await, Vec::<Value>::new());
    let metrics = http::get(server.admin, "/metrics", None).await.body;
    assert!(!metrics.contains("address=\"127.0.0.3\""), "{metrics}");
    // And no task of the removed monitors still checks: nothing comes back.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(server.watched().await, Vec::<Value>::new());
    assert_eq!(server.www().await, both);
}

/// An HTTPS target on 127.0.0.2 answering `200 ok` with `config`'s certificate.
async fn tls_target(config: std::sync::Arc<rustls::ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = stream.write_all(ok).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_ca_file_edited_alone_is_read_again_by_a_sighup() {
    let (issuer, other) = (common::tls::TestCa::new(), common::tls::TestCa::new());
    let leaf = issuer.leaf(&["relay.example.com"]);
    let port = tls_target(common::tls::server_config(&leaf)).await;
    let https = format!(
        "\n[[health.monitor]]\naddresses = [\"127.0.0.2\"]\ntype = \"https\"\nport = {port}\n\
         host = \"relay.example.com\"\nca_file = \"ca.pem\"\ninterval_ms = 300\n\
         timeout_ms = 200\ndown_after = 2\nup_after = 2\n"
    );
    // The CA file trusts another CA: the relay's certificate fails, and it goes out.
    let text = config(&https);
    let mut server = Server::start_with("health-ca-reload", &text, &[("ca.pem", &other.pem())]);
    server.until_www(&["127.0.0.3"]).await;
    let down = server.status_of("127.0.0.2").await;
    let error = down["last_check"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("certificate"), "{down}");

    // The right CA written into the same file, the configuration untouched: a SIGHUP
    // applies [health] again and the check trusts the new contents.
    server.dir.write("ca.pem", &issuer.pem());
    server.reload(&text);
    server.until_www(&["127.0.0.2", "127.0.0.3"]).await;
    let server = &server;
    wait_until("a check of 127.0.0.2 to pass", LIMIT, move || async move {
        server.status_of("127.0.0.2").await["last_check"]["ok"] == true
    })
    .await;
    assert_eq!(server.status_of("127.0.0.2").await["state"], "up");
    // And again unchanged: nothing to apply.
    server.serve.signal("HUP");
    server.serve.wait_for("configuration unchanged", LIMIT);
}
