//! uring-server's life: start-up failures in one line, graceful shutdown with requests
//! in flight (each gets its full response), the drain timeout, a second signal, the
//! connection cap, and EMFILE: with a low RLIMIT_NOFILE and more clients than fds, the
//! server waits without spinning and serves everyone once fds free up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::server::{closed_by_server, read_responses, ServerProc, TempDir};
use uring_tests::{bin, free_port};

fn big_root(mib: usize) -> TempDir {
    let root = TempDir::new("drain");
    let chunk: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(4096);
    let mut f = std::fs::File::create(root.path().join("big.bin")).unwrap();
    for _ in 0..mib {
        f.write_all(&chunk).unwrap();
    }
    root
}

#[test]
fn address_in_use_is_one_line_and_nonzero() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let out = Command::new(bin("uring-server"))
        .args(["--listen", &addr.to_string(), "-w", "1", "--no-pin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("address already in use"), "{err}");
    assert!(err.contains(&addr.to_string()), "{err}");

    // Another uring-server (same user, SO_REUSEPORT) must not be joined silently either.
    let first = ServerProc::start(&[]);
    let out = Command::new(bin("uring-server"))
        .args(["--listen", &first.addr.to_string(), "-w", "1", "--no-pin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("address already in use"));

    let out = Command::new(bin("uring-server"))
        .args(["--listen", "127.0.0.1:1", "--tier", "bogus"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let root = big_root(16);
    let mut srv = ServerProc::start(&["--root", root.path().to_str().unwrap()]);
    // A download in progress, read slowly.
    let mut dl = srv.connect();
    dl.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1024];
    dl.read_exact(&mut first).unwrap();
    // Requests whose heads are half sent.
    let mut partial: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = srv.connect();
            s.write_all(b"GET /plaintext HTTP/1.1\r\nHo").unwrap();
            s
        })
        .collect();
    // An idle keep-alive connection.
    let mut idle = srv.connect();
    idle.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    read_responses(&mut idle, 1, &[]);
    std::thread::sleep(Duration::from_millis(100));

    srv.signal(libc::SIGTERM);
    // The idle connection is closed promptly.
    assert!(closed_by_server(&mut idle, Duration::from_secs(3)));
    // New connections are no longer accepted.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(srv.addr).is_err(),
        "still accepting after SIGTERM"
    );
    // The half-sent requests complete and get full answers with Connection: close.
    for s in partial.iter_mut() {
        s.write_all(b"st: x\r\n\r\n").unwrap();
        let r = read_responses(s, 1, &[]).remove(0);
        assert_eq!((r.status, &r.body[..]), (200, &b"Hello, World!"[..]));
        assert_eq!(r.header("Connection").as_deref(), Some("close"));
        assert!(closed_by_server(s, Duration::from_secs(3)));
    }
    // The download completes in full.
    let mut rest = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        std::thread::sleep(Duration::from_millis(2));
        match dl.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) => panic!("download cut: {e} after {} bytes", rest.len()),
        }
    }
    let mut all = first.to_vec();
    all.extend_from_slice(&rest);
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &all[head_end..];
    assert_eq!(body.len(), 16 * 1024 * 1024);
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 256) as u8));
    let status = srv
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn drain_timeout_bounds_shutdown_and_second_signal_exits_at_once() {
    let root = big_root(32);
    // A client that never reads holds the drain up; --drain-timeout 1s ends it.
    let mut srv = ServerProc::start(&[
        "--root",
        root.path().to_str().unwrap(),
        "--drain-timeout",
        "1s",
    ]);
    let mut stuck = srv.connect();
    stuck
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    srv.signal(libc::SIGTERM);
    let status = srv
        .wait_exit(Duration::from_secs(8))
        .expect("drain timeout not honoured");
    assert_eq!(status.code(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(5));
    drop(stuck);

    let mut srv = ServerProc::start(&[
        "--root",
        root.path().to_str().unwrap(),
        "--drain-timeout",
        "60s",
    ]);
    let mut stuck = srv.connect();
    stuck
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    srv.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "exited before its drain"
    );
    srv.signal(libc::SIGINT);
    let status = srv
        .wait_exit(Duration::from_secs(3))
        .expect("second signal ignored");
    assert_ne!(status.code(), Some(0));
}

#[test]
fn connection_cap_makes_clients_wait_in_the_backlog() {
    for tier in uring_tests::TIERS {
        let srv = ServerProc::start(&["--max-conns", "4", "--tier", tier]);
        let mut first: Vec<TcpStream> = (0..4).map(|_| srv.connect()).collect();
        for s in first.iter_mut() {
            s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            read_responses(s, 1, &[]);
        }
        // More connect (kernel backlog) but are not served while four are open. The basic
        // tier may have one single-shot accept already armed, so it may serve one more.
        let mut waiting: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut s = srv.connect();
                s.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let mut served = 0;
        for s in waiting.iter_mut() {
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut b = [0u8; 16];
            if s.read(&mut b).is_ok() {
                served += 1;
            }
        }
        assert!(served <= 1, "{tier}: {served} served beyond the cap");
        drop(first);
        for s in waiting.iter_mut() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        // Everyone still waiting is served once the first four leave.
        for (i, s) in waiting.iter_mut().enumerate() {
            let mut buf = Vec::new();
            let mut b = [0u8; 4096];
            while !buf.ends_with(b"Hello, World!\"}") {
                let n = s
                    .read(&mut b)
                    .unwrap_or_else(|e| panic!("{tier}: client {i}: {e}"));
                assert!(n > 0, "{tier}: client {i} closed");
                buf.extend_from_slice(&b[..n]);
            }
        }
    }
}

#[test]
fn emfile_backs_off_without_spinning_and_recovers() {
    for tier in ["basic", "full", "epoll"] {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin("uring-server"));
        cmd.args(["--listen", &addr, "-w", "1", "--no-pin", "--tier", tier])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setrlimit is async-signal-safe; runs in the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 40,
                    rlim_max: 40,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let srv = ServerProc {
            child,
            addr: addr.parse().unwrap(),
        };
        uring_tests::server::wait_up(srv.addr);
        std::thread::sleep(Duration::from_millis(200));

        // 80 clients, each with a request sent: more than the server has fds for.
        let mut clients: Vec<TcpStream> = (0..80)
            .map(|_| {
                let mut s = TcpStream::connect(srv.addr).unwrap();
                s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let served_early = srv.fd_count();
        assert!(served_early < 80, "{served_early}");
        // While the rest wait, the server must not spin on accept.
        let before = srv.cpu_ticks();
        std::thread::sleep(Duration::from_millis(1500));
        let burned = srv.cpu_ticks() - before;
        assert!(
            burned < 40,
            "{tier}: server burned {burned} ticks in 1.5 s while clients waited"
        );
        // Clients that got answers leave; everyone else is then served.
        let mut done = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !clients.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{tier}: {} clients never served",
                clients.len()
            );
            let mut still = Vec::new();
            for mut s in clients.drain(..) {
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let mut b = [0u8; 4096];
                match s.read(&mut b) {
                    Ok(n) if n > 0 => {
                        assert!(b.starts_with(b"HTTP/1.1 200 OK"));
                        done += 1;
                    }
                    Ok(_) => panic!("{tier}: closed without a response"),
                    Err(_) => still.push(s),
                }
            }
            clients = still;
        }
        assert_eq!(done, 80);
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(read_responses(&mut s, 1, &[])[0].status, 200);
    }
}
