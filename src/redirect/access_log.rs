//! The access log: one JSON line per request, the record a mainland operator must keep.
//!
//! This module owns what a line holds (time, client address, line, host, method, path,
//! status, bytes, duration) and how it is written: as a `tracing` event with the target
//! [`TARGET`], which [`layer`] formats as flat JSON and which the ordinary log leaves out.
//! A response whose size is known is logged when it is made; a passed-through one when its
//! body has been sent (or abandoned), so that bytes and duration are what went out. It does
//! not decide anything about requests.

use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Version};
use http_body::{Body, Frame, SizeHint};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;

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
        tracing::info!(
            target: TARGET,
            client = %self.client,
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
        cx: &mut Context<'_>,
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
/// line (`{"timestamp":…,"client":…,"line":…,…}`), written to `writer`.
pub fn layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_level(false)
        .with_writer(writer)
        .with_filter(filter_fn(|meta| meta.target() == TARGET))
}
