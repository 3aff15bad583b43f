//! Arbitrary text through the config loader (src/config.rs). Oracle: no panic; an error
//! names the file (and, for a syntax error, a line within the text).
//!
//! The file "lives" in a directory that does not exist, so relative paths (a line's
//! `cidr_file`) fail to read. Inputs naming /dev, /proc or /sys, or with TOML unicode
//! escapes that could spell them, are skipped: reading `/dev/zero` is the file system's
//! behaviour, not the loader's.

#![no_main]

use std::path::Path;

use geoline::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

const PATH: &str = "/nonexistent-geoline-fuzz/geoline.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ["/dev", "/proc", "/sys", "\\u", "\\U"]
        .iter()
        .any(|s| text.contains(s))
    {
        return;
    }
    let e = match Config::parse(Path::new(PATH), text) {
        Ok(_) => return,
        Err(e) => e,
    };
    let message = e.to_string();
    assert!(!message.is_empty());
    match &e {
        ConfigError::Syntax { at, .. } | ConfigError::Invalid { at, .. } => {
            assert!(message.starts_with(PATH), "{message}");
            if let Some(line) = at.line {
                assert!(line >= 1 && line <= text.lines().count() + 1, "{message}");
            }
        }
        // A cidr_file that does not exist: named in the message.
        ConfigError::Read { .. } => assert!(message.contains(": cannot read: "), "{message}"),
    }
});
