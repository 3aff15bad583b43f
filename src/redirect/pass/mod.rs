//! The redirector's own pass-through on plain listeners: a foreign client's request sent
//! to a plain-HTTP origin and the response relayed, without hyper, in the client
//! connection's task.
//!
//! The listener's own HTTP/1.1 path ([`crate::http::http1`]) reads the request head; the
//! redirector's app decides it goes to the origin and prepares an [`Exchange`]: the
//! origin's request head, written here byte by byte from the client's ([`head`]). The
//! exchange takes a kept-alive connection to the origin from the pool or dials one
//! ([`pool`]), writes the head and relays the request body as the client framed it,
//! reads the response head (parsed with `httparse`), writes the client's response head,
//! and relays the response body as it comes, through the connection's one read buffer
//! (a `Content-Length` body, a chunked one as it came, chunk framing included, or one
//! that ends when the origin closes, after which the client's connection closes too;
//! [`crate::http::framing`] says where each ends). The connection goes back to the pool
//! when both bodies went whole and the origin keeps it open.
//!
//! Failures answer as the hyper pass-through ([`crate::proxy`]) does, signed `geoline
//! redirect`: no connection within the connect timeout, or refused, is a 502 "cannot
//! connect"; a broken exchange or a response that is not HTTP is a 502 "no valid
//! response"; no response head within the response timeout (counted from when the request
//! went out, its body included) is a 504. A pooled connection that the origin closed
//! before answering (a write that fails, or the end of the stream before a byte of the
//! response) is tried again once on a new connection, for a request without a body and of
//! an idempotent method only, as nginx's `proxy_next_upstream` does. A response body that
//! stops midway, or stays silent for the read timeout, cuts the client's response off (the
//! connection closes). A chunked request body that does not parse gets a 400. The access
//! log line (status, body bytes, duration), the rule counters and the pass-through's
//! counters ([`ProxyMetrics`]: requests, latency to the response head, upstream errors,
//! body bytes both ways) are those of the hyper pass-through.
//!
//! What it does not do, and leaves to hyper and [`crate::proxy`] (the listener hands them
//! the connection before anything is sent): HTTPS origins, HTTP/1.0 clients (their
//! chunked responses would have to be decoded), `Upgrade`, `Expect: 100-continue`, a body
//! framed any other way than one plain `Content-Length` or `Transfer-Encoding: chunked`
//! alone, a request head that does not fit, and anything `httparse` refuses.

pub(crate) mod head;
pub(crate) mod pool;

use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::metrics::RuleCounters;
use crate::http::access_log::OwnedEntry;
use crate::http::framing::{Body, Framing};
use crate::http::http1::{RequestHead, write_response};
use crate::http::request::RequestParts;
use crate::http::response::plain;
use crate::http::{Forward, Kept};
use crate::proxy::metrics::{Event, ProxyMetrics};
use crate::proxy::{ForwardHeaders, Target};
use pool::{OriginConnection, Pool};

/// What the redirector's own answers start with.
const OWN_NAME: &str = "geoline redirect";

/// The longest response head taken from the origin (the hyper pass-through's read buffer).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Response header fields parsed, as hyper's client.
const MAX_RESPONSE_FIELDS: usize = 100;

/// The most read from the client at once for a request body.
const CLIENT_READ: usize = 16 * 1024;

/// A plain-HTTP origin: how to reach it, and the pass-through's settings and counters.
pub(crate) struct Origin {
    pool: Pool,
    response_timeout: Duration,
    read_timeout: Duration,
    forward: ForwardHeaders,
    metrics: Arc<ProxyMetrics>,
}

impl Origin {
    /// An origin dialed at `connect_to` (every host) or by host name on `port`.
    pub(crate) fn new(
        connect_to: Option<SocketAddr>,
        port: u16,
        connect_timeout: Duration,
        response_timeout: Duration,
        metrics: Arc<ProxyMetrics>,
    ) -> Origin {
        Origin {
            pool: Pool::new(connect_to, port, connect_timeout),
            response_timeout,
            read_timeout: crate::proxy::DEFAULT_READ_TIMEOUT,
            forward: ForwardHeaders::default(),
            metrics,
        }
    }

