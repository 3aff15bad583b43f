//! The PROXY protocol (HAProxy, versions 1 and 2) on listeners configured for it.
//!
//! This module owns reading the header a load balancer puts in front of each connection,
//! before any TLS or HTTP byte: the strict parsing of both versions, and handing the bytes
//! that came after it back to the reader ([`Rewind`]). A malformed or missing header is an
//! error and the caller closes the connection. It does not decide whether the addresses are
//! believed: only a connection from a trusted proxy gets its source replaced, and that is
//! the listener's call ([`super::listener`]).
//!
//! Specification: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The fixed start of a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A version 1 line is at most this long, CRLF included.
const V1_MAX: usize = 107;
/// Version 2 allows 64 KiB of address and TLV data; a load balancer sends far less, and a
/// connection is not allowed to make us buffer that much before saying anything.
const V2_MAX_PAYLOAD: usize = 4096;

/// What the header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A proxied TCP connection from `source` to `destination`.
    Proxied {
        /// The client, as the load balancer saw it.
        source: SocketAddr,
        /// The address the client connected to, on the load balancer.
        destination: SocketAddr,
    },
    /// The proxy's own connection (v2 `LOCAL`, health checks), or a family the header does
    /// not carry addresses for (v1 `UNKNOWN`, v2 `UNSPEC` or `UNIX`): the socket peer stands.
    Local,
}

/// Why a connection's header was refused; the connection is then closed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyProtocolError {
    /// The socket failed while the header was being read.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection in the middle of the header.
    #[error("the connection closed before a complete PROXY protocol header")]
    Truncated,
    /// The first bytes are neither `PROXY ` nor the v2 signature: most likely a client
    /// that reached the listener without the load balancer.
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    /// A version 1 (text) header that breaks the specification, and how.
    #[error("malformed PROXY protocol v1 header: {0}")]
    V1(&'static str),
    /// A version 2 (binary) header that breaks the specification, and how.
    #[error("malformed PROXY protocol v2 header: {0}")]
    V2(&'static str),
}

/// Parses a header at the start of `buf`. `Ok(None)`: not enough bytes yet.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyProtocolError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        if n < V2_SIGNATURE.len() {
            return Ok(None);
        }
        return parse_v2(buf);
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        if n < 6 {
            return Ok(None);
        }
        return parse_v1(buf);
    }
    Err(ProxyProtocolError::Missing)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyProtocolError> {
    let bad = ProxyProtocolError::V1;
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if buf.len() >= V1_MAX {
            return Err(bad("no CRLF within 107 bytes"));
        }
        if window.contains(&b'\n') {
            return Err(bad("line ends without CR"));
        }
        return Ok(None);
    };
    if cr + 1 >= buf.len() {
        return Ok(None);
    }
    if buf[cr + 1] != b'\n' {
        return Err(bad("CR not followed by LF"));
    }
    let line = std::str::from_utf8(&buf[6..cr]).map_err(|_| bad("not ASCII"))?;
    let used = cr + 2;
    if let Some(rest) = line.strip_prefix("UNKNOWN") {
        // The receiver must ignore whatever follows UNKNOWN.
        if rest.is_empty() || rest.starts_with(' ') {
            return Ok(Some((ProxyHeader::Local, used)));
        }
        return Err(bad("unknown protocol"));
    }
    let mut parts = line.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad("expected `TCP4|TCP6 source destination sport dport`"));
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            src.parse::<Ipv4Addr>()
                .map_err(|_| bad("bad IPv4 source"))?
                .into(),
            dst.parse::<Ipv4Addr>()
                .map_err(|_| bad("bad IPv4 destination"))?
                .into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>()
                .map_err(|_| bad("bad IPv6 source"))?
                .into(),
            dst.parse::<Ipv6Addr>()
                .map_err(|_| bad("bad IPv6 destination"))?
                .into(),
        ),
        _ => return Err(bad("unknown protocol")),
    };
    let port = |p: &str| -> Result<u16, ProxyProtocolError> {
        let ok = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'));
        ok.then(|| p.parse().ok()).flatten().ok_or(bad("bad port"))
    };
    Ok(Some((
        ProxyHeader::Proxied {
            source: SocketAddr::new(src, port(sport)?),
            destination: SocketAddr::new(dst, port(dport)?),
        },
        used,
    )))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyProtocolError> {
    let bad = ProxyProtocolError::V2;
    if buf.len() < 16 {
        return Ok(None);
    }
    let version = buf[12] >> 4;
    let command = buf[12] & 0x0f;
    let family = buf[13] >> 4;
    let transport = buf[13] & 0x0f;
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if version != 2 {
        return Err(bad("version is not 2"));
    }
    if command > 1 {
        return Err(bad("command is neither LOCAL nor PROXY"));
    }
    if len > V2_MAX_PAYLOAD {
        return Err(bad("address and TLV data longer than 4096 bytes"));
    }
    if buf.len() < 16 + len {
        return Ok(None);
    }
    let payload = &buf[16..16 + len];
    let used = 16 + len;
    if command == 0 {
        return Ok(Some((ProxyHeader::Local, used)));
    }
    if transport > 2 {
        return Err(bad("unknown transport"));
    }
    let header = match family {
        0 | 3 => ProxyHeader::Local,
        1 | 2 if transport != 1 => return Err(bad("PROXY over a transport other than TCP")),
        1 => {
            let a: &[u8; 12] = payload
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(bad("IPv4 addresses need 12 bytes"))?;
            let ip = |o: usize| Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]);
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0).into(), u16::from_be_bytes([a[8], a[9]])),
                destination: SocketAddr::new(ip(4).into(), u16::from_be_bytes([a[10], a[11]])),
            }
        }
        2 => {
            let a: &[u8; 36] = payload
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or(bad("IPv6 addresses need 36 bytes"))?;
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                Ipv6Addr::from(b)
            };
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0).into(), u16::from_be_bytes([a[32], a[33]])),
                destination: SocketAddr::new(ip(16).into(), u16::from_be_bytes([a[34], a[35]])),
            }
        }
        _ => return Err(bad("unknown address family")),
    };
    Ok(Some((header, used)))
}

