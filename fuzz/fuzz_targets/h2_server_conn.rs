//! HTTP/2 server connection: arbitrary bytes after a valid preface and SETTINGS never
//! panic it; cutting the input in two (where the first byte says) reports the same events
//! and writes the same frames as feeding it whole; and answering every request as it
//! arrives keeps the output well-formed and within the peer's windows.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use uring_common::h2::frame::{FrameHead, FRAME_HEAD_LEN};
use uring_common::h2::{Config, Connection, Event, Events, Role, PREFACE};

fn owned(events: &Events, log: &mut Vec<String>) {
    for e in events.iter() {
        let line = match *e {
            Event::Headers {
                stream,
                kind,
                fields,
                end_stream,
                pseudo,
                ..
            } => {
                let f: Vec<_> = events.fields(fields).collect();
                let path = pseudo.path.map(|p| events.bytes(p).to_vec());
                format!("headers {stream} {kind:?} {path:?} {f:?} {end_stream}")
            }
            // Body bytes may arrive grouped differently; count them instead.
            Event::Data {
                stream,
                data,
                end_stream,
                ..
            } => {
                format!("data {stream} {:?} {end_stream}", events.data(data))
            }
            Event::GoAway {
                last_stream,
                code,
                debug,
            } => {
                format!("goaway {last_stream} {code:?} {:?}", events.bytes(debug))
            }
            other => format!("{other:?}"),
        };
        log.push(line);
    }
}

fn run(pieces: &[&[u8]], answer: bool) -> (Vec<String>, Vec<u8>) {
    let now = Instant::now();
    let config = Config {
        max_concurrent_streams: 8,
        initial_window_size: 1 << 16,
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Server, config, now);
    let mut events = Events::new();
    let mut log = Vec::new();
    let mut out = Vec::new();
    let mut preface = PREFACE.to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    conn.recv(&preface, now, &mut events)
        .expect("a valid preface");
    for (i, p) in pieces.iter().enumerate() {
        let r = conn.recv(p, now + Duration::from_millis(i as u64), &mut events);
        owned(&events, &mut log);
        if answer {
            let streams: Vec<u32> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Headers { stream, .. } | Event::HeadersTooLarge { stream, .. } => {
                        Some(*stream)
                    }
                    _ => None,
                })
                .collect();
            for s in streams {
                let cap = conn.send_capacity(s);
                if conn
                    .send_response(s, 200, &[(b"server", b"fuzz")], false)
                    .is_ok()
                {
                    let n = conn.send_data(s, &[b'x'; 70_000], true).unwrap_or(0);
                    assert!(n <= cap);
                }
            }
        }
        if let Err(e) = r {
            log.push(format!("error {e}"));
            break;
        }
    }
    conn.poll_transmit(&mut out);
    assert!(conn.pending_output() == 0);
    (log, out)
}

fn check_frames(mut out: &[u8]) {
    while !out.is_empty() {
        let head = FrameHead::parse(out).expect("whole frames only");
        out = &out[FRAME_HEAD_LEN + head.len as usize..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) % (data.len() + 1);
    let whole = run(&[data], false);
    let split = run(&[&data[..cut], &data[cut..]], false);
    // Time differs between the two pieces (1 ms), which budgets may see: compare only
    // when neither run hit a rate limit.
    let calm = |log: &[String]| log.iter().any(|l| l.contains("ENHANCE_YOUR_CALM"));
    if !calm(&whole.0) && !calm(&split.0) {
        assert_eq!(whole, split);
    }
    check_frames(&whole.1);
    let answered = run(&[&data[..cut], &data[cut..]], true);
    check_frames(&answered.1);
});
