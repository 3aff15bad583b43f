//! What a dynamic update costs, in instructions under callgrind (CPU time here is noise):
//! applying one, and what applying them costs the cached queries answered meanwhile.
//!
//!     cargo build --release --bench update_cost
//!     B=$(ls -t target/release/deps/update_cost-* | grep -v '\.d$' | head -1)
//!     # instructions per update, zone of 100,000 names: (201 updates - 1 update) / 200
//!     valgrind --tool=callgrind --toggle-collect='*apply_update_granted*' $B updates 100000 1
//!     valgrind --tool=callgrind --toggle-collect='*apply_update_granted*' $B updates 100000 201
//!     # instructions per query: 40 rounds of 200 queries, an update between rounds or not
//!     valgrind --tool=callgrind --toggle-collect='*Responder*answer*' $B queries 10000 40 200 update
//!     valgrind --tool=callgrind --toggle-collect='*Responder*answer*' $B queries 10000 40 200 none
//!
//! Two zones: example.com (the shipped one, with its china overlay) and big.test with
//! NAMES names `hN` (A records). An update is an ACME challenge's: a TXT record added at
//! `_acme-challenge.hN.big.test`, and removed by the next update (a name created, then
//! pruned). The queries are for 100 names of big.test and four of example.com, from the
//! UDP workers' answer cache: 20,000 queries/s with 100 updates/s is 200 queries an update.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use geoline::config::Config;
use geoline::internal::{AnswerCache, Live, Responder, Transport, apply_update_granted};

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

fn responder(names: usize) -> Responder {
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
    let config = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n[[geoip]]\npath = \"{root}/geoip/geo-whois-asn-country.mmdb\"\n\
         [[line]]\nname = \"china\"\ncountries = [\"CN\"]\n\
         [[zone]]\nfile = \"{root}/zones/example.com.zone\"\noverlays = {{ china = \"{root}/zones/example.com.china.zone\" }}\n\
         [[zone]]\nfile = \"{dir}/big.test.zone\"\n",
        root = root.display(),
        dir = dir.display()
    );
    std::fs::write(dir.join("geoline.toml"), config).expect("config written");
    let config = Config::load(&dir.join("geoline.toml")).expect("configuration loads");
    let loaded = geoline::server::load(&config).expect("zones load");
    std::fs::remove_dir_all(&dir).ok();
    Responder::new(
        Arc::new(Live::new(loaded.zones, loaded.classifier)),
        1232,
        None,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let names = number(1, 10_000);
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
            "usage: update_cost updates NAMES COUNT | queries NAMES ROUNDS PER_ROUND update|none"
        ),
    }
}
