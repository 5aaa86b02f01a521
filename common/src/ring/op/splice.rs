//! SPLICE of file bytes to a socket without copying them through user space: SPLICE file
//! -> the slot's pipe, linked to SPLICE pipe -> socket; short SPLICE outs are continued
//! from the pipe. Ranges whose pages are all cached go out inline instead
//! (`splice_inline.rs`), and their completions come back here too.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::poll::pollout;
use crate::ring::event::{Completion, Event, SlotId};
use crate::ring::slab::UringCore;
use crate::ring::slot::{current, Life, Pending, Splicing};
use crate::ring::sys;
use crate::ring::{Op, Token};

/// Most unsent send-buffer bytes [`Core::splice_file`](crate::ring::Core::splice_file) puts ahead of the file's.
pub const SPLICE_HEAD_MAX: usize = 16 * 1024;

impl UringCore {
    /// Move up to `len` bytes of `file` at `offset` to the socket without copying them
    /// through user space: SPLICE file → the slot's pipe, linked to SPLICE pipe → socket
    /// (`more`: more bytes follow, like MSG_MORE). Bytes the program left in the send
    /// buffer without sending them (a response head, at most [`SPLICE_HEAD_MAX`]) are
    /// written into the pipe first and leave in the same SPLICE out, in one segment with
    /// the file's first bytes. Returns how many file bytes this splice moves (at most
    /// what the pipe holds); `Spliced { len }` or `SpliceFailed` follows. A range whose
    /// pages are all cached goes out with `sendfile` on this thread instead, without the
    /// io-wq hop (`splice_inline.rs`); `Spliced` may then report fewer bytes than
    /// asked (the socket filled up). Fails only when no pipe could be made or the socket
    /// is broken. The program keeps `file` open until then, and sends nothing else on the
    /// slot meanwhile.
    pub fn splice_file(
        &mut self,
        slot: SlotId,
        file: RawFd,
        offset: u64,
        len: u32,
        more: bool,
    ) -> io::Result<u32> {
        let s = &mut self.slots[slot as usize];
        let head = s.send_buf.len();
        if s.life != Life::Open
            || s.splice.inflight > 0
            || s.send_inflight
            || len == 0
            || head > SPLICE_HEAD_MAX
        {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        if self.splice_inline(slot, file, offset, len, more)? {
            return Ok(len);
        }
        let s = &mut self.slots[slot as usize];
        let head = s.send_buf.len();
        s.drop_dirty_pipe();
        let (r, w, cap) = match s.pipe {
            Some(p) => p,
            None => {
                let p = sys::new_pipe()?;
                s.pipe = Some(p);
                p
            }
        };
        if head > 0 {
            // The pipe is empty (a clean pipe, or a new one) and holds far more than a
            // head: this write neither blocks nor comes back short.
            // SAFETY: writes `head` bytes of the send buffer into our pipe.
            let n = unsafe { libc::write(w, s.send_buf.as_ptr().cast(), head) };
            if n != head as isize {
                s.pipe_dirty = n > 0;
                return Err(io::Error::last_os_error());
            }
            s.send_buf.clear();
        }
        // A pipe holds whole pages: the head takes its own, and file bytes that start
        // inside a page take one slot more.
        let head_pages = head.div_ceil(4096) as u32 * 4096;
        let room = cap
            .saturating_sub(head_pages + (offset % 4096) as u32)
            .max(4096);
        let more = more || len > room;
        let len = len.min(room);
        let gen = s.generation;
        let fill = opcode::Splice::new(types::Fd(file), offset as i64, types::Fd(w), -1, len)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(Token::of(slot, gen, Op::SpliceIn).0);
        s.splice = Splicing {
            inflight: 2,
            want: len,
            head: head as u32,
            more,
            ..Splicing::default()
        };
        let drain = splice_out(s.fd, r, head as u32 + len, more)
            .user_data(Token::of(slot, gen, Op::SpliceOut).0);
        self.pending.push_back(Pending::Linked(fill, drain));
        Ok(len)
    }

    /// A SPLICE in, a SPLICE out, or the POLLOUT wait before one completed; or the local
    /// completion (or wait) of an inline send (`splice_inline.rs`).
    pub(in crate::ring) fn complete_splice(
        &mut self,
        token: Token,
        op: Op,
        res: i32,
        bid: Option<u16>,
    ) -> Completion {
        let slot = token.slot();
        let Some(s) = current(&mut self.slots, token) else {
            return Completion::Stale { bid };
        };
        s.splice.inflight = s.splice.inflight.saturating_sub(1);
        let inline = s.splice.inline.is_some() && op != Op::SpliceIn;
        if op == Op::SpliceIn {
            s.splice.filled = Some(res);
        } else if op == Op::SpliceOut && !inline {
            if res > 0 {
                s.splice.drained += res as u32;
            } else {
                s.splice.out_errno = if res == 0 { libc::EPIPE } else { -res };
            }
        }
        if s.life == Life::Closing {
            return self.closing_completion(slot, true, bid);
        }
        if inline {
            return match self.complete_inline(slot, res) {
                Some(ev) => Completion::Event(ev),
                None => Completion::Quiet,
            };
        }
        self.finish_splice(slot)
    }

    /// Both halves of a splice are in: report it, or continue a short SPLICE out.
    fn finish_splice(&mut self, slot: SlotId) -> Completion {
        let s = &mut self.slots[slot as usize];
        let sp = s.splice;
        if sp.inflight > 0 {
            return Completion::Quiet;
        }
        let filled = sp.filled.unwrap_or(-libc::ECANCELED);
        let total = sp.head + sp.want;
        if filled == sp.want as i32 && sp.drained == total {
            return Completion::Event(Event::Spliced {
                slot,
                len: sp.want as usize,
            });
        }
        let retry = matches!(sp.out_errno, 0 | libc::EINTR | libc::EAGAIN);
        if filled == sp.want as i32 && sp.drained < total && retry {
            // A short (or interrupted) SPLICE out: the rest is still in the pipe.
            let (r, _, _) = s.pipe.expect("a splice has a pipe");
            let e = splice_out(s.fd, r, total - sp.drained, sp.more)
                .user_data(Token::of(slot, s.generation, Op::SpliceOut).0);
            s.splice.inflight = 1;
            s.splice.out_errno = 0;
            if s.nonblocking && sp.out_errno != libc::EINTR {
                // A non-blocking socket is full: wait for room, do not spin in io-wq.
                let wait = pollout(s.fd)
                    .flags(squeue::Flags::IO_LINK)
                    .user_data(Token::of(slot, s.generation, Op::SpliceWait).0);
                s.splice.inflight = 2;
                self.pending.push_back(Pending::Linked(wait, e));
            } else {
                self.pending.push_back(Pending::One(e));
            }
            return Completion::Quiet;
        }
        s.pipe_dirty = true;
        s.drop_dirty_pipe();
        let res = match filled {
            n if n < 0 && n != -libc::ECANCELED => n,
            // The file ended before the bytes asked for: it shrank.
            n if (0..sp.want as i32).contains(&n) => 0,
            _ => -sp.out_errno.max(1),
        };
        Completion::Event(Event::SpliceFailed { slot, res })
    }
}

/// SPLICE from the pipe's read end `r` into the socket `sock`.
fn splice_out(sock: RawFd, r: RawFd, len: u32, more: bool) -> squeue::Entry {
    const SPLICE_F_MORE: u32 = 4;
    opcode::Splice::new(types::Fd(r), -1, types::Fd(sock), -1, len)
        .flags(if more { SPLICE_F_MORE } else { 0 })
        .build()
}
