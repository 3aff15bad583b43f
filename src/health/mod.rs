//! Health-checked answers: monitors watch addresses, and a down address is left out of
//! the A/AAAA RRsets that hold it.
//!
//! This module owns the health of addresses while geoline runs: [`Health`] sits in
//! [`crate::live::Live`] and holds the current [`HealthTable`] (what answers read, one
//! snapshot per lookup) behind a generation number that the UDP answer cache compares on
//! every query, so a change reaches the prepared answers at once. The pieces:
//! [`config`] (the `[health]` section), [`state`] (check results to up/down),
//! [`check`] (one TCP or HTTP(S) check), [`monitor`] (the tasks that run them) and
//! [`filter`] (the table applied to a zone's answer).
//!
//! A configuration reload hands a new section to [`Health::reconfigure`]: addresses no
//! longer watched are forgotten (and answered again), new ones start up until checked,
//! and an address whose check (kind, port, request) is unchanged keeps its state and
//! history whatever else changed (interval, thresholds, monitor). The monitors' tasks
//! follow the [`monitor::Plan`] published with each configuration; results of a task
//! the registry no longer expects (an address reset, a source list replaced) are
//! dropped, by epoch, so an old check never counts against a new one.
//!
//! With no monitor configured nothing runs, the table is empty, and the lookup is the
//! zone's own.

pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod filter;
pub(crate) mod http1;
pub(crate) mod monitor;
pub(crate) mod overrides;
pub(crate) mod report;
pub(crate) mod sources;
pub(crate) mod state;
pub(crate) mod weights;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;
use tracing::{info, warn};

use check::{CheckSetupError, Checker};
pub(crate) use config::HealthConfig;
pub(crate) use filter::HealthTable;
use monitor::{Plan, Task, Watch};
use overrides::{Force, Override, StateFileError};
use sources::{Reader, Vote};
use state::{Thresholds, Tracker, Transition};

/// The health of the watched addresses, as answers and the admin listener read it.
pub(crate) struct Health {
    /// Whether answers apply the table at all (monitors or weights are configured).
    active: AtomicBool,
    /// Bumped after every change of `table`: the answer cache empties itself when it
    /// moves.
    generation: AtomicU64,
    table: ArcSwap<HealthTable>,
    registry: Mutex<Registry>,
    /// The tasks the monitors are to run, for [`monitor::spawn`]'s supervisor.
    plan: watch::Sender<Arc<Plan>>,
}

/// Why a `[health]` section cannot run: nothing of it is applied.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A monitor's or a source's TLS settings (its CA file).
    #[error(transparent)]
    Check(#[from] CheckSetupError),
    /// The state file (operators' overrides) is unreadable or damaged.
    #[error(transparent)]
    StateFile(#[from] StateFileError),
}

/// A `[health]` section made ready to apply: every check's TLS settings built and the
/// operators' overrides read, so that applying it cannot fail half-way.
pub(crate) struct Prepared {
    config: HealthConfig,
    /// One per monitor, in configuration order.
    checkers: Vec<Checker>,
    /// One per source, in configuration order.
    readers: Vec<Arc<Reader>>,
    /// The state file's overrides, for addresses not watched before.
    overrides: BTreeMap<IpAddr, Override>,
}

impl Prepared {
    /// Builds what `config` runs; the first thing that cannot be built.
    pub(crate) fn new(config: &HealthConfig) -> Result<Prepared, SetupError> {
        let checkers = config
            .monitors
            .iter()
            .map(Checker::new)
            .collect::<Result<Vec<_>, _>>()?;
        let readers = config
            .sources
            .iter()
            .map(|s| Reader::new(s).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let overrides = match &config.state_file {
            Some(path) => overrides::load(path)?,
            None => BTreeMap::new(),
        };
        Ok(Prepared {
            config: config.clone(),
            checkers,
            readers,
            overrides,
        })
    }
}

/// What a reconfiguration did to the watched addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reconfigured {
    /// Addresses newly watched.
    pub(crate) added: usize,
    /// Addresses no longer watched.
    pub(crate) removed: usize,
    /// Addresses whose check changed: their state starts again (up until checked).
    pub(crate) reset: usize,
    /// Addresses whose check is the same: their state and history are kept.
    pub(crate) kept: usize,
}

/// Every watched address's state and history, for `/status` and for the next table.
#[derive(Debug, Default)]
struct Registry {
    addresses: BTreeMap<IpAddr, AddressStatus>,
    ttl_cap: u32,
    all_down: BTreeMap<crate::lines::LineId, Vec<crate::lines::LineId>>,
    /// Where the operators' overrides are kept across restarts.
    state_file: Option<PathBuf>,
    weights: weights::Weights,
    /// The other geolines read, in configuration order.
    sources: Vec<SourceStatus>,
    quorum: u32,
    /// The section running: what the next one is compared with.
    config: HealthConfig,
    /// The epoch of the next address (re)started.
    next_epoch: u64,
    /// Moves when the list of sources changes: readings of the previous list are dropped.
    sources_epoch: u64,
}

/// One source of check results besides this server's own checks.
#[derive(Debug, Clone)]
pub(crate) struct SourceStatus {
    /// Its URL, as configured.
    pub(crate) url: String,
    /// The last read: when, and why it failed (`None`: it was read).
    pub(crate) last_read: Option<(SystemTime, Option<String>)>,
}

/// What one source said of an address at its last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) vote: Vote,
    /// The source's reason, or why the source could not be read.
    pub(crate) why: Option<String>,
}

