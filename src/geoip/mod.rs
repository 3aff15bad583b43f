//! GeoIP databases: MaxMind DB (mmdb) files read into memory and their records.
//!
//! This module owns reading a database file, recognising its layout (which fields hold the
//! country, continent, subdivisions and ASN: [`layout`]), checking it before anyone uses
//! it, and answering two questions:
//! what is the record for an address ([`GeoDb::lookup`]), and what are all the networks
//! with data ([`GeoDb::networks`]), which [`crate::lines`] compiles into its line map.
//!
//! A file is read, never mapped, and never held whole: [`mmdb`] reads its search tree a
//! page at a time as the check, the compiler's walk or a lookup goes, and holds only the
//! metadata and the records. Once the line map is compiled the server needs none of it
//! (queries and the redirector read the map), so it keeps a database's summary only
//! ([`GeoDb::summary`]): the file is opened again, and checked to be the same, when
//! something asks a summary for an address's record ([`GeoDb::lookup`], for `geoline
//! lookup`) or the map is compiled again.
//!
//! It does not decide lines, hold the swappable snapshot, or watch files for changes.

pub(crate) mod config;
mod continents;
mod layout;
mod mmdb;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mmdb::{Mmdb, OpenError, Walk};

pub(crate) use continents::continent_of;
pub use layout::Field;
pub(crate) use layout::{FieldOverrides, FieldPath, FieldSet, Layout, RecordReader};
pub use mmdb::MmdbError;

/// An ISO 3166-2 subdivision code such as `CN-GD`: the country, then one to three letters
/// or digits, held inline so that a [`GeoRecord`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subdivision([u8; 6]);

impl Subdivision {
    /// `country` and the part after the dash (`GD`), as GeoIP2 City records hold it.
    pub fn new(country: [u8; 2], code: &str) -> Option<Subdivision> {
        let b = code.as_bytes();
        if !(1..=3).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut out = [0u8; 6];
        out[0] = country[0].to_ascii_uppercase();
        out[1] = country[1].to_ascii_uppercase();
        out[2] = b'-';
        for (o, c) in out[3..].iter_mut().zip(b) {
            *o = c.to_ascii_uppercase();
        }
        Some(Subdivision(out))
    }

    /// A full code, `CN-GD` (case-insensitive).
    pub fn parse(text: &str) -> Option<Subdivision> {
        let (country, code) = text.split_once('-')?;
        let country = self::code(country)?;
        Subdivision::new(country, code)
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(6);
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }

    pub fn country(&self) -> [u8; 2] {
        [self.0[0], self.0[1]]
    }
}

impl fmt::Display for Subdivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Subdivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

/// What geoline uses of a database record. Codes are upper-case ASCII.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GeoRecord {
    /// ISO 3166-1 alpha-2.
    pub country: Option<[u8; 2]>,
    /// AF AN AS EU NA OC SA.
    pub continent: Option<[u8; 2]>,
    /// ISO 3166-2, largest first (GeoIP2 City order).
    pub subdivisions: [Option<Subdivision>; layout::MAX_SUBDIVISIONS],
    /// The autonomous system announcing the network.
    pub asn: Option<u32>,
}

impl GeoRecord {
    pub fn country_str(&self) -> Option<&str> {
        self.country
            .as_ref()
            .and_then(|c| std::str::from_utf8(c).ok())
    }

    pub fn continent_str(&self) -> Option<&str> {
        self.continent
            .as_ref()
            .and_then(|c| std::str::from_utf8(c).ok())
    }

    pub fn subdivisions(&self) -> impl Iterator<Item = Subdivision> + '_ {
        self.subdivisions.iter().flatten().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// The fields this record has a value for.
    pub fn fields(&self) -> FieldSet {
        let mut s = FieldSet::default();
        if self.country.is_some() {
            s = s.with(Field::Country);
        }
        if self.continent.is_some() {
            s = s.with(Field::Continent);
        }
        if self.subdivisions[0].is_some() {
            s = s.with(Field::Subdivision);
        }
        if self.asn.is_some() {
            s = s.with(Field::Asn);
        }
        s
    }

    /// Takes from `other` every field this record lacks: with several databases, each
    /// field comes from the first database that has it.
    pub fn fill_from(&mut self, other: &GeoRecord) {
        self.country = self.country.or(other.country);
        self.continent = self.continent.or(other.continent);
        if self.subdivisions[0].is_none() {
            self.subdivisions = other.subdivisions;
        }
        self.asn = self.asn.or(other.asn);
    }
}

