//! HTTP/2 on a connection (RFC 9113): the shared sans-IO codec
//! (`uring_common::h2::Connection`) does frames, HPACK, streams and flow control; this
//! file turns its events into exchanges. Each complete request (head and whole body)
//! goes through the same `crate::exchange::answer` as an HTTP/1.1 one, with a
//! [`ResponseWriter`] that fills [`ResponseParts`]; the parts become a HEADERS frame and
//! DATA frames as the peer's windows allow. A file body streams through the connection's
//! one `FileStream` (ring reads, never more than the stream's window at once); other
//! streams' file bodies wait their turn.
//!
//! The connection becomes HTTP/2 when its first bytes are the client preface: with prior
//! knowledge on a cleartext listener, after ALPN `h2` on a TLS one (the client sends the
//! same preface there). `--http2 off` leaves every connection HTTP/1.1.

use uring_common::h2::{
    ErrorCode, Event as H2Event, Events, Field, FieldRange, HeadersKind, Pseudo, StreamId, PREFACE,
};
use uring_common::http::HEADER_CAPACITY;

use super::forward;
use super::h2_state::{Outgoing, Pending, Proxied, H2};
use super::*;
use crate::exchange::Outcome;
use crate::proxy::headers::{
    client_content_length, each_client_field, ClientFraming, ContentLength,
};
use uring_common::http::ResponseHead;

/// What the first bytes of a connection say about its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sniff {
    /// Not the HTTP/2 preface: HTTP/1.1.
    Http1,
    /// The whole preface: HTTP/2.
    Http2,
    /// A prefix of the preface so far: wait for more.
    NeedMore,
}

/// Whether `seen` (the connection's first bytes) is, starts, or cannot be the preface.
pub(super) fn sniff(seen: &[u8]) -> Sniff {
    let n = seen.len().min(PREFACE.len());
    if seen[..n] != PREFACE[..n] {
        Sniff::Http1
    } else if n == PREFACE.len() {
        Sniff::Http2
    } else {
        Sniff::NeedMore
    }
}

impl Conn {
    /// Whether this connection speaks HTTP/2.
    #[inline]
    pub fn is_http2(&self) -> bool {
        matches!(self.proto, Proto::Http2(_))
    }

    /// The HTTP/2 state out of the connection, for handlers that need both; nothing
    /// they call may ask for the protocol before [`Conn::put_h2`] puts it back (it
    /// reads HTTP/1.1 meanwhile).
    fn take_h2(&mut self) -> Option<Box<H2>> {
        match std::mem::replace(&mut self.proto, Proto::Http1) {
            Proto::Http2(h2) => Some(h2),
            other => {
                self.proto = other;
                None
            }
        }
    }

    fn put_h2(&mut self, h2: Box<H2>) {
        self.proto = Proto::Http2(h2);
    }

    /// The first plaintext bytes of a connection: HTTP/2's preface switches it over (and
    /// is fed to the codec with whatever follows); anything else is HTTP/1.1. Returns true
    /// when the bytes were taken here.
    pub(super) fn sniff_http2<H: Handler>(&mut self, data: &[u8], ctx: &mut Ctx<'_, H>) -> bool {
        let Some(config) = ctx.http2 else {
            self.proto = Proto::Http1;
            return false;
        };
        let verdict = if self.rbuf.is_empty() {
            sniff(data)
        } else {
            self.rbuf.extend_from_slice(data);
            sniff(&self.rbuf)
        };
        match verdict {
            Sniff::Http1 => {
                self.proto = Proto::Http1;
                if !self.rbuf.is_empty() {
                    // The held-back prefix and the new bytes are in rbuf: answer them.
                    self.pump(ctx);
                    return true;
                }
                false
            }
            Sniff::NeedMore => {
                if self.rbuf.is_empty() {
                    self.rbuf.extend_from_slice(data);
                }
                true
            }
            Sniff::Http2 => {
                self.proto = Proto::Http2(Box::new(H2::new(config.clone(), ctx.now)));
                if let Some(log) = ctx.log.as_deref_mut() {
                    log.http2(true);
                }
                // The head timer that runs from accept goes on until the first request's
                // HEADERS: a peer that sends the preface and nothing more is closed like
                // an HTTP/1.1 one that sends half a head.
                let input = std::mem::take(&mut self.rbuf);
                let input: &[u8] = if input.is_empty() { data } else { &input };
                self.on_h2_data(input, ctx);
                true
            }
        }
    }

