//! EDNS Client Subnet (RFC 7871): reading the option strictly, writing it back, and the two
//! rules it decides, written once for the cache, the strict path and `geoline lookup`.
//!
//! This module owns the option's wire form, its validity rules, which address decides the
//! line ([`client`]) and what scope a response carries back ([`scope`]). The scope's value
//! comes from [`crate::lines`] (the widest same-line prefix around the client) and whether
//! it applies from the zone (whether the answer depends on the line at all).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A Client Subnet option as a query carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientSubnet {
    /// Already truncated to `source_prefix` bits: non-zero bits beyond it are a FORMERR.
    pub(crate) address: IpAddr,
    pub(crate) source_prefix: u8,
}

/// Why a Client Subnet option is refused. Its text is [`EcsError::reason`], a static
/// string that becomes part of a FORMERR's reason without allocating, rather than a
/// `Display` impl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcsError {
    Family,
    SourceTooLong,
    ScopeInQuery,
    AddressLength,
    BitsBeyondPrefix,
    Repeated,
}

impl EcsError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            EcsError::Family => "client subnet family is neither IPv4 nor IPv6",
            EcsError::SourceTooLong => "client subnet source prefix is longer than the address",
            EcsError::ScopeInQuery => "client subnet scope prefix must be 0 in a query",
            EcsError::AddressLength => "client subnet address length does not match the prefix",
            EcsError::BitsBeyondPrefix => "client subnet address has bits set beyond the prefix",
            EcsError::Repeated => "more than one client subnet option",
        }
    }
}

impl ClientSubnet {
    pub(crate) const OPTION_CODE: u16 = 8;

