//! The HTTP/2 client machine against the codec's server role, in memory: the server's
//! bytes are fed at every split, and the outcome must not depend on how they arrive.

use super::*;
use crate::targets::{tests_support, Policy};
use uring_common::h2::frame::{GoAway, RstStream};
use uring_common::stats::Recorder;

fn expander() -> Expander {
    Expander::new(0, 1, crate::shard::Shard::WHOLE, 0)
}

/// What a server with `config` says first: its SETTINGS (and window raise).
fn server_hello(config: Config, now: Instant) -> Vec<u8> {
    drain(&mut Connection::new(Role::Server, config, now))
}

/// A connected client that has the default server's SETTINGS (so it opens up to
/// `depth` streams at once).
fn greeted(depth: usize, now: Instant) -> H2Conn {
    greeted_by(Config::default(), depth, now)
}

/// A connected client that has the SETTINGS of a server with `config`.
fn greeted_by(config: Config, depth: usize, now: Instant) -> H2Conn {
    let mut c = H2Conn::new(depth);
    c.start_connect();
    c.on_connected();
    let hello = server_hello(config, now);
    assert!(c.on_received(&hello, now, &mut Recorder::new()).answered);
    c
}

/// A client with `n` requests (targets 0, 1, 2, ...) and what it sends first.
fn client(depth: usize, n: usize, targets: &[Target], now: Instant) -> (H2Conn, Vec<u8>) {
    let mut c = greeted(depth, now);
    for i in 0..n {
        c.push_request(
            now,
            now,
            Pick {
                target: (i % targets.len()) as u32,
                head: false,
            },
        );
    }
    let mut out = Vec::new();
    assert!(c.wants_write());
    c.poll_transmit(targets, &mut expander(), &mut out);
    (c, out)
}

/// A server (the codec's server role) that read `input`; the requests it got, by stream.
fn server(input: &[u8], now: Instant) -> (Connection, Vec<(StreamId, Vec<u8>)>) {
    let mut s = Connection::new(Role::Server, Config::default(), now);
    let mut ev = Events::new();
    s.recv(input, now, &mut ev).unwrap();
    let mut got = Vec::new();
    for e in ev.iter() {
        if let Event::Headers {
            stream,
            kind: HeadersKind::Request,
            pseudo,
            ..
        } = *e
        {
            got.push((stream, ev.bytes(pseudo.path.unwrap()).to_vec()));
        }
    }
    (s, got)
}

fn drain(s: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    out
}

