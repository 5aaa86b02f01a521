//! Forwarding: a request handed to the proxy, and the proxy's word on it.

use super::*;

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

    /// Count a proxied request in the metrics once its status is known: from the head the
    /// proxy wrote into `out` (it is there at the first outcome that follows it), or the
    /// status we answer ourselves. (Proxied requests are not in the access log.)
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
