//! The TOML configuration: one file, composed of the sections the subsystems own.
//!
//! Each section's types, defaults and checks live beside the code that uses them
//! ([`crate::dns::config`], [`crate::geoip::config`], [`crate::lines::config`],
//! [`crate::zone::config`], [`crate::redirect::config`], [`crate::admin::config`],
//! [`crate::reload::config`], [`crate::health::config`], and [`crate::proxy::ProxyConfig`]). This module owns what is
//! about the file as a whole (reading it, TOML syntax, unknown sections) and the checks that
//! span sections: overlays and redirect rules naming declared lines, a line matching on
//! database fields without a database. Messages read `file:line: reason` ([`crate::diag`]).
//!
//! It does not open zone files or GeoIP databases: [`crate::server`] loads those, and
//! reports their own errors with their own file names.
//!
//! Relative paths in the file are resolved against the directory of the configuration
//! file, so that `geoline --config /etc/geoline/geoline.toml` works from any directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::admin::config::RawAdmin;
use crate::diag::Source;
use crate::dns::config::RawDns;
use crate::dns::tsig::config::RawKey;
use crate::geoip::config::RawGeoIp;
use crate::health::config::RawHealth;
use crate::lines::LineSet;
use crate::lines::config::{RawLine, declared_names};
use crate::proxy::config::RawProxy;
use crate::redirect::config::RawRedirect;
use crate::reload::config::RawReload;
use crate::update::config::RawUpdate;
use crate::zone::config::RawZone;

pub use crate::acme::config::{AcmeConfig, AcmeOverrides, KeyType, OrderSettings, Rfc2136Server};
pub use crate::admin::config::{AdminConfig, DEFAULT_ADMIN_LISTEN};
pub use crate::diag::{ConfigError, Location};
pub use crate::dns::config::{DnsConfig, RrlConfig, TcpLimits};
pub use crate::dns::tsig::{Algorithm, Key, KeyRing};
pub use crate::geoip::config::GeoIpConfig;
pub use crate::health::config::{Check, HealthConfig, HttpCheck, MonitorConfig, TlsCheck};
pub use crate::health::state::Thresholds;
pub use crate::lines::DEFAULT_LINE;
pub use crate::lines::config::{CONTINENTS, LineConfig};
pub use crate::proxy::ProxyConfig;
pub use crate::redirect::config::{
    AccessLogTarget, CertificateConfig, ClientIpHeader, FrontConfig, ListenerConfig, OriginConfig,
    RedirectConfig, RedirectListenerConfig, RedirectRuleConfig, TargetScheme,
};
pub use crate::reload::config::ReloadConfig;
pub use crate::update::UpdateConfig;
pub use crate::zone::config::ZoneConfig;

/// The whole configuration, validated, with every path made absolute or relative to the
/// working directory.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// The GeoDNS server (`[dns]`); `None` when the section is absent and DNS is not served.
    pub dns: Option<DnsConfig>,
    /// The admin HTTP endpoint (`[admin]`); `None` when absent.
    pub admin: Option<AdminConfig>,
    /// The rewriting reverse proxy (`[proxy]`), validated; its CA file is read when it starts.
    pub proxy: Option<ProxyConfig>,
    /// How file changes are picked up (`[reload]`); defaults when the section is absent.
    pub reload: ReloadConfig,
    /// The GeoIP databases (`[[geoip]]`), in lookup order: the first with a field wins.
    pub geoip: Vec<GeoIpConfig>,
    /// Declared lines in match order; `default` is implicit and comes last.
    pub lines: Vec<LineConfig>,
    /// The zones served (`[[zone]]`), their files not yet read.
    pub zones: Vec<ZoneConfig>,
    /// The redirector (`[redirect]`); `None` when absent.
    pub redirect: Option<RedirectConfig>,
    /// The TSIG keys (`[[key]]`, secret and BIND key files read); empty when none.
    pub keys: KeyRing,
    /// Dynamic updates (`[update]`): journals, rate and grants; without the section no
    /// zone has writers.
    pub update: UpdateConfig,
    /// Health checks (`[health]`): the watched addresses and what answers do when they
    /// are down; none watched without the section.
    pub health: HealthConfig,
    /// Certificates obtained by ACME (`[acme]`): the CA, the state directory, how the
    /// DNS-01 challenges are published and checked.
    pub acme: crate::acme::config::AcmeConfig,
    /// The names of `lines`, numbered, and `default`.
    pub(crate) line_set: LineSet,
}

