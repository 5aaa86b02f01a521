//! The connection tested in memory: raw frames against one side (one line per RFC rule),
//! a client and a server talking to each other over a virtual clock, and every input fed
//! at every byte split.

use super::*;
use crate::h2::frame::{Setting, DEFAULT_MAX_FRAME_SIZE};
use crate::h2::hpack::Encoder;
use crate::h2::settings::Rate;
use std::time::{Duration, Instant};

// ---- owned views of events and frames ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Headers {
        stream: StreamId,
        kind: HeadersKind,
        pseudo: Vec<(String, String)>,
        fields: Vec<(String, String)>,
        end: bool,
    },
    TooLarge(StreamId),
    Data {
        stream: StreamId,
        bytes: Vec<u8>,
        end: bool,
    },
    Reset {
        stream: StreamId,
        code: ErrorCode,
        by_peer: bool,
        retryable: bool,
    },
    GoAway(StreamId, ErrorCode, String),
    Settings,
    SettingsAcked,
    PingAck([u8; 8]),
    SendReady(StreamId),
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn own(events: &Events) -> Vec<Ev> {
    events
        .iter()
        .map(|e| match *e {
            Event::Headers {
                stream,
                kind,
                pseudo,
                fields,
                end_stream,
                ..
            } => {
                let mut p = Vec::new();
                for (name, span) in [
                    (":method", pseudo.method),
                    (":scheme", pseudo.scheme),
                    (":authority", pseudo.authority),
                    (":path", pseudo.path),
                ] {
                    if let Some(span) = span {
                        p.push((name.to_string(), s(events.bytes(span))));
                    }
                }
                if pseudo.status != 0 {
                    p.push((":status".to_string(), pseudo.status.to_string()));
                }
                Ev::Headers {
                    stream,
                    kind,
                    pseudo: p,
                    fields: events.fields(fields).map(|(n, v)| (s(n), s(v))).collect(),
                    end: end_stream,
                }
            }
            Event::HeadersTooLarge { stream, .. } => Ev::TooLarge(stream),
            Event::Data {
                stream,
                data,
                end_stream,
                ..
            } => Ev::Data {
                stream,
                bytes: events.data(data).to_vec(),
                end: end_stream,
            },
            Event::Reset {
                stream,
                code,
                by_peer,
                retryable,
            } => Ev::Reset {
                stream,
                code,
                by_peer,
                retryable,
            },
            Event::GoAway {
                last_stream,
                code,
                debug,
            } => Ev::GoAway(last_stream, code, s(events.bytes(debug))),
            Event::Settings => Ev::Settings,
            Event::SettingsAcked => Ev::SettingsAcked,
            Event::PingAck { payload } => Ev::PingAck(payload),
            Event::SendReady { stream } => Ev::SendReady(stream),
        })
        .collect()
}

/// Merge adjacent DATA events of one stream: how input was split may change how body
/// bytes are grouped, never which bytes arrive.
fn merged(evs: Vec<Ev>) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in evs {
        if let (
            Some(Ev::Data {
                stream: a,
                bytes,
                end,
            }),
            Ev::Data {
                stream: b,
                bytes: more,
                end: end2,
            },
        ) = (out.last_mut(), &e)
        {
            if *a == *b && !*end {
                bytes.extend_from_slice(more);
                *end = *end2;
                continue;
            }
        }
        out.push(e);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OutFrame {
    kind: Kind,
    flags: u8,
    stream: StreamId,
    payload: Vec<u8>,
}

fn frames_of(mut b: &[u8]) -> Vec<OutFrame> {
    if b.starts_with(PREFACE) {
        b = &b[PREFACE.len()..];
    }
    let mut v = Vec::new();
    while let Some(h) = FrameHead::parse(b) {
        let end = FRAME_HEAD_LEN + h.len as usize;
        v.push(OutFrame {
            kind: h.kind,
            flags: h.flags,
            stream: h.stream,
            payload: b[FRAME_HEAD_LEN..end].to_vec(),
        });
        b = &b[end..];
    }
    assert!(b.is_empty(), "output ends inside a frame");
    v
}

fn rst_of(frames: &[OutFrame]) -> Vec<(StreamId, ErrorCode)> {
    frames
        .iter()
        .filter(|f| f.kind == Kind::RstStream)
        .map(|f| {
            (
                f.stream,
                ErrorCode(u32::from_be_bytes(f.payload[..4].try_into().unwrap())),
            )
        })
        .collect()
}

fn goaway_of(frames: &[OutFrame]) -> Option<(StreamId, ErrorCode)> {
    frames.iter().find(|f| f.kind == Kind::GoAway).map(|f| {
        let last = u32::from_be_bytes(f.payload[..4].try_into().unwrap());
        (
            last,
            ErrorCode(u32::from_be_bytes(f.payload[4..8].try_into().unwrap())),
        )
    })
}

// ---- raw frame building ----

fn frame(kind: u8, flags: u8, stream: StreamId, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHead::new(Kind::from_u8(kind), flags, stream, payload.len() as u32).encode(&mut out);
    out.extend_from_slice(payload);
    out
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PRIORITY: u8 = 2;
const RST: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW: u8 = 8;
const CONT: u8 = 9;
const ES: u8 = flags::END_STREAM;
const EH: u8 = flags::END_HEADERS;

/// A peer that writes frames by hand, with its own HPACK encoder.
struct Raw {
    enc: Encoder,
}

impl Raw {
    fn new() -> Raw {
        Raw {
            enc: Encoder::new(4096),
        }
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        self.enc.start_block(&mut b);
        for (n, v) in fields {
            self.enc.field(n.as_bytes(), v.as_bytes(), false, &mut b);
        }
        b
    }

    fn headers(&mut self, stream: StreamId, flags: u8, fields: &[(&str, &str)]) -> Vec<u8> {
        let b = self.block(fields);
        frame(HEADERS, flags, stream, &b)
    }
}

const GET: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "example.com"),
    (":path", "/"),
];

fn with(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    base.iter().chain(extra).copied().collect()
}

