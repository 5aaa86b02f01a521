//! The exchange: what every protocol has in common. A protocol machine (HTTP/1.1 in
//! `conn/`, HTTP/2 next) parses a request into a [`Request`] (head and whole body) and
//! hands it here with a [`ResponseWriter`] that renders the answer its own way (HTTP/1.1
//! bytes, or [`ResponseParts`](crate::response::ResponseParts) that HTTP/2 frames); the
//! routes (built-ins, static files, the application's handler) see only that. What comes
//! back is protocol-neutral too: the answer's status and body source, or "deferred".
//! Requests that go upstream take the proxy's path instead (`conn/forward.rs`).

use std::time::Instant;

use crate::handler::Handler;
use crate::metrics::Route;
use crate::observe::{Answered, RequestLog};
use crate::request::Request;
use crate::response::{FileBody, ResponseWriter};

/// How the routes answered a request.
#[derive(Debug)]
pub enum Outcome {
    /// Answered: the head (and an in-memory body) is written; a file body, if any, is
    /// for the protocol to stream. `keep_alive` is false when the handler asked to close.
    Answered {
        status: u16,
        keep_alive: bool,
        file: Option<FileBody>,
    },
    /// The handler answers later: the protocol keeps the request and hands it over again
    /// after the handler's wake-up, answering nothing behind it meanwhile.
    Deferred,
}

/// Answer 429 to a request over its client's `--limit-req` rate, with the seconds until
/// one more would pass; recorded as any answer (the access log shows the 429).
#[cold]
pub fn too_many_requests(
    req: &Request<'_>,
    w: &mut ResponseWriter<'_>,
    log: Option<&mut RequestLog>,
    arrived: Instant,
    date: &[u8; 29],
    retry_after: u64,
) -> Outcome {
    let secs = retry_after.to_string();
    w.respond(
        429,
        &[
            ("Retry-After", secs.as_bytes()),
            ("Content-Type", b"text/plain"),
        ],
        b"Too Many Requests\n",
    );
    if let Some(log) = log {
        log.request_limited();
        log.answered(&Answered {
            head: req.head,
            status: 429,
            route: Route::Builtin,
            body_bytes: w.body_len,
            arrived,
            date,
        });
    }
    Outcome::Answered {
        status: 429,
        keep_alive: w.keep_alive,
        file: None,
    }
}

/// Hand `req` to the handler and record the answer in the access log and metrics.
/// Inlined into each protocol's dispatch: a call here (and the writer passed by value)
/// cost HTTP/1.1 about 100 instructions per request, measured with callgrind.
#[inline(always)]
pub fn answer<H: Handler>(
    handler: &mut H,
    req: &Request<'_>,
    w: &mut ResponseWriter<'_>,
    log: Option<&mut RequestLog>,
    arrived: Instant,
    date: &[u8; 29],
) -> Outcome {
    let file_route = log.is_some() && handler.is_file_route(req);
    handler.handle(req, w);
    if w.deferred {
        return Outcome::Deferred;
    }
    if w.status.is_none() {
        w.respond(
            500,
            &[("Content-Type", b"text/plain")],
            b"Internal Server Error\n",
        );
    }
    let status = w.status.unwrap_or(500);
    let file = w.file.take();
    if let Some(log) = log {
        log.answered(&Answered {
            head: req.head,
            status,
            route: if file.is_some() || file_route {
                Route::File
            } else {
                Route::Builtin
            },
            body_bytes: w.body_len,
            arrived,
            date,
        });
    }
    Outcome::Answered {
        status,
        keep_alive: w.keep_alive,
        file,
    }
}
