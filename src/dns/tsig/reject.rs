//! The response to a request the TSIG step refused: FORMERR, or NOTAUTH with a TSIG
//! record saying why (RFC 8945 5.2, 5.3.2).
//!
//! This module owns the shape of those responses: the request's header bits and its one
//! question echoed, an OPT record when the request had one, and the TSIG record, signed
//! for BADTIME and BADTRUNC, unsigned (no MAC) for BADKEY and BADSIG. It decides nothing
//! ([`super::verify`] does).

use hickory_proto::op::ResponseCode;

use super::record::{self, Fields};
use super::verify::{Rejection, RejectionKind};
use crate::dns::wire::{
    CD, HEADER_LEN, Header, MAX_NAME, OPT, QR, RD, dnssec_ok, opt_ttl, read_name_lower,
};

/// What a rejection answered, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub(crate) rcode: ResponseCode,
    /// The question's type, when it was echoed.
    pub(crate) qtype: Option<u16>,
}

/// Writes the response to `request`, refused as `rejection` says, into `out` (cleared
/// first); `None` when `request` is not a request at all (too short, or a response):
/// nothing is sent then.
pub(crate) fn write(
    rejection: &Rejection,
    request: &[u8],
    max_udp_payload: u16,
    out: &mut Vec<u8>,
) -> Option<Rejected> {
    out.clear();
    let asked = Header::read(request)?;
    if asked.has(QR) {
        return None;
    }
    let rcode = match rejection.kind {
        RejectionKind::Malformed(_) => ResponseCode::FormErr,
        _ => ResponseCode::NotAuth,
    };
    let mut header = Header::response(asked.id, [0; 4]);
    header.set_opcode(asked.opcode());
    header.set(RD, asked.has(RD));
    header.set(CD, asked.has(CD));
    header.set_rcode(u16::from(rcode) as u8);
    out.extend_from_slice(&[0; HEADER_LEN]);
    // The question, when there is one in plain (uncompressed) form to copy.
    let mut qtype = None;
    if asked.counts[0] == 1 {
        let mut name = [0u8; MAX_NAME];
        if let Some(end) = read_name_lower(request, HEADER_LEN, &mut name)
            && let Some(question) = request.get(HEADER_LEN..end + 4)
        {
            out.extend_from_slice(question);
            header.counts[0] = 1;
            qtype = Some(u16::from_be_bytes([request[end], request[end + 1]]));
        }
    }
    header.write(out);
    if let Some(ttl) = rejection.opt_ttl {
        out.push(0);
        out.extend_from_slice(&OPT.to_be_bytes());
        out.extend_from_slice(&max_udp_payload.to_be_bytes());
        out.extend_from_slice(&opt_ttl(0, dnssec_ok(ttl)).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        record::add_to_additional_count(out, 1);
    }
    match &rejection.kind {
        RejectionKind::Malformed(_) => {}
        RejectionKind::Unsigned {
            error,
            key_name,
            algorithm,
            time_signed,
            fudge,
        } => {
            let fields = Fields {
                key_name,
                algorithm,
                time_signed: *time_signed,
                fudge: *fudge,
                original_id: asked.id,
                error: *error,
                other: &[],
            };
            record::append(out, &fields, &[]);
        }
        RejectionKind::Signed {
            error,
            signer,
            time_signed,
            other,
        } => {
            signer.0.sign_with(out, *time_signed, *error, other);
        }
    }
    Some(Rejected { rcode, qtype })
}
