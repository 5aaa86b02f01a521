//! Fault injection against a running uring-server: a full fd table, clients that reset or
//! half-close, slowloris, ten thousand idle connections, buffer-ring exhaustion from large
//! bodies, and SIGTERM under load. Each test ends by proving the server still serves and
//! let go of what the faults took (open fds back at their idle value).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uring_tests::reliability::{fd_targets, open_fds, Ending, RawConn, TestServer, PROBE};

const CLOSE_REQ: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// Lower (or raise) RLIMIT_NOFILE in the child before exec.
fn nofile_limit(cmd: &mut std::process::Command, n: u64) {
    // SAFETY: setrlimit(2) is async-signal-safe; nothing is allocated in the closure.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Raise this process's own fd limit (to 65,536 where allowed, else to the hard limit);
/// returns the new soft limit.
fn raise_own_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        // Root (CI) may raise the hard limit too; others get their hard limit.
        let want = lim.rlim_max.max(65_536);
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// CPU time (user + system) of a process in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64
}

/// Wait until the server's fd count is back to `idle` (or below); returns the last count.
fn fds_settle(pid: u32, idle: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = open_fds(pid);
        if n <= idle || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One GET /plaintext on a fresh connection answered 200: the server still serves.
fn assert_serves(addr: SocketAddr, what: &str) {
    let mut c = RawConn::connect(addr).unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    c.send(PROBE).unwrap();
    let (_, r) = c
        .read_final(Duration::from_secs(10), false)
        .unwrap_or_else(|e| panic!("{what}: no answer to a fresh request: {e}"));
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(r.body, b"Hello, World!", "{what}");
}

/// A static root with one large file of known bytes.
struct Root {
    dir: std::path::PathBuf,
}

impl Root {
    fn new(tag: &str, big_len: usize) -> Root {
        let dir =
            std::env::temp_dir().join(format!("uring-reliability-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big.bin"), big_content(big_len)).unwrap();
        Root { dir }
    }
    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn big_content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// One `#[test]` per kernel tier, so accept, receive and timer paths of each are covered.
macro_rules! per_tier {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn basic() {
                super::$body("basic");
            }
            #[test]
            fn multishot() {
                super::$body("multishot");
            }
            #[test]
            fn full() {
                super::$body("full");
            }
            #[test]
            fn epoll() {
                super::$body("epoll");
            }
        }
    };
}

per_tier!(emfile_storm_backs_off_and_recovers, emfile_storm);

