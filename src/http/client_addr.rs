//! Whose request is this: the client address behind trusted proxies.
//!
//! This module owns the trust decision. The connection's peer is the client unless it is a
//! configured trusted proxy; then the one forwarding header the proxies maintain
//! (`X-Forwarded-For` or `Forwarded`, chosen in the configuration, since the other is the
//! client's to forge) is walked from the right, skipping trusted hops: the rightmost
//! untrusted hop is the client. A hop that cannot be read stops the walk at the last hop
//! known good. It does not read PROXY protocol headers ([`super::proxy_protocol`]); their
//! source address, when believed, is simply the peer this module starts from.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName, HeaderValue};
use ipnet::IpNet;

use super::config::ClientIpHeader;

/// Named once rather than by a string per request, which `HeaderMap` would parse first.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub(crate) fn new(nets: &[IpNet]) -> TrustedProxies {
        TrustedProxies {
            nets: nets.to_vec(),
        }
    }

    /// Whether `addr` (IPv4-mapped IPv6 read as IPv4) is a trusted proxy.
    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.nets.iter().any(|n| n.contains(&addr))
    }
}

/// A front-end's trust: the proxies it believes, and the header they maintain.
#[derive(Debug, Clone)]
pub(crate) struct ClientAddress {
    pub trusted: TrustedProxies,
    pub header: ClientIpHeader,
}

/// Where a request's header values are read from: hyper's `HeaderMap`, or the fields the
/// listener's own HTTP/1.1 parser found ([`super::http1`]).
pub(crate) trait HeaderValues {
    /// Every value of the field `name`, in the order received.
    fn values<'a>(&'a self, name: &'a HeaderName)
    -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a;
}

