//! The reverse proxy inside a worker: upstream connections live on the worker's own
//! driver beside the client connections (a slot is one or the other; the worker hands
//! events of upstream slots here). Per upstream, a pool with no locks (thread per core):
//! keep-alive connections reused only after a complete keep-alive response, a cap on
//! connections (`--upstream-conns`), and a bounded queue of requests waiting for one.
//!
//! Buffering both ways protects an app server that has one thread per connection: the
//! client connection (`conn.rs`) hands over a request only once its head and whole body
//! are in, and the response is read from the upstream as fast as it comes into the client
//! connection's output, up to [`PAUSE_AT`] per connection (then the upstream read pauses).
//!
//! Failures: connect refused → 502, connect or response timeout → 504, the queue full or
//! too long a wait → 503, a reused connection that fails before any response byte → the
//! request once more on a fresh connection if idempotent (else 502), a response that breaks
//! off after its head went out → the client connection is closed.
//!
//! - `headers.rs`: what is forwarded, the request and response heads we write.
//! - `upstream.rs`: one exchange, sans-IO (upstream bytes in, client bytes out).

pub mod cgi;
pub mod fastcgi;
pub mod headers;
pub mod upstream;
pub mod uwsgi;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use uring_common::ring::{Core, Event, SlotId};

use crate::config::{ProxyConfig, Timeouts, UpstreamAddr};
use crate::conn::{Conn, Forward, ForwardOutcome};
use upstream::{ClientSide, Exchange, Failure, Progress};

/// Response bytes held per client connection before the upstream read pauses.
pub const PAUSE_AT: usize = 1024 * 1024;
/// Below this the paused upstream read resumes.
const RESUME_AT: usize = 256 * 1024;
/// Requests that may wait for a connection, per worker and upstream.
const QUEUE_CAP: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpState {
    Connecting,
    Idle,
    Busy,
}

struct UpConn {
    upstream: usize,
    state: UpState,
    /// The client slot whose request this connection carries.
    client: Option<SlotId>,
    /// The request, kept for one retry.
    forward: Option<Forward>,
    exchange: Exchange,
    /// The connection carried a response before this request.
    reused: bool,
    /// This request is already the retry.
    retried: bool,
    paused: bool,
    last_progress: Instant,
}

struct Waiting {
    client: SlotId,
    forward: Forward,
    since: Instant,
    retried: bool,
}

#[derive(Default)]
struct Pool {
    peer: usize,
    idle: Vec<SlotId>,
    /// Connections connecting, busy or idle.
    total: usize,
    queue: VecDeque<Waiting>,
}

pub struct Proxy {
    cfg: ProxyConfig,
    timeouts: Timeouts,
    pools: Vec<Pool>,
    /// Per slot: the upstream connection, if the slot is one.
    ups: Vec<Option<UpConn>>,
    /// Per client slot: the upstream slot carrying its request.
    links: Vec<Option<SlotId>>,
    /// What happened to client requests; the worker hands them to the connections.
    outcomes: Vec<(SlotId, ForwardOutcome)>,
    draining: bool,
}

/// The client's address for `X-Forwarded-For`.
pub fn peer_ip(fd: RawFd) -> Option<IpAddr> {
    // SAFETY: the worker's accepted socket, open for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let addr = socket2::SockRef::from(&fd).peer_addr().ok()?;
    addr.as_socket().map(|a| a.ip())
}

/// The address as the core keeps it.
fn storage(addr: &socket2::SockAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage; a SockAddr is at most its size, and
    // `addr.len()` bytes of it are a valid socket address.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        std::ptr::copy_nonoverlapping(
            addr.as_ptr().cast::<u8>(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            addr.len() as usize,
        );
        (storage, addr.len())
    }
}

fn sockaddr(addr: &UpstreamAddr) -> std::io::Result<socket2::SockAddr> {
    match addr {
        UpstreamAddr::Tcp(a) => Ok(socket2::SockAddr::from(*a)),
        UpstreamAddr::Unix(p) => socket2::SockAddr::unix(p),
    }
}

