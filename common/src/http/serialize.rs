//! Serialization of request and response heads into reused buffers (no allocation once
//! the buffer has grown to its working size).
//!
//! Each writer computes the exact length first and reserves once, then appends with
//! `extend_from_slice`; integers are formatted by hand into a stack buffer (no `format!`,
//! no `fmt` machinery on the hot path).

/// The standard reason phrase for a status code ("OK", "Not Found", ...); empty for codes
/// without one (RFC 9112 section 4 allows an empty reason-phrase).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Decimal digits of `n`, right-aligned in a stack buffer; returns the buffer and the
/// index of the first digit.
#[inline]
fn decimal(mut n: u64) -> ([u8; 20], usize) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    (buf, at)
}

/// Append the decimal form of `n`.
#[inline]
pub fn write_decimal(out: &mut Vec<u8>, n: u64) {
    let (buf, at) = decimal(n);
    out.extend_from_slice(&buf[at..]);
}

#[inline]
fn headers_len(headers: &[(&str, &[u8])]) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.len() + 2 + value.len() + 2)
        .sum()
}

#[inline]
fn write_fields(
    out: &mut Vec<u8>,
    headers: &[(&str, &[u8])],
    length: Option<u64>,
    keep_alive: bool,
) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = length {
        out.extend_from_slice(b"Content-Length: ");
        write_decimal(out, n);
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

const LONGEST_REASON: usize = "Network Authentication Required".len();
const CONTENT_LENGTH_LINE_MAX: usize = "Content-Length: ".len() + 20 + 2;
const CONNECTION_CLOSE_LINE: usize = "Connection: close\r\n".len();

/// Append `HTTP/1.1 <status> <reason>\r\n`, `Date`, the given headers,
/// `Content-Length` when `content_length` is Some, `Connection: close` when
/// `!keep_alive`, and the blank line.
///
/// `status` must be a three-digit code (100..=999); `date` is usually
/// [`DateCache::get`](super::DateCache::get). An empty `date` omits the header.
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    date: &[u8],
    headers: &[(&str, &[u8])],
    content_length: Option<u64>,
    keep_alive: bool,
) {
    debug_assert!((100..=999).contains(&status), "status {status}");
    let reason = reason_phrase(status);
    // Reserve for the longest reason so that a buffer reused across statuses settles at
    // one capacity.
    out.reserve(
        "HTTP/1.1 200 \r\n".len()
            + LONGEST_REASON
            + "Date: \r\n".len()
            + date.len()
            + headers_len(headers)
            + CONTENT_LENGTH_LINE_MAX
            + CONNECTION_CLOSE_LINE
            + 2,
    );
    out.extend_from_slice(b"HTTP/1.1 ");
    let status = status.clamp(100, 999);
    out.extend_from_slice(&[
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !date.is_empty() {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
    }
    write_fields(out, headers, content_length, keep_alive);
}

/// Append a request head: request line, `Host`, the given headers, `Content-Length`
/// when `body_len` is Some, `Connection: close` when `!keep_alive`, and the blank line.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &[u8])],
    body_len: Option<u64>,
    keep_alive: bool,
) {
    out.reserve(
        method.len()
            + 1
            + target.len()
            + " HTTP/1.1\r\nHost: \r\n".len()
            + host.len()
            + headers_len(headers)
            + CONTENT_LENGTH_LINE_MAX
            + CONNECTION_CLOSE_LINE
            + 2,
    );
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_fields(out, headers, body_len, keep_alive);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    #[test]
    fn decimal_edges() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, n);
            assert_eq!(s(&out), n.to_string());
        }
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(200), "OK");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(505), "HTTP Version Not Supported");
        assert_eq!(reason_phrase(599), "");
        let longest = (100..1000).map(|c| reason_phrase(c).len()).max().unwrap();
        assert_eq!(longest, LONGEST_REASON);
    }

    #[test]
    fn response_head_layout() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            200,
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            &[("Server", b"u"), ("Content-Type", b"text/plain")],
            Some(13),
            true,
        );
        assert_eq!(
            s(&out),
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: u\r\n\
             Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
        );
        out.clear();
        write_response_head(&mut out, 599, b"", &[], None, false);
        assert_eq!(s(&out), "HTTP/1.1 599 \r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn request_head_layout() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            "/submit?x=1",
            "127.0.0.1:8080",
            &[("Accept", b"*/*")],
            Some(0),
            false,
        );
        assert_eq!(
            s(&out),
            "POST /submit?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn reused_buffer_does_not_grow_after_first_use() {
        let mut out = Vec::new();
        let date = [b'x'; 29];
        write_response_head(&mut out, 200, &date, &[("A", b"b")], Some(u64::MAX), false);
        let cap = out.capacity();
        for status in [200, 404, 500] {
            out.clear();
            write_response_head(
                &mut out,
                status,
                &date,
                &[("A", b"b")],
                Some(u64::MAX),
                false,
            );
            assert_eq!(out.capacity(), cap);
        }
    }

    #[test]
    fn written_heads_parse_back() {
        use crate::http::{parse_request, BodyFraming, Limits, Parsed};
        let mut out = Vec::new();
        write_request_head(&mut out, "GET", "/", "h", &[("X", b"y")], Some(3), true);
        let mut storage = crate::http::request::new_header_storage();
        let Ok(Parsed::Complete(h)) = parse_request(&out, &mut storage, &Limits::default()) else {
            panic!("did not parse: {}", s(&out))
        };
        assert_eq!(h.framing, BodyFraming::Length(3));
        assert_eq!(h.host, Some(&b"h"[..]));
        assert_eq!(h.head_len, out.len());
    }
}
