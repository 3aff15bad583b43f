//! The proxy as a tower `Service`: one request in, one response out.
//!
//! This module owns the request flow: picking the host pair (421 for any other host),
//! building the origin request, mapping upstream failures to 502 / 504, choosing between
//! rewriting and passing a body through, and splicing WebSocket upgrades. It delegates the
//! details to [`super::headers`], [`super::body`] and [`super::upstream`]; listening for
//! connections is [`super::serve`].

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;

use super::body::{self, BodyStartError, BoxError, Limits, ProxyBody};
use super::headers::{self, Forwarded};
use super::host;
use super::mapping::{self, HostMap, MappingError, Side};
use super::metrics::{Event, ProxyMetrics};
use super::rewrite::{RewriteError, Rewriter};
use super::upstream::{self, HttpClient, UpstreamError, UpstreamSettings};

/// What the server knows about the client connection. Insert it into the request's
/// extensions to get `X-Forwarded-For` and the right `X-Forwarded-Proto`;
/// [`serve_proxy`](super::serve_proxy) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address (after any PROXY protocol header), appended to
    /// `X-Forwarded-For`.
    pub peer: SocketAddr,
    /// Whether the client reached us over TLS.
    pub tls: bool,
}

/// Why a [`Proxy`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The host pairs (or a pass-through domain) were refused.
    #[error("host pairs: {0}")]
    Mapping(#[from] MappingError),
    /// The origin URL is not `http(s)://host[:port]` naming an origin host of the pairs.
    #[error("origin URL {url:?}: {reason}")]
    Origin {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host matcher could not be built.
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    /// A CA file could not be read, or TLS could not be set up.
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamError),
    /// [`pass_through_domains`](ProxyBuilder::pass_through_domains) was used with
    /// rewriting on.
    #[error("pass-through domains: {0}")]
    PassThrough(&'static str),
}

/// Builds a [`Proxy`]. Defaults: rewriting on, connect timeout 5 s, response timeout 30 s,
/// read timeout 60 s, decompressed bodies limited to 64 MiB.
#[derive(Debug, Clone)]
pub struct ProxyBuilder {
    origin: String,
    pairs: Vec<(String, String)>,
    connect_to: Option<SocketAddr>,
    extra_roots: Vec<CertificateDer<'static>>,
    ca_files: Vec<std::path::PathBuf>,
    connect_timeout: Duration,
    response_timeout: Duration,
    read_timeout: Duration,
    max_decompressed: u64,
    rewrite: bool,
    pass_through: Vec<String>,
}

impl ProxyBuilder {
    /// Adds a host pair: requests for `public` go to `origin`, and `origin` in responses
    /// comes back as `public`.
    pub fn pair(mut self, public: impl Into<String>, origin: impl Into<String>) -> Self {
        self.pairs.push((public.into(), origin.into()));
        self
    }

    /// Dials this address for every origin host instead of resolving it. TLS still sends
    /// and verifies the origin host name.
    pub fn connect_to(mut self, addr: SocketAddr) -> Self {
        self.connect_to = Some(addr);
        self
    }

    /// Trusts this CA certificate for the origin, besides the webpki roots.
    pub fn add_root_certificate(mut self, der: CertificateDer<'static>) -> Self {
        self.extra_roots.push(der);
        self
    }

    /// Trusts the certificates of this PEM file for the origin (read at [`build`](Self::build)).
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Past this without a TCP connection: 502.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Past this without the origin's response head: 504.
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d;
        self
    }

    /// Past this without a byte of the origin's body: the response is cut off.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// The most bytes a compressed body may decode to before it is cut off.
    pub fn max_decompressed_bytes(mut self, n: u64) -> Self {
        self.max_decompressed = n;
        self
    }

    /// With `false`, bodies and response headers pass untouched (requests are still mapped
    /// to the origin host): the plain pass-through the redirector uses.
    pub fn rewrite(mut self, on: bool) -> Self {
        self.rewrite = on;
        self
    }

    /// Also serves every host under these domains (each domain and its subdomains) by
    /// sending it to the origin under its own name: the redirector's pass-through, for
    /// hosts the caller has already vetted. Needs `rewrite(false)`; pairs become optional.
    pub fn pass_through_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.pass_through
            .extend(domains.into_iter().map(Into::into));
        self
    }

    /// Checks the pairs and the origin URL, reads the CA files and sets up the client. No
    /// connection is made: an unreachable origin shows up as 502 responses, not here.
    pub fn build(self) -> Result<Proxy, ProxyError> {
        let pass_through = self
            .pass_through
            .iter()
            .map(|d| mapping::normalize(d, Side::Origin))
            .collect::<Result<Vec<_>, _>>()?;
        if !pass_through.is_empty() && self.rewrite {
            return Err(ProxyError::PassThrough(
                "passing hosts through under their own name needs rewrite(false)",
            ));
        }
        let map = if self.pairs.is_empty() && !pass_through.is_empty() {
            HostMap::empty()
        } else {
            HostMap::new(self.pairs.iter().map(|(p, o)| (p.as_str(), o.as_str())))?
        };
        let bad = |reason: &str| ProxyError::Origin {
            url: self.origin.clone(),
            reason: reason.to_string(),
        };
        let url: Uri = self.origin.parse().map_err(|_| bad("not a URL"))?;
        let scheme = match url.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = url.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user information is not allowed"));
        }
        if url.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(bad(
                "a path or query is not supported; requests keep their own",
            ));
        }
        if map.public_for(authority.host()).is_none()
            && host::under_any(&pass_through, authority.host()).is_none()
        {
            return Err(bad("its host is not the origin host of any pair"));
        }
        let port = authority.port_u16();

        let mut extra_roots = self.extra_roots.clone();
        for path in &self.ca_files {
            extra_roots.extend(upstream::load_ca_file(path)?);
        }
        let client = upstream::client(&UpstreamSettings {
            connect_to: self.connect_to,
            extra_roots,
            connect_timeout: self.connect_timeout,
            pool_idle_timeout: Duration::from_secs(90),
        })?;

        let mut targets = Vec::new();
        for pair in map.pairs() {
            let host_header = match port {
                Some(p) => format!("{}:{p}", pair.origin),
                None => pair.origin.clone(),
            };
            // With connect-to, the URI carries no port so that the connector keeps the
            // connect-to port; `Host` still names the origin's port.
            let uri_authority = if self.connect_to.is_some() {
                pair.origin.clone()
            } else {
                host_header.clone()
            };
            targets.push(Target {
                host_header: HeaderValue::from_str(&host_header).map_err(|_| bad("bad host"))?,
                uri_authority: Authority::try_from(uri_authority.as_str())
                    .map_err(|_| bad("bad host"))?,
                origin: pair.origin.clone(),
            });
        }
        let rewriter = if self.rewrite {
            Some(Arc::new(Rewriter::new(&map)?))
        } else {
            None
        };
        Ok(Proxy {
            inner: Arc::new(Inner {
                map,
                targets,
                scheme,
                rewriter,
                client,
                pass_through,
                port,
                connect_to: self.connect_to.is_some(),
                response_timeout: self.response_timeout,
                limits: Limits {
                    read_timeout: self.read_timeout,
                    max_decompressed: self.max_decompressed,
                },
                metrics: Arc::default(),
            }),
        })
    }
}

