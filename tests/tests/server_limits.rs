//! Issue 23, limits per client address: `--limit-req RATE,burst=N` lets exactly
//! `burst + 1` requests through at once and answers the rest 429 with `Retry-After`,
//! shared by every worker, over HTTP/1.1 and HTTP/2, per path prefix too, counted in the
//! metrics and shown in the access log; `--limit-conn N` closes the connections of an
//! address beyond N at accept.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use uring_tests::server::{
    closed_by_server, exchange, read_responses, run_tool, Resp, ServerProc, TempDir,
};
use uring_tests::{free_port, wait_for_listener};

fn get(addr: SocketAddr, path: &str) -> Resp {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The value of an unlabelled metric.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Poll `f` until it returns `want` (metrics are published once per worker tick).
fn eventually(want: u64, f: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = f();
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_burst_is_cut_at_the_bucket_across_workers() {
    let dir = TempDir::new("limit-req");
    let log = dir.path().join("access.log");
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // 6 r/m leaks one request every 10 s: the test's requests all fall in the burst.
    let srv = ServerProc::start(&[
        "-w",
        "2",
        "--limit-req",
        "6r/m,burst=4",
        "--limit-req",
        "/json=6r/m,burst=1",
        "--access-log",
        log.to_str().unwrap(),
        "--metrics",
        &metrics.to_string(),
    ]);
    wait_for_listener(metrics, Duration::from_secs(10));
    // A new connection per request: SO_REUSEPORT spreads them over both workers.
    let statuses: Vec<Resp> = (0..12).map(|_| get(srv.addr, "/plaintext")).collect();
    let ok = statuses.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Resp> = statuses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok, limited.len()),
        (5, 7),
        "burst + 1 pass, the rest are 429"
    );
    assert!(statuses[..5].iter().all(|r| r.status == 200));
    for r in &limited {
        let wait: u64 = r.header("Retry-After").unwrap().parse().unwrap();
        assert!((1..=10).contains(&wait), "Retry-After {wait}");
    }
    // A prefix of its own: a bucket of its own, burst 1.
    let json: Vec<u16> = (0..4).map(|_| get(srv.addr, "/json").status).collect();
    assert_eq!(json, [200, 200, 429, 429]);

    // HTTP/2 (nghttp: two streams on one connection): the /plaintext bucket is still full.
    let url = |q: &str| format!("http://{}/plaintext?{q}", srv.addr);
    let (done, out) = run_tool(
        Command::new("nghttp").args(["-nv", "-t", "20", &url("a"), &url("b")]),
        Duration::from_secs(30),
    );
    assert!(done, "{out}");
    let statuses: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(":status: ").nth(1))
        .collect();
    assert_eq!(statuses, ["429", "429"], "{out}");
    assert_eq!(
        eventually(11, || metric(
            metrics,
            "uring_server_limited_requests_total"
        )),
        11
    );
    let lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\" 429 "))
            .count() as u64
    };
    assert_eq!(eventually(11, lines), 11, "the access log shows every 429");
}

#[test]
fn the_bucket_refills_at_the_rate() {
    // 10 r/s: after the burst, one more request passes every 100 ms.
    let srv = ServerProc::start(&["--limit-req", "10r/s,burst=2"]);
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ask = |n: usize| -> Vec<u16> {
        let req = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(n);
        s.write_all(req.as_bytes()).unwrap();
        read_responses(&mut s, n, &[])
            .iter()
            .map(|r| r.status)
            .collect()
    };
    let first = ask(6);
    assert_eq!(
        first,
        [200, 200, 200, 429, 429, 429],
        "pipelined, keep-alive"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(ask(4), [200, 200, 200, 429], "refilled to the full burst");
}

#[test]
fn connections_beyond_the_limit_are_closed_at_accept() {
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let srv = ServerProc::start(&[
        "-w",
        "2",
        "--limit-conn",
        "2",
        "--metrics",
        &metrics.to_string(),
    ]);
    wait_for_listener(metrics, Duration::from_secs(10));
    let ask = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_responses(s, 1, &[]).remove(0).status
    };
    // A connection that is served, retried until the server has seen earlier ones
    // close (the start-up probe's, the one dropped below).
    let refused = std::cell::Cell::new(3u64);
    let served = || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = srv.connect();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut buf = vec![0u8; 1024];
            let n = c.read(&mut buf).unwrap_or(0);
            if buf[..n].starts_with(b"HTTP/1.1 200") {
                return c;
            }
            refused.set(refused.get() + 1);
            assert!(Instant::now() < deadline, "no place for a connection");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let a = served();
    let mut b = served();
    for _ in 0..3 {
        let mut c = srv.connect();
        let _ = c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            closed_by_server(&mut c, Duration::from_secs(5)),
            "a third is closed"
        );
    }
    // One closes: a new one is let in once the server has seen the close.
    drop(a);
    let _c = served();
    assert_eq!(ask(&mut b), 200, "the open ones are served as before");
    let want = refused.get();
    assert_eq!(
        eventually(want, || metric(
            metrics,
            "uring_server_limited_connections_total"
        )),
        want,
        "the three, and the retries while a close was not seen yet"
    );
}
