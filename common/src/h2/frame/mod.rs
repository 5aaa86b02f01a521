//! HTTP/2 frames (RFC 9113 sections 4 and 6): the 9-byte header, one file per frame type,
//! each parsing a payload that borrows the input and serializing by appending to a `Vec`.
//!
//! Parsing checks every rule a frame can be judged by on its own (stream id zero or not,
//! exact lengths, padding, flags, setting values) and names the error the RFC prescribes:
//! [`FrameError::Connection`] or [`FrameError::Stream`]. Rules that need the connection's
//! state (stream states, CONTINUATION ordering, SETTINGS_MAX_FRAME_SIZE) live in `conn`.

mod continuation;
mod data;
mod error;
mod goaway;
mod head;
mod headers;
mod payload;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use error::{ErrorCode, FrameError};
pub use goaway::GoAway;
pub use head::{
    flags, FrameHead, Kind, StreamId, DEFAULT_MAX_FRAME_SIZE, FRAME_HEAD_LEN, MAX_MAX_FRAME_SIZE,
    MAX_STREAM_ID,
};
pub use headers::{Headers, Priority as PrioritySpec};
pub use ping::Ping;
pub use priority::Priority;
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::{Setting, SettingId, Settings, SettingsIter};
pub use window_update::WindowUpdate;

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

#[cfg(test)]
mod tests;