fn emfile_storm(tier: &str) {
    raise_own_nofile();
    // 64 fds: a few for the server itself, the rest for about fifty connections.
    let mut server = TestServer::start_with(&["--tier", tier], |cmd| nofile_limit(cmd, 64));
    let pid = server.guard.pid();
    let idle = server.idle_fds();

    // Phase 1: 300 one-shot clients at once, four times what the table holds; each must be
    // answered as earlier ones close.
    let mut conns: Vec<RawConn> = (0..300)
        .map(|_| RawConn::connect(server.addr).expect("connect (lands in the backlog)"))
        .collect();
    for c in &mut conns {
        c.send(CLOSE_REQ).unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let (_, r) = c
            .read_final(Duration::from_secs(30), false)
            .unwrap_or_else(|e| panic!("client {i} of the storm was not answered: {e}"));
        assert_eq!(r.status, 200, "client {i}");
        assert!(
            matches!(c.ending(Duration::from_secs(10)), Ending::Closed),
            "client {i}: Connection: close was not honoured"
        );
    }
    drop(conns);

    // Phase 2: 120 keep-alive clients hold their connections: about fifty are served, the
    // rest wait while accept keeps failing with EMFILE. That must not spin.
    let mut held: Vec<RawConn> = (0..120)
        .map(|_| RawConn::connect(server.addr).unwrap())
        .collect();
    for c in &mut held {
        c.send(PROBE).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = (cpu_ticks(pid) - t0) as f64 / ticks_per_sec() as f64;
    assert!(
        spent < 0.5,
        "the server used {spent:.2}s of CPU in 2s with a full fd table: accept is spinning on EMFILE"
    );
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for c in held {
        c.stream.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let has_data = matches!(c.stream.peek(&mut b), Ok(n) if n > 0);
        c.stream.set_nonblocking(false).unwrap();
        if has_data {
            served.push(c);
        } else {
            waiting.push(c);
        }
    }
    assert!(
        !served.is_empty() && !waiting.is_empty(),
        "expected the fd limit to split the clients: {} served, {} waiting",
        served.len(),
        waiting.len()
    );
    for c in &mut served {
        let (_, r) = c.read_final(Duration::from_secs(5), false).unwrap();
        assert_eq!(r.status, 200);
    }
    // Release the table: the waiting ones get in and are answered.
    drop(served);
    // Each closes after its answer, as a one-shot client would, freeing its fd in turn.
    for (i, mut c) in waiting.into_iter().enumerate() {
        let (_, r) = c
            .read_final(Duration::from_secs(30), false)
            .unwrap_or_else(|e| panic!("waiting client {i} never served after fds freed: {e}"));
        assert_eq!(r.status, 200);
    }
    assert!(server.alive(), "server died: {}", server.log_text());
    let n = fds_settle(pid, idle, Duration::from_secs(10));
    assert!(n <= idle, "server fds {n} after the storm, {idle} before");
    assert_serves(server.addr, "after the EMFILE storm");
}

/// Clients that request a large file and reset (RST) at different points of the response.
fn reset_storm(addr: SocketAddr) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..40 {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                        .unwrap();
                    // Vary the moment of the reset: before reading, after a little, after a lot.
                    let want = [0usize, 1, 4096, 1 << 20][(t + i) % 4];
                    let mut got = 0;
                    let mut buf = vec![0u8; 64 * 1024];
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    while got < want {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got += n,
                        }
                    }
                    uring_tests::set_linger_zero(&s);
                    drop(s); // RST
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn clients_that_reset_mid_response() {
    let root = Root::new("reset", 8 << 20);
    let mut server = TestServer::start(&["--root", root.path()]);
    let pid = server.guard.pid();
    let idle = server.idle_fds();
    reset_storm(server.addr);
    assert!(server.alive(), "server died: {}", server.log_text());
    // Every socket is closed (the files are the next test's business).
    let deadline = Instant::now() + Duration::from_secs(10);
    let sockets = |pid| {
        fd_targets(pid)
            .iter()
            .filter(|t| t.starts_with("socket:"))
            .count()
    };
    let idle_sockets = 1;
    while sockets(pid) > idle_sockets && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sockets(pid),
        idle_sockets,
        "sockets left open after 160 resets: {:?}",
        fd_targets(pid)
    );
    assert_serves(server.addr, "after resets mid-response");
    // A full download still arrives intact.
    let mut c = RawConn::connect(server.addr).unwrap();
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let (_, r) = c.read_final(Duration::from_secs(30), false).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body == big_content(8 << 20),
        "the large file came back altered"
    );
    let _ = idle;
}

/// After resets mid-download every fd goes back, files included: a closed connection must
/// not keep the file it was sending until its slot is reused (found by this test, fixed in
/// the server). The worker's open-file cache keeps one fd of the file on purpose (issue
/// 9, 4h), so the bound is idle + 1 and at most one fd may name the file.
#[test]
fn resets_mid_download_release_file_fds() {
    let root = Root::new("reset-fds", 8 << 20);
    let server = TestServer::start(&["--root", root.path()]);
    let pid = server.guard.pid();
    let idle = server.idle_fds();
    reset_storm(server.addr);
    let n = fds_settle(pid, idle + 1, Duration::from_secs(10));
    let file_fds = fd_targets(pid)
        .iter()
        .filter(|t| t.ends_with("big.bin"))
        .count();
    assert!(
        n <= idle + 1 && file_fds <= 1,
        "server fds {n} after 160 resets, {idle} before, {file_fds} on the file; still open: {:?}",
        fd_targets(pid)
    );
}

per_tier!(half_closed_clients_get_their_answers, half_closed);