impl HeaderValues for HeaderMap {
    fn values<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

/// The client address of a request that reached us from `peer`.
pub(crate) fn client_address<H: HeaderValues + ?Sized>(
    peer: IpAddr,
    headers: &H,
    trust: &ClientAddress,
) -> IpAddr {
    let trusted = &trust.trusted;
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    match trust.header {
        ClientIpHeader::XForwardedFor => walk(
            peer,
            headers
                .values(&X_FORWARDED_FOR)
                .rev()
                .flat_map(|v| split_rev(v, b',').map(parse_node)),
            trusted,
        ),
        ClientIpHeader::Forwarded => {
            let mut hops = Vec::new();
            for v in headers.values(&FORWARDED) {
                forwarded_for(v, &mut hops);
            }
            walk(peer, hops.into_iter().rev(), trusted)
        }
    }
}

/// From the trusted `peer` leftwards through `hops` (given right to left).
fn walk(
    peer: IpAddr,
    hops: impl Iterator<Item = Option<IpAddr>>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut current = peer;
    for hop in hops {
        let Some(addr) = hop else {
            return current;
        };
        current = addr.to_canonical();
        if !trusted.contains(current) {
            return current;
        }
    }
    current
}

/// The comma-separated items of a header value, right to left, trimmed.
fn split_rev(v: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    v.rsplit(move |&b| b == sep).map(|s| s.trim_ascii())
}

/// A forwarding node: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80` or
/// `[2001:db8::1]`. `unknown`, obfuscated names and anything else are `None`.
fn parse_node(node: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(node).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Appends the `for=` node of each element of a `Forwarded` value (RFC 7239), left to right;
/// an element without one, or with an unreadable one, is `None`.
fn forwarded_for(value: &[u8], out: &mut Vec<Option<IpAddr>>) {
    let mut element_for: Option<Option<IpAddr>> = None;
    let mut i = 0;
    let n = value.len();
    loop {
        // One `name=value` pair.
        while i < n && (value[i] == b' ' || value[i] == b'\t') {
            i += 1;
        }
        let name_start = i;
        while i < n && !matches!(value[i], b'=' | b';' | b',') {
            i += 1;
        }
        let name = value[name_start..i].trim_ascii();
        let mut node: Option<Vec<u8>> = None;
        if i < n && value[i] == b'=' {
            i += 1;
            let mut v = Vec::new();
            if i < n && value[i] == b'"' {
                i += 1;
                while i < n && value[i] != b'"' {
                    if value[i] == b'\\' && i + 1 < n {
                        i += 1;
                    }
                    v.push(value[i]);
                    i += 1;
                }
                i += 1; // closing quote
                while i < n && !matches!(value[i], b';' | b',') {
                    i += 1;
                }
            } else {
                while i < n && !matches!(value[i], b';' | b',') {
                    v.push(value[i]);
                    i += 1;
                }
            }
            node = Some(v);
        }
        if name.eq_ignore_ascii_case(b"for") {
            element_for = Some(node.as_deref().map(|v| v.trim_ascii()).and_then(parse_node));
        }
        if i >= n || value[i] == b',' {
            out.push(element_for.take().flatten());
            if i >= n {
                return;
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedProxies {
        TrustedProxies::new(&[
            "10.0.0.0/8".parse().expect("net"),
            "2001:db8:1::/48".parse().expect("net"),
        ])
    }

    fn trust(header: ClientIpHeader) -> ClientAddress {
        ClientAddress {
            trusted: trusted(),
            header,
        }
    }

    fn xff(peer: &str, values: &[&str]) -> IpAddr {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        client_address(
            peer.parse().expect("peer"),
            &h,
            &trust(ClientIpHeader::XForwardedFor),
        )
    }

    fn fwd(peer: &str, values: &[&str]) -> IpAddr {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED, HeaderValue::from_str(v).expect("value"));
        }
        client_address(
            peer.parse().expect("peer"),
            &h,
            &trust(ClientIpHeader::Forwarded),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(xff("203.0.113.9", &["1.2.4.8"]), ip("203.0.113.9"));
        assert_eq!(fwd("203.0.113.9", &["for=1.2.4.8"]), ip("203.0.113.9"));
    }

    #[test]
    fn rightmost_untrusted_hop_wins() {
        assert_eq!(xff("10.0.0.1", &["1.2.4.8"]), ip("1.2.4.8"));
        // The client prepended a lie; the proxy appended the truth.
        assert_eq!(xff("10.0.0.1", &["1.2.4.8, 8.8.8.8"]), ip("8.8.8.8"));
        assert_eq!(
            xff("10.0.0.1", &["1.2.4.8", "8.8.8.8, 10.1.1.1"]),
            ip("8.8.8.8")
        );
        assert_eq!(
            xff("10.0.0.1", &["1.2.4.8,10.9.9.9 , 10.1.1.1"]),
            ip("1.2.4.8")
        );
        assert_eq!(
            xff("::ffff:10.0.0.1", &["[2001:db8::5]:443"]),
            ip("2001:db8::5")
        );
        assert_eq!(xff("10.0.0.1", &["1.2.4.8:5555"]), ip("1.2.4.8"));
        assert_eq!(xff("10.0.0.1", &["::ffff:1.2.4.8"]), ip("1.2.4.8"));
    }

    #[test]
    fn unreadable_hop_stops_at_the_last_good_one() {
        assert_eq!(xff("10.0.0.1", &["1.2.4.8, unknown"]), ip("10.0.0.1"));
        assert_eq!(
            xff("10.0.0.1", &["1.2.4.8, 10.2.2.2, garbage"]),
            ip("10.0.0.1")
        );
        assert_eq!(xff("10.0.0.1", &["garbage, 10.2.2.2"]), ip("10.2.2.2"));
        // All hops trusted: the leftmost.
        assert_eq!(xff("10.0.0.1", &["10.3.3.3, 10.2.2.2"]), ip("10.3.3.3"));
        assert_eq!(xff("10.0.0.1", &[]), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_header() {
        assert_eq!(fwd("10.0.0.1", &["for=1.2.4.8"]), ip("1.2.4.8"));
        assert_eq!(
            fwd(
                "10.0.0.1",
                &["for=1.2.4.8;proto=https, For=\"[2001:db8::17]:4711\";by=x"]
            ),
            ip("2001:db8::17")
        );
        assert_eq!(
            fwd(
                "10.0.0.1",
                &["for=8.8.8.8", "for=\"1.2.4.8:80\", for=10.5.5.5;proto=http"]
            ),
            ip("1.2.4.8")
        );
        assert_eq!(
            fwd("10.0.0.1", &["for=1.2.4.8, for=\"[2001:db8:1::9]\""]),
            ip("1.2.4.8")
        );
        assert_eq!(
            fwd("10.0.0.1", &["for=1.2.4.8, for=_hidden"]),
            ip("10.0.0.1")
        );
        assert_eq!(
            fwd("10.0.0.1", &["for=1.2.4.8, proto=https"]),
            ip("10.0.0.1")
        );
        // A client-supplied X-Forwarded-For is not consulted when Forwarded is the header.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.4.8"));
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &trust(ClientIpHeader::Forwarded)),
            ip("10.0.0.1")
        );
    }
}
