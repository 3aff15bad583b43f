//! What an AXFR costs the server's CPU, without the sockets: the messages of the default
//! line's view of the benchmark zone (zones/example.com.zone plus N host A records, as
//! benches/lib.sh `big_zone_files` writes it; the china overlay replaces every tenth),
//! written RUNS times. Prints the messages, bytes and the time of each run (noise on a
//! busy machine: count instructions and cache misses with valgrind instead).
//!
//!     cargo build --profile bench --bench axfr_encode
//!     B=$(ls -t target/release/deps/axfr_encode-* | grep -v '\.d$' | head -1)
//!     # instructions and simulated cache misses of one AXFR of 300,000 records
//!     valgrind --tool=callgrind --cache-sim=yes --toggle-collect='*axfr_messages*' $B 300000 1
//!     # line china (the overlay view) instead of the default; messages of 16 KiB
//!     $B 300000 5 china 16384
//!     # the messages written to FILE as on a TCP connection (each after its length), to be
//!     # replayed to a client such as kdig
//!     $B 1000000 1 default 65535 FILE

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use geoline::internal::{LineId, Zone, axfr_messages};

fn main() {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let china = args.next().as_deref() == Some("china");
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(65_535);
    let mut dump = args
        .next()
        .map(|path| std::io::BufWriter::new(std::fs::File::create(path).expect("the dump file")));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut base = std::fs::read_to_string(root.join("zones/example.com.zone")).expect("zone");
    let mut overlay =
        std::fs::read_to_string(root.join("zones/example.com.china.zone")).expect("overlay");
    for i in 0..records {
        let (a, b, c) = ((i >> 16) & 255, (i >> 8) & 255, i & 255);
        base.push_str(&format!("h{i} IN A 10.{a}.{b}.{c}\n"));
        if i % 10 == 0 {
            overlay.push_str(&format!("h{i} 60 IN A 203.0.{b}.{c}\n"));
        }
    }
    let zone = Zone::from_text(&root.join("zones/example.com.zone"), &base, Some(&overlay))
        .expect("the benchmark zone loads");
    drop((base, overlay));
    // Zone::from_text gives the overlay to line 0; line 1 is the default.
    let line = LineId::new(if china { 0 } else { 1 }).expect("line");
    for _ in 0..runs {
        let (mut bytes, mut records) = (0, 0);
        let start = Instant::now();
        let messages = axfr_messages(zone.clone(), line, size, |m| {
            bytes += m.len();
            records += usize::from(u16::from_be_bytes([m[6], m[7]]));
            if let Some(file) = &mut dump {
                let length = u16::try_from(m.len()).expect("a TCP message");
                file.write_all(&length.to_be_bytes()).expect("written");
                file.write_all(m).expect("written");
            }
        })
        .expect("a SOA");
        let took = start.elapsed();
        println!(
            "{messages} messages, {bytes} bytes, {records} records, {:.1} ms",
            took.as_secs_f64() * 1e3
        );
    }
}
