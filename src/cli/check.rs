//! `geoline check`: load everything `serve` would, without listening, and summarise it.
//!
//! This module owns the summary an operator reads after a successful check: the databases,
//! the lines, the zones and the listeners, one section each. It loads nothing itself
//! ([`server::load`] and [`check_redirect`] do, with the errors `serve` would give).

use std::fmt;
use std::path::Path;

use geoline::config::Config;
use geoline::internal::{Coverage, check_redirect, format_date};
use geoline::server::{self, CertificateSummary, Loaded};

/// Checks the configuration at `path` and everything it names; prints the summary.
pub(crate) fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    if !config.declares_something() {
        config.check_serves_something()?;
    }
    let loaded = server::load(&config)?;
    let mut warnings = match &config.redirect {
        Some(redirect) => check_redirect(redirect)?,
        None => Vec::new(),
    };
    if let Err(e) = config.check_serves_something() {
        warnings.push(format!("{e}; `serve` refuses it"));
    }
    print!(
        "{}",
        Summary {
            config: &config,
            loaded: &loaded
        }
    );
    for warning in warnings {
        println!("warning: {warning}");
    }
    Ok(())
}

/// `343539456 IPv4 addresses (8.00%), 65536 IPv6 /48s (<0.01%)`: how much of each
/// space a line holds. IPv6 is counted in /48s (a site), IPv4 in addresses.
struct Covers(Coverage);

impl fmt::Display for Covers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(
            f,
            "{} IPv4 addresses ({}), {} IPv6 /48s ({})",
            c.v4,
            Share(c.v4_share()),
            c.v6 >> 80,
            Share(c.v6_share())
        )
    }
}

/// A share of an address space, as a percentage that tells a tiny share from none.
struct Share(f64);

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0.0 => write!(f, "0%"),
            x if x < 0.0001 => write!(f, "<0.01%"),
            x => write!(f, "{:.2}%", x * 100.0),
        }
    }
}

/// The summary `geoline check` prints.
struct Summary<'a> {
    config: &'a Config,
    loaded: &'a Loaded,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "config {}: ok", self.config.path.display())?;
        self.databases(f)?;
        self.lines(f)?;
        self.zones(f)?;
        self.keys(f)?;
        self.listeners(f)
    }
}

