//! Where a message body ends: a length, the chunked coding, or the connection's close.
//!
//! This module owns the framing of the bodies the own pass-through relays (the client's
//! request body to the origin, the origin's response body to the client): it follows the
//! bytes as they go by, unchanged, and says how many of them belong to the body, how many
//! of those are payload (what the access log and the counters call bytes) and when the body
//! is over. A chunked body is relayed as it came, chunk sizes, extensions and trailer
//! fields included; it is not decoded or re-framed. It does not read or write sockets.

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// None at all (a request without `Content-Length` or `Transfer-Encoding`, a response
    /// to `HEAD`, a 204 or 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the sender closes (a response with neither).
    UntilClose,
}

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramingError {
    #[error("malformed chunk size line")]
    ChunkSize,
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    #[error("trailer section too long or malformed")]
    Trailer,
}

/// The longest chunk size line taken, extensions included.
const MAX_SIZE_LINE: usize = 4096;
/// The largest trailer section taken.
const MAX_TRAILERS: usize = 16 * 1024;

/// A body followed as its bytes go by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// So many bytes still to come, all payload.
    Length(u64),
    /// Until the sender closes, all payload.
    UntilClose,
    /// A chunk size line: the digits so far, whether the digits are over (whitespace or an
    /// extension came), whether an extension has begun, whether its CR has come, and
    /// its length so far.
    Size {
        size: u64,
        digits: u8,
        ext: bool,
        cr: bool,
        len: usize,
    },
    /// Chunk data: so many bytes still to come.
    Data(u64),
    /// The CRLF after chunk data: whether the CR has come.
    DataEnd {
        cr: bool,
    },
    /// The trailer section: the length of the current line (0 at a line's start), whether
    /// its CR has come, and the section's length so far.
    Trailer {
        line: usize,
        cr: bool,
        len: usize,
    },
    Done,
}

/// What [`Body::advance`] found in some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Advance {
    /// Bytes belonging to the body, from the start of those given.
    pub taken: usize,
    /// Of those, payload bytes (chunk data, or all of them for other framings).
    pub payload: u64,
}

impl Body {
    pub(crate) fn new(framing: Framing) -> Body {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::size_line(),
            Framing::UntilClose => State::UntilClose,
        };
        Body { state }
    }

    /// Whether the whole body has gone by.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the body ends only when its sender closes.
    pub(crate) fn until_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Follows `bytes`, the next ones of the stream: how many belong to the body (all of
    /// them unless it ends among them) and how many of those are payload.
    pub(crate) fn advance(&mut self, bytes: &[u8]) -> Result<Advance, FramingError> {
        let mut at = 0;
        let mut payload = 0u64;
        while at < bytes.len() {
            match &mut self.state {
                State::Done => break,
                State::UntilClose => {
                    payload += (bytes.len() - at) as u64;
                    at = bytes.len();
                }
                State::Length(left) | State::Data(left) => {
                    let n = (*left).min((bytes.len() - at) as u64);
                    *left -= n;
                    at += n as usize;
                    payload += n;
                    if *left == 0 {
                        self.state = match self.state {
                            State::Data(_) => State::DataEnd { cr: false },
                            _ => State::Done,
                        };
                    }
                }
                State::DataEnd { cr } => {
                    let b = bytes[at];
                    at += 1;
                    match (b, *cr) {
                        (b'\r', false) => *cr = true,
                        (b'\n', true) => self.state = State::size_line(),
                        _ => return Err(FramingError::ChunkEnd),
                    }
                }
                State::Size {
                    size,
                    digits,
                    ext,
                    cr,
                    len,
                } => {
                    let b = bytes[at];
                    at += 1;
                    *len += 1;
                    if *len > MAX_SIZE_LINE {
                        return Err(FramingError::ChunkSize);
                    }
                    if *cr {
                        if b != b'\n' || *digits == 0 {
                            return Err(FramingError::ChunkSize);
                        }
                        self.state = if *size == 0 {
                            State::Trailer {
                                line: 0,
                                cr: false,
                                len: 0,
                            }
                        } else {
                            State::Data(*size)
                        };
                        continue;
                    }
                    match b {
                        b'\r' => *cr = true,
                        _ if *ext => {
                            if b != b'\t' && !(b' '..0x7f).contains(&b) && b < 0x80 {
                                return Err(FramingError::ChunkSize);
                            }
                        }
                        b';' => *ext = true,
                        // Whitespace after the size, before an extension or the line's end
                        // (hyper's and nginx's decoders take it too); digits end there.
                        b' ' | b'\t' if *digits > 0 => *digits = digits.saturating_add(16),
                        _ => {
                            let Some(v) = (b as char).to_digit(16) else {
                                return Err(FramingError::ChunkSize);
                            };
                            // 15 hex digits at most (no overflow), none after whitespace.
                            if *digits >= 15 {
                                return Err(FramingError::ChunkSize);
                            }
                            *digits += 1;
                            *size = *size * 16 + u64::from(v);
                        }
                    }
                }
                State::Trailer { line, cr, len } => {
                    let b = bytes[at];
                    at += 1;
                    *len += 1;
                    if *len > MAX_TRAILERS {
                        return Err(FramingError::Trailer);
                    }
                    match (b, *cr) {
                        (b'\n', true) => {
                            if *line == 0 {
                                self.state = State::Done;
                            } else {
                                *line = 0;
                                *cr = false;
                            }
                        }
                        (b'\r', false) => *cr = true,
                        (b'\r' | b'\n', _) | (_, true) => return Err(FramingError::Trailer),
                        _ => *line += 1,
                    }
                }
            }
        }
        Ok(Advance { taken: at, payload })
    }
}

