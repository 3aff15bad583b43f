//! The answer cache: answers prepared once per (zone, line, name, type) and reused, the
//! fast path inside [`super::Responder::answer`] for UDP.
//!
//! A zone's answer depends only on the line's view, the name (case aside) and the type;
//! everything else in a response — ID, flags, the question as spelled, the OPT record and
//! its Client Subnet scope, truncation — is cheap to add per query. So the first query
//! for a (line, name, type) runs the strict path's lookup ([`super::decide::zone_response`],
//! [`super::wire::response`]) and keeps the encoded sections in an [`AnswerCache`]; later
//! ones are a header, two copies and an OPT record, with no allocation. Whether the answer
//! varies by line (which decides the ECS scope) is computed once, with the entry.
//!
//! [`QuickQuery`] reads only the common shape of a query (one uncompressed question, at
//! most an OPT record, EDNS version 0, a valid Client Subnet); anything else, and every
//! name outside the zones, takes the strict path. The rules both paths apply — which
//! address decides the line, the ECS scope, the size limit — are one function each
//! ([`ecs::client`], [`ecs::scope`], [`size_limit`]), so both give the same answers.
//!
//! The cache belongs to one worker (no locks) and never answers from stale data. Each
//! entry carries the [`Stamp`] of the zone it was prepared from (which load of the zone's
//! files, which dynamic update since) and whether it read only its own RRset
//! ([`Dependence`]); a hit is checked against the zone's [`History`](crate::zone::History),
//! so an update to example.com leaves every other zone's entries alone, and of its own
//! zone's only those it may have changed go (negative answers, which hold the SOA and its
//! new serial, always do). A new classifier (a database reload), or a set of zones with
//! other origins, empties the whole cache. It has a fixed number of slots, and a new entry
//! replaces whatever shared its slot, so memory stays bounded whatever names clients ask
//! for.
//!
//! This module does not decide answers (the zone lookup does), read queries
//! ([`super::wire::query`]) or move bytes ([`super::udp`]).

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::decide::{Snapshot, size_limit, zone_response};
use super::outcome::{Answered, CountedName, Outcome, ResponseKind, Transport};
use super::wire::query::{Query, QuickQuery};
use super::wire::response::{EdnsReply, Fit, opt_len, write_header, write_opt};
use super::wire::{HEADER_LEN, MAX_NAME, ecs, write_name_lower};
use crate::health::{Health, HealthTable};
use crate::lines::{Classifier, LineId};
use crate::zone::{Dependence, Stamp, ZoneSet};

/// A zone's answer for one (line, name, type), encoded after a question of that name.
#[derive(Debug)]
pub struct Prepared {
    line: LineId,
    qtype: u16,
    zone: usize,
    /// The state of the zone the entry was prepared from, or last found valid in.
    stamp: Stamp,
    /// What of the zone the answer read: what an update must change to change it.
    read: Dependence,
    rcode: ResponseCode,
    authoritative: bool,
    /// What rate limiting and the metrics count the answer as: the same on every hit, so
    /// worked out once here.
    kind: ResponseKind,
    /// Whether some line gets a different answer: then the ECS scope is the line's.
    varies: bool,
    additional_is_optional: bool,
    /// The key's name (wire form, lower-cased), then the answer, authority and additional
    /// sections: one allocation, so a hit touches one block of memory. Name compression in
    /// the sections points into the question at offset 12, which every query for this name
    /// spells with the same label lengths.
    bytes: Box<[u8]>,
    name_len: usize,
    /// Where the additional section starts in the sections.
    additional_start: usize,
    /// Where each additional RRset ends in the sections, and the records up to there:
    /// where a response that cannot hold them all may cut ([`Fit::SomeAdditional`]).
    /// Empty, so not allocated, when there is no additional section.
    additional_rrsets: Box<[(usize, u16)]>,
    counts: [u16; 3],
    /// The wildcard the answer was synthesized from, in wire form, lower-cased: what rate
    /// limiting counts the answer by instead of the name.
    wildcard: Option<Box<[u8]>>,
}

