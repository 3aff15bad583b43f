//! ACME's parts that need no CA, over real sockets: the DNS-01 record written and removed
//! through the update path and seen over UDP on every line, the authoritative servers of
//! a zone, the wait for two DNS listeners of which one is slow, and the redirector's TLS
//! listener serving an ACME certificate from the state directory at start (a restart
//! never waits for the CA) while an unreachable CA shows in `/status`. The whole flow
//! against pebble is tests/interop/acme.sh.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use geoline::config::AcmeConfig;
use geoline::internal::acme::{
    Authority, PropagationError, Publisher, authorities, challenge_name, publisher_for,
    wait_until_served,
};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record};
use rustls::pki_types::ServerName;
use tokio::net::UdpSocket;

use common::dns::{Query, TXT as TXT_TYPE, udp};
use common::tls::{TestCa, client_config};
use common::{TempDir, TestServer, http, site};

const CHINA_CLIENT: &str = "1.2.3.0/24";
const DEFAULT_CLIENT: &str = "8.8.8.0/24";

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// The TXT strings at `owner` as a client of `subnet` sees them, with the rcode and AA.
async fn txt(server: SocketAddr, subnet: &str, owner: &str) -> (u16, bool, Vec<String>) {
    let reply = udp(server, &Query::new(owner, TXT_TYPE).edns().subnet(subnet)).await;
    let values = reply
        .message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    (reply.rcode(), reply.aa(), values)
}

