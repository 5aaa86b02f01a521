//! The io_uring engine: one thread per `-t`, each pinned to a core and owning one ring,
//! its share of the connections, its share of the `-n` budget and its own recorder.
//! Threads share nothing on the hot path; their recorders merge exactly at the end.
//!
//! The loop only moves bytes and completions: every decision about a response is made by
//! [`Conn`]. Requests are serialized once; a send of `k` pipelined requests is one SEND
//! of `k` copies from a per-thread buffer. Receives use a multishot RECV with a buffer
//! ring (full tier), a single-shot RECV that selects from the buffer ring (multishot
//! tier) or a buffer per connection (basic tier, 5.10).
//!
//! Nothing waits forever: a connect carries a LINK_TIMEOUT, a ring timer wakes the loop
//! at least every 10 ms to sweep the `-T` deadlines, and a socket is torn down with
//! `shutdown(2)`, which completes its pending receive and send, before its slot is reused
//! (closing an fd does not cancel the operations in flight on it).

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use uring_common::ring::{self, BufRing, RingConfig, Tier, TierChoice, Token};
use uring_common::stats::{ErrorKind, OsCause, Recorder};

use crate::conn::{Conn, ConnSpec, Phase, Step};
use crate::error::StartError;
use crate::schedule::{split_even, Dispatcher};
use crate::target::Address;

/// Set by the binary's SIGINT handler: every thread stops and the partial report prints.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// HTTPS parameters: the rustls configuration and the name the certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// Everything one run needs.
#[derive(Clone)]
pub struct LoadConfig {
    pub address: Address,
    pub tls: Option<TlsTarget>,
    /// One complete request (head and body), sent as is.
    pub request: Vec<u8>,
    pub conn: ConnSpec,
    pub connections: usize,
    pub threads: usize,
    /// `-n`: exactly this many requests complete.
    pub requests: Option<u64>,
    /// `-d`: the run stops after this long.
    pub duration: Option<Duration>,
    /// `-T`: connect and per-request timeout.
    pub timeout: Duration,
    /// `-R`: open model at this many requests per second (all threads together).
    pub rate: Option<f64>,
    /// Core for each thread, or none (`--no-pin`).
    pub cores: Vec<Option<core_affinity::CoreId>>,
    pub tier: TierChoice,
    /// Latency over time: each thread sends a copy of its recorder once per interval.
    pub intervals: Option<crate::intervals::IntervalFeed>,
}

/// Shared progress counters (requests done, per thread), read by the progress printer.
#[derive(Debug)]
pub struct Progress {
    pub done: Vec<AtomicU64>,
}

