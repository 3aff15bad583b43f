//! The access log of the real binary: the redirector's and the proxy's lines with the
//! same fields, written to files, and logrotate's convention (rename, then SIGUSR1) losing
//! no line while requests keep coming.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::{self, connect};
use common::origin::{full, response};
use common::{TempDir, mmdb, site};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A free port on 127.0.0.1, outside the ephemeral range (see `common::ports`).
fn free_port() -> u16 {
    common::ports::free_port()
}

struct Binary {
    child: tokio::process::Child,
}

impl Binary {
    /// Starts `geoline serve` and waits until both front-ends listen.
    async fn start(config: &std::path::Path) -> Binary {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_geoline"))
            .args(["serve", "--log-json", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start geoline");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut listening = 0;
            while let Some(line) = lines.next_line().await.expect("read log") {
                if line.contains("redirect listening") || line.contains("proxy listening") {
                    listening += 1;
                    if listening == 2 {
                        return;
                    }
                }
            }
            panic!("geoline exited before listening");
        })
        .await
        .expect("geoline listening within 60 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Binary { child }
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
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn rotated_under_load_without_losing_a_line() {
    let dir = TempDir::new("access-log");
    mmdb::write_ip_location_db(&dir.path().join("geo.mmdb"), &[("1.2.4.0/22", "CN")]);
    let up = common::origin::origin(|_req| async move {
        response(
            200,
            &[("content-type", "text/plain")],
            full("from the origin"),
        )
    })
    .await;
    let (redirect_port, proxy_port) = (free_port(), free_port());
    let config = site::Config::default()
        .geoip("geo.mmdb")
        .line("china", &[r#"countries = ["CN"]"#])
        .redirect("127.0.0.1", up)
        .set("[redirect]", &[r#"access_log = "access.log""#])
        .set(
            "[[redirect.listen]]",
            &[&format!(r#"address = "127.0.0.1:{redirect_port}""#)],
        )
        .table(
            "[proxy]",
            &[
                &format!(r#"listen = "127.0.0.1:{proxy_port}""#),
                r#"origin = "http://example.com""#,
                &format!(r#"connect_to = "{up}""#),
                r#"hosts = [{ public = "example.cn", origin = "example.com" }]"#,
                r#"access_log = "proxy.log""#,
            ],
        );
    let path = dir.write("geoline.toml", &config.to_string());
    let binary = Binary::start(&path).await;
    let redirect: SocketAddr = ([127, 0, 0, 1], redirect_port).into();
    let proxy: SocketAddr = ([127, 0, 0, 1], proxy_port).into();

    // The proxy's line has the redirector's fields.
    let mut c = connect(proxy, "127.0.0.1").await;
    let req = http::request("GET", "example.cn", "/p?q=1", &[]);
    let resp = http::exchange(&mut c, req.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(resp.body, "from the origin");

    // Four clients, 150 requests each on kept-alive connections; the file is renamed and
    // SIGUSR1 sent while they run.
    const CLIENTS: usize = 4;
    const EACH: usize = 150;
    let mut clients = Vec::new();
    for k in 0..CLIENTS {
        clients.push(tokio::spawn(async move {
            let mut c = connect(redirect, "127.0.0.1").await;
            for i in 0..EACH {
                let req = http::request("GET", "lb-probe", &format!("/healthz?c={k}&i={i}"), &[]);
                let resp = http::exchange(&mut c, req.as_bytes(), Duration::from_secs(10)).await;
                assert_eq!(resp.body, "ok\n");
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    std::fs::rename(
        dir.path().join("access.log"),
        dir.path().join("access.log.1"),
    )
    .expect("rotate");
    binary.signal("USR1");
    for c in clients {
        c.await.expect("client");
    }
    binary.signal("TERM");
    let mut child = binary.child;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status:?}");

    let before = lines(&dir.path().join("access.log.1"));
    let after = lines(&dir.path().join("access.log"));
    assert!(!before.is_empty(), "no line before the rotation");
    assert!(!after.is_empty(), "no line after the rotation");
    assert_eq!(before.len() + after.len(), CLIENTS * EACH);
    let mut paths: Vec<String> = before
        .iter()
        .chain(&after)
        .map(|l| l["path"].as_str().expect("path").to_string())
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), CLIENTS * EACH, "a line twice");

    let proxied = lines(&dir.path().join("proxy.log"));
    assert_eq!(proxied.len(), 1, "{proxied:?}");
    let line = &proxied[0];
    let keys: Vec<&str> = line
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let redirect_keys: Vec<&str> = before[0]
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, redirect_keys);
    assert_eq!(line["client"], "127.0.0.1");
    assert_eq!(line["line"], "");
    assert_eq!(line["host"], "example.cn");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/p?q=1");
    assert_eq!(line["proto"], "HTTP/1.1");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], 15);
}
