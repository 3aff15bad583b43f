//! Redirect rules: which request host goes where, and the redirect response itself.
//!
//! This module owns the pure part of the redirector: reading the host a request names
//! (port, letter case and trailing dot ignored), finding the rule that covers it, and
//! building the `Location` from the rule's target domain and the request's raw path and
//! query. The target host is always the rule's: only the labels *under* the covered domain
//! come from the request, and those are checked to be plain DNS labels, so a request can
//! never choose where it is sent. It does not classify clients or talk to the network.

use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::config::RedirectRuleConfig;

/// One rule, ready for the hot path.
#[derive(Debug)]
pub struct Rule {
    /// Lower case, no trailing dot.
    pub from: String,
    pub to: String,
    /// Clients in these lines are redirected.
    pub lines: Vec<String>,
    scheme: &'static str,
    status: StatusCode,
    cache_control: HeaderValue,
}

impl Rule {
    pub fn redirects(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }
}

/// A request host a rule covers: the rule, and the host's labels under the rule's `from`
/// (`www.` for `www.example.com` under `example.com`, empty for `example.com` itself),
/// in the letter case the client sent.
#[derive(Debug, Clone, Copy)]
pub struct Covered<'a> {
    pub rule: &'a Rule,
    pub prefix: &'a str,
}

/// Why a request's host cannot be looked up at all (as opposed to naming a host no rule
/// covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the request names no host")]
    Missing,
    #[error("the request's host is not a valid host name")]
    Malformed,
}

/// What a request's host is to the rules.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Covered(Covered<'a>),
    /// A well-formed name or an address literal no rule covers.
    NotCovered,
}

/// The rules, longest `from` first so that `api.example.com` wins over `example.com`.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    pub fn new(config: &[RedirectRuleConfig]) -> Rules {
        let mut rules: Vec<Rule> = config
            .iter()
            .map(|r| Rule {
                from: r.from.clone(),
                to: r.to.clone(),
                lines: r.lines.clone(),
                scheme: r.scheme.as_str(),
                status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
                // Digits and ASCII only: always a valid header value.
                cache_control: HeaderValue::from_str(&format!(
                    "private, max-age={}",
                    r.max_age_secs
                ))
                .unwrap_or(HeaderValue::from_static("private")),
            })
            .collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.from.len()));
        Rules { rules }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The rule covering `authority` (a `Host` value or URI authority: `name[:port]`,
    /// `[v6]:port`, `v4:port`).
    pub fn lookup<'a>(&'a self, authority: &'a str) -> Result<Lookup<'a>, HostError> {
        let host = strip_port(authority)?;
        if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
            return Ok(Lookup::NotCovered);
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        if !valid_name(host) {
            return Err(HostError::Malformed);
        }
        for rule in &self.rules {
            let n = rule.from.len();
            if host.len() >= n && host[host.len() - n..].eq_ignore_ascii_case(&rule.from) {
                let prefix = &host[..host.len() - n];
                if prefix.is_empty() || prefix.ends_with('.') {
                    return Ok(Lookup::Covered(Covered { rule, prefix }));
                }
            }
        }
        Ok(Lookup::NotCovered)
    }
}

/// `host` of `host[:port]`. An IPv6 literal keeps its brackets.
fn strip_port(authority: &str) -> Result<&str, HostError> {
    if authority.is_empty() {
        return Err(HostError::Missing);
    }
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or(HostError::Malformed)?;
        let rest = &authority[end + 1..];
        if !(rest.is_empty() || valid_port(rest.strip_prefix(':').ok_or(HostError::Malformed)?)) {
            return Err(HostError::Malformed);
        }
        return Ok(&authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if valid_port(port) => Ok(host),
        Some(_) => Err(HostError::Malformed),
        None => Ok(authority),
    }
}

