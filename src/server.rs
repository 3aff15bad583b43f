//! Putting the parts together: load what the configuration names, start the listeners,
//! stop them.
//!
//! This module owns the order of loading (lines, databases, the compiled line map, zones)
//! and the life of the listeners. It does not parse anything itself: each part reports its
//! own errors with its own file names, and this module only adds which part failed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::admin::{self, Counters};
use crate::certs::{CertError, Certificates};
use crate::config::{AdminConfig, Config, DnsConfig, ZoneConfig};
use crate::dns::{Responder, tcp, udp};
use crate::geoip::{GeoDb, GeoIpError};
use crate::health::Health;
use crate::http::access_log::AccessLog;
use crate::http::listeners::{ListenerTasks, Serving};
use crate::http::metrics::HttpListeners;
use crate::lines::Classifier;
use crate::live::Live;
use crate::proxy::{Proxy, ProxyConfig, ProxyConfigError};
use crate::reload::watch::{self, WatchError};
use crate::reload::{Reloader, Trigger};
use crate::update::{ReplayError, Updates};
use crate::xfr::Transfers;
use crate::zone::{ZoneError, ZoneSet};
use fronts::Fronts;

mod events;
pub(crate) mod fronts;
mod notify;

/// Why the configuration's data could not be loaded (`geoline check` prints it).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A GeoIP database, or a line rule it cannot serve.
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    /// A zone file or overlay.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// The `[proxy]` section (its CA file, its host pairs).
    #[error(transparent)]
    Proxy(#[from] ProxyConfigError),
    /// A zone's update journal.
    #[error(transparent)]
    Journal(#[from] ReplayError),
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

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Loading the data failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An HTTP front-end could not start (its certificates, its origin, its access log,
    /// a listener).
    #[error(transparent)]
    Fronts(#[from] fronts::FrontsError),
    /// TLS could not be set up for the HTTP front-ends.
    #[error(transparent)]
    Tls(#[from] crate::http::FrontError),
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr} ({transport}): {source}{}", crate::diag::bind_hint(*addr, source))]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// `UDP`, `TCP` or the listener's role.
        transport: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The configuration gives nothing to serve.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The file watcher could not watch a configured file.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// `[health]` cannot run: a monitor's or a source's TLS settings (its CA file), or
    /// the state file of operators' overrides, unreadable or damaged.
    #[error(transparent)]
    Health(#[from] crate::health::SetupError),
    /// A signal handler could not be installed.
    #[error("cannot watch for {signal}: {source}")]
    Signal {
        /// The signal's name (`SIGHUP`, `SIGTERM`).
        signal: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    /// The error of a failed bind (or address query) of `transport` on `addr`.
    fn bind(
        addr: SocketAddr,
        transport: &'static str,
    ) -> impl FnOnce(std::io::Error) -> StartError {
        move |source| StartError::Bind {
            addr,
            transport,
            source,
        }
    }
}

/// Everything the configuration names, loaded and checked.
pub struct Loaded {
    /// The lines and the compiled map that puts an address in one.
    pub classifier: Classifier,
    /// Every configured zone with its per-line views.
    pub zones: ZoneSet,
    /// The `[proxy]` section built (its CA file read), when there is one.
    pub proxy: Option<Proxy>,
    /// The certificates of both front-ends' TLS listeners.
    pub(crate) certificates: Certificates,
}

/// A certificate a TLS listener serves, as `geoline check` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// `redirect` or `proxy`.
    pub role: &'static str,
    /// Its certificate file and the names it is listed for.
    pub config: crate::certs::CertificateConfig,
    /// The end of its leaf's validity, in seconds since the epoch (`None`: not readable,
    /// or pending an ACME order).
    pub not_after: Option<i64>,
}

impl Loaded {
    /// Every certificate of the front-ends' TLS listeners, redirect's first.
    pub fn certificates(&self) -> Vec<CertificateSummary> {
        let expiries: Vec<_> = self.certificates.expiries().collect();
        [crate::http::Role::Redirect, crate::http::Role::Proxy]
            .into_iter()
            .flat_map(|role| self.certificates.part(role.part()).map(move |i| (role, i)))
            .filter_map(|(role, i)| {
                let (config, not_after) = expiries.get(i)?;
                Some(CertificateSummary {
                    role: role.name(),
                    config: (*config).clone(),
                    not_after: *not_after,
                })
            })
            .collect()
    }
}

/// Loads and checks everything `config` names, as `serve` would.
pub fn load(config: &Config) -> Result<Loaded, LoadError> {
    let databases = config
        .geoip
        .iter()
        .map(|g| GeoDb::open_with(&g.path, g.layout, &g.fields).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let classifier = Classifier::from_config(config.line_set(), &config.lines, databases)?;
    let zones = ZoneSet::load(&config.zones, classifier.lines())?;
    let zones = crate::update::store::replay_all(&config.update, zones, classifier.lines())?;
    let proxy = config.proxy.as_ref().map(ProxyConfig::build).transpose()?;
    // Both front-ends' certificates in one set, which reloads replace one at a time (and a
    // configuration reload whole).
    let certificates = crate::http::certificates([
        config.redirect.as_ref().map(|r| &r.front),
        config.proxy.as_ref().map(|p| &p.front),
    ])
    .map_err(|(role, source)| LoadError::Certificate {
        role: role.name(),
        source,
    })?;
    Ok(Loaded {
        classifier,
        zones,
        proxy,
        certificates,
    })
}

/// A started server: its bound addresses and the handle to stop it.
pub struct Running {
    /// The DNS UDP addresses, as bound (a configured port 0 resolved).
    pub dns_udp: Vec<SocketAddr>,
    /// The DNS TCP addresses, as bound.
    pub dns_tcp: Vec<SocketAddr>,
    /// The admin listener's address, when there is one.
    pub admin: Option<SocketAddr>,
    /// The `[proxy]` listeners, in configuration order.
    pub proxy: Vec<SocketAddr>,
    /// Reloads databases, zones and certificates into the running server.
    pub reloader: Arc<Reloader>,
    /// The redirector's listeners, in configuration order.
    pub redirect: Vec<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    udp_workers: Vec<std::thread::JoinHandle<()>>,
    /// The front-ends' access logs, flushed at shutdown and reopened on SIGUSR1.
    access_logs: fronts::AccessLogs,
    /// Every HTTP listener, for `/metrics` and `/status`.
    http_listeners: Arc<HttpListeners>,
    /// The HTTP listeners' tasks, started at start and by configuration reloads.
    listener_tasks: ListenerTasks,
}

/// Loads everything and starts the listeners the configuration enables, the admin
/// listener and the file watcher.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    events::starting(config);
    config.check_serves_something()?;
    let loaded = load(config)?;
    events::loaded(&loaded.classifier, &loaded.zones);
    let shutdown = CancellationToken::new();
    let certificates = loaded.certificates;
    if let Some(redirect) = &config.redirect {
        for warning in crate::redirect::uncovered_hosts(redirect, &certificates) {
            tracing::warn!("{warning}");
        }
    }
    // What every listener reads and every reload replaces: a database reload reaches the
    // DNS server and the redirector at once.
    let updates = Updates::open(
        &config.update,
        &config.zones,
        &loaded.zones,
        loaded.classifier.lines(),
    )
    .map_err(|e| LoadError::Journal(e.into()))?;
    let live = Arc::new(
        Live::with_certificates(loaded.zones, loaded.classifier, certificates)
            .with_updates(updates)
            .with_health(Health::new(crate::health::Prepared::new(&config.health)?))
            .with_secondaries(crate::xfr::secondary::Secondaries::new(&config.zones)),
    );
    live.keys.store(config.keys.clone());
    let reloader = Arc::new(Reloader::new(config.clone(), live.clone()));
    let mut running = Running {
        dns_udp: Vec::new(),
        dns_tcp: Vec::new(),
        admin: None,
        proxy: Vec::new(),
        reloader: reloader.clone(),
        redirect: Vec::new(),
        shutdown: shutdown.clone(),
        tasks: JoinSet::new(),
        udp_workers: Vec::new(),
        access_logs: fronts::AccessLogs::default(),
        http_listeners: Arc::default(),
        listener_tasks: ListenerTasks::default(),
    };
    // The front-ends, started as a configuration reload changes them: from nothing.
    let fronts = Fronts::new(
        live.clone(),
        running.access_logs.clone(),
        Serving {
            shutdown: shutdown.clone(),
            tasks: running.listener_tasks.clone(),
            registry: running.http_listeners.clone(),
            runtime: tokio::runtime::Handle::current(),
        },
    )?;
    fronts.apply(fronts.prepare(config)?, false);
    running.redirect = fronts.redirect_addresses();
    running.proxy = fronts.proxy_addresses();
    let dns = match &config.dns {
        Some(dns) => Some(running.start_dns(dns, &config.zones, &live).await?),
        None => None,
    };
    if let Some(admin) = &config.admin {
        let counters = Counters {
            dns,
            proxy: Some(fronts.proxy_metrics()),
            redirect: Some(fronts.redirect_metrics()),
            http: running.http_listeners.clone(),
        };
        running.start_admin(admin, &reloader, counters).await?;
    }
    reloader.set_fronts(fronts);
    // Always: a configuration reload may add monitors to a server started without any.
    crate::health::monitor::spawn(&live, &running.shutdown, &mut running.tasks);
    crate::xfr::secondary::spawn(&live, &running.shutdown, &mut running.tasks);
    crate::acme::spawn(
        &config.acme,
        &live,
        &reloader,
        &running.shutdown,
        &mut running.tasks,
    );
    if config.reload.watch {
        running.start_watch(reloader, config.reload.debounce)?;
    }
    events::listening(config, &running);
    Ok(running)
}

/// Binds a TCP listener for `transport` on `addr`; returns it with the address it got.
async fn bind_tcp(
    addr: SocketAddr,
    transport: &'static str,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(StartError::bind(addr, transport))?;
    let bound = listener
        .local_addr()
        .map_err(StartError::bind(addr, transport))?;
    Ok((listener, bound))
}

impl Running {
    /// The DNS listeners: UDP worker threads and the TCP accept loops, answering from
    /// `live`. Returns what they share, for the admin listener's counters.
    async fn start_dns(
        &mut self,
        dns: &DnsConfig,
        zones: &[ZoneConfig],
        live: &Arc<Live>,
    ) -> Result<Arc<Responder>, StartError> {
        // Zone transfers and NOTIFYs, offered once some zone has a `transfer` table (a
        // configuration reload may give one).
        let transfers = Arc::new(Transfers::new(
            zones.iter().map(|z| z.transfer.clone()).collect(),
            &live.zones.load(),
            live.classifier.load().lines().clone(),
        ));
        transfers.spawn(live.clone(), &self.shutdown, &mut self.tasks);
        let responder = Responder::new(live.clone(), dns.max_udp_payload, dns.rrl.as_ref())
            .with_transfers(transfers);
        let state = Arc::new(responder);
        self.reloader.set_dns(state.clone());
        let workers = dns.udp_workers.unwrap_or_else(udp::default_workers);
        let (sockets, listeners) = bind_dns(dns, workers).await?;
        for (i, socket) in sockets.into_iter().enumerate() {
            let addr = socket
                .local_addr()
                .map_err(StartError::bind(SocketAddr::from(([0, 0, 0, 0], 0)), "UDP"))?;
            if !self.dns_udp.contains(&addr) {
                self.dns_udp.push(addr);
            }
            let worker = udp::spawn(
                socket,
                state.clone(),
                self.shutdown.clone(),
                format!("udp-{}", i % workers),
                dns.udp_coalesce,
            )
            .map_err(StartError::bind(addr, "UDP"))?;
            self.udp_workers.push(worker);
        }
        for l in &listeners {
            if let Ok(addr) = l.local_addr() {
                self.dns_tcp.push(addr);
            }
        }
        tcp::spawn(
            listeners,
            state.clone(),
            dns.tcp,
            &self.shutdown,
            &mut self.tasks,
        );
        Ok(state)
    }

    /// The admin listener: metrics, status and reloads.
    async fn start_admin(
        &mut self,
        config: &AdminConfig,
        reloader: &Arc<Reloader>,
        counters: Counters,
    ) -> Result<(), StartError> {
        let (listener, addr) = bind_tcp(config.listen, "HTTP admin").await?;
        if !addr.ip().is_loopback() && config.token.is_none() {
            tracing::warn!(%addr, "the admin listener is reachable from other hosts and has no token");
        }
        let router = admin::router(reloader.clone(), counters, config.token.clone());
        self.tasks
            .spawn(admin::serve(listener, router, self.shutdown.clone()));
        self.admin = Some(addr);
        Ok(())
    }

    fn logs(&self) -> std::sync::MutexGuard<'_, Vec<Arc<AccessLog>>> {
        self.access_logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes out what the access logs hold, then opens their files anew (logrotate's
    /// `postrotate` sends SIGUSR1 after renaming them).
    pub fn reopen_access_logs(&self) {
        for log in self.logs().iter() {
            match log.reopen() {
                Ok(()) => info!(?log, "access log reopened"),
                Err(e) => {
                    tracing::error!(error = %e, "access log not reopened: lines still go to the renamed file")
                }
            }
        }
    }

    /// The file watcher, reloading what changes on disk.
    fn start_watch(
        &mut self,
        reloader: Arc<Reloader>,
        debounce: Duration,
    ) -> Result<(), StartError> {
        let handle = watch::spawn(reloader, debounce, self.shutdown.clone())?;
        self.tasks.spawn(async move {
            let _ = handle.await;
        });
        Ok(())
    }
}

impl Drop for Running {
    /// A server dropped without [`Running::shutdown`] still stops its UDP worker threads
    /// (within their receive timeout) rather than leaving them answering.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    /// Stops accepting, lets the listeners finish what they hold, and returns.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.listener_tasks.join().await;
        // Every response has been logged by now (the listeners drained).
        for log in self.logs().iter() {
            log.flush();
        }
        // UDP workers see the cancelled token within their receive timeout.
        let workers = std::mem::take(&mut self.udp_workers);
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
            }
        })
        .await;
    }

    /// Serves until SIGTERM or SIGINT, reloading every database, zone and certificate on
    /// SIGHUP (the one SIGHUP handler of the process) and reopening the access logs on
    /// SIGUSR1, then
    /// shuts down as [`Running::shutdown`] does.
    ///
    /// Under systemd (`NOTIFY_SOCKET`), says READY=1 first ([`start`] has bound every
    /// listener and loaded everything by now), RELOADING=1 and READY=1 around each SIGHUP
    /// reload, and STOPPING=1 when the drain begins.
    pub async fn run_until_terminated(self, signals: Signals) -> Result<(), StartError> {
        let Signals {
            mut term,
            mut int,
            mut hup,
            mut usr1,
        } = signals;
        let manager = notify::Notifier::from_env();
        manager.ready("serving");
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    manager.reloading();
                    info!("SIGHUP: reloading the configuration, every database, zone and certificate");
                    // Each outcome is logged and kept in the status by the reloader. The
                    // files are reloaded whatever the configuration's outcome: a refused
                    // edit of the configuration does not hold back a zone's.
                    let config = self.reloader.reload_config(Trigger::Signal).await;
                    let files = self.reloader.reload_all(Trigger::Signal).await;
                    manager.ready(&reload_status(config.err(), files.into_iter().map(|(_, r)| r)));
                }
                _ = usr1.recv() => self.reopen_access_logs(),
            }
        }
        info!("shutting down");
        manager.stopping();
        let draining = std::time::Instant::now();
        self.shutdown().await;
        // The last line: a log that ends at "shutting down" cannot tell a clean stop from
        // a process killed while draining.
        info!(drained_ms = draining.elapsed().as_millis(), "stopped");
        Ok(())
    }
}

