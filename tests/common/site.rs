//! A small site for the reload and admin tests: `example.com` with a `china` overlay, a
//! GeoIP2 Country database in which 1.2.0.0/16 is either in CN or in JP; and the
//! configuration builder every test writes its geoline.toml with.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use super::dns::{self, A, Query};
use super::{TempDir, mmdb};

pub const ZONE: &str = "$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 2026112201 7200 900 1209600 60
     NS  ns1
     MX  10 mail
ns1  A   192.0.2.53
mail A   192.0.2.25
www  A   192.0.2.10
";

pub const CHINA: &str = "$TTL 300\nwww 60 A 203.0.113.10\n";

/// What `www.example.com A` gets on each line.
pub const CHINA_ANSWER: &str = "203.0.113.10";
pub const DEFAULT_ANSWER: &str = "192.0.2.10";

/// 1.2.0.0/16 in mainland China.
pub fn cn_db() -> Vec<u8> {
    mmdb::geoip2_country_bytes(&[("1.2.0.0/16", "CN", "AS"), ("8.0.0.0/8", "US", "NA")])
}

/// The same range moved to Japan.
pub fn jp_db() -> Vec<u8> {
    mmdb::geoip2_country_bytes(&[("1.2.0.0/16", "JP", "AS"), ("8.0.0.0/8", "US", "NA")])
}

/// Writes the zone, its overlay and `country.mmdb` (the CN version); returns the example
/// site's configuration ([`Config::example`]) with the admin listener.
pub fn write(dir: &TempDir) -> Config {
    dir.write("example.com.zone", ZONE);
    dir.write("example.com.china.zone", CHINA);
    dir.write_bytes("country.mmdb", &cn_db());
    Config::example().admin()
}

/// `[reload]` keys: the file watcher off (reloads by request or signal only).
pub const NO_WATCH: &[&str] = &["watch = false"];

/// geoline.toml for a test, table by table, in the order the tables were added. The
/// presets ([`Config::dns`], [`Config::example`], [`Config::redirect`]) hold what a test
/// needs to start; a test sets the keys it depends on itself ([`Config::set`]), so that
/// they stand in the test.
#[derive(Clone, Debug, Default)]
pub struct Config {
    tables: Vec<Table>,
}

#[derive(Clone, Debug)]
struct Table {
    /// `[name]` or `[[name]]`.
    header: String,
    /// `key = value` lines.
    keys: Vec<String>,
}

impl Config {
    /// DNS on 127.0.0.1 (an ephemeral port), nothing else.
    pub fn dns() -> Config {
        Config::default().table("[dns]", &[r#"listen = ["127.0.0.1:0"]"#])
    }

    /// The example site ([`write`] writes its files): DNS on 127.0.0.1, `country.mmdb`, a
    /// `china` line of the clients in CN, and example.com with its china overlay.
    pub fn example() -> Config {
        Config::dns()
            .geoip("country.mmdb")
            .line("china", &[r#"countries = ["CN"]"#])
            .zone("example.com.zone", &[("china", "example.com.china.zone")])
    }

    /// Appends a table: `header` is `[name]` or `[[name]]`, `keys` its `key = value` lines.
    pub fn table(mut self, header: &str, keys: &[&str]) -> Config {
        self.tables.push(Table {
            header: header.to_string(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        });
        self
    }

    /// Sets each `key = value` in the last table `header`, in place of the key's value if
    /// the table has one.
    pub fn set(mut self, header: &str, keys: &[&str]) -> Config {
        let table = self
            .tables
            .iter_mut()
            .rev()
            .find(|t| t.header == header)
            .unwrap_or_else(|| panic!("no table {header} to set {keys:?} in"));
        for key in keys {
            let name = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
            match table.keys.iter_mut().find(|k| name(k) == name(key)) {
                Some(line) => *line = key.to_string(),
                None => table.keys.push(key.to_string()),
            }
        }
        self
    }

    /// The admin listener on 127.0.0.1 (an ephemeral port).
    pub fn admin(self) -> Config {
        self.table("[admin]", &[r#"listen = "127.0.0.1:0""#])
    }

    /// A `[[geoip]]` database.
    pub fn geoip(self, path: &str) -> Config {
        self.table("[[geoip]]", &[&format!("path = {path:?}")])
    }

    /// A `[[line]]` named `name`, with its rules.
    pub fn line(self, name: &str, rules: &[&str]) -> Config {
        let name = format!("name = {name:?}");
        let keys: Vec<&str> = std::iter::once(name.as_str())
            .chain(rules.iter().copied())
            .collect();
        self.table("[[line]]", &keys)
    }

    /// A `[[zone]]` from `file`, with `(line, file)` overlays.
    pub fn zone(self, file: &str, overlays: &[(&str, &str)]) -> Config {
        let file = format!("file = {file:?}");
        if overlays.is_empty() {
            return self.table("[[zone]]", &[&file]);
        }
        let overlays: Vec<String> = overlays
            .iter()
            .map(|(line, file)| format!("{line} = {file:?}"))
            .collect();
        let overlays = format!("overlays = {{ {} }}", overlays.join(", "));
        self.table("[[zone]]", &[&file, &overlays])
    }

    /// [`Config::redirect`] with the `china` line (CN) of a database written in `dir`
    /// (1.2.4.0/22 in CN, 8.8.8.0/24 in US).
    pub fn redirector(dir: &TempDir, trusted: &str, origin: SocketAddr) -> Config {
        mmdb::write_ip_location_db(
            &dir.path().join("geo.mmdb"),
            &[("1.2.4.0/22", "CN"), ("8.8.8.0/24", "US")],
        );
        Config::default()
            .geoip("geo.mmdb")
            .line("china", &[r#"countries = ["CN"]"#])
            .redirect(trusted, origin)
    }

    /// The redirector trusting `trusted`, its access log off: one plain listener on 127.0.0.1, the rule
    /// example.com → example.cn for the `china` line, and example.com's origin at
    /// `origin`.
    pub fn redirect(self, trusted: &str, origin: SocketAddr) -> Config {
        self.table(
            "[redirect]",
            &[
                &format!("trusted_proxies = [{trusted:?}]"),
                // Tests that read the log name a file.
                r#"access_log = "off""#,
            ],
        )
        .table("[[redirect.listen]]", &[r#"address = "127.0.0.1:0""#])
        .table(
            "[[redirect.rule]]",
            &[
                r#"from = "example.com""#,
                r#"to = "example.cn""#,
                r#"lines = ["china"]"#,
            ],
        )
        .table(
            "[redirect.origin]",
            &[
                r#"url = "http://example.com""#,
                &format!(r#"connect_to = "{origin}""#),
            ],
        )
    }
}

/// The TOML text, each table followed by an empty line.
impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for t in &self.tables {
            writeln!(f, "{}", t.header)?;
            for k in &t.keys {
                writeln!(f, "{k}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The address `www.example.com A` gets for a client in 1.2.3.0/24 (by ECS).
pub async fn answer(server: SocketAddr) -> String {
    let q = Query::new("www.example.com", A).subnet("1.2.3.0/24");
    let reply = dns::udp(server, &q).await;
    let answers = reply.answers();
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].rsplit(' ').next().expect("rdata").to_string()
}

/// Polls `check` until it returns true; panics after `limit`. Only for waiting on
/// something asynchronous (a file watcher, a process): the limit is generous, never a
/// measurement.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The limit for waiting on the file watcher.
pub const WATCH_LIMIT: Duration = Duration::from_secs(30);
