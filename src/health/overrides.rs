//! Operators' overrides: an address forced down (or up) for maintenance, whatever its
//! checks say, kept across restarts in a small state file.
//!
//! This module owns the override's shape and its file: read once at start, rewritten
//! whole after every change (a temporary file beside it, synced, then renamed over it,
//! so a crash leaves the old file or the new one, never half of one). It does not decide
//! what an override does to answers ([`super`]) nor serve the endpoint ([`crate::admin`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What an operator asked for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Override {
    /// Up or down, whatever the checks say.
    pub(crate) up: bool,
    /// When it was asked.
    pub(crate) at: SystemTime,
    /// The operator's words ("maintenance"), or empty.
    pub(crate) why: String,
}

/// What `POST /health/ADDRESS` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Force {
    /// Counted down whatever the checks say.
    Down,
    /// Counted up whatever the checks say.
    Up,
    /// The checks decide again.
    Clear,
}

impl Force {
    /// `down`, `up` or `clear`.
    pub(crate) fn parse(word: &str) -> Option<Force> {
        match word {
            "down" => Some(Force::Down),
            "up" => Some(Force::Up),
            "clear" => Some(Force::Clear),
            _ => None,
        }
    }
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading or writing failed.
    #[error("health state file {path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not JSON of the shape this module writes.
    #[error("health state file {path}:{line}: {reason}", path = path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where in it.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An entry holds a state that is not up or down.
    #[error("health state file {path}: {address}: state `{state}` is not up or down", path = path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// The entry's address.
        address: IpAddr,
        /// What it holds.
        state: String,
    },
}

/// The file as written: one entry per forced address.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    overrides: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    address: IpAddr,
    state: String,
    /// Seconds since the epoch.
    at: u64,
    why: String,
}

/// The overrides stored at `path`; none when the file does not exist yet.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<IpAddr, Override>, StateFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(StateFileError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file: StateFile = serde_json::from_str(&text).map_err(|e| StateFileError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        reason: e.to_string(),
    })?;
    let mut overrides = BTreeMap::new();
    for entry in file.overrides {
        let up = match entry.state.as_str() {
            "up" => true,
            "down" => false,
            _ => {
                return Err(StateFileError::State {
                    path: path.to_path_buf(),
                    address: entry.address,
                    state: entry.state,
                });
            }
        };
        let at = UNIX_EPOCH + Duration::from_secs(entry.at);
        overrides.insert(
            entry.address,
            Override {
                up,
                at,
                why: entry.why,
            },
        );
    }
    Ok(overrides)
}

/// Replaces the file at `path` with `overrides`, atomically.
pub(crate) fn store(
    path: &Path,
    overrides: &BTreeMap<IpAddr, Override>,
) -> Result<(), StateFileError> {
    let file = StateFile {
        overrides: overrides
            .iter()
            .map(|(address, o)| Entry {
                address: *address,
                state: if o.up { "up" } else { "down" }.into(),
                at: crate::util::time::unix_secs(o.at),
                why: o.why.clone(),
            })
            .collect(),
    };
    let io = |source| StateFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| io(e.into()))?;
    text.push('\n');
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&temporary)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself reaches the disk with the directory.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("geoline-overrides-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn stored_overrides_load_back_and_a_missing_file_is_none() {
        let d = dir("roundtrip");
        let path = d.join("health-state.json");
        assert_eq!(load(&path).expect("missing"), BTreeMap::new());
        let mut overrides = BTreeMap::new();
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        overrides.insert(
            "192.0.2.1".parse().expect("ip"),
            Override {
                up: false,
                at,
                why: "relay maintenance".into(),
            },
        );
        overrides.insert(
            "2001:db8::1".parse().expect("ip"),
            Override {
                up: true,
                at,
                why: String::new(),
            },
        );
        store(&path, &overrides).expect("store");
        assert_eq!(load(&path).expect("load"), overrides);
        assert!(!d.join("health-state.json.new").exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_bad_file_names_its_line() {
        let d = dir("bad");
        let path = d.join("s.json");
        std::fs::write(&path, "{\"overrides\": [\n{\"address\": \"192.0.2.300\"").expect("write");
        let e = load(&path).expect_err("bad").to_string();
        assert!(
            e.starts_with(&format!("health state file {}:2: ", path.display())),
            "{e}"
        );
        std::fs::write(
            &path,
            "{\"overrides\": [{\"address\": \"192.0.2.1\", \"state\": \"gone\", \"at\": 0, \"why\": \"\"}]}",
        )
        .expect("write");
        assert_eq!(
            load(&path).expect_err("bad").to_string(),
            format!(
                "health state file {}: 192.0.2.1: state `gone` is not up or down",
                path.display()
            )
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
