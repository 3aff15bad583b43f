//! Watching database, zone and certificate files, and reloading them when they change.
//!
//! This module owns the file watcher (the `notify` crate: inotify on Linux) and the
//! debounce. It watches the *directories* holding the files, not the files: `geoipupdate`
//! writes a temporary file and renames it over the old one, and a watch on the old file
//! would follow the replaced inode and never see the new one. A plain `cp` over the file
//! shows as writes and a close. Both are debounced: a target is reloaded once its files
//! have been quiet for the configured time, so a copy in progress is not read half-written
//! (and if one is, the reload fails its checks, the old data keeps serving, and the next
//! event reloads the finished file).
//!
//! It follows what the targets really read ([`super::files`]): each symbolic link on the
//! way to a file is watched too (a Kubernetes volume swaps its `..data` link, not the
//! file), and so are a zone's `$INCLUDE`d files; the list is made again after every
//! reload, as a swapped link leads to a new directory.
//!
//! It does not read or check anything itself: [`Reloader`] does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Reloader, Target, Trigger, files};

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for changes: {source}", dir = dir.display())]
pub struct WatchError {
    dir: PathBuf,
    #[source]
    source: notify::Error,
}

/// Starts watching every file `reloader` reads; the task runs until `shutdown`.
pub(crate) fn spawn(
    reloader: Arc<Reloader>,
    debounce: Duration,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let watched = watch_list(&reloader);
    let files = Arc::new(ArcSwap::from_pointee(watched));
    let (tx, rx) = mpsc::unbounded_channel();
    let listed = files.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        // Decided on the watcher's thread, so that what no target reads never wakes the
        // task: a zone's journal beside its file is appended to by every dynamic update.
        if let Ok(event) = &event
            && !concerns_a_target(&listed.load(), event)
        {
            return;
        }
        // The receiver is gone only when the task has stopped.
        let _ = tx.send(event);
    })
    .map_err(|source| WatchError {
        dir: PathBuf::new(),
        source,
    })?;
    let dirs: Vec<PathBuf> = files.load().keys().cloned().collect();
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError {
                dir: dir.clone(),
                source,
            })?;
    }
    Ok(tokio::spawn(run(
        Watching {
            watcher,
            dirs: dirs.into_iter().collect(),
            files,
        },
        rx,
        reloader,
        debounce,
        shutdown,
    )))
}

/// Directory → file name → the targets that change when that entry does.
type WatchList = HashMap<PathBuf, HashMap<OsString, Vec<Target>>>;

/// Every directory entry whose change can change a target's data: each file the target
/// reads (a zone's `$INCLUDE`s too) and each symbolic link on the way to it (a Kubernetes
/// volume's `..data`), under its directory with symlinks resolved, as events name it.
fn watch_list(reloader: &Reloader) -> WatchList {
    let mut watched = WatchList::new();
    for (configured, target) in reloader.files() {
        for path in files::links(&configured) {
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let targets = watched
                .entry(canonical_dir(dir))
                .or_default()
                .entry(name.to_os_string())
                .or_default();
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    watched
}

/// The watcher and what it watches; the list is made again after each reload, since a
/// reload can follow a swapped link to a new directory or read a new `$INCLUDE`.
struct Watching {
    // Dropping the watcher stops it: the task keeps it alive.
    watcher: RecommendedWatcher,
    /// The directories watched so far (a directory that went away stays listed: a watch on
    /// it has ended by itself).
    dirs: HashSet<PathBuf>,
    /// Shared with the watcher's callback, which drops the events of files not listed.
    files: Arc<ArcSwap<WatchList>>,
}

impl Watching {
    /// Watches what `reloader`'s targets read now, adding the directories not yet watched.
    fn refresh(&mut self, reloader: &Reloader) {
        self.files.store(Arc::new(watch_list(reloader)));
        for dir in self.files.load().keys() {
            if self.dirs.contains(dir) {
                continue;
            }
            match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir.clone());
                }
                // Gone again, or not yet there: the next reload tries again.
                Err(e) => debug!(dir = %dir.display(), error = %e, "cannot watch"),
            }
        }
    }
}

