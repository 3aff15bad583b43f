//! The HTTP front-end the redirector and the proxy share: everything between a socket and
//! a request handler.
//!
//! One implementation for both, configured by the same keys ([`config`]): listeners with
//! their accept loop, idle sweep and drain ([`listener`]), a front-end's set of them kept,
//! added and stopped by configuration reloads ([`listeners`]), TLS with certificates chosen by
//! SNI and reloaded while serving ([`tls`], over [`crate::certs`]), PROXY protocol v1/v2
//! from trusted relays ([`proxy_protocol`]), the client address behind trusted proxies
//! ([`client_addr`]), the limits on request heads and slow clients, `/healthz` by address
//! and the responses a front-end makes itself ([`response`]), the JSON access log
//! ([`access_log`]), and the listener's own HTTP/1.1 server for plain connections
//! ([`http1`]), which answers what a front-end answers on the spot without hyper. A front-end is a [`Handler`]: the redirector's app or the proxy's;
//! this module does not decide anything about requests.

pub mod access_log;
pub(crate) mod client_addr;
pub(crate) mod config;
pub(crate) mod framing;
pub(crate) mod http1;
pub(crate) mod listener;
pub(crate) mod listeners;
pub(crate) mod metrics;
pub mod proxy_protocol;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::certs::{CertError, CertificateConfig, Certificates};
use crate::live::Live;
use config::FrontConfig;
use response::Reply;

/// What the listener knows about a request's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Connection {
    /// The socket peer, or the source a trusted proxy gave in a PROXY protocol header.
    pub peer: SocketAddr,
    pub tls: bool,
}

/// A front-end's request handling: one request in, its reply out.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Whether the listener reads this front-end's plain (non-TLS) connections with its own
    /// HTTP/1.1 path ([`http1`]) and asks [`Handler::respond_head`] first.
    const OWN_HTTP1: bool = false;

    /// A request the own HTTP/1.1 path sends to an origin itself ([`NoForward`] for a
    /// front-end that never does).
    type Forward: Forward;

    /// Answers `req`, which arrived on `conn`.
    fn respond(&self, req: hyper::Request<Incoming>, conn: Connection) -> Reply;

    /// What becomes of a request that the listener's own HTTP/1.1 path read: answered on
    /// the spot (counted and logged like any other), sent to the origin by that path, or
    /// handed, with the rest of its connection, to hyper and [`Handler::respond`].
    fn respond_head(
        &self,
        _head: &http1::RequestHead<'_>,
        _conn: Connection,
    ) -> HeadAnswer<Self::Forward> {
        HeadAnswer::Hyper
    }
}

/// What [`Handler::respond_head`] makes of a request head.
#[derive(Debug)]
pub(crate) enum HeadAnswer<F> {
    /// Answered on the spot.
    Local(http::Response<bytes::Bytes>),
    /// Sent to the origin, its response relayed, by the own path ([`Forward::forward`]).
    Forward(F),
    /// hyper's, with the rest of the connection.
    Hyper,
}

/// How a forwarded request's client connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Open for the next request: the request and its response went whole.
    Open,
    /// To be closed: asked for, or something broke midway.
    Close,
}

/// A request the listener's own HTTP/1.1 path hands to an origin and whose response it
/// relays: the redirector's pass-through ([`crate::redirect::pass`]).
pub(crate) trait Forward: Send + Sized + 'static {
    /// Sends the request on, its body (if any) read from `buf` (what the client sent after
    /// the head) and then from `client`, and writes the response to `client`. `buf` keeps
    /// what the client sent after the request.
    fn forward<C>(self, client: &mut C, buf: &mut BytesMut) -> impl Future<Output = Kept> + Send
    where
        C: AsyncRead + AsyncWrite + Unpin + Send;
}

/// The [`Handler::Forward`] of a front-end that forwards nothing itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoForward {}

impl Forward for NoForward {
    #[allow(clippy::manual_async_fn, reason = "an uninhabited type: never called")]
    fn forward<C>(self, _client: &mut C, _buf: &mut BytesMut) -> impl Future<Output = Kept> + Send
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        async move { match self {} }
    }
}

/// Why a front-end could not start.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// The rustls configuration could not be made.
    #[error("{role}: TLS setup: {source}")]
    Tls {
        /// `redirect` or `proxy`.
        role: &'static str,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// A listener could not be bound.
    #[error("{role}: cannot listen on {addr}: {source}{}", crate::diag::bind_hint(*addr, source))]
    Bind {
        /// `redirect` or `proxy`.
        role: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// Which front-end: its name in logs, errors and metrics, and its part of the live
/// certificate set (each TLS listener chooses among its own front-end's certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Redirect,
    Proxy,
}

impl Role {
    /// `redirect` or `proxy`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Redirect => "redirect",
            Role::Proxy => "proxy",
        }
    }

    /// Its part of the certificate set.
    pub(crate) fn part(self) -> usize {
        self as usize
    }
}

/// The certificates of every front-end with TLS listeners, in one set (the one [`Live`]
/// holds): `fronts` by [`Role::part`], `None` for a section that is not configured. A
/// failure says whose certificate it was.
pub(crate) fn certificates(
    fronts: [Option<&FrontConfig>; 2],
) -> Result<Certificates, (Role, CertError)> {
    let parts = fronts.map(wanted_certificates);
    Certificates::load_parts(&parts).map_err(|(part, e)| {
        let role = if part == Role::Redirect.part() {
            Role::Redirect
        } else {
            Role::Proxy
        };
        (role, e)
    })
}

/// The certificates `front` serves: none without a TLS listener.
pub(crate) fn wanted_certificates(front: Option<&FrontConfig>) -> &[CertificateConfig] {
    match front {
        Some(f) if f.tls() => &f.certificates,
        _ => &[],
    }
}

/// The app and the reloadable settings of `front` (limits, trusted proxies).
pub(crate) fn state<H>(front: &FrontConfig, app: Arc<H>) -> listener::FrontState<H> {
    listener::FrontState::new(
        app,
        client_addr::TrustedProxies::new(&front.trusted_proxies),
        listener::Limits {
            header_read_timeout: front.header_read_timeout,
            max_header_bytes: front.max_header_bytes,
            max_headers: front.max_headers,
        },
    )
}

/// The TLS acceptor of `role`'s listeners, over its part of `live`'s certificates: made
/// once, whatever certificates later reloads bring.
pub(crate) fn acceptor(
    role: Role,
    live: Arc<Live>,
) -> Result<tokio_rustls::TlsAcceptor, FrontError> {
    let config = tls::server_config(live, role.part()).map_err(|source| FrontError::Tls {
        role: role.name(),
        source,
    })?;
    Ok(tokio_rustls::TlsAcceptor::from(config))
}