    /// Bytes of an HTTP/2 connection.
    pub(super) fn on_h2_data<H: Handler>(&mut self, data: &[u8], ctx: &mut Ctx<'_, H>) {
        let Some(mut h2) = self.take_h2() else {
            return;
        };
        if h2.conn.recv(data, ctx.now, &mut h2.events).is_err() && !h2.failed {
            h2.failed = true;
            if let Some(log) = ctx.log.as_deref_mut() {
                log.http2_closed(close_reason(h2.conn.counters()));
            }
        }
        let events = std::mem::take(&mut h2.events);
        for ev in events.iter() {
            self.on_h2_event(&mut h2, *ev, &events, ctx);
        }
        h2.events = events;
        self.put_h2(h2);
        self.h2_pump(ctx);
    }

    fn on_h2_event<H: Handler>(
        &mut self,
        h2: &mut H2,
        ev: H2Event,
        events: &Events,
        ctx: &mut Ctx<'_, H>,
    ) {
        match ev {
            H2Event::Headers {
                stream,
                kind: HeadersKind::Request,
                pseudo,
                fields,
                end_stream,
                ..
            } => {
                self.reading = Reading::Idle;
                if end_stream {
                    let view = RequestView::from_events(events, &pseudo, fields);
                    if self.h2_dispatch(h2, stream, &view, &[], ctx) {
                        return;
                    }
                    // Deferred: keep a copy for the handler's wake-up.
                    let mut p = Pending::from_view(stream, &view);
                    p.complete = true;
                    h2.pending.push(p);
                    h2.deferred = true;
                } else {
                    let view = RequestView::from_events(events, &pseudo, fields);
                    h2.pending.push(Pending::from_view(stream, &view));
                }
            }
            // Trailers end a request body; their fields are not passed on.
            H2Event::Headers {
                stream,
                kind: HeadersKind::Trailers,
                ..
            } => self.h2_body_done(h2, stream, ctx),
            H2Event::Headers { .. } => {}
            H2Event::HeadersTooLarge { stream, .. } => {
                self.h2_refuse(h2, stream, 431, None, ctx);
            }
            H2Event::Data {
                stream,
                data,
                end_stream,
                ..
            } => {
                let max = ctx.limits.max_body_bytes;
                if let Some(p) = h2.pending.iter_mut().find(|p| p.id == stream) {
                    let bytes = events.data(data);
                    if p.body.len() as u64 + bytes.len() as u64 > max {
                        p.too_large = true;
                    } else {
                        p.body.extend_from_slice(bytes);
                    }
                }
                if end_stream {
                    self.h2_body_done(h2, stream, ctx);
                }
            }
            H2Event::Reset { stream, .. } => {
                // A proxied request's work runs on until the proxy drops it (the slot
                // stays held until then: rapid reset cannot pile up upstream work); any
                // other answer was complete or stops here.
                let proxied = h2.proxied.iter().any(|p| p.id == stream);
                h2.forget(stream);
                if !proxied {
                    h2.conn.work_cancelled(stream);
                }
                if h2.file_stream == Some(stream) {
                    // The peer no longer wants this body: stop reading it.
                    h2.file_stream = None;
                    h2.file_backlog.clear();
                    if self.answer.file().is_some_and(|f| !f.read_in_flight) {
                        self.answer = Answer::None;
                    }
                }
            }
            H2Event::SendReady { .. }
            | H2Event::GoAway { .. }
            | H2Event::Settings
            | H2Event::SettingsAcked
            | H2Event::PingAck { .. } => {}
        }
    }

    /// A request's body is complete: answer it.
    fn h2_body_done<H: Handler>(&mut self, h2: &mut H2, stream: StreamId, ctx: &mut Ctx<'_, H>) {
        let Some(i) = h2.pending.iter().position(|p| p.id == stream) else {
            return;
        };
        let mut p = h2.pending.swap_remove(i);
        p.complete = true;
        if p.too_large {
            return self.h2_refuse(h2, stream, 413, Some(&p.view()), ctx);
        }
        let body = std::mem::take(&mut p.body);
        if !self.h2_dispatch(h2, stream, &p.view(), &body, ctx) {
            p.body = body;
            h2.pending.push(p);
            h2.deferred = true;
        }
    }

