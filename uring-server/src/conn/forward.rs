//! Forwarding: a request handed to the proxy, and the proxy's word on it. The response
//! reaches the connection through a [`ForwardSink`] (HTTP/1.x bytes in the output, or an
//! HTTP/2 stream's frames: `h2.rs`); an outcome says how the exchange went.

use super::*;

use crate::metrics::Route;
use crate::observe::Answered;
use crate::proxy::headers::ClientFraming;
use crate::proxy::upstream::{ClientSide, ResponseSink};
use crate::proxy::{conn_of, stream_of, ClientId, ClientOutput, UpstreamLog};
pub use crate::proxy::{Forward, ForwardOutcome};
use uring_common::http::ResponseHead;

impl Conn {
    /// The proxy's word on the request forwarded on `stream` (0: HTTP/1.x). Its response,
    /// if any, is in the output already, through [`ForwardSink`].
    pub fn on_forward<H: Handler>(
        &mut self,
        stream: u32,
        outcome: ForwardOutcome,
        ctx: &mut Ctx<'_, H>,
    ) {
        if stream != 0 {
            return self.h2_on_forward(stream, outcome, ctx);
        }
        if !matches!(self.answer, Answer::Upstream { .. }) {
            return;
        }
        self.last_activity = ctx.now;
        self.count_proxied(outcome, ctx);
        match outcome {
            ForwardOutcome::Progress => return,
            ForwardOutcome::Upgraded => return self.start_tunnel(),
            ForwardOutcome::Done { keep_alive, log } => {
                self.end_tunnel();
                self.log_proxied(None, log, ctx);
                if !keep_alive {
                    self.phase = Phase::CloseAfterFlush;
                }
            }
            ForwardOutcome::Failed { status, side, log } => {
                let mut w = ResponseWriter::new(
                    &mut self.out,
                    ctx.date,
                    side.head_only,
                    side.keep_alive && !self.draining,
                    side.http10,
                );
                w.respond(
                    status,
                    &[("Content-Type", b"text/plain")],
                    gateway_body(status),
                );
                let body_bytes = w.body_len;
                if !w.keep_alive {
                    self.phase = Phase::CloseAfterFlush;
                }
                self.log_proxied(Some((status, body_bytes)), log, ctx);
            }
            ForwardOutcome::Abort { reset, log } => {
                // Never let a truncated body look complete, never lose what is queued
                // before it: the output goes out, then a close (a reset when the body
                // was close-delimited).
                self.end_tunnel();
                self.log_proxied(None, log, ctx);
                self.answer = Answer::None;
                self.phase = match reset {
                    true => Phase::ResetAfterFlush,
                    false => Phase::CloseAfterFlush,
                };
                return;
            }
        }
        self.answer = Answer::None;
        if self.phase == Phase::Open {
            self.pump(ctx);
        }
    }

    /// Count a proxied request in the metrics once its status is known: from the head the
    /// proxy wrote into `out` (it is there at the first outcome that follows it), or the
    /// status we answer ourselves.
    pub(super) fn count_proxied<H: Handler>(
        &mut self,
        outcome: ForwardOutcome,
        ctx: &mut Ctx<'_, H>,
    ) {
        let Answer::Upstream {
            status_at: Some(at),
            since,
            ..
        } = self.answer
        else {
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
        if let Answer::Upstream { status_at, .. } = &mut self.answer {
            *status_at = None;
        }
        if let Some(log) = ctx.log.as_deref_mut() {
            log.proxied(status, ctx.now.saturating_duration_since(since));
        }
    }

    /// The access log line of a proxied request, from the request line kept at dispatch
    /// (`forward_log`). `answered`: the status and body length we answered ourselves.
    fn log_proxied<H: Handler>(
        &mut self,
        answered: Option<(u16, u64)>,
        upstream: UpstreamLog,
        ctx: &mut Ctx<'_, H>,
    ) {
        let Answer::Upstream { since, .. } = self.answer else {
            return;
        };
        log_proxied_line(&self.forward_log, since, false, answered, upstream, ctx);
    }

    /// Keep what the access log line of a forwarded request needs (only with an access
    /// log): its request line, Host, Referer and User-Agent, as a head parsed again for
    /// the line.
    pub(super) fn keep_for_log<H: Handler>(
        &mut self,
        head: &RequestHead<'_, '_>,
        ctx: &Ctx<'_, H>,
    ) {
        keep_line_for_log(head, ctx, &mut self.forward_log);
    }

    /// A complete request for the proxy, once, with its stream (0: HTTP/1.x).
    #[inline]
    pub fn take_forward(&mut self) -> Option<(u32, Forward)> {
        if let Answer::Upstream { request, .. } = &mut self.answer {
            if let Some(f) = request.take() {
                return Some((0, f));
            }
        }
        self.proto.h2_mut()?.forwards.pop_front()
    }

    /// Waiting for (or receiving) a forwarded request's response.
    #[inline]
    pub fn is_forwarding(&self) -> bool {
        matches!(self.answer, Answer::Upstream { .. })
            || self.proto.h2().is_some_and(|h| !h.proxied.is_empty())
    }

    /// Each forwarded request's stream (0: HTTP/1.x) and the response bytes held for it,
    /// for the proxy's back-pressure.
    pub fn each_forwarded(&self, mut f: impl FnMut(u32, usize)) {
        if let Answer::Upstream { .. } = self.answer {
            return f(0, self.out.len());
        }
        if let Some(h2) = self.proto.h2() {
            for p in &h2.proxied {
                f(p.id, self.out.len() + h2.held_for(p.id));
            }
        }
    }

    /// A forwarded request's stream the client reset, once: the proxy drops the request
    /// (synchronously), and the stream's slot counts toward the concurrency limit no more.
    pub fn take_abandoned(&mut self) -> Option<u32> {
        let h2 = self.proto.h2_mut()?;
        let stream = h2.abandoned.pop()?;
        h2.conn.work_cancelled(stream);
        Some(stream)
    }
}

/// The body of a 502, 503 or 504 we answer for an upstream, whatever the protocol.
pub(super) fn gateway_body(status: u16) -> &'static [u8] {
    match status {
        502 => b"Bad Gateway\n",
        503 => b"Service Unavailable\n",
        _ => b"Gateway Timeout\n",
    }
}

