//! The TOML configuration: its types, its loading and its validation.
//!
//! This module owns the file format and every check that can be made on the file alone
//! (unknown keys, duplicate or reserved names, malformed codes and prefixes, references
//! between sections). It does not open zone files or GeoIP databases: [`crate::server`]
//! loads those, and reports their own errors with their own file names.
//!
//! Relative paths in the file are resolved against the directory of the configuration
//! file, so that `geoline --config /etc/geoline/geoline.toml` works from any directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::diag::Source;
use crate::geoip::{FieldOverrides, FieldPath, Subdivision};
use crate::lines::LineSet;
use crate::proxy::ProxyConfig;

pub use crate::diag::{ConfigError, Location};
pub use crate::lines::DEFAULT_LINE;

/// The whole configuration, validated, with every path made absolute or relative to the
/// working directory.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub dns: Option<DnsConfig>,
    pub admin: Option<AdminConfig>,
    /// The rewriting reverse proxy (`[proxy]`), validated; its CA file is read when it starts.
    pub proxy: Option<ProxyConfig>,
    pub reload: ReloadConfig,
    pub geoip: Vec<GeoIpConfig>,
    /// Declared lines in match order; `default` is implicit and comes last.
    pub lines: Vec<LineConfig>,
    pub zones: Vec<ZoneConfig>,
    pub redirect: Option<RedirectConfig>,
    /// The names of `lines`, numbered in match order, and `default`.
    line_set: LineSet,
}

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
    /// and finding its socket empty; zero turns it off (see [`crate::dns::udp`]).
    pub udp_coalesce: Duration,
    /// Response rate limiting for UDP (`[dns.rrl]`); `None` when off.
    pub rrl: Option<RrlConfig>,
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
    pub ipv4_prefix_length: u8,
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

/// The admin listener: metrics, status, reload.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// When set, every endpoint but `/healthz` wants `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// How databases and zones are reloaded while serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Reload a database or zone when its file changes on disk.
    pub watch: bool,
    /// How long a file must stay quiet after a change before it is read: a copy in
    /// progress keeps changing it.
    pub debounce: Duration,
}

impl Default for ReloadConfig {
    fn default() -> ReloadConfig {
        ReloadConfig {
            watch: true,
            debounce: Duration::from_millis(DEFAULT_DEBOUNCE_MS),
        }
    }
}

const DEFAULT_DEBOUNCE_MS: u64 = 500;

/// Where the admin listener listens when `[admin]` gives no address.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9300";

#[derive(Debug, Clone)]
pub struct GeoIpConfig {
    pub path: PathBuf,
    pub layout: GeoIpLayoutChoice,
    /// Field paths replacing the layout's own (`country_field = "country.iso_code"`).
    pub fields: FieldOverrides,
}

/// How the fields of a database's records are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeoIpLayoutChoice {
    /// Recognised from the database's `database_type` metadata.
    Auto,
    /// MaxMind GeoIP2 / GeoLite2 Country, DB-IP country: `country.iso_code`, `continent.code`.
    Geoip2,
    /// GeoIP2 / GeoLite2 City, DB-IP city: the country fields and `subdivisions[].iso_code`.
    Geoip2City,
    /// GeoLite2-ASN, DB-IP ASN: `autonomous_system_number`.
    Geoip2Asn,
    /// IPinfo lite: `country_code`, `continent_code`, `asn` ("AS4134").
    IpinfoLite,
    /// ip-location-db country and city: `country_code`.
    IpLocationDb,
    /// ip-location-db ASN: `autonomous_system_number`.
    IpLocationDbAsn,
}

#[derive(Debug, Clone)]
pub struct LineConfig {
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub countries: Vec<String>,
    /// Two-letter continent codes as GeoIP2 writes them (AF AN AS EU NA OC SA).
    pub continents: Vec<String>,
    /// ISO 3166-2 codes, upper case (`CN-GD`); they need a City database.
    pub subdivisions: Vec<String>,
    /// Autonomous system numbers; they need an ASN database.
    pub asns: Vec<u32>,
    /// Inline prefixes and the contents of `cidr_files`, in that order.
    pub cidrs: Vec<IpNet>,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's apex; when absent, the `$ORIGIN` or SOA owner of the base file.
    pub origin: Option<String>,
    /// The `default` line's data.
    pub file: PathBuf,
    /// Line name to overlay file, holding only what differs for that line.
    pub overlays: BTreeMap<String, PathBuf>,
}

pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

