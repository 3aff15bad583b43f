//! The authoritative DNS server: queries in, per-line answers out, over UDP and TCP.
//!
//! [`wire`] reads queries and writes responses (the header, OPT and Client Subnet rules
//! included), [`decide`] decides the response from a snapshot of the zones and the line
//! map, [`cache`] keeps encoded answers per (line, name, type) so that UDP answers the
//! common query without deciding again; [`outcome`] is what either path answered. [`rrl`] limits the rate of UDP
//! responses per client network. [`udp`] and [`tcp`] only move bytes.
//!
//! This module does not load zones or databases and does not reload them: it reads whatever
//! [`DnsState`] holds when a query arrives, so a reload never blocks a query.

pub(crate) mod cache;
pub(crate) mod decide;
pub(crate) mod outcome;
pub(crate) mod rrl;
// The crate's only `unsafe` code, each block with its SAFETY note.
#[allow(unsafe_code)]
pub(crate) mod sys;
pub(crate) mod tcp;
pub(crate) mod udp;
pub(crate) mod wire;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::RrlConfig;
use crate::lines::{Classifier, ClassifierHandle};
use crate::metrics::QueryMetrics;
use crate::zone::ZoneSet;
use cache::AnswerCache;
use decide::{Decided, Snapshot};
use outcome::{Outcome, Transport};
use rrl::Rrl;

/// What the listeners answer from: swapped whole on reload, read lock-free per query.
pub struct DnsState {
    pub zones: ArcSwap<ZoneSet>,
    pub classifier: Arc<ClassifierHandle>,
    pub max_udp_payload: u16,
    /// Bumped by the listeners for every response they send.
    pub metrics: Arc<QueryMetrics>,
    /// Response rate limiting of UDP answers, when configured.
    pub rrl: Option<Rrl>,
}

impl DnsState {
    /// The state for `zones` and `classifier`, with metrics sized for them, rate limiting
    /// UDP answers when `rrl` is given.
    pub fn new(
        zones: ZoneSet,
        classifier: Classifier,
        max_udp_payload: u16,
        rrl: Option<&RrlConfig>,
    ) -> DnsState {
        let metrics = QueryMetrics::new(zones.zones().len(), classifier.lines().len());
        DnsState {
            zones: ArcSwap::from_pointee(zones),
            classifier: Arc::new(ClassifierHandle::new(classifier)),
            max_udp_payload,
            metrics: Arc::new(metrics),
            rrl: rrl.map(Rrl::new),
        }
    }

    /// Runs `f` on one consistent snapshot of the zones and the classifier.
    fn with_snapshot<T>(&self, f: impl FnOnce(&Snapshot<'_>) -> T) -> T {
        let zones = self.zones.load();
        let classifier = self.classifier.load();
        f(&Snapshot {
            zones: &zones,
            classifier: &classifier,
            max_udp_payload: self.max_udp_payload,
        })
    }

    /// Decides the response to one query against the current snapshots.
    pub fn decide(&self, bytes: &[u8], source: IpAddr, transport: Transport) -> Option<Decided> {
        self.with_snapshot(|snapshot| decide::decide(snapshot, bytes, source, transport))
    }

    /// Answers one UDP query into `out`: from `cache` when the query has the common shape
    /// and a zone holds its name, else through the strict path, then through rate
    /// limiting. `None` means stay silent. `out` holds the response when it returns `Some`.
    pub fn answer_udp(
        &self,
        bytes: &[u8],
        source: IpAddr,
        cache: &mut AnswerCache,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        self.with_snapshot(|snapshot| {
            let decided;
            let answered = match cache.answer(snapshot, bytes, source, out) {
                Some(answered) => answered,
                None => {
                    decided = decide::decide(snapshot, bytes, source, Transport::Udp)?;
                    let encoded = decided.response.encode(decided.size_limit, out);
                    decided.answered(encoded)
                }
            };
            match &self.rrl {
                Some(rrl) => rrl.limit(source, &answered, out),
                None => Some(answered.outcome),
            }
        })
    }
}
