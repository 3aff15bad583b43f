//! What a dynamic update costs, in instructions under callgrind (CPU time here is noise):
//! applying one, the whole of one as the server answers it, and what applying them costs
//! the cached queries answered meanwhile.
//!
//!     cargo build --release --bench update_cost
//!     B=$(ls -t target/release/deps/update_cost-* | grep -v '\.d$' | head -1)
//!     # instructions per update, zone of 100,000 names: (201 updates - 1 update) / 200
//!     valgrind --tool=callgrind --toggle-collect='*apply_update_granted*' $B updates 100000 1
//!     valgrind --tool=callgrind --toggle-collect='*apply_update_granted*' $B updates 100000 201
//!     # the whole update as the server answers it: read, TSIG verified, processed,
//!     # journaled (the write; the sync is the kernel's, which callgrind does not count),
//!     # swapped in, logged at info, the response signed; zone of 3 names grown by 10,000
//!     # updates first (each a new name, not counted); UPDATE_COST_LOG=off: no log
//!     valgrind --tool=callgrind --toggle-collect='*Responder::answer_into*' $B full 0 10000 1
//!     valgrind --tool=callgrind --toggle-collect='*Responder::answer_into*' $B full 0 10000 201
//!     # instructions per query: 40 rounds of 200 queries, an update between rounds or not
//!     valgrind --tool=callgrind --toggle-collect='*Responder::answer_into*' $B queries 10000 40 200 update
//!     valgrind --tool=callgrind --toggle-collect='*Responder::answer_into*' $B queries 10000 40 200 none
//!     # (`answer_into`: `Responder::answer` only passes its arguments on, and a toggle on a
//!     # pattern both match would turn the count off again when one calls the other)
//!
//! Two zones: example.com (the shipped one, with its china overlay) and big.test with
//! NAMES names `hN` (A records). An update is an ACME challenge's: a TXT record added at
//! `_acme-challenge.hN.big.test`, and removed by the next update (a name created, then
//! pruned). `full` first grows big.test by GROW updates that each add a name `gN` (as a
//! zone loaded small and filled by updates, the benches/updates/run.sh case), then sends
//! COUNT updates signed with hmac-sha256 through `Responder::answer`, with the journal in a
//! temporary directory and a text log at info written to nowhere (what `serve` formats).
//! The queries are for 100 names of big.test and four of example.com, from the UDP
//! workers' answer cache: 20,000 queries/s with 100 updates/s is 200 queries an update.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use geoline::config::Config;
use geoline::internal::tsig::{self, Algorithm, Key, Secret};
use geoline::internal::{
    AnswerCache, Live, Responder, Transport, apply_update_granted, live_with_updates,
};

fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&[0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    b
}

/// Update `i`: adds the challenge at host `i`, and removes the one update `i - 1` added.
fn update(i: usize) -> Vec<u8> {
    let zone = Name::from_ascii("big.test.").expect("name");
    let mut m = Message::new(i as u16, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(zone, RecordType::SOA));
    let owner =
        |k: usize| Name::from_ascii(format!("_acme-challenge.h{k}.big.test.")).expect("name");
    if i > 0 {
        let mut delete = Record::update0(owner(i - 1), 0, RecordType::TXT);
        delete.dns_class = DNSClass::ANY;
        m.add_authority(delete);
    }
    let txt = RData::TXT(TXT::new(vec![format!("token-{i}")]));
    m.add_authority(Record::from_rdata(owner(i), 60, txt));
    m.to_vec().expect("encodes")
}

/// Growth update `i`: adds the name `g{i}.big.test` (an A record).
fn growth(i: usize) -> Vec<u8> {
    let zone = Name::from_ascii("big.test.").expect("name");
    let mut m = Message::new(i as u16, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(zone, RecordType::SOA));
    let owner = Name::from_ascii(format!("g{i}.big.test.")).expect("name");
    let a = RData::A(A(Ipv4Addr::new(
        10,
        (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8,
    )));
    m.add_authority(Record::from_rdata(owner, 60, a));
    m.to_vec().expect("encodes")
}

/// The key `full` signs its updates with.
const SECRET: &str = "va+fcVoJm88sSQJ60t8Nir9KPooK2p3rcG2270CHSeI=";

/// The configuration `responder_with` loads (`dir` the temporary directory), with a key
/// that may update big.test when `updates`.
fn configuration(root: &Path, dir: &Path, updates: bool) -> String {
    let mut config = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n[[geoip]]\npath = \"{root}/geoip/geo-whois-asn-country.mmdb\"\n\
         [[line]]\nname = \"china\"\ncountries = [\"CN\"]\n\
         [[zone]]\nfile = \"{root}/zones/example.com.zone\"\noverlays = {{ china = \"{root}/zones/example.com.china.zone\" }}\n\
         [[zone]]\nfile = \"{dir}/big.test.zone\"\n",
        root = root.display(),
        dir = dir.display()
    );
    if updates {
        config.push_str(&format!(
            "[[key]]\nname = \"bench\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n\
             [update]\nrate = 0\njournal_dir = \"{dir}/journal\"\n\
             [[update.grant]]\nkey = \"bench\"\nzones = [\"big.test\"]\n",
            dir = dir.display()
        ));
    }
    config
}

