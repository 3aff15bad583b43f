//! What benches/update_cost.rs measures: an UPDATE applied to the live zones the way
//! [`super::store::Updates`] applies it, without the TSIG check, the policy's lookup and
//! the journal's write (a disk's time, not the CPU's), so that callgrind counts the CPU
//! an update costs the server: reading it, [`super::process`], and the new snapshot. And
//! the live data as `serve` starts it, dynamic updates and keys included, for the whole
//! of an update through `Responder::answer`.
//!
//! Not used by the server; reached through `geoline::internal`.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

use super::message;
use super::policy::{Grant, NamePattern, Types};
use super::process;
use crate::config::Config;
use crate::lines::LineSet;
use crate::live::Live;

/// Applies the UPDATE `message` to `live`'s zones as a key granted every name and type of
/// the base data (SOA and NS aside) would: the rcode it gets, or `None` when it does not
/// read as an UPDATE of a zone served.
pub fn apply_update_granted(live: &Live, message: &[u8]) -> Option<ResponseCode> {
    let request = message::read(message).ok()?;
    let zones = live.zones.load_full();
    let index = zones
        .zones()
        .iter()
        .position(|z| *z.origin() == request.zone)?;
    let zone = zones.zones().get(index)?;
    let key = Name::from_ascii("measure.").ok()?;
    let grant = Grant {
        key: key.clone(),
        zones: vec![zone.origin().to_lowercase()],
        names: vec![NamePattern::everything()],
        types: Types::Default,
        max_records: None,
        line: None,
    };
    let lines = LineSet::default_only();
    Some(match process(zone, &request, &key, &[&grant], &lines, 0) {
        Err(rcode) => rcode,
        Ok(None) => ResponseCode::NoError,
        Ok(Some(changed)) => {
            live.zones.store(zones.with_zone(index, changed.zone));
            ResponseCode::NoError
        }
    })
}

/// The live data of `config` as `serve` starts it for the DNS listeners: zones with their
/// journals replayed, dynamic updates (journals opened, the policy, the rate) and the TSIG
/// keys. No health checks, certificates or secondaries.
pub fn live_with_updates(config: &Config) -> Result<Live, Box<dyn std::error::Error>> {
    let loaded = crate::server::load(config)?;
    let updates = super::Updates::open(
        &config.update,
        &config.zones,
        &loaded.zones,
        loaded.classifier.lines(),
    )?;
    let live = Live::new(loaded.zones, loaded.classifier).with_updates(updates);
    live.keys.store(config.keys.clone());
    Ok(live)
}
