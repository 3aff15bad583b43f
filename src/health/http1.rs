//! The HTTP/1.1 client of health checks and of reads of other instances' results: one GET
//! on a fresh connection (`Connection: close`), its response head, and as much of its body
//! as the caller asks for.
//!
//! This module owns the wire format: the request's bytes, the status line, the headers
//! that frame the body (RFC 9112 §6.3: no body for 1xx, 204 and 304, else chunked
//! Transfer-Encoding, else Content-Length, else up to the connection's end) and the chunked
//! decoding. It bounds sizes (the head, a chunk-size line) but not time — the caller's
//! timeout does, so a target trickling bytes fails there — and it does not judge the
//! answer ([`super::check`] and [`super::sources`] do).
//!
//! Why not hyper: a check is one request on a connection used once, and hyper's connection
//! task, dispatcher and header map cost more CPU than the kernel's own work for a loopback
//! GET (README, "What checks cost"). Interim responses (1xx but 101) are skipped as hyper
//! does; a single LF ends a line as well as CRLF (RFC 9112 §2.2).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest response head read (status line and headers).
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;

/// The longest chunk-size line (size, extensions).
const CHUNK_LINE_LIMIT: usize = 1024;

/// What is read at a time, at least.
const READ_SIZE: usize = 2048;

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResponseError {
    /// Writing the request failed.
    #[error("sending the request: {0}")]
    Send(std::io::Error),
    /// Reading failed (a reset, TLS).
    #[error("reading the response: {0}")]
    Receive(std::io::Error),
    /// The connection ended before a byte of response.
    #[error("the connection closed before a response")]
    NoResponse,
    /// The connection ended inside the head.
    #[error("the connection closed inside the response head")]
    HeadCut,
    /// The head is longer than [`HEAD_LIMIT`].
    #[error("the response head is over {HEAD_LIMIT} bytes")]
    HeadTooLong,
    /// The first line is not `HTTP/1.x NNN ...`.
    #[error("not an HTTP/1 status line: `{0}`")]
    StatusLine(String),
    /// A header line without a name and a colon.
    #[error("a malformed header line: `{0}`")]
    Header(String),
    /// A Content-Length that is not one number.
    #[error("an invalid Content-Length: `{0}`")]
    ContentLength(String),
    /// The connection ended before the Content-Length was read.
    #[error("the connection closed {got} bytes into a {length}-byte body")]
    BodyCut {
        /// Body bytes read.
        got: u64,
        /// The Content-Length.
        length: u64,
    },
    /// The connection ended before the last chunk.
    #[error("the connection closed inside a chunked body")]
    ChunkedCut,
    /// A chunk-size line or a chunk's end is malformed.
    #[error("an invalid chunked body: {0}")]
    Chunk(String),
}

/// Whether a body reader wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Give me the next piece.
    More,
    /// Enough: stop reading.
    Stop,
}

/// How the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// There is none (1xx, 204, 304).
    Empty,
    /// After this many bytes.
    Length(u64),
    /// At the last chunk.
    Chunked,
    /// At the connection's end.
    Close,
}

/// A response head: what a check looks at, and how its body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) framing: Framing,
}

/// A GET's bytes: `Host`, a `User-Agent` saying who asks, `Connection: close`, and an
/// `Authorization` when given. The caller has checked that `path`, `host` and
/// `authorization` hold no control characters (the configuration does).
pub(crate) fn request(path: &str, host: &str, authorization: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + path.len() + host.len());
    for part in [
        "GET ",
        path,
        " HTTP/1.1\r\nHost: ",
        host,
        "\r\nUser-Agent: geoline-health/",
        env!("CARGO_PKG_VERSION"),
        "\r\nConnection: close\r\n",
    ] {
        out.extend_from_slice(part.as_bytes());
    }
    if let Some(value) = authorization {
        out.extend_from_slice(b"Authorization: ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A response whose head was read; its body is still on the connection.
pub(crate) struct Response<S> {
    pub(crate) head: Head,
    stream: S,
    /// Bytes read past the head.
    buf: Vec<u8>,
}

/// Sends `request` on `stream` and reads the response head (interim 1xx responses
/// skipped).
pub(crate) async fn get<S>(mut stream: S, request: &[u8]) -> Result<Response<S>, ResponseError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request)
        .await
        .map_err(ResponseError::Send)?;
    stream.flush().await.map_err(ResponseError::Send)?;
    let mut buf = Vec::with_capacity(READ_SIZE);
    let mut searched = 0;
    loop {
        if let Some(end) = head_end(&buf, searched) {
            let head = parse_head(&buf[..end])?;
            buf.drain(..end);
            searched = 0;
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            return Ok(Response { head, stream, buf });
        }
        if buf.len() > HEAD_LIMIT {
            return Err(ResponseError::HeadTooLong);
        }
        // A line end may straddle two reads: search again from a little before.
        searched = buf.len().saturating_sub(2);
        if fill(&mut stream, &mut buf).await? == 0 {
            return Err(if buf.is_empty() {
                ResponseError::NoResponse
            } else {
                ResponseError::HeadCut
            });
        }
    }
}