// The file format. Spans are kept where a later check needs to name a line.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    dns: Option<RawDns>,
    admin: Option<RawAdmin>,
    proxy: Option<Spanned<ProxyConfig>>,
    reload: Option<RawReload>,
    #[serde(default)]
    geoip: Vec<RawGeoIp>,
    #[serde(default, rename = "line")]
    lines: Vec<RawLine>,
    #[serde(default, rename = "zone")]
    zones: Vec<RawZone>,
    redirect: Option<RawRedirect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<SocketAddr>,
    token: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReload {
    #[serde(default = "crate::diag::default_true")]
    watch: bool,
    debounce_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeoIp {
    path: PathBuf,
    #[serde(default = "default_layout")]
    layout: GeoIpLayoutChoice,
    country_field: Option<Spanned<String>>,
    continent_field: Option<Spanned<String>>,
    subdivision_field: Option<Spanned<String>>,
    asn_field: Option<Spanned<String>>,
}

fn default_layout() -> GeoIpLayoutChoice {
    GeoIpLayoutChoice::Auto
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    name: Spanned<String>,
    #[serde(default)]
    countries: Vec<Spanned<String>>,
    #[serde(default)]
    continents: Vec<Spanned<String>>,
    #[serde(default)]
    subdivisions: Vec<Spanned<String>>,
    #[serde(default)]
    asns: Vec<Spanned<u32>>,
    #[serde(default)]
    cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    cidr_files: Vec<Spanned<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    origin: Option<String>,
    file: PathBuf,
    #[serde(default)]
    overlays: BTreeMap<Spanned<String>, PathBuf>,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Validates `text` as if it had been read from `path`.
    ///
    /// ```
    /// use std::path::Path;
    /// use geoline::config::Config;
    ///
    /// let text = "[[line]]\nname = \"china\"\ncountries = [\"CN\"]\n";
    /// let err = Config::parse(Path::new("/etc/geoline.toml"), text).unwrap_err();
    /// // A country line needs a database; the error names the file.
    /// assert!(err.to_string().starts_with("/etc/geoline.toml: line `china` matches countries"));
    ///
    /// let text = "[[line]]\nname = \"lab\"\ncidrs = [\"192.0.2.0/24\"]\n";
    /// let config = Config::parse(Path::new("/etc/geoline.toml"), text).unwrap();
    /// assert_eq!(config.line_names(), ["lab", "default"]);
    /// ```
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = Source::new(path, text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            at: file.location(e.span()),
            message: e.message().to_string(),
        })?;

        let dns = raw.dns.map(|d| dns(&file, d)).transpose()?;
        let admin = raw.admin.map(|a| admin(&file, a)).transpose()?;
        let reload = raw
            .reload
            .map(|r| reload(&file, r))
            .transpose()?
            .unwrap_or_default();

        let mut line_set = LineSet::default_only();
        let mut lines: Vec<LineConfig> = Vec::with_capacity(raw.lines.len());
        for line in raw.lines {
            let name = line.name.get_ref();
            if !valid_line_name(name) {
                return Err(file.invalid(
                    line.name.span(),
                    format!(
                        "line name `{name}` must be 1 to 32 characters of a-z, 0-9, `-` and `_`"
                    ),
                ));
            }
            if name == DEFAULT_LINE {
                return Err(file.invalid(
                    line.name.span(),
                    "line `default` is implicit: it is every client no declared line matches"
                        .into(),
                ));
            }
            if lines.iter().any(|l| &l.name == name) {
                return Err(
                    file.invalid(line.name.span(), format!("line `{name}` is declared twice"))
                );
            }
            if line_set.declare(name.clone()).is_none() {
                return Err(file.invalid(
                    line.name.span(),
                    format!(
                        "line `{name}` is one too many: at most {} lines can be declared",
                        LineSet::MAX_DECLARED
                    ),
                ));
            }
            let mut countries = Vec::with_capacity(line.countries.len());
            for c in &line.countries {
                let code = c.get_ref();
                if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(file.invalid(
                        c.span(),
                        format!(
                            "line `{name}`: country `{code}` is not an ISO 3166-1 alpha-2 code (two upper-case letters)"
                        ),
                    ));
                }
                countries.push(code.clone());
            }
            let mut continents = Vec::with_capacity(line.continents.len());
            for c in &line.continents {
                let code = c.get_ref();
                if !CONTINENTS.contains(&code.as_str()) {
                    return Err(file.invalid(
                        c.span(),
                        format!(
                            "line `{name}`: continent `{code}` is not one of {}",
                            CONTINENTS.join(" ")
                        ),
                    ));
                }
                continents.push(code.clone());
            }
            let mut subdivisions = Vec::with_capacity(line.subdivisions.len());
            for c in &line.subdivisions {
                let text = c.get_ref();
                match Subdivision::parse(text) {
                    Some(s) if s.as_str() == text => subdivisions.push(text.clone()),
                    _ => {
                        return Err(file.invalid(
                            c.span(),
                            format!(
                                "line `{name}`: subdivision `{text}` is not an ISO 3166-2 code such as CN-GD (upper case)"
                            ),
                        ));
                    }
                }
            }
            let mut asns = Vec::with_capacity(line.asns.len());
            for a in &line.asns {
                let n = *a.get_ref();
                if n == 0 {
                    return Err(file.invalid(
                        a.span(),
                        format!("line `{name}`: AS0 is reserved and never announces a network"),
                    ));
                }
                asns.push(n);
            }
            let mut cidrs = Vec::new();
            for c in &line.cidrs {
                let net: IpNet = c.get_ref().parse().map_err(|_| {
                    file.invalid(
                        c.span(),
                        format!(
                            "line `{name}`: `{}` is not a CIDR prefix such as 1.2.4.0/22",
                            c.get_ref()
                        ),
                    )
                })?;
                cidrs.push(net.trunc());
            }
            for f in &line.cidr_files {
                let list = file.resolve(f.get_ref());
                cidrs.extend(read_cidr_file(&list)?);
            }
            if countries.is_empty()
                && continents.is_empty()
                && subdivisions.is_empty()
                && asns.is_empty()
                && cidrs.is_empty()
            {
                return Err(file.invalid(
                    line.name.span(),
                    format!("line `{name}` matches nothing: give countries, continents, subdivisions, asns, cidrs or cidr_files"),
                ));
            }
            lines.push(LineConfig {
                name: name.clone(),
                countries,
                continents,
                subdivisions,
                asns,
                cidrs,
            });
        }

        let mut geoip: Vec<GeoIpConfig> = Vec::with_capacity(raw.geoip.len());
        for g in raw.geoip {
            let path = |p: &Option<Spanned<String>>| -> Result<Option<FieldPath>, ConfigError> {
                p.as_ref()
                    .map(|p| {
                        FieldPath::parse(p.get_ref())
                            .map_err(|reason| file.invalid(p.span(), reason))
                    })
                    .transpose()
            };
            geoip.push(GeoIpConfig {
                path: file.resolve(&g.path),
                layout: g.layout,
                fields: FieldOverrides {
                    country: path(&g.country_field)?,
                    continent: path(&g.continent_field)?,
                    subdivision: path(&g.subdivision_field)?,
                    asn: path(&g.asn_field)?,
                },
            });
        }
        if geoip.is_empty()
            && let Some(line) = lines.iter().find(|l| {
                !l.countries.is_empty()
                    || !l.continents.is_empty()
                    || !l.subdivisions.is_empty()
                    || !l.asns.is_empty()
            })
        {
            return Err(file.invalid_file(format!(
                "line `{}` matches countries, continents, subdivisions or ASNs but no [[geoip]] database is configured",
                line.name
            )));
        }

        let mut zones = Vec::with_capacity(raw.zones.len());
        for z in raw.zones {
            let mut overlays = BTreeMap::new();
            for (line, overlay) in z.overlays {
                if !lines.iter().any(|l| &l.name == line.get_ref()) {
                    return Err(file.invalid(
                        line.span(),
                        format!(
                            "overlay for line `{}`, which is not declared (declared: {})",
                            line.get_ref(),
                            declared_names(&lines)
                        ),
                    ));
                }
                overlays.insert(line.into_inner(), file.resolve(&overlay));
            }
            zones.push(ZoneConfig {
                origin: z.origin,
                file: file.resolve(&z.file),
                overlays,
            });
        }

        let proxy = match raw.proxy {
            None => None,
            Some(p) => {
                let span = p.span();
                let mut p = p.into_inner();
                p.resolve_paths(file.dir());
                p.validate()
                    .map_err(|e| file.invalid(span, e.to_string()))?;
                Some(p)
            }
        };

        let redirect = raw
            .redirect
            .map(|r| redirect(&file, r, &lines))
            .transpose()?;

        Ok(Config {
            path: path.to_path_buf(),
            dns,
            admin,
            proxy,
            reload,
            geoip,
            lines,
            zones,
            redirect,
            line_set,
        })
    }

    /// Line names in match order, `default` last: the index of a name is its line's id.
    pub fn line_names(&self) -> Vec<String> {
        self.line_set.names().to_vec()
    }

    /// The declared lines and `default`, numbered in match order.
    pub(crate) fn line_set(&self) -> &LineSet {
        &self.line_set
    }
}