impl Proxy {
    /// Register the upstreams with the core. An unusable unix path is reported at start
    /// by the builder; here it only makes every request to it a 502.
    pub fn new(cfg: &ProxyConfig, timeouts: &Timeouts, core: &mut Core) -> Proxy {
        let pools = cfg
            .upstreams
            .iter()
            .map(|u| {
                let peer = match sockaddr(u) {
                    Ok(a) => {
                        let (st, len) = storage(&a);
                        core.add_peer(&st, len)
                    }
                    Err(_) => usize::MAX,
                };
                Pool {
                    peer,
                    ..Pool::default()
                }
            })
            .collect();
        Proxy {
            cfg: cfg.clone(),
            timeouts: *timeouts,
            pools,
            ups: Vec::new(),
            links: Vec::new(),
            outcomes: Vec::new(),
            draining: false,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.pools.is_empty()
    }

    /// Whether `slot` is an upstream connection.
    pub fn owns(&self, slot: SlotId) -> bool {
        self.ups.get(slot as usize).is_some_and(|u| u.is_some())
    }

    pub fn timeout(&self) -> Duration {
        self.cfg.timeout
    }

    /// Outcomes for client connections since the last call.
    pub fn take_outcome(&mut self) -> Option<(SlotId, ForwardOutcome)> {
        self.outcomes.pop()
    }

    /// A client connection has a complete request for upstream `forward.upstream`.
    pub fn submit(
        &mut self,
        core: &mut Core,
        client: SlotId,
        forward: Forward,
        now: Instant,
        conns: &mut Vec<Conn>,
    ) {
        let pool = &mut self.pools[forward.upstream];
        if let Some(up) = pool.idle.pop() {
            return self.start(core, up, client, forward, now, true, false);
        }
        if pool.total < self.cfg.conns_per_upstream {
            return self.connect(core, client, forward, now, false, conns);
        }
        if pool.queue.len() >= QUEUE_CAP {
            return self.fail(client, &forward, 503);
        }
        pool.queue.push_back(Waiting {
            client,
            forward,
            since: now,
            retried: false,
        });
    }

    fn connect(
        &mut self,
        core: &mut Core,
        client: SlotId,
        forward: Forward,
        now: Instant,
        retried: bool,
        conns: &mut Vec<Conn>,
    ) {
        let pool = &mut self.pools[forward.upstream];
        let slot = match (pool.peer != usize::MAX).then(|| core.connect(pool.peer)) {
            Some(Ok(slot)) => slot,
            _ => return self.fail(client, &forward, 502),
        };
        pool.total += 1;
        let i = slot as usize;
        while conns.len() <= i {
            conns.push(Conn::new(now, &self.timeouts));
        }
        if self.ups.len() <= i {
            self.ups.resize_with(i + 1, || None);
        }
        self.link(client, slot);
        self.ups[i] = Some(UpConn {
            upstream: forward.upstream,
            state: UpState::Connecting,
            client: Some(client),
            exchange: Exchange::new(client_side(&forward)),
            forward: Some(forward),
            reused: false,
            retried,
            paused: false,
            last_progress: now,
        });
    }

    fn link(&mut self, client: SlotId, up: SlotId) {
        let c = client as usize;
        if self.links.len() <= c {
            self.links.resize(c + 1, None);
        }
        self.links[c] = Some(up);
    }

    /// Send `forward` on the open connection `up`.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        core: &mut Core,
        up: SlotId,
        client: SlotId,
        forward: Forward,
        now: Instant,
        reused: bool,
        retried: bool,
    ) {
        self.link(client, up);
        let u = self.ups[up as usize].as_mut().expect("upstream slot");
        if let Some(buf) = core.send_buffer(up) {
            buf.extend_from_slice(&forward.request);
            core.send(up);
        }
        core.set_reading(up, true);
        u.state = UpState::Busy;
        u.client = Some(client);
        u.exchange = Exchange::new(client_side(&forward));
        u.forward = Some(forward);
        u.reused = reused;
        u.retried = retried;
        u.paused = false;
        u.last_progress = now;
    }

    fn fail(&mut self, client: SlotId, forward: &Forward, status: u16) {
        self.outcomes.push((
            client,
            ForwardOutcome::Failed {
                status,
                keep_alive: forward.keep_alive,
                head_only: forward.head_only,
                http10: forward.http10,
            },
        ));
    }

