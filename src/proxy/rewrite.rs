//! The host rewriter: origin hosts in bytes become public hosts, whole or streamed.
//!
//! This module owns *what counts as a host* in arbitrary text and the streaming state that
//! makes chunk boundaries invisible. It does not know about HTTP, content types or
//! compression; the body pipeline feeds it decoded chunks and the header rewriting whole
//! values.
//!
//! # What matches
//!
//! Every origin host of the [`HostMap`], ASCII case-insensitively,
//! leftmost-longest (so `www.example.com` wins over `example.com` when both are pairs),
//! replaced by its public host as configured. A match must sit on hostname label
//! boundaries, which is what `sub_filter` cannot express:
//!
//! * the byte before must not be a hostname byte (`[A-Za-z0-9-]`), so `notexample.com` and
//!   `my-example.com` stay. Two exceptions: a `.` before is a subdomain (`cdn.example.com`
//!   becomes `cdn.example.cn`), and a hostname byte that ends an escape of `/`, `:` or `@`
//!   (`%2F`, `%3A`, `%40`, their `%25`-double-encoded forms, `\u002F`, `\x2F`, ...) does not
//!   count, so `https%3A%2F%2Fexample.com` and `\u002F\u002Fexample.com` are rewritten;
//! * the byte after must not be a hostname byte, nor a `.` followed by one, so
//!   `example.community` and `example.com.au` stay while `example.com/`, `example.com:443`
//!   and a sentence ending in `example.com.` are rewritten.
//!
//! # Streaming
//!
//! [`StreamRewriter`] holds back only what a decision still needs: a tail of the chunk that
//! is the beginning of some origin host, or a match whose following two bytes have not
//! arrived. That is at most the longest origin host plus one byte, whatever the body size.
//! A chunk with no match is passed on as the same [`Bytes`] (no copy); a chunk with matches
//! is copied once into its rewritten form, so that the output is one piece per input piece
//! rather than a splinter per match.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind, Span, packed};
use bytes::{Bytes, BytesMut};

use super::mapping::HostMap;

/// Escapes whose last byte is a hostname byte but which stand for a separator.
/// Longest first does not matter: any suffix match is enough.
const ESCAPES: &[&[u8]] = &[
    b"%2F", b"%2f", b"%3A", b"%3a", b"%40", b"%252F", b"%252f", b"%253A", b"%253a", b"%2540",
    b"\\u002F", b"\\u002f", b"\\u003A", b"\\u003a", b"\\u0040", b"\\x2F", b"\\x2f", b"\\x3A",
    b"\\x3a", b"\\x40",
];

/// Bytes of already-emitted input kept to check the escapes above.
const LOOKBEHIND: usize = 6;

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Why the rewriter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the host matcher: {0}")]
pub struct RewriteError(#[from] aho_corasick::BuildError);

/// The compiled origin → public replacements, shared by every response.
#[derive(Debug)]
pub struct Rewriter {
    searcher: AhoCorasick,
    /// The same hosts for a SIMD (Teddy) search over a lower-cased copy of the text: many
    /// times faster than the automaton, whose own prefilters are off under ASCII
    /// case-insensitivity and whose plain scan runs at a few hundred MB/s. Lower-casing a
    /// block costs far less than searching it. `None` where Teddy is unavailable.
    folded: Option<packed::Searcher>,
    /// How much text is lower-cased at a time: small enough to stay in cache and to keep
    /// the scratch buffer small whatever the chunk size.
    fold_block: usize,
    /// Lower-cased origin hosts, indexed like the searcher's patterns.
    patterns: Vec<Vec<u8>>,
    replacements: Vec<Bytes>,
    /// Hosts paired with themselves: matched, so that `www.example.com` is not taken for
    /// `www.` + `example.com`, but left as written.
    keep: Vec<bool>,
    max_len: usize,
    /// Whether a byte can start an origin host, in either case.
    starts: [bool; 256],
}

/// A match accepted for replacement: `[start, end)` and the pattern index.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    pattern: usize,
}

