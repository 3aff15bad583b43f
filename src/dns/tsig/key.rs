//! TSIG keys as the server holds them: a name, an algorithm and a secret that is never
//! shown, and the ring of keys a request's key name is looked up in.
//!
//! This module owns the identity a verified request carries ([`Key`]: what the UPDATE
//! policy and, later, zone transfers decide on) and the rule that a secret is never
//! printed: [`Secret`]'s `Debug` says only how long it is. Reading keys from the
//! configuration is [`super::config`]'s job.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hickory_proto::rr::Name;

use super::algorithm::Algorithm;
use crate::dns::wire::{MAX_NAME, write_name_lower};

/// A key's shared secret: the raw bytes, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from its raw bytes (decoded from base64).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

/// A TSIG key: the identity a signed request is verified as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    name: Name,
    /// `name` in wire form, lower-cased: what requests are matched against and the MAC
    /// covers.
    wire_name: Vec<u8>,
    algorithm: Algorithm,
    secret: Secret,
    /// The shortest MAC accepted from a client: the full output unless the key allows
    /// truncation (BIND's `hmac-sha256-128`); between [`Algorithm::shortest_mac`] and
    /// [`Algorithm::output_len`].
    min_mac_len: usize,
}

/// Why a key cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An empty secret authenticates nothing.
    #[error("the secret is empty")]
    EmptySecret,
    /// The accepted truncation is outside what RFC 8945 5.2.2.1 allows for the algorithm.
    #[error(
        "a MAC truncated to {bits} bits is not allowed for {algorithm} (from {min} to {max} bits, in whole bytes)"
    )]
    Truncation {
        /// The algorithm.
        algorithm: Algorithm,
        /// The truncation asked for.
        bits: usize,
        /// The shortest allowed.
        min: usize,
        /// The full output.
        max: usize,
    },
}

impl Key {
    /// A key that accepts only full-length MACs.
    pub fn new(name: Name, algorithm: Algorithm, secret: Secret) -> Result<Key, KeyError> {
        Key::truncated(name, algorithm, secret, algorithm.output_len() * 8)
    }

    /// A key that also accepts MACs truncated to `bits` (RFC 8945 5.2.2.1; BIND writes
    /// the algorithm `hmac-sha256-128`).
    pub fn truncated(
        name: Name,
        algorithm: Algorithm,
        secret: Secret,
        bits: usize,
    ) -> Result<Key, KeyError> {
        if secret.0.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        let (min, max) = (algorithm.shortest_mac() * 8, algorithm.output_len() * 8);
        if !bits.is_multiple_of(8) || !(min..=max).contains(&bits) {
            return Err(KeyError::Truncation {
                algorithm,
                bits,
                min,
                max,
            });
        }
        let mut buf = [0u8; MAX_NAME];
        let wire_name = write_name_lower(&name, &mut buf).to_vec();
        Ok(Key {
            name,
            wire_name,
            algorithm,
            secret,
            min_mac_len: bits / 8,
        })
    }

    /// The key's name, as configured.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The key's name in wire form, lower-cased.
    pub(crate) fn wire_name(&self) -> &[u8] {
        &self.wire_name
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The shortest MAC this key accepts, in bytes.
    pub fn min_mac_len(&self) -> usize {
        self.min_mac_len
    }
}

/// The keys a server knows, by name. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRing {
    /// By [`Key::wire_name`]: key names are compared without regard to letter case.
    keys: Arc<HashMap<Vec<u8>, Arc<Key>>>,
}

/// Two keys of one name: a request names its key, so the name must say which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{0}` is declared twice")]
pub struct DuplicateKey(pub Name);

impl KeyRing {
    /// A ring of `keys`; refuses two keys of one name.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Result<KeyRing, DuplicateKey> {
        let mut map = HashMap::new();
        for key in keys {
            if let Some(previous) = map.insert(key.wire_name.clone(), Arc::new(key)) {
                return Err(DuplicateKey(previous.name.clone()));
            }
        }
        Ok(KeyRing {
            keys: Arc::new(map),
        })
    }

    /// The key named `wire_name` (in wire form, lower-cased).
    pub(crate) fn find(&self, wire_name: &[u8]) -> Option<&Arc<Key>> {
        self.keys.get(wire_name)
    }

    /// The key called `name`, in any letter case.
    pub fn get(&self, name: &Name) -> Option<&Arc<Key>> {
        let mut buf = [0u8; MAX_NAME];
        self.find(write_name_lower(name, &mut buf))
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys in DNS name order (for `check` and `/status`).
    pub fn keys(&self) -> Vec<&Arc<Key>> {
        let mut keys: Vec<_> = self.keys.values().collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    #[test]
    fn secrets_are_never_printed() {
        let key = Key::new(
            name("k."),
            Algorithm::HmacSha256,
            Secret::new(b"hunter2-hunter2".to_vec()),
        )
        .expect("key");
        let ring = KeyRing::new([key]).expect("ring");
        let shown = format!("{ring:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("104, 117"), "{shown}");
        assert!(shown.contains("15 bytes, redacted"), "{shown}");
    }

    #[test]
    fn names_match_in_any_case_and_twice_is_refused() {
        let key = |n: &str| Key::new(name(n), Algorithm::HmacSha1, Secret::new(vec![1; 20]));
        let ring = KeyRing::new([key("Update.Example.").expect("key")]).expect("ring");
        assert!(ring.get(&name("update.EXAMPLE.")).is_some());
        assert!(ring.get(&name("other.example.")).is_none());
        let twice = KeyRing::new([
            key("a.example.").expect("key"),
            key("A.example.").expect("key"),
        ]);
        assert!(twice.is_err());
    }

    #[test]
    fn truncation_is_bounded_by_the_rfc() {
        let k = |alg, bits| Key::truncated(name("k."), alg, Secret::new(vec![1; 16]), bits);
        assert_eq!(
            k(Algorithm::HmacSha256, 128).map(|k| k.min_mac_len()),
            Ok(16)
        );
        assert!(k(Algorithm::HmacSha256, 120).is_err());
        assert!(k(Algorithm::HmacSha256, 264).is_err());
        assert!(k(Algorithm::HmacSha256, 130).is_err());
        assert_eq!(k(Algorithm::HmacMd5, 80).map(|k| k.min_mac_len()), Ok(10));
        assert_eq!(
            Key::new(name("k."), Algorithm::HmacSha1, Secret::new(Vec::new())),
            Err(KeyError::EmptySecret)
        );
    }
}
