//! HTTP/2 codec workloads shared by the criterion bench (`benches/h2.rs`) and the
//! callgrind driver (`src/bin/h2-rounds.rs`): a typical GET and a small 200 response, a
//! server fed batches of requests, and a client and a server talking in memory.

use std::time::Instant;

use uring_common::h2::frame::{FrameHead, Kind, WindowUpdate};
use uring_common::h2::hpack::Encoder;
use uring_common::h2::{Config, Connection, Event, Events, Field, Role, PREFACE};

/// A browser-like GET (what h2load and curl send, plus the usual browser fields).
pub const REQUEST: &[Field<'static>] = &[
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"www.example.com"),
    (b":path", b"/plaintext"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    (b"accept", b"text/plain,text/html;q=0.9,*/*;q=0.8"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"accept-language", b"en-US,en;q=0.9"),
];

/// The response head: 200 plus three fields (the fourth, date, changes once a second).
pub const RESPONSE: &[Field<'static>] = &[
    (b"server", b"uring-server"),
    (b"content-type", b"text/plain"),
    (b"content-length", b"13"),
    (b"date", b"Tue, 08 Dec 2026 02:00:00 GMT"),
];

pub const BODY: &[u8] = b"Hello, World!";

/// The bytes of `n` GET requests on streams 1, 3, 5... after a client preface, in batches
/// of `batch` requests, each batch followed by a connection WINDOW_UPDATE that pays for
/// the batch's responses. One `Vec` per batch: what one `recv` gets.
pub fn request_batches(n: usize, batch: usize) -> Vec<Vec<u8>> {
    let mut enc = Encoder::new(4096);
    let mut batches = Vec::new();
    let mut cur = PREFACE.to_vec();
    uring_common::h2::frame::Settings::encode(&[], &mut cur);
    let mut block = Vec::new();
    for i in 0..n {
        block.clear();
        enc.start_block(&mut block);
        for &(name, value) in REQUEST {
            enc.field(name, value, false, &mut block);
        }
        let stream = 2 * i as u32 + 1;
        FrameHead::new(Kind::Headers, 0x5, stream, block.len() as u32).encode(&mut cur);
        cur.extend_from_slice(&block);
        if (i + 1) % batch == 0 || i + 1 == n {
            WindowUpdate::encode(0, (batch * BODY.len()) as u32, &mut cur);
            batches.push(std::mem::take(&mut cur));
        }
    }
    batches
}

/// Serve `batches` the way uring-server will: one `recv` per batch, every request answered
/// synchronously while its decoded head is read, one `poll_transmit` per batch. Returns
/// the requests answered and the bytes written. Never inlined: callgrind counts it alone.
#[inline(never)]
pub fn serve(batches: &[Vec<u8>]) -> (usize, usize) {
    let now = Instant::now();
    let config = Config {
        max_concurrent_streams: 1 << 20,
        ..Config::default()
    };
    let mut server = Connection::new(Role::Server, config, now);
    let mut events = Events::new();
    let mut out = Vec::with_capacity(1 << 16);
    let (mut answered, mut written) = (0, 0);
    for b in batches {
        server.recv(b, now, &mut events).expect("valid requests");
        for e in events.iter() {
            if let Event::Headers { stream, pseudo, .. } = *e {
                let path = events.bytes(pseudo.path.expect("a request has a path"));
                debug_assert_eq!(path, b"/plaintext");
                server.send_response(stream, 200, RESPONSE, false).unwrap();
                server.send_data(stream, BODY, true).unwrap();
                answered += 1;
            }
        }
        out.clear();
        server.poll_transmit(&mut out);
        written += out.len();
    }
    (answered, written)
}

/// A client and a server in memory: the client sends one request, the server answers,
/// the client reads the response; `rounds` times over one connection.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    cev: Events,
    sev: Events,
    wire: Vec<u8>,
    now: Instant,
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

impl Pair {
    pub fn new() -> Pair {
        let now = Instant::now();
        let mut p = Pair {
            client: Connection::new(Role::Client, Config::default(), now),
            server: Connection::new(Role::Server, Config::default(), now),
            cev: Events::new(),
            sev: Events::new(),
            wire: Vec::with_capacity(1 << 16),
            now,
        };
        p.cev.set_keep_data(false);
        // Exchange prefaces and SETTINGS (and their ACKs).
        for _ in 0..2 {
            p.flush_client();
            p.flush_server();
        }
        p
    }

    /// The client's queued frames, read by the server.
    fn flush_client(&mut self) {
        self.wire.clear();
        self.client.poll_transmit(&mut self.wire);
        self.server
            .recv(&self.wire, self.now, &mut self.sev)
            .unwrap();
    }

    /// The server's queued frames, read by the client.
    fn flush_server(&mut self) {
        self.wire.clear();
        self.server.poll_transmit(&mut self.wire);
        self.client
            .recv(&self.wire, self.now, &mut self.cev)
            .unwrap();
    }

    /// One request and its response; returns the response body length seen.
    pub fn round(&mut self) -> usize {
        let (m, s, a, p) = (REQUEST[0].1, REQUEST[1].1, REQUEST[2].1, REQUEST[3].1);
        self.client
            .open_stream(m, s, a, p, &REQUEST[4..], true)
            .expect("a stream");
        self.flush_client();
        for e in self.sev.iter() {
            if let Event::Headers { stream, .. } = *e {
                self.server
                    .send_response(stream, 200, RESPONSE, false)
                    .unwrap();
                self.server.send_data(stream, BODY, true).unwrap();
            }
        }
        self.flush_server();
        let mut body = 0;
        for e in self.cev.iter() {
            if let Event::Data { len, .. } = *e {
                body += len as usize;
            }
        }
        // The client's WINDOW_UPDATEs (batched) go back with the next request.
        body
    }
}
