//! Reading zone files: hickory's RFC 1035 parser, the checks geoline adds on top of it,
//! and finding the line an error is on.
//!
//! hickory's `ParseError` carries no position, and a parsed zone no longer knows which
//! line a record came from. Errors are rare and files small next to the cost of a good
//! message, so the line is found after the fact: the text is split into the parser's
//! logical entries (a record continued over lines by parentheses or a quoted string is one
//! entry), and a bisection finds the shortest prefix of entries that shows the problem.
//! Its last entry is the culprit. Every check below is monotonic (a prefix that shows the
//! problem stays bad when entries are added), which is what makes the bisection valid.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::{ParseError, Parser};

use super::ZoneError;
use super::rdata;
use super::substitute;
use super::tree::Rrset;
use crate::diag::Location;

/// A zone file's name (for messages and relative `$INCLUDE`s) and text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

/// A validated base file.
pub(crate) struct Base {
    pub origin: Name,
    pub soa: Record,
    pub rrsets: Vec<Rrset>,
}

pub(super) type Parsed = BTreeMap<RrKey, RecordSet>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Base,
    Overlay,
}

/// Parses and checks a base file. `origin` is the configured one, if any; otherwise the
/// owner of the file's SOA is the origin (the parser's own answer is the *last* `$ORIGIN`,
/// which is not the apex in files that switch origins part way through).
pub(crate) fn load_base(src: Source<'_>, origin: Option<&Name>) -> Result<Base, ZoneError> {
    const NO_SOA: &str = "no SOA record: a zone needs exactly one, at its apex";
    let parsed = match parse_located(src, origin) {
        Ok(parsed) => parsed,
        // The parser says "$ORIGIN was not specified" of a file with nothing in it.
        Err(_) if origin.is_none() && entries(src.text).is_empty() => {
            return Err(whole_file(src, NO_SOA));
        }
        Err(e) => return Err(e),
    };
    let origin = match origin {
        Some(origin) => origin.clone(),
        None => parsed
            .values()
            .find(|set| set.record_type() == RecordType::SOA)
            .map(|set| set.name().clone())
            .ok_or_else(|| whole_file(src, NO_SOA))?,
    };
    check_located(src, Some(&origin), &parsed, &origin, Kind::Base)?;

    let soa = parsed
        .get(&RrKey::new(LowerName::new(&origin), RecordType::SOA))
        .and_then(|set| set.records_without_rrsigs().next())
        .cloned()
        .ok_or_else(|| {
            whole_file(
                src,
                &format!("no SOA record at the zone apex `{origin}`: a zone needs exactly one"),
            )
        })?;
    if !parsed.contains_key(&RrKey::new(LowerName::new(&origin), RecordType::NS)) {
        return Err(whole_file(
            src,
            &format!("no NS records at the zone apex `{origin}`"),
        ));
    }
    Ok(Base {
        origin,
        soa,
        rrsets: rrsets(src, parsed),
    })
}

/// Parses and checks an overlay file, read with the zone's origin as its `$ORIGIN`.
pub(crate) fn load_overlay(src: Source<'_>, origin: &Name) -> Result<Vec<Rrset>, ZoneError> {
    let parsed = parse_located(src, Some(origin))?;
    check_located(src, Some(origin), &parsed, origin, Kind::Overlay)?;
    Ok(rrsets(src, parsed))
}

fn whole_file(src: Source<'_>, reason: &str) -> ZoneError {
    ZoneError::Invalid {
        at: Location::file(src.path),
        reason: reason.to_string(),
    }
}

/// Why a text is not a zone file: hickory's parser's reason, or geoline's about record
/// data it reads itself ([`substitute`]).
#[derive(Debug)]
enum Unreadable {
    Parser(ParseError),
    Data(String),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::Parser(e) => e.fmt(f),
            Unreadable::Data(reason) => f.write_str(reason),
        }
    }
}

fn parse(src: Source<'_>, text: &str, origin: Option<&Name>) -> Result<Parsed, Unreadable> {
    let flat = flatten(text);
    let (prepared, mut placeholders) =
        substitute::prepare(&flat, src.path, origin).map_err(Unreadable::Data)?;
    let mut parsed = Parser::new(prepared, Some(src.path.to_path_buf()), origin.cloned())
        .parse()
        .map(|(_, records)| records)
        .map_err(Unreadable::Parser)?;
    substitute::restore(&mut parsed, &mut placeholders).map_err(Unreadable::Data)?;
    Ok(parsed)
}

// The parser reports a missing origin only at the end of the input, so a prefix that stops
// before a late `$ORIGIN` fails for a reason the whole file does not have.
fn is_missing_origin(e: &Unreadable) -> bool {
    matches!(e, Unreadable::Parser(ParseError::Message(m)) if m.contains("$ORIGIN was not specified"))
}

fn parse_located(src: Source<'_>, origin: Option<&Name>) -> Result<Parsed, ZoneError> {
    let error = match parse(src, src.text, origin) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => e,
    };
    let located = locate(src, |prefix, whole| match parse(src, prefix, origin) {
        Err(e) if whole || !is_missing_origin(&e) => Some(e.to_string()),
        _ => None,
    });
    let (line, reason) = match located {
        Some((line, reason)) => match included_at(src.text, line) {
            // The `$INCLUDE` line is where the parser stopped; the entry it could not read
            // is in the included file, which the parser's message does not name.
            Some(file) if !reason.contains("$INCLUDE") => (
                Some(line),
                format!("{reason} (in the file included here, {file})"),
            ),
            _ => (Some(line), reason),
        },
        None => (None, error.to_string()),
    };
    Err(ZoneError::Syntax {
        at: Location {
            path: src.path.to_path_buf(),
            line,
        },
        reason,
    })
}

