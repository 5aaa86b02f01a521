//! The reverse proxy inside a worker: upstream connections live on the worker's own
//! driver beside the client connections (a slot is one or the other; the worker hands
//! events of upstream slots here). Per upstream, a pool with no locks (thread per core):
//! keep-alive connections reused only after a complete keep-alive response, a cap on
//! connections (`--upstream-conns`), and a bounded queue of requests waiting for one.
//!
//! Buffering both ways protects an app server that has one thread per connection: the
//! client connection hands over a request only once its head and whole body are in, and
//! the response is read from the upstream as fast as it comes into the client
//! connection's output, up to [`machine::PAUSE_AT`] per connection (then the upstream
//! read pauses).
//!
//! Failures: connect refused → 502, connect or response timeout → 504, the queue full or
//! too long a wait → 503, a reused connection that fails before any response byte → the
//! request once more on a fresh connection if idempotent (else 502), a response that breaks
//! off after its head went out → the client connection is reset after what it was sent.
//!
//! - `machine.rs`: pools, queue, retry, timeouts, back-pressure: the sans-IO machine.
//! - `balance.rs`: which upstream of a route takes a request.
//! - `health.rs`: passive health (max_fails/fail_timeout) and active checks' verdicts.
//! - `request.rs`: a client's request turned into the upstream's.
//! - `headers.rs`: what is forwarded, the request and response heads we write.
//! - `upstream.rs`: one exchange, sans-IO (upstream bytes in, client bytes out).
//! - `tunnel.rs`: a connection after `101 Switching Protocols` (WebSocket), sans-IO.
//! - `pressure.rs`: the back-pressure marks the machine and the tunnel share.
//! - this file: the machine's actions carried out on the worker's driver; upstream
//!   connections live in driver slots beside client connections, outside the worker's
//!   connection table.

pub mod balance;
pub mod cgi;
pub mod fastcgi;
pub mod headers;
pub mod health;
pub mod machine;
pub mod pressure;
pub mod request;
#[cfg(test)]
mod tests;
pub mod tunnel;
pub mod upstream;
pub mod uwsgi;

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use uring_common::ring::{Core, Event, SlotId};

use crate::config::{upstream_text, ProxyConfig, UpstreamAddr, UpstreamProtocol};
pub use machine::{
    client_id, conn_of, stream_of, ClientId, ClientOutput, ForwardOutcome, TunnelView, UpstreamLog,
};
use machine::{Action, Limits, Machine, RouteSpec, UpId};
pub use request::{ClientInfo, Forward};
pub use tunnel::TunnelStats;

/// No upstream connection in this slot.
const NO_UP: UpId = UpId::MAX;

/// The machine and the driver slots its upstream connections live in: carries the
/// machine's actions out on the worker's driver.
pub struct Proxy {
    machine: Machine,
    /// Per upstream: the driver's peer index (`usize::MAX`: an unusable address).
    peers: Vec<usize>,
    /// Per upstream connection: its slot.
    slot_of: Vec<SlotId>,
    /// Per slot: the upstream connection in it, or [`NO_UP`].
    up_of: Vec<UpId>,
    /// Per upstream: its URL, for the error log.
    names: Vec<String>,
}

/// Who is on an accepted socket: the client's address (`X-Forwarded-For`, CGI's
/// `REMOTE_*`) and the local one (`SERVER_ADDR`, `SERVER_PORT`).
pub fn client_info(fd: RawFd, tls: bool) -> ClientInfo {
    // SAFETY: the worker's accepted socket, open for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&fd);
    let peer_addr = sock.peer_addr().ok().and_then(|a| a.as_socket());
    ClientInfo {
        peer: peer_addr.map(|a| a.ip()),
        peer_addr,
        local: sock.local_addr().ok().and_then(|a| a.as_socket()),
        tls,
    }
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

/// An upstream as its URL is written (`fastcgi://127.0.0.1:9000`, `uwsgi+unix:/run/a`).
fn upstream_url(addr: &UpstreamAddr, protocol: UpstreamProtocol) -> String {
    let scheme = match protocol {
        UpstreamProtocol::Http => "http",
        UpstreamProtocol::Uwsgi => "uwsgi",
        UpstreamProtocol::Fastcgi => "fastcgi",
    };
    match (addr, protocol) {
        (UpstreamAddr::Tcp(a), _) => format!("{scheme}://{a}"),
        (UpstreamAddr::Unix(p), UpstreamProtocol::Http) => format!("unix:{}", p.display()),
        (UpstreamAddr::Unix(p), _) => format!("{scheme}+unix:{}", p.display()),
    }
}

/// A FastCGI app's STDERR goes to the error log a line at a time, as nginx logs it
/// ("FastCGI sent in stderr"), escaped so a line cannot forge another.
fn log_app_stderr(upstream: &str, text: &[u8]) {
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        eprintln!(
            "uring-server: FastCGI sent in stderr: \"{}\" (upstream {upstream})",
            line.escape_ascii()
        );
    }
}

