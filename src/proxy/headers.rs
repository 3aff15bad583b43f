//! Header rewriting, both directions.
//!
//! This module owns which headers cross the proxy and how hosts in them change: request
//! `Host` goes from public to origin, and `Origin` and `Referer` from the public URL to the
//! origin's (its scheme, host and port, which the origin's CSRF checks compare with the
//! request it sees); response `Location`,
//! `Content-Location`, `Refresh`, `Link`, `Set-Cookie` Domain, `Access-Control-Allow-Origin`
//! and `Content-Security-Policy` come back from origin to public. It removes hop-by-hop
//! headers and sets `X-Forwarded-*` and `Forwarded`, keeping or replacing the incoming ones. It does not decide anything about bodies (encodings,
//! lengths, validators): [`super::body`] does, since only it knows whether a body changes.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use super::host;
use super::rewrite::Rewriter;

/// Headers that describe one connection and must not be forwarded (RFC 9110 7.6.1), plus
/// the non-standard ones proxies still see. As header names, not strings: removing by a
/// string parses it first, twice per proxied request.
pub(crate) static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Response headers that can carry origin URLs and are rewritten as a whole.
const URL_HEADERS: [&str; 7] = [
    "location",
    "content-location",
    "refresh",
    "link",
    "access-control-allow-origin",
    "content-security-policy",
    "content-security-policy-report-only",
];

/// Removes hop-by-hop headers, including those a `Connection` header names. For an upgrade
/// being passed through, `Connection: upgrade` and `Upgrade` are kept: they are exactly
/// what the other side needs to see.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names present (a handful), rather than a hashed removal of every
    // listed name: a message carries one of them (`Connection`) or none, and each proxied
    // request removes them twice.
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name))
        .cloned()
        .collect();
    for value in headers.get_all(header::CONNECTION) {
        for token in value.to_str().into_iter().flat_map(|v| v.split(',')) {
            let token = token.trim();
            // `keep-alive` and `upgrade` are listed already: not parsed again.
            if HOP_BY_HOP
                .iter()
                .any(|h| token.eq_ignore_ascii_case(h.as_str()))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                doomed.push(name);
            }
        }
    }
    if doomed.is_empty() {
        return;
    }
    let upgrade = keep_upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    for name in doomed {
        headers.remove(name);
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

/// Whether a request or response asks to switch protocols (`Connection: upgrade` plus an
/// `Upgrade` header), as WebSocket handshakes do.
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Which forwarding headers the origin gets about each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardHeaders {
    /// `X-Forwarded-For` (the client appended), `X-Forwarded-Proto` and `X-Forwarded-Host`.
    pub x_forwarded: bool,
    /// `Forwarded` (RFC 7239): `for=` the client, `proto=`, `host=` appended as one element.
    pub forwarded: bool,
}

impl Default for ForwardHeaders {
    /// Both.
    fn default() -> ForwardHeaders {
        ForwardHeaders {
            x_forwarded: true,
            forwarded: true,
        }
    }
}

/// What the proxy knows about the client connection, for the forwarding headers.
pub(crate) struct Forwarded<'a> {
    pub peer: Option<SocketAddr>,
    pub tls: bool,
    /// The `Host` the client sent, port included.
    pub public_authority: &'a str,
    /// Keep the forwarding headers the request came with and append to them (they come
    /// from a trusted proxy), instead of replacing them (they may be the client's own).
    pub keep_incoming: bool,
    /// Which headers to send.
    pub send: ForwardHeaders,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Turns the client's request headers into the origin's. `origin_authority` gives the
/// origin's `Host` value (name and any port) for a public host name, `None` for others;
/// `origin_scheme` is the scheme the origin is reached with.
pub(crate) fn rewrite_request<'m>(
    headers: &mut HeaderMap,
    origin_scheme: &str,
    origin_authority: impl Fn(&str) -> Option<&'m HeaderValue>,
    fwd: &Forwarded<'_>,
    upgrade: bool,
) {
    remove_hop_by_hop(headers, upgrade);
    if let Some(host) = origin_authority(without_port(fwd.public_authority)) {
        headers.insert(header::HOST, host.clone());
    }
    for name in [header::ORIGIN, header::REFERER] {
        if let Some(v) = headers.get(&name)
            && let Some(new) = map_url_origin(v.as_bytes(), origin_scheme, &origin_authority)
        {
            headers.insert(name, new);
        }
    }
    if !fwd.keep_incoming {
        for name in [&X_FORWARDED_FOR, &X_FORWARDED_PROTO, &X_FORWARDED_HOST] {
            headers.remove(name);
        }
        headers.remove(header::FORWARDED);
    }
    let proto = if fwd.tls { "https" } else { "http" };
    if fwd.send.x_forwarded {
        if let Some(peer) = fwd.peer {
            let prior = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok());
            if let Ok(v) = HeaderValue::try_from(x_forwarded_for(prior, peer)) {
                headers.insert(&X_FORWARDED_FOR, v);
            }
        }
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        if let Ok(v) = HeaderValue::from_str(fwd.public_authority) {
            headers.insert(&X_FORWARDED_HOST, v);
        }
    }
    if fwd.send.forwarded {
        let prior = headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let value = forwarded(prior, fwd.peer, proto, fwd.public_authority);
        if let Ok(v) = HeaderValue::try_from(value) {
            headers.insert(header::FORWARDED, v);
        }
    }
}

