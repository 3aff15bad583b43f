//! Redirect rules: which request host goes where, and the redirect response itself.
//!
//! This module owns the pure part of the redirector: reading the host a request names
//! (port, letter case and trailing dot ignored), finding the rule that covers it, and
//! building the `Location` from the rule's target domain and the request's raw path and
//! query. The target host is always the rule's: only the labels *under* the covered domain
//! come from the request, and those are checked to be plain DNS labels, so a request can
//! never choose where it is sent. It does not classify clients or talk to the network.

use std::cell::RefCell;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::config::RedirectRuleConfig;
use super::metrics::{RedirectMetrics, RuleCounters};
use crate::http::response::plain;
use crate::proxy::host;

/// One rule, ready for the hot path.
#[derive(Debug)]
pub(crate) struct Rule {
    /// Lower case, no trailing dot.
    pub from: String,
    pub to: String,
    /// Clients in these lines are redirected.
    pub lines: Vec<String>,
    scheme: &'static str,
    status: StatusCode,
    cache_control: HeaderValue,
    /// The redirect page up to the link's `href` value; it depends on the status only.
    page_head: Bytes,
    /// Its responses, by line and status class.
    pub counters: Arc<RuleCounters>,
}

impl Rule {
    pub(crate) fn redirects(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }
}

/// A request host a rule covers: the rule, and the host's labels under the rule's `from`
/// (`www.` for `www.example.com` under `example.com`, empty for `example.com` itself),
/// in the letter case the client sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Covered<'a> {
    pub rule: &'a Rule,
    pub prefix: &'a str,
}

/// Why a request's host cannot be looked up at all (as opposed to naming a host no rule
/// covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostError {
    #[error("the request names no host")]
    Missing,
    #[error("the request's host is not a valid host name")]
    Malformed,
}

/// What a request's host is to the rules.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup<'a> {
    Covered(Covered<'a>),
    /// A well-formed name or an address literal no rule covers.
    NotCovered,
}

/// The rules, longest `from` first so that `api.example.com` wins over `example.com`.
#[derive(Debug)]
pub(crate) struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// The rules of `config`, counting into `metrics` (for `lines` lines).
    pub(crate) fn new(
        config: &[RedirectRuleConfig],
        metrics: &RedirectMetrics,
        lines: usize,
    ) -> Rules {
        let counters = metrics.rule_counters(config.iter().map(|r| r.from.as_str()), lines);
        let mut rules: Vec<Rule> = config
            .iter()
            .zip(counters)
            .map(|(r, counters)| Rule {
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
                page_head: page_head(r.status),
                counters,
            })
            .collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.from.len()));
        Rules { rules }
    }

    /// The rule covering `authority` (a `Host` value or URI authority: `name[:port]`,
    /// `[v6]:port`, `v4:port`).
    pub(crate) fn lookup<'a>(&'a self, authority: &'a str) -> Result<Lookup<'a>, HostError> {
        if authority.is_empty() {
            return Err(HostError::Missing);
        }
        let host = host::strip_port(authority).ok_or(HostError::Malformed)?;
        // An IPv4 literal ends in a digit; a name usually does not, and is not parsed.
        let ends_in_digit = host.as_bytes().last().is_some_and(u8::is_ascii_digit);
        if host.starts_with('[') || (ends_in_digit && host.parse::<std::net::Ipv4Addr>().is_ok()) {
            return Ok(Lookup::NotCovered);
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        if host::check_requested(host).is_err() {
            return Err(HostError::Malformed);
        }
        for rule in &self.rules {
            if host::is_under(host, &rule.from) {
                // A checked name is ASCII: any byte offset is a boundary.
                let prefix = &host[..host.len() - rule.from.len()];
                return Ok(Lookup::Covered(Covered { rule, prefix }));
            }
        }
        Ok(Lookup::NotCovered)
    }
}

/// Why a request target cannot be carried into a `Location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("the request target is not a path")]
    NotAPath,
    #[error("the request target contains control characters or spaces")]
    ControlCharacter,
}

/// The redirect page up to the link: `<!DOCTYPE html>…<a href="`.
fn page_head(status: u16) -> Bytes {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let reason = status.canonical_reason().unwrap_or("Redirect");
    Bytes::from(format!(
        "<!DOCTYPE html>\n<html><head><title>{} {reason}</title></head><body><h1>{reason}</h1><p><a href=\"",
        status.as_str()
    ))
}

/// Between the two copies of the link in the redirect page, and after them.
const PAGE_MIDDLE: &[u8] = b"\">";
const PAGE_TAIL: &[u8] = b"</a></p></body></html>\n";

/// Bigger than any redirect (`Location` plus page); the buffer they are made in is reused
/// from the start once the responses made in it have been sent.
const SCRATCH_SIZE: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Appends `scheme://` + the request's labels under the rule's `from` (lower-cased) + the
/// rule's `to` + the request's path and query exactly as sent.
pub(crate) fn write_location(
    covered: Covered<'_>,
    path_and_query: &str,
    out: &mut BytesMut,
) -> Result<(), TargetError> {
    if !path_and_query.starts_with('/') {
        return Err(TargetError::NotAPath);
    }
    // hyper already refuses these in HTTP/1 request lines; HTTP/2 pseudo-headers and
    // future parsers get the same treatment here, since they would end the header.
    if path_and_query.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(TargetError::ControlCharacter);
    }
    let rule = covered.rule;
    out.put_slice(rule.scheme.as_bytes());
    out.put_slice(b"://");
    out.extend(covered.prefix.bytes().map(|b| b.to_ascii_lowercase()));
    out.put_slice(rule.to.as_bytes());
    out.put_slice(path_and_query.as_bytes());
    Ok(())
}

