//! What the records of a transfer answer say, and a line's records after an incremental
//! one: the pure part of pulling a zone.
//!
//! An AXFR answer (RFC 5936 2.2) is the SOA, every other record, the SOA again. An IXFR
//! answer (RFC 1995 4) is either the SOA alone (the requester is current), the whole zone
//! as AXFR has it, or the new SOA, then per version step the old SOA and the records
//! removed, the new SOA and the records added, and the new SOA last. [`Assembler`] reads
//! either record by record, across messages, and says when it ended; [`apply`] applies
//! the steps of an incremental answer to the records a line has.
//!
//! This module does not move bytes nor verify signatures ([`super::client`]).

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RData, Record, RecordType};

/// What a transfer brought.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transferred {
    /// The primary's serial is the one asked from (an IXFR answered with the SOA alone).
    Current(u32),
    /// The whole zone, its SOA first (the closing SOA left out).
    Full(Vec<Record>),
    /// The differences from the requester's serial to `soa`'s.
    Incremental {
        /// The new SOA.
        soa: Box<Record>,
        /// Each version step, in order.
        steps: Vec<Step>,
    },
}

/// One version step of an incremental transfer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    /// The serial it starts from.
    pub(crate) from: u32,
    pub(crate) removed: Vec<Record>,
    /// The SOA it ends at.
    pub(crate) to: Record,
    pub(crate) added: Vec<Record>,
}

/// Why a transfer's records do not make an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AssembleError {
    /// The first record is not the zone's SOA.
    #[error("the answer does not start with the zone's SOA")]
    NoSoa,
    /// Records after the closing SOA.
    #[error("records after the closing SOA")]
    AfterEnd,
    /// The connection ended before the closing SOA.
    #[error("the transfer ended before its closing SOA (truncated)")]
    Truncated,
    /// A record outside the zone.
    #[error("record `{0}` is outside the zone")]
    Outside(String),
}

/// Why an incremental transfer does not apply to the records a line has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApplyError {
    /// A step starts from another serial than the one reached.
    #[error("a step starts from serial {step}, and the copy is at {have}")]
    Gap {
        /// Where the copy is.
        have: u32,
        /// Where the step starts.
        step: u32,
    },
    /// A step removes a record the copy does not hold.
    #[error("a step removes `{0}`, which the copy does not hold")]
    Missing(String),
}

// One per transfer, replaced record by record: the size of its largest variant costs a
// copy per record, not memory.
#[allow(clippy::large_enum_variant)]
enum State {
    Start,
    /// After the first SOA: what follows says which kind of answer it is.
    Opened(Record),
    Full(Record, Vec<Record>),
    Removing {
        soa: Record,
        steps: Vec<Step>,
        from: u32,
        removed: Vec<Record>,
    },
    Adding {
        soa: Record,
        steps: Vec<Step>,
        step: Step,
    },
    Done(Transferred),
}

/// Reads the records of one transfer answer, in order.
pub(crate) struct Assembler {
    origin: Name,
    ixfr: bool,
    state: State,
}

