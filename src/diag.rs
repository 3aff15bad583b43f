//! Diagnostics for the files geoline reads: where something is wrong, and saying so.
//!
//! This module owns [`Location`] (a file and, when known, a line), [`ConfigError`], and
//! [`Source`]: a configuration file's text as the section checks see it, which turns a
//! TOML span into a line, checks a number against its range and resolves relative paths
//! against the file's directory. Every message reads `file:line: reason`.
//!
//! It is a leaf: it knows no section of the configuration and no other module of the crate,
//! so that the sections (which need it) and [`crate::config`] (which composes them) do not
//! import each other.

use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use toml::Spanned;

/// Where in a file something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based; absent when the error concerns the file as a whole.
    pub line: Option<usize>,
}

impl Location {
    /// The file as a whole.
    pub(crate) fn file(path: &Path) -> Location {
        Location {
            path: path.to_path_buf(),
            line: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.path.display(), line),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// Why a configuration file (or a file it names, such as a CIDR list) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key or value is not of the section's format.
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's message.
        message: String,
    },
    /// The file parses but a value is refused by its section's checks.
    #[error("{at}: {reason}")]
    Invalid {
        /// The value's line, or the file as a whole.
        at: Location,
        /// The rule broken, naming the key.
        reason: String,
    },
}

/// A configuration file's text, as the checks of its sections see it.
pub(crate) struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        Source { path, text }
    }

    /// The directory relative paths in the file are relative to.
    pub(crate) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The file and the line `span` starts on (the whole file without a span).
    pub(crate) fn location(&self, span: Option<Range<usize>>) -> Location {
        Location {
            path: self.path.to_path_buf(),
            line: span.map(|s| line_of(self.text, s.start)),
        }
    }

    /// `reason`, at the line of `span`.
    pub(crate) fn invalid(&self, span: Range<usize>, reason: String) -> ConfigError {
        ConfigError::Invalid {
            at: self.location(Some(span)),
            reason,
        }
    }

    /// `reason`, about the file as a whole (a check that spans sections).
    pub(crate) fn invalid_file(&self, reason: String) -> ConfigError {
        ConfigError::Invalid {
            at: self.location(None),
            reason,
        }
    }

    /// The value given (or `default`), checked against `range`; the error names the key
    /// (`dns.max_udp_payload 9000 is outside 512..=4096`) and its line.
    pub(crate) fn in_range<T>(
        &self,
        value: Option<Spanned<T>>,
        default: T,
        range: RangeInclusive<T>,
        key: &str,
    ) -> Result<T, ConfigError>
    where
        T: PartialOrd + Copy + fmt::Display,
    {
        Ok(self.checked(value, range, key)?.unwrap_or(default))
    }

    /// The value given, if any, checked against `range` as [`Source::in_range`] does.
    pub(crate) fn checked<T>(
        &self,
        value: Option<Spanned<T>>,
        range: RangeInclusive<T>,
        key: &str,
    ) -> Result<Option<T>, ConfigError>
    where
        T: PartialOrd + Copy + fmt::Display,
    {
        let Some(v) = value else {
            return Ok(None);
        };
        let n = *v.get_ref();
        if range.contains(&n) {
            Ok(Some(n))
        } else {
            Err(self.invalid(
                v.span(),
                format!("{key} {n} is outside {}..={}", range.start(), range.end()),
            ))
        }
    }

    /// `path` as written in the file, made relative to the file's directory (so that
    /// `geoline --config /etc/geoline/geoline.toml` works from any directory).
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        let base = self.dir();
        if path.is_absolute() || base.as_os_str().is_empty() {
            path.to_path_buf()
        } else {
            base.join(path)
        }
    }
}

/// For `#[serde(default = "crate::diag::default_true")]`: a switch that is on unless the
/// file turns it off.
pub(crate) fn default_true() -> bool {
    true
}

/// The 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
