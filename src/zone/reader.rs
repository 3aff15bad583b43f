//! geoline's own reader for the common subset of RFC 1035 master files: the plain
//! records almost every zone is made of, read straight into their packed form.
//!
//! hickory's parser makes a [`Record`] of every entry (an owner [`Name`] and an [`RData`]
//! of some 300 bytes), gathers them in a map of record sets, and the loader then checks,
//! copies and packs each set ([`super::packed`]): for a zone of a million records that is
//! most of the load's time. This reader takes the entries it is sure to read exactly as
//! that path does — `$ORIGIN` and `$TTL`, owners written, blank or `@`, TTL and class IN
//! in either order, and the types A, AAAA, CNAME, NS, PTR, MX, TXT and SOA with their data
//! as plain tokens (TXT quoted or not) — and writes each RRset's wire form directly.
//!
//! Anything else makes it give up on the file, and the loader reads it as before
//! ([`super::stream`], [`super::file`]): another type, another class, an `$INCLUDE`, an
//! escape (`\`), an owner other than the apex with capital letters, a group still open,
//! a character-string over 255 bytes, two records of an RRset with the same data or
//! different TTLs, any error. Giving up costs the time read so far, once: a file that is
//! not plain from its first lines costs nothing measurable. So what a file loads as, and what an error in it says
//! (file:line: reason), are that path's; this one is only faster at the files it takes.
//! It is checked against that path (the tests below, and `tests/zone_reader.rs` on
//! generated files).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_proto::serialize::txt::parse_ttl;

use super::file;
use super::labels;
use super::packed::Packed;
use super::stream::Loaded;
use super::tree::{OwnedRrset, View};

/// The reader gave up: the file is for the full parser.
#[derive(Debug)]
pub(super) struct Unread;

type Read<T> = Result<T, Unread>;

/// Bytes of a DNS message that an RRset and its question must fit in.
const MESSAGE_MAX: usize = 65_535;

/// The types this reader reads, by mnemonic.
const TYPES: [(&str, RecordType); 8] = [
    ("A", RecordType::A),
    ("AAAA", RecordType::AAAA),
    ("CNAME", RecordType::CNAME),
    ("NS", RecordType::NS),
    ("PTR", RecordType::PTR),
    ("MX", RecordType::MX),
    ("TXT", RecordType::TXT),
    ("SOA", RecordType::SOA),
];

/// One record read: its owner, type, TTL and data in wire form (names uncompressed).
struct Entry {
    owner: Name,
    rtype: RecordType,
    ttl: u32,
    data: Vec<u8>,
    /// The SOA's data, for the zone's SOA record.
    soa: Option<SOA>,
    /// Whether the owner was left blank: the last entry's.
    same_owner: bool,
}

/// The state hickory's parser carries from entry to entry, and the lines still to read.
struct Lines<'a> {
    rest: &'a str,
    /// What comes after `rest`: the file past its last parenthesised group, not flattened.
    tail: &'a str,
    origin: Option<Name>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    owner: Option<Name>,
    /// The tokens of the line being read (kept to reuse the allocation).
    tokens: Vec<Token<'a>>,
}

