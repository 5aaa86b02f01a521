//! One connection's HTTP/1.1 state machine, sans-IO: bytes and the current time go in,
//! what to do next comes out (bytes to send, a file range to read, keep reading or not,
//! close now or after a lingering half-close, a deadline). The ring loop in `worker.rs`
//! only moves bytes and completions; this file never touches a socket.
//!
//! Inputs: [`Conn::on_data`], [`Conn::on_eof`], [`Conn::on_sent`], [`Conn::on_file_read`],
//! [`Conn::on_timeout`], [`Conn::on_error`], [`Conn::start_drain`].
//! Outputs: [`Conn::poll_send`], [`Conn::poll_file_read`], [`Conn::wants_read`],
//! [`Conn::poll_close`], [`Conn::deadline`].
//!
//! Requests are parsed in place in the buffer they arrived in; only an incomplete tail is
//! copied into the connection's own buffer. Every complete request in a read is answered
//! into one output buffer, so a pipelined burst leaves in one send. The output buffer is
//! swapped with the driver's send buffer of the slot ([`Conn::poll_send`]): the bytes in
//! flight belong to the slot, not to this machine, and no copy is made.
//!
//! Files: `mod.rs` (the state, inputs and outputs), `read.rs` (parsing requests and
//! refusing bad ones), `exchange.rs` (a complete request routed to the handler or the
//! proxy), `files.rs` (file bodies), `forward.rs` (the proxy's answers), `tunnel.rs` (the
//! connection after a proxied `101 Switching Protocols`), `tls.rs` (rustls and kTLS),
//! `tests.rs`.

mod exchange;
mod files;
mod forward;
mod h2;
mod h2_state;
mod read;
#[cfg(test)]
mod tests;
mod tls;
mod tunnel;

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uring_common::http::{
    date::format_imf_fixdate, parse_request, BodyFraming, ChunkEvent, ChunkedDecoder, ChunkedError,
    HeaderStorage, Limits, Parsed, RequestError, RequestHead, Version,
};
use uring_common::ring::{Event, SPLICE_HEAD_MAX};

use crate::config::Timeouts;
use crate::handler::Handler;
use crate::metrics::TimeoutKind;
use crate::observe::RequestLog;
use crate::request::Request;
use crate::response::{FileBody, ResponseWriter};

/// Stop answering pipelined requests while this much output waits (back-pressure).
const OUT_HIGH_WATER: usize = 256 * 1024;
/// Input kept while a file body streams before the receive stops (see `wants_read`).
const READ_WHILE_STREAMING: usize = 16 * 1024;
/// Largest file chunk read per operation (bounded memory per connection).
pub const FILE_CHUNK: usize = 64 * 1024;
/// Largest splice asked for at once; the driver trims it to what the slot's pipe holds.
pub const SPLICE_CHUNK: u32 = 1 << 20;
/// How long a closing connection keeps reading (and discarding) after its half-close, so
/// the client gets our last response rather than a reset.
const LINGER: Duration = Duration::from_secs(2);
/// While draining, how long a connection with nothing pending stays open for a request
/// that may already be on its way: closing it at once would race with that request (the
/// client sees its connection die under a request it sent, an error no client retries
/// safely). Such a request is answered with `Connection: close`. This is what lets an
/// upgrade under full load finish without a read error.
pub const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// What the worker must do to end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Cancel outstanding operations and close the socket.
    Now,
    /// Half-close (`shutdown(SHUT_WR)`) and keep reading until EOF or the linger deadline.
    Linger,
    /// Close with a reset (SO_LINGER 0): what was sent must not look complete.
    Reset,
    /// `shutdown(SHUT_WR)` and go on (a tunnel's upstream half-closed); not the end.
    HalfClose,
}

/// A file operation to start for the body being sent (see [`Conn::poll_file_op`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// Read (fd, offset, length) into memory, then send.
    Read(RawFd, u64, u32),
    /// Splice (fd, offset, length, more bytes follow) to the socket.
    Splice(RawFd, u64, u32, bool),
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and answering requests.
    Open,
    /// Answer everything pending, then close (an error, `Connection: close`, draining).
    CloseAfterFlush,
    /// Send what is queued, then reset (a forwarded response broke off).
    ResetAfterFlush,
    /// Half-closed after our last response; discarding input until EOF or deadline.
    Lingering { until: Instant },
    /// Done; the worker closes the socket.
    Closed,
}

