//! What crosses the proxy and what does not (RFC 9110 section 7.6.1): hop-by-hop fields
//! are dropped both ways, the framing is always ours (the request is re-framed with a
//! Content-Length after buffering, the response with its own length or chunked), and the
//! `X-Forwarded-*` and `Via` fields are set here.

use std::io::Write;

use uring_common::http::serialize::{reason_phrase, write_decimal};
use uring_common::http::{RequestHead, ResponseFraming, ResponseHead, Version};

use crate::response::SERVER_NAME;

/// Who sent the request: `X-Forwarded-For` and `X-Forwarded-Proto` come from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub peer: Option<std::net::IpAddr>,
    /// The peer's full address and the listener's (`REMOTE_PORT`, `SERVER_ADDR`,
    /// `SERVER_PORT` for uwsgi upstreams).
    pub peer_addr: Option<std::net::SocketAddr>,
    pub local: Option<std::net::SocketAddr>,
    /// The client is on a TLS listener.
    pub tls: bool,
}

/// `Via` value we add, both ways.
const VIA: &[u8] = b"1.1 uring-server";

/// Fields that describe one hop, never forwarded (plus any named by `Connection`).
/// Content-Length and Transfer-Encoding are the framing we redo; Expect is answered by us
/// (the body is buffered before the upstream sees the request).
fn is_hop_by_hop(name: &str) -> bool {
    const HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || (name.len() >= 6 && name[..6].eq_ignore_ascii_case("proxy-"))
}