/// Feed `bytes` whole, split in two at every position, and one byte at a time.
fn each_split(bytes: &[u8], mut f: impl FnMut(&[&[u8]])) {
    f(&[bytes]);
    for i in 1..bytes.len() {
        f(&[&bytes[..i], &bytes[i..]]);
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    f(&singles);
}

fn feed(c: &mut H2Conn, parts: &[&[u8]], now: Instant, rec: &mut Recorder) -> Step {
    let mut step = Step::Continue;
    for p in parts {
        step = c.on_received(p, now, rec).step;
        if step == Step::Close {
            break;
        }
    }
    step
}

#[test]
fn request_taken_apart_from_http1() {
    let r = Request::from_http1(
        b"POST /a?b HTTP/1.1\r\nHost: example:8080\r\nConnection: keep-alive\r\nX-A:  1 \r\nContent-Length: 2\r\nTE: trailers\r\n\r\nhi",
    )
    .unwrap();
    assert_eq!(r.method, b"POST");
    assert_eq!(r.path, b"/a?b");
    assert_eq!(r.authority, b"example:8080");
    assert_eq!(
        r.fields,
        vec![
            (b"x-a".to_vec(), b"1".to_vec()),
            (b"content-length".to_vec(), b"2".to_vec()),
            (b"te".to_vec(), b"trailers".to_vec()),
        ]
    );
    assert_eq!(r.body, b"hi");
    assert_eq!(Request::from_http1(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
}

#[test]
fn three_streams_answered_at_any_split() {
    let mix = tests_support::mix(3, Policy::RoundRobin);
    let now = Instant::now();
    let (_, sent) = client(3, 3, &mix.targets, now);
    let (mut s, got) = server(&sent, now);
    let paths: Vec<&[u8]> = got.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(paths, [&b"/0"[..], b"/1", b"/2"]);
    for ((id, _), status) in got.iter().zip([200u16, 404, 503]) {
        s.send_response(*id, status, &[(b"content-type", b"text/plain")], false)
            .unwrap();
        assert_eq!(s.send_data(*id, b"hello", true).unwrap(), 5);
    }
    let answer = drain(&mut s);
    each_split(&answer, |parts| {
        let (mut c, _) = client(3, 3, &mix.targets, now);
        let mut rec = Recorder::new();
        assert_eq!(feed(&mut c, parts, now, &mut rec), Step::Continue);
        assert_eq!(c.in_flight(), 0);
        let k = &rec.counters;
        assert_eq!((k.succeeded, k.failed, k.errored), (1, 2, 0));
        assert_eq!((k.class(2), k.class(4), k.class(5)), (1, 1, 1));
        assert_eq!(k.bytes_body, 15);
        assert_eq!(k.bytes_total, answer.len() as u64);
        assert!(c.has_room());
        assert_eq!(c.peer_settings().unwrap().max_concurrent_streams, 100);
    });
}

#[test]
fn streams_never_exceed_the_depth_and_the_rest_wait() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let mut c = greeted(2, now);
    c.push_request(now, now, Pick::default());
    c.push_request(now, now, Pick::default());
    assert!(!c.has_room(), "--streams 2 reached");
    let mut out = Vec::new();
    c.poll_transmit(&mix.targets, &mut expander(), &mut out);
    let (mut s, got) = server(&out, now);
    assert_eq!(got.len(), 2);
    s.send_response(got[0].0, 200, &[], true).unwrap();
    let mut rec = Recorder::new();
    let r = c.on_received(&drain(&mut s), now, &mut rec);
    assert!(r.answered);
    assert!(c.has_room());
    assert_eq!(rec.counters.succeeded, 1);
    assert_eq!(c.in_flight(), 1);
}

#[test]
fn refused_stream_is_sent_again_and_counted_once() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (_, sent) = client(2, 2, &mix.targets, now);
    let (mut s, got) = server(&sent, now);
    s.reset(got[0].0, ErrorCode::REFUSED_STREAM).unwrap();
    s.send_response(got[1].0, 200, &[], true).unwrap();
    let answer = drain(&mut s);
    each_split(&answer, |parts| {
        let (mut c, _) = client(2, 2, &mix.targets, now);
        let mut rec = Recorder::new();
        assert_eq!(feed(&mut c, parts, now, &mut rec), Step::Continue);
        assert_eq!(rec.counters.succeeded, 1);
        assert_eq!(rec.counters.errored, 0, "a refused stream is no error");
        assert_eq!(
            c.in_flight(),
            1,
            "the refused request waits to be sent again"
        );
        assert!(c.wants_write());
        let mut again = Vec::new();
        c.poll_transmit(&mix.targets, &mut expander(), &mut again);
        assert!(!again.is_empty(), "a new stream carries it");
    });
}

#[test]
fn goaway_hands_unprocessed_streams_back_and_closes_when_the_rest_ended() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (_, sent) = client(3, 3, &mix.targets, now);
    let (mut s, got) = server(&sent, now);
    s.send_response(got[0].0, 200, &[], true).unwrap();
    let mut answer = drain(&mut s);
    // Only stream 1 was processed: 3 and 5 are the server's to forget.
    GoAway::encode(1, ErrorCode::NO_ERROR, b"", &mut answer);
    each_split(&answer, |parts| {
        let (mut c, _) = client(3, 3, &mix.targets, now);
        let mut rec = Recorder::new();
        assert_eq!(feed(&mut c, parts, now, &mut rec), Step::Close);
        assert_eq!(rec.counters.succeeded, 1);
        assert_eq!(rec.counters.errored, 0);
        let mut back = 0;
        c.take_unanswered(|_, _| back += 1);
        assert_eq!(back, 2, "both go to another connection");
    });
}

#[test]
fn goaway_with_an_error_fails_the_streams_it_processed_with_its_text() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (_, sent) = client(2, 2, &mix.targets, now);
    let (mut s, _) = server(&sent, now);
    let mut answer = drain(&mut s);
    GoAway::encode(3, ErrorCode::INTERNAL_ERROR, b"shutting down", &mut answer);
    let (mut c, _) = client(2, 2, &mix.targets, now);
    let mut rec = Recorder::new();
    assert_eq!(feed(&mut c, &[&answer], now, &mut rec), Step::Continue);
    assert!(!c.has_room(), "no new streams after GOAWAY");
    assert_eq!(c.on_eof(now, &mut rec), Step::Close);
    assert_eq!(rec.counters.errors_goaway, 2);
    assert_eq!(rec.counters.errored, 2);
    let first = rec.first_errors.get(ErrorKind::GoAway).unwrap();
    assert!(
        first.message.contains("GOAWAY") && first.message.contains("shutting down"),
        "{}",
        first.message
    );
}

