//! The test side of TSIG: signs requests and checks signed responses, written from RFC
//! 8945 independently of geoline's `dns::tsig` and pinned by `tests/tsig.rs` against
//! vectors computed with python3's `hmac` module, so that a bug shared by both sides
//! cannot make the end-to-end tests pass.

#![allow(dead_code)]

use hmac::{KeyInit, Mac};

/// The secret of the reload tests' keys, and as a configuration writes it (base64).
pub const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
pub const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

/// An UPDATE (unsigned) of `zone` adding TXT `value` at each of `owners`, TTL 120.
pub fn txt_update(id: u16, zone: &str, owners: &[&str], value: &str) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
    let name = |s: &str| Name::from_ascii(s).expect("name");
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(name(zone), RecordType::SOA));
    for owner in owners {
        let mut record =
            Record::from_rdata(name(owner), 120, RData::TXT(TXT::new(vec![value.into()])));
        record.dns_class = DNSClass::IN;
        m.add_authority(record);
    }
    m.to_vec().expect("encodes")
}

/// A key as the test client holds it.
#[derive(Clone, Debug)]
pub struct TestKey {
    /// Dotted, without the final dot.
    pub name: String,
    /// The algorithm's name on the wire, without the final dot.
    pub algorithm: &'static str,
    pub secret: Vec<u8>,
}

/// The six algorithms: (name in configuration files, name on the wire, MAC length).
pub const ALGORITHMS: [(&str, &str, usize); 6] = [
    ("hmac-md5", "hmac-md5.sig-alg.reg.int", 16),
    ("hmac-sha1", "hmac-sha1", 20),
    ("hmac-sha224", "hmac-sha224", 28),
    ("hmac-sha256", "hmac-sha256", 32),
    ("hmac-sha384", "hmac-sha384", 48),
    ("hmac-sha512", "hmac-sha512", 64),
];

impl TestKey {
    pub fn new(name: &str, algorithm: &'static str, secret: &[u8]) -> TestKey {
        TestKey {
            name: name.trim_end_matches('.').to_string(),
            algorithm,
            secret: secret.to_vec(),
        }
    }

    /// HMAC of `data` with this key's algorithm and secret.
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(secret: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = <M as KeyInit>::new_from_slice(secret).expect("any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        let s = &self.secret;
        match self.algorithm {
            "hmac-md5.sig-alg.reg.int" => run::<hmac::Hmac<md5::Md5>>(s, data),
            "hmac-sha1" => run::<hmac::Hmac<sha1::Sha1>>(s, data),
            "hmac-sha224" => run::<hmac::Hmac<sha2::Sha224>>(s, data),
            "hmac-sha256" => run::<hmac::Hmac<sha2::Sha256>>(s, data),
            "hmac-sha384" => run::<hmac::Hmac<sha2::Sha384>>(s, data),
            "hmac-sha512" => run::<hmac::Hmac<sha2::Sha512>>(s, data),
            other => panic!("unknown algorithm {other}"),
        }
    }
}

/// A dotted name in wire form, lower-cased.
pub fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out
}

