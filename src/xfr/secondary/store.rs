//! The last good copy of each line of a secondary zone, on disk: a zone file per line in
//! the zone's `store` directory, replaced atomically (a temporary file, synced, renamed)
//! before the copy is served, so that a restart serves at once what was served before.
//! Its modification time is the last time the primary confirmed the copy (a transfer or a
//! check that found it current), which is what expiry counts from after a restart, as
//! BIND does with its secondary zone files.
//!
//! This module owns the text and the files. It does not read them back (the zone loader
//! does, [`crate::zone::Zone::load_stored`]).

use std::path::Path;
use std::time::SystemTime;

use hickory_proto::rr::{Name, Record};

use crate::update::flush::{record_text, replace_file};
use crate::util::time::unix_secs;

/// A line's records as the zone-file text kept on disk: a comment saying what it is,
/// then one record a line, absolute names, the SOA first.
pub(crate) fn render(origin: &Name, line: &str, serial: u32, records: &[Record]) -> String {
    let mut text = format!(
        "; {origin} line {line}, serial {serial}: the last good copy pulled from the primary by geoline at {} (Unix time). geoline replaces this file; do not edit it.\n",
        unix_secs(SystemTime::now())
    );
    text.reserve(records.len() * 48);
    for record in records {
        text.push_str(&record_text(record));
        text.push('\n');
    }
    text
}

/// Replaces the copy at `path` with `text`, creating its directory when needed.
pub(crate) fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    replace_file(path, text.as_bytes()).map(drop)
}

/// Marks the copy at `path` as confirmed by the primary now.
pub(crate) fn confirm(path: &Path) -> std::io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// When the copy at `path` was last confirmed, in seconds since the epoch.
pub(crate) fn confirmed_at(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(unix_secs(modified))
}
