//! Reloading while serving, end to end: every trigger (a file renamed into place, `cp` over
//! the file, SIGHUP to the real binary, `POST /reload`) changes the answers; broken files
//! leave the old data serving and are reported; reloads under continuous queries lose none.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::dns::{A, Query};
use common::site::{
    self, CHINA_ANSWER, Config, DEFAULT_ANSWER, NO_WATCH, WATCH_LIMIT, answer, wait_until,
};
use common::{TempDir, TestServer, http, mmdb};
use geoline::internal::{Target, Trigger};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UdpSocket;

/// `[reload]` keys: the watcher reloads 50 ms after the last change.
const WATCH_FAST: &[&str] = &["debounce_ms = 50"];

async fn status(admin: SocketAddr) -> Value {
    let r = http::get(admin, "/status", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn db_status(admin: SocketAddr) -> Value {
    status(admin).await["databases"][0].clone()
}

async fn zone_status(admin: SocketAddr) -> Value {
    status(admin).await["zones"][0].clone()
}

async fn answer_becomes(server: SocketAddr, want: &str) {
    wait_until(&format!("the answer {want}"), WATCH_LIMIT, || async {
        answer(server).await == want
    })
    .await;
}

#[tokio::test]
async fn a_database_renamed_into_place_is_reloaded() {
    let dir = TempDir::new("reload-rename");
    let server = TestServer::start(&dir, &site::write(&dir).table("[reload]", WATCH_FAST)).await;
    let admin = server.admin.expect("admin");
    assert_eq!(answer(server.udp4).await, CHINA_ANSWER);

    dir.replace("country.mmdb", &site::jp_db());
    answer_becomes(server.udp4, DEFAULT_ANSWER).await;
    let db = db_status(admin).await;
    assert_eq!(db["last_reload"]["result"], "ok");
    assert_eq!(db["last_reload"]["trigger"], "watch");
    assert_eq!(db["reloads"]["failure"], 0);

    dir.replace("country.mmdb", &site::cn_db());
    answer_becomes(server.udp4, CHINA_ANSWER).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_database_copied_over_with_cp_is_reloaded() {
    let dir = TempDir::new("reload-cp");
    let server = TestServer::start(&dir, &site::write(&dir).table("[reload]", WATCH_FAST)).await;
    assert_eq!(answer(server.udp4).await, CHINA_ANSWER);

    let new = dir.write_bytes("jp.mmdb", &site::jp_db());
    let live = dir.path().join("country.mmdb");
    let status = Command::new("cp")
        .arg(&new)
        .arg(&live)
        .status()
        .expect("run cp");
    assert!(status.success());
    answer_becomes(server.udp4, DEFAULT_ANSWER).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn post_reload_reloads_everything() {
    let dir = TempDir::new("reload-post");
    let server = TestServer::start(&dir, &site::write(&dir).table("[reload]", NO_WATCH)).await;
    let admin = server.admin.expect("admin");
    assert_eq!(answer(server.udp4).await, CHINA_ANSWER);

    dir.replace("country.mmdb", &site::jp_db());
    dir.write(
        "example.com.zone",
        &site::ZONE
            .replace("2026112201", "2026112202")
            .replace("192.0.2.10", "192.0.2.11"),
    );
    // Nothing watches the files: the old data serves until asked.
    assert_eq!(answer(server.udp4).await, CHINA_ANSWER);

    let r = http::post(admin, "/reload", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["databases"][0]["ok"], true);
    assert_eq!(body["zones"][0]["ok"], true);
    assert_eq!(answer(server.udp4).await, "192.0.2.11");

    let db = db_status(admin).await;
    assert_eq!(db["reloads"]["success"], 1);
    assert_eq!(db["last_reload"]["trigger"], "admin");
    let zone = zone_status(admin).await;
    assert_eq!(zone["serial"], 2026112202);
    assert_eq!(zone["reloads"]["success"], 1);

    let r = http::get(admin, "/reload", None).await;
    assert_eq!(r.status, 405);
    server.running.shutdown().await;
}

#[tokio::test]
async fn broken_database_files_keep_the_old_data_serving() {
    let dir = TempDir::new("reload-broken");
    let server = TestServer::start(&dir, &site::write(&dir).table("[reload]", WATCH_FAST)).await;
    let admin = server.admin.expect("admin");
    let failures = || async {
        db_status(admin).await["reloads"]["failure"]
            .as_u64()
            .unwrap_or(0)
    };

    // A truncated copy, renamed into place.
    let good = site::jp_db();
    dir.replace("country.mmdb", &good[..good.len() / 2]);
    wait_until(
        "a failed reload of a truncated file",
        WATCH_LIMIT,
        || async { failures().await >= 1 },
    )
    .await;
    assert_eq!(answer(server.udp4).await, CHINA_ANSWER);
    let db = db_status(admin).await;
    assert_eq!(db["last_reload"]["result"], "error");
    let error = db["last_reload"]["error"].as_str().expect("error text");
    assert!(error.contains("country.mmdb"), "{error}");
    // The status still describes the database that serves.
    assert_eq!(db["type"], "GeoIP2-Country");
    let metrics = http::get(admin, "/metrics", None).await.body;
    assert!(
        metrics.contains("geoline_geoip_last_reload_success{database=\""),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("geoline_geoip_last_reload_success{") && l.ends_with(" 0")),
        "{metrics}"
    );

    // Each of these fails to load, and the old data goes on serving.
    let live = dir.path().join("country.mmdb");
    let garbage = dir.write("garbage.txt", &"not a MaxMind DB\n".repeat(100));
    // Breaks the live file (the first path), given a file of garbage (the second).
    type Break = fn(&Path, &Path);
    let breakages: [(&str, Break, &str); 2] = [
        // Garbage copied over the live file with cp.
        (
            "garbage",
            |live, garbage| {
                assert!(
                    Command::new("cp")
                        .arg(garbage)
                        .arg(live)
                        .status()
                        .expect("cp")
                        .success()
                )
            },
            "not a valid MaxMind DB file",
        ),
        // The file removed.
        (
            "a missing file",
            |live, _| std::fs::remove_file(live).expect("remove"),
            "cannot read",
        ),
    ];
    for (what, break_live_file, want) in breakages {
        let before = failures().await;
        break_live_file(&live, &garbage);
        wait_until(
            &format!("a failed reload of {what}"),
            WATCH_LIMIT,
            || async { failures().await > before },
        )
        .await;
        assert_eq!(answer(server.udp4).await, CHINA_ANSWER);
        let error = db_status(admin).await["last_reload"]["error"]
            .as_str()
            .expect("error")
            .to_string();
        assert!(error.contains(want), "{what}: {error}");
    }

    // The next good file loads.
    dir.replace("country.mmdb", &site::jp_db());
    answer_becomes(server.udp4, DEFAULT_ANSWER).await;
    let db = db_status(admin).await;
    assert_eq!(db["last_reload"]["result"], "ok");
    assert!(
        http::get(admin, "/metrics", None)
            .await
            .body
            .lines()
            .any(|l| l.starts_with("geoline_geoip_last_reload_success{") && l.ends_with(" 1"))
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_database_without_a_field_the_rules_need_is_refused() {
    let dir = TempDir::new("reload-field");
    site::write(&dir);
    dir.write_bytes(
        "asn.mmdb",
        &mmdb::asn_bytes("GeoLite2-ASN", &[("1.2.0.0/16", 4134, "CHINANET")]),
    );
    let config = Config::dns()
        .admin()
        .table("[reload]", NO_WATCH)
        .geoip("asn.mmdb")
        .line("china", &["asns = [4134]"])
        .zone("example.com.zone", &[("china", "example.com.china.zone")]);
    let server = TestServer::start(&dir, config).await;
    let admin = server.admin.expect("admin");
    assert_eq!(answer(server.udp4).await, CHINA_ANSWER);

    // A country database where the ASN one was: valid, but useless to the `asns` rule.
    dir.replace("asn.mmdb", &site::cn_db());
    let r = http::post(admin, "/reload", None).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let body = r.json();
    assert_eq!(body["ok"], false);
    let error = body["databases"][0]["error"].as_str().expect("error");
    assert!(
        error.starts_with(
            "line `china` matches on asn but none of the configured databases has asn data"
        ),
        "{error}"
    );
    assert_eq!(body["zones"][0]["ok"], true);
    assert_eq!(answer(server.udp4).await, CHINA_ANSWER);
    let db = db_status(admin).await;
    assert_eq!(db["type"], "GeoLite2-ASN");
    assert_eq!(db["reloads"]["failure"], 1);
    server.running.shutdown().await;
}

#[tokio::test]
async fn zone_reloads_and_a_broken_zone_keeps_the_old_one() {
    let dir = TempDir::new("reload-zone");
    let server = TestServer::start(&dir, &site::write(&dir).table("[reload]", WATCH_FAST)).await;
    let admin = server.admin.expect("admin");

    // An overlay edited in place.
    dir.write(
        "example.com.china.zone",
        "$TTL 300\nwww 60 A 203.0.113.99\n",
    );
    answer_becomes(server.udp4, "203.0.113.99").await;

    // A syntax error in the base file.
    dir.write(
        "example.com.zone",
        &site::ZONE.replace("www  A   192.0.2.10", "www  A   192.0.2.300"),
    );
    wait_until("a failed zone reload", WATCH_LIMIT, || async {
        zone_status(admin).await["reloads"]["failure"].as_u64() >= Some(1)
    })
    .await;
    let zone = zone_status(admin).await;
    assert_eq!(zone["last_reload"]["result"], "error");
    let error = zone["last_reload"]["error"].as_str().expect("error");
    let file = dir.path().join("example.com.zone");
    assert!(
        error.starts_with(&format!("{}:8: ", file.display())),
        "{error}"
    );
    assert_eq!(answer(server.udp4).await, "203.0.113.99");
    let q = Query::new("www.example.com", A).subnet("8.8.8.0/24");
    let reply = common::dns::udp(server.udp4, &q).await;
    assert!(reply.answers()[0].ends_with(" 192.0.2.10"), "{reply:?}");

    // Fixed, with a new serial.
    dir.write(
        "example.com.zone",
        &site::ZONE
            .replace("2026112201", "2026112205")
            .replace("192.0.2.10", "192.0.2.12"),
    );
    wait_until("the fixed zone", WATCH_LIMIT, || async {
        zone_status(admin).await["serial"] == 2026112205
    })
    .await;
    let reply = common::dns::udp(server.udp4, &q).await;
    assert!(reply.answers()[0].ends_with(" 192.0.2.12"), "{reply:?}");
    let metrics = http::get(admin, "/metrics", None).await.body;
    assert!(
        metrics.contains("geoline_zone_serial{zone=\"example.com.\"} 2026112205\n"),
        "{metrics}"
    );
    server.running.shutdown().await;
}

/// Four clients query without pause while the database is reloaded 50 times, alternating
/// between the CN and the JP version: every query is answered, every answer is one of the
/// two, and after each reload the new data answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_during_fifty_reloads_are_all_answered_consistently() {
    let dir = TempDir::new("reload-stress");
    let server = TestServer::start(&dir, &site::write(&dir).table("[reload]", NO_WATCH)).await;
    let target = server.udp4;
    let done = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let seen_china = Arc::new(AtomicU64::new(0));
    let seen_default = Arc::new(AtomicU64::new(0));
    let query = Query::new("www.example.com", A)
        .subnet("1.2.3.0/24")
        .bytes();

    let mut clients = Vec::new();
    for c in 0..4u16 {
        let (done, total, query) = (done.clone(), total.clone(), query.clone());
        let (seen_china, seen_default) = (seen_china.clone(), seen_default.clone());
        clients.push(tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            socket.connect(target).await.expect("connect");
            let mut buf = vec![0u8; 4096];
            let mut id = c.wrapping_mul(16_000);
            while !done.load(Ordering::Relaxed) || total.load(Ordering::Relaxed) < 20_000 {
                id = id.wrapping_add(1);
                let mut q = query.clone();
                q[..2].copy_from_slice(&id.to_be_bytes());
                socket.send(&q).await.expect("send");
                // Loopback does not lose datagrams; a missing reply is a failure.
                let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
                    .await
                    .unwrap_or_else(|_| panic!("query {id} unanswered"))
                    .expect("receive");
                let reply = common::dns::Reply::parse(buf[..n].to_vec());
                assert_eq!(reply.id(), id);
                assert_eq!(reply.rcode(), 0);
                let answers = reply.answers();
                assert_eq!(answers.len(), 1, "{answers:?}");
                if answers[0].ends_with(&format!(" {CHINA_ANSWER}")) {
                    seen_china.fetch_add(1, Ordering::Relaxed);
                } else if answers[0].ends_with(&format!(" {DEFAULT_ANSWER}")) {
                    seen_default.fetch_add(1, Ordering::Relaxed);
                } else {
                    panic!("an answer from neither database: {answers:?}");
                }
                total.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let reloader = server.running.reloader.clone();
    for i in 0..50 {
        let (bytes, want) = if i % 2 == 0 {
            (site::jp_db(), DEFAULT_ANSWER)
        } else {
            (site::cn_db(), CHINA_ANSWER)
        };
        dir.replace("country.mmdb", &bytes);
        reloader
            .reload(Target::Database(0), Trigger::Admin)
            .await
            .expect("reload");
        assert_eq!(answer(target).await, want, "after reload {i}");
    }
    done.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    let answered = total.load(Ordering::Relaxed);
    assert!(answered >= 20_000, "{answered}");
    assert_eq!(
        seen_china.load(Ordering::Relaxed) + seen_default.load(Ordering::Relaxed),
        answered
    );
    let status = server.running.reloader.status();
    assert_eq!(status.databases[0].successes, 50);
    assert_eq!(status.databases[0].failures, 0);
    server.running.shutdown().await;
}

/// The real binary, started as an operator would, its addresses read from its log.
struct Binary {
    child: tokio::process::Child,
    dns: SocketAddr,
    /// The service manager's end of `NOTIFY_SOCKET`: a SIGHUP reload is over when its
    /// READY=1 arrives (the files are read by then).
    notify: tokio::net::UnixDatagram,
}

impl Binary {
    async fn start(config: &std::path::Path) -> Binary {
        let socket_path = config.with_file_name("notify.sock");
        let notify = tokio::net::UnixDatagram::bind(&socket_path).expect("bind notify socket");
        // Events go to standard error (standard output is the redirector's access log).
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_geoline"))
            .args(["serve", "--log-json", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", &socket_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start geoline");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let dns = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read log") {
                if line.contains("dns listening") {
                    return address_in(&line);
                }
            }
            panic!("geoline exited before listening");
        })
        .await
        .expect("geoline listening within 60 s");
        // Keep draining the log so that the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Binary { child, dns, notify }
    }

    /// Waits for a notification holding `what` (READY=1 comes at start and after a reload).
    async fn notified(&self, what: &str) {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(60), self.notify.recv(&mut buf))
                .await
                .expect("a notification within 60 s")
                .expect("read notify socket");
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == what)
            {
                return;
            }
        }
    }

    /// SIGHUP, then waits until the reload it starts is over (its RELOADING=1, then READY=1;
    /// the start's READY=1 may come first): a file replaced afterwards is not read by it.
    async fn reload(&self) {
        self.signal("HUP");
        self.notified("RELOADING=1").await;
        self.notified("READY=1").await;
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().expect("running").to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for the process to exit (generously) and returns its exit code.
    async fn exit_code(mut self) -> Option<i32> {
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => status.expect("wait").code(),
            Err(_) => panic!("geoline did not exit within 30 s"),
        }
    }
}

/// The first `127.0.0.1:PORT` in a log line.
fn address_in(line: &str) -> SocketAddr {
    let at = line.find("127.0.0.1:").expect("an address in the log line");
    let rest = &line[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().expect("socket address")
}

#[tokio::test]
async fn sighup_reloads_the_real_binary_and_sigterm_stops_it_cleanly() {
    let dir = TempDir::new("reload-sighup");
    let config = site::write(&dir).table("[reload]", NO_WATCH).to_string();
    let path = dir.write("geoline.toml", &config);
    let bin = Binary::start(&path).await;
    // A SIGHUP as soon as the server says it listens is a reload, never the default action
    // (death): the handlers are installed before anything is bound.
    bin.reload().await;
    assert_eq!(answer(bin.dns).await, CHINA_ANSWER);

    dir.replace("country.mmdb", &site::jp_db());
    assert_eq!(answer(bin.dns).await, CHINA_ANSWER);
    bin.reload().await;
    assert_eq!(answer(bin.dns).await, DEFAULT_ANSWER);

    // An idle TCP connection is open when SIGTERM arrives: the server still exits, 0.
    let tcp = tokio::net::TcpStream::connect(bin.dns).await.expect("tcp");
    let dns = bin.dns;
    bin.signal("TERM");
    assert_eq!(bin.exit_code().await, Some(0));
    drop(tcp);
    assert!(tokio::net::TcpStream::connect(dns).await.is_err());
}