/// The file named by an `$INCLUDE` on line `line` (1-based) of `text`, if it is one.
fn included_at(text: &str, line: usize) -> Option<&str> {
    let entry = text.lines().nth(line.checked_sub(1)?)?;
    let mut words = entry.split_whitespace();
    let directive = words.next()?;
    if directive.eq_ignore_ascii_case("$INCLUDE") {
        words.next()
    } else {
        None
    }
}

fn check_located(
    src: Source<'_>,
    parse_origin: Option<&Name>,
    parsed: &Parsed,
    origin: &Name,
    kind: Kind,
) -> Result<(), ZoneError> {
    let Some(reason) = problem(parsed, origin, kind) else {
        return Ok(());
    };
    let located = locate(src, |prefix, _| {
        parse(src, prefix, parse_origin)
            .ok()
            .and_then(|p| problem(&p, origin, kind))
    });
    let (line, reason) = match located {
        Some((line, reason)) => (Some(line), reason),
        None => (None, reason),
    };
    Err(ZoneError::Invalid {
        at: Location {
            path: src.path.to_path_buf(),
            line,
        },
        reason,
    })
}

/// The first thing wrong with a parsed file beyond its syntax, if any: a problem with one
/// RRset first, else the first name (in name order) with a CNAME beside other data.
pub(super) fn problem(parsed: &Parsed, origin: &Name, kind: Kind) -> Option<String> {
    // The map is ordered by (name, type), so a name's RRsets are adjacent: a name's types
    // are gathered as its RRsets go by, without a second map over a million names.
    let mut conflict: Option<String> = None;
    let mut current: Option<&Name> = None;
    let mut types: Vec<RecordType> = Vec::new();
    let mut wire = Vec::new();
    for set in parsed.values() {
        let owner = set.name();
        let rtype = set.record_type();
        if !origin.zone_of(owner) {
            return Some(format!("`{owner}` is outside the zone `{origin}`"));
        }
        if let Some(r) = set
            .records_without_rrsigs()
            .find(|r| r.dns_class != DNSClass::IN)
        {
            return Some(format!(
                "`{owner}` {rtype} is in class {}: only IN is served",
                r.dns_class
            ));
        }
        let records: Vec<&Record> = set.records_without_rrsigs().collect();
        if let Some(reason) = rdata::unencodable(&records, &mut wire) {
            return Some(reason);
        }
        match (rtype, kind) {
            (RecordType::SOA, Kind::Base) if owner != origin => {
                return Some(format!(
                    "SOA at `{owner}`: a zone has exactly one SOA, at its apex `{origin}`{}",
                    repeated_origin_hint(owner, origin)
                ));
            }
            (RecordType::SOA, Kind::Overlay) => {
                return Some(
                    "an overlay cannot hold an SOA: every line shares the base file's SOA"
                        .to_string(),
                );
            }
            (RecordType::CNAME, Kind::Overlay) if owner == origin => {
                return Some(format!(
                    "CNAME at the zone apex `{origin}`: it would replace the zone's SOA and NS"
                ));
            }
            _ => {}
        }
        if current != Some(owner) {
            if let Some(name) = current.filter(|_| conflict.is_none()) {
                conflict = cname_conflict(name, &types);
            }
            current = Some(owner);
            types.clear();
        }
        types.push(rtype);
    }
    if let Some(name) = current.filter(|_| conflict.is_none()) {
        conflict = cname_conflict(name, &types);
    }
    conflict
}

fn cname_conflict(owner: &Name, types: &[RecordType]) -> Option<String> {
    (types.len() > 1 && types.contains(&RecordType::CNAME)).then(|| {
        let others: Vec<String> = types
            .iter()
            .filter(|t| **t != RecordType::CNAME)
            .map(ToString::to_string)
            .collect();
        format!(
            "`{owner}` has a CNAME and other data ({}): a CNAME must be alone at its name",
            others.join(" ")
        )
    })
}

/// `example.com` written without its final dot in a file whose origin is `example.com.`
/// reads as `example.com.example.com.`: say so, since the name in the message looks right.
fn repeated_origin_hint(owner: &Name, origin: &Name) -> String {
    let doubled = Name::from_labels(origin.iter().chain(origin.iter()));
    if doubled.is_ok_and(|doubled| doubled == *owner) {
        format!(
            " (a relative name repeating the origin: write `{origin}` with its final dot, or `@`)"
        )
    } else {
        String::new()
    }
}

/// Bisects for the shortest prefix of the file's entries on which `bad` answers `Some`;
/// returns the 1-based line where that prefix's last entry starts, and `bad`'s answer.
/// `bad` gets the prefix text and whether it is the whole file.
fn locate<T>(src: Source<'_>, bad: impl Fn(&str, bool) -> Option<T>) -> Option<(usize, T)> {
    let entries = entries(src.text);
    let n = entries.len();
    let prefix = |k: usize| -> &str {
        if k >= n {
            src.text
        } else {
            &src.text[..entries[k].offset]
        }
    };
    let (mut lo, mut hi) = (1, n);
    if n == 0 {
        return None;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if bad(prefix(mid), mid >= n).is_some() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    bad(prefix(lo), lo >= n).map(|t| (entries[lo - 1].line, t))
}

/// Where a logical entry of a zone file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) offset: usize,
    /// 1-based.
    line: usize,
}

