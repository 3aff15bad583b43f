//! Reloading GeoIP databases, zones and certificates while the server answers.
//!
//! This module owns what a reload does and what is remembered of it: read the new data
//! whole, check it, compile it (a database reload recompiles the line map over the new set
//! of databases), and only then swap it into [`Live`], where requests take their
//! snapshots without ever waiting for a reload. A reload that fails at any step leaves the
//! data that was serving in place, and its error is kept for `/status` and `/metrics`.
//!
//! It does not decide when to reload: the file watcher ([`watch`]), SIGHUP
//! ([`crate::server`]) and `POST /reload` ([`crate::admin`]) call in, for databases, zones
//! and certificates alike.

pub(crate) mod watch;

mod files;

pub(crate) mod config;
pub(crate) mod configuration;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use crate::certs::CertError;
use crate::certs::CertificateConfig;
use crate::config::Config;
use crate::geoip::{GeoDb, GeoIpError};
use crate::lines::LineSet;
use crate::live::Live;
use crate::util::time::format_date;
use crate::zone::ZoneError;
use arc_swap::ArcSwap;
use configuration::{ConfigOutcome, ConfigReloadError, ConfigStatus};

/// What can be reloaded: the `i`th `[[geoip]]` database, `[[zone]]` or
/// `[[redirect.certificate]]` of the configuration (certificates only when a listener
/// serves TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The `i`th `[[geoip]]` database.
    Database(usize),
    /// The `i`th `[[zone]]`, with its overlays.
    Zone(usize),
    /// The `i`th `[[redirect.certificate]]`.
    Certificate(usize),
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
    /// A certificate obtained by ACME was written ([`crate::acme`]).
    Acme,
}

impl Trigger {
    /// The trigger's label in logs, `/status` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Watch => "watch",
            Trigger::Signal => "signal",
            Trigger::Admin => "admin",
            Trigger::Acme => "acme",
        }
    }
}

/// Why a reload failed; the data that was serving still is.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    ZoneJournal(#[from] crate::update::store::ReloadZoneError),
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error("no database {0}")]
    NoDatabase(usize),
    #[error("no database {0} in the classifier")]
    NotInClassifier(usize),
    #[error("no zone {0}")]
    NoZone(usize),
    #[error("no certificate {0}")]
    NoCertificate(usize),
    #[error("the reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One load or reload of a database, zone or certificate.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: SystemTime,
    pub trigger: Trigger,
    /// How long reading, checking and compiling took.
    pub duration: Duration,
    /// Why it failed; `None` when the new data is serving.
    pub error: Option<Arc<ReloadError>>,
}

/// What is known of one database, zone or certificate.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    /// The database file, the zone's base file, or the certificate's chain.
    pub path: PathBuf,
    /// Reloads that swapped new data in, and reloads that failed (the first load at start
    /// is not counted).
    pub successes: u64,
    pub failures: u64,
    pub last: Attempt,
    /// When the data serving now was loaded.
    pub loaded_at: SystemTime,
}

impl SourceStatus {
    /// A source loaded at `now` as at start: no reloads counted yet.
    fn loaded_at_start(path: &Path, now: SystemTime) -> SourceStatus {
        SourceStatus {
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
        }
    }
}

/// Every database, zone and certificate, in configuration order.
#[derive(Debug, Clone)]
pub struct Status {
    pub databases: Vec<SourceStatus>,
    pub zones: Vec<SourceStatus>,
    pub certificates: Vec<SourceStatus>,
}

impl Status {
    fn entry(&mut self, target: Target) -> Option<&mut SourceStatus> {
        match target {
            Target::Database(i) => self.databases.get_mut(i),
            Target::Zone(i) => self.zones.get_mut(i),
            Target::Certificate(i) => self.certificates.get_mut(i),
        }
    }
}

/// A reload's result: the error is shared with the status that keeps it.
pub(crate) type Reloaded = Result<(), Arc<ReloadError>>;