fn declared_names(lines: &[LineConfig]) -> String {
    if lines.is_empty() {
        return "none".into();
    }
    lines
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn valid_line_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Reads a CIDR list: one prefix per line, `#` starts a comment, blank lines ignored.
pub fn read_cidr_file(path: &Path) -> Result<Vec<IpNet>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut nets = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let entry = raw.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let net: IpNet = entry.parse().map_err(|_| ConfigError::Invalid {
            at: Location {
                path: path.to_path_buf(),
                line: Some(i + 1),
            },
            reason: format!("`{entry}` is not a CIDR prefix such as 1.2.4.0/22"),
        })?;
        nets.push(net.trunc());
    }
    Ok(nets)
}

fn admin(file: &Source<'_>, a: RawAdmin) -> Result<AdminConfig, ConfigError> {
    let listen = match a.listen {
        Some(l) => l,
        None => DEFAULT_ADMIN_LISTEN
            .parse()
            .map_err(|_| ConfigError::Invalid {
                at: file.location(None),
                reason: "the default admin address does not parse".into(),
            })?,
    };
    let token = match a.token {
        Some(t) => {
            let text = t.get_ref();
            if text.len() < 16 || !text.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(file.invalid(
                    t.span(),
                    "admin.token must be at least 16 printable ASCII characters, no spaces".into(),
                ));
            }
            Some(text.clone())
        }
        None => None,
    };
    Ok(AdminConfig { listen, token })
}

fn reload(file: &Source<'_>, r: RawReload) -> Result<ReloadConfig, ConfigError> {
    let debounce = match r.debounce_ms {
        Some(d) => {
            let ms = *d.get_ref();
            if !(10..=60_000).contains(&ms) {
                return Err(file.invalid(
                    d.span(),
                    format!("reload.debounce_ms {ms} is outside 10..=60000"),
                ));
            }
            ms
        }
        None => DEFAULT_DEBOUNCE_MS,
    };
    Ok(ReloadConfig {
        watch: r.watch,
        debounce: Duration::from_millis(debounce),
    })
}

