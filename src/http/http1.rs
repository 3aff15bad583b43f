//! The listener's own HTTP/1.1 server for plain (non-TLS) connections, as nginx has one.
//!
//! This module owns the fast path of a front-end that answers most requests on the spot
//! (the redirector: `/healthz`, redirects, 400 and 421): bytes are read into one buffer
//! per connection, each request head is parsed there with `httparse` (the parser hyper
//! itself uses, with the same settings), the front-end decides from the head alone
//! ([`super::Handler::respond_head`]), and the response is written with one `write` for
//! everything answered from one read (pipelined requests in order). The responses are the
//! bytes hyper would send: status line, the handler's headers, `connection` as hyper adds
//! it, `content-length`, `date`, the body (none for `HEAD`).
//!
//! A front-end may also send a request to its origin from here ([`HeadAnswer::Forward`]:
//! the redirector's pass-through, [`crate::redirect::pass`]); the connection then waits
//! for that exchange, which reads the request's body (framed by one plain `Content-Length`
//! or by `Transfer-Encoding: chunked` alone, [`super::framing`]) from what follows the head,
//! and counts as a response in flight for the idle sweep.
//!
//! It does not try to be a whole HTTP/1.1 server. Whatever it does not answer or forward
//! exactly goes to hyper for the rest of the connection, with the bytes already read put
//! back in front ([`Ended::Hyper`]): a request with a body that is not forwarded, a body
//! framed any other way (two lengths, a length that is not plain digits, other transfer
//! codings, `Content-Length` beside `Transfer-Encoding`: hyper refuses or frames them as it
//! always has), `Expect`, `Upgrade`, `CONNECT`, a target that is not a path (absolute-form,
//! `*`), a head `httparse` or `http` refuses (hyper then answers 400 exactly as before), a
//! head that does not fit in `max_header_bytes` (hyper answers 431), HTTP/2's preface, and
//! any request the front-end leaves to hyper. The connection's registration with its
//! listener (the idle sweep and the drain) is the listener's ([`super::listener`]); this
//! module counts request heads and reads the connection's state where it waits.

use std::cell::RefCell;
use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::HeaderName;
use http::uri::PathAndQuery;
use http::{Method, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::access_log::push_decimal;
use super::client_addr::HeaderValues;
use super::framing::Framing;
use super::listener::{DRAIN, FrontState, Limits, OPEN, Shared};
use super::request::{RequestParts, host_text};
use super::{Connection, Forward, Handler, HeadAnswer, Kept};

/// hyper answers a longer request target with 414 itself.
const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;

/// Header fields parsed into an array on the stack; a front-end allowing more gets a
/// vector per batch of requests.
const STACK_HEADERS: usize = 100;

/// The most read at once.
const READ_CHUNK: usize = 4096;

/// A request head as the listener's own parser read it.
#[derive(Debug)]
pub(crate) struct RequestHead<'a> {
    method: Method,
    /// The request target: origin-form only (anything else goes to hyper), checked and
    /// cut at a `#` as `http::Uri` does for hyper's requests.
    target: PathAndQuery,
    version: Version,
    headers: &'a [httparse::Header<'a>],
    /// How its body is framed: [`Framing::Empty`], one plain `Content-Length`, or
    /// `Transfer-Encoding: chunked` alone.
    body: Framing,
    /// Whether the connection stays open after the response (hyper's rules, and not
    /// while the listener drains).
    keep_alive: bool,
}

impl RequestHead<'_> {
    /// The header fields as they came, in order.
    pub(crate) fn fields(&self) -> &[httparse::Header<'_>] {
        self.headers
    }

    pub(crate) fn body(&self) -> Framing {
        self.body
    }

    pub(crate) fn keep_alive(&self) -> bool {
        self.keep_alive
    }
}

impl HeaderValues for RequestHead<'_> {
    fn values<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value)
    }
}

impl RequestParts for RequestHead<'_> {
    fn authority(&self) -> &str {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"))
            .and_then(|h| host_text(h.value))
            .unwrap_or("")
    }

    fn path_and_query(&self) -> &str {
        self.target.as_str()
    }

    fn path(&self) -> &str {
        self.target.path()
    }

    fn method(&self) -> &Method {
        &self.method
    }

    fn version(&self) -> Version {
        self.version
    }
}

