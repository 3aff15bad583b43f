//! The rewriting reverse proxy: `example.cn` in front of `example.com`.
//!
//! Requests for a public host (`example.cn`) go to the origin as the paired origin host
//! (`example.com`); origin hosts in what comes back, headers and textual bodies, come back
//! as public hosts. Only configured public hosts are served, anything else gets
//! `421 Misdirected Request`: this is never an open proxy.
//!
//! [`Proxy`] is a tower [`Service`](tower::Service) for `http::Request<B>` with any body, so
//! it mounts in axum (`Router::fallback_service(proxy)`) or hyper (`service_fn`); it never
//! fails (upstream trouble becomes a 502 or 504 response). [`serve_proxy`] runs it on a
//! listener of the HTTP front-end geoline's redirector uses too; [`ProxyConfig`] is the
//! `[proxy]` section of `geoline serve` (listeners with TLS, PROXY protocol and limits).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use geoline::proxy::{Proxy, serve_proxy};
//!
//! let proxy = Proxy::builder("https://example.com")
//!     .pair("example.cn", "example.com")
//!     .pair("www.example.cn", "www.example.com")
//!     .build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! serve_proxy(proxy, listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! # The nginx equivalent, and where it differs
//!
//! ```nginx
//! server {
//!     server_name example.cn;
//!     location / {
//!         proxy_pass https://example.com;
//!         proxy_set_header Host example.com;
//!         proxy_ssl_server_name on;               # SNI = example.com
//!         proxy_ssl_verify on;
//!         proxy_set_header Accept-Encoding "";    # sub_filter cannot read gzip
//!         sub_filter_types *;
//!         sub_filter_once off;
//!         sub_filter "example.com" "example.cn";
//!         proxy_redirect https://example.com/ https://example.cn/;
//!         proxy_cookie_domain example.com example.cn;
//!         proxy_http_version 1.1;
//!         proxy_set_header Upgrade $http_upgrade;
//!         proxy_set_header Connection $connection_upgrade;
//!     }
//! }
//! ```
//!
//! What this module does that that configuration does not:
//!
//! * **Hostname boundaries.** `sub_filter` replaces bytes: `example.community` becomes
//!   `example.cnmunity` and `notexample.com` becomes `notexample.cn`. Here a match must be a
//!   whole host name (`example.com.au` is left alone) while encoded forms are still found:
//!   `https%3A%2F%2Fexample.com`, `https:\/\/example.com`, `\u002F\u002Fexample.com`,
//!   `mailto:sales@example.com`. See [`rewrite`].
//! * **Compression kept.** nginx must strip `Accept-Encoding` so the origin sends plain text,
//!   which costs the bandwidth across the border, the scarcest thing here. This module
//!   passes `Accept-Encoding` on, decodes gzip, deflate, br or zstd, rewrites, and encodes
//!   again for the client, with a limit on the decoded size against compression bombs.
//! * **Every header that carries a URL**: `Location`, `Content-Location`, `Refresh`,
//!   `Link`, `Access-Control-Allow-Origin`, `Content-Security-Policy` (nginx's
//!   `proxy_redirect` covers only `Location` and `Refresh`), the `Set-Cookie` domain, and
//!   `Origin` / `Referer` on the way in, so the origin's CSRF checks still pass.
//! * **All pairs in one pass**, leftmost-longest: `www.example.com` and `example.com` in one
//!   configuration cannot step on each other, whatever the order they are written in.
//! * **Validators stay honest**: a rewritten body loses `Content-Length` and its strong
//!   `ETag` becomes weak.
//!
//! # Pass-through, client addresses, counters
//!
//! [`ProxyBuilder::rewrite`]`(false)` leaves bodies and response headers untouched: the
//! redirector's pass-through for clients outside mainland China, with a host paired with
//! itself (`.pair("example.com", "example.com")`), or a domain and every name under it
//! ([`ProxyBuilder::pass_through_domains`], what the redirector uses), and
//! [`ProxyBuilder::connect_to`] naming the origin's real address. A [`ClientInfo`] in the request's extensions gives
//! `X-Forwarded-For` (appended), `X-Forwarded-Proto`, `-Host` and `Forwarded` (RFC 7239),
//! which [`ProxyBuilder::forward_headers`] chooses among, and says whether the request's
//! own forwarding headers are kept ([`serve_proxy`] inserts it; in axum, a
//! middleware can copy it from `ConnectInfo`, see `examples/proxy_axum.rs`).
//! [`Proxy::metrics`] counts requests, the proxy's own 421 / 502 / 504 answers, rewritten
//! responses, upgrades and body bytes, for the admin endpoint.
//!
//! # What it does not do
//!
//! No caching, no load balancing across origins, no request-body rewriting, no rewriting
//! of `206` partial responses (they pass through untouched: a range of a rewritten body is
//! not the same range of the origin's), and HTTP/1.1 only towards the origin.

#![warn(missing_docs)]

mod body;
pub mod config;
mod flate;
pub(crate) mod headers;
pub(crate) mod host;
pub mod mapping;
pub(crate) mod metrics;
pub mod rewrite;
pub(crate) mod serve;
mod service;
pub(crate) mod upstream;

pub use body::{BodyError, BoxError, Coding, GzipLevel, ProxyBody};
pub use config::{HostPairConfig, IncomingForwarded, ProxyConfig, ProxyConfigError};
pub use headers::ForwardHeaders;
pub use mapping::{HostMap, HostPair, MappingError};
pub use metrics::{ProxyMetrics, ProxyMetricsSnapshot};
pub use rewrite::{RewriteError, Rewriter, StreamRewriter};
pub use serve::{DRAIN_TIMEOUT, serve_proxy};
pub use service::{ClientInfo, Proxy, ProxyBuilder, ProxyError};
pub(crate) use service::{DEFAULT_READ_TIMEOUT, Target};
pub use upstream::{UpstreamError, load_ca_file};
