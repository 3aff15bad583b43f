//! The `[health]` section: which addresses are watched, how, and what a line answers when
//! all of its addresses for a name are down.
//!
//! This module owns the section's format, defaults and checks; [`super`] runs the
//! monitors and applies their results.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::state::{MAX_THRESHOLD, Thresholds};
use super::weights::WeightGroup;
use crate::diag::{ConfigError, Source};
use crate::lines::{LineId, LineSet};

/// Check every 10 s: Route 53's faster interval and gdnsd's default.
pub(crate) const DEFAULT_INTERVAL_MS: u64 = 10_000;
/// A check that takes 3 s has failed: well under the interval, above a slow handshake
/// across the border.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 3_000;
/// Three failures in a row take a steady address down (Route 53's default): 30 s.
pub(crate) const DEFAULT_DOWN_AFTER: u32 = 3;
/// Five successes in a row bring it back: a restarted relay serves for 50 s first.
pub(crate) const DEFAULT_UP_AFTER: u32 = 5;
/// Each wait is up to 10 % shorter, at random, so that checks do not march in step.
pub(crate) const DEFAULT_JITTER_PERCENT: u32 = 10;
/// The TTL of an RRset holding a watched address: no longer than it takes to notice a
/// death (3 × 10 s), so a resolver holds a dead address about a minute at most.
pub(crate) const DEFAULT_TTL_CAP: u32 = 30;

/// The health checks and what answers do with their results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthConfig {
    /// The monitors, in configuration order; each address is watched by one.
    pub monitors: Vec<MonitorConfig>,
    /// The TTL of RRsets holding a watched address is at most this many seconds.
    pub ttl_cap: u32,
    /// Per line, the lines answered instead, in order, when every address of an A/AAAA
    /// RRset is down; a line not listed answers with its addresses anyway.
    pub all_down: BTreeMap<LineId, Vec<LineId>>,
    /// Where operators' overrides (`POST /health/ADDRESS`) are kept across restarts;
    /// `health-state.json` beside the configuration unless set.
    pub state_file: Option<PathBuf>,
    /// Weighted addresses (`[[health.weights]]`): an RRset holding them answers some of
    /// them, chosen by weight per client subnet.
    pub weights: Vec<WeightGroup>,
    /// Other geolines whose check results count too (`[[health.source]]`).
    pub sources: Vec<SourceConfig>,
    /// How many sources (this server's own checks are one) must say an address is down
    /// for answers to count it down; a majority of them unless set.
    pub quorum: u32,
}

/// Another geoline's published results (`[[health.source]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// The URL as written: the source's name in `/status` and the log.
    pub url: String,
    /// The host connected to, and the TLS server name.
    pub host: String,
    /// The Host header: the URL's host and port as written.
    pub authority: String,
    /// The port connected to.
    pub port: u16,
    /// The path and query asked for.
    pub path: String,
    /// HTTPS when set.
    pub tls: Option<TlsCheck>,
    /// The source's admin token.
    pub token: Option<String>,
    /// Time between the starts of two reads.
    pub interval: Duration,
    /// A read not finished by then failed (the source counts as unknown).
    pub timeout: Duration,
}

/// The state file's name beside the configuration when `health.state_file` is not set.
pub(crate) const DEFAULT_STATE_FILE: &str = "health-state.json";

impl HealthConfig {
    /// Whether answers depend on health or weights at all.
    pub fn is_active(&self) -> bool {
        !self.monitors.is_empty() || !self.weights.is_empty()
    }
}

/// How to check a set of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// The addresses checked, each on its own.
    pub addresses: Vec<IpAddr>,
    /// What a check is.
    pub check: Check,
    /// The port checked.
    pub port: u16,
    /// Time between the starts of two checks of one address.
    pub interval: Duration,
    /// A check not finished by then has failed.
    pub timeout: Duration,
    /// Failures and successes in a row that change the state.
    pub thresholds: Thresholds,
    /// Each wait is shortened by up to this percentage of the interval, at random.
    pub jitter_percent: u32,
}

/// What one check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A TCP connection is accepted (then closed).
    Tcp,
    /// An HTTP or HTTPS GET gets an expected answer.
    Http(HttpCheck),
}

