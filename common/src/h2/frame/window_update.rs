//! WINDOW_UPDATE (RFC 9113 6.9): a flow-control credit for a stream or (stream 0) the
//! connection.

use super::error::{ErrorCode, FrameError};
use super::head::{FrameHead, Kind, StreamId, MAX_STREAM_ID};
use super::payload::read_u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    pub stream: StreamId,
    /// 1..=2^31-1.
    pub increment: u32,
}

impl WindowUpdate {
    pub fn parse(head: FrameHead, payload: &[u8]) -> Result<WindowUpdate, FrameError> {
        if payload.len() != 4 {
            return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
        }
        let increment = read_u32(payload) & MAX_STREAM_ID;
        // "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control
        // window increment of 0 as a stream error of type PROTOCOL_ERROR; errors on the
        // connection flow-control window MUST be treated as a connection error."
        if increment == 0 {
            return Err(if head.stream == 0 {
                FrameError::Connection(ErrorCode::PROTOCOL_ERROR)
            } else {
                FrameError::Stream(head.stream, ErrorCode::PROTOCOL_ERROR)
            });
        }
        Ok(WindowUpdate {
            stream: head.stream,
            increment,
        })
    }

    pub fn encode(stream: StreamId, increment: u32, out: &mut Vec<u8>) {
        debug_assert!(increment > 0 && increment <= MAX_STREAM_ID);
        FrameHead::new(Kind::WindowUpdate, 0, stream, 4).encode(out);
        out.extend_from_slice(&increment.to_be_bytes());
    }
}
