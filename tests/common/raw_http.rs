//! Raw HTTP/1.1 on a TCP socket, for tests that send what no client library would (two
//! `Content-Length`s, obfuscated `Transfer-Encoding`, control bytes, a trickled body), and
//! an origin that records every request that reaches it.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A connection to `to` from the loopback address `from` (127.0.0.2 is not 127.0.0.1 to
/// a server that trusts only the latter).
pub async fn connect(to: SocketAddr, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let from: IpAddr = from.parse().expect("from address");
    socket.bind(SocketAddr::new(from, 0)).expect("bind source");
    socket.connect(to).await.expect("connect")
}

/// Reads until the peer closes (or resets); panics if it is still open after `within`.
pub async fn read_until_closed(s: &mut (impl AsyncRead + Unpin), within: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(within, s.read(&mut chunk)).await {
            Err(_) => panic!(
                "still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `bytes` on a new connection and returns everything the server sent before it
/// closed. The server may close before it has read everything; a failed write is fine.
pub async fn send_raw(to: SocketAddr, from: &str, bytes: &[u8]) -> String {
    let mut s = connect(to, from).await;
    let _ = s.write_all(bytes).await;
    let out = read_until_closed(&mut s, Duration::from_secs(10)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status lines in a raw exchange, in order: one per response the server sent.
pub fn status_lines(raw: &str) -> Vec<&str> {
    raw.split("\r\n")
        .filter(|l| l.starts_with("HTTP/1."))
        .collect()
}

/// What reached an origin: method, path and query, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub body: Vec<u8>,
}

/// An origin on 127.0.0.1 that reads every request whole, records it, and answers
/// `200 ok <target>` with a Content-Length.
pub struct RecordingOrigin {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RecordingOrigin {
    pub async fn start() -> RecordingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            let method = req.method().to_string();
                            let target = req
                                .uri()
                                .path_and_query()
                                .map_or("/", |p| p.as_str())
                                .to_string();
                            let body = match req.into_body().collect().await {
                                Ok(b) => b.to_bytes().to_vec(),
                                Err(_) => b"<body error>".to_vec(),
                            };
                            let reply = format!("ok {target}");
                            record.lock().expect("origin log").push(Seen {
                                method,
                                target,
                                body,
                            });
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(reply))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        RecordingOrigin { addr, seen }
    }

    /// Every request recorded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("origin log").clone()
    }

    /// The request targets recorded so far.
    pub fn targets(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.target).collect()
    }
}
