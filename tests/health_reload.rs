//! `[health]` follows a configuration reload, SIGHUP to the real binary: a monitor added
//! starts checking and its dead address leaves the answers, an interval change keeps an
//! address's state and history, a changed check starts its state again, and a monitor
//! removed brings its address back into the answers and out of `/status` and `/metrics`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TempDir;
use common::dns::{self, A, Query};
use common::http;
use common::process::Serve;
use common::site::wait_until;
use serde_json::Value;
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
    let probe = std::net::TcpListener::bind("127.0.0.3:0").expect("bind");
    probe.local_addr().expect("addr").port()
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
        let dir = TempDir::new(tag);
        dir.write("example.com.zone", ZONE);
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