/// An HTTP(S) GET and what its response must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// HTTPS when set.
    pub tls: Option<TlsCheck>,
    /// The path and query asked for.
    pub path: String,
    /// The Host header and the TLS server name; the address when absent.
    pub host: Option<String>,
    /// The statuses that pass.
    pub status: RangeInclusive<u16>,
    /// Text the first 64 KiB of the body must contain.
    pub body: Option<String>,
}

/// How an HTTPS check treats the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCheck {
    /// Whether the certificate must be valid for `host` (an expired certificate is an
    /// outage for the clients too).
    pub verify: bool,
    /// CA certificates trusted besides the webpki roots (PEM).
    pub ca_file: Option<PathBuf>,
    /// A digest of `ca_file`'s contents as the configuration was read (`None`: no file,
    /// or unreadable — building the check says why): a reload whose only change is the
    /// file's contents differs, and rebuilds the checks that trust it.
    pub ca_digest: Option<u64>,
}

impl TlsCheck {
    fn new(verify: bool, ca_file: Option<PathBuf>) -> TlsCheck {
        let ca_digest = ca_file.as_deref().and_then(|path| {
            use std::hash::{Hash, Hasher};
            let contents = std::fs::read(path).ok()?;
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            contents.hash(&mut hasher);
            Some(hasher.finish())
        });
        TlsCheck {
            verify,
            ca_file,
            ca_digest,
        }
    }
}

/// `[health]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    ttl_cap: Option<Spanned<u32>>,
    #[serde(default, rename = "monitor")]
    monitors: Vec<Spanned<RawMonitor>>,
    #[serde(default)]
    all_down: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    state_file: Option<PathBuf>,
    #[serde(default)]
    weights: Vec<Spanned<RawWeights>>,
    #[serde(default, rename = "source")]
    sources: Vec<Spanned<RawSource>>,
    quorum: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: Spanned<String>,
    token: Option<String>,
    #[serde(default = "crate::diag::default_true")]
    verify: bool,
    ca_file: Option<PathBuf>,
    interval_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeights {
    addresses: Spanned<BTreeMap<String, Spanned<u32>>>,
    answers: Option<Spanned<u32>>,
}

/// The most addresses a weighted answer holds.
pub(crate) const MAX_WEIGHTED_ANSWERS: u32 = 64;
/// The largest weight: far beyond any useful ratio, small enough that sums stay exact.
pub(crate) const MAX_WEIGHT: u32 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitor {
    addresses: Spanned<Vec<Spanned<IpAddr>>>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    port: Option<Spanned<u16>>,
    path: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    status: Option<Spanned<[u16; 2]>>,
    body: Option<String>,
    #[serde(default = "crate::diag::default_true")]
    verify: bool,
    ca_file: Option<PathBuf>,
    interval_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    down_after: Option<Spanned<u32>>,
    up_after: Option<Spanned<u32>>,
    jitter_percent: Option<Spanned<u32>>,
}

