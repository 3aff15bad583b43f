//! Reload cost, measured on this machine: how long reading, checking and compiling a
//! database takes, how much memory a reload needs on top of what serves, and DNS query
//! latency while reloads run back to back.
//!
//! Two databases: the shipped `geoip/geo-whois-asn-country.mmdb`, and a synthetic
//! City-size one (about 70 MB, GeoIP2 City records with names in eight languages,
//! subdivisions and locations) written with mmdb-writer on the first run and kept in the
//! target directory. Run with `cargo bench --bench reload`; it prints a table for the
//! README. Not a test: nothing here asserts a time.

#[path = "../tests/common/dns.rs"]
mod dns;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use geoline::config::Config;
use geoline::internal::Classifier;
use geoline::internal::GeoDb;
use geoline::internal::{Target, Trigger};
use mmdb_writer::ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mmdb_writer::{IpVersion, Value, Writer};

/// Counts heap bytes in use and their peak, so that a reload's memory is measured exactly
/// rather than through the resident set size (which the allocator keeps after frees).
struct Counting;

static IN_USE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// GlobalAlloc contract; the counting beside it only touches atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now =
                IN_USE.fetch_add(layout.size() as u64, Ordering::Relaxed) + layout.size() as u64;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = manifest.join("geoip/geo-whois-asn-country.mmdb");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let city = target.join("geoline-bench-city-v2.mmdb");
    if !city.exists() {
        let t = Instant::now();
        write_city(&city);
        println!(
            "wrote {} ({:.1} MB) in {:.1} s",
            city.display(),
            mb(file_len(&city)),
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "| database | size | networks | reload (median of 5) | heap serving | peak extra heap during a reload |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, path, rules) in [
        ("shipped geo-whois-asn-country", &shipped, RULES_COUNTRY),
        ("synthetic City-size", &city, RULES_CITY),
    ] {
        reload_cost(name, path, rules);
    }
    println!();
    println!("| database | reloads done | queries | p50 | p99 | p99.9 | max |");
    println!("|---|---|---|---|---|---|---|");
    for (name, path, rules) in [
        ("shipped (no reloads)", &shipped, RULES_COUNTRY),
        ("shipped (reloading)", &shipped, RULES_COUNTRY),
        ("City-size (no reloads)", &city, RULES_CITY),
        ("City-size (reloading)", &city, RULES_CITY),
    ] {
        latency(name, path, rules, name.contains("(reloading)"));
    }
}

