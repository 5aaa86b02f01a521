//! Pieces several frame payloads share: the stream-id rules, padding, 32-bit fields.

use super::error::{ErrorCode, FrameError};
use super::head::{flags, FrameHead};

/// Frames on stream 0 that must name a stream: PROTOCOL_ERROR (RFC 9113 6.1, 6.2, ...).
pub(super) fn require_stream(head: FrameHead) -> Result<(), FrameError> {
    if head.stream == 0 {
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR))
    } else {
        Ok(())
    }
}

/// Frames about the connection that name a stream: PROTOCOL_ERROR (RFC 9113 6.5, 6.7, 6.8).
pub(super) fn require_connection(head: FrameHead) -> Result<(), FrameError> {
    if head.stream != 0 {
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR))
    } else {
        Ok(())
    }
}

/// Strip the Pad Length byte and the padding of a PADDED frame (DATA, HEADERS,
/// PUSH_PROMISE). "If the length of the padding is the length of the frame payload or
/// greater, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
pub(super) fn strip_padding(head: FrameHead, payload: &[u8]) -> Result<&[u8], FrameError> {
    if head.flags & flags::PADDED == 0 {
        return Ok(payload);
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
    };
    let pad = usize::from(pad);
    if pad >= payload.len() {
        return Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR));
    }
    Ok(&rest[..rest.len() - pad])
}

pub(super) fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Append `pad` zero bytes (padding MUST be zero when sent).
pub(super) fn write_padding(out: &mut Vec<u8>, pad: u8) {
    out.resize(out.len() + usize::from(pad), 0);
}
