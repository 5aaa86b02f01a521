//! CLOSE, the end of the lifecycle rule: [`UringCore::close`] cancels what can be
//! cancelled, the slot waits for the last completion of everything in flight, and only
//! then is its fd closed by one CLOSE and the slot released. Also CLOSE of a loose fd.
//! Completions of CLOSE carry nothing.

use std::os::fd::RawFd;

use io_uring::{opcode, types};

use crate::ring::event::{Completion, SlotId};
use crate::ring::slab::UringCore;
use crate::ring::slot::{Life, Pending, Splicing};
use crate::ring::sys;
use crate::ring::{Op, Token};

impl UringCore {
    /// Close the slot: cancel what is in flight, close the fd after the last completion,
    /// then deliver `Closed`. Completions after this are not delivered to the program.
    pub fn close(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        if s.life != Life::Open {
            return;
        }
        s.life = Life::Closing;
        s.reading = false;
        let gen = s.generation;
        let cancel = |op: Op| {
            let e = opcode::AsyncCancel::new(Token::of(slot, gen, op).0)
                .build()
                .user_data(Token::of(slot, gen, Op::Cancel).0);
            Pending::One(e)
        };
        let mut cancels = Vec::new();
        if s.recv_armed && !s.recv_cancelled {
            s.recv_cancelled = true;
            cancels.push(cancel(Op::Recv));
        }
        if s.send_inflight {
            cancels.push(cancel(Op::Send));
        }
        if s.connecting > 0 {
            cancels.push(cancel(Op::Connect));
        }
        match s.splice.inline {
            // An inline send's local completion comes by itself; its POLLOUT wait does not.
            Some(i) if i.waiting() => cancels.push(cancel(Op::SpliceWait)),
            Some(_) => {}
            None if s.splice.inflight > 0 => {
                // A SPLICE out into a full socket waits in an io-wq worker (or behind a
                // POLLOUT wait): cancel it. What stays in the pipe goes with the pipe.
                s.pipe_dirty = true;
                cancels.push(cancel(Op::SpliceIn));
                cancels.push(cancel(Op::SpliceOut));
                if s.nonblocking {
                    cancels.push(cancel(Op::SpliceWait));
                }
            }
            None => {}
        }
        self.pending.extend(cancels);
        self.after_op(slot);
    }

    /// Close a descriptor that is not a slot (a listener, an accept during drain).
    pub fn close_fd(&mut self, fd: RawFd) {
        let e = opcode::Close::new(types::Fd(fd))
            .build()
            .user_data(Token::of(u32::MAX, 0, Op::Close).0);
        self.pending.push_back(Pending::One(e));
    }

    /// After an operation of a closing slot ended: release it when it was the last.
    pub(in crate::ring) fn after_op(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        if s.life != Life::Closing || s.ops() > 0 {
            return;
        }
        let e = opcode::Close::new(types::Fd(s.fd))
            .build()
            .user_data(Token::of(slot, s.generation, Op::Close).0);
        self.pending.push_back(Pending::One(e));
        self.fixed.released(slot);
        s.fd = -1;
        s.life = Life::Free;
        s.generation = s.generation.wrapping_add(1);
        s.send_buf.clear();
        s.read_buf.clear();
        s.splice = Splicing::default();
        // The pipe goes with the connection: kept on a free slot it would hold two fds per
        // slot ever used for a file, up to twice the connection cap, for as long as the
        // worker lives. Nothing of the slot's is in flight now.
        s.pipe_dirty = false;
        if let Some(pipe) = s.pipe.take() {
            sys::close_pipe(pipe);
        }
        self.released.push_back(slot);
    }

    /// A completion of a closing slot: nothing for the program; the slot is released when
    /// the operation `ended` and was its last. A ring buffer the completion holds goes back.
    pub(in crate::ring) fn closing_completion(
        &mut self,
        slot: SlotId,
        ended: bool,
        bid: Option<u16>,
    ) -> Completion {
        if ended {
            self.after_op(slot);
        }
        Completion::Stale { bid }
    }
}