fn sockaddr(addr: &UpstreamAddr) -> std::io::Result<socket2::SockAddr> {
    match addr {
        UpstreamAddr::Tcp(a) => Ok(socket2::SockAddr::from(*a)),
        UpstreamAddr::Unix(p) => socket2::SockAddr::unix(p),
    }
}

/// The machine's routes from the configuration's: members with their addresses' hashes
/// (the same key maps alike in every worker) and each one's check request.
fn route_specs(cfg: &ProxyConfig) -> Vec<RouteSpec> {
    let text = |i: usize| upstream_text(&cfg.upstreams[i]);
    cfg.routes
        .iter()
        .map(|r| RouteSpec {
            members: (r.members.iter())
                .map(|m| balance::Member {
                    upstream: m.upstream,
                    weight: m.weight,
                    id: balance::hash_bytes(text(m.upstream).as_bytes()),
                })
                .collect(),
            balance: r.balance.clone(),
            health: r.health.clone(),
            check_requests: match &r.health.check {
                Some(c) => (r.members.iter())
                    .map(|m| {
                        let host = match &cfg.upstreams[m.upstream] {
                            UpstreamAddr::Tcp(a) => a.to_string(),
                            UpstreamAddr::Unix(_) => "localhost".to_string(),
                        };
                        health::check_request(&c.path, &host)
                    })
                    .collect(),
                None => Vec::new(),
            },
        })
        .collect()
}

impl Proxy {
    /// Register the upstreams with the core. An unusable unix path is reported at start
    /// by the builder; here it only makes every request to it a 502.
    pub fn new(cfg: &ProxyConfig, core: &mut Core) -> Proxy {
        let peers = cfg
            .upstreams
            .iter()
            .map(|u| match sockaddr(u) {
                Ok(a) => {
                    let (st, len) = storage(&a);
                    core.add_peer(&st, len)
                }
                Err(_) => usize::MAX,
            })
            .collect();
        let limits = Limits {
            upstreams: cfg.upstreams.len(),
            conns_per_upstream: cfg.conns_per_upstream,
            connect_timeout: cfg.connect_timeout,
            timeout: cfg.timeout,
            tunnel_idle: cfg.tunnel_idle_timeout,
        };
        Proxy {
            machine: Machine::with_routes(limits, route_specs(cfg)),
            peers,
            slot_of: Vec::new(),
            up_of: Vec::new(),
            names: cfg
                .upstreams
                .iter()
                .zip(&cfg.protocols)
                .map(|(addr, protocol)| upstream_url(addr, *protocol))
                .collect(),
        }
    }

    /// Per route and upstream: the upstream's index, counters and whether it is up.
    pub fn upstream_states(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (usize, usize, health::MemberCounters, bool)> + '_ {
        self.machine.upstream_states(now)
    }

