//! The last response head a connection parsed, remembered with its bytes: a server that
//! answers with the same head again (most do, but for a `Date` that changes once a
//! second) is recognised by one comparison instead of a parse.
//!
//! Exact by construction: a complete head's parse depends only on its own bytes and on
//! whether the request was HEAD (part of the key), so equal bytes give the same status,
//! framing and keep-alive as parsing them again. Anything else (a different head, a
//! partial one, a head longer than [`MEMO_MAX`]) goes to the parser as before.
//!
//! What it saves: at 64 keep-alive connections against the floor server, httparse and the
//! framing decision were a third of uring-load's user-space instructions per request.

use uring_common::http::{ResponseFraming, ResponseHead};

/// Longest head kept (longer ones are parsed every time; they are rare and costly anyway).
pub const MEMO_MAX: usize = 1024;

/// What the connection needs from a parsed head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadFacts {
    /// Bytes of the head, including the final CRLF.
    pub head_len: usize,
    pub status: u16,
    pub framing: ResponseFraming,
    pub keep_alive: bool,
    /// A 1xx other than 101: the final response follows.
    pub interim: bool,
}

impl HeadFacts {
    pub fn of(head: &ResponseHead<'_, '_>) -> HeadFacts {
        HeadFacts {
            head_len: head.head_len,
            status: head.status,
            framing: head.framing,
            keep_alive: head.keep_alive,
            interim: head.is_interim(),
        }
    }
}

#[derive(Debug, Default)]
pub struct HeadMemo {
    bytes: Vec<u8>,
    request_was_head: bool,
    facts: Option<HeadFacts>,
}

impl HeadMemo {
    /// The facts of the head at the start of `data`, if it is byte for byte the one
    /// remembered (for a request of the same kind).
    #[inline]
    pub fn recall(&self, data: &[u8], request_was_head: bool) -> Option<HeadFacts> {
        let facts = self.facts?;
        let n = self.bytes.len();
        (self.request_was_head == request_was_head && data.len() >= n && data[..n] == self.bytes)
            .then_some(facts)
    }

    /// Remember the head just parsed from the start of `data`.
    pub fn remember(&mut self, data: &[u8], request_was_head: bool, facts: HeadFacts) {
        self.bytes.clear();
        if facts.head_len > MEMO_MAX || facts.head_len > data.len() {
            self.facts = None;
            return;
        }
        self.bytes.extend_from_slice(&data[..facts.head_len]);
        self.request_was_head = request_was_head;
        self.facts = Some(facts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::http::{new_header_storage, parse_response, Parsed};

    fn parse(data: &[u8], was_head: bool) -> Option<HeadFacts> {
        let mut storage = new_header_storage();
        match parse_response(data, &mut storage, was_head, 16 * 1024).ok()? {
            Parsed::Complete(h) => Some(HeadFacts::of(&h)),
            Parsed::Partial => None,
        }
    }

    fn memo_of(head: &[u8], was_head: bool) -> HeadMemo {
        let mut m = HeadMemo::default();
        m.remember(head, was_head, parse(head, was_head).unwrap());
        m
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";

    #[test]
    fn the_same_head_is_recalled_with_what_follows_it() {
        let m = memo_of(OK, false);
        let mut two = OK.to_vec();
        two.extend_from_slice(b"hello");
        two.extend_from_slice(OK);
        let got = m.recall(&two, false).unwrap();
        assert_eq!(Some(got), parse(&two, false));
        assert_eq!(got.framing, ResponseFraming::Length(5));
        assert_eq!(got.head_len, OK.len());
    }

    /// Every way the next head can differ falls through to the parser.
    #[test]
    fn anything_else_is_not_recalled() {
        let m = memo_of(OK, false);
        // The same bytes after a HEAD request frame differently (no body).
        assert_eq!(m.recall(OK, true), None);
        assert_eq!(parse(OK, true).unwrap().framing, ResponseFraming::NoBody);
        // A prefix (the rest not here yet), another length, another status.
        assert_eq!(m.recall(&OK[..OK.len() - 1], false), None);
        assert_eq!(
            m.recall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", false),
            None
        );
        assert_eq!(
            m.recall(b"HTTP/1.1 500 OK\r\nContent-Length: 5\r\n\r\n", false),
            None
        );
        assert_eq!(HeadMemo::default().recall(OK, false), None);
    }

    #[test]
    fn long_heads_are_not_kept() {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
        head.resize(head.len() + MEMO_MAX, b'a');
        head.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        let mut m = memo_of(OK, false);
        m.remember(&head, false, parse(&head, false).unwrap());
        assert_eq!(m.recall(&head, false), None);
        assert_eq!(m.recall(OK, false), None, "the old head is forgotten too");
    }

    #[test]
    fn interim_and_closing_heads_keep_their_facts() {
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert!(memo_of(cont, false).recall(cont, false).unwrap().interim);
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let f = memo_of(close, false).recall(close, false).unwrap();
        assert!(!f.keep_alive && !f.interim && f.status == 200);
    }
}
