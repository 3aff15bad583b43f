//! The `[dns]` section (and `[dns.rrl]`): the listeners' addresses, their limits and
//! response rate limiting.
//!
//! This module owns the section's format, defaults and range checks. It does not bind
//! sockets ([`crate::server`]) or limit anything ([`super::rrl`], [`super::tcp`]).

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::rrl::{MAX_RATE, MAX_SLIP};
use crate::diag::{ConfigError, Source};

/// The GeoDNS server's settings (`[dns]`), validated.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Each address gets a UDP socket and a TCP listener.
    pub listen: Vec<SocketAddr>,
    /// The EDNS UDP payload size geoline advertises and the most it sends over UDP.
    pub max_udp_payload: u16,
    /// The TCP listener's limits (the `tcp_*` keys).
    pub tcp: TcpLimits,
    /// UDP worker threads per address, each with its own `SO_REUSEPORT` socket; `None`
    /// means one per CPU the process may run on.
    pub udp_workers: Option<usize>,
    /// How long a UDP worker lets datagrams gather after answering a batch of two or more
    /// and finding its socket empty; zero turns it off (see [`super::udp`]).
    pub udp_coalesce: Duration,
    /// Response rate limiting for UDP (`[dns.rrl]`); `None` when off.
    pub rrl: Option<RrlConfig>,
}

impl DnsConfig {
    /// The EDNS payload size when `[dns]` gives none: the DNS Flag Day 2020 value, which
    /// fits every path MTU without fragmentation.
    pub(crate) const DEFAULT_PAYLOAD: u16 = 1232;
}

/// The limits of the DNS TCP listener (`[dns]` `tcp_*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once, over every listener.
    pub max_connections: usize,
    /// Connections open at once from one client: an IPv4 address or an IPv6 /64.
    pub max_connections_per_client: usize,
    /// How long a connection may wait between messages (RFC 7766 6.2.3).
    pub idle_timeout: Duration,
    /// How long a started message may take to arrive whole, and a response to be taken.
    pub read_timeout: Duration,
    /// Queries answered on one connection before it is closed.
    pub max_queries_per_connection: usize,
}

/// `[dns.rrl]`: response rate limiting, with Knot's `rrl` module's meaning and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second each bucket passes (Knot `rate-limit`, BIND `responses-per-second`).
    pub responses_per_second: u32,
    /// Every `slip`th limited response is sent truncated; 0 never, 1 always.
    pub slip: u32,
    /// IPv4 clients share a bucket per prefix of this length (1-32, default 24).
    pub ipv4_prefix_length: u8,
    /// IPv6 clients share a bucket per prefix of this length (1-128, default 56).
    pub ipv6_prefix_length: u8,
    /// Buckets in the shared table (rounded up to a power of two, 8 bytes each).
    pub table_size: usize,
    /// Networks never limited (monitoring, known resolvers).
    pub whitelist: Vec<IpNet>,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            responses_per_second: 20,
            // Knot's default: every limited response is truncated, never silently lost,
            // and a truncated response is no larger than the query (no amplification).
            slip: 1,
            ipv4_prefix_length: 24,
            ipv6_prefix_length: 56,
            table_size: 1 << 19,
            whitelist: Vec::new(),
        }
    }
}

/// `[dns]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDns {
    listen: Spanned<Vec<SocketAddr>>,
    max_udp_payload: Option<Spanned<u16>>,
    tcp_idle_timeout_secs: Option<Spanned<u64>>,
    #[serde(default)]
    udp_workers: Option<Spanned<usize>>,
    udp_coalesce_us: Option<Spanned<u64>>,
    tcp_max_connections: Option<Spanned<usize>>,
    tcp_max_connections_per_client: Option<Spanned<usize>>,
    tcp_read_timeout_secs: Option<Spanned<u64>>,
    tcp_max_queries_per_connection: Option<Spanned<usize>>,
    rrl: Option<RawRrl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRrl {
    /// A `[dns.rrl]` section turns limiting on, as configuring Knot's module does;
    /// `enabled = false` keeps the settings and turns it off.
    #[serde(default = "crate::diag::default_true")]
    enabled: bool,
    responses_per_second: Option<Spanned<u32>>,
    slip: Option<Spanned<u32>>,
    ipv4_prefix_length: Option<Spanned<u8>>,
    ipv6_prefix_length: Option<Spanned<u8>>,
    table_size: Option<Spanned<usize>>,
    #[serde(default)]
    whitelist: Vec<Spanned<String>>,
}

