//! Record data that hickory's zone-file parser cannot read, read here: the RFC 3597 generic
//! form (`TYPE65280 \# 4 0a000001`, and `\#` for any type), the presentation formats of
//! the DNSSEC types (DS, CDS, DNSKEY, CDNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM), DNAME, SPF,
//! URI and ZONEMD; and the wire-format rules every loaded RRset must keep (character-strings
//! of at most 255 bytes, an RRset that fits in a DNS message).
//!
//! Each record is turned into its wire bytes and read back with hickory's own decoder, so a
//! type hickory knows becomes its typed [`RData`] and is served exactly as written; a type
//! it does not know (or data it would re-encode differently) is kept as opaque bytes,
//! [`RData::Unknown`], and served as it is. DNAME is one of those: [`dname_target`] reads it.
//!
//! This module does not find records in a file or know about owners, TTLs and classes
//! (that is [`super::substitute`]), nor what the lookup does with the data.

use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXLOWER_PERMISSIVE};
use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::{NULL, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};

/// RFC 1035 3.3: a `<character-string>` is a length byte and at most 255 bytes.
pub(crate) const CHARACTER_STRING_MAX: usize = 255;

/// One token of a record's data as written: the text between blanks or quotes, escapes
/// not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub text: String,
    pub quoted: bool,
}

/// Type mnemonics hickory's [`RecordType`] does not parse, with their codes (IANA).
const EXTRA_MNEMONICS: &[(&str, u16)] = &[
    ("RP", 17),
    ("AFSDB", 18),
    ("LOC", 29),
    ("KX", 36),
    ("APL", 42),
    ("IPSECKEY", 45),
    ("DHCID", 49),
    ("ZONEMD", 63),
    ("SPF", 99),
    ("EUI48", 108),
    ("EUI64", 109),
    ("URI", 256),
];

const SPF: u16 = 99;
const URI: u16 = 256;
const ZONEMD: u16 = 63;

/// The type a mnemonic (any case) or an RFC 3597 `TYPEnnn` names.
pub(crate) fn record_type(token: &str) -> Option<RecordType> {
    let upper = token.to_ascii_uppercase();
    if let Some(code) = upper.strip_prefix("TYPE")
        && !code.is_empty()
        && code.bytes().all(|b| b.is_ascii_digit())
    {
        return code.parse::<u16>().ok().map(RecordType::from);
    }
    if let Ok(rtype) = upper.parse::<RecordType>() {
        return Some(rtype);
    }
    EXTRA_MNEMONICS
        .iter()
        .find(|(name, _)| *name == upper)
        .map(|(_, code)| RecordType::from(*code))
}

/// The type's mnemonic, or `TYPEnnn` (hickory writes unknown types as `Unknown(nnn)`).
pub(crate) fn mnemonic(rtype: RecordType) -> String {
    let code = u16::from(rtype);
    if let Some((name, _)) = EXTRA_MNEMONICS.iter().find(|(_, c)| *c == code) {
        return (*name).to_string();
    }
    match rtype {
        RecordType::Unknown(_) => format!("TYPE{code}"),
        known => known.to_string(),
    }
}

/// True when hickory's zone-file parser reads this type's presentation format; the others
/// geoline reads itself ([`parse`]) or only in generic form.
pub(crate) fn hickory_reads(rtype: RecordType) -> bool {
    use RecordType::*;
    matches!(
        rtype,
        A | AAAA
            | CAA
            | CERT
            | CNAME
            | CSYNC
            | HINFO
            | HTTPS
            | MX
            | NAPTR
            | NS
            | OPENPGPKEY
            | PTR
            | SMIMEA
            | SOA
            | SRV
            | SSHFP
            | SVCB
            | TLSA
            | TXT
    )
}

