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

mod tls;

use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uring_common::http::{
    date::format_imf_fixdate, parse_request, BodyFraming, ChunkEvent, ChunkedDecoder, ChunkedError,
    HeaderStorage, Limits, Parsed, RequestError, RequestHead, Version,
};
use uring_common::ring::{Event, SPLICE_HEAD_MAX};

use crate::config::Timeouts;
use crate::handler::Handler;
use crate::metrics::{Route, TimeoutKind};
use crate::observe::{Answered, RequestLog};
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
}

/// A file operation to start for the body being sent (see [`Conn::poll_file_op`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// Read (fd, offset, length) into memory, then send.
    Read(RawFd, u64, u32),
    /// Splice (fd, offset, length, more bytes follow) to the socket.
    Splice(RawFd, u64, u32, bool),
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
}

impl Refusal {
    fn status(self) -> u16 {
        match self {
            Refusal::Request(e) => e.status(),
            Refusal::Body(e) => e.status(),
            Refusal::Connect => 501,
            Refusal::BodyTimeout => 408,
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

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and answering requests.
    Open,
    /// Answer everything pending, then close (an error, `Connection: close`, draining).
    CloseAfterFlush,
    /// Half-closed after our last response; discarding input until EOF or deadline.
    Lingering { until: Instant },
    /// Done; the worker closes the socket.
    Closed,
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
        }
    }
}

/// A complete request (head and whole body, de-chunked) for an upstream, already in the
/// form the upstream gets it (`proxy/headers.rs`).
#[derive(Debug)]
pub struct Forward {
    pub upstream: usize,
    pub request: Vec<u8>,
    pub idempotent: bool,
    pub head_only: bool,
    pub http10: bool,
    pub keep_alive: bool,
}

/// What the proxy reports about the request a connection forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// Response bytes were added to the output.
    Progress,
    /// The response is complete in the output.
    Done { keep_alive: bool },
    /// No response: answer `status` ourselves.
    Failed {
        status: u16,
        keep_alive: bool,
        head_only: bool,
        http10: bool,
    },
    /// The response broke off after its head went out: close without completing it.
    Abort,
}

struct FileStream {
    body: FileBody,
    /// A read (or, for a zero-copy body, a splice) of the next chunk is in flight.
    read_in_flight: bool,
}

pub struct Conn {
    /// Unconsumed input: an incomplete request (head, or head plus partial body).
    rbuf: Vec<u8>,
    /// Responses not yet handed to the kernel.
    out: Vec<u8>,
    /// The driver is sending what `poll_send` handed over.
    send_in_flight: bool,
    file: Option<FileStream>,
    phase: Phase,
    close_reported: bool,
    peer_eof: bool,
    draining: bool,
    /// When the wait for the current head began: accept for the first request, the
    /// first byte for later ones (slowloris guard).
    head_started: Option<Instant>,
    /// When the head of a request whose body is still arriving was complete.
    body_started: Option<Instant>,
    last_activity: Instant,
    /// `100 Continue` was sent for the request at the front of `rbuf`.
    continue_sent: bool,
    /// Chunked body of the request at the front of `rbuf`: decoder, raw bytes decoded so
    /// far (after the head), and the decoded body.
    chunked: ChunkedDecoder,
    chunk_raw: usize,
    chunk_body: Vec<u8>,
    header_timeout: Duration,
    body_timeout: Duration,
    idle_timeout: Duration,
    /// A request handed to the proxy and not yet taken ([`Conn::take_forward`]).
    forward: Option<Forward>,
    /// A forwarded request is unanswered: later requests wait (responses stay in order).
    forwarding: bool,
    /// Where the forwarded request's response starts in `out`, and when it was
    /// forwarded, until its status is counted in the metrics.
    forward_from: Option<(usize, Instant)>,
    /// The client's address (for `X-Forwarded-For`), set by the worker when proxying.
    pub peer: Option<IpAddr>,
    /// The TLS layer of an HTTPS connection (`conn/tls.rs`), while rustls keeps it.
    tls: Option<Box<tls::TlsLayer>>,
    /// The session moved into the kernel (`--ktls`): the socket is plain to us.
    kernel_tls: bool,
    /// The client asked for the close (`Connection: close`, HTTP/1.0) and no input was
    /// left unread: close without lingering.
    quiet_close: bool,
    /// The handler deferred the request at the front of the input ([`Conn::resume`]).
    deferred: bool,
}

impl Conn {
    pub fn new(now: Instant, timeouts: &Timeouts) -> Conn {
        Conn {
            rbuf: Vec::new(),
            out: Vec::with_capacity(4096),
            send_in_flight: false,
            file: None,
            phase: Phase::Open,
            close_reported: false,
            peer_eof: false,
            draining: false,
            // The head timeout runs from accept, like nginx's client_header_timeout: a
            // connection that sends nothing must not hold a slot for the idle timeout.
            head_started: Some(now),
            body_started: None,
            last_activity: now,
            continue_sent: false,
            chunked: ChunkedDecoder::new(),
            chunk_raw: 0,
            chunk_body: Vec::new(),
            header_timeout: timeouts.header_read,
            body_timeout: timeouts.body_read,
            idle_timeout: timeouts.keep_alive,
            forward: None,
            forwarding: false,
            forward_from: None,
            peer: None,
            tls: None,
            kernel_tls: false,
            deferred: false,
            quiet_close: false,
        }
    }

    /// Reuse this slot for a new connection, keeping modest buffers to avoid allocating.
    pub fn reset(&mut self, now: Instant) {
        fn trim(v: &mut Vec<u8>, keep: usize) {
            v.clear();
            if v.capacity() > keep {
                *v = Vec::with_capacity(keep.min(4096));
            }
        }
        trim(&mut self.rbuf, 64 * 1024);
        trim(&mut self.out, 128 * 1024);
        trim(&mut self.chunk_body, 0);
        self.send_in_flight = false;
        self.file = None;
        self.phase = Phase::Open;
        self.close_reported = false;
        self.peer_eof = false;
        self.draining = false;
        self.head_started = Some(now);
        self.body_started = None;
        self.last_activity = now;
        self.continue_sent = false;
        self.chunk_raw = 0;
        self.chunked.reset();
        self.forward = None;
        self.forwarding = false;
        self.forward_from = None;
        self.peer = None;
        self.tls = None;
        self.kernel_tls = false;
        self.deferred = false;
        self.quiet_close = false;
    }

