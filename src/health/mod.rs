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
    /// An operator's override: the state whatever the checks say.
    pub(crate) forced: Option<Override>,
    pub(crate) checks: u64,
    pub(crate) failures: u64,
    pub(crate) transitions: u64,
}

impl AddressStatus {
    /// Whether answers count it up: as forced, else as its checks say.
    pub(crate) fn is_up(&self) -> bool {
        self.forced.as_ref().map_or(self.tracker.is_up(), |f| f.up)
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
        if let Some(reason) = reason {
            if let Some(forced) = &status.forced {
                let state = if status.tracker.is_up() { "up" } else { "down" };
                let held = if forced.up { "up" } else { "down" };
                tracing::info!(%address, state, held, reason = %reason, "health: checks changed an address's state; an operator's override holds it");
                return;
            }
            status.transitions += 1;
            let state = if status.is_up() { "up" } else { "down" };
            warn!(%address, state, reason = %reason, "health: address changed state");
            status.last_change = Some((now, reason));
            self.publish(&registry);
        }
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