fn half_closed(tier: &str) {
    let mut server = TestServer::start(&["--tier", tier]);
    let pid = server.guard.pid();
    let idle = server.idle_fds();
    for pipelined in [1usize, 3, 20] {
        let mut c = RawConn::connect(server.addr).unwrap();
        c.send(&PROBE.repeat(pipelined)).unwrap();
        c.shutdown_write();
        for i in 0..pipelined {
            let (_, r) = c
                .read_final(Duration::from_secs(5), false)
                .unwrap_or_else(|e| panic!("{pipelined} pipelined then FIN: answer {i}: {e}"));
            assert_eq!(r.status, 200);
        }
        assert_eq!(
            c.ending(Duration::from_secs(5)),
            Ending::Closed,
            "after answering a half-closed client the server should close"
        );
    }
    // FIN in the middle of a head or a body: nothing to answer (or a 400), then close.
    for partial in [
        &b"GET /plaintext HTTP/1.1\r\nHo"[..],
        b"GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
        b"",
    ] {
        let mut c = RawConn::connect(server.addr).unwrap();
        c.send(partial).unwrap();
        c.shutdown_write();
        let end = c.ending(Duration::from_secs(5));
        let ok = match &end {
            Ending::Closed | Ending::Reset => true,
            Ending::Extra(b) => b.starts_with(b"HTTP/1.1 400"),
            Ending::Open => false,
        };
        assert!(
            ok,
            "FIN after {:?}: {end:?}",
            String::from_utf8_lossy(partial)
        );
    }
    assert!(server.alive());
    let n = fds_settle(pid, idle, Duration::from_secs(10));
    assert!(
        n <= idle,
        "server fds {n} after half-closed clients, {idle} before"
    );
}

per_tier!(
    slowloris_is_cut_at_the_header_timeout_while_others_are_served,
    slowloris
);

fn slowloris(tier: &str) {
    let server = TestServer::start(&["--header-timeout", "2s", "--tier", tier]);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    // Ten slow clients, one byte per second of a head that never ends.
    let slow: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(900)))
                    .unwrap();
                let head =
                    b"GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let mut got = Vec::new();
                for b in head.iter() {
                    if s.write_all(std::slice::from_ref(b)).is_err() {
                        return (start.elapsed(), got);
                    }
                    let mut buf = [0u8; 512];
                    match s.read(&mut buf) {
                        Ok(0) => return (start.elapsed(), got),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return (start.elapsed(), got),
                    }
                }
                (start.elapsed(), got)
            })
        })
        .collect();
    // Meanwhile, ordinary clients keep being served.
    let served = Arc::new(AtomicUsize::new(0));
    let normal = {
        let (stop, served) = (stop.clone(), served.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut c = RawConn::connect(addr).unwrap();
                c.send(CLOSE_REQ).unwrap();
                let (_, r) = c.read_final(Duration::from_secs(5), false).unwrap();
                assert_eq!(r.status, 200);
                served.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    for t in slow {
        let (elapsed, got) = t.join().unwrap();
        assert!(
            elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(15),
            "a slowloris connection lasted {elapsed:?} with a 2s header timeout"
        );
        // Anything sent before the close must be a 408, nothing else.
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            "slowloris got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    stop.store(true, Ordering::Relaxed);
    normal
        .join()
        .expect("a normal client failed during slowloris");
    assert!(
        served.load(Ordering::Relaxed) >= 10,
        "only {} normal requests served during slowloris",
        served.load(Ordering::Relaxed)
    );
}

/// Basic (a receive buffer per connection, the 5.10 path) and full (shared buffer ring),
/// one after the other: two at once would need 20,000 fds in this process.
#[test]
fn ten_thousand_idle_connections() {
    for tier in ["basic", "full", "epoll"] {
        idle_conns(tier);
    }
}

fn idle_conns(tier: &str) {
    let own = raise_own_nofile();
    // This process holds one fd per connection plus the test harness's own.
    let n = 10_000usize.min(own.saturating_sub(200) as usize);
    assert!(
        n >= 10_000,
        "RLIMIT_NOFILE hard limit {own} is too low for 10,000 connections"
    );
    let mut server = TestServer::start_with(&["--tier", tier], |cmd| {
        nofile_limit(cmd, (n as u64) + 1024)
    });
    let pid = server.guard.pid();
    let idle = server.idle_fds();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        match TcpStream::connect(server.addr) {
            Ok(s) => conns.push(s),
            Err(e) => panic!("connection {i} of {n}: {e}"),
        }
    }
    // All accepted: the server's fd count rises by n.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_fds(pid) < idle + n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        open_fds(pid) >= idle + n,
        "the server holds {} fds with {n} idle connections open (idle {idle})",
        open_fds(pid)
    );
    eprintln!(
        "tier {tier}: server RSS with {n} idle connections: {} KiB",
        uring_tests::reliability::rss_kib(pid)
    );
    // With all of them idle, a new client is served, and so is one of the idle ones.
    assert_serves(server.addr, "with 10,000 idle connections");
    conns[n / 2].write_all(PROBE).unwrap();
    let mut buf = [0u8; 256];
    conns[n / 2]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let got = conns[n / 2].read(&mut buf).unwrap();
    assert!(buf[..got].starts_with(b"HTTP/1.1 200"));
    drop(conns);
    assert!(server.alive(), "server died: {}", server.log_text());
    let left = fds_settle(pid, idle, Duration::from_secs(30));
    assert!(
        left <= idle,
        "server fds {left} after closing {n}, {idle} before"
    );
}

