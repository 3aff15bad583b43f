//! systemd's readiness protocol as the packaged unit (`Type=notify`) relies on it: the
//! real binary with a Unix datagram socket of the test as its `NOTIFY_SOCKET`. READY=1
//! comes only once every listener answers, RELOADING=1 and READY=1 bracket a SIGHUP
//! reload whose result is served by the time READY=1 arrives, STOPPING=1 comes on SIGTERM.

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UnixDatagram;

use common::TempDir;
use common::dns::{self, A, Query};
use common::http;
use common::process::Serve;
use common::site;

/// Long enough for a debug build to load the large zone on a loaded machine.
const LIMIT: Duration = Duration::from_secs(120);

/// The service manager's end: the socket systemd would create for the unit.
struct Manager {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Manager {
    fn bind(dir: &TempDir) -> Manager {
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager { socket, path }
    }

    fn env(&self) -> (&'static str, &str) {
        ("NOTIFY_SOCKET", self.path.to_str().expect("utf-8 path"))
    }

    /// The next notification, as sent.
    async fn next(&self, serve: &Serve) -> String {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(LIMIT, self.socket.recv(&mut buf)).await {
            Ok(Ok(n)) => String::from_utf8(buf[..n].to_vec()).expect("utf-8 notification"),
            Ok(Err(e)) => panic!("notify socket: {e}"),
            Err(_) => panic!("no notification in {LIMIT:?}:\n{}", serve.stderr()),
        }
    }
}

/// Free for UDP and TCP (DNS binds both), outside the ephemeral range.
fn free_port() -> u16 {
    common::ports::free_port()
}

fn config(dns: u16, admin: u16) -> String {
    format!(
        r#"[dns]
listen = ["127.0.0.1:{dns}"]

[admin]
listen = "127.0.0.1:{admin}"

[reload]
watch = false

[[zone]]
file = "example.com.zone"
"#
    )
}

/// `name.example.com A` over UDP: its one address.
async fn address(dns: SocketAddr, name: &str) -> String {
    let reply = dns::udp(dns, &Query::new(name, A)).await;
    assert_eq!(reply.rcode(), 0, "{name}: {:?}", reply.answers());
    let answers = reply.answers();
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].rsplit(' ').next().expect("rdata").to_string()
}

/// Panics if nothing is bound to UDP `dns`: a connected socket hears the kernel's ICMP
/// port unreachable as a refused receive (the test kit's client would send again).
async fn udp_bound(dns: SocketAddr) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    socket.connect(dns).await.expect("connect");
    socket
        .send(&Query::new("www.example.com", A).bytes())
        .await
        .expect("send");
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await {
        Ok(Ok(_)) | Err(_) => {}
        Ok(Err(e)) => panic!("UDP {dns} not bound at READY=1: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_comes_once_every_listener_answers_and_stopping_on_sigterm() {
    let dir = TempDir::new("readiness");
    // A zone large enough that loading it takes a while: a READY=1 sent before the zones
    // are loaded and the sockets bound would find nothing answering below.
    let mut zone = String::from(site::ZONE);
    for i in 0..40_000u32 {
        writeln!(zone, "host{i} A 198.51.100.{}", i % 250).expect("write");
    }
    dir.write("example.com.zone", &zone);
    let (dns_port, admin_port) = (free_port(), free_port());
    let path = dir.write("geoline.toml", &config(dns_port, admin_port));
    let manager = Manager::bind(&dir);
    let mut serve = Serve::start(&path, &[manager.env()]);

    assert_eq!(manager.next(&serve).await, "READY=1\nSTATUS=serving");
    // Right away: TCP and the admin listener accept (a connection refused panics), UDP
    // is bound (no ICMP port unreachable) and everything answers from the loaded zone.
    let dns = SocketAddr::from(([127, 0, 0, 1], dns_port));
    let reply = dns::tcp(dns, &Query::new("host39999.example.com", A)).await;
    assert_eq!(reply.answers().len(), 1, "{:?}", reply.answers());
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    assert_eq!(http::get(admin, "/healthz", None).await.status, 200);
    udp_bound(dns).await;
    assert_eq!(address(dns, "www.example.com").await, site::DEFAULT_ANSWER);

    serve.signal("TERM");
    assert_eq!(manager.next(&serve).await, "STOPPING=1\nSTATUS=draining");
    let (ok, log) = serve.wait_exit(LIMIT);
    assert!(ok, "SIGTERM is a clean exit:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_reload_is_bracketed_by_reloading_and_ready() {
    let dir = TempDir::new("readiness-reload");
    dir.write("example.com.zone", site::ZONE);
    let dns_port = free_port();
    let path = dir.write("geoline.toml", &config(dns_port, free_port()));
    let manager = Manager::bind(&dir);
    let serve = Serve::start(&path, &[manager.env()]);
    let dns = SocketAddr::from(([127, 0, 0, 1], dns_port));
    assert_eq!(manager.next(&serve).await, "READY=1\nSTATUS=serving");

    // A new name: served by the time READY=1 follows RELOADING=1.
    dir.write(
        "example.com.zone",
        &format!(
            "{}new A 192.0.2.77\n",
            site::ZONE.replace("2026112201", "2026112202")
        ),
    );
    serve.signal("HUP");
    let reloading = manager.next(&serve).await;
    let usec = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("not RELOADING=1 with MONOTONIC_USEC: {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|us| us > 0), "{reloading:?}");
    assert_eq!(
        manager.next(&serve).await,
        "READY=1\nSTATUS=serving; last reload (SIGHUP): ok"
    );
    assert_eq!(address(dns, "new.example.com").await, "192.0.2.77");

    // A broken zone: refused, the previous version serves, and the status says so.
    dir.write("example.com.zone", "$ORIGIN example.com.\n@ SOA broken\n");
    serve.signal("HUP");
    assert!(manager.next(&serve).await.starts_with("RELOADING=1\n"));
    let ready = manager.next(&serve).await;
    assert!(
        ready.starts_with(
            "READY=1\nSTATUS=serving; last reload (SIGHUP): 1 of 1 files kept their previous version: "
        ) && ready.contains("example.com.zone"),
        "{ready:?}"
    );
    assert!(!ready[8..].contains('\n'), "one STATUS line: {ready:?}");
    assert_eq!(address(dns, "new.example.com").await, "192.0.2.77");
}
