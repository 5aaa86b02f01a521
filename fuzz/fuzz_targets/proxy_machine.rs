//! The proxy's sans-IO machine (`uring_server::proxy::machine`): a fuzzed program of
//! events (requests from a few clients, upstream connects and failures, sends completing,
//! response bytes in arbitrary pieces, EOFs, errors, clients draining or leaving, time
//! passing, a drain; HTTP/2 clients with several streams, one of them reset; upgrade
//! requests answered 101, then tunnels: client bytes, half-closes and failures both ways)
//! never panics, never has more pooled upstream connections open than the cap (tunnels
//! are outside it), never sends or shuts down a connection twice at once,
//! never writes a client's output after that client is gone, and never reports on a
//! request nobody made. The route has two upstreams (weights 1 and 2, hashed when the
//! request has a key) with passive health and active checks; the checks' connections are
//! outside the cap, every other connection counts toward its upstream's.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use uring_server::config::{Balance, Health, HealthCheck};
use uring_server::proxy::balance::Member;
use uring_server::proxy::fastcgi;
use uring_server::proxy::health::check_request;
use uring_server::proxy::machine::{
    client_id, conn_of, stream_of, Action, ClientId, ClientOutput, Limits, Machine, RouteSpec, UpId,
};
use uring_server::proxy::request::Forward;
use uring_server::proxy::upstream::ClientSide;

const CAP: usize = 2;
const DATE: &[u8; 29] = b"Thu, 01 Jan 1970 00:00:00 GMT";

#[derive(Default)]
struct Outs {
    bufs: HashMap<ClientId, Vec<u8>>,
    gone: HashSet<ClientId>,
}

impl ClientOutput for Outs {
    type Sink<'a> = &'a mut Vec<u8>;

    fn sink(&mut self, client: ClientId) -> &mut Vec<u8> {
        assert!(
            !self.gone.contains(&client),
            "output written for a client that is gone"
        );
        self.bufs.entry(client).or_default()
    }
}

