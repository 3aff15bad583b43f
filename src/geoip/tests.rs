use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use mmdb_writer::{IpVersion, Value};

use super::fixtures::{self, BUILD_EPOCH};
use super::*;
use crate::config::GeoIpLayoutChoice::{self, Auto};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn rec(country: &str, continent: &str) -> GeoRecord {
    let two = |s: &str| {
        let b = s.as_bytes();
        (b.len() == 2).then(|| [b[0], b[1]])
    };
    GeoRecord {
        country: two(country),
        continent: two(continent),
    }
}

fn db(bytes: Vec<u8>) -> GeoDb {
    GeoDb::from_bytes(Path::new("test.mmdb"), bytes, Auto).expect("valid fixture")
}

fn geoip2() -> GeoDb {
    db(fixtures::geoip2_country_bytes(&[
        ("1.0.0.0/8", "AU", "OC"),
        ("1.2.0.0/15", "CN", "AS"),
        ("8.8.8.0/24", "US", "NA"),
        ("81.2.69.0/24", "", "EU"),
        ("2400:da00::/32", "CN", "AS"),
        ("2001:db8::/32", "JP", "AS"),
    ]))
}

/// A directory of its own under the system temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("geoline-geoip-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn recognises_layouts_from_database_type() {
    for t in [
        "GeoIP2-Country",
        "GeoLite2-Country",
        "GeoIP2-City",
        "GeoLite2-City",
        "GeoIP2-Enterprise",
        "DBIP-Country-Lite",
        "DBIP-City-Lite",
    ] {
        assert_eq!(Layout::recognise(t), Some(Layout::Geoip2), "{t}");
    }
    for t in [
        "country ipvAll",
        "country ipv4",
        "country ipv6",
        "city ipv4",
    ] {
        assert_eq!(Layout::recognise(t), Some(Layout::IpLocationDb), "{t}");
    }
    for t in ["GeoLite2-ASN", "GeoIP2-ISP", "asn ipv4", "My-DB", ""] {
        assert_eq!(Layout::recognise(t), None, "{t}");
    }
}

#[test]
fn geoip2_country_fixture_opens_with_its_metadata() {
    let db = geoip2();
    assert_eq!(db.layout(), Layout::Geoip2);
    assert_eq!(db.database_type(), "GeoIP2-Country");
    assert_eq!(db.build_epoch(), BUILD_EPOCH);
    assert_eq!(db.ip_version(), 6);
    assert_eq!(db.path(), Path::new("test.mmdb"));
    // 1.0.0.0/8 minus 1.2.0.0/15 is seven networks.
    assert_eq!(db.network_counts(), (7 + 1 + 1 + 1, 2));
    assert_eq!(db.network_count(), 12);
}

#[test]
fn geoip2_lookup_reports_network_and_record() {
    let db = geoip2();
    assert_eq!(
        db.lookup(ip("1.2.4.8")).expect("lookup"),
        Some((net("1.2.0.0/15"), rec("CN", "AS")))
    );
    assert_eq!(
        db.lookup(ip("1.1.1.1")).expect("lookup"),
        Some((net("1.0.0.0/15"), rec("AU", "OC")))
    );
    assert_eq!(
        db.lookup(ip("8.8.8.8")).expect("lookup"),
        Some((net("8.8.8.0/24"), rec("US", "NA")))
    );
    assert_eq!(
        db.lookup(ip("81.2.69.1")).expect("lookup"),
        Some((net("81.2.69.0/24"), rec("", "EU")))
    );
    assert_eq!(
        db.lookup(ip("2400:da00::1")).expect("lookup"),
        Some((net("2400:da00::/32"), rec("CN", "AS")))
    );
    assert_eq!(db.lookup(ip("9.9.9.9")).expect("lookup"), None);
    assert_eq!(db.lookup(ip("2a00::1")).expect("lookup"), None);
}

