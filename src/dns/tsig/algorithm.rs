//! The six TSIG algorithms (RFC 8945 6, RFC 4635): their names on the wire and in
//! configuration files, and the HMAC each computes.
//!
//! This module owns the mapping between an algorithm's name and its keyed hash, and the
//! one [`Hmac`] that every signature and every verification feeds. It does not know what
//! is fed (that is the digest layout of [`super::digest`]) nor which MAC lengths are
//! acceptable ([`super::verify`]).

use std::fmt;
use std::str::FromStr;

use hmac::{KeyInit, Mac};

/// A TSIG MAC algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `hmac-md5.sig-alg.reg.int`: certbot's and cert-manager's default; RFC 8945 says
    /// "MUST NOT use" for new keys, but old clients still send it.
    HmacMd5,
    /// `hmac-sha1`: lego's default.
    HmacSha1,
    /// `hmac-sha224`.
    HmacSha224,
    /// `hmac-sha256`: the default of `geoline keygen`, BIND's `tsig-keygen` and Knot's
    /// `keymgr`.
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl Algorithm {
    /// Every algorithm, in the order the README lists them.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::HmacMd5,
        Algorithm::HmacSha1,
        Algorithm::HmacSha224,
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
    ];

    /// The algorithm's name as TSIG records carry it, without the final dot.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacMd5 => "hmac-md5.sig-alg.reg.int",
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha224 => "hmac-sha224",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The name as certbot's `dns_rfc2136_algorithm` spells it (`HMAC-SHA256`).
    pub fn certbot_name(self) -> &'static str {
        match self {
            Algorithm::HmacMd5 => "HMAC-MD5",
            Algorithm::HmacSha1 => "HMAC-SHA1",
            Algorithm::HmacSha224 => "HMAC-SHA224",
            Algorithm::HmacSha256 => "HMAC-SHA256",
            Algorithm::HmacSha384 => "HMAC-SHA384",
            Algorithm::HmacSha512 => "HMAC-SHA512",
        }
    }

    /// The name in wire form, lower-cased (the canonical form the MAC covers).
    pub(crate) fn wire_name(self) -> &'static [u8] {
        match self {
            Algorithm::HmacMd5 => b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00",
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
            Algorithm::HmacSha224 => b"\x0bhmac-sha224\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The length of the full MAC in bytes (the hash's output length).
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::HmacMd5 => 16,
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha224 => 28,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }

    /// The shortest MAC RFC 8945 5.2.2.1 lets anyone send: the larger of 10 bytes and
    /// half the output. Shorter is a FORMERR.
    pub fn shortest_mac(self) -> usize {
        (self.output_len() / 2).max(10)
    }

    /// A fresh HMAC keyed with `secret`.
    pub(crate) fn hmac(self, secret: &[u8]) -> Hmac {
        // HMAC takes keys of any length (hashed when longer than a block), so keying
        // cannot fail; `new_from_slice` only reports errors for fixed-size-key MACs.
        fn keyed<M: KeyInit>(secret: &[u8]) -> M {
            match M::new_from_slice(secret) {
                Ok(m) => m,
                Err(_) => unreachable!("HMAC accepts keys of every length"),
            }
        }
        match self {
            Algorithm::HmacMd5 => Hmac::Md5(keyed(secret)),
            Algorithm::HmacSha1 => Hmac::Sha1(keyed(secret)),
            Algorithm::HmacSha224 => Hmac::Sha224(keyed(secret)),
            Algorithm::HmacSha256 => Hmac::Sha256(keyed(secret)),
            Algorithm::HmacSha384 => Hmac::Sha384(keyed(secret)),
            Algorithm::HmacSha512 => Hmac::Sha512(keyed(secret)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An algorithm name geoline does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown TSIG algorithm `{0}` (known: hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512)"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Reads a name as configuration files, BIND key files and client tools write it:
    /// any letter case, with or without the final dot, `hmac-md5` for the long MD5 name.
    fn from_str(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        match lower.as_str() {
            "hmac-md5" | "hmac-md5.sig-alg.reg.int" => Ok(Algorithm::HmacMd5),
            "hmac-sha1" => Ok(Algorithm::HmacSha1),
            "hmac-sha224" => Ok(Algorithm::HmacSha224),
            "hmac-sha256" => Ok(Algorithm::HmacSha256),
            "hmac-sha384" => Ok(Algorithm::HmacSha384),
            "hmac-sha512" => Ok(Algorithm::HmacSha512),
            _ => Err(UnknownAlgorithm(s.to_string())),
        }
    }
}

/// An HMAC being computed, whichever the algorithm.
#[derive(Clone)]
pub(crate) enum Hmac {
    Md5(hmac::Hmac<md5::Md5>),
    Sha1(hmac::Hmac<sha1::Sha1>),
    Sha224(hmac::Hmac<sha2::Sha224>),
    Sha256(hmac::Hmac<sha2::Sha256>),
    Sha384(hmac::Hmac<sha2::Sha384>),
    Sha512(hmac::Hmac<sha2::Sha512>),
}

/// Runs `$body` with `$m` bound to the inner MAC, whichever the variant.
macro_rules! each {
    ($hmac:expr, $m:ident => $body:expr) => {
        match $hmac {
            Hmac::Md5($m) => $body,
            Hmac::Sha1($m) => $body,
            Hmac::Sha224($m) => $body,
            Hmac::Sha256($m) => $body,
            Hmac::Sha384($m) => $body,
            Hmac::Sha512($m) => $body,
        }
    };
}

impl Hmac {
    pub(crate) fn update(&mut self, data: &[u8]) {
        each!(self, m => m.update(data))
    }

    /// The full MAC.
    pub(crate) fn finish(self) -> Vec<u8> {
        each!(self, m => m.finalize().into_bytes().to_vec())
    }

    /// Whether `mac` is the MAC, or its first bytes when shorter (a truncated MAC, RFC
    /// 8945 5.2.2.1), compared in constant time. An empty or over-long `mac` never is.
    pub(crate) fn verify_prefix(self, mac: &[u8]) -> bool {
        if mac.is_empty() {
            return false;
        }
        each!(self, m => m.verify_truncated_left(mac).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (key "Jefe") for the SHA-2 family, RFC 2202 for MD5 and SHA-1:
    /// the HMACs are the standard ones, independently of anything TSIG adds.
    #[test]
    fn hmacs_match_the_rfc_test_vectors() {
        let data = b"what do ya want for nothing?";
        let expect = [
            (Algorithm::HmacMd5, "750c783e6ab0b503eaa86e310a5db738"),
            (
                Algorithm::HmacSha1,
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                Algorithm::HmacSha224,
                "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
            ),
            (
                Algorithm::HmacSha256,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                Algorithm::HmacSha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                Algorithm::HmacSha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (alg, hex) in expect {
            let mut h = alg.hmac(b"Jefe");
            h.update(data);
            let mac = h.clone().finish();
            assert_eq!(to_hex(&mac), hex, "{alg}");
            assert_eq!(mac.len(), alg.output_len());
            assert!(h.clone().verify_prefix(&mac));
            assert!(h.clone().verify_prefix(&mac[..alg.shortest_mac()]));
            let mut wrong = mac.clone();
            wrong[0] ^= 1;
            assert!(!h.clone().verify_prefix(&wrong));
            assert!(!h.verify_prefix(&[]));
        }
    }

    #[test]
    fn names_round_trip_in_any_case() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.certbot_name().parse::<Algorithm>(), Ok(alg));
            assert_eq!(format!("{}.", alg.name()).parse::<Algorithm>(), Ok(alg));
            let mut wire = Vec::new();
            for label in alg.name().split('.') {
                wire.push(label.len() as u8);
                wire.extend_from_slice(label.as_bytes());
            }
            wire.push(0);
            assert_eq!(wire, alg.wire_name());
        }
        assert_eq!("HMAC-MD5".parse::<Algorithm>(), Ok(Algorithm::HmacMd5));
        assert!("hmac-sha3".parse::<Algorithm>().is_err());
        assert_eq!(Algorithm::HmacMd5.shortest_mac(), 10);
        assert_eq!(Algorithm::HmacSha256.shortest_mac(), 16);
    }

    pub(crate) fn to_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