impl<'a> Lines<'a> {
    fn new(head: &'a str, tail: &'a str, origin: Option<&Name>) -> Lines<'a> {
        Lines {
            rest: head,
            tail,
            origin: origin.cloned(),
            default_ttl: None,
            last_ttl: None,
            owner: None,
            tokens: Vec::with_capacity(16),
        }
    }

    /// The next record of the text, `None` at its end.
    fn next_entry(&mut self) -> Read<Option<Entry>> {
        let mut tokens = std::mem::take(&mut self.tokens);
        let entry = self.entry(&mut tokens);
        self.tokens = tokens;
        entry
    }

    fn entry(&mut self, tokens: &mut Vec<Token<'a>>) -> Read<Option<Entry>> {
        loop {
            if self.rest.is_empty() {
                if self.tail.is_empty() {
                    return Ok(None);
                }
                self.rest = std::mem::take(&mut self.tail);
            }
            let (line, rest) = match self.rest.find('\n') {
                Some(end) => (&self.rest[..end], &self.rest[end + 1..]),
                // The last line, without its line end: a CR there is the lexer's error.
                None if self.rest.contains('\r') => return Err(Unread),
                None => (self.rest, ""),
            };
            self.rest = rest;
            // CRs before the LF are part of the line end, as in hickory's lexer.
            let line = line.trim_end_matches('\r');
            tokens.clear();
            let owner_written = tokenize(line, tokens)?;
            let Some(first) = tokens.first() else {
                continue;
            };
            if owner_written && !first.quoted && first.text.starts_with('$') {
                self.directive(tokens)?;
                continue;
            }
            return self.record(owner_written, tokens).map(Some);
        }
    }

    fn directive(&mut self, tokens: &[Token<'_>]) -> Read<()> {
        let [word, value] = tokens else {
            return Err(Unread);
        };
        if value.quoted {
            return Err(Unread);
        }
        match word.text {
            "$TTL" => self.default_ttl = Some(parse_ttl(value.text).map_err(|_| Unread)?),
            "$ORIGIN" => {
                if !value.text.ends_with('.') {
                    return Err(Unread);
                }
                self.origin = Some(Name::parse(value.text, None).map_err(|_| Unread)?);
            }
            _ => return Err(Unread),
        }
        Ok(())
    }

    fn record(&mut self, owner_written: bool, tokens: &[Token<'_>]) -> Read<Entry> {
        let mut rest = tokens;
        if owner_written {
            let (owner, after) = rest.split_first().ok_or(Unread)?;
            self.owner = Some(self.owner_name(owner)?);
            rest = after;
        }
        let owner = self.owner.clone().ok_or(Unread)?;
        let mut this_ttl = None;
        let rtype = loop {
            let (token, after) = rest.split_first().ok_or(Unread)?;
            rest = after;
            if token.quoted {
                return Err(Unread);
            }
            // hickory tries a TTL, then a class, then a type: disjoint, since a TTL starts
            // with a digit and no class or type mnemonic does.
            if token.text.starts_with(|c: char| c.is_ascii_digit()) {
                this_ttl = Some(parse_ttl(token.text).map_err(|_| Unread)?);
                continue;
            }
            if token.text.eq_ignore_ascii_case("IN") {
                continue;
            }
            // Another class, or another type: the full parser's.
            break TYPES
                .iter()
                .find(|(mnemonic, _)| token.text.eq_ignore_ascii_case(mnemonic))
                .map(|(_, rtype)| *rtype)
                .ok_or(Unread)?;
        };
        // hickory's order: the TTL written, else `$TTL`, else the last one written.
        let ttl = match this_ttl {
            Some(ttl) => {
                self.last_ttl = Some(ttl);
                ttl
            }
            None => self.default_ttl.or(self.last_ttl).ok_or(Unread)?,
        };
        let (data, soa) = self.data(rtype, rest)?;
        Ok(Entry {
            owner,
            rtype,
            ttl,
            data,
            soa,
            same_owner: !owner_written,
        })
    }

    fn owner_name(&self, token: &Token<'_>) -> Read<Name> {
        if token.quoted {
            return Err(Unread);
        }
        if token.text == "@" {
            return self.origin.clone().ok_or(Unread);
        }
        self.name(token.text)
    }

    /// A name as hickory's parser reads it: relative to the current origin.
    fn name(&self, text: &str) -> Read<Name> {
        if text.contains('@') || (self.origin.is_none() && !text.ends_with('.')) {
            return Err(Unread);
        }
        if let Some(name) = plain_name(text, self.origin.as_ref()) {
            return Ok(name);
        }
        let mut name = Name::parse(text, self.origin.as_ref()).map_err(|_| Unread)?;
        name.set_fqdn(true);
        Ok(name)
    }

    /// A record's data in wire form, from its tokens: exactly as many as the type takes.
    fn data(&self, rtype: RecordType, tokens: &[Token<'_>]) -> Read<(Vec<u8>, Option<SOA>)> {
        let mut out = Vec::with_capacity(16);
        if rtype == RecordType::TXT {
            if tokens.is_empty() {
                return Err(Unread);
            }
            for token in tokens {
                let bytes = token.text.as_bytes();
                let length = u8::try_from(bytes.len()).map_err(|_| Unread)?;
                out.push(length);
                out.extend_from_slice(bytes);
            }
            return Ok((out, None));
        }
        if tokens.iter().any(|t| t.quoted) {
            return Err(Unread);
        }
        let mut soa = None;
        match (rtype, tokens) {
            (RecordType::A, [address]) => {
                let address = Ipv4Addr::from_str(address.text).map_err(|_| Unread)?;
                out.extend_from_slice(&address.octets());
            }
            (RecordType::AAAA, [address]) => {
                let address = Ipv6Addr::from_str(address.text).map_err(|_| Unread)?;
                out.extend_from_slice(&address.octets());
            }
            (RecordType::CNAME | RecordType::NS | RecordType::PTR, [target]) => {
                emit_name(&self.name(target.text)?, &mut out)?;
            }
            (RecordType::MX, [preference, exchange]) => {
                let preference: u16 = preference.text.parse().map_err(|_| Unread)?;
                out.extend_from_slice(&preference.to_be_bytes());
                emit_name(&self.name(exchange.text)?, &mut out)?;
            }
            (RecordType::SOA, [mname, rname, serial, refresh, retry, expire, minimum]) => {
                let number = |t: &Token<'_>| parse_ttl(t.text).map_err(|_| Unread);
                let signed = |t: &Token<'_>| i32::try_from(number(t)?).map_err(|_| Unread);
                let data = SOA::new(
                    self.name(mname.text)?,
                    self.name(rname.text)?,
                    number(serial)?,
                    signed(refresh)?,
                    signed(retry)?,
                    signed(expire)?,
                    number(minimum)?,
                );
                let mut encoder = BinEncoder::new(&mut out);
                encoder.set_name_encoding(NameEncoding::Uncompressed);
                data.emit(&mut encoder).map_err(|_| Unread)?;
                soa = Some(data);
            }
            _ => return Err(Unread),
        }
        Ok((out, soa))
    }
}

/// `text` as [`Name::parse`] reads it (fully qualified), for the names most zones are
/// made of: labels of ASCII letters, digits and hyphens, not starting with a hyphen, not
/// `xn--` (punycode, which the parser checks). The parser runs each label through IDNA's
/// mapping (UTS 46), which for such a label only writes capitals small; this does that
/// alone. `None` for any other name: the parser's, then.
fn plain_name(text: &str, origin: Option<&Name>) -> Option<Name> {
    let (relative, absolute) = match text.strip_suffix('.') {
        Some(relative) => (relative, true),
        None => (text, false),
    };
    if relative.is_empty() {
        return None;
    }
    let mut name = Name::new();
    let mut lower = [0u8; 63];
    for label in relative.split('.') {
        let bytes = label.as_bytes();
        let plain = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.len() <= lower.len()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && !bytes
                .get(..4)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"xn--"));
        if !plain {
            return None;
        }
        let lower = &mut lower[..bytes.len()];
        for (to, from) in lower.iter_mut().zip(bytes) {
            *to = from.to_ascii_lowercase();
        }
        name = name.append_label(&*lower).ok()?;
    }
    if absolute {
        name.set_fqdn(true);
        Some(name)
    } else {
        name.append_domain(origin?).ok()
    }
}

