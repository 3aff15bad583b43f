//! Database layouts: where in a record the country, continent, subdivisions and ASN are.
//!
//! This module owns the known layouts (MaxMind GeoIP2/GeoLite2 Country, City and ASN, the
//! DB-IP lite files that copy them, IPinfo lite, ip-location-db), recognising them from a
//! database's `database_type`, the field paths an operator may set instead, and reading a
//! record's fields through those paths into a [`GeoRecord`].
//!
//! It does not open files or walk networks: that is [`super::GeoDb`].

use std::fmt;

use super::mmdb::{Data, MmdbError, Value};
use super::{GeoRecord, Subdivision, code};

/// A record field geoline can match lines on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The ISO 3166-1 alpha-2 country code.
    Country,
    /// The two-letter continent code (`AS`, `EU`, ...).
    Continent,
    /// The ISO 3166-2 subdivision (province) code, such as `CN-GD`.
    Subdivision,
    /// The autonomous system number.
    Asn,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 4] = [
        Field::Country,
        Field::Continent,
        Field::Subdivision,
        Field::Asn,
    ];

    /// The field's name in messages (`country`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Field::Country => "country",
            Field::Continent => "continent",
            Field::Subdivision => "subdivision",
            Field::Asn => "asn",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Field`]s: which fields a database has data for, or a line needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FieldSet(u8);

impl FieldSet {
    pub fn with(self, field: Field) -> FieldSet {
        FieldSet(self.0 | field.bit())
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & field.bit() != 0
    }

    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl fmt::Display for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Field::name).collect();
        f.write_str(&names.join(", "))
    }
}

/// The named layouts geoline knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// MaxMind GeoIP2 / GeoLite2 Country and DB-IP's country files: `country.iso_code`
    /// (else `registered_country.iso_code`) and `continent.code`.
    Geoip2,
    /// GeoIP2 / GeoLite2 City and Enterprise, DB-IP's city files: the country fields and
    /// `subdivisions[].iso_code`.
    Geoip2City,
    /// GeoLite2-ASN, GeoIP2-ISP, DB-IP's ASN files: `autonomous_system_number`.
    Geoip2Asn,
    /// IPinfo lite: `country_code`, `continent_code`, `asn` written as "AS4134".
    IpinfoLite,
    /// ip-location-db (sapics) country and city files: `country_code` only.
    IpLocationDb,
    /// ip-location-db ASN files: `autonomous_system_number`.
    IpLocationDbAsn,
    /// Only the field paths the configuration gives.
    Custom,
}

impl Layout {
    /// The layouts a configuration can name: every one but [`Layout::Custom`].
    pub(crate) const NAMED: [Layout; 6] = [
        Layout::Geoip2,
        Layout::Geoip2City,
        Layout::Geoip2Asn,
        Layout::IpinfoLite,
        Layout::IpLocationDb,
        Layout::IpLocationDbAsn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Geoip2 => "geoip2",
            Layout::Geoip2City => "geoip2-city",
            Layout::Geoip2Asn => "geoip2-asn",
            Layout::IpinfoLite => "ipinfo-lite",
            Layout::IpLocationDb => "ip-location-db",
            Layout::IpLocationDbAsn => "ip-location-db-asn",
            Layout::Custom => "custom",
        }
    }

    /// The layout a `database_type` metadata string announces, if geoline knows it.
    pub fn recognise(database_type: &str) -> Option<Layout> {
        let vendor = ["GeoIP2-", "GeoLite2-", "DBIP-"]
            .iter()
            .any(|p| database_type.starts_with(p));
        if vendor {
            let has = |k: &str| database_type.contains(k);
            // "DBIP-Location-ISP (compat=Enterprise)" has both: its records are City-shaped.
            if has("City") || has("Enterprise") {
                return Some(Layout::Geoip2City);
            }
            if has("Country") {
                return Some(Layout::Geoip2);
            }
            if has("ASN") || has("ISP") {
                return Some(Layout::Geoip2Asn);
            }
            // GeoIP2-Anonymous-IP, GeoIP2-Domain...: nothing a line can match on.
            return None;
        }
        let lower = database_type.to_ascii_lowercase();
        // IPinfo writes "ipinfo lite.mmdb"; its older "country_asn" file has other keys.
        if lower.starts_with("ipinfo") && lower.contains("lite") {
            return Some(Layout::IpinfoLite);
        }
        // ip-location-db names its files "<kind> ipv4", "<kind> ipv6" and "<kind> ipvAll".
        if let Some((kind, family)) = lower.split_once(' ')
            && matches!(family, "ipv4" | "ipv6" | "ipvall")
        {
            return match kind {
                "country" | "city" => Some(Layout::IpLocationDb),
                "asn" => Some(Layout::IpLocationDbAsn),
                _ => None,
            };
        }
        None
    }

    fn paths(self) -> Paths {
        let p = |texts: &[&str]| -> Vec<FieldPath> {
            texts
                .iter()
                .filter_map(|t| FieldPath::parse(t).ok())
                .collect()
        };
        let country = p(&["country.iso_code", "registered_country.iso_code"]);
        let continent = p(&["continent.code"]);
        match self {
            Layout::Geoip2 => Paths {
                country,
                continent,
                ..Paths::default()
            },
            Layout::Geoip2City => Paths {
                country,
                continent,
                subdivision: p(&["subdivisions[].iso_code"]),
                ..Paths::default()
            },
            Layout::Geoip2Asn | Layout::IpLocationDbAsn => Paths {
                asn: p(&["autonomous_system_number"]),
                ..Paths::default()
            },
            Layout::IpinfoLite => Paths {
                country: p(&["country_code"]),
                continent: p(&["continent_code"]),
                asn: p(&["asn"]),
                ..Paths::default()
            },
            Layout::IpLocationDb => Paths {
                country: p(&["country_code"]),
                ..Paths::default()
            },
            Layout::Custom => Paths::default(),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A path to a value inside a record: keys separated by dots, a number for one array
/// element, `[]` after a key for every element of the array it holds
/// (`subdivisions[].iso_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
    /// Every element of the array reached so far.
    Each,
}

