//! Request head parsing over `httparse`, with RFC 9112's framing rules applied strictly.
//!
//! httparse does the tokenising (request line, field lines, bare-CR rejection, obs-fold
//! and space-before-colon rejection); this module adds what a server needs on top: the
//! body framing decision of RFC 9112 section 6.3, keep-alive, `Expect: 100-continue`,
//! Host checks, size limits, and a single mapping of every rejection to one status code
//! ([`RequestError::status`]). All header fields are inspected in one pass.
//!
//! Decisions where the RFC leaves a choice (each one has a test in this file):
//! - Bare LF line endings are rejected (400). RFC 9112 section 2.2: "a recipient MAY
//!   recognize a single LF as a line terminator and ignore any preceding CR". We do not:
//!   a server that splits lines differently from a proxy in front of it is a smuggling
//!   target, and every real client sends CRLF. Empty lines before the request line are
//!   skipped only when they are CRLF.
//! - Transfer codings other than `chunked` are not implemented: the last coding must be
//!   `chunked` (else 400), and any other coding before it is a 501, so `gzip, chunked` is
//!   501 and `gzip` alone is 400. `chunked` twice is 400.
//! - `HTTP/1.x` with a minor version other than 0 or 1 is answered 505 (httparse knows
//!   only 1.0 and 1.1; RFC 9110 section 2.5 says SHOULD treat it as 1.1, we do not).
//! - Content-Length list elements must all be non-empty and equal (`5, 5` folds to 5,
//!   `5,,5` and `5, 6` are 400).
//! - The request-target must have the form its method allows (RFC 9112 section 3.2):
//!   origin-form (`/path`) or absolute-form (`http://host/path`) for every method,
//!   asterisk-form (`*`) for OPTIONS only, authority-form (`host:port`) for CONNECT only;
//!   anything else is 400. Bytes >= 0x80 in the target are 400 (RFC 3986 has no place for
//!   them; httparse lets them through).
//! - A method longer than [`MAX_METHOD_BYTES`] is 501 (RFC 9112 section 3: "A server
//!   that receives a method longer than any that it implements SHOULD respond with a 501
//!   (Not Implemented) status code"), whatever the head limit, and however the bytes
//!   arrive.
//! - Told apart however long the input: a method over [`MAX_METHOD_BYTES`] is 501 (above),
//!   then a target over `max_target_bytes` is 414, then a head over `max_head_bytes` is
//!   431; but empty lines up to the head limit, with no request line, are 400 (malformed,
//!   not a large head).
//! - An empty `Host` is 400 unless the target is in absolute-form (see
//!   [`check_host`] for the RFC text).

use std::mem::MaybeUninit;

use super::Parsed;

/// Longest method we accept; longer is 501. The longest registered methods
/// (`UPDATEREDIRECTREF`, `BASELINE-CONTROL`) have 17 and 16 bytes.
pub const MAX_METHOD_BYTES: usize = 64;

/// Upper bound on `Limits::max_headers`: the size of the stack storage for header views.
pub const HEADER_CAPACITY: usize = 256;

/// Stack storage for the header views of one parse (no allocation, no zeroing).
pub type HeaderStorage<'b> = [MaybeUninit<httparse::Header<'b>>; HEADER_CAPACITY];

/// Fresh, uninitialised header storage, e.g. `let mut h = new_header_storage();`.
#[inline]
pub fn new_header_storage<'b>() -> HeaderStorage<'b> {
    [const { MaybeUninit::uninit() }; HEADER_CAPACITY]
}

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
    /// A request that arrived over HTTP/2 (built by the server's HTTP/2 machine; the
    /// HTTP/1 parser never produces it).
    Http2,
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
    /// A request-target whose form the method does not allow (asterisk-form but for
    /// OPTIONS, authority-form but for CONNECT, no known form at all) or with bytes
    /// >= 0x80 -> 400.
    InvalidTarget,
    /// A method longer than [`MAX_METHOD_BYTES`] -> 501.
    MethodTooLong,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestError::Malformed => "malformed request head",
            RequestError::TransferEncodingWithContentLength => {
                "Transfer-Encoding together with Content-Length"
            }
            RequestError::InvalidContentLength => "invalid Content-Length",
            RequestError::InvalidTransferEncoding => "invalid Transfer-Encoding",
            RequestError::UnsupportedTransferEncoding => "unsupported transfer coding",
            RequestError::InvalidHost => "missing, duplicate or invalid Host",
            RequestError::UnsupportedVersion => "unsupported HTTP version",
            RequestError::HeadTooLarge => "request head too large",
            RequestError::TargetTooLong => "request target too long",
            RequestError::InvalidTarget => "request target not allowed for this method",
            RequestError::MethodTooLong => "method too long",
        })?;
        write!(f, " ({})", self.status())
    }
}

impl std::error::Error for RequestError {}

impl RequestError {
    /// The one status code for this error.
    pub fn status(self) -> u16 {
        match self {
            RequestError::Malformed
            | RequestError::TransferEncodingWithContentLength
            | RequestError::InvalidContentLength
            | RequestError::InvalidTransferEncoding
            | RequestError::InvalidHost
            | RequestError::InvalidTarget => 400,
            RequestError::TargetTooLong => 414,
            RequestError::HeadTooLarge => 431,
            RequestError::UnsupportedTransferEncoding | RequestError::MethodTooLong => 501,
            RequestError::UnsupportedVersion => 505,
        }
    }
}

