//! The proxy machine driven the way quinn-proto's tests drive connections: a [`Pair`] of
//! the machine and in-memory upstreams on a virtual clock, no sockets. The harness plays
//! the worker (it carries out every action) and the upstreams (the test decides when a
//! connect succeeds, what bytes come back, when a send completes).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::balance::{hash_bytes, Member};
use super::health::check_request;
use super::machine::{
    Action, ClientId, ClientOutput, ForwardOutcome, Limits, Machine, RouteSpec, TunnelView, UpId,
    PAUSE_AT, QUEUE_CAP,
};
use super::request::Forward;
use super::upstream::ClientSide;
use crate::config::{Balance, Health, HealthCheck};
use uring_common::http::testkit::ResponseStream;

const DATE: &[u8; 29] = b"Thu, 01 Jan 1970 00:00:00 GMT";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[derive(Default)]
struct Outs(HashMap<ClientId, Vec<u8>>);

impl ClientOutput for Outs {
    type Sink<'a> = &'a mut Vec<u8>;

    fn sink(&mut self, client: ClientId) -> &mut Vec<u8> {
        self.0.entry(client).or_default()
    }
}

/// An in-memory upstream connection.
#[derive(Debug, Default)]
struct Up {
    connected: bool,
    reading: bool,
    closed: bool,
    /// Sends asked for and not yet completed (the test completes them).
    sending: usize,
    /// Requests received, in order.
    requests: Vec<Vec<u8>>,
    /// Its write side was shut (a tunnel's client half-closed).
    shut: bool,
}

struct Pair {
    m: Machine,
    now: Instant,
    outs: Outs,
    ups: HashMap<UpId, Up>,
    outcomes: Vec<(ClientId, ForwardOutcome)>,
    /// Complete sends at once (an upstream that reads what it is sent).
    auto_sent: bool,
    /// Accept connects at once.
    auto_connect: bool,
    /// Connects asked for.
    connects: usize,
    /// The most connections open (not closed) to one upstream at any time.
    peak_open: usize,
    /// Per connection: the upstream it goes to.
    upstream_of: HashMap<UpId, usize>,
    /// Upstreams that refuse connections.
    refuse: HashSet<usize>,
    /// Answer every request sent with this response at once.
    auto_answer: Option<&'static [u8]>,
    /// Per upstream: connects asked for and requests sent (connection ids are reused).
    connects_to: HashMap<usize, usize>,
    sent_to: HashMap<usize, usize>,
}

fn limits(conns: usize) -> Limits {
    Limits {
        upstreams: 1,
        conns_per_upstream: conns,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
        tunnel_idle: Duration::from_secs(60),
    }
}

fn get(path: &str) -> Forward {
    Forward {
        upstream: 0,
        key: None,
        request: format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
        idempotent: true,
        reuse: true,
        fastcgi: false,
        upgrade: false,
        side: ClientSide {
            head_only: false,
            http10: false,
            keep_alive: true,
        },
    }
}

fn post(path: &str) -> Forward {
    Forward {
        request: format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            .into_bytes(),
        idempotent: false,
        ..get(path)
    }
}

impl Pair {
    fn new(limits: Limits) -> Pair {
        Pair {
            m: Machine::new(limits),
            now: Instant::now(),
            outs: Outs::default(),
            ups: HashMap::new(),
            outcomes: Vec::new(),
            auto_sent: true,
            auto_connect: true,
            connects: 0,
            peak_open: 0,
            upstream_of: HashMap::new(),
            refuse: HashSet::new(),
            auto_answer: None,
            connects_to: HashMap::new(),
            sent_to: HashMap::new(),
        }
    }

    fn with_routes(limits: Limits, routes: Vec<RouteSpec>) -> Pair {
        Pair {
            m: Machine::with_routes(limits, routes),
            ..Pair::new(limits)
        }
    }

    /// The upstream that answered `client`'s last request (from its log).
    fn served_by(&self, client: ClientId) -> usize {
        match self.last(client) {
            Some(ForwardOutcome::Done { log, .. }) => log.upstream.expect("an upstream"),
            o => panic!("client {client}: {o:?}"),
        }
    }

    /// Requests each upstream received.
    fn requests_per_upstream(&self, n: usize) -> Vec<usize> {
        (0..n)
            .map(|i| self.sent_to.get(&i).copied().unwrap_or(0))
            .collect()
    }

