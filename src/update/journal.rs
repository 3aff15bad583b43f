//! The per-zone journal: every update that changed a zone, appended and on disk (fsync'd)
//! before the response says NOERROR, replayed on top of the zone file at start and after
//! every reload of it.
//!
//! The file is a header naming the zone (`GEOLINE-JOURNAL 1` and the origin in wire form)
//! and then entries, each its length, a CRC-32 of its bytes and the bytes: the serial the
//! update gave the zone, when, which key, which line's overlay (none: the base), and the
//! records removed and added in DNS wire form. A crash while appending leaves a torn last
//! entry: reading stops at the last whole one, and opening for appending cuts the file
//! there, with a warning. A damaged entry followed by others, or a header naming another
//! zone, is an error that names the file.
//!
//! This module owns the format and the file. It does not decide what an entry means for
//! the zone ([`super::apply::replay`] applies it).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};
use tracing::warn;

use super::draft::Diff;

const MAGIC: &[u8; 18] = b"GEOLINE-JOURNAL 1\n";
/// Length and CRC before each entry's bytes.
const ENTRY_HEAD: usize = 8;
/// An entry larger than this is damage, not an update (a TCP message is at most 64 KiB).
const MAX_ENTRY: usize = 1 << 20;

/// One update, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The zone's serial after the update.
    pub(crate) serial: u32,
    /// When, in seconds since the Unix epoch.
    pub(crate) at: u64,
    /// The key that signed it, as configured (lower case, fully qualified).
    pub(crate) key: String,
    /// The line whose overlay it wrote; `None`: the base data.
    pub(crate) line: Option<String>,
    pub(crate) diff: Diff,
}

/// Why a journal cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The operating system's reason.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The file is not a journal, belongs to another zone, or is damaged before its end.
    #[error("{path}: {reason}", path = path.display())]
    Invalid {
        /// The journal file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// What reading a journal found.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    pub(crate) entries: Vec<Entry>,
    /// The length of the whole entries: where a torn tail starts.
    pub(crate) whole: u64,
    /// The length of the file.
    pub(crate) len: u64,
}

impl Contents {
    /// Whether the file ends in a torn entry.
    pub(crate) fn torn(&self) -> bool {
        self.whole < self.len
    }
}

/// The journal of one zone: its file, opened for appending when the first update comes.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    origin: Name,
    file: Option<File>,
    entries: u64,
    len: u64,
}

/// Where the journal of zone `origin` lives: `dir`, or the zone file's directory, then
/// the origin and `jnl` (`example.com.jnl`).
pub(crate) fn path_for(dir: Option<&Path>, zone_file: &Path, origin: &Name) -> PathBuf {
    let dir = dir
        .map(Path::to_path_buf)
        .or_else(|| zone_file.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut name = origin.to_lowercase().to_ascii();
    if !name.ends_with('.') {
        name.push('.');
    }
    dir.join(format!("{name}jnl"))
}

/// Reads the journal at `path` for zone `origin`; a missing file is an empty journal.
pub(crate) fn read(path: &Path, origin: &Name) -> Result<Contents, JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => file.read_to_end(&mut bytes).map_err(io)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(e) => return Err(io(e)),
    };
    parse(path, origin, &bytes)
}

fn parse(path: &Path, origin: &Name, bytes: &[u8]) -> Result<Contents, JournalError> {
    let invalid = |reason: String| JournalError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let header = header(origin);
    let len = bytes.len() as u64;
    // A header cut short by a crash at creation is a torn tail of an empty journal.
    if bytes.len() < header.len() && header.starts_with(bytes) {
        return Ok(Contents {
            entries: Vec::new(),
            whole: 0,
            len,
        });
    }
    if !bytes.starts_with(MAGIC) {
        return Err(invalid(
            "not a geoline journal (no `GEOLINE-JOURNAL 1` header)".into(),
        ));
    }
    if !bytes.starts_with(&header) {
        let mut decoder = BinDecoder::new(&bytes[MAGIC.len()..]);
        let theirs = Name::read(&mut decoder).map_or_else(|_| "?".into(), |n| n.to_string());
        return Err(invalid(format!(
            "the journal belongs to zone `{theirs}`, not `{origin}`"
        )));
    }
    let mut entries = Vec::new();
    let mut at = header.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some((head, body)) = rest.split_first_chunk::<ENTRY_HEAD>() else {
            break;
        };
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if size > MAX_ENTRY {
            return Err(invalid(format!("entry at byte {at} claims {size} bytes")));
        }
        let Some(body) = body.get(..size) else {
            break;
        };
        let last = at + ENTRY_HEAD + size == bytes.len();
        if crc32fast::hash(body) != crc {
            if last {
                break;
            }
            return Err(invalid(format!(
                "entry at byte {at} is damaged (CRC mismatch)"
            )));
        }
        let entry =
            decode(body).ok_or_else(|| invalid(format!("entry at byte {at} cannot be read")))?;
        entries.push(entry);
        at += ENTRY_HEAD + size;
    }
    Ok(Contents {
        entries,
        whole: at.min(bytes.len()) as u64,
        len,
    })
}