/// Splits a zone file into its entries: an entry ends at a line end outside parentheses and
/// quotes; lines with nothing but blanks and comments are not entries. The rules are those
/// of hickory's lexer after [`flatten`]: `(` and `"` only open a group at the start of a
/// token, `;` starts a comment outside quotes.
pub(super) fn entries(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut line = 1;
    let mut start = Entry { offset: 0, line: 1 };
    let mut has_token = false;
    let (mut in_list, mut in_quote, mut in_comment, mut in_token) = (false, false, false, false);
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\n' {
            line += 1;
            in_comment = false;
            in_token = false;
            if !in_list && !in_quote {
                if has_token {
                    entries.push(start);
                }
                has_token = false;
                start = Entry {
                    offset: i + 1,
                    line,
                };
            }
            continue;
        }
        if c == '\r' && !in_quote && !in_list {
            // Outside quotes and parentheses hickory's lexer reads a CR, in a comment or not,
            // as the start of a line end, which must be CRs and then a LF. Anything else after
            // it is an error; the entry it is in (if only a CR, a new one) takes the blame.
            in_comment = false;
            in_token = false;
            has_token |= !text[i + 1..].trim_start_matches('\r').starts_with('\n');
            continue;
        }
        if in_comment {
            continue;
        }
        if in_quote {
            match c {
                '\\' => {
                    // The escaped character, even a quote or a line end, does not end the quote.
                    if let Some((_, '\n')) = chars.next() {
                        line += 1;
                    }
                }
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            ';' => {
                in_comment = true;
                in_token = false;
            }
            '"' if !in_token => {
                in_quote = true;
                has_token = true;
            }
            '(' if !in_token && !in_list => {
                in_list = true;
                has_token = true;
            }
            ')' if in_list => {
                in_list = false;
                in_token = false;
            }
            c if c.is_whitespace() => in_token = false,
            _ => {
                in_token = true;
                has_token = true;
            }
        }
    }
    if has_token {
        entries.push(start);
    }
    entries
}

/// Joins every parenthesised group onto one line, dropping the parentheses and the comments
/// inside, and puts the line ends it removed after the entry, so that every entry still
/// starts on its line.
///
/// hickory's lexer does not see quotes inside parentheses: `;` in a quoted string there
/// starts a comment and the quotes become part of the data, which silently corrupts the
/// multi-line TXT records BIND users write for DKIM keys
/// (`k TXT ( "v=DKIM1; k=rsa; " "p=..." )`). On one line, the lexer reads them right.
/// A group still open at the end is left as written, for the lexer to report.
pub(super) fn flatten(text: &str) -> Cow<'_, str> {
    if !text.contains('(') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut pending_newlines = 0;
    // Where the open group started, in `text` and in `out`.
    let mut open_at = (0, 0);
    let (mut in_list, mut in_quote, mut in_comment, mut in_token) = (false, false, false, false);
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if in_quote {
            out.push(c);
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        out.push(escaped);
                    }
                }
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        if c == '\n' {
            in_comment = false;
            in_token = false;
            if in_list {
                pending_newlines += 1;
                out.push(' ');
            } else {
                out.push('\n');
                out.extend(std::iter::repeat_n('\n', pending_newlines));
                pending_newlines = 0;
            }
            continue;
        }
        if in_comment {
            if !in_list {
                out.push(c);
            }
            continue;
        }
        match c {
            ';' => {
                in_comment = true;
                in_token = false;
                if !in_list {
                    out.push(c);
                }
            }
            '"' if !in_token => {
                in_quote = true;
                out.push(c);
            }
            '(' if !in_token && !in_list => {
                in_list = true;
                open_at = (i, out.len());
                out.push(' ');
            }
            ')' if in_list => {
                in_list = false;
                in_token = false;
                out.push(' ');
            }
            // Inside a group, a lone CR would read as a line end.
            c if c.is_whitespace() => {
                in_token = false;
                out.push(if in_list { ' ' } else { c });
            }
            c => {
                in_token = true;
                out.push(c);
            }
        }
    }
    if in_list {
        out.truncate(open_at.1);
        out.push_str(&text[open_at.0..]);
    } else {
        out.extend(std::iter::repeat_n('\n', pending_newlines));
    }
    Cow::Owned(out)
}

/// Turns the parser's record sets into the tree's RRsets.
fn rrsets(src: Source<'_>, parsed: Parsed) -> Vec<Rrset> {
    parsed
        .into_values()
        .filter_map(|set| normalized(src, &set))
        .collect()
}

/// A parser's record set as an RRset of the tree (`None` when it has no records): one
/// TTL, fully qualified owners.
pub(super) fn normalized(src: Source<'_>, set: &RecordSet) -> Option<Rrset> {
    let mut records: Vec<Record> = set.records_without_rrsigs().cloned().collect();
    let ttl = records.first()?.ttl;
    if records.iter().any(|r| r.ttl != ttl) {
        // RFC 2181 section 5.2: an RRset has one TTL. BIND keeps the first.
        tracing::warn!(
            file = %src.path.display(),
            "{} {}: records with different TTLs; using {ttl}, the first one's",
            set.name(),
            set.record_type()
        );
    }
    for r in &mut records {
        r.ttl = ttl;
        r.name.set_fqdn(true);
    }
    Some(Arc::from(records))
}

