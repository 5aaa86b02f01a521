//! The epoll backend: the same asks and the same classified [`Event`]s as the io_uring
//! driver, made from readiness, for hosts where io_uring is forbidden (Docker's and
//! containerd's default seccomp profiles, `kernel.io_uring_disabled`, gVisor) or missing.
//!
//! One edge-triggered epoll instance per thread. Every socket is registered once, for
//! input and output, when its slot opens; the slot remembers the edges (`readable`,
//! `writable`) until a call says the kernel has no more (EAGAIN, or a short read or write).
//! The asks ([`EpollCore`]) only record what the program wants; the driver
//! ([`EpollDriver::turn`]) does the calls after the callback returns, so nothing is
//! re-entrant: a `send` becomes `send(2)` of the slot's send buffer (`Sent` once, when all
//! of it went), a wanted receive on a readable socket becomes `recv(2)` into the thread's
//! one receive buffer (lent out as `Data`), an armed accept on a readable listener becomes
//! `accept4(2)` until EAGAIN, a file read is a `pread(2)`. Timers and connect timeouts are
//! the epoll wait's timeout.
//!
//! The lifecycle rule is the io_uring one with nothing in flight: `close` closes the fd at
//! once (which also removes it from the epoll set), bumps the generation, so readiness
//! already collected for the old connection is dropped, and `Closed` follows the callback.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::backend::Core;
use super::sys::{self, errno, sys_recv, sys_send};
use super::{DriverConfig, Event, Op, Payload, RecvMode, RingError, SlotId, Token, TIMERS};

/// The thread's receive buffer: one, lent out for each `Data`.
const RECV_BUF: usize = 64 * 1024;
/// Readiness reports taken per wait.
const EVENTS: usize = 512;
/// Accepts per listener before the others get a turn.
const ACCEPT_BATCH: usize = 64;
/// Receives per connection before the others get a turn (the rest waits one pass).
const RECV_BATCH: usize = 8;
/// Passes over the work list per turn before waiting (with a zero timeout) again.
const PASSES: usize = 16;

const CONN_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

struct Slot {
    generation: u16,
    fd: RawFd,
    open: bool,
    /// The program wants bytes.
    reading: bool,
    /// An input edge was seen and the socket not yet found empty.
    readable: bool,
    /// The peer's FIN or an error was reported: a short read does not mean "empty".
    hup: bool,
    writable: bool,
    send_inflight: bool,
    /// Bytes of `send_buf` already sent.
    send_at: usize,
    send_buf: Vec<u8>,
    /// A connect in progress ends by this instant.
    connect_deadline: Option<Instant>,
    /// A `sendfile` in progress: file, next offset, bytes left, bytes in all.
    file_send: Option<(RawFd, u64, u32, u32)>,
    /// The send in flight is the head `splice_file` found in the send buffer: no `Sent`,
    /// the file follows it.
    head_first: bool,
    /// A file read is done and its `FileRead` not yet delivered.
    read_inflight: bool,
    read_buf: Vec<u8>,
    spare_read_buf: Vec<u8>,
    /// On the work list.
    queued: bool,
}

impl Slot {
    fn has_work(&self) -> bool {
        let sending = self.send_inflight || self.file_send.is_some();
        self.open && ((self.reading && self.readable) || (sending && self.writable))
    }
}

struct Listener {
    fd: RawFd,
    armed: bool,
    multishot: bool,
    registered: bool,
}

/// The epoll backend's slot slab and asks (the program sees it as [`Core::Epoll`]).
pub struct EpollCore {
    epfd: RawFd,
    slots: Vec<Slot>,
    free: Vec<SlotId>,
    released: VecDeque<SlotId>,
    /// Slots that may have something to do before the next wait.
    work: Vec<SlotId>,
    /// Listeners whose accept was just armed: try at once (an edge may have passed).
    accept_work: Vec<u32>,
    /// Events an ask decided, delivered after the current callback, with the generation of
    /// their slot (an event of a slot closed since is dropped).
    events: VecDeque<(Event<Payload>, u16)>,
    listeners: Vec<Listener>,
    peers: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    connect_timeout: Duration,
    connecting: usize,
    timers: [Option<Instant>; TIMERS],
    /// Fds watched by `poll_readable`, by id (re-armed with EPOLL_CTL_MOD).
    polls: Vec<Option<RawFd>>,
    open: usize,
}

impl EpollCore {
    fn new(epfd: RawFd, connect_timeout: Duration) -> EpollCore {
        EpollCore {
            epfd,
            slots: Vec::new(),
            free: Vec::new(),
            released: VecDeque::new(),
            work: Vec::new(),
            accept_work: Vec::new(),
            events: VecDeque::new(),
            listeners: Vec::new(),
            peers: Vec::new(),
            connect_timeout,
            connecting: 0,
            timers: [None; TIMERS],
            polls: Vec::new(),
            open: 0,
        }
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: Token) -> Result<(), i32> {
        let mut ev = libc::epoll_event {
            events,
            u64: token.0,
        };
        // SAFETY: a plain epoll_ctl on our epoll fd with a valid event struct.
        if unsafe { libc::epoll_ctl(self.epfd, op, fd, &mut ev) } < 0 {
            return Err(errno());
        }
        Ok(())
    }

    // ---- getters ----

