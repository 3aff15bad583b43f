//! Weighted answers: an A/AAAA RRset holding weighted addresses answers N of them, chosen
//! by weight from a hash of the client's subnet, so that one resolver (one client subnet)
//! gets the same answer on every query.
//!
//! This module owns the choice and its key: the client's /24 (IPv4) or /56 (IPv6), from
//! the Client Subnet option or the source address, the same rule as the line's. The
//! choice is rendezvous hashing with weights (each address scores `ln(u) / weight` with
//! `u` a hash of (subnet, address) in (0, 1], and the N highest scores win): address `a`
//! is the first choice of a share `weight(a) / Σ weights` of the subnets, and when an
//! address goes down only the subnets that had it move. It does not filter down addresses
//! ([`super::filter`] does, before the choice) nor write the ECS scope (the DNS layer, with
//! [`scope`]).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::dns::wire::ecs::ClientSubnet;

/// The prefix of an IPv4 client the choice reads.
pub(crate) const V4_PREFIX: u8 = 24;
/// The prefix of an IPv6 client the choice reads.
pub(crate) const V6_PREFIX: u8 = 56;

/// One `[[health.weights]]` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightGroup {
    /// The addresses and their weights; an address of the RRset not listed weighs 0.
    pub weights: Vec<(IpAddr, u32)>,
    /// How many addresses an answer holds.
    pub answers: u32,
}

/// The weights of every weighted address, as answers read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Weights {
    /// The group and weight of each weighted address.
    by_address: HashMap<IpAddr, (usize, u32)>,
    /// Per group, how many addresses an answer holds.
    answers: Vec<u32>,
}

/// The key the choice hashes: the client's subnet (its /24 or /56).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientKey(u128);

impl ClientKey {
    /// The key of `client` (the address that decides the line).
    pub(crate) fn of(client: IpAddr) -> ClientKey {
        match client {
            IpAddr::V4(a) => ClientKey(u128::from(u32::from(a) & !0xff) | 1 << 127),
            IpAddr::V6(a) => ClientKey(u128::from(a) & !((1u128 << (128 - V6_PREFIX)) - 1)),
        }
    }
}

/// The ECS scope of a weighted answer: at least the prefix the choice read, when the
/// subnet decided it (RFC 7871 7.2.1: a scope longer than the source is allowed and means
/// the answer is for that longer prefix); the line's `scope` otherwise.
pub(crate) fn scope(subnet: Option<ClientSubnet>, scope: u8) -> u8 {
    match subnet {
        Some(s) if s.source_prefix > 0 => scope.max(if s.address.is_ipv4() {
            V4_PREFIX
        } else {
            V6_PREFIX
        }),
        _ => scope,
    }
}

impl Weights {
    pub(crate) fn new(groups: &[WeightGroup]) -> Weights {
        let mut by_address = HashMap::new();
        for (g, group) in groups.iter().enumerate() {
            for &(address, weight) in &group.weights {
                by_address.insert(address, (g, weight));
            }
        }
        Weights {
            by_address,
            answers: groups.iter().map(|g| g.answers).collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// The group of the first weighted address of `addresses`, if any.
    pub(crate) fn group_of(&self, addresses: impl IntoIterator<Item = IpAddr>) -> Option<usize> {
        if self.by_address.is_empty() {
            return None;
        }
        addresses
            .into_iter()
            .find_map(|a| self.by_address.get(&a).map(|(g, _)| *g))
    }

    /// Which of `addresses` (an RRset of `group`) an answer to `client` holds: a mask, in
    /// the RRset's order. Addresses of the set outside the group weigh 0: they are chosen
    /// only when no address of positive weight is there.
    pub(crate) fn choose(
        &self,
        group: usize,
        addresses: &[IpAddr],
        client: ClientKey,
    ) -> Vec<bool> {
        let n = self.answers.get(group).copied().unwrap_or(1) as usize;
        let weight = |a: &IpAddr| match self.by_address.get(a) {
            Some((g, w)) if *g == group => *w,
            _ => 0,
        };
        let any_positive = addresses.iter().any(|a| weight(a) > 0);
        let mut scored: Vec<(f64, usize)> = addresses
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let w = if any_positive { weight(a) } else { 1 };
                (w > 0).then(|| (score(client, *a) / f64::from(w), i))
            })
            .collect();
        // Highest first; ties (never in practice) by position, so the choice is total.
        scored.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        let mut chosen = vec![false; addresses.len()];
        for (_, i) in scored.into_iter().take(n) {
            chosen[i] = true;
        }
        chosen
    }
}

