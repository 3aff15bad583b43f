//! Zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995) and NOTIFY out (RFC 1996): how
//! secondaries (BIND, Knot, another geoline) replicate every line of a zone.
//!
//! A transfer request is a QUERY for AXFR or IXFR; it reaches [`Transfers::answer`] from
//! the one door, [`crate::dns::Responder::answer`], after TSIG has verified it (or found it
//! unsigned). The zone's `transfer` table ([`config`]) decides whether it is allowed and
//! which line's view it receives: the key it is signed with selects the line, as BIND's
//! one-key-per-view convention does; unsigned requests get the configured line, from
//! allowed networks only. Over TCP the answer is a [`Stream`] of messages ([`out`]), each
//! signed when the request was; IXFR is answered from the [`history`] of differences when
//! it holds the requester's serial, else with the whole zone (AXFR-style), and over UDP
//! with the current SOA alone (RFC 1995 2). A watcher ([`Transfers::spawn`]) sees every
//! new snapshot of the zones, records its differences and NOTIFYs the secondaries when
//! the serial moved ([`notify`]).
//!
//! Zones pulled from primaries (geoline as a secondary, and NOTIFY in) are [`secondary`].
//! What a primary tells its secondaries besides the zones, the digest of its line
//! definitions (a CHAOS-class TXT record), is [`chaos`].
//!
//! Everything here is keyed by the zone's origin, not its place in the list: a
//! configuration reload replaces the transfer tables ([`Transfers::reconfigure`]) and may
//! add, remove or reorder zones, and an ACL, a history or a NOTIFY loop never follows
//! another zone's place. A reload's new NOTIFY targets (a zone's, or an added zone's) are
//! sent the current serial at once; the retries to targets no longer listed stop.
//!
//! This module does not verify TSIG, move bytes (the TCP listener sends a stream under its
//! own limits: a secondary that stops reading is cut off at the write timeout) nor change
//! zones.

pub(crate) mod chaos;
pub(crate) mod config;
pub(crate) mod history;
pub(crate) mod measure;
pub(crate) mod notify;
pub(crate) mod out;
pub(crate) mod secondary;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::dns::outcome::{Answered, CountedName, Outcome, ResponseKind, Transport};
use crate::dns::tsig::ResponseSigner;
use crate::dns::wire::query::Query;
use crate::dns::wire::response::{EdnsReply, Response};
use crate::exposition::Exposition;
use crate::lines::{LineId, LineSet};
use crate::live::Live;
use crate::zone::{Rrset, Zone, ZoneSet};
use config::NotifyTarget;
pub(crate) use config::TransferConfig;
use history::History;
use notify::Notifier;
use out::Source;
pub(crate) use out::Stream;

/// Transfers and NOTIFYs of every zone of one configuration.
pub(crate) struct Transfers {
    /// The zones' `transfer` tables; a zone without one refuses transfers.
    tables: ArcSwap<Tables>,
    /// The NOTIFY targets a reload added, with their zone: told the current serial by the
    /// watcher ([`Transfers::spawn`]).
    added_targets: Mutex<Vec<(Name, NotifyTarget)>>,
    /// Wakes the watcher when `added_targets` has some.
    reconfigured: tokio::sync::Notify,
    lines: LineSet,
    history: Mutex<History>,
    notifier: Notifier,
    /// Transfer requests answered, by (zone or none, line, what was answered).
    counts: Mutex<BTreeMap<RequestKey, u64>>,
    /// Snapshots of the zones the watcher took into the history.
    observed: AtomicU64,
}

/// Each zone's `transfer` table, by origin.
type Tables = BTreeMap<Name, TransferConfig>;

/// The tables of `configs` (the `[[zone]]`s' `transfer`, in configuration order), each
/// under its zone's origin in `zones` (loaded from the same `[[zone]]`s).
fn tables(configs: Vec<Option<TransferConfig>>, zones: &ZoneSet) -> Tables {
    zones
        .zones()
        .iter()
        .zip(configs)
        .filter_map(|(zone, config)| Some((zone.origin().clone(), config?)))
        .collect()
}

