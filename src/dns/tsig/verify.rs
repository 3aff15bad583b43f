//! Verifying a signed request (RFC 8945 5.2): key, MAC, time, truncation, in that order,
//! each failure with the response the RFC prescribes.
//!
//! This module owns the decision a server makes about a request's TSIG: [`check`] says
//! whether the message is unsigned, verified (with the key it was verified with and the
//! signer of its response), or rejected (with what the rejection says and whether it is
//! signed). It does not write responses ([`super::reject`] writes rejections, the
//! responder the rest).

use std::sync::Arc;

use super::digest;
use super::key::{Key, KeyRing};
use super::record::{self, Found, Scan, TsigRecord};
use super::sign::ResponseSigner;

/// TSIG error codes (RFC 8945 3, the IANA registry).
pub mod error {
    /// The MAC does not verify.
    pub const BADSIG: u16 = 16;
    /// The key, or its algorithm, is not known.
    pub const BADKEY: u16 = 17;
    /// The time signed is outside the fudge around the server's clock.
    pub const BADTIME: u16 = 18;
    /// The MAC is truncated below what the key accepts.
    pub const BADTRUNC: u16 = 22;
}

/// What the TSIG step made of a message.
#[derive(Debug)]
pub enum Checked {
    /// No TSIG record: the message goes on as it came.
    Unsigned,
    /// Verified: the message without its TSIG, the key, and the signer of the response.
    Verified(Verified),
    /// Refused: answered with [`Rejection`]'s response, nothing else done.
    Rejected(Rejection),
}

/// A request whose TSIG verified.
#[derive(Debug)]
pub struct Verified {
    /// The request without its TSIG record, the additional count lowered by one: what
    /// every later reader reads (the ID is the one received).
    message: Vec<u8>,
    signer: ResponseSigner,
}

impl Verified {
    /// The request without its TSIG record.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The key the request was signed with: the requester's identity.
    pub fn key(&self) -> &Arc<Key> {
        &self.signer.key
    }

    /// What signs the response (and, for a transfer, every message of the stream).
    pub fn signer(&self) -> &ResponseSigner {
        &self.signer
    }
}

/// A request the TSIG step refused, and what the response to it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// FORMERR (a TSIG record misplaced or unreadable, a MAC length the RFC forbids) or
    /// NOTAUTH (the key, the MAC, the time or the truncation refused).
    pub(crate) kind: RejectionKind,
    /// The TTL of the request's OPT record, which the response answers with one.
    pub(crate) opt_ttl: Option<u32>,
}

/// See [`Rejection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RejectionKind {
    /// FORMERR without a TSIG record.
    Malformed(&'static str),
    /// NOTAUTH with an unsigned TSIG record carrying `error` (BADKEY, BADSIG: RFC 8945
    /// 5.3.2 forbids signing them).
    Unsigned {
        error: u16,
        key_name: Vec<u8>,
        algorithm: Vec<u8>,
        time_signed: u64,
        fudge: u16,
    },
    /// NOTAUTH with a TSIG record signed with the request's key: BADTIME (the server's
    /// time in the other data) and BADTRUNC.
    Signed {
        error: u16,
        signer: SignerForRejection,
        time_signed: u64,
        other: Vec<u8>,
    },
}

/// The signer of a signed rejection (compared by key name only).
#[derive(Debug, Clone)]
pub(crate) struct SignerForRejection(pub(crate) ResponseSigner);

impl PartialEq for SignerForRejection {
    fn eq(&self, other: &Self) -> bool {
        self.0.key.name() == other.0.key.name() && self.0.request_mac == other.0.request_mac
    }
}

impl Eq for SignerForRejection {}

impl Rejection {
    /// The TSIG error code the response carries; `None` for a FORMERR.
    pub fn tsig_error(&self) -> Option<u16> {
        match &self.kind {
            RejectionKind::Malformed(_) => None,
            RejectionKind::Unsigned { error, .. } | RejectionKind::Signed { error, .. } => {
                Some(*error)
            }
        }
    }

    /// The key the request named (dotted, lower-cased), for the log; `None` for a
    /// FORMERR.
    pub fn key_name(&self) -> Option<String> {
        match &self.kind {
            RejectionKind::Malformed(_) => None,
            RejectionKind::Unsigned { key_name, .. } => Some(dotted(key_name)),
            RejectionKind::Signed { signer, .. } => Some(dotted(signer.0.key.wire_name())),
        }
    }

