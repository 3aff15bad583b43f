//! The authoritative lookup: what a line's view of a zone answers to (qname, qtype), as
//! BIND, Knot and NSD answer it (RFC 1034 section 4.3.2 with RFC 4592 wildcards, RFC 2308
//! negative answers, RFC 6604 rcodes for CNAME chains, RFC 8482 minimal ANY).
//!
//! A pure function of the view and the question: no I/O, no clock, no randomness.

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::tree::{Rrset, View};
use super::{Answer, AnswerCode};

/// The most CNAMEs one answer follows; the resolver restarts from the last target.
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
        if let Some((cut, ns)) = view.cut(&current) {
            let at_cut = ns.first().is_some_and(|r| r.name == current);
            if at_cut && qtype == RecordType::DS {
                // DS belongs to the parent side of the cut (RFC 4035 section 3.1.4.1).
                return match cut.get(RecordType::DS) {
                    Some(ds) => {
                        push(&mut answer.answers, ds, None);
                        answer
                    }
                    None => negative(view, answer, AnswerCode::NoError),
                };
            }
            if answer.answers.is_empty() {
                return referral(view, ns);
            }
            // A chain that runs into a delegation stops there, as one that leaves the zone
            // does: the child's data is not ours to give authoritatively.
            return answer;
        }

        let (node, synthesized) = match view.node(&current) {
            Some(node) => (node, false),
            None => match view.wildcard(&current) {
                Some((source, node)) => {
                    // Only the query name's own match: a CNAME chain that reaches a
                    // wildcard is still the answer for the name asked.
                    if answer.answers.is_empty() {
                        answer.wildcard = Some(source);
                    }
                    (node, true)
                }
                None => return negative(view, answer, AnswerCode::NxDomain),
            },
        };
        // Synthesized records take the name asked for (RFC 4592 section 3.3.1).
        let owner = synthesized.then_some(&current);

        if qtype != RecordType::CNAME
            && let Some(cname) = node.get(RecordType::CNAME)
        {
            push(&mut answer.answers, cname, owner);
            let Some(target) = cname_target(cname) else {
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
            RecordType::ANY => node.first(),
            _ => node.get(qtype),
        };
        return match rrset {
            Some(rrset) => {
                push(&mut answer.answers, rrset, owner);
                add_additional(view, &mut answer.additional, rrset);
                answer
            }
            None => negative(view, answer, AnswerCode::NoError),
        };
    }
}

fn push(out: &mut Vec<Record>, rrset: &Rrset, owner: Option<&Name>) {
    out.extend(rrset.iter().map(|r| match owner {
        Some(owner) => {
            let mut r = r.clone();
            r.name = owner.clone();
            r
        }
        None => r.clone(),
    }));
}

fn cname_target(cname: &Rrset) -> Option<Name> {
    match &cname.first()?.data {
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

fn referral(view: &View, ns: &Rrset) -> Answer {
    let mut additional = Vec::new();
    for r in ns.iter() {
        if let RData::NS(target) = &r.data {
            addresses(view, &mut additional, &target.0, true);
        }
    }
    Answer {
        rcode: AnswerCode::NoError,
        authoritative: false,
        answers: Vec::new(),
        authority: ns.to_vec(),
        additional,
        wildcard: None,
    }
}

/// RFC 1035 section 3.3: the addresses of the hosts an NS, MX or SRV answer names.
fn add_additional(view: &View, out: &mut Vec<Record>, rrset: &Rrset) {
    for r in rrset.iter() {
        match &r.data {
            // Name servers below a cut have their glue there, and it is needed to reach them.
            RData::NS(target) => addresses(view, out, &target.0, true),
            RData::MX(mx) => addresses(view, out, &mx.exchange, false),
            RData::SRV(srv) => addresses(view, out, &srv.target, false),
            _ => {}
        }
    }
}

/// Appends the A and AAAA RRsets of `target` if it is a name of this zone (exact names
/// only, as BIND does), and, unless `glue` allows it, not below a zone cut.
fn addresses(view: &View, out: &mut Vec<Record>, target: &Name, glue: bool) {
    if !view.origin.zone_of(target) || (!glue && view.cut(target).is_some()) {
        return;
    }
    let Some(node) = view.node(target) else {
        return;
    };
    for rtype in [RecordType::A, RecordType::AAAA] {
        for r in node.get(rtype).map(|set| set.iter()).into_iter().flatten() {
            if !out.contains(r) {
                out.push(r.clone());
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
