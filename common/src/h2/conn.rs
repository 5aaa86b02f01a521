//! The HTTP/2 connection machine (RFC 9113), one type for both roles.
//!
//! Sans-IO like the rest of the project: [`Connection::recv`] takes bytes and the time and
//! fills a caller-owned [`Events`] buffer; the send methods (`send_response`,
//! `open_stream`, `send_data`, `send_trailers`, `reset`, `goaway`, `ping`) write whole
//! frames into an output buffer that [`Connection::poll_transmit`] hands over;
//! [`Connection::poll_timeout`] and [`Connection::on_timeout`] drive the SETTINGS
//! acknowledgement deadline and the idle timeout. No IO, no threads, no timers of its
//! own, and once its buffers are warm no allocation per request.
//!
//! The codec never queues body bytes: `send_data` writes at most what both flow-control
//! windows allow and returns how much it took; the caller keeps the rest and waits for
//! [`Event::SendReady`]. [`Connection::pending_output`] and [`Connection::stalled_for`]
//! let it close a peer that never reads or never opens its window.

use std::fmt;
use std::time::{Duration, Instant};

use super::budget::{Budget, Counters};
use super::events::{Event, Events, FieldRange, HeadersKind};
use super::flow::{RecvWindow, SendWindow};
use super::frame::{
    flags, Continuation, Data, ErrorCode, Frame, FrameError, FrameHead, GoAway, Headers, Kind,
    Ping, RstStream, SettingId, Settings, StreamId, WindowUpdate, FRAME_HEAD_LEN, MAX_STREAM_ID,
};
use super::hpack::{self, DecodeError};
use super::message::{self, Block};
use super::settings::{Config, PeerSettings, Role};
use super::stream::{RecentResets, SendHalf, Stream, Streams};

/// The client connection preface (RFC 9113 3.4), before the client's SETTINGS.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The window every stream and the connection start with (RFC 9113 6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

/// A connection error: GOAWAY with `code` was queued and the connection is finished
/// (flush [`Connection::poll_transmit`], then close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnError {
    pub code: ErrorCode,
    /// Which rule the peer broke (also sent as GOAWAY debug data).
    pub reason: &'static str,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/2 connection error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ConnError {}

fn conn_err(code: ErrorCode, reason: &'static str) -> ConnError {
    ConnError { code, reason }
}

fn protocol(reason: &'static str) -> ConnError {
    conn_err(ErrorCode::PROTOCOL_ERROR, reason)
}

/// Why a send method refused (the caller's mistake or the connection's state; nothing
/// was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The method belongs to the other role.
    WrongRole,
    /// No such open stream (never opened, or already closed or reset).
    UnknownStream,
    /// The response head was already sent (or the stream's send side is not open).
    InvalidState,
    /// Client: the peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached; wait for a stream
    /// to end.
    TooManyStreams,
    /// Client: the peer sent GOAWAY (or we did): open new streams elsewhere.
    GoingAway,
    /// Client: stream ids are used up (2^31); open a new connection.
    StreamIdsExhausted,
    /// The connection is finished.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::WrongRole => "method not available in this role",
            SendError::UnknownStream => "no such open stream",
            SendError::InvalidState => "stream is not in a state to send this",
            SendError::TooManyStreams => "peer's concurrent stream limit reached",
            SendError::GoingAway => "connection is going away",
            SendError::StreamIdsExhausted => "stream ids exhausted",
            SendError::Closed => "connection closed",
        })
    }
}

impl std::error::Error for SendError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preface {
    /// Server: this many bytes of the client magic matched so far.
    Magic(usize),
    /// The peer's first frame must be SETTINGS (3.4).
    FirstSettings,
    Done,
}

/// A HEADERS frame without END_HEADERS: CONTINUATION frames of the same stream, and
/// nothing else, must follow (6.10).
#[derive(Debug, Clone, Copy)]
struct Continuing {
    stream: StreamId,
    end_stream: bool,
    self_dependent: bool,
    frames: u32,
}

/// A header field to send: (lowercase name, value).
pub type Field<'a> = (&'a [u8], &'a [u8]);