impl Journal {
    /// The journal of zone `origin` at `path`, with what it holds. A torn tail is cut off
    /// the file, with a warning; nothing is created until the first append.
    pub(crate) fn open(path: &Path, origin: &Name) -> Result<(Journal, Vec<Entry>), JournalError> {
        let contents = read(path, origin)?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            origin: origin.clone(),
            file: None,
            entries: contents.entries.len() as u64,
            len: contents.whole,
        };
        if contents.len > 0 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| journal.io(e))?;
            if contents.torn() {
                warn!(
                    journal = %path.display(),
                    kept = contents.whole,
                    cut = contents.len - contents.whole,
                    entries = contents.entries.len(),
                    "the journal ends in a torn entry (a crash while it was written); cut back to its last whole entry"
                );
                file.set_len(contents.whole).map_err(|e| journal.io(e))?;
                file.sync_all().map_err(|e| journal.io(e))?;
            }
            journal.file = Some(file);
        }
        Ok((journal, contents.entries))
    }

    fn io(&self, source: io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The journal file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The number of entries it holds.
    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    /// Its size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `entry` and waits until it is on disk (one `fdatasync`; the first append
    /// also syncs the directory that now holds the file).
    pub(crate) fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let body = encode(entry).ok_or_else(|| JournalError::Invalid {
            path: self.path.clone(),
            reason: "an update's records cannot be encoded".into(),
        })?;
        let mut bytes = Vec::with_capacity(ENTRY_HEAD + body.len() + 64);
        if self.file.is_none() || self.len == 0 {
            bytes.extend_from_slice(&header(&self.origin));
        }
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        bytes.extend_from_slice(&body);
        let created = self.file.is_none();
        if created {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&self.path)
                .map_err(|e| self.io(e))?;
            self.file = Some(file);
        }
        let len = self.len;
        let result = match self.file.as_ref() {
            Some(file) => write_at_end(file, len, &bytes),
            None => Ok(()),
        };
        if let Err(e) = result {
            // What was half written would be a torn tail: cut it now.
            if let Some(file) = self.file.as_ref() {
                let _ = file.set_len(len);
            }
            return Err(self.io(e));
        }
        if created {
            sync_dir(&self.path).map_err(|e| self.io(e))?;
        }
        self.len += bytes.len() as u64;
        self.entries += 1;
        Ok(())
    }

    /// Empties the journal (after its zone was written to the zone file).
    pub(crate) fn compact(&mut self) -> Result<(), JournalError> {
        if let Some(file) = self.file.as_ref() {
            file.set_len(0).map_err(|e| self.io(e))?;
            file.sync_all().map_err(|e| self.io(e))?;
        }
        self.len = 0;
        self.entries = 0;
        Ok(())
    }
}

/// Writes `bytes` at offset `at` (the end of the whole entries) and waits until they are
/// on disk: one `pwrite` (no seek first) and one `fdatasync`.
fn write_at_end(file: &File, at: u64, bytes: &[u8]) -> io::Result<()> {
    file.write_all_at(bytes, at)?;
    file.sync_data()
}

fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

fn header(origin: &Name) -> Vec<u8> {
    let mut name = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut name);
    encoder.set_name_encoding(NameEncoding::UncompressedLowercase);
    // A name always encodes; an error would leave the header without it and no zone
    // would match it.
    let _ = origin.emit(&mut encoder);
    [MAGIC.as_slice(), &name].concat()
}

fn encode(entry: &Entry) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(&entry.serial.to_be_bytes());
    bytes.extend_from_slice(&entry.at.to_be_bytes());
    for text in [entry.key.as_str(), entry.line.as_deref().unwrap_or("")] {
        let len = u8::try_from(text.len()).ok()?;
        bytes.push(len);
        bytes.extend_from_slice(text.as_bytes());
    }
    for records in [&entry.diff.removed, &entry.diff.added] {
        bytes.extend_from_slice(&u32::try_from(records.len()).ok()?.to_be_bytes());
        let mut wire = Vec::with_capacity(64 * records.len());
        let mut encoder = BinEncoder::new(&mut wire);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        for record in records.iter() {
            record.emit(&mut encoder).ok()?;
        }
        bytes.extend_from_slice(&wire);
    }
    Some(bytes)
}