/// The fields a record has, as `geoline lookup` shows them: `country CN, continent AS,
/// subdivisions CN-GD, asn AS4134` (those it lacks left out), or `none`.
impl fmt::Display for GeoRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(c) = self.country_str() {
            parts.push(format!("country {c}"));
        }
        if let Some(c) = self.continent_str() {
            parts.push(format!("continent {c}"));
        }
        let subs: Vec<String> = self
            .subdivisions()
            .map(|s| s.as_str().to_string())
            .collect();
        if !subs.is_empty() {
            parts.push(format!("subdivisions {}", subs.join(" ")));
        }
        if let Some(asn) = self.asn {
            parts.push(format!("asn AS{asn}"));
        }
        if parts.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&parts.join(", "))
    }
}

/// Why a GeoIP database, or the lines matching on it, cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    /// The file cannot be read.
    #[error("{path}: cannot read GeoIP database: {source}", path = path.display())]
    Read {
        /// The database file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file has no bytes (a download that failed half way, most likely).
    #[error("{path}: GeoIP database file is empty", path = path.display())]
    Empty {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not a MaxMind DB, or is damaged.
    #[error("{path}: not a valid MaxMind DB file: {source}", path = path.display())]
    Format {
        /// The database file.
        path: PathBuf,
        /// The reader's reason.
        #[source]
        source: MmdbError,
    },
    #[error(
        "{path}: database_type `{database_type}` is not a layout geoline recognises \
         (GeoIP2/GeoLite2/DB-IP Country, City or ASN, IPinfo lite, ip-location-db); \
         set `layout` or field paths in its [[geoip]] section",
        path = path.display()
    )]
    /// Its `database_type` names no known layout, and the section sets none.
    UnknownLayout {
        /// The database file.
        path: PathBuf,
        /// The database's own `database_type`.
        database_type: String,
    },
    /// The database reads but its contents fail a check made on loading (no networks, no
    /// field the layout knows, a record that does not decode, networks out of order).
    #[error("{path}: {reason}", path = path.display())]
    Check {
        /// The database file.
        path: PathBuf,
        /// The check failed.
        reason: String,
    },
    #[error(
        "line `{line}` matches on {field} but none of the configured databases has {field} \
         data ({databases})"
    )]
    /// A line matches on a field that no configured database has a value for, so the line
    /// could never match.
    MissingField {
        /// The line's name.
        line: String,
        /// The field it matches on.
        field: Field,
        /// Each database, with its layout and the fields it provides.
        databases: String,
    },
}

impl GeoIpError {
    /// The database file the error is about; none when it is about the set of them.
    pub fn path(&self) -> Option<&Path> {
        match self {
            GeoIpError::Read { path, .. }
            | GeoIpError::Empty { path }
            | GeoIpError::Format { path, .. }
            | GeoIpError::UnknownLayout { path, .. }
            | GeoIpError::Check { path, .. } => Some(path),
            GeoIpError::MissingField { .. } => None,
        }
    }
}

/// A MaxMind DB file opened (metadata and records read, the search tree read on demand),
/// with its layout recognised and its contents checked;
/// or, once [`GeoDb::summary`] has left its contents out, what was learnt of them.
pub struct GeoDb {
    path: PathBuf,
    /// The file's metadata and records, its tree read on demand; `None` in a summary,
    /// which opens the file again when asked for records ([`GeoDb::contents`]).
    reader: Option<Mmdb>,
    /// What the file was opened with, to open it again the same way.
    layout: Option<Layout>,
    overrides: FieldOverrides,
    /// A hash of the file's bytes: a summary reads the file again only to answer about the
    /// contents it summarises, not about a file replaced since.
    fingerprint: u64,
    database_type: String,
    build_epoch: u64,
    ip_version: u16,
    fields: RecordReader,
    /// The fields at least one network has a value for.
    provides: FieldSet,
    size: usize,
    v4_networks: usize,
    v6_networks: usize,
    /// Whether lookups in 6to4 (2002::/16) and Teredo (2001::/32) space find nothing, as
    /// the network walk finds nothing there: the ranges are aliases of the IPv4 tree, or
    /// empty. Following the aliases would make lookups disagree with [`GeoDb::networks`].
    skip_6to4: bool,
    skip_teredo: bool,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("held", &self.reader.is_some())
            .field("layout", &self.fields.layout())
            .field("provides", &self.provides)
            .field("database_type", &self.database_type())
            .field("build_epoch", &self.build_epoch())
            .field("ip_version", &self.ip_version())
            .field("networks", &(self.v4_networks, self.v6_networks))
            .finish()
    }
}

