//! Response rate limiting (RRL) for UDP, in the manner of Knot's `rrl` module and BIND's
//! `rate-limit`: a spoofed-source flood must not turn geoline into an amplifier, and a
//! random-subdomain flood must not be answered at full rate.
//!
//! Every UDP response is counted in a bucket keyed by the client's network (a /24 for
//! IPv4, a /56 for IPv6, configurable), the [`ResponseKind`], and what that kind is keyed
//! by: the name and type for answers, the name for NODATA (for both, the wildcard instead
//! when the answer was synthesized from one), the zone for NXDOMAIN and referrals (so
//! random names under one zone, or one wildcard, share one bucket), nothing more for
//! errors.
//! A bucket passes `responses_per_second` responses in each second; past that a response
//! is dropped, except every `slip`th, which is sent truncated (TC, question and OPT only)
//! so that a real resolver behind a spoofed address retries over TCP and gets its answer.
//!
//! The table is a fixed array of `AtomicU64`, shared by every worker and updated with
//! compare-and-swap: no lock, no allocation per response, and memory bounded by
//! `table_size` whatever addresses and names an attacker sends. A bucket holds no key:
//! keys that hash to one slot share it, which can only make limiting stricter for them.
//!
//! This module decides and rewrites; it does not read queries or count responses sent
//! (the listener does). TCP is never limited: a TCP client has proven its address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;
use ipnet::IpNet;

use crate::config::RrlConfig;
use crate::metrics::RrlMetrics;

/// What a response is, for rate limiting: each kind has its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// NOERROR with records in the answer section.
    Answer,
    /// NOERROR, authoritative, no answer: the name exists without the type.
    NoData,
    /// NOERROR, not authoritative, no answer: a delegation.
    Referral,
    NxDomain,
    /// REFUSED, FORMERR, NOTIMP, BADVERS and the like.
    Error,
}

impl ResponseKind {
    pub const ALL: [ResponseKind; 5] = [
        ResponseKind::Answer,
        ResponseKind::NoData,
        ResponseKind::Referral,
        ResponseKind::NxDomain,
        ResponseKind::Error,
    ];

    /// The kind of a response with `rcode`, `answers` answer records, from a zone or not.
    pub fn classify(
        rcode: ResponseCode,
        authoritative: bool,
        answers: usize,
        from_zone: bool,
    ) -> ResponseKind {
        match rcode {
            ResponseCode::NXDomain => ResponseKind::NxDomain,
            ResponseCode::NoError if !from_zone => ResponseKind::Error,
            ResponseCode::NoError if answers > 0 => ResponseKind::Answer,
            ResponseCode::NoError if authoritative => ResponseKind::NoData,
            ResponseCode::NoError => ResponseKind::Referral,
            _ => ResponseKind::Error,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ResponseKind::Answer => "answer",
            ResponseKind::NoData => "nodata",
            ResponseKind::Referral => "referral",
            ResponseKind::NxDomain => "nxdomain",
            ResponseKind::Error => "error",
        }
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    /// Send it truncated: see [`slip`].
    Slip,
    Drop,
}

/// A response as the limiter sees it, besides the client's address.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub kind: ResponseKind,
    /// The answering zone's index.
    pub zone: Option<usize>,
    /// The question's name, or the wildcard the answer was synthesized from, in wire form,
    /// lower-cased (only answers and NODATA use it).
    pub name: &'a [u8],
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

/// Seconds on the coarse monotonic clock, the limiter's notion of "this second". Public so
/// that tests can start a burst at the beginning of a second.
pub fn now_secs() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists on every
    // Linux since 2.6.32 and is read from the vDSO without a system call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u32
}

impl Rrl {
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
            ResponseKind::NxDomain | ResponseKind::Referral => {
                h.add(subject.zone.map_or(u64::MAX, |z| z as u64));
            }
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

/// Writes `name` in wire form, lower-cased, into `buf`; returns the part written. The
/// strict path's names are hickory [`Name`]s; the prepared path has the wire form already.
pub(crate) fn wire_name<'b>(name: &Name, buf: &'b mut [u8; 255]) -> &'b [u8] {
    let mut at = 0;
    for label in name.iter() {
        // A name read off the wire fits in 255 bytes; stop rather than panic if not.
        let Some(dst) = buf.get_mut(at..at + 1 + label.len()) else {
            break;
        };
        dst[0] = label.len() as u8;
        for (d, s) in dst[1..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        at += 1 + label.len();
    }
    if at < buf.len() {
        buf[at] = 0;
        at += 1;
    }
    &buf[..at]
}

/// Rewrites the encoded response in `out` into its slipped form: the same header with TC
/// set, the question, and the OPT record if the response had one (with its Client Subnet
/// option, so that a resolver still sees ECS handled), nothing else. Allocates nothing.
/// `false` when `out` does not read as a response (then it must not be sent).
pub(crate) fn slip(out: &mut Vec<u8>) -> bool {
    slip_in_place(out).is_some()
}

