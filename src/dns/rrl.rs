//! Response rate limiting (RRL) for UDP, in the manner of Knot's `rrl` module and BIND's
//! `rate-limit`: a spoofed-source flood must not turn geoline into an amplifier, and a
//! random-subdomain flood must not be answered at full rate.
//!
//! Every UDP response is counted in a bucket keyed by the client's network (a /24 for
//! IPv4, a /56 for IPv6, configurable), the [`ResponseKind`], and what that kind is keyed
//! by: the name and type for answers, the name for NODATA (for both, the wildcard instead
//! when the answer was synthesized from one), the zone for NXDOMAIN and referrals (so
//! random names under one zone, or one wildcard, share one bucket), nothing more for
//! errors. A zone is named by its origin, not by its place in the list of zones: a reload
//! that adds, removes or reorders zones leaves every zone its own buckets.
//! A bucket passes `responses_per_second` responses in each second; past that a response
//! is dropped, except every `slip`th, which is sent truncated (TC, question and OPT only)
//! so that a real resolver behind a spoofed address retries over TCP and gets its answer.
//!
//! The table is a fixed array of `AtomicU64`, shared by every worker and updated with
//! compare-and-swap: no lock, no allocation per response, and memory bounded by
//! `table_size` whatever addresses and names an attacker sends. A bucket holds no key:
//! keys that hash to one slot share it, which can only make limiting stricter for them.
//!
//! This module decides, and has a slipped response rewritten by
//! [`super::wire::response::slip`]; it does not read queries or count the responses sent.
//! TCP is never limited: a TCP client has proven its address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;

use super::config::RrlConfig;
use super::outcome::{Answered, CountedName, Outcome, ResponseKind};
use super::sys::now_secs;
use super::wire::response::slip;
use super::wire::{MAX_NAME, write_name_lower};
use crate::exposition::Exposition;
use crate::zone::ZoneSet;

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    /// Send it truncated: see [`super::wire::response::slip`].
    Slip,
    Drop,
}

/// A response as the limiter sees it, besides the client's address.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Part of the bucket key, and says what else is: see the module doc.
    pub kind: ResponseKind,
    /// The answering zone's origin in wire form, lower-cased (only NXDOMAIN and referrals
    /// use it).
    pub zone: Option<&'a [u8]>,
    /// The question's name, or the wildcard the answer was synthesized from, in wire form,
    /// lower-cased (only answers and NODATA use it).
    pub name: &'a [u8],
    /// The question's type (0 if none); only answers are keyed by it.
    pub qtype: u16,
}

/// The most `responses_per_second` a bucket can count (its field is 20 bits wide).
pub(crate) const MAX_RATE: u32 = (1 << 20) - 1;
/// The largest `slip` (its counter is 12 bits wide).
pub(crate) const MAX_SLIP: u32 = (1 << 12) - 1;

// A slot: the second it was last used (32 bits), responses passed in that second (20),
// limited responses since the last slip (12). An unused slot (0) has passed nothing.
const USED_SHIFT: u32 = 32;
const LIMITED_SHIFT: u32 = 52;
const USED_MASK: u64 = (1 << 20) - 1;

fn pack(second: u32, used: u32, limited: u32) -> u64 {
    u64::from(second) | u64::from(used) << USED_SHIFT | u64::from(limited) << LIMITED_SHIFT
}

fn unpack(slot: u64) -> (u32, u32, u32) {
    (
        slot as u32,
        ((slot >> USED_SHIFT) & USED_MASK) as u32,
        (slot >> LIMITED_SHIFT) as u32,
    )
}

/// The shared table of buckets and the settings it applies.
pub struct Rrl {
    slots: Box<[AtomicU64]>,
    /// 64 minus log2 of the slot count: a hash's top bits pick the slot.
    shift: u32,
    rate: u32,
    slip: u32,
    ipv4_mask: u32,
    ipv6_mask: u128,
    whitelist: Vec<IpNet>,
    metrics: RrlMetrics,
}

