//! The DNS server's peak memory does not grow with its GeoIP database's file (issue 21):
//! the search tree, nearly all of a file, is read a page at a time while the line map is
//! compiled, never held whole.

mod common;

use std::path::Path;
use std::time::Duration;

use common::TempDir;
use common::process::Serve;

/// `geoline serve`'s peak resident memory (VmHWM, KiB) once it answers, serving the
/// repository's zones with a `china` line from the database at `db`.
fn peak_kib(dir: &TempDir, db: &Path) -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]
udp_workers = 1

[[geoip]]
path = "{db}"

[[line]]
name = "china"
countries = ["CN"]

[[zone]]
file = "{zone}"
overlays = {{ china = "{overlay}" }}
"#,
        db = db.display(),
        zone = root.join("zones/example.com.zone").display(),
        overlay = root.join("zones/example.com.china.zone").display(),
    );
    let path = dir.write("geoline.toml", &config);
    let serve = Serve::start(&path, &[]);
    serve.wait_for("dns listening", Duration::from_secs(120));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", serve.pid())).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn peak_memory_does_not_hold_the_database_file() {
    let dir = TempDir::new("lean-geoip");
    let small = dir.path().join("small.mmdb");
    common::mmdb::write_ip_location_db(&small, &[("1.2.0.0/15", "CN"), ("8.8.8.0/24", "US")]);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/geo-whois-asn-country.mmdb");
    let file_kib = std::fs::metadata(&shipped).expect("stat").len() / 1024;

    let with_small = peak_kib(&dir, &small);
    let with_shipped = peak_kib(&dir, &shipped);
    // The same server, code and zones; only the database differs. Its larger line map
    // and the tree pages being read cost a few hundred KiB: far less than the 7.5 MiB
    // file, which a server reading it whole would add to its peak.
    let grown = with_shipped.saturating_sub(with_small);
    assert!(
        grown < file_kib / 3,
        "peak {with_small} KiB with a small database, {with_shipped} KiB with the \
         {file_kib} KiB shipped one"
    );
}