/// How a connection served here ended.
pub(super) enum Ended<I> {
    /// Closed: by either side, after `Connection: close`, on an error, or by the drain.
    Closed,
    /// The rest is hyper's: the stream, and what was read of it and not answered.
    Hyper(I, BytesMut),
}

/// What to do once the requests read so far are answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next<F> {
    /// Read more.
    Read,
    /// Close once the responses are written.
    Close,
    /// Hand the connection to hyper from the first byte not consumed.
    Hyper,
    /// Once the responses are written, forward the request whose head ends the bytes
    /// consumed (its body follows them).
    Forward(F),
}

/// Serves `io`, whose first bytes `buf` holds, until it closes or is handed to hyper.
/// `first` is what the listener already made of those bytes, if anything
/// ([`FirstRead::Open`]): then `buf` holds only what was not answered. Requests get the
/// app `front` holds when their head has been read; `limits` are the connection's (those
/// current when it was accepted).
pub(super) async fn serve<H: Handler, I: AsyncRead + AsyncWrite + Unpin + Send>(
    mut io: I,
    mut buf: BytesMut,
    first: Option<Unsent<H::Forward>>,
    conn: Connection,
    front: &ArcSwap<FrontState<H>>,
    limits: Limits,
    shared: &Shared,
) -> Ended<I> {
    let (mut out, mut next) = match first {
        Some(unsent) => (unsent.out, Some(unsent.next)),
        None => (Vec::new(), None),
    };
    loop {
        if next.is_none() && !buf.is_empty() {
            let (consumed, then) = {
                let front = front.load();
                answer(
                    &buf,
                    &*front.app,
                    conn,
                    limits.max_headers,
                    shared,
                    &mut out,
                )
            };
            buf.advance(consumed);
            next = Some(then);
        }
        if !out.is_empty() {
            if io.write_all(&out).await.is_err() {
                return Ended::Closed;
            }
            out.clear();
        }
        match next.take() {
            Some(Next::Read) if buf.len() >= limits.max_header_bytes => {
                // No head in `max_header_bytes`: hyper reads on and answers 431.
                return Ended::Hyper(io, buf);
            }
            Some(Next::Read) | None => {}
            // Dropping `io` closes the socket, its FIN after the responses, as `shutdown`
            // would send it: one system call fewer.
            Some(Next::Close) => return Ended::Closed,
            Some(Next::Hyper) => return Ended::Hyper(io, buf),
            Some(Next::Forward(forward)) => {
                let kept = {
                    let _busy = Busy::new(shared);
                    forward.forward(&mut io, &mut buf).await
                };
                if kept == Kept::Close || shared.state.load(Ordering::Acquire) != OPEN {
                    let _ = io.shutdown().await;
                    return Ended::Closed;
                }
                continue;
            }
        }
        let room = READ_CHUNK.min(limits.max_header_bytes.saturating_sub(buf.len()).max(1));
        buf.reserve(room);
        let read = poll_fn(|cx| {
            match shared.state.load(Ordering::Acquire) {
                OPEN => {}
                // Between requests, the drain closes the connection as hyper's graceful
                // shutdown closes an idle one; a head begun is answered first.
                DRAIN if !buf.is_empty() => {}
                _ => return Poll::Ready(Ok(0)),
            }
            let mut limited = (&mut buf).limit(room);
            tokio_util::io::poll_read_buf(Pin::new(&mut io), cx, &mut limited)
        })
        .await;
        match read {
            Ok(0) | Err(_) => return Ended::Closed,
            Ok(_) => {}
        }
    }
}

/// What a connection's first read came to, answered before the connection was registered
/// with the reactor or given a task (see [`first_read`]).
pub(super) enum FirstRead<F> {
    /// Answered, written and closed (or closed by the client, or failed): nothing left.
    Closed,
    /// Still open: the bytes read and not answered (a head begun, or what is hyper's), and
    /// the responses not written yet with what comes after them; `None` if nothing was
    /// read (the client has sent nothing yet).
    Open(BytesMut, Option<Unsent<F>>),
}

/// Responses made and not (wholly) written yet, and what to do once they are.
pub(super) struct Unsent<F> {
    out: Vec<u8>,
    next: Next<F>,
}

