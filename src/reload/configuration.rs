//! Reloading the configuration file itself, on SIGHUP and `POST /reload`.
//!
//! This module owns what an edited configuration may change in a running server, and the
//! order that keeps a reload whole. The file is read and checked as `geoline check` does
//! (every section; then every database, zone and certificate it names, opened, compiled
//! and validated) before anything is swapped; a file that fails keeps the running
//! configuration, and says why in the log and `/status`.
//!
//! Every section of [`Config`] is in one of two lists ([`changes`], which names each field
//! of `Config`, so that a new section does not compile until it is put in one): *live*,
//! swapped in while serving, or *restart*, which refuses the whole edit — nothing of it
//! is applied, and the log and `/status` name each such section. No change is silently
//! ignored.
//!
//! Live: the lines' rules and the databases (one new classifier, compiled from both), the
//! zones' files (each through the update journal, as a file reload), and `[redirect]` and
//! `[proxy]` (rules, origin, host pairs, forwarded headers, access log, limits, trusted
//! proxies), rebuilt whole by [`crate::server::fronts`] before anything is swapped, and
//! `[health]` (monitors, sources, quorum, weights, all-down chains, TTL cap, state file),
//! whose checks' TLS settings and state file are read before anything is swapped
//! ([`crate::health::Health::reconfigure`] says what each address keeps), and `[acme]`,
//! whose tasks [`crate::acme::supervisor`] starts again under it.
//! Restart: what the listeners were built from at start — the `[dns]`, `[admin]` and
//! `[reload]` sections, the front-ends' listeners and certificates (each TLS listener
//! chooses among its own part of the certificate set) — the lines' names and order (the
//! zones' views are numbered by them), the TSIG keys, the update policy, the list of zones
//! (each has its update journal) and their transfer tables.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Config, ConfigError, ZoneConfig};
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
    let Changes {
        live: applied,
        restart,
    } = changes(running, &next);
    if !restart.is_empty() {
        return Err(ConfigReloadError::NeedsRestart {
            path: running.path.clone(),
            sections: restart,
        });
    }
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

/// How the change of one section reaches the running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// Swapped in while serving.
    Live,
    /// Only a restart applies it: the edit is refused whole.
    Restart,
}
use Applies::{Live, Restart};

/// The sections of an edit that differ from what runs, each in one of two lists.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    /// Applied while serving.
    live: Vec<&'static str>,
    /// Applied only by a restart.
    restart: Vec<&'static str>,
}

impl Changes {
    /// Puts `section` in `applies`'s list when it `changed`.
    fn note(&mut self, applies: Applies, changed: bool, section: &'static str) {
        if changed {
            match applies {
                Live => self.live.push(section),
                Restart => self.restart.push(section),
            }
        }
    }
}

/// What differs between `running` and `next`, section by section, and how each change
/// is applied. Every field of [`Config`] is named here (the pattern has no `..`): a
/// section added to `Config` does not compile until it is put in one of the two lists,
/// so no edit is ever silently ignored.
fn changes(running: &Config, next: &Config) -> Changes {
    let Config {
        // The file's own path: the same file is what is read again.
        path: _,
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
    } = next;
    let mut c = Changes::default();
    // Listeners and what was built from them at start.
    c.note(Restart, differs(&running.dns, dns), "[dns]");
    c.note(Restart, differs(&running.admin, admin), "[admin]");
    c.note(Restart, differs(&running.reload, reload), "[reload]");
    let listeners =
        |f: Option<&FrontConfig>| f.map(|f| (f.listeners.clone(), f.certificates.clone()));
    let redirect_listeners = listeners(running.redirect.as_ref().map(|r| &r.front))
        != listeners(redirect.as_ref().map(|r| &r.front));
    c.note(
        Restart,
        redirect_listeners,
        "[redirect] listeners or certificates (or the section added or removed)",
    );
    // Listeners and certificates aside (compared above), the rest is live.
    c.note(
        Live,
        !redirect_listeners && differs(&running.redirect, redirect),
        "[redirect]",
    );
    let proxy_listeners = listeners(running.proxy.as_ref().map(|p| &p.front))
        != listeners(proxy.as_ref().map(|p| &p.front));
    c.note(
        Restart,
        proxy_listeners,
        "[proxy] listeners or certificates (or the section added or removed)",
    );
    c.note(
        Live,
        !proxy_listeners && differs(&running.proxy, proxy),
        "[proxy]",
    );
    // The zones' views are numbered by the lines' names and order; their rules are live.
    let renamed = running.line_set.names() != line_set.names();
    c.note(Restart, renamed, "the lines' names or order");
    c.note(Live, !renamed && differs(&running.lines, lines), "[[line]]");
    c.note(Live, differs(&running.geoip, geoip), "[[geoip]]");
    // The zones: which there are, each one's files, and each one's transfer table.
    let origins =
        |z: &[ZoneConfig]| -> Vec<Option<String>> { z.iter().map(|z| z.origin.clone()).collect() };
    let zone_list = running.zones.len() != zones.len() || origins(&running.zones) != origins(zones);
    c.note(Restart, zone_list, "the list of [[zone]]s");
    let files = |z: &[ZoneConfig]| -> Vec<_> {
        z.iter()
            .map(|z| (z.file.clone(), z.overlays.clone()))
            .collect()
    };
    c.note(
        Live,
        !zone_list && files(&running.zones) != files(zones),
        "[[zone]]",
    );
    let transfers = |z: &[ZoneConfig]| -> Vec<_> { z.iter().map(|z| z.transfer.clone()).collect() };
    c.note(
        Restart,
        !zone_list && transfers(&running.zones) != transfers(zones),
        "[[zone]] transfer",
    );
    // A secondary zone's primaries, keys and store: its pulling task is started with them.
    let pulls = |z: &[ZoneConfig]| -> Vec<_> { z.iter().map(|z| z.secondary.clone()).collect() };
    c.note(
        Restart,
        !zone_list && pulls(&running.zones) != pulls(zones),
        "[[zone]] primaries",
    );
    c.note(Restart, running.keys != *keys, "[[key]]");
    c.note(Restart, differs(&running.update, update), "[update]");
    c.note(Live, running.health != *health, "[health]");
    c.note(Live, running.acme != *acme, "[acme]");
    c
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(Path::new("g.toml"), text).expect("valid")
    }

    /// A configuration with every section, each edit below changing one of them.
    const BASE: &str = r#"