/// Why `POST /health/ADDRESS` did nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForceError {
    /// No monitor watches the address.
    #[error("{0} is not watched by any health.monitor")]
    NotWatched(IpAddr),
    /// The override could not be kept: it is not applied either.
    #[error(transparent)]
    StateFile(#[from] StateFileError),
}

/// One watched address.
#[derive(Debug, Clone)]
pub(crate) struct AddressStatus {
    /// The monitor watching it (its index in the configuration).
    pub(crate) monitor: usize,
    /// Which start of its checks results count for: a result recorded under another
    /// epoch is from a check the configuration no longer has.
    pub(crate) epoch: u64,
    pub(crate) thresholds: Thresholds,
    pub(crate) tracker: Tracker,
    /// The last check: when it ended, and its failure (`None`: it passed).
    pub(crate) last_check: Option<(SystemTime, Option<String>)>,
    /// The last change of the state answers use, and why.
    pub(crate) last_change: Option<(SystemTime, String)>,
    /// The last change of the state this server's own checks say, and why.
    pub(crate) local_change: Option<(SystemTime, String)>,
    /// What each source says, in the order of [`Registry::sources`].
    pub(crate) views: Vec<View>,
    /// How many voters (this server's checks and the sources) must say down.
    pub(crate) quorum: u32,
    /// An operator's override: the state whatever the checks say.
    pub(crate) forced: Option<Override>,
    pub(crate) checks: u64,
    pub(crate) failures: u64,
    pub(crate) transitions: u64,
}

impl AddressStatus {
    /// An address not checked yet under `epoch`: up, no history. Its monitor,
    /// thresholds, quorum and views are set by whoever watches it.
    fn fresh(epoch: u64) -> AddressStatus {
        AddressStatus {
            monitor: 0,
            epoch,
            thresholds: Thresholds {
                down_after: config::DEFAULT_DOWN_AFTER,
                up_after: config::DEFAULT_UP_AFTER,
            },
            tracker: Tracker::default(),
            last_check: None,
            last_change: None,
            local_change: None,
            views: Vec::new(),
            quorum: 1,
            forced: None,
            checks: 0,
            failures: 0,
            transitions: 0,
        }
    }

    /// Whether answers count it up: as forced, else up unless a quorum of the voters
    /// says down (a voter that does not know is not counted down).
    pub(crate) fn is_up(&self) -> bool {
        self.forced
            .as_ref()
            .map_or_else(|| self.down_votes() < self.quorum, |f| f.up)
    }

    /// What this server's own checks say.
    pub(crate) fn local_vote(&self) -> Vote {
        match (self.checks, self.tracker.is_up()) {
            (0, _) => Vote::Unknown,
            (_, true) => Vote::Up,
            (_, false) => Vote::Down,
        }
    }

