//! What a connection reports from its input: a caller-owned buffer of events, reused from
//! one `recv` to the next, with the decoded header bytes and body bytes in arenas beside
//! them so nothing is allocated per request once the buffers are warm.

use super::frame::{ErrorCode, StreamId};
use super::hpack::FieldSpan;

/// A byte range in the events' header arena (pseudo-header values, GOAWAY debug data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

/// The pseudo-header fields of a message, already checked (RFC 9113 8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pseudo {
    pub method: Option<Span>,
    pub scheme: Option<Span>,
    pub authority: Option<Span>,
    pub path: Option<Span>,
    /// A response's status; 0 in requests and trailers.
    pub status: u16,
}

/// What a HEADERS block was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersKind {
    /// Server side: a new stream's request.
    Request,
    /// Client side: a 1xx response; the final one follows.
    Informational,
    /// Client side: the final response.
    Response,
    /// A second block ending the stream.
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A field block. `fields` indexes the regular fields (pseudo-headers are in `pseudo`);
    /// read them with [`Events::fields`].
    Headers {
        stream: StreamId,
        kind: HeadersKind,
        pseudo: Pseudo,
        fields: FieldRange,
        /// The declared content-length, if any (already checked against the body).
        content_length: Option<u64>,
        end_stream: bool,
    },
    /// Server side: a request whose field block exceeded our header list limit. The
    /// stream is open so the caller can answer 431; its fields are not available.
    HeadersTooLarge { stream: StreamId, end_stream: bool },
    /// Body bytes (`len` of them; [`Events::data`] gives them unless body bytes are
    /// switched off with [`Events::set_keep_data`]).
    Data {
        stream: StreamId,
        data: Span,
        len: u32,
        end_stream: bool,
    },
    /// The stream ended abnormally: the peer's RST_STREAM (`by_peer`), our reset for a
    /// stream error in its input, or (with `retryable`) a stream the peer's GOAWAY or
    /// REFUSED_STREAM says it never processed, which may be sent again elsewhere.
    Reset {
        stream: StreamId,
        code: ErrorCode,
        by_peer: bool,
        retryable: bool,
    },
    /// The peer sent GOAWAY: no new streams; ours above `last_stream` were reported
    /// `Reset { retryable: true }` already.
    GoAway {
        last_stream: StreamId,
        code: ErrorCode,
        debug: Span,
    },
    /// The peer's SETTINGS were applied (read them with `Connection::peer_settings`).
    Settings,
    /// The peer acknowledged our SETTINGS.
    SettingsAcked,
    /// The answer to one of our PINGs.
    PingAck { payload: [u8; 8] },
    /// A stream that could not send all it offered has window again.
    SendReady { stream: StreamId },
}

/// A range of fields in [`Events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldRange {
    pub start: u32,
    pub len: u32,
}

/// The events of one `recv`, with their bytes.
#[derive(Debug)]
pub struct Events {
    pub(crate) list: Vec<Event>,
    pub(crate) fields: Vec<FieldSpan>,
    /// Decoded header names and values, pseudo-header values, GOAWAY debug data.
    pub(crate) arena: Vec<u8>,
    pub(crate) data: Vec<u8>,
    keep_data: bool,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        Events {
            list: Vec::new(),
            fields: Vec::new(),
            arena: Vec::new(),
            data: Vec::new(),
            keep_data: true,
        }
    }

    /// With `false`, DATA events carry only their length (a load generator counting
    /// bytes needs no copy).
    pub fn set_keep_data(&mut self, keep: bool) {
        self.keep_data = keep;
    }

    pub fn clear(&mut self) {
        self.list.clear();
        self.fields.clear();
        self.arena.clear();
        self.data.clear();
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The regular fields of a HEADERS event, in the order received.
    pub fn fields(&self, r: FieldRange) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let spans = &self.fields[r.start as usize..(r.start + r.len) as usize];
        spans
            .iter()
            .map(|f| (f.name(&self.arena), f.value(&self.arena)))
    }

    /// The first value of field `name` (lowercase) in a HEADERS event.
    pub fn field(&self, r: FieldRange, name: &[u8]) -> Option<&[u8]> {
        self.fields(r).find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A pseudo-header's value or GOAWAY debug data.
    pub fn bytes(&self, s: Span) -> &[u8] {
        &self.arena[s.start as usize..(s.start + s.len) as usize]
    }

    /// A DATA event's bytes (empty when body bytes are switched off).
    pub fn data(&self, s: Span) -> &[u8] {
        &self.data[s.start as usize..(s.start + s.len) as usize]
    }

    pub(crate) fn push_data(&mut self, stream: StreamId, bytes: &[u8], end_stream: bool) {
        let start = self.data.len() as u32;
        if self.keep_data {
            self.data.extend_from_slice(bytes);
        }
        let len = self.data.len() as u32 - start;
        self.list.push(Event::Data {
            stream,
            data: Span { start, len },
            len: bytes.len() as u32,
            end_stream,
        });
    }

    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) -> Span {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len() as u32,
        }
    }
}