impl FieldPath {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let mut segments = Vec::new();
        for part in text.split('.') {
            let (key, each) = match part.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (part, false),
            };
            if key.is_empty() {
                return Err(format!("field path `{text}` has an empty part"));
            }
            if !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "field path `{text}`: `{key}` is not a key (letters, digits, `_`, `-`)"
                ));
            }
            match key.parse::<usize>() {
                Ok(i) => segments.push(Segment::Index(i)),
                Err(_) => segments.push(Segment::Key(key.to_string())),
            }
            if each {
                if segments.contains(&Segment::Each) {
                    return Err(format!("field path `{text}` has `[]` more than once"));
                }
                segments.push(Segment::Each);
            }
        }
        Ok(FieldPath {
            text: text.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The values at this path in the record at `offset`: none, one, or one per array
    /// element for a path with `[]` (at most `max` of them). A path through a value that
    /// is not a map (for a key) or an array (for an index) is an error; a missing key or
    /// index is no value.
    fn read<'a>(
        &self,
        data: Data<'a>,
        offset: usize,
        max: usize,
        out: &mut Vec<Scalar<'a>>,
    ) -> Result<(), MmdbError> {
        let (record, _) = data.value(offset)?;
        let each = self.segments.iter().position(|s| *s == Segment::Each);
        let (before, after) = match each {
            Some(at) => (&self.segments[..at], &self.segments[at + 1..]),
            None => (&self.segments[..], &[][..]),
        };
        let Some(value) = follow(data, record, before)? else {
            return Ok(());
        };
        if each.is_none() {
            out.push(Scalar::from(value));
            return Ok(());
        }
        for i in 0..max {
            // The end of the array ends the walk; an element without the rest of the path
            // is skipped.
            let Some(element) = data.element(value, i)? else {
                break;
            };
            if let Some(v) = follow(data, element, after)? {
                out.push(Scalar::from(v));
            }
        }
        Ok(())
    }
}

/// The value `segments` (keys and indexes, no `[]`) lead to from `value`.
fn follow<'a>(
    data: Data<'a>,
    mut value: Value<'a>,
    segments: &[Segment],
) -> Result<Option<Value<'a>>, MmdbError> {
    for s in segments {
        let next = match s {
            Segment::Key(k) => data.get(value, k)?,
            Segment::Index(i) => data.element(value, *i)?,
            Segment::Each => None,
        };
        match next {
            Some(v) => value = v,
            None => return Ok(None),
        }
    }
    Ok(Some(value))
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Field paths that replace a layout's own, from a `[[geoip]]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldOverrides {
    pub country: Option<FieldPath>,
    pub continent: Option<FieldPath>,
    pub subdivision: Option<FieldPath>,
    pub asn: Option<FieldPath>,
}

impl FieldOverrides {
    pub fn is_empty(&self) -> bool {
        self.country.is_none()
            && self.continent.is_none()
            && self.subdivision.is_none()
            && self.asn.is_none()
    }
}

/// For each field, the paths tried in order; the first with a usable value gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Paths {
    country: Vec<FieldPath>,
    continent: Vec<FieldPath>,
    subdivision: Vec<FieldPath>,
    asn: Vec<FieldPath>,
}

/// A layout with its field paths, overrides applied: what reads a database's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReader {
    layout: Layout,
    paths: Paths,
    overridden: bool,
}

/// GeoIP2 City records hold at most two subdivision levels; geoline keeps that many.
pub(super) const MAX_SUBDIVISIONS: usize = 2;