/// Whether `name` is listed in one of the `Connection` fields of `headers`.
fn named_by_connection(headers: &[httparse::Header<'_>], name: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
}

fn drop_field(headers: &[httparse::Header<'_>], name: &str) -> bool {
    is_hop_by_hop(name) || named_by_connection(headers, name)
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A field of the upstream's response, with each obs-fold (a line end followed by SP or
/// HTAB, which common's liberal response parser keeps inside the value) made spaces:
/// RFC 9112 section 5.2 has a proxy "replace each received obs-fold with one or more SP
/// octets" before forwarding, and the line end a fold carries may be a bare LF, which
/// would reach the client as one.
fn unfolded_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    let start = out.len() + name.len() + 2;
    field(out, name, value);
    let end = out.len() - 2;
    for b in &mut out[start..end] {
        if matches!(*b, b'\r' | b'\n') {
            *b = b' ';
        }
    }
}

/// Fields in which a client could claim another address, scheme or host than its own
/// (`X-Forwarded-*`, `X-Real-IP`, RFC 7239's `Forwarded`): an app behind us reads them
/// as ours, so they pass only with `--trust-forwarded`.
fn is_client_address_field(name: &str) -> bool {
    (name.len() > 12 && name[..12].eq_ignore_ascii_case("x-forwarded-"))
        || name.eq_ignore_ascii_case("x-real-ip")
        || name.eq_ignore_ascii_case("forwarded")
}

/// Whether a request may be sent again after a failure that left no answer (RFC 9110
/// section 9.2.2).
pub fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// The request as the upstream gets it: HTTP/1.1, the client's end-to-end fields, the
/// forwarding fields, and the buffered `body` framed by a Content-Length. Returns whether
/// the client's `Upgrade` went on (with `Connection: upgrade`): only for an HTTP/1.1
/// request without a body whose `Connection` names `upgrade` (RFC 9110 section 7.8 lets
/// a server ignore an Upgrade; we do for a request with content, which is then an
/// ordinary request, so no body bytes and tunnel bytes can be confused).
pub fn write_upstream_request(
    head: &RequestHead<'_, '_>,
    body: &[u8],
    client: ClientInfo,
    trust_forwarded: bool,
    out: &mut Vec<u8>,
) -> bool {
    out.reserve(head.head_len + body.len() + 160);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut prior_for: Vec<&[u8]> = Vec::new();
    let (mut has_proto, mut has_host) = (false, false);
    let http2 = head.version == Version::Http2;
    if http2 {
        // HTTP/2's authority is the HTTP/1.1 Host (RFC 9113 section 8.3.1), first as
        // RFC 9112 has it; a `host` field beside it says the same or is ignored.
        field(out, "Host", head.host.unwrap_or_default());
    }
    let mut cookies = 0;
    let mut upgrade = None;
    for h in head.headers {
        let name = h.name;
        if drop_field(head.headers, name) || name.eq_ignore_ascii_case("expect") {
            // Only dropped fields are looked at: a request without Upgrade pays nothing.
            if upgrade.is_none()
                && name.eq_ignore_ascii_case("upgrade")
                && head.version == Version::Http11
                && body.is_empty()
                && named_by_connection(head.headers, "upgrade")
            {
                upgrade = Some(h.value);
            }
            continue;
        }
        if http2 && name == "host" {
            continue;
        }
        if http2 && name == "cookie" {
            // HTTP/2 may split Cookie into one field per crumb (RFC 9113 section 8.2.3):
            // an HTTP/1.1 upstream gets them joined into one, in order.
            cookies += 1;
            continue;
        }
        if name.contains('_') {
            // WSGI, CGI and PHP read `X_Forwarded_For` as `X-Forwarded-For` (both become
            // HTTP_X_FORWARDED_FOR): a lookalike would slip past the checks below. Like
            // nginx (`underscores_in_headers off`), no name with an underscore goes on.
            continue;
        }
        if is_client_address_field(name) && !trust_forwarded {
            // An untrusted client does not get to write the chain the app reads.
            continue;
        }
        if name.len() > 12 && name[..12].eq_ignore_ascii_case("x-forwarded-") {
            if name.eq_ignore_ascii_case("x-forwarded-for") {
                prior_for.push(h.value);
                continue;
            }
            has_proto |= name.eq_ignore_ascii_case("x-forwarded-proto");
            has_host |= name.eq_ignore_ascii_case("x-forwarded-host");
        }
        field(out, name, h.value);
    }
    if cookies > 0 {
        out.extend_from_slice(b"Cookie: ");
        let crumbs = head.headers.iter().filter(|h| h.name == "cookie");
        for (i, h) in crumbs.enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(h.value);
        }
        out.extend_from_slice(b"\r\n");
    }
    if head.host.is_none() && !http2 {
        // HTTP/1.1 requires Host; an HTTP/1.0 client may not have sent one (RFC 9112
        // section 3.2 allows an empty value).
        out.extend_from_slice(b"Host: \r\n");
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for p in &prior_for {
        out.extend_from_slice(p);
        out.extend_from_slice(b", ");
    }
    match client.peer {
        // Digits by hand: `Display` for an address costs hundreds of instructions.
        Some(std::net::IpAddr::V4(ip)) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_decimal(out, octet.into());
            }
        }
        Some(ip) => {
            let _ = write!(out, "{ip}");
        }
        None => out.extend_from_slice(b"unknown"),
    }
    out.extend_from_slice(b"\r\n");
    if !has_proto {
        let proto: &[u8] = if client.tls { b"https" } else { b"http" };
        field(out, "X-Forwarded-Proto", proto);
    }
    if let (false, Some(host)) = (has_host, head.host) {
        field(out, "X-Forwarded-Host", host);
    }
    field(out, "Via", VIA);
    if let Some(protocol) = upgrade {
        field(out, "Connection", b"upgrade");
        field(out, "Upgrade", protocol);
    }
    let carries_body = !body.is_empty()
        || !matches!(head.framing, uring_common::http::BodyFraming::None)
        || matches!(head.method, "POST" | "PUT" | "PATCH");
    if carries_body {
        out.extend_from_slice(b"Content-Length: ");
        write_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    upgrade.is_some()
}

/// How the response body goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFraming {
    /// No body, or exactly the upstream's Content-Length.
    AsIs,
    /// Re-chunked (the upstream's length was unknown; HTTP/1.1 client).
    Chunked,
    /// Until we close (the upstream's length was unknown; HTTP/1.0 client).
    Close,
}

/// The end-to-end fields the client gets with `resp`, in order, whatever its protocol:
/// our `Date` and `Server` (nginx's policy: the front speaks for the site), the
/// upstream's fields but the hop-by-hop ones and the framing, and `Via`. `f` gets each
/// name and value, and whether the value is the upstream's: such a value may hold an
/// obs-fold's line end (see [`unfolded_field`]), which a writer makes spaces.
#[inline]
pub fn each_client_field<'a>(
    resp: &ResponseHead<'a, '_>,
    date: &'a [u8; 29],
    mut f: impl FnMut(&'a str, &'a [u8], bool),
) {
    f("Date", date, false);
    f("Server", SERVER_NAME, false);
    for h in resp.headers {
        let name = h.name;
        if drop_field(resp.headers, name)
            || name.eq_ignore_ascii_case("date")
            || name.eq_ignore_ascii_case("server")
        {
            continue;
        }
        f(name, h.value, true);
    }
    f("Via", VIA, false);
}

