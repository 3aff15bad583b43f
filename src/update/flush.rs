//! Writing a zone as it is served back to its files (`geoline zone flush`, Knot's
//! `zone-flush`), so that operators who keep zone files in git see what updates changed.
//!
//! This module owns the text written (one record a line, absolute names, explicit TTLs,
//! the apex first) and writing it safely: a temporary file beside the target, synced, then
//! renamed over it (through a symlink, to the file it points to). The base data goes to
//! the zone's file and each line's overlay to that line's overlay file. Comments and
//! `$INCLUDE`s of the old files are not kept. It does not empty the journal (the caller
//! does, once every file is written).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::journal::JournalError;
use crate::lines::LineSet;
use crate::util::time::unix_secs;
use crate::zone::config::ZoneConfig;
use crate::zone::{Layer, Rrset, Zone};

/// What a flush wrote.
#[derive(Debug, Clone)]
pub(crate) struct Flushed {
    /// The files written: the zone file, then overlays.
    pub files: Vec<PathBuf>,
    /// The zone's serial, as written.
    pub serial: u32,
    /// The journal entries the files now hold.
    pub entries: u64,
}

/// Why a zone could not be flushed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlushError {
    /// No zone of that name is served.
    #[error("no zone `{0}` is served")]
    NoZone(String),
    /// Updates wrote a line's overlay and the zone has no overlay file for that line.
    #[error(
        "updates wrote the overlay of line `{line}`, and zone `{zone}` has no overlay file for it to be written to"
    )]
    NoOverlayFile {
        /// The zone.
        zone: String,
        /// The line.
        line: String,
    },
    /// A file could not be written.
    #[error("{path}: cannot write: {source}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The journal could not be emptied (the files are written: replaying it again on
    /// them changes nothing).
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Writes `zone`'s base data to its file and its overlays to theirs (`config`'s).
pub(crate) fn write(
    zone: &Zone,
    config: &ZoneConfig,
    lines: &LineSet,
) -> Result<Flushed, FlushError> {
    let mut targets = vec![(config.file.clone(), Layer::Base)];
    for line in zone.overlay_lines() {
        let path = config
            .overlays
            .get(&line)
            .ok_or_else(|| FlushError::NoOverlayFile {
                zone: zone.origin().to_string(),
                line: lines.name(line).to_string(),
            })?;
        targets.push((path.clone(), Layer::Overlay(line)));
    }
    // An overlay file whose records updates all deleted is written empty.
    for (line, path) in &config.overlays {
        if !targets
            .iter()
            .any(|(_, layer)| *layer == Layer::Overlay(*line))
        {
            targets.push((path.clone(), Layer::Overlay(*line)));
        }
    }
    let mut files = Vec::with_capacity(targets.len());
    for (path, layer) in targets {
        let text = render(
            zone.origin(),
            zone.serial(),
            layer,
            zone.layer_rrsets(layer),
        );
        let written = replace_file(&path, text.as_bytes()).map_err(|source| FlushError::Write {
            path: path.clone(),
            source,
        })?;
        files.push(written);
    }
    Ok(Flushed {
        files,
        serial: zone.serial(),
        entries: 0,
    })
}

/// The zone-file text of `rrsets`: the apex first (its SOA first), then names in
/// canonical order, types by number.
pub(crate) fn render(origin: &Name, serial: u32, layer: Layer, mut rrsets: Vec<Rrset>) -> String {
    let key = |set: &Rrset| {
        let first = set.first();
        let name = first.map(|r| r.name.clone()).unwrap_or_default();
        let rtype = first.map_or(0, |r| u16::from(r.record_type()));
        let soa_first = first.is_some_and(|r| r.record_type() == RecordType::SOA);
        (name != *origin, name, !soa_first, rtype)
    };
    rrsets.sort_by_key(key);
    let what = match layer {
        Layer::Base => "base data",
        Layer::Overlay(_) => "overlay",
    };
    let mut text = format!(
        "; {origin} {what}, serial {serial}, written by `geoline zone flush` at {} (Unix time)\n$ORIGIN {origin}\n",
        unix_secs(std::time::SystemTime::now())
    );
    for set in &rrsets {
        for record in set.iter() {
            text.push_str(&record_text(record));
            text.push('\n');
        }
    }
    text
}

/// One record as a zone file line. hickory's own text form leaves TXT strings unquoted
/// (spaces and quotes in them would not read back), so TXT is written here.
pub(crate) fn record_text(record: &Record) -> String {
    match &record.data {
        RData::TXT(txt) => {
            let mut line = format!("{} {} {} TXT", record.name, record.ttl, record.dns_class);
            for string in txt.txt_data.iter() {
                line.push(' ');
                line.push_str(&quoted(string));
            }
            line
        }
        // Types hickory's text form does not read back (DNAME, SPF, unknown types, ...).
        _ => crate::zone::generic_text(record).unwrap_or_else(|| record.to_string()),
    }
}

/// A character-string in zone-file syntax: quoted, `"` and `\` escaped, bytes outside
/// printable ASCII as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Replaces the file at `path` (the file a symlink there points to) with `bytes`,
/// atomically; returns the file written.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.geoline-flush"));
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, &target)?;
    File::open(dir)?.sync_all()?;
    Ok(target)
}
