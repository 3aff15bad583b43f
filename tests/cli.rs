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

/// Each line is three lines of text: line `l{i}` is named on line 3i + 2.
fn lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[line]]\nname = \"l{i}\"\ncidrs = [\"10.0.{i}.0/24\"]\n"))
        .collect()
}

#[test]
fn check_accepts_255_lines_and_names_the_256th() {
    let dir = TempDir::new("cli-lines");
    let config = dir.write("g.toml", &lines(255));
    let (ok, stdout, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(", l254, default\n"), "{stdout}");

    let config = dir.write("g.toml", &lines(256));
    let (ok, _, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "geoline: {}:767: line `l255` is one too many: at most 255 lines can be declared\n",
            config.display()
        )
    );
}

const REDIRECT: &str = r#"[[line]]
name = "china"
cidrs = ["1.2.4.0/22"]

[redirect]
[[redirect.listen]]
address = "127.0.0.1:0"

[[redirect.rule]]
from = "example.com"
to = "example.cn"
lines = ["china"]

[redirect.origin]
url = "https://example.com"
"#;

#[test]
fn check_refuses_an_underscore_in_a_redirect_host_with_its_line() {
    let dir = TempDir::new("cli-host");
    for (from, to, line, what, name) in [
        (
            "\"example.com\"",
            "\"www_1.example.com\"",
            10,
            "from",
            "www_1.example.com",
        ),
        ("\"example.cn\"", "\"ex_ample.cn\"", 11, "to", "ex_ample.cn"),
        ("\"example.cn\"", "\"-example.cn\"", 11, "to", "-example.cn"),
    ] {
        let config = dir.write("g.toml", &REDIRECT.replacen(from, to, 1));
        let (ok, _, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
        assert!(!ok, "{name} accepted");
        assert_eq!(
            stderr,
            format!(
                "geoline: {}:{line}: redirect.rule: {what} `{name}` is not a host name such as example.com\n",
                config.display()
            )
        );
    }
}

#[test]
fn lookup_explains_the_repository_config() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/geoline.toml");
    let (ok, stdout, stderr) =
        geoline(&["lookup", "--config", config, "1.2.4.8", "www.example.com"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "address 1.2.4.8
line china
decided by country CN listed by line china, from database geoip/geo-whois-asn-country.mmdb network 1.2.4.0/22
fields read: country CN, continent AS
  geoip/geo-whois-asn-country.mmdb (ip-location-db): network 1.2.4.0/22: country CN, continent AS
ecs scope /22 for answers that differ by line (1.2.4.0/22 is all in line china)
www.example.com. A on line china: NOERROR, ecs scope /22
  answer: www.example.com. 60 IN A 203.0.113.10
"
        .replace(
            "geoip/",
            &format!("{}/geoip/", env!("CARGO_MANIFEST_DIR"))
        )
    );
    let (ok, stdout, _) = geoline(&["lookup", "--config", config, "8.8.8.8", "example.com", "mx"]);
    assert!(ok);
    assert!(
        stdout.contains("line default\ndecided by no rule matches: the default line\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "example.com. MX on line default: NOERROR, ecs scope /0
  answer: example.com. 300 IN MX 10 mail.example.com.
  additional: mail.example.com. 300 IN A 192.0.2.25
"
        ),
        "{stdout}"
    );
    let (ok, _, stderr) = geoline(&[
        "lookup",
        "--config",
        config,
        "8.8.8.8",
        "example.com",
        "BOGUS",
    ]);
    assert!(!ok);
    assert_eq!(
        stderr,
        "geoline: `BOGUS` is not a record type (A, AAAA, MX, TXT, ...)\n"
    );
}

#[test]
fn lookup_names_the_cidr_subdivision_or_asn_that_decided() {
    let dir = TempDir::new("cli-lookup");
    std::fs::write(
        dir.path().join("city.mmdb"),
        common::mmdb::geoip2_city_bytes(
            "GeoLite2-City",
            &[
                ("1.2.0.0/16", "CN", "AS", &["GD"]),
                ("1.3.0.0/16", "CN", "AS", &["BJ"]),
            ],
        ),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("asn.mmdb"),
        common::mmdb::asn_bytes("GeoLite2-ASN", &[("1.3.0.0/16", 4134, "CHINANET")]),
    )
    .expect("write");
    dir.write("z.zone", ZONE);
    let config = dir.write(
        "g.toml",
        r#"
[[geoip]]
path = "city.mmdb"
[[geoip]]
path = "asn.mmdb"
[[line]]
name = "lab"
cidrs = ["1.2.3.0/24"]
[[line]]
name = "gd"
subdivisions = ["CN-GD"]
[[line]]
name = "telecom"
asns = [4134]
[[zone]]
file = "z.zone"
"#,
    );
    let config = config.to_str().expect("utf-8");
    let run = |ip: &str| {
        let (ok, stdout, stderr) = geoline(&["lookup", "--config", config, ip]);
        assert!(ok, "{stderr}");
        stdout
    };
    let city = dir.path().join("city.mmdb").display().to_string();
    let asn = dir.path().join("asn.mmdb").display().to_string();
    let out = run("1.2.3.4");
    assert!(
        out.contains("line lab\ndecided by prefix 1.2.3.0/24 (/24) listed by line lab\n"),
        "{out}"
    );
    assert!(out.contains("ecs scope /24"), "{out}");
    let out = run("1.2.4.4");
    assert!(
        out.contains(&format!(
            "line gd\ndecided by subdivision CN-GD listed by line gd, from database {city} network 1.2.0.0/16\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("fields read: country CN, continent AS, subdivisions CN-GD\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  {asn} (geoip2-asn): no network holds it\n")),
        "{out}"
    );
    let out = run("1.3.0.1");
    assert!(
        out.contains(&format!(
            "line telecom\ndecided by AS4134 listed by line telecom, from database {asn} network 1.3.0.0/16\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("fields read: country CN, continent AS, subdivisions CN-BJ, asn AS4134\n"),
        "{out}"
    );
}

#[test]
fn check_refuses_a_character_string_over_255_bytes_with_its_line() {
    let dir = TempDir::new("cli-hinfo");
    let config = dir.write("g.toml", "[[zone]]\nfile = \"z.zone\"\n");
    let zone = dir.write(
        "z.zone",
        &format!(
            "{ZONE}www A 192.0.2.2\nbox HINFO \"{}\" \"Linux\"\n",
            "x".repeat(256)
        ),
    );
    let (ok, stdout, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(!ok, "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "geoline: {}:7: `box.example.net.` HINFO: a character-string of 256 bytes, over the 255 \
             of RFC 1035 3.3 (only TXT and SPF strings are split into pieces; shorten this one)",
            zone.display()
        )
    );
    // A TXT string as long is cut into pieces, and the zone loads.
    dir.write(
        "z.zone",
        &format!("{ZONE}www A 192.0.2.2\nbox TXT \"{}\"\n", "x".repeat(256)),
    );
    let (ok, _, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
}

#[test]
fn check_warns_of_every_name_that_exists_on_some_lines_only() {
    let dir = TempDir::new("cli-line-dependent");
    let config = dir.write(
        "g.toml",
        r#"
[[line]]
name = "lab"
cidrs = ["192.0.2.0/24"]

[[line]]
name = "probe"
cidrs = ["198.51.100.0/24"]

[[zone]]
file = "z.zone"
overlays = { lab = "z.lab.zone", probe = "z.probe.zone" }
"#,
    );
    dir.write(
        "z.zone",
        &format!("{ZONE}www A 192.0.2.2\n*.wild A 192.0.2.3\nsub NS ns.sub\nns.sub A 192.0.2.4\n"),
    );
    // www is in the base (no warning), x.wild is covered by the base's wildcard and
    // host.sub lies below the base's delegation (both exist everywhere: host.sub is then
    // warned of as never answered, ns.sub is glue); a.b.deep warns for
    // itself only (not for its empty non-terminal b.deep). Names come in DNSSEC canonical
    // order (RFC 4034 6.1: compared from the root down).
    dir.write(
        "z.lab.zone",
        "$TTL 60\nwww A 203.0.113.1\nonly-lab A 203.0.113.2\nboth A 203.0.113.3\n\
         x.wild A 203.0.113.4\nhost.sub A 203.0.113.5\na.b.deep TXT \"lab\"\n",
    );
    dir.write("z.probe.zone", "$TTL 60\nboth A 203.0.113.9\n");
    let (ok, stdout, stderr) = geoline(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let tail = "a resolver whose negative cache ignores the client subnet (PowerDNS Recursor 4.8) \
                can hand that NXDOMAIN to the clients of every line; give the name a record in \
                the base file (an overlay's still wins on its line)";
    let zone = stdout
        .lines()
        .skip_while(|l| !l.starts_with("zone "))
        .take_while(|l| l.starts_with("zone ") || l.starts_with("  warning: "))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        zone,
        format!(
            "zone example.net.: serial 1, records per line: lab 12, probe 8, default 7\n\
             \x20 warning: `both.example.net.` does not exist on default: {tail}\n\
             \x20 warning: `a.b.deep.example.net.` does not exist on probe, default: {tail}\n\
             \x20 warning: `only-lab.example.net.` does not exist on probe, default: {tail}\n\
             \x20 warning: `host.sub.example.net.` (on lab) is below the delegation \
             `sub.example.net.` and is never answered: its records are the child zone's to \
             serve (move them there, or remove the NS records)"
        )
    );
}