impl Prepared {
    /// Runs the strict path for `query` on `line`: `None` when no zone holds the name or
    /// a record cannot be encoded (the strict path answers those itself).
    pub(crate) fn build(
        zones: &ZoneSet,
        health: Option<&HealthTable>,
        query: &Query,
        line: LineId,
    ) -> Option<Prepared> {
        let q = &query.question;
        let (zone_index, zone) = zones.find_answering(&q.name, q.qtype)?;
        // SERVFAIL for a zone that does not serve is the strict path's.
        if !zone.serves() {
            return None;
        }
        let (response, wildcard, chosen) = zone_response(zone, health, line, query, None);
        // A weighted answer differs per client subnet: the strict path chooses it.
        if chosen == crate::health::filter::Chosen::ForSubnet {
            return None;
        }
        let encoded = response.encode_sections()?;
        let own_rrset = response.rcode == ResponseCode::NoError
            && response.authoritative
            && wildcard.is_none()
            && !response.answers.is_empty()
            && response.answers.iter().all(|r| r.name == q.name)
            && response.authority.is_empty()
            && response.additional.is_empty();
        let body = encoded.bytes.get(encoded.question_end..)?;
        let question = encoded.bytes.get(HEADER_LEN..encoded.question_end)?;
        let name_len = question.len().checked_sub(4)?;
        let mut bytes = Vec::with_capacity(name_len + body.len());
        bytes.extend(question[..name_len].iter().map(u8::to_ascii_lowercase));
        bytes.extend_from_slice(body);
        Some(Prepared {
            line,
            qtype: q.qtype.into(),
            bytes: bytes.into(),
            name_len,
            zone: zone_index,
            stamp: zone.history().stamp(),
            read: if own_rrset {
                Dependence::OwnRrset
            } else {
                Dependence::Zone
            },
            rcode: response.rcode,
            authoritative: response.authoritative,
            kind: ResponseKind::classify(
                response.rcode,
                response.authoritative,
                usize::from(encoded.counts[0]),
                true,
            ),
            varies: zone.varies_by_line(&q.name, q.qtype),
            additional_is_optional: response.additional_is_optional,
            additional_start: encoded.additional_start - encoded.question_end,
            additional_rrsets: encoded
                .additional_rrsets
                .iter()
                .map(|&(end, records)| (end - encoded.question_end, records))
                .collect(),
            counts: encoded.counts,
            wildcard: wildcard.map(|w| write_name_lower(&w, &mut [0; MAX_NAME]).into()),
        })
    }

    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }

    fn sections(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }

    fn matches(&self, line: LineId, qtype: u16, name: &[u8]) -> bool {
        self.line == line && self.qtype == qtype && self.name() == name
    }

    /// Whether the entry is still the answer in `zones` (whose layout is the one it was
    /// prepared in): its zone has not changed since, or not in what it read. A valid
    /// entry takes the zone's stamp, so the next check is one comparison.
    fn still_valid(&mut self, zones: &ZoneSet) -> bool {
        let Some(zone) = zones.zones().get(self.zone) else {
            return false;
        };
        let history = zone.history();
        // The common case, inlined: the zone has not changed since.
        if history.stamp() == self.stamp {
            return true;
        }
        let valid = history.unchanged(
            self.stamp,
            self.name(),
            RecordType::from(self.qtype),
            self.read,
        );
        if valid {
            self.stamp = history.stamp();
        }
        valid
    }

    /// Writes the response to `query` into `out`, within the requester's size as
    /// [`super::wire::response::Response::encode`] would (one rule, [`Fit`]): optional
    /// additional RRsets are left out first, the last ones first, then everything but the
    /// question and OPT, with TC.
    pub fn write(
        &self,
        query: &QuickQuery<'_>,
        scope: u8,
        max_udp_payload: u16,
        out: &mut Vec<u8>,
    ) -> bool {
        let scope = ecs::scope(query.client_subnet(), || self.varies, scope);
        let edns = query
            .edns
            .map(|e| EdnsReply::answering(&e, max_udp_payload, scope));
        let limit = size_limit(
            Transport::Udp,
            query.edns.map(|e| e.udp_payload),
            max_udp_payload,
        );
        let fixed = HEADER_LEN + query.question.len() + edns.as_ref().map_or(0, opt_len);
        let all = self.sections();
        let fits = Fit::of(
            fixed + self.additional_start,
            Some(fixed + all.len()),
            self.additional_is_optional,
            limit,
        );
        let (sections, counts, truncated) = match fits {
            Fit::Whole => (all, self.counts, false),
            Fit::SomeAdditional => {
                let [an, ns, _] = self.counts;
                let room = limit.saturating_sub(fixed);
                let (end, ar) = self
                    .additional_rrsets
                    .iter()
                    .rev()
                    .find(|(end, _)| *end <= room)
                    .copied()
                    .unwrap_or((self.additional_start, 0));
                (&all[..end], [an, ns, ar], false)
            }
            Fit::Truncated => (&[][..], [0; 3], true),
        };
        out.clear();
        out.extend_from_slice(&[0; HEADER_LEN]);
        out.extend_from_slice(query.question);
        out.extend_from_slice(sections);
        let mut ar = counts[2];
        if let Some(edns) = &edns {
            ar += 1;
            write_opt(self.rcode, edns, out);
        }
        write_header(
            &query.header,
            self.authoritative,
            self.rcode,
            [1, counts[0], counts[1], ar],
            truncated,
            out,
        );
        truncated
    }
}