fn serial(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

impl Assembler {
    /// Reads the answer to an AXFR (`ixfr` false) or IXFR of the zone `origin`.
    pub(crate) fn new(origin: &Name, ixfr: bool) -> Assembler {
        Assembler {
            origin: origin.clone(),
            ixfr,
            state: State::Start,
        }
    }

    /// Whether the closing SOA was read.
    pub(crate) fn done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// Takes the next record of the answer.
    pub(crate) fn push(&mut self, record: Record) -> Result<(), AssembleError> {
        if !self.origin.zone_of(&record.name) {
            return Err(AssembleError::Outside(record.name.to_string()));
        }
        let soa = (record.name == self.origin)
            .then(|| serial(&record))
            .flatten();
        let state = std::mem::replace(&mut self.state, State::Start);
        self.state = match (state, soa) {
            (State::Start, Some(_)) => State::Opened(record),
            (State::Start, None) => return Err(AssembleError::NoSoa),
            (State::Opened(first), Some(s)) if self.ixfr && Some(s) != serial(&first) => {
                State::Removing {
                    soa: first,
                    steps: Vec::new(),
                    from: s,
                    removed: Vec::new(),
                }
            }
            // The SOA twice: a zone of nothing but its SOA.
            (State::Opened(first), Some(_)) => State::Done(Transferred::Full(vec![first])),
            (State::Opened(first), None) => State::Full(first.clone(), vec![first, record]),
            (State::Full(first, records), Some(s)) if Some(s) == serial(&first) => {
                State::Done(Transferred::Full(records))
            }
            // Another SOA inside a whole zone: a second SOA at the apex is not a zone, and
            // the zone check refuses it later.
            (State::Full(first, mut records), _) => {
                records.push(record);
                State::Full(first, records)
            }
            (
                State::Removing {
                    soa,
                    steps,
                    from,
                    removed,
                },
                Some(_),
            ) => State::Adding {
                soa,
                steps,
                step: Step {
                    from,
                    removed,
                    to: record,
                    added: Vec::new(),
                },
            },
            (
                State::Removing {
                    soa,
                    steps,
                    from,
                    mut removed,
                },
                None,
            ) => {
                removed.push(record);
                State::Removing {
                    soa,
                    steps,
                    from,
                    removed,
                }
            }
            (
                State::Adding {
                    soa,
                    mut steps,
                    step,
                },
                Some(s),
            ) => {
                steps.push(step);
                if Some(s) == serial(&soa) {
                    State::Done(Transferred::Incremental {
                        soa: Box::new(soa),
                        steps,
                    })
                } else {
                    State::Removing {
                        soa,
                        steps,
                        from: s,
                        removed: Vec::new(),
                    }
                }
            }
            (
                State::Adding {
                    soa,
                    steps,
                    mut step,
                },
                None,
            ) => {
                step.added.push(record);
                State::Adding { soa, steps, step }
            }
            (State::Done(_), _) => return Err(AssembleError::AfterEnd),
        };
        Ok(())
    }

    /// The end of the first message: an IXFR answer that is the SOA alone says the
    /// requester is current (RFC 1995 4).
    pub(crate) fn end_of_first_message(&mut self) {
        if !self.ixfr {
            return;
        }
        if let State::Opened(first) = &self.state
            && let Some(s) = serial(first)
        {
            self.state = State::Done(Transferred::Current(s));
        }
    }

    /// What the answer brought, once it is done.
    pub(crate) fn finish(self) -> Result<Transferred, AssembleError> {
        match self.state {
            State::Done(transferred) => Ok(transferred),
            _ => Err(AssembleError::Truncated),
        }
    }
}

/// The records a line has, by (owner lower case, type).
type Sets = BTreeMap<(Name, RecordType), Vec<Record>>;

/// `records` (a whole line's view, at serial `have`) with the `steps` of an incremental
/// transfer applied, up to `soa`; the SOA first.
pub(crate) fn apply(
    records: Vec<Record>,
    have: u32,
    soa: &Record,
    steps: &[Step],
) -> Result<Vec<Record>, ApplyError> {
    let mut sets: Sets = BTreeMap::new();
    for record in records {
        sets.entry((record.name.to_lowercase(), record.record_type()))
            .or_default()
            .push(record);
    }
    let mut at = have;
    for step in steps {
        if step.from != at {
            return Err(ApplyError::Gap {
                have: at,
                step: step.from,
            });
        }
        for record in &step.removed {
            let key = (record.name.to_lowercase(), record.record_type());
            let set = sets.get_mut(&key);
            let found = set
                .as_ref()
                .and_then(|set| set.iter().position(|r| r == record));
            match (set, found) {
                (Some(set), Some(i)) => {
                    set.remove(i);
                    if set.is_empty() {
                        sets.remove(&key);
                    }
                }
                _ => {
                    return Err(ApplyError::Missing(format!(
                        "{} {}",
                        record.name,
                        record.record_type()
                    )));
                }
            }
        }
        for record in &step.added {
            let set = sets
                .entry((record.name.to_lowercase(), record.record_type()))
                .or_default();
            // Adding a record already there changes its TTL at most.
            set.retain(|r| r != record);
            set.push(record.clone());
        }
        at = serial(&step.to).unwrap_or(at);
    }
    let origin = soa.name.to_lowercase();
    sets.remove(&(origin, RecordType::SOA));
    let mut out = Vec::with_capacity(sets.values().map(Vec::len).sum::<usize>() + 1);
    out.push(soa.clone());
    out.extend(sets.into_values().flatten());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn soa(serial: u32) -> Record {
        let origin = name("example.com.");
        Record::from_rdata(
            origin.clone(),
            300,
            RData::SOA(SOA::new(origin.clone(), origin, serial, 60, 10, 600, 30)),
        )
    }

    fn a(owner: &str, last: u8) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A::new(192, 0, 2, last)))
    }

    fn read(ixfr: bool, messages: &[Vec<Record>]) -> Result<Transferred, AssembleError> {
        let mut assembler = Assembler::new(&name("example.com."), ixfr);
        for (i, message) in messages.iter().enumerate() {
            for record in message {
                assembler.push(record.clone())?;
            }
            if i == 0 {
                assembler.end_of_first_message();
            }
        }
        assembler.finish()
    }

    #[test]
    fn whole_zones_incremental_answers_and_the_soa_alone() {
        let www = a("www.example.com.", 1);
        assert_eq!(
            read(false, &[vec![soa(5), www.clone()], vec![soa(5)]]),
            Ok(Transferred::Full(vec![soa(5), www.clone()]))
        );
        // IXFR answered AXFR-style.
        assert_eq!(
            read(true, &[vec![soa(5), www.clone(), soa(5)]]),
            Ok(Transferred::Full(vec![soa(5), www.clone()]))
        );
        assert_eq!(read(true, &[vec![soa(5)]]), Ok(Transferred::Current(5)));
        let api = a("api.example.com.", 2);
        let steps = read(
            true,
            &[
                vec![soa(7), soa(5), www.clone(), soa(6), api.clone()],
                vec![soa(6), soa(7), www.clone(), soa(7)],
            ],
        )
        .expect("incremental");
        let Transferred::Incremental { soa: last, steps } = steps else {
            panic!("incremental: {steps:?}");
        };
        assert_eq!(*last, soa(7));
        assert_eq!(steps.len(), 2);
        assert_eq!(
            (steps[0].from, &steps[0].removed[..]),
            (5, &[www.clone()][..])
        );
        assert_eq!(&steps[0].added[..], &[api.clone()][..]);
        assert_eq!((steps[1].from, steps[1].removed.len()), (6, 0));

        assert_eq!(read(false, &[vec![www.clone()]]), Err(AssembleError::NoSoa));
        assert_eq!(
            read(false, &[vec![soa(5), www.clone()]]),
            Err(AssembleError::Truncated)
        );
        assert_eq!(
            read(false, &[vec![soa(5), www.clone(), soa(5), www.clone()]]),
            Err(AssembleError::AfterEnd)
        );
        assert_eq!(
            read(false, &[vec![soa(5), a("www.example.org.", 1), soa(5)]]),
            Err(AssembleError::Outside("www.example.org.".into()))
        );
    }

    #[test]
    fn steps_apply_in_order_and_a_gap_or_a_missing_record_is_refused() {
        let www = a("www.example.com.", 1);
        let api = a("api.example.com.", 2);
        let have = vec![soa(5), www.clone(), a("WWW.example.com.", 3)];
        let steps = vec![
            Step {
                from: 5,
                removed: vec![www.clone()],
                to: soa(6),
                added: vec![api.clone()],
            },
            Step {
                from: 6,
                removed: vec![],
                to: soa(7),
                added: vec![www.clone()],
            },
        ];
        let mut got = apply(have.clone(), 5, &soa(7), &steps).expect("applies");
        got.sort();
        let mut want = vec![soa(7), api.clone(), www.clone(), a("www.example.com.", 3)];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(
            apply(have.clone(), 4, &soa(7), &steps),
            Err(ApplyError::Gap { have: 4, step: 5 })
        );
        let missing = vec![Step {
            from: 5,
            removed: vec![api.clone()],
            to: soa(6),
            added: vec![],
        }];
        assert_eq!(
            apply(have, 5, &soa(6), &missing),
            Err(ApplyError::Missing("api.example.com. A".into()))
        );
    }
}