impl HealthConfig {
    /// Checks `[health]`; lines are named from `lines`.
    pub(crate) fn check(
        raw: RawHealth,
        src: &Source<'_>,
        lines: &LineSet,
    ) -> Result<HealthConfig, ConfigError> {
        let ttl_cap = src.in_range(raw.ttl_cap, DEFAULT_TTL_CAP, 1..=86_400, "health.ttl_cap")?;
        let mut monitors = Vec::new();
        let mut watched: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (i, m) in raw.monitors.into_iter().enumerate() {
            let monitor = check_monitor(m.into_inner(), src)?;
            for &address in &monitor.addresses {
                if let Some(first) = watched.insert(address, i) {
                    return Err(src.invalid_file(format!(
                        "health.monitor {}: address {address} is already watched by health.monitor {}",
                        i + 1,
                        first + 1
                    )));
                }
            }
            monitors.push(monitor);
        }
        let line = |name: &Spanned<String>| {
            lines.id(name.get_ref()).ok_or_else(|| {
                src.invalid(
                    name.span(),
                    format!(
                        "health.all_down names line `{}`, which is not declared (declared: {})",
                        name.get_ref(),
                        lines.names().join(", ")
                    ),
                )
            })
        };
        let mut all_down = BTreeMap::new();
        for (from, to) in &raw.all_down {
            let from_id = line(from)?;
            let mut chain = Vec::new();
            for name in to {
                let id = line(name)?;
                if id == from_id || chain.contains(&id) {
                    return Err(src.invalid(
                        name.span(),
                        format!(
                            "health.all_down.{}: line `{}` is named twice in the chain",
                            from.get_ref(),
                            name.get_ref()
                        ),
                    ));
                }
                chain.push(id);
            }
            all_down.insert(from_id, chain);
        }
        let mut weights = Vec::new();
        let mut weighted: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (i, w) in raw.weights.into_iter().enumerate() {
            let group = check_weights(w.into_inner(), src)?;
            for &(address, _) in &group.weights {
                if let Some(first) = weighted.insert(address, i) {
                    return Err(src.invalid_file(format!(
                        "health.weights {}: address {address} is already weighted by health.weights {}",
                        i + 1,
                        first + 1
                    )));
                }
            }
            weights.push(group);
        }
        let sources = raw
            .sources
            .into_iter()
            .map(|s| check_source(s.into_inner(), src))
            .collect::<Result<Vec<_>, _>>()?;
        // This server's own checks are a source.
        let voters = sources.len() as u32 + 1;
        let quorum = src.in_range(raw.quorum, voters / 2 + 1, 1..=voters, "health.quorum")?;
        let state_file = src.resolve(
            raw.state_file
                .as_deref()
                .unwrap_or(DEFAULT_STATE_FILE.as_ref()),
        );
        Ok(HealthConfig {
            monitors,
            ttl_cap,
            all_down,
            state_file: Some(state_file),
            weights,
            sources,
            quorum,
        })
    }
}

fn check_source(s: RawSource, src: &Source<'_>) -> Result<SourceConfig, ConfigError> {
    let span = s.url.span();
    let url = s.url.into_inner();
    let invalid =
        |why: &str| src.invalid(span.clone(), format!("health.source.url `{url}`: {why}"));
    let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(invalid("the scheme is not http or https")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| *p != "/")
        .unwrap_or(RESULTS_PATH)
        .to_string();
    let interval = src.in_range(
        s.interval_ms,
        DEFAULT_INTERVAL_MS,
        100..=3_600_000,
        "health.source.interval_ms",
    )?;
    let timeout_span = s.timeout_ms.as_ref().map(Spanned::span);
    let timeout = src.in_range(
        s.timeout_ms,
        DEFAULT_TIMEOUT_MS.min(interval / 2),
        10..=3_600_000,
        "health.source.timeout_ms",
    )?;
    if timeout >= interval {
        return Err(src.invalid(
            timeout_span.unwrap_or(0..0),
            format!("health.source.timeout_ms {timeout} must be less than interval_ms {interval}"),
        ));
    }
    // The token goes in a request header as written.
    if s.token
        .as_ref()
        .is_some_and(|t| t.contains(char::is_control))
    {
        return Err(src.invalid(span, "health.source.token holds a control character".into()));
    }
    Ok(SourceConfig {
        authority: authority.as_str().to_string(),
        url,
        host,
        port,
        path,
        tls: https.then(|| TlsCheck::new(s.verify, s.ca_file.as_deref().map(|p| src.resolve(p)))),
        token: s.token,
        interval: Duration::from_millis(interval),
        timeout: Duration::from_millis(timeout),
    })
}

/// Where a geoline publishes its own checks' results on its admin listener.
pub(crate) const RESULTS_PATH: &str = "/health/results";

fn check_weights(w: RawWeights, src: &Source<'_>) -> Result<WeightGroup, ConfigError> {
    let span = w.addresses.span();
    let mut weights = Vec::new();
    for (address, weight) in w.addresses.into_inner() {
        let Ok(ip) = address.parse::<IpAddr>() else {
            return Err(src.invalid(
                span,
                format!("health.weights.addresses: `{address}` is not an IP address"),
            ));
        };
        if *weight.get_ref() > MAX_WEIGHT {
            return Err(src.invalid(
                weight.span(),
                format!("health.weights.addresses: the weight of {ip} is above {MAX_WEIGHT}"),
            ));
        }
        weights.push((ip, weight.into_inner()));
    }
    if weights.iter().all(|(_, w)| *w == 0) {
        return Err(src.invalid(
            span,
            "health.weights.addresses needs an address of weight 1 or more".into(),
        ));
    }
    let answers = src.in_range(
        w.answers,
        1,
        1..=MAX_WEIGHTED_ANSWERS,
        "health.weights.answers",
    )?;
    Ok(WeightGroup { weights, answers })
}