    /// Why, for the log.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            RejectionKind::Malformed(reason) => reason,
            _ => match self.tsig_error() {
                Some(error::BADKEY) => "unknown TSIG key or algorithm",
                Some(error::BADSIG) => "TSIG MAC does not verify",
                Some(error::BADTIME) => "TSIG time outside the fudge",
                _ => "TSIG MAC truncated below what the key accepts",
            },
        }
    }
}

/// A name in wire form, dotted; bytes outside printable ASCII escaped as `\DDD`.
fn dotted(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        let label = wire.get(at + 1..at + 1 + usize::from(len)).unwrap_or(&[]);
        for &b in label {
            match b {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
        at += 1 + usize::from(len);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Checks `message`'s TSIG against `keys`; `now` reads the clock (seconds since the epoch,
/// [`super::now`]), only for a signed message.
pub fn check(keys: &KeyRing, message: &[u8], now: impl FnOnce() -> u64) -> Checked {
    let Scan { tsig, opt_ttl } = record::scan(message);
    let (start, tsig) = match tsig {
        Found::None => return Checked::Unsigned,
        Found::Malformed(reason) => {
            return Checked::Rejected(Rejection {
                kind: RejectionKind::Malformed(reason),
                opt_ttl,
            });
        }
        Found::Last { start, record } => (start, record),
    };
    match verify(keys, message, start, &tsig, now()) {
        Ok(signer) => {
            let mut unsigned = message[..start].to_vec();
            record::add_to_additional_count(&mut unsigned, -1);
            Checked::Verified(Verified {
                message: unsigned,
                signer,
            })
        }
        Err(kind) => Checked::Rejected(Rejection { kind, opt_ttl }),
    }
}

/// RFC 8945 5.2's checks in its order: key (5.2.1), MAC with the truncation rules
/// (5.2.2, 5.2.2.1), time (5.2.3), truncation policy (5.2.4).
fn verify(
    keys: &KeyRing,
    message: &[u8],
    start: usize,
    tsig: &TsigRecord<'_>,
    now: u64,
) -> Result<ResponseSigner, RejectionKind> {
    let unsigned_error = |error| RejectionKind::Unsigned {
        error,
        key_name: tsig.key_name.clone(),
        algorithm: tsig.algorithm.clone(),
        time_signed: tsig.time_signed,
        fudge: tsig.fudge,
    };
    let key = match keys.find(&tsig.key_name) {
        Some(key) if key.algorithm().wire_name() == tsig.algorithm.as_slice() => key,
        _ => return Err(unsigned_error(error::BADKEY)),
    };
    let algorithm = key.algorithm();
    let mac_len = tsig.mac.len();
    if mac_len > algorithm.output_len() {
        return Err(RejectionKind::Malformed(
            "a TSIG MAC longer than its algorithm's",
        ));
    }
    if mac_len < algorithm.shortest_mac() {
        return Err(RejectionKind::Malformed(
            "a TSIG MAC truncated below what RFC 8945 allows",
        ));
    }
    let mut hmac = algorithm.hmac(key.secret().bytes());
    digest::message(&mut hmac, &message[..start], tsig.original_id, true);
    digest::variables(&mut hmac, &tsig.fields());
    if !hmac.verify_prefix(tsig.mac) {
        return Err(unsigned_error(error::BADSIG));
    }
    let signer = ResponseSigner {
        key: key.clone(),
        request_mac: tsig.mac.to_vec(),
        mac_len,
    };
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        // Signed with the request's time, so that the requester can verify it whatever
        // its clock says, and the server's time in the other data (RFC 8945 5.2.3).
        return Err(RejectionKind::Signed {
            error: error::BADTIME,
            signer: SignerForRejection(signer),
            time_signed: tsig.time_signed,
            other: record::time48(now).to_vec(),
        });
    }
    if mac_len < key.min_mac_len() {
        return Err(RejectionKind::Signed {
            error: error::BADTRUNC,
            signer: SignerForRejection(ResponseSigner {
                mac_len: algorithm.output_len(),
                ..signer
            }),
            time_signed: now,
            other: Vec::new(),
        });
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::dotted;

    #[test]
    fn key_names_are_logged_dotted_and_escaped() {
        assert_eq!(dotted(b"\x04test\x03key\x00"), "test.key.");
        assert_eq!(dotted(b"\x03a.b\x02\x00\n\x00"), "a\\.b.\\000\\010.");
        assert_eq!(dotted(b"\x00"), ".");
    }
}
