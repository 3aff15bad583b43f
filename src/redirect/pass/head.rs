//! The own pass-through's message heads, as bytes: the request the origin gets, and the
//! response head the client gets.
//!
//! The origin's request is the client's, header for header in the order it came, with the
//! changes the hyper pass-through makes ([`crate::proxy::headers`]): hop-by-hop fields
//! removed (those RFC 9110 lists and those `Connection` names), `Host` naming the origin,
//! `X-Forwarded-For` appended to (nginx's `$proxy_add_x_forwarded_for`), `X-Forwarded-Proto`
//! and `X-Forwarded-Host` set, `Forwarded` (RFC 7239) appended to; each set field takes the
//! place of the client's first one of its name, or comes last. Field names the client
//! wrote keep their letter case (nginx passes them so); fields added are lower case.
//!
//! The client's response head is the origin's, its reason phrase and fields as they came,
//! without the hop-by-hop ones and `Alt-Svc` (it would advertise the origin's other
//! endpoints for the name the client used), plus what hyper adds: `transfer-encoding:
//! chunked` for a chunked body (relayed as it came), `connection: close` when the
//! connection closes after it, and `date` if the origin sent none. It does not read or
//! write sockets ([`super`]).

use std::net::SocketAddr;

use crate::http::framing::Framing;
use crate::http::http1::{RequestHead, write_date};
use crate::http::request::{RequestParts, host_text};
use crate::proxy::ForwardHeaders;
use crate::proxy::headers::{HOP_BY_HOP, forwarded, x_forwarded_for};

/// Whether a field of this name is dropped on the way through: hop-by-hop, or named by
/// one of `connection`'s tokens.
fn hop_by_hop(name: &[u8], connection: &[&[u8]]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_str().as_bytes()))
        || connection.iter().any(|t| name.eq_ignore_ascii_case(t))
}

