//! PUSH_PROMISE (RFC 9113 6.6): parsed only so the connection can refuse it (a server
//! never accepts one; our client always sends SETTINGS_ENABLE_PUSH 0).

use super::error::{ErrorCode, FrameError};
use super::head::{flags, FrameHead, Kind, StreamId, MAX_STREAM_ID};
use super::payload::{read_u32, require_stream, strip_padding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPromise<'a> {
    pub stream: StreamId,
    pub promised: StreamId,
    pub fragment: &'a [u8],
    pub end_headers: bool,
}

impl<'a> PushPromise<'a> {
    pub fn parse(head: FrameHead, payload: &'a [u8]) -> Result<PushPromise<'a>, FrameError> {
        require_stream(head)?;
        let rest = strip_padding(head, payload)?;
        if rest.len() < 4 {
            return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
        }
        Ok(PushPromise {
            stream: head.stream,
            promised: read_u32(rest) & MAX_STREAM_ID,
            fragment: &rest[4..],
            end_headers: head.has(flags::END_HEADERS),
        })
    }

    /// Only tests send one (to check that it is refused).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let f = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        let len = 4 + self.fragment.len() as u32;
        FrameHead::new(Kind::PushPromise, f, self.stream, len).encode(out);
        out.extend_from_slice(&self.promised.to_be_bytes());
        out.extend_from_slice(self.fragment);
    }
}
