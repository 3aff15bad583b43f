//! The running side of dynamic updates: journals, the one writer of the live zones, the
//! per-key rate limit, the counters and the status.
//!
//! An update is answered NOERROR only after its journal entry is on disk; the new zone is
//! then swapped into [`Live`](crate::live::Live) like a reload's, so prepared answers,
//! ECS scopes and rate limiting start over from the new snapshot. Updates, reloads of a
//! zone file (which replay the journal on top of the file) and flushes take one lock, so
//! none of them builds on a zone another is replacing. The lock is held across the
//! journal's `fdatasync`: one sync per update message, the updates of one process in
//! order.
//!
//! A configuration reload replaces the policy, the rate, the journals' settings and the list
//! of zones ([`Updates::reconfigure`]) under the same lock: an update in flight either
//! completes under the old policy before the reload, or is decided under the new one after
//! it (the grants are taken again under the lock) — never half of each. A zone kept across
//! the reload keeps its open journal; a zone added has its journal opened and replayed; a
//! removed zone's journal is closed and left on disk.
//!
//! This module does not decide what an update does ([`super::process`]) nor parse the
//! journal ([`super::journal`]).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;
use tracing::{info, warn};

use super::config::UpdateConfig;
use super::flush::{self, FlushError, Flushed};
use super::journal::{self, Journal, JournalError};
use super::message::{self, Unreadable};
use super::policy::{Grant, Policy};
use super::{ReplayError, process, replay};
use crate::exposition::Exposition;
use crate::lines::LineSet;
use crate::live::Swappable;
use crate::zone::config::ZoneConfig;
use crate::zone::{ZoneError, ZoneSet};

