//! Response bodies: which are rewritten, and the decode → limit → rewrite → encode stream.
//!
//! This module owns the body side of a response: deciding from `Content-Type` and
//! `Content-Encoding` whether a body is rewritten at all, choosing the encoding the client
//! gets back from its `Accept-Encoding`, fixing the headers that describe the body
//! (`Content-Length`, `Content-Encoding`, `ETag`, `Vary`), the decompressed-size limit and
//! the idle read timeout. It does not find hosts in text ([`super::rewrite`]) and does not
//! touch other headers ([`super::headers`]).
//!
//! Bodies that are not rewritten are handed to the client frame by frame as they arrive,
//! never collected.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_compression::Level;
use async_compression::tokio::bufread as codec;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Full, StreamBody};
use tokio::io::AsyncRead;
use tokio::time::{Instant, Sleep};
use tokio_util::io::{ReaderStream, StreamReader};

use super::flate::{Deflate, Inflate, Wrapper};
use super::metrics::{BodyStage, ProxyMetrics};
use super::rewrite::{Rewriter, StreamRewriter};

/// The error type of every body the proxy produces.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Size of the pieces read out of a brotli or zstd decoder or encoder. Large pieces keep
/// per-chunk costs (polls, frames, syscalls) small next to the per-byte ones. (gzip and
/// deflate: [`super::flate`].)
const CHUNK: usize = 64 * 1024;

/// What went wrong inside a body after the status line was sent; the response is then cut
/// off, which the client sees as a truncated transfer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// A compressed body decoded to more than
    /// [`max_decompressed_bytes`](super::ProxyBuilder::max_decompressed_bytes): the guard
    /// against compression bombs.
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in decoded bytes.
        limit: u64,
    },
    /// The origin sent no byte of the body for this long
    /// ([`read_timeout`](super::ProxyBuilder::read_timeout)).
    #[error("origin sent nothing for {0:?}")]
    ReadTimeout(Duration),
}

/// A response body from the proxy: the origin's frames as they come, or the rewritten
/// stream. Usable wherever an `http_body::Body<Data = Bytes>` is.
pub struct ProxyBody {
    inner: UnsyncBoxBody<Bytes, BoxError>,
    counter: Option<Arc<ProxyMetrics>>,
}

impl ProxyBody {
    fn new(inner: UnsyncBoxBody<Bytes, BoxError>) -> ProxyBody {
        ProxyBody {
            inner,
            counter: None,
        }
    }

    /// A body of fixed bytes (error pages, tests).
    pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        ProxyBody::new(
            Full::new(bytes.into())
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
    }

    /// Adds the bytes of every data frame to `metrics` as they are handed on.
    pub(crate) fn counted(mut self, metrics: Arc<ProxyMetrics>) -> ProxyBody {
        self.counter = Some(metrics);
        self
    }

    /// A body with no bytes (`HEAD`, `204`, `304` and the like).
    pub fn empty() -> ProxyBody {
        ProxyBody::full(Bytes::new())
    }

    pub(crate) fn from_body<B>(body: B) -> ProxyBody
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ProxyBody::new(body.map_err(Into::into).boxed_unsync())
    }

    fn from_stream(stream: ByteStream) -> ProxyBody {
        ProxyBody::new(
            BodyExt::map_err(StreamBody::new(stream.map_ok(Frame::data)), BoxError::from)
                .boxed_unsync(),
        )
    }
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBody").finish_non_exhaustive()
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let (Some(m), Some(Ok(f))) = (&self.counter, &frame)
            && let Some(data) = f.data_ref()
        {
            m.add_body_bytes(data.len() as u64);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A content coding the proxy can decode and produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (also accepted as `x-gzip`).
    Gzip,
    /// `deflate` in HTTP is the zlib format (RFC 9110 8.4.1.2).
    Deflate,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    fn parse(token: &str) -> Option<Coding> {
        let t = token.trim();
        [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd]
            .into_iter()
            .find(|c| t.eq_ignore_ascii_case(c.token()))
            .or_else(|| t.eq_ignore_ascii_case("x-gzip").then_some(Coding::Gzip))
    }
}

/// How one response body is handled when it is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The origin's coding, undone before rewriting.
    pub decode: Option<Coding>,
    /// The coding the client gets.
    pub encode: Option<Coding>,
}

