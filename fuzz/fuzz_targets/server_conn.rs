//! The server's connection state machine (`uring_server::conn::Conn`): arbitrary request
//! bytes, cut into pieces, never panic, and whatever is sent is a sequence of HTTP/1.1
//! responses, or (with HTTP/2 on and input starting with its preface, which the corpus
//! seeds) HTTP/2 frames. Built with overflow checks on (fuzz/Cargo.toml's release profile), so an
//! arithmetic overflow in the body limits (issue 9, 4c) is a crash here, not a wrap.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use uring_server::conn::{Conn, Ctx};
use uring_server::{Limits, Request, ResponseWriter, Timeouts};

fuzz_target!(|input: &[u8]| {
    // Layout: [flags][cut][payload]. flags picks the body limit (tiny, default, u64::MAX:
    // the extremes are where the arithmetic can break) and, with its bit 2, HTTP/2.
    let [flags, cut, data @ ..] = input else {
        return;
    };
    let limits = Limits {
        max_head_bytes: 1024,
        max_headers: 16,
        max_target_bytes: 256,
        max_body_bytes: match flags % 3 {
            0 => 8,
            1 => 1 << 20,
            _ => u64::MAX,
        },
    };
    let timeouts = Timeouts::default();
    let now = Instant::now();
    let mut handler =
        |req: &Request<'_>, resp: &mut ResponseWriter<'_>| resp.respond(200, &[], req.body());
    let http2 =
        (flags & 4 != 0).then(|| uring_server::conn::http2_config(&limits, &Default::default()));
    let mut conn = Conn::new(now, &timeouts);
    let mut ctx = Ctx {
        handler: &mut handler,
        date: b"Thu, 01 Jan 1970 00:00:00 GMT",
        limits: &limits,
        timeouts: &timeouts,
        now,
        draining: false,
        log: None,
        http2: http2.as_ref(),
        client_limits: None,
    };
    let cut = usize::from(*cut) * data.len() / 255;
    let mut wire = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        conn.on_data(piece, &mut ctx);
        // Bounded: each round either sends something or stops.
        for _ in 0..64 {
            // Play the driver's send buffer: the output is handed over whole.
            let mut bytes = Vec::new();
            if !conn.poll_send(&mut bytes) {
                break;
            }
            let n = bytes.len();
            wire.extend_from_slice(&bytes);
            conn.on_sent(n, &mut ctx);
        }
    }
    conn.on_eof(&mut ctx);
    // An HTTP/2 connection starts with our SETTINGS frame (type 4 on stream 0).
    let h2_settings = wire.len() >= 9 && wire[3] == 4 && wire[5..9] == [0; 4];
    assert!(wire.is_empty() || wire.starts_with(b"HTTP/1.1 ") || (conn.is_http2() && h2_settings));
});
