//! uring-load's HTTP/2 client machine (uring-load/src/h2conn.rs): arbitrary server bytes,
//! cut where the input says, never panic it, and every request handed over is accounted
//! for exactly once (answered, errored, or still in flight to be sent again), whichever
//! way the connection ends: EOF, a socket error, or `-T` (where a request body the
//! server's window holds back is a flow-control stall).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use uring_common::stats::Recorder;
use uring_load::conn::Step;
use uring_load::h2conn::H2Conn;
use uring_load::shard::Shard;
use uring_load::targets::{Pick, Target};
use uring_load::template::Expander;

fuzz_target!(|data: &[u8]| {
    let Some((&[cut, ending], input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let targets = [Target {
        label: "POST /".into(),
        host: 0,
        weight: 1,
        bytes: b"POST / HTTP/1.1\r\nHost: f\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        head: false,
        template: None,
    }];
    let now = Instant::now();
    let mut x = Expander::new(0, 1, Shard::WHOLE, 0);
    let mut c = H2Conn::new(4);
    c.start_connect();
    c.on_connected();
    let handed = 6u64;
    for _ in 0..handed {
        c.push_request(now, now, Pick::default());
    }
    let mut rec = Recorder::new();
    let mut out = Vec::new();
    c.poll_transmit(&targets, &mut x, &mut out);
    let at = (cut as usize).min(input.len());
    for (i, piece) in [&input[..at], &input[at..]].into_iter().enumerate() {
        let t = now + Duration::from_millis(i as u64);
        if c.on_received(piece, t, &mut rec).step == Step::Close {
            break;
        }
        out.clear();
        c.poll_transmit(&targets, &mut x, &mut out);
    }
    match ending % 3 {
        0 => {
            c.on_eof(now, &mut rec);
        }
        1 => {
            c.on_error_because(uring_common::stats::ErrorKind::Read, &"reset", &mut rec);
        }
        _ => {
            let t = Duration::from_secs(1);
            c.poll_timeout(now + t, t, &mut rec);
            c.on_eof(now + t, &mut rec);
        }
    }
    let k = &rec.counters;
    let mut back = 0u64;
    c.take_unanswered(|_, _| back += 1);
    assert_eq!(k.succeeded + k.failed + k.errored + back, handed);
});
