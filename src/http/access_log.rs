//! The access log: one JSON line per request, the record a mainland operator must keep.
//!
//! This module owns what a line holds (time, client address, line, host, method, path,
//! status, bytes, duration) and how it is written: formatted into a per-thread buffer
//! without `core::fmt`, gathered per thread and written in batches by the front-end's own
//! [`AccessLog`] (standard output, or a file reopened on SIGUSR1 after logrotate renamed
//! it). A response whose size is known is logged when it is made; a passed-through one
//! when its body has been sent (or abandoned), so that bytes and duration are what went
//! out. It does not decide anything about requests and does not go through `tracing`: an
//! event's dispatch, field visitors and filters cost more than formatting the line itself.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use bytes::Bytes;
use http::{Method, Version};
use http_body::{Body, Frame, SizeHint};

use crate::util::time::format_date_time;

/// Where a front-end's access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output (the default).
    Stdout,
    /// No access log: lines are not even made.
    Off,
    /// A file, appended to; reopened on SIGUSR1 after logrotate has renamed it.
    File(PathBuf),
}

/// Bytes a thread gathers before it writes them itself, without waiting for the flush.
const THREAD_BUFFER: usize = 64 * 1024;

/// How often the lines gathered are written out.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// One front-end's access log: lines gathered per thread and written in batches (every
/// [`FLUSH_INTERVAL`], when a thread has [`THREAD_BUFFER`] bytes, and at shutdown), to
/// standard output or a file that [`AccessLog::reopen`] opens anew.
pub struct AccessLog {
    /// Told apart in each thread's list of buffers.
    id: usize,
    /// The file lines are written to; replaced by [`AccessLog::reopen`].
    out: ArcSwap<File>,
    /// The file's path, `None` for standard output.
    path: Option<PathBuf>,
    /// Every thread's buffer, for the flush.
    buffers: Mutex<Vec<Arc<ThreadBuffer>>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The lines one thread has gathered for one log. Locked by that thread for each line and
/// by the flush a few times a second: never contended in practice.
#[derive(Default)]
struct ThreadBuffer(Mutex<Vec<u8>>);

impl ThreadBuffer {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why an access log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The file could not be opened for appending.
    #[error("access log {path}: cannot open: {source}", path = path.display())]
    Open {
        /// The configured path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Standard output could not be duplicated.
    #[error("access log: cannot use standard output: {0}")]
    Stdout(#[source] std::io::Error),
}

fn open_append(path: &Path) -> Result<File, AccessLogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AccessLogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

impl AccessLog {
    /// Opens `target`; `None` for [`AccessLogTarget::Off`].
    pub fn open(target: &AccessLogTarget) -> Result<Option<Arc<AccessLog>>, AccessLogError> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        let (file, path) = match target {
            AccessLogTarget::Off => return Ok(None),
            AccessLogTarget::Stdout => {
                // A duplicate of the descriptor, written without `Stdout`'s lock and line
                // buffer (the access log is the only writer there).
                let fd = std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(AccessLogError::Stdout)?;
                (File::from(fd), None)
            }
            AccessLogTarget::File(path) => (open_append(path)?, Some(path.clone())),
        };
        Ok(Some(Arc::new(AccessLog {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            out: ArcSwap::from_pointee(file),
            path,
            buffers: Mutex::new(Vec::new()),
        })))
    }

    /// Appends one finished line (with its `\n`) to this thread's buffer, writing the
    /// buffer out if it is full.
    fn push(&self, line: &[u8]) {
        BUFFERS.with(|cell| {
            let mut mine = cell.borrow_mut();
            let i = match mine.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    // This thread's first line for this log: its buffer joins the flush.
                    let b = Arc::new(ThreadBuffer::default());
                    self.buffers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(b.clone());
                    mine.push((self.id, b));
                    mine.len() - 1
                }
            };
            let mut buf = mine[i].1.lock();
            buf.extend_from_slice(line);
            if buf.len() >= THREAD_BUFFER {
                self.write(&mut buf);
            }
        });
    }

    /// Writes and empties `buf`. A full disk or a closed pipe loses lines, not requests.
    fn write(&self, buf: &mut Vec<u8>) {
        if !buf.is_empty() {
            let _ = (&**self.out.load()).write_all(buf);
            buf.clear();
        }
    }

