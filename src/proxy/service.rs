//! The proxy as a tower `Service`: one request in, one response out.
//!
//! This module owns the request flow, cut into the phases of pingora's `ProxyHttp` (as plain
//! functions, not a trait). [`respond`] runs them in order; each returns the next phase's input
//! or an [`OwnError`], the answer the proxy gives in its own name:
//!
//! 1. [`route`]: CONNECT refused (405), the public host read (400 without one) and its
//!    [`Target`] picked: a host pair or a pass-through domain, else 421.
//! 2. [`upstream_request`]: the origin request: URI, rewritten headers, `Host`.
//! 3. [`send`]: the origin's response head, 504 past the response timeout, 502 on failure.
//! 4. [`upgrade_connection`]: on a 101, the WebSocket (or other) upgrade spliced.
//! 5. [`response_head`]: the response headers rewritten and the body's fate decided.
//! 6. [`response_body`]: the body rewritten (plan, decode limit) or passed through.
//!
//! [`handle`] counts what the proxy answered itself. [`ProxyBuilder::build`] checks the
//! origin URL ([`parse_origin_url`]) and makes a [`Target`] for each host pair. The details
//! are in [`super::headers`], [`super::body`] and [`super::upstream`]; listening for
//! connections is [`super::serve`].

use std::borrow::Cow;
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

use super::body::{self, BodyStartError, BoxError, GzipLevel, Limits, ProxyBody};
use super::headers::{self, ForwardHeaders, Forwarded};
use super::host;
use super::mapping::{self, HostMap, MappingError, Side};
use super::metrics::{Event, ProxyMetrics};
use super::rewrite::{RewriteError, Rewriter};
use super::upstream::{self, OriginBody, Upstream, UpstreamBody, UpstreamError, UpstreamSettings};

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
    /// Whether the forwarding headers the request came with (`X-Forwarded-*`,
    /// `Forwarded`) are kept and appended to, as a trusted proxy's, or replaced, as
    /// possibly the client's own.
    pub keep_forwarded: bool,
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

/// Past this without a byte of the origin's body, a response is cut off (the default of
/// [`ProxyBuilder::read_timeout`]).
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds a [`Proxy`]. Defaults: rewriting on, connect timeout 5 s, response timeout 30 s,
/// read timeout 60 s, decompressed bodies limited to 64 MiB, gzip level 1.
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
    gzip_level: GzipLevel,
    rewrite: bool,
    pass_through: Vec<String>,
    forward_headers: ForwardHeaders,
    metrics: Option<Arc<ProxyMetrics>>,
    own_name: &'static str,
}

impl ProxyBuilder {
    /// Which forwarding headers tell the origin about the client (default: both
    /// `X-Forwarded-For`/`-Proto`/`-Host` and `Forwarded`).
    pub fn forward_headers(mut self, headers: ForwardHeaders) -> Self {
        self.forward_headers = headers;
        self
    }

    /// What the proxy's own answers (421, 502, 504, ...) call it at the start of their
    /// body: `geoline proxy` by default; the redirector's pass-through is `geoline
    /// redirect`, so that a client or an operator reading a 502 knows which part spoke.
    pub(crate) fn own_name(mut self, name: &'static str) -> Self {
        self.own_name = name;
        self
    }

