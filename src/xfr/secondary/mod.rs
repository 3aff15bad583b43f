//! geoline as a secondary: zones pulled from primaries (BIND, Knot, another geoline),
//! one view per line, each with the TSIG key that selects that line's view on the primary
//! (BIND's one-key-per-view convention, which a geoline primary follows too).
//!
//! Each secondary zone has one task ([`spawn`]), keyed by the zone's origin, not its place
//! in the list: a configuration reload ([`Secondaries::reconfigure`]) starts the task of a
//! zone it adds (its stored copy served at once when there is one, then a check), stops
//! the task of a zone it removes, and restarts the task of a zone whose `primaries`,
//! `primary_keys` or `store` changed, keeping the data it serves. The task checks the
//! primaries when it starts, then
//! every SOA refresh interval, at the retry interval after a failure, and at once when a
//! listed primary sends a NOTIFY with a newer serial ([`notify`]). A check is an IXFR
//! from the serial each line holds (an answer of the SOA alone says it is current,
//! RFC 1995 4), or an AXFR for a line without data; the primaries are tried in order and
//! the first that answers wins. What comes is checked as a zone file is, written to the
//! line's stored copy ([`store`]) and only then swapped in, all lines at once, through the
//! zones' one writer. A failed or refused transfer replaces nothing. When no check
//! succeeded for the SOA expire interval, the zone stops answering (SERVFAIL) until one
//! does. UPDATE is refused for these zones (REFUSED, as BIND answers without update
//! forwarding).
//!
//! After a check that took a transfer (and after the first check since start), the zone's
//! primary is asked for the digest of its line definitions ([`crate::xfr::chaos`]),
//! signed with the default line's key: the secondary classifies clients with its own
//! lines, and a primary whose lines differ is a warning, logged once per change and shown
//! on `/status` and in the series. A primary that is not geoline gives none: "unknown",
//! no warning.
//!
//! This module owns the schedule, the choice of what to pull, the status and the series.
//! It does not read the wire ([`client`], [`assemble`]) nor build views
//! ([`crate::zone::LineCopy`]).

pub(crate) mod assemble;
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod notify;
pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::history::newer;
use super::lock;
use crate::dns::tsig::Key;
use crate::exposition::Exposition;
use crate::lines::{Classifier, LineId, LineSet};
use crate::live::Live;
use crate::util::time::{format_rfc3339, unix_secs};
use crate::zone::config::ZoneConfig;
use crate::zone::{LineCopy, Zone, ZoneSet};
use assemble::Transferred;
use client::PrimaryLines;
use config::{Pull, SecondaryConfig};

/// The zone label of NOTIFYs that named no zone served (FORMERR, NOTAUTH).
const NO_ZONE: &str = "-";

/// The wait before trying again when the zone has no SOA to say (no data yet).
const RETRY_WITHOUT_SOA: Duration = Duration::from_secs(10);

