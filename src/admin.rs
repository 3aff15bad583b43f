//! The admin listener: `/metrics`, `/status`, `/healthz` and `POST /reload`.
//!
//! This module owns the HTTP side of operating geoline: the routes, the optional bearer
//! token, the Prometheus families for databases and zones, and the JSON shape of the
//! status. It reads the counters (each subsystem renders its own series) and the reload status
//! ([`crate::reload`]); it does not count queries or reload anything itself.
//!
//! It listens on 127.0.0.1 unless told otherwise: it can trigger reloads and shows the
//! file layout of the host.

use std::sync::Arc;

pub(crate) mod config;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::dns::Responder;
use crate::exposition::Exposition;
use crate::http::metrics::HttpListeners;
use crate::proxy::ProxyMetrics;
use crate::redirect::metrics::RedirectMetrics;
use crate::reload::{Reloader, SourceStatus, Target, Trigger};
use crate::util::time::{format_date, format_rfc3339, unix_secs};

struct Admin {
    reloader: Arc<Reloader>,
    counters: Counters,
    token: Option<String>,
}

/// The counters of the subsystems that run, for `/metrics`; a family of a subsystem that
/// does not run is rendered at zero all the same, so that dashboards need not know the
/// configuration.
pub(crate) struct Counters {
    /// The DNS listeners' responder.
    pub(crate) dns: Option<Arc<Responder>>,
    /// The counters of `[proxy]` of `serve`.
    pub(crate) proxy: Option<Arc<ProxyMetrics>>,
    /// The redirector's requests.
    pub(crate) redirect: Option<Arc<RedirectMetrics>>,
    /// Every HTTP listener (the redirector's and the proxy's).
    pub(crate) http: Arc<HttpListeners>,
}

/// The admin routes over `reloader`'s state and the subsystems' `counters`.
pub(crate) fn router(reloader: Arc<Reloader>, counters: Counters, token: Option<String>) -> Router {
    let admin = Arc::new(Admin {
        reloader,
        counters,
        token,
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/reload", post(reload))
        .route("/zones/{zone}/flush", post(flush))
        .route("/health/results", get(health_results))
        .route("/health/{address}", post(force_health))
        .route("/acme/renew", post(acme_renew))
        .with_state(admin)
}

/// Serves `router` on `listener` until `shutdown`, then lets requests in flight finish.
pub(crate) async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "admin listener stopped");
    }
}

/// `None` when the request may go on; otherwise the 401 to send.
fn refuse_unauthorized(admin: &Admin, headers: &HeaderMap) -> Option<Response> {
    let want = admin.token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes())) {
        return None;
    }
    let mut response = (StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"geoline admin\""),
    );
    Some(response)
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /acme/renew`: every ACME certificate ordered again now (as `certbot renew
/// --force-renewal`); the outcome shows in `/status`.
async fn acme_renew(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&admin, &headers) {
        return r;
    }
    let n = admin.reloader.live().acme.renew_all_now();
    let status = if n == 0 {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::ACCEPTED
    };
    (status, axum::Json(json!({ "renewing": n }))).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&admin, &headers) {
        return r;
    }
    let text = render_metrics(&admin.reloader, &admin.counters);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn status(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&admin, &headers) {
        return r;
    }
    axum::Json(status_json(&admin.reloader, &admin.counters.http)).into_response()
}

async fn reload(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&admin, &headers) {
        return r;
    }
    let config = admin.reloader.reload_config(Trigger::Admin).await;
    let results = admin.reloader.reload_all(Trigger::Admin).await;
    let ok = config.is_ok() && results.iter().all(|(_, r)| r.is_ok());
    let entries = |kind: fn(&Target) -> bool| -> Vec<Value> {
        results
            .iter()
            .filter(|(t, _)| kind(t))
            .map(|(t, r)| {
                json!({
                    "path": admin.reloader.describe(*t),
                    "ok": r.is_ok(),
                    "error": r.as_ref().err().map(|e| e.to_string()),
                })
            })
            .collect()
    };
    let databases = entries(|t| matches!(t, Target::Database(_)));
    let zones = entries(|t| matches!(t, Target::Zone(_)));
    let certificates = entries(|t| matches!(t, Target::Certificate(_)));
    // A file that fails its checks is the operator's to fix, not a server fault.
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        code,
        axum::Json(json!({
            "ok": ok,
            "config": config_json(&config),
            "databases": databases,
            "zones": zones,
            "certificates": certificates,
        })),
    )
        .into_response()
}

