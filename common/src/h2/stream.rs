//! Per-stream state (RFC 9113 5.1) and the store of open streams.
//!
//! Only open and half-closed streams are stored; an id at or below the highest one used
//! that is not stored is closed. The store is two parallel vectors searched linearly: at
//! most `max_concurrent_streams` entries, no hashing, no allocation once grown.

use std::time::Instant;

use super::flow::{RecvWindow, SendWindow};
use super::frame::StreamId;

/// Our sending half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendHalf {
    /// Server: the request arrived, no response head sent yet (or only 1xx).
    AwaitingHead,
    /// Head sent, body may follow.
    Open,
    /// END_STREAM sent.
    Closed,
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub id: StreamId,
    /// The peer has not ended its half (no END_STREAM yet).
    pub recv_open: bool,
    pub send: SendHalf,
    /// Client: the final (non-1xx) response head arrived. Server: always true.
    pub head_received: bool,
    /// Client: the request was HEAD, so the response's content-length describes no body.
    pub head_request: bool,
    pub send_window: SendWindow,
    pub recv_window: RecvWindow,
    pub content_length: Option<u64>,
    pub received: u64,
    /// Body bytes reported but not yet released by the caller (manual release).
    pub recv_held: u32,
    /// Since when `send_data` has been taking less than it was offered.
    pub stalled_since: Option<Instant>,
    /// The caller was told about this stream (a Reset must be reported to it).
    pub announced: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Streams {
    ids: Vec<StreamId>,
    slots: Vec<Stream>,
}

impl Streams {
    pub(crate) fn find(&self, id: StreamId) -> Option<usize> {
        self.ids.iter().position(|&s| s == id)
    }

    pub(crate) fn insert(&mut self, s: Stream) -> usize {
        self.ids.push(s.id);
        self.slots.push(s);
        self.slots.len() - 1
    }

    pub(crate) fn remove(&mut self, i: usize) -> Stream {
        self.ids.swap_remove(i);
        self.slots.swap_remove(i)
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn get(&self, i: usize) -> &Stream {
        &self.slots[i]
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> &mut Stream {
        &mut self.slots[i]
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Stream> {
        self.slots.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, Stream> {
        self.slots.iter_mut()
    }
}

/// The last streams we reset: frames the peer sent before seeing our RST_STREAM are
/// ignored on them (5.1, "closed") instead of being treated as errors.
#[derive(Debug)]
pub(crate) struct RecentResets {
    ids: [StreamId; 64],
    next: usize,
}

impl Default for RecentResets {
    fn default() -> Self {
        RecentResets {
            ids: [0; 64],
            next: 0,
        }
    }
}

impl RecentResets {
    pub(crate) fn add(&mut self, id: StreamId) {
        self.ids[self.next % self.ids.len()] = id;
        self.next += 1;
    }

    pub(crate) fn contains(&self, id: StreamId) -> bool {
        id != 0 && self.ids.contains(&id)
    }
}
