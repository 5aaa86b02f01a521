//! HTTP/2 frames (RFC 9113 sections 4 and 6): the 9-byte header, one file per frame type,
//! each parsing a payload that borrows the input and serializing by appending to a `Vec`.
//!
//! Parsing checks every rule a frame can be judged by on its own (stream id zero or not,
//! exact lengths, padding, flags, setting values) and names the error the RFC prescribes:
//! [`FrameError::Connection`] or [`FrameError::Stream`]. Rules that need the connection's
//! state (stream states, CONTINUATION ordering, SETTINGS_MAX_FRAME_SIZE) live in `conn`.

mod continuation;
mod data;
mod goaway;
mod head;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use goaway::GoAway;
pub use head::{FrameHead, Kind, FRAME_HEAD_LEN};
pub use headers::{Headers, Priority as PrioritySpec};
pub use ping::Ping;
pub use priority::Priority;
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::{Setting, SettingId, Settings, SettingsIter};
pub use window_update::WindowUpdate;

use std::fmt;

/// A stream identifier (31 bits; 0 is the connection itself).
pub type StreamId = u32;

/// The largest stream id and the largest flow-control window: 2^31 - 1.
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;
/// SETTINGS_MAX_FRAME_SIZE's initial value and lower bound (RFC 9113 6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// SETTINGS_MAX_FRAME_SIZE's upper bound: 2^24 - 1.
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

/// Flag bits (RFC 9113 section 6); which apply depends on the frame type.
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// An HTTP/2 error code (RFC 9113 section 7). Unknown codes are kept as they came.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The RFC's name for the code, or `None` for a code it does not define.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        NAMES.get(self.0 as usize).copied()
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a frame was refused, with the scope the RFC gives the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The whole connection is in error: send GOAWAY with the code and close.
    Connection(ErrorCode),
    /// Only this stream is: send RST_STREAM with the code, the connection goes on.
    Stream(StreamId, ErrorCode),
}

impl FrameError {
    pub fn code(self) -> ErrorCode {
        match self {
            FrameError::Connection(c) | FrameError::Stream(_, c) => c,
        }
    }
}

/// A parsed frame; payload slices borrow the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Data(Data<'a>),
    Headers(Headers<'a>),
    Priority(Priority),
    RstStream(RstStream),
    Settings(Settings<'a>),
    PushPromise(PushPromise<'a>),
    Ping(Ping),
    GoAway(GoAway<'a>),
    WindowUpdate(WindowUpdate),
    Continuation(Continuation<'a>),
    /// A frame type this implementation does not know: RFC 9113 5.5 says to ignore it.
    Unknown {
        kind: u8,
        stream: StreamId,
    },
}

impl<'a> Frame<'a> {
    /// Parse a payload whose header is `head`. `payload.len()` must equal `head.len`
    /// (the caller has already checked the length against its SETTINGS_MAX_FRAME_SIZE).
    pub fn parse(head: FrameHead, payload: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        debug_assert_eq!(payload.len(), head.len as usize);
        Ok(match head.kind {
            Kind::Data => Frame::Data(Data::parse(head, payload)?),
            Kind::Headers => Frame::Headers(Headers::parse(head, payload)?),
            Kind::Priority => Frame::Priority(Priority::parse(head, payload)?),
            Kind::RstStream => Frame::RstStream(RstStream::parse(head, payload)?),
            Kind::Settings => Frame::Settings(Settings::parse(head, payload)?),
            Kind::PushPromise => Frame::PushPromise(PushPromise::parse(head, payload)?),
            Kind::Ping => Frame::Ping(Ping::parse(head, payload)?),
            Kind::GoAway => Frame::GoAway(GoAway::parse(head, payload)?),
            Kind::WindowUpdate => Frame::WindowUpdate(WindowUpdate::parse(head, payload)?),
            Kind::Continuation => Frame::Continuation(Continuation::parse(head, payload)?),
            Kind::Unknown(kind) => Frame::Unknown {
                kind,
                stream: head.stream,
            },
        })
    }
}

/// Frames on stream 0 that must name a stream: PROTOCOL_ERROR (RFC 9113 6.1, 6.2, ...).
fn require_stream(head: FrameHead) -> Result<(), FrameError> {
    if head.stream == 0 {
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR))
    } else {
        Ok(())
    }
}

/// Frames about the connection that name a stream: PROTOCOL_ERROR (RFC 9113 6.5, 6.7, 6.8).
fn require_connection(head: FrameHead) -> Result<(), FrameError> {
    if head.stream != 0 {
        Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR))
    } else {
        Ok(())
    }
}

/// Strip the Pad Length byte and the padding of a PADDED frame (DATA, HEADERS,
/// PUSH_PROMISE). "If the length of the padding is the length of the frame payload or
/// greater, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
fn strip_padding(head: FrameHead, payload: &[u8]) -> Result<&[u8], FrameError> {
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

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Append `pad` zero bytes (padding MUST be zero when sent).
fn write_padding(out: &mut Vec<u8>, pad: u8) {
    out.resize(out.len() + usize::from(pad), 0);
}

#[cfg(test)]
mod tests;
