//! Signing: a request as a client signs it, a response to a verified request, and the
//! messages of a TCP stream one after the other (RFC 8945 4.3, 5.3, 5.3.1).
//!
//! This module owns which MAC each signed message chains to and the TSIG fields geoline
//! writes (the fudge, the time). It does not decide whether a message is signed
//! ([`super::verify`] and the responder do), and it never sees a secret outside [`Key`].

use std::sync::Arc;

use super::algorithm::Hmac;
use super::digest;
use super::key::Key;
use super::record::{self, Fields};
use crate::dns::wire::Header;

/// The fudge geoline writes in the TSIG records it signs: five minutes, RFC 8945 10's
/// recommendation and what BIND, Knot, lego and dnspython use.
pub const FUDGE: u16 = 300;

/// The most messages of a TCP stream one TSIG may cover (RFC 8945 5.3.1: a verifier
/// accepts up to 99 unsigned messages between two signed ones).
pub const MAX_STREAM_RUN: usize = 100;

/// The TSIG fields of a message `key` signs at `time_signed` (its ID, `id`, is the
/// original ID).
fn fields<'a>(key: &'a Key, id: u16, time_signed: u64, error: u16, other: &'a [u8]) -> Fields<'a> {
    Fields {
        key_name: key.wire_name(),
        algorithm: key.algorithm().wire_name(),
        time_signed,
        fudge: FUDGE,
        original_id: id,
        error,
        other,
    }
}

/// The ID of a message that holds a header; 0 otherwise (nothing to sign then anyway).
fn id_of(message: &[u8]) -> u16 {
    Header::read(message).map_or(0, |h| h.id)
}

/// Appends to `message` a TSIG record whose MAC `hmac` (already fed with what comes
/// before the message) computes over `message` and `fields`, truncated to `mac_len`;
/// returns the MAC as sent.
fn seal(mut hmac: Hmac, message: &mut Vec<u8>, fields: &Fields<'_>, mac_len: usize) -> Vec<u8> {
    digest::message(&mut hmac, message, fields.original_id, false);
    digest::variables(&mut hmac, fields);
    let mut mac = hmac.finish();
    mac.truncate(mac_len);
    record::append(message, fields, &mac);
    mac
}

/// Signs `request` with `key` at `now` (seconds since the epoch), as a client does;
/// returns the request's MAC, which the response's signature covers.
pub fn sign_request(key: &Key, request: &mut Vec<u8>, now: u64) -> Vec<u8> {
    let id = id_of(request);
    let fields = fields(key, id, now, 0, &[]);
    let mac_len = key.algorithm().output_len();
    seal(
        key.algorithm().hmac(key.secret().bytes()),
        request,
        &fields,
        mac_len,
    )
}

/// Signs responses to one verified request: what a response's MAC chains to.
#[derive(Debug, Clone)]
pub struct ResponseSigner {
    pub(crate) key: Arc<Key>,
    /// The request's MAC as received (truncated if it was).
    pub(crate) request_mac: Vec<u8>,
    /// How long the response's MAC is: as long as the request's.
    pub(crate) mac_len: usize,
}

impl ResponseSigner {
    /// The key the request was verified with.
    pub fn key(&self) -> &Arc<Key> {
        &self.key
    }

    /// How many bytes the TSIG record of a response adds: a response must leave that
    /// much room under the transport's limit.
    pub fn record_len(&self) -> usize {
        fields(&self.key, 0, 0, 0, &[]).record_len(self.mac_len)
    }

    /// Signs `response` at `now` with TSIG error `error` and `other` data (empty but for
    /// BADTIME): a keyed hash over the request's MAC, the response and the variables.
    pub(crate) fn sign_with(
        &self,
        response: &mut Vec<u8>,
        time_signed: u64,
        error: u16,
        other: &[u8],
    ) -> Vec<u8> {
        let fields = fields(&self.key, id_of(response), time_signed, error, other);
        let mut hmac = self.hmac();
        digest::prior_mac(&mut hmac, &self.request_mac);
        seal(hmac, response, &fields, self.mac_len)
    }

    /// Signs `response` (a complete message without TSIG) at `now`, seconds since the
    /// epoch.
    pub fn sign(&self, response: &mut Vec<u8>, now: u64) {
        self.sign_with(response, now, 0, &[]);
    }

    /// A signer for the messages of a TCP stream answering the request (a zone transfer):
    /// one TSIG every `every` messages (1 to [`MAX_STREAM_RUN`], clamped), the first and
    /// the last always signed.
    pub fn stream(&self, every: usize) -> StreamSigner {
        StreamSigner {
            signer: self.clone(),
            prior_mac: self.request_mac.clone(),
            running: None,
            every: every.clamp(1, MAX_STREAM_RUN),
            started: false,
        }
    }

    fn hmac(&self) -> Hmac {
        self.key.algorithm().hmac(self.key.secret().bytes())
    }
}

/// Signs the messages of one TCP stream in order (RFC 8945 5.3.1): the first as a
/// response (over the request's MAC), each later signed one over the previous MAC, the
/// unsigned messages since, itself, and only the time and fudge.
#[derive(Clone)]
pub struct StreamSigner {
    signer: ResponseSigner,
    /// The MAC the next signature chains to.
    prior_mac: Vec<u8>,
    /// The digest of the messages sent unsigned since the last signed one, with what they
    /// chain to; `None` before the first message and right after a signature.
    running: Option<(Hmac, usize)>,
    every: usize,
    /// Whether the first message was signed: it chains to the request's MAC and covers
    /// the full variables.
    started: bool,
}

impl std::fmt::Debug for StreamSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSigner")
            .field("key", self.signer.key.name())
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl StreamSigner {
    /// Feeds the next message of the stream (complete, without TSIG), signing it when it
    /// is the first, the `every`-th since the last signed one, or `last`. Returns whether
    /// it was signed (a TSIG record appended).
    pub fn next(&mut self, message: &mut Vec<u8>, last: bool, now: u64) -> bool {
        let first = !self.started;
        self.started = true;
        let unsigned_before = self.running.as_ref().map_or(0, |(_, n)| *n);
        let sign = first || last || unsigned_before + 1 >= self.every;
        if !sign {
            let (hmac, n) = self.running.get_or_insert_with(|| {
                let mut hmac = self.signer.hmac();
                digest::prior_mac(&mut hmac, &self.prior_mac);
                (hmac, 0)
            });
            hmac.update(message);
            *n += 1;
            return false;
        }
        let id = id_of(message);
        let mac = if first {
            self.signer.sign_with(message, now, 0, &[])
        } else {
            let mut hmac = match self.running.take() {
                Some((hmac, _)) => hmac,
                None => {
                    let mut hmac = self.signer.hmac();
                    digest::prior_mac(&mut hmac, &self.prior_mac);
                    hmac
                }
            };
            let fields = fields(&self.signer.key, id, now, 0, &[]);
            hmac.update(message);
            digest::timers(&mut hmac, &fields);
            let mut mac = hmac.finish();
            mac.truncate(self.signer.mac_len);
            record::append(message, &fields, &mac);
            mac
        };
        self.running = None;
        self.prior_mac = mac;
        true
    }
}