    /// Counts into `metrics` instead of counters of its own: the server keeps a
    /// front-end's counters across configuration reloads, which build a new proxy.
    pub(crate) fn metrics(mut self, metrics: Arc<ProxyMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

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

    /// The compression level of rewritten bodies sent gzip- or deflate-encoded (default
    /// [`GzipLevel::FASTEST`], 1, as nginx's `gzip on`).
    pub fn gzip_level(mut self, level: GzipLevel) -> Self {
        self.gzip_level = level;
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
        let origin = parse_origin_url(&self.origin).map_err(bad)?;
        let origin_host = origin.authority.host();
        if map.public_for(origin_host).is_none()
            && host::under_any(&pass_through, origin_host).is_none()
        {
            return Err(bad("its host is not the origin host of any pair"));
        }
        let port = origin.authority.port_u16();
        let tls = origin.scheme == Scheme::HTTPS;

        let mut extra_roots = self.extra_roots.clone();
        for path in &self.ca_files {
            extra_roots.extend(upstream::load_ca_file(path)?);
        }
        let upstream = Upstream::new(&UpstreamSettings {
            tls,
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            connect_to: self.connect_to,
            extra_roots,
            connect_timeout: self.connect_timeout,
            pool_idle_timeout: Duration::from_secs(90),
        })?;

        let targets = map
            .pairs()
            .iter()
            .map(|pair| Target::new(pair.origin.clone(), port))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("bad host"))?;
        let rewriter = if self.rewrite {
            Some(Arc::new(Rewriter::new(&map)?))
        } else {
            None
        };
        Ok(Proxy {
            inner: Arc::new(Inner {
                map,
                targets,
                scheme: origin.scheme,
                rewriter,
                upstream,
                pass_through,
                recent_pass_through: arc_swap::ArcSwapOption::empty(),
                port,
                forward_headers: self.forward_headers,
                response_timeout: self.response_timeout,
                limits: Limits {
                    read_timeout: self.read_timeout,
                    max_decompressed: self.max_decompressed,
                },
                gzip_level: self.gzip_level,
                metrics: self.metrics.clone().unwrap_or_default(),
                own_name: self.own_name,
            }),
        })
    }
}

/// What the origin URL of [`Proxy::builder`] contributes: the scheme and the port of every
/// origin request (its host only has to be one of the origin hosts).
#[derive(Debug)]
struct OriginUrl {
    scheme: Scheme,
    authority: Authority,
}

/// Reads `http(s)://host[:port]`; the error is the reason for [`ProxyError::Origin`].
fn parse_origin_url(url: &str) -> Result<OriginUrl, &'static str> {
    let url: Uri = url.parse().map_err(|_| "not a URL")?;
    let scheme = match url.scheme_str() {
        Some("http") => Scheme::HTTP,
        Some("https") => Scheme::HTTPS,
        _ => return Err("the scheme must be http or https"),
    };
    let authority = url.authority().ok_or("no host")?;
    if authority.as_str().contains('@') {
        return Err("user information is not allowed");
    }
    if url.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err("a path or query is not supported; requests keep their own");
    }
    Ok(OriginUrl {
        scheme,
        authority: authority.clone(),
    })
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
    upstream: Upstream,
    /// Domains whose hosts go to the origin under their own name (see
    /// [`ProxyBuilder::pass_through_domains`]).
    pass_through: Vec<String>,
    /// The last target [`pass_through_target`] found.
    recent_pass_through: arc_swap::ArcSwapOption<RecentPassThrough>,
    /// The origin URL's port, if it names one.
    port: Option<u16>,
    forward_headers: ForwardHeaders,
    response_timeout: Duration,
    limits: Limits,
    /// Of rewritten bodies re-encoded as gzip or deflate.
    gzip_level: GzipLevel,
    metrics: Arc<ProxyMetrics>,
    /// See [`ProxyBuilder::own_name`].
    own_name: &'static str,
}

/// Where requests for one public host go.
#[derive(Clone)]
pub(crate) struct Target {
    /// The origin host, with the origin URL's port if it names one.
    pub(crate) host_header: HeaderValue,
    /// The origin host: dialed (unless connect-to), verified under TLS, in logs and error
    /// texts. Shared: a target is cloned for each request passed through.
    pub(crate) origin: Arc<str>,
}

impl Target {
    /// `None` if `origin` (with `port`) is no valid `Host` or authority.
    fn new(origin: String, port: Option<u16>) -> Option<Target> {
        let host_header = match port {
            Some(p) => format!("{origin}:{p}"),
            None => origin.clone(),
        };
        Authority::try_from(host_header.as_str()).ok()?;
        Some(Target {
            host_header: HeaderValue::try_from(host_header).ok()?,
            origin: origin.into(),
        })
    }
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
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_decompressed: 64 << 20,
            gzip_level: GzipLevel::default(),
            rewrite: true,
            pass_through: Vec::new(),
            forward_headers: ForwardHeaders::default(),
            metrics: None,
            own_name: "geoline proxy",
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

