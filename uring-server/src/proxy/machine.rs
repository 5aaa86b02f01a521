//! The proxy of one worker as a sans-IO state machine: per upstream a pool (idle
//! connections, a cap, a bounded queue of waiting requests), retry, timeouts and
//! back-pressure. Events go in (a client's request, its output drained, the client gone,
//! an upstream connected / failed to / sent / data / eof / error / closed, a tick), and
//! come out as [`Action`]s on upstream connections (connect, send, read on/off, close)
//! and [`ForwardOutcome`]s for client connections. No socket, no driver, no connection
//! type: the worker carries the actions out (`proxy/mod.rs`), and `tests.rs` drives the
//! same machine with in-memory upstreams and a virtual clock.
//!
//! Upstream connections are the machine's own [`UpId`]s; client requests are opaque
//! [`ClientId`]s (a connection, and an HTTP/2 stream on it) whose response sink the
//! caller lends ([`ClientOutput`]): the response reaches the client as a head, body
//! pieces and an end, rendered by the client connection's protocol.
//!
//! A request names a route; the route's balancer (`balance.rs`) picks one of its
//! upstreams among those its health (`health.rs`) lets through, or among all when none is
//! (nginx). A request that could not reach an upstream (connect refused or timed out; for
//! an idempotent one also a connection that ended without a response byte) goes to
//! another upstream of its route it has not tried. Active health checks are connections
//! of this machine too, outside the pools and their cap.
//!
//! Invariants: a connection carries one request at a time and goes back to the pool only
//! once its request was sent whole *and* its response is complete (an upstream that
//! answers early, before reading the body, leaves the send in flight: such a connection
//! is closed, never reused); a connection whose upgrade request got a 101 becomes a
//! tunnel (`tunnel.rs`) and leaves the pool's count (a WebSocket may live for hours; the
//! cap bounds exchanges, not tunnels); a pause is taken and released for the exchange whose
//! client's output is full, never for the next one; `total` counts every connection that
//! is connecting, busy or idle, so no path (retry included) opens one over the cap.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::balance::{Balancer, Member, Tried};
use super::headers::ClientFraming;
use super::health::{self, MemberCounters, MemberHealth};
use super::request::Forward;
use super::tunnel::{Step, Tunnel, TunnelStats};
use super::upstream::{ClientSide, Exchange, Failure, Progress, ResponseSink};
use crate::config::{Balance, Health};

/// A client's request, as the caller names it: its connection in the low 32 bits, its
/// HTTP/2 stream in the high ones (0 for HTTP/1.x, which has one request at a time).
pub type ClientId = u64;

/// The id of the request on `stream` of connection `conn` (stream 0: HTTP/1.x).
#[inline]
pub fn client_id(conn: u32, stream: u32) -> ClientId {
    u64::from(stream) << 32 | u64::from(conn)
}

/// The connection of a request.
#[inline]
pub fn conn_of(client: ClientId) -> u32 {
    client as u32
}

/// The HTTP/2 stream of a request (0: HTTP/1.x).
#[inline]
pub fn stream_of(client: ClientId) -> u32 {
    (client >> 32) as u32
}
/// An upstream connection of this machine.
pub type UpId = u32;

/// Response bytes held per client connection before the upstream read pauses, and the
/// mark below which it resumes.
pub use super::pressure::{PAUSE_AT, RESUME_AT};
/// Requests that may wait for a connection, per worker and upstream.
pub const QUEUE_CAP: usize = 1024;

/// What the caller must do on an upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to upstream `upstream`; answer with [`Machine::connected`] or
    /// [`Machine::connect_failed`].
    Connect { up: UpId, upstream: usize },
    /// Send [`Machine::request_bytes`]; answer with [`Machine::on_sent`].
    Send { up: UpId },
    /// Keep a receive outstanding, or stop it (back-pressure).
    Read { up: UpId, on: bool },
    /// Close; answer with [`Machine::closed`] once the connection is gone.
    Close { up: UpId },
    /// A tunnel's client half-closed and all it sent went out: `shutdown(SHUT_WR)`.
    Shutdown { up: UpId },
}

/// The upstream side of a request, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamLog {
    /// The upstream tried (`None`: none was, e.g. the queue was full).
    pub upstream: Option<usize>,
    /// Its status (`None`: no response head came).
    pub status: Option<u16>,
    /// From taking a connection (or starting one) to the end.
    pub response_time: Duration,
    /// Response body bytes relayed.
    pub body_bytes: u64,
    /// Every upstream tried, in order (the last is `upstream`).
    pub tried: Tried,
}

/// What happened to a client's forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// Response bytes were added to the client's output.
    Progress,
    /// The response is complete in the output (a tunnel: it ended with both sides
    /// half-closed; `keep_alive` is false).
    Done { keep_alive: bool, log: UpstreamLog },
    /// The upstream switched protocols: the 101 head is in the output, and the client
    /// connection is a tunnel from now on ([`Machine::tunnel_client`]), until a `Done` or
    /// an `Abort` (an error on either side, or the idle timeout).
    Upgraded,
    /// No response: the client connection answers `status` itself.
    Failed {
        status: u16,
        side: ClientSide,
        log: UpstreamLog,
    },
    /// The response broke off after its head went out: send what is queued (earlier
    /// pipelined responses, the cut one's bytes), then close the client connection; with
    /// `reset` (a close-delimited body) by a reset, since a FIN would make the cut body
    /// look complete. (A reset drops what the kernel has not sent yet: the price of not
    /// lying about a close-delimited body.)
    Abort { reset: bool, log: UpstreamLog },
}

