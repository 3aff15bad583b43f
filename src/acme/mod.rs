//! Certificates geoline obtains and renews by itself: ACME (RFC 8555) with DNS-01 only.
//!
//! The CA must reach nothing but DNS: the challenge record is written into a zone this
//! process serves (through its own update path) or, by RFC 2136 with TSIG, into one it
//! does not, so HTTP-01 and TLS-ALPN-01's need for the CA to reach ports 80/443 (which
//! mainland filtering and Hong Kong throttling make unreliable) never arises.
//!
//! This module owns the life of every certificate entry that says `acme`: one task each,
//! which serves what is stored in the state directory from the first handshake (a restart
//! never waits for the CA), orders a new certificate when none is stored or its renewal
//! time ([`renew`]) has come or `POST /acme/renew` asks, writes it ([`store`]) and has the
//! reloader swap it into the TLS listeners (established connections keep theirs), retries
//! a failure with a growing wait while the old certificate keeps serving, and warns in the
//! log from 14 days before expiry. [`AcmeStatus`] is what `/status` and `/metrics` show.
//! The protocol is instant-acme's ([`order`]); publishing and checking the challenge are
//! [`dns01`] and [`propagation`]. It does not choose certificates for handshakes
//! ([`crate::certs`]) nor read them from disk.

pub(crate) mod config;
pub(crate) mod dns01;
pub(crate) mod order;
pub(crate) mod propagation;
pub(crate) mod renew;
pub(crate) mod store;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::exposition::Exposition;
use crate::live::Live;
use crate::reload::{Reloader, Target, Trigger};
use crate::util::time::format_rfc3339;
use config::{AcmeConfig, OrderSettings};

/// What is known of one ACME certificate, for `/status` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CertStatus {
    /// Its names, as configured.
    pub(crate) names: Vec<String>,
    /// The CA's directory URL.
    pub(crate) directory: String,
    /// The issuer of the certificate serving (RFC 4514: `CN=..., O=...`).
    pub(crate) issuer: Option<String>,
    /// When the certificate serving expires, seconds since the epoch.
    pub(crate) not_after: Option<i64>,
    /// When it is due for renewal (or the next attempt after a failure).
    pub(crate) next_attempt: Option<i64>,
    /// When an order was last attempted.
    pub(crate) last_attempt: Option<i64>,
    /// When one last succeeded.
    pub(crate) last_success: Option<i64>,
    /// Why the last attempt failed; `None` after a success.
    pub(crate) last_error: Option<String>,
    /// Orders that succeeded and failed since the start.
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    /// Failures in a row (the backoff).
    pub(crate) failing_for: u32,
}

/// Every ACME certificate's status, and the switch that renews them all now.
pub(crate) struct AcmeStatus {
    certificates: Mutex<Vec<CertStatus>>,
    /// Counts the requests to renew now: a task subscribed before a request sees it even
    /// if it was busy when the request came (a notification would be lost then).
    renew_now: tokio::sync::watch::Sender<u64>,
}

