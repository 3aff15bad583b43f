//! The admin listener over real sockets: `/metrics` is valid Prometheus text and its
//! counters count exactly what was sent, `/status` describes what serves, the bearer token
//! is enforced.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;

use common::dns::{self, A, MX, Query, TXT};
use common::site::{self, NO_WATCH};
use common::{TempDir, TestServer, http};

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A strict reader of the Prometheus text exposition format (0.0.4), as far as geoline
/// writes it: `# HELP` and `# TYPE` once per family and before its samples, every sample
/// in a declared family, names and label names well formed, label values properly
/// escaped, values that parse, no series twice, counters named `_total`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(valid_name(name), "{at}");
            assert!(!help.is_empty(), "{at}: empty help");
            assert!(helps.insert(name.to_string()), "{at}: HELP twice");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "{at}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{at}"
            );
            assert!(helps.contains(name), "{at}: TYPE before HELP");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{at}: TYPE twice"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{at}: a counter not named _total");
            }
            current = Some(name.to_string());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{at}");
        let (name, labels, value) = parse_sample(line, &at);
        // A histogram's samples are its name with _bucket (and an `le` label), _sum, _count.
        let family = match current.as_deref() {
            Some(f) if types[f] == "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|n| *n == f))
                .filter(|_| name.ends_with("_bucket") == labels.contains_key("le"))
                .unwrap_or(&name)
                .to_string(),
            _ => name.clone(),
        };
        assert_eq!(
            current.as_deref(),
            Some(family.as_str()),
            "{at}: sample outside its family"
        );
        let key = format!("{name}{labels:?}");
        assert!(seen.insert(key), "{at}: series twice");
        if types[&family] == "counter" {
            assert!(value >= 0.0, "{at}: negative counter");
        }
        samples.push((name, labels, value));
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str, at: &str) -> (String, BTreeMap<String, String>, f64) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("{at}: no value"));
    let name = &line[..name_end];
    assert!(valid_name(name), "{at}: metric name");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // label name
            let start = chars.peek().map(|(i, _)| *i).expect("label");
            let mut eq = None;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq.unwrap_or_else(|| panic!("{at}: label without ="));
            let label = &after[start..eq];
            assert!(
                valid_name(label) && !label.contains(':'),
                "{at}: label name {label:?}"
            );
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{at}: unquoted");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => panic!("{at}: bad escape {other:?}"),
                    },
                    Some((_, '"')) => break,
                    Some((_, '\n')) | None => panic!("{at}: unterminated label value"),
                    Some((_, c)) => value.push(c),
                }
            }
            assert!(
                labels.insert(label.to_string(), value).is_none(),
                "{at}: label twice"
            );
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    rest = &after[i + 1..];
                    break;
                }
                other => panic!("{at}: after a label value: {other:?}"),
            }
        }
    }
    let value_text = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("{at}: one space before the value"));
    assert!(
        !value_text.contains(' '),
        "{at}: timestamps are not written"
    );
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{at}: value {v:?}")),
    };
    (name.to_string(), labels, value)
}

/// The value of the series `name` with exactly `labels`, if present.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| *v)
}

async fn scrape(admin: SocketAddr, token: Option<&str>) -> Vec<Sample> {
    let r = http::get(admin, "/metrics", token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&r.body)
}

#[test]
fn the_strict_parser_rejects_what_prometheus_would() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\"} 2\n";
    assert_eq!(parse_exposition(good).len(), 1);
    for bad in [
        "a_total 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=1} 2\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 2\na_total 3\n",
        "# HELP a A.\n# TYPE a counter\na 2\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} two\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"\\q\"} 2\n",
    ] {
        let r = std::panic::catch_unwind(|| parse_exposition(bad));
        assert!(r.is_err(), "accepted: {bad:?}");
    }
}

