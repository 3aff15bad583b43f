//! What benches/axfr_encode.rs measures: the messages of an AXFR of a zone's line view,
//! written as the TCP listener takes them from [`Stream`], without the sockets, so that
//! callgrind and cachegrind count what the send path costs the server's CPU.
//!
//! Not used by the server; reached through `geoline::internal`.

use std::sync::Arc;

use hickory_proto::rr::RecordType;

use super::out::{Source, Stream};
use crate::dns::wire::query::Query;
use crate::lines::LineId;
use crate::zone::{Zone, ZoneSet};

/// Writes every message of an unsigned AXFR of `line`'s view of `zone`, each of at most
/// `message_size` bytes (the server's: [`super::out::MESSAGE_SIZE`]), passing each to
/// `each`; the number of messages, or `None` when the view has no SOA.
pub fn axfr_messages(
    zone: Zone,
    line: LineId,
    message_size: usize,
    mut each: impl FnMut(&[u8]),
) -> Option<usize> {
    let mut request = vec![0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.origin().iter() {
        request.push(u8::try_from(label.len()).ok()?);
        request.extend_from_slice(label);
    }
    request.extend_from_slice(&[0, 0, 252, 0, 1]);
    let query = Query::parse(&request).ok()?;
    let soa = zone.line_rrset(line, zone.origin(), RecordType::SOA)?;
    let origin = zone.origin().clone();
    let zones = Arc::new(ZoneSet::from_zones(vec![zone]));
    let mut stream = Stream::new(
        query.header,
        query.question,
        None,
        &origin,
        Source::Whole {
            zones,
            index: 0,
            line,
            soa,
        },
        None,
        // (The room a signature would take: what the messages are made smaller by.)
        super::out::MESSAGE_SIZE.saturating_sub(message_size),
    );
    let mut out = Vec::with_capacity(super::out::MESSAGE_SIZE);
    let mut messages = 0;
    while stream.next(&mut out) {
        each(&out);
        messages += 1;
    }
    Some(messages)
}