fn decode(body: &[u8]) -> Option<Entry> {
    let (serial, rest) = body.split_first_chunk::<4>()?;
    let (at, mut rest) = rest.split_first_chunk::<8>()?;
    let mut texts = Vec::with_capacity(2);
    for _ in 0..2 {
        let (&len, tail) = rest.split_first()?;
        let text = tail.get(..usize::from(len))?;
        texts.push(String::from_utf8(text.to_vec()).ok()?);
        rest = &tail[usize::from(len)..];
    }
    let mut decoder = BinDecoder::new(rest);
    let mut lists = Vec::with_capacity(2);
    for _ in 0..2 {
        let count = decoder.read_u32().ok()?.unverified();
        let mut records = Vec::new();
        for _ in 0..count {
            records.push(Record::read(&mut decoder).ok()?);
        }
        lists.push(records);
    }
    if !decoder.is_empty() {
        return None;
    }
    let added = lists.pop()?;
    let removed = lists.pop()?;
    let line = texts.pop().filter(|l| !l.is_empty());
    let key = texts.pop()?;
    Some(Entry {
        serial: u32::from_be_bytes(*serial),
        at: u64::from_be_bytes(*at),
        key,
        line,
        diff: Diff { removed, added },
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, TXT};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn entry(serial: u32) -> Entry {
        Entry {
            serial,
            at: 1_800_000_000,
            key: "acme.".into(),
            line: serial.is_multiple_of(2).then(|| "china".into()),
            diff: Diff {
                removed: vec![Record::from_rdata(
                    name("www.Example.com."),
                    300,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                )],
                added: vec![Record::from_rdata(
                    name("_acme-challenge.example.com."),
                    120,
                    RData::TXT(TXT::new(vec!["Case Kept".into()])),
                )],
            },
        }
    }

    fn dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("geoline-journal-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn entries_round_trip_and_survive_reopening() {
        let dir = dir("round-trip");
        let origin = name("example.com.");
        let path = path_for(Some(&dir), Path::new("/elsewhere/x.zone"), &origin);
        assert_eq!(path, dir.join("example.com.jnl"));
        let (mut journal, entries) = Journal::open(&path, &origin).expect("opens");
        assert!(entries.is_empty());
        assert!(!path.exists(), "nothing is created before the first update");
        journal.append(&entry(2)).expect("appends");
        journal.append(&entry(3)).expect("appends");
        assert_eq!(journal.entries(), 2);
        let (journal, entries) = Journal::open(&path, &origin).expect("reopens");
        assert_eq!(entries, vec![entry(2), entry(3)]);
        assert_eq!(journal.len(), std::fs::metadata(&path).expect("file").len());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_whole_entry() {
        let dir = dir("torn");
        let origin = name("example.com.");
        let path = dir.join("example.com.jnl");
        let (mut journal, _) = Journal::open(&path, &origin).expect("opens");
        journal.append(&entry(2)).expect("appends");
        let whole = journal.len();
        journal.append(&entry(3)).expect("appends");
        let full = std::fs::read(&path).expect("read");
        for cut in [whole as usize + 3, full.len() - 1] {
            std::fs::write(&path, &full[..cut]).expect("write");
            let contents = read(&path, &origin).expect("reads");
            assert_eq!((contents.entries.len(), contents.whole), (1, whole));
            assert!(contents.torn());
            let (mut journal, entries) = Journal::open(&path, &origin).expect("opens");
            assert_eq!(entries, vec![entry(2)]);
            assert_eq!(std::fs::metadata(&path).expect("file").len(), whole);
            journal.append(&entry(5)).expect("appends after the cut");
            let (_, entries) = Journal::open(&path, &origin).expect("opens");
            assert_eq!(entries, vec![entry(2), entry(5)]);
        }
        // A last entry whose bytes are all there but wrong (zeros a crash left) is torn too.
        let mut zeroed = full.clone();
        let end = zeroed.len();
        zeroed[end - 4..].fill(0);
        std::fs::write(&path, &zeroed).expect("write");
        assert_eq!(read(&path, &origin).expect("reads").entries.len(), 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn another_zones_or_a_damaged_journal_is_refused_with_its_file() {
        let dir = dir("foreign");
        let path = dir.join("example.com.jnl");
        let (mut journal, _) = Journal::open(&path, &name("example.com.")).expect("opens");
        journal.append(&entry(2)).expect("appends");
        journal.append(&entry(3)).expect("appends");
        let e = read(&path, &name("example.org.")).expect_err("foreign");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: the journal belongs to zone `example.com.`, not `example.org.`",
                path.display()
            )
        );
        let mut damaged = std::fs::read(&path).expect("read");
        let header = header(&name("example.com.")).len();
        damaged[header + ENTRY_HEAD + 2] ^= 0xff;
        std::fs::write(&path, &damaged).expect("write");
        let e = read(&path, &name("example.com.")).expect_err("damaged");
        assert!(
            e.to_string()
                .ends_with(&format!("entry at byte {header} is damaged (CRC mismatch)")),
            "{e}"
        );
        std::fs::write(&path, "$ORIGIN example.com.\n").expect("write");
        let e = read(&path, &name("example.com.")).expect_err("not a journal");
        assert!(e.to_string().contains("not a geoline journal"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn compact_empties_it() {
        let dir = dir("compact");
        let origin = name("example.com.");
        let path = dir.join("example.com.jnl");
        let (mut journal, _) = Journal::open(&path, &origin).expect("opens");
        journal.append(&entry(2)).expect("appends");
        journal.compact().expect("compacts");
        assert_eq!((journal.entries(), journal.len()), (0, 0));
        journal.append(&entry(3)).expect("appends");
        let (_, entries) = Journal::open(&path, &origin).expect("opens");
        assert_eq!(entries, vec![entry(3)]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