const RULES_COUNTRY: &str = "[[line]]\nname = \"china\"\ncountries = [\"CN\"]\n";
const RULES_CITY: &str = "[[line]]\nname = \"gd\"\nsubdivisions = [\"CN-GD\"]\n[[line]]\nname = \"china\"\ncountries = [\"CN\"]\n";

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn config_for(dir: &Path, db: &Path, rules: &str) -> Config {
    std::fs::write(
        dir.join("z.zone"),
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n",
    )
    .expect("zone");
    std::fs::write(dir.join("z.china.zone"), "$TTL 300\nwww A 203.0.113.10\n").expect("overlay");
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n[reload]\nwatch = false\n[[geoip]]\npath = \"{}\"\n{rules}[[zone]]\nfile = \"z.zone\"\noverlays = {{ china = \"z.china.zone\" }}\n",
        db.display()
    );
    let path = dir.join("geoline.toml");
    std::fs::write(&path, text).expect("config");
    Config::load(&path).expect("config loads")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("geoline-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn reload_cost(name: &str, path: &Path, rules: &str) {
    let dir = scratch("cost");
    let config = config_for(&dir, path, rules);
    let g = &config.geoip[0];
    let base = IN_USE.load(Ordering::Relaxed);
    let db = GeoDb::open_with(&g.path, g.layout, &g.fields).expect("opens");
    let networks = db.network_count();
    // What serves while the reload runs: the reload's memory comes on top of it.
    let serving = Classifier::from_config(config.line_set(), &config.lines, vec![Arc::new(db)])
        .expect("compiles");
    let held = IN_USE.load(Ordering::Relaxed).saturating_sub(base);
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..5 {
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let t = Instant::now();
        let new = GeoDb::open_with(&g.path, g.layout, &g.fields).expect("opens");
        let next = serving
            .with_databases(vec![Arc::new(new)])
            .expect("compiles");
        times.push(t.elapsed());
        peaks.push(PEAK.load(Ordering::Relaxed).saturating_sub(before));
        drop(next);
    }
    times.sort();
    peaks.sort();
    println!(
        "| {name} | {:.1} MB | {networks} | {:.0} ms | {:.0} MB | {:.0} MB |",
        mb(file_len(path)),
        times[2].as_secs_f64() * 1000.0,
        mb(held),
        mb(peaks[2])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn latency(name: &str, path: &Path, rules: &str, reloading: bool) {
    let dir = scratch("latency");
    let config = config_for(&dir, path, rules);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let running = geoline::server::start(&config).await.expect("starts");
        let server = running.dns_udp[0];
        let stop = Arc::new(AtomicBool::new(false));
        let reloads = Arc::new(AtomicU64::new(0));
        let reloader = {
            let (stop, reloads, r) = (stop.clone(), reloads.clone(), running.reloader.clone());
            std::thread::spawn(move || {
                while reloading && !stop.load(Ordering::Relaxed) {
                    r.reload_blocking(Target::Database(0), Trigger::Admin)
                        .expect("reload");
                    reloads.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        socket.connect(server).await.expect("connect");
        let mut buf = vec![0u8; 2048];
        let mut samples = Vec::new();
        let end = Instant::now() + Duration::from_secs(if reloading { 20 } else { 5 });
        let mut i: u16 = 0;
        while Instant::now() < end {
            i = i.wrapping_add(1);
            let client = format!("{}.{}.{}.0/24", 1 + (i % 200), (i / 7) % 256, i % 256);
            let mut q = dns::Query::new("www.example.com", dns::A)
                .subnet(&client)
                .bytes();
            q[..2].copy_from_slice(&i.to_be_bytes());
            let t = Instant::now();
            socket.send(&q).await.expect("send");
            let _ = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
                .await
                .expect("an answer")
                .expect("recv");
            samples.push(t.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        let _ = reloader.join();
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            reloads.load(Ordering::Relaxed),
            samples.len(),
            us(pct(0.5)),
            us(pct(0.99)),
            us(pct(0.999)),
            us(*samples.last().expect("samples"))
        );
        running.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A deterministic generator, so the synthetic database is the same on every machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 17
    }
}

const COUNTRIES: [(&str, &str); 12] = [
    ("CN", "AS"),
    ("US", "NA"),
    ("DE", "EU"),
    ("JP", "AS"),
    ("BR", "SA"),
    ("IN", "AS"),
    ("GB", "EU"),
    ("FR", "EU"),
    ("AU", "OC"),
    ("ZA", "AF"),
    ("KR", "AS"),
    ("CA", "NA"),
];
const LANGS: [&str; 8] = ["de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN"];

fn names(base: &str) -> Value {
    Value::map(
        LANGS
            .iter()
            .map(|l| (*l, Value::from(format!("{base} ({l})")))),
    )
}

/// A GeoIP2 City record as MaxMind shapes it.
fn city_record(rng: &mut Lcg, i: usize) -> Value {
    let (country, continent) = COUNTRIES[i % COUNTRIES.len()];
    let sub = ["GD", "BJ", "SH", "ZJ", "JS", "CA", "TX", "NY", "BY", "13"][(i / 12) % 10];
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    m.insert(
        "city".into(),
        Value::map([
            ("geoname_id", Value::from(1_000_000 + i as u32)),
            ("names", names(&format!("City {i}"))),
        ]),
    );
    m.insert(
        "continent".into(),
        Value::map([
            ("code", Value::from(continent)),
            ("names", names(continent)),
        ]),
    );
    let c = Value::map([
        ("iso_code", Value::from(country)),
        ("names", names(country)),
    ]);
    m.insert("country".into(), c.clone());
    m.insert("registered_country".into(), c);
    m.insert(
        "location".into(),
        Value::map([
            ("accuracy_radius", Value::from(rng.next() as u32 % 1000)),
            (
                "latitude",
                Value::Double((rng.next() % 180_000) as f64 / 1000.0 - 90.0),
            ),
            (
                "longitude",
                Value::Double((rng.next() % 360_000) as f64 / 1000.0 - 180.0),
            ),
            ("time_zone", Value::from("Asia/Shanghai")),
        ]),
    );
    m.insert(
        "postal".into(),
        Value::map([("code", Value::from(format!("{:06}", i % 1_000_000)))]),
    );
    m.insert(
        "subdivisions".into(),
        Value::Array(vec![Value::map([
            ("iso_code", Value::from(sub)),
            ("names", names(sub)),
        ])]),
    );
    Value::from(m)
}

/// About 70 MB: 1.6 million IPv4 /24s and 0.48 million IPv6 /48s over 110,000 records.
fn write_city(path: &Path) {
    let mut rng = Lcg(2026_1122);
    let records: Vec<Value> = (0..110_000).map(|i| city_record(&mut rng, i)).collect();
    let mut writer = Writer::builder("GeoLite2-City")
        .ip_version(IpVersion::V6)
        .description(&[("en", "geoline synthetic City-size benchmark database")])
        .build_epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_305_600))
        .build();
    let mut inserted = 0;
    let mut block: u32 = 1 << 16; // 1.0.0.0/24
    while inserted < 1_600_000 && block < (224 << 16) {
        let net = Ipv4Net::new(Ipv4Addr::from(block << 8), 24).expect("prefix");
        let r = records[rng.next() as usize % records.len()].clone();
        if writer.insert_value(IpNet::V4(net), r).is_ok() {
            inserted += 1;
        }
        block += 1 + (rng.next() % 12) as u32;
    }
    for k in 0..480_000u64 {
        let hi = 0x2400_0000_0000u64 + k * 5 + (rng.next() % 4);
        let addr = Ipv6Addr::from((u128::from(hi)) << 80);
        let net = Ipv6Net::new(addr, 48).expect("prefix");
        let r = records[rng.next() as usize % records.len()].clone();
        let _ = writer.insert_value(IpNet::V6(net), r);
    }
    let bytes = writer.to_bytes().expect("database");
    std::fs::write(path, bytes).expect("write the synthetic database");
    // The walk decodes one record per network: check it opens as geoline would.
    let db = GeoDb::open(path, None).expect("synthetic database opens");
    let _ = db.lookup(IpAddr::V4(Ipv4Addr::new(1, 0, 0, 1)));
}