impl DnsConfig {
    /// Checks `[dns]`.
    pub(crate) fn check(d: RawDns, src: &Source<'_>) -> Result<DnsConfig, ConfigError> {
        if d.listen.get_ref().is_empty() {
            return Err(src.invalid(
                d.listen.span(),
                "dns.listen is empty: give at least one address such as \"127.0.0.1:5300\"".into(),
            ));
        }
        let payload = src.in_range(
            d.max_udp_payload,
            DnsConfig::DEFAULT_PAYLOAD,
            512..=4096,
            "dns.max_udp_payload",
        )?;
        let udp_workers = src.checked(d.udp_workers, 1..=256, "dns.udp_workers")?;
        let rrl = match d.rrl {
            Some(r) if r.enabled => Some(RrlConfig::check(r, src)?),
            _ => None,
        };
        // A few hundred microseconds gathers a batch of dozens at 100,000 queries/s, and is
        // small beside any resolver's round trip.
        let coalesce = src.in_range(d.udp_coalesce_us, 200, 0..=1000, "dns.udp_coalesce_us")?;
        Ok(DnsConfig {
            listen: d.listen.into_inner(),
            max_udp_payload: payload,
            tcp: TcpLimits {
                max_connections: src.in_range(
                    d.tcp_max_connections,
                    1024,
                    1..=1_000_000,
                    "dns.tcp_max_connections",
                )?,
                max_connections_per_client: src.in_range(
                    d.tcp_max_connections_per_client,
                    16,
                    1..=65_535,
                    "dns.tcp_max_connections_per_client",
                )?,
                idle_timeout: Duration::from_secs(src.in_range(
                    d.tcp_idle_timeout_secs,
                    10,
                    1..=300,
                    "dns.tcp_idle_timeout_secs",
                )?),
                read_timeout: Duration::from_secs(src.in_range(
                    d.tcp_read_timeout_secs,
                    5,
                    1..=300,
                    "dns.tcp_read_timeout_secs",
                )?),
                max_queries_per_connection: src.in_range(
                    d.tcp_max_queries_per_connection,
                    100,
                    1..=65_535,
                    "dns.tcp_max_queries_per_connection",
                )?,
            },
            udp_workers,
            rrl,
            udp_coalesce: Duration::from_micros(coalesce),
        })
    }
}

impl RrlConfig {
    fn check(r: RawRrl, src: &Source<'_>) -> Result<RrlConfig, ConfigError> {
        let d = RrlConfig::default();
        let whitelist = r
            .whitelist
            .iter()
            .map(|c| {
                c.get_ref().parse::<IpNet>().map_err(|_| {
                    src.invalid(
                        c.span(),
                        format!(
                            "dns.rrl.whitelist: `{}` is not a CIDR prefix such as 192.0.2.0/24",
                            c.get_ref()
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(RrlConfig {
            responses_per_second: src.in_range(
                r.responses_per_second,
                d.responses_per_second,
                1..=MAX_RATE,
                "dns.rrl.responses_per_second",
            )?,
            slip: src.in_range(r.slip, d.slip, 0..=MAX_SLIP, "dns.rrl.slip")?,
            ipv4_prefix_length: src.in_range(
                r.ipv4_prefix_length,
                d.ipv4_prefix_length,
                1..=32,
                "dns.rrl.ipv4_prefix_length",
            )?,
            ipv6_prefix_length: src.in_range(
                r.ipv6_prefix_length,
                d.ipv6_prefix_length,
                1..=128,
                "dns.rrl.ipv6_prefix_length",
            )?,
            table_size: src.in_range(
                r.table_size,
                d.table_size,
                1024..=1 << 26,
                "dns.rrl.table_size",
            )?,
            whitelist,
        })
    }
}
