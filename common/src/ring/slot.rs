//! What the io_uring core keeps per slot: where the slot is in its life, what of it is in
//! flight, and the buffers and pipe the kernel may be using. The core ([`super::slab`])
//! holds the slots; each operation's file ([`super::op`]) reads and changes the fields its
//! operation owns.

use std::os::fd::RawFd;

use io_uring::squeue;

use super::sys;
use super::token::Token;

/// Where a slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    /// Not in use: on the free list, or released and waiting for its `Closed` event.
    Free,
    Open,
    /// Close decided; waiting for the last completion before CLOSE.
    Closing,
}

/// One [`Core::splice_file`] in progress: SPLICE in (file → pipe) linked to SPLICE out
/// (pipe → socket), and SPLICE outs that continue a short one.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Splicing {
    /// SPLICE SQEs of the slot not yet completed (0, 1 or 2).
    pub(super) inflight: u8,
    /// File bytes asked of the SPLICE in.
    pub(super) want: u32,
    /// Bytes of the send buffer written into the pipe ahead of the file's.
    pub(super) head: u32,
    pub(super) more: bool,
    /// The SPLICE in's result, once it completed.
    pub(super) filled: Option<i32>,
    /// Bytes the SPLICE outs moved so far.
    pub(super) drained: u32,
    /// The last SPLICE out's errno (ECANCELED when a short SPLICE in broke the link).
    pub(super) out_errno: i32,
    /// Sent inline instead (`op/splice_inline.rs`): its local completion or POLLOUT wait
    /// is pending.
    pub(super) inline: Option<InlineSend>,
}

/// What an inline attempt left behind, while its completion is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InlineSend {
    pub(super) file: RawFd,
    pub(super) offset: u64,
    pub(super) len: u32,
    pub(super) more: bool,
    /// The attempt's result, reported when its local completion is delivered: bytes sent
    /// (0: the file ended), or -errno. `None`: a POLLOUT wait is armed and the attempt is
    /// still to make.
    pub(super) done: Option<i32>,
}

impl InlineSend {
    /// Waiting for room in the socket (a POLL_ADD in flight), not for a local completion.
    pub(super) fn waiting(&self) -> bool {
        self.done.is_none()
    }
}

pub(super) struct Slot {
    pub(super) generation: u16,
    pub(super) fd: RawFd,
    pub(super) life: Life,
    /// The program wants a receive outstanding.
    pub(super) reading: bool,
    pub(super) recv_armed: bool,
    pub(super) recv_cancelled: bool,
    pub(super) send_inflight: bool,
    /// Bytes of `send_buf` already sent by earlier completions of this send.
    pub(super) send_at: usize,
    pub(super) read_inflight: bool,
    /// CONNECT and its LINK_TIMEOUT not yet completed (0, 1 or 2).
    pub(super) connecting: u8,
    /// The basic tier's receive buffer; the kernel writes it while `recv_armed`.
    pub(super) recv_buf: Box<[u8]>,
    /// Read by the kernel while `send_inflight`.
    pub(super) send_buf: Vec<u8>,
    /// Written by the kernel while `read_inflight`.
    pub(super) read_buf: Vec<u8>,
    /// The other read buffer: while the program looks at one read's bytes, the next read
    /// may already go into `read_buf`.
    pub(super) spare_read_buf: Vec<u8>,
    /// The slot's pipe for splicing (read end, write end, capacity in bytes): made on first
    /// use, kept for the next connection while it is known empty, closed otherwise.
    pub(super) pipe: Option<(RawFd, RawFd, u32)>,
    /// The pipe may hold bytes (a splice failed or was cancelled): close it when idle.
    pub(super) pipe_dirty: bool,
    pub(super) splice: Splicing,
    /// The socket was made `O_NONBLOCK` for inline sends: SPLICE out waits for POLLOUT.
    pub(super) nonblocking: bool,
}

impl Slot {
    pub(super) fn ops(&self) -> u32 {
        self.recv_armed as u32
            + self.send_inflight as u32
            + self.read_inflight as u32
            + self.connecting as u32
            + self.splice.inflight as u32
    }

    /// Close the pipe if it may hold bytes (nothing of the slot's is in flight then).
    pub(super) fn drop_dirty_pipe(&mut self) {
        if self.pipe_dirty && self.splice.inflight == 0 {
            self.pipe_dirty = false;
            if let Some(pipe) = self.pipe.take() {
                sys::close_pipe(pipe);
            }
        }
    }
}

/// An SQE waiting for room in the submission queue; a linked pair stays together.
#[derive(Debug)]
pub(super) enum Pending {
    One(squeue::Entry),
    Linked(squeue::Entry, squeue::Entry),
}

/// A peer to connect to: its address, kept where the kernel may read it.
pub(super) struct Peer {
    pub(super) addr: Box<libc::sockaddr_storage>,
    pub(super) len: libc::socklen_t,
    pub(super) domain: libc::c_int,
}

/// The slot a completion of `token` is about; `None` when the slot has been handed out
/// again since (a stale completion: its generation is older) or is free.
#[inline]
pub(super) fn current(slots: &mut [Slot], token: Token) -> Option<&mut Slot> {
    let s = slots.get_mut(token.slot() as usize)?;
    (s.generation == token.generation() && s.life != Life::Free).then_some(s)
}
