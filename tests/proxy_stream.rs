//! A 100 MB rewritten body streams through with bounded memory.
//!
//! Alone in its test binary: it reads the process's peak RSS, which other tests running in
//! parallel threads would disturb.

mod common;

use bytes::Bytes;
use common::origin::*;
use common::proxy::*;
use http::StatusCode;
use http_body_util::BodyExt;

const TOTAL: usize = 100 << 20;
const PIECE: usize = 64 << 10;

/// A line of /proc/self/status in kB: `VmHWM` (the peak resident size) or `VmRSS`.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} line"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_stream_with_bounded_memory() {
    // One 64 KiB piece, repeated: 256 URLs per piece, one split across every boundary
    // between two pieces (the piece ends in "https://exam" and starts with "ple.com/ ").
    let unit = b"ple.com/ some text https://exam";
    let mut piece = Vec::with_capacity(PIECE);
    while piece.len() + unit.len() <= PIECE {
        piece.extend_from_slice(unit);
    }
    piece.resize(PIECE, b' ');
    let tail = b"https://exam";
    let at = PIECE - tail.len();
    piece[at..].copy_from_slice(tail);
    let count = |b: &[u8]| {
        b.windows(20)
            .filter(|w| w == b"https://example.com/")
            .count()
    };
    let within = count(&piece);
    let across = count(&[piece.as_slice(), piece.as_slice()].concat()) - 2 * within;
    assert_eq!(across, 1, "the test data must split a URL across pieces");
    let piece = Bytes::from(piece);
    let pieces = TOTAL / PIECE;

    let up = origin(move |_req| {
        let piece = piece.clone();
        async move {
            let stream = futures_util::stream::iter(
                (0..pieces)
                    .map(move |_| Ok::<_, BoxError>(hyper::body::Frame::data(piece.clone()))),
            );
            response(
                200,
                &[("content-type", "text/plain")],
                BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream)),
            )
        }
    })
    .await;
    let proxy = start(builder(up).build().expect("proxy")).await;

    // Reset the peak to what is resident now (Linux: "5" > clear_refs).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS");

    let resp = get(proxy, "example.cn", "/big.txt", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let (mut total, mut rewritten, mut carry) = (0usize, 0usize, Vec::new());
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.expect("frame").into_data() else {
            continue;
        };
        total += data.len();
        // Count rewritten URLs across frame boundaries with a small carry-over.
        carry.extend_from_slice(&data);
        rewritten += carry
            .windows(19)
            .filter(|w| w == b"https://example.cn/")
            .count();
        let keep = carry.len().min(18);
        carry.drain(..carry.len() - keep);
    }
    let growth = status_kib("VmHWM").saturating_sub(before);
    eprintln!("peak RSS growth while streaming 100 MiB: {growth} KiB");

    // The URLs inside pieces, plus the one split across each boundary between two pieces,
    // which the proxy must have caught.
    let urls = pieces * within + (pieces - 1) * across;
    assert_eq!(rewritten, urls, "URLs rewritten");
    // Each rewrite is one byte shorter; the final piece ends with a dangling "https://exam".
    assert_eq!(total, TOTAL - urls);
    assert!(
        growth < 16 * 1024,
        "peak RSS grew by {growth} KiB while streaming 100 MiB"
    );
}
