//! The uwsgi protocol's request side, sans-IO: the packet uWSGI reads instead of an HTTP
//! head (uWSGI's docs, "The uwsgi Protocol"). A 4-byte header (modifier1, the size of
//! what follows as 16-bit little-endian, modifier2), then each variable as a 16-bit
//! little-endian length and bytes for its name, the same for its value. Modifier1 0 is a
//! WSGI request with CGI variables (the list in `cgi.rs`, as nginx's `uwsgi_params`);
//! the buffered body follows the packet unframed, `CONTENT_LENGTH` long.
//!
//! uWSGI answers with a plain HTTP/1.x response (status line, fields, body), which the
//! proxy's `upstream.rs` reads like any HTTP upstream's; there is no response side here.
//! uWSGI does not keep a uwsgi connection open after the response: the response ends
//! when it closes (or at its Content-Length).

use uring_common::http::RequestHead;

use super::cgi::{for_each_var, CgiContext, CgiError, Flavour};

/// Modifier1 0: a WSGI (CGI-variable) request, what nginx's `uwsgi_modifier1` defaults to.
pub const MODIFIER_WSGI: u8 = 0;

/// Appends the uwsgi packet for `head` to `out`, followed by `body`. On error `out` is
/// left as it was.
pub fn write_request(
    head: &RequestHead<'_, '_>,
    ctx: &CgiContext<'_>,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CgiError> {
    let start = out.len();
    out.extend_from_slice(&[MODIFIER_WSGI, 0, 0, 0]);
    let mut too_large = false;
    let result = for_each_var(
        head,
        ctx,
        body.len() as u64,
        Flavour::Uwsgi,
        &mut |name, value| {
            for part in [name, value] {
                match u16::try_from(part.len()) {
                    Ok(n) => {
                        out.extend_from_slice(&n.to_le_bytes());
                        out.extend_from_slice(part);
                    }
                    Err(_) => too_large = true,
                }
            }
        },
    );
    let size = u16::try_from(out.len() - start - 4);
    match (result, size) {
        (Err(e), _) => {
            out.truncate(start);
            Err(e)
        }
        (Ok(()), Ok(size)) if !too_large => {
            out[start + 1..start + 3].copy_from_slice(&size.to_le_bytes());
            out.extend_from_slice(body);
            Ok(())
        }
        _ => {
            out.truncate(start);
            Err(CgiError::TooLarge)
        }
    }
}

/// A uwsgi packet read back (what uWSGI does with ours): for tests and the fuzz target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub modifier1: u8,
    pub modifier2: u8,
    pub vars: Vec<(&'a [u8], &'a [u8])>,
    /// Bytes of the header and variables; the body starts here.
    pub len: usize,
}

/// Why bytes are not a uwsgi packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer bytes than the header announces.
    Incomplete,
    /// A variable's length runs past the packet.
    Malformed,
}

fn take<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], PacketError> {
    let [a, b, rest @ ..] = *buf else {
        return Err(PacketError::Malformed);
    };
    let n = usize::from(u16::from_le_bytes([*a, *b]));
    if rest.len() < n {
        return Err(PacketError::Malformed);
    }
    let (part, rest) = rest.split_at(n);
    *buf = rest;
    Ok(part)
}

