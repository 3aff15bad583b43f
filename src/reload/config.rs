//! The `[reload]` section: whether changed files are reloaded while serving, and when.
//!
//! This module owns the section's format, defaults and checks; [`super`] reloads.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{ConfigError, Source};

/// How databases and zones are reloaded while serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Reload a database or zone when its file changes on disk.
    pub watch: bool,
    /// How long a file must stay quiet after a change before it is read: a copy in
    /// progress keeps changing it.
    pub debounce: Duration,
}

impl Default for ReloadConfig {
    fn default() -> ReloadConfig {
        ReloadConfig {
            watch: true,
            debounce: Duration::from_millis(DEFAULT_DEBOUNCE_MS),
        }
    }
}

const DEFAULT_DEBOUNCE_MS: u64 = 500;

/// `[reload]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReload {
    #[serde(default = "crate::diag::default_true")]
    watch: bool,
    debounce_ms: Option<Spanned<u64>>,
}

impl ReloadConfig {
    /// Checks `[reload]`.
    pub(crate) fn check(r: RawReload, src: &Source<'_>) -> Result<ReloadConfig, ConfigError> {
        let debounce = src.in_range(
            r.debounce_ms,
            DEFAULT_DEBOUNCE_MS,
            10..=60_000,
            "reload.debounce_ms",
        )?;
        Ok(ReloadConfig {
            watch: r.watch,
            debounce: Duration::from_millis(debounce),
        })
    }
}
