//! What answering one message gave, whichever path answered it: the [`Outcome`] that
//! metrics count, the [`ResponseKind`] that rate limiting keys by, and the [`Transport`]
//! the message came over.
//!
//! The cache ([`super::cache`]) and the strict path ([`super::decide`]) both describe what
//! they answered with an [`Answered`], so that rate limiting and metrics never look at how
//! a response was made.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::lines::LineId;

/// How the message arrived: it bounds the response size, and only UDP is rate limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Bounded by the client's EDNS payload size (at most `max_udp_payload`), or 512 bytes.
    Udp,
    /// Up to 65535 bytes, never rate limited.
    Tcp,
}

/// What was answered, for metrics: the same whether the response came from the answer
/// cache or from the strict path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The zone's index in the [`crate::zone::ZoneSet`] and the line, when a zone answered.
    pub zone: Option<(usize, LineId)>,
    /// The question's type, when there was a readable question.
    pub qtype: Option<RecordType>,
    pub rcode: ResponseCode,
    pub had_client_subnet: bool,
    pub truncated: bool,
    /// What the response is, for rate limiting.
    pub kind: ResponseKind,
}

/// An [`Outcome`] and the name rate limiting counts it by, as the path that answered it
/// has that name at hand: nothing is computed for it unless rate limiting is on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answered<'a> {
    pub(crate) outcome: Outcome,
    pub(crate) name: CountedName<'a>,
}

/// The name an answer is counted by: the wildcard it was synthesized from, else the
/// question's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CountedName<'a> {
    /// In wire form, lower-cased (the cache keeps names so).
    Wire(&'a [u8]),
    /// As hickory read it; rate limiting writes it lower-cased when it needs it.
    Name(&'a Name),
    /// No question could be read.
    None,
}

/// What a response is, for rate limiting: each kind has its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// NOERROR with records in the answer section.
    Answer,
    /// NOERROR, authoritative, no answer: the name exists without the type.
    NoData,
    /// NOERROR, not authoritative, no answer: a delegation.
    Referral,
    /// NXDOMAIN, authoritative: the name does not exist in the zone.
    NxDomain,
    /// REFUSED, FORMERR, NOTIMP, BADVERS and the like.
    Error,
}

impl ResponseKind {
    /// Every kind, in [`ResponseKind::index`] order: for per-kind counter tables.
    pub const ALL: [ResponseKind; 5] = [
        ResponseKind::Answer,
        ResponseKind::NoData,
        ResponseKind::Referral,
        ResponseKind::NxDomain,
        ResponseKind::Error,
    ];

    /// The kind of a response with `rcode`, `answers` answer records, from a zone or not.
    pub fn classify(
        rcode: ResponseCode,
        authoritative: bool,
        answers: usize,
        from_zone: bool,
    ) -> ResponseKind {
        match rcode {
            ResponseCode::NXDomain => ResponseKind::NxDomain,
            ResponseCode::NoError if !from_zone => ResponseKind::Error,
            ResponseCode::NoError if answers > 0 => ResponseKind::Answer,
            ResponseCode::NoError if authoritative => ResponseKind::NoData,
            ResponseCode::NoError => ResponseKind::Referral,
            _ => ResponseKind::Error,
        }
    }

    /// The kind's position in [`ResponseKind::ALL`], below 5.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ResponseKind::Answer => "answer",
            ResponseKind::NoData => "nodata",
            ResponseKind::Referral => "referral",
            ResponseKind::NxDomain => "nxdomain",
            ResponseKind::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        use ResponseCode as R;
        let k = ResponseKind::classify;
        assert_eq!(k(R::NoError, true, 1, true), ResponseKind::Answer);
        assert_eq!(k(R::NoError, true, 0, true), ResponseKind::NoData);
        assert_eq!(k(R::NoError, false, 0, true), ResponseKind::Referral);
        assert_eq!(k(R::NXDomain, true, 1, true), ResponseKind::NxDomain);
        assert_eq!(k(R::Refused, false, 0, false), ResponseKind::Error);
        assert_eq!(k(R::FormErr, false, 0, false), ResponseKind::Error);
    }
}
