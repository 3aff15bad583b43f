//! The redirector's request handling, as an axum [`Router`].
//!
//! This module owns the decision for each request: read its host, find the rule covering
//! it, work out the client address and its line (through the same [`ClassifierHandle`] the
//! DNS server uses), then redirect the client (the rule lists its line) or pass the request
//! through to the origin untouched (it does not: sending it back to `example.com` would
//! loop). Hosts no rule covers get 421. `GET /healthz` answers load balancers, which probe
//! by address; under a covered host that path belongs to the site like any other. It does
//! not accept connections or read PROXY headers ([`super::listener`]), and the pass-through
//! itself is [`crate::proxy`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::routing::any;
use http::header::HOST;
use http::{Response, StatusCode};

use super::access_log::{Entry, LoggedBody};
use super::client_addr::{TrustedProxies, client_address};
use super::rules::{self, Lookup, Rules};
use crate::config::ClientIpHeader;
use crate::lines::ClassifierHandle;
use crate::proxy::{ClientInfo, Proxy};

/// What the listener knows about a request's connection; it inserts this into every
/// request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The socket peer, or the source a trusted proxy gave in a PROXY protocol header.
    pub peer: SocketAddr,
    pub tls: bool,
}

/// Marks a response whose body streams from elsewhere (the origin), so that the listener
/// keeps the connection counted busy until the body is sent, not just until the head is.
#[derive(Debug, Clone, Copy)]
pub struct Streaming;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub rules: Rules,
    pub classifier: Arc<ClassifierHandle>,
    pub trusted: TrustedProxies,
    pub client_ip_header: ClientIpHeader,
    /// The pass-through to the origin, rewriting off.
    pub proxy: Proxy,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", any(healthz))
        .fallback(handle)
        .with_state(app)
}

async fn healthz(State(app): State<Arc<App>>, req: Request) -> Response<Body> {
    if matches!(app.rules.lookup(authority(&req)), Ok(Lookup::Covered(_))) {
        return handle(State(app), req).await;
    }
    let start = Instant::now();
    let resp = rules::plain(StatusCode::OK, "ok\n");
    entry(&req, client(&app, &req), "", start).emit(200, 3);
    resp
}

/// The host a request names: the URI's authority (HTTP/2, absolute-form), else `Host`.
fn authority(req: &Request) -> &str {
    match req.uri().authority() {
        Some(a) => a.as_str(),
        None => req
            .headers()
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    }
}

fn peer(req: &Request) -> Option<Connection> {
    req.extensions().get::<Connection>().copied()
}

fn client(app: &App, req: &Request) -> IpAddr {
    // Without a listener's Connection (the router mounted elsewhere) nothing is known of
    // the client; the unspecified address falls in the default line.
    let peer = peer(req).map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.peer.ip());
    client_address(peer, req.headers(), app.client_ip_header, &app.trusted)
}

fn entry<'a>(req: &'a Request, client: IpAddr, line: &'a str, start: Instant) -> Entry<'a> {
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

fn emit(resp: Response<Body>, entry: &Entry<'_>) -> Response<Body> {
    let bytes = http_body::Body::size_hint(resp.body()).exact().unwrap_or(0);
    entry.emit(resp.status().as_u16(), bytes);
    resp
}

async fn handle(State(app): State<Arc<App>>, mut req: Request) -> Response<Body> {
    let start = Instant::now();
    let client = client(&app, &req);
    let covered = match app.rules.lookup(authority(&req)) {
        Err(e) => {
            let resp = rules::plain(StatusCode::BAD_REQUEST, format!("geoline redirect: {e}\n"));
            return emit(resp, &entry(&req, client, "", start));
        }
        Ok(Lookup::NotCovered) => {
            let resp = rules::plain(
                StatusCode::MISDIRECTED_REQUEST,
                "geoline redirect: no redirect rule covers this host; \
                 this server only answers for the domains it is configured with\n",
            );
            return emit(resp, &entry(&req, client, "", start));
        }
        Ok(Lookup::Covered(c)) => c,
    };
    let classifier = app.classifier.load();
    let line = classifier.lines().name(classifier.classify(client).line);

    if covered.rule.redirects(line) {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let resp = match rules::location(covered, path) {
            Ok(location) => rules::redirect_response(covered.rule, &location),
            Err(e) => rules::plain(StatusCode::BAD_REQUEST, format!("geoline redirect: {e}\n")),
        };
        return emit(resp, &entry(&req, client, line, start));
    }

    let logged = entry(&req, client, line, start).to_owned();
    drop(classifier);
    if let Some(conn) = peer(&req) {
        req.extensions_mut().insert(ClientInfo {
            peer: conn.peer,
            tls: conn.tls,
        });
    }
    let resp = app.proxy.handle(req).await;
    let status = resp.status().as_u16();
    let mut resp = resp.map(|b| Body::new(LoggedBody::new(b, logged, status)));
    resp.extensions_mut().insert(Streaming);
    resp
}