    /// Answer with a status of our own (a request we refuse), ending the stream; logged
    /// with its request line when its head was read (not for a header list too large).
    fn h2_refuse<H: Handler>(
        &mut self,
        h2: &mut H2,
        stream: StreamId,
        status: u16,
        request: Option<&RequestView<'_>>,
        ctx: &mut Ctx<'_, H>,
    ) {
        h2.forget(stream);
        if let Some(log) = ctx.log.as_deref_mut() {
            let mut line = Vec::new();
            if let Some(r) = request {
                line.extend_from_slice(r.method);
                line.push(b' ');
                line.extend_from_slice(r.path);
                line.extend_from_slice(b" HTTP/2.0");
            }
            log.refused(status, &line, ctx.date);
            log.http2(false);
        }
        let mut w = ResponseWriter::for_parts(&mut h2.parts, ctx.date, false);
        let body: &[u8] = match status {
            413 => b"Content Too Large\n",
            431 => b"Request Header Fields Too Large\n",
            _ => b"Bad Request\n",
        };
        w.respond(status, &[("content-type", b"text/plain")], body);
        self.h2_send_parts(h2, stream, None);
    }

    /// Hand a complete request to the routes; false when the handler deferred it.
    fn h2_dispatch<H: Handler>(
        &mut self,
        h2: &mut H2,
        stream: StreamId,
        view: &RequestView<'_>,
        body: &[u8],
        ctx: &mut Ctx<'_, H>,
    ) -> bool {
        let mut storage: HeaderStorage<'_> = [const { MaybeUninit::uninit() }; HEADER_CAPACITY];
        let head = match view.head(&mut storage, body.len()) {
            Some(head) => head,
            None => {
                // Not text where HTTP needs text, or more fields than we keep.
                self.h2_refuse(h2, stream, 400, Some(view), ctx);
                return true;
            }
        };
        let req = Request { head: &head, body };
        let limited = match ctx.client_limits {
            Some(l) => l.admit_request(self.client.peer, req.path(), ctx.now),
            None => None,
        };
        if let Some(secs) = limited {
            let mut w = ResponseWriter::for_parts(&mut h2.parts, ctx.date, head.method == "HEAD");
            let log = ctx.log.as_deref_mut();
            crate::exchange::too_many_requests(&req, &mut w, log, ctx.now, ctx.date, secs);
            self.h2_send_parts(h2, stream, None);
            return true;
        }
        if let Some(route) = ctx.handler.upstream_for(&req) {
            // The stream ends with the connection only if the client says so (GOAWAY),
            // never because of one response: the upstream request is keep-alive for us.
            match Forward::new(route, &head, body, self.client, true) {
                Ok(forward) => {
                    let mut line = Vec::new();
                    forward::keep_line_for_log(&head, ctx, &mut line);
                    h2.proxied.push(Proxied {
                        id: stream,
                        since: ctx.now,
                        line,
                    });
                    h2.forwards.push_back((stream, forward));
                }
                Err(e) => {
                    let status = Refusal::Upstream(e).status();
                    self.h2_refuse(h2, stream, status, Some(view), ctx)
                }
            }
            return true;
        }
        let head_only = head.method == "HEAD";
        let mut w = ResponseWriter::for_parts(&mut h2.parts, ctx.date, head_only);
        let log = ctx.log.as_deref_mut();
        match crate::exchange::answer(ctx.handler, &req, &mut w, log, ctx.now, ctx.date) {
            Outcome::Deferred => {
                // Counted again when it is handed over after the wake-up.
                if let Some(l) = ctx.client_limits {
                    l.refund(self.client.peer, req.path(), ctx.now);
                }
                false
            }
            Outcome::Answered { file, .. } => {
                self.h2_send_parts(h2, stream, file);
                true
            }
        }
    }