/// Parse a request head at the start of `buf`.
///
/// `Partial` while the head is incomplete (but an over-long partial head is already
/// `Err(HeadTooLarge)` / `Err(TargetTooLong)`). Never reads past the head.
#[inline]
pub fn parse_request<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut HeaderStorage<'b>,
    limits: &Limits,
) -> Result<Parsed<RequestHead<'b, 'h>>, RequestError> {
    let max_headers = limits.max_headers.min(HEADER_CAPACITY);
    // Never look further than the head limit: a head that does not end within it is a
    // 431 however much more arrives, and this bounds the work per call.
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let storage: &'h mut [MaybeUninit<httparse::Header<'b>>] = &mut headers[..max_headers];
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(window, storage);
    // Checked before anything else, so that a long method is a 501 however the bytes
    // arrive: before its end is seen, at a syntax error after it, or when complete.
    if method_so_far(window, req.method) > MAX_METHOD_BYTES {
        return Err(RequestError::MethodTooLong);
    }
    let head_len = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if target_so_far(window, req.method, req.path) > limits.max_target_bytes {
                return Err(RequestError::TargetTooLong);
            }
            if buf.len() >= limits.max_head_bytes {
                // Only empty lines (and the start of a method) up to the limit: no
                // request line came, which is malformed rather than a large head.
                if req.method.is_none() {
                    return Err(RequestError::Malformed);
                }
                return Err(RequestError::HeadTooLarge);
            }
            return Ok(Parsed::Partial);
        }
        // A target already too long when the error struck would have been a 414 had the
        // bytes arrived in pieces; answer the same however they arrived.
        Err(_) if target_so_far(window, req.method, req.path) > limits.max_target_bytes => {
            return Err(RequestError::TargetTooLong)
        }
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(httparse::Error::Version) => {
            return match classify_version(buf, req.method, req.path) {
                VersionClass::Unsupported => Err(RequestError::UnsupportedVersion),
                VersionClass::Incomplete if buf.len() < limits.max_head_bytes => {
                    Ok(Parsed::Partial)
                }
                _ => Err(RequestError::Malformed),
            };
        }
        Err(_) => return Err(RequestError::Malformed),
    };
    let httparse::Request {
        method,
        path,
        version,
        headers: fields,
    } = req;
    // httparse sets all three once the head is complete.
    let (Some(method), Some(target), Some(minor)) = (method, path, version) else {
        return Err(RequestError::Malformed);
    };
    if target.len() > limits.max_target_bytes {
        return Err(RequestError::TargetTooLong);
    }
    let form = target_form(method, target)?;
    let fields: &'h [httparse::Header<'b>] = fields;
    check_line_ends(buf, method, target, head_len)?;
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let summary = scan_fields(buf, fields)?;
    let framing = request_framing(version, &summary)?;

    // RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request) status code
    // to any HTTP/1.1 request message that lacks a Host header field and to any request
    // message that contains more than one Host header field line or a Host header field
    // with an invalid field value."
    if summary.host_count > 1 || (version == Version::Http11 && summary.host_count == 0) {
        return Err(RequestError::InvalidHost);
    }
    if let Some(host) = summary.host {
        check_host(host, form)?;
    }

    // RFC 9112 section 9.3: HTTP/1.1 defaults to persistence unless "close" is present;
    // HTTP/1.0 persists only with "keep-alive". The "close" option wins over both.
    let keep_alive = !summary.conn_close && (version == Version::Http11 || summary.conn_keep_alive);
    // RFC 9110 section 10.1.1: "A server that receives a 100-continue expectation in an
    // HTTP/1.0 request MUST ignore that expectation."
    let expect_continue = summary.expect_continue && version == Version::Http11;

    Ok(Parsed::Complete(RequestHead {
        method,
        target,
        version,
        headers: fields,
        head_len,
        framing,
        keep_alive,
        expect_continue,
        host: summary.host,
    }))
}

/// The four forms of request-target (RFC 9112 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetForm {
    Origin,
    Absolute,
    Authority,
    Asterisk,
}

/// Which form `target` has, and whether `method` may use it (RFC 9112 sections 3.2.3 and
/// 3.2.4: authority-form "is only used for CONNECT requests", asterisk-form "is only used
/// for a server-wide OPTIONS request"). Bytes >= 0x80 are refused in every form: RFC 3986
/// admits only ASCII, and a server that decodes them differently from a proxy in front of
/// it routes the request somewhere else.
fn target_form(method: &str, target: &str) -> Result<TargetForm, RequestError> {
    let t = target.as_bytes();
    if !t.is_ascii() {
        return Err(RequestError::InvalidTarget);
    }
    let form = if t.first() == Some(&b'/') {
        TargetForm::Origin
    } else if t == b"*" {
        TargetForm::Asterisk
    } else if has_scheme(t) {
        TargetForm::Absolute
    } else if method == "CONNECT" && is_authority(t) {
        TargetForm::Authority
    } else {
        return Err(RequestError::InvalidTarget);
    };
    let allowed = match form {
        TargetForm::Asterisk => method == "OPTIONS",
        // A CONNECT names a host and port, never a path (section 3.2.3).
        TargetForm::Origin | TargetForm::Absolute => method != "CONNECT",
        TargetForm::Authority => true,
    };
    if allowed {
        Ok(form)
    } else {
        Err(RequestError::InvalidTarget)
    }
}

/// `scheme "://"` at the start (RFC 3986 section 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" /
/// "." )); absolute-form for the http(s) schemes always has an authority.
fn has_scheme(t: &[u8]) -> bool {
    let Some(colon) = t.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0
        && t[0].is_ascii_alphabetic()
        && t[..colon]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && t[colon..].starts_with(b"://")
}