/// `ln(u)` for `u` in (0, 1], a hash of (client, address): the same on every server and
/// every run, so every name server of a zone makes the same choice.
fn score(client: ClientKey, address: IpAddr) -> f64 {
    let a = match address {
        IpAddr::V4(a) => u128::from(u32::from(a)) | 1 << 127,
        IpAddr::V6(a) => u128::from(a),
    };
    let mut h = mix(client.0 as u64);
    h = mix(h ^ (client.0 >> 64) as u64);
    h = mix(h ^ a as u64);
    h = mix(h ^ (a >> 64) as u64);
    // 53 bits, plus one: never 0, at most 1.
    let u = ((h >> 11) + 1) as f64 / (1u64 << 53) as f64;
    u.ln()
}

/// splitmix64's finalizer: every input bit reaches every output bit.
fn mix(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn weights(pairs: &[(&str, u32)], answers: u32) -> Weights {
        Weights::new(&[WeightGroup {
            weights: pairs.iter().map(|(a, w)| (ip(a), *w)).collect(),
            answers,
        }])
    }

    fn subnet(i: u32) -> ClientKey {
        ClientKey::of(IpAddr::from((0x0a00_0000 + (i << 8)).to_be_bytes()))
    }

    #[test]
    fn first_choices_follow_the_weights() {
        let w = weights(&[("192.0.2.1", 6), ("192.0.2.2", 3), ("192.0.2.3", 1)], 1);
        let set = [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")];
        let mut counts = [0u32; 3];
        for i in 0..100_000 {
            let chosen = w.choose(0, &set, subnet(i));
            assert_eq!(chosen.iter().filter(|c| **c).count(), 1);
            counts[chosen.iter().position(|c| *c).expect("one")] += 1;
        }
        for (count, weight) in counts.iter().zip([6.0, 3.0, 1.0]) {
            let share = f64::from(*count) / 100_000.0;
            assert!(
                (share - weight / 10.0).abs() < 0.02 * weight / 10.0,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn a_client_key_covers_its_24_or_56_only() {
        assert_eq!(
            ClientKey::of(ip("10.1.2.3")),
            ClientKey::of(ip("10.1.2.200"))
        );
        assert_ne!(ClientKey::of(ip("10.1.2.3")), ClientKey::of(ip("10.1.3.3")));
        assert_eq!(
            ClientKey::of(ip("2001:db8:0:ff::1")),
            ClientKey::of(ip("2001:db8:0:ff:ffff::"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:0:ff::1")),
            ClientKey::of(ip("2001:db8:0:100::1"))
        );
    }

    #[test]
    fn an_address_going_away_moves_only_the_clients_that_had_it() {
        let w = weights(&[("192.0.2.1", 1), ("192.0.2.2", 1), ("192.0.2.3", 1)], 1);
        let all = [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")];
        let without = [ip("192.0.2.1"), ip("192.0.2.3")];
        for i in 0..2_000 {
            let before = w.choose(0, &all, subnet(i));
            let after = w.choose(0, &without, subnet(i));
            if !before[1] {
                assert_eq!(after, [before[0], before[2]], "subnet {i}");
            }
        }
    }

    #[test]
    fn n_answers_and_weight_zero() {
        let w = weights(&[("192.0.2.1", 5), ("192.0.2.2", 5), ("192.0.2.3", 0)], 2);
        let set = [
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            ip("192.0.2.3"),
            ip("192.0.2.9"),
        ];
        for i in 0..100 {
            assert_eq!(w.choose(0, &set, subnet(i)), [true, true, false, false]);
        }
        // Only weight-0 addresses left: they answer, N of them.
        let rest = [ip("192.0.2.3"), ip("192.0.2.9"), ip("192.0.2.10")];
        for i in 0..100 {
            assert_eq!(
                w.choose(0, &rest, subnet(i)).iter().filter(|c| **c).count(),
                2
            );
        }
    }

    #[test]
    fn the_scope_covers_the_prefix_the_choice_read() {
        let v4 = ClientSubnet {
            address: ip("10.1.0.0"),
            source_prefix: 16,
        };
        assert_eq!(scope(Some(v4), 0), 24);
        assert_eq!(scope(Some(v4), 25), 25);
        let v6 = ClientSubnet {
            address: ip("2001:db8::"),
            source_prefix: 48,
        };
        assert_eq!(scope(Some(v6), 32), 56);
        let zero = ClientSubnet {
            address: ip("0.0.0.0"),
            source_prefix: 0,
        };
        assert_eq!(scope(Some(zero), 0), 0);
        assert_eq!(scope(None, 0), 0);
    }
}
