//! One worker thread: a ring [`Driver`], its own SO_REUSEPORT listener per address, and a
//! connection machine per slot. The driver owns slots, buffers, submission and the
//! classification of completions; this file keeps what is the server's own policy:
//! accepting (with a back-off when the fd table is full), turning each connection's
//! wishes into operations, the timer sweep, and the drain at shutdown. HTTP lives in
//! `conn.rs`.
//!
//! Timers are one TIMEOUT per worker that sweeps connection deadlines, which costs nothing
//! per request; a second one ends an accept back-off on time.

use std::net::IpAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use uring_common::http::DateCache;
use uring_common::ring::{
    Core, Driver, DriverConfig, Event, RecvMode, RingConfig, RingError, SlotId, Tier,
};

use crate::config::ServerConfig;
use crate::conn::{Close, Conn, Ctx, FileOp};
use crate::handler::Handler;
use crate::limit::ClientLimits;
use crate::listener::{is_exhaustion, Arming, Listener};
use crate::observe::{Note, RequestLog};
use crate::proxy::{client_id, conn_of, stream_of, Proxy};
use crate::tls::ListenerTls;
mod wake;

/// Receive buffer per connection on the basic tier.
const BASIC_RECV_BUF: usize = 16 * 1024;
/// Buffer ring geometry for the multishot and full tiers.
const BUF_COUNT: u16 = 1024;
const BUF_SIZE: u32 = 4096;

const TIMER_TICK: u32 = 0;
const TIMER_BACKOFF: u32 = 1;

pub struct WorkerConfig {
    pub index: usize,
    pub tier: Tier,
    pub config: ServerConfig,
    pub listeners: Vec<OwnedFd>,
    pub wake_fd: RawFd,
    pub core: Option<core_affinity::CoreId>,
    pub log: Option<RequestLog>,
    pub tls: ListenerTls,
    /// Limits per client address, shared by every worker (`limit.rs`).
    pub client_limits: Option<Arc<ClientLimits>>,
}

