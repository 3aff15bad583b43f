//! `[acme]` is applied by a configuration reload (SIGHUP): the ACME tasks start again
//! under the edited section, while a reload that leaves `[acme]` and the certificate
//! entries alone leaves them running as they were. The real binary; the CA is unreachable
//! (an order is attempted and fails), so what is seen is when orders are attempted.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::TempDir;
use common::http;
use common::process::{self, Serve};

const LIMIT: Duration = Duration::from_secs(30);

/// A redirector with one ACME certificate from an unreachable CA (a failed order is
/// retried after an hour), `contact` its account's contact, `to` its rule's target.
fn config(contact: &str, to: &str) -> String {
    format!(
        r#"[admin]
listen = "127.0.0.1:0"

[reload]
watch = false

[redirect]
access_log = "off"

[[redirect.listen]]
address = "127.0.0.1:0"
tls = true

[[redirect.certificate]]
names = ["example.com", "*.example.com"]
acme = true

[[redirect.rule]]
from = "example.com"
to = "{to}"
lines = ["default"]

[redirect.origin]
url = "http://example.com"
connect_to = "127.0.0.1:9"

[acme]
state_dir = "state"
directory = "https://127.0.0.1:1/dir"
contact = ["{contact}"]
retry_min_secs = 3600
"#
    )
}

/// acme[0] of `/status`.
async fn acme(admin: SocketAddr) -> serde_json::Value {
    http::get(admin, "/status", None).await.json()["acme"][0].clone()
}

async fn wait_failures(admin: SocketAddr, n: u64) {
    common::site::wait_until(
        &format!("{n} failed ACME orders in /status"),
        LIMIT,
        || async move { acme(admin).await["failures"] == n },
    )
    .await;
}

#[tokio::test]
async fn sighup_starts_the_acme_tasks_again_under_an_edited_acme_section() {
    let dir = TempDir::new("acme-reload");
    let path = dir.write("geoline.toml", &config("ops@example.com", "example.cn"));
    let serve = Serve::start(&path, &[]);
    let admin = process::listening(&serve.wait_for("admin listening", LIMIT), "admin");
    // At start: no certificate stored, so an order at once; it fails, the next in an hour.
    wait_failures(admin, 1).await;
    let first = acme(admin).await;
    assert!(
        first["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("ACME: ")),
        "{first}"
    );

    // A reload that changes the redirector's rules only: the task runs on, no new order.
    dir.write("geoline.toml", &config("ops@example.com", "example.net"));
    serve.signal("HUP");
    serve.wait_for("configuration reloaded: [redirect] applied", LIMIT);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(acme(admin).await["failures"], 1, "{}", serve.stderr());
    assert_eq!(acme(admin).await["next_attempt"], first["next_attempt"]);

    // A new contact: [acme] applied, the task starts again under it and orders at once
    // (nothing is stored yet) instead of waiting out its hour; its counters carry over.
    dir.write("geoline.toml", &config("certs@example.com", "example.net"));
    serve.signal("HUP");
    serve.wait_for("configuration reloaded: [acme] applied", LIMIT);
    wait_failures(admin, 2).await;
    let status = http::get(admin, "/status", None).await.json();
    assert_eq!(
        status["config"]["last_reload"]["applied"],
        serde_json::json!(["[acme]"]),
        "{status}"
    );
    assert_eq!(status["acme"].as_array().map(Vec::len), Some(1), "{status}");
    assert!(
        serve
            .stderr()
            .contains("ACME certificate's configuration changed: its task starts again"),
        "{}",
        serve.stderr()
    );
}
