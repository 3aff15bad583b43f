//! The redirector's request handling: from a request to its response, without a router.
//!
//! This module owns the decision for each request: read its host, find the rule covering
//! it, work out the client address and its line (through the same [`Live`] classifier the
//! DNS server uses), then redirect the client (the rule lists its line) or pass the request
//! through to the origin untouched (it does not: sending it back to `example.com` would
//! loop). Hosts no rule covers get 421, and `/healthz` under them answers load balancers,
//! which probe by address; under a covered host that path belongs to the site like any
//! other. Everything but the pass-through is answered on the spot, in the call that
//! receives the request. It does not accept connections or read PROXY headers
//! ([`crate::http`]), and the pass-through itself is [`crate::proxy`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::metrics::{Outcome, RedirectMetrics, RequestError};
use super::rules::{self, Lookup, Rules};
use crate::http::access_log::{AccessLog, Entry};
use crate::http::client_addr::{ClientAddress, client_address};
use crate::http::response::{self, HEALTHZ, Reply, plain, ready};
use crate::http::{Connection, Handler};
use crate::live::Live;
use crate::proxy::host;
use crate::proxy::{ClientInfo, Proxy};

/// Everything a request needs, shared by all connections.
pub(crate) struct App {
    pub rules: Rules,
    /// Read for the classifier: the one the DNS server and reloads use.
    pub live: Arc<Live>,
    /// Whom to believe about the client address.
    pub clients: ClientAddress,
    /// The pass-through to the origin, rewriting off.
    pub proxy: Proxy,
    /// Requests by how they were answered.
    pub metrics: Arc<RedirectMetrics>,
    /// One line per request; `None` when off.
    pub log: Option<Arc<AccessLog>>,
}

impl Handler for App {
    fn respond(&self, req: Request<Incoming>, conn: Connection) -> Reply {
        App::respond(self, req, conn)
    }
}

impl App {
    /// Answers `req`, which arrived on `conn`.
    pub(crate) fn respond(&self, req: Request<Incoming>, conn: Connection) -> Reply {
        let start = Instant::now();
        let client = client_address(conn.peer.ip(), req.headers(), &self.clients);
        let lookup = self.rules.lookup(authority(&req));
        let covered = match lookup {
            Ok(Lookup::Covered(c)) => c,
            _ if req.uri().path() == HEALTHZ => {
                self.metrics.count(Outcome::Local);
                self.metrics.local(200);
                return ready(
                    response::healthz(),
                    &entry(&req, client, "", start),
                    self.log.as_deref(),
                );
            }
            Err(e) => {
                let body = Bytes::from(format!("geoline redirect: {e}\n"));
                let resp = plain(StatusCode::BAD_REQUEST, body);
                self.metrics.count(Outcome::Local);
                self.metrics.local(400);
                self.metrics.error(RequestError::BadRequest);
                return ready(resp, &entry(&req, client, "", start), self.log.as_deref());
            }
            Ok(Lookup::NotCovered) => {
                let resp = plain(
                    StatusCode::MISDIRECTED_REQUEST,
                    Bytes::from_static(
                        b"geoline redirect: no redirect rule covers this host; \
                          this server only answers for the domains it is configured with\n",
                    ),
                );
                self.metrics.count(Outcome::Local);
                self.metrics.local(421);
                self.metrics.error(RequestError::Misdirected);
                return ready(resp, &entry(&req, client, "", start), self.log.as_deref());
            }
        };
        let classifier = self.live.classifier.load();
        let line_id = classifier.classify(client).line;
        let line = classifier.lines().name(line_id);
        let line_index = line_id.index();

        if covered.rule.redirects(line) {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let resp = rules::redirect(covered, path).unwrap_or_else(|e| {
                self.metrics.error(RequestError::BadRequest);
                let body = Bytes::from(format!("geoline redirect: {e}\n"));
                plain(StatusCode::BAD_REQUEST, body)
            });
            self.metrics.count(Outcome::Redirected);
            covered
                .rule
                .counters
                .count(line_index, resp.status().as_u16());
            return ready(resp, &entry(&req, client, line, start), self.log.as_deref());
        }

        let counters = covered.rule.counters.clone();
        let logged = self
            .log
            .as_ref()
            .map(|log| entry(&req, client, line, start).to_owned(log));
        drop(classifier);
        let mut req = req;
        req.extensions_mut().insert(ClientInfo {
            peer: conn.peer,
            tls: conn.tls,
            // Appended to, as nginx's $proxy_add_x_forwarded_for: the origin walks the
            // list from the right.
            keep_forwarded: true,
        });
        let proxy = self.proxy.clone();
        self.metrics.count(Outcome::PassedThrough);
        Reply::PassThrough(Box::pin(async move {
            // The pass-through's latency is its proxy's (`RedirectMetrics::upstream`).
            let resp = proxy.handle(req).await;
            counters.count(line_index, resp.status().as_u16());
            response::streamed(resp, logged)
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
