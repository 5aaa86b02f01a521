//! CONTINUATION (RFC 9113 6.10): the rest of a field block begun by HEADERS or
//! PUSH_PROMISE. Whether one may arrive here is the connection's business.

use super::error::FrameError;
use super::head::{flags, FrameHead, Kind, StreamId};
use super::payload::require_stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation<'a> {
    pub stream: StreamId,
    pub fragment: &'a [u8],
    pub end_headers: bool,
}

impl<'a> Continuation<'a> {
    pub fn parse(head: FrameHead, payload: &'a [u8]) -> Result<Continuation<'a>, FrameError> {
        require_stream(head)?;
        Ok(Continuation {
            stream: head.stream,
            fragment: payload,
            end_headers: head.has(flags::END_HEADERS),
        })
    }

    pub fn encode(stream: StreamId, fragment: &[u8], end_headers: bool, out: &mut Vec<u8>) {
        let f = if end_headers { flags::END_HEADERS } else { 0 };
        FrameHead::new(Kind::Continuation, f, stream, fragment.len() as u32).encode(out);
        out.extend_from_slice(fragment);
    }
}
