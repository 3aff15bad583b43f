//! The live data: what every listener reads and every reload replaces.
//!
//! This module owns the swappable snapshots of the running process: the zones and the
//! classifier (databases, CIDR lists and the compiled line map). Each sits behind one
//! [`Swappable`], with one way to read it and one way to replace it: a request takes a
//! snapshot when it arrives and keeps it to the end, and a reload swaps a new value in
//! whole, so readers never wait for a reload and never see half of one.
//!
//! It does not load or check anything ([`crate::server::load`] and [`crate::reload`] do),
//! and it exists whatever listeners are configured: the DNS server, the redirector, the
//! reloader and `/status` all read the same `Live`.

use std::fmt;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;

use crate::certs::Certificates;
use crate::dns::tsig::KeyRing;
use crate::health::Health;
use crate::lines::Classifier;
use crate::update::Updates;
use crate::zone::ZoneSet;

/// The current value of one kind of live data, replaced whole; a count of the stores
/// lets a task wait for the next one (zone transfers watch the zones so).
pub struct Swappable<T>(ArcSwap<T>, watch::Sender<u64>);

impl<T> Swappable<T> {
    pub(crate) fn new(value: T) -> Swappable<T> {
        Swappable(ArcSwap::from_pointee(value), watch::Sender::new(0))
    }

    /// A receiver that sees every later [`Swappable::store`] (several may be seen as one).
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.1.subscribe()
    }

    /// A snapshot for the duration of one request: cheap, never blocked by a reload.
    pub fn load(&self) -> Guard<Arc<T>> {
        self.0.load()
    }

    /// A snapshot to keep across awaits or for long work.
    pub fn load_full(&self) -> Arc<T> {
        self.0.load_full()
    }

    /// Replaces the value; snapshots taken before keep the old one.
    pub(crate) fn store(&self, value: impl Into<Arc<T>>) {
        self.0.store(value.into());
        self.1.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl<T: fmt::Debug> fmt::Debug for Swappable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Swappable").field(&*self.load()).finish()
    }
}

/// Everything a reload can replace while the listeners serve.
pub struct Live {
    /// Every configured zone, in configuration order.
    pub zones: Swappable<ZoneSet>,
    /// The line of a client address, with the databases it is read from.
    pub classifier: Swappable<Classifier>,
    /// What the redirector's TLS listeners serve (none without TLS listeners).
    pub(crate) certificates: Swappable<Certificates>,
    /// The TSIG keys signed requests are verified with (`[[key]]`; none until stored).
    pub keys: Swappable<KeyRing>,
    /// Dynamic updates: the one writer of `zones` besides reloads, which go through it
    /// too (a reloaded zone file gets its journal replayed).
    pub(crate) updates: Updates,
    /// The health of watched addresses: answers leave down ones out.
    pub(crate) health: Health,
    /// The certificates obtained by ACME: what `/status` and `/metrics` show of them.
    pub(crate) acme: crate::acme::AcmeStatus,
    /// The zones pulled from primaries (geoline as a secondary).
    pub(crate) secondaries: crate::xfr::secondary::Secondaries,
}

impl Live {
    /// The live data, starting from what was loaded, with no certificates.
    pub fn new(zones: ZoneSet, classifier: Classifier) -> Live {
        Live::with_certificates(zones, classifier, Certificates::default())
    }

    /// The live data, starting from what was loaded.
    pub(crate) fn with_certificates(
        zones: ZoneSet,
        classifier: Classifier,
        certificates: Certificates,
    ) -> Live {
        Live {
            zones: Swappable::new(zones),
            classifier: Swappable::new(classifier),
            certificates: Swappable::new(certificates),
            keys: Swappable::new(KeyRing::default()),
            updates: Updates::disabled(),
            health: Health::inactive(),
            acme: crate::acme::AcmeStatus::default(),
            secondaries: crate::xfr::secondary::Secondaries::default(),
        }
    }

    /// The live data with `updates` taking dynamic updates of its zones.
    pub(crate) fn with_updates(mut self, updates: Updates) -> Live {
        self.updates = updates;
        self
    }

    /// The live data with `secondaries` pulling its secondary zones.
    pub(crate) fn with_secondaries(
        mut self,
        secondaries: crate::xfr::secondary::Secondaries,
    ) -> Live {
        self.secondaries = secondaries;
        self
    }

    /// The live data with `health` deciding which watched addresses answers hold.
    pub(crate) fn with_health(mut self, health: Health) -> Live {
        self.health = health;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Swappable;

    #[test]
    fn a_store_leaves_snapshots_taken_before_it_alone() {
        let value = Swappable::new(String::from("first"));
        let held = value.load_full();
        let guard = value.load();
        value.store(String::from("second"));
        assert_eq!((held.as_str(), guard.as_str()), ("first", "first"));
        assert_eq!(value.load().as_str(), "second");
    }
}