/// Whether `owner` is written in small letters, or is the zone's `origin`: a name index
/// keeps a name's letter case as first inserted, and the full parser inserts in name
/// order where this reader inserts in file order, so names that differ only in case are
/// left to it. (The apex is in a view before any record.)
fn lowercase_or(owner: &Name, origin: &Name) -> bool {
    labels::same(owner, origin)
        || !owner
            .iter()
            .any(|label| label.iter().any(u8::is_ascii_uppercase))
}

/// Appends `name` in wire form, uncompressed: each label's length and bytes, then the
/// root (a name from [`Lines::name`] is fully qualified).
fn emit_name(name: &Name, out: &mut Vec<u8>) -> Read<()> {
    for label in name.iter() {
        out.push(u8::try_from(label.len()).map_err(|_| Unread)?);
        out.extend_from_slice(label);
    }
    out.push(0);
    Ok(())
}

/// A token of a line: its text (without quotes) and whether it was quoted.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    quoted: bool,
}

/// A file cut where its last parenthesised group ends (at a line end), the part before
/// flattened ([`file::flatten`]: each group joined onto one line, as the full parser's
/// path reads it): flattening stops in its starting state at a line end outside a group
/// and a quote, so the rest reads the same unflattened, and is not copied. (Where the cut
/// is inside a quote or a group never closed, the reader finds it open and gives up.)
fn flattened(text: &str) -> (std::borrow::Cow<'_, str>, &str) {
    let cut = text.rfind(')').map_or(0, |close| {
        text[close..]
            .find('\n')
            .map_or(text.len(), |n| close + n + 1)
    });
    let (head, tail) = text.split_at(cut);
    (file::flatten(head), tail)
}

/// Cuts a line (of a flattened file, without its line end) into tokens as hickory's
/// lexer does; whether the line starts with a token (an owner or a directive) rather than
/// a blank. Gives up on whatever the lexer reads another way or refuses: a `\`, `(`, `)`,
/// a quote in the middle of a token or not closed on the line, `@` or `$` other than as a
/// line's first token, a control character, anything but ASCII outside quotes.
fn tokenize<'a>(line: &'a str, tokens: &mut Vec<Token<'a>>) -> Read<bool> {
    let bytes = line.as_bytes();
    let owner_written = bytes.first().is_some_and(|b| !matches!(b, b' ' | b'\t'));
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            b';' => break,
            b'"' => {
                let start = i + 1;
                let close = line[start..].find('"').ok_or(Unread)? + start;
                let text = &line[start..close];
                if text
                    .bytes()
                    .any(|b| b == b'\\' || (b.is_ascii_control() && b != b'\t'))
                {
                    return Err(Unread);
                }
                tokens.push(Token { text, quoted: true });
                i = close + 1;
            }
            _ => {
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b';') {
                    match bytes[i] {
                        b'\\' | b'(' | b')' | b'"' => return Err(Unread),
                        b'@' | b'$' if !(start == 0 && i == 0) => return Err(Unread),
                        b if !b.is_ascii_graphic() => return Err(Unread),
                        _ => i += 1,
                    }
                }
                let text = &line[start..i];
                // `@` alone is the origin; `@x` is two tokens to the lexer.
                if text.starts_with('@') && text.len() > 1 {
                    return Err(Unread);
                }
                // The lexer reads only capitals after `$`.
                if text.starts_with('$') && !text[1..].bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(Unread);
                }
                tokens.push(Token {
                    text,
                    quoted: false,
                });
            }
        }
    }
    Ok(owner_written)
}

