//! What operators see of health and do to it: the `/status` section, the metrics per
//! address, and `POST /health/ADDRESS` (an operator's override).
//!
//! This module turns [`super::Health`] into JSON and text and requests into calls on it;
//! the admin listener ([`crate::admin`]) routes to it and checks the token.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::overrides::Force;
use super::sources::{Published, PublishedAddress, Vote};
use super::{ForceError, Health};
use crate::exposition::Exposition;
use crate::util::time::{format_rfc3339, unix_secs};

/// `/status`'s `health`: every watched address, its state, last check, last change and
/// why.
pub(crate) fn status_json(health: &Health) -> Value {
    let (sources, quorum) = health.sources();
    let addresses: Vec<Value> = health
        .statuses()
        .into_iter()
        .map(|(address, s)| {
            json!({
                "address": address.to_string(),
                "monitor": s.monitor + 1,
                "state": if s.is_up() { "up" } else { "down" },
                "checks_say": if s.tracker.is_up() { "up" } else { "down" },
                "forced": s.forced.as_ref().map(|f| json!({
                    "state": if f.up { "up" } else { "down" },
                    "at": format_rfc3339(unix_secs(f.at)),
                    "why": f.why,
                })),
                "last_check": s.last_check.as_ref().map(|(at, failure)| json!({
                    "at": format_rfc3339(unix_secs(*at)),
                    "ok": failure.is_none(),
                    "error": failure,
                })),
                "last_change": s.last_change.as_ref().map(|(at, why)| json!({
                    "at": format_rfc3339(unix_secs(*at)),
                    "why": why,
                })),
                "checks": s.checks,
                "failures": s.failures,
                "sources": std::iter::once(json!({
                    "source": "local",
                    "state": s.local_vote().name(),
                    "last_change": s.local_change.as_ref().map(|(at, why)| json!({
                        "at": format_rfc3339(unix_secs(*at)),
                        "why": why,
                    })),
                }))
                .chain(sources.iter().zip(&s.views).map(|(source, view)| json!({
                    "source": source.url,
                    "state": view.vote.name(),
                    "why": view.why,
                })))
                .collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "generation": health.generation(),
        "quorum": quorum,
        "sources": sources.iter().map(|s| json!({
            "url": s.url,
            "last_read": s.last_read.as_ref().map(|(at, error)| json!({
                "at": format_rfc3339(unix_secs(*at)),
                "ok": error.is_none(),
                "error": error,
            })),
        })).collect::<Vec<_>>(),
        "addresses": addresses,
    })
}

/// `GET /health/results`: what this server's own checks say of each address, for the
/// geolines that read it as a source (a probe's whole job).
pub(crate) fn results_json(health: &Health) -> Value {
    let results = health
        .statuses()
        .into_iter()
        .map(|(address, s)| {
            let state = s.local_vote();
            let why = match (state, &s.local_change, &s.last_check) {
                (Vote::Unknown, ..) => None,
                (_, Some((_, why)), _) => Some(why.clone()),
                (_, None, Some((_, failure))) => failure.clone(),
                _ => None,
            };
            PublishedAddress {
                address,
                state,
                why,
            }
        })
        .collect();
    serde_json::to_value(Published { results }).unwrap_or(Value::Null)
}

/// `POST /health/ADDRESS?force=down|up|clear[&why=TEXT]`: the status and the JSON
/// answered.
pub(crate) fn force(
    health: &Health,
    address: &str,
    params: &HashMap<String, String>,
) -> (StatusCode, Value) {
    let refuse = |code, error: String| (code, json!({ "ok": false, "error": error }));
    let Ok(ip) = address.parse::<IpAddr>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("`{address}` is not an IP address"),
        );
    };
    let Some(force) = params.get("force").and_then(|w| Force::parse(w)) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "give force=down, force=up or force=clear".into(),
        );
    };
    let why = params.get("why").map_or("", String::as_str);
    if why.len() > 200 || why.chars().any(char::is_control) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "why is at most 200 characters, none of them control characters".into(),
        );
    }
    match health.force(ip, force, why) {
        Ok(up) => (
            StatusCode::OK,
            json!({
                "ok": true,
                "address": ip.to_string(),
                "state": if up { "up" } else { "down" },
                "forced": force != Force::Clear,
            }),
        ),
        Err(e @ ForceError::NotWatched(_)) => refuse(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ ForceError::StateFile(_)) => {
            refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// The health series, one sample per watched address (none without monitors).
pub(crate) fn render_metrics(health: &Health, out: &mut Exposition) {
    let statuses = health.statuses();
    out.family(
        "geoline_health_up",
        "gauge",
        "Whether answers count a watched address up (1) or down (0).",
    );
    for (address, s) in &statuses {
        let a = address.to_string();
        out.sample(
            "geoline_health_up",
            &[("address", &a)],
            f64::from(u8::from(s.is_up())),
        );
    }
    for (name, help, value) in [
        (
            "geoline_health_checks_total",
            "Checks of a watched address.",
            (|s: &super::AddressStatus| s.checks) as fn(&super::AddressStatus) -> u64,
        ),
        (
            "geoline_health_check_failures_total",
            "Failed checks of a watched address.",
            |s| s.failures,
        ),
        (
            "geoline_health_transitions_total",
            "State changes of a watched address.",
            |s| s.transitions,
        ),
    ] {
        out.family(name, "counter", help);
        for (address, s) in &statuses {
            out.sample(name, &[("address", &address.to_string())], value(s) as f64);
        }
    }
}
