//! The shipped geoline.toml starts on a host without an IPv6 loopback (Docker's default):
//! the real binary in a network namespace of its own whose loopback has IPv4 only.

use std::process::Command;

/// Runs the repository's `geoline serve` inside a new network namespace with `lo` up and
/// IPv6 off, until it logs its admin listener (or 60 s pass); returns its standard error,
/// or `None` when this machine cannot make namespaces (not root, no `unshare`).
fn serve_without_ipv6() -> Option<String> {
    let geoline = env!("CARGO_BIN_EXE_geoline");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/geoline.toml");
    let probe = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && sysctl -qw net.ipv6.conf.lo.disable_ipv6=1",
        ])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return None;
    }
    let script = format!(
        r#"ip link set lo up && sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 || exit 99
log=$(mktemp)
'{geoline}' serve --config '{config}' 2>"$log" >/dev/null &
pid=$!
for _ in $(seq 600); do
  grep -q 'admin listening' "$log" && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill $pid 2>/dev/null; wait $pid
cat "$log"; rm -f "$log""#
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_shipped_config_starts_without_an_ipv6_loopback() {
    let Some(log) = serve_without_ipv6() else {
        eprintln!("skipped: cannot make a network namespace here");
        return;
    };
    assert!(
        log.contains("dns listening (UDP and TCP) addr=127.0.0.1:5300\n"),
        "{log}"
    );
    assert!(
        log.contains("addr=[::1]:5300") && log.contains("this host has no IPv6 loopback"),
        "{log}"
    );
    assert!(
        log.contains("admin listening addr=127.0.0.1:9300\n"),
        "{log}"
    );
    assert!(!log.lines().any(|l| l.starts_with("geoline: ")), "{log}");
}
