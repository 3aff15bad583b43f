//! gzip and deflate (zlib) bodies decoded and encoded piece by piece with flate2's streams,
//! for the rewriting pipeline of [`super::body`].
//!
//! This module owns the two DEFLATE stages of a rewritten body: [`Inflate`] turns the
//! origin's frames into plain pieces, [`Deflate`] turns the rewritten pieces into the
//! client's coding. It does not choose codings or levels ([`super::body`]) and does not
//! handle brotli or zstd (async-compression's readers, there).
//!
//! Why not async-compression's readers for these two as well: each reads its input through
//! a `StreamReader` and is read out by a `ReaderStream` with a 64 KiB buffer of its own,
//! two more buffers per response being rewritten besides the codec's state, and a layer of
//! polls per piece. Here a piece is decoded or encoded straight into the `Vec` that becomes
//! the next frame, and nothing outlives its piece but the codec's own state: gzip is what
//! nearly every browser asks for, so this is the path whose memory per response counts.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use std::cell::RefCell;

use bytes::{Buf, Bytes};
use flate2::{Decompress, FlushDecompress, Status};
use futures_util::Stream;
use zlib_rs::{DeflateConfig, DeflateError, DeflateFlush};

/// The most bytes decoded into one piece: what the rewriter scans at a time, and the size
/// of its scratch buffer.
const PIECE: usize = 16 * 1024;

/// DEFLATE's largest window, as the origin's encoder may have used it (and as the client's
/// decoder expects at most).
const WINDOW_BITS: u8 = 15;

/// The container around the DEFLATE data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrapper {
    /// gzip (RFC 1952): HTTP's `gzip`.
    Gzip,
    /// zlib (RFC 1950): HTTP's `deflate`.
    Zlib,
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The origin's gzip or zlib body, decoded. gzip members following one another are
/// decoded one after the other (as `gzip -d` does); a body that ends inside a member, or
/// is not gzip or zlib at all, ends in an error.
pub(crate) struct Inflate<S> {
    input: S,
    wrapper: Wrapper,
    state: Decompress,
    /// Input not decoded yet.
    pending: Bytes,
    /// The current member or stream has ended; what follows must be a new gzip member.
    ended: bool,
    /// Whether any input came at all: an empty body decodes to an empty body.
    started: bool,
}

impl<S> Inflate<S> {
    pub(crate) fn new(input: S, wrapper: Wrapper) -> Inflate<S> {
        Inflate {
            input,
            wrapper,
            state: decompressor(wrapper),
            pending: Bytes::new(),
            ended: false,
            started: false,
        }
    }
}

fn decompressor(wrapper: Wrapper) -> Decompress {
    match wrapper {
        Wrapper::Gzip => Decompress::new_gzip(WINDOW_BITS),
        Wrapper::Zlib => Decompress::new(true),
    }
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for Inflate<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.pending.is_empty() {
                match ready!(Pin::new(&mut this.input).poll_next(cx)) {
                    Some(Ok(bytes)) => {
                        this.pending = bytes;
                        continue;
                    }
                    Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                    None if this.ended || !this.started => return Poll::Ready(None),
                    None => {
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the compressed body ends early",
                        ))));
                    }
                }
            }
            this.started = true;
            if this.ended {
                if this.wrapper == Wrapper::Zlib {
                    // zlib has one stream; what follows it is not part of the body.
                    this.pending.clear();
                    continue;
                }
                this.state = decompressor(this.wrapper);
                this.ended = false;
            }
            let mut out = Vec::with_capacity(PIECE);
            let before = this.state.total_in();
            let status = this
                .state
                .decompress_vec(&this.pending, &mut out, FlushDecompress::None)
                .map_err(invalid)?;
            let used = usize::try_from(this.state.total_in() - before).unwrap_or(usize::MAX);
            this.pending.advance(used.min(this.pending.len()));
            if status == Status::StreamEnd {
                this.ended = true;
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(frame(out))));
            }
            if used == 0 && status != Status::StreamEnd {
                // Input and room for output, and no progress: zlib says that cannot be.
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the compressed body makes no progress",
                ))));
            }
        }
    }
}

