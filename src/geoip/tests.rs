use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use mmdb_writer::{IpVersion, Value};

use super::Layout;
use super::fixtures::{self, BUILD_EPOCH};
use super::*;

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
        ..GeoRecord::default()
    }
}

fn db(bytes: Vec<u8>) -> GeoDb {
    GeoDb::from_bytes(Path::new("test.mmdb"), bytes, None).expect("valid fixture")
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
        "DBIP-Country-Lite",
        "DBIP-Country",
    ] {
        assert_eq!(Layout::recognise(t), Some(Layout::Geoip2), "{t}");
    }
    for t in [
        "GeoIP2-City",
        "GeoLite2-City",
        "GeoIP2-Enterprise",
        "DBIP-City-Lite",
        "DBIP-Location-ISP (compat=Enterprise)",
    ] {
        assert_eq!(Layout::recognise(t), Some(Layout::Geoip2City), "{t}");
    }
    for t in ["GeoLite2-ASN", "GeoIP2-ISP", "DBIP-ASN-Lite", "DBIP-ISP"] {
        assert_eq!(Layout::recognise(t), Some(Layout::Geoip2Asn), "{t}");
    }
    for t in ["ipinfo lite.mmdb", "IPinfo Lite"] {
        assert_eq!(Layout::recognise(t), Some(Layout::IpinfoLite), "{t}");
    }
    for t in [
        "country ipvAll",
        "country ipv4",
        "country ipv6",
        "city ipv4",
    ] {
        assert_eq!(Layout::recognise(t), Some(Layout::IpLocationDb), "{t}");
    }
    for t in ["asn ipv4", "asn ipvAll"] {
        assert_eq!(Layout::recognise(t), Some(Layout::IpLocationDbAsn), "{t}");
    }
    for t in [
        "GeoIP2-Anonymous-IP",
        "ipinfo country_asn.mmdb",
        "My-DB",
        "",
    ] {
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
    let db = GeoDb::open(&good, None).expect("opens");
    assert_eq!(db.path(), good);
    assert_eq!(
        db.size_bytes() as u64,
        std::fs::metadata(&good).expect("stat").len()
    );

    let check = |path: &Path, bytes: Option<&[u8]>, want: &str| {
        if let Some(b) = bytes {
            std::fs::write(path, b).expect("write");
        }
        let e = GeoDb::open(path, None).expect_err("must fail");
        let text = e.to_string();
        assert_eq!(e.path(), Some(path));
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
        "Acme-Netblocks",
        IpVersion::V6,
        &[("1.2.4.0/24", Value::map([("cc", Value::from("CN"))]))],
    );
    let e = GeoDb::from_bytes(Path::new("acme.mmdb"), bytes, None).expect_err("unknown");
    assert!(matches!(e, GeoIpError::UnknownLayout { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("acme.mmdb: database_type `Acme-Netblocks`"),
        "{text}"
    );
    assert!(text.contains("set `layout` or field paths"), "{text}");
}

#[test]
fn explicit_layout_overrides_and_a_wrong_one_is_caught() {
    let bytes = fixtures::ip_location_db_bytes(&[("1.2.0.0/15", "CN")], IpVersion::V6);
    let forced = GeoDb::from_bytes(
        Path::new("x.mmdb"),
        bytes.clone(),
        Some(Layout::IpLocationDb),
    )
    .expect("right layout");
    assert_eq!(forced.layout(), Layout::IpLocationDb);
    let e = GeoDb::from_bytes(Path::new("x.mmdb"), bytes, Some(Layout::Geoip2))
        .expect_err("wrong layout");
    assert!(
        e.to_string()
            .contains("has a country or continent under the geoip2 layout"),
        "{e}"
    );
}

#[test]
fn empty_database_is_rejected() {
    let bytes = fixtures::mmdb_bytes("GeoIP2-Country", IpVersion::V6, &[]);
    let e = GeoDb::from_bytes(Path::new("none.mmdb"), bytes, None).expect_err("no data");
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
    let db = GeoDb::open(&path, None).expect("the shipped database opens");
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

fn sub(s: &str) -> Subdivision {
    Subdivision::parse(s).expect("subdivision")
}

fn record_of(db: &GeoDb, addr: &str) -> GeoRecord {
    db.lookup(ip(addr)).expect("lookup").expect("data").1
}

#[test]
fn subdivision_codes() {
    assert_eq!(sub("CN-GD").as_str(), "CN-GD");
    assert_eq!(sub("gb-eng").as_str(), "GB-ENG");
    assert_eq!(
        Subdivision::new(*b"US", "06").map(|s| s.to_string()),
        Some("US-06".into())
    );
    assert_eq!(Subdivision::parse("CN-"), None);
    assert_eq!(Subdivision::parse("CN-ABCD"), None);
    assert_eq!(Subdivision::parse("CHN-GD"), None);
    assert_eq!(Subdivision::parse("GD"), None);
}

#[test]
fn geoip2_city_layout_reads_subdivisions() {
    for t in ["GeoIP2-City", "GeoLite2-City"] {
        let db = db(fixtures::geoip2_city_bytes(
            t,
            &[
                ("1.2.0.0/16", "CN", "AS", &["GD"]),
                ("81.2.69.0/24", "GB", "EU", &["ENG", "WBK"]),
                ("8.8.8.0/24", "US", "NA", &[]),
            ],
        ));
        assert_eq!(db.layout(), Layout::Geoip2City, "{t}");
        assert_eq!(
            db.provides(),
            FieldSet::default()
                .with(Field::Country)
                .with(Field::Continent)
                .with(Field::Subdivision)
        );
        let r = record_of(&db, "1.2.3.4");
        assert_eq!(r.country_str(), Some("CN"));
        assert_eq!(r.subdivisions, [Some(sub("CN-GD")), None]);
        let r = record_of(&db, "81.2.69.1");
        assert_eq!(r.subdivisions, [Some(sub("GB-ENG")), Some(sub("GB-WBK"))]);
        assert_eq!(
            r.to_string(),
            "country GB, continent EU, subdivisions GB-ENG GB-WBK"
        );
        assert_eq!(record_of(&db, "8.8.8.8").subdivisions, [None, None]);
    }
}

#[test]
fn dbip_lite_layouts() {
    let country = db(fixtures::mmdb_bytes(
        "DBIP-Country-Lite",
        IpVersion::V6,
        &[("1.2.0.0/16", fixtures::geoip2_record("CN", "AS"))],
    ));
    assert_eq!(country.layout(), Layout::Geoip2);
    assert_eq!(record_of(&country, "1.2.3.4"), rec("CN", "AS"));

    let city = db(fixtures::geoip2_city_bytes(
        "DBIP-City-Lite",
        &[("1.2.0.0/16", "CN", "AS", &["GD"])],
    ));
    assert_eq!(city.layout(), Layout::Geoip2City);
    assert_eq!(
        record_of(&city, "1.2.3.4").subdivisions[0],
        Some(sub("CN-GD"))
    );

    let asn = db(fixtures::asn_bytes(
        "DBIP-ASN-Lite",
        &[("1.2.0.0/16", 4134, "CHINANET")],
    ));
    assert_eq!(asn.layout(), Layout::Geoip2Asn);
    assert_eq!(record_of(&asn, "1.2.3.4").asn, Some(4134));
}

#[test]
fn asn_layouts_read_the_number() {
    for (t, layout) in [
        ("GeoLite2-ASN", Layout::Geoip2Asn),
        ("asn ipvAll", Layout::IpLocationDbAsn),
    ] {
        let db = db(fixtures::asn_bytes(
            t,
            &[
                ("1.2.0.0/16", 4134, "CHINANET"),
                ("2400:da00::/32", 4837, "CHINA UNICOM"),
            ],
        ));
        assert_eq!(db.layout(), layout, "{t}");
        assert_eq!(db.provides(), FieldSet::default().with(Field::Asn), "{t}");
        let r = record_of(&db, "1.2.3.4");
        assert_eq!((r.asn, r.country), (Some(4134), None), "{t}");
        assert_eq!(record_of(&db, "2400:da00::1").asn, Some(4837), "{t}");
        assert_eq!(r.to_string(), "asn AS4134");
    }
}

#[test]
fn ipinfo_lite_layout_reads_as_prefixed_asn() {
    let db = db(fixtures::ipinfo_lite_bytes(&[
        ("1.2.0.0/16", "CN", "AS", "AS4134"),
        ("8.8.8.0/24", "US", "NA", "AS15169"),
        ("9.9.9.0/24", "CH", "EU", ""),
    ]));
    assert_eq!(db.layout(), Layout::IpinfoLite);
    let r = record_of(&db, "1.2.3.4");
    assert_eq!(
        (r.country_str(), r.continent_str(), r.asn),
        (Some("CN"), Some("AS"), Some(4134))
    );
    assert_eq!(record_of(&db, "8.8.8.8").asn, Some(15169));
    assert_eq!(record_of(&db, "9.9.9.9").asn, None);
    assert_eq!(
        db.provides(),
        FieldSet::default()
            .with(Field::Country)
            .with(Field::Continent)
            .with(Field::Asn)
    );
}

#[test]
fn field_paths_override_the_layout() {
    let bytes = fixtures::mmdb_bytes(
        "Acme-Netblocks",
        IpVersion::V6,
        &[(
            "1.2.0.0/16",
            Value::map([
                ("geo", Value::map([("cc", Value::from("CN"))])),
                ("regions", Value::Array(vec![Value::from("CN-GD")])),
                (
                    "origin",
                    Value::Array(vec![Value::from(4134_u32), Value::from(4812_u32)]),
                ),
            ]),
        )],
    );
    let overrides = FieldOverrides {
        country: Some(FieldPath::parse("geo.cc").expect("path")),
        subdivision: Some(FieldPath::parse("regions[]").expect("path")),
        asn: Some(FieldPath::parse("origin.1").expect("path")),
        ..FieldOverrides::default()
    };
    let db = GeoDb::from_bytes_with(Path::new("acme.mmdb"), bytes, None, &overrides)
        .expect("readable through field paths");
    assert_eq!(db.layout(), Layout::Custom);
    let r = record_of(&db, "1.2.3.4");
    assert_eq!(r.country_str(), Some("CN"));
    // The continent is derived from the country when no path gives it.
    assert_eq!(r.continent_str(), Some("AS"));
    assert_eq!(r.subdivisions[0], Some(sub("CN-GD")));
    assert_eq!(r.asn, Some(4812));
    assert_eq!(
        db.record_reader().to_string(),
        "custom with configured field paths"
    );

    // An override of one field keeps the layout's other paths.
    let city = fixtures::geoip2_city_bytes("GeoIP2-City", &[("1.2.0.0/16", "CN", "AS", &["GD"])]);
    let overrides = FieldOverrides {
        country: Some(FieldPath::parse("registered_country.iso_code").expect("path")),
        ..FieldOverrides::default()
    };
    let db = GeoDb::from_bytes_with(Path::new("c.mmdb"), city, None, &overrides).expect("opens");
    assert_eq!(db.layout(), Layout::Geoip2City);
    assert_eq!(
        record_of(&db, "1.2.3.4").subdivisions[0],
        Some(sub("CN-GD"))
    );
}

#[test]
fn field_path_syntax() {
    assert!(FieldPath::parse("country.iso_code").is_ok());
    assert!(FieldPath::parse("subdivisions[].iso_code").is_ok());
    assert!(FieldPath::parse("a.0.b").is_ok());
    for bad in ["", "a..b", "a.b.", "a[].b[]", "a b", "[]"] {
        assert!(FieldPath::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_path_through_a_string_is_a_database_error() {
    let bytes = fixtures::ip_location_db_bytes(&[("1.2.0.0/15", "CN")], IpVersion::V6);
    let overrides = FieldOverrides {
        country: Some(FieldPath::parse("country_code.iso_code").expect("path")),
        ..FieldOverrides::default()
    };
    let e = GeoDb::from_bytes_with(Path::new("x.mmdb"), bytes, None, &overrides)
        .expect_err("wrong path");
    assert!(e.to_string().starts_with("x.mmdb: "), "{e}");
}

#[test]
fn a_summary_keeps_what_the_check_learnt_and_reads_its_file_again_for_records() {
    let path = scratch("summary").join("country.mmdb");
    fixtures::write_geoip2_country(
        &path,
        &[("1.2.0.0/15", "CN", "AS"), ("8.8.8.0/24", "US", "NA")],
    );
    let full = GeoDb::open(&path, None).expect("opens");
    let summary = full.summary();
    assert!(full.holds_contents());
    assert!(!summary.holds_contents());
    assert_eq!(summary.database_type(), full.database_type());
    assert_eq!(summary.build_epoch(), BUILD_EPOCH);
    assert_eq!(summary.ip_version(), full.ip_version());
    assert_eq!(summary.network_counts(), full.network_counts());
    assert_eq!(summary.provides(), full.provides());
    assert_eq!(summary.size_bytes(), full.size_bytes());
    // No walk over a summary: compiling takes its contents first.
    assert!(summary.iter().is_err());
    assert_eq!(
        summary.lookup(ip("1.2.4.8")).expect("read again"),
        Some((net("1.2.0.0/15"), rec("CN", "AS")))
    );
    let contents = summary.contents().expect("the same file");
    assert!(matches!(contents, Contents::Read(_)));
    assert_eq!(contents.networks().expect("walk").len(), 2);
    assert!(matches!(full.contents(), Ok(Contents::Held(_))));

    // The file replaced: the summary no longer describes it, and says so.
    fixtures::write_geoip2_country(&path, &[("1.2.0.0/15", "JP", "AS")]);
    let e = summary.lookup(ip("1.2.4.8")).expect_err("another file");
    assert!(
        e.to_string().contains("has changed since it was loaded"),
        "{e}"
    );
    // Compiling again takes the file as it is now.
    let now = summary.current_contents().expect("reads");
    assert_eq!(
        now.lookup(ip("1.2.4.8")).expect("lookup"),
        Some((net("1.2.0.0/15"), rec("JP", "AS")))
    );
    std::fs::remove_file(&path).expect("remove");
    assert!(matches!(
        summary.lookup(ip("1.2.4.8")),
        Err(GeoIpError::Read { .. })
    ));
}
