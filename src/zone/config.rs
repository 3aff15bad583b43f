//! The `[[zone]]` sections: each zone's base file and its per-line overlay files.
//!
//! This module owns the sections' format. It does not read the files ([`super::ZoneSet::load`]
//! does) nor check that the overlays' lines are declared: that spans two sections, and
//! [`crate::config`] does it, giving each overlay its line's id.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{ConfigError, Location, Source};
use crate::lines::LineId;
use crate::xfr::config::{RawTransfer, TransferConfig};

/// One `[[zone]]`, its paths resolved.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's apex; when absent, the `$ORIGIN` or SOA owner of the base file.
    pub origin: Option<String>,
    /// The `default` line's data.
    pub file: PathBuf,
    /// Declared line to overlay file, holding only what differs for that line.
    pub overlays: BTreeMap<LineId, PathBuf>,
    /// Where the `[[zone]]` is in the configuration (its `file` key), for errors that
    /// concern the declaration rather than the zone file: a zone declared twice.
    pub declared_at: Option<Location>,
    /// Who may transfer the zone, which line each gets, whom to NOTIFY (`transfer`);
    /// `None`: transfers are refused.
    pub transfer: Option<TransferConfig>,
}

/// `[[zone]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZone {
    origin: Option<String>,
    file: Spanned<PathBuf>,
    #[serde(default)]
    overlays: BTreeMap<Spanned<String>, PathBuf>,
    transfer: Option<RawTransfer>,
}

impl ZoneConfig {
    /// `[[zone]]` with its paths made relative to the file's directory; `line` gives the
    /// id of the line an overlay names (in the file's order of names), or the error;
    /// `transfer` checks the `transfer` table.
    pub(crate) fn new(
        z: RawZone,
        src: &Source<'_>,
        line: impl Fn(&Spanned<String>) -> Result<LineId, ConfigError>,
        transfer: impl Fn(RawTransfer) -> Result<TransferConfig, ConfigError>,
    ) -> Result<ZoneConfig, ConfigError> {
        let mut overlays = BTreeMap::new();
        for (name, path) in &z.overlays {
            overlays.insert(line(name)?, src.resolve(path));
        }
        Ok(ZoneConfig {
            origin: z.origin,
            file: src.resolve(z.file.get_ref()),
            overlays,
            declared_at: Some(src.location(Some(z.file.span()))),
            transfer: z.transfer.map(transfer).transpose()?,
        })
    }
}