// The file: each section as its owner writes it. Spans are kept where a check needs to
// name a line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    dns: Option<RawDns>,
    admin: Option<RawAdmin>,
    proxy: Option<Spanned<RawProxy>>,
    reload: Option<RawReload>,
    #[serde(default)]
    geoip: Vec<RawGeoIp>,
    #[serde(default, rename = "line")]
    lines: Vec<RawLine>,
    #[serde(default, rename = "zone")]
    zones: Vec<Spanned<RawZone>>,
    redirect: Option<RawRedirect>,
    #[serde(default, rename = "key")]
    keys: Vec<Spanned<RawKey>>,
    update: Option<RawUpdate>,
    health: Option<RawHealth>,
    acme: Option<crate::acme::config::RawAcme>,
}

/// The parser's `message`, with what was probably meant when `value` (the text it stopped
/// at) is a listening address written the way another tool would take it.
fn with_hint(message: &str, value: Option<&str>) -> String {
    let hint = value
        .filter(|_| message.contains("socket address"))
        .and_then(crate::diag::socket_address_hint);
    match hint {
        Some(hint) => format!("{message}: {hint}"),
        None => message.to_string(),
    }
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
        let src = Source::new(path, text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            at: src.location(e.span()),
            message: with_hint(e.message(), e.span().and_then(|s| text.get(s))),
        })?;

        let dns = raw.dns.map(|d| DnsConfig::check(d, &src)).transpose()?;
        let admin = raw.admin.map(|a| AdminConfig::check(a, &src)).transpose()?;
        let reload = raw
            .reload
            .map(|r| ReloadConfig::check(r, &src))
            .transpose()?
            .unwrap_or_default();
        let (lines, line_set) = crate::lines::config::check(raw.lines, &src)?;
        let geoip = raw
            .geoip
            .into_iter()
            .map(|g| GeoIpConfig::check(g, &src))
            .collect::<Result<Vec<_>, _>>()?;
        if geoip.is_empty()
            && let Some(line) = lines.iter().find(|l| l.needs_database())
        {
            return Err(src.invalid_file(format!(
                "line `{}` matches countries, continents, subdivisions or ASNs but no [[geoip]] database is configured",
                line.name
            )));
        }
        let overlay_line = |name: &Spanned<String>| {
            line_set
                .id(name.get_ref())
                .filter(|&id| id != line_set.default_line())
                .ok_or_else(|| {
                    src.invalid(
                        name.span(),
                        format!(
                            "overlay for line `{}`, which is not declared (declared: {})",
                            name.get_ref(),
                            declared_names(&lines)
                        ),
                    )
                })
        };
        let keys = crate::dns::tsig::config::check(raw.keys, &src)?;
        let transfer = |t| {
            crate::xfr::config::TransferConfig::check(t, &src, &line_set, |k| keys.get(k).is_some())
        };
        let secondary = |s: crate::xfr::secondary::config::RawSecondary<'_>| {
            crate::xfr::secondary::config::SecondaryConfig::check(s, &src, &line_set, |k| {
                keys.get(k).is_some()
            })
        };
        let zones = raw
            .zones
            .into_iter()
            .map(|z| ZoneConfig::new(z, &src, overlay_line, transfer, secondary))
            .collect::<Result<Vec<_>, _>>()?;
        let proxy = raw.proxy.map(|p| ProxyConfig::check(p, &src)).transpose()?;
        let redirect = raw
            .redirect
            .map(|r| RedirectConfig::check(r, &lines, &src))
            .transpose()?;

        let update = raw
            .update
            .map(|u| UpdateConfig::check(u, &src, &line_set, |k| keys.get(k).is_some()))
            .transpose()?
            .unwrap_or_default();

        let health = raw
            .health
            .map(|h| HealthConfig::check(h, &src, &line_set))
            .transpose()?
            .unwrap_or_default();

        let acme = crate::acme::config::check(raw.acme, &src, &keys)?;
        let mut redirect = redirect;
        let mut proxy = proxy;
        if let Some(r) = redirect.as_mut() {
            acme.place(&mut r.front.certificates);
        }
        if let Some(p) = proxy.as_mut() {
            acme.place(&mut p.front.certificates);
        }

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
            keys,
            update,
            health,
            acme,
            line_set,
        })
    }

    /// Refuses a configuration without a listener that serves (`[dns]`, `[redirect]` or
    /// `[proxy]`): an empty or truncated file would otherwise start a server that does
    /// nothing. `serve` calls it; `geoline check` too when the file declares nothing at all
    /// (with zones or lines, it checks them as `named-checkzone` would, and warns).
    pub fn check_serves_something(&self) -> Result<(), ConfigError> {
        if self.serves_something() {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            at: Location {
                path: self.path.clone(),
                line: None,
            },
            reason: "nothing to serve: give a [dns], [redirect] or [proxy] section, or [admin] with [[health.monitor]]s for a probe (the repository's geoline.toml is a start)".into(),
        })
    }

    /// Whether some listener serves: `[dns]`, `[redirect]` or `[proxy]`, or the admin
    /// listener publishes health checks (a probe).
    pub fn serves_something(&self) -> bool {
        self.dns.is_some() || self.redirect.is_some() || self.proxy.is_some() || self.is_probe()
    }

    /// Whether this is a probe: no DNS, redirector or proxy, but health monitors whose
    /// results the admin listener publishes (`GET /health/results`).
    pub fn is_probe(&self) -> bool {
        self.dns.is_none()
            && self.redirect.is_none()
            && self.proxy.is_none()
            && self.admin.is_some()
            && !self.health.monitors.is_empty()
    }

    /// Whether the file declares anything at all: a listener, a zone, a line, a database
    /// or a key.
    pub fn declares_something(&self) -> bool {
        self.serves_something()
            || !self.zones.is_empty()
            || !self.lines.is_empty()
            || !self.geoip.is_empty()
            || !self.keys.is_empty()
    }

    /// Line names in match order, `default` last: the index of a name is its line's id.
    pub fn line_names(&self) -> Vec<String> {
        self.line_set.names().to_vec()
    }

    /// The declared lines and `default`, numbered in match order.
    pub fn line_set(&self) -> &LineSet {
        &self.line_set
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ipnet::IpNet;

    use super::*;
    use crate::geoip::Layout;
    use crate::lines::LineId;
    use crate::lines::config::read_cidr_file;

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
        assert_eq!(c.geoip[0].layout, None);
        assert_eq!(
            c.zones[0].overlays[&LineId::new(0).expect("a line id")],
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
        assert_eq!(c.geoip[0].layout, Some(Layout::Geoip2City));
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
    fn an_ipv6_address_without_brackets_gets_a_hint_on_its_element_line() {
        let e = error_text("[dns]\nlisten = [\n  \"127.0.0.1:5300\",\n  \"::1:5300\",\n]\n");
        assert_eq!(
            e,
            "test.toml:4: invalid socket address syntax: an IPv6 address needs brackets before its port: \"[::1]:5300\""
        );
        let e = error_text("[admin]\nlisten = \"127.0.0.1\"\n");
        assert_eq!(
            e,
            "test.toml:2: invalid socket address syntax: an address needs a port: \"127.0.0.1:PORT\""
        );
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