    /// Writes out every thread's gathered lines.
    pub fn flush(&self) {
        let buffers = self
            .buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for b in buffers {
            self.write(&mut b.lock());
        }
    }

    /// After logrotate renamed the file: writes what was gathered to it, then opens the
    /// path anew, so that every line is in one file or the other. Standard output is only
    /// flushed.
    pub fn reopen(&self) -> Result<(), AccessLogError> {
        self.flush();
        if let Some(path) = &self.path {
            self.out.store(Arc::new(open_append(path)?));
        }
        Ok(())
    }

    /// Flushes every [`FLUSH_INTERVAL`] until `shutdown`; the last flush is the caller's,
    /// once the listeners have drained.
    pub(crate) async fn flush_periodically(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(),
                () = shutdown.cancelled() => return,
            }
        }
    }
}

thread_local! {
    /// This thread's buffer of each access log it has written to.
    static BUFFERS: RefCell<Vec<(usize, Arc<ThreadBuffer>)>> = const { RefCell::new(Vec::new()) };
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
    /// Writes the request's line to `log`, with the response's status and body size.
    pub fn emit(&self, log: &AccessLog, status: u16, bytes: u64) {
        let duration_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        LINE.with(|cell| {
            // Nothing in here logs a request, but a panic must not be the price of a line.
            let Ok(mut state) = cell.try_borrow_mut() else {
                return;
            };
            let LineState { buf, clock } = &mut *state;
            buf.clear();
            buf.extend_from_slice(b"{\"time\":\"");
            clock.write_now(buf);
            self.write_fields(buf, status, bytes, duration_us);
            log.push(buf);
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

    /// A copy that can outlive the request, for a [`LoggedBody`] logging to `log`.
    pub fn to_owned(&self, log: &Arc<AccessLog>) -> OwnedEntry {
        OwnedEntry {
            log: log.clone(),
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
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
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
    log: Arc<AccessLog>,
    client: IpAddr,
    line: String,
    host: String,
    method: Method,
    path: String,
    version: Version,
    start: Instant,
}

impl OwnedEntry {
    /// Writes the line of a response with `status` and `bytes` of body.
    pub(crate) fn emit(&self, status: u16, bytes: u64) {
        Entry {
            client: self.client,
            line: &self.line,
            host: &self.host,
            method: &self.method,
            path: &self.path,
            version: self.version,
            start: self.start,
        }
        .emit(&self.log, status, bytes);
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
    /// `None` when the access log is off.
    entry: Option<OwnedEntry>,
    status: u16,
    bytes: u64,
}

impl<B> LoggedBody<B> {
    /// Wraps `inner`, a response with `status`, counting its bytes for `entry`'s line.
    pub fn new(inner: B, entry: Option<OwnedEntry>, status: u16) -> LoggedBody<B> {
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
        if let Some(entry) = &self.entry {
            entry.emit(self.status, self.bytes);
        }
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
    fn gathered_per_thread_written_on_flush_and_reopened() {
        let dir = std::env::temp_dir().join(format!("geoline-access-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("access.log");
        let log = AccessLog::open(&AccessLogTarget::File(path.clone()))
            .expect("opens")
            .expect("on");
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        log.push(format!("{t} {i}\n").as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        // Gathered, not written yet.
        assert_eq!(std::fs::read_to_string(&path).expect("file"), "");
        log.flush();
        assert_eq!(
            std::fs::read_to_string(&path)
                .expect("file")
                .lines()
                .count(),
            30
        );
        log.push(b"before\n");
        std::fs::rename(&path, dir.join("access.log.1")).expect("rename");
        log.reopen().expect("reopens");
        log.push(b"after\n");
        log.flush();
        let old = std::fs::read_to_string(dir.join("access.log.1")).expect("old");
        assert_eq!(old.lines().count(), 31);
        assert!(old.ends_with("before\n"), "{old}");
        assert_eq!(std::fs::read_to_string(&path).expect("new"), "after\n");
        assert!(
            AccessLog::open(&AccessLogTarget::Off)
                .expect("off")
                .is_none()
        );
        let _ = std::fs::remove_dir_all(&dir);
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