fuzz_target!(|input: &[u8]| {
    let limits = Limits {
        upstreams: 2,
        conns_per_upstream: CAP,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
        tunnel_idle: Duration::from_secs(60),
    };
    // Route 0 balances the two upstreams; route 1 does not exist (a 502).
    let route = RouteSpec {
        members: (0..2)
            .map(|upstream| Member {
                upstream,
                weight: upstream as u32 + 1,
                id: upstream as u64,
            })
            .collect(),
        balance: Balance::Header("x-user".into()),
        health: Health {
            max_fails: 1,
            fail_timeout: Duration::from_secs(3),
            check: Some(HealthCheck {
                path: "/healthz".into(),
                interval: Duration::from_secs(1),
                rise: 2,
                fall: 2,
            }),
        },
        check_requests: vec![check_request("/healthz", "t"); 2],
    };
    let mut m = Machine::with_routes(limits, vec![route]);
    // Upstream connections with a send in flight (the harness completes them with op 3),
    // and those whose write side was shut.
    let mut sending: HashSet<UpId> = HashSet::new();
    let mut shut: HashSet<UpId> = HashSet::new();
    let mut now = Instant::now();
    let mut outs = Outs::default();
    // Open connections: their upstream, and whether they are a check's.
    let mut open: HashMap<UpId, (usize, bool)> = HashMap::new();
    let mut known: Vec<UpId> = Vec::new();
    // A request is forwarded once until its outcome: an HTTP/1.1 connection (stream 0)
    // has one at a time, an HTTP/2 one one per stream.
    let mut in_flight: HashSet<ClientId> = HashSet::new();
    let mut bytes = input.iter().copied();
    // Each step: an opcode byte and an argument byte; response data takes a length byte
    // and that many bytes.
    while let (Some(op), Some(arg)) = (bytes.next(), bytes.next()) {
        let up = known
            .get(arg as usize % known.len().max(1))
            .copied()
            .unwrap_or(0);
        // The opcode's top bits pick the stream: 0 (HTTP/1.1), or HTTP/2's 1, 3 or 5.
        let stream = match op >> 6 {
            0 => 0,
            n => u32::from(n) * 2 - 1,
        };
        let client = client_id(u32::from(arg % 4), stream);
        match op % 14 {
            0 if in_flight.contains(&client) => {}
            0 => {
                outs.gone.remove(&client);
                in_flight.insert(client);
                let head_only = arg & 0x10 != 0;
                let method = if arg & 0x20 != 0 { "POST" } else { "GET" };
                // An upgrade request (HTTP/1.1, HTTP upstream): a 101 makes a tunnel.
                let upgrade = arg & 0x02 != 0 && stream_of(client) == 0 && arg & 0x04 == 0;
                m.submit(
                    now,
                    client,
                    Forward {
                        // Sometimes an upstream that does not exist: a 502, never a panic.
                        upstream: usize::from(arg & 0x40 != 0),
                        // Sometimes a balancing key (the hash picks), else round-robin.
                        key: (arg & 0x02 != 0).then_some(u64::from(arg)),
                        request: format!("{method} / HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
                        idempotent: method == "GET",
                        // An upstream that closes after each response (uWSGI) or not.
                        reuse: arg & 0x08 == 0 && !upgrade,
                        // A FastCGI upstream: records, not HTTP.
                        fastcgi: arg & 0x04 != 0,
                        upgrade,
                        side: ClientSide {
                            head_only,
                            http10: arg & 0x80 != 0,
                            keep_alive: true,
                        },
                    },
                );
            }
            1 => m.connected(now, up),
            2 => m.connect_failed(now, up, if arg & 1 == 0 { 111 } else { 110 }),
            3 => {
                sending.remove(&up);
                m.on_sent(now, up);
            }
            4 => {
                let n = usize::from(arg);
                let data: Vec<u8> = bytes.by_ref().take(n).collect();
                m.on_data(now, up, &data, DATE, &mut outs);
            }
            5 => m.on_eof(now, up, &mut outs),
            6 => m.on_error(now, up, &mut outs),
            7 => {
                let pending = outs.bufs.get(&client).map_or(0, Vec::len);
                if let Some(b) = outs.bufs.get_mut(&client) {
                    b.clear();
                }
                m.client_drained(client, pending.min(usize::from(arg) << 12));
            }
            8 => {
                let conn = conn_of(client);
                m.client_gone(now, conn);
                let of_conn: Vec<ClientId> = (in_flight.iter().chain(outs.bufs.keys()))
                    .copied()
                    .filter(|c| conn_of(*c) == conn)
                    .collect();
                for c in of_conn.into_iter().chain([client]) {
                    in_flight.remove(&c);
                    outs.gone.insert(c);
                    outs.bufs.remove(&c);
                }
            }
            12 => {
                // One stream reset by its client.
                m.request_gone(now, client);
                in_flight.remove(&client);
                outs.gone.insert(client);
                outs.bufs.remove(&client);
            }
            9 => {
                now += Duration::from_millis(u64::from(arg) * 500);
                m.tick(now);
            }
            10 => m.start_drain(now),
            13 => {
                // A tunnel's client: a few bytes, a half-close, or a failure.
                let mut input = vec![b'c'; usize::from(arg % 8)];
                let (eof, failed) = (arg & 0x10 != 0, arg & 0x20 != 0);
                let _ = m.tunnel_client(now, client, &mut input, eof, failed);
                assert!(input.is_empty(), "client bytes left behind");
            }
            _ => {
                // A canned complete response, so exchanges can finish and reuse happens:
                // HTTP or FastCGI records.
                let r = if arg & 2 != 0 {
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nws".to_vec()
                } else if arg & 1 == 0 {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
                } else {
                    let end = fastcgi::EndRequest {
                        app_status: 0,
                        protocol_status: fastcgi::REQUEST_COMPLETE,
                    };
                    fastcgi::response_records(b"Content-Length: 2\r\n\r\nok", b"e\n", 4, end)
                };
                m.on_data(now, up, &r, DATE, &mut outs);
                while m.poll_app_stderr().is_some() {}
            }
        }
        // Carry out the actions as the worker would.
        while let Some(a) = m.poll_action() {
            match a {
                Action::Connect { up, upstream } => {
                    let check = m.is_check(up);
                    let again = open.insert(up, (upstream, check));
                    assert!(again.is_none(), "connect on an open connection {up}");
                    sending.remove(&up);
                    shut.remove(&up);
                    // Tunnels (after a 101) are outside the cap too.
                    let pooled = (open.iter())
                        .filter(|(id, &(u, c))| u == upstream && !c && !m.is_tunnel(**id))
                        .count();
                    assert!(pooled <= CAP, "{pooled} connections open, cap {CAP}");
                    if !known.contains(&up) {
                        known.push(up);
                    }
                }
                Action::Send { up } => {
                    assert!(open.contains_key(&up), "send on a closed connection {up}");
                    assert!(!shut.contains(&up), "send after shutdown on {up}");
                    if m.is_tunnel(up) {
                        // The request's own send completed before the tunnel's first.
                        assert!(sending.insert(up), "a second send in flight on {up}");
                    }
                    let _ = m.request_bytes(up);
                }
                Action::Shutdown { up } => {
                    assert!(
                        open.contains_key(&up),
                        "shutdown of a closed connection {up}"
                    );
                    assert!(!sending.contains(&up), "shutdown under a send on {up}");
                    assert!(shut.insert(up), "shutdown twice on {up}");
                }
                Action::Read { .. } => {}
                Action::Close { up } => {
                    let was = open.remove(&up);
                    assert!(was.is_some(), "close of a connection not open {up}");
                    m.closed(now, up);
                }
            }
        }
        while let Some((client, outcome)) = m.poll_outcome() {
            use uring_server::proxy::machine::ForwardOutcome as O;
            assert!(
                in_flight.contains(&client),
                "an outcome for client {client} with no request"
            );
            if !matches!(outcome, O::Progress | O::Upgraded) {
                in_flight.remove(&client);
            }
        }
    }
});