/// `POST /zones/ZONE/flush`: the zone as served written to its files, its journal
/// emptied (`geoline zone flush ZONE` calls it).
async fn flush(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    axum::extract::Path(zone): axum::extract::Path<String>,
) -> Response {
    if let Some(r) = refuse_unauthorized(&admin, &headers) {
        return r;
    }
    let Ok(mut origin) = hickory_proto::rr::Name::from_ascii(&zone) else {
        let body = json!({ "ok": false, "error": format!("`{zone}` is not a domain name") });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    origin.set_fqdn(true);
    let reloader = admin.reloader.clone();
    let result = tokio::task::spawn_blocking(move || {
        let live = reloader.live();
        live.updates.flush(&live.zones, &origin)
    })
    .await;
    match result {
        Ok(Ok(flushed)) => axum::Json(json!({
            "ok": true,
            "zone": zone,
            "serial": flushed.serial,
            "files": flushed.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "journal_entries_flushed": flushed.entries,
        }))
        .into_response(),
        Ok(Err(e)) => {
            let code = match e {
                crate::update::flush::FlushError::NoZone(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (
                code,
                axum::Json(json!({ "ok": false, "error": e.to_string() })),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "ok": false, "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// `GET /health/results`: this server's own checks, for other geolines to read
/// ([`crate::health::report::results_json`]).
async fn health_results(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&admin, &headers) {
        return r;
    }
    let live = admin.reloader.live();
    axum::Json(crate::health::report::results_json(&live.health)).into_response()
}

/// `POST /health/ADDRESS?force=down|up|clear`: an operator's override
/// ([`crate::health::report::force`]).
async fn force_health(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    axum::extract::Path(address): axum::extract::Path<String>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = refuse_unauthorized(&admin, &headers) {
        return r;
    }
    let live = admin.reloader.live();
    let (code, body) = crate::health::report::force(&live.health, &address, &params);
    (code, axum::Json(body)).into_response()
}

fn last_reload_json(s: &SourceStatus) -> Value {
    json!({
        "result": if s.last.error.is_none() { "ok" } else { "error" },
        "error": s.last.error.as_ref().map(|e| e.to_string()),
        "trigger": s.last.trigger.name(),
        "at": format_rfc3339(unix_secs(s.last.at)),
        "duration_ms": s.last.duration.as_secs_f64() * 1000.0,
    })
}

/// Every HTTP listener: its role, address, TLS and PROXY protocol, and (TLS) the
/// certificates it chooses among, with their issuer, expiry and last reload.
fn listeners_json(reloader: &Reloader, listeners: &HttpListeners) -> Vec<Value> {
    let status = reloader.status();
    let serving = reloader.live().certificates.load_full();
    let expiries: Vec<_> = serving.expiries().collect();
    listeners
        .list()
        .iter()
        .map(|l| {
            let part = l.certificates.map_or(0..0, |p| serving.part(p));
            let certificates: Vec<Value> = part
                .filter_map(|i| {
                    let (c, not_after) = expiries.get(i)?;
                    let s = status.certificates.get(i)?;
                    Some(json!({
                        "names": c.names,
                        "cert": c.cert.display().to_string(),
                        "issuer": serving.issuer(i),
                        "not_after": not_after.map(|t| format_rfc3339(u64::try_from(t).unwrap_or(0))),
                        "last_reload": last_reload_json(s),
                    }))
                })
                .collect();
            json!({
                "role": l.role,
                "address": l.address.to_string(),
                "tls": l.tls,
                "proxy_protocol": l.proxy_protocol,
                "certificates": certificates,
            })
        })
        .collect()
}

/// The `/status` document.
pub(crate) fn status_json(reloader: &Reloader, listeners: &HttpListeners) -> Value {
    let status = reloader.status();
    let config = reloader.config_status();
    let live = reloader.live();
    let classifier = live.classifier.load_full();
    let zones = live.zones.load_full();
    let lines = classifier.lines();
    let databases: Vec<Value> = classifier
        .databases()
        .iter()
        .zip(&status.databases)
        .map(|(db, s)| {
            let (v4, v6) = db.network_counts();
            with_reloads(
                s,
                json!({
                    "path": s.path.display().to_string(),
                    "type": db.database_type(),
                    "layout": db.record_reader().to_string(),
                    "fields": db.provides().iter().map(|f| f.name()).collect::<Vec<_>>(),
                    "ip_version": db.ip_version(),
                    "build_epoch": db.build_epoch(),
                    "build_date": format_date(db.build_epoch()),
                    "networks": { "ipv4": v4, "ipv6": v6 },
                    "size_bytes": db.size_bytes(),
                }),
            )
        })
        .collect();
    let updates = live.updates.status(&zones);
    // Each zone with its file's reload status, matched by file: during a configuration
    // reload that adds or removes zones, the list and the statuses may be a moment apart.
    let zone_list: Vec<Value> = zones
        .zones()
        .iter()
        .filter_map(|z| Some((z, status.zones.iter().find(|s| s.path == z.file())?)))
        .map(|(z, s)| {
            let records: serde_json::Map<String, Value> = z
                .record_counts()
                .into_iter()
                .map(|(line, n)| (lines.name(line).to_string(), json!(n)))
                .collect();
            with_reloads(
                s,
                json!({
                    "origin": z.origin().to_string(),
                    "file": s.path.display().to_string(),
                    "serial": z.serial(),
                    "records": records,
                    "updates": updates.iter().find(|u| u.zone == z.origin().to_string()).map(|u| json!({
                        "writable": u.writable,
                        "journal": u.journal.display().to_string(),
                        "journal_entries": u.journal_entries,
                        "journal_bytes": u.journal_bytes,
                        "last_update": u.last.as_ref().map(|l| json!({
                            "at": format_rfc3339(l.at),
                            "key": l.key,
                            "result": l.result,
                        })),
                    })),
                    "secondary": live.secondaries.status_json(z.origin(), &classifier),
                }),
            )
        })
        .collect();
    let serving = live.certificates.load_full();
    let certificates: Vec<Value> = serving
        .expiries()
        .zip(&status.certificates)
        .map(|((c, not_after), s)| {
            with_reloads(
                s,
                json!({
                    "names": c.names,
                    "cert": c.cert.display().to_string(),
                    "key": c.key.display().to_string(),
                    "not_after": not_after.map(|t| format_rfc3339(u64::try_from(t).unwrap_or(0))),
                }),
            )
        })
        .collect();
    let (v4, v6) = classifier.map().range_count();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "lines": lines.ids().map(|l| lines.name(l)).collect::<Vec<_>>(),
        "line_map": { "ipv4_ranges": v4, "ipv6_ranges": v6 },
        "databases": databases,
        "zones": zone_list,
        "certificates": certificates,
        "listeners": listeners_json(reloader, listeners),
        "config": {
            "path": config.path.display().to_string(),
            "loaded_at": format_rfc3339(unix_secs(config.loaded_at)),
            "last_reload": config.last.as_ref().map(|(at, result)| {
                let mut entry = config_json(result);
                if let Some(o) = entry.as_object_mut() {
                    o.insert("at".into(), json!(format_rfc3339(unix_secs(*at))));
                }
                entry
            }),
        },
        "health": crate::health::report::status_json(&live.health),
        "acme": live.acme.status_json(),
    })
}

/// A configuration reload's outcome: `applied` (the sections), or the `error`, and
/// `restart_needed` when the error is a change only a restart applies.
fn config_json(
    result: &Result<
        crate::reload::configuration::ConfigOutcome,
        Arc<crate::reload::configuration::ConfigReloadError>,
    >,
) -> Value {
    use crate::reload::configuration::{ConfigOutcome, ConfigReloadError};
    match result {
        Ok(ConfigOutcome::Unchanged) => json!({ "ok": true, "applied": [] }),
        Ok(ConfigOutcome::Applied(sections)) => json!({ "ok": true, "applied": sections }),
        Err(e) => json!({
            "ok": false,
            "error": e.to_string(),
            "restart_needed": match &**e {
                ConfigReloadError::NeedsRestart { sections, .. } => json!(sections),
                _ => json!([]),
            },
        }),
    }
}

/// `fields` (a JSON object) with what is known of the reloads of its source: when the
/// data serving now was loaded, how many reloads succeeded and failed, and the last one.
fn with_reloads(s: &SourceStatus, mut fields: Value) -> Value {
    if let Some(object) = fields.as_object_mut() {
        object.insert(
            "loaded_at".into(),
            json!(format_rfc3339(unix_secs(s.loaded_at))),
        );
        object.insert(
            "reloads".into(),
            json!({ "success": s.successes, "failure": s.failures }),
        );
        object.insert("last_reload".into(), last_reload_json(s));
    }
    fields
}

/// The `/metrics` document. Without DNS listeners (`dns` is `None`) the DNS families are
/// there all the same, at zero, so that dashboards need not know the configuration.
pub(crate) fn render_metrics(reloader: &Reloader, counters: &Counters) -> String {
    let status = reloader.status();
    let live = reloader.live();
    let classifier = live.classifier.load_full();
    let zones = live.zones.load_full();
    let lines = classifier.lines();
    let mut out = Exposition::new();

    crate::dns::render_metrics(counters.dns.as_deref(), &mut out, &zones, |i| {
        lines
            .ids()
            .nth(i)
            .map_or_else(|| format!("line{i}"), |l| lines.name(l).to_string())
    });
    live.updates.render_metrics(&zones, &mut out);
    live.secondaries
        .render_metrics(&mut out, &classifier, |origin, line| {
            let zone = zones
                .zones()
                .iter()
                .find(|z| z.origin() == origin)
                .filter(|z| z.serves())?;
            zone.line_copy(line).map(|c| c.serial())
        });
    crate::xfr::render_metrics(
        counters.dns.as_deref().and_then(|d| d.transfers()),
        &mut out,
    );
    ProxyMetrics::render(counters.proxy.as_deref(), &mut out);
    RedirectMetrics::render(counters.redirect.as_deref(), &mut out, &|i| {
        lines
            .ids()
            .nth(i)
            .map_or_else(|| format!("line{i}"), |l| lines.name(l).to_string())
    });
    counters.http.render(&mut out);
    crate::health::report::render_metrics(&live.health, &mut out);
    live.acme.render_metrics(&mut out);

    let db_label = |s: &SourceStatus| s.path.display().to_string();
    out.family(
        "geoline_geoip_build_timestamp_seconds",
        "gauge",
        "When the serving GeoIP database was built (its metadata build_epoch).",
    );
    for (db, s) in classifier.databases().iter().zip(&status.databases) {
        out.sample(
            "geoline_geoip_build_timestamp_seconds",
            &[("database", &db_label(s)), ("type", db.database_type())],
            db.build_epoch() as f64,
        );
    }
    out.family(
        "geoline_geoip_networks",
        "gauge",
        "Networks with data in the serving GeoIP database.",
    );
    for (db, s) in classifier.databases().iter().zip(&status.databases) {
        out.sample(
            "geoline_geoip_networks",
            &[("database", &db_label(s))],
            db.network_count() as f64,
        );
    }
    sources(&mut out, "geoip", "database", &status.databases, db_label);

    out.family(
        "geoline_zone_serial",
        "gauge",
        "The SOA serial of the serving zone data.",
    );
    for z in zones.zones() {
        out.sample(
            "geoline_zone_serial",
            &[("zone", &z.origin().to_string())],
            f64::from(z.serial()),
        );
    }
    out.family(
        "geoline_zone_records",
        "gauge",
        "Records in the serving zone data, by line.",
    );
    for z in zones.zones() {
        for (line, n) in z.record_counts() {
            out.sample(
                "geoline_zone_records",
                &[
                    ("zone", &z.origin().to_string()),
                    ("line", lines.name(line)),
                ],
                n as f64,
            );
        }
    }
    let file_label = |s: &SourceStatus| s.path.display().to_string();
    sources(&mut out, "zone", "file", &status.zones, file_label);
    sources(
        &mut out,
        "certificate",
        "file",
        &status.certificates,
        file_label,
    );

    let (v4, v6) = classifier.map().range_count();
    out.family(
        "geoline_line_map_ranges",
        "gauge",
        "Address ranges in the compiled line map, by family.",
    );
    out.sample("geoline_line_map_ranges", &[("family", "ipv4")], v4 as f64);
    out.sample("geoline_line_map_ranges", &[("family", "ipv6")], v6 as f64);
    out.finish()
}

/// The reload families of databases (`kind` "geoip"), zones ("zone") or certificates
/// ("certificate").
fn sources(
    out: &mut Exposition,
    kind: &str,
    label: &str,
    list: &[SourceStatus],
    name: impl Fn(&SourceStatus) -> String,
) {
    let reloads = format!("geoline_{kind}_reloads_total");
    out.family(
        &reloads,
        "counter",
        "Reloads since start, by result (failed ones leave the previous data serving).",
    );
    for s in list {
        let n = name(s);
        out.sample(
            &reloads,
            &[(label, &n), ("result", "success")],
            s.successes as f64,
        );
        out.sample(
            &reloads,
            &[(label, &n), ("result", "failure")],
            s.failures as f64,
        );
    }
    let last_ok = format!("geoline_{kind}_last_reload_success");
    out.family(
        &last_ok,
        "gauge",
        "1 when the last load or reload succeeded, 0 when it failed.",
    );
    for s in list {
        out.sample(
            &last_ok,
            &[(label, &name(s))],
            if s.last.error.is_none() { 1.0 } else { 0.0 },
        );
    }
    let last_at = format!("geoline_{kind}_last_reload_timestamp_seconds");
    out.family(
        &last_at,
        "gauge",
        "When the last load or reload was attempted.",
    );
    for s in list {
        out.sample(&last_at, &[(label, &name(s))], unix_secs(s.last.at) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
