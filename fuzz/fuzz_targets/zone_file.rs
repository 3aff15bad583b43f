//! Arbitrary text through the zone loader (src/zone/file.rs): the text up to the first NUL
//! is a base file, what follows an overlay for the first line. Oracle: no panic; a zone, or
//! an error that names the file and a line within it (only "no SOA", "no NS" and a file
//! that never sets `$ORIGIN`, such as one of `$TTL` alone, concern the file as a whole).
//!
//! Inputs with `$INCLUDE` are skipped: the parser would read the named file from this
//! machine (`$INCLUDE /dev/zero` never ends), which is the file system, not the loader.

#![no_main]

use std::path::Path;

use geoline::internal::{Zone, ZoneError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.to_ascii_lowercase().contains("$include") {
        return;
    }
    let (base, overlay) = match text.split_once('\0') {
        Some((base, overlay)) => (base, Some(overlay)),
        None => (text, None),
    };
    let path = Path::new("/fuzz/example.com.zone");
    let e = match Zone::from_text(path, base, overlay) {
        Ok(_) => return,
        Err(e) => e,
    };
    let message = e.to_string();
    assert!(message.starts_with("/fuzz/example.com.zone"), "{message}");
    let (at, reason) = match &e {
        ZoneError::Syntax { at, reason } | ZoneError::Invalid { at, reason } => (at, reason),
        ZoneError::Read { .. } => panic!("read a file: {message}"),
    };
    match at.line {
        // The line must be in whichever file the error is about.
        Some(line) => {
            let longest = base
                .lines()
                .count()
                .max(overlay.map_or(0, |o| o.lines().count()));
            assert!(
                line >= 1 && line <= longest + 1,
                "line {line} of {longest}: {message}"
            );
        }
        None => assert!(
            match &e {
                ZoneError::Invalid { .. } =>
                    reason.starts_with("no SOA record") || reason.starts_with("no NS records"),
                ZoneError::Syntax { .. } => reason.contains("$ORIGIN was not specified"),
                ZoneError::Read { .. } => false,
            },
            "an error without a line: {message}"
        ),
    }
});
