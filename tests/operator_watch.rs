//! The file watcher sees what a zone really reads: a Kubernetes ConfigMap-style volume
//! (the `..data` link renamed over, the file's own name untouched) and a file pulled in
//! with `$INCLUDE`. The real binary; the reload shows in its log and its answers.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::time::Duration;

use common::TempDir;
use common::dns::{self, A, Query};
use common::process::Serve;
use common::site::{self, Config};

const LIMIT: Duration = Duration::from_secs(30);

/// The DNS address from the start log's `dns listening (UDP and TCP) addr=...` line.
fn dns_addr(log: &str) -> SocketAddr {
    let line = log
        .lines()
        .find(|l| l.contains("dns listening"))
        .expect("a dns listening line");
    let addr = line.rsplit("addr=").next().expect("addr=");
    addr.trim().parse().expect("a socket address")
}

async fn a_records(server: SocketAddr, name: &str) -> Vec<String> {
    let reply = dns::udp(server, &Query::new(name, A)).await;
    reply.answers()
}

/// Writes a ConfigMap revision `rev` holding the zone with `serial`, and makes it the one
/// `..data` points at, as the kubelet does: a new directory, a new link, a rename.
fn publish(dir: &TempDir, rev: u32, serial: &str) {
    let version = format!("..2026_12_07_{rev}");
    std::fs::create_dir(dir.path().join(&version)).expect("revision dir");
    std::fs::write(
        dir.path().join(&version).join("example.com.zone"),
        site::ZONE.replace("2026112201", serial),
    )
    .expect("zone");
    let tmp = dir.path().join("..data_tmp");
    symlink(&version, &tmp).expect("link");
    std::fs::rename(&tmp, dir.path().join("..data")).expect("rename over ..data");
    if rev > 1 {
        let old = dir.path().join(format!("..2026_12_07_{}", rev - 1));
        std::fs::remove_dir_all(old).expect("remove the old revision");
    }
}

#[tokio::test]
async fn a_configmap_swap_of_the_data_link_reloads_the_zone() {
    let dir = TempDir::new("opwatch-k8s");
    publish(&dir, 1, "1");
    symlink(
        "..data/example.com.zone",
        dir.path().join("example.com.zone"),
    )
    .expect("link");
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .table("[reload]", &["debounce_ms = 50"]);
    let path = dir.write("geoline.toml", &config.to_string());
    let serve = Serve::start(&path, &[]);
    serve.wait_for("dns listening", LIMIT);

    publish(&dir, 2, "2");
    serve.wait_for("reloaded: zone example.com. serial 2 file=", LIMIT);
    // The watch follows the link to the new revision: the next swap is seen too.
    publish(&dir, 3, "3");
    serve.wait_for("reloaded: zone example.com. serial 3 file=", LIMIT);
}

#[tokio::test]
async fn an_edit_of_an_included_file_reloads_the_zone() {
    let dir = TempDir::new("opwatch-include");
    std::fs::create_dir(dir.path().join("hosts")).expect("dir");
    dir.write(
        "example.com.zone",
        &format!("{}$INCLUDE hosts/web.zone\n", site::ZONE),
    );
    dir.write("hosts/web.zone", "web A 192.0.2.80\n");
    let config = Config::dns()
        .zone("example.com.zone", &[])
        .table("[reload]", &["debounce_ms = 50"]);
    let path = dir.write("geoline.toml", &config.to_string());
    let serve = Serve::start(&path, &[]);
    let server = dns_addr(&serve.wait_for("dns listening", LIMIT));
    assert_eq!(
        a_records(server, "web.example.com").await,
        ["web.example.com. 300 IN A 192.0.2.80"]
    );

    dir.write("hosts/web.zone", "web A 192.0.2.81\n");
    serve.wait_for("reloaded: zone example.com.", LIMIT);
    assert_eq!(
        a_records(server, "web.example.com").await,
        ["web.example.com. 300 IN A 192.0.2.81"]
    );
}