pub struct Connection {
    role: Role,
    config: Config,
    peer: PeerSettings,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    streams: Streams,
    recent_resets: RecentResets,
    /// The last streams closed by any means: a field block on one of them is
    /// STREAM_CLOSED, on an older unused id PROTOCOL_ERROR (5.1.1).
    recent_closed: RecentResets,
    preface: Preface,
    /// A frame cut by the end of the last input (at most 9 + max_frame_size bytes).
    partial: Vec<u8>,
    continuing: Option<Continuing>,
    /// Server: streams reset while their work may still run (`Config::hold_reset_slots`).
    held_slots: Vec<StreamId>,
    /// The fragments of a field block spread over CONTINUATION frames.
    header_block: Vec<u8>,
    /// Frames to send.
    out: Vec<u8>,
    /// A field block too large for one frame, cut into CONTINUATION frames from here.
    block_scratch: Vec<u8>,
    conn_send: SendWindow,
    conn_recv: RecvWindow,
    /// Body bytes reported but not yet released by the caller (manual release).
    conn_held: u64,
    /// Highest stream id the peer opened (or tried to).
    max_peer_stream: StreamId,
    /// Client: the id our next stream gets.
    next_local_stream: StreamId,
    /// Highest peer stream handed to the caller: GOAWAY's last stream id.
    last_processed: StreamId,
    goaway_sent: Option<StreamId>,
    goaway_received: Option<StreamId>,
    settings_deadline: Option<Instant>,
    settings_acked: bool,
    error: Option<ConnError>,
    now: Instant,
    /// When the last stream ended (or the connection began): the idle clock.
    idle_since: Instant,
    reset_budget: Budget,
    settings_budget: Budget,
    ping_budget: Budget,
    empty_budget: Budget,
    counters: Counters,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("streams", &self.streams.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection that has sent nothing yet; its preface (a client's magic, then our
    /// SETTINGS and the connection window's WINDOW_UPDATE) is queued for
    /// [`Connection::poll_transmit`].
    pub fn new(role: Role, config: Config, now: Instant) -> Connection {
        let mut c = Connection {
            role,
            peer: PeerSettings::default(),
            decoder: hpack::Decoder::new(
                config.header_table_size as usize,
                config.max_header_list_size as usize,
            ),
            encoder: hpack::Encoder::new(config.encoder_table_size as usize),
            streams: Streams::default(),
            recent_resets: RecentResets::default(),
            recent_closed: RecentResets::default(),
            preface: match role {
                Role::Server => Preface::Magic(0),
                Role::Client => Preface::FirstSettings,
            },
            partial: Vec::new(),
            continuing: None,
            held_slots: Vec::new(),
            header_block: Vec::new(),
            out: Vec::with_capacity(4096),
            block_scratch: Vec::new(),
            conn_send: SendWindow::new(DEFAULT_WINDOW),
            conn_recv: RecvWindow::new(DEFAULT_WINDOW, config.connection_window),
            conn_held: 0,
            max_peer_stream: 0,
            next_local_stream: 1,
            last_processed: 0,
            goaway_sent: None,
            goaway_received: None,
            settings_deadline: Some(now + config.settings_timeout),
            settings_acked: false,
            error: None,
            now,
            idle_since: now,
            reset_budget: Budget::new(config.reset_rate),
            settings_budget: Budget::new(config.settings_rate),
            ping_budget: Budget::new(config.ping_rate),
            empty_budget: Budget::new(config.empty_frame_rate),
            counters: Counters::default(),
            config,
        };
        if role == Role::Client {
            c.out.extend_from_slice(PREFACE);
        }
        let (settings, n) = c.config.settings(role);
        Settings::encode(&settings[..n], &mut c.out);
        if c.config.connection_window > DEFAULT_WINDOW {
            let raise = c.config.connection_window - DEFAULT_WINDOW;
            WindowUpdate::encode(0, raise, &mut c.out);
            c.conn_recv.grant(raise);
        }
        c
    }

    // ---- getters ----

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn peer_settings(&self) -> &PeerSettings {
        &self.peer
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The connection error that finished the connection, if any.
    pub fn error(&self) -> Option<ConnError> {
        self.error
    }

    /// Open (or half-closed) streams.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes queued for [`Connection::poll_transmit`].
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// How long `stream` has been unable to send all it was offered (flow control).
    pub fn stalled_for(&self, stream: StreamId, now: Instant) -> Option<Duration> {
        let i = self.streams.find(stream)?;
        let since = self.streams.get(i).stalled_since?;
        Some(now.saturating_duration_since(since))
    }

    /// The longest current stall over all streams: a peer that never opens its window
    /// shows here, and the caller decides when to give up on it.
    pub fn longest_stall(&self, now: Instant) -> Option<Duration> {
        self.streams
            .iter()
            .filter_map(|s| s.stalled_since)
            .min()
            .map(|since| now.saturating_duration_since(since))
    }

    /// How many body bytes `stream` may send now (both windows).
    pub fn send_capacity(&self, stream: StreamId) -> usize {
        self.streams.find(stream).map_or(0, |i| {
            self.streams
                .get(i)
                .send_window
                .available()
                .min(self.conn_send.available())
        })
    }

    /// Client: whether `open_stream` would succeed now.
    pub fn can_open_stream(&self) -> bool {
        self.role == Role::Client
            && self.error.is_none()
            && self.goaway_received.is_none()
            && self.goaway_sent.is_none()
            && (self.streams.len() as u64) < u64::from(self.peer.max_concurrent_streams)
            && self.next_local_stream <= MAX_STREAM_ID
    }

    /// Finished: a connection error, or GOAWAY sent or received and no stream left.
    /// Flush the output, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.error.is_some()
            || ((self.goaway_sent.is_some() || self.goaway_received.is_some())
                && self.streams.is_empty())
    }

    /// The last peer stream handed to the caller (what our GOAWAY carries).
    pub fn last_processed(&self) -> StreamId {
        self.last_processed
    }

    // ---- input ----

    /// Feed received bytes. Events (cleared first) describe what arrived; frames owed in
    /// answer (SETTINGS and PING ACKs, WINDOW_UPDATEs, RST_STREAMs) are queued. A
    /// connection error queues GOAWAY and is returned again by every later call.
    pub fn recv(
        &mut self,
        input: &[u8],
        now: Instant,
        events: &mut Events,
    ) -> Result<(), ConnError> {
        events.clear();
        if let Some(e) = self.error {
            return Err(e);
        }
        self.now = now;
        let r = self.recv_frames(input, events);
        if let Err(e) = r {
            self.fail(e);
        }
        r
    }

    fn fail(&mut self, e: ConnError) {
        if self.error.is_none() {
            self.error = Some(e);
            GoAway::encode(
                self.last_processed,
                e.code,
                e.reason.as_bytes(),
                &mut self.out,
            );
            self.goaway_sent = Some(self.last_processed);
        }
    }

    fn recv_frames(&mut self, mut input: &[u8], events: &mut Events) -> Result<(), ConnError> {
        if let Preface::Magic(matched) = self.preface {
            let n = (PREFACE.len() - matched).min(input.len());
            if input[..n] != PREFACE[matched..matched + n] {
                return Err(protocol("invalid connection preface"));
            }
            input = &input[n..];
            self.preface = if matched + n == PREFACE.len() {
                Preface::FirstSettings
            } else {
                Preface::Magic(matched + n)
            };
            if input.is_empty() {
                return Ok(());
            }
        }
        if !self.partial.is_empty() {
            let mut buf = std::mem::take(&mut self.partial);
            let done = self.complete_partial(&mut buf, &mut input, events)?;
            if done {
                buf.clear();
            }
            self.partial = buf;
            if !done {
                return Ok(());
            }
        }
        while let Some(head) = FrameHead::parse(input) {
            self.check_len(head)?;
            let total = FRAME_HEAD_LEN + head.len as usize;
            if input.len() < total {
                break;
            }
            self.frame(head, &input[FRAME_HEAD_LEN..total], events)?;
            input = &input[total..];
        }
        self.partial.extend_from_slice(input);
        Ok(())
    }

    /// Complete the frame begun in `buf` from `input`; `true` once it was processed.
    fn complete_partial(
        &mut self,
        buf: &mut Vec<u8>,
        input: &mut &[u8],
        events: &mut Events,
    ) -> Result<bool, ConnError> {
        if buf.len() < FRAME_HEAD_LEN {
            let take = (FRAME_HEAD_LEN - buf.len()).min(input.len());
            buf.extend_from_slice(&input[..take]);
            *input = &input[take..];
        }
        let Some(head) = FrameHead::parse(buf) else {
            return Ok(false);
        };
        self.check_len(head)?;
        let total = FRAME_HEAD_LEN + head.len as usize;
        let take = (total - buf.len()).min(input.len());
        buf.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if buf.len() < total {
            return Ok(false);
        }
        self.frame(head, &buf[FRAME_HEAD_LEN..], events)?;
        Ok(true)
    }

    /// 4.2: a frame above our SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR. Checked on
    /// the header alone, so a huge length never makes us buffer.
    fn check_len(&self, head: FrameHead) -> Result<(), ConnError> {
        if head.len > self.config.max_frame_size {
            return Err(conn_err(
                ErrorCode::FRAME_SIZE_ERROR,
                "frame larger than SETTINGS_MAX_FRAME_SIZE",
            ));
        }
        Ok(())
    }

    fn frame(
        &mut self,
        head: FrameHead,
        payload: &[u8],
        events: &mut Events,
    ) -> Result<(), ConnError> {
        if let Some(c) = self.continuing {
            // 6.10: "If the END_HEADERS flag is not set, this frame MUST be followed by
            // another CONTINUATION frame [...] Receiving any other type of frame or a
            // frame on a different stream is a connection error of type PROTOCOL_ERROR."
            if head.kind != Kind::Continuation || head.stream != c.stream {
                return Err(protocol("field block interrupted by another frame"));
            }
        }
        if self.preface == Preface::FirstSettings {
            if head.kind != Kind::Settings || head.has(flags::ACK) {
                return Err(protocol("first frame from the peer is not SETTINGS"));
            }
            self.preface = Preface::Done;
        }
        let frame = match Frame::parse(head, payload) {
            Ok(f) => f,
            Err(FrameError::Connection(code)) => return Err(conn_err(code, "malformed frame")),
            Err(FrameError::Stream(id, code)) => return self.stream_error(id, code, events),
        };
        match frame {
            Frame::Data(d) => self.on_data(d, events),
            Frame::Headers(h) => self.on_headers(h, events),
            Frame::Continuation(c) => self.on_continuation(c, events),
            Frame::Priority(_) => self.empty_frame(),
            Frame::RstStream(r) => self.on_rst_stream(r, events),
            Frame::Settings(s) => self.on_settings(s, events),
            Frame::PushPromise(_) => Err(protocol(match self.role {
                Role::Server => "PUSH_PROMISE sent to a server",
                Role::Client => "PUSH_PROMISE with SETTINGS_ENABLE_PUSH 0",
            })),
            Frame::Ping(p) => self.on_ping(p, events),
            Frame::GoAway(g) => self.on_goaway(g, events),
            Frame::WindowUpdate(w) => self.on_window_update(w, events),
            Frame::Unknown { .. } => self.empty_frame(),
        }
    }

    /// A frame that carries nothing for the application costs a token.
    fn empty_frame(&mut self) -> Result<(), ConnError> {
        self.counters.empty_frames += 1;
        if !self.empty_budget.take(self.now) {
            self.counters.empty_frame_kills += 1;
            return Err(conn_err(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many frames without content",
            ));
        }
        Ok(())
    }

    /// Whether `id` was never used: above the highest id its initiator has opened.
    fn is_idle(&self, id: StreamId) -> bool {
        let peer_initiated = match self.role {
            Role::Server => id % 2 == 1,
            Role::Client => id % 2 == 0,
        };
        if peer_initiated {
            id > self.max_peer_stream
        } else {
            id >= self.next_local_stream
        }
    }

    /// 6.8: after our GOAWAY, frames on peer streams above its last stream id are
    /// ignored (the peer retries them elsewhere).
    fn ignored_after_goaway(&self, id: StreamId) -> bool {
        let peer_initiated = (id % 2 == 1) == (self.role == Role::Server);
        peer_initiated && self.goaway_sent.is_some_and(|last| id > last)
    }

    fn on_data(&mut self, d: Data<'_>, events: &mut Events) -> Result<(), ConnError> {
        if d.data.is_empty() && !d.end_stream {
            self.empty_frame()?;
        }
        // The connection window counts every DATA frame, even on closed streams (6.9).
        if self.conn_recv.consume(d.flow_len).is_err() {
            return Err(conn_err(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        let held = self.deliver_data(d, events)?;
        // What the caller never sees (padding, refused or closed streams) goes back at once.
        self.release_connection(d.flow_len - held);
        self.conn_held += u64::from(held);
        Ok(())
    }

    /// Report DATA on its stream; returns the bytes the caller releases itself
    /// (`Config::auto_release_window` off), 0 when the codec hands them back.
    fn deliver_data(&mut self, d: Data<'_>, events: &mut Events) -> Result<u32, ConnError> {
        let Some(i) = self.streams.find(d.stream) else {
            if self.is_idle(d.stream) {
                return Err(protocol("DATA on an idle stream"));
            }
            if self.recent_resets.contains(d.stream) || self.ignored_after_goaway(d.stream) {
                return Ok(0);
            }
            return self
                .stream_error(d.stream, ErrorCode::STREAM_CLOSED, events)
                .map(|()| 0);
        };
        let s = self.streams.get_mut(i);
        let code = if !s.recv_open {
            // 5.1 half-closed (remote): "MUST respond with a stream error of type
            // STREAM_CLOSED".
            Some(ErrorCode::STREAM_CLOSED)
        } else if !s.head_received {
            Some(ErrorCode::PROTOCOL_ERROR)
        } else if s.recv_window.consume(d.flow_len).is_err() {
            Some(ErrorCode::FLOW_CONTROL_ERROR)
        } else {
            s.received += d.data.len() as u64;
            // 8.1.1: a body longer than content-length, or shorter at its end, is
            // malformed.
            s.content_length
                .filter(|&cl| s.received > cl || (d.end_stream && s.received != cl))
                .map(|_| ErrorCode::PROTOCOL_ERROR)
        };
        if let Some(code) = code {
            return self.stream_error(d.stream, code, events).map(|()| 0);
        }
        events.push_data(d.stream, d.data, d.end_stream);
        let held = if self.config.auto_release_window {
            0
        } else {
            d.data.len() as u32
        };
        if d.end_stream {
            s.recv_open = false;
            self.maybe_close(i);
        } else {
            s.recv_held += held;
            if let Some(inc) = s.recv_window.release(d.flow_len - held) {
                WindowUpdate::encode(d.stream, inc, &mut self.out);
            }
        }
        Ok(held)
    }

    fn release_connection(&mut self, n: u32) {
        if let Some(inc) = self.conn_recv.release(n) {
            WindowUpdate::encode(0, inc, &mut self.out);
        }
    }

    fn on_headers(&mut self, h: Headers<'_>, events: &mut Events) -> Result<(), ConnError> {
        if !h.end_headers {
            if h.fragment.len() > self.config.max_header_block_bytes as usize {
                return Err(self.continuation_flood());
            }
            self.header_block.clear();
            self.header_block.extend_from_slice(h.fragment);
            self.continuing = Some(Continuing {
                stream: h.stream,
                end_stream: h.end_stream,
                self_dependent: h.depends_on_itself(),
                frames: 0,
            });
            return Ok(());
        }
        self.field_block(
            h.stream,
            h.end_stream,
            h.depends_on_itself(),
            h.fragment,
            events,
        )
    }

    fn continuation_flood(&mut self) -> ConnError {
        self.counters.continuation_flood_kills += 1;
        conn_err(ErrorCode::ENHANCE_YOUR_CALM, "field block too large")
    }

    fn on_continuation(
        &mut self,
        c: Continuation<'_>,
        events: &mut Events,
    ) -> Result<(), ConnError> {
        let Some(mut cont) = self.continuing else {
            return Err(protocol("CONTINUATION without HEADERS"));
        };
        self.counters.continuation_frames += 1;
        cont.frames += 1;
        if cont.frames > self.config.max_continuation_frames
            || self.header_block.len() + c.fragment.len()
                > self.config.max_header_block_bytes as usize
        {
            return Err(self.continuation_flood());
        }
        if c.fragment.is_empty() && !c.end_headers {
            self.empty_frame()?;
        }
        self.header_block.extend_from_slice(c.fragment);
        if !c.end_headers {
            self.continuing = Some(cont);
            return Ok(());
        }
        self.continuing = None;
        let block = std::mem::take(&mut self.header_block);
        let r = self.field_block(
            cont.stream,
            cont.end_stream,
            cont.self_dependent,
            &block,
            events,
        );
        self.header_block = block;
        r
    }

    /// A whole field block arrived on `stream`.
    fn field_block(
        &mut self,
        stream: StreamId,
        end_stream: bool,
        self_dependent: bool,
        block: &[u8],
        events: &mut Events,
    ) -> Result<(), ConnError> {
        // Decode first, whatever becomes of the stream: the HPACK table must stay in step
        // with the peer's (4.3).
        let fields_from = events.fields.len();
        let arena_from = events.arena.len();
        let too_large = match self
            .decoder
            .decode(block, &mut events.arena, &mut events.fields)
        {
            Ok(()) => false,
            Err(DecodeError::HeaderListTooLarge) => {
                self.counters.header_lists_too_large += 1;
                true
            }
            Err(_) => return Err(conn_err(ErrorCode::COMPRESSION_ERROR, "HPACK decoding")),
        };
        let decoded = Decoded {
            fields_from,
            arena_from,
            too_large,
        };
        if self_dependent {
            decoded.discard(events);
            return self.stream_error(stream, ErrorCode::PROTOCOL_ERROR, events);
        }
        if let Some(i) = self.streams.find(stream) {
            return self.headers_on_open(i, end_stream, decoded, events);
        }
        if self.is_idle(stream) {
            return self.headers_new(stream, end_stream, decoded, events);
        }
        decoded.discard(events);
        if self.recent_resets.contains(stream) || self.ignored_after_goaway(stream) {
            return Ok(());
        }
        if self.recent_closed.contains(stream) {
            // 5.1 closed: a field block on a stream that ended.
            return Err(conn_err(
                ErrorCode::STREAM_CLOSED,
                "HEADERS on a closed stream",
            ));
        }
        // 5.1.1: "The identifier of a newly established stream MUST be numerically
        // greater than all streams that the initiating endpoint has opened".
        Err(protocol("HEADERS on a stream id below the last one opened"))
    }

    /// HEADERS opening a stream: only a client may (we never enable push).
    fn headers_new(
        &mut self,
        stream: StreamId,
        end_stream: bool,
        decoded: Decoded,
        events: &mut Events,
    ) -> Result<(), ConnError> {
        if self.role == Role::Client || stream % 2 == 0 {
            // 5.1.1: an unexpected stream identifier is a PROTOCOL_ERROR.
            return Err(protocol("HEADERS opening a stream of the wrong parity"));
        }
        self.max_peer_stream = stream;
        if self.goaway_sent.is_some() {
            // 6.8: after GOAWAY, new streams are ignored; the client retries elsewhere.
            decoded.discard(events);
            return Ok(());
        }
        if self.streams.len() + self.held_slots.len() >= self.config.max_concurrent_streams as usize
        {
            decoded.discard(events);
            self.counters.streams_refused += 1;
            return self.stream_error(stream, ErrorCode::REFUSED_STREAM, events);
        }
        let checked = if decoded.too_large {
            None
        } else {
            match message::check(
                Block::Request,
                &events.fields[decoded.fields_from..],
                &events.arena,
            ) {
                Ok(c) => Some(c),
                Err(_) => {
                    decoded.discard(events);
                    return self.stream_error(stream, ErrorCode::PROTOCOL_ERROR, events);
                }
            }
        };
        let content_length = checked.and_then(|c| c.content_length);
        if end_stream && content_length.is_some_and(|n| n != 0) {
            decoded.discard(events);
            return self.stream_error(stream, ErrorCode::PROTOCOL_ERROR, events);
        }
        self.counters.streams_opened += 1;
        self.last_processed = stream;
        let recv_initial = self.recv_initial_window();
        self.streams.insert(Stream {
            id: stream,
            recv_open: !end_stream,
            send: SendHalf::AwaitingHead,
            head_received: true,
            head_request: false,
            send_window: SendWindow::new(self.peer.initial_window_size),
            recv_window: RecvWindow::new(recv_initial, self.config.initial_window_size),
            content_length,
            received: 0,
            recv_held: 0,
            stalled_since: None,
            announced: true,
        });
        match checked {
            None => {
                decoded.discard(events);
                events
                    .list
                    .push(Event::HeadersTooLarge { stream, end_stream });
            }
            Some(c) => events.list.push(Event::Headers {
                stream,
                kind: HeadersKind::Request,
                pseudo: c.pseudo,
                fields: decoded.regular(c.regular_from, events),
                content_length,
                end_stream,
            }),
        }
        Ok(())
    }

    /// Until the peer acknowledges our SETTINGS it may assume the default stream window.
    fn recv_initial_window(&self) -> u32 {
        if self.settings_acked {
            self.config.initial_window_size
        } else {
            self.config.initial_window_size.max(DEFAULT_WINDOW)
        }
    }

    /// HEADERS on an open stream: a client's response head (after any 1xx), or trailers.
    fn headers_on_open(
        &mut self,
        i: usize,
        end_stream: bool,
        decoded: Decoded,
        events: &mut Events,
    ) -> Result<(), ConnError> {
        let s = self.streams.get(i);
        let stream = s.id;
        if !s.recv_open {
            decoded.discard(events);
            return self.stream_error(stream, ErrorCode::STREAM_CLOSED, events);
        }
        if decoded.too_large {
            decoded.discard(events);
            return self.stream_error(stream, ErrorCode::CANCEL, events);
        }
        let head_received = s.head_received;
        let fields = &events.fields[decoded.fields_from..];
        let (kind, checked) = if head_received {
            // 8.1: trailers end the stream; a second block without END_STREAM is
            // malformed.
            let c = message::check(Block::Trailers, fields, &events.arena);
            (
                HeadersKind::Trailers,
                c.and_then(|c| {
                    if end_stream {
                        Ok(c)
                    } else {
                        Err("second field block without END_STREAM")
                    }
                }),
            )
        } else {
            match message::check(Block::Response, fields, &events.arena) {
                Ok(c) if c.pseudo.status < 200 => (
                    HeadersKind::Informational,
                    if end_stream {
                        Err("1xx response with END_STREAM")
                    } else {
                        Ok(c)
                    },
                ),
                c => (HeadersKind::Response, c),
            }
        };
        let Ok(checked) = checked else {
            decoded.discard(events);
            return self.stream_error(stream, ErrorCode::PROTOCOL_ERROR, events);
        };
        let s = self.streams.get_mut(i);
        if kind == HeadersKind::Response {
            s.head_received = true;
            let status = checked.pseudo.status;
            // A HEAD response, 204 and 304 describe a body that is not sent (RFC 9110).
            let bodyless = s.head_request || status == 204 || status == 304;
            s.content_length = if bodyless {
                Some(0)
            } else {
                checked.content_length
            };
        }
        if end_stream && s.content_length.is_some_and(|n| n != s.received) {
            decoded.discard(events);
            return self.stream_error(stream, ErrorCode::PROTOCOL_ERROR, events);
        }
        let content_length = checked.content_length;
        events.list.push(Event::Headers {
            stream,
            kind,
            pseudo: checked.pseudo,
            fields: decoded.regular(checked.regular_from, events),
            content_length,
            end_stream,
        });
        if end_stream {
            s.recv_open = false;
            self.maybe_close(i);
        }
        Ok(())
    }

    fn on_rst_stream(&mut self, r: RstStream, events: &mut Events) -> Result<(), ConnError> {
        self.counters.resets_received += 1;
        if self.is_idle(r.stream) {
            return Err(protocol("RST_STREAM on an idle stream"));
        }
        let Some(i) = self.streams.find(r.stream) else {
            return Ok(());
        };
        let s = self.close_stream(i);
        // Rapid reset: a stream reset before we finished answering it cost us work the
        // peer never waited for.
        if self.role == Role::Server && s.send != SendHalf::Closed {
            self.hold_slot(&s, r.stream);
            self.spend_reset()?;
        }
        events.list.push(Event::Reset {
            stream: r.stream,
            code: r.code,
            by_peer: true,
            retryable: r.code == ErrorCode::REFUSED_STREAM,
        });
        Ok(())
    }

    /// With `Config::hold_reset_slots`: the stream's work may still run, so its slot
    /// keeps counting toward our concurrency limit until `work_cancelled`. Only a
    /// request the peer finished (END_STREAM) can have work: one reset while its body
    /// was still coming frees its slot at once, so a client that resets an upload and
    /// opens a stream in the same write is not refused (RFC 9113 5.1.2: a closed stream
    /// does not count).
    fn hold_slot(&mut self, s: &Stream, stream: StreamId) {
        if self.config.hold_reset_slots && !s.recv_open {
            self.held_slots.push(stream);
        }
    }

    fn spend_reset(&mut self) -> Result<(), ConnError> {
        if !self.reset_budget.take(self.now) {
            self.counters.rapid_reset_kills += 1;
            return Err(conn_err(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many streams reset",
            ));
        }
        Ok(())
    }

    fn on_settings(&mut self, s: Settings<'_>, events: &mut Events) -> Result<(), ConnError> {
        if s.ack {
            if self.settings_deadline.take().is_some() {
                self.settings_acked = true;
                self.decoder
                    .set_max_allowed(self.config.header_table_size as usize);
                events.list.push(Event::SettingsAcked);
            }
            return Ok(());
        }
        self.counters.settings_received += 1;
        if !self.settings_budget.take(self.now) {
            self.counters.settings_flood_kills += 1;
            return Err(conn_err(ErrorCode::ENHANCE_YOUR_CALM, "SETTINGS flood"));
        }
        for setting in s.iter() {
            let v = setting.value;
            match setting.id {
                SettingId::HeaderTableSize => {
                    self.peer.header_table_size = v;
                    self.encoder.set_peer_max(v as usize);
                }
                SettingId::EnablePush => {
                    // 6.5.2: "A client MUST treat receipt of a SETTINGS frame with
                    // SETTINGS_ENABLE_PUSH set to 1 as a connection error".
                    if self.role == Role::Client && v == 1 {
                        return Err(protocol("server sent SETTINGS_ENABLE_PUSH 1"));
                    }
                    self.peer.enable_push = v == 1;
                }
                SettingId::MaxConcurrentStreams => self.peer.max_concurrent_streams = v,
                SettingId::InitialWindowSize => {
                    let delta = i64::from(v) - i64::from(self.peer.initial_window_size);
                    self.peer.initial_window_size = v;
                    for st in self.streams.iter_mut() {
                        if st.send_window.adjust(delta).is_err() {
                            return Err(conn_err(
                                ErrorCode::FLOW_CONTROL_ERROR,
                                "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window",
                            ));
                        }
                    }
                    if delta > 0 {
                        self.announce_ready(None, events);
                    }
                }
                SettingId::MaxFrameSize => self.peer.max_frame_size = v,
                SettingId::MaxHeaderListSize => self.peer.max_header_list_size = v,
                SettingId::EnableConnectProtocol | SettingId::Unknown(_) => {}
            }
        }
        Settings::encode_ack(&mut self.out);
        events.list.push(Event::Settings);
        Ok(())
    }

    fn on_ping(&mut self, p: Ping, events: &mut Events) -> Result<(), ConnError> {
        if p.ack {
            events.list.push(Event::PingAck { payload: p.payload });
            return Ok(());
        }
        self.counters.pings_received += 1;
        if !self.ping_budget.take(self.now) {
            self.counters.ping_flood_kills += 1;
            return Err(conn_err(ErrorCode::ENHANCE_YOUR_CALM, "PING flood"));
        }
        Ping::encode(true, p.payload, &mut self.out);
        Ok(())
    }

    fn on_goaway(&mut self, g: GoAway<'_>, events: &mut Events) -> Result<(), ConnError> {
        let last = self
            .goaway_received
            .map_or(g.last_stream, |l| l.min(g.last_stream));
        self.goaway_received = Some(last);
        // Our streams above `last` were never processed: safe to retry elsewhere.
        let mut i = 0;
        while i < self.streams.len() {
            let id = self.streams.get(i).id;
            let ours = (id % 2 == 1) == (self.role == Role::Client);
            if ours && id > last {
                self.close_stream(i);
                events.list.push(Event::Reset {
                    stream: id,
                    code: ErrorCode::REFUSED_STREAM,
                    by_peer: true,
                    retryable: true,
                });
            } else {
                i += 1;
            }
        }
        let debug = events.push_bytes(g.debug);
        events.list.push(Event::GoAway {
            last_stream: last,
            code: g.code,
            debug,
        });
        Ok(())
    }

    fn on_window_update(&mut self, w: WindowUpdate, events: &mut Events) -> Result<(), ConnError> {
        if w.stream == 0 {
            if self.conn_send.grow(w.increment).is_err() {
                return Err(conn_err(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection window above 2^31-1",
                ));
            }
            self.announce_ready(None, events);
            return Ok(());
        }
        let Some(i) = self.streams.find(w.stream) else {
            if self.is_idle(w.stream) {
                return Err(protocol("WINDOW_UPDATE on an idle stream"));
            }
            return Ok(());
        };
        if self
            .streams
            .get_mut(i)
            .send_window
            .grow(w.increment)
            .is_err()
        {
            return self.stream_error(w.stream, ErrorCode::FLOW_CONTROL_ERROR, events);
        }
        self.announce_ready(Some(i), events);
        Ok(())
    }

    /// Tell the caller which stalled streams (one, or all) can send again.
    fn announce_ready(&mut self, only: Option<usize>, events: &mut Events) {
        if self.conn_send.available() == 0 {
            return;
        }
        let range = match only {
            Some(i) => i..i + 1,
            None => 0..self.streams.len(),
        };
        for i in range {
            let s = self.streams.get(i);
            if s.stalled_since.is_some() && s.send_window.available() > 0 {
                events.list.push(Event::SendReady { stream: s.id });
            }
        }
    }

    /// A stream error (5.4.2): RST_STREAM, the stream closed, the caller told if it knew
    /// the stream. Errors provoked by the peer count toward the reset budget.
    fn stream_error(
        &mut self,
        stream: StreamId,
        code: ErrorCode,
        events: &mut Events,
    ) -> Result<(), ConnError> {
        self.counters.stream_errors += 1;
        self.send_reset(stream, code);
        if let Some(i) = self.streams.find(stream) {
            let s = self.close_stream(i);
            if self.role == Role::Server && s.send != SendHalf::Closed {
                self.hold_slot(&s, stream);
            }
            if s.announced {
                events.list.push(Event::Reset {
                    stream,
                    code,
                    by_peer: false,
                    retryable: false,
                });
            }
        }
        // Refusals beyond our stream limit count too: a client that keeps opening
        // streams past it is abusing us the same way.
        self.spend_reset()
    }

    fn send_reset(&mut self, stream: StreamId, code: ErrorCode) {
        RstStream::encode(stream, code, &mut self.out);
        if !self.recent_resets.contains(stream) {
            self.recent_resets.add(stream);
        }
        self.counters.resets_sent += 1;
    }

    fn maybe_close(&mut self, i: usize) {
        let s = self.streams.get(i);
        if !s.recv_open && s.send == SendHalf::Closed {
            self.close_stream(i);
        }
    }

    fn close_stream(&mut self, i: usize) -> Stream {
        let s = self.streams.remove(i);
        self.recent_closed.add(s.id);
        if self.streams.is_empty() {
            self.idle_since = self.now;
        }
        s
    }

    // ---- output ----

    /// Server: send the response head for `stream` (1xx heads may precede the final one).
    pub fn send_response(
        &mut self,
        stream: StreamId,
        status: u16,
        fields: &[Field<'_>],
        end_stream: bool,
    ) -> Result<(), SendError> {
        if self.role != Role::Server {
            return Err(SendError::WrongRole);
        }
        let i = self.open_stream_index(stream)?;
        if self.streams.get(i).send != SendHalf::AwaitingHead {
            return Err(SendError::InvalidState);
        }
        debug_assert!((100..=999).contains(&status));
        let informational = status < 200;
        let digits = [
            b'0' + (status / 100 % 10) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        self.write_block(
            stream,
            &[(b":status", &digits)],
            fields,
            end_stream && !informational,
        );
        if !informational {
            self.finish_head(i, end_stream);
        }
        Ok(())
    }

    /// Client: open a stream with a request head; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn open_stream(
        &mut self,
        method: &[u8],
        scheme: &[u8],
        authority: &[u8],
        path: &[u8],
        fields: &[Field<'_>],
        end_stream: bool,
    ) -> Result<StreamId, SendError> {
        if self.role != Role::Client {
            return Err(SendError::WrongRole);
        }
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        if self.goaway_received.is_some() || self.goaway_sent.is_some() {
            return Err(SendError::GoingAway);
        }
        if self.next_local_stream > MAX_STREAM_ID {
            return Err(SendError::StreamIdsExhausted);
        }
        if self.streams.len() as u64 >= u64::from(self.peer.max_concurrent_streams) {
            return Err(SendError::TooManyStreams);
        }
        let stream = self.next_local_stream;
        self.next_local_stream += 2;
        let recv_initial = self.recv_initial_window();
        self.streams.insert(Stream {
            id: stream,
            recv_open: true,
            send: if end_stream {
                SendHalf::Closed
            } else {
                SendHalf::Open
            },
            head_received: false,
            head_request: method == b"HEAD",
            send_window: SendWindow::new(self.peer.initial_window_size),
            recv_window: RecvWindow::new(recv_initial, self.config.initial_window_size),
            content_length: None,
            received: 0,
            recv_held: 0,
            stalled_since: None,
            announced: true,
        });
        let pseudo: [Field<'_>; 4] = [
            (b":method", method),
            (b":scheme", scheme),
            (b":authority", authority),
            (b":path", path),
        ];
        self.write_block(stream, &pseudo, fields, end_stream);
        Ok(stream)
    }

    /// Send trailers, ending our side of the stream.
    pub fn send_trailers(
        &mut self,
        stream: StreamId,
        fields: &[Field<'_>],
    ) -> Result<(), SendError> {
        let i = self.open_stream_index(stream)?;
        if self.streams.get(i).send != SendHalf::Open {
            return Err(SendError::InvalidState);
        }
        self.write_block(stream, &[], fields, true);
        self.finish_head(i, true);
        Ok(())
    }

    /// Send up to `data.len()` body bytes, as many as both flow-control windows allow
    /// (in frames of the peer's SETTINGS_MAX_FRAME_SIZE). Returns how many were taken;
    /// END_STREAM goes out only if all were. The rest waits for [`Event::SendReady`].
    pub fn send_data(
        &mut self,
        stream: StreamId,
        data: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        let i = self.open_stream_index(stream)?;
        let now = self.now;
        let max_frame = self.peer.max_frame_size as usize;
        let conn_avail = self.conn_send.available();
        let s = self.streams.get_mut(i);
        if s.send != SendHalf::Open {
            return Err(SendError::InvalidState);
        }
        let n = data.len().min(s.send_window.available()).min(conn_avail);
        let all = n == data.len();
        for (k, chunk) in data[..n].chunks(max_frame).enumerate() {
            let last = (k + 1) * max_frame >= n;
            Data::encode(stream, chunk, last && all && end_stream, &mut self.out);
        }
        if n == 0 && all && end_stream {
            Data::encode(stream, &[], true, &mut self.out);
        }
        s.send_window.spend(n);
        self.conn_send.spend(n);
        if all {
            s.stalled_since = None;
            if end_stream {
                s.send = SendHalf::Closed;
                self.maybe_close(i);
            }
        } else if s.stalled_since.is_none() {
            s.stalled_since = Some(now);
        }
        Ok(n)
    }

    /// With `Config::auto_release_window` off: the caller has consumed `n` body bytes of
    /// `stream` (from [`Event::Data`]); hand the credit back to the peer, in WINDOW_UPDATEs
    /// batched per half window like the automatic policy. Until then the peer's sending
    /// is held back by our windows: back-pressure for a caller that buffers bodies.
    /// Releasing more than was reported is capped (a window never grows past what we
    /// advertised). Release bytes of streams that ended too: the connection needs them.
    pub fn release_capacity(&mut self, stream: StreamId, n: usize) {
        let conn = (n as u64).min(self.conn_held);
        self.conn_held -= conn;
        self.release_connection(conn as u32);
        if let Some(i) = self.streams.find(stream) {
            let s = self.streams.get_mut(i);
            let k = (n as u64).min(u64::from(s.recv_held)) as u32;
            s.recv_held -= k;
            if s.recv_open {
                if let Some(inc) = s.recv_window.release(k) {
                    WindowUpdate::encode(stream, inc, &mut self.out);
                }
            }
        }
    }

    /// Server with `Config::hold_reset_slots`: the work of a stream reported in
    /// [`Event::Reset`] has stopped; its slot no longer counts toward the concurrency
    /// limit. Unknown ids are ignored.
    pub fn work_cancelled(&mut self, stream: StreamId) {
        if let Some(i) = self.held_slots.iter().position(|&s| s == stream) {
            self.held_slots.swap_remove(i);
        }
    }

    /// Reset a stream (RST_STREAM with `code`); it is forgotten at once.
    pub fn reset(&mut self, stream: StreamId, code: ErrorCode) -> Result<(), SendError> {
        let i = self.open_stream_index(stream)?;
        self.send_reset(stream, code);
        self.close_stream(i);
        Ok(())
    }

    /// Start a graceful shutdown: GOAWAY with the last stream we processed; streams
    /// already open finish, new ones are ignored. [`Connection::is_closed`] turns true
    /// when the last one ends.
    pub fn goaway(&mut self, code: ErrorCode) {
        if self.error.is_some() {
            return;
        }
        GoAway::encode(self.last_processed, code, b"", &mut self.out);
        self.goaway_sent = Some(self.last_processed);
    }

    /// Send a PING; its ACK arrives as [`Event::PingAck`].
    pub fn ping(&mut self, payload: [u8; 8]) {
        Ping::encode(false, payload, &mut self.out);
    }

    /// Move the frames queued so far to `out` (appended; no copy when `out` is empty).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.extend_from_slice(&self.out);
        }
        self.out.clear();
    }

    /// The next deadline: the peer's SETTINGS acknowledgement, or the idle timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let idle = self
            .config
            .idle_timeout
            .filter(|_| self.streams.is_empty() && self.goaway_sent.is_none())
            .map(|t| self.idle_since + t);
        match (self.settings_deadline, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Act on a deadline that passed: no SETTINGS ACK in time is a connection error
    /// (SETTINGS_TIMEOUT); an idle connection sends GOAWAY(NO_ERROR) and is closed.
    pub fn on_timeout(&mut self, now: Instant) -> Result<(), ConnError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.now = now;
        if self.settings_deadline.is_some_and(|d| now >= d) {
            let e = conn_err(ErrorCode::SETTINGS_TIMEOUT, "SETTINGS not acknowledged");
            self.fail(e);
            return Err(e);
        }
        if let Some(t) = self.config.idle_timeout {
            if self.streams.is_empty() && self.goaway_sent.is_none() && now >= self.idle_since + t {
                self.goaway(ErrorCode::NO_ERROR);
            }
        }
        Ok(())
    }

    fn open_stream_index(&self, stream: StreamId) -> Result<usize, SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        self.streams.find(stream).ok_or(SendError::UnknownStream)
    }

    fn finish_head(&mut self, i: usize, end_stream: bool) {
        let s = self.streams.get_mut(i);
        s.send = if end_stream {
            SendHalf::Closed
        } else {
            SendHalf::Open
        };
        if end_stream {
            s.stalled_since = None;
            self.maybe_close(i);
        }
    }

    /// Encode a field block straight into the output behind a HEADERS frame header,
    /// cutting it into CONTINUATION frames only if it exceeds the peer's frame size.
    fn write_block(
        &mut self,
        stream: StreamId,
        pseudo: &[Field<'_>],
        fields: &[Field<'_>],
        end_stream: bool,
    ) {
        let at = self.out.len();
        self.out.extend_from_slice(&[0; FRAME_HEAD_LEN]);
        self.encoder.start_block(&mut self.out);
        for &(name, value) in pseudo.iter().chain(fields) {
            self.encoder.field(name, value, false, &mut self.out);
        }
        let len = self.out.len() - at - FRAME_HEAD_LEN;
        let max = self.peer.max_frame_size as usize;
        let stream_flag = if end_stream { flags::END_STREAM } else { 0 };
        if len <= max {
            let head = FrameHead::new(
                Kind::Headers,
                flags::END_HEADERS | stream_flag,
                stream,
                len as u32,
            );
            self.out[at..at + FRAME_HEAD_LEN].copy_from_slice(&head.to_bytes());
            return;
        }
        self.block_scratch.clear();
        self.block_scratch
            .extend_from_slice(&self.out[at + FRAME_HEAD_LEN..]);
        self.out.truncate(at);
        let mut chunks = self.block_scratch.chunks(max).peekable();
        let first = chunks.next().expect("a block longer than a frame");
        Headers::encode(stream, first, end_stream, false, &mut self.out);
        while let Some(chunk) = chunks.next() {
            Continuation::encode(stream, chunk, chunks.peek().is_none(), &mut self.out);
        }
    }
}

/// Where a decoded field block sits in [`Events`], to keep or drop it.
#[derive(Debug, Clone, Copy)]
struct Decoded {
    fields_from: usize,
    arena_from: usize,
    too_large: bool,
}

impl Decoded {
    fn discard(self, events: &mut Events) {
        events.fields.truncate(self.fields_from);
        events.arena.truncate(self.arena_from);
    }

    fn regular(self, regular_from: usize, events: &Events) -> FieldRange {
        let start = self.fields_from + regular_from;
        FieldRange {
            start: start as u32,
            len: (events.fields.len() - start) as u32,
        }
    }
}

#[cfg(test)]
mod tests;
