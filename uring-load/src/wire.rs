//! One connection as the engine sees it: the HTTP/1.1 machine ([`Conn`]) or the HTTP/2
//! one ([`H2Conn`]), chosen per run (`--http2`), with the same inputs and answers.

use std::time::{Duration, Instant};

use rustls::ClientConnection;
use uring_common::stats::ErrorKind;

use crate::conn::{Conn, ConnSpec, Phase, Received, Sink, Step};
use crate::h2conn::H2Conn;
use crate::targets::{Pick, Target};
use crate::template::Expander;

// HTTP/1.1 stays inline (the common case, no extra indirection); the larger HTTP/2
// machine is boxed.
#[allow(clippy::large_enum_variant)]
pub enum Wire {
    H1(Conn),
    H2(Box<H2Conn>),
}

macro_rules! each {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            Wire::H1($c) => $e,
            Wire::H2($c) => $e,
        }
    };
}

impl Wire {
    pub fn new(spec: ConnSpec) -> Wire {
        if spec.http2 {
            Wire::H2(Box::new(H2Conn::new(spec.depth)))
        } else {
            Wire::H1(Conn::new(spec))
        }
    }

    pub fn phase(&self) -> Phase {
        each!(self, c => c.phase())
    }

    pub fn in_flight(&self) -> usize {
        each!(self, c => c.in_flight())
    }

    pub fn has_room(&self) -> bool {
        each!(self, c => c.has_room())
    }

    pub fn start_connect(&mut self) {
        each!(self, c => c.start_connect())
    }

    pub fn on_connected(&mut self) {
        each!(self, c => c.on_connected())
    }

    pub fn on_connected_tls(&mut self, tls: ClientConnection) {
        each!(self, c => c.on_connected_tls(tls))
    }

    pub fn wants_write(&self) -> bool {
        each!(self, c => c.wants_write())
    }

    pub fn poll_transmit(&mut self, targets: &[Target], x: &mut Expander, out: &mut Vec<u8>) {
        each!(self, c => c.poll_transmit(targets, x, out))
    }

    pub fn push_request(&mut self, latency_from: Instant, now: Instant, pick: Pick) {
        each!(self, c => c.push_request(latency_from, now, pick))
    }

    pub fn on_received<R: Sink>(&mut self, data: &[u8], now: Instant, rec: &mut R) -> Received {
        each!(self, c => c.on_received(data, now, rec))
    }

    pub fn on_eof<R: Sink>(&mut self, now: Instant, rec: &mut R) -> Step {
        each!(self, c => c.on_eof(now, rec))
    }

    pub fn on_error_because<R: Sink>(
        &mut self,
        kind: ErrorKind,
        cause: &dyn std::fmt::Display,
        rec: &mut R,
    ) -> Step {
        each!(self, c => c.on_error_because(kind, cause, rec))
    }

    pub fn poll_timeout<R: Sink>(&mut self, now: Instant, timeout: Duration, rec: &mut R) -> Step {
        each!(self, c => c.poll_timeout(now, timeout, rec))
    }

    /// Requests to issue again (never processed by the server), with their latency origin.
    pub fn take_unanswered(&mut self, mut f: impl FnMut(Instant, Pick)) {
        match self {
            Wire::H1(c) => c.take_unanswered().for_each(|(o, p)| f(o, p)),
            Wire::H2(c) => c.take_unanswered(f),
        }
    }

    pub fn abandon(&mut self) -> usize {
        each!(self, c => c.abandon())
    }

    pub fn closed(&mut self) {
        each!(self, c => c.closed())
    }
}
