//! The io_uring engine of one load thread: its driver, its connections, its dispatcher.
//!
//! The loop only moves bytes and completions: every decision about a response is made by
//! [`Conn`], which also writes the pipelined request train (or its TLS records) into the
//! driver's send buffer. The ring itself is the common [`Driver`]: it owns the sockets'
//! slots and buffers, arms receives per tier, continues short sends and closes a socket
//! only after its last completion. This file keeps the load tool's own policy: which
//! connection gets the next request (the dispatcher, closed or open model), reconnecting,
//! and the timers.
//!
//! Nothing waits forever: a connect carries a LINK_TIMEOUT, a ring timer wakes the loop
//! at least every 10 ms to sweep the `-T` deadlines, and at the end every socket is
//! closed and its last completion awaited (bounded) before the thread's report is final.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use uring_common::ring::{
    Core, Driver, DriverConfig, Event, RecvMode, RingConfig, RingError, SlotId, Tier,
};
use uring_common::stats::ErrorKind;

use crate::breakdown::Tally;
use crate::config::{LoadConfig, INTERRUPTED};
use crate::conn::{Phase, Step};
use crate::error::StartError;
use crate::hosts::{HostDispatch, HostShare, WakeTimers};
use crate::stages::Ramp;
use crate::template::Expander;
use crate::wire::Wire;
use std::sync::Arc;

const SWEEP: Duration = Duration::from_millis(10);
/// Back-off before reconnecting after a failed connect (no spinning on a dead port).
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// Per-connection receive buffer of the basic tier.
const BASIC_RECV: usize = 16 * 1024;
const NO_CONN: u32 = u32::MAX;

/// One connection of the thread: its machine and where its socket is.
struct Client {
    conn: Wire,
    /// The host (index into the run's hosts) this connection goes to.
    host: usize,
    /// The driver slot of the current socket.
    slot: Option<SlotId>,
    ever_opened: bool,
    retry_at: Option<Instant>,
    in_ready: bool,
    in_idle: bool,
    /// Its number among the thread's connections to its host (`--stages-connections`
    /// opens the lowest first).
    rank: u32,
}

pub(crate) struct Worker<'a> {
    driver: Driver,
    st: State<'a>,
}

/// Everything of a thread but its driver (so the driver can call back into it).
struct State<'a> {
    cfg: &'a LoadConfig,
    clients: Vec<Client>,
    /// Client of each driver slot.
    owner: Vec<u32>,
    /// The driver's peer of each host.
    peers: Vec<usize>,
    rec: Tally,
    /// Each host's dispatcher and share of the thread's work.
    disp: HostDispatch,
    timers: WakeTimers,
    idle: Vec<u32>,
    dirty: Vec<u32>,
    stopping: bool,
    /// The values of the thread's request templates (`{SEQ}`, ...).
    expander: Expander,
    /// `--stages-connections`: how many of each host's connections may be open now.
    conn_ramp: Option<ConnRamp>,
}

/// The closed model's connection ramp in one thread.
struct ConnRamp {
    ramp: Arc<Ramp>,
    peak: f64,
    /// The thread's connections to each host (the ramp's peak).
    per_host: Vec<u32>,
    /// Connections (by rank) of each host allowed now.
    allowed: Vec<u32>,
}

impl ConnRamp {
    /// The ramp at `since` seconds: this thread's share of its connections per host.
    fn update(&mut self, since: f64) {
        let frac = if self.peak > 0.0 {
            self.ramp.value_at(since) / self.peak
        } else {
            0.0
        };
        for (a, &n) in self.allowed.iter_mut().zip(&self.per_host) {
            *a = (frac * f64::from(n)).round() as u32;
        }
    }
}