/// Transfer requests counted by (zone origin, line, what was answered).
type RequestKey = (Option<Name>, Option<LineId>, &'static str);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; the data stays usable if it did.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a transfer request got: the first (or only) message is in `out`; `stream` holds
/// the rest of a multi-message TCP answer.
pub(crate) struct TransferAnswer {
    pub(crate) answered: Answered<'static>,
    pub(crate) stream: Option<Stream>,
}

/// The serial of the SOA an IXFR request carries in its authority section.
fn requested_serial(request: &[u8]) -> Option<u32> {
    let message = Message::from_vec(request).ok()?;
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

impl Transfers {
    /// The transfers of zones configured by `configs` (by zone index), over `zones` as
    /// loaded, with `lines` lines.
    pub(crate) fn new(
        configs: Vec<Option<TransferConfig>>,
        zones: &ZoneSet,
        lines: LineSet,
    ) -> Transfers {
        let tables = tables(configs, zones);
        // The history of the zones with a transfer table only: another zone's snapshot
        // is not kept alive for nothing.
        let mut history = History::new(zones);
        history.observe(zones, lines.len(), |zone| {
            tables.contains_key(zone.origin())
        });
        Transfers {
            tables: ArcSwap::from_pointee(tables),
            added_targets: Mutex::new(Vec::new()),
            reconfigured: tokio::sync::Notify::new(),
            lines,
            history: Mutex::new(history),
            notifier: Notifier::default(),
            counts: Mutex::new(BTreeMap::new()),
            observed: AtomicU64::new(0),
        }
    }

    /// Replaces the transfer tables by `configs` (by zone, in the order of `zones`, the
    /// zones as the reload loaded them). Targets no longer listed stop being retried; new
    /// ones are sent the current serial by the watcher.
    pub(crate) fn reconfigure(&self, configs: Vec<Option<TransferConfig>>, zones: &ZoneSet) {
        let next = tables(configs, zones);
        let previous = self.tables.swap(Arc::new(next.clone()));
        let listed = |tables: &Tables, origin: &Name, target: &NotifyTarget| {
            tables
                .get(origin)
                .is_some_and(|t| t.notify.contains(target))
        };
        self.notifier
            .retain(|origin, target| listed(&next, origin, target));
        // A zone removed leaves `/metrics`.
        let served = |origin: &Name| zones.zones().iter().any(|z| z.origin() == origin);
        lock(&self.counts).retain(|(zone, _, _), _| zone.as_ref().is_none_or(served));
        self.notifier.forget(served);
        let added: Vec<(Name, NotifyTarget)> = next
            .iter()
            .flat_map(|(origin, t)| t.notify.iter().map(move |n| (origin.clone(), n.clone())))
            .filter(|(origin, target)| !listed(previous.as_ref(), origin, target))
            .collect();
        let offered_before = !previous.is_empty();
        let any_added = !added.is_empty();
        lock(&self.added_targets).extend(added);
        if any_added || offered_before != self.offered() {
            // The watcher looks at snapshots only while some zone has a table.
            self.reconfigured.notify_one();
        }
    }

    /// Whether some zone has a `transfer` table: without any, transfer requests are
    /// answered as any query for a type not offered (REFUSED).
    pub(crate) fn offered(&self) -> bool {
        !self.tables.load().is_empty()
    }

    /// Whether some zone's `transfer` table allows the holder of `key` (none: unsigned)
    /// at `from` a transfer: who may read the line-definition digest ([`chaos`]).
    pub(crate) fn allows(&self, key: Option<&Name>, from: IpAddr) -> bool {
        self.tables
            .load()
            .values()
            .any(|table| table.line_for(key, from).is_ok())
    }

    fn count(&self, zone: Option<&Name>, line: Option<LineId>, what: &'static str) {
        *lock(&self.counts)
            .entry((zone.cloned(), line, what))
            .or_default() += 1;
    }

    /// Answers the AXFR or IXFR `query` (its bytes `request`, without TSIG) from `zones`,
    /// for the holder of `key` (none: unsigned) at `from`; `signer` signs the messages of
    /// a TCP stream (the responder signs a single message itself). `max_udp_payload` is
    /// advertised in OPT records.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer(
        &self,
        zones: &Arc<ZoneSet>,
        query: &Query,
        request: &[u8],
        key: Option<&Name>,
        signer: Option<&ResponseSigner>,
        from: IpAddr,
        via: Transport,
        max_udp_payload: u16,
        out: &mut Vec<u8>,
    ) -> TransferAnswer {
        let q = &query.question;
        let edns = query.edns.map(|e| EdnsReply {
            udp_payload: max_udp_payload,
            dnssec_ok: e.dnssec_ok,
            client_subnet: None,
        });
        let limit = match via {
            Transport::Tcp => usize::from(u16::MAX),
            Transport::Udp => usize::from(
                query
                    .edns
                    .map_or(512, |e| e.udp_payload.min(max_udp_payload)),
            ),
        } - signer.map_or(0, ResponseSigner::record_len);
        let single = |rcode: ResponseCode,
                      answers: Vec<hickory_proto::rr::Record>,
                      zone: Option<(usize, LineId)>,
                      out: &mut Vec<u8>| {
            let mut response = Response::empty(query.header, rcode, Some(q.clone()), edns);
            response.authoritative = rcode == ResponseCode::NoError;
            let n = answers.len();
            response.answers = answers;
            let encoded = response.encode(limit, out);
            TransferAnswer {
                answered: Answered {
                    outcome: Outcome {
                        zone,
                        qtype: Some(q.qtype),
                        rcode,
                        had_client_subnet: false,
                        truncated: encoded.truncated,
                        kind: ResponseKind::classify(rcode, true, n, zone.is_some()),
                    },
                    name: CountedName::None,
                },
                stream: None,
            }
        };
        let found = zones
            .zones()
            .iter()
            .enumerate()
            .find(|(_, z)| z.origin() == &q.name);
        let Some((index, zone)) = found else {
            self.count(None, None, "notauth");
            return single(ResponseCode::NotAuth, Vec::new(), None, out);
        };
        let origin = Some(zone.origin());
        if !zone.serves() {
            // A secondary zone without data, or expired: nothing to hand on.
            self.count(origin, None, "servfail");
            return single(ResponseCode::ServFail, Vec::new(), None, out);
        }
        if q.qtype == RecordType::AXFR && via == Transport::Udp {
            // RFC 5936 4.2: AXFR is TCP only; BIND says FORMERR too.
            self.count(origin, None, "formerr");
            return single(ResponseCode::FormErr, Vec::new(), None, out);
        }
        let allowed = self
            .tables
            .load()
            .get(zone.origin())
            .map(|config| config.line_for(key, from));
        let line = match allowed {
            Some(Ok(line)) => line,
            _ => {
                debug!(zone = %zone.origin(), client = %from, key = key.map(|k| k.to_string()).as_deref().unwrap_or("-"), "transfer refused");
                self.count(origin, None, "refused");
                return single(ResponseCode::Refused, Vec::new(), None, out);
            }
        };
        let Some(soa) = zone.line_rrset(line, zone.origin(), RecordType::SOA) else {
            return single(ResponseCode::ServFail, Vec::new(), None, out);
        };
        let at = Some((index, line));
        let current = soa.iter().cloned().collect::<Vec<_>>();
        let whole = || Source::Whole {
            zones: zones.clone(),
            index,
            line,
            soa: soa.clone(),
        };
        let source = if q.qtype == RecordType::IXFR {
            let Some(theirs) = requested_serial(request) else {
                self.count(origin, Some(line), "formerr");
                return single(ResponseCode::FormErr, Vec::new(), None, out);
            };
            if !history::newer(zone.serial(), theirs) {
                self.count(origin, Some(line), "ixfr_current");
                return single(ResponseCode::NoError, current, at, out);
            }
            if via == Transport::Udp {
                // RFC 1995 2: the current SOA tells the requester to ask over TCP.
                self.count(origin, Some(line), "ixfr_udp_soa");
                return single(ResponseCode::NoError, current, at, out);
            }
            match self.incremental(zone, line, theirs, &soa) {
                Some(chunks) => {
                    self.count(origin, Some(line), "ixfr");
                    Source::Rrsets(chunks)
                }
                None => {
                    self.count(origin, Some(line), "ixfr_full");
                    whole()
                }
            }
        } else {
            self.count(origin, Some(line), "axfr");
            whole()
        };
        info!(zone = %zone.origin(), line = self.lines.name(line), client = %from, qtype = %q.qtype, serial = zone.serial(), "transfer");
        let mut stream = Stream::new(
            query.header,
            q.clone(),
            edns,
            zone.origin(),
            source,
            signer.map(|s| s.stream(1)),
            signer.map_or(0, ResponseSigner::record_len),
        );
        stream.next(out);
        TransferAnswer {
            answered: Answered {
                outcome: Outcome {
                    zone: at,
                    qtype: Some(q.qtype),
                    rcode: ResponseCode::NoError,
                    had_client_subnet: false,
                    truncated: false,
                    kind: ResponseKind::Answer,
                },
                name: CountedName::None,
            },
            stream: Some(stream),
        }
    }

    /// The IXFR answer's records from serial `from` to `zone`'s, when the history holds
    /// every step: the current SOA, each step's old SOA and removals then new SOA and
    /// additions, the current SOA again.
    fn incremental(&self, zone: &Zone, line: LineId, from: u32, soa: &Rrset) -> Option<Vec<Rrset>> {
        let history = lock(&self.history);
        // The watcher records a snapshot in the history a moment after it is swapped in: a
        // request in between (a secondary's refresh racing an update) is answered up to the
        // newest version the history holds, not with the whole zone; the NOTIFY of the
        // newer one follows.
        let (steps, soa) = match history.steps(zone, line, from) {
            Some(steps) => (steps, soa.clone()),
            None => {
                let seen = history.current(zone.origin())?;
                if !history::newer(zone.serial(), seen.serial()) {
                    return None;
                }
                let steps = history.steps(seen, line, from)?;
                (
                    steps,
                    seen.line_rrset(line, seen.origin(), RecordType::SOA)?
                        .clone(),
                )
            }
        };
        let mut chunks = Vec::with_capacity(steps.len() * 4 + 2);
        chunks.push(soa.clone());
        for step in steps {
            chunks.push(step.from_soa);
            chunks.push(step.diff.removed.clone().into());
            chunks.push(step.to_soa);
            chunks.push(step.diff.added.clone().into());
        }
        chunks.push(soa);
        Some(chunks)
    }

    /// Starts the watcher: every new snapshot of `live`'s zones is recorded in the
    /// history, and the secondaries of each zone whose serial moved are sent a NOTIFY, as
    /// are the targets a reload added ([`Transfers::reconfigure`]).
    pub(crate) fn spawn(
        self: &Arc<Self>,
        live: Arc<Live>,
        shutdown: &CancellationToken,
        tasks: &mut JoinSet<()>,
    ) {
        let transfers = self.clone();
        let shutdown = shutdown.clone();
        let mut changed = live.zones.watch();
        tasks.spawn(async move {
            loop {
                // Without any transfer table there is nothing to transfer nor to NOTIFY:
                // the snapshots are not looked at (dynamic updates, thousands a second,
                // wake nothing here) and the history is empty. Tables added by a reload
                // wake the watcher, which takes in the snapshot stored since (if any) as
                // the start of the history.
                let offered = transfers.offered();
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = changed.changed(), if offered => if r.is_err() { break },
                    _ = transfers.reconfigured.notified() => {
                        transfers.notify_added(&live, &shutdown);
                        if !transfers.offered() {
                            *lock(&transfers.history) = History::default();
                        }
                        continue;
                    }
                }
                transfers.observed.fetch_add(1, Ordering::Relaxed);
                let zones = live.zones.load_full();
                let t = transfers.clone();
                let observed = zones.clone();
                let moved = tokio::task::spawn_blocking(move || {
                    let lines = t.lines.len();
                    let tables = t.tables.load();
                    let wanted = |zone: &Zone| tables.contains_key(zone.origin());
                    lock(&t.history).observe(&observed, lines, wanted)
                })
                .await
                .unwrap_or_default();
                let tables = transfers.tables.load_full();
                for index in moved {
                    let Some(zone) = zones.zones().get(index) else {
                        continue;
                    };
                    if let Some(config) = tables.get(zone.origin()) {
                        transfers.notify(zone, &config.notify, &live, &shutdown);
                    }
                }
            }
        });
    }

    /// Sends `zone`'s current serial to `targets`.
    fn notify(
        &self,
        zone: &Zone,
        targets: &[NotifyTarget],
        live: &Arc<Live>,
        shutdown: &CancellationToken,
    ) {
        let soa = zone
            .line_rrset(self.lines.default_line(), zone.origin(), RecordType::SOA)
            .and_then(|set| set.first().cloned());
        self.notifier
            .notify(zone.origin(), soa, targets, live, shutdown);
    }

    /// Sends the current serial to the targets a reload added.
    fn notify_added(&self, live: &Arc<Live>, shutdown: &CancellationToken) {
        let added = std::mem::take(&mut *lock(&self.added_targets));
        let zones = live.zones.load_full();
        for (origin, target) in added {
            if let Some(zone) = zones.zones().iter().find(|z| *z.origin() == origin) {
                self.notify(zone, std::slice::from_ref(&target), live, shutdown);
            }
        }
    }

    /// Writes the transfer and NOTIFY series into `out`.
    pub(crate) fn render_metrics(&self, out: &mut Exposition) {
        out.family(
            "geoline_xfr_requests_total",
            "counter",
            "Zone transfer requests (AXFR, IXFR) by zone, line and what they were answered: axfr, ixfr (from the history), ixfr_full (the whole zone: the history does not reach the requester's serial), ixfr_current (already up to date), ixfr_udp_soa (over UDP: the current SOA), refused, notauth, formerr.",
        );
        for ((zone, line, what), n) in lock(&self.counts).iter() {
            let zone = zone
                .as_ref()
                .map_or_else(|| "-".to_string(), Name::to_string);
            let line = line.map_or("-", |l| self.lines.name(l));
            out.sample(
                "geoline_xfr_requests_total",
                &[("zone", &zone), ("line", line), ("result", what)],
                *n as f64,
            );
        }
        out.family(
            "geoline_xfr_history_snapshots_total",
            "counter",
            "New snapshots of the zones (updates, reloads) compared with the last one for IXFR. Only while some zone has a transfer table.",
        );
        out.sample(
            "geoline_xfr_history_snapshots_total",
            &[],
            self.observed.load(Ordering::Relaxed) as f64,
        );
        self.notifier.render_metrics(out);
    }
}

