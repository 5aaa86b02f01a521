//! POLL_ADD: readability of an fd the program watches under an id (an eventfd, a pipe),
//! and the POLLOUT wait a splice or inline send makes on a full non-blocking socket.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use crate::ring::event::{Completion, Event};
use crate::ring::slab::UringCore;
use crate::ring::slot::Pending;
use crate::ring::{Op, Token};

impl UringCore {
    /// One `Ready { id }` when `fd` becomes readable.
    pub fn poll_readable(&mut self, id: u32, fd: RawFd) {
        let e = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(Token::of(id, 0, Op::Poll).0);
        self.pending.push_back(Pending::One(e));
    }

    /// The watched fd became readable.
    pub(in crate::ring) fn complete_poll(&mut self, token: Token) -> Completion {
        // Another thread may hand over a file opened under a number closed here.
        self.new_batch();
        Completion::Event(Event::Ready { id: token.slot() })
    }
}

/// A POLL_ADD for room in socket `fd`.
pub(super) fn pollout(fd: RawFd) -> squeue::Entry {
    opcode::PollAdd::new(types::Fd(fd), libc::POLLOUT as u32).build()
}