/// The secondary zones of the running configuration, each with the task that pulls it.
#[derive(Default)]
pub(crate) struct Secondaries {
    /// By origin (zones read from files are not here).
    zones: Mutex<BTreeMap<Name, Pulling>>,
    /// Where the tasks run, once [`spawn`] started the first ones: a reload starts the
    /// tasks of the zones it adds there.
    runner: OnceLock<Runner>,
    /// NOTIFYs received, by (zone, result): the zone's origin as the NOTIFY named it,
    /// lower-cased, or [`NO_ZONE`].
    notifies: Mutex<BTreeMap<(String, &'static str), u64>>,
}

/// The runtime the tasks run on and the server's shutdown, which stops them all.
struct Runner {
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

/// One secondary zone and its task.
struct Pulling {
    zone: Arc<Secondary>,
    /// Stops this zone's task alone (a child of the server's shutdown).
    stop: CancellationToken,
    /// `None` until the task is started.
    task: Option<JoinHandle<()>>,
}

/// One secondary zone: its configuration, what wakes its task, what it did.
struct Secondary {
    origin: Name,
    config: SecondaryConfig,
    wake: tokio::sync::Notify,
    status: Mutex<Status>,
}

#[derive(Debug, Clone, Default)]
struct Status {
    /// By pull, in the configuration's order.
    pulls: Vec<PullStatus>,
    /// The next scheduled check, seconds since the epoch.
    next_check: Option<u64>,
    /// When the zone expires unless a check succeeds.
    expires_at: Option<u64>,
    expired: bool,
    /// What the primary last said of its line definitions; `None` until asked.
    lines: Option<LinesCheck>,
}

/// The primary's answer about its line definitions, and the warning given for it.
#[derive(Debug, Clone)]
struct LinesCheck {
    at: u64,
    primary: SocketAddr,
    /// The primary's digest, or why there is none (its rcode, or the error).
    theirs: Result<String, String>,
    /// The (ours, theirs) pair last warned about: a mismatch is logged once per change.
    warned: Option<(String, String)>,
}

/// How this server's line definitions compare with its primary's.
fn lines_state(ours: &str, theirs: Option<&str>) -> &'static str {
    match theirs {
        Some(theirs) if theirs == ours => "match",
        Some(_) => "mismatch",
        None => "unknown",
    }
}

#[derive(Debug, Clone, Default)]
struct PullStatus {
    last_transfer: Option<LastTransfer>,
    /// The last check that found the copy current.
    last_current: Option<u64>,
    last_error: Option<(u64, String)>,
    /// Checks by result: axfr, ixfr, ixfr_full (a whole zone for an IXFR), current, error.
    results: BTreeMap<&'static str, u64>,
    bytes: u64,
}

#[derive(Debug, Clone)]
struct LastTransfer {
    at: u64,
    kind: &'static str,
    serial: u32,
    bytes: usize,
    messages: usize,
    primary: SocketAddr,
}

/// What a series says of one line of one zone: (result label, or "" for none; value).
type LineSamples<'a> = dyn Fn(&Secondary, &Pull, &PullStatus) -> Vec<(&'static str, f64)> + 'a;

/// The SOA timers of a zone, as durations (at least a second each).
#[derive(Debug, Clone, Copy)]
struct Timers {
    refresh: Duration,
    retry: Duration,
    expire: Duration,
}

fn seconds(value: i32) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0).max(1))
}

/// The timers of `zone`'s SOA as `line` sees it.
fn timers(zone: &Zone, line: LineId) -> Option<Timers> {
    let soa = zone.line_rrset(line, zone.origin(), RecordType::SOA)?;
    match &soa.first()?.data {
        RData::SOA(soa) => Some(Timers {
            refresh: seconds(soa.refresh),
            retry: seconds(soa.retry),
            expire: seconds(soa.expire),
        }),
        _ => None,
    }
}

fn now() -> u64 {
    unix_secs(SystemTime::now())
}

/// What a check of one line found.
enum LineOutcome {
    Current,
    New(Box<NewCopy>),
}

struct NewCopy {
    copy: LineCopy,
    text: String,
    transfer: LastTransfer,
}

/// The origin and the secondary keys of `zone`, when it is pulled from primaries.
fn pulled(zone: &ZoneConfig) -> Option<(Name, SecondaryConfig)> {
    let config = zone.secondary.clone()?;
    let mut origin = Name::from_ascii(zone.origin.as_deref()?).ok()?;
    origin.set_fqdn(true);
    Some((origin, config))
}

/// The index and data of the zone `origin` in `zones`.
fn find<'a>(zones: &'a ZoneSet, origin: &Name) -> Option<(usize, &'a Zone)> {
    zones
        .zones()
        .iter()
        .enumerate()
        .find(|(_, z)| z.origin() == origin)
}