    /// How many voters say down.
    pub(crate) fn down_votes(&self) -> u32 {
        let remote = self.views.iter().filter(|v| v.vote == Vote::Down).count() as u32;
        remote + u32::from(self.local_vote() == Vote::Down)
    }

    /// `2 of 3 voters say down, quorum 2`: the tally, for reasons.
    fn tally(&self) -> String {
        format!(
            "{} of {} voters say down, quorum {}",
            self.down_votes(),
            self.views.len() + 1,
            self.quorum
        )
    }
}

impl Health {
    /// No address watched: answers are the zones' own.
    pub(crate) fn inactive() -> Health {
        Health {
            active: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            table: ArcSwap::from_pointee(HealthTable::default()),
            registry: Mutex::new(Registry::default()),
            plan: watch::Sender::new(Arc::new(Plan::default())),
        }
    }

    /// Every address of the section's monitors, up until checked unless an operator's
    /// override kept in the state file says otherwise.
    pub(crate) fn new(prepared: Prepared) -> Health {
        let health = Health::inactive();
        health.apply(prepared);
        health
    }

    /// Applies an edited `[health]` section (see the module's documentation) and tells
    /// the monitors' tasks to follow it.
    pub(crate) fn reconfigure(&self, prepared: Prepared) -> Reconfigured {
        let changes = self.apply(prepared);
        info!(
            added = changes.added,
            removed = changes.removed,
            reset = changes.reset,
            kept = changes.kept,
            "health: configuration applied"
        );
        changes
    }

    fn apply(&self, prepared: Prepared) -> Reconfigured {
        let Prepared {
            config,
            checkers,
            readers,
            overrides,
        } = prepared;
        let mut registry = self.registry();
        let registry = &mut *registry;
        let now = SystemTime::now();
        let mut changes = Reconfigured::default();

        // Sources are known by their URL: one kept keeps its last reading and views.
        let old_sources = std::mem::take(&mut registry.sources);
        let from: Vec<Option<usize>> = config
            .sources
            .iter()
            .map(|s| old_sources.iter().position(|o| o.url == s.url))
            .collect();
        registry.sources = config
            .sources
            .iter()
            .zip(&from)
            .map(|(s, from)| SourceStatus {
                url: s.url.clone(),
                last_read: from
                    .and_then(|i| old_sources.get(i))
                    .and_then(|o| o.last_read.clone()),
            })
            .collect();
        if registry.config.sources != config.sources {
            registry.sources_epoch += 1;
        }
        let quorum = config.quorum.max(1);

        let mut old = std::mem::take(&mut registry.addresses);
        let mut watches = Vec::new();
        for (i, (monitor, checker)) in config.monitors.iter().zip(checkers).enumerate() {
            for &address in &monitor.addresses {
                let previous = old.remove(&address);
                let was_up = previous.as_ref().map(AddressStatus::is_up);
                let same_check = previous.as_ref().is_some_and(|p| {
                    registry
                        .config
                        .monitors
                        .get(p.monitor)
                        .is_some_and(|m| m.check == monitor.check && m.port == monitor.port)
                });
                let mut status = match previous {
                    Some(kept) if same_check => {
                        changes.kept += 1;
                        kept
                    }
                    previous => {
                        registry.next_epoch += 1;
                        let fresh = AddressStatus::fresh(registry.next_epoch);
                        match previous {
                            // The views of the sources and an operator's override are
                            // about the address, not about this server's check of it.
                            Some(reset) => {
                                changes.reset += 1;
                                AddressStatus {
                                    views: reset.views,
                                    forced: reset.forced,
                                    transitions: reset.transitions,
                                    last_change: reset.last_change,
                                    ..fresh
                                }
                            }
                            None => {
                                changes.added += 1;
                                AddressStatus {
                                    forced: overrides.get(&address).cloned(),
                                    ..fresh
                                }
                            }
                        }
                    }
                };
                status.monitor = i;
                status.thresholds = monitor.thresholds;
                status.quorum = quorum;
                status.views = from
                    .iter()
                    .map(|j| {
                        j.and_then(|j| status.views.get(j).cloned())
                            .unwrap_or(View {
                                vote: Vote::Unknown,
                                why: None,
                            })
                    })
                    .collect();
                let up = status.is_up();
                if was_up.is_some_and(|was| was != up) {
                    let reason = format!("the configuration changed: {}", status.tally());
                    let state = if up { "up" } else { "down" };
                    warn!(%address, state, reason = %reason, "health: address changed state");
                    status.transitions += 1;
                    status.last_change = Some((now, reason));
                }
                watches.push(Watch {
                    address,
                    task: Task::of(monitor, status.epoch),
                    checker: checker.clone(),
                });
                registry.addresses.insert(address, status);
            }
        }
        for (address, status) in &old {
            changes.removed += 1;
            if !status.is_up() {
                info!(%address, "health: a down address is no longer watched: answers hold it again");
            }
        }
        if let Some(path) = &config.state_file {
            for address in overrides.keys() {
                if !registry.addresses.contains_key(address) {
                    // Kept in the file: the monitor may come back with the next change.
                    warn!(%address, file = %path.display(), "health: an override names an address no monitor watches; ignored");
                }
            }
        }
        registry.ttl_cap = config.ttl_cap;
        registry.all_down = config.all_down.clone();
        registry.state_file = config.state_file.clone();
        registry.weights = weights::Weights::new(&config.weights);
        registry.quorum = quorum;
        let plan = Plan {
            watches,
            sources: readers,
            sources_epoch: registry.sources_epoch,
        };
        self.active.store(config.is_active(), Ordering::Release);
        registry.config = config;
        // Every reconfiguration is a new table: the TTL cap, the weights or a chain may
        // have changed even when no state did.
        self.publish(registry);
        self.plan.send_replace(Arc::new(plan));
        changes
    }