fn responder(names: usize) -> Responder {
    let (responder, dir) = responder_with(names, false);
    std::fs::remove_dir_all(&dir).ok();
    responder
}

/// The responder, and the temporary directory its journals are in (removed by the caller).
fn responder_with(names: usize, updates: bool) -> (Responder, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("geoline-update-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut zone = String::from(
        "$ORIGIN big.test.\n$TTL 300\n@ SOA ns1 host 1 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..names {
        zone.push_str(&format!(
            "h{i} A 10.{}.{}.{}\n",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255
        ));
    }
    std::fs::write(dir.join("big.test.zone"), zone).expect("zone written");
    std::fs::write(dir.join("geoline.toml"), configuration(root, &dir, updates))
        .expect("config written");
    let config = Config::load(&dir.join("geoline.toml")).expect("configuration loads");
    let live = if updates {
        std::fs::create_dir_all(dir.join("journal")).expect("journal dir");
        live_with_updates(&config).expect("zones and journals load")
    } else {
        let loaded = geoline::server::load(&config).expect("zones load");
        Live::new(loaded.zones, loaded.classifier)
    };
    (Responder::new(Arc::new(live), 1232, None), dir)
}

/// `full`: GROW updates through `apply_update_granted`, then COUNT signed updates through
/// `Responder::answer`, each answered NOERROR.
fn full(names: usize, grow: usize, count: usize) {
    let (state, dir) = responder_with(names, true);
    for i in 0..grow {
        let rcode = apply_update_granted(state.live(), &growth(i));
        assert_eq!(rcode, Some(hickory_proto::op::ResponseCode::NoError));
    }
    // What `serve` logs at its default level, formatted as it formats it, to nowhere
    // (`UPDATE_COST_LOG=off`: no subscriber, what the log line costs is the difference).
    if std::env::var("UPDATE_COST_LOG").as_deref() != Ok("off") {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
    }
    let key = Key::new(
        Name::from_ascii("bench.").expect("name"),
        Algorithm::HmacSha256,
        Secret::new(
            base64::engine::general_purpose::STANDARD
                .decode(SECRET)
                .expect("base64"),
        ),
    )
    .expect("key");
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let mut out = Vec::with_capacity(1232);
    for i in 0..count {
        let mut message = update(i);
        tsig::sign_request(&key, &mut message, tsig::now());
        state.answer(&message, source, Transport::Udp, None, &mut out);
        assert_eq!(out.get(3).map(|b| b & 0x0f), Some(0), "update {i}: NOERROR");
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let names = number(1, 10_000);
    if args.first().map(String::as_str) == Some("full") {
        return full(names, number(2, 10_000), number(3, 201));
    }
    let state = responder(names);
    match args.first().map(String::as_str) {
        Some("updates") => {
            let updates: Vec<Vec<u8>> = (0..number(2, 201)).map(update).collect();
            for message in &updates {
                let rcode = apply_update_granted(state.live(), message);
                assert_eq!(rcode, Some(hickory_proto::op::ResponseCode::NoError));
            }
        }
        Some("queries") => {
            let (rounds, per_round) = (number(2, 40), number(3, 200));
            let with_updates = args.get(4).map(String::as_str) == Some("update");
            let mut queries: Vec<Vec<u8>> = (0..100)
                .map(|i| query(&format!("h{}.big.test", i * names / 100), 1))
                .collect();
            for (name, qtype) in [
                ("www.example.com", 1),
                ("api.example.com", 1),
                ("example.com", 15),
                ("nx.example.com", 1),
            ] {
                queries.push(query(name, qtype));
            }
            let updates: Vec<Vec<u8>> = (0..rounds).map(update).collect();
            let mut cache = AnswerCache::default();
            let mut out = Vec::with_capacity(1232);
            let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
            // Warm: every query's entry prepared once.
            for q in &queries {
                state.answer(q, source, Transport::Udp, Some(&mut cache), &mut out);
            }
            for round in 0..rounds {
                if with_updates {
                    apply_update_granted(state.live(), &updates[round]);
                }
                for i in 0..per_round {
                    let q = &queries[(round * per_round + i) % queries.len()];
                    state.answer(q, source, Transport::Udp, Some(&mut cache), &mut out);
                }
            }
        }
        _ => eprintln!(
            "usage: update_cost updates NAMES COUNT | full NAMES GROW COUNT | queries NAMES ROUNDS PER_ROUND update|none"
        ),
    }
}
