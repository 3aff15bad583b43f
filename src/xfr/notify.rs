//! NOTIFY out (RFC 1996): telling each configured secondary that a zone's serial moved, so
//! it asks for the new version at once instead of at its next refresh.
//!
//! Each secondary of a zone (an address and the key that signs the NOTIFY — the key
//! selects the view on a BIND secondary whose views match keys) is sent one NOTIFY over
//! UDP per new serial, retried with a doubling timeout (1 s, 2 s, 4 s ... at most 60 s,
//! [`ATTEMPTS`] times) until it answers NOERROR. A newer serial takes over from a NOTIFY
//! still being retried. A response is matched by its ID, opcode and question; its
//! signature is not checked (a forged acknowledgement only stops the retries: the
//! secondary still refreshes at the SOA's refresh interval).
//!
//! This module owns the messages, the retries and their counters. It does not decide when
//! a serial moved ([`super::Transfers::spawn`] does).

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::NotifyTarget;
use super::lock;
use crate::dns::tsig::{self, sign_request};
use crate::dns::wire::{AA, Header, QR};
use crate::exposition::Exposition;
use crate::live::Live;

/// How many times a NOTIFY is sent before giving up on an acknowledgement.
pub(crate) const ATTEMPTS: u32 = 8;
/// The first wait for an acknowledgement; doubled after each unanswered try.
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);
const NOTIFY_OPCODE: u8 = 4;

/// One secondary of one zone (by origin): which retry loop is the current one.
type TargetKey = (Name, SocketAddr, Option<Name>);

/// NOTIFYs by (zone origin, target label, result).
type Counts = Mutex<BTreeMap<(Name, String, &'static str), u64>>;

/// The NOTIFYs in flight and their counters.
#[derive(Default)]
pub(crate) struct Notifier {
    /// The generation of each target's current retry loop: an older loop stops.
    current: Arc<Mutex<HashMap<TargetKey, u64>>>,
    counts: Arc<Counts>,
}

/// The label a target's series carry: its address, and its key when signed.
fn label(target: &NotifyTarget) -> String {
    match &target.key {
        Some(key) => format!("{} key {}", target.address, key),
        None => target.address.to_string(),
    }
}

/// A NOTIFY for `zone` with `id`, as RFC 1996 3.3 shapes it: opcode NOTIFY, AA, the
/// zone's SOA as the question, and the new SOA in the answer section (3.7), as BIND and
/// Knot send it: a secondary that already has the serial need not ask.
pub(crate) fn message(zone: &Name, id: u16, soa: Option<&Record>) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    let mut answers = 0;
    {
        let mut enc = BinEncoder::new(&mut out);
        enc.set_offset(12);
        let _ = zone.emit(&mut enc);
        let _ = enc.emit_u16(RecordType::SOA.into());
        let _ = enc.emit_u16(DNSClass::IN.into());
        if let Some(soa) = soa {
            let before = enc.offset();
            if soa.emit(&mut enc).is_ok() {
                answers = 1;
            } else {
                enc.set_offset(before);
                enc.trim();
            }
        }
    }
    let mut header = Header::response(id, [1, answers, 0, 0]);
    header.set(QR, false);
    header.set(AA, true);
    header.set_opcode(NOTIFY_OPCODE);
    header.write(&mut out);
    out
}

/// Whether `response` acknowledges the NOTIFY with `id`: a response, opcode NOTIFY, its
/// rcode (`Some(0)`: NOERROR); `None`: not an answer to it.
fn acknowledgement(response: &[u8], id: u16) -> Option<u8> {
    let h = Header::read(response)?;
    (h.id == id && h.has(QR) && h.opcode() == NOTIFY_OPCODE).then_some((h.flags & 0x000F) as u8)
}

impl Notifier {
    fn count(counts: &Counts, zone: &Name, target: &str, what: &'static str) {
        *lock(counts)
            .entry((zone.clone(), target.to_string(), what))
            .or_default() += 1;
    }

    /// Stops the retries to each target `keep` says is no longer listed for its zone
    /// (a configuration reload took it, or its zone, away).
    pub(crate) fn retain(&self, keep: impl Fn(&Name, &NotifyTarget) -> bool) {
        lock(&self.current).retain(|(origin, address, key), _| {
            let target = NotifyTarget {
                address: *address,
                key: key.clone(),
            };
            keep(origin, &target)
        });
    }

    /// Drops the series of the zones `served` says are no longer served (a reload removed
    /// them): they leave `/metrics`.
    pub(crate) fn forget(&self, served: impl Fn(&Name) -> bool) {
        lock(&self.counts).retain(|(origin, _, _), _| served(origin));
    }

