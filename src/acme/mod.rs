//! Certificates geoline obtains and renews by itself: ACME (RFC 8555) with DNS-01 only.
//!
//! The CA must reach nothing but DNS: the challenge record is written into a zone this
//! process serves (through its own update path) or, by RFC 2136 with TSIG, into one it
//! does not, so HTTP-01 and TLS-ALPN-01's need for the CA to reach ports 80/443 (which
//! mainland filtering and Hong Kong throttling make unreliable) never arises.
//!
//! This module owns the life of every certificate entry that says `acme`: one task each
//! ([`task`]), which serves what is stored in the state directory from the first handshake
//! (a restart never waits for the CA), orders a new certificate when none is stored or its
//! renewal time ([`renew`]) has come or `POST /acme/renew` asks, writes it ([`store`]) and
//! has the reloader swap it into the TLS listeners (established connections keep theirs),
//! retries a failure with a growing wait while the old certificate keeps serving, and warns
//! in the log from 14 days before expiry. Which tasks run follows the configuration
//! ([`supervisor`]): a reload that adds, changes or removes an entry or `[acme]` starts,
//! replaces or stops them. [`AcmeStatus`] is what `/status` and `/metrics` show. The
//! protocol is instant-acme's ([`order`]); publishing and checking the challenge are
//! [`dns01`] and [`propagation`]. It does not choose certificates for handshakes
//! ([`crate::certs`]) nor read them from disk.

pub(crate) mod config;
pub(crate) mod dns01;
pub(crate) mod order;
pub(crate) mod propagation;
pub(crate) mod renew;
pub(crate) mod store;
pub(crate) mod supervisor;
pub(crate) mod task;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::exposition::Exposition;
use crate::util::time::format_rfc3339;
use config::AcmeConfig;
pub(crate) use supervisor::spawn;

/// What is known of one ACME certificate, for `/status` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CertStatus {
    /// Its chain file under the state directory: which certificate this is.
    pub(crate) cert: PathBuf,
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
    /// The running `[acme]`: set at start, replaced by a configuration reload.
    config: tokio::sync::watch::Sender<Option<Arc<AcmeConfig>>>,
}

impl Default for AcmeStatus {
    fn default() -> AcmeStatus {
        AcmeStatus {
            certificates: Mutex::new(Vec::new()),
            renew_now: tokio::sync::watch::Sender::new(0),
            config: tokio::sync::watch::Sender::new(None),
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

    /// Replaces the running `[acme]` (a configuration reload): the tasks are started
    /// again under it where it changed anything.
    pub(crate) fn configure(&self, config: &AcmeConfig) {
        self.config.send_if_modified(|running| {
            if running.as_deref() == Some(config) {
                return false;
            }
            *running = Some(Arc::new(config.clone()));
            true
        });
    }

    /// The status of the certificate whose chain file is `cert`, changed by `f`; nothing
    /// when the certificate is no longer configured.
    fn update(&self, cert: &Path, f: impl FnOnce(&mut CertStatus)) {
        if let Some(s) = lock(&self.certificates).iter_mut().find(|s| s.cert == cert) {
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
