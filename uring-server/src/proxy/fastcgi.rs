//! FastCGI (the FastCGI 1.0 specification, Open Market 1996), sans-IO, both ways.
//!
//! Request: every record is an 8-byte header (version 1, type, request id, content length
//! as 16-bit big-endian, padding length, reserved), content, padding to a multiple of 8.
//! We send BEGIN_REQUEST (role RESPONDER, `FCGI_KEEP_CONN`, so the app server keeps the
//! connection for the next request), the CGI variables of `cgi.rs` as PARAMS name-value
//! pairs (lengths of 1 byte below 128, else 4 bytes with the top bit set), an empty
//! PARAMS, the buffered body as STDIN records, an empty STDIN. One request at a time per
//! connection, always request id 1 (nginx does the same; multiplexing is rarely
//! implemented by app servers and `FCGI_MPXS_CONNS` is not asked for).
//!
//! Response: [`ResponseDecoder`] takes the app server's records cut anywhere, hands STDERR
//! bytes out separately (for the error log), and turns the CGI response on STDOUT (RFC
//! 3875 section 6: header lines, a blank line, the body) into an HTTP/1.1 response that
//! the proxy's strict response parser reads like any upstream's: a `Status:` field becomes
//! the status line (200 without one, 302 for a `Location` without one), the body keeps
//! the app's Content-Length when it gives one (checked against what arrives) and is
//! chunked otherwise, and END_REQUEST ends it. Any record for another request id, an
//! unknown record type, or a malformed CGI head is an error (502 before the head went out).

use std::io::Write as _;

use uring_common::http::serialize::reason_phrase;
use uring_common::http::RequestHead;

use super::cgi::{for_each_var, CgiContext, CgiError, Flavour, Script};

pub const VERSION_1: u8 = 1;
/// The only request id we use.
pub const REQUEST_ID: u16 = 1;
pub const BEGIN_REQUEST: u8 = 1;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;
const ROLE_RESPONDER: u16 = 1;
const FLAG_KEEP_CONN: u8 = 1;
/// END_REQUEST's protocol status for a request that ran to its end.
pub const REQUEST_COMPLETE: u8 = 0;
/// Content per STDIN/PARAMS record: the largest multiple of 8 under the 16-bit length, so
/// full records need no padding.
const RECORD_CONTENT: usize = 65528;
/// Largest CGI response head accepted from the app.
const MAX_CGI_HEAD: usize = 64 * 1024;

fn record_header(out: &mut Vec<u8>, kind: u8, content_len: usize) {
    let len = u16::try_from(content_len).expect("record content fits 16 bits");
    let padding = (8 - content_len % 8) % 8;
    out.extend_from_slice(&[VERSION_1, kind]);
    out.extend_from_slice(&REQUEST_ID.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[padding as u8, 0]);
}

/// `data` as records of `kind`, each padded; nothing for empty data.
fn write_stream(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    for piece in data.chunks(RECORD_CONTENT) {
        record_header(out, kind, piece.len());
        out.extend_from_slice(piece);
        out.resize(out.len() + (8 - piece.len() % 8) % 8, 0);
    }
}

fn pair_length(out: &mut Vec<u8>, n: usize) -> bool {
    if n < 128 {
        out.push(n as u8);
        return true;
    }
    // Four bytes with the top bit set leave 31 bits for the length.
    match u32::try_from(n) {
        Ok(n) if n < 1 << 31 => {
            out.extend_from_slice(&(n | 0x8000_0000).to_be_bytes());
            true
        }
        _ => false,
    }
}