/// Dynamic updates of every zone of one configuration.
pub struct Updates {
    /// Who may change what. Read without the lock to refuse early; replaced, and read
    /// again for the decision, under `state`'s lock.
    policy: ArcSwap<Policy>,
    lines: LineSet,
    limiter: Limiter,
    /// The one writer: journals and what was last done, by zone index.
    state: Mutex<Writer>,
    counts: Mutex<BTreeMap<(String, String, &'static str), u64>>,
}

/// What the one writer holds: the journals' settings and each zone's journal, in the
/// order of the live zones.
struct Writer {
    journal_dir: Option<PathBuf>,
    zone_configs: Vec<ZoneConfig>,
    zones: Vec<ZoneState>,
}

impl Writer {
    /// The state of the zone whose origin is `origin`.
    fn zone(&self, origin: &Name) -> Option<&ZoneState> {
        self.zones.iter().find(|z| z.origin == *origin)
    }
}

struct ZoneState {
    /// The zone's origin, as loaded.
    origin: Name,
    journal: Journal,
    last: Option<LastUpdate>,
}

/// The last update a zone received, for `/status`.
#[derive(Debug, Clone)]
pub(crate) struct LastUpdate {
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// The key that signed it.
    pub key: String,
    /// The rcode it got, as the metrics name it.
    pub result: &'static str,
}

/// What `/status` shows of one zone's updates.
#[derive(Debug, Clone)]
pub(crate) struct ZoneUpdates {
    /// The zone's origin.
    pub zone: String,
    /// Whether some key may update it.
    pub writable: bool,
    /// Its journal file.
    pub journal: PathBuf,
    /// Entries in the journal (updates since the last flush).
    pub journal_entries: u64,
    /// The journal's size in bytes.
    pub journal_bytes: u64,
    /// The last update, if any since the server started.
    pub last: Option<LastUpdate>,
}

/// What an UPDATE message was answered, for the responder's counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answered {
    pub(crate) rcode: ResponseCode,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The index of the zone whose origin is `origin` (the zone section of an UPDATE).
fn zone_index(zones: &Swappable<ZoneSet>, origin: &Name) -> Option<usize> {
    zone_index_in(&zones.load(), origin)
}

/// [`zone_index`] in one snapshot.
fn zone_index_in(zones: &ZoneSet, origin: &Name) -> Option<usize> {
    zones.zones().iter().position(|z| z.origin() == origin)
}

/// The journal file of zone `index` of `zones`.
fn journal_path(dir: Option<&std::path::Path>, zones: &ZoneSet, index: usize) -> Option<PathBuf> {
    let zone = zones.zones().get(index)?;
    Some(journal::path_for(dir, zone.file(), zone.origin()))
}

/// `zones` (as loaded from their files) with each zone's journal applied, reading the
/// journals without changing them (`geoline check` and the first load of `serve`).
pub(crate) fn replay_all(
    config: &UpdateConfig,
    zones: ZoneSet,
    lines: &LineSet,
) -> Result<ZoneSet, ReplayError> {
    let mut out = zones.clone();
    for (index, zone) in zones.zones().iter().enumerate() {
        let path = journal::path_for(config.journal_dir.as_deref(), zone.file(), zone.origin());
        let contents = journal::read(&path, zone.origin())?;
        if contents.entries.is_empty() {
            continue;
        }
        let replayed = replay(zone, &contents.entries, lines, &path)?;
        out = out.with_zone(index, replayed);
    }
    Ok(out)
}

impl Updates {
    /// No grants and no journals: every update is REFUSED (a server built without the
    /// configuration's `[update]`, as tests and benches build one).
    pub fn disabled() -> Updates {
        Updates {
            policy: ArcSwap::from_pointee(Policy::default()),
            lines: LineSet::default_only(),
            limiter: Limiter::new(0),
            state: Mutex::new(Writer {
                journal_dir: None,
                zone_configs: Vec::new(),
                zones: Vec::new(),
            }),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Opens the journal of every zone of `zones` (already replayed by [`replay_all`]),
    /// cutting a torn tail off with a warning.
    pub(crate) fn open(
        config: &UpdateConfig,
        zone_configs: &[ZoneConfig],
        zones: &ZoneSet,
        lines: &LineSet,
    ) -> Result<Updates, JournalError> {
        let mut state = Vec::with_capacity(zones.zones().len());
        for zone in zones.zones() {
            let path = journal::path_for(config.journal_dir.as_deref(), zone.file(), zone.origin());
            let (journal, _) = Journal::open(&path, zone.origin())?;
            state.push(ZoneState {
                origin: zone.origin().clone(),
                journal,
                last: None,
            });
        }
        let policy = Policy::new(config.grants.clone());
        warn_unserved(&policy, zones);
        Ok(Updates {
            policy: ArcSwap::from_pointee(policy),
            lines: lines.clone(),
            limiter: Limiter::new(config.rate),
            state: Mutex::new(Writer {
                journal_dir: config.journal_dir.clone(),
                zone_configs: zone_configs.to_vec(),
                zones: state,
            }),
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// Replaces the policy, the rate and the journals' settings by `config`'s, and the
    /// zones by `loaded` (the files of `zone_configs`, just read), each with its journal
    /// replayed, in one step under the writer's lock: what an update decided before it is
    /// in the journals replayed here, what an update decides after it sees the new
    /// policy and zones. A zone kept (same origin) keeps its journal and its serial never
    /// goes back; an added zone's journal is opened; a removed zone's is closed, left on
    /// disk. Refused whole — nothing changed — when a journal cannot be opened or read,
    /// or would move (another `journal_dir`, or the zone file moved to another directory)
    /// away from the updates it holds.
    pub(crate) fn reconfigure(
        &self,
        zones: &Swappable<ZoneSet>,
        config: &UpdateConfig,
        zone_configs: &[ZoneConfig],
        loaded: ZoneSet,
    ) -> Result<(), ReconfigureError> {
        let mut writer = lock(&self.state);
        let current = zones.load_full();
        let mut journals = Vec::with_capacity(loaded.zones().len());
        let mut replayed = Vec::with_capacity(loaded.zones().len());
        for (i, zone) in loaded.zones().iter().enumerate() {
            let origin = zone.origin();
            let path = journal::path_for(config.journal_dir.as_deref(), zone.file(), origin);
            let running = writer.zones.iter().position(|z| z.origin == *origin);
            let kept = running.and_then(|i| writer.zones.get(i));
            let journal = match kept {
                Some(state) if state.journal.path() == path => None,
                _ => {
                    if let Some(state) = kept.filter(|s| s.journal.entries() > 0) {
                        // The updates must be there: the file moved (the old one gone) or
                        // copied (the new one starts with the old one's entries).
                        let new = journal::read(&path, origin)?;
                        let holds = match journal::read(state.journal.path(), origin) {
                            Ok(old) => new.entries.starts_with(&old.entries),
                            Err(_) => false,
                        } && new.entries.len() as u64 >= state.journal.entries();
                        if !holds {
                            return Err(ReconfigureError::JournalMoved {
                                zone: origin.to_string(),
                                from: state.journal.path().to_path_buf(),
                                to: path,
                                entries: state.journal.entries(),
                            });
                        }
                    }
                    Some(Journal::open(&path, origin)?.0)
                }
            };
            let before = current.zones().iter().find(|z| z.origin() == origin);
            let pulled = zone_configs.get(i).is_some_and(|c| c.secondary.is_some());
            if let (true, Some(kept)) = (pulled, before) {
                // A secondary zone's data is what it pulled from its primaries: kept.
                journals.push(journal);
                replayed.push(kept.clone());
                continue;
            }
            let contents = journal::read(&path, origin)?;
            let mut zone = replay(zone, &contents.entries, &self.lines, &path)?;
            if let Some(before) = before
                && super::apply::serial_newer(before.serial(), zone.serial())
            {
                zone = zone.with_serial(before.serial());
            }
            journals.push(journal);
            replayed.push(zone);
        }
        // Nothing can fail from here on.
        let mut states = Vec::with_capacity(journals.len());
        for (zone, journal) in replayed.iter().zip(journals) {
            let kept = writer
                .zones
                .iter()
                .position(|s| s.origin == *zone.origin())
                .map(|i| writer.zones.swap_remove(i));
            states.push(match (kept, journal) {
                (Some(state), None) => state,
                (kept, Some(journal)) => ZoneState {
                    origin: zone.origin().clone(),
                    journal,
                    last: kept.and_then(|s| s.last),
                },
                (None, None) => continue,
            });
        }
        for removed in &writer.zones {
            info!(zone = %removed.origin, journal = %removed.journal.path().display(), "zone no longer served; its journal is closed and kept");
        }
        let policy = Policy::new(config.grants.clone());
        warn_unserved(&policy, &loaded);
        *writer = Writer {
            journal_dir: config.journal_dir.clone(),
            zone_configs: zone_configs.to_vec(),
            zones: states,
        };
        self.policy.store(std::sync::Arc::new(policy));
        self.limiter.set_rate(config.rate);
        // A zone removed leaves `/metrics` (`-`: updates of no zone served).
        let served: Vec<String> = replayed
            .iter()
            .map(|z| z.origin().to_lowercase().to_string())
            .collect();
        lock(&self.counts).retain(|(zone, _, _), _| zone == "-" || served.contains(zone));
        zones.store(current.with_zones(replayed));
        Ok(())
    }

    /// Answers one UPDATE `message` signed by `key` (none: unsigned) into `out`, changing
    /// `zones` when it succeeds. `None`: send nothing (not a request).
    pub(crate) fn answer(
        &self,
        zones: &Swappable<ZoneSet>,
        message: &[u8],
        key: Option<&Name>,
        out: &mut Vec<u8>,
    ) -> Option<Answered> {
        match message::read(message) {
            Err(Unreadable::Drop) => None,
            Err(Unreadable::FormErr(id)) => {
                self.count("-", key, "formerr");
                self.respond(id, None, ResponseCode::FormErr, false, out)
            }
            Ok(request) => {
                let (zone, rcode, result) = self.decide(zones, &request, key);
                self.count(&zone, key, result);
                self.respond(request.id, Some(&request.zone), rcode, request.edns, out)
            }
        }
    }

    fn respond(
        &self,
        id: u16,
        zone: Option<&Name>,
        rcode: ResponseCode,
        edns: bool,
        out: &mut Vec<u8>,
    ) -> Option<Answered> {
        let bytes = message::response(id, zone, rcode, edns)?;
        out.clear();
        out.extend_from_slice(&bytes);
        Some(Answered { rcode })
    }

    /// The zone's name for the counters (`-`: not a zone served), the rcode, and the
    /// result the counters say.
    fn decide(
        &self,
        zones: &Swappable<ZoneSet>,
        request: &message::Request,
        key: Option<&Name>,
    ) -> (String, ResponseCode, &'static str) {
        let (zone, rcode) = match self.decide_rcode(zones, request, key) {
            Ok((zone, rcode)) => (zone, rcode),
            Err(zone) => return (zone, ResponseCode::Refused, "ratelimited"),
        };
        (zone, rcode, result_label(rcode))
    }

    /// As [`Updates::decide`]; `Err` with the zone's name when the key is over its rate.
    fn decide_rcode(
        &self,
        zones: &Swappable<ZoneSet>,
        request: &message::Request,
        key: Option<&Name>,
    ) -> Result<(String, ResponseCode), String> {
        if zone_index(zones, &request.zone).is_none() {
            return Ok(("-".into(), ResponseCode::NotAuth));
        }
        let zone_name = request.zone.to_lowercase().to_string();
        if self.is_secondary(zones, &request.zone) {
            // Its data comes from its primaries: REFUSED, as BIND answers a secondary
            // zone without update forwarding.
            return Ok((zone_name, ResponseCode::Refused));
        }
        let Some(key) = key else {
            return Ok((zone_name, ResponseCode::Refused));
        };
        let origin = request.zone.to_lowercase();
        // Refused at once without grants; the decision is taken again under the lock.
        if self.policy.load().grants(key, &origin).next().is_none() {
            return Ok((zone_name, ResponseCode::Refused));
        }
        if !self.limiter.admit(key) {
            return Err(zone_name);
        }
        Ok((zone_name, self.commit(zones, request, key, Grants::Policy)))
    }

    /// Applies an UPDATE message geoline wrote itself (the ACME DNS-01 challenge records,
    /// [`crate::acme`]) as `identity` with `grants`, through the same processing, journal
    /// and swap as a signed request's; the counters and `/status` name `identity`.
    pub(crate) fn apply_own(
        &self,
        zones: &Swappable<ZoneSet>,
        message: &[u8],
        identity: &Name,
        grants: &[Grant],
    ) -> ResponseCode {
        let Ok(request) = message::read(message) else {
            return ResponseCode::FormErr;
        };
        if zone_index(zones, &request.zone).is_none() {
            return ResponseCode::NotAuth;
        }
        if self.is_secondary(zones, &request.zone) {
            return ResponseCode::Refused;
        }
        let rcode = self.commit(zones, &request, identity, Grants::Own(grants));
        self.count(
            &request.zone.to_lowercase().to_string(),
            Some(identity),
            result_label(rcode),
        );
        rcode
    }

    /// Processes `request` on its zone for `key` with `grants`: journals and swaps in the
    /// new zone when it changes, and keeps the zone's last update for `/status`.
    fn commit(
        &self,
        zones: &Swappable<ZoneSet>,
        request: &message::Request,
        key: &Name,
        grants: Grants<'_>,
    ) -> ResponseCode {
        let mut state = lock(&self.state);
        // Under the lock: the zones and the policy as the last update or reload left them.
        let current = zones.load_full();
        let Some(index) = zone_index_in(&current, &request.zone) else {
            // Removed by a reload since the request arrived.
            return ResponseCode::NotAuth;
        };
        let zone = &current.zones()[index];
        let policy = self.policy.load();
        let origin = request.zone.to_lowercase();
        let grants: Vec<&Grant> = match grants {
            Grants::Policy => policy.grants(key, &origin).collect(),
            Grants::Own(own) => own.iter().collect(),
        };
        if grants.is_empty() {
            // Narrowed by a reload since the request arrived.
            return ResponseCode::Refused;
        }
        let at = now();
        let rcode = match process(zone, request, key, &grants, &self.lines, at) {
            Err(rcode) => rcode,
            Ok(None) => ResponseCode::NoError,
            Ok(Some(changed)) => match state.zones.get_mut(index) {
                None => ResponseCode::ServFail,
                Some(zone_state) => match zone_state.journal.append(&changed.entry) {
                    Ok(()) => {
                        info!(zone = %zone.origin(), key = %key, serial = changed.entry.serial, "updated");
                        zones.store(current.with_zone(index, changed.zone));
                        ResponseCode::NoError
                    }
                    Err(e) => {
                        warn!(zone = %zone.origin(), key = %key, error = %e, "update not journaled, so not applied");
                        ResponseCode::ServFail
                    }
                },
            },
        };
        if let Some(zone_state) = state.zones.get_mut(index) {
            zone_state.last = Some(LastUpdate {
                at,
                key: key.to_string(),
                result: result_label(rcode),
            });
        }
        rcode
    }

    /// Whether zone `index` is pulled from primaries (never updated here).
    /// Whether the zone `origin` is pulled from primaries (its data is theirs).
    fn is_secondary(&self, zones: &Swappable<ZoneSet>, origin: &Name) -> bool {
        let writer = lock(&self.state);
        zone_index(zones, origin)
            .and_then(|i| writer.zone_configs.get(i))
            .is_some_and(|c| c.secondary.is_some())
    }

    /// Swaps `zone` in for the zone `origin` (a secondary zone's new transfer, or its
    /// expiry), under the one writer, when it is still served (a reload may have removed
    /// it, or moved it in the list).
    pub(crate) fn replace_zone(
        &self,
        zones: &Swappable<ZoneSet>,
        origin: &Name,
        zone: crate::zone::Zone,
    ) {
        let _writer = lock(&self.state);
        let current = zones.load_full();
        if let Some(index) = zone_index_in(&current, origin) {
            zones.store(current.with_zone(index, zone));
        }
    }

    fn count(&self, zone: &str, key: Option<&Name>, result: &'static str) {
        let key = key.map_or_else(|| "-".to_string(), |k| k.to_string());
        *lock(&self.counts)
            .entry((zone.to_string(), key, result))
            .or_default() += 1;
    }

    /// Replaces zone `index` of `zones` by what `build` loads from the files, with the
    /// journal replayed on top; the serial never goes back (it stays where updates took it
    /// when the file's is older).
    pub(crate) fn reload_zone(
        &self,
        zones: &Swappable<ZoneSet>,
        index: usize,
        build: impl FnOnce(&ZoneSet) -> Result<ZoneSet, ZoneError>,
    ) -> Result<(), ReloadZoneError> {
        let writer = lock(&self.state);
        let current = zones.load_full();
        let before = current.zones().get(index).map(|z| z.serial());
        let next = build(&current)?;
        let Some(loaded) = next.zones().get(index) else {
            zones.store(next);
            return Ok(());
        };
        let path = journal_path(writer.journal_dir.as_deref(), &next, index).unwrap_or_default();
        let contents = journal::read(&path, loaded.origin()).map_err(ReplayError::from)?;
        let mut zone = replay(loaded, &contents.entries, &self.lines, &path)?;
        if let Some(before) = before
            && super::apply::serial_newer(before, zone.serial())
        {
            zone = zone.with_serial(before);
        }
        zones.store(next.with_zone(index, zone));
        Ok(())
    }

    /// Writes zone `origin` as it is served to its files and empties its journal.
    pub(crate) fn flush(
        &self,
        zones: &Swappable<ZoneSet>,
        origin: &Name,
    ) -> Result<Flushed, FlushError> {
        let mut writer = lock(&self.state);
        // Its fields borrowed apart: the zone's configuration and its journal.
        let state = &mut *writer;
        let current = zones.load_full();
        let index = current
            .zones()
            .iter()
            .position(|z| z.origin() == origin)
            .ok_or_else(|| FlushError::NoZone(origin.to_string()))?;
        let zone = &current.zones()[index];
        let config = state
            .zone_configs
            .get(index)
            .ok_or_else(|| FlushError::NoZone(origin.to_string()))?;
        let zone_state = state
            .zones
            .get_mut(index)
            .ok_or_else(|| FlushError::NoZone(origin.to_string()))?;
        let entries = zone_state.journal.entries();
        let mut flushed = flush::write(zone, config, &self.lines)?;
        zone_state.journal.compact()?;
        flushed.entries = entries;
        info!(zone = %origin, serial = zone.serial(), entries, "flushed to the zone file; journal emptied");
        Ok(flushed)
    }

    /// What `/status` shows of every zone, in configuration order.
    pub(crate) fn status(&self, zones: &ZoneSet) -> Vec<ZoneUpdates> {
        let state = lock(&self.state);
        let policy = self.policy.load();
        // By origin: `zones` may be a snapshot from before a reload changed the list.
        zones
            .zones()
            .iter()
            .filter_map(|zone| {
                let s = state.zone(zone.origin())?;
                Some(ZoneUpdates {
                    zone: zone.origin().to_string(),
                    writable: policy.has_writers(&zone.origin().to_lowercase()),
                    journal: s.journal.path().to_path_buf(),
                    journal_entries: s.journal.entries(),
                    journal_bytes: s.journal.len(),
                    last: s.last.clone(),
                })
            })
            .collect()
    }

    /// Writes the update families: updates by zone, key and result, and each journal's
    /// size and entries.
    pub(crate) fn render_metrics(&self, zones: &ZoneSet, out: &mut Exposition) {
        out.family(
            "geoline_dns_updates_total",
            "counter",
            "UPDATE messages answered, by zone (`-`: not a zone served), key (`-`: unsigned) and result (the rcode, or `ratelimited`)",
        );
        for ((zone, key, result), n) in lock(&self.counts).iter() {
            out.sample(
                "geoline_dns_updates_total",
                &[("zone", zone), ("key", key), ("result", result)],
                *n as f64,
            );
        }
        let status = self.status(zones);
        let gauges: [JournalGauge; 2] = [
            (
                "geoline_zone_journal_bytes",
                "Size of each zone's update journal",
                |s| s.journal_bytes,
            ),
            (
                "geoline_zone_journal_entries",
                "Updates in each zone's journal since it was last flushed to the zone file",
                |s| s.journal_entries,
            ),
        ];
        for (family, help, value) in gauges {
            out.family(family, "gauge", help);
            for s in &status {
                out.sample(family, &[("zone", &s.zone)], value(s) as f64);
            }
        }
    }
}

/// A per-zone journal gauge: its family, its help and its value.
type JournalGauge = (&'static str, &'static str, fn(&ZoneUpdates) -> u64);

fn result_label(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "noerror",
        ResponseCode::FormErr => "formerr",
        ResponseCode::ServFail => "servfail",
        ResponseCode::NXDomain => "nxdomain",
        ResponseCode::Refused => "refused",
        ResponseCode::YXDomain => "yxdomain",
        ResponseCode::YXRRSet => "yxrrset",
        ResponseCode::NXRRSet => "nxrrset",
        ResponseCode::NotAuth => "notauth",
        ResponseCode::NotZone => "notzone",
        _ => "other",
    }
}

/// Why a configuration reload's zones and `[update]` cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ReconfigureError {
    /// A journal cannot be opened or read, or does not replay.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A zone's journal would move away from the updates it holds.
    #[error(
        "zone {zone}: its journal would move from {from} ({entries} updates) to {to}, which does not hold them: move the file there first (or write the zone to its file with POST /zones/{zone}/flush before the change)",
        from = from.display(),
        to = to.display()
    )]
    JournalMoved {
        /// The zone's origin.
        zone: String,
        /// The journal in use.
        from: PathBuf,
        /// Where the new configuration puts it.
        to: PathBuf,
        /// The updates it holds.
        entries: u64,
    },
}

impl From<JournalError> for ReconfigureError {
    fn from(e: JournalError) -> ReconfigureError {
        ReconfigureError::Replay(e.into())
    }
}

/// Whose grants decide an update.
enum Grants<'a> {
    /// The configured policy's, for the key that signed the request.
    Policy,
    /// These, for an update geoline makes itself.
    Own(&'a [Grant]),
}

/// Warns of each grant naming a zone `zones` does not hold.
fn warn_unserved(policy: &Policy, zones: &ZoneSet) {
    for grant in policy.all() {
        for zone in &grant.zones {
            if !zones.zones().iter().any(|z| z.origin() == zone) {
                warn!(key = %grant.key, zone = %zone, "an update grant names a zone that is not served");
            }
        }
    }
}

/// Why a zone could not be reloaded with its journal.
#[derive(Debug, thiserror::Error)]
pub enum ReloadZoneError {
    /// The zone's files.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// Its journal.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// A token bucket per key: `rate` updates a second, bursts of as many.
struct Limiter {
    /// Updates a second; 0: no limit. A reload changes it.
    rate: AtomicU32,
    buckets: Mutex<HashMap<Name, (f64, Instant)>>,
}

impl Limiter {
    fn new(rate: u32) -> Limiter {
        Limiter {
            rate: AtomicU32::new(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A new rate; each key's bucket keeps its tokens (at most the new burst).
    fn set_rate(&self, rate: u32) {
        self.rate.store(rate, Ordering::Relaxed);
    }

    /// Whether `key` may send one more update now.
    fn admit(&self, key: &Name) -> bool {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return true;
        }
        let rate = f64::from(rate);
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let (tokens, last) = buckets.entry(key.clone()).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
