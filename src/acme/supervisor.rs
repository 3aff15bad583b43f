//! Which ACME tasks run: one per ACME certificate of the live certificate set, under the
//! running `[acme]`, kept in step with both as configuration reloads change them.
//!
//! This module owns the reconciliation. A task whose entry (names, CA, contact, key type,
//! files) and `[acme]` are unchanged keeps running, its schedule and counters untouched.
//! An entry added (a certificate listed by a reload) gets a task at once, which orders its
//! certificate when none is stored, as at start. An entry removed loses its task. A changed
//! entry or `[acme]` replaces the task: the new one starts once the old one has finished
//! an order under way (never two orders for one certificate, never a challenge record
//! left behind), then serves and renews what is stored for it. A new CA or key type is a
//! new certificate (its files are elsewhere under the state directory: see
//! [`super::config::AcmeConfig::certificate_dir`]), ordered at once; a new state
//! directory likewise; a new contact registers a new account at the next order (Caddy
//! keeps one account per CA and e-mail address the same way). It does not order
//! anything itself ([`super::task`]).

use std::sync::Arc;

use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::AcmeConfig;
use super::task::{Entry, Task};
use super::{CertStatus, lock, store};
use crate::live::Live;
use crate::reload::Reloader;

/// Starts the supervisor of `live`'s ACME certificates under `config`, until `shutdown`.
pub(crate) fn spawn(
    config: &AcmeConfig,
    live: &Arc<Live>,
    reloader: &Arc<Reloader>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    live.acme.configure(config);
    let mut supervisor = Supervisor {
        live: live.clone(),
        reloader: reloader.clone(),
        shutdown: shutdown.clone(),
        running: Vec::new(),
        started: false,
    };
    // The first tasks start now, not when the spawned supervisor is first polled: a
    // configuration reload right after the start is compared with them.
    supervisor.reconcile();
    tasks.spawn(supervisor.run());
}

/// A task running for an entry.
struct Running {
    entry: Entry,
    config: Arc<AcmeConfig>,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

struct Supervisor {
    live: Arc<Live>,
    reloader: Arc<Reloader>,
    shutdown: CancellationToken,
    running: Vec<Running>,
    /// Whether the first tasks (the configuration's at start) were started.
    started: bool,
}

impl Supervisor {
    async fn run(mut self) {
        let mut certificates = self.live.certificates.watch();
        let mut config = self.live.acme.config.subscribe();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                changed = certificates.changed() => if changed.is_err() { break },
                changed = config.changed() => if changed.is_err() { break },
            }
            self.reconcile();
        }
        // Each task stops at the shutdown on its own, after an order under way.
        for r in self.running {
            let _ = r.handle.await;
        }
    }

    /// Starts, keeps, replaces and stops tasks so that one runs for each ACME entry of the
    /// live set under the running `[acme]`.
    fn reconcile(&mut self) {
        let Some(config) = self.live.acme.config.borrow().clone() else {
            return;
        };
        let wanted = entries(&self.live, &config);
        // The statuses first, under one lock (a task may be updating its own meanwhile):
        // an entry kept, or replaced with the same files, keeps its counters.
        {
            let mut statuses = lock(&self.live.acme.certificates);
            let rebuilt = wanted
                .iter()
                .map(|entry| {
                    let kept = statuses.iter().find(|s| s.cert == entry.cert).cloned();
                    CertStatus {
                        cert: entry.cert.clone(),
                        names: entry.names.clone(),
                        directory: entry.settings.directory.clone(),
                        ..kept.unwrap_or_default()
                    }
                })
                .collect();
            *statuses = rebuilt;
        }
        let mut previous = std::mem::take(&mut self.running);
        for entry in wanted {
            let same = previous.iter().position(|r| r.entry.cert == entry.cert);
            match same.map(|i| previous.swap_remove(i)) {
                Some(r) if r.entry == entry && *r.config == *config => self.running.push(r),
                replaced => {
                    let after = replaced.map(|r| {
                        info!(names = ?r.entry.names, "ACME certificate's configuration changed: its task starts again");
                        r.stop.cancel();
                        r.handle
                    });
                    if after.is_none() && self.started {
                        info!(names = ?entry.names, "ACME certificate added by a reload");
                    }
                    self.start(entry, &config, after);
                }
            }
        }
        for r in previous {
            info!(names = ?r.entry.names, "ACME certificate no longer configured: its task stops");
            r.stop.cancel();
        }
        self.started = true;
    }

    /// Starts a task for `entry`, once the task it replaces (`after`) has finished.
    fn start(&mut self, entry: Entry, config: &Arc<AcmeConfig>, after: Option<JoinHandle<()>>) {
        // The directory exists from the start, so that the file watcher can watch it.
        if let Some(dir) = entry.cert.parent()
            && let Err(e) = store::private_dir(dir)
        {
            warn!(names = ?entry.names, error = %e, "the ACME state directory cannot be created");
        }
        let stop = self.shutdown.child_token();
        let task = Task {
            renew_now: self.live.acme.renew_now.subscribe(),
            config: config.clone(),
            live: self.live.clone(),
            reloader: self.reloader.clone(),
            stop: stop.clone(),
            entry: entry.clone(),
        };
        let handle = tokio::spawn(async move {
            if let Some(previous) = after {
                let _ = previous.await;
            }
            task.run().await;
        });
        self.running.push(Running {
            entry,
            config: config.clone(),
            stop,
            handle,
        });
    }
}

/// The ACME entries of `live`'s certificate set under `config`, each chain file once (the
/// redirector and the proxy may list the same certificate: one task obtains it for both).
fn entries(live: &Live, config: &AcmeConfig) -> Vec<Entry> {
    let set = live.certificates.load();
    let mut out: Vec<Entry> = Vec::new();
    for c in set.configs() {
        let Some(overrides) = &c.acme else { continue };
        if out.iter().any(|e| e.cert == c.cert) {
            continue;
        }
        out.push(Entry {
            names: c.names.clone(),
            settings: config.settings(overrides),
            cert: c.cert.clone(),
            key: c.key.clone(),
        });
    }
    out
}
