//! The worker's wake-ups that are not completions of its connections: the shutdown
//! eventfd, and the handler's own ([`Handler::wake_fd`]), after which the requests it
//! deferred are handed to it again (static files opened on the opener thread).

use uring_common::ring::{Core, SlotId};

use super::Worker;
use crate::handler::Handler;

/// Poll ids: the shutdown eventfd, the handler's wake fd.
const POLL_WAKE: u32 = 0;
const POLL_HANDLER: u32 = 1;

impl<H: Handler> Worker<H> {
    /// Watch the shutdown eventfd, and the handler's wake fd if it has one.
    pub(super) fn watch(&mut self, core: &mut Core, shutdown_fd: std::os::fd::RawFd) {
        core.poll_readable(POLL_WAKE, shutdown_fd);
        if let Some(fd) = self.handler.wake_fd() {
            core.poll_readable(POLL_HANDLER, fd);
        }
    }

    pub(super) fn on_ready(&mut self, core: &mut Core, id: u32) {
        if id != POLL_HANDLER {
            return self.begin_drain(core);
        }
        self.handler.on_wake();
        if let Some(fd) = self.handler.wake_fd() {
            core.poll_readable(POLL_HANDLER, fd);
        }
        for slot in 0..self.conns.len() as SlotId {
            if core.is_open(slot) && self.conns[slot as usize].is_deferred() {
                self.with(slot, |c, ctx| c.resume(ctx));
                self.drive(core, slot);
            }
        }
    }
}
