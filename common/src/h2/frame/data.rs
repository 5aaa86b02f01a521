//! DATA (RFC 9113 6.1): body bytes of a stream, optionally padded.

use super::error::FrameError;
use super::head::{flags, FrameHead, Kind, StreamId};
use super::payload::{require_stream, strip_padding, write_padding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    pub stream: StreamId,
    pub data: &'a [u8],
    pub end_stream: bool,
    /// The whole payload length, padding included: what flow control counts (6.9.1).
    pub flow_len: u32,
}

impl<'a> Data<'a> {
    pub fn parse(head: FrameHead, payload: &'a [u8]) -> Result<Data<'a>, FrameError> {
        require_stream(head)?;
        let data = strip_padding(head, payload)?;
        Ok(Data {
            stream: head.stream,
            data,
            end_stream: head.has(flags::END_STREAM),
            flow_len: head.len,
        })
    }

    /// Append an unpadded DATA frame. `data.len()` must fit the peer's max frame size.
    pub fn encode(stream: StreamId, data: &[u8], end_stream: bool, out: &mut Vec<u8>) {
        let f = if end_stream { flags::END_STREAM } else { 0 };
        FrameHead::new(Kind::Data, f, stream, data.len() as u32).encode(out);
        out.extend_from_slice(data);
    }

    /// Append a DATA frame with `pad` bytes of padding (plus the Pad Length byte).
    pub fn encode_padded(
        stream: StreamId,
        data: &[u8],
        end_stream: bool,
        pad: u8,
        out: &mut Vec<u8>,
    ) {
        let f = flags::PADDED | if end_stream { flags::END_STREAM } else { 0 };
        let len = 1 + data.len() as u32 + u32::from(pad);
        FrameHead::new(Kind::Data, f, stream, len).encode(out);
        out.push(pad);
        out.extend_from_slice(data);
        write_padding(out, pad);
    }
}