    /// A receiver of the tasks to run, as each configuration gives them.
    pub(crate) fn plans(&self) -> watch::Receiver<Arc<Plan>> {
        self.plan.subscribe()
    }

    /// Whether any address is watched.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Moves whenever the table changes.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The table answers apply; `None` when nothing is watched.
    #[inline]
    pub(crate) fn table(&self) -> Option<Guard<Arc<HealthTable>>> {
        self.is_active().then(|| self.table.load())
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one check of `address` started under `epoch`: `failure` is `None` when it
    /// passed. A check of an address no longer watched, or watched with another check
    /// since, is not counted.
    pub(crate) fn record(&self, address: IpAddr, epoch: u64, failure: Option<String>) {
        let mut registry = self.registry();
        let Some(status) = registry
            .addresses
            .get_mut(&address)
            .filter(|s| s.epoch == epoch)
        else {
            return;
        };
        let now = SystemTime::now();
        let before = status.is_up();
        status.checks += 1;
        status.failures += u64::from(failure.is_some());
        let transition = status.tracker.record(failure.is_none(), status.thresholds);
        let reason = match (&failure, transition) {
            (_, None) => None,
            (Some(why), Some(Transition::Down { run })) => {
                Some(format!("{run} failed checks in a row, the last: {why}"))
            }
            (_, Some(Transition::Down { run })) => Some(format!("{run} failed checks in a row")),
            (_, Some(Transition::Up { run })) => Some(format!("{run} successful checks in a row")),
        };
        status.last_check = Some((now, failure));
        if let Some(reason) = &reason {
            status.local_change = Some((now, reason.clone()));
        }
        let up = status.is_up();
        if up == before && transition.is_none() {
            // The common case, a check like the last: nothing to say.
            return;
        }
        let reason = reason.unwrap_or_else(|| "this server's first check".into());
        let reason = if status.views.is_empty() {
            reason
        } else {
            format!("this server's checks: {reason}; {}", status.tally())
        };
        if up == before {
            if transition.is_some() {
                tracing::info!(%address, reason = %reason, "health: this server's checks changed their view; the state holds");
            }
            return;
        }
        status.transitions += 1;
        let state = if up { "up" } else { "down" };
        warn!(%address, state, reason = %reason, "health: address changed state");
        status.last_change = Some((now, reason));
        self.publish(&registry);
    }

    /// The views read from source `index` (its position in the configuration of
    /// `epoch`), or why it could not be read: then it counts as unknown for every
    /// address. A reading from a list of sources replaced since is dropped.
    pub(crate) fn apply_source(
        &self,
        index: usize,
        epoch: u64,
        read: Result<HashMap<IpAddr, (Vote, Option<String>)>, String>,
    ) {
        let mut registry = self.registry();
        let Registry {
            addresses,
            sources,
            sources_epoch,
            ..
        } = &mut *registry;
        if *sources_epoch != epoch {
            return;
        }
        let Some(source) = sources.get_mut(index) else {
            return;
        };
        let now = SystemTime::now();
        let error = read.as_ref().err().cloned();
        let was_readable = source.last_read.as_ref().is_none_or(|(_, e)| e.is_none());
        match (&error, was_readable) {
            (Some(e), true) => {
                warn!(source = %source.url, error = %e, "health: a source cannot be read; its views count as unknown")
            }
            (None, false) => {
                tracing::info!(source = %source.url, "health: a source can be read again")
            }
            _ => {}
        }
        source.last_read = Some((now, error.clone()));
        let url = source.url.clone();
        let mut changed = false;
        for (address, status) in addresses.iter_mut() {
            let view = match &read {
                Ok(views) => views.get(address).map_or(
                    View {
                        vote: Vote::Unknown,
                        why: Some("not in the source's results".into()),
                    },
                    |(vote, why)| View {
                        vote: *vote,
                        why: why.clone(),
                    },
                ),
                Err(e) => View {
                    vote: Vote::Unknown,
                    why: Some(e.clone()),
                },
            };
            if index >= status.views.len() {
                continue;
            }
            let before = status.is_up();
            status.views[index] = view.clone();
            let up = status.is_up();
            if up == before {
                continue;
            }
            let why = view
                .why
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            let reason = format!("{url} says {}{why}; {}", view.vote.name(), status.tally());
            status.transitions += 1;
            let state = if up { "up" } else { "down" };
            warn!(%address, state, reason = %reason, "health: address changed state");
            status.last_change = Some((now, reason));
            changed = true;
        }
        if changed {
            self.publish(&registry);
        }
    }

    /// The sources read besides this server's checks, and the quorum.
    pub(crate) fn sources(&self) -> (Vec<SourceStatus>, u32) {
        let registry = self.registry();
        (registry.sources.clone(), registry.quorum)
    }

    /// An operator's `force` for `address`, kept in the state file before it applies;
    /// whether answers count the address up afterwards.
    pub(crate) fn force(
        &self,
        address: IpAddr,
        force: Force,
        why: &str,
    ) -> Result<bool, ForceError> {
        let mut registry = self.registry();
        let Some(status) = registry.addresses.get(&address) else {
            return Err(ForceError::NotWatched(address));
        };
        let was_up = status.is_up();
        let now = SystemTime::now();
        let forced = match force {
            Force::Down | Force::Up => Some(Override {
                up: force == Force::Up,
                at: now,
                why: why.to_string(),
            }),
            Force::Clear => None,
        };
        if let Some(path) = &registry.state_file {
            let mut kept: BTreeMap<IpAddr, Override> = match overrides::load(path) {
                Ok(kept) => kept,
                // The file is the server's own: a damaged one is replaced by what it knows.
                Err(StateFileError::Syntax { .. } | StateFileError::State { .. }) => {
                    BTreeMap::new()
                }
                Err(e) => return Err(e.into()),
            };
            for (a, s) in &registry.addresses {
                match &s.forced {
                    Some(f) => kept.insert(*a, f.clone()),
                    None => kept.remove(a),
                };
            }
            match &forced {
                Some(f) => kept.insert(address, f.clone()),
                None => kept.remove(&address),
            };
            overrides::store(path, &kept)?;
        }
        let Some(status) = registry.addresses.get_mut(&address) else {
            return Err(ForceError::NotWatched(address));
        };
        status.forced = forced;
        let up = status.is_up();
        let state = if up { "up" } else { "down" };
        let word = match force {
            Force::Down => "forced down",
            Force::Up => "forced up",
            Force::Clear => "override cleared",
        };
        let reason = if why.is_empty() {
            format!("{word} by an operator")
        } else {
            format!("{word} by an operator: {why}")
        };
        warn!(%address, state, reason = %reason, "health: operator override");
        if up != was_up {
            status.transitions += 1;
            status.last_change = Some((now, reason));
            self.publish(&registry);
        }
        Ok(up)
    }

    /// Stores the table of `registry` and moves the generation.
    fn publish(&self, registry: &Registry) {
        self.table.store(Arc::new(registry.table()));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Every watched address's status, in address order.
    pub(crate) fn statuses(&self) -> Vec<(IpAddr, AddressStatus)> {
        self.registry()
            .addresses
            .iter()
            .map(|(a, s)| (*a, s.clone()))
            .collect()
    }
}

impl Registry {
    fn table(&self) -> HealthTable {
        let up: HashMap<IpAddr, bool> = self
            .addresses
            .iter()
            .map(|(a, s)| (*a, s.is_up()))
            .collect();
        HealthTable::new(
            up,
            self.ttl_cap,
            self.all_down.clone(),
            self.weights.clone(),
        )
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("active", &self.active)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::config::{Check, MonitorConfig};
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn tcp(addresses: &[&str], port: u16, interval_ms: u64) -> MonitorConfig {
        MonitorConfig {
            addresses: addresses.iter().map(|a| ip(a)).collect(),
            check: Check::Tcp,
            port,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(100),
            thresholds: Thresholds {
                down_after: 2,
                up_after: 2,
            },
            jitter_percent: 10,
        }
    }

    fn section(monitors: Vec<MonitorConfig>, state_file: Option<PathBuf>) -> Prepared {
        let config = HealthConfig {
            monitors,
            ttl_cap: 30,
            state_file,
            quorum: 1,
            ..HealthConfig::default()
        };
        Prepared::new(&config).expect("prepared")
    }

    /// The epoch the plan gives `address`'s task.
    fn epoch(health: &Health, address: &str) -> u64 {
        let plan = health.plans().borrow().clone();
        plan.watches
            .iter()
            .find(|w| w.address == ip(address))
            .map(|w| w.task.epoch)
            .expect("watched")
    }

    fn status(health: &Health, address: &str) -> Option<AddressStatus> {
        health
            .statuses()
            .into_iter()
            .find(|(a, _)| *a == ip(address))
            .map(|(_, s)| s)
    }

    #[test]
    fn a_reconfiguration_keeps_the_state_of_an_unchanged_check_and_resets_a_changed_one() {
        let health = Health::new(section(
            vec![tcp(&["192.0.2.1", "192.0.2.2"], 80, 300)],
            None,
        ));
        assert!(health.is_active());
        for _ in 0..2 {
            health.record(
                ip("192.0.2.1"),
                epoch(&health, "192.0.2.1"),
                Some("refused".into()),
            );
        }
        let table = health.table().expect("active");
        assert!(table.is_down(ip("192.0.2.1")));
        drop(table);
        let generation = health.generation();

        // Another interval and other thresholds, the same check: the state and history
        // stay, and the epoch too (the task restarted on the new schedule still counts).
        let mut slower = tcp(&["192.0.2.1", "192.0.2.2"], 80, 500);
        slower.thresholds.up_after = 3;
        let old_epoch = epoch(&health, "192.0.2.1");
        let changes = health.reconfigure(section(vec![slower], None));
        assert_eq!(
            changes,
            Reconfigured {
                added: 0,
                removed: 0,
                reset: 0,
                kept: 2
            }
        );
        assert_ne!(health.generation(), generation);
        let kept = status(&health, "192.0.2.1").expect("kept");
        assert_eq!((kept.is_up(), kept.checks, kept.failures), (false, 2, 2));
        assert_eq!(kept.thresholds.up_after, 3);
        assert_eq!(epoch(&health, "192.0.2.1"), old_epoch);

        // Another port is another check: up until checked, and results of the task
        // checking the old port are dropped.
        let changes = health.reconfigure(section(
            vec![tcp(&["192.0.2.2"], 80, 500), tcp(&["192.0.2.1"], 8080, 500)],
            None,
        ));
        assert_eq!((changes.reset, changes.kept), (1, 1));
        let reset = status(&health, "192.0.2.1").expect("watched");
        assert_eq!((reset.is_up(), reset.checks, reset.monitor), (true, 0, 1));
        assert!(!health.table().expect("active").is_down(ip("192.0.2.1")));
        health.record(ip("192.0.2.1"), old_epoch, Some("refused".into()));
        assert_eq!(status(&health, "192.0.2.1").expect("watched").checks, 0);
        health.record(ip("192.0.2.1"), epoch(&health, "192.0.2.1"), None);
        assert_eq!(status(&health, "192.0.2.1").expect("watched").checks, 1);

        // Removed: forgotten, and nothing is watched once the last monitor goes.
        let changes = health.reconfigure(section(vec![tcp(&["192.0.2.2"], 80, 500)], None));
        assert_eq!((changes.removed, changes.kept), (1, 1));
        assert!(status(&health, "192.0.2.1").is_none());
        health.reconfigure(section(Vec::new(), None));
        assert!(!health.is_active());
        assert!(health.table().is_none());
        assert!(health.plans().borrow().watches.is_empty());
    }

    #[test]
    fn an_address_added_by_a_reconfiguration_takes_its_override_from_the_state_file() {
        let dir =
            std::env::temp_dir().join(format!("geoline-health-reconf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("health-state.json");
        let health = Health::new(section(
            vec![tcp(&["192.0.2.1"], 80, 300)],
            Some(file.clone()),
        ));
        health
            .force(ip("192.0.2.1"), Force::Down, "maintenance")
            .expect("forced");
        let mut kept = BTreeMap::new();
        kept.insert(
            ip("192.0.2.7"),
            Override {
                up: false,
                at: SystemTime::now(),
                why: "relay moved".into(),
            },
        );
        kept.extend(overrides::load(&file).expect("load"));
        overrides::store(&file, &kept).expect("store");

        let changes = health.reconfigure(section(
            vec![tcp(&["192.0.2.1", "192.0.2.7"], 80, 300)],
            Some(file.clone()),
        ));
        assert_eq!((changes.added, changes.kept), (1, 1));
        let added = status(&health, "192.0.2.7").expect("watched");
        assert_eq!(
            added.forced.map(|f| (f.up, f.why)),
            Some((false, "relay moved".into()))
        );
        assert!(!status(&health, "192.0.2.1").expect("watched").is_up());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn weights_all_down_and_the_ttl_cap_follow_a_reconfiguration() {
        let health = Health::new(section(vec![tcp(&["192.0.2.1"], 80, 300)], None));
        let line = |i| crate::lines::LineId::new(i).expect("line");
        let config = HealthConfig {
            monitors: vec![tcp(&["192.0.2.1"], 80, 300)],
            ttl_cap: 5,
            all_down: BTreeMap::from([(line(0), vec![line(1)])]),
            weights: vec![weights::WeightGroup {
                weights: vec![(ip("192.0.2.1"), 3), (ip("192.0.2.2"), 1)],
                answers: 1,
            }],
            quorum: 1,
            ..HealthConfig::default()
        };
        health.reconfigure(Prepared::new(&config).expect("prepared"));
        let expected = HealthTable::new(
            HashMap::from([(ip("192.0.2.1"), true)]),
            5,
            config.all_down.clone(),
            weights::Weights::new(&config.weights),
        );
        assert_eq!(**health.table().expect("active"), expected);
        // Weights alone keep answers going through the table.
        let weights_only = HealthConfig {
            monitors: Vec::new(),
            ..config
        };
        health.reconfigure(Prepared::new(&weights_only).expect("prepared"));
        assert!(health.is_active());
        assert!(health.statuses().is_empty());
    }
}
