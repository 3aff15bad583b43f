//! Test fixtures: small MaxMind DB files in the layouts geoline reads, written with
//! mmdb-writer.
//!
//! A dev-dependency of geoline, used by the integration tests (as `common::mmdb`) and by
//! the unit tests of `src/geoip`, `src/lines` and `src/dns/cache.rs` (as
//! `crate::geoip::fixtures`).
//!
//! Each entry becomes a record of its own, so adjacent entries with the same country stay
//! separate database networks, as they often are in real databases (the writer would
//! otherwise merge them). Entries are inserted in order and later ones win where they
//! overlap.
//!
//! Helpers panic on bad input: they are for tests only.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{IpVersion, Value, Writer};

/// A fixed build time, so that fixtures are reproducible byte for byte.
pub const BUILD_EPOCH: u64 = 1_700_000_000;

/// A GeoIP2 Country layout (`database_type` "GeoIP2-Country", IPv6 with IPv4 in it):
/// `(cidr, country, continent)`; an empty country or continent leaves the field out.
pub fn write_geoip2_country(path: &Path, entries: &[(&str, &str, &str)]) {
    std::fs::write(path, geoip2_country_bytes(entries)).expect("write fixture");
}

pub fn geoip2_country_bytes(entries: &[(&str, &str, &str)]) -> Vec<u8> {
    let records: Vec<(&str, Value)> = entries
        .iter()
        .map(|&(cidr, country, continent)| (cidr, geoip2_record(country, continent)))
        .collect();
    mmdb_bytes("GeoIP2-Country", IpVersion::V6, &records)
}

/// A GeoIP2 record as MaxMind writes it: `continent.code`, `country.iso_code` and
/// `registered_country.iso_code`, with English names.
pub fn geoip2_record(country: &str, continent: &str) -> Value {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    if !continent.is_empty() {
        map.insert(
            "continent".into(),
            Value::map([
                ("code", Value::from(continent)),
                ("names", Value::map([("en", Value::from(continent))])),
            ]),
        );
    }
    if !country.is_empty() {
        let c = Value::map([
            ("iso_code", Value::from(country)),
            ("names", Value::map([("en", Value::from(country))])),
        ]);
        map.insert("country".into(), c.clone());
        map.insert("registered_country".into(), c);
    }
    Value::from(map)
}

/// An ip-location-db country layout with IPv4 and IPv6 (`database_type` "country ipvAll",
/// like geo-whois-asn-country.mmdb): `(cidr, country)`.
pub fn write_ip_location_db(path: &Path, entries: &[(&str, &str)]) {
    std::fs::write(path, ip_location_db_bytes(entries, IpVersion::V6)).expect("write fixture");
}

/// An IPv4-only ip-location-db country layout (`database_type` "country ipv4", like
/// geo-whois-asn-country-ipv4.mmdb).
pub fn write_ip_location_db_v4(path: &Path, entries: &[(&str, &str)]) {
    std::fs::write(path, ip_location_db_bytes(entries, IpVersion::V4)).expect("write fixture");
}

pub fn ip_location_db_bytes(entries: &[(&str, &str)], version: IpVersion) -> Vec<u8> {
    let database_type = match version {
        IpVersion::V4 => "country ipv4",
        _ => "country ipvAll",
    };
    let records: Vec<(&str, Value)> = entries
        .iter()
        .map(|&(cidr, country)| (cidr, Value::map([("country_code", Value::from(country))])))
        .collect();
    mmdb_bytes(database_type, version, &records)
}

