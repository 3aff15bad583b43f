//! The `[[zone]]` sections: each zone's base file and its per-line overlay files, or the
//! primaries a secondary zone is pulled from ([`crate::xfr::secondary::config`]).
//!
//! This module owns the sections' format. It does not read the files ([`super::ZoneSet::load`]
//! does) nor check that the overlays' lines are declared: that spans two sections, and
//! [`crate::config`] does it, giving each overlay its line's id.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hickory_proto::rr::Name;
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{ConfigError, Location, Source};
use crate::lines::LineId;
use crate::xfr::config::{RawTransfer, TransferConfig};
use crate::xfr::secondary::config::{RawSecondary, SecondaryConfig};

/// One `[[zone]]`, its paths resolved.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's apex; when absent, the `$ORIGIN` or SOA owner of the base file.
    pub origin: Option<String>,
    /// The `default` line's data; for a secondary zone, the default line's stored copy.
    pub file: PathBuf,
    /// Declared line to overlay file, holding only what differs for that line.
    pub overlays: BTreeMap<LineId, PathBuf>,
    /// Where the `[[zone]]` is in the configuration (its `file` key), for errors that
    /// concern the declaration rather than the zone file: a zone declared twice.
    pub declared_at: Option<Location>,
    /// Who may transfer the zone, which line each gets, whom to NOTIFY (`transfer`);
    /// `None`: transfers are refused.
    pub transfer: Option<TransferConfig>,
    /// Where a secondary zone is pulled from (`primaries`); `None`: read from `file`.
    pub secondary: Option<SecondaryConfig>,
}

/// `[[zone]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZone {
    origin: Option<Spanned<String>>,
    file: Option<Spanned<PathBuf>>,
    overlays: Option<Spanned<BTreeMap<Spanned<String>, PathBuf>>>,
    transfer: Option<RawTransfer>,
    primaries: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    primary_keys: BTreeMap<Spanned<String>, Spanned<String>>,
    store: Option<Spanned<PathBuf>>,
}

impl ZoneConfig {
    /// `[[zone]]` with its paths made relative to the file's directory; `line` gives the
    /// id of the line an overlay names (in the file's order of names), or the error;
    /// `transfer` checks the `transfer` table, `secondary` the keys of a secondary zone.
    pub(crate) fn new(
        z: Spanned<RawZone>,
        src: &Source<'_>,
        line: impl Fn(&Spanned<String>) -> Result<LineId, ConfigError>,
        transfer: impl Fn(RawTransfer) -> Result<TransferConfig, ConfigError>,
        secondary: impl Fn(RawSecondary<'_>) -> Result<(Name, SecondaryConfig), ConfigError>,
    ) -> Result<ZoneConfig, ConfigError> {
        let table = z.span();
        let z = z.into_inner();
        let transfer = z.transfer.map(transfer).transpose()?;
        let file = match (&z.file, &z.primaries) {
            (Some(file), None) => file,
            (Some(_), Some(primaries)) => {
                return Err(src.invalid(
                    primaries.span(),
                    "a zone is read from `file` or pulled from `primaries`, not both".into(),
                ));
            }
            (None, Some(primaries)) => {
                if let Some(overlays) = z.overlays.as_ref().filter(|o| !o.get_ref().is_empty()) {
                    return Err(src.invalid(
                        overlays.span(),
                        "a zone pulled from `primaries` has no overlays: each line's view comes from the primary"
                            .into(),
                    ));
                }
                let (origin, config) = secondary(RawSecondary {
                    origin: z.origin.as_ref(),
                    primaries,
                    keys: &z.primary_keys,
                    store: z.store.as_ref(),
                })?;
                return Ok(ZoneConfig {
                    origin: Some(origin.to_string()),
                    file: config.default_file().to_path_buf(),
                    overlays: BTreeMap::new(),
                    declared_at: Some(src.location(Some(primaries.span()))),
                    transfer,
                    secondary: Some(config),
                });
            }
            (None, None) => {
                return Err(src.invalid(
                    table,
                    "a [[zone]] needs `file` (its zone file) or `primaries` (to pull it from)"
                        .into(),
                ));
            }
        };
        if let Some((key, span)) = z.store.as_ref().map(|s| ("store", s.span())).or_else(|| {
            z.primary_keys
                .keys()
                .next()
                .map(|k| ("primary_keys", k.span()))
        }) {
            return Err(src.invalid(
                span,
                format!("`{key}` is for a zone pulled from `primaries`, and this one is read from `file`"),
            ));
        }
        let mut overlays = BTreeMap::new();
        for (name, path) in z.overlays.iter().flat_map(|o| o.get_ref()) {
            overlays.insert(line(name)?, src.resolve(path));
        }
        Ok(ZoneConfig {
            origin: z.origin.map(Spanned::into_inner),
            file: src.resolve(file.get_ref()),
            overlays,
            declared_at: Some(src.location(Some(file.span()))),
            transfer,
            secondary: None,
        })
    }
}