/// Why the connection answers a request itself, then closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The head broke a rule of the codec (its status comes from there).
    Request(RequestError),
    /// The body is malformed or too large.
    Body(BodyError),
    /// CONNECT, which the handler does not tunnel: 501.
    Connect,
    /// The body did not arrive within the body timeout: 408.
    BodyTimeout,
    /// The request cannot be put in the upstream's protocol (a uwsgi packet): 400 or 431.
    Upstream(crate::proxy::cgi::CgiError),
}

impl Refusal {
    fn status(self) -> u16 {
        match self {
            Refusal::Request(e) => e.status(),
            Refusal::Body(e) => e.status(),
            Refusal::Connect => 501,
            Refusal::BodyTimeout => 408,
            Refusal::Upstream(e) => e.status(),
        }
    }
}

/// Why a request body is refused (answered, then the connection closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyError {
    /// The chunked framing is broken: 400.
    Framing(ChunkedError),
    /// The body is, or promises to be, larger than `max_body_bytes`: 413.
    TooLarge,
}

impl BodyError {
    fn status(self) -> u16 {
        match self {
            BodyError::Framing(_) => 400,
            BodyError::TooLarge => 413,
        }
    }
}

/// A file body being sent (`files.rs`).
struct FileStream {
    body: FileBody,
    /// A read (or, for a zero-copy body, a splice) of the next chunk is in flight.
    read_in_flight: bool,
    /// Bytes of the response head left in the driver's send buffer to go out with the
    /// first splice: no `Sent` reports them, the splice's end counts them.
    head_in_splice: usize,
}

/// The HTTP/1.x answer in progress, which later requests wait for (responses stay in
/// order). HTTP/2 keeps its streams' answers in `H2`, all but the one file body the
/// connection streams at a time (`File`).
enum Answer {
    /// Nothing in progress: the next request may be answered.
    None,
    /// A file body is being sent (`files.rs`).
    File(FileStream),
    /// The handler deferred the request at the front of the input ([`Conn::resume`]).
    Deferred,
    /// Forwarded to an upstream (`forward.rs`); its response comes through the proxy.
    Upstream {
        /// The request, until the worker takes it for the proxy ([`Conn::take_forward`]).
        request: Option<Forward>,
        /// Where its response starts in `out`, until its status is counted.
        status_at: Option<usize>,
        /// When it was forwarded (the metrics and the access log).
        since: Instant,
    },
}

impl Answer {
    #[inline]
    fn file(&self) -> Option<&FileStream> {
        match self {
            Answer::File(f) => Some(f),
            _ => None,
        }
    }

    #[inline]
    fn file_mut(&mut self) -> Option<&mut FileStream> {
        match self {
            Answer::File(f) => Some(f),
            _ => None,
        }
    }

    /// Output of ours still to come: a file body or an upstream's response.
    #[inline]
    fn sending(&self) -> bool {
        matches!(self, Answer::File(_) | Answer::Upstream { .. })
    }
}

/// What the connection waits for from the client (hyper's `Reading`, for the timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Between requests: the keep-alive idle timer runs from the last activity.
    Idle,
    /// A request head: since accept for the first request, since its first byte for
    /// later ones (the slowloris guard).
    Head { since: Instant },
    /// The body of the request at the front of the input, whose head was complete at
    /// `since`; `continue_sent`: `100 Continue` went out for it.
    Body { since: Instant, continue_sent: bool },
}

impl Reading {
    /// Bytes of a head arrived (it is incomplete): its timer starts now unless it runs.
    fn head(&mut self, now: Instant) {
        if !matches!(self, Reading::Head { .. }) {
            *self = Reading::Head { since: now };
        }
    }

    /// A head is complete (or nothing is left unread): its timer stops.
    fn head_done(&mut self) {
        if matches!(self, Reading::Head { .. }) {
            *self = Reading::Idle;
        }
    }

    /// A complete head's body is still arriving: its timer starts now unless it runs.
    fn body(&mut self, now: Instant) {
        if !matches!(self, Reading::Body { .. }) {
            *self = Reading::Body {
                since: now,
                continue_sent: false,
            };
        }
    }
}

