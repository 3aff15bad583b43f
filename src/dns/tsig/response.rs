//! Verifying the answers to a request geoline signed itself (a zone transfer it pulls as
//! a secondary): the first message over the request's MAC and the full variables, each
//! later signed one over the previous MAC, the unsigned messages since and only the
//! timers, at most 99 unsigned in a row, the last one signed (RFC 8945 5.3.1).
//!
//! This module owns that chain, mirroring [`super::sign::StreamSigner`]. It does not
//! send requests nor read what the messages say.

use std::sync::Arc;

use super::algorithm::Hmac;
use super::digest;
use super::key::Key;
use super::record::{self, Found};
use super::sign::MAX_STREAM_RUN;

/// Why an answer to a signed request is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerTsigError {
    /// The first message, or the last, carries no TSIG record, or more than 99 in a row
    /// do not.
    #[error("the answer is not signed as RFC 8945 requires ({0})")]
    Unsigned(&'static str),
    /// Signed with another key or algorithm than the request.
    #[error("the answer is signed with another key than the request")]
    OtherKey,
    /// The other side refused the request's signature (its TSIG error: BADKEY, BADSIG,
    /// BADTIME).
    #[error("the primary refused the request's signature (TSIG error {0})")]
    Refused(u16),
    /// The MAC does not verify.
    #[error("the answer's signature does not verify (BADSIG)")]
    BadSig,
    /// Signed too far from now.
    #[error("the answer was signed {0} s away from this server's clock (BADTIME)")]
    BadTime(u64),
    /// A TSIG record that cannot be read or is not last.
    #[error("the answer's TSIG record is malformed: {0}")]
    Malformed(&'static str),
}

/// Verifies the messages answering one signed request, in order.
pub(crate) struct AnswerVerifier {
    key: Arc<Key>,
    /// The MAC the next signed message chains to.
    prior_mac: Vec<u8>,
    /// The digest of the unsigned messages since the last signed one.
    running: Option<(Hmac, usize)>,
    /// Whether a message was verified yet.
    started: bool,
}

impl AnswerVerifier {
    /// A verifier for the answers to a request signed with `key`, whose MAC was
    /// `request_mac`.
    pub(crate) fn new(key: Arc<Key>, request_mac: Vec<u8>) -> AnswerVerifier {
        AnswerVerifier {
            key,
            prior_mac: request_mac,
            running: None,
            started: false,
        }
    }

    fn fresh(&self) -> Hmac {
        let mut hmac = self.key.algorithm().hmac(self.key.secret().bytes());
        digest::prior_mac(&mut hmac, &self.prior_mac);
        hmac
    }

    /// Verifies the next message at `now` (seconds since the epoch); returns it without
    /// its TSIG record.
    pub(crate) fn next(&mut self, message: &[u8], now: u64) -> Result<Vec<u8>, AnswerTsigError> {
        let (start, tsig) = match record::scan(message).tsig {
            Found::Malformed(reason) => return Err(AnswerTsigError::Malformed(reason)),
            Found::None if !self.started => {
                return Err(AnswerTsigError::Unsigned("its first message is not signed"));
            }
            Found::None => {
                let mut running = match self.running.take() {
                    Some(running) => running,
                    None => (self.fresh(), 0),
                };
                running.0.update(message);
                running.1 += 1;
                if running.1 >= MAX_STREAM_RUN {
                    return Err(AnswerTsigError::Unsigned("100 messages in a row are not"));
                }
                self.running = Some(running);
                return Ok(message.to_vec());
            }
            Found::Last { start, record } => (start, record),
        };
        if tsig.key_name != self.key.wire_name()
            || tsig.algorithm != self.key.algorithm().wire_name()
        {
            return Err(AnswerTsigError::OtherKey);
        }
        if tsig.error != 0 {
            return Err(AnswerTsigError::Refused(tsig.error));
        }
        let algorithm = self.key.algorithm();
        if tsig.mac.len() > algorithm.output_len() || tsig.mac.len() < algorithm.shortest_mac() {
            return Err(AnswerTsigError::Malformed(
                "a MAC of a length RFC 8945 forbids",
            ));
        }
        let fields = tsig.fields();
        let mut hmac = match self.running.take() {
            Some((hmac, _)) => hmac,
            None => self.fresh(),
        };
        digest::message(&mut hmac, &message[..start], tsig.original_id, true);
        if self.started {
            digest::timers(&mut hmac, &fields);
        } else {
            digest::variables(&mut hmac, &fields);
        }
        if !hmac.verify_prefix(tsig.mac) {
            return Err(AnswerTsigError::BadSig);
        }
        let skew = now.abs_diff(tsig.time_signed);
        if skew > u64::from(tsig.fudge) {
            return Err(AnswerTsigError::BadTime(skew));
        }
        self.prior_mac = tsig.mac.to_vec();
        self.started = true;
        let mut unsigned = message[..start].to_vec();
        record::add_to_additional_count(&mut unsigned, -1);
        Ok(unsigned)
    }

    /// Whether the answer ended as it must: its last message signed.
    pub(crate) fn finish(&self) -> Result<(), AnswerTsigError> {
        if self.started && self.running.is_none() {
            Ok(())
        } else {
            Err(AnswerTsigError::Unsigned("its last message is not signed"))
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;

    use super::*;
    use crate::dns::tsig::{Algorithm, Secret, sign_request};
    use crate::dns::wire::Header;

    fn key(secret: &[u8]) -> Arc<Key> {
        Arc::new(
            Key::new(
                Name::from_ascii("xfr.").expect("name"),
                Algorithm::HmacSha256,
                Secret::new(secret.to_vec()),
            )
            .expect("key"),
        )
    }

    /// A response with one question, `a` + `body` of type A: distinct messages.
    fn message(id: u16, body: u8) -> Vec<u8> {
        let mut m = vec![0u8; 12];
        Header::response(id, [1, 0, 0, 0]).write(&mut m);
        m.extend_from_slice(&[1, b'a' + body, 0, 0, 1, 0, 1]);
        m
    }

    /// A stream as the server side signs it: every `every` messages and the last.
    fn stream(key: &Arc<Key>, request: &mut Vec<u8>, n: usize, every: usize) -> Vec<Vec<u8>> {
        let keys = crate::dns::tsig::KeyRing::new([(**key).clone()]).expect("ring");
        sign_request(key, request, crate::dns::tsig::now());
        let crate::dns::tsig::Checked::Verified(verified) =
            crate::dns::tsig::check(&keys, request, crate::dns::tsig::now)
        else {
            panic!("the request verifies");
        };
        let mut signer = verified.signer().stream(every);
        (0..n)
            .map(|i| {
                let mut m = message(7, i as u8);
                signer.next(&mut m, i + 1 == n, crate::dns::tsig::now());
                m
            })
            .collect()
    }

    #[test]
    fn a_signed_stream_verifies_and_a_changed_byte_does_not() {
        let k = key(b"0123456789abcdef");
        let mut request = message(7, 25);
        let messages = stream(&k, &mut request, 5, 2);
        let request_mac = match record::scan(&request).tsig {
            Found::Last { record, .. } => record.mac.to_vec(),
            _ => panic!("signed"),
        };
        let mut verifier = AnswerVerifier::new(k.clone(), request_mac.clone());
        for (i, m) in messages.iter().enumerate() {
            let plain = verifier.next(m, crate::dns::tsig::now()).expect("verifies");
            assert_eq!(plain, message(7, i as u8));
        }
        assert_eq!(verifier.finish(), Ok(()));

        let mut verifier = AnswerVerifier::new(k.clone(), request_mac.clone());
        let mut bad = messages.clone();
        bad[1][13] ^= 0x20; // in an unsigned message, covered by the next signature
        assert!(verifier.next(&bad[0], crate::dns::tsig::now()).is_ok());
        assert!(verifier.next(&bad[1], crate::dns::tsig::now()).is_ok());
        assert_eq!(
            verifier.next(&bad[2], crate::dns::tsig::now()),
            Err(AnswerTsigError::BadSig)
        );

        let mut other = AnswerVerifier::new(key(b"another secret!!"), request_mac.clone());
        assert_eq!(
            other.next(&messages[0], crate::dns::tsig::now()),
            Err(AnswerTsigError::BadSig)
        );
        let mut late = AnswerVerifier::new(k.clone(), request_mac.clone());
        assert!(matches!(
            late.next(&messages[0], crate::dns::tsig::now() + 1000),
            Err(AnswerTsigError::BadTime(skew)) if skew >= 1000
        ));
        let mut cut = AnswerVerifier::new(k, request_mac);
        assert!(cut.next(&messages[0], crate::dns::tsig::now()).is_ok());
        assert!(cut.next(&messages[1], crate::dns::tsig::now()).is_ok());
        assert!(cut.finish().is_err(), "ends on an unsigned message");
        let mut unsigned = AnswerVerifier::new(key(b"0123456789abcdef"), Vec::new());
        assert!(matches!(
            unsigned.next(&message(7, 1), crate::dns::tsig::now()),
            Err(AnswerTsigError::Unsigned(_))
        ));
    }
}