/// The rewriting reverse proxy: a cheap-to-clone tower [`Service`](tower::Service) for
/// `Request<B>` with any body `B`, answering `Response<ProxyBody>`, never failing (upstream
/// failures are 502 / 504 responses). See the [module documentation](super).
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    map: HostMap,
    /// Indexed like `map.pairs()`.
    targets: Vec<Target>,
    scheme: Scheme,
    rewriter: Option<Arc<Rewriter>>,
    client: HttpClient,
    /// Domains whose hosts go to the origin under their own name (see
    /// [`ProxyBuilder::pass_through_domains`]).
    pass_through: Vec<String>,
    /// The origin URL's port, if it names one.
    port: Option<u16>,
    connect_to: bool,
    response_timeout: Duration,
    limits: Limits,
    metrics: Arc<ProxyMetrics>,
}

#[derive(Clone)]
struct Target {
    host_header: HeaderValue,
    uri_authority: Authority,
    origin: String,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("pairs", &self.inner.map.pairs())
            .field("scheme", &self.inner.scheme)
            .field("rewrite", &self.inner.rewriter.is_some())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Starts a builder for an origin reached at `origin_url` (`https://example.com`,
    /// `http://example.com:8080`): its scheme and port are used for every origin host, and
    /// its host must be one of the pairs' origin hosts.
    pub fn builder(origin_url: impl Into<String>) -> ProxyBuilder {
        ProxyBuilder {
            origin: origin_url.into(),
            pairs: Vec::new(),
            connect_to: None,
            extra_roots: Vec::new(),
            ca_files: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            max_decompressed: 64 << 20,
            rewrite: true,
            pass_through: Vec::new(),
        }
    }

    /// Live counters, shared by every clone of this proxy.
    pub fn metrics(&self) -> &ProxyMetrics {
        &self.inner.metrics
    }

    /// The host pairs this proxy serves.
    pub fn hosts(&self) -> &HostMap {
        &self.inner.map
    }

    /// Proxies one request. The same as calling the `Service`.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        handle(Arc::clone(&self.inner), req).await
    }
}

