//! The ring loop of one worker thread: one io_uring, its own SO_REUSEPORT listener per
//! address, a slab of connection slots. It only moves bytes and completions; HTTP lives
//! in `conn.rs`.
//!
//! Every SQE carries a `Token` (slot, generation, op). A slot is freed, and its receive
//! buffer or output buffers reused, only after the last completion of every operation
//! that referenced it; only then is its fd closed (once, by a CLOSE operation).
//!
//! Tiers: basic uses single-shot ACCEPT and RECV into a buffer per connection; multishot
//! adds multishot ACCEPT and a registered buffer ring (RECV picks a buffer); full uses
//! multishot RECV. Timers are one TIMEOUT per worker that sweeps connection deadlines,
//! which costs nothing per request.

pub use crate::access_log::AccessLog;

use std::collections::VecDeque;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use uring_common::http::DateCache;
use uring_common::ring::{build_ring, BufRing, RingConfig, RingError, Tier, Token};

use crate::access_log::AccessLogWriter;
use crate::config::ServerConfig;
use crate::conn::{Close, Conn, Ctx};
use crate::handler::Handler;

const OP_ACCEPT: u8 = 1;
const OP_RECV: u8 = 2;
const OP_SEND: u8 = 3;
const OP_FILE: u8 = 4;
const OP_CLOSE: u8 = 5;
const OP_CANCEL: u8 = 6;
const OP_TICK: u8 = 7;
const OP_WAKE: u8 = 8;
const OP_BACKOFF: u8 = 9;

/// Receive buffer per connection on the basic tier.
const BASIC_RECV_BUF: usize = 16 * 1024;
/// Buffer ring geometry for the multishot and full tiers.
const BUF_GROUP: u16 = 0;
const BUF_COUNT: u16 = 1024;
const BUF_SIZE: u32 = 4096;
/// First back-off after EMFILE/ENFILE on accept; doubles up to `ACCEPT_BACKOFF_MAX`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(800);

pub struct WorkerConfig {
    pub index: usize,
    pub tier: Tier,
    pub config: ServerConfig,
    pub listeners: Vec<OwnedFd>,
    pub wake_fd: RawFd,
    pub core: Option<core_affinity::CoreId>,
    pub access_log: Option<AccessLog>,
}

struct Listener {
    fd: RawFd,
    armed: bool,
    cancel_sent: bool,
    closed: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
}

struct Slot {
    generation: u16,
    fd: RawFd,
    in_use: bool,
    conn: Conn,
    /// Basic tier only: the buffer the single-shot RECV fills.
    recv_buf: Box<[u8]>,
    recv_armed: bool,
    recv_cancel_sent: bool,
    send_inflight: bool,
    send_cancel_sent: bool,
    file_inflight: bool,
    /// Close decided; waiting for outstanding operations before CLOSE and reuse.
    closing: bool,
}

impl Slot {
    fn ops(&self) -> usize {
        self.recv_armed as usize + self.send_inflight as usize + self.file_inflight as usize
    }
    fn token(&self, index: usize, op: u8) -> u64 {
        Token::new(index as u32, self.generation, op).0
    }
}

