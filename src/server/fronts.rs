//! The HTTP front-ends, `[redirect]` and `[proxy]`, as the server starts them and as a
//! configuration reload changes them.
//!
//! This module owns each front-end's life, and start and reload are one path: the first
//! configuration is applied to front-ends that run nothing yet. [`Fronts::prepare`] builds,
//! opens and binds everything a configuration asks for and may fail, changing nothing;
//! [`Fronts::apply`] only swaps, starts and stops. Per front-end:
//!
//! - the app (rules, origin, host pairs, forwarded headers), the limits and the trusted
//!   proxies, rebuilt whole when its section changed: new connections take the limits
//!   current when they are accepted, each request the app current when its head has been
//!   read (on a kept-alive connection too), and a request in flight finishes with the app
//!   it started with;
//! - the access log, reused when its target is the same, else opened anew, flushed by a
//!   task of its own and reopened on SIGUSR1 with the others;
//! - the listeners, kept, changed, added or stopped as [`crate::http::listeners`] says (a
//!   bind failure refuses the reload); a section added starts a front-end, a section
//!   removed stops all of its listeners, each draining;
//! - the counters, kept for the life of the process (a section removed and added again
//!   counts on).
//!
//! And for both: the certificate set ([`crate::certs`]), read anew and swapped into
//! [`Live`] whole when the certificates a TLS listener serves changed (a name, a file, an
//! ACME entry, a front-end gaining or losing its TLS listeners), before any new listener
//! accepts. Handshakes from then on choose among the new set; established connections keep
//! the certificate they were made with.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;

use crate::certs::{CertError, Certificates};
use crate::config::{Config, RedirectConfig};
use crate::http::access_log::{AccessLog, AccessLogError, AccessLogTarget};
use crate::http::config::FrontConfig;
use crate::http::listener::FrontState;
use crate::http::listeners::{self, FrontListeners, Plan, Serving};
use crate::http::{FrontError, Handler, Role};
use crate::live::Live;
use crate::proxy::serve::ProxyApp;
use crate::proxy::{ProxyConfig, ProxyConfigError, ProxyMetrics};
use crate::redirect::RedirectError;
use crate::redirect::app::App;
use crate::redirect::metrics::RedirectMetrics;

/// Every access log the front-ends write, for SIGUSR1 and the flush at shutdown.
pub(crate) type AccessLogs = Arc<Mutex<Vec<Arc<AccessLog>>>>;