#[test]
fn ipv4_mapped_is_looked_up_as_ipv4_and_6to4_alias_is_not_followed() {
    let db = geoip2();
    assert_eq!(
        db.lookup(ip("::ffff:1.2.4.8")).expect("lookup"),
        Some((net("1.2.0.0/15"), rec("CN", "AS")))
    );
    // mmdb-writer aliases 6to4 and Teredo into the IPv4 tree, as MaxMind does; the walk
    // does not report them, so neither does a lookup.
    assert_eq!(db.lookup(ip("2002:102:408::1")).expect("lookup"), None);
    assert_eq!(db.lookup(ip("2001:0:102:408::1")).expect("lookup"), None);
    // IPv4-compatible addresses reach the IPv4 tree too, whose networks are IPv4 only.
    assert_eq!(db.lookup(ip("::1.2.4.8")).expect("lookup"), None);
}

#[test]
fn registered_country_stands_in_for_a_missing_country() {
    let record = Value::map([
        ("continent", Value::map([("code", Value::from("AS"))])),
        (
            "registered_country",
            Value::map([("iso_code", Value::from("cn"))]),
        ),
    ]);
    let db = db(fixtures::mmdb_bytes(
        "GeoIP2-City",
        IpVersion::V6,
        &[("1.2.4.0/24", record)],
    ));
    assert_eq!(
        db.lookup(ip("1.2.4.8")).expect("lookup"),
        Some((net("1.2.4.0/24"), rec("CN", "AS")))
    );
}

#[test]
fn networks_are_ipv4_then_ipv6_in_address_order_without_aliases() {
    let db = geoip2();
    let nets = db.networks().expect("walk");
    assert_eq!(nets.len(), db.network_count());
    let shown: Vec<String> = nets.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        shown,
        [
            "1.0.0.0/15",
            "1.2.0.0/15",
            "1.4.0.0/14",
            "1.8.0.0/13",
            "1.16.0.0/12",
            "1.32.0.0/11",
            "1.64.0.0/10",
            "1.128.0.0/9",
            "8.8.8.0/24",
            "81.2.69.0/24",
            "2001:db8::/32",
            "2400:da00::/32",
        ]
    );
    assert_eq!(nets[1].1, rec("CN", "AS"));
    assert_eq!(nets[0].1, rec("AU", "OC"));
}

#[test]
fn ip_location_db_layout_derives_the_continent() {
    let db = db(fixtures::ip_location_db_bytes(
        &[
            ("1.2.0.0/15", "CN"),
            ("8.8.8.0/24", "US"),
            ("2400:da00::/32", "CN"),
            ("2a00:1450::/32", "IE"),
        ],
        IpVersion::V6,
    ));
    assert_eq!(db.layout(), Layout::IpLocationDb);
    assert_eq!(db.database_type(), "country ipvAll");
    assert_eq!(db.ip_version(), 6);
    assert_eq!(db.network_counts(), (2, 2));
    assert_eq!(
        db.lookup(ip("1.2.4.8")).expect("lookup"),
        Some((net("1.2.0.0/15"), rec("CN", "AS")))
    );
    assert_eq!(
        db.lookup(ip("2a00:1450::1")).expect("lookup"),
        Some((net("2a00:1450::/32"), rec("IE", "EU")))
    );
}

#[test]
fn ipv4_only_database_has_no_ipv6_data() {
    let db = db(fixtures::ip_location_db_bytes(
        &[("1.2.0.0/15", "CN"), ("8.8.8.0/24", "US")],
        IpVersion::V4,
    ));
    assert_eq!(db.layout(), Layout::IpLocationDb);
    assert_eq!(db.database_type(), "country ipv4");
    assert_eq!(db.ip_version(), 4);
    assert_eq!(db.network_counts(), (2, 0));
    assert_eq!(db.lookup(ip("2400:da00::1")).expect("lookup"), None);
    assert_eq!(
        db.lookup(ip("::ffff:8.8.8.8")).expect("lookup"),
        Some((net("8.8.8.0/24"), rec("US", "NA")))
    );
    let nets = db.networks().expect("walk");
    assert_eq!(
        nets,
        vec![
            (net("1.2.0.0/15"), rec("CN", "AS")),
            (net("8.8.8.0/24"), rec("US", "NA"))
        ]
    );
}

