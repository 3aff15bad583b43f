//! One transfer pulled from one primary over TCP: the AXFR or IXFR request (signed when
//! the line has a key), the answer's messages read under a timeout, every one verified
//! as RFC 8945 5.3.1 requires, and their records handed to the [`Assembler`].
//!
//! This module owns the request and the reading. It does not decide what to ask for nor
//! what to do with what came ([`super`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::assemble::{AssembleError, Assembler, Transferred};
use crate::dns::tsig::response::{AnswerTsigError, AnswerVerifier};
use crate::dns::tsig::{self, Key, sign_request};
use crate::dns::wire::{Header, QR};

/// How long connecting, and each read of the answer, may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// What one transfer brought, and what it cost.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) transferred: Transferred,
    /// The answer's bytes (the messages, their length prefixes left out).
    pub(crate) bytes: usize,
    pub(crate) messages: usize,
}

/// Why a transfer from one primary failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PullError {
    /// The primary did not take the connection.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The connection broke.
    #[error("the connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing came in time.
    #[error("no answer within {} s", TIMEOUT.as_secs())]
    Timeout,
    /// The primary answered with an error.
    #[error("the primary answered {0}")]
    Rcode(ResponseCode),
    /// A message that is not a DNS answer to the request.
    #[error("a malformed answer: {0}")]
    Malformed(String),
    /// The signatures do not verify: nothing of the answer is taken.
    #[error(transparent)]
    Tsig(#[from] AnswerTsigError),
    /// The records do not make a transfer answer.
    #[error(transparent)]
    Records(#[from] AssembleError),
}

/// The request: a QUERY for `origin`'s AXFR, or IXFR from `have` (the SOA held, put in
/// the authority section, RFC 1995 3).
fn request(origin: &Name, id: u16, have: Option<&Record>) -> Vec<u8> {
    let qtype = if have.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let mut out = vec![0u8; 12];
    let mut authority = 0;
    {
        let mut enc = BinEncoder::new(&mut out);
        enc.set_offset(12);
        let _ = origin.emit(&mut enc);
        let _ = enc.emit_u16(qtype.into());
        let _ = enc.emit_u16(DNSClass::IN.into());
        if let Some(soa) = have
            && soa.emit(&mut enc).is_ok()
        {
            authority = 1;
        }
    }
    let mut header = Header::response(id, [1, 0, authority, 0]);
    header.set(QR, false);
    header.write(&mut out);
    out
}

/// A connection to `primary` with `request` sent on it (length-prefixed), within
/// [`TIMEOUT`].
async fn send(primary: SocketAddr, request: &[u8]) -> Result<TcpStream, PullError> {
    let mut stream = match tokio::time::timeout(TIMEOUT, TcpStream::connect(primary)).await {
        Err(_) => return Err(PullError::Timeout),
        Ok(Err(e)) => return Err(PullError::Connect(e)),
        Ok(Ok(stream)) => stream,
    };
    let len = u16::try_from(request.len()).map_err(|_| PullError::Malformed("request".into()))?;
    let mut framed = Vec::with_capacity(request.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(request);
    stream.write_all(&framed).await?;
    Ok(stream)
}

async fn read_message(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, PullError> {
    let mut len = [0u8; 2];
    match tokio::time::timeout(TIMEOUT, stream.read_exact(&mut len)).await {
        Err(_) => return Err(PullError::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(_)) => {}
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    match tokio::time::timeout(TIMEOUT, stream.read_exact(&mut message)).await {
        Err(_) => Err(PullError::Timeout),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(_)) => Ok(Some(message)),
    }
}

/// Pulls `origin` from `primary`: IXFR from `have` when given, else AXFR; signed with
/// `key` when given, and then every message of the answer verified with it.
pub(crate) async fn pull(
    primary: SocketAddr,
    origin: &Name,
    key: Option<&Arc<Key>>,
    have: Option<&Record>,
) -> Result<Received, PullError> {
    let id = getrandom::u32().map_or(0x5eed, |n| n as u16);
    let mut bytes = request(origin, id, have);
    let mut verifier = key.map(|key| {
        let mac = sign_request(key, &mut bytes, tsig::now());
        AnswerVerifier::new(key.clone(), mac)
    });
    let mut stream = send(primary, &bytes).await?;
    let mut assembler = Assembler::new(origin, have.is_some());
    let mut received = 0;
    let mut messages = 0;
    while !assembler.done() {
        let Some(message) = read_message(&mut stream).await? else {
            return Err(AssembleError::Truncated.into());
        };
        received += message.len();
        let header = Header::read(&message)
            .ok_or_else(|| PullError::Malformed("a message shorter than a header".into()))?;
        if header.id != id || !header.has(QR) {
            return Err(PullError::Malformed(
                "a message that does not answer the request".into(),
            ));
        }
        let rcode = header.flags & 0x000F;
        if rcode != 0 {
            return Err(PullError::Rcode(ResponseCode::from_low(rcode as u8)));
        }
        let plain = match verifier.as_mut() {
            Some(verifier) => verifier.next(&message, tsig::now())?,
            None => message,
        };
        let parsed = Message::from_vec(&plain).map_err(|e| PullError::Malformed(e.to_string()))?;
        if parsed.message_type != MessageType::Response || parsed.op_code != OpCode::Query {
            return Err(PullError::Malformed("not a QUERY response".into()));
        }
        for record in parsed.answers {
            if record.dns_class != DNSClass::IN {
                return Err(PullError::Malformed(format!(
                    "`{}` is in class {}",
                    record.name, record.dns_class
                )));
            }
            assembler.push(record)?;
        }
        if messages == 0 {
            assembler.end_of_first_message();
        }
        messages += 1;
    }
    if let Some(verifier) = &verifier {
        verifier.finish()?;
    }
    Ok(Received {
        transferred: assembler.finish()?,
        bytes: received,
        messages,
    })
}

/// What a primary said when asked for the digest of its line definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrimaryLines {
    /// A geoline primary's digest (`sha256:...`).
    Digest(String),
    /// No digest: a primary that is not geoline (Knot, BIND: REFUSED, NOTIMP, NXDOMAIN),
    /// or one that does not let this secondary see it; the rcode it answered.
    NotGiven(ResponseCode),
}

/// Asks `primary` for the digest of its line definitions (`lines.geoline.` CH TXT, see
/// [`crate::xfr::chaos`]) over TCP, signed with `key` when given. A digest is taken only
/// from a NOERROR answer whose signature verifies; an error rcode is taken as it comes
/// (signed or not: it only ever says "no digest").
pub(crate) async fn lines_digest(
    primary: SocketAddr,
    key: Option<&Arc<Key>>,
) -> Result<PrimaryLines, PullError> {
    let id = getrandom::u32().map_or(0x11e5, |n| n as u16);
    let name = Name::from_ascii(crate::xfr::chaos::NAME)
        .map_err(|e| PullError::Malformed(e.to_string()))?;
    let mut bytes = vec![0u8; 12];
    {
        let mut enc = BinEncoder::new(&mut bytes);
        enc.set_offset(12);
        let _ = name.emit(&mut enc);
        let _ = enc.emit_u16(RecordType::TXT.into());
        let _ = enc.emit_u16(DNSClass::CH.into());
    }
    let mut header = Header::response(id, [1, 0, 0, 0]);
    header.set(QR, false);
    header.write(&mut bytes);
    let mut verifier = key.map(|key| {
        let mac = sign_request(key, &mut bytes, tsig::now());
        AnswerVerifier::new(key.clone(), mac)
    });
    let mut stream = send(primary, &bytes).await?;
    let Some(message) = read_message(&mut stream).await? else {
        return Err(PullError::Malformed(
            "the connection closed without an answer".into(),
        ));
    };
    let header = Header::read(&message)
        .ok_or_else(|| PullError::Malformed("a message shorter than a header".into()))?;
    if header.id != id || !header.has(QR) {
        return Err(PullError::Malformed(
            "a message that does not answer the request".into(),
        ));
    }
    let rcode = ResponseCode::from_low((header.flags & 0x000F) as u8);
    if rcode != ResponseCode::NoError {
        return Ok(PrimaryLines::NotGiven(rcode));
    }
    let plain = match verifier.as_mut() {
        Some(verifier) => {
            let plain = verifier.next(&message, tsig::now())?;
            verifier.finish()?;
            plain
        }
        None => message,
    };
    let parsed = Message::from_vec(&plain).map_err(|e| PullError::Malformed(e.to_string()))?;
    let digest = parsed.answers.iter().find_map(|record| match &record.data {
        RData::TXT(txt) if record.dns_class == DNSClass::CH && record.name == name => {
            let text: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            String::from_utf8(text).ok()
        }
        _ => None,
    });
    Ok(match digest {
        Some(digest) => PrimaryLines::Digest(digest),
        None => PrimaryLines::NotGiven(rcode),
    })
}