#[tokio::test]
async fn challenge_records_go_through_the_update_path_to_every_line_and_away_again() {
    let dir = TempDir::new("acme-dns01");
    let config = site::write(&dir);
    let server = TestServer::start(&dir, config).await;
    let live = server.running.reloader.live().clone();
    let acme = AcmeConfig::with_state_dir(dir.path().join("acme"));

    // The apex's and the wildcard's challenges share one name.
    let apex = challenge_name("example.com").expect("name");
    assert_eq!(apex, challenge_name("*.example.com").expect("name"));
    assert_eq!(apex, name("_acme-challenge.example.com."));
    let publisher = publisher_for(&apex, &live, &acme).expect("a zone served here");
    assert!(matches!(&publisher, Publisher::Local { zone, .. } if *zone == name("example.com.")));
    let owner = "_acme-challenge.example.com.";
    assert_eq!(
        txt(server.udp4, DEFAULT_CLIENT, owner).await.0,
        3,
        "NXDOMAIN before"
    );

    publisher
        .write(&apex, "apex-value", 60, true)
        .await
        .expect("added");
    publisher
        .write(&apex, "wild-value", 60, true)
        .await
        .expect("added");
    for subnet in [CHINA_CLIENT, DEFAULT_CLIENT] {
        let (rcode, aa, mut values) = txt(server.udp4, subnet, owner).await;
        values.sort();
        assert_eq!((rcode, aa), (0, true), "{subnet}");
        assert_eq!(values, ["apex-value", "wild-value"], "{subnet}");
    }
    // Journaled like any update, under geoline's own identity.
    let journal = std::fs::metadata(dir.path().join("example.com.jnl")).expect("journal");
    assert!(journal.len() > 0);
    let metrics = http::get(server.admin.expect("admin"), "/metrics", None).await;
    assert!(
        metrics
            .body
            .contains(r#"geoline_dns_updates_total{zone="example.com.",key="geoline-acme.",result="noerror"} 2"#),
        "{}",
        metrics.body
    );

    // Removing one value leaves the other (another challenge may still need it).
    publisher
        .write(&apex, "apex-value", 60, false)
        .await
        .expect("removed");
    let (_, _, values) = txt(server.udp4, CHINA_CLIENT, owner).await;
    assert_eq!(values, ["wild-value"]);
    publisher
        .write(&apex, "wild-value", 60, false)
        .await
        .expect("removed");
    assert_eq!(
        txt(server.udp4, DEFAULT_CLIENT, owner).await.0,
        3,
        "NXDOMAIN after"
    );

    // A name in no zone served here and in no [[acme.rfc2136]] zone.
    let elsewhere = challenge_name("example.org").expect("name");
    let e = publisher_for(&elsewhere, &live, &acme).expect_err("no zone");
    assert_eq!(
        e.to_string(),
        "_acme-challenge.example.org.: no zone served here holds it and no [[acme.rfc2136]] names its zone"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_zones_name_servers_come_from_overrides_then_glue_and_all_must_serve() {
    let dir = TempDir::new("acme-ns");
    let config = site::write(&dir);
    // Two name servers, one with an IPv6 address too.
    dir.write(
        "example.com.zone",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n  NS ns1\n  NS ns2\nns1 A 192.0.2.53\nns1 AAAA 2001:db8::53\nns2 A 198.51.100.53\nwww A 192.0.2.10\n",
    );
    let server = TestServer::start(&dir, config).await;
    let live = server.running.reloader.live().clone();
    let acme = AcmeConfig::with_state_dir(dir.path().join("acme"));
    let apex = challenge_name("example.com").expect("name");
    let publisher = publisher_for(&apex, &live, &acme).expect("local");

    // Without overrides the zone's glue gives the addresses (nothing is sent here).
    let glued = authorities(&publisher, &BTreeMap::new())
        .await
        .expect("glue");
    let addrs: Vec<String> = glued
        .iter()
        .map(|a| format!("{} {}", a.host, a.addr))
        .collect();
    assert_eq!(
        addrs,
        [
            "ns1.example.com. 192.0.2.53:53",
            "ns1.example.com. [2001:db8::53]:53",
            "ns2.example.com. 198.51.100.53:53",
        ]
    );
    // With overrides, both name servers are this server.
    let overrides = BTreeMap::from([
        (name("ns1.example.com."), vec![server.udp4]),
        (name("ns2.example.com."), vec![server.udp4]),
    ]);
    let servers = authorities(&publisher, &overrides).await.expect("servers");
    assert_eq!(servers.len(), 2);
    publisher
        .write(&apex, "token", 60, true)
        .await
        .expect("added");
    let took = wait_until_served(
        &servers,
        &apex,
        &["token".to_string()],
        Duration::from_millis(100),
        Duration::from_secs(5),
    )
    .await
    .expect("served");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A value not published is never served: the wait times out.
    let e = wait_until_served(
        &servers,
        &apex,
        &["token".to_string(), "missing".to_string()],
        Duration::from_millis(100),
        Duration::from_millis(400),
    )
    .await
    .expect_err("times out");
    assert!(matches!(e, PropagationError::Timeout { .. }), "{e}");
    server.running.shutdown().await;
}

/// A DNS listener on 127.0.0.1 that answers TXT `value` authoritatively once `delay` has
/// passed since it started, and an empty NOERROR before (a secondary not yet updated).
async fn lagging_server(value: &'static str, delay: Duration) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let started = Instant::now();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut response = Message::new(
                query.metadata.id,
                MessageType::Response,
                query.metadata.op_code,
            );
            response.metadata.authoritative = true;
            response.metadata.response_code = ResponseCode::NoError;
            response.add_queries(query.queries.clone());
            if started.elapsed() >= delay
                && let Some(q) = query.queries.first()
            {
                response.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::TXT(TXT::new(vec![value.to_string()])),
                ));
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    addr
}

/// ns1.example.org at `ns1`, ns2.example.org at `ns2`.
fn ns1_and_ns2(ns1: SocketAddr, ns2: SocketAddr) -> [Authority; 2] {
    [("ns1.example.org.", ns1), ("ns2.example.org.", ns2)].map(|(host, addr)| Authority {
        host: name(host),
        addr,
    })
}

#[tokio::test]
async fn the_wait_lasts_until_the_slowest_server_serves_the_record() {
    let owner = name("_acme-challenge.example.org.");
    let fast = lagging_server("v", Duration::ZERO).await;
    let slow = lagging_server("v", Duration::from_millis(1200)).await;
    let servers = ns1_and_ns2(fast, slow);
    let took = wait_until_served(
        &servers,
        &owner,
        &["v".to_string()],
        Duration::from_millis(100),
        Duration::from_secs(10),
    )
    .await
    .expect("both serve it in the end");
    assert!(took >= Duration::from_millis(1200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // One that never catches up: the timeout names it, and only it.
    let never = lagging_server("v", Duration::from_secs(3600)).await;
    let servers = ns1_and_ns2(fast, never);
    let started = Instant::now();
    let e = wait_until_served(
        &servers,
        &owner,
        &["v".to_string()],
        Duration::from_millis(100),
        Duration::from_millis(600),
    )
    .await
    .expect_err("times out");
    assert!(started.elapsed() < Duration::from_secs(3));
    match e {
        PropagationError::Timeout { lagging, name, .. } => {
            assert_eq!(lagging, format!("ns2.example.org. ({never})"));
            assert_eq!(name, "_acme-challenge.example.org.");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_stored_acme_certificate_serves_at_start_and_an_unreachable_ca_shows_in_status() {
    let dir = TempDir::new("acme-tls");
    let ca = TestCa::new();
    let origin = common::origin::origin(|_req| async {
        common::origin::response(200, &[], common::origin::full("origin"))
    })
    .await;
    let text = site::Config::example()
        .admin()
        .redirect("127.0.0.1/32", origin)
        .table(
            "[[redirect.listen]]",
            &[r#"address = "127.0.0.1:0""#, "tls = true"],
        )
        .table(
            "[[redirect.certificate]]",
            &[r#"names = ["example.com", "*.example.com"]"#, "acme = true"],
        )
        .table(
            "[[redirect.certificate]]",
            &[
                r#"names = ["example.org"]"#,
                r#"acme = { directory = "https://127.0.0.1:1/dir" }"#,
            ],
        )
        .table(
            "[acme]",
            &[r#"state_dir = "state""#, "retry_min_secs = 3600"],
        );
    site::write(&dir);
    let path = dir.write("geoline.toml", &text.to_string());
    let config = geoline::config::Config::load(&path).expect("config");
    let certs = &config
        .redirect
        .as_ref()
        .expect("redirect")
        .front
        .certificates;
    assert!(
        certs[0]
            .cert
            .starts_with(dir.path().join("state/certificates"))
    );
    assert_ne!(certs[0].cert.parent(), certs[1].cert.parent());
    // What an earlier run obtained, in the state directory.
    let leaf = ca.leaf(&["example.com", "*.example.com"]);
    std::fs::create_dir_all(certs[0].cert.parent().expect("dir")).expect("dir");
    std::fs::write(&certs[0].cert, &leaf.cert_pem).expect("cert");
    std::fs::write(&certs[0].key, &leaf.key_pem).expect("key");

    let server = TestServer::start(&dir, text).await;
    let https = server.running.redirect[1];
    let tcp = tokio::net::TcpStream::connect(https)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(client_config(&ca.der(), &[b"http/1.1"]))
        .connect(ServerName::try_from("www.example.com").expect("sni"), tcp)
        .await
        .expect("the stored certificate is served");
    assert_eq!(
        tls.get_ref().1.peer_certificates().expect("chain")[0],
        leaf.der
    );

    let admin = server.admin.expect("admin");
    site::wait_until(
        "the unreachable CA's error in /status",
        Duration::from_secs(20),
        || async {
            let status = http::get(admin, "/status", None).await.json();
            status["acme"][1]["last_error"].is_string()
        },
    )
    .await;
    let status = http::get(admin, "/status", None).await.json();
    let acme = &status["acme"];
    assert_eq!(
        acme[0]["names"],
        serde_json::json!(["example.com", "*.example.com"])
    );
    assert_eq!(acme[0]["issuer"], "CN=geoline test CA");
    assert!(acme[0]["not_after"].is_string(), "{acme}");
    assert!(acme[0]["last_error"].is_null(), "{acme}");
    assert_eq!(acme[1]["directory"], "https://127.0.0.1:1/dir");
    assert!(acme[1]["not_after"].is_null());
    assert_eq!(acme[1]["failures"], 1);
    // The next attempt waits retry_min_secs.
    assert!(acme[1]["next_attempt"].is_string());
    let metrics = http::get(admin, "/metrics", None).await.body;
    assert!(
        metrics.contains(r#"geoline_acme_orders_total{names="example.org",result="failure"} 1"#),
        "{metrics}"
    );
    // Still served after the failure.
    let tcp = tokio::net::TcpStream::connect(https)
        .await
        .expect("connect");
    tokio_rustls::TlsConnector::from(client_config(&ca.der(), &[b"http/1.1"]))
        .connect(ServerName::try_from("example.com").expect("sni"), tcp)
        .await
        .expect("still served");
    drop(tls);
    server.running.shutdown().await;
}
