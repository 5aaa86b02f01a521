//! HTTP/1.1 over raw sockets against uring-server, on every kernel tier (basic and
//! multishot are forced; full is what this kernel picks): pipelining, requests split
//! across writes, bodies (Content-Length, chunked, 100-continue), HEAD, HTTP/1.0, half
//! close, every strict framing rule (status asserted, connection closed), and the head
//! and keep-alive timeouts.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use uring_tests::server::{
    closed_by_server, exchange_then_closed, read_responses, ServerProc, TempDir,
};

use uring_tests::TIERS;

fn start(tier: &str, extra: &[&str]) -> ServerProc {
    let mut args = vec!["--tier", tier];
    args.extend_from_slice(extra);
    ServerProc::start(&args)
}

#[test]
fn sixteen_pipelined_requests_in_one_write_come_back_in_order() {
    for tier in TIERS {
        let srv = start(tier, &[]);
        let mut s = srv.connect();
        let mut burst = Vec::new();
        for i in 0..16 {
            let path = if i % 2 == 0 { "/plaintext" } else { "/json" };
            burst.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        s.write_all(&burst).unwrap();
        let rs = read_responses(&mut s, 16, &[]);
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(r.status, 200, "{tier}");
            let want: &[u8] = if i % 2 == 0 {
                b"Hello, World!"
            } else {
                b"{\"message\":\"Hello, World!\"}"
            };
            assert_eq!(r.body, want, "{tier} response {i}");
        }
        // The connection is still good afterwards, and a large burst works too.
        let burst: Vec<u8> = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
        s.write_all(&burst).unwrap();
        let rs = read_responses(&mut s, 2000, &[]);
        assert!(
            rs.iter()
                .all(|r| r.status == 200 && r.body == b"Hello, World!"),
            "{tier}"
        );
    }
}

