//! The authoritative lookup: what a line's view of a zone answers to (qname, qtype), as
//! BIND, Knot and NSD answer it (RFC 1034 section 4.3.2 with RFC 4592 wildcards, RFC 6672
//! DNAME, RFC 2308 negative answers, RFC 6604 rcodes for CNAME chains, RFC 8482 minimal
//! ANY).
//!
//! A pure function of the view and the question: no I/O, no clock, no randomness.

use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::packed::Packed;
use super::rdata;
use super::tree::{Node, Redirection, View, label_count};
use super::{Answer, AnswerCode};

/// The most records a CNAME or DNAME chain fills the answer with; the resolver restarts
/// from the last target.
pub(crate) const MAX_CHAIN: usize = 16;

pub(crate) fn lookup(view: &View, qname: &Name, qtype: RecordType) -> Answer {
    let mut answer = Answer {
        rcode: AnswerCode::NoError,
        authoritative: true,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        wildcard: None,
    };
    if !view.origin.zone_of(qname) {
        // Not ours: ZoneSet::find never hands such a name to a zone.
        answer.authoritative = false;
        return answer;
    }
    let mut current = qname.clone();
    current.set_fqdn(true);
    loop {
        match view.redirection(&current) {
            None => {}
            Some(Redirection::Cut(owner, cut, ns)) => {
                return delegation(view, answer, &current, qtype, (owner, cut), ns);
            }
            Some(Redirection::Dname(owner, dname)) => {
                match follow_dname(view, &mut answer, owner, dname, &current) {
                    Some(target) => {
                        current = target;
                        continue;
                    }
                    None => return answer,
                }
            }
        }

        let (key, node) = match view.entry(&current) {
            Some((key, node)) => (Some(key), node),
            None => match view.wildcard(&current) {
                Some((source, node)) => {
                    // Only the query name's own match: a CNAME chain that reaches a
                    // wildcard is still the answer for the name asked.
                    if answer.answers.is_empty() {
                        answer.wildcard = Some(source);
                    }
                    (None, node)
                }
                None => return negative(view, answer, AnswerCode::NxDomain),
            },
        };
        // Records take the name as the zone has it; synthesized ones, the name asked for
        // (RFC 4592 section 3.3.1).
        let owner = key.unwrap_or(&current);

        if restarts_at_cname(qtype)
            && let Some(cname) = node.get(RecordType::CNAME)
        {
            let at = answer.answers.len();
            push(&mut answer.answers, cname, owner);
            let Some(target) = answer.answers.get(at).and_then(cname_target) else {
                return answer;
            };
            let looped = answer.answers.iter().any(|r| r.name == target);
            if looped || answer.answers.len() >= MAX_CHAIN || !view.origin.zone_of(&target) {
                return answer;
            }
            current = target;
            continue;
        }

        let rrset = match qtype {
            // Minimal ANY (RFC 8482): one RRset, the lowest type. At a CNAME that is the
            // CNAME, since only RRSIG and NSEC (higher types) stand beside one.
            RecordType::ANY => node.first(),
            _ => node.get(qtype),
        };
        return match rrset {
            Some(rrset) => {
                let at = answer.answers.len();
                push(&mut answer.answers, rrset, owner);
                add_additional(view, &mut answer.additional, &answer.answers[at..]);
                answer
            }
            None => negative(view, answer, AnswerCode::NoError),
        };
    }
}

/// The answer at a zone cut `current` is at or below, after the chain in `answer` if any.
fn delegation(
    view: &View,
    mut answer: Answer,
    current: &Name,
    qtype: RecordType,
    (owner, cut): (&Name, &Node),
    ns: &Packed,
) -> Answer {
    let at_cut = owner == current;
    if at_cut && qtype == RecordType::DS {
        // DS belongs to the parent side of the cut (RFC 4035 sections 2.4 and 3.1.4.1).
        return match cut.get(RecordType::DS) {
            Some(ds) => {
                push(&mut answer.answers, ds, owner);
                answer
            }
            None => negative(view, answer, AnswerCode::NoError),
        };
    }
    // A referral, for the query name or at the end of a chain: RFC 1034 4.3.2 step 3b
    // continues a chain into it. AA covers the first owner name of the answer section
    // (RFC 1035 4.1.1): clear for a plain referral, set when our CNAMEs lead into it, as
    // Knot and BIND answer.
    answer.authoritative = !answer.answers.is_empty();
    answer.authority = ns.records(owner).collect();
    for r in &answer.authority {
        if let RData::NS(target) = &r.data {
            addresses(view, &mut answer.additional, &target.0);
        }
    }
    answer
}