    /// The socket is closed: let go of what holds kernel resources (an open file) now
    /// rather than when the slot is next used.
    pub fn release(&mut self) {
        self.file = None;
        self.forward = None;
        self.forwarding = false;
        self.tls = None;
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
            Phase::CloseAfterFlush | Phase::Lingering { .. } | Phase::Closed => {
                self.quiet_close = false;
                return;
            }
        }
        if self.tls.is_some() {
            return self.on_tls_records(data, ctx);
        }
        self.on_plain(data, ctx);
    }

    /// Plaintext bytes: parse and answer what is complete, keep the rest.
    fn on_plain<H: Handler>(&mut self, data: &[u8], ctx: &mut Ctx<'_, H>) {
        if self.rbuf.is_empty() && !self.blocked() {
            let used = self.process(data, ctx);
            if used < data.len() && self.phase == Phase::Open {
                self.rbuf.extend_from_slice(&data[used..]);
            } else if used < data.len() {
                self.quiet_close = false;
            }
        } else {
            self.rbuf.extend_from_slice(data);
            self.pump(ctx);
        }
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
        self.send_in_flight = false;
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

    /// A file read completed: its bytes (copied into the output), or `Err(res)` with the
    /// read's result (0 at an unexpected end of file, or -errno).
    pub fn on_file_read<H: Handler>(&mut self, read: Result<&[u8], i32>, ctx: &mut Ctx<'_, H>) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        if !f.read_in_flight {
            return;
        }
        f.read_in_flight = false;
        let data = match read {
            Ok(data) if !data.is_empty() => data,
            // The file shrank or failed: the promised length can no longer be kept.
            _ => {
                self.file = None;
                self.phase = Phase::Closed;
                return;
            }
        };
        let n = data.len().min(f.body.len as usize);
        self.out.extend_from_slice(&data[..n]);
        f.body.offset += n as u64;
        f.body.len -= n as u64;
        if f.body.len == 0 {
            self.file = None;
            self.pump(ctx);
        }
    }

    /// The end of a file operation: a read's bytes or failure, a splice's end.
    pub fn on_file_event<H: Handler>(&mut self, ev: Event<&[u8]>, ctx: &mut Ctx<'_, H>) {
        match ev {
            Event::FileRead { data, .. } => self.on_file_read(Ok(data), ctx),
            Event::FileReadFailed { res, .. } => self.on_file_read(Err(res), ctx),
            Event::Spliced { len, .. } => self.on_spliced(Ok(len), ctx),
            Event::SpliceFailed { res, .. } => self.on_spliced(Err(res), ctx),
            _ => {}
        }
    }

    /// A splice of the file body ended: `Ok(n)`, its bytes went to the socket, or
    /// `Err(res)` (0: the file ended early; -errno): the promised length cannot be kept
    /// and the connection closes, so the client never takes a short body for whole.
    pub fn on_spliced<H: Handler>(&mut self, res: Result<usize, i32>, ctx: &mut Ctx<'_, H>) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        if !f.read_in_flight {
            return;
        }
        f.read_in_flight = false;
        match res {
            Ok(n) if n > 0 => {
                self.last_activity = ctx.now;
                let n = (n as u64).min(f.body.len);
                f.body.offset += n;
                f.body.len -= n;
                if f.body.len == 0 {
                    self.file = None;
                    self.pump(ctx);
                }
            }
            _ => {
                self.file = None;
                self.phase = Phase::Closed;
            }
        }
    }

    /// The deadline passed (the worker checks `deadline()` against its clock). A body
    /// that did not arrive in time is answered 408 before the close; a head that did not,
    /// or an idle or stalled connection, is closed at once.
    /// Returns which deadline fired, if one did.
    pub fn on_timeout(&mut self, now: Instant) -> Option<TimeoutKind> {
        if !self.deadline().is_some_and(|d| now >= d) {
            return None;
        }
        let kind = match (self.phase, self.head_started, self.body_started) {
            (Phase::Lingering { .. }, _, _) => TimeoutKind::Linger,
            _ if self.draining && self.is_idle() => TimeoutKind::Idle,
            (_, Some(_), _) => TimeoutKind::Header,
            (_, None, Some(_)) => TimeoutKind::Body,
            _ => TimeoutKind::Idle,
        };
        let body_late = self.phase == Phase::Open
            && self.head_started.is_none()
            && self.body_started.is_some()
            // `out` must not move while a file read writes into it.
            && self.file.is_none();
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

    /// The proxy's word on the forwarded request (its response bytes, if any, are already
    /// in the output through [`Conn::forward_out`]).
    pub fn on_forward<H: Handler>(&mut self, outcome: ForwardOutcome, ctx: &mut Ctx<'_, H>) {
        if !self.forwarding {
            return;
        }
        self.last_activity = ctx.now;
        self.count_proxied(outcome, ctx);
        match outcome {
            ForwardOutcome::Progress => return,
            ForwardOutcome::Done { keep_alive } => {
                if !keep_alive {
                    self.phase = Phase::CloseAfterFlush;
                }
            }
            ForwardOutcome::Failed {
                status,
                keep_alive,
                head_only,
                http10,
            } => {
                let mut w = ResponseWriter::new(
                    &mut self.out,
                    ctx.date,
                    head_only,
                    keep_alive && !self.draining,
                    http10,
                );
                let body: &[u8] = match status {
                    502 => b"Bad Gateway\n",
                    503 => b"Service Unavailable\n",
                    _ => b"Gateway Timeout\n",
                };
                w.respond(status, &[("Content-Type", b"text/plain")], body);
                if !w.keep_alive {
                    self.phase = Phase::CloseAfterFlush;
                }
            }
            ForwardOutcome::Abort => {
                // Never let a truncated body look complete: no more bytes, close now.
                self.forwarding = false;
                self.phase = Phase::Closed;
                return;
            }
        }
        self.forwarding = false;
        if self.phase == Phase::Open {
            self.pump(ctx);
        }
    }

    /// The handler woke up: hand it the request it deferred, if this connection has one.
    pub fn resume<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        if std::mem::take(&mut self.deferred) {
            self.pump(ctx);
        }
    }

    /// Whether the handler deferred this connection's request.
    pub fn is_deferred(&self) -> bool {
        self.deferred
    }

    /// The socket failed (reset, broken pipe): nothing more can be sent.
    pub fn on_error(&mut self) {
        self.phase = Phase::Closed;
    }

    /// Shutdown began: close after the response in progress; with nothing pending, once
    /// [`DRAIN_GRACE`] has passed since the last activity (at once if it already has).
    pub fn start_drain(&mut self) {
        self.draining = true;
    }

    // ---- outputs ----

    /// Hand the output to send now, if no send is in flight, by swapping it with `into`
    /// (the driver's empty send buffer of the slot). True when there is something to send;
    /// false with bytes in `into` when they are the head of a body to splice, which
    /// [`Conn::poll_file_op`] asks for next (the driver sends them with it).
    pub fn poll_send(&mut self, into: &mut Vec<u8>) -> bool {
        if self.send_in_flight || self.phase == Phase::Closed {
            return false;
        }
        if self.tls.is_some() {
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
        self.send_in_flight = true;
        true
    }

    /// The next file operation for the body being sent, if one should start now.
    pub fn poll_file_op(&mut self) -> Option<FileOp> {
        if let Some((fd, off, len)) = self.poll_file_read() {
            return Some(FileOp::Read(fd, off, len));
        }
        let (fd, off, len, more) = self.poll_splice()?;
        Some(FileOp::Splice(fd, off, len, more))
    }

    /// A file read to start: (fd, offset, length). The fd stays open until the read's
    /// completion is handed to `on_file_read` or the connection is released.
    pub fn poll_file_read(&mut self) -> Option<(RawFd, u64, u32)> {
        if self.phase == Phase::Closed {
            return None;
        }
        let splice = self.splices();
        let f = self.file.as_mut()?;
        if splice || f.read_in_flight || self.out.len() >= FILE_CHUNK || f.body.len == 0 {
            return None;
        }
        let len = f.body.len.min(FILE_CHUNK as u64) as u32;
        f.read_in_flight = true;
        Some((f.body.file.as_raw_fd(), f.body.offset, len))
    }

    /// A splice of the file body to start: (fd, offset, length, more bytes follow). Only
    /// once everything before it (the head) has gone out; the fd stays open until
    /// `on_spliced` or release.
    pub fn poll_splice(&mut self) -> Option<(RawFd, u64, u32, bool)> {
        if self.phase == Phase::Closed || self.send_in_flight || !self.out.is_empty() {
            return None;
        }
        if !self.splices() {
            return None;
        }
        let f = self.file.as_mut()?;
        if f.read_in_flight || f.body.len == 0 {
            return None;
        }
        let len = f.body.len.min(SPLICE_CHUNK as u64) as u32;
        f.read_in_flight = true;
        Some((
            f.body.file.as_raw_fd(),
            f.body.offset,
            len,
            f.body.len > len as u64,
        ))
    }

    /// Whether `len` bytes about to be sent (the head of a file body) should instead go
    /// out with the body's first splice.
    fn head_rides_the_splice(&self, len: usize) -> bool {
        len <= SPLICE_HEAD_MAX
            && self.splices()
            && self
                .file
                .as_ref()
                .is_some_and(|f| !f.read_in_flight && f.body.len > 0)
    }

    /// Whether the file body goes out by splice: asked for, and no TLS in user space
    /// (rustls encrypts in memory, so its bodies are read; kTLS seals what is spliced).
    fn splices(&self) -> bool {
        self.tls.is_none() && self.file.as_ref().is_some_and(|f| f.body.zero_copy)
    }

    /// Count a proxied request in the metrics once its status is known: from the head the
    /// proxy wrote into `out` (it is there at the first outcome that follows it), or the
    /// status we answer ourselves. (Proxied requests are not in the access log.)
    fn count_proxied<H: Handler>(&mut self, outcome: ForwardOutcome, ctx: &mut Ctx<'_, H>) {
        let Some((at, since)) = self.forward_from else {
            return;
        };
        let head = self.out.get(at..).unwrap_or(&[]);
        let parsed = head
            .strip_prefix(b"HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u16>().ok());
        let status = match (parsed, outcome) {
            (Some(s), _) => s,
            (None, ForwardOutcome::Failed { status, .. }) => status,
            (None, ForwardOutcome::Progress) => return,
            // Completed or broken off without a head we saw: a gateway failure.
            (None, _) => 502,
        };
        self.forward_from = None;
        if let Some(log) = ctx.log.as_deref_mut() {
            log.proxied(status, ctx.now.saturating_duration_since(since));
        }
    }

    /// A complete request for the proxy, once.
    pub fn take_forward(&mut self) -> Option<Forward> {
        self.forward.take()
    }

    /// Waiting for (or receiving) a forwarded request's response.
    pub fn is_forwarding(&self) -> bool {
        self.forwarding
    }

    /// Where the proxy writes the client's response.
    pub fn forward_out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Output not yet handed to the kernel.
    pub fn pending_out(&self) -> usize {
        self.out.len()
    }

    /// Whether a receive should be outstanding. While a file body streams, a little input
    /// is still taken (the next request, kept for later): stopping the receive and
    /// starting it again cost a cancel and a new receive per response.
    pub fn wants_read(&self) -> bool {
        let streaming = self.file.is_some()
            && self.tls.is_none()
            && !self.forwarding
            && self.rbuf.len() < READ_WHILE_STREAMING
            && self.out.len() < OUT_HIGH_WATER;
        match self.phase {
            Phase::Open => {
                !self.peer_eof && (!self.blocked() || streaming) && !self.kernel_tls_holds_reading()
            }
            Phase::Lingering { .. } => !self.peer_eof,
            Phase::CloseAfterFlush | Phase::Closed => false,
        }
    }

    /// How the connection should end, once. `Linger` moves to the lingering phase.
    pub fn poll_close(&mut self, now: Instant) -> Option<Close> {
        if self.close_reported {
            return None;
        }
        match self.phase {
            Phase::Closed => {
                self.close_reported = true;
                Some(Close::Now)
            }
            Phase::Open
                if self.draining && self.is_idle() && now >= self.last_activity + DRAIN_GRACE =>
            {
                self.phase = Phase::Closed;
                self.close_reported = true;
                Some(Close::Now)
            }
            Phase::CloseAfterFlush if self.flushed() => {
                // Like nginx's `lingering_close on`: no linger when the client asked for
                // the close and sent nothing we did not read (close(2) then sends no RST).
                if self.peer_eof || self.quiet_close {
                    self.phase = Phase::Closed;
                    self.close_reported = true;
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
        if self.forwarding && self.out.is_empty() && !self.send_in_flight {
            // The upstream's timeouts run (the proxy's tick); the client waits for them.
            return None;
        }
        match self.phase {
            Phase::Closed => None,
            Phase::Lingering { until } => Some(until),
            _ => Some(match (self.head_started, self.body_started) {
                (Some(t), _) => t + self.header_timeout,
                (None, Some(t)) => t + self.body_timeout,
                (None, None) => self.last_activity + self.idle_timeout,
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
            && !self.send_in_flight
            && self.file.is_none()
            && !self.forwarding
            && !self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Output back-pressure, a file in progress or a deferred answer: do not answer more
    /// requests yet.
    fn blocked(&self) -> bool {
        self.file.is_some() || self.forwarding || self.deferred || self.out.len() >= OUT_HIGH_WATER
    }

    /// Answer what is buffered in `rbuf`; after the peer's EOF, close once every complete
    /// request is answered (what is left then is an incomplete request, never answered).
    fn pump<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.answer_buffered(ctx);
        if self.peer_eof && self.phase == Phase::Open && !self.blocked() {
            self.phase = Phase::CloseAfterFlush;
        }
    }

    fn answer_buffered<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.rbuf.is_empty() || self.phase != Phase::Open || self.blocked() {
            return;
        }
        let buf = std::mem::take(&mut self.rbuf);
        let used = self.process(&buf, ctx);
        self.rbuf = buf;
        if self.phase == Phase::Open {
            self.rbuf.drain(..used);
        } else {
            self.quiet_close &= used >= self.rbuf.len();
            self.rbuf.clear();
        }
        if self.rbuf.is_empty() {
            self.head_started = None;
            // A large body grew the buffer; idle keep-alive connections should not keep it.
            if self.rbuf.capacity() > 64 * 1024 {
                self.rbuf = Vec::new();
            }
            if self.chunk_body.capacity() > 64 * 1024 {
                self.chunk_body = Vec::new();
            }
        }
    }

    /// Answer every complete request at the front of `buf`; returns the bytes consumed.
    fn process<H: Handler>(&mut self, buf: &[u8], ctx: &mut Ctx<'_, H>) -> usize {
        let mut pos = 0;
        while pos < buf.len() && self.phase == Phase::Open && !self.blocked() {
            let mut storage: HeaderStorage<'_> = [const { MaybeUninit::uninit() }; 256];
            let head = match parse_request(&buf[pos..], &mut storage, ctx.limits) {
                Err(e) => {
                    self.refuse_counted(Refusal::Request(e), ctx);
                    return buf.len();
                }
                Ok(Parsed::Partial) => {
                    self.head_started.get_or_insert(ctx.now);
                    break;
                }
                Ok(Parsed::Complete(head)) => head,
            };
            self.head_started = None;
            // RFC 9110 section 9.3.6: CONNECT asks for a tunnel. Unless the handler
            // tunnels, we are no proxy: 501, and close (the client may already be
            // sending the tunnelled bytes).
            if head.method == "CONNECT" && !ctx.handler.accepts_connect() {
                self.refuse_counted(Refusal::Connect, ctx);
                return buf.len();
            }
            let body_start = pos + head.head_len;
            match head.framing {
                BodyFraming::None => {
                    self.dispatch(&head, &[], ctx);
                    if self.deferred {
                        break;
                    }
                    pos = body_start;
                }
                BodyFraming::Length(n) => {
                    if n > ctx.limits.max_body_bytes {
                        self.refuse_counted(Refusal::Body(BodyError::TooLarge), ctx);
                        return buf.len();
                    }
                    let n = n as usize;
                    if buf.len() - body_start >= n {
                        self.dispatch(&head, &buf[body_start..body_start + n], ctx);
                        if self.deferred {
                            break;
                        }
                        pos = body_start + n;
                        self.continue_sent = false;
                    } else {
                        self.maybe_continue(&head);
                        self.body_started.get_or_insert(ctx.now);
                        // Keep the whole request; it is parsed again when the body is in.
                        let want = head.head_len + n;
                        if self.rbuf.capacity() < want {
                            self.rbuf.reserve(want - self.rbuf.len());
                        }
                        break;
                    }
                }
                BodyFraming::Chunked => {
                    let raw = &buf[body_start + self.chunk_raw..];
                    match self.decode_chunked(raw, ctx.limits) {
                        Err(e) => {
                            self.refuse_counted(Refusal::Body(e), ctx);
                            return buf.len();
                        }
                        Ok(None) => {
                            self.maybe_continue(&head);
                            self.body_started.get_or_insert(ctx.now);
                            break;
                        }
                        Ok(Some(raw_used)) => {
                            let body = std::mem::take(&mut self.chunk_body);
                            self.dispatch(&head, &body, ctx);
                            self.chunk_body = body;
                            self.chunk_body.clear();
                            let raw_end = body_start + self.chunk_raw + raw_used;
                            self.chunk_raw = 0;
                            self.chunked.reset();
                            if self.deferred {
                                // Decoded again when the request is handed over again.
                                break;
                            }
                            pos = raw_end;
                            self.continue_sent = false;
                        }
                    }
                }
            }
        }
        pos
    }

    /// Decode as much of a chunked body as `raw` holds. `Some(consumed)` when the body is
    /// complete; `None` when more bytes are needed (what was decoded is remembered).
    fn decode_chunked(&mut self, raw: &[u8], limits: &Limits) -> Result<Option<usize>, BodyError> {
        let mut at = 0;
        loop {
            let (used, ev) = self
                .chunked
                .decode(&raw[at..])
                .map_err(BodyError::Framing)?;
            at += used;
            let data_len = match ev {
                ChunkEvent::Data(d) => d.len(),
                _ => 0,
            };
            // Refuse as soon as a size line promises more than the limit, before the
            // data arrives (the decoder reports what the current chunk still owes).
            // Saturating: a chunk size near u64::MAX after some data must not wrap.
            let promised = ((self.chunk_body.len() + data_len) as u64)
                .saturating_add(self.chunked.chunk_remaining());
            if promised > limits.max_body_bytes {
                return Err(BodyError::TooLarge);
            }
            match ev {
                ChunkEvent::Data(d) => self.chunk_body.extend_from_slice(d),
                ChunkEvent::Done => return Ok(Some(at)),
                ChunkEvent::NeedMore => {
                    self.chunk_raw += at;
                    // Framing overhead is bounded too: tiny chunks must not grow rbuf forever.
                    let framing_cap = limits
                        .max_body_bytes
                        .saturating_mul(2)
                        .saturating_add(64 * 1024);
                    if self.chunk_raw as u64 > framing_cap {
                        return Err(BodyError::TooLarge);
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// RFC 9110 10.1.1: a server that will read the body should send 100 (Continue).
    fn maybe_continue(&mut self, head: &RequestHead<'_, '_>) {
        if head.expect_continue && !self.continue_sent && head.version == Version::Http11 {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.continue_sent = true;
        }
    }

    fn dispatch<H: Handler>(
        &mut self,
        head: &RequestHead<'_, '_>,
        body: &[u8],
        ctx: &mut Ctx<'_, H>,
    ) {
        self.body_started = None;
        let keep_alive = head.keep_alive && !ctx.draining && !self.draining;
        self.quiet_close = !head.keep_alive && self.tls.is_none();
        let route = ctx.handler.upstream_for(&Request {
            head: shorten(head),
            body,
        });
        if let Some(route) = route {
            let mut request = Vec::new();
            crate::proxy::headers::write_upstream_request(
                head,
                body,
                self.peer,
                route.trust_forwarded,
                &mut request,
            );
            self.forward = Some(Forward {
                upstream: route.upstream,
                request,
                idempotent: crate::proxy::headers::is_idempotent(head.method),
                head_only: head.method == "HEAD",
                http10: head.version == Version::Http10,
                keep_alive,
            });
            self.forwarding = true;
            self.forward_from = Some((self.out.len(), ctx.now));
            return;
        }
        let mut w = ResponseWriter::new(
            &mut self.out,
            ctx.date,
            head.method == "HEAD",
            keep_alive,
            head.version == Version::Http10,
        );
        // SAFETY of the lifetime juggling: Request borrows head for the call only.
        let req = Request {
            head: shorten(head),
            body,
        };
        let file_route = ctx.log.is_some() && ctx.handler.is_file_route(&req);
        ctx.handler.handle(&req, &mut w);
        if w.deferred {
            // The request stays unconsumed; `resume` hands it over again.
            self.deferred = true;
            return;
        }
        if w.status.is_none() {
            w.respond(
                500,
                &[("Content-Type", b"text/plain")],
                b"Internal Server Error\n",
            );
        }
        let status = w.status.unwrap_or(500);
        let keep = w.keep_alive;
        let file = w.file.take();
        if let Some(log) = ctx.log.as_deref_mut() {
            log.answered(&Answered {
                head,
                status,
                route: if file.is_some() || file_route {
                    Route::File
                } else {
                    Route::Builtin
                },
                body_bytes: w.body_len,
                arrived: ctx.now,
                date: ctx.date,
            });
        }
        if let Some(body) = file {
            self.file = Some(FileStream {
                body,
                read_in_flight: false,
            });
        }
        if !keep {
            self.phase = Phase::CloseAfterFlush;
        }
    }

    /// [`refuse`](Self::refuse), counted in the metrics.
    fn refuse_counted<H: Handler>(&mut self, why: Refusal, ctx: &mut Ctx<'_, H>) {
        if let Some(log) = ctx.log.as_deref_mut() {
            log.refused(why.status());
        }
        self.refuse(why, ctx.date);
    }

    /// Answer a request we refuse, then close (RFC 9112 leaves no way to resynchronise).
    fn refuse(&mut self, why: Refusal, date: &[u8; 29]) {
        let mut w = ResponseWriter::new(&mut self.out, date, false, false, false);
        let status = why.status();
        let body: &[u8] = match status {
            400 => b"Bad Request\n",
            408 => b"Request Timeout\n",
            413 => b"Content Too Large\n",
            414 => b"URI Too Long\n",
            431 => b"Request Header Fields Too Large\n",
            501 => b"Not Implemented\n",
            505 => b"HTTP Version Not Supported\n",
            _ => b"Error\n",
        };
        w.respond(status, &[("Content-Type", b"text/plain")], body);
        self.phase = Phase::CloseAfterFlush;
        self.head_started = None;
        self.body_started = None;
        self.rbuf.clear();
    }
}

/// Narrow `RequestHead<'b, 'h>` to a single lifetime for the handler's view.
fn shorten<'a>(head: &'a RequestHead<'_, '_>) -> &'a RequestHead<'a, 'a> {
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes method, path and body, so tests can see what the handler got.
    #[derive(Clone)]
    struct Echo;
    impl Handler for Echo {
        fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            let mut body = Vec::new();
            body.extend_from_slice(req.method().as_bytes());
            body.push(b' ');
            body.extend_from_slice(req.path().as_bytes());
            body.push(b' ');
            body.extend_from_slice(req.body());
            resp.respond(200, &[("Content-Type", b"text/plain")], &body);
        }
    }

    const DATE: &[u8; 29] = super::TEST_DATE;

    struct Harness {
        conn: Conn,
        handler: Echo,
        limits: Limits,
        timeouts: Timeouts,
        now: Instant,
        wire: Vec<u8>,
        closed: Option<Close>,
    }

    impl Harness {
        fn new() -> Harness {
            let now = Instant::now();
            Harness {
                conn: Conn::new(now, &Timeouts::default()),
                handler: Echo,
                limits: Limits::default(),
                timeouts: Timeouts::default(),
                now,
                wire: Vec::new(),
                closed: None,
            }
        }

        fn with<R>(&mut self, f: impl FnOnce(&mut Conn, &mut Ctx<'_, Echo>) -> R) -> R {
            let mut ctx = Ctx::for_test(&mut self.handler, &self.limits, &self.timeouts, self.now);
            f(&mut self.conn, &mut ctx)
        }

        /// Play the worker: complete every send in full until nothing is left.
        fn settle(&mut self) {
            loop {
                if self.closed.is_none() {
                    self.closed = self.conn.poll_close(self.now);
                }
                let Some(bytes) = take_send(&mut self.conn) else {
                    break;
                };
                let n = bytes.len();
                self.wire.extend_from_slice(&bytes);
                self.with(|c, ctx| c.on_sent(n, ctx));
            }
            if self.closed.is_none() {
                self.closed = self.conn.poll_close(self.now);
            }
        }

        fn feed(&mut self, data: &[u8]) {
            self.with(|c, ctx| c.on_data(data, ctx));
            self.settle();
        }
    }

    fn response(body: &str, close: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nDate: {}\r\nServer: uring-server\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
            std::str::from_utf8(DATE).unwrap(),
            body.len()
        );
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(body);
        out.into_bytes()
    }

    /// Feed `input` split at every position (two pieces) and in one piece; every split
    /// must give the same wire output.
    fn at_every_split(input: &[u8]) -> Vec<u8> {
        let mut whole = Harness::new();
        whole.feed(input);
        for cut in 1..input.len() {
            let mut h = Harness::new();
            h.feed(&input[..cut]);
            h.feed(&input[cut..]);
            assert_eq!(
                String::from_utf8_lossy(&h.wire),
                String::from_utf8_lossy(&whole.wire),
                "split at {cut}"
            );
            assert_eq!(h.closed, whole.closed, "split at {cut}");
        }
        // And one byte at a time.
        let mut h = Harness::new();
        for b in input {
            h.feed(std::slice::from_ref(b));
        }
        assert_eq!(h.wire, whole.wire, "byte by byte");
        whole.wire
    }

    #[test]
    fn pipelined_requests_answered_in_order_in_one_send() {
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut h = Harness::new();
        h.with(|c, ctx| c.on_data(req, ctx));
        // One send carries all three responses.
        let first = take_send(&mut h.conn).unwrap();
        let mut want = response("GET /a ", false);
        want.extend(response("GET /b ", false));
        want.extend(response("GET /c ", false));
        assert_eq!(
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&want)
        );
        assert_eq!(at_every_split(req), want);
    }

    #[test]
    fn content_length_body_split_everywhere() {
        let req = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /n HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut want = response("POST /up hello world", false);
        want.extend(response("GET /n ", false));
        assert_eq!(at_every_split(req), want);
    }

    #[test]
    fn chunked_body_split_everywhere() {
        let req = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut want = response("POST /c hello world", false);
        want.extend(response("GET /n ", false));
        assert_eq!(at_every_split(req), want);
    }

    #[test]
    fn expect_continue_gets_100_before_the_body() {
        let mut h = Harness::new();
        h.feed(b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(h.wire, b"HTTP/1.1 100 Continue\r\n\r\n");
        h.feed(b"abc");
        let mut want = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        want.extend(response("PUT /e abc", false));
        assert_eq!(h.wire, want);
    }

    #[test]
    fn errors_answer_then_close() {
        for (req, status) in [
            (&b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..], "400"),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", "413"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", "413"),
            (b"GET / HTTP/1.1\r\n\r\n", "400"),
        ] {
            let mut h = Harness::new();
            h.feed(req);
            let text = String::from_utf8_lossy(&h.wire).to_string();
            assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
            assert!(text.contains("Connection: close\r\n"), "{text}");
            assert_eq!(h.closed, Some(Close::Linger));
            assert!(h.conn.wants_read(), "lingering reads until EOF");
            // Later bytes are ignored.
            let before = h.wire.len();
            h.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(h.wire.len(), before);
        }
    }

    #[test]
    fn oversized_head_is_431() {
        let mut h = Harness::new();
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        while req.len() < 20_000 {
            req.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        h.feed(&req);
        assert!(
            h.wire.starts_with(b"HTTP/1.1 431 "),
            "{}",
            String::from_utf8_lossy(&h.wire)
        );
    }

    #[test]
    fn connection_close_request_closes_after_response() {
        let mut h = Harness::new();
        h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.wire, response("GET /a ", true));
        assert_eq!(h.closed, Some(Close::Linger));
    }

    /// Issue 12 (a connection per request): a client that asked for the close and sent
    /// nothing more is closed at once, as nginx does, without a half-close and a wait
    /// for its EOF; bytes after its request (above) or after the close was decided
    /// keep the lingering close, so our response is not lost to a reset.
    #[test]
    fn a_close_asked_for_with_nothing_unread_does_not_linger() {
        for req in [
            &b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
            b"GET /a HTTP/1.0\r\n\r\n",
        ] {
            let mut h = Harness::new();
            h.feed(req);
            assert_eq!(
                h.closed,
                Some(Close::Now),
                "{}",
                String::from_utf8_lossy(req)
            );
        }
        let mut h = Harness::new();
        h.with(|c, ctx| {
            c.on_data(
                b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                ctx,
            );
            c.on_data(b"late", ctx);
        });
        h.settle();
        assert_eq!(h.closed, Some(Close::Linger));
    }

    #[test]
    fn half_close_answers_complete_requests_then_closes() {
        let mut h = Harness::new();
        h.with(|c, ctx| {
            c.on_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HT", ctx);
            c.on_eof(ctx);
        });
        h.settle();
        assert_eq!(h.wire, response("GET /a ", false));
        assert_eq!(h.closed, Some(Close::Now));
    }

    #[test]
    fn head_has_no_body() {
        let mut h = Harness::new();
        h.feed(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
        let text = String::from_utf8_lossy(&h.wire).to_string();
        assert!(text.contains("Content-Length: 8\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn slowloris_head_times_out_from_its_first_byte() {
        let mut h = Harness::new();
        let start = h.now;
        h.feed(b"GET / HTTP/1.1\r\n");
        let deadline = h.conn.deadline().unwrap();
        assert_eq!(deadline, start + Duration::from_secs(10));
        // More bytes do not extend the head deadline.
        h.now += Duration::from_secs(5);
        h.feed(b"X-A: b\r\n");
        assert_eq!(h.conn.deadline().unwrap(), deadline);
        h.conn.on_timeout(deadline);
        assert_eq!(h.conn.poll_close(deadline), Some(Close::Now));
    }

    /// Issue 9 (4g): the head timeout runs from accept, so a connection that sends
    /// nothing is closed after it, not after the keep-alive timeout.
    #[test]
    fn silent_connection_times_out_after_the_head_timeout() {
        let mut h = Harness::new();
        let accepted = h.now;
        assert_eq!(h.conn.deadline(), Some(accepted + Duration::from_secs(10)));
        // Slot reuse starts the clock again.
        h.now += Duration::from_secs(100);
        h.conn.reset(h.now);
        assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(10)));
        let d = h.conn.deadline().unwrap();
        h.conn.on_timeout(d - Duration::from_millis(1));
        assert!(!h.conn.is_closed());
        h.conn.on_timeout(d);
        assert_eq!(h.conn.poll_close(d), Some(Close::Now));
        assert!(
            take_send(&mut h.conn).is_none(),
            "no answer to a silent connection"
        );
    }

    /// Issue 9 (4g): a body has `body_read` from the end of its head, however it
    /// trickles in (each byte used to push the idle deadline on); then 408 and close.
    #[test]
    fn trickling_body_gets_408_after_the_body_timeout() {
        for (head, piece) in [
            (
                &b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"[..],
                &b"a"[..],
            ),
            (
                b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"1\r\na\r\n",
            ),
        ] {
            let mut h = Harness::new();
            h.now += Duration::from_secs(3);
            let head_done = h.now;
            h.feed(head);
            assert_eq!(h.conn.deadline(), Some(head_done + Duration::from_secs(60)));
            for _ in 0..59 {
                h.now += Duration::from_secs(1);
                h.feed(piece);
                assert_eq!(h.conn.deadline(), Some(head_done + Duration::from_secs(60)));
            }
            assert!(h.wire.is_empty());
            h.now += Duration::from_secs(1);
            h.conn.on_timeout(h.now);
            h.settle();
            let text = String::from_utf8_lossy(&h.wire).to_string();
            assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
            assert!(text.contains("Connection: close\r\n"), "{text}");
            assert_eq!(h.closed, Some(Close::Linger));
        }
    }

    /// The body timer is per request: a later body gets a fresh one, and a complete
    /// request leaves the idle timeout in charge.
    #[test]
    fn body_timer_is_per_request() {
        let mut h = Harness::new();
        h.feed(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na");
        h.now += Duration::from_secs(50);
        h.feed(b"b");
        assert_eq!(h.wire, response("POST /a ab", false));
        assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(60)));
        h.now += Duration::from_secs(5);
        let second = h.now;
        h.feed(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nc");
        assert_eq!(h.conn.deadline(), Some(second + Duration::from_secs(60)));
    }

    #[test]
    fn idle_keep_alive_times_out() {
        let mut h = Harness::new();
        h.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let d = h.conn.deadline().unwrap();
        assert_eq!(d, h.now + Duration::from_secs(60));
        h.conn.on_timeout(d - Duration::from_secs(1));
        assert!(!h.conn.is_closed());
        h.conn.on_timeout(d);
        assert!(h.conn.is_closed());
    }

    #[test]
    fn drain_closes_idle_and_waits_for_partial_requests() {
        // Nothing pending: closed once the grace for a request already on its way ends.
        let mut h = Harness::new();
        h.conn.start_drain();
        assert_eq!(h.conn.poll_close(h.now), None);
        assert_eq!(h.conn.deadline(), Some(h.now + DRAIN_GRACE));
        assert_eq!(h.conn.poll_close(h.now + DRAIN_GRACE), Some(Close::Now));

        let mut h = Harness::new();
        h.feed(b"GET /a HTTP/1.1\r\nHo");
        h.conn.start_drain();
        assert_eq!(h.conn.poll_close(h.now), None);
        h.feed(b"st: x\r\n\r\n");
        assert_eq!(h.wire, response("GET /a ", true));
        assert_eq!(h.closed, Some(Close::Linger));
    }

    #[test]
    fn big_chunked_body_in_small_pieces() {
        for piece in [4096, 1000, 7] {
            let mut req =
                b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..3 {
                req.extend_from_slice(
                    format!("{:x}\r\n{}\r\n", 30000, "c".repeat(30000)).as_bytes(),
                );
            }
            req.extend_from_slice(b"0\r\n\r\n");
            let mut h = Harness::new();
            for p in req.chunks(piece) {
                h.feed(p);
            }
            let text = String::from_utf8_lossy(&h.wire).to_string();
            assert!(
                text.starts_with("HTTP/1.1 200 "),
                "piece {piece}: {}",
                &text[..text.len().min(200)]
            );
            assert!(text.contains("Content-Length: 90008\r\n"), "piece {piece}");
        }
    }

    #[test]
    fn reset_slot_forgets_the_previous_connection() {
        let mut h = Harness::new();
        h.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
        h.conn.on_error();
        h.conn.reset(h.now);
        h.wire.clear();
        h.closed = None;
        h.feed(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(h.wire, response("POST /c abc", false));
    }

    #[test]
    fn many_handler_headers_and_http10_keep_alive() {
        #[derive(Clone)]
        struct Many;
        impl Handler for Many {
            fn handle(&mut self, _req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
                let names = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"];
                let hs: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, &b"v"[..])).collect();
                resp.respond(200, &hs, b"x");
            }
        }
        let mut conn = Conn::new(Instant::now(), &Timeouts::default());
        let mut handler = Many;
        let limits = Limits::default();
        let timeouts = Timeouts::default();
        let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, Instant::now());
        conn.on_data(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            &mut ctx,
        );
        let text = String::from_utf8_lossy(&take_send(&mut conn).unwrap()).to_string();
        assert!(
            text.contains("Server: uring-server\r\nConnection: keep-alive\r\nA: v\r\n"),
            "{text}"
        );
        assert!(
            text.contains("J: v\r\nContent-Length: 1\r\n\r\nx"),
            "{text}"
        );
    }

    /// Random mixes of request kinds, pipelined and cut into random pieces, must give the
    /// same bytes as feeding each request alone.
    #[test]
    fn random_pipelines_in_random_pieces() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _round in 0..200 {
            let mut input = Vec::new();
            let mut want = Vec::new();
            for i in 0..1 + rnd(12) {
                let (req, body): (Vec<u8>, String) = match rnd(4) {
                    0 => (
                        format!("GET /g{i} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
                        format!("GET /g{i} "),
                    ),
                    1 => {
                        let b = "b".repeat(rnd(3000));
                        (
                            format!(
                                "POST /p{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{b}",
                                b.len()
                            )
                            .into_bytes(),
                            format!("POST /p{i} {b}"),
                        )
                    }
                    2 => {
                        let parts: Vec<String> =
                            (0..rnd(4)).map(|k| "c".repeat(1 + rnd(500) + k)).collect();
                        let mut r = format!(
                            "PUT /c{i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        );
                        for p in &parts {
                            r.push_str(&format!("{:x}\r\n{p}\r\n", p.len()));
                        }
                        r.push_str("0\r\n\r\n");
                        (r.into_bytes(), format!("PUT /c{i} {}", parts.concat()))
                    }
                    _ => (
                        format!(
                            "GET /h{i}?q=1 HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
                            "p".repeat(rnd(2000))
                        )
                        .into_bytes(),
                        format!("GET /h{i} "),
                    ),
                };
                input.extend_from_slice(&req);
                want.extend(response(&body, false));
            }
            let mut h = Harness::new();
            let mut at = 0;
            while at < input.len() {
                let n = (1 + rnd(4096)).min(input.len() - at);
                h.feed(&input[at..at + n]);
                at += n;
            }
            assert!(h.wire == want, "round {_round}");
            assert_eq!(h.closed, None);
        }
    }

    /// A file body streams in bounded chunks after its head (read and copied, or spliced
    /// once the head is out), and the pipelined request behind it is answered only after
    /// the file is done. With `truncate_after`, the file ends early at that chunk: the
    /// connection closes and nothing after the short body is sent.
    fn stream_a_file(zero_copy: bool, truncate_after: Option<usize>) -> (Vec<u8>, Conn) {
        #[derive(Clone)]
        struct Files(std::path::PathBuf, bool);
        impl Handler for Files {
            fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
                if req.path() == "/file" {
                    let file = std::fs::File::open(&self.0).unwrap();
                    let body = FileBody::new(file, 10, 300_000).zero_copy(self.1);
                    resp.respond_file(200, &[], body);
                } else {
                    resp.respond(200, &[], b"after");
                }
            }
        }
        let path = std::env::temp_dir().join(format!(
            "conn-file-test-{}-{zero_copy}-{truncate_after:?}",
            std::process::id()
        ));
        let content: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let mut handler = Files(path.clone(), zero_copy);
        let limits = Limits::default();
        let timeouts = Timeouts::default();
        let now = Instant::now();
        let mut conn = Conn::new(now, &timeouts);
        let mut wire = Vec::new();
        let mut largest_send = 0;
        let mut chunks = 0;
        let mut staged = Vec::new();
        let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
        conn.on_data(
            b"GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
            &mut ctx,
        );
        assert!(
            conn.wants_read(),
            "a little input is taken while a file streams"
        );
        let pread = |fd, off, len: u32| {
            let mut buf = vec![0u8; len as usize];
            // SAFETY: buf has room for len bytes.
            let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len as usize, off as i64) };
            buf.truncate(n.max(0) as usize);
            (buf, n as i32)
        };
        for _ in 0..100 {
            if Some(chunks) == truncate_after {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(20_000)
                    .unwrap();
            }
            if let Some((fd, off, len)) = conn.poll_file_read() {
                assert!(!zero_copy);
                assert!(len as usize <= FILE_CHUNK);
                let (buf, n) = pread(fd, off, len);
                chunks += 1;
                conn.on_file_read(if n > 0 { Ok(&buf) } else { Err(n) }, &mut ctx);
                continue;
            }
            if let Some((fd, off, len, more)) = conn.poll_splice() {
                assert!(zero_copy);
                if chunks == 0 {
                    assert!(staged.ends_with(b"\r\n\r\n"), "the head rides the splice");
                }
                // As the driver would: bytes left in the send buffer go first.
                wire.append(&mut staged);
                assert_eq!(more, off + (len as u64) < 300_010);
                // As the driver would: a pipe of 128 KiB takes part of what was asked.
                let (buf, n) = pread(fd, off, len.min(128 * 1024));
                chunks += 1;
                let whole = n == len.min(128 * 1024) as i32;
                wire.extend_from_slice(&buf);
                conn.on_spliced(if whole { Ok(n as usize) } else { Err(0) }, &mut ctx);
                continue;
            }
            assert!(staged.is_empty(), "a staged head is spliced at once");
            let mut bytes = Vec::new();
            if !conn.poll_send(&mut bytes) {
                if bytes.is_empty() {
                    break;
                }
                staged = bytes;
                continue;
            }
            largest_send = largest_send.max(bytes.len());
            let n = bytes.len();
            wire.extend_from_slice(&bytes);
            conn.on_sent(n, &mut ctx);
        }
        std::fs::remove_file(&path).unwrap();
        let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let text = String::from_utf8_lossy(&wire[..head_end]).to_string();
        assert!(text.contains("Content-Length: 300000\r\n"), "{text}");
        let body = &wire[head_end..];
        let sent = body.len().min(300_000);
        assert!(body[..sent] == content[10..10 + sent], "never wrong bytes");
        assert!(largest_send <= FILE_CHUNK + 4096, "{largest_send}");
        (body.to_vec(), conn)
    }

    #[test]
    fn file_bodies_stream_in_bounded_chunks_then_the_pipeline_resumes() {
        for zero_copy in [false, true] {
            let (body, conn) = stream_a_file(zero_copy, None);
            assert!(body.len() > 300_000, "zero_copy {zero_copy}");
            assert!(body.ends_with(b"after"));
            assert!(conn.wants_read());
        }
    }

    /// Issue 12: a file truncated while it is sent closes the connection; the short body
    /// is never followed by the next response (the client cannot take it for whole).
    #[test]
    fn a_file_truncated_while_it_streams_closes_the_connection() {
        for zero_copy in [false, true] {
            let (body, mut conn) = stream_a_file(zero_copy, Some(1));
            assert!(
                body.len() < 300_000,
                "zero_copy {zero_copy}: {}",
                body.len()
            );
            assert!(!body.ends_with(b"after"));
            assert!(conn.is_closed());
            assert_eq!(conn.poll_close(Instant::now()), Some(Close::Now));
        }
    }

    /// Issue 9 (4a): the peer's EOF arrives while a file is streaming; the request
    /// pipelined behind the file was complete before the EOF and must still be answered.
    #[test]
    fn eof_while_a_file_streams_still_answers_the_pipelined_request() {
        #[derive(Clone)]
        struct Files(std::path::PathBuf);
        impl Handler for Files {
            fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
                if req.path() == "/file" {
                    let file = std::fs::File::open(&self.0).unwrap();
                    let len = file.metadata().unwrap().len();
                    resp.respond_file(200, &[], FileBody::new(file, 0, len).zero_copy(false));
                } else {
                    resp.respond(200, &[], b"after");
                }
            }
        }
        let path = std::env::temp_dir().join(format!("conn-eof-test-{}", std::process::id()));
        std::fs::write(&path, vec![b'f'; 3 * FILE_CHUNK + 7]).unwrap();
        let mut handler = Files(path.clone());
        let limits = Limits::default();
        let timeouts = Timeouts::default();
        let now = Instant::now();
        let mut conn = Conn::new(now, &timeouts);
        let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
        conn.on_data(
            b"GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /partial HT",
            &mut ctx,
        );
        conn.on_eof(&mut ctx);
        let mut wire = Vec::new();
        let mut close = None;
        for _ in 0..100 {
            if close.is_none() {
                close = conn.poll_close(now);
            }
            if let Some((fd, off, len)) = conn.poll_file_read() {
                let mut buf = vec![0u8; len as usize];
                // SAFETY: buf has room for len bytes.
                let n =
                    unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len as usize, off as i64) };
                let read = if n > 0 {
                    Ok(&buf[..n as usize])
                } else {
                    Err(n as i32)
                };
                conn.on_file_read(read, &mut ctx);
                continue;
            }
            let Some(bytes) = take_send(&mut conn) else {
                break;
            };
            let n = bytes.len();
            wire.extend_from_slice(&bytes);
            conn.on_sent(n, &mut ctx);
        }
        if close.is_none() {
            close = conn.poll_close(now);
        }
        std::fs::remove_file(&path).unwrap();
        let text = String::from_utf8_lossy(&wire);
        assert_eq!(text.matches("HTTP/1.1 200 ").count(), 2, "{}", &text[..200]);
        assert!(
            wire.ends_with(b"after"),
            "the pipelined request was dropped"
        );
        assert_eq!(
            close,
            Some(Close::Now),
            "the incomplete third request is not waited for"
        );
    }

    /// Issue 9 (4a), the other blocked state: more than the high-water mark of output is
    /// unsent when the EOF arrives; the requests behind it are answered once it drains.
    #[test]
    fn eof_with_output_backlog_still_answers_the_pipelined_requests() {
        #[derive(Clone)]
        struct Big;
        impl Handler for Big {
            fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
                if req.path() == "/big" {
                    resp.respond(200, &[], &vec![b'b'; OUT_HIGH_WATER + 10]);
                } else {
                    resp.respond(200, &[], b"after");
                }
            }
        }
        let mut handler = Big;
        let limits = Limits::default();
        let timeouts = Timeouts::default();
        let now = Instant::now();
        let mut conn = Conn::new(now, &timeouts);
        let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
        conn.on_data(
            b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
            &mut ctx,
        );
        conn.on_eof(&mut ctx);
        let mut wire = Vec::new();
        for _ in 0..100 {
            // (The driver continues short sends: the machine hears of whole sends only.)
            let Some(bytes) = take_send(&mut conn) else {
                break;
            };
            let n = bytes.len();
            wire.extend_from_slice(&bytes);
            conn.on_sent(n, &mut ctx);
        }
        let text = String::from_utf8_lossy(&wire);
        assert_eq!(text.matches("HTTP/1.1 200 ").count(), 3);
        assert!(text.ends_with("after"));
        assert_eq!(conn.poll_close(now), Some(Close::Now));
    }

    /// Issue 9 (4c): a huge chunk size after some data, or a body limit near `u64::MAX`,
    /// must not overflow the limit arithmetic (a panic in a debug build; in release the
    /// early 413 was skipped). Unit tests run with overflow checks on.
    #[test]
    fn chunked_limit_arithmetic_saturates() {
        let mut h = Harness::new();
        h.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nFFFFFFFFFFFFFFFF\r\n");
        assert!(
            h.wire.starts_with(b"HTTP/1.1 413 "),
            "{}",
            String::from_utf8_lossy(&h.wire)
        );
        assert_eq!(h.closed, Some(Close::Linger));

        let mut h = Harness::new();
        h.limits.max_body_bytes = u64::MAX;
        h.feed(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab");
        h.feed(b"c\r\n0\r\n\r\n");
        assert_eq!(h.wire, response("POST /c abc", false));
    }

    #[test]
    fn connect_is_501_unless_the_handler_tunnels() {
        let mut h = Harness::new();
        h.feed(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
        let text = String::from_utf8_lossy(&h.wire).to_string();
        assert!(text.starts_with("HTTP/1.1 501 "), "{text}");
        assert_eq!(h.closed, Some(Close::Linger));

        #[derive(Clone)]
        struct Tunnel;
        impl Handler for Tunnel {
            fn handle(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
                resp.respond(200, &[], req.target().as_bytes());
            }
            fn accepts_connect(&self) -> bool {
                true
            }
        }
        let (limits, timeouts, now) = (Limits::default(), Timeouts::default(), Instant::now());
        let mut handler = Tunnel;
        let mut conn = Conn::new(now, &timeouts);
        let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
        conn.on_data(
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            &mut ctx,
        );
        let text = String::from_utf8_lossy(&take_send(&mut conn).unwrap()).to_string();
        assert!(
            text.starts_with("HTTP/1.1 200 ") && text.ends_with("a.example:443"),
            "{text}"
        );
    }

    /// Answers every request with the first 100,000 bytes of its file, zero-copy or not.
    #[derive(Clone)]
    struct OneFile(std::path::PathBuf, bool);
    impl Handler for OneFile {
        fn handle(&mut self, _req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
            let file = std::fs::File::open(&self.0).unwrap();
            resp.respond_file(200, &[], FileBody::new(file, 0, 100_000).zero_copy(self.1));
        }
    }

    /// Item 5: the file read's bytes come in as a slice (the driver's read buffer), so
    /// nothing here can expose memory the kernel did not write; a completion without a read
    /// in flight is ignored and more bytes than the body promised are clamped.
    /// Issue 12: the receive stays on while a file streams (no cancel and new receive per
    /// response), and stops once input piles up behind the file.
    #[test]
    fn reading_goes_on_while_a_file_streams_until_input_piles_up() {
        let path = std::env::temp_dir().join(format!("conn-readon-test-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 100_000]).unwrap();
        let mut handler = OneFile(path.clone(), true);
        let (limits, timeouts, now) = (Limits::default(), Timeouts::default(), Instant::now());
        let mut conn = Conn::new(now, &timeouts);
        let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
        conn.on_data(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n", &mut ctx);
        assert!(conn.file.is_some());
        assert!(conn.wants_read());
        let partial = format!("GET /g HTTP/1.1\r\nX: {}", "a".repeat(READ_WHILE_STREAMING));
        conn.on_data(partial.as_bytes(), &mut ctx);
        assert!(!conn.wants_read(), "input piled up behind the file");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn file_reads_not_asked_for_or_too_long_change_nothing_they_should_not() {
        let path = std::env::temp_dir().join(format!("conn-sound-test-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 100_000]).unwrap();
        let mut handler = OneFile(path.clone(), false);
        let (limits, timeouts, now) = (Limits::default(), Timeouts::default(), Instant::now());
        let mut conn = Conn::new(now, &timeouts);
        let mut ctx = Ctx::for_test(&mut handler, &limits, &timeouts, now);
        conn.on_data(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n", &mut ctx);
        let head_len = conn.out.len();
        // Not asked for: ignored.
        conn.on_file_read(Ok(&[1u8; 4096]), &mut ctx);
        assert_eq!(conn.out.len(), head_len);
        let (_, off, len) = conn.poll_file_read().unwrap();
        assert_eq!((off, len as usize), (0, FILE_CHUNK));
        conn.on_file_read(Ok(&[7u8; FILE_CHUNK]), &mut ctx);
        assert_eq!(conn.out.len(), head_len + FILE_CHUNK);
        // The rest of the body is 100_000 - 65536 bytes: a longer read is clamped to it.
        let out = std::mem::take(&mut conn.out);
        let (_, off, len) = conn.poll_file_read().unwrap();
        assert_eq!(
            (off, len as usize),
            (FILE_CHUNK as u64, 100_000 - FILE_CHUNK)
        );
        conn.on_file_read(Ok(&[7u8; FILE_CHUNK]), &mut ctx);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(conn.out.len(), 100_000 - FILE_CHUNK);
        assert!(conn.poll_file_read().is_none(), "the body is complete");
        drop(out);
    }

    #[test]
    fn absolute_form_targets_route_by_path() {
        let mut h = Harness::new();
        h.feed(b"GET http://example.com/a?x HTTP/1.1\r\nHost: example.com\r\n\r\nGET HTTP://example.com HTTP/1.1\r\nHost: example.com\r\n\r\nGET /\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut want = response("GET /a ", false);
        want.extend(response("GET / ", false));
        let text = String::from_utf8_lossy(&h.wire).to_string();
        assert!(text.starts_with(&*String::from_utf8_lossy(&want)), "{text}");
        // The codec refuses a non-ASCII target.
        assert!(text.contains("HTTP/1.1 400 "), "{text}");
    }

    #[test]
    fn one_send_at_a_time_and_nothing_lost_meanwhile() {
        let mut h = Harness::new();
        h.with(|c, ctx| c.on_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", ctx));
        let first = take_send(&mut h.conn).unwrap();
        assert!(take_send(&mut h.conn).is_none(), "one send at a time");
        h.with(|c, ctx| c.on_data(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", ctx));
        assert!(take_send(&mut h.conn).is_none(), "still one send at a time");
        let n = first.len();
        h.with(|c, ctx| c.on_sent(n, ctx));
        let second = take_send(&mut h.conn).unwrap();
        assert_eq!(second, response("GET /b ", false));
    }

    /// Play the driver's send buffer: what `poll_send` hands over.
    fn take_send(conn: &mut Conn) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        conn.poll_send(&mut buf).then_some(buf)
    }
}