    /// Parses the option data (after code and length). RFC 7871 7.1.2 asks for FORMERR on
    /// each of the errors, so that broken resolvers are noticed rather than guessed at.
    pub(crate) fn parse(data: &[u8]) -> Result<ClientSubnet, EcsError> {
        if data.len() < 4 {
            return Err(EcsError::AddressLength);
        }
        let family = u16::from_be_bytes([data[0], data[1]]);
        let (source, scope, addr) = (data[2], data[3], &data[4..]);
        let max = match family {
            1 => 32,
            2 => 128,
            _ => return Err(EcsError::Family),
        };
        if source > max {
            return Err(EcsError::SourceTooLong);
        }
        if scope != 0 {
            return Err(EcsError::ScopeInQuery);
        }
        if addr.len() != usize::from(source).div_ceil(8) {
            return Err(EcsError::AddressLength);
        }
        if let Some(&last) = addr.last() {
            let used = source % 8;
            if used != 0 && last & (0xff >> used) != 0 {
                return Err(EcsError::BitsBeyondPrefix);
            }
        }
        let address = if family == 1 {
            let mut o = [0u8; 4];
            o[..addr.len()].copy_from_slice(addr);
            IpAddr::V4(Ipv4Addr::from(o))
        } else {
            let mut o = [0u8; 16];
            o[..addr.len()].copy_from_slice(addr);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        Ok(ClientSubnet {
            address,
            source_prefix: source,
        })
    }

    /// The option (code, length and data) for a response: family, source prefix and
    /// address as the query sent them, with `scope` (RFC 7871 7.2.1).
    pub(crate) fn write_response(&self, scope: u8, out: &mut Vec<u8>) {
        let mut octets = [0u8; 16];
        let family: u16 = match &self.address {
            IpAddr::V4(a) => {
                octets[..4].copy_from_slice(&a.octets());
                1
            }
            IpAddr::V6(a) => {
                octets.copy_from_slice(&a.octets());
                2
            }
        };
        let len = usize::from(self.source_prefix).div_ceil(8);
        out.extend_from_slice(&Self::OPTION_CODE.to_be_bytes());
        out.extend_from_slice(&((4 + len) as u16).to_be_bytes());
        out.extend_from_slice(&family.to_be_bytes());
        out.push(self.source_prefix);
        out.push(scope);
        out.extend_from_slice(&octets[..len]);
    }
}

/// The address that decides the line: the Client Subnet's, unless the query has none or
/// its source prefix is 0, which asks that the resolver's own address decide (RFC 7871
/// 7.1.2).
#[inline]
pub(crate) fn client(subnet: Option<ClientSubnet>, source: IpAddr) -> IpAddr {
    match subnet {
        Some(s) if s.source_prefix > 0 => s.address,
        _ => source,
    }
}

/// The scope prefix a response carries back (RFC 7871 7.2.1): the line's `line_scope`
/// when the subnet decided the line ([`client`]) and the answer varies by line, else 0
/// ("the same for every client"). `varies_by_line` is asked only when it matters.
#[inline]
pub(crate) fn scope(
    subnet: Option<ClientSubnet>,
    varies_by_line: impl FnOnce() -> bool,
    line_scope: u8,
) -> u8 {
    match subnet {
        Some(s) if s.source_prefix > 0 && varies_by_line() => line_scope,
        _ => 0,
    }
}

/// The scope of a response to a query whose Client Subnet is `address` itself, at its full
/// length: what `geoline lookup` explains. [`scope`], for a subnet that decided the line.
pub fn scope_of_address(
    address: IpAddr,
    varies_by_line: impl FnOnce() -> bool,
    line_scope: u8,
) -> u8 {
    let source_prefix = if address.is_ipv4() { 32 } else { 128 };
    let subnet = ClientSubnet {
        address,
        source_prefix,
    };
    scope(Some(subnet), varies_by_line, line_scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_options() {
        let e = ClientSubnet::parse(&[0, 1, 24, 0, 1, 2, 4]).expect("v4");
        assert_eq!(e.address, IpAddr::from([1, 2, 4, 0]));
        assert_eq!(e.source_prefix, 24);
        let e = ClientSubnet::parse(&[0, 1, 0, 0]).expect("v4 /0");
        assert_eq!(e.address, IpAddr::from([0, 0, 0, 0]));
        let e = ClientSubnet::parse(&[0, 2, 20, 0, 0x24, 0x0e, 0x10]).expect("v6");
        assert_eq!(e.address, "240e:1000::".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn invalid_options() {
        assert_eq!(ClientSubnet::parse(&[0, 3, 0, 0]), Err(EcsError::Family));
        assert_eq!(
            ClientSubnet::parse(&[0, 1, 33, 0, 1, 2, 3, 4, 5]),
            Err(EcsError::SourceTooLong)
        );
        assert_eq!(
            ClientSubnet::parse(&[0, 1, 24, 8, 1, 2, 4]),
            Err(EcsError::ScopeInQuery)
        );
        assert_eq!(
            ClientSubnet::parse(&[0, 1, 24, 0, 1, 2, 4, 0]),
            Err(EcsError::AddressLength)
        );
        assert_eq!(
            ClientSubnet::parse(&[0, 1, 24, 0, 1, 2]),
            Err(EcsError::AddressLength)
        );
        assert_eq!(
            ClientSubnet::parse(&[0, 1, 22, 0, 1, 2, 5]),
            Err(EcsError::BitsBeyondPrefix)
        );
        assert_eq!(ClientSubnet::parse(&[0, 1]), Err(EcsError::AddressLength));
    }

    #[test]
    fn response_echoes_address_with_scope() {
        let e = ClientSubnet::parse(&[0, 1, 22, 0, 1, 2, 4]).expect("v4");
        let mut out = Vec::new();
        e.write_response(15, &mut out);
        assert_eq!(out, [0, 8, 0, 7, 0, 1, 22, 15, 1, 2, 4]);
    }

    #[test]
    fn the_subnet_decides_unless_its_prefix_is_zero() {
        let source = IpAddr::from([8, 8, 4, 4]);
        let subnet = ClientSubnet::parse(&[0, 1, 24, 0, 1, 2, 4]).expect("v4");
        let zero = ClientSubnet::parse(&[0, 1, 0, 0]).expect("v4 /0");
        assert_eq!(client(Some(subnet), source), subnet.address);
        assert_eq!(client(Some(zero), source), source);
        assert_eq!(client(None, source), source);
        assert_eq!(scope(Some(subnet), || true, 16), 16);
        assert_eq!(scope(Some(subnet), || false, 16), 0);
        assert_eq!(scope(Some(zero), || panic!("not asked"), 16), 0);
        assert_eq!(scope(None, || panic!("not asked"), 16), 0);
        let v6 = "2400:da00::1".parse().expect("ip");
        assert_eq!(scope_of_address(v6, || true, 32), 32);
        assert_eq!(scope_of_address(v6, || false, 32), 0);
    }
}
