//! The authoritative DNS server: queries in, per-line answers out, over UDP and TCP.
//!
//! [`query`] reads a query strictly, [`ecs`] the Client Subnet option, [`respond`] decides
//! the response from a snapshot of the zones and the line map, [`response`] writes it within
//! the requester's size. [`prepared`] keeps encoded answers per (line, name, type) so that
//! UDP answers the common query without deciding again. [`rrl`] limits the rate of UDP
//! responses per client network. [`udp`] and [`tcp`] only move bytes.
//!
//! This module does not load zones or databases and does not reload them: it reads whatever
//! [`DnsState`] holds when a query arrives, so a reload never blocks a query.

pub(crate) mod ecs;
pub(crate) mod mmsg;
pub(crate) mod prepared;
pub(crate) mod query;
pub(crate) mod respond;
pub(crate) mod response;
pub(crate) mod rrl;
pub(crate) mod tcp;
pub(crate) mod udp;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::RrlConfig;
use crate::lines::{Classifier, ClassifierHandle};
use crate::metrics::QueryMetrics;
use crate::zone::ZoneSet;
use prepared::{AnswerCache, QuickQuery};
use respond::{Decision, Outcome, Snapshot, Transport};
use rrl::{Action, Rrl, Subject};

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

    /// Decides the response to one query against the current snapshots.
    pub fn decide(&self, bytes: &[u8], source: IpAddr, transport: Transport) -> Option<Decision> {
        let zones = self.zones.load();
        let classifier = self.classifier.load();
        let snapshot = Snapshot {
            zones: &zones,
            lines: classifier.map(),
            max_udp_payload: self.max_udp_payload,
        };
        respond::respond(&snapshot, bytes, source, transport)
    }

    /// Answers one UDP query into `out`: from `cache` when the query has the common shape
    /// and a zone holds its name, else through [`DnsState::decide`], then through rate
    /// limiting. `None` means stay silent. `out` holds the response when it returns `Some`.
    pub fn answer_udp(
        &self,
        bytes: &[u8],
        source: IpAddr,
        cache: &mut AnswerCache,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        if let Some(query) = QuickQuery::parse(bytes) {
            let zones = self.zones.load();
            let classifier = self.classifier.load();
            cache.bind(&zones, &classifier);
            let answered = prepared::answer(
                &zones,
                &classifier,
                cache,
                (bytes, &query),
                source,
                self.max_udp_payload,
                out,
            );
            if let Some((outcome, wildcard)) = answered {
                return self.limit(source, outcome, wildcard.unwrap_or(query.name()), out);
            }
        }
        let decision = self.decide(bytes, source, Transport::Udp)?;
        let encoded = decision.response.encode(decision.size_limit, out);
        let outcome = decision.outcome(encoded);
        if self.rrl.is_none() {
            return Some(outcome);
        }
        let mut name = [0u8; 255];
        let name = match (&decision.wildcard, &decision.response.question) {
            (Some(wildcard), _) => rrl::wire_name(wildcard, &mut name),
            (None, Some(q)) => rrl::wire_name(&q.name, &mut name),
            (None, None) => &[],
        };
        self.limit(source, outcome, name, out)
    }

    /// Passes the response in `out` through rate limiting: as it is, slipped (rewritten
    /// truncated) or dropped (`None`). `name` is what an answer is counted by, in
    /// lower-cased wire form: the wildcard it was synthesized from, else the question's.
    fn limit(
        &self,
        source: IpAddr,
        mut outcome: Outcome,
        name: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        let Some(rrl) = &self.rrl else {
            return Some(outcome);
        };
        let subject = Subject {
            kind: outcome.kind,
            zone: outcome.zone.map(|(z, _)| z),
            name,
            qtype: outcome.qtype.map_or(0, u16::from),
        };
        match rrl.check(source, &subject, rrl::now_secs()) {
            Action::Send => Some(outcome),
            Action::Drop => None,
            Action::Slip => {
                outcome.truncated = true;
                rrl::slip(out).then_some(outcome)
            }
        }
    }
}