/// Appends the records of one request to `out`: BEGIN_REQUEST, PARAMS, STDIN with
/// `body`. On error `out` is left as it was.
pub fn write_request(
    head: &RequestHead<'_, '_>,
    ctx: &CgiContext<'_>,
    script: Script<'_>,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CgiError> {
    record_header(out, BEGIN_REQUEST, 8);
    out.extend_from_slice(&ROLE_RESPONDER.to_be_bytes());
    out.extend_from_slice(&[FLAG_KEEP_CONN, 0, 0, 0, 0, 0]);
    let mut params = Vec::with_capacity(1024);
    let mut fits = true;
    let flavour = Flavour::Fastcgi { script };
    for_each_var(head, ctx, body.len() as u64, flavour, &mut |name, value| {
        fits &= pair_length(&mut params, name.len()) && pair_length(&mut params, value.len());
        params.extend_from_slice(name);
        params.extend_from_slice(value);
    })?;
    if !fits {
        return Err(CgiError::TooLarge);
    }
    write_stream(out, PARAMS, &params);
    record_header(out, PARAMS, 0);
    write_stream(out, STDIN, body);
    record_header(out, STDIN, 0);
    Ok(())
}

/// END_REQUEST's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRequest {
    /// The application's exit status (a CGI script's exit code).
    pub app_status: u32,
    /// [`REQUEST_COMPLETE`], or why the app server did not run it (1 cannot multiplex,
    /// 2 overloaded, 3 unknown role).
    pub protocol_status: u8,
}

/// Where a response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More records are needed.
    Pending,
    /// END_REQUEST arrived; the HTTP response in `out` is complete.
    Done(EndRequest),
}

/// Why a response is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// A record header with a version other than 1.
    BadVersion(u8),
    /// A record for a request we did not send.
    WrongRequestId(u16),
    /// A record type a responder's reply never has.
    UnexpectedRecord(u8),
    /// END_REQUEST's content is not 8 bytes.
    BadEndRequest,
    /// The CGI head on STDOUT is malformed (a bad line, Status or Content-Length).
    BadCgiHead,
    /// The CGI head is larger than 64 KiB.
    CgiHeadTooLarge,
    /// END_REQUEST came before a complete CGI head (an empty STDOUT).
    NoCgiHead,
    /// The app server refused the request (END_REQUEST's protocol status, not 0).
    Refused(u8),
    /// The body disagreed with the app's Content-Length.
    LengthMismatch,
    /// The connection ended before END_REQUEST.
    Truncated,
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::BadVersion(v) => write!(f, "FastCGI record of version {v}"),
            ResponseError::WrongRequestId(id) => write!(f, "FastCGI record for request id {id}"),
            ResponseError::UnexpectedRecord(t) => write!(f, "unexpected FastCGI record type {t}"),
            ResponseError::BadEndRequest => write!(f, "malformed FastCGI END_REQUEST"),
            ResponseError::BadCgiHead => write!(f, "malformed CGI response head"),
            ResponseError::CgiHeadTooLarge => write!(f, "CGI response head over 64 KiB"),
            ResponseError::NoCgiHead => write!(f, "FastCGI request ended without a response"),
            ResponseError::Refused(s) => write!(f, "FastCGI request refused (protocol status {s})"),
            ResponseError::LengthMismatch => {
                write!(f, "CGI body length differs from its Content-Length")
            }
            ResponseError::Truncated => write!(f, "FastCGI connection closed before END_REQUEST"),
        }
    }
}

impl std::error::Error for ResponseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// Reading a record header (`filled` bytes of it so far).
    Header,
    /// In a STDOUT or STDERR record's content.
    Content {
        kind: u8,
        left: usize,
        padding: usize,
    },
    /// In END_REQUEST's content.
    End {
        padding: usize,
    },
    Padding {
        left: usize,
    },
    /// END_REQUEST and its padding are in.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// No body goes to the client (HEAD, 204, 304); the app's bytes are dropped.
    Discard,
    Length {
        left: u64,
    },
    Chunked,
}

#[derive(Debug)]
enum Cgi {
    /// Collecting the head; `scanned` is where the unfinished line starts.
    Head {
        buf: Vec<u8>,
        scanned: usize,
    },
    Body(Body),
}

