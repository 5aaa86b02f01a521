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
        match question_mark(t) {
            Some(i) => &t[..i],
            None => t,
        }
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        let t = self.head.target;
        question_mark(t).map(|i| &t[i + 1..])
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

/// Where the first `?` is, eight bytes at a time (`str::find(char)` costs ~100
/// instructions even on `/plaintext`, and `path` runs on every request). `?` is ASCII, so
/// the index is a char boundary.
fn question_mark(t: &str) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const MARK: u64 = u64::from_ne_bytes([b'?'; 8]);
    let b = t.as_bytes();
    let mut at = 0;
    while at + 8 <= b.len() {
        let w = u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) ^ MARK;
        // A zero byte (a `?`) sets its high bit here; the lowest such bit is the first.
        let hit = w.wrapping_sub(ONES) & !w & HIGH;
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    b[at..].iter().position(|&c| c == b'?').map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::question_mark;

    #[test]
    fn the_first_question_mark_wherever_it_is() {
        for len in 0..40 {
            let plain = "a".repeat(len);
            assert_eq!(question_mark(&plain), None);
            for at in 0..len {
                let mut t = plain.clone().into_bytes();
                t[at] = b'?';
                if at + 3 < len {
                    t[at + 3] = b'?';
                }
                // Bytes above 0x7f around it must not read as a `?`.
                let t = String::from_utf8(t).unwrap().replace('a', "é");
                let want = t.find('?');
                assert_eq!(question_mark(&t), want, "{t:?}");
            }
        }
    }
}
