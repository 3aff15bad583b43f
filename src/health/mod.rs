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
pub(crate) mod report;
pub(crate) mod state;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::{ArcSwap, Guard};
use tracing::warn;

pub(crate) use config::HealthConfig;
pub(crate) use filter::HealthTable;
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
    /// The last state change and why.
    pub(crate) last_change: Option<(SystemTime, String)>,
    pub(crate) checks: u64,
    pub(crate) failures: u64,
    pub(crate) transitions: u64,
}

impl AddressStatus {
    /// Whether answers count it up.
    pub(crate) fn is_up(&self) -> bool {
        self.tracker.is_up()
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

    /// Every address of `config`'s monitors, up until checked.
    pub(crate) fn new(config: &HealthConfig) -> Health {
        let mut registry = Registry {
            addresses: BTreeMap::new(),
            ttl_cap: config.ttl_cap,
            all_down: config.all_down.clone(),
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
                        checks: 0,
                        failures: 0,
                        transitions: 0,
                    },
                );
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
        health
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
            status.transitions += 1;
            let state = if status.is_up() { "up" } else { "down" };
            warn!(%address, state, reason = %reason, "health: address changed state");
            status.last_change = Some((now, reason));
            self.publish(&registry);
        }
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
        HealthTable::new(up, self.ttl_cap, self.all_down.clone())
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
