//! The integration tests' one support kit: fixtures written on the spot (files, GeoIP
//! databases, certificates, configurations) and servers started in-process on ephemeral
//! ports, with the clients that talk to them.
//!
//! - [`dns`]: DNS queries built and replies parsed byte by byte, over UDP and TCP.
//! - [`http`]: raw HTTP/1.1 on a socket, for the redirector, the proxy's listener and the
//!   admin listener.
//! - [`origin`]: origins behind the proxy and the redirector (plain, TLS, recording).
//! - [`ports`]: ports for servers a test names before they start, never the kernel's
//!   ephemeral ones (which a parallel test's port-0 bind can take first).
//! - [`process`]: `geoline serve` as a child process, its standard error collected.
//! - [`proxy`]: the library proxy on a port and the hyper client that talks to it.
//! - [`race`]: updates sent while reloads run, and what every such race must show.
//! - [`tls`]: the test CA and rustls configurations trusting it.
//! - [`mmdb`]: GeoIP databases in the layouts geoline reads (crates/mmdb-fixtures, which
//!   the library's unit tests use too).
//! - [`site`]: the example site's files and the configuration builder.
//! - [`tsig`]: requests signed and signed replies checked, independently of geoline.

// Each test binary uses a part of the kit.
#![allow(dead_code)]

pub mod dns;
pub mod http;
pub mod origin;
pub mod ports;
pub mod process;
pub mod proxy;
pub mod race;
pub mod site;
pub mod tls;
pub mod tsig;

pub use geoline_mmdb_fixtures as mmdb;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use geoline::config::Config;
use geoline::server::{self, Running};

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "geoline-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        self.write_bytes(name, contents.as_bytes())
    }

    pub fn write_bytes(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write fixture");
        path
    }

    /// Writes `contents` to a temporary name and renames it over `name`, as `geoipupdate`
    /// replaces a database.
    pub fn replace(&self, name: &str, contents: &[u8]) -> PathBuf {
        let tmp = self.0.join(format!("{name}.tmp-replace"));
        std::fs::write(&tmp, contents).expect("write temporary");
        let path = self.0.join(name);
        std::fs::rename(&tmp, &path).expect("rename into place");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server started from `config_text` written as `geoline.toml` in `dir`.
pub struct TestServer {
    pub running: Running,
    pub udp4: SocketAddr,
    pub tcp4: SocketAddr,
    pub udp6: Option<SocketAddr>,
    pub tcp6: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

impl TestServer {
    /// Starts the server from `config` (a [`site::Config`] or the text of one).
    pub async fn start(dir: &TempDir, config: impl std::fmt::Display) -> TestServer {
        let path = dir.write("geoline.toml", &config.to_string());
        let config = Config::load(&path).expect("config loads");
        let running = server::start(&config).await.expect("server starts");
        let pick =
            |addrs: &[SocketAddr], v4: bool| addrs.iter().copied().find(|a| a.is_ipv4() == v4);
        TestServer {
            udp4: pick(&running.dns_udp, true).expect("an IPv4 UDP listener"),
            tcp4: pick(&running.dns_tcp, true).expect("an IPv4 TCP listener"),
            udp6: pick(&running.dns_udp, false),
            tcp6: pick(&running.dns_tcp, false),
            admin: running.admin,
            running,
        }
    }
}