/// The client connections, lent to the machine for one event: where each request's
/// response goes.
pub trait ClientOutput {
    type Sink<'a>: ResponseSink
    where
        Self: 'a;
    fn sink(&mut self, client: ClientId) -> Self::Sink<'_>;
}

/// The machine's settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub upstreams: usize,
    pub conns_per_upstream: usize,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// A tunnel with no byte either way for this long is closed.
    pub tunnel_idle: Duration,
}

/// A tunnel as its client connection sees it after [`Machine::tunnel_client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelView {
    /// The client may be read (false while its bytes wait for the upstream).
    pub room: bool,
    /// The upstream half-closed: shut the client's write side once its output is out.
    pub upstream_eof: bool,
}

/// A route as the machine is given it: its upstreams (pool indices, weights, identities),
/// how it balances, its health settings, and per upstream its check's request bytes
/// (see [`health::check_request`]; ignored without `health.check`).
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub members: Vec<Member>,
    pub balance: Balance,
    pub health: Health,
    pub check_requests: Vec<Vec<u8>>,
}

/// A route's state in this worker.
#[derive(Debug)]
struct Route {
    balancer: Balancer,
    /// Per member: its pool.
    ups: Vec<usize>,
    health: Health,
    members: Vec<MemberHealth>,
    check_requests: Vec<Vec<u8>>,
}

/// A request and where it is in its life.
#[derive(Debug)]
struct Job {
    client: ClientId,
    forward: Forward,
    /// Sent once more after a failure (on a fresh connection or another upstream).
    retried: bool,
    /// Its route (`forward.upstream`, checked), the member chosen and that member's pool.
    route: usize,
    member: usize,
    upstream: usize,
    tried: Tried,
    /// Submitted (queue waits count from here).
    since: Instant,
    /// Given a connection (`$upstream_response_time` counts from here).
    started: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpState {
    Connecting,
    Idle,
    Busy,
    /// After a 101: both ways relayed; no longer counted in the pool.
    Tunnel,
    /// Close asked for; waiting for [`Machine::closed`].
    Closing,
}

#[derive(Debug)]
struct UpConn {
    upstream: usize,
    state: UpState,
    job: Option<Job>,
    exchange: Exchange,
    /// The connection carried a response before this request.
    reused: bool,
    /// The request was sent whole.
    sent: bool,
    paused: bool,
    last_progress: Instant,
    /// After a 101 (state [`UpState::Tunnel`]).
    tunnel: Option<Box<Tunnel>>,
    /// An active health check's connection (route, member, response bytes so far).
    probe: Option<Probe>,
}

#[derive(Debug)]
struct Probe {
    route: usize,
    member: usize,
    head: Vec<u8>,
    /// Its verdict is in.
    done: bool,
}

#[derive(Debug, Default)]
struct Pool {
    idle: Vec<UpId>,
    /// Connections connecting, busy or idle (not closing).
    total: usize,
    queue: VecDeque<Job>,
}

pub struct Machine {
    limits: Limits,
    pools: Vec<Pool>,
    routes: Vec<Route>,
    /// Some route has active health checks.
    checks: bool,
    ups: Vec<Option<UpConn>>,
    free: Vec<UpId>,
    /// Per HTTP/1.x client connection: the upstream connection carrying its request.
    links: Vec<Option<UpId>>,
    /// The same for requests on HTTP/2 streams.
    stream_links: HashMap<ClientId, UpId>,
    actions: VecDeque<Action>,
    outcomes: VecDeque<(ClientId, ForwardOutcome)>,
    /// A FastCGI app's STDERR, by upstream, for the error log.
    app_stderr: VecDeque<(usize, Vec<u8>)>,
    draining: bool,
    tunnels: TunnelStats,
}

impl Machine {
    /// A machine whose route `i` is upstream `i` alone.
    pub fn new(limits: Limits) -> Machine {
        let routes = (0..limits.upstreams)
            .map(|upstream| RouteSpec {
                members: vec![Member {
                    upstream,
                    weight: 1,
                    id: upstream as u64,
                }],
                balance: Balance::RoundRobin,
                health: Health::default(),
                check_requests: Vec::new(),
            })
            .collect();
        Machine::with_routes(limits, routes)
    }

    /// A machine with these routes over `limits.upstreams` pools.
    pub fn with_routes(limits: Limits, specs: Vec<RouteSpec>) -> Machine {
        let routes: Vec<Route> = specs
            .into_iter()
            .map(|s| Route {
                ups: s.members.iter().map(|m| m.upstream).collect(),
                members: vec![MemberHealth::default(); s.members.len()],
                balancer: Balancer::new(s.members, &s.balance),
                health: s.health,
                check_requests: s.check_requests,
            })
            .collect();
        Machine {
            limits,
            checks: routes.iter().any(|r| r.health.check.is_some()),
            routes,
            pools: (0..limits.upstreams).map(|_| Pool::default()).collect(),
            ups: Vec::new(),
            free: Vec::new(),
            links: Vec::new(),
            stream_links: HashMap::new(),
            actions: VecDeque::new(),
            outcomes: VecDeque::new(),
            app_stderr: VecDeque::new(),
            draining: false,
            tunnels: TunnelStats::default(),
        }
    }

