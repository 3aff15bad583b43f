//! MaxMind DB files read without holding their search tree in memory.
//!
//! A database's search tree is nearly all of its file (7.83 of the shipped 7.84 MB), while
//! what geoline keeps of it, the compiled line map, is a few hundred kilobytes. This module
//! reads the tree from the file a page at a time as a walk or a lookup goes ([`tree`]), and
//! holds only the metadata and the data section, the records the tree points at
//! ([`data`]; kilobytes for a country database). A server's peak memory is then its own,
//! not its database file's.
//!
//! The file is read (`pread`), never mapped: `cp new.mmdb geoip/db.mmdb` rewrites a file
//! in place, and a mapping would change under the reader (SIGBUS when it shrinks). A read
//! of a file rewritten meanwhile fails or sees other bytes; [`Mmdb::verify_unchanged`] tells
//! by the file's size and modification time, and the caller then refuses what it read. A
//! file renamed over the path (what `geoipupdate` does) is no concern: the open file is
//! still the one read.
//!
//! It does not know what records mean (that is [`super::layout`]) or what geoline makes of
//! networks ([`super::GeoDb`]).

mod data;
mod tree;

use std::fs::File;
use std::hash::Hasher;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::SystemTime;

pub(crate) use data::{Data, Value};
pub(crate) use tree::Walk;

/// Why a file is not a MaxMind DB geoline can read.
#[derive(Debug, thiserror::Error)]
pub enum MmdbError {
    /// No metadata marker in the file's last 128 KiB.
    #[error("no MaxMind DB metadata found (not such a file, or cut short)")]
    NoMetadata,
    /// The metadata is missing a field or holds an impossible value.
    #[error("metadata: {0}")]
    Metadata(String),
    /// The search tree is damaged.
    #[error("search tree: {0}")]
    Tree(String),
    /// A record, or the metadata map, does not decode.
    #[error("data at offset {offset}: {reason}")]
    Data {
        /// The offset in the data section (or the metadata).
        offset: usize,
        /// What is wrong there.
        reason: String,
    },
    /// A record has a value of another kind where a field path goes through it.
    #[error("found {found} where {wanted} was expected")]
    Shape {
        /// The kind of value found.
        found: &'static str,
        /// The kind the path needs.
        wanted: &'static str,
    },
    /// Reading the file failed.
    #[error("reading the file: {0}")]
    Io(#[source] io::Error),
    /// The file was rewritten while it was read: what was read may mix two files.
    #[error("the file changed while it was read")]
    Changed,
}

const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
/// The specification puts the metadata in the file's last 128 KiB.
const METADATA_MAX: u64 = 128 * 1024;
/// Sixteen zero bytes between the search tree and the data section.
const SEPARATOR: usize = 16;

/// Why [`Mmdb::open`] failed.
pub(crate) enum OpenError {
    /// The file cannot be opened or its size read.
    Read(io::Error),
    /// The file has no bytes.
    Empty,
    /// The file is not a MaxMind DB geoline can read.
    Format(MmdbError),
}

/// Where a database's bytes come from.
enum Source {
    /// An open file, with its size and modification time when opened.
    File {
        file: File,
        len: u64,
        modified: Option<SystemTime>,
    },
    /// Bytes already in memory (a database built or downloaded by the caller).
    Memory(Vec<u8>),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } => *len,
            Source::Memory(bytes) => bytes.len() as u64,
        }
    }

    /// Fills `buf` from offset `at`; a file shorter than when it was opened has changed.
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<(), MmdbError> {
        match self {
            Source::File { file, .. } => file.read_exact_at(buf, at).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => MmdbError::Changed,
                _ => MmdbError::Io(e),
            }),
            Source::Memory(bytes) => {
                let start = usize::try_from(at).map_err(|_| MmdbError::Changed)?;
                let slice = start
                    .checked_add(buf.len())
                    .and_then(|end| bytes.get(start..end))
                    .ok_or(MmdbError::Changed)?;
                buf.copy_from_slice(slice);
                Ok(())
            }
        }
    }
}

/// What the metadata says that geoline uses.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub(crate) database_type: String,
    pub(crate) build_epoch: u64,
    /// 4 or 6.
    pub(crate) ip_version: u16,
    pub(crate) node_count: usize,
    /// 24, 28 or 32 bits per record, two records per node.
    pub(crate) record_size: u16,
}

/// A MaxMind DB: its metadata and data section in memory, its search tree read on demand.
pub(crate) struct Mmdb {
    source: Source,
    metadata: Metadata,
    data: Vec<u8>,
    /// Bytes per tree node (`record_size / 4`).
    node_bytes: usize,
    /// The size of the search tree in bytes.
    tree_len: u64,
    /// In an IPv6 database, the node reached by 96 zero bits (where IPv4 addresses start)
    /// and the depth it was reached at (less than 96 when a record covers all of ::/96).
    ipv4_start: usize,
    ipv4_depth: u8,
}

impl Mmdb {
    /// Opens the file at `path`: reads its metadata and data section, not its tree.
    pub(crate) fn open(path: &Path) -> Result<Mmdb, OpenError> {
        let file = File::open(path).map_err(OpenError::Read)?;
        let stat = file.metadata().map_err(OpenError::Read)?;
        if stat.len() == 0 {
            return Err(OpenError::Empty);
        }
        let source = Source::File {
            file,
            len: stat.len(),
            modified: stat.modified().ok(),
        };
        Mmdb::from_source(source).map_err(OpenError::Format)
    }

