//! The io_uring driver's core: the slot slab, the one lifecycle rule, and the dispatch of
//! each completion to its operation. Each operation (its ask, the SQE it builds, the
//! meaning of its completion) lives in its own file under `op/`; the per-slot state they
//! share is in `slot.rs`. The core never enters the kernel: operations become SQEs in a
//! queue that the driver (`uring.rs`) moves to the ring, and completions come in as plain
//! `(user_data, res, flags)` triples, so every rule is tested by feeding synthetic
//! completions (see the tests at the bottom).
//!
//! # The lifecycle rule
//!
//! A slot is `Open` from [`Core::open`](super::Core::open) (or [`Core::connect`](super::Core::connect)) until the program calls
//! [`Core::close`](super::Core::close). Closing cancels what can be cancelled (receive, send, connect); the
//! slot then waits for the last completion of every operation that refers to it (a file
//! read is waited for, not cancelled). Only then is its fd closed, by one CLOSE, its
//! generation bumped (late completions of the old connection are recognised as stale),
//! and [`Event::Closed`](super::Event::Closed) delivered; the slot and its buffers are reused only after that
//! event. Buffers an SQE points to (the basic tier's receive buffer, the send buffer, the
//! read buffer) belong to the slot, so the kernel may write into them until the very
//! completion that ends the operation.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{cqueue, types};

use super::event::{Completion, RecvMode, SlotId, TIMERS};
use super::fixed::FixedSends;
use super::slot::{Life, Peer, Pending, Slot, Splicing};
use super::sys;
use super::{Op, Token};

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

pub struct UringCore {
    pub(super) cfg: CoreConfig,
    pub(super) slots: Vec<Slot>,
    pub(super) free: Vec<SlotId>,
    /// Slots to look at before the next submit (arm or stop a receive).
    pub(super) dirty: Vec<SlotId>,
    /// Released slots whose `Closed` event is still to be delivered.
    pub(super) released: VecDeque<SlotId>,
    pub(super) pending: VecDeque<Pending>,
    /// Completions made in user space (an inline send's result), as (user data, result):
    /// the driver delivers them like CQEs, through [`UringCore::complete`].
    pub(super) local: VecDeque<(u64, i32)>,
    pub(super) peers: Vec<Peer>,
    pub(super) connect_ts: Box<types::Timespec>,
    pub(super) timer_ts: Box<[types::Timespec; TIMERS]>,
    pub(super) timer_armed: [bool; TIMERS],
    pub(super) open: usize,
    pub(super) fixed: FixedSends,
    /// The socket last accepted (with SOCK_NONBLOCK), until `open` adopts it.
    pub(super) accepted: Option<RawFd>,
    /// File ranges `cachestat` found fully cached in this batch of completions
    /// (`op/splice_inline.rs`).
    pub(super) cached_now: Vec<(RawFd, u64, u32)>,
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

    /// Half-close the socket (`shutdown(SHUT_WR)`), for a lingering close.
    pub fn shutdown_write(&mut self, slot: SlotId) {
        let s = &self.slots[slot as usize];
        if s.life == Life::Open {
            // A plain syscall: rare path.
            sys::shutdown_write(s.fd);
        }
    }

    // ---- completions ----

    // ---- completions ----

    /// Classify one completion and apply it to the slab. Every [`Op`] is named here, with
    /// no catch-all: a new operation does not compile until its completion has a home
    /// (its file in `op/`).
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
        match op {
            Op::Recv => self.complete_recv(token, res, flags, bid),
            Op::Send => self.complete_send(token, res, bid),
            Op::Accept => self.complete_accept(token, res, flags),
            Op::Connect | Op::LinkTimeout => self.complete_connect(token, op, res, bid),
            Op::Read => self.complete_read(token, res, bid),
            Op::SpliceIn | Op::SpliceOut | Op::SpliceWait => {
                self.complete_splice(token, op, res, bid)
            }
            Op::Timer => self.complete_timer(token, res),
            Op::Poll => self.complete_poll(token),
            // Nothing to tell: a cancel's target reports for itself, a CLOSE is a slot's
            // last act (or a loose fd's), the shutdown wait only wakes the driver.
            Op::Cancel | Op::Close | Op::Wait => Completion::Quiet,
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
    use crate::ring::{Event, Payload, SPLICE_HEAD_MAX};
    use io_uring::{cqueue, opcode};

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
