//! The `[[zone]]` sections: each zone's base file and its per-line overlay files.
//!
//! This module owns the sections' format. It does not read the files ([`super::ZoneSet::load`]
//! does) nor check that the overlays' lines are declared: that spans two sections, and
//! [`crate::config`] does it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::Source;

/// One `[[zone]]`, its paths resolved.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's apex; when absent, the `$ORIGIN` or SOA owner of the base file.
    pub origin: Option<String>,
    /// The `default` line's data.
    pub file: PathBuf,
    /// Line name to overlay file, holding only what differs for that line.
    pub overlays: BTreeMap<String, PathBuf>,
}

/// `[[zone]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZone {
    origin: Option<String>,
    file: PathBuf,
    #[serde(default)]
    overlays: BTreeMap<Spanned<String>, PathBuf>,
}

impl RawZone {
    /// The lines the overlays are for, where the file names them.
    pub(crate) fn overlay_lines(&self) -> impl Iterator<Item = &Spanned<String>> {
        self.overlays.keys()
    }
}

impl ZoneConfig {
    /// `[[zone]]` with its paths made relative to the file's directory.
    pub(crate) fn new(z: RawZone, src: &Source<'_>) -> ZoneConfig {
        ZoneConfig {
            origin: z.origin,
            file: src.resolve(&z.file),
            overlays: z
                .overlays
                .into_iter()
                .map(|(line, path)| (line.into_inner(), src.resolve(&path)))
                .collect(),
        }
    }
}