    /// Whether a request naming `authority` (its `Host` or URI authority) is proxied, not
    /// refused with 421.
    pub fn serves(&self, authority: &str) -> bool {
        self.inner.map.position(authority).is_some()
            || pass_through_target(&self.inner, authority).is_some()
    }

    /// Where a request naming `authority` goes when it is under a pass-through domain
    /// (the redirector's own pass-through sends it there itself).
    pub(crate) fn pass_through_target(&self, authority: &str) -> Option<Target> {
        pass_through_target(&self.inner, authority)
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
/// The last one found is kept with the authority it was found for: a redirector passes one
/// or a few names through, and working the target out anew (checking the name, lower
/// case, the `Host` value) was a twentieth of a passed-through request's instructions.
fn pass_through_target(inner: &Inner, public_authority: &str) -> Option<Target> {
    let recent = inner.recent_pass_through.load();
    if let Some(recent) = recent.as_deref()
        && *recent.authority == *public_authority
    {
        return Some(recent.target.clone());
    }
    let name = host::strip_port(public_authority)?;
    let host = host::normalize(name).ok()?;
    host::under_any(&inner.pass_through, &host)?;
    let target = Target::new(host, inner.port)?;
    inner
        .recent_pass_through
        .store(Some(Arc::new(RecentPassThrough {
            authority: public_authority.into(),
            target: target.clone(),
        })));
    Some(target)
}

/// A pass-through target and the authority (as the request wrote it) it is for.
struct RecentPassThrough {
    authority: Box<str>,
    target: Target,
}

/// Marks a response the proxy made itself, for counting; removed before it leaves.
#[derive(Clone, Copy)]
struct OwnResponse;

/// An answer the proxy gives in its own name instead of the origin's: what a phase returns
/// when the request goes no further.
#[derive(Debug)]
struct OwnError {
    status: StatusCode,
    /// The whole body, without the final newline.
    message: String,
}

impl OwnError {
    fn new(status: StatusCode, message: String) -> OwnError {
        OwnError { status, message }
    }

    /// A plain-text, uncacheable response, marked [`OwnResponse`], signed `{own_name}: `.
    fn into_response(self, own_name: &str) -> Response<ProxyBody> {
        let OwnError { status, message } = self;
        let mut resp = Response::new(ProxyBody::full(format!("{own_name}: {message}\n")));
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
    let start = std::time::Instant::now();
    let mut resp = respond(&inner, req).await;
    metrics.responded(resp.status().as_u16(), start.elapsed());
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

/// Runs the phases of one request in order; any of them may answer in the proxy's own name
/// instead.
async fn respond<B>(inner: &Inner, req: Request<B>) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    proxy(inner, req)
        .await
        .unwrap_or_else(|e| e.into_response(inner.own_name))
}

async fn proxy<B>(inner: &Inner, mut req: Request<B>) -> Result<Response<ProxyBody>, OwnError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let route = route(inner, &req)?;
    let upgrade = headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    // What the response phases need from the client's request, read before it becomes
    // the origin's.
    let accept_encoding = parts.headers.get(header::ACCEPT_ENCODING).cloned();
    let is_head = parts.method == Method::HEAD;
    let up_req = upstream_request(inner, &route, parts, body, upgrade)?;
    let resp = send(inner, &route.target, up_req).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return upgrade_connection(inner, &route.target, resp, client_upgrade);
    }
    let (mut head, incoming) = resp.into_parts();
    let rewrite = response_head(inner, &mut head, accept_encoding.as_ref());
    let body = response_body(inner, &route.target, &head, incoming, rewrite, is_head).await?;
    Ok(Response::from_parts(head, body))
}

/// The target of a request, and the host the client asked for.
struct Route<'a> {
    target: Cow<'a, Target>,
    /// As the client sent it: the request URI's authority, else `Host`.
    public_authority: String,
}