#[tokio::test]
async fn metrics_are_valid_and_count_what_was_sent() {
    let dir = TempDir::new("admin-metrics");
    let config = site::write(&dir).table("[reload]", NO_WATCH);
    // A TXT RRset too large for a 512-byte UDP response.
    let big: String = (0..4)
        .map(|i| {
            format!(
                "big TXT \"{}\"\n",
                char::from(b'a' + i).to_string().repeat(200)
            )
        })
        .collect();
    dir.write("example.com.zone", &format!("{}{big}", site::ZONE));
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");

    let before = scrape(admin, None).await;
    assert_eq!(
        value(&before, "geoline_dns_client_subnet_queries_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &before,
            "geoline_geoip_build_timestamp_seconds",
            &[
                (
                    "database",
                    &dir.path().join("country.mmdb").display().to_string()
                ),
                ("type", "GeoIP2-Country")
            ]
        ),
        Some(common::mmdb::BUILD_EPOCH as f64)
    );
    assert_eq!(
        value(&before, "geoline_zone_serial", &[("zone", "example.com.")]),
        Some(2026112201.0)
    );

    for _ in 0..3 {
        let q = Query::new("www.example.com", A).subnet("1.2.3.0/24");
        dns::udp(server.udp4, &q).await;
    }
    dns::udp(server.udp4, &Query::new("www.example.com", A).edns()).await;
    dns::udp(server.udp4, &Query::new("example.com", MX)).await;
    dns::udp(server.udp4, &Query::new("nope.example.com", A)).await;
    dns::udp(server.udp4, &Query::new("example.org", A)).await;
    let truncated = dns::udp(server.udp4, &Query::new("big.example.com", TXT)).await;
    assert!(truncated.tc());
    dns::tcp(server.tcp4, &Query::new("big.example.com", TXT)).await;

    let after = scrape(admin, None).await;
    let responses = |zone: &str, line: &str, qtype: &str, rcode: &str| {
        value(
            &after,
            "geoline_dns_responses_total",
            &[
                ("zone", zone),
                ("line", line),
                ("qtype", qtype),
                ("rcode", rcode),
            ],
        )
    };
    assert_eq!(
        responses("example.com.", "china", "A", "NOERROR"),
        Some(3.0)
    );
    // Without ECS the client is 127.0.0.1, in no declared line.
    assert_eq!(
        responses("example.com.", "default", "A", "NOERROR"),
        Some(1.0)
    );
    assert_eq!(
        responses("example.com.", "default", "MX", "NOERROR"),
        Some(1.0)
    );
    assert_eq!(
        responses("example.com.", "default", "A", "NXDOMAIN"),
        Some(1.0)
    );
    assert_eq!(responses("none", "none", "A", "REFUSED"), Some(1.0));
    assert_eq!(
        responses("example.com.", "default", "TXT", "NOERROR"),
        Some(2.0)
    );
    assert_eq!(responses("example.com.", "china", "MX", "NOERROR"), None);
    assert_eq!(
        value(&after, "geoline_dns_client_subnet_queries_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        value(
            &after,
            "geoline_dns_truncated_responses_total",
            &[("transport", "udp")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "geoline_dns_transport_responses_total",
            &[("transport", "udp")]
        ),
        Some(8.0)
    );
    assert_eq!(
        value(
            &after,
            "geoline_dns_transport_responses_total",
            &[("transport", "tcp")]
        ),
        Some(1.0)
    );

    // Reload counters move.
    let db = dir.path().join("country.mmdb").display().to_string();
    let reloads = |s: &[(String, BTreeMap<String, String>, f64)], result: &str| {
        value(
            s,
            "geoline_geoip_reloads_total",
            &[("database", &db), ("result", result)],
        )
    };
    assert_eq!(reloads(&after, "success"), Some(0.0));
    assert_eq!(http::post(admin, "/reload", None).await.status, 200);
    dir.write("country.mmdb", "garbage");
    assert_eq!(http::post(admin, "/reload", None).await.status, 422);
    let last = scrape(admin, None).await;
    assert_eq!(reloads(&last, "success"), Some(1.0));
    assert_eq!(reloads(&last, "failure"), Some(1.0));
    assert_eq!(
        value(
            &last,
            "geoline_geoip_last_reload_success",
            &[("database", &db)]
        ),
        Some(0.0)
    );
    let zone_file = dir.path().join("example.com.zone").display().to_string();
    assert_eq!(
        value(
            &last,
            "geoline_zone_reloads_total",
            &[("file", &zone_file), ("result", "success")]
        ),
        Some(2.0)
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn metrics_count_the_redirector_and_the_proxy() {
    let dir = TempDir::new("admin-redirect-metrics");
    // The origin is never reached: no request here is passed through.
    let origin: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let config = site::write(&dir)
        .table("[reload]", NO_WATCH)
        .redirect("127.0.0.1", origin);
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    let redirector = server.running.redirect[0];

    let before = scrape(admin, None).await;
    for outcome in ["redirected", "passed_through", "local"] {
        let labels = [("outcome", outcome)];
        let n = value(&before, "geoline_redirect_requests_total", &labels);
        assert_eq!(n, Some(0.0), "{outcome}");
    }
    // Without [proxy] its families are there, at zero.
    assert_eq!(
        value(&before, "geoline_proxy_requests_total", &[]),
        Some(0.0)
    );
    let errors = |s: &[Sample], status: &str| {
        value(
            s,
            "geoline_proxy_error_responses_total",
            &[("status", status)],
        )
    };
    assert_eq!(errors(&before, "502"), Some(0.0));

    let close = "Connection: close";
    for (host, path, headers) in [
        ("example.com", "/a", vec![close, "X-Forwarded-For: 1.2.3.4"]),
        ("example.org", "/b", vec![close]),
        ("example.org", "/healthz", vec![close]),
    ] {
        let raw = http::request("GET", host, path, &headers);
        let response = http::send_raw(redirector, "127.0.0.1", raw.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 "), "{response}");
    }

    let after = scrape(admin, None).await;
    let requests = |outcome: &str| {
        value(
            &after,
            "geoline_redirect_requests_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(requests("redirected"), Some(1.0));
    assert_eq!(requests("local"), Some(2.0));
    assert_eq!(requests("passed_through"), Some(0.0));
    server.running.shutdown().await;
}

#[tokio::test]
async fn status_describes_what_serves() {
    let dir = TempDir::new("admin-status");
    let config = site::write(&dir).table("[reload]", NO_WATCH);
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    let r = http::get(admin, "/status", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let s = r.json();
    assert_eq!(s["lines"], serde_json::json!(["china", "default"]));
    let db = &s["databases"][0];
    assert_eq!(
        db["path"],
        dir.path().join("country.mmdb").display().to_string()
    );
    assert_eq!(db["type"], "GeoIP2-Country");
    assert_eq!(db["layout"], "geoip2");
    assert_eq!(db["fields"], serde_json::json!(["country", "continent"]));
    assert_eq!(db["ip_version"], 6);
    assert_eq!(db["build_epoch"], common::mmdb::BUILD_EPOCH);
    assert_eq!(db["build_date"], "2023-11-14");
    assert_eq!(db["networks"]["ipv4"], 2);
    assert_eq!(db["networks"]["ipv6"], 0);
    assert_eq!(
        db["reloads"],
        serde_json::json!({"success": 0, "failure": 0})
    );
    assert_eq!(db["last_reload"]["result"], "ok");
    assert_eq!(db["last_reload"]["trigger"], "start");
    assert_eq!(db["last_reload"]["error"], serde_json::Value::Null);
    let at = db["last_reload"]["at"].as_str().expect("time");
    assert_eq!(at.len(), "2026-11-22T00:00:00Z".len(), "{at}");
    assert!(at.ends_with('Z'), "{at}");

    let zone = &s["zones"][0];
    assert_eq!(zone["origin"], "example.com.");
    assert_eq!(
        zone["file"],
        dir.path().join("example.com.zone").display().to_string()
    );
    assert_eq!(zone["serial"], 2026112201);
    assert_eq!(
        zone["records"],
        serde_json::json!({"china": 6, "default": 6})
    );
    assert_eq!(zone["last_reload"]["result"], "ok");

    let r = http::get(admin, "/healthz", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(http::get(admin, "/nope", None).await.status, 404);
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_bearer_token_is_enforced() {
    let dir = TempDir::new("admin-token");
    let config = site::write(&dir)
        .set("[admin]", &[r#"token = "s3cret-t0ken-for-tests""#])
        .table("[reload]", NO_WATCH);
    let server = TestServer::start(&dir, &config).await;
    let admin = server.admin.expect("admin");
    let token = Some("s3cret-t0ken-for-tests");
    for (method, path) in [("GET", "/metrics"), ("GET", "/status"), ("POST", "/reload")] {
        let r = http::admin_request(admin, method, path, None).await;
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"geoline admin\"")
        );
        let r = http::admin_request(admin, method, path, Some("s3cret-t0ken-for-testz")).await;
        assert_eq!(r.status, 401, "{method} {path} with a wrong token");
        let r = http::admin_request(admin, method, path, Some("s3cret")).await;
        assert_eq!(r.status, 401, "{method} {path} with a prefix of the token");
        let r = http::admin_request(admin, method, path, token).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
    // Health checks carry no credentials.
    assert_eq!(http::get(admin, "/healthz", None).await.status, 200);
    server.running.shutdown().await;
}
