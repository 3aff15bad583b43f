//! The redirector's request handling: from a request to its response, without a router.
//!
//! This module owns the decision for each request: read its host, find the rule covering
//! it, work out the client address and its line (through the same [`Live`] classifier the
//! DNS server uses), then redirect the client (the rule lists its line) or pass the request
//! through to the origin untouched (it does not: sending it back to `example.com` would
//! loop). Hosts no rule covers get 421, and `/healthz` under them answers load balancers,
//! which probe by address; under a covered host that path belongs to the site like any
//! other. Everything but the pass-through is answered on the spot, in the call that
//! receives the request, and from the request head alone: the listener's own HTTP/1.1
//! path on plain connections asks for that answer first ([`Handler::respond_head`]), and
//! gets the pass-through to a plain-HTTP origin as an exchange it runs itself
//! ([`super::pass`]); what that path leaves to hyper (TLS listeners, an HTTPS origin, the
//! requests [`super::pass`] lists) is passed through by [`crate::proxy`]. It does not
//! accept connections or read PROXY headers ([`crate::http`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::Guard;
use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use super::metrics::{Outcome, RedirectMetrics, RequestError, RuleCounters};
use super::pass::{self, Exchange, Tally};
use super::rules::{self, Lookup, Rules};
use crate::http::access_log::{AccessLog, Entry};
use crate::http::client_addr::{ClientAddress, client_address};
use crate::http::framing::Framing;
use crate::http::http1::RequestHead;
use crate::http::request::RequestParts;
use crate::http::response::{self, HEALTHZ, Reply, log_ready, plain};
use crate::http::{Connection, Handler, HeadAnswer};
use crate::lines::{Classifier, LineId};
use crate::live::Live;
use crate::proxy::{ClientInfo, Proxy};

/// Everything a request needs, shared by all connections.
pub(crate) struct App {
    pub rules: Rules,
    /// Read for the classifier: the one the DNS server and reloads use.
    pub live: Arc<Live>,
    /// Whom to believe about the client address.
    pub clients: ClientAddress,
    /// The pass-through to the origin, rewriting off: hyper's.
    pub proxy: Proxy,
    /// The pass-through of the listener's own HTTP/1.1 path, when the origin is reached
    /// over plain HTTP.
    pub origin: Option<Arc<pass::Origin>>,
    /// Requests by how they were answered.
    pub metrics: Arc<RedirectMetrics>,
    /// One line per request; `None` when off.
    pub log: Option<Arc<AccessLog>>,
}

impl Handler for App {
    const OWN_HTTP1: bool = true;
    type Forward = Exchange;

    fn respond(&self, req: Request<Incoming>, conn: Connection) -> Reply {
        App::respond(self, req, conn)
    }

    fn respond_head(&self, head: &RequestHead<'_>, conn: Connection) -> HeadAnswer<Exchange> {
        let start = Instant::now();
        // A request with a body is answered here only by the pass-through, which relays
        // the body; any other answer to it is hyper's, which reads the body first.
        let local = head.body() == Framing::Empty;
        let pass = match self.decide(head, conn, start, local) {
            Decision::Local(resp) => return HeadAnswer::Local(resp),
            Decision::Elsewhere => return HeadAnswer::Hyper,
            Decision::PassThrough(pass) => pass,
        };
        let Some(origin) = self
            .origin
            .as_ref()
            .filter(|_| head.version() == Version::HTTP_11)
        else {
            return HeadAnswer::Hyper;
        };
        let Some(target) = self.proxy.pass_through_target(head.authority()) else {
            return HeadAnswer::Hyper;
        };
        let log = self.log.as_ref().map(|log| {
            let line = pass.classifier.lines().name(pass.line);
            entry(head, pass.client, line, start).to_owned(log)
        });
        self.metrics.count(Outcome::PassedThrough);
        let tally = Tally {
            counters: pass.counters,
            line: pass.line.index(),
            log,
        };
        HeadAnswer::Forward(origin.exchange(head, conn.peer, target, tally))
    }
}

