use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use mmdb_writer::IpVersion;

use super::{Mmdb, MmdbError, OpenError};
use crate::geoip::fixtures;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/geo-whois-asn-country.mmdb")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("geoline-mmdb-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn open(path: &Path) -> Mmdb {
    match Mmdb::open(path) {
        Ok(db) => db,
        Err(OpenError::Read(e)) => panic!("{}: {e}", path.display()),
        Err(OpenError::Empty) => panic!("{}: empty", path.display()),
        Err(OpenError::Format(e)) => panic!("{}: {e}", path.display()),
    }
}

/// The reference reader's network (an `ipnetwork` type it does not re-export) as ours.
fn reference_net(n: impl std::fmt::Display) -> IpNet {
    n.to_string().parse().expect("network")
}

/// The reference reader's networks and data offsets, and its lookup of one address.
struct Reference(maxminddb::Reader<Vec<u8>>);

impl Reference {
    fn networks(&self) -> Vec<(IpNet, usize)> {
        self.0
            .networks(Default::default())
            .expect("walk")
            .map(|r| {
                let r = r.expect("network");
                let net = reference_net(r.network().expect("network"));
                (net, r.offset().expect("data"))
            })
            .collect()
    }

    fn lookup(&self, ip: IpAddr) -> Option<(IpNet, usize)> {
        let r = self.0.lookup(ip).expect("lookup");
        let offset = r.offset()?;
        Some((reference_net(r.network().expect("network")), offset))
    }
}

/// The walk and lookups of `ours` against the reference reader over the same bytes:
/// every network and data offset, and the first and last address of every `step`th
/// network looked up in both.
fn agree(ours: &Mmdb, bytes: Vec<u8>, step: usize) {
    let reference = Reference(maxminddb::Reader::from_source(bytes).expect("reference opens"));
    let theirs = reference.networks();
    let mine = ours.walk().collect::<Result<Vec<_>, _>>().expect("walk");
    assert!(!mine.is_empty());
    assert_eq!(mine.len(), theirs.len());
    for (m, t) in mine.iter().zip(&theirs) {
        assert_eq!(m, t);
    }
    for (net, _) in mine.iter().step_by(step) {
        for ip in [net.network(), net.broadcast()] {
            assert_eq!(
                ours.lookup(ip).expect("lookup"),
                reference.lookup(ip),
                "{ip}"
            );
        }
    }
}

#[test]
fn the_shipped_database_reads_as_the_reference_reader_reads_it() {
    let path = shipped();
    let ours = open(&path);
    assert_eq!(ours.metadata().database_type, "country ipvAll");
    agree(&ours, std::fs::read(&path).expect("read"), 97);
    ours.verify_unchanged().expect("unchanged");
}

#[test]
fn fixtures_read_as_the_reference_reader_reads_them() {
    let country = fixtures::geoip2_country_bytes(&[
        ("1.0.0.0/8", "AU", "OC"),
        ("1.2.0.0/15", "CN", "AS"),
        ("8.8.8.0/24", "US", "NA"),
        ("2400:da00::/32", "CN", "AS"),
        ("2001:db8::/32", "JP", "AS"),
    ]);
    let v4 = fixtures::ip_location_db_bytes(&[("1.2.0.0/15", "CN")], IpVersion::V4);
    let city =
        fixtures::geoip2_city_bytes("GeoIP2-City", &[("1.2.4.0/24", "CN", "AS", &["GD", "SZ"])]);
    let asn = fixtures::asn_bytes("GeoLite2-ASN", &[("1.2.4.0/22", 4134, "CHINANET")]);
    for bytes in [country, v4, city, asn] {
        let ours = Mmdb::from_bytes(bytes.clone()).expect("opens");
        agree(&ours, bytes.clone(), 1);
        // The same bytes from a file, through the page cache.
        let path = scratch("fixtures").join("db.mmdb");
        std::fs::write(&path, &bytes).expect("write");
        agree(&open(&path), bytes, 1);
    }
}

#[test]
fn only_the_records_are_held_not_the_tree() {
    let ours = open(&shipped());
    // The file is 7.8 MB, nearly all of it search tree; the records are 1.5 KB.
    assert!(ours.len() > 7_000_000);
    assert!(ours.data.len() < 64 * 1024, "{}", ours.data.len());
    // A walk holds a few pages of the tree at a time, whatever the file's size.
    let mut walk = ours.walk();
    for item in walk.by_ref().take(100_000) {
        item.expect("network");
    }
    let held: usize = walk
        .nodes
        .pages
        .iter()
        .flatten()
        .map(|(_, p)| p.capacity())
        .sum();
    assert!(
        held <= super::tree::PAGES * (super::tree::PAGE + 8),
        "{held}"
    );
}

#[test]
fn a_file_rewritten_while_read_is_noticed() {
    let dir = scratch("rewritten");
    let path = dir.join("db.mmdb");
    let full = std::fs::read(shipped()).expect("read");
    std::fs::write(&path, &full).expect("write");

    // Cut short under a walk: the pages past the new end are not there.
    let db = open(&path);
    std::fs::write(&path, &full[..full.len() / 2]).expect("truncate");
    let e = db.walk().find_map(Result::err).expect("the walk fails");
    assert!(matches!(e, MmdbError::Changed), "{e}");
    assert!(matches!(db.verify_unchanged(), Err(MmdbError::Changed)));

    // Rewritten with other bytes of another size after it was read.
    std::fs::write(&path, &full).expect("write");
    let db = open(&path);
    db.verify_unchanged().expect("as opened");
    let other = fixtures::ip_location_db_bytes(&[("1.2.0.0/15", "CN")], IpVersion::V6);
    std::fs::write(&path, other).expect("rewrite");
    assert!(matches!(db.verify_unchanged(), Err(MmdbError::Changed)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let good = fixtures::ip_location_db_bytes(&[("1.2.0.0/15", "CN")], IpVersion::V6);
    // Every cut, and every byte of the tree and records flipped: an error or a walk that
    // ends, never a panic.
    for cut in 0..good.len() {
        if let Ok(db) = Mmdb::from_bytes(good[..cut].to_vec()) {
            let _ = db.walk().count();
        }
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0xa5;
        if let Ok(db) = Mmdb::from_bytes(bad) {
            for (_, offset) in db.walk().take(10_000).flatten() {
                let _ = db.data().value(offset);
            }
            let _ = db.lookup("1.2.4.8".parse().expect("ip"));
            let _ = db.lookup("2400:da00::1".parse().expect("ip"));
        }
    }
}