/// Request phase (pingora's `request_filter` and `upstream_peer`): refuses CONNECT (405) and
/// requests naming no host (400) or a host not served here (421); else picks the target.
fn route<'a, B>(inner: &'a Inner, req: &Request<B>) -> Result<Route<'a>, OwnError> {
    if req.method() == Method::CONNECT {
        // A tunnel to an address of the client's choosing is exactly the open proxy this
        // must never be.
        return Err(OwnError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported".into(),
        ));
    }
    // HTTP/2 and absolute-form requests carry the host in the URI, HTTP/1.1 in `Host`.
    let Some(public_authority) = host::request_authority(req).map(str::to_string) else {
        return Err(OwnError::new(
            StatusCode::BAD_REQUEST,
            "the request names no host".into(),
        ));
    };
    let target = match inner.map.position(&public_authority) {
        Some(index) => Cow::Borrowed(&inner.targets[index]),
        None => match pass_through_target(inner, &public_authority) {
            Some(t) => Cow::Owned(t),
            None => {
                return Err(OwnError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!("host {public_authority:?} is not served here"),
                ));
            }
        },
    };
    Ok(Route {
        target,
        public_authority,
    })
}

/// Upstream request phase (pingora's `upstream_request_filter`): the client's request,
/// re-addressed to the target (400 if its path makes no URI) with the request headers
/// rewritten and `Host` naming the origin, as HTTP/1.1 in origin form (`/path?query`)
/// without the client's extensions.
fn upstream_request<B>(
    inner: &Inner,
    route: &Route<'_>,
    mut parts: http::request::Parts,
    body: B,
    upgrade: bool,
) -> Result<Request<UpstreamBody>, OwnError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let target = &*route.target;
    let client = parts.extensions.get::<ClientInfo>().copied();
    let mut uri = http::uri::Parts::default();
    uri.path_and_query = Some(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    let uri = Uri::from_parts(uri)
        .map_err(|e| OwnError::new(StatusCode::BAD_REQUEST, format!("bad request target: {e}")))?;
    let origin_authority =
        |public: &str| Some(&inner.targets[inner.map.position(public)?].host_header);
    headers::rewrite_request(
        &mut parts.headers,
        inner.scheme.as_str(),
        origin_authority,
        &Forwarded {
            peer: client.map(|c| c.peer),
            tls: client.is_some_and(|c| c.tls),
            public_authority: &route.public_authority,
            // Without a word from the server, as they came (nginx's default).
            keep_incoming: client.is_none_or(|c| c.keep_forwarded),
            send: inner.forward_headers,
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
    let body = if body.is_end_stream() {
        body.map_err(Into::into).boxed_unsync()
    } else {
        // Only requests with a body pay for counting it.
        let metrics = Arc::clone(&inner.metrics);
        body.map_err(Into::into)
            .map_frame(move |f| {
                if let Some(data) = f.data_ref() {
                    metrics.add_request_body_bytes(data.len() as u64);
                }
                f
            })
            .boxed_unsync()
    };
    Ok(Request::from_parts(parts, body))
}

/// Sends the request and waits for the origin's response head: 504 past the response
/// timeout, 502 when the origin cannot be reached or answers nonsense.
async fn send(
    inner: &Inner,
    target: &Target,
    up_req: Request<UpstreamBody>,
) -> Result<Response<OriginBody>, OwnError> {
    let sent = inner.upstream.send(&target.origin, up_req);
    match tokio::time::timeout(inner.response_timeout, sent).await {
        Err(_) => {
            tracing::warn!(origin = %target.origin, timeout = ?inner.response_timeout, "proxy: origin response timed out");
            Err(OwnError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the origin {} did not answer within {:?}",
                    target.origin, inner.response_timeout
                ),
            ))
        }
        Ok(Err(e)) => {
            let detail = chain(&e);
            tracing::warn!(origin = %target.origin, error = %detail, "proxy: origin request failed");
            let what = if e.is_connect() {
                inner.metrics.count(Event::UpstreamConnect);
                "cannot connect to"
            } else {
                inner.metrics.count(Event::UpstreamResponse);
                "no valid response from"
            };
            Err(OwnError::new(
                StatusCode::BAD_GATEWAY,
                format!("{what} the origin {}", target.origin),
            ))
        }
        Ok(Ok(r)) => Ok(r),
    }
}