    // ---- outputs ----

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_outcome(&mut self) -> Option<(ClientId, ForwardOutcome)> {
        self.outcomes.pop_front()
    }

    /// What a FastCGI app wrote to its STDERR (whole lines), and its upstream.
    pub fn poll_app_stderr(&mut self) -> Option<(usize, Vec<u8>)> {
        self.app_stderr.pop_front()
    }

    /// The bytes an [`Action::Send`] sends.
    pub fn request_bytes(&self, up: UpId) -> &[u8] {
        let Some(u) = self.conn(up) else { return &[] };
        if let Some(p) = &u.probe {
            return &self.routes[p.route].check_requests[p.member];
        }
        if let Some(t) = &u.tunnel {
            return t.bytes_in_flight();
        }
        u.job.as_ref().map_or(&[][..], |j| &j.forward.request)
    }

    /// Whether `up` is an active health check's connection (outside the pools).
    pub fn is_check(&self, up: UpId) -> bool {
        self.conn(up).is_some_and(|u| u.probe.is_some())
    }

    /// Per route and upstream: the pool index, counters and whether it takes requests.
    pub fn upstream_states(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (usize, usize, MemberCounters, bool)> + '_ {
        self.routes.iter().enumerate().flat_map(move |(r, route)| {
            (route.ups.iter().zip(&route.members))
                .map(move |(&up, m)| (r, up, m.counters, m.usable(now)))
        })
    }

    /// A tunnel's send buffer, for a caller that swaps it with its own rather than copy
    /// [`Self::request_bytes`] (`None`: not a tunnel; send the request bytes).
    pub fn tunnel_send_buffer(&mut self, up: UpId) -> Option<&mut Vec<u8>> {
        Some(self.conn_mut(up)?.tunnel.as_mut()?.send_buffer())
    }

    /// Whether `up` carries (or carried, while it closes) a tunnel: outside the pool's cap.
    pub fn is_tunnel(&self, up: UpId) -> bool {
        self.conn(up).is_some_and(|u| u.tunnel.is_some())
    }

    /// Every tunnel of this machine, counted.
    pub fn tunnel_stats(&self) -> TunnelStats {
        self.tunnels
    }

    /// The connection carrying `client`'s request (none while it waits in a queue).
    pub fn connection_of(&self, client: ClientId) -> Option<UpId> {
        match stream_of(client) {
            0 => self.links.get(conn_of(client) as usize).copied().flatten(),
            _ => self.stream_links.get(&client).copied(),
        }
    }

    /// The request's response timeout is the earliest thing the caller's clock must wake
    /// for (the caller sweeps with a tick no longer than this).
    pub fn timeout(&self) -> Duration {
        self.limits.timeout
    }

    // ---- inputs: client side ----

    /// A client connection has a complete request. The route index is checked here, the
    /// one place: an upstream the handler made up is a 502.
    pub fn submit(&mut self, now: Instant, client: ClientId, forward: Forward) {
        let job = Job {
            client,
            route: forward.upstream,
            forward,
            retried: false,
            member: 0,
            upstream: usize::MAX,
            tried: Tried::default(),
            since: now,
            started: now,
        };
        if job.route >= self.routes.len() {
            return self.fail(job, 502, None, now);
        }
        self.place(now, job);
    }

    /// The client's output shrank to `pending` bytes: resume its paused upstream read.
    pub fn client_drained(&mut self, client: ClientId, pending: usize) {
        let Some(up) = self.connection_of(client) else {
            return;
        };
        if let Some(u) = self.conn_mut(up) {
            let upstream_done = u.tunnel.as_ref().is_some_and(|t| t.upstream_done());
            if u.paused && pending < RESUME_AT && !upstream_done {
                u.paused = false;
                self.actions.push_back(Action::Read { up, on: true });
            }
        }
    }

    /// A client connection is gone: its queued requests are dropped; the upstream
    /// connections carrying its requests are closed (the rest of a response cannot be
    /// skipped safely).
    pub fn client_gone(&mut self, now: Instant, conn: u32) {
        for pool in &mut self.pools {
            pool.queue.retain(|j| conn_of(j.client) != conn);
        }
        if let Some(up) = self.links.get_mut(conn as usize).and_then(Option::take) {
            self.abandon(now, client_id(conn, 0), up);
        }
        if !self.stream_links.is_empty() {
            let streams: Vec<(ClientId, UpId)> = (self.stream_links.iter())
                .filter(|(c, _)| conn_of(**c) == conn)
                .map(|(c, u)| (*c, *u))
                .collect();
            for (client, up) in streams {
                self.stream_links.remove(&client);
                self.abandon(now, client, up);
            }
        }
    }

    /// One request is no longer wanted (its HTTP/2 stream was reset): dropped from its
    /// queue, or its upstream connection closed.
    pub fn request_gone(&mut self, now: Instant, client: ClientId) {
        for pool in &mut self.pools {
            pool.queue.retain(|j| j.client != client);
        }
        if let Some(up) = self.connection_of(client) {
            self.unlink(client, up);
            self.abandon(now, client, up);
        }
    }

