//! PRIORITY (RFC 9113 6.3): deprecated; parsed for its errors, otherwise ignored.

use super::error::{ErrorCode, FrameError};
use super::head::{FrameHead, Kind, StreamId};
use super::headers::Priority as Spec;
use super::payload::require_stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub stream: StreamId,
    pub spec: Spec,
}

impl Priority {
    pub fn parse(head: FrameHead, payload: &[u8]) -> Result<Priority, FrameError> {
        require_stream(head)?;
        // "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream
        // error of type FRAME_SIZE_ERROR."
        if payload.len() != 5 {
            return Err(FrameError::Stream(head.stream, ErrorCode::FRAME_SIZE_ERROR));
        }
        Ok(Priority {
            stream: head.stream,
            spec: Spec::read(payload).check(head.stream)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        FrameHead::new(Kind::Priority, 0, self.stream, 5).encode(out);
        self.spec.write(out);
    }
}
