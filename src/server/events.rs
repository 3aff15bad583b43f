//! The lines an operator reads in the log when `serve` starts: what runs, from which
//! configuration, with which data, listening where.
//!
//! This module owns the wording and the order of those lines. It loads, binds and checks
//! nothing: [`super::start`] calls it with what was loaded, and only once every listener
//! is bound, so that no "listening" line is ever logged for a server that then fails to
//! start.

use std::net::SocketAddr;

use tracing::info;

use crate::config::Config;
use crate::lines::Classifier;
use crate::util::time::format_date;
use crate::zone::{Zone, ZoneSet};

/// The version and the configuration file: the first line of every start.
pub(super) fn starting(config: &Config) {
    info!(
        version = %env!("CARGO_PKG_VERSION"),
        config = %config.path.display(),
        "geoline starting"
    );
}

/// One line per database (its build date: is it fresh?) and per zone (its serial and
/// record count per line: which edit is serving?).
pub(super) fn loaded(classifier: &Classifier, zones: &ZoneSet) {
    for db in classifier.databases() {
        info!(
            path = %db.path().display(),
            database_type = %db.database_type(),
            layout = %db.record_reader(),
            built = %format_date(db.build_epoch()),
            "database loaded"
        );
    }
    for zone in zones.zones() {
        info!(
            zone = %zone.origin(),
            serial = zone.serial(),
            records = %records_per_line(zone, classifier),
            "zone loaded"
        );
        for occluded in zone.occluded_names() {
            tracing::warn!(zone = %zone.origin(), "{}", occluded.describe(classifier.lines()));
        }
    }
}

/// `china 19, default 18`: the records each line's view of `zone` holds.
pub(crate) fn records_per_line(zone: &Zone, classifier: &Classifier) -> String {
    let lines = classifier.lines();
    zone.record_counts()
        .into_iter()
        .map(|(line, n)| format!("{} {n}", lines.name(line)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per bound listener, once all of them are.
pub(super) fn listening(config: &Config, running: &super::Running) {
    for (udp, tcp) in running.dns_udp.iter().zip(&running.dns_tcp) {
        if udp == tcp {
            info!(addr = %udp, "dns listening (UDP and TCP)");
        } else {
            info!(udp = %udp, tcp = %tcp, "dns listening");
        }
    }
    let http =
        |front: Option<&crate::http::config::FrontConfig>, addrs: &[SocketAddr], role: &str| {
            let listeners = front.map(|f| f.listeners.as_slice()).unwrap_or_default();
            for (l, addr) in listeners.iter().zip(addrs) {
                info!(
                    addr = %addr,
                    tls = l.tls,
                    proxy_protocol = l.proxy_protocol,
                    "{role} listening"
                );
            }
        };
    http(
        config.redirect.as_ref().map(|r| &r.front),
        &running.redirect,
        "redirect",
    );
    http(
        config.proxy.as_ref().map(|p| &p.front),
        &running.proxy,
        "proxy",
    );
    if let Some(addr) = running.admin {
        info!(addr = %addr, "admin listening");
    }
}