/// The origin's 101: splices the two upgraded connections in a task of their own and
/// answers the client with the origin's head. 502 if the client asked for no upgrade.
fn upgrade_connection(
    inner: &Inner,
    target: &Target,
    mut resp: Response<OriginBody>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<ProxyBody>, OwnError> {
    let Some(client_upgrade) = client_upgrade else {
        return Err(OwnError::new(
            StatusCode::BAD_GATEWAY,
            format!("the origin {} switched protocols unasked", target.origin),
        ));
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
    headers::rewrite_response(&mut parts.headers, inner.rewriter.as_deref(), true);
    Ok(Response::from_parts(parts, ProxyBody::empty()))
}

/// How a response body is rewritten, when it is.
struct BodyRewrite<'a> {
    plan: body::Plan,
    rewriter: &'a Arc<Rewriter>,
}

/// Response head phase (pingora's `upstream_response_filter` and `response_filter`):
/// rewrites the origin's response headers and decides whether the body is rewritten,
/// setting the headers that decision implies.
fn response_head<'a>(
    inner: &'a Inner,
    head: &mut http::response::Parts,
    accept_encoding: Option<&HeaderValue>,
) -> Option<BodyRewrite<'a>> {
    headers::rewrite_response(&mut head.headers, inner.rewriter.as_deref(), false);
    let rewriter = inner.rewriter.as_ref()?;
    // A range of a rewritten body is not the same range of the origin's.
    let plan = if head.status == StatusCode::PARTIAL_CONTENT {
        None
    } else {
        body::plan(&head.headers, accept_encoding)
    };
    match plan {
        Some(plan) => {
            body::apply_plan_headers(&mut head.headers, plan);
            Some(BodyRewrite { plan, rewriter })
        }
        None => {
            if head.status == StatusCode::NOT_MODIFIED {
                // Matches the weak validator given with the rewritten 200.
                headers::weaken_etag(&mut head.headers);
            }
            None
        }
    }
}