/// Decodes one request's response records; see the module text.
#[derive(Debug)]
pub struct ResponseDecoder {
    head_only: bool,
    record: Record,
    header: [u8; 8],
    filled: usize,
    cgi: Cgi,
    end: Option<EndRequest>,
    got_bytes: bool,
    trailing: bool,
}

impl ResponseDecoder {
    /// `head_only`: the client asked with HEAD, so no body goes to it.
    pub fn new(head_only: bool) -> ResponseDecoder {
        ResponseDecoder {
            head_only,
            record: Record::Header,
            header: [0; 8],
            filled: 0,
            cgi: Cgi::Head {
                buf: Vec::new(),
                scanned: 0,
            },
            end: None,
            got_bytes: false,
            trailing: false,
        }
    }

    /// The HTTP head is in `out`: a failure now must close the client.
    pub fn head_sent(&self) -> bool {
        matches!(self.cgi, Cgi::Body(_))
    }

    pub fn got_bytes(&self) -> bool {
        self.got_bytes
    }

    /// The connection may carry another request: the response ended cleanly and nothing
    /// followed it.
    pub fn reusable(&self) -> bool {
        self.record == Record::Done
            && !self.trailing
            && self
                .end
                .is_some_and(|e| e.protocol_status == REQUEST_COMPLETE)
    }

