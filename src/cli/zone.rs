//! `geoline zone flush ZONE`: ask the running server to write a zone as it serves it
//! (its file plus the updates in its journal) back to its files and empty the journal.
//!
//! This module owns the request to the admin listener the configuration names (with its
//! token) and what is printed of the answer. The server does the writing
//! (`POST /zones/ZONE/flush`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use geoline::config::Config;

/// How long the server may take: it writes and syncs the zone's files.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Flushes zone `zone` of the server configured at `path`.
pub(crate) fn flush(path: &Path, zone: &str) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let admin = config.admin.as_ref().with_context(|| {
        format!(
            "{}: no [admin] section: the running server is asked through its admin listener",
            path.display()
        )
    })?;
    let addr = admin.listen;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).with_context(|| {
        format!("cannot reach the admin listener on {addr} (is `geoline serve` running?)")
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let auth = admin
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let zone_path: String = zone
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    write!(
        stream,
        "POST /zones/{zone_path}/flush HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .with_context(|| format!("reading the answer of {addr}"))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
    if status != "200" {
        let reason = json["error"].as_str().unwrap_or(body.trim());
        bail!("zone {zone}: {reason} (HTTP {status})");
    }
    let files: Vec<&str> = json["files"]
        .as_array()
        .map(|f| f.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    println!(
        "zone {zone}: serial {} written to {} ({} journal entries flushed; journal emptied)",
        json["serial"],
        files.join(", "),
        json["journal_entries_flushed"]
    );
    Ok(())
}