/// What the redirector makes of a request head.
enum Decision {
    /// Answered on the spot: `/healthz`, a redirect, 400 or 421 (counted and logged).
    Local(Response<Bytes>),
    /// To be passed through to the origin (nothing counted or logged yet).
    PassThrough(PassThrough),
    /// Not answered on the spot when asked not to be (nothing counted or logged).
    Elsewhere,
}

/// A request for the origin: who asked, in which line, under which rule.
struct PassThrough {
    client: IpAddr,
    classifier: Guard<Arc<Classifier>>,
    line: LineId,
    counters: Arc<RuleCounters>,
}

impl App {
    /// Answers `req`, which arrived on `conn`.
    pub(crate) fn respond(&self, req: Request<Incoming>, conn: Connection) -> Reply {
        let start = Instant::now();
        let pass = match self.decide(&req, conn, start, true) {
            Decision::Local(resp) => return response::full(resp),
            Decision::PassThrough(pass) => pass,
            Decision::Elsewhere => unreachable!("asked to answer on the spot"),
        };
        let line_index = pass.line.index();
        let counters = pass.counters;
        let logged = self.log.as_ref().map(|log| {
            let line = pass.classifier.lines().name(pass.line);
            entry(&req, pass.client, line, start).to_owned(log)
        });
        drop(pass.classifier);
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

    /// Decides what `req`, which arrived on `conn` and whose head was read at `start`,
    /// gets; answers it on the spot when it can and `local` allows. The same for hyper's
    /// requests and the listener's own HTTP/1.1 path.
    fn decide<R: RequestParts>(
        &self,
        req: &R,
        conn: Connection,
        start: Instant,
        local: bool,
    ) -> Decision {
        let client = client_address(conn.peer.ip(), req, &self.clients);
        let log = self.log.as_deref();
        let lookup = self.rules.lookup(req.authority());
        let covered = match lookup {
            Ok(Lookup::Covered(c)) => c,
            _ if !local => return Decision::Elsewhere,
            _ if req.path() == HEALTHZ => {
                self.metrics.count(Outcome::Local);
                self.metrics.local(200);
                let resp = response::healthz();
                log_ready(&resp, &entry(req, client, "", start), log);
                return Decision::Local(resp);
            }
            Err(e) => {
                let body = Bytes::from(format!("geoline redirect: {e}\n"));
                let resp = plain(StatusCode::BAD_REQUEST, body);
                self.metrics.count(Outcome::Local);
                self.metrics.local(400);
                self.metrics.error(RequestError::BadRequest);
                log_ready(&resp, &entry(req, client, "", start), log);
                return Decision::Local(resp);
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
                log_ready(&resp, &entry(req, client, "", start), log);
                return Decision::Local(resp);
            }
        };
        let classifier = self.live.classifier.load();
        let line_id = classifier.classify(client).line;
        let line = classifier.lines().name(line_id);

        if covered.rule.redirects(line) {
            if !local {
                return Decision::Elsewhere;
            }
            let resp = rules::redirect(covered, req.path_and_query()).unwrap_or_else(|e| {
                self.metrics.error(RequestError::BadRequest);
                let body = Bytes::from(format!("geoline redirect: {e}\n"));
                plain(StatusCode::BAD_REQUEST, body)
            });
            self.metrics.count(Outcome::Redirected);
            covered
                .rule
                .counters
                .count(line_id.index(), resp.status().as_u16());
            log_ready(&resp, &entry(req, client, line, start), log);
            return Decision::Local(resp);
        }
        Decision::PassThrough(PassThrough {
            client,
            counters: covered.rule.counters.clone(),
            classifier,
            line: line_id,
        })
    }
}

fn entry<'a, R: RequestParts>(
    req: &'a R,
    client: IpAddr,
    line: &'a str,
    start: Instant,
) -> Entry<'a> {
    Entry {
        client,
        line,
        host: req.authority(),
        method: req.method(),
        path: req.path_and_query(),
        version: req.version(),
        start,
    }
}