// Addresses whose records are decoded at open to catch a wrong layout or a corrupt data
// section early; the full walk of the tree that follows catches the rest.
const PROBES: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(1, 2, 4, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(114, 114, 114, 114)),
    IpAddr::V4(Ipv4Addr::new(193, 0, 14, 129)),
    IpAddr::V6(Ipv6Addr::new(0x2400, 0xda00, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
];

const TEREDO: Ipv6Net = match Ipv6Net::new(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32) {
    Ok(n) => n,
    Err(_) => panic!("valid prefix"),
};
const SIX_TO_FOUR: Ipv6Net = match Ipv6Net::new(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
    Ok(n) => n,
    Err(_) => panic!("valid prefix"),
};
const IPV4_TREE: Ipv6Net = match Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 96) {
    Ok(n) => n,
    Err(_) => panic!("valid prefix"),
};
const V4_MAPPED: Ipv6Net = match Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96) {
    Ok(n) => n,
    Err(_) => panic!("valid prefix"),
};

impl GeoDb {
    /// Opens the file at `path` (reading its metadata and records, not its search tree),
    /// recognises its layout (from `database_type` when `layout` is `None`) and checks it:
    /// metadata, a few probe lookups, and a walk over every network decoding every
    /// distinct record.
    pub fn open(path: &Path, layout: Option<Layout>) -> Result<GeoDb, GeoIpError> {
        GeoDb::open_with(path, layout, &FieldOverrides::default())
    }

    /// As [`GeoDb::open`], with field paths replacing the layout's own.
    pub fn open_with(
        path: &Path,
        layout: Option<Layout>,
        overrides: &FieldOverrides,
    ) -> Result<GeoDb, GeoIpError> {
        let path_buf = || path.to_path_buf();
        let reader = match Mmdb::open(path) {
            Ok(r) => r,
            Err(OpenError::Read(source)) => {
                return Err(GeoIpError::Read {
                    path: path_buf(),
                    source,
                });
            }
            Err(OpenError::Empty) => return Err(GeoIpError::Empty { path: path_buf() }),
            Err(OpenError::Format(source)) => {
                return Err(GeoIpError::Format {
                    path: path_buf(),
                    source,
                });
            }
        };
        GeoDb::from_reader(path, reader, layout, overrides)
    }

    /// As [`GeoDb::open`], for a file already read; `path` names it in errors.
    pub fn from_bytes(
        path: &Path,
        bytes: Vec<u8>,
        layout: Option<Layout>,
    ) -> Result<GeoDb, GeoIpError> {
        GeoDb::from_bytes_with(path, bytes, layout, &FieldOverrides::default())
    }