    /// The tunnel of `client` (an HTTP/1.1 connection after [`ForwardOutcome::Upgraded`]):
    /// its new bytes for the upstream (taken from `input`), whether it half-closed, or
    /// failed (the tunnel ends). `None`: the tunnel is over (its outcome is queued or was
    /// given).
    pub fn tunnel_client(
        &mut self,
        now: Instant,
        client: ClientId,
        input: &mut Vec<u8>,
        eof: bool,
        failed: bool,
    ) -> Option<TunnelView> {
        let Some(up) = self.connection_of(client) else {
            // Over: what the client sends now has nowhere to go.
            input.clear();
            return None;
        };
        let Some(u) = self.ups.get_mut(up as usize).and_then(Option::as_mut) else {
            input.clear();
            return None;
        };
        let Some(t) = u.tunnel.as_mut() else {
            // The connection carries an ordinary request: nothing to tunnel yet.
            input.clear();
            return None;
        };
        if failed {
            input.clear();
            self.end_tunnel(now, up, false);
            return None;
        }
        if !input.is_empty() {
            u.last_progress = now;
            t.from_client(input);
        }
        if eof {
            t.client_eof();
        }
        self.tunnel_steps(now, up)
    }

    /// Carry a tunnel on: its sends and shutdown, its end; what its client sees.
    fn tunnel_steps(&mut self, now: Instant, up: UpId) -> Option<TunnelView> {
        // Fields apart: the tunnel is borrowed while actions are queued.
        let u = self.ups.get_mut(up as usize)?.as_mut()?;
        if u.state != UpState::Tunnel {
            return None;
        }
        let t = u.tunnel.as_mut()?;
        while let Some(step) = t.next_step() {
            self.actions.push_back(match step {
                Step::Send => {
                    self.tunnels.bytes_to_upstream += t.bytes_in_flight().len() as u64;
                    Action::Send { up }
                }
                Step::Shutdown => Action::Shutdown { up },
            });
        }
        if t.finished() {
            self.end_tunnel(now, up, true);
            return None;
        }
        Some(TunnelView {
            room: t.room(),
            upstream_eof: t.upstream_done(),
        })
    }

    /// A tunnel is over: `clean` (both sides half-closed) is a `Done`, anything else an
    /// `Abort` (the client connection closes after its output either way).
    fn end_tunnel(&mut self, now: Instant, up: UpId, clean: bool) {
        let Some(job) = self.conn_mut(up).and_then(|u| u.job.take()) else {
            return self.close(now, up);
        };
        if clean {
            let log = self.log_of(up, &job, now);
            self.unlink(job.client, up);
            let done = ForwardOutcome::Done {
                keep_alive: false,
                log,
            };
            self.outcomes.push_back((job.client, done));
        } else {
            self.lost(now, up, job, 502);
        }
        self.close(now, up);
    }

    /// Upstream bytes of a tunnel go to its client as they are.
    fn tunnel_data(
        &mut self,
        now: Instant,
        up: UpId,
        data: &[u8],
        clients: &mut impl ClientOutput,
    ) {
        let Some(u) = self.conn_mut(up) else { return };
        let Some(client) = u.job.as_ref().map(|j| j.client) else {
            return;
        };
        u.last_progress = now;
        u.exchange.add_tunnelled(data.len());
        let mut out = clients.sink(client);
        out.body(data, ClientFraming::AsIs);
        if out.pending() >= PAUSE_AT && !u.paused {
            u.paused = true;
            self.actions.push_back(Action::Read { up, on: false });
        }
        self.tunnels.bytes_to_client += data.len() as u64;
        self.outcomes.push_back((client, ForwardOutcome::Progress));
    }

    /// A tunnel's upstream half-closed (`error`: failed) .
    fn tunnel_upstream_end(&mut self, now: Instant, up: UpId, error: bool) {
        if error {
            return self.end_tunnel(now, up, false);
        }
        let Some(u) = self.conn_mut(up) else { return };
        let Some(t) = u.tunnel.as_mut() else { return };
        t.upstream_eof();
        let client = u.job.as_ref().map(|j| j.client);
        self.actions.push_back(Action::Read { up, on: false });
        if self.tunnel_steps(now, up).is_some() {
            // The client connection learns of it when it next asks (it is driven now).
            if let Some(client) = client {
                self.outcomes.push_back((client, ForwardOutcome::Progress));
            }
        }
    }

    /// Close `up` if it still carries `client`'s request.
    fn abandon(&mut self, now: Instant, client: ClientId, up: UpId) {
        if let Some(u) = self.conn_mut(up) {
            if u.job.as_ref().is_some_and(|j| j.client == client) {
                u.job = None;
                self.close(now, up);
            }
        }
    }

    // ---- inputs: upstream side ----

    pub fn connected(&mut self, now: Instant, up: UpId) {
        let Some(u) = self.conn_mut(up) else { return };
        if u.state != UpState::Connecting {
            return;
        }
        if u.probe.is_some() {
            u.state = UpState::Busy;
            u.last_progress = now;
            self.actions.push_back(Action::Send { up });
            self.actions.push_back(Action::Read { up, on: true });
            return;
        }
        match u.job.take() {
            Some(job) => self.start(now, up, job, false),
            None => self.release(now, up),
        }
    }