/// Renders the transfer series at zero when there are no transfers (no DNS listener).
pub(crate) fn render_metrics(transfers: Option<&Transfers>, out: &mut Exposition) {
    match transfers {
        Some(t) => t.render_metrics(out),
        None => {
            out.family(
                "geoline_xfr_requests_total",
                "counter",
                "Zone transfer requests (AXFR, IXFR) by zone, line and what they were answered.",
            );
            out.family(
                "geoline_xfr_history_snapshots_total",
                "counter",
                "New snapshots of the zones (updates, reloads) compared with the last one for IXFR.",
            );
            out.sample("geoline_xfr_history_snapshots_total", &[], 0.0);
            notify::render_empty(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::lines::Classifier;

    fn zones(serial: u32) -> ZoneSet {
        let text = format!("$ORIGIN example.com.\n$TTL 60\n@ SOA ns h {serial} 2 3 4 5\n@ NS ns\n");
        let zone = Zone::from_text(Path::new("t.zone"), &text, None).expect("zone");
        ZoneSet::from_zones(vec![zone])
    }

    /// Waits (5 s at most) for `done`.
    async fn until(done: impl Fn() -> bool) -> bool {
        for _ in 0..500 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done()
    }

    #[tokio::test]
    async fn snapshots_are_looked_at_only_while_a_zone_has_a_transfer_table() {
        let lines = LineSet::default_only();
        let default = lines.default_line();
        let classifier = Classifier::new(lines.clone(), vec![], vec![]).expect("classifier");
        let live = Arc::new(Live::new(zones(1), classifier));
        let transfers = Arc::new(Transfers::new(vec![None], &live.zones.load(), lines));
        let origin = Name::from_ascii("example.com.").expect("name");
        assert!(lock(&transfers.history).current(&origin).is_none());
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        transfers.spawn(live.clone(), &shutdown, &mut tasks);

        // No transfer table: ten updates' snapshots wake nothing.
        for serial in 2..=11 {
            live.zones.store(zones(serial));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(transfers.observed.load(Ordering::Relaxed), 0);
        assert!(lock(&transfers.history).current(&origin).is_none());

        // A reload gives the zone a table: the watcher wakes and takes the snapshot stored
        // meanwhile as the start of the history, then follows every new one.
        let table = TransferConfig {
            keys: Vec::new(),
            networks: Vec::new(),
            unsigned_line: default,
            notify: Vec::new(),
        };
        transfers.reconfigure(vec![Some(table)], &live.zones.load());
        let serial = || lock(&transfers.history).current(&origin).map(Zone::serial);
        assert!(until(|| serial() == Some(11)).await, "{:?}", serial());
        live.zones.store(zones(12));
        assert!(until(|| serial() == Some(12)).await, "{:?}", serial());
        assert_eq!(transfers.observed.load(Ordering::Relaxed), 2);

        // The table gone again: the history is dropped and snapshots are not looked at.
        transfers.reconfigure(vec![None], &live.zones.load());
        assert!(until(|| serial().is_none()).await);
        live.zones.store(zones(13));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(transfers.observed.load(Ordering::Relaxed), 2);
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
    }
}
