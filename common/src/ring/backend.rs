//! The two backends behind one interface. A program holds a [`Driver`](super::Driver) and talks to the
//! [`Core`] it lends to the callback; which kernel interface runs underneath (io_uring at
//! one of its tiers, or epoll where io_uring is forbidden or missing) is decided once, by
//! the tier in [`DriverConfig`], and the program's code does not change.
//!
//! Both are enums rather than a trait so that the programs keep naming one concrete type
//! (`&mut Core`) in every function: a trait would make every worker and engine function
//! generic. The price is one predictable branch per ask and per turn; the benchmark in
//! BENCHMARKS.md ("io_uring path through the backend enum") shows it does not move the
//! io_uring numbers.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::builder::RingConfig;
use super::epoll::EpollCore;
use super::event::{RecvMode, SlotId};
use super::slab::UringCore;

/// Everything a driver needs.
#[derive(Debug, Clone, Copy)]
pub struct DriverConfig {
    pub ring: RingConfig,
    pub recv_mode: RecvMode,
    /// Receive buffer per connection in [`RecvMode::Own`].
    pub own_recv_size: usize,
    /// Buffer ring geometry in the other modes (count is a power of two).
    pub ring_buf_count: u16,
    pub ring_buf_size: u32,
    pub connect_timeout: Duration,
}

/// The slot slab and the asks of one thread, for either backend.
pub enum Core {
    Uring(UringCore),
    Epoll(EpollCore),
}

macro_rules! either {
    ($core:expr, $c:ident => $e:expr) => {
        match $core {
            Core::Uring($c) => $e,
            Core::Epoll($c) => $e,
        }
    };
}

impl Core {
    // ---- getters ----

    pub fn recv_mode(&self) -> RecvMode {
        either!(self, c => c.recv_mode())
    }
    /// Slots handed out and not yet `Closed` (open or closing).
    pub fn live(&self) -> usize {
        either!(self, c => c.live())
    }
    /// Operations in flight on every slot together (always 0 on epoll: its calls return).
    pub fn in_flight(&self) -> u32 {
        either!(self, c => c.in_flight())
    }
    #[inline]
    pub fn is_open(&self, slot: SlotId) -> bool {
        either!(self, c => c.is_open(slot))
    }
    pub fn fd(&self, slot: SlotId) -> RawFd {
        either!(self, c => c.fd(slot))
    }
    pub fn sending(&self, slot: SlotId) -> bool {
        either!(self, c => c.sending(slot))
    }
    /// A receive is outstanding (always false on epoll: its reads return at once).
    pub fn receiving(&self, slot: SlotId) -> bool {
        either!(self, c => c.receiving(slot))
    }
    pub fn splicing(&self, slot: SlotId) -> bool {
        either!(self, c => c.splicing(slot))
    }
    #[inline]
    pub fn reading_file(&self, slot: SlotId) -> bool {
        either!(self, c => c.reading_file(slot))
    }
    pub fn capacity(&self) -> usize {
        either!(self, c => c.capacity())
    }
    pub fn timer_armed(&self, id: u32) -> bool {
        either!(self, c => c.timer_armed(id))
    }

    // ---- operations (see docs/driver.md for each) ----

    pub fn open(&mut self, fd: RawFd) -> SlotId {
        either!(self, c => c.open(fd))
    }
    pub fn add_peer(&mut self, addr: &libc::sockaddr_storage, len: libc::socklen_t) -> usize {
        either!(self, c => c.add_peer(addr, len))
    }
    pub fn connect(&mut self, peer: usize) -> io::Result<SlotId> {
        either!(self, c => c.connect(peer))
    }
    #[inline]
    pub fn set_reading(&mut self, slot: SlotId, on: bool) {
        either!(self, c => c.set_reading(slot, on))
    }
    #[inline]
    pub fn send_buffer(&mut self, slot: SlotId) -> Option<&mut Vec<u8>> {
        either!(self, c => c.send_buffer(slot))
    }
    #[inline]
    pub fn send(&mut self, slot: SlotId) {
        either!(self, c => c.send(slot))
    }
    pub fn read_file(&mut self, slot: SlotId, file: RawFd, offset: u64, len: u32) {
        either!(self, c => c.read_file(slot, file, offset, len))
    }
    /// io_uring: SPLICE through the slot's pipe; epoll: `sendfile(2)`.
    pub fn splice_file(
        &mut self,
        slot: SlotId,
        file: RawFd,
        offset: u64,
        len: u32,
        more: bool,
    ) -> io::Result<u32> {
        either!(self, c => c.splice_file(slot, file, offset, len, more))
    }
    pub fn shutdown_write(&mut self, slot: SlotId) {
        either!(self, c => c.shutdown_write(slot))
    }
    pub fn close(&mut self, slot: SlotId) {
        either!(self, c => c.close(slot))
    }
    pub fn close_fd(&mut self, fd: RawFd) {
        either!(self, c => c.close_fd(fd))
    }
    pub fn accept(&mut self, listener: u32, listener_fd: RawFd, multishot: bool) {
        either!(self, c => c.accept(listener, listener_fd, multishot))
    }
    pub fn cancel_accept(&mut self, listener: u32) {
        either!(self, c => c.cancel_accept(listener))
    }
    pub fn timer(&mut self, id: u32, after: Duration) -> bool {
        either!(self, c => c.timer(id, after))
    }
    pub fn cancel_timer(&mut self, id: u32) {
        either!(self, c => c.cancel_timer(id))
    }
    pub fn poll_readable(&mut self, id: u32, fd: RawFd) {
        either!(self, c => c.poll_readable(id, fd))
    }
}
