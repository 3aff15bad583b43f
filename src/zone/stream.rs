//! Loading a base zone file piece by piece, into its view as it goes.
//!
//! hickory's parser returns a whole file as one map of record sets, some 600 bytes a
//! record: for a zone of a million records that map alone is several times the view it
//! becomes. So the file is cut into pieces of [`PIECE`] entries and each is parsed, checked
//! and packed into the view before the next is read: what a load holds at its peak is the
//! view, the text and one piece.
//!
//! A piece is parsed as if the file before it had been read: hickory's parser carries an
//! origin, a default TTL, the last TTL written, a class and the last owner from one entry
//! to the next, so each piece starts with that state (followed here, [`Carried`]) written
//! out, as a line the piece's records are then cleaned of. An RRset whose records are in
//! several pieces is merged as the parser merges one (hickory's `RecordSet::insert`).
//!
//! This path only takes files it is sure to read as the whole-file path does
//! ([`super::file::load_base`]): a file with any error, or anything here that does not
//! follow (a piece before the SOA without a configured origin, an owner that does not
//! write back, a class other than IN), is left to that path, which also says where the
//! error is.

use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

use super::ZoneError;
use super::file::{self, Kind, Source};
use super::packed::Packed;
use super::rdata;
use super::reader;
use super::substitute::{self, Placeholders};
use super::tree::View;

/// Entries parsed at a time: the parser's map of a piece holds about 600 bytes a record,
/// so a piece costs some 12 MB beside the view being filled, and pieces are few enough
/// (50 for a million records) that starting each costs nothing measurable.
pub(crate) const PIECE: usize = 20_000;

/// A base file loaded: its origin, its SOA and its view.
pub(crate) struct Loaded {
    pub(crate) origin: Name,
    pub(crate) soa: Record,
    pub(crate) view: View,
}

/// The parser's state between two entries, as far as the next entry reads it.
#[derive(Debug, Clone)]
struct Carried {
    origin: Option<Name>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    class: DNSClass,
    owner: Option<Name>,
}

/// The base file of `src`, `origin` the configured one: read by geoline's own reader when
/// it takes the file ([`reader`]), else loaded piece by piece, or whole when it has an
/// error to report or something the piece by piece load does not follow.
pub(crate) fn load(src: Source<'_>, origin: Option<&Name>) -> Result<Loaded, ZoneError> {
    if let Ok(loaded) = reader::load_base(src.text, origin) {
        return Ok(loaded);
    }
    if let Some(loaded) = load_base(src, origin, PIECE) {
        return Ok(loaded);
    }
    let whole = file::load_base(src, origin)?;
    let mut view = View::with_capacity(
        whole.origin.clone(),
        file::negative_soa(&whole.soa),
        whole.rrsets.len(),
    );
    for rrset in whole.rrsets {
        view.insert(rrset);
    }
    view.loaded();
    Ok(Loaded {
        origin: whole.origin,
        soa: whole.soa,
        view,
    })
}

/// The base file of `src` loaded `piece` entries at a time, or `None` when it is for the
/// whole-file path (see the module's documentation). `origin` is the configured one.
pub(crate) fn load_base(src: Source<'_>, origin: Option<&Name>, piece: usize) -> Option<Loaded> {
    let flat = file::flatten(src.text);
    let (prepared, mut placeholders) = substitute::prepare(&flat, src.path, origin).ok()?;
    let (cuts, names) = {
        let entries = file::entries(&prepared);
        let mut cuts: Vec<usize> = entries
            .iter()
            .step_by(piece.max(1))
            .map(|e| e.offset)
            .collect();
        cuts.push(prepared.len());
        if let Some(first) = cuts.first_mut() {
            *first = 0;
        }
        (cuts, entries.len())
    };
    let marker = format!(
        "geoline-piece-{:016x}",
        RandomState::new().hash_one(src.text.len())
    );
    let mut carried = Carried {
        origin: origin.cloned(),
        default_ttl: None,
        last_ttl: None,
        class: DNSClass::IN,
        owner: None,
    };
    let mut loading: Option<Loaded> = None;
    for window in cuts.windows(2) {
        let text = prepared.get(window[0]..window[1])?;
        let head = carried_line(&carried, &marker)?;
        let (origin_after, parsed) = parse(src, &head, text, &carried, &mut placeholders, &marker)?;
        follow(text, &mut carried)?;
        // The parser's origin after the piece is the one followed here, or the state the
        // next piece starts in would not be the parser's.
        if carried.origin.as_ref() != Some(&origin_after) {
            return None;
        }
        if loading.is_none() {
            loading = Some(start(origin, &parsed, names)?);
        }
        let loaded = loading.as_mut()?;
        if file::problem(&parsed, &loaded.origin, Kind::Base).is_some() {
            return None;
        }
        add(src, loaded, parsed)?;
    }
    let loaded = loading?;
    finish(loaded)
}