impl Rewriter {
    /// A rewriter replacing every origin host of `map` by its public host.
    pub fn new(map: &HostMap) -> Result<Rewriter, RewriteError> {
        let pairs = map.pairs();
        let patterns: Vec<Vec<u8>> = pairs.iter().map(|p| p.origin.as_bytes().to_vec()).collect();
        let searcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)?;
        let mut starts = [false; 256];
        for p in &patterns {
            if let Some(&b) = p.first() {
                starts[b.to_ascii_lowercase() as usize] = true;
                starts[b.to_ascii_uppercase() as usize] = true;
            }
        }
        Ok(Rewriter {
            searcher,
            folded: packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostLongest)
                .only_teddy(true)
                .builder()
                .extend(&patterns)
                .build(),
            fold_block: FOLD_BLOCK,
            max_len: patterns.iter().map(Vec::len).max().unwrap_or(0),
            keep: pairs.iter().map(|p| p.public == p.origin).collect(),
            replacements: pairs
                .iter()
                .map(|p| Bytes::copy_from_slice(p.public.as_bytes()))
                .collect(),
            patterns,
            starts,
        })
    }

    /// The most bytes a [`StreamRewriter`] of this rewriter ever holds back.
    pub fn max_held_back(&self) -> usize {
        self.max_len + 1
    }

    /// Rewrites a complete value (a header, a small document).
    pub fn rewrite_all<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        let mut hits = Vec::new();
        let end = self.scan(input, &[], true, &mut hits, &mut Vec::new());
        debug_assert_eq!(end, input.len());
        if hits.is_empty() {
            return Cow::Borrowed(input);
        }
        let mut out = Vec::with_capacity(input.len() + hits.len() * 4);
        self.splice(input, &hits, input.len(), &mut out);
        Cow::Owned(out)
    }

    /// A fresh streaming state for one body.
    pub fn stream(self: &Arc<Self>) -> StreamRewriter {
        StreamRewriter {
            rules: Arc::clone(self),
            pending: Vec::new(),
            behind: [0; LOOKBEHIND],
            behind_len: 0,
            hits: Vec::new(),
            max_held: 0,
            replaced: 0,
        }
    }

    /// Finds the accepted matches in `buf` and returns how far the output is decided: bytes
    /// from the returned index on must wait for more input (always `buf.len()` at `eof`).
    /// `behind` is the input just before `buf`, for the escape check.
    fn scan(
        &self,
        buf: &[u8],
        behind: &[u8],
        eof: bool,
        hits: &mut Vec<Hit>,
        folded: &mut Vec<u8>,
    ) -> usize {
        hits.clear();
        let mut window = Window {
            buf,
            folded,
            from: 0,
        };
        window.folded.clear();
        let len = buf.len();
        // A match starting at or after this point might continue past the end of `buf`,
        // and leftmost-longest could then pick a shorter pattern than the whole text has.
        let tail = if eof {
            len
        } else {
            self.partial_from(buf, len.saturating_sub(self.max_len.saturating_sub(1)))
        };
        let mut pos = 0;
        let mut cursor = 0;
        while pos < len {
            let Some(hit) = self.find_at(&mut window, pos) else {
                break;
            };
            let (start, end) = (hit.start, hit.end);
            if start >= tail {
                break;
            }
            let accepted = match after_ok(buf, end, eof) {
                None => return start,
                Some(after) => after && self.before_ok(buf, behind, start),
            };
            if accepted {
                if !self.keep[hit.pattern] {
                    hits.push(hit);
                }
                cursor = end;
                pos = end;
            } else {
                // A shorter pattern at the same start cannot do better (it would be followed
                // by the rest of the longer host, a hostname byte or `.label`), but one
                // starting inside the rejected match can (`xwww.example.com`).
                pos = start + 1;
            }
        }
        if cursor <= tail {
            tail
        } else {
            self.partial_from(buf, cursor)
        }
    }

    /// The leftmost-longest match starting at or after `pos`.
    fn find_at(&self, w: &mut Window<'_>, pos: usize) -> Option<Hit> {
        let Some(teddy) = &self.folded else {
            let m = self.searcher.find(Input::new(w.buf).range(pos..))?;
            return Some(Hit {
                start: m.start(),
                end: m.end(),
                pattern: m.pattern().as_usize(),
            });
        };
        let len = w.buf.len();
        let mut pos = pos;
        while pos < len {
            let end = w.from + w.folded.len();
            if pos < w.from || pos >= end || (end < len && end - pos < self.max_len) {
                w.fold(pos, self.fold_block);
            }
            let end = w.from + w.folded.len();
            // Hosts are lower case: the lower-cased text has them at the same offsets.
            // A match starting past `decided` could be cut short by the window's end
            // (leftmost-longest would then report a shorter host); the next window has it.
            let decided = if end == len {
                len
            } else {
                end + 1 - self.max_len
            };
            match teddy.find_in(&w.folded[..], Span::from(pos - w.from..w.folded.len())) {
                Some(m) if w.from + m.start() < decided => {
                    return Some(Hit {
                        start: w.from + m.start(),
                        end: w.from + m.end(),
                        pattern: m.pattern().as_usize(),
                    });
                }
                _ if end == len => return None,
                _ => pos = decided,
            }
        }
        None
    }

    /// The first index from `from` on where the rest of `buf` is a proper prefix of an
    /// origin host, or `buf.len()`.
    fn partial_from(&self, buf: &[u8], from: usize) -> usize {
        (from..buf.len())
            .find(|&p| {
                let rest = &buf[p..];
                self.starts[rest[0] as usize]
                    && self.patterns.iter().any(|pat| {
                        pat.len() > rest.len() && pat[..rest.len()].eq_ignore_ascii_case(rest)
                    })
            })
            .unwrap_or(buf.len())
    }

    fn before_ok(&self, buf: &[u8], behind: &[u8], start: usize) -> bool {
        let prev = match start.checked_sub(1) {
            Some(i) => buf[i],
            None => match behind.last() {
                Some(&b) => b,
                None => return true,
            },
        };
        if !is_host_byte(prev) {
            return true;
        }
        let mut window = [0u8; LOOKBEHIND];
        let from_buf = start.min(LOOKBEHIND);
        let from_behind = (LOOKBEHIND - from_buf).min(behind.len());
        let n = from_behind + from_buf;
        window[..from_behind].copy_from_slice(&behind[behind.len() - from_behind..]);
        window[from_behind..n].copy_from_slice(&buf[start - from_buf..start]);
        ESCAPES.iter().any(|e| window[..n].ends_with(e))
    }

    fn splice(&self, buf: &[u8], hits: &[Hit], upto: usize, out: &mut impl Extend<u8>) {
        let mut at = 0;
        for h in hits {
            out.extend(buf[at..h.start].iter().copied());
            out.extend(self.replacements[h.pattern].iter().copied());
            at = h.end;
        }
        out.extend(buf[at..upto].iter().copied());
    }
}