/// `type/subtype` of a `Content-Type`, lower case, without parameters.
fn essence(content_type: Option<&HeaderValue>) -> Option<String> {
    let ct = content_type?.to_str().ok()?;
    Some(
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether a `Content-Type` is text the rewriter should see.
pub(crate) fn is_textual(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind == "text"
        || sub.ends_with("+json")
        || sub.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/json"
                | "application/xml"
                | "application/xhtml+xml"
                | "image/svg+xml"
        )
}

/// The rewrite plan for a response, or `None` when its body must pass untouched: not
/// textual, or encoded in a way the proxy cannot undo (an unknown or stacked coding).
pub(crate) fn plan(response: &HeaderMap, accept_encoding: Option<&HeaderValue>) -> Option<Plan> {
    if !is_textual(response.get(header::CONTENT_TYPE)) {
        return None;
    }
    let mut codings = Vec::new();
    for v in response.get_all(header::CONTENT_ENCODING) {
        for token in v.to_str().ok()?.split(',') {
            let t = token.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("identity") {
                continue;
            }
            codings.push(Coding::parse(t)?);
        }
    }
    let decode = match codings.as_slice() {
        [] => None,
        [c] => Some(*c),
        _ => return None,
    };
    // An event stream must reach the client event by event; a compressor holds its input
    // until a block fills, so events go back uncompressed (always acceptable).
    let streaming =
        essence(response.get(header::CONTENT_TYPE)).as_deref() == Some("text/event-stream");
    let encode = match decode {
        Some(origin) if !streaming => choose_coding(accept_encoding, origin),
        _ => None,
    };
    Some(Plan { decode, encode })
}

/// The coding to send back: the origin's own if the client accepts it (it normally does,
/// since its `Accept-Encoding` went to the origin unchanged), else another the client
/// accepts, else none. A request without `Accept-Encoding` gets identity: RFC 9110 would
/// allow any coding, but clients that send none (curl, scripts) expect plain bytes.
fn choose_coding(accept: Option<&HeaderValue>, origin: Coding) -> Option<Coding> {
    let accept = accept.and_then(|v| v.to_str().ok())?;
    let q_of = |c: Coding| -> f32 {
        let mut star = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if Coding::parse(name) == Some(c) {
                return q;
            }
            if name == "*" {
                star = Some(q);
            }
        }
        star.unwrap_or(0.0)
    };
    [
        origin,
        Coding::Gzip,
        Coding::Brotli,
        Coding::Zstd,
        Coding::Deflate,
    ]
    .into_iter()
    .find(|&c| q_of(c) > 0.0)
}

/// Fixes the headers that describe a body that is about to change.
pub(crate) fn apply_plan_headers(headers: &mut HeaderMap, plan: Plan) {
    headers.remove(header::CONTENT_LENGTH);
    // Transfer codings are hop-by-hop and already gone; only content codings remain here.
    headers.remove(header::CONTENT_ENCODING);
    if let Some(c) = plan.encode {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(c.token()),
        );
    }
    if plan.decode.is_some() {
        let varies = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case("accept-encoding"));
        if !varies {
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    super::headers::weaken_etag(headers);
}

/// The DEFLATE compression level (1 to 9) of rewritten bodies re-encoded as gzip or
/// deflate for the client.
///
/// The default is 1, nginx's `gzip_comp_level` default (what `gzip on` gives): the proxy
/// compresses every rewritten response anew, per request, so speed matters more than the
/// last few percent of size. Higher levels cost more CPU per byte for smaller bodies (with
/// the zlib-rs backend, level 1 is its fast "quick" strategy; 6 is zlib's usual default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GzipLevel(u8);

impl GzipLevel {
    /// Level 1, the default: the fastest.
    pub const FASTEST: GzipLevel = GzipLevel(1);
    /// Level 9: the smallest bodies, the most CPU.
    pub const SMALLEST: GzipLevel = GzipLevel(9);

    /// `level` if it is 1 to 9 (0, "stored", would send bodies uncompressed under a
    /// `Content-Encoding` that promises otherwise).
    pub fn new(level: u32) -> Option<GzipLevel> {
        u8::try_from(level)
            .ok()
            .filter(|l| (1..=9).contains(l))
            .map(GzipLevel)
    }

    /// The level, 1 to 9.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for GzipLevel {
    fn default() -> GzipLevel {
        GzipLevel::FASTEST
    }
}