/// `uri-host ":" port` with a non-empty host and a decimal port (RFC 9112 section 3.2.3).
fn is_authority(t: &[u8]) -> bool {
    let Some(colon) = t.iter().rposition(|&b| b == b':') else {
        return false;
    };
    let (host, port) = (&t[..colon], &t[colon + 1..]);
    !host.is_empty()
        && host.iter().all(|&b| HOST_BYTES[usize::from(b)])
        && !port.is_empty()
        && port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
}

/// The Host field value's bytes, and whether it may be empty.
///
/// RFC 9112 section 3.2: "If the authority component is missing or undefined for the
/// target URI, then a client MUST send a Host header field with an empty field value."
/// For origin-form and asterisk-form requests to an http(s) server the authority is
/// always defined (RFC 9110 section 4.2.1: "A sender MUST NOT generate an "http" URI with
/// an empty host identifier. A recipient that processes such a URI reference MUST reject
/// it as invalid."), so an empty Host there is an invalid field value: 400, as nginx and
/// Apache answer. With an absolute-form target the Host field is ignored (section
/// 3.2.2: the server "MUST ignore the received Host header field (if any) and instead use
/// the host information of the request-target"), so an empty one is accepted.
fn check_host(host: &[u8], form: TargetForm) -> Result<(), RequestError> {
    if host.is_empty() && form != TargetForm::Absolute {
        return Err(RequestError::InvalidHost);
    }
    // Branch-free: hosts are short and almost always valid.
    if !host
        .iter()
        .fold(true, |ok, &b| ok & HOST_BYTES[usize::from(b)])
    {
        return Err(RequestError::InvalidHost);
    }
    Ok(())
}

/// Length of the method as far as httparse got: the whole method once httparse has it,
/// else the run of token bytes at the start (after the empty lines it skips).
fn method_so_far(window: &[u8], method: Option<&str>) -> usize {
    match method {
        Some(m) => m.len(),
        None => {
            let mut at = 0;
            while window[at..].starts_with(b"\r\n") {
                at += 2;
            }
            window[at..].iter().take_while(|&&b| is_tchar(b)).count()
        }
    }
}

/// Length of the request target as far as httparse got: the whole target once it is
/// complete, else the run of target bytes after the method's SP.
fn target_so_far(window: &[u8], method: Option<&str>, path: Option<&str>) -> usize {
    match (method, path) {
        (_, Some(path)) => path.len(),
        (Some(method), None) => {
            let start = offset_in(window, method.as_bytes()) + method.len() + 1;
            window
                .get(start..)
                .unwrap_or_default()
                .iter()
                // httparse's URI bytes: visible ASCII and anything >= 0x80.
                .take_while(|&&b| (b'!'..=0x7e).contains(&b) || b >= 0x80)
                .count()
        }
        (None, None) => 0,
    }
}

/// Byte offset of `part` (a sub-slice of `buf`) within `buf`.
#[inline]
fn offset_in(buf: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - buf.as_ptr() as usize
}

/// httparse accepts a bare LF wherever CRLF is expected; reject that here for the parts
/// of the head outside the fields (see the module docs; [`scan_fields`] checks each field
/// line's terminator in its own pass).
fn check_line_ends(
    buf: &[u8],
    method: &str,
    target: &str,
    head_len: usize,
) -> Result<(), RequestError> {
    let method_at = offset_in(buf, method.as_bytes());
    // RFC 9112 section 2.2: "a server that is expecting to receive and parse a
    // request-line SHOULD ignore at least one empty line (CRLF) received prior to the
    // request-line." Only CRLF pairs count as empty lines here.
    if method_at != 0 && !buf[..method_at].chunks(2).all(|p| p == b"\r\n") {
        return Err(RequestError::Malformed);
    }
    // Request line: method SP target SP "HTTP/1.x" then the terminator.
    let line_end = offset_in(buf, target.as_bytes()) + target.len() + 1 + 8;
    if buf.get(line_end) != Some(&b'\r') {
        return Err(RequestError::Malformed);
    }
    if head_len < 2 || &buf[head_len - 2..head_len] != b"\r\n" {
        return Err(RequestError::Malformed);
    }
    Ok(())
}

/// Whether the field line whose value is `value` ends in CRLF. httparse trims trailing
/// SP/HT from values, so the terminator follows the value after optional whitespace.
#[inline]
fn field_ends_in_crlf(buf: &[u8], value: &[u8]) -> bool {
    let mut at = offset_in(buf, value) + value.len();
    loop {
        match buf.get(at) {
            Some(b'\r') => return true,
            Some(b' ' | b'\t') => at += 1,
            _ => return false,
        }
    }
}

/// `name` equals the lowercase `lower` ignoring ASCII case. Callers have matched the
/// length already; the first-byte test rejects most other names of that length cheaply.
#[inline(always)]
pub(crate) fn name_is(name: &[u8], lower: &[u8]) -> bool {
    (name[0] | 0x20) == lower[0] && eq_lower(name, lower)
}

/// Case-insensitive compare against a lowercase literal made of letters, digits and `-`,
/// branch-free for short strings. Setting bit 0x20 lowercases letters; it could also map
/// a control byte onto a digit or `-` (0x0d | 0x20 == b'-'), but httparse admits no such
/// byte in names or values (only HTAB, which maps to `)`).
#[inline(always)]
pub(crate) fn eq_lower(s: &[u8], lower: &[u8]) -> bool {
    s.len() == lower.len()
        && s.iter()
            .zip(lower)
            .fold(0u8, |diff, (&a, &b)| diff | ((a | 0x20) ^ b))
            == 0
}

