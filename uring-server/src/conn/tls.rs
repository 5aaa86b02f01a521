//! The TLS layer of a connection, sans-IO like the rest of it: ciphertext from the socket
//! goes into rustls' `ServerConnection`, the plaintext it yields into the HTTP machine
//! (`Conn::on_plain`), and the machine's output is sealed into records on its way to the
//! driver's send buffer (`Conn::poll_send`). The handshake needs nothing of its own: its
//! records leave through the same send, and the head timeout, which runs from accept,
//! closes a client that stops mid-handshake.

use std::io::{ErrorKind, Read, Write};

use rustls::ServerConnection;

use super::{Conn, Ctx, Phase};
use crate::handler::Handler;

/// Plaintext read out of rustls per call (its records are at most 16 KiB).
const PLAIN_CHUNK: usize = 16 * 1024;

pub(super) struct TlsLayer {
    session: ServerConnection,
    plain: Vec<u8>,
    /// The peer broke the protocol: only the alert rustls queued goes out, then close.
    failed: bool,
}

impl TlsLayer {
    pub(super) fn wants_write(&self) -> bool {
        self.session.wants_write()
    }
}

impl Conn {
    /// Speak TLS on this connection (None: plain HTTP; an error: close it at once).
    pub fn set_tls(&mut self, session: Option<Result<ServerConnection, rustls::Error>>) {
        self.tls = match session {
            None => None,
            Some(Ok(mut session)) => {
                // Our own back-pressure (OUT_HIGH_WATER, one send in flight) bounds what
                // is handed to rustls; its limit would refuse part of a file chunk.
                session.set_buffer_limit(None);
                Some(Box::new(TlsLayer {
                    session,
                    plain: vec![0; PLAIN_CHUNK],
                    failed: false,
                }))
            }
            Some(Err(_)) => {
                self.phase = Phase::Closed;
                None
            }
        };
    }

    /// Whether this connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Records from the socket: decrypt, and hand the plaintext to the HTTP machine.
    pub(super) fn on_tls_records<H: Handler>(&mut self, data: &[u8], ctx: &mut Ctx<'_, H>) {
        let Some(mut t) = self.tls.take() else {
            return;
        };
        let mut input = data;
        'feed: while !input.is_empty() && !t.failed {
            if t.session.read_tls(&mut input).is_err() {
                self.phase = Phase::Closed;
                break;
            }
            if t.session.process_new_packets().is_err() {
                // Garbage, a bad handshake: rustls queued an alert; send it and close.
                t.failed = true;
                self.out.clear();
                self.phase = Phase::CloseAfterFlush;
                break;
            }
            loop {
                match t.session.reader().read(&mut t.plain) {
                    // close_notify: the client ended the session, like an EOF.
                    Ok(0) => {
                        self.tls = Some(t);
                        self.on_eof(ctx);
                        return;
                    }
                    Ok(n) => {
                        self.on_plain(&t.plain[..n], ctx);
                        if self.phase != Phase::Open {
                            break 'feed;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.phase = Phase::Closed;
                        break 'feed;
                    }
                }
            }
        }
        self.tls = Some(t);
    }

    /// Seal the output (and whatever the handshake has to say) into `into`.
    pub(super) fn poll_send_tls(&mut self, into: &mut Vec<u8>) -> bool {
        let Some(t) = self.tls.as_mut() else {
            return false;
        };
        if !self.out.is_empty() {
            if !t.failed && t.session.writer().write_all(&self.out).is_err() {
                self.phase = Phase::Closed;
                return false;
            }
            self.out.clear();
        }
        while t.session.wants_write() {
            if t.session.write_tls(into).is_err() {
                break;
            }
        }
        if into.is_empty() {
            return false;
        }
        self.send_in_flight = true;
        true
    }
}