impl<S: AsyncRead + Unpin> Response<S> {
    /// Reads the body, handing it to `sink` piece by piece (decoded, as it arrives) until
    /// it ends or `sink` says [`Flow::Stop`].
    pub(crate) async fn read_body(
        mut self,
        mut sink: impl FnMut(&[u8]) -> Flow,
    ) -> Result<(), ResponseError> {
        match self.head.framing {
            Framing::Empty => Ok(()),
            Framing::Close => loop {
                if !self.buf.is_empty() && sink(&self.buf) == Flow::Stop {
                    return Ok(());
                }
                self.buf.clear();
                if fill(&mut self.stream, &mut self.buf).await? == 0 {
                    return Ok(());
                }
            },
            Framing::Length(length) => {
                let mut got = 0u64;
                loop {
                    let left = usize::try_from(length - got).unwrap_or(usize::MAX);
                    let piece = &self.buf[..self.buf.len().min(left)];
                    got += piece.len() as u64;
                    if !piece.is_empty() && sink(piece) == Flow::Stop || got == length {
                        return Ok(());
                    }
                    self.buf.clear();
                    if fill(&mut self.stream, &mut self.buf).await? == 0 {
                        return Err(ResponseError::BodyCut { got, length });
                    }
                }
            }
            Framing::Chunked => {
                let mut decoder = Chunked::Size;
                loop {
                    let (used, progress) = decoder.decode(&self.buf, &mut sink)?;
                    if progress != Progress::NeedMore {
                        return Ok(());
                    }
                    self.buf.drain(..used);
                    if self.buf.len() > CHUNK_LINE_LIMIT {
                        return Err(ResponseError::Chunk(format!(
                            "a chunk-size line over {CHUNK_LINE_LIMIT} bytes"
                        )));
                    }
                    if fill(&mut self.stream, &mut self.buf).await? == 0 {
                        return Err(ResponseError::ChunkedCut);
                    }
                }
            }
        }
    }
}

/// Appends what the next read gives to `buf`; 0 at the connection's end.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<usize, ResponseError> {
    if buf.capacity() - buf.len() < READ_SIZE / 2 {
        buf.reserve(READ_SIZE);
    }
    stream.read_buf(buf).await.map_err(ResponseError::Receive)
}

/// Where the head in `buf` ends (just past its blank line), looking for line ends from
/// `from` on.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + offset;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// The lines of `bytes`, without their CR LF or LF.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// A line for a reason: printable, 80 bytes at most.
fn shown(line: &[u8]) -> String {
    let cut = &line[..line.len().min(80)];
    let mut text = cut.escape_ascii().to_string();
    if cut.len() < line.len() {
        text.push_str("...");
    }
    text
}

/// The status of `HTTP/1.x NNN reason`, when it is one (100..=599).
fn status(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    let (digits, reason) = rest.split_at_checked(3)?;
    if !minor.is_ascii_digit()
        || !digits.iter().all(u8::is_ascii_digit)
        || !(reason.is_empty() || reason[0] == b' ')
    {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u16, |n, &b| n * 10 + u16::from(b - b'0'));
    (100..=599).contains(&status).then_some(status)
}