impl Progress {
    pub fn new(threads: usize) -> Progress {
        Progress {
            done: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }
    pub fn done(&self) -> u64 {
        self.done.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// What a run produced.
pub struct RunOutcome {
    pub recorder: Recorder,
    pub elapsed: Duration,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    pub tier: Tier,
}

const OP_CONNECT: u8 = 1;
const OP_LINK_TIMEOUT: u8 = 2;
const OP_SEND: u8 = 3;
const OP_RECV: u8 = 4;
const OP_TIMER: u8 = 5;
const OP_CANCEL: u8 = 6;

const SWEEP: Duration = Duration::from_millis(10);
/// Back-off before reconnecting after a failed connect (no spinning on a dead port).
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
const TIMERS: usize = 4;
const BGID: u16 = 0;
/// Per-connection receive buffer of the basic tier.
const BASIC_RECV: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvMode {
    /// Multishot RECV with the buffer ring (6.0+).
    Multishot,
    /// Single-shot RECV selecting a buffer from the buffer ring (5.19+).
    Select,
    /// Single-shot RECV into the connection's own buffer (5.10).
    Own,
}

/// Run the load: spawn the threads, wait for them, merge their recorders.
pub fn run(cfg: &LoadConfig, progress: &Progress) -> Result<RunOutcome, StartError> {
    let features = ring::probe()?;
    let tier = features.resolve(cfg.tier)?;
    let recv_mode = match tier {
        Tier::Full if features.multishot_recv => RecvMode::Multishot,
        Tier::Full | Tier::Multishot if features.buf_ring => RecvMode::Select,
        _ => RecvMode::Own,
    };
    if tier == Tier::Basic {
        ring::raise_memlock_limit();
    }
    let threads = cfg.threads.max(1);
    let conns = split_even(cfg.connections as u64, threads);
    let budgets: Vec<Option<u64>> = match cfg.requests {
        Some(n) => split_even(n, threads).into_iter().map(Some).collect(),
        None => vec![None; threads],
    };
    let rate = cfg.rate.map(|r| r / threads as f64);
    let setup = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let abort = Arc::new(AtomicBool::new(false));
    let errors: Arc<Mutex<Vec<StartError>>> = Arc::default();

    let mut outcome: Result<(Recorder, Duration), StartError> = Err(StartError::ThreadCrashed);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..threads {
            let (setup, go, abort, errors) = (&setup, &go, &abort, &errors);
            let n_conns = conns[i] as usize;
            let budget = budgets[i];
            let core = cfg.cores.get(i).copied().flatten();
            let h = std::thread::Builder::new()
                .name(format!("uring-load-{i}"))
                .spawn_scoped(s, move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    let worker = Worker::new(cfg, i, tier, recv_mode, n_conns, budget, rate);
                    let mut worker = match worker {
                        Ok(w) => Some(w),
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            None
                        }
                    };
                    setup.wait();
                    go.wait();
                    match worker.as_mut() {
                        Some(w) if !abort.load(Ordering::SeqCst) => {
                            let ended = w.run(&progress.done[i]);
                            Some((std::mem::take(&mut w.rec), ended))
                        }
                        _ => None,
                    }
                })
                .expect("spawn a load thread");
            handles.push(h);
        }
        setup.wait();
        let failed = errors.lock().unwrap().drain(..).next();
        if failed.is_some() {
            abort.store(true, Ordering::SeqCst);
        }
        go.wait();
        let start = Instant::now();
        let mut merged = Recorder::new();
        let mut crashed = false;
        let mut end = start;
        for h in handles {
            match h.join() {
                Ok(Some((rec, ended))) => {
                    merged.merge(&rec);
                    end = end.max(ended);
                }
                Ok(None) => {}
                // A report missing a thread's share would be wrong: say so instead.
                Err(_) => crashed = true,
            }
        }
        // The measured phase ends when the last thread stops its loop; tearing the
        // connections down afterwards is not part of it.
        let elapsed = end.saturating_duration_since(start);
        outcome = match failed {
            Some(e) => Err(e),
            None if crashed => Err(StartError::ThreadCrashed),
            None => Ok((merged, elapsed)),
        };
    });
    let (recorder, elapsed) = outcome?;
    Ok(RunOutcome {
        recorder,
        elapsed,
        interrupted: INTERRUPTED.load(Ordering::SeqCst),
        tier,
    })
}

/// One connection's socket and IO state around its [`Conn`].
struct Slot {
    conn: Conn,
    fd: RawFd,
    generation: u16,
    /// Operations in flight; the fd is closed and the slot reused only at zero.
    ops: u32,
    recv_armed: bool,
    send_inflight: bool,
    /// The bytes of the send in flight: `[send_at, send_end)` of the request train or
    /// of `tls_out`.
    send_at: usize,
    send_end: usize,
    shut: bool,
    ever_opened: bool,
    retry_at: Option<Instant>,
    tls: Option<Box<ClientConnection>>,
    tls_out: Vec<u8>,
    own_buf: Vec<u8>,
    in_ready: bool,
    in_idle: bool,
}

struct Worker<'a> {
    cfg: &'a LoadConfig,
    ring: IoUring,
    bufring: Option<BufRing>,
    recv_mode: RecvMode,
    slots: Vec<Slot>,
    rec: Recorder,
    disp: Dispatcher,
    budget: Option<u64>,
    rate: Option<f64>,
    addr: socket2::SockAddr,
    domain: libc::c_int,
    /// The request repeated `depth` times: `k` pipelined requests are its first `k` copies.
    train: Vec<u8>,
    connect_ts: Box<types::Timespec>,
    timer_ts: Box<[types::Timespec; TIMERS]>,
    timer_expiry: [Option<Instant>; TIMERS],
    idle: Vec<u32>,
    dirty: Vec<u32>,
    ready: Vec<u32>,
    cqes: Vec<(u64, i32, u32)>,
    plain: Vec<u8>,
    stopping: bool,
}