impl<'a> Worker<'a> {
    pub(crate) fn new(
        cfg: &'a LoadConfig,
        index: usize,
        tier: Tier,
        recv_mode: RecvMode,
        shares: Vec<HostShare>,
    ) -> Result<Worker<'a>, StartError> {
        let n_conns: usize = shares.iter().map(|s| s.conns).sum();
        let entries = (n_conns * 2 + 64).next_power_of_two().clamp(256, 4096) as u32;
        let count = (n_conns * 2).next_power_of_two().clamp(64, 4096) as u16;
        let mut driver = Driver::new(&DriverConfig {
            ring: RingConfig {
                tier,
                entries,
                cq_entries: entries * 4,
            },
            recv_mode,
            own_recv_size: BASIC_RECV,
            ring_buf_count: count,
            ring_buf_size: if count > 2048 { 8192 } else { 16384 },
            connect_timeout: cfg.timeout,
        })
        .map_err(|err| match err {
            RingError::Other(_) => StartError::BufRing { thread: index, err },
            other => StartError::from(other),
        })?;
        let mut peers = Vec::with_capacity(cfg.hosts.len());
        for h in &cfg.hosts {
            let (storage, len) = h.address.to_storage()?;
            peers.push(driver.core().add_peer(&storage, len));
        }
        let spec = cfg.conn;
        let conn_ramp = (cfg.conn_stages.clone()).map(|ramp| ConnRamp {
            peak: ramp.peak(),
            ramp,
            per_host: shares.iter().map(|s| s.conns as u32).collect(),
            allowed: vec![0; shares.len()],
        });
        let disp = HostDispatch::new(shares, cfg.stages.clone());
        let clients = (disp.conns().enumerate())
            .flat_map(|(h, n)| (0..n as u32).map(move |rank| (h, rank)))
            .map(|(host, rank)| Client {
                rank,
                conn: Wire::new(spec),
                host,
                slot: None,
                ever_opened: false,
                retry_at: None,
                in_ready: false,
                in_idle: false,
            })
            .collect();
        Ok(Worker {
            driver,
            st: State {
                cfg,
                clients,
                owner: Vec::with_capacity(n_conns),
                peers,
                rec: Tally::new(cfg.mix.targets.len(), cfg.hosts.len()),
                disp,
                timers: WakeTimers::default(),
                idle: Vec::with_capacity(n_conns),
                dirty: Vec::with_capacity(n_conns),
                stopping: false,
                expander: Expander::new(index, cfg.threads, cfg.shard, clock_seed()),
                conn_ramp,
            },
        })
    }

    pub(crate) fn take_tally(&mut self) -> Tally {
        std::mem::take(&mut self.st.rec)
    }

    /// Run the thread's share; returns when its measured phase ended.
    pub(crate) fn run(&mut self, progress: &AtomicU64) -> Instant {
        let st = &mut self.st;
        let start = Instant::now();
        st.disp.start(start, st.cfg.mix.targets.len());
        let deadline = st.cfg.duration.map(|d| start + d);
        for i in 0..st.clients.len() as u32 {
            st.mark_idle(i);
        }
        let mut next_sweep = start + SWEEP;
        if let Some(r) = &mut st.conn_ramp {
            r.update(0.0);
        }
        let mut ticker = crate::intervals::IntervalTicker::start(st.cfg.intervals.as_ref(), start);
        loop {
            let st = &mut self.st;
            let core = self.driver.core();
            let now = Instant::now();
            ticker.tick(now, &st.rec.all);
            if INTERRUPTED.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
                break;
            }
            if st.disp.exhausted() && st.all_answered() {
                break;
            }
            st.restart_idle(core, now);
            st.dispatch_due(now);
            st.flush_dirty(core);
            if now >= next_sweep {
                st.ramp_connections(core, now.saturating_duration_since(start));
                st.sweep(core, now);
                st.flush_dirty(core);
                next_sweep = now + SWEEP;
            }
            let due = st.disp.next_due_with_room();
            let wake = [Some(next_sweep), deadline, due]
                .into_iter()
                .flatten()
                .min();
            st.timers.arm(core, now, wake.unwrap_or(next_sweep));
            let mut now = None;
            let turn = self.driver.turn(&mut |core, ev| {
                let t = *now.get_or_insert_with(Instant::now);
                st.on_event(core, ev, t);
            });
            if let Err(e) = turn {
                // Nothing sensible remains but to stop this thread's run.
                eprintln!("uring-load: io_uring_enter failed: {e}");
                INTERRUPTED.store(true, Ordering::SeqCst);
            }
            progress.store(st.done(), Ordering::Relaxed);
        }
        let st = &mut self.st;
        let ended = Instant::now();
        ticker.finish(ended, &st.rec.all);
        progress.store(st.done(), Ordering::Relaxed);
        // End of the run: requests in flight are abandoned (neither done nor errored), and
        // every socket is closed with its last completion awaited, so that no operation
        // outlives its buffer.
        st.stopping = true;
        for c in &mut st.clients {
            c.conn.abandon();
        }
        self.driver
            .shutdown(Duration::from_secs(2), &mut |core, ev| {
                st.on_event(core, ev, ended)
            });
        st.rec.all.counters.started = st.disp.started();
        st.disp.count_started(&mut st.rec.targets);
        ended
    }
}

