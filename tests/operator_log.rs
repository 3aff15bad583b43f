//! What an operator reads on standard error: the start lines, reload lines, and fatal
//! errors said once, with a hint where the fix is not obvious. The real binary, its
//! stderr a pipe (as under systemd or `2>events.log`).

mod common;

use std::time::Duration;

use common::TempDir;
use common::process::{self, Serve};
use common::site::{self, Config};

const LIMIT: Duration = Duration::from_secs(30);

fn check(config: &std::path::Path) -> (bool, String, String) {
    process::geoline(&["check".as_ref(), "--config".as_ref(), config.as_os_str()])
}

#[test]
fn start_lines_name_version_config_databases_and_zones_without_colour() {
    let dir = TempDir::new("oplog-start");
    let config = site::write(&dir);
    let path = dir.write("geoline.toml", &config.to_string());
    let serve = Serve::start(&path, &[]);
    let log = serve.wait_for("admin listening", LIMIT);
    assert!(!log.contains('\x1b'), "colour codes on a pipe:\n{log:?}");
    assert!(
        log.contains(&format!(
            "geoline starting version={} config={}\n",
            env!("CARGO_PKG_VERSION"),
            path.display()
        )),
        "{log}"
    );
    let db = dir.path().join("country.mmdb");
    assert!(
        log.contains(&format!(
            "database loaded path={} database_type=GeoIP2-Country layout=geoip2 built=",
            db.display()
        )),
        "{log}"
    );
    assert!(
        log.contains(
            "zone loaded zone=example.com. serial=2026112201 records=china 6, default 6\n"
        ),
        "{log}"
    );
    // Every listener is bound before the first "listening" line.
    let dns = log.find("dns listening").expect("a dns line");
    assert!(log.find("zone loaded").expect("zone line") < dns, "{log}");

    // A reload says which serial now serves.
    dir.write(
        "example.com.zone",
        &site::ZONE.replace("2026112201", "2026112202"),
    );
    serve.wait_for("reloaded: zone example.com. serial 2026112202", LIMIT);
}

#[test]
fn a_clean_stop_ends_the_log_with_a_stopped_line() {
    let dir = TempDir::new("oplog-stop");
    let config = site::write(&dir);
    let path = dir.write("geoline.toml", &config.to_string());
    let mut serve = Serve::start(&path, &[]);
    serve.wait_for("admin listening", LIMIT);
    serve.signal("TERM");
    let (ok, log) = serve.wait_exit(LIMIT);
    assert!(ok, "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains(" INFO geoline::server: stopped drained_ms="),
        "last line {last:?} of:\n{log}"
    );
    assert!(
        log.contains(" INFO geoline::server: shutting down\n"),
        "{log}"
    );
}

#[test]
fn without_a_configuration_file_the_error_names_the_flag() {
    let dir = TempDir::new("oplog-noconfig");
    let missing = dir.path().join("geoline.toml");
    let (ok, _, err) = check(&missing);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "geoline: {}: cannot read: No such file or directory (os error 2); name the \
             configuration with --config FILE (the repository's geoline.toml is a start)\n",
            missing.display()
        )
    );
    // A file the configuration names is not the configuration: no hint about --config.
    let present = dir.write(
        "geoline.toml",
        "[[line]]\nname = \"china\"\ncidr_files = [\"nope.txt\"]\n",
    );
    let (ok, _, err) = check(&present);
    assert!(!ok);
    assert!(!err.contains("--config"), "{err}");
    assert!(err.contains("nope.txt"), "{err}");
}

#[test]
fn colour_only_on_request_of_a_terminal_never_on_a_pipe() {
    // Without a terminal, colour never appears whatever NO_COLOR says.
    let dir = TempDir::new("oplog-colour");
    let path = dir.write(
        "geoline.toml",
        &Config::dns().zone("z.zone", &[]).to_string(),
    );
    dir.write("z.zone", site::ZONE);
    for env in [&[][..], &[("NO_COLOR", "")][..]] {
        let serve = Serve::start(&path, env);
        let log = serve.wait_for("dns listening", LIMIT);
        assert!(!log.contains('\x1b'), "{env:?}: {log:?}");
    }
}

#[test]
fn a_failed_bind_is_said_once_with_no_listening_line_before_it() {
    let dir = TempDir::new("oplog-bind");
    dir.write("z.zone", site::ZONE);
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    // The redirector binds before DNS: it must not be reported as listening.
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let config = Config::default()
        .table("[dns]", &[&format!(r#"listen = ["127.0.0.1:{port}"]"#)])
        .line("china", &[r#"cidrs = ["1.2.4.0/22"]"#])
        .zone("z.zone", &[])
        .redirect("127.0.0.1", origin);
    let path = dir.write("geoline.toml", &config.to_string());
    let mut serve = Serve::start(&path, &[]);
    let (ok, log) = serve.wait_exit(LIMIT);
    assert!(!ok, "{log}");
    assert!(!log.contains("listening"), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("geoline: "))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert_eq!(
        error,
        format!(
            "geoline: cannot listen on 127.0.0.1:{port} (UDP): Address already in use (os error 98); another process holds the port (`ss -lntup` names it)"
        )
    );
    drop(busy);
}

#[test]
fn an_ipv6_listen_address_without_brackets_gets_a_hint() {
    let dir = TempDir::new("oplog-v6");
    let path = dir.write(
        "g.toml",
        "[dns]\nlisten = [\"127.0.0.1:5300\", \"::1:5300\"]\n",
    );
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "geoline: {}:2: invalid socket address syntax: an IPv6 address needs brackets before its port: \"[::1]:5300\"\n",
            path.display()
        )
    );
}

#[test]
fn a_zone_declared_twice_names_the_config_line_of_both() {
    let dir = TempDir::new("oplog-dup");
    dir.write("a.zone", site::ZONE);
    dir.write("b.zone", site::ZONE);
    let path = dir.write(
        "g.toml",
        "[[zone]]\nfile = \"a.zone\"\n\n[[zone]]\nfile = \"b.zone\"\n",
    );
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "geoline: {p}:5: zone `example.com.` (file {b}) is already loaded by the [[zone]] at {p}:2 (file {a}): each zone is declared once\n",
            p = path.display(),
            a = dir.path().join("a.zone").display(),
            b = dir.path().join("b.zone").display(),
        )
    );
    let path = dir.write(
        "g.toml",
        "[[zone]]\nfile = \"a.zone\"\n[[zone]]\nfile = \"a.zone\"\n",
    );
    let (_, _, stderr) = check(&path);
    assert!(
        stderr.starts_with(&format!(
            "geoline: {p}:4: zone `example.com.` (file {a}) is already loaded by the [[zone]] at {p}:2",
            p = path.display(),
            a = dir.path().join("a.zone").display(),
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_certificate_is_said_once() {
    let dir = TempDir::new("oplog-cert");
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let config = Config::default()
        .line("china", &[r#"cidrs = ["1.2.4.0/22"]"#])
        .redirect("127.0.0.1", origin)
        .set("[[redirect.listen]]", &["tls = true"])
        .table(
            "[[redirect.certificate]]",
            &[
                r#"cert = "nope.pem""#,
                r#"key = "nope.key""#,
                r#"names = ["example.com"]"#,
            ],
        );
    let path = dir.write("g.toml", &config.to_string());
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "geoline: redirect: {}: cannot read: No such file or directory (os error 2)\n",
            dir.path().join("nope.pem").display()
        )
    );
}