    /// An event of an upstream slot.
    pub fn on_event(
        &mut self,
        core: &mut Core,
        ev: Event<&[u8]>,
        date: &[u8; 29],
        now: Instant,
        conns: &mut Vec<Conn>,
    ) {
        let Some(slot) = ev.slot() else { return };
        if let Event::Closed { .. } = ev {
            self.ups[slot as usize] = None;
            return;
        }
        if !core.is_open(slot) {
            return;
        }
        let Some(u) = self.ups[slot as usize].as_mut() else {
            return;
        };
        match ev {
            Event::Connected { .. } => {
                let (Some(client), Some(fwd)) = (u.client, u.forward.take()) else {
                    return self.release_to_pool(core, slot, now);
                };
                let retried = u.retried;
                self.start(core, slot, client, fwd, now, false, retried);
            }
            Event::ConnectFailed { errno, .. } => {
                let status = if errno == libc::ETIMEDOUT { 504 } else { 502 };
                if let (Some(client), Some(fwd)) = (u.client, u.forward.take()) {
                    self.fail(client, &fwd, status);
                }
                self.close(core, slot, now, conns);
            }
            Event::Data { data, .. } => {
                let Some(client) = u.client.filter(|_| u.state == UpState::Busy) else {
                    // Bytes on an idle connection, or for a client that is gone.
                    return self.close(core, slot, now, conns);
                };
                u.last_progress = now;
                let out = conns[client as usize].forward_out();
                let res = u.exchange.on_data(data, date, out);
                let paused = out.len() >= PAUSE_AT;
                self.after(core, slot, client, res, now, conns);
                if let Some(u) = self.ups[slot as usize].as_mut() {
                    if u.state == UpState::Busy && paused {
                        u.paused = true;
                        core.set_reading(slot, false);
                    }
                }
            }
            Event::Eof { .. } | Event::RecvFailed { .. } | Event::SendFailed { .. } => {
                let Some(client) = u.client.filter(|_| u.state == UpState::Busy) else {
                    return self.close(core, slot, now, conns);
                };
                let res = u.exchange.on_eof(conns[client as usize].forward_out());
                self.after(core, slot, client, res, now, conns);
                if core.is_open(slot) && self.ups[slot as usize].is_some() {
                    self.close(core, slot, now, conns);
                }
            }
            _ => {}
        }
    }

    /// Act on an exchange's progress.
    fn after(
        &mut self,
        core: &mut Core,
        slot: SlotId,
        client: SlotId,
        res: Result<Progress, Failure>,
        now: Instant,
        conns: &mut Vec<Conn>,
    ) {
        let u = self.ups[slot as usize].as_mut().expect("upstream slot");
        match res {
            Ok(Progress::Pending) => self.outcomes.push((client, ForwardOutcome::Progress)),
            Ok(Progress::Done {
                upstream_reusable,
                client_keep_alive,
            }) => {
                u.client = None;
                u.forward = None;
                self.links[client as usize] = None;
                self.outcomes.push((
                    client,
                    ForwardOutcome::Done {
                        keep_alive: client_keep_alive,
                    },
                ));
                if upstream_reusable && !self.draining {
                    self.release_to_pool(core, slot, now);
                } else {
                    self.close(core, slot, now, conns);
                }
            }
            Err(Failure::NoResponse)
                if u.reused && !u.retried && u.forward.as_ref().is_some_and(|f| f.idempotent) =>
            {
                // The upstream closed a kept-alive connection as we sent: once more, fresh.
                let fwd = u.forward.take().expect("forward");
                u.client = None;
                self.close(core, slot, now, conns);
                self.connect(core, client, fwd, now, true, conns);
            }
            Err(f) => {
                u.client = None;
                let fwd = u.forward.take();
                self.links[client as usize] = None;
                match (f, fwd) {
                    (Failure::Truncated, _) | (_, None) => {
                        self.outcomes.push((client, ForwardOutcome::Abort))
                    }
                    (_, Some(fwd)) => self.fail(client, &fwd, 502),
                }
                self.close(core, slot, now, conns);
            }
        }
    }

    /// An upstream connection is free: the next waiting request, or the idle list.
    fn release_to_pool(&mut self, core: &mut Core, slot: SlotId, now: Instant) {
        let u = self.ups[slot as usize].as_mut().expect("upstream slot");
        let pool = &mut self.pools[u.upstream];
        if let Some(w) = pool.queue.pop_front() {
            return self.start(core, slot, w.client, w.forward, now, true, w.retried);
        }
        u.state = UpState::Idle;
        u.client = None;
        // Reading while idle notices the upstream's close at once.
        core.set_reading(slot, true);
        pool.idle.push(slot);
    }

