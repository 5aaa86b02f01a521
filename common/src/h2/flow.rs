//! Flow-control windows (RFC 9113 5.2, 6.9). The send side may go negative after the peer
//! lowers SETTINGS_INITIAL_WINDOW_SIZE; the receive side hands credit back in batches.

use super::frame::MAX_STREAM_ID;

/// How much we may still send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendWindow(i64);

/// "A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowOverflow;

impl SendWindow {
    pub(crate) fn new(initial: u32) -> SendWindow {
        SendWindow(i64::from(initial))
    }

    pub(crate) fn available(self) -> usize {
        self.0.max(0) as usize
    }

    pub(crate) fn spend(&mut self, n: usize) {
        self.0 -= n as i64;
    }

    pub(crate) fn grow(&mut self, increment: u32) -> Result<(), WindowOverflow> {
        self.adjust(i64::from(increment))
    }

    /// A SETTINGS_INITIAL_WINDOW_SIZE change shifts every stream's window by the
    /// difference (6.9.2), possibly below zero.
    pub(crate) fn adjust(&mut self, delta: i64) -> Result<(), WindowOverflow> {
        let next = self.0 + delta;
        if next > i64::from(MAX_STREAM_ID) {
            return Err(WindowOverflow);
        }
        self.0 = next;
        Ok(())
    }
}

/// How much the peer may still send, and the credit we owe it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecvWindow {
    window: i64,
    /// The window we keep topping up to.
    target: u32,
    /// Consumed bytes not yet returned by WINDOW_UPDATE.
    unacked: u32,
}

/// The peer sent more than its window allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowExceeded;

impl RecvWindow {
    /// `window` is what the peer believes it has now, `target` what we top up to.
    pub(crate) fn new(window: u32, target: u32) -> RecvWindow {
        RecvWindow {
            window: i64::from(window),
            target,
            unacked: 0,
        }
    }

    pub(crate) fn consume(&mut self, n: u32) -> Result<(), WindowExceeded> {
        if i64::from(n) > self.window {
            return Err(WindowExceeded);
        }
        self.window -= i64::from(n);
        Ok(())
    }

    /// Hand `n` consumed bytes back. Returns the WINDOW_UPDATE increment to send once
    /// half the target is owed: one frame per half window, never one per DATA frame.
    pub(crate) fn release(&mut self, n: u32) -> Option<u32> {
        self.unacked += n;
        if self.unacked >= self.target / 2 && self.unacked > 0 {
            let inc = self.unacked;
            self.unacked = 0;
            self.window += i64::from(inc);
            Some(inc)
        } else {
            None
        }
    }

    /// Credit granted up front (the connection window raised at start).
    pub(crate) fn grant(&mut self, n: u32) {
        self.window += i64::from(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_limits() {
        let mut w = SendWindow::new(65_535);
        w.spend(65_535);
        assert_eq!(w.available(), 0);
        w.adjust(-100).unwrap();
        assert_eq!(w.available(), 0);
        w.grow(150).unwrap();
        assert_eq!(w.available(), 50);
        let mut w = SendWindow::new(MAX_STREAM_ID);
        assert_eq!(w.grow(1), Err(WindowOverflow));
        assert_eq!(w.available(), MAX_STREAM_ID as usize);
    }

    #[test]
    fn recv_window_batches_updates() {
        let mut w = RecvWindow::new(100, 100);
        assert_eq!(w.consume(30), Ok(()));
        assert_eq!(w.release(30), None);
        assert_eq!(w.consume(30), Ok(()));
        assert_eq!(w.release(30), Some(60));
        assert_eq!(w.consume(101), Err(WindowExceeded));
        assert_eq!(w.consume(100), Ok(()));
        assert_eq!(w.consume(1), Err(WindowExceeded));
    }
}