/// The `X-Forwarded-For` value with `peer` appended to `prior` (the request's first value,
/// unless blank), like nginx's `$proxy_add_x_forwarded_for`. Also the redirector's own
/// pass-through's ([`crate::redirect::pass`]).
pub(crate) fn x_forwarded_for(prior: Option<&str>, peer: SocketAddr) -> String {
    let prior = prior.filter(|p| !p.trim().is_empty());
    let mut value = String::with_capacity(prior.map_or(0, |p| p.len() + 2) + 39);
    if let Some(prior) = prior {
        value.push_str(prior);
        value.push_str(", ");
    }
    push_ip(&mut value, peer.ip().to_canonical());
    value
}

/// The `Forwarded` value: the request's `prior` values (several fields are one list, RFC
/// 7239 4; blank ones skipped) joined, then this hop's element appended.
pub(crate) fn forwarded<'a>(
    prior: impl Iterator<Item = &'a str>,
    peer: Option<SocketAddr>,
    proto: &str,
    host: &str,
) -> String {
    let mut value = String::new();
    for prior in prior.map(str::trim).filter(|v| !v.is_empty()) {
        value.push_str(prior);
        value.push_str(", ");
    }
    forwarded_element(&mut value, peer, proto, host);
    value
}

/// Appends `ip` in its text form; IPv4 without `core::fmt`, which every proxied request
/// would otherwise go through once or twice.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends one `Forwarded` element (RFC 7239 4) to `out`: `for=` the client (`unknown`
/// without one; an IPv6 address bracketed and quoted), `proto=`, and `host=` the public
/// authority (quoted when it holds a port: `:` is not a token character).
pub(crate) fn forwarded_element(
    out: &mut String,
    peer: Option<SocketAddr>,
    proto: &str,
    host: &str,
) {
    out.push_str("for=");
    match peer.map(|p| p.ip().to_canonical()) {
        Some(ip @ IpAddr::V4(_)) => push_ip(out, ip),
        Some(ip @ IpAddr::V6(_)) => {
            out.push_str("\"[");
            push_ip(out, ip);
            out.push_str("]\"");
        }
        None => out.push_str("unknown"),
    }
    out.push_str(";proto=");
    out.push_str(proto);
    out.push_str(";host=");
    let host_is_token = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if host_is_token {
        out.push_str(host);
    } else {
        out.push('"');
        for c in host.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}

/// `http(s)://public-host[:port]...` with the scheme and authority replaced by the
/// origin's (`https://www.example.cn` becomes `http://www.example.com:8000` for an origin
/// reached at `http://example.com:8000`: a scheme or port mixed from both sides would match
/// neither), or `None` when the value names no public host of ours or another scheme (it is
/// then forwarded as it came).
fn map_url_origin<'m>(
    value: &[u8],
    origin_scheme: &str,
    origin_authority: &impl Fn(&str) -> Option<&'m HeaderValue>,
) -> Option<HeaderValue> {
    let text = std::str::from_utf8(value).ok()?;
    let scheme_end = text.find("://")?;
    let scheme = &text[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let start = scheme_end + 3;
    let end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let origin = origin_authority(without_port(&text[start..end]))?;
    let mut out = Vec::with_capacity(value.len() + 8);
    out.extend_from_slice(origin_scheme.as_bytes());
    out.extend_from_slice(b"://");
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&value[end..]);
    HeaderValue::from_bytes(&out).ok()
}