fn settings_frame(list: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in list {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

fn u32be(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

// ---- one side fed raw bytes ----

struct Outcome {
    events: Vec<Ev>,
    result: Result<(), ConnError>,
    frames: Vec<OutFrame>,
    conn: Connection,
}

fn t0() -> Instant {
    Instant::now()
}

/// Feed `input` to a fresh server (after a valid preface and empty SETTINGS).
fn server_run(config: Config, input: &[u8]) -> Outcome {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings_frame(&[]));
    bytes.extend(frame(SETTINGS, flags::ACK, 0, &[]));
    bytes.extend_from_slice(input);
    feed(Connection::new(Role::Server, config, t0()), &[&bytes])
}

fn feed(mut conn: Connection, pieces: &[&[u8]]) -> Outcome {
    let now = t0();
    let mut events = Events::new();
    let mut all = Vec::new();
    let mut result = Ok(());
    for p in pieces {
        result = conn.recv(p, now, &mut events);
        all.extend(own(&events));
        if result.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    Outcome {
        events: merged(all),
        result,
        frames: frames_of(&out),
        conn,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Ok,
    Conn(ErrorCode),
    Stream(StreamId, ErrorCode),
}

fn verdict(o: &Outcome) -> Want {
    if let Err(e) = o.result {
        let (_, code) = goaway_of(&o.frames).expect("a connection error sends GOAWAY");
        assert_eq!(code, e.code);
        return Want::Conn(e.code);
    }
    assert_eq!(goaway_of(&o.frames), None);
    match rst_of(&o.frames).as_slice() {
        [] => Want::Ok,
        [(id, code)] => Want::Stream(*id, *code),
        more => panic!("several resets: {more:?}"),
    }
}

/// What a raw peer sends in one table case.
type Input = Box<dyn Fn(&mut Raw) -> Vec<u8>>;

fn small_windows(c: &mut Config) {
    c.initial_window_size = 100;
    c.connection_window = 65_535;
}

fn big_frames(c: &mut Config) {
    c.max_frame_size = 1 << 17;
    c.connection_window = 65_535;
}

fn one_stream(c: &mut Config) {
    c.max_concurrent_streams = 1;
}

fn no_change(_: &mut Config) {}

use ErrorCode as E;

/// RFC 9113 sections 4-8 on the server side: each line a peer's input and the answer.
#[test]
#[rustfmt::skip]
fn server_rules() {
    type Case = (&'static str, fn(&mut Config), Input, Want);
    let proto = E::PROTOCOL_ERROR;
    let bad_request = |extra: &'static [(&'static str, &'static str)]| -> Input {
        Box::new(move |r: &mut Raw| r.headers(1, EH | ES, extra))
    };
    let cases: Vec<Case> = vec![
        ("valid GET", no_change, Box::new(|r| r.headers(1, EH | ES, GET)), Want::Ok),
        ("DATA on idle stream", no_change, Box::new(|_| frame(DATA, 0, 1, b"x")), Want::Conn(proto)),
        ("HEADERS on even stream", no_change, Box::new(|r| r.headers(2, EH | ES, GET)), Want::Conn(proto)),
        ("stream id below the last", no_change, Box::new(|r| [r.headers(5, EH | ES, GET), r.headers(3, EH | ES, GET)].concat()), Want::Conn(proto)),
        ("HEADERS after peer RST", no_change, Box::new(|r| { [r.headers(1, EH, GET), frame(RST, 0, 1, &u32be(8)), r.headers(1, EH | ES, &[("x", "y")])].concat() }), Want::Conn(E::STREAM_CLOSED)),
        ("DATA after peer RST", no_change, Box::new(|r| { [r.headers(1, EH, GET), frame(RST, 0, 1, &u32be(8)), frame(DATA, ES, 1, b"x")].concat() }), Want::Stream(1, E::STREAM_CLOSED)),
        ("DATA after END_STREAM", no_change, Box::new(|r| [r.headers(1, EH | ES, GET), frame(DATA, 0, 1, b"x")].concat()), Want::Stream(1, E::STREAM_CLOSED)),
        ("HEADERS after END_STREAM", no_change, Box::new(|r| { [r.headers(1, EH | ES, GET), r.headers(1, EH | ES, &[("x", "y")])].concat() }), Want::Stream(1, E::STREAM_CLOSED)),
        ("CONTINUATION without HEADERS", no_change, Box::new(|_| frame(CONT, EH, 1, b"")), Want::Conn(proto)),
        ("HEADERS then DATA before END_HEADERS", no_change, Box::new(|r| [r.headers(1, 0, GET), frame(DATA, ES, 1, b"")].concat()), Want::Conn(proto)),
        ("CONTINUATION on another stream", no_change, Box::new(|r| [r.headers(1, 0, GET), frame(CONT, EH, 3, b"")].concat()), Want::Conn(proto)),
        ("PING inside a field block", no_change, Box::new(|r| [r.headers(1, 0, GET), frame(PING, 0, 0, &[0; 8])].concat()), Want::Conn(proto)),
        ("unknown frame inside a field block", no_change, Box::new(|r| [r.headers(1, 0, GET), frame(0x20, 0, 1, b"")].concat()), Want::Conn(proto)),
        ("HEADERS + CONTINUATION", no_change, Box::new(|r| { let b = r.block(GET); [frame(HEADERS, ES, 1, &b[..3]), frame(CONT, 0, 1, &b[3..5]), frame(CONT, EH, 1, &b[5..])].concat() }), Want::Ok),
        ("trailers without END_STREAM", no_change, Box::new(|r| [r.headers(1, EH, GET), r.headers(1, EH, &[("x", "y")])].concat()), Want::Stream(1, proto)),
        ("trailers with a pseudo-header", no_change, Box::new(|r| { [r.headers(1, EH, GET), r.headers(1, EH | ES, &[(":path", "/")])].concat() }), Want::Stream(1, proto)),
        ("trailers", no_change, Box::new(|r| { [r.headers(1, EH, GET), frame(DATA, 0, 1, b"ab"), r.headers(1, EH | ES, &[("x-sum", "1")])].concat() }), Want::Ok),
        ("missing :method", no_change, bad_request(&[(":scheme", "https"), (":path", "/")]), Want::Stream(1, proto)),
        ("missing :scheme", no_change, bad_request(&[(":method", "GET"), (":path", "/")]), Want::Stream(1, proto)),
        ("missing :path", no_change, bad_request(&[(":method", "GET"), (":scheme", "https")]), Want::Stream(1, proto)),
        ("empty :path", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "")]), Want::Stream(1, proto)),
        ("empty :method", no_change, bad_request(&[(":method", ""), (":scheme", "https"), (":path", "/")]), Want::Stream(1, proto)),
        (":method with a space", no_change, bad_request(&[(":method", "GET /"), (":scheme", "https"), (":path", "/")]), Want::Stream(1, proto)),
        ("relative :path", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "index.html")]), Want::Stream(1, proto)),
        (":path * for GET", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "*")]), Want::Stream(1, proto)),
        (":path * for OPTIONS", no_change, bad_request(&[(":method", "OPTIONS"), (":scheme", "https"), (":path", "*")]), Want::Ok),
        ("relative :path, other scheme", no_change, bad_request(&[(":method", "GET"), (":scheme", "foo"), (":path", "x")]), Want::Ok),
        ("duplicate :path", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), (":path", "/")]), Want::Stream(1, proto)),
        ("unknown pseudo-header", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), (":foo", "x")]), Want::Stream(1, proto)),
        (":status in a request", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), (":status", "200")]), Want::Stream(1, proto)),
        ("pseudo after regular", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), ("x", "y"), (":path", "/")]), Want::Stream(1, proto)),
        ("uppercase name", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("X-Foo", "y")]), Want::Stream(1, proto)),
        ("space in name", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("x foo", "y")]), Want::Stream(1, proto)),
        ("colon in name", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("x:foo", "y")]), Want::Stream(1, proto)),
        ("empty name", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("", "y")]), Want::Stream(1, proto)),
        ("value with CR", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("x", "a\rb")]), Want::Stream(1, proto)),
        ("value with NUL", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("x", "a\0b")]), Want::Stream(1, proto)),
        ("value with leading space", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("x", " a")]), Want::Stream(1, proto)),
        ("value with trailing tab", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("x", "a\t")]), Want::Stream(1, proto)),
        ("connection header", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("connection", "close")]), Want::Stream(1, proto)),
        ("keep-alive header", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("keep-alive", "1")]), Want::Stream(1, proto)),
        ("transfer-encoding", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("transfer-encoding", "chunked")]), Want::Stream(1, proto)),
        ("upgrade", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("upgrade", "h2c")]), Want::Stream(1, proto)),
        ("te: gzip", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("te", "gzip")]), Want::Stream(1, proto)),
        ("te: trailers", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("te", "trailers")]), Want::Ok),
        ("CONNECT", no_change, bad_request(&[(":method", "CONNECT"), (":authority", "a:443")]), Want::Ok),
        ("CONNECT with :path", no_change, bad_request(&[(":method", "CONNECT"), (":authority", "a:443"), (":path", "/")]), Want::Stream(1, proto)),
        ("CONNECT without :authority", no_change, bad_request(&[(":method", "CONNECT")]), Want::Stream(1, proto)),
        ("content-length vs END_STREAM", no_change, bad_request(&[(":method", "POST"), (":scheme", "https"), (":path", "/"), ("content-length", "5")]), Want::Stream(1, proto)),
        ("content-length short body", no_change, Box::new(|r| { [r.headers(1, EH, &with(GET, &[("content-length", "5")])), frame(DATA, ES, 1, b"abc")].concat() }), Want::Stream(1, proto)),
        ("content-length long body", no_change, Box::new(|r| { [r.headers(1, EH, &with(GET, &[("content-length", "2")])), frame(DATA, 0, 1, b"abc")].concat() }), Want::Stream(1, proto)),
        ("content-length exact", no_change, Box::new(|r| { [r.headers(1, EH, &with(GET, &[("content-length", "3")])), frame(DATA, 0, 1, b"ab"), frame(DATA, ES, 1, b"c")].concat() }), Want::Ok),
        ("content-length conflicting", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("content-length", "0"), ("content-length", "1")]), Want::Stream(1, proto)),
        ("content-length not a number", no_change, bad_request(&[(":method", "GET"), (":scheme", "https"), (":path", "/"), ("content-length", "1x")]), Want::Stream(1, proto)),
        ("content-length then trailers short", no_change, Box::new(|r| { [r.headers(1, EH, &with(GET, &[("content-length", "3")])), frame(DATA, 0, 1, b"ab"), r.headers(1, EH | ES, &[("x", "y")])].concat() }), Want::Stream(1, proto)),
        ("WINDOW_UPDATE 0 on a stream", no_change, Box::new(|r| [r.headers(1, EH, GET), frame(WINDOW, 0, 1, &u32be(0))].concat()), Want::Stream(1, proto)),
        ("WINDOW_UPDATE 0 on the connection", no_change, Box::new(|_| frame(WINDOW, 0, 0, &u32be(0))), Want::Conn(proto)),
        ("WINDOW_UPDATE on an idle stream", no_change, Box::new(|_| frame(WINDOW, 0, 1, &u32be(1))), Want::Conn(proto)),
        ("connection window overflow", no_change, Box::new(|_| frame(WINDOW, 0, 0, &u32be(0x7fff_ffff))), Want::Conn(E::FLOW_CONTROL_ERROR)),
        ("stream window overflow", no_change, Box::new(|r| { [r.headers(1, EH, GET), frame(WINDOW, 0, 1, &u32be(0x7fff_ffff))].concat() }), Want::Stream(1, E::FLOW_CONTROL_ERROR)),
        ("initial window 2^31", no_change, Box::new(|_| settings_frame(&[(4, 0x8000_0000)])), Want::Conn(E::FLOW_CONTROL_ERROR)),
        ("initial window change overflows a stream", no_change, Box::new(|r| { [r.headers(1, EH, GET), frame(WINDOW, 0, 1, &u32be(0x7fff_ffff - 65_535)), settings_frame(&[(4, 65_536)])].concat() }), Want::Conn(E::FLOW_CONTROL_ERROR)),
        ("DATA beyond the stream window", small_windows, Box::new(|r| [r.headers(1, EH, GET), frame(DATA, 0, 1, &[0; 101])].concat()), Want::Stream(1, E::FLOW_CONTROL_ERROR)),
        ("DATA within the stream window", small_windows, Box::new(|r| [r.headers(1, EH, GET), frame(DATA, 0, 1, &[0; 100])].concat()), Want::Ok),
        ("DATA beyond the connection window", big_frames, Box::new(|r| [r.headers(1, EH, GET), frame(DATA, 0, 1, &vec![0; 65_536])].concat()), Want::Conn(E::FLOW_CONTROL_ERROR)),
        ("frame above max frame size", no_change, Box::new(|_| frame(0x21, 0, 0, &vec![0; DEFAULT_MAX_FRAME_SIZE as usize + 1])), Want::Conn(E::FRAME_SIZE_ERROR)),
        ("PUSH_PROMISE to a server", no_change, Box::new(|r| [r.headers(1, EH, GET), frame(PUSH, EH, 1, &u32be(2))].concat()), Want::Conn(proto)),
        ("RST_STREAM on an idle stream", no_change, Box::new(|_| frame(RST, 0, 1, &u32be(8))), Want::Conn(proto)),
        ("RST_STREAM length 3", no_change, Box::new(|r| [r.headers(1, EH, GET), frame(RST, 0, 1, &[0, 0, 8])].concat()), Want::Conn(E::FRAME_SIZE_ERROR)),
        ("PRIORITY on an idle stream", no_change, Box::new(|_| frame(PRIORITY, 0, 9, &[0, 0, 0, 1, 16])), Want::Ok),
        ("PRIORITY on itself", no_change, Box::new(|_| frame(PRIORITY, 0, 9, &[0, 0, 0, 9, 16])), Want::Stream(9, proto)),
        ("PRIORITY length 4", no_change, Box::new(|_| frame(PRIORITY, 0, 9, &[0, 0, 0, 1])), Want::Stream(9, E::FRAME_SIZE_ERROR)),
        ("HEADERS depending on itself", no_change, Box::new(|r| { let b = r.block(GET); let mut p = vec![0, 0, 0, 1, 16]; p.extend(b); frame(HEADERS, EH | ES | flags::PRIORITY, 1, &p)}), Want::Stream(1, proto)),
        ("HEADERS with priority", no_change, Box::new(|r| { let b = r.block(GET); let mut p = vec![0, 0, 0, 0, 16]; p.extend(b); frame(HEADERS, EH | ES | flags::PRIORITY, 1, &p)}), Want::Ok),
        ("padded HEADERS", no_change, Box::new(|r| { let b = r.block(GET); let mut p = vec![3]; p.extend(b); p.extend([0; 3]); frame(HEADERS, EH | ES | flags::PADDED, 1, &p)}), Want::Ok),
        ("padded DATA", no_change, Box::new(|r| { [r.headers(1, EH, GET), frame(DATA, ES | flags::PADDED, 1, &[2, b'x', 0, 0])].concat() }), Want::Ok),
        ("DATA padding too long", no_change, Box::new(|r| { [r.headers(1, EH, GET), frame(DATA, flags::PADDED, 1, &[4, b'x', 0, 0])].concat() }), Want::Conn(proto)),
        ("SETTINGS ACK with payload", no_change, Box::new(|_| frame(SETTINGS, 1, 0, &[0, 1, 0, 0, 0, 0])), Want::Conn(E::FRAME_SIZE_ERROR)),
        ("SETTINGS on a stream", no_change, Box::new(|_| frame(SETTINGS, 0, 1, &[])), Want::Conn(proto)),
        ("SETTINGS bad max frame size", no_change, Box::new(|_| settings_frame(&[(5, 100)])), Want::Conn(proto)),
        ("unknown setting", no_change, Box::new(|_| settings_frame(&[(0x99, 1)])), Want::Ok),
        ("unknown frame type", no_change, Box::new(|_| frame(0x42, 0xff, 0, b"whatever")), Want::Ok),
        ("PING length 7", no_change, Box::new(|_| frame(PING, 0, 0, &[0; 7])), Want::Conn(E::FRAME_SIZE_ERROR)),
        ("GOAWAY on a stream", no_change, Box::new(|_| frame(GOAWAY, 0, 1, &[0; 8])), Want::Conn(proto)),
        ("HPACK garbage", no_change, Box::new(|_| frame(HEADERS, EH | ES, 1, &[0x80])), Want::Conn(E::COMPRESSION_ERROR)),
        ("HPACK size update above our setting", no_change, Box::new(|_| frame(HEADERS, EH | ES, 1, &[0x3f, 0xe2, 0x1f, 0x82])), Want::Conn(E::COMPRESSION_ERROR)),
        ("beyond max concurrent streams", one_stream, Box::new(|r| [r.headers(1, EH, GET), r.headers(3, EH | ES, GET)].concat()), Want::Stream(3, E::REFUSED_STREAM)),
        ("half-closed streams count toward the limit", one_stream, Box::new(|r| [r.headers(1, EH | ES, GET), r.headers(3, EH | ES, GET)].concat()), Want::Stream(3, E::REFUSED_STREAM)),
    ];
    for (name, config, input, want) in &cases {
        let mut c = Config::default();
        config(&mut c);
        let bytes = input(&mut Raw::new());
        let got = verdict(&server_run(c, &bytes));
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn an_invalid_field_stays_invalid_when_indexed() {
    // The first request inserts "x: a<CR>b" into the table; the second sends it as a
    // one-byte index. Both are malformed: the table remembers what it checked.
    let mut r = Raw::new();
    let bad = with(GET, &[("x", "a\rb")]);
    let first = r.headers(1, EH | ES, &bad);
    let second = r.headers(3, EH | ES, &bad);
    assert!(second.len() < 16, "the second block is indexed");
    let o = server_run(Config::default(), &[first, second].concat());
    assert_eq!(
        rst_of(&o.frames),
        [(1, E::PROTOCOL_ERROR), (3, E::PROTOCOL_ERROR)]
    );
    // And a valid indexed field passes.
    let mut r = Raw::new();
    let good = with(GET, &[("x", "ab")]);
    let input = [r.headers(1, EH | ES, &good), r.headers(3, EH | ES, &good)].concat();
    assert_eq!(verdict(&server_run(Config::default(), &input)), Want::Ok);
}

#[test]
fn preface_rules() {
    let o = feed(
        Connection::new(Role::Server, Config::default(), t0()),
        &[b"GET / HTTP/1.1\r\n\r\n"],
    );
    assert_eq!(verdict(&o), Want::Conn(E::PROTOCOL_ERROR));
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(PING, 0, 0, &[0; 8]));
    let o = feed(
        Connection::new(Role::Server, Config::default(), t0()),
        &[&bytes],
    );
    assert_eq!(verdict(&o), Want::Conn(E::PROTOCOL_ERROR));
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(SETTINGS, 1, 0, &[]));
    let o = feed(
        Connection::new(Role::Server, Config::default(), t0()),
        &[&bytes],
    );
    assert_eq!(verdict(&o), Want::Conn(E::PROTOCOL_ERROR));
    // Our own preface: SETTINGS first, then the connection window raised in one update.
    let mut c = Connection::new(Role::Client, Config::default(), t0());
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert!(out.starts_with(PREFACE));
    let f = frames_of(&out);
    assert_eq!((f[0].kind, f[0].flags), (Kind::Settings, 0));
    assert!(
        f[0].payload.chunks(6).any(|p| p == [0, 2, 0, 0, 0, 0]),
        "client disables push"
    );
    assert_eq!(f[1].kind, Kind::WindowUpdate);
    assert_eq!(f[1].payload, u32be((16 << 20) - 65_535));
    assert_eq!(f.len(), 2);
}