/// Parses a packet at the start of `buf`.
pub fn parse_packet(buf: &[u8]) -> Result<Packet<'_>, PacketError> {
    let [m1, lo, hi, m2, rest @ ..] = buf else {
        return Err(PacketError::Incomplete);
    };
    let size = usize::from(u16::from_le_bytes([*lo, *hi]));
    if rest.len() < size {
        return Err(PacketError::Incomplete);
    }
    let mut vars_bytes = &rest[..size];
    let mut vars = Vec::new();
    while !vars_bytes.is_empty() {
        let name = take(&mut vars_bytes)?;
        let value = take(&mut vars_bytes)?;
        vars.push((name, value));
    }
    Ok(Packet {
        modifier1: *m1,
        modifier2: *m2,
        vars,
        len: 4 + size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::cgi::tests::ctx;
    use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};

    fn packet(raw: &[u8], limits: &Limits) -> Result<Vec<u8>, CgiError> {
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) = parse_request(raw, &mut storage, limits) else {
            panic!("parse");
        };
        let mut out = b"kept".to_vec();
        let r = write_request(&head, &ctx(), &raw[head.head_len..], &mut out);
        assert!(out.starts_with(b"kept"));
        r.map(|()| out[4..].to_vec())
    }

    #[test]
    fn exact_bytes_of_a_small_request() {
        let p = packet(
            b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
            &Limits::default(),
        )
        .unwrap();
        let mut want: Vec<u8> = vec![0, 0, 0, 0];
        for (n, v) in [
            ("QUERY_STRING", "x=1"),
            ("REQUEST_METHOD", "GET"),
            ("CONTENT_TYPE", ""),
            ("CONTENT_LENGTH", ""),
            ("REQUEST_URI", "/a?x=1"),
            ("PATH_INFO", "/a"),
            ("DOCUMENT_ROOT", "/srv/www"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "10.0.0.7"),
            ("REMOTE_PORT", "51234"),
            ("SERVER_PORT", "8080"),
            ("SERVER_NAME", "example.org"),
            ("HTTP_HOST", "h"),
        ] {
            for s in [n, v] {
                want.extend_from_slice(&(s.len() as u16).to_le_bytes());
                want.extend_from_slice(s.as_bytes());
            }
        }
        let size = (want.len() - 4) as u16;
        want[1..3].copy_from_slice(&size.to_le_bytes());
        assert_eq!(p, want);
    }

    #[test]
    fn body_follows_and_parses_back_at_every_split() {
        let raw =
            b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello world";
        let p = packet(raw, &Limits::default()).unwrap();
        let parsed = parse_packet(&p).unwrap();
        assert_eq!((parsed.modifier1, parsed.modifier2), (0, 0));
        assert_eq!(&p[parsed.len..], b"hello world");
        assert!(parsed.vars.contains(&(&b"CONTENT_LENGTH"[..], &b"11"[..])));
        assert!(parsed.vars.contains(&(&b"HTTP_X_A"[..], &b"1"[..])));
        // uWSGI reads the header, then the vars, from a stream cut anywhere.
        for at in 0..parsed.len {
            assert_eq!(
                parse_packet(&p[..at]).err(),
                Some(PacketError::Incomplete),
                "{at}"
            );
        }
        assert!(parse_packet(&p[..parsed.len]).is_ok());
    }

    #[test]
    fn more_than_64k_of_variables_is_431() {
        let big = "v".repeat(30_000);
        let raw =
            format!("GET / HTTP/1.1\r\nHost: h\r\nX-1: {big}\r\nX-2: {big}\r\nX-3: {big}\r\n\r\n");
        let limits = Limits {
            max_head_bytes: 200_000,
            ..Limits::default()
        };
        assert_eq!(packet(raw.as_bytes(), &limits), Err(CgiError::TooLarge));
        assert_eq!(CgiError::TooLarge.status(), 431);
        // Two of them fit.
        let raw = format!("GET / HTTP/1.1\r\nHost: h\r\nX-1: {big}\r\nX-2: {big}\r\n\r\n");
        let p = packet(raw.as_bytes(), &limits).unwrap();
        assert_eq!(parse_packet(&p).unwrap().len, p.len());
    }

    #[test]
    fn a_malformed_packet_is_an_error_not_a_panic() {
        assert_eq!(
            parse_packet(&[0, 3, 0, 0, 5, 0, b'a']).err(),
            Some(PacketError::Malformed)
        );
        assert_eq!(
            parse_packet(&[0, 1, 0, 0, 0]).err(),
            Some(PacketError::Malformed)
        );
    }
}