#[test]
fn rst_stream_is_a_reset_error_with_its_code() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (_, sent) = client(2, 2, &mix.targets, now);
    let (mut s, got) = server(&sent, now);
    let mut answer = drain(&mut s);
    RstStream::encode(got[0].0, ErrorCode::INTERNAL_ERROR, &mut answer);
    let (mut c, _) = client(2, 2, &mix.targets, now);
    let mut rec = Recorder::new();
    assert_eq!(feed(&mut c, &[&answer], now, &mut rec), Step::Continue);
    assert_eq!(rec.counters.errors_reset, 1);
    assert_eq!(rec.counters.errored, 1);
    assert_eq!(c.in_flight(), 1);
    let first = rec.first_errors.get(ErrorKind::Reset).unwrap();
    assert!(
        first.message.contains("reset by the server"),
        "{}",
        first.message
    );
}

#[test]
fn garbage_is_a_protocol_error_for_every_request() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (mut c, _) = client(2, 2, &mix.targets, now);
    let mut rec = Recorder::new();
    let step = feed(&mut c, &[b"HTTP/1.1 200 OK\r\n\r\n"], now, &mut rec);
    assert_eq!(step, Step::Close);
    assert_eq!(rec.counters.errors_protocol, 2);
    assert_eq!(rec.counters.errored, 2);
    let first = &rec.first_errors.get(ErrorKind::Protocol).unwrap().message;
    assert!(first.contains("HTTP/2 connection error"), "{first}");
}

/// The client's half of a connection error: its GOAWAY names the rule the server broke,
/// and every request ends in the class of that rule.
#[test]
fn a_window_overflow_is_a_flow_control_error() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (mut c, _) = client(1, 1, &mix.targets, now);
    let mut rec = Recorder::new();
    // WINDOW_UPDATE on the connection past 2^31-1 (RFC 9113 6.9.1).
    let mut bad = Vec::new();
    uring_common::h2::frame::WindowUpdate::encode(0, 0x7fff_ffff, &mut bad);
    assert_eq!(feed(&mut c, &[&bad], now, &mut rec), Step::Close);
    assert_eq!(rec.counters.errors_flow_control, 1);
    let first = &rec
        .first_errors
        .get(ErrorKind::FlowControl)
        .unwrap()
        .message;
    assert!(first.contains("FLOW_CONTROL_ERROR"), "{first}");
}

/// Response headers past our SETTINGS_MAX_HEADER_LIST_SIZE: that stream is a parse
/// error saying so (as HTTP/1.1's too-large head), the connection and the others go on.
#[test]
fn huge_response_headers_are_a_parse_error_on_their_stream_only() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (_, sent) = client(2, 2, &mix.targets, now);
    let (mut s, got) = server(&sent, now);
    let big = vec![b'x'; 300 << 10];
    s.send_response(got[0].0, 200, &[(b"x-big", &big)], true)
        .unwrap();
    s.send_response(got[1].0, 200, &[], true).unwrap();
    let answer = drain(&mut s);
    for parts in [vec![&answer[..]], answer.chunks(1000).collect()] {
        let (mut c, _) = client(2, 2, &mix.targets, now);
        let mut rec = Recorder::new();
        assert_eq!(feed(&mut c, &parts, now, &mut rec), Step::Continue);
        assert_eq!((rec.counters.succeeded, rec.counters.errors_parse), (1, 1));
        assert_eq!(rec.counters.errored, 1);
        let first = &rec.first_errors.get(ErrorKind::Parse).unwrap().message;
        assert!(first.contains("headers larger than our limit"), "{first}");
        assert_eq!(c.in_flight(), 0);
    }
}

