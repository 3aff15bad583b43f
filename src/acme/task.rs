//! The life of one ACME certificate: serve what is stored, order when due, swap it in.
//!
//! This module owns one certificate's loop: the renewal time of the certificate serving
//! ([`super::renew`], the CA's renewal information when it gives one), the order when it
//! comes, none is stored, or `POST /acme/renew` asks; the new files written
//! ([`super::store`]) and reloaded into every listener serving them; failures retried with
//! a growing wait while the old certificate keeps serving; the log's warning from 14 days
//! before expiry. Its certificate is known by its chain file, not by a place in the set,
//! which a configuration reload may renumber. It does not decide which tasks run
//! ([`super::supervisor`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::{AcmeConfig, OrderSettings};
use super::{order, renew, store, unix_now};
use crate::live::Live;
use crate::reload::{Reloader, Target, Trigger};

/// One ACME certificate entry as the set and `[acme]` have it: what a task is started for;
/// a task whose entry changes is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) names: Vec<String>,
    pub(super) settings: OrderSettings,
    /// Its chain file under the state directory: what the task finds it by in the set.
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

pub(super) struct Task {
    pub(super) renew_now: tokio::sync::watch::Receiver<u64>,
    pub(super) config: Arc<AcmeConfig>,
    pub(super) live: Arc<Live>,
    pub(super) reloader: Arc<Reloader>,
    /// Cancelled at shutdown, or when a configuration reload replaces or removes the
    /// entry. An order under way is finished first (its challenge records removed).
    pub(super) stop: CancellationToken,
    pub(super) entry: Entry,
}

/// The problem type of an account the CA does not know (RFC 8555 6.7).
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// The longest sleep between two looks at a certificate (for the expiry warning, and the
/// CA's renewal information, which can move the window).
const MAX_SLEEP: Duration = Duration::from_secs(6 * 3600);

