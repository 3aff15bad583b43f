//! Reloading GeoIP databases and zones while the server answers.
//!
//! This module owns what a reload does and what is remembered of it: read the new data
//! whole, check it, compile it (a database reload recompiles the line map over the new set
//! of databases), and only then swap it into [`Live`], where requests take their
//! snapshots without ever waiting for a reload. A reload that fails at any step leaves the
//! data that was serving in place, and its error is kept for `/status` and `/metrics`.
//!
//! It does not decide when to reload: the file watcher ([`crate::watch`]), SIGHUP
//! ([`crate::server`]) and `POST /reload` ([`crate::admin`]) call in.

pub(crate) mod config;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use crate::config::Config;
use crate::geoip::GeoDb;
use crate::lines::LineSet;
use crate::live::Live;

/// What can be reloaded: the `i`th `[[geoip]]` database or `[[zone]]` of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Database(usize),
    Zone(usize),
}

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first load, when the server started.
    Start,
    /// The file changed on disk.
    Watch,
    /// SIGHUP.
    Signal,
    /// `POST /reload` on the admin listener.
    Admin,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Watch => "watch",
            Trigger::Signal => "signal",
            Trigger::Admin => "admin",
        }
    }
}

/// One load or reload of a database or zone.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: SystemTime,
    pub trigger: Trigger,
    /// How long reading, checking and compiling took.
    pub duration: Duration,
    /// Why it failed; `None` when the new data is serving.
    pub error: Option<String>,
}

/// What is known of one database or zone.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    /// The database file, or the zone's base file.
    pub path: PathBuf,
    /// Reloads that swapped new data in, and reloads that failed (the first load at start
    /// is not counted).
    pub successes: u64,
    pub failures: u64,
    pub last: Attempt,
    /// When the data serving now was loaded.
    pub loaded_at: SystemTime,
}

/// Every database and zone, in configuration order.
#[derive(Debug, Clone)]
pub struct Status {
    pub databases: Vec<SourceStatus>,
    pub zones: Vec<SourceStatus>,
}

/// Reloads the databases and zones of one configuration into one [`Live`].
pub struct Reloader {
    config: Config,
    lines: LineSet,
    live: Arc<Live>,
    status: Mutex<Status>,
    /// Held for the whole of a reload: two reloads of different databases must not both
    /// start from the same classifier, or the second swap would undo the first.
    running: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reloader {
    /// `live` holds what was loaded from `config` at start.
    pub fn new(config: Config, live: Arc<Live>) -> Reloader {
        let now = SystemTime::now();
        let started = |path: &Path| SourceStatus {
            path: path.to_path_buf(),
            successes: 0,
            failures: 0,
            last: Attempt {
                at: now,
                trigger: Trigger::Start,
                duration: Duration::ZERO,
                error: None,
            },
            loaded_at: now,
        };
        let status = Status {
            databases: config.geoip.iter().map(|g| started(&g.path)).collect(),
            zones: config.zones.iter().map(|z| started(&z.file)).collect(),
        };
        Reloader {
            lines: config.line_set().clone(),
            config,
            live,
            status: Mutex::new(status),
            running: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// A copy of what is known of every database and zone.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// Every database, then every zone.
    pub fn targets(&self) -> Vec<Target> {
        (0..self.config.geoip.len())
            .map(Target::Database)
            .chain((0..self.config.zones.len()).map(Target::Zone))
            .collect()
    }

    /// Every file a target is read from: a database's file, a zone's base and overlays.
    pub fn files(&self) -> Vec<(PathBuf, Target)> {
        let dbs = self
            .config
            .geoip
            .iter()
            .enumerate()
            .map(|(i, g)| (g.path.clone(), Target::Database(i)));
        let zones = self.config.zones.iter().enumerate().flat_map(|(i, z)| {
            std::iter::once(z.file.clone())
                .chain(z.overlays.values().cloned())
                .map(move |p| (p, Target::Zone(i)))
        });
        dbs.chain(zones).collect()
    }

    /// A name for `target` in logs and errors: its file.
    pub fn describe(&self, target: Target) -> String {
        let path = match target {
            Target::Database(i) => self.config.geoip.get(i).map(|g| &g.path),
            Target::Zone(i) => self.config.zones.get(i).map(|z| &z.file),
        };
        path.map_or_else(|| format!("{target:?}"), |p| p.display().to_string())
    }

    /// Reloads `target` on the calling thread, which it keeps busy for as long as reading
    /// and compiling take: call it from a blocking context.
    pub fn reload_blocking(&self, target: Target, trigger: Trigger) -> Result<(), String> {
        let _one_at_a_time = lock(&self.running);
        let started = Instant::now();
        let result = match target {
            Target::Database(i) => self.swap_database(i),
            Target::Zone(i) => self.swap_zone(i),
        };
        let attempt = Attempt {
            at: SystemTime::now(),
            trigger,
            duration: started.elapsed(),
            error: result.as_ref().err().cloned(),
        };
        let what = self.describe(target);
        match &result {
            Ok(()) => info!(
                file = %what,
                trigger = trigger.name(),
                ms = attempt.duration.as_millis() as u64,
                "reloaded"
            ),
            Err(e) => warn!(
                file = %what,
                trigger = trigger.name(),
                error = %e,
                "reload failed; the previous data keeps serving"
            ),
        }
        let mut status = lock(&self.status);
        let entry = match target {
            Target::Database(i) => status.databases.get_mut(i),
            Target::Zone(i) => status.zones.get_mut(i),
        };
        if let Some(entry) = entry {
            if result.is_ok() {
                entry.successes += 1;
                entry.loaded_at = attempt.at;
            } else {
                entry.failures += 1;
            }
            entry.last = attempt;
        }
        result
    }

    /// Reloads `target` on the blocking thread pool.
    pub async fn reload(self: &Arc<Self>, target: Target, trigger: Trigger) -> Result<(), String> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.reload_blocking(target, trigger))
            .await
            .unwrap_or_else(|e| Err(format!("the reload task failed: {e}")))
    }

    /// Reloads every database and zone, each on its own: one broken file does not keep the
    /// others from loading.
    pub async fn reload_all(
        self: &Arc<Self>,
        trigger: Trigger,
    ) -> Vec<(Target, Result<(), String>)> {
        let mut results = Vec::new();
        for target in self.targets() {
            results.push((target, self.reload(target, trigger).await));
        }
        results
    }

    fn swap_database(&self, i: usize) -> Result<(), String> {
        let g = self
            .config
            .geoip
            .get(i)
            .ok_or_else(|| format!("no database {i}"))?;
        let db = GeoDb::open_with(&g.path, g.layout, &g.fields).map_err(|e| e.to_string())?;
        let current = self.live.classifier.load_full();
        let mut dbs = current.databases().to_vec();
        match dbs.get_mut(i) {
            Some(slot) => *slot = Arc::new(db),
            None => return Err(format!("no database {i} in the classifier")),
        }
        let next = current.with_databases(dbs).map_err(|e| e.to_string())?;
        self.live.classifier.store(next);
        Ok(())
    }

    fn swap_zone(&self, i: usize) -> Result<(), String> {
        let z = self
            .config
            .zones
            .get(i)
            .ok_or_else(|| format!("no zone {i}"))?;
        let current = self.live.zones.load_full();
        let next = current
            .with_zone_reloaded(i, z, &self.lines)
            .map_err(|e| e.to_string())?;
        self.live.zones.store(Arc::new(next));
        Ok(())
    }
}