/// The most a connection's first read takes: a request head of a browser with its
/// cookies fits.
pub(super) const FIRST_READ: usize = READ_CHUNK;

/// Reads what the client of a new connection has sent, without waiting, and answers it as
/// [`serve`] would, writing the responses without waiting either: a whole request that
/// closes its connection (`Connection: close`, HTTP/1.0) is thus read, answered, logged,
/// written and closed in three system calls (`read`, `write`, `close`) and no task. What
/// cannot be finished so (no bytes yet, a head begun, a keep-alive connection, a response
/// the socket does not take whole, a request for hyper) comes back [`FirstRead::Open`]
/// for [`serve`] to go on with. `shared` is the connection's (for the request count and
/// the drain); `scratch` a buffer kept between connections.
pub(super) fn first_read<H: Handler, S>(
    mut socket: S,
    conn: Connection,
    front: &FrontState<H>,
    shared: &Shared,
    scratch: &mut Scratch,
) -> FirstRead<H::Forward>
where
    S: std::io::Read + std::io::Write,
{
    let room = FIRST_READ.min(front.limits.max_header_bytes).max(1);
    let read = &mut scratch.read[..room];
    let n = match socket.read(read) {
        // Closed before sending anything, as a load balancer's TCP probe does.
        Ok(0) => return FirstRead::Closed,
        Ok(n) => n,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            return FirstRead::Open(BytesMut::new(), None);
        }
        // Reset: what the next read would meet anyway.
        Err(_) => return FirstRead::Closed,
    };
    let out = &mut scratch.out;
    out.clear();
    let (consumed, next) = answer(
        &read[..n],
        &*front.app,
        conn,
        front.limits.max_headers,
        shared,
        out,
    );
    let written = if out.is_empty() {
        0
    } else {
        match socket.write(out) {
            Ok(w) => w,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => return FirstRead::Closed,
        }
    };
    if matches!(next, Next::Close) && written == out.len() {
        // Dropping the socket closes it: its FIN follows the response, as `shutdown` would
        // send it, one system call fewer.
        return FirstRead::Closed;
    }
    let unsent = Unsent {
        out: out[written..].to_vec(),
        next,
    };
    FirstRead::Open(BytesMut::from(&read[consumed..n]), Some(unsent))
}

/// What [`first_read`] reads into and writes from, kept between connections so that a
/// connection answered at once allocates nothing for them.
pub(super) struct Scratch {
    read: Box<[u8; FIRST_READ]>,
    out: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            read: Box::new([0; FIRST_READ]),
            out: Vec::with_capacity(1024),
        }
    }
}

/// A forwarded request's response, counted in flight (the idle sweep leaves its connection
/// alone) until this is dropped.
struct Busy<'a>(&'a Shared);

impl Busy<'_> {
    fn new(shared: &Shared) -> Busy<'_> {
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(shared)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers the complete request heads at the start of `buf` into `out`, as long as they
/// can be answered here; returns the bytes consumed and what comes next.
fn answer<H: Handler>(
    buf: &[u8],
    app: &H,
    conn: Connection,
    max_headers: usize,
    shared: &Shared,
    out: &mut Vec<u8>,
) -> (usize, Next<H::Forward>) {
    let mut on_stack = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
    let mut on_heap;
    let storage = if max_headers <= STACK_HEADERS {
        &mut on_stack[..max_headers]
    } else {
        on_heap = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); max_headers];
        &mut on_heap[..]
    };
    let config = httparse::ParserConfig::default();
    let mut consumed = 0;
    while consumed < buf.len() {
        let mut req = httparse::Request::new(&mut []);
        let len = match config.parse_request_with_uninit_headers(
            &mut req,
            &buf[consumed..],
            &mut *storage,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return (consumed, Next::Read),
            // hyper answers exactly as it always has (400, or 431 for too many fields).
            Err(_) => return (consumed, Next::Hyper),
        };
        let Some(mut head) = request_head(&req) else {
            return (consumed, Next::Hyper);
        };
        // The drain closes a kept-alive connection after its response, as hyper does.
        head.keep_alive &= shared.state.load(Ordering::Acquire) == OPEN;
        let resp = match app.respond_head(&head, conn) {
            HeadAnswer::Hyper => return (consumed, Next::Hyper),
            HeadAnswer::Forward(forward) => {
                shared.requests.fetch_add(1, Ordering::Relaxed);
                return (consumed + len, Next::Forward(forward));
            }
            HeadAnswer::Local(resp) => resp,
        };
        shared.requests.fetch_add(1, Ordering::Relaxed);
        consumed += len;
        // A body is not read here: after an answer to a request with one (which front-ends
        // leave to hyper) the connection closes, so that no body is read as requests.
        let keep_alive = head.keep_alive && head.body == Framing::Empty;
        write_response(
            out,
            &resp,
            head.version,
            head.method == Method::HEAD,
            keep_alive,
        );
        if !keep_alive {
            return (consumed, Next::Close);
        }
    }
    (consumed, Next::Read)
}