// ---- client side against raw server bytes ----

/// A client that opened stream 1 (GET, or `method`) and got the server's SETTINGS.
fn client_with_stream(method: &str) -> Connection {
    let mut c = Connection::new(Role::Client, Config::default(), t0());
    let id = c
        .open_stream(method.as_bytes(), b"https", b"example.com", b"/", &[], true)
        .unwrap();
    assert_eq!(id, 1);
    let mut ev = Events::new();
    c.recv(&settings_frame(&[]), t0(), &mut ev).unwrap();
    let mut sink = Vec::new();
    c.poll_transmit(&mut sink);
    c
}

fn client_run(method: &str, input: &[u8]) -> Outcome {
    feed(client_with_stream(method), &[input])
}

#[test]
#[rustfmt::skip]
fn client_rules() {
    let proto = E::PROTOCOL_ERROR;
    type Case = (&'static str, &'static str, Input, Want);
    let ok200: &[(&str, &str)] = &[(":status", "200")];
    let cases: Vec<Case> = vec![
        ("200 with body", "GET", Box::new(move |r| [r.headers(1, EH, ok200), frame(DATA, ES, 1, b"hi")].concat()), Want::Ok),
        ("missing :status", "GET", Box::new(|r| r.headers(1, EH | ES, &[("x", "y")])), Want::Stream(1, proto)),
        (":status not 3 digits", "GET", Box::new(|r| r.headers(1, EH | ES, &[(":status", "20")])), Want::Stream(1, proto)),
        ("101", "GET", Box::new(|r| r.headers(1, EH | ES, &[(":status", "101")])), Want::Stream(1, proto)),
        ("request pseudo in response", "GET", Box::new(|r| r.headers(1, EH | ES, &[(":status", "200"), (":path", "/")])), Want::Stream(1, proto)),
        ("100 then 200", "GET", Box::new(move |r| { [r.headers(1, EH, &[(":status", "100")]), r.headers(1, EH | ES, ok200)].concat() }), Want::Ok),
        ("1xx with END_STREAM", "GET", Box::new(|r| r.headers(1, EH | ES, &[(":status", "103")])), Want::Stream(1, proto)),
        ("DATA before HEADERS", "GET", Box::new(|_| frame(DATA, ES, 1, b"x")), Want::Stream(1, proto)),
        ("HEADERS on our idle stream", "GET", Box::new(move |r| r.headers(3, EH | ES, ok200)), Want::Conn(proto)),
        ("HEADERS on an even stream", "GET", Box::new(move |r| r.headers(2, EH | ES, ok200)), Want::Conn(proto)),
        ("PUSH_PROMISE", "GET", Box::new(|r| { let b = r.block(GET); let mut p = u32be(2); p.extend(b); frame(PUSH, EH, 1, &p)}), Want::Conn(proto)),
        ("SETTINGS_ENABLE_PUSH 1", "GET", Box::new(|_| settings_frame(&[(2, 1)])), Want::Conn(proto)),
        ("content-length mismatch", "GET", Box::new(|r| { [r.headers(1, EH, &[(":status", "200"), ("content-length", "5")]), frame(DATA, ES, 1, b"hi")].concat() }), Want::Stream(1, proto)),
        ("HEAD response with content-length", "HEAD", Box::new(|r| r.headers(1, EH | ES, &[(":status", "200"), ("content-length", "5")])), Want::Ok),
        ("304 with content-length", "GET", Box::new(|r| r.headers(1, EH | ES, &[(":status", "304"), ("content-length", "5")])), Want::Ok),
        ("trailers", "GET", Box::new(move |r| { [r.headers(1, EH, ok200), frame(DATA, 0, 1, b"hi"), r.headers(1, EH | ES, &[("grpc-status", "0")])].concat() }), Want::Ok),
        ("RST_STREAM from the server", "GET", Box::new(|_| frame(RST, 0, 1, &u32be(2))), Want::Ok),
    ];
    for (name, method, input, want) in &cases {
        let bytes = input(&mut Raw::new());
        let got = verdict(&client_run(method, &bytes));
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn client_events() {
    let mut r = Raw::new();
    let input = [
        r.headers(1, EH, &[(":status", "103"), ("link", "</a>")]),
        r.headers(1, EH, &[(":status", "200"), ("content-type", "text/plain")]),
        frame(DATA, 0, 1, b"hello "),
        frame(DATA, flags::PADDED, 1, &[1, b'w', 0]),
        r.headers(1, EH | ES, &[("x-trailer", "t")]),
    ]
    .concat();
    let o = client_run("GET", &input);
    assert_eq!(verdict(&o), Want::Ok);
    let h = |kind, pseudo: &[(&str, &str)], fields: &[(&str, &str)], end| Ev::Headers {
        stream: 1,
        kind,
        pseudo: pseudo
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        fields: fields
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        end,
    };
    assert_eq!(
        o.events,
        vec![
            h(
                HeadersKind::Informational,
                &[(":status", "103")],
                &[("link", "</a>")],
                false
            ),
            h(
                HeadersKind::Response,
                &[(":status", "200")],
                &[("content-type", "text/plain")],
                false
            ),
            Ev::Data {
                stream: 1,
                bytes: b"hello w".to_vec(),
                end: false
            },
            h(HeadersKind::Trailers, &[], &[("x-trailer", "t")], true),
        ]
    );
    assert_eq!(o.conn.active_streams(), 0);

    // A refused stream and GOAWAY below our streams: retryable.
    let mut c = client_with_stream("GET");
    for _ in 0..2 {
        c.open_stream(b"GET", b"https", b"example.com", b"/", &[], true)
            .unwrap();
    }
    let input = [
        frame(RST, 0, 1, &u32be(7)),
        frame(GOAWAY, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0, b'b', b'y', b'e']),
    ]
    .concat();
    let o = feed(c, &[&input]);
    let reset = |stream, code, retryable| Ev::Reset {
        stream,
        code,
        by_peer: true,
        retryable,
    };
    assert_eq!(
        o.events,
        vec![
            reset(1, E::REFUSED_STREAM, true),
            reset(5, E::REFUSED_STREAM, true),
            Ev::GoAway(3, E::NO_ERROR, "bye".into()),
        ]
    );
    let mut c = o.conn;
    assert_eq!(c.active_streams(), 1);
    assert!(!c.can_open_stream());
    assert_eq!(
        c.open_stream(b"GET", b"https", b"a", b"/", &[], true),
        Err(SendError::GoingAway)
    );
}

// ---- a client and a server talking ----

struct Pair {
    client: Connection,
    server: Connection,
    now: Instant,
    cev: Events,
    sev: Events,
    /// Everything each side reported, in order.
    client_log: Vec<Ev>,
    server_log: Vec<Ev>,
    /// Frames each side sent.
    client_sent: Vec<OutFrame>,
    server_sent: Vec<OutFrame>,
}

impl Pair {
    fn new(client: Config, server: Config) -> Pair {
        let now = t0();
        let mut p = Pair {
            client: Connection::new(Role::Client, client, now),
            server: Connection::new(Role::Server, server, now),
            now,
            cev: Events::new(),
            sev: Events::new(),
            client_log: Vec::new(),
            server_log: Vec::new(),
            client_sent: Vec::new(),
            server_sent: Vec::new(),
        };
        p.drive();
        p
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Move bytes both ways until neither side has anything to send.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            let mut buf = Vec::new();
            self.client.poll_transmit(&mut buf);
            if !buf.is_empty() {
                moved = true;
                self.client_sent.extend(frames_of(&buf));
                self.server.recv(&buf, self.now, &mut self.sev).unwrap();
                self.server_log.extend(own(&self.sev));
            }
            let mut buf = Vec::new();
            self.server.poll_transmit(&mut buf);
            if !buf.is_empty() {
                moved = true;
                self.server_sent.extend(frames_of(&buf));
                self.client.recv(&buf, self.now, &mut self.cev).unwrap();
                self.client_log.extend(own(&self.cev));
            }
            if !moved {
                break;
            }
        }
    }
}

