//! Putting the parts together: load what the configuration names, start the listeners,
//! stop them.
//!
//! This module owns the order of loading (lines, databases, the compiled line map, zones)
//! and the life of the listeners. It does not parse anything itself: each part reports its
//! own errors with its own file names, and this module only adds which part failed.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::admin;
use crate::config::{Config, DnsConfig};
use crate::dns::{DnsState, tcp, udp};
use crate::geoip::{GeoDb, GeoIpError};
use crate::lines::Classifier;
use crate::proxy::{Proxy, ProxyConfig, ProxyConfigError, serve_proxy};
use crate::reload::{Reloader, Trigger};
use crate::watch::{self, WatchError};
use crate::zone::{ZoneError, ZoneSet};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    Proxy(#[from] ProxyConfigError),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Redirect(#[from] crate::redirect::RedirectError),
    #[error("cannot listen on {addr} ({transport}): {source}")]
    Bind {
        addr: SocketAddr,
        transport: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("cannot watch for {signal}: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Everything the configuration names, loaded and checked.
pub struct Loaded {
    pub classifier: Classifier,
    pub zones: ZoneSet,
    /// The `[proxy]` section built (its CA file read), when there is one.
    pub proxy: Option<Proxy>,
}

/// Loads and checks everything `config` names, as `serve` would.
pub fn load(config: &Config) -> Result<Loaded, LoadError> {
    let databases = config
        .geoip
        .iter()
        .map(|g| GeoDb::open_with(&g.path, g.layout, &g.fields).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let classifier = Classifier::from_config(config, databases)?;
    let zones = ZoneSet::load(&config.zones, classifier.lines())?;
    let proxy = config.proxy.as_ref().map(ProxyConfig::build).transpose()?;
    Ok(Loaded {
        classifier,
        zones,
        proxy,
    })
}

/// The summary `geoline check` prints.
pub struct Summary<'a> {
    pub config: &'a Config,
    pub loaded: &'a Loaded,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Loaded {
            classifier, zones, ..
        } = self.loaded;
        let lines = classifier.lines();
        writeln!(f, "config {}: ok", self.config.path.display())?;
        for db in classifier.databases() {
            writeln!(
                f,
                "geoip {}: {} (layout {}, IPv{}), built {}, fields: {}",
                db.path().display(),
                db.database_type(),
                db.record_reader(),
                db.ip_version(),
                format_epoch(db.build_epoch()),
                db.provides(),
            )?;
        }
        let (v4, v6) = classifier.map().range_count();
        writeln!(
            f,
            "lines (in match order): {}",
            self.config.line_names().join(", ")
        )?;
        for line in &self.config.lines {
            writeln!(
                f,
                "  {}: {} countries, {} continents, {} subdivisions, {} ASNs, {} prefixes",
                line.name,
                line.countries.len(),
                line.continents.len(),
                line.subdivisions.len(),
                line.asns.len(),
                line.cidrs.len()
            )?;
        }
        writeln!(f, "line map: {v4} IPv4 ranges, {v6} IPv6 ranges")?;
        for zone in zones.zones() {
            let counts = zone
                .record_counts()
                .into_iter()
                .map(|(line, n)| format!("{} {n}", lines.name(line)))
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(
                f,
                "zone {}: serial {}, records per line: {counts}",
                zone.origin(),
                zone.serial()
            )?;
        }
        if let Some(dns) = &self.config.dns {
            let addrs: Vec<String> = dns.listen.iter().map(|a| a.to_string()).collect();
            writeln!(f, "dns: UDP and TCP on {}", addrs.join(", "))?;
        }
        if let Some(proxy) = &self.config.proxy {
            let pairs: Vec<String> = proxy
                .hosts
                .iter()
                .map(|h| format!("{} -> {}", h.public, h.origin))
                .collect();
            writeln!(
                f,
                "proxy: HTTP on {}, origin {}, {}",
                proxy.listen,
                proxy.origin,
                pairs.join(", ")
            )?;
        }
        if let Some(admin) = &self.config.admin {
            writeln!(
                f,
                "admin: http://{}/ (metrics, status, reload){}",
                admin.listen,
                if admin.token.is_some() {
                    ", bearer token required"
                } else {
                    ""
                }
            )?;
        }
        if let Some(redirect) = &self.config.redirect {
            let listeners: Vec<String> = redirect
                .listeners
                .iter()
                .map(|l| {
                    let scheme = if l.tls { "https" } else { "http" };
                    let pp = if l.proxy_protocol {
                        " (PROXY protocol)"
                    } else {
                        ""
                    };
                    format!("{scheme}://{}{pp}", l.address)
                })
                .collect();
            writeln!(
                f,
                "redirect: {} rules, {} certificates, on {}",
                redirect.rules.len(),
                redirect.certificates.len(),
                listeners.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Seconds since the epoch as a UTC time, RFC 3339: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(secs: u64) -> String {
    let s = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_epoch(secs),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Seconds since the epoch as a UTC date, `YYYY-MM-DD`.
pub fn format_epoch(secs: u64) -> String {
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate for one line.
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A started server: its bound addresses and the handle to stop it.
pub struct Running {
    pub dns_udp: Vec<SocketAddr>,
    pub dns_tcp: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub proxy: Option<SocketAddr>,
    /// What queries are answered from (also when no DNS listener is configured, so that
    /// reloads and `/status` work the same).
    pub dns_state: Arc<DnsState>,
    pub reloader: Arc<Reloader>,
    /// The redirector's listeners, in configuration order.
    pub redirect: Vec<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    udp_workers: Vec<std::thread::JoinHandle<()>>,
}

/// Loads everything and starts the listeners the configuration enables, the admin
/// listener and the file watcher.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let loaded = load(config)?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let dns = config.dns.as_ref();
    let state = Arc::new(DnsState::new(
        loaded.zones,
        loaded.classifier,
        dns.map_or(1232, |d| d.max_udp_payload),
        dns.and_then(|d| d.rrl.as_ref()),
    ));
    let reloader = Arc::new(Reloader::new(config.clone(), state.clone()));
    let mut running = Running {
        dns_udp: Vec::new(),
        dns_tcp: Vec::new(),
        admin: None,
        proxy: None,
        dns_state: state.clone(),
        reloader: reloader.clone(),
        redirect: Vec::new(),
        shutdown: shutdown.clone(),
        tasks: JoinSet::new(),
        udp_workers: Vec::new(),
    };
    // One classification for every listener: a database reload reaches them all at once.
    if let Some(redirect) = &config.redirect {
        running.redirect =
            crate::redirect::start(redirect, state.classifier.clone(), &shutdown, &mut tasks)
                .await?;
    }
    if let Some(dns) = &config.dns {
        let workers = dns.udp_workers.unwrap_or_else(udp::default_workers);
        let (sockets, listeners) = bind_dns(dns, workers).await?;
        for (i, socket) in sockets.into_iter().enumerate() {
            let addr = socket.local_addr().map_err(|source| StartError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                transport: "UDP",
                source,
            })?;
            if !running.dns_udp.contains(&addr) {
                running.dns_udp.push(addr);
            }
            let worker = udp::spawn(
                socket,
                state.clone(),
                shutdown.clone(),
                format!("udp-{}", i % workers),
                dns.udp_coalesce,
            )
            .map_err(|source| StartError::Bind {
                addr,
                transport: "UDP",
                source,
            })?;
            running.udp_workers.push(worker);
        }
        for l in &listeners {
            if let Ok(addr) = l.local_addr() {
                running.dns_tcp.push(addr);
            }
        }
        tcp::spawn(listeners, state.clone(), dns.tcp, &shutdown, &mut tasks);
        info!(udp = ?running.dns_udp, tcp = ?running.dns_tcp, udp_workers = workers, "dns listening");
    }
    if let Some(a) = &config.admin {
        let bind = |source| StartError::Bind {
            addr: a.listen,
            transport: "HTTP admin",
            source,
        };
        let listener = TcpListener::bind(a.listen).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        if !addr.ip().is_loopback() && a.token.is_none() {
            tracing::warn!(%addr, "the admin listener is reachable from other hosts and has no token");
        }
        let router = admin::router(reloader.clone(), a.token.clone());
        tasks.spawn(admin::serve(listener, router, shutdown.clone()));
        running.admin = Some(addr);
        info!(%addr, "admin listening");
    }
    if let (Some(p), Some(proxy)) = (&config.proxy, loaded.proxy) {
        let bind = |source| StartError::Bind {
            addr: p.listen,
            transport: "HTTP proxy",
            source,
        };
        let listener = TcpListener::bind(p.listen).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let stop = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = serve_proxy(proxy, listener, stop.cancelled_owned()).await {
                tracing::error!(error = %e, "proxy listener failed");
            }
        });
        running.proxy = Some(addr);
        info!(%addr, "proxy listening");
    }
    if config.reload.watch {
        let handle = watch::spawn(reloader, config.reload.debounce, shutdown.clone())?;
        tasks.spawn(async move {
            let _ = handle.await;
        });
    }
    running.tasks = tasks;
    Ok(running)
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
        // UDP workers see the cancelled token within their receive timeout.
        let workers = std::mem::take(&mut self.udp_workers);
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
            }
        })
        .await;
    }

    /// Serves until SIGTERM or SIGINT, reloading every database and zone on SIGHUP, then
    /// shuts down as [`Running::shutdown`] does.
    pub async fn run_until_terminated(self) -> Result<(), StartError> {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| StartError::Signal {
                signal: name,
                source,
            })
        };
        let mut term = watch(SignalKind::terminate(), "SIGTERM")?;
        let mut int = watch(SignalKind::interrupt(), "SIGINT")?;
        let mut hup = watch(SignalKind::hangup(), "SIGHUP")?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    info!("SIGHUP: reloading every database and zone");
                    // Each outcome is logged and kept in the status by the reloader.
                    self.reloader.reload_all(Trigger::Signal).await;
                }
            }
        }
        info!("shutting down");
        self.shutdown().await;
        Ok(())
    }
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
    let udp_error = |addr, source| StartError::Bind {
        addr,
        transport: "UDP",
        source,
    };
    for &addr in &dns.listen {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let udp = udp::bind(addr).map_err(|e| udp_error(addr, e))?;
            let bound = udp.local_addr().map_err(|e| udp_error(addr, e))?;
            match TcpListener::bind(bound).await {
                Ok(tcp) => {
                    sockets.push(udp);
                    for _ in 1..workers {
                        sockets.push(udp::bind(bound).map_err(|e| udp_error(bound, e))?);
                    }
                    listeners.push(tcp);
                    break;
                }
                // Another process holds the TCP side of the port UDP got: try another.
                Err(_) if addr.port() == 0 && attempts < 16 => continue,
                Err(source) => {
                    return Err(StartError::Bind {
                        addr: bound,
                        transport: "TCP",
                        source,
                    });
                }
            }
        }
    }
    Ok((sockets, listeners))
}

#[cfg(test)]
mod tests {
    use super::{format_epoch, format_time};

    #[test]
    fn epoch_dates() {
        assert_eq!(format_epoch(0), "1970-01-01");
        assert_eq!(format_epoch(951_782_400), "2000-02-29");
        assert_eq!(format_epoch(1_795_305_600), "2026-11-22");
        assert_eq!(format_time(1_795_305_600 + 3_723), "2026-11-22T01:02:03Z");
    }
}
