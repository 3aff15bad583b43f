//! The proxy against a real origin on loopback: headers, bodies, encodings, failures.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::origin::*;
use common::proxy::*;
use geoline::proxy::Proxy;
use http::StatusCode;
use http_body_util::BodyExt;

const HTML_IN: &str = r#"<!doctype html><html><head><link rel="stylesheet" href="https://static.example.com/a.css"><script src="//www.example.com/app.js"></script></head>
<body><a href="https://example.com/about">Example.com</a> <a href="https://notexample.com/">x</a> example.community example.com.au
<a href="mailto:sales@example.com">mail</a> <img src="https://API.example.com/i.png"> see example.com.</body></html>"#;
const HTML_OUT: &str = r#"<!doctype html><html><head><link rel="stylesheet" href="https://static.example.cn/a.css"><script src="//www.example.cn/app.js"></script></head>
<body><a href="https://example.cn/about">example.cn</a> <a href="https://notexample.com/">x</a> example.community example.com.au
<a href="mailto:sales@example.cn">mail</a> <img src="https://api.example.cn/i.png"> see example.cn.</body></html>"#;

const JS_IN: &str = r#"var u="https:\/\/example.com\/x";fetch("https%3A%2F%2Fapi.example.com%2Fv1");const s="\u002F\u002Fexample.com",t='\u002f\u002fwww.example.com';if(location.host==="www.example.com"||h.endsWith(".example.com")){x="my-example.com"}"#;
const JS_OUT: &str = r#"var u="https:\/\/example.cn\/x";fetch("https%3A%2F%2Fapi.example.cn%2Fv1");const s="\u002F\u002Fexample.cn",t='\u002f\u002fwww.example.cn';if(location.host==="www.example.cn"||h.endsWith(".example.cn")){x="my-example.com"}"#;

const JSON_IN: &str = r#"{"url":"https://example.com/a","cdn":"https://static.example.com","other":"example.com.au","esc":"https:\/\/www.example.com\/","email":"ops@example.com","n":1}"#;
const JSON_OUT: &str = r#"{"url":"https://example.cn/a","cdn":"https://static.example.cn","other":"example.com.au","esc":"https:\/\/www.example.cn\/","email":"ops@example.cn","n":1}"#;