fn slip_in_place(out: &mut Vec<u8>) -> Option<()> {
    let count = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    if out.len() < 12 {
        return None;
    }
    let records =
        usize::from(count(out, 6)) + usize::from(count(out, 8)) + usize::from(count(out, 10));
    let mut at = 12;
    for _ in 0..count(out, 4) {
        at = skip_name(out, at)? + 4;
    }
    let question_end = at;
    if question_end > out.len() {
        return None;
    }
    // Both encoders write the OPT record last; look at every record to find it anyway.
    let mut opt = None;
    for _ in 0..records {
        let start = at;
        at = skip_name(out, at)?;
        let fixed = out.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let end = at + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        if end > out.len() {
            return None;
        }
        if rtype == 41 {
            opt = Some(start..end);
        }
        at = end;
    }
    let additional = match opt {
        Some(range) => {
            let len = range.len();
            out.copy_within(range, question_end);
            out.truncate(question_end + len);
            1u16
        }
        None => {
            out.truncate(question_end);
            0
        }
    };
    out[2] |= 0x02;
    out[6..10].fill(0);
    out[10..12].copy_from_slice(&additional.to_be_bytes());
    Some(())
}

fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *bytes.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;

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
            zone: Some(0),
            name,
            qtype: 1,
        }
    }

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
                    zone: Some(0),
                    name,
                    qtype: 1,
                };
                rrl.check(ip("198.51.100.9"), &nx, 1)
            })
            .collect();
        assert_eq!(actions, [S, S, D, D, D]);
        let other_zone = Subject {
            kind: ResponseKind::NxDomain,
            zone: Some(1),
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

    #[test]
    fn kinds() {
        use ResponseCode as R;
        let k = ResponseKind::classify;
        assert_eq!(k(R::NoError, true, 1, true), ResponseKind::Answer);
        assert_eq!(k(R::NoError, true, 0, true), ResponseKind::NoData);
        assert_eq!(k(R::NoError, false, 0, true), ResponseKind::Referral);
        assert_eq!(k(R::NXDomain, true, 1, true), ResponseKind::NxDomain);
        assert_eq!(k(R::Refused, false, 0, false), ResponseKind::Error);
        assert_eq!(k(R::FormErr, false, 0, false), ResponseKind::Error);
    }

    #[test]
    fn wire_names_lower_cased() {
        let mut buf = [0u8; 255];
        let name = Name::from_ascii("WWW.Example.com.").expect("name");
        assert_eq!(wire_name(&name, &mut buf), WWW);
        assert_eq!(wire_name(&Name::root(), &mut buf), b"\x00");
    }

    fn response(with_opt: bool) -> Vec<u8> {
        use crate::dns::query::{QueryHeader, Question};
        use crate::dns::response::{EdnsReply, Response};
        use hickory_proto::rr::rdata::A;
        use hickory_proto::rr::{DNSClass, RData, Record};
        let name = Name::from_ascii("Www.example.com.").expect("name");
        let mut r = Response::empty(
            QueryHeader {
                id: 7,
                opcode: 0,
                recursion_desired: true,
                checking_disabled: false,
            },
            ResponseCode::NoError,
            Some(Question {
                name: name.clone(),
                qtype: RecordType::A,
                qclass: DNSClass::IN,
            }),
            with_opt.then_some(EdnsReply {
                udp_payload: 1232,
                dnssec_ok: true,
                client_subnet: None,
            }),
        );
        r.authoritative = true;
        r.answers = vec![Record::from_rdata(
            name.clone(),
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 10))),
        )];
        r.additional = vec![Record::from_rdata(
            name,
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 11))),
        )];
        let mut out = Vec::new();
        r.encode(1232, &mut out);
        out
    }

    #[test]
    fn slipped_response_keeps_question_and_opt() {
        for with_opt in [true, false] {
            let mut out = response(with_opt);
            assert!(slip(&mut out));
            let m = Message::from_vec(&out).expect("decodes");
            assert!(m.metadata.truncation && m.metadata.authoritative);
            assert_eq!(m.metadata.id, 7);
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.queries[0].name().to_string(), "Www.example.com.");
            assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
            assert_eq!(m.edns.is_some(), with_opt, "OPT iff the response had one");
            if let Some(edns) = m.edns {
                assert!(edns.flags().dnssec_ok);
                assert_eq!(edns.max_payload(), 1232);
            }
            // header + question (17 + 4) + OPT (11)
            assert_eq!(out.len(), 12 + 21 + if with_opt { 11 } else { 0 });
        }
        let mut short = vec![0u8; 5];
        assert!(!slip(&mut short));
    }
}