fn check_monitor(m: RawMonitor, src: &Source<'_>) -> Result<MonitorConfig, ConfigError> {
    if m.addresses.get_ref().is_empty() {
        return Err(src.invalid(
            m.addresses.span(),
            "health.monitor.addresses is empty".into(),
        ));
    }
    let interval = src.in_range(
        m.interval_ms,
        DEFAULT_INTERVAL_MS,
        100..=3_600_000,
        "health.monitor.interval_ms",
    )?;
    let timeout_span = m.timeout_ms.as_ref().map(Spanned::span);
    let timeout = src.in_range(
        m.timeout_ms,
        DEFAULT_TIMEOUT_MS.min(interval / 2),
        10..=3_600_000,
        "health.monitor.timeout_ms",
    )?;
    if timeout >= interval {
        return Err(src.invalid(
            timeout_span.unwrap_or(0..0),
            format!("health.monitor.timeout_ms {timeout} must be less than interval_ms {interval}"),
        ));
    }
    let thresholds = Thresholds {
        down_after: src.in_range(
            m.down_after,
            DEFAULT_DOWN_AFTER,
            1..=MAX_THRESHOLD,
            "health.monitor.down_after",
        )?,
        up_after: src.in_range(
            m.up_after,
            DEFAULT_UP_AFTER,
            1..=MAX_THRESHOLD,
            "health.monitor.up_after",
        )?,
    };
    let jitter_percent = src.in_range(
        m.jitter_percent,
        DEFAULT_JITTER_PERCENT,
        0..=50,
        "health.monitor.jitter_percent",
    )?;
    let kind = m.kind.get_ref().as_str();
    let tls = match kind {
        "tcp" => None,
        "http" => None,
        "https" => Some(TlsCheck::new(
            m.verify,
            m.ca_file.as_deref().map(|p| src.resolve(p)),
        )),
        other => {
            return Err(src.invalid(
                m.kind.span(),
                format!("health.monitor.type `{other}` is not one of tcp, http, https"),
            ));
        }
    };
    let http_only = [
        ("path", m.path.as_ref().map(Spanned::span)),
        ("host", m.host.as_ref().map(Spanned::span)),
        ("status", m.status.as_ref().map(Spanned::span)),
    ];
    let port = match (&m.port, kind) {
        (Some(p), _) if *p.get_ref() == 0 => {
            return Err(src.invalid(p.span(), "health.monitor.port 0 is not a port".into()));
        }
        (Some(p), _) => *p.get_ref(),
        (None, "http") => 80,
        (None, "https") => 443,
        (None, _) => {
            return Err(src.invalid(
                m.kind.span(),
                "health.monitor of type tcp needs a port".into(),
            ));
        }
    };
    let check = if kind == "tcp" {
        if let Some((key, Some(span))) = http_only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(src.invalid(
                span,
                format!("health.monitor.{key} is for http and https checks, not tcp"),
            ));
        }
        if m.body.is_some() {
            return Err(src.invalid(
                m.kind.span(),
                "health.monitor.body is for http and https checks, not tcp".into(),
            ));
        }
        Check::Tcp
    } else {
        let path = match m.path {
            Some(p) if !p.get_ref().starts_with('/') => {
                return Err(src.invalid(
                    p.span(),
                    format!("health.monitor.path `{}` must start with /", p.get_ref()),
                ));
            }
            // The path goes on the request line as written.
            Some(p) if p.get_ref().parse::<http::uri::PathAndQuery>().is_err() => {
                return Err(src.invalid(
                    p.span(),
                    format!(
                        "health.monitor.path `{}` is not a URL path (a space or a control character?)",
                        p.get_ref().escape_debug()
                    ),
                ));
            }
            Some(p) => p.into_inner(),
            None => "/".into(),
        };
        let status = match m.status {
            Some(s) => {
                let [low, high] = *s.get_ref();
                if !(100..=599).contains(&low) || !(low..=599).contains(&high) {
                    return Err(src.invalid(
                        s.span(),
                        format!("health.monitor.status [{low}, {high}] is not a range of HTTP statuses (100..=599, low first)"),
                    ));
                }
                low..=high
            }
            // Route 53's rule: 2xx and 3xx pass.
            None => 200..=399,
        };
        let host = match m.host {
            Some(h)
                if h.get_ref().is_empty()
                    || h.get_ref()
                        .contains(|c: char| c == '/' || c == ' ' || c.is_control()) =>
            {
                return Err(src.invalid(
                    h.span(),
                    format!("health.monitor.host `{}` is not a host name", h.get_ref()),
                ));
            }
            Some(h) => Some(h.into_inner()),
            None => None,
        };
        if tls.as_ref().is_some_and(|t| t.verify) && host.is_none() {
            return Err(src.invalid(
                m.kind.span(),
                "health.monitor of type https verifies the certificate for `host`: set host, or verify = false".into(),
            ));
        }
        Check::Http(HttpCheck {
            tls,
            path,
            host,
            status,
            body: m.body,
        })
    };
    Ok(MonitorConfig {
        addresses: m
            .addresses
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        check,
        port,
        interval: Duration::from_millis(interval),
        timeout: Duration::from_millis(timeout),
        thresholds,
        jitter_percent,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<HealthConfig, ConfigError> {
        let src = Source::new(Path::new("h.toml"), text);
        #[derive(Deserialize)]
        struct File {
            health: RawHealth,
        }
        let raw: File = toml::from_str(text).expect("toml");
        let lines = LineSet::new(["china", "hk"]).expect("lines");
        HealthConfig::check(raw.health, &src, &lines)
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn defaults_are_written_down() {
        let c = parse(
            "[health]\n[[health.monitor]]\naddresses = [\"192.0.2.1\"]\ntype = \"https\"\nhost = \"www.example.com\"\n[health.all_down]\nchina = [\"hk\", \"default\"]\n",
        )
        .expect("valid");
        assert_eq!(c.ttl_cap, 30);
        let m = &c.monitors[0];
        assert_eq!(
            (m.port, m.interval, m.timeout, m.jitter_percent),
            (443, Duration::from_secs(10), Duration::from_secs(3), 10)
        );
        assert_eq!(
            m.thresholds,
            Thresholds {
                down_after: 3,
                up_after: 5
            }
        );
        let Check::Http(http) = &m.check else {
            panic!("{m:?}")
        };
        assert_eq!((http.path.as_str(), http.status.clone()), ("/", 200..=399));
        assert_eq!(http.tls.as_ref().map(|t| t.verify), Some(true));
        let china = LineId::new(0).expect("id");
        let (hk, default) = (LineId::new(1).expect("id"), LineId::new(2).expect("id"));
        assert_eq!(c.all_down[&china], [hk, default]);
        assert_eq!((c.quorum, c.sources.len()), (1, 0));
        let c = parse(
            "[health]\n[[health.source]]\nurl = \"https://probe.example.cn:9300\"\ntoken = \"t\"\n[[health.source]]\nurl = \"http://[2001:db8::1]/results\"\n",
        )
        .expect("valid");
        // Three voters (this server and two sources): a majority is two.
        assert_eq!(c.quorum, 2);
        let (a, b) = (&c.sources[0], &c.sources[1]);
        assert_eq!(
            (
                a.host.as_str(),
                a.port,
                a.path.as_str(),
                a.authority.as_str()
            ),
            (
                "probe.example.cn",
                9300,
                "/health/results",
                "probe.example.cn:9300"
            )
        );
        assert_eq!(a.tls.as_ref().map(|t| t.verify), Some(true));
        assert_eq!(
            (b.host.as_str(), b.port, b.path.as_str(), b.tls.is_none()),
            ("2001:db8::1", 80, "/results", true)
        );
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let m = "[health]\n[[health.monitor]]\naddresses = [\"192.0.2.1\"]\n";
        assert_eq!(
            error(&format!("{m}type = \"tcp\"\n")),
            "h.toml:4: health.monitor of type tcp needs a port"
        );
        assert_eq!(
            error(&format!("{m}type = \"icmp\"\n")),
            "h.toml:4: health.monitor.type `icmp` is not one of tcp, http, https"
        );
        assert_eq!(
            error(&format!("{m}type = \"tcp\"\nport = 22\npath = \"/\"\n")),
            "h.toml:6: health.monitor.path is for http and https checks, not tcp"
        );
        assert_eq!(
            error(&format!(
                "{m}type = \"http\"\ninterval_ms = 1000\ntimeout_ms = 1000\n"
            )),
            "h.toml:6: health.monitor.timeout_ms 1000 must be less than interval_ms 1000"
        );
        assert_eq!(
            error(&format!("{m}type = \"http\"\npath = \"/health check\"\n")),
            "h.toml:5: health.monitor.path `/health check` is not a URL path (a space or a control character?)"
        );
        assert_eq!(
            error(&format!("{m}type = \"http\"\npath = \"/h\\r\\nX: y\"\n")),
            "h.toml:5: health.monitor.path `/h\\r\\nX: y` is not a URL path (a space or a control character?)"
        );
        assert_eq!(
            error(&format!("{m}type = \"http\"\nhost = \"a\\tb\"\n")),
            "h.toml:5: health.monitor.host `a\tb` is not a host name"
        );
        assert_eq!(
            error(
                "[health]\n[[health.source]]\nurl = \"http://probe.example.cn/\"\ntoken = \"t\\r\\nX: y\"\n"
            ),
            "h.toml:3: health.source.token holds a control character"
        );
        assert_eq!(
            error(&format!("{m}type = \"http\"\ndown_after = 0\n")),
            "h.toml:5: health.monitor.down_after 0 is outside 1..=32"
        );
        assert_eq!(
            error(&format!("{m}type = \"http\"\nstatus = [300, 200]\n")),
            "h.toml:5: health.monitor.status [300, 200] is not a range of HTTP statuses (100..=599, low first)"
        );
        assert_eq!(
            error(&format!("{m}type = \"https\"\n")),
            "h.toml:4: health.monitor of type https verifies the certificate for `host`: set host, or verify = false"
        );
        assert_eq!(
            error(&format!(
                "{m}type = \"http\"\n[[health.monitor]]\naddresses = [\"192.0.2.1\"]\ntype = \"http\"\n"
            )),
            "h.toml: health.monitor 2: address 192.0.2.1 is already watched by health.monitor 1"
        );
        assert_eq!(
            error("[health]\n[health.all_down]\nchina = [\"hk\", \"mars\"]\n"),
            "h.toml:3: health.all_down names line `mars`, which is not declared (declared: china, hk, default)"
        );
        let w = "[health]\n[[health.weights]]\n";
        assert_eq!(
            error(&format!("{w}addresses = {{ \"192.0.2.1\" = 0 }}\n")),
            "h.toml:3: health.weights.addresses needs an address of weight 1 or more"
        );
        assert_eq!(
            error(&format!("{w}addresses = {{ \"relay\" = 1 }}\n")),
            "h.toml:3: health.weights.addresses: `relay` is not an IP address"
        );
        assert_eq!(
            error(&format!(
                "{w}addresses = {{ \"192.0.2.1\" = 1 }}\nanswers = 0\n"
            )),
            "h.toml:4: health.weights.answers 0 is outside 1..=64"
        );
        assert_eq!(
            error(
                "[health]\n[[health.weights]]\naddresses = { \"192.0.2.1\" = 1 }\n[[health.weights]]\naddresses = { \"192.0.2.1\" = 2 }\n"
            ),
            "h.toml: health.weights 2: address 192.0.2.1 is already weighted by health.weights 1"
        );
        assert_eq!(
            error("[health]\n[[health.source]]\nurl = \"ftp://probe.example.cn/\"\n"),
            "h.toml:3: health.source.url `ftp://probe.example.cn/`: the scheme is not http or https"
        );
        assert_eq!(
            error(
                "[health]\nquorum = 3\n[[health.source]]\nurl = \"https://probe.example.cn:9300\"\n"
            ),
            "h.toml:2: health.quorum 3 is outside 1..=2"
        );
        assert_eq!(
            error("[health]\n[health.all_down]\nchina = [\"china\"]\n"),
            "h.toml:3: health.all_down.china: line `china` is named twice in the chain"
        );
    }
}