/// What one pass over the header fields found.
#[derive(Default)]
pub(crate) struct FieldSummary<'b> {
    pub(crate) host: Option<&'b [u8]>,
    pub(crate) host_count: u32,
    /// Folded value of all Content-Length fields, or an error seen while folding.
    pub(crate) content_length: Option<Result<u64, ()>>,
    /// Whether any Transfer-Encoding field was present.
    pub(crate) has_te: bool,
    /// Outcome of reading the transfer codings across all Transfer-Encoding fields.
    pub(crate) te: TeCodings,
    pub(crate) conn_close: bool,
    pub(crate) conn_keep_alive: bool,
    pub(crate) expect_continue: bool,
}

/// Running state of the transfer-coding list (all Transfer-Encoding fields, in order).
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TeCodings {
    /// Number of codings seen.
    pub(crate) count: u32,
    /// The last coding seen was `chunked`.
    pub(crate) last_is_chunked: bool,
    /// `chunked` appeared before the last position (applied twice or not last).
    pub(crate) chunked_not_last: bool,
    /// A coding other than `chunked` appeared.
    pub(crate) other: bool,
    /// A syntactically invalid coding (empty elements are ignored, not invalid).
    pub(crate) invalid: bool,
}

/// One pass over the fields of a request: each line's terminator is checked, and every
/// framing-relevant header is dispatched on its name length and first byte, so most
/// fields cost two compares.
fn scan_fields<'b>(
    buf: &[u8],
    fields: &[httparse::Header<'b>],
) -> Result<FieldSummary<'b>, RequestError> {
    let mut s = FieldSummary::default();
    for field in fields {
        if !field_ends_in_crlf(buf, field.value) {
            return Err(RequestError::Malformed);
        }
        let name = field.name.as_bytes();
        match name.len() {
            4 if name_is(name, b"host") => {
                s.host_count += 1;
                s.host = Some(field.value);
            }
            // RFC 9110 section 10.1.1: the expectation is case-insensitive.
            6 if name_is(name, b"expect") && field.value.eq_ignore_ascii_case(b"100-continue") => {
                s.expect_continue = true;
            }
            10 if name_is(name, b"connection") => {
                read_connection(field.value, &mut s.conn_close, &mut s.conn_keep_alive)
            }
            14 if name_is(name, b"content-length") => {
                s.content_length = Some(fold_content_length(s.content_length, field.value));
            }
            17 if name_is(name, b"transfer-encoding") => {
                s.has_te = true;
                read_codings(&mut s.te, field.value);
            }
            _ => {}
        }
    }
    Ok(s)
}

/// The `close` and `keep-alive` options of a Connection field value (RFC 9112 section
/// 9.3). The single-token values real clients send skip the list splitting.
#[inline]
pub(crate) fn read_connection(value: &[u8], close: &mut bool, keep_alive: &mut bool) {
    if eq_lower(value, b"keep-alive") {
        *keep_alive = true;
    } else if eq_lower(value, b"close") {
        *close = true;
    } else {
        for token in list_elements(value) {
            if token.eq_ignore_ascii_case(b"close") {
                *close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                *keep_alive = true;
            }
        }
    }
}

/// Fold one more Content-Length field value into what earlier fields gave.
///
/// RFC 9110 section 8.6: "a recipient of a Content-Length header field value consisting
/// of the same decimal value repeated as a comma-separated list (e.g, "Content-Length:
/// 42, 42") MAY either reject the message as invalid or replace that invalid field value
/// with a single instance of the decimal value". We fold identical values, across fields
/// too, and reject anything else.
pub(crate) fn fold_content_length(prev: Option<Result<u64, ()>>, value: &[u8]) -> Result<u64, ()> {
    let mut acc = match prev {
        Some(Err(())) => return Err(()),
        Some(Ok(n)) => Some(n),
        None => None,
    };
    // The usual case: one field, one plain number.
    if acc.is_none() && !value.contains(&b',') {
        return parse_decimal(trim_ows(value));
    }
    for element in value.split(|&b| b == b',') {
        let n = parse_decimal(trim_ows(element))?;
        match acc {
            Some(prev) if prev != n => return Err(()),
            _ => acc = Some(n),
        }
    }
    acc.ok_or(())
}

/// `1*DIGIT` into a u64; empty, signs, other bytes and overflow are errors.
#[inline]
pub(crate) fn parse_decimal(digits: &[u8]) -> Result<u64, ()> {
    if digits.is_empty() {
        return Err(());
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(())?;
    }
    Ok(n)
}

/// Add the codings of one Transfer-Encoding field value to the running list.
///
/// Empty list elements are skipped: RFC 9110 section 5.6.1.2 "a recipient MUST parse and
/// ignore a reasonable number of empty list elements". A value with no coding at all
/// leaves `count` at 0, which the callers treat as invalid.
pub(crate) fn read_codings(te: &mut TeCodings, value: &[u8]) {
    for element in list_elements(value) {
        // A coding may carry parameters (`name;param=value`); only the name matters here.
        let name = match element.iter().position(|&b| b == b';') {
            Some(i) => trim_ows(&element[..i]),
            None => element,
        };
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            te.invalid = true;
            continue;
        }
        if te.last_is_chunked {
            te.chunked_not_last = true;
        }
        te.count += 1;
        te.last_is_chunked = name.eq_ignore_ascii_case(b"chunked");
        if !te.last_is_chunked {
            te.other = true;
        }
    }
}

