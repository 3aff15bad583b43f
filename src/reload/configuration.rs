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
//! list of zones and their files (each zone through its update journal, replayed on the new
//! files; a zone added has its journal opened and replayed, a zone removed has its journal
//! closed and kept; a secondary zone keeps what it pulled), each secondary zone's
//! `primaries`, `primary_keys` and `store` (its transfer task, keyed by origin, started,
//! stopped or started again: [`crate::xfr::secondary::Secondaries::reconfigure`]), the
//! TSIG keys and `[update]` (policy, rate,
//! journals' settings: [`crate::update::Updates::reconfigure`] swaps them with the zones),
//! each zone's `transfer` table (ACL, key to line, NOTIFY targets:
//! [`crate::xfr::Transfers::reconfigure`]), `[redirect]` and `[proxy]` whole (rules,
//! origin, host pairs, forwarded headers, access log, limits, trusted proxies, listeners
//! and certificates, the section itself added or removed), built and bound by
//! [`crate::server::fronts`] before anything is swapped (a listener that cannot be bound
//! refuses the reload), and `[health]` (monitors, sources, quorum, weights, all-down
//! chains, TTL cap, state file), whose checks' TLS settings and state file are read before
//! anything is swapped ([`crate::health::Health::reconfigure`] says what each address
//! keeps), and `[acme]`, whose tasks [`crate::acme::supervisor`] starts again under it.
//! Restart: what the DNS and admin listeners were built from at start — the `[dns]`,
//! `[admin]` and `[reload]` sections — and the lines' names and order (the zones' views are
//! numbered by them). Knot (`knotc reload`) and BIND (`rndc reconfig`) add and remove
//! zones without a restart too.
//!
//! The front-ends' listeners reload as nginx's do on SIGHUP. The DNS listeners stay
//! restart-only, as Knot's `server.listen` and `udp-workers` ("change of this parameter
//! requires restart") and NSD's interfaces and ports (its `reconfig` applies zones and
//! rate limits only); BIND does apply an edited `listen-on` on `rndc reconfig`. Here each
//! DNS address is a group of `SO_REUSEPORT` sockets served by worker threads, and moving
//! them while answering is not worth a half-moved server. The admin listener answers
//! `POST /reload` itself, and stays restart-only too.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Config, ConfigError, ZoneConfig};
use crate::geoip::{GeoDb, GeoIpError};
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
    /// An edited `[redirect]` or `[proxy]` cannot be set up (an origin, an access log, a
    /// certificate, a listener's address).
    #[error(transparent)]
    Front(crate::server::fronts::FrontsError),
    /// An edited `[health]` cannot run (a CA file, the state file).
    #[error(transparent)]
    Health(#[from] crate::health::SetupError),
    /// A zone's journal cannot be opened, read or kept with its updates.
    #[error(transparent)]
    Updates(#[from] crate::update::store::ReconfigureError),
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
    /// The zones as their files hold them (their journals are replayed when swapped in).
    pub(super) zones: ZoneSet,
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
    let zones = ZoneSet::load(&next.zones, classifier.lines())?;
    let health = (running.health != next.health)
        .then(|| crate::health::Prepared::new(&next.health))
        .transpose()?;
    Ok(Some(Prepared {
        config: next,
        classifier,
        zones,
        applied,
        health,
    }))
}

/// A configured origin as the zones compare it: `Example.COM` and `example.com.` are one.
fn zone_key(origin: &str) -> String {
    let lower = origin.to_ascii_lowercase();
    format!("{}.", lower.trim_end_matches('.'))
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
    // The front-ends whole: listeners and certificates too, the section added or removed.
    c.note(Live, differs(&running.redirect, redirect), "[redirect]");
    c.note(Live, differs(&running.proxy, proxy), "[proxy]");
    // The zones' views are numbered by the lines' names and order; their rules are live.
    let renamed = running.line_set.names() != line_set.names();
    c.note(Restart, renamed, "the lines' names or order");
    c.note(Live, !renamed && differs(&running.lines, lines), "[[line]]");
    c.note(Live, differs(&running.geoip, geoip), "[[geoip]]");
    // The zones: which there are, each one's files, its transfer table and where it is
    // pulled from, matched by origin (by file for a zone whose origin its file gives).
    let key = |z: &ZoneConfig| -> (Option<String>, Option<PathBuf>) {
        match &z.origin {
            Some(origin) => (Some(zone_key(origin)), None),
            None => (None, Some(z.file.clone())),
        }
    };
    let listed = |list: &[ZoneConfig]| list.iter().map(key).collect::<Vec<_>>();
    c.note(
        Live,
        listed(&running.zones) != listed(zones),
        "the list of [[zone]]s",
    );
    let (mut files, mut transfer_tables, mut pulled_from) = (false, false, false);
    for now in zones {
        let Some(was) = running.zones.iter().find(|was| key(was) == key(now)) else {
            continue;
        };
        // Every field of a `[[zone]]` named, as `Config`'s are above.
        let ZoneConfig {
            // Compared with the list.
            origin: _,
            // Where the table is written in the file, not what it says.
            declared_at: _,
            file,
            overlays,
            transfer,
            secondary,
        } = now;
        files |= was.file != *file || was.overlays != *overlays;
        transfer_tables |= was.transfer != *transfer;
        pulled_from |= was.secondary != *secondary;
    }
    c.note(Live, files, "[[zone]]");
    c.note(Live, transfer_tables, "[[zone]] transfer");
    c.note(Live, pulled_from, "[[zone]] primaries");
    // Keys and grants: each request is verified and decided with the ones current then.
    c.note(Live, running.keys != *keys, "[[key]]");
    c.note(Live, differs(&running.update, update), "[update]");
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
    fn a_secondary_zone_s_primaries_are_live() {
        let zone =
            "[[zone]]\norigin = \"example.org\"\nprimaries = [\"192.0.2.1\"]\nstore = \"s\"\n";
        let running = parse(&format!("{BASE}{zone}"));
        let next = parse(&format!("{BASE}{}", zone.replace("192.0.2.1", "192.0.2.2")));
        assert_eq!(
            changes(&running, &next),
            Changes {
                live: vec!["[[zone]] primaries"],
                restart: Vec::new(),
            }
        );
    }

    #[test]
    fn zones_added_removed_or_reordered_are_live_and_matched_by_origin() {
        let second = "[[zone]]\norigin = \"example.net\"\nfile = \"n.zone\"\n";
        let one = parse(BASE);
        let two = parse(&format!("{BASE}{second}"));
        let list = Changes {
            live: vec!["the list of [[zone]]s"],
            restart: Vec::new(),
        };
        assert_eq!(changes(&one, &two), list);
        assert_eq!(changes(&two, &one), list);
        // The same zone spelled otherwise is the same zone.
        let respelled = parse(&format!(
            "{BASE}{}",
            second.replace("example.net", "Example.NET.")
        ));
        assert_eq!(changes(&two, &respelled), Changes::default());
        // A zone added while another's file changes: both named, the kept zone matched
        // by its origin, not its place.
        let first_moved = BASE.replace("\"a.zone\"", "\"b.zone\"");
        let reordered = parse(&format!("{second}{first_moved}"));
        assert_eq!(
            changes(&one, &reordered),
            Changes {
                live: vec!["the list of [[zone]]s", "[[zone]]"],
                restart: Vec::new(),
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
                live(&["the list of [[zone]]s"]),
            ),
            (
                "= \"default\" }",
                "= \"lab\" }",
                live(&["[[zone]] transfer"]),
            ),
            (
                "c2VjcmV0c2VjcmV0c2VjcmV0",
                "b3RoZXJvdGhlcm90aGVy",
                live(&["[[key]]"]),
            ),
            ("rate = 20", "rate = 30", live(&["[update]"])),
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

    #[test]
    fn a_front_ends_listeners_and_the_section_itself_are_live() {
        const PROXY: &str = r#"
[proxy]
origin = "http://example.com"
hosts = [{ public = "example.cn", origin = "example.com" }]
[[proxy.listen]]
address = "127.0.0.1:8080"
"#;
        let base = parse(&format!("{BASE}{PROXY}"));
        let live = |s: &[&'static str]| Changes {
            live: s.to_vec(),
            restart: Vec::new(),
        };
        let moved = parse(&format!("{BASE}{}", PROXY.replace("8080", "8081")));
        assert_eq!(changes(&base, &moved), live(&["[proxy]"]));
        let added = format!("{BASE}{PROXY}[[proxy.listen]]\naddress = \"127.0.0.1:8082\"\n");
        assert_eq!(changes(&base, &parse(&added)), live(&["[proxy]"]));
        assert_eq!(changes(&base, &parse(BASE)), live(&["[proxy]"]));
        assert_eq!(changes(&parse(BASE), &base), live(&["[proxy]"]));
    }
}