    /// As [`GeoDb::open_with`], for a file already read; `path` names it in errors.
    pub fn from_bytes_with(
        path: &Path,
        bytes: Vec<u8>,
        layout: Option<Layout>,
        overrides: &FieldOverrides,
    ) -> Result<GeoDb, GeoIpError> {
        if bytes.is_empty() {
            return Err(GeoIpError::Empty {
                path: path.to_path_buf(),
            });
        }
        let reader = Mmdb::from_bytes(bytes).map_err(|source| GeoIpError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        GeoDb::from_reader(path, reader, layout, overrides)
    }

    /// The database `reader` reads, recognised and checked.
    fn from_reader(
        path: &Path,
        reader: Mmdb,
        layout: Option<Layout>,
        overrides: &FieldOverrides,
    ) -> Result<GeoDb, GeoIpError> {
        let path = path.to_path_buf();
        let size = usize::try_from(reader.len()).unwrap_or(usize::MAX);
        let fingerprint = match reader.fingerprint() {
            Ok(f) => f,
            Err(source) => return Err(GeoIpError::Format { path, source }),
        };
        let database_type = reader.metadata().database_type.clone();
        let (build_epoch, ip_version) =
            (reader.metadata().build_epoch, reader.metadata().ip_version);
        let configured = layout;
        let layout = match layout.or_else(|| Layout::recognise(&database_type)) {
            Some(l) => l,
            // Field paths alone are enough to read a database geoline does not know.
            None if !overrides.is_empty() => Layout::Custom,
            None => {
                return Err(GeoIpError::UnknownLayout {
                    path,
                    database_type,
                });
            }
        };
        let mut db = GeoDb {
            path,
            reader: Some(reader),
            layout: configured,
            overrides: overrides.clone(),
            fingerprint,
            database_type,
            build_epoch,
            ip_version,
            fields: RecordReader::new(layout, overrides),
            provides: FieldSet::default(),
            size,
            v4_networks: 0,
            v6_networks: 0,
            skip_6to4: false,
            skip_teredo: false,
        };
        db.check()?;
        Ok(db)
    }

    /// This database without its contents: what it was read from and what its check
    /// learnt (type, build date, fields, network counts), in a few hundred bytes. Asked
    /// for records, it reads its file again ([`GeoDb::contents`]).
    pub fn summary(&self) -> GeoDb {
        GeoDb {
            path: self.path.clone(),
            reader: None,
            layout: self.layout,
            overrides: self.overrides.clone(),
            fingerprint: self.fingerprint,
            database_type: self.database_type.clone(),
            build_epoch: self.build_epoch,
            ip_version: self.ip_version,
            fields: self.fields.clone(),
            provides: self.provides,
            size: self.size,
            v4_networks: self.v4_networks,
            v6_networks: self.v6_networks,
            skip_6to4: self.skip_6to4,
            skip_teredo: self.skip_teredo,
        }
    }

    /// Whether the database holds its contents (a summary does not).
    pub fn holds_contents(&self) -> bool {
        self.reader.is_some()
    }

    /// This database with its contents: itself, or for a summary its file read and checked
    /// again, which must be the file the summary was made from (a file replaced since is
    /// an error: the summary's answers would not be the serving map's).
    pub fn contents(&self) -> Result<Contents<'_>, GeoIpError> {
        if self.reader.is_some() {
            return Ok(Contents::Held(self));
        }
        let db = self.read_again()?;
        if db.fingerprint != self.fingerprint {
            return Err(self.check_error(
                "the file has changed since it was loaded; reload the database first".into(),
            ));
        }
        Ok(Contents::Read(Box::new(db)))
    }

