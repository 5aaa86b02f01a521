//! SEND of the slot's send buffer, whole: short sends and EINTR/EAGAIN are continued
//! here, and the program hears `Sent` once, at the end. The SQE targets a registered file
//! when the slot has one (`ring/fixed.rs`).

use crate::ring::event::{Completion, Event, SlotId};
use crate::ring::slab::UringCore;
use crate::ring::slot::{current, Life, Pending};
use crate::ring::{Op, Token};

impl UringCore {
    /// The send buffer, to fill, when no send is in flight on an open slot.
    pub fn send_buffer(&mut self, slot: SlotId) -> Option<&mut Vec<u8>> {
        let s = &mut self.slots[slot as usize];
        (s.life == Life::Open && !s.send_inflight).then_some(&mut s.send_buf)
    }

    /// Send the whole send buffer (nothing to do when it is empty). Short sends and
    /// EINTR/EAGAIN are continued by the driver; the program hears `Sent` once, at the end.
    pub fn send(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        if s.life != Life::Open || s.send_inflight || s.send_buf.is_empty() {
            return;
        }
        s.send_at = 0;
        self.push_send(slot);
    }

    fn push_send(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        let rest = &s.send_buf[s.send_at..];
        // SAFETY: `send_buf` belongs to the slot and is neither touched nor freed while
        // `send_inflight` (send_buffer() refuses, release waits for ops() == 0).
        let e = (self.fixed.send_target(slot, s.fd))
            .send(rest.as_ptr(), rest.len() as u32)
            .user_data(Token::of(slot, s.generation, Op::Send).0);
        s.send_inflight = true;
        self.pending.push_back(Pending::One(e));
    }

    /// A SEND completed: continue a short one, report the whole buffer sent, or fail.
    #[inline]
    pub(in crate::ring) fn complete_send(
        &mut self,
        token: Token,
        res: i32,
        bid: Option<u16>,
    ) -> Completion {
        let slot = token.slot();
        let Some(s) = current(&mut self.slots, token) else {
            return Completion::Stale { bid };
        };
        s.send_inflight = false;
        if s.life == Life::Closing {
            return self.closing_completion(slot, true, bid);
        }
        if res > 0 {
            s.send_at += res as usize;
            if s.send_at < s.send_buf.len() {
                self.push_send(slot);
                return Completion::Quiet;
            }
            let len = s.send_buf.len();
            s.send_buf.clear();
            s.send_at = 0;
            return Completion::Event(Event::Sent { slot, len });
        }
        match -res {
            // Interrupted or would block: nothing was sent, try the same bytes again.
            libc::EINTR | libc::EAGAIN => {
                self.push_send(slot);
                Completion::Quiet
            }
            errno => Completion::Event(Event::SendFailed { slot, errno }),
        }
    }
}
