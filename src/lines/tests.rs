use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use mmdb_writer::IpVersion;

use super::compile::{MAPPED_END, MAPPED_START};
use super::*;
use crate::config::Config;
use crate::geoip::{GeoDb, Subdivision, fixtures};

const CHINA: LineId = LineId::new(0).expect("a line id");
const CORP: LineId = LineId::new(1).expect("a line id");
const DEFAULT: LineId = LineId::new(2).expect("a line id");

fn line(index: usize) -> LineId {
    LineId::new(index).expect("a line id")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn db(bytes: Vec<u8>) -> GeoDb {
    GeoDb::from_bytes(Path::new("test.mmdb"), bytes, None).expect("valid fixture")
}

fn geoip2(entries: &[(&str, &str, &str)]) -> GeoDb {
    db(fixtures::geoip2_country_bytes(entries))
}

fn rule(line: LineId, countries: &[&str], continents: &[&str], cidrs: &[&str]) -> LineRule {
    let two = |s: &&str| {
        let b = s.as_bytes();
        [b[0], b[1]]
    };
    LineRule {
        line,
        countries: countries.iter().map(two).collect(),
        continents: continents.iter().map(two).collect(),
        subdivisions: Vec::new(),
        asns: Vec::new(),
        cidrs: cidrs.iter().map(|c| c.parse().expect("cidr")).collect(),
    }
}

fn china() -> LineRule {
    rule(CHINA, &["CN"], &[], &[])
}

fn compile(rules: &[LineRule], dbs: &[&GeoDb]) -> LineMap {
    let map = LineMap::compile(rules, DEFAULT, dbs).expect("compiles");
    check_invariants(&map);
    map
}

fn class(map: &LineMap, addr: &str) -> (LineId, u8) {
    let c = map.classify(ip(addr));
    (c.line, c.scope)
}

/// The map covers each space from its first address, is sorted, and keeps no two
/// adjacent ranges of one line (except around the IPv4-mapped block).
fn check_invariants(map: &LineMap) {
    assert_eq!(map.v4.starts.first(), Some(&0));
    assert_eq!(map.v6.starts.first(), Some(&0));
    assert!(map.v4.starts.windows(2).all(|w| w[0] < w[1]));
    assert!(map.v6.starts.windows(2).all(|w| w[0] < w[1]));
    for (i, w) in map.v4.lines.windows(2).enumerate() {
        assert_ne!(w[0], w[1], "v4 ranges {i} and {} not merged", i + 1);
    }
    for (i, w) in map.v6.lines.windows(2).enumerate() {
        let at = map.v6.starts[i + 1];
        if at != MAPPED_START && at != MAPPED_END + 1 {
            assert_ne!(w[0], w[1], "v6 ranges {i} and {} not merged", i + 1);
        }
    }
}

/// Every address of the scope prefix is in the line (its ends are in the same range),
/// and the prefix one bit wider is not (it reaches past the range).
fn check_scope(map: &LineMap, addr: IpAddr) {
    if let IpAddr::V6(a) = addr
        && let Some(a4) = a.to_ipv4_mapped()
    {
        let (c, c4) = (map.classify(addr), map.classify(IpAddr::V4(a4)));
        assert_eq!((c.line, c.scope), (c4.line, c4.scope + 96), "{addr}");
        return check_scope(map, IpAddr::V4(a4));
    }
    let c = map.classify(addr);
    let net = IpNet::new(addr, c.scope).expect("prefix").trunc();
    let first = map.classify(net.network());
    let last = map.classify(net.broadcast());
    assert_eq!((first.line, last.line), (c.line, c.line), "{addr} in {net}");
    let (range_lo, range_hi) = match addr {
        IpAddr::V4(a) => {
            let i = map.v4.starts.partition_point(|&s| s <= u32::from(a)) - 1;
            let (lo, hi, _) = map.v4.iter().nth(i).expect("range");
            (u128::from(lo), u128::from(hi))
        }
        IpAddr::V6(a) => {
            let i = map.v6.starts.partition_point(|&s| s <= u128::from(a)) - 1;
            let (lo, hi, _) = map.v6.iter().nth(i).expect("range");
            (lo, hi)
        }
    };
    let as_int = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    assert!(as_int(net.network()) >= range_lo && as_int(net.broadcast()) <= range_hi);
    if c.scope > 0 {
        let wider = IpNet::new(addr, c.scope - 1).expect("prefix").trunc();
        assert!(
            as_int(wider.network()) < range_lo || as_int(wider.broadcast()) > range_hi,
            "{addr}: {wider} also fits in its range"
        );
    }
}

#[test]
fn scope_is_the_widest_prefix_of_the_line() {
    let db = geoip2(&[("1.0.0.0/8", "AU", "OC"), ("1.2.0.0/15", "CN", "AS")]);
    let map = compile(&[china()], &[&db]);
    assert_eq!(class(&map, "1.2.4.0"), (CHINA, 15));
    assert_eq!(class(&map, "1.3.255.255"), (CHINA, 15));
    assert_eq!(class(&map, "1.4.0.0"), (DEFAULT, 14));
    assert_eq!(class(&map, "1.1.0.0"), (DEFAULT, 15));
    assert_eq!(class(&map, "9.9.9.9"), (DEFAULT, 5));
    assert_eq!(map.range_count().0, 3);
}

#[test]
fn adjacent_networks_of_one_line_merge() {
    let db = geoip2(&[
        ("1.0.0.0/8", "AU", "OC"),
        ("1.2.0.0/16", "CN", "AS"),
        ("1.3.0.0/16", "CN", "AS"),
    ]);
    let nets: Vec<String> = db
        .networks()
        .expect("walk")
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(nets.contains(&"1.2.0.0/16".to_string()), "{nets:?}");
    assert!(nets.contains(&"1.3.0.0/16".to_string()), "{nets:?}");
    let map = compile(&[china()], &[&db]);
    assert_eq!(class(&map, "1.2.4.0"), (CHINA, 15));
    assert_eq!(class(&map, "1.3.4.0"), (CHINA, 15));
}

#[test]
fn default_range_exactly_a_slash_8_has_scope_8() {
    let db = geoip2(&[("7.0.0.0/8", "CN", "AS"), ("9.0.0.0/8", "CN", "AS")]);
    let map = compile(&[china()], &[&db]);
    assert_eq!(class(&map, "8.8.8.8"), (DEFAULT, 8));
    assert_eq!(class(&map, "8.0.0.0"), (DEFAULT, 8));
    assert_eq!(class(&map, "8.255.255.255"), (DEFAULT, 8));
    assert_eq!(class(&map, "7.1.2.3"), (CHINA, 8));
}

#[test]
fn boundary_inside_a_slash_24_gives_a_longer_scope() {
    let db = geoip2(&[("10.0.0.0/24", "CN", "AS"), ("10.0.0.64/26", "US", "NA")]);
    let map = compile(&[china()], &[&db]);
    assert_eq!(class(&map, "10.0.0.1"), (CHINA, 26));
    assert_eq!(class(&map, "10.0.0.65"), (DEFAULT, 26));
    assert_eq!(class(&map, "10.0.0.200"), (CHINA, 25));
    // A CIDR boundary in the middle of a network splits it the same way.
    let map = compile(&[rule(CORP, &[], &[], &["10.0.0.128/27"]), china()], &[&db]);
    assert_eq!(class(&map, "10.0.0.130"), (CORP, 27));
    assert_eq!(class(&map, "10.0.0.170"), (CHINA, 27));
    assert_eq!(class(&map, "10.0.0.200"), (CHINA, 26));
}

#[test]
fn cidr_rule_before_country_rule_wins_inside_its_cidrs() {
    let db = geoip2(&[("1.2.0.0/15", "CN", "AS")]);
    let map = compile(&[rule(CORP, &[], &[], &["1.2.3.0/24"]), china()], &[&db]);
    assert_eq!(class(&map, "1.2.3.4"), (CORP, 24));
    assert_eq!(class(&map, "1.2.4.4"), (CHINA, 22));
    assert_eq!(class(&map, "1.2.2.4"), (CHINA, 24));
}

#[test]
fn country_rule_before_cidr_rule_wins_inside_the_cidrs() {
    let db = geoip2(&[("1.2.0.0/15", "CN", "AS")]);
    let map = compile(
        &[china(), rule(CORP, &[], &[], &["1.2.3.0/24", "9.9.9.0/24"])],
        &[&db],
    );
    assert_eq!(class(&map, "1.2.3.4"), (CHINA, 15));
    assert_eq!(class(&map, "9.9.9.9"), (CORP, 24));
}

#[test]
fn one_rule_matches_by_country_or_cidr() {
    let db = geoip2(&[("1.2.0.0/15", "CN", "AS")]);
    let map = compile(
        &[rule(CHINA, &["CN"], &[], &["1.4.0.0/15", "1.4.0.0/16"])],
        &[&db],
    );
    // 1.2.0.0/15 by country and 1.4.0.0/15 by CIDR are contiguous: one range, though
    // no prefix wider than /15 fits in it.
    assert_eq!(class(&map, "1.3.0.0"), (CHINA, 15));
    assert_eq!(class(&map, "1.5.0.0"), (CHINA, 15));
    assert_eq!(map.range_count().0, 3);
}

#[test]
fn continent_rules_match_on_both_layouts() {
    let asia = rule(CHINA, &[], &["AS"], &[]);
    let europe = rule(CORP, &[], &["EU"], &[]);
    let g = geoip2(&[
        ("1.2.0.0/15", "CN", "AS"),
        ("81.2.69.0/24", "GB", "EU"),
        ("2.0.0.0/8", "", "EU"),
    ]);
    let map = compile(&[asia.clone(), europe.clone()], &[&g]);
    assert_eq!(class(&map, "1.2.4.8").0, CHINA);
    assert_eq!(class(&map, "81.2.69.1").0, CORP);
    assert_eq!(class(&map, "2.2.2.2").0, CORP);
    assert_eq!(class(&map, "8.8.8.8").0, DEFAULT);

    let l = db(fixtures::ip_location_db_bytes(
        &[
            ("1.2.0.0/15", "CN"),
            ("81.2.69.0/24", "GB"),
            ("8.8.8.0/24", "US"),
        ],
        IpVersion::V4,
    ));
    let map = compile(&[asia, europe], &[&l]);
    assert_eq!(class(&map, "1.2.4.8").0, CHINA);
    assert_eq!(class(&map, "81.2.69.1").0, CORP);
    assert_eq!(class(&map, "8.8.8.8").0, DEFAULT);
}

#[test]
fn ipv6_networks_and_cidrs() {
    let db = geoip2(&[
        ("1.2.0.0/15", "CN", "AS"),
        ("2400:da00::/32", "CN", "AS"),
        ("240e::/20", "CN", "AS"),
    ]);
    let map = compile(&[rule(CORP, &[], &[], &["2001:db8::/32"]), china()], &[&db]);
    assert_eq!(class(&map, "2400:da00::1"), (CHINA, 32));
    assert_eq!(class(&map, "240e:1::1"), (CHINA, 20));
    assert_eq!(class(&map, "2001:db8::1"), (CORP, 32));
    assert_eq!(class(&map, "2a00::1"), (DEFAULT, 5));
    // IPv4 data does not leak into the IPv6 map.
    assert_eq!(class(&map, "::102:408").0, DEFAULT);
    assert_eq!(class(&map, "::1.2.4.8").0, DEFAULT);
}

#[test]
fn ipv4_mapped_addresses_use_the_ipv4_map() {
    let db = geoip2(&[("1.0.0.0/8", "AU", "OC"), ("1.2.0.0/15", "CN", "AS")]);
    let map = compile(&[china()], &[&db]);
    assert_eq!(class(&map, "::ffff:1.2.4.0"), (CHINA, 111));
    assert_eq!(class(&map, "::ffff:8.8.8.8"), (DEFAULT, 96 + 5));
    // An IPv4-mapped CIDR is an IPv4 CIDR; a wider IPv6 one is not.
    let map = compile(
        &[
            rule(CORP, &[], &[], &["::ffff:9.9.9.0/120", "::/0"]),
            china(),
        ],
        &[&db],
    );
    assert_eq!(class(&map, "9.9.9.9"), (CORP, 24));
    assert_eq!(class(&map, "::ffff:9.9.9.9"), (CORP, 120));
    assert_eq!(class(&map, "8.8.8.8").0, DEFAULT);
    assert_eq!(class(&map, "1.2.4.8").0, CHINA);
    assert_eq!(class(&map, "2a00::1").0, CORP);
}

#[test]
fn whole_space_edges() {
    let db = geoip2(&[
        ("0.0.0.0/8", "CN", "AS"),
        ("255.0.0.0/8", "CN", "AS"),
        ("ff00::/8", "CN", "AS"),
    ]);
    let map = compile(&[china()], &[&db]);
    assert_eq!(class(&map, "0.0.0.0"), (CHINA, 8));
    assert_eq!(class(&map, "255.255.255.255"), (CHINA, 8));
    assert_eq!(class(&map, "128.0.0.0"), (DEFAULT, 2));
    assert_eq!(class(&map, "127.0.0.0"), (DEFAULT, 2));
    assert_eq!(
        class(&map, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        (CHINA, 8)
    );
    // :: is cut off from the IPv4-mapped block at ::ffff:0:0.
    assert_eq!(class(&map, "::"), (DEFAULT, 81));
    assert_eq!(class(&map, "::ffff:0.0.0.0"), (CHINA, 104));
    assert_eq!(class(&map, "::ffff:255.255.255.255"), (CHINA, 104));

    // Nothing matches anywhere: one IPv4 range, scope 0.
    let empty = compile(&[rule(CORP, &[], &[], &["192.0.2.0/24"])], &[]);
    assert_eq!(class(&empty, "8.8.8.8"), (DEFAULT, 1));
    let none = compile(&[], &[&db]);
    assert_eq!(none.range_count(), (1, 3));
    assert_eq!(class(&none, "0.0.0.0"), (DEFAULT, 0));
    assert_eq!(class(&none, "255.255.255.255"), (DEFAULT, 0));
    // The IPv4-mapped block stays a range of its own, so ::/1 and ::/2 are not in one.
    assert_eq!(class(&none, "2400::1"), (DEFAULT, 3));
    assert_eq!(class(&none, "8000::1"), (DEFAULT, 1));
    // A CIDR that reaches the last address.
    let top = compile(
        &[rule(CORP, &[], &[], &["255.255.255.0/24", "ffff::/16"])],
        &[],
    );
    assert_eq!(class(&top, "255.255.255.255"), (CORP, 24));
    assert_eq!(
        class(&top, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        (CORP, 16)
    );
    assert_eq!(class(&top, "255.255.254.255"), (DEFAULT, 24));
}

#[test]
fn several_databases_fill_each_field_from_the_first_that_has_it() {
    let countries = geoip2(&[("1.2.0.0/16", "CN", "")]);
    let continents = geoip2(&[("1.0.0.0/8", "AU", "OC"), ("1.2.0.0/15", "", "AS")]);
    let asia = rule(CHINA, &[], &["AS"], &[]);
    let australia = rule(CORP, &["AU"], &[], &[]);
    let map = compile(&[asia, australia], &[&countries, &continents]);
    // Country CN from the first database, continent AS from the second.
    assert_eq!(class(&map, "1.2.0.1").0, CHINA);
    assert_eq!(class(&map, "1.3.0.1").0, CHINA);
    // Country AU from the second database, where the first has nothing.
    assert_eq!(class(&map, "1.4.0.1").0, CORP);
    let only_au = compile(&[rule(CORP, &["AU"], &[], &[])], &[&countries, &continents]);
    assert_eq!(class(&only_au, "1.2.0.1").0, DEFAULT);
    assert_eq!(class(&only_au, "1.3.0.1").0, DEFAULT);
    assert_eq!(class(&only_au, "1.1.0.1").0, CORP);
}

#[test]
fn nested_and_overlapping_cidrs_of_several_rules() {
    let map = compile(
        &[
            rule(CHINA, &[], &[], &["10.1.0.0/16", "10.1.2.0/24"]),
            rule(CORP, &[], &[], &["10.0.0.0/8", "10.1.0.0/16"]),
        ],
        &[],
    );
    assert_eq!(class(&map, "10.1.2.3"), (CHINA, 16));
    assert_eq!(class(&map, "10.1.200.3"), (CHINA, 16));
    assert_eq!(class(&map, "10.2.0.0"), (CORP, 15));
    assert_eq!(class(&map, "10.0.0.0"), (CORP, 16));
    assert_eq!(class(&map, "11.0.0.0"), (DEFAULT, 8));
}

/// A deterministic stream of addresses for property checks.
fn addresses(n: usize, seed: u64) -> impl Iterator<Item = IpAddr> {
    let mut x = seed;
    (0..n).map(move |i| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = u128::from(x) << 64 | u128::from(x.rotate_left(29));
        match i % 3 {
            0 => IpAddr::V4(Ipv4Addr::from((x >> 32) as u32)),
            // Mostly inside 2400::/12 so the fixture's networks are hit.
            1 => IpAddr::V6(Ipv6Addr::from((0x240u128 << 116) | (r >> 12))),
            _ => IpAddr::V6(Ipv6Addr::from(r)),
        }
    })
}

fn mixed_classifier() -> Classifier {
    let g = geoip2(&[
        ("1.0.0.0/8", "AU", "OC"),
        ("1.2.0.0/15", "CN", "AS"),
        ("36.0.0.0/10", "CN", "AS"),
        ("36.64.0.0/11", "ID", "AS"),
        ("81.0.0.0/8", "GB", "EU"),
        ("81.2.69.0/24", "", "EU"),
        ("2400::/12", "JP", "AS"),
        ("2400:da00::/32", "CN", "AS"),
        ("2401::/16", "", "OC"),
        ("240e::/20", "CN", "AS"),
    ]);
    let l = db(fixtures::ip_location_db_bytes(
        &[
            ("1.0.0.0/9", "AU"),
            ("128.0.0.0/2", "DE"),
            ("2401::/17", "NZ"),
        ],
        IpVersion::V6,
    ));
    let lines = LineSet::new(["china", "corp", "europe"]).expect("lines");
    let rules = vec![
        rule(
            line(1),
            &[],
            &[],
            &["1.2.3.0/24", "2400:da00:1::/48", "::ffff:81.0.0.0/104"],
        ),
        rule(line(0), &["CN"], &[], &["36.0.0.0/8"]),
        rule(line(2), &["NZ"], &["EU"], &["240e:8::/29"]),
    ];
    Classifier::new(lines, rules, vec![Arc::new(g), Arc::new(l)]).expect("compiles")
}

#[test]
fn explain_agrees_with_the_map_and_scopes_hold() {
    let c = mixed_classifier();
    check_invariants(c.map());
    for addr in addresses(30_000, 7).chain(
        [
            "1.2.3.4",
            "1.2.4.4",
            "36.70.0.1",
            "81.2.69.9",
            "81.3.0.0",
            "200.1.1.1",
            "2400:da00:1::1",
            "2400:da00:2::1",
            "240e:8::1",
            "2401:8000::1",
            "2401::1",
            "::ffff:1.2.3.4",
            "::ffff:81.2.3.4",
            "::",
            "::1",
            "::1.2.3.4",
        ]
        .iter()
        .map(|s| ip(s)),
    ) {
        let e = c.explain(addr).expect("explain");
        let want = match e.decision {
            Decision::Default => c.lines().default_line(),
            Decision::Cidr { rule, .. }
            | Decision::Country { rule, .. }
            | Decision::Continent { rule, .. }
            | Decision::Subdivision { rule, .. }
            | Decision::Asn { rule, .. } => c.rules()[rule].line,
        };
        assert_eq!(e.classification.line, want, "{addr}: {e:?}");
        check_scope(c.map(), addr);
    }
    let e = c.explain(ip("1.2.3.4")).expect("explain");
    assert_eq!(
        e.decision,
        Decision::Cidr {
            rule: 0,
            cidr: "1.2.3.0/24".parse().expect("net")
        }
    );
    let e = c.explain(ip("1.2.4.4")).expect("explain");
    assert_eq!(
        e.decision,
        Decision::Country {
            rule: 1,
            country: *b"CN"
        }
    );
    assert_eq!(e.records.len(), 2);
    let e = c.explain(ip("2401:1::1")).expect("explain");
    assert_eq!(e.record.country, Some(*b"NZ"));
    assert_eq!(
        e.decision,
        Decision::Country {
            rule: 2,
            country: *b"NZ"
        }
    );
    let e = c.explain(ip("150.0.0.1")).expect("explain");
    assert_eq!(
        e.decision,
        Decision::Continent {
            rule: 2,
            continent: *b"EU"
        }
    );
}

#[test]
fn rules_from_config() {
    let config = Config::parse(
        Path::new("t.toml"),
        r#"
[[geoip]]
path = "db.mmdb"

[[line]]
name = "corp"
cidrs = ["10.0.0.0/8", "2001:db8::/32"]

[[line]]
name = "china"
countries = ["CN", "HK"]
continents = ["AS"]
"#,
    )
    .expect("config");
    let set = config.line_set().clone();
    let rules = LineRule::from_config(&config.lines, &set);
    assert_eq!(
        rules,
        vec![
            rule(line(0), &[], &[], &["10.0.0.0/8", "2001:db8::/32"]),
            rule(line(1), &["CN", "HK"], &["AS"], &[]),
        ]
    );
    assert_eq!(set.default_line(), line(2));
}

#[test]
fn handle_swaps_snapshots_without_disturbing_held_ones() {
    let lines = LineSet::new(["china"]).expect("lines");
    let first = Classifier::new(
        lines.clone(),
        vec![rule(line(0), &[], &[], &["1.2.0.0/15"])],
        vec![],
    )
    .expect("compiles");
    let handle = crate::live::Swappable::new(first);
    let held = handle.load_full();
    assert_eq!(handle.load().classify(ip("1.2.4.8")).line, line(0));
    let g = Arc::new(geoip2(&[("8.8.8.0/24", "CN", "AS")]));
    let second =
        Classifier::new(lines, vec![rule(line(0), &["CN"], &[], &[])], vec![g]).expect("compiles");
    handle.store(second);
    assert_eq!(handle.load().classify(ip("1.2.4.8")).line, line(1));
    assert_eq!(
        handle.load().classify(ip("8.8.8.8")),
        Classification {
            line: line(0),
            scope: 24
        }
    );
    assert_eq!(held.classify(ip("1.2.4.8")).line, line(0));
    let reloaded = held
        .with_databases(handle.load().databases().to_vec())
        .expect("compiles");
    assert_eq!(reloaded.databases().len(), 1);
}

#[test]
fn subdivision_and_asn_rules_over_a_city_and_an_asn_database() {
    let city = db(fixtures::geoip2_city_bytes(
        "GeoLite2-City",
        &[
            ("1.0.0.0/8", "CN", "AS", &["BJ"]),
            ("1.2.0.0/16", "CN", "AS", &["GD"]),
            ("1.3.0.0/16", "CN", "AS", &["GD"]),
            ("2400:da00::/32", "CN", "AS", &["GD"]),
        ],
    ));
    let asn = db(fixtures::asn_bytes(
        "GeoLite2-ASN",
        &[
            ("1.4.0.0/16", 4134, "CHINANET"),
            ("1.5.0.0/16", 4837, "UNICOM"),
            ("1.2.9.0/24", 4837, "UNICOM"),
        ],
    ));
    let mut gd = rule(CORP, &[], &[], &[]);
    gd.subdivisions = vec![Subdivision::parse("CN-GD").expect("code")];
    let mut telecom = rule(CHINA, &[], &[], &[]);
    telecom.asns = vec![4134, 4837];
    let lines = LineSet::new(["china", "corp"]).expect("lines");
    let c = Classifier::new(
        lines.clone(),
        vec![gd.clone(), telecom.clone()],
        vec![Arc::new(city), Arc::new(asn)],
    )
    .expect("compiles");
    check_invariants(c.map());
    let class = |a: &str| {
        let k = c.classify(ip(a));
        (k.line, k.scope)
    };
    // CN-GD in 1.2.0.0/15 merged; the subdivision rule comes first so 1.2.9.0/24 stays corp.
    assert_eq!(class("1.2.9.1"), (CORP, 15));
    assert_eq!(class("1.3.0.1"), (CORP, 15));
    assert_eq!(class("2400:da00::1"), (CORP, 32));
    // CN-BJ is not listed; the ASN rule takes 1.4.0.0/15.
    assert_eq!(class("1.4.0.1"), (CHINA, 15));
    assert_eq!(class("1.5.0.1"), (CHINA, 15));
    assert_eq!(class("1.6.0.1").0, DEFAULT);
    let e = c.explain(ip("1.2.9.1")).expect("explain");
    assert_eq!(
        e.decision,
        Decision::Subdivision {
            rule: 0,
            subdivision: Subdivision::parse("CN-GD").expect("code")
        }
    );
    assert_eq!(e.record.asn, Some(4837));
    let e = c.explain(ip("1.5.0.1")).expect("explain");
    assert_eq!(e.decision, Decision::Asn { rule: 1, asn: 4837 });

    // Order reversed: the ASN rule wins inside 1.2.9.0/24.
    let c = Classifier::new(lines, vec![telecom, gd], c.databases().to_vec()).expect("compiles");
    assert_eq!(c.classify(ip("1.2.9.1")).line, CHINA);
    assert_eq!(c.classify(ip("1.2.8.1")).line, CORP);
}

#[test]
fn a_rule_on_a_field_no_database_has_is_an_error() {
    let country = Arc::new(geoip2(&[("1.2.0.0/15", "CN", "AS")]));
    let mut telecom = rule(CHINA, &[], &[], &[]);
    telecom.asns = vec![4134];
    let lines = LineSet::new(["china", "corp"]).expect("lines");
    let e = Classifier::new(lines.clone(), vec![telecom], vec![country.clone()])
        .expect_err("no ASN database");
    assert_eq!(
        e.to_string(),
        "line `china` matches on asn but none of the configured databases has asn data \
         (test.mmdb: geoip2 with country, continent)"
    );
    let mut gd = rule(CORP, &[], &[], &[]);
    gd.subdivisions = vec![Subdivision::parse("CN-GD").expect("code")];
    let e = Classifier::new(lines, vec![gd], vec![country]).expect_err("no City database");
    assert!(
        e.to_string()
            .starts_with("line `corp` matches on subdivision"),
        "{e}"
    );
}

/// The database the repository ships.
#[test]
fn shipped_database_compiles() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/geo-whois-asn-country.mmdb");
    let db = GeoDb::open(&path, None).expect("the shipped database opens");
    let map = compile(&[china()], &[&db]);
    assert_eq!(map.classify(ip("1.2.4.8")).line, CHINA);
    assert_eq!(map.classify(ip("8.8.8.8")).line, DEFAULT);
    assert_eq!(map.classify(ip("2400:da00::1")).line, CHINA);
    assert_eq!(map.classify(ip("::ffff:1.2.4.8")).line, CHINA);
    let (v4, v6) = map.range_count();
    assert!(v4 > 1_000 && v6 > 1_000, "{v4} {v6}");
    let lines = LineSet::new(["china", "corp"]).expect("lines");
    let c = Classifier::new(lines, vec![china()], vec![Arc::new(db)]).expect("compiles");
    for addr in addresses(3_000, 11) {
        let e = c.explain(addr).expect("explain");
        let want = if e.decision == Decision::Default {
            DEFAULT
        } else {
            CHINA
        };
        assert_eq!(e.classification.line, want, "{addr}: {e:?}");
        check_scope(c.map(), addr);
    }
}

/// A classifier built for serving keeps its databases' summaries, not their contents; a
/// reload of one database compiles again from the other's file.
#[test]
fn serving_classifiers_keep_database_summaries() {
    let dir = std::env::temp_dir().join(format!("geoline-lines-{}-summaries", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (a, b) = (dir.join("a.mmdb"), dir.join("b.mmdb"));
    fixtures::write_geoip2_country(&a, &[("1.2.0.0/15", "CN", "AS")]);
    fixtures::write_geoip2_country(&b, &[("8.8.8.0/24", "CN", "AS")]);
    let lines = LineSet::new(["china"]).expect("lines");
    let declared = [crate::lines::config::LineConfig {
        name: "china".into(),
        countries: vec!["CN".into()],
        continents: vec![],
        subdivisions: vec![],
        asns: vec![],
        cidrs: vec![],
    }];
    let open = |p: &Path| Arc::new(GeoDb::open(p, None).expect("opens"));
    let c = Classifier::from_config(&lines, &declared, vec![open(&a), open(&b)]).expect("compiles");
    assert!(c.databases().iter().all(|db| !db.holds_contents()));
    assert_eq!(c.classify(ip("1.2.4.8")).line, line(0));
    assert_eq!(c.classify(ip("8.8.8.8")).line, line(0));
    let e = c.explain(ip("8.8.8.8")).expect("reads b again");
    assert_eq!(
        e.decision,
        Decision::Country {
            rule: 0,
            country: *b"CN"
        }
    );

    // `a` reloaded with other data; `b`, a summary, is read again from its file.
    fixtures::write_geoip2_country(&a, &[("9.9.9.0/24", "CN", "AS")]);
    let mut dbs = c.databases().to_vec();
    dbs[0] = open(&a);
    let reloaded = c.with_databases(dbs).expect("compiles");
    assert!(reloaded.databases().iter().all(|db| !db.holds_contents()));
    assert_eq!(reloaded.classify(ip("1.2.4.8")).line, line(1));
    assert_eq!(reloaded.classify(ip("9.9.9.9")).line, line(0));
    assert_eq!(reloaded.classify(ip("8.8.8.8")).line, line(0));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
