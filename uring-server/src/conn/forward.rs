//! Forwarding: a request handed to the proxy, and the proxy's word on it (the response
//! bytes are in the output already; an outcome says how the exchange went).

use super::*;

use crate::metrics::Route;
use crate::observe::Answered;
use crate::proxy::{ClientOutput, UpstreamLog};
pub use crate::proxy::{Forward, ForwardOutcome};

impl Conn {
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
            ForwardOutcome::Done { keep_alive, log } => {
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
                let body: &[u8] = match status {
                    502 => b"Bad Gateway\n",
                    503 => b"Service Unavailable\n",
                    _ => b"Gateway Timeout\n",
                };
                w.respond(status, &[("Content-Type", b"text/plain")], body);
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
                self.log_proxied(None, log, ctx);
                self.forwarding = false;
                self.phase = match reset {
                    true => Phase::ResetAfterFlush,
                    false => Phase::CloseAfterFlush,
                };
                return;
            }
        }
        self.forwarding = false;
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

    /// The access log line of a proxied request, from the request line kept at dispatch
    /// (`forward_log`). `answered`: the status and body length we answered ourselves.
    fn log_proxied<H: Handler>(
        &mut self,
        answered: Option<(u16, u64)>,
        upstream: UpstreamLog,
        ctx: &mut Ctx<'_, H>,
    ) {
        let Some((log, since)) = ctx.log.as_deref_mut().zip(self.forward_since) else {
            return;
        };
        self.forward_since = None;
        if self.forward_log.is_empty() {
            return;
        }
        let (status, body_bytes) =
            answered.unwrap_or((upstream.status.unwrap_or(502), upstream.body_bytes));
        let mut storage = uring_common::http::new_header_storage();
        if let Ok(Parsed::Complete(head)) =
            parse_request(&self.forward_log, &mut storage, &Limits::default())
        {
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

    /// Keep what the access log line of a forwarded request needs (only with an access
    /// log): its request line, Host, Referer and User-Agent, as a head parsed again for
    /// the line.
    pub(super) fn keep_for_log<H: Handler>(
        &mut self,
        head: &RequestHead<'_, '_>,
        ctx: &Ctx<'_, H>,
    ) {
        self.forward_log.clear();
        self.forward_since = Some(ctx.now);
        if !ctx.log.as_deref().is_some_and(RequestLog::has_access_log) {
            return;
        }
        let l = &mut self.forward_log;
        l.extend_from_slice(head.method.as_bytes());
        l.push(b' ');
        l.extend_from_slice(head.target.as_bytes());
        l.extend_from_slice(match head.version {
            Version::Http10 => b" HTTP/1.0\r\n",
            // HTTP/2 requests are not forwarded yet (conn/h2.rs answers them
            // HTTP_1_1_REQUIRED); the saved line must parse as HTTP/1.x again.
            Version::Http11 | Version::Http2 => b" HTTP/1.1\r\n",
        });
        // Host too: the log parses this as a request again, and HTTP/1.1 requires it.
        for name in ["Host", "Referer", "User-Agent"] {
            if let Some(v) = head.header(name) {
                l.extend_from_slice(name.as_bytes());
                l.extend_from_slice(b": ");
                l.extend_from_slice(v);
                l.extend_from_slice(b"\r\n");
            }
        }
        l.extend_from_slice(b"\r\n");
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
}

/// The worker's connections, indexed by slot, as the proxy writes responses into them.
impl ClientOutput for Vec<Conn> {
    fn output(&mut self, client: crate::proxy::machine::ClientId) -> &mut Vec<u8> {
        self[client as usize].forward_out()
    }
}