    /// Prepares the exchange of `head`, from `peer`, with the origin `target` (its `Host`
    /// value and name), to be tallied in `tally` once answered.
    pub(crate) fn exchange(
        self: &Arc<Self>,
        head: &RequestHead<'_>,
        peer: SocketAddr,
        target: Target,
        tally: Tally,
    ) -> Exchange {
        let mut request = Vec::with_capacity(512);
        head::origin_request(
            &mut request,
            head,
            target.host_header.as_bytes(),
            peer,
            self.forward,
        );
        let method = head.method();
        Exchange {
            origin: self.clone(),
            host: target.origin,
            request,
            body: head.body(),
            retry: head.body() == Framing::Empty && method.is_idempotent(),
            is_head: method == Method::HEAD,
            keep_alive: head.keep_alive(),
            start: Instant::now(),
            tally,
        }
    }
}

/// What a passed-through request is counted and logged under once answered.
pub(crate) struct Tally {
    pub counters: Arc<RuleCounters>,
    pub line: usize,
    /// `None` when the access log is off.
    pub log: Option<OwnedEntry>,
}

/// One request for the origin, ready to go.
pub(crate) struct Exchange {
    origin: Arc<Origin>,
    /// The origin host: the pool's key (without connect-to), in error texts.
    host: Arc<str>,
    /// The origin's request head.
    request: Vec<u8>,
    body: Framing,
    /// Whether it may be sent again on a new connection (idempotent, without a body).
    retry: bool,
    is_head: bool,
    /// Whether the client's connection stays open after the response.
    keep_alive: bool,
    start: Instant,
    tally: Tally,
}

/// Why no response head came from the origin.
#[derive(Debug)]
enum Failure {
    /// No connection.
    Connect(io::Error),
    /// A pooled connection failed before a byte of the response came: maybe closed by the
    /// origin while idle.
    Stale(io::Error),
    /// The exchange broke, or what came back was no HTTP response.
    Exchange(String),
    /// A 101 nobody asked for.
    Switched,
    /// The client's chunked body does not parse.
    BadBody,
    /// The client went away while sending its body: nobody to answer.
    Client,
}

/// The status and body bytes sent for a request, logged when it is over (or abandoned).
struct Logged {
    entry: Option<OwnedEntry>,
    status: u16,
    bytes: u64,
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(entry) = &self.entry {
            entry.emit(self.status, self.bytes);
        }
    }
}

impl Forward for Exchange {
    fn forward<C>(self, client: &mut C, buf: &mut BytesMut) -> impl Future<Output = Kept> + Send
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        self.run(client, buf)
    }
}