    /// The answer in `h2.parts` goes out: HEADERS, then what the windows take of the
    /// body; the rest (or a file body) waits.
    fn h2_send_parts(&mut self, h2: &mut H2, stream: StreamId, file: Option<FileBody>) {
        let parts = &h2.parts;
        let mut len_buf = [0u8; 20];
        let length = parts
            .content_length
            .map(|len| (&b"content-length"[..], decimal(len, &mut len_buf)));
        let mut stack = [(&b""[..], &b""[..]); FIELDS_ON_STACK];
        let mut heap = Vec::new();
        let fields = gather(parts.fields().chain(length), &mut stack, &mut heap);
        let no_body = parts.body.is_empty() && file.is_none();
        if h2
            .conn
            .send_response(stream, parts.status, fields, no_body)
            .is_err()
        {
            return;
        }
        if !parts.body.is_empty() {
            let taken = h2
                .conn
                .send_data(stream, &parts.body, file.is_none())
                .unwrap_or(parts.body.len());
            if taken < parts.body.len() {
                h2.outgoing.push_back(Outgoing {
                    id: stream,
                    body: parts.body.clone(),
                    sent: taken,
                    end: file.is_none(),
                });
            }
        }
        if let Some(body) = file {
            h2.files.push_back((stream, body));
        }
    }

    /// Move what can move: bodies waiting for window, the next file body, deferred
    /// requests after a wake-up; then the codec's frames into the output.
    pub(super) fn h2_pump<H: Handler>(&mut self, ctx: &mut Ctx<'_, H>) {
        let Some(mut h2) = self.take_h2() else {
            return;
        };
        // Bodies that waited for window, oldest first; one whose stream's window is shut
        // does not hold back the others. A proxied body sent whole before its end leaves
        // the queue: the next piece goes straight to the codec again.
        h2.outgoing.retain_mut(|o| {
            let rest = &o.body[o.sent..];
            match h2.conn.send_data(o.id, rest, o.end) {
                Ok(n) => {
                    o.sent += n;
                    o.sent < o.body.len()
                }
                Err(_) => false,
            }
        });
        // The file body in progress: what its window did not take.
        if let Some(stream) = h2.file_stream {
            if !h2.file_backlog.is_empty() {
                let last = self.answer.file().is_none();
                match h2.conn.send_data(stream, &h2.file_backlog, last) {
                    Ok(n) => {
                        h2.file_backlog.drain(..n);
                    }
                    Err(_) => h2.file_backlog.clear(),
                }
            }
            if h2.file_backlog.is_empty() && self.answer.file().is_none() {
                h2.file_stream = None;
            }
        }
        // The next file body, once the previous one is done.
        if h2.file_stream.is_none() && self.answer.file().is_none() {
            if let Some((stream, body)) = h2.files.pop_front() {
                h2.file_stream = Some(stream);
                self.answer = Answer::File(FileStream {
                    body: body.zero_copy(false),
                    read_in_flight: false,
                    head_in_splice: 0,
                });
            }
        }
        // Deferred requests, after the handler's wake-up.
        if !h2.deferred {
            let mut i = 0;
            while i < h2.pending.len() {
                if !h2.pending[i].complete {
                    i += 1;
                    continue;
                }
                let mut p = h2.pending.swap_remove(i);
                let body = std::mem::take(&mut p.body);
                if !self.h2_dispatch(&mut h2, p.id, &p.view(), &body, ctx) {
                    p.body = body;
                    h2.pending.push(p);
                    h2.deferred = true;
                    break;
                }
            }
        }
        if self.draining && !h2.goaway_sent {
            h2.conn.goaway(ErrorCode::NO_ERROR);
            h2.goaway_sent = true;
        }
        h2.conn.poll_transmit(&mut self.out);
        // Finished: an error (its GOAWAY is queued), the peer gone, or GOAWAY exchanged
        // and every stream answered in full.
        let done = h2.failed || self.peer_eof || (h2.conn.is_closed() && h2.idle());
        if done && self.phase == Phase::Open {
            self.phase = Phase::CloseAfterFlush;
        }
        self.put_h2(h2);
    }