/// The length the client is told, when the upstream's framing gives one: HEAD and 304
/// carry the length the body would have had.
pub fn client_content_length<'a>(resp: &ResponseHead<'a, '_>) -> Option<ContentLength<'a>> {
    match resp.framing {
        ResponseFraming::NoBody => resp.header("content-length").map(ContentLength::AsSent),
        ResponseFraming::Length(n) => Some(ContentLength::Known(n)),
        ResponseFraming::Chunked | ResponseFraming::UntilClose => None,
    }
}

/// A response's Content-Length as the client gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentLength<'a> {
    /// The upstream's value, passed on (a bodiless response's).
    AsSent(&'a [u8]),
    Known(u64),
}

/// The HTTP/1.1 head the client gets for `resp`: [`each_client_field`] and the framing
/// we choose. Returns that framing and whether the client connection stays open.
pub fn write_client_head(
    resp: &ResponseHead<'_, '_>,
    date: &[u8; 29],
    client_http10: bool,
    client_keep_alive: bool,
    out: &mut Vec<u8>,
) -> (ClientFraming, bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(out, resp.status.into());
    out.push(b' ');
    if resp.reason.is_empty() {
        out.extend_from_slice(reason_phrase(resp.status).as_bytes());
    } else {
        out.extend_from_slice(resp.reason.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    each_client_field(resp, date, |name, value, upstream| match upstream {
        true => unfolded_field(out, name, value),
        false => field(out, name, value),
    });
    let (framing, keep) = match client_content_length(resp) {
        Some(ContentLength::AsSent(cl)) => {
            unfolded_field(out, "Content-Length", cl);
            (ClientFraming::AsIs, client_keep_alive)
        }
        Some(ContentLength::Known(n)) => {
            out.extend_from_slice(b"Content-Length: ");
            write_decimal(out, n);
            out.extend_from_slice(b"\r\n");
            (ClientFraming::AsIs, client_keep_alive)
        }
        None if matches!(resp.framing, ResponseFraming::NoBody) => {
            (ClientFraming::AsIs, client_keep_alive)
        }
        None if !client_http10 => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            (ClientFraming::Chunked, client_keep_alive)
        }
        None => (ClientFraming::Close, false),
    };
    if !keep {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if client_http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (framing, keep)
}

/// The head of an upstream's `101 Switching Protocols` as the client gets it: the
/// end-to-end fields as for any response (`Sec-WebSocket-*` among them), and, unlike any
/// other response, the hop-by-hop `Upgrade` (the protocol switched to) and
/// `Connection: upgrade`, which this hop is about. No framing: the bytes that follow
/// belong to the new protocol.
pub fn write_switching_head(resp: &ResponseHead<'_, '_>, date: &[u8; 29], out: &mut Vec<u8>) {
    let _ = write!(out, "HTTP/1.1 {} ", resp.status);
    if resp.reason.is_empty() {
        out.extend_from_slice(reason_phrase(resp.status).as_bytes());
    } else {
        out.extend_from_slice(resp.reason.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    each_client_field(resp, date, |name, value, _| {
        unfolded_field(out, name, value)
    });
    if let Some(protocol) = resp.header("upgrade") {
        unfolded_field(out, "Upgrade", protocol);
    }
    out.extend_from_slice(b"Connection: upgrade\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};

    fn forward(raw: &[u8], body: &[u8], trust: bool) -> String {
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) = parse_request(raw, &mut storage, &Limits::default())
        else {
            panic!("parse");
        };
        let mut out = Vec::new();
        let client = ClientInfo {
            peer: "10.0.0.7".parse().ok(),
            tls: false,
            ..ClientInfo::default()
        };
        write_upstream_request(&head, body, client, trust, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn hop_by_hop_fields_are_dropped_and_framing_redone() {
        let raw = b"POST /a?b=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: x\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nX-App: yes\r\n\r\n";
        let out = forward(raw, b"hello", false);
        let lower = out.to_ascii_lowercase();
        for gone in [
            "connection:",
            "x-secret",
            "keep-alive",
            "te:",
            "proxy-",
            "upgrade",
            "transfer-encoding",
            "expect",
        ] {
            assert!(!lower.contains(gone), "{gone} in {out}");
        }
        assert!(
            out.starts_with("POST /a?b=1 HTTP/1.1\r\nHost: h\r\nX-App: yes\r\n"),
            "{out}"
        );
        assert!(out.contains("X-Forwarded-For: 10.0.0.7\r\n"));
        assert!(out.contains("X-Forwarded-Proto: http\r\n"));
        assert!(out.contains("X-Forwarded-Host: h\r\n"));
        assert!(out.contains("Via: 1.1 uring-server\r\n"));
        assert!(out.ends_with("Content-Length: 5\r\n\r\nhello"), "{out}");
    }

    #[test]
    fn an_upgrade_goes_on_only_for_a_bodiless_http11_request_that_names_it() {
        let ws = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) = parse_request(ws, &mut storage, &Limits::default()) else {
            panic!("parse");
        };
        let mut out = Vec::new();
        assert!(write_upstream_request(
            &head,
            b"",
            ClientInfo::default(),
            false,
            &mut out
        ));
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"),
            "{out}"
        );
        assert!(out.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(out.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(!out.contains("keep-alive"));
        // Not named by Connection, over HTTP/1.0, or with content: an ordinary request.
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"[..],
            b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhi",
        ] {
            let body: &[u8] = if raw.starts_with(b"POST") { b"hi" } else { b"" };
            let out = forward(raw, body, false).to_ascii_lowercase();
            assert!(!out.contains("upgrade"), "{out}");
        }
    }

    #[test]
    fn a_101_keeps_its_upgrade_and_connection_fields() {
        use uring_common::http::parse_response;
        let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\nKeep-Alive: 1\r\n\r\n";
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(resp)) = parse_response(raw, &mut storage, false, 4096) else {
            panic!("parse");
        };
        let mut out = Vec::new();
        write_switching_head(&resp, &[b'd'; 29], &mut out);
        let head = String::from_utf8(out).unwrap();
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(head.contains("\r\nSec-WebSocket-Accept: x\r\n"));
        assert!(head.ends_with("\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
        assert!(!head.contains("Keep-Alive") && !head.contains("Content-Length"));
    }

    #[test]
    fn forwarded_chain_only_when_trusted() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n";
        let untrusted = forward(raw, b"", false);
        assert!(!untrusted.contains("1.2.3.4"));
        assert!(untrusted.contains("X-Forwarded-For: 10.0.0.7\r\n"));
        assert!(untrusted.contains("X-Forwarded-Proto: http\r\n"));
        assert!(!untrusted.contains("Content-Length"));
        let trusted = forward(raw, b"", true);
        assert!(trusted.contains("X-Forwarded-For: 1.2.3.4, 10.0.0.7\r\n"));
        assert!(trusted.contains("X-Forwarded-Proto: https\r\n"));
        assert!(!trusted.contains("X-Forwarded-Proto: http\r\n"));
    }

    #[test]
    fn folded_response_fields_go_out_on_one_line() {
        use uring_common::http::parse_response;
        let raw =
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\t3\r\nX-B: 4\n 5\r\nContent-Length: 0\r\n\r\n";
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(resp)) = parse_response(raw, &mut storage, false, 4096) else {
            panic!("parse");
        };
        let mut out = Vec::new();
        write_client_head(&resp, &[b'd'; 29], false, true, &mut out);
        let head = String::from_utf8(out).unwrap();
        assert!(
            head.contains("\r\nX-A: 1   2  \t3\r\nX-B: 4  5\r\n"),
            "{head:?}"
        );
        assert_eq!(head.matches('\n').count(), head.matches("\r\n").count());
    }

    #[test]
    fn lookalikes_of_the_forwarding_fields_never_pass_untrusted() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 1.1.1.1\r\nx_forwarded-proto: https\r\nX-Forwarded_Host: evil\r\nX_Real_IP: 2.2.2.2\r\nX-Real-IP: 3.3.3.3\r\nForwarded: for=4.4.4.4\r\nMy_Header: 5\r\nX-App: yes\r\n\r\n";
        let untrusted = forward(raw, b"", false);
        for gone in [
            "1.1.1.1", "https", "evil", "2.2.2.2", "3.3.3.3", "4.4.4.4", "_",
        ] {
            assert!(!untrusted.contains(gone), "{gone} in {untrusted}");
        }
        assert!(untrusted.contains("X-App: yes\r\n"), "{untrusted}");
        assert!(untrusted.contains("X-Forwarded-For: 10.0.0.7\r\n"));
        assert!(untrusted.contains("X-Forwarded-Host: h\r\n"));
        // A trusted front's own fields pass; underscore names never do.
        let trusted = forward(raw, b"", true);
        assert!(trusted.contains("X-Real-IP: 3.3.3.3\r\n"), "{trusted}");
        assert!(trusted.contains("Forwarded: for=4.4.4.4\r\n"), "{trusted}");
        assert!(!trusted.contains('_'), "{trusted}");
        assert!(
            trusted.contains("X-Forwarded-For: 10.0.0.7\r\n"),
            "{trusted}"
        );
    }
}