/// The unit's status line after a SIGHUP reload (`systemctl status`): what the reload
/// refused, if anything, since the server goes on serving the previous version of it.
fn reload_status<E: std::fmt::Display, F: std::fmt::Display>(
    config: Option<E>,
    files: impl Iterator<Item = Result<(), F>>,
) -> String {
    let mut total = 0;
    let mut kept = Vec::new();
    for result in files {
        total += 1;
        if let Err(e) = result {
            kept.push(e.to_string());
        }
    }
    let mut status = String::from("serving; last reload (SIGHUP): ");
    match (config, kept.first()) {
        (None, None) => status.push_str("ok"),
        (Some(e), _) => status.push_str(&format!(
            "configuration refused, still the previous one: {e}"
        )),
        (None, Some(first)) => status.push_str(&format!(
            "{} of {total} files kept their previous version: {first}",
            kept.len()
        )),
    }
    status
}

/// The signals `serve` answers: SIGTERM and SIGINT stop it, SIGHUP reloads, SIGUSR1
/// reopens the access logs.
///
/// Installed before [`start`] binds anything, so that a signal sent as soon as the server
/// answers (by a supervisor or a test) is never left to its default action, which for
/// SIGHUP is to kill the process.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    /// Takes over SIGTERM, SIGINT and SIGHUP for the process (inside a tokio runtime).
    pub fn install() -> Result<Signals, StartError> {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| StartError::Signal {
                signal: name,
                source,
            })
        };
        Ok(Signals {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
            hup: watch(SignalKind::hangup(), "SIGHUP")?,
            usr1: watch(SignalKind::user_defined1(), "SIGUSR1")?,
        })
    }
}