impl Default for AcmeStatus {
    fn default() -> AcmeStatus {
        AcmeStatus {
            certificates: Mutex::new(Vec::new()),
            renew_now: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl std::fmt::Debug for AcmeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(lock(&self.certificates).iter())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AcmeStatus {
    /// A copy of every certificate's status, in configuration order.
    pub(crate) fn certificates(&self) -> Vec<CertStatus> {
        lock(&self.certificates).clone()
    }

    /// Asks every ACME certificate's task to order a new certificate now.
    pub(crate) fn renew_all_now(&self) -> usize {
        self.renew_now.send_modify(|n| *n = n.wrapping_add(1));
        lock(&self.certificates).len()
    }

    fn update(&self, slot: usize, f: impl FnOnce(&mut CertStatus)) {
        if let Some(s) = lock(&self.certificates).get_mut(slot) {
            f(s);
        }
    }

    /// `/status`'s `acme` list.
    pub(crate) fn status_json(&self) -> Value {
        let time = |t: Option<i64>| t.map(|t| format_rfc3339(u64::try_from(t).unwrap_or(0)));
        Value::Array(
            self.certificates()
                .iter()
                .map(|c| {
                    json!({
                        "names": c.names,
                        "directory": c.directory,
                        "issuer": c.issuer,
                        "not_after": time(c.not_after),
                        "next_attempt": time(c.next_attempt),
                        "last_attempt": time(c.last_attempt),
                        "last_success": time(c.last_success),
                        "last_error": c.last_error,
                        "successes": c.successes,
                        "failures": c.failures,
                    })
                })
                .collect(),
        )
    }

    /// The ACME families: expiry, last attempt and orders by result, per certificate.
    pub(crate) fn render_metrics(&self, out: &mut Exposition) {
        let certificates = self.certificates();
        let label = |c: &CertStatus| c.names.join(",");
        let gauges: [CertGauge; 2] = [
            (
                "geoline_acme_certificate_not_after_seconds",
                "When the ACME certificate serving expires (0: none obtained yet), by its names",
                |c| c.not_after,
            ),
            (
                "geoline_acme_last_attempt_seconds",
                "When an ACME order was last attempted (0: never since the start)",
                |c| c.last_attempt,
            ),
        ];
        for (family, help, value) in gauges {
            out.family(family, "gauge", help);
            for c in &certificates {
                out.sample(
                    family,
                    &[("names", &label(c))],
                    value(c).unwrap_or(0) as f64,
                );
            }
        }
        out.family(
            "geoline_acme_orders_total",
            "counter",
            "ACME orders since the start, by certificate and result",
        );
        for c in &certificates {
            let names = label(c);
            out.sample(
                "geoline_acme_orders_total",
                &[("names", &names), ("result", "success")],
                c.successes as f64,
            );
            out.sample(
                "geoline_acme_orders_total",
                &[("names", &names), ("result", "failure")],
                c.failures as f64,
            );
        }
    }
}

/// A per-certificate gauge: its family, its help and its value (a time, 0 when none).
type CertGauge = (&'static str, &'static str, fn(&CertStatus) -> Option<i64>);

/// One certificate entry to keep obtained.
struct Managed {
    /// Its slot in [`AcmeStatus`].
    slot: usize,
    names: Vec<String>,
    settings: OrderSettings,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

/// Starts one task per ACME certificate of `live`'s set, until `shutdown`.
pub(crate) fn spawn(
    config: &AcmeConfig,
    live: &Arc<Live>,
    reloader: &Arc<Reloader>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let set = live.certificates.load_full();
    let mut managed = Vec::new();
    for c in set.configs() {
        let Some(overrides) = &c.acme else { continue };
        let settings = config.settings(overrides);
        managed.push(Managed {
            slot: managed.len(),
            names: c.names.clone(),
            settings,
            cert: c.cert.clone(),
            key: c.key.clone(),
        });
    }
    *lock(&live.acme.certificates) = managed
        .iter()
        .map(|m| CertStatus {
            names: m.names.clone(),
            directory: m.settings.directory.clone(),
            ..CertStatus::default()
        })
        .collect();
    for m in managed {
        // The directory exists from the start, so that the file watcher can watch it.
        if let Some(dir) = m.cert.parent()
            && let Err(e) = store::private_dir(dir)
        {
            warn!(names = ?m.names, error = %e, "the ACME state directory cannot be created");
        }
        let task = Task {
            renew_now: live.acme.renew_now.subscribe(),
            config: config.clone(),
            live: live.clone(),
            reloader: reloader.clone(),
            shutdown: shutdown.clone(),
            cert: m,
        };
        tasks.spawn(task.run());
    }
}

struct Task {
    renew_now: tokio::sync::watch::Receiver<u64>,
    config: AcmeConfig,
    live: Arc<Live>,
    reloader: Arc<Reloader>,
    shutdown: CancellationToken,
    cert: Managed,
}

/// The problem type of an account the CA does not know (RFC 8555 6.7).
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// The longest sleep between two looks at a certificate (for the expiry warning, and the
/// CA's renewal information, which can move the window).
const MAX_SLEEP: Duration = Duration::from_secs(6 * 3600);

impl Task {
    async fn run(mut self) {
        let status = &self.live.acme;
        let slot = self.cert.slot;
        // A renewal asked for (`POST /acme/renew`) stays asked for until it succeeds: a
        // failure is retried with backoff, not forgotten until the certificate is due.
        let mut asked = false;
        loop {
            let now = unix_now();
            let due = self.due(now).await;
            let due = if asked { now } else { due };
            let wait = Duration::from_secs(u64::try_from(due - now).unwrap_or(0));
            if !wait.is_zero() {
                status.update(slot, |s| {
                    if s.failing_for == 0 {
                        s.next_attempt = Some(due);
                    }
                });
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = self.renew_now.changed() => {
                        info!(names = ?self.cert.names, "ACME renewal asked for");
                        asked = true;
                    }
                    _ = tokio::time::sleep(wait.min(MAX_SLEEP)) => {
                        if wait > MAX_SLEEP {
                            continue;
                        }
                    }
                }
            }
            let at = unix_now();
            status.update(slot, |s| s.last_attempt = Some(at));
            match self.attempt().await {
                Ok(()) => {
                    asked = false;
                    info!(names = ?self.cert.names, "ACME certificate obtained and serving");
                    status.update(slot, |s| {
                        s.last_success = Some(unix_now());
                        s.last_error = None;
                        s.successes += 1;
                        s.failing_for = 0;
                    });
                }
                Err(e) => {
                    let mut failing_for = 0;
                    status.update(slot, |s| {
                        s.last_error = Some(e.clone());
                        s.failures += 1;
                        s.failing_for = s.failing_for.saturating_add(1);
                        failing_for = s.failing_for;
                    });
                    let wait =
                        renew::backoff(failing_for, self.config.retry_min, self.config.retry_max);
                    let next = unix_now() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2);
                    status.update(slot, |s| s.next_attempt = Some(next));
                    warn!(names = ?self.cert.names, error = %e, retry_in_secs = wait.as_secs(), "ACME order failed; the certificate serving (if any) keeps serving");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = self.renew_now.changed() => asked = true,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// This certificate's index in the live set now (what the reloader swaps), found by
    /// its files: a configuration reload may have added or removed certificates before it.
    fn index(&self) -> Option<usize> {
        self.live.certificates.load().index_of(&self.cert.cert)
    }

    /// When the certificate serving is due for renewal (now when there is none), with
    /// its status brought up to date and the expiry warning logged.
    async fn due(&self, now: i64) -> i64 {
        let leaf = self
            .index()
            .and_then(|i| self.live.certificates.load().leaf(i));
        let Some(leaf) = leaf else {
            return now;
        };
        let Some((not_before, not_after)) = crate::certs::validity(&leaf) else {
            return now;
        };
        let issuer = crate::certs::issuer(&leaf);
        self.live.acme.update(self.cert.slot, |s| {
            s.not_after = Some(not_after);
            s.issuer = issuer;
        });
        if let Some(days) = renew::expiry_warning(now, not_after) {
            warn!(names = ?self.cert.names, days_left = days, "the ACME certificate expires soon and is not renewed yet");
        }
        let window = match order::stored_account(&self.config, &self.cert.settings).await {
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
        let account = order::account(&self.config, &self.cert.settings)
            .await
            .map_err(|e| e.to_string())?;
        let obtain = |account: instant_acme::Account| async move {
            order::obtain(
                &self.live,
                &self.config,
                &account,
                &self.cert.names,
                self.cert.settings.key_type,
            )
            .await
        };
        let issued = match obtain(account).await {
            // A CA that lost its accounts (a test CA restarted, an account deactivated
            // elsewhere): a new account, once.
            Err(order::OrderError::Acme(instant_acme::Error::Api(problem)))
                if problem.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST) =>
            {
                warn!(directory = %self.cert.settings.directory, "the CA does not know the stored account: creating a new one");
                let path = self.config.account_file(&self.cert.settings.directory);
                let _ = std::fs::remove_file(&path);
                let account = order::account(&self.config, &self.cert.settings)
                    .await
                    .map_err(|e| e.to_string())?;
                obtain(account).await
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        let index = self
            .index()
            .ok_or("the certificate is no longer in the configuration")?;
        store::save_certificate(
            &self.cert.cert,
            &self.cert.key,
            &issued.chain_pem,
            &issued.key_pem,
        )
        .map_err(|e| e.to_string())?;
        self.reloader
            .reload(Target::Certificate(index), Trigger::Acme)
            .await
            .map_err(|e| format!("the new certificate does not load: {e}"))?;
        let leaf = self.live.certificates.load().leaf(index);
        if let Some((_, not_after)) = leaf.as_ref().and_then(crate::certs::validity) {
            let issuer = leaf.as_ref().and_then(crate::certs::issuer);
            self.live.acme.update(self.cert.slot, |s| {
                s.not_after = Some(not_after);
                s.issuer = issuer;
            });
        }
        Ok(())
    }
}