    /// Bytes from the app server. The client's HTTP/1.1 response grows in `out`, the app's
    /// STDERR in `stderr`.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        out: &mut Vec<u8>,
        stderr: &mut Vec<u8>,
    ) -> Result<Progress, ResponseError> {
        self.got_bytes |= !data.is_empty();
        while !data.is_empty() {
            match self.record {
                Record::Done => {
                    self.trailing = true;
                    break;
                }
                Record::Header => {
                    let n = (8 - self.filled).min(data.len());
                    self.header[self.filled..self.filled + n].copy_from_slice(&data[..n]);
                    self.filled += n;
                    data = &data[n..];
                    if self.filled == 8 {
                        self.filled = 0;
                        self.record = self.next_record()?;
                    }
                }
                Record::Content {
                    kind,
                    left,
                    padding,
                } => {
                    let n = left.min(data.len());
                    if kind == STDOUT {
                        self.stdout(&data[..n], out)?;
                    } else {
                        stderr.extend_from_slice(&data[..n]);
                    }
                    data = &data[n..];
                    self.record = if n < left {
                        Record::Content {
                            kind,
                            left: left - n,
                            padding,
                        }
                    } else {
                        Record::Padding { left: padding }
                    };
                }
                Record::End { padding } => {
                    let n = (8 - self.filled).min(data.len());
                    self.header[self.filled..self.filled + n].copy_from_slice(&data[..n]);
                    self.filled += n;
                    data = &data[n..];
                    if self.filled == 8 {
                        self.filled = 0;
                        let h = self.header;
                        let end = EndRequest {
                            app_status: u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
                            protocol_status: h[4],
                        };
                        self.end = Some(end);
                        self.finish(out)?;
                        self.record = Record::Padding { left: padding };
                    }
                }
                Record::Padding { left } => {
                    let n = left.min(data.len());
                    data = &data[n..];
                    self.record = Record::Padding { left: left - n };
                }
            }
            if self.record == (Record::Padding { left: 0 }) {
                self.record = if self.end.is_some() {
                    Record::Done
                } else {
                    Record::Header
                };
            }
        }
        Ok(match (self.record, self.end) {
            (Record::Done, Some(end)) => Progress::Done(end),
            _ => Progress::Pending,
        })
    }

    /// The app server closed the connection.
    pub fn on_eof(&mut self) -> Result<Progress, ResponseError> {
        match (self.record, self.end) {
            (Record::Done, Some(end)) => Ok(Progress::Done(end)),
            _ => Err(ResponseError::Truncated),
        }
    }

    fn next_record(&mut self) -> Result<Record, ResponseError> {
        let h = self.header;
        if h[0] != VERSION_1 {
            return Err(ResponseError::BadVersion(h[0]));
        }
        let id = u16::from_be_bytes([h[2], h[3]]);
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let padding = usize::from(h[6]);
        match h[1] {
            STDOUT | STDERR | END_REQUEST if id != REQUEST_ID => {
                Err(ResponseError::WrongRequestId(id))
            }
            kind @ (STDOUT | STDERR) => Ok(Record::Content {
                kind,
                left: len,
                padding,
            }),
            END_REQUEST if len == 8 => Ok(Record::End { padding }),
            END_REQUEST => Err(ResponseError::BadEndRequest),
            other => Err(ResponseError::UnexpectedRecord(other)),
        }
    }

    fn stdout(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ResponseError> {
        let Cgi::Head { buf, scanned } = &mut self.cgi else {
            return self.body(data, out);
        };
        buf.extend_from_slice(data);
        let mut start = *scanned;
        let body_start = loop {
            let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') else {
                *scanned = start;
                if buf.len() > MAX_CGI_HEAD {
                    return Err(ResponseError::CgiHeadTooLarge);
                }
                return Ok(());
            };
            let line_end = start + nl;
            if buf[start..line_end]
                .strip_suffix(b"\r")
                .unwrap_or(&buf[start..line_end])
                .is_empty()
            {
                break line_end + 1;
            }
            start = line_end + 1;
            if start > MAX_CGI_HEAD {
                return Err(ResponseError::CgiHeadTooLarge);
            }
        };
        let buf = std::mem::take(buf);
        let body = write_http_head(&buf[..body_start], self.head_only, out)?;
        self.cgi = Cgi::Body(body);
        self.body(&buf[body_start..], out)
    }

    fn body(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ResponseError> {
        let Cgi::Body(body) = &mut self.cgi else {
            return Ok(());
        };
        if data.is_empty() {
            return Ok(());
        }
        match body {
            Body::Discard => {}
            Body::Length { left } => {
                if data.len() as u64 > *left {
                    return Err(ResponseError::LengthMismatch);
                }
                *left -= data.len() as u64;
                out.extend_from_slice(data);
            }
            Body::Chunked => {
                let _ = write!(out, "{:x}\r\n", data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ResponseError> {
        let end = self.end.unwrap_or(EndRequest {
            app_status: 0,
            protocol_status: REQUEST_COMPLETE,
        });
        match &self.cgi {
            Cgi::Head { .. } if end.protocol_status != REQUEST_COMPLETE => {
                Err(ResponseError::Refused(end.protocol_status))
            }
            Cgi::Head { .. } => Err(ResponseError::NoCgiHead),
            Cgi::Body(Body::Length { left: 1.. }) => Err(ResponseError::LengthMismatch),
            Cgi::Body(Body::Chunked) => {
                out.extend_from_slice(b"0\r\n\r\n");
                Ok(())
            }
            Cgi::Body(_) => Ok(()),
        }
    }
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The HTTP/1.1 head for a CGI head (its lines, the blank one included); returns how the
/// body is framed.
fn write_http_head(cgi: &[u8], head_only: bool, out: &mut Vec<u8>) -> Result<Body, ResponseError> {
    let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
    for line in cgi.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ResponseError::BadCgiHead)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.is_empty()
            || !name.iter().copied().all(is_token)
            || value.iter().any(|&b| b == 0x7f || (b < 0x20 && b != b'\t'))
        {
            return Err(ResponseError::BadCgiHead);
        }
        fields.push((name, value));
    }
    let named = |n: &'static str| {
        fields
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(n.as_bytes()))
    };
    let (status, reason) = match named("status").count() {
        0 if named("location").next().is_some() => (302, &b""[..]),
        0 => (200, &b""[..]),
        1 => {
            let v = named("status").next().map(|(_, v)| *v).unwrap_or_default();
            let digits = v.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
            let reason = v.get(3..).unwrap_or_default();
            match digits {
                Some(d) if reason.is_empty() || reason[0] == b' ' => {
                    let code = d.iter().fold(0u16, |n, &b| n * 10 + u16::from(b - b'0'));
                    if !(200..=599).contains(&code) {
                        return Err(ResponseError::BadCgiHead);
                    }
                    (code, reason.trim_ascii())
                }
                _ => return Err(ResponseError::BadCgiHead),
            }
        }
        _ => return Err(ResponseError::BadCgiHead),
    };
    let mut length: Option<u64> = None;
    for (_, v) in named("content-length") {
        let n = std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(ResponseError::BadCgiHead)?;
        if length.is_some_and(|l| l != n) {
            return Err(ResponseError::BadCgiHead);
        }
        length = Some(n);
    }
    let _ = write!(out, "HTTP/1.1 {status} ");
    if reason.is_empty() {
        out.extend_from_slice(reason_phrase(status).as_bytes());
    } else {
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(b"\r\n");
    for (name, value) in &fields {
        // The framing and the connection are ours to decide.
        let ours = [
            "status",
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
        ];
        if ours.iter().any(|o| name.eq_ignore_ascii_case(o.as_bytes())) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let body = if head_only || status == 204 || status == 304 {
        if let Some(n) = length.filter(|_| status != 204) {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        Body::Discard
    } else if let Some(n) = length {
        let _ = write!(out, "Content-Length: {n}\r\n");
        Body::Length { left: n }
    } else {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        Body::Chunked
    };
    out.extend_from_slice(b"\r\n");
    Ok(body)
}

/// Test and fuzz support: the records of a response, built the way an app server sends
/// them (`stdout` and `stderr` each in records of at most `piece` bytes, padded).
pub fn response_records(stdout: &[u8], stderr: &[u8], piece: usize, end: EndRequest) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, data) in [(STDERR, stderr), (STDOUT, stdout)] {
        for p in data.chunks(piece.clamp(1, 65535)) {
            record_header(&mut out, kind, p.len());
            out.extend_from_slice(p);
            out.resize(out.len() + (8 - p.len() % 8) % 8, 0);
        }
    }
    record_header(&mut out, STDOUT, 0);
    record_header(&mut out, END_REQUEST, 8);
    out.extend_from_slice(&end.app_status.to_be_bytes());
    out.extend_from_slice(&[end.protocol_status, 0, 0, 0]);
    out
}

/// A record stream parsed back into (type, request id, content): for tests and fuzzing of
/// our request side.
pub fn parse_records(mut buf: &[u8]) -> Option<Vec<(u8, u16, &[u8])>> {
    let mut v = Vec::new();
    while !buf.is_empty() {
        let h = buf.get(..8)?;
        if h[0] != VERSION_1 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let total = 8 + len + usize::from(h[6]);
        let content = buf.get(8..8 + len)?;
        v.push((h[1], u16::from_be_bytes([h[2], h[3]]), content));
        buf = buf.get(total..)?;
    }
    Some(v)
}

/// PARAMS content parsed back into name-value pairs.
pub fn parse_params(mut buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    fn len(buf: &mut &[u8]) -> Option<usize> {
        let first = *buf.first()?;
        if first < 128 {
            *buf = &buf[1..];
            return Some(usize::from(first));
        }
        let b = buf.get(..4)?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff;
        *buf = &buf[4..];
        usize::try_from(n).ok()
    }
    let mut v = Vec::new();
    while !buf.is_empty() {
        let (n, m) = (len(&mut buf)?, len(&mut buf)?);
        let name = buf.get(..n)?;
        let value = buf.get(n..n + m)?;
        v.push((name, value));
        buf = &buf[n + m..];
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::cgi::tests::ctx;
    use uring_common::http::testkit::ResponseStream;
    use uring_common::http::{new_header_storage, parse_request, parse_response, Limits, Parsed};

    fn request(raw: &[u8], script: Script<'_>) -> Vec<u8> {
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) = parse_request(raw, &mut storage, &Limits::default())
        else {
            panic!("parse");
        };
        let mut out = Vec::new();
        write_request(&head, &ctx(), script, &raw[head.head_len..], &mut out).unwrap();
        out
    }

    const END_OK: EndRequest = EndRequest {
        app_status: 0,
        protocol_status: REQUEST_COMPLETE,
    };

    #[test]
    fn request_records_are_exact() {
        let body = vec![b'x'; 70_000];
        let mut raw = b"POST /s.cgi HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n\r\n".to_vec();
        raw.extend_from_slice(&body);
        let out = request(&raw, Script::Root(b"/srv/cgi"));
        assert_eq!(
            &out[..16],
            &[
                1,
                BEGIN_REQUEST,
                0,
                1,
                0,
                8,
                0,
                0,
                0,
                1,
                FLAG_KEEP_CONN,
                0,
                0,
                0,
                0,
                0
            ]
        );
        let recs = parse_records(&out).unwrap();
        let kinds: Vec<(u8, usize)> = recs.iter().map(|r| (r.0, r.2.len())).collect();
        let params_len = recs[1].2.len();
        assert_eq!(
            kinds,
            [
                (BEGIN_REQUEST, 8),
                (PARAMS, params_len),
                (PARAMS, 0),
                (STDIN, 65528),
                (STDIN, 70_000 - 65528),
                (STDIN, 0)
            ]
        );
        assert!(recs.iter().all(|r| r.1 == REQUEST_ID));
        assert_eq!(out.len() % 8, 0, "every record padded to 8");
        let params = parse_params(recs[1].2).unwrap();
        assert_eq!(params[0], (&b"SCRIPT_FILENAME"[..], &b"/srv/cgi/s.cgi"[..]));
        assert!(params.contains(&(&b"CONTENT_LENGTH"[..], &b"70000"[..])));
        let stdin: Vec<u8> = recs
            .iter()
            .filter(|r| r.0 == STDIN)
            .flat_map(|r| r.2.to_vec())
            .collect();
        assert_eq!(stdin, body);
    }

    #[test]
    fn long_names_and_values_take_four_byte_lengths() {
        let v = "a".repeat(200);
        let raw = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Long: {v}\r\n\r\n");
        let out = request(raw.as_bytes(), Script::Fixed(b"/x"));
        let recs = parse_records(&out).unwrap();
        let params = parse_params(recs[1].2).unwrap();
        assert!(params.contains(&(&b"HTTP_X_LONG"[..], v.as_bytes())));
        let needle = [11u8, 0x80, 0, 0, 200];
        assert!(recs[1].2.windows(5).any(|w| w == needle));
    }

    /// Feeds `wire` in two pieces cut at `at`; the client's bytes, stderr, the outcome.
    fn decode(
        wire: &[u8],
        at: usize,
        head_only: bool,
    ) -> (Vec<u8>, Vec<u8>, Result<Progress, ResponseError>) {
        let mut d = ResponseDecoder::new(head_only);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut last = Ok(Progress::Pending);
        for piece in [&wire[..at], &wire[at..]] {
            last = d.feed(piece, &mut out, &mut err);
            if last.is_err() {
                return (out, err, last);
            }
        }
        if last == Ok(Progress::Pending) {
            last = d.on_eof();
        }
        (out, err, last)
    }

    /// Decodes `wire` cut at every position: the same outcome, STDERR and HTTP response
    /// (chunk sizes may differ with the cut, the parsed response may not).
    fn at_every_split(
        wire: &[u8],
        head_only: bool,
    ) -> (Vec<u8>, Vec<u8>, Result<Progress, ResponseError>) {
        let whole = decode(wire, wire.len(), head_only);
        for at in 0..wire.len() {
            let cut = decode(wire, at, head_only);
            assert_eq!((&cut.1, &cut.2), (&whole.1, &whole.2), "split at {at}");
            if whole.2.is_ok() {
                assert_eq!(
                    http(&cut.0, head_only),
                    http(&whole.0, head_only),
                    "split at {at}"
                );
            }
        }
        whole
    }

    /// Status, reason, fields, body.
    type Http = (u16, String, Vec<(String, Vec<u8>)>, Vec<u8>);

    /// The response as our strict parser reads it (a HEAD's must end with its head).
    fn http(out: &[u8], head_only: bool) -> Http {
        if head_only {
            let mut st = new_header_storage();
            let Ok(Parsed::Complete(h)) = parse_response(out, &mut st, true, 64 * 1024) else {
                panic!("{}", String::from_utf8_lossy(out));
            };
            assert_eq!(h.head_len, out.len());
            let fields = h
                .headers
                .iter()
                .map(|f| (f.name.to_string(), f.value.to_vec()));
            return (h.status, h.reason.to_string(), fields.collect(), Vec::new());
        }
        let mut s = ResponseStream::new(64 * 1024);
        s.feed(out);
        s.finish();
        assert_eq!(s.error, None, "{}", String::from_utf8_lossy(out));
        assert_eq!(s.messages.len(), 1);
        let r = &s.messages[0];
        (
            r.status,
            r.reason.clone(),
            r.headers.clone(),
            r.body.clone(),
        )
    }

    #[test]
    fn cgi_responses_become_http_at_every_split() {
        type Case = (&'static [u8], u16, &'static str, &'static [u8]);
        let cases: [Case; 5] = [
            (
                b"Content-Type: text/plain\r\n\r\nhello world",
                200,
                "OK",
                b"hello world",
            ),
            (
                b"Status: 404 Gone Away\nContent-Type: text/plain\n\nnope",
                404,
                "Gone Away",
                b"nope",
            ),
            (
                b"Status: 201\r\nContent-Length: 2\r\n\r\nok",
                201,
                "Created",
                b"ok",
            ),
            (b"Location: /elsewhere\r\n\r\n", 302, "Found", b""),
            (b"\r\nno fields at all", 200, "OK", b"no fields at all"),
        ];
        for (cgi, status, reason, body) in cases {
            for piece in [1, 3, 4096] {
                let wire = response_records(cgi, b"warning: x\n", piece, END_OK);
                let (out, err, res) = at_every_split(&wire, false);
                assert_eq!(res, Ok(Progress::Done(END_OK)));
                assert_eq!(err, b"warning: x\n");
                let (s, r, headers, b) = http(&out, false);
                assert_eq!((s, r.as_str(), b.as_slice()), (status, reason, body));
                assert!(headers
                    .iter()
                    .all(|(n, _)| !n.eq_ignore_ascii_case("status")));
            }
        }
        let wire = response_records(b"Location: http://a/\r\n\r\n", b"", 7, END_OK);
        let (out, _, _) = at_every_split(&wire, false);
        let (_, _, headers, _) = http(&out, false);
        assert!(headers.contains(&("Location".into(), b"http://a/".to_vec())));
    }

    #[test]
    fn head_requests_and_bodyless_statuses_drop_the_body() {
        let wire = response_records(b"Content-Length: 5\r\n\r\nhello", b"", 2, END_OK);
        let (out, _, res) = at_every_split(&wire, true);
        assert_eq!(res, Ok(Progress::Done(END_OK)));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.ends_with("Content-Length: 5\r\n\r\n"), "{text}");
        http(&out, true);
        let wire = response_records(b"Status: 304\r\n\r\nignored", b"", 2, END_OK);
        let (out, _, _) = at_every_split(&wire, false);
        assert!(out.ends_with(b"304 Not Modified\r\n\r\n"));
    }

    #[test]
    fn app_status_and_refusals_are_reported() {
        let end = EndRequest {
            app_status: 7,
            protocol_status: REQUEST_COMPLETE,
        };
        let wire = response_records(b"Status: 500\r\n\r\n", b"", 9, end);
        assert_eq!(at_every_split(&wire, false).2, Ok(Progress::Done(end)));
        let overloaded = EndRequest {
            app_status: 0,
            protocol_status: 2,
        };
        let wire = response_records(b"", b"", 9, overloaded);
        assert_eq!(
            at_every_split(&wire, false).2,
            Err(ResponseError::Refused(2))
        );
        let wire = response_records(b"", b"died\n", 9, END_OK);
        let (_, err, res) = at_every_split(&wire, false);
        assert_eq!(
            (err.as_slice(), res),
            (&b"died\n"[..], Err(ResponseError::NoCgiHead))
        );
    }

    #[test]
    fn malformed_records_are_errors() {
        let good = response_records(b"\r\nx", b"", 9, END_OK);
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(
            at_every_split(&v2, false).2,
            Err(ResponseError::BadVersion(2))
        );
        let mut other_id = good.clone();
        other_id[3] = 2;
        assert_eq!(
            at_every_split(&other_id, false).2,
            Err(ResponseError::WrongRequestId(2))
        );
        let mut unknown = good.clone();
        unknown[1] = 11;
        assert_eq!(
            at_every_split(&unknown, false).2,
            Err(ResponseError::UnexpectedRecord(11))
        );
        let mut short_end = good.clone();
        let n = short_end.len();
        short_end[n - 11] = 7;
        short_end.truncate(n - 1);
        assert_eq!(
            at_every_split(&short_end, false).2,
            Err(ResponseError::BadEndRequest)
        );
        assert_eq!(
            at_every_split(&good[..good.len() - 1], false).2,
            Err(ResponseError::Truncated)
        );
        for cgi in [
            &b"no colon\r\n\r\n"[..],
            b"Status: abc\r\n\r\n",
            b"Status: 99\r\n\r\n",
            b"Status: 200\r\nStatus: 201\r\n\r\n",
            b"Bad Name: x\r\n\r\n",
            b"X: a\rb\r\n\r\n",
            // DEL is not a field-value byte (RFC 9110 section 5.5); found by the fuzz target.
            b"X: a\x7fb\r\n\r\n",
            b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"Content-Length: -1\r\n\r\n",
        ] {
            let wire = response_records(cgi, b"", 9, END_OK);
            assert_eq!(
                at_every_split(&wire, false).2,
                Err(ResponseError::BadCgiHead),
                "{cgi:?}"
            );
        }
        for cgi in [
            &b"Content-Length: 1\r\n\r\nxx"[..],
            b"Content-Length: 3\r\n\r\nxx",
        ] {
            let wire = response_records(cgi, b"", 9, END_OK);
            assert_eq!(
                at_every_split(&wire, false).2,
                Err(ResponseError::LengthMismatch)
            );
        }
        let huge = vec![b'a'; MAX_CGI_HEAD + 10];
        let wire = response_records(&huge, b"", 65535, END_OK);
        assert_eq!(
            decode(&wire, 100, false).2,
            Err(ResponseError::CgiHeadTooLarge)
        );
    }

    #[test]
    fn reuse_only_after_a_clean_end() {
        let wire = response_records(b"\r\nx", b"", 9, END_OK);
        let mut d = ResponseDecoder::new(false);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            d.feed(&wire, &mut out, &mut err),
            Ok(Progress::Done(END_OK))
        );
        assert!(d.reusable() && d.head_sent());
        d.feed(b"x", &mut out, &mut err).unwrap();
        assert!(!d.reusable(), "bytes after END_REQUEST");
    }
}