    /// This database with its contents, as its file holds them now: itself if it holds
    /// them, or its file read and checked again (what compiling the line map again reads).
    pub fn current_contents(&self) -> Result<Contents<'_>, GeoIpError> {
        match self.reader {
            Some(_) => Ok(Contents::Held(self)),
            None => self.read_again().map(|db| Contents::Read(Box::new(db))),
        }
    }

    fn read_again(&self) -> Result<GeoDb, GeoIpError> {
        GeoDb::open_with(&self.path, self.layout, &self.overrides)
    }

    /// The reader of a database that holds its contents; a summary's is an error (callers
    /// go through [`GeoDb::contents`] first).
    fn reader(&self) -> Result<&Mmdb, GeoIpError> {
        self.reader.as_ref().ok_or_else(|| {
            self.check_error("the database's contents are not held (a summary)".into())
        })
    }

    fn check(&mut self) -> Result<(), GeoIpError> {
        for ip in PROBES {
            self.lookup(ip)?;
        }
        let (mut v4, mut v6) = (0usize, 0usize);
        let mut provides = FieldSet::default();
        let (mut in_6to4, mut in_teredo) = (false, false);
        let overlaps = |a: &Ipv6Net, b: &Ipv6Net| a.contains(b) || b.contains(a);
        for item in self.iter()? {
            let (net, rec) = item?;
            match net {
                IpNet::V4(_) => v4 += 1,
                IpNet::V6(n) => {
                    v6 += 1;
                    in_6to4 |= overlaps(&n, &SIX_TO_FOUR);
                    in_teredo |= overlaps(&n, &TEREDO);
                }
            }
            provides = provides.union(rec.fields());
        }
        self.verify_unchanged()?;
        if v4 + v6 == 0 {
            return Err(self.check_error("the database holds no networks".into()));
        }
        if provides.is_empty() {
            return Err(self.check_error(format!(
                "none of its {} networks has a {} under the {} layout \
                 (database_type `{}`): is `layout` right?",
                v4 + v6,
                self.fields
                    .fields()
                    .iter()
                    .map(Field::name)
                    .collect::<Vec<_>>()
                    .join(" or "),
                self.fields,
                self.database_type()
            )));
        }
        self.provides = provides;
        self.v4_networks = v4;
        self.v6_networks = v6;
        // The walk skips these ranges when they only lead back into the IPv4 tree (as
        // MaxMind's and mmdb-writer's aliases do); lookups must then skip them too.
        let v6_db = self.ip_version() == 6;
        self.skip_6to4 = v6_db && !in_6to4;
        self.skip_teredo = v6_db && !in_teredo;
        Ok(())
    }

    /// An error if the file was rewritten in place since it was opened: what was read
    /// of it (the check's walk, a compiled map) may then mix two files. A summary, which
    /// holds nothing read, is always fine.
    pub fn verify_unchanged(&self) -> Result<(), GeoIpError> {
        match &self.reader {
            Some(reader) => reader.verify_unchanged().map_err(|e| self.format_error(e)),
            None => Ok(()),
        }
    }

    fn check_error(&self, reason: String) -> GeoIpError {
        GeoIpError::Check {
            path: self.path.clone(),
            reason,
        }
    }

    fn format_error(&self, source: MmdbError) -> GeoIpError {
        GeoIpError::Format {
            path: self.path.clone(),
            source,
        }
    }

    /// The file the database was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The layout, recognised from `database_type` or set in the configuration.
    pub fn layout(&self) -> Layout {
        self.fields.layout()
    }

    /// The layout with its field paths.
    pub fn record_reader(&self) -> &RecordReader {
        &self.fields
    }

    /// The fields at least one of its networks has a value for.
    pub fn provides(&self) -> FieldSet {
        self.provides
    }

    /// The `database_type` of the file's metadata, e.g. `GeoLite2-Country`.
    pub fn database_type(&self) -> &str {
        &self.database_type
    }

    /// When the database was built, in seconds since the Unix epoch.
    pub fn build_epoch(&self) -> u64 {
        self.build_epoch
    }

    /// 4 for an IPv4-only database, 6 for one that also holds IPv6 (with IPv4 in it).
    pub fn ip_version(&self) -> u16 {
        self.ip_version
    }

    /// The number of networks with data, IPv4 and IPv6, as [`GeoDb::networks`] reports them.
    pub fn network_counts(&self) -> (usize, usize) {
        (self.v4_networks, self.v6_networks)
    }

    /// The number of networks with data, IPv4 and IPv6 together.
    pub fn network_count(&self) -> usize {
        self.v4_networks + self.v6_networks
    }

    /// The size of the file.
    pub fn size_bytes(&self) -> usize {
        self.size
    }

    /// The database network containing `ip` and its record, or `None` where the database
    /// has no data. An IPv4-mapped address (`::ffff:a.b.c.d`) is looked up as its IPv4
    /// address; the 6to4 and Teredo aliases of the IPv4 tree are not followed, as
    /// [`GeoDb::networks`] does not report them. An IPv6 address in an IPv4-only database
    /// has no data. A summary reads its file again ([`GeoDb::contents`]).
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<(IpNet, GeoRecord)>, GeoIpError> {
        let Some(reader) = &self.reader else {
            return self.contents()?.lookup(ip);
        };
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None if self.ip_version() == 4 => return Ok(None),
                None if self.skip_6to4 && SIX_TO_FOUR.contains(&v6) => return Ok(None),
                None if self.skip_teredo && TEREDO.contains(&v6) => return Ok(None),
                None => ip,
            },
            IpAddr::V4(_) => ip,
        };
        let Some((net, offset)) = reader.lookup(ip).map_err(|e| self.format_error(e))? else {
            return Ok(None);
        };
        let net = match (ip, net) {
            // An IPv6 database without an IPv4 tree answers IPv4 addresses from an IPv6
            // record covering ::/96: all of IPv4 is in that network.
            (IpAddr::V4(_), IpNet::V6(_)) => IpNet::V4(Ipv4Net::default()),
            // An IPv4-compatible address (::a.b.c.d) walked into the IPv4 tree, whose
            // networks are reported as IPv4 only.
            (IpAddr::V6(_), IpNet::V6(n)) if n.prefix_len() > 96 && IPV4_TREE.contains(&n) => {
                return Ok(None);
            }
            (_, net) => net,
        };
        let record = self.decode(reader, offset)?;
        Ok(Some((net, record)))
    }

    /// Every network with data and its record in address order: IPv4 networks first,
    /// reported as IPv4, then IPv6. The IPv4-mapped, 6to4 and Teredo aliases of the IPv4
    /// tree in an IPv6 database are left out.
    pub fn networks(&self) -> Result<Vec<(IpNet, GeoRecord)>, GeoIpError> {
        let mut out = Vec::with_capacity(self.network_count());
        for item in self.iter()? {
            out.push(item?);
        }
        Ok(out)
    }

    /// [`GeoDb::networks`] one at a time, without collecting them. Not for a summary (an
    /// error): take its [`GeoDb::contents`] first.
    pub fn iter(&self) -> Result<Networks<'_>, GeoIpError> {
        let walk = self.reader()?.walk();
        Ok(Networks {
            db: self,
            walk,
            cache: HashMap::default(),
            pending: None,
        })
    }

    fn decode(&self, reader: &Mmdb, offset: usize) -> Result<GeoRecord, GeoIpError> {
        self.fields
            .decode(reader.data(), offset)
            .map_err(|e| self.format_error(e))
    }
}

