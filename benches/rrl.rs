//! Response rate limiting, in nanoseconds per response: the limiter alone (a client
//! under its limit, a flood over it with slip 0 and with slip 2), and the whole UDP
//! answer from prepared answers with limiting off and on. Run with
//! `cargo bench --bench rrl`; the clock is read once per response, as the server does.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use geoline::config::{Config, RrlConfig};
use geoline::internal::AnswerCache;
use geoline::internal::Live;
use geoline::internal::Responder;
use geoline::internal::{ResponseKind, Rrl, Subject, Transport, now_secs};

const WWW: &[u8] = b"\x03www\x07example\x03com\x00";

fn subject() -> Subject<'static> {
    Subject {
        kind: ResponseKind::Answer,
        zone: Some(&WWW[4..]),
        name: WWW,
        qtype: 1,
    }
}

fn limiter(c: &mut Criterion) {
    let mut g = c.benchmark_group("rrl per response");
    g.throughput(criterion::Throughput::Elements(1));
    let subject = subject();

    // 65536 clients in 256 networks, each far under its limit.
    let rrl = Rrl::new(&RrlConfig {
        responses_per_second: 1_000_000,
        ..RrlConfig::default()
    });
    let mut n: u32 = 0;
    g.bench_function("check: under the limit", |b| {
        b.iter(|| {
            n = n.wrapping_add(0x9e37);
            let source = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n & 0xffff)));
            black_box(rrl.check(black_box(source), &subject, now_secs()))
        })
    });
    let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for slip in [0, 2] {
        let rrl = Rrl::new(&RrlConfig {
            responses_per_second: 1,
            slip,
            ..RrlConfig::default()
        });
        g.bench_function(format!("check: flood over the limit, slip {slip}"), |b| {
            b.iter(|| black_box(rrl.check(black_box(source), &subject, now_secs())))
        });
    }
    g.finish();
}

fn state(rrl: Option<RrlConfig>) -> Responder {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("geoline.toml")).expect("geoline.toml loads");
    let loaded = geoline::server::load(&config).expect("zones and database load");
    Responder::new(
        Arc::new(Live::new(loaded.zones, loaded.classifier)),
        1232,
        rrl.as_ref(),
    )
}

fn query(name: &str) -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    b
}

fn answer_udp(c: &mut Criterion) {
    let mut g = c.benchmark_group("udp: prepared answer");
    g.throughput(criterion::Throughput::Elements(1));
    let q = query("www.example.com");
    let mut out = Vec::with_capacity(4096);
    for (label, rrl) in [
        ("rrl off", None),
        (
            "rrl on, under the limit",
            Some(RrlConfig {
                responses_per_second: 1_000_000,
                ..RrlConfig::default()
            }),
        ),
    ] {
        let state = state(rrl);
        let mut cache = AnswerCache::default();
        let mut n: u32 = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                n = n.wrapping_add(0x9e37);
                let source = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n & 0xffff)));
                black_box(state.answer(
                    black_box(&q),
                    source,
                    Transport::Udp,
                    Some(&mut cache),
                    &mut out,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, limiter, answer_udp);
criterion_main!(benches);
