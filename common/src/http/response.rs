//! Response head parsing for the load tool: liberal in what real servers send, exact in
//! what it counts.
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures).

use super::{HeaderStorage, Parsed, Version};

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

impl ResponseHead<'_, '_> {
    /// 1xx responses are interim: the final response follows on the same connection.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
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

/// Parse a response head at the start of `buf`. `request_was_head` makes the body empty.
pub fn parse_response<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut HeaderStorage<'b>,
    request_was_head: bool,
    max_head_bytes: usize,
) -> Result<Parsed<ResponseHead<'b, 'h>>, ResponseError> {
    let _ = (buf, headers, request_was_head, max_head_bytes);
    todo!("implemented by the codec work")
}