[dns]
listen = ["127.0.0.1:5300"]
[admin]
listen = "127.0.0.1:9300"
[reload]
watch = false
[[line]]
name = "lab"
cidrs = ["192.0.2.0/24"]
[[key]]
name = "k1"
secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
[[zone]]
origin = "example.com."
file = "a.zone"
transfer.keys = { "k1" = "default" }
[update]
rate = 20
[[update.grant]]
key = "k1"
zones = ["example.com"]
[health]
[acme]
"#;

    #[test]
    fn a_secondary_zone_s_primaries_need_a_restart() {
        let zone =
            "[[zone]]\norigin = \"example.org\"\nprimaries = [\"192.0.2.1\"]\nstore = \"s\"\n";
        let running = parse(&format!("{BASE}{zone}"));
        let next = parse(&format!("{BASE}{}", zone.replace("192.0.2.1", "192.0.2.2")));
        assert_eq!(
            changes(&running, &next),
            Changes {
                live: Vec::new(),
                restart: vec!["[[zone]] primaries"],
            }
        );
    }

    #[test]
    fn every_section_change_is_either_live_or_needs_a_restart() {
        let base = parse(BASE);
        assert_eq!(changes(&base, &parse(BASE)), Changes::default());
        let live = |s: &[&'static str]| Changes {
            live: s.to_vec(),
            restart: Vec::new(),
        };
        let restart = |s: &[&'static str]| Changes {
            live: Vec::new(),
            restart: s.to_vec(),
        };
        let cases: [(&str, &str, Changes); 13] = [
            ("5300", "5301", restart(&["[dns]"])),
            ("9300", "9301", restart(&["[admin]"])),
            ("watch = false", "watch = true", restart(&["[reload]"])),
            (
                "\"lab\"\ncidrs",
                "\"lab2\"\ncidrs",
                restart(&["the lines' names or order"]),
            ),
            (
                "\"192.0.2.0/24\"",
                "\"198.51.100.0/24\"",
                live(&["[[line]]"]),
            ),
            ("\"a.zone\"", "\"b.zone\"", live(&["[[zone]]"])),
            (
                "\"example.com.\"",
                "\"example.net.\"",
                restart(&["the list of [[zone]]s"]),
            ),
            (
                "= \"default\" }",
                "= \"lab\" }",
                restart(&["[[zone]] transfer"]),
            ),
            (
                "c2VjcmV0c2VjcmV0c2VjcmV0",
                "b3RoZXJvdGhlcm90aGVy",
                restart(&["[[key]]"]),
            ),
            ("rate = 20", "rate = 30", restart(&["[update]"])),
            (
                "[health]\n",
                "[health]\nttl_cap = 45\n",
                live(&["[health]"]),
            ),
            (
                "[acme]\n",
                "[acme]\ncontact = [\"mailto:ops@example.com\"]\n",
                live(&["[acme]"]),
            ),
            (
                "[dns]",
                "[[geoip]]\npath = \"g.mmdb\"\n[dns]",
                live(&["[[geoip]]"]),
            ),
        ];
        for (from, to, want) in cases {
            assert!(BASE.contains(from), "{from}");
            assert_eq!(
                changes(&base, &parse(&BASE.replace(from, to))),
                want,
                "{from} -> {to}"
            );
        }
    }
}