/// The sending side (hyper's `Writing`): one send at a time, until the close is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// Nothing handed to the driver is unsent.
    Idle,
    /// The driver is sending what `poll_send` handed over.
    Sending,
    /// The worker was told to close the socket ([`Conn::poll_close`], once): nothing
    /// more goes out, and a send still in flight no longer matters.
    Closed,
}

/// Which protocol the connection speaks, once its first bytes said so.
enum Proto {
    /// Nothing looked at yet (with `--http2`, the first bytes may be the preface).
    Unknown,
    Http1,
    /// The codec and the streams (`h2.rs`).
    Http2(Box<h2_state::H2>),
}

impl Proto {
    #[inline]
    fn h2(&self) -> Option<&h2_state::H2> {
        match self {
            Proto::Http2(h2) => Some(h2),
            _ => None,
        }
    }

    #[inline]
    fn h2_mut(&mut self) -> Option<&mut h2_state::H2> {
        match self {
            Proto::Http2(h2) => Some(h2),
            _ => None,
        }
    }
}

/// Everything a connection needs from its worker for one call.
pub struct Ctx<'a, H> {
    pub handler: &'a mut H,
    pub date: &'a [u8; 29],
    pub limits: &'a Limits,
    pub timeouts: &'a Timeouts,
    pub now: Instant,
    /// The server is shutting down: answer with `Connection: close`.
    pub draining: bool,
    /// Access log and metrics (present when either is on).
    pub log: Option<&'a mut RequestLog>,
    /// HTTP/2's settings, when connections may speak it (`--http2`).
    pub http2: Option<&'a uring_common::h2::Config>,
    /// Request rate limits per client address (`--limit-req`), when set.
    pub client_limits: Option<&'a crate::limit::ClientLimits>,
}

/// The `Date` the unit tests answer with.
#[cfg(test)]
pub(crate) const TEST_DATE: &[u8; 29] = b"Thu, 01 Jan 1970 00:00:00 GMT";

#[cfg(test)]
impl<'a, H> Ctx<'a, H> {
    /// A context as the unit tests build it: the fixed test date, no log, not draining.
    pub(crate) fn for_test(
        handler: &'a mut H,
        limits: &'a Limits,
        timeouts: &'a Timeouts,
        now: Instant,
    ) -> Ctx<'a, H> {
        Ctx {
            handler,
            date: TEST_DATE,
            limits,
            timeouts,
            now,
            draining: false,
            log: None,
            http2: None,
            client_limits: None,
        }
    }
}

pub use forward::{Forward, ForwardOutcome};
pub use h2_state::server_config as http2_config;

pub struct Conn {
    /// Unconsumed input: an incomplete request (head, or head plus partial body).
    rbuf: Vec<u8>,
    /// Responses not yet handed to the kernel.
    out: Vec<u8>,
    writing: Writing,
    answer: Answer,
    phase: Phase,
    // Three facts that stay apart, as no state of the others implies or excludes them:
    // the peer's half-close ends the input whatever we still send; the server's
    // shutdown covers every connection whatever its requests asked for; the last
    // request's wish to close decides only how a connection ends that will end anyway.
    /// The peer half-closed: answer what is complete, read no more.
    peer_eof: bool,
    /// The server is shutting down ([`Conn::start_drain`]).
    draining: bool,
    /// The client asked for the close (`Connection: close`, HTTP/1.0) on plain HTTP,
    /// and no input was left unread: close without lingering.
    quiet_close: bool,
    /// What the connection waits for from the client, and since when (the timers).
    reading: Reading,
    last_activity: Instant,
    /// Chunked body of the request at the front of `rbuf`: decoder, raw bytes decoded so
    /// far (after the head), and the decoded body.
    chunked: ChunkedDecoder,
    chunk_raw: usize,
    chunk_body: Vec<u8>,
    timeouts: Timeouts,
    /// The forwarded request's line, Host, Referer and User-Agent (with an access log),
    /// for its log line: apart from `Answer::Upstream` so its buffer is reused.
    forward_log: Vec<u8>,
    /// Who the client is (for `X-Forwarded-For` and `-Proto`), set by the worker.
    pub client: crate::proxy::ClientInfo,
    /// Plain, rustls or kTLS (`conn/tls.rs`).
    tls: tls::Tls,
    proto: Proto,
    /// After a proxied 101: a tunnel (`tunnel.rs`), no more requests.
    tunnel: Option<Box<tunnel::ClientTunnel>>,
}

