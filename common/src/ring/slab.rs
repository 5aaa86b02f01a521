//! The driver's core: the slot slab, the one lifecycle rule, the operations a program asks
//! for, and the classification of completions. It never enters the kernel: operations
//! become SQEs in a queue that [`Driver`](super::Driver) moves to the ring, and
//! completions come in as plain `(user_data, res, flags)` triples, so every rule below is
//! tested by feeding synthetic completions (see the tests at the bottom).
//!
//! # The lifecycle rule
//!
//! A slot is `Open` from [`Core::open`] (or [`Core::connect`]) until the program calls
//! [`Core::close`]. Closing cancels what can be cancelled (receive, send, connect); the
//! slot then waits for the last completion of every operation that refers to it (a file
//! read is waited for, not cancelled). Only then is its fd closed, by one CLOSE, its
//! generation bumped (late completions of the old connection are recognised as stale),
//! and [`Event::Closed`] delivered; the slot and its buffers are reused only after that
//! event. Buffers an SQE points to (the basic tier's receive buffer, the send buffer, the
//! read buffer) belong to the slot, so the kernel may write into them until the very
//! completion that ends the operation.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types};

use super::event::{Completion, Event, Payload, RecvMode, SlotId, TIMERS};
use super::fixed::FixedSends;
use super::sys;
use super::{Op, Token};

mod inline_send;
pub use inline_send::set_inline_sendfile;

/// Where a slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Not in use: on the free list, or released and waiting for its `Closed` event.
    Free,
    Open,
    /// Close decided; waiting for the last completion before CLOSE.
    Closing,
}

/// One [`Core::splice_file`] in progress: SPLICE in (file → pipe) linked to SPLICE out
/// (pipe → socket), and SPLICE outs that continue a short one.
#[derive(Debug, Default, Clone, Copy)]
struct Splicing {
    /// SPLICE SQEs of the slot not yet completed (0, 1 or 2).
    inflight: u8,
    /// File bytes asked of the SPLICE in.
    want: u32,
    /// Bytes of the send buffer written into the pipe ahead of the file's.
    head: u32,
    more: bool,
    /// The SPLICE in's result, once it completed.
    filled: Option<i32>,
    /// Bytes the SPLICE outs moved so far.
    drained: u32,
    /// The last SPLICE out's errno (ECANCELED when a short SPLICE in broke the link).
    out_errno: i32,
    /// Sent inline instead (`slab/inline_send.rs`): its local completion or POLLOUT wait
    /// is pending.
    inline: Option<inline_send::InlineSend>,
}

/// Most unsent send-buffer bytes [`Core::splice_file`] puts ahead of the file's.
pub const SPLICE_HEAD_MAX: usize = 16 * 1024;

struct Slot {
    generation: u16,
    fd: RawFd,
    life: Life,
    /// The program wants a receive outstanding.
    reading: bool,
    recv_armed: bool,
    recv_cancelled: bool,
    send_inflight: bool,
    /// Bytes of `send_buf` already sent by earlier completions of this send.
    send_at: usize,
    read_inflight: bool,
    /// CONNECT and its LINK_TIMEOUT not yet completed (0, 1 or 2).
    connecting: u8,
    /// The basic tier's receive buffer; the kernel writes it while `recv_armed`.
    recv_buf: Box<[u8]>,
    /// Read by the kernel while `send_inflight`.
    send_buf: Vec<u8>,
    /// Written by the kernel while `read_inflight`.
    read_buf: Vec<u8>,
    /// The other read buffer: while the program looks at one read's bytes, the next read
    /// may already go into `read_buf`.
    spare_read_buf: Vec<u8>,
    /// The slot's pipe for splicing (read end, write end, capacity in bytes): made on first
    /// use, kept for the next connection while it is known empty, closed otherwise.
    pipe: Option<(RawFd, RawFd, u32)>,
    /// The pipe may hold bytes (a splice failed or was cancelled): close it when idle.
    pipe_dirty: bool,
    splice: Splicing,
    /// The socket was made `O_NONBLOCK` for inline sends: SPLICE out waits for POLLOUT.
    nonblocking: bool,
}

impl Slot {
    fn ops(&self) -> u32 {
        self.recv_armed as u32
            + self.send_inflight as u32
            + self.read_inflight as u32
            + self.connecting as u32
            + self.splice.inflight as u32
    }

