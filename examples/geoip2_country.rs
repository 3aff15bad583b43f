//! Rewrites any database geoline reads as a GeoIP2 Country database (`country.iso_code`,
//! `continent.code`), the layout Knot's geoip module, gdnsd's geoip plugin, PowerDNS's geoip
//! backend and BIND read. The side-by-side benchmark (benches/peers/) uses it so that
//! every server decides lines from the same networks.
//!
//! Usage: cargo run --release --example geoip2_country -- IN.mmdb OUT.mmdb

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use geoline::internal::GeoDb;
use mmdb_writer::{IpVersion, Value, Writer};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: geoip2_country IN.mmdb OUT.mmdb");
        return ExitCode::from(2);
    };
    match convert(input, output) {
        Ok(n) => {
            println!("{}: {n} networks", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("geoip2_country: {e}");
            ExitCode::FAILURE
        }
    }
}

fn convert(input: &Path, output: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let db = GeoDb::open(input, None)?;
    let epoch = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(db.build_epoch());
    let mut writer = Writer::builder("GeoIP2-Country")
        .ip_version(IpVersion::V6)
        .description(&[("en", "converted by geoline's geoip2_country example")])
        .build_epoch(epoch)
        .build();
    let mut count = 0;
    for (net, record) in db.networks()? {
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        if let Some(code) = record.continent_str() {
            map.insert(
                "continent".into(),
                Value::map([("code", Value::from(code))]),
            );
        }
        if let Some(code) = record.country_str() {
            let country = Value::map([("iso_code", Value::from(code))]);
            map.insert("registered_country".into(), country.clone());
            map.insert("country".into(), country);
        }
        if map.is_empty() || in_ipv4_alias(&net) {
            continue;
        }
        // The writer has its own ipnet version: go through text.
        let net: mmdb_writer::ipnet::IpNet = net.to_string().parse()?;
        writer.insert_value(net, Value::from(map))?;
        count += 1;
    }
    std::fs::write(output, writer.to_bytes()?)?;
    Ok(count)
}

/// 6to4 (2002::/16) and Teredo (2001::/32) are aliases of the IPv4 tree in a GeoIP2
/// database, as MaxMind writes it; geoline's own lookups find nothing there either.
fn in_ipv4_alias(net: &ipnet::IpNet) -> bool {
    match net {
        ipnet::IpNet::V6(n) => {
            let s = n.network().segments();
            s[0] == 0x2002 || (s[0] == 0x2001 && s[1] == 0)
        }
        ipnet::IpNet::V4(_) => false,
    }
}
