//! Reloading the configuration file itself, on SIGHUP and `POST /reload`.
//!
//! This module owns what an edited configuration may change in a running server, and the
//! order that keeps a reload whole. The file is read and checked as `geoline check` does
//! (every section; then every database, zone and certificate it names, opened, compiled
//! and validated) before anything is swapped; a file that fails keeps the running
//! configuration, and says why in the log and `/status`.
//!
//! What is swapped is what the listeners read through [`crate::live::Live`]: the lines'
//! rules and the databases (one new classifier, compiled from both) and the zones' files
//! (each through the update journal, as a file reload); and `[redirect]` and `[proxy]`
//! (rules, origin, host pairs, forwarded headers, access log, limits, trusted proxies),
//! rebuilt whole by [`crate::server::fronts`] before anything is swapped; and `[health]`
//! (monitors, sources, quorum, weights, all-down chains, TTL cap, state file), whose
//! checks' TLS settings and state file are read before anything is swapped
//! ([`crate::health::Health::reconfigure`] says what each address keeps). What the
//! listeners were built from at start — the `[dns]`, `[admin]` and `[reload]` sections,
//! the front-ends' listeners and certificates (each TLS listener chooses among its own part
//! of the certificate set), the TSIG keys and the update policy — and the lines' names and
//! order (the zones' views are numbered by them) and the list of zones (each has its update
//! journal) need a restart: when one of them differs, nothing at all is applied, and the log
//! and `/status` name each such section.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Config, ConfigError};
use crate::geoip::{GeoDb, GeoIpError};
use crate::http::config::FrontConfig;
use crate::lines::Classifier;
use crate::zone::{ZoneError, ZoneSet};

/// Why an edited configuration was not applied; the running one still is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigReloadError {
    /// The file is unreadable or a section is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A database it names cannot be opened, or a line rule cannot use the databases.
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    /// A zone it names does not load.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// An edited `[redirect]` or `[proxy]` cannot be built (an origin, an access log).
    #[error(transparent)]
    Front(crate::server::fronts::FrontReloadError),
    /// An edited `[health]` cannot run (a CA file, the state file).
    #[error(transparent)]
    Health(#[from] crate::health::SetupError),
    /// A section only a restart applies has changed.
    #[error(
        "{path}: {} changed: restart geoline to apply that (nothing of this edit is applied; the running configuration is kept)",
        sections.join(", "),
        path = path.display()
    )]
    NeedsRestart {
        /// The configuration file.
        path: PathBuf,
        /// The sections that differ, as the file names them.
        sections: Vec<&'static str>,
    },
}

/// What a configuration reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOutcome {
    /// The file holds what is running: nothing to apply.
    Unchanged,
    /// These sections were applied.
    Applied(Vec<&'static str>),
}

/// The last configuration reload, for `/status`.
#[derive(Debug, Clone)]
pub struct ConfigStatus {
    /// The configuration file.
    pub path: PathBuf,
    /// When the running configuration was read.
    pub loaded_at: SystemTime,
    /// The last reload: when, and what it did or why it was refused.
    pub last: Option<(SystemTime, Result<ConfigOutcome, Arc<ConfigReloadError>>)>,
}

/// A new configuration, checked whole and loaded, ready to swap in.
pub(super) struct Prepared {
    pub(super) config: Config,
    pub(super) classifier: Classifier,
    pub(super) applied: Vec<&'static str>,
    /// `[health]` ready to apply, when it changed.
    pub(super) health: Option<crate::health::Prepared>,
}