impl Conn {
    pub fn new(now: Instant, timeouts: &Timeouts) -> Conn {
        Conn::with_buffers(
            now,
            timeouts,
            Vec::new(),
            Vec::with_capacity(4096),
            Vec::new(),
        )
    }

    fn with_buffers(
        now: Instant,
        timeouts: &Timeouts,
        rbuf: Vec<u8>,
        out: Vec<u8>,
        chunk_body: Vec<u8>,
    ) -> Conn {
        Conn {
            rbuf,
            out,
            writing: Writing::Idle,
            answer: Answer::None,
            phase: Phase::Open,
            peer_eof: false,
            draining: false,
            // The head timeout runs from accept, like nginx's client_header_timeout: a
            // connection that sends nothing must not hold a slot for the idle timeout.
            reading: Reading::Head { since: now },
            last_activity: now,
            chunked: ChunkedDecoder::new(),
            chunk_raw: 0,
            chunk_body,
            timeouts: *timeouts,
            forward_log: Vec::new(),
            client: crate::proxy::ClientInfo::default(),
            tls: tls::Tls::Plain,
            proto: Proto::Unknown,
            quiet_close: false,
            tunnel: None,
        }
    }

    /// Reuse this slot for a new connection: a new machine, keeping modest buffers to
    /// avoid allocating.
    pub fn reset(&mut self, now: Instant) {
        fn trimmed(v: &mut Vec<u8>, keep: usize) -> Vec<u8> {
            let mut v = std::mem::take(v);
            v.clear();
            if v.capacity() > keep {
                v = Vec::with_capacity(keep.min(4096));
            }
            v
        }
        let rbuf = trimmed(&mut self.rbuf, 64 * 1024);
        let out = trimmed(&mut self.out, 128 * 1024);
        *self = Conn::with_buffers(now, &self.timeouts, rbuf, out, Vec::new());
    }

    /// The socket is closed: let go of what holds kernel resources (an open file) now
    /// rather than when the slot is next used.
    pub fn release(&mut self) {
        self.answer = Answer::None;
        self.proto = Proto::Unknown;
        self.tls = tls::Tls::Plain;
        self.tunnel = None;
        self.phase = Phase::Closed;
    }

    // ---- inputs ----

    /// Bytes received from the peer. Borrowed only for the call: whatever must outlive it
    /// (an incomplete request) is copied.
    pub fn on_data<H: Handler>(&mut self, data: &[u8], ctx: &mut Ctx<'_, H>) {
        self.last_activity = ctx.now;
        if let Some(log) = ctx.log.as_deref_mut() {
            log.received(data.len());
        }
        match self.phase {
            Phase::Open => {}
            Phase::CloseAfterFlush
            | Phase::ResetAfterFlush
            | Phase::Lingering { .. }
            | Phase::Closed => {
                self.quiet_close = false;
                return;
            }
        }
        if self.tls.in_rustls() {
            return self.on_tls_records(data, ctx);
        }
        self.on_plain(data, ctx);
    }