    /// Shutdown began: GOAWAY with the last stream processed; the streams in flight
    /// finish, then the connection closes (at once when none is open).
    pub(super) fn h2_drain(&mut self) {
        let Proto::Http2(h2) = &mut self.proto else {
            return;
        };
        if !h2.goaway_sent {
            h2.conn.goaway(ErrorCode::NO_ERROR);
            h2.goaway_sent = true;
            h2.conn.poll_transmit(&mut self.out);
        }
        if h2.conn.is_closed() && h2.idle() && self.phase == Phase::Open {
            self.phase = Phase::CloseAfterFlush;
        }
    }

    /// A chunk of the file body in progress was read: it goes out as DATA.
    pub(super) fn h2_file_chunk(&mut self, data: &[u8], last: bool) {
        let Proto::Http2(h2) = &mut self.proto else {
            return;
        };
        let Some(stream) = h2.file_stream else {
            return;
        };
        match h2.conn.send_data(stream, data, last) {
            Ok(n) if n < data.len() => h2.file_backlog.extend_from_slice(&data[n..]),
            Ok(_) => {}
            Err(_) => {
                h2.file_stream = None;
                self.answer = Answer::None;
            }
        }
        h2.conn.poll_transmit(&mut self.out);
    }

    /// How much of the file body may be read now: what the stream's window takes, once
    /// the previous chunk went out (0: wait).
    pub(super) fn h2_file_read_budget(&self) -> usize {
        let Proto::Http2(h2) = &self.proto else {
            return usize::MAX;
        };
        match h2.file_stream {
            Some(s) if h2.file_backlog.is_empty() => h2.conn.send_capacity(s),
            _ => 0,
        }
    }

    /// HTTP/2 work not yet handed to the socket (bodies waiting for window).
    pub(super) fn h2_busy(&self) -> bool {
        matches!(&self.proto, Proto::Http2(h) if !h.idle() && !h.failed)
    }

    /// A proxied response's head for `stream`: the fields every client gets
    /// (`proxy::headers`), names in lower case as HTTP/2 wants them, and the length when
    /// the upstream gave one. The stream ends with [`Conn::h2_proxied_end`].
    pub(super) fn h2_proxied_head(
        &mut self,
        stream: u32,
        resp: &ResponseHead<'_, '_>,
        date: &[u8; 29],
    ) -> (ClientFraming, bool) {
        let Some(h2) = self.proto.h2_mut() else {
            return (ClientFraming::AsIs, true);
        };
        // Names lowered and values unfolded into one buffer, then borrowed as fields.
        let mut bytes = std::mem::take(&mut h2.scratch);
        bytes.clear();
        let mut spans = std::mem::take(&mut h2.scratch_spans);
        spans.clear();
        let mut add = |name: &[u8], value: &[u8]| {
            let at = bytes.len();
            bytes.extend(name.iter().map(u8::to_ascii_lowercase));
            bytes.extend(value.iter().map(|&b| match b {
                b'\r' | b'\n' => b' ',
                b => b,
            }));
            spans.push((at, name.len(), value.len()));
        };
        each_client_field(resp, date, |n, v, _| add(n.as_bytes(), v));
        let mut len_buf = [0u8; 20];
        match client_content_length(resp) {
            Some(ContentLength::AsSent(v)) => add(b"content-length", v),
            Some(ContentLength::Known(n)) => add(b"content-length", decimal(n, &mut len_buf)),
            None => {}
        }
        let mut stack = [(&b""[..], &b""[..]); FIELDS_ON_STACK];
        let mut heap = Vec::new();
        let each =
            (spans.iter()).map(|&(at, n, v)| (&bytes[at..at + n], &bytes[at + n..at + n + v]));
        let fields = gather(each, &mut stack, &mut heap);
        let _ = h2.conn.send_response(stream, resp.status, fields, false);
        h2.scratch = bytes;
        h2.scratch_spans = spans;
        // The connection stays: one response does not end an HTTP/2 connection.
        (ClientFraming::AsIs, true)
    }

    /// A piece of a proxied body: to the codec as far as the windows take it, the rest
    /// queued behind the stream's earlier bytes.
    pub(super) fn h2_proxied_body(&mut self, stream: u32, bytes: &[u8]) {
        let Some(h2) = self.proto.h2_mut() else {
            return;
        };
        if let Some(o) = h2.outgoing.iter_mut().find(|o| o.id == stream) {
            return o.body.extend_from_slice(bytes);
        }
        let Ok(n) = h2.conn.send_data(stream, bytes, false) else {
            return;
        };
        if n < bytes.len() {
            h2.outgoing.push_back(Outgoing {
                id: stream,
                body: bytes[n..].to_vec(),
                sent: 0,
                end: false,
            });
        }
    }

