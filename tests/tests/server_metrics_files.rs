//! `uring_server_sent_bytes_total` counts file bodies however they leave: spliced from
//! the page cache (the default for files too large to keep in memory), with the head
//! riding the splice or sent on its own (a Range answer, a keep-alive series), and read
//! through user space (`--file-body read`). Every byte a client received is in the counter,
//! and no byte more.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::load::{ChildGuard, TempDir};
use uring_tests::{bin, free_port, wait_for_listener};

/// One request on a fresh connection; every byte of the answer (read to the close).
fn fetch(addr: SocketAddr, path: &str, extra: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// Several requests on one keep-alive connection, the last with `Connection: close`;
/// every byte received.
fn fetch_keep_alive(addr: SocketAddr, paths: &[&str]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = String::new();
    for (i, p) in paths.iter().enumerate() {
        let close = if i + 1 == paths.len() {
            "Connection: close\r\n"
        } else {
            ""
        };
        req.push_str(&format!("GET {p} HTTP/1.1\r\nHost: x\r\n{close}\r\n"));
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// The value of an unlabelled counter in the metrics text.
fn counter(metrics: SocketAddr, name: &str) -> u64 {
    let text = String::from_utf8(fetch(metrics, "/metrics", "")).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse::<f64>()
        .unwrap() as u64
}

fn served_files(extra: &[&str]) {
    let dir = TempDir::new("metrics-files");
    // Larger than what the server keeps in memory: these stream from the file.
    let sizes = [3 << 20, 2 << 20, (1 << 20) + 4097];
    for (i, size) in sizes.iter().enumerate() {
        let body: Vec<u8> = (0..*size as u32).map(|b| (b % 251) as u8).collect();
        std::fs::write(dir.path().join(format!("f{i}.bin")), body).unwrap();
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _srv = ChildGuard(
        Command::new(bin("uring-server"))
            .args(["--listen", &addr.to_string(), "-w", "1", "--no-pin"])
            .args(["--root", dir.path().to_str().unwrap()])
            .args(["--metrics", &metrics.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(addr, Duration::from_secs(10));
    wait_for_listener(metrics, Duration::from_secs(10));
    let name = "uring_server_sent_bytes_total";
    let before = counter(metrics, name);
    let mut received = 0;
    for (i, size) in sizes.iter().enumerate() {
        let got = fetch(addr, &format!("/f{i}.bin"), "");
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(
            got.len() > *size,
            "the whole of f{i}.bin: {} bytes",
            got.len()
        );
        received += got.len();
    }
    let range = fetch(addr, "/f0.bin", "Range: bytes=100-1500099\r\n");
    assert!(range.starts_with(b"HTTP/1.1 206 "));
    received += range.len();
    let series = fetch_keep_alive(addr, &["/f1.bin", "/f2.bin", "/f1.bin"]);
    assert_eq!(
        String::from_utf8_lossy(&series)
            .matches("HTTP/1.1 200 OK")
            .count(),
        3
    );
    received += series.len();
    assert!(received > 10 << 20);
    // Workers publish their counts once per tick (at most a second).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = counter(metrics, name) - before;
    while sent != received as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        sent = counter(metrics, name) - before;
    }
    assert_eq!(
        sent, received as u64,
        "{name} against what the clients read"
    );
}

#[test]
fn sent_bytes_count_spliced_file_bodies() {
    // `splice` sends cached pages with sendfile on the worker's thread, `splice-ring`
    // through the ring's SPLICE pair: both leave the head in the driver's send buffer.
    served_files(&["--file-body", "splice"]);
    served_files(&["--file-body", "splice-ring"]);
}

#[test]
fn sent_bytes_count_file_bodies_read_through_user_space() {
    served_files(&["--file-body", "read"]);
}