/// RFC 6672 3.2: `current` is below the owner of `dname`. Adds the DNAME (once) and the
/// CNAME synthesized from it (with the DNAME's TTL, RFC 6672 3.1) to the answer and
/// returns the new name to go on with, or `None` when the answer ends here: the new name
/// is too long (YXDOMAIN, RFC 6672 2.2), outside the zone, already in the chain, or the
/// chain is at its limit (the synthesized CNAME counts in it).
fn follow_dname(
    view: &View,
    answer: &mut Answer,
    owner: &Name,
    dname: &Packed,
    current: &Name,
) -> Option<Name> {
    let record = dname.first(owner)?;
    let target = rdata::dname_target(&record.data)?;
    let ttl = record.ttl;
    if !answer.answers.contains(&record) {
        answer.answers.push(record);
    }
    let below = label_count(current) - label_count(owner);
    let synthesized = Name::from_labels(current.iter().take(below))
        .and_then(|prefix| prefix.append_domain(&target));
    let Ok(synthesized) = synthesized else {
        answer.rcode = AnswerCode::YxDomain;
        return None;
    };
    let looped = answer.answers.iter().any(|r| r.name == synthesized);
    answer.answers.push(Record::from_rdata(
        current.clone(),
        ttl,
        RData::CNAME(CNAME(synthesized.clone())),
    ));
    if looped || answer.answers.len() >= MAX_CHAIN || !view.origin.zone_of(&synthesized) {
        return None;
    }
    Some(synthesized)
}

/// Whether a query of `qtype` that meets a CNAME restarts at its target (RFC 1034 4.3.2
/// step 3a). CNAME and ANY match the CNAME itself (RFC 1034 3.6.2; `*` matches every type,
/// RFC 1035 3.2.3); RRSIG and NSEC live beside a CNAME (RFC 4035 2.5), so they are
/// answered at its name, NODATA when it has none. Knot draws the same line.
fn restarts_at_cname(qtype: RecordType) -> bool {
    !matches!(
        qtype,
        RecordType::CNAME | RecordType::ANY | RecordType::RRSIG | RecordType::NSEC
    )
}

/// Appends the records of `rrset`, under `owner`.
fn push(out: &mut Vec<Record>, rrset: &Packed, owner: &Name) {
    out.extend(rrset.records(owner));
}

fn cname_target(cname: &Record) -> Option<Name> {
    match &cname.data {
        RData::CNAME(target) => {
            let mut target = target.0.clone();
            target.set_fqdn(true);
            Some(target)
        }
        _ => None,
    }
}

/// NXDOMAIN or NODATA: the answers so far (a CNAME chain) and the SOA (RFC 2308).
fn negative(view: &View, mut answer: Answer, rcode: AnswerCode) -> Answer {
    answer.rcode = rcode;
    answer.authority.push(view.negative_soa.clone());
    answer
}

/// RFC 1035 section 3.3: the addresses of the hosts an NS, MX or SRV answer names.
fn add_additional(view: &View, out: &mut Vec<Record>, rrset: &[Record]) {
    for r in rrset {
        match &r.data {
            RData::NS(target) => addresses(view, out, &target.0),
            RData::MX(mx) => addresses(view, out, &mx.exchange),
            RData::SRV(srv) => addresses(view, out, &srv.target),
            _ => {}
        }
    }
}

/// Appends the A and AAAA RRsets of `target` if it is a name of this zone: its own, the
/// glue below a zone cut (needed to reach a name server, useful for a mail or service
/// host), or, for a name that does not exist, those a wildcard synthesizes for it
/// (RFC 4592), as Knot does. Nothing for a name outside the zone.
fn addresses(view: &View, out: &mut Vec<Record>, target: &Name) {
    if !view.origin.zone_of(target) {
        return;
    }
    let (node, owner) = match (view.redirection(target), view.entry(target)) {
        // Below a DNAME, names are occluded: the resolver follows the DNAME instead.
        (Some(Redirection::Dname(..)), _) => return,
        (_, Some((owner, node))) => (node, owner),
        // Below a cut a name is the child's to deny: no parent wildcard covers it.
        (Some(Redirection::Cut(..)), None) => return,
        (None, None) => match view.wildcard(target) {
            Some((_, node)) => (node, target),
            None => return,
        },
    };
    for rtype in [RecordType::A, RecordType::AAAA] {
        let Some(rrset) = node.get(rtype) else {
            continue;
        };
        for r in rrset.records(owner) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
}

/// Whether two answers differ in anything a client sees, TTLs included (hickory's
/// `Record` equality leaves the TTL out).
pub(crate) fn same_answer(a: &Answer, b: &Answer) -> bool {
    fn same(x: &[Record], y: &[Record]) -> bool {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(r, s)| r == s && r.ttl == s.ttl && r.name.eq_case(&s.name))
    }
    a.rcode == b.rcode
        && a.authoritative == b.authoritative
        && same(&a.answers, &b.answers)
        && same(&a.authority, &b.authority)
        && same(&a.additional, &b.additional)
}

#[cfg(test)]
mod tests;