/// The framing decision of RFC 9112 section 6.3 for a request.
fn request_framing(version: Version, s: &FieldSummary<'_>) -> Result<BodyFraming, RequestError> {
    if s.has_te {
        // RFC 9112 section 6.1: "A server or client that receives an HTTP/1.0 message
        // containing a Transfer-Encoding header field MUST treat the message as if the
        // framing is faulty, even if a Content-Length is present, and close the
        // connection after processing the message."
        if version == Version::Http10 {
            return Err(RequestError::InvalidTransferEncoding);
        }
        // RFC 9112 section 6.1: "A server MAY reject a request that contains both
        // Content-Length and Transfer-Encoding or process such a request in accordance
        // with the Transfer-Encoding alone." We reject: it is the classic smuggling shape.
        if s.content_length.is_some() {
            return Err(RequestError::TransferEncodingWithContentLength);
        }
        // RFC 9112 section 6.3: "If a Transfer-Encoding header field is present in a
        // request and the chunked transfer coding is not the final encoding, the message
        // body length cannot be determined reliably; the server MUST respond with the 400
        // (Bad Request) status code and then close the connection."
        // RFC 9112 section 7: "A sender MUST NOT apply the chunked transfer coding more
        // than once to a message body".
        if s.te.invalid || !s.te.last_is_chunked || s.te.chunked_not_last {
            return Err(RequestError::InvalidTransferEncoding);
        }
        // RFC 9112 section 6.1: "A server that receives a request message with a
        // transfer coding it does not understand SHOULD respond with 501 (Not
        // Implemented)." We understand only chunked, so `gzip, chunked` lands here.
        if s.te.other {
            return Err(RequestError::UnsupportedTransferEncoding);
        }
        return Ok(BodyFraming::Chunked);
    }
    match s.content_length {
        // RFC 9112 section 6.3: "If a message is received without Transfer-Encoding and
        // with an invalid Content-Length header field, then the message framing is
        // invalid and the recipient MUST treat it as an unrecoverable error ... the
        // server MUST respond with a 400 (Bad Request) status code and then close the
        // connection."
        Some(Err(())) => Err(RequestError::InvalidContentLength),
        Some(Ok(0)) => Ok(BodyFraming::None),
        Some(Ok(n)) => Ok(BodyFraming::Length(n)),
        // RFC 9112 section 6.3: "If this is a request message and none of the above are
        // true, then the message body length is zero (no message body is present)."
        None => Ok(BodyFraming::None),
    }
}

/// Elements of a comma-separated list with optional whitespace trimmed; empty elements
/// are skipped (RFC 9110 section 5.6.1.2).
#[inline]
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