/// Whether binding `addr` failed with `error` only because it is the IPv6 loopback on a
/// host without IPv6 (a container's default, where `::1` does not exist or the family is
/// off): the shipped configuration lists `[::1]:5300` beside `127.0.0.1:5300`, and must
/// start there on IPv4 alone.
fn absent_ipv6_loopback(addr: SocketAddr, error: &std::io::Error) -> bool {
    const EAFNOSUPPORT: i32 = 97;
    addr.is_ipv6()
        && addr.ip().is_loopback()
        && (error.kind() == std::io::ErrorKind::AddrNotAvailable
            || error.raw_os_error() == Some(EAFNOSUPPORT))
}

/// Binds `workers` UDP sockets (sharing the port with `SO_REUSEPORT`) and a TCP listener
/// on each address. Port 0 picks one free port for all of them, so that `dig` and tests
/// can use one address for either transport.
async fn bind_dns(
    dns: &DnsConfig,
    workers: usize,
) -> Result<(Vec<std::net::UdpSocket>, Vec<TcpListener>), StartError> {
    let mut sockets = Vec::new();
    let mut listeners = Vec::new();
    for &addr in &dns.listen {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let udp = match udp::bind(addr) {
                Ok(udp) => udp,
                Err(e) if absent_ipv6_loopback(addr, &e) && dns.listen.len() > 1 => {
                    tracing::warn!(
                        %addr,
                        error = %e,
                        "this host has no IPv6 loopback (IPv6 is off, as in Docker by default): not listening there"
                    );
                    break;
                }
                Err(e) => return Err(StartError::bind(addr, "UDP")(e)),
            };
            let bound = udp.local_addr().map_err(StartError::bind(addr, "UDP"))?;
            match TcpListener::bind(bound).await {
                Ok(tcp) => {
                    sockets.push(udp);
                    for _ in 1..workers {
                        sockets.push(udp::bind(bound).map_err(StartError::bind(bound, "UDP"))?);
                    }
                    listeners.push(tcp);
                    break;
                }
                // Another process holds the TCP side of the port UDP got: try another.
                Err(_) if addr.port() == 0 && attempts < 16 => continue,
                Err(source) => return Err(StartError::bind(bound, "TCP")(source)),
            }
        }
    }
    Ok((sockets, listeners))
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::{absent_ipv6_loopback, reload_status};

    #[test]
    fn only_the_ipv6_loopback_is_skipped_when_absent() {
        let v6 = "[::1]:5300".parse().expect("addr");
        let v4 = "127.0.0.1:5300".parse().expect("addr");
        let other = "[2001:db8::1]:5300".parse().expect("addr");
        let absent = Error::from(ErrorKind::AddrNotAvailable);
        assert!(absent_ipv6_loopback(v6, &absent));
        assert!(absent_ipv6_loopback(v6, &Error::from_raw_os_error(97)));
        assert!(!absent_ipv6_loopback(v4, &absent));
        assert!(!absent_ipv6_loopback(other, &absent));
        assert!(!absent_ipv6_loopback(
            v6,
            &Error::from(ErrorKind::AddrInUse)
        ));
    }

    #[test]
    fn the_reload_status_names_what_was_refused() {
        let ok: Vec<Result<(), &str>> = vec![Ok(()), Ok(())];
        assert_eq!(
            reload_status(None::<&str>, ok.into_iter()),
            "serving; last reload (SIGHUP): ok"
        );
        let one_kept = vec![
            Ok(()),
            Err("zones/a.zone:3: bad TTL"),
            Err("b.mmdb: truncated"),
        ];
        assert_eq!(
            reload_status(None::<&str>, one_kept.into_iter()),
            "serving; last reload (SIGHUP): 2 of 3 files kept their previous version: zones/a.zone:3: bad TTL"
        );
        assert_eq!(
            reload_status(
                Some("geoline.toml:2: unknown key"),
                std::iter::empty::<Result<(), &str>>()
            ),
            "serving; last reload (SIGHUP): configuration refused, still the previous one: geoline.toml:2: unknown key"
        );
    }
}