impl Exchange {
    async fn run<C>(mut self, client: &mut C, buf: &mut BytesMut) -> Kept
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let origin = self.origin.clone();
        origin.metrics.count(Event::Request);
        let mut request_body = Body::new(self.body);
        let sent = tokio::time::timeout(
            origin.response_timeout,
            self.send(client, buf, &mut request_body),
        )
        .await;
        let (conn, response) = match sent {
            Ok(Ok(got)) => got,
            Ok(Err(Failure::Client)) => return Kept::Close,
            Ok(Err(failure)) => {
                let done = request_body.is_done();
                return self.own_answer(client, failure, done).await;
            }
            Err(_) => {
                tracing::warn!(origin = %self.host, timeout = ?origin.response_timeout, "proxy: origin response timed out");
                let message = format!(
                    "the origin {} did not answer within {:?}",
                    self.host, origin.response_timeout
                );
                let done = request_body.is_done();
                return self
                    .answer(client, StatusCode::GATEWAY_TIMEOUT, &message, done)
                    .await;
            }
        };
        self.relay(client, conn, response).await
    }

    /// Sends the request (on a pooled connection, or a new one; once more on a new one if
    /// a pooled one turns out closed) and reads the origin's response head: the client's
    /// is in `response.0`.
    async fn send<C>(
        &mut self,
        client: &mut C,
        buf: &mut BytesMut,
        request_body: &mut Body,
    ) -> Result<(OriginConnection, (Vec<u8>, head::Response, usize)), Failure>
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let pool = &self.origin.pool;
        let (mut conn, mut pooled) = match pool.take(&self.host) {
            Some(conn) => (conn, true),
            None => (
                pool.connect(&self.host).await.map_err(Failure::Connect)?,
                false,
            ),
        };
        loop {
            match self
                .exchange_head(&mut conn, client, buf, request_body)
                .await
            {
                Ok(response) => return Ok((conn, response)),
                Err(Failure::Stale(_)) if pooled && self.retry => {
                    pooled = false;
                    conn = pool.connect(&self.host).await.map_err(Failure::Connect)?;
                }
                Err(Failure::Stale(e)) => return Err(Failure::Exchange(e.to_string())),
                Err(e) => return Err(e),
            }
        }
    }

    /// One try of [`Exchange::send`] on `conn`.
    async fn exchange_head<C>(
        &self,
        conn: &mut OriginConnection,
        client: &mut C,
        buf: &mut BytesMut,
        request_body: &mut Body,
    ) -> Result<(Vec<u8>, head::Response, usize), Failure>
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        conn.tcp
            .write_all(&self.request)
            .await
            .map_err(Failure::Stale)?;
        // Whatever is sent from here on cannot be sent again: a broken connection is an
        // exchange that failed.
        while !request_body.is_done() {
            if buf.is_empty() {
                buf.reserve(CLIENT_READ);
                match client.read_buf(buf).await {
                    Ok(0) | Err(_) => return Err(Failure::Client),
                    Ok(_) => {}
                }
            }
            let advance = request_body.advance(buf).map_err(|_| Failure::BadBody)?;
            conn.tcp
                .write_all(&buf[..advance.taken])
                .await
                .map_err(|e| Failure::Exchange(e.to_string()))?;
            buf.advance(advance.taken);
            self.origin.metrics.add_request_body_bytes(advance.payload);
        }
        let mut got_any = false;
        loop {
            if !conn.buf.is_empty() {
                got_any = true;
                let mut fields =
                    [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_RESPONSE_FIELDS];
                let mut resp = httparse::Response::new(&mut []);
                match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                    &mut resp,
                    &conn.buf,
                    &mut fields,
                ) {
                    Ok(httparse::Status::Complete(len)) => {
                        match resp.code {
                            Some(101) => return Err(Failure::Switched),
                            // Interim responses (103 Early Hints, an unasked 100) are not
                            // relayed, as hyper's client does not.
                            Some(100..=199) => {
                                conn.buf.advance(len);
                                continue;
                            }
                            _ => {}
                        }
                        let mut out = Vec::with_capacity(len + 64);
                        let response =
                            head::client_response(&mut out, &resp, self.is_head, self.keep_alive)
                                .map_err(|e| Failure::Exchange(e.to_string()))?;
                        return Ok((out, response, len));
                    }
                    Ok(httparse::Status::Partial) if conn.buf.len() < MAX_RESPONSE_HEAD => {}
                    Ok(httparse::Status::Partial) => {
                        return Err(Failure::Exchange("response head too large".into()));
                    }
                    Err(e) => return Err(Failure::Exchange(e.to_string())),
                }
            }
            conn.buf.reserve(pool::READ_BUFFER / 2);
            match conn.tcp.read_buf(&mut conn.buf).await {
                Ok(0) if !got_any => {
                    return Err(Failure::Stale(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(0) => return Err(Failure::Exchange("closed within the response head".into())),
                Err(e) if !got_any => return Err(Failure::Stale(e)),
                Err(e) => return Err(Failure::Exchange(e.to_string())),
                Ok(_) => {}
            }
        }
    }

    /// Writes the client's response head and relays the body; `conn` holds the origin's
    /// head (`response.2` bytes) and what followed it.
    async fn relay<C>(
        self,
        client: &mut C,
        mut conn: OriginConnection,
        (head, response, head_len): (Vec<u8>, head::Response, usize),
    ) -> Kept
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let origin = &*self.origin;
        origin
            .metrics
            .responded(response.status, self.start.elapsed());
        self.tally.counters.count(self.tally.line, response.status);
        let mut logged = Logged {
            entry: self.tally.log,
            status: response.status,
            bytes: 0,
        };
        conn.buf.advance(head_len);
        let mut body = Body::new(response.body);
        let Ok(first) = body.advance(&conn.buf) else {
            return Kept::Close;
        };
        if write_two(client, &head, &conn.buf[..first.taken])
            .await
            .is_err()
        {
            return Kept::Close;
        }
        conn.buf.advance(first.taken);
        logged.bytes += first.payload;
        origin.metrics.add_body_bytes(first.payload);
        while !body.is_done() {
            conn.buf.clear();
            conn.buf.reserve(pool::READ_BUFFER);
            let read =
                tokio::time::timeout(origin.read_timeout, conn.tcp.read_buf(&mut conn.buf)).await;
            match read {
                Ok(Ok(0)) if body.until_close() => return Kept::Close,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    tracing::debug!(origin = %self.host, "proxy: origin body cut off");
                    return Kept::Close;
                }
                Err(_) => {
                    tracing::debug!(origin = %self.host, "proxy: origin body read timed out");
                    return Kept::Close;
                }
                Ok(Ok(_)) => {}
            }
            let Ok(next) = body.advance(&conn.buf) else {
                return Kept::Close;
            };
            if client.write_all(&conn.buf[..next.taken]).await.is_err() {
                return Kept::Close;
            }
            conn.buf.advance(next.taken);
            logged.bytes += next.payload;
            origin.metrics.add_body_bytes(next.payload);
        }
        // Anything after the response is more than the origin should have sent.
        if response.origin_keeps && conn.buf.is_empty() {
            origin.pool.put(&self.host, conn);
        }
        if self.keep_alive && response.body != Framing::UntilClose {
            Kept::Open
        } else {
            Kept::Close
        }
    }

    /// Answers `failure` in the redirector's name; `request_done`: whether the request's
    /// body has been read whole (else the connection closes).
    async fn own_answer<C>(self, client: &mut C, failure: Failure, request_done: bool) -> Kept
    where
        C: AsyncWrite + Unpin,
    {
        let metrics = &self.origin.metrics;
        let (status, message) = match &failure {
            Failure::Connect(e) => {
                tracing::warn!(origin = %self.host, error = %e, "proxy: origin request failed");
                metrics.count(Event::UpstreamConnect);
                (
                    StatusCode::BAD_GATEWAY,
                    format!("cannot connect to the origin {}", self.host),
                )
            }
            Failure::Stale(_) | Failure::Exchange(_) => {
                let detail = match &failure {
                    Failure::Stale(e) => e.to_string(),
                    Failure::Exchange(e) => e.clone(),
                    _ => String::new(),
                };
                tracing::warn!(origin = %self.host, error = %detail, "proxy: origin request failed");
                metrics.count(Event::UpstreamResponse);
                (
                    StatusCode::BAD_GATEWAY,
                    format!("no valid response from the origin {}", self.host),
                )
            }
            Failure::Switched => (
                StatusCode::BAD_GATEWAY,
                format!("the origin {} switched protocols unasked", self.host),
            ),
            Failure::BadBody | Failure::Client => (
                StatusCode::BAD_REQUEST,
                "malformed chunked request body".to_string(),
            ),
        };
        self.answer(client, status, &message, request_done).await
    }

    /// Writes the redirector's own `status` with `message` (as the hyper pass-through's
    /// answers), counted and logged.
    async fn answer<C>(
        self,
        client: &mut C,
        status: StatusCode,
        message: &str,
        request_done: bool,
    ) -> Kept
    where
        C: AsyncWrite + Unpin,
    {
        let metrics = &self.origin.metrics;
        match status {
            StatusCode::BAD_GATEWAY => metrics.count(Event::BadGateway),
            StatusCode::GATEWAY_TIMEOUT => metrics.count(Event::GatewayTimeout),
            _ => {}
        }
        let code = status.as_u16();
        metrics.responded(code, self.start.elapsed());
        self.tally.counters.count(self.tally.line, code);
        let resp = plain(status, Bytes::from(format!("{OWN_NAME}: {message}\n")));
        let keep_alive = self.keep_alive && request_done;
        let mut out = Vec::with_capacity(256);
        write_response(&mut out, &resp, Version::HTTP_11, self.is_head, keep_alive);
        let bytes = if self.is_head {
            0
        } else {
            resp.body().len() as u64
        };
        metrics.add_body_bytes(bytes);
        let _logged = Logged {
            entry: self.tally.log,
            status: code,
            bytes,
        };
        match client.write_all(&out).await {
            Ok(()) if keep_alive => Kept::Open,
            _ => Kept::Close,
        }
    }
}

/// Writes `a` then `b` with as few calls as the socket takes.
async fn write_two<C: AsyncWrite + Unpin>(client: &mut C, a: &[u8], b: &[u8]) -> io::Result<()> {
    if b.is_empty() {
        return client.write_all(a).await;
    }
    let mut slices = [IoSlice::new(a), IoSlice::new(b)];
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = client.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}