fn hdr(
    kind: HeadersKind,
    stream: StreamId,
    pseudo: &[(&str, &str)],
    fields: &[(&str, &str)],
    end: bool,
) -> Ev {
    Ev::Headers {
        stream,
        kind,
        pseudo: pseudo
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        fields: fields
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        end,
    }
}

#[test]
fn request_response_round_trip() {
    let mut p = Pair::new(Config::default(), Config::default());
    assert_eq!(p.client_log, vec![Ev::Settings, Ev::SettingsAcked]);
    assert_eq!(p.server_log, vec![Ev::Settings, Ev::SettingsAcked]);
    let id = p
        .client
        .open_stream(
            b"POST",
            b"https",
            b"example.com",
            b"/upload",
            &[(b"content-type", b"text/plain")],
            false,
        )
        .unwrap();
    assert_eq!(p.client.send_data(id, b"body", false), Ok(4));
    p.client.send_trailers(id, &[(b"x-check", b"1")]).unwrap();
    p.drive();
    let req = [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", "/upload"),
    ];
    assert_eq!(
        p.server_log[2..],
        [
            hdr(
                HeadersKind::Request,
                1,
                &req,
                &[("content-type", "text/plain")],
                false
            ),
            Ev::Data {
                stream: 1,
                bytes: b"body".to_vec(),
                end: false
            },
            hdr(HeadersKind::Trailers, 1, &[], &[("x-check", "1")], true),
        ]
    );
    let response: &[Field<'_>] = &[
        (b"server", b"uring-server"),
        (b"content-type", b"text/plain"),
        (b"content-length", b"5"),
    ];
    p.server.send_response(1, 200, response, false).unwrap();
    assert_eq!(p.server.send_data(1, b"hello", true), Ok(5));
    p.drive();
    let resp_fields = [
        ("server", "uring-server"),
        ("content-type", "text/plain"),
        ("content-length", "5"),
    ];
    assert_eq!(
        p.client_log[2..],
        [
            hdr(
                HeadersKind::Response,
                1,
                &[(":status", "200")],
                &resp_fields,
                false
            ),
            Ev::Data {
                stream: 1,
                bytes: b"hello".to_vec(),
                end: true
            },
        ]
    );
    assert_eq!(
        (p.client.active_streams(), p.server.active_streams()),
        (0, 0)
    );

    // The second exchange: the response head costs 4 bytes (3 indexed fields + :status).
    let first_head = p
        .server_sent
        .iter()
        .find(|f| f.kind == Kind::Headers)
        .unwrap()
        .payload
        .len();
    let id = p
        .client
        .open_stream(b"GET", b"https", b"example.com", b"/upload", &[], true)
        .unwrap();
    assert_eq!(id, 3);
    p.drive();
    p.server.send_response(3, 200, response, false).unwrap();
    p.server.send_data(3, b"hello", true).unwrap();
    p.drive();
    let heads: Vec<_> = p
        .server_sent
        .iter()
        .filter(|f| f.kind == Kind::Headers)
        .collect();
    assert_eq!(heads[1].payload.len(), 4, "first was {first_head}");
    let req_heads: Vec<_> = p
        .client_sent
        .iter()
        .filter(|f| f.kind == Kind::Headers && f.stream == 3)
        .collect();
    assert!(
        req_heads[0].payload.len() <= 5,
        "{:?}",
        req_heads[0].payload
    );
}

