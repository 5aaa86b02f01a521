//! Serialization of request and response heads into reused buffers (no allocation once
//! the buffer has grown to its working size).
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures).

/// The standard reason phrase for a status code ("OK", "Not Found", ...).
pub fn reason_phrase(status: u16) -> &'static str {
    let _ = status;
    todo!("implemented by the codec work")
}

/// Append `HTTP/1.1 <status> <reason>\r\n`, `Date`, the given headers,
/// `Content-Length` when `content_length` is Some, `Connection: close` when
/// `!keep_alive`, and the blank line.
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    date: &[u8],
    headers: &[(&str, &[u8])],
    content_length: Option<u64>,
    keep_alive: bool,
) {
    let _ = (out, status, date, headers, content_length, keep_alive);
    todo!("implemented by the codec work")
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
    let _ = (out, method, target, host, headers, body_len, keep_alive);
    todo!("implemented by the codec work")
}