impl State {
    fn size_line() -> State {
        State::Size {
            size: 0,
            digits: 0,
            ext: false,
            cr: false,
            len: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows `input` fed in pieces of `step` bytes: (taken, payload, done).
    fn follow(
        framing: Framing,
        input: &[u8],
        step: usize,
    ) -> Result<(usize, u64, bool), FramingError> {
        let mut body = Body::new(framing);
        let (mut taken, mut payload) = (0, 0);
        for piece in input.chunks(step) {
            let a = body.advance(piece)?;
            taken += a.taken;
            payload += a.payload;
            if a.taken < piece.len() {
                break;
            }
        }
        Ok((taken, payload, body.is_done()))
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_and_trailers_in_any_pieces() {
        let body = b"5\r\nhello\r\n6;name=\"v\"\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        let next = b"GET / HTTP/1.1\r\n\r\n";
        let input = [&body[..], next].concat();
        for step in [1, 2, 3, 7, input.len()] {
            assert_eq!(
                follow(Framing::Chunked, &input, step),
                Ok((body.len(), 11, true)),
                "{step}"
            );
        }
        // Not over without the final CRLF.
        assert_eq!(follow(Framing::Chunked, b"0\r\n", 1), Ok((3, 0, false)));
        // Whitespace after the size, upper-case digits.
        assert_eq!(
            follow(Framing::Chunked, b"A \r\n0123456789\r\n0\r\n\r\n", 4),
            Ok((21, 10, true))
        );
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for (input, e) in [
            (&b"\r\n"[..], FramingError::ChunkSize),
            (b"x\r\n", FramingError::ChunkSize),
            (b"5\nhello", FramingError::ChunkSize),
            (b"1 1\r\n", FramingError::ChunkSize),
            (b"1000000000000000\r\n", FramingError::ChunkSize),
            (b"1;a\x01\r\n", FramingError::ChunkSize),
            (b"5\r\nhelloX", FramingError::ChunkEnd),
            (b"5\r\nhello\n", FramingError::ChunkEnd),
            (b"0\r\nX: 1\n\r\n", FramingError::Trailer),
            (b"0\r\n\n", FramingError::Trailer),
        ] {
            assert_eq!(follow(Framing::Chunked, input, 1), Err(e), "{input:?}");
        }
    }

    #[test]
    fn lengths_and_close() {
        assert_eq!(follow(Framing::Length(3), b"abcdef", 2), Ok((3, 3, true)));
        assert_eq!(follow(Framing::Length(9), b"abcdef", 2), Ok((6, 6, false)));
        assert_eq!(follow(Framing::Length(0), b"abc", 2), Ok((0, 0, true)));
        assert_eq!(follow(Framing::Empty, b"abc", 2), Ok((0, 0, true)));
        assert_eq!(follow(Framing::UntilClose, b"abcdef", 4), Ok((6, 6, false)));
        assert!(Body::new(Framing::UntilClose).until_close());
    }
}
