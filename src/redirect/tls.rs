//! HTTPS certificates: chosen by SNI, replaced from disk while connections stay up.
//!
//! This module owns the redirector's certificates: reading the configured PEM files
//! (chain and key, checked to match), choosing one per handshake by the client's SNI
//! (exact name, then `*.` wildcard, then the first certificate, as nginx's default server
//! does), and reloading them when a file changes (notify) or on SIGHUP. The set in use sits
//! behind an [`ArcSwap`]: a handshake takes a snapshot, a reload swaps in a new set only
//! when *every* file read and matched, and established connections keep the certificate
//! they were made with. It does not accept connections ([`super::listener`]).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use super::config::CertificateConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}", path = path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}", path = path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("{path}: the private key is not usable: {source}", path = path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{key}: this private key does not belong to the certificate in {cert}", key = key.display(), cert = cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot watch certificate files: {0}")]
    Watch(#[from] notify::Error),
}

/// One loaded certificate and the names it answers.
struct Entry {
    /// Lower case; `*.example.com` matches one label.
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// The certificates in use; the first is the fallback for unknown or missing SNI.
pub(crate) struct CertStore {
    configs: Vec<CertificateConfig>,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<Vec<Entry>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("certificates", &self.configs)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Reads every configured certificate; any failure is an error naming its file.
    pub(crate) fn load(configs: &[CertificateConfig]) -> Result<CertStore, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let entries = read_all(configs, &provider)?;
        Ok(CertStore {
            configs: configs.to_vec(),
            provider,
            current: ArcSwap::from_pointee(entries),
        })
    }

    /// Reads every file again and swaps the new set in, or keeps the old one whole.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let entries = read_all(&self.configs, &self.provider)?;
        self.current.store(Arc::new(entries));
        Ok(())
    }

    /// The certificate for a handshake naming `sni`.
    pub(crate) fn select(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let entries = self.current.load();
        if let Some(sni) = sni {
            let sni = sni.strip_suffix('.').unwrap_or(sni);
            let exact = entries
                .iter()
                .find(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(sni)));
            let wildcard = || {
                let (_, parent) = sni.split_once('.')?;
                entries.iter().find(|e| {
                    e.names.iter().any(|n| {
                        n.strip_prefix("*.")
                            .is_some_and(|d| d.eq_ignore_ascii_case(parent))
                    })
                })
            };
            if let Some(e) = exact.or_else(wildcard) {
                return Some(e.key.clone());
            }
        }
        entries.first().map(|e| e.key.clone())
    }

    /// The directories holding the files, for watching: editors and certbot replace files
    /// by renaming or re-pointing symlinks, which only the directory sees.
    fn directories(&self) -> BTreeSet<PathBuf> {
        self.configs
            .iter()
            .flat_map(|c| [&c.cert, &c.key])
            .map(|p| match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.select(hello.server_name())
    }
}

fn read_all(
    configs: &[CertificateConfig],
    provider: &CryptoProvider,
) -> Result<Vec<Entry>, TlsError> {
    configs
        .iter()
        .map(|c| {
            Ok(Entry {
                names: c.names.clone(),
                key: Arc::new(read_certified_key(&c.cert, &c.key, provider)?),
            })
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A chain and its key from PEM files, checked to belong together.
pub(crate) fn read_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path, reason: String| TlsError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem_err(cert, "no CERTIFICATE section".into()));
    }
    let der = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| pem_err(key, format!("no PEM private key: {e}")))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|source| TlsError::Key {
            path: key.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })
        }
        // The key type cannot say its public key; rustls itself lets that pass.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(e) => Err(pem_err(cert, format!("not a usable certificate: {e}"))),
    }
}

/// The rustls server configuration: certificates from `store`, HTTP/2 and HTTP/1.1 offered
/// by ALPN.
pub(crate) fn server_config(store: Arc<CertStore>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(store.provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How long file events are collected before one reload: writing a chain and a key, or a
/// file in several writes, is one change.
const SETTLE: Duration = Duration::from_millis(200);

/// Reloads `store` when a file in its directories changes or on SIGHUP, until `shutdown`.
/// A file watch that cannot be set up (inotify limits in a container) is logged and left
/// out: SIGHUP still works.
pub(crate) fn spawn_reloader(
    store: Arc<CertStore>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, TlsError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = match watch(&store, tx) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "redirect: certificate files are not watched; reload them with SIGHUP");
            None
        }
    };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| TlsError::Watch(notify::Error::io(e)))?;
    Ok(tokio::spawn(async move {
        // Dropping the watcher stops it; it lives as long as this task.
        let _watcher = watcher;
        loop {
            let cause = tokio::select! {
                () = shutdown.cancelled() => return,
                Some(()) = rx.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while rx.try_recv().is_ok() {}
                    "file change"
                }
                _ = hup.recv() => "SIGHUP",
            };
            match store.reload() {
                Ok(()) => tracing::info!(cause, "redirect: certificates reloaded"),
                Err(e) => tracing::error!(
                    cause,
                    error = %e,
                    "redirect: certificate reload failed; the previous certificates stay in use"
                ),
            }
        }
    }))
}

fn watch(
    store: &CertStore,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<notify::RecommendedWatcher, TlsError> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Our own reads show up as opens and closes; only changes count.
            Ok(e) => {
                let change = match e.kind {
                    EventKind::Access(notify::event::AccessKind::Close(
                        notify::event::AccessMode::Write,
                    )) => true,
                    EventKind::Access(_) => false,
                    _ => true,
                };
                if change {
                    let _ = tx.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "redirect: certificate watch error"),
        }
    })?;
    for dir in store.directories() {
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}
