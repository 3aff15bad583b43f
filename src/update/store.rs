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
//! This module does not decide what an update does ([`super::process`]) nor parse the
//! journal ([`super::journal`]).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    journal_dir: Option<PathBuf>,
    policy: Policy,
    lines: LineSet,
    zone_configs: Vec<ZoneConfig>,
    limiter: Limiter,
    /// The one writer: journals and what was last done, by zone index.
    state: Mutex<Vec<ZoneState>>,
    counts: Mutex<BTreeMap<(String, String, &'static str), u64>>,
}

struct ZoneState {
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
    zones
        .load()
        .zones()
        .iter()
        .position(|z| z.origin() == origin)
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
            journal_dir: None,
            policy: Policy::default(),
            lines: LineSet::default_only(),
            zone_configs: Vec::new(),
            limiter: Limiter::new(0),
            state: Mutex::new(Vec::new()),
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
                journal,
                last: None,
            });
        }
        let policy = Policy::new(config.grants.clone());
        for grant in policy.all() {
            for zone in &grant.zones {
                if !zones.zones().iter().any(|z| z.origin() == zone) {
                    warn!(key = %grant.key, zone = %zone, "an update grant names a zone that is not served");
                }
            }
        }
        Ok(Updates {
            journal_dir: config.journal_dir.clone(),
            policy,
            lines: lines.clone(),
            zone_configs: zone_configs.to_vec(),
            limiter: Limiter::new(config.rate),
            state: Mutex::new(state),
            counts: Mutex::new(BTreeMap::new()),
        })
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
        let Some(index) = zone_index(zones, &request.zone) else {
            return Ok(("-".into(), ResponseCode::NotAuth));
        };
        let zone_name = request.zone.to_lowercase().to_string();
        if self.is_secondary(index) {
            // Its data comes from its primaries: REFUSED, as BIND answers a secondary
            // zone without update forwarding.
            return Ok((zone_name, ResponseCode::Refused));
        }
        let Some(key) = key else {
            return Ok((zone_name, ResponseCode::Refused));
        };
        let origin = request.zone.to_lowercase();
        let grants: Vec<&Grant> = self.policy.grants(key, &origin).collect();
        if grants.is_empty() {
            return Ok((zone_name, ResponseCode::Refused));
        }
        if !self.limiter.admit(key) {
            return Err(zone_name);
        }
        Ok((zone_name, self.commit(zones, index, request, key, &grants)))
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
        let Some(index) = zone_index(zones, &request.zone) else {
            return ResponseCode::NotAuth;
        };
        if self.is_secondary(index) {
            return ResponseCode::Refused;
        }
        let grants: Vec<&Grant> = grants.iter().collect();
        let rcode = self.commit(zones, index, &request, identity, &grants);
        self.count(
            &request.zone.to_lowercase().to_string(),
            Some(identity),
            result_label(rcode),
        );
        rcode
    }

    /// Processes `request` on zone `index` for `key` with `grants`: journals and swaps in
    /// the new zone when it changes, and keeps the zone's last update for `/status`.
    fn commit(
        &self,
        zones: &Swappable<ZoneSet>,
        index: usize,
        request: &message::Request,
        key: &Name,
        grants: &[&Grant],
    ) -> ResponseCode {
        let mut state = lock(&self.state);
        // Under the lock: the zone as the last update or reload left it.
        let current = zones.load_full();
        let Some(zone) = current.zones().get(index) else {
            return ResponseCode::ServFail;
        };
        let at = now();
        let rcode = match process(zone, request, key, grants, &self.lines, at) {
            Err(rcode) => rcode,
            Ok(None) => ResponseCode::NoError,
            Ok(Some(changed)) => match state.get_mut(index) {
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
        if let Some(zone_state) = state.get_mut(index) {
            zone_state.last = Some(LastUpdate {
                at,
                key: key.to_string(),
                result: result_label(rcode),
            });
        }
        rcode
    }

    /// Whether zone `index` is pulled from primaries (never updated here).
    fn is_secondary(&self, index: usize) -> bool {
        self.zone_configs
            .get(index)
            .is_some_and(|c| c.secondary.is_some())
    }

    /// Swaps `zone` in at `index` (a secondary zone's new transfer, or its expiry), under
    /// the one writer, when the zone there is still `origin`'s.
    pub(crate) fn replace_zone(
        &self,
        zones: &Swappable<ZoneSet>,
        index: usize,
        origin: &Name,
        zone: crate::zone::Zone,
    ) {
        let _writer = lock(&self.state);
        let current = zones.load_full();
        if current
            .zones()
            .get(index)
            .is_some_and(|z| z.origin() == origin)
        {
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
        let _writer = lock(&self.state);
        let current = zones.load_full();
        let before = current.zones().get(index).map(|z| z.serial());
        let next = build(&current)?;
        let Some(loaded) = next.zones().get(index) else {
            zones.store(next);
            return Ok(());
        };
        let path = journal_path(self.journal_dir.as_deref(), &next, index).unwrap_or_default();
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
        let mut state = lock(&self.state);
        let current = zones.load_full();
        let index = current
            .zones()
            .iter()
            .position(|z| z.origin() == origin)
            .ok_or_else(|| FlushError::NoZone(origin.to_string()))?;
        let zone = &current.zones()[index];
        let config = self
            .zone_configs
            .get(index)
            .ok_or_else(|| FlushError::NoZone(origin.to_string()))?;
        let zone_state = state
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
        zones
            .zones()
            .iter()
            .zip(state.iter())
            .map(|(zone, s)| ZoneUpdates {
                zone: zone.origin().to_string(),
                writable: self.policy.has_writers(&zone.origin().to_lowercase()),
                journal: s.journal.path().to_path_buf(),
                journal_entries: s.journal.entries(),
                journal_bytes: s.journal.len(),
                last: s.last.clone(),
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
    rate: u32,
    buckets: Mutex<HashMap<Name, (f64, Instant)>>,
}

impl Limiter {
    fn new(rate: u32) -> Limiter {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` may send one more update now.
    fn admit(&self, key: &Name) -> bool {
        if self.rate == 0 {
            return true;
        }
        let rate = f64::from(self.rate);
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
