//! The configuration itself reloads on SIGHUP and `POST /reload`: re-read and checked
//! whole, applied whole or not at all; a change only a restart applies is named in the log
//! and `/status`, and nothing of that edit is applied. The real binary.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::TempDir;
use common::dns::{self, A, Query};
use common::http;
use common::process::{Serve, listening};
use common::site;

const LIMIT: Duration = Duration::from_secs(30);

/// `www.example.com A` for a client in `subnet` (by ECS).
async fn www(server: SocketAddr, subnet: &str) -> String {
    let reply = dns::udp(server, &Query::new("www.example.com", A).subnet(subnet)).await;
    let answers = reply.answers();
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].rsplit(' ').next().expect("rdata").to_string()
}

/// The configuration, with the lab line's prefixes and the DNS port given.
fn config(prefixes: &str, port: u16) -> String {
    format!(
        r#"[dns]
listen = ["127.0.0.1:{port}"]

[admin]
listen = "127.0.0.1:0"

[reload]
watch = false

[[line]]
name = "lab"
cidrs = [{prefixes}]

[[zone]]
file = "example.com.zone"
overlays = {{ lab = "example.com.china.zone" }}
"#
    )
}

fn write(dir: &TempDir, text: &str) -> std::path::PathBuf {
    dir.write("geoline.toml", text)
}

/// Not bound-to-0-and-dropped: another test's socket could take that port before the
/// server binds it ("Address already in use"); see `common::ports`.
fn free_port() -> u16 {
    common::ports::free_port()
}

fn start(dir: &TempDir, path: &Path) -> (Serve, SocketAddr, SocketAddr) {
    dir.write("example.com.zone", site::ZONE);
    dir.write("example.com.china.zone", site::CHINA);
    let serve = Serve::start(path, &[]);
    let log = serve.wait_for("admin listening", LIMIT);
    let dns = listening(&log, "dns");
    let admin = listening(&log, "admin");
    (serve, dns, admin)
}

#[tokio::test]
async fn sighup_applies_an_edited_line_and_refuses_a_listener_change_whole() {
    let dir = TempDir::new("opreload-hup");
    let port = free_port();
    let path = write(&dir, &config(r#""192.0.2.0/24""#, port));
    let (serve, dns, admin) = start(&dir, &path);
    assert_eq!(www(dns, "198.51.100.0/24").await, site::DEFAULT_ANSWER);
    assert_eq!(www(dns, "192.0.2.0/24").await, site::CHINA_ANSWER);

    // A new prefix for the line: applied on SIGHUP.
    write(&dir, &config(r#""192.0.2.0/24", "198.51.100.0/24""#, port));
    serve.signal("HUP");
    serve.wait_for("configuration reloaded: [[line]] applied", LIMIT);
    assert_eq!(www(dns, "198.51.100.0/24").await, site::CHINA_ANSWER);

    // A new port with another prefix: the port needs a restart, so neither applies.
    write(
        &dir,
        &config(
            r#""192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24""#,
            free_port(),
        ),
    );
    serve.signal("HUP");
    let log = serve.wait_for("configuration not reloaded", LIMIT);
    assert!(
        log.contains(&format!(
            "{}: [dns] changed: restart geoline to apply that (nothing of this edit is applied; the running configuration is kept)",
            path.display()
        )),
        "{log}"
    );
    assert_eq!(www(dns, "203.0.113.0/24").await, site::DEFAULT_ANSWER);
    assert_eq!(www(dns, "198.51.100.0/24").await, site::CHINA_ANSWER);
    let status = http::get(admin, "/status", None).await.json();
    let last = &status["config"]["last_reload"];
    assert_eq!(last["ok"], false, "{status}");
    assert_eq!(
        last["restart_needed"],
        serde_json::json!(["[dns]"]),
        "{status}"
    );
}

#[tokio::test]
async fn post_reload_refuses_a_broken_configuration_and_keeps_serving() {
    let dir = TempDir::new("opreload-post");
    let port = free_port();
    let path = write(&dir, &config(r#""192.0.2.0/24""#, port));
    let (_serve, dns, admin) = start(&dir, &path);

    write(&dir, &config(r#""192.0.2.0/24", "1.2.3.4/16""#, port));
    let response = http::post(admin, "/reload", None).await;
    assert_eq!(response.status, 422);
    let body = response.json();
    assert_eq!(body["config"]["ok"], false, "{body}");
    assert_eq!(
        body["config"]["error"],
        format!(
            "{}:12: line `lab`: `1.2.3.4/16` has host bits set: the network is 1.2.0.0/16 (or, for the one address, 1.2.3.4/32)",
            path.display()
        ),
        "{body}"
    );
    assert_eq!(www(dns, "192.0.2.0/24").await, site::CHINA_ANSWER);

    write(&dir, &config(r#""192.0.2.0/24", "1.2.0.0/16""#, port));
    let response = http::post(admin, "/reload", None).await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(
        body["config"]["applied"],
        serde_json::json!(["[[line]]"]),
        "{body}"
    );
    assert_eq!(www(dns, "1.2.3.0/24").await, site::CHINA_ANSWER);
}