    /// Carry out every action, as the worker does; collect outcomes.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(a) = self.m.poll_action() {
                progressed = true;
                match a {
                    Action::Connect { up, upstream } => {
                        self.connects += 1;
                        self.ups.insert(up, Up::default());
                        self.upstream_of.insert(up, upstream);
                        *self.connects_to.entry(upstream).or_default() += 1;
                        let open = self.ups.values().filter(|u| !u.closed).count();
                        self.peak_open = self.peak_open.max(open);
                        if self.refuse.contains(&upstream) {
                            self.m.connect_failed(self.now, up, libc::ECONNREFUSED);
                        } else if self.auto_connect {
                            self.ups.get_mut(&up).unwrap().connected = true;
                            self.m.connected(self.now, up);
                        }
                    }
                    Action::Send { up } => {
                        let bytes = self.m.request_bytes(up).to_vec();
                        let u = self.ups.get_mut(&up).expect("send on a known connection");
                        assert!(u.connected && !u.closed, "send on {up}: {u:?}");
                        assert_eq!(u.sending, 0, "a second send while one is in flight");
                        u.requests.push(bytes);
                        u.sending += 1;
                        *self.sent_to.entry(self.upstream_of[&up]).or_default() += 1;
                        if self.auto_sent {
                            u.sending = 0;
                            self.m.on_sent(self.now, up);
                        }
                        if let Some(answer) = self.auto_answer {
                            self.m.on_data(self.now, up, answer, DATE, &mut self.outs);
                        }
                    }
                    Action::Read { up, on } => self.ups.get_mut(&up).unwrap().reading = on,
                    Action::Shutdown { up } => {
                        let u = self.ups.get_mut(&up).unwrap();
                        assert!(!u.shut && !u.closed && u.sending == 0, "shutdown: {u:?}");
                        u.shut = true;
                    }
                    Action::Close { up } => {
                        let u = self.ups.get_mut(&up).unwrap();
                        assert!(!u.closed, "closed twice");
                        u.closed = true;
                        self.m.closed(self.now, up);
                    }
                }
            }
            while let Some(o) = self.m.poll_outcome() {
                progressed = true;
                self.outcomes.push(o);
            }
            if !progressed {
                return;
            }
        }
    }

    fn submit(&mut self, client: ClientId, f: Forward) {
        self.m.submit(self.now, client, f);
        self.pump();
    }

    fn data(&mut self, up: UpId, bytes: &[u8]) {
        self.m.on_data(self.now, up, bytes, DATE, &mut self.outs);
        self.pump();
    }

    fn eof(&mut self, up: UpId) {
        self.m.on_eof(self.now, up, &mut self.outs);
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.m.tick(self.now);
        self.pump();
    }

    /// The open connection carrying `client`'s request.
    fn up_of(&self, client: ClientId) -> UpId {
        self.m
            .connection_of(client)
            .expect("client has a connection")
    }

    fn open_ups(&self) -> Vec<UpId> {
        let mut v: Vec<UpId> = (self.ups.iter())
            .filter(|(_, u)| !u.closed)
            .map(|(&i, _)| i)
            .collect();
        v.sort();
        v
    }

    /// The last terminal outcome of `client` (Progress skipped).
    fn last(&self, client: ClientId) -> Option<ForwardOutcome> {
        self.outcomes
            .iter()
            .rev()
            .find(|(c, o)| *c == client && *o != ForwardOutcome::Progress)
            .map(|(_, o)| *o)
    }

    fn status_of(&self, client: ClientId) -> Option<u16> {
        match self.last(client)? {
            ForwardOutcome::Failed { status, .. } => Some(status),
            ForwardOutcome::Done { log, .. } => log.status,
            _ => None,
        }
    }
}

#[test]
fn a_complete_response_returns_the_connection_to_the_pool() {
    let mut p = Pair::new(limits(4));
    p.submit(1, get("/a"));
    let up = p.up_of(1);
    p.data(up, OK);
    assert!(matches!(
        p.last(1),
        Some(ForwardOutcome::Done {
            keep_alive: true,
            ..
        })
    ));
    assert!(p.outs.0[&1].ends_with(b"\r\n\r\nok"));
    p.submit(2, get("/b"));
    assert_eq!(p.up_of(2), up, "the pooled connection is reused");
    assert_eq!(p.ups[&up].requests.len(), 2);
    let counters = p.m.upstream_states(p.now).next().unwrap().2;
    assert_eq!(counters.reused, 1, "counted for the metrics");
    assert_eq!(p.open_ups(), vec![up]);
}

#[test]
fn the_response_is_the_same_at_every_byte_split() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let mut whole = None;
    for at in 0..=wire.len() {
        let mut p = Pair::new(limits(1));
        p.submit(1, get("/"));
        let up = p.up_of(1);
        p.data(up, &wire[..at]);
        p.data(up, &wire[at..]);
        assert!(
            matches!(p.last(1), Some(ForwardOutcome::Done { .. })),
            "at {at}"
        );
        let mut rs = ResponseStream::new(64 * 1024);
        rs.feed(&p.outs.0.remove(&1).unwrap());
        assert_eq!(rs.error, None, "at {at}");
        let r = &rs.messages[0];
        let seen = (r.status, r.body.clone());
        assert_eq!(whole.get_or_insert_with(|| seen.clone()), &seen, "at {at}");
        assert_eq!(p.open_ups(), vec![up], "pooled at {at}");
    }
}

#[test]
fn requests_wait_in_order_and_a_full_queue_is_503() {
    let mut p = Pair::new(limits(1));
    p.submit(1, get("/1"));
    for c in 2..2 + QUEUE_CAP as ClientId {
        p.submit(c, get("/q"));
    }
    assert_eq!(p.outcomes, vec![]);
    let over = 2 + QUEUE_CAP as ClientId;
    p.submit(over, get("/over"));
    assert_eq!(p.status_of(over), Some(503));
    let up = p.up_of(1);
    for c in 1..5 {
        assert_eq!(p.up_of(c), up, "client {c} in order");
        p.data(up, OK);
        assert_eq!(p.status_of(c), Some(200));
    }
    assert_eq!(p.open_ups(), vec![up]);
}

#[test]
fn a_request_waiting_longer_than_the_connect_timeout_is_503() {
    let mut p = Pair::new(limits(1));
    p.submit(1, get("/1"));
    p.advance(Duration::from_secs(2));
    p.submit(2, get("/2"));
    p.advance(Duration::from_secs(4));
    assert_eq!(p.status_of(2), None, "waited 4 s of 5");
    p.advance(Duration::from_secs(1));
    assert_eq!(p.status_of(2), Some(503));
    assert_eq!(p.status_of(1), None, "the busy request is not touched");
}

#[test]
fn connect_failures_are_502_and_504() {
    let mut p = Pair::new(limits(2));
    p.auto_connect = false;
    p.submit(1, get("/refused"));
    let up = p.up_of(1);
    p.m.connect_failed(p.now, up, libc::ECONNREFUSED);
    p.pump();
    assert_eq!(p.status_of(1), Some(502));
    p.submit(2, get("/slow"));
    p.advance(Duration::from_secs(5));
    assert_eq!(p.status_of(2), Some(504), "the connect timeout");
    assert_eq!(p.open_ups(), Vec::<UpId>::new());
    // A route to an upstream that does not exist: one check, a 502, no panic.
    p.submit(
        3,
        Forward {
            upstream: 7,
            ..get("/x")
        },
    );
    assert_eq!(p.status_of(3), Some(502));
}