impl RecordReader {
    pub fn new(layout: Layout, overrides: &FieldOverrides) -> RecordReader {
        let mut paths = layout.paths();
        let set = |slot: &mut Vec<FieldPath>, o: &Option<FieldPath>| {
            if let Some(p) = o {
                *slot = vec![p.clone()];
            }
        };
        set(&mut paths.country, &overrides.country);
        set(&mut paths.continent, &overrides.continent);
        set(&mut paths.subdivision, &overrides.subdivision);
        set(&mut paths.asn, &overrides.asn);
        RecordReader {
            layout,
            paths,
            overridden: !overrides.is_empty(),
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The fields this reader looks for (a continent is also derived from a country).
    pub fn fields(&self) -> FieldSet {
        let mut s = FieldSet::default();
        if !self.paths.country.is_empty() {
            s = s.with(Field::Country).with(Field::Continent);
        }
        if !self.paths.continent.is_empty() {
            s = s.with(Field::Continent);
        }
        if !self.paths.subdivision.is_empty() {
            s = s.with(Field::Subdivision);
        }
        if !self.paths.asn.is_empty() {
            s = s.with(Field::Asn);
        }
        s
    }

    /// The paths read for `field`, in the order they are tried.
    pub fn paths(&self, field: Field) -> &[FieldPath] {
        match field {
            Field::Country => &self.paths.country,
            Field::Continent => &self.paths.continent,
            Field::Subdivision => &self.paths.subdivision,
            Field::Asn => &self.paths.asn,
        }
    }

    /// Decodes the fields of the record at `offset` in `data`.
    pub(crate) fn decode(&self, data: Data<'_>, offset: usize) -> Result<GeoRecord, MmdbError> {
        let mut rec = GeoRecord::default();
        let mut values = Vec::new();
        rec.country = self.first(data, offset, &self.paths.country, &mut values, Scalar::code)?;
        rec.continent = self
            .first(
                data,
                offset,
                &self.paths.continent,
                &mut values,
                Scalar::code,
            )?
            .or_else(|| rec.country.and_then(super::continent_of));
        rec.asn = self.first(data, offset, &self.paths.asn, &mut values, Scalar::asn)?;
        for path in &self.paths.subdivision {
            values.clear();
            path.read(data, offset, MAX_SUBDIVISIONS + 2, &mut values)?;
            let mut n = 0;
            for v in &values {
                if n == MAX_SUBDIVISIONS {
                    break;
                }
                if let Some(s) = v.subdivision(rec.country) {
                    rec.subdivisions[n] = Some(s);
                    n += 1;
                }
            }
            if n > 0 {
                break;
            }
        }
        Ok(rec)
    }

    /// The first value of `paths`, tried in order, that `read` takes.
    fn first<'a, T>(
        &self,
        data: Data<'a>,
        offset: usize,
        paths: &[FieldPath],
        values: &mut Vec<Scalar<'a>>,
        read: impl Fn(&Scalar<'a>) -> Option<T>,
    ) -> Result<Option<T>, MmdbError> {
        for path in paths {
            values.clear();
            path.read(data, offset, 1, values)?;
            if let Some(v) = values.iter().find_map(&read) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

impl fmt::Display for RecordReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.layout.name())?;
        if self.overridden {
            f.write_str(" with configured field paths")?;
        }
        Ok(())
    }
}

/// A leaf value of a record, as far as geoline reads one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar<'a> {
    Str(&'a str),
    Uint(u64),
    /// A map, an array, a float, a boolean or bytes.
    Other,
}

impl Scalar<'_> {
    fn code(&self) -> Option<[u8; 2]> {
        match self {
            Scalar::Str(s) => code(s),
            _ => None,
        }
    }

    /// A number, or a string "AS4134" / "4134"; 0 (IANA reserved) is no ASN.
    fn asn(&self) -> Option<u32> {
        let n = match *self {
            Scalar::Uint(n) => u32::try_from(n).ok()?,
            Scalar::Str(s) => {
                let digits = s
                    .strip_prefix("AS")
                    .or_else(|| s.strip_prefix("as"))
                    .unwrap_or(s);
                digits.parse::<u32>().ok()?
            }
            Scalar::Other => return None,
        };
        (n != 0).then_some(n)
    }

    /// "GD" under country CN, or a full "CN-GD".
    fn subdivision(&self, country: Option<[u8; 2]>) -> Option<Subdivision> {
        let Scalar::Str(s) = *self else {
            return None;
        };
        if s.contains('-') {
            return Subdivision::parse(s);
        }
        let country = country?;
        Subdivision::new(country, s)
    }
}

impl<'a> From<Value<'a>> for Scalar<'a> {
    fn from(v: Value<'a>) -> Scalar<'a> {
        match v {
            Value::Str(s) => Scalar::Str(s),
            Value::Uint(n) => u64::try_from(n).map_or(Scalar::Other, Scalar::Uint),
            Value::Int(n) => u64::try_from(n).map_or(Scalar::Other, Scalar::Uint),
            Value::Map { .. } | Value::Array { .. } | Value::Other => Scalar::Other,
        }
    }
}