/// Parses one record's data, written after a type hickory cannot read (or in generic form
/// for any type). `origin` completes relative names.
pub(crate) fn parse(
    rtype: RecordType,
    tokens: &[Token],
    origin: Option<&Name>,
) -> Result<RData, String> {
    if let Some(meta) = meta_type(rtype) {
        return Err(format!(
            "{} is a {meta}, not data a zone can hold",
            mnemonic(rtype)
        ));
    }
    if tokens.first().is_some_and(|t| !t.quoted && t.text == "\\#") {
        let wire = generic(&tokens[1..])?;
        return from_wire(rtype, wire);
    }
    let mut data = Fields::new(tokens, origin);
    let wire = match rtype {
        RecordType::DS | RecordType::CDS => {
            let mut w = Vec::new();
            w.extend(data.u16("key tag")?.to_be_bytes());
            w.push(data.u8("algorithm")?);
            w.push(data.u8("digest type")?);
            w.extend(data.hex_rest("digest")?);
            w
        }
        RecordType::DNSKEY | RecordType::CDNSKEY => {
            let mut w = Vec::new();
            w.extend(data.u16("flags")?.to_be_bytes());
            w.push(data.u8("protocol")?);
            w.push(data.u8("algorithm")?);
            w.extend(data.base64_rest("public key")?);
            w
        }
        RecordType::RRSIG => {
            let mut w = Vec::new();
            let covered = data.next("type covered")?;
            let covered =
                record_type(covered).ok_or_else(|| format!("`{covered}` is not a record type"))?;
            w.extend(u16::from(covered).to_be_bytes());
            w.push(data.u8("algorithm")?);
            w.push(data.u8("labels")?);
            w.extend(data.u32("original TTL")?.to_be_bytes());
            w.extend(data.time("signature expiration")?.to_be_bytes());
            w.extend(data.time("signature inception")?.to_be_bytes());
            w.extend(data.u16("key tag")?.to_be_bytes());
            data.name_into(&mut w, "signer's name")?;
            w.extend(data.base64_rest("signature")?);
            w
        }
        RecordType::NSEC => {
            let mut w = Vec::new();
            data.name_into(&mut w, "next domain name")?;
            w.extend(data.type_bitmap()?);
            w
        }
        RecordType::NSEC3 | RecordType::NSEC3PARAM => {
            let mut w = vec![data.u8("hash algorithm")?, data.u8("flags")?];
            w.extend(data.u16("iterations")?.to_be_bytes());
            let salt = data.next("salt")?;
            let salt = if salt == "-" {
                Vec::new()
            } else {
                decode_hex(salt, "salt")?
            };
            push_counted(&mut w, &salt, "salt")?;
            if rtype == RecordType::NSEC3 {
                let hash = data.next("next hashed owner name")?;
                let hash = BASE32HEX_NOPAD
                    .decode(hash.to_ascii_uppercase().as_bytes())
                    .map_err(|e| {
                        format!("next hashed owner name `{hash}` is not base32hex: {e}")
                    })?;
                push_counted(&mut w, &hash, "next hashed owner name")?;
                w.extend(data.type_bitmap()?);
            }
            w
        }
        RecordType::DNAME => {
            let mut w = Vec::new();
            data.name_into(&mut w, "target")?;
            w
        }
        rtype if u16::from(rtype) == SPF => {
            let mut w = Vec::new();
            let strings = data.rest();
            if strings.is_empty() {
                return Err("SPF needs at least one character-string".into());
            }
            for token in strings {
                for piece in character_data(&token.text)?.chunks(CHARACTER_STRING_MAX) {
                    push_counted(&mut w, piece, "character-string")?;
                }
            }
            w
        }
        rtype if u16::from(rtype) == URI => {
            let mut w = Vec::new();
            w.extend(data.u16("priority")?.to_be_bytes());
            w.extend(data.u16("weight")?.to_be_bytes());
            let target = character_data(data.next("target")?)?;
            if target.is_empty() {
                return Err("URI target is empty".into());
            }
            w.extend(target);
            w
        }
        rtype if u16::from(rtype) == ZONEMD => {
            let mut w = Vec::new();
            w.extend(data.u32("serial")?.to_be_bytes());
            w.push(data.u8("scheme")?);
            w.push(data.u8("hash algorithm")?);
            w.extend(data.hex_rest("digest")?);
            w
        }
        rtype => {
            return Err(format!(
                "geoline cannot read {} in its text form: write its data in RFC 3597 generic form, `\\# <length> <hex>`",
                mnemonic(rtype)
            ));
        }
    };
    data.finish()?;
    from_wire(rtype, wire)
}