/// Keep `head`'s request line, Host, Referer and User-Agent in `line` for the access log
/// line of a forwarded request (nothing without an access log).
pub(super) fn keep_line_for_log<H: Handler>(
    head: &RequestHead<'_, '_>,
    ctx: &Ctx<'_, H>,
    line: &mut Vec<u8>,
) {
    line.clear();
    if !ctx.log.as_deref().is_some_and(RequestLog::has_access_log) {
        return;
    }
    line.extend_from_slice(head.method.as_bytes());
    line.push(b' ');
    line.extend_from_slice(head.target.as_bytes());
    // Parsed again as HTTP/1.x for the line; an HTTP/2 request's version is put back then.
    line.extend_from_slice(match head.version {
        Version::Http10 => b" HTTP/1.0\r\n",
        Version::Http11 | Version::Http2 => b" HTTP/1.1\r\n",
    });
    // Host too: the log parses this as a request again, and HTTP/1.1 requires it.
    let host = head.host.or_else(|| head.header("Host"));
    for (name, value) in [
        ("Host", host),
        ("Referer", head.header("Referer")),
        ("User-Agent", head.header("User-Agent")),
    ] {
        if let Some(v) = value {
            line.extend_from_slice(name.as_bytes());
            line.extend_from_slice(b": ");
            line.extend_from_slice(v);
            line.extend_from_slice(b"\r\n");
        }
    }
    line.extend_from_slice(b"\r\n");
}

/// The access log line of a proxied request, from the line [`keep_line_for_log`] kept.
/// `answered`: the status and body length we answered ourselves.
pub(super) fn log_proxied_line<H: Handler>(
    line: &[u8],
    since: Instant,
    http2: bool,
    answered: Option<(u16, u64)>,
    upstream: UpstreamLog,
    ctx: &mut Ctx<'_, H>,
) {
    let Some(log) = ctx.log.as_deref_mut() else {
        return;
    };
    if line.is_empty() {
        return;
    }
    let (status, body_bytes) =
        answered.unwrap_or((upstream.status.unwrap_or(502), upstream.body_bytes));
    let mut storage = uring_common::http::new_header_storage();
    if let Ok(Parsed::Complete(mut head)) = parse_request(line, &mut storage, &Limits::default()) {
        if http2 {
            head.version = Version::Http2;
        }
        log.answered_proxied(
            &Answered {
                head: &head,
                status,
                route: Route::Proxy,
                body_bytes,
                arrived: since,
                date: ctx.date,
            },
            &upstream,
        );
    }
}

/// Where the proxy puts a request's response: the connection's output (HTTP/1.x, stream
/// 0), or an HTTP/2 stream of it.
pub struct ForwardSink<'a> {
    conn: &'a mut Conn,
    stream: u32,
}

impl ResponseSink for ForwardSink<'_> {
    fn head(
        &mut self,
        resp: &ResponseHead<'_, '_>,
        date: &[u8; 29],
        side: ClientSide,
    ) -> (ClientFraming, bool) {
        match self.stream {
            0 => self.conn.out.head(resp, date, side),
            s => self.conn.h2_proxied_head(s, resp, date),
        }
    }

    fn switching(&mut self, resp: &ResponseHead<'_, '_>, date: &[u8; 29]) {
        match self.stream {
            0 => self.conn.out.switching(resp, date),
            // The machine switches only for a request that asked, and an HTTP/2 one
            // never does.
            _ => debug_assert!(false, "101 on an HTTP/2 stream"),
        }
    }

    #[inline]
    fn body(&mut self, bytes: &[u8], framing: ClientFraming) {
        match self.stream {
            0 => self.conn.out.body(bytes, framing),
            s => self.conn.h2_proxied_body(s, bytes),
        }
    }

    fn end(&mut self, framing: ClientFraming) {
        match self.stream {
            0 => self.conn.out.end(framing),
            s => self.conn.h2_proxied_end(s),
        }
    }

    #[inline]
    fn pending(&self) -> usize {
        match self.stream {
            0 => self.conn.out.len(),
            s => self.conn.out.len() + self.conn.proto.h2().map_or(0, |h| h.held_for(s)),
        }
    }
}

/// The worker's connections, indexed by slot, as the proxy puts responses into them.
impl ClientOutput for Vec<Conn> {
    type Sink<'a> = ForwardSink<'a>;

    #[inline]
    fn sink(&mut self, client: ClientId) -> ForwardSink<'_> {
        ForwardSink {
            conn: &mut self[conn_of(client) as usize],
            stream: stream_of(client),
        }
    }
}
