//! The zone loader's cost, for callgrind: loads the benchmarks' big zone (the example
//! zone plus RECORDS host A records, a china overlay replacing every tenth, as
//! `benches/lib.sh`'s `big_zone_files` writes it) ITERATIONS times.
//!
//!   cargo bench --no-run --bench zone_load
//!   valgrind --tool=callgrind target/release/deps/zone_load-* 20000 1
//!   valgrind --tool=callgrind target/release/deps/zone_load-* 20000 3
//!
//! The difference of the two counts divided by 2 is one load's instructions, whatever else
//! the machine runs; divided by the records (base and overlay), the cost of a record.
//! Not a test: nothing here asserts a count.

use std::path::Path;

use geoline::internal::Zone;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let records: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let iterations: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let (base, overlay) = big_zone(records);
    let path = Path::new("big.zone");
    for _ in 0..iterations {
        let zone = Zone::from_text(path, &base, Some(&overlay)).expect("the big zone loads");
        std::hint::black_box(&zone);
    }
    println!(
        "{iterations} load(s) of {records} records + {} in the overlay",
        records.div_ceil(10)
    );
}

/// The files of `big_zone_files` (benches/lib.sh), in memory.
fn big_zone(records: u32) -> (String, String) {
    let mut base = include_str!("../zones/example.com.zone").to_string();
    for i in 0..records {
        base.push_str(&format!(
            "h{i} IN A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let mut overlay = include_str!("../zones/example.com.china.zone").to_string();
    for i in (0..records).step_by(10) {
        overlay.push_str(&format!(
            "h{i} 60 IN A 203.0.{}.{}\n",
            (i >> 8) & 255,
            i & 255
        ));
    }
    (base, overlay)
}