    /// Meaningless here (no buffer ring); kept so both cores answer the same questions.
    pub fn recv_mode(&self) -> RecvMode {
        RecvMode::Own
    }
    pub fn live(&self) -> usize {
        self.open
    }
    pub fn in_flight(&self) -> u32 {
        0
    }
    pub fn is_open(&self, slot: SlotId) -> bool {
        self.slots.get(slot as usize).is_some_and(|s| s.open)
    }
    pub fn fd(&self, slot: SlotId) -> RawFd {
        self.slots[slot as usize].fd
    }
    pub fn sending(&self, slot: SlotId) -> bool {
        self.slots[slot as usize].send_inflight
    }
    pub fn receiving(&self, _slot: SlotId) -> bool {
        false
    }
    pub fn reading_file(&self, slot: SlotId) -> bool {
        self.slots[slot as usize].read_inflight
    }
    pub fn splicing(&self, slot: SlotId) -> bool {
        self.slots[slot as usize].file_send.is_some()
    }
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
    pub fn timer_armed(&self, id: u32) -> bool {
        self.timers[id as usize].is_some()
    }

    // ---- operations ----

    /// Adopt a connected, non-blocking socket (accepted ones are made so by `accept4`).
    pub fn open(&mut self, fd: RawFd) -> SlotId {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    fd: -1,
                    open: false,
                    reading: false,
                    readable: false,
                    hup: false,
                    writable: false,
                    send_inflight: false,
                    send_at: 0,
                    send_buf: Vec::new(),
                    connect_deadline: None,
                    file_send: None,
                    head_first: false,
                    read_inflight: false,
                    read_buf: Vec::new(),
                    spare_read_buf: Vec::new(),
                    queued: false,
                });
                (self.slots.len() - 1) as SlotId
            }
        };
        let s = &mut self.slots[id as usize];
        s.fd = fd;
        s.open = true;
        s.reading = false;
        // The registration reports input already waiting, so no read is tried blind.
        s.readable = false;
        s.hup = false;
        s.writable = true;
        s.send_inflight = false;
        s.send_at = 0;
        s.send_buf.clear();
        s.read_inflight = false;
        s.file_send = None;
        let gen = s.generation;
        self.open += 1;
        let token = Token::of(id, gen, Op::Recv);
        if let Err(errno) = self.ctl(libc::EPOLL_CTL_ADD, fd, CONN_EVENTS, token) {
            // ENOMEM or the per-user watch limit: the connection cannot work; say so.
            self.events
                .push_back((Event::RecvFailed { slot: id, errno }, gen));
        }
        id
    }

    pub fn add_peer(&mut self, addr: &libc::sockaddr_storage, len: libc::socklen_t) -> usize {
        self.peers.push((*addr, len));
        self.peers.len() - 1
    }

    /// A new non-blocking socket connecting to `peer`, bounded by the connect timeout.
    pub fn connect(&mut self, peer: usize) -> io::Result<SlotId> {
        let (addr, len) = self.peers[peer];
        let domain = addr.ss_family as libc::c_int;
        let fd = sys::stream_socket(domain, libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)?;
        let id = self.open(fd);
        // SAFETY: the address is a sockaddr_storage of `len` valid bytes.
        let rc = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_storage).cast(), len) };
        let s = &mut self.slots[id as usize];
        let gen = s.generation;
        if rc == 0 {
            self.events.push_back((Event::Connected { slot: id }, gen));
            return Ok(id);
        }
        match errno() {
            libc::EINPROGRESS => {
                s.writable = false;
                s.connect_deadline = Some(Instant::now() + self.connect_timeout);
                self.connecting += 1;
            }
            errno => self
                .events
                .push_back((Event::ConnectFailed { slot: id, errno }, gen)),
        }
        Ok(id)
    }

    pub fn set_reading(&mut self, slot: SlotId, on: bool) {
        let s = &mut self.slots[slot as usize];
        s.reading = on;
        if on && s.readable && !s.queued {
            s.queued = true;
            self.work.push(slot);
        }
    }

    pub fn send_buffer(&mut self, slot: SlotId) -> Option<&mut Vec<u8>> {
        let s = &mut self.slots[slot as usize];
        (s.open && !s.send_inflight).then_some(&mut s.send_buf)
    }

    /// Send the whole send buffer; `Sent` once, when the last byte went.
    pub fn send(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        if !s.open || s.send_inflight || s.send_buf.is_empty() {
            return;
        }
        s.send_inflight = true;
        s.send_at = 0;
        if !s.queued {
            s.queued = true;
            self.work.push(slot);
        }
    }

    /// `pread(2)` now (page-cache reads, as nginx does without aio); the bytes are lent out
    /// as `FileRead` after the current callback.
    pub fn read_file(&mut self, slot: SlotId, file: RawFd, offset: u64, len: u32) {
        let s = &mut self.slots[slot as usize];
        if !s.open || s.read_inflight {
            return;
        }
        s.read_buf.clear();
        s.read_buf.reserve(len as usize);
        let res = loop {
            // SAFETY: read_buf has room for `len` bytes; pread writes at most that many.
            let n = unsafe {
                libc::pread(
                    file,
                    s.read_buf.as_mut_ptr().cast(),
                    len as usize,
                    offset as libc::off_t,
                )
            };
            if n >= 0 {
                break n as i32;
            }
            match errno() {
                libc::EINTR => continue,
                e => break -e,
            }
        };
        s.read_inflight = true;
        let ev = if res > 0 {
            Event::FileRead {
                slot,
                data: Payload::File { len: res as usize },
            }
        } else {
            Event::FileReadFailed { slot, res }
        };
        self.events.push_back((ev, s.generation));
    }

    /// Send `len` bytes of `file` at `offset` with `sendfile(2)` (no copy through user
    /// space, no pipe); `Spliced` when all went, `SpliceFailed` otherwise (`res` 0: the
    /// file ended early). As on io_uring, nothing else may be in flight on the slot; the
    /// program keeps `file` open until the event. `more` needs nothing here: the socket has
    /// no cork to release, and the bytes go out as fast as the peer takes them.
    pub fn splice_file(
        &mut self,
        slot: SlotId,
        file: RawFd,
        offset: u64,
        len: u32,
        _more: bool,
    ) -> io::Result<u32> {
        let s = &mut self.slots[slot as usize];
        if !s.open || s.file_send.is_some() || s.send_inflight || len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        s.file_send = Some((file, offset, len, len));
        if !s.send_buf.is_empty() {
            // As on io_uring: bytes left unsent in the send buffer (a head) go first.
            s.send_inflight = true;
            s.send_at = 0;
            s.head_first = true;
        }
        if !s.queued {
            s.queued = true;
            self.work.push(slot);
        }
        Ok(len)
    }

    pub fn shutdown_write(&mut self, slot: SlotId) {
        let s = &self.slots[slot as usize];
        if s.open {
            sys::shutdown_write(s.fd);
        }
    }

    /// Close at once: nothing is in flight on epoll. `Closed` follows the callback.
    pub fn close(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        if !s.open {
            return;
        }
        // SAFETY: the slot's fd is ours and closed once (`open` goes false).
        unsafe { libc::close(s.fd) };
        if s.connect_deadline.take().is_some() {
            self.connecting -= 1;
        }
        s.fd = -1;
        s.open = false;
        s.reading = false;
        s.readable = false;
        s.send_inflight = false;
        s.read_inflight = false;
        s.file_send = None;
        s.head_first = false;
        s.send_buf.clear();
        s.read_buf.clear();
        s.generation = s.generation.wrapping_add(1);
        self.released.push_back(slot);
    }

    /// Close a descriptor that is not a slot (a listener, an accept during drain).
    pub fn close_fd(&mut self, fd: RawFd) {
        for l in self.listeners.iter_mut().filter(|l| l.fd == fd) {
            l.fd = -1;
            l.armed = false;
            l.registered = false;
        }
        // SAFETY: the program hands over an fd it owns and no longer uses.
        unsafe { libc::close(fd) };
    }

    /// Accept on `listener_fd` while armed: every waiting connection (`multishot`), or one.
    pub fn accept(&mut self, listener: u32, listener_fd: RawFd, multishot: bool) {
        let i = listener as usize;
        while self.listeners.len() <= i {
            self.listeners.push(Listener {
                fd: -1,
                armed: false,
                multishot: false,
                registered: false,
            });
        }
        if self.listeners[i].fd != listener_fd {
            self.listeners[i].fd = listener_fd;
            self.listeners[i].registered = false;
        }
        if !self.listeners[i].registered {
            // The listener was made for either backend; accept4 must not block here.
            let on: libc::c_int = 1;
            // SAFETY: FIONBIO takes a pointer to an int.
            unsafe { libc::ioctl(listener_fd, libc::FIONBIO, &on) };
            let ev = (libc::EPOLLIN | libc::EPOLLET) as u32;
            let token = Token::of(listener, 0, Op::Accept);
            match self.ctl(libc::EPOLL_CTL_ADD, listener_fd, ev, token) {
                Ok(()) | Err(libc::EEXIST) => self.listeners[i].registered = true,
                Err(errno) => {
                    let ev = Event::AcceptFailed {
                        listener,
                        errno,
                        rearm: true,
                    };
                    self.events.push_back((ev, 0));
                    return;
                }
            }
        }
        let l = &mut self.listeners[i];
        l.armed = true;
        l.multishot = multishot;
        self.accept_work.push(listener);
    }

    /// Stop accepting; the program hears `AcceptFailed { ECANCELED, rearm }` as on io_uring.
    pub fn cancel_accept(&mut self, listener: u32) {
        if let Some(l) = self.listeners.get_mut(listener as usize) {
            if l.armed {
                l.armed = false;
                let ev = Event::AcceptFailed {
                    listener,
                    errno: libc::ECANCELED,
                    rearm: true,
                };
                self.events.push_back((ev, 0));
            }
        }
    }

    pub fn timer(&mut self, id: u32, after: Duration) -> bool {
        let i = id as usize;
        assert!(i < TIMERS, "timer id {id} out of range");
        if self.timers[i].is_some() {
            return false;
        }
        self.timers[i] = Some(Instant::now() + after);
        true
    }

    pub fn cancel_timer(&mut self, id: u32) {
        if self.timers[id as usize].take().is_some() {
            let ev = Event::Timer {
                id,
                cancelled: true,
            };
            self.events.push_back((ev, 0));
        }
    }

    /// One `Ready { id }` when `fd` becomes readable.
    pub fn poll_readable(&mut self, id: u32, fd: RawFd) {
        let i = id as usize;
        if self.polls.len() <= i {
            self.polls.resize(i + 1, None);
        }
        let ev = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
        let token = Token::of(id, 0, Op::Poll);
        let op = if self.polls[i] == Some(fd) {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        if self.ctl(op, fd, ev, token).is_ok() {
            self.polls[i] = Some(fd);
        }
    }

    // ---- for the driver ----

    fn has_work(&self) -> bool {
        !self.events.is_empty()
            || !self.work.is_empty()
            || !self.accept_work.is_empty()
            || !self.released.is_empty()
    }

    /// The earliest timer or connect deadline.
    fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.timers.iter().flatten().min().copied();
        if self.connecting > 0 {
            for d in self.slots.iter().filter_map(|s| s.connect_deadline) {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        next
    }

    /// Apply a readiness report to a slot; true when the slot has something to do.
    fn on_readiness(&mut self, slot: SlotId, gen: u16, mask: u32) -> bool {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return false;
        };
        if !s.open || s.generation != gen {
            return false;
        }
        let input = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        let ended = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        let output = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        if mask & input != 0 {
            s.readable = true;
        }
        if mask & ended != 0 {
            s.hup = true;
        }
        if mask & output != 0 {
            s.writable = true;
            if s.connect_deadline.take().is_some() {
                self.connecting -= 1;
                let mut err: libc::c_int = 0;
                let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                // SAFETY: SO_ERROR writes one int into `err`.
                let rc = unsafe {
                    libc::getsockopt(
                        s.fd,
                        libc::SOL_SOCKET,
                        libc::SO_ERROR,
                        (&mut err as *mut libc::c_int).cast(),
                        &mut len,
                    )
                };
                let err = if rc < 0 { errno() } else { err };
                let ev = if err == 0 {
                    Event::Connected { slot }
                } else {
                    Event::ConnectFailed { slot, errno: err }
                };
                self.events.push_back((ev, gen));
            }
        }
        s.has_work()
    }

    /// Timers and connect timeouts that ended by `now` become events.
    fn expire(&mut self, now: Instant) {
        for id in 0..TIMERS {
            if self.timers[id].is_some_and(|t| t <= now) {
                self.timers[id] = None;
                let ev = Event::Timer {
                    id: id as u32,
                    cancelled: false,
                };
                self.events.push_back((ev, 0));
            }
        }
        if self.connecting == 0 {
            return;
        }
        for (slot, s) in self.slots.iter_mut().enumerate() {
            if s.connect_deadline.is_some_and(|d| d <= now) {
                s.connect_deadline = None;
                self.connecting -= 1;
                let ev = Event::ConnectFailed {
                    slot: slot as SlotId,
                    errno: libc::ETIMEDOUT,
                };
                self.events.push_back((ev, s.generation));
            }
        }
    }

    /// Continue the slot's send; the event when it ended.
    fn push_send(&mut self, slot: SlotId) -> Option<Event<Payload>> {
        let s = &mut self.slots[slot as usize];
        while s.send_inflight && s.writable {
            let rest = &s.send_buf[s.send_at..];
            // SAFETY: send(2) reads `rest`, which lives in the slot for the call.
            let n = unsafe { sys_send(s.fd, rest, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
            if n < 0 {
                match errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => s.writable = false,
                    errno => {
                        s.send_inflight = false;
                        return Some(Event::SendFailed { slot, errno });
                    }
                }
                return None;
            }
            let n = n as usize;
            s.send_at += n;
            if s.send_at == s.send_buf.len() {
                let len = s.send_buf.len();
                s.send_buf.clear();
                s.send_at = 0;
                s.send_inflight = false;
                if std::mem::take(&mut s.head_first) {
                    return self.push_sendfile(slot);
                }
                return Some(Event::Sent { slot, len });
            }
            // A short write: the socket buffer is full; its EPOLLOUT edge resumes us.
            s.writable = false;
        }
        None
    }

    /// Continue the slot's sendfile; the event when it ended.
    fn push_sendfile(&mut self, slot: SlotId) -> Option<Event<Payload>> {
        let s = &mut self.slots[slot as usize];
        while let Some((file, offset, left, total)) = s.file_send {
            if !s.writable {
                return None;
            }
            let mut off = offset as libc::off_t;
            // SAFETY: sendfile(2) between two fds we hold; `off` is a valid off_t.
            let n = unsafe { libc::sendfile(s.fd, file, &mut off, left as usize) };
            if n < 0 {
                match errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => s.writable = false,
                    errno => {
                        s.file_send = None;
                        return Some(Event::SpliceFailed { slot, res: -errno });
                    }
                }
                return None;
            }
            if n == 0 {
                // The file is shorter than it was: it shrank under us.
                s.file_send = None;
                return Some(Event::SpliceFailed { slot, res: 0 });
            }
            let left = left - n as u32;
            if left == 0 {
                s.file_send = None;
                return Some(Event::Spliced {
                    slot,
                    len: total as usize,
                });
            }
            s.file_send = Some((file, offset + n as u64, left, total));
        }
        None
    }

    /// One receive into `buf`: `Some(n > 0)` bytes, `Some(0)` end of stream, or the event
    /// when it failed; `None` when the socket is empty (or not wanted).
    fn recv_into(&mut self, slot: SlotId, buf: &mut [u8]) -> Option<Result<usize, i32>> {
        let s = &mut self.slots[slot as usize];
        loop {
            if !(s.open && s.reading && s.readable) {
                return None;
            }
            // SAFETY: recv(2) writes at most buf.len() bytes into buf.
            let n = unsafe { sys_recv(s.fd, buf) };
            if n > 0 {
                // Short read: the socket was emptied; the next arrival brings a new edge.
                // Not so after a FIN was reported: the next read returns the end.
                if (n as usize) < buf.len() && !s.hup {
                    s.readable = false;
                }
                return Some(Ok(n as usize));
            }
            if n == 0 {
                s.readable = false;
                s.reading = false;
                return Some(Ok(0));
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => {
                    s.readable = false;
                    return None;
                }
                errno => {
                    s.readable = false;
                    s.reading = false;
                    return Some(Err(errno));
                }
            }
        }
    }

    fn take_read_buf(&mut self, slot: SlotId, len: usize) -> Vec<u8> {
        let s = &mut self.slots[slot as usize];
        s.read_inflight = false;
        let spare = std::mem::take(&mut s.spare_read_buf);
        let mut buf = std::mem::replace(&mut s.read_buf, spare);
        // SAFETY: pread wrote `len` bytes into the capacity reserved by read_file().
        unsafe { buf.set_len(len.min(buf.capacity())) };
        buf
    }

    fn restore_read_buf(&mut self, slot: SlotId, mut buf: Vec<u8>) {
        buf.clear();
        self.slots[slot as usize].spare_read_buf = buf;
    }

    /// Put the slot on the work list if it has something to do.
    fn requeue(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        if s.has_work() && !s.queued {
            s.queued = true;
            self.work.push(slot);
        }
    }

    fn close_all(&mut self) {
        for slot in 0..self.slots.len() as SlotId {
            self.close(slot);
        }
    }
}

