//! The redirector's request handling: from a request to its response, without a router.
//!
//! This module owns the decision for each request: read its host, find the rule covering
//! it, work out the client address and its line (through the same [`Live`] classifier the
//! DNS server uses), then redirect the client (the rule lists its line) or pass the request
//! through to the origin untouched (it does not: sending it back to `example.com` would
//! loop). Hosts no rule covers get 421. `/healthz` answers load balancers, which probe by
//! address; under a covered host that path belongs to the site like any other. Everything
//! but the pass-through is answered on the spot, in the call that receives the request. It
//! does not accept connections or read PROXY headers ([`super::listener`]), and the
//! pass-through itself is [`crate::proxy`].

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use super::access_log::{Entry, LoggedBody};
use super::client_addr::{TrustedProxies, client_address};
use super::config::ClientIpHeader;
use super::metrics::{Outcome, RedirectMetrics};
use super::rules::{self, Lookup, Rules};
use crate::live::Live;
use crate::proxy::host;
use crate::proxy::{BoxError, ClientInfo, Proxy, ProxyBody};

/// What the listener knows about a request's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Connection {
    /// The socket peer, or the source a trusted proxy gave in a PROXY protocol header.
    pub peer: SocketAddr,
    pub tls: bool,
}

/// Everything a request needs, shared by all connections.
pub(crate) struct App {
    pub rules: Rules,
    /// Read for the classifier: the one the DNS server and reloads use.
    pub live: Arc<Live>,
    pub trusted: TrustedProxies,
    pub client_ip_header: ClientIpHeader,
    /// The pass-through to the origin, rewriting off.
    pub proxy: Proxy,
    /// Requests by how they were answered.
    pub metrics: Arc<RedirectMetrics>,
}

/// A request's response: made on the spot, or coming from the origin.
#[allow(
    clippy::large_enum_variant,
    reason = "boxing the ready response would cost every redirect an allocation"
)]
pub(crate) enum Reply {
    Ready(Response<ResponseBody>),
    PassThrough(Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>),
}

impl App {
    /// Answers `req`, which arrived on `conn`.
    pub(crate) fn respond<B>(&self, req: Request<B>, conn: Connection) -> Reply
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let start = Instant::now();
        let client = client_address(
            conn.peer.ip(),
            req.headers(),
            self.client_ip_header,
            &self.trusted,
        );
        let lookup = self.rules.lookup(authority(&req));
        let covered = match lookup {
            Ok(Lookup::Covered(c)) => c,
            _ if req.uri().path() == "/healthz" => {
                let resp = rules::plain(StatusCode::OK, Bytes::from_static(b"ok\n"));
                self.metrics.count(Outcome::Local);
                return ready(resp, &entry(&req, client, "", start));
            }
            Err(e) => {
                let body = Bytes::from(format!("geoline redirect: {e}\n"));
                let resp = rules::plain(StatusCode::BAD_REQUEST, body);
                self.metrics.count(Outcome::Local);
                return ready(resp, &entry(&req, client, "", start));
            }
            Ok(Lookup::NotCovered) => {
                let resp = rules::plain(
                    StatusCode::MISDIRECTED_REQUEST,
                    Bytes::from_static(
                        b"geoline redirect: no redirect rule covers this host; \
                          this server only answers for the domains it is configured with\n",
                    ),
                );
                self.metrics.count(Outcome::Local);
                return ready(resp, &entry(&req, client, "", start));
            }
        };
        let classifier = self.live.classifier.load();
        let line = classifier.lines().name(classifier.classify(client).line);

        if covered.rule.redirects(line) {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let resp = rules::redirect(covered, path).unwrap_or_else(|e| {
                let body = Bytes::from(format!("geoline redirect: {e}\n"));
                rules::plain(StatusCode::BAD_REQUEST, body)
            });
            self.metrics.count(Outcome::Redirected);
            return ready(resp, &entry(&req, client, line, start));
        }

        let logged = entry(&req, client, line, start).to_owned();
        drop(classifier);
        let mut req = req;
        req.extensions_mut().insert(ClientInfo {
            peer: conn.peer,
            tls: conn.tls,
        });
        let proxy = self.proxy.clone();
        self.metrics.count(Outcome::PassedThrough);
        Reply::PassThrough(Box::pin(async move {
            let resp = proxy.handle(req).await;
            let status = resp.status().as_u16();
            resp.map(|body| {
                ResponseBody::new(Inner::Streamed(LoggedBody::new(body, logged, status)))
            })
        }))
    }
}

/// The host a request names: the URI's authority (HTTP/2, absolute-form), else `Host`.
fn authority<B>(req: &Request<B>) -> &str {
    host::request_authority(req).unwrap_or("")
}

fn entry<'a, B>(req: &'a Request<B>, client: IpAddr, line: &'a str, start: Instant) -> Entry<'a> {
    Entry {
        client,
        line,
        host: authority(req),
        method: req.method(),
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        version: req.version(),
        start,
    }
}

/// Logs a response made on the spot and hands it out.
fn ready(resp: Response<Bytes>, entry: &Entry<'_>) -> Reply {
    entry.emit(resp.status().as_u16(), resp.body().len() as u64);
    Reply::Ready(resp.map(|b| ResponseBody::new(Inner::Full(Some(b).filter(|b| !b.is_empty())))))
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