/// A GOAWAY, then the server resets the socket: the streams it processed end with its
/// reason (`goaway`) when it gave one, else as the reset they are (`read`); what never
/// left waits for another connection.
#[test]
fn a_reset_socket_after_goaway_hands_back_what_never_left() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    for (code, kind, text) in [
        (ErrorCode::ENHANCE_YOUR_CALM, ErrorKind::GoAway, "calm down"),
        (
            ErrorCode::NO_ERROR,
            ErrorKind::Read,
            "Connection reset by peer",
        ),
    ] {
        let (_, sent) = client(1, 1, &mix.targets, now);
        let (mut s, _) = server(&sent, now);
        let mut answer = drain(&mut s);
        GoAway::encode(1, code, b"calm down", &mut answer);
        let (mut c, _) = client(1, 1, &mix.targets, now);
        let mut rec = Recorder::new();
        assert_eq!(feed(&mut c, &[&answer], now, &mut rec), Step::Continue);
        c.push_request(now, now, Pick::default());
        let reset = "Connection reset by peer";
        assert_eq!(
            c.on_error_because(ErrorKind::Read, &reset, &mut rec),
            Step::Close
        );
        assert_eq!((rec.counters.errors_of(kind), rec.counters.errored), (1, 1));
        let first = &rec.first_errors.get(kind).unwrap().message;
        assert!(first.contains(text), "{first}");
        let mut back = 0;
        c.take_unanswered(|_, _| back += 1);
        assert_eq!(back, 1, "the request never sent goes elsewhere");
    }
}

/// Before the server's SETTINGS one stream at most; then its
/// SETTINGS_MAX_CONCURRENT_STREAMS bounds `--streams`.
#[test]
fn streams_wait_for_the_servers_settings_and_respect_its_limit() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    for (limit, open) in [(1u32, 1usize), (3, 3), (100, 4)] {
        let mut c = H2Conn::new(4);
        c.start_connect();
        c.on_connected();
        c.push_request(now, now, Pick::default());
        assert!(!c.has_room(), "one request until the SETTINGS arrive");
        let mut out = Vec::new();
        c.poll_transmit(&mix.targets, &mut expander(), &mut out);
        let config = Config {
            max_concurrent_streams: limit,
            ..Config::default()
        };
        let mut rec = Recorder::new();
        assert!(
            c.on_received(&server_hello(config, now), now, &mut rec)
                .answered
        );
        while c.has_room() {
            c.push_request(now, now, Pick::default());
        }
        assert_eq!(c.in_flight(), open, "limit {limit}");
        let (_, got) = server(&out, now);
        assert_eq!(
            got.len(),
            1,
            "limit {limit}: one stream before the SETTINGS"
        );
        c.poll_transmit(&mix.targets, &mut expander(), &mut out);
        let (_, got) = server(&out, now);
        assert_eq!(got.len(), open, "limit {limit}: then the rest");
    }
}

/// A server that never opens its window for a request body: at `-T` the stalled stream
/// is a flow-control error saying how far it got, a request without body a timeout.
#[test]
fn a_request_body_stalled_by_a_closed_window_is_a_flow_control_error() {
    let body = vec![b'b'; 100_000];
    let mut bytes = format!(
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    let post = Target {
        label: "POST /up".into(),
        host: 0,
        weight: 1,
        template: None,
        bytes,
        head: false,
    };
    let mut targets = tests_support::mix(1, Policy::RoundRobin).targets;
    targets.insert(0, post);
    let now = Instant::now();
    // The RFC's first windows, never raised.
    let mut c = greeted_by(small_windows(), 2, now);
    c.push_request(now, now, Pick::default());
    c.push_request(
        now,
        now,
        Pick {
            target: 1,
            head: false,
        },
    );
    let mut out = Vec::new();
    c.poll_transmit(&targets, &mut expander(), &mut out);
    assert!(
        out.len() < body.len(),
        "the default window holds the body back"
    );
    let mut rec = Recorder::new();
    let t = Duration::from_secs(1);
    assert_eq!(c.poll_timeout(now + t, t, &mut rec), Step::Close);
    let k = &rec.counters;
    assert_eq!(
        (k.errors_flow_control, k.errors_timeout, k.errored),
        (1, 1, 2)
    );
    let first = &rec
        .first_errors
        .get(ErrorKind::FlowControl)
        .unwrap()
        .message;
    assert!(
        first.contains("65535 of 100000 bytes sent") && first.contains("WINDOW_UPDATE"),
        "{first}"
    );
}

#[test]
fn eof_before_settings_fails_the_waiting_requests() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (mut c, _) = client(1, 1, &mix.targets, now);
    let mut rec = Recorder::new();
    assert_eq!(c.on_eof(now, &mut rec), Step::Close);
    assert_eq!(
        rec.counters.errored, 1,
        "a -n run cannot spin on a dead server"
    );
}