/// Many large bodies at once outrun the registered buffer ring (multishot and full tiers
/// end a multishot recv with ENOBUFS); no byte may be lost or duplicated: after each body
/// a pipelined probe must be answered, which only happens if the body was framed exactly.
#[test]
fn buffer_ring_exhaustion_from_large_bodies() {
    for tier in uring_tests::TIERS {
        let mut server = TestServer::start(&["--tier", tier]);
        let pid = server.guard.pid();
        let idle = server.idle_fds();
        let addr = server.addr;
        let clients: Vec<_> = (0..48)
            .map(|i| {
                std::thread::spawn(move || {
                    let len = 256 * 1024 + i * 997;
                    let body: Vec<u8> = (0..len).map(|j| (j % 256) as u8).collect();
                    let mut req = if i % 2 == 0 {
                        format!(
                            "GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n"
                        )
                        .into_bytes()
                    } else {
                        b"GET /plaintext HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            .to_vec()
                    };
                    if i % 2 == 0 {
                        req.extend_from_slice(&body);
                    } else {
                        for chunk in body.chunks(7001) {
                            req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                            req.extend_from_slice(chunk);
                            req.extend_from_slice(b"\r\n");
                        }
                        req.extend_from_slice(b"0\r\n\r\n");
                    }
                    req.extend_from_slice(PROBE);
                    let mut c = RawConn::connect(addr).unwrap();
                    // Write from a second thread so the server's responses never block us.
                    let mut w = c.stream.try_clone().unwrap();
                    let writer = std::thread::spawn(move || w.write_all(&req));
                    for k in 0..2 {
                        let (_, r) = c
                            .read_final(Duration::from_secs(60), false)
                            .unwrap_or_else(|e| panic!("client {i} response {k}: {e}"));
                        assert_eq!(r.status, 200, "client {i} response {k}");
                    }
                    writer.join().unwrap().unwrap();
                })
            })
            .collect();
        let mut failed = Vec::new();
        for (i, t) in clients.into_iter().enumerate() {
            if t.join().is_err() {
                failed.push(i);
            }
        }
        assert!(
            failed.is_empty(),
            "tier {tier}: clients {failed:?} failed; server log: {}",
            server.log_text()
        );
        assert!(server.alive(), "tier {tier}: server died");
        let n = fds_settle(pid, idle, Duration::from_secs(10));
        assert!(n <= idle, "tier {tier}: server fds {n}, {idle} before");
    }
}

