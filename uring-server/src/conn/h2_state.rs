//! The state of an HTTP/2 connection (`h2.rs` drives it): the shared codec, requests
//! whose body is still arriving or that the handler deferred, requests handed to the
//! proxy, and response bodies waiting for flow-control window. Apart from `h2.rs` so that the connection's own state can hold
//! it without importing the module that implements it.

use std::collections::VecDeque;
use std::time::Instant;

use uring_common::h2::{Config as H2Config, Connection, Events, Role, StreamId};
use uring_common::http::Limits;

use crate::proxy::Forward;
use crate::response::{FileBody, ResponseParts};

/// A request kept past the `recv` that decoded it: its body is still arriving, or the
/// handler deferred it. Owns copies of its fields.
pub(super) struct Pending {
    pub(super) id: StreamId,
    pub(super) method: Vec<u8>,
    pub(super) path: Vec<u8>,
    pub(super) authority: Vec<u8>,
    /// Names and values, back to back; (name length, value length) per field.
    pub(super) bytes: Vec<u8>,
    pub(super) fields: Vec<(u32, u32)>,
    pub(super) body: Vec<u8>,
    pub(super) complete: bool,
    /// The body grew past `max_body_bytes`: answered 413 once complete or at once.
    pub(super) too_large: bool,
}

/// A response body waiting for flow-control window.
pub(super) struct Outgoing {
    pub(super) id: StreamId,
    pub(super) body: Vec<u8>,
    pub(super) sent: usize,
    /// The stream ends with these bytes (a proxied body may still be arriving).
    pub(super) end: bool,
}

/// A request handed to the proxy, until its outcome: what its access log line needs.
pub(super) struct Proxied {
    pub(super) id: StreamId,
    pub(super) since: Instant,
    /// Its request line and fields for the log (`forward::keep_line_for_log`).
    pub(super) line: Vec<u8>,
}

pub(super) struct H2 {
    pub(super) conn: Connection,
    pub(super) events: Events,
    pub(super) parts: ResponseParts,
    pub(super) pending: Vec<Pending>,
    /// In-memory bodies the windows did not take whole, in order.
    pub(super) outgoing: VecDeque<Outgoing>,
    /// File bodies waiting for the connection's file stream.
    pub(super) files: VecDeque<(StreamId, FileBody)>,
    /// The stream whose file body the connection's `FileStream` carries, and bytes read
    /// for it that its window did not take yet.
    pub(super) file_stream: Option<StreamId>,
    pub(super) file_backlog: Vec<u8>,
    /// A connection error ended it (or a timeout): flush the GOAWAY, then close.
    pub(super) failed: bool,
    /// The handler deferred a request ([`super::Conn::resume`] hands it over again).
    pub(super) deferred: bool,
    pub(super) goaway_sent: bool,
    /// Requests for the proxy, not yet taken (`Conn::take_forward`).
    pub(super) forwards: VecDeque<(StreamId, Forward)>,
    /// Requests the proxy has, until their outcome.
    pub(super) proxied: Vec<Proxied>,
    /// Proxied requests whose stream the peer reset, for the proxy to drop.
    pub(super) abandoned: Vec<StreamId>,
    /// Reused for a proxied response's fields: their bytes, and where each is.
    pub(super) scratch: Vec<u8>,
    pub(super) scratch_spans: Vec<(usize, usize, usize)>,
}

impl H2 {
    pub(super) fn new(config: H2Config, now: Instant) -> H2 {
        H2 {
            conn: Connection::new(Role::Server, config, now),
            events: Events::new(),
            parts: ResponseParts::default(),
            pending: Vec::new(),
            outgoing: VecDeque::new(),
            files: VecDeque::new(),
            file_stream: None,
            file_backlog: Vec::new(),
            failed: false,
            deferred: false,
            goaway_sent: false,
            forwards: VecDeque::new(),
            proxied: Vec::new(),
            abandoned: Vec::new(),
            scratch: Vec::new(),
            scratch_spans: Vec::new(),
        }
    }

    /// Nothing of ours is left to send for any stream, and no answer is on its way.
    pub(super) fn idle(&self) -> bool {
        self.outgoing.is_empty()
            && self.files.is_empty()
            && self.file_stream.is_none()
            && self.proxied.is_empty()
            && self.forwards.is_empty()
    }

    /// Body bytes of `id` waiting for window.
    pub(super) fn held_for(&self, id: StreamId) -> usize {
        (self.outgoing.iter())
            .filter(|o| o.id == id)
            .map(|o| o.body.len() - o.sent)
            .sum()
    }

    pub(super) fn forget(&mut self, id: StreamId) {
        self.pending.retain(|p| p.id != id);
        self.outgoing.retain(|o| o.id != id);
        self.files.retain(|(s, _)| *s != id);
        self.forwards.retain(|(s, _)| *s != id);
        if let Some(i) = self.proxied.iter().position(|p| p.id == id) {
            self.proxied.swap_remove(i);
            self.abandoned.push(id);
        }
    }
}

/// The HTTP/2 settings a server connection starts with, from the server's limits.
pub fn server_config(limits: &Limits, h2: &crate::config::Http2Limits) -> H2Config {
    let defaults = H2Config::default();
    let header_list = match h2.max_header_list {
        0 => limits.max_head_bytes as u32,
        n => n,
    };
    H2Config {
        max_concurrent_streams: h2.max_streams,
        max_frame_size: h2.max_frame_size,
        max_header_list_size: header_list.max(1024),
        // The connection's own keep-alive deadline closes idle ones (`Conn::deadline`).
        idle_timeout: None,
        // A proxied stream's upstream work outlives its reset until the proxy drops it.
        hold_reset_slots: true,
        ..defaults
    }
}