    /// A proxied body is complete: END_STREAM after its last queued byte.
    pub(super) fn h2_proxied_end(&mut self, stream: u32) {
        let Some(h2) = self.proto.h2_mut() else {
            return;
        };
        match h2.outgoing.iter_mut().find(|o| o.id == stream) {
            Some(o) => o.end = true,
            None => {
                let _ = h2.conn.send_data(stream, &[], true);
            }
        }
    }

    /// The proxy's word on the request of `stream`: the response is in the codec already
    /// (through the sink) or is ours to answer (502/503/504); a cut one resets the stream.
    pub(super) fn h2_on_forward<H: Handler>(
        &mut self,
        stream: u32,
        outcome: ForwardOutcome,
        ctx: &mut Ctx<'_, H>,
    ) {
        let Some(mut h2) = self.take_h2() else {
            return;
        };
        self.last_activity = ctx.now;
        let ended = match outcome {
            // An HTTP/2 request never asks an upstream to switch (RFC 8441 is not
            // supported), so the machine never tunnels a stream.
            ForwardOutcome::Progress | ForwardOutcome::Upgraded => None,
            ForwardOutcome::Done { log, .. } => Some((None, log)),
            ForwardOutcome::Failed { status, log, .. } => {
                let mut w = ResponseWriter::for_parts(&mut h2.parts, ctx.date, false);
                w.respond(
                    status,
                    &[("content-type", b"text/plain")],
                    forward::gateway_body(status),
                );
                let len = w.body_len;
                self.h2_send_parts(&mut h2, stream, None);
                Some((Some((status, len)), log))
            }
            ForwardOutcome::Abort { log, .. } => {
                // The body broke off: a reset tells the client it is cut.
                h2.outgoing.retain(|o| o.id != stream);
                let _ = h2.conn.reset(stream, ErrorCode::INTERNAL_ERROR);
                Some((None, log))
            }
        };
        if let Some((answered, log)) = ended {
            if let Some(i) = h2.proxied.iter().position(|p| p.id == stream) {
                let p = h2.proxied.swap_remove(i);
                let status = answered.map_or(log.status.unwrap_or(502), |(s, _)| s);
                if let Some(l) = ctx.log.as_deref_mut() {
                    l.proxied(status, ctx.now.saturating_duration_since(p.since));
                    l.http2(false);
                }
                forward::log_proxied_line(&p.line, p.since, true, answered, log, ctx);
            }
        }
        self.put_h2(h2);
        self.h2_pump(ctx);
    }

    /// Graceful end of an HTTP/2 connection that timed out (idle, or a peer that
    /// stopped reading or opening its windows): GOAWAY, and close once it is out.
    pub(super) fn h2_goaway(&mut self) {
        if let Proto::Http2(h2) = &mut self.proto {
            if !h2.goaway_sent {
                h2.conn.goaway(ErrorCode::NO_ERROR);
                h2.goaway_sent = true;
            }
            h2.conn.poll_transmit(&mut self.out);
            h2.failed = true;
            self.phase = Phase::CloseAfterFlush;
        }
    }
}

/// A request's pseudo-headers and fields, borrowed from wherever they are kept.
struct RequestView<'a> {
    method: &'a [u8],
    path: &'a [u8],
    authority: &'a [u8],
    fields: FieldsOf<'a>,
}

enum FieldsOf<'a> {
    Events(&'a Events, FieldRange),
    Owned(&'a [u8], &'a [(u32, u32)]),
}

