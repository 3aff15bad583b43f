//! What operators see of health: the `/status` section and the metrics per address.
//!
//! This module only reads [`super::Health`]; the admin listener ([`crate::admin`]) serves
//! what it writes.

use serde_json::{Value, json};

use super::Health;
use crate::exposition::Exposition;
use crate::util::time::{format_rfc3339, unix_secs};

/// `/status`'s `health`: every watched address, its state, last check, last change and
/// why.
pub(crate) fn status_json(health: &Health) -> Value {
    let addresses: Vec<Value> = health
        .statuses()
        .into_iter()
        .map(|(address, s)| {
            json!({
                "address": address.to_string(),
                "monitor": s.monitor + 1,
                "state": if s.is_up() { "up" } else { "down" },
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
            })
        })
        .collect();
    json!({
        "generation": health.generation(),
        "addresses": addresses,
    })
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
