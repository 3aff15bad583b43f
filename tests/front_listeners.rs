//! The front-ends' listeners and certificates reload on SIGHUP, as nginx's do: a listener
//! added is bound and serves (TLS with the certificates the edit brings, chosen by SNI), a
//! listener removed refuses new connections and finishes the request in flight on it, an
//! unchanged one keeps its socket (a client looping through the reload sees no error), a
//! section added or removed starts or stops its front-end, and an address that cannot be
//! bound refuses the whole edit. The real binary, reloaded by signal.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::http::{self, connect, read_until_closed};
use common::origin::{full, response};
use common::process::Serve;
use common::tls::{Leaf, TestCa, client_config};
use common::{TempDir, site};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::client::TlsStream;

const LIMIT: Duration = Duration::from_secs(30);
const TRUSTED: &str = "127.0.0.1";
/// In the `china` line of the example site's database.
const CHINA: &str = "X-Forwarded-For: 1.2.4.5";
/// In no listed line: passed through to the origin.
const ABROAD: &str = "X-Forwarded-For: 8.8.8.8";

fn free_port() -> u16 {
    common::ports::free_port()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Asserts that nothing listens on `port`.
async fn refused(port: u16) {
    let connected = TcpStream::connect(local(port)).await;
    assert_eq!(
        connected.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "{port}"
    );
}

/// What every version of a test's configuration has: the origin and the admin port.
struct Site {
    up: SocketAddr,
    admin: u16,
}

impl Site {
    fn new(up: SocketAddr) -> Site {
        Site {
            up,
            admin: free_port(),
        }
    }

    /// The example site with the redirector (example.com → `to` for the china line,
    /// everyone else passed through to the origin), its listeners and certificates as
    /// given.
    fn config(&self, to: &str, listeners: &[(u16, bool)], certs: &[&str]) -> site::Config {
        redirector(self.up, self.admin, to, listeners, certs)
    }
}

fn redirector(
    up: SocketAddr,
    admin: u16,
    to: &str,
    listeners: &[(u16, bool)],
    certs: &[&str],
) -> site::Config {
    let mut config = site::Config::example()
        .table("[admin]", &[&format!(r#"listen = "127.0.0.1:{admin}""#)])
        .table("[reload]", site::NO_WATCH)
        .table(
            "[redirect]",
            &[
                &format!("trusted_proxies = [{TRUSTED:?}]"),
                r#"access_log = "off""#,
            ],
        )
        .table(
            "[[redirect.rule]]",
            &[
                r#"from = "example.com""#,
                &format!("to = {to:?}"),
                r#"lines = ["china"]"#,
            ],
        )
        .table(
            "[redirect.origin]",
            &[
                r#"url = "http://example.com""#,
                &format!(r#"connect_to = "{up}""#),
            ],
        );
    for (port, tls) in listeners {
        config = config.table(
            "[[redirect.listen]]",
            &[
                &format!(r#"address = "127.0.0.1:{port}""#),
                &format!("tls = {tls}"),
            ],
        );
    }
    for cert in certs {
        config = config.table("[[redirect.certificate]]", &[cert]);
    }
    config
}

/// A `[[redirect.certificate]]` body: `leaf` written as NAME.pem / NAME.key in `dir`.
fn certificate(dir: &TempDir, name: &str, leaf: &Leaf, names: &[&str]) -> String {
    let cert = dir.write(&format!("{name}.pem"), &leaf.cert_pem);
    let key = dir.write(&format!("{name}.key"), &leaf.key_pem);
    format!(
        "names = {names:?}\ncert = {:?}\nkey = {:?}",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// Starts `geoline serve` on `config` of `setup`; returns it with its admin address.
fn start(dir: &TempDir, setup: &Site, config: &site::Config) -> (Serve, SocketAddr) {
    dir.write("example.com.zone", site::ZONE);
    dir.write("example.com.china.zone", site::CHINA);
    dir.write_bytes("country.mmdb", &site::cn_db());
    let path = dir.write("geoline.toml", &config.to_string());
    let serve = Serve::start(&path, &[]);
    serve.wait_for("admin listening", LIMIT);
    (serve, local(setup.admin))
}

/// Writes `config`, sends SIGHUP and waits for the `n`th configuration reload to be logged
/// (the status is recorded before the line); returns that line.
fn hup(serve: &Serve, dir: &TempDir, config: &site::Config, n: usize) -> String {
    hup_text(serve, dir, &config.to_string(), n)
}

/// [`hup`] with the configuration's text.
fn hup_text(serve: &Serve, dir: &TempDir, config: &str, n: usize) -> String {
    dir.write("geoline.toml", config);
    serve.signal("HUP");
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let log = serve.stderr();
        let reloads: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("configuration reloaded") || l.contains("configuration not reloaded")
            })
            .collect();
        if reloads.len() >= n {
            return reloads[n - 1].to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload {n}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request on `s` (kept alive).
async fn ask(s: &mut TcpStream, path: &str, client: &str) -> http::Response {
    let raw = http::request("GET", "www.example.com", path, &[client]);
    http::exchange(s, raw.as_bytes(), Duration::from_secs(10)).await
}

async fn status(admin: SocketAddr) -> serde_json::Value {
    http::get(admin, "/status", None).await.json()
}

/// `/status` listeners' addresses.
fn listener_addresses(status: &serde_json::Value) -> Vec<String> {
    status["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| l["address"].as_str().expect("address").to_string())
        .collect()
}

/// A TLS connection to `to` verified for `sni` under `ca`.
async fn tls_connect(to: SocketAddr, ca: &TestCa, sni: &str) -> TlsStream<TcpStream> {
    let tcp = connect(to, TRUSTED).await;
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    tokio_rustls::TlsConnector::from(client_config(&ca.der(), &[b"http/1.1"]))
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with {sni}: {e}"))
}

fn served(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("certificates")[0].clone()
}

async fn origin() -> SocketAddr {
    common::origin::origin(|req| async move {
        let body = format!("origin saw {}", req.uri().path());
        response(200, &[("content-type", "text/plain")], full(body))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_listener_added_by_sighup_serves_the_certificates_the_edit_brings() {
    let dir = TempDir::new("listeners-tls");
    let ca = TestCa::new();
    let up = origin().await;
    let setup = Site::new(up);
    let plain = free_port();
    let config = setup.config("example.cn", &[(plain, false)], &[]);
    let (serve, admin) = start(&dir, &setup, &config);

    // A TLS listener and two certificates, chosen by SNI.
    let tls = free_port();
    let com = ca.leaf(&["example.com", "*.example.com"]);
    let net = ca.leaf(&["example.net"]);
    let com_entry = certificate(&dir, "com", &com, &["example.com", "*.example.com"]);
    let net_entry = certificate(&dir, "net", &net, &["example.net"]);
    let edited = setup.config(
        "example.cn",
        &[(plain, false), (tls, true)],
        &[&com_entry, &net_entry],
    );
    let line = tokio::task::block_in_place(|| hup(&serve, &dir, &edited, 1));
    assert!(
        line.contains("configuration reloaded: [redirect] applied"),
        "{line}"
    );
    let log = serve.stderr();
    assert!(
        log.contains(&format!("redirect listening addr=127.0.0.1:{tls} tls=true")),
        "{log}"
    );

    let mut www = tls_connect(local(tls), &ca, "www.example.com").await;
    assert_eq!(served(&www), com.der);
    let r = http::exchange(
        &mut www,
        http::request("GET", "www.example.com", "/tls?a=1", &[CHINA]).as_bytes(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://www.example.cn/tls?a=1"));
    let other = tls_connect(local(tls), &ca, "example.net").await;
    assert_eq!(served(&other), net.der);
    drop(other);

    let s = status(admin).await;
    assert_eq!(
        listener_addresses(&s),
        [format!("127.0.0.1:{plain}"), format!("127.0.0.1:{tls}")]
    );
    let listener = &s["listeners"][1];
    assert_eq!(listener["tls"], true, "{s}");
    let names: Vec<&serde_json::Value> = listener["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .map(|c| &c["names"])
        .collect();
    assert_eq!(
        names,
        [
            &serde_json::json!(["example.com", "*.example.com"]),
            &serde_json::json!(["example.net"])
        ]
    );
    assert_eq!(s["certificates"].as_array().expect("certificates").len(), 2);
    let m = http::get(admin, "/metrics", None).await.body;
    let completed = format!(
        "geoline_http_tls_handshakes_total{{role=\"redirect\",listener=\"127.0.0.1:{tls}\",result=\"completed\"}} 2"
    );
    assert!(m.lines().any(|l| l == completed), "{m}");

    // The certificate list replaced: example.com from a new file, example.net gone. The
    // connection made before keeps its certificate and goes on serving.
    let com2 = ca.leaf(&["example.com", "*.example.com"]);
    let com2_entry = certificate(&dir, "com2", &com2, &["example.com", "*.example.com"]);
    let edited = setup.config("example.cn", &[(plain, false), (tls, true)], &[&com2_entry]);
    let line = tokio::task::block_in_place(|| hup(&serve, &dir, &edited, 2));
    assert!(
        line.contains("configuration reloaded: [redirect] applied"),
        "{line}"
    );
    let fresh = tls_connect(local(tls), &ca, "www.example.com").await;
    assert_eq!(served(&fresh), com2.der);
    let r = http::exchange(
        &mut www,
        http::request("GET", "www.example.com", "/again", &[CHINA]).as_bytes(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(r.header("location"), Some("https://www.example.cn/again"));
    assert_eq!(served(&www), com.der);
    // example.net falls back to the part's first certificate, which is not valid for it.
    let tcp = connect(local(tls), TRUSTED).await;
    let name = ServerName::try_from("example.net").expect("name");
    let refused = tokio_rustls::TlsConnector::from(client_config(&ca.der(), &[b"http/1.1"]))
        .connect(name, tcp)
        .await;
    assert!(refused.is_err(), "example.net still has a certificate");
    let s = status(admin).await;
    let certs = s["certificates"].as_array().expect("certificates");
    assert_eq!(certs.len(), 1, "{s}");
    assert_eq!(
        certs[0]["cert"],
        dir.path().join("com2.pem").display().to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_removed_refuses_connections_and_finishes_its_request_in_flight() {
    let dir = TempDir::new("listeners-remove");
    // An origin that holds /slow until the test releases it.
    let arrived = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let up = {
        let (arrived, release) = (arrived.clone(), release.clone());
        common::origin::origin(move |req| {
            let (arrived, release) = (arrived.clone(), release.clone());
            async move {
                if req.uri().path() == "/slow" {
                    arrived.notify_one();
                    release.notified().await;
                }
                let body = format!("origin saw {}", req.uri().path());
                response(200, &[("content-type", "text/plain")], full(body))
            }
        })
        .await
    };
    let setup = Site::new(up);
    let (kept, removed) = (free_port(), free_port());
    let config = setup.config("example.cn", &[(kept, false), (removed, false)], &[]);
    let (serve, admin) = start(&dir, &setup, &config);

    // A kept-alive connection on the listener to remove, its request passed through and
    // held at the origin.
    let mut in_flight = connect(local(removed), TRUSTED).await;
    let raw = http::request("GET", "www.example.com", "/slow", &[ABROAD]);
    tokio::io::AsyncWriteExt::write_all(&mut in_flight, raw.as_bytes())
        .await
        .expect("write");
    tokio::time::timeout(LIMIT, arrived.notified())
        .await
        .expect("the request reached the origin");

    let edited = setup.config("example.cn", &[(kept, false)], &[]);
    let line = tokio::task::block_in_place(|| hup(&serve, &dir, &edited, 1));
    assert!(
        line.contains("configuration reloaded: [redirect] applied"),
        "{line}"
    );
    assert!(
        serve.stderr().contains(&format!(
            "redirect stopped listening: its open connections drain addr=127.0.0.1:{removed}"
        )),
        "{}",
        serve.stderr()
    );
    refused(removed).await;

    // The request in flight completes, then its connection is closed.
    release.notify_one();
    let r = tokio::time::timeout(LIMIT, http::read_response(&mut in_flight))
        .await
        .expect("the response in flight");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "origin saw /slow");
    assert_eq!(read_until_closed(&mut in_flight, LIMIT).await, b"");

    // The kept listener serves; the removed one is gone from /status and /metrics.
    let mut s = connect(local(kept), TRUSTED).await;
    assert_eq!(
        ask(&mut s, "/k", CHINA).await.header("location"),
        Some("https://www.example.cn/k")
    );
    assert_eq!(
        listener_addresses(&status(admin).await),
        [format!("127.0.0.1:{kept}")]
    );
    let m = http::get(admin, "/metrics", None).await.body;
    assert!(!m.contains(&format!("127.0.0.1:{removed}")), "{m}");
    assert!(
        m.lines().any(|l| l
            == format!(
                "geoline_http_connections_total{{role=\"redirect\",listener=\"127.0.0.1:{kept}\"}} 1"
            )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_listener_serves_a_looping_client_through_reloads_without_an_error() {
    let dir = TempDir::new("listeners-loop");
    let up = origin().await;
    let setup = Site::new(up);
    let (port, other) = (free_port(), free_port());
    let config = setup.config("example.cn", &[(port, false)], &[]);
    let (serve, admin) = start(&dir, &setup, &config);

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    // One client with a connection per request, one on a kept-alive connection.
    let client = |fresh: bool| {
        let (stop, served) = (stop.clone(), served.clone());
        tokio::spawn(async move {
            let mut errors = Vec::new();
            let mut s = connect(local(port), TRUSTED).await;
            while !stop.load(Ordering::Relaxed) {
                // Paced, so that a connection per request leaves few ports in TIME_WAIT.
                tokio::time::sleep(Duration::from_millis(2)).await;
                if fresh {
                    s = match TcpStream::connect(local(port)).await {
                        Ok(s) => s,
                        Err(e) => {
                            errors.push(format!("connect: {e}"));
                            continue;
                        }
                    };
                }
                let raw = http::request("GET", "www.example.com", "/loop", &[CHINA]);
                let exchange = http::exchange(&mut s, raw.as_bytes(), Duration::from_secs(10));
                let r = exchange.await;
                match r.header("location") {
                    Some("https://www.example.cn/loop" | "https://www.example.net/loop") => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    other => errors.push(format!("{} {other:?}", r.status)),
                }
            }
            errors
        })
    };
    let (fresh, kept) = (client(true), client(false));

    // Reloads that add and remove another listener and change the rule, the looping
    // clients' listener in every version.
    let versions = [
        setup.config("example.net", &[(port, false), (other, false)], &[]),
        setup.config("example.cn", &[(other, false), (port, false)], &[]),
        setup.config("example.net", &[(port, false)], &[]),
        setup.config("example.cn", &[(port, false), (other, false)], &[]),
    ];
    for (i, version) in versions.iter().enumerate() {
        let before = served.load(Ordering::Relaxed);
        let line = tokio::task::block_in_place(|| hup(&serve, &dir, version, i + 1));
        assert!(
            line.contains("configuration reloaded: [redirect] applied"),
            "{line}"
        );
        // Requests flow between reloads too.
        site::wait_until("requests after a reload", LIMIT, || {
            let served = served.clone();
            async move { served.load(Ordering::Relaxed) > before + 20 }
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in [fresh, kept] {
        let errors = task.await.expect("client");
        assert!(errors.is_empty(), "{errors:?}");
    }
    assert!(served.load(Ordering::Relaxed) > 80);
    assert_eq!(
        listener_addresses(&status(admin).await),
        [format!("127.0.0.1:{port}"), format!("127.0.0.1:{other}")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_cannot_be_bound_refuses_the_reload_whole() {
    let dir = TempDir::new("listeners-taken");
    let up = origin().await;
    let setup = Site::new(up);
    let port = free_port();
    let config = setup.config("example.cn", &[(port, false)], &[]);
    let (serve, admin) = start(&dir, &setup, &config);

    // Another process's socket on one port; a free one before it in the same edit, and a
    // new rule.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr").port();
    let free = free_port();
    let edited = setup.config(
        "example.net",
        &[(port, false), (free, false), (taken, false)],
        &[],
    );
    let line = tokio::task::block_in_place(|| hup(&serve, &dir, &edited, 1));
    assert!(line.contains("configuration not reloaded"), "{line}");
    let want = format!("redirect: cannot listen on 127.0.0.1:{taken}: ");
    assert!(line.contains(&want), "{line}");

    let s = status(admin).await;
    let last = &s["config"]["last_reload"];
    assert_eq!(last["ok"], false, "{s}");
    assert!(
        last["error"].as_str().expect("error").contains(&want),
        "{s}"
    );
    // Nothing applied: the old rule, the old listeners, the free port not listened on.
    assert_eq!(listener_addresses(&s), [format!("127.0.0.1:{port}")]);
    let mut c = connect(local(port), TRUSTED).await;
    assert_eq!(
        ask(&mut c, "/still", CHINA).await.header("location"),
        Some("https://www.example.cn/still")
    );
    refused(free).await;

    // Once the port is free, the same edit applies.
    drop(holder);
    let line = tokio::task::block_in_place(|| hup(&serve, &dir, &edited, 2));
    assert!(
        line.contains("configuration reloaded: [redirect] applied"),
        "{line}"
    );
    for p in [port, free, taken] {
        let mut c = connect(local(p), TRUSTED).await;
        assert_eq!(
            ask(&mut c, "/now", CHINA).await.header("location"),
            Some("https://www.example.net/now"),
            "{p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_added_starts_its_front_end_and_a_section_removed_stops_it() {
    let dir = TempDir::new("listeners-sections");
    let up = origin().await;
    let setup = Site::new(up);
    let (redirect, proxy) = (free_port(), free_port());
    let config = setup.config("example.cn", &[(redirect, false)], &[]);
    let (serve, admin) = start(&dir, &setup, &config);

    // [proxy] added.
    let with_proxy = config.clone().table(
        "[proxy]",
        &[
            r#"origin = "http://example.com""#,
            &format!(r#"connect_to = "{up}""#),
            r#"hosts = [{ public = "example.cn", origin = "example.com" }]"#,
            r#"access_log = "off""#,
        ],
    );
    let with_proxy = with_proxy.table(
        "[[proxy.listen]]",
        &[&format!(r#"address = "127.0.0.1:{proxy}""#)],
    );
    let line = tokio::task::block_in_place(|| hup(&serve, &dir, &with_proxy, 1));
    assert!(
        line.contains("configuration reloaded: [proxy] applied"),
        "{line}"
    );
    let mut p = connect(local(proxy), TRUSTED).await;
    let raw = http::request("GET", "example.cn", "/via-proxy", &[]);
    let r = http::exchange(&mut p, raw.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "origin saw /via-proxy"));
    let m = http::get(admin, "/metrics", None).await.body;
    assert!(
        m.lines().any(|l| l == "geoline_proxy_requests_total 1"),
        "{m}"
    );

    // [redirect] removed: its listener refuses, the proxy serves on (the same connection).
    let text = with_proxy.to_string();
    let without_redirect = text
        .split("\n\n")
        .filter(|t| !t.starts_with("[redirect") && !t.starts_with("[[redirect"))
        .collect::<Vec<_>>()
        .join("\n\n");
    let line = tokio::task::block_in_place(|| hup_text(&serve, &dir, &without_redirect, 2));
    assert!(
        line.contains("configuration reloaded: [redirect] applied"),
        "{line}"
    );
    // Said by the listener's task once its socket is closed, which may be after the
    // reload's own line.
    tokio::task::block_in_place(|| {
        serve.wait_for(
            &format!(
                "redirect stopped listening: its open connections drain addr=127.0.0.1:{redirect}"
            ),
            LIMIT,
        )
    });
    refused(redirect).await;
    let raw = http::request("GET", "example.cn", "/again", &[]);
    let r = http::exchange(&mut p, raw.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "origin saw /again"));
    assert_eq!(
        listener_addresses(&status(admin).await),
        [format!("127.0.0.1:{proxy}")]
    );

    // Back to the redirector alone: the proxy's listener refuses, the redirector's serves.
    let line = tokio::task::block_in_place(|| hup(&serve, &dir, &config, 3));
    assert!(line.contains("configuration reloaded"), "{line}");
    refused(proxy).await;
    let mut c = connect(local(redirect), TRUSTED).await;
    assert_eq!(
        ask(&mut c, "/back", CHINA).await.header("location"),
        Some("https://www.example.cn/back")
    );
}
