//! HEADERS (RFC 9113 6.2): opens a stream or carries trailers; a field block fragment,
//! optionally padded and with the deprecated priority fields (parsed, checked, ignored).

use super::error::{ErrorCode, FrameError};
use super::head::{flags, FrameHead, Kind, StreamId, MAX_STREAM_ID};
use super::payload::{read_u32, require_stream, strip_padding, write_padding};

/// The priority fields of HEADERS and PRIORITY (deprecated by RFC 9113 5.3.2, still parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub dependency: StreamId,
    /// Weight minus one, as sent.
    pub weight: u8,
}

impl Priority {
    pub(super) fn read(b: &[u8]) -> Priority {
        let word = read_u32(b);
        Priority {
            exclusive: word & !MAX_STREAM_ID != 0,
            dependency: word & MAX_STREAM_ID,
            weight: b[4],
        }
    }

    /// "A stream cannot depend on itself. An endpoint MUST treat this as a stream error
    /// of type PROTOCOL_ERROR." (5.3.1)
    pub(super) fn check(self, stream: StreamId) -> Result<Priority, FrameError> {
        if self.dependency == stream {
            return Err(FrameError::Stream(stream, ErrorCode::PROTOCOL_ERROR));
        }
        Ok(self)
    }

    pub(super) fn write(self, out: &mut Vec<u8>) {
        let word = self.dependency | if self.exclusive { 1 << 31 } else { 0 };
        out.extend_from_slice(&word.to_be_bytes());
        out.push(self.weight);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    pub stream: StreamId,
    pub fragment: &'a [u8],
    pub end_stream: bool,
    pub end_headers: bool,
    pub priority: Option<Priority>,
}

impl<'a> Headers<'a> {
    pub fn parse(head: FrameHead, payload: &'a [u8]) -> Result<Headers<'a>, FrameError> {
        require_stream(head)?;
        let mut rest = strip_padding(head, payload)?;
        let mut priority = None;
        if head.has(flags::PRIORITY) {
            if rest.len() < 5 {
                return Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
            }
            // A self-dependency is a stream error, but the field block must still be
            // decoded to keep HPACK in step: the connection checks it after decoding
            // (`Headers::depends_on_itself`).
            priority = Some(Priority::read(rest));
            rest = &rest[5..];
        }
        Ok(Headers {
            stream: head.stream,
            fragment: rest,
            end_stream: head.has(flags::END_STREAM),
            end_headers: head.has(flags::END_HEADERS),
            priority,
        })
    }

    pub fn depends_on_itself(&self) -> bool {
        self.priority.is_some_and(|p| p.dependency == self.stream)
    }

    /// Append a HEADERS frame carrying `fragment` (no padding).
    pub fn encode(
        stream: StreamId,
        fragment: &[u8],
        end_stream: bool,
        end_headers: bool,
        out: &mut Vec<u8>,
    ) {
        Headers {
            stream,
            fragment,
            end_stream,
            end_headers,
            priority: None,
        }
        .encode_with(0, out)
    }

    /// Append this frame with `pad` bytes of padding (0: no PADDED flag) and its priority.
    pub fn encode_with(&self, pad: u8, out: &mut Vec<u8>) {
        let mut f = 0;
        let mut len = self.fragment.len() as u32;
        if self.end_stream {
            f |= flags::END_STREAM;
        }
        if self.end_headers {
            f |= flags::END_HEADERS;
        }
        if pad > 0 {
            f |= flags::PADDED;
            len += 1 + u32::from(pad);
        }
        if self.priority.is_some() {
            f |= flags::PRIORITY;
            len += 5;
        }
        FrameHead::new(Kind::Headers, f, self.stream, len).encode(out);
        if pad > 0 {
            out.push(pad);
        }
        if let Some(p) = self.priority {
            p.write(out);
        }
        out.extend_from_slice(self.fragment);
        write_padding(out, pad);
    }
}
