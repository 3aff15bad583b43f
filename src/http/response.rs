//! What a front-end's handler answers: a response made on the spot, or one still coming
//! (from the origin), and the body type both share.
//!
//! This module owns the response side of the [`super::Handler`] contract: [`Reply`], the
//! [`ResponseBody`] the listener sends (all at once, or streamed and logged when sent), and
//! the small plain-text answers every front-end gives itself (`/healthz`, errors). It does
//! not decide what to answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use super::access_log::{AccessLog, Entry, LoggedBody, OwnedEntry};
use crate::proxy::{BoxError, ProxyBody};

/// A request's response: made on the spot, or coming from the origin.
#[allow(
    clippy::large_enum_variant,
    reason = "boxing the ready response would cost every redirect an allocation"
)]
pub(crate) enum Reply {
    Ready(Response<ResponseBody>),
    PassThrough(Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>),
}

/// Logs a response made on the spot to `log` (if the log is on) and hands it out.
pub(crate) fn ready(resp: Response<Bytes>, entry: &Entry<'_>, log: Option<&AccessLog>) -> Reply {
    log_ready(&resp, entry, log);
    full(resp)
}

/// Logs a response made on the spot to `log`, if the log is on.
pub(crate) fn log_ready(resp: &Response<Bytes>, entry: &Entry<'_>, log: Option<&AccessLog>) {
    if let Some(log) = log {
        entry.emit(log, resp.status().as_u16(), resp.body().len() as u64);
    }
}

/// A response made on the spot (and logged), as hyper sends it.
pub(crate) fn full(resp: Response<Bytes>) -> Reply {
    Reply::Ready(resp.map(|b| ResponseBody::new(Inner::Full(Some(b).filter(|b| !b.is_empty())))))
}

/// A response from the origin, logged with `entry`'s request once its body has been sent
/// (`None`: the log is off).
pub(crate) fn streamed(
    resp: Response<ProxyBody>,
    entry: Option<OwnedEntry>,
) -> Response<ResponseBody> {
    let status = resp.status().as_u16();
    resp.map(|body| ResponseBody::new(Inner::Streamed(LoggedBody::new(body, entry, status))))
}

/// A plain-text, uncacheable response.
pub(crate) fn plain(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// The path load balancers probe, by address: answered by every front-end for a host it
/// does not serve (under a served host the path belongs to the site like any other).
pub(crate) const HEALTHZ: &str = "/healthz";

/// `200 ok`, the answer to [`HEALTHZ`].
pub(crate) fn healthz() -> Response<Bytes> {
    plain(StatusCode::OK, Bytes::from_static(b"ok\n"))
}

/// A response body: all of it at once, or the origin's, logged when it has been sent.
pub(crate) struct ResponseBody {
    inner: Inner,
    /// Whatever [`ResponseBody::hold`] was given.
    held: Option<Box<dyn Send>>,
}

enum Inner {
    Full(Option<Bytes>),
    Streamed(LoggedBody<ProxyBody>),
}

impl ResponseBody {
    fn new(inner: Inner) -> ResponseBody {
        ResponseBody { inner, held: None }
    }

    /// Keeps `guard` until the body has been sent or dropped (the listener counts a
    /// passed-through response as in flight until then).
    pub(crate) fn hold(&mut self, guard: impl Send + 'static) {
        self.held = Some(Box::new(guard));
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.inner {
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Streamed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(data) => data.is_none(),
            Inner::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Streamed(body) => body.size_hint(),
        }
    }
}
