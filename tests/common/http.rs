//! HTTP/1.1 as raw bytes on a TCP socket: the request is written exactly as the test gives
//! it (two `Content-Length`s, obfuscated `Transfer-Encoding`, control bytes, a PROXY
//! protocol header in front, a trickled body) and the response is parsed without a client
//! library in between, so that status lines, header order and bodies can be asserted
//! exactly. Also the admin listener's requests, which are ordinary ones sent the same way.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A response as it came off the wire.
#[derive(Debug)]
pub struct Response {
    /// As sent, e.g. `HTTP/1.1 301 Moved Permanently`.
    pub status_line: String,
    pub status: u16,
    /// Lower-case names, in the order sent; `date` left out (its value is the clock's).
    pub headers: Vec<(String, String)>,
    /// The `date` header, if there was one.
    pub date: Option<String>,
    /// The body, de-chunked if it came chunked.
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A request head: the request line, `Host`, then each of `headers` (lines without their
/// CRLF), then the empty line.
pub fn request(method: &str, host: &str, target: &str, headers: &[&str]) -> String {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

/// A connection to `to` from the loopback address `from` (127.0.0.2 is not 127.0.0.1 to
/// a server that trusts only the latter).
pub async fn connect(to: SocketAddr, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let from: IpAddr = from.parse().expect("from address");
    socket.bind(SocketAddr::new(from, 0)).expect("bind source");
    socket.connect(to).await.expect("connect")
}

/// Writes `request` and reads one response; panics if it has not come whole `within`.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    request: &[u8],
    within: Duration,
) -> Response {
    s.write_all(request).await.expect("write request");
    tokio::time::timeout(within, read_response(s))
        .await
        .unwrap_or_else(|_| panic!("no whole response within {within:?}"))
}

/// Reads one response: the head, then a body of `content-length` bytes, a chunked body up
/// to its last chunk, or (with neither) everything until the peer closes.
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> Response {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = read_some(s, &mut buf).await;
        assert!(
            n > 0,
            "connection closed before a full response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line").to_string();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut headers = Vec::new();
    let mut date = None;
    for line in lines {
        let (n, v) = line.split_once(": ").expect("header line");
        if n.eq_ignore_ascii_case("date") {
            date = Some(v.to_string());
        } else {
            headers.push((n.to_ascii_lowercase(), v.to_string()));
        }
    }
    let mut rest = buf.split_off(head_end + 4);
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>().expect("content-length"));
    let body = if chunked {
        while !last_chunk_read(&rest) {
            assert!(read_some(s, &mut rest).await > 0, "chunked body cut short");
        }
        dechunk(&rest)
    } else if let Some(len) = length {
        while rest.len() < len {
            assert!(read_some(s, &mut rest).await > 0, "body cut short");
        }
        rest
    } else {
        while read_some(s, &mut rest).await > 0 {}
        rest
    };
    Response {
        status_line,
        status,
        headers,
        date,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

/// Appends what one read returns to `buf`; 0 at the end of the stream.
async fn read_some<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await.expect("read");
    buf.extend_from_slice(&chunk[..n]);
    n
}

/// Whether `data` holds a whole chunked body, its zero-size chunk and final CRLF included.
fn last_chunk_read(mut data: &[u8]) -> bool {
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let size = chunk_size(&data[..line_end]);
        data = &data[line_end + 2..];
        if size == 0 {
            return data.windows(2).any(|w| w == b"\r\n");
        }
        if data.len() < size + 2 {
            return false;
        }
        data = &data[size + 2..];
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = chunk_size(&data[..line_end]);
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn chunk_size(line: &[u8]) -> usize {
    let text = std::str::from_utf8(line).expect("chunk size");
    usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16).expect("hex chunk size")
}

/// The line of the JSON access log `file` whose `path` is `path`, parsed, once it has been
/// flushed (within 5 s).
pub async fn access_line(file: &std::path::Path, path: &str) -> serde_json::Value {
    for _ in 0..250 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            if v["path"] == path {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no access-log line for {path}");
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

// The admin listener: one request per connection, with a bearer token or none.

pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    admin_request(addr, "GET", path, token).await
}

pub async fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    admin_request(addr, "POST", path, token).await
}

pub async fn admin_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Response {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut headers: Vec<&str> = auth.iter().map(String::as_str).collect();
    headers.extend(["Content-Length: 0", "Connection: close"]);
    let req = request(method, &addr.to_string(), path, &headers);
    let mut stream = TcpStream::connect(addr).await.expect("connect to admin");
    // Generous: a reload of every file happens inside POST /reload.
    exchange(&mut stream, req.as_bytes(), Duration::from_secs(60)).await
}