/// Parses a complete head (status line, headers, blank line).
fn parse_head(head: &[u8]) -> Result<Head, ResponseError> {
    let mut lines = lines(head);
    let status_line = lines.next().unwrap_or_default();
    let status =
        status(status_line).ok_or_else(|| ResponseError::StatusLine(shown(status_line)))?;
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(ResponseError::Header(shown(line)));
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        // A name is a token: no space before the colon, no folded continuation.
        if name.is_empty()
            || name
                .iter()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(ResponseError::Header(shown(line)));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            // `5, 5` (a list of one value repeated) is one length, as RFC 9110 §8.6 allows.
            for part in value.split(|&b| b == b',') {
                let part = part.trim_ascii();
                let n =
                    (!part.is_empty() && part.len() <= 19 && part.iter().all(u8::is_ascii_digit))
                        .then(|| part.iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0')))
                        .filter(|n| length.is_none_or(|l| l == *n))
                        .ok_or_else(|| ResponseError::ContentLength(shown(value)))?;
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding decides: chunked last frames the body, anything else leaves
            // it to the connection's end (RFC 9112 §6.3).
            if let Some(last) = value.rsplit(|&b| b == b',').next() {
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
    }
    let framing = match (status, chunked, length) {
        (100..=199 | 204 | 304, _, _) => Framing::Empty,
        (_, Some(true), _) => Framing::Chunked,
        (_, Some(false), _) => Framing::Close,
        (_, None, Some(n)) => Framing::Length(n),
        (_, None, None) => Framing::Close,
    };
    Ok(Head { status, framing })
}

/// Where a chunked body's decoding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes of it left.
    Data(u64),
    /// After a chunk's data: its CR LF.
    DataEnd,
    /// Past the last chunk (trailers are not read).
    Done,
}

/// How far a decoding step got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// The input ran out: more is needed.
    NeedMore,
    /// The last chunk was reached.
    Ended,
    /// The sink asked to stop.
    Stopped,
}

impl Chunked {
    /// Decodes what `input` holds, handing data to `sink`; how many bytes were used (the
    /// rest is an incomplete line, kept for the next read) and why it stopped.
    fn decode(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Flow,
    ) -> Result<(usize, Progress), ResponseError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match *self {
                Chunked::Done => return Ok((at, Progress::Ended)),
                Chunked::Size => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        return Ok((at, Progress::NeedMore));
                    };
                    let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
                    let size = chunk_size(line)?;
                    at += nl + 1;
                    *self = if size == 0 {
                        Chunked::Done
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if rest.is_empty() {
                        return Ok((at, Progress::NeedMore));
                    }
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    at += n;
                    *self = match left - n as u64 {
                        0 => Chunked::DataEnd,
                        more => Chunked::Data(more),
                    };
                    if sink(&rest[..n]) == Flow::Stop {
                        return Ok((at, Progress::Stopped));
                    }
                }
                Chunked::DataEnd => match rest {
                    [b'\r', b'\n', ..] | [b'\n', ..] => {
                        at += if rest[0] == b'\r' { 2 } else { 1 };
                        *self = Chunked::Size;
                    }
                    [] | [b'\r'] => return Ok((at, Progress::NeedMore)),
                    _ => {
                        return Err(ResponseError::Chunk(
                            "a chunk's data is longer than its size".into(),
                        ));
                    }
                },
            }
        }
    }
}

