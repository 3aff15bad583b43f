//! Arbitrary bytes as a DNS query, through the one entry point the listeners use,
//! `Responder::answer`: over UDP with an answer cache (prepared answers first, as the UDP
//! workers call it) and without one (the strict path alone), and over TCP, against the
//! repository's own zones/ and geoip/ (geoline.toml).
//!
//! The first byte picks the client address (mainland, abroad, documentation, IPv6); the
//! rest is the message. The oracle, for every response: it decodes with hickory-proto, its
//! ID is the query's, QR is set, the question is the query's (names compared without
//! regard to case), a UDP response fits the requester's size, and the prepared (fast) path
//! agrees with the strict (slow) path on flags, rcode and the answer and authority sections.

#![no_main]

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use geoline::config::Config;
use geoline::internal::AnswerCache;
use geoline::internal::Responder;
use geoline::internal::Live;
use geoline::internal::Transport;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use libfuzzer_sys::fuzz_target;

const MAX_UDP_PAYLOAD: u16 = 1232;

static STATE: LazyLock<Responder> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = Config::load(&root.join("geoline.toml")).expect("geoline.toml loads");
    let loaded = geoline::server::load(&config).expect("zones and database load");
    // No rate limiting: it keeps state from one input to the next.
    Responder::new(
        Arc::new(Live::new(loaded.zones, loaded.classifier)),
        MAX_UDP_PAYLOAD,
        None,
    )
});

/// Mainland (the shipped database's CNNIC block), abroad, a documentation address, and
/// the same two kinds over IPv6.
const SOURCES: [&str; 5] = [
    "1.2.4.8",
    "8.8.8.8",
    "192.0.2.1",
    "2001:da8::1",
    "2001:4860::1",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, query)) = data.split_first() else {
        return;
    };
    let source: IpAddr = SOURCES[usize::from(pick) % SOURCES.len()]
        .parse()
        .expect("address");
    let state = &*STATE;

    let mut slow_bytes = Vec::new();
    let slow = state.answer(query, source, Transport::Udp, None, &mut slow_bytes);
    if slow.is_some() {
        check(query, &slow_bytes, Some(udp_limit(query)));
    }

    // Twice on one cache: the first answer prepares the entry, the second is served from it.
    let mut cache = AnswerCache::new(8);
    for _ in 0..2 {
        let mut out = Vec::new();
        let fast = state.answer(query, source, Transport::Udp, Some(&mut cache), &mut out);
        assert_eq!(
            fast.is_some(),
            slow.is_some(),
            "the cache and the strict path disagree on answering at all"
        );
        if let (Some(fast), Some(slow)) = (fast, slow) {
            check(query, &out, Some(udp_limit(query)));
            assert_eq!(fast.truncated, slow.truncated, "TC differs");
            same_answer(&out, &slow_bytes);
        }
    }

    let mut out = Vec::new();
    if let Some(outcome) = state.answer(query, source, Transport::Tcp, None, &mut out) {
        assert!(!outcome.truncated, "a TCP response was truncated");
        check(query, &out, None);
    }
});

/// The most a UDP response to `query` may take: 512 without EDNS, else the requester's
/// size (at least 512) up to what geoline advertises. A query hickory cannot read gets
/// only the advertised bound.
fn udp_limit(query: &[u8]) -> usize {
    match Message::from_vec(query) {
        Ok(m) => match &m.edns {
            Some(edns) => edns.max_payload().clamp(512, MAX_UDP_PAYLOAD).into(),
            None => 512,
        },
        Err(_) => MAX_UDP_PAYLOAD.into(),
    }
}

fn check(query: &[u8], response: &[u8], limit: Option<usize>) {
    if let Some(limit) = limit {
        assert!(
            response.len() <= limit,
            "{} bytes over UDP, limit {limit}",
            response.len()
        );
    }
    let decoded = Message::from_vec(response)
        .unwrap_or_else(|e| panic!("response does not decode ({e}): {response:02x?}"));
    assert!(query.len() >= 2, "answered a query without an ID");
    assert_eq!(
        decoded.metadata.id,
        u16::from_be_bytes([query[0], query[1]]),
        "ID not echoed"
    );
    assert_eq!(
        decoded.metadata.message_type,
        MessageType::Response,
        "QR clear"
    );
    assert!(decoded.queries.len() <= 1, "more than one question");
    let asked = first_question(query);
    if let Some(echoed) = decoded.queries.first() {
        // hickory's Name equality ignores ASCII case, as DNS does.
        assert_eq!(Some(echoed), asked.as_ref(), "question not echoed");
    } else if matches!(
        decoded.metadata.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    ) {
        panic!("an answer without its question");
    }
}

/// The query's first question, if the header says there is one and it reads.
fn first_question(query: &[u8]) -> Option<Query> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) == 0 {
        return None;
    }
    let mut decoder = BinDecoder::new(query);
    decoder.read_slice(12).ok()?;
    Query::read(&mut decoder).ok()
}

/// The prepared path and the strict one give the same flags, rcode and records.
fn same_answer(fast: &[u8], slow: &[u8]) {
    let (Ok(f), Ok(s)) = (Message::from_vec(fast), Message::from_vec(slow)) else {
        panic!("a response does not decode");
    };
    assert_eq!(f.metadata, s.metadata, "header differs");
    assert_eq!(records(&f.answers), records(&s.answers), "answers differ");
    assert_eq!(
        records(&f.authorities),
        records(&s.authorities),
        "authority differs"
    );
    assert_eq!(f.edns.is_some(), s.edns.is_some(), "OPT presence differs");
}

/// Records as sorted text, owner names lower-cased (the prepared path spells them as the
/// zone does, the strict path may echo the query's case).
fn records(section: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut out: Vec<String> = section
        .iter()
        .map(|r| r.to_string().to_ascii_lowercase())
        .collect();
    out.sort();
    out
}
