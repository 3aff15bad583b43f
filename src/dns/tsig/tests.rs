//! TSIG against vectors computed independently (python3's `hmac` and `hashlib`, from the
//! RFC 8945 digest layout written out by hand in /tmp/tsigvec/gen.py, reproduced in the
//! comments below): a request's MAC, the response's, a TCP stream's, BADTIME's; then
//! every refusal the RFC prescribes.

use hickory_proto::rr::Name;

use super::record::{self, Fields, Found};
use super::reject;
use super::*;

/// `www.example.com. A IN`, ID 0x1234, RD.
const REQ: &str = "12340100000100000000000003777777076578616d706c6503636f6d0000010001";
/// The answer: QR AA RD, `www.example.com. 300 A 192.0.2.1` (owner a pointer).
const RESP: &str = "12348500000100010000000003777777076578616d706c6503636f6d0000010001c00c000100010000012c0004c0000201";
/// Two more messages of a stream: `a.example.com. A 192.0.2.2`, `b.example.com. A 192.0.2.3`.
const M2: &str =
    "1234840000000001000000000161076578616d706c6503636f6d00000100010000012c0004c0000202";
const M3: &str =
    "1234840000000001000000000162076578616d706c6503636f6d00000100010000012c0004c0000203";
/// The request's time signed.
const T: u64 = 1_700_000_000;
const SECRET: &[u8] = b"secret-secret-secret-secret-1234";