/// Limits on reading a body from the origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub read_timeout: Duration,
    pub max_decompressed: u64,
}

/// Why a rewritten body could not even start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyStartError {
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("origin body cannot be read or decoded: {0}")]
    Broken(io::Error),
}

/// The origin's body untouched, with only the idle read timeout added.
pub(crate) fn passthrough<B>(body: B, limits: Limits) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    ProxyBody::from_body(TimedBody::new(body, limits.read_timeout))
}

/// The rewritten body. The first decoded piece is read before returning, so that a body that
/// does not decode, or is already past the limit, becomes a 502 instead of a truncated 200.
pub(crate) async fn rewritten<B>(
    body: B,
    plan: Plan,
    rewriter: &Arc<Rewriter>,
    limits: Limits,
    gzip_level: GzipLevel,
    metrics: &Arc<ProxyMetrics>,
) -> Result<ProxyBody, BodyStartError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let raw: ByteStream = Box::pin(Staged::new(
        BodyDataStream::new(TimedBody::new(body, limits.read_timeout)).map_err(io::Error::other),
        None,
        metrics,
    ));
    let mut decoded: ByteStream = match plan.decode {
        None => raw,
        Some(c) => Box::pin(Staged::new(
            Limit {
                inner: decode(raw, c),
                seen: 0,
                limit: limits.max_decompressed,
            },
            Some(BodyStage::Decode),
            metrics,
        )),
    };
    let first = match decoded.next().await {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            if let Some(BodyError::TooLarge { limit }) = e.get_ref().and_then(|r| r.downcast_ref())
            {
                return Err(BodyStartError::TooLarge { limit: *limit });
            }
            return Err(BodyStartError::Broken(e));
        }
        None => None,
    };
    let decoded: ByteStream = Box::pin(futures_util::stream::iter(first.map(Ok)).chain(decoded));
    let rewritten: ByteStream = Box::pin(Staged::new(
        Rewriting {
            inner: decoded,
            state: rewriter.stream(),
            finished: false,
            metrics: Arc::clone(metrics),
        },
        Some(BodyStage::Rewrite),
        metrics,
    ));
    let out = match plan.encode {
        None => rewritten,
        Some(c) => Box::pin(Staged::new(
            encode(rewritten, c, gzip_level),
            Some(BodyStage::Encode),
            metrics,
        )),
    };
    Ok(ProxyBody::from_stream(out))
}

fn reader_stream<R: AsyncRead + Send + 'static>(r: R) -> ByteStream {
    Box::pin(ReaderStream::with_capacity(r, CHUNK))
}

/// gzip and deflate by [`flate`]'s stages, brotli and zstd by async-compression's readers.
fn decode(input: ByteStream, coding: Coding) -> ByteStream {
    match coding {
        Coding::Gzip => Box::pin(Inflate::new(input, Wrapper::Gzip)),
        Coding::Deflate => Box::pin(Inflate::new(input, Wrapper::Zlib)),
        Coding::Brotli => reader_stream(codec::BrotliDecoder::new(StreamReader::new(input))),
        Coding::Zstd => {
            let mut d = codec::ZstdDecoder::new(StreamReader::new(input));
            d.multiple_members(true);
            reader_stream(d)
        }
    }
}

/// Re-encoding favours speed: the proxy compresses every response anew, where the origin
/// may have compressed once and cached. gzip and deflate at `gzip_level` ([`GzipLevel`]),
/// brotli and zstd at fixed fast levels.
fn encode(input: ByteStream, coding: Coding, gzip_level: GzipLevel) -> ByteStream {
    let level = gzip_level.get();
    match coding {
        Coding::Gzip => Box::pin(Deflate::new(input, Wrapper::Gzip, level)),
        Coding::Deflate => Box::pin(Deflate::new(input, Wrapper::Zlib, level)),
        Coding::Brotli => reader_stream(codec::BrotliEncoder::with_quality(
            StreamReader::new(input),
            Level::Precise(4),
        )),
        Coding::Zstd => reader_stream(codec::ZstdEncoder::with_quality(
            StreamReader::new(input),
            Level::Precise(1),
        )),
    }
}

/// Cuts a decoded stream off past `limit` bytes: a small compressed body can expand to
/// gigabytes.
struct Limit {
    inner: ByteStream,
    seen: u64,
    limit: u64,
}

