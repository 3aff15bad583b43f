//! The state directory: ACME accounts and obtained certificates on disk.
//!
//! This module owns how a private file is written: mode 0600 from its creation, written
//! whole to a temporary file beside it, synced, and renamed over the old one (then the
//! directory synced), so a reader or a crash sees the old file or the new one, never a
//! part. Directories it creates are 0700. It does not decide what is written or when.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a state file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The file system refused.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A stored account is not what geoline writes.
    #[error("{path}: not an ACME account file: {reason}", path = path.display())]
    Account {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` and its parents, each new one 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

/// Replaces `path` with `contents` atomically, the file readable by its owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(path)(e)
    })?;
    // The rename itself is durable once the directory is synced.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Writes a certificate's chain and key: the key first, so that a reader that sees the
/// new chain also finds its key (a reload that read the new key with the old chain fails
/// its match check and keeps the old pair serving).
pub(crate) fn save_certificate(
    cert: &Path,
    key: &Path,
    chain_pem: &str,
    key_pem: &str,
) -> Result<(), StoreError> {
    write_private(key, key_pem.as_bytes())?;
    write_private(cert, chain_pem.as_bytes())
}

/// The stored credentials of an ACME account, `None` when there is no file yet.
pub(crate) fn load_account(
    path: &Path,
) -> Result<Option<instant_acme::AccountCredentials>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Account {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Keeps an account's credentials (its private key among them) at `path`, 0600.
pub(crate) fn save_account(
    path: &Path,
    credentials: &instant_acme::AccountCredentials,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(credentials).map_err(|e| StoreError::Account {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_private(path, &json)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("geoline-acme-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn private_files_are_0600_in_0700_directories_and_replaced_whole() {
        let dir = scratch("modes");
        let path = dir.join("certificates/example.com/key.pem");
        write_private(&path, b"first").expect("write");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("certificates/example.com")), 0o700);
        assert_eq!(mode(&dir.join("certificates")), 0o700);
        // A reader holding the old file keeps reading the old contents: the new file is
        // another inode renamed over the name, not the old one rewritten in place.
        let held = File::open(&path).expect("open");
        write_private(&path, b"second, longer").expect("rewrite");
        let mut old = String::new();
        std::io::Read::read_to_string(&mut &held, &mut old).expect("read old");
        assert_eq!(old, "first");
        assert_eq!(fs::read(&path).expect("read"), b"second, longer");
        assert_eq!(mode(&path), 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.join("certificates/example.com"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["key.pem"]);
        fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn a_write_that_fails_leaves_the_old_file() {
        let dir = scratch("fail");
        let path = dir.join("cert.pem");
        write_private(&path, b"old").expect("write");
        // A directory where the temporary file would go makes the write fail.
        let tmp = dir.join(format!(".cert.pem.{}.tmp", std::process::id()));
        fs::create_dir(&tmp).expect("block");
        assert!(matches!(
            write_private(&path, b"new"),
            Err(StoreError::Io { .. })
        ));
        assert_eq!(fs::read(&path).expect("read"), b"old");
        fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn accounts_round_trip_and_a_missing_one_is_none() {
        let dir = scratch("account");
        let path = dir.join("accounts/1.json");
        assert!(load_account(&path).expect("no file").is_none());
        fs::create_dir_all(dir.join("accounts")).expect("dir");
        fs::write(&path, b"{not json").expect("write");
        assert!(matches!(
            load_account(&path),
            Err(StoreError::Account { .. })
        ));
        fs::remove_dir_all(&dir).expect("clean");
    }
}