/// Per algorithm: the request's MAC (signed at T); the response's (at T+1, over the
/// request's MAC); a stream signed every 2 messages: the third's (at T+2, over the
/// response's MAC, M2 and M3, then the timers only); a stream signed every message: the
/// second's (at T+2); the BADTIME response's (at T, other data T+1000).
const VECTORS: [(Algorithm, [&str; 5]); 6] = [
    (
        Algorithm::HmacMd5,
        [
            "e2051ad7dde2b38fd71d895d74509a31",
            "e756666f52b6fd0f2a86a912571bf0a6",
            "61132fb4eae19823f527c2d094269050",
            "1aa5ac1e4c89edf94ced17aeb7d8ad32",
            "5c44d0e4587242b84a60042e75b72e8c",
        ],
    ),
    (
        Algorithm::HmacSha1,
        [
            "2c3ad5110ae034f38789a50d71d88def593db25a",
            "01b17c0e3d68d06a9101a9089fba5f0418181d37",
            "6b28db4b56b7501b44977910e51387ca04266f02",
            "0e03f34f5eca7f3013c8c1300ee97abfa38e8481",
            "70489c72916a29e41afafb0f67bb27ffc9e41545",
        ],
    ),
    (
        Algorithm::HmacSha224,
        [
            "71ba7d42ce456e4f480fc268ce45c082d2fdb3a2345192dab1caf86a",
            "e6a7c8f27aa88d71b1439b81c4513b4473d70f101aca5baa21c773cb",
            "8e6abbbac1d4e93735f6eb4627b1d59a9789992eedaa0fbe409a59f6",
            "4150166e32b5481cabedb7d716916f7f7a84f7f9a96ca2917aec5aa7",
            "d3eec41518b5e00aac9f5da23630b98c2be137df242b5f2b8b9d924c",
        ],
    ),
    (
        Algorithm::HmacSha256,
        [
            "c1069163c1fc9336edbb33a1c216c98fa5d863e03000c7add12100ff24faf287",
            "d33d7de45aeb4a694d6ddcbba0633224ee5772eda625ee8346149762f9174a91",
            "1b7ff9f540dbcb05f8d5cd6211fea8b2b7a8ddeffdbab94cbc03cbc2761d9a06",
            "3ebb769d95479b29381f9b933c8cd4b589ee55687b1781ead8a8c692ba2d6ad7",
            "51a5942ad645ca613b6fef7b408394393e9e915ea89f41c36adab623bcf65328",
        ],
    ),
    (
        Algorithm::HmacSha384,
        [
            "1b5aaebe2c09200c2f89658373598500e4aff82245cd7e5e11a91d39f89aa0f9cb929394d229e78423394917d98749e6",
            "3e41789cb55d1a340b1ad2108eb8393ff0ebebf321ee26a2c3c79950a25c81aa8c5d0617af85140b22bbd401e65ae8d4",
            "5166319c19502b4c079eb39b343732ea05b30dded5a2d63ff873913a7ae3e99620060620d044c7670f6080c603bd759b",
            "127b24e4d641086ad09cf25d2502867645764f926ff7e200b0cb3d0264742ed2216d6d27721f6df54a04f7d40458b301",
            "a65a7220eaa6c54ce550d2610ea97b4b47762e21144ece27efe3694b5344429802ca34bac477fd6ac86132d28cf1c8df",
        ],
    ),
    (
        Algorithm::HmacSha512,
        [
            "61d1dc596092e5951263f620265a8eb61048c980cfad3ae666e3930b45eaabc58f6fc2c77f06cd2c61893dc810f64cd1f2e3a6bd96853feacc06688c85ff5672",
            "546bd4a4e436eed54909dca82e26c729cbeb68bab370814d7c883a536b665ea40d01ba565250bde3961d7e4066dbe459fcc398d5321c2582afbdd9748ccffbb8",
            "c41d7591f5fba6c0e0fc53ad08e0da83320a1a8596a7dbc042bac9e4896a317fe0c815f9be891e0d7ae055f121411d41fc9af292f0115d963b8f68365fb7eef3",
            "0b630af0e2db06c12ba9d2847c352800b6d40b1d4607018d7c7ad7d0ac9476b2e1e9865b8238b45fd30adaa4b1703a97d701d8f91014b014cf72d894913066a2",
            "d724b0a73862d9399f1d913e710731b020c7d704d57bdc2eafb79fbe55a60147b9fa445ba7bdf0c4871dcdb593840babae090cbd26b1aedaa4c702ad123083eb",
        ],
    ),
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(algorithm: Algorithm) -> Key {
    let name = Name::from_ascii("Test.Key.").expect("name");
    Key::new(name, algorithm, Secret::new(SECRET.to_vec())).expect("key")
}

fn ring(algorithm: Algorithm) -> KeyRing {
    KeyRing::new([key(algorithm)]).expect("ring")
}

/// The TSIG record of a signed message: its fields as read back.
fn tsig_of(message: &[u8]) -> (usize, record::TsigRecord<'_>) {
    match record::scan(message).tsig {
        Found::Last { start, record } => (start, record),
        other => panic!("no TSIG: {other:?}"),
    }
}

/// REQ signed with `mac` (any length) as the key `algorithm`'s at T.
fn request_with_mac(algorithm: Algorithm, mac: &[u8]) -> Vec<u8> {
    let mut m = hex(REQ);
    let k = key(algorithm);
    let fields = Fields {
        key_name: k.wire_name(),
        algorithm: algorithm.wire_name(),
        time_signed: T,
        fudge: FUDGE,
        original_id: 0x1234,
        error: 0,
        other: &[],
    };
    record::append(&mut m, &fields, mac);
    m
}

fn verified(algorithm: Algorithm, now: u64) -> Verified {
    let mut request = hex(REQ);
    sign_request(&key(algorithm), &mut request, T);
    match check(&ring(algorithm), &request, || now) {
        Checked::Verified(v) => v,
        other => panic!("{algorithm}: {other:?}"),
    }
}

#[test]
fn request_macs_match_the_independent_vectors() {
    for (algorithm, [request_mac, ..]) in VECTORS {
        let mut request = hex(REQ);
        let returned = sign_request(&key(algorithm), &mut request, T);
        let (start, tsig) = tsig_of(&request);
        assert_eq!(start, hex(REQ).len());
        assert_eq!(to_hex(tsig.mac), request_mac, "{algorithm}");
        assert_eq!(returned, tsig.mac);
        assert_eq!(tsig.key_name, b"\x04test\x03key\x00");
        assert_eq!(tsig.algorithm, algorithm.wire_name());
        assert_eq!(
            (tsig.time_signed, tsig.fudge, tsig.original_id),
            (T, 300, 0x1234)
        );
        // The header counts the record.
        assert_eq!(request[11], 1);
    }
}

#[test]
fn a_verified_request_gives_its_key_its_message_and_a_signed_response() {
    for (algorithm, [_, response_mac, ..]) in VECTORS {
        let verified = verified(algorithm, T + 1);
        assert_eq!(verified.message(), hex(REQ), "the TSIG record is gone");
        assert_eq!(verified.key().name().to_ascii(), "Test.Key.");
        let mut response = hex(RESP);
        verified.signer().sign(&mut response, T + 1);
        let (start, tsig) = tsig_of(&response);
        assert_eq!(
            response[..start],
            counted(hex(RESP))[..],
            "{algorithm}: message unchanged"
        );
        assert_eq!(response.len() - start, verified.signer().record_len());
        assert_eq!(to_hex(tsig.mac), response_mac, "{algorithm}");
        assert_eq!(
            (tsig.time_signed, tsig.error, tsig.other),
            (T + 1, 0, &[][..])
        );
    }
}

#[test]
fn a_stream_signed_every_second_message_chains_the_running_digest() {
    for (algorithm, [_, response_mac, third_mac, ..]) in VECTORS {
        let verified = verified(algorithm, T);
        let mut stream = verified.signer().stream(2);
        let (mut m1, mut m2, mut m3) = (hex(RESP), hex(M2), hex(M3));
        assert!(
            stream.next(&mut m1, false, T + 1),
            "the first is always signed"
        );
        assert_eq!(to_hex(tsig_of(&m1).1.mac), response_mac, "{algorithm}");
        assert!(!stream.next(&mut m2, false, T + 2));
        assert_eq!(m2, hex(M2), "unsigned messages go out as they are");
        assert!(
            stream.next(&mut m3, true, T + 2),
            "the last is always signed"
        );
        let (_, tsig) = tsig_of(&m3);
        assert_eq!(to_hex(tsig.mac), third_mac, "{algorithm}");
        assert_eq!(tsig.time_signed, T + 2);
    }
}

#[test]
fn a_stream_signed_every_message_chains_each_to_the_previous() {
    for (algorithm, [_, response_mac, _, second_mac, _]) in VECTORS {
        let verified = verified(algorithm, T);
        let mut stream = verified.signer().stream(1);
        let (mut m1, mut m2) = (hex(RESP), hex(M2));
        assert!(stream.next(&mut m1, false, T + 1));
        assert_eq!(to_hex(tsig_of(&m1).1.mac), response_mac, "{algorithm}");
        assert!(stream.next(&mut m2, false, T + 2));
        assert_eq!(to_hex(tsig_of(&m2).1.mac), second_mac, "{algorithm}");
    }
}

#[test]
fn a_stream_signs_at_least_every_hundredth_message() {
    let verified = verified(Algorithm::HmacSha256, T);
    let mut stream = verified.signer().stream(1000);
    let signed: Vec<bool> = (0..202)
        .map(|_| stream.next(&mut hex(M2), false, T))
        .collect();
    let at: Vec<usize> = (0..202).filter(|&i| signed[i]).collect();
    assert_eq!(at, [0, 100, 200]);
}

/// The header and question of a rejection of REQ: QR, RD, the rcode, the question.
fn rejection_head(rcode: u8) -> Vec<u8> {
    let mut head = hex(REQ);
    head[2] = 0x81;
    head[3] = rcode;
    head
}

/// `head` with one record counted in the additional section (the TSIG appended after it).
fn counted(mut head: Vec<u8>) -> Vec<u8> {
    head[11] += 1;
    head
}

fn rejected(keys: &KeyRing, request: &[u8], now: u64) -> (Rejection, Vec<u8>) {
    let Checked::Rejected(rejection) = check(keys, request, || now) else {
        panic!("not rejected");
    };
    let mut out = Vec::new();
    reject::write(&rejection, request, 1232, &mut out).expect("a response");
    (rejection, out)
}

#[test]
fn badtime_is_signed_with_the_request_time_and_the_server_time_in_other_data() {
    for (algorithm, [request_mac, .., badtime_mac]) in VECTORS {
        let request = request_with_mac(algorithm, &hex(request_mac));
        // 301 s either way is outside the fudge; 300 is inside.
        assert!(matches!(
            check(&ring(algorithm), &request, || T + 300),
            Checked::Verified(_)
        ));
        assert!(matches!(
            check(&ring(algorithm), &request, || T - 300),
            Checked::Verified(_)
        ));
        let (rejection, out) = rejected(&ring(algorithm), &request, T + 1000);
        assert_eq!(rejection.tsig_error(), Some(error::BADTIME));
        let (start, tsig) = tsig_of(&out);
        assert_eq!(out[..start], counted(rejection_head(9))[..], "{algorithm}");
        assert_eq!(tsig.error, 18);
        assert_eq!(tsig.time_signed, T);
        assert_eq!(tsig.other, record::time48(T + 1000));
        assert_eq!(to_hex(tsig.mac), badtime_mac, "{algorithm}");
        assert!(matches!(
            check(&ring(algorithm), &request, || T - 301),
            Checked::Rejected(_)
        ));
    }
}

#[test]
fn badkey_and_badsig_are_unsigned() {
    let alg = Algorithm::HmacSha256;
    let good = hex(VECTORS[3].1[0]);
    let request = request_with_mac(alg, &good);
    let other_key = KeyRing::new([Key::new(
        Name::from_ascii("other.key.").expect("name"),
        alg,
        Secret::new(SECRET.to_vec()),
    )
    .expect("key")])
    .expect("ring");
    let same_name_other_algorithm = ring(Algorithm::HmacSha512);
    let mut bad_mac = good.clone();
    bad_mac[31] ^= 0x80;
    let wrong_secret = KeyRing::new([Key::new(
        Name::from_ascii("test.key.").expect("name"),
        alg,
        Secret::new(b"not the secret".to_vec()),
    )
    .expect("key")])
    .expect("ring");
    let cases = [
        (KeyRing::default(), request.clone(), error::BADKEY),
        (other_key, request.clone(), error::BADKEY),
        (same_name_other_algorithm, request.clone(), error::BADKEY),
        (ring(alg), request_with_mac(alg, &bad_mac), error::BADSIG),
        (wrong_secret, request.clone(), error::BADSIG),
    ];
    for (i, (keys, request, expect)) in cases.into_iter().enumerate() {
        let (rejection, out) = rejected(&keys, &request, T);
        assert_eq!(rejection.tsig_error(), Some(expect), "case {i}");
        let (start, tsig) = tsig_of(&out);
        assert_eq!(out[..start], counted(rejection_head(9))[..], "case {i}");
        assert_eq!(tsig.error, expect);
        assert!(tsig.mac.is_empty(), "case {i}: unsigned");
        assert_eq!(tsig.key_name, b"\x04test\x03key\x00");
        assert_eq!((tsig.time_signed, tsig.original_id), (T, 0x1234));
        assert_eq!(rejection.key_name().as_deref(), Some("test.key."));
    }
}

#[test]
fn truncation_follows_rfc_8945_5_2_2_1() {
    let alg = Algorithm::HmacSha256;
    let full = hex(VECTORS[3].1[0]);
    // 16 bytes (half of SHA-256): allowed by the RFC, but the key wants the full MAC.
    let truncated = request_with_mac(alg, &full[..16]);
    let (rejection, out) = rejected(&ring(alg), &truncated, T);
    assert_eq!(rejection.tsig_error(), Some(error::BADTRUNC));
    let (_, tsig) = tsig_of(&out);
    assert_eq!((tsig.error, tsig.mac.len()), (22, 32), "BADTRUNC is signed");
    // A key that accepts 128-bit MACs verifies it, and answers with 16 bytes too.
    let lenient = Key::truncated(
        Name::from_ascii("test.key.").expect("name"),
        alg,
        Secret::new(SECRET.to_vec()),
        128,
    )
    .expect("key");
    let Checked::Verified(v) = check(&KeyRing::new([lenient]).expect("ring"), &truncated, || T)
    else {
        panic!("a permitted truncation verifies");
    };
    let mut response = hex(RESP);
    v.signer().sign(&mut response, T);
    assert_eq!(tsig_of(&response).1.mac.len(), 16);
    // A wrong truncated MAC is still BADSIG.
    let mut wrong = full[..16].to_vec();
    wrong[15] ^= 1;
    let (rejection, _) = rejected(&ring(alg), &request_with_mac(alg, &wrong), T);
    assert_eq!(rejection.tsig_error(), Some(error::BADSIG));
    // Shorter than half, longer than the output: FORMERR without TSIG.
    for mac in [&full[..15], &[full.as_slice(), &[0]].concat()[..]] {
        let (rejection, out) = rejected(&ring(alg), &request_with_mac(alg, mac), T);
        assert_eq!(rejection.tsig_error(), None);
        assert_eq!(
            out,
            rejection_head(1),
            "FORMERR, question echoed, nothing else"
        );
    }
}

#[test]
fn a_forwarded_request_verifies_with_its_original_id() {
    let alg = Algorithm::HmacSha1;
    let mut request = request_with_mac(alg, &hex(VECTORS[1].1[0]));
    request[0] = 0x77;
    let Checked::Verified(v) = check(&ring(alg), &request, || T) else {
        panic!("verifies with the original ID");
    };
    assert_eq!(v.message()[..2], [0x77, 0x34], "the received ID is kept");
}

#[test]
fn a_tsig_that_is_not_last_is_formerr_with_opt_echoed() {
    let mut request = request_with_mac(Algorithm::HmacSha256, &hex(VECTORS[3].1[0]));
    // OPT after the TSIG, DO set.
    request.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
    record::add_to_additional_count(&mut request, 1);
    let (rejection, out) = rejected(&ring(Algorithm::HmacSha256), &request, T);
    assert_eq!(rejection.tsig_error(), None);
    let mut expect = rejection_head(1);
    expect[11] = 1;
    expect.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    assert_eq!(out, expect);
}

#[test]
fn the_quick_reader_never_takes_a_signed_query() {
    use crate::dns::wire::query::QuickQuery;
    let unsigned = hex(REQ);
    assert!(QuickQuery::parse(&unsigned).is_some());
    let mut signed = unsigned.clone();
    sign_request(&key(Algorithm::HmacSha256), &mut signed, T);
    assert!(QuickQuery::parse(&signed).is_none());
    let mut with_opt =
        crate::dns::wire::tests::query(0x1234, "www.example.com", 1, Some((1232, 0, &[])));
    assert!(QuickQuery::parse(&with_opt).is_some());
    sign_request(&key(Algorithm::HmacSha256), &mut with_opt, T);
    assert!(QuickQuery::parse(&with_opt).is_none());
}

/// One response to a request geoline signed, checked as geoline checks it (the first and
/// only message of an answer).
fn answer(
    key: &Key,
    request_mac: &[u8],
    response: &[u8],
    now: u64,
) -> Result<Vec<u8>, AnswerTsigError> {
    response::AnswerVerifier::new(std::sync::Arc::new(key.clone()), request_mac.to_vec())
        .next(response, now)
}

/// A response to REQ signed at `at` by a server that verified REQ signed with `key(alg)`,
/// and the request's MAC.
fn signed_response(alg: Algorithm, at: u64) -> (Vec<u8>, Vec<u8>) {
    let mut request = hex(REQ);
    let request_mac = sign_request(&key(alg), &mut request, T);
    let Checked::Verified(v) = check(&ring(alg), &request, || T) else {
        panic!("verifies");
    };
    let mut response = hex(RESP);
    v.signer().sign(&mut response, at);
    (response, request_mac)
}

#[test]
fn a_client_takes_a_response_signed_over_its_request_mac() {
    for (alg, _) in VECTORS {
        let (response, request_mac) = signed_response(alg, T + 1);
        let unsigned = answer(&key(alg), &request_mac, &response, T + 2).expect("verifies");
        assert_eq!(
            unsigned,
            hex(RESP),
            "{alg}: the TSIG record is gone, the count lowered"
        );
    }
}

#[test]
fn a_client_refuses_an_unsigned_forged_or_misdirected_response() {
    let alg = Algorithm::HmacSha256;
    let k = key(alg);
    let (response, request_mac) = signed_response(alg, T);
    // Unsigned: an rcode alone is not taken.
    assert_eq!(
        answer(&k, &request_mac, &hex(RESP), T),
        Err(AnswerTsigError::Unsigned("its first message is not signed"))
    );
    // A byte of the answer changed (192.0.2.1 -> 192.0.2.9).
    let (start, _) = tsig_of(&response);
    let mut forged = response.clone();
    forged[start - 1] = 9;
    assert_eq!(
        answer(&k, &request_mac, &forged, T),
        Err(AnswerTsigError::BadSig)
    );
    // Signed over another request's MAC (a replayed response).
    let mut other_mac = request_mac.clone();
    other_mac[0] ^= 1;
    assert_eq!(
        answer(&k, &other_mac, &response, T),
        Err(AnswerTsigError::BadSig)
    );
    // Verified with another secret under the same name.
    let wrong = Key::new(k.name().clone(), alg, Secret::new(b"another".to_vec())).expect("key");
    assert_eq!(
        answer(&wrong, &request_mac, &response, T),
        Err(AnswerTsigError::BadSig)
    );
    // Another key's name or algorithm.
    let other = Key::new(
        Name::from_ascii("other.key.").expect("name"),
        alg,
        Secret::new(SECRET.to_vec()),
    )
    .expect("key");
    assert_eq!(
        answer(&other, &request_mac, &response, T),
        Err(AnswerTsigError::OtherKey)
    );
    // Outside the fudge of this clock.
    let e = answer(&k, &request_mac, &response, T + 301).expect_err("too late");
    assert_eq!(e, AnswerTsigError::BadTime(301));
    assert_eq!(
        e.to_string(),
        "the answer was signed 301 s away from this server's clock (BADTIME)"
    );
    // A TSIG record followed by another record.
    let mut misplaced = response.clone();
    misplaced.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    record::add_to_additional_count(&mut misplaced, 1);
    assert!(matches!(
        answer(&k, &request_mac, &misplaced, T),
        Err(AnswerTsigError::Malformed(_))
    ));
}

#[test]
fn a_client_reads_the_servers_tsig_refusals() {
    let alg = Algorithm::HmacSha256;
    // The server does not know the key: NOTAUTH with an unsigned BADKEY.
    let mut request = hex(REQ);
    let request_mac = sign_request(&key(alg), &mut request, T);
    let (_, out) = rejected(&KeyRing::default(), &request, T);
    let e = answer(&key(alg), &request_mac, &out, T).expect_err("refused");
    assert_eq!(e, AnswerTsigError::Refused(error::BADKEY));
    assert_eq!(
        e.to_string(),
        "the primary refused the request's signature (TSIG error 17)"
    );
    // The server's clock is far off: a BADTIME signed over the request's MAC.
    let (_, out) = rejected(&ring(alg), &request, T + 1000);
    assert_eq!(
        answer(&key(alg), &request_mac, &out, T),
        Err(AnswerTsigError::Refused(error::BADTIME))
    );
}
