//! ACCEPT (single-shot or multishot) on a listener: the token's slot is the listener's
//! index, not a connection's, so its completions skip the slot checks.

use std::os::fd::RawFd;

use io_uring::{cqueue, opcode, types};

use crate::ring::event::{Completion, Event};
use crate::ring::slab::UringCore;
use crate::ring::slot::Pending;
use crate::ring::{Op, Token};

impl UringCore {
    /// Accept on `listener_fd`; completions name `listener`. Sockets come `O_NONBLOCK`
    /// (io_uring's receives and sends ignore it; an inline `sendfile` needs it), and
    /// `open` of the socket just accepted knows it without a syscall.
    pub fn accept(&mut self, listener: u32, listener_fd: RawFd, multishot: bool) {
        let fd = types::Fd(listener_fd);
        let e = if multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                .build()
        };
        let e = e.user_data(Token::of(listener, 0, Op::Accept).0);
        self.pending.push_back(Pending::One(e));
    }

    /// Stop the accept of `listener` (its last completion comes back with `rearm`).
    pub fn cancel_accept(&mut self, listener: u32) {
        self.pending
            .push_back(Pending::One(self.cancel_entry(Token::of(
                listener,
                0,
                Op::Accept,
            ))));
    }

    /// An ACCEPT completed: a new socket, or why none came; `rearm` when a multishot
    /// accept ended (no `F_MORE`) or a single-shot one was used up.
    pub(in crate::ring) fn complete_accept(
        &mut self,
        token: Token,
        res: i32,
        flags: u32,
    ) -> Completion {
        let listener = token.slot();
        let rearm = !cqueue::more(flags);
        Completion::Event(if res >= 0 {
            self.accepted = Some(res);
            Event::Accepted {
                listener,
                fd: res,
                rearm,
            }
        } else {
            Event::AcceptFailed {
                listener,
                errno: -res,
                rearm,
            }
        })
    }
}