    /// Close an upstream connection and let a waiting request have its place.
    fn close(&mut self, core: &mut Core, slot: SlotId, now: Instant, conns: &mut Vec<Conn>) {
        let Some(u) = self.ups[slot as usize].as_mut() else {
            return;
        };
        if !core.is_open(slot) {
            return;
        }
        core.close(slot);
        if let Some(c) = u.client.take() {
            if self.links.get(c as usize).copied().flatten() == Some(slot) {
                self.links[c as usize] = None;
            }
        }
        let pool = &mut self.pools[u.upstream];
        pool.total -= 1;
        pool.idle.retain(|&s| s != slot);
        if let Some(w) = pool.queue.pop_front() {
            self.connect(core, w.client, w.forward, now, w.retried, conns);
        }
    }

    /// After the worker drove client connection `client`: take its complete request, or
    /// resume its paused upstream read once its output drained.
    pub fn poll_client(
        &mut self,
        core: &mut Core,
        client: SlotId,
        now: Instant,
        conns: &mut Vec<Conn>,
    ) {
        let conn = &mut conns[client as usize];
        if let Some(fwd) = conn.take_forward() {
            self.submit(core, client, fwd, now, conns);
        } else if conn.is_forwarding() {
            let pending = conn.pending_out();
            self.on_client_progress(core, client, pending);
        }
    }

    /// The client connection's output drained: resume a paused upstream read.
    pub fn on_client_progress(&mut self, core: &mut Core, client: SlotId, pending_out: usize) {
        let Some(up) = self.links.get(client as usize).copied().flatten() else {
            return;
        };
        if let Some(u) = self.ups[up as usize].as_mut() {
            if u.paused && pending_out < RESUME_AT {
                u.paused = false;
                core.set_reading(up, true);
            }
        }
    }

    /// A client connection closed: its upstream exchange (if any) is abandoned, and the
    /// upstream connection closed (its response cannot be skipped reliably).
    pub fn on_client_closed(
        &mut self,
        core: &mut Core,
        client: SlotId,
        now: Instant,
        conns: &mut Vec<Conn>,
    ) {
        for pool in &mut self.pools {
            pool.queue.retain(|w| w.client != client);
        }
        let Some(up) = self.links.get_mut(client as usize).and_then(Option::take) else {
            return;
        };
        if let Some(u) = self.ups[up as usize].as_mut() {
            u.client = None;
            if u.state != UpState::Idle {
                self.close(core, up, now, conns);
            }
        }
    }

    /// Response timeouts and queue waits.
    pub fn on_tick(&mut self, core: &mut Core, now: Instant, conns: &mut Vec<Conn>) {
        for slot in 0..self.ups.len() as SlotId {
            let Some(u) = self.ups[slot as usize].as_mut() else {
                continue;
            };
            if u.state != UpState::Busy || u.paused || now < u.last_progress + self.cfg.timeout {
                continue;
            }
            let Some(client) = u.client else { continue };
            let outcome = match (u.exchange.head_sent(), u.forward.take()) {
                (false, Some(f)) => ForwardOutcome::Failed {
                    status: 504,
                    keep_alive: f.keep_alive,
                    head_only: f.head_only,
                    http10: f.http10,
                },
                _ => ForwardOutcome::Abort,
            };
            u.client = None;
            self.links[client as usize] = None;
            self.outcomes.push((client, outcome));
            self.close(core, slot, now, conns);
        }
        let wait = self.cfg.connect_timeout;
        let mut expired = Vec::new();
        for pool in &mut self.pools {
            while pool.queue.front().is_some_and(|w| now >= w.since + wait) {
                expired.extend(pool.queue.pop_front());
            }
        }
        for w in expired {
            self.fail(w.client, &w.forward, 503);
        }
    }

    /// Shutdown: idle connections close now, busy ones after their response.
    pub fn start_drain(&mut self, core: &mut Core, now: Instant, conns: &mut Vec<Conn>) {
        self.draining = true;
        let idle: Vec<SlotId> = self
            .pools
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.idle))
            .collect();
        for slot in idle {
            self.close(core, slot, now, conns);
        }
    }
}

fn client_side(f: &Forward) -> ClientSide {
    ClientSide {
        head_only: f.head_only,
        http10: f.http10,
        keep_alive: f.keep_alive,
    }
}