/// The line that puts the parser in the state `carried` says, beyond its origin (given
/// to the parser) and default TTL: the last owner, with the last TTL written and the
/// class, as a TXT record holding `marker` that [`parse`] takes out again.
fn carried_line(carried: &Carried, marker: &str) -> Option<String> {
    let mut line = String::new();
    if let Some(ttl) = carried.default_ttl {
        line.push_str(&format!("$TTL {ttl}\n"));
    }
    if carried.class != DNSClass::IN {
        return None;
    }
    let Some(owner) = &carried.owner else {
        return Some(line);
    };
    let written = owner.to_string();
    let plain = written
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'*'));
    if !plain {
        return None;
    }
    line.push_str(&written);
    if let Some(ttl) = carried.last_ttl {
        line.push_str(&format!(" {ttl}"));
    }
    line.push_str(&format!(" IN TXT \"{marker}\"\n"));
    Some(line)
}

/// One piece parsed after `head`, its placeholders restored and the carried line's record
/// taken out again.
fn parse(
    src: Source<'_>,
    head: &str,
    text: &str,
    carried: &Carried,
    placeholders: &mut Placeholders,
    marker: &str,
) -> Option<(Name, file::Parsed)> {
    let mut input = String::with_capacity(head.len() + text.len());
    input.push_str(head);
    input.push_str(text);
    let (origin, mut parsed) =
        Parser::new(input, Some(src.path.to_path_buf()), carried.origin.clone())
            .parse()
            .ok()?;
    substitute::restore(&mut parsed, placeholders).ok()?;
    if let Some(owner) = &carried.owner {
        let key = RrKey::new(LowerName::new(owner), RecordType::TXT);
        let ours = RData::TXT(TXT::new(vec![marker.to_string()]));
        let set = parsed.remove(&key)?;
        let mut kept = RecordSet::new(set.name().clone(), RecordType::TXT, 0);
        for record in set.records_without_rrsigs().filter(|r| r.data != ours) {
            kept.insert(record.clone(), 0);
        }
        if !kept.is_empty() {
            parsed.insert(key, kept);
        }
    }
    Some((origin, parsed))
}

/// Follows the parser's state over the entries of `text` (as hickory's parser goes from
/// entry to entry). `None` for an entry it does not know how to follow.
fn follow(text: &str, carried: &mut Carried) -> Option<()> {
    let mut at = 0;
    while at < text.len() {
        let (tokens, next) = substitute::entry(text, at);
        let start = at;
        at = next;
        let Some(first) = tokens.first() else {
            continue;
        };
        if first.token.quoted {
            return None;
        }
        let word = &first.token.text;
        if word.starts_with('$') {
            let value = tokens.get(1)?;
            match word.to_ascii_uppercase().as_str() {
                "$TTL" => carried.default_ttl = Some(parse_ttl(&value.token.text).ok()?),
                "$ORIGIN" => carried.origin = Some(Name::parse(&value.token.text, None).ok()?),
                _ => return None,
            }
            continue;
        }
        let mut i = 0;
        if first.start == start {
            carried.owner = Some(if word == "@" {
                carried.origin.clone()?
            } else {
                Name::parse(word, carried.origin.as_ref()).ok()?
            });
            i = 1;
        }
        while let Some(t) = tokens.get(i).filter(|t| !t.token.quoted) {
            if let Ok(ttl) = parse_ttl(&t.token.text) {
                carried.last_ttl = Some(ttl);
            } else if let Ok(class) = DNSClass::from_str(&t.token.text.to_ascii_uppercase()) {
                carried.class = class;
            } else {
                break;
            }
            i += 1;
        }
    }
    Some(())
}

/// The view the file loads into, once its origin is known: the configured one, or the
/// owner of the SOA, which must then be in the first piece.
fn start(origin: Option<&Name>, parsed: &file::Parsed, names: usize) -> Option<Loaded> {
    let origin = match origin {
        Some(origin) => origin.clone(),
        None => parsed
            .values()
            .find(|set| set.record_type() == RecordType::SOA)
            .map(|set| set.name().clone())?,
    };
    // The SOA is set when it is read; the view's negative answers take it at the end.
    let placeholder = Record::from_rdata(origin.clone(), 0, RData::Update0(RecordType::SOA));
    Some(Loaded {
        view: View::with_capacity(origin.clone(), placeholder.clone(), names),
        soa: placeholder,
        origin,
    })
}