/// The RRset being read: consecutive records of one owner and type.
struct Pending {
    owner: Name,
    rtype: RecordType,
    ttl: u32,
    /// The records' pieces as [`Packed`] lays them out (flags, length, data).
    pieces: Vec<u8>,
}

impl Pending {
    fn new(entry: Entry) -> Read<Pending> {
        let mut pending = Pending {
            owner: entry.owner,
            rtype: entry.rtype,
            ttl: entry.ttl,
            pieces: Vec::with_capacity(3 + entry.data.len()),
        };
        pending.push(&entry.data)?;
        Ok(pending)
    }

    fn takes(&self, entry: &Entry) -> bool {
        entry.rtype == self.rtype && (entry.same_owner || labels::same(&entry.owner, &self.owner))
    }

    /// Adds the record of an entry it [`Pending::takes`]: an RRset of records written
    /// with different TTLs is the full parser's (it warns, and keeps the first TTL).
    fn add(&mut self, entry: &Entry) -> Read<()> {
        if entry.ttl != self.ttl {
            return Err(Unread);
        }
        self.push(&entry.data)
    }

    /// Adds a record's data, giving up where hickory's record set would replace a record
    /// (a second CNAME or SOA, data equal to a record's) rather than add one.
    fn push(&mut self, data: &[u8]) -> Read<()> {
        if !self.pieces.is_empty() && matches!(self.rtype, RecordType::CNAME | RecordType::SOA) {
            return Err(Unread);
        }
        // hickory compares names in data without regard to case: so does this, for the
        // types that hold names (more often equal than hickory says, never less).
        let names = !matches!(
            self.rtype,
            RecordType::A | RecordType::AAAA | RecordType::TXT
        );
        if packed_pieces(&self.pieces).any(|d| d == data || (names && d.eq_ignore_ascii_case(data)))
        {
            return Err(Unread);
        }
        let length = u16::try_from(data.len()).map_err(|_| Unread)?;
        self.pieces.push(0);
        self.pieces.extend_from_slice(&length.to_be_bytes());
        self.pieces.extend_from_slice(data);
        Ok(())
    }

    /// Adds the records of `later`, the same owner and type read after another RRset came
    /// between, as hickory's record set adds them.
    fn merge(&mut self, later: &Pending) -> Read<()> {
        if later.ttl != self.ttl || self.rtype == RecordType::SOA {
            return Err(Unread);
        }
        for data in packed_pieces(&later.pieces) {
            self.push(data)?;
        }
        Ok(())
    }

    /// The RRset packed. It and a question of its owner must fit in one message (counted
    /// without compression, which only makes it smaller).
    fn packed(&self) -> Read<Packed> {
        let owner_len = self.owner.len() + 1;
        let records = packed_pieces(&self.pieces).count();
        if 12 + owner_len + 4 + records * (owner_len + 10) + self.pieces.len() > MESSAGE_MAX {
            return Err(Unread);
        }
        let mut bytes = Vec::with_capacity(6 + self.pieces.len());
        bytes.extend_from_slice(&u16::from(self.rtype).to_be_bytes());
        bytes.extend_from_slice(&self.ttl.to_be_bytes());
        bytes.extend_from_slice(&self.pieces);
        Ok(Packed::Wire(bytes.into()))
    }

    /// Stores the RRset in `view`, merged with the records of the same owner and type the
    /// view has from earlier in the file.
    fn flush(self, view: &mut View) -> Read<()> {
        let Some(earlier) = view.insert_loading(self.owner.clone(), self.packed()?) else {
            return Ok(());
        };
        let Packed::Wire(bytes) = &earlier else {
            return Err(Unread);
        };
        let mut merged = Pending {
            owner: self.owner.clone(),
            rtype: self.rtype,
            ttl: earlier.ttl(),
            pieces: bytes.get(6..).ok_or(Unread)?.to_vec(),
        };
        merged.merge(&self)?;
        view.insert_loading(self.owner, merged.packed()?);
        Ok(())
    }
}

/// The data of each record of packed pieces (flags, length, data).
fn packed_pieces(mut pieces: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let [_, high, low, rest @ ..] = pieces else {
            return None;
        };
        let length = usize::from(u16::from_be_bytes([*high, *low]));
        let data = rest.get(..length)?;
        pieces = &rest[length..];
        Some(data)
    })
}