fn dns(file: &Source<'_>, d: RawDns) -> Result<DnsConfig, ConfigError> {
    if d.listen.get_ref().is_empty() {
        return Err(file.invalid(
            d.listen.span(),
            "dns.listen is empty: give at least one address such as \"127.0.0.1:5300\"".into(),
        ));
    }
    // The DNS Flag Day 2020 value: fits every path MTU without fragmentation.
    let payload = file.in_range(d.max_udp_payload, 1232, 512..=4096, "dns.max_udp_payload")?;
    let udp_workers = match d.udp_workers {
        Some(w) if !(1..=256).contains(w.get_ref()) => {
            return Err(file.invalid(
                w.span(),
                format!("dns.udp_workers {} is outside 1..=256", w.get_ref()),
            ));
        }
        w => w.map(Spanned::into_inner),
    };
    let rrl = match d.rrl {
        Some(r) if r.enabled => Some(rrl(file, r)?),
        _ => None,
    };
    // A few hundred microseconds gathers a batch of dozens at 100,000 queries/s, and is
    // small beside any resolver's round trip.
    let coalesce = file.in_range(d.udp_coalesce_us, 200, 0..=1000, "dns.udp_coalesce_us")?;
    Ok(DnsConfig {
        listen: d.listen.into_inner(),
        max_udp_payload: payload,
        tcp: TcpLimits {
            max_connections: file.in_range(
                d.tcp_max_connections,
                1024,
                1..=1_000_000,
                "dns.tcp_max_connections",
            )?,
            max_connections_per_client: file.in_range(
                d.tcp_max_connections_per_client,
                16,
                1..=65_535,
                "dns.tcp_max_connections_per_client",
            )?,
            idle_timeout: Duration::from_secs(file.in_range(
                d.tcp_idle_timeout_secs,
                10,
                1..=300,
                "dns.tcp_idle_timeout_secs",
            )?),
            read_timeout: Duration::from_secs(file.in_range(
                d.tcp_read_timeout_secs,
                5,
                1..=300,
                "dns.tcp_read_timeout_secs",
            )?),
            max_queries_per_connection: file.in_range(
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

fn rrl(file: &Source<'_>, r: RawRrl) -> Result<RrlConfig, ConfigError> {
    let d = RrlConfig::default();
    let whitelist = r
        .whitelist
        .iter()
        .map(|c| {
            c.get_ref().parse::<IpNet>().map_err(|_| {
                file.invalid(
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
        responses_per_second: file.in_range(
            r.responses_per_second,
            d.responses_per_second,
            1..=crate::dns::rrl::MAX_RATE,
            "dns.rrl.responses_per_second",
        )?,
        slip: file.in_range(
            r.slip,
            d.slip,
            0..=crate::dns::rrl::MAX_SLIP,
            "dns.rrl.slip",
        )?,
        ipv4_prefix_length: file.in_range(
            r.ipv4_prefix_length,
            d.ipv4_prefix_length,
            1..=32,
            "dns.rrl.ipv4_prefix_length",
        )?,
        ipv6_prefix_length: file.in_range(
            r.ipv6_prefix_length,
            d.ipv6_prefix_length,
            1..=128,
            "dns.rrl.ipv6_prefix_length",
        )?,
        table_size: file.in_range(
            r.table_size,
            d.table_size,
            1024..=1 << 26,
            "dns.rrl.table_size",
        )?,
        whitelist,
    })
}

// ---------------------------------------------------------------------------------------
// [redirect]: the Hong Kong redirector (src/redirect/).

/// The `[redirect]` section: listeners, certificates, rules, whom to trust for the client
/// address, and the origin non-matching clients are passed through to.
#[derive(Debug, Clone)]
pub struct RedirectConfig {
    pub listeners: Vec<RedirectListenerConfig>,
    /// Certificates for the TLS listeners, chosen by SNI; the first is the fallback.
    pub certificates: Vec<CertificateConfig>,
    pub rules: Vec<RedirectRuleConfig>,
    /// Peers whose `X-Forwarded-For` / `Forwarded` / PROXY protocol header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The one header trusted proxies maintain; any other is the client's to forge.
    pub client_ip_header: ClientIpHeader,
    pub origin: OriginConfig,
    /// Request heads (and TLS handshakes, PROXY headers) slower than this are cut off.
    pub header_read_timeout: Duration,
    /// The largest request head, in bytes.
    pub max_header_bytes: usize,
    /// The most header fields in one request.
    pub max_headers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectListenerConfig {
    pub address: SocketAddr,
    pub tls: bool,
    /// Every connection starts with a PROXY protocol v1 or v2 header.
    pub proxy_protocol: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// Lower-case SNI names this certificate answers, `*.example.com` for one label.
    pub names: Vec<String>,
    /// PEM: the leaf certificate first, then its chain.
    pub cert: PathBuf,
    /// PEM: PKCS#8, PKCS#1 or SEC1 private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRuleConfig {
    /// Lower case, no trailing dot; the rule covers it and its subdomains.
    pub from: String,
    /// Lower case, no trailing dot; `a.from` is sent to `a.to`.
    pub to: String,
    /// The scheme of the `Location`.
    pub scheme: TargetScheme,
    /// Clients in these lines are redirected; everyone else is passed through.
    pub lines: Vec<String>,
    /// 301, 302, 307 or 308.
    pub status: u16,
    /// `Cache-Control: private, max-age=N`.
    pub max_age_secs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetScheme {
    Https,
    Http,
}

impl TargetScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetScheme::Https => "https",
            TargetScheme::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginConfig {
    /// `https://example.com[:port]`: the scheme and port every passed-through host is
    /// reached at; its host is one the rules cover.
    pub url: String,
    /// Dial this instead of resolving the host; TLS still verifies the host name.
    pub connect_to: Option<SocketAddr>,
    /// PEM CA certificates trusted for the origin besides the webpki roots.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirect {
    #[serde(rename = "listen")]
    listeners: Spanned<Vec<RawRedirectListener>>,
    #[serde(default, rename = "certificate")]
    certificates: Vec<RawCertificate>,
    #[serde(rename = "rule")]
    rules: Spanned<Vec<RawRedirectRule>>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    #[serde(default = "default_client_ip_header")]
    client_ip_header: ClientIpHeader,
    origin: Spanned<RawOrigin>,
    #[serde(default = "default_header_read_timeout")]
    header_read_timeout_secs: Spanned<u64>,
    #[serde(default = "default_max_header_bytes")]
    max_header_bytes: Spanned<usize>,
    #[serde(default = "default_max_headers")]
    max_headers: Spanned<usize>,
}

fn default_client_ip_header() -> ClientIpHeader {
    ClientIpHeader::XForwardedFor
}

fn default_header_read_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 10)
}

fn default_max_header_bytes() -> Spanned<usize> {
    // nginx's large_client_header_buffers (4 8k) allows about this much in all.
    Spanned::new(0..0, 32 * 1024)
}

fn default_max_headers() -> Spanned<usize> {
    Spanned::new(0..0, 100)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirectListener {
    address: Spanned<SocketAddr>,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    proxy_protocol: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    names: Spanned<Vec<Spanned<String>>>,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirectRule {
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(default = "default_scheme")]
    scheme: TargetScheme,
    lines: Spanned<Vec<Spanned<String>>>,
    #[serde(default = "default_status")]
    status: Spanned<u16>,
    #[serde(default = "default_max_age")]
    max_age_secs: Spanned<u32>,
}

fn default_scheme() -> TargetScheme {
    TargetScheme::Https
}

fn default_status() -> Spanned<u16> {
    Spanned::new(0..0, 301)
}

fn default_max_age() -> Spanned<u32> {
    Spanned::new(0..0, 3600)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    url: Spanned<String>,
    connect_to: Option<SocketAddr>,
    ca_file: Option<PathBuf>,
    #[serde(default = "default_origin_connect_timeout")]
    connect_timeout_secs: Spanned<u64>,
    #[serde(default = "default_origin_response_timeout")]
    response_timeout_secs: Spanned<u64>,
}

fn default_origin_connect_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}

fn default_origin_response_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 30)
}

/// A host name as the redirector compares them: lower case, no trailing dot, letters,
/// digits, `-` and `_` in labels of 1 to 63, at most 253 in all. `None` for anything else.
pub fn normalize_host(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let ok = name.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    ok.then(|| name.to_ascii_lowercase())
}

/// Whether `host` is `domain` or a subdomain of it; both already normalized.
pub fn is_under(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

fn redirect(
    file: &Source<'_>,
    r: RawRedirect,
    lines: &[LineConfig],
) -> Result<RedirectConfig, ConfigError> {
    if r.listeners.get_ref().is_empty() {
        return Err(file.invalid(
            r.listeners.span(),
            "redirect.listen is empty: give at least one [[redirect.listen]] address".into(),
        ));
    }
    let listeners: Vec<RedirectListenerConfig> = r
        .listeners
        .get_ref()
        .iter()
        .map(|l| RedirectListenerConfig {
            address: *l.address.get_ref(),
            tls: l.tls,
            proxy_protocol: l.proxy_protocol,
        })
        .collect();
    for (i, l) in r.listeners.get_ref().iter().enumerate() {
        let addr = l.address.get_ref();
        if addr.port() != 0 && listeners[..i].iter().any(|o| o.address == *addr) {
            return Err(file.invalid(
                l.address.span(),
                format!("redirect.listen: {addr} is given twice"),
            ));
        }
    }

    let mut certificates = Vec::with_capacity(r.certificates.len());
    for c in &r.certificates {
        if c.names.get_ref().is_empty() {
            return Err(file.invalid(
                c.names.span(),
                "redirect.certificate: names is empty: give the SNI names it serves".into(),
            ));
        }
        let mut names = Vec::new();
        for n in c.names.get_ref() {
            let raw = n.get_ref();
            let (wild, rest) = match raw.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, raw.as_str()),
            };
            let Some(name) = normalize_host(rest) else {
                return Err(file.invalid(
                    n.span(),
                    format!(
                        "redirect.certificate: `{raw}` is not a host name or `*.` followed by one"
                    ),
                ));
            };
            names.push(if wild { format!("*.{name}") } else { name });
        }
        certificates.push(CertificateConfig {
            names,
            cert: file.resolve(&c.cert),
            key: file.resolve(&c.key),
        });
    }
    if certificates.is_empty()
        && let Some(l) = r.listeners.get_ref().iter().find(|l| l.tls)
    {
        return Err(file.invalid(
            l.address.span(),
            format!(
                "redirect.listen {} has tls = true but no [[redirect.certificate]] is configured",
                l.address.get_ref()
            ),
        ));
    }

    if r.rules.get_ref().is_empty() {
        return Err(file.invalid(
            r.rules.span(),
            "redirect.rule is empty: give at least one [[redirect.rule]]".into(),
        ));
    }
    let mut rules: Vec<RedirectRuleConfig> = Vec::new();
    for rule in r.rules.get_ref() {
        let host = |s: &Spanned<String>, what: &str| {
            normalize_host(s.get_ref()).ok_or_else(|| {
                file.invalid(
                    s.span(),
                    format!(
                        "redirect.rule: {what} `{}` is not a host name such as example.com",
                        s.get_ref()
                    ),
                )
            })
        };
        let from = host(&rule.from, "from")?;
        let to = host(&rule.to, "to")?;
        if rules.iter().any(|o| o.from == from) {
            return Err(file.invalid(
                rule.from.span(),
                format!("redirect.rule: `{from}` is the from of two rules"),
            ));
        }
        let status = *rule.status.get_ref();
        if ![301, 302, 307, 308].contains(&status) {
            return Err(file.invalid(
                rule.status.span(),
                format!("redirect.rule `{from}`: status {status} is not 301, 302, 307 or 308"),
            ));
        }
        let max_age = *rule.max_age_secs.get_ref();
        if max_age > 31_536_000 {
            return Err(file.invalid(
                rule.max_age_secs.span(),
                format!("redirect.rule `{from}`: max_age_secs {max_age} is more than a year"),
            ));
        }
        if rule.lines.get_ref().is_empty() {
            return Err(file.invalid(
                rule.lines.span(),
                format!("redirect.rule `{from}`: lines is empty: name the lines to redirect"),
            ));
        }
        let mut rule_lines = Vec::new();
        for l in rule.lines.get_ref() {
            let name = l.get_ref();
            if name != DEFAULT_LINE && !lines.iter().any(|d| &d.name == name) {
                return Err(file.invalid(
                    l.span(),
                    format!(
                        "redirect.rule `{from}`: line `{name}` is not declared (declared: {})",
                        declared_names(lines)
                    ),
                ));
            }
            rule_lines.push(name.clone());
        }
        rules.push(RedirectRuleConfig {
            from,
            to,
            scheme: rule.scheme,
            lines: rule_lines,
            status,
            max_age_secs: max_age,
        });
    }
    // A target inside a covered domain would be redirected again, forever.
    for (rule, raw) in rules.iter().zip(r.rules.get_ref()) {
        if let Some(other) = rules.iter().find(|o| is_under(&rule.to, &o.from)) {
            return Err(file.invalid(
                    raw.to.span(),
                    format!(
                        "redirect.rule `{}`: to `{}` is covered by the rule for `{}`: clients would be redirected in a loop",
                        rule.from, rule.to, other.from
                    ),
                ));
        }
    }

    let mut trusted_proxies = Vec::with_capacity(r.trusted_proxies.len());
    for t in &r.trusted_proxies {
        let text = t.get_ref();
        let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    file.invalid(
                        t.span(),
                        format!("redirect.trusted_proxies: `{text}` is not an address or CIDR prefix such as 10.0.0.0/8"),
                    )
                })?;
        trusted_proxies.push(net.trunc());
    }

    let origin = r.origin.get_ref();
    let url = origin.url.get_ref();
    let bad_url = |reason: &str| {
        file.invalid(
            origin.url.span(),
            format!("redirect.origin.url `{url}`: {reason}"),
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad_url("give https://host or http://host, with an optional port"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let origin_host = match rest.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => rest,
    };
    let origin_host = normalize_host(origin_host).ok_or_else(|| {
        bad_url("a path, user or address is not allowed: only a host name and port")
    })?;
    if !rules.iter().any(|rule| is_under(&origin_host, &rule.from)) {
        return Err(bad_url(
            "its host is not covered by any rule (passed-through clients keep the host they asked for)",
        ));
    }
    let timeout = |s: &Spanned<u64>, field: &str| {
        let v = *s.get_ref();
        if (1..=300).contains(&v) {
            Ok(Duration::from_secs(v))
        } else {
            Err(file.invalid(
                s.span(),
                format!("redirect.origin.{field} {v} is outside 1..=300"),
            ))
        }
    };
    let origin = OriginConfig {
        url: url.clone(),
        connect_to: origin.connect_to,
        ca_file: origin.ca_file.as_deref().map(|p| file.resolve(p)),
        connect_timeout: timeout(&origin.connect_timeout_secs, "connect_timeout_secs")?,
        response_timeout: timeout(&origin.response_timeout_secs, "response_timeout_secs")?,
    };

    let read = *r.header_read_timeout_secs.get_ref();
    if !(1..=300).contains(&read) {
        return Err(file.invalid(
            r.header_read_timeout_secs.span(),
            format!("redirect.header_read_timeout_secs {read} is outside 1..=300"),
        ));
    }
    let max_header_bytes = *r.max_header_bytes.get_ref();
    // hyper's read buffer cannot be smaller than 8 KiB.
    if !(8192..=1 << 20).contains(&max_header_bytes) {
        return Err(file.invalid(
            r.max_header_bytes.span(),
            format!("redirect.max_header_bytes {max_header_bytes} is outside 8192..=1048576"),
        ));
    }
    let max_headers = *r.max_headers.get_ref();
    if !(8..=1000).contains(&max_headers) {
        return Err(file.invalid(
            r.max_headers.span(),
            format!("redirect.max_headers {max_headers} is outside 8..=1000"),
        ));
    }

    Ok(RedirectConfig {
        listeners,
        certificates,
        rules,
        trusted_proxies,
        client_ip_header: r.client_ip_header,
        origin,
        header_read_timeout: Duration::from_secs(read),
        max_header_bytes,
        max_headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), text)
    }

    const GOOD: &str = r#"
[dns]
listen = ["127.0.0.1:5300", "[::1]:5300"]

[[geoip]]
path = "geoip/db.mmdb"

[[line]]
name = "china"
countries = ["CN"]
cidrs = ["1.2.4.0/22", "2001:db8::/32"]

[[zone]]
file = "zones/example.com.zone"
overlays = { china = "zones/example.com.china.zone" }
"#;

    #[test]
    fn good_config_loads_with_defaults() {
        let c = parse(GOOD).expect("valid");
        let dns = c.dns.as_ref().expect("dns section");
        assert_eq!(dns.listen.len(), 2);
        assert_eq!(dns.max_udp_payload, 1232);
        assert_eq!(dns.tcp.idle_timeout, Duration::from_secs(10));
        assert_eq!(dns.udp_coalesce, Duration::from_micros(200));
        assert_eq!(
            (
                dns.tcp.max_connections,
                dns.tcp.max_connections_per_client,
                dns.tcp.read_timeout,
                dns.tcp.max_queries_per_connection
            ),
            (1024, 16, Duration::from_secs(5), 100)
        );
        assert_eq!(c.line_names(), vec!["china", "default"]);
        assert_eq!(c.lines[0].cidrs.len(), 2);
        assert_eq!(c.geoip[0].layout, GeoIpLayoutChoice::Auto);
        assert_eq!(
            c.zones[0].overlays["china"],
            PathBuf::from("zones/example.com.china.zone")
        );
    }

    #[test]
    fn rrl_section_turns_limiting_on_with_knot_defaults() {
        let dns = |text: &str| parse(text).expect("valid").dns.expect("dns section");
        assert_eq!(dns(GOOD).rrl, None);
        let on = dns(&format!("{GOOD}\n[dns.rrl]\n"));
        assert_eq!(on.rrl, Some(RrlConfig::default()));
        let off = dns(&format!("{GOOD}\n[dns.rrl]\nenabled = false\nslip = 3\n"));
        assert_eq!(off.rrl, None);
        let tuned = dns(&format!(
            "{GOOD}\n[dns.rrl]\nresponses_per_second = 50\nslip = 0\nipv4_prefix_length = 32\nipv6_prefix_length = 64\ntable_size = 2048\nwhitelist = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n"
        ));
        let rrl = tuned.rrl.expect("on");
        assert_eq!(
            (
                rrl.responses_per_second,
                rrl.slip,
                rrl.ipv4_prefix_length,
                rrl.ipv6_prefix_length,
                rrl.table_size
            ),
            (50, 0, 32, 64, 2048)
        );
        assert_eq!(rrl.whitelist.len(), 2);
    }

    #[test]
    fn rrl_errors_name_the_line() {
        // GOOD ends on line 16, a blank line, then "[dns.rrl]": the key is on line 18.
        for (key, message) in [
            (
                "responses_per_second = 0",
                "dns.rrl.responses_per_second 0 is outside 1..=1048575",
            ),
            ("slip = 5000", "dns.rrl.slip 5000 is outside 0..=4095"),
            (
                "ipv4_prefix_length = 33",
                "dns.rrl.ipv4_prefix_length 33 is outside 1..=32",
            ),
            (
                "ipv6_prefix_length = 0",
                "dns.rrl.ipv6_prefix_length 0 is outside 1..=128",
            ),
            (
                "table_size = 10",
                "dns.rrl.table_size 10 is outside 1024..=67108864",
            ),
            (
                "whitelist = [\"192.0.2.0/33\"]",
                "dns.rrl.whitelist: `192.0.2.0/33` is not a CIDR prefix",
            ),
        ] {
            let text = format!("{GOOD}\n[dns.rrl]\n{key}\n");
            let err = error_text(&text);
            assert!(
                err.starts_with(&format!("test.toml:18: {message}")),
                "{err}"
            );
        }
        assert!(
            error_text(&format!("{GOOD}\n[dns.rrl]\nrate = 5\n")).contains("unknown field `rate`")
        );
        let tcp = GOOD.replace("[dns]\n", "[dns]\ntcp_max_connections_per_client = 0\n");
        let err = error_text(&tcp);
        assert!(
            err.starts_with(
                "test.toml:3: dns.tcp_max_connections_per_client 0 is outside 1..=65535"
            ),
            "{err}"
        );
    }

    fn error_text(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn udp_coalesce_is_zero_to_a_millisecond() {
        let with = |us: u64| GOOD.replace("[dns]\n", &format!("[dns]\nudp_coalesce_us = {us}\n"));
        let dns = |text: &str| parse(text).expect("valid").dns.expect("dns").udp_coalesce;
        assert_eq!(dns(&with(0)), Duration::ZERO);
        assert_eq!(dns(&with(1000)), Duration::from_millis(1));
        let e = error_text(&with(1001));
        assert!(e.starts_with("test.toml:3:"), "{e}");
        assert!(
            e.contains("dns.udp_coalesce_us 1001 is outside 0..=1000"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = GOOD.replace("countries = [\"CN\"]", "countrys = [\"CN\"]");
        let e = error_text(&text);
        assert!(e.starts_with("test.toml:10:"), "{e}");
        assert!(e.contains("countrys"), "{e}");
    }

    #[test]
    fn bad_country_names_line() {
        let e = error_text(&GOOD.replace("[\"CN\"]", "[\"cn\"]"));
        assert!(e.starts_with("test.toml:10:"), "{e}");
        assert!(e.contains("`cn`"), "{e}");
    }

    #[test]
    fn bad_cidr_names_line() {
        let e = error_text(&GOOD.replace("1.2.4.0/22", "1.2.4.0/33"));
        assert!(e.starts_with("test.toml:11:"), "{e}");
    }

    #[test]
    fn overlay_for_undeclared_line_is_an_error() {
        let e = error_text(&GOOD.replace("{ china =", "{ chna ="));
        assert!(e.starts_with("test.toml:15:"), "{e}");
        assert!(e.contains("`chna`"), "{e}");
    }

    #[test]
    fn default_line_cannot_be_declared() {
        let e = error_text(&GOOD.replace("name = \"china\"", "name = \"default\""));
        assert!(e.contains("implicit"), "{e}");
    }

    #[test]
    fn at_most_255_lines_can_be_declared() {
        // Each line is three lines of text: line `l{i}` is named on line 3i + 2.
        let lines = |n: usize| -> String {
            (0..n)
                .map(|i| format!("[[line]]\nname = \"l{i}\"\ncidrs = [\"10.0.{i}.0/24\"]\n"))
                .collect()
        };
        let c = parse(&lines(255)).expect("255 lines are accepted");
        let set = c.line_set();
        assert_eq!(set.len(), 256);
        assert_eq!(set.name(set.default_line()), DEFAULT_LINE);
        assert_eq!(set.id("l254").map(|id| id.index()), Some(254));
        assert_eq!(set.default_line().index(), 255);
        assert_eq!(
            error_text(&lines(256)),
            "test.toml:767: line `l255` is one too many: at most 255 lines can be declared"
        );
    }

    #[test]
    fn duplicate_line_is_an_error() {
        let text = format!("{GOOD}\n[[line]]\nname = \"china\"\ncidrs = [\"10.0.0.0/8\"]\n");
        let e = error_text(&text);
        assert!(e.contains("declared twice"), "{e}");
    }

    #[test]
    fn country_line_without_database_is_an_error() {
        let e = error_text(&GOOD.replace("[[geoip]]\npath = \"geoip/db.mmdb\"\n", ""));
        assert!(e.contains("no [[geoip]] database"), "{e}");
    }

    #[test]
    fn subdivisions_asns_and_field_paths() {
        let text = GOOD
            .replace(
                "countries = [\"CN\"]",
                "countries = [\"CN\"]\nsubdivisions = [\"CN-GD\", \"GB-ENG\"]\nasns = [4134, 4837]",
            )
            .replace(
                "path = \"geoip/db.mmdb\"",
                "path = \"geoip/db.mmdb\"\nlayout = \"geoip2-city\"\ncountry_field = \"registered_country.iso_code\"\nsubdivision_field = \"subdivisions[].iso_code\"",
            );
        let c = parse(&text).expect("valid");
        assert_eq!(c.lines[0].subdivisions, vec!["CN-GD", "GB-ENG"]);
        assert_eq!(c.lines[0].asns, vec![4134, 4837]);
        assert_eq!(c.geoip[0].layout, GeoIpLayoutChoice::Geoip2City);
        assert_eq!(
            c.geoip[0].fields.country.as_ref().map(|p| p.as_str()),
            Some("registered_country.iso_code")
        );
        assert!(c.geoip[0].fields.asn.is_none());

        let e = error_text(&text.replace("\"CN-GD\"", "\"cn-gd\""));
        assert!(e.starts_with("test.toml:"), "{e}");
        assert!(
            e.contains("subdivision `cn-gd` is not an ISO 3166-2 code"),
            "{e}"
        );
        let e = error_text(&text.replace("4134, 4837", "0"));
        assert!(e.contains("AS0"), "{e}");
        let e = error_text(&text.replace("4134, 4837", "-1"));
        assert!(e.starts_with("test.toml:"), "{e}");
        let e = error_text(&text.replace("subdivisions[].iso_code", "subdivisions[].[]"));
        assert_eq!(
            e,
            "test.toml:9: field path `subdivisions[].[]` has an empty part"
        );
        let e = error_text(&text.replace("geoip2-city", "geoip3"));
        assert!(e.starts_with("test.toml:7:"), "{e}");
        let e = error_text(
            &GOOD
                .replace("countries = [\"CN\"]", "asns = [4134]")
                .replace("[[geoip]]\npath = \"geoip/db.mmdb\"\n", ""),
        );
        assert!(e.contains("no [[geoip]] database"), "{e}");
    }

    #[test]
    fn admin_and_reload_sections() {
        let c = parse(GOOD).expect("valid");
        assert!(c.admin.is_none());
        assert_eq!(c.reload, ReloadConfig::default());
        let c = parse(&format!(
            "{GOOD}\n[admin]\ntoken = \"0123456789abcdef\"\n[reload]\nwatch = false\ndebounce_ms = 50\n"
        ))
        .expect("valid");
        let admin = c.admin.expect("admin");
        assert_eq!(admin.listen, "127.0.0.1:9300".parse().expect("addr"));
        assert_eq!(admin.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            c.reload,
            ReloadConfig {
                watch: false,
                debounce: Duration::from_millis(50)
            }
        );
        let e = error_text(&format!("{GOOD}\n[admin]\ntoken = \"short\"\n"));
        assert!(e.starts_with("test.toml:18: admin.token"), "{e}");
        let e = error_text(&format!("{GOOD}\n[reload]\ndebounce_ms = 0\n"));
        assert!(e.starts_with("test.toml:18: reload.debounce_ms 0"), "{e}");
    }

    #[test]
    fn syntax_error_names_line() {
        let e = error_text("[dns]\nlisten = [\n\"127.0.0.1:53\",\n= oops\n");
        assert!(e.starts_with("test.toml:4:"), "{e}");
    }

    #[test]
    fn cidr_file_errors_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("geoline-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let list = dir.join("list.txt");
        std::fs::write(&list, "# mainland\n1.2.4.0/22  # cnnic\n\nnot-a-prefix\n").expect("write");
        let e = read_cidr_file(&list).expect_err("bad entry");
        assert_eq!(
            e.to_string(),
            format!(
                "{}:4: `not-a-prefix` is not a CIDR prefix such as 1.2.4.0/22",
                list.display()
            )
        );
        std::fs::write(&list, "# mainland\n1.2.4.0/22  # cnnic\n\n240e::/20\n").expect("write");
        let nets = read_cidr_file(&list).expect("good list");
        assert_eq!(
            nets,
            vec![
                "1.2.4.0/22".parse::<IpNet>().expect("net"),
                "240e::/20".parse().expect("net")
            ]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
