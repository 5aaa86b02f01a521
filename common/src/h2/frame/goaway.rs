//! GOAWAY (RFC 9113 6.8): the last stream id the sender processed, an error code and
//! opaque debug data.

use super::error::{ErrorCode, FrameError};
use super::head::{FrameHead, Kind, StreamId, MAX_STREAM_ID};
use super::payload::{read_u32, require_connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAway<'a> {
    pub last_stream: StreamId,
    pub code: ErrorCode,
    pub debug: &'a [u8],
}

impl<'a> GoAway<'a> {
    pub fn parse(head: FrameHead, payload: &'a [u8]) -> Result<GoAway<'a>, FrameError> {
        require_connection(head)?;
        if payload.len() < 8 {
            return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
        }
        Ok(GoAway {
            last_stream: read_u32(payload) & MAX_STREAM_ID,
            code: ErrorCode(read_u32(&payload[4..])),
            debug: &payload[8..],
        })
    }

    pub fn encode(last_stream: StreamId, code: ErrorCode, debug: &[u8], out: &mut Vec<u8>) {
        FrameHead::new(Kind::GoAway, 0, 0, 8 + debug.len() as u32).encode(out);
        out.extend_from_slice(&(last_stream & MAX_STREAM_ID).to_be_bytes());
        out.extend_from_slice(&code.0.to_be_bytes());
        out.extend_from_slice(debug);
    }
}