    pub fn enabled(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Whether `slot` is an upstream connection.
    pub fn owns(&self, slot: SlotId) -> bool {
        self.up_of.get(slot as usize).is_some_and(|&u| u != NO_UP)
    }

    pub fn timeout(&self) -> Duration {
        self.machine.timeout()
    }

    /// Outcomes for client requests since the last call.
    pub fn take_outcome(&mut self) -> Option<(ClientId, ForwardOutcome)> {
        self.machine.poll_outcome()
    }

    /// A client connection has a complete request (on an HTTP/2 stream: one of several).
    pub fn submit(&mut self, core: &mut Core, client: ClientId, forward: Forward, now: Instant) {
        self.machine.submit(now, client, forward);
        self.carry_out(core, now);
    }

    /// The client's response output holds `pending` bytes.
    pub fn client_drained(
        &mut self,
        core: &mut Core,
        client: ClientId,
        pending: usize,
        now: Instant,
    ) {
        self.machine.client_drained(client, pending);
        self.carry_out(core, now);
    }

    /// A client connection closed.
    pub fn on_client_closed(&mut self, core: &mut Core, client: SlotId, now: Instant) {
        self.machine.client_gone(now, client);
        self.carry_out(core, now);
    }

    /// A client request is no longer wanted (its HTTP/2 stream was reset).
    pub fn on_request_gone(&mut self, core: &mut Core, client: ClientId, now: Instant) {
        self.machine.request_gone(now, client);
        self.carry_out(core, now);
    }

    /// The tunnel of an HTTP/1.1 client connection after a 101: its new bytes (taken from
    /// `input`), its half-close, its failure; `None` once the tunnel is over.
    pub fn tunnel_client(
        &mut self,
        core: &mut Core,
        client: ClientId,
        input: &mut Vec<u8>,
        (eof, failed): (bool, bool),
        now: Instant,
    ) -> Option<TunnelView> {
        let view = (self.machine).tunnel_client(now, client, input, eof, failed);
        self.carry_out(core, now);
        view
    }

    pub fn tunnel_stats(&self) -> TunnelStats {
        self.machine.tunnel_stats()
    }

    /// An event of an upstream slot.
    pub fn on_event(
        &mut self,
        core: &mut Core,
        ev: Event<&[u8]>,
        date: &[u8; 29],
        now: Instant,
        clients: &mut impl ClientOutput,
    ) {
        let Some(slot) = ev.slot() else { return };
        let up = self.up_of[slot as usize];
        let m = &mut self.machine;
        match ev {
            Event::Closed { .. } => {
                self.up_of[slot as usize] = NO_UP;
                m.closed(now, up);
            }
            _ if !core.is_open(slot) => return,
            Event::Connected { .. } => m.connected(now, up),
            Event::ConnectFailed { errno, .. } => m.connect_failed(now, up, errno),
            Event::Sent { .. } => m.on_sent(now, up),
            Event::Data { data, .. } => m.on_data(now, up, data, date, clients),
            Event::Eof { .. } => m.on_eof(now, up, clients),
            Event::RecvFailed { .. } | Event::SendFailed { .. } => m.on_error(now, up, clients),
            _ => {}
        }
        self.carry_out(core, now);
    }

    /// Response timeouts and queue waits.
    pub fn on_tick(&mut self, core: &mut Core, now: Instant) {
        self.machine.tick(now);
        self.carry_out(core, now);
    }

    /// Shutdown: idle connections close now, busy ones after their response.
    pub fn start_drain(&mut self, core: &mut Core, now: Instant) {
        self.machine.start_drain(now);
        self.carry_out(core, now);
    }

    /// Do what the machine asks of the driver.
    fn carry_out(&mut self, core: &mut Core, now: Instant) {
        while let Some((upstream, text)) = self.machine.poll_app_stderr() {
            let name = self.names.get(upstream).map_or("", String::as_str);
            log_app_stderr(name, &text);
        }
        while let Some(a) = self.machine.poll_action() {
            match a {
                Action::Connect { up, upstream } => {
                    let peer = self.peers[upstream];
                    match (peer != usize::MAX).then(|| core.connect(peer)) {
                        Some(Ok(slot)) => self.bind(up, slot),
                        Some(Err(e)) => (self.machine).connect_failed(
                            now,
                            up,
                            e.raw_os_error().unwrap_or(libc::ECONNREFUSED),
                        ),
                        None => self.machine.connect_failed(now, up, libc::ENOENT),
                    }
                }
                Action::Send { up } => {
                    let Some(slot) = self.slot(up) else { continue };
                    if let Some(bytes) = self.machine.tunnel_send_buffer(up) {
                        // A tunnel's bytes: the buffers trade places, no copy.
                        match core.send_buffer(slot) {
                            Some(buf) => {
                                std::mem::swap(buf, bytes);
                                core.send(slot);
                            }
                            None => debug_assert!(false, "tunnel send under a send"),
                        }
                        continue;
                    }
                    let bytes = self.machine.request_bytes(up);
                    match core.send_buffer(slot) {
                        Some(buf) => {
                            buf.extend_from_slice(bytes);
                            core.send(slot);
                        }
                        // The machine reuses a connection only after its send completed.
                        None => debug_assert!(false, "send on a busy upstream slot"),
                    }
                }
                Action::Read { up, on } => {
                    if let Some(slot) = self.slot(up) {
                        core.set_reading(slot, on);
                    }
                }
                Action::Shutdown { up } => {
                    if let Some(slot) = self.slot(up) {
                        core.shutdown_write(slot);
                    }
                }
                Action::Close { up } => match self.slot(up) {
                    Some(slot) if core.is_open(slot) => core.close(slot),
                    // Never connected: gone at once.
                    _ => self.machine.closed(now, up),
                },
            }
        }
    }

    fn bind(&mut self, up: UpId, slot: SlotId) {
        if self.slot_of.len() <= up as usize {
            self.slot_of.resize(up as usize + 1, SlotId::MAX);
        }
        self.slot_of[up as usize] = slot;
        if self.up_of.len() <= slot as usize {
            self.up_of.resize(slot as usize + 1, NO_UP);
        }
        self.up_of[slot as usize] = up;
    }

    /// The slot of `up`, while it has one.
    fn slot(&self, up: UpId) -> Option<SlotId> {
        let slot = *self.slot_of.get(up as usize)?;
        (self.up_of.get(slot as usize) == Some(&up)).then_some(slot)
    }
}
