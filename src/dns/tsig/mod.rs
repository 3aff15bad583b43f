//! TSIG (RFC 8945): shared-secret signatures on DNS messages, the identity of dynamic
//! updates and, later, of zone transfers.
//!
//! The responder ([`crate::dns::Responder::answer`]) calls [`check`] on every message the
//! answer cache did not answer (the cache's reader takes nothing but an OPT record in the
//! additional section, so a signed message always gets here, and an unsigned one pays
//! nothing on the cached path). [`check`] says:
//! - [`Checked::Unsigned`]: no TSIG record; the message goes on unchanged;
//! - [`Checked::Verified`]: the key, the message without its TSIG (what the opcode's arm
//!   reads), and the [`ResponseSigner`] that signs the response;
//! - [`Checked::Rejected`]: FORMERR (a TSIG record not last, unreadable, or with a MAC
//!   length RFC 8945 5.2.2.1 forbids), or NOTAUTH with BADKEY or BADSIG (unsigned) or
//!   BADTIME or BADTRUNC (signed; BADTIME with the server's time in the other data).
//!
//! The modules, one job each: [`algorithm`] (the six HMACs and their names), [`key`]
//! (keys, secrets that never print, the key ring), [`record`] (the TSIG record on the
//! wire), [`digest`] (what a MAC covers), [`verify`] (the RFC's checks in order),
//! [`sign`] (requests, responses and TCP streams), [`reject`] (the responses to refused
//! requests), [`response`] (a client's check of the answers to its signed request: a
//! zone transfer pulled, an ACME challenge's UPDATE), [`config`] (the `[[key]]` section and BIND key files).
//!
//! Replays: the time check is the only one, as in BIND and Knot. RFC 8945 5.2.3 adds that
//! a server SHOULD keep the newest time signed seen per key and answer BADTIME to an
//! earlier one; neither BIND's `dns_tsig_verify` nor Knot keeps such a cache (Knot only
//! requires each message of one TCP stream not to be signed before the previous one),
//! and geoline does not either: two hosts sharing a key (certbot here, cert-manager
//! there) with clocks a few seconds apart, or one client's parallel updates arriving out
//! of order, would be refused, and a client retrying over UDP resends the very same
//! signed message, which must get the same answer. What a replay within the fudge can do
//! is bounded: queries and transfers give an eavesdropper nothing it has not seen, an
//! UPDATE's additions and deletions are idempotent, and one that must not apply twice
//! carries prerequisites (RFC 2136 3.2), which the first application makes false.
//!
//! It does not decide what a verified key may do: the UPDATE policy does.

pub mod algorithm;
pub(crate) mod bind_file;
pub mod config;
pub(crate) mod digest;
pub mod key;
pub(crate) mod record;
pub(crate) mod reject;
pub mod response;
pub mod sign;
pub mod verify;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

pub use algorithm::Algorithm;
pub use key::{Key, KeyRing, Secret};
pub use response::AnswerTsigError;
pub use sign::{FUDGE, ResponseSigner, StreamSigner, sign_request};
pub use verify::{Checked, Rejection, Verified, check, error};

/// The server's clock in seconds since the epoch, as TSIG's time fields count.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