#[test]
fn requests_split_across_writes() {
    for tier in TIERS {
        let srv = start(tier, &[]);
        let mut s = srv.connect();
        let req =
            b"GET /json HTTP/1.1\r\nHost: example\r\nUser-Agent: split-test\r\nAccept: */*\r\n\r\n";
        for cut in [1, 5, 16, 17, 18, 30, 60, req.len() - 1] {
            s.write_all(&req[..cut]).unwrap();
            std::thread::sleep(Duration::from_millis(15));
            s.write_all(&req[cut..]).unwrap();
            let r = read_responses(&mut s, 1, &[]).remove(0);
            assert_eq!(r.status, 200, "{tier} cut {cut}");
            assert_eq!(r.body, b"{\"message\":\"Hello, World!\"}");
        }
        // Byte by byte.
        for b in req.iter() {
            s.write_all(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(read_responses(&mut s, 1, &[])[0].status, 200);
    }
}

#[test]
fn bodies_by_length_chunked_and_expect_continue() {
    for tier in TIERS {
        let srv = start(tier, &[]);
        let mut s = srv.connect();
        // The default handler refuses POST with 405 but must consume the body exactly:
        // the next pipelined request proves the framing.
        let body = vec![b'x'; 100_000];
        let mut req = format!(
            "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        req.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(&req).unwrap();
        let rs = read_responses(&mut s, 2, &[]);
        assert_eq!((rs[0].status, rs[1].status), (405, 200), "{tier}");

        let chunked = b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;name=v\r\npedia\r\n0\r\nTrailer: t\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n";
        s.write_all(chunked).unwrap();
        let rs = read_responses(&mut s, 2, &[]);
        assert_eq!((rs[0].status, rs[1].status), (405, 200), "{tier}");

        s.write_all(b"PUT /plaintext HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").unwrap();
        let interim = read_responses(&mut s, 1, &[]).remove(0);
        assert_eq!(interim.status, 100, "{tier}");
        s.write_all(b"hello").unwrap();
        assert_eq!(read_responses(&mut s, 1, &[])[0].status, 405);

        // HEAD: same headers, no body.
        s.write_all(
            b"HEAD /json HTTP/1.1\r\nHost: x\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
        let rs = read_responses(&mut s, 2, &[0]);
        assert_eq!(rs[0].header("Content-Length").as_deref(), Some("27"));
        assert!(rs[0].body.is_empty());
        assert_eq!(rs[1].body, b"Hello, World!");
    }
}

#[test]
fn http10_keep_alive_and_close() {
    let srv = ServerProc::start(&[]);
    let mut s = srv.connect();
    s.write_all(b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = read_responses(&mut s, 1, &[]).remove(0);
    assert_eq!(r.header("Connection").as_deref(), Some("keep-alive"));
    s.write_all(b"GET /plaintext HTTP/1.0\r\n\r\n").unwrap();
    let r = read_responses(&mut s, 1, &[]).remove(0);
    assert_eq!(r.status, 200);
    assert!(closed_by_server(&mut s, Duration::from_secs(5)));

    let (r, closed) = exchange_then_closed(
        srv.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection").as_deref(), Some("close"));
    assert!(closed);
}

#[test]
fn half_closed_client_gets_its_responses() {
    for tier in TIERS {
        let srv = start(tier, &[]);
        let mut s = srv.connect();
        s.write_all(&b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3))
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let rs = read_responses(&mut s, 3, &[]);
        assert!(rs.iter().all(|r| r.status == 200), "{tier}");
        assert!(closed_by_server(&mut s, Duration::from_secs(5)), "{tier}");
    }
}

/// Issue 9 (4a): the client's EOF arrives while the server is still streaming a file (the
/// client reads nothing until it has half-closed, so the server is blocked on a full
/// socket). The request pipelined behind the file was complete before the EOF: it must be
/// answered, then the connection closed.
#[test]
fn eof_while_a_file_streams_still_answers_the_pipelined_request() {
    let root = TempDir::new("eof-root");
    let big = vec![b'z'; 8 * 1024 * 1024];
    std::fs::write(root.path().join("big.bin"), &big).unwrap();
    for tier in TIERS {
        let srv = start(tier, &["--root", root.path().to_str().unwrap()]);
        let mut s = srv.connect();
        s.write_all(
            b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        // Let the server fill the socket and see the EOF while the file is unsent.
        std::thread::sleep(Duration::from_millis(200));
        let rs = read_responses(&mut s, 2, &[]);
        assert_eq!(rs[0].status, 200, "{tier}");
        assert!(rs[0].body == big, "{tier}: file body differs");
        assert_eq!(rs[1].status, 200, "{tier}");
        assert_eq!(rs[1].body, b"Hello, World!", "{tier}");
        assert!(closed_by_server(&mut s, Duration::from_secs(5)), "{tier}");
    }
}

#[test]
fn strict_rules_answer_and_close() {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..120)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..40)
            .map(|i| format!("X-Big{i}: {}\r\n", "b".repeat(500)))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("CL and TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("bad CL", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(), 400),
        ("signed CL", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc".to_vec(), 400),
        ("differing CLs", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(), 400),
        ("no Host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n".to_vec(), 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), 400),
        ("bad method token", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("chunked not last", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(), 400),
        ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("bad chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(), 400),
        ("unknown coding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(), 501),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 505),
        ("target too long", long_target.into_bytes(), 414),
        ("too many headers", many_headers.into_bytes(), 431),
        ("head too large", big_head.into_bytes(), 431),
        ("body too large", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n".to_vec(), 413),
        // Issue 9, item 6.
        ("asterisk-form GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("CONNECT", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n".to_vec(), 501),
        ("nameless chunk extension", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n".to_vec(), 400),
        ("non-token chunk extension", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;bad[=x\r\nhello\r\n0\r\n\r\n".to_vec(), 400),
        ("non-ASCII target", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("100 KB method", [&b"M".repeat(100 * 1024)[..], b" / HTTP/1.1\r\nHost: x\r\n\r\n"].concat(), 501),
        ("empty Host, origin-form", b"GET / HTTP/1.1\r\nHost:\r\n\r\n".to_vec(), 400),
    ];
    for tier in TIERS {
        let srv = start(tier, &[]);
        for (name, raw, status) in &cases {
            let (r, closed) = exchange_then_closed(srv.addr, raw);
            assert_eq!(r.status, *status, "{tier}: {name}: {}", r.head);
            assert_eq!(
                r.header("Connection").as_deref(),
                Some("close"),
                "{tier}: {name}"
            );
            assert!(closed, "{tier}: {name}: connection left open");
        }
        // A chunked body over the limit is cut off with 413 too.
        let mut s = srv.connect();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 65536, "c".repeat(65536));
        let mut got = Vec::new();
        for _ in 0..20 {
            if s.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = s.read_to_end(&mut got);
        assert!(
            got.starts_with(b"HTTP/1.1 413 "),
            "{tier}: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn slowloris_and_idle_connections_are_closed() {
    let srv = ServerProc::start(&["--header-timeout", "1s", "--keepalive-timeout", "2s"]);
    // A head dribbled a byte at a time never completes: closed after ~1 s anyway.
    let mut s = srv.connect();
    let t0 = Instant::now();
    let mut closed = false;
    for b in b"GET /plaintext HTTP/1.1\r\nX-Slow: "
        .iter()
        .cycle()
        .take(200)
    {
        if s.write_all(std::slice::from_ref(b)).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if t0.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    assert!(
        closed || closed_by_server(&mut s, Duration::from_secs(3)),
        "slowloris left open"
    );
    assert!(t0.elapsed() < Duration::from_secs(6));

    // An idle keep-alive connection is closed after the idle timeout, not before.
    let mut s = srv.connect();
    s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_responses(&mut s, 1, &[])[0].status, 200);
    let t0 = Instant::now();
    assert!(closed_by_server(&mut s, Duration::from_secs(6)));
    let idle = t0.elapsed();
    assert!(
        idle >= Duration::from_millis(1500),
        "closed too early: {idle:?}"
    );

    // The server still serves.
    let (r, _) = exchange_then_closed(
        srv.addr,
        b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
}

/// Issue 9 (4g): the head timeout runs from accept (a connection that sends nothing is
/// closed after `--header-timeout`, not the keep-alive timeout), and a body that
/// trickles in is cut off with 408 after `--body-timeout`, however steadily it trickles.
#[test]
fn silent_connections_and_trickling_bodies_time_out() {
    let srv = ServerProc::start(&[
        "--header-timeout",
        "1s",
        "--body-timeout",
        "1s",
        "--keepalive-timeout",
        "30s",
    ]);
    let mut s = srv.connect();
    let t0 = Instant::now();
    assert!(
        closed_by_server(&mut s, Duration::from_secs(8)),
        "a silent connection stayed open"
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );

    let mut s = srv.connect();
    s.write_all(b"POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let t0 = Instant::now();
    let mut reader = s.try_clone().unwrap();
    let got = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends at EOF or a reset; the read timeout of connect() bounds it too.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        (got, t0.elapsed())
    });
    // A byte every 100 ms: it never stalls, so only a body timeout can stop it.
    for _ in 0..80 {
        if got.is_finished() || s.write_all(b"a").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (got, when) = got.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text:?} after {when:?}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(when < Duration::from_secs(7), "408 came after {when:?}");
}
