//! What a TSIG MAC covers (RFC 8945 4.3): the message as it was before it was signed, the
//! TSIG variables, and for responses the MAC they answer.
//!
//! This module owns the order and the encoding of those pieces, one function per piece,
//! so that signing ([`super::sign`]) and verifying ([`super::verify`]) feed exactly the
//! same bytes. It does not find records or decide anything.

use super::algorithm::Hmac;
use super::record::{CLASS_ANY, Fields, time48};
use crate::dns::wire::{ADDITIONAL, HEADER_LEN, Header};

/// Feeds a MAC that this message answers (the request's, or the previous signed message's
/// of a stream): its length, then its bytes (RFC 8945 4.3.1, 5.3.1).
pub(crate) fn prior_mac(hmac: &mut Hmac, mac: &[u8]) {
    hmac.update(&(mac.len() as u16).to_be_bytes());
    hmac.update(mac);
}

/// Feeds `message` as it was before its TSIG record was added: `unsigned` is the message
/// without the record, whose header still counts it (`counted_tsig`) or not; the ID is
/// `original_id`, as the signer saw it before any forwarder changed it (RFC 8945 4.3.2).
pub(crate) fn message(hmac: &mut Hmac, unsigned: &[u8], original_id: u16, counted_tsig: bool) {
    let Some(mut header) = Header::read(unsigned) else {
        hmac.update(unsigned);
        return;
    };
    header.id = original_id;
    if counted_tsig {
        header.counts[ADDITIONAL] = header.counts[ADDITIONAL].wrapping_sub(1);
    }
    let mut bytes = [0u8; HEADER_LEN];
    header.write(&mut bytes);
    hmac.update(&bytes);
    hmac.update(&unsigned[HEADER_LEN..]);
}

/// Feeds the TSIG variables (RFC 8945 4.3.3): the key name, class ANY, TTL 0, the
/// algorithm name, the time, fudge, error and other data.
pub(crate) fn variables(hmac: &mut Hmac, fields: &Fields<'_>) {
    hmac.update(fields.key_name);
    hmac.update(&CLASS_ANY.to_be_bytes());
    hmac.update(&0u32.to_be_bytes());
    hmac.update(fields.algorithm);
    timers(hmac, fields);
    hmac.update(&fields.error.to_be_bytes());
    hmac.update(&(fields.other.len() as u16).to_be_bytes());
    hmac.update(fields.other);
}

/// Feeds only the time signed and the fudge: what the second and later signed messages of
/// a TCP stream cover instead of the variables (RFC 8945 5.3.1).
pub(crate) fn timers(hmac: &mut Hmac, fields: &Fields<'_>) {
    hmac.update(&time48(fields.time_signed));
    hmac.update(&fields.fudge.to_be_bytes());
}