/// Run one worker until shutdown. Reports ring set-up success or failure on `ready`.
pub fn run<H: Handler>(wcfg: WorkerConfig, handler: H, ready: Sender<Result<(), RingError>>) {
    if let Some(core) = wcfg.core {
        core_affinity::set_for_current(core);
    }
    let driver = Driver::new(&DriverConfig {
        ring: RingConfig {
            tier: wcfg.tier,
            entries: wcfg.config.sq_entries,
            cq_entries: wcfg.config.cq_entries,
        },
        recv_mode: RecvMode::for_tier(wcfg.tier, true),
        own_recv_size: BASIC_RECV_BUF,
        ring_buf_count: BUF_COUNT,
        ring_buf_size: BUF_SIZE,
        connect_timeout: wcfg.config.proxy.connect_timeout,
    });
    let mut driver = match driver {
        Ok(d) => d,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let t = &wcfg.config.timeouts;
    let shortest = t.header_read.min(t.keep_alive).min(t.body_read);
    let shortest = shortest.min(wcfg.config.proxy.tick_bound());
    let proxy = Proxy::new(&wcfg.config.proxy, driver.core());
    let mut log = wcfg.log;
    if let Some(l) = log.as_mut() {
        l.set_upstreams(&wcfg.config.proxy.upstreams);
    }
    let tick = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let http2 = (wcfg.config.http2_active())
        .then(|| crate::conn::http2_config(&wcfg.config.limits, &wcfg.config.http2_limits));
    let mut w = Worker {
        tier: wcfg.tier,
        config: wcfg.config,
        handler,
        listeners: wcfg.listeners.into_iter().map(Listener::new).collect(),
        conns: Vec::new(),
        date_cache: DateCache::new(),
        date: [b' '; 29],
        now: Instant::now(),
        tick,
        draining: false,
        drain_deadline: None,
        log,
        http2,
        proxy,
        tls: wcfg.tls,
        client_limits: wcfg.client_limits,
        counted_peers: Vec::new(),
    };
    let _ = ready.send(Ok(()));
    w.refresh_clock();
    let core = driver.core();
    w.watch(core, wcfg.wake_fd);
    core.timer(TIMER_TICK, w.tick);
    w.drive_accept(core);
    w.run(&mut driver);
}

struct Worker<H> {
    tier: Tier,
    config: ServerConfig,
    handler: H,
    listeners: Vec<Listener>,
    /// One connection machine per driver slot, indexed by slot id.
    conns: Vec<Conn>,
    date_cache: DateCache,
    date: [u8; 29],
    now: Instant,
    tick: Duration,
    draining: bool,
    drain_deadline: Option<Instant>,
    log: Option<RequestLog>,
    /// HTTP/2's settings, when connections may speak it.
    http2: Option<uring_common::h2::Config>,
    /// Upstream connections (slots it owns) and their pools; see `proxy/mod.rs`.
    proxy: Proxy,
    tls: ListenerTls,
    client_limits: Option<Arc<ClientLimits>>,
    /// Per slot, the address its connection is counted under (`--limit-conn`).
    counted_peers: Vec<Option<IpAddr>>,
}

impl<H: Handler> Worker<H> {
    fn run(&mut self, driver: &mut Driver) {
        loop {
            if self.draining && self.finished(driver) {
                break;
            }
            // The clock is read once per batch, after the wait, at its first completion.
            let mut clock_stale = true;
            let turn = driver.turn(&mut |core, ev| {
                if clock_stale {
                    clock_stale = false;
                    self.refresh_clock();
                }
                self.on_event(core, ev);
            });
            if let Err(e) = turn {
                eprintln!("uring-server: worker ring failed: {e}; stopping this worker");
                // New connections must not queue on a socket nobody accepts from.
                self.close_listeners_now();
                break;
            }
            self.refresh_clock();
            self.drive_accept(driver.core());
            if let Some(d) = self.drain_deadline {
                if self.now >= d {
                    self.force_close_all(driver.core());
                }
                // Cancellations complete at once; never hang the exit on one that does not.
                if self.now >= d + Duration::from_secs(2) {
                    break;
                }
            }
        }
        self.draining = true;
        // Every slot closes and its buffers stay until their last completion (the driver
        // leaks them rather than free them under the kernel if that takes too long).
        driver.shutdown(Duration::from_secs(2), &mut |core, ev| {
            self.on_event(core, ev)
        });
        self.close_listeners_now();
        if let Some(log) = self.log.as_mut() {
            log.flush();
        }
    }

    fn refresh_clock(&mut self) {
        self.now = Instant::now();
        self.date = *self.date_cache.get(SystemTime::now());
    }

    fn finished(&self, driver: &Driver) -> bool {
        driver.live() == 0 && self.listeners.iter().all(|l| l.closed)
    }

    fn on_event(&mut self, core: &mut Core, ev: Event<&[u8]>) {
        self.on_event_inner(core, ev);
        while let Some((client, outcome)) = self.proxy.take_outcome() {
            let slot = conn_of(client);
            self.with(slot, |c, ctx| c.on_forward(stream_of(client), outcome, ctx));
            self.drive(core, slot);
        }
    }

    fn on_event_inner(&mut self, core: &mut Core, ev: Event<&[u8]>) {
        if ev.slot().is_some_and(|s| self.proxy.owns(s)) {
            return (self.proxy).on_event(core, ev, &self.date, self.now, &mut self.conns);
        }
        let slot = match ev {
            Event::Accepted {
                listener,
                fd,
                rearm,
            } => return self.on_accept(core, listener, Ok(fd), rearm),
            Event::AcceptFailed {
                listener,
                errno,
                rearm,
            } => return self.on_accept(core, listener, Err(errno), rearm),
            Event::Timer { id: TIMER_TICK, .. } => {
                self.on_tick(core);
                core.timer(TIMER_TICK, self.tick);
                return;
            }
            // drive_accept, after this batch, re-arms the accept whose back-off ended.
            Event::Timer { .. } => return,
            Event::Ready { id } => return self.on_ready(core, id),
            Event::Closed { slot } => {
                self.uncount(slot);
                self.conns[slot as usize].release();
                return (self.proxy).on_client_closed(core, slot, self.now);
            }
            Event::Data { slot, data } => self.with(slot, |c, ctx| c.on_data(data, ctx)),
            Event::Eof { slot } => self.with(slot, |c, ctx| c.on_eof(ctx)),
            Event::Sent { slot, len } => self.with(slot, |c, ctx| c.on_sent(len, ctx)),
            ev @ (Event::FileRead { slot, .. }
            | Event::FileReadFailed { slot, .. }
            | Event::Spliced { slot, .. }
            | Event::SpliceFailed { slot, .. }) => {
                self.with(slot, |c, ctx| c.on_file_event(ev, ctx))
            }
            Event::RecvFailed { slot, errno } | Event::SendFailed { slot, errno } => {
                self.with(slot, |c, _| c.on_failed(errno))
            }
            // Only driven: no outgoing connections here; kTLS waits for a stopped receive.
            Event::Connected { slot } | Event::ConnectFailed { slot, .. } => slot,
            Event::RecvStopped { slot } => slot,
        };
        self.drive(core, slot);
    }

    /// Hand an input to the connection of `slot` with the context it needs.
    fn with(&mut self, slot: SlotId, f: impl FnOnce(&mut Conn, &mut Ctx<'_, H>)) -> SlotId {
        let mut ctx = Ctx {
            handler: &mut self.handler,
            date: &self.date,
            limits: &self.config.limits,
            timeouts: &self.config.timeouts,
            now: self.now,
            draining: self.draining,
            log: self.log.as_mut().map(|l| l.at(slot)),
            http2: self.http2.as_ref(),
            client_limits: self.client_limits.as_deref(),
        };
        f(&mut self.conns[slot as usize], &mut ctx);
        slot
    }

    /// Turn the connection's wishes into operations.
    fn drive(&mut self, core: &mut Core, slot: SlotId) {
        if !core.is_open(slot) || self.proxy.owns(slot) {
            return;
        }
        let conn = &mut self.conns[slot as usize];
        if conn.in_tunnel() {
            // Before the close below: a failed client must end its tunnel first (the
            // tunnel's log line and the upstream's close come from that).
            if let Some((input, state)) = conn.tunnel_parts() {
                let client = client_id(slot, 0);
                let view = (self.proxy).tunnel_client(core, client, input, state, self.now);
                conn.tunnel_view(view);
            }
        }
        match conn.poll_close(self.now) {
            Some(Close::HalfClose) => core.shutdown_write(slot),
            Some(Close::Now) => return core.close(slot),
            Some(Close::Reset) => {
                set_linger_zero(core.fd(slot));
                return core.close(slot);
            }
            Some(Close::Linger) => core.shutdown_write(slot),
            None => {}
        }
        if let Some(buf) = core.send_buffer(slot) {
            if conn.poll_send(buf) {
                core.send(slot);
            }
        }
        match conn.poll_file_op() {
            Some(FileOp::Read(fd, off, len)) => core.read_file(slot, fd, off, len),
            // No pipe (EMFILE): no way to send the body.
            Some(FileOp::Splice(fd, off, len, more))
                if core.splice_file(slot, fd, off, len, more).is_err() =>
            {
                return core.close(slot)
            }
            Some(FileOp::Splice(..)) | None => {}
        }
        conn.poll_kernel_tls(|| (core.fd(slot), core.receiving(slot)));
        core.set_reading(slot, conn.wants_read());
        let mut submitted = false;
        while let Some((stream, forward)) = conn.take_forward() {
            let client = client_id(slot, stream);
            self.proxy.submit(core, client, forward, self.now);
            submitted = true;
        }
        while let Some(stream) = conn.take_abandoned() {
            (self.proxy).on_request_gone(core, client_id(slot, stream), self.now);
        }
        if !submitted && conn.is_forwarding() {
            let (proxy, now) = (&mut self.proxy, self.now);
            conn.each_forwarded(|stream, pending| {
                proxy.client_drained(core, client_id(slot, stream), pending, now)
            });
        }
    }

    fn on_accept(&mut self, core: &mut Core, li: u32, res: Result<RawFd, i32>, rearm: bool) {
        let Some(l) = self.listeners.get_mut(li as usize) else {
            return;
        };
        l.on_completion(rearm, res.is_ok());
        match res {
            Ok(fd) => {
                let peer = match self.client_limits.clone() {
                    Some(limits) => match self.admit_connection(&limits, fd) {
                        Ok(peer) => peer,
                        Err(()) => return,
                    },
                    None => None,
                };
                // Accepted while draining (an upgrade's successor takes the listener over):
                // served, with `Connection: close`, never dropped.
                let slot = core.open(fd);
                if self.client_limits.is_some() {
                    self.count(slot, peer);
                }
                self.log.note(|l| l.opened(slot, fd));
                match self.conns.get_mut(slot as usize) {
                    Some(c) => c.reset(self.now),
                    None => {
                        // Slots between (upstream connections) get a machine too, unused.
                        while self.conns.len() <= slot as usize {
                            self.conns.push(Conn::new(self.now, &self.config.timeouts));
                        }
                    }
                }
                let conn = &mut self.conns[slot as usize];
                conn.set_tls(self.tls.session_for(li));
                let tls = conn.is_tls();
                conn.client = match self.proxy.enabled() || self.client_limits.is_some() {
                    true => crate::proxy::client_info(fd, tls),
                    false => crate::proxy::ClientInfo {
                        tls,
                        ..Default::default()
                    },
                };
                self.drive(core, slot);
            }
            Err(errno) if is_exhaustion(errno) => {
                let wait = l.back_off(core, li, self.now);
                self.log.note(|l| l.accept_backoff());
                core.timer(TIMER_BACKOFF, wait);
            }
            Err(_) => {}
        }
    }

    /// `--limit-conn`: the peer's address if the connection is counted under it, or Err
    /// when the address has its allowance open already (the socket is closed here,
    /// unanswered: the cheapest refusal, as nginx's stream `limit_conn`).
    fn admit_connection(&mut self, limits: &ClientLimits, fd: RawFd) -> Result<Option<IpAddr>, ()> {
        if !limits.counts_connections() {
            return Ok(None);
        }
        let Some(peer) = crate::proxy::client_info(fd, false).peer else {
            return Ok(None);
        };
        if limits.open_connection(peer) {
            return Ok(Some(peer));
        }
        // SAFETY: a socket just accepted, not yet handed to the driver: ours to close.
        unsafe { libc::close(fd) };
        self.log.note(|l| l.connection_limited());
        Err(())
    }

    fn count(&mut self, slot: SlotId, peer: Option<IpAddr>) {
        if self.counted_peers.len() <= slot as usize {
            self.counted_peers.resize(slot as usize + 1, None);
        }
        self.counted_peers[slot as usize] = peer;
    }

    fn uncount(&mut self, slot: SlotId) {
        let peer = self
            .counted_peers
            .get_mut(slot as usize)
            .and_then(Option::take);
        if let (Some(peer), Some(limits)) = (peer, &self.client_limits) {
            limits.close_connection(peer);
        }
    }

    /// Arm accepts that should run; stop them at the connection cap or when draining.
    fn drive_accept(&mut self, core: &mut Core) {
        let at_cap = core.live() >= self.config.max_conns_per_worker;
        let multishot = self.tier.multishot_accept();
        let f = Arming {
            now: self.now,
            stop: self.draining || (at_cap && multishot),
            draining: self.draining,
            hold: at_cap,
            multishot,
        };
        for (li, l) in self.listeners.iter_mut().enumerate() {
            l.drive(core, li as u32, f);
        }
    }

    /// Expire deadlines (header read, keep-alive idle, linger) and flush the access log.
    fn on_tick(&mut self, core: &mut Core) {
        let now = self.now;
        for slot in 0..self.conns.len() as SlotId {
            // An upstream slot's deadlines are the proxy's (its tick below).
            if !core.is_open(slot) || self.proxy.owns(slot) {
                continue;
            }
            let conn = &mut self.conns[slot as usize];
            if conn.deadline().is_some_and(|d| now >= d) {
                let kind = conn.on_timeout(now);
                self.log.note(|l| l.timed_out(kind));
                self.drive(core, slot);
            }
        }
        self.proxy.on_tick(core, now);
        if let Some(log) = self.log.as_mut() {
            if self.proxy.enabled() {
                log.upstream_states(self.proxy.upstream_states(now).map(|(.., c, up)| (c, up)));
            }
            log.tunnels(self.proxy.tunnel_stats());
            log.tick(core.live());
        }
    }

    fn begin_drain(&mut self, core: &mut Core) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.drain_deadline = Some(self.now + self.config.timeouts.drain);
        self.proxy.start_drain(core, self.now);
        self.for_each_open(core, Conn::start_drain);
        self.drive_accept(core);
    }

    fn force_close_all(&mut self, core: &mut Core) {
        self.for_each_open(core, Conn::on_error);
    }

    fn for_each_open(&mut self, core: &mut Core, f: fn(&mut Conn)) {
        for slot in 0..self.conns.len() as SlotId {
            if core.is_open(slot) && !self.proxy.owns(slot) {
                f(&mut self.conns[slot as usize]);
                self.drive(core, slot);
            }
        }
    }

    /// Stop listening at once, without the ring (see [`Listener::close_now`]).
    fn close_listeners_now(&mut self) {
        for l in &mut self.listeners {
            l.close_now(self.draining);
        }
    }
}

/// Make the next close of `fd` send a reset (SO_LINGER 0): how a connection ends whose
/// response broke off, so that a body without its own framing cannot look complete.
fn set_linger_zero(fd: RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on the slot's open socket with a correctly sized linger struct; a
    // failure leaves an ordinary close, nothing worse.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
