//! The exchange: a complete request (head and whole body) is routed to the handler or to
//! an upstream, and its answer written.

use super::*;

impl Conn {
    pub(super) fn dispatch<H: Handler>(
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
}

/// Narrow `RequestHead<'b, 'h>` to a single lifetime for the handler's view.
pub(super) fn shorten<'a>(head: &'a RequestHead<'_, '_>) -> &'a RequestHead<'a, 'a> {
    head
}
