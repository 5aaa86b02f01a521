//! The 9-byte frame header (RFC 9113 4.1): length (24 bits), type, flags, reserved bit and
//! stream id (31 bits).

pub const FRAME_HEAD_LEN: usize = 9;

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

/// A frame type. Unknown types are kept so they can be skipped (RFC 9113 5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl Kind {
    pub fn from_u8(b: u8) -> Kind {
        match b {
            0 => Kind::Data,
            1 => Kind::Headers,
            2 => Kind::Priority,
            3 => Kind::RstStream,
            4 => Kind::Settings,
            5 => Kind::PushPromise,
            6 => Kind::Ping,
            7 => Kind::GoAway,
            8 => Kind::WindowUpdate,
            9 => Kind::Continuation,
            other => Kind::Unknown(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Headers => 1,
            Kind::Priority => 2,
            Kind::RstStream => 3,
            Kind::Settings => 4,
            Kind::PushPromise => 5,
            Kind::Ping => 6,
            Kind::GoAway => 7,
            Kind::WindowUpdate => 8,
            Kind::Continuation => 9,
            Kind::Unknown(b) => b,
        }
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// Payload length in bytes (at most 2^24 - 1).
    pub len: u32,
    pub kind: Kind,
    pub flags: u8,
    /// The reserved bit is dropped: "MUST be ignored when receiving".
    pub stream: StreamId,
}

impl FrameHead {
    pub fn new(kind: Kind, flags: u8, stream: StreamId, len: u32) -> FrameHead {
        FrameHead {
            len,
            kind,
            flags,
            stream,
        }
    }

    /// Read a header from the first 9 bytes of `b`, or `None` if there are fewer.
    pub fn parse(b: &[u8]) -> Option<FrameHead> {
        let b: &[u8; FRAME_HEAD_LEN] = b.get(..FRAME_HEAD_LEN)?.try_into().ok()?;
        Some(FrameHead {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: Kind::from_u8(b[3]),
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_STREAM_ID,
        })
    }

    /// Append the 9 bytes; the reserved bit is sent as zero.
    pub fn encode(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    pub fn to_bytes(self) -> [u8; FRAME_HEAD_LEN] {
        debug_assert!(self.len < 1 << 24);
        let l = self.len.to_be_bytes();
        let s = (self.stream & MAX_STREAM_ID).to_be_bytes();
        [
            l[1],
            l[2],
            l[3],
            self.kind.as_u8(),
            self.flags,
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }

    pub fn has(self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}
