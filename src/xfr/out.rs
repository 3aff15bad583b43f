//! The messages of an outgoing transfer: a sequence of RRsets packed into as many TCP
//! messages as it takes, each TSIG-signed when the request was (RFC 5936 2.2, RFC 8945
//! 5.3.1).
//!
//! This module owns the packing: the question in the first message only, the OPT record
//! in each when the request had one, messages of at most [`MESSAGE_SIZE`] bytes so that
//! every name can be compressed (a compression pointer reaches 16 KiB), room left for the
//! signature. It does not decide what is sent ([`super::Transfers`]) nor move bytes.

use hickory_proto::op::ResponseCode;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::dns::tsig::{self, StreamSigner};
use crate::dns::wire::query::{QueryHeader, Question};
use crate::dns::wire::response::{EdnsReply, opt_len, write_header, write_opt};
use crate::zone::Rrset;

/// The size a transfer message is filled to: what Knot sends, and as far as compression
/// pointers reach (14 bits), so later names still compress.
pub(crate) const MESSAGE_SIZE: usize = 16 * 1024;

const HEADER_LEN: usize = 12;

/// The messages of one transfer, written one at a time as the connection takes them.
pub(crate) struct Stream {
    header: QueryHeader,
    question: Question,
    edns: Option<EdnsReply>,
    /// What is sent, in order.
    chunks: Vec<Rrset>,
    /// The next record: (chunk, record in it).
    at: (usize, usize),
    /// Messages written so far.
    messages: usize,
    signer: Option<StreamSigner>,
    limit: usize,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("question", &self.question)
            .field("chunks", &self.chunks.len())
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// The messages sending `chunks` in answer to a request with `header` and `question`
    /// (and an OPT record when `edns`), signed by `signer` when the request was.
    pub(crate) fn new(
        header: QueryHeader,
        question: Question,
        edns: Option<EdnsReply>,
        chunks: Vec<Rrset>,
        signer: Option<StreamSigner>,
        signature_room: usize,
    ) -> Stream {
        Stream {
            header,
            question,
            edns,
            chunks,
            at: (0, 0),
            messages: 0,
            signer,
            limit: MESSAGE_SIZE.saturating_sub(signature_room),
        }
    }

    fn done(&self) -> bool {
        self.at.0 >= self.chunks.len()
    }

    /// Moves past empty chunks.
    fn settle(&mut self) {
        while let Some(chunk) = self.chunks.get(self.at.0) {
            if self.at.1 < chunk.len() {
                break;
            }
            self.at = (self.at.0 + 1, 0);
        }
    }

    /// Writes the next message into `out` (cleared first); `false` when every record was
    /// sent (nothing written then). The first message is always written, even without
    /// records.
    pub(crate) fn next(&mut self, out: &mut Vec<u8>) -> bool {
        self.settle();
        let first = self.messages == 0;
        if !first && self.done() {
            return false;
        }
        out.clear();
        let opt = self.edns.as_ref().map_or(0, opt_len);
        let room = self.limit.saturating_sub(opt);
        let mut count: u16 = 0;
        let mut questions: u16 = 0;
        {
            let mut enc = BinEncoder::new(out);
            let _ = enc.emit_vec(&[0; HEADER_LEN]);
            if first
                && self.question.name.emit(&mut enc).is_ok()
                && enc.emit_u16(self.question.qtype.into()).is_ok()
                && enc.emit_u16(self.question.qclass.into()).is_ok()
            {
                questions = 1;
            }
            while let Some(record) = self.chunks.get(self.at.0).and_then(|c| c.get(self.at.1)) {
                let before = enc.offset();
                let fits = record.emit(&mut enc).is_ok() && enc.offset() <= room;
                if !fits {
                    enc.set_offset(before);
                    enc.trim();
                    // A record too large for any message (cannot be: RRsets are checked
                    // to fit at load) is skipped rather than looping forever.
                    if count == 0 {
                        self.at.1 += 1;
                        self.settle();
                        continue;
                    }
                    break;
                }
                count += 1;
                self.at.1 += 1;
                self.settle();
            }
            let end = enc.offset();
            drop(enc);
            out.truncate(end);
        }
        let mut additional = 0;
        if let Some(edns) = &self.edns {
            write_opt(ResponseCode::NoError, edns, out);
            additional = 1;
        }
        write_header(
            &self.header,
            true,
            ResponseCode::NoError,
            [questions, count, 0, additional],
            false,
            out,
        );
        self.messages += 1;
        let last = self.done();
        if let Some(signer) = &mut self.signer {
            signer.next(out, last, tsig::now());
        }
        true
    }
}