#[tokio::test]
async fn request_headers_reach_the_origin_rewritten() {
    // The origin echoes the headers it got, as a type the proxy must not rewrite.
    let up = origin(|req| async move {
        let mut lines: Vec<String> = req
            .headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        lines.sort();
        lines.insert(0, format!("{} {}", req.method(), req.uri()));
        response(
            200,
            &[("content-type", "application/octet-stream")],
            full(lines.join("\n")),
        )
    })
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let resp = get(
        proxy,
        "www.example.cn",
        "/p/a?q=example.cn",
        &[
            ("origin", "https://www.example.cn"),
            ("referer", "https://example.cn:8443/page?from=example.cn"),
            ("accept-encoding", "gzip, br"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic eA=="),
            ("x-forwarded-for", "203.0.113.9"),
            ("cookie", "a=b"),
        ],
    )
    .await;
    let (status, _, body) = read(resp).await;
    assert_eq!(status, StatusCode::OK);
    // Origin and Referer name the origin as it is reached (http://, no port).
    assert_eq!(
        std::str::from_utf8(&body).expect("utf-8"),
        "GET /p/a?q=example.cn\n\
         accept-encoding: gzip, br\n\
         cookie: a=b\n\
         forwarded: for=127.0.0.1;proto=http;host=www.example.cn\n\
         host: www.example.com\n\
         origin: http://www.example.com\n\
         referer: http://example.com/page?from=example.cn\n\
         x-forwarded-for: 203.0.113.9, 127.0.0.1\n\
         x-forwarded-host: www.example.cn\n\
         x-forwarded-proto: http"
    );
}

#[tokio::test]
async fn response_headers_come_back_public() {
    let up = origin(|_req| async move {
        response(
            302,
            &[
                (
                    "location",
                    "https://example.com/login?next=https%3A%2F%2Fwww.example.com%2F",
                ),
                ("content-location", "https://api.example.com/v1/x.json"),
                ("refresh", "0; url=https://www.example.com/"),
                (
                    "link",
                    "<https://static.example.com/a.css>; rel=preload; as=style",
                ),
                ("access-control-allow-origin", "https://www.example.com"),
                (
                    "content-security-policy",
                    "default-src 'self' https://*.example.com; img-src example.com.au",
                ),
                ("set-cookie", "sid=1; Domain=.example.com; Path=/; HttpOnly"),
                ("set-cookie", "pref=example.com; domain=www.example.com"),
                ("alt-svc", "h3=\":443\"; ma=86400"),
                ("x-other", "https://example.com/"),
                ("content-type", "text/plain"),
            ],
            full("moved"),
        )
    })
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let (status, h, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        h["location"],
        "https://example.cn/login?next=https%3A%2F%2Fwww.example.cn%2F"
    );
    assert_eq!(h["content-location"], "https://api.example.cn/v1/x.json");
    assert_eq!(h["refresh"], "0; url=https://www.example.cn/");
    assert_eq!(
        h["link"],
        "<https://static.example.cn/a.css>; rel=preload; as=style"
    );
    assert_eq!(h["access-control-allow-origin"], "https://www.example.cn");
    assert_eq!(
        h["content-security-policy"],
        "default-src 'self' https://*.example.cn; img-src example.com.au"
    );
    let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
    assert_eq!(
        cookies,
        [
            "sid=1; Domain=.example.cn; Path=/; HttpOnly",
            "pref=example.com; domain=www.example.cn"
        ]
    );
    assert!(!h.contains_key("alt-svc"));
    // Headers that are not known to carry URLs are the application's.
    assert_eq!(h["x-other"], "https://example.com/");
    assert_eq!(body, "moved");
}

#[tokio::test]
async fn html_js_and_json_bodies_are_rewritten() {
    for (ct, input, want) in [
        ("text/html; charset=utf-8", HTML_IN, HTML_OUT),
        ("application/javascript", JS_IN, JS_OUT),
        ("application/json", JSON_IN, JSON_OUT),
    ] {
        let up = serving(ct, &[("etag", "\"abc\"")], input).await;
        let proxy = start(builder(up).build().expect("proxy")).await;
        let (status, h, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(std::str::from_utf8(&body).expect("utf-8"), want, "{ct}");
        assert_eq!(h["etag"], "W/\"abc\"", "{ct}");
        assert!(!h.contains_key("content-length"), "{ct}: {h:?}");
        assert_eq!(h["content-type"], ct);
    }
}

#[tokio::test]
async fn a_body_sent_one_byte_per_chunk_is_rewritten_whole() {
    let up = origin(|_req| async move {
        let parts = HTML_IN.bytes().map(|b| Bytes::from(vec![b])).collect();
        response(
            200,
            &[("content-type", "text/html")],
            pieces(parts, Duration::from_micros(200)),
        )
    })
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let resp = get(proxy, "example.cn", "/", &[]).await;
    let (parts, mut body) = resp.into_parts();
    assert_eq!(parts.status, StatusCode::OK);
    let mut got = Vec::new();
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            got.extend_from_slice(&data);
            frames += 1;
        }
    }
    assert_eq!(std::str::from_utf8(&got).expect("utf-8"), HTML_OUT);
    // The origin's pieces did arrive apart: this really exercised the chunk boundaries.
    assert!(frames > 10, "only {frames} frames");
}