#[test]
fn large_header_block_uses_continuation() {
    let roomy = Config {
        max_header_list_size: 64 << 10,
        ..Config::default()
    };
    let mut p = Pair::new(Config::default(), roomy);
    let big = "v".repeat(40_000);
    p.client
        .open_stream(
            b"GET",
            b"https",
            b"example.com",
            b"/",
            &[(b"x-big", big.as_bytes())],
            true,
        )
        .unwrap();
    p.drive();
    let kinds: Vec<Kind> = p
        .client_sent
        .iter()
        .filter(|f| f.stream == 1)
        .map(|f| f.kind)
        .collect();
    assert_eq!(
        kinds,
        [Kind::Headers, Kind::Continuation, Kind::Continuation]
    );
    let Some(Ev::Headers { fields, .. }) = p.server_log.last() else {
        panic!()
    };
    assert_eq!(fields[0].1.len(), 40_000);
}

#[test]
fn flow_control_large_body_with_batched_updates() {
    let small = Config {
        initial_window_size: 65_535,
        connection_window: 65_535,
        ..Config::default()
    };
    let mut p = Pair::new(small, Config::default());
    let id = p
        .client
        .open_stream(b"GET", b"https", b"a", b"/big", &[], true)
        .unwrap();
    p.drive();
    p.server.send_response(id, 200, &[], false).unwrap();
    let body: Vec<u8> = (0..(1u32 << 20)).map(|i| i as u8).collect();
    let mut sent = 0;
    let mut rounds = 0;
    while sent < body.len() {
        let cap = p.server.send_capacity(id);
        let n = p.server.send_data(id, &body[sent..], true).unwrap();
        assert!(n <= cap, "never beyond the windows");
        sent += n;
        if sent < body.len() {
            assert!(p.server.stalled_for(id, p.now).is_some());
        }
        p.drive();
        rounds += 1;
        assert!(rounds < 1000);
    }
    let got: Vec<u8> = p
        .client_log
        .iter()
        .filter_map(|e| match e {
            Ev::Data { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(got, body);
    assert!(p.server_log.contains(&Ev::SendReady(id)));
    // DATA frames never exceed the peer's max frame size.
    assert!(p
        .server_sent
        .iter()
        .filter(|f| f.kind == Kind::Data)
        .all(|f| f.payload.len() <= 16_384));
    // WINDOW_UPDATEs come per half window, not per DATA frame: 1 MiB over a 64 KiB window
    // needs 32 per level, against 64 DATA frames.
    let updates = |stream: bool| {
        p.client_sent
            .iter()
            .filter(|f| f.kind == Kind::WindowUpdate && (f.stream != 0) == stream)
            .count()
    };
    let data_frames = p
        .server_sent
        .iter()
        .filter(|f| f.kind == Kind::Data)
        .count();
    assert!(data_frames >= 64);
    assert!(updates(true) <= 33, "{} stream updates", updates(true));
    assert!(
        updates(false) <= 33,
        "{} connection updates",
        updates(false)
    );
}

#[test]
fn manual_release_holds_the_peer_back() {
    let manual = Config {
        initial_window_size: 65_535,
        connection_window: 65_535,
        auto_release_window: false,
        ..Config::default()
    };
    let mut p = Pair::new(manual, Config::default());
    let id = p
        .client
        .open_stream(b"GET", b"https", b"a", b"/", &[], true)
        .unwrap();
    p.drive();
    p.server.send_response(id, 200, &[], false).unwrap();
    let body = vec![7u8; 200_000];
    let mut sent = p.server.send_data(id, &body, true).unwrap();
    p.drive();
    // Nothing released: the server is stuck at one window.
    assert_eq!(sent, 65_535);
    assert_eq!(p.server.send_data(id, &body[sent..], true), Ok(0));
    assert!(!p
        .client_sent
        .iter()
        .any(|f| f.kind == Kind::WindowUpdate && f.stream == id));
    // The caller consumes in small steps; updates go out per half window.
    let mut released = 0;
    while sent < body.len() {
        p.client.release_capacity(id, 10_000);
        released += 10_000;
        p.drive();
        sent += p.server.send_data(id, &body[sent..], true).unwrap();
        p.drive();
        assert!(
            sent <= released + 65_535,
            "{sent} sent, {released} released"
        );
    }
    let got: usize = p
        .client_log
        .iter()
        .map(|e| match e {
            Ev::Data { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(got, body.len());
    let updates = p
        .client_sent
        .iter()
        .filter(|f| f.kind == Kind::WindowUpdate)
        .count();
    assert!(updates <= 2 * 200_000 / 30_000 + 2, "{updates} updates");
    // Releasing more than was received grants no more than was received: a window
    // never grows past what we advertised (the peer would see FLOW_CONTROL_ERROR).
    let before = p.client_sent.len();
    p.client.release_capacity(id, 1 << 30);
    p.drive();
    let granted: u32 = p.client_sent[before..]
        .iter()
        .filter(|f| f.kind == Kind::WindowUpdate)
        .map(|f| u32::from_be_bytes(f.payload[..4].try_into().unwrap()))
        .sum();
    assert!(granted as usize <= body.len(), "{granted} granted");
    let after = p.client_sent.len();
    p.client.release_capacity(id, 1 << 30);
    p.drive();
    assert_eq!(p.client_sent.len(), after, "nothing left to release");
}

#[test]
fn initial_window_change_adjusts_open_streams() {
    let mut r = Raw::new();
    let input = r.headers(1, EH | ES, GET);
    let mut o = server_run(Config::default(), &input);
    assert_eq!(o.conn.send_capacity(1), 65_535);
    let mut ev = Events::new();
    o.conn.send_response(1, 200, &[], false).unwrap();
    assert_eq!(o.conn.send_data(1, &[0; 1000], false), Ok(1000));
    o.conn
        .recv(&settings_frame(&[(4, 1000)]), t0(), &mut ev)
        .unwrap();
    // 1000 - 65535 + 64535 sent... the window is now 1000 - 1000 = 0.
    assert_eq!(o.conn.send_capacity(1), 0);
    assert_eq!(o.conn.send_data(1, &[0; 10], false), Ok(0));
    o.conn
        .recv(&settings_frame(&[(4, 500)]), t0(), &mut ev)
        .unwrap();
    assert_eq!(o.conn.send_capacity(1), 0);
    // Negative now (-500): a WINDOW_UPDATE of 600 leaves 100.
    o.conn
        .recv(&frame(WINDOW, 0, 1, &u32be(600)), t0(), &mut ev)
        .unwrap();
    assert_eq!(o.conn.send_capacity(1), 100);
    assert_eq!(own(&ev), vec![Ev::SendReady(1)]);
    o.conn
        .recv(&settings_frame(&[(4, 2000)]), t0(), &mut ev)
        .unwrap();
    assert_eq!(o.conn.send_capacity(1), 1600);
    assert_eq!(own(&ev), vec![Ev::SendReady(1), Ev::Settings]);
}

#[test]
fn ping_settings_and_goaway() {
    let mut p = Pair::new(Config::default(), Config::default());
    p.client.ping(*b"12345678");
    p.drive();
    assert_eq!(p.client_log.last(), Some(&Ev::PingAck(*b"12345678")));
    assert!(p
        .server_sent
        .iter()
        .any(|f| f.kind == Kind::Ping && f.flags == flags::ACK));
    // Graceful shutdown: stream 1 in flight finishes, stream 3 sent after is refused.
    let one = p
        .client
        .open_stream(b"GET", b"https", b"a", b"/", &[], true)
        .unwrap();
    p.drive();
    p.server.goaway(E::NO_ERROR);
    let three = p
        .client
        .open_stream(b"GET", b"https", b"a", b"/", &[], true)
        .unwrap();
    p.drive();
    assert_eq!(p.server.last_processed(), one);
    assert!(p.client_log.contains(&Ev::Reset {
        stream: three,
        code: E::REFUSED_STREAM,
        by_peer: true,
        retryable: true
    }));
    assert!(p
        .client_log
        .contains(&Ev::GoAway(one, E::NO_ERROR, String::new())));
    assert!(!p.server.is_closed());
    p.server.send_response(one, 204, &[], true).unwrap();
    p.drive();
    assert!(p.server.is_closed() && p.client.is_closed());
    assert_eq!(p.server.counters().streams_opened, 1);
    // Frames the client sent on stream 3 before it saw the GOAWAY are ignored, not reset.
    let mut ev = Events::new();
    p.server
        .recv(&frame(DATA, ES, three, b"late"), p.now, &mut ev)
        .unwrap();
    let mut out = Vec::new();
    p.server.poll_transmit(&mut out);
    assert!(rst_of(&frames_of(&out)).is_empty());
    assert!(ev.is_empty());
}

#[test]
fn settings_timeout_and_idle_timeout() {
    let mut c = Connection::new(
        Role::Server,
        Config {
            idle_timeout: Some(Duration::from_secs(30)),
            ..Config::default()
        },
        t0(),
    );
    let start = t0();
    let deadline = c.poll_timeout().unwrap();
    assert!(deadline <= start + Duration::from_secs(10));
    assert_eq!(c.on_timeout(deadline - Duration::from_millis(1)), Ok(()));
    let e = c.on_timeout(deadline).unwrap_err();
    assert_eq!(e.code, E::SETTINGS_TIMEOUT);
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(goaway_of(&frames_of(&out)).unwrap().1, E::SETTINGS_TIMEOUT);
    assert!(c.is_closed());

    let mut p = Pair::new(
        Config::default(),
        Config {
            idle_timeout: Some(Duration::from_secs(30)),
            ..Config::default()
        },
    );
    let t = p.server.poll_timeout().unwrap();
    assert!(t > p.now + Duration::from_secs(29));
    p.advance(Duration::from_secs(31));
    p.server.on_timeout(p.now).unwrap();
    p.drive();
    assert!(p
        .client_log
        .contains(&Ev::GoAway(0, E::NO_ERROR, String::new())));
    assert!(p.server.is_closed());
}

#[test]
fn zero_window_reader_is_visible_and_bounded() {
    // The client never opens its windows beyond the defaults and never reads.
    let tight = Config {
        initial_window_size: 65_535,
        connection_window: 65_535,
        ..Config::default()
    };
    let mut p = Pair::new(tight, Config::default());
    let id = p
        .client
        .open_stream(b"GET", b"https", b"a", b"/", &[], true)
        .unwrap();
    p.drive();
    p.server.send_response(id, 200, &[], false).unwrap();
    let big = vec![0u8; 1 << 20];
    assert_eq!(p.server.send_data(id, &big, false), Ok(65_535));
    assert_eq!(p.server.send_data(id, &big, false), Ok(0));
    // The output holds what the window allowed, never the megabyte.
    assert!(p.server.pending_output() < 70_000);
    p.now += Duration::from_secs(5);
    assert_eq!(
        p.server.stalled_for(id, p.now),
        Some(Duration::from_secs(5))
    );
    assert_eq!(p.server.longest_stall(p.now), Some(Duration::from_secs(5)));
}

#[test]
fn client_respects_peer_max_concurrent_streams() {
    let mut p = Pair::new(
        Config::default(),
        Config {
            max_concurrent_streams: 2,
            ..Config::default()
        },
    );
    assert_eq!(p.client.peer_settings().max_concurrent_streams, 2);
    p.client
        .open_stream(b"GET", b"https", b"a", b"/", &[], true)
        .unwrap();
    p.client
        .open_stream(b"GET", b"https", b"a", b"/", &[], true)
        .unwrap();
    assert!(!p.client.can_open_stream());
    assert_eq!(
        p.client
            .open_stream(b"GET", b"https", b"a", b"/", &[], true),
        Err(SendError::TooManyStreams)
    );
    p.drive();
    p.server.send_response(1, 200, &[], true).unwrap();
    p.drive();
    assert!(p.client.can_open_stream());
}

#[test]
fn send_errors() {
    let mut p = Pair::new(Config::default(), Config::default());
    assert_eq!(
        p.server
            .open_stream(b"GET", b"https", b"a", b"/", &[], true),
        Err(SendError::WrongRole)
    );
    assert_eq!(
        p.client.send_response(1, 200, &[], true),
        Err(SendError::WrongRole)
    );
    assert_eq!(
        p.server.send_response(1, 200, &[], true),
        Err(SendError::UnknownStream)
    );
    let id = p
        .client
        .open_stream(b"GET", b"https", b"a", b"/", &[], true)
        .unwrap();
    assert_eq!(
        p.client.send_data(id, b"x", false),
        Err(SendError::InvalidState)
    );
    p.drive();
    assert_eq!(
        p.server.send_data(id, b"x", false),
        Err(SendError::InvalidState)
    );
    p.server.send_response(id, 100, &[], false).unwrap();
    p.server.send_response(id, 200, &[], false).unwrap();
    assert_eq!(
        p.server.send_response(id, 200, &[], false),
        Err(SendError::InvalidState)
    );
    p.server.reset(id, E::CANCEL).unwrap();
    p.drive();
    assert!(p.client_log.contains(&Ev::Reset {
        stream: id,
        code: E::CANCEL,
        by_peer: true,
        retryable: false
    }));
    assert_eq!(
        p.server.send_data(id, b"x", false),
        Err(SendError::UnknownStream)
    );
}

// ---- defences ----

fn calm(o: &Outcome) -> bool {
    verdict(o) == Want::Conn(E::ENHANCE_YOUR_CALM)
}

#[test]
fn rapid_reset_is_stopped() {
    let config = Config {
        reset_rate: Rate {
            burst: 10,
            per_sec: 1,
        },
        ..Config::default()
    };
    let mut r = Raw::new();
    let mut input = Vec::new();
    let mut cut = 0;
    for i in 0..11u32 {
        let id = 2 * i + 1;
        cut = input.len();
        input.extend(r.headers(id, EH | ES, GET));
        input.extend(frame(RST, 0, id, &u32be(8)));
    }
    let o = server_run(config.clone(), &input);
    assert!(calm(&o));
    assert_eq!(o.conn.counters().rapid_reset_kills, 1);
    assert_eq!(o.conn.counters().resets_received, 11);
    // Ten are within the budget.
    let o = server_run(config, &input[..cut]);
    assert_eq!(verdict(&o), Want::Ok);
    assert_eq!(
        o.events
            .iter()
            .filter(|e| matches!(e, Ev::Reset { by_peer: true, .. }))
            .count(),
        10
    );
}

#[test]
fn reset_streams_hold_their_slot_until_their_work_stops() {
    let config = Config {
        max_concurrent_streams: 2,
        hold_reset_slots: true,
        ..Config::default()
    };
    let mut r = Raw::new();
    let input = [
        r.headers(1, EH | ES, GET),
        r.headers(3, EH | ES, GET),
        frame(RST, 0, 1, &u32be(8)),
        r.headers(5, EH | ES, GET),
    ]
    .concat();
    let mut o = server_run(config.clone(), &input);
    // Stream 1's work may still run: 5 is refused although only 3 is open.
    assert_eq!(rst_of(&o.frames), [(5, E::REFUSED_STREAM)]);
    o.conn.work_cancelled(1);
    let mut ev = Events::new();
    o.conn
        .recv(&r.headers(7, EH | ES, GET), t0(), &mut ev)
        .unwrap();
    assert!(matches!(own(&ev)[..], [Ev::Headers { stream: 7, .. }]));
    // Without the option the slot frees at the reset.
    let o = server_run(
        Config {
            hold_reset_slots: false,
            ..config
        },
        &input,
    );
    assert!(rst_of(&o.frames).is_empty());
    // A request reset while its body was still coming had no work: its slot frees at once
    // (the conformance suite's case 9113/5.1.2/2 saw stream 5 refused here).
    let mut r = Raw::new();
    let input = [
        r.headers(1, EH, &with(GET, &[("content-length", "10")])),
        r.headers(3, EH | ES, GET),
        frame(RST, 0, 1, &u32be(8)),
        r.headers(5, EH | ES, GET),
    ]
    .concat();
    let o = server_run(config, &input);
    assert!(rst_of(&o.frames).is_empty(), "{:?}", rst_of(&o.frames));
}

#[test]
fn malformed_requests_count_as_resets_too() {
    let config = Config {
        reset_rate: Rate {
            burst: 5,
            per_sec: 1,
        },
        ..Config::default()
    };
    let mut r = Raw::new();
    let mut input = Vec::new();
    for i in 0..6u32 {
        input.extend(r.headers(2 * i + 1, EH | ES, &[(":method", "GET")]));
    }
    let o = server_run(config, &input);
    assert!(calm(&o));
    assert_eq!(o.conn.counters().stream_errors, 6);
}

#[test]
fn continuation_flood_is_stopped() {
    let mut r = Raw::new();
    let b = r.block(GET);
    let mut input = frame(HEADERS, ES, 1, &b[..1]);
    for _ in 0..40 {
        input.extend(frame(CONT, 0, 1, &[]));
    }
    let o = server_run(Config::default(), &input);
    assert!(calm(&o));
    assert_eq!(o.conn.counters().continuation_flood_kills, 1);
    assert!(o.conn.counters().continuation_frames <= 33);
    // By bytes: 5 CONTINUATION frames of 16 KiB exceed 64 KiB.
    let mut input = frame(HEADERS, ES, 1, &b[..1]);
    for _ in 0..5 {
        input.extend(frame(CONT, 0, 1, &[0x40; 16_384]));
    }
    let o = server_run(Config::default(), &input);
    assert!(calm(&o));
}

#[test]
fn hpack_bomb_costs_bounded_memory() {
    // One 4000-byte entry, then 1000 one-byte references to it: 4 MB decoded.
    let mut block = vec![0x40, 0x01, b'x', 0x7f];
    let mut len = Vec::new();
    crate::h2::hpack::integer::encode(3900, 7, 0, &mut len);
    block.truncate(3);
    block.extend(len);
    block.extend(std::iter::repeat_n(b'v', 3900));
    let mut first = GET.to_vec();
    first.push(("x-a", "1"));
    let mut r = Raw::new();
    let head = r.block(&first);
    let mut full = head;
    full.extend(&block);
    full.extend(std::iter::repeat_n(0xbe, 1000));
    let input = frame(HEADERS, EH | ES, 1, &full);
    let config = Config::default();
    let mut conn = Connection::new(Role::Server, config, t0());
    let mut ev = Events::new();
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings_frame(&[]));
    bytes.extend(&input);
    conn.recv(&bytes, t0(), &mut ev).unwrap();
    assert_eq!(own(&ev), vec![Ev::Settings, Ev::TooLarge(1)]);
    assert!(ev.arena.len() <= 32 << 10, "{}", ev.arena.len());
    assert_eq!(conn.counters().header_lists_too_large, 1);
    // The stream is open: the server answers 431.
    conn.send_response(1, 431, &[], true).unwrap();
}

#[test]
fn settings_and_ping_floods_are_stopped() {
    let mut input = Vec::new();
    for _ in 0..33 {
        input.extend(settings_frame(&[]));
    }
    let o = server_run(Config::default(), &input);
    assert!(calm(&o));
    assert_eq!(o.conn.counters().settings_flood_kills, 1);
    let mut input = Vec::new();
    for _ in 0..33 {
        input.extend(frame(PING, 0, 0, &[1; 8]));
    }
    let o = server_run(Config::default(), &input);
    assert!(calm(&o));
    assert_eq!(o.conn.counters().ping_flood_kills, 1);
    // Within the budget, every PING is answered.
    let o = server_run(Config::default(), &input[..17 * 20]);
    assert_eq!(verdict(&o), Want::Ok);
    assert_eq!(
        o.frames
            .iter()
            .filter(|f| f.kind == Kind::Ping && f.flags == flags::ACK)
            .count(),
        20
    );
}

#[test]
fn budgets_refill_with_time() {
    let config = Config {
        ping_rate: Rate {
            burst: 2,
            per_sec: 1,
        },
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Server, config, t0());
    let start = t0();
    let mut ev = Events::new();
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings_frame(&[]));
    conn.recv(&bytes, start, &mut ev).unwrap();
    let ping = frame(PING, 0, 0, &[0; 8]);
    for s in 0..10 {
        conn.recv(&ping, start + Duration::from_secs(s), &mut ev)
            .unwrap();
    }
    conn.recv(&ping, start + Duration::from_secs(10), &mut ev)
        .unwrap();
    assert!(conn
        .recv(&ping, start + Duration::from_secs(10), &mut ev)
        .is_ok());
    assert_eq!(
        conn.recv(&ping, start + Duration::from_secs(10), &mut ev)
            .unwrap_err()
            .code,
        E::ENHANCE_YOUR_CALM
    );
}

#[test]
fn empty_frame_flood_is_stopped() {
    let mut r = Raw::new();
    let mut input = r.headers(1, EH, &with(GET, &[]));
    for _ in 0..101 {
        input.extend(frame(DATA, 0, 1, &[]));
    }
    let o = server_run(Config::default(), &input);
    assert!(calm(&o));
    assert_eq!(o.conn.counters().empty_frame_kills, 1);
    let mut input = Vec::new();
    for _ in 0..101 {
        input.extend(frame(PRIORITY, 0, 3, &[0, 0, 0, 1, 16]));
    }
    assert!(calm(&server_run(Config::default(), &input)));
}

#[test]
fn errors_are_terminal() {
    let o = server_run(Config::default(), &frame(DATA, 0, 1, b"x"));
    let mut conn = o.conn;
    let e = conn.error().unwrap();
    let mut ev = Events::new();
    assert_eq!(conn.recv(&settings_frame(&[]), t0(), &mut ev), Err(e));
    assert!(ev.is_empty());
    assert!(conn.is_closed());
    assert_eq!(
        conn.send_response(1, 200, &[], true),
        Err(SendError::Closed)
    );
}

// ---- every byte split ----

/// Everything a client sends over a busy connection: preface, SETTINGS, a request split
/// into HEADERS + CONTINUATION, padded DATA, trailers, PING, a reset.
fn busy_client_flight() -> Vec<u8> {
    let mut r = Raw::new();
    let mut v = PREFACE.to_vec();
    v.extend(settings_frame(&[(4, 1 << 20), (1, 4096)]));
    v.extend(frame(WINDOW, 0, 0, &u32be(1 << 20)));
    let b = r.block(&with(GET, &[("user-agent", "test"), ("accept", "*/*")]));
    v.extend(frame(HEADERS, ES, 1, &b[..4]));
    v.extend(frame(CONT, EH, 1, &b[4..]));
    v.extend(r.headers(
        3,
        EH,
        &with(
            &[
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "a"),
                (":path", "/p"),
            ],
            &[("content-length", "11")],
        ),
    ));
    v.extend(frame(
        DATA,
        flags::PADDED,
        3,
        &[3, b'h', b'e', b'l', b'l', b'o', 0, 0, 0],
    ));
    v.extend(frame(PING, 0, 0, b"pingpong"));
    v.extend(frame(DATA, 0, 3, b" world"));
    v.extend(r.headers(3, EH | ES, &[("x-t", "1")]));
    v.extend(r.headers(5, EH, GET));
    v.extend(frame(RST, 0, 5, &u32be(8)));
    v.extend(frame(0x30, 0, 0, b"unknown"));
    v
}

fn at_every_split(role: Role, prime: impl Fn(&mut Connection), input: &[u8]) {
    let run = |pieces: &[&[u8]]| {
        let mut c = Connection::new(role, Config::default(), t0());
        prime(&mut c);
        let o = feed(c, pieces);
        (o.events, o.result, o.frames)
    };
    let whole = run(&[input]);
    assert_eq!(whole.1, Ok(()));
    assert!(!whole.0.is_empty());
    for cut in 0..=input.len() {
        let split = run(&[&input[..cut], &input[cut..]]);
        assert_eq!(split, whole, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes), whole, "one byte at a time");
    for step in [2, 3, 7, 13] {
        let pieces: Vec<&[u8]> = input.chunks(step).collect();
        assert_eq!(run(&pieces), whole, "in {step}-byte pieces");
    }
}

#[test]
fn server_input_at_every_split() {
    at_every_split(Role::Server, |_| {}, &busy_client_flight());
}

#[test]
fn client_input_at_every_split() {
    let mut r = Raw::new();
    let mut v = settings_frame(&[(3, 100), (4, 65_535)]);
    v.extend(frame(SETTINGS, flags::ACK, 0, &[]));
    v.extend(r.headers(1, EH, &[(":status", "100")]));
    let b = r.block(&[(":status", "200"), ("server", "x"), ("content-length", "5")]);
    v.extend(frame(HEADERS, 0, 1, &b[..2]));
    v.extend(frame(CONT, EH, 1, &b[2..]));
    v.extend(frame(DATA, 0, 1, b"he"));
    v.extend(frame(
        DATA,
        ES | flags::PADDED,
        1,
        &[1, b'l', b'l', b'o', 0],
    ));
    v.extend(r.headers(3, EH | ES, &[(":status", "404")]));
    v.extend(frame(PING, flags::ACK, 0, b"12345678"));
    v.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0]));
    at_every_split(
        Role::Client,
        |c| {
            c.open_stream(b"GET", b"https", b"a", b"/", &[], true)
                .unwrap();
            c.open_stream(b"GET", b"https", b"a", b"/x", &[], true)
                .unwrap();
            c.open_stream(b"GET", b"https", b"a", b"/y", &[], true)
                .unwrap();
        },
        &v,
    );
}

#[test]
fn own_output_round_trips_through_a_server_at_every_split() {
    // What our client writes, byte for byte, is what the server reads at any split.
    let mut c = Connection::new(Role::Client, Config::default(), t0());
    let id = c
        .open_stream(
            b"PUT",
            b"https",
            b"example.com",
            b"/f",
            &[(b"content-length", b"3")],
            false,
        )
        .unwrap();
    c.send_data(id, b"abc", true).unwrap();
    c.ping(*b"abcdefgh");
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    at_every_split(Role::Server, |_| {}, &out);
}

#[test]
fn settings_list_is_what_we_send() {
    let (list, n) = Config::default().settings(Role::Server);
    let ids: Vec<_> = list[..n].iter().map(|s: &Setting| s.id).collect();
    assert!(!ids.contains(&SettingId::EnablePush));
}