/// Why `[redirect]` or `[proxy]` could not be set up; nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum FrontsError {
    /// The redirector's origin could not be set up (its CA file, its URL).
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    /// `[proxy]` could not be built.
    #[error(transparent)]
    Proxy(#[from] ProxyConfigError),
    /// An access log file cannot be opened.
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
    /// A listener cannot be bound, or TLS cannot be set up.
    #[error(transparent)]
    Listen(#[from] FrontError),
    /// A certificate of a front-end's TLS listeners cannot be read.
    #[error("{role}: {source}")]
    Certificate {
        /// `redirect` or `proxy`.
        role: &'static str,
        /// Which file, and why.
        #[source]
        source: CertError,
    },
}

/// One front-end: its counters, and what runs while its section is configured.
struct Slot<C, H, M> {
    role: Role,
    metrics: Arc<M>,
    running: Option<Front<C, H>>,
}

/// A front-end whose section is configured.
struct Front<C, H> {
    /// The section as running.
    config: C,
    log: (AccessLogTarget, Option<Arc<AccessLog>>),
    listeners: FrontListeners<H>,
}

/// What a configuration does to one front-end.
enum Change<C, H> {
    /// Its section is the same as running (or absent from both).
    Same,
    /// Its section was removed: its listeners stop.
    Remove,
    /// Its section was added or edited.
    Set(Box<Built<C, H>>),
}

/// A front-end built for an added or edited section: its app and log, its listeners.
struct Built<C, H> {
    config: C,
    state: FrontState<H>,
    log: (AccessLogTarget, Option<Arc<AccessLog>>),
    /// The log was opened for this change (its flush task starts when applied).
    new_log: bool,
    listeners: Plan,
}

/// What a configuration changes of the front-ends, built and bound, ready to apply.
pub(crate) struct Prepared {
    redirect: Change<RedirectConfig, App>,
    proxy: Change<ProxyConfig, ProxyApp>,
    /// The new certificate set, when the certificates served changed.
    certificates: Option<Certificates>,
}

/// The front-ends of the server.
pub(crate) struct Fronts {
    live: Arc<Live>,
    logs: AccessLogs,
    serving: Serving,
    /// Made once per front-end: handshakes read the live set's part of the front-end.
    acceptors: [tokio_rustls::TlsAcceptor; 2],
    redirect: Mutex<Slot<RedirectConfig, App, RedirectMetrics>>,
    proxy: Mutex<Slot<ProxyConfig, ProxyApp, ProxyMetrics>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether two sections differ: compared as `Debug` writes them, since the section types
/// hold compiled rules and have no `PartialEq`, and every field is in their `Debug`.
fn differs<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

impl<C: Debug + Clone, H: Handler, M> Slot<C, H, M> {
    fn new(role: Role) -> Self
    where
        M: Default,
    {
        Slot {
            role,
            metrics: Arc::default(),
            running: None,
        }
    }

    /// What `next` (this front-end's section, if configured) changes: the listeners it
    /// adds bound, its log opened, its app built by `make`.
    fn prepare(
        &self,
        next: Option<&C>,
        front: impl Fn(&C) -> &FrontConfig,
        runtime: &tokio::runtime::Handle,
        make: impl FnOnce(&C, &Arc<M>, Option<Arc<AccessLog>>) -> Result<H, FrontsError>,
    ) -> Result<Change<C, H>, FrontsError> {
        let running = self.running.as_ref();
        let Some(next) = next else {
            return Ok(match running {
                Some(_) => Change::Remove,
                None => Change::Same,
            });
        };
        if running.is_some_and(|r| !differs(&r.config, next)) {
            return Ok(Change::Same);
        }
        let config = front(next);
        // Bound first: a port taken is the likeliest failure, and it leaves no file opened.
        let running_listeners = running.map(|r| r.listeners.configs()).unwrap_or_default();
        let listeners = listeners::plan(self.role, &running_listeners, &config.listeners, runtime)?;
        let target = config.access_log.clone();
        let (log, new_log) = match running {
            Some(r) if r.log.0 == target => (r.log.1.clone(), false),
            _ => (AccessLog::open(&target)?, true),
        };
        let app = make(next, &self.metrics, log.clone())?;
        Ok(Change::Set(Box::new(Built {
            config: next.clone(),
            state: crate::http::state(config, Arc::new(app)),
            log: (target, log),
            new_log,
            listeners,
        })))
    }

    /// Applies `change`; `reload`: it comes from a configuration reload (logged).
    fn apply(&mut self, change: Change<C, H>, fronts: &Fronts, reload: bool) {
        match change {
            Change::Same => {}
            Change::Remove => {
                if let Some(front) = self.running.take() {
                    front.listeners.stop(&fronts.serving);
                }
            }
            Change::Set(built) => {
                let Built {
                    config,
                    state,
                    log,
                    new_log,
                    listeners: plan,
                } = *built;
                if new_log && let Some(log) = &log.1 {
                    fronts.start_log(log);
                }
                match &mut self.running {
                    Some(front) => {
                        front.listeners.front().store(Arc::new(state));
                        front.listeners.apply(plan, &fronts.serving, reload);
                        front.config = config;
                        front.log = log;
                    }
                    None => {
                        let acceptor = fronts.acceptors[self.role.part()].clone();
                        let state = Arc::new(ArcSwap::from_pointee(state));
                        let mut listeners = FrontListeners::new(self.role, state, acceptor);
                        listeners.apply(plan, &fronts.serving, reload);
                        self.running = Some(Front {
                            config,
                            log,
                            listeners,
                        });
                    }
                }
            }
        }
    }

    fn addresses(&self) -> Vec<SocketAddr> {
        self.running
            .as_ref()
            .map(|f| f.listeners.addresses())
            .unwrap_or_default()
    }
}

impl Fronts {
    /// No front-end running yet; their listeners will run on `serving`, their logs be kept
    /// in `logs`, their TLS listeners serve `live`'s certificates.
    pub(crate) fn new(
        live: Arc<Live>,
        logs: AccessLogs,
        serving: Serving,
    ) -> Result<Fronts, FrontError> {
        let acceptors = [
            crate::http::acceptor(Role::Redirect, live.clone())?,
            crate::http::acceptor(Role::Proxy, live.clone())?,
        ];
        Ok(Fronts {
            live,
            logs,
            serving,
            acceptors,
            redirect: Mutex::new(Slot::new(Role::Redirect)),
            proxy: Mutex::new(Slot::new(Role::Proxy)),
        })
    }

    /// The redirector's counters (kept whether `[redirect]` is configured or not).
    pub(crate) fn redirect_metrics(&self) -> Arc<RedirectMetrics> {
        lock(&self.redirect).metrics.clone()
    }

    /// `[proxy]`'s counters (kept whether it is configured or not).
    pub(crate) fn proxy_metrics(&self) -> Arc<ProxyMetrics> {
        lock(&self.proxy).metrics.clone()
    }

    /// The redirector's listeners as bound, in configuration order.
    pub(crate) fn redirect_addresses(&self) -> Vec<SocketAddr> {
        lock(&self.redirect).addresses()
    }

    /// `[proxy]`'s listeners as bound, in configuration order.
    pub(crate) fn proxy_addresses(&self) -> Vec<SocketAddr> {
        lock(&self.proxy).addresses()
    }

    /// Builds, opens and binds what `next` changes of the front-ends (at start: all of
    /// them). Fails, having changed nothing, when an app cannot be built, a log opened, an
    /// address bound or a certificate read.
    pub(crate) fn prepare(&self, next: &Config) -> Result<Prepared, FrontsError> {
        let runtime = &self.serving.runtime;
        let wanted = [
            next.redirect.as_ref().map(|r| &r.front),
            next.proxy.as_ref().map(|p| &p.front),
        ];
        let serving = self.live.certificates.load();
        let same = [Role::Redirect, Role::Proxy].iter().all(|role| {
            let wanted = crate::http::wanted_certificates(wanted[role.part()]);
            serving.part_configs(role.part()).eq(wanted.iter())
        });
        let certificates = if same {
            None
        } else {
            let set = crate::http::certificates(wanted).map_err(|(role, source)| {
                FrontsError::Certificate {
                    role: role.name(),
                    source,
                }
            })?;
            Some(set)
        };
        let proxy = lock(&self.proxy).prepare(
            next.proxy.as_ref(),
            |p| &p.front,
            runtime,
            |config, metrics, log| {
                let proxy = config.build_counting(metrics.clone())?;
                Ok(crate::proxy::serve::app(config, proxy, log))
            },
        )?;
        // Last: building the redirector's app makes its rules the ones `/metrics` lists.
        let redirect = lock(&self.redirect).prepare(
            next.redirect.as_ref(),
            |r| &r.front,
            runtime,
            |config, metrics, log| Ok(crate::redirect::app(config, &self.live, metrics, log)?),
        )?;
        Ok(Prepared {
            redirect,
            proxy,
            certificates,
        })
    }

    /// Applies what [`Fronts::prepare`] made: the certificates first, so that a new TLS
    /// listener's first handshake has them. `reload`: from a configuration reload (the
    /// start's listeners are logged once all of them are bound). Returns whether the
    /// certificate set was replaced.
    pub(crate) fn apply(&self, prepared: Prepared, reload: bool) -> bool {
        let replaced = prepared.certificates.is_some();
        if let Some(set) = prepared.certificates {
            self.live.certificates.store(set);
        }
        lock(&self.redirect).apply(prepared.redirect, self, reload);
        lock(&self.proxy).apply(prepared.proxy, self, reload);
        replaced
    }

    /// Starts the flush task of a newly opened access log and keeps it for SIGUSR1.
    fn start_log(&self, log: &Arc<AccessLog>) {
        self.serving.runtime.spawn(
            log.clone()
                .flush_periodically(self.serving.shutdown.clone()),
        );
        lock(&self.logs).push(log.clone());
    }
}
