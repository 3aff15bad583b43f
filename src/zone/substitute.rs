//! Hands hickory's zone-file parser a file it can read: an entry whose type or data the
//! parser cannot read (a DNSSEC type, DNAME, RFC 3597 `TYPEnnn` or `\#` generic data) is
//! read here ([`super::rdata`]) and replaced by a placeholder TXT record that keeps its
//! owner, TTL and class as written, which the parser then resolves as for any record (a
//! blank owner, a missing TTL); the placeholders are swapped back for the real records
//! after the parse. This module also cuts over-long TXT strings, once records are parsed.
//!
//! An `$INCLUDE`d file is read here too, and its text put in place of the `$INCLUDE`, so
//! that the parser never reads a file itself. It does not check zones (that is
//! [`super::file`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::parse_ttl;

use super::rdata::{self, Token};

/// The records read here, each behind a placeholder of the prepared text.
pub(crate) struct Placeholders {
    /// What every placeholder's string starts with; random, so no real TXT data has it.
    marker: String,
    records: Vec<RData>,
}

/// A token of an entry and where it is in the text (`end` is past a closing quote).
pub(super) struct Spanned {
    pub(super) token: Token,
    pub(super) start: usize,
    end: usize,
}

/// The text for hickory's parser (the input itself when nothing needs replacing) and the
/// records its placeholders stand for. `text` is the flattened file at `path` (one entry a
/// line); `origin` is the parser's starting origin. An error is about the last entry read
/// (for an `$INCLUDE`d file, the `$INCLUDE`).
pub(crate) fn prepare<'a>(
    text: &'a str,
    path: &Path,
    origin: Option<&Name>,
) -> Result<(Cow<'a, str>, Placeholders), String> {
    let mut placeholders = Placeholders {
        marker: format!(
            "geoline-placeholder-{:016x}-",
            RandomState::new().hash_one(text.len())
        ),
        records: Vec::new(),
    };
    let mut origin = origin.cloned();
    let prepared = match rewrite(text, path, &mut origin, &mut placeholders, 0)? {
        Some(out) => Cow::Owned(out),
        None => Cow::Borrowed(text),
    };
    Ok((prepared, placeholders))
}

/// hickory's own limit is 256; a file that includes itself stops here first.
const MAX_INCLUDE_DEPTH: usize = 32;

/// [`prepare`]'s work on one file: the rewritten text, or `None` when it needs none.
/// `origin` follows the file's `$ORIGIN`s (hickory keeps the last one after an `$INCLUDE`).
fn rewrite(
    text: &str,
    path: &Path,
    origin: &mut Option<Name>,
    placeholders: &mut Placeholders,
    depth: usize,
) -> Result<Option<String>, String> {
    let mut out = String::new();
    let mut changed = false;
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        let (tokens, next) = entry(text, at);
        let start = at;
        at = next;
        let Some(first) = tokens.first() else {
            continue;
        };
        if first.token.text.eq_ignore_ascii_case("$ORIGIN") && !first.token.quoted {
            if let Some(name) = tokens.get(1) {
                *origin = Name::parse(&name.token.text, None).ok();
            }
            continue;
        }
        if first.token.text.eq_ignore_ascii_case("$INCLUDE") && tokens.len() == 2 {
            // The included file is read here and put in place of the `$INCLUDE`, so that
            // its records are read as the main file's are (BIND users `$INCLUDE` their
            // DNSKEY files). An origin after the file name is the parser's to refuse.
            let included = included_path(path, &tokens[1].token.text);
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(format!(
                    "$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
                ));
            }
            let raw = std::fs::read_to_string(&included)
                .map_err(|e| format!("$INCLUDE {}: cannot read: {e}", included.display()))?;
            let flat = super::file::flatten(&raw);
            let inner = rewrite(&flat, &included, origin, placeholders, depth + 1)?;
            out.push_str(&text[copied..first.start]);
            out.push_str(inner.as_deref().unwrap_or(&flat));
            out.push('\n');
            copied = tokens[1].end;
            changed = true;
            continue;
        }
        if first.token.text.starts_with('$') {
            continue;
        }
        // An owner is written when the entry does not start with a blank.
        let mut i = usize::from(first.start == start);
        while let Some(t) = tokens.get(i) {
            let is_ttl = parse_ttl(&t.token.text).is_ok();
            let is_class = DNSClass::from_str(&t.token.text.to_ascii_uppercase()).is_ok();
            if !(is_ttl || is_class) || t.token.quoted {
                break;
            }
            i += 1;
        }
        let Some(type_token) = tokens.get(i) else {
            continue;
        };
        let Some(rtype) = rdata::record_type(&type_token.token.text) else {
            continue;
        };
        let data = &tokens[i + 1..];
        let generic = data
            .first()
            .is_some_and(|t| !t.token.quoted && t.token.text == "\\#");
        if !generic && rdata::hickory_reads(rtype) {
            if type_token
                .token
                .text
                .to_ascii_uppercase()
                .starts_with("TYPE")
            {
                // `TYPE1 192.0.2.1`: the parser reads the data once the type has its name.
                out.push_str(&text[copied..type_token.start]);
                out.push_str(&rdata::mnemonic(rtype));
                copied = type_token.end;
                changed = true;
            }
            continue;
        }
        let data_tokens: Vec<Token> = data.iter().map(|t| t.token.clone()).collect();
        let parsed = rdata::parse(rtype, &data_tokens, origin.as_ref())?;
        let end = data.last().map_or(type_token.end, |t| t.end);
        out.push_str(&text[copied..type_token.start]);
        out.push_str(&format!(
            "TXT {}{}",
            placeholders.marker,
            placeholders.records.len()
        ));
        copied = end;
        changed = true;
        placeholders.records.push(parsed);
    }
    if !changed {
        return Ok(None);
    }
    out.push_str(&text[copied..]);
    Ok(Some(out))
}