/// Run one worker until shutdown. Reports ring set-up success or failure on `ready`.
pub fn run<H: Handler>(wcfg: WorkerConfig, handler: H, ready: Sender<Result<(), RingError>>) {
    if let Some(core) = wcfg.core {
        core_affinity::set_for_current(core);
    }
    let ring_cfg = RingConfig {
        tier: wcfg.tier,
        entries: wcfg.config.sq_entries,
        cq_entries: wcfg.config.cq_entries,
    };
    let ring = match build_ring(&ring_cfg) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let bufs = if wcfg.tier >= Tier::Multishot {
        match BufRing::register(&ring, BUF_GROUP, BUF_COUNT, BUF_SIZE) {
            Ok(b) => Some(b),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    } else {
        None
    };
    let now = Instant::now();
    let listeners = wcfg
        .listeners
        .into_iter()
        .map(|fd| Listener {
            fd: fd.into_raw_fd(),
            armed: false,
            cancel_sent: false,
            closed: false,
            retry_at: None,
            backoff: ACCEPT_BACKOFF,
        })
        .collect();
    let t = &wcfg.config.timeouts;
    let shortest = t.header_read.min(t.keep_alive);
    let tick = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut w = Worker {
        tier: wcfg.tier,
        config: wcfg.config,
        handler,
        bufs,
        listeners,
        slots: Vec::new(),
        free: Vec::new(),
        active: 0,
        sqes: VecDeque::with_capacity(1024),
        cqes: Vec::with_capacity(1024),
        date_cache: DateCache::new(),
        date: [b' '; 29],
        now,
        wake_fd: wcfg.wake_fd,
        wake_buf: 0,
        tick,
        tick_ts: types::Timespec::new(),
        tick_armed: false,
        backoff_ts: types::Timespec::new(),
        backoff_armed: false,
        draining: false,
        drain_deadline: None,
        log: wcfg.access_log.map(|l| l.writer()),
    };
    let _ = ready.send(Ok(()));
    w.run(ring);
}

struct Worker<H> {
    tier: Tier,
    config: ServerConfig,
    handler: H,
    bufs: Option<BufRing>,
    listeners: Vec<Listener>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    active: usize,
    /// SQEs produced while handling completions, pushed to the ring after the batch.
    sqes: VecDeque<squeue::Entry>,
    cqes: Vec<(u64, i32, u32)>,
    date_cache: DateCache,
    date: [u8; 29],
    now: Instant,
    wake_fd: RawFd,
    wake_buf: u64,
    tick: Duration,
    tick_ts: types::Timespec,
    tick_armed: bool,
    /// A one-shot timer that ends an accept back-off on time.
    backoff_ts: types::Timespec,
    backoff_armed: bool,
    draining: bool,
    drain_deadline: Option<Instant>,
    log: Option<AccessLogWriter>,
}

impl<H: Handler> Worker<H> {
    fn run(&mut self, mut ring: IoUring) {
        self.refresh_clock();
        self.arm_wake();
        self.arm_tick();
        self.drive_accept();
        loop {
            self.flush_sqes(&mut ring);
            if self.draining && self.finished() {
                break;
            }
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) => match e.raw_os_error() {
                    // EBUSY: the CQ overflowed into the kernel's backlog; reap, then retry.
                    Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {}
                    _ => {
                        eprintln!("uring-server: worker ring failed: {e}; stopping this worker");
                        break;
                    }
                },
            }
            self.refresh_clock();
            self.cqes.clear();
            for cqe in ring.completion() {
                self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            let batch = std::mem::take(&mut self.cqes);
            for &(ud, res, flags) in &batch {
                self.handle(ud, res, flags);
            }
            self.cqes = batch;
            self.drive_accept();
            if self.draining {
                if let Some(d) = self.drain_deadline {
                    if self.now >= d {
                        self.force_close_all();
                    }
                    // Cancellations complete at once; never hang the exit on one that
                    // does not.
                    if self.now >= d + Duration::from_secs(2) {
                        break;
                    }
                }
            }
        }
        self.teardown(ring);
    }

    fn refresh_clock(&mut self) {
        self.now = Instant::now();
        self.date = *self.date_cache.get(SystemTime::now());
    }

    /// Push queued SQEs; when the SQ is full, submit to make room.
    fn flush_sqes(&mut self, ring: &mut IoUring) {
        while !self.sqes.is_empty() {
            {
                let mut sq = ring.submission();
                while let Some(e) = self.sqes.front() {
                    // SAFETY: every buffer an entry points to lives in a slot (or the
                    // worker) that is kept until the entry's last completion.
                    if unsafe { sq.push(e) }.is_err() {
                        break;
                    }
                    self.sqes.pop_front();
                }
            }
            if self.sqes.is_empty() {
                break;
            }
            if ring.submit().is_err() {
                // EBUSY (CQ overflow): completions must be reaped first. Keep the rest
                // queued for the next turn of the loop rather than spinning here.
                break;
            }
        }
    }

    fn finished(&self) -> bool {
        self.active == 0 && self.listeners.iter().all(|l| l.closed)
    }

    fn handle(&mut self, ud: u64, res: i32, flags: u32) {
        let token = Token(ud);
        match token.op() {
            OP_ACCEPT => self.on_accept(token.slot() as usize, res, flags),
            OP_RECV | OP_SEND | OP_FILE => {
                let idx = token.slot() as usize;
                let bid = if self.bufs.is_some() && token.op() == OP_RECV {
                    cqueue::buffer_select(flags)
                } else {
                    None
                };
                let live = self
                    .slots
                    .get(idx)
                    .is_some_and(|s| s.in_use && s.generation == token.generation());
                if !live {
                    // Cannot happen while slots wait for their last CQE; still, never leak a buffer.
                    if let (Some(b), Some(bid)) = (self.bufs.as_mut(), bid) {
                        b.recycle(bid);
                    }
                    return;
                }
                match token.op() {
                    OP_RECV => self.on_recv(idx, res, flags, bid),
                    OP_SEND => self.on_send(idx, res),
                    _ => self.on_file(idx, res),
                }
                self.drive(idx);
            }
            OP_TICK => {
                self.tick_armed = false;
                self.on_tick();
                self.arm_tick();
            }
            OP_WAKE => self.begin_drain(),
            // drive_accept, after this batch, re-arms the accept whose back-off ended.
            OP_BACKOFF => self.backoff_armed = false,
            // CLOSE and CANCEL results carry nothing we act on.
            _ => {}
        }
    }

    fn ctx<'a>(
        handler: &'a mut H,
        date: &'a [u8; 29],
        config: &'a ServerConfig,
        now: Instant,
        draining: bool,
        log: &'a mut Option<AccessLogWriter>,
    ) -> Ctx<'a, H> {
        Ctx {
            handler,
            date,
            limits: &config.limits,
            timeouts: &config.timeouts,
            now,
            draining,
            log: log.as_mut(),
        }
    }

    fn on_recv(&mut self, idx: usize, res: i32, flags: u32, bid: Option<u16>) {
        let slot = &mut self.slots[idx];
        if !cqueue::more(flags) {
            slot.recv_armed = false;
            slot.recv_cancel_sent = false;
        }
        let mut ctx = Self::ctx(
            &mut self.handler,
            &self.date,
            &self.config,
            self.now,
            self.draining,
            &mut self.log,
        );
        if res > 0 {
            let n = res as usize;
            match (self.bufs.as_mut(), bid) {
                (Some(bufs), Some(bid)) => {
                    slot.conn.on_data(bufs.get(bid, n), &mut ctx);
                    bufs.recycle(bid);
                }
                _ => slot.conn.on_data(&slot.recv_buf[..n], &mut ctx),
            }
        } else if res == 0 {
            if let (Some(bufs), Some(bid)) = (self.bufs.as_mut(), bid) {
                bufs.recycle(bid);
            }
            slot.conn.on_eof(&mut ctx);
        } else {
            match -res {
                // Buffer ring empty: nothing was consumed from the socket; drive() re-arms.
                libc::ENOBUFS | libc::EINTR | libc::EAGAIN | libc::ECANCELED => {}
                _ => slot.conn.on_error(),
            }
        }
    }

    fn on_send(&mut self, idx: usize, res: i32) {
        let slot = &mut self.slots[idx];
        slot.send_inflight = false;
        slot.send_cancel_sent = false;
        let mut ctx = Self::ctx(
            &mut self.handler,
            &self.date,
            &self.config,
            self.now,
            self.draining,
            &mut self.log,
        );
        if res >= 0 {
            slot.conn.on_sent(res as usize, &mut ctx);
        } else if -res == libc::EINTR || -res == libc::EAGAIN {
            slot.conn.on_sent(0, &mut ctx);
        } else {
            slot.conn.on_error();
        }
    }

    fn on_file(&mut self, idx: usize, res: i32) {
        let slot = &mut self.slots[idx];
        slot.file_inflight = false;
        let mut ctx = Self::ctx(
            &mut self.handler,
            &self.date,
            &self.config,
            self.now,
            self.draining,
            &mut self.log,
        );
        slot.conn.on_file_read(res, &mut ctx);
    }

    /// Turn the connection's wishes into operations.
    fn drive(&mut self, idx: usize) {
        let now = self.now;
        let tier = self.tier;
        let slot = &mut self.slots[idx];
        if !slot.closing {
            match slot.conn.poll_close(now) {
                Some(Close::Now) => slot.closing = true,
                Some(Close::Linger) => {
                    // SAFETY: fd is this slot's open socket. A plain syscall: rare path.
                    unsafe { libc::shutdown(slot.fd, libc::SHUT_WR) };
                }
                None => {}
            }
        }
        if slot.closing {
            if slot.recv_armed && !slot.recv_cancel_sent {
                slot.recv_cancel_sent = true;
                let e = opcode::AsyncCancel::new(slot.token(idx, OP_RECV))
                    .build()
                    .user_data(Token::new(idx as u32, slot.generation, OP_CANCEL).0);
                self.sqes.push_back(e);
            }
            if slot.send_inflight && !slot.send_cancel_sent {
                slot.send_cancel_sent = true;
                let e = opcode::AsyncCancel::new(slot.token(idx, OP_SEND))
                    .build()
                    .user_data(Token::new(idx as u32, slot.generation, OP_CANCEL).0);
                self.sqes.push_back(e);
            }
            if slot.ops() == 0 {
                self.release(idx);
            }
            return;
        }
        let fd = types::Fd(slot.fd);
        if !slot.send_inflight {
            if let Some(bytes) = slot.conn.poll_send() {
                let e = opcode::Send::new(fd, bytes.as_ptr(), bytes.len() as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(slot.token(idx, OP_SEND));
                slot.send_inflight = true;
                self.sqes.push_back(e);
            }
        }
        if !slot.file_inflight {
            if let Some((file_fd, offset, dst, len)) = slot.conn.poll_file_read() {
                let e = opcode::Read::new(types::Fd(file_fd), dst, len)
                    .offset(offset)
                    .build()
                    .user_data(slot.token(idx, OP_FILE));
                slot.file_inflight = true;
                self.sqes.push_back(e);
            }
        }
        let wants = slot.conn.wants_read();
        if wants && !slot.recv_armed {
            let ud = slot.token(idx, OP_RECV);
            let e = match tier {
                Tier::Basic => {
                    opcode::Recv::new(fd, slot.recv_buf.as_mut_ptr(), slot.recv_buf.len() as u32)
                        .build()
                }
                Tier::Multishot => opcode::Recv::new(fd, std::ptr::null_mut(), BUF_SIZE)
                    .buf_group(BUF_GROUP)
                    .build()
                    .flags(squeue::Flags::BUFFER_SELECT),
                Tier::Full => opcode::RecvMulti::new(fd, BUF_GROUP).build(),
            };
            slot.recv_armed = true;
            self.sqes.push_back(e.user_data(ud));
        } else if !wants && slot.recv_armed && tier == Tier::Full && !slot.recv_cancel_sent {
            // A multishot receive would keep filling rbuf; stop it until we catch up.
            slot.recv_cancel_sent = true;
            let e = opcode::AsyncCancel::new(slot.token(idx, OP_RECV))
                .build()
                .user_data(Token::new(idx as u32, slot.generation, OP_CANCEL).0);
            self.sqes.push_back(e);
        }
    }

    /// All operations of a closing slot are done: close its fd once and reuse the slot.
    fn release(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        let e = opcode::Close::new(types::Fd(slot.fd))
            .build()
            .user_data(Token::new(idx as u32, slot.generation, OP_CLOSE).0);
        self.sqes.push_back(e);
        slot.conn.release();
        slot.fd = -1;
        slot.in_use = false;
        slot.closing = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(idx);
        self.active -= 1;
    }

    fn on_accept(&mut self, li: usize, res: i32, flags: u32) {
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        if !cqueue::more(flags) {
            l.armed = false;
            l.cancel_sent = false;
        }
        if res >= 0 {
            l.backoff = ACCEPT_BACKOFF;
            if self.draining {
                let e = opcode::Close::new(types::Fd(res))
                    .build()
                    .user_data(Token::new(0, 0, OP_CLOSE).0);
                self.sqes.push_back(e);
                return;
            }
            let idx = self.alloc_slot(res);
            self.drive(idx);
            return;
        }
        match -res {
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                // Out of descriptors: the connection stays in the backlog. Retry later
                // instead of spinning on an accept that fails at once.
                let wait = l.backoff;
                l.retry_at = Some(self.now + wait);
                l.backoff = (l.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                if l.armed && !l.cancel_sent {
                    l.cancel_sent = true;
                    let e = opcode::AsyncCancel::new(Token::new(li as u32, 0, OP_ACCEPT).0)
                        .build()
                        .user_data(Token::new(li as u32, 0, OP_CANCEL).0);
                    self.sqes.push_back(e);
                }
                if !self.backoff_armed {
                    self.backoff_armed = true;
                    self.backoff_ts = types::Timespec::new()
                        .sec(wait.as_secs())
                        .nsec(wait.subsec_nanos());
                    let e = opcode::Timeout::new(&self.backoff_ts)
                        .build()
                        .user_data(Token::new(0, 0, OP_BACKOFF).0);
                    self.sqes.push_back(e);
                }
            }
            _ => {}
        }
    }

    fn alloc_slot(&mut self, fd: RawFd) -> usize {
        self.active += 1;
        let now = self.now;
        if let Some(idx) = self.free.pop() {
            let s = &mut self.slots[idx];
            s.fd = fd;
            s.in_use = true;
            s.conn.reset(now);
            return idx;
        }
        let recv_buf = if self.tier == Tier::Basic {
            vec![0u8; BASIC_RECV_BUF].into_boxed_slice()
        } else {
            Box::default()
        };
        self.slots.push(Slot {
            generation: 0,
            fd,
            in_use: true,
            conn: Conn::new(now, &self.config.timeouts),
            recv_buf,
            recv_armed: false,
            recv_cancel_sent: false,
            send_inflight: false,
            send_cancel_sent: false,
            file_inflight: false,
            closing: false,
        });
        self.slots.len() - 1
    }

    /// Arm accepts that should run; stop them at the connection cap.
    fn drive_accept(&mut self) {
        let at_cap = self.active >= self.config.max_conns_per_worker;
        for (li, l) in self.listeners.iter_mut().enumerate() {
            if l.closed {
                continue;
            }
            let ud = Token::new(li as u32, 0, OP_ACCEPT).0;
            if self.draining {
                if l.armed {
                    if !l.cancel_sent {
                        l.cancel_sent = true;
                        self.sqes.push_back(
                            opcode::AsyncCancel::new(ud)
                                .build()
                                .user_data(Token::new(li as u32, 0, OP_CANCEL).0),
                        );
                    }
                } else {
                    l.closed = true;
                    self.sqes.push_back(
                        opcode::Close::new(types::Fd(l.fd))
                            .build()
                            .user_data(Token::new(0, 0, OP_CLOSE).0),
                    );
                }
                continue;
            }
            if l.armed {
                if at_cap && self.tier >= Tier::Multishot && !l.cancel_sent {
                    l.cancel_sent = true;
                    self.sqes.push_back(
                        opcode::AsyncCancel::new(ud)
                            .build()
                            .user_data(Token::new(li as u32, 0, OP_CANCEL).0),
                    );
                }
                continue;
            }
            if at_cap || l.retry_at.is_some_and(|t| self.now < t) {
                continue;
            }
            l.retry_at = None;
            let e = if self.tier >= Tier::Multishot {
                opcode::AcceptMulti::new(types::Fd(l.fd))
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
            } else {
                opcode::Accept::new(types::Fd(l.fd), std::ptr::null_mut(), std::ptr::null_mut())
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
            };
            l.armed = true;
            self.sqes.push_back(e.user_data(ud));
        }
    }

    fn arm_wake(&mut self) {
        let e = opcode::Read::new(
            types::Fd(self.wake_fd),
            (&mut self.wake_buf as *mut u64).cast(),
            8,
        )
        .build()
        .user_data(Token::new(0, 0, OP_WAKE).0);
        self.sqes.push_back(e);
    }

    fn arm_tick(&mut self) {
        if self.tick_armed {
            return;
        }
        let wait = self.tick;
        self.tick_ts = types::Timespec::new()
            .sec(wait.as_secs())
            .nsec(wait.subsec_nanos());
        let e = opcode::Timeout::new(&self.tick_ts)
            .build()
            .user_data(Token::new(0, 0, OP_TICK).0);
        self.tick_armed = true;
        self.sqes.push_back(e);
    }

    /// Expire deadlines (header read, keep-alive idle, linger) and flush the access log.
    fn on_tick(&mut self) {
        let now = self.now;
        for idx in 0..self.slots.len() {
            let s = &mut self.slots[idx];
            if !s.in_use || s.closing {
                continue;
            }
            if s.conn.deadline().is_some_and(|d| now >= d) {
                s.conn.on_timeout(now);
                self.drive(idx);
            }
        }
        if let Some(log) = self.log.as_mut() {
            log.flush();
        }
    }

    fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.drain_deadline = Some(self.now + self.config.timeouts.drain);
        for idx in 0..self.slots.len() {
            if self.slots[idx].in_use && !self.slots[idx].closing {
                self.slots[idx].conn.start_drain();
                self.drive(idx);
            }
        }
        self.drive_accept();
    }

    fn force_close_all(&mut self) {
        for idx in 0..self.slots.len() {
            if self.slots[idx].in_use && !self.slots[idx].closing {
                self.slots[idx].conn.on_error();
                self.drive(idx);
            }
        }
    }

    /// Wait (bounded) for every outstanding operation, then release the ring.
    fn teardown(&mut self, mut ring: IoUring) {
        self.force_close_all();
        self.flush_sqes(&mut ring);
        let _ = ring.submit();
        if let Some(log) = self.log.as_mut() {
            log.flush();
        }
        if let Some(b) = self.bufs.take() {
            let _ = b.unregister(&ring);
        }
    }
}
