//! Response head parsing for the load tool: liberal in what real servers send, exact in
//! what it counts.
//!
//! Liberal: bare LF line endings, obs-fold continuation lines, whitespace before a
//! field's colon, several spaces after the version and a missing reason phrase are all
//! accepted (httparse's response switches). Exact: the framing follows RFC 9112 section
//! 6.3 for a client, and anything that makes the body length ambiguous is an error,
//! because a load tool that guesses a length miscounts every response after it.

use std::mem::MaybeUninit;

use super::request::{fold_content_length, name_is, read_codings, read_connection, TeCodings};
use super::{HeaderStorage, Parsed, Version, HEADER_CAPACITY};

/// How a response body is delimited (RFC 9112 section 6.3, client side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// HEAD request, 1xx, 204, 304: no body whatever the headers say.
    NoBody,
    Length(u64),
    Chunked,
    /// No Content-Length and no chunked: the body runs until the server closes.
    UntilClose,
}

/// A parsed response head; strings borrow the receive buffer.
#[derive(Debug)]
pub struct ResponseHead<'b, 'h> {
    pub version: Version,
    pub status: u16,
    pub reason: &'b str,
    pub headers: &'h [httparse::Header<'b>],
    /// Bytes of the head, including the final CRLF.
    pub head_len: usize,
    pub framing: ResponseFraming,
    /// Whether the server lets the connection stay open after this response.
    pub keep_alive: bool,
}

impl<'b> ResponseHead<'b, '_> {
    /// 1xx responses are interim: the final response follows on the same connection.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// First value of the named header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// A response the load tool cannot frame; counted as a parse error, connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    Malformed,
    InvalidContentLength,
    InvalidTransferEncoding,
    HeadTooLarge,
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResponseError::Malformed => "malformed response head",
            ResponseError::InvalidContentLength => "invalid Content-Length in response",
            ResponseError::InvalidTransferEncoding => "invalid Transfer-Encoding in response",
            ResponseError::HeadTooLarge => "response head too large",
        })
    }
}

impl std::error::Error for ResponseError {}

fn config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    config
}

/// Parse a response head at the start of `buf`. `request_was_head` makes the body empty.
///
/// The head may hold up to [`HEADER_CAPACITY`] fields; more, or a head longer than
/// `max_head_bytes` (complete or still partial), is `HeadTooLarge`.
pub fn parse_response<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut HeaderStorage<'b>,
    request_was_head: bool,
    max_head_bytes: usize,
) -> Result<Parsed<ResponseHead<'b, 'h>>, ResponseError> {
    let window = &buf[..buf.len().min(max_head_bytes)];
    let storage: &'h mut [MaybeUninit<httparse::Header<'b>>] = &mut headers[..HEADER_CAPACITY];
    let mut res = httparse::Response::new(&mut []);
    let head_len = match config().parse_response_with_uninit_headers(&mut res, window, storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_head_bytes => {
            return Err(ResponseError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLarge),
        Err(_) => return Err(ResponseError::Malformed),
    };
    let httparse::Response {
        version,
        code,
        reason,
        headers: fields,
    } = res;
    let (Some(minor), Some(status)) = (version, code) else {
        return Err(ResponseError::Malformed);
    };
    // RFC 9110 section 15: "Values outside the range 100..599 are invalid."
    if !(100..=599).contains(&status) {
        return Err(ResponseError::Malformed);
    }
    let fields: &'h [httparse::Header<'b>] = fields;
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };

    let (framing, keep_alive) = response_framing(version, status, request_was_head, fields)?;

    Ok(Parsed::Complete(ResponseHead {
        version,
        status,
        reason: reason.unwrap_or(""),
        headers: fields,
        head_len,
        framing,
        keep_alive,
    }))
}

