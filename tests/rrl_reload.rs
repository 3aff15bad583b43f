//! Response rate limiting across a reload that reorders the zones, over real sockets and
//! `POST /reload`: a zone's NXDOMAIN bucket is the zone's, named by its origin, so the
//! limited state of one zone stays with it and never passes to the zone that takes its
//! place in the list.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::dns::{self, A, Query, Reply};
use common::site::{Config, NO_WATCH};
use common::{TempDir, TestServer, http};

const COM: &str = "$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 2026120801 7200 900 1209600 60
     NS  ns1
ns1  A   192.0.2.53
";

const NET: &str = "$ORIGIN example.net.
$TTL 300
@    SOA ns1 hostmaster 2026120801 7200 900 1209600 60
     NS  ns1
ns1  A   198.51.100.53
";

/// NXDOMAIN buckets pass this many responses a second.
const RATE: usize = 3;

/// One UDP worker (one client's datagrams answered in order), the admin listener, no
/// watcher, rate limiting at [`RATE`] with every limited response slipped (so each query
/// gets a reply: a full one, or TC), and the zones of `files` in that order.
fn config(files: [&str; 2]) -> Config {
    files.iter().fold(
        Config::dns()
            .set("[dns]", &["udp_workers = 1"])
            .table(
                "[dns.rrl]",
                &[&format!("responses_per_second = {RATE}"), "slip = 1"],
            )
            .admin()
            .table("[reload]", NO_WATCH),
        |config, file| config.zone(file, &[]),
    )
}

/// Waits for the rate limiter's clock to start a new second.
async fn second_starts() {
    let now = geoline::internal::now_secs();
    while geoline::internal::now_secs() == now {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A name that does not exist under `zone`, the `n`th asked.
async fn nonexistent(server: SocketAddr, zone: &str, n: usize) -> Reply {
    dns::udp(server, &Query::new(&format!("nx{n}.{zone}"), A)).await
}

fn assert_nxdomain(reply: &Reply, what: &str) {
    assert!(
        reply.rcode() == 3 && reply.aa() && !reply.tc(),
        "{what}: a full NXDOMAIN, got rcode {} aa {} tc {}",
        reply.rcode(),
        reply.aa(),
        reply.tc()
    );
}

/// Slipped: TC, the header's rcode kept, no records.
fn assert_slipped(reply: &Reply, what: &str) {
    assert!(
        reply.tc() && reply.answers().is_empty() && reply.authority().is_empty(),
        "{what}: slipped (TC, no records), got rcode {} tc {} authority {:?}",
        reply.rcode(),
        reply.tc(),
        reply.authority()
    );
}

/// example.com's NXDOMAIN bucket emptied, then the zones' order swapped by a reload: in
/// the same second, example.net — now first in the list, where example.com was — is
/// answered in full, and example.com is still limited. (Keyed by position, example.net
/// would get example.com's empty bucket and example.com a fresh one.) Then back again,
/// the other way round.
#[tokio::test]
async fn a_reload_that_reorders_zones_leaves_each_its_own_limit() {
    let dir = TempDir::new("rrl-reload");
    dir.write("example.com.zone", COM);
    dir.write("example.net.zone", NET);
    let orders = [
        ["example.com.zone", "example.net.zone"],
        ["example.net.zone", "example.com.zone"],
    ];
    let s = TestServer::start(&dir, config(orders[0])).await;
    let admin = s.admin.expect("admin");
    let mut checked = 0;
    // Each round limits the zone first in the list and swaps the order; a round that did
    // not fit in one second of the limiter's clock proves nothing and is done again.
    for round in 0..12 {
        let (limited, other) = if round % 2 == 0 {
            ("example.com", "example.net")
        } else {
            ("example.net", "example.com")
        };
        second_starts().await;
        let second = geoline::internal::now_secs();
        for n in 0..RATE {
            assert_nxdomain(&nonexistent(s.udp4, limited, n).await, limited);
        }
        assert_slipped(&nonexistent(s.udp4, limited, RATE).await, limited);

        dir.write("geoline.toml", &config(orders[(round + 1) % 2]).to_string());
        let reload = http::post(admin, "/reload", None).await;
        assert_eq!(reload.status, 200, "{}", reload.body);
        let status = http::get(admin, "/status", None).await.json();
        let first = status["zones"][0]["origin"].as_str().map(str::to_string);
        assert_eq!(
            first.as_deref(),
            Some(format!("{other}.").as_str()),
            "{status}"
        );

        let other_reply = nonexistent(s.udp4, other, 100).await;
        let limited_reply = nonexistent(s.udp4, limited, 101).await;
        if geoline::internal::now_secs() != second {
            continue;
        }
        assert_nxdomain(
            &other_reply,
            &format!("{other}, moved to {limited}'s place"),
        );
        assert_slipped(&limited_reply, &format!("{limited}, moved"));
        checked += 1;
        if checked == 2 {
            return;
        }
    }
    panic!("only {checked} of 12 rounds fitted in one second of the limiter's clock");
}