/// `out` as a frame: as it is when it is at least half full, else copied into one of its
/// size (the end of an input chunk leaves a piece part empty, and the frame would hold the
/// whole buffer until it is sent).
fn frame(out: Vec<u8>) -> Bytes {
    if out.len() * 2 >= out.capacity() {
        Bytes::from(out)
    } else {
        Bytes::copy_from_slice(&out)
    }
}

/// The encoder's table sizes: its window (2^`window_bits` bytes of history) and
/// `mem_level`, which sizes the buffer of symbols one block is built from (2^(`mem_level`
/// + 6) of them) and the pending output (four bytes per symbol).
///
/// zlib-rs allocates, besides a few KiB of state: twice the window, two bytes of match
/// chain per window byte, a 128 KiB hash head whatever the shape, and seven bytes per
/// symbol. At zlib's usual shape (15, 8) that is about 370 KiB per response being
/// re-encoded, the most a rewritten response holds by far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    window_bits: u8,
    mem_level: u8,
}

/// The smallest window zlib-rs accepts for every wrapper.
const MIN_WINDOW_BITS: u8 = 9;

/// zlib's usual `mem_level`, for levels 2 to 9.
const DEFAULT_MEM_LEVEL: u8 = 8;

/// The end of zlib's window it never matches from (`MIN_LOOKAHEAD`: the longest match
/// plus the shortest plus one): a body fits a window when it is this much smaller.
const WINDOW_SLACK: usize = 262;

impl Shape {
    /// The shape for `level`, and for a body of `len` bytes when its whole length is
    /// known.
    ///
    /// Level 1 is zlib-rs's "quick" strategy: static Huffman codes, no symbol buffer, the
    /// pending buffer only a staging area for output. Its output is byte for byte the same
    /// at every `mem_level` (measured on HTML, JavaScript and a search index from 0.5 to
    /// 5.6 MB), so it gets the smallest: 112 KiB less per response. Other levels build a
    /// block from the symbol buffer, and smaller ones cost 0.1-1 % in size: zlib's 8.
    ///
    /// The window is DEFLATE's largest unless the body is known to fit a smaller one, as
    /// nginx sizes its gzip window from `Content-Length`; with it `mem_level` goes down
    /// too (a block never needs more symbols than the body has bytes). A smaller window
    /// than the body costs size: 4-11 % at 16 KiB instead of 32 KiB on the same files.
    /// `level` is 1 to 9 ([`super::body::GzipLevel`]).
    fn new(level: u8, len: Option<usize>) -> Shape {
        let mut shape = Shape {
            window_bits: WINDOW_BITS,
            mem_level: if level == 1 { 1 } else { DEFAULT_MEM_LEVEL },
        };
        if let Some(len) = len {
            while shape.window_bits > MIN_WINDOW_BITS
                && len.saturating_add(WINDOW_SLACK) <= 1 << (shape.window_bits - 1)
            {
                shape.window_bits -= 1;
                shape.mem_level = shape.mem_level.saturating_sub(1).max(1);
            }
        }
        shape
    }
}

fn encoder(wrapper: Wrapper, level: u8, shape: Shape) -> zlib_rs::Deflate {
    let bits = i32::from(shape.window_bits);
    zlib_rs::Deflate::new_with_config(DeflateConfig {
        level: i32::from(level.clamp(1, 9)),
        // zlib's convention: 16 more for a gzip wrapper.
        window_bits: match wrapper {
            Wrapper::Gzip => bits + 16,
            Wrapper::Zlib => bits,
        },
        mem_level: i32::from(shape.mem_level),
        ..DeflateConfig::default()
    })
}