/// Reads and checks the configuration at `running.path` against `running`: `None` when it
/// holds what runs, the loaded data to swap in when what changed can change live.
pub(super) fn prepare(running: &Config) -> Result<Option<Prepared>, ConfigReloadError> {
    let next = Config::load(&running.path)?;
    next.check_serves_something()?;
    let sections = needs_restart(running, &next);
    if !sections.is_empty() {
        return Err(ConfigReloadError::NeedsRestart {
            path: running.path.clone(),
            sections,
        });
    }
    let applied = live_changes(running, &next);
    if applied.is_empty() {
        return Ok(None);
    }
    // Everything the file names, loaded and checked as `geoline check` does, before
    // anything is swapped.
    let databases = next
        .geoip
        .iter()
        .map(|g| GeoDb::open_with(&g.path, g.layout, &g.fields).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let classifier = Classifier::from_config(next.line_set(), &next.lines, databases)?;
    ZoneSet::load(&next.zones, classifier.lines())?;
    let health = (running.health != next.health)
        .then(|| crate::health::Prepared::new(&next.health))
        .transpose()?;
    Ok(Some(Prepared {
        config: next,
        classifier,
        applied,
        health,
    }))
}

/// Whether two values of a section differ. Sections are compared by their parsed form as
/// `Debug` writes it: most section types have no `PartialEq` (they hold compiled rules,
/// paths and durations), and every field a section holds is in its `Debug` output.
fn differs<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

/// The sections of `next` that differ from `running` and that only a restart applies.
fn needs_restart(running: &Config, next: &Config) -> Vec<&'static str> {
    let mut sections = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            sections.push(name);
        }
    };
    check(differs(&running.dns, &next.dns), "[dns]");
    check(differs(&running.admin, &next.admin), "[admin]");
    let listeners =
        |f: Option<&FrontConfig>| f.map(|f| (f.listeners.clone(), f.certificates.clone()));
    check(
        listeners(running.proxy.as_ref().map(|p| &p.front))
            != listeners(next.proxy.as_ref().map(|p| &p.front)),
        "[proxy] listeners or certificates (or the section added or removed)",
    );
    check(differs(&running.reload, &next.reload), "[reload]");
    check(running.keys != next.keys, "[[key]]");
    check(differs(&running.update, &next.update), "[update]");
    check(
        listeners(running.redirect.as_ref().map(|r| &r.front))
            != listeners(next.redirect.as_ref().map(|r| &r.front)),
        "[redirect] listeners or certificates (or the section added or removed)",
    );
    check(
        running.line_names() != next.line_names(),
        "the lines' names or order",
    );
    let origins =
        |c: &Config| -> Vec<Option<String>> { c.zones.iter().map(|z| z.origin.clone()).collect() };
    check(
        running.zones.len() != next.zones.len() || origins(running) != origins(next),
        "the list of [[zone]]s",
    );
    sections
}

/// The sections of `next` that differ from `running` and are applied live.
fn live_changes(running: &Config, next: &Config) -> Vec<&'static str> {
    let mut sections = Vec::new();
    if differs(&running.lines, &next.lines) {
        sections.push("[[line]]");
    }
    if differs(&running.geoip, &next.geoip) {
        sections.push("[[geoip]]");
    }
    let zone_files = |c: &Config| -> Vec<_> {
        c.zones
            .iter()
            .map(|z| (z.file.clone(), z.overlays.clone()))
            .collect()
    };
    if zone_files(running) != zone_files(next) {
        sections.push("[[zone]]");
    }
    // Listeners and certificates were checked to be the same: the rest is live.
    if differs(&running.redirect, &next.redirect) {
        sections.push("[redirect]");
    }
    if differs(&running.proxy, &next.proxy) {
        sections.push("[proxy]");
    }
    if running.health != next.health {
        sections.push("[health]");
    }
    sections
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(Path::new("g.toml"), text).expect("valid")
    }

    const BASE: &str = "[dns]\nlisten = [\"127.0.0.1:5300\"]\n[[line]]\nname = \"lab\"\ncidrs = [\"192.0.2.0/24\"]\n";

    #[test]
    fn listener_and_line_name_changes_need_a_restart_rule_changes_do_not() {
        let running = parse(BASE);
        assert!(needs_restart(&running, &parse(BASE)).is_empty());
        assert!(live_changes(&running, &parse(BASE)).is_empty());
        let moved = parse(&BASE.replace("5300", "5301"));
        assert_eq!(needs_restart(&running, &moved), ["[dns]"]);
        let renamed = parse(&BASE.replace("\"lab\"", "\"lab2\""));
        assert_eq!(
            needs_restart(&running, &renamed),
            ["the lines' names or order"]
        );
        let widened =
            parse(&BASE.replace("\"192.0.2.0/24\"", "\"192.0.2.0/24\", \"198.51.100.0/24\""));
        assert!(needs_restart(&running, &widened).is_empty());
        assert_eq!(live_changes(&running, &widened), ["[[line]]"]);
    }
}
