//! RST_STREAM (RFC 9113 6.4): ends one stream with an error code.

use super::error::{ErrorCode, FrameError};
use super::head::{FrameHead, Kind, StreamId};
use super::payload::{read_u32, require_stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStream {
    pub stream: StreamId,
    pub code: ErrorCode,
}

impl RstStream {
    pub fn parse(head: FrameHead, payload: &[u8]) -> Result<RstStream, FrameError> {
        require_stream(head)?;
        if payload.len() != 4 {
            return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
        }
        Ok(RstStream {
            stream: head.stream,
            code: ErrorCode(read_u32(payload)),
        })
    }

    pub fn encode(stream: StreamId, code: ErrorCode, out: &mut Vec<u8>) {
        FrameHead::new(Kind::RstStream, 0, stream, 4).encode(out);
        out.extend_from_slice(&code.0.to_be_bytes());
    }
}
