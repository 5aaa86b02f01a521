//! The request as a handler sees it: a zero-copy view of the parsed head and the whole
//! de-chunked body, borrowing the receive buffer. Below the handler and the static files
//! in the module graph, so both can use it without depending on each other.

use uring_common::http::{RequestHead, Version};

/// A request as the handler sees it. Every slice borrows the connection's receive buffer
/// (or the kernel buffer the bytes arrived in); nothing was copied to build it.
pub struct Request<'a> {
    pub(crate) head: &'a RequestHead<'a, 'a>,
    pub(crate) body: &'a [u8],
}

impl<'a> Request<'a> {
    pub fn method(&self) -> &'a str {
        self.head.method
    }

    /// The full request target, query included.
    pub fn target(&self) -> &'a str {
        self.head.target
    }

    /// The path: the target up to `?`, with the scheme and authority of an absolute-form
    /// target (`GET http://host/x`, which RFC 9112 3.2.2 says a server must accept) removed.
    pub fn path(&self) -> &'a str {
        let t = self.origin_form();
        // A byte scan: `str::find(char)` costs ~100 instructions on a short target.
        match t.bytes().position(|b| b == b'?') {
            Some(i) => &t[..i],
            None => t,
        }
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        let t = self.head.target;
        (t.bytes().position(|b| b == b'?')).map(|i| &t[i + 1..])
    }

    fn origin_form(&self) -> &'a str {
        let t = self.head.target;
        // Byte comparisons first: slicing the str is safe only after an ASCII prefix.
        let b = t.as_bytes();
        if b.first() == Some(&b'/') {
            return t; // origin-form, the common case
        }
        let rest = if b.len() > 7 && b[..7].eq_ignore_ascii_case(b"http://") {
            &t[7..]
        } else if b.len() > 8 && b[..8].eq_ignore_ascii_case(b"https://") {
            &t[8..]
        } else {
            return t;
        };
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            // `http://host?q` or `http://host`: the path is "/".
            _ => "/",
        }
    }

    pub fn version(&self) -> Version {
        self.head.version
    }

    /// First value of the named header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.head.header(name)
    }

    /// All header fields in the order received.
    pub fn headers(&self) -> &'a [httparse::Header<'a>] {
        self.head.headers
    }

    /// The request body, complete and de-chunked (empty when there was none). Bounded by
    /// `Limits::max_body_bytes`.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    pub fn is_head(&self) -> bool {
        self.head.method == "HEAD"
    }

    /// Whether the client allows keeping the connection open.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive
    }
}