    /// Sends a NOTIFY of zone `origin` (its new `soa`) to each of `targets`, each in its
    /// own task, retried until acknowledged, a newer serial, the target no longer listed
    /// ([`Notifier::retain`]) or `shutdown`.
    pub(crate) fn notify(
        &self,
        origin: &Name,
        soa: Option<Record>,
        targets: &[NotifyTarget],
        live: &Arc<Live>,
        shutdown: &CancellationToken,
    ) {
        let serial = match soa.as_ref().map(|r| &r.data) {
            Some(hickory_proto::rr::RData::SOA(soa)) => soa.serial,
            _ => 0,
        };
        for target in targets {
            let key: TargetKey = (origin.clone(), target.address, target.key.clone());
            // Unique across targets and time: a target removed by a reload and listed again
            // must not make its old retry loop current again.
            static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            lock(&self.current).insert(key.clone(), generation);
            let current = self.current.clone();
            let counts = self.counts.clone();
            let target = target.clone();
            let origin = origin.clone();
            let soa = soa.clone();
            let live = live.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let still_current = || lock(&current).get(&key).copied() == Some(generation);
                let name = label(&target);
                let mut wait = FIRST_WAIT;
                for attempt in 1..=ATTEMPTS {
                    if !still_current() || shutdown.is_cancelled() {
                        return;
                    }
                    Notifier::count(&counts, &origin, &name, "sent");
                    let answered = send_once(&origin, soa.as_ref(), &target, &live, wait).await;
                    if !lock(&current).contains_key(&key) {
                        // No longer listed (its zone may be gone from `/metrics`): nothing
                        // more to count.
                        return;
                    }
                    match answered {
                        Ok(0) => {
                            Notifier::count(&counts, &origin, &name, "acked");
                            debug!(zone = %origin, serial, target = %name, attempt, "NOTIFY acknowledged");
                            return;
                        }
                        Ok(rcode) => {
                            Notifier::count(&counts, &origin, &name, "error");
                            info!(zone = %origin, serial, target = %name, rcode, attempt, "NOTIFY answered with an error");
                        }
                        Err(reason) => {
                            Notifier::count(&counts, &origin, &name, "timeout");
                            debug!(zone = %origin, serial, target = %name, attempt, reason, "NOTIFY not acknowledged");
                        }
                    }
                    wait = (wait * 2).min(MAX_WAIT);
                }
                Notifier::count(&counts, &origin, &name, "gave_up");
                warn!(zone = %origin, serial, target = %name, "NOTIFY never acknowledged; the secondary will refresh on its own");
            });
        }
    }

    /// Writes the NOTIFY series.
    pub(crate) fn render_metrics(&self, out: &mut Exposition) {
        render_empty(out);
        for ((zone, target, what), n) in lock(&self.counts).iter() {
            out.sample(
                "geoline_notify_total",
                &[
                    ("zone", &zone.to_string()),
                    ("target", target),
                    ("result", what),
                ],
                *n as f64,
            );
        }
    }
}

/// The NOTIFY family's header, for a server without transfers.
pub(crate) fn render_empty(out: &mut Exposition) {
    out.family(
        "geoline_notify_total",
        "counter",
        "NOTIFY messages to secondaries by zone, target and result: sent, acked, error (answered with an rcode other than NOERROR), timeout (not answered in time; retried), gave_up.",
    );
}

/// Sends one NOTIFY to `target` and waits up to `wait` for its acknowledgement; the rcode
/// it got, or why none.
async fn send_once(
    origin: &Name,
    soa: Option<&Record>,
    target: &NotifyTarget,
    live: &Live,
    wait: Duration,
) -> Result<u8, &'static str> {
    let id = getrandom::u32().map_or(0, |n| n as u16);
    let mut message = message(origin, id, soa);
    if let Some(name) = &target.key {
        let keys = live.keys.load();
        let Some(key) = keys.get(name) else {
            return Err("the key is no longer configured");
        };
        sign_request(key, &mut message, tsig::now());
    }
    let local: SocketAddr = match target.address {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|_| "cannot open a UDP socket")?;
    socket
        .connect(target.address)
        .await
        .map_err(|_| "cannot reach the address")?;
    socket.send(&message).await.map_err(|_| "cannot send")?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Err("no answer in time"),
            // ICMP port unreachable and the like: wait out the attempt, then retry.
            Ok(Err(_)) => {
                tokio::time::sleep_until(deadline).await;
                return Err("refused by the network");
            }
            Ok(Ok(n)) => n,
        };
        if let Some(rcode) = buf.get(..n).and_then(|r| acknowledgement(r, id)) {
            return Ok(rcode);
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, OpCode};

    use super::*;

    #[test]
    fn a_notify_is_the_zone_soa_question_with_aa() {
        let zone = Name::from_ascii("example.com.").expect("name");
        let soa = Record::from_rdata(
            zone.clone(),
            300,
            hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                Name::from_ascii("ns1.example.com.").expect("name"),
                Name::from_ascii("h.example.com.").expect("name"),
                7,
                1,
                2,
                3,
                4,
            )),
        );
        let bytes = message(&zone, 0x1234, Some(&soa));
        let m = Message::from_vec(&bytes).expect("parses");
        assert_eq!(m.answers, [soa]);
        assert_eq!(m.id, 0x1234);
        assert_eq!(m.op_code, OpCode::Notify);
        assert!(m.authoritative);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        assert_eq!(m.queries[0].name(), &zone);
        let mut ack = bytes.clone();
        ack[2] |= 0x80;
        assert_eq!(acknowledgement(&ack, 0x1234), Some(0));
        assert_eq!(acknowledgement(&ack, 0x1235), None);
        assert_eq!(acknowledgement(&bytes, 0x1234), None);
    }
}