/// `req` as a request this module reads, with its body's framing and whether its
/// connection stays open after it by hyper's rules: HTTP/1.1 unless a `Connection` field
/// says `close`, HTTP/1.0 only if one says `keep-alive` (and none `close`). `None`: hyper's.
fn request_head<'r>(req: &'r httparse::Request<'_, '_>) -> Option<RequestHead<'r>> {
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    if method == Method::CONNECT {
        return None;
    }
    let target = req.path?;
    if !target.starts_with('/') || target.len() > MAX_URI_LEN {
        return None;
    }
    let target = PathAndQuery::try_from(target).ok()?;
    let version = if req.version? == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let mut keep_alive = version == Version::HTTP_11;
    let mut saw_close = false;
    let mut body = Framing::Empty;
    for h in &*req.headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            body = match body {
                Framing::Empty => Framing::Length(plain_length(h.value)?),
                _ => return None,
            };
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            body = match body {
                Framing::Empty if h.value.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
                _ => return None,
            };
        } else if name.eq_ignore_ascii_case(b"expect") || name.eq_ignore_ascii_case(b"upgrade") {
            return None;
        }
        if name.eq_ignore_ascii_case(b"connection") {
            if saw_close || has_token(h.value, "close") {
                saw_close = true;
                keep_alive = false;
            } else if !keep_alive {
                keep_alive = has_token(h.value, "keep-alive");
            }
        }
    }
    Some(RequestHead {
        method,
        target,
        version,
        headers: &*req.headers,
        body,
        keep_alive,
    })
}

