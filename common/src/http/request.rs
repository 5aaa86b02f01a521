//! Request head parsing over `httparse`, with RFC 9112's framing rules applied strictly.
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures,
//! may add more, and documents every rule with the RFC text it follows).

use std::mem::MaybeUninit;

use super::Parsed;

/// Upper bound on `Limits::max_headers`: the size of the stack storage for header views.
pub const HEADER_CAPACITY: usize = 256;

/// Stack storage for the header views of one parse (no allocation, no zeroing).
pub type HeaderStorage<'b> = [MaybeUninit<httparse::Header<'b>>; HEADER_CAPACITY];

/// Parsing limits. Defaults: head 16 KiB, 100 headers, target 8 KiB, body 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line + fields + final CRLF) -> 431 beyond.
    pub max_head_bytes: usize,
    /// Most header fields -> 431 beyond; clamped to [`HEADER_CAPACITY`].
    pub max_headers: usize,
    /// Longest request target -> 414 beyond.
    pub max_target_bytes: usize,
    /// Largest request body a server accepts -> 413 beyond (checked by the server).
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            max_target_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// HTTP version of a message (major version 1 only; others are a 505).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the request body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Every string borrows the receive buffer.
#[derive(Debug)]
pub struct RequestHead<'b, 'h> {
    pub method: &'b str,
    pub target: &'b str,
    pub version: Version,
    /// The header fields in order, as httparse saw them.
    pub headers: &'h [httparse::Header<'b>],
    /// Bytes of the head, including the final CRLF; the body (if any) starts here.
    pub head_len: usize,
    pub framing: BodyFraming,
    /// Whether the connection may stay open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The single Host value, if any.
    pub host: Option<&'b [u8]>,
}

impl<'b, 'h> RequestHead<'b, 'h> {
    /// First value of the named header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Why a request was rejected. Each kind maps to exactly one status in [`RequestError::status`].
/// After any of these the server answers and closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Malformed syntax (bad token, bare CR, obs-fold, space before colon, ...) -> 400.
    Malformed,
    /// Transfer-Encoding together with Content-Length -> 400.
    TransferEncodingWithContentLength,
    /// Content-Length not all digits, empty, signed, overflowing, or differing duplicates -> 400.
    InvalidContentLength,
    /// Transfer-Encoding whose final coding is not chunked, or in HTTP/1.0 -> 400.
    InvalidTransferEncoding,
    /// A transfer coding we do not implement -> 501.
    UnsupportedTransferEncoding,
    /// Missing or duplicate Host in HTTP/1.1 (or an invalid Host) -> 400.
    InvalidHost,
    /// HTTP major version other than 1 -> 505.
    UnsupportedVersion,
    /// Too many header fields, or head larger than `max_head_bytes` -> 431.
    HeadTooLarge,
    /// Request target longer than `max_target_bytes` -> 414.
    TargetTooLong,
}

impl RequestError {
    /// The one status code for this error.
    pub fn status(self) -> u16 {
        todo!("implemented by the codec work")
    }
}

/// Parse a request head at the start of `buf`.
///
/// `Partial` while the head is incomplete (but an over-long partial head is already
/// `Err(HeadTooLarge)` / `Err(TargetTooLong)`). Never reads past the head.
pub fn parse_request<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut HeaderStorage<'b>,
    limits: &Limits,
) -> Result<Parsed<RequestHead<'b, 'h>>, RequestError> {
    let _ = (buf, headers, limits);
    todo!("implemented by the codec work")
}
