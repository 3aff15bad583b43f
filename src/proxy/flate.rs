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

use bytes::{Buf, Bytes};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use futures_util::Stream;

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

/// Pieces encoded as gzip or zlib at `level` (1 to 9), ending the stream when the input
/// ends. Pieces are not flushed one by one: output comes as the encoder fills its blocks,
/// and the rest at the end.
pub(crate) struct Deflate<S> {
    input: S,
    state: Compress,
    /// Where the encoder writes, reused: what comes out of it is copied into a frame of
    /// its exact size. Frames of a few KiB each holding a buffer of 16 KiB would be queued
    /// by hyper by their length, not their capacity, up to sixteen per connection.
    scratch: Vec<u8>,
    finished: bool,
}

impl<S> Deflate<S> {
    pub(crate) fn new(input: S, wrapper: Wrapper, level: u32) -> Deflate<S> {
        let level = Compression::new(level);
        let state = match wrapper {
            Wrapper::Gzip => Compress::new_gzip(level, WINDOW_BITS),
            Wrapper::Zlib => Compress::new(level, true),
        };
        Deflate {
            input,
            state,
            scratch: Vec::new(),
            finished: false,
        }
    }
}

/// Feeds all of `input` to `state` with `flush` and leaves what came out in `out` (for
/// [`FlushCompress::Finish`], everything up to the stream's end).
fn compress(
    state: &mut Compress,
    input: &[u8],
    flush: FlushCompress,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    let mut used = 0;
    loop {
        if out.len() == out.capacity() {
            out.reserve(PIECE.max(input.len() / 4));
        }
        let before = state.total_in();
        let status = state
            .compress_vec(&input[used..], out, flush)
            .map_err(invalid)?;
        used += usize::try_from(state.total_in() - before).unwrap_or(usize::MAX);
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // All taken, and room left over: nothing more is waiting to come out.
            _ => used >= input.len() && out.len() < out.capacity(),
        };
        if done {
            return Ok(());
        }
    }
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
                Some(Ok(piece)) => {
                    compress(
                        &mut this.state,
                        &piece,
                        FlushCompress::None,
                        &mut this.scratch,
                    )?;
                    if !this.scratch.is_empty() {
                        return Poll::Ready(Some(Ok(Bytes::copy_from_slice(&this.scratch))));
                    }
                }
                Some(Err(e)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.finished = true;
                    compress(
                        &mut this.state,
                        &[],
                        FlushCompress::Finish,
                        &mut this.scratch,
                    )?;
                    let last = Bytes::copy_from_slice(&this.scratch);
                    this.scratch = Vec::new();
                    return Poll::Ready(Some(Ok(last)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