impl Secondary {
    fn new(origin: Name, config: SecondaryConfig) -> Secondary {
        Secondary {
            origin,
            status: Mutex::new(Status {
                pulls: vec![PullStatus::default(); config.pulls.len()],
                ..Status::default()
            }),
            config,
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl Secondaries {
    /// The secondary zones among `zones`; their tasks start with [`spawn`].
    pub(crate) fn new(zones: &[ZoneConfig]) -> Secondaries {
        let zones = zones
            .iter()
            .filter_map(pulled)
            .map(|(origin, config)| {
                let pulling = Pulling {
                    zone: Arc::new(Secondary::new(origin.clone(), config)),
                    stop: CancellationToken::new(),
                    task: None,
                };
                (origin, pulling)
            })
            .collect();
        Secondaries {
            zones: Mutex::new(zones),
            runner: OnceLock::new(),
            notifies: Mutex::new(BTreeMap::new()),
        }
    }

    /// The secondary zone `origin`, when it is one.
    fn zone(&self, origin: &Name) -> Option<Arc<Secondary>> {
        lock(&self.zones).get(origin).map(|p| p.zone.clone())
    }

    /// Every secondary zone, in the order of their origins.
    fn all(&self) -> Vec<Arc<Secondary>> {
        lock(&self.zones).values().map(|p| p.zone.clone()).collect()
    }

    /// Makes the secondary zones those of `zones` (a configuration reload's, whose data
    /// `live` serves already): the task of a zone removed stops, a zone added gets its
    /// task, and a zone whose `primaries`, `primary_keys` or `store` changed gets a new
    /// task (which starts with a check) and keeps what it serves. The NOTIFY counters of a
    /// zone no longer served (of files or pulled) go with it.
    pub(crate) fn reconfigure(&self, zones: &[ZoneConfig], live: &Arc<Live>) {
        let served: BTreeSet<String> = live
            .zones
            .load()
            .zones()
            .iter()
            .map(|z| z.origin().to_lowercase().to_string())
            .collect();
        lock(&self.notifies).retain(|(zone, _), _| zone == NO_ZONE || served.contains(zone));
        let wanted: BTreeMap<Name, SecondaryConfig> = zones.iter().filter_map(pulled).collect();
        let mut running = lock(&self.zones);
        running.retain(|origin, pulling| {
            let kept = wanted.get(origin) == Some(&pulling.zone.config);
            if !kept {
                pulling.stop.cancel();
                if wanted.contains_key(origin) {
                    info!(zone = %origin, "secondary zone's primaries changed: its task starts again with them, serving what it has meanwhile");
                } else {
                    info!(zone = %origin, "secondary zone removed: no longer pulled");
                }
            }
            kept
        });
        for (origin, config) in wanted {
            if running.contains_key(&origin) {
                continue;
            }
            let mut pulling = Pulling {
                zone: Arc::new(Secondary::new(origin.clone(), config)),
                stop: CancellationToken::new(),
                task: None,
            };
            if let Some(runner) = self.runner.get() {
                info!(zone = %origin, "secondary zone pulled from its primaries");
                self.start(runner, &mut pulling, live);
            }
            running.insert(origin, pulling);
        }
    }

    /// Starts `pulling`'s task on `runner`.
    fn start(&self, runner: &Runner, pulling: &mut Pulling, live: &Arc<Live>) {
        let stop = runner.shutdown.child_token();
        pulling.stop = stop.clone();
        let (live, zone) = (live.clone(), pulling.zone.clone());
        let lines = live.classifier.load().lines().clone();
        pulling.task = Some(
            runner
                .runtime
                .spawn(async move { zone.run(&live, &lines, &stop).await }),
        );
    }

    /// What `/status` shows of zone `origin` as a secondary (`None`: read from files).
    pub(crate) fn status_json(&self, origin: &Name, classifier: &Classifier) -> Option<Value> {
        let zone = self.zone(origin)?;
        let lines = classifier.lines();
        let status = lock(&zone.status).clone();
        let time = |t: Option<u64>| t.map(format_rfc3339);
        let pulls: Vec<Value> = zone
            .config
            .pulls
            .iter()
            .zip(&status.pulls)
            .map(|(pull, s)| {
                json!({
                    "line": lines.name(pull.line),
                    "key": pull.key.as_ref().map(Name::to_string),
                    "stored": pull.file.display().to_string(),
                    "last_transfer": s.last_transfer.as_ref().map(|t| json!({
                        "at": format_rfc3339(t.at),
                        "kind": t.kind,
                        "serial": t.serial,
                        "bytes": t.bytes,
                        "messages": t.messages,
                        "primary": t.primary.to_string(),
                    })),
                    "last_current": time(s.last_current),
                    "last_error": s.last_error.as_ref().map(|(at, e)| json!({
                        "at": format_rfc3339(*at),
                        "error": e,
                    })),
                })
            })
            .collect();
        Some(json!({
            "primaries": zone.config.primaries.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "pulls": pulls,
            "next_check": time(status.next_check),
            "expires_at": time(status.expires_at),
            "expired": status.expired,
            "lines": lines_json(status.lines.as_ref(), classifier),
        }))
    }

    /// Writes the secondary series into `out`; `serial(origin, line)` is the serial zone
    /// `origin` serves on `line`.
    pub(crate) fn render_metrics(
        &self,
        out: &mut Exposition,
        classifier: &Classifier,
        serial: impl Fn(&Name, LineId) -> Option<u32>,
    ) {
        let lines = classifier.lines();
        let all = self.all();
        let zones: Vec<(&Arc<Secondary>, Status)> =
            all.iter().map(|z| (z, lock(&z.status).clone())).collect();
        // Samples by zone and line, and by result when `values` names one.
        let by_line = |out: &mut Exposition, name: &str, values: &LineSamples<'_>| {
            for (zone, status) in &zones {
                let origin = zone.origin.to_string();
                for (pull, s) in zone.config.pulls.iter().zip(&status.pulls) {
                    for (result, v) in values(zone, pull, s) {
                        let mut labels =
                            vec![("zone", origin.as_str()), ("line", lines.name(pull.line))];
                        if !result.is_empty() {
                            labels.push(("result", result));
                        }
                        out.sample(name, &labels, v);
                    }
                }
            }
        };
        let each =
            |out: &mut Exposition,
             name: &str,
             value: &dyn Fn(&Secondary, &Pull, &PullStatus) -> Option<f64>| {
                by_line(out, name, &|zone, pull, s| {
                    value(zone, pull, s).map(|v| ("", v)).into_iter().collect()
                });
            };
        out.family(
            "geoline_secondary_serial",
            "gauge",
            "The SOA serial a secondary zone serves on each line it pulls.",
        );
        each(out, "geoline_secondary_serial", &|zone, pull, _| {
            serial(&zone.origin, pull.line).map(f64::from)
        });
        out.family(
            "geoline_secondary_checks_total",
            "counter",
            "Checks of a secondary zone's line with its primaries, by result: axfr, ixfr, ixfr_full (a whole zone answered an IXFR), current (nothing new), error (no primary gave a usable answer).",
        );
        by_line(out, "geoline_secondary_checks_total", &|_, _, s| {
            s.results.iter().map(|(r, n)| (*r, *n as f64)).collect()
        });
        out.family(
            "geoline_secondary_transfer_bytes_total",
            "counter",
            "Bytes of transfer answers taken for a secondary zone's line.",
        );
        each(out, "geoline_secondary_transfer_bytes_total", &|_, _, s| {
            Some(s.bytes as f64)
        });
        out.family(
            "geoline_secondary_last_transfer_timestamp_seconds",
            "gauge",
            "When a secondary zone's line last took a transfer.",
        );
        each(
            out,
            "geoline_secondary_last_transfer_timestamp_seconds",
            &|_, _, s| s.last_transfer.as_ref().map(|t| t.at as f64),
        );
        out.family(
            "geoline_secondary_last_error_timestamp_seconds",
            "gauge",
            "When a check of a secondary zone's line last failed.",
        );
        each(
            out,
            "geoline_secondary_last_error_timestamp_seconds",
            &|_, _, s| s.last_error.as_ref().map(|(at, _)| *at as f64),
        );
        out.family(
            "geoline_secondary_next_check_timestamp_seconds",
            "gauge",
            "When a secondary zone is next checked with its primaries (sooner on NOTIFY).",
        );
        out.family(
            "geoline_secondary_expired",
            "gauge",
            "1 when a secondary zone expired (no check succeeded for its SOA expire interval): it answers SERVFAIL.",
        );
        for (zone, status) in &zones {
            let origin = zone.origin.to_string();
            if let Some(next) = status.next_check {
                out.sample(
                    "geoline_secondary_next_check_timestamp_seconds",
                    &[("zone", &origin)],
                    next as f64,
                );
            }
            out.sample(
                "geoline_secondary_expired",
                &[("zone", &origin)],
                if status.expired { 1.0 } else { 0.0 },
            );
        }
        out.family(
            "geoline_secondary_lines_digest",
            "gauge",
            "How a secondary zone's primary's line definitions compare with this server's (the digest of names, order and rules): 1 for the state it is in, match, mismatch (clients may get other lines than on the primary) or unknown (a primary that is not geoline, or not asked yet), 0 for the others.",
        );
        let ours = crate::lines::digest::digest(lines, classifier.rules());
        for (zone, status) in &zones {
            let origin = zone.origin.to_string();
            let theirs = status
                .lines
                .as_ref()
                .and_then(|c| c.theirs.as_ref().ok())
                .map(String::as_str);
            let state = lines_state(&ours, theirs);
            for s in ["match", "mismatch", "unknown"] {
                out.sample(
                    "geoline_secondary_lines_digest",
                    &[("zone", &origin), ("state", s)],
                    if s == state { 1.0 } else { 0.0 },
                );
            }
        }
        out.family(
            "geoline_notify_received_total",
            "counter",
            "NOTIFY messages received by zone and result: noerror_newer (a check follows), noerror_current (the serial is not newer), refused (not from a listed primary, or not signed with the zone's key), notauth (not a zone served), formerr.",
        );
        for ((zone, result), n) in lock(&self.notifies).iter() {
            out.sample(
                "geoline_notify_received_total",
                &[("zone", zone), ("result", result)],
                *n as f64,
            );
        }
    }
}

/// The rcode as `dig` prints it.
fn mnemonic(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR (no digest)".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// What `/status` shows of the comparison of line definitions with the primary.
fn lines_json(check: Option<&LinesCheck>, classifier: &Classifier) -> Value {
    let ours = crate::lines::digest::digest(classifier.lines(), classifier.rules());
    let theirs = check
        .and_then(|c| c.theirs.as_ref().ok())
        .map(String::as_str);
    json!({
        "digest": ours,
        "primary_digest": theirs.unwrap_or("unknown"),
        "state": lines_state(&ours, theirs),
        "primary": check.map(|c| c.primary.to_string()),
        "asked_at": check.map(|c| format_rfc3339(c.at)),
        "primary_answer": check.and_then(|c| c.theirs.as_ref().err()),
    })
}

/// Starts one task per secondary zone of `live`, and keeps the runtime and `shutdown` for
/// the tasks of the zones a reload adds. `tasks` gets one task that, at shutdown, waits
/// for every zone's task to end.
pub(crate) fn spawn(live: &Arc<Live>, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    let secondaries = &live.secondaries;
    let runner = secondaries.runner.get_or_init(|| Runner {
        runtime: tokio::runtime::Handle::current(),
        shutdown: shutdown.clone(),
    });
    for pulling in lock(&secondaries.zones).values_mut() {
        if pulling.task.is_none() {
            secondaries.start(runner, pulling, live);
        }
    }
    let (live, shutdown) = (live.clone(), shutdown.clone());
    tasks.spawn(async move {
        shutdown.cancelled().await;
        let running: Vec<JoinHandle<()>> = lock(&live.secondaries.zones)
            .values_mut()
            .filter_map(|p| p.task.take())
            .collect();
        for task in running {
            let _ = task.await;
        }
    });
}

impl Secondary {
    fn pull_status(&self, i: usize, f: impl FnOnce(&mut PullStatus)) {
        if let Some(s) = lock(&self.status).pulls.get_mut(i) {
            f(s);
        }
    }

    /// The zone's schedule: a check at once, then at the refresh interval (the retry
    /// interval after a failure, at once on a NOTIFY); expiry when no check succeeded for
    /// the expire interval.
    /// `stop` ends it (the server's shutdown, or a reload that removes or changes the zone),
    /// a check under way included.
    async fn run(&self, live: &Live, lines: &LineSet, stop: &CancellationToken) {
        let default = lines.default_line();
        let far = Duration::from_secs(365 * 86400);
        let mut expire_at = None;
        {
            // A copy from disk expires counting from when the primary last confirmed it.
            let zones = live.zones.load_full();
            if let Some((_, zone)) = find(&zones, &self.origin).filter(|(_, z)| z.serves())
                && let Some(t) = timers(zone, default)
            {
                let now = now();
                let confirmed = self
                    .config
                    .pulls
                    .iter()
                    .map(|p| store::confirmed_at(&p.file).unwrap_or(now))
                    .min()
                    .unwrap_or(now);
                let deadline = confirmed.saturating_add(t.expire.as_secs());
                lock(&self.status).expires_at = Some(deadline);
                expire_at =
                    Some(Instant::now() + Duration::from_secs(deadline.saturating_sub(now)));
            }
        }
        let mut next = Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(expire_at.unwrap_or_else(|| Instant::now() + far)), if expire_at.is_some() => {
                    expire_at = None;
                    self.expire(live);
                    continue;
                }
                _ = tokio::time::sleep_until(next) => {}
                _ = self.wake.notified() => {}
            }
            // A check is not finished after the zone was removed or its primaries changed:
            // what it would swap in is no longer wanted.
            let checked = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                checked = self.check(live, lines) => checked,
            };
            let zones = live.zones.load_full();
            let known = find(&zones, &self.origin).and_then(|(_, z)| timers(z, default));
            let wait = match (checked, known) {
                (true, Some(t)) => {
                    expire_at = Some(Instant::now() + t.expire);
                    lock(&self.status).expires_at = Some(now() + t.expire.as_secs());
                    t.refresh
                }
                (_, Some(t)) => t.retry,
                (_, None) => RETRY_WITHOUT_SOA,
            };
            next = Instant::now() + wait;
            lock(&self.status).next_check = Some(now() + wait.as_secs());
        }
    }

