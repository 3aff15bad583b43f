//! The HTTP front-ends as a configuration reload sees them: `[redirect]` and `[proxy]`
//! rebuilt from an edited file and swapped into their running listeners.
//!
//! This module owns what of a front-end a reload changes live and how: the app (rules,
//! origin, host pairs, forwarded-header settings), the access log (reused when its target
//! is the same, else opened anew, flushed by a task of its own and reopened on SIGUSR1
//! with the others), the limits and the trusted proxies. Everything is built and opened in
//! [`Fronts::prepare`], which may fail and then changes nothing; [`Fronts::apply`] only
//! swaps, one store per front-end. New connections take the limits current when they are
//! accepted; each request takes the app current when its head has been read, on a
//! kept-alive connection too, and a request in flight finishes with the app it started
//! with. The listeners themselves and their certificates are not this module's: changing
//! them needs a restart ([`crate::reload::configuration`] refuses such an edit whole).

use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http::access_log::{AccessLog, AccessLogError, AccessLogTarget};
use crate::http::config::FrontConfig;
use crate::http::listener::FrontState;
use crate::live::Live;
use crate::proxy::serve::{ProxyApp, ProxyState};
use crate::proxy::{ProxyConfigError, ProxyMetrics};
use crate::redirect::app::App;
use crate::redirect::metrics::RedirectMetrics;
use crate::redirect::{RedirectError, RedirectState};

/// Every access log the front-ends write, for SIGUSR1 and the flush at shutdown.
pub(crate) type AccessLogs = Arc<Mutex<Vec<Arc<AccessLog>>>>;

/// Why an edited `[redirect]` or `[proxy]` could not be built; nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum FrontReloadError {
    /// The redirector's origin could not be set up (its CA file, its URL).
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    /// `[proxy]` could not be built.
    #[error(transparent)]
    Proxy(#[from] ProxyConfigError),
    /// A new access log file cannot be opened.
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
}

/// One running front-end: its swappable state, its counters, and its access log.
struct Front<S, M> {
    state: S,
    metrics: M,
    log: Mutex<(AccessLogTarget, Option<Arc<AccessLog>>)>,
}

impl<S, M> Front<S, M> {
    fn new(state: S, metrics: M, front: &FrontConfig, log: Option<Arc<AccessLog>>) -> Self {
        Front {
            state,
            metrics,
            log: Mutex::new((front.access_log.clone(), log)),
        }
    }

    /// The front-end for `config`: its log (the running one if the target is the same),
    /// the app `make` builds with it, the limits and trusted proxies.
    fn build<H>(
        &self,
        config: &FrontConfig,
        make: impl FnOnce(Option<Arc<AccessLog>>) -> Result<H, FrontReloadError>,
    ) -> Result<Built<H>, FrontReloadError> {
        let target = config.access_log.clone();
        let (log, new_log) = self.log_for(&target)?;
        let app = make(log.clone())?;
        Ok(Built {
            state: crate::http::state(config, Arc::new(app)),
            target,
            log,
            new_log,
        })
    }

    /// The log for `target`: the running one if it is the same target, else opened anew
    /// (`true`: to be started when applied).
    fn log_for(
        &self,
        target: &AccessLogTarget,
    ) -> Result<(Option<Arc<AccessLog>>, bool), AccessLogError> {
        let current = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if current.0 == *target {
            return Ok((current.1.clone(), false));
        }
        Ok((AccessLog::open(target)?, true))
    }
}

/// The running front-ends.
pub(crate) struct Fronts {
    live: Arc<Live>,
    logs: AccessLogs,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
    redirect: Option<Front<RedirectState, Arc<RedirectMetrics>>>,
    proxy: Option<Front<ProxyState, Arc<ProxyMetrics>>>,
}

/// A front-end built from the edited file, ready to swap in.
struct Built<H> {
    state: FrontState<H>,
    target: AccessLogTarget,
    log: Option<Arc<AccessLog>>,
    new_log: bool,
}

/// The front-ends built from an edited configuration.
pub(crate) struct Prepared {
    redirect: Option<Built<App>>,
    proxy: Option<Built<ProxyApp>>,
}

impl Fronts {
    pub(crate) fn new(live: Arc<Live>, logs: AccessLogs, shutdown: CancellationToken) -> Fronts {
        Fronts {
            live,
            logs,
            runtime: tokio::runtime::Handle::current(),
            shutdown,
            redirect: None,
            proxy: None,
        }
    }

    /// The running redirector, built from `front` and logging to `log`.
    pub(crate) fn with_redirect(
        mut self,
        state: RedirectState,
        metrics: Arc<RedirectMetrics>,
        front: &FrontConfig,
        log: Option<Arc<AccessLog>>,
    ) -> Fronts {
        self.redirect = Some(Front::new(state, metrics, front, log));
        self
    }

    /// The running `[proxy]`, built from `front` and logging to `log`.
    pub(crate) fn with_proxy(
        mut self,
        state: ProxyState,
        metrics: Arc<ProxyMetrics>,
        front: &FrontConfig,
        log: Option<Arc<AccessLog>>,
    ) -> Fronts {
        self.proxy = Some(Front::new(state, metrics, front, log));
        self
    }

    /// Builds the front-ends of `next` that differ from `running` (whose listeners and
    /// certificates are the running ones: the configuration reload checked that).
    pub(crate) fn prepare(
        &self,
        running: &Config,
        next: &Config,
    ) -> Result<Prepared, FrontReloadError> {
        let changed =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        let redirect = match (&self.redirect, &next.redirect) {
            (Some(front), Some(config)) if changed(&running.redirect, &next.redirect) => {
                Some(front.build(&config.front, |log| {
                    let app = crate::redirect::app(config, &self.live, &front.metrics, log)?;
                    Ok(app)
                })?)
            }
            _ => None,
        };
        let proxy = match (&self.proxy, &next.proxy) {
            (Some(front), Some(config)) if changed(&running.proxy, &next.proxy) => {
                Some(front.build(&config.front, |log| {
                    let proxy = config.build_counting(front.metrics.clone())?;
                    Ok(crate::proxy::serve::app(config, proxy, log))
                })?)
            }
            _ => None,
        };
        Ok(Prepared { redirect, proxy })
    }

    /// Swaps in what [`Fronts::prepare`] built: one store per front-end.
    pub(crate) fn apply(&self, prepared: Prepared) {
        if let (Some(front), Some(built)) = (&self.redirect, prepared.redirect) {
            self.swap(front, built);
        }
        if let (Some(front), Some(built)) = (&self.proxy, prepared.proxy) {
            self.swap(front, built);
        }
    }

    fn swap<H, M>(&self, front: &Front<Arc<arc_swap::ArcSwap<FrontState<H>>>, M>, built: Built<H>) {
        if built.new_log
            && let Some(log) = &built.log
        {
            self.runtime
                .spawn(log.clone().flush_periodically(self.shutdown.clone()));
            self.logs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(log.clone());
        }
        front.state.store(Arc::new(built.state));
        *front.log.lock().unwrap_or_else(PoisonError::into_inner) = (built.target, built.log);
    }
}
