//! An upstream that folds a response field (obs-fold, RFC 9112 section 5.2) behind
//! uring-server's proxy: "A proxy or gateway that receives an obs-fold in a response
//! message ... MUST either discard the message and replace it with a 502 (Bad Gateway)
//! response ... or replace each received obs-fold with one or more SP octets prior to
//! interpreting the field value or forwarding the message downstream." The proxy does
//! the second; the client must never see a fold or a bare LF. The upstream is a plain
//! listener in this test, since no real server library still sends folds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use uring_tests::server::ServerProc;

/// Answers each request on each connection with `head` and the 2-byte body "ok";
/// stops by itself after `connections` connections.
fn folding_upstream(head: &'static [u8], connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    if s.write_all(head).and_then(|_| s.write_all(b"ok")).is_err() {
                        return;
                    }
                }
            }
        }
    });
    addr
}

/// One GET through the proxy; the raw bytes of the response (read until its body).
fn fetch(proxy: &ServerProc) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    raw
}

fn head_of(raw: &[u8]) -> String {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head: {:?}", String::from_utf8_lossy(raw)));
    String::from_utf8_lossy(&raw[..end + 2]).to_string()
}

#[test]
fn folded_response_fields_reach_the_client_unfolded() {
    // Folds with CRLF + SP, CRLF + HTAB, and a bare LF + SP line end (the parser is
    // liberal about bare LF in responses), and a folded field named by nothing special.
    let head: &'static [u8] = b"HTTP/1.1 200 OK\r\nX-Fold: first\r\n second\r\n\tthird\r\nX-Bare: one\n two\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n";
    let upstream = folding_upstream(head, 2);
    let proxy = ServerProc::start(&["--proxy", &format!("/=http://{upstream}")]);
    for _ in 0..2 {
        let raw = fetch(&proxy);
        let head = head_of(&raw);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            raw.ends_with(b"\r\n\r\nok"),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
        for (at, _) in head.match_indices('\n') {
            assert!(
                at > 0 && head.as_bytes()[at - 1] == b'\r',
                "a bare LF at {at}: {head:?}"
            );
        }
        for line in head.split("\r\n").skip(1) {
            assert!(
                !line.starts_with([' ', '\t']),
                "a folded line {line:?} in {head:?}"
            );
        }
        let field = |name: &str| {
            head.split("\r\n")
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {head:?}"))
                .to_string()
        };
        // Each fold became spaces; the words and their order are kept.
        let fold = field("X-Fold: ");
        assert_eq!(
            fold.split_ascii_whitespace().collect::<Vec<_>>(),
            ["first", "second", "third"],
            "{head:?}"
        );
        let bare = field("X-Bare: ");
        assert_eq!(
            bare.split_ascii_whitespace().collect::<Vec<_>>(),
            ["one", "two"],
            "{head:?}"
        );
    }
}