/// Pieces encoded as gzip or zlib at `level` (1 to 9), ending the stream when the input
/// ends. Pieces are not flushed one by one: output comes as the encoder fills its blocks,
/// and the rest at the end.
///
/// The encoder is made when the second piece arrives, or the end: a body that is all in
/// its first piece (up to 16 KiB decoded) gets an encoder sized to it ([`Shape`]). The
/// decoded length is not known before (the origin's `Content-Length` counts compressed
/// bytes), and the first piece waiting for the second delays nothing a compressor would
/// have sent. The encoder is dropped as soon as the stream is finished.
pub(crate) struct Deflate<S> {
    input: S,
    wrapper: Wrapper,
    level: u8,
    /// The first piece, until it is known whether another follows.
    first: Option<Bytes>,
    state: Option<zlib_rs::Deflate>,
    /// The shape the encoder was made with (for the tests).
    shape: Option<Shape>,
    finished: bool,
}

impl<S> Deflate<S> {
    pub(crate) fn new(input: S, wrapper: Wrapper, level: u8) -> Deflate<S> {
        Deflate {
            input,
            wrapper,
            level,
            first: None,
            state: None,
            shape: None,
            finished: false,
        }
    }

    /// The encoder, made for a body of `len` bytes when that is its whole length.
    fn state(&mut self, len: Option<usize>) -> &mut zlib_rs::Deflate {
        let (wrapper, level) = (self.wrapper, self.level);
        let shape = &mut self.shape;
        self.state.get_or_insert_with(|| {
            let s = Shape::new(level, len);
            *shape = Some(s);
            encoder(wrapper, level, s)
        })
    }
}

/// Size of each thread's buffer the encoder writes into (its output is then copied into a
/// frame of its own size).
const SCRATCH: usize = 16 * 1024;

