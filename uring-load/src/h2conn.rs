//! The HTTP/2 client side of one connection, without any IO, beside the HTTP/1 [`Conn`].
//!
//! It takes the same inputs from the engine (connected, bytes, EOF, errors, the time) and
//! gives the same answers, so the engine drives both alike (`crate::wire`). The frames,
//! HPACK, streams and flow control are the shared codec's ([`Connection`] in the client
//! role); this file keeps the load tool's part: requests handed over become streams (up
//! to `--streams` and the server's SETTINGS_MAX_CONCURRENT_STREAMS at once), each
//! response's status and latency is recorded when its stream ends, body bytes are only
//! counted, and every stream that ends otherwise is classed. Streams the server says it
//! never processed (REFUSED_STREAM, or above a GOAWAY's last stream id) are sent again:
//! on this connection while it takes new streams, else handed back to the dispatcher
//! when the connection closes, so that no request is lost or counted twice.
//!
//! [`Conn`]: crate::conn::Conn

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use uring_common::h2::{
    Config, ConnError, Connection, ErrorCode, Event, Events, HeadersKind, Role, StreamId,
};
use uring_common::stats::ErrorKind;

use crate::conn::{Phase, Received, Sink, Step};
use crate::targets::{Pick, Target};
use crate::template::Expander;

#[derive(Debug, Clone, Copy)]
struct Pending {
    /// As HTTP/1's: the hand-over time (closed model) or intended send time (open model).
    latency_from: Instant,
    /// The `-T` deadline runs from here.
    handed_at: Instant,
    pick: Pick,
}

/// A request on its way as a stream.
#[derive(Debug)]
struct Active {
    id: StreamId,
    p: Pending,
    status: u16,
    /// Body bytes of the request not yet taken by flow control (they wait for window).
    body_sent: usize,
    body_len: usize,
    /// A templated request's body not yet sent (an untemplated one is its target's).
    rest: Vec<u8>,
}

/// A target's request taken apart for HTTP/2 (from the HTTP/1 bytes it was serialized
/// to once): the pseudo-headers, the fields HTTP/2 allows, the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: Vec<u8>,
    pub authority: Vec<u8>,
    pub path: Vec<u8>,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Fields of HTTP/1.1 that have no place in HTTP/2 (RFC 9113 8.2.2); `host` becomes
/// `:authority`.
const CONNECTION_SPECIFIC: [&[u8]; 6] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
    b"host",
];

impl Request {
    /// Take an HTTP/1.1 request apart; `None` when it is not one (no head end, no
    /// request line).
    pub fn from_http1(bytes: &[u8]) -> Option<Request> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let mut lines = bytes[..end].split(|&b| b == b'\n').map(trim_cr);
        let mut parts = lines.next()?.splitn(3, |&b| b == b' ');
        let method = parts.next().filter(|m| !m.is_empty())?.to_vec();
        let path = parts.next().filter(|p| !p.is_empty())?.to_vec();
        let mut r = Request {
            method,
            path,
            body: bytes[end + 4..].to_vec(),
            ..Request::default()
        };
        for line in lines {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = line[..colon].to_ascii_lowercase();
            let value = line[colon + 1..].trim_ascii().to_vec();
            if name == b"host" {
                r.authority = value;
            } else if name == b"te" {
                // Only `trailers` may travel in HTTP/2's TE.
                if value.eq_ignore_ascii_case(b"trailers") {
                    r.fields.push((name, value));
                }
            } else if !CONNECTION_SPECIFIC.contains(&name.as_slice()) {
                r.fields.push((name, value));
            }
        }
        Some(r)
    }
}

