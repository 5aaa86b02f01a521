//! A complete request (head and whole body) goes to an upstream (`forward.rs`) or to the
//! routes through the protocol-neutral exchange (`crate::exchange`), answered as HTTP/1.x.

use super::*;
use crate::exchange::Outcome;

impl Conn {
    pub(super) fn dispatch<H: Handler>(
        &mut self,
        head: &RequestHead<'_, '_>,
        body: &[u8],
        ctx: &mut Ctx<'_, H>,
    ) {
        self.reading = Reading::Idle;
        let keep_alive = head.keep_alive && !ctx.draining && !self.draining;
        // Not on TLS: the client's close_notify is data on the socket, and unread at the
        // close it would reset the connection under our response.
        self.quiet_close = !head.keep_alive && !self.is_tls();
        if let Some(l) = ctx.client_limits {
            let path = Request {
                head: shorten(head),
                body,
            }
            .path();
            if let Some(secs) = l.admit_request(self.client.peer, path, ctx.now) {
                return self.answer_limited(head, body, keep_alive, secs, ctx);
            }
        }
        let route = ctx.handler.upstream_for(&Request {
            head: shorten(head),
            body,
        });
        if let Some(route) = route {
            let forward = match Forward::new(route, head, body, self.client, keep_alive) {
                Ok(f) => f,
                Err(e) => {
                    return self.refuse_counted(Refusal::Upstream(e), head.target.as_bytes(), ctx)
                }
            };
            self.answer = Answer::Upstream {
                request: Some(forward),
                status_at: Some(self.out.len()),
                since: ctx.now,
            };
            self.keep_for_log(head, ctx);
            return;
        }
        let mut w = ResponseWriter::new(
            &mut self.out,
            ctx.date,
            head.method == "HEAD",
            keep_alive,
            head.version == Version::Http10,
        );
        let req = Request {
            head: shorten(head),
            body,
        };
        let log = ctx.log.as_deref_mut();
        let keep = match crate::exchange::answer(ctx.handler, &req, &mut w, log, ctx.now, ctx.date)
        {
            // The request stays unconsumed; `resume` hands it over again (and counts it
            // against its rate limit then).
            Outcome::Deferred => {
                if let Some(l) = ctx.client_limits {
                    l.refund(self.client.peer, req.path(), ctx.now);
                }
                self.answer = Answer::Deferred;
                return;
            }
            Outcome::Answered {
                keep_alive, file, ..
            } => {
                if let Some(body) = file {
                    self.answer = Answer::File(FileStream {
                        body,
                        read_in_flight: false,
                        head_in_splice: 0,
                    });
                }
                keep_alive
            }
        };
        if !keep {
            self.phase = Phase::CloseAfterFlush;
        }
    }
}

impl Conn {
    /// 429 for a request over its client's `--limit-req` rate (kept off `dispatch`'s path:
    /// a server without limits pays nothing for it).
    #[cold]
    fn answer_limited<H: Handler>(
        &mut self,
        head: &RequestHead<'_, '_>,
        body: &[u8],
        keep_alive: bool,
        retry_after: u64,
        ctx: &mut Ctx<'_, H>,
    ) {
        let mut w = ResponseWriter::new(
            &mut self.out,
            ctx.date,
            head.method == "HEAD",
            keep_alive,
            head.version == Version::Http10,
        );
        let req = Request {
            head: shorten(head),
            body,
        };
        let log = ctx.log.as_deref_mut();
        let outcome =
            crate::exchange::too_many_requests(&req, &mut w, log, ctx.now, ctx.date, retry_after);
        if let Outcome::Answered {
            keep_alive: false, ..
        } = outcome
        {
            self.phase = Phase::CloseAfterFlush;
        }
    }
}

/// Narrow `RequestHead<'b, 'h>` to a single lifetime for the handler's view.
pub(super) fn shorten<'a>(head: &'a RequestHead<'_, '_>) -> &'a RequestHead<'a, 'a> {
    head
}