/// A `Content-Length` value of plain digits (at most 18: no overflow), else `None`.
fn plain_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Whether a `Connection` value (text only) lists `token`.
fn has_token(value: &[u8], token: &str) -> bool {
    host_text(value).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Appends `resp`, the answer to a request of `version` (to `HEAD` if `is_head`), as hyper
/// writes it.
pub(crate) fn write_response(
    out: &mut Vec<u8>,
    resp: &Response<Bytes>,
    version: Version,
    is_head: bool,
    keep_alive: bool,
) {
    let status = resp.status();
    if version == Version::HTTP_11 && status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(if version == Version::HTTP_10 {
            b"HTTP/1.0 "
        } else {
            b"HTTP/1.1 "
        });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in resp.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match (version, keep_alive) {
        (Version::HTTP_10, true) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        (Version::HTTP_11, false) => out.extend_from_slice(b"connection: close\r\n"),
        _ => {}
    }
    let body = resp.body();
    let no_length = status.is_informational()
        || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    if !(no_length || body.is_empty() && is_head) {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"date: ");
    write_date(out);
    out.extend_from_slice(b"\r\n\r\n");
    if !is_head && !no_length {
        out.extend_from_slice(body);
    }
}

thread_local! {
    /// The `date` value (IMF-fixdate), made once a second per thread, and its second.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current time as a `date` value: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn write_date(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    DATE.with_borrow_mut(|(second, text)| {
        if *second != now.as_secs() {
            *second = now.as_secs();
            *text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(*second));
        }
        out.extend_from_slice(text.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::RequestParts;

    /// Answers every request on the spot with its path, or hands `/pass` to hyper.
    struct Echo;

    impl Handler for Echo {
        const OWN_HTTP1: bool = true;
        type Forward = crate::http::NoForward;

        fn respond(
            &self,
            _req: hyper::Request<hyper::body::Incoming>,
            _conn: Connection,
        ) -> super::super::response::Reply {
            unreachable!("hyper is not in these tests")
        }

        fn respond_head(
            &self,
            head: &RequestHead<'_>,
            _conn: Connection,
        ) -> HeadAnswer<Self::Forward> {
            // Bodies are hyper's, as the redirector leaves them unless it forwards them.
            if head.path() == "/pass" || head.body() != Framing::Empty {
                return HeadAnswer::Hyper;
            }
            let body = format!(
                "{} {} {}",
                head.method(),
                head.path_and_query(),
                head.authority()
            );
            HeadAnswer::Local(Response::new(Bytes::from(body)))
        }
    }

    fn conn() -> Connection {
        Connection {
            peer: "127.0.0.1:1".parse().expect("addr"),
            tls: false,
        }
    }

    fn answered(
        buf: &[u8],
        max_headers: usize,
    ) -> (usize, Next<crate::http::NoForward>, String, u64) {
        let shared = Shared::default();
        let mut out = Vec::new();
        let (consumed, next) = answer(buf, &Echo, conn(), max_headers, &shared, &mut out);
        let text = String::from_utf8(out).expect("UTF-8");
        // The date is the clock's.
        let text = match text.find("date: ") {
            Some(i) => format!("{}D{}", &text[..i + 6], &text[i + 6 + 29..]),
            None => text,
        };
        (
            consumed,
            next,
            text,
            shared.requests.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn pipelined_heads_are_answered_here_in_order_up_to_what_is_hypers() {
        let one = "GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n";
        let two = "HEAD /h HTTP/1.1\r\nhost: y\r\n\r\n";
        let pass = "GET /pass HTTP/1.1\r\n\r\n";
        let buf = format!("{one}{two}{pass}GET /never");
        let (consumed, next, out, requests) = answered(buf.as_bytes(), 100);
        assert_eq!(consumed, one.len() + two.len());
        assert_eq!(next, Next::Hyper);
        assert_eq!(requests, 2);
        // Only the first carries a date here: the second's is cut by the helper above.
        assert!(
            out.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-length: 10\r\ndate: D\r\n\r\nGET /a?b x\
             HTTP/1.1 200 OK\r\ncontent-length: 9\r\ndate: "
            ),
            "{out}"
        );
        assert!(out.ends_with(" GMT\r\n\r\n"), "{out}");
    }

    #[test]
    fn what_is_not_answered_here_is_left_whole_for_hyper() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\na",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        ] {
            let (consumed, next, out, requests) = answered(head.as_bytes(), 2);
            assert_eq!(
                (consumed, next, out.as_str(), requests),
                (0, Next::Hyper, "", 0),
                "{head:?}"
            );
        }
        // Not whole yet: read on.
        let (consumed, next, out, _) = answered(b"GET / HTTP/1.1\r\nHost: x\r\n", 100);
        assert_eq!((consumed, next, out.as_str()), (0, Next::Read, ""));
    }

    /// A connected pair: the client's end, and the server's end made non-blocking as the
    /// listener accepts it.
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("non-blocking");
        (client, server)
    }

    fn front(max_header_bytes: usize) -> FrontState<Echo> {
        FrontState::new(
            std::sync::Arc::new(Echo),
            crate::http::client_addr::TrustedProxies::new(&[]),
            Limits {
                max_header_bytes,
                ..Limits::default()
            },
        )
    }

    /// The server's end of `pair` after `sent`, once the bytes have arrived.
    fn read_first(
        sent: &[u8],
        max_header_bytes: usize,
    ) -> (std::net::TcpStream, FirstRead<crate::http::NoForward>, u64) {
        use std::io::Write;
        let (mut client, server) = pair();
        client.write_all(sent).expect("write");
        // Loopback delivers the bytes before `write` returns; wait for them all the same.
        server.set_nonblocking(false).expect("blocking");
        let mut peek = [0u8; 1];
        server.peek(&mut peek).expect("peek");
        server.set_nonblocking(true).expect("non-blocking");
        let shared = Shared::default();
        let mut scratch = Scratch::default();
        let first = first_read(
            &server,
            conn(),
            &front(max_header_bytes),
            &shared,
            &mut scratch,
        );
        let requests = shared.requests.load(Ordering::Relaxed);
        (client, first, requests)
    }

    fn received(mut client: std::net::TcpStream) -> String {
        use std::io::Read;
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut out = Vec::new();
        client.read_to_end(&mut out).expect("read to the end");
        let text = String::from_utf8(out).expect("UTF-8");
        match text.find("date: ") {
            Some(i) => format!("{}D{}", &text[..i + 6], &text[i + 6 + 29..]),
            None => text,
        }
    }

    #[test]
    fn a_request_that_closes_is_answered_and_closed_by_the_first_read() {
        let (client, first, requests) = read_first(
            b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            16384,
        );
        assert!(matches!(first, FirstRead::Closed));
        assert_eq!(requests, 1);
        // The server's end is dropped: the client reads the response, then the end.
        assert_eq!(
            received(client),
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 8\r\ndate: D\r\n\r\nGET /c x"
        );
        // HTTP/1.0 without keep-alive too, pipelined behind nothing.
        let (client, first, _) = read_first(b"GET /o HTTP/1.0\r\n\r\n", 16384);
        assert!(matches!(first, FirstRead::Closed));
        assert_eq!(
            received(client),
            "HTTP/1.0 200 OK\r\ncontent-length: 7\r\ndate: D\r\n\r\nGET /o "
        );
    }

    #[test]
    fn what_the_first_read_cannot_finish_is_left_to_serve() {
        // Nothing sent yet: nothing read, nothing to write.
        let (_client, server) = pair();
        let open = first_read(
            &server,
            conn(),
            &front(16384),
            &Shared::default(),
            &mut Scratch::default(),
        );
        let FirstRead::Open(buf, None) = open else {
            panic!("not left open unread")
        };
        assert!(buf.is_empty());
        // A head begun: kept, with nothing answered.
        let (_client, open, requests) = read_first(b"GET /half HTTP/1.1\r\nHo", 16384);
        let FirstRead::Open(buf, Some(unsent)) = open else {
            panic!("not left open")
        };
        assert_eq!(
            (&buf[..], unsent.out.len(), unsent.next, requests),
            (&b"GET /half HTTP/1.1\r\nHo"[..], 0, Next::Read, 0)
        );
        // Kept alive after a pipelined pair: both answered and written, the rest kept.
        let (_client, open, requests) = read_first(
            b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3",
            16384,
        );
        let FirstRead::Open(buf, Some(unsent)) = open else {
            panic!("not left open")
        };
        assert_eq!(
            (&buf[..], unsent.out.len(), unsent.next, requests),
            (&b"GET /3"[..], 0, Next::Read, 2)
        );
        // For hyper: left whole.
        let (_client, open, requests) = read_first(b"GET /pass HTTP/1.1\r\n\r\n", 16384);
        let FirstRead::Open(buf, Some(unsent)) = open else {
            panic!("not left open")
        };
        assert_eq!(
            (&buf[..], unsent.next, requests),
            (&b"GET /pass HTTP/1.1\r\n\r\n"[..], Next::Hyper, 0)
        );
        // No more than `FIRST_READ` read: the rest is `serve`'s.
        let (_client, open, _) = read_first(&[b'G'; 5000], 8192);
        let FirstRead::Open(buf, Some(unsent)) = open else {
            panic!("not left open")
        };
        assert_eq!((buf.len(), unsent.next), (FIRST_READ, Next::Read));
    }

    #[test]
    fn keep_alive_follows_hypers_rules() {
        for (head, connection, next) in [
            ("GET / HTTP/1.1\r\n\r\n", "", Next::Read),
            (
                "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
                "connection: close\r\n",
                Next::Close,
            ),
            ("GET / HTTP/1.0\r\n\r\n", "", Next::Close),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                "connection: keep-alive\r\n",
                Next::Read,
            ),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
                "",
                Next::Close,
            ),
        ] {
            let (_, got, out, _) = answered(head.as_bytes(), 100);
            assert_eq!(got, next, "{head:?}");
            let version = if head.contains("HTTP/1.0") {
                "1.0"
            } else {
                "1.1"
            };
            let status = if version == "1.0" {
                "HTTP/1.0 200 OK"
            } else {
                "HTTP/1.1 200 OK"
            };
            assert_eq!(
                out,
                format!("{status}\r\n{connection}content-length: 6\r\ndate: D\r\n\r\nGET / "),
                "{head:?}"
            );
        }
    }
}
