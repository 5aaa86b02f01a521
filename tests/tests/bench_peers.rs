//! The baseline servers of the benchmarks answer correctly, so that their numbers mean
//! something: 16 pipelined requests in one write get 16 responses, requests split across
//! writes count once, and a client that half-closes after its requests still gets every
//! response.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uring_tests::{bin, free_port, wait_for_listener};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(name: &str, extra: &[&str]) -> (Server, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(bin(name))
        .args(["-w", "1", "--listen", &addr.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let s = Server(child);
    wait_for_listener(addr, Duration::from_secs(10));
    (s, addr)
}

const REQ: &str = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";

/// Read until `n` bodies of `Hello, World!` arrived or the peer closed; returns the count.
fn count_responses(s: &mut TcpStream, n: usize) -> usize {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let count = got
            .windows(13)
            .filter(|w: &&[u8]| *w == b"Hello, World!")
            .count();
        if count >= n {
            return count;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return count,
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
}

fn check(name: &str, extra: &[&str]) {
    let (_server, addr) = start(name, extra);
    // 16 pipelined requests in one write.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(REQ.repeat(16).as_bytes()).unwrap();
    assert_eq!(count_responses(&mut s, 16), 16, "{name}: pipelined");
    // One request split in the middle of its final CRLF CRLF.
    let (a, b) = REQ.split_at(REQ.len() - 2);
    s.write_all(a.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b.as_bytes()).unwrap();
    assert_eq!(count_responses(&mut s, 1), 1, "{name}: split request");
    // Half-close after 64 requests: every response still arrives, then the server closes.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(REQ.repeat(64).as_bytes()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        count_responses(&mut s, usize::MAX),
        64,
        "{name}: half-closed client"
    );
}

#[test]
fn floor_multishot_answers_every_request() {
    check("floor", &["--tier", "multishot"]);
}

#[test]
fn floor_basic_tier_answers_every_request() {
    check("floor", &["--tier", "basic"]);
}

#[test]
fn tokio_uring_server_answers_every_request() {
    check("tokio-uring-server", &[]);
}

#[test]
fn hyper_server_answers_every_request() {
    check("hyper-server", &[]);
}
