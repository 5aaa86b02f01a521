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

use std::io;
use std::time::{Duration, Instant};

mod slab;

pub use slab::EpollCore;
use slab::{ACCEPT_BATCH, EVENTS, PASSES, RECV_BATCH, RECV_BUF};

use crate::ring::backend::{Core, DriverConfig};
use crate::ring::event::{Event, Payload, SlotId};
use crate::ring::sys::errno;
use crate::ring::{Op, RingError, Token};

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
    use crate::ring::{RecvMode, RingConfig, Tier};
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::os::fd::RawFd;
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