/// The class and cause of a stream that ended reset: by the server (`reset`), or by us
/// for what the server sent on it (a response larger than our header list limit is
/// `parse`, as HTTP/1.1's too-large head; a window overflow `flow_control`; the rest a
/// malformed response, `protocol`).
fn reset_class(code: ErrorCode, by_peer: bool) -> (ErrorKind, String) {
    if by_peer {
        return (
            ErrorKind::Reset,
            format!("HTTP/2 stream reset by the server ({code})"),
        );
    }
    match code {
        // The codec resets with CANCEL only for a field block over our limit.
        ErrorCode::CANCEL => (
            ErrorKind::Parse,
            format!(
                "HTTP/2 response headers larger than our limit ({} bytes, \
                 SETTINGS_MAX_HEADER_LIST_SIZE): stream reset ({code})",
                client_config().max_header_list_size
            ),
        ),
        ErrorCode::FLOW_CONTROL_ERROR => (
            ErrorKind::FlowControl,
            format!("HTTP/2 stream reset: the server broke flow control ({code})"),
        ),
        _ => (
            ErrorKind::Protocol,
            format!("HTTP/2 stream reset for a malformed response ({code})"),
        ),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The first SETTINGS any connection of the run received (a server sends the same on
/// every connection): the report shows them.
static FIRST_SERVER_SETTINGS: std::sync::OnceLock<uring_common::h2::PeerSettings> =
    std::sync::OnceLock::new();

/// The server's SETTINGS as the run's first HTTP/2 connection received them.
pub fn server_settings() -> Option<uring_common::h2::PeerSettings> {
    FIRST_SERVER_SETTINGS.get().copied()
}

/// Streams the server refused or left unprocessed, sent again (all threads, the whole
/// process: warm-up included).
static RETRIED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many requests were sent again because the server never processed them.
pub fn retried() -> u64 {
    RETRIED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The codec's settings for a load generator: large windows so that a big response
/// runs at full speed (the connection window is raised by the codec's first
/// WINDOW_UPDATE), credit handed back as soon as body bytes are counted.
pub fn client_config() -> Config {
    Config {
        initial_window_size: 8 << 20,
        connection_window: 64 << 20,
        max_concurrent_streams: 0,
        max_header_list_size: 256 << 10,
        max_header_block_bytes: 512 << 10,
        auto_release_window: true,
        ..Config::default()
    }
}

pub struct H2Conn {
    /// `--streams`: most streams open at once (the server's limit may be lower).
    depth: usize,
    phase: Phase,
    h2: Option<Connection>,
    events: Events,
    /// Requests handed over and not yet opened as streams, oldest first.
    waiting: VecDeque<Pending>,
    active: Vec<Active>,
    tls: Option<Box<ClientConnection>>,
    plain: Vec<u8>,
    /// Frames before they are sealed in TLS records.
    frames: Vec<u8>,
    /// Each target's request, taken apart on first use.
    requests: Vec<Option<Request>>,
    /// The server's SETTINGS arrived on this socket: it speaks HTTP/2.
    settings_seen: bool,
    /// Why the server is closing (its GOAWAY with an error), for streams that end unanswered.
    goaway_cause: Option<String>,
    /// The ALPN result was checked (HTTPS).
    alpn_checked: bool,
    /// The server sent GOAWAY: no new streams here.
    goaway: bool,
}

impl H2Conn {
    pub fn new(depth: usize) -> H2Conn {
        let mut events = Events::new();
        events.set_keep_data(false);
        H2Conn {
            depth: depth.max(1),
            phase: Phase::Idle,
            h2: None,
            events,
            waiting: VecDeque::new(),
            active: Vec::with_capacity(depth),
            tls: None,
            plain: Vec::new(),
            frames: Vec::new(),
            requests: Vec::new(),
            settings_seen: false,
            goaway_cause: None,
            alpn_checked: false,
            goaway: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn in_flight(&self) -> usize {
        self.waiting.len() + self.active.len()
    }

    /// The server's SETTINGS as received on the current socket.
    pub fn peer_settings(&self) -> Option<uring_common::h2::PeerSettings> {
        self.h2
            .as_ref()
            .filter(|_| self.settings_seen)
            .map(|h| *h.peer_settings())
    }

    /// Streams at once: `--streams`, the server's SETTINGS_MAX_CONCURRENT_STREAMS, and
    /// one until its SETTINGS arrive (a server that allows fewer than `--streams` would
    /// otherwise have to refuse the first burst).
    fn limit(&self) -> usize {
        let peer = match &self.h2 {
            Some(h) if self.settings_seen => h.peer_settings().max_concurrent_streams,
            _ => 1,
        };
        self.depth.min(peer.max(1) as usize)
    }

    pub fn has_room(&self) -> bool {
        match self.phase {
            Phase::Idle | Phase::Connecting => self.waiting.is_empty(),
            Phase::Open => !self.goaway && self.in_flight() < self.limit(),
            Phase::Draining | Phase::Closed => false,
        }
    }

    pub fn start_connect(&mut self) {
        self.phase = Phase::Connecting;
        self.settings_seen = false;
        self.goaway_cause = None;
        self.alpn_checked = false;
        self.goaway = false;
        self.active.clear();
    }

    pub fn on_connected(&mut self) {
        self.phase = Phase::Open;
        self.h2 = Some(Connection::new(
            Role::Client,
            client_config(),
            Instant::now(),
        ));
    }

    pub fn on_connected_tls(&mut self, tls: ClientConnection) {
        self.on_connected();
        if self.plain.len() < 16 * 1024 {
            self.plain = vec![0; 16 * 1024];
        }
        self.tls = Some(Box::new(tls));
    }

    fn can_open(&self) -> bool {
        self.phase == Phase::Open
            && self.h2.as_ref().is_some_and(|h| h.can_open_stream())
            && self.active.len() < self.limit()
    }

    pub fn wants_write(&self) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        let h2 = self.h2.as_ref().is_some_and(|h| h.pending_output() > 0);
        let body = self.active.iter().any(|a| {
            a.body_sent < a.body_len && self.h2.as_ref().is_some_and(|h| h.send_capacity(a.id) > 0)
        });
        h2 || body
            || (!self.waiting.is_empty() && self.can_open())
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Open streams for the requests waiting (as many as the limits allow), send request
    /// bodies as far as the windows allow, and write the frames (sealed for HTTPS).
    pub fn poll_transmit(&mut self, targets: &[Target], x: &mut Expander, out: &mut Vec<u8>) {
        if self.phase == Phase::Open {
            self.open_streams(targets, x);
        }
        let Some(h2) = self.h2.as_mut() else {
            return;
        };
        let Some(tls) = self.tls.as_deref_mut() else {
            h2.poll_transmit(out);
            return;
        };
        self.frames.clear();
        h2.poll_transmit(&mut self.frames);
        if !self.frames.is_empty() {
            // rustls buffers the plaintext until the handshake is done.
            let _ = tls.writer().write_all(&self.frames);
        }
        while tls.wants_write() {
            if tls.write_tls(out).is_err() {
                break;
            }
        }
    }

    fn open_streams(&mut self, targets: &[Target], x: &mut Expander) {
        let scheme: &[u8] = if self.tls.is_some() {
            b"https"
        } else {
            b"http"
        };
        while self.can_open() {
            let Some(p) = self.waiting.pop_front() else {
                break;
            };
            let t = &targets[p.pick.target as usize];
            let expanded;
            let req = match &t.template {
                None => {
                    let i = p.pick.target as usize;
                    if self.requests.len() <= i {
                        self.requests.resize(i + 1, None);
                    }
                    if self.requests[i].is_none() {
                        self.requests[i] = Request::from_http1(&t.bytes);
                    }
                    self.requests[i].as_ref()
                }
                Some(template) => {
                    expanded = Request::from_http1(x.expand(template));
                    expanded.as_ref()
                }
            };
            let h2 = self.h2.as_mut().expect("an open connection");
            let Some(req) = req else {
                // Not an HTTP request (a raw file that is not one): it cannot be sent.
                self.waiting.push_front(p);
                break;
            };
            // The fields as the codec takes them, without an allocation per request for
            // the usual few (a long list goes to the heap).
            let mut few: [(&[u8], &[u8]); 16] = [(&[], &[]); 16];
            let many: Vec<(&[u8], &[u8])>;
            let pairs = req.fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice()));
            let fields: &[(&[u8], &[u8])] = if req.fields.len() <= few.len() {
                for (slot, f) in few.iter_mut().zip(pairs) {
                    *slot = f;
                }
                &few[..req.fields.len()]
            } else {
                many = pairs.collect();
                &many
            };
            let has_body = !req.body.is_empty();
            match h2.open_stream(
                &req.method,
                scheme,
                &req.authority,
                &req.path,
                fields,
                !has_body,
            ) {
                Ok(id) => {
                    let mut a = Active {
                        id,
                        p,
                        status: 0,
                        body_sent: 0,
                        body_len: req.body.len(),
                        rest: Vec::new(),
                    };
                    if has_body {
                        a.body_sent = h2.send_data(id, &req.body, true).unwrap_or(0);
                        if t.template.is_some() && a.body_sent < a.body_len {
                            a.rest = req.body[a.body_sent..].to_vec();
                        }
                    }
                    self.active.push(a);
                }
                Err(_) => {
                    self.waiting.push_front(p);
                    break;
                }
            }
        }
        self.continue_bodies(targets);
    }

    /// Request bodies that waited for window (only untemplated targets have long ones).
    fn continue_bodies(&mut self, targets: &[Target]) {
        let Some(h2) = self.h2.as_mut() else {
            return;
        };
        for a in &mut self.active {
            if a.body_sent >= a.body_len || h2.send_capacity(a.id) == 0 {
                continue;
            }
            let t = a.p.pick.target as usize;
            let rest = if targets[t].template.is_some() {
                let done = a.body_len - a.rest.len();
                &a.rest[a.body_sent - done..]
            } else {
                match self.requests.get(t).and_then(Option::as_ref) {
                    Some(r) => &r.body[a.body_sent..],
                    None => continue,
                }
            };
            if let Ok(n) = h2.send_data(a.id, rest, true) {
                a.body_sent += n;
            }
        }
    }

    pub fn push_request(&mut self, latency_from: Instant, now: Instant, pick: Pick) {
        self.waiting.push_back(Pending {
            latency_from,
            handed_at: now,
            pick,
        });
    }

    pub fn on_received<R: Sink>(&mut self, data: &[u8], now: Instant, rec: &mut R) -> Received {
        rec.all().counters.bytes_total += data.len() as u64;
        if self.phase != Phase::Open {
            return Received {
                step: Step::Close,
                answered: false,
            };
        }
        let mut answered = false;
        let step = if self.tls.is_some() {
            self.on_tls_records(data, now, rec, &mut answered)
        } else {
            self.on_frames(data, now, rec, &mut answered)
        };
        Received {
            step,
            answered: answered && step == Step::Continue,
        }
    }

    fn on_tls_records<R: Sink>(
        &mut self,
        data: &[u8],
        now: Instant,
        rec: &mut R,
        answered: &mut bool,
    ) -> Step {
        let mut tls = self.tls.take().expect("an HTTPS connection");
        let mut plain = std::mem::take(&mut self.plain);
        let mut input = data;
        let mut step = Step::Continue;
        'feed: while !input.is_empty() {
            if let Err(e) = tls.read_tls(&mut input) {
                step = self.on_error_because(ErrorKind::Read, &format!("TLS read: {e}"), rec);
                break;
            }
            if let Err(e) = tls.process_new_packets() {
                let kind = if tls.is_handshaking() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Read
                };
                let cause = match e {
                    rustls::Error::AlertReceived(
                        rustls::AlertDescription::NoApplicationProtocol,
                    ) => "--http2: the server refused ALPN h2 (it chose no protocol we offered: \
                         no HTTP/2 over TLS there)"
                        .to_string(),
                    _ => format!("TLS: {}", crate::tls::describe_error(&e)),
                };
                step = self.on_error_because(kind, &cause, rec);
                break;
            }
            if !self.alpn_checked && !tls.is_handshaking() {
                self.alpn_checked = true;
                if tls.alpn_protocol() != Some(b"h2") {
                    let chose = match tls.alpn_protocol() {
                        Some(p) => String::from_utf8_lossy(p).into_owned(),
                        None => "no protocol (no ALPN)".to_string(),
                    };
                    let cause = format!("--http2: the server chose {chose} by ALPN, not h2");
                    self.tls = Some(tls);
                    self.plain = plain;
                    return self.on_error_because(ErrorKind::Connect, &cause, rec);
                }
            }
            loop {
                match tls.reader().read(&mut plain) {
                    Ok(0) => {
                        step = self.on_eof(now, rec);
                        break 'feed;
                    }
                    Ok(n) => {
                        step = self.on_frames(&plain[..n], now, rec, answered);
                        if step == Step::Close {
                            break 'feed;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        self.plain = plain;
        self.tls = Some(tls);
        step
    }

    /// Plaintext HTTP/2 frames from the server.
    fn on_frames<R: Sink>(
        &mut self,
        data: &[u8],
        now: Instant,
        rec: &mut R,
        answered: &mut bool,
    ) -> Step {
        let Some(h2) = self.h2.as_mut() else {
            return Step::Close;
        };
        let result = h2.recv(data, now, &mut self.events);
        // Events before a connection error still happened (responses that completed).
        let events = std::mem::take(&mut self.events);
        for ev in events.iter() {
            match *ev {
                Event::Settings => {
                    if !self.settings_seen && FIRST_SERVER_SETTINGS.get().is_none() {
                        if let Some(h2) = &self.h2 {
                            let _ = FIRST_SERVER_SETTINGS.set(*h2.peer_settings());
                        }
                    }
                    self.settings_seen = true;
                    *answered = true;
                }
                Event::Headers {
                    stream,
                    kind,
                    pseudo,
                    end_stream,
                    ..
                } => {
                    if let Some(i) = self.find(stream) {
                        if kind == HeadersKind::Response {
                            self.active[i].status = pseudo.status;
                        }
                        if end_stream && kind != HeadersKind::Informational {
                            self.finish(i, now, rec);
                            *answered = true;
                        }
                    }
                }
                Event::Data {
                    stream,
                    len,
                    end_stream,
                    ..
                } => {
                    rec.all().counters.bytes_body += u64::from(len);
                    if end_stream {
                        if let Some(i) = self.find(stream) {
                            self.finish(i, now, rec);
                            *answered = true;
                        }
                    }
                }
                Event::Reset {
                    stream,
                    code,
                    by_peer,
                    retryable,
                } => {
                    if let Some(i) = self.find(stream) {
                        let a = self.active.swap_remove(i);
                        *answered = true;
                        if retryable {
                            // Never processed by the server: send it again (the oldest
                            // first, so `-T` still bounds it from its first hand-over).
                            self.waiting.push_front(a.p);
                            RETRIED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        } else {
                            let (kind, cause) = reset_class(code, by_peer);
                            rec.all().note_error(kind, &cause);
                            rec.errored(a.p.pick.target, kind);
                        }
                    }
                }
                Event::GoAway { code, debug, .. } => {
                    *answered = true;
                    self.goaway = true;
                    if code != ErrorCode::NO_ERROR {
                        let text = String::from_utf8_lossy(events.bytes(debug));
                        self.goaway_cause = Some(if text.is_empty() {
                            format!("HTTP/2 GOAWAY from the server ({code})")
                        } else {
                            format!("HTTP/2 GOAWAY from the server ({code}: {text})")
                        });
                    }
                }
                _ => {}
            }
        }
        self.events = events;
        if let Err(e) = result {
            return self.conn_error(e, rec);
        }
        let h2 = self.h2.as_ref().expect("an open connection");
        if h2.is_closed() {
            // GOAWAY and no stream left: waiting requests go back to the dispatcher.
            self.fail_active(ErrorKind::Read, rec);
            self.phase = Phase::Closed;
            return Step::Close;
        }
        Step::Continue
    }

    fn conn_error<R: Sink>(&mut self, e: ConnError, rec: &mut R) -> Step {
        let cause = format!("{e} (in the server's frames)");
        let kind = if e.code == ErrorCode::FLOW_CONTROL_ERROR {
            ErrorKind::FlowControl
        } else {
            ErrorKind::Protocol
        };
        if !self.active.is_empty() || !self.waiting.is_empty() {
            rec.all().note_error(kind, &cause);
        }
        self.fail_all_quiet(kind, rec);
        Step::Close
    }

    fn find(&self, stream: StreamId) -> Option<usize> {
        self.active.iter().position(|a| a.id == stream)
    }

    fn finish<R: Sink>(&mut self, i: usize, now: Instant, rec: &mut R) {
        let a = self.active.swap_remove(i);
        let us = now.saturating_duration_since(a.p.latency_from).as_micros() as u64;
        rec.answered(a.p.pick.target, a.status, us);
    }

    /// Streams sent and not answered end with `kind`, or as `goaway` with the server's
    /// reason when its GOAWAY gave one; requests never sent stay for
    /// [`H2Conn::take_unanswered`].
    fn fail_active<R: Sink>(&mut self, kind: ErrorKind, rec: &mut R) {
        if self.active.is_empty() {
            return;
        }
        let kind = match &self.goaway_cause {
            Some(c) => {
                rec.all().note_error(ErrorKind::GoAway, c);
                ErrorKind::GoAway
            }
            None => {
                rec.all().note_error(kind, &kind.generic_cause());
                kind
            }
        };
        for a in self.active.drain(..) {
            rec.errored(a.p.pick.target, kind);
        }
    }

    fn fail_all_quiet<R: Sink>(&mut self, kind: ErrorKind, rec: &mut R) {
        for a in self.active.drain(..) {
            rec.errored(a.p.pick.target, kind);
        }
        for p in self.waiting.drain(..) {
            rec.errored(p.pick.target, kind);
        }
        self.phase = Phase::Closed;
    }

    pub fn on_eof<R: Sink>(&mut self, _now: Instant, rec: &mut R) -> Step {
        if self.phase == Phase::Open {
            if !self.settings_seen {
                // Not an HTTP/2 server (or it closed at once): like HTTP/1, the requests
                // waiting for this socket fail, so a `-n` run cannot spin on it.
                let cause = "the server closed the connection before its HTTP/2 SETTINGS";
                self.on_error_because(ErrorKind::Read, &cause, rec);
            } else {
                self.fail_active(ErrorKind::Read, rec);
            }
        }
        self.phase = Phase::Closed;
        Step::Close
    }

    pub fn on_error_because<R: Sink>(
        &mut self,
        kind: ErrorKind,
        cause: &dyn std::fmt::Display,
        rec: &mut R,
    ) -> Step {
        if self.goaway && matches!(kind, ErrorKind::Read | ErrorKind::Write) {
            // The server is going away (and may reset the socket right after): its streams
            // end with its reason if it gave one, requests never sent go elsewhere.
            if self.goaway_cause.is_none() && !self.active.is_empty() {
                rec.all().note_error(kind, cause);
            }
            self.fail_active(kind, rec);
            self.phase = Phase::Closed;
            return Step::Close;
        }
        if !self.active.is_empty() || !self.waiting.is_empty() {
            rec.all().note_error(kind, cause);
        }
        self.fail_all_quiet(kind, rec);
        Step::Close
    }

    /// `-T`: the oldest request handed over (sent or waiting) bounds the connection.
    pub fn poll_timeout<R: Sink>(&mut self, now: Instant, timeout: Duration, rec: &mut R) -> Step {
        if self.phase != Phase::Open {
            return Step::Continue;
        }
        let oldest = (self.active.iter().map(|a| a.p.handed_at))
            .chain(self.waiting.iter().map(|p| p.handed_at))
            .min();
        match oldest {
            Some(t) if t + timeout <= now => {
                self.fail_stalled(rec);
                let kind = ErrorKind::Timeout;
                if !self.active.is_empty() || !self.waiting.is_empty() {
                    rec.all().note_error(kind, &kind.generic_cause());
                }
                self.fail_all_quiet(kind, rec);
                Step::Close
            }
            _ => Step::Continue,
        }
    }

    /// At the timeout, streams whose request body still waits for the server's window
    /// end as flow-control stalls, not as plain timeouts: the server never let them send.
    fn fail_stalled<R: Sink>(&mut self, rec: &mut R) {
        let mut i = 0;
        while i < self.active.len() {
            let a = &self.active[i];
            if a.body_sent >= a.body_len {
                i += 1;
                continue;
            }
            let cause = format!(
                "HTTP/2 request body stalled: {} of {} bytes sent, the server's flow-control \
                 window stayed closed (no WINDOW_UPDATE) until the timeout (-T)",
                a.body_sent, a.body_len
            );
            let a = self.active.swap_remove(i);
            rec.all().note_error(ErrorKind::FlowControl, &cause);
            rec.errored(a.p.pick.target, ErrorKind::FlowControl);
        }
    }

    /// Requests the server never answered nor refused for good: the engine issues them
    /// again, keeping their latency origin.
    pub fn take_unanswered(&mut self, mut f: impl FnMut(Instant, Pick)) {
        for a in self.active.drain(..) {
            f(a.p.latency_from, a.p.pick);
        }
        for p in self.waiting.drain(..) {
            f(p.latency_from, p.pick);
        }
    }

    pub fn abandon(&mut self) -> usize {
        let n = self.in_flight();
        self.active.clear();
        self.waiting.clear();
        self.phase = Phase::Closed;
        n
    }

    pub fn closed(&mut self) {
        self.active.clear();
        self.waiting.clear();
        self.tls = None;
        self.h2 = None;
        self.phase = Phase::Idle;
    }
}

#[cfg(test)]
mod tests;