/// Why a type cannot be zone data, if it is one of the meta types (RFC 6895 3.1).
fn meta_type(rtype: RecordType) -> Option<&'static str> {
    match u16::from(rtype) {
        0 => Some("reserved type"),
        41 | 249 | 250 => Some("meta type"),
        251..=255 => Some("question-only type"),
        _ => None,
    }
}

/// The wire bytes of RFC 3597 generic data: `<length> <hex>...` (after the `\#`).
fn generic(tokens: &[Token]) -> Result<Vec<u8>, String> {
    let Some((length, hex)) = tokens.split_first() else {
        return Err("generic data `\\#` needs a length".into());
    };
    let length: usize = length.text.parse().map_err(|_| {
        format!(
            "generic data: `{}` is not a length (0 to 65535)",
            length.text
        )
    })?;
    if length > usize::from(u16::MAX) {
        return Err(format!(
            "generic data of {length} bytes: record data holds at most 65535"
        ));
    }
    let hex: String = hex.iter().map(|t| t.text.as_str()).collect();
    let bytes = if hex.is_empty() {
        Vec::new()
    } else {
        decode_hex(&hex, "generic data")?
    };
    if bytes.len() != length {
        return Err(format!(
            "generic data says {length} bytes but its hex has {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Reads wire-format record data as hickory's typed data when hickory knows the type and
/// writes it back byte for byte; otherwise keeps the bytes (RFC 3597: served as written).
/// Types whose data the lookup reads (addresses, names it follows) must read back exactly.
fn from_wire(rtype: RecordType, wire: Vec<u8>) -> Result<RData, String> {
    let Ok(length) = u16::try_from(wire.len()) else {
        return Err(format!(
            "{} data of {} bytes: record data holds at most 65535",
            mnemonic(rtype),
            wire.len()
        ));
    };
    let mut decoder = BinDecoder::new(&wire);
    let typed = RData::read(&mut decoder, rtype, Restrict::new(length));
    let exact = match &typed {
        Ok(RData::Unknown { .. }) => false,
        Ok(rdata) => encode_rdata(rdata).is_ok_and(|bytes| bytes == wire),
        Err(_) => false,
    };
    match typed {
        Ok(rdata) if exact => Ok(rdata),
        _ if !lookup_reads(rtype) => Ok(RData::Unknown {
            code: rtype,
            // (`NULL::with` refuses empty data.)
            rdata: if wire.is_empty() {
                NULL::new()
            } else {
                NULL::with(wire)
            },
        }),
        Err(e) => Err(format!("not valid {} data: {e}", mnemonic(rtype))),
        Ok(_) => Err(format!(
            "{} data that does not read back as written",
            mnemonic(rtype)
        )),
    }
}

/// Types whose data the lookup reads (and so must be hickory's typed data).
fn lookup_reads(rtype: RecordType) -> bool {
    use RecordType::*;
    matches!(
        rtype,
        A | AAAA | NS | CNAME | SOA | MX | SRV | PTR | ANAME | SVCB | HTTPS
    )
}

fn encode_rdata(rdata: &RData) -> Result<Vec<u8>, ProtoError> {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut encoder)?;
    Ok(bytes)
}

/// A record of a type hickory's parser does not read (or kept as opaque data) as a zone
/// file line in RFC 3597 generic form, `owner ttl class TYPEnnn \# length hex`, which
/// [`parse`] reads back byte for byte; `None` for the types hickory writes and reads
/// itself. For writing zones back to files (`geoline zone flush`): hickory's text for the
/// others (DNAME, SPF, unknown types, ...) does not read back.
pub(crate) fn generic_text(record: &Record) -> Option<String> {
    let rtype = record.record_type();
    if hickory_reads(rtype) && !matches!(record.data, RData::Unknown { .. }) {
        return None;
    }
    let bytes = encode_rdata(&record.data).ok()?;
    let mut line = format!(
        "{} {} {} TYPE{} \\# {}",
        record.name,
        record.ttl,
        record.dns_class,
        u16::from(rtype),
        bytes.len()
    );
    if !bytes.is_empty() {
        line.push(' ');
        line.push_str(&HEXLOWER_PERMISSIVE.encode(&bytes));
    }
    Some(line)
}

/// The target of a DNAME record (kept as opaque data: hickory has no DNAME type).
// For the lookup's DNAME synthesis (RFC 6672), which is being written beside this.
#[allow(dead_code)]
pub(crate) fn dname_target(data: &RData) -> Option<Name> {
    match data {
        RData::Unknown { code, rdata } if *code == RecordType::DNAME => {
            let mut decoder = BinDecoder::new(&rdata.anything);
            let name = Name::read(&mut decoder).ok()?;
            decoder.is_empty().then_some(name)
        }
        _ => None,
    }
}

/// A TXT record's data with every character-string over 255 bytes cut into 255-byte
/// pieces (the reading of an over-long string Knot and DKIM publishers share: the strings of
/// a TXT record are concatenated by their readers), or `None` when none is too long.
pub(crate) fn split_long_txt(data: &RData) -> Option<RData> {
    let RData::TXT(txt) = data else {
        return None;
    };
    if txt.txt_data.iter().all(|s| s.len() <= CHARACTER_STRING_MAX) {
        return None;
    }
    let pieces: Vec<&[u8]> = txt
        .txt_data
        .iter()
        .flat_map(|s| {
            // An empty string stays one (empty) string.
            let chunks: Vec<&[u8]> = s.chunks(CHARACTER_STRING_MAX).collect();
            if chunks.is_empty() {
                vec![&s[..]]
            } else {
                chunks
            }
        })
        .collect();
    Some(RData::TXT(TXT::from_bytes(pieces)))
}

/// What keeps an RRset from being sent, if anything: a record that cannot be encoded (a
/// character-string over 255 bytes, data over 65535 bytes) or an RRset that does not fit in
/// one DNS message with its question. `buf` is scratch space, reused across calls.
pub(crate) fn unencodable(records: &[&Record], buf: &mut Vec<u8>) -> Option<String> {
    let first = records.first()?;
    let what = format!("`{}` {}", first.name, mnemonic(first.record_type()));
    buf.clear();
    let mut encoder = BinEncoder::new(buf);
    // A response as small as it gets: header, the owner as the question, the RRset.
    let header = [0u8; 12];
    let fits = encoder
        .emit_vec(&header)
        .and_then(|()| first.name.emit(&mut encoder))
        .and_then(|()| encoder.emit_u16(u16::from(first.record_type())))
        .and_then(|()| encoder.emit_u16(1));
    if let Err(e) = fits {
        return Some(format!("{what}: cannot be encoded: {e}"));
    }
    for record in records {
        // Record data alone first: hickory asserts (panics) on data over 65535 bytes.
        // (The encoder stops at 65535 bytes.)
        if let Err(e) = encode_rdata(&record.data) {
            return Some(format!("{what}: {}", explain(&e)));
        }
        if let Err(e) = record.emit(&mut encoder) {
            return Some(match e {
                ProtoError::MaxBufferSizeExceeded(_) => format!(
                    "{what}: the RRset ({} records) does not fit in a DNS message of 65535 bytes",
                    records.len()
                ),
                e => format!("{what}: {}", explain(&e)),
            });
        }
    }
    None
}

fn explain(e: &ProtoError) -> String {
    match e {
        ProtoError::CharacterDataTooLong { len, .. } => format!(
            "a character-string of {len} bytes, over the {CHARACTER_STRING_MAX} of RFC 1035 3.3 \
             (only TXT and SPF strings are split into pieces; shorten this one)"
        ),
        ProtoError::MaxBufferSizeExceeded(_) => {
            "record data over the 65535 bytes a record holds".to_string()
        }
        e => format!("cannot be encoded: {e}"),
    }
}

/// The data tokens of one record, taken in order.
struct Fields<'a> {
    tokens: &'a [Token],
    origin: Option<&'a Name>,
}

impl<'a> Fields<'a> {
    fn new(tokens: &'a [Token], origin: Option<&'a Name>) -> Self {
        Fields { tokens, origin }
    }

    fn next(&mut self, what: &str) -> Result<&'a str, String> {
        let (first, rest) = self
            .tokens
            .split_first()
            .ok_or_else(|| format!("missing {what}"))?;
        self.tokens = rest;
        Ok(&first.text)
    }

    fn rest(&mut self) -> &'a [Token] {
        std::mem::take(&mut self.tokens)
    }

    fn finish(&self) -> Result<(), String> {
        match self.tokens.first() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected `{}` after the record's data", t.text)),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str, range: &str) -> Result<T, String> {
        let text = self.next(what)?;
        text.parse()
            .map_err(|_| format!("{what} `{text}` is not a number from {range}"))
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        self.number(what, "0 to 255")
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        self.number(what, "0 to 65535")
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.number(what, "0 to 4294967295")
    }

    /// RFC 4034 3.2: `YYYYMMDDHHmmSS` in UTC, or seconds since the epoch; the wire holds the
    /// seconds modulo 2^32 (serial number arithmetic).
    fn time(&mut self, what: &str) -> Result<u32, String> {
        let text = self.next(what)?;
        let bad = || format!("{what} `{text}` is neither YYYYMMDDHHmmSS nor a number of seconds");
        if text.len() == 14 && text.bytes().all(|b| b.is_ascii_digit()) {
            let field =
                |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap_or_default() };
            let (year, month, day) = (field(0..4), field(4..6), field(6..8));
            let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
            if !(1..=12).contains(&month)
                || !(1..=31).contains(&day)
                || hour > 23
                || minute > 59
                || second > 59
            {
                return Err(bad());
            }
            let seconds =
                days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
            // Truncation is the rule: the field is the time modulo 2^32.
            return Ok(seconds.rem_euclid(1 << 32) as u32);
        }
        text.parse().map_err(|_| bad())
    }

    fn name_into(&mut self, wire: &mut Vec<u8>, what: &str) -> Result<(), String> {
        let text = self.next(what)?;
        let name = if text == "@" {
            self.origin
                .cloned()
                .ok_or_else(|| format!("{what} `@` with no $ORIGIN"))?
        } else {
            Name::parse(text, self.origin)
                .map_err(|e| format!("{what} `{text}` is not a domain name: {e}"))?
        };
        if !name.is_fqdn() {
            return Err(format!(
                "{what} `{text}` is relative and there is no $ORIGIN to complete it"
            ));
        }
        let mut bytes = Vec::new();
        let mut encoder = BinEncoder::new(&mut bytes);
        // Names in these types' data are never compressed (RFC 3597 4, RFC 4034).
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        name.emit(&mut encoder)
            .map_err(|e| format!("{what} `{text}`: {e}"))?;
        wire.extend(bytes);
        Ok(())
    }

    fn hex_rest(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let text: String = self.rest().iter().map(|t| t.text.as_str()).collect();
        if text.is_empty() {
            return Err(format!("missing {what}"));
        }
        decode_hex(&text, what)
    }

    fn base64_rest(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let text: String = self.rest().iter().map(|t| t.text.as_str()).collect();
        if text.is_empty() {
            return Err(format!("missing {what}"));
        }
        BASE64
            .decode(text.as_bytes())
            .map_err(|e| format!("{what} is not base64: {e}"))
    }

    /// RFC 4034 4.1.2: the types present, as window blocks of bitmaps.
    fn type_bitmap(&mut self) -> Result<Vec<u8>, String> {
        let mut codes = Vec::new();
        for token in self.rest() {
            let rtype = record_type(&token.text)
                .ok_or_else(|| format!("`{}` is not a record type", token.text))?;
            codes.push(u16::from(rtype));
        }
        codes.sort_unstable();
        codes.dedup();
        let mut wire = Vec::new();
        let mut i = 0;
        while i < codes.len() {
            let window = codes[i] >> 8;
            let mut bitmap = [0u8; 32];
            let mut used = 0;
            while i < codes.len() && codes[i] >> 8 == window {
                let low = usize::from(codes[i] & 0xff);
                bitmap[low / 8] |= 0x80 >> (low % 8);
                used = low / 8 + 1;
                i += 1;
            }
            wire.push(window as u8);
            wire.push(used as u8);
            wire.extend_from_slice(&bitmap[..used]);
        }
        Ok(wire)
    }
}

