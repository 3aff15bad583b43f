//! The access log: one JSON line per request, the record a mainland operator must keep.
//!
//! This module owns what a line holds (time, client address, line, host, method, path,
//! status, bytes, duration) and how it is written: as a `tracing` event with the target
//! [`TARGET`], which [`layer`] formats as flat JSON and which the ordinary log leaves out.
//! A response whose size is known is logged when it is made; a passed-through one when its
//! body has been sent (or abandoned), so that bytes and duration are what went out. It does
//! not decide anything about requests.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Version};
use http_body::{Body, Frame, SizeHint};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

/// The `tracing` target of access-log events.
pub const TARGET: &str = "geoline::access";

/// What is known about a request before its response is sent.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub client: IpAddr,
    /// The client's line, when the host was covered and the client classified.
    pub line: &'a str,
    pub host: &'a str,
    pub method: &'a Method,
    pub path: &'a str,
    pub version: Version,
    pub start: Instant,
}

impl Entry<'_> {
    pub fn emit(&self, status: u16, bytes: u64) {
        let duration_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut client = IpText::new();
        tracing::info!(
            target: TARGET,
            client = client.format(self.client),
            line = self.line,
            host = self.host,
            method = self.method.as_str(),
            path = self.path,
            proto = version_str(self.version),
            status,
            bytes,
            duration_us,
        );
    }

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

/// An address as text without `core::fmt` (a tenth of the access log's cost went there).
struct IpText {
    /// The longest IPv6 text is 45 bytes.
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    fn new() -> IpText {
        IpText {
            buf: [0; 48],
            len: 0,
        }
    }

    fn format(&mut self, ip: IpAddr) -> &str {
        match ip {
            IpAddr::V4(v4) => {
                let mut n = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf[n] = b'.';
                        n += 1;
                    }
                    n += write_decimal(&mut self.buf[n..], u64::from(octet));
                }
                self.len = n;
            }
            IpAddr::V6(v6) => {
                let mut cursor = std::io::Cursor::new(&mut self.buf[..]);
                let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{v6}"));
                self.len = usize::try_from(cursor.position()).unwrap_or(0);
            }
        }
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Writes `v` in decimal at the start of `out` (which must be long enough for it: 20 bytes
/// holds any u64) and returns how many bytes it took.
fn write_decimal(out: &mut [u8], mut v: u64) -> usize {
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
    let n = digits.len() - i;
    out[..n].copy_from_slice(&digits[i..]);
    n
}

fn push_decimal(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    let n = write_decimal(&mut buf, v);
    out.push_str(std::str::from_utf8(&buf[..n]).unwrap_or("0"));
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

/// The access log as a `tracing` layer: only [`TARGET`] events, one flat JSON object per
/// line (`{"time":"2026-11-22T05:31:04.843875Z","client":…,"line":…,…}`), written to
/// `writer` in one `write_all` each.
///
/// It is written out by hand rather than with `tracing_subscriber::fmt().json()`: that
/// formatter goes through serde and checks every piece it writes for UTF-8, which was a
/// tenth of the redirector's CPU time per request.
pub fn layer<W>(writer: W) -> AccessLayer<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    AccessLayer { writer }
}

/// See [`layer`].
pub struct AccessLayer<W> {
    writer: W,
}

impl<S, W> Layer<S> for AccessLayer<W>
where
    S: Subscriber,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // No `enabled` filter here: in a layered subscriber that would turn events off for the
    // other layers too. Other events are simply not written.
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        LINE.with(|cell| {
            let Ok(mut state) = cell.try_borrow_mut() else {
                return;
            };
            let LineState { buf, clock } = &mut *state;
            buf.clear();
            buf.push_str("{\"time\":\"");
            clock.write_now(buf);
            buf.push('"');
            event.record(&mut JsonFields { out: buf });
            buf.push_str("}\n");
            let _ = self.writer.make_writer().write_all(buf.as_bytes());
        });
    }
}

struct LineState {
    buf: String,
    clock: Clock,
}

thread_local! {
    static LINE: RefCell<LineState> = RefCell::new(LineState {
        buf: String::with_capacity(512),
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
    fn write_now(&mut self, out: &mut String) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        if secs != self.second {
            self.second = secs;
            let day = secs % 86_400;
            self.prefix = format!(
                "{}T{:02}:{:02}:{:02}",
                crate::server::format_epoch(secs),
                day / 3600,
                day / 60 % 60,
                day % 60
            );
        }
        out.push_str(&self.prefix);
        out.push('.');
        let micros = u64::from(now.subsec_micros());
        let mut buf = [0u8; 20];
        let n = write_decimal(&mut buf, micros);
        for _ in n..6 {
            out.push('0');
        }
        out.push_str(std::str::from_utf8(&buf[..n]).unwrap_or(""));
        out.push('Z');
    }
}

/// Writes each field as `,"name":value`: numbers and booleans bare, everything else as a
/// JSON string.
struct JsonFields<'a> {
    out: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push_str(",\"");
        self.out.push_str(field.name());
        self.out.push_str("\":");
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.out.push('"');
        escape_into(self.out, value);
        self.out.push('"');
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        push_decimal(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.out.push('"');
        let _ = write!(Escaping(self.out), "{value:?}");
        self.out.push('"');
    }
}

/// A `fmt::Write` that JSON-escapes what goes through it.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

fn escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < 0x20)
    {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_json() {
        let mut out = String::new();
        escape_into(&mut out, "a\"b\\c\nd\u{1}é/");
        assert_eq!(out, r#"a\"b\\c\nd\u0001é/"#);
        let v: serde_json::Value =
            serde_json::from_str(&format!("\"{out}\"")).expect("valid JSON string");
        assert_eq!(v, "a\"b\\c\nd\u{1}é/");
    }

    #[test]
    fn addresses_and_numbers() {
        let mut t = IpText::new();
        for ip in [
            "0.0.0.0",
            "1.2.4.8",
            "255.255.255.255",
            "10.200.30.4",
            "2001:da8::1",
            "::",
        ] {
            assert_eq!(t.format(ip.parse().expect("ip")), ip);
        }
        let long = "1111:2222:3333:4444:5555:6666:7777:8888";
        assert_eq!(t.format(long.parse().expect("ip")), long);
        let mapped = "::ffff:1.2.3.4";
        assert_eq!(t.format(mapped.parse().expect("ip")), mapped);
        for v in [0, 7, 10, 99, 100, 1234567, u64::MAX] {
            let mut out = String::new();
            push_decimal(&mut out, v);
            assert_eq!(out, v.to_string());
        }
    }

    #[test]
    fn clock_format() {
        let mut clock = Clock {
            second: u64::MAX,
            prefix: String::new(),
        };
        let mut out = String::new();
        clock.write_now(&mut out);
        // 2026-11-22T05:31:04.843875Z
        assert_eq!(out.len(), 27, "{out}");
        assert_eq!(&out[4..5], "-");
        assert_eq!(&out[10..11], "T");
        assert_eq!(&out[19..20], ".");
        assert!(out.ends_with('Z'));
    }
}