/// A database with its contents ([`GeoDb::contents`]): one that holds them, or a
/// summary's file read again.
pub enum Contents<'a> {
    /// The database held its contents.
    Held(&'a GeoDb),
    /// The summary's file, read again.
    Read(Box<GeoDb>),
}

impl std::ops::Deref for Contents<'_> {
    type Target = GeoDb;

    fn deref(&self) -> &GeoDb {
        match self {
            Contents::Held(db) => db,
            Contents::Read(db) => db,
        }
    }
}

/// The walk behind [`GeoDb::networks`]: every network with data, IPv4 ones first.
pub struct Networks<'a> {
    db: &'a GeoDb,
    walk: Walk<'a>,
    // Real databases hold a few hundred distinct records shared by hundreds of thousands
    // of networks: decode each data offset once.
    cache: HashMap<usize, GeoRecord, BuildHasherDefault<OffsetHasher>>,
    /// An IPv6 network to yield after the IPv4 network it implied.
    pending: Option<(IpNet, GeoRecord)>,
}

impl Iterator for Networks<'_> {
    type Item = Result<(IpNet, GeoRecord), GeoIpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(p) = self.pending.take() {
            return Some(Ok(p));
        }
        loop {
            let (net, offset) = match self.walk.next()? {
                Ok(found) => found,
                Err(e) => return Some(Err(self.db.format_error(e))),
            };
            let record = match self.cache.get(&offset) {
                Some(r) => *r,
                None => match self.db.reader().and_then(|r| self.db.decode(r, offset)) {
                    Ok(r) => {
                        self.cache.insert(offset, r);
                        r
                    }
                    Err(e) => return Some(Err(e)),
                },
            };
            if let IpNet::V6(v6) = net {
                if V4_MAPPED.contains(&v6) {
                    // Not an alias but a copy of IPv4 data: IPv4-mapped clients are
                    // classified by the IPv4 networks.
                    continue;
                }
                if v6.network() == Ipv6Addr::UNSPECIFIED && v6.prefix_len() <= 96 {
                    // No IPv4 tree: this record covers all of ::/96, hence all of IPv4.
                    self.pending = Some((net, record));
                    return Some(Ok((IpNet::V4(Ipv4Net::default()), record)));
                }
            }
            return Some(Ok((net, record)));
        }
    }
}

/// A two-letter code, upper-cased; anything else is treated as absent rather than failing
/// the whole database over one odd record.
fn code(s: &str) -> Option<[u8; 2]> {
    match s.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

/// Data offsets are already well spread; hashing them again with SipHash would dominate
/// the walk over a large database.
#[derive(Default)]
struct OffsetHasher(u64);

impl Hasher for OffsetHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

// The databases of the unit tests here, in lines/ and in dns/cache.rs. The writer is a
// dev-dependency crate (crates/mmdb-fixtures), not a file included by path, because the
// integration tests write the same databases: one writer for both, and no test of the
// library depends on a file under tests/.
#[cfg(test)]
pub(crate) use geoline_mmdb_fixtures as fixtures;

#[cfg(test)]
mod tests;
