//! The compression level of rewritten bodies re-encoded for the client (`[proxy]
//! gzip_level`, `ProxyBuilder::gzip_level`): exact `Content-Encoding`, bodies that decode to
//! the rewritten text, and bytes that are the chosen level's (1 by default, as nginx's
//! `gzip on`).

mod common;

use std::net::SocketAddr;

use async_compression::Level;
use async_compression::tokio::bufread::{GzipEncoder, ZlibEncoder};
use common::origin::serving;
use common::proxy::*;
use common::{TempDir, TestServer, site};
use geoline::proxy::GzipLevel;
use http::StatusCode;
use tokio::io::AsyncReadExt;

/// About 150 KB of HTML naming the origin hosts, varied enough that the levels differ.
fn page(host: &str) -> String {
    let words = [
        "products", "about", "contact", "pricing", "blog", "careers", "support", "news",
        "partners", "docs", "download", "status",
    ];
    let mut out = String::from("<!doctype html><html><body>\n");
    let mut seed: u32 = 7;
    for i in 0..2000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let a = words[(seed >> 16) as usize % words.len()];
        let b = words[(seed >> 8) as usize % words.len()];
        out.push_str(&format!(
            "<p id=\"p{i}\">{a} {b} {}: <a href=\"https://www.{host}/{a}/{}\">{b}</a></p>\n",
            seed % 9973,
            seed >> 20
        ));
    }
    out.push_str("</body></html>\n");
    out
}

/// `data` compressed as the proxy does at `level`: gzip or zlib (HTTP's `deflate`).
async fn compressed(coding: &str, level: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let level = Level::Precise(i32::from(level));
    match coding {
        "gzip" => {
            GzipEncoder::with_quality(data, level)
                .read_to_end(&mut out)
                .await
        }
        "deflate" => {
            ZlibEncoder::with_quality(data, level)
                .read_to_end(&mut out)
                .await
        }
        other => panic!("no encoder for {other}"),
    }
    .expect("compressed");
    out
}

/// Checks that `body` (already known to decode to the rewritten page) was compressed at
/// `level`: its size is within 1 % of the level's reference encoding of the rewritten page,
/// and nearer to it than to the other levels' (the encoder's output depends a little on how
/// the rewriter cut the text into pieces, so the bytes are not the same). On this page the
/// levels 1, 6 and 9 differ by more than 10 %.
async fn assert_level(coding: &str, body: &[u8], level: u8) {
    let rewritten = page("example.cn");
    let mut sizes = Vec::new();
    for l in [1, 6, 9] {
        sizes.push((l, compressed(coding, l, rewritten.as_bytes()).await.len()));
    }
    let (nearest, reference) = sizes
        .iter()
        .copied()
        .min_by_key(|(_, size)| size.abs_diff(body.len()))
        .expect("levels");
    assert_eq!(
        nearest,
        level,
        "{coding}: {} bytes, references {sizes:?}",
        body.len()
    );
    assert!(
        reference.abs_diff(body.len()) * 100 <= reference,
        "{coding}: {} bytes, references {sizes:?}",
        body.len()
    );
}

/// An origin sending the page gzipped (at the encoder's default level, as a build step or
/// a cache would).
async fn gzip_origin() -> SocketAddr {
    let body = encode("gzip", page("example.com").as_bytes()).await;
    serving(
        "text/html; charset=utf-8",
        &[("content-encoding", "gzip")],
        body,
    )
    .await
}

/// What `proxy` sends a client accepting only `coding`: checks the exact
/// `Content-Encoding`, that the body decodes to the rewritten page, and returns the body.
async fn fetch(proxy: SocketAddr, coding: &str) -> Vec<u8> {
    let (status, h, body) =
        read(get(proxy, "example.cn", "/", &[("accept-encoding", coding)]).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.get_all("content-encoding").iter().collect::<Vec<_>>(),
        [coding]
    );
    assert_eq!(decode(coding, &body).await, page("example.cn").as_bytes());
    body.to_vec()
}

#[tokio::test]
async fn the_builders_level_is_the_one_the_client_gets() {
    let origin = gzip_origin().await;
    let fastest = start(builder(origin).build().expect("proxy")).await;
    let smallest = start(
        builder(origin)
            .gzip_level(GzipLevel::SMALLEST)
            .build()
            .expect("proxy"),
    )
    .await;
    for coding in ["gzip", "deflate"] {
        let default = fetch(fastest, coding).await;
        let nine = fetch(smallest, coding).await;
        assert_level(coding, &default, 1).await;
        assert_level(coding, &nine, 9).await;
    }
}

/// `geoline serve` with a `[proxy]` section whose extra keys are `keys`.
async fn serve(dir: &TempDir, origin: SocketAddr, keys: &[&str]) -> (TestServer, SocketAddr) {
    let mut table = vec![
        r#"listen = "127.0.0.1:0""#.to_string(),
        format!(r#"origin = "http://example.com:{}""#, origin.port()),
        format!(r#"connect_to = "{origin}""#),
        r#"hosts = [{ public = "example.cn", origin = "example.com" }]"#.to_string(),
    ];
    table.extend(keys.iter().map(|k| k.to_string()));
    let table: Vec<&str> = table.iter().map(String::as_str).collect();
    let config = site::write(dir).table("[proxy]", &table);
    let server = TestServer::start(dir, &config).await;
    let proxy = server
        .running
        .proxy
        .first()
        .copied()
        .expect("a proxy listener");
    (server, proxy)
}

#[tokio::test]
async fn the_configured_level_is_the_one_the_client_gets() {
    let origin = gzip_origin().await;

    let dir = TempDir::new("proxy-gzip-default");
    let (server, proxy) = serve(&dir, origin, &[]).await;
    assert_level("gzip", &fetch(proxy, "gzip").await, 1).await;
    server.running.shutdown().await;

    let dir = TempDir::new("proxy-gzip-6");
    let (server, proxy) = serve(&dir, origin, &["gzip_level = 6"]).await;
    let six = fetch(proxy, "gzip").await;
    assert_level("gzip", &six, 6).await;
    server.running.shutdown().await;
}