#[inline]
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 9110 section 5.6.2 tchar.
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes that may appear in `Host = uri-host [ ":" port ]` (RFC 3986 reg-name, IP
/// literal and port characters), as a table: Host is checked on every request.
static HOST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"-._~%!$&'()*+,;=:[]";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

enum VersionClass {
    /// A well-formed `HTTP/d.d` that is not 1.0 or 1.1 -> 505.
    Unsupported,
    /// Could still become a well-formed version with more bytes.
    Incomplete,
    /// Anything else -> 400.
    Malformed,
}

/// httparse reports any version it does not know as `Error::Version`, whether it is
/// `HTTP/2.0` (505) or garbage like `HTTP/1.10` (400); tell them apart here.
/// RFC 9112 section 2.3: `HTTP-version = HTTP-name "/" DIGIT "." DIGIT`.
fn classify_version(buf: &[u8], method: Option<&str>, path: Option<&str>) -> VersionClass {
    let (Some(_), Some(path)) = (method, path) else {
        return VersionClass::Malformed;
    };
    let start = offset_in(buf, path.as_bytes()) + path.len() + 1;
    let rest = &buf[start.min(buf.len())..];
    const SHAPE: &[u8] = b"HTTP/d.d\r";
    for (i, &want) in SHAPE.iter().enumerate() {
        let Some(&got) = rest.get(i) else {
            return VersionClass::Incomplete;
        };
        let ok = if want == b'd' {
            got.is_ascii_digit()
        } else {
            got == want
        };
        if !ok {
            return VersionClass::Malformed;
        }
    }
    if rest[5] == b'1' && (rest[7] == b'0' || rest[7] == b'1') {
        // A known version that httparse still refused: something else is wrong.
        VersionClass::Malformed
    } else {
        VersionClass::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(buf: &[u8], limits: &Limits) -> Result<Parsed<Owned>, RequestError> {
        let mut storage = new_header_storage();
        parse_request(buf, &mut storage, limits).map(|p| match p {
            Parsed::Partial => Parsed::Partial,
            Parsed::Complete(h) => Parsed::Complete(Owned::from(&h)),
        })
    }

    fn parse(buf: &[u8]) -> Result<Parsed<Owned>, RequestError> {
        parse_with(buf, &Limits::default())
    }

    fn complete(buf: &[u8]) -> Owned {
        match parse(buf) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!(
                "expected a complete head for {:?}, got {other:?}",
                show(buf)
            ),
        }
    }

    fn err(buf: &[u8]) -> RequestError {
        match parse(buf) {
            Err(e) => e,
            other => panic!("expected an error for {:?}, got {other:?}", show(buf)),
        }
    }

    fn show(buf: &[u8]) -> String {
        String::from_utf8_lossy(buf).into_owned()
    }

    #[derive(Debug, PartialEq)]
    struct Owned {
        method: String,
        target: String,
        version: Version,
        head_len: usize,
        framing: BodyFraming,
        keep_alive: bool,
        expect_continue: bool,
        host: Option<Vec<u8>>,
        headers: usize,
    }

    impl From<&RequestHead<'_, '_>> for Owned {
        fn from(h: &RequestHead<'_, '_>) -> Self {
            Owned {
                method: h.method.into(),
                target: h.target.into(),
                version: h.version,
                head_len: h.head_len,
                framing: h.framing,
                keep_alive: h.keep_alive,
                expect_continue: h.expect_continue,
                host: h.host.map(<[u8]>::to_vec),
                headers: h.headers.len(),
            }
        }
    }

    /// The error does not depend on how the bytes arrive (a partial head must not hide
    /// it, nor report a different one).
    fn same_error_at_every_split(req: &[u8], want: RequestError) {
        use crate::http::testkit::{RequestStream, StreamError};
        for cut in 0..=req.len() {
            let mut s = RequestStream::new(Limits::default());
            s.feed(&req[..cut]);
            s.feed(&req[cut..]);
            assert_eq!(
                s.error,
                Some(StreamError::Request(want)),
                "{:?} cut at {cut}",
                show(req)
            );
        }
    }

    /// One-line cases: request text (headers after the Host line) -> expected status.
    macro_rules! rejects {
        ($($name:ident: $req:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                let e = err($req);
                assert_eq!(e, $err, "{:?}", show($req));
                same_error_at_every_split($req, e);
            }
        )*};
    }

    #[test]
    fn simple_get() {
        let h =
            complete(b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/index.html?q=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.host.as_deref(), Some(&b"example.com"[..]));
        assert_eq!(h.headers, 2);
        assert_eq!(h.head_len, 64);
    }

    #[test]
    fn head_len_stops_before_body() {
        let buf = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
        let h = complete(buf);
        assert_eq!(h.framing, BodyFraming::Length(5));
        assert_eq!(&buf[h.head_len..h.head_len + 5], b"hello");
    }

    #[test]
    fn partial_until_blank_line() {
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(Parsed::Partial), "cut at {cut}");
        }
        complete(full);
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-Thing: 1\r\nx-thing: 2\r\n\r\n";
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(h)) = parse_request(buf, &mut storage, &Limits::default()) else {
            panic!("no parse")
        };
        assert_eq!(h.header("X-THING"), Some(&b"1"[..]));
        assert_eq!(h.header("missing"), None);
    }

    // --- keep-alive -------------------------------------------------------------------

    #[test]
    fn keep_alive_defaults() {
        assert!(complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn connection_close_token_in_a_list() {
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade ,CLOSE\r\n\r\n")
                .keep_alive
        );
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: te\r\nConnection: close\r\n\r\n")
                .keep_alive
        );
        assert!(!complete(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
        // A token that merely contains "close" is not the close option.
        assert!(complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").keep_alive);
    }

    #[test]
    fn expect_continue() {
        assert!(
            complete(
                b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"
            )
            .expect_continue
        );
        assert!(!complete(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").expect_continue);
        // RFC 9110 section 10.1.1: ignored in HTTP/1.0.
        assert!(!complete(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    }

    // --- framing ------------------------------------------------------------------------

    #[test]
    fn content_length_framing() {
        let h = complete(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::None);
        let h = complete(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Length(42));
        let h =
            complete(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Length(u64::MAX));
    }

    #[test]
    fn identical_content_lengths_fold() {
        let h = complete(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Length(5));
        let h = complete(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
        );
        assert_eq!(h.framing, BodyFraming::Length(5));
    }

    #[test]
    fn te_empty_list_elements_are_ignored() {
        // RFC 9110 section 5.6.1.2: a recipient MUST ignore empty list elements.
        for te in [&b", chunked"[..], b"chunked ,", b" ,, chunked , "] {
            let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ".to_vec();
            req.extend_from_slice(te);
            req.extend_from_slice(b"\r\n\r\n");
            assert_eq!(complete(&req).framing, BodyFraming::Chunked, "{}", show(te));
        }
    }

    #[test]
    fn chunked_framing() {
        let h = complete(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
        let h = complete(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
    }

    rejects! {
        te_with_cl: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
            => RequestError::TransferEncodingWithContentLength;
        cl_then_te: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            => RequestError::TransferEncodingWithContentLength;
        differing_cl_fields: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
            => RequestError::InvalidContentLength;
        differing_cl_list: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_empty_element: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_empty: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_plus: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_minus: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_hex: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_inner_space: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_overflow: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n"
            => RequestError::InvalidContentLength;
        cl_later_invalid: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: x\r\n\r\n"
            => RequestError::InvalidContentLength;
        te_not_chunked_last: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_gzip_only: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_chunked_twice: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_chunked_then_other_field: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_empty: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_only_empty_elements: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , ,\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_empty_parameterised: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ;x=1, chunked\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_bad_token: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        te_unknown_before_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            => RequestError::UnsupportedTransferEncoding;
        te_unknown_field_before_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\nTransfer-Encoding: chunked\r\n\r\n"
            => RequestError::UnsupportedTransferEncoding;
        te_in_http10: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
            => RequestError::InvalidTransferEncoding;
        obs_fold: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"
            => RequestError::Malformed;
        obs_fold_tab: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"
            => RequestError::Malformed;
        space_before_colon: b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"
            => RequestError::Malformed;
        tab_before_colon: b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"
            => RequestError::Malformed;
        space_before_first_field: b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"
            => RequestError::Malformed;
        bare_cr_in_value: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"
            => RequestError::Malformed;
        bare_cr_line_end: b"GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n"
            => RequestError::Malformed;
        bare_cr_in_target: b"GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        bare_cr_request_line_end: b"GET / HTTP/1.1\rHost: a\r\n\r\n"
            => RequestError::Malformed;
        bare_cr_in_name: b"GET / HTTP/1.1\r\nHost: a\r\nX\r: b\r\n\r\n"
            => RequestError::Malformed;
        bare_cr_before_request_line: b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        bare_cr_final_line: b"GET / HTTP/1.1\r\nHost: a\r\n\rX"
            => RequestError::Malformed;
        bare_lf_request_line: b"GET / HTTP/1.1\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        bare_lf_field: b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"
            => RequestError::Malformed;
        bare_lf_field_trailing_ws: b"GET / HTTP/1.1\r\nHost: a \nX: y\r\n\r\n"
            => RequestError::Malformed;
        bare_lf_empty_value: b"GET / HTTP/1.1\r\nHost: a\r\nX:\n\r\n"
            => RequestError::Malformed;
        bare_lf_final: b"GET / HTTP/1.1\r\nHost: a\r\n\n"
            => RequestError::Malformed;
        bare_lf_before_request_line: b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        missing_host: b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"
            => RequestError::InvalidHost;
        duplicate_host: b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"
            => RequestError::InvalidHost;
        duplicate_host_http10: b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"
            => RequestError::InvalidHost;
        invalid_host: b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"
            => RequestError::InvalidHost;
        invalid_host_slash: b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"
            => RequestError::InvalidHost;
        http2_version: b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"
            => RequestError::UnsupportedVersion;
        http0_version: b"GET / HTTP/0.9\r\nHost: a\r\n\r\n"
            => RequestError::UnsupportedVersion;
        http3_partial: b"GET / HTTP/3.0\r"
            => RequestError::UnsupportedVersion;
        http1_2_version: b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"
            => RequestError::UnsupportedVersion;
        http1_10_version: b"GET / HTTP/1.10\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        http1_no_minor: b"GET / HTTP/1\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        http_lowercase: b"GET / http/1.1\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        http10_major: b"GET / HTTP/10.0\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        space_in_target: b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        double_space: b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::Malformed;
        nul_in_value: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"
            => RequestError::Malformed;
        empty_name: b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"
            => RequestError::Malformed;
        asterisk_for_get: b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        asterisk_with_more: b"OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        authority_for_get: b"GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        connect_with_path: b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        connect_without_port: b"CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        relative_target: b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        non_ascii_target: b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        high_byte_in_absolute_target: b"GET http://a/\xc2\xa0 HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::InvalidTarget;
        empty_host_origin_form: b"GET / HTTP/1.1\r\nHost:\r\n\r\n"
            => RequestError::InvalidHost;
        long_method: b"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\nHost: a\r\n\r\n"
            => RequestError::MethodTooLong;
        long_method_then_bad_byte: b"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ( / HTTP/1.1\r\n\r\n"
            => RequestError::MethodTooLong;
    }

    #[test]
    fn eq_lower_matches_eq_ignore_ascii_case_on_field_bytes() {
        // Every byte httparse admits in a field name or value, against every byte of the
        // literals we compare with.
        let field_bytes =
            (0u8..=255).filter(|&b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80);
        let literal_bytes = b"abcdefghijklmnopqrstuvwxyz0123456789-";
        for a in field_bytes {
            for &l in literal_bytes {
                assert_eq!(
                    eq_lower(&[a], &[l]),
                    [a].eq_ignore_ascii_case(&[l]),
                    "{a:#x} vs {l:#x}"
                );
            }
        }
        assert!(eq_lower(b"Keep-Alive", b"keep-alive"));
        assert!(!eq_lower(b"Keep-Alivf", b"keep-alive"));
        assert!(!eq_lower(b"close", b"closed"));
    }

    #[test]
    fn status_mapping_is_one_place() {
        use RequestError::*;
        let cases = [
            (Malformed, 400),
            (TransferEncodingWithContentLength, 400),
            (InvalidContentLength, 400),
            (InvalidTransferEncoding, 400),
            (UnsupportedTransferEncoding, 501),
            (InvalidHost, 400),
            (UnsupportedVersion, 505),
            (HeadTooLarge, 431),
            (TargetTooLong, 414),
            (InvalidTarget, 400),
            (MethodTooLong, 501),
        ];
        for (e, s) in cases {
            assert_eq!(e.status(), s, "{e:?}");
        }
    }

    #[test]
    fn leading_empty_crlf_lines_are_skipped() {
        let h = complete(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.method, "GET");
        assert_eq!(h.head_len, 31);
    }

    #[test]
    fn version_partial_stays_partial() {
        assert_eq!(parse(b"GET / HTTP/2"), Ok(Parsed::Partial));
        assert_eq!(parse(b"GET / HTTP/1.1"), Ok(Parsed::Partial));
    }

    #[test]
    fn empty_host_only_with_absolute_form() {
        // RFC 9112 section 3.2: an empty Host is for a target without an authority; an
        // origin-form target to us always has one (see check_host).
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
            RequestError::InvalidHost
        );
        assert_eq!(
            err(b"GET / HTTP/1.0\r\nHost: \r\n\r\n"),
            RequestError::InvalidHost
        );
        assert_eq!(
            err(b"OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n"),
            RequestError::InvalidHost
        );
        // Absolute-form: the Host field is ignored, so its emptiness does not matter.
        let h = complete(b"GET http://a/x HTTP/1.1\r\nHost:\r\n\r\n");
        assert_eq!(h.host.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn target_forms_by_method() {
        let ok: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a?b=c HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET HTTPS://a HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            b"CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        ];
        for req in ok {
            let h = complete(req);
            assert!(!h.target.is_empty(), "{:?}", show(req));
        }
    }

    #[test]
    fn long_method_is_501_at_any_length_of_input() {
        let mut req = vec![b'M'; 100 * 1024];
        req.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(err(&req), RequestError::MethodTooLong);
        assert_eq!(
            err(&req[..MAX_METHOD_BYTES + 1]),
            RequestError::MethodTooLong
        );
        assert_eq!(parse(&req[..MAX_METHOD_BYTES]), Ok(Parsed::Partial));
        let mut fits = vec![b'M'; MAX_METHOD_BYTES];
        fits.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(complete(&fits).method.len(), MAX_METHOD_BYTES);
        // Leading empty lines do not hide it either.
        let mut crlf = b"\r\n".to_vec();
        crlf.extend_from_slice(&req[..200]);
        assert_eq!(err(&crlf), RequestError::MethodTooLong);
    }

    #[test]
    fn empty_lines_up_to_the_head_limit_are_malformed_not_a_large_head() {
        let limits = Limits {
            max_head_bytes: 64,
            ..Limits::default()
        };
        let mut lines = b"\r\n".repeat(40);
        lines.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        for end in 0..=lines.len() {
            let want = match end {
                0..64 => Ok(Parsed::Partial),
                _ => Err(RequestError::Malformed),
            };
            assert_eq!(parse_with(&lines[..end], &limits), want, "{end} bytes");
        }
        // The start of a method at the limit is no request line either; a whole method
        // and a target that reach it make a head too large.
        let mut method = b"\r\n".repeat(30);
        method.extend_from_slice(b"GET");
        method.resize(64, b'T');
        assert_eq!(parse_with(&method, &limits), Err(RequestError::Malformed));
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        head.resize(64, b'v');
        assert_eq!(parse_with(&head, &limits), Err(RequestError::HeadTooLarge));
    }

    #[test]
    fn errors_display_their_cause_and_status() {
        let e: Box<dyn std::error::Error> = Box::new(RequestError::MethodTooLong);
        assert_eq!(e.to_string(), "method too long (501)");
        assert_eq!(
            RequestError::InvalidHost.to_string(),
            "missing, duplicate or invalid Host (400)"
        );
    }

    #[test]
    fn http10_without_host_is_fine() {
        let h = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(h.version, Version::Http10);
        assert_eq!(h.host, None);
    }

    // --- limits -------------------------------------------------------------------------

    fn request_with_fields(n: usize) -> Vec<u8> {
        let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 1..n {
            v.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v
    }

    #[test]
    fn header_count_limit() {
        let limits = Limits::default();
        assert!(matches!(
            parse_with(&request_with_fields(100), &limits),
            Ok(Parsed::Complete(_))
        ));
        assert_eq!(
            parse_with(&request_with_fields(101), &limits),
            Err(RequestError::HeadTooLarge)
        );
        let small = Limits {
            max_headers: 3,
            ..Limits::default()
        };
        assert!(matches!(
            parse_with(&request_with_fields(3), &small),
            Ok(Parsed::Complete(_))
        ));
        assert_eq!(
            parse_with(&request_with_fields(4), &small),
            Err(RequestError::HeadTooLarge)
        );
    }

    #[test]
    fn head_size_limit_complete_and_partial() {
        let limits = Limits {
            max_head_bytes: 64,
            ..Limits::default()
        };
        let mut exact = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        exact.resize(62, b'v');
        exact.extend_from_slice(b"\r\n\r\n");
        // 66 bytes: 2 too many.
        assert_eq!(parse_with(&exact, &limits), Err(RequestError::HeadTooLarge));
        let mut fits = exact.clone();
        fits.drain(30..32);
        assert_eq!(fits.len(), 64);
        assert!(matches!(
            parse_with(&fits, &limits),
            Ok(Parsed::Complete(_))
        ));
        // A partial head that has already reached the limit without ending.
        assert_eq!(
            parse_with(&exact[..64], &limits),
            Err(RequestError::HeadTooLarge)
        );
        assert_eq!(parse_with(&exact[..63], &limits), Ok(Parsed::Partial));
        // A complete head followed by body bytes beyond the limit is fine.
        let mut with_body = fits.clone();
        with_body.extend_from_slice(&[b'b'; 100]);
        assert!(matches!(
            parse_with(&with_body, &limits),
            Ok(Parsed::Complete(_))
        ));
    }

    #[test]
    fn target_limit_complete_and_partial() {
        let limits = Limits {
            max_target_bytes: 10,
            ..Limits::default()
        };
        let ok = b"GET /123456789 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(matches!(parse_with(ok, &limits), Ok(Parsed::Complete(_))));
        let long = b"GET /1234567890 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(parse_with(long, &limits), Err(RequestError::TargetTooLong));
        // Still inside the target, already too long.
        assert_eq!(
            parse_with(b"GET /1234567890", &limits),
            Err(RequestError::TargetTooLong)
        );
        assert_eq!(parse_with(b"GET /123456789", &limits), Ok(Parsed::Partial));
        // Target complete, rest of the head missing.
        assert_eq!(
            parse_with(b"GET /1234567890 HTTP/1.1\r\n", &limits),
            Err(RequestError::TargetTooLong)
        );
    }
}