thread_local! {
    /// Where encoders write, one per thread rather than one per response: an encoder's
    /// output is copied out of it before the call returns.
    static SCRATCH_OUT: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

fn deflate_error(e: DeflateError) -> io::Error {
    io::Error::other(format!("gzip encoder: {e:?}"))
}

/// Feeds all of `input` to `state` with `flush` and appends what came out to `out` (for
/// [`DeflateFlush::Finish`], everything up to the stream's end).
fn compress(
    state: &mut zlib_rs::Deflate,
    input: &[u8],
    flush: DeflateFlush,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    SCRATCH_OUT.with_borrow_mut(|scratch| {
        let mut used = 0;
        loop {
            let (before_in, before_out) = (state.total_in(), state.total_out());
            let status = state
                .compress(&input[used..], scratch, flush)
                .map_err(deflate_error)?;
            let taken = usize::try_from(state.total_in() - before_in).unwrap_or(usize::MAX);
            let made = usize::try_from(state.total_out() - before_out).unwrap_or(usize::MAX);
            used = used.saturating_add(taken).min(input.len());
            out.extend_from_slice(&scratch[..made.min(scratch.len())]);
            let done = match flush {
                DeflateFlush::Finish => status == zlib_rs::Status::StreamEnd,
                // All taken, and room left over: nothing more is waiting to come out.
                _ => used >= input.len() && made < scratch.len(),
            };
            if done {
                return Ok(());
            }
            if taken == 0 && made == 0 {
                return Err(io::Error::other("gzip encoder makes no progress"));
            }
        }
    })
}

/// `out` as a frame, its allocation no larger than twice its bytes.
fn exact(mut out: Vec<u8>) -> Bytes {
    if out.capacity() > 2 * out.len() {
        out.shrink_to_fit();
    }
    Bytes::from(out)
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for Deflate<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.input).poll_next(cx)) {
                Some(Ok(piece)) if piece.is_empty() => {}
                Some(Ok(piece)) => {
                    if this.state.is_none() && this.first.is_none() {
                        this.first = Some(piece);
                        continue;
                    }
                    let first = this.first.take();
                    let state = this.state(None);
                    let mut out = Vec::new();
                    if let Some(first) = first {
                        compress(state, &first, DeflateFlush::NoFlush, &mut out)?;
                    }
                    compress(state, &piece, DeflateFlush::NoFlush, &mut out)?;
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(exact(out))));
                    }
                }
                Some(Err(e)) => {
                    this.finished = true;
                    this.state = None;
                    this.first = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.finished = true;
                    let first = this.first.take().unwrap_or_default();
                    let mut out = Vec::new();
                    let state = this.state(Some(first.len()));
                    compress(state, &first, DeflateFlush::Finish, &mut out)?;
                    this.state = None;
                    return Poll::Ready(Some(Ok(exact(out))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use futures_util::{StreamExt, TryStreamExt, stream};
    use std::io::{Read, Write};

    fn text() -> Vec<u8> {
        (0..4000)
            .flat_map(|i| {
                format!("<a href=\"https://example.com/{i}\">item {i}</a>\n").into_bytes()
            })
            .collect()
    }

    fn pieces(data: &[u8], size: usize) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
        let chunks: Vec<io::Result<Bytes>> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(chunks)
    }

    async fn collect(s: impl Stream<Item = io::Result<Bytes>> + Unpin) -> io::Result<Vec<u8>> {
        s.try_fold(Vec::new(), |mut all, piece| async move {
            all.extend_from_slice(&piece);
            Ok(all)
        })
        .await
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    #[tokio::test]
    async fn gzip_and_zlib_round_trip_in_any_pieces() {
        let data = text();
        for wrapper in [Wrapper::Gzip, Wrapper::Zlib] {
            for (level, size) in [(1, 1), (1, 7000), (6, 100_000), (9, 3)] {
                let encoded = collect(Deflate::new(pieces(&data, size), wrapper, level))
                    .await
                    .expect("encoded");
                assert!(encoded.len() < data.len() / 4, "{wrapper:?} {level}");
                let decoded = collect(Inflate::new(pieces(&encoded, size.min(5000)), wrapper))
                    .await
                    .expect("decoded");
                assert_eq!(decoded, data, "{wrapper:?} {level} {size}");
            }
        }
        // What others made and read: flate2's own gzip writer and reader.
        let decoded = collect(Inflate::new(pieces(&gzip(&data), 999), Wrapper::Gzip))
            .await
            .expect("decoded");
        assert_eq!(decoded, data);
        let ours = collect(Deflate::new(pieces(&data, 4096), Wrapper::Gzip, 1))
            .await
            .expect("encoded");
        let mut theirs = Vec::new();
        flate2::read::GzDecoder::new(&ours[..])
            .read_to_end(&mut theirs)
            .expect("flate2 reads it");
        assert_eq!(theirs, data);
    }

    #[test]
    fn shapes_follow_the_level_and_a_known_length() {
        let shape = |window_bits, mem_level| Shape {
            window_bits,
            mem_level,
        };
        // Level 1's output does not depend on mem_level; the others keep zlib's.
        assert_eq!(Shape::new(1, None), shape(15, 1));
        assert_eq!(Shape::new(6, None), shape(15, 8));
        assert_eq!(Shape::new(9, None), shape(15, 8));
        // A body needing the whole window keeps it (20 000 + 262 > 16 KiB).
        assert_eq!(Shape::new(6, Some(20_000)), shape(15, 8));
        assert_eq!(Shape::new(6, Some(16_384 - 262 + 1)), shape(15, 8));
        assert_eq!(Shape::new(6, Some(16_384 - 262)), shape(14, 7));
        assert_eq!(Shape::new(6, Some(4_000)), shape(13, 6));
        assert_eq!(Shape::new(1, Some(4_000)), shape(13, 1));
        // Never below zlib-rs's smallest window, nor mem_level 1.
        assert_eq!(Shape::new(9, Some(100)), shape(9, 2));
        assert_eq!(Shape::new(6, Some(0)), shape(9, 2));
        assert_eq!(Shape::new(2, Some(0)), shape(9, 2));
        assert_eq!(Shape::new(1, Some(0)), shape(9, 1));
    }

    fn gunzip(wrapper: Wrapper, data: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        match wrapper {
            Wrapper::Gzip => flate2::read::GzDecoder::new(data).read_to_end(&mut plain),
            Wrapper::Zlib => flate2::read::ZlibDecoder::new(data).read_to_end(&mut plain),
        }
        .expect("flate2 decodes it");
        plain
    }

    #[tokio::test]
    async fn a_body_in_one_piece_gets_an_encoder_of_its_size() {
        let text = text();
        for wrapper in [Wrapper::Gzip, Wrapper::Zlib] {
            for level in 1..=9 {
                for len in [0, 1, 249, 250, 251, 4_000, 16_122, 16_123, PIECE, 40_000] {
                    let data = &text[..len];
                    let mut one = Deflate::new(pieces(data, PIECE.max(len)), wrapper, level);
                    let encoded = collect(&mut one).await.expect("encoded");
                    assert_eq!(gunzip(wrapper, &encoded), data, "{wrapper:?} {level} {len}");
                    let expected = Shape::new(level, Some(len));
                    assert_eq!(one.shape, Some(expected), "{wrapper:?} {level} {len}");
                    assert!(one.state.is_none(), "the encoder is dropped at the end");
                }
            }
        }
        // In two pieces the length is not known when the encoder is made: the whole window.
        let mut two = Deflate::new(pieces(&text[..2_000], 1_000), Wrapper::Gzip, 6);
        let encoded = collect(&mut two).await.expect("encoded");
        assert_eq!(gunzip(Wrapper::Gzip, &encoded), &text[..2_000]);
        assert_eq!(two.shape, Some(Shape::new(6, None)));
    }

    #[tokio::test]
    async fn an_input_error_ends_the_stream_and_drops_the_encoder() {
        let input = stream::iter(vec![
            Ok(Bytes::from_static(b"first")),
            Ok(Bytes::from_static(b"second")),
            Err(io::Error::other("origin went away")),
            Ok(Bytes::from_static(b"never")),
        ]);
        let mut encoder = Deflate::new(input, Wrapper::Gzip, 1);
        let mut items = Vec::new();
        while let Some(item) = encoder.next().await {
            items.push(item.map_err(|e| e.to_string()));
        }
        assert_eq!(items.last(), Some(&Err("origin went away".to_string())));
        assert!(encoder.state.is_none() && encoder.first.is_none());
    }

    #[test]
    fn frames_keep_their_bytes_made_either_way() {
        let mut half = Vec::with_capacity(PIECE);
        half.resize(PIECE / 2, b'x');
        let mut few = Vec::with_capacity(PIECE);
        few.resize(10, b'x');
        // A frame made from a `Vec` keeps its allocation; a copy is of the bytes alone.
        assert_eq!(frame(half).len(), PIECE / 2);
        assert_eq!(frame(few), Bytes::from_static(b"xxxxxxxxxx"));
    }

    #[tokio::test]
    async fn pieces_are_bounded() {
        let data = vec![b'a'; 1 << 20];
        let encoded = gzip(&data);
        let mut decoded = Inflate::new(pieces(&encoded, encoded.len()), Wrapper::Gzip);
        let mut total = 0;
        while let Some(piece) = decoded.next().await {
            let piece = piece.expect("piece");
            assert!(piece.len() <= PIECE, "{}", piece.len());
            total += piece.len();
        }
        assert_eq!(total, data.len());
    }

    #[tokio::test]
    async fn gzip_members_follow_one_another() {
        let mut two = gzip(b"first ");
        two.extend(gzip(b"second"));
        let decoded = collect(Inflate::new(pieces(&two, 5), Wrapper::Gzip))
            .await
            .expect("decoded");
        assert_eq!(decoded, b"first second");
    }

    #[tokio::test]
    async fn truncated_or_corrupt_bodies_fail_and_empty_ones_are_empty() {
        let encoded = gzip(&text());
        let cut = collect(Inflate::new(
            pieces(&encoded[..encoded.len() / 2], 100),
            Wrapper::Gzip,
        ))
        .await;
        assert_eq!(cut.expect_err("cut").kind(), io::ErrorKind::UnexpectedEof);
        let garbage = collect(Inflate::new(pieces(b"not gzip at all", 4), Wrapper::Gzip)).await;
        assert_eq!(
            garbage.expect_err("garbage").kind(),
            io::ErrorKind::InvalidData
        );
        let empty = collect(Inflate::new(pieces(b"", 1), Wrapper::Zlib)).await;
        assert_eq!(empty.expect("empty"), b"");
    }
}
