//! The `[[geoip]]` sections: which database files to open and how to read their records.
//!
//! This module owns the sections' format and checks (the layout name, the field paths).
//! It does not open the files: [`super::GeoDb::open_with`] does, when the server loads.

use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;

use super::{FieldOverrides, FieldPath, Layout};
use crate::diag::{ConfigError, Source};

/// One `[[geoip]]` database.
#[derive(Debug, Clone)]
pub struct GeoIpConfig {
    /// The MaxMind DB file, relative paths resolved against the configuration's directory.
    pub path: PathBuf,
    /// The layout the file names; `None` (`layout = "auto"`, the default) recognises it
    /// from the database's `database_type` metadata.
    pub layout: Option<Layout>,
    /// Field paths replacing the layout's own (`country_field = "country.iso_code"`).
    pub fields: FieldOverrides,
}

/// `[[geoip]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGeoIp {
    path: PathBuf,
    #[serde(default, deserialize_with = "layout")]
    layout: Option<Layout>,
    country_field: Option<Spanned<String>>,
    continent_field: Option<Spanned<String>>,
    subdivision_field: Option<Spanned<String>>,
    asn_field: Option<Spanned<String>>,
}

/// What `layout =` accepts: `auto`, then every layout a file can name.
const LAYOUT_NAMES: &[&str] = &[
    "auto",
    "geoip2",
    "geoip2-city",
    "geoip2-asn",
    "ipinfo-lite",
    "ip-location-db",
    "ip-location-db-asn",
];

/// `layout = "..."`: `None` for `auto`.
fn layout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Layout>, D::Error> {
    let name = String::deserialize(d)?;
    if name == "auto" {
        return Ok(None);
    }
    Layout::NAMED
        .into_iter()
        .find(|l| l.name() == name)
        .map(Some)
        .ok_or_else(|| de::Error::unknown_variant(&name, LAYOUT_NAMES))
}

impl GeoIpConfig {
    /// Checks one `[[geoip]]` section; its path is made relative to the file's directory.
    pub(crate) fn check(g: RawGeoIp, src: &Source<'_>) -> Result<GeoIpConfig, ConfigError> {
        let path = |p: &Option<Spanned<String>>| -> Result<Option<FieldPath>, ConfigError> {
            p.as_ref()
                .map(|p| {
                    FieldPath::parse(p.get_ref()).map_err(|reason| src.invalid(p.span(), reason))
                })
                .transpose()
        };
        Ok(GeoIpConfig {
            path: src.resolve(&g.path),
            layout: g.layout,
            fields: FieldOverrides {
                country: path(&g.country_field)?,
                continent: path(&g.continent_field)?,
                subdivision: path(&g.subdivision_field)?,
                asn: path(&g.asn_field)?,
            },
        })
    }
}