/// Packs a piece's RRsets into the view, merging those the view has from earlier pieces.
fn add(src: Source<'_>, loaded: &mut Loaded, parsed: file::Parsed) -> Option<()> {
    let mut wire = Vec::new();
    for set in parsed.into_values() {
        let owner = set.name().clone();
        let rtype = set.record_type();
        let earlier = loaded.view.rrset(&owner, rtype);
        let set = match earlier {
            None => set,
            // Two SOAs: the whole-file parser's error.
            Some(_) if rtype == RecordType::SOA => return None,
            Some(earlier) => {
                let mut merged = RecordSet::new(owner.clone(), rtype, 0);
                for record in earlier.iter().chain(set.records_without_rrsigs()) {
                    merged.insert(record.clone(), 0);
                }
                let records: Vec<&Record> = merged.records_without_rrsigs().collect();
                if rdata::unencodable(&records, &mut wire).is_some() {
                    return None;
                }
                merged
            }
        };
        let rrset = file::normalized(src, &set)?;
        if rtype == RecordType::SOA {
            loaded.soa = rrset.first()?.clone();
        }
        loaded.view.insert_packed(owner, Packed::new(&rrset)?);
    }
    Some(())
}

/// The checks of the whole file that no piece alone can make: an SOA and NS records at
/// the apex, no CNAME beside other data.
fn finish(mut loaded: Loaded) -> Option<Loaded> {
    let apex = loaded.view.node(&loaded.origin)?;
    if apex.get(RecordType::SOA).is_none() || apex.get(RecordType::NS).is_none() {
        return None;
    }
    let conflict = loaded
        .view
        .names()
        .any(|(_, node)| node.get(RecordType::CNAME).is_some() && node.rrsets().nth(1).is_some());
    if conflict {
        return None;
    }
    loaded.view.negative_soa = file::negative_soa(&loaded.soa);
    loaded.view.loaded();
    Some(loaded)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every RRset of a view, as text, sorted.
    fn listing(view: &View) -> Vec<String> {
        let mut out: Vec<String> = view
            .rrsets()
            .flat_map(|set| {
                set.iter()
                    .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    fn whole(text: &str, origin: Option<&Name>) -> Vec<String> {
        let src = Source {
            path: Path::new("z.zone"),
            text,
        };
        let base = file::load_base(src, origin).expect("loads whole");
        let mut view = View::with_capacity(base.origin.clone(), base.soa.clone(), 1);
        for set in base.rrsets {
            view.insert(set);
        }
        listing(&view)
    }

    fn pieces(text: &str, origin: Option<&Name>, piece: usize) -> Option<Vec<String>> {
        let src = Source {
            path: Path::new("z.zone"),
            text,
        };
        load_base(src, origin, piece).map(|loaded| listing(&loaded.view))
    }

    const FILE: &str = "\
$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster ( 1 7200 900 1209600 60 )
  NS ns1
ns1 A 192.0.2.53
www 60 A 192.0.2.1
    A 192.0.2.2
    IN AAAA 2001:db8::1
mail MX 10 mail
$TTL 120
    A 192.0.2.25
www A 192.0.2.3
$ORIGIN sub.example.com.
host TXT \"a b\" \"c\"
    TXT \"d\"
@ DNAME example.net.
x.y TYPE65280 \\# 2 0a0b
host TXT \"e\"
$ORIGIN example.com.
www A 192.0.2.1
";

    #[test]
    fn pieces_of_any_size_load_what_the_whole_file_loads() {
        let expected = whole(FILE, None);
        assert!(expected.len() > 10, "{expected:?}");
        // (Without a configured origin, the first piece must hold the SOA: three entries.)
        for piece in [3, 4, 5, 8, 100] {
            assert_eq!(
                pieces(FILE, None, piece).as_ref(),
                Some(&expected),
                "pieces of {piece}"
            );
        }
        assert!(pieces(FILE, None, 2).is_none());
        let origin = Name::from_ascii("example.com.").expect("name");
        let text = FILE.replacen("$ORIGIN example.com.\n", "", 1);
        let expected = whole(&text, Some(&origin));
        for piece in [1, 2, 3, 7] {
            assert_eq!(
                pieces(&text, Some(&origin), piece).as_ref(),
                Some(&expected),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn the_example_zone_loads_the_same_in_pieces() {
        let text = include_str!("../../zones/example.com.zone");
        let expected = whole(text, None);
        for piece in [4, 5, 6, 9] {
            assert_eq!(
                pieces(text, None, piece).as_ref(),
                Some(&expected),
                "{piece}"
            );
        }
    }

    #[test]
    fn what_a_piece_cannot_say_goes_to_the_whole_file_path() {
        // An error, a CNAME beside data in another piece, a second SOA far down.
        let bad = format!("{FILE}www CNAME mail\n");
        assert!(pieces(&bad, None, 2).is_none());
        let bad = format!("{FILE}nowhere A 300.1.1.1\n");
        assert!(pieces(&bad, None, 2).is_none());
        let bad = format!("{FILE}@ SOA ns1 hostmaster 2 7200 900 1209600 60\n");
        assert!(pieces(&bad, None, 2).is_none());
        // The SOA after the first piece, with no origin configured.
        let late = "$ORIGIN example.com.\n$TTL 60\na A 192.0.2.1\nb A 192.0.2.2\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n";
        assert!(pieces(late, None, 2).is_none());
        assert!(pieces(late, None, 100).is_some());
    }
}