/// Reloads the databases, zones and certificates of one configuration into one [`Live`].
pub struct Reloader {
    /// The running configuration; a configuration reload replaces it whole.
    config: ArcSwap<Config>,
    /// The lines' names and order, which no reload changes (the zones' views are numbered
    /// by them).
    lines: LineSet,
    /// The configuration file's last reload.
    config_status: Mutex<ConfigStatus>,
    /// Told when a configuration reload applied: the watcher then watches the new files.
    pub(crate) config_applied: tokio::sync::Notify,
    live: Arc<Live>,
    status: Mutex<Status>,
    /// Held for the whole of a reload: two reloads of different databases must not both
    /// start from the same classifier, or the second swap would undo the first.
    running: Mutex<()>,
    /// The HTTP front-ends a configuration reload rebuilds, once they run.
    fronts: std::sync::OnceLock<crate::server::fronts::Fronts>,
    /// The DNS listeners' responder, once they run: a configuration reload replaces the
    /// zones' transfer tables.
    dns: std::sync::OnceLock<Arc<crate::dns::Responder>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reloader {
    /// `live` holds what was loaded from `config` at start.
    pub fn new(config: Config, live: Arc<Live>) -> Reloader {
        let now = SystemTime::now();
        let started = |path: &Path| SourceStatus::loaded_at_start(path, now);
        let status = Status {
            databases: config.geoip.iter().map(|g| started(&g.path)).collect(),
            zones: config.zones.iter().map(|z| started(&z.file)).collect(),
            certificates: live
                .certificates
                .load()
                .configs()
                .map(|c| started(&c.cert))
                .collect(),
        };
        Reloader {
            lines: config.line_set().clone(),
            config_status: Mutex::new(ConfigStatus {
                path: config.path.clone(),
                loaded_at: now,
                last: None,
            }),
            config: ArcSwap::from_pointee(config),
            config_applied: tokio::sync::Notify::new(),
            live,
            status: Mutex::new(status),
            running: Mutex::new(()),
            fronts: std::sync::OnceLock::new(),
            dns: std::sync::OnceLock::new(),
        }
    }

    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// What is known of the configuration file's reloads.
    pub fn config_status(&self) -> ConfigStatus {
        lock(&self.config_status).clone()
    }

    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// The certificates the TLS listeners serve, in configuration order (a configuration
    /// reload may change them).
    pub fn certificates(&self) -> Vec<CertificateConfig> {
        self.live.certificates.load().configs().cloned().collect()
    }

    /// A copy of what is known of every database, zone and certificate.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// Every database, then every zone, then every certificate.
    pub fn targets(&self) -> Vec<Target> {
        let config = self.config();
        (0..config.geoip.len())
            .map(Target::Database)
            .chain((0..config.zones.len()).map(Target::Zone))
            .chain((0..self.certificates().len()).map(Target::Certificate))
            .collect()
    }

    /// Every file a target is read from: a database's file, a zone's base and overlays and
    /// the files they `$INCLUDE` (as they are now), a certificate's chain and key.
    pub fn files(&self) -> Vec<(PathBuf, Target)> {
        let config = self.config();
        let dbs = config
            .geoip
            .iter()
            .enumerate()
            .map(|(i, g)| (g.path.clone(), Target::Database(i)));
        // A secondary zone's files are geoline's own copies: written, never to be reloaded.
        let files_of = config.zones.iter().enumerate();
        let zones = files_of
            .filter(|(_, z)| z.secondary.is_none())
            .flat_map(|(i, z)| {
                std::iter::once(z.file.clone())
                    .chain(z.overlays.values().cloned())
                    .flat_map(|p| {
                        // What the files `$INCLUDE` is read with the zone, and changes it.
                        let included = files::included(&p);
                        std::iter::once(p).chain(included)
                    })
                    .map(move |p| (p, Target::Zone(i)))
            });
        let certificates = self
            .certificates()
            .into_iter()
            .enumerate()
            .flat_map(|(i, c)| {
                [
                    (c.cert, Target::Certificate(i)),
                    (c.key, Target::Certificate(i)),
                ]
            });
        dbs.chain(zones).chain(certificates).collect()
    }

    /// A name for `target` in logs and errors: its file.
    pub fn describe(&self, target: Target) -> String {
        let config = self.config();
        let path = match target {
            Target::Database(i) => config.geoip.get(i).map(|g| &g.path),
            Target::Zone(i) => config.zones.get(i).map(|z| &z.file),
            Target::Certificate(i) => {
                let set = self.live.certificates.load();
                return set
                    .configs()
                    .nth(i)
                    .map_or_else(|| format!("{target:?}"), |c| c.cert.display().to_string());
            }
        };
        path.map_or_else(|| format!("{target:?}"), |p| p.display().to_string())
    }

    /// Reloads `target` on the calling thread, which it keeps busy for as long as reading
    /// and compiling take: call it from a blocking context.
    pub fn reload_blocking(&self, target: Target, trigger: Trigger) -> Reloaded {
        let _one_at_a_time = lock(&self.running);
        let started = Instant::now();
        let result = match target {
            Target::Database(i) => self.swap_database(i),
            Target::Zone(i) => self.swap_zone(i),
            Target::Certificate(i) => self.swap_certificate(i),
        }
        .map_err(Arc::new);
        let attempt = Attempt {
            at: SystemTime::now(),
            trigger,
            duration: started.elapsed(),
            error: result.as_ref().err().cloned(),
        };
        let ms = attempt.duration.as_millis() as u64;
        // The status first, then the log line: whoever reads the line finds `/status`
        // already saying the same.
        if let Some(entry) = lock(&self.status).entry(target) {
            if result.is_ok() {
                entry.successes += 1;
                entry.loaded_at = attempt.at;
            } else {
                entry.failures += 1;
            }
            entry.last = attempt;
        }
        let what = self.describe(target);
        match &result {
            Ok(()) => info!(
                file = %what,
                trigger = trigger.name(),
                ms,
                "reloaded{}",
                self.now_serving(target)
            ),
            Err(e) => warn!(
                file = %what,
                trigger = trigger.name(),
                error = %e,
                "reload failed; the previous data keeps serving"
            ),
        }
        result
    }

    /// What `target` serves now, for the log line of its reload: a zone's serial, a
    /// database's build date (empty for a certificate).
    fn now_serving(&self, target: Target) -> String {
        match target {
            Target::Zone(i) => self
                .live
                .zones
                .load()
                .zones()
                .get(i)
                .map(|z| format!(": zone {} serial {}", z.origin(), z.serial()))
                .unwrap_or_default(),
            Target::Database(i) => self
                .live
                .classifier
                .load()
                .databases()
                .get(i)
                .map(|db| format!(": database built {}", format_date(db.build_epoch())))
                .unwrap_or_default(),
            Target::Certificate(_) => String::new(),
        }
    }

    /// Reloads `target` on the blocking thread pool.
    pub async fn reload(self: &Arc<Self>, target: Target, trigger: Trigger) -> Reloaded {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.reload_blocking(target, trigger))
            .await
            .unwrap_or_else(|e| Err(Arc::new(ReloadError::Task(e))))
    }