#[test]
fn timeout_fails_streams_and_waiting_requests() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (mut c, _) = client(1, 1, &mix.targets, now);
    let mut rec = Recorder::new();
    let t = Duration::from_secs(1);
    assert_eq!(c.poll_timeout(now, t, &mut rec), Step::Continue);
    assert_eq!(c.poll_timeout(now + t, t, &mut rec), Step::Close);
    assert_eq!(rec.counters.errors_timeout, 1);
}

/// A body larger than every default window arrives whole: our windows are open wide
/// and credit goes back as the bytes are counted.
#[test]
fn a_large_body_flows_through_the_windows() {
    let mix = tests_support::mix(1, Policy::RoundRobin);
    let now = Instant::now();
    let (mut c, sent) = client(1, 1, &mix.targets, now);
    let (mut s, got) = server(&sent, now);
    let id = got[0].0;
    let body = vec![b'x'; 20 << 20];
    s.send_response(id, 200, &[], false).unwrap();
    let mut offset = 0;
    let mut rec = Recorder::new();
    let mut ev = Events::new();
    for _ in 0..1000 {
        if offset < body.len() {
            offset += s.send_data(id, &body[offset..], true).unwrap();
        }
        let bytes = drain(&mut s);
        if bytes.is_empty() && offset == body.len() {
            break;
        }
        c.on_received(&bytes, now, &mut rec);
        let mut back = Vec::new();
        c.poll_transmit(&mix.targets, &mut expander(), &mut back);
        s.recv(&back, now, &mut ev).unwrap();
    }
    assert_eq!(rec.counters.succeeded, 1);
    assert_eq!(rec.counters.bytes_body, body.len() as u64);
}

/// A request body larger than the server's first windows goes out as they open, whole,
/// with every field (more than fit the machine's inline list).
#[test]
fn a_large_request_body_waits_for_the_servers_windows() {
    large_request_body(false);
}

#[test]
fn a_large_templated_request_body_waits_for_the_servers_windows() {
    large_request_body(true);
}

/// A server that keeps the RFC's first windows (65,535 bytes) until it reads the body.
fn small_windows() -> Config {
    Config {
        initial_window_size: 65_535,
        connection_window: 65_535,
        ..Config::default()
    }
}

fn large_request_body(templated: bool) {
    let path = if templated { "/{SEQ}" } else { "/up" };
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: h\r\n");
    for i in 0..20 {
        head.push_str(&format!("X-F{i}: {i}\r\n"));
    }
    let body = vec![b'b'; 200_000];
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    let targets = [Target {
        label: "POST /up".into(),
        host: 0,
        weight: 1,
        template: if templated {
            crate::template::compile(&bytes, &mut Default::default())
                .unwrap()
                .map(std::sync::Arc::new)
        } else {
            None
        },
        bytes,
        head: false,
    }];
    assert_eq!(targets[0].template.is_some(), templated);
    let now = Instant::now();
    let mut c = greeted_by(small_windows(), 1, now);
    c.push_request(now, now, Pick::default());
    let mut sent = Vec::new();
    c.poll_transmit(&targets, &mut expander(), &mut sent);
    assert!(
        sent.len() < body.len(),
        "the first window holds the rest back"
    );
    let mut s = Connection::new(Role::Server, small_windows(), now);
    let mut ev = Events::new();
    let mut rec = Recorder::new();
    let (mut got, mut fields, mut ended) = (0usize, 0usize, false);
    let mut input = sent;
    for _ in 0..100 {
        s.recv(&input, now, &mut ev).unwrap();
        for e in ev.iter() {
            match *e {
                Event::Headers { fields: f, .. } => fields = ev.fields(f).count(),
                Event::Data {
                    stream,
                    len,
                    end_stream,
                    ..
                } => {
                    got += len as usize;
                    if end_stream {
                        ended = true;
                        s.send_response(stream, 201, &[], true).unwrap();
                    }
                }
                _ => {}
            }
        }
        c.on_received(&drain(&mut s), now, &mut rec);
        input = Vec::new();
        c.poll_transmit(&targets, &mut expander(), &mut input);
        if ended && input.is_empty() {
            break;
        }
    }
    assert_eq!(got, body.len());
    assert_eq!(fields, 21, "20 X-F fields and content-length");
    assert_eq!(rec.counters.succeeded, 1);
}