fn push_counted(wire: &mut Vec<u8>, bytes: &[u8], what: &str) -> Result<(), String> {
    let len = u8::try_from(bytes.len()).map_err(|_| {
        format!(
            "{what} of {} bytes: at most {CHARACTER_STRING_MAX}",
            bytes.len()
        )
    })?;
    wire.push(len);
    wire.extend_from_slice(bytes);
    Ok(())
}

fn decode_hex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .map_err(|e| format!("{what} is not hexadecimal: {e}"))
}

/// The bytes a character-string token stands for: `\DDD` is a byte in decimal, `\X` is X.
fn character_data(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes.get(i + 1..i + 4);
        match digits {
            Some(d) if d.iter().all(u8::is_ascii_digit) => {
                let value = d.iter().fold(0u16, |v, b| v * 10 + u16::from(b - b'0'));
                let byte =
                    u8::try_from(value).map_err(|_| format!("escape `\\{value}` is over 255"))?;
                out.push(byte);
                i += 4;
            }
            _ => match bytes.get(i + 1) {
                Some(&b) => {
                    out.push(b);
                    i += 2;
                }
                None => return Err("a character-string ends with a lone `\\`".into()),
            },
        }
    }
    Ok(out)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        text.split_whitespace()
            .map(|t| Token {
                text: t.to_string(),
                quoted: false,
            })
            .collect()
    }

    fn wire(rtype: &str, text: &str) -> Vec<u8> {
        let origin = Name::from_ascii("example.com.").expect("origin");
        let rtype = record_type(rtype).expect("type");
        let rdata = parse(rtype, &tokens(text), Some(&origin)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rdata.record_type(), rtype);
        encode_rdata(&rdata).expect("encodes")
    }

    fn error(rtype: &str, text: &str) -> String {
        let origin = Name::from_ascii("example.com.").expect("origin");
        let rtype = record_type(rtype).expect("type");
        match parse(rtype, &tokens(text), Some(&origin)) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn generic_text_reads_back_as_the_same_data() {
        let origin = Name::from_ascii("example.com.").expect("origin");
        let owner = Name::from_ascii("x.example.com.").expect("owner");
        let cases = [
            ("DNAME", "other"),
            ("DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"),
            (
                "RRSIG",
                "A 13 2 300 20261231000000 20261201000000 12345 example.com. AQID",
            ),
            ("NSEC", "y.example.com. A RRSIG NSEC TYPE65280"),
            ("TYPE65280", "\\# 4 0a000001"),
            ("TYPE65534", "\\# 0"),
            ("SPF", "v=spf1"),
        ];
        for (rtype, text) in cases {
            let rtype = record_type(rtype).expect("type");
            let data = parse(rtype, &tokens(text), Some(&origin)).expect("parses");
            let record = Record::from_rdata(owner.clone(), 60, data.clone());
            let line = generic_text(&record).expect("generic form");
            let mut fields = line.split_whitespace();
            assert_eq!(fields.next(), Some("x.example.com."));
            assert_eq!(fields.next(), Some("60"));
            assert_eq!(fields.next(), Some("IN"));
            let written = record_type(fields.next().expect("type")).expect("a type");
            assert_eq!(written, rtype, "{line}");
            let rest: Vec<&str> = fields.collect();
            let again = parse(written, &tokens(&rest.join(" ")), None).expect("reads back");
            assert_eq!(again, data, "{line}");
        }
        let a = Record::from_rdata(owner, 60, RData::A("192.0.2.1".parse().expect("address")));
        assert_eq!(generic_text(&a), None);
    }

    #[test]
    fn type_names() {
        assert_eq!(record_type("ds"), Some(RecordType::DS));
        assert_eq!(record_type("TYPE65280"), Some(RecordType::Unknown(65280)));
        assert_eq!(record_type("type1"), Some(RecordType::A));
        assert_eq!(record_type("SPF"), Some(RecordType::Unknown(99)));
        assert_eq!(record_type("TYPE65536"), None);
        assert_eq!(record_type("TYPE"), None);
        assert_eq!(record_type("BOGUS"), None);
        assert_eq!(mnemonic(RecordType::Unknown(65280)), "TYPE65280");
        assert_eq!(mnemonic(RecordType::Unknown(256)), "URI");
        assert_eq!(mnemonic(RecordType::DNAME), "DNAME");
    }

    #[test]
    fn generic_form() {
        assert_eq!(wire("TYPE65280", "\\# 4 0a000001"), [10, 0, 0, 1]);
        assert_eq!(wire("TYPE65280", "\\# 4 0A 00 00 01"), [10, 0, 0, 1]);
        assert_eq!(wire("TYPE65534", "\\# 0"), Vec::<u8>::new());
        // A known type in generic form becomes hickory's typed data (RFC 3597 5).
        let origin = Name::from_ascii("example.com.").expect("origin");
        let a = parse(RecordType::A, &tokens("\\# 4 c0000201"), Some(&origin)).expect("A");
        assert_eq!(a, RData::A("192.0.2.1".parse().expect("address")));
        assert!(error("A", "\\# 3 c00002").contains("not valid A data"));
        assert_eq!(
            error("TYPE65280", "\\# 4 0a00"),
            "generic data says 4 bytes but its hex has 2"
        );
        assert!(error("TYPE65280", "\\# 1 zz").contains("not hexadecimal"));
        assert!(error("TYPE65280", "\\#").contains("needs a length"));
        assert!(error("TYPE41", "\\# 0").contains("meta type"));
        assert!(error("TYPE65280", "0a000001").contains("generic form"));
    }

    #[test]
    fn dnssec_types() {
        assert_eq!(
            wire("DS", "60485 5 1 2BB183AF5F22588179A53B0A 98631FAD1A292118"),
            [
                0xec, 0x45, 5, 1, 0x2b, 0xb1, 0x83, 0xaf, 0x5f, 0x22, 0x58, 0x81, 0x79, 0xa5, 0x3b,
                0x0a, 0x98, 0x63, 0x1f, 0xad, 0x1a, 0x29, 0x21, 0x18
            ]
        );
        assert_eq!(wire("DNSKEY", "257 3 13 AQID"), [1, 1, 3, 13, 1, 2, 3]);
        assert_eq!(wire("CDNSKEY", "0 3 0 AA=="), [0, 0, 3, 0, 0]);
        assert_eq!(wire("CDS", "0 0 0 00"), [0, 0, 0, 0, 0]);
        // RFC 4034 4.3's example bitmap: A MX RRSIG NSEC TYPE1234.
        let mut nsec = b"\x04host\x07example\x03com\x00".to_vec();
        nsec.extend([0, 6, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 4, 0x1b]);
        nsec.extend([0; 26]);
        nsec.push(0x20);
        assert_eq!(
            wire("NSEC", "host.example.com. A MX RRSIG NSEC TYPE1234"),
            nsec
        );
        assert_eq!(wire("NSEC3PARAM", "1 0 0 -"), [1, 0, 0, 0, 0]);
        assert_eq!(
            wire(
                "NSEC3",
                "1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG"
            ),
            {
                let mut w = vec![1, 1, 0, 12, 4, 0xaa, 0xbb, 0xcc, 0xdd, 20];
                w.extend(
                    BASE32HEX_NOPAD
                        .decode(b"2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3S")
                        .expect("base32hex"),
                );
                w.extend([0, 6, 0x40, 0, 0, 0, 0, 0x02]);
                w
            }
        );
        // RFC 4034 3.3's example: expiration 20030322173103 is 1048354263.
        let rrsig = wire(
            "RRSIG",
            "A 5 3 86400 20030322173103 20030220173103 2642 example.com. AQID",
        );
        assert_eq!(&rrsig[..18], {
            let mut w = vec![0, 1, 5, 3];
            w.extend(86400u32.to_be_bytes());
            w.extend(1_048_354_263u32.to_be_bytes());
            w.extend(1_045_762_263u32.to_be_bytes());
            w.extend(2642u16.to_be_bytes());
            w
        });
        assert_eq!(&rrsig[rrsig.len() - 3..], [1, 2, 3]);
        assert!(error("DS", "60485 5 1").contains("missing digest"));
        assert!(error("DNSKEY", "257 3 13 !!").contains("not base64"));
        assert!(error("RRSIG", "A 5 3 86400 20031322173103 0 1 . AA==").contains("expiration"));
        assert!(error("NSEC", "next BOGUS").contains("`BOGUS` is not a record type"));
    }

    #[test]
    fn dname_spf_uri_zonemd() {
        let origin = Name::from_ascii("example.com.").expect("origin");
        let dname = parse(RecordType::DNAME, &tokens("other"), Some(&origin)).expect("DNAME");
        assert_eq!(
            dname_target(&dname),
            Some(Name::from_ascii("other.example.com.").expect("name"))
        );
        let long = "x".repeat(300);
        let spf = wire("SPF", &format!("v=spf1 {long}"));
        assert_eq!(spf[0], 6);
        assert_eq!(spf[7], 255);
        assert_eq!(spf[7 + 256], 45);
        assert_eq!(spf.len(), 7 + 256 + 46);
        assert_eq!(
            wire("URI", "10 1 ftp://ftp1.example.com/public"),
            [&[0, 10, 0, 1][..], b"ftp://ftp1.example.com/public"].concat()
        );
        assert_eq!(
            wire("ZONEMD", "2026 1 1 0aff"),
            [0, 0, 7, 234, 1, 1, 10, 255]
        );
        assert_eq!(character_data("a\\\"b\\065").expect("escapes"), b"a\"bA");
        assert!(error("DNAME", "a b").contains("unexpected `b`"));
    }

    fn txt(strings: &[usize]) -> RData {
        RData::TXT(TXT::new(strings.iter().map(|n| "k".repeat(*n)).collect()))
    }

    #[test]
    fn long_txt_strings_are_cut_into_255_byte_pieces() {
        assert_eq!(split_long_txt(&txt(&[255, 0, 10])), None);
        let split = split_long_txt(&txt(&[16, 410])).expect("split");
        assert_eq!(split, txt(&[16, 255, 155]));
        assert_eq!(split_long_txt(&txt(&[510])), Some(txt(&[255, 255])));
    }

    #[test]
    fn unencodable_records_and_rrsets() {
        let name = Name::from_ascii("h.example.com.").expect("name");
        let mut buf = Vec::new();
        let hinfo = Record::from_rdata(
            name.clone(),
            60,
            RData::HINFO(hickory_proto::rr::rdata::HINFO::new(
                "x".repeat(256),
                "y".into(),
            )),
        );
        assert_eq!(
            unencodable(&[&hinfo], &mut buf).expect("refused"),
            "`h.example.com.` HINFO: a character-string of 256 bytes, over the 255 of RFC 1035 3.3 \
             (only TXT and SPF strings are split into pieces; shorten this one)"
        );
        let big: Vec<Record> = (0..300u32)
            .map(|i| Record::from_rdata(name.clone(), 60, txt(&[200, i as usize % 50])))
            .collect();
        let refs: Vec<&Record> = big.iter().collect();
        assert!(
            unencodable(&refs, &mut buf)
                .expect("refused")
                .ends_with("the RRset (300 records) does not fit in a DNS message of 65535 bytes")
        );
        assert_eq!(unencodable(&refs[..200], &mut buf), None);
        let huge = Record::from_rdata(name, 60, txt(&[255; 300]));
        assert!(
            unencodable(&[&huge], &mut buf)
                .expect("refused")
                .contains("record data over the 65535 bytes a record holds")
        );
    }
}