    /// Reads the configuration file again and applies what it changes
    /// ([`configuration`]): whole, or not at all (logged, and kept for `/status`).
    pub fn reload_config_blocking(
        &self,
        trigger: Trigger,
    ) -> Result<ConfigOutcome, Arc<ConfigReloadError>> {
        let _one_at_a_time = lock(&self.running);
        let running = self.config();
        let result = match configuration::prepare(&running) {
            Ok(None) => Ok(ConfigOutcome::Unchanged),
            Ok(Some(prepared)) => match self.prepare_fronts(&prepared.config) {
                Ok(fronts) => self.swap_config(prepared, fronts).map_err(Arc::new),
                Err(e) => Err(Arc::new(ConfigReloadError::Front(e))),
            },
            Err(e) => Err(Arc::new(e)),
        };
        // The status first, then the log line: whoever reads the line (an operator, a test)
        // finds `/status` already saying the same.
        {
            let now = SystemTime::now();
            let mut status = lock(&self.config_status);
            if matches!(result, Ok(ConfigOutcome::Applied(_))) {
                status.loaded_at = now;
            }
            status.last = Some((now, result.clone()));
        }
        let path = running.path.display().to_string();
        match &result {
            Ok(ConfigOutcome::Unchanged) => {
                info!(config = %path, trigger = trigger.name(), "configuration unchanged")
            }
            Ok(ConfigOutcome::Applied(sections)) => info!(
                config = %path,
                trigger = trigger.name(),
                "configuration reloaded: {} applied",
                sections.join(", ")
            ),
            Err(e) => warn!(
                trigger = trigger.name(),
                error = %e,
                "configuration not reloaded; the running one is kept"
            ),
        }
        result
    }

