//! The command line as an operator runs it: `geoline check` on good and broken inputs.

mod common;

use std::process::Command;

use common::TempDir;

fn geoline(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_geoline"))
        .args(args)
        .output()
        .expect("run geoline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_summarises_the_repository_config() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/geoline.toml");
    let (ok, stdout, stderr) = geoline(&["check", "--config", config]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("geoip/geo-whois-asn-country.mmdb: country ipvAll (layout ip-location-db, IPv6), built 2026-06-17, fields: country, continent"), "{stdout}");
    assert!(
        stdout.contains("lines (in match order): china, default"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "zone example.com.: serial 2026112201, records per line: china 19, default 18"
        ),
        "{stdout}"
    );
}

const CONFIG: &str = r#"
[[line]]
name = "lab"
cidrs = ["192.0.2.0/24"]

[[zone]]
file = "z.zone"
overlays = { lab = "z.lab.zone" }
"#;

const ZONE: &str = "$ORIGIN example.net.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";

#[test]
fn check_names_file_and_line_of_a_broken_zone() {
    let dir = TempDir::new("cli-zone");
    let config = dir.write("g.toml", CONFIG);
    dir.write("z.zone", ZONE);
    dir.write(
        "z.lab.zone",
        "$TTL 60\nwww A 192.0.2.7\nwww A 192.0.2.300\n",
    );
    let (ok, stdout, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    let overlay = dir.path().join("z.lab.zone");
    assert!(
        stderr.starts_with(&format!("geoline: {}:3: ", overlay.display())),
        "{stderr}"
    );

    dir.write("z.lab.zone", "$TTL 60\nwww A 192.0.2.7\n");
    let (ok, stdout, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("zone example.net.: serial 1, records per line: lab 4, default 3"),
        "{stdout}"
    );
}

#[test]
fn check_names_file_and_line_of_a_broken_config() {
    let dir = TempDir::new("cli-config");
    let config = dir.write("g.toml", &CONFIG.replace("cidrs = [", "cidr = ["));
    let (ok, _, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(
        stderr.starts_with(&format!("geoline: {}:4: ", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("cidr"), "{stderr}");

    let (ok, _, stderr) = geoline(&["check", "--config", "/nonexistent/geoline.toml"]);
    assert!(!ok);
    assert!(
        stderr.contains("/nonexistent/geoline.toml: cannot read"),
        "{stderr}"
    );
}
