//! A small site for the reload and admin tests: `example.com` with a `china` overlay, a
//! GeoIP2 Country database in which 1.2.0.0/16 is either in CN or in JP, and a
//! configuration with the admin listener on an ephemeral port.

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

/// Writes the zone, its overlay and `country.mmdb` (the CN version); returns the
/// configuration text with `extra` appended (e.g. a `[reload]` section).
pub fn write(dir: &TempDir, extra: &str) -> String {
    dir.write("example.com.zone", ZONE);
    dir.write("example.com.china.zone", CHINA);
    dir.write_bytes("country.mmdb", &cn_db());
    format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]

[admin]
listen = "127.0.0.1:0"

[[geoip]]
path = "country.mmdb"

[[line]]
name = "china"
countries = ["CN"]

[[zone]]
file = "example.com.zone"
overlays = {{ china = "example.com.china.zone" }}

{extra}
"#
    )
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