/// The redirect response for a request for `path_and_query` under `covered`: `Location`,
/// `Cache-Control: private, max-age=N` (the answer depends on the client's address, which
/// no shared cache keys on), and a short HTML page with the link for clients that do not
/// follow redirects. Header value and page are cut from one per-thread buffer.
pub(crate) fn redirect(
    covered: Covered<'_>,
    path_and_query: &str,
) -> Result<Response<Bytes>, TargetError> {
    let rule = covered.rule;
    let (location, page) = SCRATCH.with_borrow_mut(|buf| {
        let location_len =
            rule.scheme.len() + 3 + covered.prefix.len() + rule.to.len() + path_and_query.len();
        // The link is written twice, HTML-escaped (at most 6 bytes for 1).
        let needed = location_len * 13 + rule.page_head.len() + PAGE_MIDDLE.len() + PAGE_TAIL.len();
        if buf.capacity() < needed {
            buf.reserve(needed.max(SCRATCH_SIZE));
        }
        write_location(covered, path_and_query, buf)?;
        let location = buf.split().freeze();
        buf.put_slice(&rule.page_head);
        // Escaped only if it has to be: usually it need not (`'` and `&` are allowed in
        // a path and query, but rare).
        let link = |buf: &mut BytesMut| {
            if location.iter().any(|&b| needs_html_escape(b)) {
                html_escape_into(buf, &location);
            } else {
                buf.put_slice(&location);
            }
        };
        link(buf);
        buf.put_slice(PAGE_MIDDLE);
        link(buf);
        buf.put_slice(PAGE_TAIL);
        Ok((location, buf.split().freeze()))
    })?;
    // Built from validated labels and a target checked above for control characters; a
    // failure here would be a bug, and a 500 is then the honest answer.
    let Ok(location) = HeaderValue::from_maybe_shared(location) else {
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(b"geoline redirect: cannot build the Location header\n"),
        ));
    };
    // Room for these and the two hyper adds (content-length, date) without growing.
    let mut headers = HeaderMap::with_capacity(5);
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, rule.cache_control.clone());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let mut resp = Response::new(page);
    *resp.status_mut() = rule.status;
    *resp.headers_mut() = headers;
    Ok(resp)
}

fn needs_html_escape(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')
}

fn html_escape_into(out: &mut BytesMut, s: &[u8]) {
    let mut rest = s;
    while let Some(i) = rest.iter().position(|&b| needs_html_escape(b)) {
        out.put_slice(&rest[..i]);
        out.put_slice(match rest[i] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            _ => b"&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.put_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redirect::config::TargetScheme;

    fn rules() -> Rules {
        let rule = |from: &str, to: &str, status| RedirectRuleConfig {
            from: from.into(),
            to: to.into(),
            scheme: TargetScheme::Https,
            lines: vec!["china".into()],
            status,
            max_age_secs: 600,
        };
        Rules::new(
            &[
                rule("example.com", "example.cn", 301),
                rule("api.example.com", "api.example.net", 308),
            ],
            &RedirectMetrics::default(),
            2,
        )
    }

    fn location(c: Covered<'_>, path: &str) -> Result<String, TargetError> {
        let mut out = BytesMut::new();
        write_location(c, path, &mut out)?;
        Ok(String::from_utf8(out.to_vec()).expect("UTF-8"))
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
            "example..com",
            ".example.com",
            "[::1",
        ] {
            assert_eq!(r.lookup(host).err(), Some(HostError::Malformed), "{host}");
        }
        assert_eq!(r.lookup("").err(), Some(HostError::Missing));
        // Clients send names a configured rule could not hold; they are still served.
        assert!(
            matches!(r.lookup("my_host.example.com"), Ok(Lookup::Covered(c)) if c.prefix == "my_host.")
        );
        let longest = format!("{}.example.com", "a".repeat(63));
        assert!(matches!(r.lookup(&longest), Ok(Lookup::Covered(_))));
        let too_long = format!("{}.example.com", "a".repeat(64));
        assert_eq!(r.lookup(&too_long).err(), Some(HostError::Malformed));
        // Ending in a digit without being an address is a name like any other.
        assert!(matches!(
            r.lookup("v2.example.com9"),
            Ok(Lookup::NotCovered)
        ));
        assert!(matches!(r.lookup("1.2.3.4:80"), Ok(Lookup::NotCovered)));
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
    fn redirect_page_escapes_the_link() {
        let r = rules();
        let Ok(Lookup::Covered(c)) = r.lookup("WWW.api.example.com") else {
            panic!("covered")
        };
        let resp = redirect(c, "/a?b=1&c='<x>\"").expect("redirect");
        let location = "https://www.api.example.net/a?b=1&c='<x>\"";
        assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(resp.headers()[header::LOCATION], location);
        assert_eq!(
            resp.headers()[header::CACHE_CONTROL],
            "private, max-age=600"
        );
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let link = "https://www.api.example.net/a?b=1&amp;c=&#39;&lt;x&gt;&quot;";
        assert_eq!(
            resp.body(),
            &format!(
                "<!DOCTYPE html>\n<html><head><title>308 Permanent Redirect</title></head>\
                 <body><h1>Permanent Redirect</h1><p><a href=\"{link}\">{link}</a></p></body></html>\n"
            )
        );
        // The per-thread buffer is cut, not overwritten: a second redirect leaves the
        // first one's bytes alone.
        let other = redirect(c, "/other").expect("redirect");
        assert_eq!(resp.headers()[header::LOCATION], location);
        assert_eq!(
            other.headers()[header::LOCATION],
            "https://www.api.example.net/other"
        );
    }
}