/// A base file read by this reader, or [`Unread`] when it is for the full parser.
/// `origin` is the configured one; without it, the first record must be the SOA.
pub(super) fn load_base(text: &str, origin: Option<&Name>) -> Read<Loaded> {
    let (head, tail) = flattened(text);
    let mut lines = Lines::new(&head, tail, origin);
    let Some(first) = lines.next_entry()? else {
        return Err(Unread);
    };
    let origin = match origin {
        Some(origin) => origin.clone(),
        None if first.rtype == RecordType::SOA => first.owner.clone(),
        None => return Err(Unread),
    };
    // As many names as lines at most: sized so that the index never grows.
    let lines_count = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let placeholder = Record::from_rdata(origin.clone(), 0, RData::Update0(RecordType::SOA));
    let mut view = View::with_capacity(origin.clone(), placeholder, lines_count);
    let mut soa = None;
    let mut pending: Option<Pending> = None;
    let mut next = Some(first);
    while let Some(entry) = next {
        if !labels::at_or_below(&origin, &entry.owner) || !lowercase_or(&entry.owner, &origin) {
            return Err(Unread);
        }
        if let Some(data) = &entry.soa {
            if !labels::same(&entry.owner, &origin) || soa.is_some() {
                return Err(Unread);
            }
            let mut record =
                Record::from_rdata(entry.owner.clone(), entry.ttl, RData::SOA(data.clone()));
            record.name.set_fqdn(true);
            soa = Some(record);
        }
        match pending.as_mut() {
            Some(set) if set.takes(&entry) => set.add(&entry)?,
            _ => {
                if let Some(set) = pending.take() {
                    set.flush(&mut view)?;
                }
                pending = Some(Pending::new(entry)?);
            }
        }
        next = lines.next_entry()?;
    }
    if let Some(set) = pending {
        set.flush(&mut view)?;
    }
    // hickory's parser refuses a file that ends without an origin.
    if lines.origin.is_none() {
        return Err(Unread);
    }
    let soa = soa.ok_or(Unread)?;
    let apex = view.node(&origin).ok_or(Unread)?;
    if apex.get(RecordType::NS).is_none() {
        return Err(Unread);
    }
    if cname_beside_data(view.names()) {
        return Err(Unread);
    }
    view.negative_soa = file::negative_soa(&soa);
    view.loaded();
    Ok(Loaded { origin, soa, view })
}

/// An overlay file read by this reader (its RRsets in name and type order, as the full
/// parser's map gives them), or [`Unread`].
pub(super) fn load_overlay(text: &str, origin: &Name) -> Read<Vec<OwnedRrset>> {
    let (head, tail) = flattened(text);
    let mut lines = Lines::new(&head, tail, Some(origin));
    let mut read: Vec<Pending> = Vec::new();
    let mut pending: Option<Pending> = None;
    while let Some(entry) = lines.next_entry()? {
        if !labels::at_or_below(origin, &entry.owner)
            || !lowercase_or(&entry.owner, origin)
            || entry.rtype == RecordType::SOA
            || (entry.rtype == RecordType::CNAME && labels::same(&entry.owner, origin))
        {
            return Err(Unread);
        }
        match pending.as_mut() {
            Some(set) if set.takes(&entry) => set.add(&entry)?,
            _ => read.extend(pending.replace(Pending::new(entry)?)),
        }
    }
    read.extend(pending);
    // In the map's order; the records of an RRset written apart stay in file order.
    read.sort_by_cached_key(|set| (labels::canonical_key(&set.owner), u16::from(set.rtype)));
    let mut merged: Vec<Pending> = Vec::with_capacity(read.len());
    for set in read {
        match merged.last_mut() {
            Some(last) if last.rtype == set.rtype && labels::same(&last.owner, &set.owner) => {
                last.merge(&set)?
            }
            _ => merged.push(set),
        }
    }
    let mut sets = Vec::with_capacity(merged.len());
    let mut at = merged.iter().peekable();
    while let Some(set) = at.next() {
        let mut types = vec![set.rtype];
        sets.push((set.owner.clone(), set.packed()?));
        while let Some(next) = at.next_if(|next| labels::same(&next.owner, &set.owner)) {
            types.push(next.rtype);
            sets.push((next.owner.clone(), next.packed()?));
        }
        if types.len() > 1 && types.contains(&RecordType::CNAME) {
            return Err(Unread);
        }
    }
    Ok(sets)
}

