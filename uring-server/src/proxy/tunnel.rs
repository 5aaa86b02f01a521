//! One upstream connection after `101 Switching Protocols` (WebSocket, or any protocol an
//! `Upgrade` named), sans-IO: the client's bytes go to the upstream in order through one
//! send at a time, half-closes cross over, and the client is told to stop reading while
//! too much of its input waits for the upstream. The other direction (upstream bytes to
//! the client, paused while the client's output is full) is the machine's ordinary
//! response back-pressure, so it is not repeated here.
//!
//! Inputs: [`Tunnel::from_client`], [`Tunnel::client_eof`], [`Tunnel::on_sent`],
//! [`Tunnel::upstream_eof`]. Outputs: [`Tunnel::next_step`] (send, or shut the upstream's
//! write side), [`Tunnel::room`] (whether the client may be read), [`Tunnel::finished`].

use super::pressure::{PAUSE_AT, RESUME_AT};

/// What the upstream connection must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send [`Tunnel::send_buffer`].
    Send,
    /// `shutdown(SHUT_WR)`: the client half-closed and everything it sent went out.
    Shutdown,
}

/// Byte counts of every tunnel of a worker, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunnelStats {
    /// Tunnels opened (101s relayed) since start.
    pub opened: u64,
    /// Tunnels open now.
    pub open: u64,
    /// Client bytes handed to upstream sends.
    pub bytes_to_upstream: u64,
    /// Upstream bytes put into clients' output (the bytes after the 101 head included).
    pub bytes_to_client: u64,
}

#[derive(Debug, Default)]
pub struct Tunnel {
    /// Client bytes waiting for the next send.
    queued: Vec<u8>,
    /// The send in flight (the driver may swap this buffer with its own).
    in_flight: Vec<u8>,
    sending: bool,
    client_eof: bool,
    upstream_shut: bool,
    upstream_eof: bool,
    /// The client was told to stop reading (its input waits for the upstream).
    full: bool,
}

impl Tunnel {
    /// `request_in_flight`: the upgrade request's own send has not completed yet (an
    /// upstream may answer 101 first); the tunnel's first send waits for it.
    pub fn new(request_in_flight: bool) -> Tunnel {
        Tunnel {
            sending: request_in_flight,
            ..Tunnel::default()
        }
    }

    // ---- inputs ----

    /// Client bytes for the upstream; `input` is left empty (swapped in whole when
    /// nothing waits, so a burst is not copied twice).
    pub fn from_client(&mut self, input: &mut Vec<u8>) {
        if input.is_empty() || self.upstream_shut {
            input.clear();
            return;
        }
        if self.queued.is_empty() {
            std::mem::swap(&mut self.queued, input);
        } else {
            self.queued.append(input);
        }
        if self.held() >= PAUSE_AT {
            self.full = true;
        }
    }

    pub fn client_eof(&mut self) {
        self.client_eof = true;
    }

    /// The send in flight completed.
    pub fn on_sent(&mut self) {
        self.sending = false;
        self.in_flight.clear();
        if self.full && self.held() < RESUME_AT {
            self.full = false;
        }
    }

    pub fn upstream_eof(&mut self) {
        self.upstream_eof = true;
    }

    // ---- outputs ----

    /// The next operation on the upstream connection, once (`Send` moves the queued
    /// bytes into [`Self::send_buffer`]).
    pub fn next_step(&mut self) -> Option<Step> {
        if self.sending {
            return None;
        }
        if !self.queued.is_empty() {
            std::mem::swap(&mut self.queued, &mut self.in_flight);
            self.sending = true;
            return Some(Step::Send);
        }
        if self.client_eof && !self.upstream_shut {
            self.upstream_shut = true;
            return Some(Step::Shutdown);
        }
        None
    }

    /// The bytes of the send in flight.
    pub fn send_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.in_flight
    }

    pub fn bytes_in_flight(&self) -> &[u8] {
        &self.in_flight
    }

    /// Whether the client's input may be read (false while too much of it waits).
    pub fn room(&self) -> bool {
        !self.full
    }

    /// The upstream half-closed: the client's write side is shut once its output is out.
    pub fn upstream_done(&self) -> bool {
        self.upstream_eof
    }

    /// Both sides half-closed and everything crossed: the tunnel is over.
    pub fn finished(&self) -> bool {
        self.upstream_eof && self.upstream_shut && !self.sending
    }

    /// Client bytes held (queued and in flight).
    fn held(&self) -> usize {
        self.queued.len() + self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_go_out_in_order_one_send_at_a_time() {
        let mut t = Tunnel::new(true);
        t.from_client(&mut b"ab".to_vec());
        assert_eq!(t.next_step(), None, "the request's send is still in flight");
        t.from_client(&mut b"cd".to_vec());
        t.on_sent();
        assert_eq!(t.next_step(), Some(Step::Send));
        assert_eq!(t.bytes_in_flight(), b"abcd");
        t.from_client(&mut b"ef".to_vec());
        assert_eq!(t.next_step(), None);
        t.on_sent();
        assert_eq!(t.next_step(), Some(Step::Send));
        assert_eq!(t.bytes_in_flight(), b"ef");
    }

    #[test]
    fn the_client_pauses_while_its_input_waits_and_resumes_below_the_low_mark() {
        let mut t = Tunnel::new(false);
        t.from_client(&mut vec![0; PAUSE_AT - 1]);
        assert!(t.room());
        assert_eq!(t.next_step(), Some(Step::Send));
        t.from_client(&mut vec![1; 1]);
        assert!(!t.room());
        t.on_sent();
        // One byte queued: below the low mark again.
        assert!(t.room());
    }

    #[test]
    fn half_closes_cross_over_after_the_last_byte() {
        let mut t = Tunnel::new(false);
        t.from_client(&mut b"bye".to_vec());
        t.client_eof();
        assert_eq!(t.next_step(), Some(Step::Send));
        assert_eq!(t.next_step(), None, "no shutdown under a send");
        t.on_sent();
        assert_eq!(t.next_step(), Some(Step::Shutdown));
        assert_eq!(t.next_step(), None);
        assert!(!t.finished());
        t.upstream_eof();
        assert!(t.upstream_done() && t.finished());
    }
}