/// Turns the origin's response headers into the client's. Body-related headers are left to
/// [`super::body`].
pub(crate) fn rewrite_response(
    headers: &mut HeaderMap,
    rewriter: Option<&Rewriter>,
    upgrade: bool,
) {
    remove_hop_by_hop(headers, upgrade);
    // Alt-Svc advertises the origin's other endpoints (HTTP/3) for the *public* name the
    // client used, which would send it around the proxy.
    headers.remove(header::ALT_SVC);
    let Some(rw) = rewriter else {
        return;
    };
    for name in URL_HEADERS {
        rewrite_all_values(headers, name, |v| rw.rewrite_all(v).into_owned());
    }
    rewrite_all_values(headers, "set-cookie", |v| cookie_domain(v, rw));
}

fn rewrite_all_values(headers: &mut HeaderMap, name: &'static str, f: impl Fn(&[u8]) -> Vec<u8>) {
    let values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    let mut changed = false;
    let new: Vec<HeaderValue> = values
        .into_iter()
        .map(|v| {
            let out = f(v.as_bytes());
            if out.as_slice() == v.as_bytes() {
                return v;
            }
            match HeaderValue::from_bytes(&out) {
                Ok(mut nv) => {
                    nv.set_sensitive(v.is_sensitive());
                    changed = true;
                    nv
                }
                Err(_) => v,
            }
        })
        .collect();
    if !changed {
        return;
    }
    headers.remove(name);
    for v in new {
        headers.append(name, v);
    }
}

/// Rewrites only the `Domain` attribute of a `Set-Cookie` value (`proxy_cookie_domain`);
/// the cookie's name and value are the application's business.
fn cookie_domain(value: &[u8], rw: &Rewriter) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 4);
    for (i, part) in value.split(|&b| b == b';').enumerate() {
        if i > 0 {
            out.push(b';');
        }
        let trimmed = part.trim_ascii_start();
        let lead = part.len() - trimmed.len();
        if i > 0 && trimmed.len() >= 7 && trimmed[..7].eq_ignore_ascii_case(b"domain=") {
            out.extend_from_slice(&part[..lead + 7]);
            out.extend_from_slice(&rw.rewrite_all(&trimmed[7..]));
        } else {
            out.extend_from_slice(part);
        }
    }
    out
}

/// `"abc"` becomes `W/"abc"`: a rewritten body is no longer byte-identical to the origin's,
/// but it is still semantically the same representation.
pub(crate) fn weaken_etag(headers: &mut HeaderMap) {
    if let Some(v) = headers.get(header::ETAG)
        && v.as_bytes().first() == Some(&b'"')
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(v.as_bytes());
        if let Ok(w) = HeaderValue::from_bytes(&weak) {
            headers.insert(header::ETAG, w);
        }
    }
}

