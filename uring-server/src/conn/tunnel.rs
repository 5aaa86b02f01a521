//! The client's side of a tunnel: after the upstream's `101 Switching Protocols` went
//! into the output (the proxy's [`ForwardOutcome::Upgraded`]), the connection stops
//! parsing requests. What it reads is kept for the proxy (`input`, handed over by the
//! worker at each drive, [`Conn::tunnel_parts`]); the upstream's bytes arrive through the
//! forward sink as body pieces, so they leave as any response does. The upstream's
//! half-close becomes ours once the output is out ([`Close::HalfClose`]); the end of the
//! tunnel is an outcome (`Done` or `Abort`) like a response's end, logged the same way.

use super::*;
use crate::proxy::TunnelView;

/// The tunnel's state on the client connection.
#[derive(Debug, Default)]
pub(super) struct ClientTunnel {
    /// Client bytes not yet handed to the proxy.
    input: Vec<u8>,
    /// The proxy takes more of the client's bytes (false: its send buffer is full).
    room: bool,
    /// The upstream half-closed: our write side follows once the output is out.
    upstream_eof: bool,
    /// That half-close was asked for.
    shut: bool,
}

impl Conn {
    /// The upstream switched protocols: from now on the connection is a tunnel. Bytes
    /// the client sent after its upgrade request (held unparsed) are its first.
    pub(super) fn start_tunnel(&mut self) {
        self.reading = Reading::Idle;
        self.tunnel = Some(Box::new(ClientTunnel {
            input: std::mem::take(&mut self.rbuf),
            room: true,
            ..ClientTunnel::default()
        }));
    }

    /// Whether the connection is a tunnel.
    #[inline]
    pub fn in_tunnel(&self) -> bool {
        self.tunnel.is_some()
    }

    /// For the proxy: the bytes read since the last call (taken by it), whether the
    /// client half-closed, whether the connection failed.
    pub fn tunnel_parts(&mut self) -> Option<(&mut Vec<u8>, (bool, bool))> {
        let failed = self.phase == Phase::Closed;
        let eof = self.peer_eof;
        let t = self.tunnel.as_deref_mut()?;
        Some((&mut t.input, (eof, failed)))
    }

    /// The proxy's view of the tunnel after it took the input (`None`: over; its outcome
    /// ends the connection).
    pub fn tunnel_view(&mut self, view: Option<TunnelView>) {
        if let (Some(t), Some(v)) = (self.tunnel.as_deref_mut(), view) {
            t.room = v.room;
            t.upstream_eof = v.upstream_eof;
        }
    }

    /// The tunnel ended (its outcome came): the connection closes after its output.
    pub(super) fn end_tunnel(&mut self) {
        self.tunnel = None;
    }

    /// Plaintext bytes of a tunnel: kept for the proxy.
    pub(super) fn tunnel_input(&mut self, data: &[u8]) {
        if let Some(t) = self.tunnel.as_deref_mut() {
            t.input.extend_from_slice(data);
        }
    }

    /// Whether to read: while the proxy takes the bytes.
    pub(super) fn tunnel_wants_read(&self, t: &ClientTunnel) -> bool {
        self.phase == Phase::Open
            && !self.peer_eof
            && t.room
            && t.input.len() < crate::proxy::machine::PAUSE_AT
    }

    /// The upstream half-closed and every byte of it went out: shut our write side, once.
    pub(super) fn tunnel_half_close(&mut self) -> bool {
        let flushed =
            self.out.is_empty() && self.writing != Writing::Sending && !self.tls.wants_write();
        match self.tunnel.as_deref_mut() {
            Some(t) if t.upstream_eof && !t.shut && flushed => {
                t.shut = true;
                true
            }
            _ => false,
        }
    }
}