    /// Swaps in a configuration checked and loaded whole. First the zones with their
    /// journals, the update policy and the journals' settings, in one step of the zones'
    /// writer ([`crate::update::Updates::reconfigure`]), the only step that can still
    /// refuse (a journal that does not open): nothing else is swapped before it. Then the
    /// TSIG keys, the zones' transfer tables, the secondary zones' tasks (started, stopped
    /// or started again by origin), the classifier (lines' rules and databases) in one
    /// store, the front-ends, and the configuration the next reloads read. Called with
    /// `running` held.
    fn swap_config(
        &self,
        prepared: configuration::Prepared,
        fronts: Option<crate::server::fronts::Prepared>,
    ) -> Result<ConfigOutcome, ConfigReloadError> {
        let configuration::Prepared {
            config,
            classifier,
            zones,
            applied,
            health,
        } = prepared;
        self.live
            .updates
            .reconfigure(&self.live.zones, &config.update, &config.zones, zones)?;
        self.live.keys.store(config.keys.clone());
        if let Some(transfers) = self.dns.get().and_then(|dns| dns.transfers()) {
            let tables = config.zones.iter().map(|z| z.transfer.clone()).collect();
            transfers.reconfigure(tables, &self.live.zones.load());
        }
        // After the zones: a secondary zone's new task finds what it serves.
        self.live.secondaries.reconfigure(&config.zones, &self.live);
        self.live.classifier.store(classifier);
        if let Some(health) = health {
            self.live.health.reconfigure(health);
        }
        let certificates_before = self.certificates();
        if let (Some(running), Some(built)) = (self.fronts.get(), fronts) {
            running.apply(built, true);
        }
        let config = Arc::new(config);
        self.config.store(config.clone());
        self.live.acme.configure(&config.acme);
        let now = SystemTime::now();
        let fresh = |path: &Path| SourceStatus::loaded_at_start(path, now);
        let mut status = lock(&self.status);
        status.databases = config.geoip.iter().map(|g| fresh(&g.path)).collect();
        status.zones = config.zones.iter().map(|z| fresh(&z.file)).collect();
        // A certificate the new list keeps keeps its reload history; a new one starts one.
        let certificates_after = self.certificates();
        if certificates_after != certificates_before {
            let previous = std::mem::take(&mut status.certificates);
            status.certificates = certificates_after
                .iter()
                .map(|c| {
                    certificates_before
                        .iter()
                        .position(|b| b == c)
                        .and_then(|i| previous.get(i).cloned())
                        .unwrap_or_else(|| fresh(&c.cert))
                })
                .collect();
        }
        self.config_applied.notify_one();
        Ok(ConfigOutcome::Applied(applied))
    }

    /// Hands over the DNS listeners' responder, which configuration reloads update.
    pub(crate) fn set_dns(&self, dns: Arc<crate::dns::Responder>) {
        let _ = self.dns.set(dns);
    }

    /// Hands over the running HTTP front-ends, which configuration reloads rebuild.
    pub(crate) fn set_fronts(&self, fronts: crate::server::fronts::Fronts) {
        let _ = self.fronts.set(fronts);
    }

    /// `[redirect]` and `[proxy]` of `next` built, before anything is swapped.
    fn prepare_fronts(
        &self,
        next: &Config,
    ) -> Result<Option<crate::server::fronts::Prepared>, crate::server::fronts::FrontsError> {
        self.fronts.get().map(|f| f.prepare(next)).transpose()
    }

    /// [`Reloader::reload_config_blocking`] on the blocking thread pool.
    pub async fn reload_config(
        self: &Arc<Self>,
        trigger: Trigger,
    ) -> Result<ConfigOutcome, Arc<ConfigReloadError>> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.reload_config_blocking(trigger))
            .await
            .unwrap_or_else(|e| {
                Err(Arc::new(ConfigReloadError::Config(
                    crate::config::ConfigError::Invalid {
                        at: crate::config::Location {
                            path: self.config().path.clone(),
                            line: None,
                        },
                        reason: format!("the reload task failed: {e}"),
                    },
                )))
            })
    }

    /// Reloads every database, zone and certificate, each on its own: one broken file does
    /// not keep the others from loading.
    pub async fn reload_all(self: &Arc<Self>, trigger: Trigger) -> Vec<(Target, Reloaded)> {
        let mut results = Vec::new();
        for target in self.targets() {
            results.push((target, self.reload(target, trigger).await));
        }
        results
    }

    fn swap_database(&self, i: usize) -> Result<(), ReloadError> {
        let config = self.config();
        let g = config.geoip.get(i).ok_or(ReloadError::NoDatabase(i))?;
        let db = GeoDb::open_with(&g.path, g.layout, &g.fields)?;
        let current = self.live.classifier.load_full();
        let mut dbs = current.databases().to_vec();
        let slot = dbs.get_mut(i).ok_or(ReloadError::NotInClassifier(i))?;
        *slot = Arc::new(db);
        self.live.classifier.store(current.with_databases(dbs)?);
        Ok(())
    }

    fn swap_zone(&self, i: usize) -> Result<(), ReloadError> {
        let config = self.config();
        let z = config.zones.get(i).ok_or(ReloadError::NoZone(i))?;
        // Through the updates' writer: the journal is replayed on the new file, and no
        // update lands between reading the zone and swapping it.
        self.live
            .updates
            .reload_zone(&self.live.zones, i, |current| {
                current.with_zone_reloaded(i, z, &self.lines)
            })?;
        Ok(())
    }

    fn swap_certificate(&self, i: usize) -> Result<(), ReloadError> {
        let current = self.live.certificates.load_full();
        let next = current
            .with_reloaded(i)
            .ok_or(ReloadError::NoCertificate(i))??;
        self.live.certificates.store(next);
        Ok(())
    }
}