fn valid_port(p: &str) -> bool {
    (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1 to 63, at most 253 in all:
/// nothing that could end the authority of the `Location` built from it.
fn valid_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Why a request target cannot be carried into a `Location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the request target is not a path")]
    NotAPath,
    #[error("the request target contains control characters or spaces")]
    ControlCharacter,
}

/// `scheme://` + the request's labels under the rule's `from` (lower-cased) + the rule's
/// `to` + the request's path and query exactly as sent.
pub fn location(covered: Covered<'_>, path_and_query: &str) -> Result<String, TargetError> {
    if !path_and_query.starts_with('/') {
        return Err(TargetError::NotAPath);
    }
    // hyper already refuses these in HTTP/1 request lines; HTTP/2 pseudo-headers and
    // future parsers get the same treatment here, since they would end the header.
    if path_and_query.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(TargetError::ControlCharacter);
    }
    let rule = covered.rule;
    let mut out = String::with_capacity(
        rule.scheme.len() + 3 + covered.prefix.len() + rule.to.len() + path_and_query.len(),
    );
    out.push_str(rule.scheme);
    out.push_str("://");
    for c in covered.prefix.chars() {
        out.push(c.to_ascii_lowercase());
    }
    out.push_str(&rule.to);
    out.push_str(path_and_query);
    Ok(out)
}

/// The redirect response: `Location`, `Cache-Control: private, max-age=N` (the answer
/// depends on the client's address, which no shared cache keys on), and a short HTML page
/// with the link for clients that do not follow redirects.
pub fn redirect_response(rule: &Rule, location: &str) -> Response<Body> {
    // Built from validated labels and a target hyper parsed, checked above for control
    // characters; a failure here would be a bug, and a 500 is then the honest answer.
    let Ok(location_value) = HeaderValue::from_str(location) else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "geoline redirect: cannot build the Location header\n",
        );
    };
    let reason = rule.status.canonical_reason().unwrap_or("Redirect");
    let mut body = String::with_capacity(160 + 2 * location.len());
    body.push_str("<!DOCTYPE html>\n<html><head><title>");
    body.push_str(rule.status.as_str());
    body.push(' ');
    body.push_str(reason);
    body.push_str("</title></head><body><h1>");
    body.push_str(reason);
    body.push_str("</h1><p><a href=\"");
    html_escape_into(&mut body, location);
    body.push_str("\">");
    html_escape_into(&mut body, location);
    body.push_str("</a></p></body></html>\n");

    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = rule.status;
    let headers = resp.headers_mut();
    headers.insert(header::LOCATION, location_value);
    headers.insert(header::CACHE_CONTROL, rule.cache_control.clone());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// A short plain-text answer that no cache keeps.
pub fn plain(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.into()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    html_escape_into(&mut out, s);
    out
}

fn html_escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetScheme;

    fn rules() -> Rules {
        let rule = |from: &str, to: &str, status| RedirectRuleConfig {
            from: from.into(),
            to: to.into(),
            scheme: TargetScheme::Https,
            lines: vec!["china".into()],
            status,
            max_age_secs: 600,
        };
        Rules::new(&[
            rule("example.com", "example.cn", 301),
            rule("api.example.com", "api.example.net", 308),
        ])
    }

    fn loc(rules: &Rules, host: &str, path: &str) -> String {
        match rules.lookup(host) {
            Ok(Lookup::Covered(c)) => location(c, path).expect("location"),
            other => panic!("{host}: {other:?}"),
        }
    }

    #[test]
    fn host_forms() {
        let r = rules();
        assert_eq!(loc(&r, "example.com", "/"), "https://example.cn/");
        assert_eq!(loc(&r, "EXAMPLE.Com.", "/a"), "https://example.cn/a");
        assert_eq!(loc(&r, "example.com:8080", "/a"), "https://example.cn/a");
        assert_eq!(loc(&r, "Www.Example.com", "/"), "https://www.example.cn/");
        assert_eq!(
            loc(&r, "a.b.example.com.:443", "/"),
            "https://a.b.example.cn/"
        );
        // The longest rule wins, whatever the order in the file.
        assert_eq!(
            loc(&r, "v1.api.example.com", "/x"),
            "https://v1.api.example.net/x"
        );
    }

    #[test]
    fn uncovered_and_malformed_hosts() {
        let r = rules();
        for host in [
            "notexample.com",
            "example.com.au",
            "example.cn",
            "[::1]:80",
            "127.0.0.1",
        ] {
            assert!(matches!(r.lookup(host), Ok(Lookup::NotCovered)), "{host}");
        }
        for host in [
            "evil.com/.example.com",
            "evil.com?.example.com",
            "a@example.com",
            "exa mple.com",
            "example.com:80:80",
            "example.com:http",
            "..example.com",
            "[::1",
        ] {
            assert_eq!(r.lookup(host).err(), Some(HostError::Malformed), "{host}");
        }
        assert_eq!(r.lookup("").err(), Some(HostError::Missing));
    }

    #[test]
    fn path_and_query_kept_byte_for_byte() {
        let r = rules();
        let p = "/a%2Fb/%E4%B8%AD%E6%96%87?q=%2F&x=1+2&&y=%zz";
        assert_eq!(loc(&r, "example.com", p), format!("https://example.cn{p}"));
        let raw = "/中文?名=值";
        assert_eq!(
            loc(&r, "example.com", raw),
            format!("https://example.cn{raw}")
        );
    }

    #[test]
    fn bad_targets_refused() {
        let r = rules();
        let Ok(Lookup::Covered(c)) = r.lookup("example.com") else {
            panic!("covered")
        };
        assert_eq!(location(c, "*"), Err(TargetError::NotAPath));
        assert_eq!(
            location(c, "/a\r\nSet-Cookie: x=1"),
            Err(TargetError::ControlCharacter)
        );
        assert_eq!(location(c, "/a b"), Err(TargetError::ControlCharacter));
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            html_escape(r#"/a?b=1&c="<x>'"#),
            "/a?b=1&amp;c=&quot;&lt;x&gt;&#39;"
        );
    }
}
