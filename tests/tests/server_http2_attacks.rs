//! HTTP/2 attacks against the real server (issue 21): each is answered with GOAWAY
//! ENHANCE_YOUR_CALM and a close, counted in the metrics by reason, and the server goes on
//! serving everybody else. The attack bytes are built with the shared codec's frame layer
//! (the same code the server parses with, so a frame is exactly what RFC 9113 says).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use uring_common::h2::frame::{
    Continuation, Headers, Ping, RstStream, Setting, SettingId, Settings,
};
use uring_common::h2::{ErrorCode, PREFACE};
use uring_tests::reliability::TestServer;

/// The client preface and an empty SETTINGS, as every connection starts.
fn start() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    Settings::encode(&[], &mut out);
    out
}

/// A minimal HPACK block: `:method GET`, `:scheme http`, `:path /`, `:authority a`
/// (indexed static entries and one literal).
const REQUEST_BLOCK: &[u8] = &[0x82, 0x86, 0x84, 0x41, 0x01, b'a'];

/// Send `attack`, read until the server closes; the GOAWAY's error code if one came.
fn goaway_after(srv: &TestServer, attack: &[u8]) -> Option<u32> {
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close while we still write: what it sent before is what counts.
    let _ = s.write_all(attack);
    let mut got = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server never closed"
        );
    }
    let mut at = 0;
    let mut code = None;
    while at + 9 <= got.len() {
        let len = (got[at] as usize) << 16 | (got[at + 1] as usize) << 8 | got[at + 2] as usize;
        if got[at + 3] == 7 && at + 9 + 8 <= got.len() {
            let p = &got[at + 9..];
            code = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
        }
        at += 9 + len;
    }
    code
}

fn metric(addr: &str, line: &str) -> bool {
    let out = Command::new("curl")
        .args(["-sS", "-m", "5"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l == line)
}

#[test]
fn floods_are_answered_enhance_your_calm_and_counted() {
    let metrics = format!("127.0.0.1:{}", uring_tests::free_port());
    let srv = TestServer::start(&["--no-pin", "--metrics", &metrics]);
    let calm = ErrorCode::ENHANCE_YOUR_CALM.0;

    // Rapid reset (CVE-2023-44487): streams opened and cancelled at once, by thousands.
    let mut a = start();
    for i in 0..2000u32 {
        let stream = 1 + 2 * i;
        Headers::encode(stream, REQUEST_BLOCK, true, true, &mut a);
        RstStream::encode(stream, ErrorCode::CANCEL, &mut a);
    }
    assert_eq!(goaway_after(&srv, &a), Some(calm), "rapid reset");

    // CONTINUATION flood (CVE-2024-27316): a field block that never ends.
    let mut a = start();
    Headers::encode(1, REQUEST_BLOCK, true, false, &mut a);
    for _ in 0..10_000 {
        Continuation::encode(1, &[0x40, 0x01, b'x', 0x01, b'y'], false, &mut a);
    }
    let code = goaway_after(&srv, &a);
    assert!(code == Some(calm), "CONTINUATION flood: {code:?}");

    // PING flood: far more PINGs than anyone needs.
    let mut a = start();
    for i in 0..20_000u64 {
        Ping::encode(false, i.to_be_bytes(), &mut a);
    }
    assert_eq!(goaway_after(&srv, &a), Some(calm), "PING flood");

    // SETTINGS flood.
    let mut a = start();
    for _ in 0..20_000 {
        Settings::encode(&[], &mut a);
    }
    assert_eq!(goaway_after(&srv, &a), Some(calm), "SETTINGS flood");

    // Counted by reason, and the server still serves.
    let want = [
        "uring_server_http2_closes_total{reason=\"rapid_reset\"} 1",
        "uring_server_http2_closes_total{reason=\"continuation_flood\"} 1",
        "uring_server_http2_closes_total{reason=\"ping_flood\"} 1",
        "uring_server_http2_closes_total{reason=\"settings_flood\"} 1",
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !want.iter().all(|w| metric(&metrics, w)) {
        assert!(Instant::now() < deadline, "metrics never showed {want:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("curl")
        .args(["-sS", "-m", "5", "--http2-prior-knowledge"])
        .arg(format!("http://{}/plaintext", srv.addr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, World!");
}

#[test]
fn a_reader_that_never_opens_its_window_is_closed_at_the_keepalive_timeout() {
    let dir = uring_tests::load::TempDir::new("h2-zero-window");
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 8 << 20]).unwrap();
    let srv = TestServer::start(&[
        "--no-pin",
        "--keepalive-timeout",
        "1s",
        "--root",
        dir.path().to_str().unwrap(),
    ]);
    // Windows of 0: the server may send headers, not one byte of body.
    let mut a = PREFACE.to_vec();
    Settings::encode(
        &[Setting {
            id: SettingId::InitialWindowSize,
            value: 0,
        }],
        &mut a,
    );
    // :method GET, :scheme http, :path /big.bin (literal), :authority a.
    let mut block = vec![0x82, 0x86, 0x44, 8];
    block.extend_from_slice(b"/big.bin");
    block.extend_from_slice(&[0x41, 0x01, b'a']);
    Headers::encode(1, &block, true, true, &mut a);
    let started = Instant::now();
    assert_eq!(goaway_after(&srv, &a), Some(ErrorCode::NO_ERROR.0));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