impl Stream for Limit {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.seen > self.limit {
            return Poll::Ready(None);
        }
        let item = ready!(self.inner.as_mut().poll_next(cx));
        if let Some(Ok(b)) = &item {
            self.seen += b.len() as u64;
            if self.seen > self.limit {
                tracing::warn!(
                    limit = self.limit,
                    "proxy: decompressed body over the limit, cut off"
                );
                let limit = self.limit;
                return Poll::Ready(Some(Err(io::Error::other(BodyError::TooLarge { limit }))));
            }
        }
        Poll::Ready(item)
    }
}

thread_local! {
    /// Time spent in [`Staged`] streams polled from within the one being polled on this
    /// thread: the stages of a body are nested polls, and each counts only its own time.
    static NESTED_NANOS: Cell<u64> = const { Cell::new(0) };
}

/// One stage of a rewritten body's pipeline, adding the time its own polls take (those of
/// the stages it polls taken out) to `stage`'s counter; a stage of `None` is only taken
/// out of the stage above it (reading the origin's body).
struct Staged<S> {
    inner: S,
    stage: Option<BodyStage>,
    metrics: Arc<ProxyMetrics>,
}

impl<S> Staged<S> {
    fn new(inner: S, stage: Option<BodyStage>, metrics: &Arc<ProxyMetrics>) -> Staged<S> {
        Staged {
            inner,
            stage,
            metrics: Arc::clone(metrics),
        }
    }
}

impl<S: Stream + Unpin> Stream for Staged<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let outer = NESTED_NANOS.get();
        NESTED_NANOS.set(0);
        let start = std::time::Instant::now();
        let item = Pin::new(&mut self.inner).poll_next(cx);
        let total = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let nested = NESTED_NANOS.get();
        NESTED_NANOS.set(outer.saturating_add(total));
        if let Some(stage) = self.stage {
            let own = Duration::from_nanos(total.saturating_sub(nested));
            self.metrics.add_body_time(stage, own);
        }
        item
    }
}

/// Feeds a stream through a [`StreamRewriter`], flushing what it holds back at the end.
struct Rewriting {
    inner: ByteStream,
    state: StreamRewriter,
    finished: bool,
    /// Told how many hosts were replaced when the body ends or is dropped.
    metrics: Arc<ProxyMetrics>,
}

impl Drop for Rewriting {
    fn drop(&mut self) {
        self.metrics.add_replacements(self.state.replaced());
    }
}

impl Stream for Rewriting {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            match ready!(self.inner.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => {
                    let out = self.state.push(chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Some(Err(e)) => {
                    self.finished = true;
                    tracing::warn!(error = %e, "proxy: rewritten response cut off");
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    self.finished = true;
                    let out = self.state.finish();
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
            }
        }
    }
}

/// A body that fails when the origin sends nothing for `timeout`.
struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    /// Set the first time the origin has nothing ready: a body that is all there when it is
    /// read (most small ones) costs no timer and no clock reading.
    timer: Option<Stall>,
}

/// The timer of a body that has had to wait for the origin.
struct Stall {
    /// When the origin last sent something, or the wait began.
    last: Instant,
    /// Re-armed lazily from `last` when it fires, rather than reset on every frame.
    sleep: Pin<Box<Sleep>>,
}

impl<B> TimedBody<B> {
    fn new(inner: B, timeout: Duration) -> TimedBody<B> {
        TimedBody {
            inner,
            timeout,
            timer: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(timer) = &mut this.timer {
                timer.last = Instant::now();
            }
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let timer = this.timer.get_or_insert_with(|| {
            let last = Instant::now();
            Stall {
                last,
                sleep: Box::pin(tokio::time::sleep_until(last + timeout)),
            }
        });
        loop {
            ready!(timer.sleep.as_mut().poll(cx));
            let deadline = timer.last + timeout;
            if deadline <= Instant::now() {
                tracing::warn!(timeout = ?timeout, "proxy: origin body stalled, cut off");
                return Poll::Ready(Some(Err(BodyError::ReadTimeout(timeout).into())));
            }
            timer.sleep.as_mut().reset(deadline);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_all_there_arms_no_timer() {
        let mut body = TimedBody::new(Full::new(Bytes::from_static(b"x")), Duration::from_secs(1));
        let frame = body.frame().await.expect("a frame").expect("data");
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"x")));
        assert!(body.frame().await.is_none());
        assert!(body.timer.is_none());
    }

