//! Names taken apart and compared label by label, front to back: the name operations a
//! zone load does for every record, without the costs of hickory's general ones.
//!
//! hickory's `==` and `zone_of` of [`Name`] compare from the root label down through a
//! double-ended label iterator, and `trim_to`/`base_name` build the shorter name through
//! lists of labels: some 500 to 1,500 instructions each, several times a record. These give
//! the very same answers (the tests below hold them to hickory's) in a few dozen:
//! most names of a zone differ in their label count or first label, which is looked at
//! first. What a name is, and how the index hashes it, are not this module's.

use hickory_proto::rr::Name;

/// `name` cut to its last `n` labels (a leading `*` counted): what `Name::trim_to` gives
/// (fully qualified; `name` itself when it has fewer than `n` labels), built by appending
/// labels rather than through a list of them.
pub(crate) fn trimmed(name: &Name, n: usize) -> Name {
    let labels = name.iter().len();
    if n > labels {
        return name.clone();
    }
    let mut out = Name::root();
    for label in name.iter().skip(labels - n) {
        out = match out.append_label(label) {
            Ok(longer) => longer,
            // Not for the labels of a name; hickory's own way, should it ever be.
            Err(_) => return name.trim_to(n),
        };
    }
    out
}

/// `name` without its first label: `Name::base_name`.
pub(crate) fn parent(name: &Name) -> Name {
    match name.iter().len() {
        0 => name.clone(),
        labels => trimmed(name, labels - 1),
    }
}

/// Whether `a` and `b` are the same name as hickory's `==` says: both fully qualified or
/// neither, the same labels with ASCII letters in either case.
pub(crate) fn same(a: &Name, b: &Name) -> bool {
    a.is_fqdn() == b.is_fqdn() && same_labels(a, b)
}

fn same_labels(a: &Name, b: &Name) -> bool {
    a.iter().len() == b.iter().len()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// Whether `name` is `zone` or below it: `zone.zone_of(name)` (which ignores whether
/// either is fully qualified).
pub(crate) fn at_or_below(zone: &Name, name: &Name) -> bool {
    let (zone_labels, labels) = (zone.iter().len(), name.iter().len());
    labels >= zone_labels
        && name
            .iter()
            .skip(labels - zone_labels)
            .zip(zone.iter())
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// A key that sorts names in canonical order (RFC 4034 6.1, hickory's order of
/// `LowerName`): labels from the root, each as its lower-cased bytes, a shorter label (or
/// name) before a longer one it begins. A byte is kept as itself plus one, so that a
/// label's end (0) sorts before any byte. Compared as a plain sequence, not label by
/// label through a name's iterator.
pub(crate) fn canonical_key(name: &Name) -> Vec<u16> {
    let mut key = Vec::with_capacity(name.len() + 2);
    for label in name.iter().rev() {
        key.extend(label.iter().map(|b| u16::from(b.to_ascii_lowercase()) + 1));
        key.push(0);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<Name> {
        let mut names: Vec<Name> = [
            ".",
            "com.",
            "example.com.",
            "Example.COM.",
            "example.com",
            "www.example.com.",
            "WWW.example.com.",
            "*.example.com.",
            "*.apps.example.com.",
            "h1.example.com.",
            "h2.example.com.",
            "h10.example.com.",
            "ab.c.example.com.",
            "a.bc.example.com.",
            "a.b.c.d.example.com.",
            "example.net.",
            "sub.example.com",
            "xn--bcher-kva.example.",
        ]
        .iter()
        .map(|s| Name::from_ascii(s).expect("name"))
        .collect();
        names.push(Name::new());
        names
    }

    #[test]
    fn canonical_keys_sort_as_hickorys_lower_names() {
        use hickory_proto::rr::LowerName;
        let mut ours: Vec<Name> = names().into_iter().filter(Name::is_fqdn).collect();
        for text in [
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "*.z.example.",
            "example.",
            "a-.example.",
            "a.example.com.",
            "ab.example.com.",
        ] {
            ours.push(Name::from_ascii(text).expect("name"));
        }
        // Bytes below and above the letters, in labels of their own (as `\001` and
        // `\200` write them).
        for byte in [1u8, 200, b'-', b'_'] {
            let labels: [&[u8]; 3] = [&[byte], b"z", b"example"];
            ours.push(Name::from_labels(labels).expect("name"));
        }
        let mut theirs = ours.clone();
        ours.sort_by_cached_key(canonical_key);
        theirs.sort_by_cached_key(LowerName::new);
        let texts = |names: &[Name]| {
            names
                .iter()
                .map(|n| n.to_lowercase().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&ours), texts(&theirs));
    }

    #[test]
    fn the_same_answers_as_hickorys() {
        for a in names() {
            for n in 0..7 {
                let (ours, theirs) = (trimmed(&a, n), a.trim_to(n));
                assert!(ours.eq_case(&theirs), "{a} to {n}: {ours} {theirs}");
                assert_eq!(ours.is_fqdn(), theirs.is_fqdn(), "{a} to {n}");
            }
            let (ours, theirs) = (parent(&a), a.base_name());
            assert!(ours.eq_case(&theirs), "{a}: {ours} {theirs}");
            assert_eq!(ours.is_fqdn(), theirs.is_fqdn(), "{a}");
            for b in names() {
                assert_eq!(same(&a, &b), a == b, "{a} == {b}");
                assert_eq!(at_or_below(&a, &b), a.zone_of(&b), "{a} zone of {b}");
            }
        }
    }
}