#[tokio::test]
async fn gzip_upstream_for_clients_accepting_gzip_or_nothing() {
    let compressed = encode("gzip", HTML_IN.as_bytes()).await;
    let up = serving(
        "text/html",
        &[("content-encoding", "gzip"), ("etag", "\"g1\"")],
        compressed,
    )
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;

    let (status, h, body) = read(
        get(
            proxy,
            "example.cn",
            "/",
            &[("accept-encoding", "gzip, deflate")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["vary"], "accept-encoding");
    assert_eq!(h["etag"], "W/\"g1\"");
    assert_eq!(decode("gzip", &body).await, HTML_OUT.as_bytes());

    // The origin ignored Accept-Encoding; the client still gets bytes it can read.
    let (status, h, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!h.contains_key("content-encoding"), "{h:?}");
    assert_eq!(std::str::from_utf8(&body).expect("utf-8"), HTML_OUT);

    let (_, h, body) = read(
        get(
            proxy,
            "example.cn",
            "/",
            &[("accept-encoding", "gzip;q=0, identity")],
        )
        .await,
    )
    .await;
    assert!(!h.contains_key("content-encoding"), "{h:?}");
    assert_eq!(std::str::from_utf8(&body).expect("utf-8"), HTML_OUT);
}

#[tokio::test]
async fn brotli_upstream_for_clients_accepting_br_gzip_or_nothing() {
    let compressed = encode("br", JSON_IN.as_bytes()).await;
    let up = serving(
        "application/json",
        &[("content-encoding", "br")],
        compressed,
    )
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;

    let (_, h, body) =
        read(get(proxy, "api.example.cn", "/", &[("accept-encoding", "br")]).await).await;
    assert_eq!(h["content-encoding"], "br");
    assert_eq!(decode("br", &body).await, JSON_OUT.as_bytes());

    let (_, h, body) =
        read(get(proxy, "api.example.cn", "/", &[("accept-encoding", "gzip")]).await).await;
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(decode("gzip", &body).await, JSON_OUT.as_bytes());

    let (_, h, body) = read(get(proxy, "api.example.cn", "/", &[]).await).await;
    assert!(!h.contains_key("content-encoding"));
    assert_eq!(std::str::from_utf8(&body).expect("utf-8"), JSON_OUT);
}

#[tokio::test]
async fn binary_bodies_pass_byte_identical() {
    // Pseudo-random bytes with the origin host planted in them.
    let mut data = Vec::with_capacity(1 << 20);
    let mut x: u32 = 0x1234_5678;
    while data.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
        if x.is_multiple_of(97) {
            data.extend_from_slice(b" https://example.com/ ");
        }
    }
    let data: &'static [u8] = data.leak();
    let up = serving("application/octet-stream", &[("etag", "\"bin\"")], data).await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let (status, h, body) = read(get(proxy, "example.cn", "/f.bin", &[]).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["content-length"], data.len().to_string());
    assert_eq!(h["etag"], "\"bin\"");
    assert!(body == data, "binary body changed");
}

#[tokio::test]
async fn unknown_hosts_get_421() {
    let up = serving("text/plain", &[], "never").await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    for host in [
        "evil.test",
        "example.com",
        "cdn.example.cn",
        "example.cn.evil.test",
    ] {
        let (status, h, body) = read(get(proxy, host, "/", &[]).await).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert_eq!(h["content-type"], "text/plain; charset=utf-8");
        assert_eq!(
            body,
            format!("geoline proxy: host {host:?} is not served here\n")
        );
    }
}

#[tokio::test]
async fn origin_down_gives_502() {
    // Bound then dropped: nothing listens there any more.
    let gone = common::ports::free_addr();
    let proxy = start(builder(gone).build().expect("proxy")).await;
    let (status, h, body) = read(get(proxy, "www.example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        body,
        "geoline proxy: cannot connect to the origin www.example.com\n"
    );
}

#[tokio::test]
async fn slow_origin_gives_504() {
    let up = origin(|_req| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        response(200, &[], full("late"))
    })
    .await;
    let proxy = start(
        builder(up)
            .response_timeout(Duration::from_millis(300))
            .build()
            .expect("proxy"),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, _, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body,
        "geoline proxy: the origin example.com did not answer within 300ms\n"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn stalled_body_is_cut_off() {
    let up = origin(|_req| async move {
        let stream = futures_util::stream::iter([Ok::<_, BoxError>(Bytes::from_static(b"start "))])
            .chain(futures_util::stream::pending());
        let body = http_body_util::StreamBody::new(futures_util::StreamExt::map(stream, |r| {
            r.map(hyper::body::Frame::data)
        }));
        response(
            200,
            &[("content-type", "text/plain")],
            BodyExt::boxed_unsync(body),
        )
    })
    .await;
    let proxy = start(
        builder(up)
            .read_timeout(Duration::from_millis(300))
            .build()
            .expect("proxy"),
    )
    .await;
    let resp = get(proxy, "example.cn", "/", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let err = tokio::time::timeout(Duration::from_secs(3), resp.into_body().collect())
        .await
        .expect("cut off, not hung");
    assert!(
        err.is_err(),
        "a stalled body must end in an error, not a clean end"
    );
}

use futures_util::StreamExt as _;

/// 16 MiB of zeros, gzipped to a few KiB.
async fn bomb() -> &'static [u8] {
    encode("gzip", &vec![0u8; 16 << 20]).await.leak()
}

#[tokio::test]
async fn compression_bomb_is_refused_before_headers() {
    let bomb = bomb().await;
    let up = serving("text/html", &[("content-encoding", "gzip")], bomb).await;
    // Smaller than the first decoded piece: caught before the status line is sent.
    let proxy = start(
        builder(up)
            .max_decompressed_bytes(4096)
            .build()
            .expect("proxy"),
    )
    .await;
    let (status, _, body) =
        read(get(proxy, "example.cn", "/", &[("accept-encoding", "gzip")]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        body,
        "geoline proxy: the body from the origin example.com decompresses to more than 4096 bytes\n"
    );
}

#[tokio::test]
async fn compression_bomb_is_cut_off_mid_body() {
    let bomb = bomb().await;
    let up = serving("text/html", &[("content-encoding", "gzip")], bomb).await;
    let limit = 1 << 20;
    let proxy = start(
        builder(up)
            .max_decompressed_bytes(limit)
            .build()
            .expect("proxy"),
    )
    .await;
    let resp = get(proxy, "example.cn", "/", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut received = 0u64;
    let mut ended_in_error = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => received += f.into_data().map_or(0, |d| d.len() as u64),
            Err(_) => {
                ended_in_error = true;
                break;
            }
        }
    }
    assert!(ended_in_error, "the client must see a truncated body");
    assert!(
        received <= limit,
        "{received} bytes passed a limit of {limit}"
    );
}

#[tokio::test]
async fn rewriting_off_passes_everything_through() {
    let up = serving(
        "text/html",
        &[("location", "https://example.com/"), ("etag", "\"p\"")],
        HTML_IN,
    )
    .await;
    let proxy = start(builder(up).rewrite(false).build().expect("proxy")).await;
    let (status, h, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["location"], "https://example.com/");
    assert_eq!(h["etag"], "\"p\"");
    assert_eq!(h["content-length"], HTML_IN.len().to_string());
    assert_eq!(body, HTML_IN);
}

#[tokio::test]
async fn post_bodies_reach_the_origin() {
    let up = origin(|req| async move {
        let body = req
            .into_body()
            .collect()
            .await
            .expect("request body")
            .to_bytes();
        response(
            200,
            &[("content-type", "application/octet-stream")],
            full(body),
        )
    })
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let req = http::Request::post(format!("http://{proxy}/submit"))
        .header("host", "example.cn")
        .body(http_body_util::Full::new(Bytes::from_static(
            b"a=example.cn&b=2",
        )))
        .expect("request");
    let (status, _, body) = read(client().request(req).await.expect("answer")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "a=example.cn&b=2");
}

#[tokio::test]
async fn head_of_a_rewritten_type_drops_the_length() {
    let up = serving("text/html", &[("etag", "\"h\"")], HTML_IN).await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let req = http::Request::head(format!("http://{proxy}/"))
        .header("host", "example.cn")
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let (status, h, body) = read(client().request(req).await.expect("answer")).await;
    assert_eq!(status, StatusCode::OK);
    // The GET body would not have the origin's length: say nothing rather than lie.
    assert!(!h.contains_key("content-length"), "{h:?}");
    assert_eq!(h["etag"], "W/\"h\"");
    assert!(body.is_empty());
}

#[tokio::test]
async fn connect_and_absolute_form_to_other_hosts_are_refused() {
    let up = serving("text/plain", &[], "never").await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let mut tcp = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(
        b"GET http://evil.test/ HTTP/1.1\r\nHost: example.cn\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 421 "), "{answer}");
    assert!(
        answer.ends_with("geoline proxy: host \"evil.test\" is not served here\n"),
        "{answer}"
    );

    let mut tcp = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    tcp.write_all(b"CONNECT example.cn:443 HTTP/1.1\r\nHost: example.cn:443\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tcp.read(&mut buf).await.expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
}

#[tokio::test]
async fn an_origin_that_never_accepts_gives_502_after_the_connect_timeout() {
    // A listener whose accept queue is full: further SYNs are dropped, so connecting hangs.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    let _listener = socket.listen(1).expect("listen");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let proxy = start(
        builder(addr)
            .connect_timeout(Duration::from_millis(300))
            .response_timeout(Duration::from_secs(5))
            .build()
            .expect("proxy"),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, _, body) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        body,
        "geoline proxy: cannot connect to the origin example.com\n"
    );
    // It was the timeout, not a refusal, that ended the attempt.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn deflate_and_zstd_upstreams_round_trip() {
    let deflated: &'static [u8] = encode("deflate", HTML_IN.as_bytes()).await.leak();
    let zstded: &'static [u8] = encode("zstd", HTML_IN.as_bytes()).await.leak();
    let up = origin(move |req| async move {
        let (coding, body) = if req.uri().path() == "/d" {
            ("deflate", deflated)
        } else {
            ("zstd", zstded)
        };
        response(
            200,
            &[("content-type", "text/html"), ("content-encoding", coding)],
            full(Bytes::from_static(body)),
        )
    })
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;

    // The last: a client taking only gzip gets the zstd body as gzip.
    for (path, accepted) in [("/d", "deflate"), ("/z", "zstd"), ("/z", "gzip")] {
        let (_, h, body) =
            read(get(proxy, "example.cn", path, &[("accept-encoding", accepted)]).await).await;
        assert_eq!(h["content-encoding"], accepted, "{path}");
        assert_eq!(
            decode(accepted, &body).await,
            HTML_OUT.as_bytes(),
            "{path} as {accepted}"
        );
    }
}

#[tokio::test]
async fn a_corrupt_compressed_body_gives_502() {
    let up = serving(
        "text/html",
        &[("content-encoding", "gzip")],
        "this is not gzip at all",
    )
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;
    let (status, _, body) =
        read(get(proxy, "example.cn", "/", &[("accept-encoding", "gzip")]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        body,
        "geoline proxy: the body from the origin example.com cannot be read or decoded\n"
    );
}

#[tokio::test]
async fn pass_through_for_the_redirector() {
    // The redirector's pass-through: the public name is the origin's own name, dialed at
    // the origin's real address, nothing rewritten.
    let up = serving(
        "text/html",
        &[("location", "https://example.com/")],
        HTML_IN,
    )
    .await;
    let proxy = Proxy::builder("http://example.com")
        .pair("example.com", "example.com")
        .pair("www.example.com", "www.example.com")
        .connect_to(up)
        .rewrite(false)
        .build()
        .expect("proxy");
    let proxy = start(proxy).await;
    let (status, h, body) = read(get(proxy, "www.example.com", "/", &[]).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["location"], "https://example.com/");
    assert_eq!(body, HTML_IN);
    let (status, _, _) = read(get(proxy, "example.cn", "/", &[]).await).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let up = origin(|req| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        response(
            200,
            &[("content-type", "text/plain")],
            full("see example.com"),
        )
    })
    .await;
    let proxy = builder(up)
        .response_timeout(Duration::from_millis(200))
        .build()
        .expect("proxy");
    let addr = start(proxy.clone()).await;
    let (_, _, body) = read(get(addr, "example.cn", "/", &[]).await).await;
    assert_eq!(body, "see example.cn");
    let (status, _, _) = read(get(addr, "other.test", "/", &[]).await).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    let (status, _, _) = read(get(addr, "example.cn", "/slow", &[]).await).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let m = proxy.metrics().snapshot();
    assert_eq!(
        m,
        geoline::proxy::ProxyMetricsSnapshot {
            requests: 3,
            misdirected: 1,
            bad_gateway: 0,
            gateway_timeout: 1,
            upstream_connect: 0,
            upstream_response: 0,
            upstream_body: 0,
            rewritten: 1,
            // "example.com" in the one rewritten body.
            replacements: 1,
            upgraded: 0,
            body_bytes: m.body_bytes,
            request_body_bytes: 0,
        }
    );
    let own_errors = "geoline proxy: host \"other.test\" is not served here\n".len()
        + "geoline proxy: the origin example.com did not answer within 200ms\n".len();
    assert_eq!(m.body_bytes as usize, "see example.cn".len() + own_errors);
}