#[test]
fn response_timeouts_are_504_before_the_head_and_an_abort_after() {
    let mut p = Pair::new(limits(2));
    p.submit(1, get("/1"));
    p.advance(Duration::from_secs(60));
    assert_eq!(p.status_of(1), Some(504));
    p.submit(2, get("/2"));
    let up = p.up_of(2);
    p.data(up, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart");
    p.advance(Duration::from_secs(59));
    assert_eq!(p.last(2), None, "progress restarts the clock");
    p.advance(Duration::from_secs(1));
    assert!(matches!(
        p.last(2),
        Some(ForwardOutcome::Abort { reset: false, .. })
    ));
    assert!(p.ups[&up].closed);
}

#[test]
fn an_idempotent_request_is_retried_once_on_a_fresh_connection_within_the_cap() {
    let mut p = Pair::new(limits(1));
    p.submit(1, get("/1"));
    let first = p.up_of(1);
    p.data(first, OK);
    p.submit(2, get("/2"));
    p.submit(3, get("/3"));
    // The kept-alive connection closes under request 2: once more, on a new connection
    // that takes its place; request 3 still waits.
    p.eof(first);
    let second = p.up_of(2);
    assert_ne!(second, first);
    assert_eq!(p.peak_open, 1, "never over --upstream-conns");
    assert_eq!(p.status_of(2), None);
    // A fresh connection failing is not retried.
    p.eof(second);
    assert_eq!(p.status_of(2), Some(502));
    // Request 3 gets the place.
    let third = p.up_of(3);
    p.data(third, OK);
    assert_eq!(p.status_of(3), Some(200));
    assert_eq!(p.peak_open, 1);
}

#[test]
fn a_non_idempotent_request_is_not_retried() {
    let mut p = Pair::new(limits(1));
    p.submit(1, get("/1"));
    let up = p.up_of(1);
    p.data(up, OK);
    p.submit(2, post("/2"));
    p.eof(up);
    assert_eq!(p.status_of(2), Some(502));
}

/// Bug 1 of issue 20: the response that fills the slow client's output to the pause mark
/// also completes; the connection goes to the queued request, which must not inherit the
/// pause (it never got a resume, and its timeout was skipped).
#[test]
fn the_pause_stays_with_the_exchange_whose_client_is_slow() {
    let mut p = Pair::new(limits(1));
    p.submit(1, get("/big"));
    p.submit(2, get("/small"));
    let up = p.up_of(1);
    let body = PAUSE_AT + 10;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n");
    p.data(up, head.as_bytes());
    p.data(up, &vec![b'x'; body]);
    assert!(matches!(p.last(1), Some(ForwardOutcome::Done { .. })));
    // Client 1 has not read anything: its output holds over PAUSE_AT bytes.
    assert!(p.outs.0[&1].len() >= PAUSE_AT);
    assert_eq!(p.up_of(2), up);
    assert!(p.ups[&up].reading, "the queued request's read is paused");
    p.data(up, OK);
    assert_eq!(p.status_of(2), Some(200));
    // And a stalled upstream still times out.
    p.submit(3, get("/stall"));
    p.advance(Duration::from_secs(60));
    assert_eq!(p.status_of(3), Some(504));
}

#[test]
fn a_full_client_output_pauses_the_read_until_it_drains() {
    let mut p = Pair::new(limits(1));
    p.submit(1, get("/big"));
    let up = p.up_of(1);
    let body = 3 * PAUSE_AT;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n");
    p.data(up, head.as_bytes());
    p.data(up, &vec![b'x'; PAUSE_AT]);
    assert!(!p.ups[&up].reading, "paused at {PAUSE_AT}");
    // A paused exchange waits for its client, not for the upstream: no timeout.
    p.advance(Duration::from_secs(120));
    assert_eq!(p.last(1), None);
    p.m.client_drained(1, PAUSE_AT / 2);
    p.pump();
    assert!(!p.ups[&up].reading, "not below the resume mark yet");
    p.outs.0.get_mut(&1).unwrap().clear();
    p.m.client_drained(1, 0);
    p.pump();
    assert!(p.ups[&up].reading, "resumed");
    p.data(up, &vec![b'x'; 2 * PAUSE_AT]);
    assert!(matches!(p.last(1), Some(ForwardOutcome::Done { .. })));
}

#[test]
fn a_client_gone_mid_response_closes_its_connection_and_frees_the_place() {
    let mut p = Pair::new(limits(1));
    p.submit(1, get("/1"));
    p.submit(2, get("/2"));
    p.submit(3, get("/3"));
    let up = p.up_of(1);
    p.data(up, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npa");
    p.m.client_gone(p.now, 3);
    p.m.client_gone(p.now, 1);
    p.pump();
    assert!(p.ups[&up].closed, "a response cannot be skipped");
    let next = p.up_of(2);
    assert_ne!(next, up);
    p.data(next, OK);
    assert_eq!(p.status_of(2), Some(200));
    assert_eq!(
        p.last(3),
        None,
        "the gone client's queued request was dropped"
    );
    assert_eq!(p.open_ups(), vec![next]);
}

/// Bug 2 of issue 20: an answer before the request was sent whole leaves the send in
/// flight; the connection must not carry another request.
#[test]
fn a_connection_whose_send_is_unfinished_is_not_reused() {
    let mut p = Pair::new(limits(1));
    p.auto_sent = false;
    p.submit(1, post("/upload"));
    let up = p.up_of(1);
    p.data(
        up,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(p.status_of(1), Some(401));
    assert!(p.ups[&up].closed);
    p.submit(2, get("/next"));
    let next = p.up_of(2);
    assert_eq!(p.connects, 2, "a fresh connection for the next request");
    assert_eq!(p.ups[&next].requests.len(), 1, "the request went out");
    // Sent whole, then answered: pooled.
    p.ups.get_mut(&next).unwrap().sending = 0;
    p.m.on_sent(p.now, next);
    p.data(next, OK);
    p.submit(3, get("/again"));
    assert_eq!(p.up_of(3), next);
}

#[test]
fn a_close_delimited_body_cut_by_an_error_is_a_reset_for_an_http10_client() {
    let mut p = Pair::new(limits(1));
    let mut f = get("/");
    f.side.http10 = true;
    p.submit(1, f);
    let up = p.up_of(1);
    p.data(up, b"HTTP/1.0 200 OK\r\n\r\nsome");
    p.m.on_error(p.now, up, &mut p.outs);
    p.pump();
    assert!(matches!(
        p.last(1),
        Some(ForwardOutcome::Abort { reset: true, .. })
    ));
    // The same body ended by an orderly close is complete.
    let mut f = get("/");
    f.side.http10 = true;
    p.submit(2, f);
    let up = p.up_of(2);
    p.data(up, b"HTTP/1.0 200 OK\r\n\r\nsome");
    p.eof(up);
    assert!(matches!(
        p.last(2),
        Some(ForwardOutcome::Done {
            keep_alive: false,
            ..
        })
    ));
}

#[test]
fn drain_closes_idle_connections_now_and_busy_ones_after_their_response() {
    let mut p = Pair::new(limits(2));
    p.submit(1, get("/1"));
    p.submit(2, get("/2"));
    let (a, b) = (p.up_of(1), p.up_of(2));
    p.data(a, OK);
    assert!(!p.ups[&a].closed);
    p.m.start_drain(p.now);
    p.pump();
    assert!(p.ups[&a].closed, "idle: closed at once");
    assert!(!p.ups[&b].closed, "busy: kept");
    p.data(b, OK);
    assert_eq!(p.status_of(2), Some(200));
    assert!(p.ups[&b].closed, "closed after its response");
}

#[test]
fn a_connection_of_a_protocol_without_reuse_closes_after_a_keep_alive_response() {
    let mut p = Pair::new(limits(1));
    let once = || Forward {
        reuse: false,
        ..get("/wsgi")
    };
    p.submit(1, once());
    let up = p.up_of(1);
    p.data(up, OK);
    assert_eq!(p.status_of(1), Some(200));
    assert!(p.ups[&up].closed, "never pooled");
    p.submit(2, once());
    assert_eq!(p.connects, 2, "a fresh connection for the next request");
}

fn fastcgi_get() -> Forward {
    Forward {
        fastcgi: true,
        ..get("/x.php")
    }
}

const FCGI_END: super::fastcgi::EndRequest = super::fastcgi::EndRequest {
    app_status: 0,
    protocol_status: super::fastcgi::REQUEST_COMPLETE,
};

#[test]
fn fastcgi_keep_conn_connections_are_pooled_at_every_byte_split() {
    let wire = super::fastcgi::response_records(b"Status: 201\r\n\r\nmade", b"warn\n", 3, FCGI_END);
    for at in 0..=wire.len() {
        let mut p = Pair::new(limits(1));
        p.submit(1, fastcgi_get());
        let up = p.up_of(1);
        p.data(up, &wire[..at]);
        p.data(up, &wire[at..]);
        assert!(
            matches!(p.last(1), Some(ForwardOutcome::Done { keep_alive: true, log }) if log.status == Some(201)),
            "at {at}: {:?}",
            p.last(1)
        );
        let mut rs = ResponseStream::new(64 * 1024);
        rs.feed(&p.outs.0.remove(&1).unwrap());
        assert_eq!(rs.error, None, "at {at}");
        assert_eq!(
            (rs.messages[0].status, &rs.messages[0].body[..]),
            (201, &b"made"[..])
        );
        assert_eq!(
            p.m.poll_app_stderr(),
            Some((0, b"warn\n".to_vec())),
            "at {at}"
        );
        assert_eq!(p.m.poll_app_stderr(), None);
        // The next request goes on the same connection.
        p.submit(2, fastcgi_get());
        assert_eq!(p.up_of(2), up, "at {at}");
        assert_eq!(p.connects, 1);
        let counters = p.m.upstream_states(p.now).next().unwrap().2;
        assert_eq!((counters.requests, counters.reused), (2, 1), "at {at}");
    }
}

#[test]
fn a_fastcgi_response_ends_at_end_request() {
    let wire = super::fastcgi::response_records(b"Content-Length: 2\r\n\r\nok", b"", 64, FCGI_END);
    let mut p = Pair::new(limits(1));
    p.submit(1, fastcgi_get());
    let up = p.up_of(1);
    // The HTTP response is whole, END_REQUEST not yet in: the client waits for the
    // connection's fate before its next request.
    p.data(up, &wire[..wire.len() - 16]);
    assert_eq!(p.last(1), None);
    p.data(up, &wire[wire.len() - 16..]);
    assert!(matches!(p.last(1), Some(ForwardOutcome::Done { .. })));
    assert_eq!(p.open_ups(), vec![up], "pooled");

    // The app answers before it read the whole request: the send is still in flight,
    // so the connection is closed, never reused.
    let mut p = Pair::new(limits(1));
    p.auto_sent = false;
    p.submit(1, fastcgi_get());
    let up = p.up_of(1);
    p.data(up, &wire);
    assert!(matches!(p.last(1), Some(ForwardOutcome::Done { .. })));
    assert_eq!(p.open_ups(), Vec::<UpId>::new());

    // An app that dies after its STDERR: 502, and the STDERR is still logged.
    let mut p = Pair::new(limits(1));
    p.submit(1, fastcgi_get());
    let up = p.up_of(1);
    let died = super::fastcgi::response_records(b"", b"Fatal: no", 64, FCGI_END);
    p.data(up, &died[..died.len() - 24]);
    p.eof(up);
    assert_eq!(p.status_of(1), Some(502));
    assert_eq!(p.m.poll_app_stderr(), Some((0, b"Fatal: no".to_vec())));

    // A slow one: 504 after the timeout.
    let mut p = Pair::new(limits(1));
    p.submit(1, fastcgi_get());
    p.advance(Duration::from_secs(61));
    assert_eq!(p.status_of(1), Some(504));
}

/// HTTP/2: several requests of one client connection, each on its own stream, each with
/// its own upstream connection; one stream reset drops only its request, the connection's
/// close drops the rest (queued ones included).
#[test]
fn streams_of_one_connection_are_separate_requests() {
    use super::machine::client_id;
    let mut p = Pair::new(limits(2));
    let (a, b, c) = (client_id(7, 1), client_id(7, 3), client_id(7, 5));
    p.submit(a, get("/a"));
    p.submit(b, get("/b"));
    p.submit(c, get("/c"));
    let (up_a, up_b) = (p.up_of(a), p.up_of(b));
    assert_ne!(up_a, up_b);
    assert!(
        p.m.connection_of(c).is_none(),
        "the third waits for a connection"
    );
    // An HTTP/1.1 client on the same slot number would be stream 0: a different request.
    assert!(p.m.connection_of(client_id(7, 0)).is_none());
    p.data(up_a, OK);
    assert!(matches!(p.last(a), Some(ForwardOutcome::Done { .. })));
    assert_eq!(
        p.up_of(c),
        up_a,
        "the freed connection takes the queued stream"
    );
    // Stream 3 reset by the client: its connection closes (the response cannot be
    // skipped), nothing else changes.
    p.m.request_gone(p.now, b);
    p.pump();
    assert!(p.ups[&up_b].closed);
    assert!(!p.ups[&up_a].closed);
    assert_eq!(p.up_of(c), up_a);
    // A fourth stream queued behind c, then the whole connection goes.
    let d = client_id(7, 7);
    p.submit(d, get("/d"));
    p.m.client_gone(p.now, 7);
    p.pump();
    assert!(p.ups[&up_a].closed);
    assert!(p.m.connection_of(c).is_none() && p.m.connection_of(d).is_none());
    assert!(
        p.last(c).is_none() && p.last(d).is_none(),
        "no outcome for gone requests"
    );
}

// ---- several upstreams per route ----

const UPSTREAMS: usize = 3;

fn limits_for(upstreams: usize, conns: usize) -> Limits {
    Limits {
        upstreams,
        ..limits(conns)
    }
}

fn route(weights: &[u32], balance: Balance, health: Health) -> RouteSpec {
    RouteSpec {
        members: (weights.iter().enumerate())
            .map(|(upstream, &weight)| Member {
                upstream,
                weight,
                id: hash_bytes(format!("127.0.0.1:{}", 9000 + upstream).as_bytes()),
            })
            .collect(),
        balance,
        check_requests: (0..weights.len())
            .map(|_| check_request("/healthz", "t"))
            .collect(),
        health,
    }
}

fn balanced(weights: &[u32], balance: Balance) -> Pair {
    let spec = route(weights, balance, Health::default());
    Pair::with_routes(limits_for(weights.len(), 4), vec![spec])
}

fn keyed(path: &str, key: &str) -> Forward {
    Forward {
        key: Some(hash_bytes(key.as_bytes())),
        ..get(path)
    }
}

#[test]
fn round_robin_spreads_requests_by_weight() {
    let mut p = balanced(&[5, 1, 1], Balance::RoundRobin);
    p.auto_answer = Some(OK);
    for c in 0..700 {
        p.submit(c, get("/"));
        assert_eq!(p.status_of(c), Some(200));
    }
    assert_eq!(p.requests_per_upstream(UPSTREAMS), [500, 100, 100]);
    // One pooled connection each: the responses came at once.
    assert_eq!(p.connects, 3);
}

#[test]
fn least_conn_sends_to_the_upstream_with_the_fewest_in_flight() {
    let mut p = balanced(&[1, 1, 1], Balance::LeastConn);
    // Three requests in flight, one on each; the one on upstream 1 finishes.
    for c in 0..3 {
        p.submit(c, get("/"));
    }
    assert_eq!(p.requests_per_upstream(UPSTREAMS), [1, 1, 1]);
    let on_1 = (0..3).find(|&c| p.upstream_of[&p.up_of(c)] == 1).unwrap();
    p.data(p.up_of(on_1), OK);
    // The next two both go to upstream 1: after the first it has 1 in flight like the
    // others, and the tie goes round-robin, but the first must be upstream 1.
    p.submit(10, get("/"));
    assert_eq!(p.upstream_of[&p.up_of(10)], 1);
    assert_eq!(p.requests_per_upstream(UPSTREAMS), [1, 2, 1]);
    // Weighted: upstream 0 at weight 3 takes 3 in flight before upstream 1 at weight 1
    // takes a second.
    let mut p = Pair::with_routes(
        limits_for(2, 16),
        vec![route(&[3, 1], Balance::LeastConn, Health::default())],
    );
    for c in 0..8 {
        p.submit(c, get("/"));
    }
    assert_eq!(p.requests_per_upstream(2), [6, 2]);
}

#[test]
fn hashing_keeps_a_key_on_its_upstream_and_moves_only_a_failed_ones_keys() {
    let mut p = balanced(&[1, 1, 1], Balance::Header("x-user".into()));
    p.auto_answer = Some(OK);
    let users: Vec<String> = (0..60).map(|u| format!("user{u}")).collect();
    let mut home = Vec::new();
    for (c, user) in users.iter().enumerate() {
        p.submit(c as ClientId, keyed("/", user));
        home.push(p.served_by(c as ClientId));
    }
    let mut c = 100;
    for _ in 0..3 {
        for (u, user) in users.iter().enumerate() {
            p.submit(c, keyed("/", user));
            assert_eq!(p.served_by(c), home[u], "{user}");
            c += 1;
        }
    }
    assert!(
        (0..3).all(|i| home.contains(&i)),
        "every upstream has keys: {home:?}"
    );
    // Upstream 2 goes away (its pooled connection closes, connects are refused): its
    // keys go elsewhere (no 502), the others stay home.
    p.refuse.insert(2);
    let pooled: Vec<UpId> = (p.open_ups().into_iter())
        .filter(|up| p.upstream_of[up] == 2)
        .collect();
    for up in pooled {
        p.eof(up);
    }
    for (u, user) in users.iter().enumerate() {
        p.submit(c, keyed("/", user));
        assert_eq!(p.status_of(c), Some(200), "{user}");
        let now_on = p.served_by(c);
        if home[u] == 2 {
            assert_ne!(now_on, 2);
        } else {
            assert_eq!(now_on, home[u], "{user} moved");
        }
        c += 1;
    }
}

#[test]
fn a_refused_upstream_is_retried_elsewhere_skipped_and_back_after_fail_timeout() {
    let mut p = balanced(&[1, 1], Balance::RoundRobin);
    p.auto_answer = Some(OK);
    p.refuse.insert(0);
    for c in 0..10 {
        p.submit(c, get("/"));
        assert_eq!(
            p.status_of(c),
            Some(200),
            "never a 502 while upstream 1 is up"
        );
    }
    // One refused connect marked upstream 0 down (max_fails 1): tried once, not again.
    assert_eq!(p.connects_to[&0], 1);
    let Some(ForwardOutcome::Done { log, .. }) = p.last(0) else {
        panic!("{:?}", p.last(0))
    };
    assert_eq!(
        log.tried.iter().collect::<Vec<_>>(),
        [0, 1],
        "both in the log"
    );
    let counters: Vec<_> = p.m.upstream_states(p.now).collect();
    assert_eq!(counters[0].2.failures, 1);
    assert_eq!(counters[0].2.retries, 1);
    assert!(!counters[0].3, "upstream 0 is down");
    // Upstream 0 recovers; after fail_timeout (10 s) it takes requests again.
    p.refuse.clear();
    p.advance(Duration::from_millis(9_900));
    p.submit(20, get("/"));
    assert_eq!(p.requests_per_upstream(2)[0], 0);
    p.advance(Duration::from_millis(100));
    for c in 21..25 {
        p.submit(c, get("/"));
    }
    assert_eq!(p.requests_per_upstream(2)[0], 2, "round-robin again");
}

#[test]
fn with_every_upstream_down_requests_still_try_them() {
    let mut p = balanced(&[1, 1], Balance::RoundRobin);
    p.refuse.extend([0, 1]);
    p.submit(1, get("/"));
    assert_eq!(p.status_of(1), Some(502), "both tried, both refused");
    let Some(ForwardOutcome::Failed { log, .. }) = p.last(1) else {
        panic!()
    };
    assert_eq!(log.tried.len(), 2);
    // Both are marked down now; the next request tries them anyway, and succeeds.
    p.refuse.clear();
    p.auto_answer = Some(OK);
    p.submit(2, get("/"));
    assert_eq!(p.status_of(2), Some(200));
}

#[test]
fn an_idempotent_request_cut_before_its_response_goes_to_another_upstream() {
    let mut p = balanced(&[1, 1], Balance::RoundRobin);
    p.submit(1, get("/"));
    let first = p.up_of(1);
    // The upstream dies mid-request: a fresh connection, no response byte.
    p.eof(first);
    assert_eq!(p.status_of(1), None, "retried, not failed");
    let second = p.up_of(1);
    assert_ne!(p.upstream_of[&first], p.upstream_of[&second]);
    p.data(second, OK);
    assert_eq!(p.status_of(1), Some(200));
    // A POST is not: it may have been acted on.
    p.submit(2, post("/"));
    let up = p.up_of(2);
    p.eof(up);
    assert_eq!(p.status_of(2), Some(502));
}

#[test]
fn a_retry_elsewhere_waits_for_a_place_within_the_cap() {
    let spec = route(&[1, 1], Balance::RoundRobin, Health::default());
    let mut p = Pair::with_routes(limits_for(2, 1), vec![spec]);
    p.submit(1, get("/"));
    p.submit(2, get("/"));
    let (a, b) = (p.up_of(1), p.up_of(2));
    assert_ne!(p.upstream_of[&a], p.upstream_of[&b]);
    // Request 1's upstream dies; upstream b is at its cap of 1: request 1 queues there.
    p.eof(a);
    assert_eq!(p.status_of(1), None);
    assert_eq!(p.m.connection_of(1), None, "queued");
    p.data(b, OK);
    assert_eq!(p.up_of(1), b, "the freed connection takes it");
    p.data(b, OK);
    assert_eq!(p.status_of(1), Some(200));
    assert_eq!(p.peak_open, 2);
}

#[test]
fn health_checks_take_an_upstream_down_after_fall_and_back_after_rise() {
    let check = HealthCheck {
        path: "/healthz".into(),
        interval: Duration::from_secs(1),
        rise: 2,
        fall: 2,
    };
    let health = Health {
        check: Some(check),
        ..Health::default()
    };
    let mut p = Pair::with_routes(
        limits_for(2, 4),
        vec![route(&[1, 1], Balance::RoundRobin, health)],
    );
    let check_of = |p: &Pair, upstream: usize| -> Vec<UpId> {
        let mut v: Vec<UpId> = (p.ups.iter())
            .filter(|(up, u)| {
                p.upstream_of[up] == upstream
                    && !u.closed
                    && u.requests
                        .last()
                        .is_some_and(|r| r.starts_with(b"GET /healthz"))
            })
            .map(|(&up, _)| up)
            .collect();
        v.sort();
        v
    };
    let round = |p: &mut Pair, answer0: &[u8]| {
        p.advance(Duration::from_secs(1));
        let (c0, c1) = (check_of(p, 0), check_of(p, 1));
        assert_eq!((c0.len(), c1.len()), (1, 1), "one check each per interval");
        p.data(c0[0], answer0);
        p.data(c1[0], OK);
        assert!(p.ups[&c0[0]].closed && p.ups[&c1[0]].closed);
    };
    let busy: &[u8] = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
    round(&mut p, busy);
    let up = |p: &Pair| p.m.upstream_states(p.now).map(|s| s.3).collect::<Vec<_>>();
    assert_eq!(up(&p), [true, true], "one failed check of fall 2");
    round(&mut p, busy);
    assert_eq!(up(&p), [false, true]);
    p.auto_answer = Some(OK);
    for c in 0..6 {
        p.submit(c, get("/"));
    }
    assert_eq!(p.requests_per_upstream(2)[0], 2, "only its checks");
    p.auto_answer = None;
    round(&mut p, OK);
    assert_eq!(up(&p), [false, true], "one pass of rise 2");
    round(&mut p, OK);
    assert_eq!(up(&p), [true, true]);
    // A check that never answers fails by its deadline; refused ones fail at once.
    p.advance(Duration::from_secs(1));
    let c0 = check_of(&p, 0);
    p.data(check_of(&p, 1)[0], OK);
    p.advance(Duration::from_secs(1));
    assert!(p.ups[&c0[0]].closed, "timed out");
    p.refuse.insert(0);
    p.advance(Duration::from_secs(1));
    let failures = p.m.upstream_states(p.now).next().unwrap().2.check_failures;
    assert_eq!(failures, 4);
    assert_eq!(up(&p), [false, true]);
}

// ---- tunnels (after a 101) ----

const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

fn upgrade() -> Forward {
    Forward {
        request:
            b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
                .to_vec(),
        idempotent: false,
        reuse: false,
        upgrade: true,
        ..get("/ws")
    }
}

impl Pair {
    /// The client side of `client`'s tunnel: its bytes, half-close, failure.
    fn tunnel(&mut self, client: ClientId, bytes: &[u8], eof: bool) -> Option<TunnelView> {
        let mut input = bytes.to_vec();
        let view = self
            .m
            .tunnel_client(self.now, client, &mut input, eof, false);
        assert!(input.is_empty(), "the machine takes every byte");
        self.pump();
        view
    }

    /// A tunnel for `client` on a fresh connection: its upstream.
    fn open_tunnel(&mut self, client: ClientId) -> UpId {
        self.submit(client, upgrade());
        let up = self.up_of(client);
        self.data(up, SWITCH);
        assert_eq!(self.last(client), Some(ForwardOutcome::Upgraded));
        self.outs.0.remove(&client);
        up
    }

    fn sent_to(&self, up: UpId) -> Vec<u8> {
        self.ups[&up].requests[1..].concat()
    }
}

#[test]
fn bytes_after_the_101_head_reach_the_client_at_every_split() {
    let mut wire = SWITCH.to_vec();
    wire.extend_from_slice(b"\x81\x05hello");
    let mut whole: Option<Vec<u8>> = None;
    for at in 0..=wire.len() {
        let mut p = Pair::new(limits(1));
        p.submit(1, upgrade());
        let up = p.up_of(1);
        p.data(up, &wire[..at]);
        p.data(up, &wire[at..]);
        assert_eq!(p.last(1), Some(ForwardOutcome::Upgraded), "at {at}");
        let out = p.outs.0.remove(&1).unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{text:?}"
        );
        for field in [
            "\r\nUpgrade: websocket\r\n",
            "\r\nConnection: upgrade\r\n",
            "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
        ] {
            assert!(text.contains(field), "{field:?} at {at}: {text:?}");
        }
        assert!(!text.contains("Content-Length") && !text.contains("chunked"));
        assert!(out.ends_with(b"\r\n\r\n\x81\x05hello"), "at {at}: {text:?}");
        assert_eq!(whole.get_or_insert_with(|| out.clone()), &out, "at {at}");
        // From now on, bytes as they come, both ways.
        p.data(up, b"\x81\x01!");
        assert!(p.outs.0[&1].ends_with(b"\x81\x01!"));
        p.tunnel(1, b"client", false);
        assert_eq!(p.sent_to(up), b"client");
    }
}

#[test]
fn a_101_nobody_asked_for_is_502_and_a_refused_upgrade_is_an_ordinary_response() {
    let mut p = Pair::new(limits(2));
    p.submit(1, get("/"));
    let up = p.up_of(1);
    p.data(up, SWITCH);
    assert_eq!(p.status_of(1), Some(502));
    p.submit(2, upgrade());
    let up = p.up_of(2);
    p.data(
        up,
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno",
    );
    assert_eq!(p.status_of(2), Some(400));
    assert!(
        p.ups[&up].closed,
        "an upgrade request's connection is never pooled"
    );
    assert_eq!(p.m.tunnel_stats().opened, 0);
}

#[test]
fn a_tunnel_leaves_the_pool_count_and_is_never_reused() {
    let mut p = Pair::new(limits(1));
    let up = p.open_tunnel(1);
    p.submit(2, get("/next"));
    let next = p.up_of(2);
    assert_ne!(next, up, "a new connection, not a place in the queue");
    p.data(next, OK);
    assert_eq!(p.status_of(2), Some(200));
    p.submit(3, get("/again"));
    assert_eq!(p.up_of(3), next, "the pooled one, never the tunnel");
    let stats = p.m.tunnel_stats();
    assert_eq!((stats.opened, stats.open), (1, 1));
}

#[test]
fn client_bytes_go_up_in_order_and_a_full_upstream_pauses_the_client() {
    let mut p = Pair::new(limits(1));
    let up = p.open_tunnel(1);
    p.auto_sent = false;
    let view = p.tunnel(1, b"one", false).unwrap();
    assert!(view.room);
    assert_eq!(p.ups[&up].sending, 1);
    // While that send is in flight, bytes queue; past the high mark the client pauses.
    let view = p.tunnel(1, &vec![b'x'; PAUSE_AT], false).unwrap();
    assert!(!view.room, "the client must stop being read");
    p.outcomes.clear();
    p.ups.get_mut(&up).unwrap().sending = 0;
    p.m.on_sent(p.now, up);
    p.pump();
    assert_eq!(p.ups[&up].sending, 1, "the queued bytes in one send");
    assert_eq!(p.ups[&up].requests.len(), 3);
    assert_eq!(p.ups[&up].requests[2].len(), PAUSE_AT);
    assert!(
        p.outcomes.is_empty(),
        "still full: nothing to tell the client"
    );
    p.ups.get_mut(&up).unwrap().sending = 0;
    p.m.on_sent(p.now, up);
    p.pump();
    assert_eq!(p.last(1), None);
    assert!(
        p.outcomes.contains(&(1, ForwardOutcome::Progress)),
        "room again: the client is driven"
    );
    assert!(p.tunnel(1, b"", false).unwrap().room);
    assert_eq!(p.m.tunnel_stats().bytes_to_upstream, 3 + PAUSE_AT as u64);
}

#[test]
fn a_full_client_output_pauses_the_upstream_read() {
    let mut p = Pair::new(limits(1));
    let up = p.open_tunnel(1);
    assert!(p.ups[&up].reading);
    p.data(up, &vec![7; PAUSE_AT]);
    assert!(!p.ups[&up].reading, "paused at the high mark");
    p.m.client_drained(1, PAUSE_AT / 2);
    p.pump();
    assert!(!p.ups[&up].reading, "not yet below the low mark");
    p.m.client_drained(1, 0);
    p.pump();
    assert!(p.ups[&up].reading);
    assert_eq!(p.m.tunnel_stats().bytes_to_client, PAUSE_AT as u64);
}

#[test]
fn a_silent_tunnel_is_closed_after_its_idle_timeout() {
    let mut p = Pair::new(Limits {
        tunnel_idle: Duration::from_secs(30),
        ..limits(1)
    });
    let up = p.open_tunnel(1);
    p.advance(Duration::from_secs(29));
    p.data(up, b"ping");
    p.advance(Duration::from_secs(29));
    p.tunnel(1, b"pong", false);
    p.advance(Duration::from_secs(29));
    assert_eq!(
        p.last(1),
        Some(ForwardOutcome::Upgraded),
        "traffic restarts it"
    );
    // Paused or not, silence ends it.
    p.data(up, &vec![0; PAUSE_AT]);
    p.advance(Duration::from_secs(30));
    let Some(ForwardOutcome::Abort { reset: false, log }) = p.last(1) else {
        panic!("{:?}", p.last(1));
    };
    assert_eq!(log.status, Some(101));
    assert_eq!(log.body_bytes, 4 + PAUSE_AT as u64);
    assert!(p.ups[&up].closed);
    assert_eq!(p.m.tunnel_stats().open, 0);
    assert_eq!(p.tunnel(1, b"late", false), None, "the tunnel is gone");
}

#[test]
fn half_closes_cross_over_in_either_order_then_the_tunnel_ends() {
    for client_first in [true, false] {
        let mut p = Pair::new(limits(1));
        let up = p.open_tunnel(1);
        p.auto_sent = false;
        if client_first {
            p.tunnel(1, b"bye", true).unwrap();
            assert!(!p.ups[&up].shut, "not under the send of its last bytes");
            p.ups.get_mut(&up).unwrap().sending = 0;
            p.m.on_sent(p.now, up);
            p.pump();
            assert!(p.ups[&up].shut);
            assert_eq!(
                p.last(1),
                Some(ForwardOutcome::Upgraded),
                "the other way is open"
            );
            p.data(up, b"last words");
            p.eof(up);
        } else {
            p.data(up, b"last words");
            p.eof(up);
            assert!(!p.ups[&up].closed && !p.ups[&up].reading);
            let view = p.tunnel(1, b"bye", false).unwrap();
            assert!(view.upstream_eof, "the client's write side follows");
            p.tunnel(1, b"", true);
            p.ups.get_mut(&up).unwrap().sending = 0;
            p.m.on_sent(p.now, up);
            p.pump();
        }
        let Some(ForwardOutcome::Done { keep_alive, log }) = p.last(1) else {
            panic!("{:?}", p.last(1));
        };
        assert!(!keep_alive);
        assert_eq!((log.status, log.body_bytes), (Some(101), 10));
        assert!(p.ups[&up].shut && p.ups[&up].closed);
        assert_eq!(p.sent_to(up), b"bye");
        assert!(p.outs.0[&1].ends_with(b"last words"));
        assert_eq!(p.m.tunnel_stats().open, 0);
    }
}

#[test]
fn a_failure_on_either_side_ends_the_tunnel() {
    let mut p = Pair::new(limits(1));
    let up = p.open_tunnel(1);
    p.m.on_error(p.now, up, &mut p.outs);
    p.pump();
    assert!(matches!(p.last(1), Some(ForwardOutcome::Abort { .. })));
    assert!(p.ups[&up].closed);
    let up = p.open_tunnel(2);
    let mut none = Vec::new();
    assert_eq!(p.m.tunnel_client(p.now, 2, &mut none, false, true), None);
    p.pump();
    assert!(matches!(p.last(2), Some(ForwardOutcome::Abort { .. })));
    assert!(p.ups[&up].closed);
    // A client that is simply gone: its upstream closes, the count stays right.
    let up = p.open_tunnel(3);
    p.m.client_gone(p.now, 3);
    p.pump();
    assert!(p.ups[&up].closed);
    assert_eq!(p.m.tunnel_stats().open, 0);
    assert_eq!(p.m.tunnel_stats().opened, 3);
}