    /// The connect failed (`errno`; ETIMEDOUT for the driver's connect timeout).
    pub fn connect_failed(&mut self, now: Instant, up: UpId, errno: i32) {
        let Some(u) = self.conn_mut(up) else { return };
        if u.probe.is_some() {
            return self.probe_result(now, up, false);
        }
        let job = u.job.take();
        if let Some(job) = &job {
            self.unlink(job.client, up);
        }
        self.close(now, up);
        if let Some(job) = job {
            // Nothing was sent: any request may go to another upstream.
            self.note_failure(now, &job);
            if let Some(job) = self.retry_elsewhere(now, job) {
                let status = if errno == libc::ETIMEDOUT { 504 } else { 502 };
                let upstream = job.upstream;
                self.fail(job, status, Some(upstream), now);
            }
        }
    }

    /// The request (or a tunnel's send) went out whole.
    pub fn on_sent(&mut self, now: Instant, up: UpId) {
        let Some(u) = self.conn_mut(up) else { return };
        u.sent = true;
        let Some(t) = u.tunnel.as_mut() else { return };
        let was_full = !t.room();
        t.on_sent();
        let client = u.job.as_ref().map(|j| j.client);
        let view = self.tunnel_steps(now, up);
        if let (Some(view), Some(client)) = (view, client) {
            if was_full && view.room {
                // Drive the client connection: its reading may resume.
                self.outcomes.push_back((client, ForwardOutcome::Progress));
            }
        }
    }

    pub fn on_data(
        &mut self,
        now: Instant,
        up: UpId,
        data: &[u8],
        date: &[u8; 29],
        clients: &mut impl ClientOutput,
    ) {
        let Some(u) = self.conn_mut(up).filter(|_| !data.is_empty()) else {
            return;
        };
        if let Some(p) = &mut u.probe {
            p.head.extend_from_slice(&data[..data.len().min(64)]);
            if let Some(passed) = health::check_verdict(&p.head) {
                self.probe_result(now, up, passed);
            }
            return;
        }
        let Some(client) = u.job.as_ref().map(|j| j.client) else {
            // Bytes on an idle connection: nothing asked for them.
            return self.close(now, up);
        };
        if u.state == UpState::Tunnel {
            return self.tunnel_data(now, up, data, clients);
        }
        u.last_progress = now;
        let mut out = clients.sink(client);
        let res = u.exchange.on_data(data, date, &mut out);
        let pending = out.pending();
        self.collect_stderr(up, res != Ok(Progress::Pending));
        self.after(now, up, res, pending);
    }

    /// The upstream closed its side.
    pub fn on_eof(&mut self, now: Instant, up: UpId, clients: &mut impl ClientOutput) {
        self.on_end(now, up, clients, false);
    }

    /// The connection failed (reset, failed send or receive).
    pub fn on_error(&mut self, now: Instant, up: UpId, clients: &mut impl ClientOutput) {
        self.on_end(now, up, clients, true);
    }

    /// The connection is gone (after [`Action::Close`]); its id may be reused.
    pub fn closed(&mut self, now: Instant, up: UpId) {
        let Some(u) = self.conn_mut(up) else { return };
        if let Some(p) = u.probe.take() {
            if !p.done {
                self.check_verdict(now, p.route, p.member, false);
            }
        } else if u.state != UpState::Closing {
            // Closed under us (shutdown): account for it as a failure, ask nothing more.
            if let Some(job) = u.job.take() {
                self.lost(now, up, job, 502);
            }
            let handover = self.close_without_handover(up);
            self.actions.retain(|a| *a != Action::Close { up });
            if let Some(upstream) = handover {
                if let Some(job) = self.pools[upstream].queue.pop_front() {
                    self.connect(now, job);
                }
            }
        }
        self.ups[up as usize] = None;
        self.free.push(up);
    }

    /// Response timeouts, connect timeouts and queue waits.
    pub fn tick(&mut self, now: Instant) {
        let (timeout, connect_timeout) = (self.limits.timeout, self.limits.connect_timeout);
        let tunnel_idle = self.limits.tunnel_idle;
        for up in 0..self.ups.len() as UpId {
            let Some(u) = self.conn(up) else { continue };
            if let Some(p) = &u.probe {
                let check = self.routes[p.route].health.check.as_ref();
                let limit = check.map_or(timeout, |c| health::check_deadline(c, connect_timeout));
                let open = matches!(u.state, UpState::Busy | UpState::Connecting);
                if open && now >= u.last_progress + limit {
                    self.probe_result(now, up, false);
                }
                continue;
            }
            let Some(u) = self.conn_mut(up) else { continue };
            let limit = match u.state {
                UpState::Busy if !u.paused => timeout,
                UpState::Connecting => connect_timeout,
                // Paused or not: a client that reads nothing for this long is idle too.
                UpState::Tunnel => tunnel_idle,
                _ => continue,
            };
            if now < u.last_progress + limit {
                continue;
            }
            if u.state == UpState::Connecting {
                self.connect_failed(now, up, libc::ETIMEDOUT);
                continue;
            }
            self.collect_stderr(up, true);
            let Some(u) = self.conn_mut(up) else { continue };
            if let Some(job) = u.job.take() {
                self.note_failure(now, &job);
                self.lost(now, up, job, 504);
            }
            self.close(now, up);
        }
        if self.checks && !self.draining {
            self.start_checks(now);
        }
        let wait = self.limits.connect_timeout;
        for p in 0..self.pools.len() {
            while self.pools[p]
                .queue
                .front()
                .is_some_and(|j| now >= j.since + wait)
            {
                let job = self.pools[p].queue.pop_front().expect("front");
                self.fail(job, 503, None, now);
            }
        }
    }

