//! Mistakes `geoline check` (and `serve`) catch before they bite: country codes that are
//! not ISO 3166-1, prefixes with host bits set, a configuration with nothing to serve,
//! certificates that do not cover the names they serve; and the share of the address
//! space each line holds, so that a line matching nobody shows; zone records no query
//! reaches (below a delegation) and RRsets whose records have different TTLs.

mod common;

use std::time::Duration;

use common::TempDir;
use common::process::{self, Serve};
use common::site::{self, Config};
use common::tls::TestCa;

fn check(config: &std::path::Path) -> (bool, String, String) {
    process::geoline(&["check".as_ref(), "--config".as_ref(), config.as_os_str()])
}

/// `[dns]` and a zone, and the `[[line]]` given: what `check` needs besides the lines.
fn with_line(dir: &TempDir, rules: &[&str]) -> std::path::PathBuf {
    dir.write("z.zone", common::site::ZONE);
    dir.write_bytes(
        "country.mmdb",
        &common::mmdb::geoip2_country_bytes(&[("1.2.0.0/16", "CN", "AS")]),
    );
    let config = Config::dns()
        .geoip("country.mmdb")
        .line("x", rules)
        .zone("z.zone", &[]);
    dir.write("g.toml", &config.to_string())
}

fn refused(dir: &TempDir, rules: &[&str]) -> String {
    let path = with_line(dir, rules);
    let (ok, _, stderr) = check(&path);
    assert!(!ok, "accepted: {rules:?}");
    stderr.replace(&path.display().to_string(), "g.toml")
}

