//! The state machine of one client connection, without any IO (the quinn-proto split).
//!
//! The engine tells it what happened (connected, bytes arrived, the peer closed, an IO
//! error, the time) and it answers what to do (keep going or tear the socket down),
//! while it frames responses (Content-Length, chunked, until-close, no body), skips 1xx
//! interim responses, matches responses to pipelined requests in order, records latency
//! and status, and classes every failure. Response bytes are parsed in place; only an
//! incomplete head is copied aside until the rest arrives.
//!
//! The wire side is here too: [`Conn::poll_transmit`] writes the pipelined request train
//! (or its TLS records) into the driver's send buffer, and [`Conn::on_received`] opens TLS
//! records (rustls' `ClientConnection` is sans-IO) before parsing, so HTTPS is tested at
//! every byte split without a socket like plain HTTP.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use uring_common::http::request::HEADER_CAPACITY;
use uring_common::http::{parse_response, BodyReader, HeaderStorage, Parsed, ResponseFraming};
use uring_common::stats::{ErrorKind, Recorder};

use crate::head_memo::{HeadFacts, HeadMemo};
use crate::targets::{Pick, Target};
use crate::template::Expander;

/// Where a connection records what happened to its requests: the run's recorder, and
/// (with a mix) the statistics of each request's target.
pub trait Sink {
    /// The run's recorder (bytes, first errors, and everything when there is no mix).
    fn all(&mut self) -> &mut Recorder;
    /// A complete response to a request for `target`.
    fn answered(&mut self, target: u32, status: u16, latency_us: u64);
    /// A request for `target` ended without a complete response.
    fn errored(&mut self, target: u32, kind: ErrorKind);
}

/// One recorder for everything (one target, and the tests).
impl Sink for Recorder {
    #[inline]
    fn all(&mut self) -> &mut Recorder {
        self
    }
    #[inline]
    fn answered(&mut self, _target: u32, status: u16, latency_us: u64) {
        self.record_latency_us(latency_us);
        self.counters.record_status(status);
    }
    #[inline]
    fn errored(&mut self, _target: u32, kind: ErrorKind) {
        self.counters.record_error(kind);
    }
}

/// How long to wait for the server's EOF after a response that announced the close; a
/// server that says `close` and keeps the connection open is closed by us after this.
pub const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// What every connection of a run does.
#[derive(Debug, Clone, Copy)]
pub struct ConnSpec {
    /// Keep the connection for many requests (`-k`); without it each request gets its own.
    pub keep_alive: bool,
    /// Most requests in flight at once (`-K`); forced to 1 without keep-alive.
    pub depth: usize,
    /// Largest response head accepted before counting a parse error.
    pub max_head_bytes: usize,
    /// HTTP/2 (`--http2`): `depth` is then the streams per connection (`--streams`).
    pub http2: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No socket.
    Idle,
    /// A connect is in flight (the engine bounds it with a linked timeout).
    Connecting,
    /// Requests may be sent and responses arrive.
    Open,
    /// The last response said the server closes; waiting for its EOF so that the
    /// TIME_WAIT state lands on the server and not on our ports.
    Draining,
    /// The engine must tear the socket down, then call [`Conn::closed`].
    Closed,
}

/// The engine's next move after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Tear the socket down. Requests still queued were never answered and the server
    /// never processed them; take them with [`Conn::take_unanswered`] and issue them again.
    Close,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Latency is measured from here: the hand-over time (closed model) or the intended
    /// send time (open model, which corrects coordinated omission).
    latency_from: Instant,
    /// The `-T` deadline runs from the moment the connection got the request.
    handed_at: Instant,
    pick: Pick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Waiting for (the rest of) a response head.
    Head,
    /// In a body, framed by `Conn::reader`.
    Reading,
}

pub struct Conn {
    spec: ConnSpec,
    phase: Phase,
    /// Requests handed to this connection and not yet answered, oldest first.
    queue: VecDeque<Pending>,
    /// The newest `unsent` entries of `queue` have not been given to the writer yet.
    unsent: usize,
    body: Body,
    status: u16,
    /// The response being read lets the connection stay open.
    response_keep_alive: bool,
    reader: BodyReader,
    /// An incomplete response head (and what followed it in the same read).
    partial: Vec<u8>,
    /// Responses answered on the current socket.
    answered: u64,
    draining_since: Option<Instant>,
    /// The TLS session of an HTTPS connection.
    tls: Option<Box<ClientConnection>>,
    /// Decrypted response bytes (HTTPS only).
    plain: Vec<u8>,
    /// The last head parsed, to recognise the same head again without parsing it.
    memo: HeadMemo,
}

/// What [`Conn::on_received`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub step: Step,
    /// At least one request was answered: there may be room for more.
    pub answered: bool,
}

fn header_storage<'b>() -> HeaderStorage<'b> {
    [const { MaybeUninit::uninit() }; HEADER_CAPACITY]
}

