//! Which files a reload target actually reads, and through which links: what the watcher
//! must watch so that no change that alters the data goes unnoticed.
//!
//! This module owns two answers. [`included`]: the files a zone file pulls in with
//! `$INCLUDE` (RFC 1035 section 5.1), resolved as the zone parser resolves them (relative
//! to the directory of the zone file the parse started from), nested includes too.
//! [`links`]: every symbolic link met on the way from a configured path to the file it
//! names, and that file. A Kubernetes ConfigMap or Secret volume is
//! `zone -> ..data/zone`, `..data -> ..2026_12_07_13_00_00.123`, and an update renames a
//! new `..data` over the old one: neither the zone's name nor its directory entry changes,
//! only the link `..data` does, so the watcher must know that name.
//!
//! It reads directory entries and zone text only; it does not parse zones (a file that
//! names a missing include is the zone loader's error to report).

use std::path::{Component, Path, PathBuf};

/// The deepest `$INCLUDE` nesting followed (a loop of includes stops here).
const MAX_DEPTH: usize = 16;

/// The most links followed for one path (as the kernel's `ELOOP` limit does).
const MAX_LINKS: usize = 40;

/// Every file `zone_file` includes with `$INCLUDE`, directly or not, each once.
pub(crate) fn included(zone_file: &Path) -> Vec<PathBuf> {
    let base = zone_file.parent().unwrap_or(Path::new("."));
    let mut found = Vec::new();
    let mut todo = vec![(zone_file.to_path_buf(), 0)];
    while let Some((file, depth)) = todo.pop() {
        if depth > MAX_DEPTH {
            continue;
        }
        // An unreadable file is the loader's to report; it names nothing to watch.
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for include in include_directives(&text) {
            let path = base.join(include);
            if !found.contains(&path) {
                found.push(path.clone());
                todo.push((path, depth + 1));
            }
        }
    }
    found
}

/// The file names of the `$INCLUDE` entries of a zone file's text: a line that starts with
/// `$INCLUDE` (any case), its first argument, quotes removed.
fn include_directives(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        let first = words.next()?;
        if !line.starts_with('$') || !first.eq_ignore_ascii_case("$INCLUDE") {
            return None;
        }
        let name = words.next()?;
        Some(name.trim_matches('"'))
    })
}

/// `path`, made absolute, then every symbolic link on the way to the file it names and
/// that file: each of them can change what a read of `path` gets.
pub(crate) fn links(path: &Path) -> Vec<PathBuf> {
    let start = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut chain = vec![start.clone()];
    // Resolve component by component: `resolved` has no link in it, `rest` is still to go.
    let mut rest: Vec<PathBuf> = start
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut resolved = PathBuf::new();
    let mut followed = 0;
    while let Some(part) = rest.pop() {
        let next = resolved.join(&part);
        match std::fs::read_link(&next) {
            Ok(target) if followed < MAX_LINKS => {
                followed += 1;
                if !chain.contains(&next) {
                    chain.push(next.clone());
                }
                let target = if target.is_absolute() {
                    target
                } else {
                    resolved.join(target)
                };
                // The link's target replaces it, and is resolved in turn.
                for c in normalize(&target).components().rev() {
                    rest.push(PathBuf::from(c.as_os_str()));
                }
                resolved = PathBuf::new();
            }
            _ => resolved = next,
        }
    }
    if !chain.contains(&resolved) {
        chain.push(resolved);
    }
    chain
}

/// `path` without `.` and with each `..` taking off the component before it (lexically:
/// every component before it has already been resolved, links included).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("geoline-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::canonicalize(&dir).expect("canonical")
    }

    #[test]
    fn includes_nested_resolved_from_the_first_files_directory() {
        let dir = temp("inc");
        std::fs::create_dir_all(dir.join("inc")).expect("dir");
        std::fs::write(
            dir.join("z.zone"),
            "$ORIGIN example.com.\n$include inc/a.zone ; hosts\n$INCLUDE \"inc/b.zone\" sub\nwww A 192.0.2.1 ; $INCLUDE no\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("inc/a.zone"),
            "$INCLUDE inc/c.zone\n$INCLUDE inc/a.zone\n",
        )
        .expect("write");
        std::fs::write(dir.join("inc/b.zone"), "").expect("write");
        std::fs::write(dir.join("inc/c.zone"), "").expect("write");
        let mut found = included(&dir.join("z.zone"));
        found.sort();
        assert_eq!(
            found,
            ["a.zone", "b.zone", "c.zone"].map(|f| dir.join("inc").join(f))
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn links_of_a_configmap_volume() {
        let dir = temp("links");
        std::fs::create_dir_all(dir.join("..2026_1")).expect("dir");
        std::fs::write(dir.join("..2026_1/z.zone"), "").expect("write");
        symlink("..2026_1", dir.join("..data")).expect("link");
        symlink("..data/z.zone", dir.join("z.zone")).expect("link");
        assert_eq!(
            links(&dir.join("z.zone")),
            vec![
                dir.join("z.zone"),
                dir.join("..data"),
                dir.join("..2026_1/z.zone")
            ]
        );
        // A plain file is only itself.
        assert_eq!(
            links(&dir.join("..2026_1/z.zone")),
            vec![dir.join("..2026_1/z.zone")]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