/// `dir` made absolute with symlinks resolved, as the watcher reports event paths under it.
fn canonical_dir(dir: &Path) -> PathBuf {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// Whether `event` can change the data of a target: it can change contents and names a
/// file some target reads. Events for the other files of a watched directory (a zone's
/// journal, the temporary files of a flush, anything else kept there) are not.
fn concerns_a_target(files: &WatchList, event: &Event) -> bool {
    changes_contents(&event.kind) && event.paths.iter().any(|path| listed(files, path).is_some())
}

/// The targets that read the file at `path`, if any.
fn listed<'a>(files: &'a WatchList, path: &Path) -> Option<&'a Vec<Target>> {
    let (dir, name) = (path.parent()?, path.file_name()?);
    files.get(dir)?.get(name)
}

/// Whether an event can mean new contents. Opening, reading and closing a file unwritten
/// are left out: the reload's own read of the file would otherwise trigger another reload.
fn changes_contents(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Any | EventKind::Other => true,
        EventKind::Access(_) => false,
    }
}

async fn run(
    mut watching: Watching,
    mut events: mpsc::UnboundedReceiver<notify::Result<Event>>,
    reloader: Arc<Reloader>,
    debounce: Duration,
    shutdown: CancellationToken,
) {
    // Target → when it is due: the last change to its files plus the debounce.
    let mut due: BTreeMap<Target, Instant> = BTreeMap::new();
    loop {
        let next = due.values().min().copied();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = reloader.config_applied.notified() => watching.refresh(&reloader),
            event = events.recv() => {
                let Some(event) = event else { return };
                let event = match event {
                    Ok(e) => e,
                    Err(e) => {
                        warn!(error = %e, "file watcher");
                        continue;
                    }
                };
                if !changes_contents(&event.kind) {
                    continue;
                }
                let files = watching.files.load();
                for path in &event.paths {
                    let Some(targets) = listed(&files, path) else {
                        continue;
                    };
                    debug!(path = %path.display(), kind = ?event.kind, "file changed");
                    for &t in targets {
                        due.insert(t, Instant::now() + debounce);
                    }
                }
            }
            _ = sleep_until(next) => {
                let now = Instant::now();
                let ready: Vec<Target> =
                    due.iter().filter(|(_, at)| **at <= now).map(|(t, _)| *t).collect();
                for t in &ready {
                    due.remove(t);
                    // The outcome is logged and kept in the status by the reloader.
                    let _ = reloader.reload(*t, Trigger::Watch).await;
                }
                if !ready.is_empty() {
                    watching.refresh(&reloader);
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind, RenameMode};

    use super::*;

    #[test]
    fn only_the_files_targets_read_wake_the_watcher() {
        let dir = PathBuf::from("/srv/zones");
        let mut files = WatchList::new();
        files
            .entry(dir.clone())
            .or_default()
            .insert(OsString::from("example.com.zone"), vec![Target::Zone(0)]);
        let write = |name: &str| {
            Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Content)))
                .add_path(dir.join(name))
        };
        assert!(concerns_a_target(&files, &write("example.com.zone")));
        // Every dynamic update appends to the journal beside the zone file; a flush
        // writes a temporary file there before renaming it over the zone file.
        assert!(!concerns_a_target(&files, &write("example.com.jnl")));
        assert!(!concerns_a_target(
            &files,
            &write(".example.com.zone.geoline-flush")
        ));
        assert!(!concerns_a_target(
            &files,
            &write("example.com.zone")
                .set_kind(EventKind::Access(AccessKind::Open(AccessMode::Any)))
        ));
        // A rename names both files: the one renamed over the zone file counts.
        let renamed = Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path(dir.join(".example.com.zone.geoline-flush"))
            .add_path(dir.join("example.com.zone"));
        assert!(concerns_a_target(&files, &renamed));
        let elsewhere = Event::new(EventKind::Create(CreateKind::File))
            .add_path(PathBuf::from("/tmp/example.com.zone"));
        assert!(!concerns_a_target(&files, &elsewhere));
    }

    #[test]
    fn only_events_that_can_change_contents_count() {
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert!(changes_contents(&kind), "{kind:?}");
        }
        // The reload's own read of the file, and a chmod.
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)),
        ] {
            assert!(!changes_contents(&kind), "{kind:?}");
        }
    }
}
