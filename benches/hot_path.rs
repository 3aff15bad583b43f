//! The DNS hot path, stage by stage, in nanoseconds per query: reading a query (strict and
//! quick), classifying the client over the shipped database's compiled line map, the zone
//! lookup, encoding, and the whole answer — the strict path (decide + encode) and the
//! UDP path from prepared answers. Run with `cargo bench --bench hot_path`.
//!
//! The queries are the peer benchmark's mix (benches/peers/): a line-dependent A with
//! a mainland Client Subnet, a line-dependent CNAME with a foreign one, an MX without ECS
//! and an NXDOMAIN.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::rr::{Name, RecordType};

use geoline::config::Config;
use geoline::internal::LineId;
use geoline::internal::Live;
use geoline::internal::Query;
use geoline::internal::Responder;
use geoline::internal::Transport;
use geoline::internal::{AnswerCache, QuickQuery};

fn query(name: &str, qtype: u16, subnet: Option<[u8; 3]>) -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&[0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    match subnet {
        Some(a) => b.extend_from_slice(&[0, 11, 0, 8, 0, 7, 0, 1, 24, 0, a[0], a[1], a[2]]),
        None => b.extend_from_slice(&[0, 0]),
    }
    b
}

fn mix() -> Vec<Vec<u8>> {
    vec![
        query("www.example.com", 1, Some([1, 2, 4])),
        query("api.example.com", 1, Some([8, 8, 8])),
        query("example.com", 15, None),
        query("nx.example.com", 1, Some([1, 2, 4])),
    ]
}

fn state() -> Responder {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("geoline.toml")).expect("geoline.toml loads");
    let loaded = geoline::server::load(&config).expect("zones and database load");
    Responder::new(
        Arc::new(Live::new(loaded.zones, loaded.classifier)),
        1232,
        None,
    )
}

const SOURCE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

fn hot_path(c: &mut Criterion) {
    let state = state();
    let queries = mix();
    let mut g = c.benchmark_group("per query (mix of 4)");
    g.throughput(criterion::Throughput::Elements(queries.len() as u64));

    g.bench_function("parse strict (hickory Name)", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(Query::parse(black_box(q)).ok());
            }
        })
    });
    g.bench_function("parse quick", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(QuickQuery::parse(black_box(q)).map(|q| q.qtype()));
            }
        })
    });

    let classifier = state.live().classifier.load_full();
    let clients: Vec<IpAddr> = ["1.2.4.0", "8.8.8.0", "192.0.2.1", "2400:da00::"]
        .iter()
        .map(|a| a.parse().expect("address"))
        .collect();
    g.bench_function("classify", |b| {
        b.iter(|| {
            for a in &clients {
                black_box(classifier.map().classify(black_box(*a)));
            }
        })
    });

    let zones = state.live().zones.load_full();
    let zone = &zones.zones()[0];
    let lookups: Vec<(LineId, Name, RecordType)> = [
        (0, "www.example.com.", RecordType::A),
        (1, "api.example.com.", RecordType::A),
        (1, "example.com.", RecordType::MX),
        (0, "nx.example.com.", RecordType::A),
    ]
    .into_iter()
    .map(|(l, n, t)| {
        let line = LineId::new(l).expect("a line id");
        (line, Name::from_ascii(n).expect("name"), t)
    })
    .collect();
    g.bench_function("zone lookup (owned records)", |b| {
        b.iter(|| {
            for (line, name, qtype) in &lookups {
                black_box(zone.lookup(*line, name, *qtype));
            }
        })
    });
    g.bench_function("varies_by_line", |b| {
        b.iter(|| {
            for (_, name, qtype) in &lookups {
                black_box(zone.varies_by_line(name, *qtype));
            }
        })
    });

    let decisions: Vec<_> = queries
        .iter()
        .map(|q| state.decide(q, SOURCE, Transport::Udp).expect("decided"))
        .collect();
    let mut out = Vec::with_capacity(4096);
    g.bench_function("encode (hickory records)", |b| {
        b.iter(|| {
            for d in &decisions {
                black_box(d.response.encode(d.size_limit, &mut out));
            }
        })
    });
    g.bench_function("strict: decide + encode", |b| {
        b.iter(|| {
            for q in &queries {
                if let Some(d) = state.decide(black_box(q), SOURCE, Transport::Udp) {
                    black_box(d.response.encode(d.size_limit, &mut out));
                }
            }
        })
    });
    let mut cache = AnswerCache::default();
    g.bench_function("udp: prepared answer", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(state.answer(
                    black_box(q),
                    SOURCE,
                    Transport::Udp,
                    Some(&mut cache),
                    &mut out,
                ));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
