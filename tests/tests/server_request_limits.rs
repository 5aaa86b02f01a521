//! Over-long request heads get the status that names what is too long, whatever the
//! length and however the bytes arrive (whole, a byte at a time, in 4 KiB writes): a
//! method longer than any we implement is 501 (RFC 9112 section 3: "A server that
//! receives a method longer than any that it implements SHOULD respond with a 501 (Not
//! Implemented) status code"), a target 414, header fields 431, and bytes that are no
//! request line at all 400. Each is checked a little over its limit and far over it
//! (100 KB, many times the 16 KiB head limit, which must not turn a long method or target
//! into a 431).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use uring_tests::server::ServerProc;

/// The status line the server answers `raw` with, sent in `piece`-byte writes (the
/// first 100 bytes a byte at a time when `trickle`).
fn status_for(srv: &ServerProc, raw: &[u8], piece: usize, trickle: bool) -> String {
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    let (head, rest) = raw.split_at(if trickle { 100.min(raw.len()) } else { 0 });
    // The server may answer and close before it has read everything: a failed write is
    // expected then, and the answer is still there to read.
    let _ = head.chunks(1).chain(rest.chunks(piece)).try_for_each(|c| {
        let r = s.write_all(c);
        if trickle && c.len() == 1 {
            std::thread::sleep(Duration::from_micros(200));
        }
        r
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.lines().next().unwrap_or("").to_string()
}

fn request(method: &[u8], target: &[u8], fields: &[u8]) -> Vec<u8> {
    [
        method,
        b" ",
        target,
        b" HTTP/1.1\r\nHost: x\r\n",
        fields,
        b"\r\n",
    ]
    .concat()
}

#[test]
fn long_methods_targets_and_heads_get_their_own_status_however_they_arrive() {
    let srv = ServerProc::start(&[]);
    let big = 100 * 1024;
    let long_path = |n: usize| [b"/".as_slice(), &vec![b'a'; n]].concat();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a 65-byte method", request(&[b'M'; 65], b"/", b""), "501"),
        (
            "a 100 KB method",
            request(&vec![b'M'; big], b"/", b""),
            "501",
        ),
        ("a 100 KB method without its end", vec![b'M'; big], "501"),
        (
            "a long method and a long target: the method first",
            request(&[b'M'; 65], &long_path(big), b""),
            "501",
        ),
        (
            "an 8 KiB + 1 target",
            request(b"GET", &long_path(8 * 1024), b""),
            "414",
        ),
        (
            "a 100 KB target",
            request(b"GET", &long_path(big), b""),
            "414",
        ),
        (
            "a 100 KB field",
            request(
                b"GET",
                b"/",
                &[b"X-A: ", &vec![b'v'; big][..], b"\r\n"].concat(),
            ),
            "431",
        ),
        (
            "a 16 KiB + 1 head",
            request(
                b"GET",
                b"/",
                &[b"X-A: ", &vec![b'v'; 16 * 1024][..], b"\r\n"].concat(),
            ),
            "431",
        ),
        (
            "101 fields",
            request(b"GET", b"/", &b"X-A: 1\r\n".repeat(101)),
            "431",
        ),
        ("100 KB of bytes that are no token", vec![0x01; big], "400"),
        (
            "100 KB of empty lines: no request line within the head limit",
            [b"\r\n".repeat(big / 2), request(b"GET", b"/", b"")].concat(),
            "400",
        ),
        (
            "a method with a byte no method has",
            request(
                &[b"GE".as_slice(), b"T\x01", &vec![b'M'; big][..]].concat(),
                b"/",
                b"",
            ),
            "400",
        ),
    ];
    for (what, raw, want) in &cases {
        for (piece, trickle) in [(usize::MAX, false), (4096, false), (4096, true)] {
            let line = status_for(&srv, raw, piece, trickle);
            assert!(
                line.starts_with(&format!("HTTP/1.1 {want} ")),
                "{what} in {piece}-byte writes (trickled: {trickle}): {line:?}"
            );
        }
    }
    // Within every limit the same request is served.
    let ok = request(&[b'M'; 64], b"/plaintext", b"");
    assert!(status_for(&srv, &ok, usize::MAX, false).starts_with("HTTP/1.1 405 "));
}
