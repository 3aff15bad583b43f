//! `geoline lookup`: why an address is in its line, and what a name would answer there.
//!
//! This module owns the explanation an operator reads: the line, the rule and the database
//! network (or configured CIDR) that decided it, the fields each database gave, the ECS
//! scope a response would carry, and the answer to a name and type on that line. It
//! decides nothing itself: the line comes from `Classifier::explain`, the answer from
//! `Zone::lookup`, so the explanation cannot disagree with what `serve`
//! answers.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;

use geoline::config::Config;
use geoline::internal::{
    AnswerCode, Classifier, Decision, Explanation, Field, GeoIpError, ecs_scope_of_address,
};
use geoline::server::{self, Loaded};

#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    #[error("`{0}` is not a domain name")]
    Name(String),
    #[error("`{0}` is not a record type (A, AAAA, MX, TXT, ...)")]
    Type(String),
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
}

/// A name and type to answer, parsed from the command line.
struct Question {
    name: Name,
    qtype: RecordType,
}

impl Question {
    /// `name` (relative names are taken as absolute) and `qtype` (A when absent).
    fn parse(name: &str, qtype: Option<&str>) -> Result<Question, LookupError> {
        let mut n = Name::from_ascii(name).map_err(|_| LookupError::Name(name.to_string()))?;
        n.set_fqdn(true);
        let qtype = match qtype {
            Some(t) => RecordType::from_str(&t.to_ascii_uppercase())
                .map_err(|_| LookupError::Type(t.to_string()))?,
            None => RecordType::A,
        };
        Ok(Question { name: n, qtype })
    }
}

/// Loads the configuration at `path` as `serve` would, then prints the explanation of `ip`
/// and, with `name`, the answer to `name` and `qtype` (A when absent) on its line.
pub(crate) fn run(
    path: &Path,
    ip: IpAddr,
    name: Option<&str>,
    qtype: Option<&str>,
) -> anyhow::Result<()> {
    let question = name.map(|n| Question::parse(n, qtype)).transpose()?;
    let config = Config::load(path)?;
    let loaded = server::load(&config)?;
    print!("{}", explain(&loaded, ip, question.as_ref())?);
    Ok(())
}

/// Explains `ip` against what `loaded` holds, and answers `question` on its line.
fn explain(
    loaded: &Loaded,
    ip: IpAddr,
    question: Option<&Question>,
) -> Result<String, LookupError> {
    let c = &loaded.classifier;
    let e = c.explain(ip)?;
    let mut out = String::new();
    let line = c.lines().name(e.classification.line);
    let _ = writeln!(out, "address {ip}");
    let _ = writeln!(out, "line {line}");
    let _ = writeln!(out, "decided by {}", Why { c, e: &e });
    let _ = writeln!(out, "fields read: {}", e.record);
    for (db, record) in c.databases().iter().zip(&e.records) {
        match record {
            Some((net, r)) => {
                let _ = writeln!(
                    out,
                    "  {} ({}): network {net}: {}",
                    db.path().display(),
                    db.record_reader(),
                    r
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {} ({}): no network holds it",
                    db.path().display(),
                    db.record_reader()
                );
            }
        }
    }
    let scope = e.classification.scope;
    let range = IpNet::new(ip, scope).map(|n| n.trunc()).ok();
    let _ = write!(out, "ecs scope /{scope} for answers that differ by line");
    if let Some(r) = range {
        let _ = write!(out, " ({r} is all in line {line})");
    }
    out.push('\n');

    let Some(q) = question else {
        return Ok(out);
    };
    let Some((_, zone)) = loaded.zones.find_answering(&q.name, q.qtype) else {
        let _ = writeln!(
            out,
            "{} {} on line {line}: REFUSED (in no configured zone)",
            q.name, q.qtype
        );
        return Ok(out);
    };
    let answer = zone.lookup(e.classification.line, &q.name, q.qtype);
    let rcode = match answer.rcode {
        AnswerCode::NoError => "NOERROR",
        AnswerCode::NxDomain => "NXDOMAIN",
        AnswerCode::YxDomain => "YXDOMAIN",
    };
    let answer_scope = ecs_scope_of_address(ip, || zone.varies_by_line(&q.name, q.qtype), scope);
    let _ = writeln!(
        out,
        "{} {} on line {line}: {rcode}{}, ecs scope /{answer_scope}",
        q.name,
        q.qtype,
        if answer.authoritative {
            ""
        } else {
            " (referral)"
        }
    );
    for (section, records) in [
        ("answer", &answer.answers),
        ("authority", &answer.authority),
        ("additional", &answer.additional),
    ] {
        for r in records.iter() {
            let _ = writeln!(out, "  {section}: {r}");
        }
    }
    Ok(out)
}

/// The rule and the data behind a decision.
struct Why<'a> {
    c: &'a Classifier,
    e: &'a Explanation,
}

impl Why<'_> {
    /// The first database whose record gave `field`, and its network.
    fn source(&self, field: Field) -> Option<String> {
        self.c
            .databases()
            .iter()
            .zip(&self.e.records)
            .find_map(|(db, r)| {
                let (net, rec) = r.as_ref()?;
                rec.fields()
                    .contains(field)
                    .then(|| format!("database {} network {net}", db.path().display()))
            })
    }

    fn rule_line(&self, rule: usize) -> &str {
        self.c
            .rules()
            .get(rule)
            .map_or("?", |r| self.c.lines().name(r.line))
    }
}

impl fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = |c: &[u8; 2]| String::from_utf8_lossy(c).into_owned();
        let (what, field, rule) = match self.e.decision {
            Decision::Cidr { rule, cidr } => {
                return write!(
                    f,
                    "prefix {cidr} (/{}) listed by line {}",
                    cidr.prefix_len(),
                    self.rule_line(rule)
                );
            }
            Decision::Country { rule, country } => {
                (format!("country {}", code(&country)), Field::Country, rule)
            }
            Decision::Continent { rule, continent } => (
                format!("continent {}", code(&continent)),
                Field::Continent,
                rule,
            ),
            Decision::Subdivision { rule, subdivision } => (
                format!("subdivision {subdivision}"),
                Field::Subdivision,
                rule,
            ),
            Decision::Asn { rule, asn } => (format!("AS{asn}"), Field::Asn, rule),
            Decision::Default => return f.write_str("no rule matches: the default line"),
        };
        write!(f, "{what} listed by line {}", self.rule_line(rule))?;
        if let Some(source) = self.source(field) {
            write!(f, ", from {source}")?;
        }
        Ok(())
    }
}
