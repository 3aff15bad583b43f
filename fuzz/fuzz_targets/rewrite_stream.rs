//! The streaming host rewriter (src/proxy/rewrite.rs): a body split at arbitrary chunk
//! boundaries must come out exactly as rewriting it whole, and the stream never holds
//! back more than its bound.
//!
//! The first byte says how many of the following bytes are chunk sizes (0 to 15; a size
//! of 0 pushes an empty chunk); the rest is the body, cut by those sizes in turn.

#![no_main]

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use geoline::proxy::mapping::HostMap;
use geoline::proxy::rewrite::Rewriter;
use libfuzzer_sys::fuzz_target;

/// Overlapping origins (`www.example.com` inside `example.com`'s subdomains), a host
/// kept as it is, and replacements of other lengths.
static REWRITER: LazyLock<Arc<Rewriter>> = LazyLock::new(|| {
    let map = HostMap::new([
        ("example.cn", "example.com"),
        ("www.example.cn", "www.example.com"),
        ("s.example.cn", "static.cdn-example.net"),
        ("keep.example.org", "keep.example.org"),
    ])
    .expect("host map");
    Arc::new(Rewriter::new(&map).expect("rewriter"))
});

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, body) = rest.split_at(n);
    let rewriter = &*REWRITER;
    let whole = rewriter.rewrite_all(body);

    let mut stream = rewriter.stream();
    let mut out = Vec::new();
    let mut at = 0;
    let mut turn = 0;
    let progress = sizes.iter().any(|&s| s > 0);
    while at < body.len() {
        let size = if progress {
            usize::from(sizes[turn % sizes.len()])
        } else {
            body.len()
        };
        turn += 1;
        let end = (at + size).min(body.len());
        out.extend_from_slice(&stream.push(Bytes::copy_from_slice(&body[at..end])));
        assert!(
            stream.held() <= rewriter.max_held_back(),
            "held {} > {}",
            stream.held(),
            rewriter.max_held_back()
        );
        at = end;
    }
    out.extend_from_slice(&stream.finish());
    assert_eq!(stream.held(), 0);
    assert!(
        out == whole.as_ref(),
        "streamed {:?}\n   whole {:?}\n   sizes {sizes:?}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&whole)
    );
});