    /// Close the pipe if it may hold bytes (nothing of the slot's is in flight then).
    fn drop_dirty_pipe(&mut self) {
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

/// Settings of the core (the driver fills them from its configuration).
#[derive(Debug, Clone, Copy)]
pub struct CoreConfig {
    pub recv_mode: RecvMode,
    /// Receive buffer per slot in [`RecvMode::Own`].
    pub own_recv_size: usize,
    /// Buffer group and buffer size of the ring, for the other modes.
    pub bgid: u16,
    pub ring_buf_size: u32,
    /// Bound on every connect.
    pub connect_timeout: Duration,
}

/// A peer to connect to: its address, kept where the kernel may read it.
struct Peer {
    addr: Box<libc::sockaddr_storage>,
    len: libc::socklen_t,
    domain: libc::c_int,
}

pub struct UringCore {
    cfg: CoreConfig,
    slots: Vec<Slot>,
    free: Vec<SlotId>,
    /// Slots to look at before the next submit (arm or stop a receive).
    dirty: Vec<SlotId>,
    /// Released slots whose `Closed` event is still to be delivered.
    released: VecDeque<SlotId>,
    pending: VecDeque<Pending>,
    /// Completions made in user space (an inline send's result), as (user data, result):
    /// the driver delivers them like CQEs, through [`UringCore::complete`].
    local: VecDeque<(u64, i32)>,
    peers: Vec<Peer>,
    connect_ts: Box<types::Timespec>,
    timer_ts: Box<[types::Timespec; TIMERS]>,
    timer_armed: [bool; TIMERS],
    open: usize,
    pub(super) fixed: FixedSends,
    /// The socket last accepted (with SOCK_NONBLOCK), until `open` adopts it.
    accepted: Option<RawFd>,
    /// File ranges `cachestat` found fully cached in this batch of completions
    /// (`slab/inline_send.rs`).
    cached_now: Vec<(RawFd, u64, u32)>,
}

impl UringCore {
    pub fn new(cfg: CoreConfig) -> UringCore {
        UringCore {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            released: VecDeque::new(),
            pending: VecDeque::with_capacity(1024),
            local: VecDeque::new(),
            peers: Vec::new(),
            connect_ts: Box::new(types::Timespec::from(cfg.connect_timeout)),
            timer_ts: Box::new([types::Timespec::new(); TIMERS]),
            timer_armed: [false; TIMERS],
            open: 0,
            fixed: FixedSends::default(),
            accepted: None,
            cached_now: Vec::new(),
        }
    }

    pub fn recv_mode(&self) -> RecvMode {
        self.cfg.recv_mode
    }

    // ---- getters ----

    /// Slots handed out and not yet `Closed` (open or closing).
    pub fn live(&self) -> usize {
        self.open
    }

    /// Operations in flight on every slot together.
    pub fn in_flight(&self) -> u32 {
        self.slots.iter().map(Slot::ops).sum()
    }

    pub fn is_open(&self, slot: SlotId) -> bool {
        self.slots
            .get(slot as usize)
            .is_some_and(|s| s.life == Life::Open)
    }

    pub fn fd(&self, slot: SlotId) -> RawFd {
        self.slots[slot as usize].fd
    }

    /// Whether a send is in flight on the slot.
    pub fn sending(&self, slot: SlotId) -> bool {
        self.slots[slot as usize].send_inflight
    }

    /// Whether a receive is outstanding on the slot (armed, or cancelled and not yet ended).
    pub fn receiving(&self, slot: SlotId) -> bool {
        self.slots[slot as usize].recv_armed
    }

    /// Whether a splice is in flight on the slot.
    pub fn splicing(&self, slot: SlotId) -> bool {
        self.slots[slot as usize].splice.inflight > 0
    }

    /// Whether a file read is in flight on the slot.
    pub fn reading_file(&self, slot: SlotId) -> bool {
        self.slots[slot as usize].read_inflight
    }

    /// Upper bound of slot ids handed out so far (for sweeping).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    // ---- operations ----

    /// Adopt a connected socket (an accepted one); it is closed by the driver.
    pub fn open(&mut self, fd: RawFd) -> SlotId {
        let recv_size = match self.cfg.recv_mode {
            RecvMode::Own => self.cfg.own_recv_size,
            _ => 0,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    fd: -1,
                    life: Life::Free,
                    reading: false,
                    recv_armed: false,
                    recv_cancelled: false,
                    send_inflight: false,
                    send_at: 0,
                    read_inflight: false,
                    connecting: 0,
                    recv_buf: vec![0; recv_size].into_boxed_slice(),
                    send_buf: Vec::new(),
                    read_buf: Vec::new(),
                    spare_read_buf: Vec::new(),
                    pipe: None,
                    pipe_dirty: false,
                    splice: Splicing::default(),
                    nonblocking: false,
                });
                (self.slots.len() - 1) as SlotId
            }
        };
        let s = &mut self.slots[id as usize];
        debug_assert!(s.life == Life::Free && s.ops() == 0);
        s.fd = fd;
        s.life = Life::Open;
        s.reading = false;
        s.recv_cancelled = false;
        s.send_at = 0;
        s.send_buf.clear();
        // Accepted here: already non-blocking, no fcntl needed for an inline send.
        s.nonblocking = self.accepted.take() == Some(fd);
        self.open += 1;
        self.fixed.opened(id, true);
        id
    }

    /// Remember a peer for [`Core::connect`]; returns its id.
    pub fn add_peer(&mut self, addr: &libc::sockaddr_storage, len: libc::socklen_t) -> usize {
        let domain = addr.ss_family as libc::c_int;
        self.peers.push(Peer {
            addr: Box::new(*addr),
            len,
            domain,
        });
        self.peers.len() - 1
    }

    /// A new socket connecting to `peer`, bounded by the connect timeout. Fails (EMFILE,
    /// ENFILE...) only when no socket could be made; connect errors come as events.
    pub fn connect(&mut self, peer: usize) -> io::Result<SlotId> {
        let p = &self.peers[peer];
        let domain = p.domain;
        let fd = sys::stream_socket(domain, libc::SOCK_CLOEXEC)?;
        let id = self.open(fd);
        self.slots[id as usize].nonblocking = false;
        self.fixed.opened(id, true);
        let s = &mut self.slots[id as usize];
        let p = &self.peers[peer];
        s.connecting = 2;
        // SAFETY: the address is boxed in `peers`, which lives as long as the core and is
        // never shrunk; the timespec is boxed in the core and never changed after `new`.
        let connect = opcode::Connect::new(
            types::Fd(fd),
            (&*p.addr as *const libc::sockaddr_storage).cast(),
            p.len,
        )
        .build()
        .flags(squeue::Flags::IO_LINK)
        .user_data(Token::of(id, s.generation, Op::Connect).0);
        let timeout = opcode::LinkTimeout::new(&*self.connect_ts)
            .build()
            .user_data(Token::of(id, s.generation, Op::LinkTimeout).0);
        self.pending.push_back(Pending::Linked(connect, timeout));
        Ok(id)
    }

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

    /// Move up to `len` bytes of `file` at `offset` to the socket without copying them
    /// through user space: SPLICE file → the slot's pipe, linked to SPLICE pipe → socket
    /// (`more`: more bytes follow, like MSG_MORE). Bytes the program left in the send
    /// buffer without sending them (a response head, at most [`SPLICE_HEAD_MAX`]) are
    /// written into the pipe first and leave in the same SPLICE out, in one segment with
    /// the file's first bytes. Returns how many file bytes this splice moves (at most
    /// what the pipe holds); `Spliced { len }` or `SpliceFailed` follows. A range whose
    /// pages are all cached goes out with `sendfile` on this thread instead, without the
    /// io-wq hop (`slab/inline_send.rs`); `Spliced` may then report fewer bytes than
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

    /// Half-close the socket (`shutdown(SHUT_WR)`), for a lingering close.
    pub fn shutdown_write(&mut self, slot: SlotId) {
        let s = &self.slots[slot as usize];
        if s.life == Life::Open {
            // A plain syscall: rare path.
            sys::shutdown_write(s.fd);
        }
    }

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

    /// One `Ready { id }` when `fd` becomes readable.
    pub fn poll_readable(&mut self, id: u32, fd: RawFd) {
        let e = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(Token::of(id, 0, Op::Poll).0);
        self.pending.push_back(Pending::One(e));
    }

    fn cancel_entry(&self, target: Token) -> squeue::Entry {
        opcode::AsyncCancel::new(target.0)
            .build()
            .user_data(Token::of(target.slot(), 0, Op::Cancel).0)
    }

    // ---- completions ----

    /// Classify one completion and apply it to the slab.
    pub fn complete(&mut self, user_data: u64, res: i32, flags: u32) -> Completion {
        let token = Token(user_data);
        let bid = if self.cfg.recv_mode == RecvMode::Own {
            None
        } else {
            cqueue::buffer_select(flags)
        };
        let Some(op) = token.kind() else {
            return Completion::Stale { bid };
        };
        let rearm = !cqueue::more(flags);
        let ev = match op {
            Op::Accept if res >= 0 => {
                self.accepted = Some(res);
                Event::Accepted {
                    listener: token.slot(),
                    fd: res,
                    rearm,
                }
            }
            Op::Accept => Event::AcceptFailed {
                listener: token.slot(),
                errno: -res,
                rearm,
            },
            Op::Timer => {
                self.timer_armed[token.slot() as usize] = false;
                Event::Timer {
                    id: token.slot(),
                    cancelled: res == -libc::ECANCELED,
                }
            }
            Op::Poll => {
                // Another thread may hand over a file opened under a number closed here.
                self.new_batch();
                Event::Ready { id: token.slot() }
            }
            Op::Cancel | Op::Close | Op::Wait => return Completion::Quiet,
            Op::Connect
            | Op::LinkTimeout
            | Op::Recv
            | Op::Send
            | Op::Read
            | Op::SpliceIn
            | Op::SpliceOut
            | Op::SpliceWait => return self.complete_slot(token, op, res, flags, bid),
        };
        Completion::Event(ev)
    }

    fn complete_slot(
        &mut self,
        token: Token,
        op: Op,
        res: i32,
        flags: u32,
        bid: Option<u16>,
    ) -> Completion {
        let slot = token.slot();
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return Completion::Stale { bid };
        };
        if s.generation != token.generation() || s.life == Life::Free {
            return Completion::Stale { bid };
        }
        // Account the operation first, so that a close decided by the program sees
        // whether anything else is still in flight.
        let ended = match op {
            Op::Recv => {
                let ended = self.cfg.recv_mode != RecvMode::Multishot || !cqueue::more(flags);
                if ended {
                    s.recv_armed = false;
                    s.recv_cancelled = false;
                }
                ended
            }
            Op::Send => true,
            Op::Read => {
                s.read_inflight = false;
                true
            }
            Op::SpliceOut | Op::SpliceWait if s.splice.inline.is_some() => {
                s.splice.inflight = s.splice.inflight.saturating_sub(1);
                true
            }
            Op::SpliceWait => {
                s.splice.inflight = s.splice.inflight.saturating_sub(1);
                true
            }
            Op::SpliceIn => {
                s.splice.inflight = s.splice.inflight.saturating_sub(1);
                s.splice.filled = Some(res);
                true
            }
            Op::SpliceOut => {
                s.splice.inflight = s.splice.inflight.saturating_sub(1);
                if res > 0 {
                    s.splice.drained += res as u32;
                } else {
                    s.splice.out_errno = if res == 0 { libc::EPIPE } else { -res };
                }
                true
            }
            _ => {
                s.connecting = s.connecting.saturating_sub(1);
                true
            }
        };
        if s.life == Life::Closing {
            if op == Op::Send {
                s.send_inflight = false;
            }
            if ended {
                self.after_op(slot);
            }
            return Completion::Stale { bid };
        }
        let ev = match op {
            Op::Recv => return self.complete_recv(slot, res, bid),
            Op::Send => return self.complete_send(slot, res),
            Op::SpliceOut | Op::SpliceWait if s.splice.inline.is_some() => {
                return match self.complete_inline(slot, res) {
                    Some(ev) => Completion::Event(ev),
                    None => Completion::Quiet,
                };
            }
            Op::SpliceIn | Op::SpliceOut | Op::SpliceWait => return self.complete_splice(slot),
            Op::Read if res > 0 => Event::FileRead {
                slot,
                data: Payload::File { len: res as usize },
            },
            Op::Read => Event::FileReadFailed { slot, res },
            Op::Connect if res == 0 => Event::Connected { slot },
            // ECANCELED: the linked timeout fired first.
            Op::Connect if res == -libc::ECANCELED => Event::ConnectFailed {
                slot,
                errno: libc::ETIMEDOUT,
            },
            Op::Connect => Event::ConnectFailed { slot, errno: -res },
            _ => return Completion::Quiet,
        };
        Completion::Event(ev)
    }

    fn complete_recv(&mut self, slot: SlotId, res: i32, bid: Option<u16>) -> Completion {
        let s = &mut self.slots[slot as usize];
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

    fn complete_send(&mut self, slot: SlotId, res: i32) -> Completion {
        let s = &mut self.slots[slot as usize];
        s.send_inflight = false;
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

    /// Both halves of a splice are in: report it, or continue a short SPLICE out.
    fn complete_splice(&mut self, slot: SlotId) -> Completion {
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
                let wait = inline_send::pollout(s.fd)
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

    /// After an operation of a closing slot ended: release it when it was the last.
    fn after_op(&mut self, slot: SlotId) {
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

    /// Arm or stop the receives of slots marked dirty. Runs before every submit, never
    /// while the driver lends a slot's buffer out.
    pub(super) fn settle(&mut self) {
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

    /// The next released slot: it goes back on the free list as its `Closed` is delivered.
    pub(super) fn next_released(&mut self) -> Option<SlotId> {
        let slot = self.released.pop_front()?;
        self.free.push(slot);
        self.open -= 1;
        Some(slot)
    }

    pub(super) fn pending(&mut self) -> &mut VecDeque<Pending> {
        &mut self.pending
    }

    /// The next completion made in user space, to deliver like a CQE.
    pub(super) fn next_local(&mut self) -> Option<(u64, i32)> {
        self.local.pop_front()
    }

    /// Whether a completion made in user space waits (the next turn must not block).
    pub(super) fn has_local(&self) -> bool {
        !self.local.is_empty()
    }

    /// Lend out the slot's receive buffer (own mode) or read buffer while the program
    /// looks at the bytes; `restore` puts it back.
    pub(super) fn take_recv_buf(&mut self, slot: SlotId) -> Box<[u8]> {
        std::mem::take(&mut self.slots[slot as usize].recv_buf)
    }
    pub(super) fn restore_recv_buf(&mut self, slot: SlotId, buf: Box<[u8]>) {
        self.slots[slot as usize].recv_buf = buf;
    }
    pub(super) fn take_read_buf(&mut self, slot: SlotId, len: usize) -> Vec<u8> {
        let s = &mut self.slots[slot as usize];
        let spare = std::mem::take(&mut s.spare_read_buf);
        // The program may start the next read during the callback: it goes into the spare.
        let mut buf = std::mem::replace(&mut s.read_buf, spare);
        // SAFETY: the kernel wrote `len` bytes into the capacity reserved by read_file()
        // (the completion said so), and the read is over.
        unsafe { buf.set_len(len.min(buf.capacity())) };
        buf
    }
    pub(super) fn restore_read_buf(&mut self, slot: SlotId, mut buf: Vec<u8>) {
        buf.clear();
        self.slots[slot as usize].spare_read_buf = buf;
    }

    /// Close every open slot (shutdown); returns how many operations are still in flight.
    pub(super) fn close_all(&mut self) -> u32 {
        for slot in 0..self.slots.len() as SlotId {
            self.close(slot);
        }
        self.in_flight()
    }

    /// The kernel may still write into slot buffers: never free them.
    pub(super) fn leak_buffers(&mut self) {
        for s in &mut self.slots {
            std::mem::forget(std::mem::take(&mut s.recv_buf));
            std::mem::forget(std::mem::take(&mut s.send_buf));
            std::mem::forget(std::mem::take(&mut s.read_buf));
            std::mem::forget(std::mem::take(&mut s.spare_read_buf));
        }
        let peers = std::mem::take(&mut self.peers);
        std::mem::forget(peers);
    }
}

/// SPLICE from the pipe's read end `r` into the socket `sock`.
fn splice_out(sock: RawFd, r: RawFd, len: u32, more: bool) -> squeue::Entry {
    const SPLICE_F_MORE: u32 = 4;
    opcode::Splice::new(types::Fd(r), -1, types::Fd(sock), -1, len)
        .flags(if more { SPLICE_F_MORE } else { 0 })
        .build()
}

impl Drop for UringCore {
    fn drop(&mut self) {
        for s in &mut self.slots {
            if let Some(pipe) = s.pipe.take() {
                sys::close_pipe(pipe);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The lifecycle and classification rules, fed synthetic completions: no kernel.
    use super::*;
    use io_uring::cqueue;

    const MORE: u32 = 1 << 1; // IORING_CQE_F_MORE
    const BUFFER: u32 = 1; // IORING_CQE_F_BUFFER

    fn core(mode: RecvMode) -> UringCore {
        UringCore::new(CoreConfig {
            recv_mode: mode,
            own_recv_size: 4096,
            bgid: 0,
            ring_buf_size: 2048,
            connect_timeout: Duration::from_secs(1),
        })
    }

    /// The queued SQEs as (op byte of the token, opcode, len field), and clear the queue.
    fn drain(c: &mut UringCore) -> Vec<(Option<Op>, u8, u32, u64)> {
        c.settle();
        let mut out = Vec::new();
        for p in c.pending.drain(..) {
            let entries = match p {
                Pending::One(e) => vec![e],
                Pending::Linked(a, b) => vec![a, b],
            };
            for e in entries {
                // SAFETY: `Entry` is a repr(C) wrapper of the 64-byte io_uring_sqe; `len` is
                // the u32 at offset 24 in the kernel's uapi layout.
                let raw: [u8; 64] = unsafe { std::mem::transmute(e.clone()) };
                let len = u32::from_ne_bytes(raw[24..28].try_into().unwrap());
                let t = Token(e.get_user_data());
                out.push((t.kind(), e.get_opcode() as u8, len, e.get_user_data()));
            }
        }
        out
    }

    fn ud(slot: SlotId, gen: u16, op: Op) -> u64 {
        Token::of(slot, gen, op).0
    }

    fn flag_bid(bid: u16) -> u32 {
        // IORING_CQE_BUFFER_SHIFT is 16 in the kernel's uapi.
        BUFFER | ((bid as u32) << 16)
    }

    fn ev(c: Completion) -> Event<Payload> {
        match c {
            Completion::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn buffer_flag_encoding_matches_the_crate() {
        assert_eq!(cqueue::buffer_select(flag_bid(7)), Some(7));
        assert!(cqueue::more(MORE));
    }

    #[test]
    fn stale_generation_is_never_delivered_and_its_buffer_goes_back() {
        let mut c = core(RecvMode::Select);
        let a = c.open(10);
        c.set_reading(a, true);
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 1);
        c.close(a);
        // The receive is cancelled; its ECANCELED completion ends it, then CLOSE.
        let r = c.complete(ud(a, 0, Op::Recv), -libc::ECANCELED, 0);
        assert_eq!(r, Completion::Stale { bid: None });
        assert_eq!(c.next_released(), Some(a));
        // The slot is reused by a new connection with a new generation.
        let b = c.open(11);
        assert_eq!(a, b);
        // A late completion for the old generation, carrying a buffer: stale, recycled.
        let late = c.complete(ud(a, 0, Op::Recv), 100, flag_bid(3));
        assert_eq!(late, Completion::Stale { bid: Some(3) });
        // The new connection still sees its own data.
        c.set_reading(b, true);
        drain(&mut c);
        let d = ev(c.complete(ud(b, 1, Op::Recv), 5, flag_bid(4)));
        assert_eq!(
            d,
            Event::Data {
                slot: b,
                data: Payload::Ring { bid: 4, len: 5 }
            }
        );
    }

    #[test]
    fn multishot_rearms_only_without_f_more() {
        let mut c = core(RecvMode::Multishot);
        let a = c.open(10);
        c.set_reading(a, true);
        let sqes = drain(&mut c);
        assert_eq!(sqes[0].1, opcode::RecvMulti::CODE);
        ev(c.complete(ud(a, 0, Op::Recv), 10, flag_bid(1) | MORE));
        assert!(drain(&mut c).is_empty(), "still armed: no new SQE");
        ev(c.complete(ud(a, 0, Op::Recv), 10, flag_bid(2)));
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 1, "multishot ended: armed again");
        assert_eq!(sqes[0].0, Some(Op::Recv));
    }

    #[test]
    fn enobufs_rearms_without_an_event() {
        let mut c = core(RecvMode::Multishot);
        let a = c.open(10);
        c.set_reading(a, true);
        drain(&mut c);
        assert_eq!(
            c.complete(ud(a, 0, Op::Recv), -libc::ENOBUFS, 0),
            Completion::Quiet
        );
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 1);
        assert_eq!(sqes[0].1, opcode::RecvMulti::CODE);
    }

    #[test]
    fn select_mode_passes_the_buffer_size() {
        // Length 0 means "the buffer's size" only from 6.0; on 5.19 it reads 0 bytes.
        let mut c = core(RecvMode::Select);
        let a = c.open(10);
        c.set_reading(a, true);
        let sqes = drain(&mut c);
        assert_eq!(sqes[0].1, opcode::Recv::CODE);
        assert_eq!(sqes[0].2, 2048);
    }

    #[test]
    fn own_mode_receives_into_the_slot_buffer() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.set_reading(a, true);
        let sqes = drain(&mut c);
        assert_eq!(sqes[0].2, 4096);
        let d = ev(c.complete(ud(a, 0, Op::Recv), 7, 0));
        assert_eq!(
            d,
            Event::Data {
                slot: a,
                data: Payload::Own { len: 7 }
            }
        );
        assert_eq!(drain(&mut c).len(), 1, "single shot: armed again");
    }

    #[test]
    fn eof_and_errors_stop_reading() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.set_reading(a, true);
        drain(&mut c);
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::Recv), 0, 0)),
            Event::Eof { slot: a }
        );
        assert!(drain(&mut c).is_empty(), "no receive after EOF");
        c.set_reading(a, true);
        drain(&mut c);
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::Recv), -libc::ECONNRESET, 0)),
            Event::RecvFailed {
                slot: a,
                errno: libc::ECONNRESET
            }
        );
        assert!(drain(&mut c).is_empty());
    }

    #[test]
    fn close_cancels_waits_for_the_last_completion_then_closes_once() {
        let mut c = core(RecvMode::Multishot);
        let a = c.open(10);
        c.set_reading(a, true);
        drain(&mut c);
        c.send_buffer(a).unwrap().extend_from_slice(b"hello");
        c.send(a);
        drain(&mut c);
        c.close(a);
        let sqes = drain(&mut c);
        let cancels = sqes.iter().filter(|s| s.0 == Some(Op::Cancel)).count();
        assert_eq!(cancels, 2, "receive and send cancelled: {sqes:?}");
        assert!(!c.is_open(a));
        assert!(c.send_buffer(a).is_none());
        // The send completes (even successfully): not delivered, slot not yet released.
        assert_eq!(
            c.complete(ud(a, 0, Op::Send), 5, 0),
            Completion::Stale { bid: None }
        );
        assert_eq!(c.next_released(), None);
        assert!(drain(&mut c).iter().all(|s| s.0 != Some(Op::Close)));
        // Data racing the cancel: its buffer goes back, nothing delivered.
        assert_eq!(
            c.complete(ud(a, 0, Op::Recv), 3, flag_bid(9) | MORE),
            Completion::Stale { bid: Some(9) }
        );
        assert_eq!(c.next_released(), None);
        // The last completion: ECANCELED without F_MORE. Now CLOSE, once.
        c.complete(ud(a, 0, Op::Recv), -libc::ECANCELED, 0);
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 1);
        assert_eq!(sqes[0].1, opcode::Close::CODE);
        assert_eq!(c.next_released(), Some(a));
        assert_eq!(c.next_released(), None);
        assert_eq!(c.live(), 0);
        c.close(a);
        assert!(drain(&mut c).is_empty(), "closing twice does nothing");
    }

    #[test]
    fn short_send_continues_with_the_rest_and_reports_once() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.send_buffer(a).unwrap().extend_from_slice(&[7u8; 1000]);
        c.send(a);
        assert_eq!(drain(&mut c)[0].2, 1000);
        assert_eq!(c.complete(ud(a, 0, Op::Send), 400, 0), Completion::Quiet);
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 1);
        assert_eq!(sqes[0].2, 600, "the rest of the same bytes");
        assert!(c.send_buffer(a).is_none(), "still in flight");
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::Send), 600, 0)),
            Event::Sent { slot: a, len: 1000 }
        );
        assert_eq!(c.send_buffer(a).map(|b| b.len()), Some(0));
    }

    #[test]
    fn eintr_and_eagain_on_send_retry_instead_of_failing() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.send_buffer(a).unwrap().extend_from_slice(b"abc");
        c.send(a);
        drain(&mut c);
        for errno in [libc::EINTR, libc::EAGAIN] {
            assert_eq!(c.complete(ud(a, 0, Op::Send), -errno, 0), Completion::Quiet);
            let sqes = drain(&mut c);
            assert_eq!(sqes.len(), 1);
            assert_eq!(sqes[0].2, 3);
        }
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::Send), -libc::EPIPE, 0)),
            Event::SendFailed {
                slot: a,
                errno: libc::EPIPE
            }
        );
    }

    #[test]
    fn connect_timeout_is_etimedout_and_close_waits_for_both_halves() {
        let mut c = core(RecvMode::Own);
        // SAFETY: all-zero is a valid sockaddr_storage; then fill an AF_INET address.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        ss.ss_family = libc::AF_INET as libc::sa_family_t;
        let peer = c.add_peer(&ss, std::mem::size_of::<libc::sockaddr_in>() as _);
        let a = c.connect(peer).expect("a socket");
        let fd = c.fd(a);
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 2);
        assert_eq!(sqes[0].0, Some(Op::Connect));
        assert_eq!(sqes[1].0, Some(Op::LinkTimeout));
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::Connect), -libc::ECANCELED, 0)),
            Event::ConnectFailed {
                slot: a,
                errno: libc::ETIMEDOUT
            }
        );
        c.close(a);
        assert_eq!(
            c.next_released(),
            None,
            "the link timeout is still in flight"
        );
        c.complete(ud(a, 0, Op::LinkTimeout), -libc::ETIME, 0);
        assert_eq!(c.next_released(), Some(a));
        // SAFETY: the test made this socket; the driver's CLOSE would have closed it.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn a_file_read_in_flight_holds_the_slot_until_it_completes() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.read_file(a, 99, 0, 4096);
        assert_eq!(drain(&mut c)[0].2, 4096);
        c.close(a);
        assert_eq!(c.next_released(), None);
        c.complete(ud(a, 0, Op::Read), 4096, 0);
        assert_eq!(c.next_released(), Some(a));
    }

    #[test]
    fn a_read_started_while_the_last_one_is_lent_out_keeps_its_buffer() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.read_file(a, 99, 0, 4096);
        drain(&mut c);
        c.complete(ud(a, 0, Op::Read), 100, 0);
        let lent = c.take_read_buf(a, 100);
        assert_eq!(lent.len(), 100);
        // The program asks for the next chunk while it still holds the first one.
        c.read_file(a, 99, 100, 4096);
        let addr = {
            let Some(Pending::One(e)) = c.pending.back() else {
                panic!("a read SQE")
            };
            // SAFETY: as in drain(); `addr` is the u64 at offset 16.
            let raw: [u8; 64] = unsafe { std::mem::transmute(e.clone()) };
            u64::from_ne_bytes(raw[16..24].try_into().unwrap())
        };
        assert_ne!(addr, lent.as_ptr() as u64, "never the lent buffer");
        c.restore_read_buf(a, lent);
        // The buffer the kernel writes is still the slot's, in place.
        assert_eq!(addr, c.slots[a as usize].read_buf.as_ptr() as u64);
        assert!(c.slots[a as usize].read_buf.capacity() >= 4096);
    }

    /// The pipe's capacity for slot `a` (the kernel decides it).
    fn pipe_cap(c: &UringCore, a: SlotId) -> u32 {
        c.slots[a as usize].pipe.expect("a pipe").2
    }

    #[test]
    fn splice_is_a_linked_pair_and_reports_once_both_halves_are_in() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        let n = c.splice_file(a, 99, 0, 8192, true).expect("a pipe");
        assert_eq!(n, 8192);
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 2);
        assert_eq!(sqes[0].0, Some(Op::SpliceIn));
        assert_eq!(sqes[1].0, Some(Op::SpliceOut));
        assert!(sqes
            .iter()
            .all(|s| s.1 == opcode::Splice::CODE && s.2 == 8192));
        assert!(c.splicing(a));
        assert!(
            c.splice_file(a, 99, 0, 8192, false).is_err(),
            "one at a time"
        );
        assert_eq!(
            c.complete(ud(a, 0, Op::SpliceIn), 8192, 0),
            Completion::Quiet
        );
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::SpliceOut), 8192, 0)),
            Event::Spliced { slot: a, len: 8192 }
        );
        assert!(!c.splicing(a));
        // The pipe is empty again and kept for the next splice of this connection.
        assert!(c.slots[a as usize].pipe.is_some(), "kept while open");
        c.close(a);
        assert_eq!(c.next_released(), Some(a));
        // It goes with the connection: a free slot holds no fds (the soak's fd count).
        assert!(c.slots[a as usize].pipe.is_none());
    }

    #[test]
    fn bytes_left_in_the_send_buffer_lead_the_same_splice_out() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.send_buffer(a)
            .unwrap()
            .extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        let n = c.splice_file(a, 99, 0, 8192, false).unwrap();
        assert_eq!(n, 8192);
        let sqes = drain(&mut c);
        assert_eq!((sqes[0].0, sqes[0].2), (Some(Op::SpliceIn), 8192));
        assert_eq!((sqes[1].0, sqes[1].2), (Some(Op::SpliceOut), 19 + 8192));
        assert_eq!(
            c.send_buffer(a).map(|b| b.len()),
            Some(0),
            "moved to the pipe"
        );
        let (r, _, cap) = c.slots[a as usize].pipe.unwrap();
        let mut got = [0u8; 64];
        // SAFETY: reading our own pipe into a local buffer.
        let k = unsafe { libc::read(r, got.as_mut_ptr().cast(), got.len()) };
        assert_eq!(&got[..k as usize], b"HTTP/1.1 200 OK\r\n\r\n");
        c.complete(ud(a, 0, Op::SpliceIn), 8192, 0);
        assert_eq!(
            c.complete(ud(a, 0, Op::SpliceOut), 19 + 100, 0),
            Completion::Quiet,
            "short: the rest follows"
        );
        assert_eq!(drain(&mut c)[0].2, 8192 - 100);
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::SpliceOut), 8192 - 100, 0)),
            Event::Spliced { slot: a, len: 8192 },
            "the file's bytes, not the head's"
        );
        // The head's page is not the file's: a full pipe's worth is trimmed by one page.
        c.send_buffer(a).unwrap().extend_from_slice(b"head");
        let n = c.splice_file(a, 99, 0, u32::MAX, false).unwrap();
        assert_eq!(n, cap - 4096);
        drain(&mut c);
        c.complete(ud(a, 0, Op::SpliceIn), n as i32, 0);
        c.complete(ud(a, 0, Op::SpliceOut), n as i32 + 4, 0);
        // Too much to put ahead of the file: refused, nothing queued.
        c.send_buffer(a)
            .unwrap()
            .extend_from_slice(&vec![0; SPLICE_HEAD_MAX + 1]);
        assert!(c.splice_file(a, 99, 0, 8192, false).is_err());
        assert!(drain(&mut c).is_empty());
    }

    #[test]
    fn splice_len_fits_the_pipe_even_from_inside_a_page() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        let n = c.splice_file(a, 99, 100, u32::MAX, false).unwrap();
        let cap = pipe_cap(&c, a);
        assert_eq!(
            n,
            cap - 100,
            "one page slot is shared with the bytes before"
        );
    }

    #[test]
    fn a_short_splice_out_continues_with_the_rest_from_the_pipe() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.splice_file(a, 99, 0, 8192, false).unwrap();
        drain(&mut c);
        c.complete(ud(a, 0, Op::SpliceIn), 8192, 0);
        assert_eq!(
            c.complete(ud(a, 0, Op::SpliceOut), 3000, 0),
            Completion::Quiet
        );
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 1);
        assert_eq!((sqes[0].0, sqes[0].2), (Some(Op::SpliceOut), 5192));
        assert_eq!(
            c.complete(ud(a, 0, Op::SpliceOut), -libc::EINTR, 0),
            Completion::Quiet
        );
        assert_eq!(drain(&mut c)[0].2, 5192, "interrupted: the same rest again");
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::SpliceOut), 5192, 0)),
            Event::Spliced { slot: a, len: 8192 }
        );
    }

    #[test]
    fn a_file_that_shrank_fails_the_splice_and_drops_the_pipe() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.splice_file(a, 99, 0, 8192, false).unwrap();
        drain(&mut c);
        // The file ended after 100 bytes: the short SPLICE in breaks the link.
        assert_eq!(
            c.complete(ud(a, 0, Op::SpliceIn), 100, 0),
            Completion::Quiet
        );
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::SpliceOut), -libc::ECANCELED, 0)),
            Event::SpliceFailed { slot: a, res: 0 }
        );
        assert!(c.slots[a as usize].pipe.is_none(), "100 bytes left in it");
        // Nothing at all (the file is empty now), and a read error, fail the same way.
        for (res, want) in [(0, 0), (-libc::EIO, -libc::EIO)] {
            c.splice_file(a, 99, 0, 8192, false).unwrap();
            drain(&mut c);
            c.complete(ud(a, 0, Op::SpliceIn), res, 0);
            assert_eq!(
                ev(c.complete(ud(a, 0, Op::SpliceOut), -libc::ECANCELED, 0)),
                Event::SpliceFailed { slot: a, res: want }
            );
        }
        // The socket failing is reported with its errno.
        c.splice_file(a, 99, 0, 8192, false).unwrap();
        drain(&mut c);
        c.complete(ud(a, 0, Op::SpliceIn), 8192, 0);
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::SpliceOut), -libc::EPIPE, 0)),
            Event::SpliceFailed {
                slot: a,
                res: -libc::EPIPE
            }
        );
    }

    #[test]
    fn close_cancels_a_splice_and_waits_for_both_halves() {
        let mut c = core(RecvMode::Own);
        let a = c.open(10);
        c.splice_file(a, 99, 0, 8192, false).unwrap();
        drain(&mut c);
        c.close(a);
        let sqes = drain(&mut c);
        assert_eq!(
            sqes.iter().filter(|s| s.0 == Some(Op::Cancel)).count(),
            2,
            "{sqes:?}"
        );
        assert_eq!(
            c.complete(ud(a, 0, Op::SpliceIn), 8192, 0),
            Completion::Stale { bid: None }
        );
        assert_eq!(c.next_released(), None, "the SPLICE out is still in flight");
        c.complete(ud(a, 0, Op::SpliceOut), -libc::ECANCELED, 0);
        assert_eq!(drain(&mut c)[0].1, opcode::Close::CODE);
        assert_eq!(c.next_released(), Some(a));
        assert!(
            c.slots[a as usize].pipe.is_none(),
            "it may hold bytes: not for the next connection"
        );
        // A late completion of the old connection's splice is stale.
        let b = c.open(11);
        assert_eq!(
            c.complete(ud(b, 0, Op::SpliceOut), 10, 0),
            Completion::Stale { bid: None }
        );
    }

    #[test]
    fn back_pressure_cancels_a_multishot_receive_and_resumes() {
        let mut c = core(RecvMode::Multishot);
        let a = c.open(10);
        c.set_reading(a, true);
        drain(&mut c);
        c.set_reading(a, false);
        let sqes = drain(&mut c);
        assert_eq!(sqes.len(), 1);
        assert_eq!(sqes[0].0, Some(Op::Cancel));
        assert!(c.receiving(a), "cancelled, not yet ended");
        // The end is an event: a program waiting for the receive to stop (kTLS) is told.
        assert_eq!(
            ev(c.complete(ud(a, 0, Op::Recv), -libc::ECANCELED, 0)),
            Event::RecvStopped { slot: a }
        );
        assert!(!c.receiving(a));
        assert!(drain(&mut c).is_empty(), "not wanted: not armed");
        c.set_reading(a, true);
        assert_eq!(drain(&mut c).len(), 1);
    }

    #[test]
    fn timers_and_accepts_are_classified() {
        let mut c = core(RecvMode::Own);
        assert!(c.timer(2, Duration::from_millis(5)));
        assert!(
            !c.timer(2, Duration::from_millis(5)),
            "one at a time per id"
        );
        drain(&mut c);
        assert_eq!(
            ev(c.complete(ud(2, 0, Op::Timer), -libc::ETIME, 0)),
            Event::Timer {
                id: 2,
                cancelled: false
            }
        );
        assert!(!c.timer_armed(2));
        assert_eq!(
            ev(c.complete(ud(1, 0, Op::Accept), 42, MORE)),
            Event::Accepted {
                listener: 1,
                fd: 42,
                rearm: false
            }
        );
        assert_eq!(
            ev(c.complete(ud(1, 0, Op::Accept), -libc::EMFILE, 0)),
            Event::AcceptFailed {
                listener: 1,
                errno: libc::EMFILE,
                rearm: true
            }
        );
        assert_eq!(c.complete(ud(0, 0, Op::Cancel), 0, 0), Completion::Quiet);
        assert_eq!(
            c.complete(0xff << 48, 0, 0),
            Completion::Stale { bid: None }
        );
    }

    #[test]
    fn cq_overflow_and_signals_mean_reap_and_retry() {
        use super::super::EnterError;
        assert_eq!(EnterError::classify(Some(libc::EBUSY)), EnterError::Retry);
        assert_eq!(EnterError::classify(Some(libc::EINTR)), EnterError::Retry);
        assert_eq!(EnterError::classify(Some(libc::EAGAIN)), EnterError::Retry);
        assert_eq!(EnterError::classify(Some(libc::EBADF)), EnterError::Fatal);
        assert_eq!(EnterError::classify(None), EnterError::Fatal);
    }
}