    /// Shutdown: idle connections close now, busy ones after their response.
    pub fn start_drain(&mut self, now: Instant) {
        self.draining = true;
        let idle: Vec<UpId> = self
            .pools
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.idle))
            .collect();
        for up in idle {
            self.close(now, up);
        }
    }

    // ---- internals ----

    fn conn(&self, up: UpId) -> Option<&UpConn> {
        self.ups.get(up as usize)?.as_ref()
    }

    fn conn_mut(&mut self, up: UpId) -> Option<&mut UpConn> {
        self.ups.get_mut(up as usize)?.as_mut()
    }

    /// A pooled connection, a new one, a place in the queue, or 503.
    fn assign(&mut self, now: Instant, job: Job) {
        let pool = &mut self.pools[job.upstream];
        if let Some(up) = pool.idle.pop() {
            return self.start(now, up, job, true);
        }
        if pool.total < self.limits.conns_per_upstream {
            return self.connect(now, job);
        }
        if pool.queue.len() >= QUEUE_CAP {
            return self.fail(job, 503, None, now);
        }
        pool.queue.push_back(job);
    }

    fn connect(&mut self, now: Instant, mut job: Job) {
        let upstream = job.upstream;
        self.pools[upstream].total += 1;
        let up = self.new_up();
        if !job.retried {
            job.started = now;
        }
        self.link(job.client, up);
        self.ups[up as usize] = Some(UpConn {
            upstream,
            state: UpState::Connecting,
            exchange: Exchange::of(&job.forward),
            job: Some(job),
            reused: false,
            sent: false,
            paused: false,
            last_progress: now,
            probe: None,
            tunnel: None,
        });
        self.actions.push_back(Action::Connect { up, upstream });
    }

    fn new_up(&mut self) -> UpId {
        match self.free.pop() {
            Some(up) => up,
            None => {
                self.ups.push(None);
                self.ups.len() as UpId - 1
            }
        }
    }

    /// Choose `job`'s upstream among the route's untried ones (the usable first; when
    /// none is, any, as nginx) and hand it to that pool; 502 when every one was tried.
    #[inline]
    fn place(&mut self, now: Instant, mut job: Job) {
        let route = &mut self.routes[job.route];
        let member = match route.ups.len() {
            // One upstream: nothing to choose (down or not, it is tried, as nginx does).
            1 if job.tried.is_empty() => 0,
            _ => {
                let (ups, members, pools) = (&route.ups, &route.members, &self.pools);
                let tried = job.tried;
                let fresh = |i: usize| !tried.contains(ups[i]);
                let load = |i: usize| {
                    let p = &pools[ups[i]];
                    p.total - p.idle.len() + p.queue.len()
                };
                let key = job.forward.key;
                let bal = &mut route.balancer;
                let pick = bal
                    .pick(key, |i| fresh(i) && members[i].usable(now), load)
                    .or_else(|| bal.pick(key, fresh, load));
                let Some(member) = pick else {
                    let upstream = tried.iter().last();
                    return self.fail(job, 502, upstream, now);
                };
                member
            }
        };
        route.members[member].counters.requests += 1;
        job.member = member;
        job.upstream = route.ups[member];
        job.tried.push(job.upstream);
        self.assign(now, job);
    }

    /// An attempt of `job` failed on its upstream.
    fn note_failure(&mut self, now: Instant, job: &Job) {
        let route = &mut self.routes[job.route];
        route.members[job.member].failed(now, &route.health);
    }

    /// `job` failed before anything reached its client: another upstream of its route if
    /// one is left untried (the job back if none is).
    fn retry_elsewhere(&mut self, now: Instant, mut job: Job) -> Option<Job> {
        let route = &mut self.routes[job.route];
        let untried = route.ups.iter().any(|&u| !job.tried.contains(u));
        if !untried || job.tried.is_full() {
            return Some(job);
        }
        route.members[job.member].counters.retries += 1;
        job.retried = true;
        self.place(now, job);
        None
    }

    /// Open a check connection to each upstream whose check is due.
    fn start_checks(&mut self, now: Instant) {
        for r in 0..self.routes.len() {
            if self.routes[r].health.check.is_none() {
                continue;
            }
            for member in 0..self.routes[r].members.len() {
                let m = &mut self.routes[r].members[member];
                if !m.check_due(now) {
                    continue;
                }
                m.checking = true;
                let upstream = self.routes[r].ups[member];
                let up = self.new_up();
                self.ups[up as usize] = Some(UpConn {
                    upstream,
                    state: UpState::Connecting,
                    job: None,
                    exchange: Exchange::new(ClientSide::default()),
                    reused: false,
                    sent: false,
                    paused: false,
                    last_progress: now,
                    tunnel: None,
                    probe: Some(Probe {
                        route: r,
                        member,
                        head: Vec::new(),
                        done: false,
                    }),
                });
                self.actions.push_back(Action::Connect { up, upstream });
            }
        }
    }

    /// A check's verdict (once per check); its connection closes.
    fn probe_result(&mut self, now: Instant, up: UpId, passed: bool) {
        let Some(p) = self.conn_mut(up).and_then(|u| u.probe.as_mut()) else {
            return;
        };
        if p.done {
            return;
        }
        p.done = true;
        let (r, member) = (p.route, p.member);
        self.check_verdict(now, r, member, passed);
        self.close_without_handover(up);
    }

    fn check_verdict(&mut self, now: Instant, route: usize, member: usize, passed: bool) {
        let route = &mut self.routes[route];
        if let Some(check) = &route.health.check {
            route.members[member].checked(now, passed, check);
        }
    }

    /// Send `job` on the open connection `up`.
    fn start(&mut self, now: Instant, up: UpId, mut job: Job, reused: bool) {
        self.link(job.client, up);
        if !job.retried {
            job.started = now;
        }
        if reused {
            self.routes[job.route].members[job.member].counters.reused += 1;
        }
        let u = self.conn_mut(up).expect("upstream connection");
        u.state = UpState::Busy;
        u.exchange = Exchange::of(&job.forward);
        u.job = Some(job);
        u.reused = reused;
        u.sent = false;
        u.paused = false;
        u.last_progress = now;
        self.actions.push_back(Action::Send { up });
        self.actions.push_back(Action::Read { up, on: true });
    }

    fn collect_stderr(&mut self, up: UpId, all: bool) {
        if let Some(u) = self.conn_mut(up) {
            let upstream = u.upstream;
            if let Some(lines) = u.exchange.take_stderr(all) {
                self.app_stderr.push_back((upstream, lines));
            }
        }
    }

    fn link(&mut self, client: ClientId, up: UpId) {
        if stream_of(client) != 0 {
            self.stream_links.insert(client, up);
            return;
        }
        let c = conn_of(client) as usize;
        if self.links.len() <= c {
            self.links.resize(c + 1, None);
        }
        self.links[c] = Some(up);
    }

    fn unlink(&mut self, client: ClientId, up: UpId) {
        if stream_of(client) != 0 {
            if self.stream_links.get(&client) == Some(&up) {
                self.stream_links.remove(&client);
            }
            return;
        }
        if let Some(l) = self.links.get_mut(conn_of(client) as usize) {
            if *l == Some(up) {
                *l = None;
            }
        }
    }

    fn log_of(&self, up: UpId, job: &Job, now: Instant) -> UpstreamLog {
        let ex = self.conn(up).map(|u| &u.exchange);
        UpstreamLog {
            upstream: Some(job.upstream),
            status: ex.and_then(Exchange::status),
            response_time: now.saturating_duration_since(job.started),
            body_bytes: ex.map_or(0, Exchange::body_bytes),
            tried: job.tried,
        }
    }

    fn fail(&mut self, job: Job, status: u16, upstream: Option<usize>, now: Instant) {
        let log = UpstreamLog {
            upstream,
            status: None,
            response_time: now.saturating_duration_since(job.started),
            body_bytes: 0,
            tried: if upstream.is_some() {
                job.tried
            } else {
                Tried::default()
            },
        };
        self.outcomes.push_back((
            job.client,
            ForwardOutcome::Failed {
                status,
                side: job.forward.side,
                log,
            },
        ));
    }

    /// The exchange on `up` ended without a response it could finish: `status` while the
    /// client has nothing yet, else an abort.
    fn lost(&mut self, now: Instant, up: UpId, job: Job, status: u16) {
        let ex = self.conn(up).map(|u| &u.exchange);
        let head_sent = ex.is_some_and(Exchange::head_sent);
        let reset = ex.is_some_and(Exchange::cut_needs_reset);
        let log = self.log_of(up, &job, now);
        self.unlink(job.client, up);
        let outcome = if head_sent {
            ForwardOutcome::Abort { reset, log }
        } else {
            ForwardOutcome::Failed {
                status,
                side: job.forward.side,
                log,
            }
        };
        self.outcomes.push_back((job.client, outcome));
    }

    fn on_end(&mut self, now: Instant, up: UpId, clients: &mut impl ClientOutput, error: bool) {
        let Some(u) = self.conn_mut(up) else { return };
        if u.state == UpState::Closing {
            return;
        }
        if u.probe.is_some() {
            return self.probe_result(now, up, false);
        }
        if u.state == UpState::Tunnel {
            return self.tunnel_upstream_end(now, up, error);
        }
        if let Some(client) = u.job.as_ref().map(|j| j.client) {
            let mut out = clients.sink(client);
            let res = if error {
                u.exchange.on_error(&mut out)
            } else {
                u.exchange.on_eof(&mut out)
            };
            let pending = out.pending();
            self.collect_stderr(up, true);
            self.after(now, up, res, pending);
        }
        // Whatever the exchange made of it, the connection is done.
        self.close(now, up);
    }

    /// Act on an exchange's progress.
    fn after(&mut self, now: Instant, up: UpId, res: Result<Progress, Failure>, pending: usize) {
        let draining = self.draining;
        let u = self.conn_mut(up).expect("upstream connection");
        match res {
            Ok(Progress::Pending) => {
                let client = u.job.as_ref().expect("busy").client;
                // The pause belongs to this exchange: decided before anything can hand
                // the connection to another request.
                if pending >= PAUSE_AT && !u.paused {
                    u.paused = true;
                    self.actions.push_back(Action::Read { up, on: false });
                }
                self.outcomes.push_back((client, ForwardOutcome::Progress));
            }
            Ok(Progress::Done {
                upstream_reusable,
                client_keep_alive,
            }) => {
                let reuse = u.job.as_ref().is_some_and(|j| j.forward.reuse);
                let reusable = upstream_reusable && reuse && u.sent && !draining;
                let job = u.job.take().expect("busy");
                let log = self.log_of(up, &job, now);
                self.unlink(job.client, up);
                self.routes[job.route].members[job.member].succeeded();
                self.outcomes.push_back((
                    job.client,
                    ForwardOutcome::Done {
                        keep_alive: client_keep_alive,
                        log,
                    },
                ));
                if reusable {
                    self.release(now, up);
                } else {
                    self.close(now, up);
                }
            }
            Ok(Progress::Upgraded) => {
                let client = u.job.as_ref().expect("busy").client;
                u.state = UpState::Tunnel;
                u.tunnel = Some(Box::new(Tunnel::new(!u.sent)));
                let pause = pending >= PAUSE_AT && !u.paused;
                u.paused |= pause;
                let (upstream, after_head) = (u.upstream, u.exchange.body_bytes());
                if pause {
                    self.actions.push_back(Action::Read { up, on: false });
                }
                self.tunnels.opened += 1;
                self.tunnels.open += 1;
                self.tunnels.bytes_to_client += after_head;
                // The tunnel leaves the pool's count: its place goes to a waiting request.
                self.pools[upstream].total -= 1;
                if let Some(job) = self.pools[upstream].queue.pop_front() {
                    self.connect(now, job);
                }
                self.outcomes.push_back((client, ForwardOutcome::Upgraded));
            }
            Err(Failure::NoResponse)
                if u.reused
                    && u.job
                        .as_ref()
                        .is_some_and(|j| !j.retried && j.forward.idempotent) =>
            {
                // The upstream closed a kept-alive connection as we sent: once more, on
                // a fresh connection that takes this one's place (never one over the cap).
                let mut job = u.job.take().expect("busy");
                job.retried = true;
                self.unlink(job.client, up);
                self.close_without_handover(up);
                self.connect(now, job);
            }
            Err(Failure::NoResponse) if u.job.as_ref().is_some_and(|j| j.forward.idempotent) => {
                // The upstream ended the connection without a byte of response (it went
                // away): nothing reached the client, so another upstream may answer.
                let job = u.job.take().expect("busy");
                self.unlink(job.client, up);
                self.close(now, up);
                self.note_failure(now, &job);
                if let Some(job) = self.retry_elsewhere(now, job) {
                    let upstream = job.upstream;
                    self.fail(job, 502, Some(upstream), now);
                }
            }
            Err(e) => {
                let job = u.job.take().expect("busy");
                if e == Failure::NoResponse {
                    self.note_failure(now, &job);
                }
                self.lost(now, up, job, 502);
                self.close(now, up);
            }
        }
    }

    /// A connection is free: the next waiting request, or the idle list.
    fn release(&mut self, now: Instant, up: UpId) {
        let upstream = self.conn(up).expect("upstream connection").upstream;
        if let Some(job) = self.pools[upstream].queue.pop_front() {
            return self.start(now, up, job, true);
        }
        let u = self.conn_mut(up).expect("upstream connection");
        u.state = UpState::Idle;
        u.paused = false;
        self.pools[upstream].idle.push(up);
        // Reading while idle notices the upstream's close at once.
        self.actions.push_back(Action::Read { up, on: true });
    }

    /// Close `up` and give its place to the next waiting request.
    fn close(&mut self, now: Instant, up: UpId) {
        let Some(upstream) = self.close_without_handover(up) else {
            return;
        };
        if let Some(job) = self.pools[upstream].queue.pop_front() {
            self.connect(now, job);
        }
    }

    /// Close `up`; its upstream's index if it was not closing already.
    fn close_without_handover(&mut self, up: UpId) -> Option<usize> {
        let u = self.conn_mut(up)?;
        if u.state == UpState::Closing {
            return None;
        }
        let tunnel = u.state == UpState::Tunnel;
        u.state = UpState::Closing;
        if u.probe.is_some() {
            // Outside the pools: nothing to account for, no place to hand over.
            self.actions.push_back(Action::Close { up });
            return None;
        }
        let upstream = u.upstream;
        if let Some(job) = u.job.take() {
            let client = job.client;
            self.unlink(client, up);
        }
        self.actions.push_back(Action::Close { up });
        if tunnel {
            // Counted out of the pool at its 101: its close frees no place.
            self.tunnels.open -= 1;
            return None;
        }
        let pool = &mut self.pools[upstream];
        pool.total -= 1;
        pool.idle.retain(|&i| i != up);
        Some(upstream)
    }
}