// SIGTERM while requests are in flight: a request whose head arrived before the signal is
// answered in full (its body may still be arriving), a large response being sent is
// finished, nothing is half-written, and the server exits 0.
per_tier!(
    sigterm_under_load_loses_nothing_accepted,
    sigterm_under_load
);

fn sigterm_under_load(tier: &str) {
    let big = 16 << 20;
    let root = Root::new(&format!("sigterm-{tier}"), big);
    let mut server = TestServer::start(&[
        "--root",
        root.path(),
        "--drain-timeout",
        "20s",
        "--tier",
        tier,
    ]);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));

    // Hammering keep-alive clients.
    let hammers: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || -> Result<usize, String> {
                let mut c = RawConn::connect(addr).map_err(|e| e.to_string())?;
                let mut answered = 0;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(answered);
                    }
                    if c.send(PROBE).is_err() {
                        return Ok(answered);
                    }
                    match c.read_final(Duration::from_secs(10), false) {
                        Ok((_, r)) => {
                            if r.status != 200 || r.body != b"Hello, World!" {
                                return Err(format!("bad response {r:?}"));
                            }
                            answered += 1;
                            if r.header("connection").is_some_and(|v| v.contains("close")) {
                                // Draining: the server said so; it must then close.
                                return match c.ending(Duration::from_secs(10)) {
                                    Ending::Closed | Ending::Reset => Ok(answered),
                                    e => Err(format!("Connection: close, then {e:?}")),
                                };
                            }
                        }
                        // The connection was idle when the drain closed it: the request
                        // crossed the close. Allowed only with nothing half-read.
                        Err(e) if c.saw_close() && e.contains("0 bytes buffered") => {
                            return Ok(answered)
                        }
                        Err(e) => return Err(format!("after {answered}: {e}")),
                    }
                }
            })
        })
        .collect();

    // A request in the middle of its body when the signal comes.
    let mut uploading = RawConn::connect(addr).unwrap();
    let body_len = 200_000;
    uploading
        .send(
            format!("GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: {body_len}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    uploading.send(&vec![b'x'; body_len / 2]).unwrap();

    // A large download in progress, read slowly across the signal.
    let mut downloading = TcpStream::connect(addr).unwrap();
    downloading
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    downloading
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut first = vec![0u8; 4096];
    let n0 = downloading.read(&mut first).unwrap();
    assert!(n0 > 0);
    first.truncate(n0);

    std::thread::sleep(Duration::from_millis(500));
    server.guard.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));

    // A connection attempt during the drain is refused or served, never taken into the
    // backlog and dropped unanswered when the server exits.
    let late = match RawConn::connect(addr) {
        Err(_) => None,
        Ok(mut c) => {
            let _ = c.send(PROBE);
            Some(c)
        }
    };

    // The upload finishes after the signal and must still be answered.
    uploading
        .send(&vec![b'x'; body_len - body_len / 2])
        .unwrap();
    let (_, r) = uploading
        .read_final(Duration::from_secs(10), false)
        .expect("the request whose body was arriving at SIGTERM was not answered");
    assert_eq!(r.status, 200);

    // The download completes byte for byte.
    let mut all = first;
    downloading.read_to_end(&mut all).expect("download cut");
    let head_end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("download head")
        + 4;
    assert!(all.starts_with(b"HTTP/1.1 200"));
    assert_eq!(
        all.len() - head_end,
        big,
        "the response in flight at SIGTERM was half-written"
    );
    assert!(all[head_end..] == big_content(big)[..], "download altered");

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for h in hammers {
        total += h.join().unwrap().expect("a client saw a broken response");
    }
    assert!(total > 0, "no requests were answered at all");
    let status = server
        .guard
        .wait_timeout(Duration::from_secs(30))
        .expect("the server did not exit within 30s of SIGTERM");
    if let Some(mut c) = late {
        match c.read_final(Duration::from_secs(5), false) {
            Ok((_, r)) => assert_eq!(r.status, 200, "late connection during the drain"),
            Err(e) => panic!(
                "a connection made during the drain was accepted (backlog) and then dropped \
                 without an answer: {e}"
            ),
        }
    }
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; log: {}",
        server.log_text()
    );
}