#[test]
fn open_reads_the_file_and_names_it_in_errors() {
    let dir = scratch("open");
    let good = dir.join("good.mmdb");
    fixtures::write_ip_location_db(&good, &[("1.2.0.0/15", "CN")]);
    let db = GeoDb::open(&good, Auto).expect("opens");
    assert_eq!(db.path(), good);
    assert_eq!(
        db.size_bytes() as u64,
        std::fs::metadata(&good).expect("stat").len()
    );

    let check = |path: &Path, bytes: Option<&[u8]>, want: &str| {
        if let Some(b) = bytes {
            std::fs::write(path, b).expect("write");
        }
        let e = GeoDb::open(path, Auto).expect_err("must fail");
        let text = e.to_string();
        assert_eq!(e.path(), path);
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains(want), "{text}");
    };
    check(&dir.join("missing.mmdb"), None, "cannot read");
    check(&dir.join("empty.mmdb"), Some(b""), "is empty");
    let full = std::fs::read(&good).expect("read");
    check(
        &dir.join("truncated.mmdb"),
        Some(&full[..full.len() / 2]),
        "not a valid MaxMind DB",
    );
    // Cut inside the metadata: the marker survives but the map does not.
    check(
        &dir.join("short.mmdb"),
        Some(&full[..full.len() - 20]),
        "not a valid MaxMind DB",
    );
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    check(
        &dir.join("garbage.mmdb"),
        Some(&garbage),
        "not a valid MaxMind DB",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_database_type_asks_for_a_layout() {
    let bytes = fixtures::mmdb_bytes(
        "GeoLite2-ASN",
        IpVersion::V6,
        &[(
            "1.2.4.0/24",
            Value::map([("autonomous_system_number", Value::from(24_151_u32))]),
        )],
    );
    let e = GeoDb::from_bytes(Path::new("asn.mmdb"), bytes, Auto).expect_err("unknown");
    assert!(matches!(e, GeoIpError::UnknownLayout { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("asn.mmdb: database_type `GeoLite2-ASN`"),
        "{text}"
    );
    assert!(text.contains("set `layout`"), "{text}");
}

#[test]
fn explicit_layout_overrides_and_a_wrong_one_is_caught() {
    let bytes = fixtures::ip_location_db_bytes(&[("1.2.0.0/15", "CN")], IpVersion::V6);
    let forced = GeoDb::from_bytes(
        Path::new("x.mmdb"),
        bytes.clone(),
        GeoIpLayoutChoice::IpLocationDb,
    )
    .expect("right layout");
    assert_eq!(forced.layout(), Layout::IpLocationDb);
    let e = GeoDb::from_bytes(Path::new("x.mmdb"), bytes, GeoIpLayoutChoice::Geoip2)
        .expect_err("wrong layout");
    assert!(
        e.to_string()
            .contains("has a country under the geoip2 layout"),
        "{e}"
    );
}

#[test]
fn empty_database_is_rejected() {
    let bytes = fixtures::mmdb_bytes("GeoIP2-Country", IpVersion::V6, &[]);
    let e = GeoDb::from_bytes(Path::new("none.mmdb"), bytes, Auto).expect_err("no data");
    assert!(e.to_string().contains("holds no networks"), "{e}");
}

#[test]
fn odd_country_codes_are_absent_not_fatal() {
    assert_eq!(code("cn"), Some(*b"CN"));
    assert_eq!(code("CHN"), None);
    assert_eq!(code(""), None);
    assert_eq!(code("C1"), None);
}

/// The database the repository ships (ip-location-db's geo-whois-asn-country).
#[test]
fn shipped_database() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/geo-whois-asn-country.mmdb");
    let db = GeoDb::open(&path, Auto).expect("the shipped database opens");
    assert_eq!(db.layout(), Layout::IpLocationDb);
    assert_eq!(db.database_type(), "country ipvAll");
    assert_eq!(db.ip_version(), 6);
    let country = |a: &str| {
        db.lookup(ip(a))
            .expect("lookup")
            .and_then(|(_, r)| r.country_str().map(str::to_owned))
    };
    assert_eq!(country("1.2.4.8").as_deref(), Some("CN"));
    assert_eq!(country("8.8.8.8").as_deref(), Some("US"));
    assert_eq!(country("2400:da00::1").as_deref(), Some("CN"));
    assert_eq!(country("::ffff:1.2.4.8").as_deref(), Some("CN"));
    let (v4, v6) = db.network_counts();
    assert!(v4 > 100_000 && v6 > 50_000, "{v4} {v6}");
}