impl Drop for EpollCore {
    fn drop(&mut self) {
        self.close_all();
        // SAFETY: our epoll fd, closed once.
        unsafe { libc::close(self.epfd) };
    }
}

/// The epoll instance's driver: the [`EpollCore`], the thread's receive buffer, the wait.
pub struct EpollDriver {
    core: Core,
    recv_buf: Box<[u8]>,
    ready: Vec<libc::epoll_event>,
}

#[inline(always)]
fn ec(core: &mut Core) -> &mut EpollCore {
    match core {
        Core::Epoll(c) => c,
        Core::Uring(_) => unreachable!("an epoll driver holds an epoll core"),
    }
}

impl EpollDriver {
    pub fn new(cfg: &DriverConfig) -> Result<EpollDriver, RingError> {
        // SAFETY: plain epoll_create1.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(RingError::Epoll(io::Error::last_os_error()));
        }
        Ok(EpollDriver {
            core: Core::Epoll(EpollCore::new(epfd, cfg.connect_timeout)),
            recv_buf: vec![0; RECV_BUF].into_boxed_slice(),
            ready: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS],
        })
    }

    pub fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    pub fn live(&self) -> usize {
        match &self.core {
            Core::Epoll(c) => c.live(),
            Core::Uring(_) => 0,
        }
    }

    /// Do what was asked, wait for readiness (not at all when work is left), act on it and
    /// deliver every event.
    pub fn turn(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) -> io::Result<()> {
        self.run_work(f);
        let c = ec(&mut self.core);
        let timeout = if c.has_work() {
            0
        } else {
            match c.next_deadline() {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Round up: waking early would only wait again.
                    let ms = (left.as_micros() as u64).div_ceil(1000);
                    ms.min(i32::MAX as u64) as i32
                }
            }
        };
        // SAFETY: `ready` has room for its length of events.
        let n = unsafe {
            libc::epoll_wait(
                c.epfd,
                self.ready.as_mut_ptr(),
                self.ready.len() as i32,
                timeout,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
        for k in 0..n.max(0) as usize {
            let ev = self.ready[k];
            let token = Token(ev.u64);
            match token.kind() {
                Some(Op::Accept) => self.accept_loop(token.slot(), f),
                Some(Op::Poll) => {
                    f(&mut self.core, Event::Ready { id: token.slot() });
                    self.deliver_released(f);
                }
                _ => {
                    let slot = token.slot();
                    if ec(&mut self.core).on_readiness(slot, token.generation(), ev.events) {
                        self.service(slot, f);
                    }
                    self.deliver_queued(f);
                }
            }
        }
        ec(&mut self.core).expire(Instant::now());
        self.run_work(f);
        Ok(())
    }

    /// Deliver queued events and do the work asks left, until none is left (bounded: what
    /// remains makes the next wait return at once).
    fn run_work(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        for _ in 0..PASSES {
            self.deliver_queued(f);
            let c = ec(&mut self.core);
            let accepts = std::mem::take(&mut c.accept_work);
            let work = std::mem::take(&mut c.work);
            if accepts.is_empty() && work.is_empty() {
                break;
            }
            for li in accepts {
                self.accept_loop(li, f);
            }
            for slot in work {
                let s = &mut ec(&mut self.core).slots[slot as usize];
                s.queued = false;
                // A send asked during the slot's own service went out there already.
                if !s.has_work() {
                    continue;
                }
                self.service(slot, f);
                self.deliver_queued(f);
            }
        }
    }

    /// Send and receive on one slot while it can and the program wants.
    fn service(&mut self, slot: SlotId, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        let gen = ec(&mut self.core).slots[slot as usize].generation;
        let mut recvs = 0;
        loop {
            let c = ec(&mut self.core);
            let s = &c.slots[slot as usize];
            if s.generation != gen || !s.open {
                return;
            }
            if s.send_inflight && s.writable {
                if let Some(ev) = c.push_send(slot) {
                    f(&mut self.core, ev.map(|_| &[][..]));
                    self.deliver_released(f);
                    continue;
                }
            } else if s.file_send.is_some() && s.writable {
                if let Some(ev) = c.push_sendfile(slot) {
                    f(&mut self.core, ev.map(|_| &[][..]));
                    self.deliver_released(f);
                    continue;
                }
            }
            if recvs == RECV_BATCH {
                c.requeue(slot);
                return;
            }
            let ev = match c.recv_into(slot, &mut self.recv_buf) {
                None => return,
                Some(Ok(0)) => Event::Eof { slot },
                Some(Ok(n)) => Event::Data {
                    slot,
                    data: &self.recv_buf[..n],
                },
                Some(Err(errno)) => Event::RecvFailed { slot, errno },
            };
            recvs += 1;
            f(&mut self.core, ev);
            self.deliver_released(f);
        }
    }

    /// Accept while the listener is armed and has connections waiting.
    fn accept_loop(&mut self, li: u32, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        for _ in 0..ACCEPT_BATCH {
            let c = ec(&mut self.core);
            let Some(l) = c.listeners.get_mut(li as usize) else {
                return;
            };
            if !l.armed {
                return;
            }
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: accept4 on our listener, without asking for the peer address.
            let fd =
                unsafe { libc::accept4(l.fd, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
            let ev = if fd >= 0 {
                let rearm = !l.multishot;
                if rearm {
                    l.armed = false;
                }
                Event::Accepted {
                    listener: li,
                    fd,
                    rearm,
                }
            } else {
                match errno() {
                    libc::EAGAIN => return,
                    // The peer gave up in the backlog, or a signal: the next one.
                    libc::EINTR | libc::ECONNABORTED | libc::EPROTO => continue,
                    // EMFILE and the rest end the accept like a multishot accept ends; the
                    // program backs off and arms again.
                    errno => {
                        l.armed = false;
                        Event::AcceptFailed {
                            listener: li,
                            errno,
                            rearm: true,
                        }
                    }
                }
            };
            f(&mut self.core, ev);
            self.deliver_released(f);
        }
        // More may wait: another pass, after the connections had theirs.
        ec(&mut self.core).accept_work.push(li);
    }

    /// Deliver what the asks queued (`Closed` first); usually nothing, so the check is
    /// inlined and the loop is not (this runs several times per request).
    #[inline(always)]
    fn deliver_queued(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        let c = ec(&mut self.core);
        if !c.events.is_empty() || !c.released.is_empty() {
            self.deliver_queued_slow(f);
        }
    }

    #[inline(never)]
    fn deliver_queued_slow(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        loop {
            self.deliver_released(f);
            let c = ec(&mut self.core);
            let Some((ev, gen)) = c.events.pop_front() else {
                return;
            };
            if let Some(slot) = ev.slot() {
                let s = &c.slots[slot as usize];
                if !s.open || s.generation != gen {
                    continue;
                }
            }
            match ev {
                Event::FileRead {
                    slot,
                    data: Payload::File { len },
                } => {
                    let buf = c.take_read_buf(slot, len);
                    f(&mut self.core, Event::FileRead { slot, data: &buf });
                    ec(&mut self.core).restore_read_buf(slot, buf);
                }
                Event::FileReadFailed { slot, res } => {
                    c.slots[slot as usize].read_inflight = false;
                    f(&mut self.core, Event::FileReadFailed { slot, res });
                }
                Event::Connected { slot } => {
                    // Output may already be possible and input waiting: look once.
                    f(&mut self.core, Event::Connected { slot });
                    ec(&mut self.core).requeue(slot);
                }
                other => f(&mut self.core, other.map(|_| &[][..])),
            }
        }
    }

    #[inline(always)]
    fn deliver_released(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        if !ec(&mut self.core).released.is_empty() {
            self.deliver_released_slow(f);
        }
    }

    #[inline(never)]
    fn deliver_released_slow(&mut self, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        loop {
            let c = ec(&mut self.core);
            let Some(slot) = c.released.pop_front() else {
                return;
            };
            c.free.push(slot);
            c.open -= 1;
            f(&mut self.core, Event::Closed { slot });
        }
    }

    /// Close every slot and deliver their `Closed`; nothing is in flight to wait for.
    pub fn shutdown(&mut self, _give_up: Duration, f: &mut impl FnMut(&mut Core, Event<&[u8]>)) {
        let c = ec(&mut self.core);
        c.close_all();
        c.work.clear();
        c.accept_work.clear();
        self.deliver_queued(f);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The epoll driver against real sockets of this process (socketpairs, loopback): the
    //! same events, in the same order rules, as the io_uring core's synthetic tests.
    use super::*;
    use crate::ring::{RingConfig, Tier};
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::os::unix::net::UnixStream;

    fn driver() -> EpollDriver {
        EpollDriver::new(&DriverConfig {
            ring: RingConfig {
                tier: Tier::Epoll,
                entries: 8,
                cq_entries: 16,
            },
            recv_mode: RecvMode::Own,
            own_recv_size: 0,
            ring_buf_count: 0,
            ring_buf_size: 0,
            connect_timeout: Duration::from_millis(200),
        })
        .unwrap()
    }

    /// What the program saw, with data copied out.
    type Seen = Vec<Event<Vec<u8>>>;

    /// Turn until `done` says so (bounded), recording every event; `react` acts on each.
    fn run(
        d: &mut EpollDriver,
        seen: &mut Seen,
        mut react: impl FnMut(&mut Core, &Event<&[u8]>),
        done: impl Fn(&Seen) -> bool,
    ) {
        let end = Instant::now() + Duration::from_secs(5);
        while !done(seen) {
            assert!(Instant::now() < end, "no end: {seen:?}");
            if !d.core().timer_armed(7) {
                d.core().timer(7, Duration::from_millis(20));
            }
            d.turn(&mut |core, ev| {
                react(core, &ev);
                if !matches!(ev, Event::Timer { id: 7, .. }) {
                    seen.push(ev.map(|b| b.to_vec()));
                }
            })
            .unwrap();
        }
    }

    /// One turn, bounded by a short timer.
    fn turn_once(d: &mut EpollDriver, seen: &mut Seen) {
        d.core().timer(5, Duration::from_millis(5));
        d.turn(&mut |_, ev| {
            if !matches!(ev, Event::Timer { .. }) {
                seen.push(ev.map(|b| b.to_vec()))
            }
        })
        .unwrap();
    }

    fn pair() -> (RawFd, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (a.into_raw_fd(), b)
    }

    fn data(seen: &Seen) -> Vec<u8> {
        seen.iter()
            .filter_map(|e| match e {
                Event::Data { data, .. } => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn bytes_then_eof_then_closed_once() {
        let mut d = driver();
        let (fd, mut peer) = pair();
        let a = d.core().open(fd);
        d.core().set_reading(a, true);
        peer.write_all(b"hello ").unwrap();
        peer.write_all(b"world").unwrap();
        drop(peer);
        let mut seen = Seen::new();
        run(
            &mut d,
            &mut seen,
            |core, ev| {
                if let Event::Eof { slot } = ev {
                    core.close(*slot);
                }
            },
            |s| s.iter().any(|e| matches!(e, Event::Closed { .. })),
        );
        assert_eq!(data(&seen), b"hello world");
        let tail: Vec<_> = seen
            .iter()
            .filter(|e| !matches!(e, Event::Data { .. }))
            .collect();
        assert_eq!(tail, [&Event::Eof { slot: a }, &Event::Closed { slot: a }]);
        assert_eq!(d.live(), 0);
        assert!(!d.core().is_open(a));
    }

    #[test]
    fn not_reading_means_no_data_until_asked_again() {
        let mut d = driver();
        let (fd, mut peer) = pair();
        let a = d.core().open(fd);
        peer.write_all(b"early").unwrap();
        let mut seen = Seen::new();
        // Two timer rounds with reading off: the bytes stay in the socket.
        for _ in 0..3 {
            turn_once(&mut d, &mut seen);
        }
        assert!(data(&seen).is_empty(), "{seen:?}");
        // The edge came while not wanted: asking now still gets the bytes.
        d.core().set_reading(a, true);
        run(&mut d, &mut seen, |_, _| {}, |s| data(s) == b"early");
    }

    #[test]
    fn a_send_larger_than_the_socket_buffer_reports_sent_once() {
        let mut d = driver();
        let (fd, mut peer) = pair();
        let a = d.core().open(fd);
        let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        d.core().send_buffer(a).unwrap().extend_from_slice(&big);
        d.core().send(a);
        assert!(d.core().send_buffer(a).is_none(), "in flight");
        let reader = std::thread::spawn(move || {
            let mut got = vec![0; big.len()];
            peer.read_exact(&mut got).unwrap();
            assert!(got == big);
        });
        let mut seen = Seen::new();
        run(
            &mut d,
            &mut seen,
            |_, _| {},
            |s| s.iter().any(|e| matches!(e, Event::Sent { .. })),
        );
        reader.join().unwrap();
        assert_eq!(
            seen,
            [Event::Sent {
                slot: a,
                len: 4 << 20
            }]
        );
        assert_eq!(d.core().send_buffer(a).map(|b| b.len()), Some(0));
    }

    #[test]
    fn close_with_a_send_in_flight_delivers_nothing_more_and_reuses_the_slot() {
        let mut d = driver();
        let (fd, peer) = pair();
        let a = d.core().open(fd);
        d.core()
            .send_buffer(a)
            .unwrap()
            .extend_from_slice(&vec![1u8; 4 << 20]);
        d.core().send(a);
        let mut seen = Seen::new();
        // One turn: part of it went, the socket buffer is full, the peer reads nothing.
        turn_once(&mut d, &mut seen);
        assert!(d.core().sending(a));
        d.core().close(a);
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        assert_eq!(seen, [Event::Closed { slot: a }]);
        drop(peer);
        let (fd2, mut peer2) = pair();
        let b = d.core().open(fd2);
        assert_eq!(a, b, "the slot is handed out again after Closed");
        d.core().set_reading(b, true);
        peer2.write_all(b"new").unwrap();
        seen.clear();
        run(&mut d, &mut seen, |_, _| {}, |s| data(s) == b"new");
    }

    #[test]
    fn accept_connect_and_a_refused_connect() {
        let mut d = driver();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let lfd = listener.as_raw_fd();
        d.core().accept(3, lfd, true);
        let (ss, len) = sockaddr(addr);
        let peer = d.core().add_peer(&ss, len);
        let c = d.core().connect(peer).unwrap();
        let mut seen = Seen::new();
        run(
            &mut d,
            &mut seen,
            |core, ev| {
                if let Event::Accepted { fd, .. } = ev {
                    core.open(*fd);
                }
            },
            |s| {
                s.iter().any(|e| matches!(e, Event::Accepted { .. }))
                    && s.iter().any(|e| matches!(e, Event::Connected { .. }))
            },
        );
        assert!(seen.contains(&Event::Connected { slot: c }), "{seen:?}");
        assert!(seen.iter().any(|e| matches!(
            e,
            Event::Accepted {
                listener: 3,
                rearm: false,
                ..
            }
        )));
        // Cancelling the accept ends it the way io_uring's multishot accept ends.
        d.core().cancel_accept(3);
        seen.clear();
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        assert_eq!(
            seen,
            [Event::AcceptFailed {
                listener: 3,
                errno: libc::ECANCELED,
                rearm: true
            }]
        );
        // A port nobody listens on: refused.
        drop(listener);
        let (ss, len) = sockaddr(addr);
        let dead = d.core().add_peer(&ss, len);
        let r = d.core().connect(dead).unwrap();
        seen.clear();
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        assert_eq!(
            seen,
            [Event::ConnectFailed {
                slot: r,
                errno: libc::ECONNREFUSED
            }]
        );
    }

    #[test]
    fn timers_fire_or_report_cancelled_and_files_are_read() {
        let mut d = driver();
        assert!(d.core().timer(1, Duration::from_millis(5)));
        assert!(!d.core().timer(1, Duration::from_millis(5)), "one per id");
        assert!(d.core().timer(2, Duration::from_secs(60)));
        d.core().cancel_timer(2);
        let mut seen = Seen::new();
        let t0 = Instant::now();
        run(&mut d, &mut seen, |_, _| {}, |s| s.len() >= 2);
        assert!(t0.elapsed() >= Duration::from_millis(5));
        assert_eq!(
            seen,
            [
                Event::Timer {
                    id: 2,
                    cancelled: true
                },
                Event::Timer {
                    id: 1,
                    cancelled: false
                }
            ]
        );
        let path = std::env::temp_dir().join(format!("epoll-read-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let (fd, _peer) = pair();
        let a = d.core().open(fd);
        d.core().read_file(a, file.as_raw_fd(), 3, 4);
        assert!(d.core().reading_file(a));
        seen.clear();
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        assert_eq!(
            seen,
            [Event::FileRead {
                slot: a,
                data: b"3456".to_vec()
            }]
        );
        assert!(!d.core().reading_file(a));
        d.core().read_file(a, file.as_raw_fd(), 10, 4);
        seen.clear();
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        assert_eq!(seen, [Event::FileReadFailed { slot: a, res: 0 }]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_file_larger_than_the_socket_buffer_goes_by_sendfile() {
        let mut d = driver();
        let path = std::env::temp_dir().join(format!("epoll-sendfile-{}", std::process::id()));
        let body: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &body).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // TCP, as served: on AF_UNIX, pages spliced into the peer's queue are not charged
        // to the sender, so no EPOLLOUT edge follows their reading.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let a = d.core().open(ours.into_raw_fd());
        // A head left unsent in the send buffer goes first, without a `Sent` of its own.
        d.core().send_buffer(a).unwrap().extend_from_slice(b"head");
        assert_eq!(
            d.core()
                .splice_file(a, file.as_raw_fd(), 1, (3 << 20) - 1, false)
                .unwrap(),
            (3 << 20) - 1
        );
        assert!(d.core().splicing(a));
        let busy = d.core().splice_file(a, file.as_raw_fd(), 0, 1, false);
        assert_eq!(busy.unwrap_err().raw_os_error(), Some(libc::EBUSY));
        let mut want = b"head".to_vec();
        want.extend_from_slice(&body[1..]);
        let reader = std::thread::spawn(move || {
            let mut got = vec![0; want.len()];
            peer.read_exact(&mut got).unwrap();
            assert!(got == want);
            peer
        });
        let mut seen = Seen::new();
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        let _peer = reader.join().unwrap();
        assert_eq!(
            seen,
            [Event::Spliced {
                slot: a,
                len: (3 << 20) - 1
            }]
        );
        // Past the end: the file "shrank".
        d.core()
            .splice_file(a, file.as_raw_fd(), 3 << 20, 10, false)
            .unwrap();
        seen.clear();
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        assert_eq!(seen, [Event::SpliceFailed { slot: a, res: 0 }]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_watched_fd_becomes_ready_once() {
        let mut d = driver();
        let (r, w) = UnixStream::pair().unwrap();
        d.core().poll_readable(4, r.as_raw_fd());
        (&w).write_all(b"x").unwrap();
        let mut seen = Seen::new();
        run(&mut d, &mut seen, |_, _| {}, |s| !s.is_empty());
        assert_eq!(seen, [Event::Ready { id: 4 }]);
        // One-shot: still readable, but no second report until asked again.
        seen.clear();
        for _ in 0..3 {
            turn_once(&mut d, &mut seen);
        }
        assert!(!seen.contains(&Event::Ready { id: 4 }), "{seen:?}");
        d.core().poll_readable(4, r.as_raw_fd());
        seen.clear();
        run(
            &mut d,
            &mut seen,
            |_, _| {},
            |s| s.contains(&Event::Ready { id: 4 }),
        );
    }

    pub(crate) fn sockaddr(
        addr: std::net::SocketAddr,
    ) -> (libc::sockaddr_storage, libc::socklen_t) {
        let std::net::SocketAddr::V4(v4) = addr else {
            panic!("v4 only here")
        };
        // SAFETY: all-zero is a valid sockaddr_storage; then fill an AF_INET address.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let sin = (&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
        // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
        unsafe {
            (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
            (*sin).sin_port = v4.port().to_be();
            (*sin).sin_addr.s_addr = u32::from(*v4.ip()).to_be();
        }
        (
            ss,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    }
}