/// One worker's prepared answers, keyed to the snapshot they were prepared from.
pub struct AnswerCache {
    zones: Option<Arc<ZoneSet>>,
    classifier: Option<Arc<Classifier>>,
    /// The [`Health::generation`] the entries were prepared at.
    health_generation: u64,
    slots: Box<[Option<Box<Prepared>>]>,
}

impl AnswerCache {
    /// The default number of slots: far more than a zone's hot names, and at most a few
    /// megabytes when every slot is filled.
    pub const SLOTS: usize = 16 * 1024;

    /// The most slots [`AnswerCache::for_zones`] gives: an 8 MB table, and at most about
    /// 150 MB of answers when every slot is filled (a zone that large holds far more).
    pub const MAX_SLOTS: usize = 1024 * 1024;

    /// A cache sized for `zones`: two slots per name (so that few names share a slot),
    /// between [`AnswerCache::SLOTS`] and [`AnswerCache::MAX_SLOTS`], so that a large zone
    /// queried all over still mostly hits.
    pub fn for_zones(zones: &ZoneSet) -> AnswerCache {
        AnswerCache::new(
            zones
                .name_count()
                .saturating_mul(2)
                .clamp(Self::SLOTS, Self::MAX_SLOTS),
        )
    }

    /// A cache of `slots` entries (rounded up to a power of two).
    pub fn new(slots: usize) -> AnswerCache {
        let slots = slots.max(1).next_power_of_two();
        AnswerCache {
            zones: None,
            classifier: None,
            health_generation: 0,
            slots: (0..slots).map(|_| None).collect(),
        }
    }

    /// Makes the cache answer for this snapshot: a new classifier, or zones of another
    /// layout (other origins), drop every entry; zones whose data alone changed drop none
    /// here (each hit checks its own zone's history). The cache holds the snapshot's
    /// `Arc`s, so a freed snapshot's address can never be mistaken for the current one.
    pub fn bind(&mut self, zones: &Arc<ZoneSet>, classifier: &Arc<Classifier>) {
        fn same<T>(held: &Option<Arc<T>>, now: &Arc<T>) -> bool {
            held.as_ref().is_some_and(|h| Arc::ptr_eq(h, now))
        }
        let same_zones = same(&self.zones, zones);
        let same_classifier = same(&self.classifier, classifier);
        if same_zones && same_classifier {
            return;
        }
        let same_layout = self
            .zones
            .as_ref()
            .is_some_and(|held| held.layout() == zones.layout());
        if !(same_layout && same_classifier) {
            self.slots.iter_mut().for_each(|slot| *slot = None);
        }
        self.zones = Some(zones.clone());
        self.classifier = Some(classifier.clone());
    }

    /// Drops every entry when the health of an address changed since they were
    /// prepared: one atomic load per query, and none of the table's work. Loaded even
    /// when nothing is watched: a configuration reload that removes the last monitor
    /// moves the generation too.
    #[inline]
    fn follow_health(&mut self, health: &Health) {
        let now = health.generation();
        if now != self.health_generation {
            self.slots.iter_mut().for_each(|slot| *slot = None);
            self.health_generation = now;
        }
    }