impl Summary<'_> {
    fn databases(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for db in self.loaded.classifier.databases() {
            writeln!(
                f,
                "geoip {}: {} (layout {}, IPv{}), built {}, fields: {}",
                db.path().display(),
                db.database_type(),
                db.record_reader(),
                db.ip_version(),
                format_date(db.build_epoch()),
                db.provides(),
            )?;
        }
        Ok(())
    }

    fn lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "lines (in match order): {}",
            self.config.line_names().join(", ")
        )?;
        let set = self.config.line_set();
        let coverage = self.loaded.classifier.map().coverage(set.names().len());
        let covers = |f: &mut fmt::Formatter<'_>, name: &str| {
            let c = set
                .id(name)
                .and_then(|id| coverage.get(id.index()))
                .copied()
                .unwrap_or_default();
            write!(f, "    covers {}", Covers(c))?;
            if c.v4 == 0 && c.v6 == 0 {
                write!(f, ": matches no address")?;
            }
            writeln!(f)
        };
        for line in &self.config.lines {
            writeln!(
                f,
                "  {}: {}, {}, {}, {}, {}",
                line.name,
                Count(line.countries.len(), "country", "countries"),
                Count(line.continents.len(), "continent", "continents"),
                Count(line.subdivisions.len(), "subdivision", "subdivisions"),
                Count(line.asns.len(), "ASN", "ASNs"),
                Count(line.cidrs.len(), "prefix", "prefixes")
            )?;
            covers(f, &line.name)?;
        }
        writeln!(f, "  default: every address no line above matches")?;
        covers(f, set.name(set.default_line()))?;
        let (v4, v6) = self.loaded.classifier.map().range_count();
        writeln!(f, "line map: {v4} IPv4 ranges, {v6} IPv6 ranges")
    }

    fn zones(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.loaded.classifier.lines();
        for zone in self.loaded.zones.zones() {
            let counts = zone
                .record_counts()
                .into_iter()
                .map(|(line, n)| format!("{} {n}", lines.name(line)))
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(
                f,
                "zone {}: serial {}, records per line: {counts}",
                zone.origin(),
                zone.serial()
            )?;
            for dependent in zone.line_dependent_names() {
                let missing: Vec<&str> = dependent
                    .missing_on
                    .iter()
                    .map(|line| lines.name(*line))
                    .collect();
                writeln!(
                    f,
                    "  warning: `{}` does not exist on {}: a resolver whose negative cache \
                     ignores the client subnet (PowerDNS Recursor 4.8) can hand that NXDOMAIN \
                     to the clients of every line; give the name a record in the base file \
                     (an overlay's still wins on its line)",
                    dependent.name,
                    missing.join(", ")
                )?;
            }
            for occluded in zone.occluded_names() {
                writeln!(f, "  warning: {}", occluded.describe(lines))?;
            }
        }
        Ok(())
    }

    /// The TSIG keys by name and algorithm; never their secrets.
    fn keys(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.config.keys.keys();
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = keys
            .iter()
            .map(|k| match k.min_mac_len() {
                n if n < k.algorithm().output_len() => {
                    format!(
                        "{} ({}, MACs down to {} bits)",
                        k.name(),
                        k.algorithm(),
                        n * 8
                    )
                }
                _ => format!("{} ({})", k.name(), k.algorithm()),
            })
            .collect();
        writeln!(f, "tsig keys: {}", keys.join(", "))
    }

    fn listeners(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.config;
        let certificates = self.loaded.certificates();
        if let Some(dns) = &config.dns {
            let addrs: Vec<String> = dns.listen.iter().map(|a| a.to_string()).collect();
            writeln!(f, "dns: UDP and TCP on {}", addrs.join(", "))?;
        }
        if let Some(proxy) = &config.proxy {
            let pairs: Vec<String> = proxy
                .hosts
                .iter()
                .map(|h| format!("{} -> {}", h.public, h.origin))
                .collect();
            writeln!(
                f,
                "proxy: {}, on {}, origin {}, {}",
                Count(
                    proxy.front.certificates.len(),
                    "certificate",
                    "certificates"
                ),
                proxy.front.describe_listeners(),
                proxy.origin,
                pairs.join(", ")
            )?;
            certificates_of(f, &certificates, "proxy")?;
        }
        if let Some(admin) = &config.admin {
            let token = if admin.token.is_some() {
                ", bearer token required"
            } else {
                ""
            };
            writeln!(
                f,
                "admin: http://{}/ (metrics, status, reload){token}",
                admin.listen
            )?;
        }
        if let Some(redirect) = &config.redirect {
            writeln!(
                f,
                "redirect: {}, {}, on {}",
                Count(redirect.rules.len(), "rule", "rules"),
                Count(
                    redirect.front.certificates.len(),
                    "certificate",
                    "certificates"
                ),
                redirect.front.describe_listeners()
            )?;
            certificates_of(f, &certificates, "redirect")?;
        }
        Ok(())
    }
}

/// `  certificate PATH: NAMES; valid until DATE`, for each certificate `role`'s TLS
/// listeners serve: what a client will be shown, and when it stops working.
fn certificates_of(
    f: &mut fmt::Formatter<'_>,
    certificates: &[CertificateSummary],
    role: &str,
) -> fmt::Result {
    for c in certificates.iter().filter(|c| c.role == role) {
        let until = match c.not_after {
            Some(t) => format!("valid until {}", format_date(t.max(0).unsigned_abs())),
            None if c.config.acme.is_some() => "pending (ACME)".to_owned(),
            None => "validity unreadable".to_owned(),
        };
        writeln!(
            f,
            "  certificate {}: {}; {until}",
            c.config.cert.display(),
            c.config.names.join(", ")
        )?;
    }
    Ok(())
}

/// `1 rule`, `0 rules`, `2 countries`: a count and its noun, singular or plural.
struct Count(usize, &'static str, &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(n, one, many) = *self;
        write!(f, "{n} {}", if n == 1 { one } else { many })
    }
}