/// Default for [`Rewriter::fold_block`].
const FOLD_BLOCK: usize = 32 * 1024;

thread_local! {
    /// The lower-cased copy of the block being scanned, one per thread rather than one per
    /// body: a scan runs to its end within one call, and fifty responses being rewritten at
    /// once would otherwise hold fifty of these (up to [`FOLD_BLOCK`] each) between chunks.
    static FOLDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The lower-cased copy of one block of the text being scanned.
struct Window<'a> {
    buf: &'a [u8],
    folded: &'a mut Vec<u8>,
    /// Where in `buf` the copy starts.
    from: usize,
}

impl Window<'_> {
    fn fold(&mut self, from: usize, block: usize) {
        let to = (from + block).min(self.buf.len());
        self.folded.clear();
        self.folded.extend_from_slice(&self.buf[from..to]);
        self.folded.make_ascii_lowercase();
        self.from = from;
    }
}

/// Whether the bytes after a match end a hostname; `None` when they have not arrived yet.
fn after_ok(buf: &[u8], end: usize, eof: bool) -> Option<bool> {
    let undecided = if eof { Some(true) } else { None };
    let Some(&next) = buf.get(end) else {
        return undecided;
    };
    if is_host_byte(next) {
        return Some(false);
    }
    if next == b'.' {
        return match buf.get(end + 1) {
            Some(&b) => Some(!is_host_byte(b)),
            None => undecided,
        };
    }
    Some(true)
}

/// The rewriting state of one body: feed chunks in order with [`push`](Self::push), then
/// call [`finish`](Self::finish) once for what was held back.
#[derive(Debug)]
pub struct StreamRewriter {
    rules: Arc<Rewriter>,
    /// What is held back: a few bytes, in a buffer of its own. (A `BytesMut` split off
    /// the chunk they came with kept that whole chunk's allocation alive between chunks:
    /// 16 KiB or more per response being rewritten.)
    pending: Vec<u8>,
    behind: [u8; LOOKBEHIND],
    behind_len: usize,
    hits: Vec<Hit>,
    max_held: usize,
    replaced: u64,
}