/// Where hickory's parser looks for an `$INCLUDE`d file: as written when absolute, else
/// beside the file that includes it.
fn included_path(including: &Path, name: &str) -> PathBuf {
    let name = Path::new(name);
    if name.is_absolute() {
        return name.to_path_buf();
    }
    including
        .parent()
        .map_or_else(|| name.to_path_buf(), |dir| dir.join(name))
}

/// The tokens of the entry starting at `at`, and where the next entry starts. Follows
/// hickory's lexer on a flattened file: blanks separate tokens, a `"` at the start of a
/// token opens a quoted string (line ends and escaped quotes inside), `;` outside quotes
/// starts a comment, `\` escapes the next character.
pub(super) fn entry(text: &str, at: usize) -> (Vec<Spanned>, usize) {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = at;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => return (tokens, i + 1),
            b';' => {
                let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                return (tokens, (end + 1).min(bytes.len()));
            }
            b if b.is_ascii_whitespace() => i += 1,
            b'"' => {
                let start = i;
                i += 1;
                let content = i;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let close = i.min(bytes.len());
                tokens.push(Spanned {
                    token: Token {
                        text: text[content..close].to_string(),
                        quoted: true,
                    },
                    start,
                    end: (close + 1).min(bytes.len()),
                });
                i = close + 1;
            }
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b';' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(bytes.len());
                tokens.push(Spanned {
                    token: Token {
                        text: text[start..end].to_string(),
                        quoted: false,
                    },
                    start,
                    end,
                });
            }
        }
    }
    (tokens, bytes.len())
}

/// Puts the records read here in place of their placeholders, and cuts TXT strings over
/// 255 bytes into pieces ([`rdata::split_long_txt`]).
pub(crate) fn restore(
    parsed: &mut BTreeMap<RrKey, RecordSet>,
    placeholders: &mut Placeholders,
) -> Result<(), String> {
    let Placeholders { marker, records } = placeholders;
    let marker = &**marker;
    let mut moved: Vec<Record> = Vec::new();
    let mut emptied: Vec<RrKey> = Vec::new();
    for (key, set) in parsed.iter_mut() {
        if set.record_type() != RecordType::TXT {
            continue;
        }
        let needs_work = set.records_without_rrsigs().any(|r| {
            rdata::split_long_txt(&r.data).is_some()
                || (!records.is_empty() && placeholder_index(&r.data, marker).is_some())
        });
        if !needs_work {
            continue;
        }
        let mut kept = RecordSet::new(set.name().clone(), RecordType::TXT, 0);
        for record in set.records_without_rrsigs() {
            if let Some(index) = placeholder_index(&record.data, marker) {
                let data = records
                    .get_mut(index)
                    .map(|d| std::mem::replace(d, RData::Update0(RecordType::NULL)))
                    .ok_or("a placeholder without its record")?;
                let mut real = Record::from_rdata(record.name.clone(), record.ttl, data);
                real.dns_class = record.dns_class;
                moved.push(real);
            } else if let Some(split) = rdata::split_long_txt(&record.data) {
                let mut split = Record::from_rdata(record.name.clone(), record.ttl, split);
                split.dns_class = record.dns_class;
                kept.insert(split, 0);
            } else {
                kept.insert(record.clone(), 0);
            }
        }
        if kept.is_empty() {
            emptied.push(key.clone());
        } else {
            *set = kept;
        }
    }
    for key in emptied {
        parsed.remove(&key);
    }
    for record in moved {
        let rtype = record.record_type();
        let key = RrKey::new(LowerName::new(&record.name), rtype);
        let set = parsed
            .entry(key)
            .or_insert_with(|| RecordSet::new(record.name.clone(), rtype, 0));
        if rtype == RecordType::SOA && !set.is_empty() {
            return Err("SOA is already specified".into());
        }
        set.insert(record, 0);
    }
    Ok(())
}

fn placeholder_index(data: &RData, marker: &str) -> Option<usize> {
    let RData::TXT(txt) = data else {
        return None;
    };
    let [only] = &txt.txt_data[..] else {
        return None;
    };
    std::str::from_utf8(only)
        .ok()?
        .strip_prefix(marker)?
        .parse()
        .ok()
}
