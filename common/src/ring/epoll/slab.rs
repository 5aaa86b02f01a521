//! The epoll backend's slot slab and asks ([`EpollCore`]): what each slot wants and what
//! the kernel last said about it. The asks only record; the driver beside it
//! ([`super::EpollDriver`]) makes the calls.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::ring::event::{Event, Payload, RecvMode, SlotId, TIMERS};
use crate::ring::sys::{self, errno, sys_recv, sys_send};
use crate::ring::{Op, Token};

/// The thread's receive buffer: one, lent out for each `Data`.
pub(super) const RECV_BUF: usize = 64 * 1024;
/// Readiness reports taken per wait.
pub(super) const EVENTS: usize = 512;
/// Accepts per listener before the others get a turn.
pub(super) const ACCEPT_BATCH: usize = 64;
/// Receives per connection before the others get a turn (the rest waits one pass).
pub(super) const RECV_BATCH: usize = 8;
/// Passes over the work list per turn before waiting (with a zero timeout) again.
pub(super) const PASSES: usize = 16;

pub(super) const CONN_EVENTS: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

pub(super) struct Slot {
    pub(super) generation: u16,
    pub(super) fd: RawFd,
    pub(super) open: bool,
    /// The program wants bytes.
    pub(super) reading: bool,
    /// An input edge was seen and the socket not yet found empty.
    pub(super) readable: bool,
    /// The peer's FIN or an error was reported: a short read does not mean "empty".
    pub(super) hup: bool,
    pub(super) writable: bool,
    pub(super) send_inflight: bool,
    /// Bytes of `send_buf` already sent.
    pub(super) send_at: usize,
    pub(super) send_buf: Vec<u8>,
    /// A connect in progress ends by this instant.
    pub(super) connect_deadline: Option<Instant>,
    /// A `sendfile` in progress: file, next offset, bytes left, bytes in all.
    pub(super) file_send: Option<(RawFd, u64, u32, u32)>,
    /// The send in flight is the head `splice_file` found in the send buffer: no `Sent`,
    /// the file follows it.
    pub(super) head_first: bool,
    /// A file read is done and its `FileRead` not yet delivered.
    pub(super) read_inflight: bool,
    pub(super) read_buf: Vec<u8>,
    pub(super) spare_read_buf: Vec<u8>,
    /// On the work list.
    pub(super) queued: bool,
}

impl Slot {
    pub(super) fn has_work(&self) -> bool {
        let sending = self.send_inflight || self.file_send.is_some();
        self.open && ((self.reading && self.readable) || (sending && self.writable))
    }
}

pub(super) struct Listener {
    pub(super) fd: RawFd,
    pub(super) armed: bool,
    pub(super) multishot: bool,
    pub(super) registered: bool,
}

/// The epoll backend's slot slab and asks (the program sees it as [`Core::Epoll`](crate::ring::Core::Epoll)).
pub struct EpollCore {
    pub(super) epfd: RawFd,
    pub(super) slots: Vec<Slot>,
    pub(super) free: Vec<SlotId>,
    pub(super) released: VecDeque<SlotId>,
    /// Slots that may have something to do before the next wait.
    pub(super) work: Vec<SlotId>,
    /// Listeners whose accept was just armed: try at once (an edge may have passed).
    pub(super) accept_work: Vec<u32>,
    /// Events an ask decided, delivered after the current callback, with the generation of
    /// their slot (an event of a slot closed since is dropped).
    pub(super) events: VecDeque<(Event<Payload>, u16)>,
    pub(super) listeners: Vec<Listener>,
    pub(super) peers: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    pub(super) connect_timeout: Duration,
    pub(super) connecting: usize,
    pub(super) timers: [Option<Instant>; TIMERS],
    /// Fds watched by `poll_readable`, by id (re-armed with EPOLL_CTL_MOD).
    pub(super) polls: Vec<Option<RawFd>>,
    pub(super) open: usize,
}

impl EpollCore {
    pub(super) fn new(epfd: RawFd, connect_timeout: Duration) -> EpollCore {
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

    pub(super) fn ctl(
        &self,
        op: libc::c_int,
        fd: RawFd,
        events: u32,
        token: Token,
    ) -> Result<(), i32> {
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

    pub(super) fn has_work(&self) -> bool {
        !self.events.is_empty()
            || !self.work.is_empty()
            || !self.accept_work.is_empty()
            || !self.released.is_empty()
    }

    /// The earliest timer or connect deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.timers.iter().flatten().min().copied();
        if self.connecting > 0 {
            for d in self.slots.iter().filter_map(|s| s.connect_deadline) {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        next
    }

    /// Apply a readiness report to a slot; true when the slot has something to do.
    pub(super) fn on_readiness(&mut self, slot: SlotId, gen: u16, mask: u32) -> bool {
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
    pub(super) fn expire(&mut self, now: Instant) {
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
    pub(super) fn push_send(&mut self, slot: SlotId) -> Option<Event<Payload>> {
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
    pub(super) fn push_sendfile(&mut self, slot: SlotId) -> Option<Event<Payload>> {
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
    pub(super) fn recv_into(&mut self, slot: SlotId, buf: &mut [u8]) -> Option<Result<usize, i32>> {
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

    pub(super) fn take_read_buf(&mut self, slot: SlotId, len: usize) -> Vec<u8> {
        let s = &mut self.slots[slot as usize];
        s.read_inflight = false;
        let spare = std::mem::take(&mut s.spare_read_buf);
        let mut buf = std::mem::replace(&mut s.read_buf, spare);
        // SAFETY: pread wrote `len` bytes into the capacity reserved by read_file().
        unsafe { buf.set_len(len.min(buf.capacity())) };
        buf
    }

    pub(super) fn restore_read_buf(&mut self, slot: SlotId, mut buf: Vec<u8>) {
        buf.clear();
        self.slots[slot as usize].spare_read_buf = buf;
    }

    /// Put the slot on the work list if it has something to do.
    pub(super) fn requeue(&mut self, slot: SlotId) {
        let s = &mut self.slots[slot as usize];
        if s.has_work() && !s.queued {
            s.queued = true;
            self.work.push(slot);
        }
    }

    pub(super) fn close_all(&mut self) {
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
