//! ACME's challenge records written into a zone another server holds: RFC 2136 + TSIG to
//! that zone's primary (here another geoline, over real sockets), whose response must be
//! signed by the update's key over the update. A primary that refuses the signature, and
//! primaries that answer NOERROR unsigned or with a forged TSIG, are errors: nothing
//! is taken for a record written. The whole flow with a CA and BIND as the primary is
//! tests/interop/acme_remote.sh.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use geoline::internal::acme::{Dns01Error, Publisher, authorities, challenge_name};
use geoline::internal::tsig::{Algorithm, AnswerTsigError, Key, Secret, error};
use hickory_proto::rr::Name;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::dns::{Query, TXT, udp};
use common::{TempDir, TestServer, site};

const SECRET: &[u8] = b"acme-remote-secret-acme-remote-1";

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn key(secret: &[u8]) -> Arc<Key> {
    Arc::new(
        Key::new(
            name("acme-upd."),
            Algorithm::HmacSha256,
            Secret::new(secret.to_vec()),
        )
        .expect("key"),
    )
}

fn publisher(server: SocketAddr, secret: &[u8]) -> Publisher {
    Publisher::Rfc2136 {
        zone: name("example.com."),
        server,
        key: key(secret),
    }
}

/// The zone's primary: a geoline serving example.com, granting `acme-upd` the challenge
/// TXT records.
async fn primary(dir: &TempDir) -> TestServer {
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let config = site::write(dir)
        .table(
            "[[key]]",
            &[
                r#"name = "acme-upd""#,
                r#"algorithm = "hmac-sha256""#,
                &format!("secret = {secret:?}"),
            ],
        )
        .table("[update]", &[])
        .table(
            "[[update.grant]]",
            &[
                r#"key = "acme-upd""#,
                r#"zones = ["example.com"]"#,
                r#"names = ["_acme-challenge.*"]"#,
                r#"types = ["TXT"]"#,
            ],
        );
    TestServer::start(dir, config).await
}

/// The TXT strings at `_acme-challenge.example.com` for a client of `subnet`, and the rcode.
async fn served(server: SocketAddr, subnet: &str) -> (u16, Vec<String>) {
    let reply = udp(
        server,
        &Query::new("_acme-challenge.example.com", TXT)
            .edns()
            .subnet(subnet),
    )
    .await;
    let mut values: Vec<String> = reply
        .answers()
        .iter()
        .map(|a| {
            a.rsplit(' ')
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .collect();
    values.sort();
    (reply.rcode(), values)
}

#[tokio::test]
async fn challenge_records_reach_another_servers_zone_by_signed_update() {
    let dir = TempDir::new("acme-remote");
    let b = primary(&dir).await;
    let owner = challenge_name("*.example.com").expect("name");
    let p = publisher(b.tcp4, SECRET);

    p.write(&owner, "one", 60, true).await.expect("added");
    p.write(&owner, "two", 60, true).await.expect("added");
    for subnet in ["1.2.3.0/24", "8.8.8.0/24"] {
        assert_eq!(
            served(b.udp4, subnet).await,
            (0, vec!["one".to_string(), "two".to_string()]),
            "{subnet}"
        );
    }
    // The NS set comes from the primary itself; ns1 is the primary too.
    let overrides = BTreeMap::from([(name("ns1.example.com."), vec![b.udp4])]);
    let servers = authorities(&p, &overrides)
        .await
        .expect("NS read from the primary");
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].host, name("ns1.example.com."));

    p.write(&owner, "one", 60, false).await.expect("removed");
    assert_eq!(
        served(b.udp4, "8.8.8.0/24").await,
        (0, vec!["two".to_string()])
    );
    p.write(&owner, "two", 60, false).await.expect("removed");
    assert_eq!(served(b.udp4, "8.8.8.0/24").await.0, 3, "NXDOMAIN again");
    b.running.shutdown().await;
}

#[tokio::test]
async fn a_primary_refusing_the_key_is_an_error_naming_its_tsig_error() {
    let dir = TempDir::new("acme-remote-badsig");
    let b = primary(&dir).await;
    let owner = challenge_name("example.com").expect("name");
    let e = publisher(b.tcp4, b"not the secret")
        .write(&owner, "v", 60, true)
        .await
        .expect_err("refused");
    match &e {
        Dns01Error::Tsig { rcode, source, .. } => {
            assert_eq!(rcode, "Not authorized");
            assert_eq!(*source, AnswerTsigError::Refused(error::BADSIG));
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .ends_with("the primary refused the request's signature (TSIG error 16)"),
        "{e}"
    );
    assert_eq!(served(b.udp4, "8.8.8.0/24").await.0, 3, "nothing written");
    b.running.shutdown().await;
}

/// What a fake primary makes of a request.
type Answer = fn(Vec<u8>) -> Vec<u8>;

/// A TCP DNS server that answers one message with what `answer` makes of the request.
async fn fake_primary(answer: Answer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut len = [0u8; 2];
            if stream.read_exact(&mut len).await.is_err() {
                continue;
            }
            let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if stream.read_exact(&mut request).await.is_err() {
                continue;
            }
            let response = answer(request);
            let mut framed = (response.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&response);
            let _ = stream.write_all(&framed).await;
        }
    });
    addr
}

/// The request's header and question as a NOERROR response (QR set), nothing else: what
/// a server that ignores TSIG, or a forger without the key, would answer.
fn unsigned_noerror(request: Vec<u8>) -> Vec<u8> {
    let mut response = request[..12].to_vec();
    response[2] |= 0x80;
    response[3] &= 0xf0;
    // Header counts: the question only.
    response[6..12].fill(0);
    let mut at = 12;
    while request[at] != 0 {
        at += 1 + usize::from(request[at]);
    }
    response.extend_from_slice(&request[12..at + 5]);
    response
}

/// The request itself sent back with QR set: its TSIG record is the request's, which
/// does not cover a response.
fn echoed(mut request: Vec<u8>) -> Vec<u8> {
    request[2] |= 0x80;
    request
}

#[tokio::test]
async fn an_unsigned_or_forged_noerror_is_not_taken_for_a_record_written() {
    let owner = challenge_name("example.com").expect("name");
    let cases: [(Answer, AnswerTsigError); 2] = [
        (
            unsigned_noerror,
            AnswerTsigError::Unsigned("its first message is not signed"),
        ),
        (echoed, AnswerTsigError::BadSig),
    ];
    for (answer, expect) in cases {
        let server = fake_primary(answer).await;
        let e = tokio::time::timeout(
            Duration::from_secs(15),
            publisher(server, SECRET).write(&owner, "v", 60, true),
        )
        .await
        .expect("answered")
        .expect_err("not taken");
        match e {
            Dns01Error::Tsig { source, rcode, .. } => {
                assert_eq!(source, expect);
                assert_eq!(rcode, "No Error", "the forged response claimed success");
            }
            other => panic!("{other}"),
        }
    }
}
