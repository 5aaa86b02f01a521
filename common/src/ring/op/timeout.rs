//! TIMEOUT: the program's timers (ids `0..TIMERS`, the token's slot) and the driver's
//! own wait at shutdown.

use std::time::Duration;

use io_uring::{opcode, types};

use crate::ring::event::{Completion, Event, TIMERS};
use crate::ring::slab::UringCore;
use crate::ring::slot::Pending;
use crate::ring::{Op, Token};

impl UringCore {
    /// Arm timer `id` (< [`TIMERS`]) to fire after `after`. False when it is still armed.
    pub fn timer(&mut self, id: u32, after: Duration) -> bool {
        let i = id as usize;
        assert!(i < TIMERS, "timer id {id} out of range");
        if self.timer_armed[i] {
            return false;
        }
        self.timer_ts[i] = types::Timespec::from(after);
        // SAFETY: the timespec is boxed in the core and not rewritten while the timer is
        // armed (this check); the kernel copies it when it takes the SQE.
        let e = opcode::Timeout::new(&self.timer_ts[i])
            .build()
            .user_data(Token::of(id, 0, Op::Timer).0);
        self.timer_armed[i] = true;
        self.pending.push_back(Pending::One(e));
        true
    }

    pub fn timer_armed(&self, id: u32) -> bool {
        self.timer_armed[id as usize]
    }

    /// Cancel timer `id`; its completion comes back as `Timer { cancelled: true }`.
    pub fn cancel_timer(&mut self, id: u32) {
        if self.timer_armed[id as usize] {
            self.pending
                .push_back(Pending::One(self.cancel_entry(Token::of(id, 0, Op::Timer))));
        }
    }

    /// A program timer fired, or was cancelled.
    pub(in crate::ring) fn complete_timer(&mut self, token: Token, res: i32) -> Completion {
        self.timer_armed[token.slot() as usize] = false;
        Completion::Event(Event::Timer {
            id: token.slot(),
            cancelled: res == -libc::ECANCELED,
        })
    }

    /// The driver's own wait while it drains at shutdown: a TIMEOUT after `ts`, whose
    /// completion only wakes the driver.
    pub(in crate::ring) fn wait_timer(&mut self, ts: &types::Timespec) {
        // SAFETY: the driver keeps `ts` boxed and does not rewrite it until this wait's
        // completion; the kernel copies it when it takes the SQE anyway.
        let e = opcode::Timeout::new(ts)
            .build()
            .user_data(Token::of(0, 0, Op::Wait).0);
        self.pending.push_back(Pending::One(e));
    }
}