impl<'a> RequestView<'a> {
    fn from_events(events: &'a Events, pseudo: &Pseudo, fields: FieldRange) -> RequestView<'a> {
        let get = |s: Option<uring_common::h2::Span>| s.map_or(&b""[..], |s| events.bytes(s));
        RequestView {
            method: get(pseudo.method),
            path: get(pseudo.path),
            authority: get(pseudo.authority),
            fields: FieldsOf::Events(events, fields),
        }
    }

    fn each(&self, mut f: impl FnMut(&'a [u8], &'a [u8])) {
        match self.fields {
            FieldsOf::Events(events, range) => events.fields(range).for_each(|(n, v)| f(n, v)),
            FieldsOf::Owned(bytes, fields) => {
                let mut at = 0;
                for &(n, v) in fields {
                    let (n, v) = (n as usize, v as usize);
                    f(&bytes[at..at + n], &bytes[at + n..at + n + v]);
                    at += n + v;
                }
            }
        }
    }

    /// The request as the routes see every request: HTTP/2 in the version, the
    /// authority as `Host` (RFC 9113 8.3.1), the body's length as its framing.
    fn head<'h>(
        &self,
        storage: &'h mut HeaderStorage<'a>,
        body_len: usize,
    ) -> Option<RequestHead<'a, 'h>> {
        let text = |b: &'a [u8]| std::str::from_utf8(b).ok();
        let method = text(self.method)?;
        let target = text(self.path)?;
        let mut n = 0;
        let mut ok = true;
        let mut host = (!self.authority.is_empty()).then_some(self.authority);
        self.each(|name, value| {
            if n == storage.len() {
                ok = false;
                return;
            }
            match text(name) {
                Some(name) => {
                    if host.is_none() && name == "host" {
                        host = Some(value);
                    }
                    storage[n].write(httparse::Header { name, value });
                    n += 1;
                }
                None => ok = false,
            }
        });
        if !ok {
            return None;
        }
        // SAFETY: the first `n` entries were written just above.
        let headers = unsafe {
            std::slice::from_raw_parts(storage.as_ptr().cast::<httparse::Header<'a>>(), n)
        };
        Some(RequestHead {
            method,
            target,
            version: Version::Http2,
            headers,
            head_len: 0,
            framing: if body_len > 0 {
                BodyFraming::Length(body_len as u64)
            } else {
                BodyFraming::None
            },
            keep_alive: true,
            expect_continue: false,
            host,
        })
    }
}

impl Pending {
    fn from_view(id: StreamId, view: &RequestView<'_>) -> Pending {
        let mut p = Pending {
            id,
            method: view.method.to_vec(),
            path: view.path.to_vec(),
            authority: view.authority.to_vec(),
            bytes: Vec::new(),
            fields: Vec::new(),
            body: Vec::new(),
            complete: false,
            too_large: false,
        };
        view.each(|n, v| {
            p.bytes.extend_from_slice(n);
            p.bytes.extend_from_slice(v);
            p.fields.push((n.len() as u32, v.len() as u32));
        });
        p
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            path: &self.path,
            authority: &self.authority,
            fields: FieldsOf::Owned(&self.bytes, &self.fields),
        }
    }
}

/// Which defence ended the connection (an index of `metrics::HTTP2_CLOSES`): each kill
/// counter is 0 or 1 on a connection; none set is another protocol error.
fn close_reason(c: &uring_common::h2::Counters) -> usize {
    [
        c.rapid_reset_kills,
        c.continuation_flood_kills,
        c.settings_flood_kills,
        c.ping_flood_kills,
        c.empty_frame_kills,
    ]
    .iter()
    .position(|&k| k > 0)
    .unwrap_or(5)
}

/// Fields a response's HEADERS gathers on the stack: every realistic response.
const FIELDS_ON_STACK: usize = 16;

/// `fields` as one slice: in `stack` when they fit, else in `heap` (one allocation).
fn gather<'f, 's>(
    fields: impl Iterator<Item = Field<'f>>,
    stack: &'s mut [Field<'f>; FIELDS_ON_STACK],
    heap: &'s mut Vec<Field<'f>>,
) -> &'s [Field<'f>] {
    let mut n = 0;
    for field in fields {
        if n < FIELDS_ON_STACK {
            stack[n] = field;
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&stack[..]);
            }
            heap.push(field);
        }
        n += 1;
    }
    if n <= FIELDS_ON_STACK {
        &stack[..n]
    } else {
        &heap[..]
    }
}

/// `v` in decimal, at the end of `buf`.
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[at..];
        }
    }
}
