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
//! With no monitor configured nothing runs, the table is empty, and the lookup is the
//! zone's own.

pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod filter;
pub(crate) mod monitor;
pub(crate) mod overrides;
pub(crate) mod report;
pub(crate) mod sources;
pub(crate) mod state;
pub(crate) mod weights;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::{ArcSwap, Guard};
use tracing::warn;

pub(crate) use config::HealthConfig;
pub(crate) use filter::HealthTable;
use overrides::{Force, Override, StateFileError};
use sources::Vote;
use state::{Thresholds, Tracker, Transition};

/// The health of the watched addresses, as answers and the admin listener read it.
pub(crate) struct Health {
    active: bool,
    /// Bumped after every change of `table`: the answer cache empties itself when it
    /// moves.
    generation: AtomicU64,
    table: ArcSwap<HealthTable>,
    registry: Mutex<Registry>,
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
            active: false,
            generation: AtomicU64::new(0),
            table: ArcSwap::from_pointee(HealthTable::default()),
            registry: Mutex::new(Registry::default()),
        }
    }

    /// Every address of `config`'s monitors, up until checked unless an operator's
    /// override kept in the state file says otherwise.
    pub(crate) fn new(config: &HealthConfig) -> Result<Health, StateFileError> {
        let mut registry = Registry {
            addresses: BTreeMap::new(),
            ttl_cap: config.ttl_cap,
            all_down: config.all_down.clone(),
            state_file: config.state_file.clone(),
            weights: weights::Weights::new(&config.weights),
            sources: config
                .sources
                .iter()
                .map(|s| SourceStatus {
                    url: s.url.clone(),
                    last_read: None,
                })
                .collect(),
            // At least one: no [health] section gives a zero that would count all down.
            quorum: config.quorum.max(1),
        };
        for (i, m) in config.monitors.iter().enumerate() {
            for &address in &m.addresses {
                registry.addresses.insert(
                    address,
                    AddressStatus {
                        monitor: i,
                        thresholds: m.thresholds,
                        tracker: Tracker::default(),
                        last_check: None,
                        last_change: None,
                        local_change: None,
                        views: vec![
                            View {
                                vote: Vote::Unknown,
                                why: None,
                            };
                            config.sources.len()
                        ],
                        quorum: config.quorum.max(1),
                        forced: None,
                        checks: 0,
                        failures: 0,
                        transitions: 0,
                    },
                );
            }
        }
        if let Some(path) = &config.state_file {
            for (address, forced) in overrides::load(path)? {
                match registry.addresses.get_mut(&address) {
                    Some(status) => status.forced = Some(forced),
                    // Kept in the file: the monitor may come back with the next change.
                    None => {
                        warn!(%address, file = %path.display(), "health: an override names an address no monitor watches; ignored")
                    }
                }
            }
        }
        let health = Health {
            active: config.is_active(),
            generation: AtomicU64::new(0),
            table: ArcSwap::from_pointee(HealthTable::default()),
            registry: Mutex::new(registry),
        };
        let registry = health.registry();
        health.table.store(Arc::new(registry.table()));
        drop(registry);
        Ok(health)
    }

    /// Whether any address is watched.
    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    /// Moves whenever the table changes.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The table answers apply; `None` when nothing is watched.
    #[inline]
    pub(crate) fn table(&self) -> Option<Guard<Arc<HealthTable>>> {
        self.active.then(|| self.table.load())
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one check of `address`: `failure` is `None` when it passed.
    pub(crate) fn record(&self, address: IpAddr, failure: Option<String>) {
        let mut registry = self.registry();
        let Some(status) = registry.addresses.get_mut(&address) else {
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

    /// The views read from source `index` (its position in the configuration), or why
    /// it could not be read: then it counts as unknown for every address.
    pub(crate) fn apply_source(
        &self,
        index: usize,
        read: Result<HashMap<IpAddr, (Vote, Option<String>)>, String>,
    ) {
        let mut registry = self.registry();
        let Registry {
            addresses, sources, ..
        } = &mut *registry;
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
