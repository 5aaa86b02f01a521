//! PING (RFC 9113 6.7): 8 opaque bytes, answered with the same bytes and ACK.

use super::error::{ErrorCode, FrameError};
use super::head::{flags, FrameHead, Kind};
use super::payload::require_connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    pub ack: bool,
    pub payload: [u8; 8],
}

impl Ping {
    pub fn parse(head: FrameHead, payload: &[u8]) -> Result<Ping, FrameError> {
        require_connection(head)?;
        let Ok(payload) = <[u8; 8]>::try_from(payload) else {
            return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
        };
        Ok(Ping {
            ack: head.has(flags::ACK),
            payload,
        })
    }

    pub fn encode(ack: bool, payload: [u8; 8], out: &mut Vec<u8>) {
        let f = if ack { flags::ACK } else { 0 };
        FrameHead::new(Kind::Ping, f, 0, 8).encode(out);
        out.extend_from_slice(&payload);
    }
}
