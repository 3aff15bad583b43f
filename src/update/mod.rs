//! Dynamic updates (RFC 2136): a signed UPDATE message changes a zone, durably.
//!
//! [`process`] is the whole of RFC 2136 as a pure function of (zone, request, the
//! sender's grants): the zone section and the form of every RR ([`message`]), the
//! prerequisites ([`prereq`]), the policy ([`policy`]), the changes and the rules that keep
//! a zone whole ([`apply`], over a [`draft`] of the data), and the serial. It returns the
//! new zone and the journal entry, or the rcode. [`replay`] applies journal entries to a
//! zone loaded from its file. [`store::Updates`] is the part with I/O and time: the journal
//! ([`journal`]) written and synced before NOERROR, the new zone swapped in like a
//! reload's, the per-key rate limit, the counters and the status; `Responder::answer`
//! hands it every UPDATE message.
//!
//! This module does not verify TSIG (the responder hands it the key that signed a request,
//! if any) and does not answer queries: a new zone snapshot does that.

pub(crate) mod apply;
pub(crate) mod config;
pub(crate) mod draft;
pub(crate) mod flush;
pub(crate) mod journal;
pub(crate) mod measure;
pub(crate) mod message;
pub(crate) mod policy;
pub(crate) mod prereq;
pub(crate) mod store;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::lines::LineSet;
use crate::zone::{Layer, Zone};
use draft::Draft;
use journal::Entry;
use message::{Request, Update};
use policy::Grant;

pub use config::UpdateConfig;
pub use journal::JournalError;
pub use store::Updates;

/// What an update that changed something gives: the zone after it, and its journal entry.
#[derive(Debug)]
pub(crate) struct Changed {
    pub(crate) zone: Zone,
    pub(crate) entry: Entry,
}

/// Processes `request` on `zone` for the holder of `key`, whose grants for this zone are
/// `grants`: `Ok(None)` when every prerequisite holds and nothing needed to change,
/// `Ok(Some)` with the new zone and its journal entry, or the rcode. `lines` names the
/// line an entry writes; `now` is the entry's time.
pub(crate) fn process(
    zone: &Zone,
    request: &Request,
    key: &Name,
    grants: &[&Grant],
    lines: &LineSet,
    now: u64,
) -> Result<Option<Changed>, ResponseCode> {
    let origin = zone.origin();
    let prerequisites = message::prerequisites(&request.prerequisites, origin)?;
    let updates = message::updates(&request.updates, origin)?;
    let (layer, grants) = choose_layer(origin, &updates, grants).ok_or(ResponseCode::Refused)?;
    let mut data = Draft::new(zone.layer_view(layer), origin);
    prereq::check(&data, &prerequisites)?;
    for update in &updates {
        let may_delete = |rtype| {
            grants
                .iter()
                .any(|g| g.covers(origin, update.name(), Some(rtype)))
        };
        apply::apply(&mut data, update, may_delete);
    }
    if !within_limits(&data, origin, &updates, &grants) {
        return Err(ResponseCode::Refused);
    }
    let changes = data.changes();
    if changes.is_empty() {
        return Ok(None);
    }
    apply::servable(&changes).map_err(|(rcode, reason)| {
        tracing::info!(zone = %origin, key = %key, %reason, "update refused: the zone could not serve it");
        rcode
    })?;
    let serial = match data.serial() {
        Some(set) if layer == Layer::Base && apply::serial_newer(set, zone.serial()) => set,
        _ => zone.serial().wrapping_add(1),
    };
    let changed = zone.with_changes_and_serial(layer, &changes, serial);
    let line = match layer {
        Layer::Base => None,
        Layer::Overlay(line) => Some(lines.name(line).to_string()),
    };
    Ok(Some(Changed {
        zone: changed,
        entry: Entry {
            serial,
            at: now,
            key: key.to_string(),
            line,
            diff: data.diff(),
        },
    }))
}

/// The first layer, in the order the grants name them, whose grants cover every update
/// (an update of nothing is covered by any), with those grants.
fn choose_layer<'g>(
    origin: &Name,
    updates: &[Update],
    grants: &[&'g Grant],
) -> Option<(Layer, Vec<&'g Grant>)> {
    let mut tried: Vec<Layer> = Vec::new();
    for grant in grants {
        let layer = grant.layer();
        if tried.contains(&layer) {
            continue;
        }
        tried.push(layer);
        let of_layer: Vec<&Grant> = grants
            .iter()
            .copied()
            .filter(|g| g.layer() == layer)
            .collect();
        let covered = updates.iter().all(|u| {
            // The SOA is the zone's, in its base data: no overlay holds one.
            let soa = u.record_type() == Some(RecordType::SOA);
            !(soa && layer != Layer::Base)
                && of_layer
                    .iter()
                    .any(|g| g.covers(origin, u.name(), u.record_type()))
        });
        if covered {
            return Some((layer, of_layer));
        }
    }
    None
}

/// Whether every name the updates wrote keeps within the record limit of some grant that
/// covers the update (a grant without a limit always does).
fn within_limits(data: &Draft<'_>, origin: &Name, updates: &[Update], grants: &[&Grant]) -> bool {
    updates.iter().all(|update| {
        let name = update.name();
        grants
            .iter()
            .filter(|g| g.covers(origin, name, update.record_type()))
            .any(|g| match g.max_records {
                None => true,
                Some(max) => {
                    let held: usize = data
                        .types(name)
                        .into_iter()
                        .filter(|&t| g.types.covers(t))
                        .map(|t| data.rrset(name, t).len())
                        .sum();
                    held <= max
                }
            })
    })
}

/// Why a journal cannot be applied to its zone.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The journal cannot be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// An entry writes the overlay of a line the configuration no longer declares.
    #[error("{path}: an entry writes the overlay of line `{line}`, which is not declared", path = path.display())]
    UnknownLine {
        /// The journal file.
        path: std::path::PathBuf,
        /// The line named.
        line: String,
    },
}

/// `zone` with `entries` applied in order (each entry's changes under the same rules as
/// when it was made), its serial the newest of the zone file's and the entries'.
pub(crate) fn replay(
    zone: &Zone,
    entries: &[Entry],
    lines: &LineSet,
    path: &std::path::Path,
) -> Result<Zone, ReplayError> {
    let mut zone = zone.clone();
    let mut rest = entries;
    while let Some(first) = rest.first() {
        let layer = match &first.line {
            None => Layer::Base,
            Some(line) => lines
                .id(line)
                .filter(|&id| id != lines.default_line())
                .map(Layer::Overlay)
                .ok_or_else(|| ReplayError::UnknownLine {
                    path: path.to_path_buf(),
                    line: line.clone(),
                })?,
        };
        // Consecutive entries of one layer are applied on one draft: one new view for
        // the lot, however long the journal.
        let run = rest.iter().take_while(|e| e.line == first.line).count();
        let (batch, tail) = rest.split_at(run);
        let mut data = Draft::new(zone.layer_view(layer), zone.origin());
        for entry in batch {
            apply::replay(&mut data, &entry.diff);
        }
        let mut serial = zone.serial();
        let changed = zone.with_changes(layer, &data.changes());
        serial = newest(serial, changed.serial());
        for entry in batch {
            serial = newest(serial, entry.serial);
        }
        zone = changed.with_serial(serial);
        rest = tail;
    }
    Ok(zone)
}

/// The newer of two serials (RFC 1982).
pub(crate) fn newest(a: u32, b: u32) -> u32 {
    if apply::serial_newer(b, a) { b } else { a }
}

#[cfg(test)]
mod tests;
