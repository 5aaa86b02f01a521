//! A worker's listening sockets: whether an accept is armed, the back-off after the fd
//! table filled up, and closing. The worker (`worker.rs`) decides when to call these;
//! the ring operations go through the driver's [`Core`].

use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use uring_common::ring::Core;

/// First back-off after EMFILE/ENFILE on accept; doubles up to `BACKOFF_MAX`.
const BACKOFF: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(800);

pub(crate) struct Listener {
    fd: RawFd,
    armed: bool,
    cancel_sent: bool,
    pub(crate) closed: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// Whether an accept error means "out of descriptors or memory": back off, do not spin.
pub(crate) fn is_exhaustion(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}

impl Listener {
    pub(crate) fn new(fd: OwnedFd) -> Listener {
        Listener {
            fd: fd.into_raw_fd(),
            armed: false,
            cancel_sent: false,
            closed: false,
            retry_at: None,
            backoff: BACKOFF,
        }
    }

    /// An accept completed; `rearm` says the operation is over (not multishot-continuing).
    pub(crate) fn on_completion(&mut self, rearm: bool, ok: bool) {
        if rearm {
            self.armed = false;
            self.cancel_sent = false;
        }
        if ok {
            self.backoff = BACKOFF;
        }
    }

    /// Out of descriptors: the connection stays in the backlog. Stop accepting for a
    /// while (cancelling a multishot accept) and return how long, doubling each time.
    pub(crate) fn back_off(&mut self, core: &mut Core, li: u32, now: Instant) -> Duration {
        let wait = self.backoff;
        self.retry_at = Some(now + wait);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.cancel(core, li);
        wait
    }

    fn cancel(&mut self, core: &mut Core, li: u32) {
        if self.armed && !self.cancel_sent {
            self.cancel_sent = true;
            core.cancel_accept(li);
        }
    }

    /// Arm, stop or close the accept as the worker's state asks: `stop` cancels an armed
    /// accept (connection cap on a multishot tier, or draining), `draining` closes the
    /// socket once no accept is armed, `hold` skips arming (cap reached).
    pub(crate) fn drive(&mut self, core: &mut Core, li: u32, f: Arming) {
        if self.closed {
            return;
        }
        if self.armed {
            if f.stop {
                self.cancel(core, li);
            }
            return;
        }
        if f.draining {
            self.closed = true;
            return core.close_fd(self.fd);
        }
        if f.hold || self.retry_at.is_some_and(|t| f.now < t) {
            return;
        }
        self.retry_at = None;
        self.armed = true;
        core.accept(li, self.fd, f.multishot);
    }

    /// Stop listening at once, without the ring: used when the ring is gone. close(2)
    /// alone is not enough while an accept is in flight (the operation holds the socket
    /// open until the ring is torn down); shutdown(2) on a listening socket stops it now,
    /// so new connections are refused instead of queueing where nobody accepts. Not when
    /// draining: the socket may live on in an upgrade's successor, which shares it.
    pub(crate) fn close_now(&mut self, draining: bool) {
        if !self.closed {
            self.closed = true;
            // SAFETY: the listener's fd is ours and closed once (the flag).
            unsafe {
                if !draining {
                    libc::shutdown(self.fd, libc::SHUT_RDWR);
                }
                libc::close(self.fd);
            }
        }
    }
}

/// What [`Listener::drive`] needs from the worker.
#[derive(Clone, Copy)]
pub(crate) struct Arming {
    pub now: Instant,
    pub stop: bool,
    pub draining: bool,
    pub hold: bool,
    pub multishot: bool,
}