/// The host of an authority, or the authority as it is when its port is malformed (it
/// then names no host of ours).
fn without_port(authority: &str) -> &str {
    host::strip_port(authority).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::mapping::HostMap;

    /// The `Host` values the service would compute for `map()`.
    fn authority(host: &str) -> Option<&'static HeaderValue> {
        static APEX: HeaderValue = HeaderValue::from_static("example.com");
        static WWW: HeaderValue = HeaderValue::from_static("www.example.com");
        match map().origin_for(host)? {
            "example.com" => Some(&APEX),
            _ => Some(&WWW),
        }
    }

    fn map() -> HostMap {
        HostMap::new([
            ("example.cn", "example.com"),
            ("www.example.cn", "www.example.com"),
        ])
        .expect("valid pairs")
    }

    #[test]
    fn request_headers_go_to_the_origin() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("www.example.cn:8080"));
        h.insert(
            "origin",
            HeaderValue::from_static("https://www.example.cn:8080"),
        );
        h.insert(
            "referer",
            HeaderValue::from_static("https://example.cn/a?u=https://example.cn/"),
        );
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        let fwd = Forwarded {
            peer: Some("198.51.100.7:5555".parse().expect("addr")),
            tls: true,
            public_authority: "www.example.cn:8080",
            keep_incoming: true,
            send: ForwardHeaders::default(),
        };
        rewrite_request(&mut h, "https", authority, &fwd, false);
        assert_eq!(h["host"], "www.example.com");
        assert_eq!(h["origin"], "https://www.example.com");
        assert_eq!(h["referer"], "https://example.com/a?u=https://example.cn/");
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 198.51.100.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "www.example.cn:8080");
        assert_eq!(
            h["forwarded"],
            "for=198.51.100.7;proto=https;host=\"www.example.cn:8080\""
        );
        for gone in ["connection", "x-secret", "te"] {
            assert!(!h.contains_key(gone), "{gone} kept");
        }
    }

    #[test]
    fn foreign_referer_is_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            "referer",
            HeaderValue::from_static("https://other.test/example.cn"),
        );
        let fwd = Forwarded {
            peer: None,
            tls: false,
            public_authority: "example.cn",
            keep_incoming: true,
            send: ForwardHeaders::default(),
        };
        rewrite_request(&mut h, "https", authority, &fwd, false);
        assert_eq!(h["referer"], "https://other.test/example.cn");
        assert!(!h.contains_key("x-forwarded-for"));
    }

    #[test]
    fn origin_and_referer_take_the_origins_scheme_and_port() {
        static WITH_PORT: HeaderValue = HeaderValue::from_static("www.example.com:8000");
        let authority = |host: &str| {
            host.eq_ignore_ascii_case("www.example.cn")
                .then_some(&WITH_PORT)
        };
        let fwd = Forwarded {
            peer: None,
            tls: true,
            public_authority: "www.example.cn",
            keep_incoming: true,
            send: ForwardHeaders::default(),
        };
        for (origin, referer) in [
            (
                "https://www.example.cn",
                "https://www.example.cn/form?a=1#f",
            ),
            ("HTTP://www.example.cn:8443", "http://WWW.example.cn:8443/"),
        ] {
            let mut h = HeaderMap::new();
            h.insert("origin", HeaderValue::from_static(origin));
            h.insert("referer", HeaderValue::from_static(referer));
            rewrite_request(&mut h, "http", authority, &fwd, false);
            assert_eq!(h["origin"], "http://www.example.com:8000", "{origin}");
            let path = &referer[referer.find(".cn").unwrap_or(0)..];
            let path = &path[path.find('/').unwrap_or(path.len())..];
            assert_eq!(
                h["referer"],
                format!("http://www.example.com:8000{path}").as_str(),
                "{referer}"
            );
        }
        // Not ours, or not a web scheme: forwarded as they came.
        let mut h = HeaderMap::new();
        h.insert("origin", HeaderValue::from_static("null"));
        h.insert(
            "referer",
            HeaderValue::from_static("ftp://www.example.cn/x"),
        );
        rewrite_request(&mut h, "http", authority, &fwd, false);
        assert_eq!(h["origin"], "null");
        assert_eq!(h["referer"], "ftp://www.example.cn/x");
    }

    #[test]
    fn forwarding_headers_kept_or_replaced() {
        let incoming = |h: &mut HeaderMap| {
            h.append("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
            h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            h.append("forwarded", HeaderValue::from_static("for=192.0.2.1"));
            h.append(
                "forwarded",
                HeaderValue::from_static("for=192.0.2.2;proto=https"),
            );
        };
        let mut fwd = Forwarded {
            peer: Some("[2001:db8::7]:443".parse().expect("addr")),
            tls: false,
            public_authority: "example.cn",
            keep_incoming: true,
            send: ForwardHeaders::default(),
        };
        let mut h = HeaderMap::new();
        incoming(&mut h);
        rewrite_request(&mut h, "https", authority, &fwd, false);
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 2001:db8::7");
        assert_eq!(h["x-forwarded-proto"], "http");
        let forwarded: Vec<_> = h.get_all("forwarded").iter().collect();
        assert_eq!(
            forwarded,
            [
                "for=192.0.2.1, for=192.0.2.2;proto=https, for=\"[2001:db8::7]\";proto=http;host=example.cn"
            ]
        );

        // Replaced: nothing of the client's own claims reaches the origin.
        fwd.keep_incoming = false;
        fwd.peer = Some("[::ffff:198.51.100.7]:1".parse().expect("addr"));
        let mut h = HeaderMap::new();
        incoming(&mut h);
        rewrite_request(&mut h, "https", authority, &fwd, false);
        assert_eq!(h["x-forwarded-for"], "198.51.100.7");
        assert_eq!(
            h["forwarded"],
            "for=198.51.100.7;proto=http;host=example.cn"
        );

        // Only Forwarded, and none at all.
        fwd.send = ForwardHeaders {
            x_forwarded: false,
            forwarded: true,
        };
        let mut h = HeaderMap::new();
        incoming(&mut h);
        rewrite_request(&mut h, "https", authority, &fwd, false);
        assert!(!h.contains_key("x-forwarded-for") && !h.contains_key("x-forwarded-proto"));
        assert_eq!(
            h["forwarded"],
            "for=198.51.100.7;proto=http;host=example.cn"
        );
        fwd.send.forwarded = false;
        fwd.peer = None;
        let mut h = HeaderMap::new();
        rewrite_request(&mut h, "https", authority, &fwd, false);
        assert!(!h.contains_key("forwarded") && !h.contains_key("x-forwarded-host"));
        let mut element = String::new();
        forwarded_element(&mut element, None, "https", "a.example.cn");
        assert_eq!(element, "for=unknown;proto=https;host=a.example.cn");
        let mut element = String::new();
        forwarded_element(
            &mut element,
            Some("10.0.20.255:1".parse().expect("addr")),
            "http",
            "a.example.cn:8\"0",
        );
        assert_eq!(
            element,
            "for=10.0.20.255;proto=http;host=\"a.example.cn:8\\\"0\""
        );
    }

    #[test]
    fn upgrade_headers_survive_when_upgrading() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        remove_hop_by_hop(&mut h, false);
        assert!(h.is_empty());
    }

    #[test]
    fn response_headers_come_back_public() {
        let rw = Rewriter::new(&map()).expect("rewriter");
        let mut h = HeaderMap::new();
        h.insert(
            "location",
            HeaderValue::from_static("https://www.example.com/login?next=%2F"),
        );
        h.insert(
            "content-location",
            HeaderValue::from_static("https://example.com/a.json"),
        );
        h.insert(
            "refresh",
            HeaderValue::from_static("5; url=https://example.com/"),
        );
        h.insert(
            "link",
            HeaderValue::from_static("<https://static.example.com/a.css>; rel=preload"),
        );
        h.insert(
            "access-control-allow-origin",
            HeaderValue::from_static("https://example.com"),
        );
        h.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'self' *.example.com https://example.com.au"),
        );
        h.append(
            "set-cookie",
            HeaderValue::from_static("sid=example.com; Domain=.example.com; Path=/; Secure"),
        );
        h.append(
            "set-cookie",
            HeaderValue::from_static("b=1; domain=www.example.com"),
        );
        h.append("set-cookie", HeaderValue::from_static("c=1"));
        h.insert("alt-svc", HeaderValue::from_static("h3=\":443\""));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        rewrite_response(&mut h, Some(&rw), false);
        assert_eq!(h["location"], "https://www.example.cn/login?next=%2F");
        assert_eq!(h["content-location"], "https://example.cn/a.json");
        assert_eq!(h["refresh"], "5; url=https://example.cn/");
        assert_eq!(h["link"], "<https://static.example.cn/a.css>; rel=preload");
        assert_eq!(h["access-control-allow-origin"], "https://example.cn");
        assert_eq!(
            h["content-security-policy"],
            "default-src 'self' *.example.cn https://example.com.au"
        );
        let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
        assert_eq!(
            cookies,
            [
                "sid=example.com; Domain=.example.cn; Path=/; Secure",
                "b=1; domain=www.example.cn",
                "c=1"
            ]
        );
        assert!(!h.contains_key("alt-svc"));
        assert!(!h.contains_key("transfer-encoding"));
    }

    #[test]
    fn etags_become_weak_once() {
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"v1\""));
        weaken_etag(&mut h);
        assert_eq!(h["etag"], "W/\"v1\"");
        weaken_etag(&mut h);
        assert_eq!(h["etag"], "W/\"v1\"");
    }
}