impl Task {
    pub(super) async fn run(mut self) {
        let status = &self.live.acme;
        let cert = self.entry.cert.clone();
        // A renewal asked for (`POST /acme/renew`) stays asked for until it succeeds: a
        // failure is retried with backoff, not forgotten until the certificate is due.
        let mut asked = false;
        loop {
            let now = unix_now();
            let due = self.due(now).await;
            let due = if asked { now } else { due };
            let wait = Duration::from_secs(u64::try_from(due - now).unwrap_or(0));
            if !wait.is_zero() {
                status.update(&cert, |s| {
                    if s.failing_for == 0 {
                        s.next_attempt = Some(due);
                    }
                });
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = self.renew_now.changed() => {
                        info!(names = ?self.entry.names, "ACME renewal asked for");
                        asked = true;
                    }
                    _ = tokio::time::sleep(wait.min(MAX_SLEEP)) => {
                        if wait > MAX_SLEEP {
                            continue;
                        }
                    }
                }
            }
            if self.stop.is_cancelled() {
                return;
            }
            let at = unix_now();
            status.update(&cert, |s| s.last_attempt = Some(at));
            match self.attempt().await {
                Ok(()) => {
                    asked = false;
                    info!(names = ?self.entry.names, "ACME certificate obtained and serving");
                    status.update(&cert, |s| {
                        s.last_success = Some(unix_now());
                        s.last_error = None;
                        s.successes += 1;
                        s.failing_for = 0;
                    });
                }
                Err(e) => {
                    let mut failing_for = 0;
                    status.update(&cert, |s| {
                        s.last_error = Some(e.clone());
                        s.failures += 1;
                        s.failing_for = s.failing_for.saturating_add(1);
                        failing_for = s.failing_for;
                    });
                    let wait =
                        renew::backoff(failing_for, self.config.retry_min, self.config.retry_max);
                    let next = unix_now() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2);
                    status.update(&cert, |s| s.next_attempt = Some(next));
                    warn!(names = ?self.entry.names, error = %e, retry_in_secs = wait.as_secs(), "ACME order failed; the certificate serving (if any) keeps serving");
                    tokio::select! {
                        _ = self.stop.cancelled() => return,
                        _ = self.renew_now.changed() => asked = true,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// The leaf serving now for this entry (DER), if it has been obtained.
    fn leaf(&self) -> Option<rustls::pki_types::CertificateDer<'static>> {
        let set = self.live.certificates.load();
        let index = set.index_of(&self.entry.cert)?;
        set.leaf(index)
    }

    /// When the certificate serving is due for renewal (now when there is none), with
    /// its status brought up to date and the expiry warning logged.
    async fn due(&self, now: i64) -> i64 {
        let Some(leaf) = self.leaf() else {
            return now;
        };
        let Some((not_before, not_after)) = crate::certs::validity(&leaf) else {
            return now;
        };
        let issuer = crate::certs::issuer(&leaf);
        self.live.acme.update(&self.entry.cert, |s| {
            s.not_after = Some(not_after);
            s.issuer = issuer;
        });
        if let Some(days) = renew::expiry_warning(now, not_after) {
            warn!(names = ?self.entry.names, days_left = days, "the ACME certificate expires soon and is not renewed yet");
        }
        let window = match order::stored_account(&self.config, &self.entry.settings).await {
            Some(account) => order::renewal_window(&account, &leaf).await,
            None => None,
        };
        let mut jitter = [0u8; 2];
        let _ = getrandom::fill(&mut jitter);
        let jitter = f64::from(u16::from_be_bytes(jitter)) / f64::from(u16::MAX);
        renew::renewal_time(not_before, not_after, window, jitter)
    }

    /// One order, written to the state directory and swapped into the listeners.
    async fn attempt(&self) -> Result<(), String> {
        let account = order::account(&self.config, &self.entry.settings)
            .await
            .map_err(|e| e.to_string())?;
        // A renewal replaces the certificate serving now.
        let replaces = self.leaf().as_ref().and_then(order::certificate_id);
        let obtain = |account: instant_acme::Account| {
            let replaces = replaces.clone();
            async move {
                order::obtain(
                    &self.live,
                    &self.config,
                    &account,
                    &self.entry.names,
                    self.entry.settings.key_type,
                    replaces,
                )
                .await
            }
        };
        let issued = match obtain(account).await {
            // A CA that lost its accounts (a test CA restarted, an account deactivated
            // elsewhere): a new account, once.
            Err(order::OrderError::Acme(instant_acme::Error::Api(problem)))
                if problem.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST) =>
            {
                warn!(directory = %self.entry.settings.directory, "the CA does not know the stored account: creating a new one");
                let path = self
                    .config
                    .account_file(&self.entry.settings.directory, &self.entry.settings.contact);
                let _ = std::fs::remove_file(&path);
                let account = order::account(&self.config, &self.entry.settings)
                    .await
                    .map_err(|e| e.to_string())?;
                obtain(account).await
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        store::save_certificate(
            &self.entry.cert,
            &self.entry.key,
            &issued.chain_pem,
            &issued.key_pem,
        )
        .map_err(|e| e.to_string())?;
        self.swap_in().await?;
        let leaf = self.leaf();
        if let Some((_, not_after)) = leaf.as_ref().and_then(crate::certs::validity) {
            let issuer = leaf.as_ref().and_then(crate::certs::issuer);
            self.live.acme.update(&self.entry.cert, |s| {
                s.not_after = Some(not_after);
                s.issuer = issuer;
            });
        }
        Ok(())
    }

    /// Reloads the new files into every place of the set that serves them (the redirector
    /// and the proxy may list the same certificate). A configuration reload may renumber
    /// the set between finding a place and reloading it: each place is checked afterwards
    /// to serve the files' leaf, and found again if not.
    async fn swap_in(&self) -> Result<(), String> {
        for _ in 0..3 {
            let places: Vec<usize> = {
                let set = self.live.certificates.load();
                set.configs()
                    .enumerate()
                    .filter(|(_, c)| c.cert == self.entry.cert)
                    .map(|(i, _)| i)
                    .collect()
            };
            if places.is_empty() {
                // The entry is gone from the configuration: nothing serves it.
                return Ok(());
            }
            for &i in &places {
                self.reloader
                    .reload(Target::Certificate(i), Trigger::Acme)
                    .await
                    .map_err(|e| format!("the new certificate does not load: {e}"))?;
            }
            if self.serves_stored_leaf() {
                return Ok(());
            }
        }
        Err("the new certificate was written but the listeners' certificates kept changing".into())
    }

    /// Whether every place of the set with this entry's files serves the leaf stored in
    /// them.
    fn serves_stored_leaf(&self) -> bool {
        let Ok(pem) = std::fs::read(&self.entry.cert) else {
            return false;
        };
        let Some(Ok(stored)) = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).next()
        else {
            return false;
        };
        let set = self.live.certificates.load();
        set.configs()
            .enumerate()
            .filter(|(_, c)| c.cert == self.entry.cert)
            .all(|(i, _)| set.leaf(i).is_some_and(|leaf| leaf == stored))
    }
}