    /// The database in `bytes`.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Result<Mmdb, MmdbError> {
        Mmdb::from_source(Source::Memory(bytes))
    }

    fn from_source(source: Source) -> Result<Mmdb, MmdbError> {
        let len = source.len();
        let tail_start = len.saturating_sub(METADATA_MAX);
        let mut tail = vec![0u8; (len - tail_start) as usize];
        source.read_at(&mut tail, tail_start)?;
        let marker = tail
            .windows(METADATA_MARKER.len())
            .rposition(|w| w == METADATA_MARKER)
            .ok_or(MmdbError::NoMetadata)?;
        let metadata = read_metadata(Data::new(&tail[marker + METADATA_MARKER.len()..]))?;
        drop(tail);

        let node_bytes = usize::from(metadata.record_size / 4);
        let tree_len = (metadata.node_count as u64)
            .checked_mul(node_bytes as u64)
            .ok_or_else(|| MmdbError::Metadata("node_count is impossibly large".into()))?;
        let data_start = tree_len + SEPARATOR as u64;
        let data_end = tail_start + marker as u64;
        if data_start > data_end {
            return Err(MmdbError::Metadata(format!(
                "a search tree of {} nodes does not fit before the metadata",
                metadata.node_count
            )));
        }
        let data_len = usize::try_from(data_end - data_start)
            .map_err(|_| MmdbError::Metadata("data section too large".into()))?;
        let mut data = vec![0u8; data_len];
        source.read_at(&mut data, data_start)?;
        let mut db = Mmdb {
            source,
            metadata,
            data,
            node_bytes,
            tree_len,
            ipv4_start: 0,
            ipv4_depth: 0,
        };
        if db.metadata.ip_version == 6 {
            let (start, depth) = db.nodes().zero_path(96)?;
            db.ipv4_start = start;
            db.ipv4_depth = depth;
        }
        Ok(db)
    }

    pub(crate) fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The size of the file (or the bytes) read.
    pub(crate) fn len(&self) -> u64 {
        self.source.len()
    }

    /// The records.
    pub(crate) fn data(&self) -> Data<'_> {
        Data::new(&self.data)
    }

    /// Whether an IPv6 database has a tree of its own for IPv4 (at ::/96), rather than a
    /// record covering all of it.
    fn has_ipv4_subtree(&self) -> bool {
        self.metadata.ip_version == 6 && self.ipv4_start < self.metadata.node_count
    }

    /// An error unless the file is as it was when opened (size and modification time):
    /// called after reading it, so that a file rewritten in place meanwhile is refused.
    pub(crate) fn verify_unchanged(&self) -> Result<(), MmdbError> {
        let Source::File {
            file,
            len,
            modified,
        } = &self.source
        else {
            return Ok(());
        };
        let stat = file.metadata().map_err(MmdbError::Io)?;
        if stat.len() != *len || stat.modified().ok() != *modified {
            return Err(MmdbError::Changed);
        }
        Ok(())
    }

    /// A hash of every byte, read a block at a time: what tells the file a summary was
    /// made from from a replacement. SipHash (std's): a few milliseconds for a few
    /// megabytes, once per load.
    pub(crate) fn fingerprint(&self) -> Result<u64, MmdbError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        match &self.source {
            Source::Memory(bytes) => hasher.write(bytes),
            Source::File { len, .. } => {
                let mut block = vec![0u8; 64 * 1024];
                let mut at = 0;
                while at < *len {
                    let n = (*len - at).min(block.len() as u64) as usize;
                    self.source.read_at(&mut block[..n], at)?;
                    hasher.write(&block[..n]);
                    at += n as u64;
                }
            }
        }
        Ok(hasher.finish())
    }
}

#[cfg(test)]
mod tests;

/// The metadata map's fields geoline reads, checked.
fn read_metadata(meta: Data<'_>) -> Result<Metadata, MmdbError> {
    let (map, _) = meta.value(0)?;
    let uint = |key: &str| -> Result<u128, MmdbError> {
        match meta.get(map, key)? {
            Some(Value::Uint(n)) => Ok(n),
            Some(v) => Err(MmdbError::Metadata(format!("{key} is {}", v.kind()))),
            None => Err(MmdbError::Metadata(format!("no {key}"))),
        }
    };
    let major = uint("binary_format_major_version")?;
    if major != 2 {
        return Err(MmdbError::Metadata(format!(
            "binary format version {major}, not 2"
        )));
    }
    let ip_version = match uint("ip_version")? {
        4 => 4,
        6 => 6,
        n => return Err(MmdbError::Metadata(format!("ip_version {n}"))),
    };
    let record_size = match uint("record_size")? {
        24 => 24,
        28 => 28,
        32 => 32,
        n => return Err(MmdbError::Metadata(format!("record_size {n}"))),
    };
    let node_count = usize::try_from(uint("node_count")?)
        .ok()
        .filter(|n| (1..=u32::MAX as usize).contains(n))
        .ok_or_else(|| MmdbError::Metadata("node_count out of range".into()))?;
    let build_epoch = u64::try_from(uint("build_epoch")?)
        .map_err(|_| MmdbError::Metadata("build_epoch out of range".into()))?;
    let database_type = match meta.get(map, "database_type")? {
        Some(Value::Str(s)) => s.to_string(),
        Some(v) => {
            return Err(MmdbError::Metadata(format!(
                "database_type is {}",
                v.kind()
            )));
        }
        None => return Err(MmdbError::Metadata("no database_type".into())),
    };
    Ok(Metadata {
        database_type,
        build_epoch,
        ip_version,
        node_count,
        record_size,
    })
}