impl State<'_> {
    fn done(&self) -> u64 {
        let c = &self.rec.all.counters;
        c.succeeded + c.failed + c.errored
    }

    fn all_answered(&self) -> bool {
        self.disp.started() == self.done()
    }

    // ---- events ----

    fn on_event(&mut self, core: &mut Core, ev: Event<&[u8]>, now: Instant) {
        match ev {
            Event::Timer { id, .. } => return self.timers.fired(id),
            Event::Closed { slot } => return self.on_closed(slot),
            _ => {}
        }
        let owner = ev.slot().map(|s| self.owner[s as usize]);
        let Some(i) = owner.filter(|&i| i != NO_CONN) else {
            return;
        };
        match ev {
            Event::Connected { .. } => self.on_connected(core, i, now),
            Event::ConnectFailed { errno, .. } => {
                self.fail_connect(i, errno, now);
                self.teardown(core, i);
            }
            Event::Data { data, .. } => {
                let c = &mut self.clients[i as usize];
                let got = c.conn.on_received(data, now, &mut self.rec);
                match got.step {
                    Step::Close => self.teardown(core, i),
                    Step::Continue => {
                        if got.answered {
                            self.fill(i, now);
                        }
                        if self.clients[i as usize].conn.wants_write() {
                            self.dirty.push(i);
                        }
                    }
                }
            }
            Event::Eof { .. } => {
                self.clients[i as usize].conn.on_eof(now, &mut self.rec);
                self.teardown(core, i);
            }
            Event::RecvFailed { errno, .. } => self.io_failed(core, i, ErrorKind::Read, errno),
            Event::SendFailed { errno, .. } => self.io_failed(core, i, ErrorKind::Write, errno),
            Event::Sent { .. } => self.flush(core, i),
            _ => {}
        }
    }

    fn io_failed(&mut self, core: &mut Core, i: u32, kind: ErrorKind, errno: i32) {
        let host = self.clients[i as usize].host;
        let cause = self.cfg.os_cause(host, kind, errno);
        self.clients[i as usize]
            .conn
            .on_error_because(kind, &cause, &mut self.rec);
        self.teardown(core, i);
    }

    fn fail_connect(&mut self, i: u32, errno: i32, now: Instant) {
        let c = &mut self.clients[i as usize];
        if c.conn.in_flight() == 0 && self.disp.is_open_model() {
            // Open model: the connection had no request yet; charge the failure to a due
            // one so that a dead server cannot stall a `-n` run.
            if let Some((origin, pick)) = self.disp.host(c.host).claim(now) {
                c.conn.push_request(origin, now, pick);
            }
        }
        let cause = self.cfg.os_cause(c.host, ErrorKind::Connect, errno);
        c.conn
            .on_error_because(ErrorKind::Connect, &cause, &mut self.rec);
        c.retry_at = Some(now + CONNECT_BACKOFF);
    }

    fn on_connected(&mut self, core: &mut Core, i: u32, now: Instant) {
        let keep_alive = self.cfg.conn.keep_alive;
        let c = &mut self.clients[i as usize];
        match &self.cfg.hosts[c.host].tls {
            None => c.conn.on_connected(),
            Some(tls) => match ClientConnection::new(tls.config.clone(), tls.server_name.clone()) {
                Ok(session) => c.conn.on_connected_tls(session),
                Err(e) => {
                    c.conn.on_connected();
                    let cause = format!("TLS setup: {e}");
                    c.conn
                        .on_error_because(ErrorKind::Connect, &cause, &mut self.rec);
                    return self.teardown(core, i);
                }
            },
        }
        self.rec.connected(c.host, c.ever_opened && keep_alive);
        c.ever_opened = true;
        if let Some(slot) = c.slot {
            core.set_reading(slot, true);
        }
        self.fill(i, now);
        self.dirty.push(i);
    }

    /// The socket's last operation completed and it is closed: requests it never got an
    /// answer for go back to the dispatcher; the connection may connect again.
    fn on_closed(&mut self, slot: SlotId) {
        let i = std::mem::replace(&mut self.owner[slot as usize], NO_CONN);
        if i == NO_CONN {
            return;
        }
        let c = &mut self.clients[i as usize];
        c.slot = None;
        if c.conn.phase() != Phase::Idle {
            if self.stopping {
                c.conn.abandon();
            } else {
                // Normally empty already (teardown gave them back); never lose one.
                let (disp, host) = (&mut self.disp, c.host);
                c.conn
                    .take_unanswered(|origin, pick| disp.host(host).give_back(origin, pick));
            }
            c.conn.closed();
        }
        if !self.stopping {
            self.mark_idle(i);
        }
    }

    /// Close the socket: requests never processed go back to the dispatcher now; the
    /// driver closes the fd after the last completion and reports `Closed`.
    fn teardown(&mut self, core: &mut Core, i: u32) {
        let c = &mut self.clients[i as usize];
        if self.stopping {
            c.conn.abandon();
        } else {
            let (disp, host) = (&mut self.disp, c.host);
            c.conn
                .take_unanswered(|origin, pick| disp.host(host).give_back(origin, pick));
        }
        if let Some(slot) = c.slot {
            core.close(slot);
        }
    }

    // ---- connection lifecycle ----

    /// Whether the connection ramp lets client `i` be open now.
    #[inline]
    fn allowed(&self, i: u32) -> bool {
        ramp_allows(self.conn_ramp.as_ref(), &self.clients[i as usize])
    }

    /// `--stages-connections`: follow the ramp; connections beyond it close once their
    /// requests are answered (idle ones now), and come back when it rises again.
    fn ramp_connections(&mut self, core: &mut Core, since: Duration) {
        let Some(r) = &mut self.conn_ramp else {
            return;
        };
        r.update(since.as_secs_f64());
        for i in 0..self.clients.len() as u32 {
            let c = &self.clients[i as usize];
            let open = c.slot.is_some_and(|s| core.is_open(s));
            if open && c.conn.in_flight() == 0 && !self.allowed(i) {
                self.teardown(core, i);
            }
        }
    }

    fn mark_idle(&mut self, i: u32) {
        let c = &mut self.clients[i as usize];
        if !c.in_idle {
            c.in_idle = true;
            self.idle.push(i);
        }
    }

    fn restart_idle(&mut self, core: &mut Core, now: Instant) {
        if self.idle.is_empty() || self.stopping {
            return;
        }
        let mut k = 0;
        while k < self.idle.len() {
            let i = self.idle[k];
            let c = &mut self.clients[i as usize];
            let open_model = self.disp.is_open_model();
            let disp = self.disp.host(c.host);
            let allowed = ramp_allows(self.conn_ramp.as_ref(), c);
            let go = allowed
                && !c.retry_at.is_some_and(|t| t > now)
                && if open_model {
                    !disp.exhausted()
                } else {
                    // Closed model: a connection starts with a request in hand, so that a
                    // failed connect uses up budget and a dead server cannot stall `-n`.
                    c.conn.has_room()
                        && (disp.claim(now)).is_some_and(|(o, p)| {
                            c.conn.push_request(o, now, p);
                            true
                        })
                };
            if !go {
                k += 1;
                continue;
            }
            self.idle.swap_remove(k);
            self.clients[i as usize].in_idle = false;
            self.connect(core, i, now);
        }
    }

    fn connect(&mut self, core: &mut Core, i: u32, now: Instant) {
        let c = &mut self.clients[i as usize];
        c.conn.start_connect();
        match core.connect(self.peers[c.host]) {
            Ok(slot) => {
                c.slot = Some(slot);
                c.retry_at = None;
                if self.owner.len() <= slot as usize {
                    self.owner.resize(slot as usize + 1, NO_CONN);
                }
                self.owner[slot as usize] = i;
            }
            Err(e) => {
                // EMFILE and friends: count, back off, retry.
                let errno = e.raw_os_error().unwrap_or(0);
                let cause = self.cfg.os_cause(c.host, ErrorKind::Connect, errno);
                c.conn
                    .on_error_because(ErrorKind::Connect, &cause, &mut self.rec);
                c.conn.closed();
                c.retry_at = Some(now + CONNECT_BACKOFF);
                self.mark_idle(i);
            }
        }
    }

    /// Hand the connection as many requests as it has room for and the dispatcher allows.
    fn fill(&mut self, i: u32, now: Instant) {
        if self.stopping || !self.allowed(i) {
            return;
        }
        let c = &mut self.clients[i as usize];
        if c.conn.phase() != Phase::Open {
            return;
        }
        let mut added = false;
        let disp = self.disp.host(c.host);
        while c.conn.has_room() {
            match disp.claim(now) {
                Some((origin, pick)) => {
                    c.conn.push_request(origin, now, pick);
                    added = true;
                }
                None => break,
            }
        }
        if added {
            self.dirty.push(i);
        }
        if c.conn.has_room() && self.disp.is_open_model() && !c.in_ready {
            c.in_ready = true;
            self.disp.add_ready(c.host, i);
        }
    }

    /// Open model: give requests that came due to connections with room.
    fn dispatch_due(&mut self, now: Instant) {
        if !self.disp.is_open_model() {
            return;
        }
        while let Some(i) = self.disp.pop_due(now) {
            self.clients[i as usize].in_ready = false;
            self.fill(i, now);
        }
    }

    fn flush_dirty(&mut self, core: &mut Core) {
        while let Some(i) = self.dirty.pop() {
            self.flush(core, i);
        }
    }

    /// Write what the connection has to say, if no send is in flight.
    fn flush(&mut self, core: &mut Core, i: u32) {
        let c = &mut self.clients[i as usize];
        let Some(slot) = c.slot else {
            return;
        };
        if !c.conn.wants_write() {
            return;
        }
        if let Some(buf) = core.send_buffer(slot) {
            c.conn
                .poll_transmit(&self.cfg.mix.targets, &mut self.expander, buf);
            core.send(slot);
        }
    }

    /// Check every connection's deadline.
    fn sweep(&mut self, core: &mut Core, now: Instant) {
        let timeout = self.cfg.timeout;
        for i in 0..self.clients.len() as u32 {
            let c = &mut self.clients[i as usize];
            if !c.slot.is_some_and(|s| core.is_open(s)) {
                continue;
            }
            if c.conn.poll_timeout(now, timeout, &mut self.rec) == Step::Close {
                self.teardown(core, i);
            }
        }
    }
}

/// A seed that differs from run to run, so that `{UUID}` and `{RAND}` bust caches that
/// an earlier run filled.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Whether a client may be open under the connection ramp (always without one).
#[inline]
fn ramp_allows(ramp: Option<&ConnRamp>, c: &Client) -> bool {
    match ramp {
        None => true,
        Some(r) => c.rank < r.allowed[c.host],
    }
}