/// The size a chunk-size line gives (hex digits, then maybe `;extensions`).
fn chunk_size(line: &[u8]) -> Result<u64, ResponseError> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let after = line[digits..].trim_ascii_start();
    if digits == 0 || digits > 15 || !(after.is_empty() || after[0] == b';') {
        return Err(ResponseError::Chunk(format!(
            "a chunk-size line `{}`",
            shown(line)
        )));
    }
    Ok(line[..digits].iter().fold(0u64, |n, &b| {
        n * 16 + u64::from(char::from(b).to_digit(16).unwrap_or(0))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, ResponseError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn the_request_says_what_is_asked_of_whom_and_closes() {
        assert_eq!(
            String::from_utf8(request("/health?from=geoline", "relay.example.com", None))
                .expect("text"),
            format!(
                "GET /health?from=geoline HTTP/1.1\r\nHost: relay.example.com\r\nUser-Agent: geoline-health/{}\r\nConnection: close\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        let with_token = request("/health/results", "[2001:db8::1]:9300", Some("Bearer t"));
        assert!(with_token.ends_with(b"Connection: close\r\nAuthorization: Bearer t\r\n\r\n"));
        assert!(
            with_token.starts_with(b"GET /health/results HTTP/1.1\r\nHost: [2001:db8::1]:9300\r\n")
        );
    }

    #[test]
    fn the_status_line_gives_the_status() {
        assert_eq!(head("HTTP/1.1 200 OK\r\n\r\n").expect("head").status, 200);
        assert_eq!(
            head("HTTP/1.0 503 Service Unavailable\r\n\r\n")
                .expect("head")
                .status,
            503
        );
        // No reason phrase at all, and bare LF line ends.
        assert_eq!(head("HTTP/1.1 204\n\n").expect("head").status, 204);
        assert_eq!(head("HTTP/1.1 404 \r\n\r\n").expect("head").status, 404);
        for bad in [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 600 Nope\r\n\r\n",
            "HTTP/1.1 099 Nope\r\n\r\n",
            "http/1.1 200 OK\r\n\r\n",
            "SSH-2.0-OpenSSH_9.6\r\n\r\n",
            "\r\n\r\n",
        ] {
            let error = head(bad).expect_err(bad).to_string();
            assert!(
                error.starts_with("not an HTTP/1 status line: `"),
                "{bad:?}: {error}"
            );
        }
        assert_eq!(
            head("SSH-2.0-OpenSSH_9.6\r\n\r\n")
                .expect_err("ssh")
                .to_string(),
            "not an HTTP/1 status line: `SSH-2.0-OpenSSH_9.6`"
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nbroken\r\n\r\n")
                .expect_err("header")
                .to_string(),
            "a malformed header line: `broken`"
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n")
                .expect_err("fold")
                .to_string(),
            "a malformed header line: ` folded`"
        );
    }

    #[test]
    fn the_headers_frame_the_body() {
        let framing = |text: &str| head(text).expect(text).framing;
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
            Framing::Length(12)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ncontent-length:5, 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            Framing::Chunked
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Framing::Close
        );
        assert_eq!(
            framing("HTTP/1.0 200 OK\r\nServer: x\r\n\r\n"),
            Framing::Close
        );
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            Framing::Empty
        );
        assert_eq!(
            framing("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Framing::Empty
        );
        for bad in ["5, 6", "-1", "", "0x10", "99999999999999999999"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                head(&text).expect_err(bad).to_string(),
                format!("an invalid Content-Length: `{bad}`")
            );
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_whatever_its_line_ends() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody", 0), Some(19));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\n\nbody", 0), Some(17));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", 0), Some(25));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n", 0), None);
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n\r", 0), None);
        assert_eq!(head_end(b"", 0), None);
    }

    /// Decodes `input` fed in pieces of `step` bytes, as reads would give them.
    fn dechunk(input: &[u8], step: usize) -> Result<(Vec<u8>, Progress), ResponseError> {
        let mut decoder = Chunked::Size;
        let mut body = Vec::new();
        let mut pending = Vec::new();
        for piece in input.chunks(step) {
            pending.extend_from_slice(piece);
            let (used, progress) = decoder.decode(&pending, &mut |data: &[u8]| {
                body.extend_from_slice(data);
                Flow::More
            })?;
            if progress != Progress::NeedMore {
                return Ok((body, progress));
            }
            pending.drain(..used);
        }
        Ok((body, Progress::NeedMore))
    }

    #[test]
    fn a_chunked_body_is_decoded_whatever_the_reads_cut() {
        let wire =
            b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
        for step in 1..=wire.len() {
            let (body, progress) = dechunk(wire, step).expect("decoded");
            assert_eq!(
                (String::from_utf8(body).expect("text").as_str(), progress),
                ("Wikipedia in \r\n\r\nchunks.", Progress::Ended),
                "step {step}"
            );
        }
        // Bare LF line ends, upper-case hex.
        let (body, _) = dechunk(b"A\nabcdefghij\n0\n\n", 3).expect("decoded");
        assert_eq!(body, b"abcdefghij");
        // Cut before the last chunk: more is needed.
        let (body, progress) = dechunk(b"3\r\nabc\r\n", 4).expect("decoded");
        assert_eq!(
            (body.as_slice(), progress),
            (&b"abc"[..], Progress::NeedMore)
        );
    }

    #[test]
    fn a_malformed_chunked_body_is_refused() {
        for (wire, why) in [
            (
                &b"zz\r\nabc\r\n0\r\n\r\n"[..],
                "an invalid chunked body: a chunk-size line `zz`",
            ),
            (b"\r\n", "an invalid chunked body: a chunk-size line ``"),
            (
                b"3 x\r\nabc\r\n",
                "an invalid chunked body: a chunk-size line `3 x`",
            ),
            (
                b"1000000000000000\r\n",
                "an invalid chunked body: a chunk-size line `1000000000000000`",
            ),
            (
                b"3\r\nabcd\r\n0\r\n\r\n",
                "an invalid chunked body: a chunk's data is longer than its size",
            ),
        ] {
            assert_eq!(dechunk(wire, 64).expect_err(why).to_string(), why);
        }
    }

    #[test]
    fn a_sink_that_has_enough_stops_the_decoding() {
        let mut decoder = Chunked::Size;
        let mut seen = Vec::new();
        let (used, progress) = decoder
            .decode(
                b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
                &mut |data: &[u8]| {
                    seen.extend_from_slice(data);
                    Flow::Stop
                },
            )
            .expect("decoded");
        assert_eq!(
            (seen.as_slice(), used, progress),
            (&b"abc"[..], 6, Progress::Stopped)
        );
    }
}
