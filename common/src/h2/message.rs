//! HTTP semantics of a field block (RFC 9113 8.1-8.3): pseudo-header rules, field name and
//! value syntax, connection-specific fields, content-length. A block that breaks one is
//! "malformed": a stream error of type PROTOCOL_ERROR, never a connection error.

use super::events::{Pseudo, Span};
use super::field::{valid_name, valid_value};
use super::hpack::FieldSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    Request,
    Response,
    Trailers,
}

/// A checked block: its pseudo-headers, where its regular fields start (pseudo-headers
/// come first, so the regular ones are the tail), and its content-length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    pub pseudo: Pseudo,
    pub regular_from: usize,
    pub content_length: Option<u64>,
}

/// Why a block is malformed (for tests and debugging; the wire only sees PROTOCOL_ERROR).
pub(crate) type Malformed = &'static str;

pub(crate) fn check(
    block: Block,
    fields: &[FieldSpan],
    arena: &[u8],
) -> Result<Checked, Malformed> {
    let mut pseudo = Pseudo::default();
    let mut status_seen = false;
    let mut regular_from = fields.len();
    for (i, f) in fields.iter().enumerate() {
        let name = f.name(arena);
        if name.first() != Some(&b':') {
            regular_from = i;
            break;
        }
        // "Endpoints MUST NOT generate pseudo-header fields other than those defined";
        // trailers carry none (8.1).
        let span = Span {
            start: f.start + f.name_len,
            len: f.value_len,
        };
        let slot = match (block, name) {
            (Block::Request, b":method") => &mut pseudo.method,
            (Block::Request, b":scheme") => &mut pseudo.scheme,
            (Block::Request, b":authority") => &mut pseudo.authority,
            (Block::Request, b":path") => &mut pseudo.path,
            (Block::Response, b":status") => {
                if status_seen {
                    return Err("duplicate :status");
                }
                status_seen = true;
                pseudo.status = parse_status(f.value(arena))?;
                continue;
            }
            (Block::Trailers, _) => return Err("pseudo-header field in trailers"),
            _ => return Err("unknown or misplaced pseudo-header field"),
        };
        if slot.is_some() {
            return Err("duplicate pseudo-header field");
        }
        if !f.checked && !valid_value(f.value(arena)) {
            return Err("invalid pseudo-header value");
        }
        *slot = Some(span);
    }
    let mut content_length = None;
    for f in &fields[regular_from..] {
        let name = f.name(arena);
        let value = f.value(arena);
        if !f.checked {
            if !valid_name(name) {
                return Err("invalid field name");
            }
            if !valid_value(value) {
                return Err("invalid field value");
            }
        }
        match name {
            // 8.2.2: connection-specific fields MUST be treated as malformed, and TE
            // may only be "trailers".
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => return Err("connection-specific header field"),
            b"te" if value != b"trailers" => return Err("te other than \"trailers\""),
            b"content-length" => {
                let n = parse_length(value)?;
                if content_length.is_some_and(|m| m != n) {
                    return Err("conflicting content-length values");
                }
                content_length = Some(n);
            }
            _ => {}
        }
    }
    match block {
        Block::Request => {
            let method = span_bytes(arena, pseudo.method.ok_or("missing :method")?);
            // 8.3.1: "exactly one valid value" for :method, a token (RFC 9110 9.1).
            if !is_token(method) {
                return Err("invalid :method");
            }
            if method == b"CONNECT" {
                // 8.5: ":scheme and :path pseudo-header fields MUST be omitted".
                if pseudo.scheme.is_some() || pseudo.path.is_some() {
                    return Err("CONNECT with :scheme or :path");
                }
                if pseudo.authority.is_none() {
                    return Err("CONNECT without :authority");
                }
            } else {
                let scheme = span_bytes(arena, pseudo.scheme.ok_or("missing :scheme")?);
                let path = span_bytes(arena, pseudo.path.ok_or("missing :path")?);
                if path.is_empty() {
                    return Err("empty :path");
                }
                // 8.3.1: for http and https the path is an absolute path (with its query),
                // or "*" for OPTIONS; anything else is an invalid pseudo-header value.
                let web =
                    scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https");
                if web && path[0] != b'/' && !(path == b"*" && method == b"OPTIONS") {
                    return Err(":path neither absolute nor * for OPTIONS");
                }
            }
        }
        Block::Response if !status_seen => return Err("missing :status"),
        _ => {}
    }
    Ok(Checked {
        pseudo,
        regular_from,
        content_length,
    })
}

fn span_bytes(arena: &[u8], s: Span) -> &[u8] {
    &arena[s.start as usize..(s.start + s.len) as usize]
}

/// RFC 9110 5.6.2: `token = 1*tchar`.
fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_status(v: &[u8]) -> Result<u16, Malformed> {
    let [a, b, c] = v else {
        return Err(":status is not three digits");
    };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return Err(":status is not three digits");
    }
    let s = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    // 8.6: HTTP/2 has no 101 (Switching Protocols).
    if !(100..=599).contains(&s) || s == 101 {
        return Err(":status out of range");
    }
    Ok(s)
}

fn parse_length(v: &[u8]) -> Result<u64, Malformed> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err("invalid content-length");
    }
    Ok(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}