impl StreamRewriter {
    /// Rewrites as much of `chunk` as can be decided; the result may be empty.
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        if self.pending.is_empty() {
            self.process(chunk, false)
        } else {
            let mut joined = BytesMut::with_capacity(self.pending.len() + chunk.len());
            joined.extend_from_slice(&self.pending);
            joined.extend_from_slice(&chunk);
            self.pending.clear();
            self.process(joined.freeze(), false)
        }
    }

    /// Everything still held back, rewritten. The stream is then empty and may be reused.
    pub fn finish(&mut self) -> Bytes {
        let buf = Bytes::copy_from_slice(&self.pending);
        self.pending.clear();
        let out = self.process(buf, true);
        self.behind_len = 0;
        out
    }

    /// Bytes currently held back.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    /// The most bytes ever held back between two calls: the memory bound the tests check.
    pub fn max_held(&self) -> usize {
        self.max_held
    }

    /// Origin hosts replaced so far.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }

    fn process(&mut self, buf: Bytes, eof: bool) -> Bytes {
        let behind = &self.behind[..self.behind_len];
        let hold = FOLDED
            .with_borrow_mut(|folded| self.rules.scan(&buf, behind, eof, &mut self.hits, folded));
        self.replaced += self.hits.len() as u64;
        let out = if self.hits.is_empty() {
            buf.slice(..hold)
        } else {
            let mut out = BytesMut::with_capacity(hold + self.hits.len() * 4);
            let mut at = 0;
            for h in &self.hits {
                out.extend_from_slice(&buf[at..h.start]);
                out.extend_from_slice(&self.rules.replacements[h.pattern]);
                at = h.end;
            }
            out.extend_from_slice(&buf[at..hold]);
            out.freeze()
        };
        self.remember(&buf[..hold]);
        self.pending.extend_from_slice(&buf[hold..]);
        self.max_held = self.max_held.max(self.pending.len());
        out
    }

    fn remember(&mut self, emitted: &[u8]) {
        if emitted.len() >= LOOKBEHIND {
            self.behind
                .copy_from_slice(&emitted[emitted.len() - LOOKBEHIND..]);
            self.behind_len = LOOKBEHIND;
            return;
        }
        let keep = (LOOKBEHIND - emitted.len()).min(self.behind_len);
        self.behind
            .copy_within(self.behind_len - keep..self.behind_len, 0);
        self.behind[keep..keep + emitted.len()].copy_from_slice(emitted);
        self.behind_len = keep + emitted.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rewriter() -> Arc<Rewriter> {
        let map = HostMap::new([
            ("example.cn", "example.com"),
            ("www.example.cn", "www.example.com"),
            ("api.example.cn", "api.example.com"),
            ("static.example.cn", "static.example.com"),
        ])
        .expect("valid pairs");
        Arc::new(Rewriter::new(&map).expect("matcher builds"))
    }

    /// The same rules without the Teddy candidate finder: the path CPUs without SIMD take.
    fn plain_rewriter() -> Arc<Rewriter> {
        let mut rw = Arc::into_inner(rewriter()).expect("sole owner");
        rw.folded = None;
        Arc::new(rw)
    }

    /// The same rules lower-casing a few bytes at a time, so that small test inputs cross
    /// many window boundaries.
    fn small_window_rewriter() -> Arc<Rewriter> {
        let mut rw = Arc::into_inner(rewriter()).expect("sole owner");
        rw.fold_block = rw.max_len + 1;
        Arc::new(rw)
    }

    fn whole(input: &str) -> String {
        String::from_utf8(rewriter().rewrite_all(input.as_bytes()).into_owned()).expect("utf-8")
    }

    fn chunked(input: &[u8], sizes: &[usize]) -> (Vec<u8>, usize) {
        let rw = rewriter();
        let mut s = rw.stream();
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes.get(i).copied().unwrap_or(1).clamp(1, rest.len());
            i += 1;
            out.extend_from_slice(&s.push(Bytes::copy_from_slice(&rest[..n])));
            rest = &rest[n..];
        }
        out.extend_from_slice(&s.finish());
        (out, s.max_held())
    }

    #[test]
    fn rewrites_hosts_on_label_boundaries() {
        let cases = [
            ("https://example.com/x", "https://example.cn/x"),
            ("//EXAMPLE.COM", "//example.cn"),
            ("see example.com.", "see example.cn."),
            ("example.com", "example.cn"),
            ("example.com:443/a", "example.cn:443/a"),
            (
                "www.example.com api.example.com",
                "www.example.cn api.example.cn",
            ),
            ("cdn.example.com", "cdn.example.cn"),
            ("xwww.example.com", "xwww.example.cn"),
            ("mailto:sales@example.com", "mailto:sales@example.cn"),
            (
                "https%3A%2F%2Fexample.com%2Fx",
                "https%3A%2F%2Fexample.cn%2Fx",
            ),
            (
                "https%253A%252F%252Fexample.com",
                "https%253A%252F%252Fexample.cn",
            ),
            ("https:\\/\\/example.com\\/x", "https:\\/\\/example.cn\\/x"),
            ("\\u002F\\u002Fexample.com", "\\u002F\\u002Fexample.cn"),
            (
                "\\u002f\\u002fwww.example.com",
                "\\u002f\\u002fwww.example.cn",
            ),
            ("a%40example.com", "a%40example.cn"),
            ("\"example.com\"", "\"example.cn\""),
            ("example.com..", "example.cn.."),
            ("(example.com)", "(example.cn)"),
        ];
        for (input, want) in cases {
            assert_eq!(whole(input), want, "input {input:?}");
        }
    }

    #[test]
    fn leaves_other_hosts_alone() {
        for input in [
            "notexample.com",
            "my-example.com",
            "example.com.au",
            "example.community",
            "example.com-x",
            "example.coma",
            "www.example.com.au",
            "%2Gexample.com",
            "example.co",
            "",
        ] {
            assert_eq!(whole(input), input, "input {input:?}");
        }
    }

    #[test]
    fn the_candidate_finder_is_in_use() {
        // Where Teddy exists (x86_64 with SSSE3/AVX2, aarch64), the fast path is taken.
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            assert!(rewriter().folded.is_some());
        }
    }

    #[test]
    fn hosts_paired_with_themselves_are_kept_as_written() {
        let map = HostMap::new([
            ("example.cn", "example.com"),
            ("www.example.com", "www.example.com"),
        ])
        .expect("valid pairs");
        let rw = Rewriter::new(&map).expect("rewriter");
        assert_eq!(
            rw.rewrite_all(b"WWW.Example.com example.com cdn.example.com")
                .as_ref(),
            b"WWW.Example.com example.cn cdn.example.cn"
        );
    }

    #[test]
    fn one_byte_chunks_match_whole() {
        let input = "<a href=\"https://www.example.com/\">example.com.au example.com.</a> \
                     https%3A%2F%2Fexample.com notexample.com api.example.com";
        let (out, held) = chunked(input.as_bytes(), &[]);
        assert_eq!(String::from_utf8(out).expect("utf-8"), whole(input));
        assert!(held <= rewriter().max_held_back(), "held {held}");
    }

    #[test]
    fn chunks_without_matches_are_not_copied() {
        let rw = rewriter();
        let mut s = rw.stream();
        let chunk = Bytes::from_static(b"nothing to see here;");
        let out = s.push(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert_eq!(out, chunk);
    }

    #[test]
    fn escape_split_across_chunks_is_seen() {
        let (out, _) = chunked(b"xx%2Fexample.com/", &[4, 13]);
        assert_eq!(out, b"xx%2Fexample.cn/");
        let (out, _) = chunked(b"ab\\u002Fexample.com", &[7, 1, 100]);
        assert_eq!(out, b"ab\\u002Fexample.cn");
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "example.com",
            "EXAMPLE.COM",
            "www.example.com",
            "api.example.com",
            "static.",
            "example",
            ".com",
            ".",
            "-",
            "a",
            "%2F",
            "%3A",
            "\\/",
            "\\u002F",
            "/",
            " ",
            "au",
            "e",
            "x",
            "w",
            "@",
            "com",
            "\n",
            "é",
        ])
    }

    proptest! {
        #[test]
        fn any_chunking_equals_whole(
            tokens in prop::collection::vec(token(), 0..40),
            sizes in prop::collection::vec(1usize..24, 0..40),
        ) {
            let input = tokens.concat();
            let (out, held) = chunked(input.as_bytes(), &sizes);
            let want = rewriter().rewrite_all(input.as_bytes()).into_owned();
            prop_assert_eq!(&out, &want);
            prop_assert!(held <= rewriter().max_held_back());
            let plain = plain_rewriter().rewrite_all(input.as_bytes()).into_owned();
            prop_assert_eq!(&plain, &want);
            let windowed = small_window_rewriter().rewrite_all(input.as_bytes()).into_owned();
            prop_assert_eq!(windowed, want);
        }
    }
}