#[test]
fn country_codes_are_iso_3166_with_a_suggestion() {
    let dir = TempDir::new("opcheck-country");
    // [dns] 2 lines, blank, [[geoip]] 2 lines, blank, [[line]], name: the rule is on line 9.
    assert_eq!(
        refused(&dir, &[r#"countries = ["CN", "UK"]"#]),
        "geoline: g.toml:9: line `x`: country `UK` is not an ISO 3166-1 alpha-2 code: did you mean `GB`?\n"
    );
    assert_eq!(
        refused(&dir, &[r#"countries = ["cn"]"#]),
        "geoline: g.toml:9: line `x`: country `cn` is not an ISO 3166-1 alpha-2 code: did you mean `CN`?\n"
    );
    assert_eq!(
        refused(&dir, &[r#"countries = ["QQ"]"#]),
        "geoline: g.toml:9: line `x`: country `QQ` is not an ISO 3166-1 alpha-2 code\n"
    );
    assert_eq!(
        refused(&dir, &[r#"subdivisions = ["UK-ENG"]"#]),
        "geoline: g.toml:9: line `x`: subdivision `UK-ENG`: `UK` is not an ISO 3166-1 country code: did you mean `GB-ENG`?\n"
    );
    let (ok, _, stderr) = check(&with_line(&dir, &[r#"countries = ["GB", "XK", "CN"]"#]));
    assert!(ok, "{stderr}");
}

#[test]
fn prefixes_with_host_bits_are_refused_naming_the_network() {
    let dir = TempDir::new("opcheck-cidr");
    assert_eq!(
        refused(&dir, &[r#"cidrs = ["1.2.3.4/16"]"#]),
        "geoline: g.toml:9: line `x`: `1.2.3.4/16` has host bits set: the network is 1.2.0.0/16 (or, for the one address, 1.2.3.4/32)\n"
    );
    assert_eq!(
        refused(&dir, &[r#"cidrs = ["2001:db8::1/32"]"#]),
        "geoline: g.toml:9: line `x`: `2001:db8::1/32` has host bits set: the network is 2001:db8::/32 (or, for the one address, 2001:db8::1/128)\n"
    );
    let list = dir.write("list.txt", "# mainland\n1.2.4.0/22\n10.1.1.1/8\n");
    let (ok, _, stderr) = check(&with_line(&dir, &[r#"cidr_files = ["list.txt"]"#]));
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "geoline: {}:3: `10.1.1.1/8` has host bits set: the network is 10.0.0.0/8 (or, for the one address, 10.1.1.1/32)\n",
            list.display()
        )
    );
}

#[test]
fn a_configuration_with_nothing_to_serve_is_refused_by_check_and_serve() {
    let dir = TempDir::new("opcheck-empty");
    let path = dir.write("g.toml", "# emptied by mistake\n");
    let expected = format!(
        "geoline: {}: nothing to serve: give a [dns], [redirect] or [proxy] section, or [admin] with [[health.monitor]]s for a probe (the repository's geoline.toml is a start)\n",
        path.display()
    );
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(stderr, expected);
    // Zones without a listener: check checks them, and warns that serve will refuse.
    dir.write("z.zone", common::site::ZONE);
    let zones = dir.write("zones.toml", "[[zone]]\nfile = \"z.zone\"\n");
    let (ok, stdout, stderr) = check(&zones);
    assert!(ok, "{stderr}");
    assert!(
        stdout.ends_with(&format!(
            "warning: {}: nothing to serve: give a [dns], [redirect] or [proxy] section, or [admin] with [[health.monitor]]s for a probe (the repository's geoline.toml is a start); `serve` refuses it\n",
            zones.display()
        )),
        "{stdout}"
    );
    let mut serve = Serve::start(&path, &[]);
    let (ok, log) = serve.wait_exit(Duration::from_secs(30));
    assert!(!ok, "{log}");
    assert!(log.ends_with(&expected), "{log}");
}

#[test]
fn check_prints_the_addresses_each_line_holds() {
    let dir = TempDir::new("opcheck-cover");
    dir.write("z.zone", common::site::ZONE);
    dir.write_bytes(
        "country.mmdb",
        &common::mmdb::geoip2_country_bytes(&[("1.2.0.0/16", "CN", "AS")]),
    );
    let config = Config::dns()
        .geoip("country.mmdb")
        .line("china", &[r#"countries = ["CN"]"#])
        .line("lab", &[r#"cidrs = ["192.0.2.0/24", "2001:db8::/32"]"#])
        .line("antarctica", &[r#"countries = ["AQ"]"#])
        .zone("z.zone", &[]);
    let path = dir.write("g.toml", &config.to_string());
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "  china: 1 country, 0 continents, 0 subdivisions, 0 ASNs, 0 prefixes
    covers 65536 IPv4 addresses (<0.01%), 0 IPv6 /48s (0%)
  lab: 0 countries, 0 continents, 0 subdivisions, 0 ASNs, 2 prefixes
    covers 256 IPv4 addresses (<0.01%), 65536 IPv6 /48s (<0.01%)
  antarctica: 1 country, 0 continents, 0 subdivisions, 0 ASNs, 0 prefixes
    covers 0 IPv4 addresses (0%), 0 IPv6 /48s (0%): matches no address
  default: every address no line above matches
    covers 4294901504 IPv4 addresses (100.00%), 281474976645120 IPv6 /48s (100.00%)
"
        ),
        "{stdout}"
    );
}

#[test]
fn check_names_the_hosts_a_certificate_does_not_cover() {
    let dir = TempDir::new("opcheck-cert");
    let ca = TestCa::new();
    let org = ca.leaf(&["example.org"]);
    dir.write("org.pem", &org.cert_pem);
    dir.write("org.key", &org.key_pem);
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let config = Config::default()
        .line("china", &[r#"cidrs = ["1.2.4.0/22"]"#])
        .redirect("127.0.0.1", origin)
        .set("[[redirect.listen]]", &["tls = true"])
        .table(
            "[[redirect.certificate]]",
            &[
                r#"cert = "org.pem""#,
                r#"key = "org.key""#,
                r#"names = ["example.com", "example.org"]"#,
            ],
        );
    let path = dir.write("g.toml", &config.to_string());
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "{stderr}");
    let cert = dir.path().join("org.pem");
    // Each certificate with the names it is listed for and the end of its validity
    // (rcgen's default notAfter).
    assert!(
        stdout.contains(&format!(
            "redirect: 1 rule, 1 certificate, on https://127.0.0.1:0\n  certificate {}: example.com, example.org; valid until 4096-01-01\n",
            cert.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "warning: certificate {}: listed for example.com but not valid for it (TLS clients will refuse it there)\n",
            cert.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: no certificate is valid for example.com, *.example.com, which the redirect rules serve\n"
        ),
        "{stdout}"
    );
    // A certificate for the rule's hosts: no warning.
    let com = ca.leaf(&["example.com", "*.example.com"]);
    dir.write("org.pem", &com.cert_pem);
    dir.write("org.key", &com.key_pem);
    let path = dir.write(
        "g.toml",
        &config.to_string().replace(r#", "example.org""#, ""),
    );
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[test]
fn check_warns_of_records_no_query_reaches_and_of_an_rrset_with_two_ttls() {
    let dir = TempDir::new("opcheck-zone");
    let config = site::write(&dir);
    // The overlay gives www a second address with another TTL, and a relay address to a
    // name below a delegation of the base file.
    dir.write(
        "example.com.zone",
        &format!("{}sub NS ns.sub\nns.sub A 192.0.2.54\n", site::ZONE),
    );
    dir.write(
        "example.com.china.zone",
        &format!(
            "{}www 120 A 203.0.113.11\nrelay.sub 60 A 203.0.113.20\n",
            site::CHINA
        ),
    );
    let path = dir.write("geoline.toml", &config.to_string());
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "  warning: `relay.sub.example.com.` (on china) is below the delegation \
             `sub.example.com.` and is never answered: its records are the child zone's to \
             serve (move them there, or remove the NS records)\n"
        ),
        "{stdout}"
    );
    // ns.sub is glue: no warning for it.
    assert!(!stdout.contains("`ns.sub.example.com.`"), "{stdout}");
    assert_eq!(
        stderr,
        format!(
            " WARN www.example.com. A: records with different TTLs; using 60, the first one's file={}\n",
            dir.path().join("example.com.china.zone").display()
        )
    );
}