/// Any layout: each `(cidr, record)` is stored with an extra `fixture_entry` index so that
/// no two entries share a record.
pub fn mmdb_bytes(database_type: &str, version: IpVersion, records: &[(&str, Value)]) -> Vec<u8> {
    let mut writer = Writer::builder(database_type)
        .ip_version(version)
        .description(&[("en", "geoline test fixture")])
        .build_epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(BUILD_EPOCH))
        .build();
    for (i, (cidr, record)) in records.iter().enumerate() {
        let net: IpNet = cidr
            .parse()
            .unwrap_or_else(|e| panic!("fixture cidr {cidr}: {e}"));
        let mut map = match record {
            Value::Map(m) => m.clone(),
            other => panic!("fixture record for {cidr} is not a map: {other:?}"),
        };
        map.insert("fixture_entry".into(), Value::from(i as u32));
        writer
            .insert_value(net, Value::from(map))
            .unwrap_or_else(|e| panic!("fixture insert {cidr}: {e}"));
    }
    writer.to_bytes().expect("fixture database")
}

/// A GeoIP2 City layout (`database_type` "GeoIP2-City" or "GeoLite2-City", or DB-IP's
/// "DBIP-City-Lite"): `(cidr, country, continent, subdivision codes)`, each subdivision
/// the part after the dash ("GD" for CN-GD), largest first, with a city and a location as
/// real City records have.
pub fn geoip2_city_bytes(database_type: &str, entries: &[(&str, &str, &str, &[&str])]) -> Vec<u8> {
    let records: Vec<(&str, Value)> = entries
        .iter()
        .map(|&(cidr, country, continent, subdivisions)| {
            let Value::Map(mut map) = geoip2_record(country, continent) else {
                unreachable!("geoip2_record returns a map")
            };
            if !subdivisions.is_empty() {
                let subs: Vec<Value> = subdivisions
                    .iter()
                    .map(|s| {
                        Value::map([
                            ("iso_code", Value::from(*s)),
                            ("names", Value::map([("en", Value::from(*s))])),
                        ])
                    })
                    .collect();
                map.insert("subdivisions".into(), Value::Array(subs));
            }
            map.insert(
                "city".into(),
                Value::map([("names", Value::map([("en", Value::from("Somewhere"))]))]),
            );
            map.insert(
                "location".into(),
                Value::map([
                    ("latitude", Value::Double(23.1)),
                    ("longitude", Value::Double(113.3)),
                ]),
            );
            (cidr, Value::from(map))
        })
        .collect();
    mmdb_bytes(database_type, IpVersion::V6, &records)
}

/// An ASN layout as GeoLite2-ASN, DB-IP ("DBIP-ASN-Lite") and ip-location-db ("asn
/// ipvAll") write it: `(cidr, autonomous_system_number, organization)`.
pub fn asn_bytes(database_type: &str, entries: &[(&str, u32, &str)]) -> Vec<u8> {
    let records: Vec<(&str, Value)> = entries
        .iter()
        .map(|&(cidr, asn, org)| {
            (
                cidr,
                Value::map([
                    ("autonomous_system_number", Value::from(asn)),
                    ("autonomous_system_organization", Value::from(org)),
                ]),
            )
        })
        .collect();
    mmdb_bytes(database_type, IpVersion::V6, &records)
}

/// IPinfo lite ("ipinfo lite.mmdb"): `(cidr, country_code, continent_code, asn)` with the
/// ASN written as IPinfo does, "AS4134"; an empty ASN leaves the AS fields out.
pub fn ipinfo_lite_bytes(entries: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let records: Vec<(&str, Value)> = entries
        .iter()
        .map(|&(cidr, country, continent, asn)| {
            let mut map: BTreeMap<String, Value> = BTreeMap::new();
            map.insert("country_code".into(), Value::from(country));
            map.insert("country".into(), Value::from(country));
            map.insert("continent_code".into(), Value::from(continent));
            map.insert("continent".into(), Value::from(continent));
            if !asn.is_empty() {
                map.insert("asn".into(), Value::from(asn));
                map.insert("as_name".into(), Value::from("Some Network"));
                map.insert("as_domain".into(), Value::from("example.net"));
            }
            (cidr, Value::from(map))
        })
        .collect();
    mmdb_bytes("ipinfo lite.mmdb", IpVersion::V6, &records)
}