    /// Stops serving the zone: no check succeeded for the expire interval.
    fn expire(&self, live: &Live) {
        let zones = live.zones.load_full();
        let Some((_, zone)) = find(&zones, &self.origin) else {
            return;
        };
        if !zone.serves() {
            return;
        }
        warn!(zone = %self.origin, "secondary zone expired: no primary confirmed it for the SOA expire interval; answering SERVFAIL until one does");
        live.updates
            .replace_zone(&live.zones, &self.origin, zone.expired());
        lock(&self.status).expired = true;
    }

    /// Checks every line with the primaries and swaps in what changed; whether every
    /// line is confirmed.
    async fn check(&self, live: &Live, lines: &LineSet) -> bool {
        let zones = live.zones.load_full();
        let Some((_, current)) = find(&zones, &self.origin) else {
            return false;
        };
        let keys = live.keys.load_full();
        let mut copies: Vec<(LineId, LineCopy)> = Vec::with_capacity(self.config.pulls.len());
        let mut new: Vec<(&Pull, String)> = Vec::new();
        let mut confirmed: Vec<&Pull> = Vec::new();
        let mut all_ok = true;
        let mut complete = true;
        for (i, pull) in self.config.pulls.iter().enumerate() {
            let have = current.line_copy(pull.line);
            let outcome = match &pull.key {
                Some(name) => match keys.get(name) {
                    Some(key) => {
                        self.check_line(current, pull, Some(key), have.as_ref(), lines)
                            .await
                    }
                    None => Err(format!("key `{name}` is no longer configured")),
                },
                None => {
                    self.check_line(current, pull, None, have.as_ref(), lines)
                        .await
                }
            };
            match outcome {
                Ok(LineOutcome::Current) => {
                    self.pull_status(i, |s| {
                        *s.results.entry("current").or_default() += 1;
                        s.last_current = Some(now());
                    });
                    confirmed.push(pull);
                    match have {
                        Some(have) => copies.push((pull.line, have)),
                        None => complete = false,
                    }
                }
                Ok(LineOutcome::New(got)) => {
                    let NewCopy {
                        copy,
                        text,
                        transfer,
                    } = *got;
                    info!(zone = %self.origin, line = lines.name(pull.line), serial = transfer.serial, kind = transfer.kind, bytes = transfer.bytes, primary = %transfer.primary, "transferred");
                    self.pull_status(i, |s| {
                        *s.results.entry(transfer.kind).or_default() += 1;
                        s.bytes += transfer.bytes as u64;
                        s.last_transfer = Some(transfer);
                    });
                    copies.push((pull.line, copy));
                    new.push((pull, text));
                }
                Err(error) => {
                    warn!(zone = %self.origin, line = lines.name(pull.line), %error, "secondary check failed; keeping what is served");
                    self.pull_status(i, |s| {
                        *s.results.entry("error").or_default() += 1;
                        s.last_error = Some((now(), error));
                    });
                    all_ok = false;
                    match have {
                        Some(have) => copies.push((pull.line, have)),
                        None => complete = false,
                    }
                }
            }
        }
        // A serving zone takes what is new; one that does not serve (expired, or waiting
        // for its first transfer) serves again only when every line is confirmed.
        let swap = complete
            && if current.serves() {
                !new.is_empty()
            } else {
                all_ok
            };
        if swap {
            // On disk first: what is served is what a restart would serve.
            let writes = new.into_iter().map(|(pull, text)| {
                let path = pull.file.clone();
                tokio::task::spawn_blocking(move || {
                    store::write(&path, &text).map_err(|e| (path, e))
                })
            });
            // Each line's file at once: a sync each, in parallel rather than in turn.
            for written in futures_util::future::join_all(writes).await {
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err((path, e))) => {
                        warn!(zone = %self.origin, file = %path.display(), error = %e, "the copy cannot be stored; serving it all the same, a restart would serve the previous one");
                    }
                    Err(e) => warn!(zone = %self.origin, error = %e, "storing the copy failed"),
                }
            }
            let zone = Zone::from_copies(
                &self.origin,
                self.config.default_file(),
                lines.len(),
                lines.default_line(),
                &copies,
            );
            if let Some(zone) = zone {
                if !current.serves() {
                    info!(zone = %self.origin, serial = zone.serial(), "secondary zone serving");
                }
                live.updates.replace_zone(&live.zones, &self.origin, zone);
                lock(&self.status).expired = false;
            }
        }
        for pull in confirmed {
            if let Err(e) = store::confirm(&pull.file) {
                debug!(zone = %self.origin, file = %pull.file.display(), error = %e, "cannot mark the stored copy as confirmed");
            }
        }
        let never_asked = lock(&self.status).lines.is_none();
        if swap || (never_asked && all_ok) {
            self.check_lines(live).await;
        }
        all_ok && complete
    }

    /// Asks the primary the default line was last pulled from (else the first listed) for
    /// the digest of its line definitions, with the default line's key, and compares it
    /// with this server's: a mismatch is logged once per change.
    async fn check_lines(&self, live: &Live) {
        let default = self.config.pulls.first();
        let primary = {
            let status = lock(&self.status);
            status
                .pulls
                .first()
                .and_then(|p| p.last_transfer.as_ref())
                .map(|t| t.primary)
        };
        let Some(primary) = primary.or_else(|| self.config.primaries.first().copied()) else {
            return;
        };
        let keys = live.keys.load_full();
        let key = default
            .and_then(|p| p.key.as_ref())
            .and_then(|k| keys.get(k));
        let theirs = match client::lines_digest(primary, key).await {
            Ok(PrimaryLines::Digest(digest)) => Ok(digest),
            Ok(PrimaryLines::NotGiven(rcode)) => Err(mnemonic(rcode)),
            Err(e) => Err(e.to_string()),
        };
        let classifier = live.classifier.load_full();
        let ours = crate::lines::digest::digest(classifier.lines(), classifier.rules());
        let state = lines_state(&ours, theirs.as_ref().ok().map(String::as_str));
        info!(zone = %self.origin, %primary, state, "line definitions compared with the primary's");
        let mut status = lock(&self.status);
        let mut warned = status.lines.take().and_then(|c| c.warned);
        match &theirs {
            Ok(digest) if *digest == ours => warned = None,
            Ok(digest) => {
                let pair = (ours.clone(), digest.clone());
                if warned.as_ref() != Some(&pair) {
                    warn!(zone = %self.origin, %primary, ours = %ours, theirs = %digest, "the primary's line definitions differ from this server's: clients may be answered from other lines than the primary would answer them from");
                    warned = Some(pair);
                }
            }
            Err(why) => {
                debug!(zone = %self.origin, %primary, answer = %why, "the primary gives no digest of its line definitions (not geoline?)");
            }
        }
        status.lines = Some(LinesCheck {
            at: now(),
            primary,
            theirs,
            warned,
        });
    }

    /// Checks one line with each primary in turn until one answers.
    async fn check_line(
        &self,
        current: &Zone,
        pull: &Pull,
        key: Option<&Arc<Key>>,
        have: Option<&LineCopy>,
        lines: &LineSet,
    ) -> Result<LineOutcome, String> {
        let mut errors = Vec::with_capacity(self.config.primaries.len());
        for &primary in &self.config.primaries {
            match self
                .pull_from(primary, current, pull, key, have, lines)
                .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(e) => {
                    debug!(zone = %self.origin, %primary, error = %e, "primary did not give a usable answer");
                    errors.push(format!("{primary}: {e}"));
                }
            }
        }
        Err(errors.join("; "))
    }

    /// One transfer from `primary`: IXFR from what the line has (AXFR when it has
    /// nothing, or when the differences do not apply), checked into a new copy.
    async fn pull_from(
        &self,
        primary: SocketAddr,
        current: &Zone,
        pull: &Pull,
        key: Option<&Arc<Key>>,
        have: Option<&LineCopy>,
        lines: &LineSet,
    ) -> Result<LineOutcome, String> {
        let have_soa: Option<Record> = have.and_then(|_| {
            current
                .line_rrset(pull.line, &self.origin, RecordType::SOA)
                .and_then(|set| set.first().cloned())
        });
        let mut asked = have_soa.as_ref();
        loop {
            let received = client::pull(primary, &self.origin, key, asked)
                .await
                .map_err(|e| e.to_string())?;
            let have_serial = asked.and(have).map(LineCopy::serial);
            let (kind, records) = match received.transferred {
                Transferred::Current(serial) => match have_serial {
                    Some(ours) if newer(serial, ours) => {
                        // "Current" at a newer serial: ask for the whole zone.
                        asked = None;
                        continue;
                    }
                    Some(ours) => {
                        if serial != ours {
                            warn!(zone = %self.origin, line = lines.name(pull.line), ours, theirs = serial, %primary, "the primary's serial is older than the copy's; keeping the copy");
                        }
                        return Ok(LineOutcome::Current);
                    }
                    None => return Err("an IXFR answer to an AXFR request".into()),
                },
                Transferred::Full(records) => {
                    (if asked.is_some() { "ixfr_full" } else { "axfr" }, records)
                }
                Transferred::Incremental { soa, steps } => {
                    let Some(ours) = have_serial else {
                        return Err("an incremental answer to an AXFR request".into());
                    };
                    let mut records = Vec::new();
                    current.for_each_line_rrset(pull.line, |set| {
                        records.extend(set.iter().cloned());
                    });
                    match assemble::apply(records, ours, &soa, &steps) {
                        Ok(records) => ("ixfr", records),
                        Err(e) => {
                            warn!(zone = %self.origin, line = lines.name(pull.line), error = %e, %primary, "the differences do not apply to the copy; asking for the whole zone");
                            asked = None;
                            continue;
                        }
                    }
                }
            };
            let serial = match records.first().map(|r| &r.data) {
                Some(RData::SOA(soa)) => soa.serial,
                _ => return Err("a transfer without its SOA".into()),
            };
            if let Some(ours) = have.map(LineCopy::serial)
                && current.serves()
                && !newer(serial, ours)
            {
                if serial == ours {
                    return Ok(LineOutcome::Current);
                }
                return Err(format!(
                    "the primary's serial {serial} is older than the copy's {ours}"
                ));
            }
            let origin = self.origin.clone();
            let line = lines.name(pull.line).to_string();
            let path = pull.file.clone();
            let checked = tokio::task::spawn_blocking(move || {
                let text = store::render(&origin, &line, serial, &records);
                LineCopy::parse(&origin, &path, &text).map(|copy| (copy, text))
            })
            .await
            .map_err(|e| e.to_string())?;
            let (copy, text) =
                checked.map_err(|e| format!("the primary's data is not a valid zone: {e}"))?;
            return Ok(LineOutcome::New(Box::new(NewCopy {
                copy,
                text,
                transfer: LastTransfer {
                    at: now(),
                    kind,
                    serial,
                    bytes: received.bytes,
                    messages: received.messages,
                    primary,
                },
            })));
        }
    }
}
