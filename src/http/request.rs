//! What a front-end reads of a request head, whichever parser read it: hyper's
//! [`http::Request`], or the listener's own HTTP/1.1 parser on plain connections
//! ([`super::http1::RequestHead`]).
//!
//! This module owns the few questions a handler asks before it decides (host, path,
//! method, version, a header's values) and answers them the same way for both, so that a
//! request gets the same answer whichever path read it. It does not decide anything.

use http::header::HeaderName;
use http::{Method, Request, Version};

use super::client_addr::HeaderValues;
use crate::proxy::host;

/// A request head as a handler reads it.
pub(crate) trait RequestParts: HeaderValues {
    /// The host the request names: the URI's authority (HTTP/2, absolute-form), else the
    /// first `Host` field if it is visible ASCII; empty when there is neither.
    fn authority(&self) -> &str;
    /// Path and query exactly as sent (`/` when the target has neither).
    fn path_and_query(&self) -> &str;
    /// The path alone.
    fn path(&self) -> &str;
    fn method(&self) -> &Method;
    fn version(&self) -> Version;
}

impl<B> HeaderValues for Request<B> {
    fn values<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a {
        HeaderValues::values(self.headers(), name)
    }
}

impl<B> RequestParts for Request<B> {
    fn authority(&self) -> &str {
        host::request_authority(self).unwrap_or("")
    }

    fn path_and_query(&self) -> &str {
        self.uri().path_and_query().map_or("/", |p| p.as_str())
    }

    fn path(&self) -> &str {
        self.uri().path()
    }

    fn method(&self) -> &Method {
        Request::method(self)
    }

    fn version(&self) -> Version {
        Request::version(self)
    }
}

/// A `Host` value as [`http::HeaderValue::to_str`] reads it: text only if every byte is
/// visible ASCII or a tab.
pub(crate) fn host_text(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_text_is_what_header_values_call_text() {
        for v in [&b"example.com"[..], b"a\tb", b"", b"a b:80"] {
            let hv = http::HeaderValue::from_bytes(v).expect("value");
            assert_eq!(host_text(v), hv.to_str().ok(), "{v:?}");
        }
        // obs-text: a header value, but not text (DEL is no header value at all).
        assert_eq!(host_text(b"a\x7fb"), None);
        for v in [&b"\xc3\xa9.example"[..], b"\x80"] {
            let hv = http::HeaderValue::from_bytes(v).expect("value");
            assert_eq!(host_text(v), None);
            assert!(hv.to_str().is_err());
        }
    }
}
