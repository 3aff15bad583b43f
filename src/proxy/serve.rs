//! Serving the proxy on the shared HTTP front-end ([`crate::http`]): `[proxy]` of
//! `geoline serve`, and [`serve_proxy`] for library users and the examples.
//!
//! This module owns the proxy's [`Handler`]: each request's client address (behind trusted
//! proxies, as the redirector reads it), its [`ClientInfo`], `/healthz` for hosts it does
//! not serve, and its access-log line. Connections, TLS, PROXY headers and limits are the
//! front-end's.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::Request;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::{IncomingForwarded, ProxyConfig};
use super::host;
use super::service::{ClientInfo, Proxy};
use crate::http::access_log::{AccessLog, Entry};
use crate::http::client_addr::{ClientAddress, TrustedProxies, client_address};
use crate::http::config::ClientIpHeader;
use crate::http::listener::{self, Limits, Listener};
use crate::http::metrics::ListenerMetrics;
use crate::http::response::{self, HEALTHZ, Reply, ready};
use crate::http::{Connection, Handler};

/// How long open connections get to finish their requests after `shutdown` resolves.
pub const DRAIN_TIMEOUT: std::time::Duration = listener::DRAIN_TIMEOUT;

/// The proxy behind a front-end.
pub(crate) struct ProxyApp {
    pub(crate) proxy: Proxy,
    /// Whom to believe about the client address.
    pub(crate) clients: ClientAddress,
    /// Whether a request's own forwarding headers reach the origin.
    pub(crate) incoming: IncomingForwarded,
    /// One line per request; `None` when off.
    pub(crate) log: Option<Arc<AccessLog>>,
}

impl Handler for ProxyApp {
    type Forward = crate::http::NoForward;

    fn respond(&self, mut req: Request<Incoming>, conn: Connection) -> Reply {
        let start = Instant::now();
        let client = client_address(conn.peer.ip(), req.headers(), &self.clients);
        let authority = host::request_authority(&req).unwrap_or("");
        if req.uri().path() == HEALTHZ && !self.proxy.serves(authority) {
            return ready(
                response::healthz(),
                &entry(&req, client, start),
                self.log.as_deref(),
            );
        }
        let logged = self
            .log
            .as_ref()
            .map(|log| entry(&req, client, start).to_owned(log));
        let keep_forwarded = match self.incoming {
            IncomingForwarded::TrustedProxies => self.clients.trusted.contains(conn.peer.ip()),
            IncomingForwarded::Keep => true,
            IncomingForwarded::Replace => false,
        };
        req.extensions_mut().insert(ClientInfo {
            peer: conn.peer,
            tls: conn.tls,
            keep_forwarded,
        });
        let proxy = self.proxy.clone();
        Reply::PassThrough(Box::pin(async move {
            response::streamed(proxy.handle(req).await, logged)
        }))
    }
}

/// The access-log fields of a proxied request (no line: the proxy does not classify).
fn entry<B>(req: &Request<B>, client: IpAddr, start: Instant) -> Entry<'_> {
    Entry {
        client,
        line: "",
        host: host::request_authority(req).unwrap_or(""),
        method: req.method(),
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        version: req.version(),
        start,
    }
}

/// `[proxy]`'s request handling: `proxy` (built from `config`), logging to `log`; what
/// `start` serves, and what a configuration reload builds anew.
pub(crate) fn app(config: &ProxyConfig, proxy: Proxy, log: Option<Arc<AccessLog>>) -> ProxyApp {
    ProxyApp {
        proxy,
        clients: ClientAddress {
            trusted: TrustedProxies::new(&config.front.trusted_proxies),
            header: config.front.client_ip_header,
        },
        incoming: config.incoming_forwarded,
        log,
    }
}

/// Serves `proxy` on `listener` (plain HTTP/1.1 and cleartext HTTP/2, the front-end's
/// default limits, no trusted proxies, no access log) until `shutdown` resolves, then stops accepting
/// and lets open requests finish (at most [`DRAIN_TIMEOUT`]).
pub async fn serve_proxy(
    proxy: Proxy,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let app = Arc::new(ProxyApp {
        proxy,
        clients: ClientAddress {
            trusted: TrustedProxies::default(),
            header: ClientIpHeader::XForwardedFor,
        },
        // No trusted proxies to tell: as they came, nginx's default.
        incoming: IncomingForwarded::Keep,
        log: None,
    });
    let config = Listener {
        role: "proxy",
        front: Arc::new(arc_swap::ArcSwap::from_pointee(listener::FrontState::new(
            app,
            TrustedProxies::default(),
            Limits::default(),
        ))),
        tls: None,
        proxy_protocol: false,
        metrics: Arc::new(ListenerMetrics::new(
            "proxy",
            listener.local_addr()?,
            false,
            None,
        )),
    };
    let stop = CancellationToken::new();
    let config = Arc::new(arc_swap::ArcSwap::from_pointee(config));
    let serving = listener::serve(listener, config, stop.clone(), stop.clone());
    tokio::pin!(serving, shutdown);
    tokio::select! {
        () = &mut serving => {}
        () = &mut shutdown => {
            stop.cancel();
            serving.await;
        }
    }
    Ok(())
}
