//! The access log: one JSON line per request, the record a mainland operator must keep.
//!
//! This module owns what a line holds (time, client address, line, host, method, path,
//! status, bytes, duration) and how it is written: formatted into a per-thread buffer
//! without `core::fmt` and handed in one call to the sink the binary installs with
//! [`install`] (standard output, one `write` per line). A response whose size is known is
//! logged when it is made; a passed-through one when its body has been sent (or abandoned),
//! so that bytes and duration are what went out. It does not decide anything about requests
//! and does not go through `tracing`: an event's dispatch, field visitors and filters cost
//! more than formatting the line itself.

use std::cell::RefCell;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Version};
use http_body::{Body, Frame, SizeHint};

use crate::util::time::format_date_time;

/// Where finished lines go: called once per line, with the line and its `\n`.
pub type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// A sink was installed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the access log's sink is installed already")]
pub struct AlreadyInstalled;

/// Sends every access-log line of this process to `sink`. Until a sink is installed (a
/// library user that wants no access log never installs one), lines are not even made.
pub fn install(sink: Sink) -> Result<(), AlreadyInstalled> {
    SINK.set(sink).map_err(|_| AlreadyInstalled)
}

/// What is known about a request before its response is sent.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The client's address, after any PROXY header and trusted client-IP header.
    pub client: IpAddr,
    /// The client's line, when the host was covered and the client classified.
    pub line: &'a str,
    /// The request's authority, or its `Host` header (empty when it has neither).
    pub host: &'a str,
    /// The request method.
    pub method: &'a Method,
    /// Path and query, as the client sent them.
    pub path: &'a str,
    /// The HTTP version, logged as `proto`.
    pub version: Version,
    /// When the request's head had been read, for `duration_us`.
    pub start: Instant,
}

impl Entry<'_> {
    /// Writes the request's line, with the response's status and body size.
    pub fn emit(&self, status: u16, bytes: u64) {
        let Some(sink) = SINK.get() else {
            return;
        };
        let duration_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        LINE.with(|cell| {
            // Only a sink that logs a request itself could re-enter; it gets no line.
            let Ok(mut state) = cell.try_borrow_mut() else {
                return;
            };
            let LineState { buf, clock } = &mut *state;
            buf.clear();
            buf.extend_from_slice(b"{\"time\":\"");
            clock.write_now(buf);
            self.write_fields(buf, status, bytes, duration_us);
            sink(buf);
        });
    }

    /// Everything after the time: `","client":…,"duration_us":N}\n`.
    fn write_fields(&self, out: &mut Vec<u8>, status: u16, bytes: u64, duration_us: u64) {
        out.extend_from_slice(b"\",\"client\":\"");
        write_ip(out, self.client);
        out.extend_from_slice(b"\",\"line\":\"");
        escape_into(out, self.line);
        out.extend_from_slice(b"\",\"host\":\"");
        escape_into(out, self.host);
        out.extend_from_slice(b"\",\"method\":\"");
        escape_into(out, self.method.as_str());
        out.extend_from_slice(b"\",\"path\":\"");
        escape_into(out, self.path);
        out.extend_from_slice(b"\",\"proto\":\"");
        out.extend_from_slice(version_str(self.version).as_bytes());
        out.extend_from_slice(b"\",\"status\":");
        push_decimal(out, u64::from(status));
        out.extend_from_slice(b",\"bytes\":");
        push_decimal(out, bytes);
        out.extend_from_slice(b",\"duration_us\":");
        push_decimal(out, duration_us);
        out.extend_from_slice(b"}\n");
    }

    /// A copy that can outlive the request, for a [`LoggedBody`].
    pub fn to_owned(&self) -> OwnedEntry {
        OwnedEntry {
            client: self.client,
            line: self.line.to_string(),
            host: self.host.to_string(),
            method: self.method.clone(),
            path: self.path.to_string(),
            version: self.version,
            start: self.start,
        }
    }
}

/// An address as text without `core::fmt` for IPv4 (IPv6 is rare enough for it).
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = std::io::Write::write_fmt(out, format_args!("{v6}"));
        }
    }
}

/// Appends `v` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// An [`Entry`] that outlives the request, for a body still being sent.
#[derive(Debug, Clone)]
pub struct OwnedEntry {
    client: IpAddr,
    line: String,
    host: String,
    method: Method,
    path: String,
    version: Version,
    start: Instant,
}

impl OwnedEntry {
    fn emit(&self, status: u16, bytes: u64) {
        Entry {
            client: self.client,
            line: &self.line,
            host: &self.host,
            method: &self.method,
            path: &self.path,
            version: self.version,
            start: self.start,
        }
        .emit(status, bytes);
    }
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP",
    }
}