impl<'a> Worker<'a> {
    fn new(
        cfg: &'a LoadConfig,
        index: usize,
        tier: Tier,
        recv_mode: RecvMode,
        n_conns: usize,
        budget: Option<u64>,
        rate: Option<f64>,
    ) -> Result<Worker<'a>, StartError> {
        let entries = (n_conns * 2 + 64).next_power_of_two().clamp(256, 4096) as u32;
        let ring = ring::build_ring(&RingConfig {
            tier,
            entries,
            cq_entries: entries * 4,
        })?;
        let bufring = if recv_mode == RecvMode::Own {
            None
        } else {
            let count = (n_conns * 2).next_power_of_two().clamp(64, 4096) as u16;
            let size = if count > 2048 { 8192 } else { 16384 };
            Some(
                BufRing::register(&ring, BGID, count, size)
                    .map_err(|err| StartError::BufRing { thread: index, err })?,
            )
        };
        let spec = cfg.conn;
        let slots = (0..n_conns)
            .map(|_| Slot {
                conn: Conn::new(spec),
                fd: -1,
                generation: 0,
                ops: 0,
                recv_armed: false,
                send_inflight: false,
                send_at: 0,
                send_end: 0,
                shut: false,
                ever_opened: false,
                retry_at: None,
                tls: None,
                tls_out: Vec::new(),
                own_buf: if recv_mode == RecvMode::Own {
                    vec![0; BASIC_RECV]
                } else {
                    Vec::new()
                },
                in_ready: false,
                in_idle: false,
            })
            .collect();
        let depth = if spec.keep_alive {
            spec.depth.max(1)
        } else {
            1
        };
        let mut train = Vec::with_capacity(cfg.request.len() * depth);
        for _ in 0..depth {
            train.extend_from_slice(&cfg.request);
        }
        let addr = cfg.address.to_sockaddr()?;
        let domain = match cfg.address {
            Address::Inet(a) if a.is_ipv4() => libc::AF_INET,
            Address::Inet(_) => libc::AF_INET6,
            Address::Unix(_) => libc::AF_UNIX,
        };
        Ok(Worker {
            cfg,
            ring,
            bufring,
            recv_mode,
            slots,
            rec: Recorder::new(),
            disp: Dispatcher::closed(budget),
            budget,
            rate,
            addr,
            domain,
            train,
            connect_ts: Box::new(types::Timespec::from(cfg.timeout)),
            timer_ts: Box::new([types::Timespec::new(); TIMERS]),
            timer_expiry: [None; TIMERS],
            idle: Vec::with_capacity(n_conns),
            dirty: Vec::with_capacity(n_conns),
            ready: Vec::with_capacity(n_conns),
            cqes: Vec::with_capacity(4096),
            plain: vec![0; 16 * 1024],
            stopping: false,
        })
    }

    /// Run the thread's share; returns when its measured phase ended.
    fn run(&mut self, progress: &AtomicU64) -> Instant {
        let start = Instant::now();
        self.disp = match self.rate {
            Some(r) => Dispatcher::open(self.budget, r, start),
            None => Dispatcher::closed(self.budget),
        };
        let deadline = self.cfg.duration.map(|d| start + d);
        for i in 0..self.slots.len() as u32 {
            self.mark_idle(i);
        }
        let mut next_sweep = start + SWEEP;
        let mut ticker =
            crate::intervals::IntervalTicker::start(self.cfg.intervals.as_ref(), start);
        loop {
            let now = Instant::now();
            ticker.tick(now, &self.rec);
            if INTERRUPTED.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
                break;
            }
            if self.disp.exhausted() && self.all_answered() {
                break;
            }
            self.restart_idle(now);
            self.dispatch_due(now);
            self.flush_dirty();
            if now >= next_sweep {
                self.sweep(now);
                self.flush_dirty();
                next_sweep = now + SWEEP;
            }
            let mut wake = next_sweep;
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            if let Some(due) = self.disp.next_due() {
                if !self.ready.is_empty() {
                    wake = wake.min(due);
                }
            }
            self.arm_timer(now, wake);
            self.submit_and_wait();
            self.reap();
            progress.store(self.done(), Ordering::Relaxed);
        }
        let ended = Instant::now();
        ticker.finish(ended, &self.rec);
        progress.store(self.done(), Ordering::Relaxed);
        self.shutdown_all();
        self.rec.counters.started = self.disp.started();
        ended
    }

    fn done(&self) -> u64 {
        let c = &self.rec.counters;
        c.succeeded + c.failed + c.errored
    }

    fn all_answered(&self) -> bool {
        self.disp.started() == self.done()
    }

    // ---- submission ----

    fn push(&mut self, sqe: &squeue::Entry) {
        loop {
            // SAFETY: every buffer and timespec an entry points to lives in `self` (or in
            // the configuration that outlives the worker) until the entry's last CQE.
            let pushed = unsafe { self.ring.submission().push(sqe) };
            if pushed.is_ok() {
                return;
            }
            let _ = self.ring.submit();
        }
    }

    fn push_pair(&mut self, a: &squeue::Entry, b: &squeue::Entry) {
        loop {
            {
                let mut sq = self.ring.submission();
                if sq.capacity() - sq.len() >= 2 {
                    // SAFETY: as in `push`; both fit, so the link is not split.
                    unsafe {
                        sq.push(a).expect("room checked");
                        sq.push(b).expect("room checked");
                    }
                    return;
                }
            }
            let _ = self.ring.submit();
        }
    }

    fn submit_and_wait(&mut self) {
        match self.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {}
                _ => {
                    // Nothing sensible remains but to stop this thread's run.
                    eprintln!("uring-load: io_uring_enter failed: {e}");
                    INTERRUPTED.store(true, Ordering::SeqCst);
                }
            },
        }
    }

    fn arm_timer(&mut self, now: Instant, wake: Instant) {
        let slack = Duration::from_micros(50);
        if self
            .timer_expiry
            .iter()
            .flatten()
            .any(|&e| e <= wake + slack)
        {
            return;
        }
        let Some(i) = self.timer_expiry.iter().position(Option::is_none) else {
            return;
        };
        let after = wake.saturating_duration_since(now);
        self.timer_ts[i] = types::Timespec::from(after);
        self.timer_expiry[i] = Some(now + after);
        let sqe = opcode::Timeout::new(&self.timer_ts[i] as *const _)
            .build()
            .user_data(Token::new(i as u32, 0, OP_TIMER).0);
        self.push(&sqe);
    }

    // ---- connection lifecycle ----

    fn mark_idle(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        if !s.in_idle {
            s.in_idle = true;
            self.idle.push(i);
        }
    }

    fn mark_dirty(&mut self, i: u32) {
        self.dirty.push(i);
    }

    fn restart_idle(&mut self, now: Instant) {
        if self.idle.is_empty() || self.stopping {
            return;
        }
        let mut k = 0;
        while k < self.idle.len() {
            let i = self.idle[k];
            let s = &self.slots[i as usize];
            if s.retry_at.is_some_and(|t| t > now) {
                k += 1;
                continue;
            }
            if !self.disp.is_open_model() {
                // Closed model: a connection starts with a request in hand, so that a
                // failed connect uses up budget and a dead server cannot stall `-n`.
                if !self.slots[i as usize].conn.has_room() {
                    k += 1;
                    continue;
                }
                match self.disp.claim(now) {
                    Some(origin) => self.slots[i as usize].conn.push_request(origin, now),
                    None => break,
                }
            } else if self.disp.exhausted() {
                break;
            }
            self.idle.swap_remove(k);
            self.slots[i as usize].in_idle = false;
            self.connect(i, now);
        }
    }

    fn connect(&mut self, i: u32, now: Instant) {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(self.domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        let s = &mut self.slots[i as usize];
        s.conn.start_connect();
        if fd < 0 {
            // EMFILE and friends: count, back off, retry.
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            let peer = &self.cfg.address;
            let cause = OsCause {
                kind: ErrorKind::Connect,
                errno,
                peer,
            };
            s.conn
                .on_error_because(ErrorKind::Connect, &cause, &mut self.rec);
            s.conn.closed();
            s.retry_at = Some(now + CONNECT_BACKOFF);
            self.mark_idle(i);
            return;
        }
        if self.domain != libc::AF_UNIX {
            let one: libc::c_int = 1;
            // SAFETY: setsockopt with a valid int option value.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    &one as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        s.fd = fd;
        s.generation = s.generation.wrapping_add(1);
        s.shut = false;
        s.retry_at = None;
        s.send_inflight = false;
        s.recv_armed = false;
        s.ops += 2;
        let gen = s.generation;
        let connect = opcode::Connect::new(
            types::Fd(fd),
            self.addr.as_ptr() as *const _,
            self.addr.len(),
        )
        .build()
        .flags(squeue::Flags::IO_LINK)
        .user_data(Token::new(i, gen, OP_CONNECT).0);
        let timeout = opcode::LinkTimeout::new(&*self.connect_ts as *const _)
            .build()
            .user_data(Token::new(i, gen, OP_LINK_TIMEOUT).0);
        self.push_pair(&connect, &timeout);
    }

    fn on_connect(&mut self, i: u32, res: i32, now: Instant) {
        let keep_alive = self.cfg.conn.keep_alive;
        let s = &mut self.slots[i as usize];
        if s.shut {
            return;
        }
        if res < 0 {
            if s.conn.in_flight() == 0 && self.disp.is_open_model() {
                // Open model: the connection had no request yet; charge the failure to
                // a due one so that a dead server cannot stall a `-n` run.
                if let Some(origin) = self.disp.claim(now) {
                    s.conn.push_request(origin, now);
                }
            }
            let peer = &self.cfg.address;
            // The linked timeout cancels the connect: say that it timed out.
            let errno = if -res == libc::ECANCELED {
                libc::ETIMEDOUT
            } else {
                -res
            };
            let cause = OsCause {
                kind: ErrorKind::Connect,
                errno,
                peer,
            };
            s.conn
                .on_error_because(ErrorKind::Connect, &cause, &mut self.rec);
            s.retry_at = Some(now + CONNECT_BACKOFF);
            self.teardown(i);
            return;
        }
        s.conn.on_connected();
        self.rec.counters.connections_opened += 1;
        if s.ever_opened && keep_alive {
            self.rec.counters.reconnects += 1;
        }
        s.ever_opened = true;
        if let Some(tls) = &self.cfg.tls {
            match ClientConnection::new(tls.config.clone(), tls.server_name.clone()) {
                Ok(c) => s.tls = Some(Box::new(c)),
                Err(e) => {
                    let cause = format!("TLS setup: {e}");
                    s.conn
                        .on_error_because(ErrorKind::Connect, &cause, &mut self.rec);
                    self.teardown(i);
                    return;
                }
            }
        }
        self.arm_recv(i);
        self.fill(i, now);
        self.mark_dirty(i);
    }

    /// Hand the connection as many requests as it has room for and the dispatcher allows.
    fn fill(&mut self, i: u32, now: Instant) {
        if self.stopping {
            return;
        }
        let s = &mut self.slots[i as usize];
        if s.conn.phase() != Phase::Open {
            return;
        }
        let mut added = false;
        while s.conn.has_room() {
            match self.disp.claim(now) {
                Some(origin) => {
                    s.conn.push_request(origin, now);
                    added = true;
                }
                None => break,
            }
        }
        if added {
            self.dirty.push(i);
        }
        let s = &mut self.slots[i as usize];
        if s.conn.has_room() && self.disp.is_open_model() && !s.in_ready {
            s.in_ready = true;
            self.ready.push(i);
        }
    }

    /// Open model: give requests that came due to connections with room.
    fn dispatch_due(&mut self, now: Instant) {
        if !self.disp.is_open_model() {
            return;
        }
        while self.disp.next_due().is_some_and(|d| d <= now) {
            let Some(i) = self.ready.pop() else {
                break;
            };
            self.slots[i as usize].in_ready = false;
            self.fill(i, now);
        }
    }

    fn flush_dirty(&mut self) {
        while let Some(i) = self.dirty.pop() {
            self.flush(i);
        }
    }

    /// Write what the connection has queued, if no send is in flight.
    fn flush(&mut self, i: u32) {
        let req_len = self.cfg.request.len();
        let s = &mut self.slots[i as usize];
        if s.send_inflight || s.shut || s.conn.phase() != Phase::Open {
            return;
        }
        let n = s.conn.take_unsent();
        let gen = s.generation;
        let fd = s.fd;
        let (ptr, len) = if let Some(tls) = s.tls.as_deref_mut() {
            for _ in 0..n {
                // rustls buffers the plaintext until the handshake is done.
                let _ = tls.writer().write_all(&self.cfg.request);
            }
            if !tls.wants_write() {
                return;
            }
            s.tls_out.clear();
            while tls.wants_write() {
                if tls.write_tls(&mut s.tls_out).is_err() {
                    break;
                }
            }
            s.send_at = 0;
            s.send_end = s.tls_out.len();
            (s.tls_out.as_ptr(), s.tls_out.len())
        } else {
            if n == 0 {
                return;
            }
            s.send_at = 0;
            s.send_end = n * req_len;
            (self.train.as_ptr(), n * req_len)
        };
        s.send_inflight = true;
        s.ops += 1;
        let sqe = opcode::Send::new(types::Fd(fd), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Token::new(i, gen, OP_SEND).0);
        self.push(&sqe);
    }

    fn on_send(&mut self, i: u32, res: i32) {
        let s = &mut self.slots[i as usize];
        s.send_inflight = false;
        if s.shut {
            return;
        }
        if res < 0 {
            let peer = &self.cfg.address;
            let cause = OsCause {
                kind: ErrorKind::Write,
                errno: -res,
                peer,
            };
            s.conn
                .on_error_because(ErrorKind::Write, &cause, &mut self.rec);
            self.teardown(i);
            return;
        }
        s.send_at += res as usize;
        if s.send_at < s.send_end {
            // Short send: the rest of the same bytes.
            let base = if s.tls.is_some() {
                s.tls_out.as_ptr()
            } else {
                self.train.as_ptr()
            };
            // SAFETY: send_at < send_end <= the length of the buffer `base` points into.
            let ptr = unsafe { base.add(s.send_at) };
            let len = (s.send_end - s.send_at) as u32;
            s.send_inflight = true;
            s.ops += 1;
            let sqe = opcode::Send::new(types::Fd(s.fd), ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(Token::new(i, s.generation, OP_SEND).0);
            self.push(&sqe);
            return;
        }
        self.flush(i);
    }

    fn arm_recv(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        if s.recv_armed || s.shut {
            return;
        }
        s.recv_armed = true;
        s.ops += 1;
        let token = Token::new(i, s.generation, OP_RECV).0;
        let fd = types::Fd(s.fd);
        let sqe = match self.recv_mode {
            RecvMode::Multishot => opcode::RecvMulti::new(fd, BGID).build(),
            RecvMode::Select => opcode::Recv::new(fd, std::ptr::null_mut(), 0)
                .buf_group(BGID)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
            RecvMode::Own => {
                opcode::Recv::new(fd, s.own_buf.as_mut_ptr(), s.own_buf.len() as u32).build()
            }
        };
        self.push(&sqe.user_data(token));
    }

    fn on_recv(&mut self, i: u32, res: i32, flags: u32, now: Instant) {
        let more = self.recv_mode == RecvMode::Multishot && cqueue::more(flags);
        if !more {
            self.slots[i as usize].recv_armed = false;
        }
        let bid = if self.recv_mode == RecvMode::Own {
            None
        } else {
            BufRing::buffer_id(flags)
        };
        if res > 0 {
            if !self.slots[i as usize].shut {
                // Move the buffer ring out for the duration of the call so that the bytes
                // (borrowed from it) and the slot can be used together.
                let bufring = self.bufring.take();
                let own = std::mem::take(&mut self.slots[i as usize].own_buf);
                let data: &[u8] = match (&bufring, bid) {
                    (Some(br), Some(b)) => br.get(b, res as usize),
                    _ => &own[..res as usize],
                };
                self.on_bytes(i, data, now);
                self.slots[i as usize].own_buf = own;
                self.bufring = bufring;
            }
            if let (Some(br), Some(b)) = (self.bufring.as_mut(), bid) {
                br.recycle(b);
            }
        } else {
            if let (Some(br), Some(b)) = (self.bufring.as_mut(), bid) {
                br.recycle(b);
            }
            let s = &mut self.slots[i as usize];
            if !s.shut {
                if res == 0 {
                    s.conn.on_eof(now, &mut self.rec);
                    self.teardown(i);
                } else if res == -libc::ENOBUFS {
                    // The buffer ring ran dry; buffers are back now, no bytes were lost.
                } else {
                    let peer = &self.cfg.address;
                    let cause = OsCause {
                        kind: ErrorKind::Read,
                        errno: -res,
                        peer,
                    };
                    s.conn
                        .on_error_because(ErrorKind::Read, &cause, &mut self.rec);
                    self.teardown(i);
                }
            }
        }
        let s = &self.slots[i as usize];
        if !s.recv_armed && !s.shut && matches!(s.conn.phase(), Phase::Open | Phase::Draining) {
            self.arm_recv(i);
        }
    }

    /// Bytes from the socket: through rustls if HTTPS, then to the connection.
    fn on_bytes(&mut self, i: u32, data: &[u8], now: Instant) {
        let s = &mut self.slots[i as usize];
        let Some(tls) = s.tls.as_deref_mut() else {
            let before = s.conn.in_flight();
            let step = s.conn.on_data(data, now, &mut self.rec);
            let answered = s.conn.in_flight() < before;
            self.after_step(i, step, answered, now);
            return;
        };
        let mut input = data;
        let mut answered = false;
        let mut step = Step::Continue;
        'feed: while !input.is_empty() {
            if let Err(e) = tls.read_tls(&mut input) {
                let cause = format!("TLS read: {e}");
                step = s
                    .conn
                    .on_error_because(ErrorKind::Read, &cause, &mut self.rec);
                break;
            }
            if let Err(e) = tls.process_new_packets() {
                let kind = if tls.is_handshaking() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Read
                };
                let cause = format!("TLS: {e} (peer {})", self.cfg.address);
                step = s.conn.on_error_because(kind, &cause, &mut self.rec);
                break;
            }
            loop {
                match tls.reader().read(&mut self.plain) {
                    Ok(0) => {
                        step = s.conn.on_eof(now, &mut self.rec);
                        break 'feed;
                    }
                    Ok(n) => {
                        let before = s.conn.in_flight();
                        step = s.conn.on_data(&self.plain[..n], now, &mut self.rec);
                        answered |= s.conn.in_flight() < before;
                        if step == Step::Close {
                            break 'feed;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        // Handshake messages or alerts may be waiting to go out.
        if step == Step::Continue && tls.wants_write() {
            self.dirty.push(i);
        }
        self.after_step(i, step, answered, now);
    }

    fn after_step(&mut self, i: u32, step: Step, answered: bool, now: Instant) {
        match step {
            Step::Close => self.teardown(i),
            Step::Continue => {
                if answered {
                    self.fill(i, now);
                }
            }
        }
    }

    /// Check every connection's deadline.
    fn sweep(&mut self, now: Instant) {
        let timeout = self.cfg.timeout;
        for i in 0..self.slots.len() as u32 {
            let s = &mut self.slots[i as usize];
            if s.shut {
                continue;
            }
            if s.conn.poll_timeout(now, timeout, &mut self.rec) == Step::Close {
                self.teardown(i);
            }
        }
    }

    /// Begin closing the socket: requests never processed go back to the dispatcher,
    /// pending operations are woken by shutdown(2), the fd closes when they are done.
    fn teardown(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        if !self.stopping {
            for origin in s.conn.take_unanswered() {
                self.disp.give_back(origin);
            }
        } else {
            s.conn.abandon();
        }
        if !s.shut {
            s.shut = true;
            if s.fd >= 0 && s.ops > 0 {
                // Wake the receive (and send) still in flight; with none, close(2) in
                // `maybe_release` is enough (a server that closed first needs no more).
                // SAFETY: fd is our open socket.
                unsafe { libc::shutdown(s.fd, libc::SHUT_RDWR) };
            }
        }
        self.maybe_release(i);
    }

    /// Close the fd and free the slot once its last operation completed.
    fn maybe_release(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        if !s.shut || s.ops > 0 {
            return;
        }
        if s.fd >= 0 {
            // SAFETY: no operation refers to the fd any more.
            unsafe { libc::close(s.fd) };
            s.fd = -1;
        }
        s.tls = None;
        s.shut = false;
        s.send_inflight = false;
        s.recv_armed = false;
        if s.conn.phase() != Phase::Idle {
            if self.stopping {
                s.conn.abandon();
            } else {
                // Normally empty already (teardown gave them back); never lose one.
                for origin in s.conn.take_unanswered() {
                    self.disp.give_back(origin);
                }
            }
            s.conn.closed();
        }
        if !self.stopping {
            self.mark_idle(i);
        }
    }

    // ---- completions ----

    fn reap(&mut self) {
        let mut cqes = std::mem::take(&mut self.cqes);
        loop {
            cqes.clear();
            {
                let mut cq = self.ring.completion();
                cq.sync();
                cqes.extend((&mut cq).map(|c| (c.user_data(), c.result(), c.flags())));
            }
            if cqes.is_empty() {
                break;
            }
            let now = Instant::now();
            for &(ud, res, flags) in &cqes {
                self.complete(Token(ud), res, flags, now);
            }
        }
        self.cqes = cqes;
    }

    fn complete(&mut self, token: Token, res: i32, flags: u32, now: Instant) {
        let op = token.op();
        if op == OP_TIMER {
            self.timer_expiry[token.slot() as usize] = None;
            return;
        }
        let i = token.slot();
        // Count the operation as finished before handling it, so that a teardown decided
        // by the handler sees whether anything else is still in flight on the socket.
        let final_cqe = !(op == OP_RECV && cqueue::more(flags));
        if final_cqe && op != OP_CANCEL {
            self.slots[i as usize].ops -= 1;
        }
        match op {
            OP_CONNECT => self.on_connect(i, res, now),
            OP_SEND => self.on_send(i, res),
            OP_RECV => self.on_recv(i, res, flags, now),
            OP_LINK_TIMEOUT | OP_CANCEL => {}
            _ => {}
        }
        self.maybe_release(i);
    }

    /// End of the run: requests in flight are abandoned (neither done nor errored), every
    /// socket is shut down, and the ring is drained so no operation outlives its buffer.
    fn shutdown_all(&mut self) {
        self.stopping = true;
        for i in 0..self.slots.len() as u32 {
            let s = &mut self.slots[i as usize];
            let connecting = s.conn.phase() == Phase::Connecting;
            s.conn.abandon();
            if s.fd >= 0 {
                if connecting {
                    // A connect in flight: cancel it rather than wait for its timeout.
                    let sqe = opcode::AsyncCancel::new(Token::new(i, s.generation, OP_CONNECT).0)
                        .build()
                        .user_data(Token::new(i, 0, OP_CANCEL).0);
                    self.push(&sqe);
                }
                self.teardown(i);
            }
        }
        let give_up = Instant::now() + Duration::from_secs(2);
        while self.slots.iter().any(|s| s.ops > 0) && Instant::now() < give_up {
            let now = Instant::now();
            self.arm_timer(now, now + SWEEP);
            self.submit_and_wait();
            self.reap();
        }
        if self.slots.iter().any(|s| s.ops > 0) {
            // The kernel may still write into these buffers: never free them.
            for s in &mut self.slots {
                std::mem::forget(std::mem::take(&mut s.own_buf));
                std::mem::forget(std::mem::take(&mut s.tls_out));
            }
            std::mem::forget(std::mem::take(&mut self.train));
            std::mem::forget(self.bufring.take());
        }
    }
}