    fn slot(&self, line: LineId, qtype: u16, name: &[u8]) -> usize {
        // A multiplicative hash over 8-byte words: names are short, and a collision only
        // costs a replaced entry, never a wrong answer (entries keep their whole key).
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = ((line.index() as u64) << 16 | u64::from(qtype)).wrapping_mul(K);
        for chunk in name.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K);
            h ^= h >> 29;
        }
        (h as usize) & (self.slots.len() - 1)
    }

    /// The entry for the key, built by `build` (and kept) when there is none or the one
    /// kept is no longer the answer in `zones` (the snapshot [`AnswerCache::bind`] bound).
    pub fn entry(
        &mut self,
        zones: &ZoneSet,
        line: LineId,
        qtype: u16,
        name: &[u8],
        build: impl FnOnce() -> Option<Prepared>,
    ) -> Option<&Prepared> {
        let i = self.slot(line, qtype, name);
        let hit = self.slots[i]
            .as_deref_mut()
            .is_some_and(|p| p.matches(line, qtype, name) && p.still_valid(zones));
        if !hit {
            let prepared = build()?;
            // The strict reader spells the key the same way, or the entry would be useless.
            if !prepared.matches(line, qtype, name) {
                return None;
            }
            self.slots[i] = Some(Box::new(prepared));
        }
        self.slots[i].as_deref()
    }

    /// Answers `bytes` into `out` from the entry for its (line, name, type), preparing the
    /// entry first if there is none. `None` when the strict path must answer: the query is
    /// not of the common shape ([`QuickQuery`]) or no zone holds its name.
    pub(crate) fn answer<'c>(
        &'c mut self,
        snapshot: &Snapshot<'_>,
        bytes: &[u8],
        source: IpAddr,
        out: &mut Vec<u8>,
    ) -> Option<Answered<'c>> {
        let query = QuickQuery::parse(bytes)?;
        self.bind(snapshot.zones, snapshot.classifier);
        self.follow_health(snapshot.health);
        let class = snapshot
            .classifier
            .map()
            .classify(ecs::client(query.client_subnet(), source));
        let entry = self.entry(
            snapshot.zones,
            class.line,
            query.qtype(),
            query.name(),
            || {
                let strict = Query::parse(bytes).ok()?;
                let health = snapshot.health.table();
                Prepared::build(
                    snapshot.zones,
                    health.as_deref().map(|t| &**t),
                    &strict,
                    class.line,
                )
            },
        )?;
        let truncated = entry.write(&query, class.scope, snapshot.max_udp_payload, out);
        let outcome = Outcome {
            zone: Some((entry.zone, class.line)),
            qtype: Some(RecordType::from(entry.qtype)),
            rcode: entry.rcode,
            had_client_subnet: query.client_subnet().is_some(),
            truncated,
            kind: entry.kind,
        };
        let name = CountedName::Wire(entry.wildcard.as_deref().unwrap_or(entry.name()));
        Some(Answered { outcome, name })
    }

    /// The number of filled slots.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// No slot is filled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::new(AnswerCache::SLOTS)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use hickory_proto::op::Message;

    use super::*;
    use crate::dns::Responder;
    use crate::dns::wire::tests::query as build;
    use crate::geoip::{GeoDb, fixtures};
    use crate::lines::{LineRule, LineSet};
    use crate::live::Live;
    use crate::zone::config::ZoneConfig;

    fn lines() -> LineSet {
        LineSet::new(["china"]).expect("one line")
    }

    fn example_zones() -> ZoneSet {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        let config = ZoneConfig {
            origin: None,
            file: dir.join("example.com.zone"),
            overlays: BTreeMap::from([(
                LineId::new(0).expect("a line id"),
                dir.join("example.com.china.zone"),
            )]),
            declared_at: None,
            transfer: None,
            secondary: None,
        };
        ZoneSet::load(&[config], &lines()).expect("zones load")
    }

    fn classifier() -> Classifier {
        let bytes = fixtures::geoip2_country_bytes(&[
            ("1.2.0.0/16", "CN", "AS"),
            ("8.0.0.0/8", "US", "NA"),
            ("2400:da00::/32", "CN", "AS"),
        ]);
        let db = GeoDb::from_bytes(Path::new("t.mmdb"), bytes, None).expect("fixture");
        let rule = LineRule {
            line: LineId::new(0).expect("a line id"),
            countries: vec![*b"CN"],
            continents: vec![],
            subdivisions: vec![],
            asns: vec![],
            cidrs: vec![],
        };
        Classifier::new(lines(), vec![rule], vec![Arc::new(db)]).expect("compiles")
    }

    fn state() -> Responder {
        Responder::new(
            Arc::new(Live::new(example_zones(), classifier())),
            1232,
            None,
        )
    }

    /// A query with an optional OPT record: (payload, TTL bits, options).
    fn query(name: &str, qtype: u16, opt: Option<(u16, u32, &[u8])>) -> Vec<u8> {
        build(0x1234, name, qtype, opt)
    }

    fn ecs(addr: [u8; 3]) -> Vec<u8> {
        let mut o = vec![0, 8, 0, 7, 0, 1, 24, 0];
        o.extend_from_slice(&addr);
        o
    }

    /// The strict path's response: no cache to answer from.
    fn strict(state: &Responder, bytes: &[u8], source: IpAddr) -> Vec<u8> {
        let mut out = Vec::new();
        state
            .answer(bytes, source, Transport::Udp, None, &mut out)
            .expect("answered");
        out
    }

    const SOURCE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(8, 8, 4, 4));

    #[test]
    fn prepared_answers_are_the_strict_answers() {
        let state = state();
        let mut cache = AnswerCache::new(64);
        let cn = ecs([1, 2, 4]);
        let us = ecs([8, 8, 8]);
        let zero = [0, 8, 0, 4, 0, 1, 0, 0];
        let opts: [Option<(u16, u32, &[u8])>; 6] = [
            None,
            Some((1232, 0, &cn)),
            Some((4096, 0x8000, &us)),
            Some((512, 0, &zero)),
            Some((100, 0, &[])),
            Some((1232, 0, &[0xfd, 0xe9, 0, 2, 1, 2])),
        ];
        let questions = [
            ("www.example.com", 1),
            ("www.example.com", 28),
            ("api.example.com", 1),
            ("shop.example.com", 1),
            ("example.com", 15),
            ("example.com", 2),
            ("example.com", 255),
            ("nx.example.com", 1),
            ("x.apps.example.com", 1),
            ("host.sub.example.com", 1),
            ("sub.example.com", 43),
            ("cdn.example.com", 1),
            ("mail.example.com", 16),
        ];
        for (name, qtype) in questions {
            for opt in opts {
                let bytes = query(name, qtype, opt);
                let expected = strict(&state, &bytes, SOURCE);
                // The first answer prepares the entry, the second comes from it.
                for round in 0..2 {
                    let mut out = Vec::new();
                    let outcome = state
                        .answer(&bytes, SOURCE, Transport::Udp, Some(&mut cache), &mut out)
                        .expect("answered");
                    assert_eq!(out, expected, "{name}/{qtype} {opt:?} round {round}");
                    assert_eq!(outcome.zone.map(|(z, _)| z), Some(0));
                }
            }
        }
        assert!(!cache.is_empty());
    }

    #[test]
    fn another_spelling_reuses_the_entry_and_keeps_its_own_case() {
        let state = state();
        let mut cache = AnswerCache::new(64);
        let mut out = Vec::new();
        state.answer(
            &query("www.example.com", 1, None),
            SOURCE,
            Transport::Udp,
            Some(&mut cache),
            &mut out,
        );
        let filled = cache.len();
        let bytes = query("WwW.ExAmPlE.CoM", 1, None);
        state.answer(&bytes, SOURCE, Transport::Udp, Some(&mut cache), &mut out);
        assert_eq!(cache.len(), filled);
        let got = Message::from_vec(&out).expect("decodes");
        let want = Message::from_vec(&strict(&state, &bytes, SOURCE)).expect("decodes");
        assert_eq!(got.queries[0].name().to_string(), "WwW.ExAmPlE.CoM.");
        assert_eq!(got.answers[0].name.to_string(), "WwW.ExAmPlE.CoM.");
        assert_eq!(got.answers, want.answers);
    }

    #[test]
    fn swapping_zones_or_classifier_empties_the_cache() {
        let state = state();
        let mut cache = AnswerCache::new(64);
        let bytes = query("www.example.com", 1, None);
        let mut out = Vec::new();
        state.answer(&bytes, SOURCE, Transport::Udp, Some(&mut cache), &mut out);
        assert!(out.ends_with(&[192, 0, 2, 10]));
        assert_eq!(cache.len(), 1);

        let dir = std::env::temp_dir().join(format!("geoline-prepared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("example.com.zone");
        std::fs::write(
            &file,
            "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.99\n",
        )
        .expect("write");
        let config = ZoneConfig {
            origin: Some("example.com".into()),
            file,
            overlays: BTreeMap::new(),
            declared_at: None,
            transfer: None,
            secondary: None,
        };
        state
            .live
            .zones
            .store(Arc::new(ZoneSet::load(&[config], &lines()).expect("loads")));
        state.answer(&bytes, SOURCE, Transport::Udp, Some(&mut cache), &mut out);
        assert!(out.ends_with(&[192, 0, 2, 99]), "{out:?}");
        assert_eq!(cache.len(), 1);
        std::fs::remove_dir_all(&dir).ok();

        // A new classifier (a database reload) empties it too, before the next entry.
        state.live.classifier.store(classifier());
        let zones = state.live.zones.load_full();
        cache.bind(&zones, &state.live.classifier.load_full());
        assert!(cache.is_empty());
    }

    /// example.com (with its china overlay) and other.test, loaded from files.
    fn two_zones(dir: &Path) -> ZoneSet {
        std::fs::create_dir_all(dir).expect("dir");
        let file = dir.join("other.test.zone");
        std::fs::write(
            &file,
            "$ORIGIN other.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.7\n",
        )
        .expect("write");
        let other = ZoneConfig {
            origin: None,
            file,
            overlays: BTreeMap::new(),
            declared_at: None,
            transfer: None,
            secondary: None,
        };
        let example = example_zones();
        let mut configs = vec![];
        let zone = &example.zones()[0];
        configs.push(ZoneConfig {
            origin: None,
            file: zone.file().to_path_buf(),
            overlays: BTreeMap::from([(
                LineId::new(0).expect("a line id"),
                zone.file().with_file_name("example.com.china.zone"),
            )]),
            declared_at: None,
            transfer: None,
            secondary: None,
        });
        configs.push(other);
        ZoneSet::load(&configs, &lines()).expect("zones load")
    }

    fn rrset(owner: &str, ttl: u32, data: hickory_proto::rr::RData) -> crate::zone::Rrset {
        let owner = hickory_proto::rr::Name::from_ascii(owner).expect("name");
        Arc::from(vec![hickory_proto::rr::Record::from_rdata(
            owner, ttl, data,
        )])
    }

    /// `zones` with `change` made to example.com's base data and its serial bumped, as
    /// an update makes it.
    fn updated(zones: &ZoneSet, change: crate::zone::Change) -> Arc<ZoneSet> {
        let zone = &zones.zones()[0];
        let changed = zone
            .with_changes(crate::zone::Layer::Base, &[change])
            .with_serial(zone.serial() + 1);
        Arc::new(zones.with_zone(0, changed))
    }

    #[test]
    fn an_update_drops_only_the_entries_it_may_change() {
        use hickory_proto::rr::RData;
        use hickory_proto::rr::rdata::{A, NS, TXT};

        let dir = std::env::temp_dir().join(format!("geoline-cache-update-{}", std::process::id()));
        let state = Responder::new(
            Arc::new(Live::new(two_zones(&dir), classifier())),
            1232,
            None,
        );
        let classifier = state.live.classifier.load_full();
        let line = LineId::new(1).expect("the default line");
        let keys = [
            ("www.example.com", 1),
            ("api.example.com", 1),
            ("www.example.com", 16),
            ("nx.example.com", 1),
            ("example.com", 6),
            ("www.other.test", 1),
            ("www.example.com", 28),
        ];
        // For each key: whether the entry was prepared again, and the answer written.
        let mut cache = AnswerCache::new(64);
        let mut ask = |zones: &Arc<ZoneSet>| -> Vec<(bool, Vec<u8>)> {
            cache.bind(zones, &classifier);
            keys.iter()
                .map(|(name, qtype)| {
                    let bytes = query(name, *qtype, None);
                    let quick = QuickQuery::parse(&bytes).expect("quick");
                    let mut built = false;
                    let entry = cache
                        .entry(zones, line, quick.qtype(), quick.name(), || {
                            built = true;
                            let strict = Query::parse(&bytes).ok()?;
                            Prepared::build(zones, None, &strict, line)
                        })
                        .expect("an entry");
                    let mut out = Vec::new();
                    entry.write(&quick, 0, 1232, &mut out);
                    (built, out)
                })
                .collect()
        };
        let rebuilt = |answers: &[(bool, Vec<u8>)]| -> Vec<bool> {
            answers.iter().map(|(built, _)| *built).collect()
        };

        let zones = state.live.zones.load_full();
        assert_eq!(rebuilt(&ask(&zones)), [true; 7]);
        assert_eq!(rebuilt(&ask(&zones)), [false; 7]);

        // An ACME challenge elsewhere: the negative answers (www has no TXT yet) and the
        // SOA (a new serial) go.
        let txt = RData::TXT(TXT::new(vec!["token".into()]));
        let zones = updated(
            &zones,
            (
                hickory_proto::rr::Name::from_ascii("_acme-challenge.example.com.").expect("name"),
                RecordType::TXT,
                Some(rrset("_acme-challenge.example.com.", 60, txt.clone())),
            ),
        );
        assert_eq!(
            rebuilt(&ask(&zones)),
            [false, false, true, true, true, false, false]
        );

        // A TXT record at www: www's A and AAAA stay.
        let zones = updated(
            &zones,
            (
                hickory_proto::rr::Name::from_ascii("www.example.com.").expect("name"),
                RecordType::TXT,
                Some(rrset("www.example.com.", 60, txt)),
            ),
        );
        assert_eq!(
            rebuilt(&ask(&zones)),
            [false, false, true, true, true, false, false]
        );

        // www's address: its entry goes, the TXT (a positive answer now) and AAAA stay, and
        // every answer is the strict path's.
        let www = hickory_proto::rr::Name::from_ascii("www.example.com.").expect("name");
        let a = RData::A(A(std::net::Ipv4Addr::new(192, 0, 2, 222)));
        let zones = updated(
            &zones,
            (
                www.clone(),
                RecordType::A,
                Some(rrset("www.example.com.", 60, a)),
            ),
        );
        let answers = ask(&zones);
        assert_eq!(
            rebuilt(&answers),
            [true, false, false, true, true, false, false]
        );
        assert!(
            answers[0].1.ends_with(&[192, 0, 2, 222]),
            "{:?}",
            answers[0].1
        );
        state.live.zones.store(zones.clone());
        for ((name, qtype), (_, got)) in keys.iter().zip(&answers) {
            let bytes = query(name, *qtype, None);
            let mut want = strict(&state, &bytes, SOURCE);
            want[..2].copy_from_slice(&bytes[..2]);
            assert_eq!(*got, want, "{name}/{qtype}");
        }

        // A delegation may take any name of the zone away: all of example.com goes, and
        // other.test keeps its entry.
        let ns = RData::NS(NS(
            hickory_proto::rr::Name::from_ascii("ns.elsewhere.").expect("name")
        ));
        let zones = updated(
            &zones,
            (
                hickory_proto::rr::Name::from_ascii("deleg.example.com.").expect("name"),
                RecordType::NS,
                Some(rrset("deleg.example.com.", 60, ns)),
            ),
        );
        assert_eq!(
            rebuilt(&ask(&zones)),
            [true, true, true, true, true, false, true]
        );

        // A reload of the zone's file is a new lineage: its entries all go.
        let reloaded = Arc::new(two_zones(&dir));
        let zones = Arc::new(zones.with_zone(0, reloaded.zones()[0].clone()));
        assert_eq!(
            rebuilt(&ask(&zones)),
            [true, true, true, true, true, false, true]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_cache_stays_within_its_slots() {
        let state = state();
        let mut cache = AnswerCache::new(4);
        let mut out = Vec::new();
        for i in 0..100 {
            let bytes = query(&format!("n{i}.example.com"), 1, None);
            state.answer(&bytes, SOURCE, Transport::Udp, Some(&mut cache), &mut out);
            assert_eq!(out, strict(&state, &bytes, SOURCE));
        }
        assert!(cache.len() <= 4);
    }

    #[test]
    fn names_outside_the_zones_take_the_strict_path() {
        let state = state();
        let mut cache = AnswerCache::new(4);
        let bytes = query("example.org", 1, None);
        let mut out = Vec::new();
        let outcome = state
            .answer(&bytes, SOURCE, Transport::Udp, Some(&mut cache), &mut out)
            .expect("answered");
        assert_eq!(outcome.rcode, ResponseCode::Refused);
        assert_eq!(out, strict(&state, &bytes, SOURCE));
        assert!(cache.is_empty());
    }
}