impl Rrl {
    /// A limiter with an empty table; rate and slip past their maxima are clamped.
    pub fn new(config: &RrlConfig) -> Rrl {
        let slots = config.table_size.max(2).next_power_of_two();
        Rrl {
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            shift: 64 - slots.trailing_zeros(),
            rate: config.responses_per_second.min(MAX_RATE),
            slip: config.slip.min(MAX_SLIP),
            ipv4_mask: u32::MAX
                .checked_shl(32 - u32::from(config.ipv4_prefix_length.min(32)))
                .unwrap_or(0),
            ipv6_mask: u128::MAX
                .checked_shl(128 - u32::from(config.ipv6_prefix_length.min(128)))
                .unwrap_or(0),
            whitelist: config.whitelist.clone(),
            metrics: RrlMetrics::default(),
        }
    }

    /// The limiter's counters, for the metrics endpoint.
    pub fn metrics(&self) -> &RrlMetrics {
        &self.metrics
    }

    /// Counts the response in its bucket for second `now` and says what to do with it;
    /// a dropped or slipped response is counted in the metrics.
    pub fn check(&self, source: IpAddr, subject: &Subject<'_>, now: u32) -> Action {
        let source = source.to_canonical();
        if !self.whitelist.is_empty() && self.whitelist.iter().any(|n| n.contains(&source)) {
            return Action::Send;
        }
        let slot = &self.slots[(self.key(source, subject) >> self.shift) as usize];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let (second, mut used, mut limited) = unpack(current);
            // A new second refills the bucket: a burst of one second's worth is allowed.
            if second != now {
                used = 0;
                limited = 0;
            }
            let action = if used < self.rate {
                used += 1;
                Action::Send
            } else if self.slip == 0 {
                Action::Drop
            } else {
                limited = (limited + 1) % self.slip;
                if limited == 0 {
                    Action::Slip
                } else {
                    Action::Drop
                }
            };
            let next = pack(now, used, limited);
            // A flood past the limit with slip 0 changes nothing: no write, no contention.
            if next == current {
                self.count(subject.kind, action);
                return action;
            }
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    self.count(subject.kind, action);
                    return action;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Passes the response in `out` through rate limiting: as it is, slipped (rewritten
    /// truncated) or dropped (`None`), counted by the name `answered` carries and, for
    /// NXDOMAIN and referrals, by the origin of the zone of `zones` that answered.
    pub(crate) fn limit(
        &self,
        source: IpAddr,
        answered: &Answered<'_>,
        zones: &ZoneSet,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        let mut outcome = answered.outcome;
        let mut written: [u8; MAX_NAME];
        let name = match answered.name {
            CountedName::Wire(name) => name,
            CountedName::Name(name) => {
                written = [0; MAX_NAME];
                write_name_lower(name, &mut written)
            }
            CountedName::None => &[],
        };
        let mut origin: [u8; MAX_NAME];
        let zone = match (outcome.kind, outcome.zone) {
            (ResponseKind::NxDomain | ResponseKind::Referral, Some((z, _))) => {
                match zones.zones().get(z) {
                    Some(zone) => {
                        origin = [0; MAX_NAME];
                        Some(write_name_lower(zone.origin(), &mut origin))
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let subject = Subject {
            kind: outcome.kind,
            zone,
            name,
            qtype: outcome.qtype.map_or(0, u16::from),
        };
        match self.check(source, &subject, now_secs()) {
            Action::Send => Some(outcome),
            Action::Drop => None,
            Action::Slip => {
                outcome.truncated = true;
                slip(out).then_some(outcome)
            }
        }
    }

    fn count(&self, kind: ResponseKind, action: Action) {
        if action != Action::Send {
            self.metrics.record(kind, action);
        }
    }

    /// The bucket's key, hashed: (network, kind, and the kind's name part).
    fn key(&self, source: IpAddr, subject: &Subject<'_>) -> u64 {
        let mut h = Hash::new(subject.kind as u64);
        match source {
            IpAddr::V4(a) => h.add(u64::from(u32::from(a) & self.ipv4_mask)),
            IpAddr::V6(a) => {
                let net = u128::from(a) & self.ipv6_mask;
                h.add((net >> 64) as u64 | 1 << 63);
                h.add(net as u64);
            }
        }
        match subject.kind {
            ResponseKind::Answer => {
                h.add(u64::from(subject.qtype));
                h.add_bytes(subject.name);
            }
            ResponseKind::NoData => h.add_bytes(subject.name),
            ResponseKind::NxDomain | ResponseKind::Referral => match subject.zone {
                Some(origin) => h.add_bytes(origin),
                None => h.add(u64::MAX),
            },
            ResponseKind::Error => {}
        }
        h.finish()
    }
}

/// A multiplicative hash over 64-bit words: fast, and good enough in its top bits, which
/// pick the slot.
struct Hash(u64);

impl Hash {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn new(seed: u64) -> Hash {
        Hash(seed.wrapping_add(1).wrapping_mul(Self::K))
    }

    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(Self::K);
        self.0 ^= self.0 >> 29;
    }

    fn add_bytes(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        self.0.wrapping_mul(Self::K)
    }
}

/// What rate limiting held back, by response kind: dropped and slipped (sent truncated).
/// Responses it let through are counted as sent ([`super::metrics::DnsMetrics`]).
#[derive(Default)]
pub struct RrlMetrics {
    limited: [[AtomicU64; 2]; ResponseKind::ALL.len()],
}

impl RrlMetrics {
    fn action_index(action: Action) -> Option<usize> {
        match action {
            Action::Send => None,
            Action::Drop => Some(0),
            Action::Slip => Some(1),
        }
    }

    pub fn record(&self, kind: ResponseKind, action: Action) {
        if let Some(a) = Self::action_index(action) {
            self.limited[kind.index()][a].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many responses of `kind` were dropped or slipped.
    pub fn count(&self, kind: ResponseKind, action: Action) -> u64 {
        Self::action_index(action)
            .map_or(0, |a| self.limited[kind.index()][a].load(Ordering::Relaxed))
    }

    /// Writes `geoline_dns_rrl_responses_total`, every series, zeros included, so that a
    /// dashboard sees the family whether or not limiting is on.
    pub fn render(&self, out: &mut Exposition) {
        const NAME: &str = "geoline_dns_rrl_responses_total";
        out.family(
            NAME,
            "counter",
            "UDP responses held back by response rate limiting, by response kind and action (dropped, or slipped: sent truncated).",
        );
        for kind in ResponseKind::ALL {
            for (action, label) in [(Action::Drop, "dropped"), (Action::Slip, "slipped")] {
                out.sample(
                    NAME,
                    &[("kind", kind.label()), ("action", label)],
                    self.count(kind, action) as f64,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn config(rate: u32, slip: u32) -> RrlConfig {
        RrlConfig {
            responses_per_second: rate,
            slip,
            table_size: 4096,
            ..RrlConfig::default()
        }
    }

    fn answer(name: &[u8]) -> Subject<'_> {
        Subject {
            kind: ResponseKind::Answer,
            zone: Some(EXAMPLE_COM),
            name,
            qtype: 1,
        }
    }

    const EXAMPLE_COM: &[u8] = b"\x07example\x03com\x00";
    const EXAMPLE_NET: &[u8] = b"\x07example\x03net\x00";
    const WWW: &[u8] = b"\x03www\x07example\x03com\x00";
    const MAIL: &[u8] = b"\x04mail\x07example\x03com\x00";

    fn ip(s: &str) -> IpAddr {
        IpAddr::from_str(s).expect("address")
    }

    fn run(rrl: &Rrl, source: &str, subject: &Subject<'_>, now: u32, n: usize) -> Vec<Action> {
        (0..n)
            .map(|_| rrl.check(ip(source), subject, now))
            .collect()
    }

    use Action::{Drop as D, Send as S, Slip as L};

    #[test]
    fn bucket_refills_each_second() {
        let rrl = Rrl::new(&config(3, 0));
        let www = answer(WWW);
        assert_eq!(run(&rrl, "192.0.2.1", &www, 100, 5), [S, S, S, D, D]);
        // The next second refills the whole bucket, and so does any later one.
        assert_eq!(run(&rrl, "192.0.2.1", &www, 101, 4), [S, S, S, D]);
        assert_eq!(run(&rrl, "192.0.2.1", &www, 107, 4), [S, S, S, D]);
        // The clock going back (or wrapping) is a new second too, never a stuck bucket.
        assert_eq!(run(&rrl, "192.0.2.1", &www, 3, 1), [S]);
        assert_eq!(rrl.metrics().count(ResponseKind::Answer, Action::Drop), 4);
    }

    #[test]
    fn every_nth_limited_response_slips() {
        let www = answer(WWW);
        let rrl = Rrl::new(&config(2, 3));
        assert_eq!(
            run(&rrl, "192.0.2.1", &www, 5, 9),
            [S, S, D, D, L, D, D, L, D]
        );
        let rrl = Rrl::new(&config(1, 1));
        assert_eq!(run(&rrl, "192.0.2.1", &www, 5, 4), [S, L, L, L]);
        assert_eq!(rrl.metrics().count(ResponseKind::Answer, Action::Slip), 3);
        assert_eq!(rrl.metrics().count(ResponseKind::Answer, Action::Drop), 0);
    }

    #[test]
    fn keyed_by_prefix() {
        let rrl = Rrl::new(&RrlConfig {
            ipv6_prefix_length: 56,
            ..config(1, 0)
        });
        let www = answer(WWW);
        assert_eq!(run(&rrl, "192.0.2.1", &www, 1, 2), [S, D]);
        // The same /24: one bucket.
        assert_eq!(run(&rrl, "192.0.2.200", &www, 1, 1), [D]);
        assert_eq!(run(&rrl, "::ffff:192.0.2.7", &www, 1, 1), [D]);
        // Another /24.
        assert_eq!(run(&rrl, "192.0.3.1", &www, 1, 2), [S, D]);
        // IPv6: the same /56, then the next one.
        assert_eq!(run(&rrl, "2001:db8:0:ff::1", &www, 1, 2), [S, D]);
        assert_eq!(run(&rrl, "2001:db8:0:1::2", &www, 1, 1), [D]);
        assert_eq!(run(&rrl, "2001:db8:0:100::1", &www, 1, 1), [S]);

        let rrl = Rrl::new(&RrlConfig {
            ipv4_prefix_length: 32,
            ..config(1, 0)
        });
        assert_eq!(run(&rrl, "192.0.2.1", &www, 1, 2), [S, D]);
        assert_eq!(run(&rrl, "192.0.2.2", &www, 1, 1), [S]);
    }

    #[test]
    fn answers_keyed_by_name_and_type() {
        let rrl = Rrl::new(&config(1, 0));
        let www = answer(WWW);
        assert_eq!(run(&rrl, "192.0.2.1", &www, 1, 2), [S, D]);
        assert_eq!(run(&rrl, "192.0.2.1", &answer(MAIL), 1, 1), [S]);
        let aaaa = Subject { qtype: 28, ..www };
        assert_eq!(run(&rrl, "192.0.2.1", &aaaa, 1, 1), [S]);
        // NODATA for the name is a kind of its own, keyed by the name only.
        let nodata = Subject {
            kind: ResponseKind::NoData,
            ..www
        };
        assert_eq!(run(&rrl, "192.0.2.1", &nodata, 1, 1), [S]);
        let other_type = Subject {
            qtype: 99,
            ..nodata
        };
        assert_eq!(run(&rrl, "192.0.2.1", &other_type, 1, 1), [D]);
    }

    #[test]
    fn nxdomain_keyed_by_zone_so_random_names_share_a_bucket() {
        let rrl = Rrl::new(&config(2, 0));
        let names: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("\x06rnd{i:03}\x07example\x03com\x00").into_bytes())
            .collect();
        let actions: Vec<Action> = names
            .iter()
            .map(|name| {
                let nx = Subject {
                    kind: ResponseKind::NxDomain,
                    zone: Some(EXAMPLE_COM),
                    name,
                    qtype: 1,
                };
                rrl.check(ip("198.51.100.9"), &nx, 1)
            })
            .collect();
        assert_eq!(actions, [S, S, D, D, D]);
        // Another zone, named by its origin: its own bucket.
        let other_zone = Subject {
            kind: ResponseKind::NxDomain,
            zone: Some(EXAMPLE_NET),
            name: &names[0],
            qtype: 1,
        };
        assert_eq!(rrl.check(ip("198.51.100.9"), &other_zone, 1), S);
        assert_eq!(rrl.metrics().count(ResponseKind::NxDomain, Action::Drop), 3);
    }

    #[test]
    fn whitelisted_networks_are_never_limited() {
        let rrl = Rrl::new(&RrlConfig {
            whitelist: vec!["192.0.2.0/25".parse().expect("cidr")],
            ..config(1, 0)
        });
        let www = answer(WWW);
        assert_eq!(run(&rrl, "192.0.2.1", &www, 1, 3), [S, S, S]);
        assert_eq!(run(&rrl, "192.0.2.200", &www, 1, 2), [S, D]);
    }
}