/// Whether some name of a view has a CNAME and other data.
fn cname_beside_data<'a>(
    mut names: impl Iterator<Item = (&'a Name, &'a super::tree::Node)>,
) -> bool {
    names.any(|(_, node)| node.get(RecordType::CNAME).is_some() && node.rrsets().nth(1).is_some())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::serialize::binary::BinEncodable as _;
    use proptest::prelude::*;

    use super::*;
    use crate::zone::file::Source;
    use crate::zone::{packed, stream};

    /// Everything a view holds, as text: every name as the index keeps it (letter case
    /// included) with its types, every record with its TTL, class and data bytes, the
    /// stored form of each RRset, and the SOA negative answers carry.
    fn snapshot(view: &View) -> Vec<String> {
        let mut out: Vec<String> = view
            .names()
            .map(|(name, node)| {
                let types: Vec<String> = node.types().map(|t| t.to_string()).collect();
                format!("name {name} [{}]", types.join(" "))
            })
            .collect();
        for (name, node) in view.names() {
            for set in node.rrsets() {
                let form = match set {
                    Packed::Wire(_) => "wire",
                    Packed::Records(_) => "records",
                };
                for record in set.records(name) {
                    let mut bytes = Vec::new();
                    let mut encoder = BinEncoder::new(&mut bytes);
                    encoder.set_name_encoding(NameEncoding::Uncompressed);
                    record.data.emit(&mut encoder).expect("encodes");
                    out.push(format!(
                        "{form} {} {} {} {} {} {bytes:?}",
                        record.name,
                        record.ttl,
                        record.dns_class,
                        record.record_type(),
                        record.data
                    ));
                }
            }
        }
        let soa = &view.negative_soa;
        out.push(format!("negative {} {} {}", soa.name, soa.ttl, soa.data));
        out.sort();
        out
    }

    /// What the full parser makes of a base file: the view's snapshot, or the error.
    fn whole_base(text: &str, origin: Option<&Name>) -> Result<Vec<String>, String> {
        let src = Source {
            path: Path::new("z.zone"),
            text,
        };
        let base = file::load_base(src, origin).map_err(|e| e.to_string())?;
        let mut view = View::with_capacity(base.origin.clone(), file::negative_soa(&base.soa), 1);
        for set in base.rrsets {
            view.insert(set);
        }
        let mut out = snapshot(&view);
        out.push(format!(
            "origin {} soa {} {}",
            base.origin, base.soa.ttl, base.soa.data
        ));
        Ok(out)
    }

    /// What the loader makes of it (this reader first), in the same terms.
    fn loaded_base(text: &str, origin: Option<&Name>) -> Result<Vec<String>, String> {
        let src = Source {
            path: Path::new("z.zone"),
            text,
        };
        let loaded = stream::load(src, origin).map_err(|e| e.to_string())?;
        let mut out = snapshot(&loaded.view);
        out.push(format!(
            "origin {} soa {} {}",
            loaded.origin, loaded.soa.ttl, loaded.soa.data
        ));
        Ok(out)
    }

    fn whole_overlay(text: &str, origin: &Name) -> Result<Vec<String>, String> {
        let src = Source {
            path: Path::new("o.zone"),
            text,
        };
        let sets = file::load_overlay(src, origin).map_err(|e| e.to_string())?;
        Ok(overlay_listing(
            sets.iter()
                .filter_map(|set| Some((set.first()?.name.clone(), packed::Packed::new(set)?)))
                .collect(),
        ))
    }

    fn overlay_listing(sets: Vec<OwnedRrset>) -> Vec<String> {
        sets.iter()
            .flat_map(|(owner, set)| {
                let form = match set {
                    Packed::Wire(_) => "wire",
                    Packed::Records(_) => "records",
                };
                set.records(owner)
                    .map(|r| format!("{form} {} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("name")
    }

    /// The reader's base, when it takes the file.
    fn read_base(text: &str, origin: Option<&Name>) -> Option<Vec<String>> {
        let loaded = load_base(text, origin).ok()?;
        let mut out = snapshot(&loaded.view);
        out.push(format!(
            "origin {} soa {} {}",
            loaded.origin, loaded.soa.ttl, loaded.soa.data
        ));
        Some(out)
    }

    /// Asserts that the reader takes `text` and reads what the full parser reads.
    fn same_base(text: &str, origin: Option<&Name>) {
        let expected = whole_base(text, origin).expect("the full parser loads it");
        assert_eq!(read_base(text, origin), Some(expected), "{text}");
    }

    const EXAMPLE: &str = include_str!("../../zones/example.com.zone");
    const CHINA: &str = include_str!("../../zones/example.com.china.zone");

    #[test]
    fn the_repositorys_zones_read_as_the_full_parser_reads_them() {
        same_base(EXAMPLE, None);
        same_base(EXAMPLE, Some(&name("example.com.")));
        let origin = name("example.com.");
        let sets = load_overlay(CHINA, &origin).expect("read");
        assert_eq!(Ok(overlay_listing(sets)), whole_overlay(CHINA, &origin));
        // The fuzz corpus: what the reader takes it reads the same; the rest goes to the
        // full parser, and the loader's answer is that parser's.
        for text in [
            include_str!("../../fuzz/corpus/zone_file/example.com.zone"),
            include_str!("../../fuzz/corpus/zone_file/signed-and-generic.zone"),
        ] {
            if let Some(read) = read_base(text, None) {
                assert_eq!(Ok(read), whole_base(text, None));
            }
            assert_eq!(loaded_base(text, None), whole_base(text, None));
        }
    }

    #[test]
    fn every_supported_type_and_form_reads_the_same() {
        let text = EVERY;
        same_base(text, None);
        same_base(text, Some(&name("example.com.")));
        same_base(&text.replace('\n', "\r\n"), None);
        // A configured origin written with capitals: names relative to it keep them, and
        // the reader leaves the file to the full parser.
        let text = text.replace("$ORIGIN example.com.\n$TTL", "$TTL");
        let origin = name("Example.COM.");
        assert!(read_base(&text, Some(&origin)).is_none());
        assert_eq!(
            loaded_base(&text, Some(&origin)),
            whole_base(&text, Some(&origin))
        );
    }

    pub(super) const EVERY: &str = "\
; every form the reader takes
$ORIGIN example.com.
$TTL 1h
@ IN SOA ns1.example.com. hostmaster ( 2026120701 ; serial
        2h 15m 2w 60 )
  NS ns1
  IN 3600 NS ns2.example.net.
  300 IN MX 10 mail
  300 MX 20 backup.example.org.
  TXT \"v=spf1 mx -all\" plain \"\"
  TXT \"two\"\"strings\"
  A 192.0.2.1 ; the apex address
ns1 A 192.0.2.53
    AAAA 2001:db8::53
    AAAA ::ffff:192.0.2.1
mail A 192.0.2.25
*.apps A 192.0.2.20
www 60 A 192.0.2.10
    60 A 192.0.2.11
www.example.com. 60 A 192.0.2.12
api CNAME Api.Global.example.NET.
h1 60 A 10.0.0.1
h2 A 10.0.0.2
1.2.0.192.in-addr.arpa.example.com. PTR www
$TTL 120
h3 A 10.0.0.3
$ORIGIN sub.example.com.
@ NS ns
ns A 192.0.2.99
deep.er TXT \"\u{e9}t\u{e9}\" x;comment
$ORIGIN example.com.
www 60 A 192.0.2.13
mail AAAA 2001:db8::25
mail 1h A 192.0.2.26
";

    #[test]
    fn what_it_does_not_take_goes_to_the_full_parser() {
        let head =
            "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
        assert!(read_base(head, None).is_some());
        for tail in [
            "x CAA 0 issue \"ca.example\"\n",
            "x CH A 192.0.2.1\n",
            "x A 192.0.2.1 192.0.2.2\n",
            "x A 300.0.0.1\n",
            "x TXT \"a\\\"b\"\n",
            "x TXT \"open\n",
            "x TXT (\"open\"\n",
            &format!("x TXT \"{}\"\n", "a".repeat(256)),
            "x CNAME @\n",
            "x A 192.0.2.1\nx A 192.0.2.1\n",
            "x 60 A 192.0.2.1\nx 70 A 192.0.2.2\n",
            "x CNAME a\nx CNAME b\n",
            "x CNAME a\nx A 192.0.2.1\n",
            "x MX 10 a\nx MX 10 A\n",
            "$INCLUDE other.zone\n",
            "x.example.net. A 192.0.2.1\n",
            "@ SOA ns1 h 2 2 3 4 5\n",
            "sub SOA ns1 h 2 2 3 4 5\n",
            "x\n",
            "x 60\n",
            " $TTL 60\n",
            "x A 192.0.2.1\rx A 192.0.2.2\n",
        ] {
            let text = format!("{head}{tail}");
            assert!(read_base(&text, None).is_none(), "taken: {tail}");
            assert_eq!(loaded_base(&text, None), whole_base(&text, None), "{tail}");
        }
        // The origin from the SOA: it must come first.
        let late =
            "$ORIGIN example.com.\n$TTL 60\na A 192.0.2.1\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n";
        assert!(read_base(late, None).is_none());
        assert!(read_base(late, Some(&name("example.com."))).is_some());
        // hickory's parser writes the names of a file in small letters (its own
        // `$ORIGIN`s too): these read the same.
        same_base(
            &format!("{head}X A 192.0.2.1\nWww.Example.COM. A 192.0.2.2\n"),
            None,
        );
        same_base(
            &format!("{head}$ORIGIN Sub.Example.com.\nX A 192.0.2.1\n"),
            None,
        );
        // Records of one RRset apart are merged as the full parser merges them.
        same_base(
            &format!("{head}x A 192.0.2.1\ny A 192.0.2.2\nx A 192.0.2.3\n"),
            None,
        );
    }

    /// Lines of zone files made of the forms the reader takes, and (unless `plain`) of
    /// some it does not.
    fn line(plain: bool) -> impl Strategy<Value = String> {
        let mut owners = vec![
            "",
            "@",
            "www",
            "h1",
            "a.b",
            "*.w",
            "mail",
            "www.example.com.",
            "WWW",
            "sub",
            "ns.sub",
            "Ab-c.D9",
            "a--b",
            "x-",
            "0",
            "-a",
            "xn--bcher-kva",
            "XN--abc",
            "_srv._tcp",
            "a_b",
        ];
        let mut ttls = vec!["", "300 ", "IN ", "60 IN ", "IN 1h ", "2d3h ", "0 "];
        let mut records = vec![
            "A 192.0.2.1",
            "A 192.0.2.2",
            "A 10.1.2.3",
            "AAAA 2001:db8::1",
            "AAAA ::1",
            "CNAME www",
            "CNAME other.example.net.",
            "CNAME Mail",
            "CNAME xn--bcher-kva.example.net.",
            "CNAME A-1.b--2",
            "NS _x.y",
            "NS ns.sub",
            "NS ns1.example.org.",
            "PTR www.example.com.",
            "MX 10 mail",
            "MX 20 MAIL",
            "TXT \"v=spf1 -all\"",
            "TXT a \"b c\" \"\"",
            "TXT ( \"in\" \"parens\" )",
        ];
        if !plain {
            owners.push("x.example.net.");
            ttls.push("CH ");
            records.extend([
                "A 999.1.1.1",
                "MX 70000 mail",
                "SOA ns1 hostmaster 2 7200 900 1w 60",
                "SRV 0 5 5060 sip",
                "A",
            ]);
        }
        let owner = prop::sample::select(owners);
        let ttl_class = prop::sample::select(ttls);
        let record = prop::sample::select(records);
        let directive = prop::sample::select(vec![
            "$TTL 120",
            "$TTL 1d",
            "$ORIGIN example.com.",
            "$ORIGIN sub.example.com.",
            "; a comment",
            "",
            "   ",
        ]);
        prop_oneof![
            8 => (owner, ttl_class, record).prop_map(|(o, t, r)| {
                let sep = if o.is_empty() { "  " } else { " " };
                format!("{o}{sep}{t}{r}")
            }),
            1 => directive.prop_map(str::to_string),
        ]
    }

    const HEAD: &str = "\
$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster ( 1 7200 900 1209600 60 )
  NS ns1
ns1 A 192.0.2.53
";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever the file, the loader (this reader first) says what the full parser
        /// says: the same data, or the same error at the same line.
        #[test]
        fn generated_bases_load_as_the_full_parser_loads_them(
            lines in prop::collection::vec(line(false), 0..40),
        ) {
            let text = format!("{HEAD}{}\n", lines.join("\n"));
            let expected = whole_base(&text, None);
            if let Some(read) = read_base(&text, None) {
                prop_assert_eq!(Ok(read), expected.clone(), "{}", text);
            }
            prop_assert_eq!(loaded_base(&text, None), expected, "{}", text);
        }

        #[test]
        fn generated_overlays_load_as_the_full_parser_loads_them(
            lines in prop::collection::vec(line(false), 0..30),
        ) {
            let text = format!("$TTL 60\n{}\n", lines.join("\n"));
            let origin = name("example.com.");
            let expected = whole_overlay(&text, &origin);
            if let Ok(sets) = load_overlay(&text, &origin) {
                prop_assert_eq!(Ok(overlay_listing(sets)), expected, "{}", text);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        /// Files of the forms the reader takes: read as the full parser reads them, and
        /// taken unless an RRset has records with equal data or different TTLs.
        #[test]
        fn generated_plain_bases_are_read_as_the_full_parser_reads_them(
            lines in prop::collection::vec(line(true), 0..40),
        ) {
            let text = format!("{HEAD}{}\n", lines.join("\n"));
            let expected = whole_base(&text, None);
            match read_base(&text, None) {
                Some(read) => prop_assert_eq!(Ok(read), expected, "{}", text),
                None => prop_assert_eq!(loaded_base(&text, None), expected, "{}", text),
            }
        }

        #[test]
        fn generated_plain_overlays_are_read_as_the_full_parser_reads_them(
            lines in prop::collection::vec(line(true), 0..30),
        ) {
            let text = format!("$TTL 60\n{}\n", lines.join("\n"));
            let origin = name("example.com.");
            let expected = whole_overlay(&text, &origin);
            if let Ok(sets) = load_overlay(&text, &origin) {
                prop_assert_eq!(Ok(overlay_listing(sets)), expected, "{}", text);
            }
        }
    }

    /// The generated files are not all given up on: the comparison above is not empty.
    #[test]
    fn the_reader_takes_most_plain_generated_files() {
        let mut taken = 0;
        for i in 0..200u32 {
            let mut text = HEAD.to_string();
            for j in 0..(i % 17) {
                let n = i * 31 + j;
                text.push_str(&match n % 6 {
                    0 => format!("h{n} A 10.0.{}.{}\n", n / 256 % 256, n % 256),
                    1 => format!("h{n} 60 IN AAAA 2001:db8::{n:x}\n"),
                    2 => format!("c{n} CNAME h{}\n", n / 2),
                    3 => format!("h{n} MX {} mail{n}.example.net.\n", n % 100),
                    4 => format!("t{n} TXT \"n={n}\" more\n"),
                    _ => format!("$TTL {}\nh{n} IN NS ns{n}\n", 60 + n),
                });
            }
            if let Some(read) = read_base(&text, None) {
                assert_eq!(Ok(read), whole_base(&text, None), "{text}");
                taken += 1;
            }
        }
        assert_eq!(taken, 200);
    }
}
