//! Host names as HTTP carries them: the one validator for the proxy, the redirector and
//! the configuration checks.
//!
//! This module owns what a host name is (letters, digits and `-` in dot-separated labels of
//! 1 to 63, no `-` at a label's edge, at most 253 in all, one trailing dot ignored; no `_`,
//! which DNS allows in other names but a host name never has), how it is compared (ASCII
//! case-insensitively, by whole labels), and where a request names its host. It does not
//! know which hosts are served: that is [`super::mapping`] and the redirect rules.

use http::Request;
use http::header::HOST;

/// Why a name is not a host name.
pub(crate) type Reason = &'static str;

/// Checks `name` (without its trailing dot) against the host-name rule; the reason is
/// for messages (`host "a_b.example" is not a DNS name: only letters, ...`). This is the
/// rule for names an operator configures.
pub(crate) fn check(name: &str) -> Result<(), Reason> {
    check_labels(name, false)
}

/// Checks a host a client sent. Looser than [`check`] in two ways that nginx and browsers
/// accept: `_` and a `-` at a label's edge (names like `my_host.example.com` exist and were
/// served before this rule was shared). Neither can end the authority of a `Location` built
/// from the name, which is what the check guards. Allocates nothing: the redirector checks
/// every request's host with it.
pub(crate) fn check_requested(name: &str) -> Result<(), Reason> {
    check_labels(name, true)
}

fn check_labels(name: &str, requested: bool) -> Result<(), Reason> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || (requested && b == b'_'))
        {
            return Err("only letters, digits, '-' and '.' (use the punycode form of IDNs)");
        }
        if !requested && (label.starts_with('-') || label.ends_with('-')) {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

/// `name` as hosts are compared: lower case, without its trailing dot, checked by [`check`].
pub(crate) fn normalize(name: &str) -> Result<String, Reason> {
    let name = name.strip_suffix('.').unwrap_or(name);
    check(name)?;
    Ok(name.to_ascii_lowercase())
}

/// The host of an authority: `name[:port]`, `v4[:port]`, `[v6][:port]` (the brackets kept).
/// `None` when the port is not 1 to 5 digits or a bracket is not closed.
pub(crate) fn strip_port(authority: &str) -> Option<&str> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        return match &authority[end + 1..] {
            "" => Some(&authority[..=end]),
            rest => valid_port(rest.strip_prefix(':')?).then_some(&authority[..=end]),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => valid_port(port).then_some(host),
        None => Some(authority),
    }
}

fn valid_port(p: &str) -> bool {
    (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `host` is `domain` or a name under it, comparing ASCII case-insensitively; a
/// trailing dot on `host` is ignored.
pub(crate) fn is_under(host: &str, domain: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let Some(cut) = host.len().checked_sub(domain.len()) else {
        return false;
    };
    host.is_char_boundary(cut)
        && host[cut..].eq_ignore_ascii_case(domain)
        && (cut == 0 || host.as_bytes()[cut - 1] == b'.')
}

/// The first of `domains` that `host` is or is under.
pub(crate) fn under_any<'d>(domains: &'d [String], host: &str) -> Option<&'d str> {
    domains
        .iter()
        .map(String::as_str)
        .find(|d| is_under(host, d))
}

/// The authority a request names: the URI's (HTTP/2, absolute-form), else the `Host`
/// header; `None` when there is neither (or `Host` is not text).
pub(crate) fn request_authority<B>(req: &Request<B>) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req.headers().get(HOST).and_then(|v| v.to_str().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_rule() {
        for good in [
            "a",
            "example.com",
            "EXAMPLE.com",
            "a-b.c",
            "1.2.3.4",
            "xn--fiqs8s.cn",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for (bad, reason) in [
            ("", "empty"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            (
                "a_b.example.com",
                "only letters, digits, '-' and '.' (use the punycode form of IDNs)",
            ),
            (
                "a b",
                "only letters, digits, '-' and '.' (use the punycode form of IDNs)",
            ),
            ("-a.b", "a label starts or ends with '-'"),
            ("a-.b", "a label starts or ends with '-'"),
        ] {
            assert_eq!(check(bad), Err(reason), "{bad:?}");
        }
        assert_eq!(
            check(&"a".repeat(64)),
            Err("label longer than 63 characters")
        );
        assert_eq!(
            check(&vec!["a".repeat(63); 4].join(".")),
            Err("longer than 253 characters")
        );
        assert_eq!(normalize("Example.COM."), Ok("example.com".to_string()));
        for sent in ["a_b.example.com", "-a.b", "a-.b", "_dmarc.example.com"] {
            assert_eq!(check_requested(sent), Ok(()), "{sent}");
        }
        for bad in ["a b", "a..b", "a/b", "a@b", ""] {
            assert!(check_requested(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports_and_brackets() {
        assert_eq!(strip_port("a.b:80"), Some("a.b"));
        assert_eq!(strip_port("a.b"), Some("a.b"));
        assert_eq!(strip_port("[::1]:80"), Some("[::1]"));
        assert_eq!(strip_port("[::1]"), Some("[::1]"));
        // Only the last port is taken off; what is left is no host name.
        assert_eq!(strip_port("a.b:80:80"), Some("a.b:80"));
        for bad in ["a.b:", "a.b:http", "a.b:123456", "[::1", "[::1]80"] {
            assert_eq!(strip_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn under_compares_whole_labels() {
        assert!(is_under("example.com", "example.com"));
        assert!(is_under("WWW.Example.com.", "example.com"));
        assert!(!is_under("notexample.com", "example.com"));
        assert!(!is_under("com", "example.com"));
        let domains = ["example.net".to_string(), "example.com".to_string()];
        assert_eq!(under_any(&domains, "a.example.com"), Some("example.com"));
        assert_eq!(under_any(&domains, "example.org"), None);
    }
}