/// The framing decision of RFC 9112 section 6.3 for a response, and whether the
/// connection may stay open after it (one pass over the fields).
fn response_framing(
    version: Version,
    status: u16,
    request_was_head: bool,
    fields: &[httparse::Header<'_>],
) -> Result<(ResponseFraming, bool), ResponseError> {
    let mut content_length: Option<Result<u64, ()>> = None;
    let mut has_te = false;
    let mut te = TeCodings::default();
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for field in fields {
        let name = field.name.as_bytes();
        match name.len() {
            10 if name_is(name, b"connection") => {
                read_connection(field.value, &mut conn_close, &mut conn_keep_alive)
            }
            14 if name_is(name, b"content-length") => {
                content_length = Some(fold_content_length(content_length, field.value));
            }
            17 if name_is(name, b"transfer-encoding") => {
                has_te = true;
                read_codings(&mut te, field.value);
            }
            _ => {}
        }
    }

    // RFC 9112 section 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
    let mut keep_alive = !conn_close && (version == Version::Http11 || conn_keep_alive);

    // RFC 9112 section 6.3, in its order.
    let framing =
        if request_was_head || (100..200).contains(&status) || status == 204 || status == 304 {
            // "Any response to a HEAD request and any response with a 1xx (Informational),
            // 204 (No Content), or 304 (Not Modified) status code is always terminated by the
            // first empty line after the header fields, regardless of the header fields
            // present in the message, and thus cannot contain a message body or trailer
            // section."
            ResponseFraming::NoBody
        } else if has_te {
            if version == Version::Http10 {
                // RFC 9112 section 6.1: "A server or client that receives an HTTP/1.0
                // message containing a Transfer-Encoding header field MUST treat the message
                // as if the framing is faulty".
                return Err(ResponseError::InvalidTransferEncoding);
            }
            if content_length.is_some() {
                // "If a message is received with both a Transfer-Encoding and a
                // Content-Length header field, the Transfer-Encoding overrides the
                // Content-Length. Such a message might indicate an attempt to perform request
                // smuggling ... or response splitting ... and ought to be handled as an
                // error." We frame by Transfer-Encoding and close afterwards.
                keep_alive = false;
            }
            if te.invalid || te.chunked_not_last || te.count == 0 {
                return Err(ResponseError::InvalidTransferEncoding);
            }
            if te.last_is_chunked && !te.other {
                ResponseFraming::Chunked
            } else {
                // "If a Transfer-Encoding header field is present in a response and the
                // chunked transfer coding is not the final encoding, the message body length
                // is determined by reading the connection until it is closed by the server."
                // A coding before chunked (`gzip, chunked`) cannot be undone here either, and
                // the body is counted as bytes, so it too reads to the close.
                keep_alive = false;
                ResponseFraming::UntilClose
            }
        } else {
            match content_length {
                // "If a message is received without Transfer-Encoding and with an invalid
                // Content-Length header field, then the message framing is invalid and the
                // recipient MUST treat it as an unrecoverable error ... the user agent MUST
                // close the connection to the server and discard the received response."
                Some(Err(())) => return Err(ResponseError::InvalidContentLength),
                Some(Ok(n)) => ResponseFraming::Length(n),
                // "Otherwise, this is a response message without a declared message body
                // length, so the message body length is determined by the number of octets
                // received prior to the server closing the connection."
                None => {
                    keep_alive = false;
                    ResponseFraming::UntilClose
                }
            }
        };
    Ok((framing, keep_alive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::new_header_storage;

    #[derive(Debug, PartialEq)]
    struct Owned {
        version: Version,
        status: u16,
        reason: String,
        head_len: usize,
        framing: ResponseFraming,
        keep_alive: bool,
        headers: usize,
    }

    fn parse(buf: &[u8], head: bool) -> Result<Parsed<Owned>, ResponseError> {
        let mut storage = new_header_storage();
        parse_response(buf, &mut storage, head, 16 * 1024).map(|p| match p {
            Parsed::Partial => Parsed::Partial,
            Parsed::Complete(h) => Parsed::Complete(Owned {
                version: h.version,
                status: h.status,
                reason: h.reason.into(),
                head_len: h.head_len,
                framing: h.framing,
                keep_alive: h.keep_alive,
                headers: h.headers.len(),
            }),
        })
    }

    fn complete(buf: &[u8]) -> Owned {
        match parse(buf, false) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn framing(buf: &[u8]) -> (ResponseFraming, bool) {
        let h = complete(buf);
        (h.framing, h.keep_alive)
    }

    #[test]
    fn plain_ok() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nServer: x\r\n\r\nHello, World!";
        let h = complete(buf);
        assert_eq!(h.status, 200);
        assert_eq!(h.reason, "OK");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.framing, ResponseFraming::Length(13));
        assert!(h.keep_alive);
        assert_eq!(h.headers, 2);
        assert_eq!(&buf[h.head_len..], b"Hello, World!");
    }

    #[test]
    fn partial_until_blank_line() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut], false), Ok(Parsed::Partial), "cut {cut}");
        }
    }

    #[test]
    fn no_body_cases() {
        for status in [100, 101, 103, 204, 304] {
            let buf = format!("HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n");
            assert_eq!(
                framing(buf.as_bytes()).0,
                ResponseFraming::NoBody,
                "{status}"
            );
        }
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        let Ok(Parsed::Complete(h)) = parse(buf, true) else {
            panic!()
        };
        assert_eq!(h.framing, ResponseFraming::NoBody);
        assert!(h.keep_alive);
    }

    #[test]
    fn chunked_and_until_close() {
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (ResponseFraming::Chunked, true)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            (ResponseFraming::UntilClose, false)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            (ResponseFraming::UntilClose, false)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\n\r\n"),
            (ResponseFraming::UntilClose, false)
        );
        // TE wins over CL, and the connection is not reused.
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (ResponseFraming::Chunked, false)
        );
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!framing(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").1);
        assert!(!framing(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").1);
        assert!(
            framing(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").1
        );
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n").0,
            ResponseFraming::Length(7)
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad, false),
                Err(ResponseError::InvalidContentLength),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn transfer_encoding_errors() {
        assert_eq!(
            parse(
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            ),
            Err(ResponseError::InvalidTransferEncoding)
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                false
            ),
            Err(ResponseError::InvalidTransferEncoding)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n", false),
            Err(ResponseError::InvalidTransferEncoding)
        );
    }

    #[test]
    fn liberal_syntax() {
        // Missing reason phrase, bare LF, obs-fold, space before colon.
        let h = complete(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((h.status, h.reason.as_str()), (200, ""));
        let h = complete(b"HTTP/1.1 404 Not Found\nContent-Length: 2\n\nhi");
        assert_eq!((h.status, h.framing), (404, ResponseFraming::Length(2)));
        let h = complete(b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(h.framing, ResponseFraming::Length(1));
        let h = complete(b"HTTP/1.1 200 OK\r\nContent-Length : 4\r\n\r\n");
        assert_eq!(h.framing, ResponseFraming::Length(4));
        let h = complete(b"HTTP/1.1  200  OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.status, 200);
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"HTTP/2.0 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 099 Weird\r\n\r\n",
            b"HTTP/1.1 600 Weird\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            b"FOO 200 OK\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad, false),
                Err(ResponseError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn head_too_large() {
        let mut storage = new_header_storage();
        let mut buf = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        buf.resize(100, b'a');
        assert_eq!(
            parse_response(&buf, &mut storage, false, 100).err(),
            Some(ResponseError::HeadTooLarge)
        );
        let mut storage = new_header_storage();
        assert!(matches!(
            parse_response(&buf[..99], &mut storage, false, 100),
            Ok(Parsed::Partial)
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=HEADER_CAPACITY {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let mut storage = new_header_storage();
        assert_eq!(
            parse_response(&many, &mut storage, false, 1 << 20).err(),
            Some(ResponseError::HeadTooLarge)
        );
    }
}
