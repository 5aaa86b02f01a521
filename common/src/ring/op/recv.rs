//! RECV: what a slot receives, by tier (multishot from the buffer ring, single-shot from
//! the ring, single-shot into the slot's own buffer). The program only says whether it
//! wants bytes ([`UringCore::set_reading`]); the core arms or stops the receive before the
//! next submit ([`UringCore::settle`]).

use io_uring::{cqueue, opcode, squeue, types};

use crate::ring::event::{Completion, Event, Payload, RecvMode, SlotId};
use crate::ring::slab::UringCore;
use crate::ring::slot::{current, Life, Pending};
use crate::ring::{Op, Token};

impl UringCore {
    /// Keep a receive outstanding on the slot (or stop asking for one). The receive is
    /// armed before the next submit; a multishot receive is cancelled when not wanted, so
    /// the buffer ring is not drained by a connection that cannot take more.
    pub fn set_reading(&mut self, slot: SlotId, on: bool) {
        let s = &mut self.slots[slot as usize];
        if s.reading != on {
            s.reading = on;
            self.dirty.push(slot);
        } else if on && !s.recv_armed {
            self.dirty.push(slot);
        }
    }

    /// Arm or stop the receives of slots marked dirty. Runs before every submit, never
    /// while the driver lends a slot's buffer out.
    pub(in crate::ring) fn settle(&mut self) {
        while let Some(slot) = self.dirty.pop() {
            let s = &mut self.slots[slot as usize];
            if s.life != Life::Open {
                continue;
            }
            let token = Token::of(slot, s.generation, Op::Recv);
            if s.reading && !s.recv_armed {
                let fd = types::Fd(s.fd);
                let e = match self.cfg.recv_mode {
                    RecvMode::Multishot => opcode::RecvMulti::new(fd, self.cfg.bgid).build(),
                    // The length is the buffer's size: a length of 0 means "the buffer's
                    // size" only from 6.0 on; on 5.19 it would read nothing.
                    RecvMode::Select => {
                        opcode::Recv::new(fd, std::ptr::null_mut(), self.cfg.ring_buf_size)
                            .buf_group(self.cfg.bgid)
                            .build()
                            .flags(squeue::Flags::BUFFER_SELECT)
                    }
                    // SAFETY: `recv_buf` belongs to the slot and stays in place while
                    // `recv_armed`: release waits for ops() == 0, and the driver lends it out
                    // only between a completion and the next settle().
                    RecvMode::Own => {
                        opcode::Recv::new(fd, s.recv_buf.as_mut_ptr(), s.recv_buf.len() as u32)
                            .build()
                    }
                };
                s.recv_armed = true;
                self.pending.push_back(Pending::One(e.user_data(token.0)));
            } else if !s.reading
                && s.recv_armed
                && self.cfg.recv_mode == RecvMode::Multishot
                && !s.recv_cancelled
            {
                s.recv_cancelled = true;
                self.pending
                    .push_back(Pending::One(self.cancel_entry(token)));
            }
        }
    }

    /// A RECV completed. A multishot receive goes on while the kernel says `F_MORE`.
    #[inline]
    pub(in crate::ring) fn complete_recv(
        &mut self,
        token: Token,
        res: i32,
        flags: u32,
        bid: Option<u16>,
    ) -> Completion {
        let slot = token.slot();
        let multishot = self.cfg.recv_mode == RecvMode::Multishot;
        let Some(s) = current(&mut self.slots, token) else {
            return Completion::Stale { bid };
        };
        let ended = !multishot || !cqueue::more(flags);
        if ended {
            s.recv_armed = false;
            s.recv_cancelled = false;
        }
        if s.life == Life::Closing {
            return self.closing_completion(slot, ended, bid);
        }
        if res > 0 {
            if s.reading && !s.recv_armed {
                self.dirty.push(slot);
            }
            let data = match (self.cfg.recv_mode, bid) {
                (RecvMode::Own, _) => Payload::Own { len: res as usize },
                (_, Some(bid)) => Payload::Ring {
                    bid,
                    len: res as usize,
                },
                // A ring receive must name its buffer; treat the impossible as a failure.
                (_, None) => {
                    s.reading = false;
                    return Completion::Event(Event::RecvFailed {
                        slot,
                        errno: libc::EINVAL,
                    });
                }
            };
            return Completion::Event(Event::Data { slot, data });
        }
        if let Some(bid) = bid {
            // Defensive: a buffer with no bytes in it still goes back to the ring.
            return Completion::Stale { bid: Some(bid) };
        }
        match -res {
            0 => {
                s.reading = false;
                Completion::Event(Event::Eof { slot })
            }
            // The ring ran dry (nothing consumed from the socket), a signal, or our own
            // back-pressure cancel: arm again if still wanted.
            libc::ENOBUFS | libc::EINTR | libc::EAGAIN | libc::ECANCELED => {
                self.dirty.push(slot);
                match s.reading || s.recv_armed {
                    true => Completion::Quiet,
                    false => Completion::Event(Event::RecvStopped { slot }),
                }
            }
            errno => {
                s.reading = false;
                Completion::Event(Event::RecvFailed { slot, errno })
            }
        }
    }
}