impl<B> tower::Service<Request<B>> for Proxy
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { Ok(handle(inner, req).await) })
    }
}

/// The origin target for a host under a pass-through domain: the same name, with the
/// origin URL's port.
fn pass_through_target(inner: &Inner, public_authority: &str) -> Option<Target> {
    let name = host::strip_port(public_authority)?;
    let host = host::normalize(name).ok()?;
    host::under_any(&inner.pass_through, &host)?;
    let host_header = match inner.port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let uri_authority = if inner.connect_to {
        host.clone()
    } else {
        host_header.clone()
    };
    Some(Target {
        host_header: HeaderValue::from_str(&host_header).ok()?,
        uri_authority: Authority::try_from(uri_authority.as_str()).ok()?,
        origin: host,
    })
}

/// Marks a response the proxy made itself, for counting; removed before it leaves.
#[derive(Clone, Copy)]
struct OwnResponse;

fn error_response(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(format!("{message}\n")));
    resp.extensions_mut().insert(OwnResponse);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error and the errors under it, for logs: hyper's own messages name only the outer one.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

async fn handle<B>(inner: Arc<Inner>, req: Request<B>) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let metrics = &inner.metrics;
    metrics.count(Event::Request);
    let mut resp = respond(&inner, req).await;
    if resp.extensions_mut().remove::<OwnResponse>().is_some() {
        match resp.status() {
            StatusCode::MISDIRECTED_REQUEST => metrics.count(Event::Misdirected),
            StatusCode::BAD_GATEWAY => metrics.count(Event::BadGateway),
            StatusCode::GATEWAY_TIMEOUT => metrics.count(Event::GatewayTimeout),
            _ => {}
        }
    }
    resp.map(|b| b.counted(Arc::clone(&inner.metrics)))
}