    #[tokio::test]
    async fn a_body_that_waits_is_cut_off_after_the_timeout() {
        let never = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        let mut body = TimedBody::new(never, Duration::from_millis(50));
        let started = Instant::now();
        let err = body.frame().await.expect("an end").expect_err("a timeout");
        assert!(body.timer.is_some());
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(err.to_string(), "origin sent nothing for 50ms");
    }

    #[test]
    fn gzip_levels_one_to_nine_only() {
        assert_eq!(GzipLevel::default(), GzipLevel::FASTEST);
        assert_eq!(GzipLevel::new(1), Some(GzipLevel::FASTEST));
        assert_eq!(GzipLevel::new(9), Some(GzipLevel::SMALLEST));
        assert_eq!(GzipLevel::new(5).map(GzipLevel::get), Some(5));
        for bad in [0, 10, 256, 257, u32::MAX] {
            assert_eq!(GzipLevel::new(bad), None, "{bad}");
        }
    }

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn textual_types() {
        for t in [
            "text/html; charset=utf-8",
            "TEXT/CSS",
            "application/javascript",
            "application/json",
            "application/ld+json",
            "application/atom+xml",
            "image/svg+xml",
            "application/xml",
        ] {
            assert!(is_textual(Some(&hv(t))), "{t}");
        }
        for t in [
            "image/png",
            "application/octet-stream",
            "font/woff2",
            "video/mp4",
            "json",
        ] {
            assert!(!is_textual(Some(&hv(t))), "{t}");
        }
        assert!(!is_textual(None));
    }

    fn headers(ct: &'static str, ce: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, hv(ct));
        if let Some(ce) = ce {
            h.insert(header::CONTENT_ENCODING, hv(ce));
        }
        h
    }

    #[test]
    fn plans_follow_the_client() {
        let html = |ce| headers("text/html", ce);
        assert_eq!(plan(&headers("image/png", None), None), None);
        assert_eq!(
            plan(&html(None), Some(&hv("gzip"))),
            Some(Plan {
                decode: None,
                encode: None
            })
        );
        assert_eq!(
            plan(&html(Some("gzip")), Some(&hv("gzip, deflate, br"))),
            Some(Plan {
                decode: Some(Coding::Gzip),
                encode: Some(Coding::Gzip)
            })
        );
        assert_eq!(
            plan(&html(Some("br")), Some(&hv("gzip"))),
            Some(Plan {
                decode: Some(Coding::Brotli),
                encode: Some(Coding::Gzip)
            })
        );
        assert_eq!(
            plan(&html(Some("br")), Some(&hv("br;q=0, gzip;q=0"))),
            Some(Plan {
                decode: Some(Coding::Brotli),
                encode: None
            })
        );
        assert_eq!(
            plan(&html(Some("zstd")), Some(&hv("*"))),
            Some(Plan {
                decode: Some(Coding::Zstd),
                encode: Some(Coding::Zstd)
            })
        );
        assert_eq!(
            plan(&html(Some("gzip")), None),
            Some(Plan {
                decode: Some(Coding::Gzip),
                encode: None
            })
        );
        assert_eq!(plan(&html(Some("compress")), Some(&hv("*"))), None);
        assert_eq!(
            plan(
                &headers("text/event-stream", Some("gzip")),
                Some(&hv("gzip"))
            ),
            Some(Plan {
                decode: Some(Coding::Gzip),
                encode: None
            })
        );
        assert_eq!(plan(&html(Some("gzip, br")), Some(&hv("*"))), None);
    }

    #[test]
    fn plan_headers() {
        let mut h = headers("text/html", Some("br"));
        h.insert(header::CONTENT_LENGTH, hv("123"));
        h.insert(header::ETAG, hv("\"x\""));
        apply_plan_headers(
            &mut h,
            Plan {
                decode: Some(Coding::Brotli),
                encode: Some(Coding::Gzip),
            },
        );
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        assert_eq!(h[header::ETAG], "W/\"x\"");
        assert_eq!(h[header::VARY], "accept-encoding");
        assert!(!h.contains_key(header::CONTENT_LENGTH));
    }
}