impl Conn {
    pub fn new(spec: ConnSpec) -> Conn {
        let depth = if spec.keep_alive {
            spec.depth.max(1)
        } else {
            1
        };
        Conn {
            spec: ConnSpec { depth, ..spec },
            phase: Phase::Idle,
            queue: VecDeque::with_capacity(depth),
            unsent: 0,
            body: Body::Head,
            status: 0,
            response_keep_alive: true,
            reader: BodyReader::new(),
            partial: Vec::with_capacity(1024),
            answered: 0,
            draining_since: None,
            tls: None,
            plain: Vec::new(),
            memo: HeadMemo::default(),
        }
    }

    // ---- getters ----

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Requests handed to this connection and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Whether another request may be handed over now (or, when idle, before connecting).
    pub fn has_room(&self) -> bool {
        match self.phase {
            Phase::Idle | Phase::Connecting => self.queue.is_empty(),
            Phase::Open => {
                self.queue.len() < self.spec.depth
                    && (self.spec.keep_alive || (self.answered == 0 && self.queue.is_empty()))
            }
            Phase::Draining | Phase::Closed => false,
        }
    }

    /// When `poll_timeout` must be called next, if anything is pending.
    pub fn deadline(&self, timeout: Duration) -> Option<Instant> {
        match self.phase {
            Phase::Open => self.queue.front().map(|p| p.handed_at + timeout),
            Phase::Draining => self.draining_since.map(|t| t + timeout.min(DRAIN_LIMIT)),
            _ => None,
        }
    }

    // ---- inputs ----

    /// A new socket is being connected.
    pub fn start_connect(&mut self) {
        debug_assert!(matches!(self.phase, Phase::Idle));
        self.phase = Phase::Connecting;
        self.body = Body::Head;
        self.partial.clear();
        self.answered = 0;
        self.draining_since = None;
    }

    pub fn on_connected(&mut self) {
        debug_assert!(matches!(self.phase, Phase::Connecting));
        self.phase = Phase::Open;
    }

    /// Connected, with the TLS session of an HTTPS connection: the handshake starts with
    /// the first transmit, and requests wait in rustls until it is done.
    pub fn on_connected_tls(&mut self, tls: ClientConnection) {
        self.on_connected();
        if self.plain.len() < 16 * 1024 {
            self.plain = vec![0; 16 * 1024];
        }
        self.tls = Some(Box::new(tls));
    }