/// A response body that logs its request once it has been sent or dropped.
pub struct LoggedBody<B> {
    inner: B,
    entry: OwnedEntry,
    status: u16,
    bytes: u64,
}

impl<B> LoggedBody<B> {
    /// Wraps `inner`, a response with `status`, counting its bytes for `entry`'s line.
    pub fn new(inner: B, entry: OwnedEntry, status: u16) -> LoggedBody<B> {
        LoggedBody {
            inner,
            entry,
            status,
            bytes: 0,
        }
    }
}

impl<B> Drop for LoggedBody<B> {
    fn drop(&mut self) {
        self.entry.emit(self.status, self.bytes);
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for LoggedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

struct LineState {
    buf: Vec<u8>,
    clock: Clock,
}

thread_local! {
    static LINE: RefCell<LineState> = RefCell::new(LineState {
        buf: Vec::with_capacity(512),
        clock: Clock { second: u64::MAX, prefix: String::new() },
    });
}

/// RFC 3339 UTC time with microseconds; the part down to the second is made once a second.
struct Clock {
    second: u64,
    /// `YYYY-MM-DDTHH:MM:SS`
    prefix: String,
}

impl Clock {
    fn write_now(&mut self, out: &mut Vec<u8>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        if secs != self.second {
            self.second = secs;
            self.prefix = format_date_time(secs);
        }
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b'.');
        let mut micros = now.subsec_micros();
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        out.extend_from_slice(&digits);
        out.push(b'Z');
    }
}

/// The bytes a JSON string cannot hold as they are: `"`, `\\` and control characters.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `s` as the inside of a JSON string.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s.as_bytes();
    while let Some(i) = rest.iter().position(|&b| NEEDS_ESCAPE[usize::from(b)]) {
        out.extend_from_slice(&rest[..i]);
        match rest[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn escapes_json() {
        let out = text(|o| escape_into(o, "a\"b\\c\nd\u{1}\u{1f}é/"));
        assert_eq!(out, r#"a\"b\\c\nd\u0001\u001fé/"#);
        let v: serde_json::Value =
            serde_json::from_str(&format!("\"{out}\"")).expect("valid JSON string");
        assert_eq!(v, "a\"b\\c\nd\u{1}\u{1f}é/");
    }

    #[test]
    fn addresses_and_numbers() {
        for ip in [
            "0.0.0.0",
            "1.2.4.8",
            "255.255.255.255",
            "10.200.30.4",
            "2001:da8::1",
            "::",
            "1111:2222:3333:4444:5555:6666:7777:8888",
            "::ffff:1.2.3.4",
        ] {
            assert_eq!(text(|o| write_ip(o, ip.parse().expect("ip"))), ip);
        }
        for v in [0, 7, 10, 99, 100, 1234567, u64::MAX] {
            assert_eq!(text(|o| push_decimal(o, v)), v.to_string());
        }
    }

    #[test]
    fn line_fields() {
        let method = Method::GET;
        let entry = Entry {
            client: "1.2.4.8".parse().expect("ip"),
            line: "china",
            host: "example.com",
            method: &method,
            path: "/a/\"b\"?c=1",
            version: Version::HTTP_11,
            start: Instant::now(),
        };
        let line = text(|o| {
            o.extend_from_slice(b"{\"time\":\"T");
            entry.write_fields(o, 301, 192, 7);
        });
        assert_eq!(
            line,
            "{\"time\":\"T\",\"client\":\"1.2.4.8\",\"line\":\"china\",\"host\":\"example.com\",\
             \"method\":\"GET\",\"path\":\"/a/\\\"b\\\"?c=1\",\"proto\":\"HTTP/1.1\",\
             \"status\":301,\"bytes\":192,\"duration_us\":7}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(v["path"], "/a/\"b\"?c=1");
    }

    #[test]
    fn clock_format() {
        let mut clock = Clock {
            second: u64::MAX,
            prefix: String::new(),
        };
        let out = text(|o| clock.write_now(o));
        // 2026-11-22T05:31:04.843875Z
        assert_eq!(out.len(), 27, "{out}");
        assert_eq!(&out[4..5], "-");
        assert_eq!(&out[10..11], "T");
        assert_eq!(&out[19..20], ".");
        assert!(out.ends_with('Z'));
        // The cached prefix and the microseconds stay well formed a second time.
        let again = text(|o| clock.write_now(o));
        assert_eq!(again.len(), 27, "{again}");
        assert!(again[20..26].bytes().all(|b| b.is_ascii_digit()), "{again}");
    }
}
