//! HTTP/2 client connection: arbitrary server bytes (after the server's SETTINGS) never
//! panic a client with streams open; cutting the input in two reports the same events
//! and writes the same frames as feeding it whole; and sending request bodies as windows
//! open never exceeds them.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use uring_common::h2::frame::{FrameHead, FRAME_HEAD_LEN};
use uring_common::h2::{Config, Connection, Event, Events, Role};

fn run(pieces: &[&[u8]], upload: bool) -> (Vec<String>, Vec<u8>) {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Client, Config::default(), now);
    let mut events = Events::new();
    let mut log = Vec::new();
    let mut out = Vec::new();
    let mut streams = Vec::new();
    for (method, end) in [(&b"GET"[..], true), (b"HEAD", true), (b"POST", false)] {
        let s = conn.open_stream(method, b"https", b"fuzz", b"/", &[(b"x-a", b"1")], end);
        streams.push(s.expect("a fresh connection opens streams"));
    }
    conn.recv(&[0, 0, 0, 4, 0, 0, 0, 0, 0], now, &mut events)
        .expect("an empty SETTINGS");
    for (i, p) in pieces.iter().enumerate() {
        let r = conn.recv(p, now + Duration::from_millis(i as u64), &mut events);
        for e in events.iter() {
            log.push(match *e {
                Event::Headers {
                    stream,
                    kind,
                    fields,
                    end_stream,
                    pseudo,
                    ..
                } => {
                    let f: Vec<_> = events.fields(fields).collect();
                    format!(
                        "headers {stream} {kind:?} {} {f:?} {end_stream}",
                        pseudo.status
                    )
                }
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
            });
        }
        if upload {
            let s = streams[2];
            let cap = conn.send_capacity(s);
            if let Ok(n) = conn.send_data(s, &[b'u'; 100_000], false) {
                assert!(n <= cap);
            }
        }
        if let Err(e) = r {
            log.push(format!("error {e}"));
            break;
        }
    }
    conn.poll_transmit(&mut out);
    (log, out)
}

fn check_frames(out: &[u8]) {
    let mut rest = &out[uring_common::h2::PREFACE.len()..];
    while !rest.is_empty() {
        let head = FrameHead::parse(rest).expect("whole frames only");
        rest = &rest[FRAME_HEAD_LEN + head.len as usize..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) % (data.len() + 1);
    let whole = run(&[data], false);
    let split = run(&[&data[..cut], &data[cut..]], false);
    let calm = |log: &[String]| log.iter().any(|l| l.contains("ENHANCE_YOUR_CALM"));
    if !calm(&whole.0) && !calm(&split.0) {
        assert_eq!(whole, split);
    }
    check_frames(&whole.1);
    check_frames(&run(&[&data[..cut], &data[cut..]], true).1);
});
