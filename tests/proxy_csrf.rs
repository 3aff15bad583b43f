//! The proxy in front of an origin that checks `Origin` and `Referer` for CSRF, as Django
//! and Rails do: the headers must name the origin's own scheme, host and port, the URL the
//! origin sees itself at.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{self, connect, exchange};
use common::origin::{full, origin, response};
use geoline::proxy::Proxy;

/// Accepts a POST only when `Origin` is `http://` + `Host` and `Referer` starts with it,
/// the comparison a CSRF check makes; otherwise 403 naming what it got.
async fn csrf_checking_origin() -> SocketAddr {
    origin(|req| async move {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let own = format!("http://{}", header("host"));
        let (origin, referer) = (header("origin"), header("referer"));
        if origin == own && referer.starts_with(&format!("{own}/")) {
            response(200, &[], full(format!("accepted {origin} {referer}")))
        } else {
            response(
                403,
                &[],
                full(format!("CSRF: origin {origin} referer {referer}")),
            )
        }
    })
    .await
}

#[tokio::test]
async fn origin_and_referer_name_the_origin_as_it_sees_itself() {
    let up = csrf_checking_origin().await;
    let proxy = Proxy::builder(format!("http://example.com:{}", up.port()))
        .pair("www.example.cn", "www.example.com")
        .pair("example.cn", "example.com")
        .connect_to(up)
        .build()
        .expect("proxy builds");
    let addr = common::proxy::start(proxy).await;
    let port = up.port();

    for (origin_header, referer) in [
        (
            "https://www.example.cn",
            "https://www.example.cn/form?next=%2F",
        ),
        (
            "http://www.example.cn:8080",
            "http://www.example.cn:8080/form",
        ),
    ] {
        let req = http::request(
            "POST",
            "www.example.cn",
            "/submit",
            &[
                &format!("Origin: {origin_header}"),
                &format!("Referer: {referer}"),
                "Content-Length: 0",
            ],
        );
        let mut s = connect(addr, "127.0.0.1").await;
        let resp = exchange(&mut s, req.as_bytes(), Duration::from_secs(10)).await;
        let path = &referer[referer.find("/form").expect("a path")..];
        assert_eq!(resp.status, 200, "{origin_header}: {}", resp.body);
        assert_eq!(
            resp.body,
            format!("accepted http://www.example.com:{port} http://www.example.com:{port}{path}")
        );
    }

    // A cross-site request stays cross-site: the origin refuses it.
    let req = http::request(
        "POST",
        "www.example.cn",
        "/submit",
        &[
            "Origin: https://evil.example",
            "Referer: https://evil.example/x",
            "Content-Length: 0",
        ],
    );
    let mut s = connect(addr, "127.0.0.1").await;
    let resp = exchange(&mut s, req.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.body,
        "CSRF: origin https://evil.example referer https://evil.example/x"
    );
}