fn time48(t: u64) -> [u8; 6] {
    let b = t.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The TSIG variables (RFC 8945 4.3.3).
fn variables(key: &TestKey, time: u64, fudge: u16, error: u16, other: &[u8]) -> Vec<u8> {
    let mut v = wire(&key.name);
    v.extend_from_slice(&255u16.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend(wire(key.algorithm));
    v.extend_from_slice(&time48(time));
    v.extend_from_slice(&fudge.to_be_bytes());
    v.extend_from_slice(&error.to_be_bytes());
    v.extend_from_slice(&(other.len() as u16).to_be_bytes());
    v.extend_from_slice(other);
    v
}

/// The TSIG record for `key` with these fields.
fn record(
    key: &TestKey,
    time: u64,
    fudge: u16,
    mac: &[u8],
    id: u16,
    error: u16,
    other: &[u8],
) -> Vec<u8> {
    let mut rdata = wire(key.algorithm);
    rdata.extend_from_slice(&time48(time));
    rdata.extend_from_slice(&fudge.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac);
    rdata.extend_from_slice(&id.to_be_bytes());
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&(other.len() as u16).to_be_bytes());
    rdata.extend_from_slice(other);
    let mut rr = wire(&key.name);
    rr.extend_from_slice(&250u16.to_be_bytes());
    rr.extend_from_slice(&255u16.to_be_bytes());
    rr.extend_from_slice(&0u32.to_be_bytes());
    rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    rr.extend(rdata);
    rr
}

fn bump_arcount(message: &mut [u8]) {
    let n = u16::from_be_bytes([message[10], message[11]]) + 1;
    message[10..12].copy_from_slice(&n.to_be_bytes());
}

/// The seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `message` signed with `key` at `time` (fudge 300); returns it and the request MAC. The
/// MAC is cut to `mac_len` bytes when given (a truncated MAC).
pub fn sign_truncated(
    message: &[u8],
    key: &TestKey,
    time: u64,
    mac_len: Option<usize>,
) -> (Vec<u8>, Vec<u8>) {
    let id = u16::from_be_bytes([message[0], message[1]]);
    let mut data = message.to_vec();
    data.extend(variables(key, time, 300, 0, &[]));
    let mut mac = key.mac(&data);
    if let Some(len) = mac_len {
        mac.truncate(len);
    }
    let mut signed = message.to_vec();
    signed.extend(record(key, time, 300, &mac, id, 0, &[]));
    bump_arcount(&mut signed);
    (signed, mac)
}

/// `message` signed with `key` at `time`.
pub fn sign(message: &[u8], key: &TestKey, time: u64) -> (Vec<u8>, Vec<u8>) {
    sign_truncated(message, key, time, None)
}

/// A response's TSIG record, read from the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTsig {
    /// Where the record starts.
    pub start: usize,
    pub key_name: Vec<u8>,
    pub algorithm: Vec<u8>,
    pub time: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

fn skip_name(m: &[u8], mut at: usize) -> usize {
    loop {
        let len = m[at];
        if len == 0 {
            return at + 1;
        }
        if len & 0xc0 == 0xc0 {
            return at + 2;
        }
        at += 1 + usize::from(len);
    }
}

/// The TSIG record of `raw` when its last record is one (uncompressed names, as servers
/// write them).
pub fn reply_tsig(raw: &[u8]) -> Option<ReplyTsig> {
    let count = |i: usize| usize::from(u16::from_be_bytes([raw[4 + 2 * i], raw[5 + 2 * i]]));
    let mut at = 12;
    for _ in 0..count(0) {
        at = skip_name(raw, at) + 4;
    }
    let records = count(1) + count(2) + count(3);
    let mut last = None;
    for _ in 0..records {
        let start = at;
        let fixed = skip_name(raw, at);
        let rtype = u16::from_be_bytes([raw[fixed], raw[fixed + 1]]);
        let rdlen = usize::from(u16::from_be_bytes([raw[fixed + 8], raw[fixed + 9]]));
        at = fixed + 10 + rdlen;
        last = Some((start, rtype, fixed + 10));
    }
    assert_eq!(at, raw.len(), "the reply ends after its last record");
    let (start, rtype, rdata) = last?;
    if rtype != 250 {
        return None;
    }
    let key_name = raw[start..skip_name(raw, start)].to_vec();
    let alg_end = skip_name(raw, rdata);
    let mut at = alg_end;
    let mut take = |n: usize| {
        let b = raw[at..at + n].to_vec();
        at += n;
        b
    };
    let time = take(6).iter().fold(0u64, |t, &b| t << 8 | u64::from(b));
    let word = |b: Vec<u8>| u16::from_be_bytes([b[0], b[1]]);
    let fudge = word(take(2));
    let mac_len = usize::from(word(take(2)));
    let mac = take(mac_len);
    let original_id = word(take(2));
    let error = word(take(2));
    let other_len = usize::from(word(take(2)));
    let other = take(other_len);
    Some(ReplyTsig {
        start,
        key_name,
        algorithm: raw[rdata..alg_end].to_vec(),
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// Checks that `raw` is signed by `key` over `request_mac` (RFC 8945 4.3.1); returns its
/// TSIG. Panics with the reason when it is not.
pub fn verify_reply(raw: &[u8], key: &TestKey, request_mac: &[u8]) -> ReplyTsig {
    let tsig = reply_tsig(raw).expect("the reply carries a TSIG record");
    assert_eq!(tsig.key_name, wire(&key.name), "key name");
    assert_eq!(tsig.algorithm, wire(key.algorithm), "algorithm");
    let mut unsigned = raw[..tsig.start].to_vec();
    let ar = u16::from_be_bytes([unsigned[10], unsigned[11]]) - 1;
    unsigned[10..12].copy_from_slice(&ar.to_be_bytes());
    unsigned[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let mut data = (request_mac.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(request_mac);
    data.extend(unsigned);
    data.extend(variables(
        key,
        tsig.time,
        tsig.fudge,
        tsig.error,
        &tsig.other,
    ));
    let expect = key.mac(&data);
    assert!(!tsig.mac.is_empty(), "the reply is signed");
    assert_eq!(
        tsig.mac,
        expect[..tsig.mac.len()],
        "the reply's MAC verifies"
    );
    tsig
}

/// Checks that each message of a TCP stream answering one request (a zone transfer) is
/// signed by `key` (RFC 8945 5.3.1: the first over the request's MAC, each later one over
/// the previous MAC, the message and the timers only); every message must be signed.
/// Returns their TSIG records.
pub fn verify_stream(messages: &[Vec<u8>], key: &TestKey, request_mac: &[u8]) -> Vec<ReplyTsig> {
    let mut out = Vec::new();
    let mut prior = request_mac.to_vec();
    for (i, raw) in messages.iter().enumerate() {
        if i == 0 {
            let tsig = verify_reply(raw, key, request_mac);
            prior = tsig.mac.clone();
            out.push(tsig);
            continue;
        }
        let tsig = reply_tsig(raw).unwrap_or_else(|| panic!("message {i} carries a TSIG record"));
        let mut unsigned = raw[..tsig.start].to_vec();
        let ar = u16::from_be_bytes([unsigned[10], unsigned[11]]) - 1;
        unsigned[10..12].copy_from_slice(&ar.to_be_bytes());
        unsigned[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
        let mut data = (prior.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&prior);
        data.extend(unsigned);
        data.extend_from_slice(&time48(tsig.time));
        data.extend_from_slice(&tsig.fudge.to_be_bytes());
        let expect = key.mac(&data);
        assert_eq!(
            tsig.mac,
            expect[..tsig.mac.len()],
            "message {i}'s MAC verifies"
        );
        prior = tsig.mac.clone();
        out.push(tsig);
    }
    out
}

/// Checks that `raw` is a request signed by `key` (RFC 8945 4.3.1 without a prior MAC):
/// what a NOTIFY from a primary is. Returns its TSIG.
pub fn verify_request(raw: &[u8], key: &TestKey) -> ReplyTsig {
    let tsig = reply_tsig(raw).expect("the request carries a TSIG record");
    assert_eq!(tsig.key_name, wire(&key.name), "key name");
    let mut unsigned = raw[..tsig.start].to_vec();
    let ar = u16::from_be_bytes([unsigned[10], unsigned[11]]) - 1;
    unsigned[10..12].copy_from_slice(&ar.to_be_bytes());
    unsigned[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    unsigned.extend(variables(
        key,
        tsig.time,
        tsig.fudge,
        tsig.error,
        &tsig.other,
    ));
    let expect = key.mac(&unsigned);
    assert_eq!(
        tsig.mac,
        expect[..tsig.mac.len()],
        "the request's MAC verifies"
    );
    tsig
}