async fn respond<B>(inner: &Arc<Inner>, mut req: Request<B>) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if req.method() == Method::CONNECT {
        // A tunnel to an address of the client's choosing is exactly the open proxy this
        // must never be.
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "geoline proxy: CONNECT is not supported".into(),
        );
    }
    // HTTP/2 and absolute-form requests carry the host in the URI, HTTP/1.1 in `Host`.
    let Some(public_authority) = host::request_authority(&req).map(str::to_string) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "geoline proxy: the request names no host".into(),
        );
    };
    let target = match inner.map.position(&public_authority) {
        Some(index) => std::borrow::Cow::Borrowed(&inner.targets[index]),
        None => match pass_through_target(inner, &public_authority) {
            Some(t) => std::borrow::Cow::Owned(t),
            None => {
                return error_response(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!("geoline proxy: host {public_authority:?} is not served here"),
                );
            }
        },
    };

    let upgrade = headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let client = req.extensions().get::<ClientInfo>().copied();
    let (mut parts, body) = req.into_parts();
    let accept_encoding = parts.headers.get(header::ACCEPT_ENCODING).cloned();
    let is_head = parts.method == Method::HEAD;

    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = match Uri::builder()
        .scheme(inner.scheme.clone())
        .authority(target.uri_authority.clone())
        .path_and_query(path)
        .build()
    {
        Ok(u) => u,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format!("geoline proxy: bad request target: {e}"),
            );
        }
    };
    let origin_authority =
        |public: &str| Some(&inner.targets[inner.map.position(public)?].host_header);
    headers::rewrite_request(
        &mut parts.headers,
        origin_authority,
        &Forwarded {
            peer: client.map(|c| c.peer),
            tls: client.is_some_and(|c| c.tls),
            public_authority: &public_authority,
        },
        upgrade,
    );
    // A pass-through host is no public host of a pair, so the call above left the
    // client's `Host` (or none, from HTTP/2) as it was; the origin gets the clean name.
    parts
        .headers
        .insert(header::HOST, target.host_header.clone());
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    let up_req = Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());

    let mut resp = match tokio::time::timeout(inner.response_timeout, inner.client.request(up_req))
        .await
    {
        Err(_) => {
            tracing::warn!(origin = %target.origin, timeout = ?inner.response_timeout, "proxy: origin response timed out");
            return error_response(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "geoline proxy: the origin {} did not answer within {:?}",
                    target.origin, inner.response_timeout
                ),
            );
        }
        Ok(Err(e)) => {
            let detail = chain(&e);
            tracing::warn!(origin = %target.origin, error = %detail, "proxy: origin request failed");
            let what = if e.is_connect() {
                "cannot connect to"
            } else {
                "no valid response from"
            };
            return error_response(
                StatusCode::BAD_GATEWAY,
                format!("geoline proxy: {what} the origin {}", target.origin),
            );
        }
        Ok(Ok(r)) => r,
    };

    let rewriter = inner.rewriter.clone();
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return error_response(
                StatusCode::BAD_GATEWAY,
                format!(
                    "geoline proxy: the origin {} switched protocols unasked",
                    target.origin
                ),
            );
        };
        let origin_upgrade = hyper::upgrade::on(&mut resp);
        inner.metrics.count(Event::Upgraded);
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, origin_upgrade) {
                Ok((c, o)) => {
                    let (mut c, mut o) = (TokioIo::new(c), TokioIo::new(o));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut o).await {
                        tracing::debug!(error = %e, "proxy: upgraded connection ended");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "proxy: upgrade failed"),
            }
        });
        let (mut parts, _) = resp.into_parts();
        headers::rewrite_response(&mut parts.headers, rewriter.as_deref(), true);
        return Response::from_parts(parts, ProxyBody::empty());
    }

    let (mut parts, incoming) = resp.into_parts();
    headers::rewrite_response(&mut parts.headers, rewriter.as_deref(), false);
    let status = parts.status;
    let no_body = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let plan = match &rewriter {
        // A range of a rewritten body is not the same range of the origin's.
        Some(_) if status != StatusCode::PARTIAL_CONTENT => {
            body::plan(&parts.headers, accept_encoding.as_ref())
        }
        _ => None,
    };
    let body = match (plan, rewriter) {
        (Some(plan), Some(rw)) => {
            body::apply_plan_headers(&mut parts.headers, plan);
            if no_body {
                ProxyBody::empty()
            } else {
                match body::rewritten(incoming, plan, &rw, inner.limits).await {
                    Ok(b) => {
                        inner.metrics.count(Event::Rewritten);
                        b
                    }
                    Err(e) => {
                        tracing::warn!(origin = %target.origin, error = %e, "proxy: origin body refused");
                        let reason = match e {
                            BodyStartError::TooLarge { limit } => {
                                format!("decompresses to more than {limit} bytes")
                            }
                            BodyStartError::Broken(_) => "cannot be read or decoded".to_string(),
                        };
                        return error_response(
                            StatusCode::BAD_GATEWAY,
                            format!(
                                "geoline proxy: the body from the origin {} {reason}",
                                target.origin
                            ),
                        );
                    }
                }
            }
        }
        (_, rw) => {
            if rw.is_some() && status == StatusCode::NOT_MODIFIED {
                // Matches the weak validator given with the rewritten 200.
                headers::weaken_etag(&mut parts.headers);
            }
            body::passthrough(incoming, inner.limits)
        }
    };
    Response::from_parts(parts, body)
}