/// Response body phase (pingora's `response_body_filter`): the origin's body, rewritten or
/// passed through, under the read timeout and decompression limit; 502 if a rewritten body
/// cannot start.
async fn response_body(
    inner: &Inner,
    target: &Target,
    head: &http::response::Parts,
    incoming: OriginBody,
    rewrite: Option<BodyRewrite<'_>>,
    is_head: bool,
) -> Result<ProxyBody, OwnError> {
    let Some(BodyRewrite { plan, rewriter }) = rewrite else {
        return Ok(body::passthrough(incoming, inner.limits));
    };
    let status = head.status;
    if is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(ProxyBody::empty());
    }
    match body::rewritten(
        incoming,
        plan,
        rewriter,
        inner.limits,
        inner.gzip_level,
        &inner.metrics,
    )
    .await
    {
        Ok(b) => {
            inner.metrics.count(Event::Rewritten);
            Ok(b)
        }
        Err(e) => {
            inner.metrics.count(Event::UpstreamBody);
            tracing::warn!(origin = %target.origin, error = %e, "proxy: origin body refused");
            let reason = match e {
                BodyStartError::TooLarge { limit } => {
                    format!("decompresses to more than {limit} bytes")
                }
                BodyStartError::Broken(_) => "cannot be read or decoded".to_string(),
            };
            Err(OwnError::new(
                StatusCode::BAD_GATEWAY,
                format!("the body from the origin {} {reason}", target.origin),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(builder: ProxyBuilder) -> Proxy {
        builder.build().expect("the test proxy builds")
    }

    fn request(method: Method, uri: &str, host: Option<&str>) -> Request<()> {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(h) = host {
            req = req.header(header::HOST, h);
        }
        req.body(()).expect("a valid test request")
    }

    #[test]
    fn origin_url_reasons() {
        for (url, reason) in [
            ("", "not a URL"),
            ("ftp://example.com", "the scheme must be http or https"),
            ("/path", "the scheme must be http or https"),
            (
                "https://user@example.com",
                "user information is not allowed",
            ),
            (
                "https://example.com/x",
                "a path or query is not supported; requests keep their own",
            ),
            (
                "https://example.com/?q",
                "a path or query is not supported; requests keep their own",
            ),
        ] {
            assert_eq!(parse_origin_url(url).unwrap_err(), reason, "{url:?}");
        }
        let url = parse_origin_url("http://example.com:8080/").unwrap();
        assert_eq!(url.scheme, Scheme::HTTP);
        assert_eq!(url.authority.host(), "example.com");
        assert_eq!(url.authority.port_u16(), Some(8080));
    }

    #[test]
    fn origin_url_host_must_be_an_origin_host() {
        let err = Proxy::builder("https://other.com")
            .pair("example.cn", "example.com")
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "origin URL \"https://other.com\": its host is not the origin host of any pair"
        );
    }

    #[test]
    fn target_host_header_names_the_port() {
        let t = Target::new("example.com".into(), Some(8443)).unwrap();
        assert_eq!(t.host_header, "example.com:8443");
        assert_eq!(&*t.origin, "example.com");
        let t = Target::new("example.com".into(), None).unwrap();
        assert_eq!(t.host_header, "example.com");
        assert_eq!(&*t.origin, "example.com");
        assert!(Target::new("exa mple.com".into(), None).is_none());
    }

    #[test]
    fn route_refuses_connect_no_host_and_other_hosts() {
        let p = proxy(Proxy::builder("https://example.com").pair("example.cn", "example.com"));
        let refused = |req: Request<()>| route(&p.inner, &req).err().unwrap();

        let e = refused(request(Method::CONNECT, "example.com:443", None));
        assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(e.message, "CONNECT is not supported");

        let e = refused(request(Method::GET, "/", None));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "the request names no host");

        let e = refused(request(Method::GET, "/", Some("evil.example")));
        assert_eq!(e.status, StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(e.message, "host \"evil.example\" is not served here");
    }

    #[test]
    fn route_reads_the_uri_authority_before_host() {
        let p = proxy(Proxy::builder("https://example.com:8443").pair("example.cn", "example.com"));
        let req = request(Method::GET, "https://example.cn/a", Some("evil.example"));
        let r = route(&p.inner, &req).ok().unwrap();
        assert_eq!(r.public_authority, "example.cn");
        assert!(matches!(r.target, Cow::Borrowed(_)));
        assert_eq!(r.target.host_header, "example.com:8443");
    }

    #[test]
    fn route_passes_vetted_domains_through_under_their_name() {
        let p = proxy(
            Proxy::builder("https://example.com")
                .rewrite(false)
                .connect_to("127.0.0.1:1".parse().unwrap())
                .pass_through_domains(["example.com"]),
        );
        let req = request(Method::GET, "/", Some("WWW.Example.com:8080"));
        let r = route(&p.inner, &req).ok().unwrap();
        assert_eq!(r.public_authority, "WWW.Example.com:8080");
        assert_eq!(&*r.target.origin, "www.example.com");
        assert_eq!(r.target.host_header, "www.example.com");
        assert!(route(&p.inner, &request(Method::GET, "/", Some("example.org"))).is_err());
        // Kept for the next request naming it so, which gets the same target.
        let recent = p.inner.recent_pass_through.load_full().expect("kept");
        assert_eq!(&*recent.authority, "WWW.Example.com:8080");
        let again = route(&p.inner, &req).ok().unwrap();
        assert!(Arc::ptr_eq(&again.target.origin, &recent.target.origin));
        // Another name is worked out, and kept in its place; one not served is not kept.
        let other = request(Method::GET, "/", Some("example.com"));
        assert_eq!(
            &*route(&p.inner, &other).ok().unwrap().target.origin,
            "example.com"
        );
        assert!(route(&p.inner, &request(Method::GET, "/", Some("example.net"))).is_err());
        let recent = p.inner.recent_pass_through.load_full().expect("kept");
        assert_eq!(&*recent.authority, "example.com");
    }

    #[test]
    fn own_error_response() {
        let resp =
            OwnError::new(StatusCode::BAD_GATEWAY, "x".into()).into_response("geoline proxy");
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        assert!(resp.extensions().get::<OwnResponse>().is_some());
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }
}
