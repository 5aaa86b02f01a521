//! READ of a file into the slot's read buffer (the program's file bodies when they are
//! not spliced). A read in flight is waited for at close, never cancelled.

use std::os::fd::RawFd;

use io_uring::{opcode, types};

use crate::ring::event::{Completion, Event, Payload, SlotId};
use crate::ring::slab::UringCore;
use crate::ring::slot::{current, Life, Pending};
use crate::ring::{Op, Token};

impl UringCore {
    /// Read `len` bytes of `file` at `offset` into the slot's read buffer. The program keeps
    /// `file` open until `FileRead`/`FileReadFailed` or `Closed`.
    pub fn read_file(&mut self, slot: SlotId, file: RawFd, offset: u64, len: u32) {
        let s = &mut self.slots[slot as usize];
        if s.life != Life::Open || s.read_inflight {
            return;
        }
        s.read_buf.clear();
        s.read_buf.reserve(len as usize);
        // SAFETY: `read_buf` belongs to the slot, has room for `len` bytes, and is not
        // touched or freed while `read_inflight` (release waits for ops() == 0).
        let e = opcode::Read::new(types::Fd(file), s.read_buf.as_mut_ptr(), len)
            .offset(offset)
            .build()
            .user_data(Token::of(slot, s.generation, Op::Read).0);
        s.read_inflight = true;
        self.pending.push_back(Pending::One(e));
    }

    /// A file READ completed: its bytes are lent out with `FileRead`.
    pub(in crate::ring) fn complete_read(
        &mut self,
        token: Token,
        res: i32,
        bid: Option<u16>,
    ) -> Completion {
        let slot = token.slot();
        let Some(s) = current(&mut self.slots, token) else {
            return Completion::Stale { bid };
        };
        s.read_inflight = false;
        if s.life == Life::Closing {
            return self.closing_completion(slot, true, bid);
        }
        Completion::Event(if res > 0 {
            Event::FileRead {
                slot,
                data: Payload::File { len: res as usize },
            }
        } else {
            Event::FileReadFailed { slot, res }
        })
    }
}