    /// The peer half-closed: answer what is complete, then close.
    pub fn on_eof<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.peer_eof = true;
        match self.phase {
            Phase::Lingering { .. } => self.phase = Phase::Closed,
            // pump closes once nothing blocks: a file streaming or a full output buffer
            // may still hold back complete requests, which are answered first.
            Phase::Open => self.pump(ctx),
            _ => {}
        }
    }

    /// Everything handed over by `poll_send` went out (`n` bytes; the driver continues
    /// short sends itself).
    pub fn on_sent<H: Handler>(&mut self, n: usize, ctx: &mut Ctx<'_, H>) {
        if self.writing == Writing::Sending {
            self.writing = Writing::Idle;
        }
        self.last_activity = ctx.now;
        if let Some(log) = ctx.log.as_deref_mut() {
            log.sent(n);
        }
        if n == 0 {
            self.phase = Phase::Closed;
            return;
        }
        self.pump(ctx);
    }

    /// The deadline passed (the worker checks `deadline()` against its clock). A body
    /// that did not arrive in time is answered 408 before the close; a head that did not,
    /// or an idle or stalled connection, is closed at once.
    /// Returns which deadline fired, if one did.
    pub fn on_timeout(&mut self, now: Instant) -> Option<TimeoutKind> {
        if !self.deadline().is_some_and(|d| now >= d) {
            return None;
        }
        if self.is_http2() && self.phase == Phase::Open {
            // No first request in time, idle, or a peer that stopped reading or opening
            // its windows: GOAWAY, close.
            let kind = match self.reading {
                Reading::Head { .. } => TimeoutKind::Header,
                _ => TimeoutKind::Idle,
            };
            self.h2_goaway();
            self.last_activity = now;
            return Some(kind);
        }
        let kind = match (self.phase, self.reading) {
            (Phase::Lingering { .. }, _) => TimeoutKind::Linger,
            _ if self.draining && self.is_idle() => TimeoutKind::Idle,
            (_, Reading::Head { .. }) => TimeoutKind::Header,
            (_, Reading::Body { .. }) => TimeoutKind::Body,
            (_, Reading::Idle) => TimeoutKind::Idle,
        };
        let body_late = self.phase == Phase::Open
            && matches!(self.reading, Reading::Body { .. })
            // `out` must not move while a file read writes into it.
            && self.answer.file().is_none();
        if kind == TimeoutKind::Idle && self.close_idle_tls(now) {
            return Some(kind);
        }
        if !body_late {
            self.phase = Phase::Closed;
            return Some(kind);
        }
        // No ctx on this path: the one clock read in this file, for the Date header.
        let mut date = [0u8; 29];
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format_imf_fixdate(secs, &mut date);
        self.refuse(Refusal::BodyTimeout, &date);
        // The answer gets the idle timeout to leave (a stalled reader is closed then).
        self.last_activity = now;
        Some(kind)
    }

    /// The handler woke up: hand it the request it deferred, if this connection has one.
    pub fn resume<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        let deferred = match &mut self.proto {
            Proto::Http2(h2) => std::mem::take(&mut h2.deferred),
            _ => matches!(self.answer, Answer::Deferred),
        };
        if deferred {
            if matches!(self.answer, Answer::Deferred) {
                self.answer = Answer::None;
            }
            self.pump(ctx);
        }
    }

    /// Whether the handler deferred this connection's request.
    pub fn is_deferred(&self) -> bool {
        match &self.proto {
            Proto::Http2(h2) => h2.deferred,
            _ => matches!(self.answer, Answer::Deferred),
        }
    }

    /// The socket failed (reset, broken pipe): nothing more can be sent.
    pub fn on_error(&mut self) {
        self.phase = Phase::Closed;
    }

    /// Shutdown began: close after the response in progress; with nothing pending, once
    /// [`DRAIN_GRACE`] has passed since the last activity (at once if it already has).
    pub fn start_drain(&mut self) {
        self.draining = true;
        self.h2_drain();
    }

    // ---- outputs ----

    /// Hand the output to send now, if no send is in flight, by swapping it with `into`
    /// (the driver's empty send buffer of the slot). True when there is something to send;
    /// false with bytes in `into` when they are the head of a body to splice, which
    /// [`Conn::poll_file_op`] asks for next (the driver sends them with it).
    pub fn poll_send(&mut self, into: &mut Vec<u8>) -> bool {
        if self.writing != Writing::Idle || self.phase == Phase::Closed {
            return false;
        }
        if self.tls.in_rustls() {
            return self.poll_send_tls(into);
        }
        if self.out.is_empty() {
            return false;
        }
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.out, into);
        if self.out.capacity() > OUT_HIGH_WATER * 2 {
            self.out = Vec::with_capacity(4096);
        }
        if self.head_rides_the_splice(into.len()) {
            // Left unsent in the driver's send buffer: `Core::splice_file` puts it in
            // the pipe ahead of the file, one segment, no SEND of its own.
            return false;
        }
        self.writing = Writing::Sending;
        true
    }

    /// Whether a receive should be outstanding. While a file body streams, a little input
    /// is still taken (the next request, kept for later): stopping the receive and
    /// starting it again cost a cancel and a new receive per response.
    pub fn wants_read(&self) -> bool {
        if let Some(t) = self.tunnel.as_deref() {
            return self.tunnel_wants_read(t);
        }
        if self.is_http2() {
            // The peer's WINDOW_UPDATEs arrive on the same stream of bytes: keep reading
            // while a body waits for them, unless our output piles up.
            return self.phase == Phase::Open
                && !self.peer_eof
                && self.out.len() < OUT_HIGH_WATER
                && !self.kernel_tls_holds_reading();
        }
        let streaming = self.answer.file().is_some()
            && !self.tls.in_rustls()
            && self.rbuf.len() < READ_WHILE_STREAMING
            && self.out.len() < OUT_HIGH_WATER;
        match self.phase {
            Phase::Open => {
                !self.peer_eof && (!self.blocked() || streaming) && !self.kernel_tls_holds_reading()
            }
            Phase::Lingering { .. } => !self.peer_eof,
            Phase::CloseAfterFlush | Phase::ResetAfterFlush | Phase::Closed => false,
        }
    }

    /// How the connection should end, once. `Linger` moves to the lingering phase.
    pub fn poll_close(&mut self, now: Instant) -> Option<Close> {
        if self.writing == Writing::Closed {
            return None;
        }
        if self.tunnel.is_some() && self.phase == Phase::Open && self.tunnel_half_close() {
            return Some(Close::HalfClose);
        }
        match self.phase {
            Phase::Closed => {
                self.writing = Writing::Closed;
                Some(Close::Now)
            }
            Phase::Open
                if self.draining && self.is_idle() && now >= self.last_activity + DRAIN_GRACE =>
            {
                if self.queue_close_notify() {
                    // TLS: the session ends cleanly first, then the close.
                    self.phase = Phase::CloseAfterFlush;
                    return None;
                }
                self.phase = Phase::Closed;
                self.writing = Writing::Closed;
                Some(Close::Now)
            }
            Phase::ResetAfterFlush if self.flushed() => {
                self.phase = Phase::Closed;
                self.writing = Writing::Closed;
                Some(Close::Reset)
            }
            Phase::CloseAfterFlush if self.flushed() => {
                if self.queue_close_notify() {
                    return None;
                }
                // Like nginx's `lingering_close on`: no linger when the client asked for
                // the close and sent nothing we did not read (close(2) then sends no RST).
                if self.peer_eof || self.quiet_close {
                    self.phase = Phase::Closed;
                    self.writing = Writing::Closed;
                    Some(Close::Now)
                } else {
                    self.phase = Phase::Lingering {
                        until: now + LINGER,
                    };
                    Some(Close::Linger)
                }
            }
            _ => None,
        }
    }

    /// When `on_timeout` should be called.
    pub fn deadline(&self) -> Option<Instant> {
        let forwarding = matches!(self.answer, Answer::Upstream { .. });
        if forwarding
            && (self.tunnel.is_some() || self.out.is_empty() && self.writing != Writing::Sending)
        {
            // The upstream's timeouts run (the proxy's tick); the client waits for them. A
            // tunnel's idle timeout is the proxy's too, counted from a byte either way.
            return None;
        }
        match self.phase {
            Phase::Closed => None,
            Phase::Lingering { until } => Some(until),
            _ => Some(match self.reading {
                Reading::Head { since } => since + self.timeouts.header_read,
                Reading::Body { since, .. } => since + self.timeouts.body_read,
                Reading::Idle => self.last_activity + self.timeouts.keep_alive,
            })
            .map(|d| match self.draining && self.is_idle() {
                true => d.min(self.last_activity + DRAIN_GRACE),
                false => d,
            }),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    // ---- internals ----

    /// No partial request, nothing to send, no file: safe to close when draining.
    fn is_idle(&self) -> bool {
        self.rbuf.is_empty() && self.flushed()
    }

    fn flushed(&self) -> bool {
        self.out.is_empty()
            && self.writing != Writing::Sending
            && !self.answer.sending()
            && !self.tls.wants_write()
            && !self.h2_busy()
    }

    /// Output back-pressure, a file in progress or a deferred answer: do not answer more
    /// requests yet.
    fn blocked(&self) -> bool {
        !matches!(self.answer, Answer::None) || self.out.len() >= OUT_HIGH_WATER
    }
}