/// The tokens of the `Connection` fields among `fields` that are text.
fn connection_tokens<'a>(fields: &[httparse::Header<'a>]) -> Vec<&'a [u8]> {
    let mut tokens = Vec::new();
    for h in fields {
        if h.name.eq_ignore_ascii_case("connection") && host_text(h.value).is_some() {
            tokens.extend(
                h.value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    tokens
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The fields the pass-through sets, in the order they come when the client sent none.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Set {
    Host,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Forwarded,
}

const SET: [(Set, &str); 5] = [
    (Set::Host, "host"),
    (Set::XForwardedFor, "x-forwarded-for"),
    (Set::XForwardedProto, "x-forwarded-proto"),
    (Set::XForwardedHost, "x-forwarded-host"),
    (Set::Forwarded, "forwarded"),
];

/// Appends the origin's request for `head`, which `peer` sent over plain HTTP: `host` is
/// the origin's `Host` value, `send` which forwarding fields it gets. The body, if any,
/// follows as the client framed it (`Content-Length` is the client's; a chunked body says
/// so in a field of its own, the client's `Transfer-Encoding` being hop-by-hop).
pub(crate) fn origin_request(
    out: &mut Vec<u8>,
    head: &RequestHead<'_>,
    host: &[u8],
    peer: SocketAddr,
    send: ForwardHeaders,
) {
    out.extend_from_slice(head.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path_and_query().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let fields = head.fields();
    let connection = connection_tokens(fields);
    let sets = |which: Set| match which {
        Set::Host => true,
        Set::XForwardedFor | Set::XForwardedProto | Set::XForwardedHost => send.x_forwarded,
        Set::Forwarded => send.forwarded,
    };
    let mut written = [false; SET.len()];
    for h in fields {
        let name = h.name.as_bytes();
        if hop_by_hop(name, &connection) {
            continue;
        }
        match SET
            .iter()
            .position(|(w, n)| sets(*w) && name.eq_ignore_ascii_case(n.as_bytes()))
        {
            Some(i) => {
                if !written[i] {
                    written[i] = true;
                    set_field(out, SET[i].0, name, head, host, peer);
                }
            }
            None => field(out, name, h.value),
        }
    }
    for (i, (which, name)) in SET.iter().enumerate() {
        if sets(*which) && !written[i] {
            set_field(out, *which, name.as_bytes(), head, host, peer);
        }
    }
    if head.body() == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the field `which` under `name`.
fn set_field(
    out: &mut Vec<u8>,
    which: Set,
    name: &[u8],
    head: &RequestHead<'_>,
    host: &[u8],
    peer: SocketAddr,
) {
    let public = head.authority();
    match which {
        Set::Host => field(out, name, host),
        Set::XForwardedProto => field(out, name, b"http"),
        Set::XForwardedHost => field(out, name, public.as_bytes()),
        Set::XForwardedFor => {
            // The first field's value, as `HeaderMap::get` reads it, appended to.
            let prior = head
                .fields()
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("x-forwarded-for"))
                .and_then(|h| host_text(h.value));
            field(out, name, x_forwarded_for(prior, peer).as_bytes());
        }
        Set::Forwarded => {
            let prior = head
                .fields()
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("forwarded"))
                .filter_map(|h| host_text(h.value));
            field(
                out,
                name,
                forwarded(prior, Some(peer), "http", public).as_bytes(),
            );
        }
    }
}

/// What the origin's response head says, once written for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// How the body the client gets is framed (as the origin framed it).
    pub body: Framing,
    /// Whether the origin keeps the connection open after it.
    pub origin_keeps: bool,
}

/// Why an origin's response head is refused (a 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadResponse {
    #[error("conflicting or malformed Content-Length")]
    Length,
}

/// Appends the client's response head for `resp`, the origin's answer to a request (to
/// `HEAD` if `is_head`) after which the client's connection stays open if `keep_alive`
/// (and the body's framing allows).
pub(crate) fn client_response(
    out: &mut Vec<u8>,
    resp: &httparse::Response<'_, '_>,
    is_head: bool,
    keep_alive: bool,
) -> Result<Response, BadResponse> {
    let status = resp.code.unwrap_or(0);
    let fields = &*resp.headers;
    let mut length = None;
    let mut chunked = None;
    let mut date = false;
    let mut origin_keeps = resp.version == Some(1);
    for h in fields {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_length(h.value).ok_or(BadResponse::Length)?;
            if length.is_some_and(|l| l != n) {
                return Err(BadResponse::Length);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding decides (RFC 9112 6.3): chunked, or a body until close.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    origin_keeps = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && resp.version == Some(0) {
                    origin_keeps = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"date") {
            date = true;
        }
    }
    let bodyless = is_head || status == 204 || status == 304 || (100..200).contains(&status);
    let body = match (bodyless, chunked, length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked,
        (false, Some(false), _) => Framing::UntilClose,
        (false, None, Some(n)) => Framing::Length(n),
        (false, None, None) => Framing::UntilClose,
    };
    let keep_alive = keep_alive && body != Framing::UntilClose;

    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(out, status);
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let connection = connection_tokens(fields);
    for h in fields {
        let name = h.name.as_bytes();
        if hop_by_hop(name, &connection)
            || name.eq_ignore_ascii_case(b"alt-svc")
            // A length beside a transfer coding is not the body's (RFC 9112 6.3).
            || (chunked.is_some() && name.eq_ignore_ascii_case(b"content-length"))
        {
            continue;
        }
        field(out, name, h.value);
    }
    if body == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !date {
        out.extend_from_slice(b"date: ");
        write_date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Response {
        status,
        body,
        origin_keeps,
    })
}

/// A status code in three digits.
fn push_status(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(&[
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]);
}

/// A `Content-Length` value: digits (at most 18), optional whitespace around.
fn parse_length(value: &[u8]) -> Option<u64> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_response(raw: &[u8]) -> (httparse::Response<'static, 'static>, usize) {
        let raw: &'static [u8] = Box::leak(raw.to_vec().into_boxed_slice());
        let headers = Box::leak(Box::new([httparse::EMPTY_HEADER; 32]));
        let mut resp = httparse::Response::new(headers);
        let len = match resp.parse(raw).expect("a response") {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => panic!("partial"),
        };
        (resp, len)
    }

    /// The client's head for `raw` with the date cut out.
    fn client(
        raw: &[u8],
        is_head: bool,
        keep_alive: bool,
    ) -> (String, Result<Response, BadResponse>) {
        let (resp, _) = parse_response(raw);
        let mut out = Vec::new();
        let r = client_response(&mut out, &resp, is_head, keep_alive);
        let text = String::from_utf8(out).expect("text");
        let text = match text.find("date: ") {
            Some(i) if !raw.windows(5).any(|w| w.eq_ignore_ascii_case(b"date:")) => {
                format!("{}D{}", &text[..i + 6], &text[i + 6 + 29..])
            }
            _ => text,
        };
        (text, r)
    }

    #[test]
    fn the_clients_response_head_is_the_origins_without_hop_by_hop_fields() {
        let (text, r) = client(
            b"HTTP/1.1 203 Fine By Me\r\nServer: o\r\nConnection: keep-alive, X-Hop\r\n\
              X-Hop: 1\r\nKeep-Alive: timeout=5\r\nAlt-Svc: h3=\":443\"\r\nContent-Length: 5\r\n\
              Date: Tue, 08 Dec 2026 01:00:00 GMT\r\n\r\n",
            false,
            true,
        );
        assert_eq!(
            text,
            "HTTP/1.1 203 Fine By Me\r\nServer: o\r\nContent-Length: 5\r\n\
             Date: Tue, 08 Dec 2026 01:00:00 GMT\r\n\r\n"
        );
        assert_eq!(
            r,
            Ok(Response {
                status: 203,
                body: Framing::Length(5),
                origin_keeps: true
            })
        );
        // Chunked, for a client closing after it, the origin closing too, without a date.
        let (text, r) = client(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\
              Connection: close\r\n\r\n",
            false,
            false,
        );
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\ndate: D\r\n\r\n"
        );
        assert_eq!(
            r,
            Ok(Response {
                status: 200,
                body: Framing::Chunked,
                origin_keeps: false
            })
        );
        // No length: until the origin closes, and the client's connection closes after.
        let (text, r) = client(b"HTTP/1.0 200 OK\r\nX: y\r\n\r\n", false, true);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nX: y\r\nconnection: close\r\ndate: D\r\n\r\n"
        );
        assert_eq!(
            r.map(|r| (r.body, r.origin_keeps)),
            Ok((Framing::UntilClose, false))
        );
        // HEAD, 304: no body whatever the length says.
        for (raw, head) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"[..], true),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
                false,
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ] {
            assert_eq!(
                client(raw, head, true).1.map(|r| r.body),
                Ok(Framing::Empty)
            );
        }
        // Lengths that disagree or are not numbers.
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: +7\r\n\r\n",
        ] {
            assert_eq!(client(raw, false, true).1, Err(BadResponse::Length));
        }
        assert_eq!(
            client(
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n",
                false,
                true
            )
            .1
            .map(|r| r.body),
            Ok(Framing::Length(7))
        );
    }
}