    /// Whether [`Conn::poll_transmit`] has something to write.
    pub fn wants_write(&self) -> bool {
        (self.phase == Phase::Open && self.unsent > 0)
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Append what goes on the wire now to `out`: the requests not yet written (each its
    /// target's prepared bytes, so a pipelined train leaves in one send), sealed in TLS
    /// records for HTTPS, and any handshake or alert records rustls has to say. A target
    /// with placeholders is written by `x` with fresh values (`crate::template`).
    pub fn poll_transmit(&mut self, targets: &[Target], x: &mut Expander, out: &mut Vec<u8>) {
        let n = self.take_unsent();
        let unsent = self.queue.range(self.queue.len() - n..);
        let Some(tls) = self.tls.as_deref_mut() else {
            for p in unsent {
                let t = &targets[p.pick.target as usize];
                match &t.template {
                    None => out.extend_from_slice(&t.bytes),
                    Some(template) => x.write(template, out),
                }
            }
            return;
        };
        for p in unsent {
            let t = &targets[p.pick.target as usize];
            // rustls buffers the plaintext until the handshake is done.
            let _ = match &t.template {
                None => tls.writer().write_all(&t.bytes),
                Some(template) => tls.writer().write_all(x.expand(template)),
            };
        }
        while tls.wants_write() {
            if tls.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// Bytes from the socket: through TLS for HTTPS, then parsed as responses.
    pub fn on_received<R: Sink>(&mut self, data: &[u8], now: Instant, rec: &mut R) -> Received {
        let before = self.queue.len();
        let step = if self.tls.is_some() {
            self.on_tls_records(data, now, rec)
        } else {
            self.on_data(data, now, rec)
        };
        Received {
            step,
            answered: self.queue.len() < before && step == Step::Continue,
        }
    }

    fn on_tls_records<R: Sink>(&mut self, data: &[u8], now: Instant, rec: &mut R) -> Step {
        let mut tls = self.tls.take().expect("an HTTPS connection");
        let mut plain = std::mem::take(&mut self.plain);
        let mut input = data;
        let mut step = Step::Continue;
        'feed: while !input.is_empty() {
            if let Err(e) = tls.read_tls(&mut input) {
                let cause = format!("TLS read: {e}");
                step = self.on_error_because(ErrorKind::Read, &cause, rec);
                break;
            }
            if let Err(e) = tls.process_new_packets() {
                let kind = if tls.is_handshaking() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Read
                };
                let cause = format!("TLS: {}", crate::tls::describe_error(&e));
                step = self.on_error_because(kind, &cause, rec);
                break;
            }
            loop {
                match tls.reader().read(&mut plain) {
                    // close_notify: the server ended the session cleanly, like an EOF.
                    Ok(0) => {
                        step = self.on_eof(now, rec);
                        break 'feed;
                    }
                    Ok(n) => {
                        step = self.on_data(&plain[..n], now, rec);
                        if step == Step::Close {
                            break 'feed;
                        }
                    }
                    // WouldBlock: no more plaintext until more records arrive.
                    Err(_) => break,
                }
            }
        }
        self.plain = plain;
        self.tls = Some(tls);
        step
    }

    /// Connect failed (refused, timed out, ...): every request waiting for this socket
    /// counts as a connect error.
    pub fn on_connect_error<R: Sink>(&mut self, rec: &mut R) -> Step {
        self.fail_all(ErrorKind::Connect, rec);
        Step::Close
    }

    /// Hand over one request. It is sent once the connection is open.
    pub fn push_request(&mut self, latency_from: Instant, now: Instant, pick: Pick) {
        debug_assert!(self.has_room());
        self.queue.push_back(Pending {
            latency_from,
            handed_at: now,
            pick,
        });
        self.unsent += 1;
    }

    /// How many requests to write now (the newest that many of the queue, in one send).
    pub fn take_unsent(&mut self) -> usize {
        if self.phase != Phase::Open {
            return 0;
        }
        std::mem::take(&mut self.unsent)
    }

    /// Response bytes arrived.
    pub fn on_data<R: Sink>(&mut self, data: &[u8], now: Instant, rec: &mut R) -> Step {
        rec.all().counters.bytes_total += data.len() as u64;
        if !matches!(self.phase, Phase::Open) {
            // After the final response of a closing connection: nothing to parse.
            return if self.phase == Phase::Draining {
                Step::Continue
            } else {
                Step::Close
            };
        }
        let result = if self.partial.is_empty() {
            match self.consume(data, now, rec) {
                Ok(used) => {
                    if used < data.len() && self.phase == Phase::Open {
                        self.partial.extend_from_slice(&data[used..]);
                    }
                    Ok(())
                }
                Err(kind) => Err(kind),
            }
        } else {
            self.partial.extend_from_slice(data);
            let buf = std::mem::take(&mut self.partial);
            let r = self.consume(&buf, now, rec);
            let mut buf = buf;
            match r {
                Ok(used) => {
                    if self.phase == Phase::Open {
                        buf.drain(..used);
                    } else {
                        buf.clear();
                    }
                    self.partial = buf;
                    Ok(())
                }
                Err(kind) => {
                    buf.clear();
                    self.partial = buf;
                    Err(kind)
                }
            }
        };
        if let Err(kind) = result {
            self.fail_all(kind, rec);
            return Step::Close;
        }
        if self.partial.len() > self.spec.max_head_bytes {
            self.fail_all(ErrorKind::Parse, rec);
            return Step::Close;
        }
        match self.phase {
            Phase::Closed => Step::Close,
            _ => Step::Continue,
        }
    }

    /// The server closed its side (recv returned 0).
    pub fn on_eof<R: Sink>(&mut self, now: Instant, rec: &mut R) -> Step {
        match self.phase {
            Phase::Open => {
                if self.body == Body::Reading && self.reader.until_close() {
                    self.finish(now, rec);
                    // The close itself ended that response: anything after it was never read.
                    self.phase = Phase::Closed;
                    return Step::Close;
                }
                if !self.queue.is_empty() {
                    // EOF before or in the middle of a response.
                    self.fail_all(ErrorKind::Read, rec);
                }
                self.phase = Phase::Closed;
                Step::Close
            }
            Phase::Connecting | Phase::Draining | Phase::Idle | Phase::Closed => {
                self.phase = Phase::Closed;
                Step::Close
            }
        }
    }

    /// A send or receive failed (reset, broken pipe, ...).
    pub fn on_io_error<R: Sink>(&mut self, kind: ErrorKind, rec: &mut R) -> Step {
        self.on_error_because(kind, &kind.generic_cause(), rec)
    }

    /// As [`Conn::on_io_error`], with the cause (an OS error and the peer, a TLS alert):
    /// kept as the run's first error of `kind` if this error counts and is the first.
    pub fn on_error_because<R: Sink>(
        &mut self,
        kind: ErrorKind,
        cause: &dyn std::fmt::Display,
        rec: &mut R,
    ) -> Step {
        if self.phase == Phase::Draining {
            // The answer we wanted is in; a reset while waiting for EOF costs nothing.
            self.phase = Phase::Closed;
            return Step::Close;
        }
        // A reset also fails an until-close body: only a clean EOF says it was complete.
        self.fail_all_because(kind, cause, rec);
        Step::Close
    }

    /// Check the `-T` deadline of the oldest request (and of a drain).
    pub fn poll_timeout<R: Sink>(&mut self, now: Instant, timeout: Duration, rec: &mut R) -> Step {
        match self.deadline(timeout) {
            Some(d) if d <= now => {
                if self.phase == Phase::Draining {
                    self.phase = Phase::Closed;
                } else {
                    self.fail_all(ErrorKind::Timeout, rec);
                }
                Step::Close
            }
            _ => Step::Continue,
        }
    }

    /// Requests the server never processed (after a response that closed the
    /// connection): the engine issues them again, keeping their latency origin.
    pub fn take_unanswered(&mut self) -> impl Iterator<Item = (Instant, Pick)> + '_ {
        self.unsent = 0;
        self.queue.drain(..).map(|p| (p.latency_from, p.pick))
    }

    /// The run stopped: requests in flight are neither done nor errored.
    pub fn abandon(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        self.unsent = 0;
        self.phase = Phase::Closed;
        n
    }

    /// The engine finished tearing the socket down.
    pub fn closed(&mut self) {
        debug_assert!(self.queue.is_empty());
        self.queue.clear();
        self.unsent = 0;
        self.tls = None;
        self.phase = Phase::Idle;
    }

    // ---- internals ----

    fn fail_all<R: Sink>(&mut self, kind: ErrorKind, rec: &mut R) {
        self.fail_all_because(kind, &kind.generic_cause(), rec);
    }

    fn fail_all_because<R: Sink>(
        &mut self,
        kind: ErrorKind,
        cause: &dyn std::fmt::Display,
        rec: &mut R,
    ) {
        if !self.queue.is_empty() {
            rec.all().note_error(kind, cause);
        }
        for p in self.queue.drain(..) {
            rec.errored(p.pick.target, kind);
        }
        self.unsent = 0;
        self.phase = Phase::Closed;
    }

    /// A whole response was read: record it against the oldest request.
    fn finish<R: Sink>(&mut self, now: Instant, rec: &mut R) {
        self.body = Body::Head;
        self.answered += 1;
        if let Some(p) = self.queue.pop_front() {
            let us = now.saturating_duration_since(p.latency_from).as_micros() as u64;
            rec.answered(p.pick.target, self.status, us);
        }
        if !self.response_keep_alive {
            // The server closes after this response; wait for its EOF.
            self.phase = Phase::Draining;
            self.draining_since = Some(now);
        } else if !self.spec.keep_alive {
            // We asked for `Connection: close` and the server kept the connection: we close.
            self.phase = Phase::Closed;
        }
    }

    /// Parse responses from `data`; returns how many bytes were used (the rest is an
    /// incomplete head), or the error class that ends the connection.
    fn consume<R: Sink>(
        &mut self,
        data: &[u8],
        now: Instant,
        rec: &mut R,
    ) -> Result<usize, ErrorKind> {
        let mut off = 0;
        while off < data.len() && self.phase == Phase::Open {
            let rest = &data[off..];
            match self.body {
                Body::Head => {
                    if self.queue.len() == self.unsent {
                        // Bytes no request asked for.
                        return Err(ErrorKind::Parse);
                    }
                    let was_head = self.queue.front().is_some_and(|p| p.pick.head);
                    let head = match self.memo.recall(rest, was_head) {
                        Some(facts) => facts,
                        None => {
                            let mut storage = header_storage();
                            let max = self.spec.max_head_bytes;
                            let parsed = parse_response(rest, &mut storage, was_head, max)
                                .map_err(|_| ErrorKind::Parse)?;
                            let facts = match parsed {
                                Parsed::Partial => return Ok(off),
                                Parsed::Complete(h) => HeadFacts::of(&h),
                            };
                            self.memo.remember(rest, was_head, facts);
                            facts
                        }
                    };
                    off += head.head_len;
                    rec.all().counters.bytes_headers += head.head_len as u64;
                    if head.interim {
                        continue;
                    }
                    self.status = head.status;
                    self.response_keep_alive = head.keep_alive && head.status != 101;
                    if head.framing == ResponseFraming::UntilClose {
                        self.response_keep_alive = false;
                    }
                    self.reader.start(head.framing);
                    if self.reader.is_done() {
                        self.finish(now, rec);
                    } else {
                        self.body = Body::Reading;
                    }
                }
                Body::Reading => {
                    let (used, data) = self.reader.read(rest).map_err(|_| ErrorKind::Parse)?;
                    if used == 0 && !self.reader.is_done() {
                        // The reader keeps its own partial state; it must use input.
                        return Err(ErrorKind::Parse);
                    }
                    off += used;
                    rec.all().counters.bytes_body += data.len() as u64;
                    if self.reader.is_done() {
                        self.finish(now, rec);
                    }
                }
            }
        }
        if self.phase != Phase::Open {
            // Whatever follows a closing response is ignored.
            return Ok(data.len());
        }
        Ok(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(keep_alive: bool, depth: usize) -> ConnSpec {
        ConnSpec {
            keep_alive,
            depth,
            max_head_bytes: 16 * 1024,
            http2: false,
        }
    }

    /// Open a connection and hand it `n` requests.
    fn open(spec: ConnSpec, n: usize, now: Instant) -> Conn {
        let mut c = Conn::new(spec);
        c.start_connect();
        c.push_request(now, now, Pick::default());
        c.on_connected();
        for _ in 1..n {
            c.push_request(now, now, Pick::default());
        }
        assert_eq!(c.take_unsent(), n);
        c
    }

    /// Feed `bytes` split at every position into two pieces; the outcome must not depend
    /// on how the bytes arrive.
    fn each_split(bytes: &[u8], f: impl Fn(&[&[u8]])) {
        f(&[bytes]);
        for i in 1..bytes.len() {
            f(&[&bytes[..i], &bytes[i..]]);
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        f(&singles);
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn content_length_pipelined_any_split() {
        let mut three = Vec::new();
        for _ in 0..3 {
            three.extend_from_slice(OK);
        }
        each_split(&three, |parts| {
            let now = Instant::now();
            let mut c = open(spec(true, 3), 3, now);
            let mut rec = Recorder::new();
            for p in parts {
                assert_eq!(c.on_data(p, now, &mut rec), Step::Continue);
            }
            assert_eq!(c.in_flight(), 0);
            assert_eq!(rec.counters.succeeded, 3);
            assert_eq!(rec.counters.bytes_body, 6);
            assert_eq!(rec.counters.bytes_total, three.len() as u64);
            assert!(c.has_room());
        });
    }

    #[test]
    fn a_mixed_train_leaves_in_one_transmit_and_each_answer_goes_to_its_target() {
        let mix = crate::targets::tests_support::mix(3, crate::targets::Policy::RoundRobin);
        let now = Instant::now();
        let mut c = Conn::new(spec(true, 4));
        c.start_connect();
        c.on_connected();
        for t in [2u32, 0, 2, 1] {
            c.push_request(now, now, mix.pick(t));
        }
        let mut out = Vec::new();
        c.poll_transmit(
            &mix.targets,
            &mut Expander::new(0, 1, crate::shard::Shard::WHOLE, 0),
            &mut out,
        );
        let want: Vec<u8> = [2, 0, 2, 1]
            .iter()
            .flat_map(|&t| mix.targets[t].bytes.clone())
            .collect();
        assert_eq!(out, want, "one buffer, in order");
        assert!(!c.wants_write());
        let mut tally = crate::breakdown::Tally::new(3, 1);
        let mut four = Vec::new();
        for status in [200, 404, 200, 503] {
            four.extend_from_slice(
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
            );
        }
        assert_eq!(c.on_data(&four, now, &mut tally), Step::Continue);
        let done: Vec<u64> = tally.targets.iter().map(|r| r.counters.done).collect();
        assert_eq!(done, [1, 1, 2]);
        assert_eq!(tally.targets[0].counters.class(4), 1);
        assert_eq!(tally.targets[1].counters.class(5), 1);
        assert_eq!(tally.all.counters.done, 4);
    }

    #[test]
    fn chunked_and_interim_any_split() {
        let resp: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        each_split(resp, |parts| {
            let now = Instant::now();
            let mut c = open(spec(true, 1), 1, now);
            let mut rec = Recorder::new();
            for p in parts {
                assert_eq!(c.on_data(p, now, &mut rec), Step::Continue);
            }
            assert_eq!(c.in_flight(), 0);
            assert_eq!(rec.counters.failed, 1);
            assert_eq!(rec.counters.class(4), 1);
            assert_eq!(rec.counters.bytes_body, 5);
        });
    }

    #[test]
    fn head_request_has_no_body() {
        let now = Instant::now();
        let mut c = open(spec(true, 2), 2, now);
        c.queue.iter_mut().for_each(|p| p.pick.head = true);
        let mut rec = Recorder::new();
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        assert_eq!(c.on_data(two, now, &mut rec), Step::Continue);
        assert_eq!(rec.counters.succeeded, 2);
    }

    /// The remembered head is keyed on the request kind too: the same head bytes frame no
    /// body after HEAD and a 3-byte body after GET, in any order and at any split.
    #[test]
    fn the_same_head_after_head_and_get_frames_each_by_its_request() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        let mut train = Vec::new();
        for body in [&b""[..], b"abc", b"", b"abc"] {
            train.extend_from_slice(head);
            train.extend_from_slice(body);
        }
        each_split(&train, |parts| {
            let now = Instant::now();
            let mut c = open(spec(true, 4), 4, now);
            for (k, p) in c.queue.iter_mut().enumerate() {
                p.pick.head = k % 2 == 0;
            }
            let mut rec = Recorder::new();
            for p in parts {
                assert_eq!(c.on_data(p, now, &mut rec), Step::Continue);
            }
            assert_eq!(rec.counters.succeeded, 4);
            assert_eq!(rec.counters.bytes_body, 6);
            assert_eq!(rec.counters.bytes_headers, 4 * head.len() as u64);
            assert_eq!(c.in_flight(), 0);
        });
    }

    #[test]
    fn no_body_statuses() {
        let now = Instant::now();
        let mut c = open(spec(true, 2), 2, now);
        let mut rec = Recorder::new();
        let two = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n";
        assert_eq!(c.on_data(two, now, &mut rec), Step::Continue);
        assert_eq!(rec.counters.done, 2);
        assert_eq!(rec.counters.class(2), 1);
        assert_eq!(rec.counters.class(3), 1);
    }

    #[test]
    fn until_close_ends_at_eof() {
        let now = Instant::now();
        let mut c = open(spec(true, 1), 1, now);
        let mut rec = Recorder::new();
        assert_eq!(
            c.on_data(b"HTTP/1.0 200 OK\r\n\r\nsome body", now, &mut rec),
            Step::Continue
        );
        assert_eq!(rec.counters.done, 0);
        assert_eq!(c.on_eof(now, &mut rec), Step::Close);
        assert_eq!(rec.counters.succeeded, 1);
        assert_eq!(rec.counters.bytes_body, 9);
        assert_eq!(rec.counters.errored, 0);
    }

    #[test]
    fn connection_close_drains_and_returns_pipelined_requests() {
        let now = Instant::now();
        let mut c = open(spec(true, 3), 3, now);
        let mut rec = Recorder::new();
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        assert_eq!(c.on_data(r, now, &mut rec), Step::Continue);
        assert_eq!(c.phase(), Phase::Draining);
        assert!(!c.has_room());
        assert_eq!(c.on_eof(now, &mut rec), Step::Close);
        assert_eq!(c.take_unanswered().count(), 2);
        c.closed();
        assert_eq!(rec.counters.succeeded, 1);
        assert_eq!(rec.counters.errored, 0);
    }

    #[test]
    fn without_keep_alive_one_request_per_connection() {
        let now = Instant::now();
        let mut c = open(spec(false, 8), 1, now);
        assert!(!c.has_room());
        let mut rec = Recorder::new();
        // The server ignores our `Connection: close` and keeps the connection: we close.
        assert_eq!(c.on_data(OK, now, &mut rec), Step::Close);
        assert_eq!(rec.counters.succeeded, 1);
        assert_eq!(c.take_unanswered().count(), 0);
        c.closed();
        assert_eq!(c.phase(), Phase::Idle);
    }

    #[test]
    fn eof_mid_response_is_a_read_error() {
        let now = Instant::now();
        let mut c = open(spec(true, 2), 2, now);
        let mut rec = Recorder::new();
        assert_eq!(
            c.on_data(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab",
                now,
                &mut rec
            ),
            Step::Continue
        );
        assert_eq!(c.on_eof(now, &mut rec), Step::Close);
        assert_eq!(rec.counters.errored, 2);
        assert_eq!(rec.counters.errors_read, 2);
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let now = Instant::now();
        let mut c = open(spec(true, 1), 1, now);
        let mut rec = Recorder::new();
        assert_eq!(
            c.on_data(b"\x00\x01garbage garbage\r\n\r\n", now, &mut rec),
            Step::Close
        );
        assert_eq!(rec.counters.errors_parse, 1);
    }

    #[test]
    fn unsolicited_bytes_are_a_parse_error() {
        let now = Instant::now();
        let mut c = open(spec(true, 1), 1, now);
        let mut rec = Recorder::new();
        let mut two = OK.to_vec();
        two.extend_from_slice(OK);
        assert_eq!(c.on_data(&two, now, &mut rec), Step::Close);
        assert_eq!(rec.counters.succeeded, 1);
        assert_eq!(rec.counters.errors_parse, 0, "no request was left to fail");
    }

    #[test]
    fn oversized_head_is_a_parse_error() {
        let now = Instant::now();
        let mut c = open(
            ConnSpec {
                max_head_bytes: 64,
                ..spec(true, 1)
            },
            1,
            now,
        );
        let mut rec = Recorder::new();
        let mut step = Step::Continue;
        let head = format!("HTTP/1.1 200 OK\r\nX-Long: {}", "a".repeat(200));
        for b in head.as_bytes().chunks(10) {
            step = c.on_data(b, now, &mut rec);
            if step == Step::Close {
                break;
            }
        }
        assert_eq!(step, Step::Close);
        assert_eq!(rec.counters.errors_parse, 1);
    }

    #[test]
    fn timeout_fails_every_request_in_flight() {
        let t0 = Instant::now();
        let mut c = open(spec(true, 2), 2, t0);
        let mut rec = Recorder::new();
        let timeout = Duration::from_millis(100);
        assert_eq!(c.deadline(timeout), Some(t0 + timeout));
        assert_eq!(
            c.poll_timeout(t0 + Duration::from_millis(50), timeout, &mut rec),
            Step::Continue
        );
        assert_eq!(
            c.poll_timeout(t0 + Duration::from_millis(100), timeout, &mut rec),
            Step::Close
        );
        assert_eq!(rec.counters.errors_timeout, 2);
    }

    #[test]
    fn connect_error_fails_the_waiting_request() {
        let now = Instant::now();
        let mut c = Conn::new(spec(true, 1));
        c.start_connect();
        c.push_request(now, now, Pick::default());
        assert_eq!(
            c.take_unsent(),
            0,
            "nothing is sent before the connect completes"
        );
        assert_eq!(c.on_connect_error(&mut rec_new()), Step::Close);
        c.closed();
        assert_eq!(c.phase(), Phase::Idle);
    }

    #[test]
    fn the_first_counted_error_keeps_its_cause() {
        let now = Instant::now();
        let mut rec = rec_new();
        let mut c = Conn::new(spec(true, 1));
        c.start_connect();
        c.push_request(now, now, Pick::default());
        let cause = uring_common::stats::OsCause {
            kind: ErrorKind::Connect,
            errno: libc::ECONNREFUSED,
            peer: &"127.0.0.1:1",
        };
        assert_eq!(
            c.on_error_because(ErrorKind::Connect, &cause, &mut rec),
            Step::Close
        );
        c.closed();
        let first = rec.first_errors.get(ErrorKind::Connect).unwrap();
        assert_eq!(
            first.message,
            "Connection refused (os error 111) to 127.0.0.1:1"
        );
        // A reset while draining counts nothing, so it leaves no cause behind.
        let mut c = open(spec(true, 1), 1, now);
        c.on_data(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            now,
            &mut rec,
        );
        assert_eq!(c.phase(), Phase::Draining);
        c.on_error_because(ErrorKind::Read, &"reset", &mut rec);
        assert!(rec.first_errors.get(ErrorKind::Read).is_none());
        // Without an OS cause, the class's generic one.
        let mut c = open(spec(true, 1), 1, now);
        c.on_eof(now, &mut rec);
        assert_eq!(
            rec.first_errors.get(ErrorKind::Read).unwrap().message,
            ErrorKind::Read.generic_cause()
        );
        assert_eq!(rec.counters.errors_read, 1);
    }

    fn rec_new() -> Recorder {
        Recorder::new()
    }

    #[test]
    fn latency_is_measured_from_the_given_origin() {
        let t0 = Instant::now();
        let mut c = Conn::new(spec(true, 1));
        c.start_connect();
        c.push_request(t0, t0 + Duration::from_millis(5), Pick::default());
        c.on_connected();
        c.take_unsent();
        let mut rec = Recorder::new();
        c.on_data(OK, t0 + Duration::from_millis(30), &mut rec);
        let max = rec.latency_us.max();
        assert!((29_000..=31_000).contains(&max), "{max}");
    }

    #[test]
    fn a_server_that_announces_close_but_keeps_the_connection_is_closed_by_us() {
        let t0 = Instant::now();
        let mut c = open(spec(true, 1), 1, t0);
        let mut rec = Recorder::new();
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        assert_eq!(c.on_data(r, t0, &mut rec), Step::Continue);
        let timeout = Duration::from_secs(10);
        assert_eq!(c.deadline(timeout), Some(t0 + DRAIN_LIMIT));
        assert_eq!(
            c.poll_timeout(t0 + DRAIN_LIMIT, timeout, &mut rec),
            Step::Close
        );
        assert_eq!(rec.counters.errored, 0);
        assert_eq!(rec.counters.succeeded, 1);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// (response bytes, body bytes, is 2xx)
        fn response(kind: u8, len: usize) -> (Vec<u8>, u64, bool) {
            let body = "x".repeat(len);
            match kind % 5 {
                0 => (
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{body}").into_bytes(),
                    len as u64,
                    true,
                ),
                1 => {
                    let mut r = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    if len > 0 {
                        r.extend_from_slice(format!("{len:x};ext=1\r\n{body}\r\n").as_bytes());
                    }
                    r.extend_from_slice(b"0\r\nTrailer: t\r\n\r\n");
                    (r, len as u64, true)
                }
                2 => (b"HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n".to_vec(), 0, true),
                3 => (
                    format!("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 503 Busy\r\ncontent-length: {len}\r\n\r\n{body}").into_bytes(),
                    len as u64,
                    false,
                ),
                _ => (
                    format!("HTTP/1.1 404 Not Found\r\nContent-Length: {len}\r\nX: {}\r\n\r\n{body}", "h".repeat(len % 300)).into_bytes(),
                    len as u64,
                    false,
                ),
            }
        }

        proptest! {
            #[test]
            fn pipelined_mixes_at_random_splits(
                kinds in proptest::collection::vec((any::<u8>(), 0usize..3000), 1..12),
                cuts in proptest::collection::vec(1usize..4000, 0..20),
            ) {
                let now = Instant::now();
                let n = kinds.len();
                let mut c = open(spec(true, n), n, now);
                let mut rec = Recorder::new();
                let mut bytes = Vec::new();
                let (mut body, mut ok) = (0u64, 0u64);
                for (k, len) in &kinds {
                    let (r, b, good) = response(*k, *len);
                    bytes.extend_from_slice(&r);
                    body += b;
                    ok += u64::from(good);
                }
                let mut at: usize = 0;
                for cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                    let end = at.saturating_add(*cut).min(bytes.len());
                    prop_assert_eq!(c.on_data(&bytes[at..end], now, &mut rec), Step::Continue);
                    at = end;
                    if at == bytes.len() {
                        break;
                    }
                }
                prop_assert_eq!(c.in_flight(), 0);
                prop_assert_eq!(rec.counters.done, n as u64);
                prop_assert_eq!(rec.counters.succeeded, ok);
                prop_assert_eq!(rec.counters.bytes_body, body);
                prop_assert_eq!(rec.counters.bytes_total, bytes.len() as u64);
                prop_assert_eq!(rec.counters.errored, 0);
            }
        }
    }

    /// HTTPS without a socket: a rustls server in memory. Returns the client connection
    /// after the handshake with one request answered by `response`, and the server's last
    /// flight (the response's records) still to be fed.
    fn tls_exchange(response: &[u8]) -> (Conn, Vec<u8>, Recorder, rustls::ServerConnection) {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
        use std::sync::Arc;
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = key.cert.der().clone();
        let pkey = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], pkey)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut server = rustls::ServerConnection::new(Arc::new(server_cfg)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let session = ClientConnection::new(Arc::new(client_cfg), name).unwrap();
        let now = Instant::now();
        let mut rec = rec_new();
        let mut c = Conn::new(spec(true, 1));
        c.start_connect();
        c.push_request(now, now, Pick::default());
        c.on_connected_tls(session);
        // A template: what rustls seals is the request with its values.
        let written = b"GET /{SEQ} HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let req = b"GET /0 HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let template = crate::template::compile(written, &mut Default::default()).unwrap();
        let targets = [Target {
            label: "GET /".into(),
            host: 0,
            weight: 1,
            bytes: written.to_vec(),
            head: false,
            template: template.map(Arc::new),
        }];
        let mut x = Expander::new(0, 1, crate::shard::Shard::WHOLE, 0);
        let mut plain = Vec::new();
        for _ in 0..10 {
            let mut out = Vec::new();
            if c.wants_write() {
                c.poll_transmit(&targets, &mut x, &mut out);
            }
            server.read_tls(&mut &out[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut buf = [0u8; 256];
            while let Ok(n) = server.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                plain.extend_from_slice(&buf[..n]);
            }
            if plain.ends_with(b"\r\n\r\n") {
                assert_eq!(plain, req, "the request arrives once, intact");
                server.writer().write_all(response).unwrap();
                let mut flight = Vec::new();
                while server.wants_write() {
                    server.write_tls(&mut flight).unwrap();
                }
                return (c, flight, rec, server);
            }
            let mut back = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut back).unwrap();
            }
            assert_eq!(c.on_received(&back, now, &mut rec).step, Step::Continue);
        }
        panic!("the handshake did not complete");
    }

    #[test]
    fn tls_records_at_every_split() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let (_, flight, _, _) = tls_exchange(response);
        for cut in 0..=flight.len() {
            let (mut c, flight, mut rec, _) = tls_exchange(response);
            let now = Instant::now();
            let first = c.on_received(&flight[..cut], now, &mut rec);
            assert_eq!(first.step, Step::Continue, "cut {cut}");
            let second = c.on_received(&flight[cut..], now, &mut rec);
            assert_eq!(second.step, Step::Continue, "cut {cut}");
            assert!(first.answered || second.answered, "cut {cut}");
            assert_eq!(rec.counters.succeeded, 1, "cut {cut}");
            assert_eq!(rec.counters.errored, 0, "cut {cut}");
            assert_eq!(c.in_flight(), 0, "cut {cut}");
        }
    }

    #[test]
    fn tls_garbage_and_close_notify_end_the_connection() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
        // A record that is not TLS: a read error with its cause, the request failed.
        let (mut c, _, mut rec, _) = tls_exchange(response);
        let got = c.on_received(b"\x17\x03\x03\x00\x05garbage", Instant::now(), &mut rec);
        assert_eq!(got.step, Step::Close);
        assert_eq!(rec.counters.errored, 1);
        assert!(rec.first_errors.get(ErrorKind::Read).is_some());
        // The server's response is cut short by close_notify: EOF mid-body, a read error.
        let (mut c, flight, mut rec, mut server) = tls_exchange(response);
        assert_eq!(
            c.on_received(&flight, Instant::now(), &mut rec).step,
            Step::Continue
        );
        server.send_close_notify();
        let mut alert = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut alert).unwrap();
        }
        assert_eq!(
            c.on_received(&alert, Instant::now(), &mut rec).step,
            Step::Close
        );
        assert_eq!((rec.counters.succeeded, rec.counters.errored), (0, 1));
        assert_eq!(
            rec.counters.errors_read, 1,
            "a body cut short is a read error"
        );
    }
}