/// The SOA as negative answers carry it: TTL capped at the MINIMUM field (RFC 2308 section 3).
pub(crate) fn negative_soa(soa: &Record) -> Record {
    let mut soa = soa.clone();
    if let RData::SOA(data) = &soa.data {
        soa.ttl = soa.ttl.min(data.minimum);
    }
    soa
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<usize> {
        entries(text).into_iter().map(|e| e.line).collect()
    }

    #[test]
    fn entries_follow_parentheses_quotes_and_comments() {
        let text = "\
$ORIGIN example.com. ; the apex
$TTL 300

; a comment line
@ IN SOA ns1 hostmaster ( 1 ; serial (not a paren)
    7200 900 ; \"not a quote
    1209600 60 )
   ; indented comment
txt TXT \"a (b\nc\" ; quoted newline
a\"b TXT x
www A 192.0.2.1";
        assert_eq!(lines_of(text), vec![1, 2, 5, 9, 11, 12]);
    }

    #[test]
    fn quotes_inside_parentheses_are_quotes() {
        let text = "k TXT ( \"v=DKIM1; k=rsa; \" ; the key\n  \"p=a)b\" )\nnext A 192.0.2.1\n";
        assert_eq!(lines_of(text), vec![1, 3]);
        assert_eq!(
            flatten(text),
            "k TXT   \"v=DKIM1; k=rsa; \"    \"p=a)b\"  \n\nnext A 192.0.2.1\n"
        );
        // An unclosed group is left for the parser to report.
        let text = "a TXT ( \"x\" )\nb TXT ( \"y\"\n";
        assert_eq!(flatten(text), "a TXT   \"x\"  \nb TXT ( \"y\"\n");
    }

    #[test]
    fn entries_of_crlf_text() {
        assert_eq!(lines_of("a A 1.2.3.4\r\n\r\nb A 1.2.3.4\r\n"), vec![1, 3]);
    }

    fn base_error(text: &str) -> String {
        let src = Source {
            path: Path::new("z.zone"),
            text,
        };
        match load_base(src, None) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const HEAD: &str = "\
$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster (
        1     ; serial
        7200  ; refresh
        900 1209600 60 )
  NS ns1
ns1 A 192.0.2.53
";

    #[test]
    fn syntax_error_names_its_line() {
        let e = base_error(&format!(
            "{HEAD}www A 192.0.2.1\nbad A 300.0.0.1\nok A 192.0.2.2\n"
        ));
        assert!(e.starts_with("z.zone:10: "), "{e}");
        assert!(e.contains("address"), "{e}");
    }

    #[test]
    fn syntax_error_inside_parentheses_names_the_entry() {
        let text = HEAD.replace("7200  ; refresh", "7200x ; refresh");
        let e = base_error(&text);
        assert!(e.starts_with("z.zone:3: "), "{e}");
        assert!(e.contains("7200x"), "{e}");
    }

    #[test]
    fn bare_carriage_return_names_its_line() {
        // Found by the zone_file fuzz target: the error had no line.
        let e = base_error(&format!("{HEAD}www A 192.0.2.1\n; a\rb\nok A 192.0.2.2\n"));
        assert!(e.starts_with("z.zone:10: "), "{e}");
        assert!(e.contains("illegal character"), "{e}");
        let e = base_error(&format!("{HEAD}www A 192.0.2.1\n; a\r"));
        assert!(e.starts_with("z.zone:10: "), "{e}");
        // A CR outside a comment: alone in a file, before data, after data.
        let e = base_error("\r");
        assert!(e.starts_with("z.zone:1: "), "{e}");
        let e = base_error(&format!("{HEAD}\rwww A 192.0.2.1\n"));
        assert!(e.starts_with("z.zone:9: "), "{e}");
        let e = base_error(&format!("{HEAD}www A 192.0.2.1\rok A 192.0.2.2\n"));
        assert!(e.starts_with("z.zone:9: "), "{e}");
        // CRs before the LF are one line end, as in hickory's lexer.
        assert_eq!(lines_of("a A 1.2.3.4\r\r\nb A 1.2.3.4\r\n"), vec![1, 2]);
    }

    #[test]
    fn unknown_type_and_unclosed_paren() {
        let e = base_error(&format!("{HEAD}\n\nwww 300 IN AA 192.0.2.1\n"));
        assert!(e.starts_with("z.zone:11: "), "{e}");
        let e = base_error(&format!("{HEAD}www TXT ( \"a\"\n\n"));
        assert!(e.starts_with("z.zone:9: "), "{e}");
    }

    #[test]
    fn late_origin_does_not_mislead_the_search() {
        let text = "\
example.com. 300 SOA ns1.example.com. h.example.com. 1 2 3 4 5
example.com. 300 NS ns1.example.com.
$ORIGIN example.com.
www 300 A 192.0.2.1
www 300 A nonsense
";
        let e = base_error(text);
        assert!(e.starts_with("z.zone:5: "), "{e}");
    }

    #[test]
    fn cname_and_other_data_names_file_line_and_owner() {
        let e = base_error(&format!(
            "{HEAD}www A 192.0.2.1\nmail A 192.0.2.2\nwww CNAME mail\n"
        ));
        assert_eq!(
            e,
            "z.zone:11: `www.example.com.` has a CNAME and other data (A): a CNAME must be alone at its name"
        );
    }

    #[test]
    fn out_of_zone_record_is_rejected() {
        let e = base_error(&format!(
            "{HEAD}www A 192.0.2.1\nwww.example.net. A 192.0.2.2\n"
        ));
        assert_eq!(
            e,
            "z.zone:10: `www.example.net.` is outside the zone `example.com.`"
        );
    }

    #[test]
    fn soa_and_ns_requirements() {
        let e = base_error("$ORIGIN example.com.\n$TTL 60\n@ NS ns1\n");
        assert_eq!(
            e,
            "z.zone: no SOA record: a zone needs exactly one, at its apex"
        );
        // An empty file, or one of comments only, says the same (not "$ORIGIN was not
        // specified").
        for text in ["", "\n", "; nothing yet\n\n"] {
            assert_eq!(
                base_error(text),
                "z.zone: no SOA record: a zone needs exactly one, at its apex"
            );
        }
        let e = base_error(&HEAD.replace("  NS ns1\n", ""));
        assert_eq!(e, "z.zone: no NS records at the zone apex `example.com.`");
        let e = base_error(&format!("{HEAD}sub SOA ns1 h 1 2 3 4 5\n"));
        assert!(e.starts_with("z.zone:9: SOA at `sub.example.com.`"), "{e}");
        let e = base_error(&format!("{HEAD}example.com SOA ns1 h 1 2 3 4 5\n"));
        assert!(
            e.ends_with("write `example.com.` with its final dot, or `@`)"),
            "{e}"
        );
        let e = base_error(&format!("{HEAD}@ SOA ns1 h 2 2 3 4 5\n"));
        assert!(e.starts_with("z.zone:9: "), "{e}");
    }

    #[test]
    fn configured_origin_must_own_the_soa() {
        let src = Source {
            path: Path::new("z.zone"),
            text: HEAD,
        };
        let origin = Name::from_ascii("example.org.").expect("name");
        let e = load_base(src, Some(&origin))
            .err()
            .expect("rejected")
            .to_string();
        assert_eq!(
            e,
            "z.zone:3: `example.com.` is outside the zone `example.org.`"
        );
    }

    fn overlay_error(text: &str) -> String {
        let src = Source {
            path: Path::new("o.zone"),
            text,
        };
        let origin = Name::from_ascii("example.com.").expect("name");
        match load_overlay(src, &origin) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn overlay_errors() {
        let e = overlay_error("$TTL 60\nwww A 203.0.113.1\n\n@ SOA ns1 h 1 2 3 4 5\n");
        assert_eq!(
            e,
            "o.zone:4: an overlay cannot hold an SOA: every line shares the base file's SOA"
        );
        let e = overlay_error("$TTL 60\nwww A 203.0.113.1\nwww.example.org. A 203.0.113.1\n");
        assert_eq!(
            e,
            "o.zone:3: `www.example.org.` is outside the zone `example.com.`"
        );
        let e = overlay_error("$TTL 60\nwww A 203.0.113.1\nwww A (\n 203.0.113.256 )\n");
        assert!(e.starts_with("o.zone:3: "), "{e}");
        let e = overlay_error("www A 203.0.113.1\n");
        assert_eq!(e, "o.zone:1: record ttl not specified");
        let e = overlay_error("$TTL 60\n@ CNAME elsewhere.example.net.\n");
        assert!(e.starts_with("o.zone:2: CNAME at the zone apex"), "{e}");
        let e = overlay_error("$TTL 60\nw A 203.0.113.1\nw CNAME x\n");
        assert!(
            e.starts_with("o.zone:3: `w.example.com.` has a CNAME"),
            "{e}"
        );
    }

    fn load(text: &str, origin: Option<&str>) -> Base {
        let origin = origin.map(|o| {
            let mut name = Name::from_ascii(o).expect("origin");
            name.set_fqdn(true);
            name
        });
        let src = Source {
            path: Path::new("z.zone"),
            text,
        };
        match load_base(src, origin.as_ref()) {
            Ok(base) => base,
            Err(e) => panic!("{e}"),
        }
    }

    fn record_texts(base: &Base) -> Vec<String> {
        let mut texts: Vec<String> = base
            .rrsets
            .iter()
            .flat_map(|set| set.iter())
            .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
            .collect();
        texts.sort();
        texts
    }

    #[test]
    fn bind_style_file_loads() {
        let text = "\
$TTL 1h ; default
$ORIGIN example.com.
@\tIN\tSOA\tns1.example.com.\thostmaster.example.com.\t(
\t\t\t2026010101\t; serial
\t\t\t1d 2h 4w 1h )
\t\tIN\tNS\tns1
\tIN 300 MX 10 mail ; class before TTL
ns1\t\tA\t192.0.2.53
mail\t\tA\t192.0.2.25
sel._domainkey\tIN\tTXT\t( \"v=DKIM1; k=rsa; \"
\t\t\t\"p=MIIBIjAN\" )\t; split key
@\t\tCAA\t0 issue \"letsencrypt.org\"
_sip._tcp\tSRV\t0 5 5060 mail
$ORIGIN sub.example.com.
host\t\tA\t192.0.2.7
";
        let base = load(text, None);
        assert_eq!(base.origin, Name::from_ascii("example.com.").expect("name"));
        assert_eq!(
            record_texts(&base),
            vec![
                "_sip._tcp.example.com. 3600 SRV 0 5 5060 mail.example.com.",
                "example.com. 300 MX 10 mail.example.com.",
                "example.com. 3600 CAA 0 issue \"letsencrypt.org\"",
                "example.com. 3600 NS ns1.example.com.",
                "example.com. 3600 SOA ns1.example.com. hostmaster.example.com. 2026010101 86400 7200 2419200 3600",
                "host.sub.example.com. 3600 A 192.0.2.7",
                "mail.example.com. 3600 A 192.0.2.25",
                "ns1.example.com. 3600 A 192.0.2.53",
                "sel._domainkey.example.com. 3600 TXT v=DKIM1; k=rsa; p=MIIBIjAN",
            ]
        );
        let dkim = base
            .rrsets
            .iter()
            .find(|s| s[0].record_type() == RecordType::TXT)
            .expect("txt");
        match &dkim[0].data {
            RData::TXT(txt) => assert_eq!(
                txt.txt_data.iter().map(|d| d.len()).collect::<Vec<_>>(),
                vec![16, 10]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cloudflare_style_export_loads() {
        let text = "\
;;
;; Domain:     example.com.
;; Exported:   2026-01-01 00:00:00
;;
;; SOA Record
example.com.\t3600\tIN\tSOA\tns.cloudflare.com. dns.cloudflare.com. 2052089364 10000 2400 604800 3600

;; NS Records
example.com.\t86400\tIN\tNS\tada.ns.cloudflare.com.
example.com.\t86400\tIN\tNS\tbob.ns.cloudflare.com.

;; A Records
example.com.\t1\tIN\tA\t192.0.2.10 ; cf_tags=cf-proxied:true
www.example.com.\t1\tIN\tA\t192.0.2.10 ; cf_tags=cf-proxied:true

;; CNAME Records
api.example.com.\t300\tIN\tCNAME\tapi.global.example.net.

;; TXT Records
example.com.\t1\tIN\tTXT\t\"v=spf1 mx -all\"
";
        let base = load(text, Some("example.com"));
        assert_eq!(base.rrsets.len(), 6);
        assert_eq!(
            record_texts(&base)[0],
            "api.example.com. 300 CNAME api.global.example.net."
        );
    }

    #[test]
    fn rrset_ttls_are_unified_and_soa_ttl_capped() {
        let src = Source {
            path: Path::new("z.zone"),
            text: &format!("{HEAD}www 60 A 192.0.2.1\nwww 120 A 192.0.2.2\n"),
        };
        let base = load_base(src, None).expect("loads");
        let www = base
            .rrsets
            .iter()
            .find(|s| s[0].name == Name::from_ascii("www.example.com.").expect("name"))
            .expect("www");
        assert_eq!(www.iter().map(|r| r.ttl).collect::<Vec<_>>(), vec![60, 60]);
        assert_eq!(base.soa.ttl, 300);
        assert_eq!(negative_soa(&base.soa).ttl, 60);
    }

    /// Every record of the base as (owner, TTL, type, data bytes), in name and type order.
    fn record_bytes(base: &Base) -> Vec<(String, u32, String, Vec<u8>)> {
        use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
        base.rrsets
            .iter()
            .flat_map(|set| set.iter())
            .map(|r| {
                let mut bytes = Vec::new();
                let mut encoder = BinEncoder::new(&mut bytes);
                encoder.set_name_encoding(NameEncoding::Uncompressed);
                r.data.emit(&mut encoder).expect("encodes");
                (
                    r.name.to_string(),
                    r.ttl,
                    rdata::mnemonic(r.record_type()),
                    bytes,
                )
            })
            .collect()
    }

    #[test]
    fn dnssec_dname_and_generic_records_load_with_owner_and_ttl_as_written() {
        let text = format!(
            "{HEAD}\
@ DNSKEY 257 3 13 ( AQID
                    BAUG ) ; a key split over lines, as signers write them
  RRSIG DNSKEY 13 2 300 (
        20261231000000 20261201000000 12345 example.com.
        AQID )
  NSEC3PARAM 1 0 0 -
sub 3600 NS ns.sub
    DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118 ; kept at the parent
ns.sub A 192.0.2.99
old DNAME new
x NSEC y.example.com. A NSEC
  TYPE65280 \\# 4 0a000001
  TYPE65534 \\# 0
  TXT \\# 6 05 68656c6c6f
  type1 192.0.2.77
y SPF \"v=spf1 -all\"
  URI 10 1 \"https://example.com/\"
  CDS 0 0 0 00
  CDNSKEY 0 3 0 AA==
"
        );
        let base = load(&text, None);
        let records = record_bytes(&base);
        let find = |owner: &str, rtype: &str| -> Vec<(u32, Vec<u8>)> {
            records
                .iter()
                .filter(|(o, _, t, _)| o == owner && t == rtype)
                .map(|(_, ttl, _, b)| (*ttl, b.clone()))
                .collect()
        };
        assert_eq!(
            find("example.com.", "DNSKEY"),
            vec![(300, vec![1, 1, 3, 13, 1, 2, 3, 4, 5, 6])]
        );
        let rrsig = find("example.com.", "RRSIG");
        assert_eq!(rrsig.len(), 1);
        assert_eq!(&rrsig[0].1[..4], [0, 48, 13, 2]);
        assert_eq!(
            find("example.com.", "NSEC3PARAM"),
            vec![(300, vec![1, 0, 0, 0, 0])]
        );
        let ds = find("sub.example.com.", "DS");
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].0, 300, "the $TTL, as for any record without one");
        assert_eq!(&ds[0].1[..4], [0xec, 0x45, 5, 1]);
        assert_eq!(find("sub.example.com.", "NS").len(), 1);
        let exact: [(&str, &str, &[u8]); 10] = [
            ("old", "DNAME", b"\x03new\x07example\x03com\x00"),
            ("x", "TYPE65280", &[10, 0, 0, 1]),
            ("x", "TYPE65534", &[]),
            ("x", "TXT", b"\x05hello"),
            ("x", "A", &[192, 0, 2, 77]),
            ("y", "SPF", b"\x0bv=spf1 -all"),
            ("y", "URI", b"\x00\x0a\x00\x01https://example.com/"),
            ("y", "CDS", &[0, 0, 0, 0, 0]),
            ("y", "CDNSKEY", &[0, 0, 3, 0, 0]),
            (
                "x",
                "NSEC",
                b"\x01y\x07example\x03com\x00\x00\x06\x40\x00\x00\x00\x00\x01",
            ),
        ];
        for (owner, rtype, data) in exact {
            assert_eq!(
                find(&format!("{owner}.example.com."), rtype),
                vec![(300, data.to_vec())],
                "{owner} {rtype}"
            );
        }
        // The known type written in generic form is hickory's typed TXT.
        let txt = base
            .rrsets
            .iter()
            .find(|s| s[0].record_type() == RecordType::TXT)
            .expect("txt");
        assert!(matches!(txt[0].data, RData::TXT(_)));
        let dname = base
            .rrsets
            .iter()
            .find(|s| s[0].record_type() == RecordType::DNAME)
            .expect("dname");
        assert_eq!(
            rdata::dname_target(&dname[0].data),
            Some(Name::from_ascii("new.example.com.").expect("name"))
        );
    }

    #[test]
    fn bad_records_of_own_types_name_their_line() {
        let e = base_error(&format!(
            "{HEAD}www A 192.0.2.1\nsub DS 1 2 3 zz\nok A 192.0.2.2\n"
        ));
        assert_eq!(
            e,
            "z.zone:10: digest is not hexadecimal: invalid symbol at 0"
        );
        let e = base_error(&format!("{HEAD}www A 192.0.2.1\n\nx TYPE65280 \\# 2 00\n"));
        assert_eq!(e, "z.zone:11: generic data says 2 bytes but its hex has 1");
        let e = base_error(&format!("{HEAD}x TYPE99999 \\# 0\n"));
        assert!(e.starts_with("z.zone:9: "), "{e}");
        let e = base_error(&format!(
            "{HEAD}x LOC 52 22 23.000 N 4 53 32.000 E -2.00m\n"
        ));
        assert!(
            e.starts_with("z.zone:9: geoline cannot read LOC in its text form"),
            "{e}"
        );
        let e = base_error(&format!("{HEAD}x A \\# 0\n"));
        assert!(e.starts_with("z.zone:9: not valid A data"), "{e}");
        // A DNAME beside a CNAME is a CNAME beside other data.
        let e = base_error(&format!("{HEAD}x CNAME y\nx DNAME z\n"));
        assert!(
            e.starts_with("z.zone:10: `x.example.com.` has a CNAME and other data (DNAME)"),
            "{e}"
        );
        // An SOA in generic form is still the one SOA.
        let e = base_error(&format!(
            "{HEAD}@ SOA \\# 22 00 00 00000001 00000002 00000003 00000004 00000005\n"
        ));
        assert_eq!(e, "z.zone:9: SOA is already specified");
    }

    #[test]
    fn long_txt_strings_are_split_and_other_long_strings_refused() {
        let key = "A".repeat(410);
        let base = load(
            &format!("{HEAD}sel._domainkey TXT \"v=DKIM1; k=rsa; p={key}\"\n"),
            None,
        );
        let dkim = base
            .rrsets
            .iter()
            .find(|s| s[0].record_type() == RecordType::TXT)
            .expect("txt");
        match &dkim[0].data {
            RData::TXT(txt) => {
                assert_eq!(
                    txt.txt_data.iter().map(|d| d.len()).collect::<Vec<_>>(),
                    vec![255, 410 + 18 - 255]
                );
                assert_eq!(
                    txt.txt_data.concat(),
                    format!("v=DKIM1; k=rsa; p={key}").as_bytes()
                );
            }
            other => panic!("{other:?}"),
        }
        let e = base_error(&format!(
            "{HEAD}www A 192.0.2.1\nbox HINFO \"{}\" \"Linux\"\nok A 192.0.2.2\n",
            "x".repeat(256)
        ));
        assert_eq!(
            e,
            "z.zone:10: `box.example.com.` HINFO: a character-string of 256 bytes, over the 255 of \
             RFC 1035 3.3 (only TXT and SPF strings are split into pieces; shorten this one)"
        );
        let e = base_error(&format!(
            "{HEAD}n NAPTR 100 10 \"u\" \"E2U+sip\" \"{}\" .\n",
            "r".repeat(300)
        ));
        assert!(
            e.starts_with("z.zone:9: `n.example.com.` NAPTR: a character-string of 300 bytes"),
            "{e}"
        );
        // An RRset that no DNS message can hold names the record that made it too big.
        let mut text = HEAD.to_string();
        for i in 0..300 {
            text.push_str(&format!("big TXT \"{i:03}{}\"\n", "b".repeat(200)));
        }
        let e = base_error(&text);
        assert!(
            e.ends_with("does not fit in a DNS message of 65535 bytes"),
            "{e}"
        );
        let line: usize = e["z.zone:".len()..]
            .split(':')
            .next()
            .expect("line")
            .parse()
            .expect("number");
        assert!((9 + 250..9 + 300).contains(&line), "{e}");
    }

    #[test]
    fn included_key_files_load_and_their_errors_name_the_include() {
        let dir = std::env::temp_dir().join(format!("geoline-include-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("keys")).expect("tmp dir");
        // As dnssec-keygen writes a key file.
        std::fs::write(
            dir.join("keys/Kexample.com.+013+12345.key"),
            "; This is a key-signing key, keyid 12345, for example.com.\n\
             example.com. IN DNSKEY 257 3 13 AQID\n$INCLUDE more.key\n",
        )
        .expect("write key");
        std::fs::write(
            dir.join("keys/more.key"),
            "example.com. IN DNSKEY 256 3 13 BAUG\n",
        )
        .expect("write key");
        let path = dir.join("z.zone");
        let text =
            format!("{HEAD}$INCLUDE keys/Kexample.com.+013+12345.key ; the KSK\nwww A 192.0.2.1\n");
        let base = load_base(
            Source {
                path: &path,
                text: &text,
            },
            None,
        )
        .expect("loads");
        let keys: Vec<Vec<u8>> = record_bytes(&base)
            .into_iter()
            .filter(|(_, _, t, _)| t == "DNSKEY")
            .map(|(_, _, _, b)| b)
            .collect();
        assert_eq!(
            keys,
            vec![vec![1, 1, 3, 13, 1, 2, 3], vec![1, 0, 3, 13, 4, 5, 6]]
        );
        assert!(record_texts(&base).contains(&"www.example.com. 300 A 192.0.2.1".to_string()));

        let refusal = || {
            let src = Source {
                path: &path,
                text: &text,
            };
            load_base(src, None).err().expect("refused").to_string()
        };
        std::fs::write(
            dir.join("keys/more.key"),
            "example.com. IN DNSKEY 256 3 13 !\n",
        )
        .expect("write key");
        let e = refusal();
        assert!(
            e.starts_with(&format!("{}:9: public key is not base64", path.display())),
            "{e}"
        );
        // hickory's message names no file: the included one is added.
        std::fs::write(dir.join("keys/more.key"), "hello world, not a zone\n").expect("write");
        let e = refusal();
        assert!(
            e.starts_with(&format!("{}:9: ", path.display()))
                && e.ends_with(" (in the file included here, keys/Kexample.com.+013+12345.key)"),
            "{e}"
        );
        std::fs::write(dir.join("keys/more.key"), "$INCLUDE more.key\n").expect("write loop");
        let e = refusal();
        assert!(e.contains(":9: $INCLUDE nested more than 32 deep"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    mod generated {
        use proptest::prelude::*;

        use super::*;

        /// Pieces of zone-file text around the record data geoline reads itself.
        fn piece() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "x",
                "@",
                " ",
                "\t",
                "\n",
                "\r",
                ";",
                "\"",
                "(",
                ")",
                "\\",
                "\\# ",
                "0",
                "4 ",
                "0a000001",
                "TYPE65280 ",
                "TYPE1 ",
                "TYPE41 ",
                "DS ",
                "DNSKEY ",
                "RRSIG ",
                "NSEC ",
                "NSEC3 ",
                "NSEC3PARAM ",
                "DNAME ",
                "SPF ",
                "URI ",
                "ZONEMD ",
                "TXT ",
                "HINFO ",
                "A ",
                "CNAME ",
                "SOA ",
                "NS ",
                "IN ",
                "300 ",
                "$ORIGIN ",
                "$TTL ",
                "example.com. ",
                "AQID ",
                "-",
                "20261231000000 ",
                "\u{e9}",
            ])
        }

        proptest! {
            /// The zone_file fuzz target's oracle, on text built from the tokens of the
            /// types read here (the fuzz crate cannot be built offline).
            #[test]
            fn any_text_loads_or_names_a_line(
                pieces in prop::collection::vec(piece(), 0..60),
            ) {
                let text = format!("{HEAD}{}", pieces.concat());
                let src = Source { path: Path::new("z.zone"), text: &text };
                if let Err(e) = load_base(src, None) {
                    let message = e.to_string();
                    let whole = matches!(
                        &e,
                        ZoneError::Invalid { at, reason } if at.line.is_none()
                            && (reason.starts_with("no SOA") || reason.starts_with("no NS"))
                    );
                    let line = match &e {
                        ZoneError::Syntax { at, .. } | ZoneError::Invalid { at, .. } => at.line,
                        ZoneError::Read { .. } => None,
                    };
                    prop_assert!(whole || line.is_some(), "{}", message);
                    if let Some(line) = line {
                        prop_assert!(line >= 1 && line <= text.lines().count() + 1, "{}", message);
                    }
                }
            }
        }
    }
}