/// Reads a header from the start of `io`. Bytes read past it stay in the returned
/// [`Rewind`], which reads them first.
pub async fn read_header<S: AsyncRead + Unpin>(
    mut io: S,
) -> Result<(ProxyHeader, Rewind<S>), ProxyProtocolError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if let Some((header, used)) = parse(&buf)? {
            buf.advance(used);
            return Ok((header, Rewind::new(io, buf)));
        }
        if io.read_buf(&mut buf).await? == 0 {
            return Err(ProxyProtocolError::Truncated);
        }
    }
}

/// A stream with some bytes already read from it put back in front.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S> Rewind<S> {
    /// `inner`, with `prefix` read before anything else from it.
    pub fn new(inner: S, prefix: BytesMut) -> Rewind<S> {
        Rewind { prefix, inner }
    }

    /// The stream, and the bytes not read yet of those put back in front of it.
    pub fn into_parts(self) -> (S, BytesMut) {
        (self.inner, self.prefix)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // Not kept for the life of the connection.
                self.prefix = BytesMut::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A version 2 header for a TCP connection from `source` to `destination` (same family),
/// as a load balancer would send it; for tests and tools.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn v1() {
        let h = b"PROXY TCP4 1.2.4.8 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let (header, used) = parse(h).expect("valid").expect("complete");
        assert_eq!(
            header,
            ProxyHeader::Proxied {
                source: sa("1.2.4.8:56324"),
                destination: sa("10.0.0.1:443")
            }
        );
        assert_eq!(&h[used..], b"GET / HTTP/1.1\r\n");
        let h = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
        assert!(matches!(
            parse(h),
            Ok(Some((ProxyHeader::Proxied { .. }, 44)))
        ));
        assert!(matches!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Some((ProxyHeader::Local, 15)))
        ));
        assert!(matches!(
            parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
            Ok(Some((ProxyHeader::Local, _)))
        ));
        // Incomplete headers wait for more.
        for n in 0..h.len() {
            assert!(matches!(parse(&h[..n]), Ok(None)), "{n}");
        }
    }

    #[test]
    fn v1_malformed() {
        for h in [
            &b"PROXY TCP4 1.2.4.8 10.0.0.1 56324\r\n"[..],
            b"PROXY TCP4 1.2.4.8 10.0.0.1 56324 443 x\r\n",
            b"PROXY TCP4 1.2.4.8  10.0.0.1 56324 443\r\n",
            b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",
            b"PROXY TCP6 1.2.4.8 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 1.2.4.8 10.0.0.1 65536 443\r\n",
            b"PROXY TCP4 1.2.4.8 10.0.0.1 0443 443\r\n",
            b"PROXY TCP4 1.2.4.8 10.0.0.1 +443 443\r\n",
            b"PROXY UDP4 1.2.4.8 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 1.2.4.8 10.0.0.1 1 2\n",
            b"PROXY TCP4 1.2.4.8 10.0.0.1 1 2\rX",
            b"GET / HTTP/1.1\r\n",
            b"proxy TCP4 1.2.4.8 10.0.0.1 1 2\r\n",
        ] {
            assert!(parse(h).is_err(), "{:?}", String::from_utf8_lossy(h));
        }
        let long = [b"PROXY ".as_slice(), &[b'A'; 120]].concat();
        assert!(parse(&long).is_err());
    }

    #[test]
    fn v2() {
        let mut h = encode_v2(sa("1.2.4.8:56324"), sa("10.0.0.1:443"));
        let len = h.len();
        h.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            parse(&h).expect("valid"),
            Some((
                ProxyHeader::Proxied {
                    source: sa("1.2.4.8:56324"),
                    destination: sa("10.0.0.1:443")
                },
                len
            ))
        );
        for n in 0..len {
            assert!(matches!(parse(&h[..n]), Ok(None)), "{n}");
        }
        let h6 = encode_v2(sa("[2001:db8::1]:1"), sa("[2001:db8::2]:2"));
        assert!(matches!(
            parse(&h6),
            Ok(Some((ProxyHeader::Proxied { .. }, 52)))
        ));
        // TLVs after the addresses are skipped.
        let mut tlv = encode_v2(sa("1.2.4.8:1"), sa("10.0.0.1:2"));
        tlv[14..16].copy_from_slice(&(12u16 + 7).to_be_bytes());
        tlv.extend_from_slice(&[0x04, 0x00, 0x04, 1, 2, 3, 4]);
        assert!(matches!(parse(&tlv), Ok(Some((_, 35)))));
        // LOCAL: the proxy's own health check.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert!(matches!(parse(&local), Ok(Some((ProxyHeader::Local, 16)))));
    }

    #[test]
    fn v2_malformed() {
        let good = encode_v2(sa("1.2.4.8:1"), sa("10.0.0.1:2"));
        let with = |i: usize, b: u8| {
            let mut h = good.clone();
            h[i] = b;
            h
        };
        for h in [
            with(12, 0x11), // version 1
            with(12, 0x22), // command 2
            with(13, 0x12), // UDP
            with(13, 0x41), // family 4
            with(15, 8),    // IPv4 addresses cut short
            with(13, 0x21), // IPv6 family, 12 bytes
            with(14, 0x20), // 8 KiB payload
        ] {
            assert!(parse(&h).is_err(), "{h:?}");
        }
    }

    #[tokio::test]
    async fn reads_then_rewinds() {
        let mut data = encode_v2(sa("1.2.4.8:1"), sa("10.0.0.1:2"));
        data.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let (header, mut rest) = read_header(&data[..]).await.expect("header");
        assert!(matches!(header, ProxyHeader::Proxied { .. }));
        let mut out = Vec::new();
        rest.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(
            read_header(&b"PROXY TCP4 1.2"[..]).await,
            Err(ProxyProtocolError::Truncated)
        ));
    }
}
