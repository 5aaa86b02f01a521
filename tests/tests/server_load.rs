//! Short bounded loads against uring-server from wrk, h2load and ab (zero errors, counts
//! parsed from their output), then the fd count must return to its idle value, also
//! after a storm of misbehaving clients (resets, garbage, abandoned heads and bodies,
//! clients that never read), and the server must still serve.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use uring_tests::server::{exchange, run_tool, ServerProc};

fn number_after(out: &str, key: &str) -> Option<u64> {
    let i = out.find(key)? + key.len();
    out[i..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn wrk(url: &str, conns: u32) -> u64 {
    let (ok, out) = run_tool(
        Command::new("wrk").args(["-t1", &format!("-c{conns}"), "-d1s", "--timeout", "5s", url]),
        Duration::from_secs(30),
    );
    assert!(ok, "wrk failed: {out}");
    assert!(
        !out.contains("Socket errors"),
        "wrk saw socket errors: {out}"
    );
    assert!(!out.contains("Non-2xx"), "wrk saw non-2xx: {out}");
    let n = number_after(&out, "\n").and(
        out.split_whitespace()
            .collect::<Vec<_>>()
            .windows(3)
            .find_map(|w| {
                (w[1] == "requests" && w[2] == "in")
                    .then(|| w[0].parse::<u64>().ok())
                    .flatten()
            }),
    );
    let n = n.unwrap_or_else(|| panic!("no request count in wrk output: {out}"));
    assert!(n > 0, "{out}");
    n
}

fn h2load(url: &str, n: u32, c: u32) {
    let (ok, out) = run_tool(
        Command::new("h2load").args([
            "--h1",
            "-n",
            &n.to_string(),
            "-c",
            &c.to_string(),
            "-t1",
            url,
        ]),
        Duration::from_secs(60),
    );
    assert!(ok, "h2load failed: {out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no summary in h2load output: {out}"));
    let want = format!(
        "requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed, 0 errored, 0 timeout"
    );
    assert_eq!(line.trim(), want, "{out}");
    let codes = out
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .unwrap();
    assert!(
        codes.starts_with(&format!("status codes: {n} 2xx")),
        "{codes}"
    );
}

fn ab(url: &str, n: u32, c: u32, keep_alive: bool) {
    let mut cmd = Command::new("ab");
    cmd.args(["-q", "-n", &n.to_string(), "-c", &c.to_string(), "-s", "10"]);
    if keep_alive {
        cmd.arg("-k");
    }
    cmd.arg(url);
    let (ok, out) = run_tool(&mut cmd, Duration::from_secs(60));
    assert!(ok, "ab failed: {out}");
    assert_eq!(
        number_after(&out, "Complete requests:"),
        Some(n as u64),
        "{out}"
    );
    assert_eq!(number_after(&out, "Failed requests:"), Some(0), "{out}");
    assert!(!out.contains("Non-2xx responses"), "{out}");
    if keep_alive {
        assert_eq!(
            number_after(&out, "Keep-Alive requests:"),
            Some(n as u64),
            "{out}"
        );
    }
}

#[test]
fn wrk_h2load_ab_with_zero_errors_and_no_fd_leak() {
    for tier in uring_tests::TIERS {
        let srv = ServerProc::start(&["--tier", tier]);
        let idle = srv.settled_fd_count();
        wrk(&srv.url("/plaintext"), 32);
        wrk(&srv.url("/json"), 8);
        h2load(&srv.url("/plaintext"), 3000, 16);
        ab(&srv.url("/json"), 2000, 8, true);
        ab(&srv.url("/plaintext"), 500, 4, false);
        let after = srv.wait_fd_count(idle, Duration::from_secs(5));
        assert_eq!(after, idle, "{tier}: fds after load");
        let r = exchange(srv.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
    }
}

#[test]
fn fault_storm_leaves_no_fd_behind() {
    for tier in uring_tests::TIERS {
        let srv = ServerProc::start(&["--tier", tier]);
        let idle = srv.settled_fd_count();
        let mut kept = Vec::new();
        for i in 0..300 {
            let mut s = TcpStream::connect(srv.addr).unwrap();
            match i % 6 {
                // Connect and vanish.
                0 => drop(s),
                // Reset in the middle of a head.
                1 => {
                    let _ = s.write_all(b"GET /plaintext HTTP/1.1\r\nHo");
                    uring_tests::set_linger_zero(&s);
                }
                // Garbage: 400 and close.
                2 => {
                    let _ = s.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
                }
                // Pipeline a lot, never read, reset (the server's sends fail mid-response).
                3 => {
                    let _ = s.write_all(&b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3000));
                    uring_tests::set_linger_zero(&s);
                }
                // Half a body, then reset.
                4 => {
                    let _ = s.write_all(
                        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc",
                    );
                    uring_tests::set_linger_zero(&s);
                }
                // Stay connected with a partial head for a while.
                _ => {
                    let _ = s.write_all(b"GET /plaintext HTTP/1.1\r\n");
                    kept.push(s);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        drop(kept);
        let after = srv.wait_fd_count(idle, Duration::from_secs(10));
        assert_eq!(after, idle, "{tier}: fds after the storm");
        let r = exchange(srv.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, &r.body[..]), (200, &b"Hello, World!"[..]));
    }
}

/// A tiny ring (8 SQ, 16 CQ entries) under 64 pipelining clients: completions overflow
/// the CQ into the kernel's backlog and SQEs queue up in the worker. Every response must
/// still arrive, in order, on every tier.
#[test]
fn tiny_ring_overflows_without_losing_a_response() {
    for tier in uring_tests::TIERS {
        let srv = ServerProc::start(&["--tier", tier, "--sq-entries", "8", "--cq-entries", "16"]);
        let idle = srv.settled_fd_count();
        let joins: Vec<_> = (0..64)
            .map(|i| {
                let addr = srv.addr;
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    for _ in 0..5 {
                        let mut burst = Vec::new();
                        for k in 0..50 {
                            let p = if (i + k) % 2 == 0 {
                                "/plaintext"
                            } else {
                                "/json"
                            };
                            burst.extend_from_slice(
                                format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                            );
                        }
                        s.write_all(&burst).unwrap();
                        let rs = uring_tests::server::read_responses(&mut s, 50, &[]);
                        for (k, r) in rs.iter().enumerate() {
                            let want: &[u8] = if (i + k) % 2 == 0 {
                                b"Hello, World!"
                            } else {
                                b"{\"message\":\"Hello, World!\"}"
                            };
                            assert_eq!(r.body, want);
                        }
                    }
                })
            })
            .collect();
        for j in joins {
            j.join().expect("client failed");
        }
        assert_eq!(
            srv.wait_fd_count(idle, Duration::from_secs(5)),
            idle,
            "{tier}"
        );
        wrk(&srv.url("/plaintext"), 64);
    }
}
